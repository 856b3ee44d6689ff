//! `textcluster report`: the HTML report and the pyLDAvis export, read back as files and
//! rendered in headless Chromium (`tests/report/render.sh`, `tests/report/ldavis.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// A hostile document: markup that would run if the report inserted text as HTML.
const EVIL: &str = "apple banana cherry fruit orchard harvest \
    <script>document.body.setAttribute('data-pwned','1')</script> \
    <img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">";

/// One partition of the three-topic fixture plus [`EVIL`], clustered with k = 3.
fn evil_run(dir: &Path) -> PathBuf {
    let (input, out) = (dir.join("in"), dir.join("out"));
    let mut ids: Vec<String> = Vec::new();
    let mut texts: Vec<Option<String>> = Vec::new();
    for topic in 0..3 {
        for i in 0..8 {
            ids.push(format!("d-t{topic}-{i}"));
            texts.push(Some(doc(topic, i)));
        }
    }
    ids.push("evil".into());
    texts.push(Some(EVIL.into()));
    write_docs(&input.join("dt=2018-06-01/part-0.parquet"), &ids, &texts);
    ok(&textcluster(&[
        "run",
        spec(dir, &input, &out, 3).to_str().unwrap(),
    ]));
    out
}

/// The three-topic fixture over `partitions` partitions, clustered with k = 3.
fn fixture_run(dir: &Path, partitions: usize, per_topic: usize) -> PathBuf {
    let (input, out) = (dir.join("in"), dir.join("out"));
    hive_tree(&input, partitions, per_topic);
    ok(&textcluster(&[
        "run",
        spec(dir, &input, &out, 3).to_str().unwrap(),
    ]));
    out
}

/// Runs `textcluster report`, showing up to 100 examples per cluster unless `extra` says.
fn report(out: &Path, html: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "report",
        out.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    if !extra.contains(&"--examples") {
        args.extend(["--examples", "100"]);
    }
    ok(&textcluster(&args))
}

/// The JSON embedded in a report.
fn embedded(html: &str) -> serde_json::Value {
    let start = html.find(r#"id="report-data">"#).unwrap() + r#"id="report-data">"#.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

#[test]
fn report_embeds_every_cluster_and_escapes_document_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = evil_run(dir.path());
    let (html_path, json_path) = (dir.path().join("r.html"), dir.path().join("lda.json"));
    report(
        &out,
        &html_path,
        &["--pyldavis", json_path.to_str().unwrap()],
    );

    let html = std::fs::read_to_string(&html_path).unwrap();
    // The document's markup is only ever data: escaped inside the JSON, never raw HTML.
    assert!(!html.contains("<script>document.body"));
    assert!(!html.contains("<img src=x"));
    assert!(html.contains(r"\u003cscript\u003edocument.body"));
    let data = embedded(&html);
    let view = &data["clusterings"][0];
    assert_eq!(view["key"], "dt=2018-06-01");
    let clusters = view["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 3);
    assert_eq!(
        clusters
            .iter()
            .map(|c| c["size"].as_u64().unwrap())
            .sum::<u64>(),
        25
    );
    assert_eq!(view["similarity"].as_array().unwrap().len(), 3);
    let examples: Vec<&str> = clusters
        .iter()
        .flat_map(|c| c["examples"].as_array().unwrap())
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(examples.len(), 25, "every document is an example here");
    assert!(examples.iter().any(|t| t.contains("<script>")));

    let lda: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    for key in [
        "mdsDat",
        "tinfo",
        "token.table",
        "R",
        "lambda.step",
        "plot.opts",
        "topic.order",
    ] {
        assert!(lda.get(key).is_some(), "pyLDAvis JSON lacks {key}");
    }
    assert_eq!(lda["mdsDat"]["x"].as_array().unwrap().len(), 3);
}

#[test]
fn pyldavis_export_of_the_fixture_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let out = fixture_run(dir.path(), 1, 6);
    let json_path = dir.path().join("lda.json");
    report(
        &out,
        &dir.path().join("r.html"),
        &["--pyldavis", json_path.to_str().unwrap()],
    );
    let lda: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    // "Overall term frequency" is what pyLDAvis users read it as: the term's occurrences.
    let tinfo = &lda["tinfo"];
    let (terms, totals, freqs) = (
        tinfo["Term"].as_array().unwrap(),
        tinfo["Total"].as_array().unwrap(),
        tinfo["Freq"].as_array().unwrap(),
    );
    let input = dir.path().join("in");
    let mut occurrences: std::collections::HashMap<String, f64> = Default::default();
    for f in tree(&input).into_iter().filter(|f| f.ends_with(".parquet")) {
        let batches = read_batches(&input.join(f));
        for b in &batches {
            let texts = b
                .column(1)
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            for t in texts.iter().flatten() {
                for w in t.split_whitespace() {
                    *occurrences.entry(w.to_lowercase()).or_default() += 1.0;
                }
            }
        }
    }
    for ((term, total), freq) in terms.iter().zip(totals).zip(freqs) {
        let (total, freq) = (total.as_f64().unwrap(), freq.as_f64().unwrap());
        assert_eq!(
            Some(&total),
            occurrences.get(term.as_str().unwrap()),
            "{term}"
        );
        assert!(freq <= total + 1e-9, "{term}: {freq} > {total}");
    }
    insta::assert_json_snapshot!(lda);
}

#[test]
fn report_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let html_arg = html.to_str().unwrap();

    let not_out = dir.path().join("nothing");
    std::fs::create_dir(&not_out).unwrap();
    let err = fails(
        &textcluster(&["report", not_out.to_str().unwrap(), "-o", html_arg]),
        1,
    );
    assert!(
        err.contains("nothing") && err.contains("manifest.json"),
        "{err}"
    );

    let out = fixture_run(dir.path(), 2, 4);
    let lda = dir.path().join("lda.json");
    let out_arg = out.to_str().unwrap();
    let err = fails(
        &textcluster(&[
            "report",
            out_arg,
            "-o",
            html_arg,
            "--pyldavis",
            lda.to_str().unwrap(),
        ]),
        1,
    );
    assert!(
        err.contains("--partition") && err.contains("dt=2018-06-02"),
        "{err}"
    );
    let err = fails(
        &textcluster(&[
            "report",
            out_arg,
            "-o",
            html_arg,
            "--partition",
            "dt=2099-01-01",
        ]),
        1,
    );
    assert!(err.contains("dt=2099-01-01"), "{err}");
    assert!(
        !html.exists() && !lda.exists(),
        "nothing is written on error"
    );

    // One partition picked: both files are written.
    ok(&textcluster(&[
        "report",
        out_arg,
        "-o",
        html_arg,
        "--partition",
        "dt=2018-06-02",
        "--pyldavis",
        lda.to_str().unwrap(),
    ]));
    assert!(html.exists() && lda.exists());
}

/// The shared 20 Newsgroups corpus when this checkout sits next to it, else the sample (also
/// 20 newsgroups).
fn browser_corpus() -> PathBuf {
    let shared = repo().join("../shared/data/20newsgroups");
    if shared.is_dir() {
        shared
    } else {
        eprintln!("../shared/data/20newsgroups not found; using data/sample");
        repo().join("data/sample")
    }
}

/// Renders `page` headless; returns the DOM after scripts ran.
fn render(script: &str, page: &Path, dom: &Path, screenshot: Option<PathBuf>) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("tests/report").join(script))
        .arg(page)
        .arg(dom);
    if let Some(png) = screenshot {
        cmd.arg(png);
    }
    let output = cmd.output().unwrap();
    assert!(
        output.status.success(),
        "{script} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(dom).unwrap()
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// The report's script finished without errors and drew one bubble per cluster.
fn assert_rendered(dom: &str, k: usize) {
    assert!(
        dom.contains(r#"data-ready="1""#),
        "the report script did not finish"
    );
    assert!(
        dom.contains(r#"<ul id="errors" hidden=""></ul>"#),
        "script errors shown"
    );
    let bubbles = count(dom, r#"class="bubble""#) + count(dom, r#"class="bubble selected""#);
    assert_eq!(bubbles, k, "one bubble per cluster");
}

/// Set `TEXTCLUSTER_SCREENSHOTS=DIR` to save `report.png` and `pyldavis.png` there (the README's
/// screenshots come from `TEXTCLUSTER_SCREENSHOTS=tests/report`).
#[test]
fn report_and_pyldavis_render_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = browser_corpus();
    let out = dir.path().join("out");
    ok(&textcluster(&[
        "run",
        "jobs/sample.toml",
        "--set",
        &format!("input.path={}", corpus.display()),
        "--set",
        &format!("output.path={}", out.display()),
        "--set",
        "cluster.scope=global",
        "--set",
        "cluster.k=20",
    ]));
    // What the page must show comes from the run's own record, not from the request.
    let k = manifest(&out).clusterings[0].n_clusters;
    assert_eq!(k, 20);
    let (html, lda) = (dir.path().join("report.html"), dir.path().join("lda.json"));
    ok(&textcluster(&[
        "report",
        out.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
        "--pyldavis",
        lda.to_str().unwrap(),
    ]));
    let shots = std::env::var_os("TEXTCLUSTER_SCREENSHOTS").map(|d| repo().join(d));

    let dom = render(
        "render.sh",
        &html,
        &dir.path().join("dom.html"),
        shots.as_ref().map(|d| d.join("report.png")),
    );
    assert_rendered(&dom, k);
    assert_eq!(count(&dom, r#"class="bubble selected""#), 1);
    assert_eq!(count(&dom, r#"class="bar-cluster""#), 30, "keyword bars");
    assert_eq!(count(&dom, r#"class="cell"#), k * k, "heatmap cells");
    assert_eq!(count(&dom, r#"class="size-bar""#), k);
    // Legible labels: no two visible map labels' boxes intersect (measured in the page
    // with getBBox after layout), and most bubbles keep theirs.
    assert!(
        dom.contains(r#"data-label-overlaps="0""#),
        "map labels overlap"
    );
    let shown: usize = dom
        .split(r#"data-labels-shown=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .expect("the map records its labels");
    assert!(shown >= k / 2, "only {shown} of {k} map labels shown");
    // The heatmap has row and column labels, a colour scale, and a grey diagonal; the size
    // chart has an axis and a count per bar.
    assert_eq!(
        count(&dom, r#"class="axis-label centred col-label""#),
        k,
        "heatmap column labels"
    );
    assert_eq!(count(&dom, r#"class="heat-legend""#), 1);
    assert_eq!(count(&dom, "cell diagonal"), k);
    assert_eq!(count(&dom, r#"class="size-count""#), k);
    assert!(count(&dom, r#"class="size-axis""#) >= 4);

    let lda_dom = render(
        "ldavis.sh",
        &lda,
        &dir.path().join("lda_dom.html"),
        shots.as_ref().map(|d| d.join("pyldavis.png")),
    );
    assert!(
        lda_dom.contains(r#"data-ready="1""#),
        "ldavis.js did not finish"
    );
    assert!(
        lda_dom.contains(r#"<ul id="errors"></ul>"#),
        "ldavis.js raised errors"
    );
    assert_eq!(
        count(&lda_dom, r#"class="dot""#),
        k,
        "one topic circle per cluster"
    );

    // Without a merge there is no merge tree; with `k = "auto"` it lists each final cluster
    // with its pieces.
    assert!(
        dom.contains(r#"id="merge-panel" hidden="""#),
        "a merge panel without a merge"
    );
    let auto = dir.path().join("auto");
    run_sample(
        &auto,
        &["--set", "cluster.scope=global", "--set", "cluster.k=auto"],
    );
    let merge = manifest(&auto).clusterings[0].merge.clone().unwrap();
    let auto_html = dir.path().join("auto.html");
    report(&auto, &auto_html, &[]);
    let auto_dom = render(
        "render.sh",
        &auto_html,
        &dir.path().join("auto_dom.html"),
        None,
    );
    assert_rendered(&auto_dom, merge.n_after);
    assert!(auto_dom.contains(r#"<section class="panel wide" id="merge-panel">"#));
    assert_eq!(count(&auto_dom, r#"class="merge-group""#), merge.n_after);
    let note = format!("{} clusters from {} pieces", merge.n_after, merge.n_before);
    assert!(auto_dom.contains(&note), "{note}");
    let first = &merge.joins[0];
    assert!(auto_dom.contains(&format!("#1 {}+{} at", first.a, first.b)));

    // A document holding markup shows as text and runs nothing.
    let evil = tempfile::tempdir().unwrap();
    let evil_out = evil_run(evil.path());
    let evil_html = evil.path().join("r.html");
    report(&evil_out, &evil_html, &[]);
    let evil_dom = render("render.sh", &evil_html, &evil.path().join("dom.html"), None);
    assert_rendered(&evil_dom, 3);
    assert!(
        !evil_dom.contains(r#"data-pwned="1""#),
        "document markup ran"
    );
    assert!(evil_dom.contains("&lt;script&gt;document.body.setAttribute"));

    // 1,000 clusters: under 10 MB, and the page still renders every bubble.
    let big = dir.path().join("k1000");
    ok(&textcluster(&[
        "run",
        "jobs/sample.toml",
        "--set",
        &format!("output.path={}", big.display()),
        "--set",
        "cluster.scope=global",
        "--set",
        "cluster.k=1000",
        "--set",
        "cluster.n_init=1",
        "--set",
        "cluster.max_iter=3",
    ]));
    let big_html = dir.path().join("k1000.html");
    report(&big, &big_html, &["--examples", "3"]);
    let size = std::fs::metadata(&big_html).unwrap().len();
    assert!(size < 10_000_000, "1,000-cluster report is {size} bytes");
    let big_dom = render(
        "render.sh",
        &big_html,
        &dir.path().join("k1000_dom.html"),
        None,
    );
    assert_rendered(&big_dom, 1000);
}
