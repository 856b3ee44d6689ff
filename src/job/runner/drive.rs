//! The one per-partition driver of `run` and `assign`.
//!
//! Every partition goes through [`Driver::one`]: it is cancelled once the run stops (a signal,
//! or an earlier failure under `fail_fast`), failed at once when its files could not be read
//! at plan time, skipped when `skip_existing` finds it committed from the same input and
//! parameters, and otherwise processed, with an error or a panic caught and recorded as its
//! failure. `run` (partition scope) processes a partition by clustering it; `assign` (and a
//! `run` in global scope, after its fit) by labelling it against a model.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use tracing::info;

use super::RunOptions;
use super::context::{Context, Outcome};
use crate::io::{Partition, PartitionKey, error_chain};
use crate::job::JobError;
use crate::job::assign::{Assigner, assign_partition};
use crate::job::fingerprint::input_fingerprint;
use crate::job::pipeline;
use crate::model::Model;
use crate::output::Table;
use crate::output::manifest::{ClusteringReport, PartitionReport};

/// How a partition's processing ended: its outcome, and what the processing returned when it
/// succeeded.
pub(super) struct Driven<T> {
    pub(super) fingerprint: String,
    pub(super) outcome: Outcome,
    pub(super) value: Option<T>,
}

/// What happens to a partition before any work on it.
#[derive(Debug, Clone, PartialEq)]
enum Start {
    Cancelled,
    /// Its files could not be read at plan time: failed, the user's to fix.
    Unreadable(String),
    Skipped,
    Process,
}

/// The first matching rule decides: a stopped run cancels, an unreadable partition fails, a
/// committed one (asked last, as it may cost a request) is skipped.
fn start(stopped: bool, problem: Option<&str>, already_done: impl FnOnce() -> bool) -> Start {
    if stopped {
        Start::Cancelled
    } else if let Some(problem) = problem {
        Start::Unreadable(problem.to_owned())
    } else if already_done() {
        Start::Skipped
    } else {
        Start::Process
    }
}

/// Runs `process`, turning an error or a panic into a failed outcome.
fn caught<T>(process: impl FnOnce() -> Result<T, JobError>) -> Result<T, Outcome> {
    match catch_unwind(AssertUnwindSafe(process)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(failure(&error)),
        Err(payload) => Err(panic_failure(payload.as_ref())),
    }
}

/// The failure of a caught panic.
pub(super) fn panic_failure(payload: &(dyn std::any::Any + Send)) -> Outcome {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    Outcome::Failed {
        message: format!("internal error (panic): {message}"),
        user_error: false,
    }
}

/// The failure of an error, its causes included.
pub(super) fn failure(error: &JobError) -> Outcome {
    Outcome::Failed {
        message: error_chain(error),
        user_error: error.is_user_error(),
    }
}

/// `f` of every partition, in order, run in parallel in waves of 2 × threads. A partition job
/// that waits inside a nested parallel loop steals other queued jobs onto its own stack; with
/// every partition queued at once (10,000 one-document partitions) that nesting overflowed the
/// stack.
fn in_waves<P: Sync, T: Send>(partitions: &[P], f: impl Fn(&P) -> T + Sync) -> Vec<T> {
    let wave = 2 * rayon::current_num_threads();
    partitions
        .chunks(wave)
        .flat_map(|wave| wave.par_iter().map(&f).collect::<Vec<_>>())
        .collect()
}

/// Drives the partitions of one run.
pub(super) struct Driver<'c, 'a> {
    context: &'c Context<'a>,
    options: RunOptions<'c>,
    /// The tables a committed partition holds, for `skip_existing`.
    tables: &'c [Table],
    /// Set by a failure under `fail_fast`.
    stop: AtomicBool,
}

impl<'c, 'a> Driver<'c, 'a> {
    pub(super) fn new(
        context: &'c Context<'a>,
        options: RunOptions<'c>,
        tables: &'c [Table],
    ) -> Self {
        Self {
            context,
            options,
            tables,
            stop: AtomicBool::new(false),
        }
    }

    /// Drives one partition; `process` does its work once it is neither cancelled, failed at
    /// once, nor skipped, and returns its outcome.
    pub(super) fn one<T>(
        &self,
        partition: &Partition,
        process: impl FnOnce(&str) -> Result<(Outcome, T), JobError>,
    ) -> Driven<T> {
        let fingerprint = input_fingerprint(self.context.plan, partition);
        let stopped = self.stop.load(Ordering::SeqCst) || self.options.interrupted().is_some();
        let begin = start(stopped, partition.problem.as_deref(), || {
            self.context
                .already_done(&partition.key, &fingerprint, self.tables)
        });
        let failed = match begin {
            Start::Cancelled => Outcome::Cancelled,
            Start::Skipped => {
                info!(partition = %partition.key, "already committed from the same input and parameters; skipped");
                Outcome::Skipped
            }
            Start::Unreadable(message) => Outcome::Failed {
                message,
                user_error: true,
            },
            Start::Process => match caught(|| process(&fingerprint)) {
                Ok((outcome, value)) => {
                    return Driven {
                        fingerprint,
                        outcome,
                        value: Some(value),
                    };
                }
                Err(failed) => failed,
            },
        };
        if self.options.fail_fast && matches!(failed, Outcome::Failed { .. }) {
            self.stop.store(true, Ordering::SeqCst);
        }
        Driven {
            fingerprint,
            outcome: failed,
            value: None,
        }
    }
}

type Reports = (Vec<PartitionReport>, Vec<ClusteringReport>);

/// `run` in partition scope: each partition clustered on its own, staged and committed.
pub(super) fn cluster_partitions(context: &Context<'_>, options: RunOptions<'_>) -> Reports {
    let plan = context.plan;
    let driver = Driver::new(context, options, &Table::ALL);
    let results = in_waves(&plan.dataset.partitions, |partition| {
        let driven = driver.one(partition, |fingerprint| {
            let run = pipeline::partition(plan, options.progress, partition)?;
            pipeline::stage(options.progress, &partition.key, "write");
            let (labels, write_seconds) = rayon::join(
                || context.stage_labels(&run.loaded, &run.clustered),
                || context.stage_cluster_tables(&run.clustered),
            );
            let (labels, write_seconds) = (labels?, write_seconds?);
            context.commit(&[(&partition.key, fingerprint)])?;
            Ok((
                labels,
                run.clustered.report(plan.cluster.k(), write_seconds),
            ))
        });
        options.finish(&partition.key);
        let report = context.report(partition, &driven.fingerprint, driven.outcome);
        (report, driven.value)
    });
    let (partitions, clusterings): (Vec<_>, Vec<_>) = results.into_iter().unzip();
    (partitions, clusterings.into_iter().flatten().collect())
}

/// Assigns every partition to `model`. Each partition is committed when done, or with
/// `together` (`run` in `global` scope) all of them in one commit at the end, so a crash
/// never leaves some partitions on a new model and others on the old one.
pub(super) fn assign_partitions(
    context: &Context<'_>,
    model: &Model,
    options: RunOptions<'_>,
    together: bool,
) -> Vec<PartitionReport> {
    let plan = context.plan;
    let assigner = match Assigner::new(model) {
        Ok(a) => a,
        Err(e) => {
            return plan
                .dataset
                .partitions
                .iter()
                .map(|p| context.report(p, &input_fingerprint(plan, p), failure(&e)))
                .collect();
        }
    };
    let tables = [Table::Labels, Table::Clusters];
    let driver = Driver::new(context, options, &tables);
    let mut results = in_waves(&plan.dataset.partitions, |partition| {
        let driven = driver.one(partition, |fingerprint| {
            pipeline::stage(options.progress, &partition.key, "assign");
            let a = assign_partition(&context.staging, &plan.spec.input, &assigner, partition)?;
            let (labels, clusters) = (a.labels_file, a.clusters_file);
            context.record_written(Table::Labels, &partition.key, labels.0, labels.1);
            context.record_written(Table::Clusters, &partition.key, clusters.0, clusters.1);
            if !together {
                context.commit(&[(&partition.key, fingerprint)])?;
            }
            let done = Outcome::Done {
                n_docs: a.n_docs,
                n_null: a.n_null,
                n_empty: a.n_empty,
                seconds_read: a.seconds_read,
                seconds_write: a.seconds_total - a.seconds_read,
                model_id: model.id().to_owned(),
                drift: Some(a.drift),
            };
            Ok((done, ()))
        });
        if !together {
            options.finish(&partition.key);
        }
        driven
    });
    if together {
        let staged: Vec<(&PartitionKey, &str)> = plan
            .dataset
            .partitions
            .iter()
            .zip(&results)
            .filter(|(_, d)| d.value.is_some())
            .map(|(p, d)| (&p.key, d.fingerprint.as_str()))
            .collect();
        // Interrupted before the commit, or the commit failed: nothing of it was committed.
        let failed = if options.interrupted().is_some() {
            Some(Outcome::Cancelled)
        } else if staged.is_empty() {
            None
        } else {
            context.commit(&staged).err().map(|e| failure(&e))
        };
        if let Some(failed) = failed {
            for d in results.iter_mut().filter(|d| d.value.is_some()) {
                d.outcome = failed.clone();
            }
        }
    }
    plan.dataset
        .partitions
        .iter()
        .zip(results)
        .map(|(p, d)| context.report(p, &d.fingerprint, d.outcome))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_run_cancels_before_anything_else_is_asked() {
        let asked = std::cell::Cell::new(false);
        let ask = || {
            asked.set(true);
            true
        };
        assert_eq!(start(true, Some("bad footer"), ask), Start::Cancelled);
        assert!(
            !asked.get(),
            "a cancelled partition asks for no commit record"
        );
    }

    #[test]
    fn an_unreadable_partition_fails_without_asking_for_its_commit_record() {
        let asked = std::cell::Cell::new(false);
        let ask = || {
            asked.set(true);
            true
        };
        assert_eq!(
            start(false, Some("bad footer"), ask),
            Start::Unreadable("bad footer".into())
        );
        assert!(!asked.get());
        assert_eq!(start(false, None, || true), Start::Skipped);
        assert_eq!(start(false, None, || false), Start::Process);
    }

    #[test]
    fn errors_and_panics_become_failures_with_their_message_and_kind() {
        assert_eq!(caught(|| Ok::<_, JobError>(7)).ok(), Some(7));
        let user = caught(|| Err::<(), _>(JobError::NoModelPath)).unwrap_err();
        let Outcome::Failed {
            message,
            user_error,
        } = user
        else {
            panic!("not a failure");
        };
        assert!(message.contains("no model path"), "{message}");
        assert!(user_error);
        let environmental = caught(|| {
            Err::<(), _>(JobError::Spill {
                source: std::io::Error::other("disk full"),
            })
        })
        .unwrap_err();
        assert!(matches!(
            environmental,
            Outcome::Failed {
                user_error: false,
                ..
            }
        ));
        let panicked = caught(|| -> Result<(), JobError> { panic!("boom {}", 1) }).unwrap_err();
        let Outcome::Failed {
            message,
            user_error,
        } = panicked
        else {
            panic!("not a failure");
        };
        assert_eq!(message, "internal error (panic): boom 1");
        assert!(!user_error);
    }

    #[test]
    fn waves_keep_the_partition_order_at_any_thread_count() {
        let items: Vec<usize> = (0..1000).collect();
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let out = pool.install(|| in_waves(&items, |&i| i * 2));
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
    }
}
