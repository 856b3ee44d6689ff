//! A clustering as record batches: the rows of the `labels`, `centroids`, `keywords` and
//! `similarity` tables, in the schemas of [`crate::io::Table`].
//!
//! Everything here is in memory; the runner writes the batches to staging and commits them.

use arrow::array::{Array, RecordBatch, StringArray, StringViewArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;

use super::pipeline::Clustered;
use crate::cluster;
use crate::io::write::{batch, f32s, i32s, i64s, strings};
use crate::io::{OutputError, Table};

fn batch_error(table: Table) -> impl FnOnce(arrow::error::ArrowError) -> OutputError {
    move |source| OutputError::Batch {
        table: table.name(),
        source,
    }
}

/// One batch of labels: per document its id, nearest cluster and runner-up (`-1` and 0 for a
/// document with no known term), and the model they come from.
pub(super) struct LabelColumns {
    pub(super) cluster: Vec<i32>,
    pub(super) similarity: Vec<f32>,
    pub(super) second_cluster: Vec<i32>,
    pub(super) second_similarity: Vec<f32>,
}

impl LabelColumns {
    /// The labels of rows `range` of a nearest-centroid assignment.
    pub(super) fn of(nearest: &cluster::Nearest, range: std::ops::Range<usize>) -> Self {
        Self {
            cluster: nearest.labels[range.clone()].to_vec(),
            similarity: nearest.similarity[range.clone()].to_vec(),
            second_cluster: nearest.second[range.clone()].to_vec(),
            second_similarity: nearest.second_similarity[range].to_vec(),
        }
    }
}

/// The labels table of documents `ids`.
pub(super) fn labels(
    ids: &StringViewArray,
    columns: LabelColumns,
    model_id: &str,
) -> Result<RecordBatch, OutputError> {
    let n = ids.len();
    let ids = cast(ids, &DataType::Utf8).map_err(batch_error(Table::Labels))?;
    debug_assert!(ids.as_any().downcast_ref::<StringArray>().is_some());
    batch(
        Table::Labels,
        vec![
            ids,
            i32s(columns.cluster),
            f32s(columns.similarity),
            i32s(columns.second_cluster),
            f32s(columns.second_similarity),
            strings(std::iter::repeat_n(model_id, n)),
        ],
    )
    .map_err(batch_error(Table::Labels))
}

/// Per-cluster running sums of a partition's labels: the rows of its `clusters` table.
#[derive(Debug, Default, Clone)]
pub(super) struct ClusterSums {
    pub(super) n_docs: u64,
    similarity: f64,
    pub(super) below_p05: u64,
}

impl ClusterSums {
    /// `k` empty clusters.
    pub(super) fn new(k: usize) -> Vec<Self> {
        vec![Self::default(); k]
    }

    /// Adds each labelled document (`-1`: none) with its similarity, against each cluster's
    /// fit-time 5th percentile `p05`.
    pub(super) fn add(sums: &mut [Self], labels: &[i32], similarity: &[f32], p05: &[f32]) {
        for (&l, &s) in labels.iter().zip(similarity) {
            if l >= 0 {
                let c = &mut sums[l as usize];
                c.n_docs += 1;
                c.similarity += f64::from(s);
                c.below_p05 += u64::from(s < p05[l as usize]);
            }
        }
    }

    fn mean_similarity(&self) -> f32 {
        if self.n_docs == 0 {
            0.0
        } else {
            (self.similarity / self.n_docs as f64) as f32
        }
    }

    fn share_below_p05(&self) -> f32 {
        if self.n_docs == 0 {
            0.0
        } else {
            self.below_p05 as f32 / self.n_docs as f32
        }
    }
}

/// The `clusters` table of one partition: one row per cluster of the model.
pub(super) fn clusters(sums: &[ClusterSums], model_id: &str) -> Result<RecordBatch, OutputError> {
    batch(
        Table::Clusters,
        vec![
            i32s((0..sums.len() as i32).collect()),
            i64s(sums.iter().map(|c| c.n_docs as i64).collect()),
            f32s(sums.iter().map(ClusterSums::mean_similarity).collect()),
            f32s(sums.iter().map(ClusterSums::share_below_p05).collect()),
            strings(std::iter::repeat_n(model_id, sums.len())),
        ],
    )
    .map_err(batch_error(Table::Clusters))
}

/// The non-zero centroid entries, cluster by cluster, by increasing term id.
pub(super) fn centroids(c: &Clustered) -> Result<RecordBatch, OutputError> {
    let (fit, vocabulary) = (&c.fit, &c.vectorized.vocabulary);
    let (mut cl, mut size, mut term, mut weight) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for cluster in 0..fit.n_clusters {
        let row = fit.centroids.row(cluster);
        for (&j, &w) in row.indices.iter().zip(row.values) {
            cl.push(cluster as i32);
            size.push(fit.sizes[cluster] as i64);
            term.push(vocabulary.term(j as usize));
            weight.push(w);
        }
    }
    batch(
        Table::Centroids,
        vec![i32s(cl), i64s(size), strings(term), f32s(weight)],
    )
    .map_err(batch_error(Table::Centroids))
}

/// The keywords of every cluster, by rank.
pub(super) fn keywords(c: &Clustered) -> Result<RecordBatch, OutputError> {
    let (keywords, vocabulary) = (&c.keywords, &c.vectorized.vocabulary);
    let term = |j: usize| match &c.keyword_terms {
        Some(words) => words[j].as_str(),
        None => vocabulary.term(j),
    };
    batch(
        Table::Keywords,
        vec![
            i32s(keywords.iter().map(|k| k.cluster as i32).collect()),
            i32s(keywords.iter().map(|k| k.rank as i32).collect()),
            strings(keywords.iter().map(|k| term(k.term_idx))),
            f32s(keywords.iter().map(|k| k.score).collect()),
            f32s(keywords.iter().map(|k| k.coverage).collect()),
            f32s(keywords.iter().map(|k| k.precision).collect()),
        ],
    )
    .map_err(batch_error(Table::Keywords))
}

/// Pairwise centroid cosine, `cluster_a < cluster_b`.
pub(super) fn similarity(c: &Clustered) -> Result<RecordBatch, OutputError> {
    let table = cluster::similarity_table(&c.fit.centroids);
    batch(
        Table::Similarity,
        vec![
            i32s(table.iter().map(|r| r.0).collect()),
            i32s(table.iter().map(|r| r.1).collect()),
            f32s(table.iter().map(|r| r.2).collect()),
        ],
    )
    .map_err(batch_error(Table::Similarity))
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, StringViewArray};
    use arrow::datatypes::{Float32Type, Int32Type};

    use super::*;
    use crate::io::PartitionKey;
    use crate::job::manifest::StageSeconds;
    use crate::job::pipeline::cluster_vectorized;
    use crate::job::{JobPlan, JobSpec};

    const SPEC: &str = "[input]\npath = \"in\"\n[vectorize]\nmin_df = 1\nmax_df = 1.0\n\
                        stopwords = \"none\"\n[cluster]\nk = 2\nn_init = 1\n[keywords]\nmin_df = 1\n\
                        [output]\npath = \"out\"\n";
    const TEXTS: [&str; 5] = [
        "apple banana apple",
        "banana apple fruit",
        "engine wheel road",
        "road engine car",
        "",
    ];

    fn clustered() -> (JobPlan, Clustered) {
        let spec = JobSpec::parse(std::path::Path::new("job.toml"), SPEC, &[] as &[&str]).unwrap();
        let plan = JobPlan {
            vectorize: spec.vectorize.check().unwrap(),
            cluster: spec.cluster.check().unwrap(),
            keywords: spec.keywords.check().unwrap(),
            dataset: crate::io::Dataset {
                root: "in".into(),
                partition_keys: vec!["dt".into()],
                partitions: Vec::new(),
            },
            spec,
        };
        let vectorized = crate::text::fit_transform(&plan.vectorize, &TEXTS);
        let key = PartitionKey(vec![("dt".into(), "a".into())]);
        let c = cluster_vectorized(&plan, None, key, vectorized, StageSeconds::default(), None);
        (plan, c)
    }

    #[test]
    fn labels_hold_one_row_per_document_with_its_runner_up_and_model() {
        let (_, c) = clustered();
        let nearest = cluster::nearest(&c.vectorized.matrix, &c.fit.centroids);
        // A partition holding the last three documents of the clustering.
        let ids = StringViewArray::from_iter_values(["c", "d", "e"]);
        let b = labels(&ids, LabelColumns::of(&nearest, 2..5), "m1").unwrap();
        assert_eq!(b.schema(), Table::Labels.schema());
        let cluster = b.column(1).as_primitive::<Int32Type>();
        assert_eq!(b.column(0).as_string::<i32>().value(2), "e");
        assert_eq!(cluster.values(), &nearest.labels[2..]);
        // The empty document is labelled -1 with similarity 0, and has no runner-up.
        assert_eq!(cluster.value(2), -1);
        assert_eq!(b.column(2).as_primitive::<Float32Type>().value(2), 0.0);
        assert_eq!(b.column(3).as_primitive::<Int32Type>().value(2), -1);
        // With two clusters the runner-up is the other one.
        let second = b.column(3).as_primitive::<Int32Type>();
        assert_eq!(second.value(0), 1 - cluster.value(0));
        assert!(
            b.column(4).as_primitive::<Float32Type>().value(0)
                <= b.column(2).as_primitive::<Float32Type>().value(0)
        );
        let model: Vec<&str> = b.column(5).as_string::<i32>().iter().flatten().collect();
        assert_eq!(model, ["m1"; 3]);
    }

    #[test]
    fn cluster_tables_follow_the_centroids() {
        let (_, c) = clustered();
        let k = c.fit.n_clusters;
        assert_eq!(k, 2);
        let nnz: usize = (0..k).map(|i| c.fit.centroids.nnz(i)).sum();
        let b = centroids(&c).unwrap();
        assert_eq!((b.num_rows(), b.schema()), (nnz, Table::Centroids.schema()));
        let terms: Vec<&str> = b.column(2).as_string::<i32>().iter().flatten().collect();
        assert!(
            terms.contains(&"apple") && terms.contains(&"road"),
            "{terms:?}"
        );
        let s = similarity(&c).unwrap();
        assert_eq!(s.num_rows(), k * (k - 1) / 2);
        assert!(s.column(2).as_primitive::<Float32Type>().value(0).abs() < 1e-6);
        let kw = keywords(&c).unwrap();
        assert_eq!(kw.schema(), Table::Keywords.schema());
        assert_eq!(kw.num_rows(), c.keywords.len());
        assert!(kw.num_rows() >= k);
    }
}
