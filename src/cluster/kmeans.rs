//! Spherical k-means over unit-norm sparse rows.
//!
//! # Algorithm
//! Documents and centroids are unit vectors, so similarity is the dot product (cosine).
//! After initialisation ([`super::init`]) every round is:
//! 1. **Update**: each centroid is the L2-normalised sum of its members. With pruning on,
//!    entries whose squared weight is below `centroid_min_df_factor / size` are zeroed (for
//!    clusters larger than one document) and the centroid is renormalised.
//! 2. **Assign**: each document goes to the centroid with the largest cosine (ties go to the
//!    lowest cluster id). The sum of those cosines is the round's objective.
//!
//! With `n_init` starts, the starts are screened in stages ([`SCREEN`]): all of them run 3
//! rounds, the 5 with the largest objective run on to round 5, and only the best of those runs
//! on to the end (measured on four corpora over seeds 0-4: mean NMI within 0.01 of running
//! every start to the end; see `jobs/README.md`).
//!
//! The first assignment follows the initialisation. A cluster left empty by an assignment is
//! re-seeded with the document farthest from its own centroid (lowest cosine), taken from a
//! cluster with more than one member. Rounds stop after `max_iter`, or once the fraction of
//! documents that changed cluster is at most `tol`. The labels returned come from the last
//! assignment, so every document sits with its nearest final centroid.
//!
//! Rows with no terms are not clustered: their label is `-1` and their similarity 0.
//!
//! # Layout and parallelism
//! Centroids are stored sparse ([`Centroids`]); each assignment first lays them out term by
//! term for scoring (see `Scorer`): dense rows for the terms many clusters use, posting lists
//! for the rest, with the scores held in AVX2 registers when k ≤ 32 (and the dense-row part of
//! them when k ≤ 104). No structure is `n × k`, and none is `k × n_terms` beyond k = 32.
//!
//! Assignment runs over fixed-size document chunks with rayon; per-chunk sums are combined in
//! chunk order. The update runs one cluster per task, summing its members in document order.
//! Every document is scored by the same operations in the same order whatever the thread
//! count or instruction set (no fused multiply-add), so results are bit-identical for any
//! `--threads` and with or without AVX2.
//!
//! # References
//! Dhillon & Modha, "Concept decompositions for large sparse text data using clustering",
//! Machine Learning 42 (2001). Kim, "Fast initialisation and sparse centroids for spherical
//! k-means" (talk, 2018).

use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::init::{self, InitReport};
use super::params::ValidClusterParams;
use crate::sparse::{self, Csr};

/// Documents per assignment task. Fixed, so sums do not depend on the thread count.
const ASSIGN_CHUNK: usize = 256;

/// Unit-norm centroids, stored sparse: for each cluster, its non-zero weights by increasing
/// term. Pruning keeps them small, so memory follows the number of non-zeros, not
/// `k × n_terms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Centroids {
    n_terms: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    weights: Vec<f32>,
}

impl Centroids {
    /// No clusters yet, over `n_terms` terms; add rows with [`Centroids::push_dense`].
    pub fn empty(n_terms: usize) -> Self {
        Self {
            n_terms,
            indptr: vec![0],
            indices: Vec::new(),
            weights: Vec::new(),
        }
    }

    /// Builds centroids from cluster-major dense rows (zeros are not stored).
    pub fn from_rows(n_terms: usize, weights: Vec<f32>) -> Self {
        assert!(n_terms == 0 || weights.len().is_multiple_of(n_terms));
        let mut out = Self::empty(n_terms);
        if n_terms > 0 {
            for row in weights.chunks_exact(n_terms) {
                out.push_dense(row);
            }
        }
        out
    }

    /// Appends a cluster given as a dense row of `n_terms` weights.
    pub fn push_dense(&mut self, row: &[f32]) {
        assert_eq!(row.len(), self.n_terms);
        for (j, &w) in row.iter().enumerate() {
            if w != 0.0 {
                self.indices.push(j as u32);
                self.weights.push(w);
            }
        }
        self.indptr.push(self.indices.len());
    }

    /// Appends a cluster given as its non-zero weights by increasing term.
    fn push_sparse(&mut self, indices: &[u32], weights: &[f32]) {
        self.indices.extend_from_slice(indices);
        self.weights.extend_from_slice(weights);
        self.indptr.push(self.indices.len());
    }

    /// The rows in the given order: row `i` of the result is row `order[i]` of `self`.
    pub fn reordered(&self, order: &[usize]) -> Self {
        let mut out = Self::empty(self.n_terms);
        for &c in order {
            let row = self.row(c);
            out.push_sparse(row.indices, row.values);
        }
        out
    }

    /// Number of clusters.
    pub fn n_clusters(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Number of terms (columns).
    pub fn n_terms(&self) -> usize {
        self.n_terms
    }

    /// The non-zero weights of cluster `c`, by increasing term.
    pub fn row(&self, c: usize) -> sparse::Row<'_> {
        let (start, end) = (self.indptr[c], self.indptr[c + 1]);
        sparse::Row {
            indices: &self.indices[start..end],
            values: &self.weights[start..end],
        }
    }

    /// The weights of cluster `c` as a dense row of `n_terms`.
    pub fn dense_row(&self, c: usize) -> Vec<f32> {
        let mut dense = vec![0.0; self.n_terms];
        self.row(c).add_to_dense(&mut dense, 1.0);
        dense
    }

    /// Number of non-zero weights of cluster `c`.
    pub fn nnz(&self, c: usize) -> usize {
        self.indptr[c + 1] - self.indptr[c]
    }

    /// Cosine similarity between clusters `a` and `b`.
    pub fn cosine(&self, a: usize, b: usize) -> f32 {
        self.row(a).dot_sparse(&self.row(b))
    }
}

/// Lanes of the scoring loop: rows of the dense block are padded to a multiple of this, so the
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
struct Scorer {
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
    /// Sum of document-to-centroid cosines after each assignment, starting with the one that
    /// follows initialisation.
    pub objective: Vec<f64>,
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
                            converged: false,
                        }
                    });
                    if !s.converged {
                        s.converged = rounds(x, params, &mut s.fit, n_active, until);
                    }
                    s
                })
                .collect();
            for s in &screened {
                tracing::debug!(
                    stage,
                    restart = s.index,
                    objective = s.score(),
                    "restart screened"
                );
            }
            kept.extend(screened);
            // Best objective first, the lower start on ties: the same choice for any batch.
            kept.sort_by(|a, b| b.score().total_cmp(&a.score()).then(a.index.cmp(&b.index)));
            kept.truncate(keep);
        }
        // The next stage takes its starts in start order.
        kept.sort_by_key(|s| s.index);
    }
    let Start {
        fit: mut best,
        converged,
        ..
    } = kept.into_iter().next().expect("n_init is at least 1");
    if !converged {
        rounds(x, params, &mut best, n_active, params.max_iter());
    }
    best.sizes = cluster_sizes(&best.labels, best.n_clusters);
    best
}

/// One start of [`fit`] while it is being screened.
struct Start {
    /// Position among the `n_init` starts.
    index: usize,
    fit: KMeansFit,
    /// At most `tol` of the documents moved in its last round.
    converged: bool,
}

impl Start {
    /// The objective after its latest assignment.
    fn score(&self) -> f64 {
        self.fit.objective.last().copied().unwrap_or(0.0)
    }
}

/// The screening stages of [`fit`]: every start runs 3 rounds, the best 5 run on to round 5,
/// and the best of those runs to the end. In a replay of every start to the end on four
/// corpora (seeds 0-9), it keeps the start that screening every start for 5 rounds keeps, at
/// 17% fewer rounds, and its mean NMI is within 0.01 of running every start to the end on
/// seeds 0-4 (see `jobs/README.md`, sessions 4 and 5).
const SCREEN: [(usize, usize); 2] = [(3, 5), (5, 1)];

/// Continues k-means from the labels of `fit` (for example after a merge): up to
/// `params.max_iter()` more update-and-assign rounds with `fit.n_clusters` clusters.
pub fn refine(x: &Csr, params: &ValidClusterParams, mut fit: KMeansFit) -> KMeansFit {
    let n_active = x.rows() as f64 - fit.labels.iter().filter(|&&l| l < 0).count() as f64;
    let until = fit.n_iter + params.max_iter();
    rounds(x, params, &mut fit, n_active, until);
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
        objective: Vec::new(),
        n_clusters: k,
        n_reseeded: 0,
        init,
    };
    if k > 0 {
        let (_, obj) = assign(
            x,
            &fit.centroids,
            &mut fit.labels,
            &mut fit.similarity,
            &mut fit.second_similarity,
        );
        fit.objective.push(obj);
    }
    fit
}

/// Runs update-and-assign rounds `fit.n_iter + 1 ..= until`; returns true once at most `tol`
/// of the documents moved in a round.
fn rounds(
    x: &Csr,
    params: &ValidClusterParams,
    fit: &mut KMeansFit,
    n_active: f64,
    until: usize,
) -> bool {
    let k = fit.n_clusters;
    if k == 0 {
        return true;
    }
    while fit.n_iter < until {
        fit.n_reseeded += reseed_empty(&mut fit.labels, &fit.similarity, k);
        let t = std::time::Instant::now();
        fit.centroids = update(x, &fit.labels, k, params.centroid_min_df_factor());
        let update_seconds = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let (changed, obj) = assign(
            x,
            &fit.centroids,
            &mut fit.labels,
            &mut fit.similarity,
            &mut fit.second_similarity,
        );
        fit.objective.push(obj);
        fit.n_iter += 1;
        let moved = changed as f64 / n_active;
        tracing::debug!(
            round = fit.n_iter,
            objective = obj,
            moved,
            update_seconds,
            assign_seconds = t.elapsed().as_secs_f64(),
            "k-means round"
        );
        if moved <= params.tol() {
            return true;
        }
    }
    false
}

/// For fixed `labels`, the cosine of each document to its own centroid and the best cosine
/// to any other centroid (used after merging, when labels are given rather than chosen).
pub fn score_labels(x: &Csr, centroids: &Centroids, labels: &[i32]) -> (Vec<f32>, Vec<f32>) {
    let scorer = Scorer::new(centroids);
    let mut own = vec![0.0f32; labels.len()];
    let mut other = vec![0.0f32; labels.len()];
    own.par_chunks_mut(ASSIGN_CHUNK)
        .zip(other.par_chunks_mut(ASSIGN_CHUNK))
        .enumerate()
        .for_each(|(chunk, (own, other))| {
            let mut scores = scorer.scores();
            for (offset, (o, s)) in own.iter_mut().zip(other.iter_mut()).enumerate() {
                let doc = chunk * ASSIGN_CHUNK + offset;
                let label = labels[doc];
                if label < 0 {
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
    (own, other)
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

/// Assigns every non-empty row to its most similar centroid. Returns the number of documents
/// whose label changed and the sum of their best similarities.
fn assign(
    x: &Csr,
    centroids: &Centroids,
    labels: &mut [i32],
    similarity: &mut [f32],
    second: &mut [f32],
) -> (usize, f64) {
    let scorer = Scorer::new(centroids);
    let partials: Vec<(usize, f64)> = labels
        .par_chunks_mut(ASSIGN_CHUNK)
        .zip(similarity.par_chunks_mut(ASSIGN_CHUNK))
        .zip(second.par_chunks_mut(ASSIGN_CHUNK))
        .enumerate()
        .map(|(chunk, ((labels, sims), seconds))| {
            let chunk = AssignChunk {
                first_doc: chunk * ASSIGN_CHUNK,
                labels,
                sims,
                seconds,
            };
            with_blocks!(scorer.blocks, B => assign_chunk_best::<B>(x, &scorer, chunk))
        })
        .collect();
    partials
        .into_iter()
        .fold((0, 0.0), |(c, t), (pc, pt)| (c + pc, t + pt))
}

/// One task of [`assign`]: a run of documents and their output slots.
struct AssignChunk<'a> {
    first_doc: usize,
    labels: &'a mut [i32],
    sims: &'a mut [f32],
    seconds: &'a mut [f32],
}

/// Runs [`assign_chunk`] compiled for AVX2 when the CPU has it.
#[inline(always)]
fn assign_chunk_best<const B: usize>(
    x: &Csr,
    scorer: &Scorer,
    chunk: AssignChunk<'_>,
) -> (usize, f64) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { assign_chunk_avx2::<B>(x, scorer, chunk) };
    }
    assign_chunk::<B>(x, scorer, chunk)
}

/// [`assign_chunk`] compiled for AVX2: the same operations in the same order (no fused
/// multiply-add), so the same bits, on 8 lanes at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn assign_chunk_avx2<const B: usize>(
    x: &Csr,
    scorer: &Scorer,
    chunk: AssignChunk<'_>,
) -> (usize, f64) {
    assign_chunk::<B>(x, scorer, chunk)
}

/// Assigns the documents of one chunk; `B` as in [`Scorer::score_into`].
#[inline(always)]
fn assign_chunk<const B: usize>(x: &Csr, scorer: &Scorer, chunk: AssignChunk<'_>) -> (usize, f64) {
    let k = scorer.k;
    let mut scores = scorer.scores();
    let (mut changed, mut total) = (0usize, 0.0f64);
    for (offset, ((label, sim), sec)) in chunk
        .labels
        .iter_mut()
        .zip(chunk.sims.iter_mut())
        .zip(chunk.seconds.iter_mut())
        .enumerate()
    {
        let row = sparse::row(x, chunk.first_doc + offset);
        if row.nnz() == 0 {
            continue;
        }
        scorer.score_blocks::<B>(row, &mut scores);
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
            changed += 1;
            *label = best as i32;
        }
        *sim = best_sim;
        *sec = if k > 1 { second_sim } else { 0.0 };
        total += f64::from(best_sim);
    }
    (changed, total)
}

/// Moves the documents farthest from their centroids into empty clusters. Returns how many
/// clusters were re-seeded.
fn reseed_empty(labels: &mut [i32], similarity: &[f32], k: usize) -> usize {
    let mut sizes = cluster_sizes(labels, k);
    let empty: Vec<usize> = (0..k).filter(|&c| sizes[c] == 0).collect();
    if empty.is_empty() {
        return 0;
    }
    let mut order: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] >= 0).collect();
    order.sort_by(|&a, &b| similarity[a].total_cmp(&similarity[b]).then(a.cmp(&b)));
    let mut donors = order.into_iter();
    let mut n = 0;
    for c in empty {
        for doc in donors.by_ref() {
            let from = labels[doc] as usize;
            if sizes[from] > 1 {
                sizes[from] -= 1;
                sizes[c] += 1;
                labels[doc] = c as i32;
                n += 1;
                break;
            }
        }
    }
    n
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
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint and never faults; the pointer comes from a reference.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// How many members ahead [`update`] prefetches a row.
const UPDATE_PREFETCH: usize = 2;

/// Asks the CPU to start loading `row` (up to 8 cache lines of indices and of values).
#[inline(always)]
fn prefetch_row(row: sparse::Row<'_>) {
    const PER_LINE: usize = 64 / size_of::<u32>();
    for offset in (0..row.nnz().min(8 * PER_LINE)).step_by(PER_LINE) {
        prefetch(&row.indices[offset]);
        prefetch(&row.values[offset]);
    }
}

/// Recomputes centroids from the labels: normalised member sums, optionally pruned.
///
/// One task per cluster sums its members in document order into a dense scratch row (one per
/// thread, `n_terms` long), then takes out the non-zeros by increasing term.
fn update(x: &Csr, labels: &[i32], k: usize, prune_factor: f32) -> Centroids {
    let n_terms = x.cols();
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); k];
    for (doc, &l) in labels.iter().enumerate() {
        if l >= 0 {
            members[l as usize].push(doc as u32);
        }
    }
    let tasks_per_thread = 4;
    let min_len = k
        .div_ceil(tasks_per_thread * rayon::current_num_threads())
        .max(1);
    let rows: Vec<(Vec<u32>, Vec<f32>)> = members
        .par_iter()
        .with_min_len(min_len)
        .map_init(
            || (vec![0.0f32; n_terms], vec![0u64; n_terms.div_ceil(64)]),
            |(acc, seen), docs| {
                // `seen` marks touched terms, so only they are read back, in term order.
                for (i, &doc) in docs.iter().enumerate() {
                    // Members are scattered over the matrix: fetch a later member's row
                    // while this one is summed.
                    if let Some(&ahead) = docs.get(i + UPDATE_PREFETCH) {
                        prefetch_row(sparse::row(x, ahead as usize));
                    }
                    let row = sparse::row(x, doc as usize);
                    for (&j, &v) in row.indices.iter().zip(row.values) {
                        acc[j as usize] += v;
                        seen[j as usize / 64] |= 1 << (j % 64);
                    }
                }
                let (mut indices, mut values) = (Vec::new(), Vec::new());
                for (word, bits) in seen.iter_mut().enumerate() {
                    let mut rest = std::mem::take(bits);
                    while rest != 0 {
                        let j = word * 64 + rest.trailing_zeros() as usize;
                        rest &= rest - 1;
                        let a = std::mem::take(&mut acc[j]);
                        if a != 0.0 {
                            indices.push(j as u32);
                            values.push(a);
                        }
                    }
                }
                sparse::normalize(&mut values);
                if prune_factor > 0.0 && docs.len() > 1 {
                    let threshold = prune_factor / docs.len() as f32;
                    // Branch-free compaction (about a quarter of the terms stay, in no
                    // predictable pattern): every entry is copied down, and only a kept one
                    // advances `kept`. `kept <= i`, so nothing unread is overwritten.
                    let mut kept = 0;
                    for i in 0..values.len() {
                        let (j, v) = (indices[i], values[i]);
                        indices[kept] = j;
                        values[kept] = v;
                        kept += usize::from(v * v >= threshold);
                    }
                    if kept < values.len() {
                        indices.truncate(kept);
                        values.truncate(kept);
                        sparse::normalize(&mut values);
                    }
                }
                (indices, values)
            },
        )
        .collect();
    let mut centroids = Centroids::empty(n_terms);
    for (indices, values) in &rows {
        centroids.push_sparse(indices, values);
    }
    centroids
}

#[cfg(test)]
mod tests {
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
        let (changed, obj) = assign(&x, &start, &mut labels, &mut sim, &mut sec);
        // The tie on doc 2 goes to the lowest cluster id.
        assert_eq!(labels, vec![0, 1, 0]);
        assert_eq!(changed, 3);
        assert!((obj - (2.0 + f64::from(s))).abs() < 1e-6);
        assert!((sec[2] - s).abs() < 1e-6);
        // Cluster 0 = normalise(e0 + (e0+e1)/√2) = (1+s, s) / |..|.
        let c = update(&x, &labels, 2, 0.0);
        let norm = ((1.0 + s) * (1.0 + s) + s * s).sqrt();
        assert!((c.dense_row(0)[0] - (1.0 + s) / norm).abs() < 1e-6);
        assert!((c.dense_row(0)[1] - s / norm).abs() < 1e-6);
        assert_eq!(c.dense_row(1), vec![0.0, 1.0]);
    }

    #[test]
    fn empty_cluster_takes_the_farthest_document() {
        let mut labels = vec![0, 0, 0, -1];
        let sims = [0.9, 0.2, 0.5, 0.0];
        assert_eq!(reseed_empty(&mut labels, &sims, 2), 1);
        assert_eq!(labels, vec![0, 1, 0, -1]);
    }

    #[test]
    fn pruning_drops_small_weights_and_keeps_unit_norm() {
        // Two members sharing column 0 strongly; columns 1 and 2 are weak.
        let x = Csr::new(
            (2, 3),
            vec![0, 2, 4],
            vec![0, 1, 0, 2],
            vec![0.995, 0.0998749, 0.995, 0.0998749],
        );
        let c = update(&x, &[0, 0], 1, 0.1);
        assert_eq!(c.nnz(0), 1);
        assert!((sparse::l2_norm(c.row(0).values) - 1.0).abs() < 1e-6);
        let unpruned = update(&x, &[0, 0], 1, 0.0);
        assert_eq!(unpruned.nnz(0), 3);
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
            use rand::RngExt;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n_terms = x.cols();
            let rows: Vec<f32> = (0..k * n_terms)
                .map(|_| if rng.random_bool(density) { rng.random_range(0.01f32..1.0) } else { 0.0 })
                .collect();
            let centroids = Centroids::from_rows(n_terms, rows);
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
        /// Screening picks, among the starts, the one a brute-force replay picks: every start
        /// run alone to round 3, the best 5 by objective (lower start on ties) to round 5, and
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
                while n < rounds_to && !rounds(&x, &params, &mut f, n_active, n + 1) {
                    n += 1;
                }
                f
            };
            let seeds: Vec<_> = (0..7)
                .map(|_| init::choose_seeds(&x, &candidates, k, params.init(), params.alpha(), params.max_similar(), &mut rng))
                .collect();
            let last = |f: &KMeansFit| f.objective.last().copied().unwrap_or(0.0);
            let mut order: Vec<usize> = (0..7).collect();
            let after_3: Vec<f64> = (0..7).map(|i| last(&run_to(i, 3, &seeds))).collect();
            order.sort_by(|&a, &b| after_3[b].total_cmp(&after_3[a]).then(a.cmp(&b)));
            let best = *order[..5]
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
