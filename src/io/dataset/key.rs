//! Partition keys: the `key=value` segments of a hive path, in path order.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::io::InputError;

/// Value every partition key takes in the outputs of a `global` run.
pub const ALL_PARTITIONS: &str = "__all__";

/// The hive key of a partition, in path order: `[("dt", "2018-06-01")]`. Empty when the input
/// is not partitioned.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey(pub Vec<(String, String)>);

impl Serialize for PartitionKey {
    /// As its directory form, `dt=2018-06-01` (empty when unpartitioned).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.dir().display())
    }
}

impl PartitionKey {
    /// The key of a relative directory `dt=2018-06-01` or `year=2018/month=06` (segments that
    /// are not `key=value` are ignored; the empty string is the unpartitioned key).
    pub fn from_dir(dir: &str) -> Self {
        Self(
            dir.split('/')
                .filter_map(|s| s.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// The relative directory of this partition, `dt=2018-06-01` or `year=2018/month=06`.
    pub fn dir(&self) -> PathBuf {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// The key that stands for every partition at once (`dt=__all__`).
    pub fn all(keys: &[String]) -> Self {
        Self(
            keys.iter()
                .map(|k| (k.clone(), ALL_PARTITIONS.to_owned()))
                .collect(),
        )
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(unpartitioned)");
        }
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&parts.join("/"))
    }
}

/// Parses the `key=value` directory segments between `root` and the file `path`.
pub fn parse_hive_path(root: &Path, path: &Path) -> Result<PartitionKey, InputError> {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let mut segments: Vec<_> = relative.components().collect();
    segments.pop(); // the file name
    let mut key = Vec::with_capacity(segments.len());
    for segment in segments {
        let text = segment.as_os_str().to_string_lossy();
        match text.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                key.push((k.to_owned(), v.to_owned()))
            }
            _ => {
                return Err(InputError::BadPartitionSegment {
                    path: path.into(),
                    segment: text.into_owned(),
                });
            }
        }
    }
    Ok(PartitionKey(key))
}
