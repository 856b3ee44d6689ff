//! A remote Parquet file as the parquet crate's async reader sees it.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};

use super::error::StoreError;
use super::location::Remote;

/// A Parquet file in an object store, for the parquet crate's async reader: footer and column
/// chunks are fetched as byte ranges, the ranges of one row group in one call.
pub struct ObjectFile {
    store: Arc<dyn ObjectStore>,
    key: Key,
    size: u64,
}

impl ObjectFile {
    /// The file `remote`, `size` bytes long.
    pub fn new(remote: Remote, size: u64) -> Self {
        Self {
            store: remote.store,
            key: remote.key,
            size,
        }
    }

    /// The bytes of `range`, checked to be as long as asked: a store (or a proxy) that answers
    /// with a short body is asked again, up to [`RANGE_ATTEMPTS`] times, and then reported as
    /// a retryable store error, never handed on as data.
    async fn range(&self, range: Range<u64>) -> Result<Bytes, StoreError> {
        let url = || format!("{}#bytes={}-{}", self.key, range.start, range.end);
        let want = range.end - range.start;
        let mut got = 0;
        for attempt in 1..=RANGE_ATTEMPTS {
            let bytes = self
                .store
                .get_range(&self.key, range.clone())
                .await
                .map_err(|e| StoreError::new("read", &url(), e))?;
            if bytes.len() as u64 == want {
                return Ok(bytes);
            }
            got = bytes.len();
            tracing::warn!(key = %self.key, attempt, want, got, "the store answered a range read with the wrong length; asking again");
        }
        Err(StoreError::corrupt(
            "read",
            &url(),
            format!(
                "the store answered with {got} bytes instead of {want}, {RANGE_ATTEMPTS} times"
            ),
        ))
    }
}

/// How many times a range read that comes back with the wrong length is asked again.
const RANGE_ATTEMPTS: u32 = 3;

/// Ranges closer than this are fetched in one request.
const COALESCE: u64 = 1 << 20;

/// `ranges` merged where they overlap or lie within [`COALESCE`] of each other, sorted.
fn merged(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(COALESCE) => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    out
}

fn external(e: StoreError) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(Box::new(e))
}

impl parquet::arrow::async_reader::AsyncFileReader for ObjectFile {
    fn get_bytes(
        &mut self,
        range: Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Bytes>> {
        Box::pin(async move { self.range(range).await.map_err(external) })
    }

    /// The ranges of one row group, near ones in one request, each fetch checked for length
    /// (object_store's own `get_ranges` panics on a short body).
    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        Box::pin(async move {
            use futures::{StreamExt, TryStreamExt};
            let fetch = merged(&ranges);
            let fetched: Vec<Bytes> = futures::stream::iter(fetch.iter().cloned())
                .map(|r| self.range(r))
                .buffered(super::CONCURRENCY)
                .try_collect()
                .await
                .map_err(external)?;
            Ok(ranges
                .iter()
                .map(|r| {
                    let i = fetch.partition_point(|f| f.start <= r.start) - 1;
                    let base = fetch[i].start;
                    fetched[i].slice((r.start - base) as usize..(r.end - base) as usize)
                })
                .collect())
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a parquet::arrow::arrow_reader::ArrowReaderOptions>,
    ) -> futures::future::BoxFuture<
        'a,
        parquet::errors::Result<Arc<parquet::file::metadata::ParquetMetaData>>,
    > {
        Box::pin(async move {
            let size = self.size;
            // One request reads the footer of a file whose metadata fits in 64 KiB.
            let metadata = parquet::file::metadata::ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::merged;

    #[test]
    fn near_and_overlapping_ranges_are_merged_and_far_ones_kept_apart() {
        let far = 10 << 20;
        assert_eq!(
            merged(&[far..far + 5, 0..10, 5..20, 30..40]),
            vec![0..40, far..far + 5]
        );
        assert_eq!(merged(&[3..3, 3..3]).len(), 1);
        assert!(merged(&[]).is_empty());
    }
}
