//! A remote Parquet file as the parquet crate's async reader sees it.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};

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
}

impl parquet::arrow::async_reader::AsyncFileReader for ObjectFile {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Bytes>> {
        Box::pin(async move {
            self.store
                .get_range(&self.key, range)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        Box::pin(async move {
            self.store
                .get_ranges(&self.key, &ranges)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
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
