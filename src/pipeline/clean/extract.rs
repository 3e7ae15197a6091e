//! The main text of a web page: which part of an HTML page is the article, without
//! the site's navigation, ads, related links and comments around it.
//!
//! One walk over html5ever's tree gathers, for every element, how much text it holds,
//! how much of that is link text and how many commas; each paragraph-like block
//! (`p`, `pre`, a `div` of inline text, ...) then gives points to its parent and, less,
//! to its grandparents, so the element that holds most of the page's prose collects
//! most points. Link density lowers a score, and class and id names that mean "not
//! the article" (`comment`, `sidebar`, `related`, `share`, ...) remove a subtree
//! altogether. The best element, with those of its siblings that score close to it,
//! is the article; it is written out with the same rules as [`super::html_to_text`]
//! plus the pruning of link-heavy blocks inside it. A page where nothing scores (a
//! menu page, a tag soup) falls back to the whole page's text.
//!
//! Pure: text in, text out; no I/O. docs/config.md (`full_text`) says where it is used.

use std::collections::HashMap;

use ego_tree::{NodeId, NodeRef};
use scraper::{ElementRef, Html, Node};

use crate::pipeline::text::words;

use super::html::{
    find_end_tag, holds_headline, holds_main_content, is_link_list, nesting_cuts, TextWriter,
    WalkState, BLOCK_ELEMENTS, SKIPPED_ELEMENTS, SKIPPED_ROLES,
};

/// What [`extract_article`] found in a page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageText {
    /// The page's headline: its `og:title`, else its first `h1`, else its `<title>`.
    pub title: String,
    /// The article's text, one block a line, not normalised yet (see [`super::normalize`]).
    pub body: String,
    /// Whether an article was told apart from the rest of the page; `false` when
    /// `body` is the whole page's text.
    pub extracted: bool,
}

/// A paragraph shorter than this (in characters) scores nothing: captions, bylines
/// and buttons, not prose.
const MIN_PARAGRAPH_CHARS: usize = 25;
/// The article must score at least this, else the page is read whole.
const MIN_ARTICLE_SCORE: f32 = 10.0;

/// Class and id words that mark what is not the article. Matched on the lowercased
/// `class` and `id` joined; a subtree carrying one of these is left out unless it
/// also carries a word of [`LIKELY`] or is the page's `body`, `article` or `main`.
const UNLIKELY: &[&str] = &[
    "comment",
    "disqus",
    "sidebar",
    "side-bar",
    "related",
    "recommend",
    "share",
    "sharing",
    "social",
    "footer",
    "foot",
    "masthead",
    "menu",
    "breadcrumb",
    "newsletter",
    "subscribe",
    "signup",
    "promo",
    "sponsor",
    "advert",
    "banner",
    "popup",
    "modal",
    "cookie",
    "outbrain",
    "taboola",
    "widget",
    "trending",
    "most-popular",
    "mostpopular",
    "more-stories",
    "read-more",
    "readmore",
    "tags",
    "author-bio",
    "skip",
    "pagination",
    "pager",
    "hidden",
    "print",
    "jump",
];

/// Class and id words of article containers.
const LIKELY: &[&str] = &[
    "article", "body", "content", "entry", "main", "post", "story", "text", "blog",
];

/// Words in a class or id that weigh a candidate down, beside [`UNLIKELY`]'s.
const NEGATIVE: &[&str] = &["meta", "byline", "caption", "credit", "ad-", "ads", "nav"];

/// The article in `html`; see the module doc.
pub fn extract_article(html: &str) -> PageText {
    let whole = |title: String| PageText {
        title,
        body: super::html_to_text(html),
        extracted: false,
    };
    // Hostile nesting and an unclosed `<title>` are what `html_to_text` repairs;
    // such pages are read whole.
    if !nesting_cuts(html).is_empty() || find_end_tag(html.as_bytes(), 0, b"title").is_none() {
        return whole(String::new());
    }
    let doc = Html::parse_document(html);
    let title = page_title(&doc);
    let Some((chosen, stats)) = choose(&doc) else {
        return whole(title);
    };
    let mut out = TextWriter::default();
    for node in chosen {
        write_subtree(node, &stats, &mut out);
    }
    PageText {
        title,
        body: out.into_text(),
        extracted: true,
    }
}

/// Per element: text, link text and commas below it (kept subtrees only), and points.
#[derive(Default, Clone, Copy)]
struct Stats {
    chars: usize,
    link_chars: usize,
    commas: usize,
    /// Text not inside a block-level child: what this element shows as one paragraph.
    inline_chars: usize,
    inline_commas: usize,
    score: f32,
    scored: bool,
}

/// Every kept element's [`Stats`].
type Figures = HashMap<NodeId, Stats>;

/// A frame of the walk: an open element and what is gathered for it so far.
struct Frame<'a> {
    node: NodeRef<'a, Node>,
    stats: Stats,
    block: bool,
}

/// The article's elements in document order, or `None` when nothing scores.
fn choose(doc: &Html) -> Option<(Vec<NodeRef<'_, Node>>, Figures)> {
    let mut done: HashMap<NodeId, Stats> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut links = 0usize;
    let mut state_sectioning = 0usize;
    let mut current = Some(doc.tree.root());
    'walk: while let Some(node) = current {
        let enter = match node.value() {
            Node::Text(text) => {
                let chars = text.chars().filter(|c| !c.is_whitespace()).count();
                let commas = text
                    .chars()
                    .filter(|c| matches!(c, ',' | '，' | '、'))
                    .count();
                if let Some(top) = stack.last_mut() {
                    top.stats.chars += chars;
                    top.stats.inline_chars += chars;
                    top.stats.commas += commas;
                    top.stats.inline_commas += commas;
                    if links > 0 {
                        top.stats.link_chars += chars;
                    }
                }
                false
            }
            Node::Element(element) => {
                let name = element.name();
                // `wrap` is `Some` for every element node, which this arm matched.
                let el = ElementRef::wrap(node).expect("an element node");
                if skipped(el, state_sectioning) {
                    false
                } else {
                    if name == "a" {
                        links += 1;
                    }
                    if matches!(name, "article" | "main" | "section") {
                        state_sectioning += 1;
                    }
                    stack.push(Frame {
                        node,
                        stats: Stats::default(),
                        block: BLOCK_ELEMENTS.contains(&name) || matches!(name, "td" | "th"),
                    });
                    true
                }
            }
            Node::Document => true,
            _ => false,
        };
        if enter {
            if let Some(child) = node.first_child() {
                current = Some(child);
                continue;
            }
            close(
                node,
                &mut stack,
                &mut done,
                &mut links,
                &mut state_sectioning,
            );
        }
        let mut finished = node;
        loop {
            if let Some(sibling) = finished.next_sibling() {
                current = Some(sibling);
                continue 'walk;
            }
            match finished.parent() {
                Some(parent) => {
                    close(
                        parent,
                        &mut stack,
                        &mut done,
                        &mut links,
                        &mut state_sectioning,
                    );
                    finished = parent;
                }
                None => break 'walk,
            }
        }
    }
    let best = done
        .iter()
        .filter(|(_, s)| s.scored)
        .map(|(id, s)| (*id, final_score(s)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    if best.1 < MIN_ARTICLE_SCORE {
        return None;
    }
    let top = doc.tree.get(best.0)?;
    let Some(parent) = top.parent() else {
        return Some((vec![top], done));
    };
    // Siblings that score near the best one are parts of the same article (a lede
    // in its own box, a body split around an ad); a plain paragraph beside it too.
    let threshold = (best.1 * 0.2).max(10.0);
    let chosen = parent
        .children()
        .filter(|sibling| {
            if sibling.id() == top.id() {
                return true;
            }
            let Some(stats) = done.get(&sibling.id()) else {
                return false;
            };
            if stats.scored && final_score(stats) >= threshold {
                return true;
            }
            let is_p = ElementRef::wrap(*sibling).is_some_and(|e| e.value().name() == "p");
            is_p && stats.chars > 80 && density(stats) < 0.25
        })
        .collect();
    Some((chosen, done))
}

/// Whether a subtree is left out of the scoring and the article: what the HTML
/// cleaner skips, and containers whose class or id says they are not the article.
fn skipped(el: ElementRef, sectioning: usize) -> bool {
    let element = el.value();
    let name = element.name();
    if SKIPPED_ELEMENTS.contains(&name)
        || element.attr("hidden").is_some()
        || element
            .attr("aria-hidden")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || element.attr("role").is_some_and(|role| {
            SKIPPED_ROLES
                .iter()
                .any(|skipped| role.trim().eq_ignore_ascii_case(skipped))
        })
    {
        return true;
    }
    match name {
        "form" if !holds_main_content(el) => return true,
        "header" if sectioning == 0 && !holds_headline(el) => return true,
        "ul" | "ol" | "menu" if is_link_list(el) => return true,
        "html" | "body" | "article" | "main" | "p" | "a" | "h1" => return false,
        _ => {}
    }
    let names = class_and_id(el);
    !names.is_empty()
        && UNLIKELY.iter().any(|w| names.contains(w))
        && !LIKELY.iter().any(|w| names.contains(w))
}

fn class_and_id(el: ElementRef) -> String {
    let element = el.value();
    let mut names = String::new();
    for value in [element.attr("class"), element.attr("id")]
        .into_iter()
        .flatten()
    {
        names.push_str(&value.to_ascii_lowercase());
        names.push(' ');
    }
    names
}

/// Points for what a class or id says of an element.
fn class_weight(el: ElementRef) -> f32 {
    let names = class_and_id(el);
    if names.is_empty() {
        return 0.0;
    }
    let mut weight = 0.0;
    if LIKELY.iter().any(|w| names.contains(w)) {
        weight += 25.0;
    }
    if NEGATIVE.iter().any(|w| names.contains(w)) || UNLIKELY.iter().any(|w| names.contains(w)) {
        weight -= 25.0;
    }
    weight
}

/// Ends the frame of `node` (when it has one): folds its counts into its parent's
/// and, for a paragraph, hands out its points.
fn close<'a>(
    node: NodeRef<'a, Node>,
    stack: &mut Vec<Frame<'a>>,
    done: &mut HashMap<NodeId, Stats>,
    links: &mut usize,
    sectioning: &mut usize,
) {
    if !stack.last().is_some_and(|f| f.node.id() == node.id()) {
        return;
    }
    let Some(frame) = stack.pop() else { return };
    let name = match frame.node.value() {
        Node::Element(e) => e.name(),
        _ => "",
    };
    if name == "a" {
        *links = links.saturating_sub(1);
    }
    if matches!(name, "article" | "main" | "section") {
        *sectioning = sectioning.saturating_sub(1);
    }
    let mut stats = frame.stats;
    if let Some(prev) = done.get(&frame.node.id()) {
        stats.score += prev.score;
        stats.scored |= prev.scored;
    }
    // A block of enough inline text is a paragraph: points to its ancestors.
    let paragraph = frame.block
        && stats.inline_chars >= MIN_PARAGRAPH_CHARS
        && !matches!(name, "body" | "html" | "li" | "ul" | "ol" | "table" | "tr");
    if paragraph {
        let points =
            1.0 + stats.inline_commas as f32 + (stats.inline_chars as f32 / 100.0).min(3.0);
        for (level, ancestor) in stack.iter_mut().rev().take(3).enumerate() {
            let share = match level {
                0 => points,
                1 => points / 2.0,
                _ => points / (level as f32 * 3.0),
            };
            let entry = done.entry(ancestor.node.id()).or_default();
            if !entry.scored {
                entry.scored = true;
                entry.score += initial_score(ancestor.node);
            }
            entry.score += share;
        }
    }
    if let Some(parent) = stack.last_mut() {
        parent.stats.chars += stats.chars;
        parent.stats.link_chars += stats.link_chars;
        parent.stats.commas += stats.commas;
        if !frame.block {
            parent.stats.inline_chars += stats.inline_chars;
            parent.stats.inline_commas += stats.inline_commas;
        }
    }
    let entry = done.entry(frame.node.id()).or_default();
    let (score, scored) = (entry.score, entry.scored);
    *entry = Stats {
        score,
        scored,
        ..stats
    };
}

/// A candidate's points before its paragraphs': its kind and its class and id.
fn initial_score(node: NodeRef<Node>) -> f32 {
    let Some(el) = ElementRef::wrap(node) else {
        return 0.0;
    };
    let kind = match el.value().name() {
        "article" | "main" => 10.0,
        "div" => 5.0,
        "pre" | "td" | "blockquote" => 3.0,
        "address" | "ol" | "ul" | "dl" | "dd" | "dt" | "li" | "form" => -3.0,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "th" => -5.0,
        _ => 0.0,
    };
    kind + class_weight(el)
}

fn density(stats: &Stats) -> f32 {
    if stats.chars == 0 {
        0.0
    } else {
        stats.link_chars as f32 / stats.chars as f32
    }
}

fn final_score(stats: &Stats) -> f32 {
    stats.score * (1.0 - density(stats))
}

/// The headline: `og:title` (what the site itself calls the article), else the
/// first `h1`, else `<title>`.
fn page_title(doc: &Html) -> String {
    let mut h1 = None;
    let mut title = None;
    for node in doc.tree.nodes() {
        let Node::Element(element) = node.value() else {
            continue;
        };
        match element.name() {
            "meta" => {
                let key = element.attr("property").or_else(|| element.attr("name"));
                if key.is_some_and(|k| k.eq_ignore_ascii_case("og:title")) {
                    if let Some(content) = element.attr("content").filter(|c| !c.trim().is_empty())
                    {
                        return content.trim().to_string();
                    }
                }
            }
            "h1" if h1.is_none() => h1 = ElementRef::wrap(node).map(|e| e.text().collect()),
            "title" if title.is_none() => {
                title = ElementRef::wrap(node).map(|e| e.text().collect())
            }
            _ => {}
        }
    }
    h1.filter(|t: &String| !t.trim().is_empty())
        .or(title)
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Writes the text of the subtree at `root`, with the cleaner's rules plus the
/// pruning of [`pruned`] blocks.
fn write_subtree(root: NodeRef<Node>, stats: &HashMap<NodeId, Stats>, out: &mut TextWriter) {
    let mut state = WalkState::default();
    let mut current = Some(root);
    'walk: while let Some(node) = current {
        let skip = ElementRef::wrap(node).is_some_and(|el| skipped(el, 1) || pruned(el, stats));
        if !skip && state.open(node.value(), false, out) {
            if let Some(child) = node.first_child() {
                current = Some(child);
                continue;
            }
            state.close(node.value(), out);
        }
        if node.id() == root.id() {
            break;
        }
        let mut finished = node;
        loop {
            if let Some(sibling) = finished.next_sibling() {
                current = Some(sibling);
                continue 'walk;
            }
            match finished.parent() {
                Some(parent) => {
                    state.close(parent.value(), out);
                    if parent.id() == root.id() {
                        break 'walk;
                    }
                    finished = parent;
                }
                None => break 'walk,
            }
        }
    }
    out.newline();
}

/// Blocks inside the article that are not its prose: mostly links (a "read more"
/// box, a list of related stories) or few words and a negative class.
fn pruned(el: ElementRef, stats: &HashMap<NodeId, Stats>) -> bool {
    let name = el.value().name();
    if !matches!(
        name,
        "div" | "section" | "ul" | "ol" | "table" | "aside" | "header" | "figure" | "dl"
    ) {
        return false;
    }
    let Some(s) = stats.get(&el.id()) else {
        return false;
    };
    if s.commas >= 10 || s.chars == 0 {
        return false;
    }
    let weight = class_weight(el);
    let density = density(s);
    weight < 0.0 || (weight < 25.0 && density > 0.2) || density > 0.5
}

/// Token-level F1 between `got` and `expected`: the harmonic mean of precision and
/// recall over their words (the pipeline's own Unicode words, NFKC and case folded),
/// counted as multisets. The quality measure of BENCHMARKS.md's extraction figures.
pub fn token_f1(got: &str, expected: &str) -> f64 {
    let count = |text: &str| {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for word in words(text) {
            *counts.entry(word.folded).or_default() += 1;
        }
        counts
    };
    let (got, expected) = (count(got), count(expected));
    let got_total: usize = got.values().sum();
    let expected_total: usize = expected.values().sum();
    let common: usize = got
        .iter()
        .map(|(word, n)| (*n).min(expected.get(word).copied().unwrap_or(0)))
        .sum();
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / got_total as f64;
    let recall = common as f64 / expected_total as f64;
    2.0 * precision * recall / (precision + recall)
}
