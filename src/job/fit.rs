//! `fit`: one clustering over the selected partitions (or a sample of them), saved as a
//! [`crate::model`] that `assign` labels partitions against.
//!
//! A fit is found again by its `fit_key` (the fit parameters and the input fingerprint): a
//! rerun on unchanged input reuses the model it wrote instead of fitting again, so a retried
//! task is cheap and keeps its model id.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use tracing::info;

use super::JobError;
use super::assign::BATCH_ROWS;
use super::fingerprint::{combined_fingerprint, hex, input_fingerprint, param_hash_of};
use super::manifest::ClusteringReport;
use super::pipeline::{self, Progress};
use super::plan::JobPlan;
use super::spec::Sample;
use super::tables;
use crate::cluster::{self, Centroids, KMeansFit, StreamedSums};
use crate::io::{DocumentBatches, OutputError, PartitionKey};
use crate::model::{self, Model, ModelHeader, ModelInput, Sealed};
use crate::text::{Rebased, Transformer, Vectorized};

/// What a fit produced.
#[derive(Debug)]
pub struct FitOutcome {
    pub model: Model,
    /// False when an earlier fit on the same input with the same parameters was reused.
    pub fitted: bool,
    /// The clustering's figures, when this call fitted.
    pub clustering: Option<ClusteringReport>,
    pub seconds: f64,
}

/// The share of documents `fit.sample` asks for, from the row counts of the footers.
pub fn sample_fraction(plan: &JobPlan) -> f64 {
    match plan.spec.fit.sample {
        None => 1.0,
        Some(Sample::Fraction(f)) => f.min(1.0),
        Some(Sample::Count(n)) => {
            let total: u64 = plan.dataset.partitions.iter().map(|p| p.n_rows()).sum();
            if total == 0 {
                1.0
            } else {
                (n as f64 / total as f64).min(1.0)
            }
        }
    }
}

/// The input fingerprint of every selected partition, combined.
pub(super) fn plan_fingerprint(plan: &JobPlan) -> String {
    let fingerprints: Vec<String> = plan
        .dataset
        .partitions
        .iter()
        .map(|p| input_fingerprint(plan, p))
        .collect();
    combined_fingerprint(&fingerprints)
}

/// The cluster parameters a model records: a model is one clustering over its whole input,
/// so its scope is `global` whether `fit` or a global-scope `run` made it.
fn model_cluster_params(plan: &JobPlan) -> crate::cluster::ClusterParams {
    let mut params = plan.spec.cluster.clone();
    params.scope = crate::cluster::Scope::Global;
    params
}

/// Identifies a fit: its parameters, sample and input.
fn fit_key(plan: &JobPlan, fingerprint: &str) -> String {
    let mut h = Sha256::new();
    let mut spec = plan.spec.clone();
    spec.cluster = model_cluster_params(plan);
    h.update(param_hash_of(&spec));
    let fraction = sample_fraction(plan);
    h.update(fraction.to_le_bytes());
    if fraction < 1.0 {
        h.update(plan.spec.fit.refine.to_le_bytes());
    }
    h.update(fingerprint);
    hex(&h.finalize())
}

/// Fits a model on `plan`'s partitions and writes it under `registry`, or reuses the model
/// an earlier identical fit wrote there. Nothing is written when the fit fails.
pub fn fit(
    plan: &JobPlan,
    registry: &Path,
    progress: Option<&dyn Progress>,
) -> Result<FitOutcome, JobError> {
    let started = Instant::now();
    if let Some(bad) = plan.dataset.partitions.iter().find(|p| p.problem.is_some()) {
        return Err(JobError::UnreadablePartition {
            key: bad.key.to_string(),
            problem: bad.problem.clone().unwrap_or_default(),
        });
    }
    let fingerprint = plan_fingerprint(plan);
    let key = fit_key(plan, &fingerprint);
    if let Some(header) = model::list(registry)?
        .into_iter()
        .find(|h| h.fit_key == key)
    {
        let model = Model::load(&model::model_dir(registry, &header.model_id))?;
        info!(
            model_id = model.id(),
            "same input and parameters as an earlier fit: its model is reused"
        );
        return Ok(FitOutcome {
            model,
            fitted: false,
            clustering: None,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let (sealed, clustering) = fit_sealed(plan, progress, &fingerprint, key)?;
    let dir = sealed.write(registry)?;
    let model = sealed.model(dir)?;
    Ok(FitOutcome {
        model,
        fitted: true,
        clustering: Some(clustering),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Fits and seals a model (not written yet).
fn fit_sealed(
    plan: &JobPlan,
    progress: Option<&dyn Progress>,
    fingerprint: &str,
    fit_key: String,
) -> Result<(Sealed, ClusteringReport), JobError> {
    let all = PartitionKey::all(&plan.dataset.partition_keys);
    let fraction = sample_fraction(plan);
    let rounds = if fraction < 1.0 {
        plan.spec.fit.refine
    } else {
        0
    };
    let mut refine_rounds = 0;
    let mut whole_df: Option<Vec<u32>> = None;
    let clustered = pipeline::global(plan, progress, &all, fraction, |vectorized, fit| {
        if rounds > 0 {
            pipeline::stage(progress, &all, "refine");
            let (run, df) = refine_on_corpus(plan, vectorized, fit, rounds)?;
            (refine_rounds, whole_df) = (run, Some(df));
        }
        Ok(())
    })?;
    pipeline::stage(progress, &all, "write");
    let t = Instant::now();
    let c = &clustered;
    let n_docs = c.vectorized.matrix.rows();
    if fraction < 1.0 {
        info!(fraction, n_docs, "fitted on a sample");
    }
    // The fit-time similarity of each document to its nearest centroid, as `assign` will
    // score new documents.
    let nearest = cluster::nearest(&c.vectorized.matrix, &c.fit.centroids);
    let clusters = model::fit_clusters(c.fit.n_clusters, &nearest.labels, &nearest.similarity);
    let vocabulary = &c.vectorized.vocabulary;
    let batch_error = |table: crate::io::Table| {
        move |source| OutputError::Batch {
            table: table.name(),
            source,
        }
    };
    let tables = [
        model::vocabulary_batch(
            vocabulary.terms(),
            whole_df.as_deref().unwrap_or(vocabulary.df()),
            &c.vectorized.idf,
        )
        .map_err(batch_error(crate::io::Table::Vocabulary))?,
        tables::centroids(c)?,
        tables::keywords(c)?,
        tables::similarity(c)?,
    ];
    let header = ModelHeader {
        format_version: model::FORMAT_VERSION,
        model_id: String::new(),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        fit_key,
        input: ModelInput {
            root: plan.dataset.root.display().to_string(),
            partitions: plan
                .dataset
                .partitions
                .iter()
                .map(|p| p.key.to_string())
                .collect(),
            fingerprint: fingerprint.to_owned(),
        },
        vectorize: plan.spec.vectorize.clone(),
        stopwords_sha256: plan.vectorize.analyzer().stopwords_digest(),
        cluster: model_cluster_params(plan),
        keywords: plan.spec.keywords.clone(),
        sample_fraction: fraction,
        refine_rounds,
        n_docs: n_docs as u64,
        n_terms: vocabulary.len() as u64,
        n_clusters: c.fit.n_clusters as u64,
        clusters,
        files: Default::default(),
    };
    let sealed = Sealed::new(header, tables)?;
    let mut report = c.report(plan.cluster.k(), t.elapsed().as_secs_f64());
    // The clustering is known by its model from now on.
    report.key = format!("model_id={}", sealed.header.model_id);
    info!(
        model_id = sealed.header.model_id,
        n_docs,
        n_clusters = c.fit.n_clusters,
        "model fitted"
    );
    Ok((sealed, report))
}

/// Moves a sampled fit onto the whole input: `rounds` rounds that read every selected
/// partition batch by batch, vectorise, assign each document to its nearest centroid and add
/// it to its cluster's sum; the normalised (and pruned) sums are the next centroids. The first
/// round also counts each term's document frequency over the whole input; after it the
/// vocabulary keeps the terms within `min_df` / `max_df` of the whole input, weighted by its
/// idf ([`Vectorized::rebase`]). Stops early once a round raises the mean similarity by less
/// than `cluster.tol` of itself. Memory holds one batch, `k × n_terms` sums and a df per term,
/// whatever the corpus size. The sample's rows are then labelled with the final centroids,
/// for the keywords and the fit-time similarity quantiles.
///
/// Returns the rounds run and the whole input's df of each final column.
fn refine_on_corpus(
    plan: &JobPlan,
    vectorized: &mut Vectorized,
    fit: &mut KMeansFit,
    rounds: usize,
) -> Result<(usize, Vec<u32>), JobError> {
    let prune = plan.cluster.centroid_min_df_factor();
    let input = &plan.spec.input;
    let k = fit.n_clusters;
    let transformer_of = |v: &Vectorized| {
        Transformer::new(plan.vectorize.clone(), v.vocabulary.terms(), v.idf.clone())
    };
    let mut transformer = transformer_of(vectorized);
    let mut whole_df: Option<Vec<u32>> = None;
    let mut last_mean: Option<f64> = None;
    let mut run = 0;
    for round in 1..=rounds {
        run = round;
        let t = Instant::now();
        let n_terms = vectorized.vocabulary.len();
        let mut sums = StreamedSums::new(k, n_terms);
        let mut counted = whole_df.is_none().then(|| (vec![0u32; n_terms], 0usize));
        for partition in &plan.dataset.partitions {
            let batches =
                DocumentBatches::new(partition, &input.id_column, &input.text_column, BATCH_ROWS);
            for next in batches {
                let (_, docs) = next?;
                let texts: Vec<&str> = docs.texts.iter().flatten().collect();
                let x = transformer.transform(&texts).matrix;
                if let Some((df, n_docs)) = &mut counted {
                    *n_docs += texts.len();
                    for &j in x.indices() {
                        df[j as usize] += 1;
                    }
                }
                let nearest = cluster::nearest(&x, &fit.centroids);
                sums.add(&x, &nearest.labels);
            }
        }
        let (centroids, objective) = sums.centroids(&fit.centroids, prune);
        fit.centroids = centroids;
        let n_docs: u64 = sums.sizes().iter().sum();
        let mean = if n_docs == 0 {
            0.0
        } else {
            objective / n_docs as f64
        };
        info!(
            round,
            n_docs,
            mean_similarity = mean,
            seconds = t.elapsed().as_secs_f64(),
            "refined the centroids on every document"
        );
        if let Some((df, n_docs)) = counted {
            let rebased = vectorized.rebase(&plan.vectorize, &df, n_docs);
            fit.centroids = rebase_centroids(&fit.centroids, &rebased, vectorized.vocabulary.len());
            transformer = transformer_of(vectorized);
            info!(
                n_docs,
                n_terms_sample = n_terms,
                n_terms = vectorized.vocabulary.len(),
                "vocabulary weighted by the whole input's document frequencies"
            );
            whole_df = Some(rebased.df);
            // The weights changed: the next round's mean is not comparable with this one's.
            continue;
        }
        if last_mean.is_some_and(|last| mean - last < plan.cluster.tol() * mean.abs()) {
            break;
        }
        last_mean = Some(mean);
    }
    let nearest = cluster::nearest(&vectorized.matrix, &fit.centroids);
    fit.sizes = cluster::kmeans::cluster_sizes(&nearest.labels, k);
    fit.labels = nearest.labels;
    fit.similarity = nearest.similarity;
    fit.second_similarity = nearest.second_similarity;
    let df = whole_df.unwrap_or_else(|| vectorized.vocabulary.df().to_vec());
    Ok((run, df))
}

/// `centroids` in the columns of a rebased vocabulary: dropped terms removed, each weight
/// scaled as the documents' were, normalised again.
fn rebase_centroids(centroids: &Centroids, rebased: &Rebased, n_terms: usize) -> Centroids {
    let mut out = Centroids::empty(n_terms);
    for c in 0..centroids.n_clusters() {
        let (mut indices, mut weights) = (Vec::new(), Vec::new());
        rebased.map_row(centroids.row(c), &mut indices, &mut weights);
        crate::sparse::normalize(&mut weights);
        out.push_sparse(&indices, &weights);
    }
    out
}

/// Where `fit` writes and `assign` reads models: `--model`, else `[model] path` (whose
/// scheme the plan has checked). An unsupported scheme is an error naming the flag.
pub fn registry(plan: &JobPlan, flag: Option<&Path>) -> Result<PathBuf, JobError> {
    match flag {
        Some(path) => super::plan::local_path("--model", path),
        None => plan
            .spec
            .model
            .as_ref()
            .map(|m| m.path.clone())
            .ok_or(JobError::NoModelPath),
    }
}
