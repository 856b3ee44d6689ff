//! Running a plan: read, vectorise, cluster, label, stage, commit.
//!
//! # Parallelism
//! In `partition` scope, partitions run concurrently on the rayon pool and each stage inside
//! a partition is parallel too. In `global` scope the partitions are read concurrently, then
//! one vocabulary and one clustering cover them all. Every random draw comes from an RNG
//! seeded by (seed, clustering key), so outputs do not depend on the thread count.
//!
//! # Commit and failure isolation
//! A run takes the output lock, removes staging left by killed runs, and drops `_SUCCESS`.
//! Each partition is staged and committed as soon as it is done (with its commit record), so
//! a run killed midway keeps the partitions it finished and `skip_existing` redoes only the
//! rest. A partition that fails, with an error or a panic, is recorded in the manifest and the
//! others go on (unless `fail_fast`). The manifest is always written, atomically; `_SUCCESS`
//! only when every partition succeeded or was skipped. In `global` scope the clustering covers
//! every partition, so it succeeds or fails as a whole.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{Array, BooleanArray, StringArray, StringViewArray};
use arrow::compute::{cast, filter};
use arrow::datatypes::DataType;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tracing::info;

use super::JobError;
use super::manifest::{
    ClusterReport, ClusteringReport, InputSummary, Manifest, PartitionReport, PartitionStatus,
    RunStatus, StageSeconds, Tool,
};
use super::plan::JobPlan;
use super::spec::OutputMode;
use crate::cluster::{self, KMeansFit, Scope};
use crate::io::commit::{CommitRecord, Staging, committed, write_atomic};
use crate::io::lock::RunLocks;
use crate::io::write::{batch, f32s, i32s, i64s, strings, write_parquet};
use crate::io::{OutputError, Partition, PartitionKey, Table, read_partition};
use crate::label;
use crate::text::{self, Vectorized};

/// Second-best cosine within this of the best makes a document ambiguous.
const AMBIGUITY_MARGIN: f32 = 0.01;

/// Receives progress events, for a progress bar. Called from worker threads.
pub trait Progress: Sync {
    /// The run will process `n_units` units: partitions, or one in `global` scope.
    fn start(&self, n_units: usize);
    /// A stage (`read`, `vectorize`, `cluster`, `write`) of a unit began.
    fn stage(&self, unit: &str, stage: &'static str);
    /// A unit is done, whatever its status.
    fn finish(&self, unit: &str);
}

/// How to run.
#[derive(Clone, Copy, Default)]
pub struct RunOptions<'a> {
    /// Stop starting partitions after the first failure.
    pub fail_fast: bool,
    /// Where to report progress, if anywhere.
    pub progress: Option<&'a dyn Progress>,
}

impl RunOptions<'_> {
    fn stage(&self, unit: &PartitionKey, stage: &'static str) {
        if let Some(p) = self.progress {
            p.stage(&unit.to_string(), stage);
        }
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
}

impl RunSummary {
    /// True when every failed partition failed because of its input (retrying will not help).
    pub fn failures_are_user_errors(&self) -> bool {
        self.manifest
            .partitions
            .iter()
            .filter(|p| p.status == PartitionStatus::Failed)
            .all(|p| p.user_error)
    }
}

/// One partition's documents with null texts removed.
struct Loaded<'p> {
    partition: &'p Partition,
    ids: StringViewArray,
    texts: StringViewArray,
    n_null: usize,
    seconds_read: f64,
}

impl Loaded<'_> {
    fn texts(&self) -> impl Iterator<Item = &str> {
        // Nulls were filtered out on load.
        self.texts.iter().map(|t| t.unwrap_or_default())
    }
}

/// One clustering's results, before writing.
struct Clustered {
    key: PartitionKey,
    vectorized: Vectorized,
    fit: KMeansFit,
    merge: Option<cluster::MergeOutcome>,
    keywords: Vec<label::Keyword>,
    seconds: StageSeconds,
}

/// Derives the RNG seed of one clustering from the job seed and its key.
pub fn derive_seed(seed: u64, key: &PartitionKey) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(key.to_string().as_bytes());
    let digest = h.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("digest has 32 bytes"))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 over a partition's files: path relative to the input root, size and mtime.
fn input_fingerprint(plan: &JobPlan, partition: &Partition) -> String {
    let mut h = Sha256::new();
    for f in &partition.files {
        let relative = f.path.strip_prefix(&plan.dataset.root).unwrap_or(&f.path);
        h.update(relative.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(f.size.to_le_bytes());
        h.update(f.mtime_ns.to_le_bytes());
    }
    hex(&h.finalize())
}

/// sha256 over everything that shapes the outputs: input columns, vectorise, cluster and
/// keyword parameters, and the tool version.
fn param_hash(plan: &JobPlan) -> String {
    let spec = &plan.spec;
    let shaping = serde_json::json!({
        "tool": env!("CARGO_PKG_VERSION"),
        "text_column": spec.input.text_column,
        "id_column": spec.input.id_column,
        "vectorize": spec.vectorize,
        "cluster": spec.cluster,
        "keywords": spec.keywords,
    });
    hex(&Sha256::digest(shaping.to_string().as_bytes()))
}

/// Everything one run shares between partitions.
struct Context<'a> {
    plan: &'a JobPlan,
    staging: Staging,
    run_id: String,
    param_hash: String,
}

impl Context<'_> {
    fn new_report(&self, partition: &Partition, fingerprint: String) -> PartitionReport {
        PartitionReport {
            key: partition.key.to_string(),
            status: PartitionStatus::Cancelled,
            error: None,
            user_error: false,
            input_fingerprint: fingerprint,
            param_hash: self.param_hash.clone(),
            files: partition.files.clone(),
            n_rows: partition.n_rows(),
            n_docs: 0,
            n_null_texts: 0,
            n_empty_docs: 0,
            seconds_read: 0.0,
            seconds_write_labels: 0.0,
        }
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
        self.plan.spec.output.mode == OutputMode::SkipExisting
            && committed(self.plan.output(), key, tables).is_some_and(|r| {
                r.input_fingerprint == fingerprint && r.param_hash == self.param_hash
            })
    }
}

/// Runs `plan` to completion. Partition failures are reported in the summary's manifest; an
/// `Err` means the run could not start or finish at all (lock held, output unwritable).
pub fn run(plan: &JobPlan, options: RunOptions<'_>) -> Result<RunSummary, JobError> {
    let started = Instant::now();
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let out = plan.output();
    let mut lock_keys: Vec<PartitionKey> = plan
        .dataset
        .partitions
        .iter()
        .map(|p| p.key.clone())
        .collect();
    if plan.cluster.scope() == Scope::Global {
        lock_keys.push(PartitionKey::all(&plan.dataset.partition_keys));
    }
    let lock = RunLocks::acquire(out, &lock_keys, started_at)?;
    Staging::remove_stale(out)?;
    if plan.spec.output.mode == OutputMode::ErrorIfExists {
        for key in &lock_keys {
            for table in Table::ALL {
                let path = Staging::committed_file(out, table, key);
                if path.exists() {
                    return Err(JobError::OutputExists { path });
                }
            }
        }
    }
    let success = out.join("_SUCCESS");
    if success.exists() {
        fs_err::remove_file(&success).map_err(OutputError::from)?;
    }
    let staging = Staging::create(out, started_at)?;
    let run_id = staging.run_id();
    let context = Context {
        plan,
        staging,
        run_id: run_id.clone(),
        param_hash: param_hash(plan),
    };
    info!(run_id, output = %out.display(), partitions = plan.dataset.partitions.len(), "run started");

    if let Some(p) = options.progress {
        p.start(match plan.cluster.scope() {
            Scope::Partition => plan.dataset.partitions.len(),
            Scope::Global => 1,
        });
    }
    let (partitions, clusterings) = match plan.cluster.scope() {
        Scope::Partition => run_partitions(&context, options),
        Scope::Global => {
            let reports = run_global(&context, options);
            options.finish(&PartitionKey::all(&plan.dataset.partition_keys));
            reports
        }
    };
    context.staging.finish()?;

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
    let manifest = Manifest {
        status,
        tool: Tool::current(),
        run_id,
        started_at,
        spec: plan.spec.clone(),
        input: InputSummary {
            root: plan.dataset.root.display().to_string(),
            partition_keys: plan.dataset.partition_keys.clone(),
        },
        partitions,
        clusterings,
        seconds_total: started.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    write_atomic(&out.join("manifest.json"), &json)?;
    if status == RunStatus::Succeeded {
        write_atomic(&success, b"")?;
    }
    lock.release()?;
    info!(?status, seconds = manifest.seconds_total, "run finished");
    Ok(RunSummary { manifest })
}

type Reports = (Vec<PartitionReport>, Vec<ClusteringReport>);

/// Records a partition's failure and logs it.
fn mark_failed(report: &mut PartitionReport, message: String, user_error: bool) {
    tracing::error!(partition = %report.key, error = %message, "partition failed");
    report.status = PartitionStatus::Failed;
    report.error = Some(message);
    report.user_error = user_error;
}

/// The failure message of a caught panic.
fn panic_failure(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error (panic): {message}")
}

fn run_partitions(context: &Context<'_>, options: RunOptions<'_>) -> Reports {
    let plan = context.plan;
    let stop = AtomicBool::new(false);
    // Partitions go to the pool in waves. A partition job that waits inside a nested parallel
    // loop steals other queued jobs onto its own stack; with every partition queued at once
    // (10,000 one-document partitions) that nesting overflowed the stack.
    let wave = 2 * rayon::current_num_threads();
    let results: Vec<(PartitionReport, Option<ClusteringReport>)> = plan
        .dataset
        .partitions
        .chunks(wave)
        .flat_map(|wave| {
            wave.par_iter()
                .map(|partition| {
                    let result = run_one(context, options, partition, &stop);
                    options.finish(&partition.key);
                    result
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut partitions = Vec::with_capacity(results.len());
    let mut clusterings = Vec::new();
    for (p, c) in results {
        partitions.push(p);
        clusterings.extend(c);
    }
    (partitions, clusterings)
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
    let mut report = context.new_report(partition, fingerprint.clone());
    if stop.load(Ordering::SeqCst) {
        return (report, None);
    }
    let (message, user_error) = if let Some(problem) = &partition.problem {
        (problem.clone(), true)
    } else {
        if context.already_done(&partition.key, &fingerprint, &Table::ALL) {
            info!(partition = %partition.key, "already committed from the same input and parameters; skipped");
            report.status = PartitionStatus::Skipped;
            return (report, None);
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let (loaded_report, clustering) = process_partition(context, options, partition)?;
            context.staging.commit_with_record(
                &partition.key,
                &context.record(&partition.key, &fingerprint),
            )?;
            Ok::<_, JobError>((loaded_report, clustering))
        }));
        match outcome {
            Ok(Ok((done, clustering))) => {
                let report = PartitionReport {
                    status: PartitionStatus::Succeeded,
                    input_fingerprint: report.input_fingerprint,
                    ..done
                };
                return (report, Some(clustering));
            }
            Ok(Err(error)) => (error.to_string(), error.is_user_error()),
            Err(payload) => (panic_failure(payload.as_ref()), false),
        }
    };
    mark_failed(&mut report, message, user_error);
    if options.fail_fast {
        stop.store(true, Ordering::SeqCst);
    }
    (report, None)
}

/// Reads, clusters and stages one partition in `partition` scope.
fn process_partition(
    context: &Context<'_>,
    options: RunOptions<'_>,
    partition: &Partition,
) -> Result<(PartitionReport, ClusteringReport), JobError> {
    let plan = context.plan;
    // Failpoint for the test suite, compiled only into debug builds: panic in one partition.
    #[cfg(debug_assertions)]
    if std::env::var("TEXTCLUSTER_FAILPOINT_PANIC").is_ok_and(|k| k == partition.key.to_string()) {
        panic!(
            "failpoint TEXTCLUSTER_FAILPOINT_PANIC in `{}`",
            partition.key
        );
    }
    options.stage(&partition.key, "read");
    let loaded = load(plan, partition)?;
    let texts: Vec<&str> = loaded.texts().collect();
    let clustered = cluster_texts(plan, options, partition.key.clone(), &texts);
    options.stage(&partition.key, "write");
    let mut report = write_labels(
        context,
        &loaded,
        &clustered.fit.labels,
        &clustered.fit.similarity,
        0,
    )?;
    report.n_empty_docs = clustered.vectorized.n_empty;
    let clustering = write_cluster_tables(plan, &context.staging, &clustered)?;
    Ok((report, clustering))
}

fn run_global(context: &Context<'_>, options: RunOptions<'_>) -> Reports {
    let plan = context.plan;
    let fingerprints: Vec<String> = plan
        .dataset
        .partitions
        .iter()
        .map(|p| input_fingerprint(plan, p))
        .collect();
    let fingerprint = hex(&Sha256::digest(fingerprints.join("\n").as_bytes()));
    let all = PartitionKey::all(&plan.dataset.partition_keys);
    let mut reports: Vec<PartitionReport> = plan
        .dataset
        .partitions
        .iter()
        .map(|p| context.new_report(p, fingerprint.clone()))
        .collect();
    if let Some(bad) = plan.dataset.partitions.iter().find(|p| p.problem.is_some()) {
        let message = format!(
            "global scope needs every partition, and `{}` cannot be read: {}",
            bad.key,
            bad.problem.as_deref().unwrap_or_default()
        );
        for r in &mut reports {
            mark_failed(r, message.clone(), true);
        }
        return (reports, Vec::new());
    }
    let model_tables = [Table::Centroids, Table::Keywords, Table::Similarity];
    if context.already_done(&all, &fingerprint, &model_tables)
        && plan
            .dataset
            .partitions
            .iter()
            .all(|p| context.already_done(&p.key, &fingerprint, &[Table::Labels]))
    {
        info!("every partition already committed from the same input and parameters; skipped");
        for r in &mut reports {
            r.status = PartitionStatus::Skipped;
        }
        return (reports, Vec::new());
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<_, JobError> {
        let (done, clustering) = process_global(context, options, &all)?;
        for p in &plan.dataset.partitions {
            context
                .staging
                .commit_with_record(&p.key, &context.record(&p.key, &fingerprint))?;
        }
        context
            .staging
            .commit_with_record(&all, &context.record(&all, &fingerprint))?;
        Ok((done, clustering))
    }));
    match outcome {
        Ok(Ok((done, clustering))) => {
            let reports = done
                .into_iter()
                .map(|r| PartitionReport {
                    status: PartitionStatus::Succeeded,
                    input_fingerprint: fingerprint.clone(),
                    ..r
                })
                .collect();
            (reports, vec![clustering])
        }
        Ok(Err(error)) => {
            let (message, user_error) = (error.to_string(), error.is_user_error());
            for r in &mut reports {
                mark_failed(r, message.clone(), user_error);
            }
            (reports, Vec::new())
        }
        Err(payload) => {
            let message = panic_failure(payload.as_ref());
            for r in &mut reports {
                mark_failed(r, message.clone(), false);
            }
            (reports, Vec::new())
        }
    }
}

/// Reads every partition, clusters them together and stages all tables.
fn process_global(
    context: &Context<'_>,
    options: RunOptions<'_>,
    all: &PartitionKey,
) -> Result<(Vec<PartitionReport>, ClusteringReport), JobError> {
    let plan = context.plan;
    options.stage(all, "read");
    let mut loaded: Vec<Loaded<'_>> = plan
        .dataset
        .partitions
        .par_iter()
        .map(|p| load(plan, p))
        .collect::<Result<_, _>>()?;
    options.stage(all, "vectorize");
    let t = Instant::now();
    let counted = {
        let texts: Vec<&str> = loaded.iter().flat_map(Loaded::texts).collect();
        text::count(&plan.vectorize, &texts)
    };
    // The texts are not needed again: free them before the vocabulary and the matrix are
    // built (1.7 GB per million documents of the generated corpus).
    let mut offsets = Vec::with_capacity(loaded.len());
    let mut offset = 0;
    for l in &mut loaded {
        offsets.push(offset);
        offset += l.texts.len();
        l.texts = StringViewArray::new_null(0);
    }
    let vectorized = counted.fit_transform(&plan.vectorize);
    let seconds = vectorized_seconds(all, &vectorized, t);
    let clustered = cluster_vectorized(plan, options, all.clone(), vectorized, seconds);
    options.stage(all, "write");

    // The label files and the cluster tables are independent: written side by side.
    let (labels, similarity) = (&clustered.fit.labels, &clustered.fit.similarity);
    let (partitions, clustering) = rayon::join(
        || {
            loaded
                .par_iter()
                .zip(&offsets)
                .map(|(l, &start)| write_labels(context, l, labels, similarity, start))
                .collect::<Result<Vec<PartitionReport>, _>>()
        },
        || write_cluster_tables(plan, &context.staging, &clustered),
    );
    let mut partitions = partitions?;
    for (report, (l, &start)) in partitions.iter_mut().zip(loaded.iter().zip(&offsets)) {
        let n = l.ids.len();
        report.n_empty_docs = labels[start..start + n].iter().filter(|&&c| c < 0).count();
    }
    Ok((partitions, clustering?))
}

fn load<'p>(plan: &JobPlan, partition: &'p Partition) -> Result<Loaded<'p>, JobError> {
    let start = Instant::now();
    let docs = read_partition(
        partition,
        &plan.spec.input.id_column,
        &plan.spec.input.text_column,
    )?;
    let n_null = docs.texts.null_count();
    let (ids, texts) = if n_null > 0 {
        let keep: BooleanArray = docs.texts.iter().map(|t| Some(t.is_some())).collect();
        let pick = |a: &StringViewArray| {
            filter(a, &keep)
                .expect("filter of equal-length arrays")
                .as_any()
                .downcast_ref::<StringViewArray>()
                .expect("filter keeps the type")
                .clone()
        };
        (pick(&docs.ids), pick(&docs.texts))
    } else {
        (docs.ids, docs.texts)
    };
    if n_null > 0 {
        tracing::warn!(partition = %partition.key, n_null, "skipped rows with a null text");
    }
    info!(partition = %partition.key, n_docs = texts.len(), "read");
    Ok(Loaded {
        partition,
        ids,
        texts,
        n_null,
        seconds_read: start.elapsed().as_secs_f64(),
    })
}

fn cluster_texts(
    plan: &JobPlan,
    options: RunOptions<'_>,
    key: PartitionKey,
    texts: &[&str],
) -> Clustered {
    options.stage(&key, "vectorize");
    let t = Instant::now();
    let vectorized = text::fit_transform(&plan.vectorize, texts);
    let seconds = vectorized_seconds(&key, &vectorized, t);
    cluster_vectorized(plan, options, key, vectorized, seconds)
}

/// Logs a finished vectorisation that started at `t`; the stage times so far.
fn vectorized_seconds(
    key: &PartitionKey,
    vectorized: &text::Vectorized,
    t: Instant,
) -> StageSeconds {
    let seconds = StageSeconds {
        vectorize: t.elapsed().as_secs_f64(),
        ..StageSeconds::default()
    };
    info!(
        partition = %key,
        n_docs = vectorized.matrix.rows(),
        n_terms = vectorized.vocabulary.len(),
        nnz = vectorized.matrix.nnz(),
        seconds = seconds.vectorize,
        "vectorised"
    );
    seconds
}

fn cluster_vectorized(
    plan: &JobPlan,
    options: RunOptions<'_>,
    key: PartitionKey,
    vectorized: text::Vectorized,
    mut seconds: StageSeconds,
) -> Clustered {
    options.stage(&key, "cluster");
    let t = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(plan.cluster.seed(), &key));
    let fit = cluster::fit(&vectorized.matrix, &plan.cluster, &mut rng);
    if fit.n_clusters < plan.cluster.k() {
        tracing::warn!(
            partition = %key,
            k = plan.cluster.k(),
            n_clusters = fit.n_clusters,
            "k capped at the number of documents with terms"
        );
    }
    let (fit, merge) = cluster::merge_fit(&vectorized.matrix, fit, &plan.cluster);
    if let Some(o) = &merge {
        info!(partition = %key, n_before = o.n_before, n_after = o.n_after, refine_rounds = o.refine_rounds, "merged close clusters");
    }
    seconds.cluster = t.elapsed().as_secs_f64();
    info!(partition = %key, n_iter = fit.n_iter, seconds = seconds.cluster, "clustered");

    let t = Instant::now();
    let keywords = label::keywords(&fit.centroids, &fit.sizes, &plan.keywords);
    seconds.keywords = t.elapsed().as_secs_f64();
    Clustered {
        key,
        vectorized,
        fit,
        merge,
        keywords,
        seconds,
    }
}

fn batch_error(table: Table) -> impl FnOnce(arrow::error::ArrowError) -> OutputError {
    move |source| OutputError::Batch {
        table: table.name(),
        source,
    }
}

/// Stages the labels of one input partition: rows `start..` of the clustering's labels.
fn write_labels(
    context: &Context<'_>,
    loaded: &Loaded<'_>,
    labels: &[i32],
    similarity: &[f32],
    start: usize,
) -> Result<PartitionReport, JobError> {
    let t = Instant::now();
    let n = loaded.ids.len();
    let ids = cast(&loaded.ids, &DataType::Utf8).map_err(batch_error(Table::Labels))?;
    debug_assert!(ids.as_any().downcast_ref::<StringArray>().is_some());
    let b = batch(
        Table::Labels,
        vec![
            ids,
            i32s(labels[start..start + n].to_vec()),
            f32s(similarity[start..start + n].to_vec()),
        ],
    )
    .map_err(batch_error(Table::Labels))?;
    write_parquet(
        &context.staging.file(Table::Labels, &loaded.partition.key),
        &b,
    )?;
    Ok(PartitionReport {
        n_docs: n,
        n_null_texts: loaded.n_null,
        seconds_read: loaded.seconds_read,
        seconds_write_labels: t.elapsed().as_secs_f64(),
        ..context.new_report(loaded.partition, String::new())
    })
}

/// Stages centroids, keywords and similarity of one clustering and reports on it.
fn write_cluster_tables(
    plan: &JobPlan,
    staging: &Staging,
    c: &Clustered,
) -> Result<ClusteringReport, JobError> {
    let Clustered {
        key,
        vectorized,
        fit,
        merge,
        keywords,
        seconds,
    } = c;
    let t = Instant::now();
    let vocabulary = &vectorized.vocabulary;
    let k = fit.n_clusters;

    let write_centroids = || -> Result<(), JobError> {
        let (mut cl, mut size, mut term, mut weight) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for c in 0..k {
            let row = fit.centroids.row(c);
            for (&j, &w) in row.indices.iter().zip(row.values) {
                cl.push(c as i32);
                size.push(fit.sizes[c] as i64);
                term.push(vocabulary.term(j as usize));
                weight.push(w);
            }
        }
        let centroids = batch(
            Table::Centroids,
            vec![i32s(cl), i64s(size), strings(term), f32s(weight)],
        )
        .map_err(batch_error(Table::Centroids))?;
        Ok(write_parquet(
            &staging.file(Table::Centroids, key),
            &centroids,
        )?)
    };
    let write_keywords = || -> Result<(), JobError> {
        let kw = batch(
            Table::Keywords,
            vec![
                i32s(keywords.iter().map(|k| k.cluster as i32).collect()),
                i32s(keywords.iter().map(|k| k.rank as i32).collect()),
                strings(keywords.iter().map(|k| vocabulary.term(k.term_idx))),
                f32s(keywords.iter().map(|k| k.score).collect()),
                f32s(keywords.iter().map(|k| k.coverage).collect()),
            ],
        )
        .map_err(batch_error(Table::Keywords))?;
        Ok(write_parquet(&staging.file(Table::Keywords, key), &kw)?)
    };
    let write_similarity = || -> Result<(), JobError> {
        let table = cluster::similarity_table(&fit.centroids);
        let sim = batch(
            Table::Similarity,
            vec![
                i32s(table.iter().map(|r| r.0).collect()),
                i32s(table.iter().map(|r| r.1).collect()),
                f32s(table.iter().map(|r| r.2).collect()),
            ],
        )
        .map_err(batch_error(Table::Similarity))?;
        Ok(write_parquet(&staging.file(Table::Similarity, key), &sim)?)
    };
    // Three independent files, written side by side.
    let (centroids, (keywords, similarity)) = rayon::join(write_centroids, || {
        rayon::join(write_keywords, write_similarity)
    });
    centroids?;
    keywords?;
    similarity?;
    let seconds = StageSeconds {
        write: t.elapsed().as_secs_f64(),
        ..*seconds
    };

    Ok(ClusteringReport {
        key: key.to_string(),
        n_docs: vectorized.matrix.rows(),
        n_empty_docs: vectorized.n_empty,
        n_terms: vocabulary.len(),
        nnz: vectorized.matrix.nnz(),
        k_requested: plan.cluster.k(),
        n_clusters: k,
        n_iter: fit.n_iter,
        objective: fit.objective.clone(),
        init: fit.init.clone(),
        n_reseeded: fit.n_reseeded,
        mean_centroid_nnz: if k == 0 {
            0.0
        } else {
            (0..k).map(|c| fit.centroids.nnz(c)).sum::<usize>() as f64 / k as f64
        },
        merge: merge.clone(),
        clusters: cluster_reports(fit),
        seconds,
    })
}

fn cluster_reports(fit: &KMeansFit) -> Vec<ClusterReport> {
    let k = fit.n_clusters;
    let mut sum = vec![0.0f64; k];
    let mut ambiguous = vec![0u64; k];
    for ((&l, &s), &s2) in fit
        .labels
        .iter()
        .zip(&fit.similarity)
        .zip(&fit.second_similarity)
    {
        if l >= 0 {
            sum[l as usize] += f64::from(s);
            ambiguous[l as usize] += u64::from(k > 1 && s - s2 <= AMBIGUITY_MARGIN);
        }
    }
    (0..k)
        .map(|c| {
            let size = fit.sizes[c];
            let share = |x: f64| if size == 0 { 0.0 } else { x / size as f64 };
            ClusterReport {
                cluster: c as i32,
                size,
                mean_similarity: share(sum[c]),
                ambiguous_share: share(ambiguous[c] as f64),
            }
        })
        .collect()
}
