//! `textcluster assign`.

use clap::Args;
use textcluster::job::{JobError, RunOptions};

use super::exit::ExitStatus;

use super::run::RunArgs;

#[derive(Debug, Args)]
pub struct AssignArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The model: a directory `fit` wrote (it holds `model.json`), or a registry whose
    /// `CURRENT` names one. Default: `[model] path` of the spec.
    #[arg(long, value_name = "PATH")]
    pub model: Option<std::path::PathBuf>,
}

/// Assigns the job's partitions to the model, prints a one-line summary and returns how to
/// exit.
pub fn execute(args: &AssignArgs, json_logs: bool) -> Result<ExitStatus, JobError> {
    let plan = args.run.job.plan()?;
    let path = textcluster::job::fit::registry(&plan, args.model.as_deref())?;
    let model = textcluster::model::Model::load(&path)?;
    let bar = super::progress::Bar::for_stderr(json_logs);
    let summary = textcluster::job::assign(
        &plan,
        &model,
        RunOptions {
            fail_fast: args.run.fail_fast,
            progress: bar.as_ref().map(|b| b as &dyn textcluster::job::Progress),
            interrupt: Some(super::term::stop_signal()),
        },
    )?;
    super::run::report(&args.run, &plan, &summary, json_logs)
}
