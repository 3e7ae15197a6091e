//! The topic query language: text → [`Node`] tree, with errors that point at a column.
//!
//! Grammar (operators are upper-case; lower-case `and`/`or`/`not` are plain words):
//!
//! ```text
//! query   := or
//! or      := and ("OR" and)*
//! and     := near (["AND"] near)*          adjacency means AND
//! near    := unary ("NEAR/" n unary)*      within n words of each other
//! unary   := "NOT" unary | primary
//! primary := [field ":"] ( "(" or ")" | atom )
//! atom    := word | word "*" | "\"" phrase "\"" | "@" entity-id
//! field   := "title" | "body"
//! ```
//!
//! Lexical rules:
//!
//! - A word is a run of characters other than whitespace and `( ) " *`, not starting
//!   with `@`. Anything else is allowed inside, so `cease-fire`, `Putin's`, `п'ять`,
//!   `10:30` and URLs are single words, kept exactly as written.
//! - `AND`, `OR`, `NOT` and `NEAR/n` (1 ≤ n ≤ 1000) are operators only when spelled
//!   exactly so, as a whole word; any other spelling is a word.
//! - A `*` glued to the end of a word makes it a prefix; a `*` anywhere else is an
//!   error, as is a lone `NEAR` (a proximity search needs its distance).
//! - `title:` and `body:` at the start of a word are fields and must be glued to the
//!   primary they apply to; other `name:` forms are ordinary words, so that times and
//!   URLs need no quoting. A field on a group applies to every leaf inside that has
//!   no field of its own.
//! - A `NOT` may not appear in an operand of `NEAR`: a negation has no position.
//!
//! The tree is normalised only structurally: nested ANDs (and ORs) are flattened and a
//! one-child AND/OR is its child, so that [`Node`]'s `Display` (explicit `AND`, minimal
//! parentheses) re-parses to the same tree. A [`Leaf`]'s column is that of the word,
//! quote or `@` itself, also when a field precedes it, so that later checks (such as an
//! unknown entity id) point at the term they complain about.
//!
//! Nesting (groups, `NOT`s and `NEAR` chains) is limited to 64 levels so that no
//! input, however hostile, can exhaust the stack here or in later walks of the tree.
//!
//! The parser does not normalise words or look entity ids up: the matcher folds words
//! with the same rules as the texts they are matched against, and the config checks
//! that entity ids exist, so each concern lives in one place. The parser only checks
//! the shape of an id (letters, digits, `_` and `-`).
//!
//! docs/query.md is the user's contract for the language, matching and scoring.

use std::fmt;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Leaf(Leaf),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// Both sides occur within `distance` words of each other.
    Near {
        left: Box<Node>,
        right: Box<Node>,
        distance: u32,
    },
}

/// One thing to look for in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    pub kind: LeafKind,
    pub field: Field,
    /// 1-based column (in characters) where the leaf starts in the query text.
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LeafKind {
    /// A whole word, as written in the query (not yet folded).
    Word(String),
    /// A word prefix: `negotiat*` is `Prefix("negotiat")`.
    Prefix(String),
    /// Several words in order: `"peace talks"`.
    Phrase(String),
    /// Any alias of a dictionary entity: `@putin` is `Entity("putin")`.
    Entity(String),
}

/// Which part of an item a leaf must occur in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Field {
    #[default]
    Any,
    Title,
    Body,
}

/// A query that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct QueryError {
    /// 1-based column (in characters) of the offending token.
    pub column: usize,
    pub message: String,
}

/// How deep groups, `NOT`s and `NEAR` chains may nest. The parser recurses once per
/// level and every later walk over the tree does too, so a hostile query such as ten
/// thousand `(` must be refused here rather than overflow the stack somewhere else.
const MAX_DEPTH: usize = 64;

/// The largest `NEAR/n` distance: beyond it "near" means "anywhere in the item".
const MAX_NEAR_DISTANCE: u32 = 1000;

/// Parses a query.
///
/// Errors carry the 1-based character column of the offending token. Lexical errors
/// (quotes, `@`, `*`, `NEAR/n`, fields) are reported first, then unbalanced
/// parentheses, then everything else in reading order.
pub fn parse(input: &str) -> Result<Node, QueryError> {
    let tokens = lex(input)?;
    if tokens.is_empty() {
        return Err(error(1, "empty query: expected a term".into()));
    }
    check_parentheses(&tokens)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let (node, _) = parser.parse_or()?;
    // Every token that can follow a complete expression is consumed by one of the
    // loops, and parentheses are balanced, so nothing can be left. Stay defensive:
    // a wrong answer here would be worse than an error.
    if let Some(token) = parser.tokens.get(parser.pos) {
        return Err(error(
            token.column,
            format!("expected end of query, found {}", token.tok),
        ));
    }
    Ok(node)
}

impl Node {
    /// All leaves, left to right as they appear in the query.
    pub fn leaves(&self) -> Vec<&Leaf> {
        let mut out = Vec::new();
        self.collect_leaves(&mut out);
        out
    }

    fn collect_leaves<'a>(&'a self, out: &mut Vec<&'a Leaf>) {
        match self {
            Node::Leaf(leaf) => out.push(leaf),
            Node::And(children) | Node::Or(children) => {
                for child in children {
                    child.collect_leaves(out);
                }
            }
            Node::Not(inner) => inner.collect_leaves(out),
            Node::Near { left, right, .. } => {
                left.collect_leaves(out);
                right.collect_leaves(out);
            }
        }
    }

    /// Binding strength, loosest first; used to put parentheses only where needed.
    fn precedence(&self) -> u8 {
        match self {
            Node::Or(_) => 1,
            Node::And(_) => 2,
            Node::Near { .. } => 3,
            Node::Not(_) => 4,
            Node::Leaf(_) => 5,
        }
    }

    /// Writes `self`, in parentheses when it binds looser than `min`.
    fn fmt_operand(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.precedence() < min {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }

    /// Gives every leaf that has no field of its own the field `field`: `title:(a OR b)`
    /// means `title:a OR title:b`, while `title:(a OR body:b)` keeps `body:b`.
    fn push_field_down(&mut self, field: Field) {
        match self {
            Node::Leaf(leaf) => {
                if leaf.field == Field::Any {
                    leaf.field = field;
                }
            }
            Node::And(children) | Node::Or(children) => {
                for child in children {
                    child.push_field_down(field);
                }
            }
            Node::Not(inner) => inner.push_field_down(field),
            Node::Near { left, right, .. } => {
                left.push_field_down(field);
                right.push_field_down(field);
            }
        }
    }
}

/// The canonical text of a query: explicit `AND`, minimal parentheses. For a parsed
/// node, parsing this text gives the same node back (columns aside).
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An operand of AND/OR must bind strictly tighter than the operator: a nested
        // AND inside AND only arises from hand-built trees (the parser flattens them),
        // and keeping its parentheses shows the tree as it is.
        let (children, separator, min) = match self {
            Node::Leaf(leaf) => return write!(f, "{leaf}"),
            Node::Not(inner) => {
                f.write_str("NOT ")?;
                return inner.fmt_operand(f, 4);
            }
            Node::Near {
                left,
                right,
                distance,
            } => {
                // NEAR chains associate to the left: `a NEAR/1 b NEAR/2 c` is
                // `(a NEAR/1 b) NEAR/2 c`, so only a right-hand NEAR needs parentheses.
                left.fmt_operand(f, 3)?;
                write!(f, " NEAR/{distance} ")?;
                return right.fmt_operand(f, 4);
            }
            Node::And(children) => (children, " AND ", 3),
            Node::Or(children) => (children, " OR ", 2),
        };
        for (i, child) in children.iter().enumerate() {
            if i > 0 {
                f.write_str(separator)?;
            }
            child.fmt_operand(f, min)?;
        }
        Ok(())
    }
}

fn error(column: usize, message: String) -> QueryError {
    QueryError { column, message }
}

// ---------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Prefix(String),
    Phrase(String),
    Entity(String),
    /// `title:` or `body:` directly followed by the primary it applies to.
    Field(Field),
    LParen,
    RParen,
    And,
    Or,
    Not,
    Near(u32),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "word {w:?}"),
            Tok::Prefix(p) => write!(f, "prefix \"{p}*\""),
            Tok::Phrase(p) => write!(f, "phrase {p:?}"),
            Tok::Entity(e) => write!(f, "entity @{e}"),
            Tok::Field(Field::Title) => f.write_str("title:"),
            Tok::Field(Field::Body) => f.write_str("body:"),
            Tok::Field(Field::Any) => f.write_str("field"),
            Tok::LParen => f.write_str("("),
            Tok::RParen => f.write_str(")"),
            Tok::And => f.write_str("AND"),
            Tok::Or => f.write_str("OR"),
            Tok::Not => f.write_str("NOT"),
            Tok::Near(n) => write!(f, "NEAR/{n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    tok: Tok,
    /// 1-based character column where the token starts.
    column: usize,
}

/// Characters that end a word. `@` is not among them: it only starts an entity at the
/// beginning of a token, so `press@example.org` stays one word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"' | '*')
}

/// Entity ids are ASCII `[A-Za-z0-9_-]` plus any Unicode letter or digit (with
/// combining marks, so decomposed accents are accepted too).
fn is_entity_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || unicode_normalization::char::is_combining_mark(c)
}

/// What a lexer error says it found at `chars[i]`.
fn describe_char(chars: &[char], i: usize) -> String {
    match chars.get(i) {
        None => "end of query".into(),
        Some(c) if c.is_whitespace() => "a space".into(),
        Some(c) => format!("{c:?}"),
    }
}

/// If `chars` starts with a field name and its colon, the field and the name's length
/// including the colon. Field names are lower-case, like every other non-operator.
fn field_at(chars: &[char]) -> Option<(Field, usize)> {
    for (name, field) in [("title:", Field::Title), ("body:", Field::Body)] {
        let len = name.chars().count();
        if chars.len() >= len && chars[..len].iter().copied().eq(name.chars()) {
            return Some((field, len));
        }
    }
    None
}

fn lex(input: &str) -> Result<Vec<Token>, QueryError> {
    // Columns are in characters, so work on chars rather than byte offsets.
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let column = i + 1;
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '*' => {
                return Err(error(
                    column,
                    "expected a word directly before *, found none".into(),
                ))
            }
            '"' => {
                let Some(len) = chars[i + 1..].iter().position(|&c| c == '"') else {
                    return Err(error(
                        column,
                        "unterminated quote: expected a closing \" before end of query".into(),
                    ));
                };
                let inner: String = chars[i + 1..i + 1 + len].iter().collect();
                let phrase = inner.split_whitespace().collect::<Vec<_>>().join(" ");
                if phrase.is_empty() {
                    return Err(error(
                        column,
                        "empty phrase: expected words between the quotes".into(),
                    ));
                }
                i += len + 2;
                Tok::Phrase(phrase)
            }
            '@' => {
                let start = i + 1;
                let mut end = start;
                while chars.get(end).is_some_and(|&c| !ends_word(c)) {
                    end += 1;
                }
                if end == start {
                    return Err(error(
                        column,
                        format!(
                            "expected an entity id after @, found {}",
                            describe_char(&chars, end)
                        ),
                    ));
                }
                if let Some(bad) = (start..end).find(|&j| !is_entity_char(chars[j])) {
                    return Err(error(
                        bad + 1,
                        format!(
                            "expected letters, digits, _ or - in an entity id, found {:?}",
                            chars[bad]
                        ),
                    ));
                }
                i = end;
                Tok::Entity(chars[start..end].iter().collect())
            }
            _ => {
                if let Some((field, len)) = field_at(&chars[i..]) {
                    // `title:` must be glued to what it applies to; a dangling one is
                    // almost certainly a mistake, not a search for the word "title:".
                    match chars.get(i + len) {
                        Some(next) if !next.is_whitespace() => {
                            tokens.push(Token {
                                tok: Tok::Field(field),
                                column,
                            });
                            i += len;
                            continue;
                        }
                        _ => {
                            let name: String = chars[i..i + len].iter().collect();
                            return Err(error(
                                column,
                                format!(
                                    "expected a term directly after {name}, found {}",
                                    describe_char(&chars, i + len)
                                ),
                            ));
                        }
                    }
                }
                let start = i;
                while chars.get(i).is_some_and(|&c| !ends_word(c)) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if chars.get(i) == Some(&'*') {
                    // A star makes anything a prefix, even `AND*`, so that the Display
                    // of a Prefix always lexes back to the same Prefix.
                    i += 1;
                    Tok::Prefix(word)
                } else {
                    word_token(word, column)?
                }
            }
        };
        tokens.push(Token { tok, column });
    }
    Ok(tokens)
}

/// A bare word: an operator if it is spelled exactly like one, else a plain word.
fn word_token(word: String, column: usize) -> Result<Tok, QueryError> {
    Ok(match word.as_str() {
        "AND" => Tok::And,
        "OR" => Tok::Or,
        "NOT" => Tok::Not,
        "NEAR" => {
            return Err(error(
                column,
                format!("expected NEAR/n with a distance n from 1 to {MAX_NEAR_DISTANCE}, found NEAR"),
            ))
        }
        _ => match word.strip_prefix("NEAR/") {
            Some(n) => Tok::Near(near_distance(n).ok_or_else(|| {
                let found = if n.is_empty() {
                    "nothing".to_string()
                } else {
                    format!("{n:?}")
                };
                error(
                    column,
                    format!(
                        "expected a distance from 1 to {MAX_NEAR_DISTANCE} after NEAR/, found {found}"
                    ),
                )
            })?),
            None => Tok::Word(word),
        },
    })
}

fn near_distance(n: &str) -> Option<u32> {
    // Plain ASCII digits only: `u32::from_str` would also take a leading `+`.
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse::<u32>()
        .ok()
        .filter(|d| (1..=MAX_NEAR_DISTANCE).contains(d))
}

/// Checks parentheses before parsing, so an unbalanced one is reported where it is,
/// not as a confusing "expected a term" somewhere later.
fn check_parentheses(tokens: &[Token]) -> Result<(), QueryError> {
    let mut open = Vec::new();
    for token in tokens {
        if token.tok == Tok::LParen {
            open.push(token.column);
        } else if token.tok == Tok::RParen && open.pop().is_none() {
            return Err(error(
                token.column,
                "unmatched ): expected a ( before it".into(),
            ));
        }
    }
    // The innermost unclosed one: closing it is the first fix the query needs.
    match open.last() {
        Some(&column) => Err(error(
            column,
            "unclosed (: expected a ) before end of query".into(),
        )),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------
// Parser

/// A parsed sub-expression and the column of the first `NOT` in it, which NEAR needs
/// to refuse: a negation has no position to be near to.
type Parsed = (Node, Option<usize>);

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }

    fn column(&self) -> usize {
        self.tokens.get(self.pos).map_or(1, |t| t.column)
    }

    /// One level deeper, refused past [`MAX_DEPTH`] at the token that goes too deep.
    fn enter(&mut self, column: usize) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(error(
                column,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Parsed, QueryError> {
        let (first, mut first_not) = self.parse_and()?;
        let mut items = vec![first];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            let (node, not) = self.parse_and()?;
            first_not = first_not.or(not);
            items.push(node);
        }
        Ok((flatten(items, false), first_not))
    }

    fn parse_and(&mut self) -> Result<Parsed, QueryError> {
        let (first, mut first_not) = self.parse_near()?;
        let mut items = vec![first];
        loop {
            match self.peek() {
                Some(Tok::And) => self.pos += 1,
                // Adjacency means AND.
                Some(tok) if starts_term(tok) => {}
                _ => break,
            }
            let (node, not) = self.parse_near()?;
            first_not = first_not.or(not);
            items.push(node);
        }
        Ok((flatten(items, true), first_not))
    }

    fn parse_near(&mut self) -> Result<Parsed, QueryError> {
        let (mut left, left_not) = self.parse_unary()?;
        let outer_depth = self.depth;
        while let Some(&Tok::Near(distance)) = self.peek() {
            // Each NEAR in a chain nests the tree one level deeper on the left.
            self.enter(self.column())?;
            self.pos += 1;
            if let Some(column) = left_not {
                return Err(not_in_near(column));
            }
            let (right, right_not) = self.parse_unary()?;
            if let Some(column) = right_not {
                return Err(not_in_near(column));
            }
            left = Node::Near {
                left: Box::new(left),
                right: Box::new(right),
                distance,
            };
        }
        self.depth = outer_depth;
        Ok((left, left_not))
    }

    fn parse_unary(&mut self) -> Result<Parsed, QueryError> {
        if self.peek() != Some(&Tok::Not) {
            return self.parse_primary();
        }
        let column = self.column();
        self.enter(column)?;
        self.pos += 1;
        let (inner, _) = self.parse_unary()?;
        self.depth -= 1;
        Ok((Node::Not(Box::new(inner)), Some(column)))
    }

    fn parse_primary(&mut self) -> Result<Parsed, QueryError> {
        let field = match self.peek() {
            Some(&Tok::Field(field)) => {
                self.pos += 1;
                field
            }
            _ => Field::Any,
        };
        let Some(token) = self.tokens.get(self.pos) else {
            return Err(self.expected_term());
        };
        let column = token.column;
        let kind = match &token.tok {
            Tok::Word(w) => LeafKind::Word(w.clone()),
            Tok::Prefix(p) => LeafKind::Prefix(p.clone()),
            Tok::Phrase(p) => LeafKind::Phrase(p.clone()),
            Tok::Entity(e) => LeafKind::Entity(e.clone()),
            Tok::LParen => {
                self.enter(column)?;
                self.pos += 1;
                let (mut node, not) = self.parse_or()?;
                if self.peek() != Some(&Tok::RParen) {
                    // Unreachable after check_parentheses; kept so that a future
                    // change cannot turn into a silently wrong tree.
                    return Err(error(
                        column,
                        "unclosed (: expected a ) before end of query".into(),
                    ));
                }
                self.pos += 1;
                self.depth -= 1;
                if field != Field::Any {
                    node.push_field_down(field);
                }
                return Ok((node, not));
            }
            _ => return Err(self.expected_term()),
        };
        self.pos += 1;
        Ok((
            Node::Leaf(Leaf {
                kind,
                field,
                column,
            }),
            None,
        ))
    }

    /// The error for a missing term at the current position, phrased after what came
    /// before it (an operator, `(`, or a field).
    fn expected_term(&self) -> QueryError {
        let previous = self.pos.checked_sub(1).and_then(|i| self.tokens.get(i));
        match (self.tokens.get(self.pos), previous) {
            (None, Some(prev)) => error(
                prev.column,
                format!("expected a term after {}, found end of query", prev.tok),
            ),
            (None, None) => error(1, "empty query: expected a term".into()),
            (Some(found), Some(prev)) if prev.tok == Tok::LParen && found.tok == Tok::RParen => {
                error(
                    prev.column,
                    "empty group: expected a term between ( and )".into(),
                )
            }
            (Some(found), Some(prev)) => error(
                found.column,
                format!("expected a term after {}, found {}", prev.tok, found.tok),
            ),
            (Some(found), None) => error(
                found.column,
                format!("expected a term before {}", found.tok),
            ),
        }
    }
}

fn not_in_near(column: usize) -> QueryError {
    error(
        column,
        "expected terms without NOT on both sides of NEAR: a negation has no position to be near"
            .into(),
    )
}

/// Whether `tok` can begin an operand, which makes two adjacent operands an AND.
fn starts_term(tok: &Tok) -> bool {
    matches!(
        tok,
        Tok::Word(_)
            | Tok::Prefix(_)
            | Tok::Phrase(_)
            | Tok::Entity(_)
            | Tok::Field(_)
            | Tok::LParen
            | Tok::Not
    )
}

/// Builds an AND (`and` true) or OR of `items`, splicing in the children of operands of
/// the same kind (`a AND (b AND c)` is `a AND b AND c`) and collapsing a single item to
/// itself. Flattening is what makes the canonical text re-parse to the same tree.
fn flatten(items: Vec<Node>, and: bool) -> Node {
    let mut flat = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Node::And(children) if and => flat.extend(children),
            Node::Or(children) if !and => flat.extend(children),
            other => flat.push(other),
        }
    }
    if flat.len() == 1 {
        flat.swap_remove(0)
    } else if and {
        Node::And(flat)
    } else {
        Node::Or(flat)
    }
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Field::Any => {}
            Field::Title => f.write_str("title:")?,
            Field::Body => f.write_str("body:")?,
        }
        match &self.kind {
            LeafKind::Word(w) => f.write_str(w),
            LeafKind::Prefix(p) => write!(f, "{p}*"),
            LeafKind::Phrase(p) => write!(f, "\"{p}\""),
            LeafKind::Entity(e) => write!(f, "@{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `input` quoted and cut short for failure messages: some test queries are
    /// 90,000 characters long.
    fn short(input: &str) -> String {
        let cut: String = input.chars().take(60).collect();
        if cut.len() < input.len() {
            format!("{cut:?}…")
        } else {
            format!("{cut:?}")
        }
    }

    /// `node` with every column set to 0, to compare trees parsed from different texts.
    fn strip(node: &Node) -> Node {
        match node {
            Node::Leaf(leaf) => Node::Leaf(Leaf {
                column: 0,
                ..leaf.clone()
            }),
            Node::And(children) => Node::And(children.iter().map(strip).collect()),
            Node::Or(children) => Node::Or(children.iter().map(strip).collect()),
            Node::Not(inner) => Node::Not(Box::new(strip(inner))),
            Node::Near {
                left,
                right,
                distance,
            } => Node::Near {
                left: Box::new(strip(left)),
                right: Box::new(strip(right)),
                distance: *distance,
            },
        }
    }

    /// Parses `input`, checks its canonical text, and that the text parses back to the
    /// same tree and is a fixed point.
    fn check(input: &str, expected: &str) -> Node {
        let label = short(input);
        let node = parse(input).unwrap_or_else(|e| panic!("{label} failed: {e}"));
        let text = node.to_string();
        assert_eq!(text, expected, "canonical text of {label}");
        let again = parse(&text).unwrap_or_else(|e| panic!("{} (from {label}): {e}", short(&text)));
        assert_eq!(strip(&again), strip(&node), "round trip of {label}");
        assert_eq!(again.to_string(), text, "fixed point of {label}");
        node
    }

    fn check_err(input: &str, column: usize, fragment: &str) {
        let label = short(input);
        let err = match parse(input) {
            Ok(node) => panic!("{label} parsed as {node}, expected an error"),
            Err(err) => err,
        };
        assert!(
            err.message.contains(fragment),
            "{label}: {err:?} does not contain {fragment:?}"
        );
        assert_eq!(err.column, column, "{label}: {err}");
        assert!(!err.message.ends_with('.'), "{label}: {err}");
        assert!(
            !err.message.starts_with(char::is_uppercase),
            "{label}: {err}"
        );
    }

    fn leaf(kind: LeafKind, field: Field, column: usize) -> Node {
        Node::Leaf(Leaf {
            kind,
            field,
            column,
        })
    }

    fn word(w: &str, column: usize) -> Node {
        leaf(LeafKind::Word(w.into()), Field::Any, column)
    }

    #[test]
    fn words_and_adjacency() {
        assert_eq!(parse("ceasefire"), Ok(word("ceasefire", 1)));
        check("ceasefire", "ceasefire");
        check("  ceasefire  ", "ceasefire");
        assert_eq!(
            parse("peace  deal"),
            Ok(Node::And(vec![word("peace", 1), word("deal", 8)]))
        );
        check("peace deal", "peace AND deal");
        check("a\tb\nc", "a AND b AND c");
        check("a AND b", "a AND b");
    }

    #[test]
    fn unicode_words_are_kept_as_written() {
        check("перемирие OR переговоры", "перемирие OR переговоры");
        check("εκεχειρία", "εκεχειρία");
        check(
            "cessez-le-feu négociations",
            "cessez-le-feu AND négociations",
        );
        check(
            "cease-fire Putin's п'ять",
            "cease-fire AND Putin's AND п'ять",
        );
        check("Zürich 東京 مفاوضات", "Zürich AND 東京 AND مفاوضات");
        // Odd punctuation is the matcher's business, not the parser's.
        check("U.S. #ceasefire a@b.org", "U.S. AND #ceasefire AND a@b.org");
        // A non-breaking space separates words like any whitespace.
        check("a\u{a0}b", "a AND b");
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            parse("negotiat*"),
            Ok(leaf(LeafKind::Prefix("negotiat".into()), Field::Any, 1))
        );
        check("negotiat* переговор*", "negotiat* AND переговор*");
        check("(negotiat*)", "negotiat*");
        // The star makes anything a prefix, operators included.
        check("AND*", "AND*");
        check_err("*", 1, "expected a word directly before *");
        check_err("a *", 3, "expected a word directly before *");
        check_err("negotiat**", 10, "expected a word directly before *");
        check_err("\"peace talks\"*", 14, "expected a word directly before *");
        check_err("@putin*", 7, "expected a word directly before *");
    }

    #[test]
    fn phrases() {
        assert_eq!(
            parse("\"peace talks\""),
            Ok(leaf(LeafKind::Phrase("peace talks".into()), Field::Any, 1))
        );
        check("\"  peace \t talks \n\"", "\"peace talks\"");
        check("\"truce\"", "\"truce\"");
        check("\"a\"\"b\"", "\"a\" AND \"b\"");
        check("x\"peace talks\"y", "x AND \"peace talks\" AND y");
        // Inside quotes nothing is an operator or a bracket.
        check("\"NOT (a OR b*)\"", "\"NOT (a OR b*)\"");
        check("\"переговоры о мире\"", "\"переговоры о мире\"");
        check_err("\"\"", 1, "empty phrase");
        check_err("a \"   \"", 3, "empty phrase");
        check_err("\"peace talks", 1, "unterminated quote");
        check_err("a \"b\" \"c", 7, "unterminated quote");
        check_err("\"", 1, "unterminated quote");
    }

    #[test]
    fn entities() {
        assert_eq!(
            parse("@putin"),
            Ok(leaf(LeafKind::Entity("putin".into()), Field::Any, 1))
        );
        check("@un_security-council2", "@un_security-council2");
        check("@путин @Zürich", "@путин AND @Zürich");
        // A decomposed accent is a letter plus a combining mark.
        check("@Zu\u{308}rich", "@Zu\u{308}rich");
        check("(@russia)", "@russia");
        check_err("@", 1, "expected an entity id after @, found end of query");
        check_err("a @ b", 3, "expected an entity id after @, found a space");
        check_err("(@)", 2, "expected an entity id after @, found ')'");
        check_err(
            "@putin's",
            7,
            "expected letters, digits, _ or - in an entity id",
        );
        check_err("@@putin", 2, "in an entity id, found '@'");
    }

    #[test]
    fn operators_are_upper_case_whole_words() {
        check("a and b", "a AND and AND b");
        check("a or b", "a AND or AND b");
        check("not a", "not AND a");
        check("near a", "near AND a");
        check("And Or Not Near", "And AND Or AND Not AND Near");
        check(
            "ANDROID NOTE ORB NEARBY",
            "ANDROID AND NOTE AND ORB AND NEARBY",
        );
        check("a OR b", "a OR b");
        check("NOT sport", "NOT sport");
        check("a NEAR/5 b", "a NEAR/5 b");
    }

    #[test]
    fn precedence() {
        // OR < AND (explicit or by adjacency) < NEAR < NOT < primary.
        check("a OR b c", "a OR b AND c");
        assert_eq!(
            strip(&parse("a OR b c").unwrap()),
            strip(&Node::Or(vec![
                word("a", 0),
                Node::And(vec![word("b", 0), word("c", 0)])
            ]))
        );
        check("a OR b AND c OR d", "a OR b AND c OR d");
        check("(a OR b) c", "(a OR b) AND c");
        check("a (b OR c) d", "a AND (b OR c) AND d");
        check("NOT a b", "NOT a AND b");
        assert_eq!(
            strip(&parse("NOT a b").unwrap()),
            strip(&Node::And(vec![
                Node::Not(Box::new(word("a", 0))),
                word("b", 0)
            ]))
        );
        check("a NOT b", "a AND NOT b");
        check("NOT (a b)", "NOT (a AND b)");
        check("NOT (a OR b)", "NOT (a OR b)");
        check("NOT NOT a", "NOT NOT a");
        check("a NEAR/3 b c", "a NEAR/3 b AND c");
        check("a NEAR/3 b OR c", "a NEAR/3 b OR c");
        check("a b NEAR/3 c", "a AND b NEAR/3 c");
        check("(a b) NEAR/3 c", "(a AND b) NEAR/3 c");
        check("(a OR b) NEAR/3 c", "(a OR b) NEAR/3 c");
        check("NOT (a NEAR/3 b)", "NOT (a NEAR/3 b)");
        check("NOT a OR b", "NOT a OR b");
        check("a OR (b OR c) d", "a OR (b OR c) AND d");
    }

    #[test]
    fn near() {
        assert_eq!(
            parse("ceasefire NEAR/10 @putin"),
            Ok(Node::Near {
                left: Box::new(word("ceasefire", 1)),
                right: Box::new(leaf(LeafKind::Entity("putin".into()), Field::Any, 19)),
                distance: 10,
            })
        );
        check("ceasefire NEAR/10 @putin", "ceasefire NEAR/10 @putin");
        check("a NEAR/1 b", "a NEAR/1 b");
        check("a NEAR/1000 b", "a NEAR/1000 b");
        check("a NEAR/007 b", "a NEAR/7 b");
        // Chains associate to the left; a right-hand chain keeps its parentheses.
        check("a NEAR/1 b NEAR/2 c", "a NEAR/1 b NEAR/2 c");
        check("(a NEAR/1 b) NEAR/2 c", "a NEAR/1 b NEAR/2 c");
        check("a NEAR/1 (b NEAR/2 c)", "a NEAR/1 (b NEAR/2 c)");
        check(
            "\"peace talks\" NEAR/5 negotiat*",
            "\"peace talks\" NEAR/5 negotiat*",
        );
        check("a NEAR/2(b)", "a NEAR/2 b");
        check_err(
            "a NEAR b",
            3,
            "expected NEAR/n with a distance n from 1 to 1000",
        );
        check_err(
            "a NEAR/ b",
            3,
            "expected a distance from 1 to 1000 after NEAR/, found nothing",
        );
        check_err("a NEAR/0 b", 3, "found \"0\"");
        check_err("a NEAR/1001 b", 3, "found \"1001\"");
        check_err("a NEAR/99999999999999999999 b", 3, "expected a distance");
        check_err("a NEAR/+5 b", 3, "expected a distance");
        check_err("a NEAR/-5 b", 3, "expected a distance");
        check_err("a NEAR/five b", 3, "found \"five\"");
        check_err("a NEAR/5x b", 3, "expected a distance");
        check_err("a NEAR/٥ b", 3, "expected a distance");
        check_err("NEAR/5 b", 1, "expected a term before NEAR/5");
        check_err(
            "a NEAR/5",
            3,
            "expected a term after NEAR/5, found end of query",
        );
        check_err(
            "a NEAR/5 OR b",
            10,
            "expected a term after NEAR/5, found OR",
        );
        check_err(
            "a NEAR/5 NEAR/6 b",
            10,
            "expected a term after NEAR/5, found NEAR/6",
        );
    }

    #[test]
    fn not_inside_near_is_an_error() {
        check_err("a NEAR/5 NOT b", 10, "without NOT on both sides of NEAR");
        check_err("NOT a NEAR/5 b", 1, "without NOT");
        check_err("(a NOT b) NEAR/5 c", 4, "without NOT");
        check_err("a NEAR/5 (b OR NOT c)", 16, "without NOT");
        check_err("a NEAR/1 b NEAR/2 NOT c", 19, "without NOT");
        check_err("title:(NOT a) NEAR/5 b", 8, "without NOT");
        // A NOT beside a NEAR, not inside it, is fine.
        check("NOT a b NEAR/5 c", "NOT a AND b NEAR/5 c");
        check("a NEAR/5 b NOT c", "a NEAR/5 b AND NOT c");
    }

    #[test]
    fn fields() {
        assert_eq!(
            parse("title:ceasefire"),
            Ok(leaf(LeafKind::Word("ceasefire".into()), Field::Title, 7))
        );
        check("title:ceasefire", "title:ceasefire");
        check("body:ceasefire", "body:ceasefire");
        check("title:\"peace talks\"", "title:\"peace talks\"");
        check("title:negotiat*", "title:negotiat*");
        check("title:@putin", "title:@putin");
        check("title:заголовок", "title:заголовок");
        check("title:(a OR b)", "title:a OR title:b");
        check("title:(a OR body:b) c", "(title:a OR body:b) AND c");
        check(
            "body:(a NEAR/3 (b OR \"c d\") NOT e)",
            "body:a NEAR/3 (body:b OR body:\"c d\") AND NOT body:e",
        );
        check("title:(NOT sport)", "NOT title:sport");
        check("NOT title:sport", "NOT title:sport");
        check("title:(title:(a))", "title:a");
        check("title:a body:b", "title:a AND body:b");
        // Fields distribute over a group; the group's leaves keep their own columns.
        let node = parse("title:(a OR \"b c\")").unwrap();
        let leaves = node.leaves();
        assert_eq!(leaves.len(), 2);
        assert!(leaves.iter().all(|l| l.field == Field::Title));
        assert_eq!(leaves.iter().map(|l| l.column).collect::<Vec<_>>(), [8, 13]);
        check_err(
            "title:",
            1,
            "expected a term directly after title:, found end of query",
        );
        check_err(
            "a body: b",
            3,
            "expected a term directly after body:, found a space",
        );
        check_err("(title:)", 8, "expected a term after title:, found )");
        check_err("title:OR b", 7, "expected a term after title:, found OR");
        check_err("title:NOT b", 7, "expected a term after title:, found NOT");
        check_err(
            "title:title:b",
            7,
            "expected a term after title:, found title:",
        );
        check_err("title:()", 7, "empty group");
        check_err("title:*", 7, "expected a word directly before *");
    }

    #[test]
    fn other_colons_are_words() {
        check("foo:bar", "foo:bar");
        check("10:30", "10:30");
        check(
            "https://example.org/news?id=1",
            "https://example.org/news?id=1",
        );
        check("Title:ceasefire", "Title:ceasefire");
        check("subtitle:x", "subtitle:x");
        check("title", "title");
        check(":title:", ":title:");
        check("title :x", "title AND :x");
    }

    #[test]
    fn and_or_are_flattened() {
        assert_eq!(
            parse("a AND b AND c"),
            Ok(Node::And(vec![word("a", 1), word("b", 7), word("c", 13)]))
        );
        assert_eq!(
            parse("a OR b OR c"),
            Ok(Node::Or(vec![word("a", 1), word("b", 6), word("c", 11)]))
        );
        check("a (b c) ((d))", "a AND b AND c AND d");
        check("(a OR b) OR (c OR (d OR e))", "a OR b OR c OR d OR e");
        check("((((a))))", "a");
        check("(a) OR (b)", "a OR b");
        check("(a OR b) (c OR d)", "(a OR b) AND (c OR d)");
        check("((a b) OR c)", "a AND b OR c");
    }

    #[test]
    fn design_examples() {
        let node = check(
            "(ceasefire OR truce OR \"peace talks\" OR \"peace deal\" OR negotiat*) AND \
             (@russia OR @ukraine OR @putin OR @zelensky)",
            "(ceasefire OR truce OR \"peace talks\" OR \"peace deal\" OR negotiat*) AND \
             (@russia OR @ukraine OR @putin OR @zelensky)",
        );
        let Node::And(sides) = &node else {
            panic!("expected an AND, got {node:?}")
        };
        assert_eq!(sides.len(), 2);
        assert!(matches!(&sides[0], Node::Or(v) if v.len() == 5));
        assert!(matches!(&sides[1], Node::Or(v) if v.len() == 4));
        let kinds: Vec<&LeafKind> = node.leaves().into_iter().map(|l| &l.kind).collect();
        assert_eq!(
            kinds,
            [
                &LeafKind::Word("ceasefire".into()),
                &LeafKind::Word("truce".into()),
                &LeafKind::Phrase("peace talks".into()),
                &LeafKind::Phrase("peace deal".into()),
                &LeafKind::Prefix("negotiat".into()),
                &LeafKind::Entity("russia".into()),
                &LeafKind::Entity("ukraine".into()),
                &LeafKind::Entity("putin".into()),
                &LeafKind::Entity("zelensky".into()),
            ]
        );
        check("ceasefire NEAR/10 @putin", "ceasefire NEAR/10 @putin");
        check("title:ceasefire", "title:ceasefire");
        check("перемирие OR переговоры", "перемирие OR переговоры");
    }

    #[test]
    fn leaves_in_order_with_columns() {
        let node = parse("NOT a (b OR \"c d\") NEAR/2 @e title:f*").unwrap();
        let leaves: Vec<(String, usize)> = node
            .leaves()
            .into_iter()
            .map(|l| (l.to_string(), l.column))
            .collect();
        assert_eq!(
            leaves,
            [
                ("a".to_string(), 5),
                ("b".to_string(), 8),
                ("\"c d\"".to_string(), 13),
                ("@e".to_string(), 27),
                ("title:f*".to_string(), 36),
            ]
        );
        // Columns count characters, not bytes.
        let node = parse("перемирие OR переговоры").unwrap();
        let columns: Vec<usize> = node.leaves().iter().map(|l| l.column).collect();
        assert_eq!(columns, [1, 14]);
    }

    #[test]
    fn empty_queries() {
        check_err("", 1, "empty query");
        check_err("   \t\n", 1, "empty query");
    }

    #[test]
    fn unbalanced_and_empty_groups() {
        check_err("(a OR b", 1, "unclosed (: expected a ) before end of query");
        check_err("a (b (c) d", 3, "unclosed (");
        check_err("(a (b", 4, "unclosed (");
        check_err("((((", 4, "unclosed (");
        check_err("a OR b)", 7, "unmatched ): expected a ( before it");
        check_err(")", 1, "unmatched )");
        check_err("(a)) (b", 4, "unmatched )");
        check_err("()", 1, "empty group: expected a term between ( and )");
        check_err("a (  ) b", 3, "empty group");
        check_err("(())", 2, "empty group");
        // Columns are characters: the Cyrillic word is 9 characters but 18 bytes.
        check_err("перемирие)", 10, "unmatched )");
        check_err("перемирие (", 11, "unclosed (");
    }

    #[test]
    fn missing_operands() {
        check_err(
            "ceasefire AND",
            11,
            "expected a term after AND, found end of query",
        );
        let err = parse("ceasefire AND").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 11: expected a term after AND, found end of query"
        );
        check_err("OR x", 1, "expected a term before OR");
        check_err("AND", 1, "expected a term before AND");
        check_err("NOT", 1, "expected a term after NOT, found end of query");
        check_err("a NOT", 3, "expected a term after NOT, found end of query");
        check_err("a OR", 3, "expected a term after OR, found end of query");
        check_err("(a OR) b", 6, "expected a term after OR, found )");
        check_err("(AND a)", 2, "expected a term after (, found AND");
        check_err("(NOT) a", 5, "expected a term after NOT, found )");
    }

    #[test]
    fn operators_in_a_row() {
        check_err("a AND OR b", 7, "expected a term after AND, found OR");
        check_err("a OR AND b", 6, "expected a term after OR, found AND");
        check_err("a AND AND b", 7, "expected a term after AND, found AND");
        check_err("a OR OR b", 6, "expected a term after OR, found OR");
        check_err("a NOT OR b", 7, "expected a term after NOT, found OR");
        check_err(
            "a AND NEAR/5 b",
            7,
            "expected a term after AND, found NEAR/5",
        );
        // NOT is a term of its own, so these are fine.
        check("a AND NOT b", "a AND NOT b");
        check("a OR NOT b", "a OR NOT b");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let ok = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        check(&ok, "a");
        let deep = format!(
            "{}a{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        check_err(&deep, MAX_DEPTH + 1, "nesting deeper than 64 levels");
        let huge = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
        check_err(&huge, 65, "nesting deeper than 64 levels");
        check_err(&"(".repeat(10_000), 10_000, "unclosed (");
        check_err(&")".repeat(10_000), 1, "unmatched )");
        let nots = format!("{}a", "NOT ".repeat(10_000));
        check_err(&nots, 4 * 64 + 1, "nesting deeper than 64 levels");
        let nears = format!("a{}", " NEAR/1 a".repeat(10_000));
        check_err(&nears, 3 + 9 * 64, "nesting deeper than 64 levels");
        // Wide is fine: only depth is limited.
        let wide = vec!["a"; 10_000].join(" OR ");
        assert!(matches!(parse(&wide), Ok(Node::Or(v)) if v.len() == 10_000));
        let adjacent = "(a b) ".repeat(5_000);
        assert!(matches!(parse(&adjacent), Ok(Node::And(v)) if v.len() == 10_000));
    }

    #[test]
    fn display_of_hand_built_trees() {
        let a = || word("a", 0);
        let b = || word("b", 0);
        let nested = Node::And(vec![a(), Node::And(vec![b(), a()])]);
        assert_eq!(nested.to_string(), "a AND (b AND a)");
        let or_in_not = Node::Not(Box::new(Node::Or(vec![a(), b()])));
        assert_eq!(or_in_not.to_string(), "NOT (a OR b)");
        assert_eq!(Node::Or(vec![]).to_string(), "");
        assert_eq!(Node::And(vec![a()]).to_string(), "a");
    }

    /// A small deterministic generator (xorshift): no extra dependency, reproducible.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    /// Whatever the input: no panic; an error has a column inside the query (or 1);
    /// a success prints to a text that parses back to the same tree.
    fn assert_well_behaved(input: &str) {
        let label = short(input);
        match parse(input) {
            Ok(node) => {
                let text = node.to_string();
                let again =
                    parse(&text).unwrap_or_else(|e| panic!("{} from {label}: {e}", short(&text)));
                assert_eq!(strip(&again), strip(&node), "round trip of {label}");
                let length = input.chars().count();
                for leaf in node.leaves() {
                    assert!(leaf.column >= 1 && leaf.column <= length, "{label}");
                }
            }
            Err(err) => {
                let length = input.chars().count().max(1);
                assert!(
                    err.column >= 1 && err.column <= length,
                    "{label}: column out of range: {err}"
                );
                assert!(!err.message.is_empty());
                assert!(!err.message.ends_with('.'), "{label}: {err}");
            }
        }
    }

    #[test]
    fn odd_inputs_never_panic() {
        let odd = [
            "\"",
            "\"\"\"",
            "((((",
            "))))",
            ")(",
            "@",
            "@@",
            "*",
            "**",
            ":",
            "title:",
            "body:\"",
            "NEAR/",
            "NEAR/1",
            "NOT NOT",
            "AND OR NOT",
            "\u{0}",
            "\u{feff}a",
            "a\u{200b}b",
            "\u{301}",
            "@\u{301}",
            "🕊️ OR ☮",
            "\"🕊️\"",
            "title:🕊️*",
            "\r\n",
            "a\"b",
            "(\"a)\"",
            "(a\"b)\"",
            "ﬁ ǅ İ",
        ];
        for input in odd {
            assert_well_behaved(input);
        }
    }

    #[test]
    fn fuzz_random_queries() {
        let pieces = [
            " ",
            " ",
            " ",
            "a",
            "b",
            "ceasefire",
            "перемирие",
            "AND",
            "OR",
            "NOT",
            "NEAR/3",
            "NEAR/",
            "NEAR",
            "(",
            ")",
            "\"",
            "*",
            "@",
            "@putin",
            "title:",
            "body:",
            "foo:",
            ":",
            "x*",
            "\"peace talks\"",
            "and",
            "10:30",
            "🕊️",
            "\u{301}",
            "-",
            "'",
            "\t",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut parsed = 0;
        for _ in 0..20_000 {
            let len = 1 + rng.next() % 12;
            let input: String = (0..len).map(|_| rng.pick(&pieces)).collect();
            if parse(&input).is_ok() {
                parsed += 1;
            }
            assert_well_behaved(&input);
        }
        // Make sure the generator exercises successes as well as errors.
        assert!(parsed > 1_000, "only {parsed} random queries parsed");
    }
}
