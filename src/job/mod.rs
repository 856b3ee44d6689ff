//! The job: spec → plan → run → manifest.
//!
//! [`plan`] checks every parameter of a job spec ([`crate::output::spec`]) and finds the input
//! before any work starts; [`runner`] locks, stages and commits, running the [`pipeline`]
//! (load → vectorise → cluster → keywords) once per clustering and turning its result into
//! the output tables ([`crate::output::tables`]); [`fit`] saves a clustering as a model and
//! [`assign`] labels partitions against one; [`fingerprint`] says what a committed partition
//! was computed from; [`metrics`] renders a manifest as OpenMetrics. Each error says whether
//! it is the user's to fix (`is_user_error`); the binary maps that to its exit code.

pub mod assign;
mod documents;
pub mod engine;
pub mod fingerprint;
pub mod fit;
pub mod metrics;
pub mod pipeline;
pub mod plan;
mod refine;
pub mod runner;
mod words;

use std::path::PathBuf;

pub use fit::{FitOutcome, fit};
pub use pipeline::Progress;
pub use plan::JobPlan;
pub use runner::{RunOptions, RunSummary, assign, run};

use crate::output::SpecError;

use crate::cluster::ClusterParamError;
use crate::io::lock::LockError;
use crate::io::{InputError, OutputError};
use crate::label::KeywordParamError;
use crate::text::VectorizeParamError;

/// A rule of the `[vectorize]`, `[cluster]` or `[keywords]` section that a value breaks.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error(transparent)]
    Vectorize(#[from] VectorizeParamError),
    #[error(transparent)]
    Cluster(#[from] ClusterParamError),
    #[error(transparent)]
    Keywords(#[from] KeywordParamError),
    #[error(
        "`fit.sample` is {value}; it must be a document count of at least 1 or a fraction in (0, 1]"
    )]
    Sample { value: String },
    #[error(
        "`vectorize.tokenizer = \"column\"` needs `input.tokens_column`, the `list<string>` column of tokens"
    )]
    NoTokensColumn,
    #[error(
        "`input.tokens_column` is set and `vectorize.tokenizer` is not `column`\nhint: set `vectorize.tokenizer = \"column\"` to cluster on the tokens, or remove the key"
    )]
    UnusedTokensColumn,
}

/// The broken rules of a spec, all of them.
#[derive(Debug)]
pub struct ParamErrors(pub Vec<ParamError>);

impl std::fmt::Display for ParamErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid job spec:")?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

/// Why a job did not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("{0}")]
    Params(ParamErrors),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(
        "output path `{}` is inside input path `{}`\nhint: a later run would read its own outputs; choose another `output.path`",
        output.display(),
        input.display()
    )]
    OutputInsideInput { output: PathBuf, input: PathBuf },
    #[error(
        "input path `{}` is inside output path `{}`\nhint: a run would replace the input's files with its tables; choose another `output.path`",
        input.display(),
        output.display()
    )]
    InputInsideOutput { output: PathBuf, input: PathBuf },
    #[error("`{key}` is empty\nhint: give it a local path or an object-store URL")]
    EmptyPath { key: &'static str },
    #[error(
        "`{key}` is `{url}`, whose key has a `..` segment; an object store has no parent directories\nhint: write the key without `..`"
    )]
    DotDotInUrl { key: &'static str, url: String },
    #[error(
        "partition key `{key}` is also a column of the `{table}` table; readers would take the directory's value for the column\nhint: rename the `{key}=` directories of the input"
    )]
    PartitionKeyIsColumn { key: String, table: &'static str },
    #[error(
        "`{key}` is `{url}`, and `{scheme}://` is not a supported scheme; supported are local paths, `file://`, and {}\nhint: nothing was written", crate::io::store::REMOTE_SCHEMES.iter().map(|s| format!("`{s}://`")).collect::<Vec<_>>().join(", ")
    )]
    UnsupportedScheme {
        key: &'static str,
        url: String,
        scheme: String,
    },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(
        "`{}` already exists and `output.mode` is `error_if_exists`\nhint: use `overwrite_partitions` to replace it or `skip_existing` to resume",
        path.display()
    )]
    OutputExists { path: PathBuf },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(
        "the fit would give an empty model: {reason}\nhint: nothing was written and `CURRENT` is unchanged"
    )]
    EmptyFit { reason: String },
    #[error("the batch has no column `{column}`; its columns are {}", available.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "))]
    MissingBatchColumn {
        column: String,
        available: Vec<String>,
    },
    #[error(
        "column `{column}` of the batch is {found}, not strings (Utf8, LargeUtf8, Utf8View or a dictionary of them)"
    )]
    BatchColumnType { column: String, found: String },
    #[error("column `{column}` of the batch has {n} null ids; every document needs one")]
    NullBatchIds { column: String, n: usize },
    #[error("no model path: give `--model PATH` or set `[model] path` in the job spec")]
    NoModelPath,
    #[error("a fit needs every selected partition, and `{key}` cannot be read: {problem}")]
    UnreadablePartition { key: String, problem: String },
    #[error(
        "cannot keep the refinement's rows in a temporary file in `{}`: {source}\nhint: point TMPDIR at a local directory with room for 8 bytes per stored term of the input",
        std::env::temp_dir().display()
    )]
    Spill {
        #[source]
        source: std::io::Error,
    },
    #[error(
        "a cluster of the refinement holds {n} documents, more than the {limit} its exact sums can hold\nhint: raise `cluster.k`, or fit on fewer partitions"
    )]
    ClusterTooLarge { n: u64, limit: u64 },
    #[error("engine fit: {problem}")]
    EngineStep { problem: String },
}

impl JobError {
    /// True when the user must fix the spec, arguments or data (a retry will not help).
    pub fn is_user_error(&self) -> bool {
        match self {
            JobError::Spec(_)
            | JobError::Params(_)
            | JobError::OutputInsideInput { .. }
            | JobError::InputInsideOutput { .. }
            | JobError::EmptyPath { .. }
            | JobError::DotDotInUrl { .. }
            | JobError::PartitionKeyIsColumn { .. }
            | JobError::UnsupportedScheme { .. }
            | JobError::OutputExists { .. }
            | JobError::NoModelPath
            | JobError::MissingBatchColumn { .. }
            | JobError::BatchColumnType { .. }
            | JobError::NullBatchIds { .. }
            | JobError::EmptyFit { .. }
            | JobError::UnreadablePartition { .. }
            | JobError::ClusterTooLarge { .. }
            | JobError::EngineStep { .. } => true,
            JobError::Model(e) => e.is_user_error(),
            JobError::Input(e) => e.is_user_error(),
            JobError::Output(e) => e.is_user_error(),
            JobError::Lock(_) | JobError::Spill { .. } => false,
        }
    }
}
