//! The output contract: what a job is asked to do and everything it leaves behind, as the
//! types `job`, `model`, `eval` and `report` read and write through.
//!
//! - [`spec`]: the TOML job spec and its `--set` overrides, as typed sections;
//! - [`manifest`]: what a run records (`manifest.json`, `_runs/<run_id>.json`);
//! - [`layout`]: the names of every file and directory under the output path;
//! - [`tables`]: the output tables' names, Arrow schemas and builders.
//!
//! This module holds no algorithm and starts no work; it sits above `io` (storage) and the
//! algorithms, whose parameter types the spec embeds, and below everything that runs a job.

pub mod layout;
pub mod manifest;
pub mod spec;
pub mod tables;

pub use manifest::{Manifest, ManifestError};
pub use spec::{JobSpec, SpecError};
pub use tables::Table;
