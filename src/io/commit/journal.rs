//! Journals: a commit's list of table partitions to put in place and records to write, kept
//! until the commit is done so a crash can be rolled forward.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::CommitRecord;
use crate::io::OutputError;
use crate::io::store;

/// The journals of commits in progress, in the run's staging directory:
/// `_journal-<n>.json`, one per commit (partitions of one run commit concurrently).
pub(super) const JOURNAL_PREFIX: &str = "_journal-";

/// One table partition a commit puts in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Entry {
    pub(super) table: String,
    /// The partition's directory form, `dt=2018-06-01`.
    pub(super) partition: String,
    /// SHA-256 of the new file (local disk, where the roll-forward must tell a swapped
    /// directory from one still waiting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) sha256: Option<String>,
}

/// Everything one commit does, written before its first change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Journal {
    pub(super) run_id: String,
    pub(super) entries: Vec<Entry>,
    /// The commit records to write, by partition directory.
    pub(super) records: Vec<(String, CommitRecord)>,
}

/// The journals in the staging directory `dir` of one run, in commit order.
pub(super) fn journals(dir: &Path) -> Result<Vec<(PathBuf, Journal)>, OutputError> {
    let names: Vec<String> = if let Some(remote) = store::remote(dir)? {
        store::list(&remote)?
            .into_iter()
            .map(|o| o.relative)
            .filter(|r| !r.contains('/'))
            .collect()
    } else {
        match fs_err::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    };
    let mut numbered: Vec<(u64, String)> = names
        .into_iter()
        .filter_map(|n| {
            let i = n
                .strip_prefix(JOURNAL_PREFIX)?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            Some((i, n))
        })
        .collect();
    numbered.sort();
    let mut journals = Vec::with_capacity(numbered.len());
    for (_, name) in numbered {
        let path = dir.join(name);
        if let Some(bytes) = store::read(&path)? {
            match serde_json::from_slice::<Journal>(&bytes) {
                Ok(journal) => journals.push((path, journal)),
                Err(e) => {
                    tracing::warn!(journal = %path.display(), error = %e, "unreadable journal ignored")
                }
            }
        }
    }
    Ok(journals)
}
