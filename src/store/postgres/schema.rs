//! The database schema and its versioned migrations, applied by the binary at open.
//!
//! `schema_migrations` records each migration applied. Daemons starting together
//! migrate one at a time under an advisory lock; a database migrated by a newer build
//! (a version this build does not know) is refused rather than written in a layout
//! this build does not understand.

use super::{block_on, pg_error, Conn};
use crate::store::StoreError;

/// The advisory lock key space of newswatch (`pg_advisory_xact_lock(NAMESPACE, n)`).
pub(super) const LOCK_NAMESPACE: i32 = 0x6e77; // "nw"
/// The lock held while migrating.
const MIGRATION_LOCK: i32 = 0;

/// The migrations, in order: version, what it does, its SQL.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "items, stories, feeds and the outbox", V1),
    (2, "story update steps", V2),
    (3, "backfill records", V3),
];

/// The schema version this build writes.
pub const VERSION: i32 = 3;

const V1: &str = r#"
CREATE TABLE items (
    id          text PRIMARY KEY,
    feed        text NOT NULL,
    fetched_ms  bigint NOT NULL,
    matched     boolean NOT NULL,
    story       text NOT NULL,
    -- The daemon that stored it (storage.node).
    stored_by   text NOT NULL,
    record      bytea NOT NULL
);
CREATE INDEX items_by_time ON items (fetched_ms DESC, id DESC);

CREATE TABLE item_topics (
    topic       text NOT NULL,
    fetched_ms  bigint NOT NULL,
    item_id     text NOT NULL REFERENCES items ON DELETE CASCADE,
    score       double precision NOT NULL,
    PRIMARY KEY (topic, fetched_ms, item_id)
);
CREATE INDEX item_topics_by_item ON item_topics (item_id);

-- Outlives items: an item whose record was pruned is still not processed again.
CREATE TABLE seen (
    id          text PRIMARY KEY,
    seen_ms     bigint NOT NULL
);
CREATE INDEX seen_by_time ON seen (seen_ms);

CREATE TABLE stories (
    id            text PRIMARY KEY,
    first_item    text NOT NULL,
    first_seen_ms bigint NOT NULL,
    fingerprint   bigint NOT NULL,
    sketch        integer[],
    copies        integer NOT NULL DEFAULT 0,
    related       bytea,
    alerted       text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX stories_by_time ON stories (first_seen_ms);
CREATE INDEX stories_by_print ON stories (first_seen_ms, fingerprint);

-- A story's smallest sketch values, by which the copies of a story find it. The key
-- holds what a lookup within the story window filters on, and the fingerprint rides
-- along, so that a lookup reads this index alone. No foreign key: pruning removes
-- postings by time, and a check per row was the costliest part of storing a story.
CREATE TABLE story_postings (
    value         integer NOT NULL,
    first_seen_ms bigint NOT NULL,
    story         text NOT NULL,
    fingerprint   bigint NOT NULL,
    PRIMARY KEY (value, first_seen_ms, story) INCLUDE (fingerprint)
);

CREATE TABLE feeds (
    url          text PRIMARY KEY,
    state        bytea,
    next_poll_ms bigint,
    lease_owner  text,
    lease_until  timestamptz,
    epoch        bigint NOT NULL DEFAULT 0
);

CREATE TABLE alerts (
    id              text PRIMARY KEY,
    seq             bigserial,
    sink            text NOT NULL,
    status          text NOT NULL,
    next_attempt_ms bigint NOT NULL,
    created_ms      bigint NOT NULL,
    claimed_by      text,
    claim_until     timestamptz,
    delivered_by    text,
    record          bytea NOT NULL
);
CREATE INDEX alerts_due ON alerts (sink, next_attempt_ms, seq) WHERE status = 'pending';
CREATE INDEX alerts_by_time ON alerts (created_ms DESC, id);
"#;

/// Where each story that alerted on a topic with updates on stands, per sink
/// (`store::StoryStep`): written under the story's row lock, so that one step is taken
/// once across daemons. Pruned with its story.
const V2: &str = r#"
CREATE TABLE story_steps (
    story    text NOT NULL REFERENCES stories ON DELETE CASCADE,
    topic    text NOT NULL,
    sink     text NOT NULL,
    step     integer NOT NULL,
    sources  integer NOT NULL,
    at_ms    bigint NOT NULL,
    PRIMARY KEY (story, topic, sink)
);
"#;

/// Which topic definition was last backfilled (docs/store.md, "Backfills").
const V3: &str = r#"
CREATE TABLE backfills (
    topic       text PRIMARY KEY,
    definition  text NOT NULL,
    done_at     timestamptz NOT NULL DEFAULT now()
);
"#;

/// Brings the database to [`VERSION`]; returns the version it is at.
pub(super) fn migrate(conn: &mut Conn<'_>, location: &str) -> Result<i32, StoreError> {
    let error = |op| move |err: tokio_postgres::Error| pg_error(op, location, &err);
    let tx =
        block_on(conn.pooled_mut().client.transaction()).map_err(error("migrating the schema"))?;
    block_on(tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_NAMESPACE, &MIGRATION_LOCK],
    ))
    .map_err(error("locking the schema for migration"))?;
    block_on(tx.batch_execute(
        "SET LOCAL client_min_messages = warning;
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    integer PRIMARY KEY,
            name       text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    ))
    .map_err(error("creating table schema_migrations"))?;
    let row = block_on(tx.query_one(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        &[],
    ))
    .map_err(error("reading the schema version"))?;
    let found: i32 = row.get(0);
    if found > VERSION {
        return Err(StoreError::Schema {
            found: found as u32,
            supported: VERSION as u32,
        });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > found) {
        tracing::info!(store = %location, version, name, "Migrating the database schema.");
        block_on(tx.batch_execute(sql)).map_err(error("applying a schema migration"))?;
        block_on(tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        ))
        .map_err(error("recording a schema migration"))?;
    }
    block_on(tx.commit()).map_err(error("committing the schema migration"))?;
    Ok(VERSION)
}

/// The version the database is at, or `None` when newswatch has not set it up yet.
pub(super) fn version(conn: &mut Conn<'_>, location: &str) -> Result<Option<i32>, StoreError> {
    let row = block_on(conn.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[]))
        .map_err(|err| pg_error("reading the schema version", location, &err))?;
    if !row.get::<_, bool>(0) {
        return Ok(None);
    }
    let row = block_on(conn.query_one(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        &[],
    ))
    .map_err(|err| pg_error("reading the schema version", location, &err))?;
    Ok(Some(row.get(0)))
}
