//! Rule 1 of cleaning: HTML to text, in one streaming pass over html5ever's
//! tokenizer, skipping what is not article text (see the rules in `super`). The
//! tree helpers at the end serve the article extractor (`extract.rs`), which
//! needs html5ever's whole tree.

use std::borrow::Cow;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
    TokenizerResult,
};
use html5ever::LocalName;

// ---------------------------------------------------------------------------
// Rule 1: HTML to text.

/// Elements whose whole subtree is not article text. Site chrome (`nav`,
/// `footer`, `aside`, form controls), code and styling, embedded documents,
/// and media whose children are only "your browser does not support ..."
/// fallbacks. `figcaption` is a photo caption, which rule 6 would drop anyway.
/// (`header` and `form` are skipped too, with exceptions: see [`Pending`].)
pub(super) const SKIPPED_ELEMENTS: &[&str] = &[
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
pub(super) const SKIPPED_ROLES: &[&str] = &[
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
pub(super) const BLOCK_ELEMENTS: &[&str] = &[
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
pub(super) const SECTIONING_ELEMENTS: &[&str] = &["article", "main", "section"];

/// Elements that only the page's main content has; a `form` holding one of
/// them wraps the page (see [`holds_main_content`]).
// Read through `flags` (its MAIN_CONTENT bit); the list is what a test checks them against.
#[cfg_attr(not(test), allow(dead_code))]
pub(super) const MAIN_CONTENT_ELEMENTS: &[&str] = &["article", "main", "h1"];

/// How far down the stack of open elements an end tag or an implied end tag
/// looks for its element; the article extractor's tree is parsed in pieces
/// beyond this depth (see [`nesting_cuts`]). Blink caps its DOM depth at the
/// same value.
pub(super) const MAX_NESTING: usize = 512;

/// How many times an unclosed `<title>` is read again (see [`html_to_text`]).
/// One is what real pages need; the bound keeps `<title><title><title>...`
/// from costing a parse per tag.
pub(super) const MAX_TITLE_REPARSES: usize = 2;

/// The text of an HTML document or fragment: one line per block element,
/// character references decoded, non-article elements skipped. The result is
/// not normalised yet (see [`super::normalize`]).
///
/// One streaming pass over html5ever's tokenizer, without its tree builder
/// (see [`Stream`]): no tree is built, so nesting depth costs neither stack nor
/// quadratic time, and memory is the output plus the stack of open elements.
///
/// One repair on top of the tokenizer: `<title>` content is raw text up to
/// `</title>`, so a page whose title is never closed (tag soup) reads as one
/// huge title holding the whole page as literal markup.
/// When the source has no `</title` at all, the title's text is read again
/// as the rest of the page instead of being skipped.
pub fn html_to_text(html: &str) -> String {
    let mut out = TextWriter::default();
    let mut source = Cow::Borrowed(html);
    for round in 0..=MAX_TITLE_REPARSES {
        let swallowed = stream_text(&source, round < MAX_TITLE_REPARSES, &mut out);
        out.newline();
        match swallowed {
            Some(rest) => source = Cow::Owned(rest),
            None => break,
        }
    }
    out.text
}

/// Writes the text of `html` to `out`; returns the text of the first `title`
/// when `may_reparse` and the source has no `</title` (see [`html_to_text`]).
fn stream_text(html: &str, may_reparse: bool, out: &mut TextWriter) -> Option<String> {
    let stream = Stream {
        source: html,
        may_reparse,
        out: std::mem::take(out),
        ..Stream::default()
    };
    let mut tokenizer = Tokenizer::new(stream, TokenizerOpts::default());
    let mut input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    while let TokenizerResult::Script(()) = tokenizer.feed(&mut input) {}
    tokenizer.end();
    let stream = tokenizer.sink;
    *out = stream.out;
    stream.title.filter(|_| stream.title_unclosed == Some(true))
}

// What the stream knows about an element name, one bit each (see [`flags`]).
/// In [`SKIPPED_ELEMENTS`].
const SKIP: u32 = 1;
/// In [`BLOCK_ELEMENTS`].
const BLOCK: u32 = 1 << 1;
/// In [`SECTIONING_ELEMENTS`].
const SECTIONING: u32 = 1 << 2;
/// Its line breaks are content.
const PRE: u32 = 1 << 3;
/// Has no end tag and no content.
const VOID: u32 = 1 << 4;
/// The HTML spec's "special" category: a stray inline end tag, or the
/// search for an open `li`, stops at one of these.
const SPECIAL: u32 = 1 << 5;
/// Bounds the spec's "has an element in scope".
const SCOPE: u32 = 1 << 6;
/// The spec's formatting elements (`b`, `a`, ...): their end tags close
/// them even across blocks, as the adoption agency does.
const FORMATTING: u32 = 1 << 7;
/// A start tag that closes an open `p`.
const CLOSES_P: u32 = 1 << 8;
/// `h1` to `h6`.
const HEADING: u32 = 1 << 9;
/// May sit in `head` without ending it.
const HEAD_CONTENT: u32 = 1 << 10;
/// In [`MAIN_CONTENT_ELEMENTS`].
const MAIN_CONTENT: u32 = 1 << 11;
/// `ul`, `ol`, `menu`: skipped when all their words are links.
const LIST: u32 = 1 << 12;

/// Elements whose open count the stream keeps, so that the common case
/// (none open) costs no search of the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tracked {
    P,
    Li,
    DdDt,
    A,
    Form,
    Cell,
    Tr,
    Head,
    Option,
    Select,
    Button,
    Foreign,
}

/// Number of [`Tracked`] variants.
const TRACKED: usize = 12;

/// Everything the stream needs to know about a tag name, in one match.
fn flags(name: &str) -> (u32, Option<Tracked>) {
    const B: u32 = BLOCK | SPECIAL | CLOSES_P;
    match name {
        "a" => (FORMATTING, Some(Tracked::A)),
        "b" | "big" | "code" | "em" | "font" | "i" | "nobr" | "s" | "small" | "strike"
        | "strong" | "tt" | "u" => (FORMATTING, None),
        "p" => (B, Some(Tracked::P)),
        "div" | "blockquote" | "center" | "details" | "dialog" | "dir" | "dl" | "fieldset"
        | "figure" | "hgroup" | "search" | "summary" | "address" => (B, None),
        "ul" | "ol" | "menu" => (B | LIST, None),
        "li" => (B, Some(Tracked::Li)),
        "dd" | "dt" => (B, Some(Tracked::DdDt)),
        "article" => (B | SECTIONING | MAIN_CONTENT, None),
        "section" => (B | SECTIONING, None),
        "main" => (B | SECTIONING | MAIN_CONTENT, None),
        "h1" => (B | HEADING | MAIN_CONTENT, None),
        "h2" | "h3" | "h4" | "h5" | "h6" => (B | HEADING, None),
        "header" => (B, None),
        "nav" | "footer" | "aside" => (B | SKIP, None),
        "figcaption" => (SPECIAL | CLOSES_P | SKIP, None),
        "form" => (B, Some(Tracked::Form)),
        "pre" | "listing" => (B | PRE, None),
        "xmp" | "plaintext" => (B | PRE, None),
        "table" => (B | SCOPE, None),
        "caption" => (BLOCK | SPECIAL | SCOPE, None),
        "tbody" | "tfoot" | "thead" => (BLOCK | SPECIAL, None),
        "legend" => (BLOCK, None),
        "tr" => (BLOCK | SPECIAL, Some(Tracked::Tr)),
        "td" | "th" => (SPECIAL | SCOPE, Some(Tracked::Cell)),
        "html" => (BLOCK | SPECIAL | SCOPE, None),
        "body" => (BLOCK | SPECIAL, None),
        "head" => (SPECIAL | SKIP, Some(Tracked::Head)),
        "title" | "style" | "script" | "noscript" | "template" => {
            let scope = if name == "template" { SCOPE } else { 0 };
            (SPECIAL | SKIP | HEAD_CONTENT | scope, None)
        }
        "noframes" => (SPECIAL | HEAD_CONTENT, None),
        "base" | "basefont" | "bgsound" | "link" | "meta" => (SPECIAL | VOID | HEAD_CONTENT, None),
        "hr" => (B | VOID, None),
        "br" | "area" | "embed" | "img" | "input" | "keygen" | "wbr" | "param" | "source"
        | "track" | "col" | "frame" => (SPECIAL | VOID, None),
        "image" => (VOID, None),
        "button" => (SPECIAL | SKIP | SCOPE, Some(Tracked::Button)),
        "select" => (SPECIAL | SKIP, Some(Tracked::Select)),
        "option" => (SKIP, Some(Tracked::Option)),
        "textarea" | "iframe" => (SPECIAL | SKIP, None),
        "object" | "applet" | "marquee" => {
            let skip = if name == "object" { SKIP } else { 0 };
            (SPECIAL | SCOPE | skip, None)
        }
        "svg" => (SKIP, Some(Tracked::Foreign)),
        "math" => (0, Some(Tracked::Foreign)),
        "video" | "audio" | "canvas" => (SKIP, None),
        "colgroup" | "frameset" | "noembed" => (SPECIAL, None),
        _ => (0, None),
    }
}

/// HTML tags that end SVG or MathML content (the spec's list for foreign content).
fn breaks_out(name: &str) -> bool {
    matches!(
        name,
        "b" | "big"
            | "blockquote"
            | "body"
            | "br"
            | "center"
            | "code"
            | "dd"
            | "div"
            | "dl"
            | "dt"
            | "em"
            | "embed"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "head"
            | "hr"
            | "i"
            | "img"
            | "li"
            | "listing"
            | "menu"
            | "meta"
            | "nobr"
            | "ol"
            | "p"
            | "pre"
            | "ruby"
            | "s"
            | "small"
            | "span"
            | "strong"
            | "strike"
            | "sub"
            | "sup"
            | "table"
            | "tt"
            | "u"
            | "ul"
            | "var"
    )
}

/// The tokenizer state that the tree builder would pick after a start tag.
fn raw_kind(name: &str) -> Option<TokenSinkResult<()>> {
    Some(match name {
        "script" => TokenSinkResult::RawData(RawKind::ScriptData),
        "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
            TokenSinkResult::RawData(RawKind::Rawtext)
        }
        "title" | "textarea" => TokenSinkResult::RawData(RawKind::Rcdata),
        "plaintext" => TokenSinkResult::Plaintext,
        _ => return None,
    })
}

/// An element on the stream's stack of open elements.
struct Open {
    name: LocalName,
    /// An SVG or MathML element whose content is not HTML.
    foreign: bool,
    flags: u32,
    tracked: Option<Tracked>,
    /// Whether it was opened with output on (no skipped ancestor), so its end
    /// writes its line break (or space) and undoes its counters.
    visible: bool,
    /// Whether it starts a skipped subtree.
    skipped: bool,
    /// A decision that needs the whole subtree (see [`Pending`]).
    pending: Option<Pending>,
}

/// Elements skipped or kept by what their subtree holds. Their output is
/// written as usual and cut off again at their end (`mark` is where it
/// started) when the subtree turns out not to be article text. The counters
/// are running totals; the subtree's share is the difference at the end.
#[derive(Clone, Copy)]
enum Pending {
    /// A `form` is skipped unless it wraps the page's main content (an
    /// `article`, `main` or `h1`): ASP.NET WebForms pages wrap everything in one.
    Form { mark: usize, main_content: usize },
    /// A `header` outside sectioning elements is the site banner and skipped,
    /// unless it holds the headline (an `h1`).
    Header { mark: usize, h1: usize },
    /// A list whose every letter is link text is a menu, a "related stories"
    /// list or a tag cloud, never article prose: a two-item menu above the
    /// headline would otherwise become the title. Separators (`|`, `·`) are
    /// not letters, so they do not count.
    List {
        mark: usize,
        letters: usize,
        linked: usize,
    },
}

/// The streaming cleaner: a token sink that keeps the stack of open elements
/// with the tree builder's implied end tags (`<p>` closes an open `p`, `<li>`
/// an open `li`, ...), the raw-text switches (`script`, `style`, `title`,
/// ...) and a bounded scope search, which is all the structure the cleaning
/// rules use. Text is written as it comes unless a skipped element is open.
#[derive(Default)]
struct Stream<'a> {
    source: &'a str,
    may_reparse: bool,
    out: TextWriter,
    stack: Vec<Open>,
    open: [usize; TRACKED],
    /// Open skipped subtrees: output is on only when zero.
    skipped: usize,
    /// Open visible `pre`-like elements.
    pre: usize,
    /// Open visible sectioning elements (see [`SECTIONING_ELEMENTS`]).
    sectioning: usize,
    /// Open lists waiting for their decision; letters are counted only then.
    lists: usize,
    /// Running totals for the [`Pending`] decisions.
    letters: usize,
    linked: usize,
    h1: usize,
    main_content: usize,
    /// Whether body content has started (a later `<head>` is ignored).
    in_body: bool,
    /// A newline right after `<pre>` or `<listing>` is not content.
    skip_newline: bool,
    /// `Some(true)` when the source has no `</title` (looked up at the first
    /// `title`), then the first title's text, captured while it is open.
    title_unclosed: Option<bool>,
    title: Option<String>,
    title_at: Option<usize>,
}

impl TokenSink for Stream<'_> {
    type Handle = ();

    fn process_token(&mut self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let skip_newline = std::mem::take(&mut self.skip_newline);
        match token {
            Token::CharacterTokens(text) => {
                let text = if skip_newline {
                    text.strip_prefix('\n').unwrap_or(&text)
                } else {
                    &text
                };
                self.text(text);
            }
            Token::TagToken(tag) => match tag.kind {
                TagKind::StartTag => return self.start(tag),
                TagKind::EndTag => self.end(tag.name),
            },
            Token::EOFToken => self.pop_to(0),
            Token::NullCharacterToken
            | Token::CommentToken(_)
            | Token::DoctypeToken(_)
            | Token::ParseError(_) => {}
        }
        TokenSinkResult::Continue
    }
}

impl Stream<'_> {
    fn text(&mut self, text: &str) {
        if self.title_at.is_some() {
            if let Some(title) = &mut self.title {
                title.push_str(text);
            }
        }
        if self.lists > 0 {
            let letters = text.chars().filter(|c| c.is_alphanumeric()).count();
            self.letters += letters;
            if self.open[Tracked::A as usize] > 0 {
                self.linked += letters;
            }
        }
        if !self.in_body && !text.trim_ascii().is_empty() {
            // Text in `head` (not in its `title` or `style`) ends it, as the
            // tree builder does.
            if self.top_is(Tracked::Head) {
                self.pop_to(self.stack.len() - 1);
                self.in_body = true;
            } else if self.open[Tracked::Head as usize] == 0 {
                self.in_body = true;
            }
        }
        if self.skipped == 0 {
            self.out.text(text, self.pre > 0);
        }
    }

    fn start(&mut self, tag: Tag) -> TokenSinkResult<()> {
        let name = tag.name;
        let (flags, tracked) = flags(&name);
        if self.top_is(Tracked::Head) && flags & HEAD_CONTENT == 0 && &*name != "html" {
            self.pop_to(self.stack.len() - 1);
            self.in_body = true;
        }
        match &*name {
            "head" if !self.in_body && self.open[Tracked::Head as usize] == 0 => {}
            // `html` and `body` are implied; more of them only add attributes.
            "head" | "html" | "body" => {
                self.in_body |= &*name == "body";
                if self.skipped == 0 {
                    self.out.newline();
                }
                return TokenSinkResult::Continue;
            }
            // The tree builder ignores a form inside a form.
            "form" if self.open[Tracked::Form as usize] > 0 => {
                return TokenSinkResult::Continue;
            }
            _ => self.in_body |= flags & HEAD_CONTENT == 0,
        }
        if self.stack.last().is_some_and(|o| o.foreign) && breaks_out(&name) {
            // An HTML tag in SVG or MathML content ends that content.
            while self.open[Tracked::Foreign as usize] > 0 {
                self.pop_to(self.stack.len() - 1);
            }
        }
        self.close_implied(&name, flags);
        let foreign = self.open[Tracked::Foreign as usize] > 0 || tracked == Some(Tracked::Foreign);
        let raw = if foreign { None } else { raw_kind(&name) };
        let void = flags & VOID != 0 || (foreign && tag.self_closing);

        let visible = self.skipped == 0;
        let skipped = visible
            && (flags & SKIP != 0
                || tag.attrs.iter().any(|attr| match &*attr.name.local {
                    "hidden" => true,
                    "aria-hidden" => attr.value.eq_ignore_ascii_case("true"),
                    "role" => SKIPPED_ROLES
                        .iter()
                        .any(|role| attr.value.trim().eq_ignore_ascii_case(role)),
                    _ => false,
                }));
        let mut pending = None;
        if visible && !skipped {
            let mark = self.out.text.len();
            pending = match &*name {
                "form" => Some(Pending::Form {
                    mark,
                    main_content: self.main_content,
                }),
                "header" if self.sectioning == 0 => Some(Pending::Header { mark, h1: self.h1 }),
                _ if flags & LIST != 0 => {
                    self.lists += 1;
                    Some(Pending::List {
                        mark,
                        letters: self.letters,
                        linked: self.linked,
                    })
                }
                _ => None,
            };
            match &*name {
                "br" => self.out.newline(),
                "td" | "th" => self.out.space(),
                _ => {}
            }
            if flags & PRE != 0 {
                self.pre += 1;
                self.skip_newline = matches!(&*name, "pre" | "listing");
            }
            if flags & SECTIONING != 0 {
                self.sectioning += 1;
            }
            if flags & BLOCK != 0 {
                self.out.newline();
            }
        }
        if &*name == "h1" {
            self.h1 += 1;
        }
        if flags & MAIN_CONTENT != 0 {
            self.main_content += 1;
        }
        if &*name == "title" && self.may_reparse && self.title.is_none() {
            let source = self.source.as_bytes();
            let unclosed = *self
                .title_unclosed
                .get_or_insert_with(|| find_end_tag(source, 0, b"title").is_none());
            if unclosed {
                self.title = Some(String::new());
                self.title_at = Some(self.stack.len());
            }
        }
        let open = Open {
            // Inside `foreignObject` and the like, content is HTML again.
            foreign: foreign
                && !matches!(
                    &*name,
                    "foreignobject" | "desc" | "title" | "annotation-xml"
                ),
            name,
            flags,
            tracked,
            visible,
            skipped,
            pending,
        };
        if void {
            self.close(open);
        } else {
            if skipped {
                self.skipped += 1;
            }
            if let Some(tracked) = tracked {
                self.open[tracked as usize] += 1;
            }
            self.stack.push(open);
        }
        raw.unwrap_or(TokenSinkResult::Continue)
    }

    /// The end tags that the tree builder implies before a start tag.
    fn close_implied(&mut self, name: &str, flags: u32) {
        if flags & CLOSES_P != 0 && self.open[Tracked::P as usize] > 0 {
            self.close_in_scope(|o| o.tracked == Some(Tracked::P), SCOPE, Tracked::Button);
        }
        let counts = self.open;
        let open = |t: Tracked| counts[t as usize] > 0;
        match name {
            "li" if open(Tracked::Li) => {
                self.close_before_special(|o| o.tracked == Some(Tracked::Li));
            }
            "dd" | "dt" if open(Tracked::DdDt) => {
                self.close_before_special(|o| o.tracked == Some(Tracked::DdDt));
            }
            "a" if open(Tracked::A) => {
                self.close_in_scope(|o| o.tracked == Some(Tracked::A), SCOPE, Tracked::A);
            }
            "td" | "th" | "tr" if open(Tracked::Cell) => {
                self.close_in_scope(|o| o.tracked == Some(Tracked::Cell), SCOPE, Tracked::Cell);
            }
            _ => {}
        }
        match name {
            "tr" if open(Tracked::Tr) => {
                self.close_in_scope(|o| o.tracked == Some(Tracked::Tr), SCOPE, Tracked::Tr);
            }
            "option" if self.top_is(Tracked::Option) => self.pop_to(self.stack.len() - 1),
            "select" if open(Tracked::Select) => {
                self.close_in_scope(|o| o.tracked == Some(Tracked::Select), 0, Tracked::Select);
            }
            "button" if open(Tracked::Button) => {
                self.close_in_scope(
                    |o| o.tracked == Some(Tracked::Button),
                    SCOPE,
                    Tracked::Button,
                );
            }
            _ if flags & HEADING != 0
                && self.stack.last().is_some_and(|o| o.flags & HEADING != 0) =>
            {
                self.pop_to(self.stack.len() - 1);
            }
            _ => {}
        }
    }

    fn end(&mut self, name: LocalName) {
        let (flags, tracked) = flags(&name);
        match &*name {
            "body" | "html" => {
                if self.top_is(Tracked::Head) {
                    self.pop_to(self.stack.len() - 1);
                }
            }
            "head" => {
                if self.top_is(Tracked::Head) {
                    self.pop_to(self.stack.len() - 1);
                }
            }
            // `</br>` is a `<br>`, and a stray `</p>` an empty paragraph.
            "br" => {
                if self.skipped == 0 {
                    self.out.newline();
                }
            }
            "p" if self.open[Tracked::P as usize] == 0 => {
                if self.skipped == 0 {
                    self.out.newline();
                }
            }
            _ if tracked.is_some_and(|t| self.open[t as usize] == 0) => {}
            _ if flags & FORMATTING != 0 => {
                let found = self.find(|o| o.name == name, |o| o.flags & SCOPE != 0);
                if let Some(at) = found {
                    let open = &self.stack[at];
                    if !open.skipped && open.pending.is_none() {
                        // Inline: it ends here, and the blocks opened
                        // inside it stay open (as the adoption agency
                        // leaves them).
                        let open = self.stack.remove(at);
                        self.detach(&open);
                        self.close(open);
                    } else {
                        self.pop_to(at);
                    }
                }
            }
            _ if flags & HEADING != 0 => {
                let found = self.find(|o| o.flags & HEADING != 0, |o| o.flags & SCOPE != 0);
                if let Some(at) = found {
                    self.pop_to(at);
                }
            }
            _ => {
                // Block end tags look within the default scope; others
                // stop at the first special element.
                let stop = if flags & SPECIAL != 0 {
                    SCOPE | if &*name == "li" { LIST } else { 0 }
                } else {
                    SPECIAL
                };
                if let Some(at) = self.find(|o| o.name == name, |o| o.flags & stop != 0) {
                    self.pop_to(at);
                }
            }
        }
    }

    /// Closes the nearest open element that `want` picks, unless an element
    /// with a `stop` flag or the `boundary` element comes first.
    fn close_in_scope(&mut self, want: impl Fn(&Open) -> bool, stop: u32, boundary: Tracked) {
        let found = self.find(&want, |o| {
            o.flags & stop != 0 || (o.tracked == Some(boundary) && !want(o))
        });
        if let Some(at) = found {
            self.pop_to(at);
        }
    }

    /// Closes the nearest open element that `want` picks, unless a special
    /// element other than `address`, `div` and `p` comes first (the tree
    /// builder's rule for `li`, `dd` and `dt`).
    fn close_before_special(&mut self, want: impl Fn(&Open) -> bool) {
        let found = self.find(&want, |o| {
            o.flags & SPECIAL != 0 && !matches!(&*o.name, "address" | "div" | "p")
        });
        if let Some(at) = found {
            self.pop_to(at);
        }
    }

    /// Index of the nearest open element that `want` picks, looking at most
    /// [`MAX_NESTING`] elements down and not past one that `stop` picks. The
    /// bound keeps hostile nesting linear.
    fn find(&self, want: impl Fn(&Open) -> bool, stop: impl Fn(&Open) -> bool) -> Option<usize> {
        for (at, open) in self.stack.iter().enumerate().rev().take(MAX_NESTING) {
            if want(open) {
                return Some(at);
            }
            if stop(open) {
                return None;
            }
        }
        None
    }

    fn top_is(&self, tracked: Tracked) -> bool {
        self.open[tracked as usize] > 0
            && self
                .stack
                .last()
                .is_some_and(|o| o.tracked == Some(tracked))
    }

    /// Closes the open elements from the top down to index `at`, included.
    fn pop_to(&mut self, at: usize) {
        while self.stack.len() > at {
            let Some(open) = self.stack.pop() else { break };
            self.detach(&open);
            self.close(open);
        }
    }

    /// Undoes the counts of an element taken off the stack.
    fn detach(&mut self, open: &Open) {
        if open.skipped {
            self.skipped -= 1;
        }
        if let Some(tracked) = open.tracked {
            self.open[tracked as usize] -= 1;
        }
    }

    /// The end of an element that is off the stack (or never on it: voids).
    fn close(&mut self, open: Open) {
        if self.title_at == Some(self.stack.len()) {
            self.title_at = None;
        }
        if !open.visible || open.skipped {
            return;
        }
        match &*open.name {
            "td" | "th" => self.out.space(),
            _ => {}
        }
        if open.flags & PRE != 0 {
            self.pre = self.pre.saturating_sub(1);
        }
        if open.flags & SECTIONING != 0 {
            self.sectioning = self.sectioning.saturating_sub(1);
        }
        if open.flags & BLOCK != 0 {
            self.out.newline();
        }
        let cut = match open.pending {
            None => None,
            Some(Pending::Form { mark, main_content }) => {
                (self.main_content == main_content).then_some(mark)
            }
            Some(Pending::Header { mark, h1 }) => (self.h1 == h1).then_some(mark),
            Some(Pending::List {
                mark,
                letters,
                linked,
            }) => {
                self.lists -= 1;
                let all = self.letters - letters;
                let linked = self.linked - linked;
                (all > 0 && linked >= all).then_some(mark)
            }
        };
        if let Some(mark) = cut {
            self.out.text.truncate(mark);
        }
    }
}

/// The output of [`html_to_text`]; avoids piling up empty lines (normalise
/// would remove them, but they cost memory on big pages).
#[derive(Default)]
pub(super) struct TextWriter {
    text: String,
}

impl TextWriter {
    pub(super) fn newline(&mut self) {
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
            for (i, piece) in text.split(['\n', '\r', '\t', '\u{000C}']).enumerate() {
                if i > 0 {
                    self.text.push(' ');
                }
                self.text.push_str(piece);
            }
        }
    }
}

pub(super) fn find_byte(bytes: &[u8], from: usize, needle: u8) -> Option<usize> {
    let found = bytes.get(from..)?.iter().position(|&b| b == needle)?;
    Some(from + found)
}

/// Position of the `<` of `</name` (ASCII case-insensitive) at or after `from`.
pub(super) fn find_end_tag(bytes: &[u8], from: usize, name: &[u8]) -> Option<usize> {
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

#[cfg(test)]
mod tests {
    use super::super::normalize;
    use super::*;

    /// What the tree builder repaired for the old tree walk, and the stream now
    /// repairs itself: implied and stray end tags, misnesting, unclosed
    /// elements at the end, foreign content, a `head` left open.
    #[test]
    fn the_stream_repairs_what_a_tree_builder_did() {
        let cases: &[(&str, &str, &str)] = &[
            ("p inside p", "<p>One<p>Two</p>", "One\nTwo"),
            (
                "li without end tags, prose",
                "<ul><li>First point<li>Second <a href=/x>link</a></ul>",
                "First point\nSecond link",
            ),
            (
                "li without end tags, links",
                "<ul><li><a href=/>Home</a><li><a href=/n>News</a></ul><p>Story.</p>",
                "Story.",
            ),
            (
                "nested lists",
                "<ul><li>a<ul><li>b</ul><li>c</ul>",
                "a\nb\nc",
            ),
            (
                "dt and dd",
                "<dl><dt>Term<dd>Meaning<dt>Next</dl>",
                "Term\nMeaning\nNext",
            ),
            (
                "misnested inline",
                "<p><b>bold <i>both</b> italic</i> plain</p>",
                "bold both italic plain",
            ),
            (
                "link across a block",
                "<div><a href=/x>link<p>para</a> after</p></div>",
                "link\npara after",
            ),
            (
                "unclosed link list at the end",
                "<p>Story.</p><ul><li><a href=/>Home</a><li><a href=/n>News</a>",
                "Story.",
            ),
            (
                "unclosed page form",
                "<form><h1>Head</h1><p>Body.",
                "Head\nBody.",
            ),
            ("unclosed banner", "<header>Logo<p>Text", ""),
            (
                "stray end tags",
                "<p>One</p></div></span>Two</p>Three",
                "One\nTwo\nThree",
            ),
            ("end tag br", "One</br>Two", "One\nTwo"),
            (
                "unclosed svg ended by html",
                "<p>A</p><svg><path d=x><p>B</p>",
                "A\nB",
            ),
            (
                "head left open",
                "<head><meta charset=utf-8><title>T</title>Body text<p>More</p>",
                "Body text\nMore",
            ),
            (
                "cells without end tags",
                "<table><tr><td>a<td>b<tr><td>c</table>",
                "a b\nc",
            ),
            (
                "options",
                "<select><option>a<option>b</select><p>Kept</p>",
                "Kept",
            ),
            (
                "script holding markup",
                "<p>A</p><script>document.write('</p><p>no')</script><p>B</p>",
                "A\nB",
            ),
            ("pre keeps inner lines", "<pre>\nx\n  y</pre>", "x\ny"),
            (
                "attributes do not leak",
                "<p title=\"&lt;x&gt;\">Text &amp; more</p>",
                "Text & more",
            ),
        ];
        for (name, html, want) in cases {
            assert_eq!(normalize(&html_to_text(html)), *want, "case {name}");
        }
    }

    #[test]
    fn deep_inline_nesting_is_linear() {
        // Every end tag looks at most MAX_NESTING elements down.
        let depth = 100_000;
        let html = format!(
            "{}deep{}",
            "<span><b>".repeat(depth),
            "</i></b></span>".repeat(depth)
        );
        assert_eq!(normalize(&html_to_text(&html)), "deep");
    }

    /// The flags' lists and the constants that the article extractor uses say
    /// the same thing.
    #[test]
    fn flags_agree_with_the_element_lists() {
        for (list, flag) in [
            (SKIPPED_ELEMENTS, SKIP),
            (BLOCK_ELEMENTS, BLOCK),
            (SECTIONING_ELEMENTS, SECTIONING),
            (MAIN_CONTENT_ELEMENTS, MAIN_CONTENT),
        ] {
            for name in list {
                assert!(flags(name).0 & flag != 0, "{name} lacks flag {flag}");
            }
        }
        for name in ["div", "p", "span", "a", "li", "header", "form", "td", "svg"] {
            let (got, _) = flags(name);
            assert_eq!(got & SKIP != 0, SKIPPED_ELEMENTS.contains(&name), "{name}");
            assert_eq!(got & BLOCK != 0, BLOCK_ELEMENTS.contains(&name), "{name}");
        }
    }
}
