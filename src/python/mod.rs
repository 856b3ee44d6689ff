//! The Python package `textcluster` (`--features python`, built into a wheel by maturin): a
//! front end like the command line. This file is its native module, `textcluster._native`,
//! which `textcluster/__init__.py` re-exports; `textcluster/spark.py` runs it on Spark. It converts types (Arrow through the PyCapsule interface,
//! JSON summaries to dicts), maps errors to Python exceptions, and holds no logic of its own.
//!
//! Exceptions: `textcluster.Error`, with `InputError` (the spec, the data or the model must be
//! fixed: the CLI's exit 1) and `RetryableError` (the environment failed: exit 2) under it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::pyarrow::{FromPyArrow, ToPyArrow};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyList;

mod engine;

use crate::job::JobError;
use crate::job::assign::Assigner;
use crate::output::Table;

pyo3::create_exception!(textcluster, Error, PyException, "Every textcluster error.");
pyo3::create_exception!(
    textcluster,
    InputError,
    Error,
    "The spec, the data or the model must be fixed; retrying will not help."
);
pyo3::create_exception!(
    textcluster,
    RetryableError,
    Error,
    "The environment failed (a store, the disk, a lock held by a live run); a retry may help."
);

/// A library error as the Python exception of its kind.
fn raise(e: impl Into<JobError>) -> PyErr {
    let e = e.into();
    if e.is_user_error() {
        InputError::new_err(e.to_string())
    } else {
        RetryableError::new_err(e.to_string())
    }
}

/// A JSON value as the Python object `json.loads` would give.
fn to_python<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?
        .call_method1("loads", (value.to_string(),))
}

/// `[storage]` options for the stores this process opens (they add to the environment).
fn configure_storage(options: Option<BTreeMap<String, String>>) {
    if let Some(options) = options {
        crate::io::store::configure(&options);
    }
}

/// Runs `f` on `threads` rayon threads (at least 1).
fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| RetryableError::new_err(format!("cannot start threads: {e}")))?;
    Ok(pool.install(f))
}

/// The number of cores: a job's default, as on the command line.
fn every_core() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The record batches of any Arrow object: one with `__arrow_c_array__` (a pyarrow
/// RecordBatch), or `__arrow_c_stream__` (a pyarrow Table, a polars DataFrame, a DuckDB
/// relation).
fn batches_of(object: &Bound<'_, PyAny>) -> PyResult<Vec<RecordBatch>> {
    Ok(stream_of(object)?.1)
}

/// The schema and batches of an Arrow object (see [`batches_of`]).
fn stream_of(
    object: &Bound<'_, PyAny>,
) -> PyResult<(arrow::datatypes::SchemaRef, Vec<RecordBatch>)> {
    if object.hasattr("__arrow_c_array__")? {
        let batch = RecordBatch::from_pyarrow_bound(object)?;
        return Ok((batch.schema(), vec![batch]));
    }
    if object.hasattr("__arrow_c_stream__")? {
        let reader = arrow::ffi_stream::RecordBatchStreamReader::from_pyarrow_bound(object)?;
        let schema = arrow::array::RecordBatchReader::schema(&reader);
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| InputError::new_err(format!("cannot read the batch: {e}")))?;
        return Ok((schema, batches));
    }
    Err(InputError::new_err(format!(
        "expected an Arrow object (with `__arrow_c_array__` or `__arrow_c_stream__`: pyarrow, polars, DuckDB), got {}",
        object.get_type().name()?
    )))
}

/// One record batch from any Arrow object (see [`batches_of`]); a stream's batches are
/// concatenated.
fn batch_of(object: &Bound<'_, PyAny>) -> PyResult<RecordBatch> {
    let (schema, mut batches) = stream_of(object)?;
    if batches.len() == 1 {
        return Ok(batches.pop().expect("one batch"));
    }
    arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| InputError::new_err(format!("cannot read the batch: {e}")))
}

/// A fitted model, loaded and checked as `assign` checks it.
#[pyclass(frozen, module = "textcluster")]
pub struct Model {
    model: crate::model::Model,
    assigner: Assigner,
}

#[pymethods]
impl Model {
    /// Opens the model at `uri`: a model directory, or a registry whose `CURRENT` names one, on
    /// local disk or an object store. `storage_options` are `[storage]` options.
    #[staticmethod]
    #[pyo3(signature = (uri, storage_options=None))]
    fn load(
        py: Python<'_>,
        uri: PathBuf,
        storage_options: Option<BTreeMap<String, String>>,
    ) -> PyResult<Self> {
        configure_storage(storage_options);
        py.detach(|| {
            let model = crate::model::Model::load(&uri)?;
            let assigner = Assigner::new(&model)?;
            Ok::<_, JobError>(Self { model, assigner })
        })
        .map_err(raise)
    }

    /// The model's content id.
    #[getter]
    fn model_id(&self) -> &str {
        self.model.id()
    }

    #[getter]
    fn n_clusters(&self) -> u64 {
        self.model.header.n_clusters
    }

    /// The model's directory.
    #[getter]
    fn path(&self) -> String {
        self.model.dir.display().to_string()
    }

    /// The `vectorize`, `cluster` and `keywords` parameters it was fitted with.
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let h = &self.model.header;
        let value = serde_json::json!({
            "vectorize": h.vectorize,
            "cluster": h.cluster,
            "keywords": h.keywords,
        });
        to_python(py, &value)
    }

    /// The whole header (`model.json`) as a dict.
    #[getter]
    fn header<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(
            py,
            &serde_json::to_value(&self.model.header).expect("serialises"),
        )
    }

    /// The `centroids` table, as a pyarrow Table.
    #[getter]
    fn centroids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.table(py, Table::Centroids)
    }

    /// The `keywords` table, as a pyarrow Table.
    #[getter]
    fn keywords<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.table(py, Table::Keywords)
    }

    /// The `similarity` table, as a pyarrow Table.
    #[getter]
    fn similarity<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.table(py, Table::Similarity)
    }

    /// The `labels` of the documents in `batch` (any Arrow object: pyarrow, polars, DuckDB),
    /// as a pyarrow RecordBatch with exactly the columns `assign` writes. Rows with a null
    /// text are left out, as `assign` leaves them out. The GIL is released while it runs, on
    /// `threads` threads (1 by default, for an engine's task).
    #[pyo3(signature = (batch, text_column="text", id_column="doc_id", threads=None))]
    fn assign<'py>(
        &self,
        py: Python<'py>,
        batch: &Bound<'py, PyAny>,
        text_column: &str,
        id_column: &str,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let batch = batch_of(batch)?;
        let labels = py
            // One thread unless asked: an engine's task must not take every core of its executor.
            .detach(|| {
                on_threads(threads.unwrap_or(1), || {
                    self.assigner.labels(&batch, id_column, text_column)
                })
            })?
            .map_err(raise)?;
        labels.to_pyarrow(py)
    }

    fn __repr__(&self) -> String {
        format!(
            "Model(model_id={:?}, n_clusters={}, path={:?})",
            self.model.id(),
            self.model.header.n_clusters,
            self.model.dir.display().to_string()
        )
    }
}

impl Model {
    fn table<'py>(&self, py: Python<'py>, table: Table) -> PyResult<Bound<'py, PyAny>> {
        let path = crate::model::table_file(&self.model.dir, table);
        let batches = py
            .detach(|| crate::io::read::read_output(&path, table))
            .map_err(|e| raise(JobError::from(e)))?;
        let list = PyList::empty(py);
        for batch in &batches {
            list.append(batch.to_pyarrow(py)?)?;
        }
        let schema = table.schema().to_pyarrow(py)?;
        py.import("pyarrow")?
            .getattr("Table")?
            .call_method1("from_batches", (list, schema))
    }
}

/// Runs `work` on the plan of the job at `spec` (a TOML path) with `overrides`
/// (`["cluster.k=20", ...]`) and `partitions` (`["dt=2018-06-01", ...]`), without the GIL, on
/// `threads` threads (every core by default, as on the command line); returns the JSON summary
/// it gives as a dict.
fn job<'py>(
    py: Python<'py>,
    spec: &Path,
    overrides: Option<Vec<String>>,
    partitions: Option<Vec<String>>,
    threads: Option<usize>,
    work: impl FnOnce(&crate::job::JobPlan) -> Result<serde_json::Value, JobError> + Send,
) -> PyResult<Bound<'py, PyAny>> {
    let summary = py.detach(|| {
        on_threads(threads.unwrap_or_else(every_core), || {
            let plan = crate::job::JobPlan::load(
                spec,
                &overrides.unwrap_or_default(),
                &partitions.unwrap_or_default(),
            )?;
            work(&plan)
        })
    })?;
    to_python(py, &summary.map_err(raise)?)
}

/// Runs the job at `spec` as `textcluster run` does; returns its JSON summary as a dict.
#[pyfunction]
#[pyo3(signature = (spec, overrides=None, partitions=None, threads=None))]
fn run<'py>(
    py: Python<'py>,
    spec: PathBuf,
    overrides: Option<Vec<String>>,
    partitions: Option<Vec<String>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    job(py, &spec, overrides, partitions, threads, |plan| {
        let summary = crate::job::run(plan, crate::job::RunOptions::default())?;
        Ok(summary.to_json(plan))
    })
}

/// Fits a model as `textcluster fit` does (into `model`, or the spec's `[model] path`) and
/// publishes it unless `publish` is false; returns the JSON summary as a dict.
#[pyfunction]
#[pyo3(signature = (spec, model=None, overrides=None, partitions=None, publish=true, threads=None))]
fn fit<'py>(
    py: Python<'py>,
    spec: PathBuf,
    model: Option<PathBuf>,
    overrides: Option<Vec<String>>,
    partitions: Option<Vec<String>>,
    publish: bool,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    job(py, &spec, overrides, partitions, threads, |plan| {
        let registry = crate::job::fit::registry(plan, model.as_deref())?;
        let outcome = crate::job::fit(plan, &registry, None)?;
        if publish {
            crate::model::publish(&registry, outcome.model.id())?;
        }
        Ok(outcome.to_json(publish))
    })
}

/// Labels the job's partitions against a model as `textcluster assign` does; returns the JSON
/// summary as a dict.
#[pyfunction]
#[pyo3(signature = (spec, model=None, overrides=None, partitions=None, threads=None))]
fn assign<'py>(
    py: Python<'py>,
    spec: PathBuf,
    model: Option<PathBuf>,
    overrides: Option<Vec<String>>,
    partitions: Option<Vec<String>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    job(py, &spec, overrides, partitions, threads, |plan| {
        let path = crate::job::fit::registry(plan, model.as_deref())?;
        let model = crate::model::Model::load(&path)?;
        let summary = crate::job::assign(plan, &model, crate::job::RunOptions::default())?;
        Ok(summary.to_json(plan))
    })
}

#[pymodule]
#[pyo3(name = "_native")]
fn textcluster(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Model>()?;
    m.add_class::<engine::EngineFit>()?;
    m.add_class::<engine::Vectorizer>()?;
    m.add_class::<engine::Round>()?;
    m.add_function(wrap_pyfunction!(engine::sample_rows, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(assign, m)?)?;
    m.add("Error", py.get_type::<Error>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("RetryableError", py.get_type::<RetryableError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
