//! Every feed format and encoding of docs/feeds.md, one small fixture each under
//! `tests/fixtures/feeds/`, read the way the poller reads a body (`parse::read_feed`)
//! and cleaned by the shipped config's pipeline, against a table of what a reader
//! must see: each item's title, the start of its text, its link and date, and the
//! encoding its bytes were read in. Every file in the directory must be in the table,
//! so a fixture cannot be added without saying what it must produce.

use std::collections::BTreeSet;

use newswatch::parse;

use crate::util::{default_config, root};

/// One expected item: title, start of the cleaned text (NFKC, as the pipeline
/// gives it), link (`None`: not checked), date (RFC 3339).
type Item = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

/// A fixture (relative to `tests/fixtures/feeds/`), the encoding it must be read
/// in, and its items in order.
const TABLE: &[(&str, &str, &[Item])] = &[
    // Formats.
    (
        "rss090.rdf",
        "UTF-8",
        &[
            (
                "Talks resume in Jeddah",
                "",
                Some("https://example.org/090/1"),
                None,
            ),
            (
                "Harvest starts early",
                "",
                Some("https://example.org/090/2"),
                None,
            ),
        ],
    ),
    (
        "rss091.xml",
        "UTF-8",
        &[(
            "Envoys meet in Geneva",
            "Envoys met in Geneva",
            Some("https://example.org/091/1"),
            None,
        )],
    ),
    // An item with neither title nor link: its text becomes the title.
    (
        "rss092.xml",
        "UTF-8",
        &[(
            "An item with only a description, as 0.92 allows: the museum reopens.",
            "",
            None,
            None,
        )],
    ),
    (
        "rss093.xml",
        "UTF-8",
        &[(
            "Storm closes the port",
            "The port closed",
            Some("https://example.org/093/1"),
            Some("2025-03-11T08:00:00+00:00"),
        )],
    ),
    (
        "rss094.xml",
        "UTF-8",
        &[(
            "Rates held steady",
            "The bank held rates steady.",
            Some("https://example.org/094/1"),
            Some("2025-03-12T09:30:00+00:00"),
        )],
    ),
    (
        "rss10.rdf",
        "UTF-8",
        &[(
            "Ceasefire talks open in Riyadh",
            "Negotiators from Russia and Ukraine met in Riyadh",
            Some("https://example.org/10/1"),
            Some("2025-03-14T10:00:00+00:00"),
        )],
    ),
    (
        "atom03.xml",
        "UTF-8",
        &[
            (
                "Envoys agree on a prisoner exchange",
                "Envoys agreed on an exchange of prisoners.",
                Some("https://example.org/atom03/1"),
                Some("2025-03-14T09:00:00+00:00"),
            ),
            (
                "Rain & wind",
                "Rain and wind for the weekend.",
                Some("https://example.org/atom03/2"),
                Some("2025-03-13T08:00:00+00:00"),
            ),
        ],
    ),
    (
        "atom03-base64.xml",
        "UTF-8",
        &[(
            "Encoded body",
            "The body was sent in base64.",
            Some("https://example.org/atom03b/1"),
            Some("2025-03-14T09:00:00+00:00"),
        )],
    ),
    (
        "atom10-content-types.xml",
        "UTF-8",
        &[
            (
                "Plain text <not a tag>",
                "Text content, one & two.",
                Some("https://example.org/base/entries/1"),
                Some("2025-03-14T10:00:00+00:00"),
            ),
            (
                "Escaped HTML",
                "Escaped HTML content.",
                Some("https://example.org/base/entries/2"),
                Some("2025-03-14T10:00:00+00:00"),
            ),
            (
                "Inline XHTML",
                "Inline XHTML content.",
                Some("https://example.org/entries/3"),
                Some("2025-03-14T10:00:00+00:00"),
            ),
            // Binary content: the summary is the text.
            (
                "Base64 content",
                "A summary for a binary body.",
                Some("https://example.org/entries/4"),
                Some("2025-03-14T10:00:00+00:00"),
            ),
            (
                "CDATA content",
                "CDATA content.",
                Some("https://example.org/entries/5"),
                Some("2025-03-14T10:00:00+00:00"),
            ),
            (
                "Base64 text",
                "Base64 plain text.",
                Some("https://example.org/entries/6"),
                Some("2025-03-14T10:00:00+00:00"),
            ),
        ],
    ),
    (
        "cdf.cdf",
        "UTF-8",
        &[
            (
                "Ferry service resumes",
                "The ferry runs again after the strike.",
                Some("https://example.org/cdf/1"),
                Some("2025-03-14T09:00:00+00:00"),
            ),
            (
                "Library extends hours",
                "Open until ten on weekdays.",
                Some("https://example.org/cdf/2"),
                None,
            ),
        ],
    ),
    (
        "jsonfeed10.json",
        "UTF-8",
        &[
            (
                "Bridge reopens",
                "The bridge reopened on Friday.",
                Some("https://example.org/jf10/1"),
                Some("2025-03-14T10:00:00+00:00"),
            ),
            (
                "Summary only, no title.",
                "",
                Some("https://example.org/jf10/2"),
                Some("2025-03-15T10:00:00+00:00"),
            ),
        ],
    ),
    (
        "rss-doctype-description.xml",
        "UTF-8",
        &[
            (
                "Pasted page",
                "A whole page was pasted here.",
                Some("https://example.org/doctype/1"),
                None,
            ),
            (
                "Raw doctype",
                "A raw doctype in a description.",
                Some("https://example.org/doctype/2"),
                None,
            ),
        ],
    ),
    (
        "rss-xml-base.xml",
        "UTF-8",
        &[(
            "Relative link",
            "An item whose link is relative",
            Some("https://example.org/news/2025/03/relative"),
            None,
        )],
    ),
    (
        "rss-media.xml",
        "UTF-8",
        &[(
            "Video: the summit in pictures",
            "Leaders arrive for the summit.",
            Some("https://example.org/media/1"),
            Some("2025-03-14T10:00:00+00:00"),
        )],
    ),
    // Encodings: real bytes written by encodings/make.sh.
    ("encodings/euc-jp-declared.xml", "EUC-JP", JA),
    ("encodings/euc-jp-undeclared.xml", "EUC-JP", JA),
    ("encodings/euc-jp-declared-latin1.xml", "EUC-JP", JA),
    ("encodings/shift-jis-declared.xml", "Shift_JIS", JA),
    ("encodings/shift-jis-undeclared.xml", "Shift_JIS", JA),
    ("encodings/gb2312-declared.xml", "GBK", ZH),
    ("encodings/gb2312-undeclared.xml", "GBK", ZH),
    ("encodings/gb2312-declared-utf8.xml", "GBK", ZH),
    ("encodings/big5-declared.xml", "Big5", TW),
    ("encodings/big5-undeclared.xml", "Big5", TW),
    ("encodings/windows-1251-undeclared.xml", "windows-1251", RU),
    (
        "encodings/windows-1251-declared-latin1.xml",
        "windows-1251",
        RU,
    ),
    ("encodings/koi8-r-declared.xml", "KOI8-R", RU),
    // KOI8-U is KOI8-R plus Ukrainian letters; the text is the same.
    ("encodings/koi8-r-undeclared.xml", "KOI8-U", RU),
    ("encodings/iso-8859-1-declared.xml", "windows-1252", DE),
    ("encodings/iso-8859-2-declared.xml", "ISO-8859-2", PL),
    ("encodings/utf8-declared-windows-1251.xml", "UTF-8", RU),
    ("encodings/utf8-bom.xml", "UTF-8", RU),
    ("encodings/utf16le-bom.xml", "UTF-16LE", RU),
    ("encodings/utf16be-no-bom.xml", "UTF-16BE", RU),
];

const DATE: Option<&str> = Some("2025-03-14T10:00:00+00:00");
const JA: &[Item] = &[(
    "東京で停戦交渉が再開",
    "東京で停戦交渉が再開された。ロシアとウクライナ",
    None,
    DATE,
)];
const ZH: &[Item] = &[(
    "北京举行停火谈判",
    "北京举行停火谈判,俄罗斯和乌克兰代表团",
    None,
    DATE,
)];
const TW: &[Item] = &[(
    "台北舉行停火談判",
    "台北舉行停火談判,俄羅斯和烏克蘭代表團",
    None,
    DATE,
)];
const RU: &[Item] = &[(
    "Переговоры о перемирии",
    "Путин и Зеленский обсудили перемирие",
    None,
    DATE,
)];
const PL: &[Item] = &[(
    "Rozmowy o zawieszeniu broni",
    "Delegacje spotkały się w Gdańsku",
    None,
    DATE,
)];
const DE: &[Item] = &[(
    "Gespräche über Waffenruhe",
    "Die Delegationen trafen sich in München",
    None,
    DATE,
)];

fn dir() -> std::path::PathBuf {
    root().join("tests/fixtures/feeds")
}

/// The feed files under `tests/fixtures/feeds/`, relative to it.
pub fn fixtures() -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for sub in ["", "encodings"] {
        for entry in std::fs::read_dir(dir().join(sub))
            .expect("fixtures dir")
            .flatten()
        {
            let path = entry.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if path.is_file() && matches!(ext, "xml" | "rdf" | "cdf" | "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_format_and_encoding_fixture_gives_its_items() {
    let config = newswatch::config::load(&default_config()).expect("the shipped config");
    let pipeline = config.pipeline();
    let listed: BTreeSet<String> = TABLE.iter().map(|(f, _, _)| f.to_string()).collect();
    let present: BTreeSet<String> = fixtures()
        .iter()
        .map(|p| p.strip_prefix(dir()).unwrap().display().to_string())
        .collect();
    assert_eq!(
        listed, present,
        "every fixture is in the table, and only those"
    );
    let mut failures = Vec::new();
    for (file, encoding, expected) in TABLE {
        let bytes = std::fs::read(dir().join(file)).unwrap();
        let feed = match parse::read_feed(&bytes, None) {
            Ok(feed) => feed,
            Err(err) => {
                failures.push(format!("{file}: {err}"));
                continue;
            }
        };
        if feed.encoding != *encoding {
            failures.push(format!("{file}: read as {}, not {encoding}", feed.encoding));
        }
        let got: Vec<_> = feed
            .items
            .iter()
            .map(|item| {
                let processed = pipeline.process_item(&item.title, &item.body);
                (
                    processed.article.title,
                    processed.article.body,
                    item.link.clone(),
                    item.published.map(|d| d.to_rfc3339()),
                    item.encoding,
                )
            })
            .collect();
        if got.len() != expected.len() {
            failures.push(format!(
                "{file}: {} items, not {}: {got:?}",
                got.len(),
                expected.len()
            ));
            continue;
        }
        for (n, ((title, text, link, date, enc), (e_title, e_text, e_link, e_date))) in
            got.iter().zip(expected.iter()).enumerate()
        {
            let link_ok = e_link.is_none_or(|l| link.as_deref() == Some(l));
            if title != e_title
                || !text.starts_with(e_text)
                || !link_ok
                || date.as_deref() != *e_date
                || *enc != Some(*encoding)
            {
                failures.push(format!(
                    "{file} item {n}: got ({title:?}, {text:?}, {link:?}, {date:?}, {enc:?}), \
                     want ({e_title:?}, {e_text:?}…, {e_link:?}, {e_date:?}, {encoding:?})"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The HTTP header, the XML declaration and the bytes disagree: the bytes decide.
#[test]
fn the_bytes_decide_when_header_and_declaration_disagree() {
    let euc = std::fs::read(dir().join("encodings/euc-jp-declared.xml")).unwrap();
    // The server says windows-1251, the prolog EUC-JP: EUC-JP fits the bytes.
    let feed = parse::read_feed(&euc, Some("windows-1251")).unwrap();
    assert_eq!(feed.encoding, "EUC-JP");
    assert_eq!(feed.items[0].title, "東京で停戦交渉が再開");
    assert!(feed.encoding_note.unwrap().contains("windows-1251"));
    // UTF-8 bytes under a header and a prolog that both say windows-1251.
    let utf8 = std::fs::read(dir().join("encodings/utf8-declared-windows-1251.xml")).unwrap();
    let feed = parse::read_feed(&utf8, Some("windows-1251")).unwrap();
    assert_eq!(feed.encoding, "UTF-8");
    assert_eq!(feed.items[0].title, "Переговоры о перемирии");
    // A true header is believed over a missing declaration.
    let koi8 = std::fs::read(dir().join("encodings/koi8-r-undeclared.xml")).unwrap();
    let feed = parse::read_feed(&koi8, Some("koi8-r")).unwrap();
    assert_eq!(feed.encoding, "KOI8-R");
}
