//! Running a plan: lock, stage, run the pipeline per clustering, commit, write the manifest.
//!
//! # Parallelism
//! In `partition` scope, partitions run concurrently on the rayon pool and each stage inside
//! a partition is parallel too. In `global` scope the partitions are read concurrently, then
//! one vocabulary and one clustering cover them all. Every random draw comes from an RNG
//! seeded by (seed, clustering key), so outputs do not depend on the thread count.
//!
//! # Commit and failure isolation
//! A run takes the output lock and removes staging left by killed runs.
//! Each partition is staged and committed as soon as it is done (with its commit record), so
//! a run killed midway keeps the partitions it finished and `skip_existing` redoes only the
//! rest. A partition that fails, with an error or a panic, is recorded in the manifest and the
//! others go on (unless `fail_fast`). `_SUCCESS` is removed just before the first commit and
//! written again only when every partition succeeded or was skipped; the manifest is written
//! atomically at the end, unless every partition failed before anything was committed, in
//! which case the output is left exactly as it was. In `global` scope the clustering covers
//! every partition, so it succeeds or fails as a whole.

mod context;
mod drive;
mod recover;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tracing::info;

use super::JobError;
use super::fingerprint::{assign_hash, param_hash};
use super::pipeline::Progress;
use super::plan::JobPlan;
use crate::cluster::Scope;
use crate::io::commit::{Staging, write_atomic};
use crate::io::lock::RunLocks;
use crate::io::{OutputError, PartitionKey, error_chain};
use crate::model::Model;
use crate::output::Table;
use crate::output::layout::{MODELS_DIR, SUCCESS_FILE};
use crate::output::manifest::{
    InputSummary, Manifest, ModelRef, PartitionStatus, RunRecord, RunStatus,
};
use crate::output::spec::OutputMode;
use context::{Context, Outcome};
use drive::{assign_partitions, cluster_partitions, failure, panic_failure};
use recover::recover;

/// How to run.
#[derive(Clone, Copy, Default)]
pub struct RunOptions<'a> {
    /// Stop starting partitions after the first failure.
    pub fail_fast: bool,
    /// Where to report progress, if anywhere.
    pub progress: Option<&'a dyn Progress>,
    /// The number of a signal that asks the run to stop (0 while none has): no partition
    /// starts after it is set, a global clustering is abandoned before its commit, and the run
    /// then cleans up and records `interrupted_by`.
    pub interrupt: Option<&'a AtomicUsize>,
}

impl RunOptions<'_> {
    /// The signal that asked the run to stop, if one has.
    fn interrupted(&self) -> Option<i32> {
        self.interrupt
            .map(|s| s.load(Ordering::SeqCst))
            .filter(|&s| s != 0)
            .map(|s| s as i32)
    }

    fn finish(&self, unit: &PartitionKey) {
        if let Some(p) = self.progress {
            p.finish(&unit.to_string());
        }
    }
}

/// What a finished run reports to the caller.
#[derive(Debug)]
pub struct RunSummary {
    pub manifest: Manifest,
    /// `false` when every partition failed before committing anything: then the output was
    /// left exactly as it was (no manifest written, `_SUCCESS` kept).
    pub wrote_output: bool,
}

impl RunSummary {
    /// The run's summary as one JSON object: what `--log-format json` prints on stdout and the
    /// Python API returns (an Airflow XCom keeps it).
    pub fn to_json(&self, plan: &super::JobPlan) -> serde_json::Value {
        use crate::output::manifest::PartitionStatus as S;
        let m = &self.manifest;
        let count = |s| m.partitions.iter().filter(|p| p.status == s).count();
        let partitions: Vec<serde_json::Value> = m
            .partitions
            .iter()
            .map(|p| {
                serde_json::json!({
                    "key": p.key,
                    "status": p.status,
                    "n_docs": p.n_docs,
                    "model_id": p.model_id,
                    "drift": p.drift,
                    "error": p.error,
                })
            })
            .collect();
        serde_json::json!({
            "status": m.status,
            "exit_code": m.exit_code,
            "run_id": m.run_id,
            "output": plan.output().display().to_string(),
            "wrote_output": self.wrote_output,
            "model_id": m.model.as_ref().map(|r| r.model_id.as_str()),
            "succeeded": count(S::Succeeded),
            "skipped": count(S::Skipped),
            "failed": count(S::Failed),
            "cancelled": count(S::Cancelled),
            "seconds": m.seconds_total,
            "partitions": partitions,
        })
    }
}

/// What a run does with its partitions.
#[derive(Clone, Copy)]
enum Work<'m> {
    /// `run`: cluster each partition on its own, or (global scope) fit one model under
    /// `OUT/models` and assign every partition to it.
    Run,
    /// `assign`: label every partition against a fixed model.
    Assign(&'m Model),
}

/// Runs `plan` to completion. Partition failures are reported in the summary's manifest; an
/// `Err` means the run could not start or finish at all (lock held, output unwritable).
pub fn run(plan: &JobPlan, options: RunOptions<'_>) -> Result<RunSummary, JobError> {
    let learned = super::words::learn_korean(plan)?;
    execute(learned.as_ref().unwrap_or(plan), Work::Run, options)
}

/// Labels `plan`'s partitions against `model` (no refit), with the locks, staging, commit
/// records, output modes and exit codes of [`run`].
pub fn assign(
    plan: &JobPlan,
    model: &Model,
    options: RunOptions<'_>,
) -> Result<RunSummary, JobError> {
    model.check_vectorize(
        &plan.spec.vectorize,
        &plan.spec.explicit_vectorize,
        &plan.vectorize.analyzer().stopwords_digest(),
    )?;
    // A model of tokens made upstream reads them from a tokens column, and only such a model
    // does.
    let column = crate::text::TokenizerKind::Column;
    let (model_tokens, job_tokens) = (
        model.header.vectorize.tokenizer == column,
        plan.spec.vectorize.tokenizer == column,
    );
    if model_tokens != job_tokens {
        let says = |tokens: bool| {
            if tokens {
                "tokens from `input.tokens_column` (`vectorize.tokenizer = \"column\"`)".to_owned()
            } else {
                "text from `input.text_column`".to_owned()
            }
        };
        return Err(crate::model::ModelError::Contradicts {
            path: model.dir.clone(),
            key: "input.tokens_column".into(),
            model: says(model_tokens),
            job: says(job_tokens),
        }
        .into());
    }
    // Fail before any lock or write when the model cannot vectorise.
    model.transformer()?;
    execute(plan, Work::Assign(model), options)
}

fn execute(
    plan: &JobPlan,
    work: Work<'_>,
    options: RunOptions<'_>,
) -> Result<RunSummary, JobError> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let started_secs = started_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let out = plan.output();
    let lock_keys: Vec<PartitionKey> = plan
        .dataset
        .partitions
        .iter()
        .map(|p| p.key.clone())
        .collect();
    let lock = RunLocks::acquire(out, &lock_keys, started_secs)?;
    recover(out, &lock_keys, started_secs)?;
    if plan.spec.output.mode == OutputMode::ErrorIfExists {
        for key in &lock_keys {
            for table in Table::ALL {
                let path = Staging::committed_file(out, table, key);
                if crate::io::store::exists(&path).map_err(OutputError::from)? {
                    return Err(JobError::OutputExists { path });
                }
            }
        }
    }
    let global = matches!(work, Work::Run) && plan.cluster.scope() == Scope::Global;
    if let Some(p) = options.progress {
        p.start(if global {
            1
        } else {
            plan.dataset.partitions.len()
        });
    }
    // In global scope the model is fitted (or found again) first: labels carry its id.
    let mut fit_failure = None;
    let mut fitted: Option<super::fit::FitOutcome> = None;
    if global && options.interrupted().is_none() {
        let registry = out.join(MODELS_DIR);
        let result = catch_unwind(AssertUnwindSafe(|| {
            super::fit::fit(plan, &registry, options.progress)
        }));
        match result {
            Ok(Ok(f)) => fitted = Some(f),
            Ok(Err(e)) => fit_failure = Some(failure(&e)),
            Err(payload) => fit_failure = Some(panic_failure(payload.as_ref())),
        }
    }
    let model: Option<&Model> = match work {
        Work::Assign(m) => Some(m),
        Work::Run => fitted.as_ref().map(|f| &f.model),
    };
    let staging = Staging::create(out, started_secs)?;
    let run_id = staging.run_id();
    let context = Context {
        plan,
        locks: &lock,
        staging,
        run_id: run_id.clone(),
        param_hash: match model {
            Some(m) => assign_hash(plan, m.id()),
            None => param_hash(plan),
        },
        written: Mutex::new(Vec::new()),
        success: out.join(SUCCESS_FILE),
        success_removed: Mutex::new(false),
    };
    info!(run_id, output = %out.display(), partitions = plan.dataset.partitions.len(), "run started");

    let (partitions, clusterings) = if let Some(model) = model {
        let reports = assign_partitions(&context, model, options, global);
        if global {
            options.finish(&PartitionKey::all(&plan.dataset.partition_keys));
        }
        let committed = reports.iter().all(|r| {
            matches!(
                r.status,
                PartitionStatus::Succeeded | PartitionStatus::Skipped
            )
        });
        if global && committed {
            // `OUT/models/CURRENT` follows the labels: it moves only once they are committed.
            if let Err(e) = crate::model::publish(&out.join(MODELS_DIR), model.id()) {
                tracing::warn!(error = %error_chain(&e), "the labels are committed, but `models/CURRENT` could not be updated");
            }
        }
        let clusterings = fitted.as_ref().and_then(|f| f.clustering.clone());
        (reports, clusterings.into_iter().collect())
    } else if global {
        let outcome = fit_failure.unwrap_or(Outcome::Cancelled);
        let fingerprint = super::fit::plan_fingerprint(plan);
        let reports = plan
            .dataset
            .partitions
            .iter()
            .map(|p| context.report(p, &fingerprint, outcome.clone()))
            .collect();
        options.finish(&PartitionKey::all(&plan.dataset.partition_keys));
        (reports, Vec::new())
    } else {
        cluster_partitions(&context, options)
    };
    let Context {
        staging,
        written,
        success,
        ..
    } = context;
    staging.finish()?;

    let manifest = Manifest::of_run(RunRecord {
        spec: plan.spec.clone(),
        input: InputSummary {
            root: plan.dataset.root.display().to_string(),
            partition_keys: plan.dataset.partition_keys.clone(),
        },
        run_id,
        started_at,
        seconds_total: started.elapsed().as_secs_f64(),
        partitions,
        clusterings,
        staged: written
            .into_inner()
            .expect("no panic while holding the lock"),
        interrupted_by: options.interrupted(),
        model: model.map(|m| ModelRef {
            model_id: m.id().to_owned(),
            path: m.dir.display().to_string(),
            fitted: fitted.as_ref().is_some_and(|f| f.fitted),
        }),
    });
    if let Some(signal) = manifest.interrupted_by {
        tracing::warn!(
            signal,
            "run interrupted: partitions not started are cancelled"
        );
    }
    // A run that failed everywhere before committing anything changes nothing: the manifest
    // and `_SUCCESS` of the last run stay as they were (an interrupted run still records it).
    let wrote_output = manifest.changes_output();
    if wrote_output {
        crate::io::commit::crash_point("before-manifest");
        manifest.write(out)?;
        if manifest.status == RunStatus::Succeeded {
            crate::io::commit::crash_point("before-success");
            write_atomic(&success, b"")?;
        }
    } else {
        tracing::warn!("every partition failed before its commit: the output is unchanged");
    }
    lock.release()?;
    info!(status = ?manifest.status, seconds = manifest.seconds_total, "run finished");
    Ok(RunSummary {
        manifest,
        wrote_output,
    })
}
