//! The output tables: their names, Arrow schemas and builders. A table is a directory under
//! the output path (or a model directory), partitioned like the input; [`Table::schema`] is the
//! contract a reader relies on, and every batch textcluster writes is built here.
//!
//! Everything here is in memory; `job` writes the batches to staging and commits them.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Float32Array, Int32Array, Int64Array, RecordBatch, StringArray,
    StringViewArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::cluster::{self, Centroids, KMeansFit};
use crate::io::OutputError;
use crate::label::Keyword;
use crate::text::Vocabulary;

/// An output table; each is a directory under the output path, partitioned like the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `doc_id, cluster, similarity, second_cluster, second_similarity, model_id`: one row
    /// per document with a text.
    Labels,
    /// `cluster, size, term, weight`: the non-zero centroid entries, long format.
    Centroids,
    /// `cluster, rank, term, score, coverage, precision`: the keywords of each cluster.
    Keywords,
    /// `cluster_a, cluster_b, cosine`: pairwise centroid cosine, `cluster_a < cluster_b`.
    Similarity,
    /// `cluster, n_docs, mean_similarity, share_below_fit_p05, model_id`: per partition, one
    /// row per cluster of the model its labels were assigned with.
    Clusters,
    /// `term_id, term, df, idf`: a model's vocabulary in term-id order (models only).
    Vocabulary,
}

impl Table {
    /// Every table of an output partition, in commit order.
    pub const ALL: [Table; 5] = [
        Table::Labels,
        Table::Clusters,
        Table::Centroids,
        Table::Keywords,
        Table::Similarity,
    ];

    /// The table's directory name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Labels => "labels",
            Table::Centroids => "centroids",
            Table::Keywords => "keywords",
            Table::Similarity => "similarity",
            Table::Clusters => "clusters",
            Table::Vocabulary => "vocabulary",
        }
    }

    /// The table's Arrow schema. No column is nullable.
    pub fn schema(self) -> SchemaRef {
        let f = |name: &str, t: DataType| Field::new(name, t, false);
        let fields = match self {
            Table::Labels => vec![
                f("doc_id", DataType::Utf8),
                f("cluster", DataType::Int32),
                f("similarity", DataType::Float32),
                f("second_cluster", DataType::Int32),
                f("second_similarity", DataType::Float32),
                f("model_id", DataType::Utf8),
            ],
            Table::Clusters => vec![
                f("cluster", DataType::Int32),
                f("n_docs", DataType::Int64),
                f("mean_similarity", DataType::Float32),
                f("share_below_fit_p05", DataType::Float32),
                f("model_id", DataType::Utf8),
            ],
            Table::Vocabulary => vec![
                f("term_id", DataType::Int32),
                f("term", DataType::Utf8),
                f("df", DataType::Int64),
                f("idf", DataType::Float32),
            ],
            Table::Centroids => vec![
                f("cluster", DataType::Int32),
                f("size", DataType::Int64),
                f("term", DataType::Utf8),
                f("weight", DataType::Float32),
            ],
            Table::Keywords => vec![
                f("cluster", DataType::Int32),
                f("rank", DataType::Int32),
                f("term", DataType::Utf8),
                f("score", DataType::Float32),
                f("coverage", DataType::Float32),
                f("precision", DataType::Float32),
            ],
            Table::Similarity => vec![
                f("cluster_a", DataType::Int32),
                f("cluster_b", DataType::Int32),
                f("cosine", DataType::Float32),
            ],
        };
        Arc::new(Schema::new(fields))
    }
}

impl crate::io::TableKind for Table {
    fn name(self) -> &'static str {
        Table::name(self)
    }

    fn schema(self) -> SchemaRef {
        Table::schema(self)
    }
}

/// Builds a batch of `table` from its columns, in schema order.
pub fn batch(
    table: Table,
    columns: Vec<ArrayRef>,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    RecordBatch::try_new(table.schema(), columns)
}

/// Column helpers, so callers need not name arrow-rs array types.
pub fn i32s(v: Vec<i32>) -> ArrayRef {
    Arc::new(Int32Array::from(v))
}
/// See [`i32s`].
pub fn i64s(v: Vec<i64>) -> ArrayRef {
    Arc::new(Int64Array::from(v))
}
/// See [`i32s`].
pub fn f32s(v: Vec<f32>) -> ArrayRef {
    Arc::new(Float32Array::from(v))
}
/// See [`i32s`].
pub fn strings<S: AsRef<str>>(v: impl IntoIterator<Item = S>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

fn batch_error(table: Table) -> impl FnOnce(arrow::error::ArrowError) -> OutputError {
    move |source| OutputError::Batch {
        table: table.name(),
        source,
    }
}

/// One batch of labels: per document its id, nearest cluster and runner-up (`-1` and 0 for a
/// document with no known term), and the model they come from.
pub struct LabelColumns {
    pub cluster: Vec<i32>,
    pub similarity: Vec<f32>,
    pub second_cluster: Vec<i32>,
    pub second_similarity: Vec<f32>,
}

impl LabelColumns {
    /// The labels of rows `range` of a nearest-centroid assignment.
    pub fn of(nearest: &cluster::Nearest, range: std::ops::Range<usize>) -> Self {
        Self {
            cluster: nearest.labels[range.clone()].to_vec(),
            similarity: nearest.similarity[range.clone()].to_vec(),
            second_cluster: nearest.second[range.clone()].to_vec(),
            second_similarity: nearest.second_similarity[range].to_vec(),
        }
    }
}

/// The labels table of documents `ids`.
pub fn labels(
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
pub struct ClusterSums {
    pub n_docs: u64,
    similarity: f64,
    pub below_p05: u64,
}

impl ClusterSums {
    /// `k` empty clusters.
    pub fn new(k: usize) -> Vec<Self> {
        vec![Self::default(); k]
    }

    /// Adds each labelled document (`-1`: none) with its similarity, against each cluster's
    /// fit-time 5th percentile `p05`.
    pub fn add(sums: &mut [Self], labels: &[i32], similarity: &[f32], p05: &[f32]) {
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
pub fn clusters(sums: &[ClusterSums], model_id: &str) -> Result<RecordBatch, OutputError> {
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

/// The non-zero centroid entries of `fit`, cluster by cluster, by increasing term id.
pub fn centroids(fit: &KMeansFit, vocabulary: &Vocabulary) -> Result<RecordBatch, OutputError> {
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

/// The keywords of every cluster, by rank; `term` names a keyword's term index.
pub fn keywords<'t>(
    keywords: &[Keyword],
    term: impl Fn(usize) -> &'t str,
) -> Result<RecordBatch, OutputError> {
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
pub fn similarity(centroids: &Centroids) -> Result<RecordBatch, OutputError> {
    let table = cluster::similarity_table(centroids);
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

/// The `vocabulary` table of a model: its terms in term-id order, with their document
/// frequencies and idf.
pub fn vocabulary(terms: &[String], df: &[u32], idf: &[f32]) -> Result<RecordBatch, OutputError> {
    batch(
        Table::Vocabulary,
        vec![
            i32s((0..terms.len() as i32).collect()),
            strings(terms),
            i64s(df.iter().map(|&d| i64::from(d)).collect()),
            f32s(idf.to_vec()),
        ],
    )
    .map_err(batch_error(Table::Vocabulary))
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, StringViewArray};
    use arrow::datatypes::{Float32Type, Int32Type};
    use rand::SeedableRng;

    use super::*;

    const TEXTS: [&str; 5] = [
        "apple banana apple",
        "banana apple fruit",
        "engine wheel road",
        "road engine car",
        "",
    ];

    fn fitted() -> (crate::text::Vectorized, KMeansFit) {
        let vectorize: crate::text::VectorizeParams =
            toml::from_str("min_df = 1\nmax_df = 1.0\nstopwords = \"none\"").unwrap();
        let vectorized = crate::text::fit_transform(&vectorize.check().unwrap(), &TEXTS);
        let params: cluster::ClusterParams = toml::from_str("k = 2\nn_init = 1").unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let fit = cluster::fit(&vectorized.matrix, &params.check().unwrap(), &mut rng);
        (vectorized, fit)
    }

    #[test]
    fn labels_hold_one_row_per_document_with_its_runner_up_and_model() {
        let (vectorized, fit) = fitted();
        let nearest = cluster::nearest(&vectorized.matrix, &fit.centroids);
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
        let (vectorized, fit) = fitted();
        let k = fit.n_clusters;
        assert_eq!(k, 2);
        let nnz: usize = (0..k).map(|i| fit.centroids.nnz(i)).sum();
        let b = centroids(&fit, &vectorized.vocabulary).unwrap();
        assert_eq!((b.num_rows(), b.schema()), (nnz, Table::Centroids.schema()));
        let terms: Vec<&str> = b.column(2).as_string::<i32>().iter().flatten().collect();
        assert!(
            terms.contains(&"apple") && terms.contains(&"road"),
            "{terms:?}"
        );
        let s = similarity(&fit.centroids).unwrap();
        assert_eq!(s.num_rows(), k * (k - 1) / 2);
        assert!(s.column(2).as_primitive::<Float32Type>().value(0).abs() < 1e-6);
        let words = [crate::label::Keyword {
            cluster: 1,
            rank: 0,
            term_idx: 0,
            score: 0.5,
            coverage: 1.0,
            precision: 0.5,
        }];
        let kw = keywords(&words, |j| vectorized.vocabulary.term(j)).unwrap();
        assert_eq!(kw.schema(), Table::Keywords.schema());
        assert_eq!(kw.num_rows(), 1);
    }

    #[test]
    fn every_table_is_written_with_its_declared_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels/dt=x/part-00000.parquet");
        let b = batch(
            Table::Labels,
            vec![
                strings(["a", "b"]),
                i32s(vec![0, -1]),
                f32s(vec![0.5, 0.0]),
                i32s(vec![1, -1]),
                f32s(vec![0.25, 0.0]),
                strings(["m1", "m1"]),
            ],
        )
        .unwrap();
        crate::io::write::write_parquet(&path, &b).unwrap();
        let file = fs_err::File::open(&path).unwrap().into_parts().0;
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        // `model_id` repeats one value per file: stored as a dictionary page.
        let model_id = builder.metadata().row_group(0).column(5);
        assert_eq!(model_id.column_path().string(), "model_id");
        assert!(
            model_id.dictionary_page_offset().is_some(),
            "model_id is not dictionary-encoded"
        );
        assert_eq!(builder.schema().as_ref(), Table::Labels.schema().as_ref());
        let read: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
        assert_eq!(read, vec![b]);
    }
}
