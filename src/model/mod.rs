//! Domain types shared by the stages: what an entity and a topic are, and what the
//! pipeline finds in an item. Data only; behaviour lives in the stage modules.

pub mod payload;

use std::fmt;

use crate::query::Node;

/// A dictionary entity: a person, place or organisation known by several names.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Lower-case id used in queries as `@id`.
    pub id: String,
    pub kind: EntityKind,
    /// The display name.
    pub name: String,
    /// Every spelling to match, the name included. An alias ending in `*` matches as a
    /// prefix, for languages that inflect names (`Путин*` finds `Путина`, `Путину`).
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    Person,
    Place,
    Org,
    Other,
}

impl EntityKind {
    pub fn parse(s: &str) -> Option<EntityKind> {
        match s {
            "person" => Some(EntityKind::Person),
            "place" => Some(EntityKind::Place),
            "org" => Some(EntityKind::Org),
            "other" => Some(EntityKind::Other),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Person => "person",
            EntityKind::Place => "place",
            EntityKind::Org => "org",
            EntityKind::Other => "other",
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tracked topic: a query, and where its alerts go.
#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    pub id: String,
    pub name: String,
    /// The query as written in the config, for messages.
    pub query_text: String,
    pub query: Node,
    /// A match scoring below this is not a match.
    pub min_score: f64,
    pub sinks: Vec<String>,
    /// When the topic is new or changed, the daemon raises its alerts for matching
    /// items stored this far back, once (docs/config.md, `backfill`).
    pub backfill: Option<std::time::Duration>,
    /// `story.updated` follow-ups, when `updates = true` (docs/config.md).
    pub updates: Option<Updates>,
}

/// When a story that alerted on a topic is news again: once it has `grow_by` more
/// copies than at its alert or last update, and `interval` has passed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Updates {
    pub grow_by: u32,
    pub interval: std::time::Duration,
}

impl Updates {
    /// `grow_by` when not set.
    pub const GROW_BY: u32 = 3;
    /// `update_interval` when not set.
    pub const INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
}

/// What the pipeline found in one article.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// Entities mentioned, in order of first mention.
    pub entities: Vec<EntityMention>,
    /// Topics matched, in config order.
    pub topics: Vec<TopicMatch>,
}

/// An entity found in an article.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityMention {
    pub id: String,
    pub name: String,
    pub kind: EntityKind,
    /// Separate mentions; overlapping or adjacent aliases ("Russian President Vladimir
    /// Putin") count once.
    pub mentions: u32,
    pub first: Position,
}

/// Where something first occurs: a field and a character offset into its cleaned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub in_title: bool,
    /// Offset in characters (not bytes) into the cleaned title or body.
    pub char_offset: usize,
}

/// A topic an article matched.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicMatch {
    pub id: String,
    pub name: String,
    pub score: f64,
    /// The query leaves that were found, as written in the query (`ceasefire`, `@putin`).
    pub matched: Vec<String>,
}
