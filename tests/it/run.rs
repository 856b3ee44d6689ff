//! Happy paths: layouts, scopes, filters, and what the outputs contain.

use std::collections::BTreeSet;

use textcluster::output::manifest::RunStatus;

use crate::util::*;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn partition_scope_writes_every_table_for_every_partition() {
    let dir = tmp();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    let n = hive_tree(&input, 3, 10);
    let job = spec(dir.path(), &input, &out, 3);
    ok(&textcluster(&[
        "run",
        job.to_str().unwrap(),
        "--threads",
        "2",
    ]));

    let mut expected = vec!["_SUCCESS".to_owned(), "manifest.json".to_owned()];
    for table in [
        "_commits",
        "centroids",
        "clusters",
        "keywords",
        "labels",
        "similarity",
    ] {
        for p in 1..=3 {
            let file = if table == "_commits" {
                "commit.json"
            } else {
                "part-00000.parquet"
            };
            expected.push(format!("{table}/dt=2018-06-0{p}/{file}"));
        }
    }
    expected.sort();
    let (runs, rest): (Vec<String>, Vec<String>) = tree(&out)
        .into_iter()
        .partition(|f| f.starts_with("_runs/"));
    assert_eq!(rest, expected);
    assert_eq!(runs.len(), 1, "{runs:?}");

    // Every document exactly once, in a valid cluster, and each topic in one cluster.
    let mut seen = BTreeSet::new();
    for p in 1..=3 {
        let labels = read_labels(&out.join(format!("labels/dt=2018-06-0{p}/part-00000.parquet")));
        for topic in 0..3 {
            let clusters = clusters_of_topic(&labels, topic);
            assert_eq!(
                clusters.len(),
                1,
                "partition {p} topic {topic}: {clusters:?}"
            );
        }
        for (id, cluster, sim) in labels {
            assert!((0..3).contains(&cluster));
            assert!(sim > 0.0 && sim <= 1.0 + 1e-6);
            assert!(seen.insert(id), "a document is labelled twice");
        }
    }
    assert_eq!(seen.len(), n);

    let manifest = manifest(&out);
    assert_eq!(manifest.status, RunStatus::Succeeded);
    assert_eq!(manifest.exit_code, 0);
    assert_eq!(manifest.partitions.len(), 3);
    assert_eq!(manifest.clusterings[0].n_clusters, 3);
    assert_eq!(manifest.spec.cluster.max_iter, 50);
    assert!(manifest.finished_at >= manifest.started_at);
    // Convergence figures: rounds within the cap, one objective per round, and a cluster is
    // unsettled exactly when more than 1% of its size moved after round 10.
    for c in &manifest.clusterings {
        assert!(
            c.n_iter >= 1 && c.n_iter <= 50,
            "{}: {} rounds",
            c.key,
            c.n_iter
        );
        assert_eq!(c.objective.len(), c.n_iter);
        assert!(c.converged || c.n_iter == 50);
        for r in &c.clusters {
            let churn = (r.joined_after_10 + r.left_after_10) as f64;
            assert_eq!(r.unsettled, churn > 0.01 * r.size.max(1) as f64, "{r:?}");
            if c.n_iter <= 10 {
                assert_eq!(churn, 0.0);
            }
        }
        for share in [c.skipped_share.rounds_1_5, c.skipped_share.rounds_6_on] {
            assert!((0.0..=1.0).contains(&share));
        }
    }
    // Every committed table file is listed, with its row count.
    assert_eq!(manifest.files.len(), 5 * 3);
    for f in &manifest.files {
        let rows: usize = read_batches(&out.join(&f.path))
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(rows as u64, f.n_rows, "{}", f.path);
    }
    // The run's own manifest is kept beside the latest.
    let kept = out.join("_runs").join(format!("{}.json", manifest.run_id));
    assert_eq!(
        std::fs::read(kept).unwrap(),
        std::fs::read(out.join("manifest.json")).unwrap()
    );
}

#[test]
fn global_scope_writes_labels_per_partition_and_the_model_under_models() {
    let dir = tmp();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    hive_tree(&input, 2, 8);
    let job = spec(dir.path(), &input, &out, 3);
    ok(&textcluster(&[
        "run",
        job.to_str().unwrap(),
        "--set",
        "cluster.scope=global",
    ]));
    let model = manifest(&out)
        .model
        .expect("global scope assigns with a model");
    assert!(model.fitted);
    let files = tree(&out);
    let model_dir = format!("models/model_id={}", model.model_id);
    for f in [
        "labels/dt=2018-06-01/part-00000.parquet",
        "labels/dt=2018-06-02/part-00000.parquet",
        "clusters/dt=2018-06-01/part-00000.parquet",
        "clusters/dt=2018-06-02/part-00000.parquet",
        "models/CURRENT",
        &format!("{model_dir}/model.json"),
        &format!("{model_dir}/vocabulary.parquet"),
        &format!("{model_dir}/centroids.parquet"),
        &format!("{model_dir}/keywords.parquet"),
        &format!("{model_dir}/similarity.parquet"),
    ] {
        assert!(files.contains(&f.to_owned()), "{f} missing from {files:?}");
    }
    // No `dt=__all__` partition: it breaks date-typed `dt` columns in readers.
    assert!(!files.iter().any(|f| f.contains("__all__")), "{files:?}");
    assert!(!files.iter().any(|f| f.starts_with("centroids/")));
    // One clustering: the same topic gets the same cluster id in both partitions.
    let a = read_labels(&out.join("labels/dt=2018-06-01/part-00000.parquet"));
    let b = read_labels(&out.join("labels/dt=2018-06-02/part-00000.parquet"));
    let cluster_of =
        |rows: &[(String, i32, f32)], t: &str| rows.iter().find(|r| r.0.contains(t)).unwrap().1;
    for t in ["-t0-", "-t1-", "-t2-"] {
        assert_eq!(cluster_of(&a, t), cluster_of(&b, t));
    }
    // The similarity table holds each pair once.
    let sim = read_batches(&out.join(format!("{model_dir}/similarity.parquet")));
    assert_eq!(sim.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
}

#[test]
fn plain_directory_single_file_and_nested_keys_are_accepted() {
    let dir = tmp();
    let plain = dir.path().join("plain");
    let ids: Vec<String> = (0..12).map(|i| format!("d{i}")).collect();
    let texts: Vec<Option<String>> = (0..12).map(|i| Some(doc(i % 3, i))).collect();
    write_docs(&plain.join("a.parquet"), &ids[..6], &texts[..6]);
    write_docs(&plain.join("b.parquet"), &ids[6..], &texts[6..]);
    let out = dir.path().join("out-plain");
    ok(&textcluster(&[
        "run",
        spec(dir.path(), &plain, &out, 3).to_str().unwrap(),
    ]));
    assert_eq!(
        read_labels(&out.join("labels/part-00000.parquet")).len(),
        12
    );

    let out = dir.path().join("out-file");
    let file = plain.join("a.parquet");
    ok(&textcluster(&[
        "run",
        spec(dir.path(), &file, &out, 2).to_str().unwrap(),
    ]));
    assert_eq!(read_labels(&out.join("labels/part-00000.parquet")).len(), 6);

    let nested = dir.path().join("nested");
    write_docs(
        &nested.join("year=2018/month=06/p.parquet"),
        &ids[..6],
        &texts[..6],
    );
    write_docs(
        &nested.join("year=2018/month=07/p.parquet"),
        &ids[6..],
        &texts[6..],
    );
    let out = dir.path().join("out-nested");
    ok(&textcluster(&[
        "run",
        spec(dir.path(), &nested, &out, 2).to_str().unwrap(),
    ]));
    assert_eq!(
        read_labels(&out.join("labels/year=2018/month=06/part-00000.parquet")).len(),
        6
    );
    assert_eq!(
        read_labels(&out.join("labels/year=2018/month=07/part-00000.parquet")).len(),
        6
    );
}

#[test]
fn partition_filter_restricts_the_run() {
    let dir = tmp();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    hive_tree(&input, 3, 5);
    let job = spec(dir.path(), &input, &out, 3);
    ok(&textcluster(&[
        "run",
        job.to_str().unwrap(),
        "--partition",
        "dt=2018-06-02",
        "--partition",
        "dt=2018-06-03",
    ]));
    let labels: Vec<String> = tree(&out)
        .into_iter()
        .filter(|f| f.starts_with("labels/"))
        .collect();
    assert_eq!(
        labels,
        [
            "labels/dt=2018-06-02/part-00000.parquet",
            "labels/dt=2018-06-03/part-00000.parquet"
        ]
    );
}

#[test]
fn null_texts_are_skipped_and_empty_documents_labelled_minus_one() {
    let dir = tmp();
    let input = dir.path().join("in");
    let ids: Vec<String> = (0..9).map(|i| format!("d{i}")).collect();
    let mut texts: Vec<Option<String>> = (0..9).map(|i| Some(doc(i % 3, i))).collect();
    texts[1] = None;
    texts[4] = None;
    texts[7] = Some("the and of it".into()); // only stop words
    write_docs(&input.join("dt=x/part.parquet"), &ids, &texts);
    let out = dir.path().join("out");
    ok(&textcluster(&[
        "run",
        spec(dir.path(), &input, &out, 2).to_str().unwrap(),
    ]));
    let labels = read_labels(&out.join("labels/dt=x/part-00000.parquet"));
    assert_eq!(labels.len(), 7, "null texts are not labelled");
    assert!(!labels.iter().any(|r| r.0 == "d1" || r.0 == "d4"));
    assert_eq!(labels.iter().find(|r| r.0 == "d7").unwrap().1, -1);
    let manifest = manifest(&out);
    assert_eq!(manifest.partitions[0].n_null_texts, 2);
    assert_eq!(manifest.partitions[0].n_empty_docs, 1);
    // A sampled fit reads batch by batch and leaves them out too: of a sample that holds
    // every id, the 7 documents with a text.
    let fitted = ok(&textcluster(&[
        "fit",
        spec(dir.path(), &input, &out, 2).to_str().unwrap(),
        "--model",
        dir.path().join("models").to_str().unwrap(),
        "--set",
        "fit.sample=0.999999",
    ]));
    let fitted: serde_json::Value = serde_json::from_str(fitted.trim()).unwrap();
    assert_eq!(fitted["sample_fraction"], 0.999999);
    assert_eq!(fitted["n_docs"], 7);
}

#[test]
fn k_above_the_number_of_documents_is_capped_and_reported() {
    let dir = tmp();
    let input = dir.path().join("in");
    let ids: Vec<String> = (0..4).map(|i| format!("d{i}")).collect();
    let texts: Vec<Option<String>> = (0..4).map(|i| Some(doc(i % 3, i))).collect();
    write_docs(&input.join("dt=x/part.parquet"), &ids, &texts);
    let out = dir.path().join("out");
    let run = textcluster(&["run", spec(dir.path(), &input, &out, 10).to_str().unwrap()]);
    ok(&run);
    assert!(String::from_utf8_lossy(&run.stderr).contains("k capped"));
    let manifest = manifest(&out);
    assert_eq!(manifest.clusterings[0].k_requested, 10);
    assert_eq!(manifest.clusterings[0].n_clusters, 4);
}

#[test]
fn plan_prints_the_resolved_plan_without_writing() {
    let dir = tmp();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    hive_tree(&input, 2, 2);
    let job = spec(dir.path(), &input, &out, 3);
    let stdout = ok(&textcluster(&[
        "plan",
        job.to_str().unwrap(),
        "--set",
        "cluster.seed=7",
    ]));
    assert!(!out.exists(), "plan must not write");
    let root = dir.path().display().to_string();
    insta::with_settings!({filters => vec![
        (root.as_str(), "[TMP]"),
        (r#""mtime_ns": \d+"#, r#""mtime_ns": "[MTIME]""#),
    ]}, {
        insta::assert_snapshot!(stdout);
    });
}

#[test]
fn sample_corpus_clusters_above_a_quality_floor() {
    // The real sample in data/ (2,000 posts, 20 groups). Guards against quality regressions.
    let dir = tmp();
    let out = dir.path().join("out");
    run_sample(&out, &["--set", "cluster.scope=global"]);
    let eval = ok(&textcluster(&[
        "eval",
        out.to_str().unwrap(),
        "--gold",
        "data/sample",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&eval).unwrap();
    let nmi = v["summary"]["nmi"].as_f64().unwrap();
    assert!(nmi >= NMI_FLOOR_SAMPLE_GLOBAL, "NMI {nmi} below the floor");
    assert_eq!(v["summary"]["n_docs"], 2000);

    // What users read: each cluster's majority group and top 10 keywords, and the label
    // metrics. A change of the keyword formula or the tokeniser shows here.
    let labels = &v["labels"];
    let mut table = format!(
        "mean NPMI {:.3}, median coverage {:.3}, median precision {:.3}, {} of {} name their group\n",
        labels["mean_npmi"].as_f64().unwrap(),
        labels["median_coverage"].as_f64().unwrap(),
        labels["median_precision"].as_f64().unwrap(),
        labels["n_naming_group"],
        labels["n_clusters"],
    );
    for c in labels["clusters"].as_array().unwrap() {
        let words: Vec<&str> = c["keywords"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        table.push_str(&format!(
            "{:>2} {:<26} {}\n",
            c["cluster"],
            format!(
                "{}{}",
                c["majority"].as_str().unwrap_or("-"),
                if c["names_group"] == true { " *" } else { "" }
            ),
            words.join(" ")
        ));
    }
    insta::assert_snapshot!(table);
    assert!(labels["mean_npmi"].as_f64().unwrap() >= NPMI_FLOOR_SAMPLE_GLOBAL);
}

/// Conservative floor for the keywords of `jobs/sample.toml` in global scope.
const NPMI_FLOOR_SAMPLE_GLOBAL: f64 = 0.15;

/// Conservative floor for `jobs/sample.toml` in global scope (measured value in the README).
const NMI_FLOOR_SAMPLE_GLOBAL: f64 = 0.30;

#[test]
fn a_partition_where_no_document_has_terms_is_labelled_minus_one() {
    // One document per partition with min_df = 2 leaves an empty vocabulary.
    let dir = tmp();
    let input = dir.path().join("in");
    for p in 0..2 {
        write_docs(
            &input.join(format!("dt={p}/part.parquet")),
            &[format!("d{p}")],
            &[Some(doc(p, p))],
        );
    }
    let out = dir.path().join("out");
    let job = spec(dir.path(), &input, &out, 3);
    ok(&textcluster(&[
        "run",
        job.to_str().unwrap(),
        "--set",
        "vectorize.min_df=2",
    ]));
    assert_eq!(
        read_labels(&out.join("labels/dt=0/part-00000.parquet")),
        vec![("d0".into(), -1, 0.0)]
    );
    assert_eq!(manifest(&out).clusterings[1].n_clusters, 0);
}

#[test]
fn over_clustering_then_merging_recovers_the_topics_and_reports_the_mapping() {
    let dir = tmp();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    hive_tree(&input, 1, 20);
    let job = spec(dir.path(), &input, &out, 9);
    ok(&textcluster(&[
        "run",
        job.to_str().unwrap(),
        "--set",
        "cluster.merge_threshold=0.3",
    ]));
    let manifest = manifest(&out);
    let merge = manifest.clusterings[0].merge.clone().unwrap();
    assert_eq!(merge.n_before, 9);
    assert_eq!(merge.n_after, 3, "{merge:?}");
    let mapping = merge.mapping;
    assert_eq!(mapping.len(), 9);
    assert_eq!(
        mapping.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([0, 1, 2])
    );
    // Each topic ends in one cluster, and ids are numbered by descending size.
    let labels = read_labels(&out.join("labels/dt=2018-06-01/part-00000.parquet"));
    let mut sizes = [0usize; 3];
    for topic in 0..3 {
        let clusters = clusters_of_topic(&labels, topic);
        assert_eq!(clusters.len(), 1, "topic {topic}: {clusters:?}");
    }
    for (_, cluster, _) in &labels {
        sizes[*cluster as usize] += 1;
    }
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
}

#[test]
fn an_ngram_clustering_is_labelled_with_whole_words_unless_asked_otherwise() {
    let dir = tmp();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    hive_tree(&input, 1, 10);
    let job = spec(dir.path(), &input, &out, 3);
    let keywords = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "run",
            job.to_str().unwrap(),
            "--set",
            "vectorize.tokenizer=char_ngrams",
            "--set",
            "keywords.min_df=1",
        ];
        args.extend_from_slice(extra);
        ok(&textcluster(&args));
        read_batches(&out.join("keywords/dt=2018-06-01/part-00000.parquet"))
            .iter()
            .flat_map(|b| {
                let terms = b
                    .column(2)
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .unwrap();
                terms
                    .iter()
                    .flatten()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let words = keywords(&[]);
    let vocabulary: BTreeSet<&str> = TOPICS.iter().flat_map(|t| t.iter().copied()).collect();
    assert!(!words.is_empty());
    assert!(
        words.iter().all(|w| vocabulary.contains(w.as_str())),
        "{words:?}"
    );
    let grams = keywords(&["--set", "keywords.words=false"]);
    assert!(grams.iter().all(|g| g.chars().count() <= 3), "{grams:?}");
}

#[test]
fn unsettled_clusters_are_listed_by_eval_and_marked_in_the_report() {
    // The sample in global scope, stopped by `max_iter` while clusters still move.
    let dir = tmp();
    let out = dir.path().join("out");
    run_sample(
        &out,
        &[
            "--set",
            "cluster.scope=global",
            "--set",
            "cluster.max_iter=5",
        ],
    );
    let m = manifest(&out);
    let c = &m.clusterings[0];
    assert!(!c.converged, "{} rounds", c.n_iter);
    let unsettled: Vec<i32> = c
        .clusters
        .iter()
        .filter(|r| r.unsettled)
        .map(|r| r.cluster)
        .collect();
    assert!(!unsettled.is_empty());
    for r in &c.clusters {
        let moved = r.moved_last_3;
        let expected = moved >= 10 && moved as f64 > 0.01 * r.size as f64;
        assert_eq!(r.unsettled, expected, "{r:?}");
    }

    let out_arg = out.to_str().unwrap();
    let text = ok(&textcluster(&["eval", out_arg, "--gold", "data/sample"]));
    let line = text
        .lines()
        .find(|l| l.starts_with("fit model_id="))
        .unwrap_or_else(|| panic!("no fit line in\n{text}"));
    assert!(
        line.contains(&format!("{} rounds, stopped by max_iter", c.n_iter)),
        "{line}"
    );
    let listed: Vec<i32> = line
        .split_once("in the last 3 rounds): ")
        .unwrap()
        .1
        .split(", ")
        .map(|item| item.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(listed, unsettled);
    let json = ok(&textcluster(&[
        "eval",
        out_arg,
        "--gold",
        "data/sample",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["fits"][0]["unsettled"].as_array().unwrap().len(),
        unsettled.len()
    );

    let html = dir.path().join("report.html");
    ok(&textcluster(&[
        "report",
        out_arg,
        "-o",
        html.to_str().unwrap(),
        "--examples",
        "0",
    ]));
    let page = std::fs::read_to_string(&html).unwrap();
    // The report's data marks exactly those clusters (its script names them in the summary).
    assert_eq!(page.matches("\"unsettled\":true").count(), unsettled.len());
}

#[test]
fn eval_sums_up_the_convergence_of_many_clusterings_in_one_line() {
    let dir = tmp();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    hive_tree(&input, 21, 4);
    let job = spec(dir.path(), &input, &out, 3);
    ok(&textcluster(&["run", job.to_str().unwrap()]));
    // The generated input has no label column: its ids serve as gold labels (the label
    // column may be the id column).
    let text = ok(&textcluster(&[
        "eval",
        out.to_str().unwrap(),
        "--gold",
        input.to_str().unwrap(),
        "--label-column",
        "doc_id",
    ]));
    let m = manifest(&out);
    let (min, max) = (
        m.clusterings.iter().map(|c| c.n_iter).min().unwrap(),
        m.clusterings.iter().map(|c| c.n_iter).max().unwrap(),
    );
    let expected = format!("fits: 21 clusterings, {min}-{max} rounds, 0 stopped by max_iter; ");
    assert!(text.lines().any(|l| l.starts_with(&expected)), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("fit dt=")), "{text}");
}

#[test]
fn spark_and_hive_output_reads_as_spark_reads_it() {
    // What a Spark job leaves: `_SUCCESS`, `.crc` checksums, several part files per
    // partition, and Hive's name for a null partition value.
    let dir = tmp();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    hive_tree(&input, 3, 6);
    std::fs::rename(
        input.join("dt=2018-06-03"),
        input.join("dt=__HIVE_DEFAULT_PARTITION__"),
    )
    .unwrap();
    std::fs::write(input.join("_SUCCESS"), "").unwrap();
    std::fs::write(input.join("dt=2018-06-01/_SUCCESS"), "").unwrap();
    std::fs::write(input.join("dt=2018-06-01/.part-00000.parquet.crc"), "crc!").unwrap();
    let ids = ["extra-0".to_owned(), "extra-1".to_owned()];
    write_docs(
        &input.join("dt=2018-06-02/part-00001-c000.snappy.parquet"),
        &ids,
        &[Some(doc(0, 1)), Some(doc(1, 2))],
    );
    let job = spec(dir.path(), &input, &out, 3);
    ok(&textcluster(&["run", job.to_str().unwrap()]));
    let m = manifest(&out);
    let keys: Vec<&str> = m.partitions.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "dt=2018-06-01",
            "dt=2018-06-02",
            "dt=__HIVE_DEFAULT_PARTITION__"
        ]
    );
    // Only the Parquet part files were read: 18 documents each, 20 with the second file.
    let files: Vec<usize> = m.partitions.iter().map(|p| p.files.len()).collect();
    assert_eq!(files, [1, 2, 1]);
    let docs: Vec<usize> = m.partitions.iter().map(|p| p.n_docs).collect();
    assert_eq!(docs, [18, 20, 18]);
    // The null partition is written back under the same name, which Spark and pyarrow read
    // as null again.
    let labels = read_labels(&out.join("labels/dt=__HIVE_DEFAULT_PARTITION__/part-00000.parquet"));
    assert_eq!(labels.len(), 18);
}

#[test]
fn input_path_may_be_a_glob_or_a_list_that_selects_a_date_range() {
    let dir = tempfile::tempdir().unwrap();
    let filtered = dir.path().join("filtered");
    run_sample(
        &filtered,
        &[
            "--partition",
            "dt=2018-06-01",
            "--partition",
            "dt=2018-06-02",
        ],
    );
    let want = |table: &str, p: &str| {
        std::fs::read(filtered.join(table).join(p).join("part-00000.parquet")).unwrap()
    };
    let list = r#"input.path=["data/sample/dt=2018-06-01", "data/sample/dt=2018-06-02"]"#;
    for (name, set) in [
        ("glob", "input.path=data/sample/dt=2018-06-0[12]"),
        ("list", list),
    ] {
        let out = dir.path().join(name);
        run_sample(&out, &["--set", set]);
        let m = manifest(&out);
        let keys: Vec<&str> = m.partitions.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["dt=2018-06-01", "dt=2018-06-02"], "{name}");
        assert_eq!(m.input.root, "data/sample", "{name}");
        for p in ["dt=2018-06-01", "dt=2018-06-02"] {
            let got = std::fs::read(out.join("labels").join(p).join("part-00000.parquet")).unwrap();
            assert!(
                got == want("labels", p),
                "{name}: {p} differs from --partition"
            );
        }
        assert!(!out.join("labels/dt=2018-06-03").exists(), "{name}");
    }
    let err = fails(
        &textcluster(&[
            "run",
            "jobs/sample.toml",
            "--set",
            "input.path=data/sample/dt=[",
            "--set",
            "output.path=/tmp/unused-x",
        ]),
        1,
    );
    assert!(err.contains("not a valid glob"), "{err}");
}
