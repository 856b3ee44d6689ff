//! Tokenisers: Unicode words, and character n-grams within words.
//!
//! Both start from Unicode word boundaries (UAX #29, via `unicode-segmentation`), lowercase
//! each word and drop stop words. The `word` tokeniser then emits words of at least
//! `min_token_len` characters. The `char_ngrams` tokeniser emits every run of `ngram_min..=
//! ngram_max` consecutive characters inside each word, for scripts such as Korean where a
//! whitespace token carries particles and endings.
//!
//! Tokens are handed to a callback as `&str` borrowed from a reused buffer, so tokenising a
//! document allocates nothing once the buffers have grown.

use std::borrow::Cow;

use rustc_hash::FxHashSet;
use unicode_segmentation::UnicodeSegmentation;

/// How a document is cut into terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tokenizer {
    /// Lowercased Unicode words of at least `min_len` characters.
    Word { min_len: usize },
    /// Lowercased character n-grams of `min..=max` characters taken within each word.
    CharNgrams { min: usize, max: usize },
}

/// A tokeniser plus its stop-word list, ready to run on many documents.
#[derive(Debug, Clone)]
pub struct Analyzer {
    tokenizer: Tokenizer,
    stopwords: FxHashSet<String>,
}

/// Reusable scratch space for [`Analyzer::for_each_token`], one per worker thread.
#[derive(Debug, Default)]
pub struct TokenBuffer {
    lower: String,
    char_starts: Vec<usize>,
}

impl Analyzer {
    /// Builds an analyzer. Stop words are compared after lowercasing.
    pub fn new(tokenizer: Tokenizer, stopwords: impl IntoIterator<Item = String>) -> Self {
        let stopwords = stopwords.into_iter().map(|w| w.to_lowercase()).collect();
        Self {
            tokenizer,
            stopwords,
        }
    }

    /// Calls `emit` once per token of `text`, in document order.
    pub fn for_each_token(&self, text: &str, buffer: &mut TokenBuffer, mut emit: impl FnMut(&str)) {
        for word in text.unicode_words() {
            let lower = lowercase(word, &mut buffer.lower);
            if self.stopwords.contains(lower.as_ref()) {
                continue;
            }
            match self.tokenizer {
                Tokenizer::Word { min_len } => {
                    if at_least_chars(&lower, min_len) {
                        emit(&lower);
                    }
                }
                Tokenizer::CharNgrams { min, max } => {
                    let starts = &mut buffer.char_starts;
                    starts.clear();
                    starts.extend(lower.char_indices().map(|(i, _)| i));
                    starts.push(lower.len());
                    let n_chars = starts.len() - 1;
                    for n in min..=max.min(n_chars) {
                        for s in 0..=(n_chars - n) {
                            emit(&lower[starts[s]..starts[s + n]]);
                        }
                    }
                }
            }
        }
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
fn lowercase<'a>(word: &'a str, buffer: &'a mut String) -> Cow<'a, str> {
    if word
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        Cow::Borrowed(word)
    } else {
        buffer.clear();
        buffer.extend(word.chars().flat_map(char::to_lowercase));
        Cow::Borrowed(buffer.as_str())
    }
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
    fn non_latin_words_are_tokenised() {
        let a = words(&[]);
        assert_eq!(a.tokens("Привет МИР"), vec!["привет", "мир"]);
    }
}
