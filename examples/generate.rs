//! A deterministic generator of large, realistic corpora for scale measurements.
//!
//! It reads a labelled source corpus (hive-partitioned Parquet with `doc_id`, `text`, `label`),
//! cuts every document into sentences and pools the sentences by label. Each generated
//! document copies the label and the sentence count of a source document drawn at random, and
//! fills those sentences with sentences drawn from that label's pool. So topics keep their
//! vocabulary and the corpus keeps its document lengths and word statistics, while every
//! document is new. Output: `OUT/dt=YYYY-MM-DD/part-00000.parquet` with `doc_id`, `text`,
//! `label` (zstd), one partition per day from 2018-01-01. The same arguments give the same
//! bytes, whatever the thread count.
//!
//! ```text
//! cargo run --release --example generate -- ../shared/data/20newsgroups /tmp/gen-1m 1000000 100 [SEED]
//! ```

// Tests, benchmarks and examples may use `std::fs` directly (clippy.toml is for the library).
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use textcluster::io::{Dataset, PartitionFilter, read_files};

/// Sentences are cut after `.`, `!`, `?` or a blank line, and trimmed.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for i in 0..bytes.len() {
        let end = match bytes[i] {
            b'.' | b'!' | b'?' => i + 1,
            b'\n' if i + 1 < bytes.len() && bytes[i + 1] == b'\n' => i + 1,
            _ => continue,
        };
        if end > start {
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let tail = text[start..].trim();
    if !tail.is_empty() {
        out.push(tail);
    }
    out
}

struct Source {
    /// Sentence pools, one per label.
    labels: Vec<String>,
    pools: Vec<Vec<String>>,
    /// Per source document: (label index, sentence count).
    docs: Vec<(usize, usize)>,
}

fn load(root: &Path) -> anyhow::Result<Source> {
    let dataset = Dataset::discover(
        &textcluster::io::Selection::all(root),
        &PartitionFilter::default(),
        "doc_id",
        "text",
        false,
    )?;
    let mut source = Source {
        labels: Vec::new(),
        pools: Vec::new(),
        docs: Vec::new(),
    };
    for partition in &dataset.partitions {
        let paths: Vec<&Path> = partition.files.iter().map(|f| f.path.as_path()).collect();
        let texts = read_files(&paths, "source", "doc_id", "text")?;
        let labels = read_files(&paths, "source", "doc_id", "label")
            .context("the source needs a string `label` column")?;
        for i in 0..texts.len() {
            if texts.texts.is_null(i) || labels.texts.is_null(i) {
                continue;
            }
            let label = labels.texts.value(i);
            let l = match source.labels.iter().position(|x| x == label) {
                Some(l) => l,
                None => {
                    source.labels.push(label.to_owned());
                    source.pools.push(Vec::new());
                    source.labels.len() - 1
                }
            };
            let cut = sentences(texts.texts.value(i));
            if cut.is_empty() {
                continue;
            }
            source.docs.push((l, cut.len()));
            source.pools[l].extend(cut.into_iter().map(str::to_owned));
        }
    }
    anyhow::ensure!(
        !source.docs.is_empty(),
        "no documents under {}",
        root.display()
    );
    Ok(source)
}

fn day(p: usize) -> String {
    // Days from 2018-01-01, as a civil date (proleptic Gregorian).
    let mut days = p as i64 + 17532; // 2018-01-01 is day 17,532 since 1970-01-01.
    days += 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn write_partition(
    source: &Source,
    out: &Path,
    p: usize,
    first: usize,
    count: usize,
    seed: u64,
) -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (p as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (mut ids, mut texts, mut labels) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    for i in 0..count {
        let (l, n) = source.docs[rng.random_range(0..source.docs.len())];
        let pool = &source.pools[l];
        let mut text = String::new();
        for s in 0..n {
            if s > 0 {
                text.push(' ');
            }
            text.push_str(&pool[rng.random_range(0..pool.len())]);
        }
        ids.push(format!("g{:09}", first + i));
        texts.push(text);
        labels.push(source.labels[l].clone());
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("doc_id", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("label", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(texts)),
            Arc::new(StringArray::from(labels)),
        ],
    )?;
    let dir = out.join(format!("dt={}", day(p)));
    std::fs::create_dir_all(&dir)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build();
    let mut writer = ArrowWriter::try_new(
        std::fs::File::create(dir.join("part-00000.parquet"))?,
        schema,
        Some(props),
    )?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: generate SOURCE OUT N_DOCS N_PARTITIONS [SEED]";
    anyhow::ensure!((4..=5).contains(&args.len()), usage);
    let (source_root, out) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]));
    let n_docs: usize = args[2].parse().context(usage)?;
    let n_parts: usize = args[3].parse().context(usage)?;
    let seed: u64 = args
        .get(4)
        .map(|s| s.parse())
        .transpose()
        .context(usage)?
        .unwrap_or(0);
    anyhow::ensure!(n_parts >= 1, "N_PARTITIONS must be at least 1");
    anyhow::ensure!(
        !out.exists(),
        "{} exists; pick a new output path",
        out.display()
    );
    let source = load(&source_root)?;
    (0..n_parts).into_par_iter().try_for_each(|p| {
        let first = n_docs * p / n_parts;
        let count = n_docs * (p + 1) / n_parts - first;
        write_partition(&source, &out, p, first, count, seed)
    })?;
    eprintln!(
        "wrote {n_docs} documents in {n_parts} partitions to {} ({} labels, {} source documents)",
        out.display(),
        source.labels.len(),
        source.docs.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_and_days() {
        assert_eq!(sentences("A b. C d!\n\nE f"), vec!["A b.", "C d!", "E f"]);
        assert_eq!(day(0), "2018-01-01");
        assert_eq!(day(59), "2018-03-01");
        assert_eq!(day(365), "2019-01-01");
    }
}
