//! Alerts: from a stored topic match to a delivered notification.
//!
//! An alert is written to the store's outbox in the same transaction as its item
//! (see [`crate::store`]); [`outbox`] builds those records and [`Dispatcher`]
//! delivers them. Delivery is at-least-once: an attempt is recorded
//! after the sink answered, so a crash in between sends the alert again after the
//! restart, with the same id and body, and receivers deduplicate on the id.
//!
//! One worker per sink takes its due alerts in order and sends them one message at a
//! time, then sleeps until the next alert is due or the daemon stores a new one.
//! Outcomes follow [`retry`]: 2xx is delivered, a permanent failure or too many
//! attempts or too old is `failed` (and can be replayed with `newswatch alerts
//! --retry`), anything else is retried with backoff.
//!
//! Two per-sink settings shape the messages:
//!
//! - `rate_limit` ([`RateLimit`]): messages to the sink start at least `period / count`
//!   apart ([`Pacer`]); the worker sleeps in between, and a shutdown cuts the sleep.
//! - `digest` (a window): instead of one message per alert, the worker waits until the
//!   oldest due alert is that old, or [`DIGEST_CAP`] alerts are due, and sends them all
//!   as one message ([`sinks::SinkClient::send_digest`]); the outcome applies to every
//!   alert in it. `newswatch once` does not wait out the window: whatever is due at the
//!   end of the run goes out as one digest (or several, [`DIGEST_CAP`] alerts each).

pub mod outbox;
pub mod retry;
pub mod sinks;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use xxhash_rust::xxh3::xxh3_64;

use crate::config::{Config, RateLimit, Sink};
use crate::model::payload::AlertPayload;
use crate::store::{Attempt, SharedStore, StoreError, StoredAlert};
use retry::{Backoff, DeliveryError};
use sinks::{SinkClient, SinkError};

/// Alerts taken from the outbox per pass of a worker.
const BATCH: usize = 100;
/// Most alerts one digest carries. A digest that reaches it is sent without waiting out
/// its window, and a backlog goes out as several digests of this size.
pub const DIGEST_CAP: usize = 50;
/// Longest a worker sleeps without looking at the outbox again.
const IDLE_CHECK: Duration = Duration::from_secs(30);

/// Why the dispatcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("building the HTTP client for alerts: {0}")]
    Client(#[source] reqwest::Error),
    #[error("sink {sink:?}: {refused}")]
    Refused {
        sink: String,
        refused: crate::net::Refused,
    },
}

/// What one delivery pass did, counted in alerts (a digest counts each of its alerts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

impl Delivered {
    fn count(&mut self, outcome: &Attempt) {
        match outcome {
            Attempt::Delivered { .. } => self.delivered += 1,
            Attempt::Retry { .. } => self.retrying += 1,
            Attempt::Failed { .. } => self.failed += 1,
        }
    }

    fn add(&mut self, other: Delivered) {
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.failed += other.failed;
    }
}

// ---------------------------------------------------------------------------------
// Rate limits
// ---------------------------------------------------------------------------------

/// Counts one delivery attempt in the metrics.
fn record_delivery(sink: &str, created: DateTime<Utc>, outcome: &Attempt) {
    let delivered = match outcome {
        Attempt::Delivered { at } => Some(*at),
        _ => None,
    };
    crate::metrics::global().delivery(sink, created, outcome.label(), delivered);
}

/// Spaces one sink's messages by its rate limit. Pure arithmetic on instants: the
/// worker asks how long to wait, sleeps, and records each send.
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    spacing: Option<Duration>,
    last: Option<Instant>,
}

impl Pacer {
    pub fn new(limit: Option<RateLimit>) -> Pacer {
        Pacer {
            spacing: limit.map(|l| l.spacing()),
            last: None,
        }
    }

    /// How long to wait at `now` before the next message may start; zero without a
    /// limit, for the first message, and once the spacing has passed.
    pub fn wait(&self, now: Instant) -> Duration {
        match (self.spacing, self.last) {
            (Some(spacing), Some(last)) => (last + spacing).saturating_duration_since(now),
            _ => Duration::ZERO,
        }
    }

    /// Records a message started at `at`.
    pub fn sent(&mut self, at: Instant) {
        self.last = Some(self.last.map_or(at, |last| last.max(at)));
    }

    /// Sleeps until the next message may start and records it as started; false when
    /// `shutdown` came first (nothing is recorded then).
    async fn ready(&mut self, shutdown: Option<&CancellationToken>) -> bool {
        let wait = self.wait(Instant::now());
        if !wait.is_zero() {
            match shutdown {
                Some(token) => tokio::select! {
                    _ = token.cancelled() => return false,
                    _ = tokio::time::sleep(wait) => {}
                },
                None => tokio::time::sleep(wait).await,
            }
        }
        self.sent(Instant::now());
        true
    }
}

// ---------------------------------------------------------------------------------
// Digests
// ---------------------------------------------------------------------------------

/// Whether the due alerts of a digest sink go out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestState {
    /// Nothing is due.
    Empty,
    /// The oldest due alert is `window` old, or `cap` alerts are due: send them.
    Ready,
    /// Hold them until then (or until more alerts fill the digest).
    WaitUntil(DateTime<Utc>),
}

/// Decides from the creation times of the due alerts. The window runs from when the
/// oldest alert was raised, so alerts that waited through a restart or a retry go out
/// at once.
pub fn digest_state(
    created: &[DateTime<Utc>],
    window: Duration,
    cap: usize,
    now: DateTime<Utc>,
) -> DigestState {
    let Some(oldest) = created.iter().min() else {
        return DigestState::Empty;
    };
    if created.len() >= cap {
        return DigestState::Ready;
    }
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    match oldest.checked_add_signed(window) {
        Some(ready) if ready > now => DigestState::WaitUntil(ready),
        Some(_) => DigestState::Ready,
        // Beyond the calendar: never by age, only by the cap.
        None => DigestState::WaitUntil(DateTime::<Utc>::MAX_UTC),
    }
}

// ---------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------

/// What becomes of `alert` after a message carrying it got `result` at `now`.
///
/// `attempt` (from 1) and `jitter_seed` choose the backoff: for a single alert its own
/// attempt and a hash of its id; for a digest one value for all its alerts, so that
/// they are retried together. Whether to give up is decided per alert, on its own
/// attempts and age.
fn outcome(
    sink: &Sink,
    backoff: &Backoff,
    alert: &StoredAlert,
    result: &Result<(), DeliveryError>,
    now: DateTime<Utc>,
    attempt: u32,
    jitter_seed: u64,
) -> Attempt {
    let err = match result {
        Ok(()) => return Attempt::Delivered { at: now },
        Err(err) => err,
    };
    let attempts = alert.attempts + 1;
    let too_old = (now - alert.created).to_std().unwrap_or(Duration::ZERO) > sink.max_age;
    if err.is_permanent() || attempts >= sink.max_attempts || too_old {
        let error = if err.is_permanent() {
            err.to_string()
        } else if too_old {
            format!("gave up: older than max_age after {attempts} attempts: {err}")
        } else {
            format!("gave up after {attempts} attempts: {err}")
        };
        return Attempt::Failed { error };
    }
    let delay = backoff.next_delay(attempt, jitter_seed, err);
    Attempt::Retry {
        next: now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1)),
        error: err.to_string(),
    }
}

// ---------------------------------------------------------------------------------
// The dispatcher
// ---------------------------------------------------------------------------------

/// Delivers the outbox's alerts to their sinks.
pub struct Dispatcher {
    store: SharedStore,
    workers: Vec<Worker>,
    http: reqwest::Client,
    wake: Arc<Notify>,
}

/// One sink's settings and client.
struct Worker {
    sink: Sink,
    client: SinkClient,
    backoff: Backoff,
}

impl Worker {
    /// Alerts read from the outbox per pass: one digest's worth for a digest sink.
    fn batch(&self) -> usize {
        if self.sink.digest.is_some() {
            DIGEST_CAP
        } else {
            BATCH
        }
    }
}

impl Dispatcher {
    /// Sets up every configured sink; a sink whose secret is missing is an error, so
    /// the daemon refuses to start rather than sending unsigned alerts.
    pub fn new(config: &Config, store: SharedStore) -> Result<Dispatcher, DispatchError> {
        let mut workers = Vec::new();
        for sink in &config.sinks {
            // A sink's URL naming an IP address is checked here, once: sinks follow
            // no redirects, and names are checked by the resolver on each connection.
            if let Some(url) = &sink.url {
                config
                    .alert
                    .check_url(url)
                    .map_err(|refused| DispatchError::Refused {
                        sink: sink.id.clone(),
                        refused,
                    })?;
            }
            let secrets = sinks::load_secret(sink)?;
            workers.push(Worker {
                sink: sink.clone(),
                client: SinkClient::new(sink, secrets)?,
                backoff: Backoff::new(sink.retry_base, sink.retry_max),
            });
        }
        let http = reqwest::Client::builder()
            .user_agent(config.poller.user_agent.clone())
            .timeout(config.poller.timeout)
            // A redirected POST becomes a GET without a body; a 200 for that is no
            // delivery, so a 3xx is answered like any other failure and retried.
            .redirect(reqwest::redirect::Policy::none())
            // The same address policy as the poller's, with `[alert]`'s settings.
            .dns_resolver(std::sync::Arc::new(crate::net::GuardedResolver::new(
                config.alert.clone(),
            )))
            .build()
            .map_err(DispatchError::Client)?;
        Ok(Dispatcher {
            store,
            workers,
            http,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Wakes the workers: call after storing new alerts.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// One pass for `once`: every alert due now is attempted once, the sinks side by
    /// side. A rate-limited sink is paced (the run takes as long as its limit needs);
    /// a digest sink sends what is due as one digest without waiting out its window.
    pub async fn deliver_due(&self) -> Result<Delivered, StoreError> {
        let passes = self
            .workers
            .iter()
            .map(|worker| self.deliver_due_to(worker));
        let mut total = Delivered::default();
        let mut first_error = None;
        for result in futures_util::future::join_all(passes).await {
            match result {
                Ok(counts) => total.add(counts),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        // Flushed even after an error, so the attempts that were recorded stay recorded.
        self.store.flush().await?;
        match first_error {
            Some(err) => Err(err),
            None => Ok(total),
        }
    }

    async fn deliver_due_to(&self, worker: &Worker) -> Result<Delivered, StoreError> {
        let mut counts = Delivered::default();
        let mut pacer = Pacer::new(worker.sink.rate_limit);
        let batch = worker.batch();
        loop {
            let due = self.store.due_alerts(&worker.sink.id, Utc::now(), batch)?;
            if due.is_empty() {
                break;
            }
            let full = due.len() == batch;
            if worker.sink.digest.is_some() {
                pacer.ready(None).await;
                self.attempt_digest(worker, due, &mut counts).await?;
            } else {
                for alert in due {
                    pacer.ready(None).await;
                    self.attempt(worker, alert, &mut counts).await?;
                }
            }
            if !full {
                break;
            }
        }
        Ok(counts)
    }

    /// The daemon's delivery loop: one task per sink until `shutdown`. Without sinks
    /// it waits for `shutdown` too: the daemon takes a stage that ends on its own for a
    /// failure and stops.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        if self.workers.is_empty() {
            shutdown.cancelled().await;
            return;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..self.workers.len() {
            let me = self.clone();
            let stop = shutdown.clone();
            tasks.spawn(async move { me.work(index, stop).await });
        }
        while let Some(joined) = tasks.join_next().await {
            if let Err(err) = joined {
                tracing::error!(error = %err, "An alert worker failed.");
            }
        }
    }

    async fn work(&self, index: usize, shutdown: CancellationToken) {
        let worker = &self.workers[index];
        let sink = worker.sink.id.as_str();
        let batch = worker.batch();
        let mut pacer = Pacer::new(worker.sink.rate_limit);
        let mut counts = Delivered::default();
        loop {
            // Armed before looking at the outbox, so an alert stored while this pass
            // runs still wakes the sleep below.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            let due = match self.store.due_alerts(sink, Utc::now(), batch) {
                Ok(due) => due,
                Err(err) => {
                    tracing::error!(sink, error = %err, "Cannot read the outbox.");
                    Vec::new()
                }
            };
            let full = due.len() == batch;
            // A digest held back until its window ends.
            let mut hold_until = None;
            match worker.sink.digest {
                None => {
                    for alert in due {
                        // An abandoned delivery stays pending and is sent after the restart.
                        if shutdown.is_cancelled() || !pacer.ready(Some(&shutdown)).await {
                            break;
                        }
                        let attempt = tokio::select! {
                            _ = shutdown.cancelled() => break,
                            result = self.attempt(worker, alert, &mut counts) => result,
                        };
                        if let Err(err) = attempt {
                            tracing::error!(sink, error = %err, "Cannot record a delivery.");
                        }
                    }
                }
                Some(window) => {
                    let created: Vec<DateTime<Utc>> = due.iter().map(|a| a.created).collect();
                    match digest_state(&created, window, batch, Utc::now()) {
                        DigestState::Empty => {}
                        DigestState::WaitUntil(at) => hold_until = Some(at),
                        DigestState::Ready => {
                            if pacer.ready(Some(&shutdown)).await {
                                let attempt = tokio::select! {
                                    _ = shutdown.cancelled() => Ok(()),
                                    result = self.attempt_digest(worker, due, &mut counts) => result,
                                };
                                if let Err(err) = attempt {
                                    tracing::error!(sink, error = %err, "Cannot record a delivery.");
                                }
                            }
                        }
                    }
                }
            }
            if let Err(err) = self.store.flush().await {
                tracing::error!(sink, error = %err, "Cannot flush the store.");
            }
            if shutdown.is_cancelled() {
                return;
            }
            if full && hold_until.is_none() {
                continue;
            }
            let wake_at = match hold_until {
                // The held alerts are due already; wait for the window, not for them.
                Some(at) => Some(at),
                None => self.store.next_due(sink).ok().flatten(),
            };
            let wait = wake_at
                .map_or(IDLE_CHECK, |at| {
                    (at - Utc::now()).to_std().unwrap_or(Duration::ZERO)
                })
                .min(IDLE_CHECK);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = &mut woken => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Sends one alert and records the outcome.
    async fn attempt(
        &self,
        worker: &Worker,
        alert: StoredAlert,
        counts: &mut Delivered,
    ) -> Result<(), StoreError> {
        let sink = &worker.sink;
        // A shared store's claim on the alert may have run out while earlier alerts of
        // the batch were paced or slow, and another daemon may have it now.
        if !self.store.renew_claim(&alert.id)? {
            tracing::debug!(sink = %sink.id, alert = %alert.id, "Another daemon has this alert now; not sending it.");
            return Ok(());
        }
        let result = worker
            .client
            .send(&self.http, &alert.payload, SystemTime::now())
            .await;
        let attempts = alert.attempts + 1;
        let seed = xxh3_64(alert.id.as_bytes());
        let outcome = outcome(
            sink,
            &worker.backoff,
            &alert,
            &result,
            Utc::now(),
            attempts,
            seed,
        );
        counts.count(&outcome);
        record_delivery(&sink.id, alert.created, &outcome);
        match (&outcome, &result) {
            (Attempt::Delivered { .. }, _) => {
                tracing::info!(sink = %sink.id, alert = %alert.id, topic = %alert.topic, attempts, "Delivered an alert.");
            }
            (Attempt::Failed { error }, _) => {
                tracing::warn!(sink = %sink.id, alert = %alert.id, error = %error, "Alert failed; replay it with `newswatch alerts --retry`.");
            }
            (Attempt::Retry { next, .. }, Err(err)) => {
                let retry_in = (*next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                tracing::info!(sink = %sink.id, alert = %alert.id, error = %err, retry_in = ?retry_in, "Alert not delivered; will retry.");
            }
            (Attempt::Retry { .. }, Ok(())) => {}
        }
        self.store.record_attempt(&alert.id, &outcome)?;
        Ok(())
    }

    /// Sends `alerts` as one digest message and records the outcome for each of them.
    async fn attempt_digest(
        &self,
        worker: &Worker,
        alerts: Vec<StoredAlert>,
        counts: &mut Delivered,
    ) -> Result<(), StoreError> {
        let sink = &worker.sink;
        let mut alerts = alerts;
        let mut kept = Vec::with_capacity(alerts.len());
        for alert in alerts.drain(..) {
            if self.store.renew_claim(&alert.id)? {
                kept.push(alert);
            }
        }
        // Follow-ups are short and about something already sent: they go on their
        // own, not in the digest (docs/webhooks.md, "Digests").
        let (alerts, followups): (Vec<StoredAlert>, Vec<StoredAlert>) = kept
            .into_iter()
            .partition(|a| a.payload.as_alert().is_some());
        for followup in followups {
            self.attempt(worker, followup, counts).await?;
        }
        if alerts.is_empty() {
            return Ok(());
        }
        let payloads: Vec<AlertPayload> = alerts
            .iter()
            .filter_map(|a| a.payload.as_alert().cloned())
            .collect();
        let digest = sinks::digest_id(payloads.iter().map(|p| p.id.as_str()));
        let result = worker
            .client
            .send_digest(&self.http, &digest, &payloads, SystemTime::now())
            .await;
        let now = Utc::now();
        // One backoff for the whole digest, so its alerts come due again together.
        let attempt = alerts.iter().map(|a| a.attempts).max().unwrap_or(0) + 1;
        let seed = xxh3_64(digest.as_bytes());
        let mut retry_in = None;
        let mut this = Delivered::default();
        for alert in &alerts {
            let outcome = outcome(sink, &worker.backoff, alert, &result, now, attempt, seed);
            this.count(&outcome);
            record_delivery(&sink.id, alert.created, &outcome);
            match &outcome {
                Attempt::Failed { error } => {
                    tracing::warn!(sink = %sink.id, digest = %digest, alert = %alert.id, error = %error, "Alert failed; replay it with `newswatch alerts --retry`.");
                }
                Attempt::Retry { next, .. } => {
                    retry_in = Some((*next - now).to_std().unwrap_or(Duration::ZERO));
                }
                Attempt::Delivered { .. } => {}
            }
            self.store.record_attempt(&alert.id, &outcome)?;
        }
        counts.add(this);
        match &result {
            Ok(()) => {
                tracing::info!(sink = %sink.id, digest = %digest, alerts = alerts.len(), attempt, "Delivered a digest.");
            }
            Err(err) if this.retrying > 0 => {
                tracing::info!(sink = %sink.id, digest = %digest, alerts = this.retrying, error = %err, retry_in = ?retry_in.unwrap_or_default(), "Digest not delivered; will retry.");
            }
            Err(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::payload;
    use chrono::TimeZone;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn pacer_spaces_sends() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut pacer = Pacer::new(Some(RateLimit::parse("2/s").unwrap()));
        assert_eq!(pacer.wait(t0), Duration::ZERO, "the first send never waits");
        pacer.sent(t0);
        assert_eq!(pacer.wait(t0), Duration::from_millis(500));
        assert_eq!(pacer.wait(ms(200)), Duration::from_millis(300));
        assert_eq!(pacer.wait(ms(500)), Duration::ZERO);
        assert_eq!(
            pacer.wait(ms(9000)),
            Duration::ZERO,
            "no debt after a pause"
        );
        pacer.sent(ms(9000));
        assert_eq!(pacer.wait(ms(9100)), Duration::from_millis(400));
        // An earlier instant recorded late does not move the last send back.
        pacer.sent(ms(100));
        assert_eq!(pacer.wait(ms(9100)), Duration::from_millis(400));

        let free = Pacer::new(None);
        assert_eq!(free.wait(t0), Duration::ZERO);
        let mut free = free;
        free.sent(t0);
        assert_eq!(free.wait(t0), Duration::ZERO);
    }

    /// Simulates a worker with messages becoming ready at `ready` (ms), each taking
    /// `busy` ms to send, and returns when each message started, in nanoseconds.
    fn simulate(limit: &str, ready: &[u64], busy: u64) -> Vec<u64> {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(Some(RateLimit::parse(limit).unwrap()));
        let mut free_at = 0;
        let mut starts = Vec::new();
        for &r in ready {
            let now = (r * 1_000_000).max(free_at);
            let wait = pacer.wait(t0 + Duration::from_nanos(now)).as_nanos() as u64;
            let start = now + wait;
            pacer.sent(t0 + Duration::from_nanos(start));
            starts.push(start);
            free_at = start + busy * 1_000_000;
        }
        starts
    }

    #[test]
    fn no_window_holds_more_than_the_limit() {
        let ms = |starts: Vec<u64>| starts.iter().map(|s| s / 1_000_000).collect::<Vec<_>>();
        // A burst of 10 at once, then a lull, then 3 more.
        let ready = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20_000, 20_001, 20_002];
        let starts = ms(simulate("3/s", &ready, 10));
        assert_eq!(
            &starts[..4],
            &[0, 333, 666, 1000],
            "a burst goes out evenly spaced"
        );
        assert_eq!(&starts[10..], &[20_000, 20_333, 20_666]);
        for limit in ["3/s", "7/s", "30/min", "1/90s"] {
            let rate = RateLimit::parse(limit).unwrap();
            let per = rate.per.as_nanos() as u64;
            let starts = simulate(limit, &ready, 10);
            for (i, &start) in starts.iter().enumerate() {
                let in_window = starts[i..].iter().filter(|&&s| s < start + per).count();
                assert!(
                    in_window <= rate.count as usize,
                    "{limit}: {in_window} sends in the window from {start} ns"
                );
            }
        }
        // A slow receiver already spaces the sends: the limit adds no wait.
        assert_eq!(ms(simulate("2/s", &[0, 0, 0], 700)), [0, 700, 1400]);
    }

    #[test]
    fn digest_waits_for_window_or_cap() {
        let t = |s: i64| Utc.timestamp_opt(1_741_946_400 + s, 0).unwrap();
        let window = S(60);
        assert_eq!(digest_state(&[], window, 3, t(0)), DigestState::Empty);
        // The window runs from the oldest alert, whatever order they come in.
        assert_eq!(
            digest_state(&[t(10), t(5)], window, 3, t(20)),
            DigestState::WaitUntil(t(65))
        );
        assert_eq!(
            digest_state(&[t(10), t(5)], window, 3, t(65)),
            DigestState::Ready
        );
        assert_eq!(
            digest_state(&[t(10), t(5)], window, 3, t(1000)),
            DigestState::Ready
        );
        // A full digest goes at once.
        assert_eq!(
            digest_state(&[t(10), t(11), t(12)], window, 3, t(12)),
            DigestState::Ready
        );
        // An alert older than the window (a restart, a retry) goes at once.
        assert_eq!(
            digest_state(&[t(-500)], window, 3, t(0)),
            DigestState::Ready
        );
        assert!(matches!(
            digest_state(&[t(0)], Duration::MAX, 3, t(0)),
            DigestState::WaitUntil(_)
        ));
    }

    fn sink(max_attempts: u32) -> Sink {
        let toml = format!("[[sinks]]\nid = \"ops\"\nkind = \"log\"\nmax_attempts = {max_attempts}\nmax_age = \"1h\"\n");
        crate::config::parse_str(&toml, std::path::Path::new("test.toml"))
            .unwrap()
            .sinks[0]
            .clone()
    }

    fn stored(id: &str, attempts: u32, created: DateTime<Utc>) -> StoredAlert {
        let payload = AlertPayload {
            kind: payload::ALERT_TYPE.into(),
            version: payload::ALERT_VERSION,
            event: "story.new".into(),
            id: id.into(),
            topic: payload::TopicRef {
                id: "t".into(),
                name: "T".into(),
            },
            item: payload::ItemRef {
                id: "i".into(),
                feed: "f".into(),
                title: "x".into(),
                url: None,
                published: None,
                summary: String::new(),
            },
            entities: vec![],
            matched: vec![],
            score: 1.0,
            story: payload::StoryRef {
                id: "s".into(),
                related: vec![],
            },
            detected_at: created,
        };
        StoredAlert {
            id: id.into(),
            sink: "ops".into(),
            topic: "t".into(),
            item_id: "i".into(),
            story: "s".into(),
            created,
            status: crate::store::AlertStatus::Pending,
            attempts,
            next_attempt: created,
            last_error: None,
            delivered_at: None,
            payload: payload::Payload::Alert(payload),
        }
    }

    #[test]
    fn a_digest_outcome_applies_to_each_alert() {
        let now = Utc.timestamp_opt(1_741_946_400, 0).unwrap();
        let sink = sink(3);
        let backoff = Backoff::new(S(5), S(60));
        let alerts = [
            stored("a", 0, now),
            stored("b", 1, now),
            // Its last attempt: a retriable failure fails it.
            stored("c", 2, now),
            // Older than max_age.
            stored("d", 0, now - chrono::Duration::hours(2)),
        ];
        let retriable: Result<(), DeliveryError> = Err(DeliveryError::Retriable {
            reason: "busy".into(),
            retry_after: None,
        });
        let outcomes: Vec<Attempt> = alerts
            .iter()
            .map(|a| outcome(&sink, &backoff, a, &retriable, now, 3, 7))
            .collect();
        let next = match &outcomes[0] {
            Attempt::Retry { next, error } => {
                assert_eq!(error, "busy");
                *next
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            next,
            now + chrono::Duration::from_std(backoff.delay(3, 7)).unwrap()
        );
        assert_eq!(
            outcomes[1],
            Attempt::Retry {
                next,
                error: "busy".into()
            },
            "retried together"
        );
        assert!(
            matches!(&outcomes[2], Attempt::Failed { error } if error.starts_with("gave up after 3 attempts"))
        );
        assert!(matches!(&outcomes[3], Attempt::Failed { error } if error.contains("max_age")));

        let permanent: Result<(), DeliveryError> = Err(DeliveryError::Permanent {
            reason: "400".into(),
        });
        for a in &alerts {
            assert!(matches!(
                outcome(&sink, &backoff, a, &permanent, now, 1, 7),
                Attempt::Failed { .. }
            ));
            assert_eq!(
                outcome(&sink, &backoff, a, &Ok(()), now, 1, 7),
                Attempt::Delivered { at: now }
            );
        }
    }
}
