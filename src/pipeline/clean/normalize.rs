//! Rule 2 of cleaning: normalised plain text (NFKC, ASCII quotes and dashes, no
//! invisible characters, one paragraph a line).

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
    let mut out = LineBuilder::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut pos = 0;
    while pos < bytes.len() {
        let ascii_end = find_from(bytes, pos, |b| !b.is_ascii());
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
        // The character map runs before NFKC (which would turn `″` into two
        // primes and lose the "double quote" meaning) and again after it
        // (NFKC produces U+2010 from U+2011, U+2014 from U+FE58, ...).
        let slow = text.get(fast_end..slow_end).unwrap_or_default();
        if is_unchanged(slow) {
            // Most non-ASCII news text (Cyrillic, Greek, accented Latin) is
            // already NFKC and maps to itself: copied in one piece.
            out.start_text();
            out.text.push_str(slow);
        } else {
            for c in slow
                .chars()
                .filter_map(map_char)
                .nfkc()
                .filter_map(map_char)
            {
                out.push(c);
            }
        }
        pos = slow_end;
    }
    out.text
}

/// Whether normalising `run` (text without whitespace between ASCII bytes, or
/// at the ends) gives `run` itself: every character maps to itself, none is
/// whitespace (those collapse), and the run is already NFKC by the quick
/// check (a "maybe" counts as no, and takes the full path).
fn is_unchanged(run: &str) -> bool {
    run.chars()
        .all(|c| !c.is_whitespace() && map_char(c) == Some(c))
        && is_nfkc_quick(run.chars()) == IsNormalized::Yes
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
    fn with_capacity(capacity: usize) -> LineBuilder {
        LineBuilder {
            text: String::with_capacity(capacity),
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
        '\t' => Some(' '),
        // `\r\n` gives two line breaks, which the blank-line collapsing merges.
        // VT, FF, NEL and the Unicode line/paragraph separators are line
        // breaks by definition; dropping them would glue words together.
        '\n' | '\r' | '\u{000B}' | '\u{000C}' | '\u{0085}' | '\u{2028}' | '\u{2029}' => Some('\n'),
        c if c.is_control() => None,
        c => Some(c),
    }
}
