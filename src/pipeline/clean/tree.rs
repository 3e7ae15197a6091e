//! A compact HTML tree for the article extractor ([`super::extract`]), built from
//! html5ever's tokenizer without its tree builder.
//!
//! Why not html5ever's tree: its tree builder (the spec's insertion modes, the
//! active formatting elements, a reference-counted node per element and every
//! attribute kept) was three quarters of the extractor's time (BENCHMARKS.md,
//! article extraction). The scorer needs much less: element names, parent and
//! sibling links, text, and a handful of attributes. So nodes live in one `Vec` in
//! document order (an element's subtree is the contiguous index range
//! `index..end`), text lives in one shared `String`, and only the attributes the
//! scorer reads are kept (class and id, joined and lowercased; `hidden`,
//! `aria-hidden` and `role` as one flag; `og:title`).
//!
//! Tree construction is the part of the spec that shapes real pages' structure,
//! simplified: void elements, the end tags a browser implies (`p` before a block,
//! `li`, `dd`/`dt`, table cells and rows, headings, a nested `a`), end tags matched
//! within the spec's scopes (an end tag that matches nothing open is ignored; an
//! inline end tag does not close a block), an implied `body`, and the raw text of
//! `script`, `style`, `title`, ... switched in the tokenizer the way the tree builder
//! does. Structure that a browser repairs further (adoption of misnested formatting
//! elements, foster parenting out of tables) is kept as written: the text is the
//! same, only the shape differs, and the scorer reads text per block.
//!
//! Depth is capped at [`MAX_DEPTH`]: deeper start tags become empty leaves and their
//! content goes to the deepest open element, so hostile nesting costs at most
//! `MAX_DEPTH` steps per end tag and no stack (nothing here recurses).

use std::collections::HashMap;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
    TokenizerResult,
};
use html5ever::LocalName;

use super::html::{BLOCK_ELEMENTS, SECTIONING_ELEMENTS, SKIPPED_ELEMENTS, SKIPPED_ROLES};

/// No node (a missing parent, child or sibling).
pub(super) const NONE: u32 = u32::MAX;

/// Deepest element nesting kept. Blink caps its DOM depth at the same value, and
/// html.rs cuts documents deeper than this for the same reason.
pub(super) const MAX_DEPTH: usize = 512;

/// One node of [`Tree`].
pub(super) struct Node {
    pub parent: u32,
    pub first_child: u32,
    last_child: u32,
    pub next_sibling: u32,
    pub data: Data,
}

pub(super) enum Data {
    Document,
    /// `tree.text[start..end]`.
    Text {
        start: u32,
        end: u32,
    },
    Element(Box<Element>),
}

pub(super) struct Element {
    pub name: LocalName,
    pub kind: Kind,
    /// Set at the start tag: see the `HIDDEN`, `BLOCK`, ... constants.
    pub flags: u8,
    /// Lowercased `class` and `id`, each followed by a space: `tree.names[start..end]`.
    names: (u32, u32),
    /// One past the last node of this element's subtree.
    pub end: u32,
    /// Letters (alphanumeric characters) of the text below, for lists only (see
    /// [`Tree::is_link_list`]), and those inside links.
    letters: u32,
    link_letters: u32,
}

/// Skipped by what the element itself says: an element of [`SKIPPED_ELEMENTS`],
/// `hidden`, `aria-hidden="true"` or a [`SKIPPED_ROLES`] role.
pub(super) const HIDDEN: u8 = 1;
/// In [`BLOCK_ELEMENTS`].
pub(super) const BLOCK: u8 = 2;
/// In [`SECTIONING_ELEMENTS`].
pub(super) const SECTIONING: u8 = 4;
/// Has an `article`, `main` or `h1` below it (`form`s wrapping the page).
pub(super) const HOLDS_MAIN: u8 = 8;
/// Has an `h1` below it (a `header` holding the headline).
pub(super) const HOLDS_H1: u8 = 16;
/// For the tree construction: the spec's "special" elements (an inline end tag
/// does not close them), the ends of its default scope, and `svg`/`math`.
const SPECIAL: u8 = 32;
const SCOPE: u8 = 64;
const FOREIGN: u8 = 128;

/// The element names the extractor and the tree construction treat specially;
/// everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    A,
    Address,
    Article,
    Blockquote,
    Body,
    Br,
    Dd,
    Div,
    Dl,
    Dt,
    Figure,
    Form,
    H1,
    Heading,
    Head,
    Header,
    Html,
    Li,
    Main,
    Menu,
    Ol,
    P,
    Pre,
    Section,
    Table,
    TableSection,
    Td,
    Th,
    Title,
    Tr,
    Ul,
    Aside,
    Other,
}

/// What the tree construction needs to know of an element name.
#[derive(Clone, Copy)]
struct Class {
    kind: Kind,
    flags: u8,
    /// No end tag, no children.
    void: bool,
    /// A start tag of it closes an open `p` (the spec's "close a p element").
    closes_p: bool,
    raw: Option<Raw>,
    /// May appear in `head` without ending it.
    in_head: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Raw {
    Rcdata,
    Rawtext,
    Script,
    Plaintext,
}

fn classify(name: &str) -> Class {
    let kind = match name {
        "a" => Kind::A,
        "address" => Kind::Address,
        "article" => Kind::Article,
        "aside" => Kind::Aside,
        "blockquote" => Kind::Blockquote,
        "body" => Kind::Body,
        "br" => Kind::Br,
        "dd" => Kind::Dd,
        "div" => Kind::Div,
        "dl" => Kind::Dl,
        "dt" => Kind::Dt,
        "figure" => Kind::Figure,
        "form" => Kind::Form,
        "h1" => Kind::H1,
        "h2" | "h3" | "h4" | "h5" | "h6" => Kind::Heading,
        "head" => Kind::Head,
        "header" => Kind::Header,
        "html" => Kind::Html,
        "li" => Kind::Li,
        "main" => Kind::Main,
        "menu" => Kind::Menu,
        "ol" => Kind::Ol,
        "p" => Kind::P,
        "pre" => Kind::Pre,
        "section" => Kind::Section,
        "table" => Kind::Table,
        "tbody" | "thead" | "tfoot" => Kind::TableSection,
        "td" => Kind::Td,
        "th" => Kind::Th,
        "title" => Kind::Title,
        "tr" => Kind::Tr,
        "ul" => Kind::Ul,
        _ => Kind::Other,
    };
    let mut flags = 0;
    if SKIPPED_ELEMENTS.contains(&name) {
        flags |= HIDDEN;
    }
    if BLOCK_ELEMENTS.contains(&name) {
        flags |= BLOCK;
    }
    if SECTIONING_ELEMENTS.contains(&name) {
        flags |= SECTIONING;
    }
    let foreign = matches!(name, "svg" | "math");
    if foreign {
        flags |= FOREIGN;
    }
    let void = matches!(
        name,
        "area"
            | "base"
            | "basefont"
            | "bgsound"
            | "br"
            | "col"
            | "embed"
            | "frame"
            | "hr"
            | "image"
            | "img"
            | "input"
            | "keygen"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
    );
    let closes_p = matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "center"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "header"
            | "hgroup"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "p"
            | "search"
            | "section"
            | "summary"
            | "ul"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "pre"
            | "listing"
            | "form"
            | "plaintext"
            | "table"
            | "hr"
            | "xmp"
            | "li"
            | "dd"
            | "dt"
    );
    let scope = matches!(
        name,
        "applet" | "caption" | "html" | "table" | "td" | "th" | "marquee" | "object" | "template"
    );
    let special = scope
        || closes_p
        || void
        || matches!(
            name,
            "body"
                | "button"
                | "col"
                | "colgroup"
                | "frameset"
                | "head"
                | "iframe"
                | "noembed"
                | "noframes"
                | "noscript"
                | "script"
                | "select"
                | "style"
                | "tbody"
                | "textarea"
                | "tfoot"
                | "thead"
                | "title"
                | "tr"
        );
    let raw = match name {
        "title" | "textarea" => Some(Raw::Rcdata),
        "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => Some(Raw::Rawtext),
        "script" => Some(Raw::Script),
        "plaintext" => Some(Raw::Plaintext),
        _ => None,
    };
    let in_head = matches!(
        name,
        "base"
            | "basefont"
            | "bgsound"
            | "link"
            | "meta"
            | "title"
            | "noscript"
            | "noframes"
            | "style"
            | "script"
            | "template"
            | "head"
    );
    if special {
        flags |= SPECIAL;
    }
    if scope {
        flags |= SCOPE;
    }
    Class {
        kind,
        flags,
        void,
        closes_p,
        raw,
        in_head,
    }
}

/// A parsed page; see the module doc.
pub(super) struct Tree {
    pub nodes: Vec<Node>,
    pub text: String,
    names: String,
    /// The first non-empty `og:title` (`<meta property="og:title" content=...>`).
    pub og_title: Option<String>,
}

impl Tree {
    /// Parses `html`. `<title>` content is raw text up to `</title>`, as in a
    /// browser: pages that never close their title are the caller's to repair.
    pub fn parse(html: &str) -> Tree {
        let builder = Builder {
            tree: Tree {
                nodes: vec![Node {
                    parent: NONE,
                    first_child: NONE,
                    last_child: NONE,
                    next_sibling: NONE,
                    data: Data::Document,
                }],
                text: String::with_capacity(html.len() / 4),
                names: String::new(),
                og_title: None,
            },
            stack: Vec::new(),
            classes: HashMap::new(),
            drop_text: false,
            open_p: 0,
            open_a: 0,
            open_lists: 0,
            open_forms: 0,
            open_foreign: 0,
            html: false,
            head: NONE,
            body: NONE,
            skip_raw: None,
        };
        let mut tokenizer = Tokenizer::new(builder, TokenizerOpts::default());
        let mut input = BufferQueue::default();
        input.push_back(StrTendril::from_slice(html));
        // The builder stops the tokenizer after the start tag of a script or style
        // whose text is never kept; its raw text is then passed over here, up to
        // the end tag a tokenizer would find, instead of being tokenized and
        // dropped. On many news pages scripts are half the bytes or more.
        while let TokenizerResult::Script(()) = tokenizer.feed(&mut input) {
            let Some(raw) = tokenizer.sink.skip_raw.take() else {
                continue;
            };
            while let Some(buffer) = input.pop_front() {
                if let Some(end) = raw_text_end(buffer.as_bytes(), raw) {
                    let rest = buffer.len32() - end as u32;
                    if rest > 0 {
                        input.push_front(buffer.subtendril(end as u32, rest));
                    }
                    break;
                }
            }
        }
        tokenizer.end();
        tokenizer.sink.finish()
    }

    pub fn element(&self, node: u32) -> Option<&Element> {
        match &self.nodes.get(node as usize)?.data {
            Data::Element(element) => Some(element),
            _ => None,
        }
    }

    /// The element's lowercased class and id, each followed by a space.
    pub fn class_and_id(&self, element: &Element) -> &str {
        self.names
            .get(element.names.0 as usize..element.names.1 as usize)
            .unwrap_or_default()
    }

    pub fn text_of(&self, start: u32, end: u32) -> &str {
        self.text
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    /// All the text below `node`, in document order.
    pub fn subtree_text(&self, node: u32) -> String {
        let end = match self.nodes.get(node as usize).map(|n| &n.data) {
            Some(Data::Element(e)) => e.end,
            Some(Data::Document) => self.nodes.len() as u32,
            _ => node + 1,
        };
        let mut out = String::new();
        for n in self
            .nodes
            .get(node as usize..end as usize)
            .unwrap_or_default()
        {
            if let Data::Text { start, end } = n.data {
                out.push_str(self.text_of(start, end));
            }
        }
        out
    }

    /// The children of `node`, in order.
    pub fn children(&self, node: u32) -> impl Iterator<Item = u32> + '_ {
        let first = self
            .nodes
            .get(node as usize)
            .map_or(NONE, |n| n.first_child);
        std::iter::successors((first != NONE).then_some(first), |&n| {
            let next = self.nodes[n as usize].next_sibling;
            (next != NONE).then_some(next)
        })
    }

    /// Whether all the words of a list are link text (the rule of html.rs's
    /// `is_link_list`): a menu or a list of related links.
    pub fn is_link_list(&self, list: &Element) -> bool {
        list.letters > 0 && list.link_letters >= list.letters
    }
}

/// The [`TokenSink`] that builds a [`Tree`].
struct Builder {
    tree: Tree,
    /// Open elements, innermost last (the document node is implied below them).
    stack: Vec<u32>,
    classes: HashMap<LocalName, Class>,
    /// Inside the raw text of a skipped element (`script`, `style`, ...): its
    /// text is never read, so it is not kept.
    drop_text: bool,
    open_p: usize,
    open_a: usize,
    open_lists: usize,
    open_forms: usize,
    open_foreign: usize,
    html: bool,
    head: u32,
    body: u32,
    /// Set with a start tag whose raw text the caller passes over (see [`Tree::parse`]).
    skip_raw: Option<RawEnd>,
}

/// The raw text elements whose text [`Tree::parse`] passes over untokenized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RawEnd {
    Script,
    Style,
}

/// Where the raw text at the start of `text` ends: the `<` of the end tag that
/// closes it as the HTML tokenizer reads it, or `None` when it runs to the end.
///
/// `style` ends at the first `</style` followed by a space, `/` or `>`. `script`
/// follows the script data states: after `<!--`, a `<script` opens a nested
/// ("double escaped") part where `</script` does not end the element, until
/// `-->` or that `</script`.
fn raw_text_end(text: &[u8], raw: RawEnd) -> Option<usize> {
    fn tag_at(text: &[u8], at: usize, name: &[u8]) -> bool {
        let end = at + name.len();
        text.get(at..end)
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
            && matches!(
                text.get(end),
                Some(b'\t' | b'\n' | b'\x0C' | b'\r' | b' ' | b'/' | b'>')
            )
    }
    let name: &[u8] = match raw {
        RawEnd::Script => b"script",
        RawEnd::Style => b"style",
    };
    #[derive(PartialEq)]
    enum State {
        Data,
        Escaped,
        DoubleEscaped,
    }
    let mut state = State::Data;
    let mut at = 0;
    while at < text.len() {
        match text[at] {
            b'<' if text.get(at + 1) == Some(&b'/') && tag_at(text, at + 2, name) => {
                if state != State::DoubleEscaped {
                    return Some(at);
                }
                state = State::Escaped;
                at += 2 + name.len();
                continue;
            }
            b'<' if raw == RawEnd::Script => {
                if state == State::Data && text[at + 1..].starts_with(b"!--") {
                    state = State::Escaped;
                    at += 4;
                    continue;
                }
                if state == State::Escaped && tag_at(text, at + 1, name) {
                    state = State::DoubleEscaped;
                    at += 1 + name.len();
                    continue;
                }
            }
            b'-' if state != State::Data && text[at..].starts_with(b"-->") => {
                state = State::Data;
                at += 3;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    None
}

/// Which open elements an end tag (or an implied end) may look past.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The spec's default scope.
    Default,
    /// Default, and `button` (for `p`).
    Button,
    /// Default, and `ol`/`ul` (for `li`).
    ListItem,
    /// Only `html`, `table` and `template` (for table parts).
    Table,
    /// Table scope, and `tr` (for cells).
    Row,
    /// Stops at any special element (inline end tags).
    Special,
}

/// Text node flags, kept in the node's `last_child` (a text node has no children).
const TEXT_IN_LIST: u32 = 1;
const TEXT_IN_LINK: u32 = 2;

impl Builder {
    fn current(&self) -> u32 {
        self.stack.last().copied().unwrap_or(0)
    }

    fn class(&mut self, name: &LocalName) -> Class {
        if let Some(class) = self.classes.get(name) {
            return *class;
        }
        let class = classify(name);
        self.classes.insert(name.clone(), class);
        class
    }

    fn kind_at(&self, depth: usize) -> Kind {
        self.stack
            .get(depth)
            .and_then(|&n| self.tree.element(n))
            .map_or(Kind::Other, |e| e.kind)
    }

    fn append(&mut self, data: Data) -> u32 {
        let parent = self.current();
        let index = self.tree.nodes.len() as u32;
        self.tree.nodes.push(Node {
            parent,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
            data,
        });
        let parent_node = &mut self.tree.nodes[parent as usize];
        let previous = parent_node.last_child;
        parent_node.last_child = index;
        if previous == NONE {
            parent_node.first_child = index;
        } else {
            self.tree.nodes[previous as usize].next_sibling = index;
        }
        index
    }

    fn characters(&mut self, text: &str) {
        if self.drop_text || text.is_empty() {
            return;
        }
        let blank = text.bytes().all(|b| b.is_ascii_whitespace());
        if !blank {
            if self.head != NONE && self.current() == self.head {
                self.pop_to(self.stack.len() - 1);
            }
            self.ensure_body();
        }
        let flags = if self.open_lists > 0 { TEXT_IN_LIST } else { 0 }
            | if self.open_a > 0 { TEXT_IN_LINK } else { 0 };
        let parent = self.current();
        let last = self.tree.nodes[parent as usize].last_child;
        let end = self.tree.text.len() as u32;
        if let Some(node) = self.tree.nodes.get_mut(last as usize) {
            if let Data::Text { end: ref mut e, .. } = node.data {
                // Several character tokens in a row (the tokenizer splits at
                // character references) are one text node, as in a DOM.
                if *e == end && node.last_child == flags {
                    self.tree.text.push_str(text);
                    *e = self.tree.text.len() as u32;
                    return;
                }
            }
        }
        self.tree.text.push_str(text);
        let index = self.append(Data::Text {
            start: end,
            end: self.tree.text.len() as u32,
        });
        self.tree.nodes[index as usize].last_child = flags;
    }

    /// A `body` element when content arrives outside of one (a page without a
    /// `<body>` tag), so that the article is never the `html` element itself.
    fn ensure_body(&mut self) {
        let outside = match self.stack.last() {
            None => true,
            Some(&top) => self.tree.element(top).is_some_and(|e| e.kind == Kind::Html),
        };
        if self.body != NONE || !outside {
            return;
        }
        let name = LocalName::from("body");
        let class = self.class(&name);
        self.body = self.open(name, class, 0, (0, 0));
    }

    fn open(&mut self, name: LocalName, class: Class, flags: u8, names: (u32, u32)) -> u32 {
        let index = self.append(Data::Element(Box::new(Element {
            name,
            kind: class.kind,
            flags: class.flags | flags,
            names,
            end: NONE,
            letters: 0,
            link_letters: 0,
        })));
        if class.void || self.stack.len() >= MAX_DEPTH {
            if let Some(Data::Element(e)) = self.tree.nodes.last_mut().map(|n| &mut n.data) {
                e.end = index + 1;
            }
            return index;
        }
        self.stack.push(index);
        match class.kind {
            Kind::P => self.open_p += 1,
            Kind::A => self.open_a += 1,
            Kind::Ul | Kind::Ol | Kind::Menu => self.open_lists += 1,
            Kind::Form => self.open_forms += 1,
            _ => {}
        }
        if class.flags & FOREIGN != 0 {
            self.open_foreign += 1;
        }
        index
    }

    /// Closes the open elements from `depth` (an index into the stack) up.
    fn pop_to(&mut self, depth: usize) {
        let end = self.tree.nodes.len() as u32;
        while self.stack.len() > depth {
            let Some(node) = self.stack.pop() else { break };
            if let Some(Data::Element(e)) =
                self.tree.nodes.get_mut(node as usize).map(|n| &mut n.data)
            {
                e.end = end;
                match e.kind {
                    Kind::P => self.open_p -= 1,
                    Kind::A => self.open_a -= 1,
                    Kind::Ul | Kind::Ol | Kind::Menu => self.open_lists -= 1,
                    Kind::Form => self.open_forms -= 1,
                    Kind::Head => self.head = NONE,
                    _ => {}
                }
                if e.flags & FOREIGN != 0 {
                    self.open_foreign -= 1;
                }
            }
        }
    }

    /// The stack depth of the innermost open element that `found` accepts,
    /// looking no further than `scope` allows.
    fn find(&self, scope: Scope, found: impl Fn(Kind, &LocalName) -> bool) -> Option<usize> {
        for (depth, &node) in self.stack.iter().enumerate().rev() {
            let Some(e) = self.tree.element(node) else {
                continue;
            };
            if found(e.kind, &e.name) {
                return Some(depth);
            }
            let in_scope = e.flags & SCOPE != 0;
            let stop = match scope {
                Scope::Default => in_scope,
                Scope::Button => in_scope || &*e.name == "button",
                Scope::ListItem => in_scope || matches!(e.kind, Kind::Ol | Kind::Ul),
                Scope::Table => {
                    matches!(e.kind, Kind::Html | Kind::Table) || &*e.name == "template"
                }
                Scope::Row => {
                    matches!(e.kind, Kind::Html | Kind::Table | Kind::Tr) || &*e.name == "template"
                }
                Scope::Special => e.flags & SPECIAL != 0,
            };
            if stop {
                return None;
            }
        }
        None
    }

    fn close(&mut self, scope: Scope, found: impl Fn(Kind, &LocalName) -> bool) {
        if let Some(depth) = self.find(scope, found) {
            self.pop_to(depth);
        }
    }

    fn start_tag(&mut self, tag: Tag) -> TokenSinkResult<()> {
        let class = self.class(&tag.name);
        let is_style = &*tag.name == "style";
        match class.kind {
            Kind::Html if self.html || !self.stack.is_empty() => return TokenSinkResult::Continue,
            Kind::Head if self.head != NONE || self.body != NONE => {
                return TokenSinkResult::Continue
            }
            Kind::Body if self.body != NONE => return TokenSinkResult::Continue,
            Kind::Form if self.open_forms > 0 => return TokenSinkResult::Continue,
            _ => {}
        }
        if !class.in_head {
            if self.head != NONE && self.current() == self.head {
                self.pop_to(self.stack.len() - 1);
            }
            if !matches!(class.kind, Kind::Html | Kind::Body) {
                self.ensure_body();
            }
        }
        // The end tags a browser implies before this start tag.
        if class.closes_p && self.open_p > 0 {
            self.close(Scope::Button, |k, _| k == Kind::P);
        }
        match class.kind {
            Kind::Li => self.close_item(|k| k == Kind::Li),
            Kind::Dd | Kind::Dt => self.close_item(|k| matches!(k, Kind::Dd | Kind::Dt)),
            Kind::H1 | Kind::Heading => {
                if matches!(
                    self.kind_at(self.stack.len().wrapping_sub(1)),
                    Kind::H1 | Kind::Heading
                ) {
                    self.pop_to(self.stack.len() - 1);
                }
            }
            Kind::Td | Kind::Th => self.close(Scope::Row, |k, _| matches!(k, Kind::Td | Kind::Th)),
            Kind::Tr => self.close(Scope::Table, |k, _| k == Kind::Tr),
            Kind::TableSection => self.close(Scope::Table, |k, _| k == Kind::TableSection),
            Kind::A if self.open_a > 0 => self.close(Scope::Default, |k, _| k == Kind::A),
            _ => {}
        }
        if matches!(&*tag.name, "option" | "optgroup") {
            if let Some(e) = self.tree.element(self.current()) {
                if &*e.name == "option" {
                    self.pop_to(self.stack.len() - 1);
                }
            }
        }
        let mut flags = 0;
        let mut class_attr = None;
        let mut id_attr = None;
        let mut og = (false, None);
        for attr in &tag.attrs {
            match &*attr.name.local {
                "class" => class_attr = Some(&attr.value),
                "id" => id_attr = Some(&attr.value),
                "hidden" => flags |= HIDDEN,
                "aria-hidden" if attr.value.eq_ignore_ascii_case("true") => flags |= HIDDEN,
                "role"
                    if SKIPPED_ROLES
                        .iter()
                        .any(|r| attr.value.trim().eq_ignore_ascii_case(r)) =>
                {
                    flags |= HIDDEN
                }
                "property" | "name" if attr.value.eq_ignore_ascii_case("og:title") => og.0 = true,
                "content" => og.1 = Some(&attr.value),
                _ => {}
            }
        }
        if &*tag.name == "meta" && og.0 && self.tree.og_title.is_none() {
            if let Some(content) = og.1.map(|c| c.trim()).filter(|c| !c.is_empty()) {
                self.tree.og_title = Some(content.to_string());
            }
        }
        let names = if class_attr.is_some() || id_attr.is_some() {
            let start = self.tree.names.len() as u32;
            for value in [class_attr, id_attr].into_iter().flatten() {
                self.tree
                    .names
                    .extend(value.chars().map(|c| c.to_ascii_lowercase()));
                self.tree.names.push(' ');
            }
            (start, self.tree.names.len() as u32)
        } else {
            (0, 0)
        };
        let void = class.void || (tag.self_closing && self.open_foreign > 0);
        let index = self.open(tag.name, Class { void, ..class }, flags, names);
        match class.kind {
            Kind::Html => self.html = true,
            Kind::Head => self.head = index,
            Kind::Body => self.body = index,
            _ => {}
        }
        if void {
            return TokenSinkResult::Continue;
        }
        match class.raw {
            Some(raw) => {
                self.drop_text = (class.flags & HIDDEN != 0) && class.kind != Kind::Title;
                let skip = match raw {
                    Raw::Script => Some(RawEnd::Script),
                    Raw::Rawtext if is_style => Some(RawEnd::Style),
                    _ => None,
                };
                if let Some(skip) = skip.filter(|_| self.drop_text) {
                    self.skip_raw = Some(skip);
                    return TokenSinkResult::Script(());
                }
                match raw {
                    Raw::Rcdata => TokenSinkResult::RawData(RawKind::Rcdata),
                    Raw::Rawtext => TokenSinkResult::RawData(RawKind::Rawtext),
                    Raw::Script => TokenSinkResult::RawData(RawKind::ScriptData),
                    Raw::Plaintext => TokenSinkResult::Plaintext,
                }
            }
            None => TokenSinkResult::Continue,
        }
    }

    /// The spec's start tag rule for `li`, `dd` and `dt`: an open item of the
    /// same list ends, unless a block other than `address`, `div` or `p` is
    /// between (a nested list).
    fn close_item(&mut self, same: impl Fn(Kind) -> bool) {
        for depth in (0..self.stack.len()).rev() {
            let Some(e) = self.tree.element(self.stack[depth]) else {
                continue;
            };
            if same(e.kind) {
                self.pop_to(depth);
                return;
            }
            if e.flags & SPECIAL != 0 && !matches!(e.kind, Kind::Address | Kind::Div | Kind::P) {
                return;
            }
        }
    }

    fn end_tag(&mut self, tag: Tag) {
        let class = self.class(&tag.name);
        let name = tag.name;
        match class.kind {
            Kind::Html | Kind::Body => {}
            Kind::Head => {
                if self.head != NONE {
                    self.close(Scope::Table, |k, _| k == Kind::Head);
                }
            }
            Kind::Br => {
                self.ensure_body();
                self.open(name, class, 0, (0, 0));
            }
            Kind::P => self.close(Scope::Button, |k, _| k == Kind::P),
            Kind::Li => self.close(Scope::ListItem, |k, _| k == Kind::Li),
            Kind::H1 | Kind::Heading => {
                self.close(Scope::Default, |k, _| matches!(k, Kind::H1 | Kind::Heading))
            }
            Kind::Td | Kind::Th | Kind::Tr | Kind::TableSection | Kind::Table => {
                self.close(Scope::Table, |k, n| k == class.kind && *n == name)
            }
            _ if class.flags & SPECIAL != 0 => self.close(Scope::Default, |_, n| *n == name),
            _ => self.close(Scope::Special, |_, n| *n == name),
        }
    }

    /// Ends the open elements and works out what the extractor asks of
    /// subtrees: letters in lists and links, and the elements below.
    fn finish(mut self) -> Tree {
        self.pop_to(0);
        let tree = &mut self.tree;
        for index in (1..tree.nodes.len()).rev() {
            let (parent, letters, link_letters, holds) = {
                let node = &tree.nodes[index];
                match &node.data {
                    Data::Text { start, end } => {
                        if node.last_child & TEXT_IN_LIST == 0 {
                            continue;
                        }
                        let text = tree.text.get(*start as usize..*end as usize).unwrap_or("");
                        let letters = text.chars().filter(|c| c.is_alphanumeric()).count() as u32;
                        let link = if node.last_child & TEXT_IN_LINK != 0 {
                            letters
                        } else {
                            0
                        };
                        (node.parent, letters, link, 0)
                    }
                    Data::Element(e) => {
                        let mut holds = e.flags & (HOLDS_MAIN | HOLDS_H1);
                        match e.kind {
                            Kind::H1 => holds |= HOLDS_MAIN | HOLDS_H1,
                            Kind::Article | Kind::Main => holds |= HOLDS_MAIN,
                            _ => {}
                        }
                        (node.parent, e.letters, e.link_letters, holds)
                    }
                    Data::Document => continue,
                }
            };
            if let Some(Data::Element(p)) = tree.nodes.get_mut(parent as usize).map(|n| &mut n.data)
            {
                p.letters += letters;
                p.link_letters += link_letters;
                p.flags |= holds;
            }
        }
        self.tree
    }
}

impl TokenSink for Builder {
    type Handle = ();

    fn process_token(&mut self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            Token::CharacterTokens(text) => self.characters(&text),
            Token::TagToken(tag) => {
                self.drop_text = false;
                return match tag.kind {
                    TagKind::StartTag => self.start_tag(tag),
                    TagKind::EndTag => {
                        self.end_tag(tag);
                        TokenSinkResult::Continue
                    }
                };
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_text_ends_where_a_tokenizer_ends_it() {
        let cases: &[(&str, RawEnd, Option<usize>)] = &[
            ("if (a<b) x();</script>rest", RawEnd::Script, Some(13)),
            ("x</SCRIPT >", RawEnd::Script, Some(1)),
            ("x</script/>", RawEnd::Script, Some(1)),
            // Not an end tag: another name, or no delimiter after it.
            ("x</scripts></script>", RawEnd::Script, Some(11)),
            ("x</script", RawEnd::Script, None),
            ("never closed", RawEnd::Script, None),
            // Inside `<!--`, a `<script>` opens a part that `</script>` only closes.
            (
                "<!--<script>a</script>b--></script>",
                RawEnd::Script,
                Some(26),
            ),
            ("<!--<script>a</script></script>", RawEnd::Script, Some(22)),
            ("<!-- a --><script></script>", RawEnd::Script, Some(18)),
            // Style knows no escapes.
            ("a{}<!--<style></style>", RawEnd::Style, Some(14)),
            ("p{color:red}</style>", RawEnd::Style, Some(12)),
        ];
        for (text, raw, end) in cases {
            assert_eq!(
                raw_text_end(text.as_bytes(), *raw),
                *end,
                "{text:?} ({raw:?})"
            );
        }
    }

    #[test]
    fn passed_over_scripts_leave_the_same_tree_as_tokenized_ones() {
        let page = "<html><head><style>p { x: '</p>' }</style>\
            <script>var s = '<p>not text</p>'; if (a < b) {}</script></head>\
            <body><p>One <script>document.write('<b>no</b>')</script>two</p>\
            <script><!--<script>inner</script>still script--></script><p>Three</p>\
            <script>never closed <p>at all";
        let tree = Tree::parse(page);
        let text = tree.subtree_text(0);
        assert!(text.contains("One") && text.contains("two") && text.contains("Three"));
        for hidden in [
            "not text",
            "no",
            "inner",
            "still script",
            "never closed",
            "x:",
        ] {
            assert!(!text.contains(hidden), "{hidden:?} leaked into {text:?}");
        }
        // The second paragraph follows the nested script as an element, not as text.
        let paragraphs = tree
            .nodes
            .iter()
            .filter(|n| matches!(&n.data, Data::Element(e) if e.kind == Kind::P))
            .count();
        assert_eq!(paragraphs, 2, "{text:?}");
    }
}
