//! How readable the keywords are: NPMI coherence, coverage, precision, topic diversity, and
//! whether a cluster's keywords name its majority gold label.
//!
//! # Metrics
//! For each clustering (each partition in `partition` scope, one in `global` scope) and each
//! cluster's top-N keywords (by rank, N = 10 by default), over the documents of that clustering
//! re-tokenised with the run's own `[vectorize]` settings (into whole words when the run
//! labelled with words, `JobSpec::keywords_are_words`):
//! - NPMI of a pair `(a, b)` is `log(P(a,b) / (P(a)P(b))) / -log P(a,b)` with document
//!   co-occurrence probabilities; `-1` when the pair never co-occurs, `1` when both occur in
//!   every document. A cluster's coherence is the mean over its keyword pairs.
//! - coverage of a keyword: the share of the cluster's documents that contain it; precision:
//!   the share of the keyword's documents that are in the cluster.
//! - topic diversity: distinct keywords over all clusters' top N, divided by their number.
//! - a cluster names its group when one of its top N is a word of its majority gold label
//!   (split on anything but letters and digits, lowercased, words of 3 or more characters), or
//!   that word with or without a final `s` (`autos` / `auto`).
//!
//! Everything is recomputed from the texts and the committed labels, so the keywords of any
//! run, by any version, are measured the same way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int32Type;
use serde::Serialize;

use super::EvalError;
use crate::io::commit::Staging;
use crate::io::{PartitionKey, read_files, read_output};
use crate::model::resolve::committed_clusterings;
use crate::output::Manifest;
use crate::output::Table;
use crate::text::TokenBuffer;

/// Label metrics of one cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterLabels {
    /// The clustering: `dt=…`, or `all` in global scope.
    pub key: String,
    pub cluster: i32,
    pub n_docs: u64,
    /// The most frequent gold label among the cluster's documents, if any has one.
    pub majority: Option<String>,
    /// Mean NPMI over pairs of the top keywords.
    pub npmi: f64,
    pub median_coverage: f64,
    pub median_precision: f64,
    /// A top keyword is a word of the majority label (or its singular or plural).
    pub names_group: bool,
    pub keywords: Vec<String>,
}

/// Label metrics of a run: per cluster and summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelQuality {
    /// Keywords per cluster measured (N).
    pub top_n: usize,
    /// Mean over clusters of their NPMI.
    pub mean_npmi: f64,
    /// Medians over every (cluster, keyword) pair.
    pub median_coverage: f64,
    pub median_precision: f64,
    /// Distinct keywords over all clusters' top N, divided by their number.
    pub topic_diversity: f64,
    pub n_naming_group: usize,
    pub n_clusters: usize,
    pub clusters: Vec<ClusterLabels>,
}

/// The median of `values` (0 when empty).
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let m = values.len() / 2;
    if values.len() % 2 == 1 {
        values[m]
    } else {
        (values[m - 1] + values[m]) / 2.0
    }
}

/// NPMI of a pair from its document counts among `n` documents.
pub fn npmi(n_a: u64, n_b: u64, n_ab: u64, n: u64) -> f64 {
    if n_ab == 0 || n == 0 {
        return -1.0;
    }
    let (n, a, b, ab) = (n as f64, n_a as f64, n_b as f64, n_ab as f64);
    let p_ab = ab / n;
    if p_ab >= 1.0 {
        return 1.0;
    }
    ((p_ab / ((a / n) * (b / n))).ln() / -p_ab.ln()).clamp(-1.0, 1.0)
}

/// Whether `keyword` names a group labelled `label` (see the module docs).
pub fn names_group(keyword: &str, label: &str) -> bool {
    let keyword = keyword.to_lowercase();
    label
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .any(|w| {
            keyword == w
                || keyword.strip_suffix('s') == Some(w)
                || w.strip_suffix('s') == Some(keyword.as_str())
        })
}

/// One clustering to measure: its keywords table, its label partitions and the vectoriser
/// settings its keywords come from.
struct Clustering {
    name: String,
    keywords: PathBuf,
    label_keys: Vec<PartitionKey>,
    vectorize: crate::text::VectorizeParams,
}

/// Measures the keywords of the run under `out`. `majority` maps (group, cluster) to the
/// majority gold label, with the groups of [`super::evaluate`] (`all`, or a partition key).
pub fn measure(
    out: &Path,
    manifest: &Manifest,
    majority: &HashMap<(String, i32), String>,
    top_n: usize,
) -> Result<LabelQuality, EvalError> {
    // Keywords are whole words or the clustering's tokens, as the run chose.
    let words = manifest.spec.keywords_are_words();
    let shared_ids = super::shared_cluster_ids(manifest);
    let clusterings: Vec<Clustering> = committed_clusterings(out, manifest)?
        .into_iter()
        .map(|c| Clustering {
            // The groups of `super::evaluate`: one for shared cluster ids, else per partition.
            name: if shared_ids {
                "all".into()
            } else {
                c.label_keys
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            },
            keywords: c.tables.file(Table::Keywords),
            vectorize: c
                .tables
                .model()
                .map_or_else(|| manifest.spec.vectorize.clone(), |m| m.vectorize.clone()),
            label_keys: c.label_keys,
        })
        .collect();
    let input = &manifest.spec.input;
    let mut rows = Vec::new();
    let mut all_coverage = Vec::new();
    let mut all_precision = Vec::new();
    let (mut n_keywords, mut distinct) = (0usize, HashSet::new());
    // The Korean word table the run learned from its whole input, learned again.
    let mut korean: Option<crate::text::KoreanWords> = None;
    for clustering in &clusterings {
        let mut params = clustering
            .vectorize
            .check()
            .map_err(|errors| EvalError::Params {
                out: out.into(),
                problems: errors.iter().map(ToString::to_string).collect(),
            })?;
        if params.analyzer().needs_korean(words) {
            if korean.is_none() {
                let mut counter = crate::text::WordCounter::default();
                let mut buffer = TokenBuffer::default();
                let keys: std::collections::BTreeSet<_> = clusterings
                    .iter()
                    .flat_map(|c| c.label_keys.iter())
                    .collect();
                for key in keys {
                    let files = manifest.input_files(key, None)?;
                    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
                    let what = format!("input partition `{key}`");
                    let docs = read_files(&paths, &what, &input.id_column, &input.text_column)?;
                    for text in docs.texts.iter().flatten() {
                        params
                            .analyzer()
                            .count_korean(text, &mut buffer, &mut counter);
                    }
                }
                korean = Some(counter.learn());
            }
            params = params.with_korean(korean.clone().expect("learned above"));
        }
        let analyzer = params.analyzer();
        let keywords = read_keywords(&clustering.keywords, top_n)?;
        // Every keyword of the clustering, once: its id, and which clusters rank it.
        let mut term_id: HashMap<&str, usize> = HashMap::new();
        for kw in keywords.values() {
            for t in kw {
                let next = term_id.len();
                term_id.entry(t.as_str()).or_insert(next);
            }
        }
        let n_terms = term_id.len();
        let cluster_terms: BTreeMap<i32, Vec<usize>> = keywords
            .iter()
            .map(|(&c, kw)| (c, kw.iter().map(|t| term_id[t.as_str()]).collect()))
            .collect();
        let mut df = vec![0u64; n_terms];
        let mut pair: BTreeMap<i32, Vec<u64>> = cluster_terms
            .iter()
            .map(|(&c, t)| (c, vec![0u64; t.len() * t.len()]))
            .collect();
        let mut in_cluster: HashMap<(i32, usize), u64> = HashMap::new();
        let mut sizes: BTreeMap<i32, u64> = BTreeMap::new();
        let mut n_docs = 0u64;
        let mut buffer = TokenBuffer::default();
        let mut present = vec![false; n_terms];
        let mut found: Vec<usize> = Vec::new();
        for key in &clustering.label_keys {
            let labels = read_labels(&Staging::committed_file(out, Table::Labels, key))?;
            let files = manifest.input_files(key, None)?;
            let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
            let what = format!("input partition `{key}`");
            let docs = read_files(&paths, &what, &input.id_column, &input.text_column)?;
            for i in 0..docs.len() {
                if docs.ids.is_null(i) || docs.texts.is_null(i) {
                    continue;
                }
                let Some(&cluster) = labels.get(docs.ids.value(i)) else {
                    continue;
                };
                n_docs += 1;
                *sizes.entry(cluster).or_default() += 1;
                found.clear();
                let mut see = |t: &str| {
                    if let Some(&id) = term_id.get(t)
                        && !present[id]
                    {
                        present[id] = true;
                        found.push(id);
                    }
                };
                if words {
                    analyzer.for_each_kept_word(docs.texts.value(i), &mut buffer, &mut see);
                } else {
                    analyzer.for_each_token(docs.texts.value(i), &mut buffer, &mut see);
                }
                for &id in &found {
                    df[id] += 1;
                    *in_cluster.entry((cluster, id)).or_default() += 1;
                }
                for (c, terms) in &cluster_terms {
                    let counts = pair.get_mut(c).expect("one per cluster");
                    let n = terms.len();
                    for (a, &ta) in terms.iter().enumerate() {
                        if !present[ta] {
                            continue;
                        }
                        for (b, &tb) in terms.iter().enumerate().skip(a + 1) {
                            if present[tb] {
                                counts[a * n + b] += 1;
                            }
                        }
                    }
                }
                for &id in &found {
                    present[id] = false;
                }
            }
        }
        for (&c, terms) in &cluster_terms {
            let size = sizes.get(&c).copied().unwrap_or(0);
            let n = terms.len();
            let counts = &pair[&c];
            let mut scores = Vec::new();
            for a in 0..n {
                for b in a + 1..n {
                    scores.push(npmi(df[terms[a]], df[terms[b]], counts[a * n + b], n_docs));
                }
            }
            let coverage: Vec<f64> = terms
                .iter()
                .map(|&t| {
                    let hits = in_cluster.get(&(c, t)).copied().unwrap_or(0);
                    if size == 0 {
                        0.0
                    } else {
                        hits as f64 / size as f64
                    }
                })
                .collect();
            let precision: Vec<f64> = terms
                .iter()
                .map(|&t| {
                    let hits = in_cluster.get(&(c, t)).copied().unwrap_or(0);
                    if df[t] == 0 {
                        0.0
                    } else {
                        hits as f64 / df[t] as f64
                    }
                })
                .collect();
            all_coverage.extend(&coverage);
            all_precision.extend(&precision);
            let words = &keywords[&c];
            n_keywords += words.len();
            distinct.extend(words.iter().cloned());
            let group = majority.get(&(clustering.name.clone(), c)).cloned();
            rows.push(ClusterLabels {
                key: clustering.name.clone(),
                cluster: c,
                n_docs: size,
                names_group: group
                    .as_deref()
                    .is_some_and(|g| words.iter().any(|w| names_group(w, g))),
                majority: group,
                npmi: if scores.is_empty() {
                    0.0
                } else {
                    scores.iter().sum::<f64>() / scores.len() as f64
                },
                median_coverage: median(coverage),
                median_precision: median(precision),
                keywords: words.clone(),
            });
        }
    }
    let n_clusters = rows.len();
    Ok(LabelQuality {
        top_n,
        mean_npmi: if n_clusters == 0 {
            0.0
        } else {
            rows.iter().map(|r| r.npmi).sum::<f64>() / n_clusters as f64
        },
        median_coverage: median(all_coverage),
        median_precision: median(all_precision),
        topic_diversity: if n_keywords == 0 {
            0.0
        } else {
            distinct.len() as f64 / n_keywords as f64
        },
        n_naming_group: rows.iter().filter(|r| r.names_group).count(),
        n_clusters,
        clusters: rows,
    })
}

/// The top `n` keywords of each cluster, by rank.
fn read_keywords(path: &Path, n: usize) -> Result<BTreeMap<i32, Vec<String>>, EvalError> {
    let mut ranked: BTreeMap<i32, Vec<(i32, String)>> = BTreeMap::new();
    for batch in read_output(path, Table::Keywords)? {
        let cluster = batch.column(0).as_primitive::<Int32Type>();
        let rank = batch.column(1).as_primitive::<Int32Type>();
        let term = batch.column(2).as_string::<i32>();
        for i in 0..batch.num_rows() {
            ranked
                .entry(cluster.value(i))
                .or_default()
                .push((rank.value(i), term.value(i).to_owned()));
        }
    }
    Ok(ranked
        .into_iter()
        .filter(|(c, _)| *c >= 0)
        .map(|(c, mut kw)| {
            kw.sort();
            (c, kw.into_iter().take(n).map(|(_, t)| t).collect())
        })
        .collect())
}

/// `doc_id → cluster` of one label file.
fn read_labels(path: &Path) -> Result<HashMap<String, i32>, EvalError> {
    let mut labels = HashMap::new();
    for batch in read_output(path, Table::Labels)? {
        let ids = batch.column(0).as_string::<i32>();
        let cluster = batch.column(1).as_primitive::<Int32Type>();
        for i in 0..batch.num_rows() {
            labels.insert(ids.value(i).to_owned(), cluster.value(i));
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npmi_matches_a_hand_computation() {
        // 4 documents: a in {1, 2}, b in {1, 2, 3}, c in {4}.
        // P(a) = 1/2, P(b) = 3/4, P(a,b) = 1/2: log((1/2) / (3/8)) / -log(1/2) = log(4/3) / log 2.
        let expected = (4.0f64 / 3.0).ln() / 2.0f64.ln();
        assert!((npmi(2, 3, 2, 4) - expected).abs() < 1e-12);
        assert!((expected - 0.415_037_5).abs() < 1e-6);
        assert_eq!(npmi(2, 1, 0, 4), -1.0);
        assert_eq!(npmi(4, 4, 4, 4), 1.0);
        // Independent terms score 0: P(a) = P(b) = 1/2, P(a,b) = 1/4.
        assert!(npmi(2, 2, 1, 4).abs() < 1e-12);
    }

    #[test]
    fn group_names_match_whole_words_and_prefixes() {
        assert!(names_group("hockey", "rec.sport.hockey"));
        assert!(names_group("crypt", "sci.crypt"));
        assert!(!names_group("cryptography", "sci.crypt"));
        assert!(!names_group("spacecraft", "sci.space"));
        assert!(names_group("auto", "rec.autos") && names_group("autos", "rec.autos"));
        assert!(names_group("Business", "business"));
        assert!(names_group("sport", "rec.sport.hockey"));
        assert!(!names_group("re", "rec.sport.hockey"));
        assert!(!names_group("space", "rec.autos"));
        assert!(names_group("tech", "Sci/Tech"));
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
