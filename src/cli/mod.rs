//! Command-line definitions (clap), one file per subcommand. Printing happens here and in
//! `main.rs` only.

pub mod assign;
pub mod eval;
pub mod exit;
pub mod fit;
pub mod memory;
pub mod plan;
pub mod progress;
pub mod report;
pub mod run;
pub mod term;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Cluster text documents kept as hive-partitioned Parquet.
#[derive(Debug, Parser)]
#[command(name = "textcluster", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// More log detail (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job: read, vectorise, cluster, label and write the outputs.
    Run(run::RunArgs),
    /// Fit one model over the selected partitions (or a sample) and save it.
    Fit(fit::FitArgs),
    /// Label partitions against a saved model: no refit, stable cluster ids, drift figures.
    Assign(assign::AssignArgs),
    /// Print the resolved plan as JSON and exit without doing any work.
    Plan(plan::PlanArgs),
    /// Score a run's labels against gold labels (NMI, ARI, purity, largest cluster).
    Eval(eval::EvalArgs),
    /// Write a self-contained HTML report of a run's clusters (and optionally pyLDAvis JSON).
    Report(report::ReportArgs),
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Options shared by every command that reads a job spec.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// The job spec (TOML).
    pub spec: PathBuf,
    /// Override a spec key, e.g. `--set cluster.k=20` (repeatable).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Restrict the run to partitions, e.g. `--partition dt=2018-06-01` (repeatable; values of
    /// one key are alternatives, different keys must all match).
    #[arg(long = "partition", value_name = "KEY=VALUE")]
    pub partitions: Vec<String>,
}

impl JobArgs {
    /// Loads the spec and resolves the plan.
    pub fn plan(&self) -> Result<textcluster::job::JobPlan, textcluster::job::JobError> {
        textcluster::job::JobPlan::load(&self.spec, &self.overrides, &self.partitions)
    }
}
