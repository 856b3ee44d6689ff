//! The nearest centroids of each document against fixed centroids (a model's, or a merge's),
//! and the scores of documents for labels given rather than chosen.

use rayon::prelude::*;

use super::ASSIGN_CHUNK;
use super::layout::Scorer;
use super::simd::{Kernel, dispatch};
use crate::cluster::centroids::Centroids;
use crate::sparse::{self, Csr};

/// For fixed `labels`, the cosine of each document to its own centroid and the best cosine
/// to any other centroid (used after merging, when labels are given rather than chosen).
pub fn score_labels(x: &Csr, centroids: &Centroids, labels: &[i32]) -> (Vec<f32>, Vec<f32>) {
    let mut own = vec![0.0f32; labels.len()];
    let mut other = vec![0.0f32; labels.len()];
    rescore(x, centroids, labels, &mut own, &mut other, None);
    (own, other)
}

/// The two most similar centroids of every row of `x`, for a fixed model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Nearest {
    /// Most similar centroid (ties to the lowest id); `-1` for an empty row.
    pub labels: Vec<i32>,
    /// Cosine to it; 0 for an empty row.
    pub similarity: Vec<f32>,
    /// Second most similar centroid; `-1` for an empty row or when there is one centroid.
    pub second: Vec<i32>,
    /// Cosine to it; 0 when there is none.
    pub second_similarity: Vec<f32>,
}

/// Assigns every row of `x` to its nearest centroid, with the runner-up: one scoring round
/// against fixed centroids. Rows are scored in fixed chunks, so the result does not depend on
/// the thread count. To score many batches against the same centroids, build a
/// [`NearestCentroids`] once instead.
pub fn nearest(x: &Csr, centroids: &Centroids) -> Nearest {
    NearestCentroids::new(centroids).nearest(x)
}

/// Fixed centroids laid out for scoring, built once and reused for every batch of documents
/// (as `assign` and a sampled fit's refinement stream them). The layout takes a pass over
/// the centroids and up to `8 ×` their non-zeros of memory, which is worth building once
/// rather than per batch.
pub struct NearestCentroids {
    /// `None` when there are no centroids: every row is then unassigned.
    scorer: Option<Scorer>,
}

impl NearestCentroids {
    pub fn new(centroids: &Centroids) -> Self {
        Self {
            scorer: (centroids.n_clusters() > 0).then(|| Scorer::new(centroids)),
        }
    }

    /// The layout, unless there are no centroids.
    pub(in crate::cluster) fn scorer(&self) -> Option<&Scorer> {
        self.scorer.as_ref()
    }

    /// As [`nearest`], with these centroids.
    pub fn nearest(&self, x: &Csr) -> Nearest {
        let n = x.rows();
        let out = Nearest {
            labels: vec![-1; n],
            similarity: vec![0.0; n],
            second: vec![-1; n],
            second_similarity: vec![0.0; n],
        };
        match &self.scorer {
            Some(scorer) => scorer.nearest(x, out),
            None => out,
        }
    }
}

impl Scorer {
    /// Fills `out` (sized for `x`, unassigned) with each row's two most similar centroids.
    fn nearest(&self, x: &Csr, mut out: Nearest) -> Nearest {
        out.labels
            .par_chunks_mut(ASSIGN_CHUNK)
            .zip(out.similarity.par_chunks_mut(ASSIGN_CHUNK))
            .zip(out.second.par_chunks_mut(ASSIGN_CHUNK))
            .zip(out.second_similarity.par_chunks_mut(ASSIGN_CHUNK))
            .enumerate()
            .for_each(|(chunk, (((labels, sims), seconds), second_sims))| {
                let chunk = NearestChunk {
                    first_doc: chunk * ASSIGN_CHUNK,
                    labels,
                    sims,
                    seconds,
                    second_sims,
                };
                with_blocks!(self.blocks, B => dispatch(nearest_chunk::<B>(x, self, chunk)));
            });
        out
    }
}

/// One task of [`Scorer::nearest`]: a run of documents and their output slots.
pub(super) struct NearestChunk<'a> {
    pub(super) first_doc: usize,
    pub(super) labels: &'a mut [i32],
    pub(super) sims: &'a mut [f32],
    pub(super) seconds: &'a mut [i32],
    pub(super) second_sims: &'a mut [f32],
}

/// The kernel that finds the two most similar centroids of each document of one chunk; `B`
/// as in [`Scorer::score_blocks`].
pub(super) fn nearest_chunk<'a, const B: usize>(
    x: &'a Csr,
    scorer: &'a Scorer,
    chunk: NearestChunk<'a>,
) -> NearestKernel<'a, B> {
    NearestKernel { x, scorer, chunk }
}

/// See [`nearest_chunk`].
pub(super) struct NearestKernel<'a, const B: usize> {
    x: &'a Csr,
    scorer: &'a Scorer,
    chunk: NearestChunk<'a>,
}

impl<const B: usize> Kernel for NearestKernel<'_, B> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let NearestKernel { x, scorer, chunk } = self;
        nearest_in_chunk::<B>(x, scorer, chunk);
    }
}

#[inline(always)]
fn nearest_in_chunk<const B: usize>(x: &Csr, scorer: &Scorer, chunk: NearestChunk<'_>) {
    let mut scores = scorer.scores();
    for offset in 0..chunk.labels.len() {
        let row = sparse::row(x, chunk.first_doc + offset);
        if row.nnz() == 0 {
            continue;
        }
        scorer.score_blocks::<B>(row, &mut scores);
        let scores = &scores.as_flattened()[..scorer.k];
        let (mut best, mut runner_up) = ((-1i32, f32::NEG_INFINITY), (-1i32, 0.0f32));
        for (c, &v) in scores.iter().enumerate() {
            if v > best.1 {
                runner_up = best;
                best = (c as i32, v);
            } else if runner_up.0 < 0 || v > runner_up.1 {
                runner_up = (c as i32, v);
            }
        }
        chunk.labels[offset] = best.0;
        chunk.sims[offset] = best.1;
        chunk.seconds[offset] = runner_up.0;
        chunk.second_sims[offset] = if runner_up.0 < 0 { 0.0 } else { runner_up.1 };
    }
}

/// As [`score_labels`], in place, for the documents where `only[doc]` (all when `None`).
pub(in crate::cluster) fn rescore(
    x: &Csr,
    centroids: &Centroids,
    labels: &[i32],
    own: &mut [f32],
    other: &mut [f32],
    only: Option<&[bool]>,
) {
    let scorer = Scorer::new(centroids);
    own.par_chunks_mut(ASSIGN_CHUNK)
        .zip(other.par_chunks_mut(ASSIGN_CHUNK))
        .enumerate()
        .for_each(|(chunk, (own, other))| {
            let mut scores = scorer.scores();
            for (offset, (o, s)) in own.iter_mut().zip(other.iter_mut()).enumerate() {
                let doc = chunk * ASSIGN_CHUNK + offset;
                let label = labels[doc];
                if label < 0 || only.is_some_and(|only| !only[doc]) {
                    continue;
                }
                scorer.score(sparse::row(x, doc), &mut scores);
                let scores = &scores.as_flattened()[..scorer.k];
                *o = scores[label as usize];
                *s = scores
                    .iter()
                    .enumerate()
                    .filter(|&(c, _)| c != label as usize)
                    .map(|(_, &v)| v)
                    .fold(0.0, f32::max);
            }
        });
}
