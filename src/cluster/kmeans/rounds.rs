//! The rounds of k-means after the start: update the centroids from the members' sums,
//! assign again, re-seed empty clusters, until at most `tol` of the documents move.

use super::{FINAL_ROUNDS, KMeansFit, SETTLED_AFTER};
use crate::cluster::bounds::{self, Bounds, Moves};
use crate::cluster::centroids::Centroids;
use crate::cluster::params::ValidClusterParams;
use crate::cluster::score::{assign, rescore};
use crate::cluster::sums::{self, Sums};
use crate::sparse::{self, Csr};

/// How a call of [`rounds`] sums the members of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Summing {
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
    pub(super) fn for_matrix(x: &Csr) -> Self {
        if Sums::exact(x) {
            Self::Exact
        } else {
            Self::Inexact
        }
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
pub(super) fn rounds(
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
        if fit.recent_moves.len() == FINAL_ROUNDS {
            fit.recent_moves.remove(0);
        }
        fit.recent_moves.push(vec![0; k]);
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
    let recent = fit.recent_moves.last_mut();
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
    if let Some(recent) = recent {
        for c in [from, to] {
            if c >= 0 {
                recent[c as usize] += 1;
            }
        }
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
            let margin = bounds::margin(sparse::row(x, i).nnz());
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
pub(super) fn reseed_empty(
    labels: &mut [i32],
    similarity: &[f32],
    sizes: &[u64],
) -> Vec<(u32, i32, i32)> {
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
