//! Exit codes, in one place: every outcome of a run and every error of the library maps to
//! one [`ExitStatus`], which the binary returns. Each library error says whether it is the
//! user's to fix (`is_user_error`); this table turns that into the process's code. The README's "Exit codes" section documents
//! the same table.
//!
//! | code | meaning | retry? |
//! |---|---|---|
//! | 0 | every partition succeeded or was skipped | |
//! | 1 | bad spec, arguments or input | no: fix it first |
//! | 2 | environmental or unexpected failure (disk, permissions, a lock held by a live run) | yes |
//! | 3 | some partitions failed, the others were committed (listed in the manifest) | after fixing them |
//! | 130, 143 | stopped by SIGINT or SIGTERM: no partition started after it, locks and staging removed | yes |

use textcluster::eval::EvalError;
use textcluster::io::lock::LockError;
use textcluster::io::store::StoreError;
use textcluster::io::{InputError, OutputError};
use textcluster::job::JobError;
use textcluster::model::ModelError;
use textcluster::output::{Manifest, ManifestError, SpecError};
use textcluster::report::ReportError;

/// How the binary exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done.
    Success,
    /// 1: the spec, arguments or data must be fixed; retrying will not help.
    UserError,
    /// 2: the environment failed (or something unexpected did); a retry may help.
    Environment,
    /// 3: some partitions failed and the others were committed.
    Partial,
    /// 128 + the signal: stopped by SIGTERM (143) or SIGINT (130), cleaned up.
    Interrupted { signal: u8 },
}

impl ExitStatus {
    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::UserError => 1,
            ExitStatus::Environment => 2,
            ExitStatus::Partial => 3,
            ExitStatus::Interrupted { signal } => 128u8.saturating_add(signal),
        }
    }

    /// The exit status of a run that finished with `manifest` (the manifest records it).
    pub fn of_run(manifest: &Manifest) -> Self {
        match manifest.outcome_exit_code() {
            0 => ExitStatus::Success,
            1 => ExitStatus::UserError,
            3 => ExitStatus::Partial,
            code @ 129.. => ExitStatus::Interrupted { signal: code - 128 },
            _ => ExitStatus::Environment,
        }
    }

    /// The exit status of an error: the first error of the chain that the library knows
    /// decides; anything else (an I/O error of the binary, say) is environmental.
    pub fn of_error(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if let Some(user) = is_user_error(e) {
                return if user {
                    ExitStatus::UserError
                } else {
                    ExitStatus::Environment
                };
            }
            cause = e.source();
        }
        ExitStatus::Environment
    }
}

/// Whether a library error is the user's to fix, or `None` for an error the library does
/// not define.
fn is_user_error(e: &(dyn std::error::Error + 'static)) -> Option<bool> {
    if let Some(e) = e.downcast_ref::<JobError>() {
        Some(e.is_user_error())
    } else if let Some(e) = e.downcast_ref::<ReportError>() {
        Some(e.is_user_error())
    } else if let Some(e) = e.downcast_ref::<EvalError>() {
        Some(e.is_user_error())
    } else if let Some(e) = e.downcast_ref::<ManifestError>() {
        Some(e.is_user_error())
    } else if let Some(e) = e.downcast_ref::<InputError>() {
        Some(e.is_user_error())
    } else if let Some(e) = e.downcast_ref::<StoreError>() {
        Some(e.is_user_error())
    } else if let Some(e) = e.downcast_ref::<ModelError>() {
        Some(e.is_user_error())
    } else if e.is::<SpecError>() {
        Some(true)
    } else if e.is::<OutputError>() || e.is::<LockError>() || e.is::<std::io::Error>() {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn io() -> std::io::Error {
        std::io::Error::other("disk on fire")
    }

    #[test]
    fn each_code_has_its_number() {
        let codes = [
            ExitStatus::Success,
            ExitStatus::UserError,
            ExitStatus::Environment,
            ExitStatus::Partial,
        ]
        .map(ExitStatus::code);
        assert_eq!(codes, [0, 1, 2, 3]);
        assert_eq!(ExitStatus::Interrupted { signal: 15 }.code(), 143);
        assert_eq!(ExitStatus::Interrupted { signal: 2 }.code(), 130);
    }

    #[test]
    fn user_errors_exit_1() {
        let spec = JobError::Spec(SpecError::BadOverride { arg: "x".into() });
        let exists = JobError::OutputExists { path: "o".into() };
        let input = JobError::Input(InputError::PathNotFound { path: "in".into() });
        let no_manifest = ReportError::Manifest(ManifestError::Missing { out: "o".into() });
        for e in [
            &spec as &dyn std::error::Error,
            &exists,
            &input,
            &no_manifest,
        ] {
            assert_eq!(ExitStatus::of_error(e), ExitStatus::UserError, "{e}");
        }
        let overlap = EvalError::NoOverlap {
            labels: PathBuf::from("l"),
            gold: PathBuf::from("g"),
        };
        assert_eq!(ExitStatus::of_error(&overlap), ExitStatus::UserError);
    }

    #[test]
    fn environmental_errors_exit_2() {
        let output = JobError::Output(OutputError::Io { source: io() });
        let input = JobError::Input(InputError::Io { source: io() });
        let spill = JobError::Spill { source: io() };
        let report = ReportError::Io(io());
        let eval_io = EvalError::Manifest(ManifestError::Read {
            path: "m".into(),
            source: io(),
        });
        let bare = io();
        for e in [
            &output as &dyn std::error::Error,
            &input,
            &spill,
            &report,
            &eval_io,
            &bare,
        ] {
            assert_eq!(ExitStatus::of_error(e), ExitStatus::Environment, "{e}");
        }
    }

    #[test]
    fn the_first_known_error_of_a_chain_decides() {
        #[derive(Debug, thiserror::Error)]
        #[error("while doing something")]
        struct Outer(#[source] JobError);
        let e = Outer(JobError::OutputExists { path: "o".into() });
        assert_eq!(ExitStatus::of_error(&e), ExitStatus::UserError);
        #[derive(Debug, thiserror::Error)]
        #[error("unknown")]
        struct Unknown;
        assert_eq!(ExitStatus::of_error(&Unknown), ExitStatus::Environment);
    }
}
