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

use super::bounds::{Bounds, Moves};
use super::centroids::Centroids;
use super::init::{self, InitReport};
use super::params::ValidClusterParams;
use super::score::{ASSIGN_CHUNK, assign, rescore};
use super::sums::{self, Sums};
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
    let k = params.k().min(candidates.len());
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

/// One start of [`fit`] while it is being screened.
struct Start {
    /// Position among the `n_init` starts.
    index: usize,
    fit: KMeansFit,
    /// The documents' summed cosine to their centroid after its latest assignment
    /// ([`assigned_objective`]).
    score: f64,
}

/// The sum of `fit.similarity` (exact after an unbounded assignment), in chunks of
/// [`ASSIGN_CHUNK`] documents whose sums are added in order: the order assignment summed its
/// objective in when it still returned one, so screening ranks starts as it did.
fn assigned_objective(fit: &KMeansFit) -> f64 {
    fit.similarity
        .chunks(ASSIGN_CHUNK)
        .map(|c| c.iter().map(|&s| f64::from(s)).sum::<f64>())
        .sum()
}

/// The screening stages of [`fit`]: every start runs 3 rounds, the best 3 run on to round 5,
/// and the best of those runs to convergence. With fits run to convergence, keeping 3 starts
/// instead of 5 after round 3 gave the same mean NMI on four corpora over seeds 0-4 (20
/// Newsgroups 0.6666 against 0.6661, the other three equal) for 4 fewer start-rounds; keeping
/// 2, or screening for 2 rounds, lost 0.007 on 20 Newsgroups (see `docs/experiments.md`).
const SCREEN: [(usize, usize); 2] = [(3, 3), (5, 1)];

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

/// Centroids from the seed documents, and the first assignment (round 0).
fn start(x: &Csr, seeds: &[usize], init: InitReport) -> KMeansFit {
    let n_docs = x.rows();
    let k = seeds.len();
    let mut centroids = Centroids::empty(x.cols());
    for &doc in seeds {
        let row = sparse::row(x, doc);
        centroids.push_sparse(row.indices, row.values);
    }
    let mut fit = KMeansFit {
        labels: vec![-1i32; n_docs],
        similarity: vec![0.0f32; n_docs],
        second_similarity: vec![0.0f32; n_docs],
        centroids,
        sizes: Vec::new(),
        n_iter: 0,
        converged: false,
        objective: Vec::new(),
        n_scored: Vec::new(),
        late_joined: vec![0; k],
        late_left: vec![0; k],
        n_clusters: k,
        n_reseeded: 0,
        init,
    };
    if k > 0 {
        assign(
            x,
            &fit.centroids,
            &mut fit.labels,
            &mut fit.similarity,
            &mut fit.second_similarity,
            None,
        );
    }
    fit
}

/// How a call of [`rounds`] sums the members of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Summing {
    /// In f32, from the members (screening: many documents move, nothing is kept).
    Fast,
    /// In f64, exact ([`Sums::exact`]): kept between rounds and corrected by the moves, with
    /// assignment bounds.
    Exact,
    /// In f64, from the members: a matrix whose sums would not be exact.
    Inexact,
}

impl Summing {
    /// Exact sums if `x`'s are, else f64 sums from the members.
    fn for_matrix(x: &Csr) -> Self {
        if Sums::exact(x) {
            Self::Exact
        } else {
            Self::Inexact
        }
    }
}

/// Membership changes in rounds after this one count as late: a cluster whose membership
/// still changes by more than [`UNSETTLED_SHARE`] after it is flagged as unsettled.
pub const SETTLED_AFTER: usize = 10;

/// See [`SETTLED_AFTER`].
pub const UNSETTLED_SHARE: f64 = 0.01;

impl KMeansFit {
    /// Whether cluster `c`'s membership changed by more than [`UNSETTLED_SHARE`] of its size
    /// (documents that joined plus documents that left) after round [`SETTLED_AFTER`].
    pub fn unsettled(&self, c: usize) -> bool {
        let churn = self.late_joined[c] + self.late_left[c];
        churn as f64 > UNSETTLED_SHARE * self.sizes[c].max(1) as f64
    }
}

/// Runs update-and-assign rounds `fit.n_iter + 1 ..= until`; returns true once at most `tol`
/// of the documents moved in a round. Moves in rounds after `settle_from + SETTLED_AFTER`
/// count as late.
///
/// Member sums are kept from round to round and corrected by the documents that moved
/// ([`Sums`]), so only the centroids whose members changed are recomputed; assignment skips
/// the documents its bounds show cannot move ([`Bounds`]). Neither changes a bit of the
/// result: with `accelerate` off, every centroid is summed from its members and every
/// document is scored, with the same labels, similarities, centroids and objective.
fn rounds(
    x: &Csr,
    params: &ValidClusterParams,
    fit: &mut KMeansFit,
    n_active: f64,
    until: usize,
    summing: Summing,
    settle_from: usize,
) -> bool {
    let k = fit.n_clusters;
    if k == 0 {
        fit.converged = true;
        return true;
    }
    let accelerate = params.accelerate() && summing != Summing::Fast;
    let prune = params.centroid_min_df_factor();
    let mut sums = (accelerate && summing == Summing::Exact && Sums::fit(k, x.cols()))
        .then(|| Sums::new(x, &fit.labels, k));
    // Kept sums that still need the last round's moves: corrected by them when few documents
    // moved, summed again from the members of the changed clusters when many did.
    let mut sums_behind = false;
    let mut bounds = accelerate.then(|| Bounds::new(x, &fit.similarity, &fit.second_similarity, k));
    let mut sizes = cluster_sizes(&fit.labels, k);
    let mut scratch = vec![0.0f32; if bounds.is_some() { x.cols() } else { 0 }];
    let mut dirty = vec![true; k];
    let mut objective = vec![0.0f64; k];
    fit.late_joined.resize(k, 0);
    fit.late_left.resize(k, 0);
    let mut converged = false;
    while fit.n_iter < until {
        let round = fit.n_iter + 1;
        let late = round > settle_from + SETTLED_AFTER;
        if sizes.contains(&0) {
            // Re-seeding reads every document's similarity: bring the skipped ones up to date.
            if let Some(b) = &mut bounds {
                refresh_stale(x, fit, b);
            }
            let moves = reseed_empty(&mut fit.labels, &fit.similarity, &sizes);
            fit.n_reseeded += moves.len();
            for &(doc, from, to) in &moves {
                if let Some(b) = &mut bounds {
                    b.forget(doc as usize);
                }
                note_move(fit, &mut sizes, &mut dirty, from, to, late);
            }
            if let Some(s) = sums.as_mut().filter(|_| !sums_behind) {
                s.apply(x, &moves, k);
            }
        }
        let t = std::time::Instant::now();
        let fresh = match &mut sums {
            Some(s) => {
                if sums_behind {
                    s.recompute(x, &fit.labels, &dirty);
                    sums_behind = false;
                }
                s.centroids(&dirty, &sizes, prune)
            }
            None if summing == Summing::Fast => {
                sums::centroids_from_members::<f32>(x, &fit.labels, k, &dirty, prune)
            }
            None => sums::centroids_from_members::<f64>(x, &fit.labels, k, &dirty, prune),
        };
        let n_updated = fresh.iter().flatten().count();
        let mut centroids = Centroids::empty(x.cols());
        let mut cosines = vec![None; k];
        for (c, new) in fresh.into_iter().enumerate() {
            match new {
                Some(new) => {
                    if bounds.is_some() {
                        let row = sparse::Row {
                            indices: &new.indices,
                            values: &new.weights,
                        };
                        cosines[c] = Some(cosine(fit.centroids.row(c), row, &mut scratch));
                    }
                    objective[c] = new.objective;
                    centroids.push_sparse(&new.indices, &new.weights);
                }
                None => {
                    let old = fit.centroids.row(c);
                    centroids.push_sparse(old.indices, old.values);
                }
            }
        }
        fit.centroids = centroids;
        fit.objective.push(objective.iter().sum());
        dirty.fill(false);
        let update_seconds = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let moves = bounds.as_ref().map(|_| Moves::new(&cosines));
        let assigned = assign(
            x,
            &fit.centroids,
            &mut fit.labels,
            &mut fit.similarity,
            &mut fit.second_similarity,
            bounds.as_mut().zip(moves.as_ref()),
        );
        fit.n_iter = round;
        fit.n_scored.push(assigned.n_scored as u64);
        for &(_, from, to) in &assigned.moves {
            note_move(fit, &mut sizes, &mut dirty, from, to, late);
        }
        if let Some(s) = &mut sums {
            // A move costs a row twice (out and in); a recount costs each member's row once.
            let recount: u64 = (0..k).filter(|&c| dirty[c]).map(|c| sizes[c]).sum();
            if 2 * assigned.moves.len() as u64 <= recount {
                s.apply(x, &assigned.moves, k);
            } else {
                sums_behind = true;
            }
        }
        let moved = assigned.moves.len() as f64 / n_active;
        tracing::debug!(
            round,
            objective = fit.objective.last(),
            moved,
            n_updated,
            skipped = 1.0 - assigned.n_scored as f64 / n_active,
            update_seconds,
            assign_seconds = t.elapsed().as_secs_f64(),
            "k-means round"
        );
        if moved <= params.tol() {
            converged = true;
            break;
        }
    }
    if let Some(b) = &mut bounds {
        refresh_stale(x, fit, b);
    }
    fit.converged = converged;
    converged
}

/// Books a document's move from cluster `from` to `to` (either may be `-1`).
fn note_move(
    fit: &mut KMeansFit,
    sizes: &mut [u64],
    dirty: &mut [bool],
    from: i32,
    to: i32,
    late: bool,
) {
    if from >= 0 {
        sizes[from as usize] -= 1;
        dirty[from as usize] = true;
        fit.late_left[from as usize] += u64::from(late);
    }
    if to >= 0 {
        sizes[to as usize] += 1;
        dirty[to as usize] = true;
        fit.late_joined[to as usize] += u64::from(late);
    }
}

/// Scores the documents whose similarities went stale while their bounds skipped them, so
/// `similarity` and `second_similarity` are those of the current centroids again.
fn refresh_stale(x: &Csr, fit: &mut KMeansFit, bounds: &mut Bounds) {
    if !bounds.stale.contains(&true) {
        return;
    }
    rescore(
        x,
        &fit.centroids,
        &fit.labels,
        &mut fit.similarity,
        &mut fit.second_similarity,
        Some(&bounds.stale),
    );
    let k = fit.n_clusters;
    for i in 0..bounds.stale.len() {
        if bounds.stale[i] {
            let margin = super::bounds::margin(sparse::row(x, i).nnz());
            bounds.set(i, fit.similarity[i], fit.second_similarity[i], k, margin);
        }
    }
}

/// Cosine of two sparse rows, in f64; `-1` when either is zero. `scratch` is a zeroed dense
/// row of the matrix's width, left zeroed: `a` is scattered into it and `b` gathered from it,
/// with no branch per term (a merge of two long sorted rows mispredicts at every step).
fn cosine(a: sparse::Row<'_>, b: sparse::Row<'_>, scratch: &mut [f32]) -> f64 {
    let norm = |r: sparse::Row<'_>| r.values.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 {
        return -1.0;
    }
    for (&j, &v) in a.indices.iter().zip(a.values) {
        scratch[j as usize] = v;
    }
    let dot: f64 = (b.indices.iter().zip(b.values))
        .map(|(&j, &v)| f64::from(scratch[j as usize]) * f64::from(v))
        .sum();
    for &j in a.indices {
        scratch[j as usize] = 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0)
}

/// Members per cluster, ignoring `-1`.
pub fn cluster_sizes(labels: &[i32], k: usize) -> Vec<u64> {
    let mut sizes = vec![0u64; k];
    for &l in labels {
        if l >= 0 {
            sizes[l as usize] += 1;
        }
    }
    sizes
}

/// Gives each empty cluster (by `sizes`) the document least similar to its own centroid,
/// taken from a cluster with more than one member. Returns the moves `(doc, from, to)`.
fn reseed_empty(labels: &mut [i32], similarity: &[f32], sizes: &[u64]) -> Vec<(u32, i32, i32)> {
    let mut sizes = sizes.to_vec();
    let k = sizes.len();
    let empty: Vec<usize> = (0..k).filter(|&c| sizes[c] == 0).collect();
    let mut moves = Vec::new();
    if empty.is_empty() {
        return moves;
    }
    let mut order: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] >= 0).collect();
    order.sort_by(|&a, &b| similarity[a].total_cmp(&similarity[b]).then(a.cmp(&b)));
    let mut donors = order.into_iter();
    for c in empty {
        for doc in donors.by_ref() {
            let from = labels[doc] as usize;
            if sizes[from] > 1 {
                sizes[from] -= 1;
                sizes[c] += 1;
                labels[doc] = c as i32;
                moves.push((doc as u32, from as i32, c as i32));
                break;
            }
        }
    }
    moves
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::cluster::params::{ClusterParams, InitMethod};
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
        fit.late_joined = vec![3, 1];
        fit.late_left = vec![1, 0];
        assert!(fit.unsettled(0));
        assert!(!fit.unsettled(1));
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
