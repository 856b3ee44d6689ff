//! The JSON that pyLDAvis's viewer (`ldavis.js`) takes, for one clustering.
//!
//! Each centroid is a topic: topic-term distributions are the L1-normalised centroids, and
//! document-topic assignments are one-hot from the labels, so a topic's share is its share of
//! the documents. The "term frequency" of `w` is its occurrences in the documents when the
//! report counted them, else the estimate `Σ_c p(w|c) · size_c`; a topic's frequency of `w`
//! is that times `p(topic | w)`.
//!
//! Two things the Python helper gets wrong are right here. Bubbles carry their own cluster's
//! coordinates: positions, sizes and topic numbers come from the same row. Empty clusters
//! (no members, all-zero centroid) are left out rather than sent as `NaN` rows that break the
//! viewer; `topic.order` maps each topic number back to its cluster id (plus one).

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use super::{ClusteringView, relevance_candidates};

/// Terms per bar chart, as in pyLDAvis.
pub const R: usize = 30;
/// The viewer's λ step, as in pyLDAvis; candidates are exact on this grid.
pub const LAMBDA_STEP: f64 = 0.01;
/// `token.table` keeps `p(topic | term)` at least this large.
const MIN_TOPIC_SHARE: f64 = 0.001;

/// Builds the viewer's data for `view`.
pub fn prepare(view: &ClusteringView) -> Value {
    let topics = &view.topics;
    let total: f64 = topics.sizes.iter().sum::<u64>() as f64;
    // Non-empty clusters by size, largest first (ties by id): topic numbers 1..m.
    let mut order: Vec<usize> = (0..topics.sizes.len())
        .filter(|&c| topics.sizes[c] > 0 && !topics.p_term_given_cluster[c].is_empty())
        .collect();
    order.sort_by(|&a, &b| topics.sizes[b].cmp(&topics.sizes[a]).then(a.cmp(&b)));
    // Overall term frequency: the term's occurrences in the documents, as pyLDAvis users read
    // it; estimated from the centroids only when the input could not be read.
    let term_freq = |t: u32| match &topics.counts {
        Some(counts) => counts[t as usize] as f64,
        None => topics.p_term[t as usize] * total,
    };

    let mds = json!({
        "x": order.iter().map(|&c| view.clusters[c].x).collect::<Vec<_>>(),
        "y": order.iter().map(|&c| view.clusters[c].y).collect::<Vec<_>>(),
        "topics": (1..=order.len()).collect::<Vec<_>>(),
        "cluster": vec![1; order.len()],
        "Freq": order.iter().map(|&c| round(topics.sizes[c] as f64 / total * 100.0, 4)).collect::<Vec<_>>(),
    });

    // p(topic | term) for every (term, topic) pair: size_c · p(w|c) / Σ_c size_c · p(w|c).
    let mut topic_share: HashMap<u32, Vec<(usize, f64)>> = HashMap::new();
    for (n, &c) in order.iter().enumerate() {
        for &(t, p) in &topics.p_term_given_cluster[c] {
            let f = topics.p_term[t as usize] * total;
            if f > 0.0 {
                topic_share
                    .entry(t)
                    .or_default()
                    .push((n + 1, p * topics.sizes[c] as f64 / f));
            }
        }
    }

    let mut tinfo = Columns::default();
    // Default view: the R most salient terms. Saliency(w) = p(w) · Σ_t p(t|w) log(p(t|w)/p(t)).
    let p_topic: Vec<f64> = order
        .iter()
        .map(|&c| topics.sizes[c] as f64 / total)
        .collect();
    let mut salient: Vec<(f64, u32)> = topic_share
        .iter()
        .map(|(&t, shares)| {
            let distinctiveness: f64 = shares
                .iter()
                .map(|&(n, s)| s * (s / p_topic[n - 1]).ln())
                .sum();
            (topics.p_term[t as usize] * distinctiveness, t)
        })
        .collect();
    salient.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    salient.truncate(R);
    let n_default = salient.len();
    for (rank, &(_, t)) in salient.iter().enumerate() {
        let f = round(term_freq(t), 4);
        tinfo.push(
            &topics.names[t as usize],
            f,
            f,
            "Default".into(),
            (n_default - rank) as f64,
            (n_default - rank) as f64,
        );
    }
    let mut shown: BTreeSet<u32> = salient.iter().map(|e| e.1).collect();
    for (n, &c) in order.iter().enumerate() {
        let entries = &topics.p_term_given_cluster[c];
        for (t, p) in relevance_candidates(entries, &topics.p_term, R, LAMBDA_STEP) {
            let lift = p / topics.p_term[t as usize];
            // The topic's share of the term's occurrences: term frequency × p(topic | term).
            let share = p * topics.sizes[c] as f64 / (topics.p_term[t as usize] * total);
            tinfo.push(
                &topics.names[t as usize],
                round(term_freq(t) * share, 4),
                round(term_freq(t), 4),
                format!("Topic{}", n + 1),
                round(p.ln(), 4),
                round(lift.ln(), 4),
            );
            shown.insert(t);
        }
    }

    // Sorted by term, then topic, as pyLDAvis sends it.
    let mut token_rows: Vec<(&str, usize, f64)> = Vec::new();
    for &t in &shown {
        for &(n, share) in topic_share.get(&t).map(Vec::as_slice).unwrap_or(&[]) {
            if share >= MIN_TOPIC_SHARE {
                token_rows.push((&topics.names[t as usize], n, round(share, 4)));
            }
        }
    }
    token_rows.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(&b.1)));

    json!({
        "mdsDat": mds,
        "tinfo": {
            "Term": tinfo.term,
            "Freq": tinfo.freq,
            "Total": tinfo.total,
            "Category": tinfo.category,
            "logprob": tinfo.logprob,
            "loglift": tinfo.loglift,
        },
        "token.table": {
            "Topic": token_rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "Freq": token_rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "Term": token_rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        },
        "R": R,
        "lambda.step": LAMBDA_STEP,
        "plot.opts": {"xlab": "PC1", "ylab": "PC2"},
        "topic.order": order.iter().map(|&c| view.clusters[c].id + 1).collect::<Vec<_>>(),
    })
}

/// `tinfo`, column by column.
#[derive(Default)]
struct Columns {
    term: Vec<String>,
    freq: Vec<f64>,
    total: Vec<f64>,
    category: Vec<String>,
    logprob: Vec<f64>,
    loglift: Vec<f64>,
}

impl Columns {
    fn push(
        &mut self,
        term: &str,
        freq: f64,
        total: f64,
        category: String,
        logprob: f64,
        loglift: f64,
    ) {
        self.term.push(term.to_owned());
        self.freq.push(freq);
        self.total.push(total);
        self.category.push(category);
        self.logprob.push(logprob);
        self.loglift.push(loglift);
    }
}

/// Rounds to `digits` decimals; non-finite values become 0 so the JSON never holds `NaN`.
fn round(v: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    if v.is_finite() {
        (v * scale).round() / scale
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ClusterView, TopicTerms};

    /// Three clusters; cluster 1 is empty. Cluster 2 is the largest.
    fn view() -> ClusteringView {
        let cluster = |id: i32, size: u64, x: f64, y: f64| ClusterView {
            id,
            size,
            x,
            y,
            keywords: vec![],
            mean_similarity: None,
            ambiguous_share: None,
            unsettled: None,
            moved_last_3: None,
            term_ids: vec![],
            log_p: vec![],
            examples: vec![],
        };
        let per_cluster = vec![vec![(0, 0.75), (1, 0.25)], vec![], vec![(1, 0.5), (2, 0.5)]];
        let sizes = vec![10u64, 0, 30];
        let total = 40.0;
        let mut p_term = vec![0.0; 3];
        for (c, entries) in per_cluster.iter().enumerate() {
            for &(t, p) in entries {
                p_term[t as usize] += p * sizes[c] as f64 / total;
            }
        }
        ClusteringView {
            key: "dt=x".into(),
            figures: None,
            merge_threshold: None,
            n_docs: 40,
            clusters: vec![
                cluster(0, 10, 1.0, 2.0),
                cluster(1, 0, 0.0, 0.0),
                cluster(2, 30, -3.0, 4.0),
            ],
            terms: vec![],
            log_p_term: vec![],
            similarity: vec![0, 0, 0],
            order: vec![0, 1, 2],
            topics: TopicTerms {
                names: vec!["apple".into(), "both".into(), "car".into()],
                p_term,
                p_term_given_cluster: per_cluster,
                sizes,
                counts: None,
            },
        }
    }

    #[test]
    fn bubbles_carry_their_own_cluster_and_empty_clusters_are_left_out() {
        let json = prepare(&view());
        let mds = &json["mdsDat"];
        // Largest first: topic 1 is cluster 2, topic 2 is cluster 0; cluster 1 is absent.
        assert_eq!(json["topic.order"], serde_json::json!([3, 1]));
        assert_eq!(mds["x"], serde_json::json!([-3.0, 1.0]));
        assert_eq!(mds["y"], serde_json::json!([4.0, 2.0]));
        assert_eq!(mds["Freq"], serde_json::json!([75.0, 25.0]));
        assert_eq!(mds["topics"], serde_json::json!([1, 2]));
        // Every tinfo column has one entry per row, and no value is null (NaN).
        let tinfo = json["tinfo"].as_object().unwrap();
        let n = tinfo["Term"].as_array().unwrap().len();
        for (name, column) in tinfo {
            let column = column.as_array().unwrap();
            assert_eq!(column.len(), n, "{name}");
            assert!(column.iter().all(|v| !v.is_null()), "{name}");
        }
        let categories: Vec<&str> = tinfo["Category"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(categories.contains(&"Default") && categories.contains(&"Topic1"));
        assert!(!categories.contains(&"Topic3"));
        // "both" is shared: a quarter of its weight is cluster 0's (10 · 0.25 = 2.5 of 17.5).
        let table = &json["token.table"];
        let rows: Vec<(String, u64, f64)> = (0..table["Term"].as_array().unwrap().len())
            .map(|i| {
                (
                    table["Term"][i].as_str().unwrap().to_owned(),
                    table["Topic"][i].as_u64().unwrap(),
                    table["Freq"][i].as_f64().unwrap(),
                )
            })
            .collect();
        assert!(rows.contains(&("both".into(), 2, round(2.5 / 17.5, 4))));
        assert!(rows.contains(&("both".into(), 1, round(15.0 / 17.5, 4))));
    }
}
