//! Initialisation cost: `similar_cut` against `kmeans++` and `random`, on real TF-IDF rows.
//!
//! Uses 20 Newsgroups from `../shared/data/20newsgroups` when present (18,846 documents),
//! otherwise the sample in `data/sample`. Fixed seeds.
//!
//! cargo bench --bench init

// Tests, benchmarks and examples may use `std::fs` directly (clippy.toml is for the library).
#![allow(clippy::disallowed_methods)]

use std::path::Path;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use textcluster::cluster::InitMethod;
use textcluster::cluster::init::choose_seeds;
use textcluster::io::{Dataset, PartitionFilter, read_partition};
use textcluster::sparse::{self, Csr};
use textcluster::text::{VectorizeParams, fit_transform};

fn corpus() -> Csr {
    let shared = Path::new("../shared/data/20newsgroups");
    let root = if shared.exists() {
        shared
    } else {
        Path::new("data/sample")
    };
    let dataset = Dataset::discover(
        &textcluster::io::Selection::all(root),
        &PartitionFilter::default(),
        "doc_id",
        "text",
        false,
    )
    .unwrap();
    let docs: Vec<_> = dataset
        .partitions
        .iter()
        .map(|p| read_partition(p, "doc_id", "text").unwrap())
        .collect();
    let texts: Vec<&str> = docs
        .iter()
        .flat_map(|d| d.texts.iter().map(|t| t.unwrap_or_default()))
        .collect();
    fit_transform(&VectorizeParams::default().check().unwrap(), &texts).matrix
}

fn bench_init(c: &mut Criterion) {
    let x = corpus();
    let candidates: Vec<usize> = (0..x.rows())
        .filter(|&i| sparse::row(&x, i).nnz() > 0)
        .collect();
    let mut group = c.benchmark_group(format!("init_{}_docs", x.rows()));
    group.sample_size(10);
    for k in [20, 100] {
        for (name, method) in [
            ("similar_cut", InitMethod::SimilarCut),
            ("kmeans++", InitMethod::KMeansPlusPlus),
            ("random", InitMethod::Random),
        ] {
            group.bench_with_input(BenchmarkId::new(name, k), &k, |b, &k| {
                b.iter(|| {
                    let mut rng = ChaCha8Rng::seed_from_u64(0);
                    choose_seeds(&x, &candidates, k, method, 3.0, 0.5, &mut rng)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_init);
criterion_main!(benches);
