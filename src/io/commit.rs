//! Staging and committing outputs, so a reader never sees a half-written partition.
//!
//! A run writes every table file under `OUT/_staging/<run id>/`; the leading underscore makes
//! pyarrow, DuckDB, polars and Spark ignore it. A partition is committed by putting its staged
//! directory of each table in place (`OUT/labels/dt=…`). A new partition is renamed in. An
//! existing one is swapped with the staged one in a single step (Linux `renameat2` with
//! `RENAME_EXCHANGE`), so at every moment the path holds the old directory or the new one,
//! and the staged path then holds the old version, which is no longer committed and is
//! removed. Where the swap is not available (another OS, a file system without it), the old
//! version is first moved aside into the staging directory: a crash between the two renames
//! leaves that partition absent until the next run. Small files such as the manifest are
//! written to a temporary file and renamed.
//!
//! After a partition's tables are in place, a commit record (`OUT/_commits/<key>/commit.json`)
//! stores the input fingerprint and parameter hash it was computed from; `skip_existing` reads
//! it. The record is removed before a partition is replaced and written after, so it never
//! vouches for a partition that is being swapped.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::dataset::PartitionKey;
use super::write::{PART_FILE, Table};
use super::{InputError, OutputError};

/// Directory under the output path that holds runs in progress.
pub const STAGING_DIR: &str = "_staging";

/// Directory under the output path that holds commit records.
pub const COMMITS_DIR: &str = "_commits";

/// What a committed partition was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub key: String,
    pub input_fingerprint: String,
    pub param_hash: String,
    pub run_id: String,
}

fn record_path(out: &Path, key: &PartitionKey) -> PathBuf {
    out.join(COMMITS_DIR).join(key.dir()).join("commit.json")
}

/// The commit record of partition `key`, if it has one and every table in `tables` is present.
pub fn committed(out: &Path, key: &PartitionKey, tables: &[Table]) -> Option<CommitRecord> {
    let text = fs_err::read_to_string(record_path(out, key)).ok()?;
    let record: CommitRecord = serde_json::from_str(&text).ok()?;
    tables
        .iter()
        .all(|&t| Staging::committed_file(out, t, key).exists())
        .then_some(record)
}

/// The partitions of `table` under `out` that hold a committed data file, sorted (one empty
/// key for an unpartitioned output, none when the table does not exist).
pub fn committed_partitions(out: &Path, table: Table) -> Result<Vec<PartitionKey>, InputError> {
    let dir = out.join(table.name());
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut keys = Vec::new();
    for path in super::dataset::walk(&dir)? {
        if path.file_name().is_some_and(|n| n == PART_FILE) {
            keys.push(super::dataset::parse_hive_path(&dir, &path)?);
        }
    }
    keys.sort();
    Ok(keys)
}

/// One run's staging area.
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
}

impl Staging {
    /// Creates `OUT/_staging/<run id>/`, creating `OUT` if needed. The run id is
    /// `<start>-<host>-<pid>`, so a later run can tell from the name alone whether this one is
    /// still alive (a marker file inside would leave a window where the directory has none).
    pub fn create(out: &Path, started_at: u64) -> Result<Self, OutputError> {
        let owner = super::lock::current_owner(started_at);
        let dir = out
            .join(STAGING_DIR)
            .join(format!("{}-{}-{}", owner.started_at, owner.host, owner.pid));
        fs_err::create_dir_all(&dir)?;
        Ok(Self {
            out: out.into(),
            dir,
        })
    }

    /// The run id: the staging directory's name.
    pub fn run_id(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Where `table`'s file for partition `key` is staged.
    pub fn file(&self, table: Table, key: &PartitionKey) -> PathBuf {
        self.dir.join(table.name()).join(key.dir()).join(PART_FILE)
    }

    /// Where `table`'s file for partition `key` lives once committed.
    pub fn committed_file(out: &Path, table: Table, key: &PartitionKey) -> PathBuf {
        out.join(table.name()).join(key.dir()).join(PART_FILE)
    }

    /// Removes the staging directories of runs that are gone (killed); staging of live runs,
    /// or of runs on other hosts, is left alone.
    pub fn remove_stale(out: &Path) -> Result<(), OutputError> {
        let dir = out.join(STAGING_DIR);
        if !dir.exists() {
            return Ok(());
        }
        for entry in fs_err::read_dir(&dir)? {
            let run = entry?.path();
            let name = run
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if parse_run_id(&name).is_some_and(|o| !super::lock::is_alive(&o)) {
                tracing::warn!(dir = %run.display(), "removing staging left by an interrupted run");
                fs_err::remove_dir_all(&run)?;
            }
        }
        Ok(())
    }

    /// Commits partition `key` ([`Staging::commit`]) and then writes its commit record.
    pub fn commit_with_record(
        &self,
        key: &PartitionKey,
        record: &CommitRecord,
    ) -> Result<(), OutputError> {
        let path = record_path(&self.out, key);
        if path.exists() {
            fs_err::remove_file(&path)?;
        }
        self.commit(key)?;
        write_atomic(
            &path,
            &serde_json::to_vec_pretty(record).expect("record serialises"),
        )
    }

    /// Moves the staged directories of partition `key` into place, replacing old versions.
    pub fn commit(&self, key: &PartitionKey) -> Result<(), OutputError> {
        for table in Table::ALL {
            let staged = self.dir.join(table.name()).join(key.dir());
            if !staged.exists() {
                continue;
            }
            let target = self.out.join(table.name()).join(key.dir());
            if let Some(parent) = target.parent() {
                fs_err::create_dir_all(parent)?;
            }
            if target.exists() {
                if exchange(&staged, &target)? {
                    // The staged path now holds the old version.
                    fs_err::remove_dir_all(&staged)?;
                    continue;
                }
                let old = self
                    .dir
                    .join("_replaced")
                    .join(table.name())
                    .join(key.dir());
                fs_err::create_dir_all(old.parent().expect("has a parent"))?;
                fs_err::rename(&target, &old)?;
                fs_err::rename(&staged, &target)?;
                fs_err::remove_dir_all(&old)?;
            } else {
                fs_err::rename(&staged, &target)?;
            }
        }
        Ok(())
    }

    /// Removes the staging directory (and `OUT/_staging` when no other run uses it).
    pub fn finish(self) -> Result<(), OutputError> {
        fs_err::remove_dir_all(&self.dir)?;
        let parent = self.out.join(STAGING_DIR);
        // Another run may create or remove its own directory meanwhile: only an empty parent
        // is removed, and losing that race is fine.
        if fs_err::read_dir(&parent).is_ok_and(|mut d| d.next().is_none()) {
            let _ = fs_err::remove_dir(&parent);
        }
        Ok(())
    }
}

/// Swaps the paths `a` and `b`, both existing, in one atomic step (Linux `renameat2` with
/// `RENAME_EXCHANGE`). `Ok(false)` when this platform or file system cannot swap.
fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes());
        let (ca, cb) = (c(a)?, c(b)?);
        // SAFETY: both pointers are NUL-terminated strings that outlive the call; the syscall
        // only reads them.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                ca.as_ptr(),
                libc::AT_FDCWD,
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if r == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => Ok(false),
            _ => Err(std::io::Error::new(
                e.kind(),
                format!("cannot swap `{}` with `{}`: {e}", a.display(), b.display()),
            )),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        Ok(false)
    }
}

/// The owner encoded in a run id `<start>-<host>-<pid>` (host names may contain `-`).
fn parse_run_id(name: &str) -> Option<super::lock::LockOwner> {
    let (start, rest) = name.split_once('-')?;
    let (host, pid) = rest.rsplit_once('-')?;
    Some(super::lock::LockOwner {
        pid: pid.parse().ok()?,
        host: host.to_owned(),
        started_at: start.parse().ok()?,
    })
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        use std::io::Write;
        let mut file = fs_err::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs_err::rename(&tmp, path)
    })();
    if written.is_err() {
        // A full disk or a failed rename must not leave the temporary file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(written?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: &str) -> PartitionKey {
        PartitionKey(vec![("dt".into(), v.into())])
    }

    #[test]
    fn commit_replaces_only_the_given_partition() {
        let out = tempfile::tempdir().unwrap();
        let write = |s: &Staging, k: &PartitionKey, body: &str| {
            let f = s.file(Table::Labels, k);
            fs_err::create_dir_all(f.parent().unwrap()).unwrap();
            fs_err::write(f, body).unwrap();
        };
        let first = Staging::create(out.path(), 1).unwrap();
        write(&first, &key("a"), "a1");
        write(&first, &key("b"), "b1");
        first.commit(&key("a")).unwrap();
        first.commit(&key("b")).unwrap();
        first.finish().unwrap();

        let second = Staging::create(out.path(), 2).unwrap();
        write(&second, &key("b"), "b2");
        second.commit(&key("b")).unwrap();
        second.finish().unwrap();

        let read = |k| {
            fs_err::read_to_string(Staging::committed_file(out.path(), Table::Labels, &key(k)))
                .unwrap()
        };
        assert_eq!(read("a"), "a1");
        assert_eq!(read("b"), "b2");
        assert!(!out.path().join(STAGING_DIR).exists());
    }

    #[test]
    fn commit_records_vouch_only_for_complete_partitions() {
        let out = tempfile::tempdir().unwrap();
        let staging = Staging::create(out.path(), 3).unwrap();
        let f = staging.file(Table::Labels, &key("a"));
        fs_err::create_dir_all(f.parent().unwrap()).unwrap();
        fs_err::write(&f, "x").unwrap();
        let record = CommitRecord {
            key: "dt=a".into(),
            input_fingerprint: "f".into(),
            param_hash: "p".into(),
            run_id: "run".into(),
        };
        staging.commit_with_record(&key("a"), &record).unwrap();
        staging.finish().unwrap();
        assert_eq!(
            committed(out.path(), &key("a"), &[Table::Labels]),
            Some(record)
        );
        assert_eq!(
            committed(out.path(), &key("a"), &[Table::Labels, Table::Keywords]),
            None
        );
        assert_eq!(committed(out.path(), &key("b"), &[Table::Labels]), None);
    }

    #[test]
    fn run_ids_name_their_owner() {
        let owner = parse_run_id("1700000000-my-host-1-4242").unwrap();
        assert_eq!(
            (owner.started_at, owner.host.as_str(), owner.pid),
            (1_700_000_000, "my-host-1", 4242)
        );
        assert!(parse_run_id("garbage").is_none());
    }

    #[test]
    fn exchange_swaps_two_directories() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs_err::create_dir_all(&a).unwrap();
        fs_err::create_dir_all(&b).unwrap();
        fs_err::write(a.join("x"), "new").unwrap();
        fs_err::write(b.join("x"), "old").unwrap();
        if exchange(&a, &b).unwrap() {
            assert_eq!(fs_err::read_to_string(b.join("x")).unwrap(), "new");
            assert_eq!(fs_err::read_to_string(a.join("x")).unwrap(), "old");
        }
        #[cfg(target_os = "linux")]
        assert!(
            exchange(&a, &dir.path().join("missing")).is_err(),
            "swapping with a missing path is an error"
        );
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        write_atomic(&path, b"{}").unwrap();
        write_atomic(&path, b"{\"a\":1}").unwrap();
        assert_eq!(fs_err::read_to_string(&path).unwrap(), "{\"a\":1}");
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 1);
    }
}
