//! One run at a time per output partition: `OUT/_locks/<partition>/lock.json`.
//!
//! A run locks every partition it will write (in `global` scope also `__all__`), in sorted
//! order, all or nothing: two runs on the same output stop each other at once, while runs on
//! different partitions (an Airflow backfill fanned out one task per partition) proceed side
//! by side. Each lock file appears atomically with its content (a hard link), so of two runs
//! starting together exactly one gets it. It holds the owner's pid, host and start time. A lock whose owner is a
//! process on this host that no longer exists (a run killed with SIGKILL) is stale: it is
//! taken over with a warning. Liveness is checked through `/proc/<pid>`, so on a host without
//! `/proc` a lock is only taken over by hand (delete the file).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::OutputError;

use super::dataset::PartitionKey;

/// Directory under the output path that holds the partition locks.
pub const LOCKS_DIR: &str = "_locks";

/// The lock file of partition `key` under output `out`.
pub fn lock_path(out: &Path, key: &PartitionKey) -> PathBuf {
    out.join(LOCKS_DIR).join(key.dir()).join("lock.json")
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    pub pid: u32,
    pub host: String,
    /// Unix seconds.
    pub started_at: u64,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "output `{}` is locked by a running job (pid {}, host `{}`, started at {})\nhint: wait for it to finish; if it is gone, delete `{}`",
        out.display(), owner.pid, owner.host, owner.started_at, path.display()
    )]
    Held {
        out: PathBuf,
        path: PathBuf,
        owner: LockOwner,
    },
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// A held lock; released (the file removed) on [`RunLock::release`] or drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    released: bool,
}

/// The locks of every partition a run writes.
#[derive(Debug)]
pub struct RunLocks(Vec<RunLock>);

impl RunLocks {
    /// Locks partitions `keys` of output `out`, all or nothing.
    pub fn acquire(out: &Path, keys: &[PartitionKey], started_at: u64) -> Result<Self, LockError> {
        let mut sorted: Vec<&PartitionKey> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut held = Vec::with_capacity(sorted.len());
        for key in sorted {
            // On error the locks taken so far are released by their drop.
            held.push(RunLock::acquire(out, &lock_path(out, key), started_at)?);
        }
        Ok(Self(held))
    }

    /// Removes every lock file.
    pub fn release(self) -> Result<(), OutputError> {
        for lock in self.0 {
            lock.release()?;
        }
        Ok(())
    }
}

/// This host's name, as the kernel reports it.
pub fn host_name() -> String {
    fs_err::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// The owner record of this process.
pub fn current_owner(started_at: u64) -> LockOwner {
    LockOwner {
        pid: std::process::id(),
        host: host_name(),
        started_at,
    }
}

/// True unless `owner` is known to be gone: a process of this host that no longer exists.
pub fn is_alive(owner: &LockOwner) -> bool {
    if owner.host != host_name() {
        return true; // cannot tell for another host: assume it runs
    }
    let proc_root = Path::new("/proc");
    if !proc_root.join("self").exists() {
        return true;
    }
    proc_root.join(owner.pid.to_string()).exists()
}

/// Creates `path` holding `body`, failing with `AlreadyExists` if it exists. The body is
/// written to a file of this process first and hard-linked into place, so no other run ever
/// sees the lock empty (and takes it over as stale). Not synced to disk: a lock only guards
/// running processes, and one left unreadable by a machine crash is stale anyway. Where hard
/// links are not supported, the file is created with `create_new` and then written.
fn create_with(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map_or("lock".into(), |n| n.to_string_lossy());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    if let Err(e) = fs_err::write(&tmp, body) {
        // A full disk must not leave an empty temporary file behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::Unsupported | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            let mut file = fs_err::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)?;
            file.write_all(body)
        }
        // fs_err names the path in its errors and keeps the error kind.
        linked => linked.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("failed to create `{}`: {e}", path.display()),
            )
        }),
    }
}

/// Removes the temporary owner files (`.lock.json.<pid>.tmp`) that runs of this host killed
/// between writing and linking them left in `dir`. Another host's, or a live run's, stay.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('.') && name.ends_with(".tmp")) {
            continue;
        }
        let owner: Option<LockOwner> = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok());
        let stale = match owner {
            Some(owner) => owner.host == host_name() && !is_alive(&owner),
            // Empty or unreadable: named by its pid, which must not be running.
            None => name
                .rsplit('.')
                .nth(1)
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()),
        };
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl RunLock {
    /// Takes the lock file `path` of output directory `out`.
    fn acquire(out: &Path, path: &Path, started_at: u64) -> Result<Self, LockError> {
        let dir = path.parent().expect("a lock file has a parent");
        fs_err::create_dir_all(dir).map_err(OutputError::from)?;
        remove_stale_temporaries(dir);
        let path = path.to_path_buf();
        let me = current_owner(started_at);
        let body = serde_json::to_vec(&me).expect("lock owner serialises");
        for _ in 0..2 {
            match create_with(&path, &body) {
                Ok(()) => {
                    return Ok(Self {
                        path,
                        released: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner: Option<LockOwner> = fs_err::read_to_string(&path)
                        .ok()
                        .and_then(|s| serde_json::from_str(&s).ok());
                    match owner {
                        Some(owner) if is_alive(&owner) => {
                            return Err(LockError::Held {
                                out: out.into(),
                                path,
                                owner,
                            });
                        }
                        stale => {
                            tracing::warn!(lock = %path.display(), owner = ?stale, "taking over a stale lock left by a run that is gone");
                            fs_err::remove_file(&path).map_err(OutputError::from)?;
                        }
                    }
                }
                Err(e) => return Err(OutputError::from(e).into()),
            }
        }
        Err(OutputError::from(std::io::Error::other(format!(
            "could not take `{}`: another run took it first",
            path.display()
        )))
        .into())
    }

    /// Removes the lock file.
    pub fn release(mut self) -> Result<(), OutputError> {
        self.released = true;
        fs_err::remove_file(&self.path)?;
        Ok(())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if !self.released {
            let _ = fs_err::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: &str) -> PartitionKey {
        PartitionKey(vec![("dt".into(), v.into())])
    }

    #[test]
    fn a_lock_file_appears_with_its_body_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock.json");
        create_with(&path, b"first").unwrap();
        let err = create_with(&path, b"second").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        // No temporary file is left behind, whether the link succeeded or not.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("lock.json")]);
    }

    #[test]
    fn temporaries_of_killed_runs_are_swept_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let lock = lock_path(dir.path(), &key("a"));
        let lock_dir = lock.parent().unwrap();
        std::fs::create_dir_all(lock_dir).unwrap();
        let dead = LockOwner {
            pid: u32::MAX - 3,
            host: host_name(),
            started_at: 1,
        };
        let elsewhere = LockOwner {
            host: "another-host".into(),
            ..dead.clone()
        };
        let write = |name: &str, body: &[u8]| std::fs::write(lock_dir.join(name), body).unwrap();
        write(
            ".lock.json.4294967292.tmp",
            &serde_json::to_vec(&dead).unwrap(),
        );
        write(".lock.json.4294967291.tmp", b"");
        write(
            ".lock.json.17.tmp",
            &serde_json::to_vec(&elsewhere).unwrap(),
        );
        RunLocks::acquire(dir.path(), &[key("a")], 1)
            .unwrap()
            .release()
            .unwrap();
        let mut left: Vec<String> = std::fs::read_dir(lock_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec![".lock.json.17.tmp".to_owned()]);
    }

    #[test]
    fn overlapping_runs_are_refused_and_disjoint_ones_proceed() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLocks::acquire(dir.path(), &[key("a"), key("b")], 1).unwrap();
        let err = RunLocks::acquire(dir.path(), &[key("c"), key("b")], 2).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(err.to_string().contains(&std::process::id().to_string()));
        // In sorted order `b` comes before `c`, so the refused run took nothing; `c` is free.
        let disjoint = RunLocks::acquire(dir.path(), &[key("c")], 3).unwrap();
        first.release().unwrap();
        disjoint.release().unwrap();
        RunLocks::acquire(dir.path(), &[key("a"), key("b"), key("c")], 4)
            .unwrap()
            .release()
            .unwrap();
    }

    #[test]
    fn a_refused_run_releases_the_locks_it_took() {
        let dir = tempfile::tempdir().unwrap();
        let held = RunLocks::acquire(dir.path(), &[key("z")], 1).unwrap();
        assert!(RunLocks::acquire(dir.path(), &[key("a"), key("z")], 2).is_err());
        assert!(!lock_path(dir.path(), &key("a")).exists());
        held.release().unwrap();
    }

    #[test]
    fn a_lock_of_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let dead = LockOwner {
            pid: u32::MAX - 7,
            host: host_name(),
            started_at: 0,
        };
        let path = lock_path(dir.path(), &key("a"));
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, serde_json::to_vec(&dead).unwrap()).unwrap();
        let locks = RunLocks::acquire(dir.path(), &[key("a")], 1).unwrap();
        let owner: LockOwner =
            serde_json::from_str(&fs_err::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(owner.pid, std::process::id());
        locks.release().unwrap();
        assert!(!path.exists());
    }
}
