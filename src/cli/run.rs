//! `textcluster run`.

use clap::Args;
use textcluster::job::{ExitStatus, JobError, RunOptions};

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
    use textcluster::job::manifest::PartitionStatus as S;
    let outputs = if summary.wrote_output {
        format!("outputs in {}", plan.output().display())
    } else {
        format!("nothing written, {} is unchanged", plan.output().display())
    };
    super::term::print_line(&format!(
        "{:?}: {} partitions succeeded, {} skipped, {} failed, {} cancelled in {:.2} s; {outputs}",
        m.status,
        count(S::Succeeded),
        count(S::Skipped),
        count(S::Failed),
        count(S::Cancelled),
        m.seconds_total,
    ));
    // In JSON mode the runner's `partition failed` events already say this, one object each.
    if !json_logs {
        for p in m.partitions.iter().filter(|p| p.status == S::Failed) {
            super::term::print_error_line(&format!(
                "error: partition `{}` failed: {}",
                p.key,
                p.error.as_deref().unwrap_or("")
            ));
        }
    }
    Ok(summary.exit_status())
}
