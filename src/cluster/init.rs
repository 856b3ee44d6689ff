//! Choosing the first centroids: `random`, `kmeans++` and `similar_cut`.
//!
//! Every method returns the indices of k distinct non-empty documents; their rows become the
//! first centroids. Documents are unit-norm, so a dot product is a cosine.
//!
//! # Algorithm
//! - `random`: k documents drawn uniformly without replacement.
//! - `kmeans++`: the first seed uniform; each next seed drawn with probability proportional to
//!   `(1 - max cos to the seeds so far)²`.
//! - `similar_cut` (the 2018 talk): draw a pool of `alpha · k` candidates without replacement;
//!   repeatedly pick a random candidate as a seed and remove every candidate whose cosine to it
//!   is at least `max_similar`. If the pool empties first, the remaining seeds are random
//!   documents that are not seeds yet, and their number is reported. Cost
//!   O(alpha · k² · mean nnz), independent of the number of documents. Unlike the Python
//!   original, it compares cosines (not raw dot products) and never leaves a seed unset.
//!
//! # Parallelism
//! `kmeans++` updates the per-document distances in parallel; each value depends only on its
//! own document, and the weighted draw is sequential, so the result does not depend on the
//! thread count.

use rand::RngExt;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::params::InitMethod;
use crate::sparse::{self, Csr};

/// What the initialisation did, for the manifest.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InitReport {
    /// The method used.
    pub method: InitMethod,
    /// `similar_cut` only: seeds filled with random documents after the pool ran out.
    pub n_filled: usize,
}

/// Picks `k` distinct seeds among `candidates` (indices of non-empty rows of `x`).
///
/// `k` must not exceed `candidates.len()`.
pub fn choose_seeds(
    x: &Csr,
    candidates: &[usize],
    k: usize,
    method: InitMethod,
    alpha: f64,
    max_similar: f32,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, InitReport) {
    assert!(k <= candidates.len(), "k exceeds the number of candidates");
    let (seeds, n_filled) = match method {
        _ if k == 0 => (Vec::new(), 0),
        InitMethod::Random => (random(candidates, k, rng), 0),
        InitMethod::KMeansPlusPlus => (kmeans_plus_plus(x, candidates, k, rng), 0),
        InitMethod::SimilarCut => similar_cut(x, candidates, k, alpha, max_similar, rng),
    };
    (seeds, InitReport { method, n_filled })
}

fn random(candidates: &[usize], k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    index::sample(rng, candidates.len(), k)
        .into_iter()
        .map(|i| candidates[i])
        .collect()
}

fn kmeans_plus_plus(x: &Csr, candidates: &[usize], k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut seeds = Vec::with_capacity(k);
    let mut chosen = vec![false; candidates.len()];
    let first = rng.random_range(0..candidates.len());
    chosen[first] = true;
    seeds.push(candidates[first]);
    let mut best_sim = vec![f32::NEG_INFINITY; candidates.len()];
    let mut dense = vec![0.0f32; x.cols()];
    while seeds.len() < k {
        let last = sparse::row(x, *seeds.last().expect("one seed exists"));
        last.add_to_dense(&mut dense, 1.0);
        best_sim
            .par_iter_mut()
            .zip(candidates.par_iter())
            .for_each(|(best, &doc)| {
                let s = sparse::row(x, doc).dot_dense(&dense);
                if s > *best {
                    *best = s;
                }
            });
        last.add_to_dense(&mut dense, -1.0);
        for &j in last.indices {
            dense[j as usize] = 0.0;
        }
        let weights: Vec<f64> = best_sim
            .iter()
            .zip(&chosen)
            .map(|(&s, &c)| {
                if c {
                    0.0
                } else {
                    let d = f64::from((1.0 - s).max(0.0));
                    d * d
                }
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let pick = if total > 0.0 {
            let mut target = rng.random::<f64>() * total;
            let mut pick = None;
            for (i, &w) in weights.iter().enumerate() {
                if w > 0.0 {
                    pick = Some(i);
                    if target < w {
                        break;
                    }
                    target -= w;
                }
            }
            pick.expect("a positive weight exists")
        } else {
            // Every remaining candidate duplicates a seed: draw uniformly among the unchosen.
            let unchosen: Vec<usize> = (0..candidates.len()).filter(|&i| !chosen[i]).collect();
            unchosen[rng.random_range(0..unchosen.len())]
        };
        chosen[pick] = true;
        seeds.push(candidates[pick]);
    }
    seeds
}

fn similar_cut(
    x: &Csr,
    candidates: &[usize],
    k: usize,
    alpha: f64,
    max_similar: f32,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, usize) {
    let pool_size = ((alpha * k as f64).ceil() as usize).clamp(k, candidates.len());
    let mut pool: Vec<usize> = index::sample(rng, candidates.len(), pool_size)
        .into_iter()
        .map(|i| candidates[i])
        .collect();
    let mut seeds = Vec::with_capacity(k);
    // The chosen seed is scattered into a dense vector so each candidate's cosine is a
    // branch-free gather over its own non-zeros.
    let mut dense = vec![0.0f32; x.cols()];
    while seeds.len() < k && !pool.is_empty() {
        let seed = pool.swap_remove(rng.random_range(0..pool.len()));
        let seed_row = sparse::row(x, seed);
        seed_row.add_to_dense(&mut dense, 1.0);
        // `retain` keeps the pool order, so later draws do not depend on evaluation order.
        pool.retain(|&doc| sparse::row(x, doc).dot_dense(&dense) < max_similar);
        for &j in seed_row.indices {
            dense[j as usize] = 0.0;
        }
        seeds.push(seed);
    }
    let n_filled = k - seeds.len();
    if n_filled > 0 {
        let mut is_seed = vec![false; x.rows()];
        for &s in &seeds {
            is_seed[s] = true;
        }
        let rest: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&d| !is_seed[d])
            .collect();
        seeds.extend(
            index::sample(rng, rest.len(), n_filled)
                .into_iter()
                .map(|i| rest[i]),
        );
    }
    (seeds, n_filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// `n` unit rows over `dims` columns; row i has weight on columns i % dims and (i+1) % dims.
    fn rows(n: usize, dims: usize) -> Csr {
        let mut indptr = vec![0];
        let mut indices = Vec::new();
        let mut data = Vec::new();
        for i in 0..n {
            let (a, b) = (i % dims, (i + 1) % dims);
            let (lo, hi) = (a.min(b) as u32, a.max(b) as u32);
            indices.extend([lo, hi]);
            data.extend([std::f32::consts::FRAC_1_SQRT_2; 2]);
            indptr.push(indices.len());
        }
        Csr::new((n, dims), indptr, indices, data)
    }

    fn distinct(seeds: &[usize]) -> bool {
        let mut s = seeds.to_vec();
        s.sort_unstable();
        s.dedup();
        s.len() == seeds.len()
    }

    #[test]
    fn every_method_gives_k_distinct_candidates() {
        let x = rows(50, 20);
        let candidates: Vec<usize> = (0..50).filter(|i| i % 3 != 0).collect();
        for method in [
            InitMethod::Random,
            InitMethod::KMeansPlusPlus,
            InitMethod::SimilarCut,
        ] {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let (seeds, _) = choose_seeds(&x, &candidates, 10, method, 3.0, 0.5, &mut rng);
            assert_eq!(seeds.len(), 10, "{method:?}");
            assert!(distinct(&seeds), "{method:?}");
            assert!(seeds.iter().all(|s| candidates.contains(s)), "{method:?}");
        }
    }

    #[test]
    fn no_candidates_give_no_seeds() {
        let x = rows(3, 4);
        for method in [
            InitMethod::Random,
            InitMethod::KMeansPlusPlus,
            InitMethod::SimilarCut,
        ] {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let (seeds, _) = choose_seeds(&x, &[], 0, method, 3.0, 0.5, &mut rng);
            assert!(seeds.is_empty(), "{method:?}");
        }
    }

    #[test]
    fn similar_cut_seeds_are_dissimilar_when_the_pool_allows() {
        let x = rows(200, 100);
        let candidates: Vec<usize> = (0..200).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (seeds, report) = choose_seeds(
            &x,
            &candidates,
            5,
            InitMethod::SimilarCut,
            3.0,
            0.5,
            &mut rng,
        );
        assert_eq!(report.n_filled, 0);
        for (i, &a) in seeds.iter().enumerate() {
            for &b in &seeds[i + 1..] {
                let cos = sparse::row(&x, a).dot_sparse(&sparse::row(&x, b));
                assert!(cos < 0.5, "seeds {a} and {b} have cosine {cos}");
            }
        }
    }

    #[test]
    fn similar_cut_fills_up_and_counts_when_the_pool_runs_out() {
        // Ten identical documents: the first pick removes the whole pool.
        let x = Csr::new((10, 1), (0..=10).collect(), vec![0; 10], vec![1.0; 10]);
        let candidates: Vec<usize> = (0..10).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (seeds, report) = choose_seeds(
            &x,
            &candidates,
            4,
            InitMethod::SimilarCut,
            2.0,
            0.5,
            &mut rng,
        );
        assert_eq!(seeds.len(), 4);
        assert!(distinct(&seeds));
        assert_eq!(report.n_filled, 3);
    }

    #[test]
    fn kmeans_plus_plus_avoids_duplicates_of_chosen_seeds() {
        // Two groups of identical rows: the second seed must come from the other group.
        let x = Csr::new(
            (6, 2),
            (0..=6).collect(),
            vec![0, 0, 0, 1, 1, 1],
            vec![1.0; 6],
        );
        let candidates: Vec<usize> = (0..6).collect();
        for seed in 0..10 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (seeds, _) = choose_seeds(
                &x,
                &candidates,
                2,
                InitMethod::KMeansPlusPlus,
                3.0,
                0.5,
                &mut rng,
            );
            assert_ne!(seeds[0] / 3, seeds[1] / 3, "seed {seed}: {seeds:?}");
        }
    }
}
