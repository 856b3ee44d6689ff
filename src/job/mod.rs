//! The job: spec → plan → run → manifest.
//!
//! [`spec`] reads the TOML job spec and `--set` overrides; [`plan`] checks every parameter and
//! finds the input before any work starts; [`runner`] runs the pipeline and commits outputs;
//! [`manifest`] is what the run records. Errors carry a class ([`JobError::is_user_error`]) that
//! the binary maps to its exit code.

pub mod manifest;
pub mod metrics;
pub mod plan;
pub mod runner;
pub mod spec;

use std::path::PathBuf;

pub use plan::JobPlan;
pub use runner::{Progress, RunOptions, RunSummary, run};
pub use spec::{JobSpec, SpecError};

use crate::io::lock::LockError;
use crate::io::{InputError, OutputError};

/// Why a job did not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("invalid job spec:\n  - {}", .0.join("\n  - "))]
    Params(Vec<String>),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(
        "output path `{}` is inside input path `{}`\nhint: a later run would read its own outputs; choose another `output.path`",
        output.display(),
        input.display()
    )]
    OutputInsideInput { output: PathBuf, input: PathBuf },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(
        "`{}` already exists and `output.mode` is `error_if_exists`\nhint: use `overwrite_partitions` to replace it or `skip_existing` to resume",
        path.display()
    )]
    OutputExists { path: PathBuf },
    #[error(transparent)]
    Lock(#[from] LockError),
}

impl JobError {
    /// True when the user must fix the spec, arguments or data (a retry will not help).
    pub fn is_user_error(&self) -> bool {
        match self {
            JobError::Spec(_)
            | JobError::Params(_)
            | JobError::OutputInsideInput { .. }
            | JobError::OutputExists { .. } => true,
            JobError::Input(e) => !e.is_environmental(),
            JobError::Output(_) | JobError::Lock(_) => false,
        }
    }
}
