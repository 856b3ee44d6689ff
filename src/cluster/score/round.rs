//! One k-means round's assignment: every document to its most similar centroid, with the
//! second-best cosine, optionally skipping documents whose bounds show they cannot move.

use rayon::prelude::*;

use super::ASSIGN_CHUNK;
use super::layout::Scorer;
use super::simd::{Kernel, dispatch};
use crate::cluster::bounds::{self, Bounds, Moves};
use crate::cluster::centroids::Centroids;
use crate::sparse::{self, Csr};

/// What one [`assign`] did.
#[derive(Debug, Default)]
pub(in crate::cluster) struct Assigned {
    /// `(doc, old label, new label)` of every document that changed cluster, by document.
    pub moves: Vec<(u32, i32, i32)>,
    /// Documents scored (the others were skipped by their bounds).
    pub n_scored: usize,
}

/// Assigns every non-empty row to its most similar centroid (ties to the lowest id), and
/// stores its cosine to it and the second-best cosine. With `bounded`, the bounds are first
/// moved by the centroids' moves, and a document they show cannot change cluster is skipped:
/// its label stays, its similarities are marked stale (see [`super::bounds`]).
pub(in crate::cluster) fn assign(
    x: &Csr,
    centroids: &Centroids,
    labels: &mut [i32],
    similarity: &mut [f32],
    second: &mut [f32],
    bounded: Option<(&mut Bounds, &Moves)>,
) -> Assigned {
    assign_scored(
        &Scorer::new(centroids),
        x,
        labels,
        similarity,
        second,
        bounded,
    )
}

/// As [`assign`], with the centroids already laid out.
pub(in crate::cluster) fn assign_scored(
    scorer: &Scorer,
    x: &Csr,
    labels: &mut [i32],
    similarity: &mut [f32],
    second: &mut [f32],
    bounded: Option<(&mut Bounds, &Moves)>,
) -> Assigned {
    let chunks = labels
        .par_chunks_mut(ASSIGN_CHUNK)
        .zip(similarity.par_chunks_mut(ASSIGN_CHUNK))
        .zip(second.par_chunks_mut(ASSIGN_CHUNK))
        .enumerate();
    let partials: Vec<Assigned> = match bounded {
        None => chunks
            .map(|(i, ((labels, sims), seconds))| {
                let chunk = AssignChunk {
                    first_doc: i * ASSIGN_CHUNK,
                    labels,
                    sims,
                    seconds,
                    bounds: None,
                };
                with_blocks!(scorer.blocks, B => dispatch(assign_chunk::<B, false>(x, scorer, chunk)))
            })
            .collect(),
        Some((bounds, moves)) => chunks
            .zip(bounds.lower.par_chunks_mut(ASSIGN_CHUNK))
            .zip(bounds.upper.par_chunks_mut(ASSIGN_CHUNK))
            .zip(bounds.stale.par_chunks_mut(ASSIGN_CHUNK))
            .map(
                |((((i, ((labels, sims), seconds)), lower), upper), stale)| {
                    let chunk = AssignChunk {
                        first_doc: i * ASSIGN_CHUNK,
                        labels,
                        sims,
                        seconds,
                        bounds: Some(BoundsChunk {
                            lower,
                            upper,
                            stale,
                            moves,
                        }),
                    };
                    with_blocks!(scorer.blocks, B => dispatch(assign_chunk::<B, true>(x, scorer, chunk)))
                },
            )
            .collect(),
    };
    let mut out = Assigned::default();
    for p in partials {
        out.moves.extend(p.moves);
        out.n_scored += p.n_scored;
    }
    out
}

/// One task of [`assign`]: a run of documents and their output slots.
pub(super) struct AssignChunk<'a> {
    pub(super) first_doc: usize,
    pub(super) labels: &'a mut [i32],
    pub(super) sims: &'a mut [f32],
    pub(super) seconds: &'a mut [f32],
    pub(super) bounds: Option<BoundsChunk<'a>>,
}

/// The bounds of an [`AssignChunk`]'s documents, and this round's centroid moves.
pub(super) struct BoundsChunk<'a> {
    lower: &'a mut [f64],
    upper: &'a mut [f64],
    stale: &'a mut [bool],
    moves: &'a Moves,
}

/// Assigns the documents of one chunk; `B` as in [`Scorer::score_into`]; `BOUNDED` when
/// `chunk.bounds` is set (a separate build, so the unbounded loop carries no bound code).
pub(super) fn assign_chunk<'a, const B: usize, const BOUNDED: bool>(
    x: &'a Csr,
    scorer: &'a Scorer,
    chunk: AssignChunk<'a>,
) -> AssignKernel<'a, B, BOUNDED> {
    AssignKernel { x, scorer, chunk }
}

/// See [`assign_chunk`].
pub(super) struct AssignKernel<'a, const B: usize, const BOUNDED: bool> {
    x: &'a Csr,
    scorer: &'a Scorer,
    chunk: AssignChunk<'a>,
}

impl<const B: usize, const BOUNDED: bool> Kernel for AssignKernel<'_, B, BOUNDED> {
    type Output = Assigned;

    #[inline(always)]
    fn run(self) -> Assigned {
        let AssignKernel { x, scorer, chunk } = self;
        assign_in_chunk::<B, BOUNDED>(x, scorer, chunk)
    }
}

#[inline(always)]
fn assign_in_chunk<const B: usize, const BOUNDED: bool>(
    x: &Csr,
    scorer: &Scorer,
    mut chunk: AssignChunk<'_>,
) -> Assigned {
    let k = scorer.k;
    let mut scores = scorer.scores();
    let mut out = Assigned::default();
    for offset in 0..chunk.labels.len() {
        let doc = chunk.first_doc + offset;
        let row = sparse::row(x, doc);
        if row.nnz() == 0 {
            continue;
        }
        let label = &mut chunk.labels[offset];
        let margin = if BOUNDED {
            bounds::margin(row.nnz())
        } else {
            0.0
        };
        if BOUNDED && let Some(b) = &mut chunk.bounds {
            let own = *label as usize;
            let l = bounds::lower_after(b.lower[offset], b.moves.of(own));
            let u = bounds::upper_after(b.upper[offset], b.moves.others(own));
            b.lower[offset] = l;
            b.upper[offset] = u;
            if l - u > 2.0 * margin {
                b.stale[offset] = true;
                continue;
            }
        }
        scorer.score_blocks::<B>(row, &mut scores);
        out.n_scored += 1;
        // The best and second-best cosines, branch-free (which cluster wins is not
        // predictable): the first cluster starts as best with a second best of 0.
        let scores = &scores.as_flattened()[..k];
        let (mut best, mut best_sim, mut second_sim) = (0usize, scores[0], 0.0f32);
        for (c, &s) in scores.iter().enumerate().skip(1) {
            let better = s > best_sim;
            second_sim = if better {
                best_sim
            } else if s > second_sim {
                s
            } else {
                second_sim
            };
            best = if better { c } else { best };
            best_sim = if better { s } else { best_sim };
        }
        if *label != best as i32 {
            out.moves.push((doc as u32, *label, best as i32));
            *label = best as i32;
        }
        let second_sim = if k > 1 { second_sim } else { 0.0 };
        chunk.sims[offset] = best_sim;
        chunk.seconds[offset] = second_sim;
        if BOUNDED && let Some(b) = &mut chunk.bounds {
            let (l, u) = bounds::scored(best_sim, second_sim, k, margin);
            b.lower[offset] = l;
            b.upper[offset] = u;
            b.stale[offset] = false;
        }
    }
    out
}
