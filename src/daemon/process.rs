//! Processing poll results: from a feed's fetched items to stored items, stories and
//! alerts.
//!
//! Two stages: the pure one ([`analyze`]: item ids, the seen check, cleaning,
//! matching, fingerprints) runs on the blocking pool for a few feeds at once, so both
//! cores work; the serial one ([`Processor`]) takes the analysed feeds in arrival
//! order, groups their items into stories (one story window in memory, so one owner;
//! the stories' sketches are in the store), stores them in one transaction per feed
//! (the new stories' sketches in a record right after it), flushes the store, and only
//! then saves the feed's new state (validators, next poll). A crash anywhere before
//! that flush leaves the old state, so the feed is fetched again and its items, not
//! yet marked seen, are processed again: nothing accepted is lost, and nothing is
//! stored twice.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, Notify};

use crate::alert::outbox;
use crate::config;
use crate::config::Config;
use crate::health::Transition;
use crate::identity;
use crate::metrics;
use crate::model::Topic;
use crate::pipeline::dedup::{self, StoryWindow};
use crate::pipeline::{Pipeline, Processed};
use crate::poller::{PollOutcome, PollResult};
use crate::store::{
    Batch, ChangedItem, FeedState, Inserted, ItemVersion, LeadSketch, Lease, SharedStore, Store,
    StoredAlert, StoredEntity, StoredItem, StoredTopic, UpdateRule,
};

use super::Summary;

use dedup::STORY_WINDOW;

/// The stages that process poll results, and their state.
pub(super) struct Processor {
    pipeline: Arc<Pipeline>,
    topics: Vec<Topic>,
    /// The `story.updated` rules of the topics with `updates = true`.
    rules: Vec<UpdateRule>,
    store: SharedStore,
    /// The recent stories; their ids and sketches are in the store (or, until
    /// written, in `pending` and `unwritten`).
    stories: StoryWindow,
    /// Stories led by items of the batch being processed, not yet stored.
    pending: Vec<Lead>,
    /// Stored stories whose sketches could not be written: kept, so that their
    /// copies still find them, and written again before each feed until it works.
    unwritten: Vec<LeadSketch>,
    /// Woken after new alerts are durable, so delivery starts at once.
    pub(super) alerts_stored: Option<Arc<Notify>>,
    /// The ids of the last batches stored, for the second `seen` check.
    recent: RecentWrites,
    pub(super) summary: Summary,
    /// `[health] sink`: told when a feed's health changes.
    health_sink: Option<String>,
}

/// The ids of the batches stored lately, numbered, so that the serial stage can tell
/// which items of an analysed feed an earlier feed stored after the analysis looked
/// at `seen`, without asking the store again for every item (about 2 µs an item).
#[derive(Default)]
struct RecentWrites {
    /// Batches stored so far. An analysis reads it before its `seen` checks, and it
    /// is raised only after a batch is committed, so every batch the analysis could
    /// not see has a higher number.
    count: Arc<AtomicU64>,
    /// The last [`RecentWrites::KEPT`] batches' ids with their numbers, oldest first.
    batches: std::collections::VecDeque<(u64, HashSet<String>)>,
}

impl RecentWrites {
    /// Far more than the analyses that can be ahead of the serial stage
    /// ([`ANALYSES_AHEAD`]); an older analysis falls back to the store.
    const KEPT: usize = 32;

    /// Whether a batch stored after mark `as_of` holds `id`; `None` when some of
    /// those batches are no longer kept.
    fn stored_since(&self, as_of: u64, id: &str) -> Option<bool> {
        if as_of >= self.count.load(Ordering::Acquire) {
            return Some(false);
        }
        match self.batches.front() {
            Some(&(first, _)) if first <= as_of + 1 => Some(
                self.batches
                    .iter()
                    .rev()
                    .take_while(|(n, _)| *n > as_of)
                    .any(|(_, ids)| ids.contains(id)),
            ),
            _ => None,
        }
    }

    /// Notes a committed batch.
    fn stored(&mut self, ids: HashSet<String>) {
        let n = self.count.load(Ordering::Acquire) + 1;
        self.batches.push_back((n, ids));
        if self.batches.len() > Self::KEPT {
            self.batches.pop_front();
        }
        self.count.store(n, Ordering::Release);
    }
}

/// A new story's lead, until its batch is stored.
struct Lead {
    item: String,
    first_seen: DateTime<Utc>,
    fingerprint: u64,
    sketch: Vec<u32>,
}

/// A feed's poll result after the parallel stage: its new items cleaned, matched
/// and fingerprinted, ready for story grouping and storing, which are serial.
struct Analyzed {
    feed: config::Feed,
    state: FeedState,
    outcome: PollOutcome,
    items: Vec<AnalyzedItem>,
    /// Items seen before that came back materially changed (docs/stories.md,
    /// "Changed items").
    changed: Vec<AnalyzedItem>,
    /// [`RecentWrites::count`] when the analysis began.
    as_of: u64,
    lease: Option<Lease>,
    health: Option<Transition>,
}

struct AnalyzedItem {
    id: String,
    link: Option<String>,
    published: Option<DateTime<Utc>>,
    processed: Processed,
    fingerprint: u64,
    sketch: Vec<u32>,
}

/// Items of one feed from which their analysis is spread over the cores: a feed with
/// many new items (a first poll, a busy feed) would otherwise keep one core busy while
/// the others wait; below this, starting threads costs about as much as it saves (an
/// item takes tens of µs).
const PARALLEL_FROM_ITEMS: usize = 16;

/// The pure part of processing a feed: ids, the seen check, the pipeline, shingles,
/// fingerprint and sketch. Runs on the blocking pool, several feeds at a time; it
/// reads the store but never writes it. `stored` is [`RecentWrites::count`].
fn analyze(
    pipeline: &Pipeline,
    store: &dyn Store,
    stored: &AtomicU64,
    result: PollResult,
) -> anyhow::Result<Analyzed> {
    let as_of = stored.load(Ordering::Acquire);
    let PollResult {
        feed,
        items,
        state,
        outcome,
        lease,
        health,
    } = result;
    let key = feed.url.to_string();
    let mut analyzed = Vec::new();
    let mut in_batch: HashSet<String> = HashSet::new();
    let ids: Vec<String> = items
        .iter()
        .map(|entry| {
            identity::item_id(
                entry.id.as_deref(),
                entry.link.as_deref(),
                &entry.title,
                entry.published,
                &key,
            )
        })
        .collect();
    let seen = store
        .seen_among(&ids.iter().map(String::as_str).collect::<Vec<_>>())
        .context("reading the seen index")?;
    // Seen items on a topic are looked at again: a corrected headline or rewritten
    // text is a new version of the item, not a new item.
    let tracked = if seen.is_empty() {
        Default::default()
    } else {
        store
            .versions_among(&seen.iter().map(String::as_str).collect::<Vec<_>>())
            .context("reading item versions")?
    };
    // Which items to analyse: the new ones, and seen ones on a topic (compared below).
    let mut todo = Vec::new();
    for (entry, id) in items.into_iter().zip(ids) {
        if !in_batch.insert(id.clone()) {
            continue;
        }
        let stored = if seen.contains(&id) {
            let Some(stored) = tracked.get(&id) else {
                continue;
            };
            Some(stored)
        } else {
            None
        };
        todo.push((entry, id, stored));
    }
    // Each item's analysis depends on it alone, so a large batch is spread over the
    // cores; story grouping stays in the serial stage ([`Processor::write`]).
    let threads = if todo.len() >= PARALLEL_FROM_ITEMS {
        crate::par::cores()
    } else {
        1
    };
    let texts: Vec<(&str, &str)> = todo
        .iter()
        .map(|(entry, _, _)| (entry.title.as_str(), entry.body.as_str()))
        .collect();
    let processed = pipeline.process_items(&texts, threads);
    drop(texts);
    let mut changed = Vec::new();
    for ((entry, id, stored), processed) in todo.into_iter().zip(processed) {
        if let Some(stored) = stored {
            let fingerprint = dedup::simhash(&processed.shingles);
            let now = ItemVersion {
                title: identity::title_hash(&processed.article.title),
                fingerprint,
            };
            if stored.changed_to(&now, dedup::DEFAULT_MAX_DISTANCE) {
                changed.push(AnalyzedItem {
                    id,
                    link: entry.link,
                    published: entry.published,
                    processed,
                    fingerprint,
                    sketch: Vec::new(),
                });
            }
            continue;
        }
        metrics::global().item_processed();
        let fingerprint = dedup::simhash(&processed.shingles);
        let sketch = dedup::sketch(&processed.shingles);
        analyzed.push(AnalyzedItem {
            id,
            link: entry.link,
            published: entry.published,
            processed,
            fingerprint,
            sketch,
        });
    }
    Ok(Analyzed {
        feed,
        state,
        outcome,
        items: analyzed,
        changed,
        as_of,
        lease,
        health,
    })
}

/// What the store needs of the topics with `updates = true` to decide their
/// `story.updated` events (docs/webhooks.md).
fn update_rules(topics: &[Topic]) -> Vec<UpdateRule> {
    topics
        .iter()
        .filter_map(|topic| {
            let updates = topic.updates?;
            Some(UpdateRule {
                topic: topic.id.clone(),
                topic_name: topic.name.clone(),
                sinks: topic.sinks.clone(),
                grow_by: updates.grow_by,
                interval: updates.interval,
            })
        })
        .collect()
}

/// Feeds analysed ahead of the serial stage. Two cores: enough to keep both busy while
/// the serial stage stores, few enough that analysed feeds do not pile up in memory.
const ANALYSES_AHEAD: usize = 4;

/// Runs the processing stages over the poller's results until its channel closes:
/// [`analyze`] on the blocking pool for several feeds at once, then
/// [`Processor::store`] in arrival order. A feed whose processing fails goes to
/// `failed`, which decides whether the run goes on.
pub(super) async fn process_results(
    mut results: mpsc::Receiver<PollResult>,
    processor: &mut Processor,
    mut failed: impl FnMut(&config::Feed, anyhow::Error) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    type Pending = (
        config::Feed,
        tokio::task::JoinHandle<anyhow::Result<Analyzed>>,
    );
    let (ahead, mut analysed) = mpsc::channel::<Pending>(ANALYSES_AHEAD);
    let pipeline = processor.pipeline.clone();
    let store = processor.store.clone();
    let stored = processor.recent.count.clone();
    // Ends when the poller's channel closes, or when the serial stage has stopped.
    let dispatch = tokio::spawn(async move {
        while let Some(result) = results.recv().await {
            let feed = result.feed.clone();
            let (pipeline, store, stored) = (pipeline.clone(), store.clone(), stored.clone());
            // A panic while analysing one feed's items (a bug its input found)
            // fails that feed alone: logged below with its name and counted; its
            // items are fetched again on its next poll.
            let task = tokio::task::spawn_blocking(move || {
                crate::isolate::isolate(|| analyze(&pipeline, store.as_ref(), &stored, result))
                    .unwrap_or_else(|panic| {
                        crate::metrics::global().panicked("process");
                        Err(anyhow::Error::new(panic).context("analysing the feed's items"))
                    })
            });
            if ahead.send((feed, task)).await.is_err() {
                break;
            }
        }
    });
    let mut unflushed = Unflushed::default();
    loop {
        // While feeds are waiting to be flushed, only take what is ready at once: when
        // nothing is, or enough has piled up, flush them together.
        let next = if unflushed.feeds.is_empty() {
            analysed.recv().await
        } else if unflushed.due() {
            processor.commit(&mut unflushed, &mut failed).await?;
            continue;
        } else {
            match analysed.try_recv() {
                Ok(next) => Some(next),
                Err(mpsc::error::TryRecvError::Empty) => {
                    processor.commit(&mut unflushed, &mut failed).await?;
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            }
        };
        let Some((feed, task)) = next else {
            break;
        };
        let written = match task.await {
            Ok(Ok(analyzed)) => processor.write(analyzed),
            Ok(Err(err)) => Err(err),
            Err(err) => Err(anyhow::anyhow!(
                "processing feed {} failed: {err}",
                feed.name
            )),
        };
        match written {
            Ok(done) => unflushed.push(done),
            Err(err) => failed(&feed, err)?,
        }
    }
    processor.commit(&mut unflushed, &mut failed).await?;
    dispatch.await.context("the processing dispatcher failed")?;
    Ok(())
}

/// Most feeds written between two flushes, and the longest a written feed waits for
/// its flush. A flush costs milliseconds (sled syncs its log), so a burst of feeds
/// (a cold start, many feeds due at once) shares one; a lone feed is flushed at once,
/// because nothing else is ready.
const FLUSH_EVERY_FEEDS: usize = 64;
const FLUSH_WITHIN: Duration = Duration::from_millis(250);

/// Feeds whose items are written but not yet flushed: their new states wait here,
/// since a state saved before its items are durable could hide them behind a 304.
#[derive(Default)]
struct Unflushed {
    feeds: Vec<Written>,
    alerts: bool,
    since: Option<std::time::Instant>,
}

/// What [`Processor::write`] leaves to the flush.
struct Written {
    feed: config::Feed,
    state: FeedState,
    alerts: bool,
    lease: Option<Lease>,
    /// The feed's health transition from its poll, if it had one.
    health: Option<Transition>,
}

impl Unflushed {
    fn push(&mut self, written: Written) {
        self.since.get_or_insert_with(std::time::Instant::now);
        self.alerts |= written.alerts;
        self.feeds.push(written);
    }

    fn due(&self) -> bool {
        self.feeds.len() >= FLUSH_EVERY_FEEDS
            || self.since.is_some_and(|t| t.elapsed() >= FLUSH_WITHIN)
    }
}

/// The `feed.unhealthy` or `feed.recovered` event of a feed's health change. Its id
/// names the feed, the change and the poll that saw it, so a retry is the same event.
fn health_event(
    sink: &str,
    feed: &config::Feed,
    state: &crate::store::FeedState,
    transition: &Transition,
    now: DateTime<Utc>,
) -> crate::store::StoredAlert {
    use crate::model::payload::{self, FeedHealthEvent, FeedRef, Payload};
    let (event, to, was, reason, moved_to) = match transition {
        Transition::Unhealthy {
            from,
            to,
            reason,
            moved_to,
        } => (
            payload::FEED_UNHEALTHY,
            to.as_str(),
            from.as_str(),
            Some(reason.clone()),
            moved_to.clone(),
        ),
        Transition::Recovered { from } => {
            (payload::FEED_RECOVERED, "ok", from.as_str(), None, None)
        }
    };
    let url = feed.url.to_string();
    let poll = state.last_attempt.unwrap_or(now).timestamp_millis();
    let id = identity::event_id(event, &url, to, sink, poll as u64);
    let body = Payload::FeedHealth(FeedHealthEvent {
        kind: payload::EVENT_TYPE.to_string(),
        version: payload::EVENT_VERSION,
        event: event.to_string(),
        id,
        feed: FeedRef {
            name: feed.name.clone(),
            url: url.clone(),
        },
        state: to.to_string(),
        was: was.to_string(),
        reason,
        moved_to,
        detected_at: now,
    });
    outbox::event_record(sink, &url, body, now)
}

/// The entities of an item's findings as the store keeps them.
fn stored_entities(findings: &crate::model::Findings) -> Vec<StoredEntity> {
    findings
        .entities
        .iter()
        .map(|e| StoredEntity {
            id: e.id.clone(),
            mentions: e.mentions,
        })
        .collect()
}

/// The topics of an item's findings as the store keeps them.
fn stored_topics(findings: &crate::model::Findings) -> Vec<StoredTopic> {
    findings
        .topics
        .iter()
        .map(|t| StoredTopic {
            id: t.id.clone(),
            score: t.score,
            matched: t.matched.clone(),
        })
        .collect()
}

impl Processor {
    pub(super) fn new(config: &Config, store: SharedStore) -> anyhow::Result<Processor> {
        let window = config.storage.history.min(STORY_WINDOW);
        let stories = recent_stories(store.as_ref(), window)?;
        Ok(Processor {
            pipeline: Arc::new(config.pipeline()),
            topics: config.topics.clone(),
            rules: update_rules(&config.topics),
            store,
            stories,
            pending: Vec::new(),
            unwritten: Vec::new(),
            alerts_stored: None,
            recent: RecentWrites::default(),
            summary: Summary::default(),
            health_sink: config.health.sink.clone(),
        })
    }

    /// Flushes the store, then saves the states of the feeds written since the last
    /// flush and wakes the alert workers. A failed flush fails every one of those
    /// feeds: their states are not saved, so they are fetched again.
    async fn commit(
        &mut self,
        unflushed: &mut Unflushed,
        failed: &mut impl FnMut(&config::Feed, anyhow::Error) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let Unflushed { feeds, alerts, .. } = std::mem::take(unflushed);
        if feeds.is_empty() {
            return Ok(());
        }
        if let Err(err) = self.store.flush().await {
            for Written { feed, .. } in &feeds {
                failed(feed, anyhow::anyhow!("flushing the store: {err}"))?;
            }
            return Ok(());
        }
        if alerts {
            if let Some(wake) = &self.alerts_stored {
                wake.notify_waiters();
            }
        }
        for Written {
            feed,
            state,
            lease,
            health,
            ..
        } in &feeds
        {
            let key = feed.url.to_string();
            // The event goes in before the state that records the change: a crash
            // between the two tells it again (at least once), never not at all.
            if let (Some(transition), Some(sink)) = (health, &self.health_sink) {
                let event = health_event(sink, feed, state, transition, Utc::now());
                if let Err(err) = self
                    .store
                    .put_events(&[event])
                    .with_context(|| format!("storing the health event of feed {}", feed.name))
                {
                    failed(feed, err)?;
                    continue;
                }
                if let Some(wake) = &self.alerts_stored {
                    wake.notify_waiters();
                }
            }
            if let Err(err) = self
                .store
                .put_feed_state(lease.as_ref(), &key, state)
                .with_context(|| format!("saving the state of feed {}", feed.name))
            {
                failed(feed, err)?;
                continue;
            }
            // The transition is stored with the state from here on, so a restart does
            // not count (or tell) it again; the poller has logged it.
            if let Some(transition) = health {
                metrics::global().feed_health_changed(match transition {
                    Transition::Unhealthy { to, .. } => to.as_str(),
                    Transition::Recovered { .. } => "ok",
                });
            }
        }
        Ok(())
    }

    /// The serial part: groups a feed's analysed items into stories and writes them
    /// with their alerts in one transaction, then the new stories' sketches. The flush
    /// and the feed's new state are left to [`Processor::commit`].
    fn write(&mut self, analyzed: Analyzed) -> anyhow::Result<Written> {
        let Analyzed {
            feed,
            state,
            outcome,
            items,
            changed,
            as_of,
            lease,
            health,
        } = analyzed;
        let key = feed.url.to_string();
        self.summary.feeds_polled += 1;
        match outcome {
            PollOutcome::Failed { .. } | PollOutcome::Gone => self.summary.feeds_failed += 1,
            PollOutcome::NotModified => self.summary.feeds_not_modified += 1,
            PollOutcome::Fetched { .. } => {}
        }

        let now = Utc::now();
        self.stories.expire(now);
        self.pending.clear();
        self.write_unwritten_sketches(now);
        let mut batch: Vec<StoredItem> = Vec::new();
        let mut alerts: Vec<StoredAlert> = Vec::new();
        for item in items {
            // Seen by the analysis, but an earlier feed stored since may have carried
            // the same item (ids from URLs are not feed-scoped).
            let stored_since = match self.recent.stored_since(as_of, &item.id) {
                Some(stored) => stored,
                None => self
                    .store
                    .seen(&item.id)
                    .context("reading the seen index")?,
            };
            if stored_since {
                continue;
            }
            let AnalyzedItem {
                id,
                link,
                published,
                processed,
                fingerprint,
                sketch,
            } = item;
            let (story, is_story_lead) = self.story_of(&id, fingerprint, sketch, now)?;
            let Processed {
                article, findings, ..
            } = processed;
            if !findings.topics.is_empty() {
                self.summary.items_matched += 1;
                tracing::info!(
                    feed = %feed.name,
                    title = %article.title,
                    topics = %findings.topics.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(","),
                    story_lead = is_story_lead,
                    "Matched an item."
                );
            }
            let stored = StoredItem {
                id,
                feed: key.clone(),
                feed_name: feed.name.clone(),
                title: article.title,
                url: link,
                published,
                fetched: now,
                text: article.body,
                entities: stored_entities(&findings),
                topics: stored_topics(&findings),
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
        let changed = self.changed_items(changed, now)?;
        if !batch.is_empty() || !changed.is_empty() {
            let sketches: Vec<(&str, &[u32])> = self
                .pending
                .iter()
                .map(|lead| (lead.item.as_str(), lead.sketch.as_slice()))
                .collect();
            let Inserted {
                new,
                leads,
                sketches,
            } = self
                .store
                .write_batch(
                    lease.as_ref(),
                    &Batch {
                        items: &batch,
                        alerts: &alerts,
                        sketches: &sketches,
                        rules: &self.rules,
                        changed: &changed,
                    },
                )
                .with_context(|| format!("storing items of feed {}", feed.name))?;
            // The items and alerts are stored: a failed sketch write must not undo
            // that, nor may their copies start stories of their own.
            if let Err(err) = sketches {
                tracing::warn!(
                    feed = %feed.name,
                    error = %err,
                    stories = leads.len(),
                    "Could not store the sketches of new stories; kept in memory and written again before the next feed."
                );
                self.unwritten.extend(leads);
            }
            self.recent
                .stored(batch.iter().map(|item| item.id.clone()).collect());
            self.summary.items_new += new;
            // Counted once stored, so a batch that fails and is fetched again is not
            // counted twice.
            metrics::global().item_stored(new);
            for item in &batch {
                for topic in &item.topics {
                    metrics::global().topic_matched(&topic.id);
                }
            }
            self.summary.stories_new += batch.iter().filter(|i| i.is_story_lead).count();
        }
        Ok(Written {
            feed,
            state,
            alerts: !alerts.is_empty(),
            lease,
            health,
        })
    }

    /// The new versions of changed items, each with the stored one's story and place,
    /// and the `item.updated` events it proposes for every topic with updates and its
    /// sinks (the store keeps those whose topic the story alerted on).
    fn changed_items(
        &self,
        changed: Vec<AnalyzedItem>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<ChangedItem>> {
        let mut out = Vec::new();
        for analyzed in changed {
            let Some(previous) = self
                .store
                .get_item(&analyzed.id)
                .context("reading a stored item")?
            else {
                continue;
            };
            let Processed {
                article, findings, ..
            } = analyzed.processed;
            let item = StoredItem {
                title: article.title,
                url: analyzed.link.or(previous.url.clone()),
                published: analyzed.published.or(previous.published),
                text: article.body,
                entities: stored_entities(&findings),
                topics: stored_topics(&findings),
                fingerprint: analyzed.fingerprint,
                ..previous.clone()
            };
            tracing::info!(item = %item.id, title = %item.title, previous = %previous.title, "An item changed.");
            let events = outbox::item_updated(&item, &previous.title, &self.rules, now);
            out.push(ChangedItem { item, events });
        }
        Ok(out)
    }

    /// Writes the sketches kept since a failed write, dropping those past the window.
    /// A failure here was logged with the first one.
    fn write_unwritten_sketches(&mut self, now: DateTime<Utc>) {
        if self.unwritten.is_empty() {
            return;
        }
        // The same bound as the window's own expiry.
        let window = self.stories.window();
        self.unwritten
            .retain(|lead| now - lead.first_seen <= window);
        if self.unwritten.is_empty() {
            return;
        }
        match self.store.put_sketches(&self.unwritten) {
            Ok(()) => {
                tracing::info!(
                    stories = self.unwritten.len(),
                    "Stored the story sketches kept since a failed write."
                );
                self.unwritten.clear();
            }
            Err(err) => tracing::debug!(error = %err, "Could not store story sketches yet."),
        }
    }

    /// The story an item belongs to: an earlier story whose text it nearly repeats,
    /// or a new one led by this item. Candidates come from the window in memory; their
    /// sketches from this batch's new stories, those kept since a failed write, or
    /// else from the store.
    fn story_of(
        &mut self,
        id: &str,
        fingerprint: u64,
        sketch: Vec<u32>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(String, bool)> {
        let (pending, unwritten, store) = (&self.pending, &self.unwritten, &self.store);
        let found = self
            .stories
            .same_story(fingerprint, &sketch, |candidate, confirm| {
                for lead in pending.iter().filter(|lead| {
                    lead.first_seen == candidate.first_seen
                        && lead.fingerprint == candidate.fingerprint
                }) {
                    confirm(&lead.item, &lead.sketch);
                }
                for lead in unwritten.iter().filter(|lead| {
                    lead.first_seen == candidate.first_seen
                        && lead.fingerprint == candidate.fingerprint
                }) {
                    confirm(&lead.story, &lead.sketch);
                }
                for (story, sketch) in
                    store.story_sketches(candidate.first_seen, candidate.fingerprint)?
                {
                    confirm(&story, &sketch);
                }
                Ok::<(), crate::store::StoreError>(())
            })
            .context("reading story sketches")?;
        if let Some(found) = found {
            return Ok((found.story, false));
        }
        self.stories.insert(fingerprint, now, &sketch, ());
        self.pending.push(Lead {
            item: id.to_string(),
            first_seen: now,
            fingerprint,
            sketch,
        });
        Ok((id.to_string(), true))
    }
}

/// The stories first seen within `window`, from the store, for the story window.
///
/// Each story's sketch comes from the store's sketches, which hold one for every story
/// (one-item stories have no other record). A story stored without one (by an older
/// build, or one whose lead changed) gets it from its lead's text, which the store
/// keeps for the history period, longer than the window, and the sketch is stored for
/// the next start. Without sketches no earlier story could be matched after a restart.
fn recent_stories(store: &dyn Store, window: Duration) -> anyhow::Result<StoryWindow> {
    let mut stories = StoryWindow::new(window, dedup::DEFAULT_MAX_DISTANCE);
    let since =
        Utc::now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::days(7));
    let mut stored = 0usize;
    for lead in store.sketches_since(since) {
        let lead = lead.context("reading story sketches")?;
        stories.insert(lead.fingerprint, lead.first_seen, &lead.sketch, ());
        stored += 1;
    }
    let mut computed = 0usize;
    for story in store.stories_since(since) {
        let story = story.context("reading recent stories")?;
        if store
            .story_sketch(&story)
            .context("reading a story sketch")?
            .is_some()
        {
            continue;
        }
        let sketch = match store.get_item(&story.first_item) {
            Ok(Some(lead)) => dedup::sketch(&dedup::article_shingles(&lead.title, &lead.text)),
            _ => Vec::new(),
        };
        store
            .put_story_sketch(&story, &sketch)
            .context("storing a story sketch")?;
        stories.insert(story.fingerprint, story.first_seen, &sketch, ());
        computed += 1;
    }
    if computed > 0 {
        tracing::info!(
            stories = stored + computed,
            computed,
            "Computed the sketches of stories stored without one."
        );
    }
    Ok(stories)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;
    use std::path::Path;

    /// A processor on `store`; the config's storage path is not opened.
    fn processor(store: &SledStore) -> Processor {
        let text = "[storage]\npath = \"unused\"\n";
        let config = config::parse_str(text, Path::new("test.toml")).unwrap();
        Processor::new(&config, Arc::new(store.clone())).unwrap()
    }

    /// A text of 60 words; `edit` changes one of them.
    fn text(n: usize, edit: bool) -> String {
        let text: String = (0..60).map(|i| format!("w{n}x{i} ")).collect();
        if edit {
            text.replacen(&format!("w{n}x7 "), "changed ", 1)
        } else {
            text
        }
    }

    /// [`Processor::story_of`] for a text's shingles.
    fn story_of(
        processor: &mut Processor,
        id: &str,
        shingles: &[u64],
        now: DateTime<Utc>,
    ) -> anyhow::Result<(String, bool)> {
        let (fingerprint, sketch) = (dedup::simhash(shingles), dedup::sketch(shingles));
        processor.story_of(id, fingerprint, sketch, now)
    }

    fn shingles(n: usize, edit: bool) -> Vec<u64> {
        dedup::article_shingles(&format!("Title {n}"), &text(n, edit))
    }

    fn lead(id: &str, n: usize, fetched: DateTime<Utc>) -> StoredItem {
        StoredItem {
            id: id.into(),
            feed: "https://example.org/rss.xml".into(),
            feed_name: "Example".into(),
            title: format!("Title {n}"),
            url: None,
            published: None,
            fetched,
            text: text(n, false),
            entities: Vec::new(),
            topics: Vec::new(),
            story: id.into(),
            is_story_lead: true,
            fingerprint: dedup::simhash(&shingles(n, false)),
        }
    }

    #[test]
    fn copies_find_their_story_in_the_batch_and_then_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let mut fresh = processor(&store);
        let now = Utc::now();
        assert_eq!(
            story_of(&mut fresh, "a", &shingles(1, false), now).unwrap(),
            ("a".to_string(), true)
        );
        assert_eq!(
            story_of(&mut fresh, "b", &shingles(2, false), now).unwrap(),
            ("b".to_string(), true)
        );
        // Not stored yet: the sketch comes from the batch's new stories.
        assert_eq!(
            story_of(&mut fresh, "a2", &shingles(1, true), now).unwrap(),
            ("a".to_string(), false)
        );
        let sketches: Vec<(&str, &[u32])> = fresh
            .pending
            .iter()
            .map(|l| (l.item.as_str(), l.sketch.as_slice()))
            .collect();
        store
            .insert_batch(&[lead("a", 1, now), lead("b", 2, now)], &[], &sketches)
            .unwrap();
        fresh.pending.clear();
        // Stored: from the store.
        assert_eq!(
            story_of(&mut fresh, "b2", &shingles(2, true), now).unwrap(),
            ("b".to_string(), false)
        );
        // And after a restart, from the store again.
        let mut restarted = processor(&store);
        assert_eq!(restarted.stories.len(), 2);
        assert_eq!(
            story_of(&mut restarted, "a3", &shingles(1, true), now).unwrap(),
            ("a".to_string(), false)
        );
        assert_eq!(
            story_of(&mut restarted, "c", &shingles(3, false), now).unwrap(),
            ("c".to_string(), true)
        );
    }

    /// A store written before sketches were stored: they are computed from the leads'
    /// texts at start, and stored, so copies still find their stories.
    #[test]
    fn stories_stored_without_sketches_get_them_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let now = Utc::now() - chrono::Duration::hours(1);
        let old = lead("old", 4, now);
        // Older builds wrote a record for every story; a copy makes one here.
        let earlier_copy = StoredItem {
            story: "old".into(),
            is_story_lead: false,
            ..lead("earlier-copy", 4, now)
        };
        store.insert_items(&[old, earlier_copy]).unwrap();
        let story = store.get_story("old").unwrap().unwrap();
        assert_eq!(store.stories_since(now).count(), 1);
        assert_eq!(store.story_sketch(&story).unwrap(), None);
        let mut fresh = processor(&store);
        assert_eq!(
            store.story_sketch(&story).unwrap(),
            Some(dedup::sketch(&shingles(4, false)))
        );
        assert_eq!(
            story_of(&mut fresh, "copy", &shingles(4, true), Utc::now()).unwrap(),
            ("old".to_string(), false)
        );
    }

    /// A feed of one entry per `(guid, title, text)`, as the poller hands it over.
    fn poll(config: &Config, entries: &[(&str, &str, String)]) -> PollResult {
        PollResult {
            feed: config.feeds[0].clone(),
            items: entries
                .iter()
                .map(|(guid, title, text)| crate::parse::FeedItem {
                    id: Some(guid.to_string()),
                    title: title.to_string(),
                    link: None,
                    published: None,
                    body: text.clone(),
                    encoding: None,
                })
                .collect(),
            state: FeedState::default(),
            outcome: PollOutcome::Fetched {
                items: entries.len(),
                repairs: 0,
            },
            lease: None,
            health: None,
        }
    }

    /// A feed with more new items than [`PARALLEL_FROM_ITEMS`] is analysed over the
    /// cores: its items come out in feed order, each as the pipeline makes it alone, a
    /// guid repeated in the feed is analysed once, and a copy late in the feed still
    /// joins the story of its lead early in it (grouping stays serial).
    #[test]
    fn a_large_feed_is_analysed_over_the_cores_in_feed_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let toml = "[storage]\npath = \"unused\"\n\n[[feeds]]\nname = \"Example\"\nurl = \"https://example.org/rss.xml\"\n";
        let config = config::parse_str(toml, Path::new("test.toml")).unwrap();
        let mut processor = Processor::new(&config, Arc::new(store.clone())).unwrap();
        let guids: Vec<String> = (0..40).map(|n| format!("g{n}")).collect();
        let titles: Vec<String> = (0..40).map(|n| format!("Title {n}")).collect();
        let mut entries: Vec<(&str, &str, String)> = (0..40)
            .map(|n| (guids[n].as_str(), titles[n].as_str(), text(n, false)))
            .collect();
        entries.push(("g5", "Title 5", text(5, false)));
        entries.push(("copy", "Title 3", text(3, true)));
        assert!(entries.len() > 2 * PARALLEL_FROM_ITEMS);
        let analyzed = analyze(
            &processor.pipeline,
            &store,
            &processor.recent.count,
            poll(&config, &entries),
        )
        .unwrap();
        let id = |guid: &str| {
            identity::item_id(Some(guid), None, "", None, "https://example.org/rss.xml")
        };
        let want: Vec<String> = guids
            .iter()
            .map(String::as_str)
            .chain(["copy"])
            .map(id)
            .collect();
        let got: Vec<String> = analyzed.items.iter().map(|i| i.id.clone()).collect();
        assert_eq!(got, want);
        for (item, (_, title, text)) in analyzed
            .items
            .iter()
            .zip(entries.iter().take(40).chain(entries.last()))
        {
            let alone = processor.pipeline.process_item(title, text);
            assert_eq!(item.processed.article.title, alone.article.title);
            assert_eq!(item.processed.findings, alone.findings);
            assert_eq!(item.processed.shingles, alone.shingles);
        }
        processor.write(analyzed).unwrap();
        let lead = store.get_item(&id("g3")).unwrap().unwrap();
        let copy = store.get_item(&id("copy")).unwrap().unwrap();
        assert!(lead.is_story_lead);
        assert_eq!(copy.story, lead.story);
        assert!(!copy.is_story_lead);
    }

    /// The sketch write after the items' transaction fails: the items stay stored,
    /// the feed is not failed, a copy in the next feed still joins the story, and the
    /// sketch is stored once writes work again.
    #[test]
    fn a_story_whose_sketch_could_not_be_stored_still_takes_its_copies() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let toml = "[storage]\npath = \"unused\"\n\n[[feeds]]\nname = \"Example\"\nurl = \"https://example.org/rss.xml\"\n";
        let config = config::parse_str(toml, Path::new("test.toml")).unwrap();
        let mut processor = Processor::new(&config, Arc::new(store.clone())).unwrap();
        let id = |guid: &str| {
            identity::item_id(Some(guid), None, "", None, "https://example.org/rss.xml")
        };
        let write = |processor: &mut Processor, guid: &str, n: usize, edit: bool| {
            let result = poll(&config, &[(guid, &format!("Title {n}"), text(n, edit))]);
            let analyzed =
                analyze(&processor.pipeline, &store, &processor.recent.count, result).unwrap();
            processor.write(analyzed)
        };

        store.fail_sketch_writes(true);
        write(&mut processor, "lead", 1, false).expect("stored although the sketch failed");
        assert_eq!(processor.unwritten.len(), 1);
        let lead = store
            .get_item(&id("lead"))
            .unwrap()
            .expect("the lead is stored");
        assert!(lead.is_story_lead);
        let story = store.get_story(&lead.story).unwrap().unwrap();
        assert_eq!(store.story_sketch(&story).unwrap(), None);

        write(&mut processor, "copy", 1, true).unwrap();
        let copy = store.get_item(&id("copy")).unwrap().unwrap();
        assert_eq!(copy.story, lead.story, "the copy joins the lead's story");
        assert!(!copy.is_story_lead);

        store.fail_sketch_writes(false);
        write(&mut processor, "other", 2, false).unwrap();
        assert!(processor.unwritten.is_empty());
        assert!(store.story_sketch(&story).unwrap().is_some());
        // The other story's sketch was written with its batch as usual.
        let other = store.get_item(&id("other")).unwrap().unwrap();
        let other = store.get_story(&other.story).unwrap().unwrap();
        assert!(store.story_sketch(&other).unwrap().is_some());
    }
    /// Two analyses of the same item made before either is stored (two feeds carrying
    /// one URL with different descriptions, polled together): the first write stores it, the second skips it, both
    /// when the first is among the batches kept in memory and when so many batches came
    /// between that the store is asked instead.
    #[test]
    fn an_item_stored_after_its_analysis_is_not_stored_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let toml = "[storage]\npath = \"unused\"\n\n[[feeds]]\nname = \"Example\"\nurl = \"https://example.org/rss.xml\"\n";
        let config = config::parse_str(toml, Path::new("test.toml")).unwrap();
        for between in [0, RecentWrites::KEPT + 1] {
            let mut processor = Processor::new(&config, Arc::new(store.clone())).unwrap();
            let analysis = |processor: &Processor, guid: &str, n: usize| {
                let result = poll(&config, &[(guid, &format!("Title {n}"), text(n, false))]);
                analyze(&processor.pipeline, &store, &processor.recent.count, result).unwrap()
            };
            let guid = format!("shared-{between}");
            let first = analysis(&processor, &guid, 1000);
            // The second feed's description differs: unchecked, it would start a
            // story of its own for an item it does not store.
            let second = analysis(&processor, &guid, 2000);
            assert_eq!(second.items.len(), 1, "not stored when analysed");
            processor.write(first).unwrap();
            for n in 0..between {
                let other = analysis(&processor, &format!("other-{between}-{n}"), n);
                processor.write(other).unwrap();
            }
            let before = (processor.summary.items_new, processor.summary.stories_new);
            processor.write(second).unwrap();
            assert_eq!(
                (processor.summary.items_new, processor.summary.stories_new),
                before,
                "{between} batches between: the second copy of the item is skipped"
            );
        }
    }

    /// A flush that fails (a full disk) fails every feed written since the last one:
    /// their new states are not saved, so they are fetched again instead of hidden
    /// behind a 304. The next flush that works saves the states.
    #[tokio::test]
    async fn a_failed_flush_fails_its_feeds_and_saves_no_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let toml = "[storage]\npath = \"unused\"\n\n[[feeds]]\nname = \"Example\"\nurl = \"https://example.org/rss.xml\"\n";
        let config = config::parse_str(toml, Path::new("test.toml")).unwrap();
        let mut processor = Processor::new(&config, Arc::new(store.clone())).unwrap();
        let write = |processor: &mut Processor, guid: &str, n: usize| {
            let mut result = poll(&config, &[(guid, &format!("Title {n}"), text(n, false))]);
            result.state.etag = Some(format!("\"v{n}\""));
            let analyzed =
                analyze(&processor.pipeline, &store, &processor.recent.count, result).unwrap();
            let mut unflushed = Unflushed::default();
            unflushed.push(processor.write(analyzed).unwrap());
            unflushed
        };
        let mut unflushed_then = write(&mut processor, "one", 1);

        store.fail_flushes(true);
        let mut failed = Vec::new();
        processor
            .commit(
                &mut unflushed_then,
                &mut |feed: &config::Feed, err: anyhow::Error| {
                    failed.push((feed.name.clone(), err.to_string()));
                    Ok(())
                },
            )
            .await
            .unwrap();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].0, "Example");
        assert!(failed[0].1.contains("flushing the store"), "{failed:?}");
        assert!(
            store.feed_states().unwrap().is_empty(),
            "a state saved before its items are durable could hide them behind a 304"
        );

        // Space is back: the feed, fetched again, is stored and its state saved.
        store.fail_flushes(false);
        let mut unflushed = write(&mut processor, "two", 2);
        let mut failed = Vec::new();
        processor
            .commit(
                &mut unflushed,
                &mut |feed: &config::Feed, err: anyhow::Error| {
                    failed.push((feed.name.clone(), err.to_string()));
                    Ok(())
                },
            )
            .await
            .unwrap();
        assert!(failed.is_empty(), "{failed:?}");
        let states = store.feed_states().unwrap();
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].1.etag.as_deref(), Some("\"v2\""));
    }
}
