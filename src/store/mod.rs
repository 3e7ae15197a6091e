//! The embedded store: everything newswatch keeps between runs, in one sled directory.
//!
//! This is the only module that touches sled. docs/store.md is the contract (the
//! `Store` interface and its guarantees) and the layout in full. Records are compact
//! (postcard, and zstd for records with text), written and read only by `codec.rs`,
//! which also reads the JSON records of earlier schemas; keys that must sort by time
//! start with the time in milliseconds since the epoch as a big-endian `u64`, so
//! sled's byte order is time order.
//!
//! The new items of one feed poll are one `items` record (schema 4), its topic
//! matched items another: sled's cost is per key, so what an item costs follows the
//! keys written for it (BENCHMARKS.md, "Store records"). A batch key is the fetch
//! time, `0xFF` and a sequence number ([`keys::batch_key`]). Records of one item,
//! keyed by fetched ms ++ item id, written by schemas 1 to 3, are read as they are.
//!
//! Trees and their layout (`++` is concatenation):
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `meta` | `schema_version` | `u32` BE, currently [`SCHEMA_VERSION`] |
//! | `meta` | `items_written` | items ever stored, `u64` BE |
//! | `meta` | `items_stored` | items stored now, `u64` BE (kept, not counted at open) |
//! | `items` | batch key | [`StoredItem`]s of a poll (or its matched ones), compressed |
//! | `by_time` | batch key | `[matched, count (u16 BE)]` |
//! | `seen` | item id | the batch key of its record (schemas 1-3: fetch ms); a lead's also its fingerprint and fetch time |
//! | `seen_by_time` | batch key | the record's item ids |
//! | `topic_index` | topic id ++ `0x00` ++ fetched ms ++ item id | score (`f64` BE) |
//! | `stories` | story id | [`StoredStory`]; only once a copy joined or it alerted |
//! | `stories_by_time` | first-seen ms ++ story id | empty |
//! | `lead_sketches` | batch key | the sketches of the stories a poll started (schema 5) |
//! | `story_sketches` | first-seen ms ++ fingerprint (`u64` BE) ++ story id | schema 4: one lead's sketch, `u32` BE each |
//! | `feeds` | feed URL as configured | [`FeedState`] |
//! | `outbox` | alert id | [`StoredAlert`], compressed |
//! | `outbox_due` | sink id ++ `0x00` ++ next attempt ms ++ alert id | empty; pending alerts only |
//! | `item_versions` | item id | [`ItemVersion`] (16 bytes BE); items on a topic, written after their transaction |
//! | `story_steps` | story id ++ `0x00` ++ topic id ++ `0x00` ++ sink id | [`StoryStep`]: step, copies, time (16 bytes BE); stories that alerted on a topic with updates on |
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
//! `lead_sketches` (and, for stores of schema 4, `story_sketches`) holds each story's
//! sketch (`pipeline::dedup::sketch`) for the daemon's story window, which keeps only
//! fingerprints, times and a few sketch values in memory and reads a candidate's whole
//! sketch from here. The key starts with what the window holds of a story (its
//! first-seen time; the fingerprint is looked for in the record), so a candidate's
//! sketch is one short range scan away, and the tree is in time order for pruning, which
//! follows the items' history period (the window never looks further back). Stores
//! written before this tree existed have no sketches for their stories; the daemon
//! computes those from the leads' texts at start ([`SledStore::put_story_sketch`]).
//! The window is rebuilt from these trees ([`SledStore::sketches_since`]): a story of
//! one item that never alerted has no `stories` record (its lead says all of it;
//! [`SledStore::get_story`]), which saves two keys for most items.
//!
//! `items` is keyed like `by_time`, in time order, not by id: new records are then
//! appended at the end of the tree instead of landing on a random page each. With
//! random keys sled kept rewriting and caching pages all over the tree; written in
//! time order, 100,000 items of 2,200 bytes took 18 instead of 42 µs of CPU each and
//! the writer held 25 instead of 98-108 MiB (`examples/keyorder.rs`). An item is found
//! by id through `seen`, whose value is its record's key. Schema 1 keyed `items` by id;
//! opening such a store moves its items once (to the layout of schema 2).
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
//! for by key ([`SledStore::get_item`], [`SledStore::feed_state`]), and is skipped with a
//! warning when it turns up in a listing. Nothing here panics on stored bytes.
//!
//! sled writes to disk in the background: a write is durable only after
//! [`SledStore::flush`], so callers flush before acknowledging anything that must survive
//! a crash.
//!
//! Files: `records.rs` the record types; `keys.rs` the key layouts above; `items.rs`
//! the item transaction and listings; `stories.rs` stories and sketches; `outbox.rs`
//! alert delivery states; `feeds.rs` feed states; `open.rs` opening sled's files and
//! recovering from damage; `schema.rs` the moves between layouts and `prune.rs` the
//! pruning passes (the risky code, apart); `check.rs` `store check` and `store
//! backup`; `codec.rs` the record encoding.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::{Transactional, Tree};

mod backfill;
mod check;
mod codec;
mod feeds;
mod items;
mod keys;
mod open;
mod outbox;
pub mod postgres;
mod prune;
mod records;
mod schema;
mod stories;
mod updates;

pub use check::{BackupReport, CheckReport};
pub use records::*;

use keys::*;
use open::*;
use stories::*;

/// Items handed to [`Store::scan_items`]'s visitor at once by a store that lists them.
const SCAN_CHUNK: usize = 256;
/// The layout version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 6;
/// Written while a schema-1 store's items are being moved (see
/// [`SledStore::key_items_by_time`]): a build that reads schema 1 must not open a store
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
const LEAD_SKETCHES: &str = "lead_sketches";
const FEEDS: &str = "feeds";
const OUTBOX: &str = "outbox";
const OUTBOX_DUE: &str = "outbox_due";
const STORY_STEPS: &str = "story_steps";
const ITEM_VERSIONS: &str = "item_versions";

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
    /// A PostgreSQL store could not do what was asked (connection, query, schema).
    #[error("{op} (PostgreSQL at {location}): {cause}")]
    Postgres {
        op: &'static str,
        location: String,
        cause: String,
    },
    /// A write for a feed whose lease this daemon no longer holds: it expired (the
    /// daemon was paused or slow) and another daemon may poll the feed now.
    #[error("feed {feed}: this daemon's lease on it has expired or been taken over; nothing of this poll was stored")]
    LeaseLost { feed: String },
    /// A new record's key already holds one, after every retry with a fresh key.
    #[error("storing items: record key {key} is taken, again after {tries} tries with new keys (has the clock gone back?)")]
    KeyTaken { key: String, tries: u32 },
}

/// What the daemon, the alert workers, the API and the CLI ask of a store: the one
/// interface every backend implements. [`SledStore`] is the embedded default; a
/// backend shared by several daemons implements the same calls, so neither the
/// pipeline nor the poller knows which one is behind it.
///
/// The guarantees every backend keeps (docs/store.md): an item's alerts are stored
/// atomically with it, and a story alerts once per topic and sink however its copies
/// arrive ([`Store::insert_batch`]); nothing written is durable before
/// [`Store::flush`] returns, and callers acknowledge nothing (a feed's new state, an
/// alert wake-up) before that. Calls other than `flush` may block for a short read or
/// write; `flush` waits for the disk (or the database), so it is asynchronous.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Where the store is, for messages: a directory, a database.
    fn location(&self) -> String;

    /// True when an item with this id was stored before (and its id not yet expired).
    fn seen(&self, id: &str) -> Result<bool, StoreError>;
    /// Which of `ids` were seen: [`Store::seen`] for a feed's items at once, which a
    /// store behind a network answers in one round trip.
    fn seen_among(&self, ids: &[&str]) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut seen = std::collections::HashSet::new();
        for id in ids {
            if self.seen(id)? {
                seen.insert(id.to_string());
            }
        }
        Ok(seen)
    }
    fn get_item(&self, id: &str) -> Result<Option<StoredItem>, StoreError>;
    /// Stores a feed's new items, their alerts and their new stories' sketches: items
    /// already seen are skipped with their alerts, and an alert is stored only when its
    /// story has not alerted on its topic before. Items and alerts are one atomic
    /// write; the sketches follow it and may fail on their own ([`Inserted`]).
    ///
    /// `lease` is the feed's lease when the store is shared: a write under a lease
    /// that expired or was taken over is refused whole ([`StoreError::LeaseLost`]).
    fn insert_batch(
        &self,
        lease: Option<&Lease>,
        items: &[StoredItem],
        alerts: &[StoredAlert],
        sketches: &[(&str, &[u32])],
    ) -> Result<Inserted, StoreError> {
        self.write_batch(
            lease,
            &Batch {
                items,
                alerts,
                sketches,
                rules: &[],
                changed: &[],
            },
        )
    }
    /// [`Store::insert_batch`] with the topics' update rules: in the same transaction,
    /// each story that a new copy joined and that alerted on a rule's topic gets its
    /// step state per sink, and a `story.updated` event in the outbox when a step is
    /// reached ([`UpdateRule`]; a step is sent once per story, topic and sink, also
    /// across daemons).
    fn write_batch(&self, lease: Option<&Lease>, batch: &Batch<'_>)
        -> Result<Inserted, StoreError>;
    /// The versions of the items among `ids` that are kept on a topic (see
    /// [`ItemVersion`]), for telling a changed item from one seen again as it was.
    fn versions_among(&self, ids: &[&str]) -> Result<HashMap<String, ItemVersion>, StoreError>;
    /// Puts events that no item raised (a feed's health, say) in the outbox, each once:
    /// an id already there is left as it is. Returns how many were new. Build them with
    /// `alert::outbox::event_record`.
    fn put_events(&self, events: &[StoredAlert]) -> Result<usize, StoreError>;
    /// Stored items, newest first; unreadable records are skipped and counted.
    fn items(&self, query: &ItemQuery) -> Result<Listing<StoredItem>, StoreError>;
    /// Items stored, without walking them.
    fn item_count(&self) -> usize;
    /// Stored items fetched at or after `since`, oldest first, handed to `visit` a few
    /// at a time (the embedded store: a feed poll's record at a time), for a backtest
    /// that reads a whole window. Returns how many could not be read and were skipped.
    fn scan_items(
        &self,
        since: DateTime<Utc>,
        visit: &mut dyn FnMut(Vec<StoredItem>),
    ) -> Result<usize, StoreError> {
        let listing = self.items(&ItemQuery {
            topic: None,
            since: Some(since),
            limit: usize::MAX,
        })?;
        let skipped = listing.skipped;
        let mut records = listing.records;
        records.reverse();
        let mut rest = records.into_iter().peekable();
        while rest.peek().is_some() {
            visit(rest.by_ref().take(SCAN_CHUNK).collect());
        }
        Ok(skipped)
    }

    /// The topic definition (`backtest::definition`) `topic` was last backfilled for.
    fn backfilled(&self, topic: &str) -> Result<Option<String>, StoreError>;
    /// Writes a backfill's alerts and records that `topic`'s `definition` was
    /// backfilled, in one transaction: an alert is written only when its story has not
    /// alerted on its topic (then its story is marked so), as in
    /// [`Store::insert_batch`]. `items` holds each alert's item. Returns how many
    /// alerts were written.
    fn record_backfill(
        &self,
        topic: &str,
        definition: &str,
        alerts: &[StoredAlert],
        items: &[StoredItem],
    ) -> Result<usize, StoreError>;

    fn get_story(&self, id: &str) -> Result<Option<StoredStory>, StoreError>;
    /// Stories with a record (more than one copy, or alerted) first seen at or after
    /// `since`, oldest first, read as they are used.
    fn stories_since<'a>(
        &'a self,
        since: DateTime<Utc>,
    ) -> Box<dyn Iterator<Item = Result<StoredStory, StoreError>> + 'a>;
    /// The sketches of stories first seen at or after `since`, oldest first (stories
    /// of one item included, which `stories_since` does not list).
    fn sketches_since<'a>(
        &'a self,
        since: DateTime<Utc>,
    ) -> Box<dyn Iterator<Item = Result<LeadSketch, StoreError>> + 'a>;
    /// The sketches of the stories first seen at `first_seen` with `fingerprint`.
    fn story_sketches(
        &self,
        first_seen: DateTime<Utc>,
        fingerprint: u64,
    ) -> Result<Vec<(String, Vec<u32>)>, StoreError>;
    fn story_sketch(&self, story: &StoredStory) -> Result<Option<Vec<u32>>, StoreError>;
    fn put_story_sketch(&self, story: &StoredStory, sketch: &[u32]) -> Result<(), StoreError>;
    /// Writes stories' sketches, all or none.
    fn put_sketches(&self, leads: &[LeadSketch]) -> Result<(), StoreError>;

    fn feed_states(&self) -> Result<Vec<(String, FeedState)>, StoreError>;
    /// Saves a feed's state; under a `lease` it also gives the lease up, and is
    /// refused when the lease is no longer held.
    fn put_feed_state(
        &self,
        lease: Option<&Lease>,
        url: &str,
        state: &FeedState,
    ) -> Result<(), StoreError>;

    /// True when several daemons share this store, so that feeds must be claimed
    /// before they are polled ([`Store::claim_feed`]).
    fn is_shared(&self) -> bool {
        false
    }
    /// Claims the feed `url` for one poll. A store of one daemon grants every claim
    /// without a lease; a shared one grants a lease only when the feed is due and no
    /// other live daemon holds it (docs/cluster.md).
    fn claim_feed(&self, url: &str, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        let _ = (url, now);
        Ok(Claim::Granted {
            lease: None,
            state: None,
        })
    }
    /// Gives up every feed lease and alert claim this daemon holds (at shutdown and
    /// reload), so that other daemons need not wait for them to expire.
    fn release_leases(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Pending alerts of `sink` due at `now`, earliest first, at most `limit`. A
    /// shared store claims them for this daemon for a lease period, so that no other
    /// daemon sends them meanwhile.
    fn due_alerts(
        &self,
        sink: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StoredAlert>, StoreError>;
    /// Keeps this daemon's claim on alert `id` for another lease period, just before
    /// sending it: false when the claim ran out and another daemon took the alert, or
    /// it is no longer pending. A store of one daemon has no claims.
    fn renew_claim(&self, id: &str) -> Result<bool, StoreError> {
        let _ = id;
        Ok(true)
    }
    /// When the next pending alert of `sink` is due.
    fn next_due(&self, sink: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    fn record_attempt(&self, id: &str, attempt: &Attempt) -> Result<StoredAlert, StoreError>;
    /// Alerts, newest first, optionally of one status.
    fn alerts(
        &self,
        status: Option<AlertStatus>,
        limit: usize,
    ) -> Result<Listing<StoredAlert>, StoreError>;
    fn get_alert(&self, id: &str) -> Result<Option<StoredAlert>, StoreError>;
    /// Puts a failed alert back in the queue, due at `now`, with its attempts reset;
    /// false when it is not failed.
    fn retry_alert(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
    fn pending_alerts(&self) -> usize;

    /// One bounded pruning pass: at most `max` removals.
    fn prune(
        &self,
        now: DateTime<Utc>,
        history: Duration,
        retention: Duration,
        max: usize,
    ) -> Result<PruneReport, StoreError>;
    /// Waits until everything written so far is durable; returns the bytes flushed.
    fn flush(&self) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// Copies the store, as of one moment, into the new or empty directory `to` while
    /// it stays open, then checks the copy. A backend whose data lives in a database
    /// server says it cannot (its own tools back it up).
    fn backup(&self, to: &Path) -> Result<(BackupReport, CheckReport), StoreError>;
}

/// A store shared by the stages of a daemon.
pub type SharedStore = Arc<dyn Store>;

/// A feed claimed by one daemon of a cluster for one poll. Each claim raises the
/// feed's epoch, so a write under an older one (a daemon that was paused past its
/// lease) is told apart from the current owner's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub feed: String,
    pub epoch: i64,
}

/// What claiming a feed gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Poll it now. `state` is the feed's state as the store has it, when the store is
    /// shared: another daemon may have polled the feed since this one last did.
    Granted {
        lease: Option<Lease>,
        state: Option<FeedState>,
    },
    /// Another daemon polls it, or polled it and it is not due yet: ask again at
    /// `until`.
    Taken {
        until: DateTime<Utc>,
        state: Option<FeedState>,
    },
}

/// Opens the store the config names.
pub fn open(storage: &crate::config::Storage) -> Result<SharedStore, StoreError> {
    match &storage.backend {
        crate::config::Backend::Sled => Ok(Arc::new(SledStore::open(&storage.path)?)),
        crate::config::Backend::Postgres(pg) => Ok(Arc::new(postgres::PgStore::open(
            pg,
            storage.history.min(crate::pipeline::dedup::STORY_WINDOW),
        )?)),
    }
}

impl Store for SledStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }
    fn seen(&self, id: &str) -> Result<bool, StoreError> {
        SledStore::seen(self, id)
    }
    fn get_item(&self, id: &str) -> Result<Option<StoredItem>, StoreError> {
        SledStore::get_item(self, id)
    }
    fn write_batch(
        &self,
        _lease: Option<&Lease>,
        batch: &Batch<'_>,
    ) -> Result<Inserted, StoreError> {
        SledStore::write_batch(self, batch)
    }
    fn put_events(&self, events: &[StoredAlert]) -> Result<usize, StoreError> {
        SledStore::put_events(self, events)
    }
    fn versions_among(&self, ids: &[&str]) -> Result<HashMap<String, ItemVersion>, StoreError> {
        SledStore::versions_among(self, ids)
    }
    fn items(&self, query: &ItemQuery) -> Result<Listing<StoredItem>, StoreError> {
        SledStore::items(self, query)
    }
    fn item_count(&self) -> usize {
        SledStore::item_count(self)
    }
    fn scan_items(
        &self,
        since: DateTime<Utc>,
        visit: &mut dyn FnMut(Vec<StoredItem>),
    ) -> Result<usize, StoreError> {
        SledStore::scan_items(self, since, visit)
    }
    fn backfilled(&self, topic: &str) -> Result<Option<String>, StoreError> {
        SledStore::backfilled(self, topic)
    }
    fn record_backfill(
        &self,
        topic: &str,
        definition: &str,
        alerts: &[StoredAlert],
        items: &[StoredItem],
    ) -> Result<usize, StoreError> {
        SledStore::record_backfill(self, topic, definition, alerts, items)
    }
    fn get_story(&self, id: &str) -> Result<Option<StoredStory>, StoreError> {
        SledStore::get_story(self, id)
    }
    fn stories_since<'a>(
        &'a self,
        since: DateTime<Utc>,
    ) -> Box<dyn Iterator<Item = Result<StoredStory, StoreError>> + 'a> {
        Box::new(SledStore::stories_since(self, since))
    }
    fn sketches_since<'a>(
        &'a self,
        since: DateTime<Utc>,
    ) -> Box<dyn Iterator<Item = Result<LeadSketch, StoreError>> + 'a> {
        Box::new(SledStore::sketches_since(self, since))
    }
    fn story_sketches(
        &self,
        first_seen: DateTime<Utc>,
        fingerprint: u64,
    ) -> Result<Vec<(String, Vec<u32>)>, StoreError> {
        SledStore::story_sketches(self, first_seen, fingerprint)
    }
    fn story_sketch(&self, story: &StoredStory) -> Result<Option<Vec<u32>>, StoreError> {
        SledStore::story_sketch(self, story)
    }
    fn put_story_sketch(&self, story: &StoredStory, sketch: &[u32]) -> Result<(), StoreError> {
        SledStore::put_story_sketch(self, story, sketch)
    }
    fn put_sketches(&self, leads: &[LeadSketch]) -> Result<(), StoreError> {
        SledStore::put_sketches(self, leads)
    }
    fn feed_states(&self) -> Result<Vec<(String, FeedState)>, StoreError> {
        SledStore::feed_states(self)
    }
    fn put_feed_state(
        &self,
        _lease: Option<&Lease>,
        url: &str,
        state: &FeedState,
    ) -> Result<(), StoreError> {
        SledStore::put_feed_state(self, url, state)
    }
    fn due_alerts(
        &self,
        sink: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        SledStore::due_alerts(self, sink, now, limit)
    }
    fn next_due(&self, sink: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        SledStore::next_due(self, sink)
    }
    fn record_attempt(&self, id: &str, attempt: &Attempt) -> Result<StoredAlert, StoreError> {
        SledStore::record_attempt(self, id, attempt)
    }
    fn alerts(
        &self,
        status: Option<AlertStatus>,
        limit: usize,
    ) -> Result<Listing<StoredAlert>, StoreError> {
        SledStore::alerts(self, status, limit)
    }
    fn get_alert(&self, id: &str) -> Result<Option<StoredAlert>, StoreError> {
        SledStore::get_alert(self, id)
    }
    fn retry_alert(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        SledStore::retry_alert(self, id, now)
    }
    fn pending_alerts(&self) -> usize {
        SledStore::pending_alerts(self)
    }
    fn prune(
        &self,
        now: DateTime<Utc>,
        history: Duration,
        retention: Duration,
        max: usize,
    ) -> Result<PruneReport, StoreError> {
        SledStore::prune(self, now, history, retention, max)
    }
    fn flush(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(SledStore::flush(self))
    }
    fn backup(&self, to: &Path) -> Result<(BackupReport, CheckReport), StoreError> {
        let (copied, copy) = SledStore::backup(self, to)?;
        Ok((copied, copy.check()?))
    }
}

/// The embedded store, on sled. Cloning is cheap: sled handles are reference-counted.
#[derive(Debug, Clone)]
pub struct SledStore {
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
    lead_sketches: Tree,
    feeds: Tree,
    outbox: Tree,
    outbox_due: Tree,
    story_steps: Tree,
    item_versions: Tree,
    /// Items stored, kept as a counter: sled's `Tree::len` walks the whole tree (and
    /// fills the page cache doing it), far too costly for a status line every 30 s.
    item_count: Arc<AtomicUsize>,
    /// How far (in milliseconds) prune passes have looked for items without a topic
    /// past the history; see [`SledStore::expired_items`].
    prune_scanned: Arc<AtomicU64>,
    /// The count last written to [`FLUSHED_FILE`], so that a flush with nothing new
    /// (a burst of 304s) does not write the file again.
    recorded_flushed: Arc<AtomicU64>,
    /// Tells apart the batch keys of one millisecond ([`keys::batch_key`]); starts
    /// from the clock at open, so a restart within a millisecond does not reuse one.
    batch_seq: Arc<AtomicU32>,
    /// Writes hold it shared; a backup holds it alone, so that the copy is of one
    /// moment ([`SledStore::backup`]) while the store stays open.
    writes: Arc<std::sync::RwLock<()>>,
    /// Held while an alert's record and due entries change, which are several
    /// single-key writes rather than a transaction (`outbox.rs`), so that a reader
    /// removing a due entry it finds stale sees either state, never one in between.
    outbox_lock: Arc<std::sync::Mutex<()>>,
    /// Makes every sketch write fail, to test what the daemon does then.
    #[cfg(test)]
    fail_sketch_writes: Arc<std::sync::atomic::AtomicBool>,
    /// Makes every flush fail, as a full disk or an I/O error would.
    #[cfg(test)]
    fail_flushes: Arc<std::sync::atomic::AtomicBool>,
    /// Makes the removal of expired items fail, as a full disk would.
    #[cfg(test)]
    fail_item_removals: Arc<std::sync::atomic::AtomicBool>,
    /// How many of an alert update's writes go through before the rest fail, as a
    /// crash between them would leave the outbox (`usize::MAX`: all of them).
    #[cfg(test)]
    alert_writes_allowed: Arc<std::sync::atomic::AtomicUsize>,
}

/// What [`SledStore::insert_batch`] did. Once it returns, the items and alerts are
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

impl SledStore {
    /// Opens (or creates) the store in directory `path`.
    pub fn open(path: &Path) -> Result<SledStore, StoreError> {
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
        SledStore::from_db(db, path)
    }

    /// The store over an open sled database at `path`: its trees, the schema move if
    /// one is due, the lost-items check and the kept count.
    pub(super) fn from_db(db: sled::Db, path: &Path) -> Result<SledStore, StoreError> {
        let open_error = |cause| StoreError::Open {
            path: path.to_path_buf(),
            cause,
        };
        let tree = |name: &str| db.open_tree(name).map_err(open_error);
        let store = SledStore {
            meta: tree(META)?,
            items: tree(ITEMS)?,
            by_time: tree(BY_TIME)?,
            seen: tree(SEEN)?,
            seen_by_time: tree(SEEN_BY_TIME)?,
            topic_index: tree(TOPIC_INDEX)?,
            stories: tree(STORIES)?,
            stories_by_time: tree(STORIES_BY_TIME)?,
            story_sketches: tree(STORY_SKETCHES)?,
            lead_sketches: tree(LEAD_SKETCHES)?,
            feeds: tree(FEEDS)?,
            outbox: tree(OUTBOX)?,
            outbox_due: tree(OUTBOX_DUE)?,
            story_steps: tree(STORY_STEPS)?,
            item_versions: tree(ITEM_VERSIONS)?,
            item_count: Arc::new(AtomicUsize::new(0)),
            prune_scanned: Arc::new(AtomicU64::new(0)),
            recorded_flushed: Arc::new(AtomicU64::new(0)),
            writes: Default::default(),
            outbox_lock: Default::default(),
            batch_seq: Arc::new(AtomicU32::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos()),
            )),
            #[cfg(test)]
            fail_sketch_writes: Default::default(),
            #[cfg(test)]
            fail_flushes: Default::default(),
            #[cfg(test)]
            fail_item_removals: Default::default(),
            #[cfg(test)]
            alert_writes_allowed: Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX)),
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
    /// entry per record saying how many items the record holds: walking `items` pulled
    /// every record through sled's cache, far past its capacity (175 MB of heap at the
    /// peak for 100,000 items).
    fn count_items_once(&self) -> Result<u64, StoreError> {
        let mut counted = 0u64;
        for entry in self.by_time.iter() {
            let (_, value) = entry.map_err(|cause| StoreError::Db {
                op: "counting the stored items",
                cause,
            })?;
            counted += read_by_time(&value).1 as u64;
        }
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

    /// Makes [`SledStore::flush`] fail (or work again), for tests.
    #[cfg(test)]
    pub(crate) fn fail_flushes(&self, fail: bool) {
        self.fail_flushes.store(fail, Ordering::Relaxed);
    }

    /// Makes the prune's removal of expired items fail (or work again), for tests.
    #[cfg(test)]
    pub(crate) fn fail_item_removals(&self, fail: bool) {
        self.fail_item_removals.store(fail, Ordering::Relaxed);
    }

    /// Lets only the first `writes` writes of each alert update through.
    #[cfg(test)]
    pub(crate) fn allow_alert_writes(&self, writes: usize) {
        self.alert_writes_allowed.store(writes, Ordering::Relaxed);
    }

    /// Held by every write that changes records (shared), so that a backup (which
    /// holds it alone) copies the store as of one moment. Writes call it once, at
    /// their entry: taking it again inside one could wait behind a backup forever.
    ///
    /// Writes come from async tasks too (the serial stage, the alert workers, the
    /// prune loop). One that finds a backup under way waits with
    /// `tokio::task::block_in_place`, so the runtime hands this worker's other tasks
    /// (the API's `/healthz`, the watchdog) to another thread for the minutes a large
    /// copy can take, instead of stalling them.
    pub(super) fn write_gate(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        use std::sync::TryLockError;
        use tokio::runtime::{Handle, RuntimeFlavor};
        let wait = || {
            self.writes
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        match self.writes.try_read() {
            Ok(open) => open,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                match Handle::try_current().map(|runtime| runtime.runtime_flavor()) {
                    // Outside a worker (a blocking-pool thread) this simply runs `wait`.
                    Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
                    _ => wait(),
                }
            }
        }
    }

    /// Holds off every write until the guard drops, as a backup does.
    #[cfg(test)]
    pub(crate) fn hold_writes(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.writes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new key for a record of items fetched at `at` (milliseconds).
    pub(super) fn next_batch_key(&self, at: u64) -> Vec<u8> {
        batch_key(at, self.batch_seq.fetch_add(1, Ordering::Relaxed))
    }

    /// Waits until everything written so far is on disk; returns the bytes flushed.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        // Read before flushing: every write that counted up to this value is in the
        // flush, so the file never claims more than sled holds.
        let written = self.written()?;
        #[cfg(test)]
        if self.fail_flushes.load(Ordering::Relaxed) {
            return Err(StoreError::Db {
                op: "flushing the store",
                cause: sled::Error::Io(std::io::Error::other("failing on purpose, for a test")),
            });
        }
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
    /// daemon's periodic status uses [`SledStore::item_count`]. Items are counted in
    /// the records themselves (one holds a feed poll's items), not taken from an
    /// index, so a test can hold the indexes against them; a record that does not
    /// decode counts none.
    pub fn counts(&self) -> StoreCounts {
        let items = self
            .items
            .iter()
            .values()
            .filter_map(Result::ok)
            .filter_map(|record| codec::decode_items(&record).ok())
            .map(|items| items.len())
            .sum();
        StoreCounts {
            items,
            feeds: self.feeds.len(),
            stories: self.stories.len(),
        }
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

#[cfg(test)]
mod tests;
