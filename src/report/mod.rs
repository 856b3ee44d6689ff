//! Seeing the clusters: a self-contained HTML report and a pyLDAvis export, built from a run's
//! committed outputs.
//!
//! [`load()`] reads what a run committed under `OUT` (centroids, keywords, similarities and
//! labels per clustering, plus `manifest.json`) and the input texts of the documents nearest
//! each centroid, into a [`Report`] ([`model`]). [`html::render`] turns a report into one HTML file with
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
pub mod load;
pub mod mds;
pub mod model;
pub mod pyldavis;

use std::collections::HashSet;
use std::path::PathBuf;

pub use load::load;
pub use model::{ClusterView, ClusteringView, Example, Report, RunInfo, TopicTerms};

use crate::io::{InputError, OutputError};
use crate::output::ManifestError;

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
    #[error(transparent)]
    Manifest(#[from] ManifestError),
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
    /// True when the user must fix the arguments or the output (a retry will not help).
    pub fn is_user_error(&self) -> bool {
        match self {
            ReportError::Io(_) | ReportError::Output(_) => false,
            ReportError::Input(e) => e.is_user_error(),
            ReportError::Manifest(e) => e.is_user_error(),
            ReportError::NotAnOutput { .. }
            | ReportError::NoMatchingClustering { .. }
            | ReportError::Inconsistent { .. }
            | ReportError::SeveralClusterings { .. } => true,
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
    /// Count each topic term's occurrences in the input (for the pyLDAvis export).
    pub term_counts: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            partitions: Vec::new(),
            input: None,
            examples: 3,
            term_counts: false,
        }
    }
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
pub(crate) fn snippet(text: &str) -> String {
    text.split_whitespace()
        .flat_map(|word| std::iter::once(' ').chain(word.chars()))
        .skip(1)
        .take(EXAMPLE_CHARS)
        .collect()
}

pub(crate) fn round3(v: f64) -> f64 {
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
