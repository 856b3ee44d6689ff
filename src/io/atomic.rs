//! Small files written whole and atomically: a manifest, a commit record, a lock, `CURRENT`.

use std::path::Path;

use super::{OutputError, store};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then a rename
/// (on an object store, one put).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    if store::is_remote(path) {
        store::put(path, bytes::Bytes::copy_from_slice(bytes))?;
        return Ok(());
    }
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
        let _ = fs_err::remove_file(&tmp);
    }
    Ok(written?)
}
