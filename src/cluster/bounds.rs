//! Bounds that let assignment skip documents which cannot change cluster.
//!
//! Hamerly's bounds adapted to cosine similarity (Schubert, Lang and Feher, "Accelerating
//! Spherical k-Means", SISAP 2021). For each document the assignment keeps a lower bound `l`
//! on its cosine to its own centroid and an upper bound `u` on its cosine to any other. When
//! centroid `c` moves by the angle `δ_c`, the angle from a document to it changes by at most
//! `δ_c` (triangle inequality on the sphere), so
//!
//! - `l ← cos(arccos l + δ_own)`, computed as `l cos δ − √(1 − l²) sin δ`;
//! - `u ← cos(max(arccos u − δ_other, 0))`, as `u cos δ + √(1 − u²) sin δ`, with `δ_other` the
//!   largest move among the other clusters (the second largest for the documents of the
//!   cluster that moved most).
//!
//! A document whose `l − u` exceeds twice its rounding margin keeps its cluster unscored.
//!
//! # Exactness
//! A skipped document is one whose computed cosine to its own centroid is certainly larger
//! than its computed cosine to every other one, so the unbounded assignment would keep it
//! too. The bounds hold for exact cosines; the scores are f32 sums of `n` products of unit
//! vectors, off by at most about `n · 2⁻²⁴`, and stored unit norms are off by about `2⁻²⁴`.
//! [`margin`] covers both with room to spare, and every bound update rounds outwards.

/// Per document: the bounds, and whether its stored similarities are out of date (it was
/// skipped since it was last scored).
#[derive(Debug, Clone)]
pub(super) struct Bounds {
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    pub stale: Vec<bool>,
}

impl Bounds {
    /// Bounds from exact similarities: `own[i]` to the document's centroid and `other[i]`, the
    /// best to any other (`k = 1`: there is no other).
    pub fn new(x: &crate::sparse::Csr, own: &[f32], other: &[f32], k: usize) -> Self {
        let n = own.len();
        let mut b = Self {
            lower: vec![-1.0; n],
            upper: vec![1.0; n],
            stale: vec![false; n],
        };
        for i in 0..n {
            let e = margin(crate::sparse::row(x, i).nnz());
            b.set(i, own[i], other[i], k, e);
        }
        b
    }

    /// Bounds of document `i` just scored: `own` and `other` as in [`Bounds::new`].
    #[inline(always)]
    pub fn set(&mut self, i: usize, own: f32, other: f32, k: usize, e: f64) {
        let (l, u) = scored(own, other, k, e);
        self.lower[i] = l;
        self.upper[i] = u;
        self.stale[i] = false;
    }

    /// Forces document `i` to be scored in the next assignment.
    pub fn forget(&mut self, i: usize) {
        self.lower[i] = -1.0;
        self.upper[i] = 1.0;
    }
}

/// `(lower, upper)` bounds for a document just scored.
#[inline(always)]
pub(super) fn scored(own: f32, other: f32, k: usize, e: f64) -> (f64, f64) {
    let l = (f64::from(own) - e).max(-1.0);
    let u = if k > 1 {
        (f64::from(other) + e).min(1.0)
    } else {
        -1.0
    };
    (l, u)
}

/// How far a computed cosine of a document with `nnz` terms may be from the exact one: twice
/// the f32 summation bound plus the error of the stored unit norms.
#[inline(always)]
pub(super) fn margin(nnz: usize) -> f64 {
    (nnz as f64 + 16.0) * f64::from(f32::EPSILON) / 4.0 + 1e-6
}

/// How far each centroid moved in one update, as `(cos δ, sin δ)`, rounded so that `δ` is
/// over- rather than under-estimated; plus the two clusters that moved most.
#[derive(Debug, Clone)]
pub(super) struct Moves {
    moves: Vec<(f64, f64)>,
    /// The largest move and the cluster that made it, then the second largest.
    top: [(usize, (f64, f64)); 2],
}

impl Moves {
    /// From the cosine of each centroid's old and new position (`-1` when either is empty),
    /// `None` for a centroid that was not recomputed.
    pub fn new(cosines: &[Option<f64>]) -> Self {
        let moves: Vec<(f64, f64)> = cosines
            .iter()
            .map(|&c| match c {
                None => (1.0, 0.0),
                Some(c) => {
                    let c = (c - 1e-9).clamp(-1.0, 1.0);
                    (c, ((1.0 - c * c).max(0.0).sqrt() + 1e-9).min(1.0))
                }
            })
            .collect();
        let still = (usize::MAX, (1.0, 0.0));
        let mut top = [still, still];
        for (c, &m) in moves.iter().enumerate() {
            // A smaller cosine is a larger move.
            if m.0 < top[0].1.0 {
                top = [(c, m), top[0]];
            } else if m.0 < top[1].1.0 {
                top[1] = (c, m);
            }
        }
        Self { moves, top }
    }

    /// The move of cluster `c`.
    #[inline(always)]
    pub fn of(&self, c: usize) -> (f64, f64) {
        self.moves[c]
    }

    /// The largest move among the clusters other than `c`.
    #[inline(always)]
    pub fn others(&self, c: usize) -> (f64, f64) {
        if self.top[0].0 == c {
            self.top[1].1
        } else {
            self.top[0].1
        }
    }
}

/// A lower bound on the cosine to a centroid that moved by `(cos δ, sin δ)`, from a lower
/// bound `l` on the cosine before the move.
#[inline(always)]
pub(super) fn lower_after(l: f64, (c, s): (f64, f64)) -> f64 {
    if s == 0.0 {
        return l;
    }
    // The angle may pass π, where the cosine turns back up: then nothing better than -1.
    if l <= -c {
        return -1.0;
    }
    (l * c - (1.0 - l * l).max(0.0).sqrt() * s - 1e-12).max(-1.0)
}

/// An upper bound on the cosine to a centroid that moved by `(cos δ, sin δ)`, from an upper
/// bound `u` on the cosine before the move.
#[inline(always)]
pub(super) fn upper_after(u: f64, (c, s): (f64, f64)) -> f64 {
    if s == 0.0 {
        return u;
    }
    // The centroid may have moved onto the document.
    if u >= c {
        return 1.0;
    }
    (u * c + (1.0 - u * u).max(0.0).sqrt() * s + 1e-12).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unit vector at angle `a` in the plane.
    fn at(a: f64) -> [f64; 2] {
        [a.cos(), a.sin()]
    }

    fn dot(a: [f64; 2], b: [f64; 2]) -> f64 {
        a[0] * b[0] + a[1] * b[1]
    }

    proptest::proptest! {
        /// For a document and a centroid in the plane, the bounds after a move hold for every
        /// direction of the move.
        #[test]
        fn bounds_hold_after_any_move(doc in 0.0f64..std::f64::consts::TAU, from in 0.0f64..std::f64::consts::TAU, delta in 0.0f64..std::f64::consts::PI, sign in proptest::bool::ANY) {
            let to = if sign { from + delta } else { from - delta };
            let (before, after) = (dot(at(doc), at(from)), dot(at(doc), at(to)));
            let m = Moves::new(&[Some(dot(at(from), at(to)))]);
            proptest::prop_assert!(lower_after(before, m.of(0)) <= after + 1e-12);
            proptest::prop_assert!(upper_after(before, m.of(0)) >= after - 1e-12);
        }
    }

    #[test]
    fn a_cluster_that_did_not_move_keeps_its_bounds() {
        let m = Moves::new(&[None, Some(0.5)]);
        assert_eq!(lower_after(0.3, m.of(0)), 0.3);
        assert_eq!(upper_after(0.3, m.of(0)), 0.3);
        assert!(lower_after(0.3, m.of(1)) < 0.3);
    }

    #[test]
    fn the_largest_move_is_skipped_for_its_own_members() {
        let m = Moves::new(&[Some(0.9), Some(0.5), Some(0.99)]);
        assert_eq!(m.others(1), m.of(0));
        assert_eq!(m.others(0), m.of(1));
        assert_eq!(m.others(2), m.of(1));
        let one = Moves::new(&[Some(0.5)]);
        assert_eq!(one.others(0), (1.0, 0.0));
    }
}
