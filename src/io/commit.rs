//! Staging and committing outputs, so a reader never sees a half-written partition.
//!
//! A run writes every table file under `OUT/_staging/<run id>/`; the leading underscore makes
//! pyarrow, DuckDB, polars and Spark ignore it. A partition is committed by renaming its
//! staged directory of each table into place (`OUT/labels/dt=…`), after moving any previous
//! version aside. A rename within one file system is atomic, so a reader sees the old
//! partition directory or the new one, never a mix. Small files such as the manifest are
//! written to a temporary file and renamed.

use std::path::{Path, PathBuf};

use super::OutputError;
use super::dataset::PartitionKey;
use super::write::{PART_FILE, Table};

/// Directory under the output path that holds runs in progress.
pub const STAGING_DIR: &str = "_staging";

/// One run's staging area.
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
}

impl Staging {
    /// Creates `OUT/_staging/<run_id>/`, creating `OUT` if needed.
    pub fn create(out: &Path, run_id: &str) -> Result<Self, OutputError> {
        let dir = out.join(STAGING_DIR).join(run_id);
        fs_err::create_dir_all(&dir)?;
        Ok(Self {
            out: out.into(),
            dir,
        })
    }

    /// Where `table`'s file for partition `key` is staged.
    pub fn file(&self, table: Table, key: &PartitionKey) -> PathBuf {
        self.dir.join(table.name()).join(key.dir()).join(PART_FILE)
    }

    /// Where `table`'s file for partition `key` lives once committed.
    pub fn committed_file(out: &Path, table: Table, key: &PartitionKey) -> PathBuf {
        out.join(table.name()).join(key.dir()).join(PART_FILE)
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
        if fs_err::read_dir(&parent)?.next().is_none() {
            fs_err::remove_dir(&parent)?;
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        use std::io::Write;
        let mut file = fs_err::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs_err::rename(&tmp, path)?;
    Ok(())
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
        let first = Staging::create(out.path(), "run1").unwrap();
        write(&first, &key("a"), "a1");
        write(&first, &key("b"), "b1");
        first.commit(&key("a")).unwrap();
        first.commit(&key("b")).unwrap();
        first.finish().unwrap();

        let second = Staging::create(out.path(), "run2").unwrap();
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
    fn atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        write_atomic(&path, b"{}").unwrap();
        write_atomic(&path, b"{\"a\":1}").unwrap();
        assert_eq!(fs_err::read_to_string(&path).unwrap(), "{\"a\":1}");
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 1);
    }
}
