//! The cleaner's HTML to text as it was before the streaming pass: html5ever's tree
//! built by `scraper`, then walked. Kept here as the baseline of `benches/clean.rs`
//! and for comparing the two outputs on the test fixtures.
#![allow(dead_code)]

use std::borrow::Cow;

use scraper::{ElementRef, Html, Node};

// ---------------------------------------------------------------------------
// Rule 1: HTML to text.

/// Elements whose whole subtree is not article text. Site chrome (`nav`,
/// `footer`, `aside`, form controls), code and styling, embedded documents,
/// and media whose children are only "your browser does not support ..."
/// fallbacks. `figcaption` is a photo caption, which rule 6 would drop anyway.
/// (`header` and `form` are skipped too, with exceptions: see
/// [`WalkState::open`] and [`holds_main_content`].)
pub const SKIPPED_ELEMENTS: &[&str] = &[
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
pub const SKIPPED_ROLES: &[&str] = &[
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
pub const BLOCK_ELEMENTS: &[&str] = &[
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
pub const SECTIONING_ELEMENTS: &[&str] = &["article", "main", "section"];

/// Elements that only the page's main content has; a `form` holding one of
/// them wraps the page (see [`holds_main_content`]).
pub const MAIN_CONTENT_ELEMENTS: &[&str] = &["article", "main", "h1"];

/// Depth beyond which the document is parsed in pieces (see [`nesting_cuts`]).
/// Blink caps its DOM depth at the same value.
pub const MAX_NESTING: usize = 512;

/// How many times an unclosed `<title>` is re-parsed (see [`html_to_text`]).
/// One is what real pages need; the bound keeps `<title><title><title>...`
/// from costing a parse per tag.
pub const MAX_TITLE_REPARSES: usize = 2;

/// The text of an HTML document or fragment: one line per block element,
/// character references decoded, non-article elements skipped. The result is
/// not normalised yet (see `normalize`).
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
pub fn extract_text(html: &Html, title_unclosed: bool, out: &mut TextWriter) -> Option<String> {
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
pub fn holds_main_content(form: ElementRef) -> bool {
    form.descendants().any(|node| {
        matches!(node.value(), Node::Element(e) if MAIN_CONTENT_ELEMENTS.contains(&e.name()))
    })
}

/// Whether all the words of a list are link text: a menu, a "related
/// stories" list or a tag cloud, never article prose. Structure tells this
/// better than the line shapes of rule 5 can: a two-item menu above the
/// headline would otherwise become the title. Separators (`|`, `·`) are not
/// words, so they do not count.
pub fn is_link_list(list: ElementRef) -> bool {
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
pub fn holds_headline(header: ElementRef) -> bool {
    header
        .descendants()
        .any(|node| matches!(node.value(), Node::Element(e) if e.name() == "h1"))
}

/// What the walk needs to know about the ancestors of the current node.
#[derive(Default)]
pub struct WalkState {
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
    pub fn open(&mut self, node: &Node, skipped_by_content: bool, out: &mut TextWriter) -> bool {
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
    pub fn close(&mut self, node: &Node, out: &mut TextWriter) {
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
pub struct TextWriter {
    text: String,
}

impl TextWriter {
    pub fn into_text(self) -> String {
        self.text
    }

    pub fn newline(&mut self) {
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
pub const RAW_TEXT_ELEMENTS: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
];

/// Start tags that do not deepen the tree in practice: void elements, and
/// elements that a new sibling closes implicitly (`<p>`, `<li>`, `<a>`, ...).
pub const NON_NESTING_ELEMENTS: &[&str] = &[
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
pub fn nesting_cuts(html: &str) -> Vec<usize> {
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

pub fn find_byte(bytes: &[u8], from: usize, needle: u8) -> Option<usize> {
    let found = bytes.get(from..)?.iter().position(|&b| b == needle)?;
    Some(from + found)
}

pub fn find_seq(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let found = bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)?;
    Some(from + found)
}

/// Position of the `<` of `</name` (ASCII case-insensitive) at or after `from`.
pub fn find_end_tag(bytes: &[u8], from: usize, name: &[u8]) -> Option<usize> {
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
