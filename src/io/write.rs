//! The output tables: their Arrow schemas and how they are written to Parquet.
//!
//! Every table is written with an explicit schema, zstd compression and an explicit
//! `close()`. The writer embeds no timestamps, so the same rows give the same bytes.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::OutputError;

/// The name of the one data file in each output partition directory.
pub const PART_FILE: &str = "part-00000.parquet";

/// An output table; each is a directory under the output path, partitioned like the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `doc_id, cluster, similarity, second_cluster, second_similarity, model_id`: one row
    /// per document with a text.
    Labels,
    /// `cluster, size, term, weight`: the non-zero centroid entries, long format.
    Centroids,
    /// `cluster, rank, term, score, coverage, precision`: the keywords of each cluster.
    Keywords,
    /// `cluster_a, cluster_b, cosine`: pairwise centroid cosine, `cluster_a < cluster_b`.
    Similarity,
    /// `cluster, n_docs, mean_similarity, share_below_fit_p05, model_id`: per partition, one
    /// row per cluster of the model its labels were assigned with.
    Clusters,
    /// `term_id, term, df, idf`: a model's vocabulary in term-id order (models only).
    Vocabulary,
}

impl Table {
    /// Every table of an output partition, in commit order.
    pub const ALL: [Table; 5] = [
        Table::Labels,
        Table::Clusters,
        Table::Centroids,
        Table::Keywords,
        Table::Similarity,
    ];

    /// The table's directory name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Labels => "labels",
            Table::Centroids => "centroids",
            Table::Keywords => "keywords",
            Table::Similarity => "similarity",
            Table::Clusters => "clusters",
            Table::Vocabulary => "vocabulary",
        }
    }

    /// The table's Arrow schema. No column is nullable.
    pub fn schema(self) -> SchemaRef {
        let f = |name: &str, t: DataType| Field::new(name, t, false);
        let fields = match self {
            Table::Labels => vec![
                f("doc_id", DataType::Utf8),
                f("cluster", DataType::Int32),
                f("similarity", DataType::Float32),
                f("second_cluster", DataType::Int32),
                f("second_similarity", DataType::Float32),
                f("model_id", DataType::Utf8),
            ],
            Table::Clusters => vec![
                f("cluster", DataType::Int32),
                f("n_docs", DataType::Int64),
                f("mean_similarity", DataType::Float32),
                f("share_below_fit_p05", DataType::Float32),
                f("model_id", DataType::Utf8),
            ],
            Table::Vocabulary => vec![
                f("term_id", DataType::Int32),
                f("term", DataType::Utf8),
                f("df", DataType::Int64),
                f("idf", DataType::Float32),
            ],
            Table::Centroids => vec![
                f("cluster", DataType::Int32),
                f("size", DataType::Int64),
                f("term", DataType::Utf8),
                f("weight", DataType::Float32),
            ],
            Table::Keywords => vec![
                f("cluster", DataType::Int32),
                f("rank", DataType::Int32),
                f("term", DataType::Utf8),
                f("score", DataType::Float32),
                f("coverage", DataType::Float32),
                f("precision", DataType::Float32),
            ],
            Table::Similarity => vec![
                f("cluster_a", DataType::Int32),
                f("cluster_b", DataType::Int32),
                f("cosine", DataType::Float32),
            ],
        };
        Arc::new(Schema::new(fields))
    }
}

/// Builds a batch of `table` from its columns, in schema order.
pub fn batch(
    table: Table,
    columns: Vec<ArrayRef>,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    RecordBatch::try_new(table.schema(), columns)
}

/// Column helpers, so callers need not name arrow-rs array types.
pub fn i32s(v: Vec<i32>) -> ArrayRef {
    Arc::new(Int32Array::from(v))
}
/// See [`i32s`].
pub fn i64s(v: Vec<i64>) -> ArrayRef {
    Arc::new(Int64Array::from(v))
}
/// See [`i32s`].
pub fn f32s(v: Vec<f32>) -> ArrayRef {
    Arc::new(Float32Array::from(v))
}
/// See [`i32s`].
pub fn strings<S: AsRef<str>>(v: impl IntoIterator<Item = S>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

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
    /// Starts `table`'s file at `path`, creating parent directories.
    pub fn create(path: &Path, table: Table) -> Result<Self, OutputError> {
        let parquet_error = |source| OutputError::Parquet {
            path: path.into(),
            source,
        };
        let props = properties_builder()
            .set_max_row_group_row_count(Some(STREAM_ROW_GROUP))
            .build();
        let inner = if super::store::is_remote(path) {
            TableSink::Remote(
                ArrowWriter::try_new(Vec::new(), table.schema(), Some(props))
                    .map_err(parquet_error)?,
            )
        } else {
            if let Some(parent) = path.parent() {
                fs_err::create_dir_all(parent)?;
            }
            let file = fs_err::File::create(path)?.into_parts().0;
            TableSink::Local(
                ArrowWriter::try_new(file, table.schema(), Some(props)).map_err(parquet_error)?,
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

    /// Closes the file (and puts it, on an object store); returns its rows and bytes.
    pub fn finish(self) -> Result<(u64, u64), OutputError> {
        let parquet_error = |source| OutputError::Parquet {
            path: self.path.clone(),
            source,
        };
        let n_bytes = match self.inner {
            TableSink::Local(w) => {
                let file = w.into_inner().map_err(parquet_error)?;
                file.sync_all()?;
                file.metadata()?.len()
            }
            TableSink::Remote(w) => {
                let bytes = w.into_inner().map_err(parquet_error)?;
                let n = bytes.len() as u64;
                super::store::put(&self.path, bytes.into())?;
                n
            }
        };
        Ok((self.n_rows, n_bytes))
    }
}

/// Writes `batch` as a new Parquet file at `path`, creating parent directories, and returns
/// the file's size in bytes.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<u64, OutputError> {
    let parquet_error = |source| OutputError::Parquet {
        path: path.into(),
        source,
    };
    if super::store::is_remote(path) {
        let bytes = encode_parquet(batch).map_err(parquet_error)?;
        let n_bytes = bytes.len() as u64;
        super::store::put(path, bytes.into())?;
        return Ok(n_bytes);
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
    Ok(file.metadata()?.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn labels_round_trip_with_zstd_and_declared_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels/dt=x").join(PART_FILE);
        let b = batch(
            Table::Labels,
            vec![
                strings(["a", "b"]),
                i32s(vec![0, -1]),
                f32s(vec![0.5, 0.0]),
                i32s(vec![1, -1]),
                f32s(vec![0.25, 0.0]),
                strings(["m1", "m1"]),
            ],
        )
        .unwrap();
        let n_bytes = write_parquet(&path, &b).unwrap();
        assert_eq!(n_bytes, std::fs::metadata(&path).unwrap().len());

        let file = std::fs::File::open(&path).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let column = builder.metadata().row_group(0).column(0);
        assert!(matches!(column.compression(), Compression::ZSTD(_)));
        // `model_id` repeats one value per file: stored as a dictionary page.
        let model_id = builder.metadata().row_group(0).column(5);
        assert_eq!(model_id.column_path().string(), "model_id");
        assert!(
            model_id.dictionary_page_offset().is_some(),
            "model_id is not dictionary-encoded"
        );
        let created_by = builder.metadata().file_metadata().created_by().unwrap();
        assert_eq!(created_by, CREATED_BY);
        let (app, rest) = created_by.split_once(" version ").unwrap();
        let (version, build) = rest.split_once(" (build ").unwrap();
        assert_eq!((app, version), ("textcluster", env!("CARGO_PKG_VERSION")));
        assert!(build.ends_with(')') && build.len() > 1, "{created_by}");
        assert_eq!(builder.schema().as_ref(), Table::Labels.schema().as_ref());
        let read: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
        assert_eq!(read, vec![b]);
    }

    #[test]
    fn model_tables_name_the_version_but_not_the_build() {
        let b = batch(
            Table::Similarity,
            vec![i32s(vec![0]), i32s(vec![1]), f32s(vec![0.25])],
        )
        .unwrap();
        let bytes = bytes::Bytes::from(encode_model_table(&b).unwrap());
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let created_by = builder.metadata().file_metadata().created_by().unwrap();
        assert_eq!(created_by, MODEL_CREATED_BY);
        assert!(!created_by.contains("build"), "{created_by}");
    }

    #[test]
    fn same_rows_give_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let b = batch(
            Table::Similarity,
            vec![i32s(vec![0]), i32s(vec![1]), f32s(vec![0.25])],
        )
        .unwrap();
        let (p1, p2) = (dir.path().join("1.parquet"), dir.path().join("2.parquet"));
        write_parquet(&p1, &b).unwrap();
        write_parquet(&p2, &b).unwrap();
        assert_eq!(std::fs::read(p1).unwrap(), std::fs::read(p2).unwrap());
    }
}
