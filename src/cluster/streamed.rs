//! Assignment rounds and member sums over documents that are read in batches, the same batches in the same
//! order every round (a sampled fit's refinement over the whole input).

use super::centroids::Centroids;
use super::score::{NearestCentroids, assign_scored};
use super::sums::{MAX_EXACT_SUM, Sums};
use crate::sparse::{self, Csr};

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
/// bytes, whatever the number of documents. Each batch's rows are added cluster by cluster
/// in document order, so the sums do not depend on the thread count.
///
/// From one round to the next the sums can be kept and corrected by the documents that
/// changed cluster ([`StreamedSums::apply_moves`]) when that gives, bit for bit, the sums
/// taken from scratch ([`StreamedSums::correctable`]); otherwise [`StreamedSums::clear`]
/// starts them again.
pub struct StreamedSums {
    sums: Sums,
    sizes: Vec<u64>,
    /// Whether every weight added so far is non-negative and on the sum grid.
    on_grid: bool,
}

impl StreamedSums {
    /// Zero sums for `k` clusters over `n_terms` terms.
    pub fn new(k: usize, n_terms: usize) -> Self {
        let mut sums = Sums::zeroed(k, n_terms);
        // Fault the pages in now, in order, rather than by scattered writes from parallel
        // tasks (see `Sums::new`).
        sums.sum.fill(0.0);
        Self {
            sums,
            sizes: vec![0; k],
            on_grid: true,
        }
    }

    /// Back to zero sums and no members, keeping the memory.
    pub fn clear(&mut self) {
        self.sums.sum.fill(0.0);
        self.sums.touched.fill(0);
        self.sizes.fill(0);
        self.on_grid = true;
    }

    /// Adds row `i` of `x` to cluster `labels[i]` (rows labelled `-1` are left out).
    pub fn add(&mut self, x: &Csr, labels: &[i32]) {
        assert_eq!(x.rows(), labels.len(), "one label per row");
        assert_eq!(x.cols(), self.sums.n_terms, "rows over the sums' terms");
        self.on_grid = self.on_grid && x.data().iter().all(|&v| v >= 0.0 && sparse::on_sum_grid(v));
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
        assert_eq!(x.cols(), self.sums.n_terms, "rows over the sums' terms");
        for &(_, from, to) in moves {
            if from >= 0 {
                self.sizes[from as usize] -= 1;
            }
            if to >= 0 {
                self.sizes[to as usize] += 1;
            }
        }
        self.sums.apply(x, moves, self.sizes.len());
    }

    /// Whether, once every document has been added, sums corrected by
    /// [`StreamedSums::apply_moves`] equal the sums of the same members taken from scratch,
    /// bit for bit: every weight is non-negative and on the sum grid, and each term's total
    /// over all the documents is below 2¹⁷. Every partial sum of a correction (a cluster's
    /// sum minus some of its members plus some non-members) then lies between 0 and that
    /// total, a multiple of 2⁻³⁶ that `f64` holds exactly (see the module docs). A pass over
    /// the sums.
    pub fn correctable(&self) -> bool {
        if !self.on_grid {
            return false;
        }
        let n_terms = self.sums.n_terms;
        let mut total = vec![0.0f64; n_terms];
        for cluster in self.sums.sum.chunks(n_terms.max(1)) {
            for (t, &s) in total.iter_mut().zip(cluster) {
                *t += s;
            }
        }
        // Partial sums below the limit are exact, so the computed total is below it exactly
        // when the true one is.
        total.iter().all(|&t| t < MAX_EXACT_SUM)
    }

    /// Members added per cluster.
    pub fn sizes(&self) -> &[u64] {
        &self.sizes
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
        let wanted: Vec<bool> = self.sizes.iter().map(|&n| n > 0).collect();
        let fresh = self.sums.centroids(&wanted, &self.sizes, prune);
        let mut out = Centroids::empty(self.sums.n_terms);
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
