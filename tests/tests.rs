//! Integration tests: the real `newswatch` binary on real files and configs.
//!
//! One test binary (as ripgrep does), so the crate links once; each module below is
//! one area of behaviour.

// Helpers: run the binary (bounded, one way), daemons, the feed server, a webhook
// receiver, stored items and alerts, fixtures, temporary configs, PostgreSQL databases.
mod util;

// `newswatch scan`: articles, entities and topics from fixtures of every kind.
mod scan;
// Article extraction: the main text of 30 real news pages, by token F1.
mod extraction;
// Full text for summary-only feeds through the binary; loopback and redirects refused.
mod full_text;
// `newswatch check`: the shipped config is valid; broken ones name every error.
mod check;
// `newswatch once` and `run`: polling a loopback server into a sled store, restarts.
mod daemon;
// Alerts: webhook contract and signatures, outages, crashes, rejections and replay.
mod alerts;
// The seed documents in ../shared, when present (the project never depends on them).
mod seeds;
// Hostile input for `scan`: binary, broken encodings, huge and deep files, bad configs.
mod hostile;
// The poller against a real HTTP server: conditional GET, backoff, limits, hostile servers.
mod poll;
// Running under systemd: readiness, status and watchdog notifications, reload, stop.
mod service;
// The HTTP API: health, metrics, items and alerts over a real store, the bearer token.
mod api;
// Feed health: `newswatch feeds`, `/api/feeds`, the per-state metric, transitions.
mod health;
// `newswatch backtest`, `/api/backtest` and topic backfills on reload, on both stores.
mod backtest;
// The store on bad days: a full disk, a snapshot cut short, a damaged record.
mod store;
// Every feed format and encoding: one fixture each, with the items it must give.
mod formats;
// Seeded byte mutations of every fixture through decoding, parsing and the pipeline.
mod mutation;
// The module layout: no import cycles.
mod layout;
// The PostgreSQL test server and databases of util/pg.rs, which the cluster tests stand on.
mod pg_harness;
// Follow-ups through the real binary: stories that grow, items that change.
mod updates;
// The PostgreSQL store as two daemons of a cluster see it: leases, claims, stories.
mod pg_store;
// Three daemons on one PostgreSQL database: feed leases, a killed and a paused daemon,
// one alert per story across daemons.
mod cluster;
