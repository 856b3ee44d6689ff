//! Integration tests: the `textcluster` binary run on small hive trees built in temp dirs,
//! and on the real sample corpus in `data/`.

mod airflow;
mod architecture;
mod bad_input;
mod determinism;
mod exit_codes;
mod fuzz;
mod hardening;
mod jobs;
mod model;
pub mod production;
mod report;
mod run;
mod s3;
mod util;
