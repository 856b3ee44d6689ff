//! Where a path lives: its scheme, and for a remote path the store of its bucket, built once
//! from the environment and the `[storage]` options.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as Key;

use super::error::{Failure, StoreError};
use super::{MAX_RETRIES, OPTIONS, REMOTE_SCHEMES, RETRY_TIMEOUT, STORES};

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

pub(super) fn build(
    scheme: &str,
    authority: &str,
    url: &str,
) -> object_store::Result<Arc<dyn ObjectStore>> {
    use object_store::RetryConfig;
    let retry = RetryConfig {
        max_retries: MAX_RETRIES,
        retry_timeout: RETRY_TIMEOUT,
        ..RetryConfig::default()
    };
    let options = OPTIONS.lock().expect("not poisoned").clone();
    // Connection timeouts are short: an endpoint that does not answer is reported within
    // seconds, after the retries, instead of hanging a scheduled task.
    let mut defaults = vec![("connect_timeout", "5s"), ("timeout", "120s")];
    if matches!(scheme, "s3" | "s3a") {
        // S3 checks each body against its SHA-256 and refuses a corrupted one.
        defaults.push(("checksum_algorithm", "sha256"));
    }
    // Each builder takes its own key type: the same steps for each.
    macro_rules! configured {
        ($builder:expr, $key:ty) => {{
            let mut builder = $builder.with_retry(retry);
            for (k, v) in defaults
                .iter()
                .copied()
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
