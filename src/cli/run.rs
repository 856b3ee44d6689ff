//! `textcluster run`.

use clap::Args;

use super::JobArgs;

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Cap the worker threads (default: all cores). Outputs are identical for any value.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs the job and prints where the outputs went.
pub fn execute(args: &RunArgs) -> Result<(), textcluster::job::JobError> {
    let plan = args.job.plan()?;
    let summary = textcluster::job::run(&plan)?;
    let m = &summary.manifest;
    let n_docs: usize = m.partitions.iter().map(|p| p.n_docs).sum();
    println!(
        "{} documents in {} partitions clustered in {:.2} s; outputs in {}",
        n_docs,
        m.partitions.len(),
        m.seconds_total,
        plan.output().display()
    );
    Ok(())
}
