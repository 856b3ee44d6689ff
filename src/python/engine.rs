//! The steps of a fit that an engine runs (`crate::job::engine`), for
//! `textcluster.spark.fit`: `EngineFit` on the driver; `sample_rows`, `Vectorizer` and `Round` on
//! the executors, each on one thread.

use std::path::PathBuf;
use std::sync::Mutex;

use arrow::array::RecordBatch;
use arrow::pyarrow::ToPyArrow;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator};

use super::{batch_of, batches_of, configure_storage, every_core, on_threads, raise, to_python};
use crate::job::JobError;
use crate::job::engine;

/// Runs `f` on one rayon thread without the GIL, handing it the Arrow batches of the Python
/// iterable `batches` one at a time (the GIL is taken to fetch each), so that memory holds
/// one batch whatever the partition's size. An error the iterable raised is raised again.
fn over_batches<T: Send>(
    py: Python<'_>,
    batches: &Bound<'_, PyAny>,
    f: impl FnOnce(&mut dyn Iterator<Item = Result<RecordBatch, JobError>>) -> Result<T, JobError>
    + Send,
) -> PyResult<T> {
    let iterator: Py<PyIterator> = batches.try_iter()?.unbind();
    let raised: Mutex<Option<PyErr>> = Mutex::new(None);
    let out = py.detach(|| {
        on_threads(1, || {
            let mut next = std::iter::from_fn(|| {
                Python::attach(|py| {
                    let item = iterator.bind(py).clone().next()?;
                    Some(item.and_then(|o| batch_of(&o)).map_err(|e| {
                        let problem = e.to_string();
                        *raised.lock().expect("not poisoned") = Some(e);
                        JobError::EngineStep { problem }
                    }))
                })
            });
            f(&mut next)
        })
    })?;
    if let Some(e) = raised.into_inner().expect("not poisoned") {
        return Err(e);
    }
    out.map_err(raise)
}

/// The rows of `batch` in the sample of `fraction` drawn with `seed` (a fit's sample rule),
/// as its `id_column` and `text_column`; rows with a null text are left out.
#[pyfunction]
#[pyo3(signature = (batch, id_column, text_column, seed, fraction))]
pub(super) fn sample_rows<'py>(
    py: Python<'py>,
    batch: &Bound<'py, PyAny>,
    id_column: &str,
    text_column: &str,
    seed: u64,
    fraction: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let batch = batch_of(batch)?;
    let rule = engine::SampleRule { seed, fraction };
    let kept = py
        .detach(|| engine::sample(&batch, id_column, text_column, rule))
        .map_err(raise)?;
    kept.to_pyarrow(py)
}

/// Vectorises documents as a fit's rows were (from `EngineFit.vectorizer()`'s bytes).
#[pyclass(frozen, module = "textcluster")]
pub(super) struct Vectorizer {
    inner: engine::Vectorizer,
}

#[pymethods]
impl Vectorizer {
    #[new]
    fn new(state: &[u8]) -> PyResult<Self> {
        Ok(Self {
            inner: engine::Vectorizer::from_bytes(state).map_err(raise)?,
        })
    }

    /// Document frequencies over every batch of `batches` (an iterable of Arrow batches), as
    /// one RecordBatch `(term int32, count int64)`; term -1 counts the documents.
    fn df_counts<'py>(
        &self,
        py: Python<'py>,
        batches: &Bound<'py, PyAny>,
        text_column: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        over_batches(py, batches, |it| self.inner.df_counts(it, text_column))?.to_pyarrow(py)
    }

    /// The rows of `batch`'s documents with a known term: `(indices list<int32>, values
    /// list<float32>)`.
    fn rows<'py>(
        &self,
        py: Python<'py>,
        batch: &Bound<'py, PyAny>,
        text_column: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let batch = batch_of(batch)?;
        py.detach(|| on_threads(1, || self.inner.rows(&batch, text_column)))?
            .map_err(raise)?
            .to_pyarrow(py)
    }
}

/// One refinement round (from `EngineFit.round()`'s bytes).
#[pyclass(frozen, module = "textcluster")]
pub(super) struct Round {
    inner: engine::Round,
}

#[pymethods]
impl Round {
    #[new]
    fn new(state: &[u8]) -> PyResult<Self> {
        Ok(Self {
            inner: engine::Round::from_bytes(state).map_err(raise)?,
        })
    }

    /// The round's partial sums over the rows in `batches` (an iterable of
    /// `Vectorizer.rows` batches): one RecordBatch `(cluster int32, term int32, value int64)`.
    fn partial_sums<'py>(
        &self,
        py: Python<'py>,
        batches: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        over_batches(py, batches, |it| self.inner.partial_sums(it))?.to_pyarrow(py)
    }
}

/// A fit on the driver, step by step, as `textcluster.spark.fit` runs it.
#[pyclass(module = "textcluster")]
pub(super) struct EngineFit {
    inner: Option<engine::EngineFit>,
    registry: PathBuf,
    threads: usize,
}

impl EngineFit {
    fn get(&mut self) -> PyResult<&mut engine::EngineFit> {
        self.inner.as_mut().ok_or_else(|| {
            raise(JobError::EngineStep {
                problem: "the fit is finished".into(),
            })
        })
    }

    /// Runs `f` on the fit without the GIL, on the driver's threads.
    fn run<T: Send>(
        &mut self,
        py: Python<'_>,
        f: impl FnOnce(&mut engine::EngineFit) -> Result<T, JobError> + Send,
    ) -> PyResult<T> {
        let threads = self.threads;
        let fit = self.get()?;
        py.detach(|| on_threads(threads, || f(fit)))?.map_err(raise)
    }
}

#[pymethods]
impl EngineFit {
    /// The fit of the job at `spec` into the registry `model` (else the spec's `[model]
    /// path`), with `overrides` and `partitions` as for `fit`; `storage_options` are
    /// `[storage]` options for listing an input on an object store.
    #[new]
    #[pyo3(signature = (spec, model=None, overrides=None, partitions=None, threads=None, storage_options=None))]
    fn new(
        py: Python<'_>,
        spec: PathBuf,
        model: Option<PathBuf>,
        overrides: Option<Vec<String>>,
        partitions: Option<Vec<String>>,
        threads: Option<usize>,
        storage_options: Option<std::collections::BTreeMap<String, String>>,
    ) -> PyResult<Self> {
        configure_storage(storage_options);
        let threads = threads.unwrap_or_else(every_core);
        let (inner, registry) = py
            .detach(|| {
                on_threads(threads, || {
                    let plan = crate::job::JobPlan::load(
                        &spec,
                        &overrides.unwrap_or_default(),
                        &partitions.unwrap_or_default(),
                    )?;
                    let registry = crate::job::fit::registry(&plan, model.as_deref())?;
                    Ok::<_, JobError>((engine::EngineFit::new(plan, &registry)?, registry))
                })
            })?
            .map_err(raise)?;
        Ok(Self {
            inner: Some(inner),
            registry,
            threads,
        })
    }

    /// The id of a model an earlier identical fit wrote to the registry, or None.
    fn reusable(&mut self, py: Python<'_>) -> PyResult<Option<String>> {
        self.run(py, |f| Ok(f.reusable()?.map(|m| m.id().to_owned())))
    }

    /// `(seed, fraction)`: the sample's rule, for `sample_rows`.
    #[getter]
    fn sample_rule(&mut self) -> PyResult<(u64, f64)> {
        let rule = self.get()?.sample_rule();
        Ok((rule.seed, rule.fraction))
    }

    /// The rows the input's Parquet footers count.
    #[getter]
    fn input_rows(&mut self) -> PyResult<u64> {
        Ok(self.get()?.plan().input_rows())
    }

    /// The spec's `input.id_column` and `input.text_column`.
    #[getter]
    fn columns(&mut self) -> PyResult<(String, String)> {
        let input = &self.get()?.plan().spec.input;
        Ok((input.id_column.clone(), input.text_column.clone()))
    }

    /// Whether the whole input's df counts are needed (`set_whole_df`).
    #[getter]
    fn needs_whole_df(&mut self) -> PyResult<bool> {
        Ok(self.get()?.needs_whole_df())
    }

    /// Vectorises the sample (an Arrow table or batch of the rows `sample_rows` kept).
    fn set_sample(&mut self, py: Python<'_>, rows: &Bound<'_, PyAny>) -> PyResult<()> {
        let batches = batches_of(rows)?;
        self.run(py, |f| f.set_sample(&batches))
    }

    /// What executors vectorise with, as bytes for `Vectorizer`.
    fn vectorizer<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.run(py, |f| f.vectorizer())?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Weights the sample's vocabulary by the df counts summed per term (an Arrow table
    /// `(term, count)`).
    fn set_whole_df(&mut self, py: Python<'_>, counts: &Bound<'_, PyAny>) -> PyResult<()> {
        let batches = batches_of(counts)?;
        self.run(py, |f| f.set_whole_df(&batches))
    }

    /// Clusters the sample on this machine.
    fn cluster(&mut self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |f| f.cluster())
    }

    /// The next refinement round as bytes for `Round`, or None when the refinement is over.
    fn round<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let round = self.run(py, |f| f.round())?;
        Ok(round.map(|bytes| PyBytes::new(py, &bytes)))
    }

    /// Ends the round with the partial sums summed per `(cluster, term)` (an Arrow table
    /// `(cluster, term, value)`); returns whether another round follows.
    fn end_round(&mut self, py: Python<'_>, summed: &Bound<'_, PyAny>) -> PyResult<bool> {
        let batches = batches_of(summed)?;
        self.run(py, |f| f.end_round(&batches))
    }

    /// Seals and writes the model, publishes it unless `publish` is false, and returns the
    /// summary `fit` prints, as a dict.
    #[pyo3(signature = (publish=true))]
    fn finish<'py>(&mut self, py: Python<'py>, publish: bool) -> PyResult<Bound<'py, PyAny>> {
        let fit = self.inner.take().ok_or_else(|| {
            raise(JobError::EngineStep {
                problem: "the fit is finished".into(),
            })
        })?;
        let (threads, registry) = (self.threads, self.registry.clone());
        let summary = py
            .detach(|| {
                on_threads(threads, || {
                    let outcome = fit.finish()?;
                    if publish {
                        crate::model::publish(&registry, outcome.model.id())?;
                    }
                    Ok::<_, JobError>(outcome.to_json(publish))
                })
            })?
            .map_err(raise)?;
        to_python(py, &summary)
    }

    /// Publishes `model_id` as the registry's current model (a reused fit's).
    fn publish(&self, model_id: &str) -> PyResult<()> {
        crate::model::publish(&self.registry, model_id).map_err(|e| raise(JobError::from(e)))
    }
}
