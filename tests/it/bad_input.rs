//! Bad input: a clear message naming the file, column or key, exit code 1, nothing written.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow::array::{BinaryArray, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use textcluster::output::manifest::{PartitionStatus, RunStatus};

use crate::util::*;

/// Runs `job` (with extra args), expects exit 1 with `needles` in stderr, and no output.
fn rejected(job: &Path, out: &Path, extra: &[&str], needles: &[&str]) {
    let mut args = vec!["run", job.to_str().unwrap()];
    args.extend_from_slice(extra);
    let stderr = fails(&textcluster(&args), 1);
    for needle in needles {
        assert!(stderr.contains(needle), "`{needle}` not in:\n{stderr}");
    }
    assert!(
        !out.exists(),
        "output written despite the error:\n{:?}",
        tree(out)
    );
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    (dir, input, out)
}

fn one_column_file(path: &Path, name: &str, array: arrow::array::ArrayRef) {
    let ids: arrow::array::ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
    let schema = Schema::new(vec![
        Field::new("doc_id", DataType::Utf8, false),
        Field::new(name, array.data_type().clone(), true),
    ]);
    write_batch(
        path,
        &RecordBatch::try_new(Arc::new(schema), vec![ids, array]).unwrap(),
    );
}

#[test]
fn missing_input_path() {
    let (dir, input, out) = setup();
    rejected(
        &spec(dir.path(), &input, &out, 2),
        &out,
        &[],
        &["does not exist", "in`"],
    );
}

#[test]
fn directory_without_parquet_files() {
    let (dir, input, out) = setup();
    std::fs::create_dir_all(&input).unwrap();
    rejected(
        &spec(dir.path(), &input, &out, 2),
        &out,
        &[],
        &["no Parquet files"],
    );
}

#[test]
fn missing_text_and_id_columns() {
    let (dir, input, out) = setup();
    let file = input.join("dt=1/part.parquet");
    one_column_file(&file, "body", Arc::new(StringArray::from(vec!["x", "y"])));
    let job = spec(dir.path(), &input, &out, 2);
    rejected(
        &job,
        &out,
        &[],
        &["part.parquet", "no column `text`", "body"],
    );
    rejected(
        &job,
        &out,
        &[
            "--set",
            "input.text_column=body",
            "--set",
            "input.id_column=uid",
        ],
        &["no column `uid`"],
    );
}

#[test]
fn text_column_that_is_not_a_string() {
    let (dir, input, out) = setup();
    one_column_file(
        &input.join("dt=1/p.parquet"),
        "text",
        Arc::new(Int32Array::from(vec![1, 2])),
    );
    rejected(
        &spec(dir.path(), &input, &out, 2),
        &out,
        &[],
        &["column `text`", "p.parquet", "not a string"],
    );
}

#[test]
fn a_tokens_column_that_is_missing_or_not_a_list_of_strings() {
    let (dir, input, out) = setup();
    one_column_file(
        &input.join("dt=1/p.parquet"),
        "tokens",
        Arc::new(StringArray::from(vec!["a b", "c d"])),
    );
    let job = spec(dir.path(), &input, &out, 2);
    let column = ["--set", "vectorize.tokenizer=column"];
    rejected(
        &job,
        &out,
        &[column[0], column[1], "--set", "input.tokens_column=tokenz"],
        &["no column `tokenz`", "p.parquet", "input.tokens_column"],
    );
    rejected(
        &job,
        &out,
        &[column[0], column[1], "--set", "input.tokens_column=tokens"],
        &[
            "column `tokens`",
            "p.parquet",
            "is Utf8, not a list of strings",
        ],
    );
    rejected(&job, &out, &column, &["needs `input.tokens_column`"]);
    rejected(
        &job,
        &out,
        &["--set", "input.tokens_column=tokens"],
        &["`input.tokens_column` is set and `vectorize.tokenizer` is not `column`"],
    );
}

#[test]
fn an_unknown_stop_list_is_named() {
    let (dir, input, out) = setup();
    hive_tree(&input, 1, 3);
    rejected(
        &spec(dir.path(), &input, &out, 2),
        &out,
        &["--set", "vectorize.stopwords=korea"],
        &["`vectorize.stopwords` = \"korea\" is neither a built-in list (english, korean, none)"],
    );
}

#[test]
fn binary_column_where_a_string_is_expected() {
    let (dir, input, out) = setup();
    let bytes: Vec<&[u8]> = vec![b"\xff\xfe", b"ok"];
    one_column_file(
        &input.join("dt=1/p.parquet"),
        "text",
        Arc::new(BinaryArray::from(bytes)),
    );
    rejected(
        &spec(dir.path(), &input, &out, 2),
        &out,
        &[],
        &["column `text`", "Binary"],
    );
}

#[test]
fn corrupt_and_empty_files_fail_their_partition_only() {
    let (dir, input, out) = setup();
    hive_tree(&input, 2, 2);
    let victim = input.join("dt=2018-06-02/part-00000.parquet");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let job = spec(dir.path(), &input, &out, 2);
    let stderr = fails(&textcluster(&["run", job.to_str().unwrap()]), 3);
    assert!(
        stderr.contains("dt=2018-06-02/part-00000.parquet"),
        "{stderr}"
    );
    assert!(stderr.contains("not a readable Parquet file"), "{stderr}");
    assert!(out.join("labels/dt=2018-06-01/part-00000.parquet").exists());
    assert!(!out.join("labels/dt=2018-06-02").exists());

    // Zero bytes, same treatment.
    std::fs::write(&victim, b"").unwrap();
    let stderr = fails(&textcluster(&["run", job.to_str().unwrap()]), 3);
    assert!(stderr.contains("empty (0 bytes)"), "{stderr}");

    // When every selected partition is bad, the plan fails and nothing is written.
    let out2 = dir.path().join("out2");
    let job2 = spec(dir.path(), &input, &out2, 2);
    rejected(
        &job2,
        &out2,
        &["--partition", "dt=2018-06-02"],
        &["dt=2018-06-02/part-00000.parquet", "empty"],
    );
    rejected(
        &job2,
        &out2,
        &["--set", &format!("input.path={}", victim.display())],
        &["empty"],
    );
}

#[test]
fn a_schema_that_differs_in_one_partition_fails_that_partition() {
    let (dir, input, out) = setup();
    hive_tree(&input, 2, 2);
    one_column_file(
        &input.join("dt=2018-06-03/part-00000.parquet"),
        "body",
        Arc::new(StringArray::from(vec!["x", "y"])),
    );
    let stderr = fails(
        &textcluster(&["run", spec(dir.path(), &input, &out, 2).to_str().unwrap()]),
        3,
    );
    assert!(
        stderr.contains("dt=2018-06-03/part-00000.parquet") && stderr.contains("no column `text`"),
        "{stderr}"
    );
    assert_eq!(manifest(&out).status, RunStatus::Partial);
}

#[test]
fn a_partition_directory_without_files_is_reported() {
    let (dir, input, out) = setup();
    hive_tree(&input, 1, 2);
    std::fs::create_dir_all(input.join("dt=2018-06-09")).unwrap();
    let run = textcluster(&["run", spec(dir.path(), &input, &out, 2).to_str().unwrap()]);
    ok(&run);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("dt=2018-06-09") && stderr.contains("has no files"),
        "{stderr}"
    );
    let job = spec(dir.path(), &input, &dir.path().join("out2"), 2);
    rejected(
        &job,
        &dir.path().join("out2"),
        &["--partition", "dt=2018-06-09"],
        &["no partition", "dt=2018-06-09"],
    );
}

#[test]
fn a_ten_megabyte_text_in_one_row_is_clustered() {
    let (dir, input, out) = setup();
    let big: String = (0..10 * 1024 * 1024 / 13 + 1)
        .map(|i| ["apple banana ", "engine brake "][i % 2])
        .collect::<String>()
        + "cherry";
    let ids: Vec<String> = (0..4).map(|i| format!("d{i}")).collect();
    let texts = vec![Some(big), Some(doc(0, 1)), Some(doc(1, 2)), Some(doc(2, 3))];
    assert!(texts[0].as_ref().unwrap().len() >= 10 * 1024 * 1024);
    write_docs(&input.join("dt=1/part.parquet"), &ids, &texts);
    ok(&textcluster(&[
        "run",
        spec(dir.path(), &input, &out, 2).to_str().unwrap(),
    ]));
    assert_eq!(
        read_labels(&out.join("labels/dt=1/part-00000.parquet")).len(),
        4
    );
}

#[test]
fn an_unwritable_output_path_is_an_environmental_failure() {
    let (dir, input, _) = setup();
    hive_tree(&input, 1, 2);
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let out = blocker.join("out");
    let stderr = fails(
        &textcluster(&["run", spec(dir.path(), &input, &out, 2).to_str().unwrap()]),
        2,
    );
    assert!(stderr.contains("a-file"), "{stderr}");
}

#[test]
fn k_below_one_and_other_bad_values_are_all_reported() {
    let (dir, input, out) = setup();
    hive_tree(&input, 1, 2);
    let job = spec(dir.path(), &input, &out, 0);
    rejected(
        &job,
        &out,
        &["--set", "cluster.max_iter=0"],
        &["`cluster.k` must be at least 1", "`cluster.max_iter`"],
    );
}

#[test]
fn k_auto_with_a_k_max_below_two_or_a_k_that_is_neither_are_named() {
    let (dir, input, out) = setup();
    hive_tree(&input, 1, 2);
    let job = spec(dir.path(), &input, &out, 2);
    let auto = ["--set", "cluster.k=auto"];
    rejected(
        &job,
        &out,
        &[&auto[..], &["--set", "cluster.k_max=1"]].concat(),
        &["`cluster.k_max` must be at least 2, got 1"],
    );
    rejected(
        &job,
        &out,
        &["--set", "cluster.k_max=50"],
        &["`cluster.k_max` is set and `cluster.k` is not \"auto\""],
    );
    for k in ["2.5", "many", "-3"] {
        rejected(
            &job,
            &out,
            &["--set", &format!("cluster.k={k}")],
            &["cluster.k", "a number of clusters (an integer) or \"auto\""],
        );
    }
}

#[test]
fn unknown_spec_keys_are_named() {
    let (dir, input, out) = setup();
    hive_tree(&input, 1, 2);
    let job = spec(dir.path(), &input, &out, 2);
    rejected(&job, &out, &["--set", "cluster.kk=3"], &["kk"]);
    std::fs::write(
        &job,
        format!(
            "{}\n[vectorise]\nmin_df = 1\n",
            std::fs::read_to_string(&job).unwrap()
        ),
    )
    .unwrap();
    rejected(&job, &out, &[], &["vectorise"]);
}

#[test]
fn empty_spec_names_the_missing_section() {
    let (dir, _, out) = setup();
    let job = dir.path().join("empty.toml");
    std::fs::write(&job, "").unwrap();
    rejected(&job, &out, &[], &["empty.toml", "input"]);
}

#[test]
fn malformed_arguments_exit_with_one() {
    let (dir, input, out) = setup();
    hive_tree(&input, 1, 2);
    let job = spec(dir.path(), &input, &out, 2);
    rejected(
        &job,
        &out,
        &["--set", "cluster.k"],
        &["not `key.path=value`"],
    );
    rejected(
        &job,
        &out,
        &["--partition", "hour=3"],
        &["unknown partition key `hour`"],
    );
    rejected(
        &job,
        &out,
        &["--partition", "dt=1999-01-01"],
        &["no partition", "dt=1999-01-01"],
    );
    rejected(&job, &out, &["--no-such-flag"], &["--no-such-flag"]);
}

#[test]
fn output_inside_input_is_rejected() {
    let (dir, input, _) = setup();
    hive_tree(&input, 1, 2);
    let out = input.join("out");
    rejected(
        &spec(dir.path(), &input, &out, 2),
        &out,
        &[],
        &["inside input path"],
    );
}

#[test]
fn path_segments_that_are_not_key_value() {
    let (dir, input, out) = setup();
    hive_tree(&input, 1, 2);
    let ids = vec!["z".to_owned()];
    write_docs(&input.join("misc/part.parquet"), &ids, &[Some("x".into())]);
    rejected(&spec(dir.path(), &input, &out, 2), &out, &[], &["misc"]);
}

#[test]
fn a_partition_key_with_an_empty_value() {
    let (dir, input, out) = setup();
    hive_tree(&input, 1, 2);
    let ids = vec!["z".to_owned()];
    write_docs(&input.join("dt=/part.parquet"), &ids, &[Some("x".into())]);
    rejected(
        &spec(dir.path(), &input, &out, 2),
        &out,
        &[],
        &["`dt=`", "non-empty value"],
    );
}

#[test]
fn failed_runs_leave_earlier_outputs_untouched() {
    let (dir, input, out) = setup();
    hive_tree(&input, 2, 4);
    let job = spec(dir.path(), &input, &out, 2);
    ok(&textcluster(&["run", job.to_str().unwrap()]));
    let before: Vec<(String, Vec<u8>)> = tree(&out)
        .into_iter()
        .map(|f| {
            let b = std::fs::read(out.join(&f)).unwrap();
            (f, b)
        })
        .collect();
    let stderr = fails(
        &textcluster(&["run", job.to_str().unwrap(), "--set", "cluster.k=0"]),
        1,
    );
    assert!(stderr.contains("cluster.k"));
    let after: Vec<(String, Vec<u8>)> = tree(&out)
        .into_iter()
        .map(|f| {
            let b = std::fs::read(out.join(&f)).unwrap();
            (f, b)
        })
        .collect();
    assert_eq!(before, after);
}

#[test]
fn ten_thousand_partitions_of_one_document_each() {
    // Regression: queueing every partition at once overflowed a worker's stack.
    let (dir, input, out) = setup();
    for i in 0..10_000 {
        write_docs(
            &input.join(format!("dt={i:05}/part-00000.parquet")),
            &[format!("d{i}")],
            &[Some(format!(
                "apple banana {}",
                ["engine", "planet"][i % 2]
            ))],
        );
    }
    let job = spec(dir.path(), &input, &out, 2);
    ok(&textcluster(&[
        "run",
        job.to_str().unwrap(),
        "--set",
        "vectorize.min_df=1",
    ]));
    assert_eq!(
        std::fs::read_dir(out.join("labels")).unwrap().count(),
        10_000
    );
    let m = manifest(&out);
    assert_eq!(m.status, RunStatus::Succeeded);
    assert_eq!(m.partitions.len(), 10_000);
    ok(&textcluster(&[
        "run",
        job.to_str().unwrap(),
        "--set",
        "vectorize.min_df=1",
        "--set",
        "output.mode=skip_existing",
    ]));
    assert!(
        manifest(&out)
            .partitions
            .iter()
            .all(|p| p.status == PartitionStatus::Skipped)
    );
}

#[test]
fn a_url_path_is_refused_by_scheme_and_never_becomes_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    for (key, url) in [
        ("input.path", "hdfs://namenode/corpus"),
        ("output.path", "s4://typo/out"),
    ] {
        let set = format!("{key}={url}");
        let err = fails(&textcluster(&["run", "jobs/sample.toml", "--set", &set]), 1);
        assert!(
            err.contains(url) && err.contains("`file://`") && err.contains("`s3://`"),
            "{err}"
        );
        let scheme = url.split_once(':').unwrap().0;
        assert!(
            !repo().join(format!("{scheme}:")).exists(),
            "a local `{scheme}:` directory"
        );
    }
    // s3:// goes to S3 (here no endpoint answers: exit 2), never to a local `s3:` directory.
    let unreachable = Command::new(env!("CARGO_BIN_EXE_textcluster"))
        .args([
            "run",
            "jobs/sample.toml",
            "--set",
            "output.path=s3://bucket/out",
        ])
        .current_dir(repo())
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    fails(&unreachable, 2);
    assert!(!repo().join("s3:").exists(), "a local `s3:` directory");
    // file:// is a local path.
    let out = dir.path().join("out");
    let set = format!("output.path=file://{}", out.display());
    ok(&textcluster(&[
        "run",
        "jobs/sample.toml",
        "--partition",
        "dt=2018-06-01",
        "--set",
        &set,
    ]));
    assert!(out.join("_SUCCESS").exists());
}
