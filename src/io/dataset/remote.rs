//! Finding the input on an object store: one listing under the prefix, then the footers.

use std::path::{Path, PathBuf};

use super::filter::PartitionFilter;
use super::footer::check_schema;
use super::key::{PartitionKey, parse_hive_path};
use super::select::Selection;
use super::{Checked, InputFile};
use crate::io::{InputError, Unreadable, store};

/// Lists the remote input `root` and checks every selected file's footer, [`store::CONCURRENCY`]
/// requests at a time: one listing, then one or two ranged reads per file.
pub(super) fn discover_remote(
    remote: &store::Remote,
    selection: &Selection,
    filter: &PartitionFilter,
    id_column: &str,
    text_column: &str,
) -> Result<Checked, InputError> {
    let root = selection.root.as_path();
    let hidden = |relative: &str| relative.split('/').any(|s| s.starts_with(['_', '.']));
    let all = store::list(remote)?;
    let single_file = all.is_empty();
    let mut listed: Vec<store::Listed> = all
        .into_iter()
        .filter(|o| !hidden(&o.relative) && selection.selects(Path::new(&o.url)))
        .collect();
    if listed.is_empty() && !single_file {
        return Err(InputError::NoParquetFiles { path: root.into() });
    }
    if single_file {
        // Not a prefix with objects under it: the path may be one object.
        match store::get_size(root)? {
            Some((size, mtime_ns)) => listed.push(store::Listed {
                url: remote.url.clone(),
                relative: String::new(),
                size,
                mtime_ns,
                e_tag: None,
            }),
            None => return Err(InputError::PathNotFound { path: root.into() }),
        }
    }
    let mut keyed: Vec<(PartitionKey, store::Listed)> = Vec::with_capacity(listed.len());
    let mut keys: Option<Vec<String>> = None;
    for object in listed {
        let path = PathBuf::from(&object.url);
        let key = if single_file {
            PartitionKey::default()
        } else {
            parse_hive_path(root, &path)?
        };
        let names: Vec<String> = key.0.iter().map(|(k, _)| k.clone()).collect();
        match &keys {
            None => keys = Some(names),
            Some(expected) if *expected != names => {
                return Err(InputError::InconsistentPartitionKeys {
                    path,
                    expected: expected.clone(),
                    found: names,
                });
            }
            Some(_) => {}
        }
        keyed.push((key, object));
    }
    let keys = keys.unwrap_or_default();
    filter.select(root, &keys, &mut keyed)?;
    let footers = store::block_on(async {
        use futures::StreamExt;
        futures::stream::iter(keyed.iter().map(|(_, object)| async move {
            let path = PathBuf::from(&object.url);
            let Some(r) = store::remote(&path)? else {
                unreachable!("listed under a remote root")
            };
            if object.size == 0 {
                return Ok::<_, InputError>(Err(InputError::CorruptFile {
                    path,
                    reason: Unreadable::Empty,
                }));
            }
            let mut reader = store::ObjectFile::new(r, object.size);
            let options = parquet::arrow::arrow_reader::ArrowReaderOptions::new();
            Ok(
                match parquet::arrow::arrow_reader::ArrowReaderMetadata::load_async(
                    &mut reader,
                    options,
                )
                .await
                {
                    Ok(meta) => check_schema(&path, meta.schema(), id_column, text_column)
                        .map(|()| meta.metadata().file_metadata().num_rows().max(0) as u64),
                    Err(parquet::errors::ParquetError::External(e)) => {
                        return Err(InputError::Io {
                            source: std::io::Error::other(store::redact(&format!(
                                "cannot read the footer of `{}`: {e}",
                                path.display()
                            ))),
                        });
                    }
                    Err(e) => Err(InputError::CorruptFile {
                        path,
                        reason: e.into(),
                    }),
                },
            )
        }))
        .buffered(store::CONCURRENCY)
        .collect::<Vec<_>>()
        .await
    });
    let mut files = Vec::with_capacity(keyed.len());
    for ((key, object), footer) in keyed.into_iter().zip(footers) {
        let footer = footer?;
        let mut file = InputFile {
            path: PathBuf::from(&object.url),
            size: object.size,
            mtime_ns: object.mtime_ns,
            n_rows: 0,
        };
        let problem = match footer {
            Ok(n_rows) => {
                file.n_rows = n_rows;
                None
            }
            Err(problem) => Some(problem),
        };
        files.push((key, file, problem));
    }
    Ok(Checked {
        partition_keys: keys,
        files,
    })
}
