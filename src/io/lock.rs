//! One run at a time per output path: `OUT/_textcluster.lock`.
//!
//! The lock file is created with `create_new`, so of two runs starting together exactly one
//! gets it. It holds the owner's pid, host and start time. A lock whose owner is a process on
//! this host that no longer exists (a run killed with SIGKILL) is stale: it is taken over with
//! a warning. Liveness is checked through `/proc/<pid>`, so on a host without `/proc` a lock is
//! only taken over by hand (delete the file).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::OutputError;

/// Name of the lock file inside the output directory.
pub const LOCK_FILE: &str = "_textcluster.lock";

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

fn host_name() -> String {
    fs_err::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

fn is_alive(owner: &LockOwner) -> bool {
    if owner.host != host_name() {
        return true; // cannot tell for another host: assume it runs
    }
    let proc_root = Path::new("/proc");
    if !proc_root.join("self").exists() {
        return true;
    }
    proc_root.join(owner.pid.to_string()).exists()
}

impl RunLock {
    /// Takes the lock of output directory `out` (created if missing).
    pub fn acquire(out: &Path, started_at: u64) -> Result<Self, LockError> {
        fs_err::create_dir_all(out).map_err(OutputError::from)?;
        let path = out.join(LOCK_FILE);
        let me = LockOwner {
            pid: std::process::id(),
            host: host_name(),
            started_at,
        };
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let body = serde_json::to_vec(&me).expect("lock owner serialises");
                    file.write_all(&body)
                        .and_then(|()| file.sync_all())
                        .map_err(|source| {
                            OutputError::from(std::io::Error::new(
                                source.kind(),
                                format!("writing `{}`: {source}", path.display()),
                            ))
                        })?;
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
                Err(e) => {
                    return Err(OutputError::from(std::io::Error::new(
                        e.kind(),
                        format!("creating `{}`: {e}", path.display()),
                    ))
                    .into());
                }
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
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_while_the_first_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path(), 1).unwrap();
        let err = RunLock::acquire(dir.path(), 2).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(err.to_string().contains(&std::process::id().to_string()));
        first.release().unwrap();
        RunLock::acquire(dir.path(), 3).unwrap().release().unwrap();
    }

    #[test]
    fn a_lock_of_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let dead = LockOwner {
            pid: u32::MAX - 7,
            host: host_name(),
            started_at: 0,
        };
        fs_err::write(
            dir.path().join(LOCK_FILE),
            serde_json::to_vec(&dead).unwrap(),
        )
        .unwrap();
        let lock = RunLock::acquire(dir.path(), 1).unwrap();
        let owner: LockOwner =
            serde_json::from_str(&fs_err::read_to_string(dir.path().join(LOCK_FILE)).unwrap())
                .unwrap();
        assert_eq!(owner.pid, std::process::id());
        lock.release().unwrap();
    }
}
