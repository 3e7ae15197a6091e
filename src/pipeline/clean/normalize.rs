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
/// ASCII is its own NFKC form, so runs of printable ASCII are copied as they
/// are and only the rest goes through the Unicode machinery: most news text
/// is mostly ASCII, and this keeps a 50 MB file fast even in debug builds.
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
        let ascii_end = first_non_ascii(bytes, pos);
        // The last ASCII character before non-ASCII text goes the slow way:
        // it may compose with a combining mark that follows (`e` + U+0301).
        // Whitespace never does (no canonical decomposition starts with it).
        let before = ascii_end.checked_sub(1).and_then(|i| bytes.get(i));
        let fast_end = if ascii_end < bytes.len() && !before.is_some_and(u8::is_ascii_whitespace) {
            ascii_end.saturating_sub(1).max(pos)
        } else {
            ascii_end
        };
        out.push_ascii(text.get(pos..fast_end).unwrap_or_default());
        if fast_end == bytes.len() {
            break;
        }
        // Up to the next ASCII byte, a char boundary and an NFKC starter, so
        // normalising the pieces separately equals normalising the whole.
        let slow_end = find_from(bytes, ascii_end, |b| b.is_ascii());
        push_run(
            &mut out,
            text.get(fast_end..slow_end).unwrap_or_default(),
            &mut piece,
        );
        pos = slow_end;
    }
    *buffer = out.text;
}

/// Normalises one run of text that ends before an ASCII character (or at the end).
///
/// A run of [`is_plain`] characters (a Cyrillic or accented word) is copied as it
/// is. Otherwise the run is cut before every character that starts a new
/// normalisation unit ([`starts_unit`]), and only units that are not a single
/// stable character go through NFKC: a typographic quote or a no-break space costs
/// a table lookup, not the Unicode normaliser. The character map runs before NFKC
/// (which would turn `″` into two primes and lose the "double quote" meaning) and
/// again after it (NFKC produces U+2010 from U+2011, U+2014 from U+FE58, ...).
fn push_run(out: &mut LineBuilder, run: &str, piece: &mut String) {
    if run.chars().all(is_plain) {
        out.start_text();
        out.text.push_str(run);
        return;
    }
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

/// Index of the first non-ASCII byte at or after `from`, or the length: sixteen
/// bytes at a time, which the compiler turns into vector instructions.
fn first_non_ascii(bytes: &[u8], from: usize) -> usize {
    let rest = bytes.get(from..).unwrap_or_default();
    let mut skipped = 0;
    for chunk in rest.chunks_exact(16) {
        if chunk.iter().fold(0, |acc, &b| acc | b) >= 0x80 {
            break;
        }
        skipped += 16;
    }
    find_from(bytes, from + skipped, |b| !b.is_ascii())
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

    /// Pushes ASCII text: printable runs in bulk, the rest through [`map_char`].
    /// A single space between two printable characters is what it becomes
    /// anyway, so words and the single spaces between them are one run.
    fn push_ascii(&mut self, ascii: &str) {
        let bytes = ascii.as_bytes();
        let mut pos = 0;
        while pos < bytes.len() {
            let mut end = find_from(bytes, pos, |b| !b.is_ascii_graphic());
            while end > pos
                && bytes.get(end) == Some(&b' ')
                && bytes.get(end + 1).is_some_and(u8::is_ascii_graphic)
            {
                end = find_from(bytes, end + 1, |b| !b.is_ascii_graphic());
            }
            if end > pos {
                self.start_text();
                self.text.push_str(ascii.get(pos..end).unwrap_or_default());
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
