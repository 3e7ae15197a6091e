//! The embedded store: everything newswatch keeps between runs, in one sled directory.
//!
//! This is the only module that touches sled. Records are compact (postcard, and
//! zstd for records with text; schema 3), written and read only by `codec.rs`, which
//! also reads the JSON records of earlier schemas; keys that must sort by time start
//! with the time in milliseconds since the epoch as a big-endian `u64`, so sled's
//! byte order is time order.
//!
//! Trees and their layout (`++` is concatenation):
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `meta` | `schema_version` | `u32` BE, currently [`SCHEMA_VERSION`] |
//! | `meta` | `items_written` | items ever stored, `u64` BE |
//! | `meta` | `items_stored` | items stored now, `u64` BE (kept, not counted at open) |
//! | `items` | fetched ms ++ item id | [`StoredItem`], compressed |
//! | `by_time` | fetched ms ++ item id | `[1]` when the item matched a topic, else empty |
//! | `seen` | item id | first-seen ms (`u64` BE) |
//! | `seen_by_time` | first-seen ms ++ item id | empty |
//! | `topic_index` | topic id ++ `0x00` ++ fetched ms ++ item id | score (`f64` BE) |
//! | `stories` | story id | [`StoredStory`] |
//! | `stories_by_time` | first-seen ms ++ story id | empty |
//! | `story_sketches` | first-seen ms ++ fingerprint (`u64` BE) ++ story id | the lead's sketch, `u32` BE each |
//! | `feeds` | feed URL as configured | [`FeedState`] |
//! | `outbox` | alert id | [`StoredAlert`], compressed |
//! | `outbox_due` | sink id ++ `0x00` ++ next attempt ms ++ alert id | empty; pending alerts only |
//!
//! Alerts are written in the same transaction as their item, and whether a story
//! alerts on a topic is decided inside it from the story record (`alerted`), so a
//! story raises one alert per topic and sink even when its copies arrive together.
//! Why the time-ordered companions: pruning must be a bounded pass in time order.
//! `by_time` carries the topic flag so that items kept for the longer retention are
//! skipped without decoding them; `seen_by_time` and `stories_by_time` let old seen
//! ids and stories be found without scanning trees keyed by id, which hold months of
//! entries.
//!
//! `story_sketches` holds each story's sketch (`pipeline::dedup::sketch`) for the
//! daemon's story window, which keeps only fingerprints, times and a few sketch values
//! in memory and reads a candidate's whole sketch from here. The key starts with what
//! the window holds of a story (first-seen time and fingerprint), so a candidate's
//! sketches are one prefix scan away, and the tree is in time order for pruning, which
//! follows the items' history period (the window never looks further back). Stores
//! written before this tree existed have no sketches for their stories; the daemon
//! computes those from the leads' texts at start ([`Store::put_story_sketch`]).
//!
//! `items` is keyed like `by_time`, in time order, not by id: new items are then
//! appended at the end of the tree instead of landing on a random page each. With
//! random keys sled kept rewriting and caching pages all over the tree; written in
//! time order, 100,000 items of 2,200 bytes took 18 instead of 42 µs of CPU each and
//! the writer held 25 instead of 98-108 MiB (`examples/keyorder.rs`). An item is found
//! by id through `seen`, whose value is its fetch time. Schema 1 keyed `items` by id;
//! opening such a store moves its items once ([`SCHEMA_VERSION`] 2).
//!
//! `seen` outlives `items`: an item's record goes after the history period, but its id
//! stays for the retention period, so an item that reappears in a feed after its
//! record was pruned is still not processed again.
//!
//! sled recovers a log damaged in its middle by reading up to the damage and dropping
//! the rest, without an error, and rewrites its files as it goes: a read-only command
//! makes the loss permanent. Beside sled's files, [`FLUSHED_FILE`] holds
//! `items_written` as of the last flush; a store that comes back with a lower count is
//! refused ([`StoreError::Lost`]) instead of being shown short. A panic inside sled's
//! open (it has one for a zeroed segment) or a failed checksum is
//! [`StoreError::Damaged`]; when a snapshot file is what failed, it is renamed
//! `damaged-snap.*` and sled rebuilds its page table from the log instead.
//!
//! A record that does not decode is an error naming the tree and key when it was asked
//! for by key ([`Store::get_item`], [`Store::feed_state`]), and is skipped with a
//! warning when it turns up in a listing. Nothing here panics on stored bytes.
//!
//! sled writes to disk in the background: a write is durable only after
//! [`Store::flush`], so callers flush before acknowledging anything that must survive
//! a crash.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::{Transactional, Tree};

use crate::alert::payload::AlertPayload;

mod check;
mod codec;
mod prune;
mod schema;

pub use check::{BackupReport, CheckReport};

/// The layout version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 3;
/// Written while a schema-1 store's items are being moved (see
/// [`Store::key_items_by_time`]): a build that reads schema 1 must not open a store
/// half moved, and this build goes on with the move.
const SCHEMA_MOVING_1_TO_2: u32 = 0x0001_0002;

const SCHEMA_KEY: &[u8] = b"schema_version";
/// Items ever written to the store (u64 BE), raised in the same transaction as the
/// items: never lowered, so it can be compared with [`FLUSHED_FILE`].
const WRITTEN_KEY: &[u8] = b"items_written";
/// Items stored now (u64 BE), raised and lowered in the transactions that store and
/// prune them, so that opening a store does not walk it to count them.
const STORED_KEY: &[u8] = b"items_stored";
/// A file beside sled's, holding `WRITTEN_KEY`'s value as of the last flush that
/// succeeded. sled recovers a log damaged in the middle by dropping everything after
/// the damage, silently; a store whose counter comes back lower than this file says
/// has lost flushed items, and is refused with a message rather than shown short.
pub const FLUSHED_FILE: &str = "newswatch-flushed";
/// The `by_time` value of an item that matched a topic.
const MATCHED: &[u8] = &[1];
/// The value of index entries that carry nothing but their key.
const EMPTY: &[u8] = &[];
/// Tree names, used for opening and in error messages.
const META: &str = "meta";
const ITEMS: &str = "items";
const BY_TIME: &str = "by_time";
const SEEN: &str = "seen";
const SEEN_BY_TIME: &str = "seen_by_time";
const TOPIC_INDEX: &str = "topic_index";
const STORIES: &str = "stories";
const STORIES_BY_TIME: &str = "stories_by_time";
const STORY_SKETCHES: &str = "story_sketches";
const FEEDS: &str = "feeds";
const OUTBOX: &str = "outbox";
const OUTBOX_DUE: &str = "outbox_due";

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The directory could not be opened (permissions, another process holds it, a
    /// damaged log).
    #[error("opening the store at {}: {cause}", path.display())]
    Open { path: PathBuf, cause: sled::Error },
    /// A backup could not be made where it was asked for.
    #[error("backing up the store to {}: {reason}", path.display())]
    Backup { path: PathBuf, reason: String },
    /// sled gave up reading its own log: the files were damaged outside newswatch.
    #[error(
        "the store at {} is damaged and cannot be opened (sled: {reason}); move it aside \
         and restore a backup, or start a new store there",
        path.display()
    )]
    Damaged { path: PathBuf, reason: String },
    /// sled opened the store, but with fewer items than were flushed to it.
    #[error(
        "the store at {} has lost items: {flushed} had been written and flushed, but \
         sled's log gives back only {recovered} (its files were damaged: a disk error, \
         or an edit); restore a backup, or delete {} to go on with what is left",
        path.display(),
        path.join(FLUSHED_FILE).display()
    )]
    Lost {
        path: PathBuf,
        flushed: u64,
        recovered: u64,
    },
    /// Another process holds the store: sled allows one process at a time.
    #[error(
        "the store at {} is in use by another newswatch process (a running `newswatch run`?); \
         stop it first, or read through its API (/api/items, /api/alerts)",
        path.display()
    )]
    Locked { path: PathBuf },
    /// The store was written by a build with another layout.
    #[error("store schema version {found} is not supported by this build (it reads version {supported})")]
    Schema { found: u32, supported: u32 },
    /// A read, write or flush failed (I/O error, full disk).
    // The cause is in the message, not a `source`, so that a chain printed with
    // anyhow's `{:#}` does not repeat it.
    #[error("{op}: {cause}")]
    Db {
        op: &'static str,
        cause: sled::Error,
    },
    /// A stored record that does not decode.
    #[error("corrupt record in tree {tree} at key {key}: {reason}")]
    Corrupt {
        tree: &'static str,
        key: String,
        reason: String,
    },
    /// A record that could not be encoded.
    #[error("encoding a record for tree {tree} at key {key}: {reason}")]
    Encode {
        tree: &'static str,
        key: String,
        reason: String,
    },
}

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

/// An alert in the outbox: what to send, where, and how its delivery went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    /// Stable across retries and restarts: derived from story, topic and sink.
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
    pub payload: AlertPayload,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered { at: DateTime<Utc> },
    Retry { next: DateTime<Utc>, error: String },
    Failed { error: String },
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
    /// Why the feed is no longer polled, e.g. "410 Gone".
    pub disabled: Option<String>,
    /// Where a 301/308 said the feed now lives.
    pub permanent_url: Option<String>,
    pub repairs: u64,
    pub items_total: u64,
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

/// What one [`Store::prune`] pass removed.
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
    /// Records skipped because they could not be read or decoded.
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
    fn skip_damaged(
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
    fn stop_at_damage(
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

/// The store. Cloning is cheap: sled handles are reference-counted.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    /// The store's directory, where [`FLUSHED_FILE`] is kept beside sled's files.
    path: Arc<PathBuf>,
    meta: Tree,
    items: Tree,
    by_time: Tree,
    seen: Tree,
    seen_by_time: Tree,
    topic_index: Tree,
    stories: Tree,
    stories_by_time: Tree,
    story_sketches: Tree,
    feeds: Tree,
    outbox: Tree,
    outbox_due: Tree,
    /// Items stored, kept as a counter: sled's `Tree::len` walks the whole tree (and
    /// fills the page cache doing it), far too costly for a status line every 30 s.
    item_count: Arc<AtomicUsize>,
    /// How far (in milliseconds) prune passes have looked for items without a topic
    /// past the history; see [`Store::expired_items`].
    prune_scanned: Arc<AtomicU64>,
    /// The count last written to [`FLUSHED_FILE`], so that a flush with nothing new
    /// (a burst of 304s) does not write the file again.
    recorded_flushed: Arc<AtomicU64>,
    /// Makes every sketch write fail, to test what the daemon does then.
    #[cfg(test)]
    fail_sketch_writes: Arc<std::sync::atomic::AtomicBool>,
}

/// What [`Store::insert_batch`] did. Once it returns, the items and alerts are
/// stored; their stories' sketches are written after them and may have failed on
/// their own.
#[derive(Debug)]
pub struct Inserted {
    /// Items stored (those not seen before).
    pub new: usize,
    /// The leads of new stories among them, with their sketches, for a caller that
    /// must write them again when `sketches` failed.
    pub leads: Vec<LeadSketch>,
    pub sketches: Result<(), StoreError>,
}

/// A story's sketch with what it is stored under.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadSketch {
    pub story: String,
    pub first_seen: DateTime<Utc>,
    pub fingerprint: u64,
    pub sketch: Vec<u32>,
}

/// sled's page cache. Its default (1 GiB) lets an idle daemon's memory grow with the
/// store; recent items, the seen index and the outbox are what the daemon touches,
/// and they fit in far less.
const CACHE_CAPACITY: u64 = 16 * 1024 * 1024;

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl Store {
    /// Opens (or creates) the store in directory `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_error = |cause: sled::Error| match &cause {
            // sled takes an exclusive lock on the directory; say who holds it.
            // (sled wraps the OS error in its own message, so the kind is lost.)
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("could not acquire lock") =>
            {
                StoreError::Locked {
                    path: path.to_path_buf(),
                }
            }
            _ => StoreError::Open {
                path: path.to_path_buf(),
                cause,
            },
        };
        remove_partial_snapshots(path);
        let db = open_recovering(path).map_err(|failure| failure.into_error(path, open_error))?;
        Store::from_db(db, path)
    }

    /// The store over an open sled database at `path`: its trees, the schema move if
    /// one is due, the lost-items check and the kept count.
    pub(super) fn from_db(db: sled::Db, path: &Path) -> Result<Store, StoreError> {
        let open_error = |cause| StoreError::Open {
            path: path.to_path_buf(),
            cause,
        };
        let tree = |name: &str| db.open_tree(name).map_err(open_error);
        let store = Store {
            meta: tree(META)?,
            items: tree(ITEMS)?,
            by_time: tree(BY_TIME)?,
            seen: tree(SEEN)?,
            seen_by_time: tree(SEEN_BY_TIME)?,
            topic_index: tree(TOPIC_INDEX)?,
            stories: tree(STORIES)?,
            stories_by_time: tree(STORIES_BY_TIME)?,
            story_sketches: tree(STORY_SKETCHES)?,
            feeds: tree(FEEDS)?,
            outbox: tree(OUTBOX)?,
            outbox_due: tree(OUTBOX_DUE)?,
            item_count: Arc::new(AtomicUsize::new(0)),
            prune_scanned: Arc::new(AtomicU64::new(0)),
            recorded_flushed: Arc::new(AtomicU64::new(0)),
            #[cfg(test)]
            fail_sketch_writes: Default::default(),
            db,
            path: Arc::new(path.to_path_buf()),
        };
        store.check_schema()?;
        store.check_nothing_flushed_was_lost()?;
        let count = match store.meta.get(STORED_KEY).map_err(|cause| StoreError::Db {
            op: "reading the stored item count",
            cause,
        })? {
            Some(value) => read_u64(Some(&value)),
            None => store.count_items_once()?,
        };
        store.item_count.store(
            usize::try_from(count).unwrap_or(usize::MAX),
            Ordering::Relaxed,
        );
        Ok(store)
    }

    /// Counts the items of a store that does not keep its count yet (written by an
    /// older build) and keeps it from then on. It walks `by_time`, which has one small
    /// entry per item: walking `items` pulled every record through sled's cache, far
    /// past its capacity (175 MB of heap at the peak for 100,000 items).
    fn count_items_once(&self) -> Result<u64, StoreError> {
        let counted = self.by_time.len() as u64;
        // Only if no writer set it meanwhile (the store is opened by one process).
        let _ = self
            .meta
            .compare_and_swap(STORED_KEY, None::<&[u8]>, Some(&counted.to_be_bytes()[..]))
            .map_err(|cause| StoreError::Db {
                op: "writing the stored item count",
                cause,
            })?;
        Ok(counted)
    }

    /// True when an item with this id was stored before (and its id not yet expired).
    pub fn seen(&self, id: &str) -> Result<bool, StoreError> {
        self.seen.contains_key(id).map_err(|cause| StoreError::Db {
            op: "reading tree seen",
            cause,
        })
    }

    pub fn get_item(&self, id: &str) -> Result<Option<StoredItem>, StoreError> {
        let fetched = self.seen.get(id).map_err(|cause| StoreError::Db {
            op: "reading tree seen",
            cause,
        })?;
        let Some(fetched) = fetched else {
            return Ok(None);
        };
        let at = decode_millis(&fetched).ok_or_else(|| StoreError::Corrupt {
            tree: SEEN,
            key: show_key(id.as_bytes()),
            reason: format!("expected an 8-byte time, found {} bytes", fetched.len()),
        })?;
        get_json(&self.items, ITEMS, &time_key(at, id.as_bytes()))
    }

    pub fn get_story(&self, id: &str) -> Result<Option<StoredStory>, StoreError> {
        get_json(&self.stories, STORIES, id.as_bytes())
    }

    /// Stores a batch of items in one transaction and returns how many were new.
    ///
    /// Each new item gets its record, its `by_time`, `seen` and `topic_index` entries;
    /// a story lead creates its story, a later copy is appended to its story's
    /// `related`. Items whose id is already in `seen` are skipped, so storing the same
    /// batch twice stores nothing the second time.
    pub fn insert_items(&self, items: &[StoredItem]) -> Result<usize, StoreError> {
        self.insert_items_with_alerts(items, &[])
    }

    /// [`Store::insert_items`], writing each new item's alerts to the outbox in the
    /// same transaction. An alert is written only when its story has not alerted on
    /// its topic before (through an earlier copy, or an earlier item of this batch);
    /// alerts of items already seen are dropped with them.
    pub fn insert_items_with_alerts(
        &self,
        items: &[StoredItem],
        alerts: &[StoredAlert],
    ) -> Result<usize, StoreError> {
        self.insert_batch(items, alerts, &[])
            .map(|inserted| inserted.new)
    }

    /// [`Store::insert_items_with_alerts`], also writing the sketches of story leads:
    /// `sketches` pairs an item id with its sketch. A sketch is stored (in
    /// `story_sketches`, under the lead's fetch time, fingerprint and story) only with
    /// a new item that leads its story; an empty one is not stored.
    ///
    /// The sketches are written after the transaction, not in it: one more tree in
    /// every transaction cost more than the write itself. A sketch lost to a crash in
    /// between is rebuilt from its lead's text at the next start; one whose write
    /// failed is in [`Inserted::leads`] for the caller to keep and write again
    /// ([`Store::put_sketches`]).
    pub fn insert_batch(
        &self,
        items: &[StoredItem],
        alerts: &[StoredAlert],
        sketches: &[(&str, &[u32])],
    ) -> Result<Inserted, StoreError> {
        let sketches: HashMap<&str, &[u32]> = sketches
            .iter()
            .filter(|(_, sketch)| !sketch.is_empty())
            .copied()
            .collect();
        let encoded: Vec<(&StoredItem, Vec<u8>)> = items
            .iter()
            .map(|item| Ok((item, encode(ITEMS, &item.id, item)?)))
            .collect::<Result<_, StoreError>>()?;
        let encoded_alerts: Vec<(&StoredAlert, Vec<u8>)> = alerts
            .iter()
            .map(|alert| Ok((alert, encode(OUTBOX, &alert.id, alert)?)))
            .collect::<Result<_, StoreError>>()?;
        let trees = (
            &self.items,
            &self.by_time,
            &self.seen,
            &self.seen_by_time,
            &self.topic_index,
            &self.stories,
            &self.stories_by_time,
            &self.outbox,
            &self.outbox_due,
            &self.meta,
        );
        let result = trees.transaction(
            |(
                items,
                by_time,
                seen,
                seen_by_time,
                topic_index,
                stories,
                stories_by_time,
                outbox,
                outbox_due,
                meta,
            )| {
                let mut new = 0;
                let mut leads = Vec::new();
                for (item, json) in &encoded {
                    let id = item.id.as_bytes();
                    if seen.get(id)?.is_some() {
                        continue;
                    }
                    let fetched = millis(item.fetched);
                    items.insert(time_key(fetched, id), json.as_slice())?;
                    let flag = if item.topics.is_empty() {
                        EMPTY
                    } else {
                        MATCHED
                    };
                    by_time.insert(time_key(fetched, id), flag)?;
                    seen.insert(id, &fetched.to_be_bytes()[..])?;
                    seen_by_time.insert(time_key(fetched, id), EMPTY)?;
                    for topic in &item.topics {
                        topic_index.insert(
                            topic_key(&topic.id, fetched, id),
                            &topic.score.to_be_bytes()[..],
                        )?;
                    }
                    let trees = StoryTrees {
                        items,
                        seen,
                        stories,
                        stories_by_time,
                    };
                    if item.is_story_lead {
                        leads.push(*item);
                    }
                    let mine = encoded_alerts.iter().filter(|(a, _)| a.item_id == item.id);
                    let mut story = attach_to_story(&trees, item)?;
                    let mut alerted = Vec::new();
                    for (alert, json) in mine {
                        if story.alerted.contains(&alert.topic) {
                            continue;
                        }
                        if outbox.get(alert.id.as_bytes())?.is_none() {
                            outbox.insert(alert.id.as_bytes(), json.as_slice())?;
                            outbox_due.insert(due_key(alert), EMPTY)?;
                        }
                        if !alerted.contains(&alert.topic) {
                            alerted.push(alert.topic.clone());
                        }
                    }
                    if !alerted.is_empty() {
                        story.alerted.extend(alerted);
                        let json = encode(STORIES, &story.id, &story)
                            .map_err(ConflictableTransactionError::Abort)?;
                        stories.insert(story.id.as_bytes(), json)?;
                    }
                    new += 1;
                }
                if new > 0 {
                    for key in [WRITTEN_KEY, STORED_KEY] {
                        let count = read_u64(meta.get(key)?.as_deref());
                        meta.insert(key, &(count + new as u64).to_be_bytes()[..])?;
                    }
                }
                Ok((new, leads))
            },
        );
        let (new, leads) = result.map_err(|err| tx_error(err, "storing items"))?;
        self.item_count.fetch_add(new, Ordering::Relaxed);
        let leads: Vec<LeadSketch> = leads
            .into_iter()
            .filter_map(|lead| {
                sketches.get(lead.id.as_str()).map(|sketch| LeadSketch {
                    story: lead.story.clone(),
                    first_seen: lead.fetched,
                    fingerprint: lead.fingerprint,
                    sketch: sketch.to_vec(),
                })
            })
            .collect();
        let sketches = self.put_sketches(&leads);
        Ok(Inserted {
            new,
            leads,
            sketches,
        })
    }

    /// Writes stories' sketches, all or none; an empty sketch is not stored.
    pub fn put_sketches(&self, leads: &[LeadSketch]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for lead in leads.iter().filter(|lead| !lead.sketch.is_empty()) {
            batch.insert(
                sketch_key(lead.first_seen, lead.fingerprint, &lead.story),
                encode_sketch(&lead.sketch),
            );
        }
        #[cfg(test)]
        if self.fail_sketch_writes.load(Ordering::Relaxed) {
            return Err(StoreError::Db {
                op: "writing tree story_sketches",
                cause: sled::Error::Unsupported("failing on purpose, for a test".into()),
            });
        }
        self.story_sketches
            .apply_batch(batch)
            .map_err(|cause| StoreError::Db {
                op: "writing tree story_sketches",
                cause,
            })
    }

    /// Makes [`Store::put_sketches`] fail (or work again), for tests.
    #[cfg(test)]
    pub(crate) fn fail_sketch_writes(&self, fail: bool) {
        self.fail_sketch_writes.store(fail, Ordering::Relaxed);
    }

    pub fn feed_state(&self, url: &str) -> Result<Option<FeedState>, StoreError> {
        get_json(&self.feeds, FEEDS, url.as_bytes())
    }

    pub fn put_feed_state(&self, url: &str, state: &FeedState) -> Result<(), StoreError> {
        let json = encode(FEEDS, url, state)?;
        self.feeds
            .insert(url, json)
            .map(drop)
            .map_err(|cause| StoreError::Db {
                op: "writing tree feeds",
                cause,
            })
    }

    /// Every feed's state; a corrupt record is skipped with a warning, so the feed
    /// starts afresh instead of stopping every other feed.
    pub fn feed_states(&self) -> Result<Vec<(String, FeedState)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.feeds.iter() {
            let (key, value) = entry.map_err(|cause| StoreError::Db {
                op: "reading tree feeds",
                cause,
            })?;
            let url = String::from_utf8_lossy(&key).into_owned();
            if let Some(state) = decode_or_warn(FEEDS, &key, &value) {
                out.push((url, state));
            }
        }
        Ok(out)
    }

    /// Stored items, newest (by fetch time) first. A record that cannot be read or
    /// decoded (a damaged store) is skipped and counted, so that one bad page does not
    /// hide every other item.
    pub fn items(&self, query: &ItemQuery) -> Result<Listing<StoredItem>, StoreError> {
        let mut out = Listing::default();
        if query.limit == 0 {
            return Ok(out);
        }
        let since = query.since.map(millis).unwrap_or(0);
        let (tree, tree_name, prefix) = match &query.topic {
            Some(topic) => (&self.topic_index, TOPIC_INDEX, topic_prefix(topic)),
            None => (&self.by_time, BY_TIME, Vec::new()),
        };
        let mut start = prefix.clone();
        start.extend_from_slice(&since.to_be_bytes());
        let entries = match &query.topic {
            // The topic's range ends where the next byte after its 0x00 separator would.
            Some(topic) => {
                let mut end = topic.as_bytes().to_vec();
                end.push(1);
                tree.range(start..end)
            }
            None => tree.range(start..),
        };
        for entry in entries.rev() {
            let key = match entry {
                Ok((key, _)) => key,
                Err(cause) => {
                    out.stop_at_damage(tree_name, cause, "listing items")?;
                    break;
                }
            };
            let Some(item_key) = key.get(prefix.len()..) else {
                continue;
            };
            let Some((_, id)) = split_time_key(item_key) else {
                tracing::warn!(tree = tree_name, key = %show_key(&key), "Skipped a malformed index key.");
                continue;
            };
            let record = match self.items.get(item_key) {
                Ok(record) => record,
                Err(cause) => {
                    out.skip_damaged(ITEMS, id, cause, "reading tree items")?;
                    continue;
                }
            };
            // An index entry without its item: pruned meanwhile, or left behind by a
            // corrupt record. Not an item to list.
            let Some(record) = record else { continue };
            match decode_or_warn::<StoredItem>(ITEMS, id, &record) {
                Some(item) => {
                    out.records.push(item);
                    if out.records.len() >= query.limit {
                        break;
                    }
                }
                None => out.skipped += 1,
            }
        }
        Ok(out)
    }

    /// Stories first seen at or after `since`, oldest first (the order
    /// [`crate::pipeline::dedup::StoryWindow`] is rebuilt in).
    pub fn recent_stories(&self, since: DateTime<Utc>) -> Result<Vec<StoredStory>, StoreError> {
        self.stories_since(since).collect()
    }

    /// [`Store::recent_stories`] read one at a time, so that a window of many stories
    /// is never all in memory at once.
    pub fn stories_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Iterator<Item = Result<StoredStory, StoreError>> + '_ {
        self.stories_by_time
            .range(time_key(millis(since), b"")..)
            .filter_map(move |entry| {
                let (key, _) = match entry {
                    Ok(entry) => entry,
                    Err(cause) => {
                        return Some(Err(StoreError::Db {
                            op: "reading tree stories_by_time",
                            cause,
                        }))
                    }
                };
                let Some((at, id)) = split_time_key(&key) else {
                    tracing::warn!(tree = STORIES_BY_TIME, key = %show_key(&key), "Skipped a malformed index key.");
                    return None;
                };
                let record = match self.stories.get(id) {
                    Ok(record) => record?,
                    Err(cause) => {
                        return Some(Err(StoreError::Db {
                            op: "reading tree stories",
                            cause,
                        }))
                    }
                };
                let story = decode_or_warn::<StoredStory>(STORIES, id, &record)?;
                // A story whose first copy changed has an older index entry left behind;
                // it is listed under its current time only.
                (millis(story.first_seen) == at).then_some(Ok(story))
            })
    }

    /// The sketches stored for stories first seen at `first_seen` (to the millisecond)
    /// with this fingerprint, with their story ids: normally one story, or none when
    /// it has no sketch.
    pub fn story_sketches(
        &self,
        first_seen: DateTime<Utc>,
        fingerprint: u64,
    ) -> Result<Vec<(String, Vec<u32>)>, StoreError> {
        let prefix = sketch_key(first_seen, fingerprint, "");
        let mut out = Vec::new();
        for entry in self.story_sketches.scan_prefix(&prefix) {
            let (key, value) = entry.map_err(|cause| StoreError::Db {
                op: "reading tree story_sketches",
                cause,
            })?;
            let story = std::str::from_utf8(&key[prefix.len()..]).ok();
            match (story, decode_sketch(&value)) {
                (Some(story), Some(sketch)) => out.push((story.to_string(), sketch)),
                _ => {
                    tracing::warn!(tree = STORY_SKETCHES, key = %show_key(&key), "Skipped a corrupt record.")
                }
            }
        }
        Ok(out)
    }

    /// The sketch stored for `story` under its first-seen time and fingerprint.
    pub fn story_sketch(&self, story: &StoredStory) -> Result<Option<Vec<u32>>, StoreError> {
        let key = sketch_key(story.first_seen, story.fingerprint, &story.id);
        let value = self
            .story_sketches
            .get(&key)
            .map_err(|cause| StoreError::Db {
                op: "reading tree story_sketches",
                cause,
            })?;
        Ok(value.and_then(|value| {
            let sketch = decode_sketch(&value);
            if sketch.is_none() {
                tracing::warn!(tree = STORY_SKETCHES, key = %show_key(&key), "Skipped a corrupt record.");
            }
            sketch
        }))
    }

    /// Stores `story`'s sketch under its first-seen time and fingerprint: for stories
    /// stored without one (by an older build, or whose lead changed), so that
    /// [`Store::story_sketch`] and [`Store::story_sketches`] find it from then on.
    pub fn put_story_sketch(&self, story: &StoredStory, sketch: &[u32]) -> Result<(), StoreError> {
        if sketch.is_empty() {
            return Ok(());
        }
        self.story_sketches
            .insert(
                sketch_key(story.first_seen, story.fingerprint, &story.id),
                encode_sketch(sketch),
            )
            .map_err(|cause| StoreError::Db {
                op: "writing tree story_sketches",
                cause,
            })?;
        Ok(())
    }

    /// Waits until everything written so far is on disk; returns the bytes flushed.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        // Read before flushing: every write that counted up to this value is in the
        // flush, so the file never claims more than sled holds.
        let written = self.written()?;
        let bytes = self
            .db
            .flush_async()
            .await
            .map_err(|cause| StoreError::Db {
                op: "flushing the store",
                cause,
            })?;
        if written > self.recorded_flushed.load(Ordering::Relaxed) {
            if let Err(err) = self.record_flushed(written) {
                // Only the check for lost items depends on it; the items are stored.
                tracing::warn!(path = %self.path.join(FLUSHED_FILE).display(), error = %err, "Could not record the flushed item count.");
            }
        }
        Ok(bytes)
    }

    /// Items ever written, as sled holds it now.
    fn written(&self) -> Result<u64, StoreError> {
        let value = self.meta.get(WRITTEN_KEY).map_err(|cause| StoreError::Db {
            op: "reading the written item count",
            cause,
        })?;
        Ok(read_u64(value.as_deref()))
    }

    /// Writes [`FLUSHED_FILE`] whole or not at all (a new file renamed over the old).
    fn record_flushed(&self, written: u64) -> std::io::Result<()> {
        let file = self.path.join(FLUSHED_FILE);
        let partial = self.path.join(format!("{FLUSHED_FILE}.new"));
        std::fs::write(&partial, format!("{written}\n"))?;
        std::fs::rename(&partial, &file)?;
        self.recorded_flushed.fetch_max(written, Ordering::Relaxed);
        Ok(())
    }

    /// Refuses a store that sled gave back with fewer items than were flushed.
    fn check_nothing_flushed_was_lost(&self) -> Result<(), StoreError> {
        let file = self.path.join(FLUSHED_FILE);
        // A missing or unreadable file (an older build, a crash while writing it)
        // only means there is nothing to compare with.
        let Some(flushed) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
        else {
            return Ok(());
        };
        let recovered = self.written()?;
        if recovered < flushed {
            return Err(StoreError::Lost {
                path: self.path.to_path_buf(),
                flushed,
                recovered,
            });
        }
        Ok(())
    }

    /// Items stored, without walking the tree.
    pub fn item_count(&self) -> usize {
        self.item_count.load(Ordering::Relaxed)
    }

    /// Exact counts by walking the trees: O(n), for tests and one-off reports; the
    /// daemon's periodic status uses [`Store::item_count`].
    pub fn counts(&self) -> StoreCounts {
        StoreCounts {
            items: self.items.len(),
            feeds: self.feeds.len(),
            stories: self.stories.len(),
        }
    }

    /// Pending alerts of `sink` due at `now`, earliest first, at most `limit`.
    pub fn due_alerts(
        &self,
        sink: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let prefix = sink_prefix(sink);
        let end = millis(now);
        let mut out = Vec::new();
        for entry in self.outbox_due.scan_prefix(&prefix) {
            let (key, _) = entry.map_err(|cause| StoreError::Db {
                op: "reading tree outbox_due",
                cause,
            })?;
            let Some((at, id)) = split_time_key(&key[prefix.len()..]) else {
                continue;
            };
            if at > end || out.len() >= limit {
                break;
            }
            match self.outbox.get(id) {
                Ok(Some(bytes)) => {
                    if let Some(alert) = decode_or_warn::<StoredAlert>(OUTBOX, id, &bytes) {
                        if alert.status == AlertStatus::Pending {
                            out.push(alert);
                        }
                    }
                }
                Ok(None) => {}
                Err(cause) => {
                    return Err(StoreError::Db {
                        op: "reading tree outbox",
                        cause,
                    })
                }
            }
        }
        Ok(out)
    }

    /// When the next pending alert of `sink` is due, if any.
    pub fn next_due(&self, sink: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let prefix = sink_prefix(sink);
        let first = self
            .outbox_due
            .scan_prefix(&prefix)
            .next()
            .transpose()
            .map_err(|cause| StoreError::Db {
                op: "reading tree outbox_due",
                cause,
            })?;
        Ok(first
            .and_then(|(key, _)| split_time_key(&key[prefix.len()..]).map(|(at, _)| at))
            .and_then(|at| DateTime::from_timestamp_millis(at as i64)))
    }

    /// Records one delivery attempt of an alert, moving it in the due index.
    pub fn record_attempt(&self, id: &str, attempt: &Attempt) -> Result<StoredAlert, StoreError> {
        let mut alert: StoredAlert =
            get_json(&self.outbox, OUTBOX, id.as_bytes())?.ok_or_else(|| StoreError::Corrupt {
                tree: OUTBOX,
                key: id.to_string(),
                reason: "no such alert".into(),
            })?;
        let old_due = due_key(&alert);
        alert.attempts += 1;
        match attempt {
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
        self.put_alert(&alert, Some(old_due))?;
        Ok(alert)
    }

    /// Alerts, newest first, optionally of one status; at most `limit`. As with
    /// [`Store::items`], unreadable records are skipped and counted.
    pub fn alerts(
        &self,
        status: Option<AlertStatus>,
        limit: usize,
    ) -> Result<Listing<StoredAlert>, StoreError> {
        let mut out = Listing::default();
        for entry in self.outbox.iter() {
            let (key, value) = match entry {
                Ok(entry) => entry,
                Err(cause) => {
                    out.stop_at_damage(OUTBOX, cause, "reading tree outbox")?;
                    break;
                }
            };
            match decode_or_warn::<StoredAlert>(OUTBOX, &key, &value) {
                Some(alert) if status.is_none_or(|s| s == alert.status) => out.records.push(alert),
                Some(_) => {}
                None => out.skipped += 1,
            }
        }
        out.records
            .sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        out.records.truncate(limit);
        Ok(out)
    }

    pub fn get_alert(&self, id: &str) -> Result<Option<StoredAlert>, StoreError> {
        get_json(&self.outbox, OUTBOX, id.as_bytes())
    }

    /// Puts a failed alert back in the queue, due at `now`, with its attempts reset.
    /// Returns false when it is not failed (already pending or delivered).
    pub fn retry_alert(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let Some(mut alert) = self.get_alert(id)? else {
            return Ok(false);
        };
        if alert.status != AlertStatus::Failed {
            return Ok(false);
        }
        alert.status = AlertStatus::Pending;
        alert.attempts = 0;
        alert.next_attempt = now;
        self.put_alert(&alert, None)?;
        Ok(true)
    }

    /// Number of pending alerts: the size of the due index, without decoding records.
    pub fn pending_alerts(&self) -> usize {
        self.outbox_due.len()
    }

    /// Writes an alert record and its due-index entry (only while pending), removing
    /// the old entry, in one transaction.
    fn put_alert(&self, alert: &StoredAlert, old_due: Option<Vec<u8>>) -> Result<(), StoreError> {
        let json = encode(OUTBOX, &alert.id, alert)?;
        let result = (&self.outbox, &self.outbox_due).transaction(|(outbox, due)| {
            if let Some(old) = &old_due {
                due.remove(old.as_slice())?;
            }
            outbox.insert(alert.id.as_bytes(), json.as_slice())?;
            if alert.status == AlertStatus::Pending {
                due.insert(due_key(alert), EMPTY)?;
            }
            Ok(())
        });
        result.map_err(|err| tx_error(err, "updating an alert"))
    }
}

/// The trees a story update touches, inside the item transaction.
struct StoryTrees<'a> {
    items: &'a TransactionalTree,
    seen: &'a TransactionalTree,
    stories: &'a TransactionalTree,
    stories_by_time: &'a TransactionalTree,
}

/// Creates, claims or extends the story of a newly stored item, and returns it as stored.
fn attach_to_story(trees: &StoryTrees<'_>, item: &StoredItem) -> TxResult<StoredStory> {
    let key = item.story.as_bytes();
    let existing = match trees.stories.get(key)? {
        Some(bytes) => match codec::decode::<StoredStory>(&bytes) {
            Ok(story) => Some(story),
            Err(err) => {
                // Unreadable either way; a fresh record keeps the new copies grouped.
                tracing::warn!(tree = STORIES, key = %show_key(key), error = %err, "Replacing a corrupt record.");
                None
            }
        },
        None => None,
    };
    let story = match existing {
        Some(mut story) if item.is_story_lead => {
            // Copies arrived first (out of order within a batch): the lead takes the
            // story over and the copy that stood in for it becomes a related one.
            if story.first_item != item.id {
                if let Some(previous) = read_item(trees, &story.first_item)? {
                    if !story.related.iter().any(|r| r.item_id == previous.id) {
                        story.related.insert(0, related(&previous));
                    }
                }
                story.first_item = item.id.clone();
            }
            story.related.retain(|r| r.item_id != item.id);
            story.fingerprint = item.fingerprint;
            if item.fetched < story.first_seen {
                trees
                    .stories_by_time
                    .remove(time_key(millis(story.first_seen), key))?;
                story.first_seen = item.fetched;
                trees
                    .stories_by_time
                    .insert(time_key(millis(story.first_seen), key), EMPTY)?;
            }
            story
        }
        Some(mut story) => {
            if story.first_item != item.id && !story.related.iter().any(|r| r.item_id == item.id) {
                story.related.push(related(item));
            }
            story
        }
        None => {
            if !item.is_story_lead {
                // The story was pruned or never stored: the copy stands in for its lead.
                tracing::warn!(story = %item.story, item = %item.id, "Started a story from a copy; its lead is not stored.");
            }
            trees
                .stories_by_time
                .insert(time_key(millis(item.fetched), key), EMPTY)?;
            StoredStory {
                id: item.story.clone(),
                first_item: item.id.clone(),
                first_seen: item.fetched,
                fingerprint: item.fingerprint,
                related: Vec::new(),
                alerted: Vec::new(),
            }
        }
    };
    let json = encode(STORIES, &story.id, &story).map_err(ConflictableTransactionError::Abort)?;
    trees.stories.insert(key, json)?;
    Ok(story)
}

fn read_item(
    trees: &StoryTrees<'_>,
    id: &str,
) -> Result<Option<StoredItem>, UnabortableTransactionError> {
    let Some(at) = trees.seen.get(id)?.as_deref().and_then(decode_millis) else {
        return Ok(None);
    };
    Ok(trees
        .items
        .get(time_key(at, id.as_bytes()))?
        .and_then(|bytes| codec::decode(&bytes).ok()))
}

/// Removes snapshots that sled began and never finished, before sled reads them.
///
/// sled writes its snapshot to `snap.<lsn>.generating`, syncs it, then renames it to
/// `snap.<lsn>`; a write cut short (a full disk, a crash) leaves the partial file.
/// sled 0.34 takes the newest-named file as the snapshot, `.generating` or not, so a
/// 0-byte leftover made every later open fail with "Read corrupted data" although
/// nothing else was damaged. Such a file holds nothing the log does not: the older
/// snapshot is only removed after the rename, and sled replays the log from it.
///
/// Only while no process holds the store: a live daemon may be writing its snapshot
/// right now. sled locks the `db` file with `flock`; taking that lock here for a
/// moment proves the store is free (when it is not, sled's own open reports it).
/// Why sled did not open a store.
enum OpenFailure {
    /// sled found its files damaged (a checksum, a panic while reading its log).
    Damaged(String),
    Other(sled::Error),
}

impl OpenFailure {
    fn into_error(self, path: &Path, other: impl FnOnce(sled::Error) -> StoreError) -> StoreError {
        match self {
            OpenFailure::Damaged(reason) => StoreError::Damaged {
                path: path.to_path_buf(),
                reason,
            },
            OpenFailure::Other(cause) => other(cause),
        }
    }
}

/// [`open_sled`], and when sled finds the store damaged and a snapshot is there, once
/// more without the snapshot. A damaged snapshot makes sled refuse the whole store,
/// though the snapshot only saves reading the log: without it sled rebuilds the pages
/// from the log. It is set aside (never deleted); if the store still does not open,
/// it is put back. [`Store::open`]'s lost-items check still refuses a store that
/// came back short.
fn open_recovering(path: &Path) -> Result<sled::Db, OpenFailure> {
    let reason = match open_sled(path) {
        Err(OpenFailure::Damaged(reason)) => reason,
        other => return other,
    };
    let moved = match set_aside_snapshots(path) {
        Some(moved) if !moved.is_empty() => moved,
        _ => return Err(OpenFailure::Damaged(reason)),
    };
    let reopened = open_sled(path);
    for (from, to) in &moved {
        if reopened.is_ok() {
            tracing::warn!(snapshot = %from.display(), moved_to = %to.display(), reason = %reason, "The store's snapshot was damaged; set it aside and rebuilt the store from its log.");
        } else {
            let _ = std::fs::rename(to, from);
        }
    }
    reopened
}

fn open_sled(path: &Path) -> Result<sled::Db, OpenFailure> {
    // sled panics on some damage to its log ("tried to serialize Uninitialized" when
    // a segment is zeroed); a damaged store is an error naming it, not a crash of
    // whichever command opened it.
    let opened = std::panic::catch_unwind(|| {
        sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_CAPACITY)
            .open()
    });
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(sled::Error::Corruption { .. })) => Err(OpenFailure::Damaged(
            "its files failed a checksum".to_string(),
        )),
        Ok(Err(cause)) => Err(OpenFailure::Other(cause)),
        Err(panic) => Err(OpenFailure::Damaged(panic_message(panic.as_ref()))),
    }
}

/// Renames the store's finished snapshots `snap.*` to `damaged-snap.*`, under the
/// store's lock: `None` when the lock is held elsewhere (another process has the
/// store open, so its files are not ours to move), else the renames made.
fn set_aside_snapshots(path: &Path) -> Option<Vec<(PathBuf, PathBuf)>> {
    use std::os::fd::AsRawFd;
    let db = std::fs::OpenOptions::new()
        .read(true)
        .open(path.join("db"))
        .ok()?;
    // SAFETY: flock on a descriptor this function owns; released when `db` closes.
    if unsafe { libc::flock(db.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return None;
    }
    let snapshots: Vec<PathBuf> = std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snap.") && !n.ends_with(".generating"))
        })
        .collect();
    let mut moved = Vec::new();
    for from in snapshots {
        // sled reads every file named `snap.*`, so the new name must not start so.
        let Some(name) = from.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let to = path.join(format!("damaged-{name}"));
        if std::fs::rename(&from, &to).is_ok() {
            moved.push((from, to));
        }
    }
    Some(moved)
}

fn remove_partial_snapshots(path: &Path) {
    use std::os::fd::AsRawFd;
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    let partial: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snap.") && n.ends_with(".generating"))
        })
        .collect();
    if partial.is_empty() {
        return;
    }
    let Ok(db) = std::fs::OpenOptions::new().read(true).open(path.join("db")) else {
        return;
    };
    // SAFETY: flock on a descriptor this function owns; it is released when `db` is
    // closed at the end of the function.
    let locked = unsafe { libc::flock(db.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !locked {
        return;
    }
    for file in partial {
        match std::fs::remove_file(&file) {
            Ok(()) => tracing::warn!(
                file = %file.display(),
                "Removed a snapshot that was never finished (a full disk or a crash while it was written)."
            ),
            Err(err) => tracing::warn!(
                file = %file.display(),
                error = %err,
                "Could not remove a snapshot that was never finished; opening the store may fail."
            ),
        }
    }
}

/// A time stored as milliseconds (`u64` BE), as `seen` holds it.
fn decode_millis(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

fn related(item: &StoredItem) -> Related {
    Related {
        item_id: item.id.clone(),
        feed: item.feed.clone(),
        url: item.url.clone(),
        title: item.title.clone(),
    }
}

fn get_json<T: DeserializeOwned>(
    tree: &Tree,
    name: &'static str,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    let value = tree.get(key).map_err(|cause| StoreError::Db {
        op: match name {
            ITEMS => "reading tree items",
            STORIES => "reading tree stories",
            OUTBOX => "reading tree outbox",
            _ => "reading tree feeds",
        },
        cause,
    })?;
    value
        .map(|bytes| codec::decode_at(name, key, &bytes))
        .transpose()
}

use codec::decode_or_warn;

/// A u64 stored big-endian; a missing or malformed value counts as 0.
fn read_u64(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|v| <[u8; 8]>::try_from(v).ok())
        .map_or(0, u64::from_be_bytes)
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// A record in its stored form: compressed where it carries text (items, alerts).
fn encode<T: Serialize>(tree: &'static str, key: &str, record: &T) -> Result<Vec<u8>, StoreError> {
    codec::encode(tree, key, record, matches!(tree, ITEMS | OUTBOX))
}

fn tx_error(err: TransactionError<StoreError>, op: &'static str) -> StoreError {
    match err {
        TransactionError::Abort(err) => err,
        TransactionError::Storage(cause) => StoreError::Db { op, cause },
    }
}

/// Milliseconds since the epoch; times before 1970 (never a fetch time) count as 0.
fn millis(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

/// `now - age` in milliseconds; an age beyond the calendar means "nothing is older".
fn cutoff(now: DateTime<Utc>, age: Duration) -> u64 {
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .map_or(0, millis)
}

fn time_key(at: u64, id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + id.len());
    key.extend_from_slice(&at.to_be_bytes());
    key.extend_from_slice(id);
    key
}

fn split_time_key(key: &[u8]) -> Option<(u64, &[u8])> {
    let (at, id) = key.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*at), id))
}

fn sink_prefix(sink: &str) -> Vec<u8> {
    let mut key = sink.as_bytes().to_vec();
    key.push(0);
    key
}

fn due_key(alert: &StoredAlert) -> Vec<u8> {
    let mut key = sink_prefix(&alert.sink);
    key.extend_from_slice(&time_key(millis(alert.next_attempt), alert.id.as_bytes()));
    key
}

fn topic_prefix(topic: &str) -> Vec<u8> {
    let mut key = topic.as_bytes().to_vec();
    key.push(0);
    key
}

fn topic_key(topic: &str, at: u64, id: &[u8]) -> Vec<u8> {
    let mut key = topic_prefix(topic);
    key.extend_from_slice(&time_key(at, id));
    key
}

/// The `story_sketches` key of a story; with an empty `story`, the prefix of every
/// story first seen in that millisecond with that fingerprint.
fn sketch_key(first_seen: DateTime<Utc>, fingerprint: u64, story: &str) -> Vec<u8> {
    let mut key = time_key(millis(first_seen), &fingerprint.to_be_bytes());
    key.extend_from_slice(story.as_bytes());
    key
}

fn encode_sketch(sketch: &[u32]) -> Vec<u8> {
    sketch.iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn decode_sketch(bytes: &[u8]) -> Option<Vec<u32>> {
    (bytes.len() % 4 == 0).then(|| {
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

/// A key for messages: as text when it is printable text, else in hex.
fn show_key(key: &[u8]) -> String {
    let printable = |key: &[u8]| {
        std::str::from_utf8(key)
            .ok()
            .filter(|text| !text.is_empty() && !text.chars().any(char::is_control))
            .map(str::to_string)
    };
    if let Some(text) = printable(key) {
        return text;
    }
    // A time key: its milliseconds, then the id it ends with.
    if let Some((at, id)) = split_time_key(key).and_then(|(at, id)| Some((at, printable(id)?))) {
        return format!("{at}/{id}");
    }
    key.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens a store, waiting (up to 5 s) while a store this test dropped still
    /// holds the directory: sled lets go of its lock only when its background
    /// threads, shared by every test in this process, have finished with it.
    fn reopen(path: &Path) -> Store {
        open_when_free(path).unwrap()
    }

    /// [`Store::open`], waiting as [`reopen`] does, for opens that must fail.
    fn open_when_free(path: &Path) -> Result<Store, StoreError> {
        for _ in 0..100 {
            match Store::open(path) {
                Err(StoreError::Locked { .. }) => std::thread::sleep(Duration::from_millis(50)),
                other => return other,
            }
        }
        Store::open(path)
    }
    use chrono::TimeZone;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, day, hour, 0, 0).unwrap()
    }

    fn item(id: &str, fetched: DateTime<Utc>, topics: &[&str]) -> StoredItem {
        StoredItem {
            id: id.to_string(),
            feed: "https://example.org/world/rss.xml".into(),
            feed_name: "Example World".into(),
            title: format!("Title of {id}"),
            url: Some(format!("https://example.org/{id}")),
            published: Some(fetched - chrono::Duration::minutes(5)),
            fetched,
            text: format!("Body of {id}."),
            entities: vec![StoredEntity {
                id: "putin".into(),
                mentions: 2,
            }],
            topics: topics
                .iter()
                .map(|topic| StoredTopic {
                    id: topic.to_string(),
                    score: 2.5,
                    matched: vec!["ceasefire".into()],
                })
                .collect(),
            story: id.to_string(),
            is_story_lead: true,
            fingerprint: 0xfeed,
        }
    }

    fn copy_of(lead: &StoredItem, id: &str, fetched: DateTime<Utc>) -> StoredItem {
        StoredItem {
            story: lead.story.clone(),
            is_story_lead: false,
            feed: "https://example.net/wire/atom.xml".into(),
            ..item(id, fetched, &[])
        }
    }

    fn ids(items: &[StoredItem]) -> Vec<&str> {
        items.iter().map(|i| i.id.as_str()).collect()
    }

    fn query(topic: Option<&str>, since: Option<DateTime<Utc>>, limit: usize) -> ItemQuery {
        ItemQuery {
            topic: topic.map(str::to_string),
            since,
            limit,
        }
    }

    #[test]
    fn story_sketches_are_stored_with_their_leads_and_pruned_after_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let now = t(20, 12);
        let lead = item("a", now - chrono::Duration::days(3), &[]);
        let copy = copy_of(&lead, "b", now - chrono::Duration::days(3));
        let mut other = item("c", lead.fetched, &[]);
        other.fingerprint = 0xbeef;
        let wordless = item("d", now, &[]);
        let sketches: [(&str, &[u32]); 4] = [
            ("a", &[1, 2, 3]),
            ("b", &[9]), // not a lead: not stored
            ("c", &[4, 5]),
            ("d", &[]), // empty: not stored
        ];
        {
            let store = reopen(dir.path());
            let batch = [lead.clone(), copy, other.clone(), wordless.clone()];
            assert_eq!(store.insert_batch(&batch, &[], &sketches).unwrap().new, 4);
            // Stored again: the items are seen, nothing changes.
            let changed = [(sketches[0].0, &[7u32][..])];
            assert_eq!(store.insert_batch(&batch, &[], &changed).unwrap().new, 0);
        }
        let store = reopen(dir.path());
        // Found by first-seen time and fingerprint, each under its own.
        assert_eq!(
            store.story_sketches(lead.fetched, 0xfeed).unwrap(),
            [("a".to_string(), vec![1, 2, 3])]
        );
        assert_eq!(
            store.story_sketches(lead.fetched, 0xbeef).unwrap(),
            [("c".to_string(), vec![4, 5])]
        );
        assert!(store
            .story_sketches(lead.fetched + chrono::Duration::milliseconds(1), 0xfeed)
            .unwrap()
            .is_empty());
        let recent: Vec<StoredStory> = store
            .stories_since(now - chrono::Duration::days(4))
            .collect::<Result<_, _>>()
            .unwrap();
        let ids: Vec<&str> = recent.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "d"], "oldest first");
        assert_eq!(store.story_sketch(&recent[0]).unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(store.story_sketch(&recent[2]).unwrap(), None);
        // A story stored without a sketch gets one.
        store.put_story_sketch(&recent[2], &[6, 7]).unwrap();
        assert_eq!(store.story_sketch(&recent[2]).unwrap(), Some(vec![6, 7]));
        // Sketches go after the history period, the stories after the retention.
        store.prune(now, 2 * DAY, 20 * DAY, 100).unwrap();
        assert!(store.story_sketch(&recent[0]).unwrap().is_none());
        assert!(store
            .story_sketches(lead.fetched, 0xbeef)
            .unwrap()
            .is_empty());
        assert_eq!(store.story_sketch(&recent[2]).unwrap(), Some(vec![6, 7]));
        assert!(store.get_story("a").unwrap().is_some());
        // A corrupt sketch is skipped, never a panic.
        store
            .story_sketches
            .insert(sketch_key(now, 0xfeed, "d"), &[1u8, 2, 3][..])
            .unwrap();
        assert_eq!(store.story_sketch(&recent[2]).unwrap(), None);
        assert!(store.story_sketches(now, 0xfeed).unwrap().is_empty());
    }

    #[test]
    fn a_partial_snapshot_is_left_alone_while_another_handle_holds_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let held = reopen(dir.path());
        // The holder may be writing this very file: removing it would break its
        // rename. sled's lock is an flock, which a second open in the same process
        // meets as another process would.
        let partial = dir.path().join("snap.00000000FFFFFFFF.generating");
        std::fs::write(&partial, b"").unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Locked { .. })
        ));
        assert!(
            partial.exists(),
            "removed a snapshot the holder may be writing"
        );
        drop(held);
        let store = reopen(dir.path());
        assert!(!partial.exists(), "a free store kept its partial snapshot");
        drop(store);
    }

    #[test]
    fn reopen_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let lead = item("a", t(10, 9), &["ceasefire-talks"]);
        let state = FeedState {
            etag: Some("\"v1\"".into()),
            failures: 2,
            ..FeedState::default()
        };
        {
            let store = reopen(dir.path());
            assert_eq!(
                store
                    .insert_items(&[lead.clone(), copy_of(&lead, "b", t(10, 10))])
                    .unwrap(),
                2
            );
            store
                .put_feed_state("https://example.org/world/rss.xml", &state)
                .unwrap();
            // A clone shares the handles; dropping both closes the directory.
            let clone = store.clone();
            drop(store);
            drop(clone);
        }
        let store = reopen(dir.path());
        assert_eq!(store.get_item("a").unwrap(), Some(lead));
        assert!(store.seen("a").unwrap() && store.seen("b").unwrap());
        assert!(!store.seen("c").unwrap());
        assert_eq!(store.get_story("a").unwrap().unwrap().related.len(), 1);
        assert_eq!(
            store
                .feed_state("https://example.org/world/rss.xml")
                .unwrap(),
            Some(state)
        );
        assert_eq!(
            ids(&store
                .items(&query(Some("ceasefire-talks"), None, 10))
                .unwrap()),
            ["a"]
        );
        assert_eq!(
            store.counts(),
            StoreCounts {
                items: 2,
                feeds: 1,
                stories: 1
            }
        );
    }

    #[test]
    fn schema_version_mismatch_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = reopen(dir.path());
            // A fresh directory gets the current version written.
            let version = store.meta.get(SCHEMA_KEY).unwrap().unwrap();
            assert_eq!(version.as_ref(), SCHEMA_VERSION.to_be_bytes());
            store
                .meta
                .insert(SCHEMA_KEY, &9u32.to_be_bytes()[..])
                .unwrap();
        }
        let err = open_when_free(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Schema {
                    found: 9,
                    supported: SCHEMA_VERSION
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "store schema version 9 is not supported by this build (it reads version {SCHEMA_VERSION})"
            )
        );
        {
            let db = sled::open(dir.path()).unwrap();
            db.open_tree(META)
                .unwrap()
                .insert(SCHEMA_KEY, b"x".as_slice())
                .unwrap();
        }
        let err = open_when_free(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("tree meta at key schema_version"),
            "{err}"
        );
    }

    /// Puts every `step`th item back under its bare id, as schema 1 kept them.
    fn key_items_by_id(store: &Store, step: usize) {
        let records: Vec<_> = store.items.iter().map(Result::unwrap).collect();
        for (key, value) in records.into_iter().step_by(step) {
            let (_, id) = split_time_key(&key).unwrap();
            store.items.insert(id, value).unwrap();
            store.items.remove(key).unwrap();
        }
    }

    /// A schema-1 store (items keyed by id) is moved to time keys when opened, in
    /// batches, and reads as before.
    #[test]
    fn a_schema_1_store_is_moved_to_time_keys_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let count = 250; // more than one batch
        {
            let store = reopen(dir.path());
            let items: Vec<StoredItem> = (0..count)
                .map(|i| {
                    let topics: &[&str] = if i == 7 { &["ceasefire-talks"] } else { &[] };
                    item(
                        &format!("i{i}"),
                        t(10, 0) + chrono::Duration::seconds(i as i64),
                        topics,
                    )
                })
                .collect();
            store.insert_items(&items).unwrap();
            key_items_by_id(&store, 1);
            // A record nothing says the time of.
            store.items.insert("lost", b"{not json".as_slice()).unwrap();
            store
                .meta
                .insert(SCHEMA_KEY, &1u32.to_be_bytes()[..])
                .unwrap();
            assert!(store.get_item("i7").unwrap().is_none());
        }
        let store = reopen(dir.path());
        assert_eq!(
            store.meta.get(SCHEMA_KEY).unwrap().unwrap().as_ref(),
            SCHEMA_VERSION.to_be_bytes()
        );
        assert_eq!(store.counts().items, count);
        let i7 = store.get_item("i7").unwrap().expect("moved");
        assert_eq!(i7.title, "Title of i7");
        assert_eq!(
            ids(&store
                .items(&query(Some("ceasefire-talks"), None, 10))
                .unwrap()),
            ["i7"]
        );
        assert_eq!(
            ids(&store.items(&query(None, None, 2)).unwrap()),
            [format!("i{}", count - 1), format!("i{}", count - 2)]
        );
        // Opened again: nothing left to move.
        drop(store);
        let store = reopen(dir.path());
        assert_eq!(store.counts().items, count);
    }

    /// A move cut short (some items under time keys, some under ids, the interim
    /// version written) goes on at the next open; an older build refuses the store
    /// meanwhile, since it reads only version 1.
    #[test]
    fn a_move_to_schema_2_cut_short_goes_on_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = reopen(dir.path());
            let items: Vec<StoredItem> = (0..6)
                .map(|i| item(&format!("i{i}"), t(10, i), &[]))
                .collect();
            store.insert_items(&items).unwrap();
            key_items_by_id(&store, 2);
            store
                .meta
                .insert(SCHEMA_KEY, &SCHEMA_MOVING_1_TO_2.to_be_bytes()[..])
                .unwrap();
        }
        let store = reopen(dir.path());
        for i in 0..6 {
            assert!(store.get_item(&format!("i{i}")).unwrap().is_some(), "i{i}");
        }
        assert_eq!(store.counts().items, 6);
        // A seen entry that is not a time is an error naming it, not a missing item.
        store.seen.insert("i3", b"soon".as_slice()).unwrap();
        let err = store.get_item("i3").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("corrupt record in tree seen at key i3: "),
            "{err}"
        );
    }

    #[test]
    fn a_store_held_by_another_opener_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let _held = Store::open(&path).unwrap();
        let err = Store::open(&path).expect_err("the second open must fail");
        assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("in use by another newswatch process"),
            "{message}"
        );
    }

    #[test]
    fn an_unopenable_path_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = Store::open(&file).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(
            message.starts_with(&format!("opening the store at {}: ", file.display())),
            "{message}"
        );
    }

    #[test]
    fn inserting_a_batch_twice_stores_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let lead = item("a", t(10, 9), &["ceasefire-talks"]);
        let batch = vec![
            lead.clone(),
            copy_of(&lead, "b", t(10, 9)),
            item("c", t(10, 9), &[]),
            // The same id twice within a batch counts once.
            item("c", t(10, 9), &[]),
        ];
        assert_eq!(store.insert_items(&batch).unwrap(), 3);
        assert_eq!(store.insert_items(&batch).unwrap(), 0);
        assert_eq!(store.items(&query(None, None, 100)).unwrap().len(), 3);
        assert_eq!(store.get_story("a").unwrap().unwrap().related.len(), 1);
        assert_eq!(
            store
                .items(&query(Some("ceasefire-talks"), None, 100))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(store.recent_stories(t(1, 0)).unwrap().len(), 2);
        assert_eq!(store.insert_items(&[]).unwrap(), 0);
    }

    #[test]
    fn story_lead_and_related_copies() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let lead = item("wire-1", t(14, 11), &["ceasefire-talks"]);
        store.insert_items(std::slice::from_ref(&lead)).unwrap();
        let story = store.get_story("wire-1").unwrap().unwrap();
        assert_eq!(story.first_item, "wire-1");
        assert_eq!(story.first_seen, t(14, 11));
        assert_eq!(story.fingerprint, 0xfeed);
        assert!(story.related.is_empty());

        store
            .insert_items(&[copy_of(&lead, "outlet-1", t(14, 12))])
            .unwrap();
        let story = store.get_story("wire-1").unwrap().unwrap();
        assert_eq!(
            story.related,
            [Related {
                item_id: "outlet-1".into(),
                feed: "https://example.net/wire/atom.xml".into(),
                url: Some("https://example.org/outlet-1".into()),
                title: "Title of outlet-1".into(),
            }]
        );
        let stored = store.get_item("outlet-1").unwrap().unwrap();
        assert!(!stored.is_story_lead);
        assert_eq!(stored.story, "wire-1");

        // Within one batch a copy may come before its lead: the lead still leads.
        let lead2 = item("wire-2", t(14, 13), &[]);
        let early_copy = copy_of(&lead2, "outlet-2", t(14, 13));
        store.insert_items(&[early_copy, lead2]).unwrap();
        let story = store.get_story("wire-2").unwrap().unwrap();
        assert_eq!(story.first_item, "wire-2");
        assert_eq!(ids_of(&story), ["outlet-2"]);

        // A copy of a story that is not stored starts it.
        let orphan = StoredItem {
            story: "gone".into(),
            ..copy_of(&lead, "outlet-3", t(14, 14))
        };
        store.insert_items(&[orphan]).unwrap();
        assert_eq!(
            store.get_story("gone").unwrap().unwrap().first_item,
            "outlet-3"
        );

        let recent: Vec<String> = store
            .recent_stories(t(14, 12))
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(recent, ["wire-2", "gone"], "since honoured, oldest first");
    }

    fn ids_of(story: &StoredStory) -> Vec<&str> {
        story.related.iter().map(|r| r.item_id.as_str()).collect()
    }

    #[test]
    fn items_by_topic_since_and_limit_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        store
            .insert_items(&[
                item("d1", t(1, 0), &["ceasefire-talks"]),
                item("d3", t(3, 0), &["ceasefire-talks", "energy"]),
                item("d2", t(2, 0), &[]),
                item("d4", t(4, 0), &["energy"]),
            ])
            .unwrap();
        store
            .insert_items(&[item("d5", t(5, 0), &["ceasefire-talks"])])
            .unwrap();
        let list =
            |topic, since, limit| ids(&store.items(&query(topic, since, limit)).unwrap()).join(" ");
        assert_eq!(list(None, None, 10), "d5 d4 d3 d2 d1");
        assert_eq!(list(None, None, 2), "d5 d4");
        assert_eq!(list(None, Some(t(3, 0)), 10), "d5 d4 d3");
        assert_eq!(list(None, None, 0), "");
        assert_eq!(list(Some("ceasefire-talks"), None, 10), "d5 d3 d1");
        assert_eq!(list(Some("ceasefire-talks"), Some(t(2, 0)), 10), "d5 d3");
        assert_eq!(list(Some("ceasefire-talks"), None, 1), "d5");
        assert_eq!(list(Some("energy"), None, 10), "d4 d3");
        // A topic id that is a prefix of another is its own topic.
        assert_eq!(list(Some("energ"), None, 10), "");
        assert_eq!(list(Some("unknown"), None, 10), "");
    }

    #[test]
    fn prune_keeps_topic_matched_items_for_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let now = t(31, 0);
        store
            .insert_items(&[
                item("old-plain", now - chrono::Duration::days(10), &[]),
                item(
                    "old-matched",
                    now - chrono::Duration::days(10),
                    &["ceasefire-talks"],
                ),
                item(
                    "ancient-matched",
                    now - chrono::Duration::days(25),
                    &["ceasefire-talks"],
                ),
                item("new-plain", now - chrono::Duration::days(1), &[]),
            ])
            .unwrap();
        let report = store.prune(now, 7 * DAY, 20 * DAY, 100).unwrap();
        assert_eq!(
            report,
            PruneReport {
                items: 2,
                seen: 1,
                stories: 1,
                // ancient-matched, then old-plain and old-matched.
                scanned: 3,
                done: true
            }
        );
        assert_eq!(
            ids(&store.items(&query(None, None, 10)).unwrap()),
            ["new-plain", "old-matched"]
        );
        assert_eq!(
            ids(&store
                .items(&query(Some("ceasefire-talks"), None, 10))
                .unwrap()),
            ["old-matched"]
        );
        assert!(store.get_item("old-plain").unwrap().is_none());
        // The pruned plain item's id is still seen until the retention passes.
        assert!(store.seen("old-plain").unwrap());
        assert!(!store.seen("ancient-matched").unwrap());
        assert!(store.get_story("ancient-matched").unwrap().is_none());
        assert!(store.get_story("old-plain").unwrap().is_some());
        // Nothing is left to do, and a second pass changes nothing; nor does it read
        // the kept old-matched again.
        let again = store.prune(now, 7 * DAY, 20 * DAY, 100).unwrap();
        assert_eq!(
            again,
            PruneReport {
                done: true,
                ..PruneReport::default()
            }
        );
        // Re-inserting a pruned but still seen item stores nothing.
        assert_eq!(
            store.insert_items(&[item("old-plain", now, &[])]).unwrap(),
            0
        );
    }

    #[test]
    fn prune_is_bounded_by_max() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let now = t(31, 0);
        let old: Vec<StoredItem> = (0..10)
            .map(|i| {
                item(
                    &format!("i{i}"),
                    now - chrono::Duration::days(30) + chrono::Duration::minutes(i),
                    &[],
                )
            })
            .collect();
        store.insert_items(&old).unwrap();
        let mut passes = 0;
        let mut removed = 0;
        loop {
            let report = store.prune(now, DAY, 2 * DAY, 4).unwrap();
            assert!(
                report.items + report.seen + report.stories <= 4,
                "{report:?}"
            );
            removed += report.items + report.seen + report.stories;
            passes += 1;
            if report.done {
                break;
            }
            assert!(passes < 20, "pruning never finishes");
        }
        assert_eq!(removed, 30, "10 items, 10 seen ids, 10 stories");
        assert_eq!(store.counts().items, 0);
        // Oldest first: the first pass took the four oldest items.
        let store2 = {
            let dir2 = tempfile::tempdir().unwrap();
            let s = Store::open(dir2.path()).unwrap();
            s.insert_items(&old).unwrap();
            s.prune(now, DAY, 2 * DAY, 4).unwrap();
            (
                ids(&s.items(&query(None, None, 100)).unwrap()).join(" "),
                dir2,
            )
        };
        assert_eq!(store2.0, "i9 i8 i7 i6 i5 i4");
    }

    /// Plain items among items on a topic, pruned in passes cut short by `max`:
    /// every plain one goes, every matched one stays until the retention, and once
    /// done, a pass reads none of the kept ones again.
    #[test]
    fn prune_passes_go_on_where_the_last_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let now = t(31, 0);
        let items: Vec<StoredItem> = (0..12)
            .map(|i| {
                let topics: &[&str] = if i % 3 == 0 {
                    &[]
                } else {
                    &["ceasefire-talks"]
                };
                let at = now - chrono::Duration::days(5) + chrono::Duration::minutes(i);
                item(&format!("i{i}"), at, topics)
            })
            .collect();
        store.insert_items(&items).unwrap();
        let mut scanned = 0;
        for pass in 1.. {
            let report = store.prune(now, DAY, 10 * DAY, 2).unwrap();
            assert!(report.items <= 2, "{report:?}");
            scanned += report.scanned;
            if report.done {
                break;
            }
            assert!(pass < 10, "pruning never finishes");
        }
        assert_eq!(
            ids(&store.items(&query(None, None, 100)).unwrap()).join(" "),
            "i11 i10 i8 i7 i5 i4 i2 i1"
        );
        // Each kept item was read at most twice (again where a pass stopped), not
        // once a pass.
        assert!(scanned <= 12 + 4, "{scanned} entries read");
        let again = store.prune(now, DAY, 10 * DAY, 2).unwrap();
        assert_eq!((again.items, again.scanned, again.done), (0, 0, true));
        // Past the retention the kept ones go too.
        let later = now + chrono::Duration::days(6);
        let report = store.prune(later, DAY, 10 * DAY, 100).unwrap();
        assert_eq!((report.items, report.done), (8, true));
        assert_eq!(store.counts().items, 0);
    }

    #[test]
    fn corrupt_records_are_errors_or_skipped_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        store
            .insert_items(&[
                item("good", t(10, 0), &["ceasefire-talks"]),
                item("bad", t(11, 0), &["ceasefire-talks"]),
            ])
            .unwrap();
        let bad_key = time_key(millis(t(11, 0)), b"bad");
        store
            .items
            .insert(bad_key, b"{not json".as_slice())
            .unwrap();
        store.stories.insert("bad", b"\xff\xfe".as_slice()).unwrap();
        store
            .feeds
            .insert(
                "https://broken.example/feed",
                br#"{"failures":"many"}"#.as_slice(),
            )
            .unwrap();
        store
            .put_feed_state("https://ok.example/feed", &FeedState::default())
            .unwrap();
        // Garbage in an index.
        store
            .by_time
            .insert(b"\x00\x00\x00".as_slice(), b"".as_slice())
            .unwrap();

        let err = store.get_item("bad").unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { tree: "items", ref key, .. } if key.ends_with("/bad")),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("corrupt record in tree items at key 1741651200000/bad: "),
            "{err}"
        );
        let err = store.get_story("bad").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("corrupt record in tree stories at key bad: "),
            "{err}"
        );
        let err = store.feed_state("https://broken.example/feed").unwrap_err();
        assert!(
            err.to_string()
                .contains("tree feeds at key https://broken.example/feed"),
            "{err}"
        );

        // Listings skip what they cannot read.
        assert_eq!(ids(&store.items(&query(None, None, 10)).unwrap()), ["good"]);
        assert_eq!(
            ids(&store
                .items(&query(Some("ceasefire-talks"), None, 10))
                .unwrap()),
            ["good"]
        );
        let states = store.feed_states().unwrap();
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].0, "https://ok.example/feed");
        assert_eq!(store.recent_stories(t(1, 0)).unwrap().len(), 1);

        // A copy of a story whose record is corrupt gets a fresh, readable record.
        let copy = StoredItem {
            story: "bad".into(),
            is_story_lead: false,
            ..item("copy", t(12, 0), &[])
        };
        assert_eq!(store.insert_items(&[copy]).unwrap(), 1);
        assert_eq!(store.get_story("bad").unwrap().unwrap().first_item, "copy");

        // Pruning removes corrupt records like any other.
        let report = store.prune(t(31, 0), DAY, DAY, 100).unwrap();
        assert!(report.done);
        assert_eq!(store.counts().items, 0);
        assert!(store.by_time.is_empty());
        assert!(store.topic_index.iter().all(|e| {
            let (key, _) = e.unwrap();
            !key.ends_with(b"good")
        }));
    }

    #[test]
    fn feed_state_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let url = "https://example.org/world/rss.xml";
        assert_eq!(store.feed_state(url).unwrap(), None);
        let state = FeedState {
            etag: Some("W/\"abc\"".into()),
            last_modified: Some("Tue, 18 Mar 2025 21:05:00 GMT".into()),
            last_attempt: Some(t(18, 21)),
            last_success: Some(t(18, 21)),
            failures: 0,
            next_poll: Some(t(18, 22)),
            last_error: None,
            disabled: Some("410 Gone".into()),
            permanent_url: Some("https://example.org/rss".into()),
            repairs: 3,
            items_total: 42,
        };
        store.put_feed_state(url, &state).unwrap();
        assert_eq!(store.feed_state(url).unwrap().as_ref(), Some(&state));
        let updated = FeedState {
            failures: 1,
            last_error: Some("timed out".into()),
            ..state
        };
        store.put_feed_state(url, &updated).unwrap();
        assert_eq!(store.feed_states().unwrap(), [(url.to_string(), updated)]);
        // Fields added later default when older records lack them.
        store
            .feeds
            .insert("https://old.example/feed", br#"{"etag":"x"}"#.as_slice())
            .unwrap();
        assert_eq!(
            store
                .feed_state("https://old.example/feed")
                .unwrap()
                .unwrap()
                .etag
                .as_deref(),
            Some("x")
        );
    }

    #[tokio::test]
    async fn flush_then_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        store.insert_items(&[item("a", t(10, 0), &[])]).unwrap();
        store.flush().await.unwrap();
        assert_eq!(
            store.counts(),
            StoreCounts {
                items: 1,
                feeds: 0,
                stories: 1
            }
        );
    }

    /// Number of alerts of each status: (pending, delivered, failed).
    fn alert_counts(store: &Store) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for alert in store.alerts(None, usize::MAX).unwrap() {
            match alert.status {
                AlertStatus::Pending => counts.0 += 1,
                AlertStatus::Delivered => counts.1 += 1,
                AlertStatus::Failed => counts.2 += 1,
            }
        }
        counts
    }

    fn alert(item: &StoredItem, topic: &str, sink: &str, now: DateTime<Utc>) -> StoredAlert {
        use crate::alert::payload::*;
        let id = format!("a-{}-{topic}-{sink}", item.story);
        StoredAlert {
            id: id.clone(),
            sink: sink.into(),
            topic: topic.into(),
            item_id: item.id.clone(),
            story: item.story.clone(),
            created: now,
            status: AlertStatus::Pending,
            attempts: 0,
            next_attempt: now,
            last_error: None,
            delivered_at: None,
            payload: AlertPayload {
                kind: ALERT_TYPE.into(),
                version: ALERT_VERSION,
                id,
                topic: TopicRef {
                    id: topic.into(),
                    name: topic.into(),
                },
                item: ItemRef {
                    id: item.id.clone(),
                    feed: item.feed_name.clone(),
                    title: item.title.clone(),
                    url: item.url.clone(),
                    published: item.published,
                    summary: item.text.clone(),
                },
                entities: vec![],
                matched: vec!["ceasefire".into()],
                score: 2.5,
                story: StoryRef {
                    id: item.story.clone(),
                    related: vec![],
                },
                detected_at: now,
            },
        }
    }

    #[test]
    fn alerts_are_written_once_per_story_topic_and_sink() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let now = t(10, 12);
        let lead = item("lead", now, &["talks"]);
        let copy = StoredItem {
            topics: lead.topics.clone(),
            ..copy_of(&lead, "copy", now)
        };
        let alerts = vec![
            alert(&lead, "talks", "hook", now),
            alert(&lead, "talks", "log", now),
            alert(&copy, "talks", "hook", now),
        ];
        // The copy's alert has the lead's id (same story, topic, sink) in real use;
        // here it differs, and still must not be written: the story already alerted.
        let new = store
            .insert_items_with_alerts(&[lead.clone(), copy.clone()], &alerts)
            .unwrap();
        assert_eq!(new, 2);
        let all = store.alerts(None, 100).unwrap();
        let mut ids: Vec<&str> = all.iter().map(|a| a.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["a-lead-talks-hook", "a-lead-talks-log"]);
        assert_eq!(store.get_story("lead").unwrap().unwrap().alerted, ["talks"]);
        // Storing the batch again writes nothing.
        store
            .insert_items_with_alerts(&[lead, copy], &alerts)
            .unwrap();
        assert_eq!(store.alerts(None, 100).unwrap().len(), 2);
    }

    #[test]
    fn delivery_states_move_through_the_due_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let now = t(10, 12);
        let lead = item("lead", now, &["talks"]);
        let a = alert(&lead, "talks", "hook", now);
        store
            .insert_items_with_alerts(&[lead], std::slice::from_ref(&a))
            .unwrap();
        assert_eq!(store.due_alerts("hook", now, 10).unwrap().len(), 1);
        assert!(store.due_alerts("other", now, 10).unwrap().is_empty());
        assert_eq!(store.next_due("hook").unwrap(), Some(now));

        let later = now + chrono::Duration::minutes(5);
        store
            .record_attempt(
                &a.id,
                &Attempt::Retry {
                    next: later,
                    error: "503".into(),
                },
            )
            .unwrap();
        assert!(
            store.due_alerts("hook", now, 10).unwrap().is_empty(),
            "not due yet"
        );
        assert_eq!(store.next_due("hook").unwrap(), Some(later));
        let due = store.due_alerts("hook", later, 10).unwrap();
        assert_eq!((due.len(), due[0].attempts), (1, 1));

        store
            .record_attempt(
                &a.id,
                &Attempt::Failed {
                    error: "400 Bad Request".into(),
                },
            )
            .unwrap();
        assert!(store.due_alerts("hook", later, 10).unwrap().is_empty());
        assert_eq!(store.next_due("hook").unwrap(), None);
        assert_eq!(
            store.alerts(Some(AlertStatus::Failed), 10).unwrap().len(),
            1
        );
        assert_eq!(alert_counts(&store), (0, 0, 1));

        assert!(store.retry_alert(&a.id, later).unwrap());
        assert!(
            !store.retry_alert(&a.id, later).unwrap(),
            "only failed alerts are retried"
        );
        let due = store.due_alerts("hook", later, 10).unwrap();
        assert_eq!((due.len(), due[0].attempts), (1, 0));
        store
            .record_attempt(&a.id, &Attempt::Delivered { at: later })
            .unwrap();
        assert_eq!(alert_counts(&store), (0, 1, 0));
        assert!(store.due_alerts("hook", later, 10).unwrap().is_empty());
    }

    #[test]
    fn the_item_count_follows_inserts_and_prunes_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let now = t(10, 12);
        {
            let store = reopen(dir.path());
            let batch = [
                item("a", now, &[]),
                item("b", now, &["talks"]),
                item("c", now, &[]),
            ];
            store.insert_items(&batch).unwrap();
            store.insert_items(&batch).unwrap();
            assert_eq!(store.item_count(), 3, "a batch stored twice counts once");
            let later = now + chrono::Duration::days(8);
            let report = store
                .prune(
                    later,
                    Duration::from_secs(7 * 86400),
                    Duration::from_secs(90 * 86400),
                    100,
                )
                .unwrap();
            assert_eq!(report.items, 2, "the two items without a topic expire");
            assert_eq!(store.item_count(), 1);
            assert_eq!(store.item_count(), store.counts().items);
        }
        let store = reopen(dir.path());
        assert_eq!(store.item_count(), 1);
        assert_eq!(
            read_u64(store.meta.get(STORED_KEY).unwrap().as_deref()),
            1,
            "the count is kept in the store"
        );

        // A store of an older build, without the count: counted once, then kept.
        store.meta.remove(STORED_KEY).unwrap();
        drop(store);
        let store = reopen(dir.path());
        assert_eq!(store.item_count(), 1);
        assert_eq!(read_u64(store.meta.get(STORED_KEY).unwrap().as_deref()), 1);
        // Opening reads the count; it does not walk the items to recount them.
        store
            .meta
            .insert(STORED_KEY, &7u64.to_be_bytes()[..])
            .unwrap();
        drop(store);
        assert_eq!(reopen(dir.path()).item_count(), 7);
    }

    /// Rewrites every record of `tree` as JSON, the form schema 2 wrote.
    fn rewrite_as_json<T: Serialize + DeserializeOwned>(tree: &sled::Tree) -> usize {
        let records: Vec<_> = tree.iter().map(Result::unwrap).collect();
        for (key, value) in &records {
            let record: T = codec::decode(value).unwrap();
            tree.insert(key, serde_json::to_vec(&record).unwrap())
                .unwrap();
        }
        records.len()
    }

    /// A schema-2 store, every record JSON, opens as schema 3 and reads as before;
    /// records written after that are compact.
    #[test]
    fn a_schema_2_store_of_json_records_reads_as_before_and_new_records_are_compact() {
        let dir = tempfile::tempdir().unwrap();
        let now = t(10, 12);
        let lead = item("lead", now, &["talks"]);
        let copy = copy_of(&lead, "copy", t(10, 13));
        let pending = alert(&lead, "talks", "hook", now);
        let state = FeedState {
            etag: Some("\"v7\"".into()),
            items_total: 2,
            ..FeedState::default()
        };
        let story;
        {
            let store = reopen(dir.path());
            store
                .insert_items_with_alerts(
                    &[lead.clone(), copy.clone()],
                    std::slice::from_ref(&pending),
                )
                .unwrap();
            store
                .put_feed_state("https://example.org/rss", &state)
                .unwrap();
            story = store.get_story("lead").unwrap().unwrap();
            assert_eq!(rewrite_as_json::<StoredItem>(&store.items), 2);
            assert_eq!(rewrite_as_json::<StoredStory>(&store.stories), 1);
            assert_eq!(rewrite_as_json::<FeedState>(&store.feeds), 1);
            assert_eq!(rewrite_as_json::<StoredAlert>(&store.outbox), 1);
            store
                .meta
                .insert(SCHEMA_KEY, &2u32.to_be_bytes()[..])
                .unwrap();
        }
        let store = reopen(dir.path());
        assert_eq!(
            store.meta.get(SCHEMA_KEY).unwrap().unwrap().as_ref(),
            SCHEMA_VERSION.to_be_bytes()
        );
        assert_eq!(store.get_item("lead").unwrap(), Some(lead.clone()));
        assert_eq!(store.get_item("copy").unwrap(), Some(copy));
        assert_eq!(store.get_story("lead").unwrap(), Some(story));
        assert_eq!(
            store.feed_state("https://example.org/rss").unwrap(),
            Some(state)
        );
        assert_eq!(store.get_alert(&pending.id).unwrap(), Some(pending));
        assert_eq!(store.items(&query(None, None, 10)).unwrap().skipped, 0);

        let later = item("later", t(11, 0), &[]);
        let json_size = serde_json::to_vec(&later).unwrap().len();
        store.insert_items(std::slice::from_ref(&later)).unwrap();
        let (_, value) = store
            .items
            .iter()
            .map(Result::unwrap)
            .find(|(key, _)| key.ends_with(b"later"))
            .expect("the new item is stored");
        assert_ne!(value[0], b'{', "a new record was written as JSON");
        assert!(
            value.len() < json_size,
            "{} bytes compact, {json_size} as JSON",
            value.len()
        );
        assert_eq!(store.get_item("later").unwrap(), Some(later));
    }

    /// The flushed count on file is what a flush made durable; items written after
    /// it (not flushed by hand) never make a store look damaged, a larger count does.
    #[tokio::test]
    async fn a_store_with_fewer_items_than_were_flushed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FLUSHED_FILE);
        {
            let store = reopen(dir.path());
            store
                .insert_items(&[item("a", t(10, 0), &[]), item("b", t(10, 1), &[])])
                .unwrap();
            store.flush().await.unwrap();
            assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), "2");
            // A flush with nothing new written (a burst of 304s) leaves the file be.
            std::fs::remove_file(&file).unwrap();
            store.flush().await.unwrap();
            assert!(!file.exists(), "the file was written again for nothing");
            store.insert_items(&[item("c", t(10, 2), &[])]).unwrap();
            // Stored again: not counted twice.
            store.insert_items(&[item("c", t(10, 2), &[])]).unwrap();
        }
        let store = reopen(dir.path());
        assert_eq!(store.written().unwrap(), 3);
        drop(store);

        std::fs::write(&file, "99\n").unwrap();
        match Store::open(dir.path()) {
            Err(StoreError::Lost {
                flushed: 99,
                recovered: 3,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // A file cut short by a crash is no evidence either way.
        std::fs::write(&file, "").unwrap();
        assert_eq!(reopen(dir.path()).get_item("c").unwrap().unwrap().id, "c");
    }
}
