//! Scoring documents against centroids, and assignment: the SIMD heart of k-means.
//!
//! - [`layout`]: the centroids laid out term by term for scoring ([`layout::Scorer`]): dense
//!   rows for the terms many clusters use, posting lists for the rest, with a document's
//!   scores held in AVX2 registers when k ≤ 32 (and the dense-row part of them when k ≤ 104);
//! - [`fixed`]: the two nearest centroids of each document against fixed centroids
//!   ([`NearestCentroids`]), and scores for given labels;
//! - [`round`]: a k-means round's assignment, optionally skipping documents by their bounds;
//! - [`simd`]: the only `unsafe` code, the AVX2 dispatch and prefetch hints.
//!
//! # Safety and equivalence
//! The AVX2 path compiles the same Rust as the portable one with AVX2 enabled, and no fused
//! multiply-add: every score is computed by the same operations in the same order, so the two
//! give the same bits (checked by `avx2_and_portable_builds_agree_bit_for_bit`).
//!
//! # Parallelism
//! Chunks of [`ASSIGN_CHUNK`] documents are fixed, and per-chunk sums are combined in chunk
//! order, so results do not depend on the thread count.

/// Documents per assignment task. Fixed, so sums do not depend on the thread count.
pub(in crate::cluster) const ASSIGN_CHUNK: usize = 256;

/// inner loop has no remainder and vectorises (8 × f32 is one AVX register).
pub(super) const LANES: usize = 8;

/// A term is stored densely for scoring when at least `k / DENSE_SHARE` clusters use it.
pub(super) const DENSE_SHARE: usize = 8;

/// Up to this many blocks of [`LANES`] clusters (k ≤ 32), every term any centroid uses is
/// stored densely and a document's scores stay in registers while its terms are summed.
pub(super) const REGISTER_BLOCKS: usize = 4;

/// Up to this many blocks (k ≤ 104), the k > 32 layout sums its dense rows in registers: 13
/// AVX registers of accumulators leave three for the term's weight and products.
pub(super) const HYBRID_REGISTER_BLOCKS: usize = 13;

/// Runs `$body` with the const `$b` set to `$blocks` when it is at most
/// [`HYBRID_REGISTER_BLOCKS`], else to 0 (scores summed in memory).
macro_rules! with_blocks {
    ($blocks:expr, $b:ident => $body:expr) => {
        with_blocks!(@ $blocks, $b, $body, 1 2 3 4 5 6 7 8 9 10 11 12 13)
    };
    (@ $blocks:expr, $b:ident, $body:expr, $($n:literal)*) => {
        match $blocks {
            $($n => {
                const $b: usize = $n;
                $body
            })*
            _ => {
                const $b: usize = 0;
                $body
            }
        }
    };
}
const _: () = assert!(HYBRID_REGISTER_BLOCKS == 13, "with_blocks! lists 1..=13");

mod fixed;
mod layout;
mod round;
mod simd;

pub(in crate::cluster) use fixed::rescore;
pub use fixed::{Nearest, NearestCentroids, nearest, score_labels};
pub(in crate::cluster) use round::{assign, assign_scored};
pub(in crate::cluster) use simd::prefetch;

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::fixed::{NearestChunk, nearest_chunk};
    use super::layout::Scorer;
    use super::round::{AssignChunk, assign_chunk};
    use super::*;
    use crate::cluster::centroids::Centroids;
    use crate::sparse::{self, Csr};

    /// `k` centroids over `n_terms` terms, each weight present with probability `density`.
    fn random_centroids(n_terms: usize, k: usize, density: f64, seed: u64) -> Centroids {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rows: Vec<f32> = (0..k * n_terms)
            .map(|_| {
                if rng.random_bool(density) {
                    rng.random_range(0.01f32..1.0)
                } else {
                    0.0
                }
            })
            .collect();
        Centroids::from_rows(n_terms, rows)
    }

    #[test]
    fn nearest_gives_the_best_and_the_runner_up_with_ties_to_the_lowest_id() {
        let c = Centroids::from_rows(3, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.6, 0.8, 0.0]);
        let x = Csr::new(
            (4, 3),
            vec![0, 1, 2, 4, 4],
            vec![0, 1, 0, 1],
            vec![1.0, 1.0, 0.6, 0.8],
        );
        let n = nearest(&x, &c);
        assert_eq!(n.labels, [0, 1, 2, -1]);
        assert_eq!(n.second, [2, 2, 1, -1]);
        assert!((n.similarity[2] - 1.0).abs() < 1e-6);
        assert!((n.second_similarity[0] - 0.6).abs() < 1e-6);
        assert_eq!(n.second_similarity[3], 0.0);
        // One centroid: no runner-up.
        let one = nearest(&x, &Centroids::from_rows(3, vec![1.0, 0.0, 0.0]));
        assert_eq!((one.labels[1], one.second[1]), (0, -1));
    }

    proptest::proptest! {
        /// Every score equals the dot product summed in term order: bit for bit where the
        /// scores are summed term by term (k ≤ 32, and k > 104), and to a few rounding steps
        /// where the dense rows and the postings are summed apart (32 < k ≤ 104).
        #[test]
        fn scorer_matches_the_sequential_dot_product(
            x in crate::sparse::testing::random_unit_rows(),
            k in 1usize..120,
            density in 0.05f64..1.0,
            seed in 0u64..1000,
        ) {
            let centroids = random_centroids(x.cols(), k, density, seed);
            let scorer = Scorer::new(&centroids);
            let mut scores = scorer.scores();
            for i in 0..x.rows() {
                let row = sparse::row(&x, i);
                scorer.score(row, &mut scores);
                for c in 0..k {
                    let dense = centroids.dense_row(c);
                    let (mut expected, mut magnitude) = (0.0f32, 0.0f32);
                    for (&j, &v) in row.indices.iter().zip(row.values) {
                        expected += v * dense[j as usize];
                        magnitude += (v * dense[j as usize]).abs();
                    }
                    let got = scores.as_flattened()[c];
                    if scorer.blocks <= REGISTER_BLOCKS || scorer.blocks > HYBRID_REGISTER_BLOCKS {
                        proptest::prop_assert_eq!(got.to_bits(), expected.to_bits());
                    } else {
                        let bound = 2.0 * row.nnz() as f32 * f32::EPSILON * magnitude;
                        proptest::prop_assert!((got - expected).abs() <= bound, "{got} vs {expected}");
                    }
                }
            }
        }
    }

    proptest::proptest! {
        /// The AVX2 build of the assignment loop gives the same labels, similarities and
        /// second-best similarities, bit for bit, as the portable build, for every layout
        /// (k ≤ 32 in registers, 32 < k ≤ 104 hybrid, k > 104 in memory).
        #[test]
        #[cfg(target_arch = "x86_64")]
        fn avx2_and_portable_builds_agree_bit_for_bit(
            x in crate::sparse::testing::random_unit_rows(),
            k in 1usize..120,
            density in 0.05f64..1.0,
            seed in 0u64..1000,
        ) {
            if !std::is_x86_feature_detected!("avx2") {
                return Ok(());
            }
            let centroids = random_centroids(x.cols(), k, density, seed);
            let scorer = Scorer::new(&centroids);
            let n = x.rows();
            let run = |avx2: bool| {
                let (mut labels, mut sims, mut seconds) = (vec![-1i32; n], vec![0f32; n], vec![0f32; n]);
                let chunk = AssignChunk {
                    first_doc: 0,
                    labels: &mut labels,
                    sims: &mut sims,
                    seconds: &mut seconds,
                    bounds: None,
                };
                let assigned = with_blocks!(scorer.blocks, B => {
                    let task = assign_chunk::<B, false>(&x, &scorer, chunk);
                    if avx2 { simd::avx2(task).expect("AVX2 was detected") } else { simd::portable(task) }
                });
                let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
                (labels, bits(&sims), bits(&seconds), assigned.moves, assigned.n_scored)
            };
            proptest::prop_assert_eq!(run(true), run(false));
            // The same for `nearest`, whose runner-up is a cluster as well as a score.
            let run_nearest = |avx2: bool| {
                let (mut labels, mut sims) = (vec![-1i32; n], vec![0f32; n]);
                let (mut seconds, mut second_sims) = (vec![-1i32; n], vec![0f32; n]);
                let chunk = NearestChunk {
                    first_doc: 0,
                    labels: &mut labels,
                    sims: &mut sims,
                    seconds: &mut seconds,
                    second_sims: &mut second_sims,
                };
                with_blocks!(scorer.blocks, B => {
                    let task = nearest_chunk::<B>(&x, &scorer, chunk);
                    if avx2 { simd::avx2(task).expect("AVX2 was detected") } else { simd::portable(task) }
                });
                let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
                (labels, bits(&sims), seconds, bits(&second_sims))
            };
            proptest::prop_assert_eq!(run_nearest(true), run_nearest(false));
        }
    }
}
