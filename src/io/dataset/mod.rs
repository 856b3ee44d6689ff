//! Finding the input: hive partitions, their files, and a schema check of every file.
//!
//! The input path may be a hive-partitioned directory (`dt=2018-06-01/part-*.parquet`, nested
//! keys such as `year=2018/month=06/` allowed), a plain directory of Parquet files, or a single
//! file. Files and directories whose names start with `_` or `.` are skipped, as Spark, pyarrow
//! and DuckDB skip them. Partition keys come from the `key=value` directory names and the
//! `--partition` filter prunes on them, so files of other partitions are never opened. Every
//! selected file's footer is then read with the `parquet` crate to check that the id and text
//! columns exist and hold strings, so a bad file is reported by name before any work starts.
//!
//! The listing is ours rather than polars' (polars-io 0.55) for two reasons found in its source
//! and in our corrupt-file test: its path expansion silently skips zero-byte files, so a failed
//! upstream write would make a partition vanish, and listing through a scan reads every footer,
//! so one corrupt file anywhere fails the whole listing with a message that names no file. The
//! parquet crate then reads the selected columns ([`super::read`]).
//!
//! [`key`] parses partition keys, [`filter`] prunes by them, [`select`] says what the input
//! path selects, [`local`] and [`remote`] list files, and [`footer`] checks each file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod filter;
mod footer;
mod key;
mod local;
mod remote;
mod select;

pub use filter::PartitionFilter;
pub use key::{ALL_PARTITIONS, PartitionKey, parse_hive_path};
pub(crate) use local::walk;
pub use select::Selection;

use footer::check_file;
use local::{list_files, stat_error};
use remote::discover_remote;

use super::{InputError, error_chain, store};

/// One input file with what identifies its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: PathBuf,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    pub n_rows: u64,
}

/// One partition and its files, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    pub key: PartitionKey,
    pub files: Vec<InputFile>,
    /// Why this partition cannot be read (a corrupt, empty or mis-typed file), found by the
    /// footer check. The run fails this partition alone; the others go on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Partition {
    /// Rows over all files.
    pub fn n_rows(&self) -> u64 {
        self.files.iter().map(|f| f.n_rows).sum()
    }
}

/// The selected input: partition keys and partitions, sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dataset {
    pub root: PathBuf,
    pub partition_keys: Vec<String>,
    pub partitions: Vec<Partition>,
}

impl Dataset {
    /// Finds the partitions and files of `selection` that pass `filter`, and checks that every
    /// file has string columns `id_column` and `text_column` (a `list<string>` column of
    /// tokens when `tokens`).
    #[allow(clippy::disallowed_methods)] // `stat_error` reads the OS error code, which fs_err does not keep
    pub fn discover(
        selection: &Selection,
        filter: &PartitionFilter,
        id_column: &str,
        text_column: &str,
        tokens: bool,
    ) -> Result<Self, InputError> {
        let root = selection.root.as_path();
        if let Some(remote) = store::remote(root)? {
            let files =
                discover_remote(&remote, selection, filter, id_column, text_column, tokens)?;
            return Self::from_checked(root, files);
        }
        let meta = std::fs::metadata(root).map_err(|source| match stat_error(root, source) {
            InputError::DanglingSymlink { .. } if root.symlink_metadata().is_err() => {
                InputError::PathNotFound { path: root.into() }
            }
            e => e,
        })?;
        if !meta.is_file() && !meta.is_dir() {
            return Err(InputError::NotFileOrDirectory { path: root.into() });
        }
        let (partition_keys, files) = if meta.is_file() {
            (
                Vec::new(),
                vec![(PartitionKey::default(), root.to_path_buf())],
            )
        } else {
            list_files(selection, filter)?
        };
        if !filter.is_empty() && partition_keys.is_empty() && meta.is_file() {
            let key = filter.0.keys().next().expect("filter is not empty").clone();
            return Err(InputError::UnknownPartitionKey {
                key,
                keys: Vec::new(),
            });
        }

        let mut checked = Vec::with_capacity(files.len());
        for (key, path) in files {
            let (file, problem) = check_file(&path, id_column, text_column, tokens)?;
            checked.push((key, file, problem));
        }
        Self::from_checked(
            root,
            Checked {
                partition_keys,
                files: checked,
            },
        )
    }

    /// Groups checked files into partitions. Fails when every partition has a problem.
    fn from_checked(root: &Path, checked: Checked) -> Result<Self, InputError> {
        let Checked {
            partition_keys,
            files,
        } = checked;
        let mut by_key: BTreeMap<PartitionKey, (Vec<InputFile>, Option<InputError>)> =
            BTreeMap::new();
        for (key, file, problem) in files {
            let entry = by_key.entry(key).or_default();
            entry.0.push(file);
            if entry.1.is_none() {
                entry.1 = problem;
            }
        }
        // One bad partition fails alone at run time; if every partition is bad, the input
        // as a whole is, and the plan fails before anything is written.
        if by_key.values().all(|(_, problem)| problem.is_some()) {
            let first = by_key.into_values().find_map(|(_, p)| p);
            return Err(first.expect("at least one partition, each with a problem"));
        }
        let partitions = by_key
            .into_iter()
            .map(|(key, (mut files, problem))| {
                files.sort_by(|a, b| a.path.cmp(&b.path));
                if let Some(problem) = &problem {
                    tracing::warn!(partition = %key, %problem, "partition cannot be read; it will fail");
                }
                Partition {
                    key,
                    files,
                    problem: problem.map(|p| error_chain(&p)),
                }
            })
            .collect();
        Ok(Dataset {
            root: root.into(),
            partition_keys,
            partitions,
        })
    }
}

/// Every selected file with its key, stat and footer problem, before grouping.
struct Checked {
    partition_keys: Vec<String>,
    files: Vec<(PartitionKey, InputFile, Option<InputError>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_paths_parse_nested_keys() {
        let key = parse_hive_path(
            Path::new("/data/c"),
            Path::new("/data/c/year=2018/month=06/part-0.parquet"),
        )
        .unwrap();
        assert_eq!(key.dir(), PathBuf::from("year=2018/month=06"));
        assert_eq!(key.to_string(), "year=2018/month=06");
        assert_eq!(
            parse_hive_path(Path::new("/d"), Path::new("/d/x.parquet")).unwrap(),
            PartitionKey::default()
        );
    }

    #[test]
    fn bad_hive_segments_are_named() {
        for bad in [
            "/d/dt=/x.parquet",
            "/d/notakey/x.parquet",
            "/d/=v/x.parquet",
        ] {
            let err = parse_hive_path(Path::new("/d"), Path::new(bad)).unwrap_err();
            assert!(
                matches!(err, InputError::BadPartitionSegment { .. }),
                "{bad}: {err}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn hive_path_parsing_never_panics(segments in proptest::collection::vec("[a-z=_.\\-0-9]{0,8}", 0..5)) {
            let path = Path::new("/root").join(segments.join("/")).join("f.parquet");
            match parse_hive_path(Path::new("/root"), &path) {
                Ok(key) => proptest::prop_assert_eq!(key.0.len(), segments.iter().filter(|s| !s.is_empty() && *s != ".").count()),
                Err(e) => {
                    let is_segment_error = matches!(e, InputError::BadPartitionSegment { .. });
                    proptest::prop_assert!(is_segment_error);
                }
            }
        }

        #[test]
        fn partition_filters_accept_exactly_key_value_arguments(args in proptest::collection::vec("[a-z=]{0,6}|.{0,12}", 0..4)) {
            let valid = |a: &String| a.split_once('=').is_some_and(|(k, v)| !k.is_empty() && !v.is_empty());
            match PartitionFilter::parse(&args) {
                Ok(filter) => {
                    proptest::prop_assert!(args.iter().all(valid));
                    let n: usize = filter.0.values().map(Vec::len).sum();
                    proptest::prop_assert_eq!(n, args.len());
                }
                Err(InputError::BadPartitionFilter { arg }) => {
                    proptest::prop_assert!(!valid(&arg));
                    proptest::prop_assert!(args.contains(&arg));
                }
                Err(e) => proptest::prop_assert!(false, "unexpected error: {}", e),
            }
        }
    }

    #[test]
    fn globs_and_lists_select_below_a_root_that_keeps_the_hive_keys() {
        let sel = |paths: &[&str]| {
            let paths: Vec<&Path> = paths.iter().map(Path::new).collect();
            Selection::new(&paths).unwrap()
        };
        let one = sel(&["/c"]);
        assert_eq!(one.root, Path::new("/c"));
        assert!(one.selects(Path::new("/c/dt=9/x.parquet")));

        let glob = sel(&["/c/dt=2018-06-0[12]"]);
        assert_eq!(glob.root, Path::new("/c"));
        assert!(glob.selects(Path::new("/c/dt=2018-06-01/part-0.parquet")));
        assert!(!glob.selects(Path::new("/c/dt=2018-06-03/part-0.parquet")));
        let star = sel(&["s3://b/c/dt=2018-06-*/part-*.parquet"]);
        assert_eq!(star.root, Path::new("s3://b/c"));
        assert!(star.selects(Path::new("s3://b/c/dt=2018-06-30/part-1.parquet")));
        assert!(!star.selects(Path::new("s3://b/c/dt=2018-06-30/x/part-1.parquet")));

        let list = sel(&["/c/dt=1", "/c/dt=3/"]);
        assert_eq!(list.root, Path::new("/c"));
        assert!(list.selects(Path::new("/c/dt=1/a.parquet")));
        assert!(list.selects(Path::new("/c/dt=3/a.parquet")));
        assert!(!list.selects(Path::new("/c/dt=2/a.parquet")));
        assert!(
            !list.selects(Path::new("/c/dt=10/a.parquet")),
            "a literal is not a prefix"
        );
        let mixed = sel(&["/c/dt=1*", "/c/dt=3"]);
        assert!(mixed.selects(Path::new("/c/dt=10/a.parquet")));
        assert!(!mixed.selects(Path::new("/c/dt=2/a.parquet")));
        assert!(Selection::new(&[Path::new("/c/dt=[")]).is_err());
    }

    #[test]
    fn partition_filters_parse() {
        let f = PartitionFilter::parse(&["dt=1", "dt=2", "h=x"]).unwrap();
        assert_eq!(f.0["dt"], vec!["1", "2"]);
        assert!(PartitionFilter::parse(&["dt"]).is_err());
        assert!(PartitionFilter::parse(&["dt="]).is_err());
    }
}
