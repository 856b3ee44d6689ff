//! Running a plan: read, vectorise, cluster, label, stage, commit.
//!
//! # Parallelism
//! In `partition` scope, partitions run concurrently on the rayon pool and each stage inside
//! a partition is parallel too. In `global` scope the partitions are read concurrently, then
//! one vocabulary and one clustering cover them all. Every random draw comes from an RNG
//! seeded by (seed, clustering key), so outputs do not depend on the thread count.
//!
//! # Commit
//! All outputs are staged first. Only when every clustering succeeded are the partitions
//! committed, then `manifest.json` is written atomically and `_SUCCESS` last. On error the
//! staging directory is removed and nothing already committed changes.

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
    ClusterReport, ClusteringReport, InputSummary, Manifest, MergeReport, PartitionReport,
    RunStatus, StageSeconds, Tool,
};
use super::plan::JobPlan;
use crate::cluster::{self, KMeansFit, Scope};
use crate::io::commit::{Staging, write_atomic};
use crate::io::write::{batch, f32s, i32s, i64s, strings, write_parquet};
use crate::io::{OutputError, Partition, PartitionKey, Table, read_partition};
use crate::label;
use crate::text::{self, Vectorized};

/// Second-best cosine within this of the best makes a document ambiguous.
const AMBIGUITY_MARGIN: f32 = 0.01;

/// What a finished run reports to the caller.
#[derive(Debug)]
pub struct RunSummary {
    pub manifest: Manifest,
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
    merge: Option<MergeReport>,
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

/// Runs `plan` to completion.
pub fn run(plan: &JobPlan) -> Result<RunSummary, JobError> {
    let started = Instant::now();
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let run_id = format!("{}-{}", started_at, std::process::id());
    let out = plan.output();
    let staging = Staging::create(out, &run_id)?;
    info!(run_id, output = %out.display(), partitions = plan.dataset.partitions.len(), "run started");

    let result = match plan.cluster.scope() {
        Scope::Partition => run_partitions(plan, &staging),
        Scope::Global => run_global(plan, &staging),
    };
    let (partitions, clusterings) = match result {
        Ok(r) => r,
        Err(e) => {
            if let Err(cleanup) = staging.finish() {
                tracing::warn!(error = %cleanup, "could not remove the staging directory");
            }
            return Err(e);
        }
    };

    // Commit: drop the old success marker, move partitions into place, manifest, marker.
    let success = out.join("_SUCCESS");
    if success.exists() {
        fs_err::remove_file(&success).map_err(OutputError::from)?;
    }
    let mut keys: Vec<PartitionKey> = plan
        .dataset
        .partitions
        .iter()
        .map(|p| p.key.clone())
        .collect();
    if plan.cluster.scope() == Scope::Global {
        keys.push(PartitionKey::all(&plan.dataset.partition_keys));
    }
    for key in &keys {
        staging.commit(key)?;
    }
    staging.finish()?;
    let manifest = Manifest {
        status: RunStatus::Succeeded,
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
    write_atomic(&success, b"")?;
    info!(seconds = manifest.seconds_total, "run succeeded");
    Ok(RunSummary { manifest })
}

type Reports = (Vec<PartitionReport>, Vec<ClusteringReport>);

fn run_partitions(plan: &JobPlan, staging: &Staging) -> Result<Reports, JobError> {
    let results: Vec<Result<(PartitionReport, ClusteringReport), JobError>> = plan
        .dataset
        .partitions
        .par_iter()
        .map(|partition| {
            let loaded = load(plan, partition)?;
            let texts: Vec<&str> = loaded.texts().collect();
            let clustered = cluster_texts(plan, partition.key.clone(), &texts);
            let mut partition_report = write_labels(
                staging,
                &loaded,
                &clustered.fit.labels,
                &clustered.fit.similarity,
                0,
            )?;
            partition_report.n_empty_docs = clustered.vectorized.n_empty;
            let clustering_report = write_cluster_tables(plan, staging, clustered)?;
            Ok((partition_report, clustering_report))
        })
        .collect();
    let mut partitions = Vec::new();
    let mut clusterings = Vec::new();
    for r in results {
        let (p, c) = r?;
        partitions.push(p);
        clusterings.push(c);
    }
    Ok((partitions, clusterings))
}

fn run_global(plan: &JobPlan, staging: &Staging) -> Result<Reports, JobError> {
    let loaded: Vec<Loaded<'_>> = plan
        .dataset
        .partitions
        .par_iter()
        .map(|p| load(plan, p))
        .collect::<Result<_, _>>()?;
    let texts: Vec<&str> = loaded.iter().flat_map(Loaded::texts).collect();
    let key = PartitionKey::all(&plan.dataset.partition_keys);
    let clustered = cluster_texts(plan, key, &texts);

    let mut offsets = Vec::with_capacity(loaded.len());
    let mut offset = 0;
    for l in &loaded {
        offsets.push(offset);
        offset += l.texts.len();
    }
    let mut partitions: Vec<PartitionReport> = loaded
        .par_iter()
        .zip(&offsets)
        .map(|(l, &start)| {
            write_labels(
                staging,
                l,
                &clustered.fit.labels,
                &clustered.fit.similarity,
                start,
            )
        })
        .collect::<Result<_, _>>()?;
    for (report, (l, &start)) in partitions.iter_mut().zip(loaded.iter().zip(&offsets)) {
        report.n_empty_docs = clustered.fit.labels[start..start + l.texts.len()]
            .iter()
            .filter(|&&c| c < 0)
            .count();
    }
    let clustering = write_cluster_tables(plan, staging, clustered)?;
    Ok((partitions, vec![clustering]))
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

fn cluster_texts(plan: &JobPlan, key: PartitionKey, texts: &[&str]) -> Clustered {
    let mut seconds = StageSeconds::default();
    let t = Instant::now();
    let vectorized = text::fit_transform(&plan.vectorize, texts);
    seconds.vectorize = t.elapsed().as_secs_f64();
    info!(
        partition = %key,
        n_docs = texts.len(),
        n_terms = vectorized.vocabulary.len(),
        nnz = vectorized.matrix.nnz(),
        seconds = seconds.vectorize,
        "vectorised"
    );

    let t = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(plan.cluster.seed(), &key));
    let mut fit = cluster::fit(&vectorized.matrix, &plan.cluster, &mut rng);
    if fit.n_clusters < plan.cluster.k() {
        tracing::warn!(
            partition = %key,
            k = plan.cluster.k(),
            n_clusters = fit.n_clusters,
            "k capped at the number of documents with terms"
        );
    }
    let mut merge = None;
    if let Some(threshold) = plan.cluster.merge_threshold() {
        let n_before = fit.n_clusters;
        let (merged, mapping) = cluster::merge_fit(&vectorized.matrix, fit, threshold);
        fit = merged;
        info!(partition = %key, n_before, n_after = fit.n_clusters, "merged close clusters");
        merge = Some(MergeReport {
            threshold,
            n_before,
            n_after: fit.n_clusters,
            mapping,
        });
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
    staging: &Staging,
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
    write_parquet(&staging.file(Table::Labels, &loaded.partition.key), &b)?;
    Ok(PartitionReport {
        key: loaded.partition.key.to_string(),
        status: "succeeded",
        files: loaded.partition.files.clone(),
        n_rows: loaded.partition.n_rows(),
        n_docs: n,
        n_null_texts: loaded.n_null,
        n_empty_docs: 0,
        seconds_read: loaded.seconds_read,
        seconds_write_labels: t.elapsed().as_secs_f64(),
    })
}

/// Stages centroids, keywords and similarity of one clustering and reports on it.
fn write_cluster_tables(
    plan: &JobPlan,
    staging: &Staging,
    c: Clustered,
) -> Result<ClusteringReport, JobError> {
    let Clustered {
        key,
        vectorized,
        fit,
        merge,
        keywords,
        mut seconds,
    } = c;
    let t = Instant::now();
    let vocabulary = &vectorized.vocabulary;
    let k = fit.n_clusters;

    let (mut cl, mut size, mut term, mut weight) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for c in 0..k {
        for (j, &w) in fit.centroids.row(c).iter().enumerate() {
            if w != 0.0 {
                cl.push(c as i32);
                size.push(fit.sizes[c] as i64);
                term.push(vocabulary.term(j));
                weight.push(w);
            }
        }
    }
    let centroids = batch(
        Table::Centroids,
        vec![i32s(cl), i64s(size), strings(term), f32s(weight)],
    )
    .map_err(batch_error(Table::Centroids))?;
    write_parquet(&staging.file(Table::Centroids, &key), &centroids)?;

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
    write_parquet(&staging.file(Table::Keywords, &key), &kw)?;

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
    write_parquet(&staging.file(Table::Similarity, &key), &sim)?;
    seconds.write = t.elapsed().as_secs_f64();

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
        merge,
        clusters: cluster_reports(&fit),
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
