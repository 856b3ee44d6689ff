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
//! so one corrupt file anywhere fails the whole listing with a message that names no file.
//! Polars does the reading itself ([`super::read`]) and the evaluation joins.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use arrow::datatypes::DataType;
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::ParquetMetaDataReader;
use serde::{Deserialize, Serialize};

use super::{InputError, Unreadable, error_chain, store};

/// Value every partition key takes in the outputs of a `global` run.
pub const ALL_PARTITIONS: &str = "__all__";

/// The hive key of a partition, in path order: `[("dt", "2018-06-01")]`. Empty when the input
/// is not partitioned.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey(pub Vec<(String, String)>);

impl Serialize for PartitionKey {
    /// As its directory form, `dt=2018-06-01` (empty when unpartitioned).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.dir().display())
    }
}

impl PartitionKey {
    /// The key of a relative directory `dt=2018-06-01` or `year=2018/month=06` (segments that
    /// are not `key=value` are ignored; the empty string is the unpartitioned key).
    pub fn from_dir(dir: &str) -> Self {
        Self(
            dir.split('/')
                .filter_map(|s| s.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// The relative directory of this partition, `dt=2018-06-01` or `year=2018/month=06`.
    pub fn dir(&self) -> PathBuf {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// The key that stands for every partition at once (`dt=__all__`).
    pub fn all(keys: &[String]) -> Self {
        Self(
            keys.iter()
                .map(|k| (k.clone(), ALL_PARTITIONS.to_owned()))
                .collect(),
        )
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(unpartitioned)");
        }
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&parts.join("/"))
    }
}

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

/// What `input.path` selects: a root directory (or file), and, for a list of paths or a glob,
/// the patterns that files under the root must match (relative to it, `/`-separated).
#[derive(Debug, Clone)]
pub struct Selection {
    pub root: PathBuf,
    patterns: Option<globset::GlobSet>,
}

/// True when `text` holds a glob metacharacter.
fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}

impl Selection {
    /// Everything under `root`.
    pub fn all(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            patterns: None,
        }
    }

    /// One path, a glob (`corpus/dt=2018-06-0[1-3]`, `s3://b/corpus/dt=2018-06-*`), or several
    /// of either. The root is the deepest directory above every path's first glob segment, so
    /// the hive keys below it are kept: `[corpus/dt=1, corpus/dt=2]` has root `corpus` and
    /// partitions `dt=1`, `dt=2`. A `*` does not cross a `/`.
    pub fn new(paths: &[&Path]) -> Result<Self, InputError> {
        let texts: Vec<String> = paths
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches('/').to_owned())
            .collect();
        if let [one] = &texts[..]
            && !is_glob(one)
        {
            return Ok(Self {
                root: PathBuf::from(one),
                patterns: None,
            });
        }
        // Each path's literal part: its segments before the first with a glob character.
        let literal: Vec<Vec<&str>> = texts
            .iter()
            .map(|t| t.split('/').take_while(|s| !is_glob(s)).collect())
            .collect();
        let mut common: Vec<&str> = literal.first().cloned().unwrap_or_default();
        for l in &literal[1..] {
            let n = common.iter().zip(l).take_while(|(a, b)| a == b).count();
            common.truncate(n);
        }
        // A literal path that is the common part itself (a list of one partition and a file
        // under it, say) selects its parent's child: keep the root one level up.
        if literal
            .iter()
            .zip(&texts)
            .any(|(l, t)| l.len() == common.len() && !is_glob(t))
        {
            common.pop();
        }
        let root = common.join("/");
        let mut builder = globset::GlobSetBuilder::new();
        for text in &texts {
            let relative = text
                .get(root.len()..)
                .unwrap_or_default()
                .trim_start_matches('/');
            let relative = if is_glob(text) {
                relative.to_owned()
            } else {
                globset::escape(relative)
            };
            for pattern in [relative.clone(), format!("{relative}/**")] {
                let glob = globset::GlobBuilder::new(&pattern)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| InputError::BadGlob {
                        pattern: text.clone(),
                        reason: e.kind().to_string(),
                    })?;
                builder.add(glob);
            }
        }
        let patterns = builder.build().map_err(|e| InputError::BadGlob {
            pattern: texts.join(", "),
            reason: e.to_string(),
        })?;
        Ok(Self {
            root: PathBuf::from(if root.is_empty() { "." } else { &root }),
            patterns: Some(patterns),
        })
    }

    /// True when the file `path` under the root is selected.
    fn selects(&self, path: &Path) -> bool {
        let Some(patterns) = &self.patterns else {
            return true;
        };
        let (root, path) = (self.root.to_string_lossy(), path.to_string_lossy());
        let relative = path
            .strip_prefix(root.as_ref())
            .unwrap_or(&path)
            .trim_start_matches('/');
        patterns.is_match(relative)
    }
}

/// The selected input: partition keys and partitions, sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dataset {
    pub root: PathBuf,
    pub partition_keys: Vec<String>,
    pub partitions: Vec<Partition>,
}

/// A `--partition key=value` restriction. Values of one key are alternatives; different keys
/// must all match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionFilter(BTreeMap<String, Vec<String>>);

impl PartitionFilter {
    /// Parses `key=value` arguments.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Self, InputError> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for arg in args {
            let arg = arg.as_ref();
            match arg.split_once('=') {
                Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                    map.entry(k.to_owned()).or_default().push(v.to_owned())
                }
                _ => {
                    return Err(InputError::BadPartitionFilter {
                        arg: arg.to_owned(),
                    });
                }
            }
        }
        Ok(Self(map))
    }

    /// True when nothing is restricted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps the files of `keyed` whose key passes; an error when the filter names a key the
    /// input (at `root`, with partition keys `keys`) does not have, or nothing passes.
    fn select<T>(
        &self,
        root: &Path,
        keys: &[String],
        keyed: &mut Vec<(PartitionKey, T)>,
    ) -> Result<(), InputError> {
        if let Some(unknown) = self.0.keys().find(|k| !keys.contains(k)) {
            return Err(InputError::UnknownPartitionKey {
                key: unknown.clone(),
                keys: keys.to_vec(),
            });
        }
        keyed.retain(|(key, _)| self.matches(key));
        if keyed.is_empty() {
            return Err(InputError::NoMatchingPartition {
                path: root.into(),
                filter: self
                    .0
                    .iter()
                    .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}")))
                    .collect(),
            });
        }
        Ok(())
    }

    /// True when `key` passes every restricted key.
    pub fn matches(&self, key: &PartitionKey) -> bool {
        self.0.iter().all(|(k, values)| {
            key.0
                .iter()
                .any(|(kk, v)| kk == k && values.iter().any(|want| want == v))
        })
    }
}

impl Dataset {
    /// Finds the partitions and files of `selection` that pass `filter`, and checks that every
    /// file has string columns `id_column` and `text_column`.
    pub fn discover(
        selection: &Selection,
        filter: &PartitionFilter,
        id_column: &str,
        text_column: &str,
    ) -> Result<Self, InputError> {
        let root = selection.root.as_path();
        if let Some(remote) = store::remote(root)? {
            let files = discover_remote(&remote, selection, filter, id_column, text_column)?;
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
            let (file, problem) = check_file(&path, id_column, text_column)?;
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

/// A file with the partition key its path encodes.
type KeyedFile = (PartitionKey, PathBuf);

/// Every selected file with its key, stat and footer problem, before grouping.
struct Checked {
    partition_keys: Vec<String>,
    files: Vec<(PartitionKey, InputFile, Option<InputError>)>,
}

/// Lists the remote input `root` and checks every selected file's footer, [`store::CONCURRENCY`]
/// requests at a time: one listing, then one or two ranged reads per file.
fn discover_remote(
    remote: &store::Remote,
    selection: &Selection,
    filter: &PartitionFilter,
    id_column: &str,
    text_column: &str,
) -> Result<Checked, InputError> {
    let root = selection.root.as_path();
    let hidden = |relative: &str| relative.split('/').any(|s| s.starts_with(['_', '.']));
    let all = store::list(remote)?;
    let single_file = all.is_empty();
    let mut listed: Vec<store::Listed> = all
        .into_iter()
        .filter(|o| !hidden(&o.relative) && selection.selects(Path::new(&o.url)))
        .collect();
    if listed.is_empty() && !single_file {
        return Err(InputError::NoParquetFiles { path: root.into() });
    }
    if single_file {
        // Not a prefix with objects under it: the path may be one object.
        match store::get_size(root)? {
            Some((size, mtime_ns)) => listed.push(store::Listed {
                url: remote.url.clone(),
                relative: String::new(),
                size,
                mtime_ns,
                e_tag: None,
            }),
            None => return Err(InputError::PathNotFound { path: root.into() }),
        }
    }
    let mut keyed: Vec<(PartitionKey, store::Listed)> = Vec::with_capacity(listed.len());
    let mut keys: Option<Vec<String>> = None;
    for object in listed {
        let path = PathBuf::from(&object.url);
        let key = if single_file {
            PartitionKey::default()
        } else {
            parse_hive_path(root, &path)?
        };
        let names: Vec<String> = key.0.iter().map(|(k, _)| k.clone()).collect();
        match &keys {
            None => keys = Some(names),
            Some(expected) if *expected != names => {
                return Err(InputError::InconsistentPartitionKeys {
                    path,
                    expected: expected.clone(),
                    found: names,
                });
            }
            Some(_) => {}
        }
        keyed.push((key, object));
    }
    let keys = keys.unwrap_or_default();
    filter.select(root, &keys, &mut keyed)?;
    let footers = store::block_on(async {
        use futures::StreamExt;
        futures::stream::iter(keyed.iter().map(|(_, object)| async move {
            let path = PathBuf::from(&object.url);
            let Some(r) = store::remote(&path)? else {
                unreachable!("listed under a remote root")
            };
            if object.size == 0 {
                return Ok::<_, InputError>(Err(InputError::CorruptFile {
                    path,
                    reason: Unreadable::Empty,
                }));
            }
            let mut reader = store::ObjectFile::new(r, object.size);
            let options = parquet::arrow::arrow_reader::ArrowReaderOptions::new();
            Ok(
                match parquet::arrow::arrow_reader::ArrowReaderMetadata::load_async(
                    &mut reader,
                    options,
                )
                .await
                {
                    Ok(meta) => check_schema(&path, meta.schema(), id_column, text_column)
                        .map(|()| meta.metadata().file_metadata().num_rows().max(0) as u64),
                    Err(parquet::errors::ParquetError::External(e)) => {
                        return Err(InputError::Io {
                            source: std::io::Error::other(store::redact(&format!(
                                "cannot read the footer of `{}`: {e}",
                                path.display()
                            ))),
                        });
                    }
                    Err(e) => Err(InputError::CorruptFile {
                        path,
                        reason: e.into(),
                    }),
                },
            )
        }))
        .buffered(store::CONCURRENCY)
        .collect::<Vec<_>>()
        .await
    });
    let mut files = Vec::with_capacity(keyed.len());
    for ((key, object), footer) in keyed.into_iter().zip(footers) {
        let footer = footer?;
        let mut file = InputFile {
            path: PathBuf::from(&object.url),
            size: object.size,
            mtime_ns: object.mtime_ns,
            n_rows: 0,
        };
        let problem = match footer {
            Ok(n_rows) => {
                file.n_rows = n_rows;
                None
            }
            Err(problem) => Some(problem),
        };
        files.push((key, file, problem));
    }
    Ok(Checked {
        partition_keys: keys,
        files,
    })
}

/// True for names that readers of hive datasets skip: `_SUCCESS`, `_staging`, `.crc` files.
fn is_hidden(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('_') || name.starts_with('.')
}

/// The error of a failed `stat` of `path`, which was listed in its directory: a loop, a
/// dangling symlink, or an I/O error.
fn stat_error(path: &Path, source: std::io::Error) -> InputError {
    match source.raw_os_error() {
        Some(libc::ELOOP) => InputError::SymlinkLoop { path: path.into() },
        Some(libc::ENOENT) => InputError::DanglingSymlink { path: path.into() },
        _ => InputError::Io {
            source: std::io::Error::new(
                source.kind(),
                format!("cannot stat `{}`: {source}", path.display()),
            ),
        },
    }
}

/// Lists every visible regular file under `root`, sorted. Symlinks are followed; a directory
/// reached twice (a symlink loop) or a symlink to nothing is an error naming it, and entries
/// that are neither files nor directories (FIFOs, sockets, devices) are skipped with a
/// warning, since opening one could block forever.
pub(crate) fn walk(root: &Path) -> Result<Vec<PathBuf>, InputError> {
    use std::os::unix::fs::MetadataExt;
    let mut files = Vec::new();
    let id = |m: &std::fs::Metadata| (m.dev(), m.ino());
    let root_id = std::fs::metadata(root).map(|m| id(&m)).unwrap_or_default();
    // Each directory with the identities of its ancestors: reaching one of them again is a
    // loop; reaching a directory seen elsewhere (two links to one place) only repeats it.
    let mut dirs = vec![(root.to_path_buf(), vec![root_id])];
    let mut seen = std::collections::HashSet::from([root_id]);
    while let Some((dir, ancestors)) = dirs.pop() {
        let mut visible = 0;
        for entry in fs_err::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if is_hidden(&name) {
                continue;
            }
            let path = entry.path();
            if name.to_str().is_none() {
                return Err(InputError::NonUtf8Name { path });
            }
            visible += 1;
            let meta = std::fs::metadata(&path).map_err(|e| stat_error(&path, e))?;
            if meta.is_dir() {
                if ancestors.contains(&id(&meta)) {
                    return Err(InputError::SymlinkLoop { path });
                }
                if !seen.insert(id(&meta)) {
                    tracing::warn!(path = %path.display(), "directory already listed through another path; skipped");
                    continue;
                }
                let mut chain = ancestors.clone();
                chain.push(id(&meta));
                dirs.push((path, chain));
            } else if meta.is_file() {
                files.push(path);
            } else {
                tracing::warn!(path = %path.display(), "skipping an entry that is neither a file nor a directory");
            }
        }
        if visible == 0 && dir != root {
            tracing::warn!(dir = %dir.display(), "partition directory has no files; nothing to cluster there");
        }
    }
    files.sort();
    Ok(files)
}

/// Lists the files under `root` with their partition keys and keeps those passing `filter`.
fn list_files(
    selection: &Selection,
    filter: &PartitionFilter,
) -> Result<(Vec<String>, Vec<KeyedFile>), InputError> {
    let root = selection.root.as_path();
    let mut paths = walk(root)?;
    paths.retain(|p| selection.selects(p));
    let Some(first) = paths.first() else {
        return Err(InputError::NoParquetFiles { path: root.into() });
    };
    let keys: Vec<String> = parse_hive_path(root, first)?
        .0
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut keyed = Vec::with_capacity(paths.len());
    for path in paths {
        let key = parse_hive_path(root, &path)?;
        if !key.0.iter().map(|(k, _)| k).eq(keys.iter()) {
            return Err(InputError::InconsistentPartitionKeys {
                path,
                expected: keys.clone(),
                found: key.0.into_iter().map(|(k, _)| k).collect(),
            });
        }
        keyed.push((key, path));
    }
    filter.select(root, &keys, &mut keyed)?;
    Ok((keys, keyed))
}

/// Parses the `key=value` directory segments between `root` and the file `path`.
pub fn parse_hive_path(root: &Path, path: &Path) -> Result<PartitionKey, InputError> {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let mut segments: Vec<_> = relative.components().collect();
    segments.pop(); // the file name
    let mut key = Vec::with_capacity(segments.len());
    for segment in segments {
        let text = segment.as_os_str().to_string_lossy();
        match text.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                key.push((k.to_owned(), v.to_owned()))
            }
            _ => {
                return Err(InputError::BadPartitionSegment {
                    path: path.into(),
                    segment: text.into_owned(),
                });
            }
        }
    }
    Ok(PartitionKey(key))
}

/// Stats `path` and checks its footer and the two columns the job needs. An I/O error is the
/// caller's; a problem with the file's content comes back beside its stat.
fn check_file(
    path: &Path,
    id_column: &str,
    text_column: &str,
) -> Result<(InputFile, Option<InputError>), InputError> {
    let file = fs_err::File::open(path)?;
    let meta = file.metadata()?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    let mut info = InputFile {
        path: path.into(),
        size: meta.len(),
        mtime_ns,
        n_rows: 0,
    };
    match check_footer(path, file.file(), id_column, text_column) {
        Ok(n_rows) => {
            info.n_rows = n_rows;
            Ok((info, None))
        }
        Err(problem) => Ok((info, Some(problem))),
    }
}

/// Reads the footer of `file` and checks the id and text columns; returns the row count.
fn check_footer(
    path: &Path,
    file: &std::fs::File,
    id_column: &str,
    text_column: &str,
) -> Result<u64, InputError> {
    let unreadable = |reason: Unreadable| InputError::CorruptFile {
        path: path.into(),
        reason,
    };
    if file.metadata()?.len() == 0 {
        return Err(unreadable(Unreadable::Empty));
    }
    let metadata = ParquetMetaDataReader::new()
        .parse_and_finish(file)
        .map_err(|e| unreadable(e.into()))?;
    let file_meta = metadata.file_metadata();
    let schema = parquet_to_arrow_schema(file_meta.schema_descr(), file_meta.key_value_metadata())
        .map_err(|e| unreadable(e.into()))?;
    check_schema(path, &schema, id_column, text_column)?;
    Ok(file_meta.num_rows().max(0) as u64)
}

/// Checks that `schema` (of the file at `path`) has string columns `id_column` and
/// `text_column`.
fn check_schema(
    path: &Path,
    schema: &arrow::datatypes::Schema,
    id_column: &str,
    text_column: &str,
) -> Result<(), InputError> {
    for column in [id_column, text_column] {
        match schema.field_with_name(column) {
            Err(_) => {
                return Err(InputError::MissingColumn {
                    path: path.into(),
                    column: column.to_owned(),
                    available: schema.fields().iter().map(|f| f.name().clone()).collect(),
                });
            }
            Ok(field) => {
                let is_string = |t: &DataType| {
                    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
                };
                // Dictionary-encoded strings (pandas categoricals, some writers) read as strings.
                let readable = match field.data_type() {
                    DataType::Dictionary(_, value) => is_string(value),
                    t => is_string(t),
                };
                if !readable {
                    return Err(InputError::NotStringColumn {
                        path: path.into(),
                        column: column.to_owned(),
                        found: field.data_type().to_string(),
                    });
                }
            }
        }
    }
    Ok(())
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
