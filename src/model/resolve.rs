//! Which clustering each committed label partition of an output belongs to, and where that
//! clustering's cluster tables (centroids, keywords, similarity) are: for `report` and
//! `eval`.
//!
//! In `partition` scope a partition's cluster tables sit beside its labels
//! (`OUT/centroids/dt=…/`). Labels assigned with a model (`assign`, and `run` in `global`
//! scope) carry its `model_id`, and the tables are the model's: the model the manifest names,
//! or `OUT/models/model_id=<id>/`. Label partitions of one model form one clustering, so
//! daily `assign` runs against one model are reported together.
//!
//! Nothing here writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tracing::warn;

use super::{HEADER_FILE, ModelHeader, model_dir, table_file};
use crate::io::commit::{Staging, committed_partitions};
use crate::io::dataset::ALL_PARTITIONS;
use crate::io::read::labels_model_id;
use crate::io::store;
use crate::io::{InputError, PartitionKey};
use crate::output::Manifest;
use crate::output::Table;
use crate::output::layout::MODELS_DIR;

/// Where a clustering's cluster tables are.
#[derive(Debug, Clone)]
pub enum TablesAt {
    /// Beside the labels, under partition `key` of the output.
    Partition { out: PathBuf, key: PartitionKey },
    /// In a model directory.
    Model {
        dir: PathBuf,
        header: Box<ModelHeader>,
    },
}

impl TablesAt {
    /// The file of `table` (centroids, keywords or similarity).
    pub fn file(&self, table: Table) -> PathBuf {
        match self {
            TablesAt::Partition { out, key } => Staging::committed_file(out, table, key),
            TablesAt::Model { dir, .. } => table_file(dir, table),
        }
    }

    /// The model's header, for a model's tables.
    pub fn model(&self) -> Option<&ModelHeader> {
        match self {
            TablesAt::Model { header, .. } => Some(header),
            TablesAt::Partition { .. } => None,
        }
    }
}

/// One committed clustering of an output.
#[derive(Debug, Clone)]
pub struct CommittedClustering {
    /// `dt=2018-06-01` for a partition's own clustering, `model_id=<id>` for a model.
    pub name: String,
    pub tables: TablesAt,
    /// The committed label partitions it labelled, sorted.
    pub label_keys: Vec<PartitionKey>,
}

/// Every committed clustering under `out`, partition clusterings first. Label partitions
/// whose model is nowhere to be found are left out with a warning.
pub fn committed_clusterings(
    out: &Path,
    manifest: &Manifest,
) -> Result<Vec<CommittedClustering>, InputError> {
    let label_keys = committed_partitions(out, Table::Labels)?;
    let mut claimed = vec![false; label_keys.len()];
    let mut clusterings = Vec::new();
    let mut legacy_global = None;
    for key in committed_partitions(out, Table::Centroids)? {
        if key.0.iter().any(|(_, v)| v == ALL_PARTITIONS) {
            // Written before global clusterings became models: it owns every label
            // partition no other clustering claims.
            legacy_global = Some(key);
            continue;
        }
        let Some(i) = label_keys.iter().position(|k| *k == key) else {
            continue;
        };
        claimed[i] = true;
        clusterings.push(CommittedClustering {
            name: key.dir().display().to_string(),
            tables: TablesAt::Partition {
                out: out.to_path_buf(),
                key,
            },
            label_keys: vec![label_keys[i].clone()],
        });
    }
    let mut by_model: BTreeMap<String, Vec<PartitionKey>> = BTreeMap::new();
    let mut unclaimed = Vec::new();
    for (key, _) in label_keys.iter().zip(&claimed).filter(|(_, c)| !**c) {
        match labels_model_id(&Staging::committed_file(out, Table::Labels, key))? {
            Some(id) => by_model.entry(id).or_default().push(key.clone()),
            None => unclaimed.push(key.clone()),
        }
    }
    for (model_id, keys) in by_model {
        let named = manifest
            .model
            .as_ref()
            .filter(|m| m.model_id == model_id)
            .map(|m| PathBuf::from(&m.path));
        let candidates = named
            .into_iter()
            .chain([model_dir(&out.join(MODELS_DIR), &model_id)]);
        let mut found = None;
        for dir in candidates {
            if let Some(header) = read_header(&dir)? {
                verify(&dir)?;
                found = Some((dir, header));
                break;
            }
        }
        match found {
            Some((dir, header)) => clusterings.push(CommittedClustering {
                name: format!("model_id={model_id}"),
                tables: TablesAt::Model {
                    dir,
                    header: Box::new(header),
                },
                label_keys: keys,
            }),
            None => warn!(
                model_id,
                partitions = keys.len(),
                "labels name a model that is not found (neither the manifest's model nor under `models/`); left out"
            ),
        }
    }
    if let Some(key) = legacy_global
        && !unclaimed.is_empty()
    {
        clusterings.push(CommittedClustering {
            name: key.dir().display().to_string(),
            tables: TablesAt::Partition {
                out: out.to_path_buf(),
                key,
            },
            label_keys: unclaimed,
        });
    }
    Ok(clusterings)
}

/// The header of the model in `dir`, `None` when there is none or it does not parse.
/// Checks the model at `dir` as `assign` does (its content id, and every table's SHA-256
/// against the header), so a report or an evaluation never shows another model's tables.
fn verify(dir: &Path) -> Result<(), InputError> {
    use super::{Model, ModelError};
    match Model::load(dir) {
        Ok(_) => Ok(()),
        Err(ModelError::Store(e)) => Err(InputError::Store(e)),
        Err(e) => Err(InputError::CorruptFile {
            path: dir.to_path_buf(),
            reason: crate::io::Unreadable::Inconsistent(e.to_string()),
        }),
    }
}

fn read_header(dir: &Path) -> Result<Option<ModelHeader>, InputError> {
    let path = dir.join(HEADER_FILE);
    let Some(bytes) = store::read(&path)? else {
        return Ok(None);
    };
    match serde_json::from_slice(&bytes) {
        Ok(header) => Ok(Some(header)),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "model header does not parse; left out");
            Ok(None)
        }
    }
}
