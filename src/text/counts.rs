//! Tokenising and counting: documents in, per-chunk term counts and merged document
//! frequencies out, before any vocabulary exists.
//!
//! Documents are cut into fixed-size chunks ([`CHUNK_DOCS`]). Each chunk is tokenised on its
//! own (in parallel), interning terms in a chunk-local dictionary ([`super::interner`]) and
//! storing each document as `(local term, count)` pairs in order of first occurrence; with the `word` tokeniser the
//! stop-word and length checks run once per distinct word of the chunk. The chunk
//! dictionaries are then merged into global document frequencies and total counts in 64 hash
//! shards, each visiting the chunks in order, so nothing depends on the thread count.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::interner::Interner;
use super::params::ValidVectorizeParams;
use super::tokenize::{Analyzer, TokenBuffer};

/// Documents per tokenising chunk. Fixed, so results do not depend on the thread count.
pub const CHUNK_DOCS: usize = 1024;

/// Terms and counts of one chunk, before the global vocabulary exists.
pub(super) struct ChunkCounts {
    /// The chunk's distinct words, back to back; term `i` is `arena[spans[i].0..spans[i].1]`.
    pub(super) arena: String,
    pub(super) spans: Vec<(u32, u32)>,
    /// Per local term: documents of the chunk that use it, and its total count.
    pub(super) df: Vec<u32>,
    pub(super) total: Vec<u64>,
    pub(super) row_lengths: Vec<u32>,
    pub(super) term_ids: Vec<u32>,
    pub(super) counts: Vec<u32>,
}

impl ChunkCounts {
    pub(super) fn n_terms(&self) -> usize {
        self.spans.len()
    }

    pub(super) fn term(&self, local: usize) -> &str {
        let (start, end) = self.spans[local];
        &self.arena[start as usize..end as usize]
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
    let (mut seen_in, mut slot): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
    // A new term gets the next id and its bytes appended to the chunk's arena.
    let new_term = |token: &str, arena: &mut String, spans: &mut Vec<(u32, u32)>| {
        let start = arena.len() as u32;
        arena.push_str(token);
        spans.push((start, arena.len() as u32));
        spans.len() as u32 - 1
    };
    for (doc, text) in texts.iter().enumerate() {
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
        // Count each term of the document once, in order of first occurrence: `seen_in[t]` is
        // the (1-based) document that last met term `t` and `slot[t]` its entry there. No
        // sort: the weighting orders each row by column anyway.
        let n_terms = chunk.spans.len();
        chunk.df.resize(n_terms, 0);
        chunk.total.resize(n_terms, 0);
        seen_in.resize(n_terms, 0);
        slot.resize(n_terms, 0);
        let mark = doc as u32 + 1;
        let before = chunk.term_ids.len();
        for &t in &doc_terms {
            let t = t as usize;
            if seen_in[t] == mark {
                chunk.counts[slot[t] as usize] += 1;
            } else {
                seen_in[t] = mark;
                slot[t] = chunk.term_ids.len() as u32;
                chunk.term_ids.push(t as u32);
                chunk.counts.push(1);
            }
        }
        for (&t, &count) in chunk.term_ids[before..].iter().zip(&chunk.counts[before..]) {
            chunk.df[t as usize] += 1;
            chunk.total[t as usize] += u64::from(count);
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
pub(super) struct Merged<'a> {
    pub(super) global_terms: Vec<&'a str>,
    pub(super) df: Vec<u32>,
    pub(super) total: Vec<u64>,
    pub(super) remaps: Vec<Vec<u32>>,
}

/// Merges the chunk dictionaries. Each shard of terms (by hash) is merged on its own, visiting
/// chunks in order; global ids are then shard by shard. The vocabulary is later sorted by
/// term, so ids never reach the output and the thread count changes nothing.
pub(super) fn merge_dictionaries(chunks: &[ChunkCounts]) -> Merged<'_> {
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

/// Documents tokenised and counted: the first half of [`fit_transform`]. It borrows nothing,
/// so the caller can free the texts before the second half ([`Counted::fit_transform`]).
pub struct Counted {
    pub(super) n_docs: usize,
    pub(super) chunks: Vec<ChunkCounts>,
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
        .map(|chunk| count_chunk(params.analyzer(), chunk))
        .collect();
    tracing::debug!(seconds = t.elapsed().as_secs_f64(), "tokenised and counted");
    Counted {
        n_docs: texts.len(),
        chunks,
    }
}
