//! TF-IDF against a fixed vocabulary: documents a model was not fitted on, weighted with the
//! model's idf.
//!
//! [`Transformer`] is the `transform` half of a fitted vectoriser. It tokenises with the same
//! [`Analyzer`](super::Analyzer), looks every token up in the vocabulary, drops (and counts)
//! the tokens the vocabulary does not hold, and weights the rest exactly as
//! [`super::fit_transform`] does: the same tf table, the same idf, the same row order,
//! normalisation and snapping, so a document fitted on and the same document transformed get
//! the same bits (checked below).
//!
//! # Parallelism
//! Documents are cut into chunks of [`super::CHUNK_DOCS`] and the chunks concatenated in
//! order, so nothing depends on the thread count.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::CHUNK_DOCS;
use super::params::ValidVectorizeParams;
use super::tfidf::{TfTable, finish_row};
use super::tokenize::TokenBuffer;
use crate::sparse::Csr;

/// A fitted vocabulary and idf, ready to weight new documents.
#[derive(Debug)]
pub struct Transformer {
    params: ValidVectorizeParams,
    /// Column of each vocabulary term; terms whose idf is 0 are absent (they weigh nothing,
    /// and `fit_transform` stores no zero weight) but counted in `known`.
    columns: FxHashMap<String, u32>,
    /// Vocabulary terms whose idf is 0: known, never stored.
    weightless: rustc_hash::FxHashSet<String>,
    idf: Vec<f32>,
    tf: TfTable,
}

/// Rows of transformed documents and what the vocabulary did not know.
#[derive(Debug)]
pub struct Transformed {
    /// One L2-normalised row per document, over the vocabulary's columns.
    pub matrix: Csr,
    /// Tokens seen (after stop words and filters).
    pub n_tokens: u64,
    /// Of those, tokens not in the vocabulary (dropped).
    pub n_oov_tokens: u64,
    /// Documents with no vocabulary term (empty rows).
    pub n_empty: usize,
}

impl Transformer {
    /// A transformer for `terms` (in column order) with their `idf`, tokenising with `params`.
    pub fn new(params: ValidVectorizeParams, terms: &[String], idf: Vec<f32>) -> Self {
        assert_eq!(terms.len(), idf.len(), "one idf per term");
        let mut columns = FxHashMap::default();
        columns.reserve(terms.len());
        let mut weightless = rustc_hash::FxHashSet::default();
        for (j, (term, &w)) in terms.iter().zip(&idf).enumerate() {
            if w == 0.0 {
                weightless.insert(term.clone());
            } else {
                columns.insert(term.clone(), j as u32);
            }
        }
        let tf = TfTable::new(params.sublinear_tf);
        Self {
            params,
            columns,
            weightless,
            idf,
            tf,
        }
    }

    /// Number of columns.
    pub fn n_terms(&self) -> usize {
        self.idf.len()
    }

    /// The TF-IDF rows of `texts`, in input order.
    pub fn transform(&self, texts: &[&str]) -> Transformed {
        let chunks: Vec<Chunk> = texts
            .par_chunks(CHUNK_DOCS)
            .map(|chunk| self.transform_chunk(chunk))
            .collect();
        let nnz: usize = chunks.iter().map(|c| c.indices.len()).sum();
        let mut indptr = Vec::with_capacity(texts.len() + 1);
        indptr.push(0usize);
        let (mut indices, mut data) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz));
        let (mut n_tokens, mut n_oov_tokens, mut n_empty) = (0, 0, 0);
        for c in chunks {
            let base = indices.len();
            indptr.extend(c.indptr[1..].iter().map(|&p| base + p));
            indices.extend(c.indices);
            data.extend(c.data);
            n_tokens += c.n_tokens;
            n_oov_tokens += c.n_oov_tokens;
        }
        for w in indptr.windows(2) {
            n_empty += usize::from(w[0] == w[1]);
        }
        Transformed {
            matrix: Csr::new((texts.len(), self.n_terms()), indptr, indices, data),
            n_tokens,
            n_oov_tokens,
            n_empty,
        }
    }

    fn transform_chunk(&self, texts: &[&str]) -> Chunk {
        let analyzer = self.params.analyzer();
        let mut out = Chunk {
            indptr: vec![0],
            ..Chunk::default()
        };
        let mut buffer = TokenBuffer::default();
        let mut columns: Vec<u32> = Vec::new();
        let mut row: Vec<(u32, f32)> = Vec::new();
        for text in texts {
            columns.clear();
            let mut on_token = |token: &str| {
                out.n_tokens += 1;
                match self.columns.get(token) {
                    Some(&j) => columns.push(j),
                    None => out.n_oov_tokens += u64::from(!self.weightless.contains(token)),
                }
            };
            if analyzer.words_are_tokens() {
                analyzer.for_each_word(text, &mut buffer, |word| {
                    // A vocabulary word was kept at fit time; only unknown words need the
                    // stop-word and length checks.
                    if self.columns.contains_key(word) || analyzer.keeps_word(word) {
                        on_token(word);
                    }
                });
            } else {
                analyzer.for_each_token(text, &mut buffer, on_token);
            }
            columns.sort_unstable();
            row.clear();
            let mut i = 0;
            while i < columns.len() {
                let j = columns[i];
                let mut n = 1;
                while i + n < columns.len() && columns[i + n] == j {
                    n += 1;
                }
                row.push((j, self.tf.get(n as u32) * self.idf[j as usize]));
                i += n;
            }
            let start = out.data.len();
            out.indices.extend(row.iter().map(|&(j, _)| j));
            out.data.extend(row.iter().map(|&(_, w)| w));
            finish_row(&mut out.data[start..]);
            out.indptr.push(out.indices.len());
        }
        out
    }
}

/// One chunk's rows, before concatenation.
#[derive(Default)]
struct Chunk {
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f32>,
    n_tokens: u64,
    n_oov_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{DfBound, TokenizerKind, VectorizeParams, fit_transform};

    fn params(tokenizer: TokenizerKind) -> ValidVectorizeParams {
        VectorizeParams {
            tokenizer,
            min_df: DfBound::Count(1),
            max_df: DfBound::Fraction(1.0),
            ..VectorizeParams::default()
        }
        .check()
        .unwrap()
    }

    fn corpus() -> Vec<String> {
        (0..2500)
            .map(|i| {
                format!(
                    "Topic{} word{} the word{} 한국어{} shared common and more{}",
                    i % 5,
                    i % 17,
                    i % 29,
                    i % 3,
                    i % 101
                )
            })
            .collect()
    }

    #[test]
    fn transforming_the_fitted_documents_gives_the_fitted_rows_bit_for_bit() {
        for kind in [TokenizerKind::Word, TokenizerKind::CharNgrams] {
            let texts = corpus();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let p = params(kind);
            let fitted = fit_transform(&p, &refs);
            let t = Transformer::new(p, fitted.vocabulary.terms(), fitted.idf.clone());
            let again = t.transform(&refs);
            assert_eq!(again.matrix, fitted.matrix, "{kind:?}");
            assert_eq!(again.n_empty, fitted.n_empty);
            // "shared" and "common" are in every document: idf 0, known but weightless.
            assert_eq!(again.n_oov_tokens, 0, "{kind:?}");
            assert!(again.n_tokens > 0);
        }
    }

    #[test]
    fn unknown_tokens_are_dropped_and_counted() {
        let p = params(TokenizerKind::Word);
        let fitted = fit_transform(&p, &["apple banana", "banana cherry", "zz"]);
        let t = Transformer::new(p, fitted.vocabulary.terms(), fitted.idf.clone());
        let out = t.transform(&["apple durian durian", "the elderberry", "banana"]);
        // Stop word "the" is not a token; durian ×2 and elderberry are unknown.
        assert_eq!((out.n_tokens, out.n_oov_tokens, out.n_empty), (5, 3, 1));
        let row0 = crate::sparse::row(&out.matrix, 0);
        assert_eq!(row0.indices, &[0]);
        assert!((row0.values[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn output_does_not_depend_on_the_thread_count() {
        let texts = corpus();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let p = params(TokenizerKind::Word);
        let fitted = fit_transform(&p, &refs[..1000]);
        let t = Transformer::new(p, fitted.vocabulary.terms(), fitted.idf.clone());
        let on = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
                .install(|| t.transform(&refs).matrix)
        };
        assert_eq!(on(1), on(2));
    }
}
