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
use super::fingerprint::{combined_fingerprint, input_fingerprint, param_hash_of};
use super::pipeline::{self, Progress};
use super::plan::JobPlan;
use super::refine::{Refined, refine_on_corpus, whole_input_df};
use crate::cluster;
use crate::io::PartitionKey;
use crate::io::hex;
use crate::model::{self, Model, ModelHeader, ModelInput, Sealed};
use crate::output::manifest::ClusteringReport;
use crate::output::spec::Sample;
use crate::output::tables;
use crate::text::Vectorized;

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

impl FitOutcome {
    /// The fit's summary as one JSON object: what `fit` prints on stdout and the Python API
    /// returns. `published`: whether `CURRENT` now names the model.
    pub fn to_json(&self, published: bool) -> serde_json::Value {
        let h = &self.model.header;
        serde_json::json!({
            "model_id": h.model_id,
            "path": self.model.dir.display().to_string(),
            "fitted": self.fitted,
            "published": published,
            "n_docs": h.n_docs,
            "n_terms": h.n_terms,
            "n_clusters": h.n_clusters,
            "sample_fraction": h.sample_fraction,
            "seconds": self.seconds,
        })
    }
}

/// The share of documents `fit.sample` asks for, from the row counts of the footers.
pub fn sample_fraction(plan: &JobPlan) -> f64 {
    match plan.spec.fit.sample {
        None => 1.0,
        Some(Sample::Fraction(f)) => f.min(1.0),
        Some(Sample::Count(n)) => {
            let total = plan.input_rows();
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
pub(super) fn fit_key(plan: &JobPlan, fingerprint: &str) -> String {
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
    check_readable(plan)?;
    let fingerprint = plan_fingerprint(plan);
    let key = fit_key(plan, &fingerprint);
    if let Some(model) = earlier_fit(registry, &key)? {
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
    let learned = super::words::learn_korean(plan)?;
    let plan = learned.as_ref().unwrap_or(plan);
    let (sealed, clustering) = fit_sealed(plan, progress, &fingerprint, key)?;
    written(sealed, clustering, registry, started)
}

/// Refuses a fit over a partition that cannot be read: a fit needs every one.
pub(super) fn check_readable(plan: &JobPlan) -> Result<(), JobError> {
    match plan.dataset.partitions.iter().find(|p| p.problem.is_some()) {
        Some(bad) => Err(JobError::UnreadablePartition {
            key: bad.key.to_string(),
            problem: bad.problem.clone().unwrap_or_default(),
        }),
        None => Ok(()),
    }
}

/// The model an earlier fit with key `fit_key` wrote under `registry`, if any.
pub(super) fn earlier_fit(registry: &Path, fit_key: &str) -> Result<Option<Model>, JobError> {
    match model::list(registry)?
        .into_iter()
        .find(|h| h.fit_key == fit_key)
    {
        Some(h) => Ok(Some(Model::load(&model::model_dir(registry, &h.model_id))?)),
        None => Ok(None),
    }
}

/// The refinement rounds a fit on a share `fraction` of the input may run: `fit.refine` for
/// a sample, none for the whole input.
pub(super) fn refine_rounds(plan: &JobPlan, fraction: f64) -> usize {
    if fraction < 1.0 {
        plan.spec.fit.refine
    } else {
        0
    }
}

/// The stop words a model records word for word: those from a file (the built-in lists are
/// known by name).
pub(super) fn recorded_stopwords(plan: &JobPlan) -> Option<Vec<String>> {
    (!crate::text::params::BUILT_IN_STOPWORDS.contains(&plan.spec.vectorize.stopwords.as_str()))
        .then(|| plan.vectorize.analyzer().stopwords_sorted())
}

/// Weights a sample's vocabulary by the whole input's df (`df` per column, over `n_docs`
/// documents); returns each remaining column's df.
pub(super) fn rebase_on_whole_input(
    plan: &JobPlan,
    vectorized: &mut Vectorized,
    df: &[u32],
    n_docs: usize,
) -> Vec<u32> {
    let n_terms_sample = vectorized.vocabulary.len();
    let rebased = vectorized.rebase(&plan.vectorize, df, n_docs);
    info!(
        n_docs,
        n_terms_sample,
        n_terms = vectorized.vocabulary.len(),
        "vocabulary weighted by the whole input's document frequencies"
    );
    rebased.df
}

/// Writes a sealed model under `registry`: the outcome of a fit that started at `started`.
pub(super) fn written(
    sealed: Sealed,
    clustering: ClusteringReport,
    registry: &Path,
    started: Instant,
) -> Result<FitOutcome, JobError> {
    let dir = sealed.write(registry)?;
    let model = sealed.model(dir)?;
    Ok(FitOutcome {
        model,
        fitted: true,
        clustering: Some(clustering),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A clustering of the input (or of its sample) before it is sealed as a model.
pub(super) struct Fitted {
    pub(super) clustered: pipeline::Clustered,
    /// After a refined sampled fit: each column's df in the whole input.
    pub(super) whole_df: Option<Vec<u32>>,
    pub(super) refined: Option<Refined>,
}

/// Clusters the input, or its sample of `fraction`: then, unless `fit.refine` is 0, the
/// vocabulary takes the whole input's df and idf before the sample is clustered, and the
/// centroids are refined on the whole input afterwards.
fn cluster_input(
    plan: &JobPlan,
    progress: Option<&dyn Progress>,
    all: &PartitionKey,
    fraction: f64,
) -> Result<Fitted, JobError> {
    let rounds = refine_rounds(plan, fraction);
    let mut refined = None;
    let mut whole_df = None;
    let clustered = pipeline::global(
        plan,
        progress,
        all,
        fraction,
        |vectorized| {
            if rounds > 0 {
                pipeline::stage(progress, all, "count");
                let (df, n_docs) = whole_input_df(plan, vectorized)?;
                whole_df = Some(rebase_on_whole_input(plan, vectorized, &df, n_docs));
            }
            Ok(())
        },
        |vectorized, fit| {
            if rounds > 0 {
                pipeline::stage(progress, all, "refine");
                refined = Some(refine_on_corpus(plan, vectorized, fit, rounds)?);
            }
            Ok(())
        },
    )?;
    Ok(Fitted {
        clustered,
        whole_df,
        refined,
    })
}

/// Refuses to seal a model that could label nothing: no document in the sample, or no term
/// left after the stop words and the df bounds (every daily `assign` would label every
/// document `-1`).
fn check_not_empty(
    plan: &JobPlan,
    clustered: &pipeline::Clustered,
    fraction: f64,
) -> Result<(), JobError> {
    let n_docs = clustered.vectorized.matrix.rows();
    let n_empty = clustered.vectorized.n_empty;
    let reason = if n_docs == 0 && fraction < 1.0 {
        format!(
            "the sample is empty: `fit.sample` selects a share of {fraction:e} of {} rows",
            plan.input_rows()
        )
    } else if n_docs == 0 {
        "the input holds no document with a text".to_owned()
    } else if clustered.vectorized.vocabulary.is_empty() || n_empty == n_docs {
        format!(
            "no term of its {n_docs} documents survives the stop words and the df bounds (`vectorize.min_df`, `vectorize.max_df`)"
        )
    } else {
        return Ok(());
    };
    Err(JobError::EmptyFit { reason })
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
    let fitted = cluster_input(plan, progress, &all, fraction)?;
    seal(plan, progress, fingerprint, fit_key, fitted)
}

/// Seals a clustering of the input (or its sample) as a model (not written yet).
pub(super) fn seal(
    plan: &JobPlan,
    progress: Option<&dyn Progress>,
    fingerprint: &str,
    fit_key: String,
    fitted: Fitted,
) -> Result<(Sealed, ClusteringReport), JobError> {
    let all = PartitionKey::all(&plan.dataset.partition_keys);
    let fraction = sample_fraction(plan);
    let Fitted {
        clustered,
        whole_df,
        refined,
    } = fitted;
    check_not_empty(plan, &clustered, fraction)?;
    let refine_rounds = refined.map_or(0, |r| r.moved.len());
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
    let tables = [
        tables::vocabulary(
            vocabulary.terms(),
            whole_df.as_deref().unwrap_or(vocabulary.df()),
            &c.vectorized.idf,
        )?,
        c.centroids_table()?,
        c.keywords_table()?,
        c.similarity_table()?,
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
        stopwords: recorded_stopwords(plan),
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
    let analyzer = plan.vectorize.analyzer();
    let korean = analyzer
        .tokenizer()
        .learns_korean()
        .then(|| analyzer.korean());
    let sealed = Sealed::new(header, tables, korean)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::PartitionFilter;
    use crate::output::spec::{DEFAULT_REFINE, JobSpec};

    fn plan(overrides: &[&str]) -> JobPlan {
        let spec = JobSpec::load(Path::new("jobs/sample.toml"), overrides).unwrap();
        JobPlan::resolve(spec, &PartitionFilter::default()).unwrap()
    }

    fn cluster(plan: &JobPlan) -> Fitted {
        let all = PartitionKey::all(&plan.dataset.partition_keys);
        cluster_input(plan, None, &all, sample_fraction(plan)).unwrap()
    }

    #[test]
    fn the_refinement_runs_until_a_round_moves_at_most_tol_of_the_documents() {
        let plan = plan(&["fit.sample=0.5"]);
        let tol = plan.cluster.tol();
        let fitted = cluster(&plan);
        let refined = fitted.refined.unwrap();
        let (n, moved) = (refined.n_docs as f64, &refined.moved);
        assert_eq!(n, 2000.0);
        let (last, between) = moved[1..].split_last().expect("at least 2 rounds");
        assert!(*last as f64 <= tol * n, "{moved:?}");
        assert!(between.iter().all(|&m| m as f64 > tol * n), "{moved:?}");
        assert!(moved.len() < DEFAULT_REFINE, "{moved:?}");
        assert!(fitted.clustered.fit.converged);

        // Capped before that: not converged.
        let capped = cluster(&self::plan(&["fit.sample=0.5", "fit.refine=2"]));
        let moved = capped.refined.unwrap().moved;
        assert_eq!(moved.len(), 2);
        assert!(moved[1] as f64 > tol * n, "{moved:?}");
        assert!(!capped.clustered.fit.converged);
    }

    #[test]
    fn a_refined_sample_is_weighted_as_the_whole_input_is() {
        let sampled = cluster(&plan(&["fit.sample=0.5"]));
        let whole = cluster(&plan(&[]));
        assert!(whole.refined.is_none() && whole.whole_df.is_none());
        let (s, w) = (&sampled.clustered.vectorized, &whole.clustered.vectorized);
        assert!(s.matrix.rows() < 1200 && w.matrix.rows() == 2000);
        // Every term of the sample's vocabulary has the whole input's df and idf.
        let whole_df = sampled.whole_df.unwrap();
        let column: std::collections::HashMap<&str, usize> = w
            .vocabulary
            .terms()
            .iter()
            .enumerate()
            .map(|(j, t)| (t.as_str(), j))
            .collect();
        assert!(s.vocabulary.len() > w.vocabulary.len() / 2);
        for (j, term) in s.vocabulary.terms().iter().enumerate() {
            let jw = column[term.as_str()];
            assert_eq!(whole_df[j], w.vocabulary.df()[jw], "{term}");
            assert_eq!(s.idf[j], w.idf[jw], "{term}");
        }
    }
}
