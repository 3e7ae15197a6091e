//! Validation: a raw config (strings as written) into a [`Config`], collecting every
//! problem with its file and key rather than stopping at the first. One function per
//! section; the sections that refer to others (topics to entities and sinks) take
//! the ids those sections accepted.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use super::raw::{self, RawConfig};
use super::*;
use crate::model::{Entity, EntityKind, Topic, Updates};
use crate::pipeline::rules::entity_refs;
use crate::pipeline::text::pattern_forms;
use crate::query;

/// Collects problems while validation goes on.
struct Problems<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
}

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

    /// An interval of at least [`MIN_INTERVAL`]: the poller never polls a feed more
    /// often, so a shorter one would not mean what it says.
    fn interval_floor(&mut self, key: &str, interval: Duration) {
        // A zero or unreadable duration was reported already (and read as 1 s).
        if interval < MIN_INTERVAL && self.errors.last().is_none_or(|e| e.key != key) {
            self.add(
                key,
                format!(
                    "{} is shorter than the poller's floor of {}: no feed is polled more \
                     often than that",
                    humantime::format_duration(interval),
                    humantime::format_duration(MIN_INTERVAL)
                ),
            );
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
    let storage = storage(&mut p, &raw.storage);
    let poller = poller(&mut p, &raw.poller);
    let feeds = feeds(&mut p, &raw.feeds, file.parent().unwrap_or(Path::new(".")));
    let cleaning = cleaning(&mut p, &raw.cleaning);
    let (entities, entity_ids) = entities(&mut p, &raw.entities);
    let (sinks, sink_ids) = sinks(&mut p, &raw.sinks);
    let topics = topics(&mut p, &raw.topics, &entity_ids, &sink_ids);
    let api = api(&mut p, raw.api.as_ref());
    let health = health(&mut p, &raw.health, &sink_ids);
    let alert = crate::net::AddressPolicy {
        allow_private: raw.alert.allow_private,
        allow_hosts: hosts(&mut p, "alert", &raw.alert.allow_hosts),
        section: "alert",
    };
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
        alert,
        api,
        health,
    })
}

fn storage(p: &mut Problems<'_>, raw: &raw::RawStorage) -> Storage {
    let backend = match raw.backend.trim() {
        "sled" => Backend::Sled,
        "postgres" => Backend::Postgres(postgres(p, raw)),
        other => {
            p.add(
                "storage.backend",
                format!("{other:?} is not a backend: use \"sled\" (the default) or \"postgres\""),
            );
            Backend::Sled
        }
    };
    if backend == Backend::Sled {
        for (key, set) in [
            ("url", raw.url.is_some()),
            ("password_env", raw.password_env.is_some()),
            ("node", raw.node.is_some()),
        ] {
            if set {
                p.add(
                    format!("storage.{key}"),
                    "is only read with backend = \"postgres\"",
                );
            }
        }
    }
    let storage = Storage {
        backend,
        path: PathBuf::from(&raw.path),
        history: p.duration("storage.history", &raw.history),
        retention: p.duration("storage.retention", &raw.retention),
    };
    if raw.path.trim().is_empty() {
        p.add("storage.path", "must not be empty");
    }
    storage
}

/// `[storage]` with `backend = "postgres"`.
fn postgres(p: &mut Problems<'_>, raw: &raw::RawStorage) -> Postgres {
    let url = raw.url.clone().unwrap_or_default();
    if url.trim().is_empty() {
        p.add(
            "storage.url",
            "is required with backend = \"postgres\", like \"postgres://newswatch@db.example.org/newswatch\"",
        );
    } else {
        match url::Url::parse(url.trim()) {
            Ok(parsed) if matches!(parsed.scheme(), "postgres" | "postgresql") => {
                if parsed.password().is_some() {
                    p.add(
                        "storage.url",
                        "must not hold a password (config files are read by many): put it in \
                         the environment variable or systemd credential named by \
                         storage.password_env (default NEWSWATCH_PG_PASSWORD)",
                    );
                }
            }
            Ok(parsed) => p.add(
                "storage.url",
                format!("must be a postgres:// URL, not {}:", parsed.scheme()),
            ),
            Err(err) => p.add("storage.url", format!("{url:?} is not a URL: {err}")),
        }
    }
    let lease = p.duration("storage.lease", &raw.lease);
    if lease < Duration::from_secs(1) {
        p.add("storage.lease", "must be at least 1s");
    }
    if raw.pool == 0 {
        p.add("storage.pool", "must be at least 1");
    }
    Postgres {
        url: url.trim().to_string(),
        password_env: raw
            .password_env
            .clone()
            .unwrap_or_else(|| DEFAULT_PASSWORD_ENV.to_string()),
        lease,
        pool: raw.pool.max(1) as usize,
        node: raw.node.clone().filter(|n| !n.trim().is_empty()),
    }
}

fn poller(p: &mut Problems<'_>, raw: &raw::RawPoller) -> Poller {
    let poller = Poller {
        interval: p.duration("poller.interval", &raw.interval),
        concurrency: raw.concurrency as usize,
        per_host: raw.per_host as usize,
        timeout: p.duration("poller.timeout", &raw.timeout),
        max_body: p.size("poller.max_body", &raw.max_body, MAX_BODY_LIMIT),
        user_agent: raw
            .user_agent
            .clone()
            .unwrap_or_else(|| format!("newswatch/{}", env!("CARGO_PKG_VERSION"))),
        full_text_pages: raw.full_text_pages as usize,
        allow_private: raw.allow_private,
        allow_hosts: hosts(p, "poller", &raw.allow_hosts),
    };
    p.interval_floor("poller.interval", poller.interval);
    if poller.concurrency == 0 {
        p.add("poller.concurrency", "must be at least 1");
    }
    if poller.per_host == 0 {
        p.add("poller.per_host", "must be at least 1");
    }
    poller
}

/// An `allow_hosts` list, lowercased, each entry checked to be a bare host name.
fn hosts(p: &mut Problems<'_>, section: &str, raw: &[String]) -> Vec<String> {
    let hosts: Vec<String> = raw
        .iter()
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
        .collect();
    for (i, host) in hosts.iter().enumerate() {
        if host.is_empty() || host.contains(['/', ':', ' ']) {
            p.add(
                format!("{section}.allow_hosts[{i}]"),
                "must be a host name, without scheme, port or path",
            );
        }
    }
    hosts
}

fn feeds(p: &mut Problems<'_>, raw: &[raw::RawFeed], base: &Path) -> Vec<Feed> {
    let mut feeds = Vec::new();
    let mut feed_urls = HashSet::new();
    for (i, f) in raw.iter().enumerate() {
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
        if let Some(interval) = interval {
            p.interval_floor(&format!("{key}.interval"), interval);
        }
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
    feeds
}

fn cleaning(p: &mut Problems<'_>, raw: &raw::RawCleaning) -> Cleaning {
    Cleaning {
        split_on: p.regexes("cleaning.split_on", &raw.split_on),
        drop_lines: p.regexes("cleaning.drop_lines", &raw.drop_lines),
    }
}

/// The entities, and the ids accepted (for the topics' `@id` references).
fn entities(p: &mut Problems<'_>, raw: &[raw::RawEntity]) -> (Vec<Entity>, HashSet<String>) {
    let mut entities = Vec::new();
    let mut entity_ids = HashSet::new();
    // Folded alias → the entity that owns it; one spelling naming two entities would
    // make every mention ambiguous.
    let mut alias_owner: HashMap<(String, bool), String> = HashMap::new();
    for (i, e) in raw.iter().enumerate() {
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
    (entities, entity_ids)
}

/// The sinks, and the ids accepted (for the topics' `sinks`).
fn sinks(p: &mut Problems<'_>, raw: &[raw::RawSink]) -> (Vec<Sink>, HashSet<String>) {
    let mut sinks = Vec::new();
    let mut sink_ids = HashSet::new();
    for (i, s) in raw.iter().enumerate() {
        let key = format!("sinks[{i}]");
        p.unique_id(&mut sink_ids, &format!("{key}.id"), &s.id);
        let kind = SinkKind::parse(&s.kind).unwrap_or_else(|| {
            let names: Vec<&str> = SinkKind::ALL.iter().map(|k| k.as_str()).collect();
            p.add(
                format!("{key}.kind"),
                format!("{:?} is not one of {}", s.kind, names.join(", ")),
            );
            SinkKind::Log
        });
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
    (sinks, sink_ids)
}

/// A topic's `updates`, `grow_by` and `update_interval` (docs/config.md): `None` unless
/// `updates = true`; the other two are checked either way, so that a typo is caught
/// before updates are turned on.
fn topic_updates(p: &mut Problems<'_>, key: &str, t: &raw::RawTopic) -> Option<Updates> {
    let grow_by = match t.grow_by {
        None => Updates::GROW_BY,
        Some(n) => match u32::try_from(n) {
            Ok(n) if (1..=10_000).contains(&n) => n,
            _ => {
                p.add(
                    format!("{key}.grow_by"),
                    format!("must be a whole number of copies from 1 to 10000, not {n}"),
                );
                Updates::GROW_BY
            }
        },
    };
    let interval = match &t.update_interval {
        None => Updates::INTERVAL,
        // Zero is allowed: then only `grow_by` spaces the updates.
        Some(text) => match humantime::parse_duration(text.trim()) {
            Ok(d) => d,
            Err(err) => {
                p.add(
                    format!("{key}.update_interval"),
                    format!("{text:?} is not a duration like \"30m\", \"1h\" or \"0s\": {err}"),
                );
                Updates::INTERVAL
            }
        },
    };
    (t.updates == Some(true)).then_some(Updates { grow_by, interval })
}

fn topics(
    p: &mut Problems<'_>,
    raw: &[raw::RawTopic],
    entity_ids: &HashSet<String>,
    sink_ids: &HashSet<String>,
) -> Vec<Topic> {
    let mut topics = Vec::new();
    let mut topic_ids = HashSet::new();
    for (i, t) in raw.iter().enumerate() {
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
        let updates = topic_updates(p, &key, t);
        let backfill = t
            .backfill
            .as_deref()
            .map(|text| p.duration(&format!("{key}.backfill"), text));
        if let Some(query) = query {
            topics.push(Topic {
                id: t.id.clone(),
                name: t.name.clone().unwrap_or_else(|| t.id.clone()),
                query_text: t.query.clone(),
                query,
                min_score,
                sinks: t.sinks.clone(),
                updates,
                backfill,
            });
        }
    }
    topics
}

fn health(p: &mut Problems<'_>, raw: &raw::RawHealth, sink_ids: &HashSet<String>) -> Health {
    let health = Health {
        failing_after: raw.failing_after,
        stale_after_gaps: raw.stale_after_gaps,
        stale_at_least: p.duration("health.stale_at_least", &raw.stale_at_least),
        gone_after: p.duration("health.gone_after", &raw.gone_after),
        sink: raw.sink.clone(),
    };
    if health.failing_after == 0 {
        p.add("health.failing_after", "must be at least 1");
    }
    if health.stale_after_gaps == 0 {
        p.add("health.stale_after_gaps", "must be at least 1");
    }
    if let Some(sink) = &health.sink {
        if !sink_ids.contains(sink) {
            let mut known: Vec<&str> = sink_ids.iter().map(String::as_str).collect();
            known.sort_unstable();
            p.add(
                "health.sink",
                if known.is_empty() {
                    format!("unknown sink {sink:?}: the config has no [[sinks]]")
                } else {
                    format!(
                        "unknown sink {sink:?} (the config has: {})",
                        known.join(", ")
                    )
                },
            );
        }
    }
    health
}

fn api(p: &mut Problems<'_>, raw: Option<&raw::RawApi>) -> Option<Api> {
    raw.and_then(|a| match a.listen.parse::<SocketAddr>() {
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
