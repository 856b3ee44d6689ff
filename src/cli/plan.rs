//! `textcluster plan`.

use clap::Args;

use super::JobArgs;

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub job: JobArgs,
}

/// Prints the resolved plan as pretty JSON on stdout.
pub fn execute(args: &PlanArgs) -> Result<(), textcluster::job::JobError> {
    let plan = args.job.plan()?;
    let json = serde_json::to_string_pretty(&plan.summary()).expect("plan serialises");
    super::term::print_line(&json);
    Ok(())
}
