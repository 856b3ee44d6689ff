//! The `n_init` starts of a fit: centroids from each start's seed documents, the first
//! assignment, and the stages that screen the starts down to one.

use super::KMeansFit;
use crate::cluster::centroids::Centroids;
use crate::cluster::init::InitReport;
use crate::cluster::score::{ASSIGN_CHUNK, assign};
use crate::sparse;
use crate::sparse::Csr;

/// One start of [`fit`] while it is being screened.
pub(super) struct Start {
    /// Position among the `n_init` starts.
    pub(super) index: usize,
    pub(super) fit: KMeansFit,
    /// The documents' summed cosine to their centroid after its latest assignment
    /// ([`assigned_objective`]).
    pub(super) score: f64,
}

/// The sum of `fit.similarity` (exact after an unbounded assignment), in chunks of
/// [`ASSIGN_CHUNK`] documents whose sums are added in order: the order assignment summed its
/// objective in when it still returned one, so screening ranks starts as it did.
pub(super) fn assigned_objective(fit: &KMeansFit) -> f64 {
    fit.similarity
        .chunks(ASSIGN_CHUNK)
        .map(|c| c.iter().map(|&s| f64::from(s)).sum::<f64>())
        .sum()
}

/// The screening stages of [`fit`]: every start runs 3 rounds, the best 3 run on to round 5,
/// and the best of those runs to convergence. With fits run to convergence, keeping 3 starts
/// instead of 5 after round 3 gave the same mean NMI on four corpora over seeds 0-4 (20
/// Newsgroups 0.6666 against 0.6661, the other three equal) for 4 fewer start-rounds; keeping
/// 2, or screening for 2 rounds, lost 0.007 on 20 Newsgroups (see `docs/experiments.md`).
pub(super) const SCREEN: [(usize, usize); 2] = [(3, 3), (5, 1)];

/// Centroids from the seed documents, and the first assignment (round 0).
pub(super) fn start(x: &Csr, seeds: &[usize], init: InitReport) -> KMeansFit {
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
        converged: false,
        objective: Vec::new(),
        n_scored: Vec::new(),
        late_joined: vec![0; k],
        late_left: vec![0; k],
        recent_moves: Vec::new(),
        n_clusters: k,
        n_reseeded: 0,
        init,
    };
    if k > 0 {
        assign(
            x,
            &fit.centroids,
            &mut fit.labels,
            &mut fit.similarity,
            &mut fit.second_similarity,
            None,
        );
    }
    fit
}
