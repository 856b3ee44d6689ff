//! The vocabulary: which terms become columns, in which order, and the idf of each.
//!
//! Terms are kept when `min_df <= df <= max_df`; `max_features` then keeps the most frequent
//! terms by total count (ties by term). Kept terms are sorted by their UTF-8 bytes, which gives
//! the column order. `idf = ln((1 + n) / (1 + df))`, plus 1 when `idf_add_one` is set
//! (scikit-learn) and without it as in Spark.

use rayon::prelude::*;

use super::params::ValidVectorizeParams;

/// The fitted vocabulary: terms in column order with their document frequencies.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    terms: Vec<String>,
    df: Vec<u32>,
}

impl Vocabulary {
    /// Term of column `term_idx`.
    pub fn term(&self, term_idx: usize) -> &str {
        &self.terms[term_idx]
    }

    /// All terms, in column order.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// Document frequency of each term, in column order.
    pub fn df(&self) -> &[u32] {
        &self.df
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// True when no term survived the bounds.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms where `keep[column]`, in column order.
    pub(super) fn retain(&self, keep: &[bool]) -> Self {
        let (mut terms, mut df) = (Vec::new(), Vec::new());
        for ((term, &d), &k) in self.terms.iter().zip(&self.df).zip(keep) {
            if k {
                terms.push(term.clone());
                df.push(d);
            }
        }
        Self { terms, df }
    }
}

/// The chosen columns: the vocabulary, the idf of each column, and the column of every
/// distinct term (`u32::MAX` for a term that was not kept).
pub(super) struct Selection {
    pub(super) vocabulary: Vocabulary,
    pub(super) idf: Vec<f32>,
    pub(super) column_of: Vec<u32>,
}

/// The idf of a term in `df` of `n_docs` documents.
pub(super) fn idf_of(params: &ValidVectorizeParams, n_docs: usize, df: u32) -> f32 {
    let base = ((1.0 + n_docs as f64) / (1.0 + f64::from(df))).ln();
    (if params.idf_add_one { base + 1.0 } else { base }) as f32
}

/// Whether a term in `df` of `n_docs` documents is within the `min_df` / `max_df` bounds.
pub(super) fn within_bounds(params: &ValidVectorizeParams, n_docs: usize, df: u32) -> bool {
    let d = f64::from(df);
    d >= params.min_df.as_count(n_docs) && d <= params.max_df.as_count(n_docs)
}

/// Selects the vocabulary among `global_terms` (with their document frequencies `df` and
/// total counts `total`) of `n_docs` documents, and computes the idf.
pub(super) fn select(
    params: &ValidVectorizeParams,
    n_docs: usize,
    global_terms: &[&str],
    df: &[u32],
    total: &[u64],
) -> Selection {
    // Select the vocabulary.
    let mut kept: Vec<u32> = (0..global_terms.len() as u32)
        .filter(|&g| within_bounds(params, n_docs, df[g as usize]))
        .collect();
    if let Some(max_features) = params.max_features
        && kept.len() > max_features
    {
        kept.sort_unstable_by(|&a, &b| {
            total[b as usize]
                .cmp(&total[a as usize])
                .then_with(|| global_terms[a as usize].cmp(global_terms[b as usize]))
        });
        kept.truncate(max_features);
    }
    // Sorted by bytes, comparing first the first 8 bytes as a big-endian integer (padded
    // with zeros, which orders like the bytes: a string before its extensions) and only
    // on a tie the whole strings, so most comparisons read no term bytes.
    let prefix = |g: u32| {
        let bytes = global_terms[g as usize].as_bytes();
        let mut p = [0u8; 8];
        let n = bytes.len().min(8);
        p[..n].copy_from_slice(&bytes[..n]);
        u64::from_be_bytes(p)
    };
    let mut keyed: Vec<(u64, u32)> = kept.par_iter().map(|&g| (prefix(g), g)).collect();
    keyed.par_sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| global_terms[a.1 as usize].cmp(global_terms[b.1 as usize]))
    });
    let kept: Vec<u32> = keyed.into_iter().map(|(_, g)| g).collect();
    let mut column_of = vec![u32::MAX; global_terms.len()];
    for (column, &g) in kept.iter().enumerate() {
        column_of[g as usize] = column as u32;
    }
    let idf: Vec<f32> = kept
        .iter()
        .map(|&g| idf_of(params, n_docs, df[g as usize]))
        .collect();
    let vocabulary = Vocabulary {
        df: kept.iter().map(|&g| df[g as usize]).collect(),
        terms: kept
            .iter()
            .map(|&g| global_terms[g as usize].to_owned())
            .collect(),
    };
    Selection {
        vocabulary,
        idf,
        column_of,
    }
}

#[cfg(test)]
mod tests {
    use crate::text::params::testing::plain as params;
    use crate::text::{DfBound, VectorizeParams, fit_transform};

    #[test]
    fn df_bounds_count_and_fraction() {
        // df: common = 4, mid = 2, rare = 1; n = 4.
        let texts = ["common mid rare", "common mid", "common", "common"];
        let terms = |min, max| {
            fit_transform(&params(min, max), &texts)
                .vocabulary
                .terms()
                .to_vec()
        };
        assert_eq!(
            terms(DfBound::Count(2), DfBound::Fraction(1.0)),
            ["common", "mid"]
        );
        assert_eq!(
            terms(DfBound::Count(1), DfBound::Fraction(0.5)),
            ["mid", "rare"]
        );
        assert_eq!(terms(DfBound::Fraction(0.5), DfBound::Count(3)), ["mid"]);
    }

    #[test]
    fn max_features_keeps_the_most_frequent_terms() {
        let p = VectorizeParams {
            stopwords: "none".into(),
            min_df: DfBound::Count(1),
            max_df: DfBound::Fraction(1.0),
            max_features: Some(2),
            ..VectorizeParams::default()
        }
        .check()
        .unwrap();
        let v = fit_transform(&p, &["bb bb bb cc", "aa aa cc", "dd"]);
        assert_eq!(v.vocabulary.terms(), &["aa", "bb"]);
    }

    #[test]
    fn vocabulary_is_in_byte_order_when_terms_share_long_prefixes() {
        let p = VectorizeParams {
            stopwords: "none".into(),
            min_df: DfBound::Count(1),
            max_df: DfBound::Fraction(1.0),
            ..VectorizeParams::default()
        }
        .check()
        .unwrap();
        let words = "internationalization internationalisation international internationally \
                     interna intern internal internals internationalizations interz zz";
        let v = fit_transform(&p, &[words, "internationalist internationalism"]);
        let mut expected: Vec<&str> = words.split_whitespace().collect();
        expected.extend(["internationalist", "internationalism"]);
        expected.sort_unstable();
        assert_eq!(v.vocabulary.terms(), expected.as_slice());
    }
}
