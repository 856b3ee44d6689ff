//! The run manifest: what a run did, with what, and how long it took.
//!
//! Each run writes `OUT/_runs/<run_id>.json` and then replaces `OUT/manifest.json` (the
//! latest) with the same bytes, both atomically, so the manifests of two runs that share an
//! output (two Airflow tasks on different days) both survive. The same [`Manifest`] type is
//! written by the runner and read back by `report`, `eval` and the tests; [`Manifest::read`]
//! refuses a manifest of another [`FORMAT_VERSION`] by name.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::layout::{MANIFEST_FILE, RUNS_DIR};
use super::spec::JobSpec;
use crate::cluster::{InitReport, MergeOutcome};
use crate::io::commit::write_atomic;
use crate::io::{Dataset, InputError, InputFile, OutputError, PartitionFilter, PartitionKey};

/// The manifest's format. Bump it when a field changes meaning or is removed.
pub const FORMAT_VERSION: u32 = 2;

/// Outcome of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every selected partition succeeded or was skipped as already done.
    Succeeded,
    /// Some partitions failed; the others were committed.
    Partial,
    /// No partition was committed or skipped.
    Failed,
}

/// Outcome of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionStatus {
    Succeeded,
    Failed,
    /// Already committed from the same input and parameters (`skip_existing`).
    Skipped,
    /// Not started because an earlier partition failed under `--fail-fast`.
    Cancelled,
}

/// The whole manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the program that wrote it.
    pub format_version: u32,
    pub status: RunStatus,
    /// What `textcluster run` exits with for this run (see the README's exit codes).
    pub exit_code: u8,
    pub tool: Tool,
    pub run_id: String,
    /// RFC 3339, UTC.
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    /// RFC 3339, UTC: when the outputs and this manifest were complete.
    #[serde(with = "rfc3339")]
    pub finished_at: SystemTime,
    pub seconds_total: f64,
    /// The job spec as resolved, every default filled in.
    pub spec: JobSpec,
    pub input: InputSummary,
    /// One entry per input partition.
    pub partitions: Vec<PartitionReport>,
    /// One entry per clustering: each partition in `partition` scope, one in `global` scope.
    pub clusterings: Vec<ClusteringReport>,
    /// Every data file this run committed.
    pub files: Vec<WrittenFile>,
    /// The signal (15 SIGTERM, 2 SIGINT) that stopped the run early, if one did.
    #[serde(default)]
    pub interrupted_by: Option<i32>,
    /// The model the labels were assigned with (`assign`, and `run` in `global` scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
}

/// Which model a run assigned with, and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    pub model_id: String,
    /// The model's directory.
    pub path: String,
    /// True when this run fitted it (`run` in `global` scope), false when it was reused.
    pub fitted: bool,
}

/// How far one partition drifted from the model it was assigned with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Tokens not in the model's vocabulary, over every token of the partition.
    pub oov_token_rate: f64,
    /// Documents with no term of the vocabulary (labelled `-1`), over the documents.
    pub share_no_known_term: f64,
    /// Documents less similar to their cluster than the fit's 5th percentile, over the
    /// documents with a known term (about 0.05 on data like the fit's).
    pub share_below_fit_p05: f64,
    /// Jensen-Shannon divergence (base 2, 0 to 1) of the partition's cluster shares from the fit's.
    pub js_divergence: f64,
}

/// Name and version of the program that wrote the outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    pub fn current() -> Self {
        Self {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// The input as found by the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputSummary {
    pub root: String,
    pub partition_keys: Vec<String>,
}

/// One input partition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionReport {
    /// `dt=2018-06-01`, or empty for unpartitioned input.
    pub key: String,
    pub status: PartitionStatus,
    /// Why the partition failed.
    pub error: Option<String>,
    /// True when the failure is the input's fault (a retry will not help).
    #[serde(skip)]
    pub user_error: bool,
    /// sha256 over the partition's files (path, size, mtime); in `global` scope, over every
    /// partition's.
    pub input_fingerprint: String,
    /// sha256 over the parameters that shape the outputs and the tool version.
    pub param_hash: String,
    pub files: Vec<InputFile>,
    pub n_rows: u64,
    /// Rows with a non-null text: the documents labelled.
    pub n_docs: usize,
    /// Rows skipped because their text is null.
    pub n_null_texts: usize,
    /// Documents labelled `-1` because no term of theirs is in the vocabulary.
    pub n_empty_docs: usize,
    pub seconds_read: f64,
    pub seconds_write_labels: f64,
    /// The model the labels carry: the assigned model's id, or in `partition` scope the
    /// content id of the partition's own clustering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Drift from the assigned model (`assign`, and `run` in `global` scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
}

/// One clustering: vocabulary, fit and diagnostics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusteringReport {
    /// The partition key, or `dt=__all__` in `global` scope.
    pub key: String,
    pub n_docs: usize,
    pub n_empty_docs: usize,
    pub n_terms: usize,
    pub nnz: usize,
    pub k_requested: usize,
    /// The k used: `k_requested` capped at the number of documents with terms.
    pub n_clusters: usize,
    pub n_iter: usize,
    /// Whether the last round moved at most `tol` of the documents; `false` when `max_iter`
    /// stopped the fit.
    #[serde(default)]
    pub converged: bool,
    /// After each round's update: the sum of the documents' cosines to their cluster's new
    /// centroid.
    pub objective: Vec<f64>,
    /// Share of document scorings that the assignment bounds skipped, in rounds 1-5 and in
    /// rounds 6 onward (0 when a fit had no such rounds).
    #[serde(default)]
    pub skipped_share: SkippedShare,
    pub init: InitReport,
    pub n_reseeded: usize,
    pub mean_centroid_nnz: f64,
    /// Present when `merge_threshold` is set.
    pub merge: Option<MergeOutcome>,
    pub clusters: Vec<ClusterReport>,
    pub seconds: StageSeconds,
}

/// Per-cluster diagnostics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterReport {
    pub cluster: i32,
    pub size: u64,
    /// Mean cosine of the members to the centroid.
    pub mean_similarity: f64,
    /// Share of members whose second-best cosine is within 0.01 of the best.
    pub ambiguous_share: f64,
    /// Documents that joined the cluster after round 10.
    #[serde(default)]
    pub joined_after_10: u64,
    /// Documents that left the cluster after round 10.
    #[serde(default)]
    pub left_after_10: u64,
    /// Documents that joined or left the cluster in the last 3 rounds of its fit.
    #[serde(default)]
    pub moved_last_3: u64,
    /// Still moving when the fit ended: `moved_last_3` is more than 1% of the cluster's size
    /// and at least 10.
    /// The cluster is ambiguous, or its documents are drifting between neighbours; a fit
    /// stopped early by `max_iter` has many such clusters, one that converged few.
    #[serde(default)]
    pub unsettled: bool,
}

/// See [`ClusteringReport::skipped_share`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SkippedShare {
    pub rounds_1_5: f64,
    pub rounds_6_on: f64,
}

/// Wall-clock seconds per stage of one clustering.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct StageSeconds {
    pub vectorize: f64,
    pub cluster: f64,
    pub keywords: f64,
    pub write: f64,
}

/// A data file a run committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenFile {
    /// `labels`, `centroids`, `keywords` or `similarity`.
    pub table: String,
    /// The partition key, as in `partitions` and `clusterings` (`dt=2018-06-01`).
    pub partition: String,
    /// Relative to the output path.
    pub path: String,
    pub n_rows: u64,
    pub n_bytes: u64,
}

/// A manifest that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("`{}` has no `{MANIFEST_FILE}`: it is not a textcluster output, or no run finished there", out.display())]
    Missing { out: PathBuf },
    #[error("cannot read run manifest `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a run manifest", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "`{}` has manifest format version {found}; this textcluster reads version {FORMAT_VERSION}\nhint: rerun the job with this version to rewrite its outputs",
        path.display()
    )]
    Version { path: PathBuf, found: String },
}

/// What a run did, as [`Manifest::of_run`] records it.
#[derive(Debug)]
pub struct RunRecord {
    pub spec: JobSpec,
    pub input: InputSummary,
    pub run_id: String,
    pub started_at: SystemTime,
    pub seconds_total: f64,
    /// One report per selected partition, in partition order.
    pub partitions: Vec<PartitionReport>,
    pub clusterings: Vec<ClusteringReport>,
    /// Every data file the run staged; only those of committed partitions are recorded.
    pub staged: Vec<WrittenFile>,
    pub interrupted_by: Option<i32>,
    pub model: Option<ModelRef>,
}

impl ManifestError {
    /// True when the manifest itself is missing or wrong (a retry will not help); false
    /// when it could not be read.
    pub fn is_user_error(&self) -> bool {
        match self {
            ManifestError::Read { .. } => false,
            ManifestError::Missing { .. }
            | ManifestError::Parse { .. }
            | ManifestError::Version { .. } => true,
        }
    }
}

impl Manifest {
    /// The manifest of a finished run: its status from the partitions' (succeeded when every
    /// one succeeded or was skipped, partial when some did, failed when none did), the files
    /// of its committed partitions in (table, partition) order, and its exit code.
    pub fn of_run(run: RunRecord) -> Self {
        let partitions = run.partitions;
        let done = partitions
            .iter()
            .filter(|p| {
                matches!(
                    p.status,
                    PartitionStatus::Succeeded | PartitionStatus::Skipped
                )
            })
            .count();
        let status = if done == partitions.len() {
            RunStatus::Succeeded
        } else if done > 0 {
            RunStatus::Partial
        } else {
            RunStatus::Failed
        };
        // Files of partitions that failed after staging were never committed.
        let committed: Vec<&str> = partitions
            .iter()
            .filter(|p| p.status == PartitionStatus::Succeeded)
            .map(|p| p.key.as_str())
            .collect();
        let mut files = run.staged;
        files.retain(|f| committed.contains(&f.partition.as_str()));
        files.sort_by(|a, b| (&a.table, &a.partition).cmp(&(&b.table, &b.partition)));
        let mut manifest = Manifest {
            format_version: FORMAT_VERSION,
            status,
            exit_code: 0,
            tool: Tool::current(),
            run_id: run.run_id,
            started_at: run.started_at,
            finished_at: SystemTime::now(),
            seconds_total: run.seconds_total,
            spec: run.spec,
            input: run.input,
            partitions,
            clusterings: run.clusterings,
            files,
            interrupted_by: run.interrupted_by,
            model: run.model,
        };
        manifest.exit_code = manifest.outcome_exit_code();
        manifest
    }

    /// Whether this run changes its output: false when it failed everywhere before committing
    /// anything (and was not interrupted), so the last run's manifest and `_SUCCESS` stay.
    pub fn changes_output(&self) -> bool {
        let committed = self
            .partitions
            .iter()
            .any(|p| p.status == PartitionStatus::Succeeded);
        !(self.status == RunStatus::Failed && !committed && self.interrupted_by.is_none())
    }

    /// The process exit code of the run this manifest records (the README's exit codes): 0
    /// done; 3 some partitions failed; when none was committed, 1 if every failure was the
    /// input's, else 2; 128 + the signal when the run was stopped.
    pub fn outcome_exit_code(&self) -> u8 {
        if let Some(signal) = self.interrupted_by {
            return 128u8.saturating_add(u8::try_from(signal).unwrap_or(0));
        }
        match self.status {
            RunStatus::Succeeded => 0,
            RunStatus::Partial => 3,
            RunStatus::Failed => {
                let all_user = self
                    .partitions
                    .iter()
                    .filter(|p| p.status == PartitionStatus::Failed)
                    .all(|p| p.user_error);
                if all_user { 1 } else { 2 }
            }
        }
    }

    /// Reads the latest manifest under the output path `out`.
    pub fn read(out: &Path) -> Result<Self, ManifestError> {
        let path = out.join(MANIFEST_FILE);
        if !crate::io::store::is_remote(out) && !path.is_file() {
            return Err(ManifestError::Missing { out: out.into() });
        }
        Self::read_file(&path).map_err(|e| match e {
            ManifestError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ManifestError::Missing { out: out.into() }
            }
            e => e,
        })
    }

    /// Reads a manifest file (the latest, or one under `_runs/`).
    pub fn read_file(path: &Path) -> Result<Self, ManifestError> {
        let read_error = |source| ManifestError::Read {
            path: path.into(),
            source,
        };
        let text = if crate::io::store::is_remote(path) {
            let bytes = crate::io::store::read(path)
                .map_err(|e| read_error(e.into()))?
                .ok_or_else(|| read_error(std::io::ErrorKind::NotFound.into()))?;
            String::from_utf8(bytes)
                .map_err(|e| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?
        } else {
            fs_err::read_to_string(path).map_err(read_error)?
        };
        let parse_error = |source| ManifestError::Parse {
            path: path.into(),
            source,
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(parse_error)?;
        match value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            other => {
                return Err(ManifestError::Version {
                    path: path.into(),
                    found: other
                        .map_or_else(|| "1 (no `format_version`)".into(), |v| v.to_string()),
                });
            }
        }
        serde_json::from_value(value).map_err(parse_error)
    }

    /// Writes `_runs/<run_id>.json`, then `manifest.json`, each atomically.
    pub fn write(&self, out: &Path) -> Result<(), OutputError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| OutputError::Io {
            source: std::io::Error::other(e),
        })?;
        write_atomic(
            &out.join(RUNS_DIR).join(format!("{}.json", self.run_id)),
            &json,
        )?;
        write_atomic(&out.join(MANIFEST_FILE), &json)
    }

    /// The input files of partition `key`: under `root` when given (`--input`), otherwise
    /// the files the manifest lists for it, or those found under the recorded input path (a
    /// partition an earlier run committed). Empty when none can be found; an error when the
    /// store or the disk fails (access refused, throttled past the retries).
    pub fn input_files(
        &self,
        key: &PartitionKey,
        root: Option<&Path>,
    ) -> Result<Vec<PathBuf>, InputError> {
        let name = key.to_string();
        let listed = self
            .partitions
            .iter()
            .find(|p| p.key == name && !p.files.is_empty());
        if let (None, Some(p)) = (root, listed) {
            return Ok(p.files.iter().map(|f| f.path.clone()).collect());
        }
        let input = &self.spec.input;
        let (id, text) = (&input.id_column, &input.text_column);
        let tokens = self.spec.vectorize.tokenizer == crate::text::TokenizerKind::Column;
        let restriction: Vec<String> = key.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        PartitionFilter::parse(&restriction)
            .and_then(|filter| {
                let selection = match root {
                    Some(root) => crate::io::Selection::all(root),
                    None => input.path.selection()?,
                };
                Dataset::discover(&selection, &filter, id, text, tokens)
            })
            .map(|dataset| {
                dataset
                    .partitions
                    .into_iter()
                    .flat_map(|p| p.files.into_iter().map(|f| f.path))
                    .collect()
            })
            .or_else(|e| {
                // Gone is an answer (none); a store or disk that fails is not.
                if e.is_environmental() {
                    Err(e)
                } else {
                    Ok(Vec::new())
                }
            })
    }

    /// Seconds since the Unix epoch at which the run started.
    pub fn started_at_unix(&self) -> f64 {
        self.started_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }
}

/// RFC 3339 timestamps (UTC, second precision) for `SystemTime` fields.
mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_seconds(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let spec = JobSpec::parse(
            Path::new("job.toml"),
            "[input]\npath = \"in\"\n[cluster]\nk = 2\n[output]\npath = \"out\"\n",
            &[] as &[&str],
        )
        .unwrap();
        Manifest {
            format_version: FORMAT_VERSION,
            status: RunStatus::Succeeded,
            exit_code: 0,
            tool: Tool::current(),
            run_id: "1700000000-host-1".into(),
            started_at: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
            finished_at: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_002),
            seconds_total: 2.0,
            spec,
            input: InputSummary {
                root: "in".into(),
                partition_keys: vec!["dt".into()],
            },
            partitions: Vec::new(),
            clusterings: Vec::new(),
            files: vec![WrittenFile {
                table: "labels".into(),
                partition: "dt=a".into(),
                path: "labels/dt=a/part-00000.parquet".into(),
                n_rows: 3,
                n_bytes: 700,
            }],
            interrupted_by: None,
            model: None,
        }
    }

    #[test]
    fn round_trips_with_rfc3339_times_and_keeps_every_run() {
        let out = tempfile::tempdir().unwrap();
        let m = manifest();
        m.write(out.path()).unwrap();
        let text = fs_err::read_to_string(out.path().join(MANIFEST_FILE)).unwrap();
        assert!(
            text.contains("\"started_at\": \"2023-11-14T22:13:20Z\""),
            "{text}"
        );
        let back = Manifest::read(out.path()).unwrap();
        assert_eq!(back.finished_at, m.finished_at);
        assert_eq!(back.files, m.files);
        assert_eq!(back.spec, m.spec);
        let second = Manifest {
            run_id: "1700000100-host-2".into(),
            ..m
        };
        second.write(out.path()).unwrap();
        assert_eq!(Manifest::read(out.path()).unwrap().run_id, second.run_id);
        let runs = fs_err::read_dir(out.path().join(RUNS_DIR)).unwrap().count();
        assert_eq!(runs, 2);
    }

    #[test]
    fn other_format_versions_and_missing_files_are_named() {
        let out = tempfile::tempdir().unwrap();
        assert!(matches!(
            Manifest::read(out.path()),
            Err(ManifestError::Missing { .. })
        ));
        fs_err::write(out.path().join(MANIFEST_FILE), r#"{"status": "succeeded"}"#).unwrap();
        let e = Manifest::read(out.path()).unwrap_err();
        assert!(matches!(e, ManifestError::Version { .. }), "{e}");
        assert!(e.to_string().contains("no `format_version`"), "{e}");
        fs_err::write(out.path().join(MANIFEST_FILE), "not json").unwrap();
        assert!(matches!(
            Manifest::read(out.path()),
            Err(ManifestError::Parse { .. })
        ));
    }
}
