//! Stories that grow: whether a copy joining a story that alerted makes a
//! `story.updated` event due, for one topic and sink (docs/webhooks.md). Pure, so that
//! both backends decide alike inside their item transactions.

use chrono::{DateTime, Utc};

use crate::model::payload::{
    Payload, SourceRef, StorySummary, StoryUpdated, TopicRef, EVENT_TYPE, EVENT_VERSION,
    STORY_UPDATED,
};

use super::{AlertStatus, StoredAlert, StoredStory, StoryStep, UpdateRule};

/// The copies a story has, its first item included.
pub(super) fn sources(story: &StoredStory) -> u32 {
    u32::try_from(story.related.len() + 1).unwrap_or(u32::MAX)
}

/// What a story that alerted on `rule`'s topic now holds for `sink`: its new step state
/// when it changes, with the event of a step reached.
///
/// A story without a state (it alerted just now, or before updates were turned on)
/// gets one counting the copies it has, and no event: only copies that join after the
/// alert are news. A step is reached when `grow_by` copies joined since the last state
/// and `interval` has passed since it; the copies that joined meanwhile are all named.
/// `lead` is the title and link of the story's first item, when still stored.
pub(super) fn next_step(
    rule: &UpdateRule,
    sink: &str,
    story: &StoredStory,
    state: Option<StoryStep>,
    lead: Option<(&str, Option<&str>)>,
    now: DateTime<Utc>,
) -> Option<(StoryStep, Option<StoredAlert>)> {
    if !story.alerted.contains(&rule.topic) {
        return None;
    }
    let sources = sources(story);
    let now_ms = now.timestamp_millis();
    let Some(state) = state else {
        return Some((
            StoryStep {
                step: 0,
                sources,
                at_ms: now_ms,
            },
            None,
        ));
    };
    let interval = i64::try_from(rule.interval.as_millis()).unwrap_or(i64::MAX);
    // Copies stored by several daemons can come with fetch times out of order: with
    // no interval, one fetched before the last step still makes the next.
    if sources < state.sources.saturating_add(rule.grow_by.max(1))
        || (interval > 0 && now_ms.saturating_sub(state.at_ms) < interval)
    {
        return None;
    }
    let step = state.step + 1;
    let id = crate::identity::event_id(STORY_UPDATED, &story.id, &rule.topic, sink, step.into());
    let first_new = (state.sources as usize).saturating_sub(1);
    let added: Vec<SourceRef> = story
        .related
        .iter()
        .skip(first_new)
        .map(|r| SourceRef {
            feed: r.feed.clone(),
            title: r.title.clone(),
            url: r.url.clone(),
        })
        .collect();
    let (title, url) = match lead {
        Some((title, url)) => (title.to_string(), url.map(str::to_string)),
        // The first item was pruned: its first copy stands in for it.
        None => story
            .related
            .first()
            .map(|r| (r.title.clone(), r.url.clone()))
            .unwrap_or_default(),
    };
    let payload = StoryUpdated {
        kind: EVENT_TYPE.into(),
        version: EVENT_VERSION,
        event: STORY_UPDATED.into(),
        id: id.clone(),
        topic: TopicRef {
            id: rule.topic.clone(),
            name: rule.topic_name.clone(),
        },
        story: StorySummary {
            id: story.id.clone(),
            title,
            url,
            sources,
        },
        step,
        added,
        detected_at: now,
    };
    let event = StoredAlert {
        id,
        sink: sink.to_string(),
        topic: rule.topic.clone(),
        item_id: story.first_item.clone(),
        story: story.id.clone(),
        created: now,
        status: AlertStatus::Pending,
        attempts: 0,
        next_attempt: now,
        last_error: None,
        delivered_at: None,
        payload: Payload::StoryUpdated(payload),
    };
    Some((
        StoryStep {
            step,
            sources,
            at_ms: now_ms,
        },
        Some(event),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Related;
    use std::time::Duration;

    fn story(copies: usize) -> StoredStory {
        StoredStory {
            id: "s".into(),
            first_item: "s".into(),
            first_seen: DateTime::from_timestamp(0, 0).unwrap(),
            fingerprint: 0,
            related: (0..copies)
                .map(|i| Related {
                    item_id: format!("c{i}"),
                    feed: format!("https://feed{i}.example/rss"),
                    url: Some(format!("https://feed{i}.example/a")),
                    title: format!("Copy {i}"),
                })
                .collect(),
            alerted: vec!["t".into()],
        }
    }

    fn rule(grow_by: u32, interval: Duration) -> UpdateRule {
        UpdateRule {
            topic: "t".into(),
            topic_name: "Topic".into(),
            sinks: vec!["hook".into()],
            grow_by,
            interval,
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn a_step_is_due_after_grow_by_copies_and_the_interval() {
        let rule = rule(3, Duration::from_secs(3600));
        // No state yet: a baseline, no event.
        let (base, event) = next_step(&rule, "hook", &story(1), None, None, at(0)).unwrap();
        assert_eq!((base.step, base.sources), (0, 2));
        assert!(event.is_none());
        // Two more copies: not yet.
        assert!(next_step(&rule, "hook", &story(3), Some(base), None, at(7200)).is_none());
        // Three more, but within the interval: not yet.
        assert!(next_step(&rule, "hook", &story(4), Some(base), None, at(60)).is_none());
        let lead = Some(("Lead title", Some("https://lead.example/a")));
        let (next, event) =
            next_step(&rule, "hook", &story(4), Some(base), lead, at(3600)).unwrap();
        assert_eq!((next.step, next.sources), (1, 5));
        let event = event.unwrap();
        let Payload::StoryUpdated(body) = &event.payload else {
            panic!("not a story.updated body: {:?}", event.payload);
        };
        assert_eq!(body.step, 1);
        assert_eq!(body.story.sources, 5);
        assert_eq!(body.story.title, "Lead title");
        let added: Vec<&str> = body.added.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(added, ["Copy 1", "Copy 2", "Copy 3"]);
        assert_eq!(event.payload.event(), "story.updated");
        // The same step computed again (another daemon, a retry) has the same id; the
        // next step another one, and another sink another one.
        let (_, again) = next_step(&rule, "hook", &story(4), Some(base), lead, at(9999)).unwrap();
        assert_eq!(again.unwrap().id, event.id);
        let (_, other) = next_step(&rule, "chat", &story(4), Some(base), lead, at(3600)).unwrap();
        assert_ne!(other.unwrap().id, event.id);
        let (_, second) = next_step(&rule, "hook", &story(7), Some(next), lead, at(7200)).unwrap();
        assert_ne!(second.unwrap().id, event.id);
    }

    #[test]
    fn a_story_that_did_not_alert_on_the_topic_has_no_steps() {
        let mut s = story(9);
        s.alerted.clear();
        assert!(next_step(&rule(1, Duration::ZERO), "hook", &s, None, None, at(0)).is_none());
    }

    #[test]
    fn without_an_interval_a_copy_fetched_before_the_last_step_still_counts() {
        let rule = rule(1, Duration::ZERO);
        let last = StoryStep {
            step: 3,
            sources: 4,
            at_ms: at(100).timestamp_millis(),
        };
        let (next, event) = next_step(&rule, "hook", &story(4), Some(last), None, at(99)).unwrap();
        assert_eq!((next.step, next.sources), (4, 5));
        assert!(event.is_some());
    }
}
