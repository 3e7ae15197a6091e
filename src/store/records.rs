//! The records the store keeps and the listings it returns: what every backend reads
//! and writes, independent of how it lays them out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::payload::{AlertPayload, Payload};

use super::{show_key, StoreError};

/// An item as stored: the cleaned text and what the pipeline found in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredItem {
    pub id: String,
    /// The feed's configured URL.
    pub feed: String,
    pub feed_name: String,
    pub title: String,
    pub url: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub fetched: DateTime<Utc>,
    /// The cleaned body.
    pub text: String,
    pub entities: Vec<StoredEntity>,
    pub topics: Vec<StoredTopic>,
    /// The story the item belongs to.
    pub story: String,
    /// True for the first copy of its story, the one that alerts.
    pub is_story_lead: bool,
    pub fingerprint: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEntity {
    pub id: String,
    pub mentions: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTopic {
    pub id: String,
    pub score: f64,
    pub matched: Vec<String>,
}

/// A story: the first copy of an article and the copies seen after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredStory {
    pub id: String,
    pub first_item: String,
    pub first_seen: DateTime<Utc>,
    pub fingerprint: u64,
    pub related: Vec<Related>,
    /// Topics this story has raised alerts for; a later copy does not alert on them again.
    #[serde(default)]
    pub alerted: Vec<String>,
}

/// Where an alert is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Pending,
    Delivered,
    Failed,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Delivered => "delivered",
            AlertStatus::Failed => "failed",
        }
    }
}

/// An event in the outbox (a new story's alert, or a follow-up; docs/webhooks.md):
/// what to send, where, and how its delivery went.
///
/// `topic`, `item_id` and `story` say what the event is about, for listings; an
/// event not about a story leaves the ones it has no use for empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    /// Stable across retries and restarts: derived from story, topic and sink (and,
    /// for a follow-up, its event type and step; `identity::event_id`).
    pub id: String,
    pub sink: String,
    pub topic: String,
    pub item_id: String,
    pub story: String,
    pub created: DateTime<Utc>,
    pub status: AlertStatus,
    pub attempts: u32,
    pub next_attempt: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The body, built once so every retry sends the same bytes.
    pub payload: Payload,
}

impl StoredAlert {
    /// The event type of its body, e.g. `story.new`.
    pub fn event(&self) -> &str {
        self.payload.event()
    }
}

/// The outbox records of schema 5 and earlier, which carried one kind of body, a new
/// story's alert without its `event` field: read as `story.new` (`codec::decode_alert`).
pub(super) mod v1 {
    use super::*;
    use crate::model::payload::{EntityRef, ItemRef, StoryRef, TopicRef, STORY_NEW};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct StoredAlert {
        pub id: String,
        pub sink: String,
        pub topic: String,
        pub item_id: String,
        pub story: String,
        pub created: DateTime<Utc>,
        pub status: AlertStatus,
        pub attempts: u32,
        pub next_attempt: DateTime<Utc>,
        pub last_error: Option<String>,
        pub delivered_at: Option<DateTime<Utc>>,
        pub payload: Body,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Body {
        #[serde(rename = "type")]
        pub kind: String,
        pub version: u32,
        pub id: String,
        pub topic: TopicRef,
        pub item: ItemRef,
        pub entities: Vec<EntityRef>,
        pub matched: Vec<String>,
        pub score: f64,
        pub story: StoryRef,
        pub detected_at: DateTime<Utc>,
    }

    impl From<StoredAlert> for super::StoredAlert {
        fn from(old: StoredAlert) -> Self {
            let b = old.payload;
            super::StoredAlert {
                id: old.id,
                sink: old.sink,
                topic: old.topic,
                item_id: old.item_id,
                story: old.story,
                created: old.created,
                status: old.status,
                attempts: old.attempts,
                next_attempt: old.next_attempt,
                last_error: old.last_error,
                delivered_at: old.delivered_at,
                payload: Payload::Alert(AlertPayload {
                    kind: b.kind,
                    version: b.version,
                    event: STORY_NEW.into(),
                    id: b.id,
                    topic: b.topic,
                    item: b.item,
                    entities: b.entities,
                    matched: b.matched,
                    score: b.score,
                    story: b.story,
                    detected_at: b.detected_at,
                }),
            }
        }
    }
}

/// What a topic with `updates = true` asks of its stories that grow: a
/// `story.updated` event to each of `sinks` once the story has `grow_by` more copies
/// than at its alert or last update, and `interval` has passed since (docs/config.md).
/// The store decides it inside the item transaction ([`Store::write_batch`]).
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRule {
    pub topic: String,
    pub topic_name: String,
    pub sinks: Vec<String>,
    pub grow_by: u32,
    pub interval: std::time::Duration,
}

/// A feed poll's write: new items, the alerts they propose, the sketches of the
/// stories they lead, and the update rules of the topics (see [`Store::write_batch`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Batch<'a> {
    pub items: &'a [StoredItem],
    pub alerts: &'a [StoredAlert],
    pub sketches: &'a [(&'a str, &'a [u32])],
    pub rules: &'a [UpdateRule],
    /// Stored items that came back materially changed: each replaces its stored
    /// version, with the `item.updated` events it proposes.
    pub changed: &'a [ChangedItem],
}

/// An item seen before that came back materially changed (docs/stories.md, "Changed
/// items"), as the daemon proposes it to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedItem {
    /// The new version: the stored one's id, story, lead flag and fetch time, the new
    /// title, text and findings.
    pub item: StoredItem,
    /// `item.updated` events, one per topic with updates and sink: the store keeps
    /// those whose topic the item's story alerted on.
    pub events: Vec<StoredAlert>,
}

/// What tells an item's versions apart: its title (normalised,
/// `identity::title_hash`) and its text's fingerprint. Kept for items on a topic, the
/// ones whose story can have alerted ([`Store::versions_among`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemVersion {
    pub title: u64,
    pub fingerprint: u64,
}

impl ItemVersion {
    pub fn of(item: &StoredItem) -> ItemVersion {
        ItemVersion {
            title: crate::identity::title_hash(&item.title),
            fingerprint: item.fingerprint,
        }
    }

    /// Whether `new` is a material change of this version: another title after
    /// normalisation, or a text whose fingerprint is further than `max_distance` bits
    /// away (so far that it would not be taken for a copy of the old text).
    pub fn changed_to(&self, new: &ItemVersion, max_distance: u32) -> bool {
        self.title != new.title || (self.fingerprint ^ new.fingerprint).count_ones() > max_distance
    }

    /// A number for the version, part of its `item.updated` id.
    pub fn tag(&self) -> u64 {
        self.title ^ self.fingerprint.rotate_left(32)
    }

    pub(super) fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.title.to_be_bytes());
        out[8..].copy_from_slice(&self.fingerprint.to_be_bytes());
        out
    }

    pub(super) fn from_bytes(value: &[u8]) -> Option<ItemVersion> {
        let value: [u8; 16] = value.try_into().ok()?;
        Some(ItemVersion {
            title: u64::from_be_bytes(value[..8].try_into().ok()?),
            fingerprint: u64::from_be_bytes(value[8..].try_into().ok()?),
        })
    }
}

/// Where a story stands with one topic and sink that have updates on: its `step`
/// (0 until its first update), the copies it had then (`sources`, its first item
/// included) and when (`at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoryStep {
    pub step: u32,
    pub sources: u32,
    pub at_ms: i64,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered { at: DateTime<Utc> },
    Retry { next: DateTime<Utc>, error: String },
    Failed { error: String },
}

impl Attempt {
    /// The alert as this attempt leaves it: one more attempt, and delivered, due again
    /// or failed. Every backend records an attempt by this rule.
    pub fn apply(&self, alert: &mut StoredAlert) {
        alert.attempts += 1;
        match self {
            Attempt::Delivered { at } => {
                alert.status = AlertStatus::Delivered;
                alert.delivered_at = Some(*at);
                alert.last_error = None;
            }
            Attempt::Retry { next, error } => {
                alert.next_attempt = *next;
                alert.last_error = Some(error.clone());
            }
            Attempt::Failed { error } => {
                alert.status = AlertStatus::Failed;
                alert.last_error = Some(error.clone());
            }
        }
    }

    /// The outcome as the metrics count it.
    pub fn label(&self) -> &'static str {
        match self {
            Attempt::Delivered { .. } => "delivered",
            Attempt::Retry { .. } => "retry",
            Attempt::Failed { .. } => "failed",
        }
    }
}

/// A later copy of a story.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Related {
    pub item_id: String,
    /// The feed's configured URL.
    pub feed: String,
    pub url: Option<String>,
    pub title: String,
}

/// What the poller remembers about a feed between polls.
///
/// Stored under the `FEED` tag (see `codec.rs`); records of the layout before the
/// health fields ([`FeedStateV1`]) are still read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeedState {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    /// Consecutive failures.
    pub failures: u32,
    pub next_poll: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Where a 301/308 said the feed now lives.
    pub permanent_url: Option<String>,
    pub repairs: u64,
    pub items_total: u64,
    /// The HTTP status of the last answer (after redirects); `None` for a local file
    /// or when no answer came (a refused connection, a timeout).
    pub last_status: Option<u16>,
    /// When the current run of failures began; `None` while the feed succeeds.
    pub failing_since: Option<DateTime<Utc>>,
    /// When the feed last had a new item: the newest item's date (never later than
    /// the poll that saw it), or for a feed that dates no item, the poll that saw
    /// its items change.
    pub last_new_item: Option<DateTime<Utc>>,
    /// The feed's usual gap between new items, in seconds (docs/cli.md, "feeds").
    pub usual_gap_secs: Option<u64>,
    /// A hash of the item ids of the last feed read, for feeds that date no item.
    pub items_digest: Option<u64>,
    /// The health state last recorded by the poller, so that entering or leaving a
    /// bad state is told once, across restarts.
    pub health: FeedHealth,
}

/// A feed's health (docs/cli.md, "feeds"): `ok`, or one of the bad states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedHealth {
    #[default]
    Ok,
    /// No new item for several times its usual gap.
    Stale,
    /// Several consecutive failed polls.
    Failing,
    /// 410 Gone, or 404 Not Found for long.
    Gone,
    /// A permanent redirect: the config should name the new address.
    Moved,
}

impl FeedHealth {
    /// Every state, in the order tables and metrics list them.
    pub const ALL: [FeedHealth; 5] = [
        FeedHealth::Ok,
        FeedHealth::Stale,
        FeedHealth::Failing,
        FeedHealth::Gone,
        FeedHealth::Moved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FeedHealth::Ok => "ok",
            FeedHealth::Stale => "stale",
            FeedHealth::Failing => "failing",
            FeedHealth::Gone => "gone",
            FeedHealth::Moved => "moved",
        }
    }

    pub fn is_bad(self) -> bool {
        self != FeedHealth::Ok
    }
}

/// A feed state as stored before the health fields (JSON of schema 2 and earlier,
/// postcard under the `PLAIN` tag after): read, never written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct FeedStateV1 {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub failures: u32,
    pub next_poll: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Set by a 410 Gone, which then stopped the feed's polls for good.
    pub disabled: Option<String>,
    pub permanent_url: Option<String>,
    pub repairs: u64,
    pub items_total: u64,
}

impl From<FeedStateV1> for FeedState {
    fn from(old: FeedStateV1) -> FeedState {
        // A feed an older build disabled on a 410 is `gone`; it is polled again (at
        // once, then daily while it stays gone), as 410s are now.
        let gone = old.disabled.is_some();
        FeedState {
            etag: old.etag,
            last_modified: old.last_modified,
            last_attempt: old.last_attempt,
            last_success: old.last_success,
            failures: old.failures,
            next_poll: if gone { None } else { old.next_poll },
            last_error: old.last_error,
            permanent_url: old.permanent_url,
            repairs: old.repairs,
            items_total: old.items_total,
            last_status: gone.then_some(410),
            failing_since: if old.failures > 0 || gone {
                old.last_attempt
            } else {
                None
            },
            last_new_item: None,
            usual_gap_secs: None,
            items_digest: None,
            health: if gone {
                FeedHealth::Gone
            } else {
                FeedHealth::Ok
            },
        }
    }
}

/// Which items to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemQuery {
    /// Only items that matched this topic.
    pub topic: Option<String>,
    /// Only items fetched at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many items.
    pub limit: usize,
}

/// What one [`SledStore::prune`] pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub items: usize,
    pub seen: usize,
    pub stories: usize,
    /// Item time-index entries read to find the expired items.
    pub scanned: usize,
    /// False when the pass stopped at its bound and more expired records remain.
    pub done: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub items: usize,
    pub feeds: usize,
    pub stories: usize,
}

/// Records listed from the store, and how many could not be read.
///
/// A damaged page or record (a disk error, a byte flipped on disk) costs only the
/// records on it: listings go on past them, count them in `skipped`, and the caller
/// says so. sled cannot step past an index page it cannot read, so a damaged index
/// ends its listing there (`cut_short`).
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    pub records: Vec<T>,
    /// Entries skipped because their records could not be read or decoded: items
    /// (a record of several items counts each) or alerts.
    pub skipped: usize,
    /// The listing ended early at an unreadable part of an index.
    pub cut_short: bool,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Listing {
            records: Vec::new(),
            skipped: 0,
            cut_short: false,
        }
    }
}

impl<T> std::ops::Deref for Listing<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.records
    }
}

impl<'a, T> IntoIterator for &'a Listing<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.records.iter()
    }
}

impl<T> IntoIterator for Listing<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.records.into_iter()
    }
}

impl<T> Listing<T> {
    /// Whether anything could not be read.
    pub fn is_damaged(&self) -> bool {
        self.skipped > 0 || self.cut_short
    }

    /// Counts an unreadable record, or fails on an error that is not damage (an I/O
    /// error may pass, and deserves to be seen as an error).
    pub(super) fn skip_damaged(
        &mut self,
        tree: &'static str,
        key: &[u8],
        cause: sled::Error,
        op: &'static str,
    ) -> Result<(), StoreError> {
        if !matches!(cause, sled::Error::Corruption { .. }) {
            return Err(StoreError::Db { op, cause });
        }
        tracing::warn!(tree, key = %show_key(key), error = %cause, "Skipped an unreadable record.");
        self.skipped += 1;
        Ok(())
    }

    /// Ends a listing at an index page that cannot be read.
    pub(super) fn stop_at_damage(
        &mut self,
        tree: &'static str,
        cause: sled::Error,
        op: &'static str,
    ) -> Result<(), StoreError> {
        if !matches!(cause, sled::Error::Corruption { .. }) {
            return Err(StoreError::Db { op, cause });
        }
        tracing::warn!(tree, error = %cause, "Stopped listing at an unreadable part of the store.");
        self.cut_short = true;
        Ok(())
    }
}
