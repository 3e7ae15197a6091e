//! Fixtures for the sinks' tests: one sample alert, a sink as the config loader makes
//! it, and an HTTP receiver on 127.0.0.1 that records what it is sent, shared so that
//! every kind's tests check their format against the same alert.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap as AxumHeaders, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{TimeZone, Utc};
use reqwest::header::HeaderValue;
use url::Url;

use super::SinkClient;
use crate::alert::retry::DeliveryError;
use crate::config::{Sink, SinkKind};
use crate::model::payload::{
    AlertPayload, EntityRef, ItemRef, Payload, RelatedRef, StoryRef, TopicRef, ALERT_TYPE,
    ALERT_VERSION,
};

pub(super) fn payload() -> AlertPayload {
    AlertPayload {
        kind: ALERT_TYPE.into(),
        version: ALERT_VERSION,
        event: "story.new".into(),
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

/// A `story.updated` follow-up: seven copies joined a story whose title needs escaping.
pub(super) fn story_updated() -> Payload {
    use crate::model::payload::{SourceRef, StorySummary, StoryUpdated};
    Payload::StoryUpdated(StoryUpdated {
        kind: "newswatch.event".into(),
        version: 1,
        event: "story.updated".into(),
        id: "e_00c0ffee00c0ffee".into(),
        topic: TopicRef {
            id: "ceasefire-talks".into(),
            name: "Ukraine ceasefire talks".into(),
        },
        story: StorySummary {
            id: "story-1".into(),
            title: "Putin & Zelensky <agree> to talks @everyone".into(),
            url: Some("https://example.org/world/talks".into()),
            sources: 10,
        },
        step: 2,
        added: (1..=7)
            .map(|i| crate::model::payload::SourceRef {
                feed: format!("https://wire{i}.example/rss"),
                title: format!("Copy {i} *bold*"),
                url: Some(format!("https://wire{i}.example/talks")),
            })
            .collect::<Vec<SourceRef>>(),
        detected_at: Utc.with_ymd_and_hms(2025, 3, 14, 12, 0, 0).unwrap(),
    })
}

/// An `item.updated` follow-up: a corrected headline.
pub(super) fn item_updated() -> Payload {
    use crate::model::payload::ItemUpdated;
    let p = payload();
    Payload::ItemUpdated(ItemUpdated {
        kind: "newswatch.event".into(),
        version: 1,
        event: "item.updated".into(),
        id: "e_0000000000abcdef".into(),
        topic: p.topic,
        story_id: "story-1".into(),
        item: ItemRef {
            title: "Putin and Zelensky envoys meet in Istanbul".into(),
            ..p.item
        },
        previous_title: "Putin and Zelensky envoys to meet in Ankara".into(),
        detected_at: Utc.with_ymd_and_hms(2025, 3, 14, 12, 0, 0).unwrap(),
    })
}

/// A sink as the config loader makes it (so new config fields need no change
/// here), then set to `kind` and `url`.
pub(super) fn sink(kind: SinkKind, url: Option<&str>) -> Sink {
    let toml = "[[sinks]]\nid = \"ops\"\nkind = \"log\"\n";
    let config = crate::config::parse_str(toml, std::path::Path::new("test.toml")).unwrap();
    let mut sink = config.sinks[0].clone();
    sink.kind = kind;
    sink.url = url.map(|u| Url::parse(u).unwrap());
    sink
}

#[derive(Debug, Clone)]
pub(super) struct Recorded {
    pub(super) method: Method,
    pub(super) headers: AxumHeaders,
    pub(super) body: Vec<u8>,
}

pub(super) struct Receiver {
    pub(super) addr: SocketAddr,
    pub(super) seen: Arc<Mutex<Vec<Recorded>>>,
}

impl Receiver {
    pub(super) fn url(&self) -> String {
        format!("http://{}/hook/SECRET-TOKEN", self.addr)
    }

    pub(super) fn one(&self) -> Recorded {
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
    let mut response = (StatusCode::from_u16(answer.status).unwrap(), answer.body).into_response();
    for (name, value) in answer.headers {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// An HTTP receiver on 127.0.0.1 answering every request the same way.
pub(super) async fn receiver(
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

pub(super) async fn ok_receiver() -> Receiver {
    receiver(204, vec![], "", Duration::ZERO).await
}

pub(super) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(super) fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub(super) async fn send_to(
    kind: SinkKind,
    url: &str,
    secrets: Option<Vec<Vec<u8>>>,
) -> Result<(), DeliveryError> {
    let client = SinkClient::new(&sink(kind, Some(url)), secrets).unwrap();
    client
        .send(&http(), &Payload::Alert(payload()), at(1_741_946_462))
        .await
}

/// `n` alerts: the first two on "Museums", the rest on the payload's topic.
pub(super) fn digest_alerts(n: usize) -> Vec<AlertPayload> {
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
