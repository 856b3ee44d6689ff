//! Reading one partition's documents into Arrow string arrays.
//!
//! The parquet crate reads each file with a projection of just the id and text columns, so
//! other columns are never fetched or decoded, and the pipeline works on the resulting
//! arrow-rs [`StringViewArray`]s. A page that cannot be decoded is a typed error naming the
//! file and the column; the parquet crate returns errors where polars' decoder panicked on
//! some corrupt pages (found by `tests/it/fuzz.rs`).

use std::path::Path;

use arrow::array::{Array, ArrayRef, RecordBatch, StringViewArray};
use arrow::datatypes::DataType;

use super::dataset::Partition;
use super::write::Table;
use super::{InputError, Unreadable};

/// The id and text columns of one partition, in file order and row order.
#[derive(Debug, Clone)]
pub struct Documents {
    pub ids: StringViewArray,
    pub texts: StringViewArray,
}

impl Documents {
    /// Number of rows, null texts included.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the partition has no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Reads the id and text columns of every file of `partition`.
pub fn read_partition(
    partition: &Partition,
    id_column: &str,
    text_column: &str,
) -> Result<Documents, InputError> {
    let paths: Vec<&Path> = partition.files.iter().map(|f| f.path.as_path()).collect();
    let what = format!("partition `{}`", partition.key);
    read_files(&paths, &what, id_column, text_column)
}

/// Reads the id and text columns of `paths`, in order; `what` names them in errors.
///
/// Each file is scanned on its own, so files of one partition may differ in their other
/// columns (schema evolution) and a read error names the file, and the column when one
/// column alone fails. Most partitions hold one file, so this costs nothing there.
pub fn read_files(
    paths: &[&Path],
    what: &str,
    id_column: &str,
    text_column: &str,
) -> Result<Documents, InputError> {
    let mut ids: Vec<StringViewArray> = Vec::with_capacity(paths.len());
    let mut texts: Vec<StringViewArray> = Vec::with_capacity(paths.len());
    for path in paths {
        let (i, t) = read_file(path, what, id_column, text_column)?;
        ids.push(i);
        texts.push(t);
    }
    let join = |parts: Vec<StringViewArray>| -> StringViewArray {
        match parts.len() {
            1 => parts.into_iter().next().expect("one part"),
            0 => StringViewArray::new_null(0),
            _ => {
                let refs: Vec<&dyn Array> = parts.iter().map(|a| a as &dyn Array).collect();
                arrow::compute::concat(&refs)
                    .expect("string view arrays concatenate")
                    .as_any()
                    .downcast_ref::<StringViewArray>()
                    .expect("concat keeps the type")
                    .clone()
            }
        }
    };
    Ok(Documents {
        ids: join(ids),
        texts: join(texts),
    })
}

/// The id and text columns of one file, decoded by the parquet crate: only their column
/// chunks are read. A page that cannot be decoded is an error naming the file, and the column
/// when one column alone fails.
fn read_file(
    path: &Path,
    what: &str,
    id_column: &str,
    text_column: &str,
) -> Result<(StringViewArray, StringViewArray), InputError> {
    let corrupt = |reason: Unreadable| InputError::CorruptFile {
        path: path.to_path_buf(),
        reason,
    };
    match decode(path, &[id_column, text_column]) {
        Ok(mut columns) => {
            let texts = columns.pop().expect("two columns");
            let ids = columns.pop().expect("two columns");
            let view = |a: ArrayRef| -> Result<StringViewArray, InputError> {
                let view =
                    arrow::compute::cast(&a, &DataType::Utf8View).map_err(|e| corrupt(e.into()))?;
                Ok(view
                    .as_any()
                    .downcast_ref::<StringViewArray>()
                    .expect("cast to Utf8View")
                    .clone())
            };
            Ok((view(ids)?, view(texts)?))
        }
        Err(Decoding::Input(e)) => Err(e),
        Err(Decoding::Arrow(source)) => {
            let column = [id_column, text_column]
                .into_iter()
                .find(|c| decode(path, &[c]).is_err())
                .map(str::to_owned);
            Err(InputError::Decode {
                path: path.into(),
                what: what.to_owned(),
                column,
                source,
            })
        }
    }
}

/// Why [`decode`] failed: the file or its schema (already a typed input error), or a page.
enum Decoding {
    Input(InputError),
    Arrow(arrow::error::ArrowError),
}

/// The named columns of the file at `path`, each concatenated over its row groups.
fn decode(path: &Path, columns: &[&str]) -> Result<Vec<ArrayRef>, Decoding> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let corrupt = |reason: Unreadable| {
        Decoding::Input(InputError::CorruptFile {
            path: path.to_path_buf(),
            reason,
        })
    };
    let batches: Vec<RecordBatch> =
        if let Some(remote) = super::store::remote(path).map_err(|e| Decoding::Input(e.into()))? {
            super::store::block_on(async {
                use futures::TryStreamExt;
                use object_store::ObjectStoreExt;
                use parquet::arrow::ParquetRecordBatchStreamBuilder;
                let size = remote
                    .store
                    .head(&remote.key)
                    .await
                    .map_err(|e| {
                        remote_failure(path, parquet::errors::ParquetError::External(Box::new(e)))
                    })?
                    .size;
                let reader = super::store::ObjectFile::new(remote, size);
                let builder = ParquetRecordBatchStreamBuilder::new(reader)
                    .await
                    .map_err(|e| remote_failure(path, e))?;
                let indices = projection(path, builder.schema(), columns)?;
                let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
                let stream = builder
                    .with_projection(mask)
                    .with_batch_size(64 * 1024)
                    .build()
                    .map_err(|e| corrupt(e.into()))?;
                stream.try_collect::<Vec<_>>().await.map_err(|e| match e {
                    parquet::errors::ParquetError::External(_) => remote_failure(path, e),
                    e => Decoding::Arrow(e.into()),
                })
            })?
        } else {
            let file = fs_err::File::open(path).map_err(|e| Decoding::Input(e.into()))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file.into_parts().0)
                .map_err(|e| corrupt(e.into()))?;
            let indices = projection(path, builder.schema(), columns)?;
            let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
            let reader = builder
                .with_projection(mask)
                .with_batch_size(64 * 1024)
                .build()
                .map_err(|e| corrupt(e.into()))?;
            reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(Decoding::Arrow)?
        };
    let mut parts: Vec<Vec<ArrayRef>> = vec![Vec::new(); columns.len()];
    for batch in batches {
        for (part, &name) in parts.iter_mut().zip(columns) {
            part.push(
                batch
                    .column_by_name(name)
                    .cloned()
                    .expect("projected column"),
            );
        }
    }
    parts
        .into_iter()
        .map(|part| match part.len() {
            0 => Ok(arrow::array::new_empty_array(&DataType::Utf8)),
            1 => Ok(part.into_iter().next().expect("one part")),
            _ => {
                let refs: Vec<&dyn Array> = part.iter().map(|a| a.as_ref()).collect();
                arrow::compute::concat(&refs).map_err(Decoding::Arrow)
            }
        })
        .collect()
}

/// The indices of `columns` in `schema`, the schema of the file at `path`.
fn projection(
    path: &Path,
    schema: &arrow::datatypes::Schema,
    columns: &[&str],
) -> Result<Vec<usize>, Decoding> {
    columns
        .iter()
        .map(|&name| {
            schema.index_of(name).map_err(|_| {
                Decoding::Input(InputError::MissingColumn {
                    path: path.to_path_buf(),
                    column: name.to_owned(),
                    available: schema.fields().iter().map(|f| f.name().clone()).collect(),
                })
            })
        })
        .collect()
}

/// A failed remote read of `path`: the store's error (environmental), or a bad footer.
fn remote_failure(path: &Path, e: parquet::errors::ParquetError) -> Decoding {
    match e {
        parquet::errors::ParquetError::External(e) => Decoding::Input(InputError::Io {
            source: std::io::Error::other(super::store::redact(&format!(
                "cannot read `{}`: {e}",
                path.display()
            ))),
        }),
        e => Decoding::Input(InputError::CorruptFile {
            path: path.to_path_buf(),
            reason: e.into(),
        }),
    }
}

/// Reads one of textcluster's own output files, checking that it has `table`'s columns with
/// their types (extra columns are allowed and dropped).
pub fn read_output(path: &Path, table: Table) -> Result<Vec<RecordBatch>, InputError> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let corrupt = |reason: Unreadable| InputError::CorruptFile {
        path: path.to_path_buf(),
        reason,
    };
    // Output files are small: a remote one is fetched whole.
    let Some(bytes) = super::store::read(path)? else {
        return Err(InputError::PathNotFound {
            path: path.to_path_buf(),
        });
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .map_err(|e| corrupt(e.into()))?;
    let found = builder.schema().clone();
    let wanted = table.schema();
    let mut indices = Vec::with_capacity(wanted.fields().len());
    for field in wanted.fields() {
        let Some((i, f)) = found.column_with_name(field.name()) else {
            return Err(InputError::MissingColumn {
                path: path.to_path_buf(),
                column: field.name().clone(),
                available: found.fields().iter().map(|f| f.name().clone()).collect(),
            });
        };
        if f.data_type() != field.data_type() {
            return Err(corrupt(Unreadable::ColumnType {
                column: field.name().clone(),
                found: f.data_type().to_string(),
                expected: field.data_type().to_string(),
            }));
        }
        indices.push(i);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| corrupt(e.into()))?;
    reader.map(|b| b.map_err(|e| corrupt(e.into()))).collect()
}
