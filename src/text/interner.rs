//! A chunk's dictionary of distinct words: one hash and, for words of up to 16 bytes, one
//! integer comparison per lookup, with no allocation per word.

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
pub(super) struct Interner {
    table: hashbrown::HashTable<(WordKey, u32)>,
    /// Bytes of the words longer than 16 bytes: their keys are spans of it.
    arena: String,
}

impl Interner {
    pub(super) fn new() -> Self {
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
    pub(super) fn get_or_insert(&mut self, word: &str, new: impl FnOnce() -> u32) -> u32 {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
