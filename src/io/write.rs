//! Writing record batches to Parquet: one whole file, or a file written batch by batch.
//!
//! Every file is written with the batch's explicit schema, zstd compression and an explicit
//! `close()`. The writer embeds no timestamps, so the same rows give the same bytes. The
//! tables' schemas are the output contract's ([`crate::output::Table`]); this module knows
//! none of them.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::OutputError;

/// The name of the one data file in each output partition directory.
pub const PART_FILE: &str = "part-00000.parquet";

/// The `created_by` of every file written, in the form parquet-mr's `VersionParser` reads
/// (`<application> version <semver> (build <hash>)`), so Spark trusts the files' min/max
/// statistics of string columns.
pub const CREATED_BY: &str = concat!(
    "textcluster version ",
    env!("CARGO_PKG_VERSION"),
    " (build ",
    env!("TEXTCLUSTER_BUILD"),
    ")"
);

fn properties() -> WriterProperties {
    properties_builder().build()
}

/// Rows per row group of a streamed table: the writer buffers one row group in memory.
pub const STREAM_ROW_GROUP: usize = 64 * 1024;

fn properties_builder() -> parquet::file::properties::WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid zstd level"),
        ))
        .set_created_by(CREATED_BY.to_owned())
}

/// `created_by` of a model's table files: the version without the build, so a fit gives the
/// same bytes, and so the same content id, from any build of one version.
pub const MODEL_CREATED_BY: &str = concat!("textcluster version ", env!("CARGO_PKG_VERSION"));

/// `batch` as the bytes of a Parquet file.
pub fn encode_parquet(batch: &RecordBatch) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    encode_with(batch, properties())
}

/// `batch` as the bytes of a model's table file (`created_by` is [`MODEL_CREATED_BY`]).
pub fn encode_model_table(batch: &RecordBatch) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let props = properties_builder()
        .set_created_by(MODEL_CREATED_BY.to_owned())
        .build();
    encode_with(batch, props)
}

fn encode_with(
    batch: &RecordBatch,
    props: WriterProperties,
) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props))?;
    writer.write(batch)?;
    writer.into_inner()
}

/// A table file written batch by batch, so memory holds one row group rather than the whole
/// table: straight to the file on local disk; on an object store, into memory (compressed)
/// and put in one request on [`TableWriter::finish`].
pub struct TableWriter {
    path: std::path::PathBuf,
    inner: TableSink,
    n_rows: u64,
}

enum TableSink {
    Local(ArrowWriter<std::fs::File>),
    Remote(ArrowWriter<Vec<u8>>),
}

impl TableWriter {
    /// Starts a file of batches of `schema` at `path`, creating parent directories.
    pub fn create(path: &Path, schema: SchemaRef) -> Result<Self, OutputError> {
        let parquet_error = |source| OutputError::Parquet {
            path: path.into(),
            source,
        };
        let props = properties_builder()
            .set_max_row_group_row_count(Some(STREAM_ROW_GROUP))
            .build();
        let inner = if super::store::is_remote(path) {
            TableSink::Remote(
                ArrowWriter::try_new(Vec::new(), schema, Some(props)).map_err(parquet_error)?,
            )
        } else {
            if let Some(parent) = path.parent() {
                fs_err::create_dir_all(parent)?;
            }
            let file = fs_err::File::create(path)?.into_parts().0;
            TableSink::Local(
                ArrowWriter::try_new(file, schema, Some(props)).map_err(parquet_error)?,
            )
        };
        Ok(Self {
            path: path.into(),
            inner,
            n_rows: 0,
        })
    }

    /// Appends `batch`.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), OutputError> {
        let result = match &mut self.inner {
            TableSink::Local(w) => w.write(batch),
            TableSink::Remote(w) => w.write(batch),
        };
        self.n_rows += batch.num_rows() as u64;
        result.map_err(|source| OutputError::Parquet {
            path: self.path.clone(),
            source,
        })
    }

    /// Closes the file (and puts it, on an object store); returns what was written.
    pub fn finish(self) -> Result<Written, OutputError> {
        let parquet_error = |source| OutputError::Parquet {
            path: self.path.clone(),
            source,
        };
        let (bytes, sha256) = match self.inner {
            TableSink::Local(w) => {
                let file = w.into_inner().map_err(parquet_error)?;
                file.sync_all()?;
                (file.metadata()?.len(), None)
            }
            TableSink::Remote(w) => {
                let bytes = w.into_inner().map_err(parquet_error)?;
                let n = bytes.len() as u64;
                (n, Some(super::store::put(&self.path, bytes.into())?))
            }
        };
        Ok(Written {
            rows: self.n_rows,
            bytes,
            sha256,
        })
    }
}

/// What a finished file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    pub bytes: u64,
    /// On an object store, the SHA-256 (hex) of the object, checked against what was sent; a
    /// local file is hashed when it is committed.
    pub sha256: Option<String>,
}

/// Writes `batch` as a new Parquet file at `path`, creating parent directories.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<Written, OutputError> {
    let parquet_error = |source| OutputError::Parquet {
        path: path.into(),
        source,
    };
    if super::store::is_remote(path) {
        let bytes = encode_parquet(batch).map_err(parquet_error)?;
        let n_bytes = bytes.len() as u64;
        let sha256 = super::store::put(path, bytes.into())?;
        return Ok(Written {
            rows: batch.num_rows() as u64,
            bytes: n_bytes,
            sha256: Some(sha256),
        });
    }
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let file = fs_err::File::create(path)?;
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(properties())).map_err(parquet_error)?;
    writer.write(batch).map_err(parquet_error)?;
    let file = writer.into_inner().map_err(parquet_error)?;
    file.sync_all()?;
    Ok(Written {
        rows: batch.num_rows() as u64,
        bytes: file.metadata()?.len(),
        sha256: None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float32Array, Int32Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn pairs() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("cluster_a", DataType::Int32, false),
            Field::new("cluster_b", DataType::Int32, false),
            Field::new("cosine", DataType::Float32, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int32Array::from(vec![0])),
                Arc::new(Int32Array::from(vec![1])),
                Arc::new(Float32Array::from(vec![0.25])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn files_name_the_build_in_the_form_spark_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t/dt=x").join(PART_FILE);
        let b = pairs();
        let n_bytes = write_parquet(&path, &b).unwrap();
        assert_eq!(n_bytes.bytes, fs_err::metadata(&path).unwrap().len());
        let file = fs_err::File::open(&path).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file.into_parts().0).unwrap();
        let column = builder.metadata().row_group(0).column(0);
        assert!(matches!(column.compression(), Compression::ZSTD(_)));
        let created_by = builder.metadata().file_metadata().created_by().unwrap();
        assert_eq!(created_by, CREATED_BY);
        let (app, rest) = created_by.split_once(" version ").unwrap();
        let (version, build) = rest.split_once(" (build ").unwrap();
        assert_eq!((app, version), ("textcluster", env!("CARGO_PKG_VERSION")));
        assert!(build.ends_with(')') && build.len() > 1, "{created_by}");
        let read: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
        assert_eq!(read, vec![b]);
    }

    #[test]
    fn model_tables_name_the_version_but_not_the_build() {
        let bytes = bytes::Bytes::from(encode_model_table(&pairs()).unwrap());
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let created_by = builder.metadata().file_metadata().created_by().unwrap();
        assert_eq!(created_by, MODEL_CREATED_BY);
        assert!(!created_by.contains("build"), "{created_by}");
    }

    #[test]
    fn same_rows_give_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let b = pairs();
        let (p1, p2) = (dir.path().join("1.parquet"), dir.path().join("2.parquet"));
        write_parquet(&p1, &b).unwrap();
        write_parquet(&p2, &b).unwrap();
        assert_eq!(fs_err::read(p1).unwrap(), fs_err::read(p2).unwrap());
    }
}
