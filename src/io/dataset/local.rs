//! Finding the input on local disk: walking directories, skipping hidden names.

use std::path::{Path, PathBuf};

use super::filter::PartitionFilter;
use super::key::{PartitionKey, parse_hive_path};
use super::select::Selection;
use crate::io::InputError;

/// True for names that readers of hive datasets skip: `_SUCCESS`, `_staging`, `.crc` files.
pub(super) fn is_hidden(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('_') || name.starts_with('.')
}

/// The error of a failed `stat` of `path`, which was listed in its directory: a loop, a
/// dangling symlink, or an I/O error.
pub(super) fn stat_error(path: &Path, source: std::io::Error) -> InputError {
    match source.raw_os_error() {
        Some(libc::ELOOP) => InputError::SymlinkLoop { path: path.into() },
        Some(libc::ENOENT) => InputError::DanglingSymlink { path: path.into() },
        _ => InputError::Io {
            source: std::io::Error::new(
                source.kind(),
                format!("cannot stat `{}`: {source}", path.display()),
            ),
        },
    }
}

/// Lists every visible regular file under `root`, sorted. Symlinks are followed; a directory
/// reached twice (a symlink loop) or a symlink to nothing is an error naming it, and entries
/// that are neither files nor directories (FIFOs, sockets, devices) are skipped with a
/// warning, since opening one could block forever.
#[allow(clippy::disallowed_methods)] // `stat_error` reads the OS error code, which fs_err does not keep
pub(crate) fn walk(root: &Path) -> Result<Vec<PathBuf>, InputError> {
    use std::os::unix::fs::MetadataExt;
    let mut files = Vec::new();
    let id = |m: &std::fs::Metadata| (m.dev(), m.ino());
    let root_id = std::fs::metadata(root).map(|m| id(&m)).unwrap_or_default();
    // Each directory with the identities of its ancestors: reaching one of them again is a
    // loop; reaching a directory seen elsewhere (two links to one place) only repeats it.
    let mut dirs = vec![(root.to_path_buf(), vec![root_id])];
    let mut seen = std::collections::HashSet::from([root_id]);
    while let Some((dir, ancestors)) = dirs.pop() {
        let mut visible = 0;
        for entry in fs_err::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if is_hidden(&name) {
                continue;
            }
            let path = entry.path();
            if name.to_str().is_none() {
                return Err(InputError::NonUtf8Name { path });
            }
            visible += 1;
            let meta = std::fs::metadata(&path).map_err(|e| stat_error(&path, e))?;
            if meta.is_dir() {
                if ancestors.contains(&id(&meta)) {
                    return Err(InputError::SymlinkLoop { path });
                }
                if !seen.insert(id(&meta)) {
                    tracing::warn!(path = %path.display(), "directory already listed through another path; skipped");
                    continue;
                }
                let mut chain = ancestors.clone();
                chain.push(id(&meta));
                dirs.push((path, chain));
            } else if meta.is_file() {
                files.push(path);
            } else {
                tracing::warn!(path = %path.display(), "skipping an entry that is neither a file nor a directory");
            }
        }
        if visible == 0 && dir != root {
            tracing::warn!(dir = %dir.display(), "partition directory has no files; nothing to cluster there");
        }
    }
    files.sort();
    Ok(files)
}

/// Lists the files under `root` with their partition keys and keeps those passing `filter`.
pub(super) fn list_files(
    selection: &Selection,
    filter: &PartitionFilter,
) -> Result<(Vec<String>, Vec<KeyedFile>), InputError> {
    let root = selection.root.as_path();
    let mut paths = walk(root)?;
    paths.retain(|p| selection.selects(p));
    let Some(first) = paths.first() else {
        return Err(InputError::NoParquetFiles { path: root.into() });
    };
    let keys: Vec<String> = parse_hive_path(root, first)?
        .0
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut keyed = Vec::with_capacity(paths.len());
    for path in paths {
        let key = parse_hive_path(root, &path)?;
        if !key.0.iter().map(|(k, _)| k).eq(keys.iter()) {
            return Err(InputError::InconsistentPartitionKeys {
                path,
                expected: keys.clone(),
                found: key.0.into_iter().map(|(k, _)| k).collect(),
            });
        }
        keyed.push((key, path));
    }
    filter.select(root, &keys, &mut keyed)?;
    Ok((keys, keyed))
}

/// A file with the partition key its path encodes.
pub(super) type KeyedFile = (PartitionKey, PathBuf);
