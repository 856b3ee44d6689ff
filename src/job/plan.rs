//! Spec → plan: every parameter checked, partitions found, output checked, before any work.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{JobError, ParamError, ParamErrors};
use crate::cluster::{Scope, ValidClusterParams};
use crate::io::{Dataset, PartitionFilter};
use crate::label::ValidKeywordParams;
use crate::output::spec::{InputPath, JobSpec};
use crate::text::ValidVectorizeParams;

/// A job ready to run: checked parameters and the exact input files.
#[derive(Debug, Clone)]
pub struct JobPlan {
    pub spec: JobSpec,
    pub vectorize: ValidVectorizeParams,
    pub cluster: ValidClusterParams,
    pub keywords: ValidKeywordParams,
    pub dataset: Dataset,
}

/// What `textcluster plan` prints.
#[derive(Debug, Serialize)]
pub struct PlanSummary<'a> {
    pub input: &'a Dataset,
    pub columns: Columns<'a>,
    pub n_partitions: usize,
    pub n_rows: u64,
    pub scope: Scope,
    pub params: &'a JobSpec,
    pub output: &'a Path,
}

/// The input columns a job reads.
#[derive(Debug, Serialize)]
pub struct Columns<'a> {
    pub id: &'a str,
    pub text: &'a str,
}

impl JobPlan {
    /// Loads the spec at `spec` with `overrides` (`key.path=value`), restricted to
    /// `partitions` (`key=value`; values of one key are alternatives, different keys must all
    /// match), and resolves the plan: what every front end does first.
    pub fn load(
        spec: &std::path::Path,
        overrides: &[String],
        partitions: &[String],
    ) -> Result<Self, JobError> {
        let spec = crate::output::JobSpec::load(spec, overrides)?;
        let filter = PartitionFilter::parse(partitions)?;
        Self::resolve(spec, &filter)
    }

    /// Checks every parameter (reporting all problems at once), then finds and checks input.
    pub fn resolve(mut spec: JobSpec, filter: &PartitionFilter) -> Result<Self, JobError> {
        spec.input.path = match &spec.input.path {
            InputPath::One(p) => InputPath::One(local_path("input.path", p)?),
            InputPath::Many(ps) => InputPath::Many(
                ps.iter()
                    .map(|p| local_path("input.path", p))
                    .collect::<Result<_, _>>()?,
            ),
        };
        spec.output.path = local_path("output.path", &spec.output.path)?;
        crate::io::store::configure(&spec.storage);
        let mut problems: Vec<ParamError> = Vec::new();
        let vectorize = spec
            .vectorize
            .check()
            .map_err(|e| problems.extend(e.into_iter().map(ParamError::from)))
            .ok();
        let cluster = spec
            .cluster
            .check()
            .map_err(|e| problems.extend(e.into_iter().map(ParamError::from)))
            .ok();
        let keywords = spec
            .keywords
            .check()
            .map_err(|e| problems.extend(e.into_iter().map(ParamError::from)))
            .ok();
        match spec.fit.sample {
            Some(crate::output::spec::Sample::Count(0)) => {
                problems.push(ParamError::Sample { value: "0".into() })
            }
            Some(crate::output::spec::Sample::Fraction(f)) if !(f > 0.0 && f <= 1.0) => problems
                .push(ParamError::Sample {
                    value: f.to_string(),
                }),
            _ => {}
        }
        let tokens = spec.vectorize.tokenizer == crate::text::TokenizerKind::Column;
        match (&spec.input.tokens_column, tokens) {
            // Documents are read from the tokens column from here on.
            (Some(column), true) => spec.input.text_column = column.clone(),
            (None, true) => problems.push(ParamError::NoTokensColumn),
            (Some(_), false) => problems.push(ParamError::UnusedTokensColumn),
            (None, false) => {}
        }
        if let Some(model) = &spec.model {
            spec.model = Some(crate::output::spec::ModelSpec {
                path: local_path("model.path", &model.path)?,
            });
        }
        if let (Some(vectorize), Some(cluster), Some(keywords), true) =
            (vectorize, cluster, keywords, problems.is_empty())
        {
            let selection = spec.input.path.selection()?;
            check_output_location(&selection.root, &spec.output.path)?;
            let dataset = Dataset::discover(
                &selection,
                filter,
                &spec.input.id_column,
                &spec.input.text_column,
                tokens,
            )?;
            check_partition_keys(&dataset.partition_keys)?;
            Ok(Self {
                spec,
                vectorize,
                cluster,
                keywords,
                dataset,
            })
        } else {
            Err(JobError::Params(ParamErrors(problems)))
        }
    }

    /// The output directory.
    pub fn output(&self) -> &Path {
        &self.spec.output.path
    }

    /// The rows of every selected partition, as their footers count them.
    pub fn input_rows(&self) -> u64 {
        self.dataset.partitions.iter().map(|p| p.n_rows()).sum()
    }

    /// The summary `textcluster plan` prints as JSON.
    pub fn summary(&self) -> PlanSummary<'_> {
        PlanSummary {
            input: &self.dataset,
            columns: Columns {
                id: &self.spec.input.id_column,
                text: &self.spec.input.text_column,
            },
            n_partitions: self.dataset.partitions.len(),
            n_rows: self.input_rows(),
            scope: self.cluster.scope(),
            params: &self.spec,
            output: self.output(),
        }
    }
}

/// `path` as the job uses it: a plain path as is, `file:///x` as `/x`, an object-store URL
/// (`s3://bucket/x`, see [`crate::io::store::REMOTE_SCHEMES`]) as is; any other URL scheme
/// (`hdfs://`, a typo such as `s4://`) is refused, so a URL never becomes a local directory
/// named after it.
pub(super) fn local_path(key: &'static str, path: &Path) -> Result<PathBuf, JobError> {
    if path.as_os_str().is_empty() {
        return Err(JobError::EmptyPath { key });
    }
    let Some(scheme) = crate::io::store::scheme(path) else {
        return Ok(path.to_path_buf());
    };
    let text = path.to_string_lossy();
    let rest = &text[scheme.len() + 3..];
    match scheme.as_str() {
        "file" if rest.starts_with('/') => Ok(PathBuf::from(rest)),
        s if crate::io::store::REMOTE_SCHEMES.contains(&s) => normal_url(key, s, rest),
        _ => Err(JobError::UnsupportedScheme {
            key,
            url: text.to_string(),
            scheme: text[..scheme.len()].to_owned(),
        }),
    }
}

/// An object-store URL in the one spelling every check and request uses: the scheme in lower
/// case (`s3a` as `s3`), no empty or `.` segments in the key, no trailing `/`. A `..` segment
/// is refused: an object store has no parent directories, so it would name a key of its own.
fn normal_url(key: &'static str, scheme: &str, rest: &str) -> Result<PathBuf, JobError> {
    let scheme = if scheme == "s3a" { "s3" } else { scheme };
    let (bucket, object_key) = rest.split_once('/').unwrap_or((rest, ""));
    let mut segments = Vec::new();
    for segment in object_key.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                return Err(JobError::DotDotInUrl {
                    key,
                    url: format!("{scheme}://{rest}"),
                });
            }
            s => segments.push(s),
        }
    }
    let mut url = format!("{scheme}://{bucket}");
    for segment in segments {
        url.push('/');
        url.push_str(segment);
    }
    Ok(PathBuf::from(url))
}

/// Rejects an output directory inside the input (or equal to it), where the next run would
/// read its own outputs, and an input inside the output, whose files a run would replace with
/// its tables. Both paths are resolved as the file system will resolve them: the deepest
/// existing ancestor through its symlinks, the rest (which cannot hold symlinks yet) lexically,
/// so neither `link-to-input/out` nor `missing/../input/out` slips through. Object-store URLs
/// are compared in their normal spelling ([`normal_url`]).
fn check_output_location(input: &Path, output: &Path) -> Result<(), JobError> {
    use crate::io::store::is_remote;
    let (output_inside, input_inside) = if is_remote(input) || is_remote(output) {
        let text = |p: &Path| format!("{}/", p.to_string_lossy().trim_end_matches('/'));
        (
            text(output).starts_with(&text(input)),
            text(input).starts_with(&text(output)),
        )
    } else {
        let (input, output) = (resolve(input), resolve(output));
        (output.starts_with(&input), input.starts_with(&output))
    };
    if output_inside {
        return Err(JobError::OutputInsideInput {
            output: output.into(),
            input: input.into(),
        });
    }
    if input_inside {
        return Err(JobError::InputInsideOutput {
            output: output.into(),
            input: input.into(),
        });
    }
    Ok(())
}

/// Rejects a partition key named like a column of an output table: written back as a hive
/// directory, it would shadow that column for every reader of the table (pyarrow, Spark).
fn check_partition_keys(keys: &[String]) -> Result<(), JobError> {
    for key in keys {
        for table in crate::output::Table::ALL {
            if table.schema().field_with_name(key).is_ok() {
                return Err(JobError::PartitionKeyIsColumn {
                    key: key.clone(),
                    table: table.name(),
                });
            }
        }
    }
    Ok(())
}

/// `path` made absolute: its deepest existing ancestor canonicalised (symlinks followed), then
/// the components below it applied lexically (`..` pops a component).
fn resolve(path: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    let base = loop {
        if let Ok(real) = fs_err::canonicalize(existing) {
            break real;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => break existing.to_path_buf(),
        }
    };
    let mut resolved = base;
    for component in rest.into_iter().rev() {
        match component {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_store_urls_pass_and_other_schemes_are_refused() {
        let ok = |p: &str| local_path("output.path", Path::new(p)).unwrap();
        assert_eq!(ok("s3://bucket/out"), PathBuf::from("s3://bucket/out"));
        assert_eq!(ok("gs://b/x"), PathBuf::from("gs://b/x"));
        assert_eq!(ok("out/x"), PathBuf::from("out/x"));
        assert_eq!(ok("file:///tmp/out"), PathBuf::from("/tmp/out"));
        assert_eq!(
            ok("dir/with ://odd name"),
            PathBuf::from("dir/with ://odd name")
        );
        for url in ["S4://typo", "hdfs://nn/x", "file://relative"] {
            let e = local_path("output.path", Path::new(url)).unwrap_err();
            assert!(matches!(e, JobError::UnsupportedScheme { .. }), "{url}");
            assert!(
                e.to_string().contains("`file://`")
                    && e.to_string().contains("`s3://`")
                    && e.to_string().contains(url),
                "{e}"
            );
        }
    }

    #[test]
    fn output_inside_input_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        fs_err::create_dir_all(&input).unwrap();
        assert!(check_output_location(&input, &input.join("out")).is_err());
        assert!(check_output_location(&input, &input).is_err());
        assert!(check_output_location(&input, &dir.path().join("out")).is_ok());
        // Through a symlink to the input, or through a missing directory and `..`.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        assert!(check_output_location(&input, &link.join("o2")).is_err());
        let sneaky = dir.path().join("zz/../in/o7");
        assert!(check_output_location(&input, &sneaky).is_err());
        assert!(check_output_location(&input, &dir.path().join("zz/../o8")).is_ok());
        assert!(check_output_location(&link, &input.join("o9")).is_err());
    }
}
