//! Cleaning: raw text or HTML in, [`Article`]s of normalised plain text out.
//!
//! This module owns everything between "bytes decoded to a `&str`" and
//! "title + body ready for entity/topic detection". It is pure: no I/O, no
//! global state apart from constant regexes, and it never panics.
//!
//! The built-in rules, in the order they run:
//!
//! 1. **HTML to text** ([`html_to_text`], only for HTML input): parsed with
//!    html5ever (via `scraper`), so entities, unclosed tags and tag soup are
//!    handled the way a browser would. Block elements become line breaks,
//!    inline elements join, and the content of non-article elements (scripts,
//!    styles, site chrome such as `nav`/`footer`, forms, media fallbacks, photo
//!    captions, `hidden` elements, lists whose every word is a link) is
//!    skipped.
//! 2. **Normalisation** ([`normalize`]): NFKC, typographic quotes and dashes to
//!    ASCII, invisible characters and control characters removed, whitespace
//!    collapsed, one paragraph per line, no empty lines.
//! 3. **Splitting** (documents only): lines matching a configured `split_on`
//!    regex separate articles; empty segments are dropped.
//! 4. **Configured `drop_lines`**: lines matching any of them are removed.
//! 5. **Navigation menus**: runs of three or more short link-like lines, and
//!    single lines made of several short items joined by ` | `, ` · `, ...
//! 6. **Photo captions and credits**: lines carrying a credit marker
//!    (`AP Photo/`, `Photo:`, `Getty Images`, `Фото:`, ...) or a caption
//!    opening (`In this photo`, `FILE -`, ...), and, right after the title, an
//!    agency-style caption (weekday + full date + a photo-source word).
//! 7. **Title**: the first remaining line, unless it is too long to be a
//!    headline; then it stays in the body as the lede and the title is its
//!    start, cut at a word boundary and ending with `…`.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;
use scraper::{ElementRef, Html, Node};
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// One article: a title and a body of paragraphs separated by `\n`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Article {
    pub title: String,
    pub body: String,
}

/// The cleaning rules: built-in ones plus the configured `split_on` and `drop_lines`.
#[derive(Debug, Clone)]
pub struct Cleaner {
    split_on: Vec<Regex>,
    drop_lines: Vec<Regex>,
}

impl Cleaner {
    pub fn new(split_on: Vec<Regex>, drop_lines: Vec<Regex>) -> Cleaner {
        Cleaner {
            split_on,
            drop_lines,
        }
    }

    /// A whole document (plain text, or HTML when `is_html`): split into articles.
    ///
    /// Every segment between separator lines that still has text after the
    /// line rules becomes one article; the others (empty segments, a site menu
    /// after the last separator) produce nothing.
    pub fn clean_document(&self, text: &str, is_html: bool) -> Vec<Article> {
        let text = if is_html {
            normalize(&html_to_text(text))
        } else {
            normalize(text)
        };
        let mut articles = Vec::new();
        let mut segment: Vec<&str> = Vec::new();
        for line in text.lines() {
            // `normalize` already trimmed the line; trim again so the contract
            // ("tested against the trimmed line") does not depend on that.
            if self.split_on.iter().any(|re| re.is_match(line.trim())) {
                articles.extend(self.segment_to_article(&segment));
                segment.clear();
            } else {
                segment.push(line);
            }
        }
        articles.extend(self.segment_to_article(&segment));
        articles
    }

    /// A feed item: the title is given, the body is HTML (or text, which parses as HTML).
    ///
    /// The body goes through the same line rules as a document segment but is
    /// never split. An empty title is derived from the body like a document's.
    pub fn clean_item(&self, title: &str, body_html: &str) -> Article {
        // A body without a single tag is plain text (JSON Feed `content_text`,
        // many RSS descriptions): its line breaks are paragraphs, which HTML
        // would fold into spaces. As `<br>`s they survive the parser, which
        // still decodes character references.
        let body_text = if body_html.contains('<') {
            normalize(&html_to_text(body_html))
        } else {
            normalize(&html_to_text(&body_html.replace('\n', "<br>")))
        };
        let lines: Vec<&str> = body_text.lines().collect();
        let title = clean_title(title);
        if title.is_empty() {
            let lines = self.clean_lines(&lines, true);
            split_title(&lines).unwrap_or_default()
        } else {
            let lines = self.clean_lines(&lines, false);
            Article {
                title,
                body: lines.join("\n"),
            }
        }
    }

    /// One segment of a document: line rules, then title and body.
    fn segment_to_article(&self, segment: &[&str]) -> Option<Article> {
        if segment.is_empty() {
            return None;
        }
        let lines = self.clean_lines(segment, true);
        split_title(&lines)
    }

    /// Rules 4 to 6 over normalised, non-empty lines. `title_first` says
    /// whether the first line will become the title (documents, title-less
    /// items): the caption-date rule then looks at the two lines after it
    /// rather than at the first two.
    fn clean_lines<'a>(&self, lines: &[&'a str], title_first: bool) -> Vec<&'a str> {
        let kept: Vec<&'a str> = lines
            .iter()
            .copied()
            .filter(|line| !self.drop_lines.iter().any(|re| re.is_match(line)))
            .collect();
        let kept = drop_menus(&kept);
        let kept: Vec<&'a str> = kept.into_iter().filter(|l| !is_credit_line(l)).collect();
        drop_dated_captions(kept, title_first)
    }
}

// ---------------------------------------------------------------------------
// Rule 1: HTML to text.

/// Elements whose whole subtree is not article text. Site chrome (`nav`,
/// `footer`, `aside`, form controls), code and styling, embedded documents,
/// and media whose children are only "your browser does not support ..."
/// fallbacks. `figcaption` is a photo caption, which rule 6 would drop anyway.
/// (`header` and `form` are skipped too, with exceptions: see
/// [`WalkState::open`] and [`holds_main_content`].)
const SKIPPED_ELEMENTS: &[&str] = &[
    "script",
    "style",
    "noscript",
    "template",
    "head",
    "title",
    "nav",
    "footer",
    "aside",
    "button",
    "select",
    "option",
    "textarea",
    "svg",
    "iframe",
    "object",
    "video",
    "audio",
    "canvas",
    "figcaption",
];

/// ARIA roles that mark the same site chrome as the elements above, for
/// pages built from `div`s.
const SKIPPED_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "menu",
    "menubar",
    "search",
];

/// Elements that start and end a line. Everything else is inline and joins
/// with its neighbours (as a browser renders it).
const BLOCK_ELEMENTS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "html",
    "legend",
    "li",
    "listing",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "plaintext",
    "pre",
    "search",
    "section",
    "summary",
    "table",
    "tbody",
    "tfoot",
    "thead",
    "tr",
    "ul",
    "xmp",
];

/// Elements inside which a `header` is the article's own header (its
/// headline), not the site banner: the HTML spec gives `header` the banner
/// role only outside these.
const SECTIONING_ELEMENTS: &[&str] = &["article", "main", "section"];

/// Elements that only the page's main content has; a `form` holding one of
/// them wraps the page (see [`holds_main_content`]).
const MAIN_CONTENT_ELEMENTS: &[&str] = &["article", "main", "h1"];

/// Depth beyond which the document is parsed in pieces (see [`nesting_cuts`]).
/// Blink caps its DOM depth at the same value.
const MAX_NESTING: usize = 512;

/// How many times an unclosed `<title>` is re-parsed (see [`html_to_text`]).
/// One is what real pages need; the bound keeps `<title><title><title>...`
/// from costing a parse per tag.
const MAX_TITLE_REPARSES: usize = 2;

/// The text of an HTML document or fragment: one line per block element,
/// character references decoded, non-article elements skipped. The result is
/// not normalised yet (see [`normalize`]).
///
/// The tree is walked iteratively, so nesting depth does not consume stack.
///
/// One repair on top of the parser: `<title>` content is raw text up to
/// `</title>`, so a page whose title is never closed (tag soup) parses as one
/// huge title holding the whole page as literal markup.
/// When the source has no `</title` at all, the title's text is parsed again
/// as the rest of the page instead of being skipped.
pub fn html_to_text(html: &str) -> String {
    let mut out = TextWriter::default();
    let mut source = Cow::Borrowed(html);
    for round in 0..=MAX_TITLE_REPARSES {
        let title_unclosed =
            round < MAX_TITLE_REPARSES && find_end_tag(source.as_bytes(), 0, b"title").is_none();
        let mut swallowed = None;
        let mut start = 0;
        for cut in nesting_cuts(&source).into_iter().chain([source.len()]) {
            // Cuts are at ASCII `<` bytes, so both ends are char boundaries;
            // `get` keeps this panic-free regardless.
            if let Some(piece) = source.get(start..cut) {
                let html = Html::parse_document(piece);
                swallowed = swallowed.or(extract_text(&html, title_unclosed, &mut out));
                out.newline();
            }
            start = cut;
        }
        match swallowed {
            Some(rest) => source = Cow::Owned(rest),
            None => break,
        }
    }
    out.text
}

/// Walks the parsed tree in document order with parent links instead of
/// recursion or an explicit stack, pruning skipped subtrees. Returns the text
/// of the first `title` when `title_unclosed` (see [`html_to_text`]).
fn extract_text(html: &Html, title_unclosed: bool, out: &mut TextWriter) -> Option<String> {
    // The title sits in the skipped `head`, so look for it outside the walk.
    let swallowed = title_unclosed
        .then(|| {
            html.tree.nodes().find(
                |node| matches!(node.value(), Node::Element(element) if element.name() == "title"),
            )
        })
        .flatten()
        .map(|title| {
            let text = title.descendants().filter_map(|d| match d.value() {
                Node::Text(text) => Some(&**text),
                _ => None,
            });
            text.collect::<String>()
        });
    let mut state = WalkState::default();
    let mut current = Some(html.tree.root());
    'walk: while let Some(node) = current {
        let skipped_by_content =
            ElementRef::wrap(node).is_some_and(|element| match element.value().name() {
                "form" => !holds_main_content(element),
                "header" => !holds_headline(element),
                "ul" | "ol" | "menu" => is_link_list(element),
                _ => false,
            });
        if state.open(node.value(), skipped_by_content, out) {
            if let Some(child) = node.first_child() {
                current = Some(child);
                continue;
            }
            state.close(node.value(), out);
        }
        // Subtree done: go to the next sibling, closing finished ancestors.
        let mut done = node;
        loop {
            if let Some(sibling) = done.next_sibling() {
                current = Some(sibling);
                continue 'walk;
            }
            match done.parent() {
                Some(parent) => {
                    state.close(parent.value(), out);
                    done = parent;
                }
                None => break 'walk,
            }
        }
    }
    swallowed
}

/// Whether a `form` wraps the page's main content. A form is normally a
/// search box or a comment or login form and is skipped, but ASP.NET
/// WebForms pages wrap the whole page in one; skipping that would lose the
/// article. Cost: the parser never nests forms, so these scans visit each
/// node at most once overall.
fn holds_main_content(form: ElementRef) -> bool {
    form.descendants().any(|node| {
        matches!(node.value(), Node::Element(e) if MAIN_CONTENT_ELEMENTS.contains(&e.name()))
    })
}

/// Whether all the words of a list are link text: a menu, a "related
/// stories" list or a tag cloud, never article prose. Structure tells this
/// better than the line shapes of rule 5 can: a two-item menu above the
/// headline would otherwise become the title. Separators (`|`, `·`) are not
/// words, so they do not count.
fn is_link_list(list: ElementRef) -> bool {
    let letters = |text: &str| text.chars().filter(|c| c.is_alphanumeric()).count();
    let all: usize = list.text().map(letters).sum();
    let linked: usize = list
        .descendants()
        .filter_map(ElementRef::wrap)
        .filter(|e| e.value().name() == "a")
        .flat_map(|a| a.text())
        .map(letters)
        .sum();
    all > 0 && linked >= all
}

/// Whether a `header` holds the page's headline (an `h1`). Outside sectioning
/// elements a `header` is the site banner and is skipped, but some pages put
/// the article's own header there; its headline is the title. Linear for the
/// same reason as [`holds_main_content`], as long as headers do not nest.
fn holds_headline(header: ElementRef) -> bool {
    header
        .descendants()
        .any(|node| matches!(node.value(), Node::Element(e) if e.name() == "h1"))
}

/// What the walk needs to know about the ancestors of the current node.
#[derive(Default)]
struct WalkState {
    /// Open `pre` elements: their line breaks are content.
    pre: usize,
    /// Open sectioning elements (see [`SECTIONING_ELEMENTS`]).
    sectioning: usize,
}

impl WalkState {
    /// Handles entering `node`; returns whether to walk its children (and
    /// later call [`WalkState::close`] for it). `skipped_by_content` comes
    /// from [`holds_main_content`], [`holds_headline`] and [`is_link_list`].
    ///
    /// A `header` inside a sectioning element is the article's own header,
    /// never skipped: the HTML spec gives `header` the banner role only
    /// outside them.
    fn open(&mut self, node: &Node, skipped_by_content: bool, out: &mut TextWriter) -> bool {
        match node {
            Node::Document | Node::Fragment => true,
            Node::Text(text) => {
                out.text(text, self.pre > 0);
                false
            }
            Node::Element(element) => {
                let name = element.name();
                let banner = name == "header" && self.sectioning == 0;
                let skipped = SKIPPED_ELEMENTS.contains(&name)
                    || (skipped_by_content && (name != "header" || banner))
                    || element.attr("hidden").is_some()
                    || element
                        .attr("aria-hidden")
                        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                    || element.attr("role").is_some_and(|role| {
                        SKIPPED_ROLES
                            .iter()
                            .any(|skipped| role.trim().eq_ignore_ascii_case(skipped))
                    });
                if skipped {
                    return false;
                }
                match name {
                    "br" => out.newline(),
                    "td" | "th" => out.space(),
                    "pre" | "listing" | "xmp" | "plaintext" => self.pre += 1,
                    _ => {}
                }
                if SECTIONING_ELEMENTS.contains(&name) {
                    self.sectioning += 1;
                }
                if BLOCK_ELEMENTS.contains(&name) {
                    out.newline();
                }
                true
            }
            Node::Doctype(_) | Node::Comment(_) | Node::ProcessingInstruction(_) => false,
        }
    }

    /// Handles leaving an element that [`WalkState::open`] entered.
    fn close(&mut self, node: &Node, out: &mut TextWriter) {
        if let Node::Element(element) = node {
            let name = element.name();
            match name {
                "td" | "th" => out.space(),
                "pre" | "listing" | "xmp" | "plaintext" => self.pre = self.pre.saturating_sub(1),
                _ => {}
            }
            if SECTIONING_ELEMENTS.contains(&name) {
                self.sectioning = self.sectioning.saturating_sub(1);
            }
            if BLOCK_ELEMENTS.contains(&name) {
                out.newline();
            }
        }
    }
}

/// The output of [`html_to_text`]; avoids piling up empty lines (normalise
/// would remove them, but they cost memory on big pages).
#[derive(Default)]
struct TextWriter {
    text: String,
}

impl TextWriter {
    fn newline(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.text.push('\n');
        }
    }

    fn space(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with([' ', '\n']) {
            self.text.push(' ');
        }
    }

    /// Source line breaks are only layout in HTML, except inside `pre`.
    fn text(&mut self, text: &str, preformatted: bool) {
        if preformatted {
            self.text.push_str(text);
        } else {
            self.text.extend(text.chars().map(|c| match c {
                '\n' | '\r' | '\t' | '\u{000C}' => ' ',
                c => c,
            }));
        }
    }
}

/// Elements whose text content is raw (markup inside is text), per the HTML
/// tokenizer; the nesting scan must not count tags inside them.
const RAW_TEXT_ELEMENTS: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
];

/// Start tags that do not deepen the tree in practice: void elements, and
/// elements that a new sibling closes implicitly (`<p>`, `<li>`, `<a>`, ...).
const NON_NESTING_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th",
    "tbody", "thead", "tfoot", "caption", "colgroup", "rb", "rt", "rp", "rtc", "a", "button",
    "form", "nobr",
];

/// Byte offsets (of a `<`) at which to cut `html` so that no piece nests
/// deeper than [`MAX_NESTING`]; empty for ordinary pages.
///
/// Why: html5ever's tree builder scans the stack of open elements for many
/// start tags (e.g. "is there a `p` in button scope?" for every `<div>`), so a
/// hostile 100,000-deep `<div>` nest costs ~10^10 steps (half a minute in
/// release). Parsing such a document in pieces bounds the cost at
/// `O(len * MAX_NESTING)`; the price, only for such documents, is that
/// structure does not carry across a cut (text does).
///
/// This is a conservative scan for depth, not a parser: it never removes or
/// interprets markup, it only picks where to cut.
fn nesting_cuts(html: &str) -> Vec<usize> {
    let bytes = html.as_bytes();
    let mut cuts = Vec::new();
    let mut depth = 0usize;
    let mut pos = 0usize;
    while let Some(lt) = find_byte(bytes, pos, b'<') {
        pos = lt + 1;
        let rest = bytes.get(lt + 1..).unwrap_or_default();
        match rest.first() {
            Some(b'!') if rest.starts_with(b"!--") => {
                pos = find_seq(bytes, lt + 4, b"-->").map_or(bytes.len(), |end| end + 3);
            }
            Some(b'!' | b'?') => {
                pos = find_byte(bytes, pos, b'>').map_or(bytes.len(), |gt| gt + 1);
            }
            Some(b'/') if rest.get(1).is_some_and(u8::is_ascii_alphabetic) => {
                depth = depth.saturating_sub(1);
            }
            Some(first) if first.is_ascii_alphabetic() => {
                let name_len = rest
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
                    .count();
                let name = &rest[..name_len];
                let gt = find_byte(bytes, pos, b'>');
                let self_closing = gt.is_some_and(|gt| bytes.get(gt - 1) == Some(&b'/'));
                pos = gt.map_or(bytes.len(), |gt| gt + 1);
                if name.eq_ignore_ascii_case(b"plaintext") {
                    break; // everything after it is text
                }
                if let Some(raw) = RAW_TEXT_ELEMENTS
                    .iter()
                    .find(|n| name.eq_ignore_ascii_case(n.as_bytes()))
                {
                    pos = find_end_tag(bytes, pos, raw.as_bytes()).unwrap_or(bytes.len());
                } else if !self_closing
                    && !NON_NESTING_ELEMENTS
                        .iter()
                        .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
                {
                    depth += 1;
                    if depth > MAX_NESTING {
                        cuts.push(lt);
                        depth = 1;
                    }
                }
            }
            _ => {}
        }
    }
    cuts
}

fn find_byte(bytes: &[u8], from: usize, needle: u8) -> Option<usize> {
    let found = bytes.get(from..)?.iter().position(|&b| b == needle)?;
    Some(from + found)
}

fn find_seq(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let found = bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)?;
    Some(from + found)
}

/// Position of the `<` of `</name` (ASCII case-insensitive) at or after `from`.
fn find_end_tag(bytes: &[u8], from: usize, name: &[u8]) -> Option<usize> {
    let mut pos = from;
    while let Some(lt) = find_byte(bytes, pos, b'<') {
        let candidate = bytes.get(lt + 2..lt + 2 + name.len());
        if bytes.get(lt + 1) == Some(&b'/')
            && candidate.is_some_and(|c| c.eq_ignore_ascii_case(name))
        {
            return Some(lt);
        }
        pos = lt + 1;
    }
    None
}

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
        let fast_end = if ascii_end < bytes.len() {
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
        for c in slow
            .chars()
            .filter_map(map_char)
            .nfkc()
            .filter_map(map_char)
        {
            out.push(c);
        }
        pos = slow_end;
    }
    out.text
}

/// Index of the first byte at or after `from` matching `pred`, or the length.
fn find_from(bytes: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    bytes
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| pred(b)))
        .map_or(bytes.len(), |found| from + found)
}

/// The whitespace and line state machine of [`normalize`].
struct LineBuilder {
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
    fn push_ascii(&mut self, ascii: &str) {
        let bytes = ascii.as_bytes();
        let mut pos = 0;
        while pos < bytes.len() {
            let end = find_from(bytes, pos, |b| !b.is_ascii_graphic());
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
fn map_char(c: char) -> Option<char> {
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

// ---------------------------------------------------------------------------
// Rule 5: navigation menus.

/// Longest menu item, in characters and in words.
const MENU_ITEM_CHARS: usize = 40;
const MENU_ITEM_WORDS: usize = 5;
/// A run of link-like lines is a menu from this many items on; a headline
/// followed by a short dateline is not.
const MENU_MIN_ITEMS: usize = 3;

/// Separators of one-line menus and breadcrumbs (`Home | World | Sport`).
static INLINE_MENU_SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles, as the tests check.
    Regex::new(r"\s+[|·•›]\s+").expect("constant regex")
});

/// The shape of a line, as far as menus are concerned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Anything else (sentences, long lines): ends a run.
    Text,
    /// Short and not ending like a sentence. `item` is false for datelines
    /// and bylines (see [`counts_as_menu_item`]).
    Link { item: bool, words: usize },
    /// Several short items on one line; always dropped.
    InlineMenu,
}

fn shape(line: &str) -> Shape {
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
fn drop_menus<'a>(lines: &[&'a str]) -> Vec<&'a str> {
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
fn is_link_like(line: &str) -> bool {
    is_short_label(strip_bullet(line))
}

fn is_short_label(item: &str) -> bool {
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
fn counts_as_menu_item(line: &str) -> bool {
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
fn strip_bullet(line: &str) -> &str {
    let line = line.trim();
    match line.strip_prefix(['-', '*', '•', '·', '|', '›', '»', '>', '"']) {
        Some(rest) if rest.starts_with(char::is_whitespace) || !line.starts_with('"') => {
            rest.trim_start()
        }
        _ => line,
    }
}

/// `Home | World | Sport | Business`: three or more short items on one line.
fn is_inline_menu(line: &str) -> bool {
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
static CREDIT_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles, as the tests check.
    Regex::new(
        r"AP Photo/|\b(?i:photo|фото):|Photograph:|Image:|Credit:|Getty Images|REUTERS/|/Reuters|AFP via Getty",
    )
    .expect("constant regex")
});

/// How captions open.
static CAPTION_OPENING: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles, as the tests check.
    Regex::new(
        r"^(?:Фото\s|In this (?:[\w-]+ ){0,2}(?:photo|image)\b|This (?:[\w-]+ )?photo\b|FILE -|FILE PHOTO)",
    )
    .expect("constant regex")
});

/// An agency caption date: weekday, then `March 14, 2025` or `14 March 2025`.
static CAPTION_DATE: LazyLock<Regex> = LazyLock::new(|| {
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
static PHOTO_SOURCE: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles, as the tests check.
    Regex::new(
        r"(?i)\b(?:press (?:service|office)|photos?|photographs?|photographer|handout|released by|pool|courtesy|via (?:AP|AFP|EPA|Reuters|Getty))\b",
    )
    .expect("constant regex")
});

/// How many lines after the title may hold a dated caption.
const CAPTION_DATE_WINDOW: usize = 2;

fn is_credit_line(line: &str) -> bool {
    // Every credit marker has a `:` or a `/` or is a Getty one: a cheap
    // memchr test before the regex, which scans the whole line.
    let may_credit = line.contains(':') || line.contains('/') || line.contains("Getty");
    (may_credit && CREDIT_MARKER.is_match(line)) || CAPTION_OPENING.is_match(line)
}

fn is_dated_caption(line: &str) -> bool {
    CAPTION_DATE.is_match(line) && PHOTO_SOURCE.is_match(line)
}

/// Drops dated captions among the first [`CAPTION_DATE_WINDOW`] lines after
/// the title (or the first ones, when the title is given separately). Only
/// there: further down, the same words are an ordinary news sentence.
fn drop_dated_captions(lines: Vec<&str>, title_first: bool) -> Vec<&str> {
    let window = usize::from(title_first)..usize::from(title_first) + CAPTION_DATE_WINDOW;
    lines
        .into_iter()
        .enumerate()
        .filter(|(i, line)| !(window.contains(i) && is_dated_caption(line)))
        .map(|(_, line)| line)
        .collect()
}

// ---------------------------------------------------------------------------
// Rule 7: title.

/// A first line longer than this (in characters) is a lede, not a headline.
const MAX_HEADLINE_CHARS: usize = 200;
/// Longest derived title, in characters, `…` included.
const DERIVED_TITLE_CHARS: usize = 120;
/// Longest feed title kept, in characters, `…` included. A feed can put megabytes in
/// a `<title>`; whole, it was stored, sent in every alert and logged. No headline
/// comes near this.
pub const MAX_TITLE_CHARS: usize = 500;

/// Title and body from cleaned lines; `None` when nothing is left.
fn split_title(lines: &[&str]) -> Option<Article> {
    let (first, rest) = lines.split_first()?;
    if first.chars().count() > MAX_HEADLINE_CHARS {
        Some(Article {
            title: title_from_lede(first),
            body: lines.join("\n"),
        })
    } else {
        Some(Article {
            title: (*first).to_string(),
            body: rest.join("\n"),
        })
    }
}

/// The start of `lede`, cut at a word boundary to at most
/// [`DERIVED_TITLE_CHARS`] characters including the final `…`.
fn title_from_lede(lede: &str) -> String {
    shorten(lede, DERIVED_TITLE_CHARS)
}

/// `text` cut at a word boundary to at most `max` characters including the final
/// `…`, or whole when it fits. Counts and cuts whole grapheme clusters so no accent
/// or emoji is split.
fn shorten(text: &str, max: usize) -> String {
    let lede = text;
    let budget = max - 1;
    let mut used = 0;
    let mut end = 0;
    let mut last_space = None;
    for (i, grapheme) in lede.grapheme_indices(true) {
        let len = grapheme.chars().count();
        if used + len > budget {
            break;
        }
        if grapheme.chars().all(char::is_whitespace) {
            last_space = Some(i);
        }
        used += len;
        end = i + grapheme.len();
    }
    if end == lede.len() {
        return lede.to_string();
    }
    // Prefer the last word boundary unless that would throw away most of
    // the budget (one giant token, or a script written without spaces).
    let cut = match last_space {
        Some(space) if space >= end / 2 => space,
        _ => end,
    };
    let head = lede.get(..cut).unwrap_or(lede);
    let mut title = head
        .trim_end_matches(|c: char| {
            c.is_whitespace() || matches!(c, ',' | ';' | ':' | '-' | '(' | '[')
        })
        .to_string();
    title.push('…');
    title
}

/// A feed title: markup and character references resolved when present, then
/// normalised to one line.
fn clean_title(title: &str) -> String {
    let mut text = if title.contains(['<', '&']) {
        normalize(&html_to_text(title))
    } else {
        String::new()
    };
    if text.is_empty() {
        // Plain text, or "markup" that was all skipped (e.g. a literal
        // `<title>`): better the raw characters than no title.
        text = normalize(title);
    }
    let title = text.lines().collect::<Vec<_>>().join(" ");
    if title.chars().count() > MAX_TITLE_CHARS {
        shorten(&title, MAX_TITLE_CHARS)
    } else {
        title
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaner() -> Cleaner {
        Cleaner::new(
            vec![Regex::new(r"^={5,}\s*$").unwrap()],
            vec![Regex::new(r"^(?i)advertisement$").unwrap()],
        )
    }

    fn article(title: &str, body: &str) -> Article {
        Article {
            title: title.to_string(),
            body: body.to_string(),
        }
    }

    #[test]
    fn builtin_regexes_compile() {
        for re in [
            &INLINE_MENU_SEPARATOR,
            &CREDIT_MARKER,
            &CAPTION_OPENING,
            &CAPTION_DATE,
            &PHOTO_SOURCE,
        ] {
            LazyLock::force(re);
        }
    }

    #[test]
    fn html_to_text_cases() {
        let cases: &[(&str, &str, &str)] = &[
            ("paragraphs", "<p>First one.</p><p>Second one.</p>", "First one.\nSecond one."),
            ("br", "Line one<br>Line two<br/>Line three", "Line one\nLine two\nLine three"),
            ("inline joins", "<p>A <b>bold</b> and <i>tilted</i> word.</p>", "A bold and tilted word."),
            ("source newlines are spaces", "<p>wrapped\nin the\r\nsource</p>", "wrapped in the source"),
            ("entities", "<p>Salt &amp; pepper&nbsp;now, it&#8217;s &lt;ok&gt;</p>", "Salt & pepper now, it's <ok>"),
            ("script and style", "<p>Kept.</p><script>var x = '<p>no</p>';</script><style>p{}</style>", "Kept."),
            ("nav and footer", "<nav><a>Home</a></nav><p>Story.</p><footer>Legal</footer>", "Story."),
            ("figcaption", "<figure><img src=x><figcaption>Smoke rises.</figcaption></figure><p>Text.</p>", "Text."),
            ("head and title", "<html><head><title>Site</title></head><body><h1>Head</h1><p>Body.</p></body></html>", "Head\nBody."),
            ("site header skipped", "<header>Logo Menu</header><p>Body.</p>", "Body."),
            ("article header kept", "<article><header><h1>Headline</h1></header><p>Body.</p></article>", "Headline\nBody."),
            ("header with the headline kept", "<header><h1>Headline</h1></header><p>Body.</p>", "Headline\nBody."),
            ("search form", "<form><label>Search</label><input></form><p>Body.</p>", "Body."),
            ("page-wrapping form", "<form><h1>Headline</h1><p>Body.</p></form>", "Headline\nBody."),
            ("hidden and roles", "<div hidden>x</div><div role=\"navigation\">y</div><span aria-hidden=\"true\">z</span><p>Body.</p>", "Body."),
            ("list items", "<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
            ("link list", "<ul><li><a href=/>Start</a></li><li><a href=/b>Blog</a> |</li></ul><h1>Head</h1>", "Head"),
            ("list with some links kept", "<ol><li>See <a href=/r>the report</a> first.</li></ol>", "See the report first."),
            ("table rows", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
            ("pre keeps lines", "<pre>x = 1\ny = 2</pre>", "x = 1\ny = 2"),
            ("tag soup", "<p>One<p>Two <b>bold <i>both</b> italic</i><div>Three<span>", "One\nTwo bold both italic\nThree"),
            ("unclosed nav swallows", "<p>Kept.</p><nav><li>Home<li>News", "Kept."),
            ("comment", "<p>A<!-- hidden -->B</p>", "AB"),
            ("unclosed title", "<html><head><title>Site<body><p>Text one.<p>Two &amp; three.", "Site\nText one.\nTwo & three."),
            ("nested unclosed titles", "<title>a<title>b<title>c<title><p>d", "a\nb"),
            ("empty", "", ""),
            ("no markup", "Just text", "Just text"),
        ];
        for (name, html, want) in cases {
            assert_eq!(normalize(&html_to_text(html)), *want, "case {name}");
        }
    }

    #[test]
    fn html_to_text_survives_deep_nesting() {
        // Iterative walk: no stack overflow; the piecewise parse keeps this
        // from taking minutes.
        let depth = 100_000;
        let html = format!(
            "{}deep text{}",
            "<div>".repeat(depth),
            "</div>".repeat(depth)
        );
        assert_eq!(normalize(&html_to_text(&html)), "deep text");
    }

    #[test]
    fn deep_nesting_keeps_all_text() {
        let html = "<div><p>x</p>".repeat(3 * MAX_NESTING);
        let text = normalize(&html_to_text(&html));
        assert_eq!(text.lines().count(), 3 * MAX_NESTING);
        assert!(text.lines().all(|l| l == "x"));
    }

    #[test]
    fn nesting_cuts_cases() {
        assert!(nesting_cuts("<div><p>a</p></div>").is_empty());
        let ok = "<div>".repeat(MAX_NESTING) + &"</div>".repeat(MAX_NESTING);
        assert!(nesting_cuts(&ok).is_empty());
        let flat = "<div>x</div>".repeat(10 * MAX_NESTING);
        assert!(nesting_cuts(&flat).is_empty());
        let voids = "<br><img src=a><p>x".repeat(10 * MAX_NESTING);
        assert!(nesting_cuts(&voids).is_empty());
        let script = format!("<script>{}</script>", "<div>".repeat(2 * MAX_NESTING));
        assert!(nesting_cuts(&script).is_empty());
        let deep = "<div>".repeat(2 * MAX_NESTING + 1);
        assert_eq!(nesting_cuts(&deep).len(), 2);
        for junk in [
            "<", "<!", "<!--", "</", "<a", "<script", "<div/", "<>", "<é",
        ] {
            let _ = nesting_cuts(junk);
        }
    }

    #[test]
    fn normalize_cases() {
        let cases: &[(&str, &str, &str)] = &[
            ("ligature", "\u{FB01}ne", "fine"),
            (
                "full-width",
                "\u{FF21}\u{FF22} \u{FF11}\u{FF12}\u{FF13}",
                "AB 123",
            ),
            (
                "double quotes",
                "\u{201C}a\u{201D} \u{201E}b\u{201F} \u{00AB}c\u{00BB} 5\u{2033}",
                "\"a\" \"b\" \"c\" 5\"",
            ),
            (
                "single quotes",
                "\u{2018}a\u{2019} \u{201A}b\u{201B} 5\u{2032} \u{02BC}",
                "'a' 'b' 5' '",
            ),
            (
                "dashes",
                "a\u{2010}b\u{2011}c\u{2012}d\u{2013}e\u{2014}f\u{2015}g\u{2212}h",
                "a-b-c-d-e-f-g-h",
            ),
            (
                "invisible",
                "in\u{00AD}vis\u{200B}i\u{200C}b\u{200D}l\u{2060}e\u{FEFF}",
                "invisible",
            ),
            ("controls", "a\u{0000}b\u{0007}c\u{007F}d\u{009F}e", "abcde"),
            ("tab", "a\tb", "a b"),
            ("crlf", "a\r\nb\rc", "a\nb\nc"),
            ("nbsp and runs", "a\u{00A0}\u{00A0} \u{3000}b   c", "a b c"),
            ("trim lines", "  a  \n\t b \t", "a\nb"),
            ("blank lines", "\n\na\n\n \n\t\nb\n\n", "a\nb"),
            (
                "unicode line separators",
                "a\u{2028}b\u{2029}c\u{0085}d",
                "a\nb\nc\nd",
            ),
            (
                "combining across ascii",
                "Cafe\u{0301} ok, nai\u{0308}ve",
                "Café ok, naïve",
            ),
            ("cyrillic untouched", "Київ і Москва", "Київ і Москва"),
            ("greek", "Κεντρική Σελίδα", "Κεντρική Σελίδα"),
            ("empty", "", ""),
            ("only whitespace", " \n\t\r\n ", ""),
        ];
        for (name, input, want) in cases {
            assert_eq!(normalize(input), *want, "case {name}");
        }
    }

    #[test]
    fn normalize_is_idempotent() {
        let input = "  \u{201C}Ｑuote\u{201D}\u{2014}\u{FB01}x\r\n\r\n\u{00AD}y\t z ";
        let once = normalize(input);
        assert_eq!(normalize(&once), once);
    }

    #[test]
    fn split_and_title() {
        let text = "First headline\nFirst body.\n=====\n======\nSecond headline\n\nSecond body one.\nSecond body two.\n=====\n";
        assert_eq!(
            cleaner().clean_document(text, false),
            vec![
                article("First headline", "First body."),
                article("Second headline", "Second body one.\nSecond body two."),
            ]
        );
    }

    #[test]
    fn separator_matched_on_trimmed_line() {
        let text = "One\nbody a\n   =======   \nTwo\nbody b";
        let got = cleaner().clean_document(text, false);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].title, "Two");
    }

    #[test]
    fn html_document_is_split_too() {
        let html = "<h1>Alpha</h1><p>Alpha text.</p><p>=====</p><h2>Beta</h2><p>Beta text.</p>";
        assert_eq!(
            cleaner().clean_document(html, true),
            vec![
                article("Alpha", "Alpha text."),
                article("Beta", "Beta text.")
            ]
        );
    }

    #[test]
    fn long_lede_gives_derived_title() {
        let lede = "The city council voted late on Tuesday to close the old river bridge for repairs, \
                    after engineers warned that cracks in two of its piers had widened over the winter \
                    and that heavy lorries should be kept off it until the work is finished next year.";
        assert!(lede.chars().count() > MAX_HEADLINE_CHARS);
        let text = format!("{lede}\nA second paragraph.");
        let got = cleaner().clean_document(&text, false);
        assert_eq!(got.len(), 1);
        let title = &got[0].title;
        assert!(title.ends_with('…'), "{title}");
        assert!(title.chars().count() <= DERIVED_TITLE_CHARS, "{title}");
        let stem = title.trim_end_matches('…');
        assert!(lede.starts_with(stem));
        // Cut at a word boundary: no word of the lede is split.
        assert!(
            !lede[stem.len()..].starts_with(char::is_alphanumeric),
            "{title}"
        );
        assert_eq!(got[0].body, format!("{lede}\nA second paragraph."));
    }

    #[test]
    fn title_from_lede_without_spaces() {
        let lede = "字".repeat(300);
        let title = title_from_lede(&lede);
        assert_eq!(title.chars().count(), DERIVED_TITLE_CHARS);
        assert!(title.ends_with('…'));
    }

    #[test]
    fn menus() {
        let cases: &[(&str, &str, Option<Article>)] = &[
            (
                "bulleted menu after story",
                "Bridge reopens after repairs\nTraffic is flowing again.\n- Home\n- World news\n- Sport\n- Κεντρική Σελίδα\n- Ταξίδια",
                Some(article("Bridge reopens after repairs", "Traffic is flowing again.")),
            ),
            ("menu-only segment", "- Opinion\n- Food & Drink\n- Πολιτική\n- Weather", None),
            (
                "plain menu lines",
                "Home\nPolitics\nCulture\nFarmers protest in the capital\nThey blocked three roads.",
                Some(article("Farmers protest in the capital", "They blocked three roads.")),
            ),
            (
                "pipe menu",
                "Home | World | Sport | Business\nPort strike ends\nDockers return on Monday.",
                Some(article("Port strike ends", "Dockers return on Monday.")),
            ),
            (
                "breadcrumb",
                "News · Europe · Baltic\nFerry delayed by ice\nThe crossing took nine hours.",
                Some(article("Ferry delayed by ice", "The crossing took nine hours.")),
            ),
            (
                "headline and dateline kept",
                "Kyiv metro extended\n12 March 2025\nTwo new stations opened.",
                Some(article("Kyiv metro extended", "12 March 2025\nTwo new stations opened.")),
            ),
            (
                "headline, byline, dateline kept",
                "Snow closes schools\nBy Ann Example\nMarch 3, 2025\nClasses resume on Thursday.",
                Some(article("Snow closes schools", "By Ann Example\nMarch 3, 2025\nClasses resume on Thursday.")),
            ),
            (
                "sentence cut by line breaks kept",
                "Talks go on\nThe envoy welcomed\nthe offer\nbut said\nmore work is needed.",
                Some(article("Talks go on", "The envoy welcomed\nthe offer\nbut said\nmore work is needed.")),
            ),
            (
                "two short lines kept",
                "Markets rally\nShares up\nThe index rose by two percent.",
                Some(article("Markets rally", "Shares up\nThe index rose by two percent.")),
            ),
            (
                "short sentences are not links",
                "Quiz night\nWho won?\nNobody knows.\nTry again!\nSee you.",
                Some(article("Quiz night", "Who won?\nNobody knows.\nTry again!\nSee you.")),
            ),
            (
                "two-item pipe line kept",
                "Live | Flood warning in the north\nRivers are rising.",
                Some(article("Live | Flood warning in the north", "Rivers are rising.")),
            ),
        ];
        for (name, text, want) in cases {
            let got = cleaner().clean_document(text, false);
            assert_eq!(got.into_iter().next(), *want, "case {name}");
        }
    }

    #[test]
    fn trailing_menu_after_separators_gives_no_article() {
        let mut text = String::from(
            "Dam inspection finished\n\nInspectors found no new damage.\n=====\n=====\n",
        );
        for item in [
            "Opinion",
            "Health",
            "Ψυχαγωγία",
            "Film/Movie",
            "Tips & Tricks",
            "Κεντρική Σελίδα",
        ] {
            text.push_str("- ");
            text.push_str(item);
            text.push('\n');
        }
        assert_eq!(
            cleaner().clean_document(&text, false),
            vec![article(
                "Dam inspection finished",
                "Inspectors found no new damage."
            )]
        );
    }

    #[test]
    fn captions() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "agency credit",
                "Harbour fire put out\nSmoke over the docks. (AP Photo/Jane Doe)\nFirefighters worked all night.",
                "Firefighters worked all night.",
            ),
            (
                "photo label",
                "Harbour fire put out\nPHOTO: city fire service\nFirefighters worked all night.",
                "Firefighters worked all night.",
            ),
            (
                "russian label",
                "Пожар потушен\nФото: пресс-служба МЧС\nПожарные работали всю ночь.",
                "Пожарные работали всю ночь.",
            ),
            (
                "russian opening",
                "Пожар потушен\nФото Ивана Примерова\nПожарные работали всю ночь.",
                "Пожарные работали всю ночь.",
            ),
            (
                "file photo",
                "Harbour fire put out\nFILE \u{2014} A crane at the port in 2019.\nFirefighters worked all night.",
                "Firefighters worked all night.",
            ),
            (
                "getty",
                "Harbour fire put out\nA tug near the pier. John Roe/Getty Images\nFirefighters worked all night.",
                "Firefighters worked all night.",
            ),
            (
                "dated caption after title",
                "Harbour fire put out\nIn a handout released by the Port Authority on Sunday, April 6, 2025, a tug sprays water.\nFirefighters worked all night.",
                "Firefighters worked all night.",
            ),
            (
                "press service dated caption",
                "Harbour fire put out\nCity Fire Service Press Service on Sunday, April 6, 2025, crews stand by the pier.\nFirefighters worked all night.",
                "Firefighters worked all night.",
            ),
            (
                "caption via an agency",
                "Harbour fire put out\nCity Hall Press Office via AP on Monday, May 5, 2025, a fireboat at work.\nFirefighters worked all night.",
                "Firefighters worked all night.",
            ),
            (
                "sentence with date kept",
                "Harbour fire put out\nThe fire started on Sunday, April 6, 2025, in a warehouse.\nFirefighters worked all night.",
                "The fire started on Sunday, April 6, 2025, in a warehouse.\nFirefighters worked all night.",
            ),
            (
                "sentence with weekday kept",
                "Harbour fire put out\nOfficials said on Friday that a photo of the damage would be released.\nFirefighters worked all night.",
                "Officials said on Friday that a photo of the damage would be released.\nFirefighters worked all night.",
            ),
            (
                "dated photo sentence further down kept",
                "Harbour fire put out\nOne.\nTwo.\nThe agency released a photo on Sunday, April 6, 2025, of the pier.",
                "One.\nTwo.\nThe agency released a photo on Sunday, April 6, 2025, of the pier.",
            ),
        ];
        for (name, text, want_body) in cases {
            let got = cleaner().clean_document(text, false);
            assert_eq!(got.len(), 1, "case {name}");
            assert_eq!(got[0].body, *want_body, "case {name}");
        }
    }

    #[test]
    fn drop_lines_applied() {
        let got = cleaner().clean_document("Title here\nADVERTISEMENT\nBody text.", false);
        assert_eq!(got, vec![article("Title here", "Body text.")]);
    }

    #[test]
    fn empty_inputs_give_no_article() {
        for (text, is_html) in [
            ("", false),
            ("", true),
            ("   \n\n\t", false),
            ("=====\n=====", false),
            ("<script>x()</script><nav>Home</nav>", true),
            ("ADVERTISEMENT", false),
        ] {
            assert_eq!(
                cleaner().clean_document(text, is_html),
                vec![],
                "input {text:?}"
            );
        }
    }

    #[test]
    fn clean_item_cases() {
        let c = cleaner();
        assert_eq!(
            c.clean_item(
                "Rock &amp; roll <b>returns</b>",
                "<p>Body one.</p><p>Body two.</p>"
            ),
            article("Rock & roll returns", "Body one.\nBody two.")
        );
        assert_eq!(
            c.clean_item("AT&T buys X", "Text."),
            article("AT&T buys X", "Text.")
        );
        assert_eq!(
            c.clean_item("Plain", "Para one.\n\nPara two &amp; three.\r\n"),
            article("Plain", "Para one.\nPara two & three.")
        );
        assert_eq!(
            c.clean_item(" \u{201C}Quoted\u{201D} \u{2014} title ", "<p>Text.</p>"),
            article("\"Quoted\" - title", "Text.")
        );
        // The body is not split, and its rules still apply.
        assert_eq!(
            c.clean_item(
                "Title",
                "<p>Press Office photo on Monday, May 5, 2025, shows the site.</p><p>One.</p><p>=====</p><p>Two.</p><p>ADVERTISEMENT</p><ul><li>Home</li><li>News</li><li>Sport</li></ul>"
            ),
            article("Title", "One.\n=====\nTwo.")
        );
        // Empty title: from the body.
        assert_eq!(
            c.clean_item("", "<h2>Short head</h2><p>Text.</p>"),
            article("Short head", "Text.")
        );
        let lede = "word ".repeat(60);
        let got = c.clean_item("  ", &format!("<p>{lede}</p>"));
        assert!(got.title.ends_with('…'));
        assert_eq!(got.body, lede.trim());
        assert_eq!(c.clean_item("", ""), Article::default());
    }

    #[test]
    fn never_panics_on_junk() {
        let c = cleaner();
        let junk: Vec<String> = vec![
            (0u8..=255).map(char::from).collect(),
            "<<<>>></ / <! <? <!-- <![CDATA[ x ]]> &#0; &#xD800; &#1114112; &bogus;".to_string(),
            "\u{FFFF}\u{10FFFF}\u{E000}\u{0301}\u{0301}a\u{FDFA}".repeat(50),
            "<table><td><table><td><select><option><svg><math><p>x".repeat(50),
            "=".repeat(10_000),
            "- a\n".repeat(1000),
            "|".repeat(500),
        ];
        for text in &junk {
            let _ = c.clean_document(text, true);
            let _ = c.clean_document(text, false);
            let _ = c.clean_item(text, text);
        }
    }

    #[test]
    fn a_huge_feed_title_is_cut_at_a_word_on_a_character_boundary() {
        let cleaner = cleaner();
        let huge = "переговоры о перемирии ".repeat(300_000);
        let article = cleaner.clean_item(&huge, "<p>Body.</p>");
        let chars = article.title.chars().count();
        assert!(chars <= MAX_TITLE_CHARS, "{chars} characters");
        assert!(chars > MAX_TITLE_CHARS / 2, "{chars} characters");
        assert!(article.title.ends_with("…"));
        // Cut between words: what is kept is a prefix that a space followed.
        let kept = article.title.trim_end_matches('…');
        assert!(huge.starts_with(kept));
        assert!(huge[kept.len()..].starts_with(' '), "{kept:?}");
        let cjk = "東京で停戦交渉".repeat(1_000);
        let title = cleaner.clean_item(&cjk, "").title;
        assert!(title.chars().count() <= MAX_TITLE_CHARS);
        assert!(title.starts_with("東京で停戦交渉東京"));
        let short = cleaner.clean_item("Talks resume in Istanbul", "").title;
        assert_eq!(short, "Talks resume in Istanbul");
    }
}
