//! Placing clusters on a page: classical multidimensional scaling of centroid distances, and
//! an ordering that puts similar clusters next to each other.
//!
//! The report measures the distance of two unit centroids with cosine similarity `s` as the
//! chord `sqrt(2 · (1 - s))`, a monotone function of the cosine distance `1 - s` that is
//! Euclidean, so the scaling below is exact (it is the PCA of the centroids).
//!
//! # Classical MDS (principal coordinates)
//! For `k` points with distances `d_ij`, double-centre the squared distances,
//! `B = -½ · J D² J` with `J = I - 11ᵀ/k`, and take the two eigenvectors of `B` with the largest
//! eigenvalues, scaled by the square roots of those eigenvalues. When the distances are
//! Euclidean in some space, these coordinates reproduce them as well as any 2-D layout can.
//! The eigenvectors come from power iteration with deflation from a fixed start vector, so the
//! layout is deterministic; each axis's sign is fixed so that its largest coordinate is
//! positive.

/// 2-D coordinates for `k` points from a symmetric `k × k` distance matrix (row-major).
/// Axes whose eigenvalue is not positive (for example all points equal, or `k < 3` for the
/// second axis) are all zero.
pub fn classical_mds(distances: &[f64], k: usize) -> Vec<[f64; 2]> {
    assert_eq!(distances.len(), k * k, "distance matrix must be k × k");
    let mut coords = vec![[0.0; 2]; k];
    if k < 2 {
        return coords;
    }
    // B = -1/2 · J D² J: subtract row and column means of D², add back the grand mean.
    let sq: Vec<f64> = distances.iter().map(|d| d * d).collect();
    let row_mean: Vec<f64> = (0..k)
        .map(|i| sq[i * k..(i + 1) * k].iter().sum::<f64>() / k as f64)
        .collect();
    let grand = row_mean.iter().sum::<f64>() / k as f64;
    let mut b = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            b[i * k + j] = -0.5 * (sq[i * k + j] - row_mean[i] - row_mean[j] + grand);
        }
    }
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 {
        return coords;
    }
    for axis in 0..2 {
        let (value, vector) = top_eigen(&b, k);
        if value <= scale * 1e-9 {
            break;
        }
        let sign = if vector
            .iter()
            .fold((0.0f64, 0.0f64), |(best, s), &v| {
                if v.abs() > best {
                    (v.abs(), v.signum())
                } else {
                    (best, s)
                }
            })
            .1
            < 0.0
        {
            -1.0
        } else {
            1.0
        };
        for (c, v) in coords.iter_mut().zip(&vector) {
            c[axis] = sign * v * value.sqrt();
        }
        // Deflate: B ← B - λ v vᵀ.
        for i in 0..k {
            for j in 0..k {
                b[i * k + j] -= value * vector[i] * vector[j];
            }
        }
    }
    coords
}

/// The dominant eigenvalue and unit eigenvector of the symmetric `k × k` matrix `b`, by power
/// iteration (at most [`MAX_POWER_ITER`] rounds). For Euclidean distances `B` is positive
/// semi-definite, so the dominant eigenvalue is the largest one.
fn top_eigen(b: &[f64], k: usize) -> (f64, Vec<f64>) {
    // A fixed start vector that is not orthogonal to any particular axis.
    let mut v: Vec<f64> = (0..k)
        .map(|i| 1.0 + ((i * 7919) % 97) as f64 / 97.0)
        .collect();
    normalise(&mut v);
    let mut next = vec![0.0; k];
    let mut value = 0.0;
    for _ in 0..MAX_POWER_ITER {
        for (i, n) in next.iter_mut().enumerate() {
            let row = &b[i * k..(i + 1) * k];
            *n = row.iter().zip(&v).map(|(a, x)| a * x).sum::<f64>();
        }
        // Rayleigh quotient vᵀBv, signed.
        value = next.iter().zip(&v).map(|(a, x)| a * x).sum::<f64>();
        if normalise(&mut next) == 0.0 {
            return (0.0, v);
        }
        let delta = next
            .iter()
            .zip(&v)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        std::mem::swap(&mut v, &mut next);
        if delta < 1e-10 {
            break;
        }
    }
    (value, v)
}

/// Power-iteration rounds per axis: enough for a layout (k = 1,000 costs one second at most).
const MAX_POWER_ITER: usize = 1000;

fn normalise(v: &mut [f64]) -> f64 {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    norm
}

/// An order of `k` items in which similar ones sit together, from a symmetric similarity
/// matrix: start from item 0 and repeatedly append the unvisited item most similar to the
/// last one (ties by index).
pub fn similarity_order(similarity: &[f64], k: usize) -> Vec<usize> {
    assert_eq!(similarity.len(), k * k, "similarity matrix must be k × k");
    let mut order = Vec::with_capacity(k);
    let mut visited = vec![false; k];
    let mut current = 0;
    for _ in 0..k {
        order.push(current);
        visited[current] = true;
        let row = &similarity[current * k..(current + 1) * k];
        let next =
            (0..k)
                .filter(|&j| !visited[j])
                .fold(None, |best: Option<usize>, j| match best {
                    Some(b) if row[b] >= row[j] => Some(b),
                    _ => Some(j),
                });
        match next {
            Some(j) => current = j,
            None => break,
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distances(points: &[[f64; 2]]) -> Vec<f64> {
        let k = points.len();
        let mut d = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                d[i * k + j] = ((points[i][0] - points[j][0]).powi(2)
                    + (points[i][1] - points[j][1]).powi(2))
                .sqrt();
            }
        }
        d
    }

    #[test]
    fn planar_points_are_recovered_up_to_rotation() {
        let points = [[0.0, 0.0], [3.0, 0.0], [3.0, 1.0], [-1.0, 2.0], [0.5, -2.5]];
        let d = distances(&points);
        let coords = classical_mds(&d, points.len());
        let recovered = distances(&coords);
        for (a, b) in d.iter().zip(&recovered) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn degenerate_inputs_give_finite_coordinates() {
        assert!(classical_mds(&[], 0).is_empty());
        assert_eq!(classical_mds(&[0.0], 1), vec![[0.0, 0.0]]);
        // All points equal.
        assert!(classical_mds(&[0.0; 9], 3).iter().all(|c| *c == [0.0, 0.0]));
        // Two points: one axis carries the distance, the other is zero.
        let c = classical_mds(&[0.0, 2.0, 2.0, 0.0], 2);
        assert!(((c[0][0] - c[1][0]).abs() - 2.0).abs() < 1e-9);
        assert_eq!(c[0][1], 0.0);
    }

    #[test]
    fn similar_items_end_up_adjacent() {
        // Items 0 and 2 are alike, as are 1 and 3.
        #[rustfmt::skip]
        let s = [
            1.0, 0.1, 0.9, 0.0,
            0.1, 1.0, 0.2, 0.8,
            0.9, 0.2, 1.0, 0.1,
            0.0, 0.8, 0.1, 1.0,
        ];
        assert_eq!(similarity_order(&s, 4), vec![0, 2, 1, 3]);
    }
}
