//! Where a path lives: the local file system, or an object store behind arrow-rs's
//! `object_store` crate (`s3://`, `gs://`, `az://`, `abfss://`, ...).
//!
//! Paths stay [`Path`]s throughout the crate: a remote one is its URL (`s3://bucket/out`), and
//! `join` appends to it as to a directory. Every operation the job needs on its output (read,
//! atomic write, create-if-absent, compare-and-swap, copy, list, delete) is a function here
//! that takes such a path and goes to the right place. Local paths use the file system
//! directly, because it offers what an object store does not: a directory swap in one step
//! (`renameat2`), symlinks to check, and process ids to test for liveness.
//!
//! The async runtime lives here and only here: each function blocks on its own request, so the
//! algorithms stay synchronous on rayon. Stores are built once per bucket from the standard
//! environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`) and the spec's `[storage]` options, with a
//! bounded number of retries with exponential backoff. Error messages never carry a secret:
//! every configured secret value is replaced by `***` in them.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

/// The object-store schemes a path may use, beside plain paths and `file://`.
pub const REMOTE_SCHEMES: &[&str] = &["s3", "s3a", "gs", "az", "azure", "abfs", "abfss"];

/// Requests in flight at once when many objects are read (footers, input files).
pub const CONCURRENCY: usize = 16;

/// Attempts after the first for a request that fails with a retryable error, and the time
/// all attempts may take together. A missing bucket or bad credentials is not retried.
const MAX_RETRIES: usize = 3;
const RETRY_TIMEOUT: Duration = Duration::from_secs(20);

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("textcluster-io")
        .enable_all()
        .build()
        .expect("the I/O runtime starts")
});

/// The `[storage]` options and the stores built so far, by `scheme://bucket`.
static OPTIONS: LazyLock<Mutex<BTreeMap<String, String>>> = LazyLock::new(Default::default);
static STORES: LazyLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> =
    LazyLock::new(Default::default);

/// Runs `future` to completion on the I/O runtime. Not to be called from inside it.
pub fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.block_on(future)
}

/// Sets the `[storage]` options (`aws_region`, `endpoint`, `allow_http`, ...) for every store
/// built from now on.
pub fn configure(options: &BTreeMap<String, String>) {
    *OPTIONS.lock().expect("not poisoned") = options.clone();
    STORES.lock().expect("not poisoned").clear();
}

/// What kind of failure a store reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    NotFound,
    AlreadyExists,
    /// A conditional write lost: the object changed since it was read.
    Precondition,
    /// A `[storage]` option or the URL itself is wrong: the user's to fix.
    Config,
    /// Anything else: network, permissions, throttling. A retry may help.
    Other,
}

/// A failed storage operation, naming the URL. The message has every secret replaced.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot {op} `{url}`: {message}")]
pub struct StoreError {
    pub op: &'static str,
    pub url: String,
    pub message: String,
    pub failure: Failure,
}

impl StoreError {
    fn new(op: &'static str, url: &str, error: object_store::Error) -> Self {
        use object_store::Error as E;
        let failure = match &error {
            E::NotFound { .. } => Failure::NotFound,
            E::AlreadyExists { .. } => Failure::AlreadyExists,
            E::Precondition { .. } => Failure::Precondition,
            E::UnknownConfigurationKey { .. } | E::InvalidPath { .. } => Failure::Config,
            _ => Failure::Other,
        };
        // object_store's messages include their sources already, and an S3 error's XML body:
        // keep the message up to the body, and the body's code and message.
        let mut message = error.to_string();
        let mut root: &dyn std::error::Error = &error;
        while let Some(source) = root.source() {
            root = source;
        }
        let root = root.to_string();
        if !message.contains(&root) {
            message = format!("{message}: {root}");
        }
        if let Some(xml) = message.find("<?xml").map(|i| message.split_off(i)) {
            let field = |tag: &str| {
                let open = format!("<{tag}>");
                let start = xml.find(&open)? + open.len();
                let end = xml[start..].find("</")? + start;
                Some(xml[start..end].to_owned())
            };
            let code = field("Code").unwrap_or_default();
            message = format!(
                "{}{code}: {}",
                message.trim_end_matches([' ', ':']).to_owned() + ": ",
                field("Message").unwrap_or_default()
            );
            if code == "NoSuchBucket" {
                message = format!("the bucket does not exist ({message})");
            }
        }
        Self {
            op,
            url: url.to_owned(),
            message: redact(&message),
            failure,
        }
    }

    /// True when the data or the spec is at fault, not the environment.
    pub fn is_user_error(&self) -> bool {
        self.failure == Failure::Config
    }
}

/// `text` with every secret this process knows of (from the environment and `[storage]`)
/// replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut text = text.to_owned();
    let secret_name = is_secret_option;
    let mut secrets: Vec<String> = std::env::vars()
        .filter(|(k, v)| secret_name(k) && v.len() >= 4)
        .map(|(_, v)| v)
        .collect();
    secrets.extend(
        OPTIONS
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(k, v)| secret_name(k) && v.len() >= 4)
            .map(|(_, v)| v.clone()),
    );
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        text = text.replace(&secret, "***");
    }
    text
}

/// True when the option `name` holds a secret, so the manifest shows it as `***`.
pub fn is_secret_option(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "access_key",
        "account_key",
        "sas",
        "credential",
        "key_id",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// The scheme of `path` when it is a URL (`s3` of `s3://b/x`), lowercased.
pub fn scheme(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let (scheme, _) = text.split_once("://")?;
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// True when `path` is an object-store URL.
pub fn is_remote(path: &Path) -> bool {
    scheme(path).is_some_and(|s| REMOTE_SCHEMES.contains(&s.as_str()))
}

/// An object in a store: the store, its key, and its URL for messages.
#[derive(Clone)]
pub struct Remote {
    pub store: Arc<dyn ObjectStore>,
    pub key: Key,
    pub url: String,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Remote {
    /// The URL of `key` in the same store as `self`.
    pub fn url_of(&self, key: &Key) -> String {
        let base = self.url.as_str();
        let authority_end = base
            .find("://")
            .map(|i| i + 3)
            .and_then(|start| base[start..].find('/').map(|j| start + j))
            .unwrap_or(base.len());
        format!("{}/{}", &base[..authority_end], key)
    }
}

/// The store and key of `path`, or `None` for a local path.
pub fn remote(path: &Path) -> Result<Option<Remote>, StoreError> {
    if !is_remote(path) {
        return Ok(None);
    }
    let url = path.to_str().expect("a remote path is UTF-8");
    let scheme = scheme(path).expect("a remote path has a scheme");
    let rest = &url[scheme.len() + 3..];
    let (authority, key) = rest.split_once('/').unwrap_or((rest, ""));
    let key = key.trim_matches('/');
    let config_error = |message: String| StoreError {
        op: "open",
        url: url.to_owned(),
        message,
        failure: Failure::Config,
    };
    if authority.is_empty() {
        return Err(config_error("the URL names no bucket".into()));
    }
    let key = Key::parse(key).map_err(|e| config_error(e.to_string()))?;
    let id = format!("{scheme}://{authority}");
    let store = {
        let mut stores = STORES.lock().expect("not poisoned");
        match stores.get(&id) {
            Some(store) => store.clone(),
            None => {
                let store =
                    build(&scheme, authority, &id).map_err(|e| StoreError::new("open", url, e))?;
                stores.insert(id, store.clone());
                store
            }
        }
    };
    Ok(Some(Remote {
        store,
        key,
        url: url.trim_end_matches('/').to_owned(),
    }))
}

fn build(scheme: &str, authority: &str, url: &str) -> object_store::Result<Arc<dyn ObjectStore>> {
    use object_store::RetryConfig;
    let retry = RetryConfig {
        max_retries: MAX_RETRIES,
        retry_timeout: RETRY_TIMEOUT,
        ..RetryConfig::default()
    };
    let options = OPTIONS.lock().expect("not poisoned").clone();
    // Connection timeouts are short: an endpoint that does not answer is reported within
    // seconds, after the retries, instead of hanging a scheduled task.
    let defaults = [("connect_timeout", "5s"), ("timeout", "120s")];
    // Each builder takes its own key type: the same steps for each.
    macro_rules! configured {
        ($builder:expr, $key:ty) => {{
            let mut builder = $builder.with_retry(retry);
            for (k, v) in defaults
                .into_iter()
                .chain(options.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            {
                builder = builder.with_config(k.parse::<$key>()?, v);
            }
            Arc::new(builder.build()?) as Arc<dyn ObjectStore>
        }};
    }
    let store = match scheme {
        "s3" | "s3a" => configured!(
            object_store::aws::AmazonS3Builder::from_env().with_bucket_name(authority),
            object_store::aws::AmazonS3ConfigKey
        ),
        "gs" => configured!(
            object_store::gcp::GoogleCloudStorageBuilder::from_env().with_bucket_name(authority),
            object_store::gcp::GoogleConfigKey
        ),
        _ => configured!(
            object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url),
            object_store::azure::AzureConfigKey
        ),
    };
    Ok(store)
}

/// A Parquet file in an object store, for the parquet crate's async reader: footer and column
/// chunks are fetched as byte ranges, the ranges of one row group in one call.
pub struct ObjectFile {
    store: Arc<dyn ObjectStore>,
    key: Key,
    size: u64,
}

impl ObjectFile {
    /// The file `remote`, `size` bytes long.
    pub fn new(remote: Remote, size: u64) -> Self {
        Self {
            store: remote.store,
            key: remote.key,
            size,
        }
    }
}

impl parquet::arrow::async_reader::AsyncFileReader for ObjectFile {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Bytes>> {
        Box::pin(async move {
            self.store
                .get_range(&self.key, range)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        Box::pin(async move {
            self.store
                .get_ranges(&self.key, &ranges)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a parquet::arrow::arrow_reader::ArrowReaderOptions>,
    ) -> futures::future::BoxFuture<
        'a,
        parquet::errors::Result<Arc<parquet::file::metadata::ParquetMetaData>>,
    > {
        Box::pin(async move {
            let size = self.size;
            // One request reads the footer of a file whose metadata fits in 64 KiB.
            let metadata = parquet::file::metadata::ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        })
    }
}

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
pub fn put(path: &Path, bytes: Bytes) -> Result<(), StoreError> {
    const MULTIPART_ABOVE: usize = 16 << 20;
    let r = remote(path)?.expect("put takes a remote path");
    let result = if bytes.len() <= MULTIPART_ABOVE {
        block_on(r.store.put(&r.key, PutPayload::from_bytes(bytes))).map(|_| ())
    } else {
        const PART: usize = 8 << 20;
        block_on(async {
            let upload = r.store.put_multipart(&r.key).await?;
            let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART);
            writer.put(bytes);
            writer.finish().await.map(|_| ())
        })
    };
    result.map_err(|e| StoreError::new("write", &r.url, e))
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

fn local_error(op: &'static str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError {
        op,
        url: path.display().to_string(),
        message: e.to_string(),
        failure: match e.kind() {
            std::io::ErrorKind::NotFound => Failure::NotFound,
            std::io::ErrorKind::AlreadyExists => Failure::AlreadyExists,
            _ => Failure::Other,
        },
    }
}

impl From<StoreError> for std::io::Error {
    fn from(e: StoreError) -> Self {
        let kind = match e.failure {
            Failure::NotFound => std::io::ErrorKind::NotFound,
            Failure::AlreadyExists => std::io::ErrorKind::AlreadyExists,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_recognised_and_local_paths_stay_local() {
        assert!(is_remote(Path::new("s3://bucket/x")));
        assert!(is_remote(Path::new("S3://bucket/x")));
        assert!(is_remote(Path::new(
            "abfss://c@acct.dfs.core.windows.net/x"
        )));
        assert!(!is_remote(Path::new("/tmp/s3://x")));
        assert!(!is_remote(Path::new("dir/with ://odd name")));
        assert!(!is_remote(Path::new("hdfs://nn/x")));
        assert_eq!(scheme(Path::new("hdfs://nn/x")).as_deref(), Some("hdfs"));
    }

    #[test]
    fn joined_remote_paths_keep_their_url() {
        let out = Path::new("s3://bucket/out").join("labels/dt=2018-06-01");
        assert_eq!(out.to_str(), Some("s3://bucket/out/labels/dt=2018-06-01"));
        assert_eq!(
            out.parent().unwrap().to_str(),
            Some("s3://bucket/out/labels")
        );
    }

    #[test]
    fn secrets_never_reach_messages() {
        configure(&BTreeMap::from([(
            "aws_secret_access_key".to_owned(),
            "hunter2-very-secret".to_owned(),
        )]));
        let text = redact("signature for hunter2-very-secret does not match");
        assert_eq!(text, "signature for *** does not match");
        assert!(is_secret_option("aws_secret_access_key"));
        assert!(is_secret_option("AWS_ACCESS_KEY_ID"));
        assert!(!is_secret_option("aws_region"));
        configure(&BTreeMap::new());
    }
}
