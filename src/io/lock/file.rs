//! Lock files on local disk: created whole under a guard, taken over only when unchanged, and
//! swept when a killed run left temporaries or empty directories.

use std::path::Path;

use super::LOCKS_DIR;
use super::owner::{LockOwner, host_name, is_alive};

/// Creates the local file `path` holding `body`, failing with `AlreadyExists` if it exists.
/// The body is written to a file of this process first and hard-linked into place, so no
/// other run ever sees the lock empty (and takes it over as stale). Not synced to disk: a lock
/// only guards running processes. Where hard links are not supported, the file is created with
/// `create_new` and then written.
pub(super) fn create_with(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map_or("lock".into(), |n| n.to_string_lossy());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    if let Err(e) = fs_err::write(&tmp, body) {
        // A full disk must not leave an empty temporary file behind.
        let _ = fs_err::remove_file(&tmp);
        return Err(e);
    }
    let linked = fs_err::hard_link(&tmp, path);
    let _ = fs_err::remove_file(&tmp);
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
pub(super) fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('.') && name.ends_with(".tmp")) {
            continue;
        }
        let owner: Option<LockOwner> = fs_err::read_to_string(entry.path())
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
            let _ = fs_err::remove_file(entry.path());
        }
    }
}

/// Runs `f` holding an exclusive `flock` on the directory of the local lock file `path`.
/// A renewal and a takeover each read the file, compare it and replace it: under the guard
/// they cannot interleave, so a takeover never lands between a renewal's read and its write
/// (which would leave two runs each believing it holds the lock). `Ok(None)` when the
/// directory is gone (the lock was released).
pub(super) fn guarded<T>(
    path: &Path,
    f: impl FnOnce() -> std::io::Result<T>,
) -> std::io::Result<Option<T>> {
    let dir = path.parent().expect("a lock file has a parent");
    let guard = match fs_err::File::open(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        guard => guard?,
    };
    guard.file().lock()?;
    let result = f();
    drop(guard); // closing the descriptor releases the flock
    result.map(Some)
}

/// Removes the directories of a released local lock `path` that are left empty, up to and
/// including `_locks`, so a run that wrote nothing leaves nothing. A directory another run
/// has just made, or filled, stays (`remove_dir` fails on it).
pub(super) fn remove_empty_lock_dirs(path: &Path) {
    if !path
        .ancestors()
        .any(|a| a.file_name().is_some_and(|n| n == LOCKS_DIR))
    {
        return;
    }
    let mut dir = path.parent();
    while let Some(d) = dir {
        if fs_err::remove_dir(d).is_err() || d.file_name().is_some_and(|n| n == LOCKS_DIR) {
            break;
        }
        dir = d.parent();
    }
}

/// Removes the local lock `path` if it still holds exactly `stale`: the file is renamed to a
/// name of this process, and put back if it turns out to be another run's fresh lock. Returns
/// whether the stale lock was removed.
pub(super) fn take_over_local(path: &Path, stale: &[u8]) -> std::io::Result<bool> {
    let aside = path.with_file_name(format!(".lock.json.{}.stale", std::process::id()));
    match fs_err::rename(path, &aside) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        r => r?,
    }
    let moved = fs_err::read(&aside).unwrap_or_default();
    if moved != stale {
        // Another run replaced it meanwhile: give its lock back (unless a third made one).
        let _ = fs_err::hard_link(&aside, path);
        let _ = fs_err::remove_file(&aside);
        return Ok(false);
    }
    fs_err::remove_file(&aside)?;
    Ok(true)
}
