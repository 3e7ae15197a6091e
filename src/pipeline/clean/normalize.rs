//! Rule 2 of cleaning: normalised plain text (NFKC, ASCII quotes and dashes, no
//! invisible characters, one paragraph a line).

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

// ---------------------------------------------------------------------------
// Rule 2: normalisation.

/// Normalised plain text: NFKC, ASCII quotes and dashes, no invisible or
/// control characters, single spaces, trimmed lines, one `\n` between
/// paragraphs and no empty lines. One pass, linear time.
///
/// ASCII and the Latin-1 and Cyrillic letters are their own NFKC form and
/// never compose with what stands before them, so runs of them are copied as
/// they are; a typographic quote, dash or space between such runs is mapped
/// on its own, and only the rest goes through the Unicode normaliser.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(text, &mut out);
    out
}

/// [`normalize`] into a buffer the caller reuses (cleared first).
pub(super) fn normalize_into(text: &str, buffer: &mut String) {
    buffer.clear();
    let mut out = LineBuilder::new(std::mem::take(buffer));
    let mut piece = String::new();
    let bytes = text.as_bytes();
    let mut pos = 0;
    while pos < bytes.len() {
        let fast_end = plain_run_end(bytes, pos);
        let Some(c) = text.get(fast_end..).and_then(|rest| rest.chars().next()) else {
            out.push_plain(text.get(pos..).unwrap_or_default());
            break;
        };
        let after = fast_end + c.len_utf8();
        let mapped = map_char(c).filter(|&m| starts_unit(m));
        if let Some(m) = mapped {
            let next_is_plain = bytes
                .get(after)
                .is_none_or(|&b| b.is_ascii() || plain_at(bytes, after));
            if next_is_plain {
                // A typographic quote, dash or space between plain text is a
                // normalisation unit of its own: no NFKC, nothing joins it.
                out.push_plain(text.get(pos..fast_end).unwrap_or_default());
                out.push(m);
                pos = after;
                continue;
            }
        }
        // The character before may compose with what follows (`e` + U+0301)
        // unless what follows starts a unit or the character is whitespace (no
        // canonical decomposition starts with whitespace): then it goes to
        // NFKC with the rest. Plain runs hold ASCII and two-byte letters only.
        let run_start = match fast_end.checked_sub(1).and_then(|i| bytes.get(i)) {
            _ if mapped.is_some() || fast_end == pos => fast_end,
            Some(b) if b.is_ascii_whitespace() => fast_end,
            Some(b) if b.is_ascii() => fast_end - 1,
            _ => fast_end - 2,
        };
        out.push_plain(text.get(pos..run_start).unwrap_or_default());
        // Up to the next ASCII byte, a char boundary and an NFKC starter, so
        // normalising the pieces separately equals normalising the whole.
        let slow_end = find_from(bytes, after, |b| b.is_ascii());
        push_run(
            &mut out,
            text.get(run_start..slow_end).unwrap_or_default(),
            &mut piece,
        );
        pos = slow_end;
    }
    *buffer = out.text;
}

/// The end of the plain text from `from` on: ASCII and the two-byte [`is_plain`]
/// letters, which normalisation copies as they are apart from whitespace and
/// controls. ASCII is skipped sixteen bytes at a time (vector instructions).
fn plain_run_end(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    loop {
        while let Some(chunk) = bytes.get(at..at + 16) {
            if chunk.iter().fold(0, |acc, &b| acc | b) >= 0x80 {
                break;
            }
            at += 16;
        }
        match bytes.get(at) {
            None => return bytes.len(),
            Some(b) if b.is_ascii() => at += 1,
            Some(_) if plain_at(bytes, at) => at += 2,
            Some(_) => return at,
        }
    }
}

/// Whether an [`is_plain`] letter (two bytes in UTF-8) starts at `at`.
#[inline]
fn plain_at(bytes: &[u8], at: usize) -> bool {
    match (bytes.get(at), bytes.get(at + 1)) {
        (Some(&lead), Some(&cont)) if lead & 0xE0 == 0xC0 && cont & 0xC0 == 0x80 => {
            let code = (u32::from(lead & 0x1F) << 6) | u32::from(cont & 0x3F);
            char::from_u32(code).is_some_and(is_plain)
        }
        _ => false,
    }
}

/// Normalises one run of text that ends before an ASCII character (or at the end)
/// and holds a character that is not plain (plain text is copied by the caller).
///
/// The run is cut before every character that starts a new normalisation unit
/// ([`starts_unit`]), and only units that are not a single stable character go
/// through NFKC: a typographic quote or a no-break space costs
/// a table lookup, not the Unicode normaliser. The character map runs before NFKC
/// (which would turn `″` into two primes and lose the "double quote" meaning) and
/// again after it (NFKC produces U+2010 from U+2011, U+2014 from U+FE58, ...).
fn push_run(out: &mut LineBuilder, run: &str, piece: &mut String) {
    piece.clear();
    for c in run.chars().filter_map(map_char) {
        if starts_unit(c) {
            push_unit(out, piece);
        }
        piece.push(c);
    }
    push_unit(out, piece);
}

/// Pushes one normalisation unit (a starter and what may combine with it) and
/// empties `piece`.
fn push_unit(out: &mut LineBuilder, piece: &mut String) {
    let mut chars = piece.chars();
    match (chars.next(), chars.next()) {
        (None, _) => {}
        // A stable starter alone is its own NFKC form.
        (Some(c), None) if starts_unit(c) => {
            if let Some(c) = map_char(c) {
                out.push(c);
            }
        }
        _ => {
            for c in piece.chars().nfkc().filter_map(map_char) {
                out.push(c);
            }
        }
    }
    piece.clear();
}

/// Whether `c` begins a new normalisation unit: NFKC of the text before it does
/// not depend on it or on what follows. True for starters (combining class 0)
/// whose NFKC quick check is Yes: such a character is its own NFKC form, is never
/// the second half of a composition, and stops canonical reordering.
#[inline]
fn starts_unit(c: char) -> bool {
    c.is_ascii()
        || is_plain(c)
        || (canonical_combining_class(c) == 0
            && is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes)
}

/// Latin-1 and Cyrillic letters, the non-ASCII text of most news copy here:
/// characters that start a normalisation unit ([`starts_unit`]), are not
/// whitespace and that [`map_char`] keeps, known without the Unicode tables
/// (`plain_characters_are_stable_starters` checks each against them).
#[inline]
fn is_plain(c: char) -> bool {
    matches!(c, '\u{00C0}'..='\u{00FF}' | '\u{0400}'..='\u{0482}' | '\u{048A}'..='\u{052F}')
}

/// Index of the first byte at or after `from` matching `pred`, or the length.
pub(super) fn find_from(bytes: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    bytes
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| pred(b)))
        .map_or(bytes.len(), |found| from + found)
}

/// The whitespace and line state machine of [`normalize`].
pub(super) struct LineBuilder {
    text: String,
    line_has_text: bool,
    pending_space: bool,
    pending_newline: bool,
}

impl LineBuilder {
    fn new(text: String) -> LineBuilder {
        LineBuilder {
            text,
            line_has_text: false,
            pending_space: false,
            pending_newline: false,
        }
    }

    /// Pushes a mapped character (see [`map_char`]).
    fn push(&mut self, c: char) {
        if c == '\n' {
            self.pending_space = false;
            if self.line_has_text {
                self.pending_newline = true;
                self.line_has_text = false;
            }
        } else if c.is_whitespace() {
            self.pending_space = self.line_has_text;
        } else {
            self.start_text();
            self.text.push(c);
        }
    }

    /// Pushes plain text (ASCII and [`is_plain`] letters, see [`plain_run_end`]):
    /// printable runs in bulk, the rest through [`map_char`]. A single space
    /// between two printable characters is what it becomes anyway, so words and
    /// the single spaces between them are one run.
    fn push_plain(&mut self, plain: &str) {
        let bytes = plain.as_bytes();
        let mut pos = 0;
        while pos < bytes.len() {
            let end = printable_run_end(bytes, pos);
            if end > pos {
                self.start_text();
                self.text.push_str(plain.get(pos..end).unwrap_or_default());
            }
            if let Some(c) = bytes.get(end).and_then(|&b| map_char(char::from(b))) {
                self.push(c);
            }
            pos = end + 1;
        }
    }

    /// Writes the separator owed before new text on the line.
    fn start_text(&mut self) {
        if self.pending_newline {
            self.text.push('\n');
        } else if self.pending_space {
            self.text.push(' ');
        }
        self.pending_newline = false;
        self.pending_space = false;
        self.line_has_text = true;
    }
}

/// Every byte from 0x80 up is part of a plain letter in [`LineBuilder::push_plain`].
#[inline]
fn printable(b: u8) -> bool {
    b > b' ' && b != 0x7F
}

/// The end of the run from `pos` of printable bytes and single spaces between
/// them: text that normalisation copies as it is.
fn printable_run_end(bytes: &[u8], pos: usize) -> usize {
    let mut end = pos;
    loop {
        // Eight bytes at a time while they are words and single spaces.
        while let Some(chunk) = bytes.get(end..end + 8) {
            let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
                break;
            };
            if !copies_as_is(u64::from_le_bytes(chunk), end == pos) {
                break;
            }
            end += 8;
        }
        // Then a byte at a time over the next eight.
        let stop = end + 8;
        while end < stop {
            match bytes.get(end) {
                Some(&b) if printable(b) => end += 1,
                Some(b' ') if end > pos && bytes.get(end + 1).is_some_and(|&b| printable(b)) => {
                    end += 2
                }
                _ => return end,
            }
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `word` equal to `byte`, as the high bit of each (exact: no carry
/// crosses bytes).
#[inline]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    !(((x & !HIGHS) + !HIGHS) | x) & HIGHS
}

/// Whether eight bytes (little-endian in `word`) are printable bytes and single
/// spaces between them, none first in the run (`at_start`) and none last (what
/// follows decides).
#[inline]
fn copies_as_is(word: u64, at_start: bool) -> bool {
    // Bytes below 0x21 without the high bit: (b | 0x80) - 0x21 keeps the high bit
    // exactly when the low seven bits are 0x21 or more.
    let low = !(((word | HIGHS) - ONES * 0x21) | word) & HIGHS;
    let spaces = bytes_equal(word, b' ');
    let others = (low & !spaces) | bytes_equal(word, 0x7F);
    others == 0
        && spaces & (spaces << 8) == 0
        && spaces & (1 << 63) == 0
        && !(at_start && spaces & 0x80 != 0)
}

/// The per-character part of [`normalize`]: `None` drops the character.
pub(super) fn map_char(c: char) -> Option<char> {
    match c {
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{00AB}' | '\u{00BB}'
        | '\u{2033}' => Some('"'),
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{02BC}' => Some('\''),
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{2E3A}' | '\u{2E3B}' => Some('-'),
        // Soft hyphen, zero-width characters, word joiner, BOM: invisible, and
        // they split words for every later matcher.
        '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' => None,
        // Bidi marks and embeddings: invisible as well, common around
        // Arabic/Hebrew names in otherwise left-to-right text.
        '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => None,
        // The no-break space is a space in NFKC too; mapped here it skips the
        // normaliser on the path of most non-ASCII runs in news copy.
        '\t' | '\u{00A0}' => Some(' '),
        // `\r\n` gives two line breaks, which the blank-line collapsing merges.
        // VT, FF, NEL and the Unicode line/paragraph separators are line
        // breaks by definition; dropping them would glue words together.
        '\n' | '\r' | '\u{000B}' | '\u{000C}' | '\u{0085}' | '\u{2028}' | '\u{2029}' => Some('\n'),
        c if c.is_control() => None,
        c => Some(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_characters_are_stable_starters() {
        let plain = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|&c| is_plain(c));
        let mut count = 0;
        for c in plain {
            count += 1;
            assert_eq!(canonical_combining_class(c), 0, "{c:?} is a starter");
            assert_eq!(
                is_nfkc_quick(std::iter::once(c)),
                IsNormalized::Yes,
                "{c:?} passes the NFKC quick check"
            );
            assert_eq!(std::iter::once(c).nfkc().collect::<String>(), c.to_string());
            assert!(!c.is_whitespace(), "{c:?} is not whitespace");
            assert_eq!(map_char(c), Some(c), "{c:?} is kept as it is");
        }
        assert_eq!(count, 64 + 131 + 166);
    }

    #[test]
    fn eight_byte_test_agrees_with_the_byte_test() {
        let alphabet = [
            b' ', b'a', b'\t', 0x7F, 0x80, 0xD0, 0x00, b'~', b'!', 0x1F, 0x20, 0xFF,
        ];
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let chunk: [u8; 8] =
                std::array::from_fn(|i| alphabet[(state >> (i * 4)) as usize % alphabet.len()]);
            for at_start in [false, true] {
                let by_byte = chunk.iter().enumerate().all(|(i, &b)| {
                    printable(b)
                        || (b == b' '
                            && (i > 0 || !at_start)
                            && i < 7
                            && printable(chunk[i + 1])
                            && (i == 0 || chunk[i - 1] != b' '))
                });
                assert_eq!(
                    copies_as_is(u64::from_le_bytes(chunk), at_start),
                    by_byte,
                    "{chunk:?} at start {at_start}"
                );
            }
        }
    }

    /// What [`normalize`] computes, the slow way: every character through the
    /// character map, NFKC and the map again, then the line state machine.
    fn reference(text: &str) -> String {
        let mut out = LineBuilder::new(String::new());
        for c in text
            .chars()
            .filter_map(map_char)
            .nfkc()
            .filter_map(map_char)
        {
            out.push(c);
        }
        out.text
    }

    #[test]
    fn the_fast_paths_give_what_nfkc_of_the_whole_text_gives() {
        // Pieces that compose across each other (e + U+0301, И + U+0306, ê + U+0301,
        // Hangul jamo, < + U+0338), reorder (U+0323 and U+0301 around a letter),
        // decompose by compatibility (ﬁ, Ａ, ẛ), map (quotes, dashes, U+FE58 whose
        // NFKC is a dash), vanish (soft hyphen) or are whitespace and line breaks.
        let pieces = [
            "e",
            "\u{0301}",
            "\u{0308}",
            "\u{0323}",
            "ê",
            "И",
            "\u{0306}",
            "Київ",
            "\u{FB01}",
            "\u{201C}",
            "\u{2033}",
            "\u{00A0}",
            " ",
            "\n",
            "\r\n",
            "\t",
            "한",
            "\u{1100}",
            "\u{1161}",
            "\u{11A8}",
            "ά",
            "\u{0345}",
            "<",
            "\u{0338}",
            "\u{FF21}",
            "\u{2011}",
            "\u{FE58}",
            "\u{00AD}",
            "x",
            "ß",
            "\u{1E9B}",
            "\u{3000}",
            "\u{0483}",
            "Ё",
            ".",
            "日本",
            "\u{0627}\u{0644}",
            "\u{200F}",
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize % n
        };
        for _ in 0..20_000 {
            let len = 1 + next(12);
            let text: String = (0..len).map(|_| pieces[next(pieces.len())]).collect();
            assert_eq!(normalize(&text), reference(&text), "for {text:?}");
        }
    }
}
