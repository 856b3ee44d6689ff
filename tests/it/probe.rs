//! The second hostile probe's defects, one test per row of its table (`row_<n>_...`). Each
//! reproduces the defect from outside, through the binary: the exit code, the message, and
//! that nothing committed was lost or changed. `TEXTCLUSTER_TEST_BIN=<older binary> cargo
//! test --test it probe::` shows which of them an older build fails.

use std::path::{Path, PathBuf};

use crate::util::*;

/// Every file under `dir` with its bytes, to compare before and after a refused run.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

/// A job spec with `input` and `output` written as given (URLs or paths).
fn raw_spec(dir: &Path, input: &str, output: &str) -> PathBuf {
    let path = dir.join("raw-job.toml");
    std::fs::write(
        &path,
        format!(
            "[input]\npath = {input:?}\n[vectorize]\nmin_df = 1\nmax_df = 1.0\n[cluster]\nk = 2\n[output]\npath = {output:?}\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn row_01_an_input_inside_the_output_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("R");
    // The input is an earlier run's `labels` table under R: a run writing to R would replace it.
    let input = root.join("labels");
    hive_tree(&input, 2, 3);
    let before = snapshot(&root);
    let job = raw_spec(dir.path(), input.to_str().unwrap(), root.to_str().unwrap());
    let err = fails(&textcluster(&["run", job.to_str().unwrap()]), 1);
    assert!(err.contains("is inside output path"), "{err}");
    assert!(err.contains(input.to_str().unwrap()), "{err}");
    assert_eq!(
        snapshot(&root),
        before,
        "something under the output changed"
    );
}

#[test]
fn row_02_an_output_inside_an_s3_input_is_refused_whatever_its_spelling() {
    let dir = tempfile::tempdir().unwrap();
    // No store is reached: the check comes before any request.
    for output in [
        "s3a://lake/in/out",
        "S3://lake/in/out",
        "s3://lake//in/out",
        "s3://lake/./in/out",
    ] {
        let job = raw_spec(dir.path(), "s3://lake/in", output);
        let err = fails(&textcluster(&["plan", job.to_str().unwrap()]), 1);
        assert!(err.contains("is inside input path"), "{output}: {err}");
    }
    // The other direction too.
    let job = raw_spec(dir.path(), "s3a://lake/out/labels", "s3://lake//out");
    let err = fails(&textcluster(&["plan", job.to_str().unwrap()]), 1);
    assert!(err.contains("is inside output path"), "{err}");
}

#[test]
fn row_07_a_partition_key_named_like_an_output_column_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for key in ["cluster", "doc_id", "model_id"] {
        let input = dir.path().join(format!("in-{key}"));
        let out = dir.path().join(format!("out-{key}"));
        for value in ["1", "2"] {
            let ids: Vec<String> = (0..6).map(|i| format!("{key}{value}-{i}")).collect();
            let texts: Vec<Option<String>> = (0..6).map(|i| Some(doc(i % 2, i))).collect();
            write_docs(
                &input.join(format!("{key}={value}")).join("part-0.parquet"),
                &ids,
                &texts,
            );
        }
        let job = spec(dir.path(), &input, &out, 2);
        let err = fails(&textcluster(&["run", job.to_str().unwrap()]), 1);
        assert!(err.contains(&format!("partition key `{key}`")), "{err}");
        assert!(err.contains("column of the"), "{err}");
        assert!(!out.exists(), "{key}: the output was created");
    }
}

#[test]
fn row_14_a_dotdot_in_an_object_store_output_is_refused_at_plan_time() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    hive_tree(&input, 1, 2);
    let job = raw_spec(dir.path(), input.to_str().unwrap(), "s3://lake/x/../out");
    let started = std::time::Instant::now();
    let err = fails(&textcluster(&["run", job.to_str().unwrap()]), 1);
    assert!(err.contains("`output.path`"), "{err}");
    assert!(err.contains("`..`"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the refusal waited for a store"
    );
}

#[test]
fn row_18_an_empty_input_path_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let job = raw_spec(dir.path(), "", out.to_str().unwrap());
    let err = fails(&textcluster(&["run", job.to_str().unwrap()]), 1);
    assert!(err.contains("`input.path` is empty"), "{err}");
    assert!(!out.exists());
}
