//! Keywords that explain a cluster: frequent in it (coverage), rarer elsewhere
//! (discriminative power).
//!
//! # Algorithm
//! For cluster c, `p` is c's centroid L1-normalised and `q` the size-weighted sum of the
//! other centroids, L1-normalised. The candidates are the `candidates` terms with the largest
//! `p` (coverage). Each gets `score = p / (p + q)` in [0, 1]; terms with `score >= min_score`
//! are kept and the `top_n` best by score are returned, ties broken by coverage then term.
//! An all-zero centroid has no keywords.
//!
//! This module works on term indices; the job maps them to strings.

use serde::{Deserialize, Serialize};

use crate::cluster::Centroids;

/// The `[keywords]` section. See the README for each key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeywordParams {
    /// Keywords written per cluster.
    pub top_n: usize,
    /// Terms with the largest coverage considered per cluster.
    pub candidates: usize,
    /// Smallest discriminative score kept.
    pub min_score: f64,
}

impl Default for KeywordParams {
    fn default() -> Self {
        Self {
            top_n: 30,
            candidates: 300,
            min_score: 0.5,
        }
    }
}

/// A rule of [`KeywordParams`] that a value breaks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeywordParamError {
    #[error("`keywords.top_n` must be at least 1")]
    TopN,
    #[error("`keywords.candidates` must be at least `keywords.top_n` ({top_n}), got {candidates}")]
    Candidates { top_n: usize, candidates: usize },
    #[error("`keywords.min_score` must be in [0, 1], got {0}")]
    MinScore(f64),
}

/// Checked keyword parameters; build with [`KeywordParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidKeywordParams {
    top_n: usize,
    candidates: usize,
    min_score: f32,
}

impl KeywordParams {
    /// Checks every rule, returning all the broken ones.
    pub fn check(&self) -> Result<ValidKeywordParams, Vec<KeywordParamError>> {
        let mut errors = Vec::new();
        if self.top_n < 1 {
            errors.push(KeywordParamError::TopN);
        }
        if self.candidates < self.top_n {
            errors.push(KeywordParamError::Candidates {
                top_n: self.top_n,
                candidates: self.candidates,
            });
        }
        if !(0.0..=1.0).contains(&self.min_score) {
            errors.push(KeywordParamError::MinScore(self.min_score));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ValidKeywordParams {
            top_n: self.top_n,
            candidates: self.candidates,
            min_score: self.min_score as f32,
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
    /// Discriminative power `p / (p + q)`, in [0, 1].
    pub score: f32,
    /// Share of the cluster's centroid mass on this term (`p`).
    pub coverage: f32,
}

/// The weights of cluster `c`'s non-zero terms L1-normalised (in the centroid's term order).
fn l1_normalized(centroids: &Centroids, c: usize) -> Vec<f64> {
    let values = centroids.row(c).values;
    let sum: f64 = values.iter().map(|&w| f64::from(w)).sum();
    if sum > 0.0 {
        values.iter().map(|&w| f64::from(w) / sum).collect()
    } else {
        vec![0.0; values.len()]
    }
}

/// Keywords of every cluster, cluster by cluster, best first.
///
/// Memory is the centroid non-zeros plus two dense rows of `n_terms`, whatever `k`.
pub fn keywords(centroids: &Centroids, sizes: &[u64], params: &ValidKeywordParams) -> Vec<Keyword> {
    let k = centroids.n_clusters();
    let n_terms = centroids.n_terms();
    let p: Vec<Vec<f64>> = (0..k).map(|c| l1_normalized(centroids, c)).collect();
    let mut total = vec![0.0f64; n_terms];
    for (c, (shares, &size)) in p.iter().zip(sizes).enumerate() {
        for (&j, &v) in centroids.row(c).indices.iter().zip(shares) {
            total[j as usize] += size as f64 * v;
        }
    }
    let mut dense = vec![0.0f64; n_terms];
    let mut out = Vec::new();
    for c in 0..k {
        let size = sizes[c] as f64;
        let (terms, shares) = (centroids.row(c).indices, &p[c]);
        for (&j, &v) in terms.iter().zip(shares) {
            dense[j as usize] = v;
        }
        let others_sum: f64 = total.iter().zip(&dense).map(|(t, v)| t - size * v).sum();
        for &j in terms {
            dense[j as usize] = 0.0;
        }
        let q = |j: usize, pj: f64| {
            if others_sum > 0.0 {
                ((total[j] - size * pj) / others_sum).max(0.0)
            } else {
                0.0
            }
        };
        let mut candidates: Vec<(usize, f64)> = terms
            .iter()
            .zip(shares)
            .filter(|&(_, &pj)| pj > 0.0)
            .map(|(&j, &pj)| (j as usize, pj))
            .collect();
        candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        candidates.truncate(params.candidates);
        let mut scored: Vec<(usize, f64, f64)> = candidates
            .into_iter()
            .map(|(j, pj)| (j, pj / (pj + q(j, pj)), pj))
            .filter(|&(_, score, _)| score >= f64::from(params.min_score))
            .collect();
        scored.sort_unstable_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(b.2.total_cmp(&a.2))
                .then(a.0.cmp(&b.0))
        });
        scored.truncate(params.top_n);
        out.extend(
            scored
                .into_iter()
                .enumerate()
                .map(|(i, (j, score, coverage))| Keyword {
                    cluster: c,
                    rank: i + 1,
                    term_idx: j,
                    score: score as f32,
                    coverage: coverage as f32,
                }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(top_n: usize, min_score: f64) -> ValidKeywordParams {
        KeywordParams {
            top_n,
            candidates: 10,
            min_score,
        }
        .check()
        .unwrap()
    }

    #[test]
    fn scores_match_the_formula() {
        // Cluster 0 = (0.8, 0.6, 0), cluster 1 = (0, 0.6, 0.8); sizes 1 and 3.
        let c = Centroids::from_rows(3, vec![0.8, 0.6, 0.0, 0.0, 0.6, 0.8]);
        let kw = keywords(&c, &[1, 3], &params(5, 0.0));
        let c0: Vec<&Keyword> = kw.iter().filter(|k| k.cluster == 0).collect();
        // p0 = (4/7, 3/7, 0); q0 = p1 = (0, 3/7, 4/7).
        assert_eq!(c0[0].term_idx, 0);
        assert!((c0[0].score - 1.0).abs() < 1e-6);
        assert!((c0[0].coverage - 4.0 / 7.0).abs() < 1e-6);
        assert_eq!(c0[1].term_idx, 1);
        assert!((c0[1].score - 0.5).abs() < 1e-6);
        assert_eq!(
            c0.len(),
            2,
            "a term absent from the cluster is never a keyword"
        );
    }

    #[test]
    fn min_score_filters_and_scores_stay_in_unit_interval() {
        let c = Centroids::from_rows(3, vec![0.8, 0.6, 0.0, 0.0, 0.6, 0.8]);
        let kw = keywords(&c, &[1, 3], &params(5, 0.6));
        assert!(kw.iter().all(|k| k.term_idx != 1));
        assert!(kw.iter().all(|k| (0.0..=1.0).contains(&k.score)));
        assert!(
            kw.iter()
                .all(|k| k.score.is_finite() && k.coverage.is_finite())
        );
    }

    #[test]
    fn all_zero_centroid_gives_no_keywords() {
        let c = Centroids::from_rows(2, vec![0.0, 0.0, 1.0, 0.0]);
        let kw = keywords(&c, &[0, 5], &params(5, 0.0));
        assert!(kw.iter().all(|k| k.cluster == 1));
        assert_eq!(kw.len(), 1);
    }

    #[test]
    fn ranks_start_at_one_and_respect_top_n() {
        let c = Centroids::from_rows(4, vec![0.5, 0.5, 0.5, 0.5]);
        let kw = keywords(&c, &[2], &params(2, 0.0));
        assert_eq!(kw.iter().map(|k| k.rank).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn each_param_rule_is_checked() {
        let bad = |p: KeywordParams| p.check().unwrap_err();
        assert_eq!(
            bad(KeywordParams {
                top_n: 0,
                ..KeywordParams::default()
            }),
            vec![KeywordParamError::TopN]
        );
        assert!(matches!(
            bad(KeywordParams {
                candidates: 5,
                ..KeywordParams::default()
            })[..],
            [KeywordParamError::Candidates { .. }]
        ));
        assert!(matches!(
            bad(KeywordParams {
                min_score: 2.0,
                ..KeywordParams::default()
            })[..],
            [KeywordParamError::MinScore(_)]
        ));
    }
}
