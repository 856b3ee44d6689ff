//! Outputs are byte-identical whatever the thread count.

use crate::util::*;

fn run_with_threads(out: &std::path::Path, scope: &str, threads: &str) {
    run_sample(
        out,
        &[
            "--set",
            &format!("cluster.scope={scope}"),
            "--threads",
            threads,
        ],
    );
}

#[test]
fn one_and_two_threads_give_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    for scope in ["partition", "global"] {
        let (a, b) = (
            dir.path().join(format!("{scope}-1")),
            dir.path().join(format!("{scope}-2")),
        );
        run_with_threads(&a, scope, "1");
        run_with_threads(&b, scope, "2");
        let files: Vec<String> = tree(&a)
            .into_iter()
            .filter(|f| f.ends_with(".parquet"))
            .collect();
        assert!(files.len() >= 6, "{files:?}");
        assert_eq!(
            files,
            tree(&b)
                .into_iter()
                .filter(|f| f.ends_with(".parquet"))
                .collect::<Vec<_>>()
        );
        for f in files {
            assert_eq!(
                std::fs::read(a.join(&f)).unwrap(),
                std::fs::read(b.join(&f)).unwrap(),
                "{scope}: {f} differs between 1 and 2 threads"
            );
        }
    }
}
