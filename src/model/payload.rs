//! What receivers get: the JSON bodies of docs/webhooks.md, one per event type.
//!
//! These are wire types, kept apart from the domain types: fields may be added, never
//! renamed. They are here, below the stages, because the store keeps them (the outbox)
//! and the alert stage sends them. A body is built once, when its record is written to
//! the outbox, and sent unchanged on every retry, so a receiver deduplicating on `id`
//! sees the same bytes.
//!
//! Every body names its event type in `event` (and webhooks in a header): `story.new`
//! (the alert on a new story, [`AlertPayload`]), `story.updated` and `item.updated`
//! (follow-ups, [`StoryUpdated`], [`ItemUpdated`]). [`Payload`] is one of them, as the
//! outbox keeps it; a new event type is a variant there, a body type here, and its
//! rendering in each sink.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `type` of a new story's alert body.
pub const ALERT_TYPE: &str = "newswatch.alert";
/// `version` of the body layout.
pub const ALERT_VERSION: u32 = 1;
/// `type` of a follow-up's body (every event but `story.new`).
pub const EVENT_TYPE: &str = "newswatch.event";
/// `version` of the follow-up body layout.
pub const EVENT_VERSION: u32 = 1;

/// The event types (`event` in every body, and the `webhook-event` header).
pub const STORY_NEW: &str = "story.new";
pub const STORY_UPDATED: &str = "story.updated";
pub const ITEM_UPDATED: &str = "item.updated";
pub const FEED_UNHEALTHY: &str = "feed.unhealthy";
pub const FEED_RECOVERED: &str = "feed.recovered";

/// A body in the outbox: one event of one type.
///
/// Stored (postcard) with its variant's index: a new event type is a variant added
/// **at the end**, never between, or stored events would read as another type. Sent
/// as the variant's body alone ([`Payload::to_json`]), whose `event` field names the
/// type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    /// `story.new`: a story matched a topic for the first time.
    Alert(AlertPayload),
    /// `story.updated`: more outlets joined a story that alerted.
    StoryUpdated(StoryUpdated),
    /// `item.updated`: an item of a story that alerted came back changed.
    ItemUpdated(ItemUpdated),
    /// `feed.unhealthy` / `feed.recovered`: a feed entered or left a bad health
    /// state. Appended last: postcard stores the variant's index.
    FeedHealth(FeedHealthEvent),
}

impl Payload {
    /// The event id, `webhook-id`: stable across retries; receivers dedupe on it.
    pub fn id(&self) -> &str {
        match self {
            Payload::Alert(p) => &p.id,
            Payload::StoryUpdated(p) => &p.id,
            Payload::ItemUpdated(p) => &p.id,
            Payload::FeedHealth(p) => &p.id,
        }
    }

    /// The event type, e.g. `story.updated`.
    pub fn event(&self) -> &str {
        match self {
            Payload::Alert(p) => &p.event,
            Payload::StoryUpdated(p) => &p.event,
            Payload::ItemUpdated(p) => &p.event,
            Payload::FeedHealth(p) => &p.event,
        }
    }

    pub fn detected_at(&self) -> DateTime<Utc> {
        match self {
            Payload::Alert(p) => p.detected_at,
            Payload::StoryUpdated(p) => p.detected_at,
            Payload::ItemUpdated(p) => p.detected_at,
            Payload::FeedHealth(p) => p.detected_at,
        }
    }

    /// The topic the event is about; an event of another kind (a feed's health) has
    /// none.
    pub fn topic(&self) -> Option<&TopicRef> {
        match self {
            Payload::Alert(p) => Some(&p.topic),
            Payload::StoryUpdated(p) => Some(&p.topic),
            Payload::ItemUpdated(p) => Some(&p.topic),
            Payload::FeedHealth(_) => None,
        }
    }

    /// The topic's name, or "newswatch" for an event without a topic: what chat
    /// messages lead with.
    pub fn topic_name(&self) -> &str {
        self.topic().map_or("newswatch", |t| t.name.as_str())
    }

    /// A one-line title for lists and logs: the item's or the story's title.
    pub fn title(&self) -> &str {
        match self {
            Payload::Alert(p) => &p.item.title,
            Payload::StoryUpdated(p) => &p.story.title,
            Payload::ItemUpdated(p) => &p.item.title,
            Payload::FeedHealth(p) => &p.feed.name,
        }
    }

    /// The new story's alert, when this is one.
    pub fn as_alert(&self) -> Option<&AlertPayload> {
        match self {
            Payload::Alert(p) => Some(p),
            _ => None,
        }
    }

    /// The body as sent: the variant's JSON alone.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Payload::Alert(p) => serde_json::to_vec(p),
            Payload::StoryUpdated(p) => serde_json::to_vec(p),
            Payload::ItemUpdated(p) => serde_json::to_vec(p),
            Payload::FeedHealth(p) => serde_json::to_vec(p),
        }
    }
}

/// `story.new`: the alert on a story's first match of a topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertPayload {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// Always [`STORY_NEW`].
    pub event: String,
    /// The alert id: stable across retries; receivers dedupe on it.
    pub id: String,
    pub topic: TopicRef,
    pub item: ItemRef,
    pub entities: Vec<EntityRef>,
    pub matched: Vec<String>,
    pub score: f64,
    pub story: StoryRef,
    pub detected_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRef {
    pub id: String,
    /// The feed's name.
    pub feed: String,
    pub title: String,
    pub url: Option<String>,
    pub published: Option<DateTime<Utc>>,
    /// The start of the cleaned text.
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityRef {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub mentions: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoryRef {
    pub id: String,
    pub related: Vec<RelatedRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelatedRef {
    pub feed: String,
    pub url: Option<String>,
}

/// `story.updated`: a story that alerted on a topic has grown by at least the topic's
/// `grow_by` copies since the alert or the last update (docs/webhooks.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoryUpdated {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// Always [`STORY_UPDATED`].
    pub event: String,
    pub id: String,
    pub topic: TopicRef,
    pub story: StorySummary,
    /// 1 for the first update of the story on this topic and sink, then 2, …
    pub step: u32,
    /// The copies that joined since the alert or the last update, oldest first.
    pub added: Vec<SourceRef>,
    pub detected_at: DateTime<Utc>,
}

/// A story as a follow-up names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorySummary {
    pub id: String,
    /// The title of the story's first item.
    pub title: String,
    pub url: Option<String>,
    /// Copies of the story known now, its first item included.
    pub sources: u32,
}

/// One copy of a story.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRef {
    /// The feed's URL, as configured.
    pub feed: String,
    pub title: String,
    pub url: Option<String>,
}

/// `item.updated`: an item of a story that alerted came back with a materially
/// different title or text (docs/stories.md, "Changed items").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemUpdated {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// Always [`ITEM_UPDATED`].
    pub event: String,
    pub id: String,
    pub topic: TopicRef,
    /// The story the item belongs to.
    pub story_id: String,
    /// The item as it is now.
    pub item: ItemRef,
    /// The title it had before.
    pub previous_title: String,
    pub detected_at: DateTime<Utc>,
}

/// `feed.unhealthy` / `feed.recovered`: a feed's health changed (docs/webhooks.md),
/// sent to `[health] sink` once per change, never per poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedHealthEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// [`FEED_UNHEALTHY`] or [`FEED_RECOVERED`].
    pub event: String,
    pub id: String,
    pub feed: FeedRef,
    /// The state now: `stale`, `failing`, `gone`, `moved`, or `ok` when recovered.
    pub state: String,
    /// The state before.
    pub was: String,
    /// Why the state is bad; `None` when recovered.
    pub reason: Option<String>,
    /// For `moved`: the url to put in the config.
    pub moved_to: Option<String>,
    pub detected_at: DateTime<Utc>,
}

/// A feed as a health event names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedRef {
    pub name: String,
    pub url: String,
}
