//! Bad input and hostile conditions, one test per case: each asserts the exit code, that the
//! message names the culprit, and that nothing committed changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use textcluster::output::manifest::{PartitionStatus, RunStatus};

use crate::util::*;

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    (dir, input, out)
}

#[test]
fn output_reached_through_a_symlink_or_dotdot_into_the_input_is_rejected() {
    let (dir, input, _) = setup();
    hive_tree(&input, 1, 2);
    let before = snapshot(&input);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    for out in [link.join("o2"), dir.path().join("zz/../in/o7")] {
        let job = spec(dir.path(), &input, &out, 2);
        let err = fails(&textcluster(&["run", job.to_str().unwrap()]), 1);
        assert!(err.contains("is inside input path"), "{err}");
        assert!(err.contains(out.to_str().unwrap()), "{err}");
    }
    assert_eq!(snapshot(&input), before, "the input changed");
    assert!(
        !dir.path().join("zz").exists(),
        "a directory was created on the way"
    );
}

#[test]
fn null_doc_ids_fail_naming_the_file_the_column_and_the_count() {
    let (dir, input, out) = setup();
    hive_tree(&input, 1, 2);
    let bad = input.join("dt=2018-06-01/part-1.parquet");
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("doc_id", arrow::datatypes::DataType::Utf8, true),
        arrow::datatypes::Field::new("text", arrow::datatypes::DataType::Utf8, true),
    ]));
    let batch = arrow::array::RecordBatch::try_new(
        schema,
        vec![
            std::sync::Arc::new(arrow::array::StringArray::from(vec![
                None,
                Some("x1"),
                None,
            ])),
            std::sync::Arc::new(arrow::array::StringArray::from(vec![
                Some(doc(0, 1)),
                Some(doc(1, 2)),
                Some(doc(2, 3)),
            ])),
        ],
    )
    .unwrap();
    // An earlier good run committed the partition; the failed run must leave it as it was.
    ok(&textcluster(&[
        "run",
        spec(dir.path(), &input, &out, 2).to_str().unwrap(),
    ]));
    write_batch(&bad, &batch);
    let err = run_expecting(dir.path(), &input, &out, 1);
    assert!(
        err.contains("part-1.parquet") && err.contains("`doc_id`") && err.contains("2 rows"),
        "{err}"
    );
    assert!(!committed_tables(&out).is_empty());
    // A sampled fit, which reads batch by batch and keeps only its sample, checks every id.
    let err = sampled_fit_expecting(dir.path(), &input, &out, 1);
    assert!(
        err.contains("part-1.parquet") && err.contains("`doc_id`") && err.contains("2 rows"),
        "{err}"
    );
}

/// Runs `fit` on a 30% sample of `input` expecting exit `code`; returns its stderr, after
/// checking that no model was written.
fn sampled_fit_expecting(dir: &Path, input: &Path, out: &Path, code: i32) -> String {
    let job = spec(dir, input, out, 2);
    let models = dir.join("models");
    let err = fails(
        &textcluster(&[
            "fit",
            job.to_str().unwrap(),
            "--model",
            models.to_str().unwrap(),
            "--set",
            "fit.sample=0.3",
        ]),
        code,
    );
    assert!(!models.exists(), "a failed fit wrote {models:?}");
    err
}

#[test]
fn duplicate_doc_ids_fail_unless_allowed_and_eval_says_how_it_matched() {
    let (dir, input, out) = setup();
    let ids: Vec<String> = ["a", "b", "c", "b", "d", "e"].map(String::from).to_vec();
    let texts: Vec<Option<String>> = (0..6).map(|i| Some(doc(i % 3, i))).collect();
    write_docs(&input.join("dt=1/part-0.parquet"), &ids[..3], &texts[..3]);
    write_docs(&input.join("dt=1/part-1.parquet"), &ids[3..], &texts[3..]);
    let job = spec(dir.path(), &input, &out, 2);
    let err = run_expecting(dir.path(), &input, &out, 1);
    assert!(
        err.contains("part-1.parquet") && err.contains("`b`"),
        "{err}"
    );
    assert!(err.contains("allow_duplicate_ids"), "{err}");
    // Also when `b` is in neither sample of a sampled fit, or in one of them.
    let err = sampled_fit_expecting(dir.path(), &input, &out, 1);
    assert!(
        err.contains("part-1.parquet") && err.contains("`b`"),
        "{err}"
    );

    ok(&textcluster(&[
        "run",
        job.to_str().unwrap(),
        "--set",
        "input.allow_duplicate_ids=true",
    ]));
    let gold = dir.path().join("gold");
    let labels: Vec<Option<String>> = ids.iter().map(|i| Some(format!("g{i}"))).collect();
    write_docs(&gold.join("part.parquet"), &ids, &labels);
    let eval = textcluster(&[
        "eval",
        out.to_str().unwrap(),
        "--gold",
        gold.to_str().unwrap(),
        "--label-column",
        "text",
        "--json",
    ]);
    ok(&eval);
    let report = String::from_utf8_lossy(&eval.stderr);
    assert!(report.contains("2 label rows share a doc_id"), "{report}");
    assert!(
        report.contains("1 gold ids occur more than once"),
        "{report}"
    );
    let json: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(
        json["summary"]["n_docs"], 6,
        "each label row scored once: {json}"
    );
}

#[test]
fn a_huge_thread_count_is_capped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let started = Instant::now();
    let run = textcluster(&[
        "run",
        "jobs/sample.toml",
        "--set",
        &format!("output.path={}", out.display()),
        "--partition",
        "dt=2018-06-01",
        "--threads",
        "100000",
    ]);
    ok(&run);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("`--threads` capped"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_closed_stdout_or_stderr_never_fails_a_committed_run() {
    let dir = tempfile::tempdir().unwrap();
    // stdout is a pipe whose reader is gone before the summary line is printed.
    let out = dir.path().join("a");
    let mut child = Command::new(env!("CARGO_BIN_EXE_textcluster"))
        .args([
            "run",
            "jobs/sample.toml",
            "--partition",
            "dt=2018-06-01",
            "--set",
        ])
        .arg(format!("output.path={}", out.display()))
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(out.join("_SUCCESS").exists());
    assert!(!out.join("_staging").exists());
    // stderr closed outright (`2>&-`): the logs must not land in an output file.
    let out = dir.path().join("b");
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{:?} run jobs/sample.toml --partition dt=2018-06-01 --set output.path={:?} >/dev/null 2>&-",
            env!("CARGO_BIN_EXE_textcluster"),
            out
        ))
        .current_dir(repo())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(out.join("_SUCCESS").exists());
    for f in tree(&out).iter().filter(|f| f.ends_with(".parquet")) {
        assert!(!read_batches(&out.join(f)).is_empty(), "{f}");
    }
}

#[test]
fn json_logs_give_one_json_object_per_stderr_line_even_for_the_final_error() {
    for extra in [
        &["--set", "cluster.k=0"][..],
        &["--set", "input.path=/nonexistent"][..],
    ] {
        let mut args = vec!["--log-format", "json", "run", "jobs/sample.toml"];
        args.extend_from_slice(extra);
        let run = textcluster(&args);
        let err = fails(&run, 1);
        let lines: Vec<&str> = err.lines().collect();
        assert!(!lines.is_empty());
        for line in &lines {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(v["level"].is_string(), "{line}");
        }
        let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
        assert_eq!(last["fields"]["exit_code"], 1, "{last}");
    }
    // A finished run prints its summary as one JSON object on stdout (an Airflow XCom).
    let dir = tempfile::tempdir().unwrap();
    let out = format!("output.path={}", dir.path().join("out").display());
    let stdout = ok(&textcluster(&[
        "--log-format",
        "json",
        "run",
        "jobs/sample.toml",
        "--partition",
        "dt=2018-06-01",
        "--set",
        &out,
    ]));
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["succeeded"], 1);
    assert_eq!(summary["partitions"][0]["key"], "dt=2018-06-01");
    assert!(
        summary["partitions"][0]["n_docs"].as_u64().unwrap() > 600,
        "{summary}"
    );
}

#[test]
fn colour_only_on_a_terminal_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)], name: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_textcluster"));
        cmd.args([
            "run",
            "jobs/sample.toml",
            "--partition",
            "dt=2018-06-01",
            "--set",
        ])
        .arg(format!("output.path={}", dir.path().join(name).display()))
        .current_dir(repo())
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(!run(&[], "piped").contains('\x1b'), "colour in a pipe");
    assert!(run(&[("CLICOLOR_FORCE", "1")], "forced").contains('\x1b'));
    // CLICOLOR_FORCE wins over NO_COLOR, as its convention says.
    assert!(run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], "both").contains('\x1b'));
}

#[test]
fn parquet_created_by_follows_parquet_mr_and_pyarrow_reads_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_sample(&out, &["--partition", "dt=2018-06-01"]);
    let files: Vec<PathBuf> = tree(&out)
        .into_iter()
        .filter(|f| f.ends_with(".parquet"))
        .map(|f| out.join(f))
        .collect();
    // labels, clusters, centroids, keywords, similarity of the one partition.
    assert_eq!(files.len(), 5);
    let output = Command::new("bash")
        .arg(repo().join("tests/pyarrow/created_by.sh"))
        .args(&files)
        .output()
        .unwrap();
    let stdout = ok(&output);
    assert_eq!(
        stdout
            .matches("app textcluster, version 0.1.0, build ")
            .count(),
        5,
        "{stdout}"
    );
}

#[test]
fn the_largest_u64_seed_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_sample(
        &out,
        &[
            "--partition",
            "dt=2018-06-01",
            "--set",
            "cluster.seed=18446744073709551615",
        ],
    );
    assert_eq!(manifest(&out).spec.cluster.seed, u64::MAX);
}

/// Starts a run over many partitions, waits until it has committed one, sends `signal`, and
/// returns the exit code and the output path.
fn interrupt(dir: &Path, signal: &str) -> (Option<i32>, PathBuf) {
    let (input, out) = (dir.join("in"), dir.join("out"));
    hive_tree(&input, 40, 6);
    let job = spec(dir, &input, &out, 3);
    let mut child = Command::new(env!("CARGO_BIN_EXE_textcluster"))
        .args(["run", job.to_str().unwrap(), "--threads", "1"])
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.join("_commits").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    (child.wait().unwrap().code(), out)
}

#[test]
fn sigterm_and_sigint_stop_cleanly_with_128_plus_the_signal() {
    for (signal, code, number) in [("TERM", 143, 15), ("INT", 130, 2)] {
        let dir = tempfile::tempdir().unwrap();
        let (exit, out) = interrupt(dir.path(), signal);
        assert_eq!(exit, Some(code), "SIG{signal}");
        let m = manifest(&out);
        assert_eq!(m.interrupted_by, Some(number));
        assert_eq!(m.exit_code, code as u8);
        assert_ne!(m.status, RunStatus::Succeeded);
        let cancelled = m
            .partitions
            .iter()
            .filter(|p| p.status == PartitionStatus::Cancelled)
            .count();
        assert!(cancelled > 0, "SIG{signal}: nothing was cancelled");
        assert!(!out.join("_SUCCESS").exists());
        assert!(!out.join("_staging").exists(), "staging left behind");
        assert!(tree(&out.join("_locks")).is_empty(), "locks left behind");
        for p in m
            .partitions
            .iter()
            .filter(|p| p.status == PartitionStatus::Succeeded)
        {
            let labels = out.join("labels").join(&p.key).join("part-00000.parquet");
            assert!(!read_batches(&labels).is_empty(), "{}", p.key);
        }
    }
}

/// The committed table files under `out` with their bytes (not manifests or records).
fn committed_tables(out: &Path) -> Vec<(String, Vec<u8>)> {
    if !out.exists() {
        return Vec::new();
    }
    snapshot(out)
        .into_iter()
        .filter(|(f, _)| f.ends_with(".parquet") && !f.starts_with('_'))
        .collect()
}

/// Runs the job on `input`; returns stderr after asserting `code` and that no committed table
/// under `out` appeared or changed.
fn run_expecting(dir: &Path, input: &Path, out: &Path, code: i32) -> String {
    let before = committed_tables(out);
    let job = spec(dir, input, out, 2);
    let err = fails(&textcluster(&["run", job.to_str().unwrap()]), code);
    assert_eq!(committed_tables(out), before, "committed outputs changed");
    err
}

#[test]
fn a_partition_name_that_is_not_utf8_is_named_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let (dir, input, out) = setup();
    hive_tree(&input, 1, 2);
    let bad = input.join(std::ffi::OsStr::from_bytes(b"dt=\xff"));
    std::fs::create_dir_all(&bad).unwrap();
    let good = input.join("dt=2018-06-01/part-00000.parquet");
    std::fs::copy(&good, bad.join("part-0.parquet")).unwrap();
    let err = run_expecting(dir.path(), &input, &out, 1);
    assert!(
        err.contains("dt=\u{fffd}") && err.contains("not valid UTF-8"),
        "{err}"
    );
    let plan = textcluster(&["plan", spec(dir.path(), &input, &out, 2).to_str().unwrap()]);
    fails(&plan, 1);
    assert!(!out.exists(), "something was written");
}

#[test]
fn a_fifo_among_the_files_is_skipped_with_a_warning_not_a_hang() {
    let (dir, input, out) = setup();
    hive_tree(&input, 1, 2);
    let fifo = input.join("dt=2018-06-01/part-00001.parquet");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let started = Instant::now();
    let job = spec(dir.path(), &input, &out, 2);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_textcluster"));
    cmd.args(["run", job.to_str().unwrap()])
        .current_dir(repo())
        .env("RUST_LOG", "warn");
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "hung on a FIFO"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        err.contains("neither a file nor a directory") && err.contains("part-00001"),
        "{err}"
    );
}

#[test]
fn symlink_loops_dangling_links_and_devices_exit_1_naming_the_path_once() {
    let (dir, input, out) = setup();
    hive_tree(&input, 1, 2);
    let link = input.join("dt=2018-06-01/loop");
    std::os::unix::fs::symlink("..", &link).unwrap();
    let err = run_expecting(dir.path(), &input, &out, 1);
    assert!(
        err.contains("symlink loop at") && err.contains("loop`"),
        "{err}"
    );
    assert!(err.len() < 400, "{} bytes of message: {err}", err.len());
    std::fs::remove_file(&link).unwrap();

    let dangling = input.join("dt=2018-06-01/part-9.parquet");
    std::os::unix::fs::symlink("/nonexistent/file", &dangling).unwrap();
    let err = run_expecting(dir.path(), &input, &out, 1);
    assert!(
        err.contains("part-9.parquet") && err.contains("symlink to nothing"),
        "{err}"
    );
    std::fs::remove_file(&dangling).unwrap();

    let err = run_expecting(dir.path(), Path::new("/dev/zero"), &out, 1);
    assert!(
        err.contains("/dev/zero") && err.contains("neither a file nor a directory"),
        "{err}"
    );
    let own = dir.path().join("self");
    std::os::unix::fs::symlink(&own, &own).unwrap();
    let err = run_expecting(dir.path(), &own, &out, 1);
    assert!(err.contains("symlink loop at"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_corrupt_page_or_invalid_utf8_names_the_file_and_the_column() {
    let (dir, input, out) = setup();
    let ids: Vec<String> = (0..30).map(|i| format!("d{i}")).collect();
    let texts: Vec<Option<String>> = (0..30).map(|i| Some(doc(i % 3, i))).collect();
    for f in 0..3 {
        let range = f * 10..f * 10 + 10;
        write_docs(
            &input.join(format!("dt=1/part-{f}.parquet")),
            &ids[range.clone()],
            &texts[range],
        );
    }
    // The text of the middle file made invalid UTF-8, written without validation.
    let bytes: Vec<&[u8]> = vec![b"ok text here", b"bad \xff\xfe text", b"more"];
    let offsets = arrow::buffer::OffsetBuffer::from_lengths(bytes.iter().map(|b| b.len()));
    let values = arrow::buffer::Buffer::from(bytes.concat());
    // SAFETY: deliberately invalid UTF-8, to test how the reader reports it.
    let texts = unsafe { arrow::array::StringArray::new_unchecked(offsets, values, None) };
    let batch = arrow::array::RecordBatch::try_from_iter(vec![
        (
            "doc_id",
            std::sync::Arc::new(arrow::array::StringArray::from(vec!["x0", "x1", "x2"]))
                as arrow::array::ArrayRef,
        ),
        ("text", std::sync::Arc::new(texts) as arrow::array::ArrayRef),
    ])
    .unwrap();
    write_batch(&input.join("dt=1/part-1.parquet"), &batch);
    let err = run_expecting(dir.path(), &input, &out, 1);
    assert!(
        err.contains("part-1.parquet") && err.contains("column `text`"),
        "{err}"
    );

    // A corrupt data page in the middle file (uncompressed, so the bytes are the strings'
    // lengths and data), its footer intact.
    write_docs(
        &input.join("dt=1/part-1.parquet"),
        &ids[10..20],
        &texts_of(10..20),
    );
    let middle = input.join("dt=1/part-1.parquet");
    let mut bytes = std::fs::read(&middle).unwrap();
    for b in &mut bytes[8..200] {
        *b = 0xff;
    }
    std::fs::write(&middle, bytes).unwrap();
    let err = run_expecting(dir.path(), &input, &out, 1);
    assert!(
        err.contains("part-1.parquet") && err.contains("column `"),
        "{err}"
    );
    assert!(
        !err.contains("part-0.parquet") && !err.contains("part-2.parquet"),
        "{err}"
    );
}

/// Texts of the documents `range`, as written by the corrupt-page test.
fn texts_of(range: std::ops::Range<usize>) -> Vec<Option<String>> {
    range.map(|i| Some(doc(i % 3, i))).collect()
}

#[test]
fn an_extra_column_in_a_later_file_and_dictionary_texts_are_read() {
    let (dir, input, out) = setup();
    let ids: Vec<String> = (0..12).map(|i| format!("d{i}")).collect();
    let texts: Vec<Option<String>> = (0..12).map(|i| Some(doc(i % 3, i))).collect();
    write_docs(&input.join("dt=1/part-0.parquet"), &ids[..6], &texts[..6]);
    let string = |v: &[String]| -> arrow::array::ArrayRef {
        std::sync::Arc::new(arrow::array::StringArray::from(v.to_vec()))
    };
    let texts_dict: arrow::array::DictionaryArray<arrow::datatypes::Int32Type> =
        texts[6..].iter().map(|t| t.as_deref()).collect();
    let batch = arrow::array::RecordBatch::try_from_iter(vec![
        ("doc_id", string(&ids[6..])),
        (
            "text",
            std::sync::Arc::new(texts_dict) as arrow::array::ArrayRef,
        ),
        (
            "extra",
            std::sync::Arc::new(arrow::array::Int32Array::from(vec![1; 6]))
                as arrow::array::ArrayRef,
        ),
    ])
    .unwrap();
    write_batch(&input.join("dt=1/part-1.parquet"), &batch);
    ok(&textcluster(&[
        "run",
        spec(dir.path(), &input, &out, 2).to_str().unwrap(),
    ]));
    let labels = read_labels(&out.join("labels/dt=1/part-00000.parquet"));
    assert_eq!(labels.len(), 12);
    assert_eq!(labels[11].0, "d11");
}

#[test]
fn a_full_disk_reports_its_cause_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    // A 100 KB tmpfs in a private mount namespace (as root, or in a user namespace): less
    // than any one partition's outputs (about 180 KB), so no partition can commit whichever
    // finishes first, and the run fails as a whole (exit 2, not 3).
    let unshare = if unsafe { libc::geteuid() } == 0 {
        "-m"
    } else {
        "-rm"
    };
    let script = format!(
        "mount -t tmpfs -o size=100k tmpfs {small:?} && {bin:?} run jobs/sample.toml --set output.path={out:?} >/dev/null; code=$?; find {small:?} -name '*.tmp*'; exit $code",
        bin = env!("CARGO_BIN_EXE_textcluster"),
        out = small.join("out"),
    );
    let output = Command::new("unshare")
        .args([unshare, "bash", "-c", &script])
        .current_dir(repo())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let left = String::from_utf8_lossy(&output.stdout);
    assert!(left.trim().is_empty(), "temporary files left: {left}");
}

/// Strips ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn log_lines_print_above_the_progress_bar_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "{:?} run jobs/sample.toml --set output.path={:?}",
        env!("CARGO_BIN_EXE_textcluster"),
        dir.path().join("out")
    );
    // `script` gives the run a pseudo-terminal, so the bar is drawn.
    let output = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .current_dir(repo())
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(output.status.success());
    let screen = String::from_utf8_lossy(&output.stdout);
    let segments: Vec<String> = screen.split(['\n', '\r']).map(strip_ansi).collect();
    let is_bar = |s: &str| s.contains("] ") && s.contains(" partitions");
    let is_log = |s: &str| s.contains("Z  INFO ") || s.contains("Z  WARN ");
    assert!(
        segments.iter().any(|s| is_bar(s)),
        "no bar drawn: {screen:?}"
    );
    assert!(
        segments.iter().any(|s| is_log(s)),
        "no log lines: {screen:?}"
    );
    let glued: Vec<&String> = segments.iter().filter(|s| is_bar(s) && is_log(s)).collect();
    assert!(glued.is_empty(), "log lines glued onto the bar: {glued:?}");
}
