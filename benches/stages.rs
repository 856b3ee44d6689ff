//! One benchmark per pipeline stage, on real text with fixed seeds: tokenise, vocabulary and
//! TF-IDF, one k-means round, keywords, and writing a labels table as Parquet. Throughput is
//! reported against the work each stage must do (bytes of text, or non-zeros × k for a round).
//!
//! Uses 20 Newsgroups from `../shared/data/20newsgroups` when present (18,846 documents,
//! 33 MB of text), otherwise the sample in `data/sample`.
//!
//! cargo bench --bench stages

// Tests, benchmarks and examples may use `std::fs` directly (clippy.toml is for the library).
#![allow(clippy::disallowed_methods)]

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use textcluster::cluster::{self, ClusterParams};
use textcluster::io::write::write_parquet;
use textcluster::io::{Documents, PartitionFilter, read_partition};
use textcluster::label::{KeywordParams, keywords};
use textcluster::output::tables::{Table, batch, f32s, i32s, strings};
use textcluster::text::{TokenBuffer, VectorizeParams, fit_transform, is_numeric};

fn documents() -> Vec<Documents> {
    let shared = Path::new("../shared/data/20newsgroups");
    let root = if shared.exists() {
        shared
    } else {
        Path::new("data/sample")
    };
    let dataset = textcluster::io::Dataset::discover(
        &textcluster::io::Selection::all(root),
        &PartitionFilter::default(),
        "doc_id",
        "text",
        false,
    )
    .unwrap();
    dataset
        .partitions
        .iter()
        .map(|p| read_partition(p, "doc_id", "text").unwrap())
        .collect()
}

fn stages(c: &mut Criterion) {
    let docs = documents();
    let texts: Vec<&str> = docs
        .iter()
        .flat_map(|d| d.texts.iter().map(|t| t.unwrap_or_default()))
        .collect();
    let ids: Vec<&str> = docs
        .iter()
        .flat_map(|d| d.ids.iter().map(|t| t.unwrap_or_default()))
        .collect();
    let bytes: u64 = texts.iter().map(|t| t.len() as u64).sum();
    let params = VectorizeParams::default().check().unwrap();

    let mut group = c.benchmark_group("stages");
    group.sample_size(10);

    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("tokenise (one thread)", |b| {
        let analyzer = params.analyzer();
        let mut buffer = TokenBuffer::default();
        b.iter(|| {
            let mut n = 0usize;
            for t in &texts {
                analyzer.for_each_token(t, &mut buffer, |_| n += 1);
            }
            n
        })
    });
    group.bench_function("vocabulary and TF-IDF", |b| {
        b.iter(|| fit_transform(&params, &texts))
    });

    let vectorized = fit_transform(&params, &texts);
    let x = &vectorized.matrix;
    // k = 20 holds the scores in registers; k = 100 mixes dense rows and posting lists.
    for k in [20, 100] {
        let one_round = ClusterParams {
            n_init: 1,
            max_iter: 1,
            ..ClusterParams::with_k(k)
        }
        .check()
        .unwrap();
        // Init (cheap) plus two assignments and one update: 2 · nnz · k multiply-adds.
        group.throughput(Throughput::Elements(2 * x.nnz() as u64 * k as u64));
        group.bench_function(format!("k-means round (k = {k})"), |b| {
            b.iter(|| cluster::fit(x, &one_round, &mut ChaCha8Rng::seed_from_u64(0)))
        });
    }

    let k = 20;
    let full = ClusterParams::with_k(k).check().unwrap();
    let fit = cluster::fit(x, &full, &mut ChaCha8Rng::seed_from_u64(0));
    let keyword_params = KeywordParams::default().check().unwrap();
    group.throughput(Throughput::Elements(k as u64));
    group.bench_function("keywords (k = 20)", |b| {
        b.iter(|| {
            let df = vectorized.vocabulary.df();
            let eligible = |j: usize| !is_numeric(vectorized.vocabulary.term(j));
            keywords(
                x,
                &fit.labels,
                fit.n_clusters,
                df,
                eligible,
                &keyword_params,
            )
        })
    });

    let dir = tempfile::tempdir().unwrap();
    let labels = batch(
        Table::Labels,
        vec![
            strings(ids.iter()),
            i32s(fit.labels.clone()),
            f32s(fit.similarity.clone()),
        ],
    )
    .unwrap();
    group.throughput(Throughput::Elements(ids.len() as u64));
    group.bench_function("write labels Parquet (zstd)", |b| {
        b.iter(|| write_parquet(&dir.path().join("labels.parquet"), &labels).unwrap())
    });
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
