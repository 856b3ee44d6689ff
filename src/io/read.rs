//! Reading one partition's documents into Arrow string arrays.
//!
//! Polars scans the partition's files lazily with a projection of just the id and text
//! columns, so other columns are never decoded. The columns then cross from polars' Arrow
//! to arrow-rs through the Arrow C Data Interface without copying the string buffers, and the
//! rest of the pipeline works on arrow-rs [`StringViewArray`]s.

use std::path::Path;

use arrow::array::{Array, ArrayRef, RecordBatch, StringViewArray, make_array};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi};
use polars::prelude::*;

use super::{InputError, Unreadable};
use super::dataset::Partition;
use super::write::Table;

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

/// The id and text columns of one file.
fn read_file(
    path: &Path,
    what: &str,
    id_column: &str,
    text_column: &str,
) -> Result<(StringViewArray, StringViewArray), InputError> {
    let scan = |columns: &[&str]| -> PolarsResult<DataFrame> {
        let args = ScanArgsParquet {
            hive_options: HiveOptions::new_disabled(),
            ..ScanArgsParquet::default()
        };
        let source = PlRefPath::new(path.to_string_lossy().as_ref());
        LazyFrame::scan_parquet_files(std::iter::once(source).collect(), args)?
            .select(columns.iter().map(|c| col(*c).cast(DataType::String)).collect::<Vec<_>>())
            .collect()
    };
    let read = scan(&[id_column, text_column]).and_then(|frame| {
        Ok((
            column_to_arrow(&frame, id_column)?,
            column_to_arrow(&frame, text_column)?,
        ))
    });
    read.map_err(|source| {
        // Which column is at fault, when one alone fails.
        let column = [id_column, text_column]
            .into_iter()
            .find(|c| scan(&[c]).and_then(|f| column_to_arrow(&f, c)).is_err())
            .map(str::to_owned);
        InputError::Scan {
            path: path.into(),
            what: what.to_owned(),
            column,
            source,
        }
    })
}

/// Hands a polars string column to arrow-rs through the C Data Interface.
fn column_to_arrow(frame: &DataFrame, name: &str) -> PolarsResult<StringViewArray> {
    let series = frame.column(name)?.as_materialized_series().rechunk();
    let array = series.to_arrow(0, CompatLevel::newest());
    let field = polars_arrow::datatypes::Field::new(name.into(), array.dtype().clone(), true);
    let c_array = polars_arrow::ffi::export_array_to_c(array);
    let c_schema = polars_arrow::ffi::export_field_to_c(&field);
    // SAFETY: both crates define these structs as the `#[repr(C)]` ArrowArray and ArrowSchema
    // of the Arrow C Data Interface, with identical layouts (`transmute` checks the sizes). The
    // release callbacks move with the structs, so ownership passes to arrow-rs exactly once.
    let (c_array, c_schema) = unsafe {
        (
            std::mem::transmute::<polars_arrow::ffi::ArrowArray, FFI_ArrowArray>(c_array),
            std::mem::transmute::<polars_arrow::ffi::ArrowSchema, FFI_ArrowSchema>(c_schema),
        )
    };
    // SAFETY: the structs were just exported by polars-arrow and are valid per the interface.
    let data = unsafe { from_ffi(c_array, &c_schema) }
        .map_err(|e| PolarsError::ComputeError(format!("arrow import failed: {e}").into()))?;
    let array: ArrayRef = make_array(data);
    array
        .as_any()
        .downcast_ref::<StringViewArray>()
        .cloned()
        .ok_or_else(|| {
            PolarsError::ComputeError(
                format!(
                    "column `{name}` arrived as {}, not Utf8View",
                    array.data_type()
                )
                .into(),
            )
        })
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
    if !path.exists() {
        return Err(InputError::PathNotFound {
            path: path.to_path_buf(),
        });
    }
    let file = fs_err::File::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file.into_parts().0)
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
    reader
        .map(|b| b.map_err(|e| corrupt(e.into())))
        .collect()
}
