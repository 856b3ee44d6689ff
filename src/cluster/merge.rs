//! Over-cluster, then merge: join clusters whose centroids are close.
//!
//! k-means has a "uniform effect": clusters drift towards similar sizes, so small true
//! clusters get absorbed. Asking for a large k and merging close centroids afterwards keeps
//! them.
//!
//! # Algorithm
//! Clusters are visited from largest to smallest (ties by id). Each joins the existing group
//! whose member centroids have the largest average cosine with it, if that average is at least
//! `threshold`; otherwise it starts a new group. A group's centroid is the size-weighted mean
//! of its members' centroids, renormalised. Groups are numbered 0..m-1 by descending size
//! (ties by their first member's visiting order). Merging never increases the number of
//! clusters and preserves every document's membership.

use super::kmeans::{Centroids, KMeansFit, score_labels};
use crate::sparse::Csr;

/// The outcome of a merge.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// New cluster of each old cluster (`old → new`).
    pub mapping: Vec<i32>,
    /// Merged centroids, unit norm (or zero for groups of only empty clusters).
    pub centroids: Centroids,
    /// Members per new cluster.
    pub sizes: Vec<u64>,
}

/// Groups the clusters of `centroids` (with `sizes`) whose average cosine is at least
/// `threshold`.
pub fn merge(centroids: &Centroids, sizes: &[u64], threshold: f32) -> Merged {
    let k = centroids.n_clusters();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &c in &order {
        let best = groups
            .iter()
            .enumerate()
            .map(|(g, members)| {
                let sum: f32 = members.iter().map(|&m| centroids.cosine(c, m)).sum();
                (g, sum / members.len() as f32)
            })
            .fold(None, |best: Option<(usize, f32)>, (g, avg)| match best {
                Some((_, b)) if b >= avg => best,
                _ => Some((g, avg)),
            });
        match best {
            Some((g, avg)) if avg >= threshold => groups[g].push(c),
            _ => groups.push(vec![c]),
        }
    }
    let group_size = |g: &Vec<usize>| g.iter().map(|&c| sizes[c]).sum::<u64>();
    let mut numbered: Vec<usize> = (0..groups.len()).collect();
    numbered.sort_by(|&a, &b| {
        group_size(&groups[b])
            .cmp(&group_size(&groups[a]))
            .then(a.cmp(&b))
    });

    let n_terms = centroids.n_terms();
    let mut mapping = vec![-1i32; k];
    let mut weights = vec![0.0f32; numbered.len() * n_terms];
    let mut new_sizes = Vec::with_capacity(numbered.len());
    for (new, &g) in numbered.iter().enumerate() {
        let row = &mut weights[new * n_terms..(new + 1) * n_terms];
        for &c in &groups[g] {
            mapping[c] = new as i32;
            let w = sizes[c] as f32;
            for (acc, &v) in row.iter_mut().zip(centroids.row(c)) {
                *acc += w * v;
            }
        }
        crate::sparse::normalize(row);
        new_sizes.push(group_size(&groups[g]));
    }
    Merged {
        mapping,
        centroids: Centroids::from_rows(n_terms, weights),
        sizes: new_sizes,
    }
}

/// Merges the clusters of `fit` (fitted on `x`): labels follow the mapping and similarities
/// are recomputed against the merged centroids. Returns the new fit and the `old → new`
/// mapping.
pub fn merge_fit(x: &Csr, fit: KMeansFit, threshold: f32) -> (KMeansFit, Vec<i32>) {
    let merged = merge(&fit.centroids, &fit.sizes, threshold);
    let labels: Vec<i32> = fit
        .labels
        .iter()
        .map(|&l| if l < 0 { l } else { merged.mapping[l as usize] })
        .collect();
    let (similarity, second_similarity) = score_labels(x, &merged.centroids, &labels);
    let fit = KMeansFit {
        labels,
        similarity,
        second_similarity,
        n_clusters: merged.sizes.len(),
        centroids: merged.centroids,
        sizes: merged.sizes,
        ..fit
    };
    (fit, merged.mapping)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = crate::sparse::l2_norm(v);
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn close_clusters_merge_and_labels_follow_size() {
        // Clusters 0 and 2 point the same way; 1 is orthogonal.
        let rows = [
            unit(&[1.0, 0.1, 0.0]),
            unit(&[0.0, 0.0, 1.0]),
            unit(&[1.0, 0.0, 0.0]),
        ];
        let c = Centroids::from_rows(3, rows.concat());
        let m = merge(&c, &[2, 5, 4], 0.9);
        assert_eq!(m.sizes, vec![6, 5]);
        assert_eq!(m.mapping, vec![0, 1, 0]);
        assert!((crate::sparse::l2_norm(m.centroids.row(0)) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_threshold_of_one_keeps_distinct_clusters() {
        let c = Centroids::from_rows(2, vec![1.0, 0.0, 0.0, 1.0]);
        let m = merge(&c, &[1, 3], 1.0);
        assert_eq!(m.mapping, vec![1, 0]);
        assert_eq!(m.sizes, vec![3, 1]);
    }

    proptest::proptest! {
        #[test]
        fn merging_never_adds_clusters_and_preserves_sizes(
            raw in proptest::collection::vec((proptest::collection::vec(0.0f32..1.0, 4), 0u64..50), 1..12),
            threshold in 0.05f32..1.0,
        ) {
            let rows: Vec<f32> = raw.iter().flat_map(|(r, _)| {
                let mut r = r.clone();
                crate::sparse::normalize(&mut r);
                r
            }).collect();
            let sizes: Vec<u64> = raw.iter().map(|(_, s)| *s).collect();
            let c = Centroids::from_rows(4, rows);
            let m = merge(&c, &sizes, threshold);
            let n_new = m.sizes.len();
            proptest::prop_assert!(n_new <= sizes.len());
            proptest::prop_assert_eq!(m.sizes.iter().sum::<u64>(), sizes.iter().sum::<u64>());
            // Labels are contiguous 0..m-1, every new cluster is used, sizes descend.
            let mut used: Vec<i32> = m.mapping.clone();
            used.sort_unstable();
            used.dedup();
            proptest::prop_assert_eq!(used, (0..n_new as i32).collect::<Vec<_>>());
            proptest::prop_assert!(m.sizes.windows(2).all(|w| w[0] >= w[1]));
            for (old, &new) in m.mapping.iter().enumerate() {
                proptest::prop_assert!(sizes[old] <= m.sizes[new as usize]);
            }
        }
    }
}
