//! What a report shows: the values [`super::load`] builds and the renderers read.

use serde::Serialize;

use crate::output::JobSpec;
use crate::output::manifest::RunStatus;

/// Everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The output path, as given.
    pub out: String,
    pub run: RunInfo,
    /// One per committed clustering, sorted by key.
    pub clusterings: Vec<ClusteringView>,
}

/// The run that wrote the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub run_id: String,
    pub status: RunStatus,
    pub tool_version: String,
    /// RFC 3339, as in the manifest.
    pub started_at: String,
    pub seconds_total: f64,
    /// The resolved job spec, as in the manifest.
    pub spec: JobSpec,
}

/// One clustering: a partition's, or the global one.
#[derive(Debug, Clone, Serialize)]
pub struct ClusteringView {
    /// The partition key in directory form (`dt=2018-06-01`, `dt=__all__`).
    pub key: String,
    /// The manifest's figures for this clustering (without per-cluster rows and the objective
    /// trace); absent when an earlier run committed it.
    pub figures: Option<serde_json::Map<String, serde_json::Value>>,
    /// `cluster.merge_threshold` of the run, if set.
    pub merge_threshold: Option<f64>,
    /// Documents labelled.
    pub n_docs: u64,
    /// Indexed by cluster id.
    pub clusters: Vec<ClusterView>,
    /// The terms any cluster shows, and `log p(w)` for each.
    pub terms: Vec<String>,
    pub log_p_term: Vec<f64>,
    /// Pairwise centroid cosine, upper triangle row by row (`(0,1), (0,2), …, (1,2), …`),
    /// in thousandths.
    pub similarity: Vec<u16>,
    /// Heatmap order: similar clusters next to each other.
    pub order: Vec<usize>,
    /// The full term distributions, for exports; not embedded in the HTML.
    #[serde(skip)]
    pub topics: TopicTerms,
}

/// Every cluster's centroid as a distribution over terms.
#[derive(Debug, Clone, Default)]
pub struct TopicTerms {
    /// Every term of any centroid.
    pub names: Vec<String>,
    /// `p(w)`: the size-weighted mean of the clusters' `p(w|c)`.
    pub p_term: Vec<f64>,
    /// Per cluster, `(term, p(w|c))` with `p > 0`; empty for an empty cluster.
    pub p_term_given_cluster: Vec<Vec<(u32, f64)>>,
    /// Documents per cluster.
    pub sizes: Vec<u64>,
    /// Occurrences of each term in the clustering's documents, counted by re-tokenising the
    /// input with the run's settings; `None` when the input could not be read (or was not
    /// asked for), and then exports estimate counts from the centroids.
    pub counts: Option<Vec<u64>>,
}

/// One cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    pub id: i32,
    pub size: u64,
    /// Intertopic map position (classical MDS of centroid distances).
    pub x: f64,
    pub y: f64,
    /// The keywords table's terms, by rank.
    pub keywords: Vec<String>,
    pub mean_similarity: Option<f64>,
    pub ambiguous_share: Option<f64>,
    /// Membership changed by more than 1% after round 10 (`joined + left` documents).
    pub unsettled: Option<bool>,
    pub moved_last_3: Option<u64>,
    /// Candidate terms (indices into [`ClusteringView::terms`]) and `log p(w|c)` of each.
    pub term_ids: Vec<u32>,
    pub log_p: Vec<f64>,
    /// Documents nearest the centroid.
    pub examples: Vec<Example>,
}

/// A document shown as an example.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub doc_id: String,
    pub similarity: f32,
    /// The first [`super::EXAMPLE_CHARS`] characters of the text, whitespace runs as one space.
    pub text: String,
}
