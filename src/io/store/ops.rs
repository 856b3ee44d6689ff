//! The operations the job needs on storage, each blocking on its request: list, read, put,
//! put-if (create-if-absent, compare-and-swap), copy and remove.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::{
    GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, PutResult,
    UpdateVersion,
};

use super::error::{StoreError, local_error};
use super::location::{Remote, remote};
use super::{CONCURRENCY, block_on};

/// An object's identity as a store lists it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The object's URL.
    pub url: String,
    /// The key relative to the listed prefix, `/`-separated.
    pub relative: String,
    pub size: u64,
    /// Last modification, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    pub e_tag: Option<String>,
}

/// Every object under the remote directory `dir`, sorted by key.
pub fn list(dir: &Remote) -> Result<Vec<Listed>, StoreError> {
    let prefix = (!dir.key.as_ref().is_empty()).then_some(&dir.key);
    let metas: Vec<object_store::ObjectMeta> = block_on(dir.store.list(prefix).try_collect())
        .map_err(|e| StoreError::new("list", &dir.url, e))?;
    let base = dir.key.as_ref();
    let mut listed: Vec<Listed> = metas
        .into_iter()
        .filter_map(|m| {
            let key = m.location.as_ref();
            let relative = if base.is_empty() {
                key
            } else {
                key.strip_prefix(base)?.strip_prefix('/')?
            };
            Some(Listed {
                url: dir.url_of(&m.location),
                relative: relative.to_owned(),
                size: m.size,
                mtime_ns: m.last_modified.timestamp_nanos_opt().unwrap_or(0) as i128,
                e_tag: m.e_tag,
            })
        })
        .collect();
    listed.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(listed)
}

/// The object at `path` and its version, or `None` when there is none.
pub fn get_versioned(path: &Path) -> Result<Option<(Vec<u8>, UpdateVersion)>, StoreError> {
    let r = remote(path)?.expect("get_versioned takes a remote path");
    let got = block_on(async {
        let result = r.store.get(&r.key).await?;
        let version = UpdateVersion {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        Ok::<_, object_store::Error>((result.bytes().await?.to_vec(), version))
    });
    match got {
        Ok(got) => Ok(Some(got)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(StoreError::new("read", &r.url, e)),
    }
}

/// The bytes at `path`, or `None` when nothing is there.
#[allow(clippy::disallowed_methods)] // `local_error` names the path; fs_err would name it twice
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match remote(path)? {
        None => match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(local_error("read", path, e)),
        },
        Some(_) => Ok(get_versioned(path)?.map(|(bytes, _)| bytes)),
    }
}

/// The size and modification time (ns since the epoch) of the remote object `path`, or `None`
/// when there is none.
pub fn get_size(path: &Path) -> Result<Option<(u64, i128)>, StoreError> {
    let r = remote(path)?.expect("get_size takes a remote path");
    match block_on(r.store.head(&r.key)) {
        Ok(m) => Ok(Some((
            m.size,
            m.last_modified.timestamp_nanos_opt().unwrap_or(0) as i128,
        ))),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(StoreError::new("look up", &r.url, e)),
    }
}

/// True when an object or a file exists at `path`.
pub fn exists(path: &Path) -> Result<bool, StoreError> {
    match remote(path)? {
        None => Ok(path.exists()),
        Some(r) => match block_on(r.store.head(&r.key)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(StoreError::new("look up", &r.url, e)),
        },
    }
}

/// Writes `bytes` at the remote `path` in one atomic put: readers see the old object or the
/// new one. Above 16 MiB the object is sent as a multipart upload, which is also atomic: it
/// becomes visible only when completed, and a crash leaves an uncompleted upload that readers
/// never see (a bucket lifecycle rule aborts those).
///
/// The put is end-to-end checked. S3 gets the SHA-256 of every body (`x-amz-checksum-sha256`)
/// and rejects a body that does not match it. Whatever the store, the object is then read back
/// and its SHA-256 compared with the bytes sent; a mismatch (a body corrupted on its way, or
/// a store that does not check checksums) is put again, up to [`PUT_ATTEMPTS`] times, and then
/// fails as a retryable store error. The read-back asks for the version this put made (its
/// ETag): an object that another writer has replaced since (a run's shared `manifest.json`,
/// last writer wins) is not ours to check. Returns the SHA-256 in hex of the bytes sent.
pub fn put(path: &Path, bytes: Bytes) -> Result<String, StoreError> {
    let r = remote(path)?.expect("put takes a remote path");
    let sent = crate::io::sha256_hex(&bytes);
    for attempt in 1..=PUT_ATTEMPTS {
        let written =
            put_once(&r, bytes.clone()).map_err(|e| StoreError::new("write", &r.url, e))?;
        let ours = GetOptions {
            if_match: written.e_tag,
            ..GetOptions::default()
        };
        let back = match block_on(async { r.store.get_opts(&r.key, ours).await?.bytes().await }) {
            Ok(back) => back,
            Err(
                object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
            ) => {
                tracing::debug!(
                    url = r.url,
                    "replaced or removed by another writer before the read-back"
                );
                return Ok(sent);
            }
            Err(e) => return Err(StoreError::new("read back", &r.url, e)),
        };
        let got = crate::io::sha256_hex(&back);
        if got == sent {
            return Ok(sent);
        }
        tracing::warn!(
            url = r.url,
            attempt,
            sent = %sent,
            stored = %got,
            "the stored object does not match the bytes sent; putting it again"
        );
    }
    Err(StoreError::corrupt(
        "write",
        &r.url,
        format!(
            "the stored object differs from the {} bytes sent (SHA-256 {sent}) after {PUT_ATTEMPTS} puts: the body is corrupted between here and the store",
            bytes.len()
        ),
    ))
}

/// How many times [`put`] sends an object whose stored copy does not match.
pub const PUT_ATTEMPTS: u32 = 3;

fn put_once(r: &Remote, bytes: Bytes) -> Result<PutResult, object_store::Error> {
    const MULTIPART_ABOVE: usize = 16 << 20;
    if bytes.len() <= MULTIPART_ABOVE {
        block_on(r.store.put(&r.key, PutPayload::from_bytes(bytes)))
    } else {
        const PART: usize = 8 << 20;
        block_on(async {
            let upload = r.store.put_multipart(&r.key).await?;
            let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART);
            writer.put(bytes);
            writer.finish().await
        })
    }
}

/// How a conditional put went.
#[derive(Debug)]
pub enum Conditional {
    /// Written; the new version, for the next compare-and-swap.
    Written(UpdateVersion),
    /// Not written: the object exists (create) or changed (update).
    Lost,
}

/// Puts `bytes` at the remote `path` only if no object is there (`If-None-Match: *`), or, with
/// `expected`, only if the object is still that version (`If-Match`).
pub fn put_if(
    path: &Path,
    bytes: Vec<u8>,
    expected: Option<UpdateVersion>,
) -> Result<Conditional, StoreError> {
    let r = remote(path)?.expect("put_if takes a remote path");
    let mode = match expected {
        None => PutMode::Create,
        Some(v) => PutMode::Update(v),
    };
    let options = PutOptions {
        mode,
        ..PutOptions::default()
    };
    match block_on(r.store.put_opts(&r.key, bytes.into(), options)) {
        Ok(result) => Ok(Conditional::Written(UpdateVersion {
            e_tag: result.e_tag,
            version: result.version,
        })),
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => Ok(Conditional::Lost),
        Err(e) => Err(StoreError::new("write", &r.url, e)),
    }
}

/// Copies each remote `(from, to)` pair, [`CONCURRENCY`] at a time.
pub fn copy_all(pairs: &[(PathBuf, PathBuf)]) -> Result<(), StoreError> {
    let mut resolved = Vec::with_capacity(pairs.len());
    for (from, to) in pairs {
        let (f, t) = (
            remote(from)?.expect("copy takes remote paths"),
            remote(to)?.expect("copy takes remote paths"),
        );
        resolved.push((f, t));
    }
    block_on(
        futures::stream::iter(resolved.iter().map(|(f, t)| async move {
            f.store
                .copy(&f.key, &t.key)
                .await
                .map_err(|e| StoreError::new("copy", &f.url, e))
        }))
        .buffer_unordered(CONCURRENCY)
        .try_for_each(|()| async { Ok(()) }),
    )
}

/// Removes each remote object of `paths`, [`CONCURRENCY`] at a time; a missing one is fine.
pub fn remove_many(paths: &[PathBuf]) -> Result<(), StoreError> {
    let mut resolved = Vec::with_capacity(paths.len());
    for path in paths {
        resolved.push(remote(path)?.expect("remove_many takes remote paths"));
    }
    block_on(
        futures::stream::iter(resolved.iter().map(|r| async move {
            match r.store.delete(&r.key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(StoreError::new("remove", &r.url, e)),
            }
        }))
        .buffer_unordered(CONCURRENCY)
        .try_for_each(|()| async { Ok(()) }),
    )
}

/// Removes the object or file at `path`; nothing there is not an error.
#[allow(clippy::disallowed_methods)] // `local_error` names the path; fs_err would name it twice
pub fn remove(path: &Path) -> Result<(), StoreError> {
    match remote(path)? {
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(local_error("remove", path, e))
            }
            _ => Ok(()),
        },
        Some(r) => match block_on(r.store.delete(&r.key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::new("remove", &r.url, e)),
        },
    }
}

/// Removes every object under the remote directory `dir`, concurrently.
pub fn remove_all(dir: &Path) -> Result<(), StoreError> {
    let r = remote(dir)?.expect("remove_all takes a remote path");
    let objects = list(&r)?;
    let keys: Vec<Key> = objects
        .iter()
        .filter_map(|o| Key::parse(format!("{}/{}", r.key, o.relative)).ok())
        .collect();
    block_on(
        futures::stream::iter(keys.iter().map(|k| r.store.delete(k)))
            .buffer_unordered(CONCURRENCY)
            .try_for_each(|_| async { Ok(()) }),
    )
    .or_else(|e| match e {
        object_store::Error::NotFound { .. } => Ok(()),
        e => Err(StoreError::new("remove", &r.url, e)),
    })
}

/// The immediate sub-directories of directory `dir` (their names; none when it is absent).
#[allow(clippy::disallowed_methods)] // `local_error` names the path; fs_err would name it twice
pub fn list_dirs(dir: &Path) -> Result<Vec<String>, StoreError> {
    let Some(r) = remote(dir)? else {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(local_error("list", dir, e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        return Ok(names);
    };
    let listed = block_on(r.store.list_with_delimiter(Some(&r.key)))
        .map_err(|e| StoreError::new("list", &r.url, e))?;
    let mut names: Vec<String> = listed
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}
