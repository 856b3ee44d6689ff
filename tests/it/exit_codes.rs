//! `eval` and `report` exit with the documented codes: 1 for what the user must fix, 2 for a
//! failure of the environment. (`run`'s codes 0-3 are covered in `bad_input` and `production`.)

use crate::util::*;

/// A finished run of the sample under `dir/out`.
fn sample_run(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("out");
    run_sample(&out, &["--partition", "dt=2018-06-01"]);
    out
}

#[test]
fn eval_without_a_manifest_or_with_another_format_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = fails(
        &textcluster(&["eval", empty.to_str().unwrap(), "--gold", "data/sample"]),
        1,
    );
    assert!(
        err.contains("manifest.json") && err.contains("empty"),
        "{err}"
    );

    let out = sample_run(dir.path());
    let manifest = out.join("manifest.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    value.as_object_mut().unwrap().remove("format_version");
    std::fs::write(&manifest, value.to_string()).unwrap();
    let err = fails(
        &textcluster(&["eval", out.to_str().unwrap(), "--gold", "data/sample"]),
        1,
    );
    assert!(err.contains("format version"), "{err}");
}

#[test]
fn eval_with_no_gold_overlap_exits_1_and_names_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let out = sample_run(dir.path());
    let gold = dir.path().join("gold");
    let ids: Vec<String> = (0..3).map(|i| format!("other-{i}")).collect();
    let texts: Vec<Option<String>> = (0..3).map(|i| Some(format!("label{i}"))).collect();
    write_docs(&gold.join("part.parquet"), &ids, &texts);
    let err = fails(
        &textcluster(&[
            "eval",
            out.to_str().unwrap(),
            "--gold",
            gold.to_str().unwrap(),
            "--label-column",
            "text",
        ]),
        1,
    );
    assert!(err.contains("gold") && err.contains("labels"), "{err}");
}

#[test]
fn report_that_cannot_be_written_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = sample_run(dir.path());
    // /proc accepts no new directories, whoever runs the test.
    let err = fails(
        &textcluster(&[
            "report",
            out.to_str().unwrap(),
            "-o",
            "/proc/textcluster-test/report.html",
            "--examples",
            "0",
        ]),
        2,
    );
    assert!(err.contains("/proc/textcluster-test"), "{err}");
}
