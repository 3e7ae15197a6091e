//! Delivering one alert to one sink: the signing secret, the wire format of each sink
//! kind (generic webhook, Slack, Discord, ntfy, log), and one HTTP attempt classified
//! into delivered, retriable or permanent.
//!
//! What owns what: this module makes a single attempt and says how it went; when to try
//! again is [`super::retry`]'s business and remembering attempts is the outbox's. Each
//! kind has its own file, format and delivery, so a change for one service cannot alter
//! what another receives; here are the client, the HTTP attempt shared by the kinds that
//! post, and (in `text`) the cutting and digest listing they share. The format
//! functions are pure so they can be tested without a network.
//!
//! Slack and Discord webhook URLs carry their credentials in the path, so error
//! messages and `Debug` name only the host.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use serde_json::Value;
use url::Url;
use xxhash_rust::xxh3::xxh3_64;

use super::retry::{self, DeliveryError};
use crate::config::{Sink, SinkKind};
use crate::model::payload::{AlertPayload, Payload};
use text::{cut_chars, one_line};
use webhook::credential_note;

mod discord;
mod log;
mod ntfy;
mod slack;
#[cfg(test)]
mod testing;
mod text;
mod webhook;

pub use discord::{discord_body, discord_digest_body, discord_followup_body};
pub use ntfy::{ntfy_digest_request, ntfy_followup_request, ntfy_request, NtfyRequest};
pub use slack::{slack_body, slack_digest_body, slack_followup_body};
pub use webhook::{
    digest_body, load_secret, parse_secrets, sign, signature_header, webhook_body, DIGEST_TYPE,
    DIGEST_VERSION, EVENT_HEADER, SECRET_PREFIX,
};

/// Bytes of a failed response's body quoted in the error (Slack says `invalid_payload`,
/// Discord a JSON reason): enough to tell why, not enough to flood the log.
const MAX_ERROR_BODY: usize = 512;

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

/// The id of a digest of the alerts with `ids`: the same alerts, in any order, give
/// the same id, so a digest sent again (a retry, a crash before its outcome was
/// recorded) carries the id it had. A digest of other alerts gets another id.
pub fn digest_id<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut ids: Vec<&str> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    format!("d_{:016x}", xxh3_64(ids.join("\n").as_bytes()))
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

/// What one message carries: one alert, a follow-up (any other event), or a digest
/// of several alerts.
#[derive(Debug, Clone, Copy)]
enum Content<'a> {
    Alert(&'a AlertPayload),
    Followup(&'a Payload),
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
            Content::Followup(payload) => payload.id(),
            Content::Digest { id, .. } => id,
        }
    }

    /// The event type, for the `newswatch-event` header: `digest` for a digest.
    fn event(&self) -> &'a str {
        match self {
            Content::Alert(payload) => &payload.event,
            Content::Followup(payload) => payload.event(),
            Content::Digest { .. } => "digest",
        }
    }
}

impl SinkClient {
    /// A client for `sink` with the keys [`load_secret`] found for it.
    pub fn new(sink: &Sink, secrets: Option<Vec<Vec<u8>>>) -> Result<Self, SinkError> {
        if sink.url.is_none() && sink.kind != SinkKind::Log {
            return Err(SinkError::MissingUrl {
                sink: sink.id.clone(),
                kind: sink.kind.as_str(),
            });
        }
        let secrets = secrets.unwrap_or_default();
        if !secrets.is_empty() && sink.kind != SinkKind::Webhook {
            tracing::warn!(
                sink = %sink.id,
                kind = sink.kind.as_str(),
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

    /// One delivery attempt of `payload` (of any event type), signed as of `now`.
    ///
    /// Ok means the receiver answered 2xx. `http` should not follow redirects (a POST
    /// redirected with 301/302 arrives as a GET without the alert); a 3xx is then
    /// reported as retriable like any unexpected answer.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        payload: &Payload,
        now: SystemTime,
    ) -> Result<(), DeliveryError> {
        let content = match payload {
            Payload::Alert(alert) => Content::Alert(alert),
            other => Content::Followup(other),
        };
        self.deliver(http, content, now).await
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

    /// One attempt, in the format of the sink's kind.
    async fn deliver(
        &self,
        http: &reqwest::Client,
        content: Content<'_>,
        now: SystemTime,
    ) -> Result<(), DeliveryError> {
        match self.kind {
            SinkKind::Webhook => webhook::deliver(self, http, content, now).await,
            SinkKind::Slack => slack::deliver(self, http, content, now).await,
            SinkKind::Discord => discord::deliver(self, http, content, now).await,
            SinkKind::Ntfy => ntfy::deliver(self, http, content, now).await,
            SinkKind::Log => log::deliver(self, content),
        }
    }

    /// The URL to post to, which every kind but the log sink has.
    fn url(&self) -> Result<Url, DeliveryError> {
        match &self.url {
            Some(url) => Ok(url.clone()),
            // `new` refuses this; kept total rather than panicking.
            None => Err(DeliveryError::Permanent {
                reason: format!("sink {:?} has no url", self.id),
            }),
        }
    }

    /// POSTs a JSON `body` to the sink's URL, as the chat kinds (Slack, Discord) take
    /// their messages; see [`SinkClient::post`].
    async fn post_json(
        &self,
        http: &reqwest::Client,
        body: &Value,
        id: &str,
        now: SystemTime,
    ) -> Result<(), DeliveryError> {
        let url = self.url()?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let body = body.to_string().into_bytes();
        self.post(http, url, headers, body, id, now).await
    }

    /// POSTs `body` with `headers` to `url` and classifies the answer; `id`, the alert's
    /// or the digest's, is for the log.
    async fn post(
        &self,
        http: &reqwest::Client,
        url: Url,
        headers: HeaderMap,
        body: Vec<u8>,
        id: &str,
        now: SystemTime,
    ) -> Result<(), DeliveryError> {
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
    use axum::http::Method;
    use serde_json::{json, Value};

    use super::ntfy::MAX_NTFY_BODY_BYTES;
    use super::testing::{at, digest_alerts, http, ok_receiver, payload, receiver, send_to, sink};
    use super::text::utf16_len;
    use super::*;
    use crate::model::payload::TopicRef;

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
        let err = client
            .send(&http(), &Payload::Alert(payload()), at(0))
            .await
            .unwrap_err();
        assert!(!err.is_permanent(), "{err}");
        assert!(err.to_string().contains("no answer"), "{err}");
    }

    // --- digests --------------------------------------------------------------------

    #[test]
    fn digest_ids_are_stable_and_order_free() {
        let id = digest_id(["a_1", "a_2", "a_3"]);
        assert!(id.starts_with("d_") && id.len() == 18, "{id}");
        assert_eq!(digest_id(["a_3", "a_1", "a_2"]), id);
        assert_eq!(digest_id(["a_3", "a_1", "a_2", "a_1"]), id);
        assert_ne!(digest_id(["a_1", "a_2"]), id);
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
