//! The centroids laid out for scoring: dense rows for terms many clusters share, posting
//! lists for the rest, so one document is scored against every centroid in a few vector
//! multiply-adds.

use super::simd::prefetch;
use super::{DENSE_SHARE, LANES, REGISTER_BLOCKS};
use crate::cluster::centroids::Centroids;
use crate::sparse;

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
pub(in crate::cluster) struct Scorer {
    pub(super) k: usize,
    /// Blocks of [`LANES`] clusters: `k` rounded up.
    pub(super) blocks: usize,
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
    pub(super) fn new(centroids: &Centroids) -> Self {
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
    pub(super) fn scores(&self) -> Vec<[f32; LANES]> {
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
    pub(super) fn score(&self, row: sparse::Row<'_>, scores: &mut [[f32; LANES]]) {
        with_blocks!(self.blocks, B => self.score_blocks::<B>(row, scores))
    }

    /// Cosine of `row` with every centroid, into `scores`, for `B` blocks (`B = 0`: more
    /// than [`HYBRID_REGISTER_BLOCKS`]).
    #[inline(always)]
    pub(super) fn score_blocks<const B: usize>(
        &self,
        row: sparse::Row<'_>,
        scores: &mut [[f32; LANES]],
    ) {
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
