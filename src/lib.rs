//! newswatch: a streaming news monitor.
//!
//! Feeds are polled, every item goes through one pipeline of cleaning, entity and topic
//! rules, and items that match a tracked topic are stored and raised as alerts.
//!
//! # Layout
//!
//! - [`config`]: the TOML file and environment overrides, validated into a [`config::Config`];
//! - [`parse`]: bytes of a feed, a web page or a text file into documents and items;
//! - [`pipeline`]: cleaning, entities and topics; pure functions, text in, findings out;
//! - [`par`]: work spread over the cores, results in input order (`scan` over files, a feed's items);
//! - [`model`]: the domain types the stages pass between them;
//! - [`query`]: the topic query language, text to a tree with errors at a column (the
//!   config checks queries with it, the pipeline evaluates the trees);
//! - [`markup`]: escaping plain text for HTML and Slack markup;
//! - [`net`]: which addresses HTTP clients may connect to (no loopback or private ones by default);
//! - [`identity`]: item ids: a feed-scoped GUID, the canonical URL, or a hash of title and date;
//! - [`health`]: a feed's health (ok, stale, failing, gone, moved) from its stored state, and its transitions;
//! - [`poller`]: fetching feeds when due (conditional GET, backoff, limits) and reading them liberally;
//! - [`store`]: the embedded sled store: items, seen ids, topic index, stories, feed state;
//! - [`alert`]: from a stored topic match to a delivered notification (outbox, sinks, retries);
//! - [`backtest`]: the daemon's topic rules over stored items: `backtest`, `/api/backtest` and backfills;
//! - [`daemon`]: the wiring of poller, pipeline and store for `once` and `run`;
//! - [`api`]: the HTTP API on `api.listen`: `/healthz`, `/metrics`, `/api/items`, `/api/alerts`;
//! - [`metrics`]: process-wide counters and gauges, rendered for Prometheus;
//! - [`service`]: running under systemd: SIGTERM/SIGINT/SIGHUP, and `sd_notify` readiness, status and watchdog;
//! - [`cli`]: the command line, a thin layer over the stages.

pub mod alert;
pub mod api;
pub mod backtest;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod health;
pub mod identity;
pub mod isolate;
pub mod markup;
pub mod metrics;
pub mod model;
pub mod net;
pub mod par;
pub mod parse;
pub mod pipeline;
pub mod poller;
pub mod query;
pub mod service;
pub mod store;
pub mod view;
