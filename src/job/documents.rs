//! A partition's documents as the job reads them: in batches of [`BATCH_ROWS`], rows with a
//! null text left out, and ids checked: no null ids, and no id twice in a partition unless
//! `input.allow_duplicate_ids` is set.
//!
//! [`check_ids`] checks a partition held in memory. [`StreamedIdCheck`] checks one read batch
//! by batch (`assign`, and the sampling pass of a sampled fit): it keeps a 64-bit hash per
//! id, 8 bytes a document, and confirms equal hashes by a second read of the id column, so a
//! hash collision between two different ids is never reported as a duplicate.

use std::path::PathBuf;

use arrow::array::{Array, BooleanArray, StringViewArray};
use arrow::compute::filter;

use super::JobError;
use crate::io::{DocumentBatches, InputError, Partition};
use crate::output::spec::InputSpec;

/// Rows read, vectorised and assigned at a time.
pub const BATCH_ROWS: usize = 8 * 1024;

/// The rows of `ids` and `texts` where `keep` is true.
fn keep_rows(
    ids: &StringViewArray,
    texts: &StringViewArray,
    keep: &BooleanArray,
) -> (StringViewArray, StringViewArray) {
    let pick = |a: &StringViewArray| {
        filter(a, keep)
            .expect("filter of equal-length arrays")
            .as_any()
            .downcast_ref::<StringViewArray>()
            .expect("filter keeps the type")
            .clone()
    };
    (pick(ids), pick(texts))
}

/// The rows of `ids` and `texts` whose text is not null.
pub(super) fn without_null_texts(
    ids: &StringViewArray,
    texts: &StringViewArray,
) -> (StringViewArray, StringViewArray) {
    let keep: BooleanArray = texts.iter().map(|t| Some(t.is_some())).collect();
    keep_rows(ids, texts, &keep)
}

/// Rejects null ids, and ids that occur twice unless `input.allow_duplicate_ids` is set,
/// naming the file of the first offending row (files are read in order, so row counts from
/// the footers locate it).
pub(super) fn check_ids(
    input: &InputSpec,
    partition: &Partition,
    ids: &StringViewArray,
) -> Result<(), JobError> {
    let column = &input.id_column;
    let file_of = |row: usize| {
        let mut end = 0u64;
        for f in &partition.files {
            end += f.n_rows;
            if (row as u64) < end {
                return f.path.clone();
            }
        }
        partition
            .files
            .last()
            .map(|f| f.path.clone())
            .unwrap_or_default()
    };
    let n_nulls = ids.null_count();
    if n_nulls > 0 {
        let first = (0..ids.len()).find(|&i| ids.is_null(i)).unwrap_or(0);
        return Err(InputError::NullIds {
            path: file_of(first),
            column: column.clone(),
            n_nulls,
        }
        .into());
    }
    if !input.allow_duplicate_ids {
        let mut seen = rustc_hash::FxHashSet::default();
        seen.reserve(ids.len());
        for (row, id) in ids.iter().enumerate() {
            let id = id.unwrap_or_default();
            if !seen.insert(id) {
                return Err(InputError::DuplicateId {
                    path: file_of(row),
                    partition: partition.key.to_string(),
                    column: column.clone(),
                    id: id.to_owned(),
                }
                .into());
            }
        }
    }
    Ok(())
}

/// The id checks of [`check_ids`] for a partition read batch by batch: memory is 8 bytes a
/// document (none with `input.allow_duplicate_ids`).
pub(super) struct StreamedIdCheck<'a> {
    input: &'a InputSpec,
    partition: &'a Partition,
    hashes: Option<IdHashes>,
}

impl<'a> StreamedIdCheck<'a> {
    pub(super) fn new(input: &'a InputSpec, partition: &'a Partition) -> Self {
        let n_rows = usize::try_from(partition.n_rows()).unwrap_or(0);
        Self {
            input,
            partition,
            hashes: (!input.allow_duplicate_ids).then(|| IdHashes::with_capacity(n_rows)),
        }
    }

    /// Checks the ids of the next batch, read from file `file` of the partition: an error if
    /// one is null.
    pub(super) fn batch(&mut self, file: usize, ids: &StringViewArray) -> Result<(), JobError> {
        if ids.null_count() > 0 {
            return Err(InputError::NullIds {
                path: self.partition.files[file].path.clone(),
                column: self.input.id_column.clone(),
                n_nulls: ids.null_count(),
            }
            .into());
        }
        if let Some(hashes) = &mut self.hashes {
            ids.iter().flatten().for_each(|id| hashes.push(id));
        }
        Ok(())
    }

    /// After the last batch: an error naming the first id that occurred twice.
    pub(super) fn finish(self) -> Result<(), JobError> {
        let Some(hashes) = self.hashes else {
            return Ok(());
        };
        let repeated = hashes.repeated();
        if !repeated.is_empty()
            && let Some((id, path)) =
                find_duplicate(self.partition, &self.input.id_column, &repeated)?
        {
            return Err(InputError::DuplicateId {
                path,
                partition: self.partition.key.to_string(),
                column: self.input.id_column.clone(),
                id,
            }
            .into());
        }
        Ok(())
    }
}

/// The document ids of one partition: a 64-bit hash per id, 8 bytes per document reserved
/// once from the footers' row count, sorted when the partition has been read.
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
) -> Result<Option<(String, PathBuf)>, JobError> {
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
