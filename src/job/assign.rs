//! Assigning one partition to a fixed model, streaming: read a record batch, vectorise it
//! with the model's vocabulary and idf, pick the nearest centroid, append the labels to the
//! staged file. Memory holds one batch and one row group of output, whatever the partition's
//! size; what grows with it is an 8-byte hash per document id for the duplicate check
//! ([`StreamedIdCheck`]).

use std::time::Instant;

use arrow::array::Array;
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

/// A model ready to assign with.
pub(super) struct Assigner<'m> {
    pub(super) model: &'m Model,
    transformer: Transformer,
    /// The model's centroids laid out for scoring, built once for every batch.
    nearest: NearestCentroids,
    /// The fit-time 5th percentile of similarity, per cluster.
    p05: Vec<f32>,
    /// The fit's cluster shares.
    shares: Vec<f64>,
}

impl<'m> Assigner<'m> {
    pub(super) fn new(model: &'m Model) -> Result<Self, JobError> {
        let clusters = &model.header.clusters;
        Ok(Self {
            model,
            transformer: model.transformer()?,
            nearest: NearestCentroids::new(model.centroids()),
            p05: clusters.iter().map(model::FitCluster::p05).collect(),
            shares: clusters.iter().map(|c| c.share).collect(),
        })
    }

    fn k(&self) -> usize {
        self.model.centroids().n_clusters()
    }
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
    assigner: &Assigner<'_>,
    partition: &Partition,
) -> Result<Assigned, JobError> {
    let start = Instant::now();
    let model_id = assigner.model.id();
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
