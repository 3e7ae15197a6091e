//! The config file as written: serde structs mirroring the TOML, strings left raw.
//!
//! Durations, sizes, regexes and queries stay strings here so that validation in
//! [`super`] can check them all and report every error at once, each with its key,
//! instead of stopping at the first one as a typed deserialiser would.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    pub storage: RawStorage,
    pub poller: RawPoller,
    pub feeds: Vec<RawFeed>,
    pub cleaning: RawCleaning,
    pub entities: Vec<RawEntity>,
    pub topics: Vec<RawTopic>,
    pub sinks: Vec<RawSink>,
    pub alert: RawAlert,
    pub api: Option<RawApi>,
    pub health: RawHealth,
}

/// `[alert]`: what every sink's connections may reach.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawAlert {
    pub allow_private: bool,
    pub allow_hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawStorage {
    pub backend: String,
    pub path: String,
    pub history: String,
    pub retention: String,
    pub url: Option<String>,
    pub password_env: Option<String>,
    pub lease: String,
    pub pool: u32,
    pub node: Option<String>,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            backend: "sled".into(),
            path: "data".into(),
            history: "7d".into(),
            retention: "90d".into(),
            url: None,
            password_env: None,
            lease: "60s".into(),
            pool: 4,
            node: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawPoller {
    pub interval: String,
    pub concurrency: u32,
    pub per_host: u32,
    pub timeout: String,
    pub max_body: String,
    pub user_agent: Option<String>,
    pub full_text_pages: u32,
    pub allow_private: bool,
    pub allow_hosts: Vec<String>,
}

impl Default for RawPoller {
    fn default() -> Self {
        RawPoller {
            interval: "5m".into(),
            concurrency: 32,
            per_host: 2,
            timeout: "20s".into(),
            max_body: "8MiB".into(),
            user_agent: None,
            full_text_pages: 10,
            allow_private: false,
            allow_hosts: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RawFeed {
    pub url: String,
    pub name: Option<String>,
    pub interval: Option<String>,
    #[serde(default)]
    pub full_text: bool,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawCleaning {
    pub split_on: Vec<String>,
    pub drop_lines: Vec<String>,
}

impl Default for RawCleaning {
    fn default() -> Self {
        RawCleaning {
            split_on: vec![r"^={5,}\s*$".into()],
            drop_lines: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RawEntity {
    pub id: String,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawTopic {
    pub id: String,
    pub name: Option<String>,
    pub query: String,
    pub min_score: Option<f64>,
    #[serde(default)]
    pub sinks: Vec<String>,
    /// `story.updated` follow-ups for this topic's stories that grow.
    pub updates: Option<bool>,
    pub grow_by: Option<i64>,
    pub update_interval: Option<String>,
    pub backfill: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawSink {
    pub id: String,
    pub kind: String,
    pub url: Option<String>,
    pub secret_env: Option<String>,
    pub max_attempts: Option<u32>,
    pub max_age: Option<String>,
    pub retry_base: Option<String>,
    pub retry_max: Option<String>,
    pub rate_limit: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawApi {
    pub listen: String,
    pub token_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawHealth {
    pub failing_after: u32,
    pub stale_after_gaps: u32,
    pub stale_at_least: String,
    pub gone_after: String,
    pub sink: Option<String>,
}

impl Default for RawHealth {
    fn default() -> Self {
        RawHealth {
            failing_after: 3,
            stale_after_gaps: 4,
            stale_at_least: "1d".into(),
            gone_after: "7d".into(),
            sink: None,
        }
    }
}
