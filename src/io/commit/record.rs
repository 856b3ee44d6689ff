//! Commit records: what a committed partition was computed from, trusted only while every
//! table it vouches for is in place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::COMMITS_DIR;
use crate::io::InputError;
use crate::io::TableKind;
use crate::io::dataset::PartitionKey;
use crate::io::write::PART_FILE;
use crate::io::{sha256_hex, store};

/// What a committed partition was computed from, and the SHA-256 of each table file it
/// vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub key: String,
    pub input_fingerprint: String,
    pub param_hash: String,
    pub run_id: String,
    /// Table name → SHA-256 of its committed file, filled in by the commit.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
}

pub(super) fn record_path(out: &Path, key: &PartitionKey) -> PathBuf {
    out.join(COMMITS_DIR).join(key.dir()).join("commit.json")
}

/// The commit record of partition `key`, if it has one and every table in `tables` is in
/// place with the SHA-256 the record gives it. A record that vouches for other files (a
/// killed run's record landing after another run's commit, or one written before records
/// carried hashes) is not trusted: the partition is redone.
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
        let Some(expected) = record.files.get(table.name()) else {
            return Ok(None);
        };
        let Some(bytes) = store::read(&committed_file(out, table, key))? else {
            return Ok(None);
        };
        if sha256_hex(&bytes) != *expected {
            tracing::warn!(partition = %key, table = table.name(), "the commit record does not match the table in place; the partition is redone");
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
