//! Spherical k-means over unit-norm sparse rows.
//!
//! # Algorithm
//! Documents and centroids are unit vectors, so similarity is the dot product (cosine).
//! After initialisation ([`super::init`]) every round is:
//! 1. **Update**: each centroid is the L2-normalised sum of its members. With pruning on,
//!    entries whose squared weight is below `centroid_min_df_factor / size` are zeroed (for
//!    clusters larger than one document) and the centroid is renormalised.
//! 2. **Assign**: each document goes to the centroid with the largest cosine (ties go to the
//!    lowest cluster id).
//!
//! The objective recorded per round is `Σ_c ⟨member sum of c, centroid c⟩` after the update:
//! the documents' summed cosines to their new centroids.
//!
//! With `n_init` starts, the starts are screened in stages ([`SCREEN`]): all of them run 3
//! rounds, the 3 with the largest summed cosine after their last assignment run on to round
//! 5, and only the best of those runs on to convergence.
//!
//! # Cheap late rounds
//! Screening rounds move many documents and sum centroids in f32 from their members. The
//! rounds after screening sum exactly ([`super::sums`]): each cluster's member sum is kept
//! and corrected by the documents that joined and left, and only clusters whose membership
//! changed get a new centroid. Assignment keeps cosine bounds per document
//! ([`super::bounds`]) and skips the documents that cannot change cluster; their similarities
//! are brought up to date before they are read (re-seeding, the end of the fit). Neither
//! changes a bit of the result (`bounds_and_kept_sums_change_no_bit`).
//!
//! # Convergence diagnostics
//! Documents that join or leave a cluster after round [`SETTLED_AFTER`] are counted per
//! cluster; a cluster whose count exceeds [`UNSETTLED_SHARE`] of its size is unsettled (the
//! talk's diagnostic: a fit that has not converged by round 10 is ambiguous or showing the
//! uniform effect).
//!
//! The first assignment follows the initialisation. A cluster left empty by an assignment is
//! re-seeded with the document farthest from its own centroid (lowest cosine), taken from a
//! cluster with more than one member. Rounds stop after `max_iter`, or once the fraction of
//! documents that changed cluster is at most `tol`. The labels returned come from the last
//! assignment, so every document sits with its nearest final centroid.
//!
//! Rows with no terms are not clustered: their label is `-1` and their similarity 0.
//!
//! # Parallelism
//! Scoring and assignment live in [`super::scorer`] (fixed document chunks, sums combined in
//! chunk order). The update runs one cluster per task, summing its members in document order.
//! Results are bit-identical for any `--threads`.
//!
//! # References
//! Dhillon & Modha, "Concept decompositions for large sparse text data using clustering",
//! Machine Learning 42 (2001). Kim, "Fast initialisation and sparse centroids for spherical
//! k-means" (talk, 2018).

use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

mod rounds;
mod starts;

pub use rounds::cluster_sizes;
use rounds::{Summing, rounds};
use starts::{SCREEN, Start, assigned_objective, start};

use super::centroids::Centroids;
use super::init::{self, InitReport};
use super::params::ValidClusterParams;
use crate::sparse::{self, Csr};

/// The result of one k-means fit.
#[derive(Debug, Clone)]
pub struct KMeansFit {
    /// Cluster per document; `-1` for documents with no terms.
    pub labels: Vec<i32>,
    /// Cosine of each document to its centroid; 0 for unlabelled documents.
    pub similarity: Vec<f32>,
    /// Second-largest cosine of each document (0 when there is one cluster or no terms).
    pub second_similarity: Vec<f32>,
    /// Final centroids, unit norm (or all zero for an empty cluster that never got a member).
    pub centroids: Centroids,
    /// Members per cluster, from `labels`.
    pub sizes: Vec<u64>,
    /// Rounds run.
    pub n_iter: usize,
    /// Whether the last round moved at most `tol` of the documents (else `max_iter` stopped it).
    pub converged: bool,
    /// After each round's update: the sum over documents of their cosine to their cluster's
    /// new centroid (`Σ_c ⟨member sum of c, centroid c⟩`).
    pub objective: Vec<f64>,
    /// Documents scored in each round's assignment; the others were skipped by their bounds.
    pub n_scored: Vec<u64>,
    /// Per cluster, documents that joined it in rounds after [`SETTLED_AFTER`].
    pub late_joined: Vec<u64>,
    /// Per cluster, documents that left it in rounds after [`SETTLED_AFTER`].
    pub late_left: Vec<u64>,
    /// Per round of the last [`FINAL_ROUNDS`] (oldest first), per cluster, the documents that
    /// joined or left it: what [`KMeansFit::unsettled`] judges a cluster by.
    pub recent_moves: Vec<Vec<u64>>,
    /// The k actually used: the requested k capped at the number of non-empty documents.
    pub n_clusters: usize,
    /// Empty clusters re-seeded over all rounds.
    pub n_reseeded: usize,
    /// What the initialisation did.
    pub init: InitReport,
}

/// Runs spherical k-means on the unit-norm rows of `x`, drawing randomness from `rng`. The
/// `n_init` starts are screened in stages ([`SCREEN`]); the best start by objective (the first
/// on ties) then runs to convergence or `max_iter`.
pub fn fit(x: &Csr, params: &ValidClusterParams, rng: &mut ChaCha8Rng) -> KMeansFit {
    let candidates: Vec<usize> = (0..x.rows())
        .filter(|&i| sparse::row(x, i).nnz() > 0)
        .collect();
    let n_active = candidates.len() as f64;
    // Seeds are drawn in start order (the only use of `rng`).
    let k = params
        .k_to_fit(candidates.len(), x.nnz())
        .min(candidates.len());
    let seeds: Vec<(Vec<usize>, InitReport)> = (0..params.n_init())
        .map(|_| {
            init::choose_seeds(
                x,
                &candidates,
                k,
                params.init(),
                params.alpha(),
                params.max_similar(),
                rng,
            )
        })
        .collect();
    // Each stage runs its starts side by side, as many as there are threads (one start's
    // update runs one task per cluster and would leave cores idle), and keeps the best.
    let batch = rayon::current_num_threads().max(1);
    let mut kept: Vec<Start> = Vec::new();
    for (stage, &(until, keep)) in SCREEN.iter().enumerate() {
        let until = until.min(params.max_iter());
        let entering = if stage == 0 {
            (0..seeds.len()).map(|_| None).collect()
        } else {
            std::mem::take(&mut kept)
                .into_iter()
                .map(Some)
                .collect::<Vec<_>>()
        };
        let mut pending = entering.into_iter().enumerate().peekable();
        while pending.peek().is_some() {
            let group: Vec<(usize, Option<Start>)> = pending.by_ref().take(batch).collect();
            let screened: Vec<Start> = group
                .into_par_iter()
                .map(|(i, start_so_far)| {
                    let mut s = start_so_far.unwrap_or_else(|| {
                        let (seeds, init) = &seeds[i];
                        Start {
                            index: i,
                            fit: start(x, seeds, init.clone()),
                            score: 0.0,
                        }
                    });
                    if !s.fit.converged {
                        rounds(x, params, &mut s.fit, n_active, until, Summing::Fast, 0);
                        s.score = assigned_objective(&s.fit);
                    }
                    s
                })
                .collect();
            for s in &screened {
                tracing::debug!(
                    stage,
                    restart = s.index,
                    objective = s.score,
                    "restart screened"
                );
            }
            kept.extend(screened);
            // Best objective first, the lower start on ties: the same choice for any batch.
            kept.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
            kept.truncate(keep);
        }
        // The next stage takes its starts in start order.
        kept.sort_by_key(|s| s.index);
    }
    let mut best = kept.into_iter().next().expect("n_init is at least 1").fit;
    if !best.converged {
        rounds(
            x,
            params,
            &mut best,
            n_active,
            params.max_iter(),
            Summing::for_matrix(x),
            0,
        );
    }
    best.sizes = cluster_sizes(&best.labels, best.n_clusters);
    best
}

/// Continues k-means from the labels of `fit` (for example after a merge): up to
/// `params.max_iter()` more update-and-assign rounds with `fit.n_clusters` clusters.
pub fn refine(x: &Csr, params: &ValidClusterParams, mut fit: KMeansFit) -> KMeansFit {
    let n_active = x.rows() as f64 - fit.labels.iter().filter(|&&l| l < 0).count() as f64;
    let until = fit.n_iter + params.max_iter();
    // The refinement is a fit of its own: its late rounds count from its own start.
    let settle_from = fit.n_iter;
    rounds(
        x,
        params,
        &mut fit,
        n_active,
        until,
        Summing::for_matrix(x),
        settle_from,
    );
    fit.sizes = cluster_sizes(&fit.labels, fit.n_clusters);
    fit
}

/// Membership changes in rounds after this one count as late: a cluster whose membership
/// still changes by more than [`UNSETTLED_SHARE`] after it is flagged as unsettled.
pub const SETTLED_AFTER: usize = 10;

/// A cluster is unsettled when the documents that joined or left it in the last
/// [`FINAL_ROUNDS`] rounds of its fit are more than this share of its size.
pub const UNSETTLED_SHARE: f64 = 0.01;

/// The rounds at the end of a fit that tell whether a cluster is still moving.
pub const FINAL_ROUNDS: usize = 3;

/// Fewer moves than this in the last rounds never make a cluster unsettled: a few documents
/// on the border of two clusters swap back and forth in any fit, and in a cluster of a few
/// hundred documents 1% is one or two of them.
pub const MIN_UNSETTLED_MOVES: u64 = 10;

impl KMeansFit {
    /// Documents that joined or left cluster `c` in the last [`FINAL_ROUNDS`] rounds.
    pub fn final_moves(&self, c: usize) -> u64 {
        self.recent_moves.iter().map(|round| round[c]).sum()
    }

    /// Whether cluster `c` was still moving when the fit ended: the documents that joined or
    /// left it in the last [`FINAL_ROUNDS`] rounds are more than [`UNSETTLED_SHARE`] of its
    /// size, and at least [`MIN_UNSETTLED_MOVES`]. A fit that converged has few such clusters; one stopped by `max_iter` early
    /// has many. (Counting every move after round 10 instead flagged all 20 clusters of 20
    /// Newsgroups, whose fits run 17-35 rounds.)
    pub fn unsettled(&self, c: usize) -> bool {
        let moved = self.final_moves(c);
        moved >= MIN_UNSETTLED_MOVES && moved as f64 > UNSETTLED_SHARE * self.sizes[c].max(1) as f64
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::rounds::reseed_empty;
    use super::*;
    use crate::cluster::params::{ClusterParams, InitMethod};
    use crate::cluster::score::assign;
    use crate::cluster::sums;
    use rand::SeedableRng;

    /// Two tight groups: rows 0-2 near column 0, rows 3-5 near column 1, and one empty row.
    fn two_groups() -> Csr {
        let a = (0.99f32, (1.0f32 - 0.99 * 0.99).sqrt());
        Csr::new(
            (7, 2),
            vec![0, 2, 4, 5, 7, 9, 10, 10],
            vec![0, 1, 0, 1, 0, 0, 1, 0, 1, 1],
            vec![a.0, a.1, a.0, a.1, 1.0, a.1, a.0, a.1, a.0, 1.0],
        )
    }

    fn params(k: usize, init: InitMethod) -> ValidClusterParams {
        ClusterParams {
            init,
            ..ClusterParams::with_k(k)
        }
        .check()
        .unwrap()
    }

    #[test]
    fn separates_two_groups_and_skips_empty_rows() {
        for init in [
            InitMethod::Random,
            InitMethod::KMeansPlusPlus,
            InitMethod::SimilarCut,
        ] {
            let fit = fit(
                &two_groups(),
                &params(2, init),
                &mut ChaCha8Rng::seed_from_u64(0),
            );
            let l = &fit.labels;
            assert_eq!(l[6], -1);
            assert!(l[0] == l[1] && l[1] == l[2], "{init:?}: {l:?}");
            assert!(l[3] == l[4] && l[4] == l[5], "{init:?}: {l:?}");
            assert_ne!(l[0], l[3]);
            assert_eq!(fit.sizes, vec![3, 3]);
            for c in 0..2 {
                assert!((sparse::l2_norm(fit.centroids.row(c).values) - 1.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn one_step_matches_hand_computation() {
        // Docs e0, e1 and (e0+e1)/√2; centroids start at e0 and e1.
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let x = Csr::new(
            (3, 2),
            vec![0, 1, 2, 4],
            vec![0, 1, 0, 1],
            vec![1.0, 1.0, s, s],
        );
        let mut labels = vec![-1; 3];
        let (mut sim, mut sec) = (vec![0.0; 3], vec![0.0; 3]);
        let start = Centroids::from_rows(2, vec![1.0, 0.0, 0.0, 1.0]);
        let assigned = assign(&x, &start, &mut labels, &mut sim, &mut sec, None);
        // The tie on doc 2 goes to the lowest cluster id.
        assert_eq!(labels, vec![0, 1, 0]);
        assert_eq!(assigned.moves, vec![(0, -1, 0), (1, -1, 1), (2, -1, 0)]);
        assert_eq!(assigned.n_scored, 3);
        assert!((sec[2] - s).abs() < 1e-6);
        // Cluster 0 = normalise(e0 + (e0+e1)/√2) = (1+s, s) / |..|.
        let c = sums::centroids_from_members::<f64>(&x, &labels, 2, &[true, true], 0.0);
        let c0 = c[0].as_ref().unwrap();
        let norm = ((1.0 + s) * (1.0 + s) + s * s).sqrt();
        assert!((c0.weights[0] - (1.0 + s) / norm).abs() < 1e-6);
        assert!((c0.weights[1] - s / norm).abs() < 1e-6);
        // The objective is the members' cosines to the new centroid: |e0 + (e0+e1)/√2|.
        assert!((c0.objective - f64::from(norm)).abs() < 1e-6);
        assert_eq!(c[1].as_ref().unwrap().weights, vec![1.0]);
    }

    /// `n` documents around `k_true` random topics over `n_terms` terms, unit-norm.
    pub(in crate::cluster) fn topics(n: usize, k_true: usize, n_terms: usize, seed: u64) -> Csr {
        use rand::RngExt;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut indptr, mut indices, mut data) = (vec![0], Vec::new(), Vec::new());
        for i in 0..n {
            let topic = i % k_true;
            let mut row = std::collections::BTreeMap::new();
            for _ in 0..12 {
                // Most terms from the topic's block, some from anywhere.
                let j = if rng.random_bool(0.45) {
                    topic * (n_terms / k_true) + rng.random_range(0..n_terms / k_true)
                } else {
                    rng.random_range(0..n_terms)
                };
                *row.entry(j as u32).or_insert(0.0f32) += rng.random_range(0.1f32..1.0);
            }
            let mut values: Vec<f32> = row.values().copied().collect();
            sparse::normalize(&mut values);
            sparse::snap_to_sum_grid(&mut values);
            indices.extend(row.keys());
            data.extend(values);
            indptr.push(indices.len());
        }
        Csr::new((n, n_terms), indptr, indices, data)
    }

    #[test]
    fn bounds_skip_documents_on_real_sized_data_and_change_no_bit() {
        let x = topics(3000, 6, 400, 7);
        let params = ClusterParams {
            max_iter: 100,
            tol: 0.0,
            ..ClusterParams::with_k(8)
        }
        .check()
        .unwrap();
        let on = fit(&x, &params, &mut ChaCha8Rng::seed_from_u64(3));
        let off = fit(
            &x,
            &params.clone().without_acceleration(),
            &mut ChaCha8Rng::seed_from_u64(3),
        );
        assert_eq!(on.labels, off.labels);
        assert_eq!(on.centroids, off.centroids);
        let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&on.similarity), bits(&off.similarity));
        assert_eq!(bits(&on.second_similarity), bits(&off.second_similarity));
        assert!(
            on.n_iter > 5,
            "the fit must run past screening: {}",
            on.n_iter
        );
        let (scored_on, scored_off): (u64, u64) =
            (on.n_scored.iter().sum(), off.n_scored.iter().sum());
        assert!(
            scored_on < scored_off,
            "bounds skipped nothing: {scored_on} of {scored_off}"
        );
    }

    #[test]
    fn empty_cluster_takes_the_farthest_document() {
        let mut labels = vec![0, 0, 0, -1];
        let sims = [0.9, 0.2, 0.5, 0.0];
        assert_eq!(reseed_empty(&mut labels, &sims, &[3, 0]), vec![(1, 0, 1)]);
        assert_eq!(labels, vec![0, 1, 0, -1]);
    }

    #[test]
    fn a_cluster_is_unsettled_when_more_than_one_percent_moved_late() {
        let mut fit = fit(
            &two_groups(),
            &params(2, InitMethod::Random),
            &mut ChaCha8Rng::seed_from_u64(0),
        );
        fit.sizes = vec![300, 100];
        // Moves long before the end do not count; moves in the last rounds do.
        fit.late_joined = vec![300, 100];
        fit.late_left = vec![100, 0];
        fit.recent_moves = vec![vec![12, 0], vec![1, 1], vec![1, 0]];
        assert_eq!(fit.final_moves(0), 14);
        assert!(fit.unsettled(0));
        assert!(!fit.unsettled(1));
        // Below the floor, a share over 1% of a small cluster is noise.
        fit.sizes = vec![50, 100];
        fit.recent_moves = vec![vec![3, 0]];
        assert!(!fit.unsettled(0));
    }

    proptest::proptest! {
        /// Kept sums and assignment bounds only skip work: with them switched off, every
        /// round sums every changed centroid from its members and scores every document, and
        /// the fit is the same bit for bit (labels, similarities, centroids, objective).
        #[test]
        fn bounds_and_kept_sums_change_no_bit(
            x in crate::sparse::testing::random_unit_rows(),
            k in 1usize..8,
            seed in 0u64..1000,
            prune in proptest::bool::ANY,
            threads in 1usize..4,
        ) {
            let params = ClusterParams {
                centroid_min_df_factor: if prune { 0.5 } else { 0.0 },
                max_iter: 60,
                tol: 0.0,
                ..ClusterParams::with_k(k)
            }
            .check()
            .unwrap();
            let run = |params: &ValidClusterParams| {
                rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
                    .install(|| fit(&x, params, &mut ChaCha8Rng::seed_from_u64(seed)))
            };
            let (on, off) = (run(&params), run(&params.clone().without_acceleration()));
            let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
            proptest::prop_assert_eq!(&on.labels, &off.labels);
            proptest::prop_assert_eq!(bits(&on.similarity), bits(&off.similarity));
            proptest::prop_assert_eq!(bits(&on.second_similarity), bits(&off.second_similarity));
            proptest::prop_assert_eq!(&on.centroids, &off.centroids);
            let obits = |v: &[f64]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
            proptest::prop_assert_eq!(obits(&on.objective), obits(&off.objective));
            proptest::prop_assert_eq!((on.n_iter, on.converged), (off.n_iter, off.converged));
            proptest::prop_assert_eq!((&on.late_joined, &on.late_left), (&off.late_joined, &off.late_left));
            // Without bounds every document is scored in every round.
            let n_nonempty = (0..x.rows()).filter(|&i| sparse::row(&x, i).nnz() > 0).count() as u64;
            proptest::prop_assert!(off.n_scored.iter().all(|&n| n == n_nonempty));
        }
    }

    proptest::proptest! {
        #[test]
        fn invariants_hold_on_random_data(
            x in crate::sparse::testing::random_unit_rows(),
            k in 1usize..8,
            seed in 0u64..1000,
            init_choice in 0usize..3,
            prune in proptest::bool::ANY,
        ) {
            let init = [InitMethod::Random, InitMethod::KMeansPlusPlus, InitMethod::SimilarCut][init_choice];
            let params = ClusterParams {
                init,
                centroid_min_df_factor: if prune { 0.5 } else { 0.0 },
                ..ClusterParams::with_k(k)
            }
            .check()
            .unwrap();
            let run = |threads| {
                rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
                    .install(|| fit(&x, &params, &mut ChaCha8Rng::seed_from_u64(seed)))
            };
            let a = run(1);
            let n_nonempty = (0..x.rows()).filter(|&i| sparse::row(&x, i).nnz() > 0).count();
            // Every document gets exactly one label: a cluster if it has terms, -1 if not.
            proptest::prop_assert_eq!(a.labels.len(), x.rows());
            for (i, &l) in a.labels.iter().enumerate() {
                let empty = sparse::row(&x, i).nnz() == 0;
                proptest::prop_assert_eq!(l == -1, empty);
                proptest::prop_assert!(l < a.n_clusters as i32);
            }
            proptest::prop_assert_eq!(a.n_clusters, k.min(n_nonempty));
            proptest::prop_assert_eq!(a.sizes.iter().sum::<u64>() as usize, n_nonempty);
            // Centroids have unit norm, or are all zero.
            for c in 0..a.n_clusters {
                let norm = sparse::l2_norm(a.centroids.row(c).values);
                proptest::prop_assert!((norm - 1.0).abs() < 1e-4 || norm == 0.0, "norm {}", norm);
            }
            // Results do not depend on the thread count.
            let b = run(3);
            proptest::prop_assert_eq!(&a.labels, &b.labels);
            proptest::prop_assert_eq!(&a.similarity, &b.similarity);
            proptest::prop_assert_eq!(&a.centroids, &b.centroids);
        }
    }

    proptest::proptest! {
        /// Screening picks, among the starts, the one a brute-force replay picks: every start
        /// run alone to round 3, the best 3 by objective (lower start on ties) to round 5, and
        /// the best of those; `fit` then equals that start run alone to the end.
        #[test]
        fn screening_keeps_the_best_starts_by_objective(
            x in crate::sparse::testing::random_unit_rows(),
            k in 1usize..6,
            seed in 0u64..1000,
        ) {
            let params = ClusterParams { n_init: 7, ..ClusterParams::with_k(k) }.check().unwrap();
            let fitted = fit(&x, &params, &mut ChaCha8Rng::seed_from_u64(seed));
            // Replay: draw the same seeds, run each start on its own.
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let candidates: Vec<usize> =
                (0..x.rows()).filter(|&i| sparse::row(&x, i).nnz() > 0).collect();
            let n_active = candidates.len() as f64;
            let k = k.min(candidates.len());
            let run_to = |i: usize, rounds_to: usize, seeds: &[(Vec<usize>, InitReport)]| {
                let mut f = start(&x, &seeds[i].0, seeds[i].1.clone());
                let mut n = 0;
                // Screening (rounds 1-5) sums in f32; the rounds after it exactly.
                let summing = |n: usize| if n < 5 { Summing::Fast } else { Summing::for_matrix(&x) };
                while n < rounds_to && !rounds(&x, &params, &mut f, n_active, n + 1, summing(n), 0) {
                    n += 1;
                }
                f
            };
            let seeds: Vec<_> = (0..7)
                .map(|_| init::choose_seeds(&x, &candidates, k, params.init(), params.alpha(), params.max_similar(), &mut rng))
                .collect();
            let last = assigned_objective;
            let mut order: Vec<usize> = (0..7).collect();
            let after_3: Vec<f64> = (0..7).map(|i| last(&run_to(i, 3, &seeds))).collect();
            order.sort_by(|&a, &b| after_3[b].total_cmp(&after_3[a]).then(a.cmp(&b)));
            let best = *order[..3]
                .iter()
                .min_by(|&&a, &&b| {
                    let (fa, fb) = (last(&run_to(a, 5, &seeds)), last(&run_to(b, 5, &seeds)));
                    fb.total_cmp(&fa).then(a.cmp(&b))
                })
                .unwrap();
            let alone = run_to(best, params.max_iter(), &seeds);
            proptest::prop_assert_eq!(&fitted.labels, &alone.labels);
            proptest::prop_assert_eq!(&fitted.centroids, &alone.centroids);
        }
    }

    #[test]
    fn k_is_capped_at_the_number_of_non_empty_documents() {
        let fit = fit(
            &two_groups(),
            &params(10, InitMethod::KMeansPlusPlus),
            &mut ChaCha8Rng::seed_from_u64(0),
        );
        assert_eq!(fit.n_clusters, 6);
        assert_eq!(fit.sizes.iter().sum::<u64>(), 6);
    }
}
