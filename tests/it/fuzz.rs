//! Arbitrary bytes as a Parquet file and arbitrary directory names as partitions: listing and
//! reading never panic or hang, and the binary exits with a documented code.
//!
//! `PROPTEST_CASES=N cargo test --test it fuzz` runs a longer campaign.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use textcluster::io::{Dataset, PartitionFilter, read_partition};

use crate::util::*;

/// Cases per property: `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small valid Parquet file of documents.
fn valid_file() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.parquet");
    let ids: Vec<String> = (0..8).map(|i| format!("d{i}")).collect();
    let texts: Vec<Option<String>> = (0..8).map(|i| Some(doc(i % 3, i))).collect();
    write_docs(&path, &ids, &texts);
    std::fs::read(path).unwrap()
}

/// File contents: random bytes, or a valid file truncated and with bytes overwritten.
fn contents() -> impl Strategy<Value = Vec<u8>> {
    let valid = valid_file();
    let n = valid.len();
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        (
            proptest::collection::vec((0..n, any::<u8>()), 0..16),
            0..=n,
            any::<bool>()
        )
            .prop_map(move |(edits, cut, truncate)| {
                let mut bytes = valid.clone();
                for (i, b) in edits {
                    bytes[i] = b;
                }
                if truncate {
                    bytes.truncate(cut);
                }
                bytes
            }),
    ]
}

/// Directory names: `key=value` forms, dots, and arbitrary bytes (no `/` or NUL, which no
/// name can hold).
fn dir_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"dt=2018-06-01".to_vec()),
        Just(b"..".to_vec()),
        Just(b"...".to_vec()),
        Just(b"dt=..".to_vec()),
        Just(b"dt=\xff".to_vec()),
        proptest::collection::vec(
            any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0),
            1..12
        ),
    ]
}

/// Writes `files` (directory name, contents) under `root`; names that cannot be created
/// (`..` is the parent) land where the file system puts them.
fn build(root: &Path, files: &[(Vec<u8>, Vec<u8>)]) {
    std::fs::create_dir_all(root).unwrap();
    for (i, (dir, bytes)) in files.iter().enumerate() {
        let dir = root.join(std::ffi::OsStr::from_bytes(dir));
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::write(dir.join(format!("part-{i}.parquet")), bytes);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    /// Listing, footer checks and reads return a value or a typed error, quickly.
    #[test]
    fn listing_and_reading_arbitrary_files_never_panic(
        files in proptest::collection::vec((dir_name(), contents()), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("in");
        build(&root, &files);
        let started = Instant::now();
        if let Ok(dataset) = Dataset::discover(&textcluster::io::Selection::all(&root), &PartitionFilter::default(), "doc_id", "text", false) {
            for p in dataset.partitions.iter().filter(|p| p.problem.is_none()) {
                if let Err(e) = read_partition(p, "doc_id", "text") {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
        prop_assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(12) / 4 + 9, ..ProptestConfig::default() })]

    /// The whole binary on such input exits with a documented code, within a time bound.
    #[test]
    fn the_binary_exits_with_a_documented_code(
        files in proptest::collection::vec((dir_name(), contents()), 1..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("in");
        build(&root, &files);
        let job = spec(dir.path(), &root, &dir.path().join("out"), 2);
        let started = Instant::now();
        let run = textcluster(&["run", job.to_str().unwrap()]);
        let code = run.status.code();
        prop_assert!(
            matches!(code, Some(0..=3)),
            "exit {:?}: {}", code, String::from_utf8_lossy(&run.stderr)
        );
        let stderr = String::from_utf8_lossy(&run.stderr);
        prop_assert!(!stderr.contains("panicked"), "{}", stderr);
        prop_assert!(started.elapsed() < Duration::from_secs(60));
    }
}
