//! Stored items and alerts as the pipeline would make them, for tests that fill a
//! store directly: the one place integration tests build a `StoredItem` or a
//! `StoredAlert` by hand.

use chrono::{DateTime, Utc};
use newswatch::model::payload::{AlertPayload, ItemRef, Payload, StoryRef, TopicRef, ALERT_TYPE};
use newswatch::store::{AlertStatus, StoredAlert, StoredEntity, StoredItem, StoredTopic};

/// Item `id` of feed "Example", fetched at `fetched` and published five minutes
/// before, mentioning Ukraine, the lead of its own story (`id`), on `topics` (each
/// matched by "ceasefire", score 2.5).
pub fn item(id: &str, fetched: DateTime<Utc>, topics: &[&str]) -> StoredItem {
    StoredItem {
        id: id.into(),
        feed: "https://example.org/rss".into(),
        feed_name: "Example".into(),
        title: format!("Title of {id}"),
        url: Some(format!("https://example.org/{id}")),
        published: Some(fetched - chrono::Duration::minutes(5)),
        fetched,
        text: "Body.".into(),
        entities: vec![StoredEntity {
            id: "ukraine".into(),
            mentions: 2,
        }],
        topics: topics
            .iter()
            .map(|t| StoredTopic {
                id: t.to_string(),
                score: 2.5,
                matched: vec!["ceasefire".into()],
            })
            .collect(),
        story: id.into(),
        is_story_lead: true,
        fingerprint: 0,
    }
}

/// A pending alert of `item` on `topic` for `sink`, made at `created` and due then,
/// id `a-{item}-{topic}-{sink}`.
pub fn alert(item: &StoredItem, topic: &str, sink: &str, created: DateTime<Utc>) -> StoredAlert {
    let id = format!("a-{}-{topic}-{sink}", item.id);
    StoredAlert {
        id: id.clone(),
        sink: sink.into(),
        topic: topic.into(),
        item_id: item.id.clone(),
        story: item.story.clone(),
        created,
        status: AlertStatus::Pending,
        attempts: 0,
        next_attempt: created,
        last_error: None,
        delivered_at: None,
        payload: Payload::Alert(AlertPayload {
            kind: ALERT_TYPE.into(),
            version: 1,
            event: "story.new".into(),
            id,
            topic: TopicRef {
                id: topic.into(),
                name: topic.into(),
            },
            item: ItemRef {
                id: item.id.clone(),
                feed: item.feed_name.clone(),
                title: item.title.clone(),
                url: item.url.clone(),
                published: item.published,
                summary: item.text.clone(),
            },
            entities: vec![],
            matched: vec!["ceasefire".into()],
            score: 2.5,
            story: StoryRef {
                id: item.story.clone(),
                related: vec![],
            },
            detected_at: created,
        }),
    }
}
