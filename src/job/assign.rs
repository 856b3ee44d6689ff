//! Assigning one partition to a fixed model, streaming: read a record batch, vectorise it
//! with the model's vocabulary and idf, pick the nearest centroid, append the labels to the
//! staged file. Memory holds one batch and one row group of output, whatever the partition's
//! size; what grows with it is an 8-byte hash per document id for the duplicate check
//! ([`StreamedIdCheck`]).

use std::time::Instant;

use arrow::array::{Array, RecordBatch, StringViewArray};
use tracing::info;

use super::JobError;
use super::documents::{BATCH_ROWS, StreamedIdCheck, without_null_texts};
use crate::cluster::NearestCentroids;
use crate::io::commit::Staging;
use crate::io::{DocumentBatches, Partition};
use crate::model::{self, Model};
use crate::output::Table;
use crate::output::manifest::Drift;
use crate::output::spec::InputSpec;
use crate::output::tables::{self, ClusterSums, LabelColumns};
use crate::text::Transformer;

/// A model ready to assign with: its vocabulary, idf and centroids laid out once, for any
/// number of batches. It owns what it needs, so a front end (the Python module, an engine's
/// task) can keep one beside its [`Model`].
pub struct Assigner {
    model_id: String,
    transformer: Transformer,
    /// The model's centroids laid out for scoring, built once for every batch.
    nearest: NearestCentroids,
    /// The fit-time 5th percentile of similarity, per cluster.
    p05: Vec<f32>,
    /// The fit's cluster shares.
    shares: Vec<f64>,
}

impl Assigner {
    pub fn new(model: &Model) -> Result<Self, JobError> {
        let clusters = &model.header.clusters;
        Ok(Self {
            model_id: model.id().to_owned(),
            transformer: model.transformer()?,
            nearest: NearestCentroids::new(model.centroids()),
            p05: clusters.iter().map(model::FitCluster::p05).collect(),
            shares: clusters.iter().map(|c| c.share).collect(),
        })
    }

    fn k(&self) -> usize {
        self.p05.len()
    }

    /// The `labels` table of the documents in `batch`, as `assign` writes it: one row per
    /// document whose text is not null, in the batch's order. The id and text columns may be
    /// any string encoding (Utf8, LargeUtf8, Utf8View, dictionary). A missing column, a column
    /// that is not of strings, or a null id is an error naming the column.
    pub fn labels(
        &self,
        batch: &RecordBatch,
        id_column: &str,
        text_column: &str,
    ) -> Result<RecordBatch, JobError> {
        let (ids, texts) = batch_documents(batch, id_column, text_column)?;
        let (ids, texts) = if texts.null_count() > 0 {
            without_null_texts(&ids, &texts)
        } else {
            (ids, texts)
        };
        let texts: Vec<&str> = texts.iter().map(Option::unwrap_or_default).collect();
        let transformed = self.transformer.transform(&texts);
        let nearest = self.nearest.nearest(&transformed.matrix);
        Ok(tables::labels(
            &ids,
            LabelColumns::of(&nearest, 0..texts.len()),
            &self.model_id,
        )?)
    }
}

/// The id and text columns of an in-memory batch as strings; a missing column, a column that
/// is not of strings, or a null id is an error naming the column.
pub(super) fn batch_documents(
    batch: &RecordBatch,
    id_column: &str,
    text_column: &str,
) -> Result<(StringViewArray, StringViewArray), JobError> {
    let ids = batch_strings(batch, id_column)?;
    if ids.null_count() > 0 {
        return Err(JobError::NullBatchIds {
            column: id_column.to_owned(),
            n: ids.null_count(),
        });
    }
    Ok((ids, batch_strings(batch, text_column)?))
}

/// Column `name` of an in-memory batch as strings, or an error naming it.
pub(super) fn batch_strings(batch: &RecordBatch, name: &str) -> Result<StringViewArray, JobError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| JobError::MissingBatchColumn {
            column: name.to_owned(),
            available: batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        })?;
    if !crate::io::is_string_type(column.data_type())
        && !crate::io::is_string_list_type(column.data_type())
    {
        return Err(JobError::BatchColumnType {
            column: name.to_owned(),
            found: column.data_type().to_string(),
        });
    }
    crate::io::read::as_string_view(column).map_err(|e| JobError::BatchColumnType {
        column: name.to_owned(),
        found: format!("{} ({e})", column.data_type()),
    })
}

/// What assigning one partition staged.
pub(super) struct Assigned {
    pub(super) n_docs: usize,
    pub(super) n_null: usize,
    pub(super) n_empty: usize,
    pub(super) drift: Drift,
    pub(super) seconds_read: f64,
    pub(super) seconds_total: f64,
    /// `(rows, bytes)` of the staged labels and clusters files.
    pub(super) labels_file: (u64, u64),
    pub(super) clusters_file: (u64, u64),
}

/// Assigns every document of `partition` and stages its `labels` and `clusters` files.
pub(super) fn assign_partition(
    staging: &Staging,
    input: &InputSpec,
    assigner: &Assigner,
    partition: &Partition,
) -> Result<Assigned, JobError> {
    let start = Instant::now();
    let model_id = assigner.model_id.as_str();
    let key = &partition.key;
    let k = assigner.k();
    let mut writer = staging.writer(Table::Labels, key)?;
    let mut sums = ClusterSums::new(k);
    let (mut n_docs, mut n_null, mut n_empty) = (0usize, 0usize, 0usize);
    let (mut n_tokens, mut n_oov) = (0u64, 0u64);
    let mut id_check = StreamedIdCheck::new(input, partition);
    let mut seconds_read = 0.0;
    let mut batches =
        DocumentBatches::new(partition, &input.id_column, &input.text_column, BATCH_ROWS);
    loop {
        let t = Instant::now();
        let Some(next) = batches.next() else { break };
        seconds_read += t.elapsed().as_secs_f64();
        let (file, docs) = next?;
        id_check.batch(file, &docs.ids)?;
        let nulls = docs.texts.null_count();
        let (ids, texts) = if nulls > 0 {
            without_null_texts(&docs.ids, &docs.texts)
        } else {
            (docs.ids, docs.texts)
        };
        n_null += nulls;
        let texts: Vec<&str> = texts.iter().map(Option::unwrap_or_default).collect();
        let transformed = assigner.transformer.transform(&texts);
        let nearest = assigner.nearest.nearest(&transformed.matrix);
        ClusterSums::add(
            &mut sums,
            &nearest.labels,
            &nearest.similarity,
            &assigner.p05,
        );
        n_docs += texts.len();
        n_empty += transformed.n_empty;
        n_tokens += transformed.n_tokens;
        n_oov += transformed.n_oov_tokens;
        let batch = tables::labels(&ids, LabelColumns::of(&nearest, 0..texts.len()), model_id)?;
        writer.write(&batch)?;
    }
    id_check.finish()?;
    if n_null > 0 {
        tracing::warn!(partition = %key, n_null, "skipped rows with a null text");
    }
    let labels_file = staging.close(Table::Labels, key, writer)?;
    let clusters = tables::clusters(&sums, model_id)?;
    let clusters_file = (
        clusters.num_rows() as u64,
        staging.write(Table::Clusters, key, &clusters)?,
    );
    let n_known: u64 = sums.iter().map(|s| s.n_docs).sum();
    let ratio = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
    let shares: Vec<f64> = sums
        .iter()
        .map(|s| ratio(s.n_docs as f64, n_known as f64))
        .collect();
    let drift = Drift {
        oov_token_rate: ratio(n_oov as f64, n_tokens as f64),
        share_no_known_term: ratio(n_empty as f64, n_docs as f64),
        share_below_fit_p05: ratio(
            sums.iter().map(|s| s.below_p05).sum::<u64>() as f64,
            n_known as f64,
        ),
        js_divergence: if n_known == 0 {
            0.0
        } else {
            model::js_divergence(&shares, &assigner.shares)
        },
    };
    info!(
        partition = %key,
        n_docs,
        model_id,
        oov_token_rate = drift.oov_token_rate,
        js_divergence = drift.js_divergence,
        "assigned"
    );
    Ok(Assigned {
        n_docs,
        n_null,
        n_empty,
        drift,
        seconds_read,
        seconds_total: start.elapsed().as_secs_f64(),
        labels_file,
        clusters_file,
    })
}
