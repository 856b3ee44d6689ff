//! The run manifest: `OUT/manifest.json`, what a run did, with what, and how long it took.

use serde::Serialize;

use super::spec::JobSpec;
use crate::cluster::{InitReport, MergeOutcome};
use crate::io::InputFile;

/// Outcome of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub status: RunStatus,
    pub tool: Tool,
    pub run_id: String,
    /// Unix seconds when the run started.
    pub started_at: u64,
    /// The job spec as resolved, every default filled in.
    pub spec: JobSpec,
    pub input: InputSummary,
    /// One entry per input partition.
    pub partitions: Vec<PartitionReport>,
    /// One entry per clustering: each partition in `partition` scope, one in `global` scope.
    pub clusterings: Vec<ClusteringReport>,
    pub seconds_total: f64,
}

/// Name and version of the program that wrote the outputs.
#[derive(Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

impl Tool {
    pub fn current() -> Self {
        Self {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// The input as found by the plan.
#[derive(Debug, Serialize)]
pub struct InputSummary {
    pub root: String,
    pub partition_keys: Vec<String>,
}

/// One input partition.
#[derive(Debug, Serialize)]
pub struct PartitionReport {
    /// `dt=2018-06-01`, or empty for unpartitioned input.
    pub key: String,
    pub status: PartitionStatus,
    /// Why the partition failed.
    pub error: Option<String>,
    /// True when the failure is the input's fault (a retry will not help).
    #[serde(skip)]
    pub user_error: bool,
    /// sha256 over the partition's files (path, size, mtime).
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
}

/// One clustering: vocabulary, fit and diagnostics.
#[derive(Debug, Serialize)]
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
    /// Sum of document-to-centroid cosines after each assignment.
    pub objective: Vec<f64>,
    pub init: InitReport,
    pub n_reseeded: usize,
    pub mean_centroid_nnz: f64,
    /// Present when `merge_threshold` is set.
    pub merge: Option<MergeOutcome>,
    pub clusters: Vec<ClusterReport>,
    pub seconds: StageSeconds,
}

/// Per-cluster diagnostics.
#[derive(Debug, Serialize)]
pub struct ClusterReport {
    pub cluster: i32,
    pub size: u64,
    /// Mean cosine of the members to the centroid.
    pub mean_similarity: f64,
    /// Share of members whose second-best cosine is within 0.01 of the best.
    pub ambiguous_share: f64,
}

/// Wall-clock seconds per stage of one clustering.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct StageSeconds {
    pub vectorize: f64,
    pub cluster: f64,
    pub keywords: f64,
    pub write: f64,
}
