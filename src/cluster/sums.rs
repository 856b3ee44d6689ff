//! Member sums, and the centroids made from them: the update step of k-means.
//!
//! Sums are `f64`. When every weight is a multiple of 2⁻³⁶ ([`sparse::on_sum_grid`], which
//! TF-IDF rows are) and a sum has at most 2¹⁷ terms of magnitude at most 1, every partial sum
//! is a multiple of 2⁻³⁶ below 2¹⁷, which f64's 53-bit mantissa holds exactly: sums do not
//! depend on the order of their terms. Then a cluster's sum can be kept from round to round
//! and corrected by the documents that joined and left ([`Sums::apply`]) and still equal, bit
//! for bit, the sum of its members taken from scratch ([`centroids_from_members`]).
//! Clusters whose membership did not change keep their centroid without any work.

use rayon::prelude::*;

use super::score::prefetch;
use crate::sparse::{self, Csr};

/// Kept sums cost `k × n_terms × 8` bytes; above this they are not kept and each update sums
/// the members of its changed clusters from scratch (with the same result).
const MAX_KEPT_BYTES: usize = 64 << 20;

/// Sums are exact (see the module docs) for at most this many documents.
const MAX_EXACT_DOCS: usize = 1 << 17;

/// One cluster's new centroid: its non-zero weights by increasing term, and the sum of its
/// members' cosines to it (`⟨member sum, centroid⟩`).
pub(super) struct Centroid {
    pub indices: Vec<u32>,
    pub weights: Vec<f32>,
    pub objective: f64,
}

/// The centroid of a cluster of `size` members whose sum is `sum[j]` at the terms set in
/// `touched`: the sum normalised, with pruning the weights whose square is below
/// `prune_factor / size` dropped (clusters of more than one member), renormalised. With
/// `take`, the sum and the bits are reset to zero as they are read.
pub(super) fn centroid<T: Acc>(
    sum: &mut [T],
    touched: &mut [u64],
    size: usize,
    prune: f32,
    take: bool,
) -> Centroid {
    let (mut indices, mut values) = (Vec::new(), Vec::<f64>::new());
    for (word, bits) in touched.iter_mut().enumerate() {
        let mut rest = if take { std::mem::take(bits) } else { *bits };
        while rest != 0 {
            let j = word * 64 + rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let s = if take {
                std::mem::take(&mut sum[j])
            } else {
                sum[j]
            };
            if s != T::default() {
                indices.push(j as u32);
                values.push(s.into());
            }
        }
    }
    let norm2: f64 = values.iter().map(|v| v * v).sum();
    if prune > 0.0 && size > 1 && norm2 > 0.0 {
        let min_share = f64::from(prune) / size as f64;
        let mut kept = 0;
        for i in 0..values.len() {
            let (j, v) = (indices[i], values[i]);
            indices[kept] = j;
            values[kept] = v;
            kept += usize::from(v * v >= min_share * norm2);
        }
        indices.truncate(kept);
        values.truncate(kept);
    }
    let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
    let (mut weights, mut objective) = (Vec::with_capacity(values.len()), 0.0);
    if norm > 0.0 && norm.is_finite() {
        for &v in &values {
            let w = (v / norm) as f32;
            weights.push(w);
            objective += v * f64::from(w);
        }
    } else {
        indices.clear();
    }
    Centroid {
        indices,
        weights,
        objective,
    }
}

/// A sum's scalar: `f32` for speed, `f64` for exact sums.
pub(super) trait Acc: Copy + Default + PartialEq + Into<f64> + Send + Sync {
    /// `self + sign · v`.
    fn plus(self, sign: f64, v: f32) -> Self;
}

impl Acc for f32 {
    #[inline(always)]
    fn plus(self, sign: f64, v: f32) -> Self {
        self + sign as f32 * v
    }
}

impl Acc for f64 {
    #[inline(always)]
    fn plus(self, sign: f64, v: f32) -> Self {
        self + sign * f64::from(v)
    }
}

/// A sum in fixed point: an integer count of 2⁻³⁶ ([`sparse::SUM_GRID`]), the grid TF-IDF
/// weights are snapped to. Integer sums are exact and do not depend on the order of their
/// terms, so sums taken batch by batch, corrected by moves, or added up by an engine (as
/// `int64`) over any partitioning are the same bits. Each weight of magnitude at most 1 adds
/// at most 2³⁶, so a sum of fewer than 2²⁷ members cannot overflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fixed(pub i64);

/// 2³⁶, one in fixed point.
const FIXED_ONE: f64 = (1u64 << 36) as f64;

impl Fixed {
    /// `v` in fixed point: exact for a weight on the grid, else rounded to the nearest step.
    #[inline(always)]
    pub fn of(v: f32) -> Self {
        Self((f64::from(v) * FIXED_ONE).round() as i64)
    }
}

impl From<Fixed> for f64 {
    /// Exact while the sum is below 2¹⁷ (2⁵³ steps), else rounded to nearest.
    fn from(v: Fixed) -> f64 {
        v.0 as f64 / FIXED_ONE
    }
}

impl Acc for Fixed {
    #[inline(always)]
    fn plus(self, sign: f64, v: f32) -> Self {
        let step = Fixed::of(v).0;
        Self(if sign < 0.0 {
            self.0.wrapping_sub(step)
        } else {
            self.0.wrapping_add(step)
        })
    }
}

/// Adds (or with `sign = -1` removes) row `doc` of `x` to a cluster's sum.
#[inline(always)]
pub(super) fn add_row<T: Acc>(x: &Csr, doc: usize, sign: f64, sum: &mut [T], touched: &mut [u64]) {
    let row = sparse::row(x, doc);
    for (&j, &v) in row.indices.iter().zip(row.values) {
        sum[j as usize] = sum[j as usize].plus(sign, v);
        touched[j as usize / 64] |= 1 << (j % 64);
    }
}

/// Documents per cluster, in document order, for the clusters where `wanted[c]`.
fn members(labels: &[i32], k: usize, wanted: &[bool]) -> Vec<Vec<u32>> {
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); k];
    for (doc, &l) in labels.iter().enumerate() {
        if l >= 0 && wanted[l as usize] {
            members[l as usize].push(doc as u32);
        }
    }
    members
}

/// Parallel tasks over `k` clusters: about four per thread.
fn min_len(k: usize) -> usize {
    k.div_ceil(4 * rayon::current_num_threads()).max(1)
}

/// New centroids of the clusters where `wanted[c]` (`None` for the others), each summed from
/// its members, in document order, in one task with a scratch row of `T` per thread.
pub(super) fn centroids_from_members<T: Acc>(
    x: &Csr,
    labels: &[i32],
    k: usize,
    wanted: &[bool],
    prune: f32,
) -> Vec<Option<Centroid>> {
    let n_terms = x.cols();
    members(labels, k, wanted)
        .par_iter()
        .zip(wanted)
        .with_min_len(min_len(k))
        .map_init(
            || {
                (
                    vec![T::default(); n_terms],
                    vec![0u64; n_terms.div_ceil(64)],
                )
            },
            |(sum, touched), (docs, &wanted)| {
                wanted.then(|| {
                    for (i, &doc) in docs.iter().enumerate() {
                        // Members are scattered over the matrix: fetch a later member's row
                        // while this one is summed.
                        if let Some(&ahead) = docs.get(i + PREFETCH_AHEAD) {
                            prefetch_row(sparse::row(x, ahead as usize));
                        }
                        add_row(x, doc as usize, 1.0, sum, touched);
                    }
                    centroid(sum, touched, docs.len(), prune, true)
                })
            },
        )
        .collect()
}

/// How many members ahead [`centroids_from_members`] prefetches a row.
const PREFETCH_AHEAD: usize = 2;

/// Asks the CPU to start loading `row` (up to 8 cache lines of indices and of values).
#[inline(always)]
fn prefetch_row(row: sparse::Row<'_>) {
    const PER_LINE: usize = 64 / size_of::<u32>();
    for offset in (0..row.nnz().min(8 * PER_LINE)).step_by(PER_LINE) {
        prefetch(&row.indices[offset]);
        prefetch(&row.values[offset]);
    }
}

/// Member sums of every cluster, kept between rounds.
pub(super) struct Sums {
    pub(super) n_terms: usize,
    pub(super) words: usize,
    /// Cluster-major, `n_terms` per cluster.
    pub(super) sum: Vec<f64>,
    /// Terms each cluster's sum has touched (a sum may have returned to zero since).
    pub(super) touched: Vec<u64>,
}

impl Sums {
    /// Whether sums of `x`'s rows are exact: the weights are on the grid and there are few
    /// enough documents. A single pass over the weights.
    pub fn exact(x: &Csr) -> bool {
        x.rows() <= MAX_EXACT_DOCS && x.data().iter().all(|&v| sparse::on_sum_grid(v))
    }

    /// Whether sums for `k` clusters over `n_terms` terms fit the memory budget.
    pub fn fit(k: usize, n_terms: usize) -> bool {
        k.saturating_mul(n_terms).saturating_mul(8) <= MAX_KEPT_BYTES
    }

    /// Zero sums of `k` clusters over `n_terms` terms.
    pub(super) fn zeroed(k: usize, n_terms: usize) -> Self {
        let words = n_terms.div_ceil(64);
        Self {
            n_terms,
            words,
            sum: vec![0.0; k * n_terms],
            touched: vec![0; k * words],
        }
    }

    /// The sums of the clusters given by `labels`.
    pub fn new(x: &Csr, labels: &[i32], k: usize) -> Self {
        let mut sums = Self::zeroed(k, x.cols());
        // Fault the pages in here, in order: taken by scattered writes from parallel tasks,
        // the same faults cost several times more (20 Newsgroups, k = 20: 29 ms against 9 ms
        // for this whole function).
        sums.sum.fill(0.0);
        sums.recompute(x, labels, &vec![true; k]);
        sums
    }

    /// Runs `f` on each cluster's sum with its item of `per_cluster`, clusters in parallel.
    fn for_each_cluster<T: Sync>(
        &mut self,
        per_cluster: &[T],
        f: impl Fn(&mut [f64], &mut [u64], &T) + Sync,
    ) {
        if self.n_terms == 0 {
            return;
        }
        let k = per_cluster.len();
        self.sum
            .par_chunks_mut(self.n_terms)
            .zip(self.touched.par_chunks_mut(self.words))
            .zip(per_cluster)
            .with_min_len(min_len(k))
            .for_each(|((sum, touched), item)| f(sum, touched, item));
    }

    /// Sums again, from their members, the clusters where `wanted[c]`.
    pub fn recompute(&mut self, x: &Csr, labels: &[i32], wanted: &[bool]) {
        let members: Vec<(bool, Vec<u32>)> = wanted
            .iter()
            .copied()
            .zip(members(labels, wanted.len(), wanted))
            .collect();
        self.for_each_cluster(&members, |sum, touched, (wanted, docs)| {
            if !wanted {
                return;
            }
            for (word, bits) in touched.iter_mut().enumerate() {
                let mut rest = std::mem::take(bits);
                while rest != 0 {
                    sum[word * 64 + rest.trailing_zeros() as usize] = 0.0;
                    rest &= rest - 1;
                }
            }
            for &doc in docs {
                add_row(x, doc as usize, 1.0, sum, touched);
            }
        });
    }

    /// Moves documents between clusters: `(doc, from, to)` for each.
    pub fn apply(&mut self, x: &Csr, moves: &[(u32, i32, i32)], k: usize) {
        let mut per_cluster: Vec<Vec<(u32, f64)>> = vec![Vec::new(); k];
        for &(doc, from, to) in moves {
            if from >= 0 {
                per_cluster[from as usize].push((doc, -1.0));
            }
            if to >= 0 {
                per_cluster[to as usize].push((doc, 1.0));
            }
        }
        self.for_each_cluster(&per_cluster, |sum, touched, docs| {
            for &(doc, sign) in docs {
                add_row(x, doc as usize, sign, sum, touched);
            }
        });
    }

    /// New centroids of the clusters where `wanted[c]`, from the kept sums; `sizes[c]` is the
    /// cluster's number of members.
    pub fn centroids(
        &mut self,
        wanted: &[bool],
        sizes: &[u64],
        prune: f32,
    ) -> Vec<Option<Centroid>> {
        let k = wanted.len();
        if self.n_terms == 0 {
            return wanted
                .iter()
                .map(|&w| {
                    w.then(|| Centroid {
                        indices: Vec::new(),
                        weights: Vec::new(),
                        objective: 0.0,
                    })
                })
                .collect();
        }
        self.sum
            .par_chunks_mut(self.n_terms)
            .zip(self.touched.par_chunks_mut(self.words))
            .zip(wanted.par_iter().zip(sizes))
            .with_min_len(min_len(k))
            .map(|((sum, touched), (&wanted, &size))| {
                wanted.then(|| centroid(sum, touched, size as usize, prune, false))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::centroids::Centroids;
    use crate::cluster::streamed::StreamedSums;

    #[test]
    fn kept_sums_corrected_by_moves_equal_sums_from_scratch() {
        let x = Csr::new(
            (4, 3),
            vec![0, 2, 3, 5, 6],
            vec![0, 1, 2, 0, 2, 1],
            vec![0.6, 0.8, 1.0, 0.8, 0.6, 1.0],
        );
        let before = [0, 0, 1, 1];
        let after = [0, 1, 1, 0];
        let mut sums = Sums::new(&x, &before, 2);
        sums.apply(&x, &[(1, 0, 1), (3, 1, 0)], 2);
        let kept = sums.centroids(&[true, true], &[2, 2], 0.0);
        let fresh = centroids_from_members::<f64>(&x, &after, 2, &[true, true], 0.0);
        for (a, b) in kept.iter().zip(&fresh) {
            let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
            assert_eq!((&a.indices, &a.weights), (&b.indices, &b.weights));
            assert_eq!(a.objective.to_bits(), b.objective.to_bits());
        }
        // Cluster 0 = docs 0 and 3: (0.6, 0.8 + 1.0, 0), normalised.
        let c0 = kept[0].as_ref().unwrap();
        let n = (0.6f64 * 0.6 + 1.8 * 1.8).sqrt();
        assert_eq!(c0.indices, vec![0, 1]);
        assert!((f64::from(c0.weights[0]) - 0.6 / n).abs() < 1e-7);
        // The objective is the members' summed cosines: |sum| before pruning.
        assert!((c0.objective - n).abs() < 1e-6);
    }

    #[test]
    fn pruning_drops_small_shares_and_renormalises() {
        let x = Csr::new(
            (2, 3),
            vec![0, 2, 4],
            vec![0, 1, 0, 2],
            vec![0.995, 0.0998749, 0.995, 0.0998749],
        );
        let c = centroids_from_members::<f32>(&x, &[0, 0], 1, &[true], 0.1);
        let c = c[0].as_ref().unwrap();
        assert_eq!(c.indices, vec![0]);
        assert_eq!(c.weights, vec![1.0]);
        let unpruned = centroids_from_members::<f64>(&x, &[0, 0], 1, &[true], 0.0);
        assert_eq!(unpruned[0].as_ref().unwrap().indices.len(), 3);
    }

    #[test]
    fn streamed_sums_in_batches_equal_sums_of_the_whole_matrix() {
        let x = Csr::new(
            (4, 3),
            vec![0, 2, 3, 5, 6],
            vec![0, 1, 2, 0, 2, 1],
            vec![0.6, 0.8, 1.0, 0.8, 0.6, 1.0],
        );
        let labels = [0, 1, 0, -1];
        let whole = centroids_from_members::<f64>(&x, &labels, 3, &[true; 3], 0.0);
        let previous = Centroids::from_rows(3, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let mut streamed = StreamedSums::new(3, 3);
        // Rows 0-1, then rows 2-3, as two batches.
        streamed.add(
            &Csr::new((2, 3), vec![0, 2, 3], vec![0, 1, 2], vec![0.6, 0.8, 1.0]),
            &labels[..2],
        );
        streamed.add(
            &Csr::new((2, 3), vec![0, 2, 3], vec![0, 2, 1], vec![0.8, 0.6, 1.0]),
            &labels[2..],
        );
        assert_eq!(streamed.sizes(), &[2, 1, 0]);
        let (c, objective) = streamed.centroids(&previous, 0.0);
        for (cluster, w) in whole.iter().enumerate().take(2) {
            let w = w.as_ref().unwrap();
            assert_eq!(c.row(cluster).indices, &w.indices[..]);
            assert_eq!(c.row(cluster).values, &w.weights[..]);
        }
        // Cluster 2 got no member: it keeps its previous centroid.
        assert_eq!(c.dense_row(2), vec![0.0, 0.0, 1.0]);
        let expected: f64 = whole[..2]
            .iter()
            .map(|w| w.as_ref().unwrap().objective)
            .sum();
        assert_eq!(objective.to_bits(), expected.to_bits());
    }

    #[test]
    fn streamed_sums_corrected_by_moves_equal_sums_from_scratch() {
        let batches = [
            Csr::new((2, 3), vec![0, 2, 3], vec![0, 1, 2], vec![0.6, 0.8, 1.0]),
            Csr::new((3, 3), vec![0, 2, 3, 3], vec![0, 2, 1], vec![0.8, 0.6, 1.0]),
        ];
        let before = [[0, 1].as_slice(), &[0, 2, -1]];
        let after = [[1, 1].as_slice(), &[0, 0, -1]];
        let previous = Centroids::from_rows(3, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let mut kept = StreamedSums::new(3, 3);
        for (x, labels) in batches.iter().zip(before) {
            kept.add(x, labels);
        }
        kept.centroids(&previous, 0.0);
        for ((x, from), to) in batches.iter().zip(before).zip(after) {
            let moves: Vec<(u32, i32, i32)> = (from.iter().zip(to).enumerate())
                .filter(|(_, (a, b))| a != b)
                .map(|(row, (&a, &b))| (row as u32, a, b))
                .collect();
            kept.apply_moves(x, &moves);
        }
        let mut fresh = StreamedSums::new(3, 3);
        for (x, labels) in batches.iter().zip(after) {
            fresh.add(x, labels);
        }
        assert_eq!(kept.sizes(), &[2, 2, 0]);
        assert_eq!(kept.sizes(), fresh.sizes());
        let (a, a_objective) = kept.centroids(&previous, 0.0);
        let (b, b_objective) = fresh.centroids(&previous, 0.0);
        assert_eq!(a, b);
        assert_eq!(a_objective.to_bits(), b_objective.to_bits());
        // Cluster 2 lost its only member: it keeps its previous centroid.
        assert_eq!(a.dense_row(2), vec![0.0, 0.0, 1.0]);
        // Cleared, the sums start again.
        kept.clear();
        for (x, labels) in batches.iter().zip(after) {
            kept.add(x, labels);
        }
        assert_eq!(kept.centroids(&previous, 0.0).0, b);
    }

    #[test]
    fn streamed_sums_do_not_depend_on_order_or_partitioning() {
        // Weights off the grid, and a term whose total is far above 2¹⁷: f64 sums of these
        // would depend on the order; fixed-point sums do not.
        let n = 300_000usize;
        let weight = |i: usize| 0.3 + (i % 97) as f32 * 1e-5;
        let x = Csr::new(
            (n, 2),
            (0..=n).map(|i| i * 2).collect(),
            (0..n).flat_map(|_| [0u32, 1]).collect(),
            (0..n).flat_map(|i| [weight(i), 1.0]).collect(),
        );
        let labels: Vec<i32> = (0..n).map(|i| (i % 3 == 0) as i32).collect();
        let previous = Centroids::from_rows(2, vec![1.0, 0.0, 0.0, 1.0]);
        let mut forward = StreamedSums::new(2, 2);
        forward.add(&x, &labels);
        // The same rows in reverse, as partial sums of 7 "partitions" added up in reverse.
        let reversed: Vec<usize> = (0..n).rev().collect();
        let rows = |idx: &[usize]| {
            let mut indptr = vec![0];
            let (mut indices, mut data) = (Vec::new(), Vec::new());
            for &i in idx {
                let row = sparse::row(&x, i);
                indices.extend_from_slice(row.indices);
                data.extend_from_slice(row.values);
                indptr.push(indices.len());
            }
            Csr::new((idx.len(), 2), indptr, indices, data)
        };
        let mut total = StreamedSums::new(2, 2);
        for part in reversed.chunks(n.div_ceil(7)).rev() {
            let mut partial = StreamedSums::new(2, 2);
            let part_labels: Vec<i32> = part.iter().map(|&i| labels[i]).collect();
            partial.add(&rows(part), &part_labels);
            for (c, j, v) in partial.entries() {
                total.add_entry(c as usize, j as usize, v).unwrap();
            }
            for (c, &size) in partial.sizes().iter().enumerate() {
                total.add_members(c, size).unwrap();
            }
        }
        assert_eq!(forward.sizes(), total.sizes());
        let (a, a_objective) = forward.centroids(&previous, 0.0);
        let (b, b_objective) = total.centroids(&previous, 0.0);
        assert_eq!(a, b);
        assert_eq!(a_objective.to_bits(), b_objective.to_bits());
        assert!(forward.entries().eq(total.entries()));
        assert!(total.add_entry(2, 0, 1).is_err() && total.add_entry(0, 2, 1).is_err());
        assert!(total.within_limits());
    }

    #[test]
    fn an_empty_cluster_has_an_empty_centroid() {
        let x = Csr::new((1, 2), vec![0, 1], vec![0], vec![1.0]);
        let c = centroids_from_members::<f32>(&x, &[0], 2, &[true, true], 0.01);
        assert!(c[1].as_ref().unwrap().indices.is_empty());
        assert_eq!(c[1].as_ref().unwrap().objective, 0.0);
    }
}
