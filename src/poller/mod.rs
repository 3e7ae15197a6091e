//! The poller: fetches feeds when they are due, reads them liberally, and hands each
//! feed's items and new state to the daemon over a bounded channel.
//!
//! - [`fetch`]: one conditional GET (or file read) with every failure classified;
//! - [`repair`]: liberal feed parsing, repairing what browsers forgive;
//! - [`schedule`]: the pure next-poll computation (interval, hints, backoff);
//! - [`full_text`]: for a `full_text` feed, each new item's page fetched and its
//!   article text put in place of the feed's summary;
//! - here: [`poll_feed`], one feed's poll from state to new state, and [`Poller`],
//!   which polls many feeds under a global and a per-host concurrency limit.
//!
//! A poll never fails as a whole: whatever goes wrong with a feed ends up in its
//! [`PollOutcome`] and state (`failures`, `last_error`, `last_status`, `next_poll`),
//! and the other feeds carry on. Each poll's health is recorded in the state too, and
//! a change into or out of a bad state is in [`PollResult::health`] (`crate::health`). The state in a [`PollResult`] is to be saved only after its items
//! are stored, so a crash in between fetches the feed again instead of losing items.

pub mod fetch;
pub mod full_text;
pub mod schedule;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt as _;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::config::{Config, Feed, FeedUrl};
use crate::health::{self, Transition};
use crate::parse::{self, FeedItem};
use crate::store::{Claim, FeedState, Lease, SharedStore};
pub use fetch::{CacheHints, FetchError, FetchOutcome, Fetcher};
use schedule::{Bounds, Hints};

/// How long in-flight polls may finish after shutdown before they are dropped (a
/// dropped poll's state is not saved, so the feed is simply fetched again).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What polling one feed did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    Fetched {
        items: usize,
        repairs: u32,
    },
    NotModified,
    Failed {
        error: String,
        transient: bool,
    },
    /// 410 Gone: the feed is `gone` (`crate::health`) and asked again only daily.
    Gone,
}

impl PollOutcome {
    /// The outcome as the metrics count it.
    pub fn label(&self) -> &'static str {
        match self {
            PollOutcome::Fetched { .. } => "fetched",
            PollOutcome::NotModified => "not_modified",
            PollOutcome::Failed { .. } => "failed",
            PollOutcome::Gone => "gone",
        }
    }
}

/// One feed's poll: its items, and the state to save once they are stored.
#[derive(Debug)]
pub struct PollResult {
    pub feed: Feed,
    pub items: Vec<FeedItem>,
    /// The new state to persist AFTER the items are stored.
    pub state: FeedState,
    pub outcome: PollOutcome,
    /// The feed's lease when the store is shared: its items and state are written
    /// under it, or not at all.
    pub lease: Option<Lease>,
    /// Set when this poll moved the feed into a bad health state or out of one
    /// ([`health::record`]); `state.health` holds the state it is in now.
    pub health: Option<Transition>,
}

/// The address a feed is fetched from: where a 301/308 said it moved, else as configured.
fn fetch_url(feed: &Feed, state: &FeedState) -> FeedUrl {
    match (&feed.url, state.permanent_url.as_deref()) {
        (FeedUrl::Http(_), Some(moved)) => match url::Url::parse(moved) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => FeedUrl::Http(url),
            _ => feed.url.clone(),
        },
        _ => feed.url.clone(),
    }
}

/// Polls one feed: fetch, parse, new state and next poll. Never panics on input and
/// never fails: failures are in the outcome and the state.
pub async fn poll_feed(
    fetcher: &Fetcher,
    feed: &Feed,
    state: FeedState,
    now: DateTime<Utc>,
    default_interval: Duration,
) -> PollResult {
    let url = fetch_url(feed, &state);
    let span = tracing::info_span!("poll", feed = %feed.name, url = %url);
    poll_feed_at(fetcher, feed, url, state, now, default_interval)
        .instrument(span)
        .await
}

async fn poll_feed_at(
    fetcher: &Fetcher,
    feed: &Feed,
    url: FeedUrl,
    state: FeedState,
    now: DateTime<Utc>,
    default_interval: Duration,
) -> PollResult {
    let interval = feed.interval.unwrap_or(default_interval);
    let moved = url != feed.url;
    let mut next = state;
    next.last_attempt = Some(now);
    let mut hints = Hints::default();
    let mut items = Vec::new();

    let outcome = match fetcher.fetch(&url, &next).await {
        Ok(FetchOutcome::NotModified {
            cache,
            permanent_redirect,
        }) => {
            remember_move(&mut next, permanent_redirect);
            next.last_status = matches!(url, FeedUrl::Http(_)).then_some(304);
            hints.not_before = cache.max_age;
            succeeded(&mut next, now);
            PollOutcome::NotModified
        }
        Ok(FetchOutcome::Fetched {
            status,
            body,
            charset,
            etag,
            last_modified,
            cache,
            permanent_redirect,
        }) => {
            let base = match &url {
                FeedUrl::Http(url) => {
                    Some(permanent_redirect.clone().unwrap_or_else(|| url.clone()))
                }
                FeedUrl::File(_) => None,
            };
            remember_move(&mut next, permanent_redirect);
            next.last_status = status;
            let mut followed = false;
            let read = match parse_off_thread(body, charset, base).await {
                // The site's page given as the feed's url, advertising one feed:
                // that feed is read for this poll, and the config should name it.
                Err(ReadFailure::Feed(parse::FeedError::Html { feeds, .. }))
                    if feeds.len() == 1 =>
                {
                    tracing::warn!(
                        advertised = %feeds[0],
                        "The feed's url serves an HTML page that advertises one feed; reading that feed instead. Set the feed's url to it."
                    );
                    followed = true;
                    read_advertised(fetcher, &feeds[0]).await
                }
                other => other,
            };
            match read {
                Ok(feed) => {
                    // Validators are kept only for a body that was read: had a broken
                    // body's ETag been kept, the next poll would get a 304 and the
                    // feed would look healthy while nothing was read. The page's
                    // validators are not the advertised feed's either.
                    if !followed {
                        next.etag = etag;
                        next.last_modified = last_modified;
                    }
                    next.repairs += feed.repairs.len() as u64;
                    next.items_total += feed.items.len() as u64;
                    let ttl = feed.ttl.map(|m| Duration::from_secs(u64::from(m) * 60));
                    hints.not_before = cache.max_age.max(ttl);
                    succeeded(&mut next, now);
                    note_items(&mut next, &feed.items, now);
                    let repairs = u32::try_from(feed.repairs.len()).unwrap_or(u32::MAX);
                    if !feed.repairs.is_empty() {
                        let what: Vec<&str> = feed.repairs.iter().map(|r| r.as_str()).collect();
                        tracing::debug!(repairs = %what.join(", "), "Repaired the feed to read it.");
                    }
                    if let Some(note) = &feed.encoding_note {
                        tracing::debug!(encoding = feed.encoding, note = %note, "Read the feed in a charset other than UTF-8.");
                    }
                    items = feed.items;
                    PollOutcome::Fetched {
                        items: items.len(),
                        repairs,
                    }
                }
                Err(failure) => {
                    let (error, transient) = failure.into_error();
                    failed(&mut next, error, transient, moved, now)
                }
            }
        }
        Err(FetchError::Gone { url }) => {
            // Asked again daily (`schedule`), so a feed that comes back recovers.
            let error = FetchError::Gone { url };
            next.last_status = error.status();
            failed(&mut next, error, false, moved, now);
            PollOutcome::Gone
        }
        Err(error) => {
            next.last_status = error.status();
            hints.retry_after = error.retry_after();
            let transient = error.is_transient();
            failed(&mut next, error.to_string(), transient, moved, now)
        }
    };
    next.next_poll = schedule::next_poll(
        now,
        &feed.url.to_string(),
        interval,
        &outcome,
        &hints,
        &next,
        &Bounds::default(),
    );
    log_outcome(&outcome, &next);
    PollResult {
        feed: feed.clone(),
        items,
        state: next,
        outcome,
        lease: None,
        health: None,
    }
}

fn remember_move(state: &mut FeedState, permanent_redirect: Option<url::Url>) {
    if let Some(to) = permanent_redirect {
        tracing::info!(to = %to, "Feed moved permanently; polling its new address from now on.");
        state.permanent_url = Some(to.to_string());
    }
}

fn succeeded(state: &mut FeedState, now: DateTime<Utc>) {
    if state.failures > 0 {
        tracing::info!(failures = state.failures, "Feed answers again.");
    }
    state.last_success = Some(now);
    state.failures = 0;
    state.failing_since = None;
    state.last_error = None;
}

/// What a read of the feed says about new items (`health::note_items`): the items'
/// dates, and a hash of their ids for a feed that dates none.
fn note_items(state: &mut FeedState, items: &[FeedItem], now: DateTime<Utc>) {
    let published: Vec<DateTime<Utc>> = items.iter().filter_map(|i| i.published).collect();
    let digest = (!items.is_empty()).then(|| {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for item in items {
            let key = item.id.as_deref().or(item.link.as_deref());
            hasher.update(key.unwrap_or(item.title.as_str()).as_bytes());
            hasher.update(&[0]);
        }
        hasher.digest()
    });
    health::note_items(state, &published, digest, now);
}

/// Records a failure. Only the first occurrence of a problem is logged as a warning
/// (the rest at debug), so a feed down for a week does not flood the log.
fn failed(
    state: &mut FeedState,
    error: impl ToString,
    transient: bool,
    moved: bool,
    now: DateTime<Utc>,
) -> PollOutcome {
    let error = error.to_string();
    state.failures = state.failures.saturating_add(1);
    state.failing_since.get_or_insert(now);
    if state.last_error.as_deref() != Some(error.as_str()) {
        tracing::warn!(error = %error, transient, failures = state.failures, "Could not poll feed.");
    } else {
        tracing::debug!(error = %error, transient, failures = state.failures, "Feed still failing.");
    }
    if moved && !transient {
        // The address a 301 gave has gone bad; the configured one is asked next
        // time (and will redirect again if the move still holds).
        tracing::info!("Forgetting the feed's new address after a permanent failure there.");
        state.permanent_url = None;
    }
    state.last_error = Some(error.clone());
    PollOutcome::Failed { error, transient }
}

fn log_outcome(outcome: &PollOutcome, state: &FeedState) {
    let next_poll = state
        .next_poll
        .map_or_else(|| "never".to_string(), |t| t.to_rfc3339());
    match outcome {
        PollOutcome::Fetched { items, repairs } => {
            tracing::info!(items, repairs, next_poll = %next_poll, "Fetched feed.");
        }
        // The usual answer for most feeds most of the time; not worth an info line.
        PollOutcome::NotModified => {
            tracing::debug!(next_poll = %next_poll, "Feed not modified.");
        }
        // Logged where the failure was recorded.
        PollOutcome::Failed { .. } | PollOutcome::Gone => {}
    }
}

/// Logs a feed entering a bad state (warn) or leaving one (info).
fn log_transition(feed: &Feed, transition: Option<&Transition>) {
    match transition {
        Some(Transition::Unhealthy {
            from,
            to,
            reason,
            moved_to,
        }) => tracing::warn!(
            feed = %feed.name,
            url = %feed.url,
            state = to.as_str(),
            was = from.as_str(),
            reason = %reason,
            moved_to = moved_to.as_deref().unwrap_or(""),
            "Feed became unhealthy."
        ),
        Some(Transition::Recovered { from }) => tracing::info!(
            feed = %feed.name,
            url = %feed.url,
            state = "ok",
            was = from.as_str(),
            "Feed is healthy again."
        ),
        None => {}
    }
}

/// Why a fetched body gave no items.
#[derive(Debug)]
enum ReadFailure {
    /// The body is not a feed, or a broken one.
    Feed(parse::FeedError),
    /// Reading it panicked (a bug hostile input found).
    Panicked(String),
    /// The body was an HTML page advertising one feed, which could not be read.
    Advertised {
        url: String,
        error: String,
        transient: bool,
    },
}

impl ReadFailure {
    /// The feed's error, and whether it is transient (polled again on the usual
    /// backoff). A feed's own defect is not: the same body fails the same way. A
    /// panic is, since a fixed build or a changed body may read it.
    fn into_error(self) -> (String, bool) {
        match self {
            ReadFailure::Feed(error) => (error.to_string(), false),
            ReadFailure::Panicked(message) => (
                format!("internal error while reading this feed: {message}"),
                true,
            ),
            ReadFailure::Advertised {
                url,
                error,
                transient,
            } => (
                format!(
                    "an HTML page was served instead of a feed; the feed it advertises, {url}, \
                     could not be read: {error}"
                ),
                transient,
            ),
        }
    }
}

/// Parses on the blocking pool: a large feed takes tens of milliseconds of CPU,
/// which must not stall the fetches sharing this runtime thread. `url` is where the
/// body came from, for the feeds an HTML page advertises.
async fn parse_off_thread(
    body: Vec<u8>,
    charset: Option<String>,
    url: Option<url::Url>,
) -> Result<parse::LiberalFeed, ReadFailure> {
    read_off_thread(move || parse::read_feed_at(&body, charset.as_deref(), url.as_ref())).await
}

/// Runs `read` on the blocking pool; a panic in it becomes this feed's failure,
/// logged and counted, and the other feeds go on.
async fn read_off_thread(
    read: impl FnOnce() -> Result<parse::LiberalFeed, parse::FeedError> + Send + 'static,
) -> Result<parse::LiberalFeed, ReadFailure> {
    let parsed = tokio::task::spawn_blocking(move || crate::isolate::isolate(read)).await;
    let panicked = |message: String| {
        crate::metrics::global().panicked("parse");
        tracing::error!(panic = %message, "Reading this feed panicked; it failed alone.");
        Err(ReadFailure::Panicked(message))
    };
    match parsed {
        Ok(Ok(Ok(feed))) => Ok(feed),
        Ok(Ok(Err(error))) => Err(ReadFailure::Feed(error)),
        Ok(Err(panic)) => panicked(panic.message),
        Err(join) => panicked(join.to_string()),
    }
}

/// Reads the one feed an HTML page advertised (docs/feeds.md, "A page instead of a
/// feed"): fetched without validators, and not followed further should it be a page
/// too.
async fn read_advertised(
    fetcher: &Fetcher,
    advertised: &str,
) -> Result<parse::LiberalFeed, ReadFailure> {
    let failure = |error: String, transient: bool| ReadFailure::Advertised {
        url: advertised.to_string(),
        error,
        transient,
    };
    let url = url::Url::parse(advertised).map_err(|e| failure(e.to_string(), false))?;
    match fetcher
        .fetch(&FeedUrl::Http(url.clone()), &FeedState::default())
        .await
    {
        Ok(FetchOutcome::Fetched { body, charset, .. }) => {
            parse_off_thread(body, charset, Some(url))
                .await
                .map_err(|f| {
                    let (error, transient) = f.into_error();
                    failure(error, transient)
                })
        }
        Ok(FetchOutcome::NotModified { .. }) => Err(failure(
            "answered 304 Not Modified to a request without validators".into(),
            true,
        )),
        Err(error) => {
            let transient = error.is_transient();
            Err(failure(error.to_string(), transient))
        }
    }
}

/// The result for a poll whose task panicked: a failure, scheduled like any other.
fn crashed(
    feed: &Feed,
    mut state: FeedState,
    now: DateTime<Utc>,
    interval: Duration,
) -> PollResult {
    let span = tracing::error_span!("poll", feed = %feed.name, url = %feed.url);
    let _enter = span.enter();
    crate::metrics::global().panicked("poll");
    state.last_attempt = Some(now);
    let outcome = failed(
        &mut state,
        "internal error: polling this feed crashed",
        true,
        false,
        now,
    );
    state.next_poll = schedule::next_poll(
        now,
        &feed.url.to_string(),
        feed.interval.unwrap_or(interval),
        &outcome,
        &Hints::default(),
        &state,
        &Bounds::default(),
    );
    PollResult {
        feed: feed.clone(),
        items: Vec::new(),
        state,
        outcome,
        lease: None,
        health: None,
    }
}

/// Whether a feed's poll goes ahead, after claiming it.
enum Claimed {
    /// Poll with this state (a shared store's, which another daemon may have moved
    /// on) under this lease.
    Poll(FeedState, Option<Lease>),
    /// Another daemon holds the feed, or it is not due: keep this state, whose
    /// `next_poll` is when to ask again.
    Later(FeedState),
}

/// Claims `feed` from a shared store before its poll.
fn claim(
    store: Option<&dyn crate::store::Store>,
    feed: &Feed,
    state: FeedState,
    now: DateTime<Utc>,
    interval: Duration,
) -> Claimed {
    let Some(store) = store else {
        return Claimed::Poll(state, None);
    };
    match store.claim_feed(&feed.url.to_string(), now) {
        Ok(Claim::Granted {
            lease,
            state: shared,
        }) => Claimed::Poll(shared.unwrap_or(state), lease),
        Ok(Claim::Taken {
            until,
            state: shared,
        }) => {
            tracing::debug!(feed = %feed.name, until = %until, "Another daemon polls this feed; not polling it.");
            Claimed::Later(FeedState {
                next_poll: Some(until),
                ..shared.unwrap_or(state)
            })
        }
        Err(err) => {
            // The database is away: try again within a short while.
            let wait = interval.min(Duration::from_secs(30));
            tracing::warn!(feed = %feed.name, error = %err, "Could not claim the feed; trying again later.");
            Claimed::Later(FeedState {
                next_poll: Some(now + chrono::TimeDelta::from_std(wait).unwrap_or_default()),
                ..state
            })
        }
    }
}

/// The concurrency limits shared by every poll task.
#[derive(Debug)]
struct Limits {
    global: Arc<Semaphore>,
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Limits {
    fn host(&self, url: &FeedUrl) -> Arc<Semaphore> {
        let key = match url {
            FeedUrl::Http(url) => format!(
                "{}:{}",
                url.host_str().unwrap_or_default(),
                url.port_or_known_default().unwrap_or(0)
            ),
            // Local files share one limit, like one host.
            FeedUrl::File(_) => String::new(),
        };
        // The lock is held only to look up or insert, never across an await; a
        // poisoned map (a panic while inserting) is still a usable map.
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hosts
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }
}

/// Polls many feeds under a global and a per-host concurrency limit.
#[derive(Debug)]
pub struct Poller {
    fetcher: Arc<Fetcher>,
    interval: Duration,
    /// The `[health]` rules each poll's outcome is judged by.
    health: Arc<crate::config::Health>,
    limits: Arc<Limits>,
    unstored: Unstored,
    progress: Option<Progress>,
    /// The shared store whose leases decide which daemon polls a feed; `None` when
    /// this daemon is the only one.
    leases: Option<SharedStore>,
    /// The store whose `seen` ids tell a `full_text` feed's new items.
    seen: Option<SharedStore>,
    /// Item pages fetched at most per poll of a `full_text` feed.
    full_text_pages: usize,
}

/// A callback the [`Poller::run`] loop calls on every turn, at least every `tick`.
///
/// This is how the loop proves it is alive: the daemon feeds `/healthz` and the
/// systemd watchdog from it, so a stuck poller stops both, where a timer of its own
/// would keep reporting health while nothing is polled.
#[derive(Clone)]
pub struct Progress {
    pub tick: Duration,
    pub beat: Arc<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

/// Feeds whose last poll's items could not be stored (a full disk, say).
///
/// The poller keeps each feed's new validators in memory as soon as it has polled it;
/// if the items behind them were then lost, the next conditional GET would get a 304
/// and hide them for good. The daemon marks such feeds here, and the poller forgets
/// their validators before the next poll, so it fetches the whole feed again.
#[derive(Debug, Clone, Default)]
pub struct Unstored(Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

impl Unstored {
    /// Marks the feed with this key (its URL as configured).
    pub fn mark(&self, key: &str) {
        if let Ok(mut set) = self.0.lock() {
            set.insert(key.to_string());
        }
    }

    /// True, once, when the feed was marked.
    pub fn take(&self, key: &str) -> bool {
        self.0
            .lock()
            .map(|mut set| set.remove(key))
            .unwrap_or(false)
    }
}

impl Poller {
    pub fn new(config: &Config) -> Result<Poller, FetchError> {
        let poller = &config.poller;
        Ok(Poller {
            unstored: Unstored::default(),
            progress: None,
            leases: None,
            seen: None,
            full_text_pages: poller.full_text_pages,
            fetcher: Arc::new(Fetcher::new(poller)?),
            interval: poller.interval,
            health: Arc::new(config.health.clone()),
            limits: Arc::new(Limits {
                global: Arc::new(Semaphore::new(poller.concurrency.max(1))),
                per_host: poller.per_host.max(1),
                hosts: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn capped(&self, sleep: Option<Duration>) -> Duration {
        match (&self.progress, sleep) {
            (Some(p), Some(s)) => s.min(p.tick),
            (Some(p), None) => p.tick,
            (None, s) => s.unwrap_or(Duration::ZERO),
        }
    }

    /// Reports the run loop's progress to `progress`.
    pub fn with_progress(mut self, progress: Progress) -> Poller {
        self.progress = Some(progress);
        self
    }

    /// Claims each feed from `store` before polling it, when the store is shared by
    /// several daemons (a store of one grants every claim, so it is not asked).
    pub fn with_leases(mut self, store: SharedStore) -> Poller {
        if store.is_shared() {
            self.leases = Some(store);
        }
        self
    }

    /// Reads `store`'s seen ids, so that a `full_text` feed fetches the pages of its
    /// new items only.
    pub fn with_store(mut self, store: SharedStore) -> Poller {
        self.seen = Some(store);
        self
    }

    /// Where the daemon marks feeds whose items it could not store.
    pub fn unstored(&self) -> Unstored {
        self.unstored.clone()
    }

    /// Polls every enabled feed once, sending each result as it completes; returns
    /// when all are done. `states` is keyed by the feed URL (`feed.url.to_string()`).
    pub async fn poll_once(
        &self,
        feeds: &[Feed],
        mut states: HashMap<String, FeedState>,
        tx: mpsc::Sender<PollResult>,
    ) {
        let mut tasks = JoinSet::new();
        let mut names = HashMap::new();
        for feed in feeds {
            let state = states.remove(&feed.url.to_string()).unwrap_or_default();
            let handle = self.spawn(&mut tasks, feed.clone(), state, tx.clone(), None);
            names.insert(handle.id(), feed.name.clone());
        }
        drop(tx);
        while let Some(joined) = tasks.join_next().await {
            if let Err(err) = joined {
                let feed = names.get(&err.id()).map_or("?", String::as_str);
                tracing::error!(feed = %feed, error = %err, "A poll task failed.");
            }
        }
    }

    /// The daemon loop: polls each enabled feed whenever its `next_poll` is due,
    /// until `shutdown` is cancelled or the receiver goes away. One timer serves
    /// every feed (a heap of due times), so idle feeds cost a heap entry each.
    pub async fn run(
        &self,
        feeds: Vec<Feed>,
        mut states: HashMap<String, FeedState>,
        tx: mpsc::Sender<PollResult>,
        shutdown: CancellationToken,
    ) {
        let keys: Vec<String> = feeds.iter().map(|f| f.url.to_string()).collect();
        let mut due: BinaryHeap<Reverse<(DateTime<Utc>, usize)>> = BinaryHeap::new();
        let start = Utc::now();
        for (i, key) in keys.iter().enumerate() {
            let at = states.get(key).and_then(|s| s.next_poll).unwrap_or(start);
            due.push(Reverse((at, i)));
        }

        let mut tasks: JoinSet<FeedState> = JoinSet::new();
        // Each running poll's feed, and its state before, for a task that dies.
        let mut in_flight: HashMap<tokio::task::Id, (usize, FeedState)> = HashMap::new();
        loop {
            if let Some(progress) = &self.progress {
                (progress.beat)();
            }
            let now = Utc::now();
            while let Some(&Reverse((at, i))) = due.peek() {
                if at > now || shutdown.is_cancelled() {
                    break;
                }
                due.pop();
                let mut state = states.remove(&keys[i]).unwrap_or_default();
                if self.unstored.take(&keys[i]) {
                    state.etag = None;
                    state.last_modified = None;
                }
                let before = state.clone();
                let handle = self.spawn(
                    &mut tasks,
                    feeds[i].clone(),
                    state,
                    tx.clone(),
                    Some(shutdown.clone()),
                );
                in_flight.insert(handle.id(), (i, before));
            }
            let sleep = due
                .peek()
                .map(|Reverse((at, _))| (*at - now).to_std().unwrap_or(Duration::ZERO));
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = tx.closed() => {
                    tracing::info!("Nobody takes poll results any more; stopping the poller.");
                    break;
                }
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let (id, state) = match joined {
                        Ok((id, state)) => (id, Some(state)),
                        Err(err) => (err.id(), None),
                    };
                    let Some((i, before)) = in_flight.remove(&id) else { continue };
                    // A task that died (it cannot panic, but may be cancelled) keeps
                    // the feed's old state, retried after an interval.
                    let state = state.unwrap_or_else(|| {
                        tracing::error!(feed = %feeds[i].name, "A poll task failed; retrying the feed later.");
                        let wait = chrono::TimeDelta::from_std(self.interval)
                            .unwrap_or(chrono::TimeDelta::minutes(5));
                        FeedState {
                            next_poll: Some(Utc::now() + wait),
                            ..before
                        }
                    });
                    if let Some(at) = state.next_poll {
                        due.push(Reverse((at, i)));
                    }
                    states.insert(keys[i].clone(), state);
                }
                // Wakes at least every progress tick, so an idle loop still reports
                // that it is alive.
                _ = tokio::time::sleep(self.capped(sleep)), if sleep.is_some() || self.progress.is_some() => {}
            }
        }

        // Stop scheduling; give what is in flight a moment to be delivered, then drop it.
        drop(tx);
        let grace = tokio::time::sleep(SHUTDOWN_GRACE);
        tokio::pin!(grace);
        while !tasks.is_empty() {
            tokio::select! {
                _ = &mut grace => break,
                _ = tasks.join_next() => {}
            }
        }
        if !tasks.is_empty() {
            tracing::info!(
                polls = tasks.len(),
                "Dropping polls still in flight at shutdown."
            );
            tasks.shutdown().await;
        }
    }

    /// Starts one feed's poll as a task: it waits for its host's and then a global
    /// permit, polls, and sends the result. It returns the feed's new state, or its
    /// old one when shutdown came before it started.
    fn spawn(
        &self,
        tasks: &mut JoinSet<FeedState>,
        feed: Feed,
        state: FeedState,
        tx: mpsc::Sender<PollResult>,
        shutdown: Option<CancellationToken>,
    ) -> tokio::task::AbortHandle {
        let fetcher = self.fetcher.clone();
        let limits = self.limits.clone();
        let interval = self.interval;
        let leases = self.leases.clone();
        let rules = self.health.clone();
        let seen = self.seen.clone();
        let pages = self.full_text_pages;
        tasks.spawn(async move {
            // Host first, then global: a global permit is only ever held by a poll
            // that can run, so one slow host cannot starve the others.
            let host = limits.host(&fetch_url(&feed, &state));
            // The semaphores are never closed, so acquiring cannot fail.
            let Ok(host_permit) = host.acquire_owned().await else {
                return state;
            };
            let Ok(global_permit) = limits.global.clone().acquire_owned().await else {
                return state;
            };
            // Shut down, or nobody would take the result: do not fetch.
            if tx.is_closed() || shutdown.as_ref().is_some_and(CancellationToken::is_cancelled) {
                return state;
            }
            let now = Utc::now();
            let (state, lease) = match claim(leases.as_deref(), &feed, state, now, interval) {
                Claimed::Poll(state, lease) => (state, lease),
                Claimed::Later(state) => return state,
            };
            crate::metrics::global().poll_started(state.next_poll, now);
            let fallback = state.clone();
            // Boxed, so the many tasks waiting for permits stay small.
            let poll = Box::pin(poll_feed(&fetcher, &feed, state, now, interval));
            let result = AssertUnwindSafe(poll)
                .catch_unwind()
                .await
                .unwrap_or_else(|_| crashed(&feed, fallback, now, interval));
            let repairs = match result.outcome {
                PollOutcome::Fetched { repairs, .. } => repairs,
                _ => 0,
            };
            crate::metrics::global().polled(result.outcome.label(), repairs);
            drop(host_permit);
            let mut result = result;
            if feed.full_text && matches!(result.outcome, PollOutcome::Fetched { .. }) {
                // After the feed's host permit is returned: the pages are often on
                // the feed's own host, and take that host's permits one by one.
                let host = |url: &FeedUrl| limits.host(url);
                let work = full_text::fill(
                    &fetcher,
                    &host,
                    seen.as_deref(),
                    &feed,
                    &mut result.items,
                    pages,
                );
                if AssertUnwindSafe(work).catch_unwind().await.is_err() {
                    tracing::error!(feed = %feed.name, "Fetching the full text crashed; the items keep the feed's text.");
                }
            }
            result.lease = lease;
            result.health = health::record(&mut result.state, &rules, now);
            log_transition(&feed, result.health.as_ref());
            let new_state = result.state.clone();
            // The global permit is held while the result waits for room in the
            // channel, so a slow consumer slows fetching instead of letting fetched
            // bodies pile up in memory.
            if tx.send(result).await.is_err() {
                tracing::debug!(feed = %feed.name, "Poll result dropped: nobody takes results any more.");
            }
            drop(global_permit);
            new_state
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Unstored;

    #[test]
    fn an_unstored_feed_is_taken_once() {
        let unstored = Unstored::default();
        let seen_by_daemon = unstored.clone();
        seen_by_daemon.mark("https://example.org/rss");
        assert!(!unstored.take("https://example.org/other"));
        assert!(unstored.take("https://example.org/rss"));
        assert!(
            !unstored.take("https://example.org/rss"),
            "validators are dropped once"
        );
    }
}

#[cfg(test)]
mod isolation_tests {
    use super::read_off_thread;

    fn parse_panics() -> f64 {
        let text = crate::metrics::global().render();
        text.lines()
            .find(|l| l.starts_with("newswatch_panics_total{stage=\"parse\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("newswatch_panics_total{stage=\"parse\"} is exported")
    }

    /// A panic while reading one feed's body is that feed's transient failure
    /// (polled again on its backoff), named as an internal error and counted; a
    /// feed's own defect stays a permanent failure.
    #[tokio::test]
    async fn a_panic_reading_a_feed_is_that_feeds_transient_failure() {
        let before = parse_panics();
        let (error, transient) =
            read_off_thread(|| panic!("byte index 306 is not a char boundary"))
                .await
                .unwrap_err()
                .into_error();
        assert_eq!(
            error,
            "internal error while reading this feed: byte index 306 is not a char boundary"
        );
        assert!(transient, "a crash must not back the feed off as broken");
        assert!(parse_panics() >= before + 1.0);
        let (error, transient) = read_off_thread(|| crate::parse::read_feed(b"hello", None))
            .await
            .unwrap_err()
            .into_error();
        assert!(error.starts_with("not a feed"), "{error}");
        assert!(!transient);
        let feed = read_off_thread(|| {
            crate::parse::read_feed(
                b"<rss version=\"2.0\"><channel><item><title>t</title></item></channel></rss>",
                None,
            )
        })
        .await
        .unwrap();
        assert_eq!(feed.items.len(), 1);
    }
}
