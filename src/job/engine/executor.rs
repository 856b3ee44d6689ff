//! What runs on the executors of an engine's fit, and the formats it exchanges with the
//! driver (see the parent module): the sample rule, the vectorizer, a refinement round.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Builder, Int32Array, Int32Builder, Int64Array,
    ListBuilder, RecordBatch,
};
use arrow::datatypes::{DataType, Field, Float32Type, Int32Type, Schema};
use serde::{Deserialize, Serialize};

use crate::cluster::{Centroids, NearestCentroids, StreamedSums};
use crate::job::JobError;
use crate::job::assign::{batch_documents, batch_strings};
use crate::job::pipeline;
use crate::sparse::Csr;
use crate::text::{Transformer, VectorizeParams};

pub(super) fn step_error(problem: impl Into<String>) -> JobError {
    JobError::EngineStep {
        problem: problem.into(),
    }
}

/// Which documents a fit's sample holds: those whose id hashes, with `seed`, below
/// `fraction` of the hash range (every document when `fraction` is 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRule {
    pub seed: u64,
    pub fraction: f64,
}

/// The rows of `batch` in the sample `rule` draws, as the two columns `id_column` and
/// `text_column` (as UTF-8 views); rows whose text is null are left out, as `fit` leaves
/// them out. A null id is an error naming the column.
pub fn sample(
    batch: &RecordBatch,
    id_column: &str,
    text_column: &str,
    rule: SampleRule,
) -> Result<RecordBatch, JobError> {
    let (ids, texts) = batch_documents(batch, id_column, text_column)?;
    let keep: BooleanArray = ids
        .iter()
        .zip(texts.iter())
        .map(|(id, text)| {
            Some(
                text.is_some()
                    && pipeline::in_sample(id.unwrap_or_default(), rule.seed, rule.fraction),
            )
        })
        .collect();
    let ids = arrow::compute::filter(&ids, &keep).map_err(|e| step_error(e.to_string()))?;
    let texts = arrow::compute::filter(&texts, &keep).map_err(|e| step_error(e.to_string()))?;
    let schema = Schema::new(vec![
        Field::new(id_column, DataType::Utf8View, false),
        Field::new(text_column, DataType::Utf8View, false),
    ]);
    RecordBatch::try_new(Arc::new(schema), vec![ids, texts]).map_err(|e| step_error(e.to_string()))
}

/// What a [`Vectorizer`] is sent as: the vectorize parameters, the stop words when they came
/// from a file, the terms and the idf (as f32 bits, so that they travel exactly).
#[derive(Serialize, Deserialize)]
pub(super) struct VectorizerState {
    pub(super) vectorize: VectorizeParams,
    pub(super) stopwords: Option<Vec<String>>,
    /// The Korean word table ([`crate::text::KoreanWords::to_json`]), for the tokenisers that
    /// split Korean words.
    pub(super) korean: Option<String>,
    pub(super) terms: Vec<String>,
    pub(super) idf_bits: Vec<u32>,
}

/// Vectorises documents as the fit's rows were: on an executor, for df counts and for the
/// rows of the refinement.
pub struct Vectorizer {
    transformer: Transformer,
}

impl Vectorizer {
    /// The vectoriser [`super::EngineFit::vectorizer`] sent.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, JobError> {
        let state: VectorizerState = serde_json::from_slice(bytes)
            .map_err(|e| step_error(format!("not a vectorizer: {e}")))?;
        let params = state
            .vectorize
            .check_with_stopwords(state.stopwords.as_deref())
            .map_err(|errors| {
                step_error(format!(
                    "the vectorizer's parameters: {}",
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            })?;
        let params = match &state.korean {
            Some(json) => params.with_korean(
                crate::text::KoreanWords::from_json(json.as_bytes())
                    .map_err(|e| step_error(format!("the vectorizer's word table: {e}")))?,
            ),
            None => params,
        };
        if state.idf_bits.len() != state.terms.len() {
            return Err(step_error("the vectorizer has not one idf per term"));
        }
        let idf = state.idf_bits.into_iter().map(f32::from_bits).collect();
        Ok(Self {
            transformer: Transformer::new(params, &state.terms, idf),
        })
    }

    /// The rows of the documents of `batch` with a text (`text_column`), in its order.
    fn transform(&self, batch: &RecordBatch, text_column: &str) -> Result<Csr, JobError> {
        let texts = batch_strings(batch, text_column)?;
        let texts: Vec<&str> = texts.iter().flatten().collect();
        Ok(self.transformer.transform(&texts).matrix)
    }

    /// The document frequency of each term among the documents of `batches` with a text,
    /// and their number: `(term int32, count int64)` for each term counted, then `(-1,
    /// documents)`. Counted as `fit` counts the whole input for a refined sample.
    pub fn df_counts(
        &self,
        batches: impl IntoIterator<Item = Result<RecordBatch, JobError>>,
        text_column: &str,
    ) -> Result<RecordBatch, JobError> {
        let mut df = vec![0i64; self.transformer.n_terms()];
        let mut n_docs = 0i64;
        for batch in batches {
            let x = self.transform(&batch?, text_column)?;
            n_docs += x.rows() as i64;
            for &j in x.indices() {
                df[j as usize] += 1;
            }
        }
        let (terms, counts): (Vec<i32>, Vec<i64>) = df
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(j, &n)| (j as i32, n))
            .chain([(-1, n_docs)])
            .unzip();
        batch_of(vec![
            ("term", Arc::new(Int32Array::from(terms)) as ArrayRef),
            ("count", Arc::new(Int64Array::from(counts))),
        ])
    }

    /// The rows of the documents of `batch` with a known term, as `(indices list<int32>,
    /// values list<float32>)`: what the refinement's rounds read. Documents without a text
    /// or without a known term belong to no cluster and are left out.
    pub fn rows(&self, batch: &RecordBatch, text_column: &str) -> Result<RecordBatch, JobError> {
        let x = self.transform(batch, text_column)?;
        let mut indices = ListBuilder::new(Int32Builder::new());
        let mut values = ListBuilder::new(Float32Builder::new());
        for i in 0..x.rows() {
            let row = crate::sparse::row(&x, i);
            if row.nnz() == 0 {
                continue;
            }
            indices
                .values()
                .extend(row.indices.iter().map(|&j| Some(j as i32)));
            indices.append(true);
            values.values().append_slice(row.values);
            values.append(true);
        }
        batch_of(vec![
            ("indices", Arc::new(indices.finish()) as ArrayRef),
            ("values", Arc::new(values.finish())),
        ])
    }
}

/// A batch of non-null columns.
pub(super) fn batch_of(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch, JobError> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), false))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| step_error(e.to_string()))
}

/// Rows that [`Vectorizer::rows`] made, back as a matrix over `n_terms` columns.
fn rows_of(batch: &RecordBatch, n_terms: usize) -> Result<Csr, JobError> {
    let list = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_list_opt::<i32>())
            .ok_or_else(|| step_error(format!("the rows have no list column `{name}`")))
    };
    let (indices, values) = (list("indices")?, list("values")?);
    let (ji, vi) = (
        indices
            .values()
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| step_error("`indices` is not a list of int32"))?,
        values
            .values()
            .as_primitive_opt::<Float32Type>()
            .ok_or_else(|| step_error("`values` is not a list of float32"))?,
    );
    let mut indptr = Vec::with_capacity(batch.num_rows() + 1);
    indptr.push(0usize);
    let (mut cols, mut data) = (Vec::new(), Vec::new());
    for i in 0..batch.num_rows() {
        let (a, b) = (indices.value_offsets()[i], indices.value_offsets()[i + 1]);
        let (c, d) = (values.value_offsets()[i], values.value_offsets()[i + 1]);
        if b - a != d - c {
            return Err(step_error(format!("row {i} has not one value per index")));
        }
        let row_cols = &ji.values()[a as usize..b as usize];
        if row_cols.iter().any(|&j| j < 0 || j as usize >= n_terms)
            || row_cols.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(step_error(format!(
                "row {i} has indices outside 0..{n_terms} or out of order"
            )));
        }
        cols.extend(row_cols.iter().map(|&j| j as u32));
        data.extend_from_slice(&vi.values()[c as usize..d as usize]);
        indptr.push(cols.len());
    }
    Ok(Csr::new((batch.num_rows(), n_terms), indptr, cols, data))
}

/// Centroids as they travel: per cluster, term indices and f32 bits.
#[derive(Serialize, Deserialize)]
pub(super) struct CentroidsState {
    n_terms: usize,
    rows: Vec<(Vec<u32>, Vec<u32>)>,
}

impl CentroidsState {
    pub(super) fn of(c: &Centroids) -> Self {
        Self {
            n_terms: c.n_terms(),
            rows: (0..c.n_clusters())
                .map(|i| {
                    let row = c.row(i);
                    (
                        row.indices.to_vec(),
                        row.values.iter().map(|v| v.to_bits()).collect(),
                    )
                })
                .collect(),
        }
    }

    fn centroids(&self) -> Result<Centroids, JobError> {
        let mut c = Centroids::empty(self.n_terms);
        for (indices, bits) in &self.rows {
            if indices.len() != bits.len() || indices.iter().any(|&j| j as usize >= self.n_terms) {
                return Err(step_error("a centroid of the round is malformed"));
            }
            let weights: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
            c.push_sparse(indices, &weights);
        }
        Ok(c)
    }
}

/// What a [`Round`] is sent as.
#[derive(Serialize, Deserialize)]
pub(super) struct RoundState {
    pub(super) centroids: CentroidsState,
    /// The round before's centroids (none in the first round).
    pub(super) previous: Option<CentroidsState>,
}

/// One refinement round on an executor: each document to its nearest centroid, summed per
/// cluster.
pub struct Round {
    n_terms: usize,
    k: usize,
    nearest: NearestCentroids,
    previous: Option<NearestCentroids>,
}

impl Round {
    /// The round [`super::EngineFit::round`] sent.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, JobError> {
        let state: RoundState = serde_json::from_slice(bytes)
            .map_err(|e| step_error(format!("not a refinement round: {e}")))?;
        let centroids = state.centroids.centroids()?;
        let previous = state
            .previous
            .as_ref()
            .map(CentroidsState::centroids)
            .transpose()?;
        Ok(Self {
            n_terms: centroids.n_terms(),
            k: centroids.n_clusters(),
            nearest: NearestCentroids::new(&centroids),
            previous: previous.as_ref().map(NearestCentroids::new),
        })
    }

    /// The round's partial sums over the rows in `batches` ([`Vectorizer::rows`]): each
    /// row added to its nearest centroid's sum, as `(cluster, term, value)`; then each
    /// cluster's members at term −1, and at cluster −1, term −1 how many rows the previous
    /// round's centroids put in another cluster.
    pub fn partial_sums(
        &self,
        batches: impl IntoIterator<Item = Result<RecordBatch, JobError>>,
    ) -> Result<RecordBatch, JobError> {
        let mut sums = StreamedSums::new(self.k, self.n_terms);
        let mut moved = 0i64;
        for batch in batches {
            let x = rows_of(&batch?, self.n_terms)?;
            let labels = self.nearest.nearest(&x).labels;
            if let Some(previous) = &self.previous {
                let before = previous.nearest(&x).labels;
                moved += labels.iter().zip(&before).filter(|(a, b)| a != b).count() as i64;
            }
            sums.add(&x, &labels);
        }
        let (mut clusters, mut terms, mut values) = (Vec::new(), Vec::new(), Vec::new());
        for (c, j, v) in sums.entries() {
            clusters.push(c as i32);
            terms.push(j as i32);
            values.push(v);
        }
        for (c, &n) in sums.sizes().iter().enumerate() {
            clusters.push(c as i32);
            terms.push(-1);
            values.push(n as i64);
        }
        clusters.push(-1);
        terms.push(-1);
        values.push(moved);
        batch_of(vec![
            ("cluster", Arc::new(Int32Array::from(clusters)) as ArrayRef),
            ("term", Arc::new(Int32Array::from(terms))),
            ("value", Arc::new(Int64Array::from(values))),
        ])
    }
}
