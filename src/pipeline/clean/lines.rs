//! Rules 5 and 6 of cleaning: the lines that are not article text even though they
//! survived the HTML walk, navigation menus, photo captions and credits.

use std::sync::LazyLock;

use regex::Regex;

// ---------------------------------------------------------------------------
// Rule 5: navigation menus.

/// Longest menu item, in characters and in words.
pub(super) const MENU_ITEM_CHARS: usize = 40;
pub(super) const MENU_ITEM_WORDS: usize = 5;
/// A run of link-like lines is a menu from this many items on; a headline
/// followed by a short dateline is not.
pub(super) const MENU_MIN_ITEMS: usize = 3;

/// Separators of one-line menus and breadcrumbs (`Home | World | Sport`).
pub(super) static INLINE_MENU_SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles, as the tests check.
    Regex::new(r"\s+[|·•›]\s+").expect("constant regex")
});

/// The shape of a line, as far as menus are concerned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// Anything else (sentences, long lines): ends a run.
    Text,
    /// Short and not ending like a sentence. `item` is false for datelines
    /// and bylines (see [`counts_as_menu_item`]).
    Link { item: bool, words: usize },
    /// Several short items on one line; always dropped.
    InlineMenu,
}

pub(super) fn shape(line: &str) -> Shape {
    // Inline menus first: `News · World · Sport` is short enough to look like
    // a single link too.
    if is_inline_menu(line) {
        Shape::InlineMenu
    } else if is_link_like(line) {
        Shape::Link {
            item: counts_as_menu_item(line),
            words: line.split_whitespace().count(),
        }
    } else {
        Shape::Text
    }
}

/// Drops single-line menus, and runs of link-like lines with at least
/// [`MENU_MIN_ITEMS`] items.
///
/// One exception: when such a run is followed by text and its last line is
/// clearly longer than the others (at least 3 words, more than any other
/// line of the run), that line is the headline under a menu and is kept.
pub(super) fn drop_menus<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let shapes: Vec<Shape> = lines.iter().map(|line| shape(line)).collect();
    let mut keep: Vec<bool> = shapes.iter().map(|s| *s != Shape::InlineMenu).collect();
    let mut i = 0;
    while i < shapes.len() {
        if shapes[i] == Shape::Text {
            i += 1;
            continue;
        }
        let start = i;
        while i < shapes.len() && shapes[i] != Shape::Text {
            i += 1;
        }
        let run = &shapes[start..i];
        let items = run
            .iter()
            .filter(|s| matches!(s, Shape::Link { item: true, .. } | Shape::InlineMenu))
            .count();
        if items < MENU_MIN_ITEMS {
            continue;
        }
        keep[start..i].iter_mut().for_each(|k| *k = false);
        let followed_by_text = i < shapes.len();
        if let (true, Some((Shape::Link { words, .. }, others))) =
            (followed_by_text, run.split_last())
        {
            let longest_other = others
                .iter()
                .map(|s| match s {
                    Shape::Link { words, .. } => *words,
                    _ => 0,
                })
                .max()
                .unwrap_or(0);
            if *words >= 3 && *words > longest_other {
                keep[i - 1] = true;
            }
        }
    }
    lines
        .iter()
        .zip(keep)
        .filter(|(_, keep)| *keep)
        .map(|(line, _)| *line)
        .collect()
}

/// Short, and not ending like a sentence: what a menu entry looks like.
pub(super) fn is_link_like(line: &str) -> bool {
    is_short_label(strip_bullet(line))
}

pub(super) fn is_short_label(item: &str) -> bool {
    // The byte length test first: a char is at most 4 bytes, and most lines
    // are long paragraphs that this rejects without counting.
    !item.is_empty()
        && item.len() <= 4 * MENU_ITEM_CHARS
        && item.chars().count() <= MENU_ITEM_CHARS
        && item.split_whitespace().count() <= MENU_ITEM_WORDS
        && !item.ends_with(['.', '!', '?', ';', ':', '"', '\'', '。', '؟'])
}

/// Some link-like lines are not menu entries: they may sit in a run but do
/// not make it a menu.
///
/// - Datelines and bylines follow a headline: without this, "Headline /
///   By Name / March 14, 2025" would be dropped as a menu.
/// - A line starting in lower case continues a sentence that `<br>`s or a
///   stray table cut into short lines ("Zelensky welcomed / the offer / but
///   said / ..."); menu entries start with a capital, a digit or a script
///   without case.
pub(super) fn counts_as_menu_item(line: &str) -> bool {
    let item = strip_bullet(line);
    !item.chars().any(|c| c.is_ascii_digit())
        && !item.starts_with("By ")
        && !item
            .chars()
            .find(|c| c.is_alphabetic())
            .is_some_and(char::is_lowercase)
}

/// Removes one leading bullet. `"` is there because `»` bullets become `"`
/// during normalisation.
pub(super) fn strip_bullet(line: &str) -> &str {
    let line = line.trim();
    match line.strip_prefix(['-', '*', '•', '·', '|', '›', '»', '>', '"']) {
        Some(rest) if rest.starts_with(char::is_whitespace) || !line.starts_with('"') => {
            rest.trim_start()
        }
        _ => line,
    }
}

/// `Home | World | Sport | Business`: three or more short items on one line.
pub(super) fn is_inline_menu(line: &str) -> bool {
    // Single-char searches are memchr calls; this rejects most lines cheaply.
    if !['|', '·', '•', '›']
        .into_iter()
        .any(|sep| line.contains(sep))
    {
        return false;
    }
    let line = line.trim_matches(|c: char| c == '|' || c.is_whitespace());
    let mut items = 0;
    for item in INLINE_MENU_SEPARATOR.split(line) {
        if !is_short_label(item) {
            return false;
        }
        items += 1;
    }
    items >= MENU_MIN_ITEMS
}

// ---------------------------------------------------------------------------
// Rule 6: photo captions and credits.

/// Credit markers anywhere in a line. `Photo:` and `Фото:` ignore case
/// because agencies write them in capitals as often as not.
pub(super) static CREDIT_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles, as the tests check.
    Regex::new(
        r"AP Photo/|\b(?i:photo|фото):|Photograph:|Image:|Credit:|Getty Images|REUTERS/|/Reuters|AFP via Getty",
    )
    .expect("constant regex")
});

/// How captions open.
pub(super) static CAPTION_OPENING: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles, as the tests check.
    Regex::new(
        r"^(?:Фото\s|In this (?:[\w-]+ ){0,2}(?:photo|image)\b|This (?:[\w-]+ )?photo\b|FILE -|FILE PHOTO)",
    )
    .expect("constant regex")
});

/// An agency caption date: weekday, then `March 14, 2025` or `14 March 2025`.
pub(super) static CAPTION_DATE: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles, as the tests check.
    Regex::new(
        r"(?x)
        \b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday),?\s+
        (?:
            (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4}
          | \d{1,2}\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?,?\s+\d{4}
        )\b",
    )
    .expect("constant regex")
});

/// Words saying where a picture comes from (a press office, a handout, an
/// agency it came "via"); with a [`CAPTION_DATE`] right after the title they
/// make a caption, not a lede.
pub(super) static PHOTO_SOURCE: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles, as the tests check.
    Regex::new(
        r"(?i)\b(?:press (?:service|office)|photos?|photographs?|photographer|handout|released by|pool|courtesy|via (?:AP|AFP|EPA|Reuters|Getty))\b",
    )
    .expect("constant regex")
});

/// How many lines after the title may hold a dated caption.
pub(super) const CAPTION_DATE_WINDOW: usize = 2;

pub(super) fn is_credit_line(line: &str) -> bool {
    // Every credit marker has a `:` or a `/` or is a Getty one: a cheap
    // memchr test before the regex, which scans the whole line.
    let may_credit = line.contains(':') || line.contains('/') || line.contains("Getty");
    // Every caption opening starts with one of these: most lines are
    // rejected without running the regex.
    let may_open = ["Фото", "In this ", "This ", "FILE "]
        .iter()
        .any(|start| line.starts_with(start));
    (may_credit && CREDIT_MARKER.is_match(line)) || (may_open && CAPTION_OPENING.is_match(line))
}

pub(super) fn is_dated_caption(line: &str) -> bool {
    CAPTION_DATE.is_match(line) && PHOTO_SOURCE.is_match(line)
}

/// Drops dated captions among the first [`CAPTION_DATE_WINDOW`] lines after
/// the title (or the first ones, when the title is given separately). Only
/// there: further down, the same words are an ordinary news sentence.
pub(super) fn drop_dated_captions(lines: Vec<&str>, title_first: bool) -> Vec<&str> {
    let window = usize::from(title_first)..usize::from(title_first) + CAPTION_DATE_WINDOW;
    lines
        .into_iter()
        .enumerate()
        .filter(|(i, line)| !(window.contains(i) && is_dated_caption(line)))
        .map(|(_, line)| line)
        .collect()
}
