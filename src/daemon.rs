//! The daemon: wires poller → pipeline → store, for `newswatch once` and `newswatch run`.
//!
//! One task polls (the poller, bounded by its semaphores) and sends each feed's result
//! over a bounded channel; one task processes results in arrival order: new items go
//! through the pipeline, are grouped into stories and stored in one transaction per
//! feed, the store is flushed, and only then is the feed's new state (validators,
//! next poll) saved. A crash anywhere before that flush leaves the old state, so the
//! feed is fetched again and its items, not yet marked seen, are processed again:
//! nothing accepted is lost, and nothing is stored twice.
//!
//! Shutdown follows the sources-first order: cancelling stops the poller scheduling,
//! the channel closes when the poller returns, the processor drains what was already
//! fetched, and the store is flushed last.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::alert::{outbox, Dispatcher};
use crate::config::Config;
use crate::identity;
use crate::model::Topic;
use crate::pipeline::dedup::{self, StoryIndex};
use crate::pipeline::Pipeline;
use crate::poller::{PollOutcome, PollResult, Poller};
use crate::store::{FeedState, Store, StoredAlert, StoredEntity, StoredItem, StoredTopic};

/// Poll results waiting to be processed; small, so a slow store slows the poller
/// instead of piling fetched bodies up in memory.
const CHANNEL_DEPTH: usize = 16;
/// How often the background pass prunes expired items, and how much it removes at most.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
const PRUNE_BATCH: usize = 5_000;
/// How far back a new item is compared with earlier stories. Outlets run the same wire
/// story within hours; a longer window only adds false candidates to rule out.
const STORY_WINDOW: Duration = Duration::from_secs(48 * 3600);

/// What one `once` run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub feeds_polled: usize,
    pub feeds_failed: usize,
    pub feeds_not_modified: usize,
    pub items_new: usize,
    pub items_matched: usize,
    pub stories_new: usize,
    pub alerts_delivered: usize,
    pub alerts_retrying: usize,
    pub alerts_failed: usize,
}

/// The stages that process poll results, and their state.
struct Processor {
    pipeline: Pipeline,
    topics: Vec<Topic>,
    store: Store,
    stories: StoryIndex,
    /// Woken after new alerts are durable, so delivery starts at once.
    alerts_stored: Option<Arc<Notify>>,
    summary: Summary,
}

/// Polls every feed once, processes and stores what is new, and returns.
pub async fn once(config: &Config) -> anyhow::Result<Summary> {
    let store = open_store(config)?;
    // Set up first: a sink without its secret stops the run before anything is polled.
    let dispatcher = Dispatcher::new(config, store.clone()).context("setting up alert sinks")?;
    let mut processor = Processor::new(config, store.clone())?;
    let poller = Poller::new(config).context("setting up the HTTP client")?;
    let states = feed_states(&store)?;
    let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
    let feeds = config.feeds.clone();
    let polling = tokio::spawn(async move { poller.poll_once(&feeds, states, tx).await });
    while let Some(result) = rx.recv().await {
        processor.handle(result).await?;
    }
    polling.await.context("the poller task failed")?;
    store.flush().await.context("flushing the store")?;
    let delivered = dispatcher
        .deliver_due()
        .await
        .context("delivering alerts")?;
    let mut summary = processor.summary;
    summary.alerts_delivered = delivered.delivered;
    summary.alerts_retrying = delivered.retrying;
    summary.alerts_failed = delivered.failed;
    Ok(summary)
}

/// Polls until `shutdown` is cancelled, then drains and flushes.
pub async fn run(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = open_store(config)?;
    let dispatcher =
        Arc::new(Dispatcher::new(config, store.clone()).context("setting up alert sinks")?);
    let mut processor = Processor::new(config, store.clone())?;
    processor.alerts_stored = Some(dispatcher.waker());
    let poller = Poller::new(config).context("setting up the HTTP client")?;
    let states = feed_states(&store)?;
    tracing::info!(
        feeds = config.feeds.len(),
        topics = config.topics.len(),
        store = %config.storage.path.display(),
        "Started."
    );

    let pruner = tokio::spawn(prune_loop(
        store.clone(),
        config.storage.history,
        config.storage.retention,
        shutdown.clone(),
    ));
    let delivering = tokio::spawn(dispatcher.run(shutdown.clone()));
    let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
    let feeds = config.feeds.clone();
    let stop = shutdown.clone();
    let unstored = poller.unstored();
    let polling = tokio::spawn(async move { poller.run(feeds, states, tx, stop).await });
    while let Some(result) = rx.recv().await {
        // A failed store write is logged, and the feed's validators are dropped so its
        // next poll fetches everything again; the daemon keeps serving the other feeds.
        let key = result.feed.url.to_string();
        let name = result.feed.name.clone();
        if let Err(err) = processor.handle(result).await {
            unstored.mark(&key);
            tracing::error!(
                feed = %name,
                error = format!("{err:#}"),
                "Could not store a feed's items; will fetch them again."
            );
        }
    }
    polling.await.context("the poller task failed")?;
    // The workers stop at the cancellation too; a delivery cut short stays pending.
    delivering.await.context("the alert workers failed")?;
    pruner.abort();
    store.flush().await.context("flushing the store")?;
    tracing::info!("Stopped.");
    Ok(())
}

fn open_store(config: &Config) -> anyhow::Result<Store> {
    let path = &config.storage.path;
    Store::open(path).with_context(|| format!("opening the store at {}", path.display()))
}

fn feed_states(store: &Store) -> anyhow::Result<HashMap<String, FeedState>> {
    Ok(store
        .feed_states()
        .context("reading feed states")?
        .into_iter()
        .collect())
}

async fn prune_loop(
    store: Store,
    history: Duration,
    retention: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Bounded passes, so pruning a large backlog never stalls the store for long.
        loop {
            match store.prune(Utc::now(), history, retention, PRUNE_BATCH) {
                Ok(report) => {
                    if report.items + report.seen > 0 {
                        tracing::info!(
                            items = report.items,
                            seen = report.seen,
                            "Pruned expired records."
                        );
                    }
                    if report.done || shutdown.is_cancelled() {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "Could not prune the store.");
                    break;
                }
            }
        }
    }
}

impl Processor {
    fn new(config: &Config, store: Store) -> anyhow::Result<Processor> {
        let window = config.storage.history.min(STORY_WINDOW);
        let mut stories = StoryIndex::new(window, dedup::DEFAULT_MAX_DISTANCE);
        let since =
            Utc::now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::days(7));
        for story in store
            .recent_stories(since)
            .context("reading recent stories")?
        {
            stories.insert(story.fingerprint, story.id.clone(), story.first_seen);
        }
        Ok(Processor {
            pipeline: Pipeline::from_config(config),
            topics: config.topics.clone(),
            store,
            stories,
            alerts_stored: None,
            summary: Summary::default(),
        })
    }

    async fn handle(&mut self, result: PollResult) -> anyhow::Result<()> {
        let PollResult {
            feed,
            items,
            state,
            outcome,
        } = result;
        let key = feed.url.to_string();
        self.summary.feeds_polled += 1;
        match outcome {
            PollOutcome::Failed { .. } | PollOutcome::Gone => self.summary.feeds_failed += 1,
            PollOutcome::NotModified => self.summary.feeds_not_modified += 1,
            PollOutcome::Fetched { .. } => {}
        }

        let now = Utc::now();
        self.stories.expire(now);
        let mut batch: Vec<StoredItem> = Vec::new();
        let mut alerts: Vec<StoredAlert> = Vec::new();
        let mut in_batch: HashSet<String> = HashSet::new();
        for entry in items {
            let id = identity::item_id(
                entry.id.as_deref(),
                entry.link.as_deref(),
                &entry.title,
                entry.published,
                &key,
            );
            if !in_batch.insert(id.clone())
                || self.store.seen(&id).context("reading the seen index")?
            {
                continue;
            }
            let processed = self.pipeline.process_item(&entry.title, &entry.body);
            let text = format!("{}\n{}", processed.article.title, processed.article.body);
            let shingles = dedup::shingles(&text);
            let fingerprint = dedup::simhash(&shingles);
            let (story, is_story_lead) = self.story_of(&id, &shingles, now);
            let findings = processed.findings;
            if !findings.topics.is_empty() {
                self.summary.items_matched += 1;
                tracing::info!(
                    feed = %feed.name,
                    title = %processed.article.title,
                    topics = %findings.topics.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(","),
                    story_lead = is_story_lead,
                    "Matched an item."
                );
            }
            let stored = StoredItem {
                id,
                feed: key.clone(),
                feed_name: feed.name.clone(),
                title: processed.article.title,
                url: entry.link,
                published: entry.published,
                fetched: now,
                text: processed.article.body,
                entities: findings
                    .entities
                    .iter()
                    .map(|e| StoredEntity {
                        id: e.id.clone(),
                        mentions: e.mentions,
                    })
                    .collect(),
                topics: findings
                    .topics
                    .iter()
                    .map(|t| StoredTopic {
                        id: t.id.clone(),
                        score: t.score,
                        matched: t.matched.clone(),
                    })
                    .collect(),
                story,
                is_story_lead,
                fingerprint,
            };
            // Every match proposes its alerts; the store writes only those whose story
            // has not alerted on the topic yet, inside the item's transaction.
            alerts.extend(outbox::alerts_for(
                &stored,
                &findings.topics,
                &findings.entities,
                &self.topics,
                now,
            ));
            batch.push(stored);
        }
        if !batch.is_empty() {
            let new = self
                .store
                .insert_items_with_alerts(&batch, &alerts)
                .with_context(|| format!("storing items of feed {}", feed.name))?;
            self.summary.items_new += new;
            self.summary.stories_new += batch.iter().filter(|i| i.is_story_lead).count();
            // Items must be durable before the feed's validators move on, or a crash
            // here would lose them behind a 304.
            self.store.flush().await.context("flushing the store")?;
            if !alerts.is_empty() {
                if let Some(wake) = &self.alerts_stored {
                    wake.notify_waiters();
                }
            }
        }
        self.store
            .put_feed_state(&key, &state)
            .with_context(|| format!("saving the state of feed {}", feed.name))?;
        Ok(())
    }

    /// The story an item belongs to: an earlier story whose text it nearly repeats,
    /// or a new one led by this item. Decided in memory from the index's sketches.
    fn story_of(&mut self, id: &str, shingles: &[u64], now: DateTime<Utc>) -> (String, bool) {
        let fingerprint = dedup::simhash(shingles);
        let sketch = dedup::sketch(shingles);
        if let Some(story) = self.stories.same_story(fingerprint, &sketch) {
            return (story.to_string(), false);
        }
        self.stories
            .insert_sketched(fingerprint, id.to_string(), now, sketch);
        (id.to_string(), true)
    }
}
