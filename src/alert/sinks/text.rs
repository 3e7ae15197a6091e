//! Text shared by the formats: every service has its own limits and markup, but texts
//! are cut on character boundaries and digests listed by topic the same way for all, so
//! a fix to a cut or a listing reaches every kind at once.

use chrono::SecondsFormat;
use url::Url;

use crate::model::payload::{AlertPayload, Payload};

/// Entity names listed in chat messages; the payload has them all.
const MAX_ENTITY_NAMES: usize = 8;

/// Up to [`MAX_ENTITY_NAMES`] entity names, then how many more.
pub(super) fn entity_names(payload: &AlertPayload) -> String {
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
pub(super) fn context_line(payload: &AlertPayload) -> String {
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

/// Sources listed under a follow-up in chat messages; the body has them all.
pub(super) const MAX_FOLLOWUP_SOURCES: usize = 5;

/// A follow-up event (docs/webhooks.md, "Follow-ups") as the chat sinks show it: one
/// line saying what changed, the link it is about, the copies that joined, and the
/// small print. Every chat kind renders this, each in its own markup.
pub(super) struct Followup<'a> {
    /// "Update: 3 more sources on <title>", "Corrected: <title> (was: <old title>)".
    pub(super) headline: String,
    pub(super) url: Option<&'a str>,
    /// Title and link of each copy named (story.updated), in order.
    pub(super) sources: Vec<(&'a str, Option<&'a str>)>,
    /// Sources named in the body beyond those in `sources`.
    pub(super) more: usize,
    pub(super) context: String,
}

/// What a follow-up says, in plain text (each sink escapes and cuts it).
pub(super) fn followup(payload: &Payload) -> Followup<'_> {
    let context = format!(
        "newswatch {} {} · detected {}",
        one_line(payload.event()),
        one_line(payload.id()),
        payload
            .detected_at()
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    match payload {
        Payload::StoryUpdated(p) => {
            let n = p.added.len();
            let noun = if n == 1 { "source" } else { "sources" };
            Followup {
                headline: format!(
                    "Update: {n} more {noun} on {}",
                    cut_chars(&one_line(&p.story.title), 250)
                ),
                url: p.story.url.as_deref(),
                sources: p
                    .added
                    .iter()
                    .take(MAX_FOLLOWUP_SOURCES)
                    .map(|s| (s.title.as_str(), s.url.as_deref()))
                    .collect(),
                more: n.saturating_sub(MAX_FOLLOWUP_SOURCES),
                context,
            }
        }
        Payload::FeedHealth(p) => Followup {
            headline: match &p.reason {
                Some(reason) => format!(
                    "Feed {} is {}: {}",
                    cut_chars(&one_line(&p.feed.name), 100),
                    p.state,
                    cut_chars(&one_line(reason), 250)
                ),
                None => format!(
                    "Feed {} is ok again (was {})",
                    cut_chars(&one_line(&p.feed.name), 100),
                    p.was
                ),
            },
            url: Some(p.moved_to.as_deref().unwrap_or(&p.feed.url)),
            sources: Vec::new(),
            more: 0,
            context,
        },
        Payload::ItemUpdated(p) => Followup {
            headline: format!(
                "Corrected: {} (was: {})",
                cut_chars(&one_line(&p.item.title), 250),
                cut_chars(&one_line(&p.previous_title), 250)
            ),
            url: p.item.url.as_deref(),
            sources: Vec::new(),
            more: 0,
            context,
        },
        Payload::Alert(p) => Followup {
            headline: cut_chars(&one_line(&p.item.title), 250),
            url: p.item.url.as_deref(),
            sources: Vec::new(),
            more: 0,
            context,
        },
    }
}

/// An http(s) URL with a host, or nothing: chat services reject or mislink the rest.
pub(super) fn http_url(text: &str) -> Option<Url> {
    Url::parse(text.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// Control characters and line breaks as single spaces, whitespace collapsed: titles
/// and names from feeds go into one-line slots.
pub(super) fn one_line(text: &str) -> String {
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

pub(super) fn cut_chars(text: &str, max: usize) -> String {
    cut_by(text, max, |_| 1)
}

pub(super) fn cut_utf16(text: &str, max: usize) -> String {
    cut_by(text, max, char::len_utf16)
}

pub(super) fn cut_bytes(text: &str, max: usize) -> String {
    cut_by(text, max, char::len_utf8)
}

pub(super) fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

// ---------------------------------------------------------------------------------
// Digest listings
// ---------------------------------------------------------------------------------

/// Alerts grouped by topic: topics in the order they first appear, alerts in order.
pub(super) fn by_topic(alerts: &[AlertPayload]) -> Vec<(&str, Vec<&AlertPayload>)> {
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
pub(super) fn alerts_count(n: usize) -> String {
    if n == 1 {
        "1 new alert".to_string()
    } else {
        format!("{n} new alerts")
    }
}

/// "Museums (2), Ukraine ceasefire talks (1)": the topics of a digest, one line.
pub(super) fn topics_line(groups: &[(&str, Vec<&AlertPayload>)]) -> String {
    groups
        .iter()
        .map(|(name, list)| format!("{} ({})", one_line(name), list.len()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line of a digest listing: a topic heading, or an alert.
pub(super) struct Line {
    pub(super) text: String,
    pub(super) is_alert: bool,
}

/// The lines joined by newlines when they fit in `max` units as `unit` counts them;
/// else as many as fit with room for a last line "…and N more" counting the alerts left
/// out. Each line must fit on its own with room for that note (callers cut titles and
/// links to make sure).
pub(super) fn fit_lines(lines: &[Line], max: usize, unit: fn(char) -> usize) -> String {
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

/// The small print of a digest: its id, size and detection times.
pub(super) fn digest_context(id: &str, alerts: &[AlertPayload]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
