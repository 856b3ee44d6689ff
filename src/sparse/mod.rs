//! Sparse document-term matrices.
//!
//! Owns the CSR type every stage shares ([`Csr`]: `f32` values, `u32` column indices, `usize`
//! row pointers so nnz is not capped at 4 billion) and the few row operations the clustering
//! needs on raw arrays: dot products against dense vectors, L2 norms, and an invariant check.
//!
//! Invariants of a [`Csr`] built by this crate: column indices strictly increase within a row,
//! every value is finite and non-zero, and every non-empty row has unit L2 norm.
//!
//! [`spill`] writes batches of rows to a temporary file and reads them back, for passes over
//! more rows than memory holds.
//!
//! This module does not build matrices from text (see [`crate::text`]) and does not cluster.

pub mod spill;

pub use spill::RowSpill;
use sprs::CsMatI;

/// A document-term matrix: one row per document, one column per vocabulary term.
pub type Csr = CsMatI<f32, u32, usize>;

/// A borrowed view of one CSR row: parallel slices of column indices and values.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// Column indices, strictly increasing.
    pub indices: &'a [u32],
    /// Values, same length as `indices`.
    pub values: &'a [f32],
}

impl Row<'_> {
    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Dot product with a dense vector indexed by column.
    pub fn dot_dense(&self, dense: &[f32]) -> f32 {
        self.indices
            .iter()
            .zip(self.values)
            .map(|(&j, &v)| v * dense[j as usize])
            .sum()
    }

    /// Dot product with another sparse row (both with sorted indices).
    pub fn dot_sparse(&self, other: &Row<'_>) -> f32 {
        let (mut a, mut b, mut acc) = (0, 0, 0.0f32);
        while a < self.indices.len() && b < other.indices.len() {
            match self.indices[a].cmp(&other.indices[b]) {
                std::cmp::Ordering::Less => a += 1,
                std::cmp::Ordering::Greater => b += 1,
                std::cmp::Ordering::Equal => {
                    acc += self.values[a] * other.values[b];
                    a += 1;
                    b += 1;
                }
            }
        }
        acc
    }

    /// Adds `scale * self` into a dense vector.
    pub fn add_to_dense(&self, dense: &mut [f32], scale: f32) {
        for (&j, &v) in self.indices.iter().zip(self.values) {
            dense[j as usize] += scale * v;
        }
    }
}

/// Borrows row `i` of `m` as raw slices.
pub fn row(m: &Csr, i: usize) -> Row<'_> {
    let indptr = m.indptr();
    let raw = indptr.raw_storage();
    let (start, end) = (raw[i], raw[i + 1]);
    Row {
        indices: &m.indices()[start..end],
        values: &m.data()[start..end],
    }
}

/// L2 norm of a dense vector, accumulated in `f64`.
pub fn l2_norm(values: &[f32]) -> f32 {
    values
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt() as f32
}

/// Scales `values` to unit L2 norm in place. Returns `false` (and leaves the values unchanged)
/// when the norm is zero.
pub fn normalize(values: &mut [f32]) -> bool {
    let norm = l2_norm(values);
    if norm == 0.0 || !norm.is_finite() {
        return false;
    }
    let inv = 1.0 / norm;
    values.iter_mut().for_each(|v| *v *= inv);
    true
}

/// Weights are snapped to multiples of this (2⁻³⁶) so that sums of many of them are exact in
/// f64 (see `cluster::sums`). Every f32 of magnitude at least 2⁻¹² already is one.
pub const SUM_GRID: f32 = 1.0 / (1u64 << 36) as f32;

/// Whether `v` is a multiple of [`SUM_GRID`].
pub fn on_sum_grid(v: f32) -> bool {
    v.abs() >= 1.0 / 4096.0 || (v / SUM_GRID).fract() == 0.0
}

/// Rounds each weight towards zero to a multiple of [`SUM_GRID`] (a change only below 2⁻¹²,
/// of less than 2⁻³⁶), keeping non-zero weights non-zero.
pub fn snap_to_sum_grid(values: &mut [f32]) {
    for v in values.iter_mut().filter(|v| v.abs() < 1.0 / 4096.0) {
        let snapped = (*v / SUM_GRID).trunc() * SUM_GRID;
        *v = if snapped == 0.0 {
            SUM_GRID.copysign(*v)
        } else {
            snapped
        };
    }
}

/// A broken CSR invariant, with the row where it was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CsrInvariantError {
    /// Column indices must strictly increase within a row.
    #[error("row {row}: column indices are not strictly increasing")]
    UnsortedIndices { row: usize },
    /// A column index is outside the matrix.
    #[error("row {row}: column index {index} is out of range for {n_cols} columns")]
    IndexOutOfRange {
        row: usize,
        index: u32,
        n_cols: usize,
    },
    /// A stored value is zero, NaN or infinite.
    #[error("row {row}: stored value {value} is zero or not finite")]
    BadValue { row: usize, value: f32 },
    /// A non-empty row does not have unit L2 norm.
    #[error("row {row}: L2 norm is {norm}, expected 1")]
    NotUnitNorm { row: usize, norm: f32 },
}

/// Checks every invariant listed in the module docs.
pub fn check_invariants(m: &Csr) -> Result<(), CsrInvariantError> {
    for i in 0..m.rows() {
        let r = row(m, i);
        if r.indices.windows(2).any(|w| w[0] >= w[1]) {
            return Err(CsrInvariantError::UnsortedIndices { row: i });
        }
        if let Some(&index) = r.indices.iter().find(|&&j| j as usize >= m.cols()) {
            return Err(CsrInvariantError::IndexOutOfRange {
                row: i,
                index,
                n_cols: m.cols(),
            });
        }
        if let Some(&value) = r.values.iter().find(|v| **v == 0.0 || !v.is_finite()) {
            return Err(CsrInvariantError::BadValue { row: i, value });
        }
        if r.nnz() > 0 {
            let norm = l2_norm(r.values);
            if (norm - 1.0).abs() > 1e-4 {
                return Err(CsrInvariantError::NotUnitNorm { row: i, norm });
            }
        }
    }
    Ok(())
}

/// Test strategies shared by the modules that take a [`Csr`].
#[cfg(test)]
pub(crate) mod testing {
    /// A random matrix of unit rows (some empty) over `n_terms` columns.
    pub(crate) fn random_unit_rows() -> impl proptest::strategy::Strategy<Value = super::Csr> {
        use proptest::prelude::*;
        (1usize..40, 1usize..12).prop_flat_map(|(n_docs, n_terms)| {
            proptest::collection::vec(
                proptest::collection::btree_map(0..n_terms as u32, 0.1f32..5.0, 0..n_terms.min(5)),
                n_docs,
            )
            .prop_map(move |rows| {
                let mut indptr = vec![0];
                let (mut indices, mut data) = (Vec::new(), Vec::new());
                for row in rows {
                    let start = data.len();
                    for (j, v) in row {
                        indices.push(j);
                        data.push(v);
                    }
                    super::normalize(&mut data[start..]);
                    indptr.push(data.len());
                }
                super::Csr::new((indptr.len() - 1, n_terms), indptr, indices, data)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix() -> Csr {
        // [0.6 0.8 0  ]
        // [0   0   0  ]
        // [0   1   0  ]
        Csr::new((3, 3), vec![0, 2, 2, 3], vec![0, 1, 1], vec![0.6, 0.8, 1.0])
    }

    #[test]
    fn row_views_and_products() {
        let m = matrix();
        let r0 = row(&m, 0);
        assert_eq!(r0.indices, &[0, 1]);
        assert_eq!(row(&m, 1).nnz(), 0);
        assert!((r0.dot_dense(&[1.0, 2.0, 3.0]) - 2.2).abs() < 1e-6);
        assert!((r0.dot_sparse(&row(&m, 2)) - 0.8).abs() < 1e-6);
        let mut dense = vec![0.0; 3];
        r0.add_to_dense(&mut dense, 2.0);
        assert_eq!(dense, vec![1.2, 1.6, 0.0]);
    }

    #[test]
    fn invariants_hold_and_are_detected() {
        assert_eq!(check_invariants(&matrix()), Ok(()));
        let unnormalised = Csr::new((1, 2), vec![0, 2], vec![0, 1], vec![1.0, 1.0]);
        assert!(matches!(
            check_invariants(&unnormalised),
            Err(CsrInvariantError::NotUnitNorm { row: 0, .. })
        ));
        let zero = Csr::new((1, 2), vec![0, 1], vec![1], vec![0.0]);
        assert!(matches!(
            check_invariants(&zero),
            Err(CsrInvariantError::BadValue { row: 0, .. })
        ));
    }

    #[test]
    fn normalize_keeps_zero_vectors() {
        let mut v = vec![3.0, 4.0];
        assert!(normalize(&mut v));
        assert_eq!(v, vec![0.6, 0.8]);
        let mut z = vec![0.0, 0.0];
        assert!(!normalize(&mut z));
        assert_eq!(z, vec![0.0, 0.0]);
    }
}
