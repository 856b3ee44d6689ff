//! The footer check of every selected file: it is Parquet, and its id and text columns
//! exist and hold strings.

use std::path::Path;

use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::ParquetMetaDataReader;

use super::InputFile;
use crate::io::{InputError, Unreadable};

/// Stats `path` and checks its footer and the two columns the job needs. An I/O error is the
/// caller's; a problem with the file's content comes back beside its stat.
pub(super) fn check_file(
    path: &Path,
    id_column: &str,
    text_column: &str,
    tokens: bool,
) -> Result<(InputFile, Option<InputError>), InputError> {
    let file = fs_err::File::open(path)?;
    let meta = file.metadata()?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    let mut info = InputFile {
        path: path.into(),
        size: meta.len(),
        mtime_ns,
        n_rows: 0,
    };
    match check_footer(path, file.file(), id_column, text_column, tokens) {
        Ok(n_rows) => {
            info.n_rows = n_rows;
            Ok((info, None))
        }
        Err(problem) => Ok((info, Some(problem))),
    }
}

/// Reads the footer of `file` and checks the id and text columns; returns the row count.
pub(super) fn check_footer(
    path: &Path,
    file: &std::fs::File,
    id_column: &str,
    text_column: &str,
    tokens: bool,
) -> Result<u64, InputError> {
    let unreadable = |reason: Unreadable| InputError::CorruptFile {
        path: path.into(),
        reason,
    };
    if file.metadata()?.len() == 0 {
        return Err(unreadable(Unreadable::Empty));
    }
    let metadata = ParquetMetaDataReader::new()
        .parse_and_finish(file)
        .map_err(|e| unreadable(e.into()))?;
    let file_meta = metadata.file_metadata();
    let schema = parquet_to_arrow_schema(file_meta.schema_descr(), file_meta.key_value_metadata())
        .map_err(|e| unreadable(e.into()))?;
    check_schema(path, &schema, id_column, text_column, tokens)?;
    Ok(file_meta.num_rows().max(0) as u64)
}

/// Checks that `schema` (of the file at `path`) has string columns `id_column` and
/// `text_column`.
pub(super) fn check_schema(
    path: &Path,
    schema: &arrow::datatypes::Schema,
    id_column: &str,
    text_column: &str,
    tokens: bool,
) -> Result<(), InputError> {
    for (column, list) in [(id_column, false), (text_column, tokens)] {
        match schema.field_with_name(column) {
            Err(_) => {
                return Err(InputError::MissingColumn {
                    path: path.into(),
                    column: column.to_owned(),
                    available: schema.fields().iter().map(|f| f.name().clone()).collect(),
                });
            }
            Ok(field) => {
                let t = field.data_type();
                if list && !crate::io::is_string_list_type(t) {
                    return Err(InputError::NotTokenColumn {
                        path: path.into(),
                        column: column.to_owned(),
                        found: t.to_string(),
                    });
                }
                if !list && !crate::io::is_string_type(t) {
                    return Err(InputError::NotStringColumn {
                        path: path.into(),
                        column: column.to_owned(),
                        found: t.to_string(),
                    });
                }
            }
        }
    }
    Ok(())
}
