//! Tokenisers: Unicode words, character n-grams within words, Korean nouns, and tokens made
//! upstream.
//!
//! All but `column` start from Unicode word boundaries (UAX #29, via `unicode-segmentation`),
//! lowercase each word and drop stop words. The `word` tokeniser then emits words of at least
//! `min_token_len` characters. The `char_ngrams` tokeniser emits every run of `ngram_min..=
//! ngram_max` consecutive characters inside each word, for scripts such as Korean where a
//! whitespace token carries particles and endings. The `korean` tokeniser emits the L part of
//! each word that is a noun, its particle or ending stripped ([`super::korean`]);
//! `korean_ngrams` emits the n-grams within that noun and the noun itself, so a compound
//! written as one word (`학교부지`) meets its parts, and verbs and particles make no terms. The `column` tokeniser takes tokens made upstream, as the reader
//! hands them over: joined by [`TOKEN_SEPARATOR`].
//!
//! Tokens are handed to a callback as `&str` borrowed from a reused buffer, so tokenising a
//! document allocates nothing once the buffers have grown.
//!
//! A document that is pure ASCII (most English text) takes a byte-level path that applies the
//! same UAX #29 rules for the ASCII characters ([`super::ascii`]).

use std::sync::Arc;

use rustc_hash::FxHashSet;
use unicode_segmentation::UnicodeSegmentation;

use super::ascii::ascii_words;
use super::korean::{KoreanWords, WordCounter};

/// What joins the tokens of a `list<string>` column into one document string for the
/// `column` tokeniser: the ASCII unit separator, which text does not hold.
pub const TOKEN_SEPARATOR: char = '\u{1f}';

/// How a document is cut into terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tokenizer {
    /// Lowercased Unicode words of at least `min_len` characters.
    Word { min_len: usize },
    /// Lowercased character n-grams of `min..=max` characters taken within each word.
    CharNgrams { min: usize, max: usize },
    /// The L part of each lowercased word when it is a noun (its particle or ending
    /// stripped), of at least `min_len` characters.
    Korean { min_len: usize },
    /// The character n-grams of `min..=max` characters within each word's L part, when it is
    /// a noun, and the noun itself when it has at least `min_len` characters.
    KoreanNgrams {
        min: usize,
        max: usize,
        min_len: usize,
    },
    /// Tokens made upstream, joined by [`TOKEN_SEPARATOR`], as they are, of at least
    /// `min_len` characters.
    Column { min_len: usize },
}

impl Tokenizer {
    /// Whether words lose their particles and endings (for tokens or for keywords).
    pub fn splits_korean(&self) -> bool {
        !matches!(self, Tokenizer::Word { .. } | Tokenizer::Column { .. })
    }

    /// Whether tokens come from a learned Korean word table.
    pub fn learns_korean(&self) -> bool {
        matches!(
            self,
            Tokenizer::Korean { .. } | Tokenizer::KoreanNgrams { .. }
        )
    }
}

/// Which kinds of words are dropped before tokenising, besides stop words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WordFilters {
    /// Words made only of digits and punctuation (`1993`, `3.5`, `555-1234`).
    pub numbers: bool,
    /// Host names and the dotted parts of e-mail addresses and URLs (`rocket.sw.stratus.com`):
    /// a word with a dot whose last part is a top-level domain.
    pub hosts: bool,
}

/// Top-level domains that mark a dotted word as a host name (`win.ini` is not one).
const TOP_LEVEL_DOMAINS: &[&str] = &[
    "com", "edu", "org", "net", "gov", "mil", "int", "info", "biz", "io", "uk", "us", "ca", "au",
    "de", "fr", "nl", "se", "no", "fi", "dk", "ch", "at", "it", "es", "jp", "kr", "cn", "ru", "br",
    "in", "il", "nz", "za", "be", "pl", "cz", "ie", "uucp", "bitnet",
];

/// True for a word made only of digits and punctuation (`1993`, `3.5`, `555-1234`): noise for
/// clustering on some corpora, and a poor label on all.
pub fn is_numeric(word: &str) -> bool {
    !word.chars().any(char::is_alphabetic)
}

impl WordFilters {
    /// True when `word` (lowercased) is dropped.
    pub fn drops(&self, word: &str) -> bool {
        (self.numbers && is_numeric(word))
            || (self.hosts
                && word.rsplit_once('.').is_some_and(|(head, tld)| {
                    !head.is_empty() && TOP_LEVEL_DOMAINS.contains(&tld)
                }))
    }
}

/// A tokeniser plus its stop-word list, ready to run on many documents.
#[derive(Debug, Clone)]
pub struct Analyzer {
    tokenizer: Tokenizer,
    stopwords: FxHashSet<String>,
    filters: WordFilters,
    /// How words split into L and R parts (the built-in endings alone until a table is
    /// learned or loaded).
    korean: Arc<KoreanWords>,
}

/// Reusable scratch space for [`Analyzer::for_each_token`], one per worker thread.
#[derive(Debug, Default)]
pub struct TokenBuffer {
    /// An ASCII document, lowercased.
    document: String,
    /// A non-ASCII word, lowercased.
    word: String,
    /// Word-byte masks of an ASCII document.
    masks: Vec<u64>,
    char_starts: Vec<usize>,
}

impl Analyzer {
    /// Builds an analyzer with no word filters. Stop words are compared after lowercasing.
    pub fn new(tokenizer: Tokenizer, stopwords: impl IntoIterator<Item = String>) -> Self {
        Self::with_filters(tokenizer, stopwords, WordFilters::default())
    }

    /// Builds an analyzer that also drops the words `filters` names.
    pub fn with_filters(
        tokenizer: Tokenizer,
        stopwords: impl IntoIterator<Item = String>,
        filters: WordFilters,
    ) -> Self {
        let stopwords = stopwords.into_iter().map(|w| w.to_lowercase()).collect();
        Self {
            tokenizer,
            stopwords,
            filters,
            korean: Arc::new(KoreanWords::default()),
        }
    }

    /// This analyzer, splitting Korean words with `words` (a learned or saved table).
    pub fn with_korean(mut self, words: KoreanWords) -> Self {
        self.korean = Arc::new(words);
        self
    }

    /// The tokeniser.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The Korean word table in use.
    pub fn korean(&self) -> &KoreanWords {
        &self.korean
    }

    /// The L part of a kept word when it is a kept token of the `korean` tokenisers: a noun,
    /// not a stop word, and at least `min_len` characters.
    fn korean_stem<'w>(&self, word: &'w str, min_len: usize) -> Option<&'w str> {
        self.korean
            .noun(word)
            .filter(|stem| !self.stopwords.contains(*stem) && at_least_chars(stem, min_len))
    }

    /// Counts the Korean words of `text` for a word table ([`super::korean`]).
    pub fn count_korean(&self, text: &str, buffer: &mut TokenBuffer, counter: &mut WordCounter) {
        self.for_each_word(text, buffer, |word| counter.add(word));
    }

    /// Whether the tokens or the keywords of this analyzer need a learned Korean word table.
    pub fn needs_korean(&self, keywords_are_words: bool) -> bool {
        self.tokenizer.learns_korean() || (keywords_are_words && self.tokenizer.splits_korean())
    }

    /// Calls `emit` once per token of `text`, in document order.
    pub fn for_each_token(&self, text: &str, buffer: &mut TokenBuffer, mut emit: impl FnMut(&str)) {
        let mut starts = std::mem::take(&mut buffer.char_starts);
        self.for_each_word(text, buffer, |word| {
            if !self.keeps_word(word) {
                return;
            }
            let mut ngrams = |word: &str, min: usize, max: usize, emit: &mut dyn FnMut(&str)| {
                starts.clear();
                starts.extend(word.char_indices().map(|(i, _)| i));
                starts.push(word.len());
                let n_chars = starts.len() - 1;
                for n in min..=max.min(n_chars) {
                    for s in 0..=(n_chars - n) {
                        emit(&word[starts[s]..starts[s + n]]);
                    }
                }
            };
            match self.tokenizer {
                Tokenizer::Word { .. } | Tokenizer::Column { .. } => emit(word),
                Tokenizer::CharNgrams { min, max } => ngrams(word, min, max, &mut emit),
                Tokenizer::Korean { min_len } => {
                    if let Some(stem) = self.korean_stem(word, min_len) {
                        emit(stem)
                    }
                }
                Tokenizer::KoreanNgrams { min, max, min_len } => {
                    if let Some(noun) = self.korean_stem(word, 1) {
                        ngrams(noun, min, max, &mut emit);
                        if at_least_chars(noun, min_len) {
                            emit(noun)
                        }
                    }
                }
            }
        });
        buffer.char_starts = starts;
    }

    /// Calls `emit` once per lowercased word of `text`, in document order, stop words and
    /// short words included. With the `word` tokeniser the tokens are the words that
    /// [`Analyzer::keeps_word`] accepts, so a caller can decide once per distinct word.
    pub fn for_each_word(&self, text: &str, buffer: &mut TokenBuffer, mut emit: impl FnMut(&str)) {
        if let Tokenizer::Column { .. } = self.tokenizer {
            for token in text.split(TOKEN_SEPARATOR).filter(|t| !t.is_empty()) {
                emit(lowercase(token, &mut buffer.word));
            }
        } else if text.is_ascii() {
            // Word breaks do not depend on ASCII case, so lowercase the document in one go.
            let lower = &mut buffer.document;
            lower.clear();
            lower.push_str(text);
            lower.make_ascii_lowercase();
            ascii_words(lower.as_bytes(), &mut buffer.masks, |start, end| {
                emit(&lower[start..end])
            });
        } else {
            for word in text.unicode_words() {
                emit(lowercase(word, &mut buffer.word));
            }
        }
    }

    /// Calls `emit` once per lowercased word of `text` that is not a stop word and not dropped
    /// by the word filters: the words the tokens come from, for labelling with whole words.
    /// A Korean word gives its L part when it is a noun ([`KoreanWords::noun`]) for every
    /// tokeniser but `word` and `column`, so a keyword is `북한`, not `북한이` and `북한의`.
    pub fn for_each_kept_word(
        &self,
        text: &str,
        buffer: &mut TokenBuffer,
        mut emit: impl FnMut(&str),
    ) {
        let split = self.tokenizer.splits_korean();
        self.for_each_word(text, buffer, |word| {
            if self.stopwords.contains(word) || self.filters.drops(word) {
                return;
            }
            let word = if split {
                self.korean.noun(word)
            } else {
                Some(word)
            };
            if let Some(word) = word
                && at_least_chars(word, 2)
                && !self.stopwords.contains(word)
            {
                emit(word)
            }
        });
    }

    /// Whether each word is at most one token (the `word` tokeniser): then the token of a
    /// lowercased word is the word itself if [`Analyzer::keeps_word`], and nothing otherwise.
    pub fn words_are_tokens(&self) -> bool {
        matches!(
            self.tokenizer,
            Tokenizer::Word { .. } | Tokenizer::Column { .. }
        )
    }

    /// Whether the `word` tokeniser emits this lowercased word: not a stop word, and long
    /// enough. For the `char_ngrams` tokeniser, whether the word is not a stop word.
    pub fn keeps_word(&self, word: &str) -> bool {
        !self.stopwords.contains(word)
            && !self.filters.drops(word)
            && match self.tokenizer {
                Tokenizer::Word { min_len } | Tokenizer::Column { min_len } => {
                    at_least_chars(word, min_len)
                }
                _ => true,
            }
    }

    /// The stop words in effect (lower case), sorted: what a model keeps when they come from a
    /// file, so it does not depend on that file later.
    pub fn stopwords_sorted(&self) -> Vec<String> {
        let mut words: Vec<String> = self.stopwords.iter().cloned().collect();
        words.sort_unstable();
        words
    }

    /// sha256 of the stop words (sorted, one per line): what a saved model checks the stop
    /// words of a later run against, since a stop-word file can change after the fit.
    pub fn stopwords_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut words: Vec<&str> = self.stopwords.iter().map(String::as_str).collect();
        words.sort_unstable();
        let mut h = Sha256::new();
        for w in words {
            h.update(w.as_bytes());
            h.update(b"\n");
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Collects the tokens of `text` (for tests and small inputs).
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.for_each_token(text, &mut TokenBuffer::default(), |t| {
            out.push(t.to_owned())
        });
        out
    }
}

/// Lowercases `word`, borrowing it unchanged when it has no uppercase ASCII and no non-ASCII.
fn lowercase<'a>(word: &'a str, buffer: &'a mut String) -> &'a str {
    if !word
        .bytes()
        .any(|b| !b.is_ascii() || b.is_ascii_uppercase())
    {
        return word;
    }
    buffer.clear();
    if word.is_ascii() {
        buffer.push_str(word);
        buffer.make_ascii_lowercase();
    } else {
        buffer.extend(word.chars().flat_map(char::to_lowercase));
    }
    buffer
}

fn at_least_chars(s: &str, n: usize) -> bool {
    // Byte length bounds the character count from above, so short words exit early.
    s.len() >= n && s.chars().nth(n.saturating_sub(1)).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(stop: &[&str]) -> Analyzer {
        Analyzer::new(
            Tokenizer::Word { min_len: 2 },
            stop.iter().map(|s| s.to_string()),
        )
    }

    #[test]
    fn words_are_lowercased_and_short_ones_dropped() {
        let a = words(&[]);
        assert_eq!(
            a.tokens("The Quick, brown fox! A x-ray of Émile's 3.5 GHz CPU."),
            vec![
                "the", "quick", "brown", "fox", "ray", "of", "émile's", "3.5", "ghz", "cpu"
            ]
        );
    }

    #[test]
    fn stop_words_are_removed_case_insensitively() {
        let a = words(&["The", "of"]);
        assert_eq!(a.tokens("THE end of it"), vec!["end", "it"]);
    }

    #[test]
    fn char_ngrams_stay_within_words() {
        let a = Analyzer::new(Tokenizer::CharNgrams { min: 2, max: 3 }, Vec::new());
        assert_eq!(
            a.tokens("대통령이 말했다"),
            vec![
                "대통",
                "통령",
                "령이",
                "대통령",
                "통령이",
                "말했",
                "했다",
                "말했다"
            ]
        );
        // A word shorter than ngram_min yields nothing; one of exactly ngram_min yields itself.
        assert_eq!(a.tokens("a 안 ab"), vec!["ab"]);
    }

    #[test]
    fn korean_tokens_are_nouns_without_their_particles() {
        let stop = ["있다".to_string(), "경우".to_string()];
        let a = Analyzer::new(Tokenizer::Korean { min_len: 2 }, stop.clone());
        // 만들었다 ends in a stem ending: a verb, not a token; 있다 and the L part 경우 are stop
        // words; a word without Hangul stays whole.
        assert_eq!(
            a.tokens("북한이 대통령의 발표했다 만들었다 있다 경우에 MBC뉴스 windows"),
            vec!["북한", "대통령", "발표", "mbc뉴스", "windows"]
        );
        let both = Analyzer::new(
            Tokenizer::KoreanNgrams {
                min: 2,
                max: 3,
                min_len: 2,
            },
            stop,
        );
        // The n-grams of the noun, then the noun; none of the particle, none of a verb.
        assert_eq!(
            both.tokens("학교부지를 만들었다 1300가구"),
            vec![
                "학교",
                "교부",
                "부지",
                "학교부",
                "교부지",
                "학교부지",
                "가구",
                "가구"
            ]
        );
        // Keywords of an n-gram clustering are the nouns too.
        let mut kept = Vec::new();
        both.for_each_kept_word("북한이 경우에", &mut TokenBuffer::default(), |w| {
            kept.push(w.to_owned())
        });
        assert_eq!(kept, vec!["북한"]);
    }

    #[test]
    fn column_tokens_are_taken_as_they_are() {
        let a = Analyzer::new(Tokenizer::Column { min_len: 2 }, vec!["the".to_string()]);
        let doc = ["New York", "the", "x", "", "북한"].join(&TOKEN_SEPARATOR.to_string());
        assert_eq!(a.tokens(&doc), vec!["new york", "북한"]);
        assert!(a.tokens("").is_empty());
    }

    #[test]
    fn ascii_and_unicode_paths_agree_on_real_text() {
        let a = words(&["the"]);
        let text = "The U.S. can't ship 1,000.5 items: rocket.sw.stratus.com re:Subject a_b __ _x x_ 3:30 a.1 1.a";
        let unicode: Vec<String> = text
            .unicode_words()
            .filter_map(|w| {
                let w = w.to_lowercase();
                (w != "the" && w.chars().count() >= 2).then_some(w)
            })
            .collect();
        assert_eq!(a.tokens(text), unicode);
        assert!(a.tokens(text).contains(&"can't".to_string()));
    }

    #[test]
    fn kept_words_are_the_word_tokens() {
        let a = words(&["the", "émile"]);
        let mut buffer = TokenBuffer::default();
        for text in [
            "The U.S. can't ship 1,000.5 items to THE Moon: a x-ray.",
            "Émile's ÉMILE émile Привет МИР a b",
        ] {
            let mut kept = Vec::new();
            a.for_each_word(text, &mut buffer, |w| {
                if a.keeps_word(w) {
                    kept.push(w.to_owned());
                }
            });
            assert!(a.words_are_tokens());
            assert_eq!(kept, a.tokens(text), "{text}");
        }
    }

    #[test]
    fn numeric_tokens_are_recognised() {
        for t in ["1993", "3.5", "555-1234", "0358"] {
            assert!(is_numeric(t), "{t}");
        }
        for t in ["v6", "mr2", "hockey", "한국"] {
            assert!(!is_numeric(t), "{t}");
        }
    }

    #[test]
    fn word_filters_drop_numbers_and_host_names_only() {
        let filters = WordFilters {
            numbers: true,
            hosts: true,
        };
        for dropped in [
            "1993",
            "3.5",
            "555-1234",
            "rocket.sw.stratus.com",
            "cs.cmu.edu",
            "bbc.co.uk",
        ] {
            assert!(filters.drops(dropped), "{dropped}");
        }
        for kept in [
            "v6", "mr2", "win.ini", "u.s", "e.g", "hockey", "x11r4", "한국", ".com",
        ] {
            assert!(!filters.drops(kept), "{kept}");
        }
        let a = Analyzer::with_filters(Tokenizer::Word { min_len: 2 }, Vec::new(), filters);
        assert_eq!(
            a.tokens("Mail kent@sandvik.apple.com or call 555-1234 about the 1993 V6"),
            ["mail", "kent", "or", "call", "about", "the", "v6"]
        );
        assert!(!WordFilters::default().drops("1993"));
    }

    #[test]
    fn non_latin_words_are_tokenised() {
        let a = words(&[]);
        assert_eq!(a.tokens("Привет МИР"), vec!["привет", "мир"]);
    }
}
