//! Alerts: from a stored topic match to a delivered notification.
//!
//! An alert is written to the store's outbox in the same transaction as its item
//! (see [`crate::store`]); [`outbox`] builds those records and [`Dispatcher`]
//! delivers them. Delivery is at-least-once: an attempt is recorded
//! after the sink answered, so a crash in between sends the alert again after the
//! restart, with the same id and body, and receivers deduplicate on the id.
//!
//! One worker per sink takes its due alerts in order, one at a time (which keeps a
//! sink's rate limit simple and its receiver unflooded), and sleeps until the next
//! alert is due or the daemon stores a new one. Outcomes follow [`retry`]: 2xx is
//! delivered, a permanent failure or too many attempts or too old is `failed` (and can
//! be replayed with `newswatch alerts --retry`), anything else is retried with backoff.

pub mod outbox;
pub mod payload;
pub mod retry;
pub mod sinks;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use xxhash_rust::xxh3::xxh3_64;

use crate::config::{Config, Sink};
use crate::store::{Attempt, Store, StoreError, StoredAlert};
use retry::Backoff;
use sinks::{SinkClient, SinkError};

/// Alerts taken from the outbox per pass of a worker.
const BATCH: usize = 100;
/// Longest a worker sleeps without looking at the outbox again.
const IDLE_CHECK: Duration = Duration::from_secs(30);

/// Why the dispatcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("building the HTTP client for alerts: {0}")]
    Client(#[source] reqwest::Error),
}

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Delivers the outbox's alerts to their sinks.
pub struct Dispatcher {
    store: Store,
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

impl Dispatcher {
    /// Sets up every configured sink; a sink whose secret is missing is an error, so
    /// the daemon refuses to start rather than sending unsigned alerts.
    pub fn new(config: &Config, store: Store) -> Result<Dispatcher, DispatchError> {
        let mut workers = Vec::new();
        for sink in &config.sinks {
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

    /// One pass for `once`: every alert due now is attempted once.
    pub async fn deliver_due(&self) -> Result<Delivered, StoreError> {
        let mut total = Delivered::default();
        for worker in &self.workers {
            loop {
                let due = self.store.due_alerts(&worker.sink.id, Utc::now(), BATCH)?;
                let full = due.len() == BATCH;
                for alert in due {
                    self.attempt(worker, alert, &mut total).await?;
                }
                if !full {
                    break;
                }
            }
        }
        self.store.flush().await?;
        Ok(total)
    }

    /// The daemon's delivery loop: one task per sink until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
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
        let mut counts = Delivered::default();
        loop {
            // Armed before looking at the outbox, so an alert stored while this pass
            // runs still wakes the sleep below.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            let due = match self.store.due_alerts(sink, Utc::now(), BATCH) {
                Ok(due) => due,
                Err(err) => {
                    tracing::error!(sink, error = %err, "Cannot read the outbox.");
                    Vec::new()
                }
            };
            let full = due.len() == BATCH;
            for alert in due {
                if shutdown.is_cancelled() {
                    break;
                }
                let attempt = tokio::select! {
                    // An abandoned delivery stays pending and is sent after the restart.
                    _ = shutdown.cancelled() => break,
                    result = self.attempt(worker, alert, &mut counts) => result,
                };
                if let Err(err) = attempt {
                    tracing::error!(sink, error = %err, "Cannot record a delivery.");
                }
            }
            if let Err(err) = self.store.flush().await {
                tracing::error!(sink, error = %err, "Cannot flush the store.");
            }
            if shutdown.is_cancelled() {
                return;
            }
            if full {
                continue;
            }
            let wait = match self.store.next_due(sink) {
                Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or(Duration::ZERO),
                _ => IDLE_CHECK,
            }
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
        let result = worker
            .client
            .send(&self.http, &alert.payload, SystemTime::now())
            .await;
        let now = Utc::now();
        let attempts = alert.attempts + 1;
        let too_old = (now - alert.created).to_std().unwrap_or(Duration::ZERO) > sink.max_age;
        let outcome = match result {
            Ok(()) => {
                counts.delivered += 1;
                tracing::info!(sink = %sink.id, alert = %alert.id, topic = %alert.topic, attempts, "Delivered an alert.");
                Attempt::Delivered { at: now }
            }
            Err(err) if err.is_permanent() || attempts >= sink.max_attempts || too_old => {
                counts.failed += 1;
                let why = if err.is_permanent() {
                    err.to_string()
                } else if too_old {
                    format!("gave up: older than max_age after {attempts} attempts: {err}")
                } else {
                    format!("gave up after {attempts} attempts: {err}")
                };
                tracing::warn!(sink = %sink.id, alert = %alert.id, error = %why, "Alert failed; replay it with `newswatch alerts --retry`.");
                Attempt::Failed { error: why }
            }
            Err(err) => {
                counts.retrying += 1;
                let delay = worker
                    .backoff
                    .next_delay(attempts, xxh3_64(alert.id.as_bytes()), &err);
                let next =
                    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
                tracing::info!(sink = %sink.id, alert = %alert.id, error = %err, retry_in = ?delay, "Alert not delivered; will retry.");
                Attempt::Retry {
                    next,
                    error: err.to_string(),
                }
            }
        };
        self.store.record_attempt(&alert.id, &outcome)?;
        Ok(())
    }
}
