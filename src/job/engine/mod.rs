//! A fit run step by step by an engine that holds the documents (Spark, through
//! `textcluster.spark.fit`), which writes the model `fit` writes on the same input and spec,
//! bit for bit, however the engine partitions the documents.
//!
//! The driver holds an [`EngineFit`]; the executors run [`sample`], a [`Vectorizer`] and a
//! [`Round`] on their batches, and the engine adds up what they return:
//!
//! 1. Driver: [`EngineFit::new`], then [`EngineFit::reusable`] (an earlier identical fit's
//!    model, as `fit` reuses it).
//! 2. Executors: [`sample`] keeps the batch's rows in the sample (the rule `fit` draws it
//!    with). The driver collects them; [`EngineFit::set_sample`] vectorises them as `fit`
//!    does, in the same order (ids, then texts, as bytes).
//! 3. When [`EngineFit::needs_whole_df`]: executors count with [`Vectorizer::df_counts`]
//!    over every batch, the engine sums the counts per term, and
//!    [`EngineFit::set_whole_df`] weights the sample's vocabulary by them.
//! 4. Driver: [`EngineFit::cluster`] clusters the sample as `fit` does.
//! 5. While [`EngineFit::round`] gives one: executors take [`Round::partial_sums`] over the
//!    rows of every document ([`Vectorizer::rows`], cached by the engine), the engine sums
//!    them per `(cluster, term)` as `int64`, and [`EngineFit::end_round`] makes the next
//!    centroids and applies `fit`'s stop rule.
//! 6. Driver: [`EngineFit::finish`] seals the model and writes it to the registry.
//!
//! Partial sums add up exactly in any order because the sums are integers (see
//! [`crate::cluster::StreamedSums`]). A round counts the documents that moved by labelling
//! each document with the previous round's centroids too: labels are a function of a row
//! and the centroids (ties to the lowest cluster), so these are the labels the round before
//! gave.
//!
//! What is exchanged is Arrow: the sample as the input's id and text columns; df counts as
//! `(term int32, count int64)`, with the number of documents at term −1; rows as
//! `(indices list<int32>, values list<float32>)`; partial sums as `(cluster int32, term
//! int32, value int64)`, with each cluster's members at term −1 and the documents moved at
//! cluster −1, term −1. What the driver sends the executors is [`EngineFit::vectorizer`] and
//! [`EngineFit::round`], as bytes.

mod executor;

use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::{Array, AsArray, PrimitiveArray, RecordBatch, StringViewArray};
use arrow::datatypes::{ArrowPrimitiveType, Int32Type, Int64Type};
use tracing::info;

use executor::{CentroidsState, RoundState, VectorizerState, step_error};
pub use executor::{Round, SampleRule, Vectorizer, sample};

use super::JobError;
use super::assign::batch_strings;
use super::fit::{self, FitOutcome, Fitted};
use super::pipeline;
use super::plan::JobPlan;
use super::refine::{self, Rounds};
use super::words::WordIncidence;
use crate::cluster::{Centroids, KMeansFit, MergeOutcome, StreamedSums};
use crate::io::PartitionKey;
use crate::model::Model;
use crate::output::manifest::StageSeconds;
use crate::text::{self, Vectorized};

/// Column `name` of a batch the engine summed, as `T`, or an error naming it.
fn summed_column<'a, T: ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a PrimitiveArray<T>, JobError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<T>())
        .ok_or_else(|| {
            step_error(format!(
                "the summed batch has no {} column `{name}`",
                T::DATA_TYPE
            ))
        })
}

/// A fit's state on the driver, between the steps the engine runs (see the module docs).
pub struct EngineFit {
    plan: JobPlan,
    registry: PathBuf,
    fingerprint: String,
    fit_key: String,
    fraction: f64,
    all: PartitionKey,
    started: Instant,
    seconds: StageSeconds,
    vectorized: Option<Vectorized>,
    words: Option<WordIncidence>,
    whole_df: Option<Vec<u32>>,
    clustered: Option<(KMeansFit, Option<MergeOutcome>)>,
    rounds: Option<Rounds>,
    /// The centroids the last round started from (for the next round's moves).
    previous: Option<Centroids>,
}

impl EngineFit {
    /// A fit of `plan`'s input into `registry` (a local directory). The plan has listed the
    /// input and read its footers: the fit's key and fingerprint are `fit`'s.
    pub fn new(plan: JobPlan, registry: &Path) -> Result<Self, JobError> {
        fit::check_readable(&plan)?;
        // The Korean word table is learned on the driver, from the input's files.
        let plan = super::words::learn_korean(&plan)?.unwrap_or(plan);
        let fingerprint = fit::plan_fingerprint(&plan);
        let fit_key = fit::fit_key(&plan, &fingerprint);
        let fraction = fit::sample_fraction(&plan);
        let all = PartitionKey::all(&plan.dataset.partition_keys);
        Ok(Self {
            plan,
            registry: registry.to_owned(),
            fingerprint,
            fit_key,
            fraction,
            all,
            started: Instant::now(),
            seconds: StageSeconds::default(),
            vectorized: None,
            words: None,
            whole_df: None,
            clustered: None,
            rounds: None,
            previous: None,
        })
    }

    /// The job's plan.
    pub fn plan(&self) -> &JobPlan {
        &self.plan
    }

    /// The model an earlier fit with the same parameters on the same input wrote, if any.
    pub fn reusable(&self) -> Result<Option<Model>, JobError> {
        fit::earlier_fit(&self.registry, &self.fit_key)
    }

    /// The sample's rule.
    pub fn sample_rule(&self) -> SampleRule {
        SampleRule {
            seed: self.plan.cluster.seed(),
            fraction: self.fraction,
        }
    }

    /// Vectorises the sample (the rows [`sample`] kept, in any order and batches) as `fit`
    /// vectorises it.
    pub fn set_sample(&mut self, batches: &[RecordBatch]) -> Result<(), JobError> {
        let t = Instant::now();
        let input = &self.plan.spec.input;
        let columns: Vec<(StringViewArray, StringViewArray)> = batches
            .iter()
            .map(|b| {
                Ok((
                    batch_strings(b, &input.id_column)?,
                    batch_strings(b, &input.text_column)?,
                ))
            })
            .collect::<Result<_, JobError>>()?;
        let mut docs: Vec<((&str, &str), ())> = columns
            .iter()
            .flat_map(|(ids, texts)| ids.iter().zip(texts.iter()))
            .filter_map(|(id, text)| Some(((id?, text?), ())))
            .collect();
        pipeline::sort_fit_documents(&mut docs);
        let texts: Vec<&str> = docs.iter().map(|((_, text), _)| *text).collect();
        let vectorize = &self.plan.vectorize;
        let counted = text::count(vectorize, &texts);
        self.vectorized = Some(counted.fit_transform(&vectorize.for_sample(self.fraction)));
        self.words = self
            .plan
            .spec
            .keywords_are_words()
            .then(|| WordIncidence::of(&self.plan, &texts));
        self.seconds.vectorize = t.elapsed().as_secs_f64();
        info!(n_sample = texts.len(), "sample vectorised");
        Ok(())
    }

    fn vectorized(&self) -> Result<&Vectorized, JobError> {
        self.vectorized
            .as_ref()
            .ok_or_else(|| step_error("the sample is not set yet (`set_sample`)"))
    }

    /// Whether the sample's vocabulary is weighted by the whole input's df ([`Vectorizer::df_counts`]
    /// summed, then [`EngineFit::set_whole_df`]) before it is clustered: a sampled fit
    /// that refines.
    pub fn needs_whole_df(&self) -> bool {
        self.refine_rounds() > 0
    }

    fn refine_rounds(&self) -> usize {
        fit::refine_rounds(&self.plan, self.fraction)
    }

    /// What executors vectorise with: the sample's vocabulary, weighted by the whole input's
    /// df once it is set.
    pub fn vectorizer(&self) -> Result<Vec<u8>, JobError> {
        let vectorized = self.vectorized()?;
        let state = VectorizerState {
            vectorize: self.plan.spec.vectorize.clone(),
            stopwords: fit::recorded_stopwords(&self.plan),
            korean: {
                let analyzer = self.plan.vectorize.analyzer();
                analyzer
                    .tokenizer()
                    .learns_korean()
                    .then(|| String::from_utf8(analyzer.korean().to_json()).expect("JSON is UTF-8"))
            },
            terms: vectorized.vocabulary.terms().to_vec(),
            idf_bits: vectorized.idf.iter().map(|v| v.to_bits()).collect(),
        };
        serde_json::to_vec(&state).map_err(|e| step_error(e.to_string()))
    }

    /// Weights the sample's vocabulary by the whole input's document frequencies:
    /// [`Vectorizer::df_counts`] of every batch, summed per term.
    pub fn set_whole_df(&mut self, summed: &[RecordBatch]) -> Result<(), JobError> {
        let n_terms = self.vectorized()?.vocabulary.len();
        let mut df = vec![0u32; n_terms];
        let mut n_docs = 0u64;
        for batch in summed {
            let term = summed_column::<Int32Type>(batch, "term")?;
            let count = summed_column::<Int64Type>(batch, "count")?;
            for (j, n) in term.iter().zip(count.iter()) {
                let (Some(j), Some(n)) = (j, n) else {
                    return Err(step_error("a df count is null"));
                };
                if j == -1 {
                    n_docs += n as u64;
                } else if j >= 0 && (j as usize) < n_terms {
                    df[j as usize] += n as u32;
                } else {
                    return Err(step_error(format!("df count for term {j} of {n_terms}")));
                }
            }
        }
        let t = Instant::now();
        let vectorized = self.vectorized.as_mut().expect("checked above");
        let df = fit::rebase_on_whole_input(&self.plan, vectorized, &df, n_docs as usize);
        self.whole_df = Some(df);
        self.seconds.vectorize += t.elapsed().as_secs_f64();
        Ok(())
    }

    /// Clusters the sample on this machine, as `fit` does.
    pub fn cluster(&mut self) -> Result<(), JobError> {
        let vectorized = self.vectorized()?;
        if self.needs_whole_df() && self.whole_df.is_none() {
            return Err(step_error(
                "a refined sample is weighted by the whole input's df first (`set_whole_df`)",
            ));
        }
        let (fit, merge, seconds) =
            pipeline::cluster_only(&self.plan, None, &self.all, vectorized, self.seconds);
        self.seconds = seconds;
        self.clustered = Some((fit, merge));
        Ok(())
    }

    /// The next refinement round to run on every document, or `None` when the refinement is
    /// over (or the fit does not refine).
    pub fn round(&mut self) -> Result<Option<Vec<u8>>, JobError> {
        let max = self.refine_rounds();
        let plan = &self.plan;
        let Some((fit, _)) = self.clustered.as_mut() else {
            return Err(step_error("the sample is not clustered yet (`cluster`)"));
        };
        if max == 0 {
            return Ok(None);
        }
        let rounds = self
            .rounds
            .get_or_insert_with(|| Rounds::new(plan, max, fit));
        if rounds.done() {
            return Ok(None);
        }
        let state = RoundState {
            centroids: CentroidsState::of(&fit.centroids),
            previous: self.previous.as_ref().map(CentroidsState::of),
        };
        serde_json::to_vec(&state)
            .map(Some)
            .map_err(|e| step_error(e.to_string()))
    }

    /// Ends the round with the sum, per `(cluster, term)`, of every executor's
    /// [`Round::partial_sums`]; returns whether another round follows.
    pub fn end_round(&mut self, summed: &[RecordBatch]) -> Result<bool, JobError> {
        let t = Instant::now();
        let n_terms = self.vectorized()?.vocabulary.len();
        let (Some((fit, _)), Some(rounds)) = (self.clustered.as_mut(), self.rounds.as_mut()) else {
            return Err(step_error("no round was started (`round`)"));
        };
        let mut sums = StreamedSums::new(fit.n_clusters, n_terms);
        let mut moved = 0u64;
        for batch in summed {
            let cluster = summed_column::<Int32Type>(batch, "cluster")?;
            let term = summed_column::<Int32Type>(batch, "term")?;
            let value = summed_column::<Int64Type>(batch, "value")?;
            for i in 0..batch.num_rows() {
                if cluster.is_null(i) || term.is_null(i) || value.is_null(i) {
                    return Err(step_error("a partial sum is null"));
                }
                let (c, j, v) = (cluster.value(i), term.value(i), value.value(i));
                let entry = match (c, j) {
                    (-1, -1) => {
                        moved += v as u64;
                        Ok(())
                    }
                    (c, -1) if c >= 0 => sums.add_members(c as usize, v as u64),
                    (c, j) if c >= 0 && j >= 0 => sums.add_entry(c as usize, j as usize, v),
                    _ => Err(format!("a partial sum at cluster {c}, term {j}")),
                };
                entry.map_err(step_error)?;
            }
        }
        self.previous = Some(fit.centroids.clone());
        let more = rounds.end(fit, &mut sums, moved, t)?;
        self.seconds.cluster += t.elapsed().as_secs_f64();
        Ok(more)
    }

    /// Seals the model and writes it to the registry (not published).
    pub fn finish(self) -> Result<FitOutcome, JobError> {
        if self.refine_rounds() > 0 && self.rounds.is_none() {
            return Err(step_error("the refinement has not run (`round`)"));
        }
        let Self {
            plan,
            registry,
            fingerprint,
            fit_key,
            all,
            started,
            seconds,
            vectorized,
            words,
            whole_df,
            clustered,
            rounds,
            ..
        } = self;
        let vectorized =
            vectorized.ok_or_else(|| step_error("the sample is not set yet (`set_sample`)"))?;
        let (mut fit, merge) =
            clustered.ok_or_else(|| step_error("the sample is not clustered yet (`cluster`)"))?;
        let refined = match rounds {
            Some(rounds) => {
                if !rounds.done() {
                    return Err(step_error("the refinement is not over (`round`)"));
                }
                refine::label_sample(&vectorized, &mut fit);
                Some(rounds.refined)
            }
            None => None,
        };
        let clustered = pipeline::with_keywords(&plan, all, vectorized, fit, merge, seconds, words);
        let fitted = Fitted {
            clustered,
            whole_df,
            refined,
        };
        let (sealed, clustering) = fit::seal(&plan, None, &fingerprint, fit_key, fitted)?;
        fit::written(sealed, clustering, &registry, started)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::ArrayRef;

    use super::executor::batch_of;
    use super::*;
    use crate::io::PartitionFilter;
    use crate::output::spec::JobSpec;

    fn plan(overrides: &[&str]) -> JobPlan {
        let spec = JobSpec::load(Path::new("jobs/sample.toml"), overrides).unwrap();
        JobPlan::resolve(spec, &PartitionFilter::default()).unwrap()
    }

    /// Every document of the plan's input as `(doc_id, text)` batches of `rows` rows, dealt
    /// into `n` "partitions" in an order of their own: what an engine might hold.
    fn partitions(plan: &JobPlan, n: usize, rows: usize) -> Vec<Vec<RecordBatch>> {
        let mut all: Vec<(String, String)> = Vec::new();
        for p in &plan.dataset.partitions {
            let docs = crate::io::read_partition(p, "doc_id", "text").unwrap();
            for (id, text) in docs.ids.iter().zip(docs.texts.iter()) {
                all.push((id.unwrap().to_owned(), text.unwrap_or_default().to_owned()));
            }
        }
        all.reverse();
        let mut parts: Vec<Vec<(String, String)>> = vec![Vec::new(); n];
        for (i, doc) in all.into_iter().enumerate() {
            parts[(i * 7 + i / 3) % n].push(doc);
        }
        parts
            .into_iter()
            .map(|docs| {
                docs.chunks(rows)
                    .map(|chunk| {
                        let ids: StringViewArray =
                            chunk.iter().map(|d| Some(d.0.as_str())).collect();
                        let texts: StringViewArray =
                            chunk.iter().map(|d| Some(d.1.as_str())).collect();
                        batch_of(vec![
                            ("doc_id", Arc::new(ids) as ArrayRef),
                            ("text", Arc::new(texts)),
                        ])
                        .unwrap()
                    })
                    .collect()
            })
            .collect()
    }

    /// Runs the engine's steps over `parts` as Spark would, summing what the executors
    /// return; the model written.
    fn engine_fit(plan: JobPlan, registry: &Path, parts: &[Vec<RecordBatch>]) -> (Model, usize) {
        let mut engine = EngineFit::new(plan, registry).unwrap();
        let rule = engine.sample_rule();
        let sample_rows: Vec<RecordBatch> = parts
            .iter()
            .flatten()
            .map(|b| sample(b, "doc_id", "text", rule).unwrap())
            .collect();
        engine.set_sample(&sample_rows).unwrap();
        if engine.needs_whole_df() {
            let v = Vectorizer::from_bytes(&engine.vectorizer().unwrap()).unwrap();
            let counts: Vec<RecordBatch> = parts
                .iter()
                .map(|p| v.df_counts(p.iter().cloned().map(Ok), "text").unwrap())
                .collect();
            engine.set_whole_df(&counts).unwrap();
        }
        engine.cluster().unwrap();
        let v = Vectorizer::from_bytes(&engine.vectorizer().unwrap()).unwrap();
        let rows: Vec<Vec<RecordBatch>> = parts
            .iter()
            .map(|p| p.iter().map(|b| v.rows(b, "text").unwrap()).collect())
            .collect();
        let mut n_rounds = 0;
        while let Some(round) = engine.round().unwrap() {
            let round = Round::from_bytes(&round).unwrap();
            let partials: Vec<RecordBatch> = rows
                .iter()
                .map(|p| round.partial_sums(p.iter().cloned().map(Ok)).unwrap())
                .collect();
            n_rounds += 1;
            if !engine.end_round(&partials).unwrap() {
                assert!(engine.round().unwrap().is_none());
            }
        }
        (engine.finish().unwrap().model, n_rounds)
    }

    #[test]
    fn an_engine_fit_writes_the_model_fit_writes_over_any_partitioning() {
        let dir = tempfile::tempdir().unwrap();
        for (name, overrides) in [("sampled", &["fit.sample=0.5"][..]), ("whole", &[])] {
            let want = fit::fit(&plan(overrides), &dir.path().join(name), None)
                .unwrap()
                .model;
            let counts: &[usize] = if name == "sampled" { &[1, 3, 8] } else { &[3] };
            for &n in counts {
                let plan = plan(overrides);
                let parts = partitions(&plan, n, 97);
                let registry = dir.path().join(format!("{name}-{n}"));
                let (got, n_rounds) = engine_fit(plan, &registry, &parts);
                assert_eq!(got.id(), want.id(), "{name}, {n} partitions");
                assert_eq!(got.header.refine_rounds, n_rounds, "{name}");
                if name == "sampled" {
                    assert!(n_rounds >= 2, "{n_rounds} rounds");
                }
            }
        }
    }

    #[test]
    fn steps_out_of_order_and_malformed_exchanges_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = EngineFit::new(plan(&["fit.sample=0.5"]), dir.path()).unwrap();
        let message = |e: JobError| e.to_string();
        assert!(message(engine.cluster().unwrap_err()).contains("`set_sample`"));
        assert!(message(engine.round().unwrap_err()).contains("`cluster`"));
        let rule = engine.sample_rule();
        let parts = partitions(engine.plan(), 1, 500);
        let rows: Vec<RecordBatch> = parts[0]
            .iter()
            .map(|b| sample(b, "doc_id", "text", rule).unwrap())
            .collect();
        engine.set_sample(&rows).unwrap();
        assert!(message(engine.cluster().unwrap_err()).contains("`set_whole_df`"));
        let v = Vectorizer::from_bytes(&engine.vectorizer().unwrap()).unwrap();
        let counts = v
            .df_counts(parts[0].iter().cloned().map(Ok), "text")
            .unwrap();
        engine.set_whole_df(&[counts]).unwrap();
        engine.cluster().unwrap();
        // A refined fit cannot be sealed before its rounds have run.
        assert!(message(engine.finish().unwrap_err()).contains("`round`"));
        assert!(Vectorizer::from_bytes(b"{}").is_err());
        assert!(Round::from_bytes(b"not json").is_err());
        let batch = batch_of(vec![(
            "text",
            Arc::new(StringViewArray::from(vec!["a"])) as ArrayRef,
        )])
        .unwrap();
        assert!(message(sample(&batch, "doc_id", "text", rule).unwrap_err()).contains("`doc_id`"));
    }
}
