//! The job spec: a TOML file plus `--set key.path=value` overrides.
//!
//! Unknown keys are rejected by name, so a typo is never silently ignored. Values given with
//! `--set` are parsed as TOML values (`2` is an integer, `0.5` a float, `true` a boolean);
//! anything else is taken as a string. Relative paths are relative to the working directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cluster::ClusterParams;
use crate::label::KeywordParams;
use crate::text::VectorizeParams;

/// A whole job, as written, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Where the documents are, and which columns hold their ids and texts.
    pub input: InputSpec,
    /// How texts become TF-IDF rows: tokens, stop words, document-frequency bounds, weighting.
    #[serde(default)]
    pub vectorize: VectorizeParams,
    /// Spherical k-means: scope, k, convergence, initialisation, pruning, merging.
    pub cluster: ClusterParams,
    /// How each cluster's keywords are chosen.
    #[serde(default)]
    pub keywords: KeywordParams,
    /// Where the outputs go, and what happens to partitions already committed there.
    pub output: OutputSpec,
    /// `fit` and global-scope `run`: fit on a deterministic sample of the documents.
    #[serde(default, skip_serializing_if = "FitSpec::is_default")]
    pub fit: FitSpec,
    /// Where `fit` writes models and `assign` reads one (`--model` overrides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// Options for the object stores of `s3://`, `gs://` and `az://` paths (`aws_region`,
    /// `endpoint`, `allow_http`, ...), on top of the standard environment. Secret values are
    /// written as `***` wherever the spec is shown.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        serialize_with = "redacted"
    )]
    pub storage: BTreeMap<String, String>,
    /// The `[vectorize]` keys the spec sets (the others are defaults): `assign` checks these
    /// against the model.
    #[serde(skip)]
    pub explicit_vectorize: Vec<String>,
}

/// The `[storage]` table with every secret value replaced by `***`.
fn redacted<S: serde::Serializer>(
    options: &BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(options.len()))?;
    for (k, v) in options {
        let secret = crate::io::store::is_secret_option(k);
        map.serialize_entry(k, if secret { "***" } else { v.as_str() })?;
    }
    map.end()
}

/// The `[fit]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitSpec {
    /// `fit` (and `run` in `global` scope) fits on a sample: a document count (integer, at
    /// least 1) or a share (float in (0, 1]). A document is in the sample when a hash of its
    /// `doc_id` and `cluster.seed` falls below the share, so the same input gives the same
    /// sample at any thread count and in any file order. A count is turned into a share of the
    /// selected rows. An integer `vectorize.min_df` or `max_df` counts documents of the whole
    /// input: on the sample it is scaled by the share (rounded, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<Sample>,
    /// After a fit on a sample, at most this many k-means rounds over every document of the
    /// input, read batch by batch (see [Fitting on a sample](guide.md#fitting-on-a-sample));
    /// they stop once a round moves at most `cluster.tol` of the documents, as a fit does. The
    /// first round reads and vectorises the whole input and spills its rows to `TMPDIR` (8
    /// bytes per stored term); the later rounds read the spill. 0 keeps the sample's centroids,
    /// vocabulary and idf as they are (one read of the input).
    #[serde(default = "default_refine", skip_serializing_if = "is_default_refine")]
    pub refine: usize,
}

/// `fit.refine` unless set.
pub const DEFAULT_REFINE: usize = 50;

fn default_refine() -> usize {
    DEFAULT_REFINE
}

fn is_default_refine(n: &usize) -> bool {
    *n == DEFAULT_REFINE
}

impl Default for FitSpec {
    fn default() -> Self {
        Self {
            sample: None,
            refine: DEFAULT_REFINE,
        }
    }
}

impl FitSpec {
    fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

/// `fit.sample`: a document count or a fraction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Sample {
    Count(u64),
    Fraction(f64),
}

/// The `[model]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The model registry `fit` writes to and `assign` reads (`--model` wins). A local path or
    /// an object-store URL.
    pub path: PathBuf,
}

/// The `[input]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// A local path, a `file://` URL, or an object-store URL (`s3://bucket/corpus`, see
    /// [Storage](operations.md#storage)): a hive-partitioned directory
    /// (`dt=2018-06-01/part-*.parquet`, nested keys such as `year=2018/month=06/` allowed), a
    /// plain directory of Parquet files, or one file. Also a glob
    /// (`"corpus/dt=2018-06-0[1-7]"`; `*` stays within one directory level) or a list of paths
    /// and globs (`["corpus/dt=2018-06-01", "corpus/dt=2018-06-02"]`): the partitions are then
    /// those below the deepest directory the entries share, with their hive keys. Names
    /// starting with `_` or `.` are skipped.
    pub path: InputPath,
    /// String column with the document text. Null texts are skipped and counted.
    #[serde(default = "default_text_column")]
    pub text_column: String,
    /// With `vectorize.tokenizer = "column"`: the `list<string>` column of tokens made upstream
    /// that documents are read from, in place of `text_column`. A null list is an empty
    /// document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_column: Option<String>,
    /// String column with the document id, copied to the labels. A null id fails the partition.
    #[serde(default = "default_id_column")]
    pub id_column: String,
    /// Accept an id that occurs more than once in a partition (each row is labelled). Off, a
    /// duplicate fails the partition, naming the file and the id.
    #[serde(default)]
    pub allow_duplicate_ids: bool,
}

/// `input.path`: one path or glob, or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InputPath {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl InputPath {
    /// Every path given, in order.
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            InputPath::One(p) => vec![p.as_path()],
            InputPath::Many(ps) => ps.iter().map(PathBuf::as_path).collect(),
        }
    }

    /// The selection these paths make.
    pub fn selection(&self) -> Result<crate::io::Selection, crate::io::InputError> {
        crate::io::Selection::new(&self.paths())
    }
}

impl From<PathBuf> for InputPath {
    fn from(p: PathBuf) -> Self {
        InputPath::One(p)
    }
}

fn default_text_column() -> String {
    "text".to_owned()
}

fn default_id_column() -> String {
    "doc_id".to_owned()
}

/// The `[output]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Output directory, created if missing: a local path, a `file://` URL, or an object-store
    /// URL (`s3://bucket/out`). Any other scheme (`hdfs://`, a typo such as `s4://`) is refused
    /// with exit 1, so a URL never becomes a local directory named after it. Must not be inside
    /// `input.path`.
    pub path: PathBuf,
    /// `overwrite_partitions`: replace the partitions this run computes and leave the others
    /// alone (a backfill of one day touches that day only). `error_if_exists`: stop before any
    /// work if a selected partition is already committed. `skip_existing`: skip partitions
    /// already committed from the same input fingerprint (file paths, sizes, mtimes) and
    /// parameter hash (the parameters that shape the outputs and the tool version): a rerun
    /// after a crash redoes only what is missing.
    #[serde(default)]
    pub mode: OutputMode,
}

/// How a run treats partitions already committed under the output path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// Replace the partitions this run computes; leave the others alone.
    #[default]
    OverwritePartitions,
    /// Stop before any work if a selected partition is already committed.
    ErrorIfExists,
    /// Skip partitions committed from the same input fingerprint and parameters (resume).
    SkipExisting,
}

/// A spec that cannot be read or does not describe a valid job.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read job spec `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("job spec `{}` is not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("`--set {arg}` is not `key.path=value`")]
    BadOverride { arg: String },
    #[error("`--set {key}=…` cannot be applied: `{parent}` is not a table")]
    OverrideConflict { key: String, parent: String },
    #[error("job spec `{}`: key `{key}`: {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// A TOML error with where it is: the line, and the text of that line (which names the key).
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().to_owned();
    let Some(span) = e.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    let found = text.get(span).unwrap_or("").trim();
    if found.is_empty() || found.contains('\n') {
        format!("{message} at line {line_no} (`{line}`)")
    } else {
        format!("{message} `{found}` at line {line_no} (`{line}`)")
    }
}

impl JobSpec {
    /// True when keywords are whole words rather than the clustering's tokens: with the
    /// `char_ngrams` and `korean_ngrams` tokenisers unless `keywords.words = false` (with
    /// `word`, `korean` and `column` they are the same). A Korean word counts by its L part.
    pub fn keywords_are_words(&self) -> bool {
        use crate::text::TokenizerKind;
        matches!(
            self.vectorize.tokenizer,
            TokenizerKind::CharNgrams | TokenizerKind::KoreanNgrams
        ) && self.keywords.words.unwrap_or(true)
    }

    /// Reads `path` and applies `overrides` (`key.path=value`) before parsing.
    pub fn load<S: AsRef<str>>(path: &Path, overrides: &[S]) -> Result<Self, SpecError> {
        let text = fs_err::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(path, &text, overrides)
    }

    /// Parses spec `text` (read from `path`, used in messages) with `overrides` applied.
    pub fn parse<S: AsRef<str>>(
        path: &Path,
        text: &str,
        overrides: &[S],
    ) -> Result<Self, SpecError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| SpecError::Syntax {
                    path: path.into(),
                    message: syntax_message(text, &e),
                })?;
        for arg in overrides {
            apply_override(&mut table, arg.as_ref())?;
        }
        let explicit: Vec<String> = table
            .get("vectorize")
            .and_then(toml::Value::as_table)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        let spec: Result<Self, _> = serde_path_to_error::deserialize(toml::Value::Table(table));
        spec.map(|mut spec| {
            // The Korean tokenisers drop the Korean stop words unless told otherwise.
            if !explicit.iter().any(|k| k == "stopwords")
                && matches!(
                    spec.vectorize.tokenizer,
                    crate::text::TokenizerKind::Korean | crate::text::TokenizerKind::KoreanNgrams
                )
            {
                spec.vectorize.stopwords = "korean".to_owned();
            }
            spec.explicit_vectorize = explicit;
            spec
        })
        .map_err(|e| {
            let key = e.path().to_string();
            SpecError::Invalid {
                path: path.into(),
                key: if key == "." {
                    "(top level)".into()
                } else {
                    key
                },
                message: e.into_inner().message().to_owned(),
            }
        })
    }
}

fn apply_override(table: &mut toml::Table, arg: &str) -> Result<(), SpecError> {
    let bad = || SpecError::BadOverride {
        arg: arg.to_owned(),
    };
    let (key, raw) = arg.split_once('=').ok_or_else(bad)?;
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.trim().is_empty()) {
        return Err(bad());
    }
    let value = parse_value(raw);
    let (last, parents) = parts.split_last().expect("split yields at least one part");
    let mut current = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| SpecError::OverrideConflict {
                key: key.to_owned(),
                parent: parts[..=depth].join("."),
            })?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

/// Parses a `--set` value as a TOML value, falling back to a plain string.
fn parse_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::DfBound;

    const MINIMAL: &str = "[input]\npath = \"in\"\n[cluster]\nk = 3\n[output]\npath = \"out\"\n";

    fn parse(text: &str, overrides: &[&str]) -> Result<JobSpec, SpecError> {
        JobSpec::parse(Path::new("job.toml"), text, overrides)
    }

    #[test]
    fn defaults_fill_every_section() {
        let spec = parse(MINIMAL, &[]).unwrap();
        assert_eq!(spec.input.text_column, "text");
        assert_eq!(spec.input.id_column, "doc_id");
        assert_eq!(spec.cluster.max_iter, 50);
        assert_eq!(spec.vectorize, VectorizeParams::default());
    }

    #[test]
    fn overrides_set_nested_keys_with_typed_values() {
        let spec = parse(
            MINIMAL,
            &[
                "cluster.k=20",
                "cluster.scope=global",
                "vectorize.max_df=0.7",
                "vectorize.min_df=5",
                "input.path=../shared/data/x",
                "vectorize.sublinear_tf=false",
            ],
        )
        .unwrap();
        assert_eq!(spec.cluster.k, crate::cluster::K::Count(20));
        assert_eq!(spec.cluster.scope, crate::cluster::Scope::Global);
        assert_eq!(spec.vectorize.max_df, DfBound::Fraction(0.7));
        assert_eq!(spec.vectorize.min_df, DfBound::Count(5));
        assert_eq!(spec.input.path, PathBuf::from("../shared/data/x").into());
        assert!(!spec.vectorize.sublinear_tf);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse(MINIMAL, &["cluster.kk=3"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cluster.kk") || msg.contains("`kk`"), "{msg}");
        let err = parse(&format!("{MINIMAL}[clustr]\nk = 1\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("clustr"), "{err}");
    }

    #[test]
    fn missing_required_keys_are_named() {
        let err = parse("", &[]).unwrap_err();
        assert!(err.to_string().contains("input"), "{err}");
        let err = parse(
            "[input]\npath = \"x\"\n[cluster]\n[output]\npath = \"o\"",
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("`k`") && err.to_string().contains("cluster"),
            "{err}"
        );
    }

    #[test]
    fn malformed_overrides_are_rejected() {
        assert!(matches!(
            parse(MINIMAL, &["cluster.k"]),
            Err(SpecError::BadOverride { .. })
        ));
        assert!(matches!(
            parse(MINIMAL, &["cluster..k=1"]),
            Err(SpecError::BadOverride { .. })
        ));
        assert!(matches!(
            parse(MINIMAL, &["cluster.k.x=1"]),
            Err(SpecError::OverrideConflict { .. })
        ));
    }

    proptest::proptest! {
        /// Any text gives a spec that survives a round trip through TOML, or an error that
        /// names the spec file.
        #[test]
        fn any_spec_text_gives_a_spec_or_a_typed_error(text in "(\\[[a-z]{1,8}\\]\n|[a-z_.]{1,10} = [0-9a-z\".]{0,6}\n){0,6}") {
            match parse(&text, &[]) {
                Ok(spec) => {
                    let again = parse(&toml::to_string(&spec).unwrap(), &[]).unwrap();
                    proptest::prop_assert_eq!(again, spec);
                }
                Err(e) => {
                    let names_file = matches!(e, SpecError::Syntax { .. } | SpecError::Invalid { .. })
                        && e.to_string().contains("job.toml");
                    proptest::prop_assert!(names_file, "{}", e);
                }
            }
        }

        /// Any `--set` argument either applies (the spec still round-trips) or gives an error
        /// that quotes the argument or names its key.
        #[test]
        fn any_override_gives_a_spec_or_a_typed_error(arg in ".{0,24}") {
            match parse(MINIMAL, &[arg.as_str()]) {
                Ok(spec) => {
                    let again = parse(&toml::to_string(&spec).unwrap(), &[]).unwrap();
                    proptest::prop_assert_eq!(again, spec);
                }
                Err(SpecError::BadOverride { arg: quoted }) => proptest::prop_assert_eq!(quoted, arg),
                Err(e @ (SpecError::OverrideConflict { .. } | SpecError::Invalid { .. })) => {
                    let key = arg.split_once('=').map_or(arg.as_str(), |(k, _)| k);
                    let first = key.split('.').next().unwrap_or_default();
                    proptest::prop_assert!(e.to_string().contains(first), "{}", e);
                }
                Err(e) => proptest::prop_assert!(false, "unexpected error for `{}`: {}", arg, e),
            }
        }
    }

    #[test]
    fn any_u64_seed_is_accepted_as_a_number_or_digits() {
        let max = parse(MINIMAL, &["cluster.seed=18446744073709551615"]).unwrap();
        assert_eq!(max.cluster.seed, u64::MAX);
        let text = toml::to_string(&max).unwrap();
        assert!(text.contains("seed = \"18446744073709551615\""), "{text}");
        // Written out, every [vectorize] key becomes explicit; the rest round-trips.
        let mut again = parse(&text, &[]).unwrap();
        assert_eq!(again.explicit_vectorize.len(), 10);
        again.explicit_vectorize.clear();
        assert_eq!(again, max);
        let small = parse(MINIMAL, &["cluster.seed=7"]).unwrap();
        assert!(toml::to_string(&small).unwrap().contains("seed = 7"));
        assert_eq!(serde_json::to_value(&small.cluster).unwrap()["seed"], 7);
        for bad in ["cluster.seed=-1", "cluster.seed=1.5", "cluster.seed=many"] {
            let err = parse(MINIMAL, &[bad]).unwrap_err().to_string();
            assert!(
                err.contains("cluster.seed") && err.contains("whole number"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn wrong_types_name_the_key() {
        let err = parse(MINIMAL, &["cluster.k=many"]).unwrap_err();
        assert!(err.to_string().contains("cluster.k"), "{err}");
    }
}
