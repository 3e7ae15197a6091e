//! Slack incoming webhooks: Block Kit messages for an alert and for a digest. Slack reads
//! `&`, `<` and `>` as markup everywhere, so every text from a feed is escaped here
//! before it can become a link or an `@channel`.

use std::time::SystemTime;

use serde_json::{json, Value};

use super::text::{
    alerts_count, by_topic, context_line, cut_chars, digest_context, entity_names, fit_lines,
    followup, http_url, one_line, topics_line, Line,
};
use super::{Content, SinkClient};
use crate::alert::retry::DeliveryError;
use crate::model::payload::{AlertPayload, Payload};

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

/// A Slack message for a follow-up (`story.updated`, `item.updated`): `text` with the
/// topic and what changed, a section with the linked headline and the copies that
/// joined (five at most, then how many more), and the small print. Escaped as alerts.
pub fn slack_followup_body(payload: &Payload) -> Value {
    let f = followup(payload);
    let topic = slack_escape(&cut_chars(&one_line(payload.topic_name()), 150));
    let headline = slack_escape(&f.headline);
    let linked = match f.url.and_then(slack_link_url) {
        Some(url) => format!("<{url}|{headline}>"),
        None => headline.clone(),
    };
    let mut lines = vec![format!("*{topic}*: {linked}")];
    for (title, url) in &f.sources {
        let title = slack_escape(&cut_chars(&one_line(title), 200));
        lines.push(match url.and_then(slack_link_url) {
            Some(url) => format!("• <{url}|{title}>"),
            None => format!("• {title}"),
        });
    }
    if f.more > 0 {
        lines.push(format!("…and {} more", f.more));
    }
    json!({
        "text": format!("{topic}: {headline}"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": cut_chars(&lines.join("\n"), 2900)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(&f.context)}]},
        ],
    })
}

fn slack_field(label: &str, value: &str) -> Value {
    let value = if value.is_empty() { "-" } else { value };
    json!({"type": "mrkdwn", "text": format!("*{label}*\n{value}")})
}

/// Slack's three control characters (`&`, `<`, `>`) as the entities its message
/// formatting asks for; nothing else is escaped there.
fn slack_escape(text: &str) -> String {
    crate::markup::escape(text)
}

/// A URL fit for `<url|text>`: http(s) only (anything else Slack would not link, or
/// should not), `|` percent-encoded since it ends the URL part, markup escaped.
fn slack_link_url(url: &str) -> Option<String> {
    let url = http_url(url)?;
    let text = slack_escape(url.as_str()).replace('|', "%7C");
    (text.len() <= 1500).then_some(text)
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

/// One attempt to post `content` to a Slack incoming webhook.
pub(super) async fn deliver(
    client: &SinkClient,
    http: &reqwest::Client,
    content: Content<'_>,
    now: SystemTime,
) -> Result<(), DeliveryError> {
    let body = match content {
        Content::Alert(payload) => slack_body(payload),
        Content::Followup(payload) => slack_followup_body(payload),
        Content::Digest { id, alerts } => slack_digest_body(id, alerts),
    };
    client.post_json(http, &body, content.id(), now).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::sinks::testing::payload;
    use crate::model::payload::EntityRef;

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
    fn a_story_update_is_a_short_escaped_follow_up() {
        let body = slack_followup_body(&super::super::testing::story_updated());
        assert_eq!(
            body["text"],
            "Ukraine ceasefire talks: Update: 7 more sources on Putin &amp; Zelensky &lt;agree&gt; to talks @everyone"
        );
        let section = body["blocks"][0]["text"]["text"].as_str().unwrap();
        let lines: Vec<&str> = section.lines().collect();
        assert_eq!(
            lines[0],
            "*Ukraine ceasefire talks*: <https://example.org/world/talks|Update: 7 more sources on Putin &amp; Zelensky &lt;agree&gt; to talks @everyone>"
        );
        assert_eq!(lines[1], "• <https://wire1.example/talks|Copy 1 *bold*>");
        assert_eq!(
            lines.len(),
            7,
            "five sources, then the rest counted: {section}"
        );
        assert_eq!(lines[6], "…and 2 more");
        let context = body["blocks"][1]["elements"][0]["text"].as_str().unwrap();
        assert_eq!(
            context,
            "newswatch story.updated e_00c0ffee00c0ffee · detected 2025-03-14T12:00:00Z"
        );
    }

    #[test]
    fn a_corrected_headline_names_the_old_one() {
        let body = slack_followup_body(&super::super::testing::item_updated());
        assert_eq!(
            body["text"],
            "Ukraine ceasefire talks: Corrected: Putin and Zelensky envoys meet in Istanbul (was: Putin and Zelensky envoys to meet in Ankara)"
        );
    }
}
