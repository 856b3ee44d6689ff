//! Whole words per document, for the keywords of a clustering on character n-grams.

use super::plan::JobPlan;
use crate::text;

/// Which whole words each document uses: the terms of keywords for a clustering on
/// character n-grams, whose tokens are fragments of words.
pub(super) struct WordIncidence {
    /// Documents × words, one entry per distinct word of a document (value 1).
    pub(super) matrix: crate::sparse::Csr,
    /// Documents that use each word.
    pub(super) df: Vec<u32>,
    pub(super) terms: Vec<String>,
}

impl WordIncidence {
    pub(super) fn of(plan: &JobPlan, texts: &[&str]) -> Self {
        let analyzer = plan.vectorize.analyzer();
        let mut ids: rustc_hash::FxHashMap<String, u32> = Default::default();
        let mut terms: Vec<String> = Vec::new();
        let mut df: Vec<u32> = Vec::new();
        let (mut indptr, mut indices) = (vec![0usize], Vec::new());
        let mut buffer = text::TokenBuffer::default();
        let mut row: Vec<u32> = Vec::new();
        for text in texts {
            row.clear();
            analyzer.for_each_kept_word(text, &mut buffer, |word| {
                let id = match ids.get(word) {
                    Some(&id) => id,
                    None => {
                        let id = terms.len() as u32;
                        ids.insert(word.to_owned(), id);
                        terms.push(word.to_owned());
                        df.push(0);
                        id
                    }
                };
                row.push(id);
            });
            row.sort_unstable();
            row.dedup();
            for &j in &row {
                df[j as usize] += 1;
            }
            indices.extend_from_slice(&row);
            indptr.push(indices.len());
        }
        let data = vec![1.0f32; indices.len()];
        let matrix = crate::sparse::Csr::new((texts.len(), terms.len()), indptr, indices, data);
        Self { matrix, df, terms }
    }
}
