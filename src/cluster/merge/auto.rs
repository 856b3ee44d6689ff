//! How close two pieces of an over-clustered fit are, and from what closeness `k = "auto"`
//! joins them: the hub-scaled centroid cosine, and a threshold from its distribution.

use crate::cluster::centroids::Centroids;

/// The cosine between every two clusters' centroids, as a k × k matrix (row major, diagonal
/// 1). With `hub_scaled`, each cosine is divided by the geometric mean of the two clusters'
/// mean cosines to the other non-empty clusters: a cluster close to every other one (a hub,
/// built of the words all documents share) then counts as close to none in particular, and a
/// pair counts as close when each is nearer the other than to its average neighbour. It is
/// the multiplicative form of the hubness correction CSLS (Conneau et al. 2018) with every
/// cluster as a neighbour. Computed in f64 in pair order, so it does not depend on the thread
/// count.
pub fn similarities(centroids: &Centroids, sizes: &[u64], hub_scaled: bool) -> Vec<f64> {
    let k = centroids.n_clusters();
    let mut sim = vec![1.0f64; k * k];
    for a in 0..k {
        for b in a + 1..k {
            let c = f64::from(centroids.cosine(a, b));
            sim[a * k + b] = c;
            sim[b * k + a] = c;
        }
    }
    if !hub_scaled {
        return sim;
    }
    let live: Vec<usize> = (0..k).filter(|&c| sizes[c] > 0).collect();
    let mean_cosine: Vec<f64> = (0..k)
        .map(|a| {
            let others: Vec<f64> = live
                .iter()
                .filter(|&&b| b != a)
                .map(|&b| sim[a * k + b])
                .collect();
            let mean = others.iter().sum::<f64>() / others.len().max(1) as f64;
            mean.max(f64::MIN_POSITIVE)
        })
        .collect();
    for a in 0..k {
        for b in (0..k).filter(|&b| b != a) {
            // Floored after the product: for two pieces that share no term with any other,
            // it underflows to 0, and their cosine of 0 must stay 0, not become 0 / 0.
            sim[a * k + b] /= (mean_cosine[a] * mean_cosine[b])
                .sqrt()
                .max(f64::MIN_POSITIVE);
        }
    }
    sim
}

/// The threshold `k = "auto"` takes from the similarities of a fit's clusters: their mean
/// over every two non-empty clusters plus half their standard deviation, so two groups join
/// when their members are clearly closer than a typical pair. Just above the mean when every
/// pair is alike (then no pair joins), and 1 when fewer than two clusters are non-empty. The
/// alternatives measured are in `docs/experiments.md`.
pub fn auto_threshold(similarity: &[f64], sizes: &[u64]) -> f64 {
    let k = sizes.len();
    let live: Vec<usize> = (0..k).filter(|&c| sizes[c] > 0).collect();
    let (mut n, mut sum, mut squares) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &a) in live.iter().enumerate() {
        for &b in &live[i + 1..] {
            let s = similarity[a * k + b];
            n += 1.0;
            sum += s;
            squares += s * s;
        }
    }
    if n == 0.0 {
        return 1.0;
    }
    let mean = sum / n;
    let sd = (squares / n - mean * mean).max(0.0).sqrt();
    if sd == 0.0 {
        // Every pair is as close as every other (two clusters, say): none is clearly closer
        // than a typical pair, so none joins. Stepped up in f32, the manifest's precision,
        // so the threshold it shows is above the similarities too.
        return f64::from((mean as f32).next_up());
    }
    mean + AUTO_THRESHOLD_SD * sd
}

/// How many standard deviations above the mean similarity [`auto_threshold`] sits. Measured
/// at 0, 0.5, 0.75 and 1 (`docs/experiments.md`): 0 folds 20 Newsgroups and Reuters, 1
/// splits BBC.
const AUTO_THRESHOLD_SD: f64 = 0.5;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::merge::agglomerate;
    use crate::cluster::merge::tests::unit;

    #[test]
    fn hub_scaling_divides_by_the_mean_cosines_and_the_threshold_is_mean_plus_half_an_sd() {
        // Cluster 0 is a hub: it leans towards both 1 and 2, which are orthogonal to each
        // other. 3 is nearly a direction of its own.
        let rows = [
            unit(&[1.0, 1.0, 1.0, 0.0]),
            unit(&[0.0, 1.0, 0.0, 0.0]),
            unit(&[0.0, 0.0, 1.0, 0.0]),
            unit(&[0.1, 0.1, 0.1, 1.0]),
        ];
        let c = Centroids::from_rows(4, rows.concat());
        let sizes = [5, 5, 5, 5];
        let raw = similarities(&c, &sizes, false);
        let scaled = similarities(&c, &sizes, true);
        let mean_cos = |a: usize| {
            (0..4)
                .filter(|&b| b != a)
                .map(|b| raw[a * 4 + b])
                .sum::<f64>()
                / 3.0
        };
        for a in 0..4 {
            assert_eq!(scaled[a * 4 + a], 1.0);
            for b in (0..4).filter(|&b| b != a) {
                let want = raw[a * 4 + b] / (mean_cos(a) * mean_cos(b)).sqrt();
                assert!((scaled[a * 4 + b] - want).abs() < 1e-12, "{a} {b}");
                assert_eq!(scaled[a * 4 + b], scaled[b * 4 + a]);
            }
        }
        // The hub's pairs lose against a pair of the same cosine between two non-hubs.
        assert!(scaled[1] < raw[1] / mean_cos(1));
        // The threshold: mean plus half the standard deviation of the six off-diagonal pairs.
        let pairs: Vec<f64> = (0..4)
            .flat_map(|a| (a + 1..4).map(move |b| (a, b)))
            .map(|(a, b)| scaled[a * 4 + b])
            .collect();
        let mean = pairs.iter().sum::<f64>() / 6.0;
        let sd = (pairs.iter().map(|p| (p - mean) * (p - mean)).sum::<f64>() / 6.0).sqrt();
        assert!((auto_threshold(&scaled, &sizes) - (mean + 0.5 * sd)).abs() < 1e-12);
        // An empty cluster is left out of the means and the threshold; one live cluster
        // gives a threshold of 1.
        assert_eq!(auto_threshold(&scaled, &[5, 0, 0, 0]), 1.0);
        let without_3 = similarities(&c, &[5, 5, 5, 0], true);
        let m0 = (raw[1] + raw[2]) / 2.0;
        let m1 = (raw[1] + raw[4 + 2]) / 2.0;
        assert!((without_3[1] - raw[1] / (m0 * m1).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn pieces_that_share_no_term_get_a_finite_threshold_and_stay_apart() {
        // Two clusters with no term in common (a partition of a few documents): the hub
        // scale divides 0 by 0 unless it is floored, and a threshold equal to the only
        // pair's similarity would join them.
        let c = Centroids::from_rows(2, [unit(&[1.0, 0.0]), unit(&[0.0, 1.0])].concat());
        let sizes = [2, 1];
        let sim = similarities(&c, &sizes, true);
        assert_eq!(sim, vec![1.0, 0.0, 0.0, 1.0]);
        let t = auto_threshold(&sim, &sizes);
        assert!(t.is_finite() && t > 0.0);
        let (merged, joins) = agglomerate(&c, &sizes, &sim, t);
        assert!(joins.is_empty());
        assert_eq!(merged.sizes, vec![2, 1]);
        // Two alike clusters stay apart too: their one pair is no closer than a typical pair.
        let c = Centroids::from_rows(2, [unit(&[1.0, 0.2]), unit(&[1.0, 0.3])].concat());
        let sim = similarities(&c, &sizes, true);
        let t = auto_threshold(&sim, &sizes);
        assert!(agglomerate(&c, &sizes, &sim, t).1.is_empty());
    }
}
