//! Item identity: what makes two feed entries the same item.
//!
//! An item id is a short string with a prefix saying where it came from:
//!
//! - `u:` + the canonical URL ([`canonical_url`]): the article's own address, with
//!   tracking parameters and the fragment removed. URL ids are global, so the same
//!   article reached through two feeds is one item;
//! - `g:` + xxh3 of the feed URL and the GUID, in hex: the feed's own id for the
//!   entry. GUIDs are scoped by feed because feeds reuse plain ids (`1`, `2`, …);
//! - `h:` + xxh3 of the feed URL, the normalised title and the publication date: the
//!   last resort for entries with neither a usable GUID nor a link.
//!
//! A GUID wins when it is present and stable. It is not used when it is empty, or when
//! it is an http(s) URL that equals the link up to tracking parameters: such a GUID is
//! just the permalink, often carrying `utm_*` parameters that change from one fetch
//! to the next, so the canonical URL is the id instead. Weak ids are the first cause
//! of repeated alerts; everything here errs on the side of "the same item".
//!
//! Pure functions, no I/O. docs/stories.md ("Item ids") is the contract.

use chrono::{DateTime, Utc};
use url::Url;
use xxhash_rust::xxh3::xxh3_64;

/// Query parameters that only say how a reader got to the page; names compare
/// case-insensitively. Names ending in `*` are prefixes.
const TRACKING_PARAMS: &[&str] = &[
    "utm_*", "fbclid", "gclid", "mc_cid", "mc_eid", "yclid", "igshid", "ref_src", "_ga", "cmpid",
    "ocid",
];

/// The canonical form of an http(s) URL, or `None` for anything else.
///
/// Scheme and host are lower-cased and a default port is dropped (the `url` crate's
/// normalisation), the fragment and tracking parameters are removed, the remaining
/// query parameters are kept in their order and spelling, and an empty query is
/// dropped. A trailing `/` on the path is significant and kept; a bare root is always
/// `/`, so `https://example.org` and `https://example.org/` are one URL.
pub fn canonical_url(url: &str) -> Option<String> {
    let mut parsed = Url::parse(url.trim()).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return None;
    }
    parsed.set_fragment(None);
    let kept: Option<String> = parsed.query().map(|query| {
        query
            .split('&')
            .filter(|pair| !pair.is_empty() && !is_tracking(pair))
            .collect::<Vec<_>>()
            .join("&")
    });
    match kept {
        Some(query) if !query.is_empty() => parsed.set_query(Some(&query)),
        _ => parsed.set_query(None),
    }
    Some(parsed.into())
}

/// The id of a feed entry; see the module doc for the rules.
///
/// `feed_url` must be the feed's configured URL, not the address it was last fetched
/// from: GUID and title ids are scoped by it, and a redirect must not change them.
pub fn item_id(
    guid: Option<&str>,
    link: Option<&str>,
    title: &str,
    published: Option<DateTime<Utc>>,
    feed_url: &str,
) -> String {
    let guid = guid.map(str::trim).filter(|g| !g.is_empty());
    let link = link.map(str::trim).filter(|l| !l.is_empty());
    let canonical_link = link.and_then(canonical_url);

    if let Some(guid) = guid {
        match canonical_url(guid) {
            // A permalink GUID: the article's URL is the better id, and one that other
            // feeds carrying the same article agree on.
            Some(canonical_guid) if canonical_link.as_deref() == Some(&canonical_guid) => {
                return format!("u:{canonical_guid}");
            }
            Some(canonical_guid) if canonical_link.is_none() => {
                return format!("u:{canonical_guid}");
            }
            // A URL GUID other than the link (`?p=123` next to a pretty permalink) is
            // still the feed's id, but hashed in canonical form so rotating tracking
            // parameters in it do not make a new item.
            Some(canonical_guid) => return format!("g:{}", scoped_hash(feed_url, &canonical_guid)),
            None => return format!("g:{}", scoped_hash(feed_url, guid)),
        }
    }
    if let Some(canonical) = canonical_link {
        return format!("u:{canonical}");
    }

    // No GUID and no usable link. The date, not the full timestamp, goes in: feeds
    // without ids are often the ones that stamp entries with the time of the request,
    // and the title alone would fold every "Morning briefing" into one item.
    let mut key = String::with_capacity(feed_url.len() + title.len() + 32);
    key.push_str(feed_url);
    key.push('\n');
    key.push_str(&normalise_title(title));
    key.push('\n');
    if let Some(published) = published {
        key.push_str(&published.format("%Y-%m-%d").to_string());
    }
    // A link that is not an http(s) URL (relative, `file:`) still tells entries apart.
    if let Some(link) = link {
        key.push('\n');
        key.push_str(link);
    }
    format!("h:{:016x}", xxh3_64(key.as_bytes()))
}

/// True when a `name=value` query pair is a tracking parameter.
fn is_tracking(pair: &str) -> bool {
    let raw_name = pair.split('=').next().unwrap_or(pair);
    // Names are compared decoded, so `utm%5Fsource` is caught too.
    let name: String = url::form_urlencoded::parse(raw_name.as_bytes())
        .next()
        .map(|(name, _)| name.to_ascii_lowercase())
        .unwrap_or_default();
    TRACKING_PARAMS
        .iter()
        .any(|param| match param.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *param,
        })
}

fn scoped_hash(feed_url: &str, guid: &str) -> String {
    let mut key = String::with_capacity(feed_url.len() + guid.len() + 1);
    key.push_str(feed_url);
    key.push('\n');
    key.push_str(guid);
    format!("{:016x}", xxh3_64(key.as_bytes()))
}

/// A title's hash after the normalisation item ids use (trimmed, whitespace collapsed,
/// lower-cased): two titles that differ only in case or spacing hash alike, so such a
/// change is not a material change of an item (docs/stories.md, "Changed items").
pub fn title_hash(title: &str) -> u64 {
    xxh3_64(normalise_title(title).as_bytes())
}

/// Trimmed, whitespace collapsed to single spaces, lower-cased.
fn normalise_title(title: &str) -> String {
    title
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// An alert's id: one per story, topic and sink, so that every daemon and every retry
/// names the same alert alike (and the outbox stores it once).
pub fn alert_id(story: &str, topic: &str, sink: &str) -> String {
    format!(
        "a_{:016x}",
        xxhash_rust::xxh3::xxh3_64(format!("{story}\n{topic}\n{sink}").as_bytes())
    )
}

/// A follow-up event's id: one per event type, story (or other subject), topic, sink
/// and step, so that every daemon and every retry names the same event alike, and the
/// next step of a story is another event (docs/webhooks.md). A subject that is not a
/// story (a feed) goes in `subject` with an empty `topic`.
pub fn event_id(event: &str, subject: &str, topic: &str, sink: &str, step: u64) -> String {
    format!(
        "e_{:016x}",
        xxhash_rust::xxh3::xxh3_64(
            format!("{event}\n{subject}\n{topic}\n{sink}\n{step}").as_bytes()
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const FEED: &str = "https://example.org/world/rss.xml";
    const OTHER_FEED: &str = "https://example.net/wire/atom.xml";

    fn at(day: u32, hour: u32) -> Option<DateTime<Utc>> {
        Utc.with_ymd_and_hms(2025, 3, day, hour, 0, 0).single()
    }

    #[test]
    fn canonical_url_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("https://example.org/a", Some("https://example.org/a")),
            ("HTTPS://Example.ORG/a", Some("https://example.org/a")),
            ("https://example.org:443/a", Some("https://example.org/a")),
            ("http://example.org:80/a", Some("http://example.org/a")),
            ("http://example.org:8080/a", Some("http://example.org:8080/a")),
            ("https://example.org/a#comments", Some("https://example.org/a")),
            (
                "https://example.org/a?utm_source=rss&utm_medium=feed",
                Some("https://example.org/a"),
            ),
            (
                "https://example.org/a?UTM_Source=x&id=7&fbclid=abc&page=2",
                Some("https://example.org/a?id=7&page=2"),
            ),
            (
                "https://example.org/a?gclid=1&mc_cid=2&mc_eid=3&yclid=4&igshid=5&ref_src=6&_ga=7&cmpid=8&ocid=9",
                Some("https://example.org/a"),
            ),
            ("https://example.org/a?utm%5Fsource=x", Some("https://example.org/a")),
            ("https://example.org/a?", Some("https://example.org/a")),
            ("https://example.org/a?&&id=1&", Some("https://example.org/a?id=1")),
            ("https://example.org/a/", Some("https://example.org/a/")),
            ("https://example.org", Some("https://example.org/")),
            ("https://example.org/", Some("https://example.org/")),
            ("  https://example.org/a  ", Some("https://example.org/a")),
            // Order and spelling of kept parameters are the site's business.
            ("https://example.org/?b=2&a=1", Some("https://example.org/?b=2&a=1")),
            ("ftp://example.org/a", None),
            ("file:///tmp/feed.xml", None),
            ("mailto:news@example.org", None),
            ("/world/a", None),
            ("", None),
            ("not a url", None),
        ];
        for (input, want) in cases {
            assert_eq!(canonical_url(input).as_deref(), *want, "input {input:?}");
        }
    }

    #[test]
    fn feeds_without_guids_use_the_canonical_link() {
        let plain = "https://example.org/world/2025/03/11/kyiv";
        let tracked = "https://example.org/world/2025/03/11/kyiv?utm_source=rss&utm_medium=feed";
        let with_fragment = "https://EXAMPLE.org/world/2025/03/11/kyiv#top";
        let a = item_id(None, Some(plain), "Kyiv backs plan", at(11, 19), FEED);
        let b = item_id(None, Some(tracked), "Kyiv backs plan", at(11, 19), FEED);
        let c = item_id(None, Some(with_fragment), "Kyiv backs a plan", None, FEED);
        assert_eq!(a, format!("u:{plain}"));
        assert_eq!(a, b);
        assert_eq!(a, c);
        // An empty GUID is no GUID.
        assert_eq!(a, item_id(Some("  "), Some(tracked), "x", None, FEED));
        // URL ids are global: the same article through another feed is the same item.
        assert_eq!(a, item_id(None, Some(tracked), "x", None, OTHER_FEED));
    }

    #[test]
    fn permalink_guids_with_rotating_tracking_params_are_one_item() {
        let link = "https://example.org/world/kyiv";
        let cases = [
            (
                Some("https://example.org/world/kyiv?utm_campaign=a"),
                Some(link),
            ),
            (
                Some("https://example.org/world/kyiv?utm_campaign=b"),
                Some(link),
            ),
            (
                Some("https://example.org/world/kyiv?utm_campaign=b"),
                Some("https://example.org/world/kyiv?utm_source=x"),
            ),
            (Some("https://example.org/world/kyiv"), Some(link)),
            // A permalink GUID and no link element.
            (Some("https://example.org/world/kyiv?fbclid=zz"), None),
            // No GUID at all.
            (None, Some(link)),
        ];
        for (guid, link_) in cases {
            assert_eq!(
                item_id(guid, link_, "Kyiv", at(11, 19), FEED),
                format!("u:{link}"),
                "guid {guid:?}, link {link_:?}"
            );
        }
    }

    #[test]
    fn stable_guids_win_and_are_scoped_by_feed() {
        let a = item_id(
            Some("example-org-world-0001"),
            Some("https://example.org/a?utm_source=rss"),
            "A",
            None,
            FEED,
        );
        assert!(a.starts_with("g:"), "{a}");
        // The link may change (a slug edited after publication); the GUID holds.
        let edited = item_id(
            Some("example-org-world-0001"),
            Some("https://example.org/a-edited"),
            "A (updated)",
            at(12, 1),
            FEED,
        );
        assert_eq!(a, edited);
        // Surrounding whitespace is not part of a GUID.
        assert_eq!(
            a,
            item_id(Some(" example-org-world-0001\n"), None, "A", None, FEED)
        );

        // Two feeds numbering their entries 1, 2, … are different items.
        let one_here = item_id(Some("1"), None, "Title", None, FEED);
        let one_there = item_id(Some("1"), None, "Title", None, OTHER_FEED);
        let two_here = item_id(Some("2"), None, "Title", None, FEED);
        assert_ne!(one_here, one_there);
        assert_ne!(one_here, two_here);

        // A URL GUID other than the link is the feed's id, in canonical form.
        let short = item_id(
            Some("https://example.org/?p=123&utm_source=a"),
            Some("https://example.org/pretty-slug"),
            "T",
            None,
            FEED,
        );
        let short_again = item_id(
            Some("https://example.org/?p=123&utm_source=b"),
            Some("https://example.org/pretty-slug"),
            "T",
            None,
            FEED,
        );
        assert!(short.starts_with("g:"), "{short}");
        assert_eq!(short, short_again);
    }

    #[test]
    fn item_order_never_matters() {
        let entries = [
            (Some("guid-1"), Some("https://example.org/1"), "One"),
            (None, Some("https://example.org/2?utm_source=rss"), "Two"),
            (None, None, "Three"),
            (Some(""), Some("https://example.org/4"), "Four"),
        ];
        let ids = |order: &[usize]| {
            let mut ids: Vec<(usize, String)> = order
                .iter()
                .map(|&i| {
                    let (guid, link, title) = entries[i];
                    (i, item_id(guid, link, title, at(14, 9), FEED))
                })
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&[0, 1, 2, 3]), ids(&[3, 2, 1, 0]));
        assert_eq!(ids(&[0, 1, 2, 3]), ids(&[2, 0, 3, 1]));
        let all = ids(&[0, 1, 2, 3]);
        let distinct: std::collections::HashSet<&String> = all.iter().map(|(_, id)| id).collect();
        assert_eq!(distinct.len(), entries.len());
    }

    #[test]
    fn title_only_items_hash_feed_title_and_date() {
        let a = item_id(
            None,
            None,
            "  Storm warning   for the WEST coast ",
            at(14, 9),
            FEED,
        );
        assert!(a.starts_with("h:"), "{a}");
        assert_eq!(a.len(), 2 + 16);
        // Spacing and case are not part of the title; the hour is not part of the date.
        assert_eq!(
            a,
            item_id(
                None,
                None,
                "storm warning for the west coast",
                at(14, 23),
                FEED
            )
        );
        // Another day, another feed or another title is another item.
        assert_ne!(
            a,
            item_id(
                None,
                None,
                "storm warning for the west coast",
                at(15, 9),
                FEED
            )
        );
        assert_ne!(
            a,
            item_id(
                None,
                None,
                "storm warning for the west coast",
                at(14, 9),
                OTHER_FEED
            )
        );
        assert_ne!(
            a,
            item_id(
                None,
                None,
                "storm warning for the east coast",
                at(14, 9),
                FEED
            )
        );
        // Without a date, the title and feed decide.
        assert_eq!(
            item_id(None, None, "Briefing", None, FEED),
            item_id(None, None, "briefing", None, FEED)
        );
        // A link that is not http(s) cannot be an id, but still tells entries apart.
        let relative = item_id(None, Some("/world/a"), "T", None, FEED);
        assert!(relative.starts_with("h:"), "{relative}");
        assert_ne!(relative, item_id(None, Some("/world/b"), "T", None, FEED));
    }
}
