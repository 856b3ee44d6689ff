//! The refinement of a sampled fit: rounds over every document of the whole input that move
//! the sample's centroids to the whole input's means, and the stop rule they share with an
//! engine's fit ([`super::engine`]).

use std::time::Instant;

use tracing::{debug, info};

use super::JobError;
use super::documents::BATCH_ROWS;
use super::plan::JobPlan;
use crate::cluster::{self, KMeansFit, NearestCentroids, StreamedAssignment, StreamedSums};
use crate::io::DocumentBatches;
use crate::sparse::{Csr, RowSpill};
use crate::text::{Transformer, Vectorized};

/// Moves a sampled fit onto the whole input: at most `rounds` k-means rounds that read every
/// selected partition batch by batch, vectorise, assign each document to its nearest
/// centroid and add it to its cluster's sum; the normalised (and pruned) sums are the next
/// centroids. Like a fit, it stops once a round moves at most `cluster.tol` of the
/// documents ([`Rounds`]). Memory holds one batch, `k × n_terms` sums and each document's
/// previous cluster ([`StreamedAssignment`], 4 bytes a document). The first round's rows go
/// to a temporary file ([`RowSpill`], 8 bytes a stored entry) that the later rounds read
/// instead of the input. Later rounds correct the sums by the documents that moved: the sums
/// are exact integers ([`StreamedSums`]), so that equals summing every document again, and
/// an engine that sums every document each round ([`super::engine`]) gets the same bits.
/// The sample's rows are then labelled with the final centroids, for the keywords and the
/// fit-time similarity quantiles.
///
/// `fit.converged` then says whether the refinement stopped by that rule.
pub(super) fn refine_on_corpus(
    plan: &JobPlan,
    vectorized: &Vectorized,
    fit: &mut KMeansFit,
    rounds: usize,
) -> Result<Refined, JobError> {
    let k = fit.n_clusters;
    let transformer = transformer_of(plan, vectorized);
    // Each document's cluster in the previous round, in reading order.
    let mut assignment = StreamedAssignment::new();
    // The first round's rows, read back by the later rounds instead of vectorising again.
    let spill_error = |source| JobError::Spill { source };
    let mut spill = RowSpill::new(vectorized.vocabulary.len()).map_err(spill_error)?;
    let mut rounds = Rounds::new(plan, rounds, fit);
    let mut sums = StreamedSums::new(k, vectorized.vocabulary.len());
    loop {
        let t = Instant::now();
        let round = rounds.next();
        let scorer = NearestCentroids::new(&fit.centroids);
        let (mut position, mut moved) = (0usize, 0u64);
        let mut step = |x: &Csr| {
            if round == 1 {
                sums.add(x, assignment.first(&scorer, x));
            } else {
                let moves = assignment.next(&scorer, x, position);
                moved += moves.len() as u64;
                sums.apply_moves(x, &moves);
            }
            position += x.rows();
        };
        if round == 1 {
            for_each_batch(plan, &transformer, |x| {
                step(x);
                spill.push(x).map_err(spill_error)
            })?;
            debug!(
                bytes = spill.bytes(),
                "the input's rows spilled for the later rounds"
            );
        } else {
            for x in spill.batches().map_err(spill_error)? {
                step(&x.map_err(spill_error)?);
            }
        }
        if !rounds.end(fit, &mut sums, moved, t)? {
            break;
        }
    }
    label_sample(vectorized, fit);
    Ok(rounds.refined)
}

/// The refinement's rounds: how many may run, the stop rule, and what they did. `fit` and an
/// engine's fit ([`super::engine`]) end each round here, so both stop alike.
pub(super) struct Rounds {
    max: usize,
    tol: f64,
    prune: f32,
    done: bool,
    pub(super) refined: Refined,
}

impl Rounds {
    /// At most `max` rounds over `fit`, which is not converged until a round says so.
    pub(super) fn new(plan: &JobPlan, max: usize, fit: &mut KMeansFit) -> Self {
        fit.converged = false;
        Self {
            max,
            tol: plan.cluster.tol(),
            prune: plan.cluster.centroid_min_df_factor(),
            done: false,
            refined: Refined::default(),
        }
    }

    /// Whether the last round has run.
    pub(super) fn done(&self) -> bool {
        self.done
    }

    /// The round about to run: 1 for the first.
    pub(super) fn next(&self) -> usize {
        self.refined.moved.len() + 1
    }

    /// Ends the round that started at `t`: `sums` hold every document of the whole input in
    /// its nearest cluster, of which `moved` changed cluster since the round before. Their
    /// centroids replace `fit`'s; returns whether another round follows (not when the round
    /// moved at most `cluster.tol` of the documents, which converges the fit, nor after the
    /// last round allowed).
    pub(super) fn end(
        &mut self,
        fit: &mut KMeansFit,
        sums: &mut StreamedSums,
        moved: u64,
        t: Instant,
    ) -> Result<bool, JobError> {
        if !sums.within_limits() {
            return Err(JobError::ClusterTooLarge {
                n: sums.sizes().iter().copied().max().unwrap_or(0),
                limit: cluster::MAX_STREAMED_MEMBERS,
            });
        }
        let round = self.next();
        let (centroids, objective) = sums.centroids(&fit.centroids, self.prune);
        fit.centroids = centroids;
        let n_docs: u64 = sums.sizes().iter().sum();
        let moved = if round > 1 { moved } else { 0 };
        info!(
            round,
            n_docs,
            moved = (round > 1).then_some(moved),
            mean_similarity = objective / n_docs.max(1) as f64,
            seconds = t.elapsed().as_secs_f64(),
            "refined the centroids on every document"
        );
        self.refined.moved.push(moved);
        self.refined.n_docs = n_docs;
        if round > 1 && moved as f64 <= self.tol * n_docs as f64 {
            fit.converged = true;
        }
        self.done = fit.converged || round >= self.max;
        Ok(!self.done)
    }
}

/// Labels the sample's rows with `fit`'s final centroids, for the keywords and the fit-time
/// similarity quantiles.
pub(super) fn label_sample(vectorized: &Vectorized, fit: &mut KMeansFit) {
    let nearest = cluster::nearest(&vectorized.matrix, &fit.centroids);
    fit.sizes = cluster::kmeans::cluster_sizes(&nearest.labels, fit.n_clusters);
    fit.labels = nearest.labels;
    fit.similarity = nearest.similarity;
    fit.second_similarity = nearest.second_similarity;
}

/// What [`refine_on_corpus`] did.
#[derive(Debug, Default)]
pub(super) struct Refined {
    /// Per round, the documents whose cluster changed from the round before (0 in the
    /// first round, which has none before it).
    pub(super) moved: Vec<u64>,
    /// Documents with a known term in the whole input.
    pub(super) n_docs: u64,
}

/// The transformer that vectorises documents as `vectorized`'s rows were.
pub(super) fn transformer_of(plan: &JobPlan, vectorized: &Vectorized) -> Transformer {
    Transformer::new(
        plan.vectorize.clone(),
        vectorized.vocabulary.terms(),
        vectorized.idf.clone(),
    )
}

/// Calls `f` with the rows of every batch of every selected partition, in reading order,
/// vectorised by `transformer` (documents with a null text left out, as everywhere); stops
/// at the first error.
fn for_each_batch(
    plan: &JobPlan,
    transformer: &Transformer,
    mut f: impl FnMut(&Csr) -> Result<(), JobError>,
) -> Result<(), JobError> {
    let input = &plan.spec.input;
    for partition in &plan.dataset.partitions {
        let batches =
            DocumentBatches::new(partition, &input.id_column, &input.text_column, BATCH_ROWS);
        for next in batches {
            let (_, docs) = next?;
            let texts: Vec<&str> = docs.texts.iter().flatten().collect();
            f(&transformer.transform(&texts).matrix)?;
        }
    }
    Ok(())
}

/// The number of documents of the whole input, and the document frequency of each of
/// `vectorized`'s columns among them: one pass, whose memory is one batch and a count per
/// column.
pub(super) fn whole_input_df(
    plan: &JobPlan,
    vectorized: &Vectorized,
) -> Result<(Vec<u32>, usize), JobError> {
    let mut df = vec![0u32; vectorized.vocabulary.len()];
    let mut n_docs = 0usize;
    for_each_batch(plan, &transformer_of(plan, vectorized), |x| {
        n_docs += x.rows();
        for &j in x.indices() {
            df[j as usize] += 1;
        }
        Ok(())
    })?;
    Ok((df, n_docs))
}
