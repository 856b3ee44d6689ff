//! Text to vectors: tokenising, stop words, the vocabulary and TF-IDF.
//!
//! [`tokenize`] cuts a document into terms; [`vectorize`] fits a vocabulary and idf on a set of
//! documents and returns their L2-normalised TF-IDF rows as a [`crate::sparse::Csr`].
//! Reading documents from storage is [`crate::io`]'s job, not this module's.

pub mod tokenize;
pub mod vectorize;

pub use tokenize::{Analyzer, TokenBuffer, Tokenizer};
pub use vectorize::{
    Counted, DfBound, TokenizerKind, ValidVectorizeParams, VectorizeParamError, VectorizeParams,
    Vectorized, Vocabulary, count, fit_transform,
};
