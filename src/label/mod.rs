//! Keywords that explain a cluster: used by many of its documents (coverage) and by few
//! documents elsewhere (precision, the discriminative power).
//!
//! # Algorithm
//! For cluster `c` of size `n_c` and term `t`, let `df_c(t)` be the number of `c`'s documents
//! that contain `t` and `df(t)` the number of documents of the clustering that do:
//! - `coverage = df_c(t) / n_c`, the share of the cluster's documents that use the term;
//! - `precision = df_c(t) / df(t)`, the share of the term's documents that are in the cluster;
//! - `score = coverage^a · precision^(1-a)` with `a = coverage_weight` (0.5 by default: the
//!   geometric mean, so a term must have both).
//!
//! Terms in fewer than `min_df` documents of the clustering are left out (a name or a number
//! seen in three posts has perfect precision and says nothing), and so are terms the caller
//! rejects (the job rejects tokens made only of digits and punctuation, `text::is_numeric`). Each cluster keeps
//! its `top_n` best by score, ties by coverage, then by term id. Document frequencies are
//! counted from the final labels in one pass over the rows, one cluster per task, so nothing
//! depends on the thread count.
//!
//! This module works on term indices; the job maps them to strings.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::sparse::{self, Csr};

/// The `[keywords]` section. The field comments are the job-spec reference
/// (`docs/job-spec.md` is generated from them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeywordParams {
    /// Keywords written per cluster.
    pub top_n: usize,
    /// A keyword occurs in at least this many documents of the clustering.
    pub min_df: u32,
    /// Exponent `a` of coverage in the score below (precision gets `1 - a`).
    pub coverage_weight: f64,
    /// Label with whole words instead of the clustering's tokens. Unset means words with the
    /// `char_ngrams` tokeniser, whose n-grams are fragments of words (`자유한국당` rather than `한국당
    /// 국당 유한국 자유한`); with `word` they are the same. Global scope then keeps the texts until the
    /// keywords are chosen.
    pub words: Option<bool>,
}

impl Default for KeywordParams {
    fn default() -> Self {
        Self {
            top_n: 30,
            min_df: 5,
            coverage_weight: 0.5,
            words: None,
        }
    }
}

/// A rule of [`KeywordParams`] that a value breaks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeywordParamError {
    #[error("`keywords.top_n` must be at least 1")]
    TopN,
    #[error("`keywords.min_df` must be at least 1")]
    MinDf,
    #[error("`keywords.coverage_weight` must be in [0, 1], got {0}")]
    CoverageWeight(f64),
}

/// Checked keyword parameters; build with [`KeywordParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidKeywordParams {
    top_n: usize,
    min_df: u32,
    coverage_weight: f64,
}

impl KeywordParams {
    /// Checks every rule, returning all the broken ones.
    pub fn check(&self) -> Result<ValidKeywordParams, Vec<KeywordParamError>> {
        let mut errors = Vec::new();
        if self.top_n < 1 {
            errors.push(KeywordParamError::TopN);
        }
        if self.min_df < 1 {
            errors.push(KeywordParamError::MinDf);
        }
        if !(0.0..=1.0).contains(&self.coverage_weight) {
            errors.push(KeywordParamError::CoverageWeight(self.coverage_weight));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ValidKeywordParams {
            top_n: self.top_n,
            min_df: self.min_df,
            coverage_weight: self.coverage_weight,
        })
    }
}

/// One keyword of one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyword {
    pub cluster: usize,
    /// 1 for the best keyword of the cluster.
    pub rank: usize,
    pub term_idx: usize,
    /// `coverage^a · precision^(1-a)`, in [0, 1].
    pub score: f32,
    /// Share of the cluster's documents that contain the term.
    pub coverage: f32,
    /// Share of the term's documents that are in the cluster.
    pub precision: f32,
}

/// Keywords of every cluster of the rows of `x` labelled `labels` (`-1`: no cluster), cluster
/// by cluster, best first. `df` is each term's document frequency over `x`; `eligible` says
/// whether a term may be a keyword at all.
///
/// Memory: one `n_terms` counter per thread and the member lists, whatever `k`.
pub fn keywords(
    x: &Csr,
    labels: &[i32],
    k: usize,
    df: &[u32],
    eligible: impl Fn(usize) -> bool + Sync,
    params: &ValidKeywordParams,
) -> Vec<Keyword> {
    let n_terms = x.cols();
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); k];
    for (doc, &l) in labels.iter().enumerate() {
        if l >= 0 {
            members[l as usize].push(doc as u32);
        }
    }
    let a = params.coverage_weight;
    let per_cluster: Vec<Vec<Keyword>> = members
        .par_iter()
        .enumerate()
        .map_init(
            || (vec![0u32; n_terms], Vec::new()),
            |(count, touched), (c, docs)| {
                for &doc in docs {
                    for &j in sparse::row(x, doc as usize).indices {
                        if count[j as usize] == 0 {
                            touched.push(j);
                        }
                        count[j as usize] += 1;
                    }
                }
                let size = docs.len() as f64;
                let mut scored: Vec<(usize, f64, f64, f64)> = Vec::new();
                for &j in touched.iter() {
                    let j = j as usize;
                    let in_cluster = std::mem::take(&mut count[j]);
                    if df[j] < params.min_df || !eligible(j) {
                        continue;
                    }
                    let coverage = f64::from(in_cluster) / size;
                    let precision = f64::from(in_cluster) / f64::from(df[j]);
                    let score = coverage.powf(a) * precision.powf(1.0 - a);
                    scored.push((j, score, coverage, precision));
                }
                touched.clear();
                scored.sort_unstable_by(|p, q| {
                    q.1.total_cmp(&p.1)
                        .then(q.2.total_cmp(&p.2))
                        .then(p.0.cmp(&q.0))
                });
                scored.truncate(params.top_n);
                scored
                    .into_iter()
                    .enumerate()
                    .map(|(i, (j, score, coverage, precision))| Keyword {
                        cluster: c,
                        rank: i + 1,
                        term_idx: j,
                        score: score as f32,
                        coverage: coverage as f32,
                        precision: precision as f32,
                    })
                    .collect()
            },
        )
        .collect();
    per_cluster.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(top_n: usize, min_df: u32) -> ValidKeywordParams {
        KeywordParams {
            top_n,
            min_df,
            ..KeywordParams::default()
        }
        .check()
        .unwrap()
    }

    /// Six documents over four terms; rows are unit vectors of equal weights.
    /// Cluster 0: docs 0-2, cluster 1: docs 3-5.
    /// term 0 in docs 0, 1, 2, 3; term 1 in doc 0; term 2 in docs 3, 4, 5; term 3 in docs 0, 4.
    fn corpus() -> (Csr, Vec<i32>, Vec<u32>) {
        let rows: [&[u32]; 6] = [&[0, 1, 3], &[0], &[0], &[0, 2], &[2, 3], &[2]];
        let (mut indptr, mut indices, mut data) = (vec![0usize], Vec::new(), Vec::new());
        for r in rows {
            let w = 1.0 / (r.len() as f32).sqrt();
            indices.extend_from_slice(r);
            data.extend(std::iter::repeat_n(w, r.len()));
            indptr.push(indices.len());
        }
        let x = Csr::new((6, 4), indptr, indices, data);
        (x, vec![0, 0, 0, 1, 1, 1], vec![4, 1, 3, 2])
    }

    #[test]
    fn scores_are_the_geometric_mean_of_coverage_and_precision() {
        let (x, labels, df) = corpus();
        let kw = keywords(&x, &labels, 2, &df, |_| true, &params(5, 1));
        let c0: Vec<&Keyword> = kw.iter().filter(|k| k.cluster == 0).collect();
        // term 0: coverage 3/3, precision 3/4; term 1: 1/3, 1/1; term 3: 1/3, 1/2.
        assert_eq!(
            c0.iter().map(|k| k.term_idx).collect::<Vec<_>>(),
            vec![0, 1, 3]
        );
        assert!((c0[0].score - 0.75f32.sqrt()).abs() < 1e-6);
        assert!((c0[0].coverage - 1.0).abs() < 1e-6 && (c0[0].precision - 0.75).abs() < 1e-6);
        assert!((c0[1].score - (1.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert!((c0[2].score - (1.0f32 / 6.0).sqrt()).abs() < 1e-6);
        let c1: Vec<usize> = kw
            .iter()
            .filter(|k| k.cluster == 1)
            .map(|k| k.term_idx)
            .collect();
        // term 2: 3/3 and 3/3; then term 3 (1/3, 1/2) and term 0 (1/3, 1/4).
        assert_eq!(c1, vec![2, 3, 0]);
    }

    #[test]
    fn rare_and_rejected_terms_are_left_out_and_ranks_respect_top_n() {
        let (x, labels, df) = corpus();
        let kw = keywords(&x, &labels, 2, &df, |j| j != 2, &params(2, 2));
        assert!(kw.iter().all(|k| k.term_idx != 1), "df 1 < min_df 2");
        assert!(kw.iter().all(|k| k.term_idx != 2), "rejected by the caller");
        for c in 0..2 {
            let ranks: Vec<usize> = kw
                .iter()
                .filter(|k| k.cluster == c)
                .map(|k| k.rank)
                .collect();
            assert_eq!(ranks, vec![1, 2]);
        }
        assert!(kw.iter().all(|k| (0.0..=1.0).contains(&k.score)));
    }

    #[test]
    fn an_empty_cluster_has_no_keywords() {
        let (x, _, df) = corpus();
        let kw = keywords(&x, &[0, 0, 0, 0, 0, -1], 2, &df, |_| true, &params(5, 1));
        assert!(kw.iter().all(|k| k.cluster == 0));
    }

    #[test]
    fn each_param_rule_is_checked() {
        let bad = |p: KeywordParams| p.check().unwrap_err();
        let d = KeywordParams::default;
        assert_eq!(
            bad(KeywordParams { top_n: 0, ..d() }),
            vec![KeywordParamError::TopN]
        );
        assert_eq!(
            bad(KeywordParams { min_df: 0, ..d() }),
            vec![KeywordParamError::MinDf]
        );
        assert!(matches!(
            bad(KeywordParams {
                coverage_weight: 2.0,
                ..d()
            })[..],
            [KeywordParamError::CoverageWeight(_)]
        ));
    }
}
