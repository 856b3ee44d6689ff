//! Assigning one partition to a fixed model, streaming: read a record batch, vectorise it
//! with the model's vocabulary and idf, pick the nearest centroid, append the labels to the
//! staged file. Memory holds one batch and one row group of output, whatever the partition's
//! size; what grows with it is an 8-byte hash per document id for the duplicate check
//! ([`IdHashes`]).

use std::time::Instant;

use arrow::array::Array;
use tracing::info;

use super::JobError;
use super::manifest::Drift;
use super::spec::InputSpec;
use super::tables::{self, ClusterSums, LabelColumns};
use crate::cluster::NearestCentroids;
use crate::io::commit::Staging;
use crate::io::{DocumentBatches, InputError, Partition, Table};
use crate::model::{self, Model};
use crate::text::Transformer;

/// Rows read, vectorised and assigned at a time.
pub const BATCH_ROWS: usize = 8 * 1024;

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

/// The document ids of one partition, for the duplicate check: a 64-bit hash per id, 8 bytes
/// per document reserved once from the footers' row count, sorted when the partition has
/// been read. Equal hashes are confirmed by a second read of the id column alone, so a hash
/// collision between two different ids is never reported as a duplicate.
struct IdHashes {
    hashes: Vec<u64>,
}

impl IdHashes {
    fn with_capacity(n: usize) -> Self {
        Self {
            hashes: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, id: &str) {
        self.hashes.push(id_hash(id));
    }

    /// The hashes that occur more than once, ascending (empty when every id is distinct).
    fn repeated(mut self) -> Vec<u64> {
        self.hashes.sort_unstable();
        let mut repeated: Vec<u64> = self
            .hashes
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        repeated.dedup();
        repeated
    }
}

/// A document id's hash for the duplicate check.
fn id_hash(id: &str) -> u64 {
    super::fingerprint::id_hash(&[], id)
}

/// The first id of `partition` that occurs twice, with the file of its second occurrence,
/// among the ids whose hash is in `repeated` (sorted): reads the id column again.
fn find_duplicate(
    partition: &Partition,
    id_column: &str,
    repeated: &[u64],
) -> Result<Option<(String, std::path::PathBuf)>, JobError> {
    let mut seen: rustc_hash::FxHashSet<String> = Default::default();
    for next in DocumentBatches::ids(partition, id_column, BATCH_ROWS) {
        let (file, docs) = next?;
        for id in docs.ids.iter().flatten() {
            if repeated.binary_search(&id_hash(id)).is_ok() && !seen.insert(id.to_owned()) {
                return Ok(Some((id.to_owned(), partition.files[file].path.clone())));
            }
        }
    }
    Ok(None)
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
    let mut ids_seen = (!input.allow_duplicate_ids)
        .then(|| IdHashes::with_capacity(usize::try_from(partition.n_rows()).unwrap_or(0)));
    let mut seconds_read = 0.0;
    let mut batches =
        DocumentBatches::new(partition, &input.id_column, &input.text_column, BATCH_ROWS);
    loop {
        let t = Instant::now();
        let Some(next) = batches.next() else { break };
        seconds_read += t.elapsed().as_secs_f64();
        let (file, docs) = next?;
        let path = &partition.files[file].path;
        if docs.ids.null_count() > 0 {
            return Err(InputError::NullIds {
                path: path.clone(),
                column: input.id_column.clone(),
                n_nulls: docs.ids.null_count(),
            }
            .into());
        }
        let nulls = docs.texts.null_count();
        let (ids, texts) = if nulls > 0 {
            super::pipeline::without_null_texts(&docs.ids, &docs.texts)
        } else {
            (docs.ids, docs.texts)
        };
        n_null += nulls;
        if let Some(seen) = &mut ids_seen {
            ids.iter().flatten().for_each(|id| seen.push(id));
        }
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
    if let Some(seen) = ids_seen {
        let repeated = seen.repeated();
        if !repeated.is_empty()
            && let Some((id, path)) = find_duplicate(partition, &input.id_column, &repeated)?
        {
            return Err(InputError::DuplicateId {
                path,
                partition: key.to_string(),
                column: input.id_column.clone(),
                id,
            }
            .into());
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_hashes_differ_for_close_ids() {
        assert_ne!(id_hash("a1"), id_hash("a2"));
        assert_ne!(id_hash(""), id_hash("\0"));
        assert_eq!(id_hash("doc-7"), id_hash("doc-7"));
    }

    #[test]
    fn repeated_hashes_are_each_reported_once() {
        let mut seen = IdHashes::with_capacity(4);
        for id in ["b", "a", "c", "a", "a", "c"] {
            seen.push(id);
        }
        let mut expected = vec![id_hash("a"), id_hash("c")];
        expected.sort_unstable();
        assert_eq!(seen.repeated(), expected);
        let mut distinct = IdHashes::with_capacity(2);
        distinct.push("x");
        distinct.push("y");
        assert!(distinct.repeated().is_empty());
    }
}
