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

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{Array, RecordBatch};
use rayon::prelude::*;
use tracing::info;

use super::JobError;
use super::assign::{Assigner, assign_partition};
use super::fingerprint::{assign_hash, input_fingerprint, param_hash, partition_model_id};
use super::pipeline::{self, Clustered, Loaded, Progress};
use super::plan::JobPlan;
use crate::cluster::Scope;
use crate::io::commit::{CommitRecord, Staging, committed, write_atomic};
use crate::io::lock::RunLocks;
use crate::io::{OutputError, Partition, PartitionKey, error_chain};
use crate::model::Model;
use crate::output::Table;
use crate::output::layout::{MODELS_DIR, SUCCESS_FILE};
use crate::output::manifest::{
    ClusteringReport, Drift, FORMAT_VERSION, InputSummary, Manifest, ModelRef, PartitionReport,
    PartitionStatus, RunStatus, Tool, WrittenFile,
};
use crate::output::spec::OutputMode;
use crate::output::tables;

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

/// How one partition ended, with what the report needs from it.
#[derive(Clone)]
enum Outcome {
    /// Labels committed: rows labelled, null texts skipped, empty documents, timings.
    Done {
        n_docs: usize,
        n_null: usize,
        n_empty: usize,
        seconds_read: f64,
        seconds_write: f64,
        model_id: String,
        drift: Option<Drift>,
    },
    Skipped,
    Cancelled,
    Failed {
        message: String,
        user_error: bool,
    },
}

/// Everything one run shares between partitions.
struct Context<'a> {
    plan: &'a JobPlan,
    locks: &'a RunLocks,
    staging: Staging,
    run_id: String,
    param_hash: String,
    /// Data files staged so far; only those of committed partitions reach the manifest.
    written: Mutex<Vec<WrittenFile>>,
    /// `OUT/_SUCCESS`, and whether this run has removed it yet: that happens just before its
    /// first commit, so a run that commits nothing leaves it alone.
    success: std::path::PathBuf,
    success_removed: Mutex<bool>,
}

impl Context<'_> {
    /// The one report of `partition`, built when its outcome is known.
    fn report(
        &self,
        partition: &Partition,
        fingerprint: &str,
        outcome: Outcome,
    ) -> PartitionReport {
        let mut report = PartitionReport {
            key: partition.key.to_string(),
            status: PartitionStatus::Cancelled,
            error: None,
            user_error: false,
            input_fingerprint: fingerprint.to_owned(),
            param_hash: self.param_hash.clone(),
            files: partition.files.clone(),
            n_rows: partition.n_rows(),
            n_docs: 0,
            n_null_texts: 0,
            n_empty_docs: 0,
            seconds_read: 0.0,
            seconds_write_labels: 0.0,
            model_id: None,
            drift: None,
        };
        match outcome {
            Outcome::Done {
                n_docs,
                n_null,
                n_empty,
                seconds_read,
                seconds_write,
                model_id,
                drift,
            } => {
                report.status = PartitionStatus::Succeeded;
                report.model_id = Some(model_id);
                report.drift = drift;
                report.n_docs = n_docs;
                report.n_null_texts = n_null;
                report.n_empty_docs = n_empty;
                report.seconds_read = seconds_read;
                report.seconds_write_labels = seconds_write;
            }
            Outcome::Skipped => report.status = PartitionStatus::Skipped,
            Outcome::Cancelled => {}
            Outcome::Failed {
                message,
                user_error,
            } => {
                tracing::error!(partition = %report.key, error = %message, "partition failed");
                report.status = PartitionStatus::Failed;
                report.error = Some(message);
                report.user_error = user_error;
            }
        }
        report
    }

    fn record(&self, key: &PartitionKey, fingerprint: &str) -> CommitRecord {
        CommitRecord {
            key: key.to_string(),
            input_fingerprint: fingerprint.to_owned(),
            param_hash: self.param_hash.clone(),
            run_id: self.run_id.clone(),
        }
    }

    /// True when `skip_existing` is on and `key` is committed from the same input and params.
    fn already_done(&self, key: &PartitionKey, fingerprint: &str, tables: &[Table]) -> bool {
        if self.plan.spec.output.mode != OutputMode::SkipExisting {
            return false;
        }
        match committed(self.plan.output(), key, tables) {
            Ok(record) => record.is_some_and(|r| {
                r.input_fingerprint == fingerprint && r.param_hash == self.param_hash
            }),
            Err(e) => {
                tracing::warn!(partition = %key, error = %e, "cannot read the commit record; the partition is redone");
                false
            }
        }
    }

    /// Writes `batch` as `table`'s staged file of partition `key`.
    fn stage(&self, table: Table, key: &PartitionKey, batch: &RecordBatch) -> Result<(), JobError> {
        let n_bytes = self.staging.write(table, key, batch)?;
        self.record_written(table, key, batch.num_rows() as u64, n_bytes);
        Ok(())
    }

    /// Notes a staged file of `table` for partition `key`, for the manifest.
    fn record_written(&self, table: Table, key: &PartitionKey, n_rows: u64, n_bytes: u64) {
        let committed = Staging::committed_file(self.plan.output(), table, key);
        let path = committed
            .strip_prefix(self.plan.output())
            .unwrap_or(&committed)
            .display()
            .to_string();
        self.written
            .lock()
            .expect("no panic while holding the lock")
            .push(WrittenFile {
                table: table.name().to_owned(),
                partition: key.to_string(),
                path,
                n_rows,
                n_bytes,
            });
    }

    /// Stages the centroids, keywords and similarity of a clustering, side by side; returns
    /// the seconds taken.
    fn stage_cluster_tables(&self, c: &Clustered) -> Result<f64, JobError> {
        let t = Instant::now();
        let centroids = || self.stage(Table::Centroids, &c.key, &c.centroids_table()?);
        let keywords = || self.stage(Table::Keywords, &c.key, &c.keywords_table()?);
        let similarity = || self.stage(Table::Similarity, &c.key, &c.similarity_table()?);
        let (a, (b, d)) = rayon::join(centroids, || rayon::join(keywords, similarity));
        a?;
        b?;
        d?;
        Ok(t.elapsed().as_secs_f64())
    }

    /// Stages the labels and the `clusters` table of a partition-scope clustering and
    /// returns its outcome, to be reported once the partition is committed. Each document's
    /// cluster and similarity are the fit's; the runner-up is the best other centroid.
    fn stage_labels(&self, loaded: &Loaded<'_>, c: &Clustered) -> Result<Outcome, JobError> {
        let t = Instant::now();
        let fit = &c.fit;
        let model_id = partition_model_id(&self.param_hash, &c.key, fit);
        let nearest = crate::cluster::nearest(&c.vectorized.matrix, &fit.centroids);
        let mut columns = tables::LabelColumns::of(&nearest, 0..fit.labels.len());
        for (i, &l) in fit.labels.iter().enumerate() {
            columns.cluster[i] = l;
            columns.similarity[i] = fit.similarity[i];
            if l < 0 {
                columns.second_cluster[i] = -1;
                columns.second_similarity[i] = 0.0;
            } else if nearest.labels[i] != l {
                columns.second_cluster[i] = nearest.labels[i];
                columns.second_similarity[i] = nearest.similarity[i];
            }
        }
        let key = &loaded.partition.key;
        self.stage(
            Table::Labels,
            key,
            &tables::labels(&loaded.ids, columns, &model_id)?,
        )?;
        let p05: Vec<f32> =
            crate::model::fit_clusters(fit.n_clusters, &fit.labels, &fit.similarity)
                .iter()
                .map(crate::model::FitCluster::p05)
                .collect();
        let mut sums = tables::ClusterSums::new(fit.n_clusters);
        tables::ClusterSums::add(&mut sums, &fit.labels, &fit.similarity, &p05);
        self.stage(Table::Clusters, key, &tables::clusters(&sums, &model_id)?)?;
        Ok(Outcome::Done {
            n_docs: loaded.ids.len(),
            n_null: loaded.n_null,
            n_empty: fit.labels.iter().filter(|&&l| l < 0).count(),
            seconds_read: loaded.seconds_read,
            seconds_write: t.elapsed().as_secs_f64(),
            model_id,
            drift: None,
        })
    }

    /// Commits partitions `keys` (each with its input fingerprint) together, if this run
    /// still holds its locks.
    fn commit(&self, keys: &[(&PartitionKey, &str)]) -> Result<(), JobError> {
        self.locks.check()?;
        {
            let mut removed = self.success_removed.lock().expect("no panic while held");
            if !*removed {
                crate::io::store::remove(&self.success).map_err(OutputError::from)?;
                *removed = true;
            }
        }
        let records: Vec<(PartitionKey, CommitRecord)> = keys
            .iter()
            .map(|&(k, fingerprint)| (k.clone(), self.record(k, fingerprint)))
            .collect();
        self.staging.commit(&Table::ALL, &records)?;
        Ok(())
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
    execute(plan, Work::Run, options)
}

/// Labels `plan`'s partitions against `model` (no refit), with the locks, staging, commit
/// records, output modes and exit codes of [`run`].
pub fn assign(
    plan: &JobPlan,
    model: &Model,
    options: RunOptions<'_>,
) -> Result<RunSummary, JobError> {
    model.check_vectorize(&plan.spec.vectorize, &plan.spec.explicit_vectorize)?;
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
        run_partitions(&context, options)
    };
    let Context {
        staging,
        written,
        success,
        ..
    } = context;
    staging.finish()?;

    let done = partitions
        .iter()
        .filter(|p| {
            matches!(
                p.status,
                PartitionStatus::Succeeded | PartitionStatus::Skipped
            )
        })
        .count();
    let status = if done == partitions.len() {
        RunStatus::Succeeded
    } else if done > 0 {
        RunStatus::Partial
    } else {
        RunStatus::Failed
    };
    // Files of partitions that failed after staging were never committed.
    let committed_keys: Vec<String> = partitions
        .iter()
        .filter(|p| p.status == PartitionStatus::Succeeded)
        .map(|p| p.key.clone())
        .collect();
    let mut files = written
        .into_inner()
        .expect("no panic while holding the lock");
    files.retain(|f| committed_keys.contains(&f.partition));
    files.sort_by(|a, b| (&a.table, &a.partition).cmp(&(&b.table, &b.partition)));
    let mut manifest = Manifest {
        format_version: FORMAT_VERSION,
        status,
        exit_code: 0,
        tool: Tool::current(),
        run_id,
        started_at,
        finished_at: SystemTime::now(),
        seconds_total: 0.0,
        spec: plan.spec.clone(),
        input: InputSummary {
            root: plan.dataset.root.display().to_string(),
            partition_keys: plan.dataset.partition_keys.clone(),
        },
        partitions,
        clusterings,
        files,
        interrupted_by: options.interrupted(),
        model: model.map(|m| ModelRef {
            model_id: m.id().to_owned(),
            path: m.dir.display().to_string(),
            fitted: fitted.as_ref().is_some_and(|f| f.fitted),
        }),
    };
    if let Some(signal) = manifest.interrupted_by {
        tracing::warn!(
            signal,
            "run interrupted: partitions not started are cancelled"
        );
    }
    manifest.exit_code = manifest.outcome_exit_code();
    manifest.seconds_total = started.elapsed().as_secs_f64();
    manifest.finished_at = SystemTime::now();
    // A run that failed everywhere before committing anything changes nothing: the manifest
    // and `_SUCCESS` of the last run stay as they were (an interrupted run still records it).
    let wrote_output = !(status == RunStatus::Failed
        && committed_keys.is_empty()
        && manifest.interrupted_by.is_none());
    if wrote_output {
        crate::io::commit::crash_point("before-manifest");
        manifest.write(out)?;
        if status == RunStatus::Succeeded {
            crate::io::commit::crash_point("before-success");
            write_atomic(&success, b"")?;
        }
    } else {
        tracing::warn!("every partition failed before its commit: the output is unchanged");
    }
    lock.release()?;
    info!(?status, seconds = manifest.seconds_total, "run finished");
    Ok(RunSummary {
        manifest,
        wrote_output,
    })
}

/// Rolls forward the commits of runs that died midway and removes their staging. A journal
/// whose partitions this run has not locked is rolled forward if their locks can be taken.
fn recover(
    out: &std::path::Path,
    locked: &[PartitionKey],
    started_secs: u64,
) -> Result<(), JobError> {
    // Which runs are alive is asked only when another run's staging is there (reading every
    // lock costs a request per partition on an object store); if it cannot be told, every
    // run counts as alive and nothing is removed.
    let live = std::cell::OnceCell::new();
    let is_live = |run: &str| {
        live.get_or_init(|| match crate::io::lock::live_runs(out) {
            Ok(runs) => Some(runs),
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell which runs are alive; no staging is removed");
                None
            }
        })
        .as_ref()
        .is_none_or(|runs| runs.contains(run))
    };
    let own = crate::io::lock::current_owner(started_secs).run_id();
    let mut extra: Vec<RunLocks> = Vec::new();
    let mut lock_for = |keys: &[PartitionKey]| {
        let missing: Vec<PartitionKey> = keys
            .iter()
            .filter(|k| !locked.contains(k))
            .cloned()
            .collect();
        if missing.is_empty() {
            return true;
        }
        match RunLocks::acquire(out, &missing, started_secs) {
            Ok(locks) => {
                extra.push(locks);
                true
            }
            Err(_) => false,
        }
    };
    Staging::recover(out, &own, &is_live, &mut lock_for)?;
    for locks in extra {
        locks.release()?;
    }
    Ok(())
}

type Reports = (Vec<PartitionReport>, Vec<ClusteringReport>);

/// The failure of a caught panic.
fn panic_failure(payload: &(dyn std::any::Any + Send)) -> Outcome {
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
fn failure(error: &JobError) -> Outcome {
    Outcome::Failed {
        message: error_chain(error),
        user_error: error.is_user_error(),
    }
}

/// `f` of every partition, in order, run in parallel in waves of 2 × threads. A partition job
/// that waits inside a nested parallel loop steals other queued jobs onto its own stack; with
/// every partition queued at once (10,000 one-document partitions) that nesting overflowed the
/// stack.
fn in_waves<T: Send>(partitions: &[Partition], f: impl Fn(&Partition) -> T + Sync) -> Vec<T> {
    let wave = 2 * rayon::current_num_threads();
    partitions
        .chunks(wave)
        .flat_map(|wave| wave.par_iter().map(&f).collect::<Vec<_>>())
        .collect()
}

fn run_partitions(context: &Context<'_>, options: RunOptions<'_>) -> Reports {
    let plan = context.plan;
    let stop = AtomicBool::new(false);
    let results = in_waves(&plan.dataset.partitions, |partition| {
        let result = run_one(context, options, partition, &stop);
        options.finish(&partition.key);
        result
    });
    let (partitions, clusterings): (Vec<_>, Vec<_>) = results.into_iter().unzip();
    (partitions, clusterings.into_iter().flatten().collect())
}

/// One partition in `partition` scope: cancelled, failed at once, skipped, or processed and
/// committed.
fn run_one(
    context: &Context<'_>,
    options: RunOptions<'_>,
    partition: &Partition,
    stop: &AtomicBool,
) -> (PartitionReport, Option<ClusteringReport>) {
    let plan = context.plan;
    let fingerprint = input_fingerprint(plan, partition);
    let report = |outcome| context.report(partition, &fingerprint, outcome);
    if stop.load(Ordering::SeqCst) || options.interrupted().is_some() {
        return (report(Outcome::Cancelled), None);
    }
    let outcome = if let Some(problem) = &partition.problem {
        Outcome::Failed {
            message: problem.clone(),
            user_error: true,
        }
    } else if context.already_done(&partition.key, &fingerprint, &Table::ALL) {
        info!(partition = %partition.key, "already committed from the same input and parameters; skipped");
        return (report(Outcome::Skipped), None);
    } else {
        let processed = catch_unwind(AssertUnwindSafe(|| {
            let run = pipeline::partition(plan, options.progress, partition)?;
            pipeline::stage(options.progress, &partition.key, "write");
            let (labels, write_seconds) = rayon::join(
                || context.stage_labels(&run.loaded, &run.clustered),
                || context.stage_cluster_tables(&run.clustered),
            );
            let (labels, write_seconds) = (labels?, write_seconds?);
            context.commit(&[(&partition.key, &fingerprint)])?;
            Ok::<_, JobError>((
                labels,
                run.clustered.report(plan.cluster.k(), write_seconds),
            ))
        }));
        match processed {
            Ok(Ok((done, clustering))) => return (report(done), Some(clustering)),
            Ok(Err(error)) => failure(&error),
            Err(payload) => panic_failure(payload.as_ref()),
        }
    };
    if options.fail_fast {
        stop.store(true, Ordering::SeqCst);
    }
    (report(outcome), None)
}

/// Assigns every partition to `model`. Each partition is committed when done, or with
/// `together` (`run` in `global` scope) all of them in one commit at the end, so a crash
/// never leaves some partitions on a new model and others on the old one.
fn assign_partitions(
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
    let stop = AtomicBool::new(false);
    let tables = [Table::Labels, Table::Clusters];
    let one = |partition: &Partition| -> (String, Outcome, bool) {
        let fingerprint = input_fingerprint(plan, partition);
        if stop.load(Ordering::SeqCst) || options.interrupted().is_some() {
            return (fingerprint, Outcome::Cancelled, false);
        }
        if let Some(problem) = &partition.problem {
            if options.fail_fast {
                stop.store(true, Ordering::SeqCst);
            }
            let failed = Outcome::Failed {
                message: problem.clone(),
                user_error: true,
            };
            return (fingerprint, failed, false);
        }
        if context.already_done(&partition.key, &fingerprint, &tables) {
            info!(partition = %partition.key, "already committed with the same model and input; skipped");
            return (fingerprint, Outcome::Skipped, false);
        }
        let processed = catch_unwind(AssertUnwindSafe(|| {
            pipeline::stage(options.progress, &partition.key, "assign");
            let a = assign_partition(&context.staging, &plan.spec.input, &assigner, partition)?;
            context.record_written(
                Table::Labels,
                &partition.key,
                a.labels_file.0,
                a.labels_file.1,
            );
            context.record_written(
                Table::Clusters,
                &partition.key,
                a.clusters_file.0,
                a.clusters_file.1,
            );
            if !together {
                context.commit(&[(&partition.key, &fingerprint)])?;
            }
            Ok::<_, JobError>(Outcome::Done {
                n_docs: a.n_docs,
                n_null: a.n_null,
                n_empty: a.n_empty,
                seconds_read: a.seconds_read,
                seconds_write: a.seconds_total - a.seconds_read,
                model_id: model.id().to_owned(),
                drift: Some(a.drift),
            })
        }));
        let outcome = match processed {
            Ok(Ok(done)) => return (fingerprint, done, true),
            Ok(Err(error)) => failure(&error),
            Err(payload) => panic_failure(payload.as_ref()),
        };
        if options.fail_fast {
            stop.store(true, Ordering::SeqCst);
        }
        (fingerprint, outcome, false)
    };
    let mut results = in_waves(&plan.dataset.partitions, |partition| {
        let result = one(partition);
        if !together {
            options.finish(&partition.key);
        }
        result
    });
    if together {
        let staged: Vec<(&PartitionKey, &str)> = plan
            .dataset
            .partitions
            .iter()
            .zip(&results)
            .filter(|(_, (_, _, staged))| *staged)
            .map(|(p, (fingerprint, _, _))| (&p.key, fingerprint.as_str()))
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
            for (_, outcome, staged) in &mut results {
                if *staged {
                    *outcome = failed.clone();
                }
            }
        }
    }
    plan.dataset
        .partitions
        .iter()
        .zip(results)
        .map(|(p, (fingerprint, outcome, _))| context.report(p, &fingerprint, outcome))
        .collect()
}
