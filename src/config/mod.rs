//! Configuration: one TOML file plus `NEWSWATCH__SECTION__KEY` environment overrides,
//! validated into a [`Config`] of typed, compiled values.
//!
//! Loading happens in two steps, as in ripgrep's low/high args: [`raw`] mirrors the file
//! with strings left as written, and [`validate`] turns it into a [`Config`] (durations,
//! sizes, regexes, URLs and queries parsed, ids cross-checked) while collecting every
//! problem, so `newswatch check` can name them all at once. [`load`] does the I/O;
//! [`parse_str`] is the same on a string, for tests.
//!
//! docs/config.md is the contract: every key, its default and rule, the error format,
//! environment overrides and secrets.

mod rate;
pub mod raw;
mod validate;

pub use rate::RateLimit;
pub use validate::validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use crate::model::{Entity, Topic};
use raw::RawConfig;

/// Environment variables overriding config keys start with this, then `__`.
pub const ENV_PREFIX: &str = "NEWSWATCH";

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from; relative `file:` feeds resolve against its folder.
    pub file: PathBuf,
    pub storage: Storage,
    pub poller: Poller,
    pub feeds: Vec<Feed>,
    pub cleaning: Cleaning,
    pub entities: Vec<Entity>,
    pub topics: Vec<Topic>,
    pub sinks: Vec<Sink>,
    /// `[alert]`: the address policy of the sinks' connections.
    pub alert: crate::net::AddressPolicy,
    pub api: Option<Api>,
    pub health: Health,
}

impl Config {
    /// The pipeline this config describes: its cleaning rules, entities and topics.
    /// It lives here, not in `pipeline`, so that the pipeline does not depend on the
    /// config (the config checks patterns and queries with the pipeline's functions).
    pub fn pipeline(&self) -> crate::pipeline::Pipeline {
        use crate::pipeline::{clean::Cleaner, rules::RuleSet, Pipeline};
        Pipeline::new(
            Cleaner::new(
                self.cleaning.split_on.clone(),
                self.cleaning.drop_lines.clone(),
            ),
            RuleSet::new(self.entities.clone(), self.topics.clone()),
        )
    }
}

#[derive(Debug, Clone)]
pub struct Storage {
    /// Where the store lives: the embedded sled directory (the default) or a
    /// PostgreSQL database shared by several daemons.
    pub backend: Backend,
    /// The sled directory, relative to the working directory when not absolute.
    pub path: PathBuf,
    /// How long every processed item is kept.
    pub history: Duration,
    /// How long items that matched a topic are kept.
    pub retention: Duration,
}

/// The storage backend (docs/cluster.md for PostgreSQL).
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    Sled,
    Postgres(Postgres),
}

/// A PostgreSQL store shared by a cluster of daemons.
#[derive(Debug, Clone, PartialEq)]
pub struct Postgres {
    /// `postgres://user@host:port/database`, without a password.
    pub url: String,
    /// The environment variable (or systemd credential) holding the password.
    pub password_env: String,
    /// How long a daemon holds a feed or an alert it claimed; a daemon that dies
    /// loses its claims after this long.
    pub lease: Duration,
    /// Connections each daemon keeps open.
    pub pool: usize,
    /// This daemon's name in leases; by default host name, process id and a random
    /// number, so that a restarted daemon does not take its predecessor's leases.
    pub node: Option<String>,
}

/// The environment variable read for the PostgreSQL password when `password_env` is
/// not set.
pub const DEFAULT_PASSWORD_ENV: &str = "NEWSWATCH_PG_PASSWORD";

/// The shortest `interval` a feed may have: no feed is polled more often, whatever
/// its interval (the poller clamps every delay to it), so a shorter one is refused.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);

/// `[health]`: when a feed counts as failing, stale or gone (docs/config.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// Consecutive failed polls that make a feed `failing`.
    pub failing_after: u32,
    /// A feed is `stale` after this many of its usual gaps without a new item...
    pub stale_after_gaps: u32,
    /// ...and never sooner than this after its last new item.
    pub stale_at_least: Duration,
    /// A feed answering 404 for this long is `gone`.
    pub gone_after: Duration,
    /// The sink told when a feed enters a bad state or recovers.
    pub sink: Option<String>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            failing_after: 3,
            stale_after_gaps: 4,
            stale_at_least: Duration::from_secs(24 * 3600),
            gone_after: Duration::from_secs(7 * 24 * 3600),
            sink: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Poller {
    pub interval: Duration,
    pub concurrency: usize,
    pub per_host: usize,
    pub timeout: Duration,
    pub max_body: u64,
    pub user_agent: String,
    /// Item pages fetched at most per poll of a `full_text` feed.
    pub full_text_pages: usize,
    /// Loopback, private, link-local and metadata addresses may be fetched
    /// (src/net.rs).
    pub allow_private: bool,
    /// Hosts (lowercased names) fetched whatever address they resolve to.
    pub allow_hosts: Vec<String>,
}

impl Poller {
    /// The addresses the poller's fetches may connect to.
    pub fn address_policy(&self) -> crate::net::AddressPolicy {
        crate::net::AddressPolicy {
            allow_private: self.allow_private,
            allow_hosts: self.allow_hosts.clone(),
            section: "poller",
        }
    }
}

/// A feed to poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    pub url: FeedUrl,
    pub name: String,
    /// Overrides the poller's interval.
    pub interval: Option<Duration>,
    pub full_text: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FeedUrl {
    Http(url::Url),
    /// A local file (`file:` URLs), for shipped samples and tests.
    File(PathBuf),
}

impl fmt::Display for FeedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedUrl::Http(url) => write!(f, "{url}"),
            FeedUrl::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cleaning {
    pub split_on: Vec<Regex>,
    pub drop_lines: Vec<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    Webhook,
    Slack,
    Discord,
    Ntfy,
    Log,
}

impl SinkKind {
    /// Every kind, in the order the config's error message lists them.
    pub const ALL: [SinkKind; 5] = [
        SinkKind::Webhook,
        SinkKind::Slack,
        SinkKind::Discord,
        SinkKind::Ntfy,
        SinkKind::Log,
    ];

    /// The name the config writes (`kind = "slack"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Webhook => "webhook",
            SinkKind::Slack => "slack",
            SinkKind::Discord => "discord",
            SinkKind::Ntfy => "ntfy",
            SinkKind::Log => "log",
        }
    }

    pub fn parse(name: &str) -> Option<SinkKind> {
        SinkKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// Where alerts go.
#[derive(Debug, Clone)]
pub struct Sink {
    pub id: String,
    pub kind: SinkKind,
    pub url: Option<url::Url>,
    /// Name of the environment variable holding the signing secret.
    pub secret_env: Option<String>,
    /// Attempts before an alert is `failed`.
    pub max_attempts: u32,
    /// Age after which an undelivered alert is `failed`, whatever its attempts.
    pub max_age: Duration,
    /// The first retry's delay; each further retry waits about twice as long.
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
    /// At most so many messages per period, sent evenly spaced; none when unset.
    pub rate_limit: Option<RateLimit>,
    /// Alerts are collected this long and sent as one digest message; one message
    /// per alert when unset.
    pub digest: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Api {
    pub listen: SocketAddr,
    /// Name of the environment variable (or systemd credential) holding the bearer
    /// token that guards `/api/*`; none leaves the API open.
    pub token_env: Option<String>,
}

/// One problem in a config: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{reason}", file.display(), if key.is_empty() { String::new() } else { format!("{key}: ") })]
pub struct ConfigError {
    pub file: PathBuf,
    /// The key path, like `topics[0].query`; empty for whole-file problems.
    pub key: String,
    pub reason: String,
}

/// Every problem found in a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The config path to use when none is given: `$NEWSWATCH_CONFIG`, else the system
/// path when started by systemd, else `config/newswatch.toml`.
pub fn default_path() -> PathBuf {
    if let Some(path) = std::env::var_os("NEWSWATCH_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    // systemd sets INVOCATION_ID for every unit it starts.
    if std::env::var_os("INVOCATION_ID").is_some() {
        return PathBuf::from("/etc/newswatch/newswatch.toml");
    }
    PathBuf::from("config/newswatch.toml")
}

/// Reads, overrides from the environment, and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            key: String::new(),
            reason: format!("cannot read: {err}"),
        }])
    })?;
    parse_with_env(&text, path, true)
}

/// Validates config text as if read from `file`, without environment overrides.
pub fn parse_str(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    parse_with_env(text, file, false)
}

fn parse_with_env(text: &str, file: &Path, env: bool) -> Result<Config, ConfigErrors> {
    let one = |key: String, reason: String| {
        ConfigErrors(vec![ConfigError {
            file: file.to_path_buf(),
            key,
            reason,
        }])
    };
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml));
    if env {
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__"),
        );
    }
    let value: config::Value = builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|err| one(String::new(), format!("not valid TOML: {err}")))?;
    let shape = shape_errors(&value);
    if !shape.is_empty() {
        return Err(ConfigErrors(
            shape
                .into_iter()
                .map(|(key, reason)| ConfigError {
                    file: file.to_path_buf(),
                    key,
                    reason,
                })
                .collect(),
        ));
    }
    let mut unknown = Vec::new();
    let raw: RawConfig = serde_ignored::deserialize(value, |path| unknown.push(key_of(&path)))
        .map_err(|err| {
            let (key, reason) = split_key(&err.to_string());
            one(key, reason)
        })?;
    let mut errors: Vec<ConfigError> = unknown
        .into_iter()
        .map(|key| {
            let var = format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase());
            let reason = if env && std::env::var_os(&var).is_some() {
                format!("unknown key (set by environment variable {var})")
            } else {
                "unknown key".to_string()
            };
            ConfigError {
                file: file.to_path_buf(),
                key,
                reason,
            }
        })
        .collect();
    match validate(raw, file) {
        Ok(config) if errors.is_empty() => Ok(config),
        Ok(_) => Err(ConfigErrors(errors)),
        Err(ConfigErrors(more)) => {
            errors.extend(more);
            Err(ConfigErrors(errors))
        }
    }
}

/// Keys whose values are text, by section.
const TEXT_KEYS: &[(&str, &[&str])] = &[
    (
        "storage",
        &[
            "backend",
            "path",
            "history",
            "retention",
            "url",
            "password_env",
            "lease",
            "node",
        ],
    ),
    ("poller", &["interval", "timeout", "max_body", "user_agent"]),
    ("api", &["listen", "token_env"]),
    ("health", &["stale_at_least", "gone_after", "sink"]),
];

/// Arrays of tables (`[[feeds]]`), with their text keys and their lists of text.
const TABLE_ARRAYS: &[(&str, &[&str], &[&str])] = &[
    ("feeds", &["url", "name", "interval"], &[]),
    ("entities", &["id", "kind", "name"], &["aliases"]),
    (
        "topics",
        &["id", "name", "query", "update_interval"],
        &["sinks"],
    ),
    (
        "sinks",
        &[
            "id",
            "kind",
            "url",
            "secret_env",
            "max_age",
            "retry_base",
            "retry_max",
            "rate_limit",
            "digest",
        ],
        &[],
    ),
];

/// Values of the wrong shape, found before deserializing: the `config` crate turns a
/// number into text where text is expected (`path = 5` became the directory "5"), and
/// its error for `[feeds]` written as one table named no key.
fn shape_errors(value: &config::Value) -> Vec<(String, String)> {
    use config::ValueKind as K;
    fn what(kind: &K) -> String {
        match kind {
            K::Nil => "nothing".into(),
            K::Boolean(b) => format!("the boolean {b}"),
            K::I64(n) => format!("the number {n}"),
            K::I128(n) => format!("the number {n}"),
            K::U64(n) => format!("the number {n}"),
            K::U128(n) => format!("the number {n}"),
            K::Float(n) => format!("the number {n}"),
            K::String(_) => "text".into(),
            K::Table(_) => "a table".into(),
            K::Array(_) => "an array".into(),
        }
    }
    let mut errors = Vec::new();
    let text = |errors: &mut Vec<(String, String)>, key: String, v: &config::Value| {
        if !matches!(v.kind, K::String(_)) {
            let found = what(&v.kind);
            errors.push((key, format!("must be text in quotes, found {found}")));
        }
    };
    let texts = |errors: &mut Vec<(String, String)>, key: String, v: &config::Value| match &v.kind {
        K::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                text(errors, format!("{key}[{i}]"), item);
            }
        }
        other => errors.push((
            key,
            format!("must be an array of text, found {}", what(other)),
        )),
    };
    let K::Table(root) = &value.kind else {
        return errors;
    };
    for (section, keys) in TEXT_KEYS {
        if let Some(K::Table(table)) = root.get(*section).map(|v| &v.kind) {
            for key in *keys {
                if let Some(v) = table.get(*key) {
                    text(&mut errors, format!("{section}.{key}"), v);
                }
            }
        }
    }
    if let Some(K::Table(cleaning)) = root.get("cleaning").map(|v| &v.kind) {
        for key in ["split_on", "drop_lines"] {
            if let Some(v) = cleaning.get(key) {
                texts(&mut errors, format!("cleaning.{key}"), v);
            }
        }
    }
    for (name, keys, lists) in TABLE_ARRAYS {
        match root.get(*name).map(|v| &v.kind) {
            None => {}
            Some(K::Array(entries)) => {
                for (i, entry) in entries.iter().enumerate() {
                    let K::Table(table) = &entry.kind else {
                        errors.push((
                            format!("{name}[{i}]"),
                            format!("must be a table, found {}", what(&entry.kind)),
                        ));
                        continue;
                    };
                    for key in *keys {
                        if let Some(v) = table.get(*key) {
                            text(&mut errors, format!("{name}[{i}].{key}"), v);
                        }
                    }
                    for key in *lists {
                        if let Some(v) = table.get(*key) {
                            texts(&mut errors, format!("{name}[{i}].{key}"), v);
                        }
                    }
                }
            }
            Some(other) => errors.push((
                name.to_string(),
                format!(
                    "must be an array of tables, each written [[{name}]], found {}",
                    what(other)
                ),
            )),
        }
    }
    errors
}

/// `feeds[0].nmae` from serde_ignored's path.
fn key_of(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", key_of(parent)),
        P::Map { parent, key } => {
            let parent = key_of(parent);
            if parent.is_empty() {
                key.to_string()
            } else {
                format!("{parent}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            key_of(parent)
        }
    }
}

/// The largest `poller.max_body`: far above any real feed, low enough to be a guard.
pub const MAX_BODY_LIMIT: u64 = 1024 * 1024 * 1024;

/// Splits the `config` crate's "<reason> for key `<key>`" into key and reason, so a
/// type error reads `file: key: reason` like every other config error. (serde stops
/// at the first type error, so only one is reported per run.)
fn split_key(message: &str) -> (String, String) {
    if let Some((reason, rest)) = message.rsplit_once(" for key `") {
        if let Some(key) = rest.strip_suffix('`') {
            // The crate writes `feeds[1]name`; the other errors say `feeds[1].name`.
            let mut dotted = String::with_capacity(key.len() + 4);
            let mut after_index = false;
            for c in key.chars() {
                if after_index && c != '.' && c != '[' {
                    dotted.push('.');
                }
                after_index = c == ']';
                dotted.push(c);
            }
            return (dotted, reason.to_string());
        }
    }
    (String::new(), message.to_string())
}
