//! Scoring a run's labels against gold labels: NMI, ARI, purity and the largest cluster.
//!
//! Polars joins the committed `labels` table with the gold table on the document id and counts
//! documents per (partition, cluster, gold label) with a group-by; the metrics are computed
//! from that contingency table. In `partition` scope each partition was clustered on its own,
//! so each gets its own scores and the summary is their mean weighted by documents. In
//! `global` scope the cluster ids are shared and one score covers every document.
//!
//! Documents labelled `-1` (no terms) count as one more cluster.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

pub mod labels;

pub use labels::{ClusterLabels, LabelQuality};

use crate::cluster::Scope;
use crate::io::{Dataset, InputError, PartitionFilter};
use crate::output::{Manifest, ManifestError};

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("the `[vectorize]` section of the run under `{}` does not check: {}", out.display(), problems.join("; "))]
    Params { out: PathBuf, problems: Vec<String> },
    #[error("the evaluation query over `{}` failed", out.display())]
    Query {
        out: PathBuf,
        #[source]
        source: PolarsError,
    },
    #[error("gold file `{}` has no column `{column}`; its columns are {available:?}\nhint: name the gold label column with `--label-column` and the id column with `--id-column`", path.display())]
    GoldColumn {
        path: PathBuf,
        column: String,
        available: Vec<String>,
    },
    #[error("no labelled document of `{}` has a gold label in `{}`\nhint: check `--id-column`", labels.display(), gold.display())]
    NoOverlap { labels: PathBuf, gold: PathBuf },
}

impl EvalError {
    /// True when the user must fix the arguments or the data (a retry will not help).
    pub fn is_user_error(&self) -> bool {
        match self {
            EvalError::Input(e) => e.is_user_error(),
            EvalError::Manifest(e) => e.is_user_error(),
            EvalError::NoOverlap { .. }
            | EvalError::Params { .. }
            | EvalError::GoldColumn { .. } => true,
            EvalError::Query { .. } => false,
        }
    }
}

/// Scores of one group of documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    /// `dt=…`, or `all` for a global score.
    pub key: String,
    pub n_docs: u64,
    pub n_clusters: usize,
    pub n_gold_labels: usize,
    pub nmi: f64,
    pub ari: f64,
    pub purity: f64,
    pub largest_cluster: u64,
}

/// The evaluation of a whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Labelled documents with no gold label (left out of the scores).
    pub n_unmatched: u64,
    /// Labelled documents whose gold label is null (left out of the scores, and not a group
    /// of their own).
    pub n_null_gold: u64,
    /// Label rows whose `doc_id` occurs more than once within their partition (a run with
    /// `input.allow_duplicate_ids`); each such row is scored on its own against the gold label
    /// of its id.
    pub n_duplicate_label_rows: u64,
    /// Gold ids that occur more than once; the first occurrence's label is used.
    pub n_duplicate_gold_ids: u64,
    /// One entry per partition in `partition` scope, or one for everything in `global` scope.
    pub groups: Vec<Scores>,
    /// Document-weighted mean over `groups`.
    pub summary: Scores,
    /// How readable the keywords are; absent when the run's input texts cannot be read
    /// (moved or deleted since), which only costs these figures.
    pub labels: Option<LabelQuality>,
    /// How each clustering converged, from the run's manifest.
    pub fits: Vec<FitSummary>,
}

/// How one clustering converged: its rounds, and the clusters still moving at its end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitSummary {
    pub key: String,
    pub n_iter: usize,
    pub converged: bool,
    pub unsettled: Vec<UnsettledCluster>,
    /// The merge after the fit (`merge_threshold` or `k = "auto"`): the k found, the merge
    /// map and, with `"auto"`, the merge tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge: Option<crate::cluster::MergeOutcome>,
}

/// A cluster still moving when its fit ended: more than 1% of its size joined or left it in
/// the last 3 rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnsettledCluster {
    pub cluster: i32,
    pub size: u64,
    /// Documents that joined or left it in the last 3 rounds of the fit.
    pub moved_last_3: u64,
}

/// True when the run's cluster ids mean the same in every partition: labels assigned with a
/// model (`assign`, `run` in `global` scope, or an older global run); false when each
/// partition was clustered on its own.
pub(crate) fn shared_cluster_ids(manifest: &Manifest) -> bool {
    manifest.model.is_some() || manifest.spec.cluster.scope == Scope::Global
}

/// Scores the labels under `out` (a run's output path) against `gold`'s `label_column`,
/// per partition when the run's manifest says it clustered in `partition` scope, and the top
/// `top_n` keywords of each cluster ([`labels`]).
pub fn evaluate(
    out: &Path,
    gold: &Path,
    id_column: &str,
    label_column: &str,
    top_n: usize,
) -> Result<Evaluation, EvalError> {
    let manifest = Manifest::read(out)?;
    let per_partition = !shared_cluster_ids(&manifest);
    let query = |source| EvalError::Query {
        out: out.into(),
        source,
    };
    let labels_dir = out.join("labels");
    let none = PartitionFilter::default();
    let labels = Dataset::discover(
        &crate::io::Selection::all(&labels_dir),
        &none,
        "doc_id",
        "doc_id",
        false,
    )?;
    let gold_set = Dataset::discover(
        &crate::io::Selection::all(gold),
        &none,
        id_column,
        label_column,
        false,
    )
    .map_err(|e| match e {
        InputError::MissingColumn {
            path,
            column,
            available,
        } => EvalError::GoldColumn {
            path,
            column,
            available,
        },
        e => EvalError::Input(e),
    })?;

    let labels_lf = concat_partitions(&labels, &["doc_id", "cluster"]).map_err(query)?;
    // The label column may be the id column itself: read it once.
    let gold_columns: &[&str] = if label_column == id_column {
        &[id_column]
    } else {
        &[id_column, label_column]
    };
    let gold_all = concat_partitions(&gold_set, gold_columns)
        .map_err(query)?
        .select([
            col(id_column).alias("doc_id"),
            col(label_column).cast(DataType::String).alias("gold"),
        ]);
    // Ids that occur more than once: label rows within a partition, and gold ids.
    let duplicated = |lf: LazyFrame, keys: Vec<Expr>, sum_rows: bool| -> Result<u64, EvalError> {
        let n = if sum_rows { col("n").sum() } else { len() };
        let counted = lf
            .group_by(keys)
            .agg([len().alias("n")])
            .filter(col("n").gt(lit(1)))
            .select([n.alias("count")])
            .collect()
            .map_err(query)?;
        let c = counted.column("count").map_err(query)?;
        let c = c.cast(&DataType::UInt64).map_err(query)?;
        Ok(c.u64().map_err(query)?.get(0).unwrap_or(0))
    };
    let n_duplicate_label_rows = duplicated(
        labels_lf.clone(),
        vec![col("__partition"), col("doc_id")],
        true,
    )?;
    let n_duplicate_gold_ids = duplicated(gold_all.clone(), vec![col("doc_id")], false)?;
    // One gold label per id, so a duplicated gold id cannot multiply the labelled rows.
    let gold_lf = gold_all
        .group_by([col("doc_id")])
        .agg([col("gold").first()]);
    // A null gold label is no label: those documents are counted and left out.
    let null_gold = labels_lf
        .clone()
        .inner_join(
            gold_lf.clone().filter(col("gold").is_null()),
            col("doc_id"),
            col("doc_id"),
        )
        .select([len().alias("count")])
        .collect()
        .map_err(query)?;
    let n_null_gold = null_gold
        .column("count")
        .map_err(query)?
        .cast(&DataType::UInt64)
        .map_err(query)?
        .u64()
        .map_err(query)?
        .get(0)
        .unwrap_or(0);
    let gold_lf = gold_lf.filter(col("gold").is_not_null());
    let n_labelled = labels.partitions.iter().map(|p| p.n_rows()).sum::<u64>();
    let counts = labels_lf
        .inner_join(gold_lf, col("doc_id"), col("doc_id"))
        .group_by([col("__partition"), col("cluster"), col("gold")])
        .agg([len().alias("n")])
        .sort(
            ["__partition", "cluster", "gold"],
            SortMultipleOptions::default(),
        )
        .collect()
        .map_err(query)?;
    let column = |name: &str| counts.column(name).map_err(query);
    let partition = column("__partition")?.str().map_err(query)?.clone();
    let cluster = column("cluster")?.i32().map_err(query)?.clone();
    let gold_label = column("gold")?.str().map_err(query)?.clone();
    let n = column("n")?.cast(&DataType::UInt64).map_err(query)?;
    let n = n.u64().map_err(query)?;

    let mut tables: BTreeMap<String, BTreeMap<(i32, String), u64>> = BTreeMap::new();
    for i in 0..counts.height() {
        let group = if per_partition {
            partition.get(i).unwrap_or_default().to_owned()
        } else {
            "all".to_owned()
        };
        *tables
            .entry(group)
            .or_default()
            .entry((
                cluster.get(i).unwrap_or(-1),
                gold_label.get(i).unwrap_or_default().to_owned(),
            ))
            .or_default() += n.get(i).unwrap_or(0);
    }
    if tables.is_empty() {
        return Err(EvalError::NoOverlap {
            labels: labels_dir,
            gold: gold.into(),
        });
    }
    // The majority gold label of each (group, cluster), for the label metrics.
    let mut best: HashMap<(String, i32), (u64, String)> = HashMap::new();
    for (group, table) in &tables {
        for ((c, g), &n) in table {
            let entry = best
                .entry((group.clone(), *c))
                .or_insert((0, String::new()));
            if n > entry.0 {
                *entry = (n, g.clone());
            }
        }
    }
    let majority: HashMap<(String, i32), String> =
        best.into_iter().map(|(k, (_, g))| (k, g)).collect();
    let label_quality = match labels::measure(out, &manifest, &majority, top_n) {
        Ok(quality) => Some(quality),
        Err(EvalError::Input(e)) => {
            tracing::warn!(error = %crate::io::error_chain(&e), "cannot read the run's input texts; label metrics skipped");
            None
        }
        Err(e) => return Err(e),
    };
    let groups: Vec<Scores> = tables
        .into_iter()
        .map(|(key, table)| scores(key, &table))
        .collect();
    let total: u64 = groups.iter().map(|g| g.n_docs).sum();
    let mean = |f: fn(&Scores) -> f64| {
        groups.iter().map(|g| f(g) * g.n_docs as f64).sum::<f64>() / total as f64
    };
    let summary = Scores {
        key: "summary".into(),
        n_docs: total,
        n_clusters: groups.iter().map(|g| g.n_clusters).sum(),
        n_gold_labels: groups.iter().map(|g| g.n_gold_labels).max().unwrap_or(0),
        nmi: mean(|g| g.nmi),
        ari: mean(|g| g.ari),
        purity: mean(|g| g.purity),
        largest_cluster: groups.iter().map(|g| g.largest_cluster).max().unwrap_or(0),
    };
    Ok(Evaluation {
        n_unmatched: n_labelled.saturating_sub(total + n_null_gold),
        n_null_gold,
        n_duplicate_label_rows,
        n_duplicate_gold_ids,
        groups,
        summary,
        labels: label_quality,
        fits: fit_summaries(&manifest),
    })
}

/// The convergence of each clustering in `manifest`.
fn fit_summaries(manifest: &Manifest) -> Vec<FitSummary> {
    manifest
        .clusterings
        .iter()
        .map(|c| FitSummary {
            key: c.key.clone(),
            n_iter: c.n_iter,
            converged: c.converged,
            merge: c.merge.clone(),
            unsettled: c
                .clusters
                .iter()
                .filter(|r| r.unsettled)
                .map(|r| UnsettledCluster {
                    cluster: r.cluster,
                    size: r.size,
                    moved_last_3: r.moved_last_3,
                })
                .collect(),
        })
        .collect()
}

/// Scans every partition of `dataset` (only `columns`) into one frame with a `__partition`
/// column holding the partition key.
fn concat_partitions(dataset: &Dataset, columns: &[&str]) -> PolarsResult<LazyFrame> {
    let frames: Vec<LazyFrame> = dataset
        .partitions
        .iter()
        .map(|p| {
            let mut exprs: Vec<Expr> = columns.iter().map(|c| col(*c)).collect();
            exprs.push(lit(p.key.to_string()).alias("__partition"));
            if p.files.iter().any(|f| crate::io::store::is_remote(&f.path)) {
                // Files on an object store are fetched and decoded in memory (polars is built
                // without its own cloud readers).
                let mut frames = Vec::with_capacity(p.files.len());
                for f in &p.files {
                    let bytes = crate::io::store::read(&f.path)
                        .map_err(|e| PolarsError::ComputeError(e.to_string().into()))?
                        .unwrap_or_default();
                    let frame = ParquetReader::new(std::io::Cursor::new(bytes))
                        .with_columns(Some(columns.iter().map(|c| (*c).to_owned()).collect()))
                        .finish()?;
                    frames.push(frame.lazy().select(exprs.clone()));
                }
                return concat(frames, UnionArgs::default());
            }
            let paths: Vec<PlRefPath> = p
                .files
                .iter()
                .map(|f| PlRefPath::new(f.path.to_string_lossy().as_ref()))
                .collect();
            let args = ScanArgsParquet {
                hive_options: HiveOptions::new_disabled(),
                ..ScanArgsParquet::default()
            };
            Ok(LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)?.select(exprs))
        })
        .collect::<PolarsResult<_>>()?;
    concat(frames, UnionArgs::default())
}

fn comb2(x: u64) -> f64 {
    let x = x as f64;
    x * (x - 1.0) / 2.0
}

/// Scores from a contingency table `(cluster, gold) → count`.
pub fn scores(key: String, table: &BTreeMap<(i32, String), u64>) -> Scores {
    let mut by_cluster: BTreeMap<i32, u64> = BTreeMap::new();
    let mut by_gold: BTreeMap<&str, u64> = BTreeMap::new();
    let mut cluster_max: BTreeMap<i32, u64> = BTreeMap::new();
    for ((c, g), &n) in table {
        *by_cluster.entry(*c).or_default() += n;
        *by_gold.entry(g.as_str()).or_default() += n;
        let m = cluster_max.entry(*c).or_default();
        *m = (*m).max(n);
    }
    let n: u64 = by_cluster.values().sum();
    let nf = n as f64;
    let entropy = |counts: &mut dyn Iterator<Item = u64>| -> f64 {
        counts
            .filter(|&c| c > 0)
            .map(|c| {
                let p = c as f64 / nf;
                -p * p.ln()
            })
            .sum()
    };
    let h_cluster = entropy(&mut by_cluster.values().copied());
    let h_gold = entropy(&mut by_gold.values().copied());
    let mi: f64 = table
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|((c, g), &nij)| {
            let nij = nij as f64;
            nij / nf * (nf * nij / (by_cluster[c] as f64 * by_gold[g.as_str()] as f64)).ln()
        })
        .sum();
    let nmi = if h_cluster + h_gold == 0.0 {
        1.0
    } else {
        (mi / ((h_cluster + h_gold) / 2.0)).clamp(0.0, 1.0)
    };
    let sum_ij: f64 = table.values().map(|&v| comb2(v)).sum();
    let sum_a: f64 = by_cluster.values().map(|&v| comb2(v)).sum();
    let sum_b: f64 = by_gold.values().map(|&v| comb2(v)).sum();
    let expected = sum_a * sum_b / comb2(n).max(1.0);
    let max_index = (sum_a + sum_b) / 2.0;
    let ari = if max_index == expected {
        1.0
    } else {
        (sum_ij - expected) / (max_index - expected)
    };
    Scores {
        key,
        n_docs: n,
        n_clusters: by_cluster.len(),
        n_gold_labels: by_gold.len(),
        nmi,
        ari,
        purity: cluster_max.values().sum::<u64>() as f64 / nf,
        largest_cluster: by_cluster.values().copied().max().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[(i32, &str, u64)]) -> BTreeMap<(i32, String), u64> {
        rows.iter()
            .map(|&(c, g, n)| ((c, g.to_owned()), n))
            .collect()
    }

    #[test]
    fn perfect_clustering_scores_one() {
        let s = scores("x".into(), &table(&[(0, "a", 5), (1, "b", 3)]));
        assert!((s.nmi - 1.0).abs() < 1e-12);
        assert!((s.ari - 1.0).abs() < 1e-12);
        assert_eq!(s.purity, 1.0);
        assert_eq!(s.largest_cluster, 5);
    }

    #[test]
    fn matches_scikit_learn_on_a_small_case() {
        // labels_true = [a a a b b b], labels_pred = [0 0 1 1 2 2]:
        // sklearn gives NMI 0.5158037429793889 and ARI 0.24242424242424246.
        let s = scores(
            "x".into(),
            &table(&[(0, "a", 2), (1, "a", 1), (1, "b", 1), (2, "b", 2)]),
        );
        assert!((s.nmi - 0.515_803_742_979_388_9).abs() < 1e-9, "{}", s.nmi);
        assert!((s.ari - 0.242_424_242_424_242_46).abs() < 1e-9, "{}", s.ari);
        assert!((s.purity - 5.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn independent_clustering_scores_zero_nmi() {
        let s = scores(
            "x".into(),
            &table(&[(0, "a", 1), (0, "b", 1), (1, "a", 1), (1, "b", 1)]),
        );
        assert!(s.nmi.abs() < 1e-12);
        assert!(s.ari <= 0.0);
    }
}
