//! `fit` and `assign`: a saved model, stable cluster ids across partitions, drift, and the
//! errors of a bad model.

use std::path::{Path, PathBuf};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int32Type;

use crate::util::*;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

const DAYS_1_2: [&str; 4] = [
    "--partition",
    "dt=2018-06-01",
    "--partition",
    "dt=2018-06-02",
];

fn out_arg(out: &Path) -> String {
    format!("output.path={}", out.display())
}

/// Fits `jobs/sample.toml` on days 1 and 2 into `registry`; returns the printed summary.
fn fit_two_days_summary(registry: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "fit",
        "jobs/sample.toml",
        "--model",
        registry.to_str().unwrap(),
    ];
    args.extend_from_slice(&DAYS_1_2);
    args.extend_from_slice(extra);
    serde_json::from_str(ok(&textcluster(&args)).trim()).unwrap()
}

/// Fits `jobs/sample.toml` on days 1 and 2 into `registry`; returns the printed model id.
fn fit_two_days(registry: &Path, extra: &[&str]) -> String {
    fit_two_days_summary(registry, extra)["model_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn assign(model: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let out = out_arg(out);
    let mut args = vec![
        "assign",
        "jobs/sample.toml",
        "--model",
        model.to_str().unwrap(),
        "--set",
        &out,
    ];
    args.extend_from_slice(extra);
    textcluster(&args)
}

fn labels_file(out: &Path, day: &str) -> PathBuf {
    out.join(format!("labels/dt=2018-06-0{day}/part-00000.parquet"))
}

/// The distinct `model_id` values of a labels or clusters file.
fn model_ids(path: &Path) -> Vec<String> {
    let mut ids: Vec<String> = read_batches(path)
        .iter()
        .flat_map(|b: &RecordBatch| {
            let column = b.column_by_name("model_id").unwrap().as_string::<i32>();
            column
                .iter()
                .flatten()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn fit_on_two_days_then_assign_three_matches_a_global_run_bit_for_bit() {
    let dir = tmp();
    let registry = dir.path().join("models");
    let model_id = fit_two_days(&registry, &[]);
    let model_dir = registry.join(format!("model_id={model_id}"));
    for f in [
        "model.json",
        "vocabulary.parquet",
        "centroids.parquet",
        "keywords.parquet",
        "similarity.parquet",
    ] {
        assert!(model_dir.join(f).is_file(), "{f} missing");
    }
    let current: serde_json::Value =
        serde_json::from_slice(&std::fs::read(registry.join("CURRENT")).unwrap()).unwrap();
    assert_eq!(current["model_id"], model_id.as_str());
    // Without a Korean word table a model keeps format 1, which earlier readers read.
    let header: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model_dir.join("model.json")).unwrap()).unwrap();
    assert_eq!(header["format_version"], 1);
    assert!(!model_dir.join("words.json").exists());

    // Assign all three days with the registry's current model.
    let assigned = dir.path().join("assigned");
    ok(&assign(&registry, &assigned, &[]));
    let m = manifest(&assigned);
    assert_eq!(m.model.as_ref().unwrap().model_id, model_id);
    assert_eq!(m.partitions.len(), 3);
    for p in &m.partitions {
        let drift = p.drift.as_ref().expect("assign reports drift");
        assert!(
            drift.oov_token_rate > 0.0 && drift.oov_token_rate < 0.5,
            "{drift:?}"
        );
        assert!((0.0..=1.0).contains(&drift.js_divergence), "{drift:?}");
        assert!(drift.share_below_fit_p05 < 0.5, "{drift:?}");
        assert_eq!(p.model_id.as_deref(), Some(model_id.as_str()));
    }
    // The unseen day drifts more in vocabulary than the fitted ones.
    let oov = |i: usize| m.partitions[i].drift.as_ref().unwrap().oov_token_rate;
    assert!(
        oov(2) > oov(0) && oov(2) > oov(1),
        "{} {} {}",
        oov(0),
        oov(1),
        oov(2)
    );
    for day in ["1", "2", "3"] {
        assert_eq!(
            model_ids(&labels_file(&assigned, day)),
            std::slice::from_ref(&model_id)
        );
    }
    let clusters = read_batches(&assigned.join("clusters/dt=2018-06-03/part-00000.parquet"));
    let n_docs: i64 = clusters
        .iter()
        .map(|b| {
            b.column_by_name("n_docs")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .iter()
                .sum::<i64>()
        })
        .sum();
    let p3 = &m.partitions[2];
    assert_eq!(n_docs as usize, p3.n_docs - p3.n_empty_docs);

    // `run` in global scope over days 1 and 2 is fit then assign: the same bytes.
    let global = dir.path().join("global");
    let out = out_arg(&global);
    let mut args = vec![
        "run",
        "jobs/sample.toml",
        "--set",
        &out,
        "--set",
        "cluster.scope=global",
    ];
    args.extend_from_slice(&DAYS_1_2);
    ok(&textcluster(&args));
    assert_eq!(manifest(&global).model.unwrap().model_id, model_id);
    for day in ["1", "2"] {
        assert_eq!(
            std::fs::read(labels_file(&global, day)).unwrap(),
            std::fs::read(labels_file(&assigned, day)).unwrap(),
            "labels of day {day} differ"
        );
    }
    assert!(
        global
            .join("models")
            .join(format!("model_id={model_id}/model.json"))
            .is_file()
    );
    assert!(
        !global.join("centroids").exists(),
        "cluster tables live in the model"
    );

    // Rerunning with skip_existing is a no-op...
    let before = std::fs::metadata(labels_file(&assigned, "3"))
        .unwrap()
        .modified()
        .unwrap();
    ok(&assign(
        &registry,
        &assigned,
        &["--set", "output.mode=skip_existing"],
    ));
    let statuses: Vec<_> = manifest(&assigned)
        .partitions
        .iter()
        .map(|p| p.status)
        .collect();
    assert!(
        statuses
            .iter()
            .all(|s| *s == textcluster::output::manifest::PartitionStatus::Skipped),
        "{statuses:?}"
    );
    let after = std::fs::metadata(labels_file(&assigned, "3"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
    // ... and with a new model it redoes every partition.
    let other = fit_two_days(&registry, &["--set", "cluster.k=8"]);
    assert_ne!(other, model_id);
    ok(&assign(
        &registry,
        &assigned,
        &["--set", "output.mode=skip_existing"],
    ));
    let m = manifest(&assigned);
    assert!(
        m.partitions
            .iter()
            .all(|p| p.status == textcluster::output::manifest::PartitionStatus::Succeeded)
    );
    assert_eq!(
        model_ids(&labels_file(&assigned, "1")),
        std::slice::from_ref(&other)
    );
    // The first model is still there: models are never overwritten.
    assert!(model_dir.join("model.json").is_file());
}

#[test]
fn refitting_unchanged_input_reuses_the_model() {
    let dir = tmp();
    let registry = dir.path().join("models");
    let first = fit_two_days(&registry, &[]);
    let summary = fit_two_days_summary(&registry, &[]);
    assert_eq!(summary["model_id"], first.as_str());
    assert_eq!(summary["fitted"], false);

    // A fit killed after its tables, before its header: no model is there to assign with,
    // and the next fit completes the same model.
    let killed_registry = dir.path().join("killed");
    let mut args = vec![
        "fit",
        "jobs/sample.toml",
        "--model",
        killed_registry.to_str().unwrap(),
    ];
    args.extend_from_slice(&DAYS_1_2);
    let killed = std::process::Command::new(env!("CARGO_BIN_EXE_textcluster"))
        .args(&args)
        .current_dir(repo())
        .env("TEXTCLUSTER_FAILPOINT_KILL", "model-tables-written")
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "not killed");
    let model = killed_registry.join(format!("model_id={first}"));
    assert!(model.join("centroids.parquet").exists());
    assert!(!model.join("model.json").exists());
    let e = fails(&assign(&killed_registry, &dir.path().join("out"), &[]), 1);
    assert!(e.contains("no model at"), "{e}");
    assert_eq!(fit_two_days(&killed_registry, &[]), first);
    let bytes = |root: &Path| {
        let mut files: Vec<(String, Vec<u8>)> = tree(root)
            .into_iter()
            .filter(|f| f.ends_with(".parquet"))
            .map(|f| (f.clone(), std::fs::read(root.join(&f)).unwrap()))
            .collect();
        files.sort();
        files
    };
    assert!(
        bytes(&killed_registry) == bytes(&registry),
        "a different model"
    );
}

#[test]
fn daily_global_runs_keep_each_days_labels_joined_to_their_own_model() {
    // Two one-day global runs into one output: the second no longer rewrites what the
    // first day's labels refer to.
    let dir = tmp();
    let out = dir.path().join("out");
    let out_set = out_arg(&out);
    for day in ["dt=2018-06-01", "dt=2018-06-02"] {
        ok(&textcluster(&[
            "run",
            "jobs/sample.toml",
            "--set",
            &out_set,
            "--set",
            "cluster.scope=global",
            "--partition",
            day,
        ]));
    }
    let (a, b) = (
        model_ids(&labels_file(&out, "1")),
        model_ids(&labels_file(&out, "2")),
    );
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_ne!(a, b, "each day has its own model");
    // Each day's labels are exactly what its own model assigns, so they join to its
    // centroids and keywords.
    for (day, id) in [("1", &a[0]), ("2", &b[0])] {
        let model = out.join(format!("models/model_id={id}"));
        let keywords = read_batches(&model.join("keywords.parquet"));
        let clusters_with_keywords: std::collections::BTreeSet<i32> = keywords
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int32Type>().values().to_vec())
            .collect();
        for (_, cluster, _) in read_labels(&labels_file(&out, day)) {
            assert!(cluster < 0 || clusters_with_keywords.contains(&cluster));
        }
        let again = dir.path().join(format!("again-{day}"));
        ok(&assign(
            &model,
            &again,
            &["--partition", &format!("dt=2018-06-0{day}")],
        ));
        assert_eq!(
            std::fs::read(labels_file(&again, day)).unwrap(),
            std::fs::read(labels_file(&out, day)).unwrap()
        );
    }
}

#[test]
fn a_bad_model_is_an_error_that_writes_nothing() {
    let dir = tmp();
    let registry = dir.path().join("models");
    let id = fit_two_days(&registry, &[]);
    let model = registry.join(format!("model_id={id}"));
    let out = dir.path().join("out");
    let nothing_written = |what: &str| assert!(!out.exists(), "{what}: output written");

    let e = fails(&assign(&dir.path().join("nowhere"), &out, &[]), 1);
    assert!(e.contains("no model at") && e.contains("nowhere"), "{e}");
    nothing_written("missing");
    // A model URL with an unsupported scheme names the flag and the schemes there are.
    let e = fails(&assign(Path::new("s4://typo/models"), &out, &[]), 1);
    assert!(e.contains("`--model`") && e.contains("`s3://`"), "{e}");
    nothing_written("unsupported scheme");

    // A job whose tokenizer contradicts the model's names the key.
    let e = fails(
        &assign(&model, &out, &["--set", "vectorize.tokenizer=char_ngrams"]),
        1,
    );
    assert!(e.contains("`vectorize.tokenizer`"), "{e}");
    nothing_written("contradiction");
    // Keys the job does not set come from the model.
    ok(&assign(
        &model,
        &dir.path().join("inherits"),
        &["--set", "vectorize.min_df=2"],
    ));

    // A model written by an incompatible version.
    let copy = dir.path().join("old");
    copy_dir(&model, &copy);
    let header = copy.join("model.json");
    let text = std::fs::read_to_string(&header).unwrap();
    std::fs::write(
        &header,
        text.replace("\"format_version\": 1", "\"format_version\": 99"),
    )
    .unwrap();
    let e = fails(&assign(&copy, &out, &[]), 1);
    assert!(e.contains("format version 99"), "{e}");
    nothing_written("incompatible");

    // A corrupt table, and a header that is not JSON.
    let copy = dir.path().join("corrupt");
    copy_dir(&model, &copy);
    let centroids = copy.join("centroids.parquet");
    let bytes = std::fs::read(&centroids).unwrap();
    std::fs::write(&centroids, &bytes[..bytes.len() / 2]).unwrap();
    let e = fails(&assign(&copy, &out, &[]), 1);
    assert!(
        e.contains("corrupt") && e.contains("centroids.parquet"),
        "{e}"
    );
    std::fs::write(copy.join("model.json"), "{ not json").unwrap();
    let e = fails(&assign(&copy, &out, &[]), 1);
    assert!(e.contains("model.json"), "{e}");
    nothing_written("corrupt");

    // An id that occurs twice, in two files of one partition: the error names the id and
    // the file of its second occurrence (found by a second read of the id column).
    let input = dir.path().join("dup");
    let ids: Vec<String> = ["a", "b", "c", "d", "b", "e"].map(String::from).to_vec();
    let texts: Vec<Option<String>> = (0..6).map(|i| Some(doc(i % 3, i))).collect();
    write_docs(&input.join("dt=1/part-0.parquet"), &ids[..3], &texts[..3]);
    write_docs(&input.join("dt=1/part-1.parquet"), &ids[3..], &texts[3..]);
    let input_arg = format!("input.path={}", input.display());
    let e = fails(&assign(&model, &out, &["--set", &input_arg]), 1);
    assert!(
        e.contains("part-1.parquet") && e.contains("`b`") && e.contains("allow_duplicate_ids"),
        "{e}"
    );
    nothing_written("duplicate id");
    ok(&assign(
        &model,
        &out,
        &[
            "--set",
            &input_arg,
            "--set",
            "input.allow_duplicate_ids=true",
        ],
    ));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_fit_sample_is_drawn_by_id_and_seed() {
    let dir = tmp();
    let registry = dir.path().join("models");
    // One registry per thread count: in one registry the second fit would reuse the first's
    // model instead of fitting.
    let half = |threads: &str| {
        let registry = dir.path().join(format!("models-{threads}"));
        let line = ok(&textcluster(&[
            "fit",
            "jobs/sample.toml",
            "--model",
            registry.to_str().unwrap(),
            "--set",
            "fit.sample=0.5",
            "--threads",
            threads,
        ]));
        serde_json::from_str::<serde_json::Value>(line.trim()).unwrap()
    };
    let (one, two) = (half("1"), half("2"));
    assert_eq!(one["model_id"], two["model_id"]);
    let n = one["n_docs"].as_u64().unwrap();
    assert!((850..1150).contains(&n), "{n} of 2000 documents sampled");
    let count = ok(&textcluster(&[
        "fit",
        "jobs/sample.toml",
        "--model",
        registry.to_str().unwrap(),
        "--set",
        "fit.sample=400",
    ]));
    let count: serde_json::Value = serde_json::from_str(count.trim()).unwrap();
    let n = count["n_docs"].as_u64().unwrap();
    assert!((330..470).contains(&n), "{n} documents for a sample of 400");
    let e = fails(
        &textcluster(&[
            "fit",
            "jobs/sample.toml",
            "--model",
            "x",
            "--set",
            "fit.sample=1.5",
        ]),
        1,
    );
    assert!(e.contains("fit.sample"), "{e}");
}

/// The day's input, one batch, with its `doc_id` and `text` columns cast to `to`.
fn day_batch(day: &str, to: &arrow::datatypes::DataType) -> RecordBatch {
    let batches =
        read_batches(&repo().join(format!("data/sample/dt=2018-06-0{day}/part-00000.parquet")));
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let cast = |name: &str| arrow::compute::cast(batch.column_by_name(name).unwrap(), to).unwrap();
    RecordBatch::try_from_iter([("doc_id", cast("doc_id")), ("text", cast("text"))]).unwrap()
}

#[test]
fn a_batch_assigned_in_memory_gives_the_labels_assign_writes() {
    use arrow::datatypes::DataType;
    use textcluster::job::assign::Assigner;
    let dir = tmp();
    let registry = dir.path().join("models");
    let summary = fit_two_days_summary(&registry, &[]);
    let out = dir.path().join("out");
    ok(&assign(&registry, &out, &["--partition", "dt=2018-06-03"]));
    let written = read_batches(&labels_file(&out, "3"));
    let written = arrow::compute::concat_batches(&written[0].schema(), &written).unwrap();

    let model =
        textcluster::model::Model::load(Path::new(summary["path"].as_str().unwrap())).unwrap();
    let assigner = Assigner::new(&model).unwrap();
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    for encoding in [
        DataType::Utf8,
        DataType::LargeUtf8,
        DataType::Utf8View,
        dictionary,
    ] {
        let labels = assigner
            .labels(&day_batch("3", &encoding), "doc_id", "text")
            .unwrap();
        assert_eq!(labels.schema(), written.schema(), "{encoding}");
        assert!(
            labels == written,
            "{encoding}: the labels differ from what assign wrote"
        );
    }

    // Bad batches name the column.
    let batch = day_batch("3", &DataType::Utf8);
    let err = assigner
        .labels(&batch, "doc_id", "body")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no column `body`") && err.contains("`text`"),
        "{err}"
    );
    let numbers = RecordBatch::try_from_iter([
        ("doc_id", batch.column(0).clone()),
        (
            "text",
            std::sync::Arc::new(arrow::array::Int64Array::from(vec![1; batch.num_rows()])) as _,
        ),
    ])
    .unwrap();
    let err = assigner.labels(&numbers, "doc_id", "text").unwrap_err();
    assert!(err.is_user_error());
    assert!(
        err.to_string()
            .contains("column `text` of the batch is Int64"),
        "{err}"
    );
    let null_ids = RecordBatch::try_from_iter([
        (
            "doc_id",
            std::sync::Arc::new(arrow::array::StringArray::from(vec![None, Some("a")])) as _,
        ),
        (
            "text",
            std::sync::Arc::new(arrow::array::StringArray::from(vec!["x", "y"])) as _,
        ),
    ])
    .unwrap();
    let err = assigner
        .labels(&null_ids, "doc_id", "text")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`doc_id`") && err.contains("1 null"), "{err}");
}
