//! The Airflow DAGs in `jobs/airflow/` (refit, daily assign, backfill), run for real by
//! `airflow dags test`, the backfill with the LocalExecutor and an API server on loopback
//! (`tests/airflow/run.sh` installs Airflow into a cached virtualenv on first use).

use std::process::Command;

use crate::util::repo;

#[test]
fn airflow_refit_daily_assign_and_backfill_dags_commit_their_partitions() {
    let output = Command::new("bash")
        .arg(repo().join("tests/airflow/run.sh"))
        .arg(env!("CARGO_BIN_EXE_textcluster"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
