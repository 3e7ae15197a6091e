//! The HTTP API behind `api.listen`: health, Prometheus metrics, and read-only JSON
//! views of stored items and alerts.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /healthz` | 200 `{"status":"ok",…}`, or 503 with the reason |
//! | `GET /metrics` | [`crate::metrics`] in the Prometheus text format 0.0.4 |
//! | `GET /api/items?topic=&since=&limit=` | stored items, newest first |
//! | `GET /api/alerts?status=&limit=` | alerts, newest first |
//! | `GET /api/feeds` | every configured feed and its health |
//! | `GET /api/backtest?topic=\|query=&since=&explain=` | what a topic would have alerted on (`newswatch backtest --json`) |
//!
//! `/api/*` answers with the same fields as `newswatch items --json`,
//! `alerts --json` and `feeds --json` ([`crate::view`]). When a token is configured
//! (`api.token_env`), `/api/*` requires `Authorization: Bearer <token>`; `/healthz` and
//! `/metrics` stay open for probes and scrapers: they carry counts and the ids of
//! topics and sinks, never stored items or alerts.
//! A bad query parameter is a 400 whose JSON names it; an unknown one is refused
//! rather than ignored, so a typo does not silently widen a query.
//!
//! The store is read on the blocking pool (sled reads are synchronous), so a large
//! listing never stalls the runtime threads that poll feeds.
//!
//! docs/service.md ("HTTP API") is the contract.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::backtest;
use crate::config::{Api, Feed, Health as HealthRules};
use crate::model::{Entity, Topic};
use crate::pipeline::rules::RuleSet;
use crate::store::{AlertStatus, ItemQuery, Listing, SharedStore};
use crate::view::{alert_json, feed_json, item_json, parse_since};

/// Items or alerts listed when the query gives no `limit`.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit`: a bigger listing belongs to `newswatch items` on the host.
pub const MAX_LIMIT: usize = 1000;
/// The shortest time without poll-loop progress that `/healthz` tolerates, so a short
/// poll interval does not turn a slow store flush into a failed probe.
pub const MIN_PROGRESS_BOUND: Duration = Duration::from_secs(600);
/// How long open connections may finish after shutdown before they are dropped;
/// the daemon must exit within 10 s of SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// `Content-Type` of `/metrics`.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub store: SharedStore,
    pub health: Health,
    /// Shared with the daemon, which replaces it on reload: a rotated token or a new
    /// poll interval takes effect without rebinding the port.
    access: Arc<RwLock<Access>>,
    /// The configured feeds and `[health]` rules that `/api/feeds` and the
    /// `feeds_by_state` metric judge by; replaced on reload.
    feeds: Arc<RwLock<Arc<Feeds>>>,
    /// The running config's entities and topics, for `/api/backtest`; replaced on
    /// reload.
    rules: Arc<RwLock<Arc<BacktestRules>>>,
}

/// What `/api/backtest` runs topics with: the running config's entities and topics.
#[derive(Debug, Clone, Default)]
pub struct BacktestRules {
    pub entities: Vec<Entity>,
    pub topics: Vec<Topic>,
}

/// The configured feeds and the `[health]` rules they are judged by.
type Feeds = (Vec<Feed>, HealthRules);

/// The settings of a running API that a reload may change.
#[derive(Debug, Clone)]
struct Access {
    /// The bearer token guarding `/api/*`; `None` leaves it open.
    token: Option<String>,
    /// The longest the poll loop may go without progress before `/healthz` fails;
    /// see [`progress_bound`].
    progress_bound: Duration,
}

impl ApiState {
    pub fn new(
        store: SharedStore,
        health: Health,
        token: Option<String>,
        progress_bound: Duration,
    ) -> ApiState {
        ApiState {
            store,
            health,
            access: Arc::new(RwLock::new(Access {
                token,
                progress_bound,
            })),
            feeds: Arc::new(RwLock::new(Arc::new((Vec::new(), HealthRules::default())))),
            rules: Arc::default(),
        }
    }

    /// The feeds of the running config and its `[health]` rules (none until set).
    pub fn set_feeds(&self, feeds: Vec<Feed>, rules: HealthRules) {
        *self.feeds.write().unwrap_or_else(|e| e.into_inner()) = Arc::new((feeds, rules));
    }

    fn feeds(&self) -> Arc<Feeds> {
        self.feeds.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the entities and topics `/api/backtest` runs with (at start and reload).
    pub fn set_rules(&self, rules: BacktestRules) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
    }

    fn rules(&self) -> Arc<BacktestRules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies a reloaded config's token and bound to the running API.
    pub fn update(&self, token: Option<String>, progress_bound: Duration) {
        let mut access = self.access.write().unwrap_or_else(|e| e.into_inner());
        *access = Access {
            token,
            progress_bound,
        };
    }

    fn access(&self) -> Access {
        // Held only to copy or replace two fields, so a poisoned lock still holds
        // consistent values.
        self.access
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The `/healthz` bound for a poll interval: three intervals (the poll loop reports
/// progress at least once per interval when it is alive), but never under
/// [`MIN_PROGRESS_BOUND`].
pub fn progress_bound(poll_interval: Duration) -> Duration {
    poll_interval.saturating_mul(3).max(MIN_PROGRESS_BOUND)
}

/// What the daemon tells `/healthz`: whether the store is open and when the poll loop
/// last made progress. Cloning is cheap; every clone is the same handle.
#[derive(Debug, Clone)]
pub struct Health(Arc<HealthInner>);

#[derive(Debug)]
struct HealthInner {
    store_open: AtomicBool,
    /// Milliseconds since the Unix epoch.
    last_progress: AtomicI64,
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

impl Health {
    /// The store not (yet) open, and progress "now": a daemon that just started has
    /// its whole bound to make its first progress.
    pub fn new() -> Health {
        Health(Arc::new(HealthInner {
            store_open: AtomicBool::new(false),
            last_progress: AtomicI64::new(Utc::now().timestamp_millis()),
        }))
    }

    pub fn set_store_open(&self, open: bool) {
        self.0.store_open.store(open, Relaxed);
    }

    /// The poll loop made progress now.
    pub fn progress(&self) {
        self.progress_at(Utc::now());
    }

    pub fn progress_at(&self, at: DateTime<Utc>) {
        self.0.last_progress.store(at.timestamp_millis(), Relaxed);
    }

    pub fn store_open(&self) -> bool {
        self.0.store_open.load(Relaxed)
    }

    pub fn last_progress(&self) -> DateTime<Utc> {
        // Only ever set from a DateTime, so it is always in range.
        DateTime::from_timestamp_millis(self.0.last_progress.load(Relaxed))
            .unwrap_or(DateTime::UNIX_EPOCH)
    }
}

/// Why the bearer token could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("api.token_env: neither environment variable {variable} nor a systemd credential of that name is set")]
    Missing { variable: String },
    #[error("api.token_env: the token in {from} is empty")]
    Empty { from: String },
    #[error("api.token_env: the token in {from} is not UTF-8")]
    NotUnicode { from: String },
    #[error("api.token_env: reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The bearer token named by `api.token_env`: the environment variable of that name,
/// else the systemd credential `$CREDENTIALS_DIRECTORY/<name>` (so the token need not
/// sit in the unit's environment). `None` when no `token_env` is configured; an error
/// when one is configured but nothing usable is found, so the daemon refuses to start
/// rather than serve an unguarded API.
pub fn load_token(api: &Api) -> Result<Option<String>, TokenError> {
    let Some(variable) = api.token_env.as_deref() else {
        return Ok(None);
    };
    read_token(
        variable,
        std::env::var_os(variable),
        std::env::var_os("CREDENTIALS_DIRECTORY"),
    )
    .map(Some)
}

/// [`load_token`] with the environment passed in, for tests.
fn read_token(
    variable: &str,
    value: Option<OsString>,
    credentials_dir: Option<OsString>,
) -> Result<String, TokenError> {
    let token = |text: &str, from: String| {
        // Surrounding whitespace (a credential file's trailing newline) is no part of it.
        let token = text.trim();
        if token.is_empty() {
            Err(TokenError::Empty { from })
        } else {
            Ok(token.to_string())
        }
    };
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        let from = format!("environment variable {variable}");
        return match value.to_str() {
            Some(text) => token(text, from),
            None => Err(TokenError::NotUnicode { from }),
        };
    }
    // A credential name is a file name; one with a path in it is not looked up.
    let path = credentials_dir
        .filter(|dir| !dir.is_empty())
        .filter(|_| !variable.contains('/') && variable != "." && variable != "..")
        .map(|dir| PathBuf::from(dir).join(variable));
    let Some(path) = path else {
        return Err(TokenError::Missing {
            variable: variable.to_string(),
        });
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let from = format!("systemd credential {}", path.display());
            match String::from_utf8(bytes) {
                Ok(text) => token(&text, from),
                Err(_) => Err(TokenError::NotUnicode { from }),
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(TokenError::Missing {
            variable: variable.to_string(),
        }),
        Err(source) => Err(TokenError::Read { path, source }),
    }
}

/// Serves the API on `listener` until `shutdown` is cancelled. Bind the listener to
/// exactly `api.listen` before telling systemd the daemon is ready, so a taken port
/// fails the start instead of a later request.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        let token = state.access().token.is_some();
        tracing::info!(listen = %addr, token, "Serving the API.");
    }
    let stop = shutdown.clone();
    let server = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { stop.cancelled().await });
    // Graceful shutdown waits for every connection to close; a client that keeps one
    // open must not hold the daemon past its exit deadline.
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => served,
        _ = deadline => {
            tracing::info!("Dropping API connections still open at shutdown.");
            Ok(())
        }
    }
}

/// The API's routes over `state`.
pub fn router(state: ApiState) -> Router {
    let guarded = Router::new()
        .route("/api/items", get(items))
        .route("/api/alerts", get(alerts))
        .route("/api/feeds", get(feeds))
        .route("/api/backtest", get(backtest))
        .route("/api/store/backup", post(backup))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(guarded)
        .fallback(not_found)
        .with_state(state)
}

/// An answer other than success, as JSON `{"error": …}`.
#[derive(Debug)]
enum ApiError {
    /// A query parameter the endpoint does not take, or a value it cannot use.
    BadParameter {
        name: String,
        reason: String,
    },
    Unauthorized,
    /// An endpoint this API's configuration does not allow, and why.
    Forbidden(String),
    NotFound,
    /// The store could not be read; details go to the log, not to the client.
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadParameter { name, reason } => (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "error": format!("query parameter {name}: {reason}"),
                    "parameter": name,
                })),
            )
                .into_response(),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
                Json(json!({"error": "a bearer token is required (Authorization: Bearer <token>)"})),
            )
                .into_response(),
            ApiError::Forbidden(why) => {
                (StatusCode::FORBIDDEN, Json(json!({"error": why}))).into_response()
            }
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "no such endpoint; try /healthz, /metrics, /api/items, /api/alerts /api/feeds or /api/backtest"})),
            )
                .into_response(),
            ApiError::Internal(what) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": what})),
            )
                .into_response(),
        }
    }
}

fn bad(name: &str, reason: impl Into<String>) -> ApiError {
    ApiError::BadParameter {
        name: name.to_string(),
        reason: reason.into(),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn healthz(State(state): State<ApiState>) -> Response {
    let now = Utc::now();
    let last = state.health.last_progress();
    // A clock stepped back makes progress look recent, which is the safe reading.
    let age = (now - last).to_std().unwrap_or(Duration::ZERO);
    let store_open = state.health.store_open();
    let progress_bound = state.access().progress_bound;
    let mut reasons = Vec::new();
    if !store_open {
        reasons.push("the store is not open".to_string());
    }
    if age > progress_bound {
        reasons.push(format!(
            "the poll loop has made no progress for {}s (the bound is {}s)",
            age.as_secs(),
            progress_bound.as_secs()
        ));
    }
    let mut body = json!({
        "status": if reasons.is_empty() { "ok" } else { "unavailable" },
        "version": env!("CARGO_PKG_VERSION"),
        "store_open": store_open,
        "last_progress": last.to_rfc3339(),
        "progress_age_seconds": age.as_secs(),
        "progress_bound_seconds": progress_bound.as_secs(),
    });
    if reasons.is_empty() {
        (StatusCode::OK, Json(body)).into_response()
    } else {
        body["reason"] = Value::from(reasons.join("; "));
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let store = state.store.clone();
    // The due index holds only pending alerts, so counting its keys is a short pass
    // (decoding every alert ever kept made a scrape's cost grow with the outbox);
    // still off the runtime threads.
    let feeds = state.feeds();
    let counts = tokio::task::spawn_blocking(move || {
        let health = store.feed_states().map(|states| {
            let (feeds, rules) = &*feeds;
            let assessed = crate::health::assess_feeds(feeds, states, rules, Utc::now());
            crate::health::count_states(&assessed)
        });
        (store.item_count(), store.pending_alerts(), health)
    })
    .await;
    let metrics = crate::metrics::global();
    match counts {
        Ok((items, pending, health)) => {
            metrics.set_store_items(items);
            metrics.set_alerts_pending(pending);
            match health {
                Ok(counts) => {
                    metrics.set_feed_health(counts.iter().map(|(s, n)| (s.as_str(), *n)));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "Reading feed states for the metrics failed.")
                }
            }
        }
        // The scrape still answers, with the gauges as last refreshed.
        Err(err) => tracing::warn!(error = %err, "Counting for the metrics failed."),
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(METRICS_CONTENT_TYPE),
        )],
        metrics.render(),
    )
        .into_response()
}

async fn items(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut params = params(query.as_deref(), &["topic", "since", "limit"])?;
    let topic = params.remove("topic");
    if topic.as_deref() == Some("") {
        return Err(bad("topic", "is empty"));
    }
    let since = params
        .remove("since")
        .map(|text| parse_since(&text, Utc::now()).map_err(|reason| bad("since", reason)))
        .transpose()?;
    let limit = limit(params.remove("limit"))?;
    let query = ItemQuery {
        topic,
        since,
        limit,
    };
    let store = state.store.clone();
    let found = read(move || store.items(&query), "reading items").await?;
    Ok(listing_response(&found, item_json))
}

/// `GET /api/feeds`: every configured feed, in config order, with its health now.
async fn feeds(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    params(query.as_deref(), &[])?;
    let store = state.store.clone();
    let states = read(move || store.feed_states(), "reading feed states").await?;
    let feeds = state.feeds();
    let (feeds, rules) = &*feeds;
    let rows: Vec<Value> = crate::health::assess_feeds(feeds, states, rules, Utc::now())
        .iter()
        .map(|(feed, state, health)| feed_json(feed, state, health))
        .collect();
    Ok(Json(Value::Array(rows)).into_response())
}

/// The default window of a backtest, as `newswatch backtest` has it.
pub const BACKTEST_SINCE: &str = "7d";

/// `GET /api/backtest?topic=ID|query=QUERY&since=7d&explain=true`: the running
/// config's topic (every topic when neither is given), or a query with its entities,
/// over the stored items since `since`: the document `newswatch backtest --json`
/// prints.
async fn backtest(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut params = params(query.as_deref(), &["topic", "query", "since", "explain"])?;
    let rules = state.rules();
    let topics = match (params.remove("topic"), params.remove("query")) {
        (Some(_), Some(_)) => return Err(bad("query", "give topic or query, not both")),
        (Some(id), None) => match rules.topics.iter().find(|t| t.id == id) {
            Some(topic) => vec![topic.clone()],
            None => {
                return Err(bad(
                    "topic",
                    format!(
                        "unknown topic {id:?} (the running config has: {})",
                        rules
                            .topics
                            .iter()
                            .map(|t| t.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
        },
        (None, Some(text)) => vec![backtest::query_topic(&text, &rules.entities)
            .map_err(|problem| bad("query", problem.to_string()))?],
        (None, None) => rules.topics.clone(),
    };
    let since = parse_since(
        params.remove("since").as_deref().unwrap_or(BACKTEST_SINCE),
        Utc::now(),
    )
    .map_err(|reason| bad("since", reason))?;
    let explain = match params.remove("explain").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(bad("explain", format!("{other:?} is not true or false"))),
    };
    let store = state.store.clone();
    let entities = rules.entities.clone();
    let report = read(
        move || {
            let rules = RuleSet::new(entities, topics);
            backtest::run(store.as_ref(), &rules, since, explain)
        },
        "running a backtest",
    )
    .await?;
    Ok(Json(report.to_json()).into_response())
}

/// `POST /api/store/backup?dir=/absolute/path`: a copy of the store as of one moment,
/// made while the daemon runs (writes wait for the copy), then checked. The
/// directory is the daemon's to create: absolute, new or empty. Only with a token: a
/// backup writes files wherever the daemon may, so an open API must not offer it to
/// every local user.
async fn backup(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    if state.access().token.is_none() {
        return Err(ApiError::Forbidden(
            "a backup through the API needs an API token (api.token_env): it writes files \
             as the daemon"
                .into(),
        ));
    }
    let mut params = params(query.as_deref(), &["dir"])?;
    let dir = params
        .remove("dir")
        .map(std::path::PathBuf::from)
        .ok_or_else(|| bad("dir", "is required: where to write the copy"))?;
    if !dir.is_absolute() {
        return Err(bad(
            "dir",
            format!("{} is not an absolute path", dir.display()),
        ));
    }
    let store = state.store.clone();
    let to = dir.clone();
    let made = tokio::task::spawn_blocking(move || store.backup(&to))
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "API: the backup crashed.");
            ApiError::Internal("the backup failed; see the log".into())
        })?;
    let (copied, checked) = match made {
        Ok(made) => made,
        Err(err @ crate::store::StoreError::Backup { .. }) => {
            return Err(bad("dir", err.to_string()))
        }
        Err(err) => {
            tracing::error!(error = %err, "API: the backup failed.");
            return Err(ApiError::Internal(format!("the backup failed: {err}")));
        }
    };
    tracing::info!(dir = %dir.display(), entries = copied.entries, problems = checked.problem_count(), "Backed up the store.");
    let problems: Vec<Value> = checked
        .problems
        .iter()
        .map(
            |(kind, (count, examples))| json!({"kind": kind, "count": count, "examples": examples}),
        )
        .collect();
    Ok(Json(json!({
        "dir": dir.display().to_string(),
        "trees": copied.trees,
        "entries": copied.entries,
        "checked": checked.entries,
        "problems": problems,
    }))
    .into_response())
}

async fn alerts(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut params = params(query.as_deref(), &["status", "limit"])?;
    let status = params
        .remove("status")
        .map(|text| match text.as_str() {
            "pending" => Ok(AlertStatus::Pending),
            "delivered" => Ok(AlertStatus::Delivered),
            "failed" => Ok(AlertStatus::Failed),
            _ => Err(bad(
                "status",
                format!("{text:?} is not one of pending, delivered, failed"),
            )),
        })
        .transpose()?;
    let limit = limit(params.remove("limit"))?;
    let store = state.store.clone();
    let found = read(move || store.alerts(status, limit), "reading alerts").await?;
    Ok(listing_response(&found, alert_json))
}

/// Header on a listing that had to skip damaged records: the body keeps its shape
/// (an array of what could be read), and a client that cares can tell.
pub const SKIPPED_HEADER: &str = "x-newswatch-skipped";

/// A JSON array of the listed records, with [`SKIPPED_HEADER`] when some could not be
/// read (`cut-short` is added when the listing ended at a damaged index page).
fn listing_response<T>(found: &Listing<T>, view: fn(&T) -> Value) -> Response {
    let body = Json(Value::Array(found.iter().map(view).collect()));
    if !found.is_damaged() {
        return body.into_response();
    }
    let value = if found.cut_short {
        format!("{}, cut-short", found.skipped)
    } else {
        found.skipped.to_string()
    };
    let mut response = body.into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(SKIPPED_HEADER, value);
    }
    response
}

/// Runs a store read on the blocking pool; a failure is logged and answered with a
/// 500 that says what was being read.
async fn read<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
    what: &'static str,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "API: failed {what}.");
            Err(ApiError::Internal(format!("{what} failed; see the log")))
        }
        Err(err) => {
            tracing::error!(error = %err, "API: {what} crashed.");
            Err(ApiError::Internal(format!("{what} failed; see the log")))
        }
    }
}

/// The query string as a map of the parameters in `allowed`; anything else, or a
/// parameter given twice, is a 400 naming it.
fn params(
    query: Option<&str>,
    allowed: &[&'static str],
) -> Result<HashMap<&'static str, String>, ApiError> {
    let mut out = HashMap::new();
    let pairs = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes());
    for (name, value) in pairs {
        let Some(known) = allowed.iter().find(|a| **a == name) else {
            let takes = if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            };
            return Err(bad(
                &name,
                format!("unknown parameter; this endpoint takes {takes}"),
            ));
        };
        if out.insert(*known, value.into_owned()).is_some() {
            return Err(bad(known, "given more than once"));
        }
    }
    Ok(out)
}

fn limit(text: Option<String>) -> Result<usize, ApiError> {
    let Some(text) = text else {
        return Ok(DEFAULT_LIMIT);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(bad(
            "limit",
            format!("{text:?} is not a whole number from 1 to {MAX_LIMIT}"),
        )),
    }
}

/// Lets a request through to `/api/*` when no token is configured or it carries the
/// token.
async fn require_token(
    State(state): State<ApiState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    match &state.access().token {
        None => next.run(request).await,
        Some(token) if authorized(&headers, token) => next.run(request).await,
        Some(_) => ApiError::Unauthorized.into_response(),
    }
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    // An empty configured token would match an empty credential: fail closed.
    if token.is_empty() {
        return false;
    }
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let Some((scheme, given)) = value.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && same_secret(given.trim(), token)
}

/// Compares two secrets in time independent of where they differ, and of their
/// lengths: both are hashed first, and the digests compared without an early exit.
fn same_secret(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_updated_token_and_bound_apply_to_the_running_server() {
        let dir = tempfile::tempdir().unwrap();
        let health = Health::new();
        health.set_store_open(true);
        let state = ApiState::new(
            std::sync::Arc::new(crate::store::SledStore::open(dir.path()).unwrap()),
            health.clone(),
            Some("alpha".to_string()),
            Duration::from_secs(3600),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let served = tokio::spawn(serve(listener, state.clone(), stop.clone()));
        let client = reqwest::Client::new();
        let items = |token: &'static str| {
            client
                .get(format!("{base}/api/items"))
                .bearer_auth(token)
                .send()
        };
        let health_bound = || async {
            let text = client
                .get(format!("{base}/healthz"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let body: Value = serde_json::from_str(&text).unwrap();
            body["progress_bound_seconds"].as_u64()
        };
        assert_eq!(items("alpha").await.unwrap().status(), 200);
        assert_eq!(items("bravo").await.unwrap().status(), 401);
        assert_eq!(health_bound().await, Some(3600));

        state.update(Some("bravo".to_string()), Duration::from_secs(900));
        assert_eq!(items("alpha").await.unwrap().status(), 401);
        assert_eq!(items("bravo").await.unwrap().status(), 200);
        assert_eq!(health_bound().await, Some(900));

        stop.cancel();
        served.await.unwrap().unwrap();
    }

    /// An API without a token serves reads, but not a backup, which writes files.
    #[tokio::test]
    async fn a_backup_needs_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let store: crate::store::SharedStore =
            std::sync::Arc::new(crate::store::SledStore::open(&dir.path().join("store")).unwrap());
        let state = |token: Option<&str>| {
            ApiState::new(
                store.clone(),
                Health::new(),
                token.map(str::to_string),
                Duration::from_secs(3600),
            )
        };
        let client = reqwest::Client::new();
        let target = dir.path().join("copy");
        let serve_one = |state: ApiState| async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let stop = CancellationToken::new();
            let served = tokio::spawn(serve(listener, state, stop.clone()));
            (base, stop, served)
        };

        let (base, stop, served) = serve_one(state(None)).await;
        let ask = client
            .post(format!("{base}/api/store/backup"))
            .query(&[("dir", target.display().to_string())])
            .send()
            .await
            .unwrap();
        assert_eq!(ask.status(), 403);
        let body: Value = serde_json::from_str(&ask.text().await.unwrap()).unwrap();
        assert!(body["error"].as_str().unwrap().contains("api.token_env"));
        assert!(!target.exists());
        let items = client
            .get(format!("{base}/api/items"))
            .send()
            .await
            .unwrap();
        assert_eq!(items.status(), 200);
        stop.cancel();
        served.await.unwrap().unwrap();

        let (base, stop, served) = serve_one(state(Some("alpha"))).await;
        let ask = client
            .post(format!("{base}/api/store/backup"))
            .query(&[("dir", target.display().to_string())])
            .bearer_auth("alpha")
            .send()
            .await
            .unwrap();
        assert_eq!(ask.status(), 200, "{}", ask.text().await.unwrap());
        assert!(target.join("conf").exists());
        stop.cancel();
        served.await.unwrap().unwrap();
    }

    #[test]
    fn progress_bound_is_three_intervals_but_at_least_ten_minutes() {
        assert_eq!(
            progress_bound(Duration::from_secs(60)),
            Duration::from_secs(600)
        );
        assert_eq!(
            progress_bound(Duration::from_secs(900)),
            Duration::from_secs(2700)
        );
        assert_eq!(progress_bound(Duration::MAX), Duration::MAX);
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cret", "s3creT"));
        assert!(!same_secret("s3cre", "s3cret"));
        assert!(!same_secret("", "s3cret"));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_others_are_refused() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert!(authorized(&with("Bearer tok"), "tok"));
        assert!(authorized(&with("bearer  tok "), "tok"));
        assert!(!authorized(&with("Basic tok"), "tok"));
        assert!(!authorized(&with("Bearer"), "tok"));
        assert!(!authorized(&with("Bearer other"), "tok"));
        assert!(!authorized(&HeaderMap::new(), "tok"));
        assert!(
            !authorized(&with("Bearer "), ""),
            "an empty token opens nothing"
        );
    }

    #[test]
    fn token_from_environment_or_credential() {
        let var = |s: &str| Some(OsString::from(s));
        assert_eq!(read_token("TOK", var(" abc\n"), None).unwrap(), "abc");
        let err = read_token("TOK", None, None).unwrap_err();
        assert!(err.to_string().contains("TOK"), "{err}");
        assert!(matches!(
            read_token("TOK", var("  "), None),
            Err(TokenError::Empty { .. })
        ));

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("TOK"), "from-file\n").unwrap();
        let creds = Some(dir.path().as_os_str().to_owned());
        assert_eq!(read_token("TOK", None, creds.clone()).unwrap(), "from-file");
        // The environment wins over the credential.
        assert_eq!(read_token("TOK", var("env"), creds.clone()).unwrap(), "env");
        assert!(matches!(
            read_token("OTHER", None, creds.clone()),
            Err(TokenError::Missing { .. })
        ));
        assert!(matches!(
            read_token("../TOK", None, creds),
            Err(TokenError::Missing { .. })
        ));
    }

    #[test]
    fn parameters_are_checked_by_name() {
        let p = |q: &str| params(Some(q), &["topic", "limit"]);
        let got = p("topic=a%20b&limit=5").unwrap();
        assert_eq!(got["topic"], "a b");
        assert_eq!(got["limit"], "5");
        assert!(p("").unwrap().is_empty());
        let name = |r: Result<_, ApiError>| match r {
            Err(ApiError::BadParameter { name, .. }) => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(name(p("topics=a").map(|_| ())), "topics");
        assert_eq!(name(p("limit=1&limit=2").map(|_| ())), "limit");
        assert_eq!(name(limit(Some("0".into())).map(|_| ())), "limit");
        assert_eq!(name(limit(Some("1001".into())).map(|_| ())), "limit");
        assert_eq!(name(limit(Some("-1".into())).map(|_| ())), "limit");
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(Some("1000".into())).unwrap(), 1000);
    }
}
