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

use super::TableKind;
use super::dataset::Partition;
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
    let columns = [id_column, text_column];
    let mut decoded = decode(path, &columns).map_err(|e| decode_error(path, what, &columns, e))?;
    let texts = decoded.pop().expect("two columns");
    let ids = decoded.pop().expect("two columns");
    Ok((string_view(path, &ids)?, string_view(path, &texts)?))
}

/// `array` (a string column of any encoding) as a string view array.
fn string_view(path: &Path, array: &ArrayRef) -> Result<StringViewArray, InputError> {
    as_string_view(array).map_err(|e| InputError::CorruptFile {
        path: path.to_path_buf(),
        reason: e.into(),
    })
}

/// `array`, a string column of any encoding (Utf8, LargeUtf8, Utf8View, a dictionary of
/// them), as a string view array. A column of token lists ([`super::is_string_list_type`])
/// reads as one string per row, its tokens joined by [`crate::text::TOKEN_SEPARATOR`]; a null
/// list is an empty document, and null tokens are left out.
pub fn as_string_view(array: &ArrayRef) -> Result<StringViewArray, arrow::error::ArrowError> {
    if super::is_string_list_type(array.data_type()) {
        return joined_tokens(array);
    }
    let view = arrow::compute::cast(array, &DataType::Utf8View)?;
    Ok(view
        .as_any()
        .downcast_ref::<StringViewArray>()
        .expect("cast to Utf8View")
        .clone())
}

/// A column of token lists as one string per row, tokens joined by the separator.
fn joined_tokens(array: &ArrayRef) -> Result<StringViewArray, arrow::error::ArrowError> {
    use arrow::array::{Array, AsArray, StringViewBuilder};
    let field = match array.data_type() {
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => f.clone(),
        t => unreachable!("not a list type: {t}"),
    };
    // Every list form as a List of Utf8View, so one loop reads them.
    let target = DataType::List(std::sync::Arc::new(arrow::datatypes::Field::new(
        field.name(),
        DataType::Utf8View,
        true,
    )));
    let lists = arrow::compute::cast(array, &target)?;
    let lists = lists.as_list::<i32>();
    let mut out = StringViewBuilder::with_capacity(lists.len());
    let mut doc = String::new();
    for i in 0..lists.len() {
        doc.clear();
        if lists.is_valid(i) {
            let tokens = lists.value(i);
            for token in tokens.as_string_view().iter().flatten() {
                if !doc.is_empty() {
                    doc.push(crate::text::TOKEN_SEPARATOR);
                }
                doc.push_str(token);
            }
        }
        out.append_value(&doc);
    }
    Ok(out.finish())
}

/// The error of a failed read of `columns` of `path`, naming the column when one column alone
/// fails to decode.
fn decode_error(path: &Path, what: &str, columns: &[&str], e: Decoding) -> InputError {
    match e {
        Decoding::Input(e) => e,
        Decoding::Arrow(source) => InputError::Decode {
            path: path.into(),
            what: what.to_owned(),
            column: columns
                .iter()
                .find(|c| decode(path, &[c]).is_err())
                .map(|c| (*c).to_owned()),
            source,
        },
    }
}

/// Why [`decode`] failed: the file or its schema (already a typed input error), or a page.
enum Decoding {
    Input(InputError),
    Arrow(arrow::error::ArrowError),
}

/// The named columns of the file at `path`, each concatenated over its row groups.
fn decode(path: &Path, columns: &[&str]) -> Result<Vec<ArrayRef>, Decoding> {
    let mut source = open_batches(path, columns, 64 * 1024)?;
    let mut batches: Vec<RecordBatch> = Vec::new();
    while let Some(batch) = source.next_batch(path) {
        batches.push(batch?);
    }
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
pub fn read_output(path: &Path, table: impl TableKind) -> Result<Vec<RecordBatch>, InputError> {
    let corrupt = |reason: Unreadable| InputError::CorruptFile {
        path: path.to_path_buf(),
        reason,
    };
    decode_output(read_whole(path)?, table).map_err(|reason| match reason {
        OutputDecoding::Missing { column, available } => InputError::MissingColumn {
            path: path.to_path_buf(),
            column,
            available,
        },
        OutputDecoding::Unreadable(reason) => corrupt(reason),
    })
}

/// The bytes of one of textcluster's own output files. They are small: a remote one is
/// fetched whole.
fn read_whole(path: &Path) -> Result<bytes::Bytes, InputError> {
    match super::store::read(path)? {
        Some(bytes) => Ok(bytes.into()),
        None => Err(InputError::PathNotFound {
            path: path.to_path_buf(),
        }),
    }
}

/// Why [`decode_output`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputDecoding {
    #[error("no column `{column}` (it has {})", available.join(", "))]
    Missing {
        column: String,
        available: Vec<String>,
    },
    #[error(transparent)]
    Unreadable(#[from] Unreadable),
}

/// Decodes the bytes of one of textcluster's own output files, checking that it has
/// `table`'s columns with their types (extra columns are allowed and dropped).
pub fn decode_output(
    bytes: bytes::Bytes,
    table: impl TableKind,
) -> Result<Vec<RecordBatch>, OutputDecoding> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let corrupt = |reason: Unreadable| OutputDecoding::Unreadable(reason);
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| corrupt(e.into()))?;
    let found = builder.schema().clone();
    let wanted = table.schema();
    let mut indices = Vec::with_capacity(wanted.fields().len());
    for field in wanted.fields() {
        let Some((i, f)) = found.column_with_name(field.name()) else {
            return Err(OutputDecoding::Missing {
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

/// The `model_id` of a committed labels file: its first row's (every row of a file carries
/// the same). `None` for a file without rows or written before labels carried one.
pub fn labels_model_id(path: &Path) -> Result<Option<String>, InputError> {
    use arrow::array::AsArray;
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let corrupt = |reason: Unreadable| InputError::CorruptFile {
        path: path.to_path_buf(),
        reason,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(read_whole(path)?)
        .map_err(|e| corrupt(e.into()))?;
    let Some((i, _)) = builder.schema().column_with_name("model_id") else {
        return Ok(None);
    };
    let mask = ProjectionMask::roots(builder.parquet_schema(), [i]);
    let mut reader = builder
        .with_projection(mask)
        .with_batch_size(1)
        .build()
        .map_err(|e| corrupt(e.into()))?;
    let Some(batch) = reader.next().transpose().map_err(|e| corrupt(e.into()))? else {
        return Ok(None);
    };
    let column = batch.column(0);
    Ok(column
        .as_string_opt::<i32>()
        .filter(|c| !c.is_empty() && c.is_valid(0))
        .map(|c| c.value(0).to_owned()))
}

/// The documents of one partition, batch by batch: memory holds one decoded batch (and the
/// reader's current row group), whatever the partition's size.
pub struct DocumentBatches<'p> {
    partition: &'p Partition,
    columns: [String; 2],
    batch_size: usize,
    /// The next file to open.
    next_file: usize,
    current: Option<(usize, BatchSource)>,
}

enum BatchSource {
    Local(parquet::arrow::arrow_reader::ParquetRecordBatchReader),
    Remote(parquet::arrow::async_reader::ParquetRecordBatchStream<super::store::ObjectFile>),
}

impl BatchSource {
    /// The next batch of the file at `path`, `None` at its end.
    fn next_batch(&mut self, path: &Path) -> Option<Result<RecordBatch, Decoding>> {
        match self {
            BatchSource::Local(reader) => reader.next().map(|b| b.map_err(Decoding::Arrow)),
            BatchSource::Remote(stream) => {
                use futures::StreamExt;
                super::store::block_on(stream.next()).map(|b| {
                    b.map_err(|e| match e {
                        parquet::errors::ParquetError::External(_) => remote_failure(path, e),
                        // A page whose CRC (written by parquet-mr, Spark's writer, by default)
                        // does not match its bytes: on a store, most likely bytes damaged on
                        // the way, so a retry may read it intact. The parquet crate has no
                        // variant for it, only this message.
                        e if e.to_string().contains("CRC checksum mismatch") => {
                            Decoding::Input(InputError::Io {
                                source: std::io::Error::other(format!(
                                    "cannot read `{}`: {e} (the bytes read differ from the ones written; corrupted in transit or at rest)",
                                    path.display()
                                )),
                            })
                        }
                        e => Decoding::Arrow(e.into()),
                    })
                })
            }
        }
    }
}

/// `builder` set to read only the named columns of `path`, `batch_size` rows at a time.
fn projected<T>(
    path: &Path,
    builder: parquet::arrow::arrow_reader::ArrowReaderBuilder<T>,
    columns: &[&str],
    batch_size: usize,
) -> Result<parquet::arrow::arrow_reader::ArrowReaderBuilder<T>, Decoding> {
    let indices = projection(path, builder.schema(), columns)?;
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), indices);
    Ok(builder.with_projection(mask).with_batch_size(batch_size))
}

/// Opens the file at `path` to read the named columns, `batch_size` rows at a time.
fn open_batches(path: &Path, columns: &[&str], batch_size: usize) -> Result<BatchSource, Decoding> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let corrupt = |reason: Unreadable| {
        Decoding::Input(InputError::CorruptFile {
            path: path.to_path_buf(),
            reason,
        })
    };
    if let Some(remote) = super::store::remote(path).map_err(|e| Decoding::Input(e.into()))? {
        super::store::block_on(async {
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
            let stream = projected(path, builder, columns, batch_size)?
                .build()
                .map_err(|e| corrupt(e.into()))?;
            Ok(BatchSource::Remote(stream))
        })
    } else {
        let file = fs_err::File::open(path).map_err(|e| Decoding::Input(e.into()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file.into_parts().0)
            .map_err(|e| corrupt(e.into()))?;
        let reader = projected(path, builder, columns, batch_size)?
            .build()
            .map_err(|e| corrupt(e.into()))?;
        Ok(BatchSource::Local(reader))
    }
}

impl<'p> DocumentBatches<'p> {
    /// Streams the id and text columns of `partition`, `batch_size` rows at a time.
    pub fn new(
        partition: &'p Partition,
        id_column: &str,
        text_column: &str,
        batch_size: usize,
    ) -> Self {
        Self {
            partition,
            columns: [id_column.to_owned(), text_column.to_owned()],
            batch_size,
            next_file: 0,
            current: None,
        }
    }

    /// Streams only the id column of `partition` (the documents' texts are its ids too).
    pub fn ids(partition: &'p Partition, id_column: &str, batch_size: usize) -> Self {
        Self::new(partition, id_column, id_column, batch_size)
    }

    fn next_batch(&mut self) -> Option<Result<(usize, RecordBatch), (usize, Decoding)>> {
        loop {
            if self.current.is_none() {
                let i = self.next_file;
                let file = self.partition.files.get(i)?;
                self.next_file += 1;
                match open_batches(
                    &file.path,
                    &[self.columns[0].as_str(), self.columns[1].as_str()],
                    self.batch_size,
                ) {
                    Ok(source) => self.current = Some((i, source)),
                    Err(e) => return Some(Err((i, e))),
                }
            }
            let (i, source) = self.current.as_mut().expect("opened above");
            let i = *i;
            let next = source.next_batch(&self.partition.files[i].path);
            match next {
                Some(Ok(batch)) => return Some(Ok((i, batch))),
                Some(Err(e)) => {
                    self.current = None;
                    self.next_file = self.partition.files.len();
                    return Some(Err((i, e)));
                }
                None => self.current = None,
            }
        }
    }
}

impl Iterator for DocumentBatches<'_> {
    /// The index of the file the batch comes from, and its documents.
    type Item = Result<(usize, Documents), InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_batch()? {
            Ok((i, batch)) => {
                let path = &self.partition.files[i].path;
                let view = |column: &str| {
                    string_view(
                        path,
                        batch.column_by_name(column).expect("projected column"),
                    )
                };
                Some(view(&self.columns[0]).and_then(|ids| {
                    Ok((
                        i,
                        Documents {
                            ids,
                            texts: view(&self.columns[1])?,
                        },
                    ))
                }))
            }
            Err((i, e)) => {
                let path = self.partition.files[i].path.clone();
                // Stop after an error: the partition cannot be assigned.
                self.next_file = self.partition.files.len();
                let columns = [self.columns[0].as_str(), self.columns[1].as_str()];
                let what = format!("partition `{}`", self.partition.key);
                Some(Err(decode_error(&path, &what, &columns, e)))
            }
        }
    }
}
