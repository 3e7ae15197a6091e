//! Process-wide metrics: counters, gauges and one histogram, rendered in the
//! Prometheus text exposition format (version 0.0.4) for `GET /metrics`.
//!
//! The stages record what happens as it happens, through [`global`]: the poller each
//! fetch's outcome and how late a due poll started, the alert workers each delivery
//! attempt and its latency, the daemon the items it processed and stored. Gauges that
//! describe the store (pending alerts, stored items, feeds by health state) are
//! refreshed by the API from the store just before it renders, so they are never older
//! than the scrape.
//!
//! Recording must never slow a hot path or fail: plain counters and gauges are
//! atomics; labelled families sit behind a small mutex held only to bump one entry
//! (label values come from the config, so a family has a handful of entries). The
//! `newswatch_` prefix and the names below are the contract with dashboards: add
//! metrics, never rename them. docs/service.md ("Metrics") lists them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// Upper bounds, in seconds, of the `alert_delivery_seconds` buckets (plus `+Inf`).
pub const DELIVERY_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The outcomes of `feed_fetches_total`, always exported (at 0 until they happen) so
/// that a rate over them works from the first scrape.
pub const FETCH_OUTCOMES: [&str; 4] = ["fetched", "not_modified", "failed", "gone"];

/// The feed health states of `feeds_by_state` (`crate::store::FeedHealth`), always
/// exported.
pub const FEED_STATES: [&str; 5] = ["ok", "stale", "failing", "gone", "moved"];
/// The stages of `panics_total`: reading a feed body, a feed's poll as a whole, and
/// processing a feed's items (`crate::isolate` catches them; the feed fails alone).
pub const PANIC_STAGES: [&str; 3] = ["parse", "poll", "process"];

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics. The first call fixes `start_time_seconds`, so the daemon
/// should touch it at startup (any recording call does).
pub fn global() -> &'static Metrics {
    &GLOBAL
}

/// Every metric newswatch exports. One per process through [`global`]; tests may make
/// their own with [`Metrics::new`].
#[derive(Debug)]
pub struct Metrics {
    /// Seconds since the Unix epoch when this registry was made.
    started: f64,
    fetches: Family,
    panics: Family,
    full_text: Family,
    repairs: AtomicU64,
    items_processed: AtomicU64,
    items_stored: AtomicU64,
    topic_matches: Family,
    alerts: Family,
    delivery: Histogram,
    /// `f64` bits, in seconds.
    poll_lag: AtomicU64,
    feeds: AtomicU64,
    /// Configured feeds by health state, refreshed before each scrape.
    feed_health: Mutex<BTreeMap<&'static str, u64>>,
    feed_health_changes: Family,
    alerts_pending: AtomicU64,
    store_items: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let fetches = Family::new(&["outcome"]);
        for outcome in FETCH_OUTCOMES {
            fetches.add(&[outcome], 0);
        }
        let panics = Family::new(&["stage"]);
        for stage in PANIC_STAGES {
            panics.add(&[stage], 0);
        }
        Metrics {
            started: unix_seconds(SystemTime::now()),
            fetches,
            panics,
            full_text: {
                let family = Family::new(&["outcome"]);
                for outcome in ["extracted", "kept_summary", "failed"] {
                    family.add(&[outcome], 0);
                }
                family
            },
            repairs: AtomicU64::new(0),
            items_processed: AtomicU64::new(0),
            items_stored: AtomicU64::new(0),
            topic_matches: Family::new(&["topic"]),
            alerts: Family::new(&["sink", "outcome"]),
            delivery: Histogram::new(),
            poll_lag: AtomicU64::new(0f64.to_bits()),
            feeds: AtomicU64::new(0),
            feed_health: Mutex::new(FEED_STATES.iter().map(|s| (*s, 0)).collect()),
            feed_health_changes: Family::new(&["state"]),
            alerts_pending: AtomicU64::new(0),
            store_items: AtomicU64::new(0),
        }
    }

    /// One feed fetch ended with `outcome`: one of [`FETCH_OUTCOMES`].
    pub fn fetch(&self, outcome: &str) {
        self.fetches.add(&[outcome], 1);
    }

    /// A panic while handling one feed was caught and made that feed's error;
    /// `stage` is one of [`PANIC_STAGES`].
    pub fn panicked(&self, stage: &str) {
        self.panics.add(&[stage], 1);
    }

    /// One item page fetched for a `full_text` feed ended with `outcome`: `extracted`
    /// (its text replaced the summary), `kept_summary` (it held less text than the
    /// summary) or `failed` (it could not be fetched).
    pub fn full_text(&self, outcome: &str) {
        self.full_text.add(&[outcome], 1);
    }

    /// `n` repairs were needed to read a malformed feed.
    pub fn feed_repairs(&self, n: u64) {
        self.repairs.fetch_add(n, Relaxed);
    }

    /// One feed's poll, as the poller reports it: its fetch outcome (`fetched`,
    /// `not_modified`, `failed`, `gone`: `PollOutcome::label`) and the repairs its
    /// reading needed.
    pub fn polled(&self, outcome: &str, repairs: u32) {
        self.feed_repairs(u64::from(repairs));
        self.fetch(outcome);
    }

    /// One new item went through the pipeline.
    pub fn item_processed(&self) {
        self.items_processed.fetch_add(1, Relaxed);
    }

    /// `n` new items were stored.
    pub fn item_stored(&self, n: usize) {
        self.items_stored.fetch_add(n as u64, Relaxed);
    }

    /// An item matched `topic`.
    pub fn topic_matched(&self, topic: &str) {
        self.topic_matches.add(&[topic], 1);
    }

    /// One delivery attempt to `sink` ended with `outcome`: `delivered`, `retry` or
    /// `failed`.
    pub fn alert(&self, sink: &str, outcome: &str) {
        self.alerts.add(&[sink, outcome], 1);
    }

    /// An alert was delivered this long after it was created.
    pub fn delivery_latency(&self, latency: Duration) {
        self.delivery.observe(latency);
    }

    /// One delivery attempt of an alert created at `created`, as the alert worker
    /// records it: its outcome (`delivered`, `retry`, `failed`: `Attempt::label`) and,
    /// once delivered at `delivered`, its latency.
    pub fn delivery(
        &self,
        sink: &str,
        created: DateTime<Utc>,
        outcome: &str,
        delivered: Option<DateTime<Utc>>,
    ) {
        if let Some(at) = delivered {
            // A clock stepped back between creation and delivery counts as instant.
            self.delivery_latency((at - created).to_std().unwrap_or(Duration::ZERO));
        }
        self.alert(sink, outcome);
    }

    /// The most recent due poll started this late.
    pub fn poll_lag(&self, lag: Duration) {
        self.poll_lag.store(lag.as_secs_f64().to_bits(), Relaxed);
    }

    /// A poll due at `due` started at `started`. Lag is counted from this process's
    /// start at the earliest: a feed that fell due while the daemon was stopped is not
    /// late because of the poller, and reporting the downtime would hide real lag.
    /// A feed polled for the first time (no `due`) has no lag to report.
    pub fn poll_started(&self, due: Option<DateTime<Utc>>, started: DateTime<Utc>) {
        let Some(due) = due else { return };
        let due_secs = due.timestamp_millis() as f64 / 1000.0;
        let started_secs = started.timestamp_millis() as f64 / 1000.0;
        let lag = started_secs - due_secs.max(self.started);
        // Early or on time is no lag; the conversion cannot fail for a finite, non-negative value.
        let lag = Duration::try_from_secs_f64(lag.max(0.0)).unwrap_or(Duration::ZERO);
        self.poll_lag(lag);
    }

    /// Feeds in the config.
    pub fn set_feeds(&self, n: usize) {
        self.feeds.store(n as u64, Relaxed);
    }

    /// How many configured feeds are in each health state; a state not named is 0.
    pub fn set_feed_health<'a>(&self, counts: impl IntoIterator<Item = (&'a str, usize)>) {
        let mut map = self
            .feed_health
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for value in map.values_mut() {
            *value = 0;
        }
        for (state, n) in counts {
            if let Some(&known) = FEED_STATES.iter().find(|s| **s == state) {
                *map.entry(known).or_insert(0) += n as u64;
            }
        }
    }

    /// A feed entered health state `state` (`ok` when it recovered).
    pub fn feed_health_changed(&self, state: &str) {
        self.feed_health_changes.add(&[state], 1);
    }

    /// Alerts waiting for delivery.
    pub fn set_alerts_pending(&self, n: usize) {
        self.alerts_pending.store(n as u64, Relaxed);
    }

    /// Items in the store.
    pub fn set_store_items(&self, n: usize) {
        self.store_items.store(n as u64, Relaxed);
    }

    /// Every metric in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let o = &mut out;

        header(
            o,
            "build_info",
            "The running build; the value is always 1.",
            "gauge",
        );
        sample(
            o,
            "build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            "1",
        );
        header(
            o,
            "start_time_seconds",
            "When the process started, in seconds since the Unix epoch.",
            "gauge",
        );
        sample(o, "start_time_seconds", &[], &float(self.started));

        header(
            o,
            "feed_fetches_total",
            "Feed fetches by outcome: fetched, not_modified, failed or gone.",
            "counter",
        );
        self.fetches.render(o, "feed_fetches_total");
        header(
            o,
            "panics_total",
            "Panics caught while handling one feed (by stage: parse, poll, process); the feed failed, the rest went on.",
            "counter",
        );
        self.panics.render(o, "panics_total");
        header(
            o,
            "full_text_pages_total",
            "Item pages fetched for full_text feeds, by outcome: extracted, kept_summary or failed.",
            "counter",
        );
        self.full_text.render(o, "full_text_pages_total");
        counter(
            o,
            "feed_repairs_total",
            "Repairs applied to read malformed feeds.",
            &self.repairs,
        );
        counter(
            o,
            "items_processed_total",
            "New items that went through the pipeline.",
            &self.items_processed,
        );
        counter(
            o,
            "items_stored_total",
            "New items written to the store.",
            &self.items_stored,
        );
        header(
            o,
            "topic_matches_total",
            "Items that matched each topic.",
            "counter",
        );
        self.topic_matches.render(o, "topic_matches_total");
        header(
            o,
            "alerts_total",
            "Alert delivery attempts by sink and outcome: delivered, retry or failed.",
            "counter",
        );
        self.alerts.render(o, "alerts_total");
        header(
            o,
            "alert_delivery_seconds",
            "Time from an alert's creation to its delivery.",
            "histogram",
        );
        self.delivery.render(o, "alert_delivery_seconds");

        header(
            o,
            "poll_lag_seconds",
            "How late the most recent due poll started.",
            "gauge",
        );
        sample(
            o,
            "poll_lag_seconds",
            &[],
            &float(f64::from_bits(self.poll_lag.load(Relaxed))),
        );
        gauge(o, "feeds", "Feeds in the config.", &self.feeds);
        header(
            o,
            "feeds_by_state",
            "Feeds in the config by health state: ok, stale, failing, gone or moved.",
            "gauge",
        );
        let by_state: Vec<(&str, u64)> = self
            .feed_health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        for (state, n) in by_state {
            sample(o, "feeds_by_state", &[("state", state)], &n.to_string());
        }
        header(
            o,
            "feed_health_changes_total",
            "Feeds entering a health state (ok: recovered), counted once per change.",
            "counter",
        );
        self.feed_health_changes
            .render(o, "feed_health_changes_total");
        gauge(
            o,
            "alerts_pending",
            "Alerts waiting for delivery.",
            &self.alerts_pending,
        );
        gauge(o, "store_items", "Items in the store.", &self.store_items);
        out
    }
}

/// A counter family with labels, keyed by label values in label order. A `BTreeMap`
/// keeps the rendered order stable from scrape to scrape.
#[derive(Debug)]
struct Family {
    labels: &'static [&'static str],
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl Family {
    fn new(labels: &'static [&'static str]) -> Family {
        Family {
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    fn add(&self, values: &[&str], n: u64) {
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        // Held only to bump one entry, which cannot panic: a poisoned map is still
        // a consistent map.
        let mut map = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(key).or_insert(0);
        *entry = entry.saturating_add(n);
    }

    fn render(&self, out: &mut String, name: &str) {
        // Copied out so rendering (and the scrape's slowness) never holds the lock.
        let values: Vec<(Vec<String>, u64)> = self
            .values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (key, value) in values {
            let labels: Vec<(&str, &str)> = self
                .labels
                .iter()
                .copied()
                .zip(key.iter().map(String::as_str))
                .collect();
            sample(out, name, &labels, &value.to_string());
        }
    }
}

/// A histogram over [`DELIVERY_BUCKETS`]: per-bucket counts (not cumulative, so one
/// observation is one atomic add) and the sum in microseconds.
#[derive(Debug)]
struct Histogram {
    /// One per bound, then `+Inf`.
    buckets: [AtomicU64; DELIVERY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        let index = DELIVERY_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(DELIVERY_BUCKETS.len());
        self.buckets[index].fetch_add(1, Relaxed);
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, count) in self.buckets.iter().enumerate() {
            cumulative += count.load(Relaxed);
            let le = DELIVERY_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| float(*b));
            sample(out, &bucket, &[("le", &le)], &cumulative.to_string());
        }
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        sample(out, &format!("{name}_sum"), &[], &float(sum));
        // The count is the `+Inf` bucket read above, so the two always agree even
        // while observations arrive during the scrape.
        sample(out, &format!("{name}_count"), &[], &cumulative.to_string());
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: &AtomicU64) {
    header(out, name, help, "counter");
    sample(out, name, &[], &value.load(Relaxed).to_string());
}

fn gauge(out: &mut String, name: &str, help: &str, value: &AtomicU64) {
    header(out, name, help, "gauge");
    sample(out, name, &[], &value.load(Relaxed).to_string());
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP newswatch_{name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE newswatch_{name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str("newswatch_");
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            out.push_str(&escape_label(value));
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// A label value as the format requires: backslash, double quote and line feed
/// escaped. Any other character, Unicode included, is written as it is.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text: backslash and line feed escaped (quotes are literal there).
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: Rust's shortest round-trip decimal, with the format's spelling of
/// the special values (Rust would write `inf`).
fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        value.to_string()
    }
}

fn unix_seconds(at: SystemTime) -> f64 {
    // A clock before 1970 is a broken clock; 0 says so plainly.
    at.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_parse::{Scrape, Value};

    fn parse(text: &str) -> Scrape {
        Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
    }

    fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
        match &found.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name} is not a scalar: {other:?}"),
        }
    }

    #[test]
    fn render_parses_and_carries_every_metric() {
        let m = Metrics::new();
        m.polled("fetched", 2);
        m.polled("not_modified", 0);
        m.polled("failed", 0);
        m.polled("gone", 0);
        m.fetch("fetched");
        m.item_processed();
        m.item_processed();
        m.item_stored(2);
        m.topic_matched("ceasefire-talks");
        m.topic_matched("ceasefire-talks");
        m.topic_matched("energy");
        m.alert("hook", "retry");
        m.set_feeds(7);
        m.set_feed_health([("ok", 4), ("failing", 2), ("moved", 1), ("bogus", 9)]);
        m.feed_health_changed("failing");
        m.set_alerts_pending(3);
        m.set_store_items(42);
        m.poll_lag(Duration::from_millis(1500));
        let created = Utc::now();
        m.delivery(
            "hook",
            created,
            "delivered",
            Some(created + chrono::Duration::milliseconds(30)),
        );
        m.delivery_latency(Duration::from_secs(3600));
        m.panicked("parse");

        let text = m.render();
        let scrape = parse(&text);
        let v = |name: &str, labels: &[(&str, &str)]| value(&scrape, name, labels);
        assert_eq!(
            v("newswatch_feed_fetches_total", &[("outcome", "fetched")]),
            2.0
        );
        for outcome in ["not_modified", "failed", "gone"] {
            assert_eq!(
                v("newswatch_feed_fetches_total", &[("outcome", outcome)]),
                1.0
            );
        }
        assert_eq!(v("newswatch_panics_total", &[("stage", "parse")]), 1.0);
        assert_eq!(v("newswatch_panics_total", &[("stage", "process")]), 0.0);
        assert_eq!(v("newswatch_feed_repairs_total", &[]), 2.0);
        assert_eq!(v("newswatch_items_processed_total", &[]), 2.0);
        assert_eq!(v("newswatch_items_stored_total", &[]), 2.0);
        assert_eq!(
            v(
                "newswatch_topic_matches_total",
                &[("topic", "ceasefire-talks")]
            ),
            2.0
        );
        assert_eq!(
            v("newswatch_topic_matches_total", &[("topic", "energy")]),
            1.0
        );
        assert_eq!(
            v(
                "newswatch_alerts_total",
                &[("sink", "hook"), ("outcome", "delivered")]
            ),
            1.0
        );
        assert_eq!(
            v(
                "newswatch_alerts_total",
                &[("sink", "hook"), ("outcome", "retry")]
            ),
            1.0
        );
        assert_eq!(v("newswatch_poll_lag_seconds", &[]), 1.5);
        assert_eq!(v("newswatch_feeds", &[]), 7.0);
        for (state, n) in [
            ("ok", 4.0),
            ("stale", 0.0),
            ("failing", 2.0),
            ("gone", 0.0),
            ("moved", 1.0),
        ] {
            assert_eq!(
                v("newswatch_feeds_by_state", &[("state", state)]),
                n,
                "{state}"
            );
        }
        assert_eq!(
            v(
                "newswatch_feed_health_changes_total",
                &[("state", "failing")]
            ),
            1.0
        );
        assert_eq!(v("newswatch_alerts_pending", &[]), 3.0);
        assert_eq!(v("newswatch_store_items", &[]), 42.0);
        assert_eq!(
            v(
                "newswatch_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            1.0
        );
        assert!(v("newswatch_start_time_seconds", &[]) > 1.6e9);

        let histogram = scrape
            .samples
            .iter()
            .find(|s| s.metric == "newswatch_alert_delivery_seconds")
            .expect("the delivery histogram");
        let Value::Histogram(buckets) = &histogram.value else {
            panic!("not a histogram: {histogram:?}");
        };
        assert_eq!(buckets.len(), DELIVERY_BUCKETS.len() + 1);
        let at = |le: f64| buckets.iter().find(|b| b.less_than == le).unwrap().count;
        assert_eq!(at(0.025), 0.0);
        assert_eq!(at(0.05), 1.0, "30 ms falls in the 0.05 bucket");
        assert_eq!(at(60.0), 1.0, "an hour is beyond the last bound");
        assert_eq!(at(f64::INFINITY), 2.0);
        assert_eq!(v("newswatch_alert_delivery_seconds_count", &[]), 2.0);
        assert_eq!(v("newswatch_alert_delivery_seconds_sum", &[]), 3600.03);

        // Every family has its HELP and TYPE.
        for name in [
            "feed_fetches_total",
            "panics_total",
            "feed_repairs_total",
            "items_processed_total",
            "items_stored_total",
            "topic_matches_total",
            "alerts_total",
            "alert_delivery_seconds",
            "poll_lag_seconds",
            "feeds",
            "feeds_by_state",
            "feed_health_changes_total",
            "alerts_pending",
            "store_items",
            "build_info",
            "start_time_seconds",
        ] {
            assert!(
                text.contains(&format!("# HELP newswatch_{name} ")),
                "{name}"
            );
            assert!(
                text.contains(&format!("# TYPE newswatch_{name} ")),
                "{name}"
            );
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"plain"#), "plain");
        assert_eq!(escape_label("a\"b"), r#"a\"b"#);
        assert_eq!(escape_label(r"C:\dir"), r"C:\\dir");
        assert_eq!(escape_label("two\nlines"), r"two\nlines");
        assert_eq!(escape_label("Zürich — “quotes”"), "Zürich — “quotes”");

        let m = Metrics::new();
        m.topic_matched("say \"hi\"\\\nbye");
        m.topic_matched("next");
        let text = m.render();
        assert!(
            text.contains(r#"newswatch_topic_matches_total{topic="say \"hi\"\\\nbye"} 1"#),
            "{text}"
        );
        // The line feed stayed escaped: every sample is still one line, and the
        // sample after it parses.
        let scrape = parse(&text);
        assert_eq!(
            value(
                &scrape,
                "newswatch_topic_matches_total",
                &[("topic", "next")]
            ),
            1.0
        );
        let samples = scrape
            .samples
            .iter()
            .filter(|s| s.metric == "newswatch_topic_matches_total")
            .count();
        assert_eq!(samples, 2);
    }

    #[test]
    fn poll_lag_counts_from_process_start_at_the_earliest() {
        let m = Metrics::new();
        // Ten seconds after this registry was made.
        let now = Utc::now() + chrono::Duration::seconds(10);
        let lag = |m: &Metrics| f64::from_bits(m.poll_lag.load(Relaxed));
        m.poll_started(Some(now - chrono::Duration::seconds(2)), now);
        assert!((lag(&m) - 2.0).abs() < 0.01, "{}", lag(&m));
        m.poll_started(Some(now + chrono::Duration::seconds(5)), now);
        assert_eq!(lag(&m), 0.0, "an early poll has no lag");
        // Due a day ago, before this process started: only the time since start counts.
        m.poll_started(Some(now - chrono::Duration::days(1)), now);
        assert!(lag(&m) < 60.0, "{}", lag(&m));
        // A first poll has no due time and leaves the gauge alone.
        m.poll_lag(Duration::from_secs(7));
        m.poll_started(None, now);
        assert_eq!(lag(&m), 7.0);
    }

    #[test]
    fn special_floats_use_the_format_spelling() {
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(0.005), "0.005");
        assert_eq!(float(60.0), "60");
    }
}
