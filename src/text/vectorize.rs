//! Vocabulary and TF-IDF: texts in, L2-normalised CSR rows out.
//!
//! # Algorithm
//! 1. Documents are cut into fixed-size chunks ([`CHUNK_DOCS`]). Each chunk is tokenised on its
//!    own (in parallel), interning terms in a chunk-local dictionary and storing each document
//!    as sorted `(local term, count)` pairs. No per-document `String`s are kept. The dictionary
//!    (`Interner`) keys words of up to 16 bytes by two integer loads, and keeps every word's
//!    bytes in one arena per chunk, so interning allocates nothing per word. With the `word`
//!    tokeniser the stop-word and length checks run once per distinct word of the chunk.
//! 2. The chunk dictionaries are merged into global document frequencies (df) and total term
//!    counts, in parallel: terms are split into 64 shards by hash and each shard merges the
//!    chunks in order (see `merge_dictionaries`).
//! 3. Terms are kept when `min_df <= df <= max_df`; `max_features` then keeps the most frequent
//!    terms by total count (ties by term). Kept terms are sorted by their UTF-8 bytes, which
//!    gives the column order.
//! 4. Each chunk is remapped to vocabulary columns and weighted in parallel:
//!    `tf` is the raw count or `1 + ln(count)` (`sublinear_tf`), `idf = ln((1 + n) / (1 + df))`,
//!    plus 1 when `idf_add_one` is set (scikit-learn) and without it as in Spark. Rows are
//!    L2-normalised; a row with no kept terms stays empty.
//!
//! # Parallelism
//! Chunk boundaries do not depend on the thread count and merges run in chunk order, so the
//! output is bit-identical for any number of threads.

use std::path::PathBuf;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::tokenize::{Analyzer, TokenBuffer, Tokenizer};
use crate::sparse::{self, Csr};

/// Documents per tokenising chunk. Fixed, so results do not depend on the thread count.
pub const CHUNK_DOCS: usize = 1024;

const ENGLISH_STOPWORDS: &str = include_str!("stopwords_english.txt");

/// Which tokeniser the `[vectorize]` section selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// Unicode words.
    Word,
    /// Character n-grams within words.
    CharNgrams,
}

/// A document-frequency bound: an integer is a document count, a float in `[0, 1]` a fraction
/// of the documents (as in scikit-learn and Spark).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DfBound {
    /// A number of documents.
    Count(u64),
    /// A fraction of the documents.
    Fraction(f64),
}

impl DfBound {
    fn as_count(self, n_docs: usize) -> f64 {
        match self {
            DfBound::Count(c) => c as f64,
            DfBound::Fraction(f) => f * n_docs as f64,
        }
    }
}

/// The `[vectorize]` section as written by the user. See the README for each key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VectorizeParams {
    /// `word` or `char_ngrams`.
    pub tokenizer: TokenizerKind,
    /// Shortest word kept by the `word` tokeniser, in characters.
    pub min_token_len: usize,
    /// Shortest n-gram of the `char_ngrams` tokeniser.
    pub ngram_min: usize,
    /// Longest n-gram of the `char_ngrams` tokeniser.
    pub ngram_max: usize,
    /// `english` (built in), `none`, or the path of a file with one word per line.
    pub stopwords: String,
    /// Drop terms in fewer documents than this.
    pub min_df: DfBound,
    /// Drop terms in more documents than this.
    pub max_df: DfBound,
    /// Keep at most this many terms, the most frequent ones.
    pub max_features: Option<usize>,
    /// Use `1 + ln(tf)` instead of the raw count.
    pub sublinear_tf: bool,
    /// Add 1 to the smoothed idf (scikit-learn) or not (Spark).
    pub idf_add_one: bool,
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
    #[error("cannot read stop-word file `{}`", path.display())]
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
    min_df: DfBound,
    max_df: DfBound,
    max_features: Option<usize>,
    sublinear_tf: bool,
    idf_add_one: bool,
}

impl ValidVectorizeParams {
    /// The tokeniser and stop words.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }
}

impl VectorizeParams {
    /// Checks every rule, returning all the broken ones. Reads the stop-word file if one is set.
    pub fn check(&self) -> Result<ValidVectorizeParams, Vec<VectorizeParamError>> {
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
        let stopwords: Vec<String> = match self.stopwords.as_str() {
            "english" => ENGLISH_STOPWORDS.lines().map(str::to_owned).collect(),
            "none" => Vec::new(),
            path => match fs_err::read_to_string(path) {
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
        };
        Ok(ValidVectorizeParams {
            analyzer: Analyzer::new(tokenizer, stopwords),
            min_df: self.min_df,
            max_df: self.max_df,
            max_features: self.max_features,
            sublinear_tf: self.sublinear_tf,
            idf_add_one: self.idf_add_one,
        })
    }
}

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
}

/// A fitted TF-IDF model and the matrix of the documents it was fitted on.
#[derive(Debug)]
pub struct Vectorized {
    /// One L2-normalised row per input document.
    pub matrix: Csr,
    /// Terms in column order.
    pub vocabulary: Vocabulary,
    /// Inverse document frequency per column.
    pub idf: Vec<f32>,
    /// Documents whose row is empty (no kept term).
    pub n_empty: usize,
}

/// Terms and counts of one chunk, before the global vocabulary exists.
struct ChunkCounts {
    /// The chunk's distinct words, back to back; term `i` is `arena[spans[i].0..spans[i].1]`.
    arena: String,
    spans: Vec<(u32, u32)>,
    /// Per local term: documents of the chunk that use it, and its total count.
    df: Vec<u32>,
    total: Vec<u64>,
    row_lengths: Vec<u32>,
    term_ids: Vec<u32>,
    counts: Vec<u32>,
}

impl ChunkCounts {
    fn n_terms(&self) -> usize {
        self.spans.len()
    }

    fn term(&self, local: usize) -> &str {
        let (start, end) = self.spans[local];
        &self.arena[start as usize..end as usize]
    }
}

/// A word as a key of [`Interner`]: a word of at most 16 bytes is held as two (possibly
/// overlapping) little-endian loads, which with its length determine it, so a lookup compares
/// integers and follows no pointer; a longer word is a span of the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordKey {
    Short { lo: u64, hi: u64, len: u8 },
    Long { start: u32, end: u32 },
}

/// The short form of `word`, if it has at most 16 bytes.
fn short_key(word: &[u8]) -> Option<WordKey> {
    let n = word.len();
    let u64_at = |i: usize| u64::from_le_bytes(word[i..i + 8].try_into().expect("8 bytes"));
    let u32_at = |i: usize| {
        u64::from(u32::from_le_bytes(
            word[i..i + 4].try_into().expect("4 bytes"),
        ))
    };
    let (lo, hi) = match n {
        0 => (0, 0),
        // Bytes 0, n/2 and n-1 are all the bytes of a word of 1-3 bytes.
        1..=3 => (
            u64::from(word[0]) | u64::from(word[n / 2]) << 8 | u64::from(word[n - 1]) << 16,
            0,
        ),
        4..=7 => (u32_at(0), u32_at(n - 4)),
        8..=16 => (u64_at(0), u64_at(n - 8)),
        _ => return None,
    };
    Some(WordKey::Short {
        lo,
        hi,
        len: n as u8,
    })
}

/// The distinct words of a chunk, each with a value, found by one hash and (for words of up
/// to 16 bytes) an integer comparison.
struct Interner {
    table: hashbrown::HashTable<(WordKey, u32)>,
    /// Bytes of the words longer than 16 bytes: their keys are spans of it.
    arena: String,
}

impl Interner {
    fn new() -> Self {
        Self {
            table: hashbrown::HashTable::new(),
            arena: String::new(),
        }
    }

    fn hash(word: &[u8], key: Option<WordKey>) -> u64 {
        use std::hash::BuildHasher;
        match key {
            Some(WordKey::Short { lo, hi, len }) => {
                rustc_hash::FxBuildHasher.hash_one((lo, hi, len))
            }
            _ => rustc_hash::FxBuildHasher.hash_one(word),
        }
    }

    /// The value of `word`, inserting `new()` for a word not seen before.
    fn get_or_insert(&mut self, word: &str, new: impl FnOnce() -> u32) -> u32 {
        let bytes = word.as_bytes();
        let short = short_key(bytes);
        let hash = Self::hash(bytes, short);
        let arena = &self.arena;
        let found = self.table.find(hash, |&(key, _)| match (key, short) {
            (WordKey::Short { .. }, Some(probe)) => key == probe,
            (WordKey::Long { start, end }, None) => {
                &arena.as_bytes()[start as usize..end as usize] == bytes
            }
            _ => false,
        });
        if let Some(&(_, value)) = found {
            return value;
        }
        let key = short.unwrap_or_else(|| {
            let start = self.arena.len() as u32;
            self.arena.push_str(word);
            WordKey::Long {
                start,
                end: self.arena.len() as u32,
            }
        });
        let value = new();
        let arena = &self.arena;
        self.table
            .insert_unique(hash, (key, value), |&(key, _)| match key {
                WordKey::Long { start, end } => {
                    Self::hash(&arena.as_bytes()[start as usize..end as usize], None)
                }
                short => Self::hash(&[], Some(short)),
            });
        value
    }
}

fn count_chunk(analyzer: &Analyzer, texts: &[&str]) -> ChunkCounts {
    // Local id per distinct word or token, or `SKIP` for words that are not tokens.
    const SKIP: u32 = u32::MAX;
    let mut words = Interner::new();
    let mut chunk = ChunkCounts {
        arena: String::new(),
        spans: Vec::new(),
        df: Vec::new(),
        total: Vec::new(),
        row_lengths: Vec::with_capacity(texts.len()),
        term_ids: Vec::new(),
        counts: Vec::new(),
    };
    let mut buffer = TokenBuffer::default();
    let mut doc_terms: Vec<u32> = Vec::new();
    // A new term gets the next id and its bytes appended to the chunk's arena.
    let new_term = |token: &str, arena: &mut String, spans: &mut Vec<(u32, u32)>| {
        let start = arena.len() as u32;
        arena.push_str(token);
        spans.push((start, arena.len() as u32));
        spans.len() as u32 - 1
    };
    for text in texts {
        doc_terms.clear();
        if analyzer.words_are_tokens() {
            // Stop-word and length checks run once per distinct word, not per occurrence.
            analyzer.for_each_word(text, &mut buffer, |word| {
                let id = words.get_or_insert(word, || {
                    if analyzer.keeps_word(word) {
                        new_term(word, &mut chunk.arena, &mut chunk.spans)
                    } else {
                        SKIP
                    }
                });
                if id != SKIP {
                    doc_terms.push(id);
                }
            });
        } else {
            analyzer.for_each_token(text, &mut buffer, |token| {
                doc_terms.push(words.get_or_insert(token, || {
                    new_term(token, &mut chunk.arena, &mut chunk.spans)
                }));
            });
        }
        doc_terms.sort_unstable();
        chunk.df.resize(chunk.spans.len(), 0);
        chunk.total.resize(chunk.spans.len(), 0);
        let before = chunk.term_ids.len();
        for run in doc_terms.chunk_by(|a, b| a == b) {
            chunk.df[run[0] as usize] += 1;
            chunk.total[run[0] as usize] += run.len() as u64;
            chunk.term_ids.push(run[0]);
            chunk.counts.push(run.len() as u32);
        }
        chunk
            .row_lengths
            .push((chunk.term_ids.len() - before) as u32);
    }
    chunk
}

/// Shards of the dictionary merge: terms are split by hash so shards merge in parallel.
const MERGE_SHARDS: usize = 64;

/// The chunk dictionaries merged into one: every distinct term once, with its document
/// frequency, total count, and each chunk's map from local to global id.
struct Merged<'a> {
    global_terms: Vec<&'a str>,
    df: Vec<u32>,
    total: Vec<u64>,
    remaps: Vec<Vec<u32>>,
}

/// Merges the chunk dictionaries. Each shard of terms (by hash) is merged on its own, visiting
/// chunks in order; global ids are then shard by shard. The vocabulary is later sorted by
/// term, so ids never reach the output and the thread count changes nothing.
fn merge_dictionaries(chunks: &[ChunkCounts]) -> Merged<'_> {
    use std::hash::BuildHasher;
    let hasher = rustc_hash::FxBuildHasher;
    // Per chunk, its local term ids grouped by shard: `(shard starts, ids)`.
    let by_shard: Vec<(Vec<usize>, Vec<u32>)> = chunks
        .par_iter()
        .map(|chunk| {
            // Middle bits: the shard's hash map indexes by the low bits and tags its slots
            // with the top 7, so neither may be constant within a shard.
            let shard: Vec<u8> = (0..chunk.n_terms())
                .map(|t| ((hasher.hash_one(chunk.term(t)) >> 32) % MERGE_SHARDS as u64) as u8)
                .collect();
            let mut starts = vec![0usize; MERGE_SHARDS + 1];
            for &s in &shard {
                starts[usize::from(s) + 1] += 1;
            }
            for s in 0..MERGE_SHARDS {
                starts[s + 1] += starts[s];
            }
            let mut next = starts.clone();
            let mut ids = vec![0u32; shard.len()];
            for (local, &s) in shard.iter().enumerate() {
                ids[next[usize::from(s)]] = local as u32;
                next[usize::from(s)] += 1;
            }
            (starts, ids)
        })
        .collect();
    struct Shard<'a> {
        terms: Vec<&'a str>,
        df: Vec<u32>,
        total: Vec<u64>,
        /// Per chunk, `(local id, id in this shard)`.
        ids: Vec<Vec<(u32, u32)>>,
    }
    let shards: Vec<Shard<'_>> = (0..MERGE_SHARDS)
        .into_par_iter()
        .map(|shard| {
            let mut ids: FxHashMap<&str, u32> = FxHashMap::default();
            let mut out = Shard {
                terms: Vec::new(),
                df: Vec::new(),
                total: Vec::new(),
                ids: Vec::with_capacity(chunks.len()),
            };
            for (chunk, (starts, locals)) in chunks.iter().zip(&by_shard) {
                let mine = &locals[starts[shard]..starts[shard + 1]];
                let mut pairs = Vec::with_capacity(mine.len());
                for &local in mine {
                    let local = local as usize;
                    let term = chunk.term(local);
                    let id = *ids.entry(term).or_insert_with(|| {
                        out.terms.push(term);
                        out.df.push(0);
                        out.total.push(0);
                        (out.terms.len() - 1) as u32
                    });
                    out.df[id as usize] += chunk.df[local];
                    out.total[id as usize] += chunk.total[local];
                    pairs.push((local as u32, id));
                }
                out.ids.push(pairs);
            }
            out
        })
        .collect();
    let mut offsets = Vec::with_capacity(MERGE_SHARDS);
    let mut n = 0u32;
    for shard in &shards {
        offsets.push(n);
        n += shard.terms.len() as u32;
    }
    let remaps: Vec<Vec<u32>> = chunks
        .par_iter()
        .enumerate()
        .map(|(c, chunk)| {
            let mut remap = vec![0u32; chunk.n_terms()];
            for (shard, &offset) in shards.iter().zip(&offsets) {
                for &(local, id) in &shard.ids[c] {
                    remap[local as usize] = offset + id;
                }
            }
            remap
        })
        .collect();
    let mut merged = Merged {
        global_terms: Vec::with_capacity(n as usize),
        df: Vec::with_capacity(n as usize),
        total: Vec::with_capacity(n as usize),
        remaps,
    };
    for shard in shards {
        merged.global_terms.extend(shard.terms);
        merged.df.extend(shard.df);
        merged.total.extend(shard.total);
    }
    merged
}

/// Fits a vocabulary and idf on `texts` and returns their TF-IDF rows, in input order.
pub fn fit_transform(params: &ValidVectorizeParams, texts: &[&str]) -> Vectorized {
    count(params, texts).fit_transform(params)
}

/// Documents tokenised and counted: the first half of [`fit_transform`]. It borrows nothing,
/// so the caller can free the texts before the second half ([`Counted::fit_transform`]).
pub struct Counted {
    n_docs: usize,
    chunks: Vec<ChunkCounts>,
}

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted")
            .field("n_docs", &self.n_docs)
            .field("n_chunks", &self.chunks.len())
            .finish()
    }
}

/// Tokenises and counts `texts` (in parallel, by chunks of [`CHUNK_DOCS`]).
pub fn count(params: &ValidVectorizeParams, texts: &[&str]) -> Counted {
    let t = std::time::Instant::now();
    let chunks: Vec<ChunkCounts> = texts
        .par_chunks(CHUNK_DOCS)
        .map(|chunk| count_chunk(&params.analyzer, chunk))
        .collect();
    tracing::debug!(seconds = t.elapsed().as_secs_f64(), "tokenised and counted");
    Counted {
        n_docs: texts.len(),
        chunks,
    }
}

impl Counted {
    /// Fits the vocabulary and idf on the counted documents and returns their TF-IDF rows:
    /// the second half of [`fit_transform`]. `params` must be the ones the documents were
    /// counted with.
    pub fn fit_transform(self, params: &ValidVectorizeParams) -> Vectorized {
        let Counted { n_docs, chunks } = self;
        let t = std::time::Instant::now();

        let merged = merge_dictionaries(&chunks);
        let Merged {
            global_terms,
            df,
            total,
            remaps,
        } = merged;
        tracing::debug!(
            seconds = t.elapsed().as_secs_f64(),
            n_distinct = global_terms.len(),
            "merged chunk dictionaries"
        );
        let t = std::time::Instant::now();

        // Select the vocabulary.
        let (lo, hi) = (
            params.min_df.as_count(n_docs),
            params.max_df.as_count(n_docs),
        );
        let mut kept: Vec<u32> = (0..global_terms.len() as u32)
            .filter(|&g| {
                let d = f64::from(df[g as usize]);
                d >= lo && d <= hi
            })
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
        let n = n_docs as f64;
        let idf: Vec<f32> = kept
            .iter()
            .map(|&g| {
                let base = ((1.0 + n) / (1.0 + f64::from(df[g as usize]))).ln();
                (if params.idf_add_one { base + 1.0 } else { base }) as f32
            })
            .collect();
        let vocabulary = Vocabulary {
            df: kept.iter().map(|&g| df[g as usize]).collect(),
            terms: kept
                .iter()
                .map(|&g| global_terms[g as usize].to_owned())
                .collect(),
        };
        drop(global_terms);
        tracing::debug!(
            seconds = t.elapsed().as_secs_f64(),
            "selected the vocabulary"
        );
        let t = std::time::Instant::now();

        // Weight and normalise rows in two passes, straight into the CSR arrays: count each
        // row's kept terms, then fill each chunk's slice in parallel.
        let kept_in = |chunk: &ChunkCounts, remap: &[u32], start: usize, end: usize| {
            chunk.term_ids[start..end]
                .iter()
                .filter(|&&local| kept_column(remap, &column_of, &idf, local).is_some())
                .count()
        };
        let row_lengths: Vec<Vec<usize>> = chunks
            .par_iter()
            .zip(&remaps)
            .map(|(chunk, remap)| {
                let mut start = 0usize;
                chunk
                    .row_lengths
                    .iter()
                    .map(|&len| {
                        let end = start + len as usize;
                        let kept = kept_in(chunk, remap, start, end);
                        start = end;
                        kept
                    })
                    .collect()
            })
            .collect();
        let mut indptr = Vec::with_capacity(n_docs + 1);
        indptr.push(0usize);
        let mut n_empty = 0;
        for &len in row_lengths.iter().flatten() {
            n_empty += usize::from(len == 0);
            indptr.push(indptr.last().unwrap() + len);
        }
        let nnz = *indptr.last().unwrap();
        let mut indices = vec![0u32; nnz];
        let mut data = vec![0.0f32; nnz];
        let mut slices = Vec::with_capacity(chunks.len());
        let (mut rest_i, mut rest_d) = (indices.as_mut_slice(), data.as_mut_slice());
        for lengths in &row_lengths {
            let n: usize = lengths.iter().sum();
            let (i, ri) = rest_i.split_at_mut(n);
            let (d, rd) = rest_d.split_at_mut(n);
            slices.push((i, d));
            (rest_i, rest_d) = (ri, rd);
        }
        let tf = TfTable::new(params.sublinear_tf);
        chunks
            .par_iter()
            .zip(&remaps)
            .zip(slices)
            .for_each(|((chunk, remap), (indices, data))| {
                weight_chunk(chunk, remap, &column_of, &idf, &tf, indices, data)
            });
        drop(chunks);
        let matrix = Csr::new((n_docs, vocabulary.len()), indptr, indices, data);
        tracing::debug!(
            seconds = t.elapsed().as_secs_f64(),
            "weighted and normalised rows"
        );
        Vectorized {
            matrix,
            vocabulary,
            idf,
            n_empty,
        }
    }
}

/// Term frequency weights, looked up for small counts: `count` or `1 + ln(count)`.
struct TfTable {
    sublinear: bool,
    small: Vec<f32>,
}

impl TfTable {
    const SMALL: u32 = 256;

    fn new(sublinear: bool) -> Self {
        let small = (0..Self::SMALL)
            .map(|c| Self::compute(sublinear, c))
            .collect();
        Self { sublinear, small }
    }

    fn compute(sublinear: bool, count: u32) -> f32 {
        if sublinear {
            1.0 + (count as f32).ln()
        } else {
            count as f32
        }
    }

    #[inline]
    fn get(&self, count: u32) -> f32 {
        match self.small.get(count as usize) {
            Some(&w) => w,
            None => Self::compute(self.sublinear, count),
        }
    }
}

/// The column of a chunk's local term, when the term is in the vocabulary and weighs more than
/// zero (an idf of 0 gives a zero weight, which is not stored).
#[inline]
fn kept_column(remap: &[u32], column_of: &[u32], idf: &[f32], local: u32) -> Option<u32> {
    let column = column_of[remap[local as usize] as usize];
    (column != u32::MAX && idf[column as usize] != 0.0).then_some(column)
}

/// Writes the weighted, sorted and L2-normalised rows of one chunk into its slices of the CSR
/// arrays (sized by the counting pass).
fn weight_chunk(
    chunk: &ChunkCounts,
    remap: &[u32],
    column_of: &[u32],
    idf: &[f32],
    tf: &TfTable,
    indices: &mut [u32],
    data: &mut [f32],
) {
    let mut row: Vec<(u32, f32)> = Vec::new();
    let (mut start, mut out) = (0usize, 0usize);
    for &len in &chunk.row_lengths {
        let end = start + len as usize;
        row.clear();
        for (&local, &count) in chunk.term_ids[start..end]
            .iter()
            .zip(&chunk.counts[start..end])
        {
            if let Some(column) = kept_column(remap, column_of, idf, local) {
                row.push((column, tf.get(count) * idf[column as usize]));
            }
        }
        row.sort_unstable_by_key(|&(c, _)| c);
        for (k, &(c, w)) in row.iter().enumerate() {
            indices[out + k] = c;
            data[out + k] = w;
        }
        sparse::normalize(&mut data[out..out + row.len()]);
        out += row.len();
        start = end;
    }
    debug_assert_eq!(out, data.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(min_df: DfBound, max_df: DfBound) -> ValidVectorizeParams {
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

    #[test]
    fn tfidf_matches_hand_computed_values() {
        // n = 3; df(apple) = 2, df(banana) = 1, df(cherry) = 1.
        let texts = ["apple apple banana", "apple cherry", "zz"];
        let v = fit_transform(&params(DfBound::Count(1), DfBound::Fraction(1.0)), &texts);
        assert_eq!(v.vocabulary.terms(), &["apple", "banana", "cherry", "zz"]);
        assert_eq!(v.vocabulary.df(), &[2, 1, 1, 1]);
        let idf_apple = (4.0f64 / 3.0).ln();
        let idf_rare = (4.0f64 / 2.0).ln();
        assert!((f64::from(v.idf[0]) - idf_apple).abs() < 1e-6);
        assert!((f64::from(v.idf[1]) - idf_rare).abs() < 1e-6);
        // Row 0: apple tf 2, banana tf 1.
        let (a, b) = (2.0 * idf_apple, idf_rare);
        let norm = (a * a + b * b).sqrt();
        let r0 = sparse::row(&v.matrix, 0);
        assert_eq!(r0.indices, &[0, 1]);
        assert!((f64::from(r0.values[0]) - a / norm).abs() < 1e-6);
        assert!((f64::from(r0.values[1]) - b / norm).abs() < 1e-6);
        sparse::check_invariants(&v.matrix).unwrap();
    }

    #[test]
    fn sublinear_tf_and_idf_add_one() {
        let p = VectorizeParams {
            stopwords: "none".into(),
            min_df: DfBound::Count(1),
            max_df: DfBound::Fraction(1.0),
            sublinear_tf: true,
            idf_add_one: true,
            ..VectorizeParams::default()
        }
        .check()
        .unwrap();
        let v = fit_transform(&p, &["aa aa aa bb", "bb"]);
        let idf_aa = (3.0f64 / 2.0).ln() + 1.0;
        let idf_bb = (3.0f64 / 3.0).ln() + 1.0;
        assert!((f64::from(v.idf[0]) - idf_aa).abs() < 1e-6);
        assert!((f64::from(v.idf[1]) - idf_bb).abs() < 1e-6);
        let a = (1.0 + 3.0f64.ln()) * idf_aa;
        let b = idf_bb;
        let r0 = sparse::row(&v.matrix, 0);
        assert!((f64::from(r0.values[0]) - a / (a * a + b * b).sqrt()).abs() < 1e-6);
    }

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

    #[test]
    fn documents_without_kept_terms_are_empty_rows() {
        let v = fit_transform(
            &params(DfBound::Count(2), DfBound::Fraction(1.0)),
            &["shared alone", "shared", "", "nothing here"],
        );
        assert_eq!(v.matrix.rows(), 4);
        assert_eq!(v.n_empty, 2);
        assert_eq!(sparse::row(&v.matrix, 2).nnz(), 0);
    }

    #[test]
    fn output_does_not_depend_on_chunking_or_threads() {
        let texts: Vec<String> = (0..3000)
            .map(|i| format!("w{} w{} w{} common", i % 7, i % 13, i % 101))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let p = params(DfBound::Count(1), DfBound::Fraction(1.0));
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| fit_transform(&p, &refs));
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
            .install(|| fit_transform(&p, &refs));
        assert_eq!(one.matrix, two.matrix);
        assert_eq!(one.vocabulary, two.vocabulary);
    }

    proptest::proptest! {
        /// Words of any length (short ones sharing prefixes and suffixes) get the same value
        /// exactly when they are the same word.
        #[test]
        fn interner_tells_words_apart(words in proptest::collection::vec("[ab]{0,3}|[ab]{4,9}|[ab]{10,20}", 1..200)) {
            let mut interner = Interner::new();
            let mut reference: std::collections::HashMap<String, u32> = Default::default();
            for w in &words {
                let next = reference.len() as u32;
                let expected = *reference.entry(w.clone()).or_insert(next);
                proptest::prop_assert_eq!(interner.get_or_insert(w, || next), expected);
            }
        }
    }

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
    }
}
