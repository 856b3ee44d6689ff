//! Integration tests: the `textcluster` binary run on small hive trees built in temp dirs,
//! and on the real sample corpus in `data/`.

// Tests, benchmarks and examples may use `std::fs` directly (clippy.toml is for the library).
#![allow(clippy::disallowed_methods)]

mod airflow;
mod architecture;
mod auto_k;
mod bad_input;
mod determinism;
mod docs;
mod exit_codes;
mod fuzz;
mod hardening;
mod jobs;
mod korean;
mod model;
mod probe;
pub mod production;
mod python;
mod report;
mod run;
mod stores;
mod util;
