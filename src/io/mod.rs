//! Everything that touches storage: finding input partitions, reading documents, writing the
//! output tables and committing them.
//!
//! Invariants: nothing is read before [`Dataset::discover`] has checked every selected file's
//! footer and columns; nothing is written outside the staging directory until a partition
//! is committed ([`commit::Staging::commit`]).
//!
//! This module does not tokenise or cluster, and it does not decide what to write: the job
//! runner builds the record batches.

pub mod atomic;
pub mod commit;
pub mod dataset;
pub mod lock;
pub mod read;
pub mod store;
pub mod write;

use std::path::PathBuf;

pub use dataset::{Dataset, InputFile, Partition, PartitionFilter, PartitionKey, Selection};
pub use read::{DocumentBatches, Documents, read_files, read_output, read_partition};

/// A problem with the input data or its location. These are the user's to fix: retrying
/// will not help.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("input path `{}` does not exist", path.display())]
    PathNotFound { path: PathBuf },
    #[error("`input.path` pattern `{pattern}` is not a valid glob: {reason}")]
    BadGlob { pattern: String, reason: String },
    #[error("no Parquet files under `{}`", path.display())]
    NoParquetFiles { path: PathBuf },
    #[error("`{}`: directory `{segment}` is not a `key=value` partition with a non-empty value", path.display())]
    BadPartitionSegment { path: PathBuf, segment: String },
    #[error(
        "`{}` has partition keys {found:?}, but other files have {expected:?}",
        path.display()
    )]
    InconsistentPartitionKeys {
        path: PathBuf,
        expected: Vec<String>,
        found: Vec<String>,
    },
    #[error("symlink loop at `{}`", path.display())]
    SymlinkLoop { path: PathBuf },
    #[error("`{}` is a symlink to nothing (its target does not exist)", path.display())]
    DanglingSymlink { path: PathBuf },
    #[error("input path `{}` is neither a file nor a directory", path.display())]
    NotFileOrDirectory { path: PathBuf },
    #[error("`{}`: the name is not valid UTF-8\nhint: rename it; partition keys and ids are written as UTF-8 strings", path.display())]
    NonUtf8Name { path: PathBuf },
    #[error("`--partition {arg}` is not `key=value`")]
    BadPartitionFilter { arg: String },
    #[error("unknown partition key `{key}`; the input's keys are {keys:?}")]
    UnknownPartitionKey { key: String, keys: Vec<String> },
    #[error("no partition under `{}` matches {filter:?}", path.display())]
    NoMatchingPartition { path: PathBuf, filter: Vec<String> },
    #[error("`{}` is not a readable Parquet file", path.display())]
    CorruptFile {
        path: PathBuf,
        #[source]
        reason: Unreadable,
    },
    #[error("`{}` has no column `{column}`; its columns are {available:?}\nhint: set `input.text_column`, `input.id_column` or (with `vectorize.tokenizer = \"column\"`) `input.tokens_column`", path.display())]
    MissingColumn {
        path: PathBuf,
        column: String,
        available: Vec<String>,
    },
    #[error("column `{column}` of `{}` is {found}, not a string", path.display())]
    NotStringColumn {
        path: PathBuf,
        column: String,
        found: String,
    },
    #[error(
        "column `{column}` of `{}` is {found}, not a list of strings\nhint: `vectorize.tokenizer = \"column\"` reads tokens made upstream from `input.tokens_column`",
        path.display()
    )]
    NotTokenColumn {
        path: PathBuf,
        column: String,
        found: String,
    },
    #[error(
        "cannot decode {}`{}` of {what}",
        column.as_ref().map(|c| format!("column `{c}` of ")).unwrap_or_default(),
        path.display()
    )]
    Decode {
        path: PathBuf,
        what: String,
        /// The column that fails on its own, when one does.
        column: Option<String>,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("{n_nulls} rows of `{}` have a null `{column}`\nhint: every document needs an id", path.display())]
    NullIds {
        path: PathBuf,
        column: String,
        n_nulls: usize,
    },
    #[error(
        "`{}`: `{column}` value `{id}` occurs more than once in partition `{partition}`\nhint: make the ids unique, or set `input.allow_duplicate_ids = true`",
        path.display()
    )]
    DuplicateId {
        path: PathBuf,
        partition: String,
        column: String,
        id: String,
    },
    #[error(transparent)]
    Io {
        #[from]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Why a Parquet file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("the file is empty (0 bytes)")]
    Empty,
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// A file that reads but contradicts what describes it (a model table whose checksum is
    /// not its header's, say).
    #[error("{0}")]
    Inconsistent(String),
    #[error("column `{column}` is {found}, expected {expected}")]
    ColumnType {
        column: String,
        found: String,
        expected: String,
    },
}

/// `error` and its sources, joined by `: ` (what `{:#}` prints for an `anyhow` error), for
/// messages that are stored rather than printed: a failed partition's `error` in the manifest.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// A table textcluster writes, as storage sees it: a directory name and an Arrow schema. The
/// output contract's [`crate::output::Table`] is the one implementation; `io` stages,
/// commits and reads tables through this trait and knows none of them by name.
pub trait TableKind: Copy {
    /// The table's directory name.
    fn name(self) -> &'static str;
    /// The table's Arrow schema.
    fn schema(self) -> arrow::datatypes::SchemaRef;
}

/// Lower-case hexadecimal of `digest`: how content hashes and ids are written.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// True for a column type that reads as strings: Utf8, LargeUtf8, Utf8View, or a dictionary of
/// them (pandas categoricals, some writers).
pub fn is_string_type(t: &arrow::datatypes::DataType) -> bool {
    use arrow::datatypes::DataType;
    let plain =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    match t {
        DataType::Dictionary(_, values) => plain(values),
        t => plain(t),
    }
}

/// True for a column of token lists: a list (or large list) of strings, as
/// [`is_string_type`] reads them.
pub fn is_string_list_type(t: &arrow::datatypes::DataType) -> bool {
    use arrow::datatypes::DataType;
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => {
            is_string_type(f.data_type())
        }
        _ => false,
    }
}

/// The SHA-256 of `bytes`, in hex: how files are vouched for.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

impl InputError {
    /// True when the cause is the environment (permissions, disk) rather than the data.
    pub fn is_environmental(&self) -> bool {
        match self {
            InputError::Io { .. } => true,
            InputError::Store(e) => !e.is_user_error(),
            _ => false,
        }
    }

    /// True when the data or the arguments must be fixed (a retry will not help).
    pub fn is_user_error(&self) -> bool {
        !self.is_environmental()
    }
}

impl OutputError {
    /// True when a store refused the output for a reason a retry will not change (a bucket
    /// that does not exist, say); other output failures are environmental.
    pub fn is_user_error(&self) -> bool {
        matches!(self, OutputError::Store(e) if e.is_user_error())
    }
}

/// A failure to write or commit outputs: environmental, a retry may help.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Io {
        #[from]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot write Parquet file `{}`", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("cannot build the record batch for `{table}`")]
    Batch {
        table: &'static str,
        #[source]
        source: arrow::error::ArrowError,
    },
}
