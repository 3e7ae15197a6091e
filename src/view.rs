//! The JSON views of what newswatch keeps and finds: a stored item, an alert and a
//! feed's health as `items --json`, `alerts --json`, `feeds --json` and the API
//! answer them, a scanned article as
//! `scan --json` prints it, and the `since` values both the CLI and the API take.
//! One module, so that the command line and the API cannot drift apart.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::Feed;
use crate::health::Assessment;
use crate::pipeline::{Pipeline, Processed};
use crate::store::{FeedState, StoredAlert, StoredItem};

/// A stored item as `newswatch items --json` prints it.
pub fn item_json(item: &StoredItem) -> Value {
    json!({
        "id": item.id,
        "feed": item.feed_name,
        "title": item.title,
        "url": item.url,
        "published": item.published.map(|d| d.to_rfc3339()),
        "fetched": item.fetched.to_rfc3339(),
        "story": item.story,
        "story_lead": item.is_story_lead,
        "entities": item.entities.iter().map(|e| json!({"id": e.id, "mentions": e.mentions})).collect::<Vec<_>>(),
        "topics": item.topics.iter().map(|t| json!({"id": t.id, "score": t.score, "matched": t.matched})).collect::<Vec<_>>(),
    })
}

/// A feed and its health as `newswatch feeds --json` prints it (docs/cli.md, "feeds").
pub fn feed_json(feed: &Feed, state: &FeedState, health: &Assessment) -> Value {
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
    json!({
        "name": feed.name,
        "url": feed.url.to_string(),
        "state": health.state.as_str(),
        "reason": health.reason,
        "moved_to": health.moved_to,
        "last_success": time(state.last_success),
        "last_attempt": time(state.last_attempt),
        "last_new_item": time(state.last_new_item),
        "usual_gap_seconds": state.usual_gap_secs,
        "consecutive_errors": state.failures,
        "failing_since": time(state.failing_since),
        "last_status": state.last_status,
        "last_error": state.last_error,
        "next_poll": time(state.next_poll),
    })
}

/// An alert as `newswatch alerts --json` prints it.
pub fn alert_json(alert: &StoredAlert) -> Value {
    json!({
        "id": alert.id,
        "status": alert.status.as_str(),
        "sink": alert.sink,
        "topic": alert.topic,
        "item": alert.item_id,
        "event": alert.event(),
        "title": alert.payload.title(),
        "created": alert.created.to_rfc3339(),
        "attempts": alert.attempts,
        "next_attempt": alert.next_attempt.to_rfc3339(),
        "delivered_at": alert.delivered_at.map(|d| d.to_rfc3339()),
        "last_error": alert.last_error,
    })
}

/// A `since` value: a duration ago ("2h", "3d 12h"), an RFC 3339 timestamp, or a
/// date (midnight UTC). A duration reaching before the representable past is an error,
/// not a panic.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(ago) = humantime::parse_duration(text) {
        return chrono::Duration::from_std(ago)
            .ok()
            .and_then(|ago| now.checked_sub_signed(ago))
            .ok_or_else(|| format!("{text:?} reaches too far back"));
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(midnight) = day.and_hms_opt(0, 0, 0) {
            return Ok(midnight.and_utc());
        }
    }
    Err(format!(
        "{text:?} is neither a duration like \"2h\" nor a time like 2025-03-14T10:00:00Z"
    ))
}

/// An article `newswatch scan --json` found: one line of its output.
#[allow(clippy::too_many_arguments)]
pub fn scanned_json(
    pipeline: &Pipeline,
    source: &str,
    kind: &str,
    index: usize,
    processed: &Processed,
    extra: Option<Value>,
    with_text: bool,
    explain: bool,
) -> Value {
    let Processed {
        article, findings, ..
    } = processed;
    let mut line = json!({
        "source": source,
        "kind": kind,
        "index": index,
        "title": article.title,
        "entities": findings.entities.iter().map(|e| json!({
            "id": e.id,
            "name": e.name,
            "kind": e.kind.as_str(),
            "mentions": e.mentions,
            "first": {
                "field": if e.first.in_title { "title" } else { "body" },
                "char": e.first.char_offset,
            },
        })).collect::<Vec<_>>(),
        "topics": findings.topics.iter().map(|t| json!({
            "id": t.id,
            "name": t.name,
            "score": t.score,
            "matched": t.matched,
        })).collect::<Vec<_>>(),
        "text_length": article.body.chars().count(),
    });
    if let (Some(Value::Object(extra)), Some(obj)) = (extra, line.as_object_mut()) {
        for (k, v) in extra {
            if !v.is_null() {
                obj.insert(k, v);
            }
        }
    }
    if let Some(obj) = line.as_object_mut() {
        if with_text {
            obj.insert("text".into(), Value::String(article.body.clone()));
        }
        if explain {
            let why: serde_json::Map<String, Value> = pipeline
                .explain(article)
                .into_iter()
                .map(|(id, why)| (id, Value::String(why)))
                .collect();
            obj.insert("explain".into(), Value::Object(why));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_timestamps_and_dates() {
        let now = DateTime::parse_from_rfc3339("2025-03-14T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| parse_since(s, now).map(|t| t.to_rfc3339());
        assert_eq!(at("2h").unwrap(), "2025-03-14T10:00:00+00:00");
        assert_eq!(at("1d 6h").unwrap(), "2025-03-13T06:00:00+00:00");
        assert_eq!(
            at("2025-03-14T10:30:00+01:00").unwrap(),
            "2025-03-14T09:30:00+00:00"
        );
        assert_eq!(at("2025-03-01").unwrap(), "2025-03-01T00:00:00+00:00");
        assert!(at("yesterday").unwrap_err().contains("\"yesterday\""));
        assert!(at("").is_err());
        // Far beyond the representable past: an error, never a panic.
        assert!(at("100000000y").unwrap_err().contains("too far back"));
        assert!(at("18446744073709551615s").is_err());
    }
}
