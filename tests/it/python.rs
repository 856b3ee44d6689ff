//! The Python package as a user gets it: the wheel built by `scripts/build_wheel.sh` (the
//! `wheel-test` profile: unoptimised, no debug information, in this build's target directory),
//! installed with pip into a cached virtualenv (`tests/python/venv.sh`), then its pytest suite
//! (`tests/python/`), then the Airflow DAG that runs fit and assign with `spark-submit`
//! (`tests/airflow/run_spark.sh`). It fails, never skips, when the virtualenv or the wheel cannot be built.

use std::path::PathBuf;
use std::process::Command;

use crate::util::repo;

fn checked(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_wheel_installs_and_its_python_api_passes_its_tests() {
    let python = PathBuf::from(
        checked(
            Command::new("bash").arg(repo().join("tests/python/venv.sh")),
            "the Python virtualenv",
        )
        .trim(),
    );
    // The target directory of this build: `CARGO_TARGET_TMPDIR` is its `tmp/`.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let wheel = checked(
        Command::new("bash")
            .arg(repo().join("scripts/build_wheel.sh"))
            .arg("wheel-test")
            .env("PYTHON", &python)
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(repo()),
        "building the wheel",
    );
    checked(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--force-reinstall",
            "--no-deps",
            wheel.trim(),
        ]),
        "installing the wheel",
    );
    let tests = tempfile::tempdir().unwrap();
    checked(
        Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(repo().join("tests/python"))
            .current_dir(tests.path()),
        "the Python tests",
    );
    // The Airflow DAG that fits and assigns through spark-submit, with the wheel just installed.
    checked(
        Command::new("bash")
            .arg(repo().join("tests/airflow/run_spark.sh"))
            .arg(&python),
        "the Spark DAG in Airflow",
    );
}
