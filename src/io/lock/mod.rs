//! One run at a time per output partition: `OUT/_locks/<partition>/lock.json`, held as a lease.
//!
//! A run locks every partition it will write (in `global` scope also `__all__`), in sorted
//! order, all or nothing: two runs on the same output stop each other at once, while runs on
//! different partitions (an Airflow backfill fanned out one task per partition) proceed side
//! by side. A lock file is created only if absent: on local disk by hard-linking a complete
//! file into place, on an object store by a conditional put (`If-None-Match: *`), so of two
//! runs starting together exactly one gets it. It holds the owner (pid, host, run id), when it
//! was acquired, and when its lease expires. The run renews the lease every
//! [`RENEW_EVERY`] for another [`LEASE`].
//!
//! A lock is stale when its lease has expired (more than [`MAX_CLOCK_SKEW`] ago, so hosts'
//! clocks may differ by that much), or, as a fast path, when its owner is a process of this
//! host that no longer exists. Another run takes a stale lock over with a warning, race-free:
//! on an object store by a conditional put on the version it read (`If-Match`); on local disk
//! by renaming the stale file aside and checking that what it moved is what it read. Of two
//! runs taking over one stale lock, one wins and the other finds a live lock. A run whose
//! renewal finds its lock taken over has lost it, and commits nothing more.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod file;
mod lease;
mod owner;

use lease::RunLock;

pub use owner::{LockOwner, current_owner, host_name, is_alive};

use super::OutputError;
use super::dataset::PartitionKey;
use super::store::{self};

/// Directory under the output path that holds the partition locks.
pub const LOCKS_DIR: &str = "_locks";

/// How long a lease lasts from its last renewal.
pub const LEASE: Duration = Duration::from_secs(120);

/// How often a running job renews its leases.
pub const RENEW_EVERY: Duration = Duration::from_secs(30);

/// How far apart two hosts' clocks may be: a lease counts as expired only this long after its
/// `expires_at`.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// The lock file of partition `key` under output `out`.
pub fn lock_path(out: &Path, key: &PartitionKey) -> PathBuf {
    out.join(LOCKS_DIR).join(key.dir()).join("lock.json")
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "output `{}` is locked by a running job (pid {}, host `{}`, run {}, started {}, lease until {})\nhint: wait for it to finish; a lock left by a job that is gone expires {}s after its last renewal",
        out.display(), owner.pid, owner.host, owner.run_id(),
        owner::rfc3339(owner.started_at),
        owner.expires_at.map_or("-".to_owned(), owner::rfc3339),
        LEASE.as_secs() + MAX_CLOCK_SKEW.as_secs()
    )]
    Held {
        out: PathBuf,
        path: PathBuf,
        owner: Box<LockOwner>,
    },
    #[error(
        "lost the lock `{}`: its lease expired and another run took it over; nothing more is committed",
        path.display()
    )]
    Lost { path: PathBuf },
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// The locks of every partition a run writes, renewed on a timer until released.
#[derive(Debug)]
pub struct RunLocks {
    /// The local output directory, when taking the locks created it: removed again on
    /// release if it is still empty, so a run that wrote nothing leaves nothing.
    created_out: Option<PathBuf>,
    locks: Arc<Mutex<Vec<RunLock>>>,
    lost: Arc<AtomicBool>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl RunLocks {
    /// Locks partitions `keys` of output `out`, all or nothing.
    pub fn acquire(out: &Path, keys: &[PartitionKey], started_at: u64) -> Result<Self, LockError> {
        Self::acquire_renewing(out, keys, started_at, RENEW_EVERY)
    }

    /// [`RunLocks::acquire`], renewing every `renew_every`.
    fn acquire_renewing(
        out: &Path,
        keys: &[PartitionKey],
        started_at: u64,
        renew_every: Duration,
    ) -> Result<Self, LockError> {
        let created_out = (!store::is_remote(out) && !out.exists()).then(|| out.to_path_buf());
        let mut sorted: Vec<&PartitionKey> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut held = Vec::with_capacity(sorted.len());
        for key in sorted {
            match RunLock::acquire(out, &lock_path(out, key), started_at) {
                Ok(lock) => held.push(lock),
                Err(e) => {
                    for lock in held {
                        let _ = lock.release();
                    }
                    if let Some(out) = &created_out {
                        let _ = fs_err::remove_dir(out);
                    }
                    return Err(e);
                }
            }
        }
        let locks = Arc::new(Mutex::new(held));
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let renewer = {
            let (locks, lost) = (locks.clone(), lost.clone());
            std::thread::Builder::new()
                .name("textcluster-lease".into())
                .spawn(move || {
                    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(renew_every)
                    {
                        for lock in locks.lock().expect("not poisoned").iter_mut() {
                            match lock.renew(started_at) {
                                Ok(true) => {}
                                Ok(false) => {
                                    tracing::error!(lock = %lock.path.display(), "lost a lock: another run took it over");
                                    lost.store(true, Ordering::SeqCst);
                                }
                                Err(e) => {
                                    tracing::warn!(lock = %lock.path.display(), error = %e, "cannot renew a lease; retrying at the next renewal")
                                }
                            }
                        }
                    }
                })
                .map_err(OutputError::from)?
        };
        Ok(Self {
            created_out,
            locks,
            lost,
            stop: Some(stop),
            renewer: Some(renewer),
        })
    }

    /// An error when a renewal found one of the locks taken over.
    pub fn check(&self) -> Result<(), LockError> {
        if self.lost.load(Ordering::SeqCst) {
            let locks = self.locks.lock().expect("not poisoned");
            let path = locks.first().map(|l| l.path.clone()).unwrap_or_default();
            return Err(LockError::Lost { path });
        }
        Ok(())
    }

    fn stop_renewing(&mut self) {
        drop(self.stop.take());
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
    }

    /// Removes every lock file this run still holds.
    pub fn release(mut self) -> Result<(), OutputError> {
        self.stop_renewing();
        let locks = std::mem::take(&mut *self.locks.lock().expect("not poisoned"));
        for lock in locks {
            lock.release()?;
        }
        self.remove_created_out();
        Ok(())
    }

    fn remove_created_out(&mut self) {
        if let Some(out) = self.created_out.take() {
            // Fails, and keeps it, unless it is empty.
            let _ = fs_err::remove_dir(out);
        }
    }
}

impl Drop for RunLocks {
    fn drop(&mut self) {
        self.stop_renewing();
        for lock in std::mem::take(&mut *self.locks.lock().expect("not poisoned")) {
            let _ = lock.release();
        }
        self.remove_created_out();
    }
}

/// The ids of the runs that hold a live lock under output `out`.
pub fn live_runs(out: &Path) -> Result<HashSet<String>, OutputError> {
    let dir = out.join(LOCKS_DIR);
    let paths: Vec<PathBuf> = if let Some(remote) = store::remote(&dir)? {
        store::list(&remote)?
            .into_iter()
            .filter(|o| o.relative.ends_with("lock.json"))
            .map(|o| PathBuf::from(o.url))
            .collect()
    } else if dir.is_dir() {
        super::dataset::walk(&dir)
            .map_err(|e| OutputError::from(std::io::Error::other(e.to_string())))?
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "lock.json"))
            .collect()
    } else {
        Vec::new()
    };
    let bodies: Vec<Option<Vec<u8>>> = if store::is_remote(out) {
        let remotes: Vec<store::Remote> = paths
            .iter()
            .filter_map(|p| store::remote(p).ok().flatten())
            .collect();
        store::block_on(async {
            use futures::StreamExt;
            use object_store::ObjectStoreExt;
            futures::stream::iter(remotes.iter().map(|r| async move {
                match r.store.get(&r.key).await {
                    Ok(got) => got.bytes().await.ok().map(|b| b.to_vec()),
                    Err(_) => None,
                }
            }))
            .buffered(store::CONCURRENCY)
            .collect()
            .await
        })
    } else {
        paths.iter().map(|p| fs_err::read(p).ok()).collect()
    };
    Ok(bodies
        .into_iter()
        .flatten()
        .filter_map(|b| serde_json::from_slice::<LockOwner>(&b).ok())
        .filter(is_alive)
        .map(|o| o.run_id())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::file::{create_with, take_over_local};
    use super::owner::now_secs;
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
            run_id: String::new(),
            acquired_at: 1,
            expires_at: None,
            boot_id: None,
            process_start: None,
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
    fn another_hosts_lock_is_respected_until_its_lease_expires() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), &key("a"));
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        let elsewhere = |expires_at| LockOwner {
            pid: 1,
            host: "pod-that-was-killed".into(),
            started_at: 5,
            run_id: "5-pod-that-was-killed-1".into(),
            acquired_at: 5,
            expires_at: Some(expires_at),
            boot_id: None,
            process_start: None,
        };
        let now = now_secs();
        fs_err::write(&path, serde_json::to_vec(&elsewhere(now + 60)).unwrap()).unwrap();
        let err = RunLocks::acquire(dir.path(), &[key("a")], 1).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(
            live_runs(dir.path())
                .unwrap()
                .contains("5-pod-that-was-killed-1")
        );
        let expired = now - LEASE.as_secs() - MAX_CLOCK_SKEW.as_secs() - 1;
        fs_err::write(&path, serde_json::to_vec(&elsewhere(expired)).unwrap()).unwrap();
        assert!(live_runs(dir.path()).unwrap().is_empty());
        let locks = RunLocks::acquire(dir.path(), &[key("a")], 1).unwrap();
        let owner: LockOwner = serde_json::from_slice(&fs_err::read(&path).unwrap()).unwrap();
        assert_eq!(owner.pid, std::process::id());
        assert!(owner.expires_at.unwrap() >= now + LEASE.as_secs());
        locks.release().unwrap();
        assert!(!path.exists());
        // Its empty directories go with it: a run that wrote nothing leaves nothing.
        assert!(!dir.path().join(LOCKS_DIR).exists());
    }

    #[test]
    fn a_renewal_waits_for_a_takeover_that_holds_the_guard_and_then_finds_the_lock_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), &key("a"));
        let mut lock = RunLock::acquire(dir.path(), &path, 1).unwrap();
        // A takeover holds the guard between reading the lock and replacing it.
        let guard = std::fs::File::open(path.parent().unwrap()).unwrap();
        guard.lock().unwrap();
        let renewal = std::thread::spawn(move || {
            let renewed = lock.renew(1);
            (lock, renewed)
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !renewal.is_finished(),
            "the renewal ran while a takeover held the guard"
        );
        fs_err::write(&path, b"the lock of the run that took over").unwrap();
        drop(guard);
        let (_lock, renewed) = renewal.join().unwrap();
        assert!(!renewed.unwrap(), "a renewal after a takeover must lose");
        assert_eq!(
            fs_err::read(&path).unwrap(),
            b"the lock of the run that took over"
        );
    }

    #[test]
    fn leases_are_renewed_and_a_lock_taken_over_meanwhile_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), &key("a"));
        let locks =
            RunLocks::acquire_renewing(dir.path(), &[key("a")], 1, Duration::from_millis(20))
                .unwrap();
        let before: LockOwner = serde_json::from_slice(&fs_err::read(&path).unwrap()).unwrap();
        // Renewals rewrite the lock (same owner, a lease from now) and keep it held. Leases
        // count whole seconds, so a renewal shows after the next second at the earliest; each
        // one syncs the file, which a busy disk may hold up for seconds, hence the polling.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let renewed = loop {
            std::thread::sleep(Duration::from_millis(100));
            let now: LockOwner = serde_json::from_slice(&fs_err::read(&path).unwrap()).unwrap();
            if now.expires_at > before.expires_at {
                break now;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no renewal in 30 s: {now:?} vs {before:?}"
            );
        };
        assert_eq!(renewed.run_id, before.run_id);
        assert!(locks.check().is_ok());
        // Another run takes the lock over (as after an expired lease): the next renewal sees
        // it, and the run may commit nothing more.
        let other = LockOwner {
            pid: 1,
            host: "elsewhere".into(),
            ..renewed
        };
        // On local disk a renewal in flight (read, compare, write) may still overwrite the
        // takeover once; the takeover is then repeated, as a second taker would find it.
        let other = serde_json::to_vec(&other).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while locks.check().is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "the takeover was never noticed"
            );
            if fs_err::read(&path).unwrap() != other {
                fs_err::write(&path, &other).unwrap();
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        assert!(matches!(locks.check(), Err(LockError::Lost { .. })));
        locks.release().unwrap();
        assert!(path.exists(), "a lost lock is not ours to remove");
    }

    #[test]
    fn a_local_takeover_never_removes_a_fresh_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock.json");
        fs_err::write(&path, b"fresh").unwrap();
        assert!(!take_over_local(&path, b"stale").unwrap());
        assert_eq!(fs_err::read(&path).unwrap(), b"fresh");
        assert!(take_over_local(&path, b"fresh").unwrap());
        assert!(!path.exists());
        assert!(!take_over_local(&path, b"fresh").unwrap());
    }

    #[test]
    fn a_lock_of_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let dead = LockOwner {
            pid: u32::MAX - 7,
            host: host_name(),
            started_at: 0,
            run_id: String::new(),
            acquired_at: 0,
            expires_at: None,
            boot_id: None,
            process_start: None,
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
