//! A fitted model on storage: what `fit` writes and `assign` labels new partitions against.
//!
//! A model is a directory `<registry>/model_id=<id>/` holding four Parquet tables and one
//! JSON header:
//!
//! - `vocabulary.parquet`: `term_id, term, df, idf`, in term-id order;
//! - `centroids.parquet`, `keywords.parquet`, `similarity.parquet`: the cluster tables of
//!   [`crate::io::Table`];
//! - `model.json` ([`ModelHeader`]): the parameters, the input it was fitted on, the
//!   fit-time similarity quantiles of each cluster, and the SHA-256 of every table file.
//!
//! The header is written last, so a directory without it is an unfinished write and is never
//! read. The `model_id` is a hash of the tables and of every parameter that shaped them (not
//! of where the input or the registry is), so the same fit gives the same id and bytes on
//! local disk and on an object store, and a model directory is never changed once written:
//! a new fit writes a new one. `<registry>/CURRENT` names the model `assign` uses by default;
//! it is replaced in one atomic write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Float32Type, Int32Type};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cluster::{Centroids, ClusterParams};
use crate::io::OutputError;
use crate::io::commit::write_atomic;
use crate::io::hex;
use crate::io::store::{self, StoreError};
use crate::label::KeywordParams;
use crate::output::Table;
use crate::text::{Transformer, VectorizeParams};

pub mod resolve;

/// The model format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

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
        "model `{}` has format version {found}, and this textcluster reads version {FORMAT_VERSION}\nhint: fit the model again with this version; nothing was written",
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
}

/// A model about to be written: its header (id filled in) and its encoded tables.
pub struct Sealed {
    pub header: ModelHeader,
    files: Vec<(Table, Vec<u8>)>,
}

impl Sealed {
    /// Encodes `tables` (vocabulary, centroids, keywords, similarity), hashes them into
    /// `header.files` and derives `header.model_id`.
    pub fn new(mut header: ModelHeader, tables: [RecordBatch; 4]) -> Result<Self, OutputError> {
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
        header.model_id = model_id(&header);
        Ok(Self { header, files })
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

impl Model {
    /// Reads the model at `path`: a model directory (it holds `model.json`), or a registry
    /// whose `CURRENT` names one. Every table's checksum is verified.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let dir = if store::exists(&path.join(HEADER_FILE))? {
            path.to_path_buf()
        } else if let Some(bytes) = store::read(&path.join(CURRENT_FILE))? {
            let current: Current =
                serde_json::from_slice(&bytes).map_err(|e| ModelError::Corrupt {
                    path: path.join(CURRENT_FILE),
                    reason: format!("not a model pointer: {e}"),
                })?;
            let dir = model_dir(path, &current.model_id);
            if !store::exists(&dir.join(HEADER_FILE))? {
                return Err(ModelError::Corrupt {
                    path: path.join(CURRENT_FILE),
                    reason: format!("it names model `{}`, which is not there", current.model_id),
                });
            }
            dir
        } else {
            return Err(ModelError::Missing { path: path.into() });
        };
        let corrupt = |path: &Path, reason: String| ModelError::Corrupt {
            path: path.into(),
            reason,
        };
        let header_path = dir.join(HEADER_FILE);
        let bytes =
            store::read(&header_path)?.ok_or_else(|| ModelError::Missing { path: dir.clone() })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(&header_path, format!("`{HEADER_FILE}` is not JSON: {e}")))?;
        let found = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| corrupt(&header_path, "no `format_version`".into()))?;
        if found != u64::from(FORMAT_VERSION) {
            return Err(ModelError::Incompatible { path: dir, found });
        }
        let header: ModelHeader = serde_json::from_value(value)
            .map_err(|e| corrupt(&header_path, format!("`{HEADER_FILE}`: {e}")))?;
        if model_id(&header) != header.model_id {
            return Err(corrupt(
                &header_path,
                format!(
                    "its content id is {}, not the `{}` it names; the header was edited or damaged",
                    model_id(&header),
                    header.model_id
                ),
            ));
        }
        if header.clusters.len() as u64 != header.n_clusters {
            return Err(corrupt(
                &header_path,
                format!(
                    "`clusters` lists {} clusters and `n_clusters` is {}",
                    header.clusters.len(),
                    header.n_clusters
                ),
            ));
        }
        // Every table the header lists is checked, not only those `assign` reads: `eval` and
        // `report` show the keywords and the similarity table.
        let mut tables = BTreeMap::new();
        for table in TABLES {
            let path = table_file(&dir, table);
            let bytes = store::read(&path)?.ok_or_else(|| {
                corrupt(
                    &dir,
                    format!(
                        "`{}` is missing",
                        table_file(Path::new(""), table).display()
                    ),
                )
            })?;
            let expected = header.files.get(table.name()).map(String::as_str);
            if expected != Some(hex(&Sha256::digest(&bytes)).as_str()) {
                return Err(corrupt(
                    &path,
                    "its SHA-256 differs from the header's".into(),
                ));
            }
            tables.insert(table.name(), bytes);
        }
        Self::from_tables(
            header,
            dir,
            &tables[Table::Vocabulary.name()],
            &tables[Table::Centroids.name()],
        )
    }

    fn from_tables(
        header: ModelHeader,
        dir: PathBuf,
        vocabulary: &[u8],
        centroids: &[u8],
    ) -> Result<Self, ModelError> {
        let corrupt = |table: Table, reason: String| ModelError::Corrupt {
            path: table_file(&dir, table),
            reason,
        };
        let read = |table: Table, bytes: &[u8]| {
            crate::io::read::decode_output(bytes::Bytes::copy_from_slice(bytes), table)
                .map_err(|e| corrupt(table, e.to_string()))
        };
        let (mut terms, mut idf) = (Vec::new(), Vec::new());
        for batch in read(Table::Vocabulary, vocabulary)? {
            let ids = batch.column(0).as_primitive::<Int32Type>();
            for (i, id) in ids.values().iter().enumerate() {
                if *id as usize != terms.len() {
                    return Err(corrupt(
                        Table::Vocabulary,
                        format!("term id {id} where {} was expected", terms.len()),
                    ));
                }
                terms.push(batch.column(1).as_string::<i32>().value(i).to_owned());
            }
            idf.extend_from_slice(batch.column(3).as_primitive::<Float32Type>().values());
        }
        if terms.len() as u64 != header.n_terms {
            return Err(corrupt(
                Table::Vocabulary,
                format!("{} terms, the header says {}", terms.len(), header.n_terms),
            ));
        }
        let ids: rustc_hash::FxHashMap<&str, u32> = terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32))
            .collect();
        let k = header.n_clusters as usize;
        let mut rows: Vec<(Vec<u32>, Vec<f32>)> = vec![Default::default(); k];
        for batch in read(Table::Centroids, centroids)? {
            let cluster = batch.column(0).as_primitive::<Int32Type>();
            let term = batch.column(2).as_string::<i32>();
            let weight = batch.column(3).as_primitive::<Float32Type>();
            for i in 0..batch.num_rows() {
                let c = cluster.value(i);
                let row = usize::try_from(c)
                    .ok()
                    .and_then(|c| rows.get_mut(c))
                    .ok_or_else(|| corrupt(Table::Centroids, format!("cluster {c} of {k}")))?;
                let j = *ids.get(term.value(i)).ok_or_else(|| {
                    corrupt(
                        Table::Centroids,
                        format!("term `{}` is not in the vocabulary", term.value(i)),
                    )
                })?;
                if row.0.last().is_some_and(|&last| last >= j) {
                    return Err(corrupt(
                        Table::Centroids,
                        format!("cluster {c}: terms are not in term-id order"),
                    ));
                }
                row.0.push(j);
                row.1.push(weight.value(i));
            }
        }
        let mut centroids = Centroids::empty(terms.len());
        for (indices, weights) in &rows {
            centroids.push_sparse(indices, weights);
        }
        Ok(Self {
            header,
            dir,
            terms,
            idf,
            centroids,
        })
    }

    /// The model's id.
    pub fn id(&self) -> &str {
        &self.header.model_id
    }

    /// The centroids documents are assigned to.
    pub fn centroids(&self) -> &Centroids {
        &self.centroids
    }

    /// The vectoriser of the fit: its parameters, vocabulary and idf. Fails when the
    /// parameters no longer check (a stop-word file gone) or the stop words changed.
    pub fn transformer(&self) -> Result<Transformer, ModelError> {
        let params = self
            .header
            .vectorize
            .check_with_stopwords(self.header.stopwords.as_deref())
            .map_err(|errors| ModelError::Corrupt {
                path: self.dir.join(HEADER_FILE),
                reason: errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            })?;
        let digest = params.analyzer().stopwords_digest();
        if digest != self.header.stopwords_sha256 {
            return Err(ModelError::Contradicts {
                path: self.dir.clone(),
                key: "vectorize.stopwords".into(),
                model: format!("stop words with SHA-256 {}", self.header.stopwords_sha256),
                job: format!(
                    "`{}`, whose stop words now have SHA-256 {digest}",
                    self.header.vectorize.stopwords
                ),
            });
        }
        Ok(Transformer::new(params, &self.terms, self.idf.clone()))
    }

    /// Checks the `[vectorize]` keys a job sets explicitly (`explicit`, e.g. `tokenizer`)
    /// against the model's: assignment uses the model's, so a different value is an error
    /// naming the key.
    pub fn check_vectorize(
        &self,
        job: &VectorizeParams,
        explicit: &[String],
        job_stopwords_sha256: &str,
    ) -> Result<(), ModelError> {
        // A stop-word file the job names must hold the model's words.
        if explicit.iter().any(|k| k == "stopwords")
            && !matches!(job.stopwords.as_str(), "english" | "none")
            && job_stopwords_sha256 != self.header.stopwords_sha256
        {
            return Err(ModelError::Contradicts {
                path: self.dir.clone(),
                key: "vectorize.stopwords".into(),
                model: format!("stop words with SHA-256 {}", self.header.stopwords_sha256),
                job: format!(
                    "stop-word file `{}`, whose words have SHA-256 {job_stopwords_sha256}",
                    job.stopwords
                ),
            });
        }
        // Unset keys are compared by the value they take in effect.
        let model =
            serde_json::to_value(self.header.vectorize.effective()).expect("params serialise");
        let job = serde_json::to_value(job.effective()).expect("params serialise");
        for key in explicit {
            let (m, j) = (model.get(key), job.get(key));
            if m != j {
                let show = |v: Option<&serde_json::Value>| {
                    v.map_or_else(|| "nothing".to_owned(), ToString::to_string)
                };
                return Err(ModelError::Contradicts {
                    path: self.dir.clone(),
                    key: format!("vectorize.{key}"),
                    model: show(m),
                    job: show(j),
                });
            }
        }
        Ok(())
    }
}

/// The fit-time statistics of each of `k` clusters, from each fitted document's nearest
/// cluster (`-1`: no known term) and its similarity.
pub fn fit_clusters(k: usize, labels: &[i32], similarity: &[f32]) -> Vec<FitCluster> {
    let mut per: Vec<Vec<f32>> = vec![Vec::new(); k];
    for (&l, &s) in labels.iter().zip(similarity) {
        if l >= 0 {
            per[l as usize].push(s);
        }
    }
    let n_known: usize = per.iter().map(Vec::len).sum();
    per.into_iter()
        .enumerate()
        .map(|(c, mut sims)| {
            sims.sort_unstable_by(f32::total_cmp);
            let quantile = |q: f64| {
                if sims.is_empty() {
                    0.0
                } else {
                    // Nearest rank.
                    let rank = (q * sims.len() as f64).ceil().max(1.0) as usize;
                    sims[rank.min(sims.len()) - 1]
                }
            };
            let n = sims.len();
            FitCluster {
                cluster: c as i32,
                n_docs: n as u64,
                share: if n_known == 0 {
                    0.0
                } else {
                    n as f64 / n_known as f64
                },
                mean_similarity: if n == 0 {
                    0.0
                } else {
                    sims.iter().map(|&s| f64::from(s)).sum::<f64>() / n as f64
                },
                similarity_quantiles: QUANTILES.map(quantile),
            }
        })
        .collect()
}

/// Jensen-Shannon divergence (base 2, in [0, 1]) between two distributions of cluster shares.
pub fn js_divergence(p: &[f64], q: &[f64]) -> f64 {
    let kl = |a: &[f64], m: &[f64]| -> f64 {
        a.iter()
            .zip(m)
            .filter(|&(&x, _)| x > 0.0)
            .map(|(&x, &y)| x * (x / y).log2())
            .sum()
    };
    let m: Vec<f64> = p.iter().zip(q).map(|(a, b)| (a + b) / 2.0).collect();
    (0.5 * kl(p, &m) + 0.5 * kl(q, &m)).clamp(0.0, 1.0)
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
