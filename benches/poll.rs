//! Polling throughput and memory of the real `newswatch` binary against a loopback
//! feed server. A plain `fn main()` (harness = false): these are whole-run
//! measurements of a subprocess, not micro-benchmarks.
//!
//! ```text
//! cargo build --release                  # the binary under test
//! cargo bench --bench poll               # everything
//! cargo bench --bench poll -- poll       # cold/warm `once` and the parse baseline only
//! cargo bench --bench poll -- local      # `scan` against a cold `once` on 200 feed files
//! cargo bench --bench poll -- memory     # idle `run` with 10,000 feeds only
//! POLL_BENCH_PG_URL=postgres://… cargo bench --bench poll -- cluster
//!                                        # PostgreSQL against sled, and cold ingest
//!                                        # with 1 and 2 daemons on one database
//! cargo bench --bench poll -- stages     # only the in-process stage breakdown
//! cargo bench --bench poll -- serve      # just the server and a 2,000-feed config,
//!                                        # for profiling `newswatch once` by hand
//! ```
//!
//! What it does:
//!
//! - generates a deterministic corpus (splitmix64, no external data): RSS 2.0 feeds of
//!   50 items, each with a title, link, guid, pubDate and a 100–300-word HTML
//!   description of news-like English (common words plus a long tail of synthetic
//!   names, so unrelated items' SimHashes differ like real ones, about 31 bits); about
//!   one item in ten speaks of the war in Ukraine (Putin, Kyiv, a ceasefire...) so the
//!   shipped topics match some items, and about one in ten is a wire story that
//!   several feeds carry, so story clustering has copies to find. Bodies are generated
//!   once and kept in memory;
//! - serves them with axum on 127.0.0.1:0, on its own one-worker tokio runtime inside
//!   this process: `GET /feed/{n}` with an `ETag` and a `Last-Modified` per feed,
//!   answering `304` to a matching `If-None-Match` (or, without one,
//!   `If-Modified-Since`); `GET /nm/{n}` always answers `304`;
//! - poll part: writes a config of 2,000 feeds (the cleaning, entities, topics and
//!   sinks of the shipped `config/newswatch.toml`, so the real pipeline runs; all feeds
//!   on one host, so `per_host = concurrency = 32`), runs `newswatch once` on a fresh
//!   store (cold), then again on the same store (warm: every feed answers 304). Each
//!   run is timed, its CPU time taken from `wait4` and its peak RSS from `VmHWM` (see
//!   [`Peak`] for why not `ru_maxrss`). A cold run still going after `COLD_LIMIT` is
//!   stopped and reported unfinished with the items it stored, and the warm run then
//!   uses a fresh store whose every first poll is answered 304. Then the same 2,000
//!   bodies are parsed with bare `feed_rs::parser::parse` in this process (one thread,
//!   median of three), and the daemon's own stages are timed in-process on the first
//!   400 feeds (decode + liberal parse, clean, entities + topics, shingles, SimHash +
//!   sketch, story lookup), to show where a cold run's time goes;
//! - memory part: 10,000 feeds, `interval = "1h"`, `newswatch run` on a fresh store;
//!   waits until the server has answered every feed and the daemon's CPU has been
//!   quiet for 3 s, lets it idle 35 s (past one status period), reads `VmRSS`/`VmHWM` from
//!   `/proc/<pid>/status`, then stops it with SIGTERM (bounded wait). Feeds still
//!   unfetched after `INGEST_LIMIT` are frozen (answer 304), so a slow daemon still
//!   gets every feed polled and goes idle in bounded time. Then the daemon is started
//!   again on that store (no feed due), and once more on a fresh store with every
//!   first poll answered 304 (10,000 feeds and no items).
//!
//! Figures and the machine they were taken on are in BENCHMARKS.md.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use newswatch::pipeline::dedup;
use newswatch::pipeline::text::MatchText;

/// Feeds in the throughput part.
const POLL_FEEDS: usize = 2_000;
/// Feeds in the memory part.
const MEMORY_FEEDS: usize = 10_000;
/// Items per feed.
const ITEMS: usize = 50;
/// The memory target for an idle `run` with 10,000 feeds.
const IDLE_TARGET_MIB: f64 = 150.0;
/// Feeds whose items go through the in-process stage breakdown.
const BREAKDOWN_FEEDS: usize = 400;
/// Rounds of the bare feed-rs parse; the median is reported.
const PARSE_ROUNDS: usize = 3;
/// The longest a cold `once` may run before it is stopped and reported unfinished;
/// `POLL_BENCH_COLD_LIMIT=<seconds>` changes it (0: no limit).
const COLD_LIMIT: Duration = Duration::from_secs(120);
/// How long the memory run may fetch bodies; after that every feed answers 304, so a
/// slow daemon still gets every feed polled and goes idle within the bench's time.
/// `POLL_BENCH_INGEST_LIMIT=<seconds>` changes it (0: no limit).
const INGEST_LIMIT: Duration = Duration::from_secs(60);
/// Width of the buckets of the fetch-rate curve printed for each cold run.
const CURVE_BUCKET: i64 = 15;
/// How long the daemon idles before its memory is read: longer than its status
/// period (30 s), after which an idle daemon has handed freed memory back to the
/// system, so what is read is its steady idle state, not the tail of the ingest.
const IDLE_FOR: Duration = Duration::from_secs(35);
const SEED: u64 = 0x706f_6c6c_2d62_656e;

// ---------------------------------------------------------------------------
// Deterministic random numbers: splitmix64.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len())]
    }

    /// Skewed towards the front of the list: common words come first.
    fn skewed<'a>(&mut self, words: &[&'a str]) -> &'a str {
        let u = self.unit();
        words[((u * u) * words.len() as f64) as usize % words.len()]
    }
}

// ---------------------------------------------------------------------------
// News-like English. Word lists are ordered roughly by how common they are.

const ADJECTIVES: &[&str] = &[
    "new",
    "former",
    "national",
    "local",
    "senior",
    "public",
    "economic",
    "political",
    "international",
    "major",
    "key",
    "annual",
    "regional",
    "federal",
    "recent",
    "early",
    "strong",
    "weak",
    "higher",
    "lower",
    "independent",
    "private",
    "foreign",
    "domestic",
    "growing",
    "sharp",
    "modest",
    "unexpected",
    "long-awaited",
    "controversial",
    "emergency",
    "temporary",
    "official",
    "opposition",
    "leading",
    "rural",
    "coastal",
    "record",
    "widespread",
    "fragile",
    "ambitious",
    "disputed",
    "joint",
    "cross-border",
];

const NOUNS: &[&str] = &[
    "government",
    "officials",
    "minister",
    "parliament",
    "economy",
    "market",
    "prices",
    "election",
    "court",
    "police",
    "company",
    "budget",
    "report",
    "agency",
    "council",
    "region",
    "city",
    "workers",
    "union",
    "policy",
    "investors",
    "energy",
    "inflation",
    "bank",
    "rates",
    "exports",
    "trade",
    "health service",
    "hospital",
    "schools",
    "farmers",
    "voters",
    "lawmakers",
    "committee",
    "inquiry",
    "investigation",
    "protesters",
    "strike",
    "airport",
    "railway",
    "bridge",
    "port",
    "shipping",
    "tariffs",
    "survey",
    "unemployment",
    "growth",
    "recession",
    "debt",
    "bonds",
    "currency",
    "technology",
    "chipmakers",
    "factory",
    "production",
    "output",
    "demand",
    "supply",
    "storm",
    "floods",
    "wildfires",
    "drought",
    "climate targets",
    "emissions",
    "housing",
    "rents",
    "mortgage rates",
    "pension reform",
    "tax plan",
    "subsidies",
    "contract",
    "shareholders",
    "regulators",
    "watchdog",
    "prosecutors",
    "judges",
    "ruling",
    "appeal",
    "coalition",
    "cabinet",
    "spokesperson",
    "mayor",
    "governor",
    "senators",
    "ministry",
    "university",
    "researchers",
    "scientists",
    "vaccine",
    "outbreak",
    "patients",
    "doctors",
    "nurses",
    "teachers",
    "students",
    "refugees",
    "migrants",
    "border",
    "customs",
    "fishermen",
    "carmakers",
    "airline",
    "passengers",
    "tourists",
    "festival",
];

const VERBS: &[&str] = &[
    "said",
    "announced",
    "warned",
    "agreed",
    "approved",
    "rejected",
    "confirmed",
    "denied",
    "urged",
    "expected",
    "reported",
    "proposed",
    "criticised",
    "defended",
    "launched",
    "signed",
    "delayed",
    "cut",
    "raised",
    "backed",
    "blocked",
    "questioned",
    "welcomed",
    "postponed",
    "unveiled",
    "reviewed",
    "extended",
    "suspended",
    "challenged",
    "pledged",
];

const PREPOSITIONS: &[&str] = &[
    "in",
    "on",
    "for",
    "after",
    "over",
    "amid",
    "despite",
    "ahead of",
    "following",
    "against",
    "with",
    "under",
    "before",
    "across",
];

const WHEN: &[&str] = &[
    "on Monday",
    "on Tuesday",
    "on Wednesday",
    "on Thursday",
    "on Friday",
    "over the weekend",
    "last week",
    "earlier this month",
    "late on Sunday",
    "this year",
    "next month",
    "in the coming weeks",
    "by the end of the year",
];

const PLACES: &[&str] = &[
    "Brussels",
    "Washington",
    "Berlin",
    "Paris",
    "London",
    "Beijing",
    "Tokyo",
    "Ankara",
    "Warsaw",
    "Rome",
    "Madrid",
    "Ottawa",
    "Canberra",
    "New Delhi",
    "Nairobi",
    "Cairo",
    "Brasilia",
    "Mexico City",
    "Seoul",
    "Jakarta",
    "Lagos",
    "Stockholm",
    "Vienna",
    "Lisbon",
    "Athens",
    "Dublin",
    "Helsinki",
    "Prague",
    "Budapest",
    "Bucharest",
];

const PEOPLE: &[&str] = &[
    "Maria Keller",
    "John Okafor",
    "Ana Lindqvist",
    "Tomas Ruiz",
    "Li Wei",
    "Priya Nair",
    "David Mensah",
    "Sophie Laurent",
    "Hannah Brooks",
    "Kenji Sato",
    "Fatima Diallo",
    "Lukas Novak",
    "Elena Petrescu",
    "Omar Haddad",
    "Grace Mwangi",
    "Pedro Almeida",
];

const SECTIONS: &[&str] = &[
    "world", "business", "politics", "europe", "science", "health", "markets", "climate",
];

/// Sentences that put an item on the ceasefire-talks topic (a ceasefire or talks word
/// and Russia, Ukraine, Putin or Zelensky).
const WAR_TOPIC: &[&str] = &[
    "Russian President Vladimir Putin said Moscow was ready to discuss a ceasefire if Kyiv accepted its conditions.",
    "Ukrainian President Volodymyr Zelensky said any peace talks must include guarantees for Ukraine's security.",
    "Negotiators from Russia and Ukraine are expected to meet in Istanbul next week to resume talks on a truce.",
    "The Kremlin said Putin had no plans to meet Zelensky before a ceasefire agreement was drafted.",
    "European leaders urged both sides to agree a 30-day cease-fire and return to negotiations.",
    "Officials in Kyiv said the latest peace plan did not address the return of occupied territory.",
];

/// Sentences about the war without a ceasefire or talks word: entities, no topic.
const WAR_OTHER: &[&str] = &[
    "Air raid sirens sounded across Kyiv overnight as drones targeted the capital.",
    "Ukraine's air force said it shot down most of the missiles launched by Russia.",
    "Putin chaired a meeting of the security council in Moscow, the Kremlin said.",
    "Residents of Kharkiv spent the night in shelters as the city came under attack.",
];

const WAR_TITLES: &[&str] = &[
    "Putin says ceasefire possible if Kyiv accepts terms",
    "Zelensky rejects truce proposal as talks stall",
    "Russia and Ukraine to resume peace talks next week",
    "Kremlin cool on ceasefire plan backed by European leaders",
];

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Syllables for synthetic names: the long tail of people, firms and towns that real
/// news is full of, so two unrelated items share few word triples.
const SYLLABLES: &[&str] = &[
    "ka", "lo", "ri", "ven", "dar", "mel", "to", "sa", "bri", "nor", "gal", "fen", "mar", "tis",
    "ol", "an", "ber", "cor", "dal", "e", "fi", "gor", "hal", "i", "jas", "kel", "lin", "mon",
    "nu", "pra", "quin", "ros", "sel", "tor", "ul", "var", "wen", "yor", "zan", "be", "chi", "do",
    "ga", "he", "ju", "mi", "pe", "su", "tha", "vi",
];

const FIRM_KINDS: &[&str] = &[
    "Group",
    "Holdings",
    "Energy",
    "Bank",
    "Motors",
    "Pharma",
    "Logistics",
    "Airlines",
    "Telecom",
    "Foods",
    "Capital",
    "Systems",
    "Mining",
    "Steel",
    "Insurance",
    "Retail",
];

/// Synthetic proper names, drawn log-uniformly (a few common, most rare).
struct Lexicon {
    given: Vec<String>,
    surnames: Vec<String>,
    firms: Vec<String>,
    towns: Vec<String>,
}

impl Lexicon {
    fn new() -> Lexicon {
        let mut rng = Rng::new(SEED ^ 0x6c65_7869);
        let name = |rng: &mut Rng, syllables: usize| {
            let word: String = (0..syllables).map(|_| rng.pick(SYLLABLES)).collect();
            capitalise(&word)
        };
        let given = (0..800).map(|_| name(&mut rng, 2)).collect();
        let surnames = (0..6_000)
            .map(|_| {
                let n = rng.between(2, 3);
                name(&mut rng, n)
            })
            .collect();
        let firms = (0..3_000)
            .map(|_| {
                let n = rng.between(2, 3);
                format!("{} {}", name(&mut rng, n), rng.pick(FIRM_KINDS))
            })
            .collect();
        let towns = (0..3_000)
            .map(|_| {
                let n = rng.between(2, 4);
                name(&mut rng, n)
            })
            .collect();
        Lexicon {
            given,
            surnames,
            firms,
            towns,
        }
    }
}

/// Log-uniform over `pool`: index i is drawn with weight about 1/(i+1).
fn zipf<'a>(rng: &mut Rng, pool: &'a [String]) -> &'a str {
    let i = ((pool.len() as f64 + 1.0).powf(rng.unit()) - 1.0) as usize;
    &pool[i.min(pool.len() - 1)]
}

fn noun_phrase(rng: &mut Rng, lex: &Lexicon, out: &mut String) {
    match rng.below(16) {
        0 | 1 => out.push_str(rng.pick(PEOPLE)),
        2 | 3 => {
            out.push_str(zipf(rng, &lex.given));
            out.push(' ');
            out.push_str(zipf(rng, &lex.surnames));
        }
        4 => {
            out.push_str("the mayor of ");
            out.push_str(zipf(rng, &lex.towns));
        }
        5 | 6 => out.push_str(zipf(rng, &lex.firms)),
        7 => {
            out.push_str("officials in ");
            out.push_str(if rng.chance(0.5) {
                rng.pick(PLACES)
            } else {
                zipf(rng, &lex.towns)
            });
        }
        8 => {
            let _ = write!(out, "{} ", rng.between(2, 900));
            out.push_str(rng.pick(NOUNS));
        }
        _ => {
            out.push_str(if rng.chance(0.7) { "the " } else { "a " });
            if rng.chance(0.6) {
                out.push_str(rng.pick(ADJECTIVES));
                out.push(' ');
            }
            out.push_str(rng.pick(NOUNS));
            if rng.chance(0.25) {
                out.push_str(" of ");
                out.push_str(zipf(rng, &lex.towns));
            }
        }
    }
}

/// One sentence of 8 to 30-odd words.
fn sentence(rng: &mut Rng, lex: &Lexicon) -> String {
    let mut s = String::new();
    noun_phrase(rng, lex, &mut s);
    s.push(' ');
    s.push_str(rng.skewed(VERBS));
    s.push(' ');
    noun_phrase(rng, lex, &mut s);
    for _ in 0..rng.between(1, 3) {
        s.push(' ');
        s.push_str(rng.skewed(PREPOSITIONS));
        s.push(' ');
        noun_phrase(rng, lex, &mut s);
    }
    match rng.below(6) {
        0 => {
            let _ = write!(
                s,
                ", up {}.{} percent from a year earlier",
                rng.between(1, 12),
                rng.below(10)
            );
        }
        1 => {
            let _ = write!(
                s,
                " worth ${}.{} billion",
                rng.between(1, 90),
                rng.below(10)
            );
        }
        2 => {
            s.push_str(", adding that ");
            noun_phrase(rng, lex, &mut s);
            s.push_str(" would ");
            s.push_str(if rng.chance(0.5) { "decide" } else { "respond" });
            s.push(' ');
            s.push_str(rng.pick(WHEN));
        }
        _ => {}
    }
    if rng.chance(0.5) {
        s.push(' ');
        s.push_str(rng.pick(WHEN));
    }
    s.push('.');
    capitalise(&s)
}

fn title(rng: &mut Rng, lex: &Lexicon) -> String {
    let mut t = String::new();
    noun_phrase(rng, lex, &mut t);
    t.push(' ');
    t.push_str(rng.skewed(VERBS));
    t.push(' ');
    noun_phrase(rng, lex, &mut t);
    if rng.chance(0.5) {
        t.push(' ');
        t.push_str(rng.skewed(PREPOSITIONS));
        t.push(' ');
        t.push_str(rng.pick(PLACES));
    }
    capitalise(&t)
}

/// An item body as HTML: 100–300 words in paragraphs with the usual inline markup.
fn body_html(rng: &mut Rng, lex: &Lexicon, war: Option<bool>, outlet: usize) -> String {
    let target = rng.between(100, 300);
    let mut sentences: Vec<String> = Vec::new();
    let mut words = 0;
    while words < target {
        let s = sentence(rng, lex);
        words += s.split_whitespace().count();
        sentences.push(s);
    }
    if let Some(on_topic) = war {
        let pool = if on_topic { WAR_TOPIC } else { WAR_OTHER };
        for _ in 0..rng.between(1, 3) {
            let at = rng.below(sentences.len() + 1);
            sentences.insert(at, rng.pick(pool).to_string());
        }
    }
    let mut html = String::new();
    if rng.chance(0.2) {
        let _ = write!(
            html,
            "<figure><img src=\"https://cdn.outlet{outlet}.example/img/{}.jpg\" alt=\"{}\" width=\"640\"><figcaption>Photo: Reuters</figcaption></figure>",
            rng.next() % 100_000,
            rng.pick(PEOPLE)
        );
    }
    let mut rest = &sentences[..];
    while !rest.is_empty() {
        let n = rng.between(2, 4).min(rest.len());
        html.push_str("<p>");
        for (i, s) in rest[..n].iter().enumerate() {
            if i > 0 {
                html.push(' ');
            }
            match rng.below(12) {
                0 => {
                    let _ = write!(
                        html,
                        "<a href=\"https://www.outlet{outlet}.example/{}/{}\">{}</a>",
                        rng.pick(SECTIONS),
                        rng.next() % 1_000_000,
                        s
                    );
                }
                1 => {
                    let _ = write!(html, "<strong>{s}</strong>");
                }
                // Typographic apostrophes and dashes as character references.
                2 => html.push_str(&s.replace('\'', "&#8217;").replace(", ", " &mdash; ")),
                _ => html.push_str(s),
            }
        }
        html.push_str("</p>");
        rest = &rest[n..];
    }
    if rng.chance(0.3) {
        let _ = write!(
            html,
            "<p><a href=\"https://www.outlet{outlet}.example/newsletter\">Sign up for our newsletter</a></p>"
        );
    }
    html
}

fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn slug(title: &str) -> String {
    title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(7)
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

/// Wire stories that several outlets carry, near-identical.
struct Wire {
    stories: Vec<(String, String)>,
}

impl Wire {
    fn new(lex: &Lexicon) -> Wire {
        let mut rng = Rng::new(SEED ^ 0x77_69_72_65);
        let stories = (0..400)
            .map(|i| {
                let war = (i % 8 == 0).then_some(i % 16 == 0);
                (title(&mut rng, lex), body_html(&mut rng, lex, war, 0))
            })
            .collect();
        Wire { stories }
    }
}

/// One served feed.
struct Doc {
    body: Bytes,
    etag: HeaderValue,
    last_modified: HeaderValue,
}

/// The RSS 2.0 document of feed `n`. Items are dated back from `now`, so they are
/// inside the store's history window whenever the bench runs.
fn feed_xml(n: usize, lex: &Lexicon, wire: &Wire, now: DateTime<Utc>) -> String {
    let mut rng = Rng::new(SEED ^ (n as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut xml = String::with_capacity(80_000);
    let _ = write!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\n<channel>\n<title>Outlet {n} News</title>\n<link>https://www.outlet{n}.example/</link>\n<description>Latest news from Outlet {n}</description>\n<language>en-gb</language>\n<lastBuildDate>{}</lastBuildDate>\n<atom:link href=\"https://www.outlet{n}.example/rss.xml\" rel=\"self\" type=\"application/rss+xml\"/>\n",
        now.to_rfc2822()
    );
    for i in 0..ITEMS {
        let (title, html) = if rng.chance(0.1) {
            let (t, b) = &wire.stories[rng.below(wire.stories.len())];
            let credit = format!(
                "<p>Reporting by {} in {}.</p>",
                rng.pick(PEOPLE),
                rng.pick(PLACES)
            );
            (t.clone(), format!("{b}{credit}"))
        } else {
            let war = match rng.below(100) {
                0..=6 => Some(true),
                7..=9 => Some(false),
                _ => None,
            };
            let t = match war {
                Some(true) if rng.chance(0.5) => rng.pick(WAR_TITLES).to_string(),
                _ => title(&mut rng, lex),
            };
            (t, body_html(&mut rng, lex, war, n))
        };
        let section = rng.pick(SECTIONS);
        let link = format!(
            "https://www.outlet{n}.example/{section}/{}-{}",
            slug(&title),
            100_000 + n * ITEMS + i
        );
        let published = now - chrono::Duration::minutes((i * 29 + n % 60) as i64);
        let guid = if n % 2 == 0 {
            format!("<guid isPermaLink=\"true\">{link}</guid>")
        } else {
            format!("<guid isPermaLink=\"false\">outlet{n}-{i:04}</guid>")
        };
        // Half the outlets wrap the HTML in CDATA, half escape it.
        let description = if n % 2 == 0 {
            format!("<![CDATA[{html}]]>")
        } else {
            escape_xml(&html)
        };
        let _ = write!(
            xml,
            "<item>\n<title>{}</title>\n<link>{link}</link>\n{guid}\n<pubDate>{}</pubDate>\n<category>{section}</category>\n<description>{description}</description>\n</item>\n",
            escape_xml(&title),
            published.to_rfc2822()
        );
    }
    xml.push_str("</channel>\n</rss>\n");
    xml
}

fn corpus(feeds: usize) -> Vec<Doc> {
    let lex = Lexicon::new();
    let wire = Wire::new(&lex);
    let now = Utc::now();
    let modified = httpdate_of(now - chrono::Duration::minutes(3));
    (0..feeds)
        .map(|n| {
            let xml = feed_xml(n, &lex, &wire, now);
            let hash = xxh(xml.as_bytes());
            Doc {
                etag: HeaderValue::from_str(&format!("\"f{n}-{hash:016x}\"")).unwrap(),
                last_modified: HeaderValue::from_str(&modified).unwrap(),
                body: Bytes::from(xml),
            }
        })
        .collect()
}

fn httpdate_of(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// FNV-1a: enough to make an ETag.
fn xxh(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------
// The loopback feed server.

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    full: AtomicU64,
    not_modified: AtomicU64,
}

struct Served {
    docs: Vec<Doc>,
    counters: Counters,
    /// When set, `/feed/{n}` answers 304 whatever the request: the feeds stop changing.
    frozen: AtomicBool,
}

async fn serve_feed(
    State(served): State<Arc<Served>>,
    UrlPath(n): UrlPath<usize>,
    headers: HeaderMap,
) -> Response {
    let c = &served.counters;
    c.requests.fetch_add(1, Ordering::Relaxed);
    let Some(doc) = served.docs.get(n) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let unchanged = served.frozen.load(Ordering::Relaxed)
        || match headers.get(header::IF_NONE_MATCH) {
            Some(tags) => tags.to_str().is_ok_and(|tags| {
                tags.split(',')
                    .any(|t| t.trim() == "*" || t.trim().as_bytes() == doc.etag.as_bytes())
            }),
            None => headers.get(header::IF_MODIFIED_SINCE) == Some(&doc.last_modified),
        };
    let validators = [
        (header::ETAG, doc.etag.clone()),
        (header::LAST_MODIFIED, doc.last_modified.clone()),
    ];
    if unchanged {
        c.not_modified.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::NOT_MODIFIED, validators).into_response();
    }
    c.full.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/rss+xml; charset=utf-8"),
        )],
        validators,
        doc.body.clone(),
    )
        .into_response()
}

/// Always 304, as if the daemon already had every feed.
async fn serve_not_modified(State(served): State<Arc<Served>>) -> Response {
    served.counters.requests.fetch_add(1, Ordering::Relaxed);
    served.counters.not_modified.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::NOT_MODIFIED,
        [(header::ETAG, HeaderValue::from_static("\"unchanged\""))],
    )
        .into_response()
}

struct Server {
    _runtime: tokio::runtime::Runtime,
    base: String,
    served: Arc<Served>,
}

impl Server {
    fn start(docs: Vec<Doc>) -> Server {
        // One worker: serving bytes from memory is cheap, and the daemon under test
        // needs the machine's cores.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("starting the server runtime");
        let served = Arc::new(Served {
            docs,
            counters: Counters::default(),
            frozen: AtomicBool::new(false),
        });
        let app = Router::new()
            .route("/feed/{n}", get(serve_feed))
            .route("/nm/{n}", get(serve_not_modified))
            .with_state(served.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding 127.0.0.1:0");
        let addr = listener.local_addr().expect("the server's address");
        runtime.spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("poll bench: the feed server stopped: {err}");
            }
        });
        Server {
            _runtime: runtime,
            base: format!("http://{addr}"),
            served,
        }
    }

    fn count(&self) -> (u64, u64, u64) {
        let c = &self.served.counters;
        (
            c.requests.load(Ordering::Relaxed),
            c.full.load(Ordering::Relaxed),
            c.not_modified.load(Ordering::Relaxed),
        )
    }
}

// ---------------------------------------------------------------------------
// Configs.

/// The `[cleaning]`, `[[entities]]`, `[[topics]]` and `[[sinks]]` tables of the
/// shipped config, verbatim.
fn pipeline_sections(shipped: &str) -> String {
    let keep = ["cleaning", "entities", "topics", "sinks"];
    let mut out = String::new();
    let mut keeping = false;
    let mut in_multiline = false;
    for line in shipped.lines() {
        let trimmed = line.trim_start();
        if !in_multiline && trimmed.starts_with('[') {
            let name = trimmed.trim_matches(|c: char| c == '[' || c == ']' || c.is_whitespace());
            keeping = keep.contains(&name);
        }
        if keeping {
            out.push_str(line);
            out.push('\n');
        }
        if (line.matches("'''").count() + line.matches("\"\"\"").count()) % 2 == 1 {
            in_multiline = !in_multiline;
        }
    }
    out
}

fn write_config(
    dir: &Path,
    name: &str,
    base: &str,
    route: &str,
    feeds: usize,
    interval: &str,
    sections: &str,
) -> (PathBuf, PathBuf) {
    let store = dir.join(format!("{name}-store"));
    let path = dir.join(format!("{name}.toml"));
    let mut toml = String::new();
    let _ = write!(
        toml,
        "# Written by benches/poll.rs.\n[storage]\npath = '{}'\n\n[poller]\ninterval = \"{interval}\"\nconcurrency = 32\n# Every feed is on the one loopback host.\nper_host = 32\ntimeout = \"20s\"\nallow_private = true\n\n",
        store.display()
    );
    for n in 0..feeds {
        let _ = write!(
            toml,
            "[[feeds]]\nurl = \"{base}/{route}/{n}\"\nname = \"Outlet {n}\"\n\n"
        );
    }
    toml.push_str(sections);
    fs::write(&path, toml).expect("writing a bench config");
    (path, store)
}

// ---------------------------------------------------------------------------
// Running the binary and watching its memory.

/// The release binary: under `CARGO_TARGET_DIR` when that is set (as for `cargo build`),
/// else under the package's `target/`.
fn binary() -> PathBuf {
    // Another build (an older commit's, say) to compare with this one.
    if let Some(path) = std::env::var_os("POLL_BENCH_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = target.join("release/newswatch");
    if !path.is_file() {
        eprintln!(
            "poll bench: {} is missing; build it first with `cargo build --release`.",
            path.display()
        );
        std::process::exit(1);
    }
    path
}

/// Fields of `/proc/<pid>/status`, in KiB.
fn proc_status(pid: i32) -> HashMap<String, u64> {
    let mut fields = HashMap::new();
    if let Ok(text) = fs::read_to_string(format!("/proc/{pid}/status")) {
        for line in text.lines() {
            if let Some((key, value)) = line.split_once(':') {
                if let Some(kib) = value.trim().strip_suffix(" kB") {
                    if let Ok(kib) = kib.trim().parse() {
                        fields.insert(key.to_string(), kib);
                    }
                }
            }
        }
    }
    fields
}

/// User + system CPU of a live process, in clock ticks.
fn proc_cpu_ticks(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); the split starts at field 3.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// How a finished child went.
struct Exit {
    code: Option<i32>,
    /// Peak RSS of the newswatch process: the last `VmHWM` read from /proc before
    /// it exited (see [`Peak`]), KiB.
    max_rss_kib: u64,
    cpu: Duration,
}

/// A child's peak RSS, sampled from `/proc/<pid>/status` while it runs.
///
/// Not wait4's `ru_maxrss`: Linux carries the high-water mark of the address space a
/// process had before `execve` over into it, and a child starts on a copy of (or,
/// spawned with vfork, shares) this bench's address space, which holds the whole
/// corpus; `ru_maxrss` would report this process's size. `VmHWM` is read only once
/// the child's `Name` is `newswatch`, i.e. after the exec; it only grows, so sampling
/// every few milliseconds misses at most the growth of the last few.
#[derive(Default)]
struct Peak(u64);

impl Peak {
    fn sample(&mut self, pid: i32) {
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            return;
        };
        if !text.lines().any(|l| l == "Name:\tnewswatch") {
            return;
        }
        let hwm = text
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().strip_suffix(" kB"))
            .and_then(|v| v.trim().parse().ok());
        if let Some(hwm) = hwm {
            self.0 = self.0.max(hwm);
        }
    }
}

/// Reaps `pid` if it has exited, sampling its peak RSS first.
fn try_reap(pid: i32, peak: &mut Peak) -> Option<Exit> {
    peak.sample(pid);
    let mut status = 0;
    // SAFETY: a plain wait4 on our own child with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
    if reaped != pid {
        return None;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Some(Exit {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        max_rss_kib: peak.0,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
    })
}

fn spawn(args: &[&str], config: &Path, log: &Path) -> std::process::Child {
    let log_file = fs::File::create(log).expect("creating a log file");
    Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .env_remove("NEWSWATCH_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .expect("starting newswatch")
}

struct OnceRun {
    wall: Duration,
    exit: Exit,
    summary: String,
    /// False when the run was stopped at its time limit.
    finished: bool,
}

fn limit_from_env(name: &str, default: Duration) -> Option<Duration> {
    match std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok()) {
        Some(0) => None,
        Some(secs) => Some(Duration::from_secs(secs)),
        None => Some(default),
    }
}

// The child is reaped with wait4 in `try_reap`, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_once(config: &Path, log: &Path, limit: Option<Duration>) -> OnceRun {
    let start = Instant::now();
    let mut child = spawn(&["once"], config, log);
    let pid = child.id() as i32;
    let mut stdout = child.stdout.take().expect("the child's stdout");
    // The summary is one short line; a thread reads it so the pipe never fills.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let mut finished = true;
    let mut peak = Peak::default();
    let exit = loop {
        if let Some(exit) = try_reap(pid, &mut peak) {
            break exit;
        }
        if finished && limit.is_some_and(|limit| start.elapsed() > limit) {
            // `once` has no graceful stop; what it flushed so far stays in the store.
            finished = false;
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = start.elapsed();
    let summary = reader.join().unwrap_or_default().trim().to_string();
    if finished && exit.code != Some(0) {
        eprintln!(
            "poll bench: newswatch once failed ({:?}); log tail:",
            exit.code
        );
        eprintln!("{}", tail(log, 20));
        std::process::exit(1);
    }
    OnceRun {
        wall,
        exit,
        summary,
        finished,
    }
}

/// Items in a store, as `newswatch items` lists them.
fn stored_items(config: &Path) -> usize {
    let output = Command::new(binary())
        .args(["items", "--json", "--limit", "100000000", "--config"])
        .arg(config)
        .env_remove("RUST_LOG")
        .stderr(Stdio::null())
        .output()
        .expect("running newswatch items");
    output
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count()
}

/// Feeds fetched per `CURVE_BUCKET` seconds, from the "Fetched feed." log lines.
fn fetch_curve(log: &Path) -> Vec<usize> {
    let text = fs::read_to_string(log).unwrap_or_default();
    let times: Vec<DateTime<Utc>> = text
        .lines()
        .filter(|l| l.contains("Fetched feed."))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .collect();
    let Some(first) = times.iter().min().copied() else {
        return Vec::new();
    };
    let mut curve = Vec::new();
    for t in times {
        let bucket = ((t - first).num_seconds() / CURVE_BUCKET) as usize;
        if curve.len() <= bucket {
            curve.resize(bucket + 1, 0);
        }
        curve[bucket] += 1;
    }
    curve
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn count_lines(path: &Path, needle: &str) -> usize {
    fs::File::open(path)
        .map(|f| {
            BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter(|l| l.contains(needle))
                .count()
        })
        .unwrap_or(0)
}

fn dir_size(path: &Path) -> u64 {
    fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------
// The local part: what storing costs next to the pipeline alone.

/// Feeds in the local part: the store issue's "≥ 200 local feeds × 50 items".
const LOCAL_FEEDS: usize = 200;
/// Rounds of the local part (`POLL_BENCH_ROUNDS` changes it); the figures are
/// medians, each round on a fresh store.
const LOCAL_ROUNDS: usize = 3;

/// Runs `newswatch ARGS --config CONFIG` to the end, draining its stdout.
// The child is reaped with wait4 in `try_reap`, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&str], config: &Path, log: &Path) -> (Duration, Exit, String) {
    let start = Instant::now();
    let mut child = spawn(args, config, log);
    let pid = child.id() as i32;
    let mut stdout = child.stdout.take().expect("the child's stdout");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let mut peak = Peak::default();
    let exit = loop {
        if let Some(exit) = try_reap(pid, &mut peak) {
            break exit;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = start.elapsed();
    let out = reader.join().unwrap_or_default();
    if exit.code != Some(0) {
        eprintln!(
            "poll bench: newswatch {args:?} failed ({:?}); log tail:",
            exit.code
        );
        eprintln!("{}", tail(log, 20));
        std::process::exit(1);
    }
    (wall, exit, out)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `newswatch scan` and a cold `newswatch once` over the same 200 feed files (`file:`
/// URLs, no server), alternating, each `once` on a fresh store: CPU per item of each,
/// their ratio, and the store's size on disk against the feeds' bytes.
fn local_part(docs: &[Doc], dir: &Path, sections: &str) {
    let feeds_dir = dir.join("local-feeds");
    fs::create_dir_all(&feeds_dir).expect("creating the feeds dir");
    let mut paths = Vec::new();
    let mut raw_bytes = 0u64;
    for (n, doc) in docs[..LOCAL_FEEDS].iter().enumerate() {
        let path = feeds_dir.join(format!("{n}.xml"));
        fs::write(&path, &doc.body).expect("writing a feed file");
        raw_bytes += doc.body.len() as u64;
        paths.push(path);
    }
    let items = (LOCAL_FEEDS * ITEMS) as f64;
    println!(
        "local: {LOCAL_FEEDS} feed files, {items} items, {:.1} MiB ({:.0} bytes an item)",
        raw_bytes as f64 / 1048576.0,
        raw_bytes as f64 / items
    );
    let (mut scan_cpu, mut once_cpu, mut disk, mut ratios) = (vec![], vec![], vec![], vec![]);
    // More rounds give steadier medians on a shared machine.
    let rounds = std::env::var("POLL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(LOCAL_ROUNDS);
    for round in 0..rounds {
        let (config, store) = local_feeds_config(docs, dir, &format!("local{round}"), sections);

        let mut args: Vec<&str> = vec!["scan"];
        let path_strs: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        args.extend(path_strs.iter().map(String::as_str));
        let (scan_wall, scan, out) = run_measured(&args, &config, &dir.join("scan.log"));
        let scanned = out.lines().filter(|l| l.starts_with('{')).count();
        let (once_wall, once, summary) = run_measured(&["once"], &config, &dir.join("once.log"));
        let size = dir_size(&store);
        let (s, o) = (
            scan.cpu.as_secs_f64() * 1e6 / items,
            once.cpu.as_secs_f64() * 1e6 / items,
        );
        println!(
            "local round {round}: scan {scanned} items, {:.2} s wall, {s:.1} µs CPU an item; \
             cold once {:.2} s wall, {o:.1} µs CPU an item ({:.2}× scan), peak RSS {:.1} MiB; \
             store {:.1} MiB, {:.0} bytes an item ({:.2}× the feed bytes); {summary}",
            scan_wall.as_secs_f64(),
            once_wall.as_secs_f64(),
            o / s,
            mib(once.max_rss_kib),
            size as f64 / 1048576.0,
            size as f64 / items,
            size as f64 / raw_bytes as f64,
        );
        scan_cpu.push(s);
        once_cpu.push(o);
        ratios.push(o / s);
        disk.push(size as f64 / raw_bytes as f64);
        let _ = fs::remove_dir_all(&store);
    }
    println!(
        "local (median of {rounds}): scan {:.1} µs CPU an item, cold once {:.1} µs; \
         once ÷ scan {:.2} (target ≤ 2); store ÷ feed bytes {:.2} (target ≤ 2.5)",
        median(scan_cpu),
        median(once_cpu),
        median(ratios),
        median(disk)
    );
}

// ---------------------------------------------------------------------------
// The cluster part: the PostgreSQL store against sled, and cold ingest with one and
// two daemons on one database.

/// Feeds each cluster ingest run polls (50 items each).
const CLUSTER_FEEDS: usize = 400;
/// Rounds of the CPU comparison; medians are reported.
const CLUSTER_ROUNDS: usize = 3;
/// The longest a cluster ingest may take before it is reported unfinished.
const CLUSTER_LIMIT: Duration = Duration::from_secs(300);

/// psql, from the server's package or the PATH.
fn psql_binary() -> PathBuf {
    let packaged = Path::new("/usr/lib/postgresql/15/bin/psql");
    if packaged.is_file() {
        packaged.to_path_buf()
    } else {
        PathBuf::from("psql")
    }
}

/// Runs one SQL text and returns its output (unaligned, tuples only), or exits.
fn psql(url: &str, sql: &str) -> String {
    let output = Command::new(psql_binary())
        .args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("running psql");
    if !output.status.success() {
        eprintln!(
            "poll bench: psql failed on {sql:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::process::exit(1);
    }
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A fresh database on the server of `admin` (a URL whose role may create databases);
/// returns its URL.
fn fresh_database(admin: &str, name: &str) -> String {
    psql(
        admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    psql(admin, &format!("CREATE DATABASE {name}"));
    let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
    format!("{base}/{name}")
}

/// The CPU the PostgreSQL server has used so far, in clock ticks: the postmaster's
/// own and its reaped children's (the backends of closed connections), and its live
/// children's (background workers, open connections). The server must run on this
/// machine.
fn server_cpu_ticks(postmaster: i32) -> u64 {
    let stat = |pid: &str| -> Option<Vec<u64>> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = &text[text.rfind(')')? + 1..];
        // Fields 4 (ppid) and 14 to 17 (utime, stime, cutime, cstime) of stat(5).
        let fields: Vec<&str> = after.split_whitespace().collect();
        [1, 11, 12, 13, 14]
            .iter()
            .map(|&i| fields.get(i)?.parse::<i64>().ok().map(|v| v.max(0) as u64))
            .collect()
    };
    let mut total = 0;
    if let Some(own) = stat(&postmaster.to_string()) {
        total += own[1] + own[2] + own[3] + own[4];
    }
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            if let Some(child) = stat(pid).filter(|f| f[0] == postmaster as u64) {
                total += child[1] + child[2];
            }
        }
    }
    total
}

/// The postmaster's pid, from the server's data directory.
fn postmaster_pid(admin: &str) -> i32 {
    let data = psql(admin, "SHOW data_directory");
    let pid_file = fs::read_to_string(Path::new(&data).join("postmaster.pid")).unwrap_or_else(|err| {
        eprintln!("poll bench: the cluster part needs the PostgreSQL server on this machine ({data}/postmaster.pid: {err})");
        std::process::exit(1);
    });
    pid_file
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("a pid on postmaster.pid's first line")
}

fn ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// A bench config stored in `url` (PostgreSQL) instead of its sled path.
fn on_postgres(config: &Path, url: &str, node: &str) -> PathBuf {
    let toml = fs::read_to_string(config).expect("reading a bench config");
    let toml = toml.replacen(
        "[storage]\n",
        &format!("[storage]\nbackend = \"postgres\"\nurl = \"{url}\"\nnode = \"{node}\"\nlease = \"60s\"\n"),
        1,
    );
    let path = config.with_file_name(format!(
        "{}-{node}.toml",
        config.file_stem().and_then(|s| s.to_str()).unwrap_or("pg")
    ));
    fs::write(&path, toml).expect("writing a bench config");
    path
}

/// The local part's 200 feed files as a config of `file:` feeds.
fn local_feeds_config(docs: &[Doc], dir: &Path, name: &str, sections: &str) -> (PathBuf, PathBuf) {
    let feeds_dir = dir.join("local-feeds");
    fs::create_dir_all(&feeds_dir).expect("creating the feeds dir");
    let base = format!("file:{}", dir.display());
    let (config, store) = write_config(dir, name, &base, "local-feeds", 0, "5m", sections);
    // write_config names feeds `{base}/{route}/{n}`; these files end in `.xml`.
    let mut toml = fs::read_to_string(&config).expect("reading the bench config");
    let tables = toml.split_off(toml.find("[cleaning]").unwrap_or(toml.len()));
    for (n, doc) in docs[..LOCAL_FEEDS].iter().enumerate() {
        let path = feeds_dir.join(format!("{n}.xml"));
        if !path.exists() {
            fs::write(&path, &doc.body).expect("writing a feed file");
        }
        let _ = write!(
            toml,
            "[[feeds]]\nurl = \"{base}/local-feeds/{n}.xml\"\nname = \"Outlet {n}\"\n\n"
        );
    }
    toml.push_str(&tables);
    fs::write(&config, toml).expect("writing the bench config");
    (config, store)
}

fn cluster_part(server: &Server, dir: &Path, sections: &str, admin: &str) {
    let postmaster = postmaster_pid(admin);
    let docs = &server.served.docs;
    let items = (LOCAL_FEEDS * ITEMS) as f64;
    println!("cluster: PostgreSQL at {admin} (postmaster {postmaster}); {LOCAL_FEEDS} feed files, {items} items");
    // CPU per item of a cold `once`, sled against PostgreSQL (the daemon's CPU plus
    // the server's), alternating, each on a fresh store.
    let (mut sled_cpu, mut pg_cpu, mut pg_client, mut ratios) = (vec![], vec![], vec![], vec![]);
    for round in 0..CLUSTER_ROUNDS {
        let (config, store) = local_feeds_config(docs, dir, &format!("cl{round}"), sections);
        let (sled_wall, sled, sled_summary) =
            run_measured(&["once"], &config, &dir.join("cl-sled.log"));
        let _ = fs::remove_dir_all(&store);
        let url = fresh_database(admin, &format!("newswatch_bench_{round}"));
        let pg_config = on_postgres(&config, &url, "bench");
        // Connect and migrate before measuring: a store opened once is the steady case.
        psql(&url, "SELECT 1");
        let before = server_cpu_ticks(postmaster);
        let (pg_wall, pg, pg_summary) = run_measured(&["once"], &pg_config, &dir.join("cl-pg.log"));
        let server = (server_cpu_ticks(postmaster) - before) as f64 / ticks();
        let (s, c) = (
            sled.cpu.as_secs_f64() * 1e6 / items,
            pg.cpu.as_secs_f64() * 1e6 / items,
        );
        let p = c + server * 1e6 / items;
        println!(
            "cluster round {round}: sled once {:.2} s wall, {s:.1} µs CPU an item; postgres once {:.2} s wall, \
             {c:.1} µs an item in newswatch + {:.1} in the server = {p:.1} ({:.2}× sled); sled: {sled_summary}; postgres: {pg_summary}",
            sled_wall.as_secs_f64(),
            pg_wall.as_secs_f64(),
            server * 1e6 / items,
            p / s,
        );
        sled_cpu.push(s);
        pg_client.push(c);
        pg_cpu.push(p);
        ratios.push(p / s);
    }
    println!(
        "cluster (median of {CLUSTER_ROUNDS}): cold once, CPU an item: sled {:.1} µs, postgres {:.1} µs \
         ({:.1} in newswatch); postgres ÷ sled {:.2}",
        median(sled_cpu),
        median(pg_cpu),
        median(pg_client),
        median(ratios)
    );

    // Cold ingest by `run` daemons sharing one database: every feed once.
    for daemons in [1usize, 2] {
        let url = fresh_database(admin, &format!("newswatch_ingest_{daemons}"));
        let (config, _) = write_config(
            dir,
            &format!("ingest{daemons}"),
            &server.base,
            "feed",
            CLUSTER_FEEDS,
            "1h",
            sections,
        );
        // The schema first, so that the daemons start on equal terms.
        let migrate = on_postgres(&config, &url, "setup");
        let _ = run_measured(
            &["items", "--limit", "1"],
            &migrate,
            &dir.join("ingest-setup.log"),
        );
        let before = server_cpu_ticks(postmaster);
        let (requests_before, _, _) = server.count();
        let start = Instant::now();
        let mut children: Vec<std::process::Child> = (0..daemons)
            .map(|n| {
                let node = format!("node{n}");
                let config = on_postgres(&config, &url, &node);
                spawn(
                    &["run"],
                    &config,
                    &dir.join(format!("ingest-{daemons}-{node}.log")),
                )
            })
            .collect();
        let mut done = false;
        let mut daemon_ticks = vec![0u64; daemons];
        while start.elapsed() < CLUSTER_LIMIT {
            for (n, child) in children.iter().enumerate() {
                if let Some(t) = proc_cpu_ticks(child.id() as i32) {
                    daemon_ticks[n] = t;
                }
            }
            let saved: usize = psql(&url, "SELECT count(*) FROM feeds WHERE state IS NOT NULL")
                .parse()
                .unwrap_or(0);
            if saved >= CLUSTER_FEEDS {
                done = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let wall = start.elapsed();
        for (n, child) in children.iter().enumerate() {
            if let Some(t) = proc_cpu_ticks(child.id() as i32) {
                daemon_ticks[n] = t;
            }
        }
        let server_cpu = (server_cpu_ticks(postmaster) - before) as f64 / ticks();
        for child in &mut children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        for child in &mut children {
            let _ = child.wait();
        }
        let (requests_after, _, _) = server.count();
        let stored: u64 = psql(&url, "SELECT count(*) FROM items")
            .parse()
            .unwrap_or(0);
        let by_node = psql(&url, "SELECT string_agg(stored_by || ' ' || n, ', ' ORDER BY stored_by) FROM (SELECT stored_by, count(*) n FROM items GROUP BY 1) c");
        let newswatch_cpu = daemon_ticks.iter().sum::<u64>() as f64 / ticks();
        println!(
            "cluster ingest, {daemons} daemon(s): {CLUSTER_FEEDS} feeds {} in {:.1} s, {} fetches, {stored} items ({by_node}); \
             CPU: newswatch {:.1} s + server {:.1} s = {:.1} µs an item",
            if done { "stored" } else { "NOT all stored" },
            wall.as_secs_f64(),
            requests_after - requests_before,
            newswatch_cpu,
            server_cpu,
            (newswatch_cpu + server_cpu) * 1e6 / stored.max(1) as f64,
        );
    }
}

// ---------------------------------------------------------------------------
// The poll part.

fn poll_part(server: &Server, dir: &Path, sections: &str) {
    let docs = &server.served.docs[..POLL_FEEDS];
    let bytes: usize = docs.iter().map(|d| d.body.len()).sum();
    let items = POLL_FEEDS * ITEMS;
    let limit = limit_from_env("POLL_BENCH_COLD_LIMIT", COLD_LIMIT);
    println!(
        "\n== poll: {POLL_FEEDS} feeds x {ITEMS} items, {:.1} MiB of RSS ({:.1} KiB a feed); cold run limit {} ==",
        bytes as f64 / 1048576.0,
        bytes as f64 / 1024.0 / POLL_FEEDS as f64,
        limit.map_or_else(|| "none".to_string(), |l| format!("{} s", l.as_secs()))
    );
    let (config, store) = write_config(
        dir,
        "poll",
        &server.base,
        "feed",
        POLL_FEEDS,
        "5m",
        sections,
    );
    let delta = |a: (u64, u64, u64), b: (u64, u64, u64)| (b.0 - a.0, b.1 - a.1, b.2 - a.2);
    let report = |label: &str,
                  run: &OnceRun,
                  counts: (u64, u64, u64),
                  feeds: usize,
                  items: usize| {
        let secs = run.wall.as_secs_f64();
        println!(
            "{label}: {:.2} s wall, {:.2} s CPU ({:.0}% of one core), {:.1} feeds/s, {:.0} items/s, peak RSS {:.1} MiB; server: {} requests ({} x 200, {} x 304)",
            secs,
            run.exit.cpu.as_secs_f64(),
            100.0 * run.exit.cpu.as_secs_f64() / secs,
            feeds as f64 / secs,
            items as f64 / secs,
            mib(run.exit.max_rss_kib),
            counts.0,
            counts.1,
            counts.2,
        );
        if !run.summary.is_empty() {
            println!("{label}: newswatch said: {}", run.summary);
        }
    };

    // Cold: a fresh store, every feed read.
    let before = server.count();
    let cold_log = dir.join("cold.log");
    let cold = run_once(&config, &cold_log, limit);
    let cold_counts = delta(before, server.count());
    let (cold_feeds, cold_items) = if cold.finished {
        (POLL_FEEDS, items)
    } else {
        let stored = stored_items(&config);
        println!(
            "cold once: DID NOT FINISH: stopped after {:.0} s with {stored} of {items} items stored ({} of {POLL_FEEDS} feeds fetched)",
            cold.wall.as_secs_f64(),
            cold_counts.1
        );
        (stored / ITEMS, stored)
    };
    report("cold once", &cold, cold_counts, cold_feeds, cold_items);
    let curve = fetch_curve(&cold_log);
    println!(
        "cold once: feeds fetched per {CURVE_BUCKET} s: {}",
        curve
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "cold once: store {:.1} MiB on disk; {} \"Matched an item\" log lines",
        dir_size(&store) as f64 / 1048576.0,
        count_lines(&cold_log, "Matched an item")
    );
    if cold.finished && !cold.summary.contains(&format!("{items} new items")) {
        println!("WARNING: the cold run did not store {items} new items");
    }

    // Warm: every feed answers 304. Done on the cold run's store when it finished;
    // otherwise on a fresh store whose every first poll is answered 304, which is the
    // same work per feed short of reading 2,000 saved states at start.
    let (warm_config, warm_label) = if cold.finished {
        (config.clone(), "warm once")
    } else {
        let (config, _) = write_config(dir, "warm", &server.base, "nm", POLL_FEEDS, "5m", sections);
        (config, "warm once (fresh store, all 304)")
    };
    let before = server.count();
    let warm = run_once(&warm_config, &dir.join("warm.log"), None);
    let warm_counts = delta(before, server.count());
    report(warm_label, &warm, warm_counts, POLL_FEEDS, 0);
    println!(
        "{warm_label}: {:.0} items/s covered (items of feeds confirmed unchanged)",
        items as f64 / warm.wall.as_secs_f64()
    );
    if warm_counts.2 != POLL_FEEDS as u64 {
        println!("WARNING: the warm run did not get a 304 for every feed");
    }

    // Bare feed-rs over the same bytes, one thread.
    let mut rounds = Vec::new();
    let mut parsed_items = 0;
    for _ in 0..PARSE_ROUNDS {
        let start = Instant::now();
        parsed_items = 0;
        for doc in docs {
            let feed = feed_rs::parser::parse(&doc.body[..]).expect("feed-rs parses the corpus");
            parsed_items += std::hint::black_box(feed).entries.len();
        }
        rounds.push(start.elapsed());
    }
    rounds.sort();
    let parse = rounds[PARSE_ROUNDS / 2];
    assert_eq!(parsed_items, items, "feed-rs found every item");
    let parse_items_s = items as f64 / parse.as_secs_f64();
    let cold_items_s = cold_items as f64 / cold.wall.as_secs_f64();
    println!(
        "bare feed-rs parse (1 thread, median of {PARSE_ROUNDS}): {:.2} s, {:.0} feeds/s, {:.0} items/s, {:.0} MiB/s",
        parse.as_secs_f64(),
        POLL_FEEDS as f64 / parse.as_secs_f64(),
        parse_items_s,
        bytes as f64 / 1048576.0 / parse.as_secs_f64()
    );
    let ratio = cold_items_s / parse_items_s;
    println!(
        "ratio cold once items/s / bare parse items/s = {:.2}% (target >= 50%: {}){}",
        100.0 * ratio,
        if ratio >= 0.5 { "met" } else { "NOT met" },
        if cold.finished {
            ""
        } else {
            " [cold run unfinished: its rate over the part it did]"
        }
    );
    println!(
        "CPU per item: cold once {:.1} us (all threads), bare parse {:.1} us",
        1e6 * cold.exit.cpu.as_secs_f64() / cold_items.max(1) as f64,
        1e6 * parse.as_secs_f64() / items as f64
    );

    breakdown(&config, docs);
}

/// The daemon's CPU stages, in this process on one thread, over part of the corpus:
/// where a cold run's time goes, short of HTTP and the store.
fn breakdown(config_path: &Path, docs: &[Doc]) {
    let config = match newswatch::config::load(config_path) {
        Ok(config) => config,
        Err(errors) => {
            println!("stage breakdown skipped: the bench config does not load: {errors:?}");
            return;
        }
    };
    let pipeline = config.pipeline();
    let docs = &docs[..BREAKDOWN_FEEDS.min(docs.len())];

    let start = Instant::now();
    for doc in docs {
        std::hint::black_box(feed_rs::parser::parse(&doc.body[..]).ok());
    }
    let bare = start.elapsed();

    let start = Instant::now();
    let mut feeds = Vec::with_capacity(docs.len());
    for doc in docs {
        match newswatch::parse::read_feed(&doc.body, Some("utf-8")) {
            Ok(feed) => feeds.push(feed.items),
            Err(err) => println!("stage breakdown: a feed did not read: {err}"),
        }
    }
    let read = start.elapsed();
    let items: usize = feeds.iter().map(Vec::len).sum();

    // The pipeline's two halves, as `Pipeline::process_item` runs them.
    let cleaner = newswatch::pipeline::clean::Cleaner::new(
        config.cleaning.split_on.clone(),
        config.cleaning.drop_lines.clone(),
    );
    let start = Instant::now();
    let articles: Vec<_> = feeds
        .iter()
        .flatten()
        .map(|item| cleaner.clean_item(&item.title, &item.body))
        .collect();
    let cleaning = start.elapsed();
    // Matching and shingling share the match form, as in `Pipeline::process_item`.
    let start = Instant::now();
    let match_texts: Vec<MatchText> = articles
        .iter()
        .map(|a| MatchText::new(&a.title, &a.body))
        .collect();
    let folding = start.elapsed();
    let start = Instant::now();
    let mut matched = 0;
    for (article, text) in articles.iter().zip(&match_texts) {
        let findings = pipeline
            .rules()
            .analyze_text(text, &article.title, &article.body);
        matched += usize::from(!findings.topics.is_empty());
    }
    let analysis = start.elapsed();

    // Story clustering as the daemon does it: shingles from the match form, SimHash
    // and sketch from them, then the nearest earlier story whose sketch resembles,
    // else a new story.
    let start = Instant::now();
    let shingles: Vec<Vec<u64>> = match_texts
        .iter()
        .map(|t| dedup::shingles_of(t.plain_words()))
        .collect();
    let shingling = start.elapsed();
    let start = Instant::now();
    let fingerprints: Vec<u64> = shingles.iter().map(|s| dedup::simhash(s)).collect();
    let sketches: Vec<Vec<u32>> = shingles.iter().map(|s| dedup::sketch(s)).collect();
    let hashing = start.elapsed();
    let now = Utc::now();
    let mut index =
        dedup::StoryIndex::new(Duration::from_secs(48 * 3600), dedup::DEFAULT_MAX_DISTANCE);
    let mut candidates = Vec::with_capacity(items);
    let mut copies = 0;
    let start = Instant::now();
    for (i, (fp, sketch)) in fingerprints.iter().zip(&sketches).enumerate() {
        if index.same_story(*fp, sketch).is_some() {
            copies += 1;
        } else {
            index.insert_sketched(*fp, i.to_string(), now, sketch.clone());
        }
    }
    let clustering = start.elapsed();
    // Not timed: how many earlier stories each item is compared with in full.
    let mut index =
        dedup::StoryIndex::new(Duration::from_secs(48 * 3600), dedup::DEFAULT_MAX_DISTANCE);
    for (i, fp) in fingerprints.iter().enumerate() {
        candidates.push(index.candidates(*fp).len());
        index.insert(*fp, i.to_string(), now);
    }
    let mean_candidates = candidates.iter().sum::<usize>() as f64 / items.max(1) as f64;
    let last_quarter = &candidates[items - items / 4..];
    let late_candidates =
        last_quarter.iter().sum::<usize>() as f64 / last_quarter.len().max(1) as f64;
    // Unrelated pairs: each item against the same item of the next feed.
    let distances: Vec<u32> = fingerprints
        .iter()
        .zip(fingerprints.iter().skip(ITEMS))
        .map(|(a, b)| (a ^ b).count_ones())
        .collect();
    let mean_distance =
        distances.iter().map(|&d| f64::from(d)).sum::<f64>() / distances.len().max(1) as f64;
    let near = distances
        .iter()
        .filter(|&&d| d <= dedup::DEFAULT_MAX_DISTANCE)
        .count();

    let per_item = |d: Duration| 1e6 * d.as_secs_f64() / items as f64;
    println!(
        "stage breakdown, 1 thread, {} feeds / {items} items ({matched} on a topic), us per item:",
        docs.len()
    );
    println!(
        "  bare feed-rs parse                   {:8.1}",
        per_item(bare)
    );
    println!(
        "  decode + liberal parse (read_feed)   {:8.1}",
        per_item(read)
    );
    println!(
        "  clean (HTML to text, rules)          {:8.1}",
        per_item(cleaning)
    );
    println!(
        "  match form (MatchText::new)          {:8.1}",
        per_item(folding)
    );
    println!(
        "  entities + topics (analyze_text)     {:8.1}",
        per_item(analysis)
    );
    println!(
        "  shingles (from the match form)       {:8.1}",
        per_item(shingling)
    );
    println!(
        "  SimHash + sketch from the shingles   {:8.1}",
        per_item(hashing)
    );
    println!(
        "  story lookup (same_story) + insert   {:8.1}",
        per_item(clustering)
    );
    println!(
        "story candidates (SimHash within the bound) per item: {mean_candidates:.1} on average, {late_candidates:.1} over the last quarter of items, {} at most; {copies} items joined a story; unrelated pairs {mean_distance:.1} bits apart on average, {near} of {} within {} bits",
        candidates.iter().max().unwrap_or(&0),
        distances.len(),
        dedup::DEFAULT_MAX_DISTANCE
    );
}

// ---------------------------------------------------------------------------
// The memory part.

struct Idle {
    rss_kib: u64,
    hwm_kib: u64,
    anon_kib: u64,
    file_kib: u64,
    idle_min_max: (u64, u64),
    /// From start until every feed was polled and the daemon went quiet.
    settled: Duration,
    /// Set when the feeds were frozen (every request answered 304) at the ingest limit.
    frozen_after: Option<Duration>,
    stop: Duration,
    exit: Option<Exit>,
    store_mib: f64,
}

/// Starts `newswatch run` with `MEMORY_FEEDS` feeds on `route`, waits until every
/// feed was polled (unless `restart`: then the store is the previous run's and no feed
/// is due) and the daemon is quiet, idles, reads its memory and stops it.
// The child is reaped with wait4 in `try_reap`, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn memory_run(
    server: &Server,
    dir: &Path,
    sections: &str,
    name: &str,
    route: &str,
    restart: bool,
) -> Idle {
    let (config, store) =
        write_config(dir, name, &server.base, route, MEMORY_FEEDS, "1h", sections);
    let log = dir.join(format!(
        "{name}{}.log",
        if restart { "-restart" } else { "" }
    ));
    let expected = if restart { 0 } else { MEMORY_FEEDS as u64 };
    let ingest_limit = limit_from_env("POLL_BENCH_INGEST_LIMIT", INGEST_LIMIT);
    let (start_requests, _, _) = server.count();
    let start = Instant::now();
    let mut child = spawn(&["run"], &config, &log);
    drop(child.stdout.take());
    let pid = child.id() as i32;
    let mut peak = Peak::default();
    let die = |why: &str| -> ! {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        eprintln!("poll bench: {name}: {why}; log tail:\n{}", tail(&log, 20));
        std::process::exit(1);
    };

    // Every feed asked for once; past the ingest limit the feeds stop changing.
    let mut frozen_after = None;
    let deadline = Duration::from_secs(300);
    loop {
        let (requests, _, _) = server.count();
        if requests - start_requests >= expected {
            break;
        }
        if frozen_after.is_none() && ingest_limit.is_some_and(|l| start.elapsed() > l) {
            server.served.frozen.store(true, Ordering::Relaxed);
            frozen_after = Some(start.elapsed());
        }
        if try_reap(pid, &mut peak).is_some() {
            die("newswatch run exited early");
        }
        if start.elapsed() > deadline {
            die(&format!(
                "only {} of {MEMORY_FEEDS} feeds were requested in {} s",
                requests - start_requests,
                deadline.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Then until its CPU is quiet: under 3 ticks (30 ms) a second, three seconds running.
    let quiet_deadline = Instant::now() + Duration::from_secs(180);
    let mut quiet = 0;
    let mut last = proc_cpu_ticks(pid).unwrap_or(0);
    while quiet < 3 {
        std::thread::sleep(Duration::from_secs(1));
        let now = proc_cpu_ticks(pid).unwrap_or_else(|| die("newswatch run went away"));
        quiet = if now - last < 3 { quiet + 1 } else { 0 };
        last = now;
        if Instant::now() > quiet_deadline {
            die("it did not go idle within 180 s of the last request");
        }
    }
    server.served.frozen.store(false, Ordering::Relaxed);
    let settled = start.elapsed() - Duration::from_secs(3);

    let mut lo = u64::MAX;
    let mut hi = 0;
    for _ in 0..IDLE_FOR.as_secs() {
        std::thread::sleep(Duration::from_secs(1));
        let rss = proc_status(pid).get("VmRSS").copied().unwrap_or(0);
        lo = lo.min(rss);
        hi = hi.max(rss);
    }
    let status = proc_status(pid);
    let get = |k: &str| status.get(k).copied().unwrap_or(0);

    let stopping = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let mut exit = None;
    while stopping.elapsed() < Duration::from_secs(15) {
        if let Some(e) = try_reap(pid, &mut peak) {
            exit = Some(e);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let stop = stopping.elapsed();
    if exit.is_none() {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        let _ = child.wait();
    }
    Idle {
        rss_kib: get("VmRSS"),
        hwm_kib: get("VmHWM"),
        anon_kib: get("RssAnon"),
        file_kib: get("RssFile"),
        idle_min_max: (lo, hi),
        settled,
        frozen_after,
        stop,
        exit,
        store_mib: dir_size(&store) as f64 / 1048576.0,
    }
}

fn memory_part(server: &Server, dir: &Path, sections: &str, only_ingest: bool) {
    println!(
        "\n== memory: newswatch run, {MEMORY_FEEDS} feeds, interval 1h, idle {} s ==",
        IDLE_FOR.as_secs()
    );
    for (name, route, restart, what) in [
        ("memory", "feed", false, "fresh store, feeds of 50 items"),
        (
            "memory",
            "feed",
            true,
            "restarted on that store, no feed due",
        ),
        (
            "memory-304",
            "nm",
            false,
            "fresh store, every first poll 304",
        ),
    ]
    .into_iter()
    .take(if only_ingest { 1 } else { 3 })
    {
        let before = server.count();
        let idle = memory_run(server, dir, sections, name, route, restart);
        let after = server.count();
        let full = after.1 - before.1;
        println!(
            "{what}: polled and quiet after {:.1} s; server: {} x 200 ({} items), {} x 304; store {:.0} MiB",
            idle.settled.as_secs_f64(),
            full,
            full as usize * ITEMS,
            after.2 - before.2,
            idle.store_mib
        );
        if let Some(at) = idle.frozen_after {
            println!(
                "  feeds frozen (every request answered 304) after {:.0} s: the daemon had not fetched every feed by then",
                at.as_secs_f64()
            );
        }
        println!(
            "  idle VmRSS {:.1} MiB (RssAnon {:.1}, RssFile {:.1}; {:.1}..{:.1} over the idle {} s), VmHWM {:.1} MiB -> target < {IDLE_TARGET_MIB} MiB idle: {}",
            mib(idle.rss_kib),
            mib(idle.anon_kib),
            mib(idle.file_kib),
            mib(idle.idle_min_max.0),
            mib(idle.idle_min_max.1),
            IDLE_FOR.as_secs(),
            mib(idle.hwm_kib),
            if mib(idle.rss_kib) < IDLE_TARGET_MIB {
                "met"
            } else {
                "NOT met"
            }
        );
        match &idle.exit {
            Some(exit) => println!(
                "  SIGTERM: exited with {:?} after {:.2} s; peak RSS {:.1} MiB; CPU {:.1} s",
                exit.code,
                idle.stop.as_secs_f64(),
                mib(exit.max_rss_kib),
                exit.cpu.as_secs_f64()
            ),
            None => println!(
                "  SIGTERM: did NOT exit within {:.0} s; killed",
                idle.stop.as_secs_f64()
            ),
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else not starting with '-' picks a part.
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |p: &str| parts.is_empty() || parts.iter().any(|a| a == p);
    let serve = parts.iter().any(|a| a == "serve");
    let stages = parts.iter().any(|a| a == "stages");
    let solo = serve || stages;
    // `ingest` is the first memory run alone, unless `memory` asks for all three.
    let ingest = parts.iter().any(|a| a == "ingest");
    let only_ingest = ingest && !parts.iter().any(|a| a == "memory");
    let (poll, memory) = (!solo && want("poll"), !solo && (ingest || want("memory")));
    let local = !solo && want("local");
    // Needs a PostgreSQL server on this machine: `POLL_BENCH_PG_URL` is the URL of a
    // role that may create databases, e.g. postgres://newswatch@127.0.0.1:5432/postgres.
    let pg_admin = std::env::var("POLL_BENCH_PG_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let cluster = !solo && parts.iter().any(|a| a == "cluster");
    if cluster && pg_admin.is_none() {
        eprintln!("poll bench: the cluster part needs POLL_BENCH_PG_URL, the URL of a PostgreSQL role that may create databases, on a server on this machine");
        std::process::exit(2);
    }
    if !solo && !poll && !memory && !local && !cluster {
        eprintln!("poll bench: unknown part {parts:?}; use `poll`, `local`, `memory`, `ingest`, `cluster`, `stages` or `serve`");
        std::process::exit(2);
    }
    let bin = binary();
    let built = fs::metadata(&bin)
        .and_then(|m| m.modified())
        .map(|t| {
            DateTime::<Utc>::from(t)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_default();
    println!("binary: {} (built {built})", bin.display());
    for (key, value) in std::env::vars().filter(|(k, _)| k.starts_with("NEWSWATCH__")) {
        println!("environment: {key}={value}");
    }

    let shipped_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/newswatch.toml");
    let shipped = fs::read_to_string(&shipped_path).expect("reading config/newswatch.toml");
    let sections = pipeline_sections(&shipped);

    let feeds = if memory { MEMORY_FEEDS } else { POLL_FEEDS };
    let start = Instant::now();
    let docs = corpus(feeds);
    println!(
        "corpus: {feeds} feeds generated in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let server = Server::start(docs);
    println!("server: {}", server.base);
    let dir = tempfile::tempdir().expect("creating a temp dir");

    if stages {
        let (config, _) = write_config(
            dir.path(),
            "stages",
            &server.base,
            "feed",
            POLL_FEEDS,
            "5m",
            &sections,
        );
        breakdown(&config, &server.served.docs);
        return;
    }
    if serve {
        // For profiling by hand: the server and a config, until interrupted.
        let (config, _) = write_config(
            dir.path(),
            "serve",
            &server.base,
            "feed",
            POLL_FEEDS,
            "5m",
            &sections,
        );
        println!(
            "serving; run e.g. `perf record -g target/release/newswatch once --config {}`; Ctrl-C to stop",
            config.display()
        );
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    if local {
        local_part(&server.served.docs, dir.path(), &sections);
    }
    if poll {
        poll_part(&server, dir.path(), &sections);
    }
    if memory {
        memory_part(&server, dir.path(), &sections, only_ingest);
    }
    if let (true, Some(admin)) = (cluster, &pg_admin) {
        cluster_part(&server, dir.path(), &sections, admin);
    }
    if std::env::var("POLL_BENCH_KEEP").is_ok_and(|v| !v.is_empty() && v != "0") {
        // For looking at a store and its daemon afterwards (heaptrack on a restart).
        println!("kept: {}", dir.keep().display());
    }
}
