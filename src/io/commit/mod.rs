//! Staging and committing outputs, so a reader never sees a half-written partition or a mix
//! of two clusterings.
//!
//! A run writes every table file under `OUT/_staging/<run id>/`; the leading underscore makes
//! pyarrow, DuckDB, polars and Spark ignore it. A commit covers a set of partitions (one in
//! `partition` scope, every partition and the cluster tables in `global` scope) and goes:
//!
//! 1. write the journal `OUT/_staging/<run id>/_journal-<n>.json`: every (table, partition) to put
//!    in place, with the SHA-256 of each new file, and the commit records to write;
//! 2. remove the commit records of those partitions, so `skip_existing` trusts none of them
//!    while they change;
//! 3. put each table partition in place. On local disk a new partition directory is renamed
//!    in and an existing one is swapped with the staged one in one step (Linux `renameat2`
//!    with `RENAME_EXCHANGE`), so the path always holds the old directory or the new one. On
//!    an object store the staged file is copied over the committed one (a server-side copy
//!    replaces the object in one step);
//! 4. write the commit records (`OUT/_commits/<key>/commit.json`);
//! 5. remove the journal, then the staged files (after a swap they hold the old versions).
//!
//! A run killed between 1 and 5 leaves its journal. The next run that holds the locks of every
//! partition in it rolls it forward: it redoes step 3 for each entry whose committed file does
//! not have the new hash yet (the staged files are kept until the journal is gone), then steps
//! 4 and 5. So a crash leaves, per table partition, the old or the new version, and the whole
//! set ends on the new clustering, never a mix. Where the swap is not available (another OS, a
//! file system without it), the old version is first moved aside into the staging directory;
//! a crash between those two renames leaves that one partition absent until the roll-forward.

mod failpoint;
mod journal;
mod place;
mod record;
mod staging;

pub use super::atomic::write_atomic;
pub(crate) use failpoint::crash_point;
pub use record::{CommitRecord, committed, committed_partitions};
pub use staging::Staging;

/// Directory under the output path that holds runs in progress.
pub const STAGING_DIR: &str = "_staging";

/// Directory under the output path that holds commit records.
pub const COMMITS_DIR: &str = "_commits";

#[cfg(test)]
mod tests {
    use super::journal::{Entry, JOURNAL_PREFIX, Journal};
    use super::place::{exchange, place, sha256_of};
    use super::*;
    use crate::io::TableKind;
    use crate::io::dataset::PartitionKey;

    /// Two tables, as the output contract would name them.
    #[derive(Debug, Clone, Copy)]
    enum Table {
        Labels,
        Keywords,
    }

    impl TableKind for Table {
        fn name(self) -> &'static str {
            match self {
                Table::Labels => "labels",
                Table::Keywords => "keywords",
            }
        }

        fn schema(self) -> arrow::datatypes::SchemaRef {
            std::sync::Arc::new(arrow::datatypes::Schema::empty())
        }
    }

    const TABLES: [Table; 2] = [Table::Labels, Table::Keywords];

    fn key(v: &str) -> PartitionKey {
        PartitionKey(vec![("dt".into(), v.into())])
    }

    fn record(k: &str) -> (PartitionKey, CommitRecord) {
        (
            key(k),
            CommitRecord {
                key: format!("dt={k}"),
                input_fingerprint: "f".into(),
                param_hash: "p".into(),
                run_id: "run".into(),
                files: Default::default(),
            },
        )
    }

    /// Stages `body` as the labels file of partition `k`.
    fn write(s: &Staging, k: &PartitionKey, body: &str) {
        let f = s.file(Table::Labels, k);
        fs_err::create_dir_all(f.parent().unwrap()).unwrap();
        fs_err::write(f, body).unwrap();
    }

    #[test]
    fn commit_replaces_only_the_given_partition() {
        let out = tempfile::tempdir().unwrap();
        let first = Staging::create(out.path(), 1).unwrap();
        write(&first, &key("a"), "a1");
        write(&first, &key("b"), "b1");
        first.commit(&TABLES, &[record("a")]).unwrap();
        first.commit(&TABLES, &[record("b")]).unwrap();
        first.finish().unwrap();

        let second = Staging::create(out.path(), 2).unwrap();
        write(&second, &key("b"), "b2");
        second.commit(&TABLES, &[record("b")]).unwrap();
        second.finish().unwrap();

        let read = |k| {
            fs_err::read_to_string(Staging::committed_file(out.path(), Table::Labels, &key(k)))
                .unwrap()
        };
        assert_eq!(read("a"), "a1");
        assert_eq!(read("b"), "b2");
        assert!(!out.path().join(STAGING_DIR).exists());
    }

    #[test]
    fn commit_records_vouch_only_for_complete_partitions() {
        let out = tempfile::tempdir().unwrap();
        let staging = Staging::create(out.path(), 3).unwrap();
        write(&staging, &key("a"), "x");
        let (_, mut rec) = record("a");
        let staged = sha256_of(&staging.file(Table::Labels, &key("a"))).unwrap();
        rec.files.insert("labels".into(), staged.unwrap());
        staging.commit(&TABLES, &[record("a")]).unwrap();
        staging.finish().unwrap();
        assert_eq!(
            committed(out.path(), &key("a"), &[Table::Labels]).unwrap(),
            Some(rec)
        );
        assert_eq!(
            committed(out.path(), &key("a"), &[Table::Labels, Table::Keywords]).unwrap(),
            None
        );
        assert_eq!(
            committed(out.path(), &key("b"), &[Table::Labels]).unwrap(),
            None
        );
    }

    #[test]
    fn an_interrupted_commit_is_rolled_forward_and_its_staging_removed() {
        let out = tempfile::tempdir().unwrap();
        let first = Staging::create(out.path(), 1).unwrap();
        write(&first, &key("a"), "a1");
        write(&first, &key("b"), "b1");
        first.commit(&TABLES, &[record("a"), record("b")]).unwrap();
        first.finish().unwrap();
        // A second commit of both partitions is killed after swapping `a` only: its journal
        // and the staged `b` remain, and `a`'s staged path holds the old version.
        let second = Staging::create(out.path(), 2).unwrap();
        write(&second, &key("a"), "a2");
        write(&second, &key("b"), "b2");
        let journal = |s: &Staging| {
            let mut entries = Vec::new();
            for k in ["a", "b"] {
                entries.push(Entry {
                    table: "labels".into(),
                    partition: format!("dt={k}"),
                    sha256: sha256_of(&s.file(Table::Labels, &key(k))).unwrap(),
                });
            }
            let vouched = |k: &str| {
                let mut r = record(k).1;
                let sha = sha256_of(&s.file(Table::Labels, &key(k))).unwrap();
                r.files.insert("labels".into(), sha.unwrap());
                (format!("dt={k}"), r)
            };
            Journal {
                run_id: s.run_id(),
                entries,
                records: vec![vouched("a"), vouched("b")],
            }
        };
        let j = journal(&second);
        write_atomic(
            &second.dir.join(format!("{JOURNAL_PREFIX}0.json")),
            &serde_json::to_vec(&j).unwrap(),
        )
        .unwrap();
        let labels = |k: &str| Staging::committed_file(out.path(), Table::Labels, &key(k));
        place(
            &second.dir.join("labels/dt=a"),
            labels("a").parent().unwrap(),
            &second.dir.join("_replaced/labels/dt=a"),
        )
        .unwrap();
        let read = |k: &str| fs_err::read_to_string(labels(k)).unwrap();
        assert_eq!((read("a"), read("b")), ("a2".into(), "b1".into()));
        let second_run = second.run_id();
        std::mem::forget(second);

        // A locked-out recovery leaves everything; one that holds the locks rolls forward.
        let refuse = |_: &[PartitionKey]| false;
        Staging::recover(out.path(), "other", &|_| false, &mut { refuse }).unwrap();
        assert_eq!(read("b"), "b1");
        Staging::recover(out.path(), "other", &|_| false, &mut |_| true).unwrap();
        assert_eq!((read("a"), read("b")), ("a2".into(), "b2".into()));
        assert!(!out.path().join(STAGING_DIR).join(second_run).exists());
        assert!(
            committed(out.path(), &key("b"), &[Table::Labels])
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn exchange_swaps_two_directories() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs_err::create_dir_all(&a).unwrap();
        fs_err::create_dir_all(&b).unwrap();
        fs_err::write(a.join("x"), "new").unwrap();
        fs_err::write(b.join("x"), "old").unwrap();
        if exchange(&a, &b).unwrap() {
            assert_eq!(fs_err::read_to_string(b.join("x")).unwrap(), "new");
            assert_eq!(fs_err::read_to_string(a.join("x")).unwrap(), "old");
        }
        #[cfg(target_os = "linux")]
        assert!(
            exchange(&a, &dir.path().join("missing")).is_err(),
            "swapping with a missing path is an error"
        );
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        write_atomic(&path, b"{}").unwrap();
        write_atomic(&path, b"{\"a\":1}").unwrap();
        assert_eq!(fs_err::read_to_string(&path).unwrap(), "{\"a\":1}");
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 1);
    }
}
