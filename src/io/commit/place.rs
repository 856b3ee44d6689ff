//! Putting a staged partition in place on local disk (a swap, or a rename aside and in), and
//! the file hashes the journal checks.

use std::path::Path;

use crate::io::store;
use crate::io::{OutputError, sha256_hex};

/// Removes the directory `dir`, local or remote, with everything under it.
pub(super) fn remove_dir(dir: &Path) -> Result<(), store::StoreError> {
    if store::is_remote(dir) {
        return store::remove_all(dir);
    }
    match fs_err::remove_dir_all(dir) {
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
pub(super) fn sha256_of(path: &Path) -> Result<Option<String>, OutputError> {
    match fs_err::read(path) {
        Ok(bytes) => Ok(Some(sha256_hex(&bytes))),
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
pub(super) fn place(staged: &Path, target: &Path, aside: &Path) -> Result<(), OutputError> {
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
pub(super) fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
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
