//! textcluster: cluster text documents kept as partitioned Parquet.
//!
//! The pipeline, one module per concept:
//! [`io`] (partitions, Parquet in and out, commit) → [`text`] (tokenise, vocabulary, TF-IDF) →
//! [`sparse`] (CSR rows) → [`cluster`] (spherical k-means) → [`label`] (keywords) →
//! [`job`] (spec, plan, runner, manifest); [`eval`] scores labels against gold labels. See `ARCHITECTURE.md`.
//!
//! The library never prints; it reports through `tracing` and return values.

#![warn(clippy::print_stdout, clippy::print_stderr)]
// Tests may use `std::fs` directly; the library goes through `fs_err` (clippy.toml).
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod cluster;
pub mod eval;
pub mod io;
pub mod job;
pub mod label;
pub mod model;
pub mod output;
#[cfg(feature = "python")]
pub mod python;
pub mod report;
pub mod sparse;
pub mod text;
