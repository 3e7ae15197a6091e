//! Topic rules: a query tree compiled against the rule set's keys, evaluated on the hits
//! of one item.
//!
//! Semantics, in the order they apply:
//!
//! - a word, phrase or prefix leaf is true when the item holds it on word boundaries in
//!   the leaf's field (`title:`, `body:`, or either); `@id` is true when any alias of the
//!   entity is there;
//! - `AND`, `OR`, `NOT` are boolean; `a NEAR/n b` is true when an occurrence of `a` and
//!   one of `b` in the same field are at most `n` words apart;
//! - a matching item is scored from the positive leaves (those not under `NOT`) that
//!   were found: 3 for a leaf found in the title, plus 1 per body occurrence up to 3 per
//!   leaf. Title hits weigh more because a headline names what a story is about; the
//!   cap keeps one word repeated in a long text from outweighing breadth. A match
//!   scoring below the topic's `min_score` is dropped.
//!
//! docs/query.md ("Meaning", "Scoring", "Explain") is the contract.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::hits::{Hits, Key};
use super::text::Occurrence;
use crate::model::{Topic, TopicMatch};
use crate::query::{Field, LeafKind, Node};

/// A topic with its query resolved to keys.
#[derive(Debug)]
pub struct CompiledTopic {
    pub topic: Topic,
    pub root: CNode,
}

/// A query node whose leaves are keys.
#[derive(Debug)]
pub enum CNode {
    Leaf {
        key: Option<Key>,
        field: Field,
        /// The leaf as written, reported in `matched`.
        label: String,
    },
    And(Vec<CNode>),
    Or(Vec<CNode>),
    Not(Box<CNode>),
    Near {
        left: Box<CNode>,
        right: Box<CNode>,
        distance: u32,
    },
}

const TITLE_WEIGHT: f64 = 3.0;
const BODY_WEIGHT: f64 = 1.0;
const BODY_CAP: usize = 3;
/// Entities are named in most news items, so a topic is better indexed under its
/// words; an entity key costs this many word keys when triggers are chosen.
const ENTITY_TRIGGER_COST: usize = 50;

/// Resolves a query's leaves: entities by id, terms through `term_id`.
pub fn compile(
    node: &Node,
    entity_ids: &HashMap<&str, u32>,
    term_id: &mut dyn FnMut(&LeafKind) -> u32,
) -> CNode {
    match node {
        Node::Leaf(leaf) => {
            let key = match &leaf.kind {
                LeafKind::Entity(id) => entity_ids.get(id.as_str()).map(|&e| Key::Entity(e)),
                kind => Some(Key::Term(term_id(kind))),
            };
            CNode::Leaf {
                key,
                field: leaf.field,
                label: leaf.to_string(),
            }
        }
        Node::And(children) => CNode::And(
            children
                .iter()
                .map(|c| compile(c, entity_ids, term_id))
                .collect(),
        ),
        Node::Or(children) => CNode::Or(
            children
                .iter()
                .map(|c| compile(c, entity_ids, term_id))
                .collect(),
        ),
        Node::Not(inner) => CNode::Not(Box::new(compile(inner, entity_ids, term_id))),
        Node::Near {
            left,
            right,
            distance,
        } => CNode::Near {
            left: Box::new(compile(left, entity_ids, term_id)),
            right: Box::new(compile(right, entity_ids, term_id)),
            distance: *distance,
        },
    }
}

/// Keys of which at least one must be hit for `node` to be true, or `None` when it can
/// be true with no hit at all. For `AND` only the cheapest child's keys are needed.
pub fn triggers(node: &CNode) -> Option<Vec<Key>> {
    match node {
        CNode::Leaf { key: Some(key), .. } => Some(vec![*key]),
        // A leaf that can never match: the topic can only match through other leaves,
        // so an empty trigger set (never evaluated through it) is right.
        CNode::Leaf { key: None, .. } => Some(Vec::new()),
        CNode::Or(children) => {
            let mut all = Vec::new();
            for child in children {
                all.extend(triggers(child)?);
            }
            Some(all)
        }
        CNode::And(children) => children
            .iter()
            .filter_map(triggers)
            .min_by_key(|keys| trigger_cost(keys)),
        CNode::Near { left, right, .. } => [triggers(left), triggers(right)]
            .into_iter()
            .flatten()
            .min_by_key(|keys| trigger_cost(keys)),
        CNode::Not(_) => None,
    }
}

fn trigger_cost(keys: &[Key]) -> usize {
    keys.iter()
        .map(|k| match k {
            Key::Term(_) => 1,
            Key::Entity(_) => ENTITY_TRIGGER_COST,
        })
        .sum()
}

impl CompiledTopic {
    /// The match, if the item matches this topic with enough score.
    pub fn evaluate(&self, hits: &Hits) -> Option<TopicMatch> {
        if !eval(&self.root, hits) {
            return None;
        }
        let (score, matched) = score(&self.root, hits);
        if score < self.topic.min_score {
            return None;
        }
        Some(TopicMatch {
            id: self.topic.id.clone(),
            name: self.topic.name.clone(),
            score,
            matched,
        })
    }

    /// The query with each leaf's count and each group's value, and the verdict.
    pub fn explain(&self, hits: &Hits) -> String {
        let mut out = String::new();
        let value = render(&self.root, hits, &mut out);
        if !value {
            out.push_str(" => no match");
            return out;
        }
        let (score, _) = score(&self.root, hits);
        if score < self.topic.min_score {
            let _ = write!(
                out,
                " => query true, but score {score:.1} is below min_score {:.1}",
                self.topic.min_score
            );
        } else {
            let _ = write!(out, " => match, score {score:.1}");
        }
        out
    }
}

fn leaf_occurrences<'h>(
    key: Option<Key>,
    field: Field,
    hits: &'h Hits,
) -> impl Iterator<Item = Occurrence> + 'h {
    let slice = match key {
        Some(key) => hits.of(key),
        None => &[],
    };
    slice
        .iter()
        .map(|(_, occ)| *occ)
        .filter(move |occ| field == Field::Any || occ.field == field)
}

fn eval(node: &CNode, hits: &Hits) -> bool {
    match node {
        CNode::Leaf { key, field, .. } => leaf_occurrences(*key, *field, hits).next().is_some(),
        CNode::And(children) => children.iter().all(|c| eval(c, hits)),
        CNode::Or(children) => children.iter().any(|c| eval(c, hits)),
        CNode::Not(inner) => !eval(inner, hits),
        CNode::Near { .. } => !positions(node, hits).is_empty(),
    }
}

/// Occurrences that make `node` true, for `NEAR`. Sorted by field and first word.
fn positions(node: &CNode, hits: &Hits) -> Vec<Occurrence> {
    let mut out: Vec<Occurrence> = match node {
        CNode::Leaf { key, field, .. } => leaf_occurrences(*key, *field, hits).collect(),
        CNode::Or(children) => children.iter().flat_map(|c| positions(c, hits)).collect(),
        CNode::And(children) => {
            let parts: Vec<Vec<Occurrence>> = children.iter().map(|c| positions(c, hits)).collect();
            if parts.iter().any(Vec::is_empty) {
                Vec::new()
            } else {
                parts.into_iter().flatten().collect()
            }
        }
        // The parser rejects NOT under NEAR: a negation has no position.
        CNode::Not(_) => Vec::new(),
        CNode::Near {
            left,
            right,
            distance,
        } => near(&positions(left, hits), &positions(right, hits), *distance),
    };
    out.sort_unstable_by_key(|o| (o.field as u8, o.first_word));
    out
}

/// Occurrences of either side that have a partner on the other side within `distance`
/// words. Both inputs are sorted, so each left occurrence looks only at the window of
/// right ones that can be near it: linear in the hits, not quadratic.
fn near(left: &[Occurrence], right: &[Occurrence], distance: u32) -> Vec<Occurrence> {
    let widest = right
        .iter()
        .map(|o| o.last_word - o.first_word)
        .max()
        .unwrap_or(0);
    let mut out = Vec::new();
    let mut right_used = vec![false; right.len()];
    for a in left {
        let from = a.first_word.saturating_sub(distance + widest);
        let start =
            right.partition_point(|b| (b.field as u8, b.first_word) < (a.field as u8, from));
        let mut paired = false;
        for (i, b) in right.iter().enumerate().skip(start) {
            if b.field != a.field || b.first_word > a.last_word + distance {
                break;
            }
            let gap = if b.first_word > a.last_word {
                b.first_word - a.last_word
            } else {
                a.first_word.saturating_sub(b.last_word)
            };
            if gap <= distance {
                paired = true;
                right_used[i] = true;
            }
        }
        if paired {
            out.push(*a);
        }
    }
    out.extend(
        right
            .iter()
            .zip(right_used)
            .filter_map(|(b, used)| used.then_some(*b)),
    );
    out
}

fn score(root: &CNode, hits: &Hits) -> (f64, Vec<String>) {
    let mut total = 0.0;
    let mut matched: Vec<String> = Vec::new();
    let mut visit = |key: Option<Key>, field: Field, label: &str| {
        let mut in_title = false;
        let mut body = 0usize;
        for occ in leaf_occurrences(key, field, hits) {
            match occ.field {
                Field::Title => in_title = true,
                _ => body += 1,
            }
        }
        if in_title || body > 0 {
            total +=
                if in_title { TITLE_WEIGHT } else { 0.0 } + BODY_WEIGHT * body.min(BODY_CAP) as f64;
            if !matched.iter().any(|m| m == label) {
                matched.push(label.to_string());
            }
        }
    };
    positive_leaves(root, &mut visit);
    (total, matched)
}

fn positive_leaves(node: &CNode, f: &mut dyn FnMut(Option<Key>, Field, &str)) {
    match node {
        CNode::Leaf { key, field, label } => f(*key, *field, label),
        CNode::And(children) | CNode::Or(children) => {
            for child in children {
                positive_leaves(child, f);
            }
        }
        CNode::Not(_) => {}
        CNode::Near { left, right, .. } => {
            positive_leaves(left, f);
            positive_leaves(right, f);
        }
    }
}

/// Writes `node` with its values into `out`; returns its value.
fn render(node: &CNode, hits: &Hits, out: &mut String) -> bool {
    let value = eval(node, hits);
    let mark = if value { "yes" } else { "no" };
    match node {
        CNode::Leaf { key, field, label } => {
            let count = leaf_occurrences(*key, *field, hits).count();
            let _ = write!(out, "{label}[{count}]");
        }
        CNode::And(children) | CNode::Or(children) => {
            let op = if matches!(node, CNode::And(_)) {
                " AND "
            } else {
                " OR "
            };
            out.push('(');
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    out.push_str(op);
                }
                render(child, hits, out);
            }
            let _ = write!(out, "){{{mark}}}");
        }
        CNode::Not(inner) => {
            out.push_str("NOT ");
            render(inner, hits, out);
        }
        CNode::Near {
            left,
            right,
            distance,
        } => {
            out.push('(');
            render(left, hits, out);
            let _ = write!(out, " NEAR/{distance} ");
            render(right, hits, out);
            let _ = write!(out, "){{{mark}}}");
        }
    }
    value
}
