//! What the input path selects: a directory, a file, several paths, or a glob of files.

use std::path::{Path, PathBuf};

use crate::io::InputError;

/// What `input.path` selects: a root directory (or file), and, for a list of paths or a glob,
/// the patterns that files under the root must match (relative to it, `/`-separated).
#[derive(Debug, Clone)]
pub struct Selection {
    pub root: PathBuf,
    patterns: Option<globset::GlobSet>,
}

/// True when `text` holds a glob metacharacter.
pub(super) fn is_glob(text: &str) -> bool {
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
    pub(super) fn selects(&self, path: &Path) -> bool {
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
