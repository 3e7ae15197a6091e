//! Cleaning: raw text or HTML in, [`Article`]s of normalised plain text out.
//!
//! This module owns everything between "bytes decoded to a `&str`" and
//! "title + body ready for entity/topic detection". It is pure: no I/O, no
//! global state apart from constant regexes, and it never panics.
//!
//! The built-in rules, in the order they run:
//!
//! 1. **HTML to text** ([`html_to_text`], only for HTML input): one streaming
//!    pass over html5ever's tokenizer, which decodes entities the way a browser
//!    does; the stream repairs unclosed and misnested tags as the tree builder
//!    would, without building a tree. Block elements become line breaks,
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

mod extract;
mod html;
mod lines;
mod normalize;
mod tree;

use regex::{Regex, RegexSet};
use unicode_segmentation::UnicodeSegmentation;

pub use extract::{extract_article, token_f1, PageText};
pub use html::html_to_text;
use lines::*;
pub use normalize::normalize;
use normalize::normalize_into;

/// One article: a title and a body of paragraphs separated by `\n`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Article {
    pub title: String,
    pub body: String,
}

/// The cleaning rules: built-in ones plus the configured `split_on` and `drop_lines`.
#[derive(Debug, Clone)]
pub struct Cleaner {
    split_on: AnyOf,
    drop_lines: AnyOf,
}

/// Configured line regexes, of which any may match: tested in one pass of one
/// automaton ([`RegexSet`]) rather than one call per regex and line, which on
/// a 50 MB document was most of the line rules' time.
#[derive(Debug, Clone)]
struct AnyOf {
    regexes: Vec<Regex>,
    /// `None` when there are fewer than two, or they do not build together
    /// (a set has the same size limit as one regex).
    set: Option<RegexSet>,
}

impl AnyOf {
    fn new(regexes: Vec<Regex>) -> AnyOf {
        let set = (regexes.len() > 1)
            .then(|| RegexSet::new(regexes.iter().map(Regex::as_str)).ok())
            .flatten();
        AnyOf { regexes, set }
    }

    fn is_match(&self, line: &str) -> bool {
        match &self.set {
            Some(set) => set.is_match(line),
            None => self.regexes.iter().any(|re| re.is_match(line)),
        }
    }
}

impl Cleaner {
    pub fn new(split_on: Vec<Regex>, drop_lines: Vec<Regex>) -> Cleaner {
        Cleaner {
            split_on: AnyOf::new(split_on),
            drop_lines: AnyOf::new(drop_lines),
        }
    }

    /// A whole document (plain text, or HTML when `is_html`): split into articles.
    ///
    /// Every segment between separator lines that still has text after the
    /// line rules becomes one article; the others (empty segments, a site menu
    /// after the last separator) produce nothing.
    pub fn clean_document(&self, text: &str, is_html: bool) -> Vec<Article> {
        self.clean_document_in_blocks(text, is_html, BLOCK_BYTES)
    }

    /// [`Cleaner::clean_document`] on up to `threads` threads (the caller's among
    /// them) for plain text of a megabyte or more: pieces of whole lines are
    /// cleaned at once, and the segments that run across two pieces are joined
    /// and cleaned on the caller. The articles are the same, in the same order.
    pub fn clean_document_on(&self, text: &str, is_html: bool, threads: usize) -> Vec<Article> {
        if is_html || threads <= 1 || text.len() < PARALLEL_BYTES {
            return self.clean_document(text, is_html);
        }
        // A few pieces a thread, so that one slow piece leaves no thread idle.
        self.clean_pieces(text, threads, text.len().div_ceil(threads * 4))
    }

    fn clean_pieces(&self, text: &str, threads: usize, piece_bytes: usize) -> Vec<Article> {
        let pieces: Vec<&str> = line_blocks(text, piece_bytes).collect();
        let parts = crate::par::map_ordered(&pieces, threads, |piece| {
            let mut splitter = Splitter::new(self, true);
            splitter.push_text(piece, BLOCK_BYTES);
            splitter
        });
        let mut whole = Splitter::new(self, false);
        for part in parts {
            match part.head {
                Some(head) => {
                    whole.segment.append(&head);
                    whole.end_segment();
                    whole.articles.extend(part.articles);
                    whole.segment = part.segment;
                }
                None => whole.segment.append(&part.segment),
            }
        }
        whole.finish()
    }

    /// [`Cleaner::clean_document`], plain text normalised `block_bytes` (or one
    /// line, when longer) at a time.
    fn clean_document_in_blocks(
        &self,
        text: &str,
        is_html: bool,
        block_bytes: usize,
    ) -> Vec<Article> {
        let mut splitter = Splitter::new(self, false);
        if is_html {
            splitter.push_lines(&page_text(text));
        } else {
            splitter.push_text(text, block_bytes);
        }
        splitter.finish()
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
            .filter(|line| !self.drop_lines.is_match(line))
            .collect();
        let kept = drop_menus(&kept);
        let kept: Vec<&'a str> = kept.into_iter().filter(|l| !is_credit_line(l)).collect();
        drop_dated_captions(kept, title_first)
    }
}

/// Plain text is normalised a block of whole lines at a time: a large file is
/// never held normalised whole, only one block and the segment being read.
/// Lines are normalised independently (a line break starts a new normalisation
/// unit), so blocks give the text the whole would.
const BLOCK_BYTES: usize = 64 * 1024;

/// `text` in consecutive pieces of about `block_bytes`, each ending after a
/// `\n` (or at the end): a longer line is a piece of its own.
fn line_blocks(text: &str, block_bytes: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let bytes = rest.as_bytes();
        let window = bytes.get(..block_bytes.max(1)).unwrap_or(bytes);
        let end = if window.len() == bytes.len() {
            bytes.len()
        } else {
            match window.iter().rposition(|&b| b == b'\n') {
                Some(newline) => newline + 1,
                None => normalize::find_from(bytes, window.len(), |b| b == b'\n')
                    .saturating_add(1)
                    .min(bytes.len()),
            }
        };
        // `end` follows a `\n` or is the end: a character boundary.
        let (block, after) = rest.split_at(end);
        rest = after;
        Some(block)
    })
}

/// Lines kept one after the other in one string.
#[derive(Default)]
struct Lines {
    text: String,
    ends: Vec<usize>,
}

impl Lines {
    fn push(&mut self, line: &str) {
        self.text.push_str(line);
        self.ends.push(self.text.len());
    }

    fn append(&mut self, other: &Lines) {
        let base = self.text.len();
        self.text.push_str(&other.text);
        self.ends.extend(other.ends.iter().map(|end| base + end));
    }

    fn to_vec(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let line = self.text.get(start..end).unwrap_or_default();
                start = end;
                line
            })
            .collect()
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }
}

/// Plain text from this size on is cleaned on several threads when the caller
/// has them ([`Cleaner::clean_document_on`]).
const PARALLEL_BYTES: usize = 1 << 20;

/// Normalised lines in, articles out: separator lines end a segment, and each
/// segment with text left after the line rules is an article.
struct Splitter<'c> {
    cleaner: &'c Cleaner,
    articles: Vec<Article>,
    /// The lines of the segment being read.
    segment: Lines,
    /// For a piece of a document: the lines before its first separator, which
    /// may continue a segment of the piece before (`None` until a separator).
    head: Option<Lines>,
    keep_head: bool,
}

impl<'c> Splitter<'c> {
    fn new(cleaner: &'c Cleaner, keep_head: bool) -> Splitter<'c> {
        Splitter {
            cleaner,
            articles: Vec::new(),
            segment: Lines::default(),
            head: None,
            keep_head,
        }
    }

    /// Plain text, normalised `block_bytes` (or one line, when longer) at a time.
    fn push_text(&mut self, text: &str, block_bytes: usize) {
        let mut normalized = String::new();
        for block in line_blocks(text, block_bytes) {
            normalize_into(block, &mut normalized);
            self.push_lines(&normalized);
        }
    }

    fn push_lines(&mut self, text: &str) {
        for line in text.lines() {
            // `normalize` already trimmed the line; trim again so the contract
            // ("tested against the trimmed line") does not depend on that.
            if self.cleaner.split_on.is_match(line.trim()) {
                self.end_segment();
            } else {
                self.segment.push(line);
            }
        }
    }

    fn end_segment(&mut self) {
        if self.keep_head && self.head.is_none() {
            self.head = Some(std::mem::take(&mut self.segment));
            return;
        }
        let lines = self.segment.to_vec();
        self.articles
            .extend(self.cleaner.segment_to_article(&lines));
        self.segment.clear();
    }

    fn finish(mut self) -> Vec<Article> {
        self.end_segment();
        self.articles
    }
}

/// An HTML page as normalised lines: the article's headline and text when
/// [`extract_article`] tells them apart from the page, else the whole page's text.
fn page_text(html: &str) -> String {
    let page = extract_article(html);
    let body = normalize(&page.body);
    if !page.extracted {
        return body;
    }
    let title = normalize(&page.title).lines().collect::<Vec<_>>().join(" ");
    // The article's own `h1` usually repeats the headline.
    let body = match body.split_once('\n') {
        Some((first, rest)) if first == title => rest.to_string(),
        _ if body == title => String::new(),
        _ => body,
    };
    if title.is_empty() {
        body
    } else {
        format!("{title}\n{body}")
    }
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
    use super::html::*;
    use super::normalize::*;
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
            std::sync::LazyLock::force(re);
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
    fn line_blocks_are_whole_lines_of_about_the_size_asked() {
        let text = "one\ntwo two\n\nа very long line without a break\r\nlast";
        for size in [1, 2, 5, 8, 13, 100] {
            let blocks: Vec<&str> = line_blocks(text, size).collect();
            assert_eq!(blocks.concat(), text, "block size {size}");
            for (i, block) in blocks.iter().enumerate() {
                let last = i + 1 == blocks.len();
                assert!(last || block.ends_with('\n'), "{block:?} of size {size}");
                let one_line = block.trim_end_matches('\n').lines().count() <= 1;
                assert!(block.len() <= size || one_line, "{block:?} of size {size}");
            }
        }
        assert_eq!(line_blocks("", 10).count(), 0);
    }

    /// A document cleaned a few bytes at a time gives the articles it gives whole:
    /// separators, menus, captions, CRLF, combining marks and typographic
    /// characters falling on every side of a block's end.
    #[test]
    fn documents_cleaned_in_blocks_give_what_they_give_whole() {
        let c = cleaner();
        let documents = [
            "Talks resume\r\nOfficials said the \u{201C}talks\u{201D} \u{2014} the third \
             round \u{2014} would continue.\u{00A0}Мэр сообщил.\r\n=====\n- Home\n- News\n- \
             Sport\n"
                .repeat(3),
            "First headline\nCafe\u{0301} body line.\n\n\nAdvertisement\nMore text.\n=====\n\
             =====\nSecond headline\nAP Photo/Someone\nIts body, which is long enough.\n"
                .to_string(),
            format!("{}\n=====\nshort\n", "a very long line ".repeat(100)),
            "no line break at all".to_string(),
            "\n\n \n=====\n".to_string(),
        ];
        for document in &documents {
            let whole = c.clean_document_in_blocks(document, false, usize::MAX);
            assert!(!whole.is_empty() || document.trim_matches(['\n', ' ', '=']).is_empty());
            for size in [1, 3, 16, 50, 64 * 1024] {
                let in_blocks = c.clean_document_in_blocks(document, false, size);
                assert_eq!(in_blocks, whole, "block size {size} of {document:?}");
            }
        }
    }

    /// Pieces cleaned on several threads and joined give the articles of the
    /// whole, in order, wherever the pieces end: inside a segment, right after a
    /// separator, in a run of separators, or in a piece with none.
    #[test]
    fn documents_cleaned_in_pieces_on_threads_give_what_they_give_whole() {
        let c = cleaner();
        let mut document = String::new();
        for i in 0..40 {
            document.push_str(&format!("Headline number {i}\n"));
            for p in 0..(i % 4) {
                document.push_str(&format!("Paragraph {p} of \u{201C}story\u{201D} {i}.\r\n"));
            }
            document.push_str(if i % 7 == 0 {
                "=====\n=====\n"
            } else {
                "=====\n"
            });
            if i % 5 == 0 {
                document.push_str("- Home\n- News\n- Sport\n");
            }
        }
        let whole = c.clean_document(&document, false);
        assert!(whole.len() > 30, "{} articles", whole.len());
        for threads in [2, 3] {
            for piece_bytes in [1, 10, 57, 300, 4096] {
                let pieces = c.clean_pieces(&document, threads, piece_bytes);
                assert_eq!(pieces, whole, "{threads} threads, pieces of {piece_bytes}");
            }
        }
        // Small documents and HTML take the one-thread path.
        assert_eq!(c.clean_document_on(&document, false, 4), whole);
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
