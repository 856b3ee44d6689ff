//! Reading a model back: its header checked (format, content id, clusters), every table's
//! SHA-256 verified, and the vocabulary and centroids decoded for `assign`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use arrow::datatypes::{Float32Type, Int32Type};
use sha2::{Digest, Sha256};

use super::{
    CURRENT_FILE, Current, FORMAT_VERSION, FORMAT_VERSION_PLAIN, HEADER_FILE, Model, ModelError,
    ModelHeader, TABLES, WORDS_FILE, model_dir, model_id, table_file,
};
use crate::cluster::Centroids;
use crate::io::hex;
use crate::io::store;
use crate::output::Table;
use crate::text::{KoreanWords, Transformer, VectorizeParams};

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
        if found != u64::from(FORMAT_VERSION) && found != u64::from(FORMAT_VERSION_PLAIN) {
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
        let words = match header.files.get(WORDS_FILE) {
            None => None,
            Some(expected) => {
                let path = dir.join(WORDS_FILE);
                let bytes = store::read(&path)?
                    .ok_or_else(|| corrupt(&dir, format!("`{WORDS_FILE}` is missing")))?;
                if *expected != hex(&Sha256::digest(&bytes)) {
                    return Err(corrupt(
                        &path,
                        "its SHA-256 differs from the header's".into(),
                    ));
                }
                Some(bytes)
            }
        };
        Self::from_tables(
            header,
            dir,
            &tables[Table::Vocabulary.name()],
            &tables[Table::Centroids.name()],
            words.as_deref(),
        )
    }

    pub(super) fn from_tables(
        header: ModelHeader,
        dir: PathBuf,
        vocabulary: &[u8],
        centroids: &[u8],
        words: Option<&[u8]>,
    ) -> Result<Self, ModelError> {
        let korean = match words {
            None if header.format_version == FORMAT_VERSION => {
                return Err(ModelError::Corrupt {
                    path: dir.join(HEADER_FILE),
                    reason: format!("format version {FORMAT_VERSION} without `{WORDS_FILE}`"),
                });
            }
            None => None,
            Some(bytes) => {
                Some(
                    KoreanWords::from_json(bytes).map_err(|reason| ModelError::Corrupt {
                        path: dir.join(WORDS_FILE),
                        reason,
                    })?,
                )
            }
        };
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
            korean,
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
        let params = match &self.korean {
            Some(words) => params.with_korean(words.clone()),
            None if params.analyzer().tokenizer().learns_korean() => {
                return Err(ModelError::Corrupt {
                    path: self.dir.join(HEADER_FILE),
                    reason: format!(
                        "tokenizer `{:?}` needs the word table `{WORDS_FILE}`, which the model lacks",
                        self.header.vectorize.tokenizer
                    ),
                });
            }
            None => params,
        };
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
            && !crate::text::params::BUILT_IN_STOPWORDS.contains(&job.stopwords.as_str())
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
