//! Assignment rounds and member sums over documents that are read in batches, the same batches in the same
//! order every round (a sampled fit's refinement over the whole input).

use rayon::prelude::*;

use super::centroids::Centroids;
use super::score::{NearestCentroids, assign_scored};
use super::sums::{Centroid, Fixed, add_row, centroid};
use crate::sparse::Csr;

/// The cluster of every document read so far, in reading order (4 bytes a document).
pub struct StreamedAssignment {
    labels: Vec<i32>,
    /// Scratch for the similarities [`assign_scored`] writes.
    similarity: Vec<f32>,
    second: Vec<f32>,
}

impl StreamedAssignment {
    /// No documents yet.
    pub fn new() -> Self {
        Self {
            labels: Vec::new(),
            similarity: Vec::new(),
            second: Vec::new(),
        }
    }

    /// The first round: assigns every row of `x` (the next batch), appends the labels and
    /// returns them (`-1` for an empty row).
    pub fn first(&mut self, centroids: &NearestCentroids, x: &Csr) -> &[i32] {
        let start = self.labels.len();
        self.labels.resize(start + x.rows(), -1);
        self.next(centroids, x, start);
        &self.labels[start..]
    }

    /// A later round: assigns the rows of `x`, the batch that holds documents
    /// `position..position + x.rows()`, and returns the `(row of x, old cluster, new
    /// cluster)` of every row that changed cluster.
    pub fn next(
        &mut self,
        centroids: &NearestCentroids,
        x: &Csr,
        position: usize,
    ) -> Vec<(u32, i32, i32)> {
        let Some(scorer) = centroids.scorer() else {
            return Vec::new();
        };
        self.similarity.resize(x.rows(), 0.0);
        self.second.resize(x.rows(), 0.0);
        let labels = &mut self.labels[position..position + x.rows()];
        assign_scored(
            scorer,
            x,
            labels,
            &mut self.similarity,
            &mut self.second,
            None,
        )
        .moves
    }

    /// Every document's cluster, in reading order.
    pub fn labels(&self) -> &[i32] {
        &self.labels
    }
}

impl Default for StreamedAssignment {
    fn default() -> Self {
        Self::new()
    }
}

/// Member sums built batch by batch, for centroids over more documents than are held in
/// memory at once (a fit on a sample, refined over the whole corpus): `k × n_terms × 8`
/// bytes, whatever the number of documents.
///
/// The sums are integers ([`Fixed`]): they are exact, so they do not depend on the order
/// the documents come in, on the batches, or on the thread count. From one round to the next
/// they are kept and corrected by the documents that changed cluster
/// ([`StreamedSums::apply_moves`]), which gives the sums taken from scratch bit for bit; and
/// an engine can take partial sums over its partitions ([`StreamedSums::entries`]), add them
/// up as `int64` in any order and rebuild the same sums ([`StreamedSums::add_entry`]).
///
/// A cluster holds fewer than 2²⁷ members ([`StreamedSums::within_limits`]); above that a sum
/// could overflow.
pub struct StreamedSums {
    n_terms: usize,
    words: usize,
    /// Cluster-major, `n_terms` per cluster.
    sum: Vec<Fixed>,
    /// Terms each cluster's sum has touched (a sum may have returned to zero since).
    touched: Vec<u64>,
    sizes: Vec<u64>,
}

/// The most members a cluster of [`StreamedSums`] may hold.
pub const MAX_STREAMED_MEMBERS: u64 = 1 << 27;

impl StreamedSums {
    /// Zero sums for `k` clusters over `n_terms` terms.
    pub fn new(k: usize, n_terms: usize) -> Self {
        let words = n_terms.div_ceil(64);
        Self {
            n_terms,
            words,
            sum: vec![Fixed::default(); k * n_terms],
            touched: vec![0; k * words],
            sizes: vec![0; k],
        }
    }

    /// Back to zero sums and no members, keeping the memory.
    pub fn clear(&mut self) {
        self.sum.fill(Fixed::default());
        self.touched.fill(0);
        self.sizes.fill(0);
    }

    /// Adds row `i` of `x` to cluster `labels[i]` (rows labelled `-1` are left out).
    pub fn add(&mut self, x: &Csr, labels: &[i32]) {
        assert_eq!(x.rows(), labels.len(), "one label per row");
        let moves: Vec<(u32, i32, i32)> = labels
            .iter()
            .enumerate()
            .filter(|&(_, &l)| l >= 0)
            .map(|(doc, &l)| (doc as u32, -1, l))
            .collect();
        self.apply_moves(x, &moves);
    }

    /// Moves rows of `x` between clusters: `(row, from, to)` for each, as an assignment
    /// reports them (`from` is the cluster the row was added to before; `-1`: none).
    pub fn apply_moves(&mut self, x: &Csr, moves: &[(u32, i32, i32)]) {
        assert_eq!(x.cols(), self.n_terms, "rows over the sums' terms");
        let k = self.sizes.len();
        let mut per_cluster: Vec<Vec<(u32, f64)>> = vec![Vec::new(); k];
        for &(doc, from, to) in moves {
            if from >= 0 {
                self.sizes[from as usize] -= 1;
                per_cluster[from as usize].push((doc, -1.0));
            }
            if to >= 0 {
                self.sizes[to as usize] += 1;
                per_cluster[to as usize].push((doc, 1.0));
            }
        }
        if self.n_terms == 0 {
            return;
        }
        self.sum
            .par_chunks_mut(self.n_terms)
            .zip(self.touched.par_chunks_mut(self.words))
            .zip(&per_cluster)
            .filter(|(_, docs)| !docs.is_empty())
            .for_each(|((sum, touched), docs)| {
                for &(doc, sign) in docs {
                    add_row(x, doc as usize, sign, sum, touched);
                }
            });
    }

    /// Whether every cluster holds fewer than [`MAX_STREAMED_MEMBERS`] members, so that no
    /// sum can have overflowed.
    pub fn within_limits(&self) -> bool {
        self.sizes.iter().all(|&n| n < MAX_STREAMED_MEMBERS)
    }

    /// Members added per cluster.
    pub fn sizes(&self) -> &[u64] {
        &self.sizes
    }

    /// Every sum a term has touched, as `(cluster, term, sum)` by cluster and term: partial
    /// sums an engine adds up. A touched sum that returned to zero is listed too.
    pub fn entries(&self) -> impl Iterator<Item = (u32, u32, i64)> + '_ {
        let (n_terms, words) = (self.n_terms, self.words);
        (0..self.sizes.len()).flat_map(move |c| {
            let touched = &self.touched[c * words..(c + 1) * words];
            let sum = &self.sum[c * n_terms..(c + 1) * n_terms];
            touched.iter().enumerate().flat_map(move |(word, &bits)| {
                let mut rest = bits;
                std::iter::from_fn(move || {
                    (rest != 0).then(|| {
                        let j = word * 64 + rest.trailing_zeros() as usize;
                        rest &= rest - 1;
                        (c as u32, j as u32, sum[j].0)
                    })
                })
            })
        })
    }

    /// Adds `value` to the sum of `cluster` at `term` (an entry of another
    /// [`StreamedSums`]); out-of-range entries are refused.
    pub fn add_entry(&mut self, cluster: usize, term: usize, value: i64) -> Result<(), String> {
        if cluster >= self.sizes.len() || term >= self.n_terms {
            return Err(format!(
                "entry (cluster {cluster}, term {term}) outside {} clusters × {} terms",
                self.sizes.len(),
                self.n_terms
            ));
        }
        let s = &mut self.sum[cluster * self.n_terms + term];
        s.0 = s.0.wrapping_add(value);
        self.touched[cluster * self.words + term / 64] |= 1 << (term % 64);
        Ok(())
    }

    /// Adds `n` members to `cluster` (a size from another [`StreamedSums`]).
    pub fn add_members(&mut self, cluster: usize, n: u64) -> Result<(), String> {
        let k = self.sizes.len();
        let size = self
            .sizes
            .get_mut(cluster)
            .ok_or_else(|| format!("cluster {cluster} outside {k} clusters"))?;
        *size += n;
        Ok(())
    }

    /// The centroids of the sums (pruned as a fit's are), and their objective: the summed
    /// cosine of every added document to its cluster's new centroid. A cluster that got no
    /// member keeps its row of `previous`.
    pub fn centroids(&mut self, previous: &Centroids, prune: f32) -> (Centroids, f64) {
        let k = self.sizes.len();
        assert_eq!(
            previous.n_clusters(),
            k,
            "one previous centroid per cluster"
        );
        let empty = || Centroid {
            indices: Vec::new(),
            weights: Vec::new(),
            objective: 0.0,
        };
        let fresh: Vec<Option<Centroid>> = if self.n_terms == 0 {
            self.sizes.iter().map(|&n| (n > 0).then(empty)).collect()
        } else {
            self.sum
                .par_chunks_mut(self.n_terms)
                .zip(self.touched.par_chunks_mut(self.words))
                .zip(&self.sizes)
                .map(|((sum, touched), &size)| {
                    (size > 0).then(|| centroid(sum, touched, size as usize, prune, false))
                })
                .collect()
        };
        let mut out = Centroids::empty(self.n_terms);
        let mut objective = 0.0;
        for (c, fresh) in fresh.iter().enumerate() {
            match fresh {
                Some(f) => {
                    out.push_sparse(&f.indices, &f.weights);
                    objective += f.objective;
                }
                None => {
                    let row = previous.row(c);
                    out.push_sparse(row.indices, row.values);
                }
            }
        }
        (out, objective)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kmeans::tests::topics;
    use crate::cluster::{Centroids, StreamedSums, nearest};
    use crate::sparse;

    /// Rows `range` of `x` as a matrix of their own.
    fn rows(x: &Csr, range: std::ops::Range<usize>) -> Csr {
        let (mut indptr, mut indices, mut data) = (vec![0], Vec::new(), Vec::new());
        for i in range {
            let row = sparse::row(x, i);
            indices.extend_from_slice(row.indices);
            data.extend_from_slice(row.values);
            indptr.push(indices.len());
        }
        Csr::new((indptr.len() - 1, x.cols()), indptr, indices, data)
    }

    #[test]
    fn streamed_rounds_label_as_scoring_the_whole_matrix_would() {
        let (x, k) = (topics(3000, 6, 400, 7), 8);
        let batches: Vec<Csr> = (0..x.rows())
            .step_by(700)
            .map(|start| rows(&x, start..(start + 700).min(x.rows())))
            .collect();
        let mut centroids = Centroids::empty(x.cols());
        for c in 0..k {
            let row = sparse::row(&x, c * 37);
            centroids.push_sparse(row.indices, row.values);
        }
        let mut assignment = StreamedAssignment::new();
        let mut sums = StreamedSums::new(k, x.cols());
        let mut moved = Vec::new();
        for round in 1..=20 {
            let scorer = NearestCentroids::new(&centroids);
            sums.clear();
            let mut position = 0;
            for b in &batches {
                if round == 1 {
                    sums.add(b, assignment.first(&scorer, b));
                } else {
                    let moves = assignment.next(&scorer, b, position);
                    assert!(moves.iter().all(|&(row, from, to)| {
                        from != to && assignment.labels()[position + row as usize] == to
                    }));
                    sums.add(b, &assignment.labels()[position..position + b.rows()]);
                }
                position += b.rows();
            }
            let expected = nearest(&x, &centroids).labels;
            assert_eq!(assignment.labels(), &expected[..], "round {round}");
            let (new, _) = sums.centroids(&centroids, 0.01);
            moved.push(new != centroids);
            centroids = new;
        }
        // The rounds went on long enough to check labels that change.
        assert!(moved[..5].iter().all(|&m| m), "{moved:?}");
    }
}
