//! Scoring documents against centroids, and assignment: the SIMD heart of k-means.
//!
//! [`Scorer`] lays the sparse centroids out term by term once per assignment: dense rows for
//! the terms many clusters use, posting lists for the rest, with a document's scores held in
//! AVX2 registers when k ≤ 32 (and the dense-row part of them when k ≤ 104). [`assign`] and
//! [`score_labels`] run it over fixed-size chunks of documents with rayon.
//!
//! # Safety and equivalence
//! The only `unsafe` code is here: the AVX2 entry points (`assign_chunk_avx2`,
//! `nearest_chunk_avx2`), called only
//! after `is_x86_feature_detected!("avx2")`, and `_mm_prefetch` hints, which never fault.
//! The AVX2 path compiles the same Rust as the portable one with AVX2 enabled, and no fused
//! multiply-add: every score is computed by the same operations in the same order, so the two
//! give the same bits (checked by `avx2_and_portable_builds_agree_bit_for_bit`).
//!
//! # Parallelism
//! Chunks of [`ASSIGN_CHUNK`] documents are fixed, and per-chunk sums are combined in chunk
//! order, so results do not depend on the thread count.

use rayon::prelude::*;

use super::bounds::{self, Bounds, Moves};
use super::centroids::Centroids;
use crate::sparse::{self, Csr};

/// Documents per assignment task. Fixed, so sums do not depend on the thread count.
pub(super) const ASSIGN_CHUNK: usize = 256;

/// inner loop has no remainder and vectorises (8 × f32 is one AVX register).
const LANES: usize = 8;

/// A term is stored densely for scoring when at least `k / DENSE_SHARE` clusters use it.
const DENSE_SHARE: usize = 8;

/// Up to this many blocks of [`LANES`] clusters (k ≤ 32), every term any centroid uses is
/// stored densely and a document's scores stay in registers while its terms are summed.
const REGISTER_BLOCKS: usize = 4;

/// Up to this many blocks (k ≤ 104), the k > 32 layout sums its dense rows in registers: 13
/// AVX registers of accumulators leave three for the term's weight and products.
const HYBRID_REGISTER_BLOCKS: usize = 13;

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

/// Centroids laid out for scoring documents, built from the sparse centroids each round.
///
/// Terms used by many clusters (at least `k / 8`) get a dense row of `k` weights (padded to
/// a multiple of 8), so scoring one document non-zero is a few vector multiply-adds. Rarer terms
/// keep a short posting list of `(cluster, weight)`; terms in no centroid have an empty one.
/// Memory is at most about `8 ×` the centroid non-zeros, never `k × n_terms`.
///
/// For k ≤ 32 the scores live in registers and every term is one `(row, scale)` pair: terms in
/// two or more centroids point at their dense row with scale 1; a term in one centroid `c`
/// points at the unit row of `c` with its weight as the scale; terms in no centroid point at
/// a zero row. Scoring a non-zero `v` adds `(v × scale) × row` with no branch, and the table
/// of dense rows holds only the terms shared by clusters (about half of the used terms on 20
/// Newsgroups), so more of it stays in cache.
///
/// For k ≤ 32 every score is summed over the document's terms in order, whichever way a term
/// is stored, so the layout does not change a single bit of the result: `v × 1 = v`,
/// `(v × w) × 1 = v × w`, and adding `+0` (or `-0`) leaves a sum that starts at `+0`
/// unchanged. For 32 < k ≤ 104 the dense rows are summed in registers and the postings in
/// memory, then added: a score can differ from the term-order sum in its last bits, the same
/// way for every thread count.
pub(super) struct Scorer {
    k: usize,
    /// Blocks of [`LANES`] clusters: `k` rounded up.
    blocks: usize,
    /// Where each term's weights are.
    terms: Terms,
    /// Dense rows, `blocks` blocks each (k ≤ 32: the zero row, then the `k` unit rows first).
    dense: Vec<[f32; LANES]>,
}

/// Per term, where [`Scorer`] finds its weights.
enum Terms {
    /// k ≤ 32: its first block in `dense` and its scale.
    Scaled(Vec<(u32, f32)>),
    /// k > 32: `(dense row, DENSE)` or the range of its postings (maybe empty), so one load
    /// tells where a term's weights are; `postings` holds `(cluster, weight)` term by term.
    Hybrid {
        slot: Vec<(u32, u32)>,
        postings: Vec<(u32, f32)>,
    },
}

/// Second half of a [`Scorer`] slot that points at a dense row.
const DENSE: u32 = u32::MAX;

impl Scorer {
    fn new(centroids: &Centroids) -> Self {
        let k = centroids.n_clusters();
        let n_terms = centroids.n_terms();
        let blocks = k.div_ceil(LANES);
        let mut count = vec![0u32; n_terms];
        for &j in &centroids.indices {
            count[j as usize] += 1;
        }
        if blocks <= REGISTER_BLOCKS {
            return Self::in_registers(centroids, &count);
        }
        let dense_from = (k / DENSE_SHARE).max(1) as u32;
        let mut slot = Vec::with_capacity(n_terms);
        let (mut n_dense, mut n_post) = (0u32, 0u32);
        for &n in &count {
            if n >= dense_from {
                slot.push((n_dense, DENSE));
                n_dense += 1;
            } else {
                // Postings are fewer than the centroid non-zeros, far below u32::MAX.
                slot.push((n_post, n_post));
                n_post = (n_post.checked_add(n))
                    .filter(|&end| end < DENSE)
                    .expect("centroid non-zeros fit in u32");
            }
        }
        let mut dense = vec![[0.0f32; LANES]; n_dense as usize * blocks];
        let mut postings = vec![(0u32, 0.0f32); n_post as usize];
        for c in 0..k {
            let row = centroids.row(c);
            for (&j, &w) in row.indices.iter().zip(row.values) {
                match &mut slot[j as usize] {
                    (r, DENSE) => dense[*r as usize * blocks + c / LANES][c % LANES] = w,
                    (_, end) => {
                        // Clusters in order, so each term's postings end up by cluster.
                        postings[*end as usize] = (c as u32, w);
                        *end += 1;
                    }
                }
            }
        }
        Self {
            k,
            blocks,
            terms: Terms::Hybrid { slot, postings },
            dense,
        }
    }

    /// The k ≤ 32 layout; `count[j]` is the number of centroids that use term `j`.
    fn in_registers(centroids: &Centroids, count: &[u32]) -> Self {
        let k = centroids.n_clusters();
        let blocks = k.div_ceil(LANES);
        // Row 0 is zero, rows 1..=k are the unit rows, shared rows follow.
        let mut term = vec![(0u32, 1.0f32); count.len()];
        let mut n_rows = 1 + k as u32;
        for (t, &n) in term.iter_mut().zip(count) {
            if n > 1 {
                t.0 = n_rows * blocks as u32;
                n_rows += 1;
            }
        }
        let mut dense = vec![[0.0f32; LANES]; n_rows as usize * blocks];
        for c in 0..k {
            dense[(1 + c) * blocks + c / LANES][c % LANES] = 1.0;
            let row = centroids.row(c);
            for (&j, &w) in row.indices.iter().zip(row.values) {
                let j = j as usize;
                if count[j] > 1 {
                    dense[term[j].0 as usize + c / LANES][c % LANES] = w;
                } else {
                    term[j] = (((1 + c) * blocks) as u32, w);
                }
            }
        }
        Self {
            k,
            blocks,
            terms: Terms::Scaled(term),
            dense,
        }
    }

    /// A zeroed score buffer for [`Scorer::score_into`].
    fn scores(&self) -> Vec<[f32; LANES]> {
        vec![[0.0; LANES]; self.blocks]
    }

    /// Cosine of `row` with every centroid, into `scores`, for the k ≤ 32 layout with its `B`
    /// blocks held in registers.
    #[inline(always)]
    fn score_into<const B: usize>(&self, row: sparse::Row<'_>, scores: &mut [[f32; LANES]]) {
        let Terms::Scaled(term) = &self.terms else {
            unreachable!("scores are held in registers only with the k ≤ 32 layout")
        };
        let mut acc = [[0.0f32; LANES]; B];
        for (&j, &v) in row.indices.iter().zip(row.values) {
            let (r, scale) = term[j as usize];
            let v = v * scale;
            let r = r as usize;
            let col: &[[f32; LANES]; B] = self.dense[r..r + B].try_into().expect("B blocks");
            for (a, w) in acc.iter_mut().zip(col) {
                for lane in 0..LANES {
                    a[lane] += v * w[lane];
                }
            }
        }
        scores[..B].copy_from_slice(&acc);
    }

    /// Cosine of `row` with every centroid, into `scores`, whatever the layout.
    fn score(&self, row: sparse::Row<'_>, scores: &mut [[f32; LANES]]) {
        with_blocks!(self.blocks, B => self.score_blocks::<B>(row, scores))
    }

    /// Cosine of `row` with every centroid, into `scores`, for `B` blocks (`B = 0`: more
    /// than [`HYBRID_REGISTER_BLOCKS`]).
    #[inline(always)]
    fn score_blocks<const B: usize>(&self, row: sparse::Row<'_>, scores: &mut [[f32; LANES]]) {
        if B == 0 {
            self.score_row(row, scores)
        } else if B <= REGISTER_BLOCKS {
            self.score_into::<B>(row, scores)
        } else {
            self.score_hybrid::<B>(row, scores)
        }
    }

    /// As [`Scorer::score_row`] (k > 32), with the dense rows summed in `B` blocks held in
    /// registers and the postings in `scores`, then the two added, so a dense term does not
    /// load and store every score block: about 4× fewer memory operations.
    #[inline(always)]
    fn score_hybrid<const B: usize>(&self, row: sparse::Row<'_>, scores: &mut [[f32; LANES]]) {
        let Terms::Hybrid { slot, postings } = &self.terms else {
            unreachable!("the k > 32 layout")
        };
        scores.fill([0.0; LANES]);
        let mut acc = [[0.0f32; LANES]; B];
        let indices = row.indices;
        for (i, (&j, &v)) in indices.iter().zip(row.values).enumerate() {
            // Two-stage prefetch: the slot of a term SLOT_AHEAD non-zeros on, then the
            // weights of the term WEIGHTS_AHEAD on, whose slot is in cache by now.
            if let Some(&ahead) = indices.get(i + SLOT_AHEAD) {
                prefetch(&slot[ahead as usize]);
            }
            if let Some(&ahead) = indices.get(i + WEIGHTS_AHEAD) {
                match slot[ahead as usize] {
                    (start, end) if end != DENSE => {
                        if let Some(first) = postings.get(start as usize) {
                            prefetch(first);
                        }
                    }
                    (r, _) => {
                        let r = r as usize * B;
                        for block in self.dense[r..r + B].chunks(64 / size_of::<[f32; LANES]>()) {
                            prefetch(&block[0]);
                        }
                    }
                }
            }
            match slot[j as usize] {
                (start, end) if end != DENSE => {
                    add_postings(scores, &postings[start as usize..end as usize], v);
                }
                (r, _) => {
                    let r = r as usize * B;
                    let col: &[[f32; LANES]; B] =
                        self.dense[r..r + B].try_into().expect("B blocks");
                    for (a, w) in acc.iter_mut().zip(col) {
                        for lane in 0..LANES {
                            a[lane] += v * w[lane];
                        }
                    }
                }
            }
        }
        for (s, a) in scores.iter_mut().zip(&acc) {
            for lane in 0..LANES {
                s[lane] += a[lane];
            }
        }
    }

    /// Cosine of `row` with every centroid, into `scores` (lanes past `k` stay zero), for the
    /// k > 32 layout.
    #[inline(always)]
    fn score_row(&self, row: sparse::Row<'_>, scores: &mut [[f32; LANES]]) {
        let Terms::Hybrid { slot, postings } = &self.terms else {
            unreachable!("scores are summed in memory only with the k > 32 layout")
        };
        scores.fill([0.0; LANES]);
        for (&j, &v) in row.indices.iter().zip(row.values) {
            match slot[j as usize] {
                (start, end) if end != DENSE => {
                    add_postings(scores, &postings[start as usize..end as usize], v);
                }
                (r, _) => {
                    let r = r as usize * self.blocks;
                    for (s, w) in scores.iter_mut().zip(&self.dense[r..r + self.blocks]) {
                        // Whole-block loads before the store let the compiler use one
                        // vector multiply and add (it cannot prove `s` and `w` apart).
                        let (mut acc, w) = (*s, *w);
                        for lane in 0..LANES {
                            acc[lane] += v * w[lane];
                        }
                        *s = acc;
                    }
                }
            }
        }
    }
}

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
    pub(super) fn scorer(&self) -> Option<&Scorer> {
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
                with_blocks!(self.blocks, B => nearest_chunk_best::<B>(x, self, chunk));
            });
        out
    }
}

/// One task of [`Scorer::nearest`]: a run of documents and their output slots.
struct NearestChunk<'a> {
    first_doc: usize,
    labels: &'a mut [i32],
    sims: &'a mut [f32],
    seconds: &'a mut [i32],
    second_sims: &'a mut [f32],
}

/// Runs [`nearest_chunk`] compiled for AVX2 when the CPU has it (as [`assign_chunk_best`]).
#[inline(always)]
fn nearest_chunk_best<const B: usize>(x: &Csr, scorer: &Scorer, chunk: NearestChunk<'_>) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { nearest_chunk_avx2::<B>(x, scorer, chunk) };
    }
    nearest_chunk::<B>(x, scorer, chunk)
}

/// [`nearest_chunk`] compiled for AVX2: the same operations in the same order, so the same
/// bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn nearest_chunk_avx2<const B: usize>(x: &Csr, scorer: &Scorer, chunk: NearestChunk<'_>) {
    nearest_chunk::<B>(x, scorer, chunk)
}

/// The two most similar centroids of each document of one chunk; `B` as in
/// [`Scorer::score_blocks`].
#[inline(always)]
fn nearest_chunk<const B: usize>(x: &Csr, scorer: &Scorer, chunk: NearestChunk<'_>) {
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
pub(super) fn rescore(
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

/// What one [`assign`] did.
#[derive(Debug, Default)]
pub(super) struct Assigned {
    /// `(doc, old label, new label)` of every document that changed cluster, by document.
    pub moves: Vec<(u32, i32, i32)>,
    /// Documents scored (the others were skipped by their bounds).
    pub n_scored: usize,
}

/// Assigns every non-empty row to its most similar centroid (ties to the lowest id), and
/// stores its cosine to it and the second-best cosine. With `bounded`, the bounds are first
/// moved by the centroids' moves, and a document they show cannot change cluster is skipped:
/// its label stays, its similarities are marked stale (see [`super::bounds`]).
pub(super) fn assign(
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
pub(super) fn assign_scored(
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
                with_blocks!(scorer.blocks, B => assign_chunk_best::<B, false>(x, scorer, chunk))
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
                    with_blocks!(scorer.blocks, B => assign_chunk_best::<B, true>(x, scorer, chunk))
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
struct AssignChunk<'a> {
    first_doc: usize,
    labels: &'a mut [i32],
    sims: &'a mut [f32],
    seconds: &'a mut [f32],
    bounds: Option<BoundsChunk<'a>>,
}

/// The bounds of an [`AssignChunk`]'s documents, and this round's centroid moves.
struct BoundsChunk<'a> {
    lower: &'a mut [f64],
    upper: &'a mut [f64],
    stale: &'a mut [bool],
    moves: &'a Moves,
}

/// Runs [`assign_chunk`] compiled for AVX2 when the CPU has it.
#[inline(always)]
fn assign_chunk_best<const B: usize, const BOUNDED: bool>(
    x: &Csr,
    scorer: &Scorer,
    chunk: AssignChunk<'_>,
) -> Assigned {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { assign_chunk_avx2::<B, BOUNDED>(x, scorer, chunk) };
    }
    assign_chunk::<B, BOUNDED>(x, scorer, chunk)
}

/// [`assign_chunk`] compiled for AVX2: the same operations in the same order (no fused
/// multiply-add), so the same bits, on 8 lanes at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn assign_chunk_avx2<const B: usize, const BOUNDED: bool>(
    x: &Csr,
    scorer: &Scorer,
    chunk: AssignChunk<'_>,
) -> Assigned {
    assign_chunk::<B, BOUNDED>(x, scorer, chunk)
}

/// Assigns the documents of one chunk; `B` as in [`Scorer::score_into`]; `BOUNDED` when
/// `chunk.bounds` is set (a separate build, so the unbounded loop carries no bound code).
#[inline(always)]
fn assign_chunk<const B: usize, const BOUNDED: bool>(
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

/// Adds `v × w` to the score of each `(cluster, w)` of a term's postings.
#[inline(always)]
fn add_postings(scores: &mut [[f32; LANES]], postings: &[(u32, f32)], v: f32) {
    let flat = scores.as_flattened_mut();
    for &(c, w) in postings {
        flat[c as usize] += v * w;
    }
}

/// How many non-zeros ahead [`Scorer::score_hybrid`] prefetches a term's slot.
const SLOT_AHEAD: usize = 8;

/// How many non-zeros ahead [`Scorer::score_hybrid`] prefetches a term's weights.
const WEIGHTS_AHEAD: usize = 4;

/// Asks the CPU to start loading the cache line that holds `value`.
#[inline(always)]
pub(super) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint and never faults; the pointer comes from a reference.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

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
                let assigned = with_blocks!(scorer.blocks, B => if avx2 {
                    // SAFETY: AVX2 support was checked at the top of the test.
                    unsafe { assign_chunk_avx2::<B, false>(&x, &scorer, chunk) }
                } else {
                    assign_chunk::<B, false>(&x, &scorer, chunk)
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
                with_blocks!(scorer.blocks, B => if avx2 {
                    // SAFETY: AVX2 support was checked at the top of the test.
                    unsafe { nearest_chunk_avx2::<B>(&x, &scorer, chunk) }
                } else {
                    nearest_chunk::<B>(&x, &scorer, chunk)
                });
                let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
                (labels, bits(&sims), seconds, bits(&second_sims))
            };
            proptest::prop_assert_eq!(run_nearest(true), run_nearest(false));
        }
    }
}
