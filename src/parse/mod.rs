//! Input: the bytes of a feed, a web page or a text file, decoded and recognised.
//!
//! [`decode`] turns bytes into UTF-8 text: a byte-order mark, a charset named by the
//! caller (an HTTP `Content-Type`) or by the document itself (`<?xml encoding>`,
//! `<meta charset>`), and else a statistical guess, in that order of trust. Russian and
//! Ukrainian outlets still publish windows-1251 and KOI8-R, so guessing matters.
//! [`parse`] then says what the text is: a feed (RSS, Atom, JSON Feed, parsed by
//! feed-rs into [`FeedItem`]s), an HTML page, or plain text. XML feeds are read
//! liberally: the defects browsers forgive (HTML entities, stray `&`, a missing RSS
//! version, a stale encoding declaration) are repaired first by
//! [`repair`], and [`parse_liberally`] says which were.

use chrono::{DateTime, Utc};
use encoding_rs::Encoding;

pub mod legacy;
pub mod repair;

pub use repair::{advertised_feeds, read_feed, read_feed_at, FeedError, LiberalFeed, Repair};

/// Bytes sniffed for a declared charset and for binary content.
pub const SNIFF_LEN: usize = 4096;
/// Element nesting refused in a feed; real feeds nest a few dozen levels at most.
const MAX_DEPTH: usize = 10_000;

/// What a piece of input turned out to be.
#[derive(Debug)]
pub enum Parsed {
    Feed(Vec<FeedItem>),
    Html(String),
    Text(String),
}

/// One entry of a feed, as published (not yet cleaned).
#[derive(Debug, Clone, Default)]
pub struct FeedItem {
    /// The entry's GUID or Atom id, when the feed gives one.
    pub id: Option<String>,
    pub title: String,
    pub link: Option<String>,
    pub published: Option<DateTime<Utc>>,
    /// The fullest body the feed gives (content, else summary), as HTML.
    pub body: String,
    /// The encoding the feed's bytes were read in ([`Decoded::encoding`]), when the
    /// item was read from bytes rather than from text.
    pub encoding: Option<&'static str>,
}

/// Text decoded from bytes, and how.
#[derive(Debug)]
pub struct Decoded {
    pub text: String,
    /// The encoding the bytes were read in (its WHATWG name: "UTF-8", "EUC-JP",
    /// "windows-1251"…), recorded with every item read from them.
    pub encoding: &'static str,
    /// Set when the bytes were not plain UTF-8: the encoding used and why.
    pub note: Option<String>,
}

/// Input that cannot be turned into documents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but whitespace.
    #[error("empty input")]
    Empty,
    /// Bytes that are not text in any charset (images, archives, executables).
    #[error("binary data, not text (NUL byte at offset {offset})")]
    Binary { offset: usize },
    /// Looked like a feed, but the feed parser refused it.
    #[error("not a valid {kind} feed: {reason}")]
    Feed { kind: &'static str, reason: String },
}

/// Decodes bytes to text. `charset` is a label from outside the document (HTTP).
///
/// A byte-order mark wins; then, when the HTTP header, the XML declaration (or
/// `<meta charset>`) and the bytes disagree, the bytes decide (docs/feeds.md,
/// "Encodings"): text that is valid UTF-8 with non-ASCII in it is UTF-8 whatever
/// is declared; a declared multi-byte charset (Shift_JIS, EUC-JP, GBK, Big5) the
/// bytes are malformed in is refused; a declared single-byte charset is refused when
/// the statistical detector confidently reads the bytes as another script (EUC-JP
/// bytes declared ISO-8859-1 would otherwise read as Latin mojibake). With nothing
/// declared that fits, the detector's guess is used.
pub fn decode(bytes: &[u8], charset: Option<&str>) -> Result<Decoded, ParseError> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        let note = (encoding != encoding_rs::UTF_8)
            .then(|| format!("decoded as {} (byte-order mark)", encoding.name()));
        return Ok(Decoded {
            text: text.into_owned(),
            encoding: encoding.name(),
            note,
        });
    }
    if let Some(encoding) = utf16_without_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(bytes);
        return Ok(Decoded {
            text: text.into_owned(),
            encoding: encoding.name(),
            note: Some(format!(
                "decoded as {} (no byte-order mark, but `<` as two bytes)",
                encoding.name()
            )),
        });
    }
    let head = &bytes[..bytes.len().min(SNIFF_LEN)];
    if let Some(offset) = head.iter().position(|&b| b == 0) {
        return Err(ParseError::Binary { offset });
    }
    // UTF-16 named by a document without NUL bytes in it is a lie the bytes refute.
    let usable = |e: &&'static Encoding| *e != encoding_rs::UTF_16LE && *e != encoding_rs::UTF_16BE;
    let from_http = charset
        .and_then(|label| Encoding::for_label(label.trim().as_bytes()))
        .filter(usable)
        .map(|e| (e, "as the server said"));
    let from_document = declared_charset(head)
        .filter(usable)
        .map(|e| (e, "as the document declares"));
    let declared: Vec<(&'static Encoding, &str)> =
        from_http.into_iter().chain(from_document).collect();
    let named = |e: &'static Encoding| {
        declared
            .iter()
            .find(|(d, _)| *d != e)
            .map(|(d, why)| format!(" ({} {why}, which the bytes are not)", d.name()))
            .unwrap_or_default()
    };
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.is_ascii() => {
            return Ok(Decoded {
                text: text.to_owned(),
                encoding: encoding_rs::UTF_8.name(),
                note: (!named(encoding_rs::UTF_8).is_empty())
                    .then(|| format!("decoded as UTF-8{}", named(encoding_rs::UTF_8))),
            });
        }
        // ASCII reads the same in every charset a feed is declared in, bar the
        // 7-bit ones (ISO-2022-JP) whose escapes only their decoder understands.
        Ok(text) => {
            let encoding = declared.first().map_or(encoding_rs::UTF_8, |(e, _)| *e);
            if encoding == encoding_rs::ISO_2022_JP {
                let (text, _, _) = encoding.decode(bytes);
                return Ok(Decoded {
                    text: text.into_owned(),
                    encoding: encoding.name(),
                    note: Some(format!("decoded as {}", encoding.name())),
                });
            }
            return Ok(Decoded {
                text: text.to_owned(),
                encoding: if encoding.is_ascii_compatible() {
                    encoding.name()
                } else {
                    "UTF-8"
                },
                note: None,
            });
        }
        Err(_) => {}
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(bytes, true);
    let (guess, confident) = detector.guess_assess(None, false);
    let fits = |encoding: &'static Encoding| -> bool {
        let clean = encoding
            .decode_without_bom_handling_and_without_replacement(bytes)
            .is_some();
        if !clean {
            return false;
        }
        encoding == guess
            || !encoding.is_single_byte()
            || !confident
            || same_script(encoding, guess)
    };
    if let Some((encoding, why)) = declared.iter().find(|(e, _)| fits(e)) {
        let (text, _) = encoding.decode_without_bom_handling(bytes);
        return Ok(Decoded {
            text: text.into_owned(),
            encoding: encoding.name(),
            note: Some(format!(
                "decoded as {} {why}{}",
                encoding.name(),
                named(encoding)
            )),
        });
    }
    let (text, _) = guess.decode_without_bom_handling(bytes);
    Ok(Decoded {
        text: text.into_owned(),
        encoding: guess.name(),
        note: Some(format!(
            "not valid UTF-8; decoded as {} by the bytes{}",
            guess.name(),
            named(guess)
        )),
    })
}

/// UTF-16 without a byte-order mark, told by the `<` (or `<?`) it starts with.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    match bytes {
        [b'<', 0, b, 0, ..] if *b != 0 => Some(encoding_rs::UTF_16LE),
        [0, b'<', 0, b, ..] if *b != 0 => Some(encoding_rs::UTF_16BE),
        _ => None,
    }
}

/// Whether two single-byte charsets write the same script, so that the detector
/// preferring one over the other is no reason to doubt a declaration (a Polish feed
/// declared windows-1250 that the detector calls windows-1252).
fn same_script(a: &'static Encoding, b: &'static Encoding) -> bool {
    fn script(e: &'static Encoding) -> &'static str {
        use encoding_rs::*;
        let latin = [
            WINDOWS_1252,
            WINDOWS_1250,
            WINDOWS_1254,
            WINDOWS_1257,
            WINDOWS_1258,
            ISO_8859_2,
            ISO_8859_3,
            ISO_8859_4,
            ISO_8859_10,
            ISO_8859_13,
            ISO_8859_14,
            ISO_8859_15,
            ISO_8859_16,
            MACINTOSH,
        ];
        let cyrillic = [
            WINDOWS_1251,
            KOI8_R,
            KOI8_U,
            ISO_8859_5,
            IBM866,
            X_MAC_CYRILLIC,
        ];
        if latin.contains(&e) {
            "latin"
        } else if cyrillic.contains(&e) {
            "cyrillic"
        } else {
            e.name()
        }
    }
    script(a) == script(b)
}

/// The charset a document names for itself in its first bytes.
fn declared_charset(head: &[u8]) -> Option<&'static Encoding> {
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let after = |marker: &str| -> Option<&'static Encoding> {
        let at = head.find(marker)? + marker.len();
        let rest = head[at..].trim_start_matches(['"', '\'', ' ']);
        let label: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
            .collect();
        Encoding::for_label(label.as_bytes())
    };
    if head.trim_start().starts_with("<?xml") {
        after("encoding=")
    } else {
        after("charset=")
    }
}

/// Recognises decoded text and, for feeds, parses it.
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    parse_liberally(text).map(|(parsed, _)| parsed)
}

/// What reading a feed liberally found beside its items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedNotes {
    /// The defects repaired before the feed parsed.
    pub repairs: Vec<Repair>,
    /// Minutes the feed may be cached (RSS `<ttl>`).
    pub ttl: Option<u32>,
}

/// [`parse`], also saying which defects a feed needed repaired and its `<ttl>`.
pub fn parse_liberally(text: &str) -> Result<(Parsed, FeedNotes), ParseError> {
    let mut notes = FeedNotes::default();
    let (trimmed, junk) = repair::strip_leading_junk(text);
    if trimmed.trim_end().is_empty() {
        return Err(ParseError::Empty);
    }
    if let Some(offset) = control_heavy(trimmed) {
        return Err(ParseError::Binary { offset });
    }
    let kind = if trimmed.starts_with('{') {
        let head: String = trimmed.chars().take(SNIFF_LEN).collect();
        head.contains("jsonfeed.org").then_some("JSON")
    } else if trimmed.starts_with('<') {
        match first_element(trimmed).as_deref() {
            Some("rss") => Some("RSS"),
            Some("rdf:rdf") | Some("rdf") => Some("RSS"),
            Some("feed") => Some("Atom"),
            // Microsoft's Channel Definition Format, rewritten to RSS by `legacy`.
            Some("channel") => Some("CDF"),
            _ => return Ok((Parsed::Html(text.to_owned()), notes)),
        }
    } else {
        None
    };
    let Some(kind) = kind else {
        return Ok((Parsed::Text(text.to_owned()), notes));
    };
    notes.repairs.extend(junk);
    let feed = parse_feed(trimmed, kind, &mut notes)?;
    notes.ttl = feed.ttl;
    Ok((
        Parsed::Feed(feed.entries.into_iter().map(feed_item).collect()),
        notes,
    ))
}

/// The offset of the first character of a run that makes the text look binary: more
/// than one in ten characters of the head are control characters.
fn control_heavy(text: &str) -> Option<usize> {
    let mut total = 0usize;
    let mut control = 0usize;
    let mut first = None;
    for (i, c) in text.char_indices().take(SNIFF_LEN) {
        total += 1;
        if c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}') {
            control += 1;
            first.get_or_insert(i);
        }
    }
    (control * 10 > total).then_some(first.unwrap_or(0))
}

/// The lower-cased name of the first element, skipping the XML declaration, comments,
/// processing instructions and a doctype.
fn first_element(text: &str) -> Option<String> {
    let mut rest = text;
    for _ in 0..64 {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = &after[after.find("-->")? + 3..];
        } else if rest.starts_with("<?") || rest.starts_with("<!") {
            if repair::starts_with_ignore_ascii_case(rest, "<!doctype") {
                // An internal subset (`<!DOCTYPE rss [<!ENTITY ...>]>`) holds `>`s
                // of its own; only the part before it names the document type.
                let end = repair::skip_doctype(rest, 0);
                let doctype = &rest[..end];
                let name = &doctype[..doctype.find('[').unwrap_or(doctype.len())];
                if name.to_ascii_lowercase().contains("html") {
                    return Some("html".into());
                }
                rest = &rest[end..];
                continue;
            }
            rest = &rest[rest.find('>')? + 1..];
        } else {
            let name: String = rest
                .strip_prefix('<')?
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, ':' | '-' | '_'))
                .collect();
            return Some(name.to_lowercase());
        }
    }
    None
}

/// Parses a feed, repairing XML first. Should a repair ever break a feed feed-rs
/// reads as it is, the text as it is wins.
fn parse_feed(
    text: &str,
    kind: &'static str,
    notes: &mut FeedNotes,
) -> Result<feed_rs::model::Feed, ParseError> {
    let as_error = |err: feed_rs::parser::ParseFeedError| ParseError::Feed {
        kind,
        reason: err.to_string(),
    };
    if kind == "JSON" {
        return parse_entries(text).map_err(as_error);
    }
    if repair::nests_deeper_than(text, MAX_DEPTH) {
        return Err(ParseError::Feed {
            kind,
            reason: format!("elements nested more than {MAX_DEPTH} levels deep"),
        });
    }
    let repaired = repair::repair(text);
    let upgraded = legacy::upgrade(&repaired.text);
    let readable = upgraded
        .as_ref()
        .map_or(&*repaired.text, |(t, _)| t.as_str());
    match parse_entries(readable) {
        Ok(feed) => {
            notes.repairs.extend(repaired.repairs);
            Ok(feed)
        }
        Err(err) if !repaired.repairs.is_empty() => {
            let upgraded = legacy::upgrade(text);
            let readable = upgraded.as_ref().map_or(text, |(t, _)| t.as_str());
            parse_entries(readable).map_err(|_| as_error(err))
        }
        Err(err) => Err(as_error(err)),
    }
}

/// feed-rs on `text`, leaving the id of an entry that has none empty. By default it
/// makes one up (a hash of link and title, or a random UUID when both are missing),
/// which would pass for the feed's GUID: an item without one would then change id
/// with its title, or on every fetch, instead of following the rules for items without
/// a GUID (docs/stories.md, "Item ids").
fn parse_entries(text: &str) -> Result<feed_rs::model::Feed, feed_rs::parser::ParseFeedError> {
    feed_rs::parser::Builder::new()
        .id_generator(|_links, _title, _uri| String::new())
        .build()
        .parse(text.as_bytes())
}

/// Whether a feed-rs media type (`MediaTypeBuf`, from a crate of its own) is
/// `text/plain`, whatever its parameters.
fn is_plain(media: &impl ToString) -> bool {
    let media = media.to_string();
    media.split(';').next().unwrap_or("").trim() == "text/plain"
}

fn feed_item(entry: feed_rs::model::Entry) -> FeedItem {
    let as_html = |text: feed_rs::model::Text| {
        if is_plain(&text.content_type) {
            crate::markup::escape(&text.content)
        } else {
            text.content
        }
    };
    // Media RSS carries the text of items that have no title or description of
    // their own (video and photo feeds).
    let media_title = entry.media.iter().find_map(|m| m.title.clone());
    let media_text = entry.media.iter().find_map(|m| m.description.clone());
    let body = entry
        .content
        .and_then(|c| {
            let plain = is_plain(&c.content_type);
            c.body.map(|body| {
                if plain {
                    crate::markup::escape(&body)
                } else {
                    body
                }
            })
        })
        .filter(|b| !b.trim().is_empty())
        .or_else(|| entry.summary.map(as_html))
        .filter(|b| !b.trim().is_empty())
        .or_else(|| media_text.map(as_html))
        .unwrap_or_default();
    FeedItem {
        id: Some(entry.id).filter(|id| !id.is_empty()),
        title: entry.title.or(media_title).map(as_html).unwrap_or_default(),
        link: entry.links.into_iter().next().map(|l| l.href),
        published: entry.published.or(entry.updated),
        body,
        encoding: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RSS item without a `<guid>` has no GUID, however feed-rs fills its id in:
    /// its id then comes from its link, or from its title and date, and stays the same
    /// from one fetch to the next.
    #[test]
    fn items_without_a_guid_have_none() {
        let rss = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
            <item><title>Linked</title><link>https://example.org/a?utm_source=x</link></item>
            <item><description>Neither link nor title.</description>
              <pubDate>Fri, 14 Mar 2025 10:00:00 GMT</pubDate></item>
            <item><guid isPermaLink="false">tag:example.org,2025:3</guid><title>G</title></item>
            </channel></rss>"#;
        let ids = |text: &str| -> Vec<String> {
            let mut notes = FeedNotes::default();
            parse_feed(text, "RSS", &mut notes)
                .unwrap()
                .entries
                .into_iter()
                .map(feed_item)
                .map(|item| {
                    crate::identity::item_id(
                        item.id.as_deref(),
                        item.link.as_deref(),
                        &item.title,
                        item.published,
                        "https://example.org/rss",
                    )
                })
                .collect()
        };
        let first = ids(rss);
        assert_eq!(first[0], "u:https://example.org/a");
        assert!(first[1].starts_with("h:"), "{first:?}");
        assert!(first[2].starts_with("g:"), "{first:?}");
        assert_eq!(ids(rss), first, "the same on every fetch");
        // A corrected title is the same item when it has a link.
        assert_eq!(
            ids(&rss.replace("Linked", "Linked, corrected"))[0],
            first[0]
        );
    }

    #[test]
    fn utf8_passes_through() {
        let d = decode("Київ і Москва".as_bytes(), None).unwrap();
        assert_eq!(d.text, "Київ і Москва");
        assert!(d.note.is_none());
    }

    #[test]
    fn windows_1251_is_recognised() {
        let (bytes, _, _) = encoding_rs::WINDOWS_1251
            .encode("Путин и Зеленский обсудили перемирие и переговоры о мире");
        let d = decode(&bytes, None).unwrap();
        assert_eq!(
            d.text,
            "Путин и Зеленский обсудили перемирие и переговоры о мире"
        );
        assert!(d.note.unwrap().contains("windows-1251"));
    }

    #[test]
    fn declared_charset_wins() {
        let mut bytes =
            b"<?xml version=\"1.0\" encoding=\"koi8-r\"?><rss><channel><title>".to_vec();
        let (name, _, _) = encoding_rs::KOI8_R.encode("Новости");
        bytes.extend_from_slice(&name);
        bytes.extend_from_slice(b"</title></channel></rss>");
        let d = decode(&bytes, None).unwrap();
        assert!(d.text.contains("Новости"), "{}", d.text);
    }

    #[test]
    fn binary_is_refused() {
        let err = decode(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", None).unwrap_err();
        assert!(matches!(err, ParseError::Binary { offset: 8 }));
        assert!(matches!(
            parse("\u{1}\u{2}\u{3}\u{4}ab"),
            Err(ParseError::Binary { .. })
        ));
    }

    #[test]
    fn kinds_are_recognised() {
        assert!(matches!(parse("  "), Err(ParseError::Empty)));
        assert!(matches!(parse("Just some text."), Ok(Parsed::Text(_))));
        assert!(matches!(parse("<!DOCTYPE html><p>x"), Ok(Parsed::Html(_))));
        assert!(matches!(parse("<div>x</div>"), Ok(Parsed::Html(_))));
        let rss = r#"<?xml version="1.0"?><!-- c --><rss version="2.0"><channel><title>t</title>
            <item><guid>g1</guid><title>A &amp; B</title><description>&lt;p&gt;Body&lt;/p&gt;</description></item>
            </channel></rss>"#;
        let Ok(Parsed::Feed(items)) = parse(rss) else {
            panic!("not a feed")
        };
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].id.as_deref(), Some("g1"));
        assert!(items[0].body.contains("<p>Body</p>"));
    }

    /// `first_element` looks at the start of every document: `<?xml ééé?>` or a
    /// processing instruction in Japanese there panicked before anything was read.
    #[test]
    fn the_first_element_is_found_past_markup_in_any_script() {
        for text in repair::tests::in_every_script_and_alignment() {
            for head in [
                format!("<?xml {text}?>"),
                format!("<?{text} x=\"{text}\"?>"),
                format!("<!-- {text} -->"),
                format!("<!DOCTYPE rss [<!ENTITY x \"{text}\">]>"),
            ] {
                let doc = format!("{head}\n<rss version=\"2.0\"><title>{text}</title></rss>");
                assert_eq!(first_element(&doc).as_deref(), Some("rss"), "{doc}");
            }
            let doc = format!("<?{text}?><!DOCTYPE html><p>{text}</p>");
            assert_eq!(first_element(&doc).as_deref(), Some("html"), "{doc}");
            assert_eq!(first_element(&format!("<?{text}")), None);
        }
    }

    /// Feeds whose titles, authors, processing instructions and attribute values hold
    /// non-ASCII text right after a `<` are read whole, in RSS and in Atom.
    #[test]
    fn feeds_with_text_in_any_script_after_markup_are_read() {
        for text in repair::tests::in_every_script_and_alignment() {
            let rss = format!(
                "<?xml {text}?>\n<rss version=\"2.0\"><channel><title>{text}</title>\
                 <item><title>{text}</title><author>{text}</author>\
                 <enclosure url=\"https://example.org/a.jpg\" length=\"1\" type=\"image/jpeg\" title=\"x<{text}\"/>\
                 <description>&lt;p title=\"&lt;{text}\"&gt;{text}&lt;/p&gt;</description></item></channel></rss>"
            );
            let atom = format!(
                "<?xml version=\"1.0\"?>\n<?{text} x=\"1\"?>\n<!DOCTYPE feed>\n\
                 <feed xmlns=\"http://www.w3.org/2005/Atom\"><title>{text}</title><id>urn:x</id>\
                 <updated>2025-03-14T10:00:00Z</updated><entry><title>{text}</title><id>urn:x:1</id>\
                 <updated>2025-03-14T10:00:00Z</updated><author><name>{text}</name></author>\
                 <content type=\"html\">&lt;p class=\"&lt;{text}\"&gt;{text}&lt;/p&gt;</content></entry></feed>"
            );
            for feed in [rss, atom] {
                let Ok(Parsed::Feed(items)) = parse(&feed) else {
                    panic!("not read as a feed: {feed}")
                };
                assert_eq!(items.len(), 1, "{feed}");
                assert_eq!(items[0].title, text, "{feed}");
                assert!(items[0].body.contains(&format!(">{text}</p>")), "{feed}");
            }
        }
    }

    #[test]
    fn broken_feed_is_a_named_error() {
        let err = parse("<rss><channel><item><title>x</channel>").unwrap_err();
        assert!(err.to_string().starts_with("not a valid RSS feed"), "{err}");
    }
}
