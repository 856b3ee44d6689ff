//! `cluster.k = "auto"`: over-cluster, merge by average linkage at a threshold taken from the
//! fit's centroids, refine; the manifest gives the k found, the merge map and the merge tree.

use std::collections::BTreeSet;
use std::path::Path;

use crate::util::*;

const AUTO: [&str; 2] = ["--set", "cluster.k=auto"];

#[test]
fn auto_finds_the_three_topics_and_the_manifest_holds_the_merge_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    hive_tree(&input, 1, 20);
    let job = spec(dir.path(), &input, &out, 1);
    let mut args = vec!["run", job.to_str().unwrap(), "--set", "cluster.k_max=9"];
    args.extend_from_slice(&AUTO);
    ok(&textcluster(&args));
    let clustering = manifest(&out).clusterings[0].clone();
    let merge = clustering.merge.clone().unwrap();
    assert!(merge.auto);
    assert_eq!((merge.n_before, merge.n_after), (9, 3), "{merge:?}");
    assert_eq!(clustering.n_clusters, 3);
    assert_eq!(
        clustering.k_requested, 9,
        "the clusters fitted before the merge"
    );
    assert_eq!(
        merge.mapping.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([0, 1, 2])
    );
    // Six joins turn nine clusters into three; each join is above the threshold, and a
    // group is named by its lowest cluster id.
    assert_eq!(merge.joins.len(), 6, "{merge:?}");
    for join in &merge.joins {
        assert!(join.a < join.b && join.b < 9, "{join:?}");
        assert!(join.similarity >= merge.threshold, "{join:?}");
        assert_eq!(merge.mapping[join.a], merge.mapping[join.b], "{join:?}");
    }
    let labels = read_labels(&out.join("labels/dt=2018-06-01/part-00000.parquet"));
    for topic in 0..3 {
        let clusters = clusters_of_topic(&labels, topic);
        assert_eq!(clusters.len(), 1, "topic {topic}: {clusters:?}");
    }
    // `eval` names the k found and the merge map.
    let printed = ok(&textcluster(&[
        "eval",
        out.to_str().unwrap(),
        "--gold",
        input.to_str().unwrap(),
        "--label-column",
        "text",
    ]));
    assert!(
        printed.contains("k = \"auto\": 3 clusters found from 9 (threshold"),
        "{printed}"
    );
}

#[test]
fn auto_on_the_sample_is_the_same_at_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let parquet = |root: &Path| -> Vec<(String, Vec<u8>)> {
        tree(root)
            .into_iter()
            .filter(|f| f.ends_with(".parquet"))
            .map(|f| {
                let bytes = std::fs::read(root.join(&f)).unwrap();
                (f, bytes)
            })
            .collect()
    };
    let mut outputs = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(threads);
        let mut args = vec!["--set", "cluster.scope=global", "--threads", threads];
        args.extend_from_slice(&AUTO);
        run_sample(&out, &args);
        outputs.push(parquet(&out));
    }
    assert!(outputs[0].len() >= 6);
    assert!(
        outputs[0] == outputs[1],
        "outputs differ between 1 and 2 threads"
    );
    let m = manifest(&dir.path().join("1"));
    let c = &m.clusterings[0];
    let merge = c.merge.clone().unwrap();
    // 2,000 documents holding about 160,000 entries: k_max = min(2,000 / 50, nnz / 5,000)
    // clusters fitted, then merged.
    let docs = (c.n_docs - c.n_empty_docs) as usize;
    let expected = (docs / 50).min(c.nnz as usize / 5_000).clamp(10, 200);
    assert!(expected < 40, "nnz {} no longer binds", c.nnz);
    assert_eq!(merge.n_before, expected);
    assert!(
        (2..expected).contains(&merge.n_after),
        "k found {}",
        merge.n_after
    );
}

#[test]
fn an_auto_model_assigns_what_a_global_run_labels() {
    let dir = tempfile::tempdir().unwrap();
    let days = [
        "--partition",
        "dt=2018-06-01",
        "--partition",
        "dt=2018-06-02",
    ];
    let registry = dir.path().join("models");
    let mut args = vec![
        "fit",
        "jobs/sample.toml",
        "--model",
        registry.to_str().unwrap(),
    ];
    args.extend_from_slice(&days);
    args.extend_from_slice(&AUTO);
    let summary: serde_json::Value = serde_json::from_str(ok(&textcluster(&args)).trim()).unwrap();
    let model_id = summary["model_id"].as_str().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &std::fs::read(registry.join(format!("model_id={model_id}/model.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(header["cluster"]["k"], "auto");

    let assigned = dir.path().join("assigned");
    let out = format!("output.path={}", assigned.display());
    let mut args = vec![
        "assign",
        "jobs/sample.toml",
        "--model",
        registry.to_str().unwrap(),
    ];
    args.extend_from_slice(&["--set", &out]);
    args.extend_from_slice(&AUTO);
    ok(&textcluster(&args));
    let global = dir.path().join("global");
    let mut args = vec!["--set", "cluster.scope=global"];
    args.extend_from_slice(&days);
    args.extend_from_slice(&AUTO);
    run_sample(&global, &args);
    let m = manifest(&global);
    assert_eq!(m.model.unwrap().model_id, model_id);
    let n_found = m.clusterings[0].n_clusters;
    for day in ["2018-06-01", "2018-06-02"] {
        let file = |root: &Path| root.join(format!("labels/dt={day}/part-00000.parquet"));
        let labels = read_labels(&file(&assigned));
        assert!(labels.iter().all(|(_, c, _)| (*c as usize) < n_found));
        assert_eq!(
            std::fs::read(file(&global)).unwrap(),
            std::fs::read(file(&assigned)).unwrap(),
            "labels of {day} differ"
        );
    }
}

#[test]
fn a_partition_of_two_unrelated_documents_keeps_both_and_a_numeric_threshold() {
    // Two pieces that share no term: the hub scale once divided 0 by 0, and the manifest
    // held `"threshold": null`.
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    let part = input.join("dt=2018-06-01");
    std::fs::create_dir_all(&part).unwrap();
    write_docs(
        &part.join("part-0.parquet"),
        &["a".to_string(), "b".to_string()],
        &[Some("red apple".into()), Some("blue whale".into())],
    );
    let job = spec(dir.path(), &input, &out, 1);
    let mut args = vec!["run", job.to_str().unwrap()];
    args.extend_from_slice(&AUTO);
    ok(&textcluster(&args));
    let text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let threshold = &json["clusterings"][0]["merge"]["threshold"];
    assert!(threshold.is_number(), "{threshold}");
    let clustering = manifest(&out).clusterings[0].clone();
    let merge = clustering.merge.clone().unwrap();
    assert!(merge.threshold > 0.0, "{merge:?}");
    assert_eq!((merge.n_before, merge.n_after), (2, 2), "{merge:?}");
    assert_eq!(clustering.n_clusters, 2);
}
