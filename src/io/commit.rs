//! Staging and committing outputs, so a reader never sees a half-written partition or a mix
//! of two clusterings.
//!
//! A run writes every table file under `OUT/_staging/<run id>/`; the leading underscore makes
//! pyarrow, DuckDB, polars and Spark ignore it. A commit covers a set of partitions (one in
//! `partition` scope, every partition and the cluster tables in `global` scope) and goes:
//!
//! 1. write the journal `OUT/_staging/<run id>/_journal-<n>.json`: every (table, partition) to put
//!    in place, with the SHA-256 of each new file, and the commit records to write;
//! 2. remove the commit records of those partitions, so `skip_existing` trusts none of them
//!    while they change;
//! 3. put each table partition in place. On local disk a new partition directory is renamed
//!    in and an existing one is swapped with the staged one in one step (Linux `renameat2`
//!    with `RENAME_EXCHANGE`), so the path always holds the old directory or the new one. On
//!    an object store the staged file is copied over the committed one (a server-side copy
//!    replaces the object in one step);
//! 4. write the commit records (`OUT/_commits/<key>/commit.json`);
//! 5. remove the journal, then the staged files (after a swap they hold the old versions).
//!
//! A run killed between 1 and 5 leaves its journal. The next run that holds the locks of every
//! partition in it rolls it forward: it redoes step 3 for each entry whose committed file does
//! not have the new hash yet (the staged files are kept until the journal is gone), then steps
//! 4 and 5. So a crash leaves, per table partition, the old or the new version, and the whole
//! set ends on the new clustering, never a mix. Where the swap is not available (another OS, a
//! file system without it), the old version is first moved aside into the staging directory;
//! a crash between those two renames leaves that one partition absent until the roll-forward.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::TableKind;
pub use super::atomic::write_atomic;
use super::dataset::PartitionKey;
use super::store;
use super::write::PART_FILE;
use super::{InputError, OutputError};

/// Directory under the output path that holds runs in progress.
pub const STAGING_DIR: &str = "_staging";

/// Directory under the output path that holds commit records.
pub const COMMITS_DIR: &str = "_commits";

/// The journals of commits in progress, in the run's staging directory:
/// `_journal-<n>.json`, one per commit (partitions of one run commit concurrently).
const JOURNAL_PREFIX: &str = "_journal-";

/// What a committed partition was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub key: String,
    pub input_fingerprint: String,
    pub param_hash: String,
    pub run_id: String,
}

/// One table partition a commit puts in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    table: String,
    /// The partition's directory form, `dt=2018-06-01`.
    partition: String,
    /// SHA-256 of the new file (local disk, where the roll-forward must tell a swapped
    /// directory from one still waiting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

/// Everything one commit does, written before its first change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Journal {
    run_id: String,
    entries: Vec<Entry>,
    /// The commit records to write, by partition directory.
    records: Vec<(String, CommitRecord)>,
}

fn record_path(out: &Path, key: &PartitionKey) -> PathBuf {
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
        if !store::exists(&Staging::committed_file(out, table, key))? {
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
                keys.push(super::dataset::parse_hive_path(
                    &dir,
                    Path::new(&object.url),
                )?);
            }
        }
    } else {
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        for path in super::dataset::walk(&dir)? {
            if path.file_name().is_some_and(|n| n == PART_FILE) {
                keys.push(super::dataset::parse_hive_path(&dir, &path)?);
            }
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
    remote: bool,
    /// Commits so far, numbering the journals.
    commits: std::sync::atomic::AtomicU64,
    /// The table files this run has staged, so a commit on an object store need not ask.
    staged: std::sync::Mutex<std::collections::HashSet<(&'static str, PartitionKey)>>,
}

impl Staging {
    /// Creates `OUT/_staging/<run id>/`, creating `OUT` if needed (on an object store there
    /// are no directories to create). The run id is `<start>-<host>-<pid>`.
    pub fn create(out: &Path, started_at: u64) -> Result<Self, OutputError> {
        let owner = super::lock::current_owner(started_at);
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
        let n_bytes = super::write::write_parquet(&self.file(table, key), batch)?;
        self.staged
            .lock()
            .expect("not poisoned")
            .insert((table.name(), key.clone()));
        Ok(n_bytes)
    }

    /// Starts `table`'s staged file of partition `key`, to be written batch by batch and
    /// closed with [`Staging::close`].
    pub fn writer(
        &self,
        table: impl TableKind,
        key: &PartitionKey,
    ) -> Result<super::write::TableWriter, OutputError> {
        super::write::TableWriter::create(&self.file(table, key), table.schema())
    }

    /// Closes a file started with [`Staging::writer`]; returns its rows and bytes.
    pub fn close(
        &self,
        table: impl TableKind,
        key: &PartitionKey,
        writer: super::write::TableWriter,
    ) -> Result<(u64, u64), OutputError> {
        let written = writer.finish()?;
        self.staged
            .lock()
            .expect("not poisoned")
            .insert((table.name(), key.clone()));
        Ok(written)
    }

    /// Where `table`'s file for partition `key` lives once committed.
    pub fn committed_file(out: &Path, table: impl TableKind, key: &PartitionKey) -> PathBuf {
        out.join(table.name()).join(key.dir()).join(PART_FILE)
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
        for (key, _) in records {
            for &table in tables {
                let staged = self.file(table, key);
                let is_staged = if self.remote {
                    let written = self.staged.lock().expect("not poisoned");
                    written.contains(&(table.name(), key.clone()))
                } else {
                    staged.exists()
                };
                if !is_staged {
                    continue;
                }
                let sha256 = if self.remote {
                    None
                } else {
                    Some(sha256_of(&staged)?.expect("the staged file exists"))
                };
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
        for (key, _) in records {
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

/// The journals in the staging directory `dir` of one run, in commit order.
fn journals(dir: &Path) -> Result<Vec<(PathBuf, Journal)>, OutputError> {
    let names: Vec<String> = if let Some(remote) = store::remote(dir)? {
        store::list(&remote)?
            .into_iter()
            .map(|o| o.relative)
            .filter(|r| !r.contains('/'))
            .collect()
    } else {
        match std::fs::read_dir(dir) {
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

/// Failpoint for the test suite, compiled only into debug builds: with
/// `TEXTCLUSTER_FAILPOINT_KILL=<step>` the process SIGKILLs itself when a commit reaches
/// `step`, so each crash point of the protocol can be tested exactly.
pub(crate) fn crash_point(step: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("TEXTCLUSTER_FAILPOINT_KILL").is_ok_and(|s| s == step) {
        // SAFETY: kill(2) with this process's own pid; no memory is involved.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

/// True when a crash failpoint is set: copies then go one at a time, so a kill can land
/// between two of them.
fn crash_testing() -> bool {
    cfg!(debug_assertions) && std::env::var_os("TEXTCLUSTER_FAILPOINT_KILL").is_some()
}

/// Removes the directory `dir`, local or remote, with everything under it.
fn remove_dir(dir: &Path) -> Result<(), store::StoreError> {
    if store::is_remote(dir) {
        return store::remove_all(dir);
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(store::StoreError {
            op: "remove",
            url: dir.display().to_string(),
            message: e.to_string(),
            failure: store::Failure::Other,
        }),
        _ => Ok(()),
    }
}

/// The SHA-256 of the local file `path` in hex, or `None` when there is none.
fn sha256_of(path: &Path) -> Result<Option<String>, OutputError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(
            sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("cannot read `{}`: {e}", path.display()),
        )
        .into()),
    }
}

/// Puts the local directory `staged` at `target`: renamed in when `target` is absent, swapped
/// with it in one step when it exists, or (without the swap) the old one moved to `aside`
/// first. Afterwards `staged` holds the old version or nothing.
fn place(staged: &Path, target: &Path, aside: &Path) -> Result<(), OutputError> {
    if let Some(parent) = target.parent() {
        fs_err::create_dir_all(parent)?;
    }
    if !target.exists() {
        fs_err::rename(staged, target)?;
        return Ok(());
    }
    if exchange(staged, target)? {
        return Ok(());
    }
    fs_err::create_dir_all(aside.parent().expect("has a parent"))?;
    fs_err::rename(target, aside)?;
    fs_err::rename(staged, target)?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tables, as the output contract would name them.
    #[derive(Debug, Clone, Copy)]
    enum Table {
        Labels,
        Keywords,
    }

    impl TableKind for Table {
        fn name(self) -> &'static str {
            match self {
                Table::Labels => "labels",
                Table::Keywords => "keywords",
            }
        }

        fn schema(self) -> arrow::datatypes::SchemaRef {
            std::sync::Arc::new(arrow::datatypes::Schema::empty())
        }
    }

    const TABLES: [Table; 2] = [Table::Labels, Table::Keywords];

    fn key(v: &str) -> PartitionKey {
        PartitionKey(vec![("dt".into(), v.into())])
    }

    fn record(k: &str) -> (PartitionKey, CommitRecord) {
        (
            key(k),
            CommitRecord {
                key: format!("dt={k}"),
                input_fingerprint: "f".into(),
                param_hash: "p".into(),
                run_id: "run".into(),
            },
        )
    }

    /// Stages `body` as the labels file of partition `k`.
    fn write(s: &Staging, k: &PartitionKey, body: &str) {
        let f = s.file(Table::Labels, k);
        fs_err::create_dir_all(f.parent().unwrap()).unwrap();
        fs_err::write(f, body).unwrap();
    }

    #[test]
    fn commit_replaces_only_the_given_partition() {
        let out = tempfile::tempdir().unwrap();
        let first = Staging::create(out.path(), 1).unwrap();
        write(&first, &key("a"), "a1");
        write(&first, &key("b"), "b1");
        first.commit(&TABLES, &[record("a")]).unwrap();
        first.commit(&TABLES, &[record("b")]).unwrap();
        first.finish().unwrap();

        let second = Staging::create(out.path(), 2).unwrap();
        write(&second, &key("b"), "b2");
        second.commit(&TABLES, &[record("b")]).unwrap();
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
        write(&staging, &key("a"), "x");
        let (_, rec) = record("a");
        staging.commit(&TABLES, &[record("a")]).unwrap();
        staging.finish().unwrap();
        assert_eq!(
            committed(out.path(), &key("a"), &[Table::Labels]).unwrap(),
            Some(rec)
        );
        assert_eq!(
            committed(out.path(), &key("a"), &[Table::Labels, Table::Keywords]).unwrap(),
            None
        );
        assert_eq!(
            committed(out.path(), &key("b"), &[Table::Labels]).unwrap(),
            None
        );
    }

    #[test]
    fn an_interrupted_commit_is_rolled_forward_and_its_staging_removed() {
        let out = tempfile::tempdir().unwrap();
        let first = Staging::create(out.path(), 1).unwrap();
        write(&first, &key("a"), "a1");
        write(&first, &key("b"), "b1");
        first.commit(&TABLES, &[record("a"), record("b")]).unwrap();
        first.finish().unwrap();
        // A second commit of both partitions is killed after swapping `a` only: its journal
        // and the staged `b` remain, and `a`'s staged path holds the old version.
        let second = Staging::create(out.path(), 2).unwrap();
        write(&second, &key("a"), "a2");
        write(&second, &key("b"), "b2");
        let journal = |s: &Staging| {
            let mut entries = Vec::new();
            for k in ["a", "b"] {
                entries.push(Entry {
                    table: "labels".into(),
                    partition: format!("dt={k}"),
                    sha256: sha256_of(&s.file(Table::Labels, &key(k))).unwrap(),
                });
            }
            Journal {
                run_id: s.run_id(),
                entries,
                records: vec![
                    ("dt=a".into(), record("a").1),
                    ("dt=b".into(), record("b").1),
                ],
            }
        };
        let j = journal(&second);
        write_atomic(
            &second.dir.join(format!("{JOURNAL_PREFIX}0.json")),
            &serde_json::to_vec(&j).unwrap(),
        )
        .unwrap();
        let labels = |k: &str| Staging::committed_file(out.path(), Table::Labels, &key(k));
        place(
            &second.dir.join("labels/dt=a"),
            labels("a").parent().unwrap(),
            &second.dir.join("_replaced/labels/dt=a"),
        )
        .unwrap();
        let read = |k: &str| fs_err::read_to_string(labels(k)).unwrap();
        assert_eq!((read("a"), read("b")), ("a2".into(), "b1".into()));
        let second_run = second.run_id();
        std::mem::forget(second);

        // A locked-out recovery leaves everything; one that holds the locks rolls forward.
        let refuse = |_: &[PartitionKey]| false;
        Staging::recover(out.path(), "other", &|_| false, &mut { refuse }).unwrap();
        assert_eq!(read("b"), "b1");
        Staging::recover(out.path(), "other", &|_| false, &mut |_| true).unwrap();
        assert_eq!((read("a"), read("b")), ("a2".into(), "b2".into()));
        assert!(!out.path().join(STAGING_DIR).join(second_run).exists());
        assert!(
            committed(out.path(), &key("b"), &[Table::Labels])
                .unwrap()
                .is_some()
        );
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
