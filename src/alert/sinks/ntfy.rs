//! ntfy: a message is a plain-text body and its details are HTTP headers, so texts from
//! feeds are made into valid header values here (no line breaks to split the request,
//! RFC 2047 for non-ASCII) and the body kept under ntfy's attachment size.

use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};

use super::text::{
    alerts_count, by_topic, cut_bytes, cut_chars, digest_context, fit_lines, followup, http_url,
    one_line, Line,
};
use super::{insert, Content, SinkClient};
use crate::alert::retry::DeliveryError;
use crate::model::payload::{AlertPayload, Payload};

/// ntfy tags (entity ids) per message; ntfy shows them as chips, more is clutter.
const MAX_NTFY_TAGS: usize = 5;
/// Characters of summary in an ntfy message.
const MAX_NTFY_SUMMARY: usize = 1000;
/// ntfy turns a message over 4096 bytes into an attachment; stay under it.
pub(super) const MAX_NTFY_BODY_BYTES: usize = 4000;

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

/// An ntfy message for a follow-up (`story.updated`, `item.updated`): `Title`
/// "Update: " and the topic name, `Click` the story, and a body of what changed and
/// the copies that joined with their links, cut below 4 KB.
pub fn ntfy_followup_request(payload: &Payload) -> NtfyRequest {
    let f = followup(payload);
    let mut headers = Vec::new();
    let title = encode_header_words(&cut_chars(
        &format!("Update: {}", one_line(payload.topic_name())),
        200,
    ));
    headers.push(("Title", title));
    if let Some(url) = f.url.and_then(http_url) {
        headers.push(("Click", ascii_header_value(url.as_str())));
    }
    let mut body = f.headline.clone();
    for (title, url) in &f.sources {
        body.push_str("\n- ");
        body.push_str(&cut_chars(&one_line(title), 200));
        if let Some(url) = url.and_then(http_url) {
            body.push(' ');
            body.push_str(url.as_str());
        }
    }
    if f.more > 0 {
        body.push_str(&format!("\n…and {} more", f.more));
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

/// One attempt to post `content` to an ntfy topic URL.
pub(super) async fn deliver(
    client: &SinkClient,
    http: &reqwest::Client,
    content: Content<'_>,
    now: SystemTime,
) -> Result<(), DeliveryError> {
    let url = client.url()?;
    let request = match content {
        Content::Alert(payload) => ntfy_request(payload),
        Content::Followup(payload) => ntfy_followup_request(payload),
        Content::Digest { id, alerts } => ntfy_digest_request(id, alerts),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    for (name, value) in &request.headers {
        insert(&mut headers, name, value)?;
    }
    let body = request.body.into_bytes();
    client
        .post(http, url, headers, body, content.id(), now)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::sinks::testing::payload;
    use crate::model::payload::EntityRef;

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
    fn a_story_update_is_a_short_plain_follow_up() {
        let request = ntfy_followup_request(&super::super::testing::story_updated());
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("Title"), Some("Update: Ukraine ceasefire talks"));
        assert_eq!(header("Click"), Some("https://example.org/world/talks"));
        let lines: Vec<&str> = request.body.lines().collect();
        assert_eq!(
            lines[0],
            "Update: 7 more sources on Putin & Zelensky <agree> to talks @everyone"
        );
        assert_eq!(lines[1], "- Copy 1 *bold* https://wire1.example/talks");
        assert_eq!(lines.len(), 7);
        let corrected = ntfy_followup_request(&super::super::testing::item_updated());
        assert_eq!(
            corrected.body,
            "Corrected: Putin and Zelensky envoys meet in Istanbul (was: Putin and Zelensky envoys to meet in Ankara)"
        );
    }
}
