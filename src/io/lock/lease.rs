//! One partition's lock: taken by a create-if-absent (or a takeover of an expired lease by
//! compare-and-swap), renewed, and released.

use std::path::{Path, PathBuf};

use object_store::UpdateVersion;

use super::file::{
    create_with, guarded, remove_empty_lock_dirs, remove_stale_temporaries, take_over_local,
};
use super::owner::{LockOwner, current_owner, is_alive, now_secs};
use super::{LEASE, LockError};
use crate::io::OutputError;
use crate::io::store::{self, Conditional};

/// A held lock.
#[derive(Debug)]
pub(super) struct RunLock {
    pub(super) path: PathBuf,
    /// What this run last wrote there.
    pub(super) body: Vec<u8>,
    /// The object's version after that write (object stores).
    pub(super) version: Option<UpdateVersion>,
}

impl RunLock {
    /// Takes the lock file `path` of output directory `out`.
    pub(super) fn acquire(out: &Path, path: &Path, started_at: u64) -> Result<Self, LockError> {
        let remote = store::is_remote(path);
        let dir = path.parent().expect("a lock file has a parent");
        if !remote {
            fs_err::create_dir_all(dir).map_err(OutputError::from)?;
            remove_stale_temporaries(dir);
        }
        let path = path.to_path_buf();
        let body = serde_json::to_vec(&current_owner(started_at)).expect("lock owner serialises");
        for _ in 0..3 {
            // Create it; on failure read who holds it, and the version read.
            let existing: Option<(Vec<u8>, Option<UpdateVersion>)> = if remote {
                match store::put_if(&path, body.clone(), None).map_err(OutputError::from)? {
                    Conditional::Written(version) => {
                        return Ok(Self {
                            path,
                            body,
                            version: Some(version),
                        });
                    }
                    Conditional::Lost => store::get_versioned(&path)
                        .map_err(OutputError::from)?
                        .map(|(b, v)| (b, Some(v))),
                }
            } else {
                // Another run's release may have removed the (empty) directory meanwhile.
                fs_err::create_dir_all(dir).map_err(OutputError::from)?;
                match create_with(&path, &body) {
                    Ok(()) => {
                        return Ok(Self {
                            path,
                            body,
                            version: None,
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        fs_err::read(&path).ok().map(|b| (b, None))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(OutputError::from(e).into()),
                }
            };
            let Some((held, version)) = existing else {
                continue; // released meanwhile: try again
            };
            let owner: Option<LockOwner> = serde_json::from_slice(&held).ok();
            if let Some(owner) = owner.as_ref().filter(|o| is_alive(o)) {
                return Err(LockError::Held {
                    out: out.into(),
                    path,
                    owner: Box::new(owner.clone()),
                });
            }
            let lease_until = owner
                .as_ref()
                .and_then(|o| o.expires_at)
                .map_or("-".to_owned(), super::owner::rfc3339);
            tracing::warn!(
                lock = %path.display(),
                run = owner.as_ref().map(LockOwner::run_id),
                lease_until,
                "taking over a stale lock: its owner is gone or its lease expired"
            );
            if remote {
                match store::put_if(&path, body.clone(), version).map_err(OutputError::from)? {
                    Conditional::Written(version) => {
                        return Ok(Self {
                            path,
                            body,
                            version: Some(version),
                        });
                    }
                    Conditional::Lost => continue, // another run took it over first
                }
            } else {
                guarded(&path, || take_over_local(&path, &held)).map_err(OutputError::from)?;
            }
        }
        Err(OutputError::from(std::io::Error::other(format!(
            "could not take `{}`: other runs kept taking it first",
            path.display()
        )))
        .into())
    }

    /// Extends the lease. `Ok(false)` when the lock is no longer this run's.
    pub(super) fn renew(&mut self, started_at: u64) -> Result<bool, OutputError> {
        let mut owner: LockOwner = serde_json::from_slice(&self.body).expect("our own body");
        owner.expires_at = Some(now_secs() + LEASE.as_secs());
        owner.started_at = started_at;
        let body = serde_json::to_vec(&owner).expect("lock owner serialises");
        if let Some(version) = self.version.clone() {
            return match store::put_if(&self.path, body.clone(), Some(version))? {
                Conditional::Written(v) => {
                    self.version = Some(v);
                    self.body = body;
                    Ok(true)
                }
                Conditional::Lost => Ok(false),
            };
        }
        let renewed = guarded(&self.path, || {
            if fs_err::read(&self.path).ok().as_deref() != Some(&self.body[..]) {
                return Ok(false);
            }
            crate::io::atomic::write_atomic(&self.path, &body).map_err(std::io::Error::other)?;
            Ok(true)
        })?;
        if renewed == Some(true) {
            self.body = body;
        }
        Ok(renewed == Some(true))
    }

    /// Removes the lock if it is still this run's.
    pub(super) fn release(self) -> Result<(), OutputError> {
        let current = if self.version.is_some() {
            store::get_versioned(&self.path)?.map(|(b, _)| b)
        } else {
            fs_err::read(&self.path).ok()
        };
        if current.as_deref() == Some(&self.body[..]) {
            store::remove(&self.path)?;
            if self.version.is_none() {
                remove_empty_lock_dirs(&self.path);
            }
        }
        Ok(())
    }
}
