//! The `[vectorize]` parameters: as written (`VectorizeParams`), then checked
//! (`ValidVectorizeParams`, which holds the built [`Analyzer`] and the stop words).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::korean::{self, KoreanWords};
use super::tokenize::{Analyzer, Tokenizer, WordFilters};

const ENGLISH_STOPWORDS: &str = include_str!("stopwords_english.txt");

/// The built-in stop lists, by the name `vectorize.stopwords` gives them.
pub const BUILT_IN_STOPWORDS: [&str; 3] = ["english", "korean", "none"];

/// Which tokeniser the `[vectorize]` section selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// Unicode words.
    Word,
    /// Character n-grams within words.
    CharNgrams,
    /// Korean nouns: the L part of each word that is a noun, its particle or ending stripped.
    Korean,
    /// Character n-grams within each Korean noun, plus the noun.
    KoreanNgrams,
    /// Tokens made upstream: a `list<string>` column, `input.tokens_column`.
    Column,
}

/// A document-frequency bound: an integer is a document count, a float in `[0, 1]` a fraction
/// of the documents (as in scikit-learn and Spark).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DfBound {
    /// A number of documents.
    Count(u64),
    /// A fraction of the documents.
    Fraction(f64),
}

/// The forms a [`DfBound`] may take, for messages.
const DF_BOUND_FORMS: &str =
    "a document count (an integer, at least 0) or a fraction of the documents (a float in [0, 1])";

impl<'de> Deserialize<'de> for DfBound {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = DfBound;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(DF_BOUND_FORMS)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DfBound, E> {
                Ok(DfBound::Count(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DfBound, E> {
                u64::try_from(v)
                    .map(DfBound::Count)
                    .map_err(|_| E::custom(format!("expected {DF_BOUND_FORMS}, got {v}")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<DfBound, E> {
                Ok(DfBound::Fraction(v))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl DfBound {
    pub(super) fn as_count(self, n_docs: usize) -> f64 {
        match self {
            DfBound::Count(c) => c as f64,
            DfBound::Fraction(f) => f * n_docs as f64,
        }
    }
}

/// The `[vectorize]` section as written by the user. The field comments are the job-spec
/// reference (`docs/job-spec.md` is generated from them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VectorizeParams {
    /// `word`: Unicode word boundaries (UAX #29), lowercased. `char_ngrams`: character n-grams
    /// within each word, for Korean and other languages whose whitespace tokens carry
    /// particles. `korean`: the noun of each Korean word, its particle or ending stripped by a
    /// word table learned from the corpus and saved with the model (verbs make no token).
    /// `korean_ngrams`: the character n-grams within each noun, plus the noun (recommended
    /// for Korean, see the guide). `column`: the tokens of the `list<string>` column
    /// `input.tokens_column`, made upstream (Kiwi, Mecab, Spark), as they are but lowercased.
    pub tokenizer: TokenizerKind,
    /// `word`, `korean`, `korean_ngrams` (the noun), `column`: shortest token kept, in
    /// characters.
    pub min_token_len: usize,
    /// `char_ngrams`, `korean_ngrams`: the shortest n-gram, in characters.
    pub ngram_min: usize,
    /// `char_ngrams`, `korean_ngrams`: the longest n-gram, in characters.
    pub ngram_max: usize,
    /// `english` (built-in list of 319 words), `korean` (built-in list of function words,
    /// auxiliaries and reporting verbs, compared with each word and with its L part), `none`,
    /// or the path of a file with one word per line (`#` starts a comment). Unset: `korean`
    /// with the `korean` and `korean_ngrams` tokenisers, `english` with the others.
    pub stopwords: String,
    /// Drop terms in fewer documents. An integer is a count; a float in [0, 1] a fraction of
    /// documents.
    pub min_df: DfBound,
    /// Drop terms in more documents. Same forms as `min_df`.
    pub max_df: DfBound,
    /// Keep at most this many terms, the most frequent by total count.
    pub max_features: Option<usize>,
    /// Term frequency `1 + ln(tf)` instead of the raw count.
    pub sublinear_tf: bool,
    /// idf = `ln((1 + n) / (1 + df))`, plus 1 when set (scikit-learn's form). Without the +1
    /// (Spark's form) is the default: on 20 Newsgroups it clusters better (mean NMI 0.62
    /// against 0.57, see below).
    pub idf_add_one: bool,
    /// Drop words made only of digits and punctuation (`1993`, `3.5`). Unset means on for
    /// `word`, `korean` and `korean_ngrams`, off for `char_ngrams` and `column`. On `word` it
    /// raised AG News by 0.012 and cost BBC 0.004; on `char_ngrams` it cost the Korean articles
    /// 0.019; on `korean_ngrams` it raised the Korean articles by 0.015 and the petitions by
    /// 0.004.
    pub drop_numbers: Option<bool>,
    /// Drop host names and the dotted parts of e-mail addresses and URLs
    /// (`rocket.sw.stratus.com`: a dotted word whose last part is a top-level domain; `win.ini`
    /// stays). Measured over seeds 0-4: NMI +0.006 on 20 Newsgroups, within ±0.002 elsewhere.
    pub drop_hosts: bool,
}

impl Default for VectorizeParams {
    fn default() -> Self {
        Self {
            tokenizer: TokenizerKind::Word,
            min_token_len: 2,
            ngram_min: 2,
            ngram_max: 3,
            stopwords: "english".to_owned(),
            min_df: DfBound::Count(2),
            max_df: DfBound::Fraction(0.5),
            max_features: None,
            sublinear_tf: true,
            idf_add_one: false,
            drop_numbers: None,
            drop_hosts: true,
        }
    }
}

/// A rule of [`VectorizeParams`] that a value breaks.
#[derive(Debug, thiserror::Error)]
pub enum VectorizeParamError {
    #[error("`vectorize.min_token_len` must be at least 1, got {0}")]
    MinTokenLen(usize),
    #[error("`vectorize.ngram_min` must be at least 1 and at most `ngram_max`, got {min}..{max}")]
    NgramRange { min: usize, max: usize },
    #[error(
        "`vectorize.{key}` is a fraction {value} outside [0, 1]\nhint: write an integer for a document count"
    )]
    DfFraction { key: &'static str, value: f64 },
    #[error("`vectorize.min_df` ({min:?}) is above `vectorize.max_df` ({max:?})")]
    DfOrder { min: DfBound, max: DfBound },
    #[error("`vectorize.max_features` must be at least 1")]
    MaxFeatures,
    #[error(
        "`vectorize.stopwords` = \"{}\" is neither a built-in list ({}) nor a readable stop-word file",
        path.display(), BUILT_IN_STOPWORDS.join(", ")
    )]
    StopwordsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Checked vectoriser parameters; build with [`VectorizeParams::check`].
#[derive(Debug, Clone)]
pub struct ValidVectorizeParams {
    analyzer: Analyzer,
    /// Whether the Korean word table was learned or loaded ([`Self::with_korean`]).
    korean_set: bool,
    pub(super) min_df: DfBound,
    pub(super) max_df: DfBound,
    pub(super) max_features: Option<usize>,
    pub(super) sublinear_tf: bool,
    pub(super) idf_add_one: bool,
}

impl ValidVectorizeParams {
    /// The tokeniser and stop words.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// These parameters, splitting Korean words with `words` (learned from the input, or a
    /// model's).
    pub fn with_korean(&self, words: KoreanWords) -> Self {
        Self {
            analyzer: self.analyzer.clone().with_korean(words),
            korean_set: true,
            ..self.clone()
        }
    }

    /// Whether a Korean word table was learned or loaded into these parameters.
    pub fn has_korean(&self) -> bool {
        self.korean_set
    }

    /// The parameters for a vocabulary built on a sample of `fraction` of the documents: a
    /// `min_df` or `max_df` given as a number of documents counts documents of the whole
    /// input, so on the sample it is that number times `fraction`, rounded, at least 1.
    /// Fractions and `max_features` do not change.
    pub fn for_sample(&self, fraction: f64) -> Self {
        let scale = |bound: DfBound| match bound {
            DfBound::Count(c) if fraction < 1.0 => {
                DfBound::Count(((c as f64 * fraction).round() as u64).max(1))
            }
            other => other,
        };
        Self {
            min_df: scale(self.min_df),
            max_df: scale(self.max_df),
            ..self.clone()
        }
    }
}

impl VectorizeParams {
    /// These parameters with every unset key given the value it takes in effect (`drop_numbers`
    /// unset means on for `word`, `korean` and `korean_ngrams`), so two specs that vectorise the same
    /// way compare equal.
    pub fn effective(&self) -> Self {
        let mut params = self.clone();
        params.drop_numbers = Some(self.drop_numbers_in_effect());
        params
    }

    /// Whether numbers are dropped: `drop_numbers`, or when unset, on for `word`, `korean` and
    /// `korean_ngrams`.
    fn drop_numbers_in_effect(&self) -> bool {
        self.drop_numbers.unwrap_or(matches!(
            self.tokenizer,
            TokenizerKind::Word | TokenizerKind::Korean | TokenizerKind::KoreanNgrams
        ))
    }

    /// Checks every rule, returning all the broken ones. Reads the stop-word file if one is set.
    pub fn check(&self) -> Result<ValidVectorizeParams, Vec<VectorizeParamError>> {
        self.check_with_stopwords(None)
    }

    /// As [`Self::check`], with the stop words given rather than read from `stopwords` (a
    /// saved model keeps the words of its stop-word file).
    pub fn check_with_stopwords(
        &self,
        kept: Option<&[String]>,
    ) -> Result<ValidVectorizeParams, Vec<VectorizeParamError>> {
        let mut errors = Vec::new();
        if self.min_token_len < 1 {
            errors.push(VectorizeParamError::MinTokenLen(self.min_token_len));
        }
        if self.ngram_min < 1 || self.ngram_min > self.ngram_max {
            errors.push(VectorizeParamError::NgramRange {
                min: self.ngram_min,
                max: self.ngram_max,
            });
        }
        for (key, bound) in [("min_df", self.min_df), ("max_df", self.max_df)] {
            if let DfBound::Fraction(value) = bound
                && !(0.0..=1.0).contains(&value)
            {
                errors.push(VectorizeParamError::DfFraction { key, value });
            }
        }
        let same_kind_and_inverted = match (self.min_df, self.max_df) {
            (DfBound::Count(a), DfBound::Count(b)) => a > b,
            (DfBound::Fraction(a), DfBound::Fraction(b)) => a > b,
            _ => false,
        };
        if same_kind_and_inverted {
            errors.push(VectorizeParamError::DfOrder {
                min: self.min_df,
                max: self.max_df,
            });
        }
        if self.max_features == Some(0) {
            errors.push(VectorizeParamError::MaxFeatures);
        }
        let stopwords: Vec<String> = match (kept, self.stopwords.as_str()) {
            (Some(words), _) => words.to_vec(),
            (None, "english") => ENGLISH_STOPWORDS.lines().map(str::to_owned).collect(),
            (None, "korean") => korean::list_lines(korean::STOPWORDS)
                .map(str::to_owned)
                .collect(),
            (None, "none") => Vec::new(),
            (None, path) => match fs_err::read_to_string(path) {
                Ok(text) => text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned)
                    .collect(),
                Err(source) => {
                    errors.push(VectorizeParamError::StopwordsFile {
                        path: path.into(),
                        source,
                    });
                    Vec::new()
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let tokenizer = match self.tokenizer {
            TokenizerKind::Word => Tokenizer::Word {
                min_len: self.min_token_len,
            },
            TokenizerKind::CharNgrams => Tokenizer::CharNgrams {
                min: self.ngram_min,
                max: self.ngram_max,
            },
            TokenizerKind::Korean => Tokenizer::Korean {
                min_len: self.min_token_len,
            },
            TokenizerKind::KoreanNgrams => Tokenizer::KoreanNgrams {
                min: self.ngram_min,
                max: self.ngram_max,
                min_len: self.min_token_len,
            },
            TokenizerKind::Column => Tokenizer::Column {
                min_len: self.min_token_len,
            },
        };
        Ok(ValidVectorizeParams {
            analyzer: Analyzer::with_filters(
                tokenizer,
                stopwords,
                WordFilters {
                    numbers: self.drop_numbers_in_effect(),
                    hosts: self.drop_hosts,
                },
            ),
            korean_set: false,
            min_df: self.min_df,
            max_df: self.max_df,
            max_features: self.max_features,
            sublinear_tf: self.sublinear_tf,
            idf_add_one: self.idf_add_one,
        })
    }
}

/// Parameters for tests elsewhere in `text`.
#[cfg(test)]
pub(super) mod testing {
    use super::*;

    /// No stop words, raw counts, the given df bounds.
    pub(in crate::text) fn plain(min_df: DfBound, max_df: DfBound) -> ValidVectorizeParams {
        VectorizeParams {
            stopwords: "none".into(),
            min_df,
            max_df,
            sublinear_tf: false,
            ..VectorizeParams::default()
        }
        .check()
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_param_rule_is_checked() {
        let bad = |f: fn(&mut VectorizeParams)| {
            let mut p = VectorizeParams::default();
            f(&mut p);
            p.check().unwrap_err()
        };
        assert!(matches!(
            bad(|p| p.min_token_len = 0)[..],
            [VectorizeParamError::MinTokenLen(0)]
        ));
        assert!(matches!(
            bad(|p| p.ngram_min = 4)[..],
            [VectorizeParamError::NgramRange { .. }]
        ));
        assert!(matches!(
            bad(|p| p.max_df = DfBound::Fraction(1.5))[..],
            [VectorizeParamError::DfFraction { key: "max_df", .. }]
        ));
        assert!(matches!(
            bad(|p| {
                p.min_df = DfBound::Count(5);
                p.max_df = DfBound::Count(3);
            })[..],
            [VectorizeParamError::DfOrder { .. }]
        ));
        assert!(matches!(
            bad(|p| p.max_features = Some(0))[..],
            [VectorizeParamError::MaxFeatures]
        ));
        assert!(matches!(
            bad(|p| p.stopwords = "/nonexistent/stop.txt".into())[..],
            [VectorizeParamError::StopwordsFile { .. }]
        ));
        let unknown = bad(|p| p.stopwords = "korea".into());
        assert_eq!(
            unknown[0].to_string(),
            "`vectorize.stopwords` = \"korea\" is neither a built-in list (english, korean, none) nor a readable stop-word file"
        );
    }

    #[test]
    fn the_korean_stop_list_drops_function_words_and_reporting_verbs() {
        let p = VectorizeParams {
            tokenizer: TokenizerKind::Korean,
            stopwords: "korean".into(),
            ..VectorizeParams::default()
        }
        .check()
        .unwrap();
        let tokens = p
            .analyzer()
            .tokens("북한은 있다고 밝혔다 것으로 따르면 정상회담을");
        assert_eq!(tokens, vec!["북한", "정상회담"]);
    }

    #[test]
    fn document_counts_scale_to_a_sample() {
        let p = VectorizeParams {
            min_df: DfBound::Count(5),
            max_df: DfBound::Fraction(0.5),
            ..VectorizeParams::default()
        }
        .check()
        .unwrap();
        let s = p.for_sample(0.3);
        assert_eq!(
            (s.min_df, s.max_df),
            (DfBound::Count(2), DfBound::Fraction(0.5))
        );
        assert_eq!(p.for_sample(0.01).min_df, DfBound::Count(1));
        assert_eq!(p.for_sample(1.0).min_df, DfBound::Count(5));
    }
}
