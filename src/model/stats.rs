//! The fit-time statistics a model keeps per cluster, and the drift of a new partition
//! against them.

use super::{FitCluster, QUANTILES};

/// The fit-time statistics of each of `k` clusters, from each fitted document's nearest
/// cluster (`-1`: no known term) and its similarity.
pub fn fit_clusters(k: usize, labels: &[i32], similarity: &[f32]) -> Vec<FitCluster> {
    let mut per: Vec<Vec<f32>> = vec![Vec::new(); k];
    for (&l, &s) in labels.iter().zip(similarity) {
        if l >= 0 {
            per[l as usize].push(s);
        }
    }
    let n_known: usize = per.iter().map(Vec::len).sum();
    per.into_iter()
        .enumerate()
        .map(|(c, mut sims)| {
            sims.sort_unstable_by(f32::total_cmp);
            let quantile = |q: f64| {
                if sims.is_empty() {
                    0.0
                } else {
                    // Nearest rank.
                    let rank = (q * sims.len() as f64).ceil().max(1.0) as usize;
                    sims[rank.min(sims.len()) - 1]
                }
            };
            let n = sims.len();
            FitCluster {
                cluster: c as i32,
                n_docs: n as u64,
                share: if n_known == 0 {
                    0.0
                } else {
                    n as f64 / n_known as f64
                },
                mean_similarity: if n == 0 {
                    0.0
                } else {
                    sims.iter().map(|&s| f64::from(s)).sum::<f64>() / n as f64
                },
                similarity_quantiles: QUANTILES.map(quantile),
            }
        })
        .collect()
}

/// Jensen-Shannon divergence (base 2, in [0, 1]) between two distributions of cluster shares.
pub fn js_divergence(p: &[f64], q: &[f64]) -> f64 {
    let kl = |a: &[f64], m: &[f64]| -> f64 {
        a.iter()
            .zip(m)
            .filter(|&(&x, _)| x > 0.0)
            .map(|(&x, &y)| x * (x / y).log2())
            .sum()
    };
    let m: Vec<f64> = p.iter().zip(q).map(|(a, b)| (a + b) / 2.0).collect();
    (0.5 * kl(p, &m) + 0.5 * kl(q, &m)).clamp(0.0, 1.0)
}
