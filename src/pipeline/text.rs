//! Match form: the folded word stream that entity aliases and topic terms are matched on.
//!
//! Texts and patterns go through the same [`words`] function, so a rule always means
//! the same thing on both sides:
//!
//! - words are Unicode words (UAX #29), not ASCII runs, so Cyrillic, Greek and accented
//!   text split where a reader would split it;
//! - each word is NFKC-normalised and case-folded (full Unicode folding: `STRASSE` and
//!   `straße` fold alike, Greek final sigma folds to sigma);
//! - a trailing possessive `'s` (or a bare trailing `'`) is dropped, so `Putin's` is `putin`;
//! - words joined by hyphens (`cease-fire`, `Russia-Ukraine`) count as separate words
//!   *and* as one joined word, so `russia` finds `Russia-Ukraine` and `ceasefire`
//!   finds `cease-fire`.
//!
//! The haystack is the folded words joined by single spaces, one line per field, and a
//! last line holding the joined forms of hyphenated compounds. A hit is a whole-word hit
//! when it starts and ends on those separators, which makes word-boundary checks a
//! byte comparison instead of a second Unicode pass.

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

use crate::query::Field;

/// Gap between the word numbers of the title and the body, so that `NEAR/n` (n is at
/// most 1000) never pairs a title word with a body word.
const FIELD_GAP: u32 = 10_000;

/// A text's words in match form, ready to be scanned by the automaton.
#[derive(Debug, Default)]
pub struct MatchText {
    pub haystack: String,
    /// The words of the title and body, then the joined forms of compounds.
    tokens: Vec<Token>,
    /// How many of `tokens` are plain words (the rest are joined compounds).
    plain: usize,
    /// The compounds of the text being built, kept to reuse their space.
    compounds: Vec<Compound>,
}

/// One word (or joined compound) of the haystack.
#[derive(Debug, Clone, Copy)]
struct Token {
    hay_start: u32,
    hay_end: u32,
    /// Word number within the item; body words come after title words and a gap.
    word: u32,
    /// How many words the token stands for (more than one for a joined compound).
    span: u32,
    field: Field,
    /// Byte offset of the word in the field's original text.
    source: u32,
}

/// A hyphenated compound in its joined form (`ceasefire` for `cease-fire`).
#[derive(Debug)]
struct Compound {
    joined: String,
    first_word: u32,
    span: u32,
    field: Field,
    source: u32,
}

/// Where a hit lies, in words and in the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub field: Field,
    pub first_word: u32,
    pub last_word: u32,
    /// Byte offset in the field's original text.
    pub source: u32,
}

/// A folded word and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub folded: String,
    /// Byte offset in the text the word was taken from.
    pub offset: usize,
    /// True when the next word follows after a hyphen with no space (`cease`-`fire`).
    pub hyphen_after: bool,
}

/// Splits `text` into folded words.
pub fn words(text: &str) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    let mut buf = String::new();
    each_word(text, &mut buf, |folded, offset, glued| {
        if glued {
            if let Some(last) = out.last_mut() {
                last.hyphen_after = true;
            }
        }
        out.push(Word {
            folded: folded.to_string(),
            offset,
            hyphen_after: false,
        });
    });
    out
}

/// Calls `f(folded, offset, glued)` for every word of `text`, where `glued` says the
/// word follows the previous one after a hyphen and no space (`cease`-`fire`).
///
/// Streaming with one reused buffer keeps a long text from costing a `String` per
/// word: the match form of a 50 MB text is built in one pass over it.
///
/// Lines are segmented one at a time: UAX #29 always breaks after a line feed (WB3a,
/// before any other rule), so a line starts in the same state as a text does. A line
/// whose characters are all [`simple`] (ASCII, Latin-1 and Cyrillic letters, the
/// typographic quotes and dashes of news copy) goes through [`simple_words`], which
/// applies the same rules to those characters several times faster than the general
/// tables; other lines use those tables.
fn each_word(text: &str, buf: &mut String, mut f: impl FnMut(&str, usize, bool)) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.is_ascii() || line.chars().all(|c| simple(c).is_some()) {
            simple_words(line, at, buf, &mut f);
        } else {
            segment_words(line.split_word_bound_indices(), at, buf, &mut f);
        }
        at += line.len();
    }
}

/// The words among a line's segments, folded, with hyphen gluing.
fn segment_words<'a>(
    segments: impl Iterator<Item = (usize, &'a str)>,
    line_offset: usize,
    buf: &mut String,
    f: &mut impl FnMut(&str, usize, bool),
) {
    // Segments are contiguous, so "word, hyphen, word" with nothing between them is a
    // compound; a hyphen with a space on either side is punctuation.
    let mut previous_was_word = false;
    let mut pending_hyphen = false;
    for (offset, segment) in segments {
        let is_word = match segment.as_bytes() {
            // One byte: a word only if a letter or digit (the common case of spaces
            // and punctuation, decided without decoding).
            [b] => b.is_ascii_alphanumeric(),
            _ => segment.chars().any(char::is_alphanumeric),
        };
        if is_word {
            fold_into(segment, buf);
            if !buf.is_empty() {
                f(buf, line_offset + offset, pending_hyphen);
            }
            previous_was_word = true;
            pending_hyphen = false;
        } else {
            pending_hyphen = previous_was_word && is_hyphen(segment);
            previous_was_word = false;
        }
    }
}

/// The words of a line of [`simple`] characters, folded, with hyphen gluing: what
/// [`segment_words`] makes of the line's UAX #29 segments, in one pass that finds
/// the segments and folds each word as it goes (no segment iterator, no second pass
/// per word).
///
/// Among these characters the rules that join are few: letters, digits and `_` join
/// each other (WB5, WB8-WB10, WB13a/b); MidNumLet joins two letters or two digits,
/// MidLetter two letters, MidNum two digits (WB6/7, WB11/12); spaces join spaces
/// (WB3d) and CR joins a following LF (WB3). Everything else stands alone, including
/// a character outside the set, should a caller ever pass one.
fn simple_words(
    line: &str,
    line_offset: usize,
    buf: &mut String,
    f: &mut impl FnMut(&str, usize, bool),
) {
    let bytes = line.as_bytes();
    let class_at = |at: usize| -> (Class, usize) {
        match bytes.get(at) {
            Some(&b) if b < 0x80 => (ASCII_CLASSES[usize::from(b)], 1),
            Some(_) => {
                let c = line.get(at..).and_then(|rest| rest.chars().next());
                c.map_or((Class::Other, 1), |c| {
                    (simple(c).unwrap_or(Class::Other), c.len_utf8())
                })
            }
            None => (Class::Other, 0),
        }
    };
    let mut previous_was_word = false;
    let mut pending_hyphen = false;
    let mut at = 0;
    while at < bytes.len() {
        let (first, first_len) = class_at(at);
        let start = at;
        let mut end = at + first_len;
        if !matches!(first, Class::Letter | Class::Digit | Class::Underscore) {
            match first {
                Class::Space => {
                    while bytes.get(end) == Some(&b' ') {
                        end += 1;
                    }
                }
                Class::Cr if bytes.get(end) == Some(&b'\n') => end += 1,
                _ => {}
            }
            pending_hyphen =
                previous_was_word && is_hyphen(line.get(start..end).unwrap_or_default());
            previous_was_word = false;
            at = end;
            continue;
        }
        // A word: letters, digits and `_`, and the middle characters that join two
        // letters or two digits, folded a character at a time as they are found.
        buf.clear();
        let mut folds = fold_char_into(line, start, first_len, buf);
        let mut alphanumeric = first != Class::Underscore;
        let mut last = first;
        while end < bytes.len() {
            let (next, next_len) = class_at(end);
            if matches!(next, Class::Letter | Class::Digit | Class::Underscore) {
                folds &= fold_char_into(line, end, next_len, buf);
                alphanumeric |= next != Class::Underscore;
                last = next;
                end += next_len;
                continue;
            }
            let (after, after_len) = class_at(end + next_len);
            let letters = last == Class::Letter && after == Class::Letter;
            let digits = last == Class::Digit && after == Class::Digit;
            let joins = match next {
                Class::MidNumLet => letters || digits,
                Class::MidLetter => letters,
                Class::MidNum => digits,
                _ => false,
            };
            if !joins {
                break;
            }
            folds &= fold_char_into(line, end, next_len, buf);
            folds &= fold_char_into(line, end + next_len, after_len, buf);
            last = after;
            end += next_len + after_len;
        }
        if alphanumeric {
            if folds {
                trim_possessive(buf);
            } else {
                fold_into(line.get(start..end).unwrap_or_default(), buf);
            }
            if !buf.is_empty() {
                f(buf, line_offset + start, pending_hyphen);
            }
            previous_was_word = true;
        } else {
            previous_was_word = false;
        }
        pending_hyphen = false;
        at = end;
    }
}

/// Appends the match form of the [`simple`] character at `line[at..at + len]`; false
/// when it has none of its own ([`simple_fold`]).
#[inline]
fn fold_char_into(line: &str, at: usize, len: usize, buf: &mut String) -> bool {
    match line.as_bytes().get(at) {
        Some(&b) if b < 0x80 => {
            buf.push(char::from(b.to_ascii_lowercase()));
            true
        }
        _ => match line
            .get(at..at + len)
            .and_then(|c| c.chars().next())
            .and_then(simple_fold)
        {
            Some(folded) => {
                buf.push(folded);
                true
            }
            None => false,
        },
    }
}

/// The word-break classes of the ASCII characters, as [`simple`] gives them.
static ASCII_CLASSES: [Class; 128] = {
    let mut classes = [Class::Other; 128];
    let mut b = 0;
    while b < 128 {
        classes[b] = match b as u8 {
            b'a'..=b'z' | b'A'..=b'Z' => Class::Letter,
            b'0'..=b'9' => Class::Digit,
            b'_' => Class::Underscore,
            b':' => Class::MidLetter,
            b',' | b';' => Class::MidNum,
            b'.' | b'\'' => Class::MidNumLet,
            b' ' => Class::Space,
            b'\r' => Class::Cr,
            _ => Class::Other,
        };
        b += 1;
    }
    classes
};

/// A character's word-break class (UAX #29), as far as [`simple_words`] needs it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    /// ALetter.
    Letter,
    /// Numeric.
    Digit,
    /// ExtendNumLet (`_`).
    Underscore,
    /// MidLetter (`:`): joins two letters.
    MidLetter,
    /// MidNum (`,` `;`): joins two digits.
    MidNum,
    /// MidNumLet and Single_Quote (`.` `'` `‘` `’`): joins two letters or two digits.
    MidNumLet,
    /// WSegSpace (the ASCII space): joins spaces.
    Space,
    /// CR: joins a following LF.
    Cr,
    /// Anything else: stands alone.
    Other,
}

/// The word-break class of a character of a simple line, or `None` for a character
/// outside the fast path (which then takes the whole line to the general tables).
///
/// The set is what news copy in English, Russian and Ukrainian is written with. For
/// each letter and quote of it NFKC is the identity, full case folding gives one
/// character ([`simple_fold`]), and no two of them compose, so a word of them folds
/// character by character. `simple_characters_fold_and_break_as_the_tables_say`
/// checks every one against the Unicode tables.
#[inline]
fn simple(c: char) -> Option<Class> {
    Some(match c {
        'a'..='z' | 'A'..='Z' => Class::Letter,
        '0'..='9' => Class::Digit,
        '_' => Class::Underscore,
        ':' => Class::MidLetter,
        ',' | ';' => Class::MidNum,
        '.' | '\'' => Class::MidNumLet,
        ' ' => Class::Space,
        '\r' => Class::Cr,
        '\0'..='\x7F' => Class::Other,
        // Cyrillic letters, without the thousands sign and combining marks
        // (U+0482-U+0489); Latin-1 letters without ß, whose folding is two letters.
        '\u{0400}'..='\u{0481}'
        | '\u{048A}'..='\u{052F}'
        | '\u{00C0}'..='\u{00D6}'
        | '\u{00D8}'..='\u{00DE}'
        | '\u{00E0}'..='\u{00F6}'
        | '\u{00F8}'..='\u{00FF}'
        // The modifier letter apostrophe of Ukrainian (перемирʼя) is a letter.
        | '\u{02BC}' => Class::Letter,
        '\u{2018}' | '\u{2019}' => Class::MidNumLet,
        // No-break space, guillemets, dashes, typographic double quotes, ellipsis:
        // never part of a word.
        '\u{00A0}' | '\u{00AB}' | '\u{00BB}' | '\u{2010}' | '\u{2011}' | '\u{2013}'
        | '\u{2014}' | '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{2026}' => Class::Other,
        _ => return None,
    })
}

/// The match form of a character of a word of [`simple`] characters, or `None` when
/// it has none of its own (outside the set, or a non-ASCII character that is never
/// part of a word).
#[inline]
fn simple_fold(c: char) -> Option<char> {
    Some(match c {
        '\0'..='\x7F' => c.to_ascii_lowercase(),
        // The Russian and Ukrainian alphabets' capitals, then the rest of the set.
        '\u{0410}'..='\u{042F}' => char::from_u32(c as u32 + 0x20)?,
        '\u{0400}'..='\u{040F}' => char::from_u32(c as u32 + 0x50)?,
        '\u{0430}'..='\u{045F}' => c,
        '\u{02BC}' | '\u{2018}' | '\u{2019}' => '\'',
        _ if simple(c) == Some(Class::Letter) => {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// Folds one word: NFKC, full case folding, typographic apostrophes, possessives.
pub fn fold(word: &str) -> String {
    let mut buf = String::new();
    fold_into(word, &mut buf);
    buf
}

/// [`fold`] into a reused buffer.
fn fold_into(word: &str, buf: &mut String) {
    buf.clear();
    if word.is_ascii() {
        // NFKC leaves ASCII as it is, and ASCII folds by lower-casing.
        buf.push_str(word);
        buf.make_ascii_lowercase();
    } else if !fold_simple(word, buf) {
        fold_general(word, buf);
    }
    trim_possessive(buf);
}

/// Drops a trailing possessive `'s` (or a bare trailing `'`) from a folded word.
fn trim_possessive(buf: &mut String) {
    if buf.len() > 2 && buf.ends_with("'s") {
        buf.truncate(buf.len() - 2);
    } else if buf.len() > 1 && buf.ends_with('\'') {
        buf.pop();
    }
}

/// NFKC and full case folding, with typographic apostrophes as `'`, into `buf`
/// (emptied first).
fn fold_general(word: &str, buf: &mut String) {
    buf.clear();
    for c in word.nfkc().default_case_fold() {
        buf.push(match c {
            '\u{2019}' | '\u{02BC}' | '\u{2018}' => '\'',
            c => c,
        });
    }
}

/// Folds a word of [`simple`] characters one character at a time; false (with `buf`
/// partly written) when the word holds another character.
fn fold_simple(word: &str, buf: &mut String) -> bool {
    for c in word.chars() {
        match simple_fold(c) {
            Some(folded) => buf.push(folded),
            None => return false,
        }
    }
    true
}

fn is_hyphen(segment: &str) -> bool {
    matches!(segment, "-" | "\u{2010}" | "\u{2011}")
}

impl MatchText {
    /// Builds the match form of an item's title and body.
    pub fn new(title: &str, body: &str) -> MatchText {
        let mut text = MatchText::default();
        text.rebuild(title, body);
        text
    }

    /// Makes this the match form of another title and body, reusing its buffers: a
    /// worker that keeps one `MatchText` allocates nothing per item once they have
    /// grown to its largest item.
    pub fn rebuild(&mut self, title: &str, body: &str) {
        self.haystack.clear();
        self.haystack.reserve(title.len() + body.len() + 16);
        self.tokens.clear();
        // About one token per six bytes of English or Cyrillic text (in UTF-8).
        self.tokens.reserve((title.len() + body.len()) / 6);
        let mut compounds = std::mem::take(&mut self.compounds);
        compounds.clear();
        let mut buf = String::new();
        let title_count = self.push_field(title, Field::Title, 0, &mut buf, &mut compounds);
        self.haystack.push('\n');
        self.push_field(
            body,
            Field::Body,
            title_count + FIELD_GAP,
            &mut buf,
            &mut compounds,
        );
        self.haystack.push('\n');
        self.plain = self.tokens.len();
        for (i, c) in compounds.drain(..).enumerate() {
            if i > 0 {
                self.haystack.push(' ');
            }
            self.push_token(&c.joined, c.first_word, c.span, c.field, c.source);
        }
        self.compounds = compounds;
    }

    /// Appends a field's words; returns how many there were.
    fn push_field(
        &mut self,
        source: &str,
        field: Field,
        first_word: u32,
        buf: &mut String,
        compounds: &mut Vec<Compound>,
    ) -> u32 {
        let mut count = 0u32;
        let mut current: Option<Compound> = None;
        each_word(source, buf, |folded, offset, glued| {
            if glued {
                match current.as_mut() {
                    Some(c) => {
                        c.joined.push_str(folded);
                        c.span += 1;
                    }
                    None => {
                        // The compound starts with the previous word, already in
                        // the haystack as the last token.
                        if let Some(last) = self.tokens.last() {
                            let start = last.hay_start as usize..last.hay_end as usize;
                            let mut joined = self.haystack[start].to_string();
                            joined.push_str(folded);
                            current = Some(Compound {
                                joined,
                                first_word: last.word,
                                span: 2,
                                field,
                                source: last.source,
                            });
                        }
                    }
                }
            } else if let Some(done) = current.take() {
                compounds.push(done);
            }
            if count > 0 {
                self.haystack.push(' ');
            }
            self.push_token(folded, first_word + count, 1, field, offset as u32);
            count += 1;
        });
        if let Some(done) = current {
            compounds.push(done);
        }
        count
    }

    fn push_token(&mut self, folded: &str, word: u32, span: u32, field: Field, source: u32) {
        let hay_start = self.haystack.len() as u32;
        self.haystack.push_str(folded);
        self.tokens.push(Token {
            hay_start,
            hay_end: self.haystack.len() as u32,
            word,
            span,
            field,
            source,
        });
    }

    /// The text's folded words in order, title then body, without the joined forms
    /// of compounds: the same words [`words`] gives for `"{title}\n{body}"`.
    pub fn plain_words(&self) -> impl Iterator<Item = &str> {
        self.tokens[..self.plain]
            .iter()
            .map(|t| &self.haystack[t.hay_start as usize..t.hay_end as usize])
    }

    /// How many [`MatchText::plain_words`] there are.
    pub fn plain_word_count(&self) -> usize {
        self.plain
    }

    /// Calls `f` with every run of `n` consecutive [`MatchText::plain_words`], joined
    /// by single spaces. A run within one field is a slice of the haystack, where the
    /// words already stand that way, so nothing is copied; only a run across the
    /// title and body is joined in a buffer.
    pub fn each_run(&self, n: usize, mut f: impl FnMut(&str)) {
        if n == 0 {
            return;
        }
        let mut joined = String::new();
        for run in self.tokens[..self.plain].windows(n) {
            let (first, last) = (run[0], run[n - 1]);
            if first.field == last.field {
                f(&self.haystack[first.hay_start as usize..last.hay_end as usize]);
            } else {
                joined.clear();
                for (i, t) in run.iter().enumerate() {
                    if i > 0 {
                        joined.push(' ');
                    }
                    joined.push_str(&self.haystack[t.hay_start as usize..t.hay_end as usize]);
                }
                f(&joined);
            }
        }
    }

    /// Maps an automaton hit to the words it covers, or `None` when it is not on word
    /// boundaries (`prefix` hits need only start on one).
    pub fn occurrence(&self, start: usize, end: usize, prefix: bool) -> Option<Occurrence> {
        let first = self
            .tokens
            .binary_search_by_key(&(start as u32), |t| t.hay_start)
            .ok()?;
        let last = match self
            .tokens
            .binary_search_by_key(&(end as u32), |t| t.hay_end)
        {
            Ok(i) => i,
            Err(_) if prefix => {
                // The hit ends inside a word: it is the word that contains `end - 1`.
                let i = self.tokens.partition_point(|t| t.hay_end < end as u32);
                if i >= self.tokens.len() || self.tokens[i].hay_start >= end as u32 {
                    return None;
                }
                i
            }
            Err(_) => return None,
        };
        let (a, b) = (self.tokens[first], self.tokens[last]);
        // Patterns never contain '\n', so a hit never crosses fields; checked anyway
        // because the token table is what the answer is built from.
        if a.field != b.field || last < first {
            return None;
        }
        Some(Occurrence {
            field: a.field,
            first_word: a.word,
            last_word: b.word + b.span - 1,
            source: a.source,
        })
    }
}

/// A match form's buffers above this size are not kept for the next item, so a
/// worker that met one huge article does not hold its memory.
const KEPT_MATCH_TEXT: usize = 1 << 20;

thread_local! {
    /// Each thread's match form, rebuilt for every item it analyses: its buffers are
    /// allocated once per thread instead of once per item.
    static MATCH_TEXT: std::cell::RefCell<MatchText> = Default::default();
}

/// Calls `f` with the match form of `title` and `body`, built in this thread's buffers.
pub fn with_match_text<R>(title: &str, body: &str, f: impl FnOnce(&MatchText) -> R) -> R {
    MATCH_TEXT.with(|cell| match cell.try_borrow_mut() {
        Ok(mut text) => {
            text.rebuild(title, body);
            let out = f(&text);
            if text.haystack.capacity() > KEPT_MATCH_TEXT {
                *text = MatchText::default();
            }
            out
        }
        // Only if `f` itself analysed an item; then it gets buffers of its own.
        Err(_) => f(&MatchText::new(title, body)),
    })
}

/// The forms a pattern (an alias or a query term) is searched for: its words joined by
/// spaces and, for words written with hyphens or spaces, joined without them, so that
/// `cease-fire` in a query finds `ceasefire` in a text and `Kryvyi Rih` finds `KryvyiRih`.
pub fn pattern_forms(pattern: &str) -> Vec<String> {
    let ws = words(pattern);
    if ws.is_empty() {
        return Vec::new();
    }
    let spaced = ws
        .iter()
        .map(|w| w.folded.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let mut forms = vec![spaced];
    if (2..=4).contains(&ws.len()) {
        forms.push(ws.iter().map(|w| w.folded.as_str()).collect());
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` texts of up to 23 pieces drawn from `alphabet` (splitmix64 from `seed`,
    /// so a failure replays).
    fn random_texts<'a>(
        mut seed: u64,
        alphabet: &'a [&'a str],
        count: usize,
    ) -> impl Iterator<Item = String> + 'a {
        let mut next = move || {
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        (0..count).map(move |_| {
            let len = (next() % 24) as usize;
            (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect()
        })
    }

    fn folded(text: &str) -> Vec<String> {
        words(text).into_iter().map(|w| w.folded).collect()
    }

    #[test]
    fn words_are_unicode_words_folded() {
        assert_eq!(folded("Putin's talks"), ["putin", "talks"]);
        assert_eq!(folded("Trump\u{2019}s envoy"), ["trump", "envoy"]);
        assert_eq!(folded("ПУТИН и Зеленський"), ["путин", "и", "зеленський"]);
        assert_eq!(folded("STRASSE"), ["strasse"]);
        assert_eq!(folded("straße"), ["strasse"]);
        assert_eq!(folded("ΟΔΟΣ"), folded("οδος"));
        assert_eq!(folded("Ukrainians' demands"), ["ukrainians", "demands"]);
        // NFKC: the ligature and full-width letters fold to plain ones.
        assert_eq!(folded("\u{FB01}re ＴＡＬＫＳ"), ["fire", "talks"]);
    }

    /// The reference: the general tables over the whole text, as before the fast path.
    fn reference_words(text: &str) -> Vec<(String, usize, bool)> {
        let mut out = Vec::new();
        let mut buf = String::new();
        segment_words(
            text.split_word_bound_indices(),
            0,
            &mut buf,
            &mut |w, o, g| out.push((w.to_string(), o, g)),
        );
        out
    }

    fn fast_words(text: &str) -> Vec<(String, usize, bool)> {
        let mut out = Vec::new();
        let mut buf = String::new();
        each_word(text, &mut buf, |w, o, g| out.push((w.to_string(), o, g)));
        out
    }

    #[test]
    fn ascii_lines_give_the_words_of_the_unicode_segments() {
        let cases = [
            "Putin's talks, 3.5% of 1,000; e.g. U.S.-led at 10:30 a:b _x_ x__y __ '_'",
            "cease-fire - talks -- a-b-c 'quoted' \"d\" end.",
            "a\r\nb\r c \n\n  x\t\ty 2.a a.2 1'2 a'b' 'a 1;2;a ;; ,,",
        ];
        for text in cases {
            assert_eq!(fast_words(text), reference_words(text), "{text:?}");
        }
        // Random texts over the characters the rules treat specially, with some
        // non-ASCII lines to take the general path.
        let alphabet: Vec<&str> = vec![
            "a", "Z", "7", "0", "_", "'", ".", ",", ";", ":", "-", " ", "  ", "\n", "\r", "\t",
            "\"", "!", "(", "/", "é", "\u{301}", "д", "\u{2019}", "—", "s",
        ];
        for text in random_texts(0x9E37_79B9_7F4A_7C15, &alphabet, 20_000) {
            assert_eq!(fast_words(&text), reference_words(&text), "{text:?}");
        }
    }

    /// The fast path is only given lines of simple characters, but text in other
    /// scripts must not make it slice through a character if that ever changes.
    #[test]
    fn fast_words_keep_other_characters_whole() {
        for text in ["東京で停戦交渉", "a東 Иван, محادثات 서울", "é\u{301}x"]
        {
            let mut buf = String::new();
            let mut words = Vec::new();
            simple_words(text, 0, &mut buf, &mut |w, at, _| {
                words.push((w.to_string(), at))
            });
            assert!(words.iter().all(|(_, at)| text.is_char_boundary(*at)));
            if text.contains("Иван") {
                assert!(words.iter().any(|(w, _)| w == "иван"), "{words:?}");
            }
        }
    }

    /// Every character of the fast path folds as NFKC and full case folding fold it,
    /// and breaks words as the Unicode tables break them, in every context where its
    /// class matters.
    #[test]
    fn simple_characters_fold_and_break_as_the_tables_say() {
        let mut checked = 0;
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let Some(class) = simple(c) else {
                assert_eq!(simple_fold(c), None, "{c:?}");
                continue;
            };
            checked += 1;
            let mut general = String::new();
            fold_general(&c.to_string(), &mut general);
            match simple_fold(c) {
                Some(folded) => assert_eq!(folded.to_string(), general, "{c:?}"),
                None => assert!(!c.is_ascii() && class == Class::Other, "{c:?}"),
            }
            for context in [
                "a{}b",
                "{}{}",
                "1{}2",
                "a{}",
                "{}a",
                "x {} y",
                "д{}д",
                "_{}_",
                "{}.{}",
                "{}'{}",
                "{}:{}",
                "{},{}",
                "1{}",
                "{}1",
                "{}\u{2019}{}",
                "a{}1",
                "1{}a",
                "{}\r\n",
                "{}  ",
            ] {
                let text = context.replace("{}", &c.to_string());
                assert_eq!(fast_words(&text), reference_words(&text), "{text:?}");
            }
        }
        assert!(checked > 450, "{checked}");
    }

    /// Russian and Ukrainian news copy, with typographic quotes, apostrophes and
    /// dashes, gives the words the general tables give.
    #[test]
    fn cyrillic_and_typographic_lines_take_the_fast_path_to_the_same_words() {
        let texts = [
            "«Переговоры» о перемирии — Путин, Путина; Росія, Росії, Росією.",
            "Україна й Україні: перемир’я, перемирʼя, перемир'я… П’ятниця\u{a0}2,5 млн.",
            "ЁЖ ёж Ґанок ґанок ЇЖАК їжак І і Є є Ў ў Ѣ ѣ — “quoted” „цитата“ ‘single’",
            "Zelensky’s “peace plan” – café, NAÏVE, Ærø, Øresund 3.5% 10:30 a:b",
        ];
        for text in texts {
            assert!(
                text.chars().all(|c| simple(c).is_some()),
                "{text:?} should take the fast path"
            );
            assert_eq!(fast_words(text), reference_words(text), "{text:?}");
        }
        assert_eq!(folded("Росією, ПЕРЕМИР’Я"), ["росією", "перемир'я"]);
        // Random texts over the fast path's letters and punctuation.
        let alphabet: Vec<&str> = vec![
            "Ж", "ж", "і", "Ї", "ʼ", "’", "‘", "'", "«", "»", "\u{a0}", "…", "‑", "‐", "—", "–",
            "é", "É", "ß", "ё", "Ґ", "1", "a", "S", " ", ".", ",", ":", "-", "_", "\r", "\n",
            "\u{301}", "“", "„",
        ];
        for text in random_texts(0x2545_F491_4F6C_DD1D, &alphabet, 20_000) {
            assert_eq!(fast_words(&text), reference_words(&text), "{text:?}");
        }
    }

    #[test]
    fn rebuilt_match_text_is_a_new_one() {
        let mut reused =
            MatchText::new("Cease-fire talks in Kyiv", "Russia-Ukraine war, day 1,000");
        for (title, body) in [
            ("Перемир’я", "Переговори з Росією"),
            ("", ""),
            ("a-b-c", "one two three-four"),
        ] {
            reused.rebuild(title, body);
            let fresh = MatchText::new(title, body);
            assert_eq!(reused.haystack, fresh.haystack);
            assert_eq!(
                reused.plain_words().collect::<Vec<_>>(),
                fresh.plain_words().collect::<Vec<_>>()
            );
            for at in 0..fresh.haystack.len() {
                for end in at..=fresh.haystack.len() {
                    assert_eq!(
                        reused.occurrence(at, end, false),
                        fresh.occurrence(at, end, false)
                    );
                }
            }
        }
    }

    #[test]
    fn runs_are_the_plain_words_joined() {
        for (title, body) in [
            ("Cease-fire talks", "Russia-Ukraine war goes on"),
            ("One", "two"),
            ("", "a b c d"),
            ("a b", ""),
        ] {
            let text = MatchText::new(title, body);
            let words: Vec<&str> = text.plain_words().collect();
            for n in 1..=4 {
                let mut runs = Vec::new();
                text.each_run(n, |run| runs.push(run.to_string()));
                let expected: Vec<String> = words.windows(n).map(|w| w.join(" ")).collect();
                assert_eq!(runs, expected, "{title:?} {body:?} {n}");
            }
        }
    }

    #[test]
    fn hyphens_glue_words_only_without_spaces() {
        let ws = words("cease-fire - talks");
        assert!(ws[0].hyphen_after);
        assert!(!ws[1].hyphen_after);
        assert_eq!(ws.len(), 3);
    }

    #[test]
    fn haystack_holds_fields_and_joined_compounds() {
        let text = MatchText::new("Cease-fire talks", "Russia-Ukraine war");
        assert_eq!(
            text.haystack,
            "cease fire talks\nrussia ukraine war\nceasefire russiaukraine"
        );
    }

    #[test]
    fn occurrences_need_word_boundaries() {
        let text = MatchText::new("", "the putinist putin");
        let hay = &text.haystack;
        let at = hay.find("putinist").unwrap();
        assert!(text.occurrence(at, at + 5, false).is_none());
        assert!(text.occurrence(at, at + 5, true).is_some());
        let at = hay.rfind("putin").unwrap();
        let occ = text.occurrence(at, at + 5, false).unwrap();
        assert_eq!(occ.field, Field::Body);
        assert_eq!(occ.source as usize, "the putinist ".len());
    }

    #[test]
    fn compound_occurrence_spans_its_words() {
        let text = MatchText::new("", "a cease-fire now");
        let at = text.haystack.find("ceasefire").unwrap();
        let occ = text.occurrence(at, at + 9, false).unwrap();
        assert_eq!(occ.last_word - occ.first_word, 1);
        assert_eq!(occ.source, 2);
    }

    #[test]
    fn pattern_forms_fold_and_join() {
        assert_eq!(pattern_forms("Cease-Fire"), ["cease fire", "ceasefire"]);
        assert_eq!(pattern_forms("Zelensky"), ["zelensky"]);
        assert_eq!(pattern_forms("Kryvyi Rih"), ["kryvyi rih", "kryvyirih"]);
        assert!(pattern_forms("  ").is_empty());
    }
}
