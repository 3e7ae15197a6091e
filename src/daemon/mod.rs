//! The daemon: wires poller → pipeline → store, for `newswatch once` and `newswatch run`.
//!
//! One task polls (the poller, bounded by its semaphores) and sends each feed's result
//! over a bounded channel to the processing stages ([`process`]), which store what is
//! new and only then save each feed's new state. Around them this file owns the
//! lifecycle: opening the store, the alert workers, the API, reloads, the status and
//! prune loops, and shutdown.
//!
//! Shutdown follows the sources-first order: cancelling stops the poller scheduling,
//! the channel closes when the poller returns, the processor drains what was already
//! fetched, and the store is flushed last.
//!
//! docs/service.md ("Start", "Reload", "Shutdown") is the contract.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::alert::Dispatcher;
use crate::api::{self, Health};
use crate::backtest;
use crate::config;
use crate::config::Config;
use crate::metrics;
use crate::model::{Entity, Topic};
use crate::poller::Poller;
use crate::poller::Progress;
use crate::service::{self, Notifier, Signal, Signals};
use crate::store::{FeedState, SharedStore, Store};

mod process;
use process::{process_results, Processor};

/// Poll results waiting to be processed; small, so a slow store slows the poller
/// instead of piling fetched bodies up in memory.
const CHANNEL_DEPTH: usize = 16;
/// The topics of a config that ask for a backfill (docs/config.md, `backfill`).
struct Backfills {
    store: SharedStore,
    entities: Vec<Entity>,
    topics: Vec<Topic>,
}

impl Backfills {
    fn of(config: &Config, store: &SharedStore) -> Backfills {
        Backfills {
            store: store.clone(),
            entities: config.entities.clone(),
            topics: config
                .topics
                .iter()
                .filter(|t| t.backfill.is_some())
                .cloned()
                .collect(),
        }
    }

    /// Raises the alerts of each topic whose definition was not backfilled yet (new,
    /// changed, or never backfilled before this start) for its stored items of its
    /// window, once, and flushes them. A failure is logged; the topic is tried again
    /// at the next start or reload, since its record was not written.
    async fn run(self) {
        if self.topics.is_empty() {
            return;
        }
        let store = self.store.clone();
        let done = tokio::task::spawn_blocking(move || {
            let mut wrote = false;
            for topic in &self.topics {
                match backtest::backfill(self.store.as_ref(), &self.entities, topic, Utc::now()) {
                    Ok(backtest::Backfilled::Done { stories, alerts }) => {
                        wrote = true;
                        tracing::info!(
                            topic = %topic.id,
                            window = %humantime::format_duration(topic.backfill.unwrap_or_default()),
                            stories,
                            alerts,
                            "Backfilled a topic over the stored items."
                        );
                    }
                    Ok(backtest::Backfilled::AlreadyDone) => tracing::info!(
                        topic = %topic.id,
                        "This definition of the topic was backfilled before; not again."
                    ),
                    Ok(backtest::Backfilled::NotAsked) => {}
                    Err(err) => tracing::error!(
                        topic = %topic.id,
                        error = %err,
                        "Could not backfill a topic; will try again at the next start or reload."
                    ),
                }
            }
            wrote
        })
        .await;
        match done {
            Ok(true) => {
                if let Err(err) = store.flush().await {
                    tracing::error!(error = %err, "Could not flush the backfilled alerts.");
                }
            }
            Ok(false) => {}
            Err(err) => tracing::error!(error = %err, "The backfill crashed."),
        }
    }
}

/// How often the background pass prunes expired items, and how much it removes at most.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
const PRUNE_BATCH: usize = 5_000;

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

/// Polls every feed once, processes and stores what is new, and returns.
pub async fn once(config: &Config) -> anyhow::Result<Summary> {
    let store = open_store(config).await?;
    // Set up first: a sink without its secret stops the run before anything is polled.
    let dispatcher = Dispatcher::new(config, store.clone()).context("setting up alert sinks")?;
    let mut processor = Processor::new(config, store.clone())?;
    let poller = Poller::new(config)
        .context("setting up the HTTP client")?
        .with_store(store.clone());
    let states = feed_states(store.as_ref())?;
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let feeds = config.feeds.clone();
    let polling = tokio::spawn(async move { poller.poll_once(&feeds, states, tx).await });
    process_results(rx, &mut processor, |_, err| Err(err)).await?;
    polling.await.context("the poller task failed")?;
    Backfills::of(config, &store).run().await;
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

/// What `run` needs from the service around it.
pub struct Service {
    /// Where SIGHUP re-reads the config from.
    pub config_path: PathBuf,
    pub notifier: Notifier,
    pub signals: Signals,
}

/// The daemon: polls, processes, stores and delivers until SIGTERM or SIGINT.
///
/// SIGHUP re-reads the config: when it is valid, the stages are built anew with it
/// and swapped in (the store, the outbox and the feed states carry over, since all of
/// them live in the store); when it is not, every error is logged and the running
/// config stays.
pub async fn run(mut config: Config, mut service: Service) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let health = Health::new();
    health.set_store_open(true);
    let notifier = service.notifier.clone();
    let api_stop = CancellationToken::new();
    // Bound before READY, so a taken port fails the start rather than a later request.
    let mut api = start_api(&config, &store, &health, api_stop.child_token()).await?;
    let mut stages = Stages::start(&config, &store, &health, &notifier)?;
    metrics::global().set_feeds(config.feeds.len());
    tracing::info!(
        feeds = config.feeds.len(),
        topics = config.topics.len(),
        store = %store.location(),
        "Started."
    );
    notifier.ready();
    loop {
        tokio::select! {
            signal = service.signals.next() => match signal {
                Some(Signal::Reload) => {
                    notifier.reloading();
                    match reload(&config, &service.config_path, &store, &health, &notifier) {
                        Ok((new_config, prepared)) => {
                            // One generation at a time: the old one drains and saves
                            // its feed states before the new one loads the story
                            // window and the states from the store, so that no feed
                            // is polled by both and no story of the drain is missing
                            // from the new window (a later copy would alert again).
                            stages.stop().await?;
                            match prepared.spawn(&new_config, &store, &notifier) {
                                Ok(started) => {
                                    stages = started;
                                    api = reload_api(api, &config, &new_config, &store, &health, &api_stop).await;
                                    config = new_config;
                                    metrics::global().set_feeds(config.feeds.len());
                                    tracing::info!(
                                        feeds = config.feeds.len(),
                                        topics = config.topics.len(),
                                        "Reloaded the config."
                                    );
                                }
                                Err(err) => {
                                    // Reading the store failed; the running config's
                                    // stages read the same store, so this usually
                                    // fails too, and then the daemon stops.
                                    tracing::error!(
                                        error = format!("{err:#}"),
                                        "Could not start the new config; starting the running one again."
                                    );
                                    stages = Stages::start(&config, &store, &health, &notifier)
                                        .context("starting the running config again")?;
                                }
                            }
                        }
                        Err(err) => tracing::error!(
                            error = format!("{err:#}"),
                            "Kept the running config; the new one is not usable."
                        ),
                    }
                    notifier.ready();
                }
                Some(Signal::Shutdown) | None => break,
            },
            ended = stages.ended() => {
                tracing::error!("A stage of the daemon ended on its own; stopping.");
                ended?;
                break;
            }
        }
    }
    notifier.stopping();
    tracing::info!("Stopping.");
    stages.stop().await?;
    api_stop.cancel();
    if let Some(running) = api {
        let _ = running.task.await;
    }
    store.flush().await.context("flushing the store")?;
    health.set_store_open(false);
    tracing::info!("Stopped.");
    Ok(())
}

/// Reads and validates the config again, and builds what can fail of the stages for
/// it (sinks, HTTP client, pipeline) without stopping the running ones, so that any
/// failure leaves them untouched.
fn reload(
    running: &Config,
    path: &Path,
    store: &SharedStore,
    health: &Health,
    notifier: &Notifier,
) -> anyhow::Result<(Config, Prepared)> {
    let mut new = config::load(path).map_err(|errors| {
        for err in &errors.0 {
            tracing::error!(error = %err, "Invalid config.");
        }
        anyhow::anyhow!("{} error(s) in {}", errors.0.len(), path.display())
    })?;
    if new.storage.path != running.storage.path {
        tracing::warn!(
            running = %running.storage.path.display(),
            new = %new.storage.path.display(),
            "storage.path changed; the store cannot move while running, restart to use the new path."
        );
        new.storage.path = running.storage.path.clone();
    }
    if let Some(settings) = &new.api {
        // Checked with the rest, so a token file that went missing keeps the running
        // config rather than half-applying the new one.
        api::load_token(settings).context("reading the API token")?;
    }
    let prepared = Stages::prepare(&new, store, health, notifier)?;
    Ok((new, prepared))
}

fn api_listen(config: &Config) -> Option<std::net::SocketAddr> {
    config.api.as_ref().map(|a| a.listen)
}

/// The running API: how to stop it, its task, and its state (for reloads).
struct ApiTask {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    state: api::ApiState,
}

/// Binds and serves the API when the config has one.
async fn start_api(
    config: &Config,
    store: &SharedStore,
    health: &Health,
    stop: CancellationToken,
) -> anyhow::Result<Option<ApiTask>> {
    let Some(settings) = &config.api else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on api.listen {}", settings.listen))?;
    let token = api::load_token(settings).context("reading the API token")?;
    let state = api::ApiState::new(store.clone(), health.clone(), token, api_bound(config));
    state.set_feeds(config.feeds.clone(), config.health.clone());
    state.set_rules(backtest_rules(config));
    let task = tokio::spawn(api::serve(listener, state.clone(), stop.clone()));
    Ok(Some(ApiTask { stop, task, state }))
}

/// What `/api/backtest` runs: the config's entities and topics.
fn backtest_rules(config: &Config) -> api::BacktestRules {
    api::BacktestRules {
        entities: config.entities.clone(),
        topics: config.topics.clone(),
    }
}

fn api_bound(config: &Config) -> Duration {
    api::progress_bound(config.poller.interval.min(PROGRESS_TICK * 60))
}

/// Carries the API over a reload. Same address: the running server takes the new
/// token and health bound. New address (or none): the new one is bound before the
/// old one stops, so a taken port or an unreadable token keeps the old API serving
/// instead of stopping the daemon.
async fn reload_api(
    running: Option<ApiTask>,
    old: &Config,
    new: &Config,
    store: &SharedStore,
    health: &Health,
    api_stop: &CancellationToken,
) -> Option<ApiTask> {
    if api_listen(new) == api_listen(old) {
        if let Some(api) = &running {
            api.state.set_rules(backtest_rules(new));
        }
        if let (Some(api), Some(settings)) = (&running, &new.api) {
            api.state.set_feeds(new.feeds.clone(), new.health.clone());
            match api::load_token(settings) {
                Ok(token) => api.state.update(token, api_bound(new)),
                Err(err) => tracing::error!(
                    error = %err,
                    "Kept the API's token; the new one cannot be read."
                ),
            }
        }
        return running;
    }
    match start_api(new, store, health, api_stop.child_token()).await {
        Ok(started) => {
            if let Some(old_api) = running {
                old_api.stop.cancel();
                let _ = old_api.task.await;
            }
            started
        }
        Err(err) => {
            tracing::error!(
                error = format!("{err:#}"),
                "Kept the API where it was; the new api settings are not usable."
            );
            running
        }
    }
}

/// How often the poll loop reports progress at the least, and so how fresh the
/// watchdog's proof of life is.
const PROGRESS_TICK: Duration = Duration::from_secs(5);
/// How often STATUS= is refreshed, and freed memory returned to the system.
const STATUS_EVERY: Duration = Duration::from_secs(30);

/// One generation of the daemon's stages, built from one config.
struct Stages {
    stop: CancellationToken,
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    /// For giving up this generation's leases when it stops.
    store: SharedStore,
}

/// A generation's stages built from a config but not started: what can fail without
/// reading the store.
struct Prepared {
    dispatcher: Arc<Dispatcher>,
    poller: Poller,
}

impl Stages {
    /// [`Stages::prepare`], then [`Prepared::spawn`].
    fn start(
        config: &Config,
        store: &SharedStore,
        health: &Health,
        notifier: &Notifier,
    ) -> anyhow::Result<Stages> {
        Stages::prepare(config, store, health, notifier)?.spawn(config, store, notifier)
    }

    /// Builds what can fail of a config's stages (sinks, HTTP client) without starting
    /// anything or reading the store.
    fn prepare(
        config: &Config,
        store: &SharedStore,
        health: &Health,
        notifier: &Notifier,
    ) -> anyhow::Result<Prepared> {
        let dispatcher =
            Arc::new(Dispatcher::new(config, store.clone()).context("setting up alert sinks")?);
        let tick = service::watchdog_interval().map_or(PROGRESS_TICK, |w| w.min(PROGRESS_TICK));
        let beat = {
            let health = health.clone();
            let notifier = notifier.clone();
            Arc::new(move || {
                health.progress();
                // Only this loop pings the watchdog: if it stalls, systemd notices.
                notifier.watchdog();
            })
        };
        let poller = Poller::new(config)
            .context("setting up the HTTP client")?
            .with_progress(Progress { tick, beat });
        Ok(Prepared { dispatcher, poller })
    }
}

impl Prepared {
    /// Loads the story window and the feed states from the store, then spawns the
    /// poller, the processor, the alert workers, the pruner and the status reporter.
    fn spawn(
        self,
        config: &Config,
        store: &SharedStore,
        notifier: &Notifier,
    ) -> anyhow::Result<Stages> {
        let Prepared { dispatcher, poller } = self;
        let poller = poller.with_leases(store.clone()).with_store(store.clone());
        let mut processor = Processor::new(config, store.clone())?;
        processor.alerts_stored = Some(dispatcher.waker());
        let states = feed_states(store.as_ref())?;
        let stop = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();

        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let feeds = config.feeds.clone();
        let unstored = poller.unstored();
        let poll_stop = stop.clone();
        tasks.spawn(async move {
            poller.run(feeds, states, tx, poll_stop).await;
            Ok(())
        });
        tasks.spawn(async move {
            // Ends when the poller has stopped and every fetched result is processed.
            // A failed store write is logged, and the feed's validators are dropped so
            // its next poll fetches everything again; other feeds go on.
            process_results(rx, &mut processor, |feed, err| {
                unstored.mark(&feed.url.to_string());
                tracing::error!(
                    feed = %feed.name,
                    error = format!("{err:#}"),
                    "Could not store a feed's items; will fetch them again."
                );
                Ok(())
            })
            .await
        });
        let deliver_stop = stop.clone();
        let backfills = Backfills::of(config, store);
        tasks.spawn(async move {
            // A backfill's alerts are durable before the workers start, so that none
            // is sent and then raised again by a backfill repeated after a crash.
            backfills.run().await;
            // The workers stop at the cancellation; a delivery cut short stays pending.
            dispatcher.run(deliver_stop).await;
            Ok(())
        });
        tasks.spawn(prune_loop(
            store.clone(),
            config.storage.history,
            config.storage.retention,
            stop.clone(),
        ));
        tasks.spawn(status_loop(
            store.clone(),
            config.feeds.len(),
            notifier.clone(),
            stop.clone(),
        ));
        Ok(Stages {
            stop,
            tasks,
            store: store.clone(),
        })
    }
}

impl Stages {
    /// Waits until a stage ends on its own (they only end when stopped, or on a bug).
    async fn ended(&mut self) -> anyhow::Result<()> {
        match self.tasks.join_next().await {
            Some(Ok(result)) => result,
            Some(Err(err)) => Err(anyhow::anyhow!("a daemon task failed: {err}")),
            None => std::future::pending().await,
        }
    }

    /// Stops scheduling, drains what was fetched, and waits for every stage.
    async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::error!(error = format!("{err:#}"), "A stage ended with an error.")
                }
                Err(err) => tracing::error!(error = %err, "A daemon task failed."),
            }
        }
        // Another daemon of a cluster may take this one's feeds and alerts at once,
        // instead of after the leases run out. Polls dropped at shutdown wrote nothing.
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.release_leases()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "Could not give up this daemon's leases; they run out on their own.")
            }
            Err(err) => {
                tracing::warn!(error = %err, "Could not give up this daemon's leases; they run out on their own.")
            }
        }
        Ok(())
    }
}

/// Tells systemd how things stand (STATUS=), now and every [`STATUS_EVERY`], and
/// hands freed memory back to the system as often.
async fn status_loop(
    store: SharedStore,
    feeds: usize,
    notifier: Notifier,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(STATUS_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let items = store.item_count();
        let pending = store.pending_alerts();
        notifier.status(&format!(
            "{feeds} feeds, {items} items, {pending} alerts pending"
        ));
        // It walks every arena under its lock: not on a runtime worker.
        let _ = tokio::task::spawn_blocking(service::release_free_memory).await;
    }
}

/// How long `once` and `run` wait for a store another newswatch process holds: a
/// command such as `items` holds it for a moment, and a daemon started meanwhile (a
/// timer, a restart) should not fail for that.
const STORE_LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// Opens the store, waiting up to [`STORE_LOCK_PATIENCE`] while another process holds
/// it; after that, the lock error says what to do.
async fn open_store(config: &Config) -> anyhow::Result<SharedStore> {
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        let path = config.storage.clone();
        let opened = tokio::task::spawn_blocking(move || crate::store::open(&path))
            .await
            .context("opening the store")?;
        match opened {
            Err(crate::store::StoreError::Locked { .. })
                if started.elapsed() < STORE_LOCK_PATIENCE =>
            {
                if !said {
                    tracing::info!(
                        store = %config.storage.path.display(),
                        patience = ?STORE_LOCK_PATIENCE,
                        "The store is held by another newswatch process; waiting for it."
                    );
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            opened => return opened.map_err(anyhow::Error::from),
        }
    }
}

fn feed_states(store: &dyn Store) -> anyhow::Result<HashMap<String, FeedState>> {
    Ok(store
        .feed_states()
        .context("reading feed states")?
        .into_iter()
        .collect())
}

async fn prune_loop(
    store: SharedStore,
    history: Duration,
    retention: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
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
                            scanned = report.scanned,
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
