//! `textcluster fit`.

use clap::Args;
use textcluster::job::JobError;

use super::JobArgs;

#[derive(Debug, Args)]
pub struct FitArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// The model registry: the model is written to `PATH/model_id=<id>/` and `PATH/CURRENT`
    /// points at it. Default: `[model] path` of the spec.
    #[arg(long, value_name = "PATH")]
    pub model: Option<std::path::PathBuf>,
    /// Cap the worker threads (default: all cores). The model is identical for any value.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the model but leave `CURRENT` as it is.
    #[arg(long)]
    pub no_publish: bool,
}

/// Fits and writes the model, then prints its id, directory and size as one JSON line.
pub fn execute(args: &FitArgs, json_logs: bool) -> Result<(), JobError> {
    let plan = args.job.plan()?;
    let registry = textcluster::job::fit::registry(&plan, args.model.as_deref())?;
    let bar = super::progress::Bar::for_stderr(json_logs);
    let outcome = textcluster::job::fit(
        &plan,
        &registry,
        bar.as_ref().map(|b| b as &dyn textcluster::job::Progress),
    )?;
    if !args.no_publish {
        textcluster::model::publish(&registry, outcome.model.id())?;
    }
    let line = outcome.to_json(!args.no_publish);
    super::term::print_line(&line.to_string());
    Ok(())
}
