//! Delivering one alert to one sink: the signing secret, the wire format of each sink
//! kind (generic webhook, Slack, Discord, ntfy, log), and one HTTP attempt classified
//! into delivered, retriable or permanent.
//!
//! What owns what: this file makes a single attempt and says how it went; when to try
//! again is [`super::retry`]'s business and remembering attempts is the outbox's. The
//! format functions are pure so they can be tested without a network.
//!
//! The generic webhook follows the Standard Webhooks specification (docs/webhooks.md,
//! "The request" and "Verifying the signature"). Slack and Discord webhook
//! URLs carry their credentials in the path, so error messages and `Debug` name only
//! the host.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use chrono::SecondsFormat;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;
use xxhash_rust::xxh3::xxh3_64;

use super::payload::AlertPayload;
use super::retry::{self, DeliveryError};
use crate::config::{Sink, SinkKind};

/// Prefix of Standard Webhooks secrets; the rest is the base64 of the key.
pub const SECRET_PREFIX: &str = "whsec_";

/// Entity names listed in chat messages; the payload has them all.
const MAX_ENTITY_NAMES: usize = 8;
/// ntfy tags (entity ids) per message; ntfy shows them as chips, more is clutter.
const MAX_NTFY_TAGS: usize = 5;
/// Characters of summary in an ntfy message.
const MAX_NTFY_SUMMARY: usize = 1000;
/// ntfy turns a message over 4096 bytes into an attachment; stay under it.
const MAX_NTFY_BODY_BYTES: usize = 4000;
/// Bytes of a failed response's body quoted in the error (Slack says `invalid_payload`,
/// Discord a JSON reason): enough to tell why, not enough to flood the log.
const MAX_ERROR_BODY: usize = 512;

/// Secrets encoded like the specification's examples: standard alphabet, and padding
/// accepted whether present or not, since people paste keys both ways.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a sink cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("sink {sink:?}: no signing secret: environment variable {variable} is not set or empty, and {}", credential_note(.variable, .credential))]
    MissingSecret {
        sink: String,
        variable: String,
        /// The systemd credential file looked at, when `$CREDENTIALS_DIRECTORY` is set.
        credential: Option<PathBuf>,
    },
    #[error("sink {sink:?}: cannot read the signing secret from {}: {source}", .path.display())]
    ReadCredential {
        sink: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sink {sink:?}: the signing secret in {from} is not valid UTF-8")]
    NotUnicode { sink: String, from: String },
    #[error("sink {sink:?}: the signing secret in {from} is empty")]
    EmptySecret { sink: String, from: String },
    #[error("sink {sink:?}: a {kind} sink needs a url")]
    MissingUrl { sink: String, kind: &'static str },
}

fn credential_note(variable: &str, credential: &Option<PathBuf>) -> String {
    match credential {
        Some(path) => format!("there is no systemd credential file {}", path.display()),
        None => format!(
            "$CREDENTIALS_DIRECTORY is not set, so no systemd credential {variable} was looked for"
        ),
    }
}

fn kind_name(kind: SinkKind) -> &'static str {
    match kind {
        SinkKind::Webhook => "webhook",
        SinkKind::Slack => "slack",
        SinkKind::Discord => "discord",
        SinkKind::Ntfy => "ntfy",
        SinkKind::Log => "log",
    }
}

// ---------------------------------------------------------------------------------
// Secrets and signatures
// ---------------------------------------------------------------------------------

/// The signing keys in a secret value: space-separated, so a new key can be added
/// next to the old one during rotation and receivers accept either.
///
/// `whsec_<base64>` is decoded to its key bytes, as the specification says; a token
/// without the prefix is used as raw bytes. A `whsec_` token that is not valid base64
/// is used as raw bytes too (warned about, not fatal: refusing to start over it would
/// stop every other sink).
pub fn parse_secrets(value: &str) -> Vec<Vec<u8>> {
    let mut bad = Vec::new();
    let secrets = value
        .split_ascii_whitespace()
        .enumerate()
        .map(|(i, token)| match token.strip_prefix(SECRET_PREFIX) {
            Some(encoded) => match SECRET_BASE64.decode(encoded) {
                Ok(key) if !key.is_empty() => key,
                _ => {
                    bad.push(i + 1);
                    token.as_bytes().to_vec()
                }
            },
            None => token.as_bytes().to_vec(),
        })
        .collect();
    if !bad.is_empty() {
        // The positions only: the secret itself never goes to the log.
        tracing::warn!(
            positions = ?bad,
            "Signing secret starts with whsec_ but is not valid base64; using it as raw bytes."
        );
    }
    secrets
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` for one key.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = hmac_sha256(secret);
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` value: one signature per key, space-separated.
pub fn signature_header(secrets: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An HMAC-SHA256 keyed with `secret`.
///
/// HMAC accepts keys of any length, but the `hmac` crate's `new_from_slice` still
/// returns a `Result`; building the 64-byte key block as RFC 2104 does (long keys
/// hashed, short ones zero-padded) gives the identical MAC with nothing to unwrap.
fn hmac_sha256(secret: &[u8]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    if secret.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(secret));
    } else {
        block[..secret.len()].copy_from_slice(secret);
    }
    <Hmac<Sha256> as KeyInit>::new(&block.into())
}

/// The signing keys of a sink, when it has `secret_env`: the environment variable of
/// that name, else the systemd credential `$CREDENTIALS_DIRECTORY/<secret_env>` (so
/// `LoadCredential=NEWSWATCH_OPS_SECRET:/etc/newswatch/ops.secret` works and the secret
/// never sits in the unit's environment).
pub fn load_secret(sink: &Sink) -> Result<Option<Vec<Vec<u8>>>, SinkError> {
    let Some(variable) = sink.secret_env.as_deref() else {
        return Ok(None);
    };
    read_secret(
        &sink.id,
        variable,
        std::env::var_os(variable),
        std::env::var_os("CREDENTIALS_DIRECTORY"),
    )
    .map(Some)
}

/// [`load_secret`] with the environment passed in, for tests.
fn read_secret(
    sink: &str,
    variable: &str,
    value: Option<OsString>,
    credentials_dir: Option<OsString>,
) -> Result<Vec<Vec<u8>>, SinkError> {
    let keys = |text: &str, from: String| {
        let keys = parse_secrets(text);
        if keys.is_empty() {
            Err(SinkError::EmptySecret {
                sink: sink.to_string(),
                from,
            })
        } else {
            Ok(keys)
        }
    };
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        let from = format!("environment variable {variable}");
        let Some(text) = value.to_str() else {
            return Err(SinkError::NotUnicode {
                sink: sink.to_string(),
                from,
            });
        };
        return keys(text, from);
    }
    // A credential name is a file name; one with a path in it is not looked up.
    let credential = credentials_dir
        .filter(|dir| !dir.is_empty())
        .filter(|_| !variable.contains('/') && variable != "." && variable != "..")
        .map(|dir| PathBuf::from(dir).join(variable));
    let Some(path) = credential else {
        return Err(SinkError::MissingSecret {
            sink: sink.to_string(),
            variable: variable.to_string(),
            credential: None,
        });
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let from = format!("systemd credential {}", path.display());
            match String::from_utf8(bytes) {
                // Trailing newlines (and any whitespace) fall away in the split.
                Ok(text) => keys(&text, from),
                Err(_) => Err(SinkError::NotUnicode {
                    sink: sink.to_string(),
                    from,
                }),
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(SinkError::MissingSecret {
            sink: sink.to_string(),
            variable: variable.to_string(),
            credential: Some(path),
        }),
        Err(source) => Err(SinkError::ReadCredential {
            sink: sink.to_string(),
            path,
            source,
        }),
    }
}

// ---------------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------------

/// The generic webhook body: the payload as JSON, exactly docs/webhooks.md's "Body".
pub fn webhook_body(payload: &AlertPayload) -> Vec<u8> {
    match serde_json::to_vec(payload) {
        Ok(body) => body,
        // Plain structs of strings and numbers always serialise; should that ever
        // change, [`SinkClient::send`] reports it as a permanent failure instead.
        Err(err) => {
            tracing::error!(alert = %payload.id, error = %err, "Could not encode the alert body.");
            Vec::new()
        }
    }
}

/// A Slack incoming-webhook message: `text` for notifications and clients without
/// blocks, and blocks with the linked title, summary, topic, feed, entities, matched
/// terms and score.
///
/// Slack reads `&`, `<` and `>` as markup in every text field, so they are escaped; a
/// story title cannot turn into a link or an `@channel`. Texts are cut before escaping
/// to stay well under Slack's limits (3000 characters a section, 2000 a field).
pub fn slack_body(payload: &AlertPayload) -> Value {
    let topic = slack_escape(&cut_chars(&one_line(&payload.topic.name), 150));
    let title = slack_escape(&cut_chars(&one_line(&payload.item.title), 250));
    let headline = match payload.item.url.as_deref().and_then(slack_link_url) {
        Some(url) => format!("<{url}|{title}>"),
        None => title.clone(),
    };
    let entities = entity_names(payload);
    let fields = vec![
        slack_field("Topic", &topic),
        slack_field(
            "Feed",
            &slack_escape(&cut_chars(&one_line(&payload.item.feed), 300)),
        ),
        slack_field("Entities", &slack_escape(&cut_chars(&entities, 300))),
        slack_field(
            "Matched",
            &slack_escape(&cut_chars(&payload.matched.join(", "), 300)),
        ),
        slack_field("Score", &format!("{:.1}", payload.score)),
    ];
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("*{headline}*")},
    })];
    let summary = one_line(&payload.item.summary);
    if !summary.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": slack_escape(&cut_chars(&summary, 500))},
        }));
    }
    blocks.push(json!({"type": "section", "fields": fields}));
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": slack_escape(&context_line(payload))}],
    }));
    json!({
        "text": format!("{topic}: {headline}"),
        "blocks": blocks,
    })
}

fn slack_field(label: &str, value: &str) -> Value {
    let value = if value.is_empty() { "-" } else { value };
    json!({"type": "mrkdwn", "text": format!("*{label}*\n{value}")})
}

/// Slack's three markup characters as entities.
fn slack_escape(text: &str) -> String {
    crate::parse::escape_html(text)
}

/// A URL fit for `<url|text>`: http(s) only (anything else Slack would not link, or
/// should not), `|` percent-encoded since it ends the URL part, markup escaped.
fn slack_link_url(url: &str) -> Option<String> {
    let url = http_url(url)?;
    let text = slack_escape(url.as_str()).replace('|', "%7C");
    (text.len() <= 1500).then_some(text)
}

/// A Discord webhook message: a short `content` line and one embed with the title
/// (linked), summary, topic, entities, feed and score, timestamped with the story's
/// publication (else detection) time.
///
/// Discord's limits are enforced (title 256, description 4096, field value 1024,
/// 6000 for the whole embed), counted in UTF-16 units, which is never fewer than
/// characters, so the message fits however Discord counts. Markdown in the story's
/// text is escaped, and `allowed_mentions` is empty so a title saying `@everyone`
/// pings nobody.
pub fn discord_body(payload: &AlertPayload) -> Value {
    let topic = one_line(&payload.topic.name);
    let title = cut_utf16(&one_line(&payload.item.title), 256);
    let fields = [
        ("Topic", cut_utf16(&discord_escape(&topic), 1024), true),
        (
            "Feed",
            cut_utf16(&discord_escape(&one_line(&payload.item.feed)), 1024),
            true,
        ),
        ("Score", format!("{:.1}", payload.score), true),
        (
            "Entities",
            cut_utf16(&discord_escape(&entity_names(payload)), 1024),
            false,
        ),
    ];
    let footer = cut_utf16(&context_line(payload), 2048);
    // Whatever the rest leaves of the 6000 for the whole embed goes to the summary.
    let used: usize = utf16_len(&title)
        + utf16_len(&footer)
        + fields
            .iter()
            .map(|(name, value, _)| utf16_len(name) + utf16_len(value).max(1))
            .sum::<usize>();
    let description = cut_utf16(
        &discord_escape(payload.item.summary.trim()),
        4096.min(6000usize.saturating_sub(used)),
    );
    let mut embed = json!({
        "title": title,
        "color": 0x2b6cb0,
        "fields": fields
            .iter()
            .map(|(name, value, inline)| json!({
                // Discord rejects an empty field value.
                "name": name,
                "value": if value.is_empty() { "-" } else { value.as_str() },
                "inline": inline,
            }))
            .collect::<Vec<_>>(),
        "timestamp": payload
            .item
            .published
            .unwrap_or(payload.detected_at)
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        "footer": {"text": footer},
    });
    if let Some(url) = payload.item.url.as_deref().and_then(http_url) {
        // Discord rejects the whole message for a URL it cannot parse.
        if url.as_str().len() <= 2048 {
            embed["url"] = Value::String(url.into());
        }
    }
    if !description.is_empty() {
        embed["description"] = Value::String(description);
    }
    let content = cut_utf16(
        &format!(
            "**{}**: {}",
            discord_escape(&topic),
            discord_escape(&cut_chars(&one_line(&payload.item.title), 200))
        ),
        2000,
    );
    json!({
        "content": content,
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

/// Backslash before every character Discord's markdown gives a meaning to.
fn discord_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '#' | '[' | ']'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An ntfy message: HTTP headers and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtfyRequest {
    /// Header names and values, every value valid visible ASCII.
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// An ntfy message: `Title` the topic name, `Tags` the first entity ids, `Click` the
/// story's URL, and the body the story's title and the start of its summary.
///
/// Header values are made valid: control characters (CR/LF above all, which would
/// split the request) and other invisible ASCII are dropped, and a non-ASCII title is
/// sent as RFC 2047 encoded words (`=?UTF-8?B?…?=`), which ntfy decodes.
pub fn ntfy_request(payload: &AlertPayload) -> NtfyRequest {
    let mut headers = Vec::new();
    let title = encode_header_words(&cut_chars(&one_line(&payload.topic.name), 200));
    if !title.is_empty() {
        headers.push(("Title", title));
    }
    let tags: Vec<String> = payload
        .entities
        .iter()
        .map(|e| ascii_header_value(&e.id).replace(',', ""))
        .filter(|id| !id.is_empty())
        .take(MAX_NTFY_TAGS)
        .collect();
    if !tags.is_empty() {
        headers.push(("Tags", tags.join(",")));
    }
    if let Some(url) = payload.item.url.as_deref().and_then(http_url) {
        // `Url` serialises as ASCII (punycode host, percent-encoded path).
        headers.push(("Click", ascii_header_value(url.as_str())));
    }
    let mut body = cut_chars(&one_line(&payload.item.title), 250);
    let summary = payload.item.summary.trim();
    if !summary.is_empty() {
        body.push('\n');
        body.push_str(&cut_chars(summary, MAX_NTFY_SUMMARY));
    }
    NtfyRequest {
        headers,
        body: cut_bytes(&body, MAX_NTFY_BODY_BYTES),
    }
}

/// A header value of visible ASCII and spaces: line breaks and tabs become spaces,
/// everything else outside `' '..='~'` is dropped.
fn ascii_header_value(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter_map(|c| match c {
            '\r' | '\n' | '\t' => Some(' '),
            ' '..='~' => Some(c),
            _ => None,
        })
        .collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` as a header value: as is when it is plain visible ASCII, else as RFC 2047
/// encoded words of at most 75 characters each, split on character boundaries.
fn encode_header_words(text: &str) -> String {
    let text = one_line(text);
    // `=?` in a plain value could be taken for the start of an encoded word.
    if text.chars().all(|c| matches!(c, ' '..='~')) && !text.contains("=?") {
        return text;
    }
    // 75 - len("=?UTF-8?B?") - len("?=") leaves 63 base64 characters: 45 bytes.
    const CHUNK: usize = 45;
    let mut words = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if i + c.len_utf8() - start > CHUNK {
            words.push(&text[start..end]);
            start = end;
        }
        end = i + c.len_utf8();
    }
    if end > start {
        words.push(&text[start..end]);
    }
    words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", STANDARD.encode(w)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Up to [`MAX_ENTITY_NAMES`] entity names, then how many more.
fn entity_names(payload: &AlertPayload) -> String {
    let mut names: Vec<String> = payload
        .entities
        .iter()
        .take(MAX_ENTITY_NAMES)
        .map(|e| cut_chars(&one_line(&e.name), 60))
        .collect();
    let more = payload.entities.len().saturating_sub(MAX_ENTITY_NAMES);
    if more > 0 {
        names.push(format!("and {more} more"));
    }
    names.join(", ")
}

/// The small print: alert id and times, for finding the alert in logs and the store.
fn context_line(payload: &AlertPayload) -> String {
    let mut line = format!("newswatch alert {}", one_line(&payload.id));
    if let Some(published) = payload.item.published {
        line.push_str(&format!(
            " · published {}",
            published.to_rfc3339_opts(SecondsFormat::Secs, true)
        ));
    }
    line.push_str(&format!(
        " · detected {}",
        payload
            .detected_at
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    ));
    line
}

/// An http(s) URL with a host, or nothing: chat services reject or mislink the rest.
fn http_url(text: &str) -> Option<Url> {
    Url::parse(text.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// Control characters and line breaks as single spaces, whitespace collapsed: titles
/// and names from feeds go into one-line slots.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` cut to at most `max` units as `unit` counts them, on a character boundary,
/// with `…` marking the cut.
fn cut_by(text: &str, max: usize, unit: fn(char) -> usize) -> String {
    let total: usize = text.chars().map(unit).sum();
    if total <= max {
        return text.to_string();
    }
    let budget = max.saturating_sub(unit('…'));
    let mut used = 0;
    let mut out = String::new();
    for c in text.chars() {
        used += unit(c);
        if used > budget {
            break;
        }
        out.push(c);
    }
    let mut out = out.trim_end().to_string();
    if max >= unit('…') {
        out.push('…');
    }
    out
}

fn cut_chars(text: &str, max: usize) -> String {
    cut_by(text, max, |_| 1)
}

fn cut_utf16(text: &str, max: usize) -> String {
    cut_by(text, max, char::len_utf16)
}

fn cut_bytes(text: &str, max: usize) -> String {
    cut_by(text, max, char::len_utf8)
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

// ---------------------------------------------------------------------------------
// Digests
// ---------------------------------------------------------------------------------

/// `type` of a digest body.
pub const DIGEST_TYPE: &str = "newswatch.digest";
/// `version` of the digest body layout.
pub const DIGEST_VERSION: u32 = 1;

/// The id of a digest of the alerts with `ids`: the same alerts, in any order, give
/// the same id, so a digest sent again (a retry, a crash before its outcome was
/// recorded) carries the id it had. A digest of other alerts gets another id.
pub fn digest_id<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut ids: Vec<&str> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    format!("d_{:016x}", xxh3_64(ids.join("\n").as_bytes()))
}

#[derive(Serialize)]
struct DigestBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    version: u32,
    id: &'a str,
    alerts: &'a [AlertPayload],
}

/// The generic webhook body of a digest:
/// `{"type":"newswatch.digest","version":1,"id":"d_…","alerts":[…]}`, each element of
/// `alerts` exactly the body that alert would have been sent as on its own.
pub fn digest_body(id: &str, alerts: &[AlertPayload]) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&DigestBody {
        kind: DIGEST_TYPE,
        version: DIGEST_VERSION,
        id,
        alerts,
    })
}

/// Alerts grouped by topic: topics in the order they first appear, alerts in order.
fn by_topic(alerts: &[AlertPayload]) -> Vec<(&str, Vec<&AlertPayload>)> {
    let mut groups: Vec<(&str, &str, Vec<&AlertPayload>)> = Vec::new();
    for alert in alerts {
        match groups.iter_mut().find(|(id, _, _)| *id == alert.topic.id) {
            Some((_, _, list)) => list.push(alert),
            None => groups.push((&alert.topic.id, &alert.topic.name, vec![alert])),
        }
    }
    groups
        .into_iter()
        .map(|(_, name, list)| (name, list))
        .collect()
}

/// "1 new alert", "12 new alerts".
fn alerts_count(n: usize) -> String {
    if n == 1 {
        "1 new alert".to_string()
    } else {
        format!("{n} new alerts")
    }
}

/// "Museums (2), Ukraine ceasefire talks (1)": the topics of a digest, one line.
fn topics_line(groups: &[(&str, Vec<&AlertPayload>)]) -> String {
    groups
        .iter()
        .map(|(name, list)| format!("{} ({})", one_line(name), list.len()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line of a digest listing: a topic heading, or an alert.
struct Line {
    text: String,
    is_alert: bool,
}

/// The lines joined by newlines when they fit in `max` units as `unit` counts them;
/// else as many as fit with room for a last line "…and N more" counting the alerts left
/// out. Each line must fit on its own with room for that note (callers cut titles and
/// links to make sure).
fn fit_lines(lines: &[Line], max: usize, unit: fn(char) -> usize) -> String {
    let len = |text: &str| text.chars().map(unit).sum::<usize>();
    let all = lines
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    if len(&all) <= max {
        return all;
    }
    let total = lines.iter().filter(|l| l.is_alert).count();
    let room = max.saturating_sub(len(&format!("\n…and {total} more")));
    let mut kept: Vec<&Line> = Vec::new();
    let mut used = 0;
    for line in lines {
        let add = usize::from(!kept.is_empty()) + len(&line.text);
        if used + add > room {
            break;
        }
        used += add;
        kept.push(line);
    }
    // A heading without any of its alerts says nothing.
    while kept.last().is_some_and(|l| !l.is_alert) {
        kept.pop();
    }
    let left = total - kept.iter().filter(|l| l.is_alert).count();
    let mut out = kept
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    if left > 0 {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("…and {left} more"));
    }
    out
}

/// A Slack message for a digest: `text` says how many alerts on which topics, then one
/// section per topic listing the linked titles, and a context line with the digest id.
/// Slack's limits hold: at most 50 blocks (topics past the 45th are counted, not
/// listed) and 3000 characters a section (titles past that are counted).
pub fn slack_digest_body(id: &str, alerts: &[AlertPayload]) -> Value {
    const MAX_SECTIONS: usize = 45;
    let groups = by_topic(alerts);
    let count = alerts_count(alerts.len());
    let text = slack_escape(&cut_chars(
        &format!("newswatch: {count}: {}", topics_line(&groups)),
        300,
    ));
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("*newswatch: {count}*")},
    })];
    for (name, list) in groups.iter().take(MAX_SECTIONS) {
        let mut lines = vec![Line {
            text: format!(
                "*{}* ({})",
                slack_escape(&cut_chars(&one_line(name), 150)),
                list.len()
            ),
            is_alert: false,
        }];
        lines.extend(list.iter().map(|p| {
            let title = slack_escape(&cut_chars(&one_line(&p.item.title), 200));
            let text = match p.item.url.as_deref().and_then(slack_link_url) {
                Some(url) => format!("• <{url}|{title}>"),
                None => format!("• {title}"),
            };
            Line {
                text,
                is_alert: true,
            }
        }));
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": fit_lines(&lines, 3000, |_| 1)},
        }));
    }
    let hidden: Vec<_> = groups.iter().skip(MAX_SECTIONS).collect();
    if !hidden.is_empty() {
        let more: usize = hidden.iter().map(|(_, list)| list.len()).sum();
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!(
                "…and {more} more in {} more topics", hidden.len()
            )}],
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": slack_escape(&digest_context(id, alerts))}],
    }));
    json!({"text": text, "blocks": blocks})
}

/// A Discord message for a digest: a `content` line with the count and topics, and one
/// embed whose description lists the linked titles under a bold heading per topic
/// (titles past Discord's 4096 are counted, not listed). Markdown is escaped and
/// mentions are disabled as for single alerts.
pub fn discord_digest_body(id: &str, alerts: &[AlertPayload]) -> Value {
    let groups = by_topic(alerts);
    let count = alerts_count(alerts.len());
    let mut lines = Vec::new();
    for (name, list) in &groups {
        lines.push(Line {
            text: format!(
                "**{}** ({})",
                discord_escape(&cut_chars(&one_line(name), 150)),
                list.len()
            ),
            is_alert: false,
        });
        for p in list {
            let title = discord_escape(&cut_chars(&one_line(&p.item.title), 200));
            let text = match p.item.url.as_deref().and_then(http_url) {
                // `(` and `)` would end the link early.
                Some(url) if url.as_str().len() <= 1500 => format!(
                    "• [{title}]({})",
                    url.as_str().replace('(', "%28").replace(')', "%29")
                ),
                _ => format!("• {title}"),
            };
            lines.push(Line {
                text,
                is_alert: true,
            });
        }
    }
    let latest = alerts.iter().map(|p| p.detected_at).max();
    let mut embed = json!({
        "title": format!("newswatch: {count}"),
        "color": 0x2b6cb0,
        "description": fit_lines(&lines, 4096, char::len_utf16),
        "footer": {"text": cut_utf16(&digest_context(id, alerts), 2048)},
    });
    if let Some(latest) = latest {
        embed["timestamp"] = Value::String(latest.to_rfc3339_opts(SecondsFormat::Secs, true));
    }
    json!({
        "content": cut_utf16(
            &format!("**newswatch: {count}**: {}", discord_escape(&topics_line(&groups))),
            2000,
        ),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

/// An ntfy message for a digest: `Title` the count (and the topic, when there is one),
/// and a plain-text body listing each topic, then its titles with their links below
/// them, cut under ntfy's 4096 bytes (titles past that are counted, not listed).
pub fn ntfy_digest_request(id: &str, alerts: &[AlertPayload]) -> NtfyRequest {
    let groups = by_topic(alerts);
    let count = alerts_count(alerts.len());
    let title = match groups.as_slice() {
        [(name, _)] => format!("{}: {count}", one_line(name)),
        _ => format!("newswatch: {count}"),
    };
    let mut headers = vec![("Title", encode_header_words(&cut_chars(&title, 200)))];
    if let [only] = alerts {
        if let Some(url) = only.item.url.as_deref().and_then(http_url) {
            headers.push(("Click", ascii_header_value(url.as_str())));
        }
    }
    let mut lines = Vec::new();
    for (i, (name, list)) in groups.iter().enumerate() {
        lines.push(Line {
            text: format!(
                "{}{} ({})",
                if i > 0 { "\n" } else { "" },
                cut_chars(&one_line(name), 150),
                list.len()
            ),
            is_alert: false,
        });
        for p in list {
            let mut text = format!("- {}", cut_chars(&one_line(&p.item.title), 200));
            if let Some(url) = p.item.url.as_deref().and_then(http_url) {
                if url.as_str().len() <= 1500 {
                    text.push_str("\n  ");
                    text.push_str(url.as_str());
                }
            }
            lines.push(Line {
                text,
                is_alert: true,
            });
        }
    }
    let mut body = fit_lines(&lines, MAX_NTFY_BODY_BYTES - 200, char::len_utf8);
    body.push_str(&format!("\n\n{}", digest_context(id, alerts)));
    NtfyRequest {
        headers,
        body: cut_bytes(&body, MAX_NTFY_BODY_BYTES),
    }
}

/// The small print of a digest: its id, size and detection times.
fn digest_context(id: &str, alerts: &[AlertPayload]) -> String {
    let mut line = format!("newswatch digest {} · {}", one_line(id), alerts.len());
    line.push_str(if alerts.len() == 1 {
        " alert"
    } else {
        " alerts"
    });
    let first = alerts.iter().map(|p| p.detected_at).min();
    let last = alerts.iter().map(|p| p.detected_at).max();
    if let (Some(first), Some(last)) = (first, last) {
        let first = first.to_rfc3339_opts(SecondsFormat::Secs, true);
        let last = last.to_rfc3339_opts(SecondsFormat::Secs, true);
        if first == last {
            line.push_str(&format!(" · detected {first}"));
        } else {
            line.push_str(&format!(" · detected {first} to {last}"));
        }
    }
    line
}

// ---------------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------------

/// One configured sink, ready to send.
#[derive(Clone)]
pub struct SinkClient {
    id: String,
    kind: SinkKind,
    url: Option<Url>,
    secrets: Vec<Vec<u8>>,
    /// Overrides the HTTP client's timeout when set.
    timeout: Option<Duration>,
}

/// Names the host only: chat webhook URLs hold their token in the path, and secrets
/// are never printed.
impl fmt::Debug for SinkClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkClient")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("host", &self.url.as_ref().map(host_of))
            .field("secrets", &self.secrets.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What one message carries: one alert, or a digest of several.
#[derive(Debug, Clone, Copy)]
enum Content<'a> {
    Alert(&'a AlertPayload),
    Digest {
        id: &'a str,
        alerts: &'a [AlertPayload],
    },
}

impl<'a> Content<'a> {
    /// The alert or digest id: `webhook-id`, and the id in logs.
    fn id(&self) -> &'a str {
        match self {
            Content::Alert(payload) => &payload.id,
            Content::Digest { id, .. } => id,
        }
    }
}

impl SinkClient {
    /// A client for `sink` with the keys [`load_secret`] found for it.
    pub fn new(sink: &Sink, secrets: Option<Vec<Vec<u8>>>) -> Result<Self, SinkError> {
        if sink.url.is_none() && sink.kind != SinkKind::Log {
            return Err(SinkError::MissingUrl {
                sink: sink.id.clone(),
                kind: kind_name(sink.kind),
            });
        }
        let secrets = secrets.unwrap_or_default();
        if !secrets.is_empty() && sink.kind != SinkKind::Webhook {
            tracing::warn!(
                sink = %sink.id,
                kind = kind_name(sink.kind),
                "Only webhook sinks sign their requests; ignoring the secret."
            );
        }
        Ok(SinkClient {
            id: sink.id.clone(),
            kind: sink.kind,
            url: sink.url.clone(),
            secrets,
            timeout: None,
        })
    }

    /// [`load_secret`] then [`SinkClient::new`].
    pub fn load(sink: &Sink) -> Result<Self, SinkError> {
        SinkClient::new(sink, load_secret(sink)?)
    }

    /// Bounds each attempt, connect to last byte, instead of the HTTP client's own
    /// timeout. A receiver that hangs must not hold the delivery worker, so the
    /// client passed to [`SinkClient::send`] needs a timeout when this is not set.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn kind(&self) -> SinkKind {
        self.kind
    }

    /// One delivery attempt of `payload`, signed as of `now`.
    ///
    /// Ok means the receiver answered 2xx. `http` should not follow redirects (a POST
    /// redirected with 301/302 arrives as a GET without the alert); a 3xx is then
    /// reported as retriable like any unexpected answer.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        payload: &AlertPayload,
        now: SystemTime,
    ) -> Result<(), DeliveryError> {
        self.deliver(http, Content::Alert(payload), now).await
    }

    /// One delivery attempt of `alerts` as one digest message with id `id` (see
    /// [`digest_id`]), signed as of `now`: for a webhook [`digest_body`] with the same
    /// headers as a single alert (`webhook-id` is the digest id), for Slack, Discord
    /// and ntfy one message listing the titles by topic, for the log sink one line per
    /// alert. The answer is classified as for [`SinkClient::send`].
    pub async fn send_digest(
        &self,
        http: &reqwest::Client,
        id: &str,
        alerts: &[AlertPayload],
        now: SystemTime,
    ) -> Result<(), DeliveryError> {
        self.deliver(http, Content::Digest { id, alerts }, now)
            .await
    }

    async fn deliver(
        &self,
        http: &reqwest::Client,
        content: Content<'_>,
        now: SystemTime,
    ) -> Result<(), DeliveryError> {
        let url = match (&self.kind, &self.url) {
            (SinkKind::Log, _) => {
                match content {
                    Content::Alert(payload) => self.log(payload),
                    Content::Digest { alerts, .. } => alerts.iter().for_each(|p| self.log(p)),
                }
                return Ok(());
            }
            (_, Some(url)) => url.clone(),
            // `new` refuses this; kept total rather than panicking.
            (_, None) => {
                return Err(DeliveryError::Permanent {
                    reason: format!("sink {:?} has no url", self.id),
                })
            }
        };
        let id = content.id();
        let mut headers = HeaderMap::new();
        let body: Vec<u8> = match self.kind {
            SinkKind::Webhook => {
                let body = match content {
                    Content::Alert(payload) => serde_json::to_vec(payload),
                    Content::Digest { id, alerts } => digest_body(id, alerts),
                }
                .map_err(|err| DeliveryError::Permanent {
                    reason: format!("cannot encode the alert: {err}"),
                })?;
                let timestamp = unix_seconds(now);
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                insert(&mut headers, "webhook-id", id)?;
                insert(&mut headers, "webhook-timestamp", &timestamp.to_string())?;
                if !self.secrets.is_empty() {
                    let signature = signature_header(&self.secrets, id, timestamp, &body);
                    insert(&mut headers, "webhook-signature", &signature)?;
                }
                body
            }
            SinkKind::Slack => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                match content {
                    Content::Alert(payload) => slack_body(payload),
                    Content::Digest { id, alerts } => slack_digest_body(id, alerts),
                }
                .to_string()
                .into_bytes()
            }
            SinkKind::Discord => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                match content {
                    Content::Alert(payload) => discord_body(payload),
                    Content::Digest { id, alerts } => discord_digest_body(id, alerts),
                }
                .to_string()
                .into_bytes()
            }
            SinkKind::Ntfy => {
                let request = match content {
                    Content::Alert(payload) => ntfy_request(payload),
                    Content::Digest { id, alerts } => ntfy_digest_request(id, alerts),
                };
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                for (name, value) in &request.headers {
                    insert(&mut headers, name, value)?;
                }
                request.body.into_bytes()
            }
            SinkKind::Log => Vec::new(),
        };

        let host = host_of(&url);
        let mut request = http.post(url).headers(headers).body(body);
        if let Some(timeout) = self.timeout {
            request = request.timeout(timeout);
        }
        let response = request
            .send()
            .await
            .map_err(|err| self.request_error(&host, err))?;

        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::parse_retry_after(v, now));
        match retry::classify(status, retry_after) {
            Ok(()) => {
                tracing::debug!(sink = %self.id, alert = %id, status, "Alert delivered.");
                Ok(())
            }
            Err(err) => {
                let detail = error_body(response).await;
                Err(with_detail(err, &host, &detail))
            }
        }
    }

    /// The `log` sink: one line per alert.
    fn log(&self, payload: &AlertPayload) {
        let entities = payload
            .entities
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        tracing::info!(
            sink = %self.id,
            alert = %payload.id,
            topic = %payload.topic.name,
            title = %payload.item.title,
            url = payload.item.url.as_deref().unwrap_or(""),
            entities = %entities,
            score = payload.score,
            "Alert."
        );
    }

    /// A request that got no answer: retriable, unless the request itself was wrong.
    fn request_error(&self, host: &str, err: reqwest::Error) -> DeliveryError {
        // The URL is dropped from the message: for Slack and Discord it is the token.
        let err = err.without_url();
        if err.is_timeout() {
            let within = self.timeout.map_or_else(String::new, |t| {
                format!(" within {}", humantime::format_duration(t))
            });
            return DeliveryError::Retriable {
                reason: format!("no answer from {host}{within} (timed out)"),
                retry_after: None,
            };
        }
        let chain = error_chain(&err);
        if err.is_builder() {
            return DeliveryError::Permanent {
                reason: format!("cannot build the request to {host}: {chain}"),
            };
        }
        let what = if err.is_connect() {
            "cannot connect to"
        } else {
            "request failed to"
        };
        DeliveryError::Retriable {
            reason: format!("{what} {host}: {chain}"),
            retry_after: None,
        }
    }
}

fn insert(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), DeliveryError> {
    let bad = |what: &str| DeliveryError::Permanent {
        reason: format!("{what} for header {name}: {value:?}"),
    };
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("bad name"))?;
    let value = HeaderValue::from_str(value).map_err(|_| bad("not a valid value"))?;
    headers.insert(name, value);
    Ok(())
}

/// `host[:port]` of a sink URL, the part safe to log.
fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => url.scheme().to_string(),
    }
}

fn unix_seconds(now: SystemTime) -> i64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// An error and its causes, `outer: inner: innermost`; reqwest's own message is only
/// "error sending request", the cause ("Connection refused") is in the chain.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The start of a failed response's body, on one line, for the error message.
async fn error_body(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            // The status already said what matters; a body that ends badly adds nothing.
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(MAX_ERROR_BODY);
    cut_chars(&one_line(&String::from_utf8_lossy(&bytes)), 200)
}

fn with_detail(err: DeliveryError, host: &str, detail: &str) -> DeliveryError {
    let extend = |reason: String| {
        if detail.is_empty() {
            format!("{host}: {reason}")
        } else {
            format!("{host}: {reason}: {detail}")
        }
    };
    match err {
        DeliveryError::Retriable {
            reason,
            retry_after,
        } => DeliveryError::Retriable {
            reason: extend(reason),
            retry_after,
        },
        DeliveryError::Permanent { reason } => DeliveryError::Permanent {
            reason: extend(reason),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap as AxumHeaders, Method, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::Router;
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::alert::payload::{
        EntityRef, ItemRef, RelatedRef, StoryRef, TopicRef, ALERT_TYPE, ALERT_VERSION,
    };

    fn payload() -> AlertPayload {
        AlertPayload {
            kind: ALERT_TYPE.into(),
            version: ALERT_VERSION,
            id: "a_00c0ffee00c0ffee".into(),
            topic: TopicRef {
                id: "ceasefire-talks".into(),
                name: "Ukraine ceasefire talks".into(),
            },
            item: ItemRef {
                id: "item-1".into(),
                feed: "Example World".into(),
                title: "Putin & Zelensky <agree> to talks".into(),
                url: Some("https://example.org/world/talks?a=1&b=2".into()),
                published: Some(Utc.with_ymd_and_hms(2025, 3, 14, 10, 0, 0).unwrap()),
                summary: "Negotiators met in Istanbul on Friday.".into(),
            },
            entities: vec![
                EntityRef {
                    id: "putin".into(),
                    name: "Vladimir Putin".into(),
                    kind: "person".into(),
                    mentions: 3,
                },
                EntityRef {
                    id: "zelensky".into(),
                    name: "Volodymyr Zelensky".into(),
                    kind: "person".into(),
                    mentions: 2,
                },
            ],
            matched: vec!["ceasefire".into(), "@putin".into()],
            score: 4.5,
            story: StoryRef {
                id: "story-1".into(),
                related: vec![RelatedRef {
                    feed: "Other".into(),
                    url: Some("https://other.example/x".into()),
                }],
            },
            detected_at: Utc.with_ymd_and_hms(2025, 3, 14, 10, 1, 2).unwrap(),
        }
    }

    /// A sink as the config loader makes it (so new config fields need no change
    /// here), then set to `kind` and `url`.
    fn sink(kind: SinkKind, url: Option<&str>) -> Sink {
        let toml = "[[sinks]]\nid = \"ops\"\nkind = \"log\"\n";
        let config = crate::config::parse_str(toml, std::path::Path::new("test.toml")).unwrap();
        let mut sink = config.sinks[0].clone();
        sink.kind = kind;
        sink.url = url.map(|u| Url::parse(u).unwrap());
        sink
    }

    /// HMAC-SHA256 written out from RFC 2104 over the `sha2` crate, to check the
    /// signatures independently of the `hmac` crate.
    fn hmac_by_hand(key: &[u8], message: &[u8]) -> [u8; 32] {
        const BLOCK: usize = 64;
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::new()
            .chain_update(&ipad)
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(&opad)
            .chain_update(inner)
            .finalize()
            .into()
    }

    /// What a receiver does: rebuild the signed content from the headers and the raw
    /// body, and look for a matching `v1` signature.
    fn verifies(key: &[u8], headers: &AxumHeaders, body: &[u8]) -> bool {
        let id = headers["webhook-id"].to_str().unwrap();
        let ts = headers["webhook-timestamp"].to_str().unwrap();
        let signed = format!("{id}.{ts}.").into_bytes();
        let expected = STANDARD.encode(hmac_by_hand(key, &[signed, body.to_vec()].concat()));
        headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|sig| sig == expected)
    }

    // --- secrets and signatures -----------------------------------------------------

    #[test]
    fn signature_matches_the_specification_example() {
        let secrets = parse_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(secrets.len(), 1);
        assert_eq!(
            sign(
                &secrets[0],
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn signature_matches_hand_written_hmac_for_any_key_length() {
        for len in [0, 1, 32, 63, 64, 65, 200] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let expected = hmac_by_hand(&key, b"id.42.body");
            assert_eq!(
                sign(&key, "id", 42, b"body"),
                format!("v1,{}", STANDARD.encode(expected)),
                "key of {len} bytes"
            );
        }
    }

    #[test]
    fn secrets_parse_table() {
        let cases: &[(&str, Vec<Vec<u8>>)] = &[
            ("", vec![]),
            ("  \n", vec![]),
            ("whsec_aGVsbG8=", vec![b"hello".to_vec()]),
            // Padding is optional.
            ("whsec_aGVsbG8", vec![b"hello".to_vec()]),
            ("plain-secret\n", vec![b"plain-secret".to_vec()]),
            (
                "whsec_aGVsbG8= whsec_d29ybGQ=",
                vec![b"hello".to_vec(), b"world".to_vec()],
            ),
            // Not base64, or empty: the whole token as raw bytes.
            (
                "whsec_!!not-base64!!",
                vec![b"whsec_!!not-base64!!".to_vec()],
            ),
            ("whsec_", vec![b"whsec_".to_vec()]),
            ("old new", vec![b"old".to_vec(), b"new".to_vec()]),
        ];
        for (value, expected) in cases {
            assert_eq!(&parse_secrets(value), expected, "{value:?}");
        }
        assert_eq!(
            signature_header(&parse_secrets("a b"), "id", 1, b"x")
                .split(' ')
                .count(),
            2
        );
    }

    #[test]
    fn secret_from_environment_or_credential() {
        let dir = tempfile::tempdir().unwrap();
        let dir_os = || Some(OsString::from(dir.path()));
        std::fs::write(dir.path().join("NEWSWATCH_OPS_SECRET"), "whsec_aGVsbG8=\n").unwrap();

        // The variable wins over the credential.
        let keys =
            read_secret("ops", "NEWSWATCH_OPS_SECRET", Some("raw".into()), dir_os()).unwrap();
        assert_eq!(keys, vec![b"raw".to_vec()]);
        // No variable (or an empty one): the credential file, newline trimmed.
        for value in [None, Some(OsString::new())] {
            let keys = read_secret("ops", "NEWSWATCH_OPS_SECRET", value, dir_os()).unwrap();
            assert_eq!(keys, vec![b"hello".to_vec()]);
        }

        // Neither: the message names the sink, the variable and the file looked at.
        let err = read_secret("ops", "NEWSWATCH_OTHER", None, dir_os()).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, SinkError::MissingSecret { .. }), "{err:?}");
        assert!(message.contains("\"ops\""), "{message}");
        assert!(message.contains("NEWSWATCH_OTHER"), "{message}");
        assert!(
            message.contains(&dir.path().join("NEWSWATCH_OTHER").display().to_string()),
            "{message}"
        );
        let err = read_secret("ops", "NEWSWATCH_OTHER", None, None).unwrap_err();
        assert!(err.to_string().contains("CREDENTIALS_DIRECTORY"), "{err}");

        std::fs::write(dir.path().join("EMPTY"), "\n").unwrap();
        let err = read_secret("ops", "EMPTY", None, dir_os()).unwrap_err();
        assert!(matches!(err, SinkError::EmptySecret { .. }), "{err:?}");
        std::fs::write(dir.path().join("BINARY"), [0xff, 0xfe]).unwrap();
        let err = read_secret("ops", "BINARY", None, dir_os()).unwrap_err();
        assert!(matches!(err, SinkError::NotUnicode { .. }), "{err:?}");

        // No secret_env: no secret, and nothing looked up.
        assert_eq!(load_secret(&sink(SinkKind::Webhook, None)).unwrap(), None);
    }

    // --- formats ----------------------------------------------------------------------

    #[test]
    fn webhook_body_is_the_payload() {
        let p = payload();
        let body = webhook_body(&p);
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["type"], "newswatch.alert");
        assert_eq!(value["version"], 1);
        assert_eq!(value["topic"]["id"], "ceasefire-talks");
        assert_eq!(value["item"]["published"], "2025-03-14T10:00:00Z");
        assert_eq!(value["detected_at"], "2025-03-14T10:01:02Z");
        assert_eq!(value["entities"][0]["mentions"], 3);
        assert_eq!(value["story"]["related"][0]["feed"], "Other");
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "type",
                "version",
                "id",
                "topic",
                "item",
                "entities",
                "matched",
                "score",
                "story",
                "detected_at"
            ]
        );
        assert_eq!(serde_json::from_slice::<AlertPayload>(&body).unwrap(), p);
    }

    #[test]
    fn slack_body_links_and_escapes() {
        let body = slack_body(&payload());
        let text = body["text"].as_str().unwrap();
        assert_eq!(
            text,
            "Ukraine ceasefire talks: <https://example.org/world/talks?a=1&amp;b=2|Putin &amp; Zelensky &lt;agree&gt; to talks>"
        );
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(
            blocks[0]["text"]["text"],
            "*<https://example.org/world/talks?a=1&amp;b=2|Putin &amp; Zelensky &lt;agree&gt; to talks>*"
        );
        assert_eq!(
            blocks[1]["text"]["text"],
            "Negotiators met in Istanbul on Friday."
        );
        let fields: Vec<&str> = blocks[2]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "*Topic*\nUkraine ceasefire talks",
                "*Feed*\nExample World",
                "*Entities*\nVladimir Putin, Volodymyr Zelensky",
                "*Matched*\nceasefire, @putin",
                "*Score*\n4.5",
            ]
        );
        assert_eq!(blocks[3]["type"], "context");
        for block in blocks {
            assert!(block["type"].is_string());
        }
    }

    #[test]
    fn slack_body_survives_hostile_items() {
        let mut p = payload();
        p.item.title = "<!channel> x\ny".repeat(200);
        p.item.url = Some("javascript:alert(1)".into());
        p.item.summary = "&".repeat(5000);
        p.entities = (0..20)
            .map(|i| EntityRef {
                id: format!("e{i}"),
                name: format!("Name {i}"),
                kind: "other".into(),
                mentions: 1,
            })
            .collect();
        let body = slack_body(&p);
        let text = body.to_string();
        assert!(!text.contains("<!channel>"), "mention escaped");
        assert!(!text.contains("javascript:"), "only http(s) is linked");
        for block in body["blocks"].as_array().unwrap() {
            if let Some(t) = block["text"]["text"].as_str() {
                assert!(t.chars().count() <= 3000, "section text {}", t.len());
                assert!(!t.contains('\n') || t.starts_with('*'), "{t}");
            }
            for field in block["fields"].as_array().into_iter().flatten() {
                assert!(field["text"].as_str().unwrap().chars().count() <= 2000);
            }
        }
        let entities = &body["blocks"][2]["fields"][2]["text"];
        assert!(
            entities.as_str().unwrap().ends_with("Name 7, and 12 more"),
            "{entities}"
        );
        // A URL with `|` keeps the link intact.
        p.item.url = Some("https://example.org/a|b".into());
        let body = slack_body(&p);
        assert!(body["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("*<https://example.org/a%7Cb|"));
    }

    #[test]
    fn discord_body_structure() {
        let body = discord_body(&payload());
        assert_eq!(
            body["content"],
            "**Ukraine ceasefire talks**: Putin & Zelensky \\<agree\\> to talks"
        );
        assert_eq!(body["allowed_mentions"]["parse"], json!([]));
        let embeds = body["embeds"].as_array().unwrap();
        assert_eq!(embeds.len(), 1);
        let embed = &embeds[0];
        assert_eq!(embed["title"], "Putin & Zelensky <agree> to talks");
        assert_eq!(embed["url"], "https://example.org/world/talks?a=1&b=2");
        assert_eq!(
            embed["description"],
            "Negotiators met in Istanbul on Friday."
        );
        assert_eq!(embed["timestamp"], "2025-03-14T10:00:00Z");
        let fields: Vec<(&str, &str)> = embed["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["name"].as_str().unwrap(), f["value"].as_str().unwrap()))
            .collect();
        assert_eq!(
            fields,
            [
                ("Topic", "Ukraine ceasefire talks"),
                ("Feed", "Example World"),
                ("Score", "4.5"),
                ("Entities", "Vladimir Putin, Volodymyr Zelensky"),
            ]
        );

        // Without a publication date the detection time stands in.
        let mut p = payload();
        p.item.published = None;
        p.item.url = None;
        p.entities.clear();
        let embed = &discord_body(&p)["embeds"][0];
        assert_eq!(embed["timestamp"], "2025-03-14T10:01:02Z");
        assert!(embed.get("url").is_none());
        assert_eq!(
            embed["fields"][3]["value"], "-",
            "Discord rejects empty values"
        );
    }

    #[test]
    fn discord_body_respects_limits() {
        let mut p = payload();
        p.item.title = "é".repeat(300);
        p.item.summary = "😀 word ".repeat(2000);
        p.topic.name = "t".repeat(2000);
        p.item.feed = "f".repeat(2000);
        let body = discord_body(&p);
        let embed = &body["embeds"][0];
        let len = |v: &Value| utf16_len(v.as_str().unwrap());
        assert_eq!(len(&embed["title"]), 256);
        assert!(embed["title"].as_str().unwrap().ends_with('…'));
        assert!(len(&embed["description"]) <= 4096);
        let mut total =
            len(&embed["title"]) + len(&embed["description"]) + len(&embed["footer"]["text"]);
        for field in embed["fields"].as_array().unwrap() {
            assert!(len(&field["value"]) <= 1024);
            total += len(&field["name"]) + len(&field["value"]);
        }
        assert!(total <= 6000, "embed total {total}");
        assert!(len(&body["content"]) <= 2000);
    }

    #[test]
    fn discord_escapes_markdown() {
        assert_eq!(
            discord_escape("*a* _b_ `c` [d](e) @everyone"),
            "\\*a\\* \\_b\\_ \\`c\\` \\[d\\](e) @everyone"
        );
    }

    #[test]
    fn ntfy_request_headers_and_body() {
        let request = ntfy_request(&payload());
        assert_eq!(
            request.headers,
            vec![
                ("Title", "Ukraine ceasefire talks".to_string()),
                ("Tags", "putin,zelensky".to_string()),
                (
                    "Click",
                    "https://example.org/world/talks?a=1&b=2".to_string()
                ),
            ]
        );
        assert_eq!(
            request.body,
            "Putin & Zelensky <agree> to talks\nNegotiators met in Istanbul on Friday."
        );
    }

    #[test]
    fn ntfy_headers_are_sanitised() {
        let mut p = payload();
        p.topic.name = "Evil\r\nInjected: yes\u{7}".into();
        p.entities = (0..9)
            .map(|i| EntityRef {
                id: format!("id{i},\n"),
                name: "x".into(),
                kind: "other".into(),
                mentions: 1,
            })
            .collect();
        p.item.url = Some("https://bücher.example/straße?q=ü".into());
        p.item.summary = "ß".repeat(3000);
        let request = ntfy_request(&p);
        for (name, value) in &request.headers {
            assert!(
                value.bytes().all(|b| (b' '..=b'~').contains(&b)),
                "{name}: {value:?}"
            );
            assert!(HeaderValue::from_str(value).is_ok());
        }
        assert_eq!(
            request.headers[0],
            ("Title", "Evil Injected: yes".to_string())
        );
        assert_eq!(
            request.headers[1],
            ("Tags", "id0,id1,id2,id3,id4".to_string())
        );
        assert_eq!(
            request.headers[2],
            (
                "Click",
                "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%BC".to_string()
            )
        );
        let summary = request.body.split_once('\n').unwrap().1;
        assert_eq!(summary.chars().count(), 1000);
        assert!(request.body.len() <= MAX_NTFY_BODY_BYTES);
    }

    #[test]
    fn non_ascii_titles_are_rfc2047_encoded() {
        let title = "Переговоры о прекращении огня между Россией и Украиной";
        let encoded = encode_header_words(title);
        let mut decoded = Vec::new();
        for word in encoded.split(' ') {
            assert!(word.len() <= 75, "{word}");
            let inner = word
                .strip_prefix("=?UTF-8?B?")
                .and_then(|w| w.strip_suffix("?="))
                .unwrap();
            decoded.extend(STANDARD.decode(inner).unwrap());
        }
        assert_eq!(String::from_utf8(decoded).unwrap(), title);
        assert_eq!(encode_header_words("Plain title"), "Plain title");
        assert_eq!(encode_header_words("é"), "=?UTF-8?B?w6k=?=");
        assert!(encode_header_words("a =?b?= c").starts_with("=?UTF-8?B?"));
    }

    #[test]
    fn cuts_respect_char_boundaries() {
        assert_eq!(cut_chars("abcdef", 6), "abcdef");
        assert_eq!(cut_chars("abcdef", 4), "abc…");
        assert_eq!(cut_utf16("😀😀😀", 4), "😀…");
        assert_eq!(cut_bytes("ééé", 5), "é…");
        assert_eq!(cut_bytes("ééé", 2), "");
        assert_eq!(one_line(" a\r\n\tb \u{0}c "), "a b c");
    }

    #[test]
    fn client_needs_a_url_and_hides_it() {
        let err = SinkClient::new(&sink(SinkKind::Slack, None), None).unwrap_err();
        assert_eq!(err.to_string(), "sink \"ops\": a slack sink needs a url");
        assert!(SinkClient::new(&sink(SinkKind::Log, None), None).is_ok());
        let client = SinkClient::new(
            &sink(
                SinkKind::Slack,
                Some("https://hooks.slack.com/services/T0/B0/SECRET"),
            ),
            Some(vec![b"key".to_vec()]),
        )
        .unwrap();
        let debug = format!("{client:?}");
        assert!(
            !debug.contains("SECRET") && !debug.contains("key\""),
            "{debug}"
        );
    }

    // --- delivery against a real receiver ------------------------------------------------

    #[derive(Debug, Clone)]
    struct Recorded {
        method: Method,
        headers: AxumHeaders,
        body: Vec<u8>,
    }

    struct Receiver {
        addr: SocketAddr,
        seen: Arc<Mutex<Vec<Recorded>>>,
    }

    impl Receiver {
        fn url(&self) -> String {
            format!("http://{}/hook/SECRET-TOKEN", self.addr)
        }

        fn one(&self) -> Recorded {
            let seen = self.seen.lock().unwrap();
            assert_eq!(seen.len(), 1, "exactly one request");
            seen[0].clone()
        }
    }

    #[derive(Clone)]
    struct Answer {
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: &'static str,
        delay: Duration,
        seen: Arc<Mutex<Vec<Recorded>>>,
    }

    async fn record(
        State(answer): State<Answer>,
        method: Method,
        headers: AxumHeaders,
        body: Bytes,
    ) -> Response {
        answer.seen.lock().unwrap().push(Recorded {
            method,
            headers,
            body: body.to_vec(),
        });
        tokio::time::sleep(answer.delay).await;
        let mut response =
            (StatusCode::from_u16(answer.status).unwrap(), answer.body).into_response();
        for (name, value) in answer.headers {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
        response
    }

    /// An HTTP receiver on 127.0.0.1 answering every request the same way.
    async fn receiver(
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: &'static str,
        delay: Duration,
    ) -> Receiver {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer = Answer {
            status,
            headers,
            body,
            delay,
            seen: seen.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(record).with_state(answer);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, seen }
    }

    async fn ok_receiver() -> Receiver {
        receiver(204, vec![], "", Duration::ZERO).await
    }

    fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    async fn send_to(
        kind: SinkKind,
        url: &str,
        secrets: Option<Vec<Vec<u8>>>,
    ) -> Result<(), DeliveryError> {
        let client = SinkClient::new(&sink(kind, Some(url)), secrets).unwrap();
        client.send(&http(), &payload(), at(1_741_946_462)).await
    }

    #[tokio::test]
    async fn webhook_delivery_is_signed_per_contract() {
        let rx = ok_receiver().await;
        let keys = parse_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        send_to(SinkKind::Webhook, &rx.url(), Some(keys.clone()))
            .await
            .unwrap();
        let got = rx.one();
        assert_eq!(got.method, Method::POST);
        assert_eq!(got.headers["content-type"], "application/json");
        assert_eq!(got.headers["webhook-id"], "a_00c0ffee00c0ffee");
        assert_eq!(got.headers["webhook-timestamp"], "1741946462");
        let signature = got.headers["webhook-signature"].to_str().unwrap();
        assert!(signature.starts_with("v1,"), "{signature}");
        assert_eq!(signature.split(' ').count(), 1);
        assert!(verifies(&keys[0], &got.headers, &got.body));
        assert!(!verifies(b"wrong key", &got.headers, &got.body));
        let mut tampered = got.body.clone();
        tampered[10] ^= 1;
        assert!(!verifies(&keys[0], &got.headers, &tampered));
        assert_eq!(
            serde_json::from_slice::<AlertPayload>(&got.body).unwrap(),
            payload()
        );
    }

    #[tokio::test]
    async fn webhook_with_rotated_secrets_sends_two_signatures() {
        let rx = ok_receiver().await;
        let keys = parse_secrets("whsec_b2xkLWtleQ== brand-new-raw-key");
        assert_eq!(
            keys,
            vec![b"old-key".to_vec(), b"brand-new-raw-key".to_vec()]
        );
        send_to(SinkKind::Webhook, &rx.url(), Some(keys.clone()))
            .await
            .unwrap();
        let got = rx.one();
        let signatures: Vec<&str> = got.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .collect();
        assert_eq!(signatures.len(), 2);
        assert_ne!(signatures[0], signatures[1]);
        for key in &keys {
            assert!(verifies(key, &got.headers, &got.body));
        }
    }

    #[tokio::test]
    async fn webhook_without_secret_is_unsigned() {
        let rx = ok_receiver().await;
        send_to(SinkKind::Webhook, &rx.url(), None).await.unwrap();
        let got = rx.one();
        assert!(got.headers.get("webhook-signature").is_none());
        assert_eq!(got.headers["webhook-id"], "a_00c0ffee00c0ffee");
    }

    #[tokio::test]
    async fn chat_sinks_send_their_formats() {
        for (kind, content_type) in [
            (SinkKind::Slack, "application/json"),
            (SinkKind::Discord, "application/json"),
        ] {
            let rx = ok_receiver().await;
            send_to(kind, &rx.url(), None).await.unwrap();
            let got = rx.one();
            assert_eq!(got.method, Method::POST);
            assert_eq!(got.headers["content-type"], content_type);
            assert!(got.headers.get("webhook-id").is_none());
            let value: Value = serde_json::from_slice(&got.body).unwrap();
            let expected = match kind {
                SinkKind::Slack => slack_body(&payload()),
                _ => discord_body(&payload()),
            };
            assert_eq!(value, expected, "{kind:?}");
        }

        let rx = ok_receiver().await;
        send_to(SinkKind::Ntfy, &rx.url(), None).await.unwrap();
        let got = rx.one();
        assert_eq!(got.headers["content-type"], "text/plain; charset=utf-8");
        assert_eq!(got.headers["title"], "Ukraine ceasefire talks");
        assert_eq!(got.headers["tags"], "putin,zelensky");
        assert_eq!(
            got.headers["click"],
            "https://example.org/world/talks?a=1&b=2"
        );
        assert_eq!(
            String::from_utf8(got.body).unwrap(),
            ntfy_request(&payload()).body
        );
    }

    #[tokio::test]
    async fn log_sink_sends_nothing() {
        let client = SinkClient::new(&sink(SinkKind::Log, None), None).unwrap();
        client.send(&http(), &payload(), at(0)).await.unwrap();
    }

    #[tokio::test]
    async fn responses_are_classified() {
        // 503 with Retry-After: retriable, the wait passed on.
        let rx = receiver(503, vec![("retry-after", "7")], "", Duration::ZERO).await;
        let err = send_to(SinkKind::Webhook, &rx.url(), None)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            DeliveryError::Retriable {
                reason: format!(
                    "{}: receiver answered HTTP 503 Service Unavailable",
                    rx.addr
                ),
                retry_after: Some(Duration::from_secs(7)),
            }
        );

        // 400: permanent, with the receiver's reason quoted.
        let rx = receiver(400, vec![], "invalid_payload\n", Duration::ZERO).await;
        let err = send_to(SinkKind::Slack, &rx.url(), None).await.unwrap_err();
        assert!(err.is_permanent(), "{err}");
        assert!(
            err.to_string()
                .ends_with("HTTP 400 Bad Request: invalid_payload (not retried)"),
            "{err}"
        );
        assert!(!err.to_string().contains("SECRET-TOKEN"), "{err}");

        // 408: retriable.
        let rx = receiver(408, vec![], "", Duration::ZERO).await;
        let err = send_to(SinkKind::Webhook, &rx.url(), None)
            .await
            .unwrap_err();
        assert!(!err.is_permanent(), "{err}");
        assert_eq!(err.retry_after(), None);

        // 429 with an HTTP date, relative to the send time.
        let rx = receiver(
            429,
            vec![("retry-after", "Fri, 14 Mar 2025 10:02:02 GMT")],
            "",
            Duration::ZERO,
        )
        .await;
        let err = send_to(SinkKind::Discord, &rx.url(), None)
            .await
            .unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(60)), "{err}");

        // A redirect is not followed (it would turn the POST into a GET).
        let rx = receiver(302, vec![("location", "/elsewhere")], "", Duration::ZERO).await;
        let err = send_to(SinkKind::Webhook, &rx.url(), None)
            .await
            .unwrap_err();
        assert!(!err.is_permanent(), "{err}");
        assert_eq!(rx.seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn unreachable_receivers_are_retriable() {
        // A port nobody listens on: bound, then released.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = format!("http://{addr}/hook/SECRET-TOKEN");
        let err = send_to(SinkKind::Webhook, &url, None).await.unwrap_err();
        match &err {
            DeliveryError::Retriable {
                reason,
                retry_after,
            } => {
                assert!(
                    reason.starts_with(&format!("cannot connect to {addr}")),
                    "{reason}"
                );
                assert!(!reason.contains("SECRET-TOKEN"), "{reason}");
                assert_eq!(*retry_after, None);
            }
            other => panic!("expected retriable, got {other:?}"),
        }

        // A receiver that never answers in time.
        let rx = receiver(200, vec![], "", Duration::from_secs(10)).await;
        let client = SinkClient::new(&sink(SinkKind::Webhook, Some(&rx.url())), None)
            .unwrap()
            .timeout(Duration::from_millis(200));
        let err = client.send(&http(), &payload(), at(0)).await.unwrap_err();
        assert!(!err.is_permanent(), "{err}");
        assert!(err.to_string().contains("no answer"), "{err}");
    }

    // --- digests --------------------------------------------------------------------

    /// `n` alerts: the first two on "Museums", the rest on the payload's topic.
    fn digest_alerts(n: usize) -> Vec<AlertPayload> {
        (0..n)
            .map(|i| {
                let mut p = payload();
                p.id = format!("a_{i:016x}");
                p.item.title = format!("Story {i} <b>&</b>");
                p.item.url = Some(format!("https://example.org/news/{i}?x=(1)"));
                if i < 2 {
                    p.topic = TopicRef {
                        id: "museums".into(),
                        name: "Museums".into(),
                    };
                }
                p
            })
            .collect()
    }

    #[test]
    fn digest_ids_are_stable_and_order_free() {
        let id = digest_id(["a_1", "a_2", "a_3"]);
        assert!(id.starts_with("d_") && id.len() == 18, "{id}");
        assert_eq!(digest_id(["a_3", "a_1", "a_2"]), id);
        assert_eq!(digest_id(["a_3", "a_1", "a_2", "a_1"]), id);
        assert_ne!(digest_id(["a_1", "a_2"]), id);
    }

    #[test]
    fn digest_body_holds_the_alert_bodies() {
        let alerts = digest_alerts(3);
        let body = digest_body("d_0123456789abcdef", &alerts).unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["type", "version", "id", "alerts"]);
        assert_eq!(value["type"], "newswatch.digest");
        assert_eq!(value["version"], 1);
        assert_eq!(value["id"], "d_0123456789abcdef");
        let inner: Vec<AlertPayload> = serde_json::from_value(value["alerts"].clone()).unwrap();
        assert_eq!(inner, alerts);
        // Each element is byte for byte the single alert's body.
        let single = String::from_utf8(webhook_body(&alerts[1])).unwrap();
        assert!(String::from_utf8(body).unwrap().contains(&single));
    }

    #[test]
    fn fit_lines_counts_what_is_left_out() {
        let line = |text: &str, is_alert| Line {
            text: text.into(),
            is_alert,
        };
        let lines = [
            line("T1", false),
            line("aaaa", true),
            line("bbbb", true),
            line("T2", false),
            line(&"c".repeat(20), true),
        ];
        let all = format!("T1\naaaa\nbbbb\nT2\n{}", "c".repeat(20));
        assert_eq!(fit_lines(&lines, 100, |_| 1), all);
        // Exactly enough for everything: no note.
        assert_eq!(fit_lines(&lines, 36, |_| 1), all);
        // A heading is not left without its alerts.
        assert_eq!(fit_lines(&lines, 35, |_| 1), "T1\naaaa\nbbbb\n…and 1 more");
        assert_eq!(fit_lines(&lines, 19, |_| 1), "T1\naaaa\n…and 2 more");
        assert_eq!(fit_lines(&lines, 12, |_| 1), "…and 3 more");
        assert_eq!(fit_lines(&[], 10, |_| 1), "");
    }

    #[test]
    fn chat_digests_group_by_topic_with_links() {
        let alerts = digest_alerts(3);
        let id = digest_id(alerts.iter().map(|p| p.id.as_str()));

        let slack = slack_digest_body(&id, &alerts);
        assert_eq!(
            slack["text"],
            "newswatch: 3 new alerts: Museums (2), Ukraine ceasefire talks (1)"
        );
        let blocks = slack["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["text"]["text"], "*newswatch: 3 new alerts*");
        assert_eq!(
            blocks[1]["text"]["text"],
            "*Museums* (2)\n\
             • <https://example.org/news/0?x=(1)|Story 0 &lt;b&gt;&amp;&lt;/b&gt;>\n\
             • <https://example.org/news/1?x=(1)|Story 1 &lt;b&gt;&amp;&lt;/b&gt;>"
        );
        assert_eq!(
            blocks[2]["text"]["text"],
            "*Ukraine ceasefire talks* (1)\n• <https://example.org/news/2?x=(1)|Story 2 &lt;b&gt;&amp;&lt;/b&gt;>"
        );
        let context = blocks[3]["elements"][0]["text"].as_str().unwrap();
        assert!(
            context.starts_with(&format!("newswatch digest {id} · 3 alerts")),
            "{context}"
        );

        let discord = discord_digest_body(&id, &alerts);
        assert_eq!(
            discord["content"],
            "**newswatch: 3 new alerts**: Museums (2), Ukraine ceasefire talks (1)"
        );
        assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
        let embed = &discord["embeds"][0];
        assert_eq!(embed["title"], "newswatch: 3 new alerts");
        assert_eq!(
            embed["description"],
            "**Museums** (2)\n\
             • [Story 0 \\<b\\>&\\</b\\>](https://example.org/news/0?x=%281%29)\n\
             • [Story 1 \\<b\\>&\\</b\\>](https://example.org/news/1?x=%281%29)\n\
             **Ukraine ceasefire talks** (1)\n\
             • [Story 2 \\<b\\>&\\</b\\>](https://example.org/news/2?x=%281%29)"
        );
        assert_eq!(embed["timestamp"], "2025-03-14T10:01:02Z");

        let ntfy = ntfy_digest_request(&id, &alerts);
        assert_eq!(
            ntfy.headers,
            vec![("Title", "newswatch: 3 new alerts".to_string())]
        );
        assert_eq!(
            ntfy.body,
            format!(
                "Museums (2)\n- Story 0 <b>&</b>\n  https://example.org/news/0?x=(1)\n\
                 - Story 1 <b>&</b>\n  https://example.org/news/1?x=(1)\n\n\
                 Ukraine ceasefire talks (1)\n- Story 2 <b>&</b>\n  https://example.org/news/2?x=(1)\n\n\
                 newswatch digest {id} · 3 alerts · detected 2025-03-14T10:01:02Z"
            )
        );
        // One topic: its name in the title; one alert: its link as Click.
        let one = ntfy_digest_request(&id, &alerts[2..]);
        assert_eq!(
            one.headers,
            vec![
                ("Title", "Ukraine ceasefire talks: 1 new alert".to_string()),
                ("Click", "https://example.org/news/2?x=(1)".to_string()),
            ]
        );
    }

    #[test]
    fn chat_digests_respect_limits() {
        // A full digest of long titles and long URLs, each on its own topic.
        let alerts: Vec<AlertPayload> = (0..50)
            .map(|i| {
                let mut p = payload();
                p.id = format!("a_{i}");
                p.topic = TopicRef {
                    id: format!("t{i}"),
                    name: format!("Topic {i} ").repeat(40),
                };
                p.item.title = "😀 <!channel> @everyone ".repeat(40);
                p.item.url = Some(format!("https://example.org/{}", "p".repeat(1400)));
                p
            })
            .collect();
        let slack = slack_digest_body("d_1", &alerts);
        let blocks = slack["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50, "{} blocks", blocks.len());
        assert!(slack["text"].as_str().unwrap().chars().count() <= 300);
        assert!(!slack.to_string().contains("<!channel>"));
        for block in blocks {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= 3000, "{}", text.len());
            }
        }
        let hidden = blocks[blocks.len() - 2]["elements"][0]["text"]
            .as_str()
            .unwrap();
        assert_eq!(hidden, "…and 5 more in 5 more topics");

        let discord = discord_digest_body("d_1", &alerts);
        let embed = &discord["embeds"][0];
        let description = embed["description"].as_str().unwrap();
        assert!(utf16_len(description) <= 4096);
        assert!(
            description.ends_with(" more"),
            "titles left out are counted"
        );
        let total = utf16_len(description)
            + utf16_len(embed["title"].as_str().unwrap())
            + utf16_len(embed["footer"]["text"].as_str().unwrap());
        assert!(total <= 6000);
        assert!(utf16_len(discord["content"].as_str().unwrap()) <= 2000);

        let ntfy = ntfy_digest_request("d_1", &alerts);
        assert!(ntfy.body.len() <= MAX_NTFY_BODY_BYTES);
        assert!(ntfy
            .body
            .contains(" more\n\nnewswatch digest d_1 · 50 alerts"));
        for (_, value) in &ntfy.headers {
            assert!(HeaderValue::from_str(value).is_ok(), "{value}");
        }
    }

    #[tokio::test]
    async fn webhook_digest_is_one_signed_request() {
        let rx = ok_receiver().await;
        let keys = parse_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let client = SinkClient::new(
            &sink(SinkKind::Webhook, Some(&rx.url())),
            Some(keys.clone()),
        )
        .unwrap();
        let alerts = digest_alerts(3);
        let id = digest_id(alerts.iter().map(|p| p.id.as_str()));
        client
            .send_digest(&http(), &id, &alerts, at(1_741_946_462))
            .await
            .unwrap();
        let got = rx.one();
        assert_eq!(got.headers["content-type"], "application/json");
        assert_eq!(got.headers["webhook-id"], id.as_str());
        assert_eq!(got.headers["webhook-timestamp"], "1741946462");
        assert!(verifies(&keys[0], &got.headers, &got.body));
        assert_eq!(got.body, digest_body(&id, &alerts).unwrap());
    }

    #[tokio::test]
    async fn chat_and_log_digests_send_one_message() {
        let alerts = digest_alerts(4);
        let id = digest_id(alerts.iter().map(|p| p.id.as_str()));
        for kind in [SinkKind::Slack, SinkKind::Discord, SinkKind::Ntfy] {
            let rx = ok_receiver().await;
            let client = SinkClient::new(&sink(kind, Some(&rx.url())), None).unwrap();
            client
                .send_digest(&http(), &id, &alerts, at(0))
                .await
                .unwrap();
            let got = rx.one();
            assert!(got.headers.get("webhook-id").is_none());
            let body = String::from_utf8(got.body).unwrap();
            match kind {
                SinkKind::Slack => assert_eq!(
                    serde_json::from_str::<Value>(&body).unwrap(),
                    slack_digest_body(&id, &alerts)
                ),
                SinkKind::Discord => assert_eq!(
                    serde_json::from_str::<Value>(&body).unwrap(),
                    discord_digest_body(&id, &alerts)
                ),
                _ => {
                    assert_eq!(body, ntfy_digest_request(&id, &alerts).body);
                    assert_eq!(got.headers["title"], "newswatch: 4 new alerts");
                }
            }
        }
        let log = SinkClient::new(&sink(SinkKind::Log, None), None).unwrap();
        log.send_digest(&http(), &id, &alerts, at(0)).await.unwrap();

        // A rejected digest is one permanent failure.
        let rx = receiver(400, vec![], "bad", Duration::ZERO).await;
        let client = SinkClient::new(&sink(SinkKind::Webhook, Some(&rx.url())), None).unwrap();
        let err = client
            .send_digest(&http(), &id, &alerts, at(0))
            .await
            .unwrap_err();
        assert!(err.is_permanent(), "{err}");
        assert_eq!(rx.seen.lock().unwrap().len(), 1);
    }
}
