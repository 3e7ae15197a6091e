//! Seeded byte mutations of every fixture, run in-process through the code `scan` and
//! the poller run on a body: decoding, liberal feed reading, parsing and the pipeline.
//! Nothing may panic, whatever the bytes.
//!
//! The mutations favour what broke before: multi-byte UTF-8 characters of several
//! scripts placed right after a `<` or inside markup, where a fixed-length byte slice
//! lands inside a character; markup openers (`<!doctype`, `<?`, `<![CDATA[`);
//! truncation and duplicated ranges. The generator is a fixed xorshift, so a failure
//! names the seed and fixture that reproduce it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use newswatch::parse::{self, Parsed};
use newswatch::pipeline::Pipeline;
use newswatch::poller::repair;

use crate::util::{default_config, root};

/// Mutated inputs per fixture.
const ROUNDS: usize = 150;

/// Characters of the scripts our users read, and markup that starts a construct.
const INSERTS: &[&str] = &[
    "東",
    "京",
    "é",
    "ж",
    "Иван",
    "한",
    "ع",
    "\u{feff}",
    "😀",
    "<",
    "&",
    "<!doctype ",
    "<!DOCTYPE x [",
    "<?",
    "?>",
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
    "&東;",
    "&#",
    "&#x",
    "<rss",
    "<feed",
    "<title>",
    "</title>",
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

fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0..=2 => {
                let insert = INSERTS[rng.below(INSERTS.len())].as_bytes();
                bytes.splice(at..at, insert.iter().copied());
            }
            3 => {
                let end = (at + rng.below(64)).min(bytes.len());
                bytes.drain(at..end);
            }
            4 => {
                let end = (at + rng.below(256)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            _ => {
                // A byte of a multi-byte character alone: invalid UTF-8 on purpose.
                bytes.insert(at, [0xE6, 0x9D, 0xB1, 0xC3, 0xD0][rng.below(5)]);
            }
        }
        if rng.below(10) == 0 {
            bytes.truncate(rng.below(bytes.len() + 1));
        }
    }
    bytes
}

/// Everything `scan` and the poller do with a body, ignoring the results.
fn exercise(pipeline: &Pipeline, bytes: &[u8]) {
    let _ = repair::read_feed(bytes, None);
    let Ok(decoded) = parse::decode(bytes, None) else {
        return;
    };
    match parse::parse(&decoded.text) {
        Ok(Parsed::Feed(entries)) => {
            for entry in &entries {
                let _ = pipeline.process_item(&entry.title, &entry.body);
            }
        }
        Ok(Parsed::Html(html)) => {
            let _ = pipeline.process_document(&html, true);
        }
        Ok(Parsed::Text(text)) => {
            let _ = pipeline.process_document(&text, false);
        }
        Err(_) => {}
    }
}

#[test]
fn no_mutation_of_any_fixture_panics() {
    let config = newswatch::config::load(&default_config()).expect("the shipped config");
    let pipeline = Pipeline::from_config(&config);
    let dir = root().join("tests/fixtures");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e != "md"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 10, "fixtures: {fixtures:?}");
    let mut failures = Vec::new();
    for (n, path) in fixtures.iter().enumerate() {
        let input = std::fs::read(path).expect("read fixture");
        for round in 0..ROUNDS {
            let seed = 0x9E37_79B9_7F4A_7C15 ^ ((n as u64) << 32 | round as u64);
            let mut rng = Rng(seed);
            let mutated = mutate(&input, &mut rng);
            if catch_unwind(AssertUnwindSafe(|| exercise(&pipeline, &mutated))).is_err() {
                failures.push(format!("{} seed {seed:#x}", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} mutated inputs panicked; the first: {:?}",
        failures.len(),
        fixtures.len() * ROUNDS,
        &failures[..failures.len().min(5)]
    );
}
