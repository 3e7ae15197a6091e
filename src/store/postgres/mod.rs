//! The shared store: PostgreSQL, for several daemons on one database.
//!
//! docs/cluster.md is the contract; docs/store.md the interface it shares with the
//! embedded store. What this backend adds to it:
//!
//! - **Feed leases** (`feeds.rs`): a daemon polls a feed only under a lease claimed
//!   with `FOR UPDATE SKIP LOCKED`, which raises the feed's epoch; a write under an
//!   expired or older lease is refused, so a daemon paused past its lease stores
//!   nothing for feeds another daemon now owns.
//! - **Stories decided in the database** (`items.rs`): each daemon's story window only
//!   knows the stories it saw, so a new story's lead is checked again inside the item
//!   transaction against every daemon's stories, under an advisory lock per indexed
//!   sketch value, so two copies of a story stored at once by two daemons meet.
//! - **Alert claims** (`outbox.rs`): due alerts are claimed for a lease period, so one
//!   daemon at a time delivers each, and a dead daemon's claims run out.
//!
//! Calls are synchronous, like sled's: each takes a pooled connection, runs its
//! queries and waits for them with a plain executor. The connections' I/O runs on a
//! thread of the store's own with a tokio runtime, so a call made from any thread (a
//! tokio worker, the blocking pool, a test's current-thread runtime) never needs a
//! runtime of its own, and dropping the store never drops a runtime inside another.
//!
//! Records keep their postcard/zstd form (`codec.rs`) in `bytea` columns; what the
//! queries select or order by is in columns of its own. Times are milliseconds since
//! the epoch (`bigint`), as in the embedded store's keys; lease expiries are the
//! database's `timestamptz`, compared with the database's clock only, so that the
//! daemons' clocks need not agree for leases to hold.

mod feeds;
mod items;
mod outbox;
pub mod schema;

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, NoTls, Row, Statement};

use futures_util::future::BoxFuture;

use super::{
    AlertStatus, Attempt, BackupReport, CheckReport, Claim, FeedState, Inserted, ItemQuery,
    LeadSketch, Lease, Listing, PruneReport, StoreError, StoredAlert, StoredItem, StoredStory,
};
use crate::config::Postgres;

/// How long a call waits for a free connection before it fails.
const POOL_PATIENCE: Duration = Duration::from_secs(30);
/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Transactions that PostgreSQL aborted to break a deadlock or a serialization
/// conflict (two daemons updating the same stories) are run again this many times.
const TRIES: u32 = 5;

/// The store in a PostgreSQL database.
#[derive(Debug)]
pub struct PgStore {
    pool: Pool,
    location: String,
    /// This daemon's name in leases and claims.
    node: String,
    /// How long a lease or an alert claim lasts, in milliseconds.
    lease_ms: i64,
    /// How far back a new story's lead looks for the story it may belong to.
    story_window_ms: i64,
}

impl PgStore {
    /// Connects, and creates or migrates the schema ([`schema::migrate`]).
    pub fn open(config: &Postgres, story_window: Duration) -> Result<PgStore, StoreError> {
        let pool = Pool::new(config)?;
        {
            let mut conn = pool.get(&config.url)?;
            schema::migrate(&mut conn, &config.url)?;
        }
        Ok(PgStore {
            location: config.url.clone(),
            node: config.node.clone().unwrap_or_else(node_name),
            lease_ms: millis_of(config.lease),
            story_window_ms: millis_of(story_window),
            pool,
        })
    }

    /// This daemon's name in leases.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The schema version of the database at `config`, without changing it: for
    /// `newswatch check`, which must not migrate a database daemons are using.
    pub fn schema_version(config: &Postgres) -> Result<Option<i32>, StoreError> {
        let pool = Pool::new(config)?;
        let mut conn = pool.get(&config.url)?;
        schema::version(&mut conn, &config.url)
    }

    fn error(&self, op: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
        move |err| pg_error(op, &self.location, &err)
    }

    /// Runs `work` in a transaction, again when PostgreSQL aborted it for a deadlock
    /// or a serialization failure (it then did nothing).
    fn transaction<T>(
        &self,
        op: &'static str,
        mut work: impl FnMut(&mut Tx<'_>) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let mut conn = self.pool.get(&self.location)?;
        let mut tries = 0;
        loop {
            tries += 1;
            let result = conn
                .transaction()
                .map_err(|err| Failure::Pg(op, err))
                .and_then(|mut tx| {
                    let value = work(&mut tx)?;
                    tx.commit(op)?;
                    Ok(value)
                });
            match result {
                Ok(value) => return Ok(value),
                Err(Failure::Pg(_, err)) if tries < TRIES && is_conflict(&err) => {
                    tracing::debug!(op, error = %err, "A transaction met another daemon's; running it again.");
                }
                Err(Failure::Pg(op, err)) => return Err(pg_error(op, &self.location, &err)),
                Err(Failure::Store(err)) => return Err(err),
            }
        }
    }
}

/// Why a transaction's work stopped: a database error (which may be worth a retry) or
/// one of ours.
enum Failure {
    Pg(&'static str, tokio_postgres::Error),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Failure {
        Failure::Store(err)
    }
}

/// `.map_err(pg(op))` inside a transaction.
fn pg(op: &'static str) -> impl Fn(tokio_postgres::Error) -> Failure {
    move |err| Failure::Pg(op, err)
}

fn is_conflict(err: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        err.code(),
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// A database error as a store error: the server's message (and detail) when it sent
/// one, else what failed on the way (connection refused, closed).
fn pg_error(op: &'static str, location: &str, err: &tokio_postgres::Error) -> StoreError {
    let cause = match err.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({})", db.message(), db.code().code());
            for more in [db.detail(), db.hint()].into_iter().flatten() {
                text.push_str(": ");
                text.push_str(more);
            }
            text
        }
        None => {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    };
    StoreError::Postgres {
        op,
        location: location.to_string(),
        cause,
    }
}

/// Waits for a database future on the calling thread. The future only talks over
/// channels to its connection, whose I/O runs on the pool's runtime thread.
fn block_on<F: Future>(future: F) -> F::Output {
    futures_executor::block_on(future)
}

fn millis_of(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A daemon's default name: host, process and a random part, so that a daemon
/// restarted with the same process id is still a new owner.
fn node_name() -> String {
    // gethostname(2), not /proc/sys: the systemd unit hides /proc's system files.
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let named = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    let host = match std::str::from_utf8(&buffer[..end]) {
        Ok(host) if named && !host.is_empty() => host.to_string(),
        _ => "host".to_string(),
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let random = xxhash_rust::xxh3::xxh3_64(format!("{nanos}{}", std::process::id()).as_bytes());
    format!("{host}/{}/{:04x}", std::process::id(), random & 0xffff)
}

/// The password for `config`: the environment variable `password_env`, else the
/// systemd credential of that name (`LoadCredential=`), else none (the server may
/// trust the connection, or use a `.pgpass` file).
fn password(config: &Postgres) -> Option<String> {
    if let Ok(value) = std::env::var(&config.password_env) {
        return Some(value);
    }
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    std::fs::read_to_string(std::path::Path::new(&dir).join(&config.password_env))
        .ok()
        .map(|value| value.trim_end_matches(['\n', '\r']).to_string())
}

/// A few connections, opened as needed and kept.
struct Pool {
    config: tokio_postgres::Config,
    location: String,
    runtime: tokio::runtime::Handle,
    max: usize,
    idle: Mutex<Idle>,
    freed: Condvar,
    /// Dropped with the pool, which ends the runtime thread (and the connections).
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("location", &self.location)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Idle {
    clients: Vec<Pooled>,
    /// Connections open, idle or in use.
    open: usize,
}

impl Pool {
    fn new(config: &Postgres) -> Result<Pool, StoreError> {
        let error = |cause: String| StoreError::Postgres {
            op: "opening the store",
            location: config.url.clone(),
            cause,
        };
        let mut pg = tokio_postgres::Config::from_str(&config.url)
            .map_err(|err| error(format!("the URL is not a PostgreSQL connection URL: {err}")))?;
        if let Some(password) = password(config) {
            pg.password(password);
        }
        pg.connect_timeout(CONNECT_TIMEOUT);
        // A server that vanishes (a partition, a dead host) fails the calls waiting on
        // it within half a minute, instead of the kernel's retransmission limit.
        pg.tcp_user_timeout(Duration::from_secs(30));
        pg.keepalives_idle(Duration::from_secs(30));
        // Statements are prepared once per connection; a generic plan made while a
        // table was empty (a new cluster's first minutes) would scan it whole for
        // ever after. A plan per execution costs a fraction of a millisecond.
        // JIT compiling pays off on long analytic queries; on these short ones its
        // 15 ms of compiling was most of a feed's time in the database.
        pg.options("-c plan_cache_mode=force_custom_plan -c jit=off -c statement_timeout=60s");
        pg.application_name("newswatch");
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("newswatch-postgres".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => {
                        let _ = handle_tx.send(Ok(runtime.handle().clone()));
                        // Drives the connections until the pool is dropped.
                        runtime.block_on(async {
                            let _ = stopped.await;
                        });
                    }
                    Err(err) => {
                        let _ = handle_tx.send(Err(err));
                    }
                }
            })
            .map_err(|err| error(format!("starting the connection thread: {err}")))?;
        let runtime = handle_rx
            .recv()
            .map_err(|_| error("the connection thread ended at once".into()))?
            .map_err(|err| error(format!("starting the connection runtime: {err}")))?;
        Ok(Pool {
            config: pg,
            location: config.url.clone(),
            runtime,
            max: config.pool.max(1),
            idle: Mutex::new(Idle::default()),
            freed: Condvar::new(),
            _stop: stop,
        })
    }

    /// A connection: an idle one, a new one while fewer than `max` are open, or the
    /// next one given back.
    fn get(&self, location: &str) -> Result<Conn<'_>, StoreError> {
        let deadline = std::time::Instant::now() + POOL_PATIENCE;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            while let Some(client) = idle.clients.pop() {
                if !client.client.is_closed() {
                    return Ok(Conn {
                        pool: self,
                        pooled: Some(client),
                    });
                }
                idle.open -= 1;
            }
            if idle.open < self.max {
                idle.open += 1;
                drop(idle);
                return match self.connect() {
                    Ok(client) => Ok(Conn {
                        pool: self,
                        pooled: Some(Pooled {
                            client,
                            statements: HashMap::new(),
                        }),
                    }),
                    Err(err) => {
                        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                        idle.open -= 1;
                        self.freed.notify_one();
                        Err(err)
                    }
                };
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(StoreError::Postgres {
                    op: "waiting for a free database connection",
                    location: location.to_string(),
                    cause: format!(
                        "all {} connections (storage.pool) stayed busy for {}s",
                        self.max,
                        POOL_PATIENCE.as_secs()
                    ),
                });
            }
            idle = self
                .freed
                .wait_timeout(idle, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn connect(&self) -> Result<Client, StoreError> {
        let config = self.config.clone();
        let location = self.location.clone();
        let connecting = self.runtime.spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    let cause = pg_error("the connection", &location, &err);
                    tracing::warn!(error = %cause, "A database connection ended; a new one is opened when needed.");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        match block_on(connecting) {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(err)) => Err(pg_error("connecting to the database", &self.location, &err)),
            Err(err) => Err(StoreError::Postgres {
                op: "connecting to the database",
                location: self.location.clone(),
                cause: format!("the connection task failed: {err}"),
            }),
        }
    }
}

/// A connection with the statements prepared on it: each query is prepared once per
/// connection, so running it again is one round trip instead of two.
struct Pooled {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// A pooled connection, given back when dropped (a closed one is let go).
struct Conn<'p> {
    pool: &'p Pool,
    pooled: Option<Pooled>,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.pooled().client
    }
}

// `pooled` is `Some` from `Pool::get` until `Drop` takes it, and nothing else takes
// it, so the `expect`s below cannot fire; the `Option` exists only so that `Drop` can
// move the client back into the pool.
impl Conn<'_> {
    fn pooled(&self) -> &Pooled {
        self.pooled
            .as_ref()
            .expect("a connection holds its client until dropped")
    }

    fn pooled_mut(&mut self) -> &mut Pooled {
        self.pooled
            .as_mut()
            .expect("a connection holds its client until dropped")
    }

    /// A transaction on this connection, with its statement cache.
    fn transaction(&mut self) -> Result<Tx<'_>, tokio_postgres::Error> {
        let Pooled { client, statements } = self.pooled_mut();
        let tx = block_on(client.transaction())?;
        Ok(Tx { tx, statements })
    }

    fn statement(&mut self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        let Pooled { client, statements } = self.pooled_mut();
        prepared(statements, sql, |sql| block_on(client.prepare(sql)))
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        match self.pooled.take() {
            Some(pooled) if !pooled.client.is_closed() => idle.clients.push(pooled),
            _ => idle.open -= 1,
        }
        self.pool.freed.notify_one();
    }
}

/// The statement for `sql` from `cache`, prepared by `prepare` the first time.
fn prepared(
    cache: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
    prepare: impl FnOnce(&str) -> Result<Statement, tokio_postgres::Error>,
) -> Result<Statement, tokio_postgres::Error> {
    if let Some(statement) = cache.get(sql) {
        return Ok(statement.clone());
    }
    let statement = prepare(sql)?;
    cache.insert(sql, statement.clone());
    Ok(statement)
}

/// A statement's parameters.
type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// A transaction whose queries use the connection's prepared statements.
pub(super) struct Tx<'c> {
    tx: tokio_postgres::Transaction<'c>,
    statements: &'c mut HashMap<&'static str, Statement>,
}

impl Tx<'_> {
    fn statement(&mut self, op: &'static str, sql: &'static str) -> Result<Statement, Failure> {
        let tx = &self.tx;
        prepared(self.statements, sql, |sql| block_on(tx.prepare(sql))).map_err(pg(op))
    }

    fn query(
        &mut self,
        op: &'static str,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, Failure> {
        let statement = self.statement(op, sql)?;
        block_on(self.tx.query(&statement, params)).map_err(pg(op))
    }

    fn query_opt(
        &mut self,
        op: &'static str,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>, Failure> {
        let statement = self.statement(op, sql)?;
        block_on(self.tx.query_opt(&statement, params)).map_err(pg(op))
    }

    fn execute(
        &mut self,
        op: &'static str,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> Result<u64, Failure> {
        let statement = self.statement(op, sql)?;
        block_on(self.tx.execute(&statement, params)).map_err(pg(op))
    }

    fn commit(self, op: &'static str) -> Result<(), Failure> {
        block_on(self.tx.commit()).map_err(pg(op))
    }
}

/// The store behind the [`super::Store`] interface.
impl PgStore {
    /// Runs one statement outside a transaction and returns its rows.
    fn query(
        &self,
        op: &'static str,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, StoreError> {
        let mut conn = self.pool.get(&self.location)?;
        let statement = conn.statement(sql).map_err(self.error(op))?;
        block_on(conn.query(&statement, params)).map_err(self.error(op))
    }

    /// Runs one statement outside a transaction and returns the rows it changed.
    fn execute(
        &self,
        op: &'static str,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> Result<u64, StoreError> {
        let mut conn = self.pool.get(&self.location)?;
        let statement = conn.statement(sql).map_err(self.error(op))?;
        block_on(conn.execute(&statement, params)).map_err(self.error(op))
    }
}

impl super::Store for PgStore {
    fn location(&self) -> String {
        format!("PostgreSQL at {}", self.location)
    }
    fn seen(&self, id: &str) -> Result<bool, StoreError> {
        PgStore::seen(self, id)
    }
    fn seen_among(&self, ids: &[&str]) -> Result<std::collections::HashSet<String>, StoreError> {
        PgStore::seen_among(self, ids)
    }
    fn get_item(&self, id: &str) -> Result<Option<StoredItem>, StoreError> {
        PgStore::get_item(self, id)
    }
    fn write_batch(
        &self,
        lease: Option<&Lease>,
        batch: &super::Batch<'_>,
    ) -> Result<Inserted, StoreError> {
        PgStore::insert_batch(self, lease, batch)
    }
    fn versions_among(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, super::ItemVersion>, StoreError> {
        PgStore::versions_among(self, ids)
    }
    fn put_events(&self, events: &[StoredAlert]) -> Result<usize, StoreError> {
        self.transaction("storing events", |tx| self.write_alerts(tx, events))
    }
    fn items(&self, query: &ItemQuery) -> Result<Listing<StoredItem>, StoreError> {
        PgStore::items(self, query)
    }
    fn item_count(&self) -> usize {
        self.count("counting items", "SELECT count(*) FROM items")
    }
    fn backfilled(&self, topic: &str) -> Result<Option<String>, StoreError> {
        PgStore::backfilled(self, topic)
    }
    fn record_backfill(
        &self,
        topic: &str,
        definition: &str,
        alerts: &[StoredAlert],
        items: &[StoredItem],
    ) -> Result<usize, StoreError> {
        PgStore::record_backfill(self, topic, definition, alerts, items)
    }
    fn get_story(&self, id: &str) -> Result<Option<StoredStory>, StoreError> {
        PgStore::get_story(self, id)
    }
    fn stories_since<'a>(
        &'a self,
        since: DateTime<Utc>,
    ) -> Box<dyn Iterator<Item = Result<StoredStory, StoreError>> + 'a> {
        match PgStore::stories_since(self, since) {
            Ok(stories) => Box::new(stories.into_iter().map(Ok)),
            Err(err) => Box::new(std::iter::once(Err(err))),
        }
    }
    fn sketches_since<'a>(
        &'a self,
        since: DateTime<Utc>,
    ) -> Box<dyn Iterator<Item = Result<LeadSketch, StoreError>> + 'a> {
        match PgStore::sketches_since(self, since) {
            Ok(sketches) => Box::new(sketches.into_iter().map(Ok)),
            Err(err) => Box::new(std::iter::once(Err(err))),
        }
    }
    fn story_sketches(
        &self,
        first_seen: DateTime<Utc>,
        fingerprint: u64,
    ) -> Result<Vec<(String, Vec<u32>)>, StoreError> {
        PgStore::story_sketches(self, first_seen, fingerprint)
    }
    fn story_sketch(&self, story: &StoredStory) -> Result<Option<Vec<u32>>, StoreError> {
        PgStore::story_sketch(self, story)
    }
    fn put_story_sketch(&self, story: &StoredStory, sketch: &[u32]) -> Result<(), StoreError> {
        PgStore::put_sketches(
            self,
            &[LeadSketch {
                story: story.id.clone(),
                first_seen: story.first_seen,
                fingerprint: story.fingerprint,
                sketch: sketch.to_vec(),
            }],
        )
    }
    fn put_sketches(&self, leads: &[LeadSketch]) -> Result<(), StoreError> {
        PgStore::put_sketches(self, leads)
    }
    fn feed_states(&self) -> Result<Vec<(String, FeedState)>, StoreError> {
        PgStore::feed_states(self)
    }
    fn put_feed_state(
        &self,
        lease: Option<&Lease>,
        url: &str,
        state: &FeedState,
    ) -> Result<(), StoreError> {
        PgStore::put_feed_state(self, lease, url, state)
    }
    fn is_shared(&self) -> bool {
        true
    }
    fn claim_feed(&self, url: &str, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        PgStore::claim_feed(self, url, now)
    }
    fn release_leases(&self) -> Result<(), StoreError> {
        PgStore::release_leases(self)
    }
    fn due_alerts(
        &self,
        sink: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        PgStore::due_alerts(self, sink, now, limit)
    }
    fn next_due(&self, sink: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        PgStore::next_due(self, sink)
    }
    fn renew_claim(&self, id: &str) -> Result<bool, StoreError> {
        PgStore::renew_claim(self, id)
    }
    fn record_attempt(&self, id: &str, attempt: &Attempt) -> Result<StoredAlert, StoreError> {
        PgStore::record_attempt(self, id, attempt)
    }
    fn alerts(
        &self,
        status: Option<AlertStatus>,
        limit: usize,
    ) -> Result<Listing<StoredAlert>, StoreError> {
        PgStore::alerts(self, status, limit)
    }
    fn get_alert(&self, id: &str) -> Result<Option<StoredAlert>, StoreError> {
        PgStore::get_alert(self, id)
    }
    fn retry_alert(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        PgStore::retry_alert(self, id, now)
    }
    fn pending_alerts(&self) -> usize {
        self.count(
            "counting pending alerts",
            "SELECT count(*) FROM alerts WHERE status = 'pending'",
        )
    }
    fn prune(
        &self,
        now: DateTime<Utc>,
        history: Duration,
        retention: Duration,
        max: usize,
    ) -> Result<PruneReport, StoreError> {
        PgStore::prune(self, now, history, retention, max)
    }
    fn flush(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        // A committed transaction is durable in PostgreSQL already.
        Box::pin(async { Ok(0) })
    }
    fn backup(&self, to: &std::path::Path) -> Result<(BackupReport, CheckReport), StoreError> {
        Err(StoreError::Backup {
            path: to.to_path_buf(),
            reason: format!(
                "the store is in PostgreSQL at {}: back it up with pg_dump or the server's own backups",
                self.location
            ),
        })
    }
}
