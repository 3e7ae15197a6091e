//! The main text of a web page: which part of an HTML page is the article, without
//! the site's navigation, ads, related links and comments around it.
//!
//! One walk over the page's tree (src/pipeline/clean/tree.rs: html5ever's tokenizer
//! into a compact tree of our own) gathers, for every element, how much text it holds,
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

use crate::pipeline::text::words;

use super::tree::{Data, Element, Kind, Tree, BLOCK, HIDDEN, HOLDS_H1, HOLDS_MAIN, NONE};

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
    // An unclosed `<title>` is what `html_to_text` repairs; such pages are read whole.
    if !has_end_tag(html.as_bytes(), b"title") {
        return whole(String::new());
    }
    let tree = Tree::parse(html);
    let title = page_title(&tree);
    let Some((chosen, stats)) = choose(&tree) else {
        return whole(title);
    };
    let mut out = Writer::default();
    for node in chosen {
        write_subtree(&tree, node, &stats, &mut out);
    }
    PageText {
        title,
        body: out.text,
        extracted: true,
    }
}

/// Whether `bytes` holds `</name` (ASCII case-insensitive).
fn has_end_tag(bytes: &[u8], name: &[u8]) -> bool {
    bytes
        .windows(name.len() + 2)
        .any(|w| w[0] == b'<' && w[1] == b'/' && w[2..].eq_ignore_ascii_case(name))
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
    /// The walk entered the element (it is not in a skipped subtree).
    kept: bool,
}

/// Every node's [`Stats`], by node index.
type Figures = Vec<Stats>;

/// A frame of the walk: an open element and what is gathered for it so far.
struct Frame {
    node: u32,
    stats: Stats,
    block: bool,
}

/// The state of [`choose`]'s walk.
struct Walk {
    done: Figures,
    stack: Vec<Frame>,
    links: usize,
    sectioning: usize,
}

/// The article's elements in document order, or `None` when nothing scores.
fn choose(tree: &Tree) -> Option<(Vec<u32>, Figures)> {
    let mut walk = Walk {
        done: vec![Stats::default(); tree.nodes.len()],
        stack: Vec::new(),
        links: 0,
        sectioning: 0,
    };
    let mut current = Some(0u32);
    'walk: while let Some(node) = current {
        let enter = match &tree.nodes[node as usize].data {
            Data::Text { start, end } => {
                let text = tree.text_of(*start, *end);
                let (chars, commas) = count(text);
                if let Some(top) = walk.stack.last_mut() {
                    top.stats.chars += chars;
                    top.stats.inline_chars += chars;
                    top.stats.commas += commas;
                    top.stats.inline_commas += commas;
                    if walk.links > 0 {
                        top.stats.link_chars += chars;
                    }
                }
                false
            }
            Data::Element(element) => {
                if skipped(tree, element, walk.sectioning) {
                    false
                } else {
                    if element.kind == Kind::A {
                        walk.links += 1;
                    }
                    if matches!(element.kind, Kind::Article | Kind::Main | Kind::Section) {
                        walk.sectioning += 1;
                    }
                    walk.stack.push(Frame {
                        node,
                        stats: Stats::default(),
                        block: element.flags & BLOCK != 0
                            || matches!(element.kind, Kind::Td | Kind::Th),
                    });
                    true
                }
            }
            Data::Document => true,
        };
        if enter {
            let first = tree.nodes[node as usize].first_child;
            if first != NONE {
                current = Some(first);
                continue;
            }
            walk.close(tree, node);
        }
        let mut finished = node;
        loop {
            let next = tree.nodes[finished as usize].next_sibling;
            if next != NONE {
                current = Some(next);
                continue 'walk;
            }
            let parent = tree.nodes[finished as usize].parent;
            if parent == NONE {
                break 'walk;
            }
            walk.close(tree, parent);
            finished = parent;
        }
    }
    let done = walk.done;
    let best = done
        .iter()
        .enumerate()
        .filter(|(_, s)| s.scored)
        .map(|(id, s)| (id as u32, final_score(s)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    if best.1 < MIN_ARTICLE_SCORE {
        return None;
    }
    let top = best.0;
    let parent = tree.nodes[top as usize].parent;
    if parent == NONE {
        return Some((vec![top], done));
    }
    // Siblings that score near the best one are parts of the same article (a lede
    // in its own box, a body split around an ad); a plain paragraph beside it too.
    let threshold = (best.1 * 0.2).max(10.0);
    let chosen = tree
        .children(parent)
        .filter(|&sibling| {
            if sibling == top {
                return true;
            }
            let stats = &done[sibling as usize];
            if !stats.kept {
                return false;
            }
            if stats.scored && final_score(stats) >= threshold {
                return true;
            }
            let is_p = tree.element(sibling).is_some_and(|e| e.kind == Kind::P);
            is_p && stats.chars > 80 && density(stats) < 0.25
        })
        .collect();
    Some((chosen, done))
}

/// Characters that are not whitespace, and commas, in `text`.
fn count(text: &str) -> (usize, usize) {
    let (mut chars, mut commas) = (0, 0);
    for c in text.chars() {
        if !c.is_whitespace() {
            chars += 1;
        }
        if matches!(c, ',' | '，' | '、') {
            commas += 1;
        }
    }
    (chars, commas)
}

/// Whether a subtree is left out of the scoring and the article: what the HTML
/// cleaner skips, and containers whose class or id says they are not the article.
fn skipped(tree: &Tree, el: &Element, sectioning: usize) -> bool {
    if el.flags & HIDDEN != 0 {
        return true;
    }
    match el.kind {
        Kind::Form if el.flags & HOLDS_MAIN == 0 => return true,
        Kind::Header if sectioning == 0 && el.flags & HOLDS_H1 == 0 => return true,
        Kind::Ul | Kind::Ol | Kind::Menu if tree.is_link_list(el) => return true,
        Kind::Html | Kind::Body | Kind::Article | Kind::Main | Kind::P | Kind::A | Kind::H1 => {
            return false
        }
        _ => {}
    }
    let names = tree.class_and_id(el);
    !names.is_empty()
        && UNLIKELY.iter().any(|w| names.contains(w))
        && !LIKELY.iter().any(|w| names.contains(w))
}

/// Points for what a class or id says of an element.
fn class_weight(tree: &Tree, el: &Element) -> f32 {
    let names = tree.class_and_id(el);
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

impl Walk {
    /// Ends the frame of `node` (when it has one): folds its counts into its
    /// parent's and, for a paragraph, hands out its points.
    fn close(&mut self, tree: &Tree, node: u32) {
        if self.stack.last().is_none_or(|f| f.node != node) {
            return;
        }
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let kind = tree.element(node).map_or(Kind::Other, |e| e.kind);
        if kind == Kind::A {
            self.links = self.links.saturating_sub(1);
        }
        if matches!(kind, Kind::Article | Kind::Main | Kind::Section) {
            self.sectioning = self.sectioning.saturating_sub(1);
        }
        let mut stats = frame.stats;
        let prev = self.done[node as usize];
        stats.score += prev.score;
        stats.scored |= prev.scored;
        // A block of enough inline text is a paragraph: points to its ancestors.
        let paragraph = frame.block
            && stats.inline_chars >= MIN_PARAGRAPH_CHARS
            && !matches!(
                kind,
                Kind::Body | Kind::Html | Kind::Li | Kind::Ul | Kind::Ol | Kind::Table | Kind::Tr
            );
        if paragraph {
            let points =
                1.0 + stats.inline_commas as f32 + (stats.inline_chars as f32 / 100.0).min(3.0);
            for (level, ancestor) in self.stack.iter().rev().take(3).enumerate() {
                let share = match level {
                    0 => points,
                    1 => points / 2.0,
                    _ => points / (level as f32 * 3.0),
                };
                let entry = &mut self.done[ancestor.node as usize];
                if !entry.scored {
                    entry.scored = true;
                    entry.score += initial_score(tree, ancestor.node);
                }
                entry.score += share;
            }
        }
        if let Some(parent) = self.stack.last_mut() {
            parent.stats.chars += stats.chars;
            parent.stats.link_chars += stats.link_chars;
            parent.stats.commas += stats.commas;
            if !frame.block {
                parent.stats.inline_chars += stats.inline_chars;
                parent.stats.inline_commas += stats.inline_commas;
            }
        }
        let entry = &mut self.done[node as usize];
        let (score, scored) = (entry.score, entry.scored);
        *entry = Stats {
            score,
            scored,
            kept: true,
            ..stats
        };
    }
}

/// A candidate's points before its paragraphs': its kind and its class and id.
fn initial_score(tree: &Tree, node: u32) -> f32 {
    let Some(el) = tree.element(node) else {
        return 0.0;
    };
    let kind = match &*el.name {
        "article" | "main" => 10.0,
        "div" => 5.0,
        "pre" | "td" | "blockquote" => 3.0,
        "address" | "ol" | "ul" | "dl" | "dd" | "dt" | "li" | "form" => -3.0,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "th" => -5.0,
        _ => 0.0,
    };
    kind + class_weight(tree, el)
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
fn page_title(tree: &Tree) -> String {
    if let Some(title) = &tree.og_title {
        return title.clone();
    }
    let mut h1 = None;
    let mut title = None;
    for (index, node) in tree.nodes.iter().enumerate() {
        let Data::Element(element) = &node.data else {
            continue;
        };
        match element.kind {
            Kind::H1 if h1.is_none() => h1 = Some(tree.subtree_text(index as u32)),
            Kind::Title if title.is_none() => title = Some(tree.subtree_text(index as u32)),
            _ => {}
        }
        if h1.is_some() && title.is_some() {
            break;
        }
    }
    h1.filter(|t: &String| !t.trim().is_empty())
        .or(title)
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The article's text, written with the cleaner's rules (html.rs): one block a
/// line, `br` a line break, table cells apart, source line breaks only inside
/// `pre`. Avoids piling up empty lines.
#[derive(Default)]
struct Writer {
    text: String,
    /// Open `pre`-like elements: their line breaks are content.
    pre: usize,
}

impl Writer {
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

    fn text(&mut self, text: &str) {
        if self.pre > 0 {
            self.text.push_str(text);
        } else {
            self.text.extend(text.chars().map(|c| match c {
                '\n' | '\r' | '\t' | '\u{000C}' => ' ',
                c => c,
            }));
        }
    }

    fn open(&mut self, el: &Element) {
        match &*el.name {
            "br" => self.newline(),
            "td" | "th" => self.space(),
            "pre" | "listing" | "xmp" | "plaintext" => self.pre += 1,
            _ => {}
        }
        if el.flags & BLOCK != 0 {
            self.newline();
        }
    }

    fn close(&mut self, el: &Element) {
        match &*el.name {
            "td" | "th" => self.space(),
            "pre" | "listing" | "xmp" | "plaintext" => self.pre = self.pre.saturating_sub(1),
            _ => {}
        }
        if el.flags & BLOCK != 0 {
            self.newline();
        }
    }
}

/// Writes the text of the subtree at `root`, with the cleaner's rules plus the
/// pruning of [`pruned`] blocks.
fn write_subtree(tree: &Tree, root: u32, stats: &Figures, out: &mut Writer) {
    let mut current = Some(root);
    'walk: while let Some(node) = current {
        let enter = match &tree.nodes[node as usize].data {
            Data::Document => true,
            Data::Text { start, end } => {
                out.text(tree.text_of(*start, *end));
                false
            }
            Data::Element(el) => {
                let keep = !skipped(tree, el, 1) && !pruned(tree, node, el, stats);
                if keep {
                    out.open(el);
                }
                keep
            }
        };
        if enter {
            let first = tree.nodes[node as usize].first_child;
            if first != NONE {
                current = Some(first);
                continue;
            }
            if let Some(el) = tree.element(node) {
                out.close(el);
            }
        }
        if node == root {
            break;
        }
        let mut finished = node;
        loop {
            let next = tree.nodes[finished as usize].next_sibling;
            if next != NONE {
                current = Some(next);
                continue 'walk;
            }
            let parent = tree.nodes[finished as usize].parent;
            if parent == NONE {
                break 'walk;
            }
            if let Some(el) = tree.element(parent) {
                out.close(el);
            }
            if parent == root {
                break 'walk;
            }
            finished = parent;
        }
    }
    out.newline();
}

/// Blocks inside the article that are not its prose: mostly links (a "read more"
/// box, a list of related stories) or few words and a negative class.
fn pruned(tree: &Tree, node: u32, el: &Element, stats: &Figures) -> bool {
    if !matches!(
        &*el.name,
        "div" | "section" | "ul" | "ol" | "table" | "aside" | "header" | "figure" | "dl"
    ) {
        return false;
    }
    let s = &stats[node as usize];
    if !s.kept || s.commas >= 10 || s.chars == 0 {
        return false;
    }
    let weight = class_weight(tree, el);
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

#[cfg(test)]
mod tests {
    use super::super::tree::{Data, Tree, MAX_DEPTH};
    use super::*;

    /// Two long paragraphs of prose, enough to score as an article.
    const PROSE: [&str; 2] = [
        "The council voted on Tuesday, after a long debate, to rebuild the old bridge, \
         which has been closed since the flood, and to open it again by next spring.",
        "Engineers said the work would cost more than planned, because the river bed \
         has moved, but that the new piers would stand for a century, if maintained.",
    ];

    fn page(body: &str) -> String {
        format!("<!DOCTYPE html><html><head><title>Bridge</title></head><body>{body}</body></html>")
    }

    /// The names of an element's element children, in order.
    fn child_names(tree: &Tree, node: u32) -> Vec<String> {
        tree.children(node)
            .filter_map(|c| tree.element(c).map(|e| e.name.to_string()))
            .collect()
    }

    fn first(tree: &Tree, name: &str) -> u32 {
        (0..tree.nodes.len() as u32)
            .find(|&n| tree.element(n).is_some_and(|e| &*e.name == name))
            .unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn extract_reads_the_article_of_a_page_whose_paragraphs_and_items_are_never_closed() {
        let html = page(&format!(
            "<ul class=menu><li><a href=/a>Home<li><a href=/b>World</ul>\
             <div class=article><h1>Bridge to reopen</h1><p>{}<p>{}</div>\
             <div class=sidebar><p>Read our other stories about bridges, rivers and floods, \
             here and there, every day.</div>",
            PROSE[0], PROSE[1]
        ));
        let page = extract_article(&html);
        assert!(page.extracted, "{page:?}");
        assert_eq!(page.title, "Bridge to reopen");
        assert!(
            page.body.contains(PROSE[0]) && page.body.contains(PROSE[1]),
            "{page:?}"
        );
        assert!(!page.body.contains("other stories"), "{page:?}");
        assert!(!page.body.contains("World"), "{page:?}");
    }

    #[test]
    fn extract_tree_implies_the_end_tags_a_browser_does() {
        let tree = Tree::parse(
            "<html><body><p>one<div>block</div><ul><li>a<li>b<ul><li>inner</ul><li>c</ul>\
             <table><tr><td>1<td>2<tr><td>3</table><dl><dt>t<dd>d</dl><h2>x<h3>y</h3>",
        );
        let body = first(&tree, "body");
        // The `div` ends the `p` (it is not inside it); the first `ul` has three items.
        assert_eq!(
            child_names(&tree, body),
            ["p", "div", "ul", "table", "dl", "h2", "h3"]
        );
        let ul = first(&tree, "ul");
        assert_eq!(child_names(&tree, ul), ["li", "li", "li"]);
        let table = first(&tree, "table");
        assert_eq!(child_names(&tree, table), ["tr", "tr"]);
        let tr = first(&tree, "tr");
        assert_eq!(child_names(&tree, tr), ["td", "td"]);
        assert_eq!(child_names(&tree, first(&tree, "dl")), ["dt", "dd"]);
    }

    #[test]
    fn extract_tree_survives_misnested_and_stray_tags() {
        let tree = Tree::parse(
            "<body><div><b>bold <i>both</b> italic</i> rest</span></p></div>after</td></body>",
        );
        let text: String = tree.subtree_text(0);
        assert_eq!(text, "bold both italic restafter");
        // The stray `</span>`, `</p>` and `</td>` close nothing they do not match:
        // the `div` still holds the text before its own end tag, not what follows.
        let div = first(&tree, "div");
        assert_eq!(tree.subtree_text(div), "bold both italic rest");
        // An inline end tag does not end a block opened inside it.
        let tree = Tree::parse("<body><span><div>in</span>still</div>out");
        assert_eq!(tree.subtree_text(first(&tree, "div")), "instill");
    }

    #[test]
    fn extract_tree_keeps_no_script_or_style_text_and_reads_raw_text_as_text() {
        let tree = Tree::parse(
            "<head><title>A &amp; B</title><style>p { color: red }</style></head>\
             <body><script>if (a < b) { document.write('<p>no</p>') }</script>\
             <p>yes &lt;p&gt;</p><textarea><b>x</b></textarea>",
        );
        assert_eq!(tree.subtree_text(0), "A & Byes <p>");
        let body = first(&tree, "body");
        assert_eq!(child_names(&tree, body), ["script", "p", "textarea"]);
    }

    #[test]
    fn extract_reads_a_page_that_never_closes_its_title_whole() {
        let html = format!(
            "<html><head><title>Bridge<body><p>{}<p>{}",
            PROSE[0], PROSE[1]
        );
        let page = extract_article(&html);
        assert!(!page.extracted);
        assert!(page.body.contains(PROSE[1]), "{page:?}");
    }

    #[test]
    fn extract_tree_caps_nesting_depth_and_keeps_the_text() {
        let depth = 100_000;
        let html = format!(
            "<body>{}<p>{}</p><p>{}</p>{}",
            "<div>".repeat(depth),
            PROSE[0],
            PROSE[1],
            "</div>".repeat(depth)
        );
        let tree = Tree::parse(&html);
        let mut deepest = 0;
        for node in 0..tree.nodes.len() {
            let mut depth = 0;
            let mut up = tree.nodes[node].parent;
            while up != super::NONE {
                depth += 1;
                up = tree.nodes[up as usize].parent;
            }
            deepest = deepest.max(depth);
        }
        assert!(deepest <= MAX_DEPTH + 2, "{deepest}");
        let text = tree.subtree_text(0);
        assert_eq!(text, format!("{}{}", PROSE[0], PROSE[1]));
        let page = extract_article(&page(&html));
        assert!(page.body.contains(PROSE[0]), "{page:?}");
    }

    #[test]
    fn extract_returns_on_5_mb_of_nested_divs_open_and_closed() {
        // About a million `<div>`s, half of them never closed, around an article.
        let half = 5 * 1024 * 1024 / 2 / "<div>".len();
        let mut html = String::from("<!DOCTYPE html><html><head><title>t</title></head><body>");
        html.push_str(&"<div>".repeat(half));
        html.push_str(&format!("<p>{}</p><p>{}</p>", PROSE[0], PROSE[1]));
        html.push_str(&"<div class=x>".repeat(half / 2));
        html.push_str(&"</div>".repeat(half));
        assert!(html.len() > 5_000_000);
        let page = extract_article(&html);
        assert!(
            page.body.contains(PROSE[0]),
            "{}",
            &page.body[..200.min(page.body.len())]
        );
        let tree = Tree::parse(&html);
        let texts = tree
            .nodes
            .iter()
            .filter(|n| matches!(n.data, Data::Text { .. }))
            .count();
        // The title and the two paragraphs.
        assert_eq!(texts, 3);
    }
}
