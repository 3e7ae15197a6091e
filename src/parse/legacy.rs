//! Feed formats feed-rs does not read, rewritten into ones it does.
//!
//! feed-rs reads RSS 0.91 to 2.0, RSS 1.0 and Atom 1.0. Sites still serve older
//! forms that a liberal reader shows (docs/feeds.md lists them): Atom 0.3 (another
//! namespace, `issued`/`modified`, `mode="escaped"` or `"base64"` content), RSS 0.90
//! (RDF in the Netscape namespace), Microsoft's CDF, and Atom 1.0 content declared
//! with a media type that is not text (`application/octet-stream`, `text/plain;base64`:
//! base64 inside, which feed-rs either refuses, failing the whole feed, or passes on as
//! a body of base64). [`upgrade`] rewrites those into Atom 1.0 or RSS 2.0 in one pass
//! of quick-xml events, so everything else about the feed (links, authors, `xml:base`)
//! is still read by feed-rs. It runs after [`super::repair`], on well-formed text; a
//! feed it cannot read as XML is left to feed-rs as it is.

use std::borrow::Cow;

use base64::Engine;
use quick_xml::events::{BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

/// The Atom 0.3 namespace, and the 1.0 one it becomes.
const ATOM_03: &str = "http://purl.org/atom/ns#";
const ATOM_10: &str = "http://www.w3.org/2005/Atom";
/// The RSS 0.90 namespace, and the RSS 1.0 one whose elements are the same.
const RSS_090: &str = "http://my.netscape.com/rdf/simple/0.9/";
const RSS_10: &str = "http://purl.org/rss/1.0/";

/// A format rewritten by [`upgrade`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legacy {
    Atom03,
    Rss090,
    Cdf,
    /// Atom 1.0 with base64 or binary text constructs.
    AtomContentTypes,
}

/// `text` rewritten into a format feed-rs reads, or `None` when it already is one
/// (or is not XML quick-xml can follow).
pub fn upgrade(text: &str) -> Option<(String, Legacy)> {
    let root = root_name(text)?;
    match root.as_str() {
        "channel" => cdf_to_rss(text).map(|t| (t, Legacy::Cdf)),
        "feed" | "rdf:rdf" => rewrite(text),
        _ => None,
    }
}

/// The lower-cased name of the root element.
fn root_name(text: &str) -> Option<String> {
    let mut reader = Reader::from_str(text);
    for _ in 0..64 {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) => {
                return Some(String::from_utf8_lossy(e.name().as_ref()).to_lowercase())
            }
            Event::Eof => return None,
            _ => {}
        }
    }
    None
}

/// What a text construct is rewritten to.
enum Construct {
    /// Kept, with this `type` (and no `mode`).
    Typed(&'static str),
    /// Its base64 content decoded, as text of this `type`.
    Base64(&'static str),
    /// Dropped: binary content no reader can show (the entry's summary stays).
    Dropped,
}

/// Atom 0.3, RSS 0.90 and odd Atom 1.0 content types, event by event.
fn rewrite(text: &str) -> Option<(String, Legacy)> {
    let mut reader = Reader::from_str(text);
    let mut writer = Writer::new(Vec::with_capacity(text.len() + 256));
    let mut format = None;
    let mut depth = 0usize;
    let mut changed = false;
    loop {
        let event = reader.read_event().ok()?;
        match event {
            Event::Eof => break,
            Event::Start(e) if depth == 0 => {
                depth += 1;
                let (root, kind) = upgrade_root(&e)?;
                format = kind;
                changed |= kind.is_some();
                writer.write_event(Event::Start(root)).ok()?;
            }
            Event::Start(e) => {
                let atom03 = format == Some(Legacy::Atom03);
                let name = e.name();
                let local = name.as_ref();
                if atom03 && matches!(local, b"created" | b"info") {
                    reader.read_to_end(name.to_owned()).ok()?;
                    changed = true;
                    continue;
                }
                if atom03 {
                    if let Some(renamed) = atom03_name(local) {
                        let mut start = e.to_owned();
                        start.set_name(renamed.as_bytes());
                        let inner = reader.read_text(name.to_owned()).ok()?;
                        writer.write_event(Event::Start(start)).ok()?;
                        writer.write_event(Event::Text(inner)).ok()?;
                        writer
                            .write_event(Event::End(quick_xml::events::BytesEnd::new(renamed)))
                            .ok()?;
                        changed = true;
                        continue;
                    }
                }
                let construct = if is_text_construct(local, atom03) {
                    text_construct(&e, atom03)
                } else {
                    None
                };
                match construct {
                    None => {
                        depth += 1;
                        writer.write_event(Event::Start(e)).ok()?;
                    }
                    Some(Construct::Typed(kind)) => {
                        changed = true;
                        depth += 1;
                        writer.write_event(Event::Start(retyped(&e, kind))).ok()?;
                    }
                    Some(Construct::Base64(kind)) => {
                        changed = true;
                        let encoded = reader.read_text(name.to_owned()).ok()?;
                        let start = retyped(&e, kind);
                        match decode_base64(&encoded.decode().ok()?) {
                            Some(decoded) => {
                                let end = start.to_end().into_owned();
                                writer.write_event(Event::Start(start)).ok()?;
                                writer
                                    .write_event(Event::Text(BytesText::new(&decoded)))
                                    .ok()?;
                                writer.write_event(Event::End(end)).ok()?;
                            }
                            None => continue,
                        }
                    }
                    Some(Construct::Dropped) => {
                        changed = true;
                        reader.read_to_end(name.to_owned()).ok()?;
                    }
                }
            }
            Event::Empty(e) if depth == 0 => {
                let (root, kind) = upgrade_root(&e)?;
                changed |= kind.is_some();
                writer.write_event(Event::Empty(root)).ok()?;
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                writer.write_event(Event::End(e)).ok()?;
            }
            other => writer.write_event(other).ok()?,
        }
    }
    if !changed {
        return None;
    }
    let out = String::from_utf8(writer.into_inner()).ok()?;
    Some((out, format.unwrap_or(Legacy::AtomContentTypes)))
}

/// The root with an Atom 0.3 or RSS 0.90 namespace replaced, and which it was.
fn upgrade_root(e: &BytesStart<'_>) -> Option<(BytesStart<'static>, Option<Legacy>)> {
    let mut kind = None;
    let mut attrs = Vec::new();
    for attr in e.attributes().with_checks(false) {
        let attr = attr.ok()?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let value = attr_value(&attr)?;
        match (key.as_str(), value.trim()) {
            ("xmlns", ATOM_03) => {
                kind = Some(Legacy::Atom03);
                attrs.push((key, ATOM_10.to_string()));
            }
            ("xmlns", RSS_090) => {
                kind = Some(Legacy::Rss090);
                attrs.push((key, RSS_10.to_string()));
            }
            ("version", "0.1" | "0.2" | "0.3") if e.name().as_ref() == b"feed" => {
                kind = Some(Legacy::Atom03);
            }
            _ => attrs.push((key, value)),
        }
    }
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut root = BytesStart::new(name);
    for (key, value) in &attrs {
        root.push_attribute((key.as_str(), value.as_str()));
    }
    Some((root, kind))
}

/// An attribute's value, its references resolved.
fn attr_value(attr: &quick_xml::events::attributes::Attribute<'_>) -> Option<String> {
    let raw = std::str::from_utf8(&attr.value).ok()?;
    quick_xml::escape::unescape(raw).ok().map(Cow::into_owned)
}

/// Atom 0.3 elements whose 1.0 names differ.
fn atom03_name(local: &[u8]) -> Option<&'static str> {
    match local {
        b"issued" => Some("published"),
        b"modified" => Some("updated"),
        _ => None,
    }
}

fn is_text_construct(local: &[u8], atom03: bool) -> bool {
    matches!(local, b"title" | b"summary" | b"content")
        || (atom03 && matches!(local, b"tagline" | b"copyright"))
        || (!atom03 && matches!(local, b"subtitle" | b"rights"))
}

/// How a text construct with these `type` (and, in Atom 0.3, `mode`) attributes is
/// rewritten; `None` when feed-rs reads it as it is.
fn text_construct(e: &BytesStart<'_>, atom03: bool) -> Option<Construct> {
    let attr = |name: &str| -> Option<String> {
        e.try_get_attribute(name)
            .ok()
            .flatten()
            .and_then(|a| attr_value(&a).map(|v| v.trim().to_ascii_lowercase()))
    };
    if attr("src").is_some() {
        return None;
    }
    let media = attr("type");
    let media = media.as_deref();
    let textual = |media: &str| -> &'static str {
        if media.contains("html") {
            "html"
        } else {
            "text"
        }
    };
    if atom03 {
        // Atom 0.3: `type` is a media type (text/plain by default), `mode` says
        // how it is carried (xml, escaped or base64).
        let media = media.unwrap_or("text/plain");
        let is_text = media.starts_with("text/") || media.contains("xml");
        return Some(match attr("mode").as_deref() {
            Some("base64") if is_text => Construct::Base64(textual(media)),
            Some("base64") => Construct::Dropped,
            Some("escaped") => Construct::Typed(textual(media)),
            _ if media.contains("xhtml") || media == "text/html" => Construct::Typed("xhtml"),
            _ if is_text => Construct::Typed("text"),
            _ => Construct::Dropped,
        });
    }
    let media = media?;
    if matches!(media, "text" | "html" | "xhtml")
        || media.ends_with("+xml")
        || media.ends_with("/xml")
    {
        return None;
    }
    let base64 = media.contains("base64");
    let essence = media.split(';').next().unwrap_or("").trim();
    Some(match essence.strip_prefix("text/") {
        Some(_) if base64 => Construct::Base64(textual(essence)),
        Some(_) => Construct::Typed(textual(essence)),
        // Atom 1.0: any other media type is base64 inside (RFC 4287 4.1.3.3).
        None => Construct::Dropped,
    })
}

/// A copy of the start tag with `type` set to `kind` and no `mode`.
fn retyped(e: &BytesStart<'_>, kind: &str) -> BytesStart<'static> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut start = BytesStart::new(name);
    for attr in e.attributes().with_checks(false).flatten() {
        if matches!(attr.key.as_ref(), b"type" | b"mode") {
            continue;
        }
        start.push_attribute(attr);
    }
    start.push_attribute(("type", kind));
    start
}

/// Base64 text (whitespace allowed) decoded to UTF-8 text; `None` when it is not
/// base64 or not text.
fn decode_base64(encoded: &str) -> Option<String> {
    let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// A CDF channel (`<CHANNEL HREF>` with `<ITEM HREF LASTMOD>`, `<TITLE>`,
/// `<ABSTRACT>`) as RSS 2.0; relative `HREF`s are resolved against the channel's
/// `BASE` or `HREF`.
fn cdf_to_rss(text: &str) -> Option<String> {
    use quick_xml::escape::escape;
    struct Item {
        href: Option<String>,
        lastmod: Option<String>,
        title: String,
        abstract_: String,
    }
    let mut reader = Reader::from_str(text);
    let mut base: Option<url::Url> = None;
    let mut channel = Item {
        href: None,
        lastmod: None,
        title: String::new(),
        abstract_: String::new(),
    };
    let mut items: Vec<Item> = Vec::new();
    let mut in_item = false;
    let mut field: Option<&'static str> = None;
    let attr = |e: &BytesStart<'_>, name: &str| -> Option<String> {
        e.attributes()
            .with_checks(false)
            .flatten()
            .find(|a| a.key.as_ref().eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|a| attr_value(&a))
    };
    loop {
        let event = reader.read_event().ok()?;
        match event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name().as_ref().to_ascii_uppercase();
                match name.as_slice() {
                    b"CHANNEL" if base.is_none() => {
                        let href = attr(&e, "BASE").or_else(|| attr(&e, "HREF"));
                        base = href.as_deref().and_then(|h| url::Url::parse(h).ok());
                        channel.href = attr(&e, "HREF");
                    }
                    b"ITEM" => {
                        in_item = true;
                        items.push(Item {
                            href: attr(&e, "HREF"),
                            lastmod: attr(&e, "LASTMOD"),
                            title: String::new(),
                            abstract_: String::new(),
                        });
                    }
                    b"TITLE" => field = Some("title"),
                    b"ABSTRACT" => field = Some("abstract"),
                    _ => {}
                }
            }
            Event::End(e) => match e.name().as_ref().to_ascii_uppercase().as_slice() {
                b"ITEM" => in_item = false,
                b"TITLE" | b"ABSTRACT" => field = None,
                _ => {}
            },
            Event::Text(t) => {
                let piece = t.xml10_content().ok()?;
                push_field(&mut items, &mut channel, in_item, field, &piece);
            }
            Event::CData(t) => {
                let piece = t.decode().ok()?;
                push_field(&mut items, &mut channel, in_item, field, &piece);
            }
            Event::GeneralRef(r) => {
                let piece = match r.resolve_char_ref().ok()? {
                    Some(c) => c.to_string(),
                    None => match r.decode().ok()?.as_ref() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        _ => String::new(),
                    },
                };
                push_field(&mut items, &mut channel, in_item, field, &piece);
            }
            _ => {}
        }
    }
    fn push_field(
        items: &mut [Item],
        channel: &mut Item,
        in_item: bool,
        field: Option<&str>,
        piece: &str,
    ) {
        let target = if in_item {
            match items.last_mut() {
                Some(item) => item,
                None => return,
            }
        } else {
            channel
        };
        match field {
            Some("title") => target.title.push_str(piece),
            Some("abstract") => target.abstract_.push_str(piece),
            _ => {}
        }
    }
    let resolve = |href: &str| -> String {
        base.as_ref()
            .and_then(|b| b.join(href).ok())
            .map_or_else(|| href.to_string(), |u| u.to_string())
    };
    let mut out = String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel>");
    out.push_str(&format!(
        "<title>{}</title><link>{}</link><description>{}</description>",
        escape(channel.title.trim()),
        escape(channel.href.as_deref().map(resolve).unwrap_or_default()),
        escape(channel.abstract_.trim()),
    ));
    for item in &items {
        out.push_str("<item>");
        if !item.title.trim().is_empty() {
            out.push_str(&format!("<title>{}</title>", escape(item.title.trim())));
        }
        if let Some(href) = &item.href {
            out.push_str(&format!("<link>{}</link>", escape(resolve(href))));
        }
        if !item.abstract_.trim().is_empty() {
            out.push_str(&format!(
                "<description>{}</description>",
                escape(item.abstract_.trim())
            ));
        }
        if let Some(date) = item.lastmod.as_deref().and_then(cdf_date) {
            out.push_str(&format!("<pubDate>{date}</pubDate>"));
        }
        out.push_str("</item>");
    }
    out.push_str("</channel></rss>");
    Some(out)
}

/// A CDF `LASTMOD` (`2025-03-14T10:00`, seconds and zone optional; UTC when none
/// is given) as an RFC 2822 date.
fn cdf_date(value: &str) -> Option<String> {
    let value = value.trim();
    if let Ok(date) = chrono::DateTime::parse_from_rfc3339(value) {
        return Some(date.to_rfc2822());
    }
    [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(value, f).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
    .map(|d| d.and_utc().to_rfc2822())
}
