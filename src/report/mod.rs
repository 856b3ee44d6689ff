//! Seeing the clusters: a self-contained HTML report and a pyLDAvis export, built from a run's
//! committed outputs.
//!
//! [`load`] reads what a run committed under `OUT` (centroids, keywords, similarities and
//! labels per clustering, plus `manifest.json`) and the input texts of the documents nearest
//! each centroid, into a [`Report`]. [`html::render`] turns a report into one HTML file with
//! its data, script and styles inline; [`pyldavis::prepare`] turns one clustering into the JSON
//! that pyLDAvis's viewer (`ldavis.js`) takes.
//!
//! Term probabilities come from the centroids alone, treating each centroid as a topic:
//! `p(w|c)` is cluster `c`'s centroid L1-normalised, and `p(w)` is the size-weighted mean of
//! all `p(w|c)`. Relevance is `λ·log p(w|c) + (1−λ)·log(p(w|c)/p(w))`.
//!
//! To keep the file small for large k, each cluster carries only the terms that can appear in
//! its top [`TOP_TERMS`] for some λ on the slider's grid (step [`LAMBDA_STEP`]), the similarity
//! table is sent once (upper triangle, in thousandths), and probabilities are rounded to three
//! decimals of their logarithm.

pub mod html;
pub mod mds;
pub mod pyldavis;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float32Type, Int32Type, Int64Type};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::io::commit::Staging;
use crate::io::dataset::{ALL_PARTITIONS, parse_hive_path, walk};
use crate::io::write::PART_FILE;
use crate::io::{
    Dataset, InputError, OutputError, PartitionFilter, PartitionKey, Table, read_files, read_output,
};

/// Terms shown per cluster in the bar chart.
pub const TOP_TERMS: usize = 30;
/// Step of the report's λ slider; each cluster carries the union of its top terms over this
/// grid, so every slider position is exact.
pub const LAMBDA_STEP: f64 = 0.05;
/// Characters of each example document shown.
pub const EXAMPLE_CHARS: usize = 200;

/// Why a report cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("`{}` is not a textcluster output directory: {reason}", path.display())]
    NotAnOutput { path: PathBuf, reason: String },
    #[error("`{}` is not a run manifest: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    #[error("no clustering under `{}` matches --partition {filter:?}; it has {available:?}", out.display())]
    NoMatchingClustering {
        out: PathBuf,
        filter: Vec<String>,
        available: Vec<String>,
    },
    #[error("`{}`: {message}", path.display())]
    Inconsistent { path: PathBuf, message: String },
    #[error(
        "--pyldavis exports one clustering, but the report holds {} ({keys:?}); pick one with --partition",
        keys.len()
    )]
    SeveralClusterings { keys: Vec<String> },
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ReportError {
    /// True when the user must fix something (a path, a flag, the data); false when the
    /// environment failed (disk, permissions) and a retry may help.
    pub fn is_user_error(&self) -> bool {
        match self {
            ReportError::Io(_) | ReportError::Output(_) => false,
            ReportError::Input(e) => !e.is_environmental(),
            _ => true,
        }
    }
}

/// What to load.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// `--partition key=value` arguments restricting the clusterings shown; a global
    /// clustering is kept whatever they say.
    pub partitions: Vec<String>,
    /// Read example texts from here instead of the input path in the manifest.
    pub input: Option<PathBuf>,
    /// Example documents per cluster (0: do not read the input).
    pub examples: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            partitions: Vec::new(),
            input: None,
            examples: 3,
        }
    }
}

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
    pub status: String,
    pub tool_version: String,
    pub started_at: u64,
    pub seconds_total: f64,
    /// The resolved job spec, as in the manifest.
    pub spec: serde_json::Value,
}

/// One clustering: a partition's, or the global one.
#[derive(Debug, Clone, Serialize)]
pub struct ClusteringView {
    /// The partition key in directory form (`dt=2018-06-01`, `dt=__all__`).
    pub key: String,
    /// The manifest's figures for this clustering (without per-cluster rows and the objective
    /// trace); absent when an earlier run committed it.
    pub figures: Option<serde_json::Value>,
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
    /// The first [`EXAMPLE_CHARS`] characters of the text, whitespace runs as one space.
    pub text: String,
}

/// The parts of `manifest.json` the report reads.
#[derive(Debug, Deserialize)]
struct Manifest {
    status: String,
    run_id: String,
    #[serde(default)]
    started_at: u64,
    #[serde(default)]
    seconds_total: f64,
    tool: ManifestTool,
    spec: serde_json::Value,
    #[serde(default)]
    partitions: Vec<ManifestPartition>,
    #[serde(default)]
    clusterings: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ManifestTool {
    version: String,
}

#[derive(Debug, Deserialize)]
struct ManifestPartition {
    key: String,
    #[serde(default)]
    files: Vec<ManifestFile>,
}

#[derive(Debug, Deserialize)]
struct ManifestFile {
    path: PathBuf,
}

/// Reads a run's outputs under `out` into a [`Report`].
pub fn load(out: &Path, options: &ReportOptions) -> Result<Report, ReportError> {
    let manifest_path = out.join("manifest.json");
    if !manifest_path.is_file() {
        return Err(ReportError::NotAnOutput {
            path: out.to_path_buf(),
            reason: "it has no manifest.json".into(),
        });
    }
    let manifest: Manifest = serde_json::from_str(&fs_err::read_to_string(&manifest_path)?)
        .map_err(|e| ReportError::Manifest {
            path: manifest_path.clone(),
            message: e.to_string(),
        })?;
    let spec = &manifest.spec;
    let merge_threshold = spec["cluster"]["merge_threshold"].as_f64();

    let all_keys = committed_keys(&out.join(Table::Centroids.name()))?;
    if all_keys.is_empty() {
        return Err(ReportError::NotAnOutput {
            path: out.to_path_buf(),
            reason: "no committed centroids".into(),
        });
    }
    let filter = PartitionFilter::parse(&options.partitions)?;
    let keys: Vec<&PartitionKey> = all_keys
        .iter()
        .filter(|key| filter.is_empty() || filter.matches(key) || is_global(key))
        .collect();
    if keys.is_empty() {
        return Err(ReportError::NoMatchingClustering {
            out: out.to_path_buf(),
            filter: options.partitions.clone(),
            available: all_keys.iter().map(key_name).collect(),
        });
    }
    let label_keys = committed_keys(&out.join(Table::Labels.name()))?;
    let texts = TextSource::new(&manifest, options);

    let mut clusterings = Vec::with_capacity(keys.len());
    for key in keys {
        let name = key_name(key);
        let figures = manifest
            .clusterings
            .iter()
            .find(|c| c["key"].as_str() == Some(name.as_str()))
            .cloned();
        let labels_of: Vec<&PartitionKey> = label_keys
            .iter()
            .filter(|k| is_global(key) || *k == key)
            .collect();
        let view = load_clustering(
            out,
            key,
            figures,
            merge_threshold,
            &labels_of,
            &texts,
            options.examples,
        )?;
        info!(
            key = name,
            n_clusters = view.clusters.len(),
            "loaded clustering"
        );
        clusterings.push(view);
    }
    Ok(Report {
        out: out.display().to_string(),
        run: RunInfo {
            run_id: manifest.run_id,
            status: manifest.status,
            tool_version: manifest.tool.version,
            started_at: manifest.started_at,
            seconds_total: manifest.seconds_total,
            spec: manifest.spec,
        },
        clusterings,
    })
}

/// The partitions under `table_dir` that hold a committed data file, sorted (one empty key
/// for an unpartitioned output).
fn committed_keys(table_dir: &Path) -> Result<Vec<PartitionKey>, ReportError> {
    if !table_dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut keys = Vec::new();
    for path in walk(table_dir)? {
        if path.file_name().is_some_and(|n| n == PART_FILE) {
            keys.push(parse_hive_path(table_dir, &path)?);
        }
    }
    keys.sort();
    Ok(keys)
}

/// A key in the manifest's form: its directory, `dt=2018-06-01` (empty when unpartitioned).
fn key_name(key: &PartitionKey) -> String {
    key.dir().display().to_string()
}

/// True for the key of a global clustering (`dt=__all__`).
fn is_global(key: &PartitionKey) -> bool {
    key.0.iter().any(|(_, v)| v == ALL_PARTITIONS)
}

/// Where example texts come from: the input files of each partition.
struct TextSource {
    root: Option<PathBuf>,
    id_column: String,
    text_column: String,
    /// Files per partition key, from the manifest.
    files: HashMap<String, Vec<PathBuf>>,
}

impl TextSource {
    fn new(manifest: &Manifest, options: &ReportOptions) -> Self {
        let input = &manifest.spec["input"];
        let column = |name: &str, default: &str| input[name].as_str().unwrap_or(default).to_owned();
        let root = options
            .input
            .clone()
            .or_else(|| input["path"].as_str().map(PathBuf::from));
        let files = if options.input.is_some() {
            HashMap::new()
        } else {
            manifest
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.key.clone(),
                        p.files.iter().map(|f| f.path.clone()).collect(),
                    )
                })
                .collect()
        };
        Self {
            root,
            id_column: column("id_column", "doc_id"),
            text_column: column("text_column", "text"),
            files,
        }
    }

    /// The input files of partition `key`: the manifest's list if it has one, otherwise those
    /// that [`Dataset::discover`] finds for the key under the input root.
    fn files_of(&self, key: &PartitionKey) -> Vec<PathBuf> {
        if let Some(files) = self.files.get(&key_name(key)) {
            return files.clone();
        }
        let Some(root) = &self.root else {
            return Vec::new();
        };
        let restriction: Vec<String> = key.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        PartitionFilter::parse(&restriction)
            .and_then(|filter| Dataset::discover(root, &filter, &self.id_column, &self.text_column))
            .map(|dataset| {
                dataset
                    .partitions
                    .into_iter()
                    .flat_map(|p| p.files.into_iter().map(|f| f.path))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Texts of the wanted ids found in partition `key`'s input. Missing files are logged
    /// and give no texts: the report is still useful without examples.
    fn texts(
        &self,
        key: &PartitionKey,
        wanted: &HashSet<&str>,
        into: &mut HashMap<String, String>,
    ) {
        let files = self.files_of(key);
        if files.is_empty() || files.iter().any(|f| !f.is_file()) {
            warn!(
                partition = %key,
                "input files not found; the report has no example documents for them (use --input)"
            );
            return;
        }
        let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        let what = format!("input partition `{key}`");
        match read_files(&paths, &what, &self.id_column, &self.text_column) {
            Ok(docs) => {
                for i in 0..docs.len() {
                    if docs.ids.is_null(i) || docs.texts.is_null(i) {
                        continue;
                    }
                    let id = docs.ids.value(i);
                    if wanted.contains(id) {
                        let text = snippet(docs.texts.value(i));
                        into.insert(id.to_owned(), text);
                    }
                }
            }
            Err(e) => warn!(partition = %key, error = %e, "cannot read example texts"),
        }
    }
}

/// Centroid weights of one clustering, long format.
struct CentroidRows {
    sizes: BTreeMap<i32, u64>,
    /// `(cluster, term, weight)`.
    entries: Vec<(i32, String, f32)>,
}

fn read_centroids(path: &Path) -> Result<CentroidRows, ReportError> {
    let mut rows = CentroidRows {
        sizes: BTreeMap::new(),
        entries: Vec::new(),
    };
    for batch in read_output(path, Table::Centroids)? {
        let cluster = column_i32(&batch, "cluster");
        let size = batch
            .column_by_name("size")
            .expect("checked")
            .as_primitive::<Int64Type>();
        let term = batch
            .column_by_name("term")
            .expect("checked")
            .as_string::<i32>();
        let weight = batch
            .column_by_name("weight")
            .expect("checked")
            .as_primitive::<Float32Type>();
        for i in 0..batch.num_rows() {
            let c = cluster.value(i);
            rows.sizes.insert(c, size.value(i).max(0) as u64);
            rows.entries
                .push((c, term.value(i).to_owned(), weight.value(i)));
        }
    }
    Ok(rows)
}

fn column_i32<'a>(batch: &'a RecordBatch, name: &str) -> &'a arrow::array::Int32Array {
    batch
        .column_by_name(name)
        .expect("checked by read_output")
        .as_primitive::<Int32Type>()
}

#[allow(clippy::too_many_arguments)]
fn load_clustering(
    out: &Path,
    key: &PartitionKey,
    figures: Option<serde_json::Value>,
    merge_threshold: Option<f64>,
    label_keys: &[&PartitionKey],
    texts: &TextSource,
    n_examples: usize,
) -> Result<ClusteringView, ReportError> {
    let centroids_path = Staging::committed_file(out, Table::Centroids, key);
    let centroids = read_centroids(&centroids_path)?;

    // k: the manifest's figure when present, else one past the largest cluster id seen.
    let from_figures = figures
        .as_ref()
        .and_then(|f| f["n_clusters"].as_u64())
        .map(|k| k as usize);
    let seen_max = centroids
        .sizes
        .keys()
        .next_back()
        .map(|&c| c as usize + 1)
        .unwrap_or(0);
    let k = from_figures.unwrap_or(0).max(seen_max);
    let inconsistent = |message: String| ReportError::Inconsistent {
        path: centroids_path.clone(),
        message,
    };
    if centroids.sizes.keys().any(|&c| c < 0) {
        return Err(inconsistent("negative cluster id".into()));
    }

    // p(w|c) per cluster and p(w), over the terms that appear in some centroid.
    let mut term_index: HashMap<&str, u32> = HashMap::new();
    let mut term_names: Vec<&str> = Vec::new();
    let mut per_cluster: Vec<Vec<(u32, f64)>> = vec![Vec::new(); k];
    for (c, term, w) in &centroids.entries {
        let id = *term_index.entry(term.as_str()).or_insert_with(|| {
            term_names.push(term.as_str());
            term_names.len() as u32 - 1
        });
        per_cluster[*c as usize].push((id, f64::from(*w).max(0.0)));
    }
    let mut sizes = vec![0u64; k];
    for (&c, &s) in &centroids.sizes {
        sizes[c as usize] = s;
    }
    let mut p_term = vec![0.0f64; term_names.len()];
    let total_size: u64 = sizes.iter().sum();
    for (c, entries) in per_cluster.iter_mut().enumerate() {
        let l1: f64 = entries.iter().map(|e| e.1).sum();
        if l1 > 0.0 {
            entries.iter_mut().for_each(|e| e.1 /= l1);
        } else {
            entries.clear();
        }
        for &(t, p) in entries.iter() {
            p_term[t as usize] += sizes[c] as f64 * p;
        }
    }
    if total_size > 0 {
        p_term.iter_mut().for_each(|p| *p /= total_size as f64);
    }

    // Candidate terms per cluster: the union of the top terms over the λ grid.
    let mut shown: Vec<Vec<(u32, f64)>> = Vec::with_capacity(k);
    let mut used: BTreeMap<u32, u32> = BTreeMap::new();
    for entries in &per_cluster {
        let candidates = relevance_candidates(entries, &p_term, TOP_TERMS, LAMBDA_STEP);
        for &(t, _) in &candidates {
            let next = used.len() as u32;
            used.entry(t).or_insert(next);
        }
        shown.push(candidates);
    }
    let mut terms = vec![String::new(); used.len()];
    let mut log_p_term = vec![0.0; used.len()];
    for (&t, &new) in &used {
        terms[new as usize] = term_names[t as usize].to_owned();
        log_p_term[new as usize] = round3(p_term[t as usize].ln());
    }

    // Similarity: the committed table, upper triangle.
    let mut sim = vec![0.0f64; k * k];
    for i in 0..k {
        sim[i * k + i] = if per_cluster[i].is_empty() { 0.0 } else { 1.0 };
    }
    for batch in read_output(
        &Staging::committed_file(out, Table::Similarity, key),
        Table::Similarity,
    )? {
        let a = column_i32(&batch, "cluster_a");
        let b = column_i32(&batch, "cluster_b");
        let cos = batch
            .column_by_name("cosine")
            .expect("checked")
            .as_primitive::<Float32Type>();
        for i in 0..batch.num_rows() {
            let (a, b) = (a.value(i), b.value(i));
            if a < 0 || b < 0 || a as usize >= k || b as usize >= k {
                return Err(inconsistent(format!(
                    "similarity pair ({a}, {b}) is outside the {k} clusters"
                )));
            }
            let v = f64::from(cos.value(i)).clamp(-1.0, 1.0);
            sim[a as usize * k + b as usize] = v;
            sim[b as usize * k + a as usize] = v;
        }
    }
    let mut similarity = Vec::with_capacity(k * k.saturating_sub(1) / 2);
    for a in 0..k {
        for b in a + 1..k {
            similarity.push((sim[a * k + b].max(0.0) * 1000.0).round() as u16);
        }
    }
    let mut distances: Vec<f64> = sim
        .iter()
        .map(|s| (2.0 * (1.0 - s)).max(0.0).sqrt())
        .collect();
    for i in 0..k {
        distances[i * k + i] = 0.0;
    }
    let coords = mds::classical_mds(&distances, k);
    let order = mds::similarity_order(&sim, k);

    // Keywords by rank.
    let mut keywords: Vec<Vec<(i32, String)>> = vec![Vec::new(); k];
    for batch in read_output(
        &Staging::committed_file(out, Table::Keywords, key),
        Table::Keywords,
    )? {
        let cluster = column_i32(&batch, "cluster");
        let rank = column_i32(&batch, "rank");
        let term = batch
            .column_by_name("term")
            .expect("checked")
            .as_string::<i32>();
        for i in 0..batch.num_rows() {
            let c = cluster.value(i);
            if c >= 0 && (c as usize) < k {
                keywords[c as usize].push((rank.value(i), term.value(i).to_owned()));
            }
        }
    }
    keywords.iter_mut().for_each(|kw| kw.sort());

    // Nearest documents per cluster, from the labels.
    let mut nearest: Vec<Vec<(f32, &PartitionKey, String)>> = vec![Vec::new(); k];
    if n_examples > 0 {
        for label_key in label_keys {
            for batch in read_output(
                &Staging::committed_file(out, Table::Labels, label_key),
                Table::Labels,
            )? {
                let ids = batch
                    .column_by_name("doc_id")
                    .expect("checked")
                    .as_string::<i32>();
                let cluster = column_i32(&batch, "cluster");
                let similarity = batch
                    .column_by_name("similarity")
                    .expect("checked")
                    .as_primitive::<Float32Type>();
                for i in 0..batch.num_rows() {
                    let c = cluster.value(i);
                    if c < 0 || c as usize >= k {
                        continue;
                    }
                    let (s, id) = (similarity.value(i), ids.value(i));
                    let list = &mut nearest[c as usize];
                    let beats_last = list
                        .last()
                        .is_none_or(|last| s > last.0 || (s == last.0 && id < last.2.as_str()));
                    if list.len() < n_examples || beats_last {
                        list.push((s, label_key, id.to_owned()));
                        list.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
                        list.truncate(n_examples);
                    }
                }
            }
        }
    }
    let mut wanted: BTreeMap<&PartitionKey, HashSet<&str>> = BTreeMap::new();
    for (_, label_key, id) in nearest.iter().flatten() {
        wanted.entry(label_key).or_default().insert(id.as_str());
    }
    let mut texts_by_id: HashMap<String, String> = HashMap::new();
    for (label_key, ids) in &wanted {
        texts.texts(label_key, ids, &mut texts_by_id);
    }

    let diagnostics = |c: usize, field: &str| {
        figures
            .as_ref()
            .and_then(|f| f["clusters"].as_array())
            .and_then(|rows| {
                rows.iter()
                    .find(|r| r["cluster"].as_u64() == Some(c as u64))
            })
            .and_then(|r| r[field].as_f64())
    };
    let clusters = (0..k)
        .map(|c| ClusterView {
            id: c as i32,
            size: sizes[c],
            x: round3(coords[c][0]),
            y: round3(coords[c][1]),
            keywords: keywords[c]
                .iter()
                .take(10)
                .map(|(_, t)| t.clone())
                .collect(),
            mean_similarity: diagnostics(c, "mean_similarity").map(round3),
            ambiguous_share: diagnostics(c, "ambiguous_share").map(round3),
            term_ids: shown[c].iter().map(|(t, _)| used[t]).collect(),
            log_p: shown[c].iter().map(|(_, p)| round3(p.ln())).collect(),
            examples: nearest[c]
                .iter()
                .filter_map(|(s, _, id)| {
                    texts_by_id.get(id).map(|text| Example {
                        doc_id: id.clone(),
                        similarity: *s,
                        text: text.clone(),
                    })
                })
                .collect(),
        })
        .collect();
    let figures = figures.map(|mut f| {
        if let Some(map) = f.as_object_mut() {
            map.remove("clusters");
            map.remove("objective");
        }
        f
    });
    Ok(ClusteringView {
        key: key_name(key),
        figures,
        merge_threshold,
        n_docs: total_size,
        clusters,
        terms,
        log_p_term,
        similarity,
        order,
        topics: TopicTerms {
            names: term_names.iter().map(|t| (*t).to_owned()).collect(),
            p_term,
            p_term_given_cluster: per_cluster,
            sizes,
        },
    })
}

/// The terms of one cluster (`(term, p(w|c))`, `p > 0`) that rank among the top `r` by
/// relevance for some λ in `0, step, 2·step, …, 1`; sorted by `p(w|c)` descending, ties by
/// term id.
pub(crate) fn relevance_candidates(
    entries: &[(u32, f64)],
    p_term: &[f64],
    r: usize,
    step: f64,
) -> Vec<(u32, f64)> {
    let mut chosen: HashSet<u32> = HashSet::new();
    let n_steps = (1.0 / step).round() as usize;
    let mut scored: Vec<(f64, u32)> = Vec::with_capacity(entries.len());
    for s in 0..=n_steps {
        let lambda = s as f64 / n_steps as f64;
        scored.clear();
        scored.extend(entries.iter().map(|&(t, p)| {
            let lift = p / p_term[t as usize];
            (lambda * p.ln() + (1.0 - lambda) * lift.ln(), t)
        }));
        let take = r.min(scored.len());
        if take == 0 {
            break;
        }
        let by_relevance = |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        scored.select_nth_unstable_by(take - 1, by_relevance);
        chosen.extend(scored[..take].iter().map(|e| e.1));
    }
    let mut out: Vec<(u32, f64)> = entries
        .iter()
        .copied()
        .filter(|e| chosen.contains(&e.0))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// The first [`EXAMPLE_CHARS`] characters of `text`, with each run of whitespace shown as
/// one space.
fn snippet(text: &str) -> String {
    text.split_whitespace()
        .flat_map(|word| std::iter::once(' ').chain(word.chars()))
        .skip(1)
        .take(EXAMPLE_CHARS)
        .collect()
}

fn round3(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_cover_the_top_terms_at_both_ends_of_the_slider() {
        // Term 0 is frequent everywhere, term 1 rare but concentrated here, term 2 in between.
        let p_term = [0.5, 0.01, 0.1, 0.3];
        let entries = [(0, 0.6), (1, 0.05), (2, 0.3), (3, 0.05)];
        let top1 = relevance_candidates(&entries, &p_term, 1, 0.5);
        let ids: Vec<u32> = top1.iter().map(|e| e.0).collect();
        // λ = 1 picks term 0 (largest p), λ = 0 term 1 (largest lift: 5), λ = 0.5 term 2
        // (log 0.3 · 0.5 + log 3 · 0.5 > both others).
        assert_eq!(ids, vec![0, 2, 1]);
        assert!(relevance_candidates(&[], &p_term, 3, 0.1).is_empty());
    }

    #[test]
    fn snippets_collapse_whitespace_and_count_characters() {
        assert_eq!(snippet("  a\n\n b\tc  "), "a b c");
        let long: String = "가".repeat(300);
        assert_eq!(snippet(&long).chars().count(), EXAMPLE_CHARS);
    }
}
