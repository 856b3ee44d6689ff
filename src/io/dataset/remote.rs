//! Finding the input on an object store: one listing under the prefix, then the footers.

use std::path::{Path, PathBuf};

use super::filter::PartitionFilter;
use super::footer::check_schema;
use super::key::{PartitionKey, parse_hive_path};
use super::select::Selection;
use super::{Checked, InputFile};
use crate::io::{InputError, Unreadable, store};

/// Removes the empty objects that stand for directories: a key ending in `/` (what a console's
/// "create folder" writes on S3), or a key that other listed keys sit under (what tools write
/// on a blob store without a hierarchical namespace, as `hdi_isfolder` blobs on Azure). Such an
/// object cannot be a data file, and it has no partition keys of its own.
fn drop_directory_markers(listed: &mut Vec<store::Listed>) {
    let directories: std::collections::HashSet<&str> = listed
        .iter()
        .flat_map(|o| o.relative.match_indices('/').map(|(i, _)| &o.relative[..i]))
        .collect();
    let markers: std::collections::HashSet<String> = listed
        .iter()
        .filter(|o| {
            o.size == 0 && (o.relative.ends_with('/') || directories.contains(o.relative.as_str()))
        })
        .map(|o| o.relative.clone())
        .collect();
    if !markers.is_empty() {
        tracing::debug!(n = markers.len(), "skipping directory marker objects");
        listed.retain(|o| !markers.contains(&o.relative));
    }
}

/// Lists the remote input `root` and checks every selected file's footer, [`store::CONCURRENCY`]
/// requests at a time: one listing, then one or two ranged reads per file.
pub(super) fn discover_remote(
    remote: &store::Remote,
    selection: &Selection,
    filter: &PartitionFilter,
    id_column: &str,
    text_column: &str,
    tokens: bool,
) -> Result<Checked, InputError> {
    let root = selection.root.as_path();
    let hidden = |relative: &str| relative.split('/').any(|s| s.starts_with(['_', '.']));
    let mut all = store::list(remote)?;
    let single_file = all.is_empty();
    drop_directory_markers(&mut all);
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
                    Ok(meta) => check_schema(&path, meta.schema(), id_column, text_column, tokens)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn object(relative: &str, size: u64) -> store::Listed {
        store::Listed {
            url: format!("s3://b/in/{relative}"),
            relative: relative.into(),
            size,
            mtime_ns: 0,
            e_tag: None,
        }
    }

    #[test]
    fn empty_objects_standing_for_directories_are_dropped_and_nothing_else() {
        let mut listed = vec![
            object("dt=1", 0),
            object("dt=1/part-0.parquet", 10),
            object("dt=2/", 0),
            object("dt=2/part-0.parquet", 0),
            object("dt=3", 0),
        ];
        drop_directory_markers(&mut listed);
        let kept: Vec<&str> = listed.iter().map(|o| o.relative.as_str()).collect();
        // An empty file is kept (it is reported as empty); so is an empty object that no other
        // key sits under.
        assert_eq!(kept, ["dt=1/part-0.parquet", "dt=2/part-0.parquet", "dt=3"]);
    }
}
