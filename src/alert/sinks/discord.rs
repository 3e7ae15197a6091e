//! Discord webhooks: an embed for an alert and for a digest. Discord rejects a whole
//! message over any one of its limits, counted in UTF-16 units, and pings whoever a text
//! names, so every text is cut, escaped and kept from mentioning here.

use std::time::SystemTime;

use chrono::SecondsFormat;
use serde_json::{json, Value};

use super::text::{
    alerts_count, by_topic, context_line, cut_chars, cut_utf16, digest_context, entity_names,
    fit_lines, followup, http_url, one_line, topics_line, utf16_len, Line,
};
use super::{Content, SinkClient};
use crate::alert::retry::DeliveryError;
use crate::model::payload::{AlertPayload, Payload};

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

/// A Discord message for a follow-up (`story.updated`, `item.updated`): a `content`
/// line with the topic and what changed, and an embed linking the story whose
/// description lists the copies that joined (five at most); escaped and cut as alerts,
/// mentions disabled.
pub fn discord_followup_body(payload: &Payload) -> Value {
    let f = followup(payload);
    let topic = discord_escape(&cut_chars(&one_line(payload.topic_name()), 150));
    let mut lines = Vec::new();
    for (title, url) in &f.sources {
        let title = discord_escape(&cut_chars(&one_line(title), 200));
        lines.push(match url.and_then(http_url) {
            Some(url) if url.as_str().len() <= 500 => format!("• [{title}]({url})"),
            _ => format!("• {title}"),
        });
    }
    if f.more > 0 {
        lines.push(format!("…and {} more", f.more));
    }
    let mut embed = json!({
        "title": cut_utf16(&f.headline, 256),
        "footer": {"text": cut_utf16(&f.context, 2048)},
        "timestamp": payload.detected_at().to_rfc3339_opts(SecondsFormat::Secs, true),
    });
    if let Some(url) = f.url.and_then(http_url) {
        if url.as_str().len() <= 2048 {
            embed["url"] = Value::String(url.into());
        }
    }
    if !lines.is_empty() {
        embed["description"] = Value::String(cut_utf16(&lines.join("\n"), 4000));
    }
    json!({
        "content": cut_utf16(&format!("**{topic}**: {}", discord_escape(&f.headline)), 2000),
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

/// One attempt to post `content` to a Discord webhook.
pub(super) async fn deliver(
    client: &SinkClient,
    http: &reqwest::Client,
    content: Content<'_>,
    now: SystemTime,
) -> Result<(), DeliveryError> {
    let body = match content {
        Content::Alert(payload) => discord_body(payload),
        Content::Followup(payload) => discord_followup_body(payload),
        Content::Digest { id, alerts } => discord_digest_body(id, alerts),
    };
    client.post_json(http, &body, content.id(), now).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::sinks::testing::payload;

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
    fn a_story_update_is_a_short_escaped_follow_up_that_pings_nobody() {
        let body = discord_followup_body(&super::super::testing::story_updated());
        assert_eq!(
            body["content"],
            "**Ukraine ceasefire talks**: Update: 7 more sources on Putin & Zelensky \\<agree\\> to talks @everyone"
        );
        assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
        let embed = &body["embeds"][0];
        assert_eq!(embed["url"], "https://example.org/world/talks");
        assert_eq!(
            embed["title"],
            "Update: 7 more sources on Putin & Zelensky <agree> to talks @everyone"
        );
        let description = embed["description"].as_str().unwrap();
        assert_eq!(
            description.lines().next(),
            Some("• [Copy 1 \\*bold\\*](https://wire1.example/talks)")
        );
        assert_eq!(description.lines().last(), Some("…and 2 more"));
        assert_eq!(embed["timestamp"], "2025-03-14T12:00:00Z");
    }
}
