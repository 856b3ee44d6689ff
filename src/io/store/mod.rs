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
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use object_store::ObjectStore;

mod error;
mod file;
mod location;
mod ops;

pub use error::{Failure, StoreError, is_secret_option, redact};
pub use file::ObjectFile;
pub use location::{Remote, is_remote, remote, scheme};
pub use ops::{
    Conditional, Listed, copy_all, exists, get_size, get_versioned, list, list_dirs, put, put_if,
    read, remove, remove_all, remove_many,
};

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

#[cfg(test)]
mod tests {
    use std::path::Path;

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
