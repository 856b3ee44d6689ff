//! The `--partition key=value` filter, pruning partitions by their keys.

use std::collections::BTreeMap;
use std::path::Path;

use super::key::PartitionKey;
use crate::io::InputError;

/// A `--partition key=value` restriction. Values of one key are alternatives; different keys
/// must all match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionFilter(pub(super) BTreeMap<String, Vec<String>>);

impl PartitionFilter {
    /// Parses `key=value` arguments.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Self, InputError> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for arg in args {
            let arg = arg.as_ref();
            match arg.split_once('=') {
                Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                    map.entry(k.to_owned()).or_default().push(v.to_owned())
                }
                _ => {
                    return Err(InputError::BadPartitionFilter {
                        arg: arg.to_owned(),
                    });
                }
            }
        }
        Ok(Self(map))
    }

    /// True when nothing is restricted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps the files of `keyed` whose key passes; an error when the filter names a key the
    /// input (at `root`, with partition keys `keys`) does not have, or nothing passes.
    pub(super) fn select<T>(
        &self,
        root: &Path,
        keys: &[String],
        keyed: &mut Vec<(PartitionKey, T)>,
    ) -> Result<(), InputError> {
        if let Some(unknown) = self.0.keys().find(|k| !keys.contains(k)) {
            return Err(InputError::UnknownPartitionKey {
                key: unknown.clone(),
                keys: keys.to_vec(),
            });
        }
        keyed.retain(|(key, _)| self.matches(key));
        if keyed.is_empty() {
            return Err(InputError::NoMatchingPartition {
                path: root.into(),
                filter: self
                    .0
                    .iter()
                    .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}")))
                    .collect(),
            });
        }
        Ok(())
    }

    /// True when `key` passes every restricted key.
    pub fn matches(&self, key: &PartitionKey) -> bool {
        self.0.iter().all(|(k, values)| {
            key.0
                .iter()
                .any(|(kk, v)| kk == k && values.iter().any(|want| want == v))
        })
    }
}
