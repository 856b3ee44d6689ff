//! Sparse unit-norm centroids: the model a k-means fit produces and assignment scores against.
//!
//! Each cluster keeps its non-zero weights by increasing term (CSR layout, one row per
//! cluster). Pruning in the update keeps rows short, so memory follows the number of
//! non-zeros, not `k × n_terms`. This module only stores and reads centroids; computing them
//! is [`super::kmeans`]'s job and scoring documents against them is [`super::scorer`]'s.

use crate::sparse;

/// Unit-norm centroids, stored sparse: for each cluster, its non-zero weights by increasing
/// term. Pruning keeps them small, so memory follows the number of non-zeros, not
/// `k × n_terms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Centroids {
    n_terms: usize,
    indptr: Vec<usize>,
    pub(super) indices: Vec<u32>,
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
    pub fn push_sparse(&mut self, indices: &[u32], weights: &[f32]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_rows_round_trip_through_the_sparse_store() {
        let c = Centroids::from_rows(3, vec![0.6, 0.0, 0.8, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!((c.n_clusters(), c.n_terms()), (3, 3));
        assert_eq!(c.row(0).indices, &[0, 2]);
        assert_eq!(c.nnz(1), 0);
        assert_eq!(c.dense_row(2), vec![0.0, 1.0, 0.0]);
        assert!((c.cosine(0, 2)).abs() < 1e-7);
        let r = c.reordered(&[2, 0, 1]);
        assert_eq!(r.dense_row(0), c.dense_row(2));
        assert_eq!(r.dense_row(1), c.dense_row(0));
        assert_eq!(r.nnz(2), 0);
    }
}
