//! A fitted model on storage: what `fit` writes and `assign` labels new partitions against.
//!
//! A model is a directory `<registry>/model_id=<id>/` holding four Parquet tables and one
//! JSON header:
//!
//! - `vocabulary.parquet`: `term_id, term, df, idf`, in term-id order;
//! - `centroids.parquet`, `keywords.parquet`, `similarity.parquet`: the cluster tables of
//!   [`crate::io::Table`];
//! - `words.json`, only with the `korean` and `korean_ngrams` tokenisers: the Korean word
//!   table learned from the input ([`crate::text::KoreanWords`]), so `assign` splits words as
//!   the fit did;
//! - `model.json` ([`ModelHeader`]): the parameters, the input it was fitted on, the
//!   fit-time similarity quantiles of each cluster, and the SHA-256 of every table file.
//!
//! A model with a word table has format version 2, one without it version 1: a reader that
//! knows only version 1 refuses a model it would tokenise differently, and version 1 models
//! read as before.
//!
//! The header is written last, so a directory without it is an unfinished write and is never
//! read. The `model_id` is a hash of the tables and of every parameter that shaped them (not
//! of where the input or the registry is), so the same fit gives the same id and bytes on
//! local disk and on an object store, and a model directory is never changed once written:
//! a new fit writes a new one. `<registry>/CURRENT` names the model `assign` uses by default;
//! it is replaced in one atomic write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cluster::{Centroids, ClusterParams};
use crate::io::OutputError;
use crate::io::commit::write_atomic;
use crate::io::hex;
use crate::io::store::{self, StoreError};
use crate::label::KeywordParams;
use crate::output::Table;
use crate::text::{KoreanWords, VectorizeParams};

mod load;
pub mod resolve;
mod stats;

pub use stats::{fit_clusters, js_divergence};

/// The model format of a model with a Korean word table; this build reads it and
/// [`FORMAT_VERSION_PLAIN`].
pub const FORMAT_VERSION: u32 = 2;

/// The model format of a model without a word table.
pub const FORMAT_VERSION_PLAIN: u32 = 1;

/// The file of a model's Korean word table, and its key in [`ModelHeader::files`].
pub const WORDS_FILE: &str = "words.json";

/// The header file of a model directory.
pub const HEADER_FILE: &str = "model.json";

pub use crate::output::layout::CURRENT_FILE;

/// The tables of a model, in the order their hashes enter the id.
pub const TABLES: [Table; 4] = [
    Table::Vocabulary,
    Table::Centroids,
    Table::Keywords,
    Table::Similarity,
];

/// The fit-time similarity quantiles kept per cluster.
pub const QUANTILES: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];

/// `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    pub format_version: u32,
    pub model_id: String,
    pub tool_version: String,
    /// RFC 3339, when the model was first written (not part of the id).
    pub created_at: String,
    /// Hash of the fit parameters and the input fingerprint: a rerun on unchanged input finds
    /// its model by it instead of fitting again (not part of the id).
    pub fit_key: String,
    /// What the model was fitted on (not part of the id).
    pub input: ModelInput,
    pub vectorize: VectorizeParams,
    /// SHA-256 of the stop words in effect at fit time (a stop-word file can change later).
    pub stopwords_sha256: String,
    /// The stop words of a stop-word file, sorted, so the model does not depend on the file
    /// (absent for the built-in lists; not part of the id, which has their SHA-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopwords: Option<Vec<String>>,
    pub cluster: ClusterParams,
    pub keywords: KeywordParams,
    /// The share of documents sampled for the fit (1 for all of them).
    pub sample_fraction: f64,
    /// Rounds over every document that refined a sampled fit's centroids (`fit.refine`).
    #[serde(default)]
    pub refine_rounds: usize,
    /// Documents fitted on (null texts excluded).
    pub n_docs: u64,
    pub n_terms: u64,
    pub n_clusters: u64,
    /// Per cluster, how its fitted documents scored against it.
    pub clusters: Vec<FitCluster>,
    /// SHA-256 of each table file, by table name.
    pub files: BTreeMap<String, String>,
}

/// The input a model was fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInput {
    pub root: String,
    pub partitions: Vec<String>,
    pub fingerprint: String,
}

/// One cluster of a model, as its fitted documents scored against its centroid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitCluster {
    pub cluster: i32,
    /// Fitted documents nearest to this centroid.
    pub n_docs: u64,
    /// `n_docs` over the fitted documents with a known term.
    pub share: f64,
    pub mean_similarity: f64,
    /// Cosine similarity at the 5th, 25th, 50th, 75th and 95th percentiles (0 when empty).
    pub similarity_quantiles: [f32; 5],
}

impl FitCluster {
    /// The fit-time 5th percentile of similarity.
    pub fn p05(&self) -> f32 {
        self.similarity_quantiles[0]
    }
}

/// A model that cannot be read, or does not fit the job.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "no model at `{}`: it holds neither `{HEADER_FILE}` nor `{CURRENT_FILE}`\nhint: run `textcluster fit` first, or give `--model` the directory it wrote",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("model `{}` is corrupt: {reason}\nhint: fit it again; nothing was written", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "model `{}` has format version {found}, and this textcluster reads versions {FORMAT_VERSION_PLAIN} and {FORMAT_VERSION}\nhint: fit the model again with this version; nothing was written",
        path.display()
    )]
    Incompatible { path: PathBuf, found: u64 },
    #[error(
        "the job sets `{key}` = {job}, and model `{}` was fitted with {model}\nhint: remove the key from the job (assign uses the model's value) or fit a new model; nothing was written",
        path.display()
    )]
    Contradicts {
        path: PathBuf,
        key: String,
        model: String,
        job: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Output(#[from] OutputError),
}

impl ModelError {
    /// True when the model or the job must be fixed (a retry will not help).
    pub fn is_user_error(&self) -> bool {
        match self {
            ModelError::Store(e) => e.is_user_error(),
            ModelError::Output(_) => false,
            _ => true,
        }
    }
}

/// A model's directory under `registry`.
pub fn model_dir(registry: &Path, model_id: &str) -> PathBuf {
    registry.join(format!("model_id={model_id}"))
}

/// The file of `table` in model directory `dir`.
pub fn table_file(dir: &Path, table: Table) -> PathBuf {
    dir.join(format!("{}.parquet", table.name()))
}

/// A fitted model in memory: its header and what assignment needs.
#[derive(Debug, Clone)]
pub struct Model {
    pub header: ModelHeader,
    /// The model's directory.
    pub dir: PathBuf,
    terms: Vec<String>,
    idf: Vec<f32>,
    centroids: Centroids,
    /// The Korean word table, when the model has one.
    korean: Option<KoreanWords>,
}

/// A model about to be written: its header (id filled in) and its encoded tables.
pub struct Sealed {
    pub header: ModelHeader,
    files: Vec<(Table, Vec<u8>)>,
    /// `words.json`, when the model has a word table.
    words: Option<Vec<u8>>,
}

impl Sealed {
    /// Encodes `tables` (vocabulary, centroids, keywords, similarity) and the word table if
    /// any, hashes them into `header.files`, sets the format version and derives
    /// `header.model_id`.
    pub fn new(
        mut header: ModelHeader,
        tables: [RecordBatch; 4],
        korean: Option<&KoreanWords>,
    ) -> Result<Self, OutputError> {
        let mut files = Vec::with_capacity(4);
        header.files.clear();
        for (table, batch) in TABLES.into_iter().zip(tables) {
            let bytes = crate::io::write::encode_model_table(&batch).map_err(|source| {
                OutputError::Parquet {
                    path: PathBuf::from(format!("{}.parquet", table.name())),
                    source,
                }
            })?;
            header
                .files
                .insert(table.name().to_owned(), hex(&Sha256::digest(&bytes)));
            files.push((table, bytes));
        }
        let words = korean.map(KoreanWords::to_json);
        if let Some(bytes) = &words {
            header
                .files
                .insert(WORDS_FILE.to_owned(), hex(&Sha256::digest(bytes)));
        }
        header.format_version = if words.is_some() {
            FORMAT_VERSION
        } else {
            FORMAT_VERSION_PLAIN
        };
        header.model_id = model_id(&header);
        Ok(Self {
            header,
            files,
            words,
        })
    }

    /// The model as `assign` sees it, without a round trip through storage.
    pub fn model(&self, dir: PathBuf) -> Result<Model, ModelError> {
        let bytes = |t: Table| {
            &self
                .files
                .iter()
                .find(|(f, _)| *f == t)
                .expect("every table")
                .1
        };
        Model::from_tables(
            self.header.clone(),
            dir,
            bytes(Table::Vocabulary),
            bytes(Table::Centroids),
            self.words.as_deref(),
        )
    }

    /// Writes the model under `registry` (its tables, then its header) unless it is already
    /// there, and returns its directory.
    pub fn write(&self, registry: &Path) -> Result<PathBuf, ModelError> {
        let dir = model_dir(registry, &self.header.model_id);
        let header = dir.join(HEADER_FILE);
        if store::exists(&header)? {
            tracing::info!(model_id = self.header.model_id, dir = %dir.display(), "model already written");
            return Ok(dir);
        }
        for (table, bytes) in &self.files {
            write_atomic(&table_file(&dir, *table), bytes)?;
        }
        if let Some(bytes) = &self.words {
            write_atomic(&dir.join(WORDS_FILE), bytes)?;
        }
        crate::io::commit::crash_point("model-tables-written");
        let json = serde_json::to_vec_pretty(&self.header).expect("header serialises");
        write_atomic(&header, &json)?;
        tracing::info!(model_id = self.header.model_id, dir = %dir.display(), "model written");
        Ok(dir)
    }
}

/// The content id: SHA-256 over the header's shaping fields and table hashes, 16 hex digits.
fn model_id(header: &ModelHeader) -> String {
    let shaping = serde_json::json!({
        "format_version": header.format_version,
        "tool_version": header.tool_version,
        "vectorize": header.vectorize,
        "stopwords_sha256": header.stopwords_sha256,
        "cluster": header.cluster,
        "keywords": header.keywords,
        "sample_fraction": header.sample_fraction,
        "n_docs": header.n_docs,
        "clusters": header.clusters,
        "files": header.files,
    });
    hex(&Sha256::digest(shaping.to_string().as_bytes()))[..16].to_owned()
}

/// `CURRENT`: which model of a registry is current.
#[derive(Debug, Serialize, Deserialize)]
struct Current {
    model_id: String,
}

/// Makes `model_id` the current model of `registry`, in one atomic write.
pub fn publish(registry: &Path, model_id: &str) -> Result<(), ModelError> {
    let json = serde_json::to_vec_pretty(&Current {
        model_id: model_id.to_owned(),
    })
    .expect("pointer serialises");
    write_atomic(&registry.join(CURRENT_FILE), &json)?;
    tracing::info!(model_id, registry = %registry.display(), "published as the current model");
    Ok(())
}

/// The headers of every complete model under `registry`.
pub fn list(registry: &Path) -> Result<Vec<ModelHeader>, ModelError> {
    let mut headers = Vec::new();
    for name in store::list_dirs(registry)? {
        if !name.starts_with("model_id=") {
            continue;
        }
        let path = registry.join(&name).join(HEADER_FILE);
        if let Some(bytes) = store::read(&path)?
            && let Ok(header) = serde_json::from_slice::<ModelHeader>(&bytes)
        {
            headers.push(header);
        }
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_divergence_is_zero_for_equal_and_one_for_disjoint_shares() {
        assert!(js_divergence(&[0.5, 0.5], &[0.5, 0.5]).abs() < 1e-12);
        assert!((js_divergence(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
        let d = js_divergence(&[0.7, 0.3], &[0.4, 0.6]);
        assert!(d > 0.0 && d < 1.0, "{d}");
        assert!((d - js_divergence(&[0.4, 0.6], &[0.7, 0.3])).abs() < 1e-12);
    }

    #[test]
    fn fit_clusters_give_nearest_rank_quantiles() {
        let labels = [0, 0, 0, 0, -1, 1];
        let sims = [0.4, 0.1, 0.3, 0.2, 0.0, 0.9];
        let c = fit_clusters(3, &labels, &sims);
        assert_eq!(c[0].n_docs, 4);
        assert_eq!(c[0].similarity_quantiles, [0.1, 0.1, 0.2, 0.3, 0.4]);
        assert!((c[0].share - 0.8).abs() < 1e-12);
        assert!((c[0].mean_similarity - 0.25).abs() < 1e-6);
        assert_eq!(c[1].similarity_quantiles, [0.9; 5]);
        assert_eq!((c[2].n_docs, c[2].similarity_quantiles), (0, [0.0; 5]));
    }
}
