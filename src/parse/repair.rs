//! Liberal feed reading: the textual repairs that let a broken-but-readable feed
//! through, and [`read_feed`], the poller's way from bytes to items.
//!
//! Real feeds are often not well-formed XML: HTML entities such as `&nbsp;` pasted
//! from a CMS, `AT&T` unescaped, an `<rss>` without a version, a byte-order mark or a
//! PHP warning before `<?xml`, or an `encoding="windows-1251"` declaration that is a
//! lie once the text is UTF-8. A liberal reader (a browser, most feed readers) shows
//! such feeds; feed-rs refuses them or, worse, reads them wrongly (mojibake, literal
//! `&nbsp;` in titles). [`repair`] fixes exactly these defects in one linear pass and
//! says which it fixed; it never touches CDATA sections, comments, processing
//! instructions or a doctype, and leaves well-formed XML byte for byte unchanged.
//! [`super::parse`] runs every XML feed through it, so `scan` and the poller read a
//! feed the same way.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use super::{FeedItem, ParseError, Parsed};

/// How far into a body a misplaced `<?xml` declaration is looked for.
const JUNK_WINDOW: usize = 2048;

/// A defect [`repair`] fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repair {
    /// A byte-order mark, blank lines or other junk before `<?xml`.
    LeadingJunk,
    /// An `encoding` declaration naming a charset other than the UTF-8 the text now is.
    EncodingDeclaration,
    /// `<rss>` without a version, or with one feed-rs does not know.
    RssVersion,
    /// HTML named entities (`&nbsp;`, `&mdash;`…), which XML does not define.
    HtmlEntities,
    /// A numeric character reference to no valid character (`&#0;`, `&#xD800;`).
    CharacterReferences,
    /// An `&` that starts no entity (`AT&T`, `?a=1&b=2`).
    StrayAmpersands,
    /// A `<` that starts no tag (`a < b`).
    StrayLessThan,
}

impl Repair {
    pub fn as_str(self) -> &'static str {
        match self {
            Repair::LeadingJunk => "junk before the XML declaration",
            Repair::EncodingDeclaration => "stale encoding declaration",
            Repair::RssVersion => "missing or unknown RSS version",
            Repair::HtmlEntities => "HTML entities",
            Repair::CharacterReferences => "invalid character references",
            Repair::StrayAmpersands => "unescaped ampersands",
            Repair::StrayLessThan => "unescaped less-than signs",
        }
    }
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a body gave no feed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("empty body")]
    Empty,
    #[error("binary data, not a feed (NUL byte at offset {offset})")]
    Binary { offset: usize },
    /// The commonest failure in practice: a login wall, an error page, a moved site,
    /// or the site's home page given as the feed's url. `feeds` are the feeds the
    /// page advertises (`<link rel="alternate" type="application/rss+xml" href>`),
    /// resolved against the page's url when it is known.
    #[error("an HTML page{} was served instead of a feed{}", title_suffix(.title), advertised_suffix(.feeds))]
    Html {
        title: Option<String>,
        feeds: Vec<String>,
    },
    #[error("not a feed: the body starts with {start:?}")]
    NotAFeed { start: String },
    #[error("not a valid {kind} feed, even after repair: {reason}")]
    Invalid { kind: &'static str, reason: String },
}

fn advertised_suffix(feeds: &[String]) -> String {
    match feeds {
        [] => String::new(),
        [one] => format!("; the page advertises the feed {one}: use it as the feed's url"),
        several => format!(
            "; the page advertises {} feeds, use one of them as the feed's url: {}",
            several.len(),
            several.join(", ")
        ),
    }
}

fn title_suffix(title: &Option<String>) -> String {
    title
        .as_deref()
        .map_or_else(String::new, |t| format!(" ({t:?})"))
}

/// A feed read liberally: its items, the repairs it needed and, for RSS, its `<ttl>`.
#[derive(Debug, Default)]
pub struct LiberalFeed {
    pub items: Vec<FeedItem>,
    pub repairs: Vec<Repair>,
    /// Minutes the feed may be cached (RSS `<ttl>`).
    pub ttl: Option<u32>,
    /// The encoding its bytes were read in, and why when it was not plain UTF-8.
    pub encoding: &'static str,
    pub encoding_note: Option<String>,
}

/// Decodes (with the charset the server named, if any), repairs and parses a feed
/// body: the poller's way from bytes to items, naming the repairs it needed.
pub fn read_feed(bytes: &[u8], http_charset: Option<&str>) -> Result<LiberalFeed, FeedError> {
    read_feed_at(bytes, http_charset, None)
}

/// [`read_feed`] for a body fetched from `url`, against which the feeds an HTML page
/// advertises are resolved.
pub fn read_feed_at(
    bytes: &[u8],
    http_charset: Option<&str>,
    url: Option<&url::Url>,
) -> Result<LiberalFeed, FeedError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FeedError::Empty);
    }
    let decoded = super::decode(bytes, http_charset).map_err(from_parse_error)?;
    match super::parse_liberally(&decoded.text).map_err(from_parse_error)? {
        (Parsed::Feed(mut items), notes) => {
            for item in &mut items {
                item.encoding = Some(decoded.encoding);
                // A relative link with no `xml:base` to resolve it (feed-rs resolves
                // those) is relative to the feed's own url.
                if let (Some(link), Some(base)) = (&item.link, url) {
                    if url::Url::parse(link) == Err(url::ParseError::RelativeUrlWithoutBase) {
                        if let Ok(absolute) = base.join(link) {
                            item.link = Some(absolute.to_string());
                        }
                    }
                }
            }
            Ok(LiberalFeed {
                items,
                repairs: notes.repairs,
                ttl: notes.ttl,
                encoding: decoded.encoding,
                encoding_note: decoded.note,
            })
        }
        (Parsed::Html(html), _) => Err(FeedError::Html {
            title: html_title(&html),
            feeds: advertised_feeds(&html, url),
        }),
        (Parsed::Text(text), _) => Err(FeedError::NotAFeed {
            start: text.trim().chars().take(40).collect(),
        }),
    }
}

fn from_parse_error(err: ParseError) -> FeedError {
    match err {
        ParseError::Empty => FeedError::Empty,
        ParseError::Binary { offset } => FeedError::Binary { offset },
        ParseError::Feed { kind, reason } => FeedError::Invalid { kind, reason },
    }
}

/// The feeds an HTML page advertises in its `<link rel="alternate">`s of an RSS,
/// Atom or JSON Feed type, in page order, without repeats; relative ones resolved
/// against `base` (or the page's `<base href>`), and left as written without one.
pub fn advertised_feeds(html: &str, base: Option<&url::Url>) -> Vec<String> {
    static LINKS: OnceLock<scraper::Selector> = OnceLock::new();
    static BASE: OnceLock<scraper::Selector> = OnceLock::new();
    // Both selectors are constants that parse; a typo would fail every test of this
    // function, never a user's input.
    let links = LINKS.get_or_init(|| {
        scraper::Selector::parse("link[rel][type][href]").expect("a valid selector")
    });
    let base_tag =
        BASE.get_or_init(|| scraper::Selector::parse("base[href]").expect("a valid selector"));
    let page = scraper::Html::parse_document(html);
    let declared_base = page
        .select(base_tag)
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| match base {
            Some(base) => base.join(href.trim()).ok(),
            None => url::Url::parse(href.trim()).ok(),
        });
    let base = declared_base.as_ref().or(base);
    let mut feeds: Vec<String> = Vec::new();
    for link in page.select(links) {
        let element = link.value();
        let rel = element.attr("rel").unwrap_or("").to_ascii_lowercase();
        let kind = element
            .attr("type")
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let is_feed = matches!(
            kind.split(';').next().unwrap_or("").trim(),
            "application/rss+xml"
                | "application/atom+xml"
                | "application/feed+json"
                | "application/rdf+xml"
        );
        if !is_feed || !rel.split_ascii_whitespace().any(|r| r == "alternate") {
            continue;
        }
        let href = element.attr("href").unwrap_or("").trim();
        if href.is_empty() {
            continue;
        }
        let resolved = match base {
            Some(base) => match base.join(href) {
                Ok(url) => url.to_string(),
                Err(_) => continue,
            },
            None => href.to_string(),
        };
        if !feeds.contains(&resolved) {
            feeds.push(resolved);
        }
    }
    feeds
}

/// The `<title>` of an HTML page, shortened, so an error names the page served.
fn html_title(html: &str) -> Option<String> {
    let head = &html[..floor_char_boundary(html, 64 * 1024)];
    let lower = head.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let title: String = head[start..end]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let title: String = title.chars().take(80).collect();
    (!title.is_empty()).then_some(title)
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Text with a misplaced XML declaration brought to the front: a byte-order mark,
/// blank lines, or junk such as a PHP warning before `<?xml`. Whitespace before a
/// root element without a declaration is legal and only trimmed, not counted.
pub fn strip_leading_junk(text: &str) -> (&str, Option<Repair>) {
    let trimmed = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if trimmed.starts_with("<?xml") {
        let junk = trimmed.len() != text.len();
        return (trimmed, junk.then_some(Repair::LeadingJunk));
    }
    if trimmed.starts_with('<') || trimmed.starts_with('{') {
        return (trimmed, None);
    }
    let window = &trimmed[..floor_char_boundary(trimmed, JUNK_WINDOW)];
    match window.find("<?xml") {
        Some(at) => (&trimmed[at..], Some(Repair::LeadingJunk)),
        None => (trimmed, None),
    }
}

/// Repaired XML text and the defects fixed. Text without defects comes back borrowed.
#[derive(Debug)]
pub struct Repaired<'a> {
    pub text: Cow<'a, str>,
    pub repairs: Vec<Repair>,
}

/// Fixes the defects named by [`Repair`] (except leading junk, see
/// [`strip_leading_junk`]) in XML text that is already decoded to UTF-8.
pub fn repair(text: &str) -> Repaired<'_> {
    let mut out = Rewriter::new(text);
    let mut repairs = Vec::new();

    // The declaration and the root are at the front; everything else is one pass
    // from the root on (before it there is only markup the pass would skip).
    let root = root_start(text);
    let mut pos = root.unwrap_or(0);
    if text.starts_with("<?xml") {
        if let Some(end) = text.find("?>") {
            if let Some((start, stop)) = declared_encoding(&text[..end]) {
                let label = text[start..stop].trim().to_ascii_lowercase();
                if label != "utf-8" && label != "utf8" && out.replace(start, stop, "utf-8") {
                    repairs.push(Repair::EncodingDeclaration);
                }
            }
        }
    }
    if let Some(root) = root {
        if let Some(fix) = rss_version_fix(text, root) {
            let fixed = match fix {
                VersionFix::Insert(at) => out.replace(at, at, " version=\"2.0\""),
                VersionFix::Replace(start, stop) => out.replace(start, stop, "2.0"),
            };
            if fixed {
                repairs.push(Repair::RssVersion);
            }
        }
    }

    let bytes = text.as_bytes();
    let mut seen = Seen::default();
    while let Some(offset) = find_special(&bytes[pos..]) {
        let at = pos + offset;
        if bytes[at] == b'<' {
            pos = skip_markup(text, at, &mut out, &mut seen);
            continue;
        }
        pos = fix_ampersand(text, at, &mut out, &mut seen);
    }
    if seen.entities {
        repairs.push(Repair::HtmlEntities);
    }
    if seen.char_refs {
        repairs.push(Repair::CharacterReferences);
    }
    if seen.ampersands {
        repairs.push(Repair::StrayAmpersands);
    }
    if seen.less_than {
        repairs.push(Repair::StrayLessThan);
    }
    Repaired {
        text: out.finish(),
        repairs,
    }
}

#[derive(Default)]
struct Seen {
    entities: bool,
    char_refs: bool,
    ampersands: bool,
    less_than: bool,
}

fn find_special(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'<' || b == b'&')
}

/// Skips a tag, comment, CDATA section, processing instruction or doctype starting at
/// `at`, or escapes a `<` that starts none of them. Returns where scanning resumes.
fn skip_markup(text: &str, at: usize, out: &mut Rewriter<'_>, seen: &mut Seen) -> usize {
    let rest = &text[at..];
    let past = |marker: &str| {
        rest.find(marker)
            .map_or(text.len(), |i| at + i + marker.len())
    };
    if rest.starts_with("<![CDATA[") {
        return past("]]>");
    }
    if rest.starts_with("<!--") {
        return past("-->");
    }
    if rest.starts_with("<?") {
        return past("?>");
    }
    if starts_with_ignore_ascii_case(rest, "<!doctype") {
        return skip_doctype(text, at);
    }
    let next = rest[1..].chars().next();
    let starts_tag = next.is_some_and(|c| c.is_alphabetic() || matches!(c, '_' | ':' | '/' | '!'));
    if !starts_tag {
        seen.less_than |= out.replace(at, at + 1, "&lt;");
    }
    // Inside a tag, attribute values are scanned like text (their `&` need the same
    // repairs), so only the `<` itself is passed.
    at + 1
}

/// Whether elements nest deeper than `limit`. quick-xml counts depth in a `u16`
/// (and panics past it in debug builds); no real feed nests more than a few dozen
/// levels, so a deeper one is refused before it reaches the parser.
pub(crate) fn nests_deeper_than(text: &str, limit: usize) -> bool {
    let mut depth = 0usize;
    let mut pos = 0;
    while let Some(offset) = text[pos..].find('<') {
        let at = pos + offset;
        let rest = &text[at..];
        let past = |marker: &str| {
            rest.find(marker)
                .map_or(text.len(), |i| at + i + marker.len())
        };
        pos = if rest.starts_with("<![CDATA[") {
            past("]]>")
        } else if rest.starts_with("<!--") {
            past("-->")
        } else if starts_with_ignore_ascii_case(rest, "<!doctype") {
            skip_doctype(text, at)
        } else if rest.starts_with("<?") || rest.starts_with("<!") {
            past(">")
        } else if rest.starts_with("</") {
            depth = depth.saturating_sub(1);
            at + 2
        } else {
            let Some(end) = rest.find('>') else { break };
            if !rest[..end].ends_with('/') {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            at + end + 1
        };
    }
    false
}

/// Whether `text` starts with `prefix`, ignoring ASCII case, compared as bytes.
///
/// Slicing `text[..prefix.len()]` would panic when that many bytes end inside a
/// character, as they do before any non-ASCII text (`<東京`, `<Иван`): a feed of
/// Chinese or Cyrillic titles was lost that way.
pub(crate) fn starts_with_ignore_ascii_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Past a doctype, including an internal subset in brackets.
pub(crate) fn skip_doctype(text: &str, at: usize) -> usize {
    let mut depth = 0usize;
    for (i, b) in text.as_bytes()[at..].iter().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b'>' if depth == 0 => return at + i + 1,
            _ => {}
        }
    }
    text.len()
}

/// Checks the reference starting with the `&` at `at`, rewriting it when XML would
/// refuse or misread it. Returns where scanning resumes.
fn fix_ampersand(text: &str, at: usize, out: &mut Rewriter<'_>, seen: &mut Seen) -> usize {
    let rest = &text.as_bytes()[at + 1..];
    // Entity names are short; a `;` further away is not this `&`'s.
    let window = &rest[..rest.len().min(40)];
    let Some(semi) = window.iter().position(|&b| b == b';') else {
        seen.ampersands |= out.replace(at, at + 1, "&amp;");
        return at + 1;
    };
    let name = &text[at + 1..at + 1 + semi];
    let end = at + 1 + semi + 1;
    if let Some(number) = name.strip_prefix('#') {
        let value = match number.strip_prefix(['x', 'X']) {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).ok()
            }
            Some(_) => None,
            None if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => {
                number.parse::<u32>().ok()
            }
            None => None,
        };
        match value {
            Some(v) if is_xml_char(v) => {}
            // `&#` then digits that are not a character: keep the text readable.
            Some(_) => {
                seen.char_refs |= out.replace(at, end, "&#65533;");
            }
            None if number.bytes().all(|b| b.is_ascii_alphanumeric()) && !number.is_empty() => {
                seen.char_refs |= out.replace(at, end, "&#65533;");
            }
            None => {
                seen.ampersands |= out.replace(at, at + 1, "&amp;");
                return at + 1;
            }
        }
        return end;
    }
    let is_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !is_name {
        seen.ampersands |= out.replace(at, at + 1, "&amp;");
        return at + 1;
    }
    if matches!(name, "amp" | "lt" | "gt" | "quot" | "apos") {
        return end;
    }
    if let Some(code) = html_entity(name) {
        seen.entities |= out.replace(at, end, &format!("&#{code};"));
    }
    // An unknown name (`&foo;`) is left alone: feed-rs keeps it as written, which
    // is the best anyone can do without the DTD that would define it.
    end
}

/// Characters XML 1.0 allows in a document.
fn is_xml_char(v: u32) -> bool {
    matches!(v, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// The byte range of the `encoding` value in an XML declaration.
fn declared_encoding(decl: &str) -> Option<(usize, usize)> {
    let key = decl.find("encoding")?;
    let after = &decl[key + "encoding".len()..];
    let eq = after.find('=')?;
    if !after[..eq].trim().is_empty() {
        return None;
    }
    let value = &after[eq + 1..];
    let lead = value.len() - value.trim_start().len();
    let quote = value[lead..]
        .chars()
        .next()
        .filter(|c| matches!(c, '"' | '\''))?;
    let start = key + "encoding".len() + eq + 1 + lead + 1;
    let stop = start + decl[start..].find(quote)?;
    Some((start, stop))
}

/// The offset of the root element's `<`, past the declaration, comments, processing
/// instructions and a doctype.
fn root_start(text: &str) -> Option<usize> {
    let mut pos = 0;
    for _ in 0..64 {
        let rest = &text[pos..];
        let skipped = rest.len() - rest.trim_start().len();
        pos += skipped;
        let rest = &text[pos..];
        if rest.starts_with("<!--") {
            pos += rest.find("-->")? + 3;
        } else if starts_with_ignore_ascii_case(rest, "<!doctype") {
            pos = skip_doctype(text, pos);
        } else if rest.starts_with("<?") || rest.starts_with("<!") {
            pos += rest.find('>')? + 1;
        } else if rest.starts_with('<') {
            return Some(pos);
        } else {
            return None;
        }
    }
    None
}

enum VersionFix {
    Insert(usize),
    Replace(usize, usize),
}

/// How to give an `<rss>` root a version feed-rs reads, if it needs one.
fn rss_version_fix(text: &str, root: usize) -> Option<VersionFix> {
    let rest = &text[root..];
    let tag_end = root + rest.find('>')?;
    let after_name = root + "<rss".len();
    let name_ends = text
        .as_bytes()
        .get(after_name)
        .is_some_and(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/');
    if !rest.starts_with("<rss") || !name_ends {
        return None;
    }
    let tag = &text[after_name..tag_end];
    let mut search = 0;
    while let Some(i) = tag[search..].find("version") {
        let key = search + i;
        search = key + "version".len();
        // Only the attribute `version`, not `xmlns:version` or `xversion`.
        let before_ok = key == 0 || tag.as_bytes()[key - 1].is_ascii_whitespace();
        if !before_ok {
            continue;
        }
        let after = &tag[search..];
        let Some(eq) = after.find('=') else { continue };
        if !after[..eq].trim().is_empty() {
            continue;
        }
        let value = &after[eq + 1..];
        let lead = value.len() - value.trim_start().len();
        let quote = value[lead..]
            .chars()
            .next()
            .filter(|c| matches!(c, '"' | '\''))?;
        let start = search + eq + 1 + lead + 1;
        let stop = start + tag[start..].find(quote)?;
        return match tag[start..stop].trim() {
            "2.0" | "0.91" | "0.92" => None,
            _ => Some(VersionFix::Replace(after_name + start, after_name + stop)),
        };
    }
    Some(VersionFix::Insert(after_name))
}

/// Builds the repaired text lazily: nothing is copied until the first change.
struct Rewriter<'a> {
    text: &'a str,
    out: Option<String>,
    /// How much of `text` has been copied to `out`.
    copied: usize,
}

impl<'a> Rewriter<'a> {
    fn new(text: &'a str) -> Self {
        Rewriter {
            text,
            out: None,
            copied: 0,
        }
    }

    /// Replaces `text[start..stop]`; calls come in increasing order. Returns whether
    /// it did, so a repair is only reported when it was made.
    fn replace(&mut self, start: usize, stop: usize, with: &str) -> bool {
        if start < self.copied {
            // Text an earlier repair already replaced: a stray `<` or `&` inside an
            // RSS `version` value that became "2.0". The input decides this, so it is
            // no caller's bug (this was a `debug_assert`, which seeded mutations of
            // the fixtures tripped); nothing of that text is left to repair.
            return false;
        }
        if stop < start {
            // A bug in a caller, not in the input; skipping the fix is better than
            // corrupting the text or panicking.
            debug_assert!(false, "backwards repair at {start}..{stop}");
            return false;
        }
        let text = self.text;
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(text.len() + text.len() / 16));
        out.push_str(&text[self.copied..start]);
        out.push_str(with);
        self.copied = stop;
        true
    }

    fn finish(self) -> Cow<'a, str> {
        match self.out {
            None => Cow::Borrowed(self.text),
            Some(mut out) => {
                out.push_str(&self.text[self.copied..]);
                Cow::Owned(out)
            }
        }
    }
}

/// The code point of an HTML named entity: the HTML 4 set (Latin-1, symbols and
/// Greek, special characters), which is what CMSs paste into feeds.
pub fn html_entity(name: &str) -> Option<u32> {
    static TABLE: OnceLock<HashMap<&'static str, u32>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = HashMap::with_capacity(LATIN1.len() + OTHER.len());
        for (code, name) in (160u32..).zip(LATIN1) {
            table.insert(*name, code);
        }
        for (name, code) in OTHER {
            table.insert(*name, *code);
        }
        table
    });
    table.get(name).copied()
}

/// HTML 4 Latin-1 entities, for U+00A0 to U+00FF in order.
const LATIN1: &[&str] = &[
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

/// HTML 4 special, symbol and Greek entities.
const OTHER: &[(&str, u32)] = &[
    ("OElig", 338),
    ("oelig", 339),
    ("Scaron", 352),
    ("scaron", 353),
    ("Yuml", 376),
    ("fnof", 402),
    ("circ", 710),
    ("tilde", 732),
    ("Alpha", 913),
    ("Beta", 914),
    ("Gamma", 915),
    ("Delta", 916),
    ("Epsilon", 917),
    ("Zeta", 918),
    ("Eta", 919),
    ("Theta", 920),
    ("Iota", 921),
    ("Kappa", 922),
    ("Lambda", 923),
    ("Mu", 924),
    ("Nu", 925),
    ("Xi", 926),
    ("Omicron", 927),
    ("Pi", 928),
    ("Rho", 929),
    ("Sigma", 931),
    ("Tau", 932),
    ("Upsilon", 933),
    ("Phi", 934),
    ("Chi", 935),
    ("Psi", 936),
    ("Omega", 937),
    ("alpha", 945),
    ("beta", 946),
    ("gamma", 947),
    ("delta", 948),
    ("epsilon", 949),
    ("zeta", 950),
    ("eta", 951),
    ("theta", 952),
    ("iota", 953),
    ("kappa", 954),
    ("lambda", 955),
    ("mu", 956),
    ("nu", 957),
    ("xi", 958),
    ("omicron", 959),
    ("pi", 960),
    ("rho", 961),
    ("sigmaf", 962),
    ("sigma", 963),
    ("tau", 964),
    ("upsilon", 965),
    ("phi", 966),
    ("chi", 967),
    ("psi", 968),
    ("omega", 969),
    ("thetasym", 977),
    ("upsih", 978),
    ("piv", 982),
    ("ensp", 8194),
    ("emsp", 8195),
    ("thinsp", 8201),
    ("zwnj", 8204),
    ("zwj", 8205),
    ("lrm", 8206),
    ("rlm", 8207),
    ("ndash", 8211),
    ("mdash", 8212),
    ("lsquo", 8216),
    ("rsquo", 8217),
    ("sbquo", 8218),
    ("ldquo", 8220),
    ("rdquo", 8221),
    ("bdquo", 8222),
    ("dagger", 8224),
    ("Dagger", 8225),
    ("bull", 8226),
    ("hellip", 8230),
    ("permil", 8240),
    ("prime", 8242),
    ("Prime", 8243),
    ("lsaquo", 8249),
    ("rsaquo", 8250),
    ("oline", 8254),
    ("frasl", 8260),
    ("euro", 8364),
    ("image", 8465),
    ("weierp", 8472),
    ("real", 8476),
    ("trade", 8482),
    ("alefsym", 8501),
    ("larr", 8592),
    ("uarr", 8593),
    ("rarr", 8594),
    ("darr", 8595),
    ("harr", 8596),
    ("crarr", 8629),
    ("lArr", 8656),
    ("uArr", 8657),
    ("rArr", 8658),
    ("dArr", 8659),
    ("hArr", 8660),
    ("forall", 8704),
    ("part", 8706),
    ("exist", 8707),
    ("empty", 8709),
    ("nabla", 8711),
    ("isin", 8712),
    ("notin", 8713),
    ("ni", 8715),
    ("prod", 8719),
    ("sum", 8721),
    ("minus", 8722),
    ("lowast", 8727),
    ("radic", 8730),
    ("prop", 8733),
    ("infin", 8734),
    ("ang", 8736),
    ("and", 8743),
    ("or", 8744),
    ("cap", 8745),
    ("cup", 8746),
    ("int", 8747),
    ("there4", 8756),
    ("sim", 8764),
    ("cong", 8773),
    ("asymp", 8776),
    ("ne", 8800),
    ("equiv", 8801),
    ("le", 8804),
    ("ge", 8805),
    ("sub", 8834),
    ("sup", 8835),
    ("nsub", 8836),
    ("sube", 8838),
    ("supe", 8839),
    ("oplus", 8853),
    ("otimes", 8855),
    ("perp", 8869),
    ("sdot", 8901),
    ("lceil", 8968),
    ("rceil", 8969),
    ("lfloor", 8970),
    ("rfloor", 8971),
    ("lang", 9001),
    ("rang", 9002),
    ("loz", 9674),
    ("spades", 9824),
    ("clubs", 9827),
    ("hearts", 9829),
    ("diams", 9830),
];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Text in Japanese, Chinese, Korean, Cyrillic, Arabic and accented Latin, each
    /// after 0 to 3 ASCII letters. Characters are 2 or 3 bytes wide here, so in some
    /// of these the 9th byte after a `<` lands inside a character whatever the
    /// script: the fixed-length slice that lost such feeds panicked there.
    pub(crate) fn in_every_script_and_alignment() -> Vec<String> {
        let scripts = [
            "東京で停戦交渉",
            "北京举行停火谈判",
            "서울에서 휴전 회담",
            "Иван Петров",
            "محادثات وقف إطلاق النار",
            "ééé",
        ];
        let mut texts = Vec::new();
        for script in scripts {
            for pad in ["", "a", "ab", "abc"] {
                texts.push(format!("{pad}{script}"));
            }
        }
        texts
    }

    /// A repair of an owned text, for tests that build the text in place.
    struct Owned {
        text: String,
        repairs: Vec<Repair>,
    }

    impl Owned {
        fn of(text: String) -> Owned {
            let r = repair(&text);
            Owned {
                text: r.text.into_owned(),
                repairs: r.repairs,
            }
        }
    }

    const ITEM: &str =
        "<channel><title>t</title><item><guid>1</guid><title>x</title></item></channel></rss>";

    #[test]
    fn well_formed_xml_is_left_alone() {
        let text =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><!DOCTYPE rss [<!ENTITY x \"&#38;\">]>\
             <rss version=\"2.0\"><!-- a & b --><channel><title>A &amp; B &#8212; &lt;p&gt;</title>\
             <description><![CDATA[<p>a &nbsp; & b < c</p>]]></description></channel></rss>";
        let r = repair(text);
        assert!(r.repairs.is_empty(), "{:?}", r.repairs);
        assert!(matches!(r.text, Cow::Borrowed(_)));
    }

    #[test]
    fn html_entities_become_numeric_references() {
        let r = repair("<rss version=\"2.0\"><title>a&nbsp;b &mdash; &laquo;c&raquo;&hellip; &eacute;&foo;</title></rss>");
        assert_eq!(r.repairs, vec![Repair::HtmlEntities]);
        assert_eq!(
            r.text,
            "<rss version=\"2.0\"><title>a&#160;b &#8212; &#171;c&#187;&#8230; &#233;&foo;</title></rss>"
        );
    }

    #[test]
    fn stray_ampersands_and_less_thans_are_escaped() {
        let r = repair("<rss version=\"2.0\"><title>AT&T & co; 1 < 2 &#12</title><link>http://x/?a=1&b=2</link><a href=\"?q&r\"/></rss>");
        assert_eq!(
            r.text,
            "<rss version=\"2.0\"><title>AT&amp;T &amp; co; 1 &lt; 2 &amp;#12</title><link>http://x/?a=1&amp;b=2</link><a href=\"?q&amp;r\"/></rss>"
        );
        assert_eq!(
            r.repairs,
            vec![Repair::StrayAmpersands, Repair::StrayLessThan]
        );
    }

    #[test]
    fn bad_character_references_are_replaced() {
        let r =
            repair("<rss version=\"2.0\"><title>a&#0;b&#xD800;c&#99999999;d&#65;</title></rss>");
        assert_eq!(
            r.text,
            "<rss version=\"2.0\"><title>a&#65533;b&#65533;c&#65533;d&#65;</title></rss>"
        );
        assert_eq!(r.repairs, vec![Repair::CharacterReferences]);
    }

    #[test]
    fn rss_gets_a_version() {
        let r = Owned::of(format!("<?xml version=\"1.0\"?>\n<rss>{ITEM}"));
        assert_eq!(r.repairs, vec![Repair::RssVersion]);
        assert!(r.text.contains("<rss version=\"2.0\">"), "{}", r.text);
        let r = Owned::of(format!(
            "<rss xmlns:dc=\"http://purl.org/dc/elements/1.1/\" version='0.94'>{ITEM}"
        ));
        assert!(r.text.contains("version='2.0'"), "{}", r.text);
        let r = Owned::of(format!("<rss version=\"0.91\">{ITEM}"));
        assert!(r.repairs.is_empty());
        // A stray `<` or `&` inside the replaced value needs no repair of its own.
        for version in ["2<.0", "2&.0", "&nbsp;", "<東京"] {
            let r = Owned::of(format!("<rss version=\"{version}\">{ITEM}"));
            assert_eq!(r.repairs, vec![Repair::RssVersion], "{version}");
            assert_eq!(r.text, format!("<rss version=\"2.0\">{ITEM}"));
        }
        // A root that only starts with "rss" is not touched.
        assert!(repair("<rssfeed><a/></rssfeed>").repairs.is_empty());
    }

    #[test]
    fn stale_encoding_declarations_are_rewritten() {
        let r = Owned::of(format!(
            "<?xml version=\"1.0\" encoding=\"windows-1251\"?><rss version=\"2.0\">{ITEM}"
        ));
        assert_eq!(r.repairs, vec![Repair::EncodingDeclaration]);
        assert!(r
            .text
            .starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
    }

    #[test]
    fn leading_junk_is_stripped() {
        let (text, fix) = strip_leading_junk("\u{feff}\n\n  <?xml version=\"1.0\"?><rss/>");
        assert_eq!(text, "<?xml version=\"1.0\"?><rss/>");
        assert_eq!(fix, Some(Repair::LeadingJunk));
        let (text, fix) =
            strip_leading_junk("Warning: x in y.php on line 3\n<?xml version=\"1.0\"?><rss/>");
        assert!(text.starts_with("<?xml"));
        assert_eq!(fix, Some(Repair::LeadingJunk));
        assert_eq!(strip_leading_junk("  <rss/>"), ("<rss/>", None));
        assert_eq!(strip_leading_junk("plain text"), ("plain text", None));
    }

    #[test]
    fn a_broken_feed_is_read_and_its_repairs_counted() {
        let feed = "\u{feff}\n<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n<rss><channel><title>t</title><ttl>45</ttl>\
            <item><guid>1</guid><title>Peace&nbsp;talks &mdash; AT&T</title></item></channel></rss>";
        let feed = read_feed(feed.as_bytes(), None).unwrap();
        assert_eq!(feed.items.len(), 1);
        assert_eq!(feed.items[0].title, "Peace\u{a0}talks \u{2014} AT&amp;T");
        // Leading junk, encoding, version, entities, ampersand.
        assert_eq!(feed.repairs.len(), 5);
        assert_eq!(feed.ttl, Some(45));
    }

    #[test]
    fn legacy_charsets_from_http_are_used() {
        let feed = "<?xml version=\"1.0\" encoding=\"windows-1251\"?><rss version=\"2.0\"><channel><title>t</title><item><title>Переговоры о перемирии</title></item></channel></rss>";
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(feed);
        let read = read_feed(&bytes, Some("windows-1251")).unwrap();
        assert_eq!(read.items[0].title, "Переговоры о перемирии");
        assert_eq!(read.repairs.len(), 1);
        let koi8 = feed.replace("windows-1251", "koi8-r");
        let (bytes, _, _) = encoding_rs::KOI8_R.encode(&koi8);
        let read = read_feed(&bytes, Some("KOI8-R")).unwrap();
        assert_eq!(read.items[0].title, "Переговоры о перемирии");
    }

    #[test]
    fn relative_links_are_resolved_against_the_feed_url() {
        let rss = b"<rss version=\"2.0\"><channel><title>t</title>\
            <item><title>a</title><link>/2025/a.html</link></item>\
            <item><title>b</title><link>b.html</link></item>\
            <item><title>c</title><link>https://example.net/c</link></item></channel></rss>";
        let base = url::Url::parse("https://example.org/news/feed.xml").unwrap();
        let feed = read_feed_at(rss, None, Some(&base)).unwrap();
        let links: Vec<_> = feed
            .items
            .iter()
            .map(|i| i.link.as_deref().unwrap())
            .collect();
        assert_eq!(
            links,
            [
                "https://example.org/2025/a.html",
                "https://example.org/news/b.html",
                "https://example.net/c"
            ]
        );
        let feed = read_feed(rss, None).unwrap();
        assert_eq!(feed.items[0].link.as_deref(), Some("/2025/a.html"));
    }

    #[test]
    fn failures_say_what_was_wrong() {
        assert_eq!(read_feed(b" \n ", None).unwrap_err(), FeedError::Empty);
        let err = read_feed(
            b"<!DOCTYPE html><html><head><title>Sign in\n - Example</title></head></html>",
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "an HTML page (\"Sign in - Example\") was served instead of a feed"
        );
        let err = read_feed(b"<rss version=\"2.0\"><channel><item><title>x", None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("not a valid RSS feed, even after repair: "),
            "{err}"
        );
        assert!(matches!(
            read_feed(b"hello", None),
            Err(FeedError::NotAFeed { .. })
        ));
        assert!(matches!(
            read_feed(b"\x89PNG\r\n\x1a\n\0\0", None),
            Err(FeedError::Binary { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_measured() {
        let deep = format!("<rss>{}{}</rss>", "<a>".repeat(50), "</a>".repeat(50));
        assert!(nests_deeper_than(&deep, 50));
        assert!(!nests_deeper_than(&deep, 51));
        let flat = format!(
            "<rss>{}</rss>",
            "<a x=\"1\"/><b>t</b><![CDATA[<p><p>]]><!-- <c> -->".repeat(100)
        );
        assert!(!nests_deeper_than(&flat, 2));
    }

    #[test]
    fn prefixes_are_compared_as_bytes() {
        assert!(starts_with_ignore_ascii_case("<!DOCTYPE rss>", "<!doctype"));
        assert!(starts_with_ignore_ascii_case("<!doctype", "<!DOCTYPE"));
        assert!(!starts_with_ignore_ascii_case("<!doc", "<!doctype"));
        for text in in_every_script_and_alignment() {
            assert!(!starts_with_ignore_ascii_case(
                &format!("<{text}"),
                "<!doctype"
            ));
            assert!(!starts_with_ignore_ascii_case(
                &format!("<?{text}"),
                "<!doctype"
            ));
        }
    }

    /// `nests_deeper_than` runs first on every XML feed: a title or author starting
    /// with non-ASCII text panicked there, so no such feed was ever read.
    #[test]
    fn nesting_is_measured_before_text_in_any_script() {
        for text in in_every_script_and_alignment() {
            let feed = format!(
                "<?{text}?><!DOCTYPE rss><rss><channel><title>{text}</title>\
                 <author>{text}</author><a href=\"{text}\"/><{text}>{text}</{text}></channel></rss>"
            );
            assert!(!nests_deeper_than(&feed, 3), "{feed}");
            assert!(nests_deeper_than(&feed, 2), "{feed}");
        }
    }

    /// The repair pass visits every `<`, including one inside an attribute value
    /// (not well-formed, but feeds have them) right before non-ASCII text, and the
    /// root is found past processing instructions and a doctype in any script.
    #[test]
    fn markup_before_text_in_any_script_is_skipped_whole() {
        for text in in_every_script_and_alignment() {
            let feed = format!(
                "<?xml version=\"1.0\"?>\n<?{text} x=\"{text}\"?>\n<!DOCTYPE {text}>\n\
                 <rss><channel><title>{text}</title><author>{text}</author>\
                 <enclosure url=\"https://example.org/a\" title=\"a<{text}\"/></channel></rss>"
            );
            let r = repair(&feed);
            assert_eq!(r.repairs, vec![Repair::RssVersion], "{feed}");
            let fixed = feed.replace("<rss>", "<rss version=\"2.0\">");
            assert_eq!(r.text, fixed);
        }
        // A `<` that starts no tag is escaped, whatever follows it.
        let r = repair("<rss version=\"2.0\"><title>1 <«東京» 2 <😀</title></rss>");
        assert_eq!(
            r.text,
            "<rss version=\"2.0\"><title>1 &lt;«東京» 2 &lt;😀</title></rss>"
        );
    }

    #[test]
    fn every_latin1_entity_has_its_code_point() {
        assert_eq!(LATIN1.len(), 96);
        assert_eq!(html_entity("nbsp"), Some(160));
        assert_eq!(html_entity("shy"), Some(173));
        assert_eq!(html_entity("iquest"), Some(191));
        assert_eq!(html_entity("times"), Some(215));
        assert_eq!(html_entity("szlig"), Some(223));
        assert_eq!(html_entity("divide"), Some(247));
        assert_eq!(html_entity("yuml"), Some(255));
        assert_eq!(html_entity("euro"), Some(8364));
        assert_eq!(html_entity("nosuch"), None);
    }
}
