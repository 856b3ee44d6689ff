//! `textcluster run`.

use clap::Args;
use textcluster::job::{JobError, RunOptions};

use super::exit::ExitStatus;

use super::JobArgs;

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Cap the worker threads (default: all cores). Outputs are identical for any value.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Stop starting partitions after the first failure (the rest are `cancelled`).
    #[arg(long)]
    pub fail_fast: bool,
    /// Write OpenMetrics text here (for node_exporter's textfile collector).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<std::path::PathBuf>,
}

/// Runs the job, prints a one-line summary and returns how to exit.
pub fn execute(args: &RunArgs, json_logs: bool) -> Result<ExitStatus, JobError> {
    let plan = args.job.plan()?;
    let bar = super::progress::Bar::for_stderr(json_logs);
    let summary = textcluster::job::run(
        &plan,
        RunOptions {
            fail_fast: args.fail_fast,
            progress: bar.as_ref().map(|b| b as &dyn textcluster::job::Progress),
            interrupt: Some(super::term::stop_signal()),
        },
    )?;
    report(args, &plan, &summary, json_logs)
}

/// Writes the metrics file, prints the one-line summary (and the failed partitions) of a
/// finished run, and returns how to exit.
pub fn report(
    args: &RunArgs,
    plan: &textcluster::job::JobPlan,
    summary: &textcluster::job::RunSummary,
    json_logs: bool,
) -> Result<ExitStatus, JobError> {
    let m = &summary.manifest;
    if let Some(path) = &args.metrics_file {
        let previous = fs_err::read_to_string(path)
            .ok()
            .and_then(|t| textcluster::job::metrics::previous_last_success(&t));
        let text =
            textcluster::job::metrics::render(m, &plan.output().display().to_string(), previous);
        textcluster::io::commit::write_atomic(path, text.as_bytes())?;
    }
    let count = |s| m.partitions.iter().filter(|p| p.status == s).count();
    use textcluster::output::manifest::PartitionStatus as S;
    let model = m
        .model
        .as_ref()
        .map(|r| format!(" with model {}", r.model_id))
        .unwrap_or_default();
    let outputs = if summary.wrote_output {
        format!("outputs in {}{model}", plan.output().display())
    } else {
        format!("nothing written, {} is unchanged", plan.output().display())
    };
    if json_logs {
        // One JSON object on stdout: what a scheduler keeps (an Airflow XCom, say).
        let line = summary.to_json(plan);
        super::term::print_line(&line.to_string());
        return Ok(ExitStatus::of_run(&summary.manifest));
    }
    super::term::print_line(&format!(
        "{:?}: {} partitions succeeded, {} skipped, {} failed, {} cancelled in {:.2} s; {outputs}",
        m.status,
        count(S::Succeeded),
        count(S::Skipped),
        count(S::Failed),
        count(S::Cancelled),
        m.seconds_total,
    ));
    for p in m.partitions.iter().filter(|p| p.status == S::Failed) {
        super::term::print_error_line(&format!(
            "error: partition `{}` failed: {}",
            p.key,
            p.error.as_deref().unwrap_or("")
        ));
    }
    Ok(ExitStatus::of_run(&summary.manifest))
}
