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

pub use rate::RateLimit;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use crate::model::{Entity, EntityKind, Topic};
use crate::pipeline::rules::entity_refs;
use crate::pipeline::text::pattern_forms;
use crate::query;
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
    pub api: Option<Api>,
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
    /// The sled directory, relative to the working directory when not absolute.
    pub path: PathBuf,
    /// How long every processed item is kept.
    pub history: Duration,
    /// How long items that matched a topic are kept.
    pub retention: Duration,
}

#[derive(Debug, Clone)]
pub struct Poller {
    pub interval: Duration,
    pub concurrency: usize,
    pub per_host: usize,
    pub timeout: Duration,
    pub max_body: u64,
    pub user_agent: String,
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
    ("storage", &["path", "history", "retention"]),
    ("poller", &["interval", "timeout", "max_body", "user_agent"]),
    ("api", &["listen", "token_env"]),
];

/// Arrays of tables (`[[feeds]]`), with their text keys and their lists of text.
const TABLE_ARRAYS: &[(&str, &[&str], &[&str])] = &[
    ("feeds", &["url", "name", "interval"], &[]),
    ("entities", &["id", "kind", "name"], &["aliases"]),
    ("topics", &["id", "name", "query"], &["sinks"]),
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

/// Collects problems while validation goes on.
struct Problems<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
}

/// The largest `poller.max_body`: far above any real feed, low enough to be a guard.
pub const MAX_BODY_LIMIT: u64 = 1024 * 1024 * 1024;

impl Problems<'_> {
    fn add(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            key: key.into(),
            reason: reason.into(),
        });
    }

    fn duration(&mut self, key: &str, text: &str) -> Duration {
        match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.add(key, "must be longer than zero");
                Duration::from_secs(1)
            }
            Err(err) => {
                self.add(
                    key,
                    format!("{text:?} is not a duration like \"90s\", \"5m\" or \"7d\": {err}"),
                );
                Duration::from_secs(1)
            }
        }
    }

    /// A size of at most `max` bytes. Sizes are guards (a cap on a body); a huge one
    /// (`999999999999999TiB` saturates) would switch the guard off without a word.
    fn size(&mut self, key: &str, text: &str, max: u64) -> u64 {
        match text.trim().parse::<bytesize::ByteSize>() {
            Ok(size) if size.as_u64() > max => {
                self.add(
                    key,
                    format!(
                        "{text:?} is larger than the most allowed, {}",
                        bytesize::ByteSize(max).to_string_as(true)
                    ),
                );
                max
            }
            Ok(size) if size.as_u64() > 0 => size.as_u64(),
            Ok(_) => {
                self.add(key, "must be larger than zero");
                1
            }
            Err(err) => {
                self.add(
                    key,
                    format!("{text:?} is not a size like \"8MiB\" or \"512KB\": {err}"),
                );
                1
            }
        }
    }

    fn regexes(&mut self, key: &str, patterns: &[String]) -> Vec<Regex> {
        let mut out = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            match Regex::new(pattern) {
                // A rule that matches an empty line would split (or drop) at every
                // blank line: never what was meant, and `''` is an easy slip.
                Ok(re) if re.is_match("") => self.add(
                    format!("{key}[{i}]"),
                    format!(
                        "{pattern:?} matches an empty line, so it would apply to every blank line"
                    ),
                ),
                Ok(re) => out.push(re),
                Err(err) => self.add(
                    format!("{key}[{i}]"),
                    format!("bad regex {pattern:?}: {err}"),
                ),
            }
        }
        out
    }

    /// Records `id` under `key`, and an error when it is empty or seen before.
    fn unique_id(&mut self, seen: &mut HashSet<String>, key: &str, id: &str) {
        if id.is_empty() {
            self.add(key, "must not be empty");
        } else if !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'))
        {
            self.add(
                key,
                format!("{id:?} must be lower-case letters, digits, '-' or '_'"),
            );
        } else if !seen.insert(id.to_string()) {
            self.add(key, format!("duplicate id {id:?}"));
        }
    }
}

/// Turns a raw config into a validated one, or every reason it is not valid.
pub fn validate(raw: RawConfig, file: &Path) -> Result<Config, ConfigErrors> {
    let mut p = Problems {
        file,
        errors: Vec::new(),
    };

    let storage = Storage {
        path: PathBuf::from(&raw.storage.path),
        history: p.duration("storage.history", &raw.storage.history),
        retention: p.duration("storage.retention", &raw.storage.retention),
    };
    if raw.storage.path.trim().is_empty() {
        p.add("storage.path", "must not be empty");
    }

    let poller = Poller {
        interval: p.duration("poller.interval", &raw.poller.interval),
        concurrency: raw.poller.concurrency as usize,
        per_host: raw.poller.per_host as usize,
        timeout: p.duration("poller.timeout", &raw.poller.timeout),
        max_body: p.size("poller.max_body", &raw.poller.max_body, MAX_BODY_LIMIT),
        user_agent: raw
            .poller
            .user_agent
            .unwrap_or_else(|| format!("newswatch/{}", env!("CARGO_PKG_VERSION"))),
    };
    if poller.concurrency == 0 {
        p.add("poller.concurrency", "must be at least 1");
    }
    if poller.per_host == 0 {
        p.add("poller.per_host", "must be at least 1");
    }

    let base = file.parent().unwrap_or(Path::new("."));
    let mut feeds = Vec::new();
    let mut feed_urls = HashSet::new();
    for (i, f) in raw.feeds.iter().enumerate() {
        let key = format!("feeds[{i}]");
        let url = match feed_url(&f.url, base) {
            Ok(url) => url,
            Err(reason) => {
                p.add(format!("{key}.url"), reason);
                continue;
            }
        };
        if !feed_urls.insert(url.to_string()) {
            p.add(format!("{key}.url"), format!("duplicate feed {}", f.url));
        }
        let interval = f
            .interval
            .as_deref()
            .map(|d| p.duration(&format!("{key}.interval"), d));
        let name = f
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| match &url {
                FeedUrl::Http(u) => u.host_str().unwrap_or("feed").to_string(),
                FeedUrl::File(path) => path
                    .file_name()
                    .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned()),
            });
        feeds.push(Feed {
            url,
            name,
            interval,
            full_text: f.full_text,
        });
    }

    let cleaning = Cleaning {
        split_on: p.regexes("cleaning.split_on", &raw.cleaning.split_on),
        drop_lines: p.regexes("cleaning.drop_lines", &raw.cleaning.drop_lines),
    };

    let mut entities = Vec::new();
    let mut entity_ids = HashSet::new();
    // Folded alias → the entity that owns it; one spelling naming two entities would
    // make every mention ambiguous.
    let mut alias_owner: HashMap<(String, bool), String> = HashMap::new();
    for (i, e) in raw.entities.iter().enumerate() {
        let key = format!("entities[{i}]");
        p.unique_id(&mut entity_ids, &format!("{key}.id"), &e.id);
        let kind = EntityKind::parse(&e.kind).unwrap_or_else(|| {
            p.add(
                format!("{key}.kind"),
                format!("{:?} is not one of person, place, org, other", e.kind),
            );
            EntityKind::Other
        });
        if e.name.trim().is_empty() {
            p.add(format!("{key}.name"), "must not be empty");
        }
        let mut aliases = vec![e.name.clone()];
        aliases.extend(e.aliases.iter().cloned());
        let mut mine = HashSet::new();
        for (j, alias) in aliases.iter().enumerate() {
            let alias_key = if j == 0 {
                format!("{key}.name")
            } else {
                format!("{key}.aliases[{}]", j - 1)
            };
            let (text, prefix) = match alias.strip_suffix('*') {
                Some(stem) => (stem, true),
                None => (alias.as_str(), false),
            };
            let Some(form) = pattern_forms(text).into_iter().next() else {
                if j > 0 || !e.name.trim().is_empty() {
                    p.add(alias_key, format!("{alias:?} has no words to match"));
                }
                continue;
            };
            if !mine.insert((form.clone(), prefix)) {
                continue;
            }
            match alias_owner.get(&(form.clone(), prefix)) {
                Some(owner) if owner != &e.id => p.add(
                    alias_key,
                    format!("{alias:?} is already an alias of entity {owner:?}"),
                ),
                _ => {
                    alias_owner.insert((form, prefix), e.id.clone());
                }
            }
        }
        entities.push(Entity {
            id: e.id.clone(),
            kind,
            name: e.name.clone(),
            aliases,
        });
    }

    let mut sinks = Vec::new();
    let mut sink_ids = HashSet::new();
    for (i, s) in raw.sinks.iter().enumerate() {
        let key = format!("sinks[{i}]");
        p.unique_id(&mut sink_ids, &format!("{key}.id"), &s.id);
        let kind = match s.kind.as_str() {
            "webhook" => SinkKind::Webhook,
            "slack" => SinkKind::Slack,
            "discord" => SinkKind::Discord,
            "ntfy" => SinkKind::Ntfy,
            "log" => SinkKind::Log,
            other => {
                p.add(
                    format!("{key}.kind"),
                    format!("{other:?} is not one of webhook, slack, discord, ntfy, log"),
                );
                SinkKind::Log
            }
        };
        let url = match (&s.url, kind) {
            (None, SinkKind::Log) => None,
            (None, _) => {
                p.add(
                    format!("{key}.url"),
                    format!("a {} sink needs a url", s.kind),
                );
                None
            }
            (Some(u), _) => match url::Url::parse(u) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
                Ok(_) => {
                    p.add(format!("{key}.url"), format!("{u:?} is not an http(s) URL"));
                    None
                }
                Err(err) => {
                    p.add(format!("{key}.url"), format!("{u:?} is not a URL: {err}"));
                    None
                }
            },
        };
        let max_attempts = s.max_attempts.unwrap_or(12);
        let max_age = p.duration(
            &format!("{key}.max_age"),
            s.max_age.as_deref().unwrap_or("2d"),
        );
        let retry_base = p.duration(
            &format!("{key}.retry_base"),
            s.retry_base.as_deref().unwrap_or("5s"),
        );
        let retry_max = p.duration(
            &format!("{key}.retry_max"),
            s.retry_max.as_deref().unwrap_or("1h"),
        );
        if retry_max < retry_base {
            p.add(
                format!("{key}.retry_max"),
                "must not be shorter than retry_base",
            );
        }
        if max_attempts == 0 {
            p.add(format!("{key}.max_attempts"), "must be at least 1");
        }
        let rate_limit = s.rate_limit.as_deref().and_then(|text| {
            RateLimit::parse(text)
                .map_err(|reason| p.add(format!("{key}.rate_limit"), reason))
                .ok()
        });
        let digest = s
            .digest
            .as_deref()
            .map(|text| p.duration(&format!("{key}.digest"), text));
        sinks.push(Sink {
            id: s.id.clone(),
            kind,
            url,
            secret_env: s.secret_env.clone(),
            max_attempts,
            max_age,
            retry_base,
            retry_max,
            rate_limit,
            digest,
        });
    }

    let mut topics = Vec::new();
    let mut topic_ids = HashSet::new();
    for (i, t) in raw.topics.iter().enumerate() {
        let key = format!("topics[{i}]");
        p.unique_id(&mut topic_ids, &format!("{key}.id"), &t.id);
        let query = match query::parse(&t.query) {
            Ok(q) => Some(q),
            Err(err) => {
                p.add(
                    format!("{key}.query"),
                    format!(
                        "topic {:?}: {}: {}",
                        t.id,
                        position(&t.query, err.column),
                        err.message
                    ),
                );
                None
            }
        };
        if let Some(q) = &query {
            for (entity, column) in entity_refs(q) {
                if !entity_ids.contains(entity) {
                    p.add(
                        format!("{key}.query"),
                        format!(
                            "topic {:?}: {}: unknown entity @{entity}",
                            t.id,
                            position(&t.query, column)
                        ),
                    );
                }
            }
        }
        for (j, sink) in t.sinks.iter().enumerate() {
            if !sink_ids.contains(sink) {
                p.add(
                    format!("{key}.sinks[{j}]"),
                    format!("unknown sink {sink:?}"),
                );
            }
        }
        let min_score = t.min_score.unwrap_or(0.0);
        if !min_score.is_finite() || min_score < 0.0 {
            p.add(format!("{key}.min_score"), "must be a number of at least 0");
        }
        if let Some(query) = query {
            topics.push(Topic {
                id: t.id.clone(),
                name: t.name.clone().unwrap_or_else(|| t.id.clone()),
                query_text: t.query.clone(),
                query,
                min_score,
                sinks: t.sinks.clone(),
            });
        }
    }

    let api = raw
        .api
        .as_ref()
        .and_then(|a| match a.listen.parse::<SocketAddr>() {
            Ok(listen) => Some(Api {
                listen,
                token_env: a.token_env.clone(),
            }),
            Err(err) => {
                p.add(
                    "api.listen",
                    format!(
                        "{:?} is not an address like 127.0.0.1:8440: {err}",
                        a.listen
                    ),
                );
                None
            }
        });

    if !p.errors.is_empty() {
        return Err(ConfigErrors(p.errors));
    }
    Ok(Config {
        file: file.to_path_buf(),
        storage,
        poller,
        feeds,
        cleaning,
        entities,
        topics,
        sinks,
        api,
    })
}

/// An `http(s)` URL, or a `file:` one: `file:///abs/path`, or `file:rel/path` resolved
/// against the config's folder so the shipped samples work from any working directory.
fn feed_url(text: &str, base: &Path) -> Result<FeedUrl, String> {
    if let Some(rest) = text.strip_prefix("file:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(format!("{text:?} names no file"));
        }
        let path = Path::new(path);
        return Ok(FeedUrl::File(if path.is_absolute() {
            path.to_path_buf()
        } else {
            base.join(path)
        }));
    }
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            Ok(FeedUrl::Http(url))
        }
        Ok(url) => Err(format!(
            "{text:?}: scheme {:?} is not http, https or file",
            url.scheme()
        )),
        Err(err) => Err(format!("{text:?} is not a URL: {err}")),
    }
}

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

/// Where a query error is, for a reader: `column C` in a one-line query, `line L,
/// column C` in a multi-line one (TOML's `"""` strings), counting characters.
fn position(query: &str, column: usize) -> String {
    if !query.contains('\n') {
        return format!("column {column}");
    }
    let mut line = 1;
    let mut line_column = 1;
    for c in query.chars().take(column.saturating_sub(1)) {
        if c == '\n' {
            line += 1;
            line_column = 1;
        } else {
            line_column += 1;
        }
    }
    format!("line {line}, column {line_column}")
}
