//! The output directory's layout: every name textcluster writes under `output.path`, in one
//! place.
//!
//! ```text
//! OUT/
//!   labels/<key>/part-00000.parquet      one directory per table (crate::output::Table),
//!   clusters/ centroids/ keywords/ ...   partitioned like the input
//!   manifest.json                        the latest run's manifest
//!   _SUCCESS                             written after a run with no failed partition
//!   _runs/<run_id>.json                  every run's manifest
//!   _commits/<key>/commit.json           what a committed partition was computed from
//!   _locks/<key>/lock.json               the lease of the run writing a partition
//!   _staging/<run_id>/                   tables of a run in progress, and its journals
//!   models/<model_id>/, models/CURRENT   a registry of fitted models (`run` in global scope)
//! ```
//!
//! The names the commit and lock protocols own (`_staging`, `_commits`, `_locks`, the part
//! file) are defined beside those protocols in [`crate::io`] and re-exported here; the
//! leading underscore makes pyarrow, DuckDB, polars and Spark ignore them.

pub use crate::io::commit::{COMMITS_DIR, STAGING_DIR};
pub use crate::io::lock::LOCKS_DIR;
pub use crate::io::write::PART_FILE;

/// The latest run's manifest, under the output path.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Directory under the output path that keeps every run's manifest, as `<run_id>.json`.
pub const RUNS_DIR: &str = "_runs";

/// Written under the output path once a run ends with no failed partition.
pub const SUCCESS_FILE: &str = "_SUCCESS";

/// The model registry a `run` in global scope keeps under its output path.
pub const MODELS_DIR: &str = "models";

/// The file of a model registry that names its current model.
pub const CURRENT_FILE: &str = "CURRENT";
