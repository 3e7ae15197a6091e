//! Seeded byte mutations of every fixture and shipped sample feed, run in-process
//! through the code `scan` and the daemon run on a body: decoding, liberal feed
//! reading, parsing, the pipeline (with `--explain`), item ids and story fingerprints.
//! Nothing may panic, whatever the bytes.
//!
//! The mutations favour what broke before: multi-byte UTF-8 characters of several
//! scripts placed right after a `<` or inside markup, where a fixed-length byte slice
//! lands inside a character (issue 17: 73 of 3,000 such inputs panicked `scan`);
//! markup openers (`<!doctype`, `<?`, `<![CDATA[`); truncation and duplicated ranges.
//! The generator is a fixed xorshift, so a run is repeatable and a failure names the
//! fixture, the seed and the mutations that reproduce it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use newswatch::identity;
use newswatch::parse::{self, Parsed};
use newswatch::pipeline::{dedup, Pipeline, Processed};

use crate::util::{default_config, root};

/// Mutated inputs per file: about 11,000 in all (55 files), three seconds in the
/// test profile.
/// `NEWSWATCH_MUTATION_ROUNDS=20000` runs a longer soak with the same seeds and more.
const ROUNDS: usize = 200;

fn rounds() -> usize {
    std::env::var("NEWSWATCH_MUTATION_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ROUNDS)
}

/// Characters of the scripts our users read, and markup that starts a construct.
const INSERTS: &[&str] = &[
    "東",
    "京",
    "é",
    "ж",
    "Иван",
    "한",
    "ع",
    "ü",
    "\u{feff}",
    "\u{301}",
    "😀",
    "<",
    "&",
    "<!doctype ",
    "<!DOCTYPE x [",
    "<!DOCTYPE 東京>",
    "<?",
    "?>",
    "<?xml ééé?>",
    "<?東京 x=\"1\"?>",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "</",
    "/>",
    "\"",
    "'",
    "<東",
    "<é",
    "<한국",
    "<عربي",
    "<Иван",
    " title=\"a<東京の写真\"",
    "&東;",
    "&#",
    "&#x",
    "&nbsp;",
    "<rss",
    "<feed",
    "<title>",
    "</title>",
    "<title>東京で停戦交渉",
    "<author>Иван Петров",
    "<name>محادثات",
    "<item>",
    "<entry>",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Applies one to four mutations, saying what each did, so a failure can be read
/// (and replayed) without re-running the generator by hand.
fn mutate(input: &[u8], rng: &mut Rng, log: &mut Vec<String>) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0..=2 => {
                let insert = INSERTS[rng.below(INSERTS.len())];
                bytes.splice(at..at, insert.bytes());
                log.push(format!("insert {insert:?} at {at}"));
            }
            3 => {
                let end = (at + rng.below(64)).min(bytes.len());
                bytes.drain(at..end);
                log.push(format!("delete {at}..{end}"));
            }
            4 => {
                let end = (at + rng.below(256)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
                log.push(format!("duplicate {at}..{end}"));
            }
            _ => {
                // A byte of a multi-byte character alone: invalid UTF-8 on purpose.
                let byte = [0xE6, 0x9D, 0xB1, 0xC3, 0xD0][rng.below(5)];
                bytes.insert(at, byte);
                log.push(format!("insert byte {byte:#04x} at {at}"));
            }
        }
        if rng.below(10) == 0 {
            let len = rng.below(bytes.len() + 1);
            bytes.truncate(len);
            log.push(format!("truncate to {len}"));
        }
    }
    bytes
}

/// What the daemon does with an item after the pipeline: its id and story keys.
fn identify(entry: &parse::FeedItem, processed: &Processed) {
    let _ = identity::item_id(
        entry.id.as_deref(),
        entry.link.as_deref(),
        &entry.title,
        entry.published,
        "https://example.org/feed.xml",
    );
    let _ = dedup::simhash(&processed.shingles);
    let _ = dedup::sketch(&processed.shingles);
}

/// Everything `scan` (see `cli::scan`) and the daemon (`daemon::analyze`) do with a
/// body, ignoring the results.
fn exercise(pipeline: &Pipeline, bytes: &[u8]) {
    if let Ok(feed) = parse::read_feed(bytes, None) {
        for entry in &feed.items {
            identify(entry, &pipeline.process_item(&entry.title, &entry.body));
        }
    }
    let Ok(decoded) = parse::decode(bytes, None) else {
        return;
    };
    let processed = match parse::parse(&decoded.text) {
        Ok(Parsed::Feed(entries)) => entries
            .iter()
            .map(|entry| pipeline.process_item(&entry.title, &entry.body))
            .collect(),
        Ok(Parsed::Html(html)) => pipeline.process_document(&html, true, 1),
        Ok(Parsed::Text(text)) => pipeline.process_document(&text, false, 1),
        Err(_) => Vec::new(),
    };
    for p in &processed {
        let _ = pipeline.explain(&p.article);
    }
}

/// Every fixture (the README aside), every feed of `tests/fixtures/feeds/` and every
/// shipped sample feed.
fn inputs() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["tests/fixtures", "config/samples"] {
        let entries = std::fs::read_dir(root().join(dir)).expect(dir);
        files.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e != "md")),
        );
    }
    files.extend(crate::formats::fixtures());
    files.sort();
    files
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[test]
fn no_mutation_of_any_fixture_panics() {
    let config = newswatch::config::load(&default_config()).expect("the shipped config");
    let pipeline = config.pipeline();
    let files = inputs();
    for script in [
        "feed-cjk-rss.xml",
        "feed-korean-atom.xml",
        "feed-arabic-rss.xml",
    ] {
        assert!(
            files.iter().any(|p| p.ends_with(script)),
            "{script} is missing from {files:?}"
        );
    }
    let rounds = rounds();
    let mut failures = Vec::new();
    for (n, path) in files.iter().enumerate() {
        let input = std::fs::read(path).expect("read fixture");
        for round in 0..rounds {
            let seed = 0x9E37_79B9_7F4A_7C15 ^ ((n as u64) << 32 | round as u64);
            let mut log = Vec::new();
            let mutated = mutate(&input, &mut Rng(seed), &mut log);
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| exercise(&pipeline, &mutated))) {
                failures.push(format!(
                    "{} seed {seed:#x} [{}]: {}",
                    path.strip_prefix(root()).unwrap_or(path).display(),
                    log.join("; "),
                    panic_message(payload.as_ref()),
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} mutated inputs panicked; the first:\n{}",
        failures.len(),
        files.len() * rounds,
        failures[..failures.len().min(5)].join("\n")
    );
}
