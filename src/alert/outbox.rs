//! Outbox records: the alerts a newly stored item raises, built once and written to
//! the store in the same transaction as the item, and the record of any other event.
//!
//! Alert ids are derived from story, topic and sink, so processing a story again (a
//! copy, a restart after a crash) yields the same ids, and the store writes each once.
//! Follow-ups (`story.updated`) are built by the store, which decides them
//! (`store::updates`); an event about something else than a story (a feed) is made
//! here by [`event_record`] and stored with `Store::put_events`.

use chrono::{DateTime, Utc};

use crate::model::payload::{
    AlertPayload, EntityRef, ItemRef, ItemUpdated, Payload, StoryRef, TopicRef, ALERT_TYPE,
    ALERT_VERSION, EVENT_TYPE, EVENT_VERSION, ITEM_UPDATED, STORY_NEW,
};
use crate::model::{EntityMention, Topic, TopicMatch};
use crate::store::{AlertStatus, ItemVersion, StoredAlert, StoredItem, UpdateRule};

/// Characters of cleaned text sent as the item's summary.
const SUMMARY_CHARS: usize = 400;

/// The alert records for a newly stored item: one per matched topic and sink.
pub fn alerts_for(
    item: &StoredItem,
    matches: &[TopicMatch],
    entities: &[EntityMention],
    topics: &[Topic],
    now: DateTime<Utc>,
) -> Vec<StoredAlert> {
    let mut out = Vec::new();
    for m in matches {
        let Some(topic) = topics.iter().find(|t| t.id == m.id) else {
            continue;
        };
        for sink in &topic.sinks {
            let id = crate::identity::alert_id(&item.story, &topic.id, sink);
            let payload = AlertPayload {
                kind: ALERT_TYPE.into(),
                version: ALERT_VERSION,
                event: STORY_NEW.into(),
                id: id.clone(),
                topic: TopicRef {
                    id: topic.id.clone(),
                    name: topic.name.clone(),
                },
                item: ItemRef {
                    id: item.id.clone(),
                    feed: item.feed_name.clone(),
                    title: item.title.clone(),
                    url: item.url.clone(),
                    published: item.published,
                    summary: summary(&item.text),
                },
                entities: entities
                    .iter()
                    .map(|e| EntityRef {
                        id: e.id.clone(),
                        name: e.name.clone(),
                        kind: e.kind.as_str().into(),
                        mentions: e.mentions,
                    })
                    .collect(),
                matched: m.matched.clone(),
                score: m.score,
                story: StoryRef {
                    id: item.story.clone(),
                    related: Vec::new(),
                },
                detected_at: now,
            };
            out.push(StoredAlert {
                id,
                sink: sink.clone(),
                topic: topic.id.clone(),
                item_id: item.id.clone(),
                story: item.story.clone(),
                created: now,
                status: AlertStatus::Pending,
                attempts: 0,
                next_attempt: now,
                last_error: None,
                delivered_at: None,
                payload: Payload::Alert(payload),
            });
        }
    }
    out
}

/// The `item.updated` events a changed item proposes: one per topic with updates
/// (`rules`) and sink, its id from the item, topic, sink and the new version, so the
/// same change is one event and the next change another. The store keeps those whose
/// topic the item's story alerted on.
pub fn item_updated(
    item: &StoredItem,
    previous_title: &str,
    rules: &[UpdateRule],
    now: DateTime<Utc>,
) -> Vec<StoredAlert> {
    let version = ItemVersion::of(item).tag();
    let mut out = Vec::new();
    for rule in rules {
        for sink in &rule.sinks {
            let id = crate::identity::event_id(ITEM_UPDATED, &item.id, &rule.topic, sink, version);
            let payload = Payload::ItemUpdated(ItemUpdated {
                kind: EVENT_TYPE.into(),
                version: EVENT_VERSION,
                event: ITEM_UPDATED.into(),
                id: id.clone(),
                topic: TopicRef {
                    id: rule.topic.clone(),
                    name: rule.topic_name.clone(),
                },
                story_id: item.story.clone(),
                item: ItemRef {
                    id: item.id.clone(),
                    feed: item.feed_name.clone(),
                    title: item.title.clone(),
                    url: item.url.clone(),
                    published: item.published,
                    summary: summary(&item.text),
                },
                previous_title: previous_title.to_string(),
                detected_at: now,
            });
            out.push(StoredAlert {
                id,
                sink: sink.clone(),
                topic: rule.topic.clone(),
                item_id: item.id.clone(),
                story: item.story.clone(),
                created: now,
                status: AlertStatus::Pending,
                attempts: 0,
                next_attempt: now,
                last_error: None,
                delivered_at: None,
                payload,
            });
        }
    }
    out
}

/// The outbox record of an event for `sink` that no item raised (a feed's health,
/// say): pending, due at `now`. `subject` says what it is about (a feed URL) and goes
/// into its listing as its story; the event's id is `payload`'s, which the caller
/// derives with `identity::event_id` so that the same event is stored once
/// (`Store::put_events`).
pub fn event_record(
    sink: &str,
    subject: &str,
    payload: Payload,
    now: DateTime<Utc>,
) -> StoredAlert {
    StoredAlert {
        id: payload.id().to_string(),
        sink: sink.to_string(),
        topic: payload.topic().map(|t| t.id.clone()).unwrap_or_default(),
        item_id: String::new(),
        story: subject.to_string(),
        created: now,
        status: AlertStatus::Pending,
        attempts: 0,
        next_attempt: now,
        last_error: None,
        delivered_at: None,
        payload,
    }
}

/// The start of a text, cut on a word boundary.
fn summary(text: &str) -> String {
    if text.chars().count() <= SUMMARY_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(SUMMARY_CHARS).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(at) if at > SUMMARY_CHARS / 2 => &cut[..at],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EntityKind, Position};
    use crate::query;

    #[test]
    fn one_alert_per_topic_and_sink_with_stable_ids() {
        let now = Utc::now();
        let item = StoredItem {
            id: "u:https://example.org/a".into(),
            feed: "https://example.org/rss".into(),
            feed_name: "Example".into(),
            title: "Talks".into(),
            url: Some("https://example.org/a".into()),
            published: None,
            fetched: now,
            text: "word ".repeat(200),
            entities: vec![],
            topics: vec![],
            story: "story-1".into(),
            is_story_lead: true,
            fingerprint: 1,
        };
        let topic = Topic {
            id: "talks".into(),
            name: "Talks".into(),
            query_text: "ceasefire".into(),
            query: query::parse("ceasefire").unwrap(),
            min_score: 0.0,
            sinks: vec!["log".into(), "hook".into()],
            updates: None,
            backfill: None,
        };
        let matched = TopicMatch {
            id: "talks".into(),
            name: "Talks".into(),
            score: 2.0,
            matched: vec!["ceasefire".into()],
        };
        let mention = EntityMention {
            id: "putin".into(),
            name: "Vladimir Putin".into(),
            kind: EntityKind::Person,
            mentions: 2,
            first: Position {
                in_title: false,
                char_offset: 0,
            },
        };
        let alerts = alerts_for(
            &item,
            std::slice::from_ref(&matched),
            &[mention],
            std::slice::from_ref(&topic),
            now,
        );
        assert_eq!(alerts.len(), 2);
        assert_ne!(alerts[0].id, alerts[1].id);
        assert_eq!(alerts[0].payload.id(), alerts[0].id);
        assert_eq!(alerts[0].event(), "story.new");
        let body = alerts[0].payload.as_alert().unwrap();
        assert_eq!(body.entities[0].kind, "person");
        assert!(body.item.summary.ends_with('…'));
        assert!(body.item.summary.chars().count() <= SUMMARY_CHARS + 1);
        // Another copy of the same story gives the same ids.
        let copy = StoredItem {
            id: "u:https://example.net/b".into(),
            ..item
        };
        let again = alerts_for(&copy, &[matched], &[], &[topic], now);
        assert_eq!(again[0].id, alerts[0].id);
    }
}
