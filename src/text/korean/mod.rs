//! Korean words: each eojeol (a whitespace word) split into its L part, a noun or a stem, and
//! its R part, a particle or an ending (`북한이` = `북한` + `이`, `발표했다` = `발표` + `했다`).
//!
//! The split is learned from the corpus, with no dictionary. Over every eojeol made of Hangul
//! syllables, [`WordCounter`] counts each prefix of up to [`MAX_L_CHARS`] characters and the
//! character that follows it (or the end of the eojeol). [`WordCounter::learn`] scores each
//! prefix `w` of `n ≥ 2` characters seen at least [`MIN_COUNT`] times:
//!
//! - its cohesion, `(count(w) / count(w's first character))^(1 / (n - 1))`: how strongly its
//!   characters hold together;
//! - its right branching entropy, the entropy of the character that follows it: a whole noun
//!   is followed by many particles, a piece of one by the rest of the noun;
//! - its score, cohesion × entropy.
//!
//! An eojeol splits where its R part is empty or one of the particles and endings of
//! `endings.txt` (written for this project), choosing the L part of the highest score; L parts
//! of one character are only taken whole. Between L parts of equal score (none learned, say),
//! the longest R part wins, so an unknown noun still loses a known particle.
//!
//! An L part is a noun when, over the corpus, it is followed by the R parts that follow nouns
//! (particles, the copula, 하다 after a verbal noun: `[noun]` in `endings.txt`) at least as
//! often as by those that follow the stem of a verb or an adjective (`[stem]`). The `korean`
//! tokenisers and Korean keywords keep nouns only: `발표` of `발표했다`, not `만들` of `만들었다`.
//! An L part the table does not know is a noun unless its R part follows stems only.
//!
//! The learned table keeps the scores of the L parts some eojeol of the corpus split into: a
//! split only compares the L parts of one eojeol, and that eojeol's own choice stays in the
//! table, so every fitted document splits the same with the table as with every score. A model
//! saves the table ([`KoreanWords::to_json`]), so `assign` splits a new day as the fit did.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

/// The particles and endings an eojeol may end in.
const ENDINGS: &str = include_str!("endings.txt");

/// The Korean stop list (`vectorize.stopwords = "korean"`).
pub const STOPWORDS: &str = include_str!("stopwords.txt");

/// The longest prefix counted as an L part, in characters.
pub const MAX_L_CHARS: usize = 10;

/// The longest R part, in characters.
pub const MAX_R_CHARS: usize = 6;

/// The fewest eojeol occurrences a prefix needs for a score.
pub const MIN_COUNT: u64 = 3;

/// The version of the saved table's layout.
const TABLE_VERSION: u32 = 1;

/// The non-comment lines of a word list.
pub fn list_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// True for a Hangul syllable (U+AC00 to U+D7A3).
pub fn is_hangul(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c)
}

/// How eojeol split into L and R parts: the particles and endings, and the learned scores of L
/// parts.
#[derive(Debug, Clone, PartialEq)]
pub struct KoreanWords {
    /// Every R part, and whether it follows nouns (else stems only).
    endings: FxHashMap<String, bool>,
    stems: FxHashMap<String, f64>,
    /// The learned L parts that are stems of verbs and adjectives, not nouns.
    verbs: FxHashSet<String>,
}

/// The saved form of [`KoreanWords`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    version: u32,
    /// R parts that follow nouns.
    noun_endings: BTreeSet<String>,
    /// R parts that follow stems only.
    stem_endings: BTreeSet<String>,
    stems: BTreeMap<String, f64>,
    verbs: BTreeSet<String>,
}

/// The R parts of `endings.txt`, each with whether it follows nouns.
fn built_in_endings() -> FxHashMap<String, bool> {
    let mut endings = FxHashMap::default();
    let mut noun = true;
    for line in list_lines(ENDINGS) {
        match line {
            "[noun]" => noun = true,
            "[stem]" => noun = false,
            ending => {
                *endings.entry(ending.to_owned()).or_insert(noun) |= noun;
            }
        }
    }
    endings
}

impl Default for KoreanWords {
    /// The particles and endings, with no learned L part: an eojeol loses its longest R part
    /// that leaves at least two characters.
    fn default() -> Self {
        Self {
            endings: built_in_endings(),
            stems: FxHashMap::default(),
            verbs: FxHashSet::default(),
        }
    }
}

impl KoreanWords {
    /// The L part of `word` (lowercased): `word` itself when it has no Hangul.
    pub fn stem<'w>(&self, word: &'w str) -> &'w str {
        self.split(word).0
    }

    /// The L part of `word` when it is a noun ([`Self::split`]).
    pub fn noun<'w>(&self, word: &'w str) -> Option<&'w str> {
        let (stem, r) = self.split(word);
        let noun = if self.stems.contains_key(stem) {
            !self.verbs.contains(stem)
        } else {
            r.is_empty() || self.endings.get(r).copied().unwrap_or(true)
        };
        noun.then_some(stem)
    }

    /// `word` split into its L and R parts; `(word, "")` when it has no Hangul. Digits and
    /// marks before the first letter are left out (`1300가구` is `가구`), as a number is a word
    /// of its own.
    pub fn split<'w>(&self, word: &'w str) -> (&'w str, &'w str) {
        if !word.chars().any(is_hangul) {
            return (word, "");
        }
        let word = word.trim_start_matches(|c: char| !c.is_alphabetic());
        let ends: Vec<usize> = word.char_indices().map(|(i, c)| i + c.len_utf8()).collect();
        let n = ends.len();
        let mut best: Option<(f64, usize, usize)> = None;
        for (i, &end) in ends.iter().enumerate() {
            let (l_chars, r_chars) = (i + 1, n - i - 1);
            let r = &word[end..];
            let splits = r.is_empty()
                || (l_chars >= 2 && r_chars <= MAX_R_CHARS && self.endings.contains_key(r));
            if !splits {
                continue;
            }
            let score = self.stems.get(&word[..end]).copied().unwrap_or(0.0);
            if best.is_none_or(|(s, rc, _)| score > s || (score == s && r_chars > rc)) {
                best = Some((score, r_chars, end));
            }
        }
        best.map_or((word, ""), |(_, _, end)| word.split_at(end))
    }

    /// The number of learned L parts.
    pub fn n_stems(&self) -> usize {
        self.stems.len()
    }

    /// The table as a model saves it: JSON, keys sorted, scores exact.
    pub fn to_json(&self) -> Vec<u8> {
        let endings = |noun: bool| {
            self.endings
                .iter()
                .filter(|&(_, &n)| n == noun)
                .map(|(e, _)| e.clone())
                .collect()
        };
        let table = Table {
            version: TABLE_VERSION,
            noun_endings: endings(true),
            stem_endings: endings(false),
            stems: self.stems.iter().map(|(w, &s)| (w.clone(), s)).collect(),
            verbs: self.verbs.iter().cloned().collect(),
        };
        serde_json::to_vec(&table).expect("a table serialises")
    }

    /// Reads a table [`Self::to_json`] wrote; the error says what is wrong with it.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let table: Table = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if table.version != TABLE_VERSION {
            return Err(format!(
                "word table version {}, and this textcluster reads version {TABLE_VERSION}",
                table.version
            ));
        }
        if let Some((w, s)) = table
            .stems
            .iter()
            .find(|(_, s)| !(s.is_finite() && **s > 0.0))
        {
            return Err(format!("L part `{w}` has score {s}, not a positive number"));
        }
        if let Some(v) = table.verbs.iter().find(|v| !table.stems.contains_key(*v)) {
            return Err(format!("verb stem `{v}` is not a learned L part"));
        }
        let mut endings: FxHashMap<String, bool> =
            table.stem_endings.into_iter().map(|e| (e, false)).collect();
        endings.extend(table.noun_endings.into_iter().map(|e| (e, true)));
        Ok(Self {
            endings,
            stems: table.stems.into_iter().collect(),
            verbs: table.verbs.into_iter().collect(),
        })
    }
}

/// Counts the eojeol of a corpus, for [`WordCounter::learn`].
#[derive(Debug, Default)]
pub struct WordCounter {
    counts: FxHashMap<String, u64>,
}

/// A prefix's count and the characters that follow it (`None`: the end of the eojeol).
#[derive(Default)]
struct Prefix {
    count: u64,
    next: Vec<(Option<char>, u64)>,
}

impl WordCounter {
    /// Counts one lowercased word, if it is made of Hangul syllables.
    pub fn add(&mut self, word: &str) {
        if word.is_empty() || !word.chars().all(is_hangul) {
            return;
        }
        match self.counts.get_mut(word) {
            Some(c) => *c += 1,
            None => {
                self.counts.insert(word.to_owned(), 1);
            }
        }
    }

    /// Adds another counter's counts.
    pub fn merge(&mut self, other: WordCounter) {
        if self.counts.len() < other.counts.len() {
            let mine = std::mem::replace(&mut self.counts, other.counts);
            self.merge(WordCounter { counts: mine });
            return;
        }
        for (w, c) in other.counts {
            *self.counts.entry(w).or_default() += c;
        }
    }

    /// The number of distinct eojeol counted.
    pub fn n_words(&self) -> usize {
        self.counts.len()
    }

    /// Scores the prefixes and keeps those that some eojeol splits into.
    pub fn learn(self) -> KoreanWords {
        let mut prefixes: FxHashMap<&str, Prefix> = FxHashMap::default();
        for (word, &count) in &self.counts {
            let ends: Vec<usize> = word.char_indices().map(|(i, c)| i + c.len_utf8()).collect();
            for &end in ends.iter().take(MAX_L_CHARS) {
                let next = word[end..].chars().next();
                let p = prefixes.entry(&word[..end]).or_default();
                p.count += count;
                match p.next.iter_mut().find(|(c, _)| *c == next) {
                    Some((_, n)) => *n += count,
                    None => p.next.push((next, count)),
                }
            }
        }
        let mut all = KoreanWords::default();
        for (&w, p) in &prefixes {
            let mut chars = w.chars();
            let first = chars.next().expect("a prefix is not empty");
            let n = 1 + chars.count();
            if n < 2 || p.count < MIN_COUNT {
                continue;
            }
            let first_count = prefixes[&w[..first.len_utf8()]].count as f64;
            let cohesion = (p.count as f64 / first_count).powf(1.0 / (n - 1) as f64);
            let score = cohesion * entropy(&p.next, p.count);
            if score > 0.0 {
                all.stems.insert(w.to_owned(), score);
            }
        }
        // Keep the L parts the corpus's eojeol split into, counting what follows each: R parts
        // that follow nouns, and R parts that follow stems only.
        let mut kept = KoreanWords {
            endings: all.endings.clone(),
            stems: FxHashMap::default(),
            verbs: FxHashSet::default(),
        };
        let mut followed: FxHashMap<&str, (u64, u64)> = FxHashMap::default();
        for (word, &count) in &self.counts {
            let (stem, r) = all.split(word);
            if let Some(&score) = all.stems.get(stem) {
                kept.stems.insert(stem.to_owned(), score);
                let f = followed.entry(stem).or_default();
                match all.endings.get(r) {
                    Some(true) => f.0 += count,
                    Some(false) => f.1 += count,
                    None => {}
                }
            }
        }
        kept.verbs = followed
            .into_iter()
            .filter(|&(_, (noun, stem))| stem > noun)
            .map(|(w, _)| w.to_owned())
            .collect();
        kept
    }
}

/// The entropy (natural log) of the counts of what follows a prefix, summed in a fixed order
/// so the score does not depend on the order the eojeol were counted in.
fn entropy(next: &[(Option<char>, u64)], total: u64) -> f64 {
    let mut counts: Vec<(Option<char>, u64)> = next.to_vec();
    counts.sort_unstable();
    let total = total as f64;
    counts
        .iter()
        .map(|&(_, c)| {
            let p = c as f64 / total;
            -p * p.ln()
        })
        .sum::<f64>()
        .max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(text: &str) -> KoreanWords {
        let mut counter = WordCounter::default();
        for w in text.split_whitespace() {
            counter.add(w);
        }
        counter.learn()
    }

    #[test]
    fn particles_come_off_a_learned_noun() {
        let words = learned(
            "북한이 북한의 북한에 북한은 북한과 북한 북한이 북한을 북한도 북극 북쪽 북부 \
             한반도 한반도의 한반도에 한반도를 한반도는 대통령이 대통령은 대통령의 대통령",
        );
        for (eojeol, stem) in [
            ("북한이", "북한"),
            ("북한의", "북한"),
            ("북한과의", "북한"),
            ("한반도에서", "한반도"),
            ("한반도", "한반도"),
            ("대통령이", "대통령"),
        ] {
            assert_eq!(words.stem(eojeol), stem, "{eojeol}");
        }
    }

    #[test]
    fn an_unknown_word_loses_its_longest_ending_but_keeps_two_characters() {
        let words = KoreanWords::default();
        assert_eq!(words.stem("칼라바시는"), "칼라바시");
        assert_eq!(words.stem("발표했다"), "발표");
        assert_eq!(words.stem("수도"), "수도");
        assert_eq!(words.stem("땅을"), "땅을");
        assert_eq!(words.stem("windows"), "windows");
        assert_eq!(words.stem("1300가구를"), "가구");
        // A stem ending marks a verb; a particle or none, a noun.
        assert_eq!(words.noun("칼라바시는"), Some("칼라바시"));
        assert_eq!(words.noun("만들었다"), None);
    }

    #[test]
    fn an_l_part_followed_by_stem_endings_is_a_verb() {
        let words = learned(
            "만들었다 만들었다 만들었고 만들며 만들고 만들고 만들면 만들어서 \
             북한이 북한의 북한에 북한은 북한과 북한 북한을",
        );
        assert_eq!(words.noun("만들었다"), None);
        assert_eq!(words.stem("만들었다"), "만들");
        assert_eq!(words.noun("북한이"), Some("북한"));
    }

    #[test]
    fn the_table_round_trips_exactly_and_rejects_damage() {
        let words = learned("북한이 북한의 북한에 북한은 북한과 북한 북한이 북한을 북한도");
        assert!(words.n_stems() > 0);
        let json = words.to_json();
        assert_eq!(KoreanWords::from_json(&json).unwrap(), words);
        let text = String::from_utf8(json).unwrap();
        assert!(
            KoreanWords::from_json(text.replace("\"version\":1", "\"version\":9").as_bytes())
                .is_err()
        );
        assert!(KoreanWords::from_json(b"{\"version\":1}").is_err());
        assert!(KoreanWords::from_json(&text.as_bytes()[..text.len() / 2]).is_err());
    }

    #[test]
    fn learning_does_not_depend_on_the_order_of_counting() {
        let text =
            "북한이 북한의 북한에 북한은 한반도 한반도의 한반도에 대통령이 대통령은 대통령의";
        let mut a = WordCounter::default();
        let mut b = WordCounter::default();
        let mut c = WordCounter::default();
        for w in text.split_whitespace() {
            a.add(w);
        }
        for (i, w) in text.split_whitespace().rev().enumerate() {
            if i % 2 == 0 { b.add(w) } else { c.add(w) }
        }
        b.merge(c);
        assert_eq!(a.learn(), b.learn());
    }
}
