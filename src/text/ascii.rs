//! Word breaks of ASCII text under UAX #29, 64 bytes at a time: the fast path of
//! [`super::tokenize`] for documents that are pure ASCII (most English text). A property test
//! checks it against `unicode-segmentation` on random text.

/// Word-break class of an ASCII byte under UAX #29 (Unicode 15), for the rules that involve
/// ASCII characters only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// ALetter: `A-Z`, `a-z`.
    Letter,
    /// Numeric: `0-9`.
    Digit,
    /// ExtendNumLet: `_`.
    Underscore,
    /// MidNumLet `.` and Single_Quote `'`: join letters to letters and digits to digits.
    MidBoth,
    /// MidLetter `:`: joins letters to letters.
    MidLetter,
    /// MidNum `,` `;`: joins digits to digits.
    MidNum,
    /// Everything else breaks a word.
    Other,
}

const fn class(b: u8) -> Class {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' => Class::Letter,
        b'0'..=b'9' => Class::Digit,
        b'_' => Class::Underscore,
        b'.' | b'\'' => Class::MidBoth,
        b':' => Class::MidLetter,
        b',' | b';' => Class::MidNum,
        _ => Class::Other,
    }
}

const CLASSES: [Class; 128] = {
    let mut table = [Class::Other; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = class(b as u8);
        b += 1;
    }
    table
};

/// Calls `emit(start, end)` for each word of an ASCII text, exactly as `unicode_words` cuts
/// it. Letters, digits and `_` join each other (WB5, WB8-WB10, WB13a-b); a single `.`, `'` or
/// `:` joins two letters (WB6-7), and a single `.`, `'`, `,` or `;` two digits (WB11-12);
/// anything else breaks. Runs with no letter or digit (only `_`) are not words.
///
/// Runs of word bytes (letters, digits, `_`) are found 64 bytes at a time from a bit mask
/// (`masks`, scratch space), so the per-byte work is a comparison the compiler vectorises;
/// only the byte after each run is looked at on its own, for the joining rules.
pub(super) fn ascii_words(text: &[u8], masks: &mut Vec<u64>, mut emit: impl FnMut(usize, usize)) {
    word_byte_masks(text, masks);
    let class_at = |i: usize| CLASSES[usize::from(text[i] & 0x7f)];
    let n = text.len();
    let mut i = 0;
    loop {
        let start = next_bit(masks, i, false);
        if start >= n {
            break;
        }
        let mut end = next_bit(masks, start, true).min(n);
        let mut alnum = text[start..end].iter().any(|&b| b != b'_');
        while end + 1 < n {
            let c = class_at(end);
            if !matches!(c, Class::MidBoth | Class::MidLetter | Class::MidNum) {
                break;
            }
            let joins = match (class_at(end - 1), class_at(end + 1)) {
                (Class::Letter, Class::Letter) => c != Class::MidNum,
                (Class::Digit, Class::Digit) => c != Class::MidLetter,
                _ => false,
            };
            if !joins {
                break;
            }
            alnum = true;
            end = next_bit(masks, end + 1, true).min(n);
        }
        if alnum {
            emit(start, end);
        }
        i = end;
    }
}

/// Bit `i % 64` of `masks[i / 64]` is set when byte `i` is a letter, a digit or `_`.
fn word_byte_masks(text: &[u8], masks: &mut Vec<u64>) {
    masks.clear();
    // Whole blocks of 64 first, 16 bytes per vector compare; then the rest byte by byte.
    let blocks = text.chunks_exact(64);
    let rest = blocks.remainder();
    masks.extend(blocks.map(|block| {
        let block: &[u8; 64] = block.try_into().expect("64 bytes");
        block_mask(block)
    }));
    if !rest.is_empty() {
        masks.push(scalar_mask(rest));
    }
}

/// The mask of up to 64 bytes, one byte at a time.
fn scalar_mask(bytes: &[u8]) -> u64 {
    let is_word =
        |b: u8| (b | 0x20).wrapping_sub(b'a') < 26 || b.wrapping_sub(b'0') < 10 || b == b'_';
    let mut m = 0u64;
    for (i, &b) in bytes.iter().enumerate() {
        m |= u64::from(is_word(b)) << i;
    }
    m
}

/// [`word_byte_masks`] for one block of 64 bytes: SSE2 (part of every x86-64 CPU) compares
/// 16 bytes at once and `movemask` gathers their results into 16 bits.
#[cfg(target_arch = "x86_64")]
fn block_mask(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_sub_epi8,
    };
    // `x` is in `0..=n` (unsigned) exactly when `min(x, n) == x`.
    // SAFETY: SSE2 is part of x86-64, and every load reads 16 of the block's 64 bytes.
    unsafe {
        let at_most = |x: __m128i, n: i8| _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(n)), x);
        let mut m = 0u64;
        for (i, lane) in block.chunks_exact(16).enumerate() {
            let v = _mm_loadu_si128(lane.as_ptr().cast());
            let letter = at_most(
                _mm_sub_epi8(
                    _mm_or_si128(v, _mm_set1_epi8(0x20)),
                    _mm_set1_epi8(b'a' as i8),
                ),
                25,
            );
            let digit = at_most(_mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8)), 9);
            let underscore = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'_' as i8));
            let word = _mm_or_si128(_mm_or_si128(letter, digit), underscore);
            m |= u64::from(_mm_movemask_epi8(word) as u16) << (16 * i);
        }
        m
    }
}

/// [`word_byte_masks`] for one block of 64 bytes.
#[cfg(not(target_arch = "x86_64"))]
fn block_mask(block: &[u8; 64]) -> u64 {
    scalar_mask(block)
}

/// The first position at or after `from` whose mask bit is set (`clear == false`) or clear
/// (`clear == true`); `64 * masks.len()` if there is none.
fn next_bit(masks: &[u64], from: usize, clear: bool) -> usize {
    let mut w = from / 64;
    if w >= masks.len() {
        return masks.len() * 64;
    }
    let flip = if clear { u64::MAX } else { 0 };
    let mut m = (masks[w] ^ flip) & (u64::MAX << (from % 64));
    while m == 0 {
        w += 1;
        if w == masks.len() {
            return w * 64;
        }
        m = masks[w] ^ flip;
    }
    w * 64 + m.trailing_zeros() as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_segmentation::UnicodeSegmentation;

    #[test]
    fn vector_and_scalar_masks_agree_on_every_byte() {
        // Every byte value at every position of a block, in a few rotations.
        let bytes: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
        for start in (0..256).step_by(7) {
            let block: &[u8; 64] = bytes[start..start + 64].try_into().unwrap();
            assert_eq!(block_mask(block), scalar_mask(block), "bytes from {start}");
        }
    }

    proptest::proptest! {
        /// The ASCII path cuts exactly where UAX #29 does.
        #[test]
        fn ascii_words_match_unicode_segmentation(
            text in "[a-cA-C0-2_.:,;' \\-!\"#$%&()*+/<=>?@\\[\\]^`{|}~\t\n\r]{0,200}"
        ) {
            let mut ours = Vec::new();
            ascii_words(text.as_bytes(), &mut Vec::new(), |s, e| ours.push(&text[s..e]));
            let theirs: Vec<&str> = text.unicode_words().collect();
            proptest::prop_assert_eq!(ours, theirs);
        }
    }
}
