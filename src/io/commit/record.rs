//! Commit records: what a committed partition was computed from, trusted only while every
//! table it vouches for is in place.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::COMMITS_DIR;
use crate::io::InputError;
use crate::io::TableKind;
use crate::io::dataset::PartitionKey;
use crate::io::store;
use crate::io::write::PART_FILE;

/// What a committed partition was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub key: String,
    pub input_fingerprint: String,
    pub param_hash: String,
    pub run_id: String,
}

pub(super) fn record_path(out: &Path, key: &PartitionKey) -> PathBuf {
    out.join(COMMITS_DIR).join(key.dir()).join("commit.json")
}

/// The commit record of partition `key`, if it has one and every table in `tables` is present.
pub fn committed(
    out: &Path,
    key: &PartitionKey,
    tables: &[impl TableKind],
) -> Result<Option<CommitRecord>, store::StoreError> {
    let Some(bytes) = store::read(&record_path(out, key))? else {
        return Ok(None);
    };
    let Ok(record) = serde_json::from_slice::<CommitRecord>(&bytes) else {
        return Ok(None);
    };
    for &table in tables {
        if !store::exists(&committed_file(out, table, key))? {
            return Ok(None);
        }
    }
    Ok(Some(record))
}

/// The partitions of `table` under `out` that hold a committed data file, sorted (one empty
/// key for an unpartitioned output, none when the table does not exist).
pub fn committed_partitions(
    out: &Path,
    table: impl TableKind,
) -> Result<Vec<PartitionKey>, InputError> {
    let dir = out.join(table.name());
    let mut keys = Vec::new();
    if let Some(remote) = store::remote(&dir)? {
        for object in store::list(&remote)? {
            let hidden = object
                .relative
                .split('/')
                .any(|s| s.starts_with(['_', '.']));
            if !hidden && object.relative.rsplit('/').next() == Some(PART_FILE) {
                keys.push(crate::io::dataset::parse_hive_path(
                    &dir,
                    Path::new(&object.url),
                )?);
            }
        }
    } else {
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        for path in crate::io::dataset::walk(&dir)? {
            if path.file_name().is_some_and(|n| n == PART_FILE) {
                keys.push(crate::io::dataset::parse_hive_path(&dir, &path)?);
            }
        }
    }
    keys.sort();
    Ok(keys)
}

/// Where `table`'s file for partition `key` lives once committed.
pub fn committed_file(out: &Path, table: impl TableKind, key: &PartitionKey) -> PathBuf {
    out.join(table.name()).join(key.dir()).join(PART_FILE)
}
