//! The alert as receivers see it: the JSON body of docs/webhooks.md ("Body").
//!
//! This is a wire type, kept apart from the domain types: fields may be added, never
//! renamed. It is here, below the stages, because the store keeps it (the outbox) and
//! the alert stage sends it. The body is built once, when the alert is written to the outbox, and sent
//! unchanged on every retry, so a receiver deduplicating on `id` sees the same bytes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `type` of every alert body.
pub const ALERT_TYPE: &str = "newswatch.alert";
/// `version` of the body layout.
pub const ALERT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertPayload {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
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
