//! Assignment rounds over documents that are read in batches, the same batches in the same
//! order every round (a sampled fit's refinement over the whole input).

use super::score::{NearestCentroids, assign_scored};
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
