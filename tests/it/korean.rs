//! Korean: the word table learned from the corpus and saved with the model, keywords that are
//! nouns without their particles, and tokens brought in a `list<string>` column. On
//! `data/ko_sample` (600 petitions, 3 days).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, ListBuilder, RecordBatch, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};

use crate::util::*;

const DAYS_1_2: [&str; 4] = [
    "--partition",
    "dt=2019-04-01",
    "--partition",
    "dt=2019-05-01",
];

/// Runs `textcluster <verb> jobs/korean.toml` on the sample (k = 6), writing `out`, with the
/// model registry or directory `model` (fit, assign) and `extra` arguments.
fn korean(verb: &str, model: Option<&Path>, out: &Path, extra: &[&str]) -> std::process::Output {
    let out_set = format!("output.path={}", out.display());
    let model = model.map(|m| m.to_str().unwrap().to_owned());
    let mut args = vec![
        verb,
        "jobs/korean.toml",
        "--set",
        "input.path=data/ko_sample",
        "--set",
        "cluster.k=6",
        "--set",
        &out_set,
    ];
    if let Some(m) = &model {
        args.extend(["--model", m.as_str()]);
    }
    args.extend_from_slice(extra);
    textcluster(&args)
}

/// The non-comment lines of one of the built-in Korean lists.
fn list(name: &str) -> Vec<String> {
    std::fs::read_to_string(repo().join("src/text/korean").join(name))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', '[']))
        .map(str::to_owned)
        .collect()
}

/// Every cluster's keywords, by rank, from a keywords table.
fn keywords(path: &Path) -> Vec<Vec<String>> {
    let mut by_cluster: std::collections::BTreeMap<i32, Vec<(i32, String)>> = Default::default();
    for b in read_batches(path) {
        use arrow::array::AsArray;
        use arrow::datatypes::Int32Type;
        let cluster = b
            .column_by_name("cluster")
            .unwrap()
            .as_primitive::<Int32Type>();
        let rank = b
            .column_by_name("rank")
            .unwrap()
            .as_primitive::<Int32Type>();
        let term = b.column_by_name("term").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            by_cluster
                .entry(cluster.value(i))
                .or_default()
                .push((rank.value(i), term.value(i).to_owned()));
        }
    }
    by_cluster
        .into_values()
        .map(|mut v| {
            v.sort();
            v.into_iter().map(|(_, t)| t).collect()
        })
        .collect()
}

/// Fits `jobs/korean.toml` on the sample's `partitions` into `dir/models`; returns the model's
/// id and directory.
fn fit_sample(dir: &Path, partitions: &[&str]) -> (String, std::path::PathBuf) {
    let registry = dir.join("models");
    let fitted = korean("fit", Some(&registry), &dir.join("unused"), partitions);
    let summary: serde_json::Value = serde_json::from_str(ok(&fitted).trim()).unwrap();
    let model_id = summary["model_id"].as_str().unwrap().to_owned();
    let model = registry.join(format!("model_id={model_id}"));
    (model_id, model)
}

#[test]
fn a_korean_fit_then_assign_matches_a_global_run_and_its_keywords_are_nouns() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("models");
    let (model_id, model) = fit_sample(dir.path(), &DAYS_1_2);
    // The word table is part of the model, which a reader of format 1 refuses.
    let header: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
    assert_eq!(header["format_version"], 2);
    assert_eq!(header["vectorize"]["tokenizer"], "korean_ngrams");
    assert!(header["files"]["words.json"].is_string(), "{header}");
    let table: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("words.json")).unwrap()).unwrap();
    assert!(
        table["stems"].as_object().unwrap().len() > 1000,
        "a learned table"
    );

    // Assign every day; then a global run over days 1 and 2 gives the same bytes.
    let assigned = dir.path().join("assigned");
    ok(&korean("assign", Some(&registry), &assigned, &[]));
    let global = dir.path().join("global");
    ok(&korean("run", None, &global, &DAYS_1_2));
    assert_eq!(manifest(&global).model.unwrap().model_id, model_id);
    for day in ["2019-04-01", "2019-05-01"] {
        let file = |root: &Path| root.join(format!("labels/dt={day}/part-00000.parquet"));
        assert_eq!(
            std::fs::read(file(&global)).unwrap(),
            std::fs::read(file(&assigned)).unwrap(),
            "labels of {day} differ"
        );
    }
    let n_labelled: usize = ["2019-04-01", "2019-05-01", "2019-06-01"]
        .iter()
        .map(|day| read_labels(&assigned.join(format!("labels/dt={day}/part-00000.parquet"))).len())
        .sum();
    assert_eq!(n_labelled, 600, "every document labelled once");

    // Keywords are nouns: none is another top-10 keyword of its cluster with a particle or
    // an ending, none is on the stop list.
    let (endings, stop) = (list("endings.txt"), list("stopwords.txt"));
    let clusters = keywords(&model.join("keywords.parquet"));
    assert_eq!(clusters.len(), 6);
    for top in &clusters {
        let top = &top[..top.len().min(10)];
        for w in top {
            assert!(!stop.contains(w), "stop word `{w}` in {top:?}");
            for v in top {
                let attached = w != v
                    && w.strip_prefix(v.as_str())
                        .is_some_and(|rest| endings.iter().any(|e| e == rest));
                assert!(!attached, "`{w}` is `{v}` with a particle, in {top:?}");
            }
        }
    }
}

#[test]
fn a_damaged_word_table_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, model) = fit_sample(dir.path(), &["--partition", "dt=2019-04-01"]);
    let words = model.join("words.json");
    let mut table: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&words).unwrap()).unwrap();
    let out = dir.path().join("out");
    let assign = || korean("assign", Some(&model), &out, &[]);
    // One score changed: the checksum no longer matches.
    let (_, score) = table["stems"]
        .as_object_mut()
        .unwrap()
        .iter_mut()
        .next()
        .unwrap();
    *score = serde_json::json!(score.as_f64().unwrap() * 2.0);
    std::fs::write(&words, serde_json::to_vec(&table).unwrap()).unwrap();
    let e = fails(&assign(), 1);
    assert!(e.contains("corrupt") && e.contains("words.json"), "{e}");
    assert!(!out.exists(), "output written");
    // Gone altogether.
    std::fs::remove_file(&words).unwrap();
    let e = fails(&assign(), 1);
    assert!(e.contains("`words.json` is missing"), "{e}");
    assert!(!out.exists(), "output written");
}

/// A hive tree whose documents are token lists: `per_topic` documents of each topic per day,
/// the second document of day 1 a null list.
fn token_tree(root: &Path, days: usize, per_topic: usize) -> usize {
    let mut total = 0;
    for day in 1..=days {
        let mut ids = Vec::new();
        let mut tokens = ListBuilder::new(StringBuilder::new());
        for topic in 0..3 {
            for i in 0..per_topic {
                ids.push(format!("d{day}-{topic}-{i}"));
                if day == 1 && ids.len() == 2 {
                    tokens.append_null();
                } else {
                    for w in doc(topic, i + day).split(' ') {
                        tokens.values().append_value(w);
                    }
                    tokens.append(true);
                }
            }
        }
        total += ids.len();
        let tokens: ArrayRef = Arc::new(tokens.finish());
        let schema = Schema::new(vec![
            Field::new("doc_id", DataType::Utf8, false),
            Field::new("tokens", tokens.data_type().clone(), true),
        ]);
        let ids: ArrayRef = Arc::new(StringArray::from(ids));
        write_batch(
            &root.join(format!("dt=2018-06-0{day}/part-00000.parquet")),
            &RecordBatch::try_new(Arc::new(schema), vec![ids, tokens]).unwrap(),
        );
    }
    total
}

#[test]
fn tokens_brought_in_a_list_column_are_clustered_and_assign_needs_that_column() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    let total = token_tree(&input, 2, 8);
    let job = spec(dir.path(), &input, &out, 3);
    let tokens = [
        "--set",
        "vectorize.tokenizer=column",
        "--set",
        "input.tokens_column=tokens",
    ];
    let mut args = vec![
        "run",
        job.to_str().unwrap(),
        "--set",
        "cluster.scope=global",
    ];
    args.extend_from_slice(&tokens);
    ok(&textcluster(&args));
    let m = manifest(&out);
    let n_docs: usize = m.partitions.iter().map(|p| p.n_docs).sum();
    let n_empty: usize = m.partitions.iter().map(|p| p.n_empty_docs).sum();
    assert_eq!(
        (n_docs, n_empty),
        (total, 1),
        "a null list is an empty document"
    );
    // The three topics are the three clusters.
    let labels = read_labels(&out.join("labels/dt=2018-06-02/part-00000.parquet"));
    for topic in 0..3 {
        let clusters: std::collections::BTreeSet<i32> = labels
            .iter()
            .filter(|(id, _, _)| id.starts_with(&format!("d2-{topic}-")))
            .map(|&(_, c, _)| c)
            .collect();
        assert_eq!(clusters.len(), 1, "topic {topic}: {clusters:?}");
    }
    // The model reads tokens; a job that reads text is refused by the key, writing nothing.
    let registry = out.join("models");
    let other = dir.path().join("other");
    let other_set = format!("output.path={}", other.display());
    let e = fails(
        &textcluster(&[
            "assign",
            job.to_str().unwrap(),
            "--model",
            registry.to_str().unwrap(),
            "--set",
            &other_set,
        ]),
        1,
    );
    assert!(e.contains("`input.tokens_column`"), "{e}");
    assert!(!other.exists(), "output written");
    let mut args = vec![
        "assign",
        job.to_str().unwrap(),
        "--model",
        registry.to_str().unwrap(),
        "--set",
        &other_set,
    ];
    args.extend_from_slice(&tokens);
    ok(&textcluster(&args));
    assert_eq!(
        std::fs::read(other.join("labels/dt=2018-06-02/part-00000.parquet")).unwrap(),
        std::fs::read(out.join("labels/dt=2018-06-02/part-00000.parquet")).unwrap()
    );
}
