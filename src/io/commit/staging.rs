//! One run's staging area: its table files, and the commits that put them in place.

use std::path::{Path, PathBuf};

use super::STAGING_DIR;
use super::failpoint::{crash_point, crash_testing};
use super::journal::{Entry, JOURNAL_PREFIX, Journal, journals};
use super::place::{place, remove_dir, sha256_of};
use super::record::{CommitRecord, committed_file, record_path};
use crate::io::OutputError;
use crate::io::TableKind;
use crate::io::atomic::write_atomic;
use crate::io::dataset::PartitionKey;
use crate::io::store;
use crate::io::write::PART_FILE;

/// One run's staging area.
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    pub(super) dir: PathBuf,
    remote: bool,
    /// Commits so far, numbering the journals.
    commits: std::sync::atomic::AtomicU64,
    /// The table files this run has staged, with the SHA-256 of each as the store holds it
    /// (checked against the bytes sent), so a commit on an object store need not ask.
    staged:
        std::sync::Mutex<std::collections::HashMap<(&'static str, PartitionKey), Option<String>>>,
}

impl Staging {
    /// Creates `OUT/_staging/<run id>/`, creating `OUT` if needed (on an object store there
    /// are no directories to create). The run id is `<start>-<host>-<pid>`.
    pub fn create(out: &Path, started_at: u64) -> Result<Self, OutputError> {
        let owner = crate::io::lock::current_owner(started_at);
        let dir = out.join(STAGING_DIR).join(owner.run_id());
        let remote = store::is_remote(out);
        if !remote {
            fs_err::create_dir_all(&dir)?;
        }
        Ok(Self {
            out: out.into(),
            dir,
            remote,
            commits: Default::default(),
            staged: Default::default(),
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
    pub fn file(&self, table: impl TableKind, key: &PartitionKey) -> PathBuf {
        self.dir.join(table.name()).join(key.dir()).join(PART_FILE)
    }

    /// Writes `batch` as `table`'s staged file of partition `key`; returns its size in bytes.
    pub fn write(
        &self,
        table: impl TableKind,
        key: &PartitionKey,
        batch: &arrow::array::RecordBatch,
    ) -> Result<u64, OutputError> {
        let written = crate::io::write::write_parquet(&self.file(table, key), batch)?;
        self.staged
            .lock()
            .expect("not poisoned")
            .insert((table.name(), key.clone()), written.sha256);
        Ok(written.bytes)
    }

    /// Starts `table`'s staged file of partition `key`, to be written batch by batch and
    /// closed with [`Staging::close`].
    pub fn writer(
        &self,
        table: impl TableKind,
        key: &PartitionKey,
    ) -> Result<crate::io::write::TableWriter, OutputError> {
        crate::io::write::TableWriter::create(&self.file(table, key), table.schema())
    }

    /// Closes a file started with [`Staging::writer`]; returns its rows and bytes.
    pub fn close(
        &self,
        table: impl TableKind,
        key: &PartitionKey,
        writer: crate::io::write::TableWriter,
    ) -> Result<(u64, u64), OutputError> {
        let written = writer.finish()?;
        self.staged
            .lock()
            .expect("not poisoned")
            .insert((table.name(), key.clone()), written.sha256);
        Ok((written.rows, written.bytes))
    }

    /// Where `table`'s file for partition `key` lives once committed.
    pub fn committed_file(out: &Path, table: impl TableKind, key: &PartitionKey) -> PathBuf {
        committed_file(out, table, key)
    }

    /// Cleans up after runs that are gone: a run's journal is rolled forward when this run can
    /// hold the locks of every partition in it, and its staging is then removed. Staging of
    /// live runs is left alone. `live` tells whether a run id belongs to a running job.
    pub fn recover(
        out: &Path,
        own_run: &str,
        live: &dyn Fn(&str) -> bool,
        lock_for: &mut dyn FnMut(&[PartitionKey]) -> bool,
    ) -> Result<(), OutputError> {
        let staging = out.join(STAGING_DIR);
        let runs: Vec<String> = if store::is_remote(out) {
            store::list_dirs(&staging)?
        } else if staging.is_dir() {
            fs_err::read_dir(&staging)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        } else {
            Vec::new()
        };
        for run in runs {
            if run == own_run || live(&run) {
                continue;
            }
            let dir = staging.join(&run);
            let journals = journals(&dir)?;
            let mut rolled = true;
            for (path, journal) in &journals {
                let keys: Vec<PartitionKey> = journal
                    .records
                    .iter()
                    .map(|(dir, _)| PartitionKey::from_dir(dir))
                    .collect();
                if !lock_for(&keys) {
                    tracing::warn!(
                        run,
                        "an interrupted commit's partitions are locked by a running job; it is rolled forward later"
                    );
                    rolled = false;
                    continue;
                }
                tracing::warn!(
                    run,
                    partitions = keys.len(),
                    "rolling forward a commit interrupted by a crash"
                );
                let staged = Staging {
                    out: out.into(),
                    dir: dir.clone(),
                    remote: store::is_remote(out),
                    commits: Default::default(),
                    staged: Default::default(),
                };
                staged.apply(path, journal, true)?;
            }
            if rolled {
                if journals.is_empty() {
                    tracing::warn!(dir = %dir.display(), "removing staging left by an interrupted run");
                }
                remove_dir(&dir)?;
            }
        }
        Ok(())
    }

    /// Commits partitions `records` together: every staged file of `tables` (in that order)
    /// of each is put in place, then their commit records are written (the protocol in the
    /// module docs).
    pub fn commit(
        &self,
        tables: &[impl TableKind],
        records: &[(PartitionKey, CommitRecord)],
    ) -> Result<(), OutputError> {
        let mut entries = Vec::new();
        let mut records = records.to_vec();
        for (key, record) in &mut records {
            record.files.clear();
            for &table in tables {
                let staged = self.file(table, key);
                // The record vouches for exactly these bytes: on a store, the object as the
                // store holds it, which `store::put` checked against the bytes sent.
                let (vouched, sha256) = if self.remote {
                    let written = self.staged.lock().expect("not poisoned");
                    match written.get(&(table.name(), key.clone())) {
                        Some(Some(sha)) => (sha.clone(), None),
                        _ => continue,
                    }
                } else {
                    match sha256_of(&staged)? {
                        Some(sha) => (sha.clone(), Some(sha)),
                        None => continue,
                    }
                };
                record.files.insert(table.name().to_owned(), vouched);
                entries.push(Entry {
                    table: table.name().to_owned(),
                    partition: key.dir().display().to_string(),
                    sha256,
                });
            }
        }
        let journal = Journal {
            run_id: self.run_id(),
            entries,
            records: records
                .iter()
                .map(|(k, r)| (k.dir().display().to_string(), r.clone()))
                .collect(),
        };
        let n = self
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = self.dir.join(format!("{JOURNAL_PREFIX}{n}.json"));
        crash_point("staged");
        write_atomic(
            &path,
            &serde_json::to_vec_pretty(&journal).expect("journal serialises"),
        )?;
        crash_point("journal-written");
        for (key, _) in &records {
            store::remove(&record_path(&self.out, key))?;
        }
        crash_point("records-removed");
        self.apply(&path, &journal, false)
    }

    /// Steps 3-5 of a commit, or of its roll-forward (`path` is its journal): every step can
    /// be redone. A roll-forward skips the entries already in place.
    fn apply(
        &self,
        path: &Path,
        journal: &Journal,
        rolling_forward: bool,
    ) -> Result<(), OutputError> {
        let file_of = |root: &Path, entry: &Entry| {
            root.join(&entry.table)
                .join(&entry.partition)
                .join(PART_FILE)
        };
        if self.remote {
            // Copies of different objects are independent: sent side by side. A roll-forward
            // copies what is still staged (the staged files outlive the journal).
            let mut pairs = Vec::with_capacity(journal.entries.len());
            for entry in &journal.entries {
                let staged = file_of(&self.dir, entry);
                if !rolling_forward || store::exists(&staged)? {
                    pairs.push((staged, file_of(&self.out, entry)));
                }
            }
            if crash_testing() {
                for pair in &pairs {
                    store::copy_all(std::slice::from_ref(pair))?;
                    crash_point("first-placed");
                }
            } else {
                store::copy_all(&pairs)?;
            }
        }
        for entry in journal.entries.iter().filter(|_| !self.remote) {
            let table_dir = |root: &Path| root.join(&entry.table).join(&entry.partition);
            let (staged, target) = (table_dir(&self.dir), table_dir(&self.out));
            let new = entry.sha256.as_deref();
            if rolling_forward && sha256_of(&target.join(PART_FILE))?.as_deref() == new {
                continue; // already in place
            }
            if rolling_forward && sha256_of(&staged.join(PART_FILE))?.as_deref() != new {
                tracing::error!(
                    table = entry.table,
                    partition = entry.partition,
                    "neither the committed nor the staged file is the journal's version; left as it is"
                );
                continue;
            }
            place(
                &staged,
                &target,
                &self
                    .dir
                    .join("_replaced")
                    .join(&entry.table)
                    .join(&entry.partition),
            )?;
            crash_point("first-placed");
        }
        crash_point("all-placed");
        for (dir, record) in &journal.records {
            let key = PartitionKey::from_dir(dir);
            write_atomic(
                &record_path(&self.out, &key),
                &serde_json::to_vec_pretty(record).expect("record serialises"),
            )?;
        }
        crash_point("records-written");
        store::remove(path)?;
        crash_point("journal-removed");
        // The staged paths now hold old versions, or nothing: no longer committed anywhere.
        if self.remote {
            let staged: Vec<PathBuf> = journal
                .entries
                .iter()
                .map(|e| file_of(&self.dir, e))
                .collect();
            store::remove_many(&staged)?;
        }
        for entry in journal.entries.iter().filter(|_| !self.remote) {
            let staged = self.dir.join(&entry.table).join(&entry.partition);
            if staged.exists() {
                fs_err::remove_dir_all(&staged)?;
            }
        }
        let replaced = self.dir.join("_replaced");
        if !self.remote && replaced.exists() {
            fs_err::remove_dir_all(&replaced)?;
        }
        Ok(())
    }

    /// Removes the staging directory (and `OUT/_staging` when no other run uses it).
    pub fn finish(self) -> Result<(), OutputError> {
        if self.remote {
            return Ok(remove_dir(&self.dir)?);
        }
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
