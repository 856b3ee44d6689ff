//! Clustering: checked parameters, seed selection and spherical k-means.
//!
//! Input is a [`crate::sparse::Csr`] of unit-norm rows; output is a [`KMeansFit`] with labels,
//! unit-norm centroids and per-round diagnostics. Randomness comes only from the RNG the caller
//! passes in (the job derives it from the seed and the partition key), so a fit is a pure
//! function of its inputs. This module knows nothing of files, partitions or terms.

pub mod init;
pub mod kmeans;
pub mod merge;
pub mod params;

pub use init::InitReport;
pub use kmeans::{Centroids, KMeansFit, fit, refine, score_labels};
pub use merge::{MergeOutcome, Merged, merge, merge_fit};
pub use params::{ClusterParamError, ClusterParams, InitMethod, Scope, ValidClusterParams};

/// Pairwise cosine similarity of centroids, as `(a, b, cosine)` with `a < b`.
pub fn similarity_table(centroids: &Centroids) -> Vec<(i32, i32, f32)> {
    let k = centroids.n_clusters();
    let mut out = Vec::with_capacity(k * k.saturating_sub(1) / 2);
    for a in 0..k {
        for b in a + 1..k {
            out.push((a as i32, b as i32, centroids.cosine(a, b)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_table_lists_each_pair_once() {
        let c = Centroids::from_rows(2, vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8]);
        let t = similarity_table(&c);
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].0, t[0].1), (0, 1));
        assert!((t[1].2 - 0.6).abs() < 1e-6);
        assert!((t[2].2 - 0.8).abs() < 1e-6);
    }
}
