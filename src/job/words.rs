//! Korean and whole words: the Korean word table a plan learns from its input, and whole
//! words per document, for the keywords of a clustering on character n-grams.

use std::time::Instant;

use rayon::prelude::*;
use tracing::info;

use super::JobError;
use super::documents::BATCH_ROWS;
use super::plan::JobPlan;
use crate::io::DocumentBatches;
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

/// The plan with the Korean word table learned from every readable document of its input,
/// when its tokeniser splits Korean words for its tokens (`korean`, `korean_ngrams`) or its
/// keywords (`char_ngrams`); `None` when the plan needs no table. A fit and a run learn the
/// same table from the same input, whatever the scope, the sample or the engine.
pub(super) fn learn_korean(plan: &JobPlan) -> Result<Option<JobPlan>, JobError> {
    let analyzer = plan.vectorize.analyzer();
    if plan.vectorize.has_korean() || !analyzer.needs_korean(plan.spec.keywords_are_words()) {
        return Ok(None);
    }
    let t = Instant::now();
    let input = &plan.spec.input;
    let counters: Vec<text::WordCounter> = plan
        .dataset
        .partitions
        .par_iter()
        .filter(|p| p.problem.is_none())
        .map(|partition| {
            let mut counter = text::WordCounter::default();
            let mut buffer = text::TokenBuffer::default();
            let batches =
                DocumentBatches::new(partition, &input.id_column, &input.text_column, BATCH_ROWS);
            for next in batches {
                let (_, docs) = next?;
                for text in docs.texts.iter().flatten() {
                    analyzer.count_korean(text, &mut buffer, &mut counter);
                }
            }
            Ok(counter)
        })
        .collect::<Result<_, JobError>>()?;
    let mut counter = text::WordCounter::default();
    for c in counters {
        counter.merge(c);
    }
    let n_words = counter.n_words();
    let words = counter.learn();
    info!(
        n_words,
        n_stems = words.n_stems(),
        seconds = t.elapsed().as_secs_f64(),
        "Korean word table learned"
    );
    let mut learned = plan.clone();
    learned.vectorize = plan.vectorize.with_korean(words);
    Ok(Some(learned))
}
