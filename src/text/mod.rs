//! Text to vectors: tokenising, stop words, the vocabulary and TF-IDF.
//!
//! The stages, one file each: [`params`] checks the `[vectorize]` section; [`tokenize`] cuts
//! a document into terms, with [`korean`] splitting Korean words into their noun or stem and
//! their particle or ending; [`counts`] tokenises documents by chunks and merges the chunk
//! dictionaries ([`interner`] is a chunk's dictionary); [`vocabulary`] picks the columns and
//! their idf; [`tfidf`] weights the counted documents into L2-normalised rows of a
//! [`crate::sparse::Csr`]; [`transform`] weights new documents against a fitted vocabulary. Reading documents from storage is [`crate::io`]'s job, not this
//! module's.

mod ascii;
pub mod counts;
pub mod interner;
pub mod korean;
pub mod params;
pub mod tfidf;
pub mod tokenize;
pub mod transform;
pub mod vocabulary;

pub use counts::{CHUNK_DOCS, Counted, count};
pub use korean::{KoreanWords, WordCounter};
pub use params::{
    DfBound, TokenizerKind, ValidVectorizeParams, VectorizeParamError, VectorizeParams,
};
pub use tfidf::{Rebased, Vectorized, fit_transform};
pub use tokenize::{Analyzer, TOKEN_SEPARATOR, TokenBuffer, Tokenizer, WordFilters, is_numeric};
pub use transform::{Transformed, Transformer};
pub use vocabulary::Vocabulary;
