//! Store errors: what failed, where, whether a retry may help, and never a secret.

use std::path::Path;

use super::OPTIONS;

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
    pub(super) fn new(op: &'static str, url: &str, error: object_store::Error) -> Self {
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

    /// A store that answered with bytes other than the ones expected (a short or corrupted
    /// body): retryable, since the next request may go through intact.
    pub(super) fn corrupt(op: &'static str, url: &str, message: String) -> Self {
        Self {
            op,
            url: url.to_owned(),
            message: redact(&message),
            failure: Failure::Other,
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

pub(super) fn local_error(op: &'static str, path: &Path, e: std::io::Error) -> StoreError {
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
