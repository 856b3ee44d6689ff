//! The second hostile probe's defects, one test per row of its table (`row_<n>_...`). Each
//! reproduces the defect from outside, through the binary: the exit code, the message, and
//! that nothing committed was lost or changed. `TEXTCLUSTER_TEST_BIN=<older binary> cargo
//! test --test it probe::` shows which of them an older build fails.

use std::path::{Path, PathBuf};

use crate::stores::{FaultProxy, Server, tables};
use crate::util::*;

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

/// Fits `jobs/sample.toml` on day 1 into `registry` (with `extra` arguments); returns the
/// model's directory.
fn fit_day_one(registry: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "fit",
        "jobs/sample.toml",
        "--model",
        registry.to_str().unwrap(),
        "--partition",
        "dt=2018-06-01",
    ];
    args.extend_from_slice(extra);
    let summary: serde_json::Value = serde_json::from_str(ok(&textcluster(&args)).trim()).unwrap();
    PathBuf::from(summary["path"].as_str().unwrap())
}

/// Assigns day 2 of the sample against `model`, writing to `out`.
fn assign_day_two(model: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let out = format!("output.path={}", out.display());
    let mut args = vec![
        "assign",
        "jobs/sample.toml",
        "--model",
        model.to_str().unwrap(),
        "--set",
        &out,
        "--partition",
        "dt=2018-06-02",
    ];
    args.extend_from_slice(extra);
    textcluster(&args)
}

/// Rewrites the header of the model at `dir` with `edit`.
fn edit_header(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("model.json");
    let mut header: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut header);
    std::fs::write(&path, serde_json::to_vec_pretty(&header).unwrap()).unwrap();
}

#[test]
fn row_04_a_fit_with_no_usable_terms_fails_and_leaves_current_alone() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("models");
    fit_day_one(&registry, &[]);
    let current = std::fs::read(registry.join("CURRENT")).unwrap();
    // A window of nothing but stop words.
    let input = dir.path().join("in");
    let ids: Vec<String> = (0..20).map(|i| format!("d{i}")).collect();
    let texts: Vec<Option<String>> = (0..20)
        .map(|_| Some("the and of to in is it that".to_owned()))
        .collect();
    write_docs(&input.join("dt=2018-06-09/part-0.parquet"), &ids, &texts);
    let job = spec(dir.path(), &input, &dir.path().join("out"), 2);
    let args = [
        "fit",
        job.to_str().unwrap(),
        "--model",
        registry.to_str().unwrap(),
    ];
    let err = fails(&textcluster(&args), 1);
    assert!(err.contains("empty model"), "{err}");
    assert!(err.contains("survives the stop words"), "{err}");
    // A sample that selects nothing.
    let err = fails(
        &textcluster(&[
            "fit",
            "jobs/sample.toml",
            "--model",
            registry.to_str().unwrap(),
            "--set",
            "fit.sample=1e-300",
        ]),
        1,
    );
    assert!(err.contains("the sample is empty"), "{err}");
    assert_eq!(std::fs::read(registry.join("CURRENT")).unwrap(), current);
    let models = std::fs::read_dir(&registry).unwrap().count();
    assert_eq!(models, 2, "a model directory was written beside CURRENT");
}

#[test]
fn row_05_an_edited_model_header_is_a_corrupt_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = fit_day_one(&dir.path().join("models"), &[]);
    edit_header(&model, |h| {
        let old = h["vectorize"]["sublinear_tf"].as_bool().unwrap();
        h["vectorize"]["sublinear_tf"] = serde_json::Value::Bool(!old);
    });
    let out = dir.path().join("out");
    let err = fails(&assign_day_two(&model, &out, &[]), 1);
    assert!(err.contains("model.json"), "{err}");
    assert!(err.contains("content id"), "{err}");
    assert!(!out.join("labels").exists(), "labels were written");
}

#[test]
fn row_06_another_models_keywords_copied_in_are_refused_by_assign_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let a = fit_day_one(&dir.path().join("a"), &[]);
    let b = fit_day_one(&dir.path().join("b"), &["--set", "cluster.k=5"]);
    for table in ["keywords", "similarity"] {
        let file = format!("{table}.parquet");
        let saved = std::fs::read(a.join(&file)).unwrap();
        std::fs::copy(b.join(&file), a.join(&file)).unwrap();
        let out = dir.path().join(format!("out-{table}"));
        let err = fails(&assign_day_two(&a, &out, &[]), 1);
        assert!(err.contains(&file), "{table}: {err}");
        assert!(err.contains("SHA-256"), "{table}: {err}");
        std::fs::write(a.join(&file), saved).unwrap();
    }
    // A report of labels assigned with the model, after its keywords were swapped.
    let out = dir.path().join("out");
    ok(&assign_day_two(&a, &out, &[]));
    std::fs::copy(b.join("keywords.parquet"), a.join("keywords.parquet")).unwrap();
    let html = dir.path().join("report.html");
    let err = fails(
        &textcluster(&[
            "report",
            out.to_str().unwrap(),
            "-o",
            html.to_str().unwrap(),
            "--examples",
            "0",
        ]),
        1,
    );
    assert!(err.contains("SHA-256"), "{err}");
    assert!(!html.exists(), "a report was written");
}

#[test]
fn row_08_eval_skips_and_counts_null_gold_labels() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_sample(&out, &["--set", "cluster.scope=global"]);
    // The gold labels of the sample, with every third label null.
    let gold = dir.path().join("gold");
    let mut n_null = 0;
    for entry in std::fs::read_dir(repo().join("data/sample")).unwrap() {
        let part = entry.unwrap().path();
        if !part.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&part).unwrap() {
            let file = file.unwrap().path();
            let batches = read_batches(&file);
            let (mut ids, mut labels) = (Vec::new(), Vec::new());
            for b in &batches {
                let id = arrow::compute::cast(
                    b.column_by_name("doc_id").unwrap(),
                    &arrow::datatypes::DataType::Utf8,
                )
                .unwrap();
                let label = arrow::compute::cast(
                    b.column_by_name("label").unwrap(),
                    &arrow::datatypes::DataType::Utf8,
                )
                .unwrap();
                use arrow::array::AsArray;
                for i in 0..b.num_rows() {
                    ids.push(id.as_string::<i32>().value(i).to_owned());
                    let keep = (ids.len() % 3) != 0;
                    n_null += usize::from(!keep);
                    labels.push(keep.then(|| label.as_string::<i32>().value(i).to_owned()));
                }
            }
            let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
                arrow::datatypes::Field::new("doc_id", arrow::datatypes::DataType::Utf8, false),
                arrow::datatypes::Field::new("label", arrow::datatypes::DataType::Utf8, true),
            ]));
            let batch = arrow::array::RecordBatch::try_new(
                schema,
                vec![
                    std::sync::Arc::new(arrow::array::StringArray::from(ids)),
                    std::sync::Arc::new(arrow::array::StringArray::from(labels)),
                ],
            )
            .unwrap();
            write_batch(
                &gold.join(part.file_name().unwrap()).join("part-0.parquet"),
                &batch,
            );
        }
    }
    let output = textcluster(&[
        "eval",
        out.to_str().unwrap(),
        "--gold",
        gold.to_str().unwrap(),
        "--json",
    ]);
    let stdout = ok(&output);
    let evaluation: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(evaluation["summary"]["n_gold_labels"], 20, "{stdout}");
    assert_eq!(evaluation["n_null_gold"], n_null, "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("null gold label"), "{stderr}");
}

#[test]
fn row_12_a_header_with_fewer_clusters_than_n_clusters_is_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let model = fit_day_one(&dir.path().join("models"), &[]);
    edit_header(&model, |h| {
        h["clusters"].as_array_mut().unwrap().truncate(3);
    });
    let out = dir.path().join("out");
    let err = fails(&assign_day_two(&model, &out, &[]), 1);
    assert!(err.contains("model.json"), "{err}");
    assert!(!err.contains("panic"), "{err}");
    assert!(!out.join("labels").exists());
}

#[test]
fn row_15_an_explicit_default_is_not_a_contradiction() {
    let dir = tempfile::tempdir().unwrap();
    let model = fit_day_one(&dir.path().join("models"), &[]);
    let out = dir.path().join("out");
    ok(&assign_day_two(
        &model,
        &out,
        &["--set", "vectorize.drop_numbers=true"],
    ));
    // A value that does differ is still refused, naming the key.
    let err = fails(
        &assign_day_two(
            &model,
            &dir.path().join("out2"),
            &["--set", "vectorize.drop_numbers=false"],
        ),
        1,
    );
    assert!(err.contains("vectorize.drop_numbers"), "{err}");
}

#[test]
fn row_18_a_format_version_past_u32_is_reported_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let model = fit_day_one(&dir.path().join("models"), &[]);
    edit_header(&model, |h| {
        h["format_version"] = serde_json::json!(4_294_967_297u64);
    });
    let err = fails(&assign_day_two(&model, &dir.path().join("out"), &[]), 1);
    assert!(err.contains("4294967297"), "{err}");
}

#[test]
fn row_18_spec_errors_name_the_key_the_line_and_the_allowed_forms() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    let write = |text: &str| std::fs::write(&job, text).unwrap();
    let plan = || fails(&textcluster(&["plan", job.to_str().unwrap()]), 1);
    write("[input]\npath = \"data/sample\"\n[cluster]\nk = 3\nk = 4\n[output]\npath = \"o\"\n");
    let err = plan();
    assert!(err.contains("duplicate key `k` at line 5"), "{err}");
    write(
        "[input]\npath = \"data/sample\"\n[vectorize]\nmin_df = 1e400\n[cluster]\nk = 3\n[output]\npath = \"o\"\n",
    );
    let err = plan();
    assert!(err.contains("line 4 (`min_df = 1e400`)"), "{err}");
    // The same value given on the command line is a string: the key and the forms are named.
    write("[input]\npath = \"data/sample\"\n[cluster]\nk = 3\n[output]\npath = \"o\"\n");
    let err = fails(
        &textcluster(&[
            "plan",
            job.to_str().unwrap(),
            "--set",
            "vectorize.min_df=1e400",
        ]),
        1,
    );
    assert!(err.contains("`vectorize.min_df`"), "{err}");
    assert!(err.contains("a document count"), "{err}");
    assert!(err.contains("a fraction"), "{err}");
}

#[test]
fn row_18_a_gold_file_without_the_label_column_hints_at_label_column() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_sample(&out, &[]);
    // The run's own labels as the "gold" file: they have no `label` column.
    let err = fails(
        &textcluster(&[
            "eval",
            out.to_str().unwrap(),
            "--gold",
            out.join("labels").to_str().unwrap(),
        ]),
        1,
    );
    assert!(err.contains("--label-column"), "{err}");
    assert!(!err.contains("input.text_column"), "{err}");
}

#[test]
fn row_18_lock_messages_give_times_in_rfc_3339() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let out = dir.path().join("out");
    hive_tree(&input, 1, 3);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A live lock: this test's own process, with a lease still running.
    let body = serde_json::json!({
        "pid": std::process::id(),
        "host": host.trim(),
        "started_at": 1_765_000_000u64,
        "run_id": "x",
        "acquired_at": now,
        "expires_at": now + 600,
    });
    let lock = out.join("_locks/dt=2018-06-01/lock.json");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, body.to_string()).unwrap();
    let job = spec(dir.path(), &input, &out, 2);
    let err = fails(&textcluster(&["run", job.to_str().unwrap()]), 2);
    assert!(err.contains("started 2025-12-06T05:46:40Z"), "{err}");
    assert!(!err.contains(&format!("until {}", now + 600)), "{err}");
    assert!(err.contains("lease until 20"), "{err}");
}

#[test]
fn row_10_an_expired_lease_is_stale_even_when_its_pid_lives_on_this_host() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let out = dir.path().join("out");
    hive_tree(&input, 1, 3);
    let job = spec(dir.path(), &input, &out, 2);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let lock = out.join("_locks/dt=2018-06-01/lock.json");
    let place = |body: serde_json::Value| {
        std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
        std::fs::write(&lock, body.to_string()).unwrap();
    };
    // Pid 1 always exists (as the next pod's pid 2 does); its lease expired two hours ago.
    place(serde_json::json!({
        "pid": 1, "host": host.trim(), "started_at": now - 7300, "run_id": "old",
        "acquired_at": now - 7300, "expires_at": now - 7200,
    }));
    ok(&textcluster(&["run", job.to_str().unwrap()]));
    // While its lease runs, a lock whose pid now belongs to another process (another start
    // time) is gone too.
    let own = std::process::id();
    place(serde_json::json!({
        "pid": own, "host": host.trim(), "started_at": now, "run_id": "reused",
        "acquired_at": now, "expires_at": now + 600,
        "boot_id": boot.trim(), "process_start": 1,
    }));
    ok(&textcluster(&["run", job.to_str().unwrap()]));
    // The same process, still running, is respected.
    let stat = std::fs::read_to_string(format!("/proc/{own}/stat")).unwrap();
    let start: u64 = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    place(serde_json::json!({
        "pid": own, "host": host.trim(), "started_at": now, "run_id": "live",
        "acquired_at": now, "expires_at": now + 600,
        "boot_id": boot.trim(), "process_start": start,
    }));
    let err = fails(&textcluster(&["run", job.to_str().unwrap()]), 2);
    assert!(err.contains("locked by a running job"), "{err}");
}

#[test]
fn row_17_running_out_of_memory_exits_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let out = dir.path().join("out");
    // One document of 64 MB among ordinary ones: reading it needs far more than the limit
    // leaves once the binary is loaded.
    let ids: Vec<String> = (0..4).map(|i| format!("d{i}")).collect();
    let mut texts: Vec<Option<String>> = (0..3).map(|i| Some(doc(i % 3, i))).collect();
    texts.push(Some("word ".repeat(64 << 18)));
    write_docs(&input.join("dt=2018-06-01/part-0.parquet"), &ids, &texts);
    let job = spec(dir.path(), &input, &out, 2);
    let limited = |kib: u64, args: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v {kib} && exec {} {args}",
                binary().display()
            ))
            .current_dir(repo())
            .output()
            .unwrap()
    };
    // The smallest limit (in steps of 16 MB) under which the binary loads at all: below it
    // the kernel refuses to map it and nothing of ours runs.
    let loads = (6..200)
        .map(|i| i * 16 * 1024)
        .find(|&kib| limited(kib, "--version").status.success())
        .expect("the binary loads under 3 GB");
    let output = limited(loads + 48 * 1024, &format!("-q run {}", job.display()));
    let err = fails(&output, 2);
    assert!(err.contains("out of memory"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    // Nothing half-written was committed.
    assert!(!out.join("labels").exists(), "labels were committed");
}

#[test]
fn row_16_a_model_keeps_its_stop_words_and_names_a_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let words = dir.path().join("stop.txt");
    std::fs::write(&words, "the\nand\nof\nto\n").unwrap();
    let job = |stopwords: Option<&Path>, out: &Path| {
        let path = dir.path().join("stop-job.toml");
        let line = stopwords.map_or(String::new(), |p| format!("stopwords = {p:?}\n"));
        std::fs::write(
            &path,
            format!(
                "[input]\npath = {:?}\n[vectorize]\n{line}[cluster]\nk = 5\n[output]\npath = {out:?}\n",
                repo().join("data/sample")
            ),
        )
        .unwrap();
        path
    };
    let registry = dir.path().join("models");
    let fit_job = job(Some(&words), &dir.path().join("unused"));
    ok(&textcluster(&[
        "fit",
        fit_job.to_str().unwrap(),
        "--model",
        registry.to_str().unwrap(),
        "--partition",
        "dt=2018-06-01",
    ]));
    // The file moves away: the model still assigns, with the words it kept.
    std::fs::remove_file(&words).unwrap();
    let out = dir.path().join("out");
    let assign_job = job(None, &out);
    ok(&textcluster(&[
        "assign",
        assign_job.to_str().unwrap(),
        "--model",
        registry.to_str().unwrap(),
        "--partition",
        "dt=2018-06-02",
    ]));
    // A job that names the file, now with other words: the file is named as the cause.
    std::fs::write(&words, "the\nand\n").unwrap();
    let named = job(Some(&words), &dir.path().join("out2"));
    let err = fails(
        &textcluster(&[
            "assign",
            named.to_str().unwrap(),
            "--model",
            registry.to_str().unwrap(),
            "--partition",
            "dt=2018-06-02",
        ]),
        1,
    );
    assert!(err.contains(words.to_str().unwrap()), "{err}");
    assert!(err.contains("vectorize.stopwords"), "{err}");
    assert!(!dir.path().join("out2/labels").exists());
}

#[test]
fn row_19_unsettled_marks_clusters_still_moving_when_the_fit_ends() {
    let dir = tempfile::tempdir().unwrap();
    let unsettled = |out: &Path| -> (bool, usize, usize) {
        let m = manifest(out);
        let c = &m.clusterings[0];
        let n = c.clusters.iter().filter(|r| r.unsettled).count();
        (c.converged, n, c.clusters.len())
    };
    // A fit that converges: few clusters, if any, are still moving at its end.
    let converged = dir.path().join("converged");
    run_sample(&converged, &["--set", "cluster.scope=global"]);
    let (done, n, k) = unsettled(&converged);
    assert!(done);
    assert!(
        4 * n <= k,
        "{n} of {k} clusters unsettled in a converged fit"
    );
    // A fit stopped by max_iter while documents still move: most of them are.
    let stopped = dir.path().join("stopped");
    run_sample(
        &stopped,
        &[
            "--set",
            "cluster.scope=global",
            "--set",
            "cluster.max_iter=4",
        ],
    );
    let (done, n, k) = unsettled(&stopped);
    assert!(!done);
    assert!(
        2 * n > k,
        "only {n} of {k} clusters unsettled in a fit stopped at round 4"
    );
    let m = manifest(&stopped);
    for r in &m.clusterings[0].clusters {
        assert_eq!(
            r.unsettled,
            r.moved_last_3 >= 10 && r.moved_last_3 * 100 > r.size
        );
    }
}

#[test]
fn row_13_report_input_on_a_failing_store_exits_2_naming_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_sample(&out, &["--partition", "dt=2018-06-01"]);
    // A store endpoint where nothing listens: every request fails, after the retries.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let html = dir.path().join("report.html");
    let output = std::process::Command::new(binary())
        .args([
            "report",
            out.to_str().unwrap(),
            "-o",
            html.to_str().unwrap(),
            "--input",
            "s3://lake/corpus",
        ])
        .current_dir(repo())
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "probe")
        .env("AWS_SECRET_ACCESS_KEY", "probe-secret")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let err = fails(&output, 2);
    assert!(err.contains("s3://lake/corpus"), "{err}");
    assert!(!err.contains("input files not found"), "{err}");
    assert!(!err.contains("probe-secret"), "{err}");
    assert!(!html.exists(), "a report without its examples was written");
}

#[test]
fn row_03_a_late_commit_record_of_another_run_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let a = fit_day_one(&dir.path().join("a"), &["--set", "cluster.k=5"]);
    let b = fit_day_one(&dir.path().join("b"), &["--set", "cluster.k=6"]);
    let id = |model: &Path| {
        model
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_start_matches("model_id=")
            .to_owned()
    };
    let out = dir.path().join("out");
    let record = out.join("_commits/dt=2018-06-02/commit.json");
    // Run A commits; its record is what its late PUT would carry.
    ok(&assign_day_two(&a, &out, &[]));
    let late = std::fs::read(&record).unwrap();
    // Run B takes over and commits its tables and record; then A's PUT lands.
    ok(&assign_day_two(&b, &out, &[]));
    std::fs::write(&record, &late).unwrap();
    // A rerun of A with skip_existing must not trust that record over B's tables.
    ok(&assign_day_two(
        &a,
        &out,
        &["--set", "output.mode=skip_existing"],
    ));
    let m = manifest(&out);
    assert_eq!(
        m.partitions[0].status,
        textcluster::output::manifest::PartitionStatus::Succeeded,
        "the partition was skipped on a record that vouches for other tables"
    );
    let labels = read_batches(&out.join("labels/dt=2018-06-02/part-00000.parquet"));
    use arrow::array::AsArray;
    let model_ids = labels[0].column_by_name("model_id").unwrap();
    assert_eq!(model_ids.as_string::<i32>().value(0), id(&a));
    // Once redone, the record matches again and a rerun skips.
    ok(&assign_day_two(
        &a,
        &out,
        &["--set", "output.mode=skip_existing"],
    ));
    assert_eq!(
        manifest(&out).partitions[0].status,
        textcluster::output::manifest::PartitionStatus::Skipped
    );
}

/// `jobs/sample.toml` from `input` to `output` (URLs) through `proxy`, with extra args.
fn sample_through(
    proxy: &FaultProxy,
    moto: &Server,
    input: &str,
    output: &str,
    extra: &[&str],
) -> std::process::Output {
    let (input, output) = (
        format!("input.path={input}"),
        format!("output.path={output}"),
    );
    let mut args = vec!["run", "jobs/sample.toml", "--set", &input, "--set", &output];
    args.extend_from_slice(extra);
    proxy.textcluster(moto, &args)
}

/// The committed tables of the S3 output `url`, downloaded: (relative path, bytes).
fn committed_on_s3(moto: &Server, url: &str) -> Vec<(String, Vec<u8>)> {
    let local = tempfile::tempdir().unwrap();
    moto.download(url, local.path());
    tables(local.path())
}

/// The sample job's tables on local disk, to compare an S3 run with.
fn sample_on_disk(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let out = dir.join("disk");
    run_sample(&out, &[]);
    tables(&out)
}

#[test]
fn row_09_an_upload_corrupted_on_its_way_is_put_again_and_never_committed() {
    let moto = Server::moto();
    let bucket = moto.bucket("flipped-upload", &repo().join("data/sample"));
    let proxy = FaultProxy::start(&moto);
    let dir = tempfile::tempdir().unwrap();
    let want = sample_on_disk(dir.path());
    let input = format!("{bucket}/in");

    // One byte of one staged labels upload is flipped on its way: the stored copy does not
    // match what was sent, so it is put again, and the run ends as it does on local disk.
    proxy.set(serde_json::json!([{"method": "PUT", "match": ["/_staging/", "/labels/dt=2018-06-02"], "action": "flip", "count": 1}]));
    let once = format!("{bucket}/once");
    let run = sample_through(&proxy, &moto, &input, &once, &[]);
    ok(&run);
    assert_eq!(proxy.applied().len(), 1, "the fault was not applied");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("does not match the bytes sent"), "{stderr}");
    assert!(
        committed_on_s3(&moto, &once) == want,
        "the committed tables differ from local disk"
    );

    // Every upload of one partition's labels is corrupted: that partition fails naming the
    // object and is not committed (no record vouches for a damaged file, no _SUCCESS); the
    // others are (exit 3, partial).
    proxy.set(serde_json::json!([{"method": "PUT", "match": ["/_staging/", "/labels/dt=2018-06-03"], "action": "flip", "count": -1}]));
    let always = format!("{bucket}/always");
    let err = fails(&sample_through(&proxy, &moto, &input, &always, &[]), 3);
    assert!(err.contains("labels/dt=2018-06-03"), "{err}");
    assert!(
        err.contains("corrupted between here and the store"),
        "{err}"
    );
    assert_eq!(proxy.applied().len(), 1 + 3, "three puts, then the error");
    let local = tempfile::tempdir().unwrap();
    moto.download(&always, local.path());
    let files = tree(local.path());
    assert!(
        !files.iter().any(|f| f.starts_with("labels/dt=2018-06-03")
            || f.starts_with("_commits/dt=2018-06-03")
            || f == "_SUCCESS"),
        "{files:?}"
    );
    for day in ["2018-06-01", "2018-06-02"] {
        assert!(
            files
                .iter()
                .any(|f| f.starts_with(&format!("_commits/dt={day}/"))),
            "{files:?}"
        );
    }

    // The store heals: a rerun that skips what is committed completes the output byte for byte.
    proxy.set(serde_json::json!([]));
    ok(&sample_through(
        &proxy,
        &moto,
        &input,
        &always,
        &["--set", "output.mode=skip_existing"],
    ));
    assert!(
        committed_on_s3(&moto, &always) == want,
        "the completed tables differ from local disk"
    );
}

#[test]
fn row_09_an_input_read_corrupted_on_its_way_is_caught_by_the_page_checksums() {
    let moto = Server::moto();
    let dir = tempfile::tempdir().unwrap();
    // The input as Spark writes Parquet: with a CRC on every page.
    let crc = dir.path().join("crc");
    moto.util(&[
        "with-page-checksums",
        repo().join("data/sample").to_str().unwrap(),
        crc.to_str().unwrap(),
    ]);
    let bucket = moto.bucket("flipped-read", &crc);
    let proxy = FaultProxy::start(&moto);
    let input = format!("{bucket}/in");

    // A byte flips in the first column-chunk read of one file (the chunks start after the
    // 4-byte magic number): a retryable error naming the file, and nothing committed.
    proxy.set(serde_json::json!([{"method": "GET", "match": "/in/dt=2018-06-01/", "range": "bytes=4-", "action": "flip", "count": 1}]));
    let out = format!("{bucket}/out");
    let err = fails(
        &sample_through(
            &proxy,
            &moto,
            &input,
            &out,
            &["--set", "cluster.scope=global"],
        ),
        2,
    );
    assert_eq!(proxy.applied().len(), 1, "the fault was not applied");
    assert!(err.contains("dt=2018-06-01/"), "{err}");
    assert!(err.contains("CRC checksum mismatch"), "{err}");
    assert!(committed_on_s3(&moto, &out).is_empty());

    // The retry reads it intact, and the tables are those of local disk.
    let global = dir.path().join("global");
    run_sample(&global, &["--set", "cluster.scope=global"]);
    ok(&sample_through(
        &proxy,
        &moto,
        &input,
        &out,
        &["--set", "cluster.scope=global"],
    ));
    assert!(
        committed_on_s3(&moto, &out) == tables(&global),
        "the tables differ from local disk"
    );
}

#[test]
fn row_11_a_short_response_body_is_a_retryable_store_error_never_a_panic() {
    let moto = Server::moto();
    let bucket = moto.bucket("short-bodies", &repo().join("data/sample"));
    let proxy = FaultProxy::start(&moto);
    let input = format!("{bucket}/in");
    let out = format!("{bucket}/out");
    // Footers, then column chunks: every such read of the input comes back half as long as
    // asked, with the Content-Range of the whole range.
    for (what, rule) in [
        (
            "footer",
            serde_json::json!({"method": "GET", "match": "/in/", "ranged": true, "action": "short", "count": -1}),
        ),
        (
            "column chunk",
            serde_json::json!({"method": "GET", "match": "/in/", "range": "bytes=4-", "action": "short", "count": -1}),
        ),
    ] {
        proxy.set(serde_json::json!([rule]));
        let before = proxy.applied().len();
        let run = sample_through(&proxy, &moto, &input, &out, &[]);
        let err = fails(&run, 2);
        assert!(
            proxy.applied().len() > before,
            "{what}: the fault was not applied"
        );
        assert!(!err.contains("panic"), "{what}: {err}");
        assert!(err.contains("/in/dt=2018-06-0"), "{what}: {err}");
        assert!(err.contains("bytes instead of"), "{what}: {err}");
        assert!(
            committed_on_s3(&moto, &out).is_empty(),
            "{what}: something was committed"
        );
    }
    // One short answer is asked again within the run: it completes.
    proxy.set(serde_json::json!([{"method": "GET", "match": "/in/", "range": "bytes=4-", "action": "short", "count": 1}]));
    let before = proxy.applied().len();
    ok(&sample_through(&proxy, &moto, &input, &out, &[]));
    assert_eq!(proxy.applied().len(), before + 1);
}

#[test]
fn row_03_on_s3_a_killed_runs_record_landing_after_another_runs_commit_is_not_trusted() {
    let moto = Server::moto();
    let bucket = moto.bucket("late-record", &repo().join("data/sample"));
    let proxy = FaultProxy::start(&moto);
    let dir = tempfile::tempdir().unwrap();
    let a = fit_day_one(&dir.path().join("a"), &["--set", "cluster.k=5"]);
    let b = fit_day_one(&dir.path().join("b"), &["--set", "cluster.k=6"]);
    let (input, out) = (
        format!("input.path={bucket}/in"),
        format!("output.path={bucket}/out"),
    );
    let assign = |model: &Path, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "assign",
            "jobs/sample.toml",
            "--model",
            model.to_str().unwrap(),
            "--set",
            &input,
            "--set",
            &out,
            "--partition",
            "dt=2018-06-02",
        ]
        .map(String::from)
        .into();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        proxy.textcluster(&moto, &args)
    };
    // Run A's PUT of its commit record is held in flight, and A is killed meanwhile.
    proxy.set(serde_json::json!([{"method": "PUT", "match": "/out/_commits/dt=2018-06-02/commit.json", "action": "delay", "seconds": 20, "count": 1}]));
    let args = assign(&a, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run_a = proxy
        .command(&moto, &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    proxy.wait_for("delay", "commit.json", 120);
    run_a.kill().unwrap();
    run_a.wait().unwrap();
    // Run B takes over the dead run's lock and commits its own tables and record; then A's
    // PUT lands over B's record.
    ok(&run(&assign(&b, &[])));
    assert!(
        !proxy.applied().iter().any(|f| f["action"] == "landed"),
        "A's record landed before B committed: the delay is too short for this machine"
    );
    proxy.wait_for("landed", "commit.json", 60);

    // A rerun of A with skip_existing does not trust that record over B's tables.
    ok(&run(&assign(&a, &["--set", "output.mode=skip_existing"])));
    let local = tempfile::tempdir().unwrap();
    moto.download(&format!("{bucket}/out"), local.path());
    assert_eq!(
        manifest(local.path()).partitions[0].status,
        textcluster::output::manifest::PartitionStatus::Succeeded,
        "the partition was skipped on a record that vouches for other tables"
    );
    let labels = read_batches(&local.path().join("labels/dt=2018-06-02/part-00000.parquet"));
    use arrow::array::AsArray;
    let model_id = labels[0].column_by_name("model_id").unwrap();
    let a_id = a.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        format!("model_id={}", model_id.as_string::<i32>().value(0)),
        a_id
    );
}

#[test]
fn row_13_on_s3_report_input_refused_by_the_store_exits_2_naming_its_error() {
    let moto = Server::moto();
    let bucket = moto.bucket("refused", &repo().join("data/sample"));
    let proxy = FaultProxy::start(&moto);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_sample(&out, &["--partition", "dt=2018-06-01"]);
    let html = dir.path().join("report.html");
    for (status, code) in [(403, "AccessDenied"), (503, "SlowDown")] {
        // Every request for the input is refused (a 503 after the retries too).
        proxy.set(serde_json::json!([{"method": "GET", "match": "in/", "action": "status", "status": status, "count": -1}]));
        let input = format!("{bucket}/in");
        let report = proxy.textcluster(
            &moto,
            &[
                "report",
                out.to_str().unwrap(),
                "-o",
                html.to_str().unwrap(),
                "--input",
                &input,
            ],
        );
        let err = fails(&report, 2);
        assert!(!proxy.applied().is_empty(), "the fault was not applied");
        assert!(err.contains(code), "{status}: {err}");
        assert!(err.contains(&input), "{status}: {err}");
        assert!(!err.contains("input files not found"), "{status}: {err}");
        assert!(
            !html.exists(),
            "{status}: a report without its examples was written"
        );
    }
}

#[test]
fn row_09_a_shared_object_replaced_before_its_read_back_is_not_taken_for_corruption() {
    let moto = Server::moto();
    let bucket = moto.bucket("shared-manifest", &repo().join("data/sample"));
    let proxy = FaultProxy::start(&moto);
    let dir = tempfile::tempdir().unwrap();
    // Another run's manifest, as a concurrent run on another partition writes it.
    let foreign = dir.path().join("manifest.json");
    std::fs::write(&foreign, b"{\"written by\": \"another run\"}").unwrap();
    // Each read-back of this run's manifest is held while the other run's manifest lands.
    proxy.set(serde_json::json!([{"method": "GET", "match": "/out/manifest.json", "ranged": false, "action": "delay", "seconds": 3, "count": 3}]));
    let args = [
        "run",
        "jobs/sample.toml",
        "--set",
        &format!("input.path={bucket}/in"),
        "--set",
        &format!("output.path={bucket}/out"),
        "--partition",
        "dt=2018-06-01",
    ];
    let mut run = proxy
        .command(&moto, &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut replaced = 0;
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        let held = proxy
            .applied()
            .iter()
            .filter(|f| f["action"] == "delay")
            .count();
        if held > replaced {
            moto.util(&[
                "put",
                &format!("{bucket}/out/manifest.json"),
                foreign.to_str().unwrap(),
            ]);
            replaced += 1;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert_eq!(replaced, 1, "the manifest was put again: {stderr}");
    assert!(
        !stderr.contains("does not match the bytes sent"),
        "{stderr}"
    );
}
