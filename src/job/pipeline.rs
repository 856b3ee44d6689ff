//! The pipeline of one clustering: load → vectorise → cluster → keywords, as one value.
//!
//! [`partition`] runs it over one input partition, [`global`] over every selected partition
//! at once. Both return what the runner needs to stage the tables ([`super::tables`]) and
//! report on the run: the loaded documents (ids, counts, timings) and a [`Clustered`]. Nothing
//! here writes or commits; failures are typed [`JobError`]s.

use std::time::Instant;

use arrow::array::{Array, RecordBatch, StringViewArray, StringViewBuilder};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tracing::info;

use super::JobError;
use super::documents::{BATCH_ROWS, StreamedIdCheck, without_null_texts};
use super::fingerprint::{derive_seed, id_hash};
use super::plan::JobPlan;
use super::words::WordIncidence;
use crate::cluster::{self, KMeansFit};
use crate::io::{DocumentBatches, OutputError, Partition, PartitionKey, read_partition};
use crate::label;
use crate::output::manifest::{ClusterReport, ClusteringReport, SkippedShare, StageSeconds};
use crate::output::tables;
use crate::text::{self, Vectorized};

/// The size of each buffer a sample's strings are copied into (see [`load_sample`]).
const SAMPLE_BLOCK_BYTES: u32 = 64 << 20;

/// Second-best cosine within this of the best makes a document ambiguous.
const AMBIGUITY_MARGIN: f32 = 0.01;

/// Receives progress events, for a progress bar. Called from worker threads.
pub trait Progress: Sync {
    /// The run will process `n_units` units: partitions, or one in `global` scope.
    fn start(&self, n_units: usize);
    /// A stage (`read`, `vectorize`, `cluster`, `write`) of a unit began.
    fn stage(&self, unit: &str, stage: &'static str);
    /// A unit is done, whatever its status.
    fn finish(&self, unit: &str);
}

/// Reports a stage to `progress`, if there is one.
pub(super) fn stage(progress: Option<&dyn Progress>, unit: &PartitionKey, name: &'static str) {
    if let Some(p) = progress {
        p.stage(&unit.to_string(), name);
    }
}

/// One partition's documents with null texts removed.
pub(super) struct Loaded<'p> {
    pub(super) partition: &'p Partition,
    pub(super) ids: StringViewArray,
    pub(super) texts: StringViewArray,
    /// Rows skipped because their text is null.
    pub(super) n_null: usize,
    pub(super) seconds_read: f64,
}

impl<'p> Loaded<'p> {
    /// The documents read from `partition` since `start`, `n_null` rows with a null text
    /// left out (with a warning).
    fn new(
        partition: &'p Partition,
        ids: StringViewArray,
        texts: StringViewArray,
        n_null: usize,
        start: Instant,
    ) -> Self {
        if n_null > 0 {
            tracing::warn!(partition = %partition.key, n_null, "skipped rows with a null text");
        }
        Self {
            partition,
            ids,
            texts,
            n_null,
            seconds_read: start.elapsed().as_secs_f64(),
        }
    }

    fn texts(&self) -> impl Iterator<Item = &str> {
        // Nulls were filtered out on load.
        self.texts.iter().map(|t| t.unwrap_or_default())
    }
}

/// One clustering's results, before writing.
pub(super) struct Clustered {
    pub(super) key: PartitionKey,
    pub(super) vectorized: Vectorized,
    pub(super) fit: KMeansFit,
    pub(super) merge: Option<cluster::MergeOutcome>,
    pub(super) keywords: Vec<label::Keyword>,
    /// The terms keywords index when they are whole words (else the vocabulary's).
    pub(super) keyword_terms: Option<Vec<String>>,
    /// Vectorise, cluster and keyword seconds (`write` is the runner's).
    pub(super) seconds: StageSeconds,
}

impl Clustered {
    /// The `centroids` table.
    pub(super) fn centroids_table(&self) -> Result<RecordBatch, OutputError> {
        tables::centroids(&self.fit, &self.vectorized.vocabulary)
    }

    /// The `keywords` table: keywords named by whole words when they were scored as words,
    /// otherwise by the vocabulary's terms.
    pub(super) fn keywords_table(&self) -> Result<RecordBatch, OutputError> {
        tables::keywords(&self.keywords, |j| match &self.keyword_terms {
            Some(words) => words[j].as_str(),
            None => self.vectorized.vocabulary.term(j),
        })
    }

    /// The `similarity` table.
    pub(super) fn similarity_table(&self) -> Result<RecordBatch, OutputError> {
        tables::similarity(&self.fit.centroids)
    }
}

/// A partition-scope clustering: the partition's documents and their clustering.
pub(super) struct PartitionRun<'p> {
    pub(super) loaded: Loaded<'p>,
    pub(super) clustered: Clustered,
}

/// Reads and clusters one partition on its own.
pub(super) fn partition<'p>(
    plan: &JobPlan,
    progress: Option<&dyn Progress>,
    partition: &'p Partition,
) -> Result<PartitionRun<'p>, JobError> {
    // Failpoint for the test suite, compiled only into debug builds: panic in one partition.
    #[cfg(debug_assertions)]
    if std::env::var("TEXTCLUSTER_FAILPOINT_PANIC").is_ok_and(|k| k == partition.key.to_string()) {
        panic!(
            "failpoint TEXTCLUSTER_FAILPOINT_PANIC in `{}`",
            partition.key
        );
    }
    stage(progress, &partition.key, "read");
    let loaded = load(plan, partition)?;
    stage(progress, &partition.key, "vectorize");
    let t = Instant::now();
    let texts: Vec<&str> = loaded.texts().collect();
    let vectorized = text::fit_transform(&plan.vectorize, &texts);
    let seconds = vectorized_seconds(&partition.key, &vectorized, t);
    let words = plan
        .spec
        .keywords_are_words()
        .then(|| WordIncidence::of(plan, &texts));
    drop(texts);
    let clustered = cluster_vectorized(
        plan,
        progress,
        partition.key.clone(),
        vectorized,
        seconds,
        words,
    );
    Ok(PartitionRun { loaded, clustered })
}

/// Reads every partition (only the documents of the sample, when `fraction` is below 1)
/// and clusters them together under key `all`.
///
/// `prepare` may change the vectorised documents before they are clustered (a sample's
/// vocabulary, weighted by the whole input's df); its time counts as vectorising. `refine`
/// may change the fit (a sampled fit's centroids, moved to the whole corpus's means) before
/// keywords are picked; its time counts as clustering.
pub(super) fn global<'p>(
    plan: &'p JobPlan,
    progress: Option<&dyn Progress>,
    all: &PartitionKey,
    fraction: f64,
    prepare: impl FnOnce(&mut Vectorized) -> Result<(), JobError>,
    refine: impl FnOnce(&Vectorized, &mut KMeansFit) -> Result<(), JobError>,
) -> Result<Clustered, JobError> {
    stage(progress, all, "read");
    let mut loaded: Vec<Loaded<'p>> = plan
        .dataset
        .partitions
        .par_iter()
        .map(|p| {
            if fraction < 1.0 {
                load_sample(plan, p, plan.cluster.seed(), fraction)
            } else {
                load(plan, p)
            }
        })
        .collect::<Result<_, JobError>>()?;
    stage(progress, all, "vectorize");
    let t = Instant::now();
    // The fit's documents in their canonical order (see [`sort_fit_documents`]), as
    // (partition, row).
    let order: Vec<(u32, u32)> = {
        let mut docs: Vec<FitDocument<'_, (u32, u32)>> = loaded
            .iter()
            .enumerate()
            .flat_map(|(p, l)| {
                l.ids
                    .iter()
                    .map(Option::unwrap_or_default)
                    .zip(l.texts())
                    .enumerate()
                    .map(move |(row, doc)| (doc, (p as u32, row as u32)))
            })
            .collect();
        sort_fit_documents(&mut docs);
        docs.into_iter().map(|(_, at)| at).collect()
    };
    let counted = {
        let texts: Vec<&str> = order
            .iter()
            .map(|&(p, row)| loaded[p as usize].texts.value(row as usize))
            .collect();
        text::count(&plan.vectorize, &texts)
    };
    // Unless keywords need the words, the texts are not needed again: free them before the
    // vocabulary and the matrix are built (1.7 GB per million documents of the generated
    // corpus).
    for l in &mut loaded {
        l.ids = StringViewArray::new_null(0);
        if !plan.spec.keywords_are_words() {
            l.texts = StringViewArray::new_null(0);
        }
    }
    let mut vectorized = counted.fit_transform(&plan.vectorize.for_sample(fraction));
    prepare(&mut vectorized)?;
    let seconds = vectorized_seconds(all, &vectorized, t);
    let words = plan.spec.keywords_are_words().then(|| {
        let texts: Vec<&str> = order
            .iter()
            .map(|&(p, row)| loaded[p as usize].texts.value(row as usize))
            .collect();
        WordIncidence::of(plan, &texts)
    });
    drop(loaded);
    let (mut fit, merge, mut seconds) = cluster_only(plan, progress, all, &vectorized, seconds);
    let t = Instant::now();
    refine(&vectorized, &mut fit)?;
    seconds.cluster += t.elapsed().as_secs_f64();
    Ok(with_keywords(
        plan,
        all.clone(),
        vectorized,
        fit,
        merge,
        seconds,
        words,
    ))
}

/// A fit's document, `(id, text)`, with where it came from.
pub(super) type FitDocument<'a, T> = ((&'a str, &'a str), T);

/// Puts a fit's documents, `((id, text), _)`, in the order it clusters them: by id, then by
/// text, as bytes. The order of the rows shapes a clustering (seeding, ties), so it is a
/// property of the documents, not of how files and partitions hold them: a fit gives the
/// same model whatever reads its input, the command or an engine (see [`super::engine`]).
/// Equal pairs are equal rows, so the order between them does not matter.
pub(super) fn sort_fit_documents<T: Send>(docs: &mut [FitDocument<'_, T>]) {
    docs.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
}

/// Whether document `id` is in the sample of `fraction` drawn with `seed`: its hash with the
/// seed ([`id_hash`]) below `fraction · 2^64`.
pub(super) fn in_sample(id: &str, seed: u64, fraction: f64) -> bool {
    (id_hash(&seed.to_le_bytes(), id) as f64) < fraction * 18_446_744_073_709_551_616.0
}

/// Reads the documents of `partition` that are in the sample of `fraction` drawn with `seed`
/// ([`in_sample`]), batch by batch: memory holds one batch, the sample's strings and an
/// 8-byte hash per document id for the duplicate check, whatever the partition's size. Rows
/// whose text is null are dropped, as [`load`] drops them.
fn load_sample<'p>(
    plan: &JobPlan,
    partition: &'p Partition,
    seed: u64,
    fraction: f64,
) -> Result<Loaded<'p>, JobError> {
    let start = Instant::now();
    let input = &plan.spec.input;
    let mut id_check = StreamedIdCheck::new(input, partition);
    // The strings are gathered in blocks above the allocator's largest mmap threshold (32
    // MiB in glibc), which are mapped on their own (pages never written take no memory) and
    // unmapped when dropped, then copied into one buffer of the exact size. Growing blocks
    // of the default builder stayed in the heap of the reading thread, which the later
    // stages' threads do not reuse: 0.4 GB more RSS for the rest of a fit on a
    // 300,000-document sample (1,420 against 1,070 MB).
    let builder = || StringViewBuilder::new().with_fixed_block_size(SAMPLE_BLOCK_BYTES);
    let (mut ids, mut texts) = (builder(), builder());
    let (mut n_read, mut n_null) = (0usize, 0usize);
    for next in DocumentBatches::new(partition, &input.id_column, &input.text_column, BATCH_ROWS) {
        let (file, docs) = next?;
        id_check.batch(file, &docs.ids)?;
        n_read += docs.ids.len();
        for (id, text) in docs.ids.iter().zip(docs.texts.iter()) {
            let id = id.unwrap_or_default();
            match text {
                None => n_null += 1,
                Some(text) if in_sample(id, seed, fraction) => {
                    ids.append_value(id);
                    texts.append_value(text);
                }
                Some(_) => {}
            }
        }
    }
    id_check.finish()?;
    let (ids, texts) = (ids.finish().gc(), texts.finish().gc());
    info!(partition = %partition.key, n_docs = n_read - n_null, n_sample = texts.len(), "read");
    Ok(Loaded::new(partition, ids, texts, n_null, start))
}

/// Reads the id and text columns of `partition`, dropping rows whose text is null.
fn load<'p>(plan: &JobPlan, partition: &'p Partition) -> Result<Loaded<'p>, JobError> {
    let start = Instant::now();
    let docs = read_partition(
        partition,
        &plan.spec.input.id_column,
        &plan.spec.input.text_column,
    )?;
    super::documents::check_ids(&plan.spec.input, partition, &docs.ids)?;
    let n_null = docs.texts.null_count();
    let (ids, texts) = if n_null > 0 {
        without_null_texts(&docs.ids, &docs.texts)
    } else {
        (docs.ids, docs.texts)
    };
    info!(partition = %partition.key, n_docs = texts.len(), "read");
    Ok(Loaded::new(partition, ids, texts, n_null, start))
}

/// Logs a finished vectorisation that started at `t`; the stage times so far.
pub(super) fn vectorized_seconds(
    key: &PartitionKey,
    vectorized: &Vectorized,
    t: Instant,
) -> StageSeconds {
    let seconds = StageSeconds {
        vectorize: t.elapsed().as_secs_f64(),
        ..StageSeconds::default()
    };
    info!(
        partition = %key,
        n_docs = vectorized.matrix.rows(),
        n_terms = vectorized.vocabulary.len(),
        nnz = vectorized.matrix.nnz(),
        seconds = seconds.vectorize,
        "vectorised"
    );
    seconds
}

/// Clusters the rows of `vectorized` (fit, then merge if asked) and picks keywords.
pub(super) fn cluster_vectorized(
    plan: &JobPlan,
    progress: Option<&dyn Progress>,
    key: PartitionKey,
    vectorized: Vectorized,
    seconds: StageSeconds,
    words: Option<WordIncidence>,
) -> Clustered {
    let (fit, merge, seconds) = cluster_only(plan, progress, &key, &vectorized, seconds);
    with_keywords(plan, key, vectorized, fit, merge, seconds, words)
}

/// Fits the rows of `vectorized`, then merges close clusters if asked.
pub(super) fn cluster_only(
    plan: &JobPlan,
    progress: Option<&dyn Progress>,
    key: &PartitionKey,
    vectorized: &Vectorized,
    mut seconds: StageSeconds,
) -> (KMeansFit, Option<cluster::MergeOutcome>, StageSeconds) {
    stage(progress, key, "cluster");
    let t = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(plan.cluster.seed(), key));
    let fit = cluster::fit(&vectorized.matrix, &plan.cluster, &mut rng);
    if let Some(k) = plan.cluster.k()
        && fit.n_clusters < k
    {
        tracing::warn!(
            partition = %key,
            k,
            n_clusters = fit.n_clusters,
            "k capped at the number of documents with terms"
        );
    }
    let (fit, merge) = cluster::merge_fit(&vectorized.matrix, fit, &plan.cluster);
    if let Some(o) = &merge {
        info!(partition = %key, n_before = o.n_before, n_after = o.n_after, refine_rounds = o.refine_rounds, "merged close clusters");
    }
    seconds.cluster = t.elapsed().as_secs_f64();
    info!(partition = %key, n_iter = fit.n_iter, seconds = seconds.cluster, "clustered");
    (fit, merge, seconds)
}

/// Picks the keywords of `fit`'s clusters.
pub(super) fn with_keywords(
    plan: &JobPlan,
    key: PartitionKey,
    vectorized: Vectorized,
    fit: KMeansFit,
    merge: Option<cluster::MergeOutcome>,
    mut seconds: StageSeconds,
    words: Option<WordIncidence>,
) -> Clustered {
    let t = Instant::now();
    let (keywords, keyword_terms) = match words {
        Some(words) => {
            let keywords = label::keywords(
                &words.matrix,
                &fit.labels,
                fit.n_clusters,
                &words.df,
                |j| !text::is_numeric(&words.terms[j]),
                &plan.keywords,
            );
            (keywords, Some(words.terms))
        }
        None => {
            let vocabulary = &vectorized.vocabulary;
            let keywords = label::keywords(
                &vectorized.matrix,
                &fit.labels,
                fit.n_clusters,
                vocabulary.df(),
                |j| !text::is_numeric(vocabulary.term(j)),
                &plan.keywords,
            );
            (keywords, None)
        }
    };
    seconds.keywords = t.elapsed().as_secs_f64();
    Clustered {
        key,
        vectorized,
        fit,
        merge,
        keywords,
        keyword_terms,
        seconds,
    }
}

impl Clustered {
    /// The manifest's entry for this clustering; `write_seconds` is how long its tables took.
    /// `k_requested` is the job's k; `None` (`"auto"`) records the clusters fitted before the
    /// merge.
    pub(super) fn report(
        &self,
        k_requested: Option<usize>,
        write_seconds: f64,
    ) -> ClusteringReport {
        let (fit, vectorized) = (&self.fit, &self.vectorized);
        let k = fit.n_clusters;
        let k_requested =
            k_requested.unwrap_or_else(|| self.merge.as_ref().map_or(k, |m| m.n_before));
        ClusteringReport {
            key: self.key.to_string(),
            n_docs: vectorized.matrix.rows(),
            n_empty_docs: vectorized.n_empty,
            n_terms: vectorized.vocabulary.len(),
            nnz: vectorized.matrix.nnz(),
            k_requested,
            n_clusters: k,
            n_iter: fit.n_iter,
            converged: fit.converged,
            objective: fit.objective.clone(),
            skipped_share: skipped_share(fit, vectorized.matrix.rows() - vectorized.n_empty),
            init: fit.init.clone(),
            n_reseeded: fit.n_reseeded,
            mean_centroid_nnz: if k == 0 {
                0.0
            } else {
                (0..k).map(|c| fit.centroids.nnz(c)).sum::<usize>() as f64 / k as f64
            },
            merge: self.merge.clone(),
            clusters: cluster_reports(fit),
            seconds: StageSeconds {
                write: write_seconds,
                ..self.seconds
            },
        }
    }
}

/// The share of document scorings the bounds skipped, over `n_active` documents per round.
fn skipped_share(fit: &KMeansFit, n_active: usize) -> SkippedShare {
    let share = |rounds: &[u64]| {
        let possible = (rounds.len() * n_active) as f64;
        if possible == 0.0 {
            0.0
        } else {
            1.0 - rounds.iter().sum::<u64>() as f64 / possible
        }
    };
    let split = fit.n_scored.len().min(5);
    SkippedShare {
        rounds_1_5: share(&fit.n_scored[..split]),
        rounds_6_on: share(&fit.n_scored[split..]),
    }
}

/// Per-cluster size, mean similarity and share of ambiguous members.
fn cluster_reports(fit: &KMeansFit) -> Vec<ClusterReport> {
    let k = fit.n_clusters;
    let mut sum = vec![0.0f64; k];
    let mut ambiguous = vec![0u64; k];
    for ((&l, &s), &s2) in fit
        .labels
        .iter()
        .zip(&fit.similarity)
        .zip(&fit.second_similarity)
    {
        if l >= 0 {
            sum[l as usize] += f64::from(s);
            ambiguous[l as usize] += u64::from(k > 1 && s - s2 <= AMBIGUITY_MARGIN);
        }
    }
    (0..k)
        .map(|c| {
            let size = fit.sizes[c];
            let share = |x: f64| if size == 0 { 0.0 } else { x / size as f64 };
            ClusterReport {
                cluster: c as i32,
                size,
                mean_similarity: share(sum[c]),
                ambiguous_share: share(ambiguous[c] as f64),
                joined_after_10: fit.late_joined[c],
                left_after_10: fit.late_left[c],
                moved_last_3: fit.final_moves(c),
                unsettled: fit.unsettled(c),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_read_batch_by_batch_into_strings_of_its_own() {
        let spec =
            crate::output::JobSpec::load(std::path::Path::new("jobs/sample.toml"), &[] as &[&str])
                .unwrap();
        let plan = JobPlan::resolve(spec, &crate::io::PartitionFilter::default()).unwrap();
        for p in &plan.dataset.partitions {
            let whole = load(&plan, p).unwrap();
            let sample = load_sample(&plan, p, 7, 0.3).unwrap();
            // The rows of the whole partition whose id hashes into the share, in order.
            let expected: Vec<(&str, &str)> = whole
                .ids
                .iter()
                .zip(whole.texts())
                .map(|(id, text)| (id.unwrap(), text))
                .filter(|(id, _)| in_sample(id, 7, 0.3))
                .collect();
            let got: Vec<(&str, &str)> = sample
                .ids
                .iter()
                .zip(sample.texts())
                .map(|(id, text)| (id.unwrap(), text))
                .collect();
            assert_eq!(got, expected, "{}", p.key);
            assert!((0.2..0.4).contains(&(got.len() as f64 / whole.texts.len() as f64)));
            // Only the sample's strings are held, not the buffers of the batches read.
            let (all, kept) = (
                whole.texts.get_buffer_memory_size(),
                sample.texts.get_buffer_memory_size(),
            );
            assert!(
                kept * 2 < all,
                "{kept} of {all} bytes kept for a 30% sample"
            );
        }
    }
}
