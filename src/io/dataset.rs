//! Finding the input: hive partitions, their files, and a schema check of every file.
//!
//! The input path may be a hive-partitioned directory (`dt=2018-06-01/part-*.parquet`, nested
//! keys such as `year=2018/month=06/` allowed), a plain directory of Parquet files, or a single
//! file. Polars lists the files and evaluates the partition filter as a predicate on the hive
//! columns (partition pruning), so files of other partitions are never opened. Every selected
//! file's footer is then read with the `parquet` crate to check that the id and text columns
//! exist and hold strings, so a bad file is reported by name before any work starts.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::DataType;
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::ParquetMetaDataReader;
use polars::prelude::*;
use serde::Serialize;

use super::InputError;

/// Column polars adds with each row's source file.
const FILE_COLUMN: &str = "__textcluster_file";

/// Value every partition key takes in the outputs of a `global` run.
pub const ALL_PARTITIONS: &str = "__all__";

/// The hive key of a partition, in path order: `[("dt", "2018-06-01")]`. Empty when the input
/// is not partitioned.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PartitionKey(pub Vec<(String, String)>);

impl PartitionKey {
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn predicate(&self) -> Option<Expr> {
        self.0
            .iter()
            .map(|(k, values)| {
                values
                    .iter()
                    .map(|v| col(k.as_str()).eq(lit(v.as_str())))
                    .reduce(|a, b| a.or(b))
                    .expect("a filter key has at least one value")
            })
            .reduce(|a, b| a.and(b))
    }
}

impl Dataset {
    /// Finds the partitions and files under `root` that pass `filter`, and checks that every
    /// file has string columns `id_column` and `text_column`.
    pub fn discover(
        root: &Path,
        filter: &PartitionFilter,
        id_column: &str,
        text_column: &str,
    ) -> Result<Self, InputError> {
        let meta = fs_err::metadata(root).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                InputError::PathNotFound { path: root.into() }
            } else {
                InputError::Io { source }
            }
        })?;
        let (partition_keys, files) = if meta.is_file() {
            (
                Vec::new(),
                vec![(PartitionKey::default(), root.to_path_buf())],
            )
        } else {
            list_files(root, filter)?
        };
        if !filter.is_empty() && partition_keys.is_empty() && meta.is_file() {
            let key = filter.0.keys().next().expect("filter is not empty").clone();
            return Err(InputError::UnknownPartitionKey {
                key,
                keys: Vec::new(),
            });
        }

        let mut by_key: BTreeMap<PartitionKey, Vec<InputFile>> = BTreeMap::new();
        for (key, path) in files {
            let file = check_file(&path, id_column, text_column)?;
            by_key.entry(key).or_default().push(file);
        }
        let partitions = by_key
            .into_iter()
            .map(|(key, mut files)| {
                files.sort_by(|a, b| a.path.cmp(&b.path));
                Partition { key, files }
            })
            .collect();
        Ok(Dataset {
            root: root.into(),
            partition_keys,
            partitions,
        })
    }
}

fn polars_error(path: &Path, source: PolarsError) -> InputError {
    InputError::Scan {
        path: path.into(),
        message: source.to_string(),
    }
}

/// A file with the partition key its path encodes.
type KeyedFile = (PartitionKey, PathBuf);

/// Lists the Parquet files under `root` with their partition keys, applying `filter`.
fn list_files(
    root: &Path,
    filter: &PartitionFilter,
) -> Result<(Vec<String>, Vec<KeyedFile>), InputError> {
    let root_str = root.to_string_lossy();
    let scan = |hive: HiveOptions| {
        let args = ScanArgsParquet {
            hive_options: hive,
            include_file_paths: Some(FILE_COLUMN.into()),
            ..ScanArgsParquet::default()
        };
        LazyFrame::scan_parquet(PlRefPath::new(root_str.as_ref()), args)
    };
    // First pass: every file, no hive parsing, to learn the partition keys from the paths.
    let all = scan(HiveOptions::new_disabled())
        .and_then(|lf| {
            lf.select([col(FILE_COLUMN)])
                .unique_stable(None, UniqueKeepStrategy::First)
                .collect()
        })
        .map_err(|e| match e {
            PolarsError::ComputeError(msg) if msg.contains("expanded paths were empty") => {
                InputError::NoParquetFiles { path: root.into() }
            }
            other => polars_error(root, other),
        })?;
    let paths = string_column(&all, FILE_COLUMN).map_err(|e| polars_error(root, e))?;
    let Some(first) = paths.first() else {
        return Err(InputError::NoParquetFiles { path: root.into() });
    };
    let keys: Vec<String> = parse_hive_path(root, Path::new(first))?
        .0
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for path in &paths {
        let found = parse_hive_path(root, Path::new(path))?;
        let found_keys: Vec<&String> = found.0.iter().map(|(k, _)| k).collect();
        if found_keys != keys.iter().collect::<Vec<_>>() {
            return Err(InputError::InconsistentPartitionKeys {
                path: path.into(),
                expected: keys.clone(),
                found: found.0.into_iter().map(|(k, _)| k).collect(),
            });
        }
    }
    if let Some(unknown) = filter.0.keys().find(|k| !keys.contains(k)) {
        return Err(InputError::UnknownPartitionKey {
            key: unknown.clone(),
            keys,
        });
    }
    if keys.is_empty() {
        let files = paths
            .into_iter()
            .map(|p| (PartitionKey::default(), PathBuf::from(p)))
            .collect();
        return Ok((keys, files));
    }

    // Second pass: hive columns as strings (so `month=06` stays "06"), pruned by the filter.
    let mut hive = HiveOptions::new_enabled();
    hive.try_parse_dates = false;
    hive.schema = Some(Arc::new(Schema::from_iter(
        keys.iter()
            .map(|k| Field::new(k.as_str().into(), DataType_::String)),
    )));
    let mut lf = scan(hive).map_err(|e| polars_error(root, e))?;
    if let Some(predicate) = filter.predicate() {
        lf = lf.filter(predicate);
    }
    let mut columns: Vec<Expr> = keys.iter().map(|k| col(k.as_str())).collect();
    columns.push(col(FILE_COLUMN));
    let selected = lf
        .select(columns)
        .unique_stable(None, UniqueKeepStrategy::First)
        .collect()
        .map_err(|e| polars_error(root, e))?;
    let files = string_column(&selected, FILE_COLUMN).map_err(|e| polars_error(root, e))?;
    let values: Vec<Vec<String>> = keys
        .iter()
        .map(|k| string_column(&selected, k))
        .collect::<Result<_, _>>()
        .map_err(|e| polars_error(root, e))?;
    if files.is_empty() {
        return Err(InputError::NoMatchingPartition {
            path: root.into(),
            filter: filter
                .0
                .iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}")))
                .collect(),
        });
    }
    let out = files
        .into_iter()
        .enumerate()
        .map(|(row, file)| {
            let key = PartitionKey(
                keys.iter()
                    .zip(&values)
                    .map(|(k, v)| (k.clone(), v[row].clone()))
                    .collect(),
            );
            (key, PathBuf::from(file))
        })
        .collect();
    Ok((keys, out))
}

type DataType_ = polars::prelude::DataType;

fn string_column(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    Ok(df
        .column(name)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_owned())
        .collect())
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

/// Reads the footer of `path` and checks the two columns the job needs.
fn check_file(path: &Path, id_column: &str, text_column: &str) -> Result<InputFile, InputError> {
    let file = fs_err::File::open(path).map_err(|source| InputError::Io { source })?;
    let meta = file
        .metadata()
        .map_err(|source| InputError::Io { source })?;
    let unreadable = |source: parquet::errors::ParquetError| InputError::CorruptFile {
        path: path.into(),
        message: source.to_string(),
    };
    let metadata = ParquetMetaDataReader::new()
        .parse_and_finish(file.file())
        .map_err(unreadable)?;
    let file_meta = metadata.file_metadata();
    let schema = parquet_to_arrow_schema(file_meta.schema_descr(), file_meta.key_value_metadata())
        .map_err(unreadable)?;
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
                if !matches!(
                    field.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ) {
                    return Err(InputError::NotStringColumn {
                        path: path.into(),
                        column: column.to_owned(),
                        found: field.data_type().to_string(),
                    });
                }
            }
        }
    }
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    Ok(InputFile {
        path: path.into(),
        size: meta.len(),
        mtime_ns,
        n_rows: file_meta.num_rows().max(0) as u64,
    })
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

    #[test]
    fn partition_filters_parse() {
        let f = PartitionFilter::parse(&["dt=1", "dt=2", "h=x"]).unwrap();
        assert_eq!(f.0["dt"], vec!["1", "2"]);
        assert!(PartitionFilter::parse(&["dt"]).is_err());
        assert!(PartitionFilter::parse(&["dt="]).is_err());
    }
}
