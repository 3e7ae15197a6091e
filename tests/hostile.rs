//! Hostile input for `newswatch scan`: binary files, broken encodings, huge and deeply
//! nested documents, broken feeds, missing files and broken configs.
//!
//! Every test builds its inputs in a temporary directory, runs the real binary with a
//! time limit (a hang is a failure, not a stuck test run), and checks four things: no
//! panic or crash, the exit code of the contract, a `newswatch: <FILE>: <reason>` line
//! naming the bad input, and the good file given in the same command still scanned.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::util::{
    default_config, entity, entity_ids, newswatch, run_bounded, run_within, scan_command, shorten,
    temp_config, topic_ids, Input, Run,
};

/// Time limit for an ordinary run; generous, the binary under test is a debug build.
const LIMIT: Duration = Duration::from_secs(60);

/// Time limit for the 50 MB file.
const BIG_LIMIT: Duration = Duration::from_secs(120);

/// An article every run can be checked against: two principals and the default topic.
const GOOD: &str = "Russia and Ukraine agree to new ceasefire talks\n\
\n\
Russian President Vladimir Putin said on Tuesday that Moscow was ready to discuss a \
ceasefire with Ukraine, according to a statement published by the Kremlin.\n\
\n\
Ukrainian President Volodymyr Zelensky welcomed the offer but said Kyiv needed \
security guarantees before any truce could take hold.\n";

/// A valid config with one entity, one sink and one topic; `QUERY` is replaced.
const MINIMAL_CONFIG: &str = r#"
[[entities]]
id = "putin"
kind = "person"
name = "Vladimir Putin"
aliases = ["Putin"]

[[sinks]]
id = "log"
kind = "log"

[[topics]]
id = "t"
query = 'QUERY'
sinks = ["log"]
"#;

/// `newswatch scan --text --config <default> FILES...`, within [`LIMIT`].
fn scan(files: &[&Path]) -> Run {
    run_within(&mut scan_command(files), LIMIT)
}

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

/// No panic, no crash, and stdout made only of JSON lines (as `scan` prints). (A
/// stdout that is not UTF-8 fails in `util::run_bounded` already.)
fn assert_sane(out: &Run) {
    assert_no_crash(out);
    let other: Vec<String> = out.other_lines().iter().map(|l| shorten(l, 200)).collect();
    assert!(
        other.is_empty(),
        "stdout lines that are not JSON objects: {other:?}"
    );
}

/// No panic and no crash (for commands that do not print JSON). A process killed by a
/// signal (a stack overflow aborts with SIGABRT) fails in `util::run_bounded` already,
/// naming the signal.
fn assert_no_crash(out: &Run) {
    assert_ne!(out.code, 101, "newswatch panicked:\n{}", out.err());
    assert!(
        !out.stderr.contains("panicked"),
        "newswatch panicked:\n{}",
        out.err()
    );
    assert!(
        !out.stderr.contains("overflowed its stack"),
        "stack overflow:\n{}",
        out.err()
    );
}

fn assert_code(out: &Run, code: i32) {
    assert_eq!(
        out.code,
        code,
        "exit code (expected {code})\nstderr:\n{}",
        out.err()
    );
}

/// A `newswatch: <path>: <reason>` line whose reason holds one of `words`
/// (case-insensitive).
fn assert_reported(out: &Run, path: &Path, words: &[&str]) {
    let lines = out.messages_about(path);
    assert!(
        lines.iter().any(|line| {
            let line = line.to_lowercase();
            words.iter().any(|w| line.contains(&w.to_lowercase()))
        }),
        "expected a line \"newswatch: {}: <reason>\" with one of {words:?}; stderr:\n{}",
        path.display(),
        out.err()
    );
}

/// The good file was scanned as usual: one article with its people and its topic.
fn assert_good(out: &Run, good: &Path) {
    let items = out.items_of(good);
    assert!(
        !items.is_empty(),
        "no items from the good file {}\nstderr:\n{}",
        good.display(),
        out.err()
    );
    let item = items[0];
    assert_eq!(item["kind"], "text", "{item}");
    assert_eq!(item["index"], 0, "{item}");
    let ids = entity_ids(item);
    assert!(
        ids.iter().any(|id| id == "putin") && ids.iter().any(|id| id == "zelensky"),
        "entities of the good file: {ids:?}"
    );
    assert!(
        topic_ids(item).iter().any(|t| t == "ceasefire-talks"),
        "topics of the good file: {:?}",
        topic_ids(item)
    );
}

/// The cleaned text of an item (`--text`).
fn text_of(item: &Value) -> &str {
    item["text"].as_str().expect("item has a text (--text)")
}

/// The title and the text of every item of `path`, joined.
fn all_text_of(out: &Run, path: &Path) -> String {
    out.items_of(path)
        .iter()
        .map(|item| {
            format!(
                "{}\n{}",
                item["title"].as_str().unwrap_or(""),
                text_of(item)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// A temporary directory holding `good.txt`.
fn workspace() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = write(&dir, "good.txt", GOOD.as_bytes());
    (dir, good)
}

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    fs::write(&path, bytes).expect("write input");
    path
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// Hand-made windows-1251 encoder for the letters used in these tests.
fn windows_1251(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '\0'..='\x7f' => c as u8,
            'А'..='я' => (c as u32 - 'А' as u32 + 0xC0) as u8,
            'Ё' => 0xA8,
            'ё' => 0xB8,
            'Є' => 0xAA,
            'є' => 0xBA,
            'І' => 0xB2,
            'і' => 0xB3,
            'Ї' => 0xAF,
            'ї' => 0xBF,
            '«' => 0xAB,
            '»' => 0xBB,
            '–' => 0x96,
            '—' => 0x97,
            '№' => 0xB9,
            other => panic!("no windows-1251 byte for {other:?} in this test table"),
        })
        .collect()
}

fn config_with_query(query: &str) -> (TempDir, PathBuf) {
    temp_config(&MINIMAL_CONFIG.replace("QUERY", query))
}

fn check(config: &Path) -> Run {
    run_within(newswatch().arg("check").arg("--config").arg(config), LIMIT)
}

fn scan_with(config: &Path, files: &[&Path]) -> Run {
    run_within(
        newswatch()
            .arg("scan")
            .arg("--config")
            .arg(config)
            .args(files),
        LIMIT,
    )
}

/// A line `<config>: <key>: <reason>` whose reason holds `column N`.
fn assert_config_error_with_column(out: &Run, config: &Path, key: &str) {
    let needle = format!("{}: {key}: ", config.display());
    let line = out
        .stderr
        .lines()
        .find(|line| line.contains(&needle))
        .unwrap_or_else(|| panic!("no \"{needle}<reason>\" line in stderr:\n{}", out.err()));
    let has_column = line.match_indices("column ").any(|(at, m)| {
        line[at + m.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    });
    assert!(has_column, "no \"column N\" in: {line}");
}

// ---------------------------------------------------------------------------
// Binary data
// ---------------------------------------------------------------------------

#[test]
fn png_with_nul_bytes_is_skipped_as_binary_and_the_good_file_is_scanned() {
    let (dir, good) = workspace();
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0\0\0\x01\0\x08\x06\0\0\0".to_vec();
    png.extend(noise(20_000, 7));
    let bad = write(&dir, "photo.png", &png);

    let out = scan(&[&bad, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    assert_reported(&out, &bad, &["binary"]);
    assert!(out.items_of(&bad).is_empty(), "items from a PNG");
    assert_good(&out, &good);
}

#[test]
fn binary_on_a_stdin_that_never_ends_is_refused_from_its_first_block() {
    // The first block shows the input is binary, so scan must not wait for the rest
    // (up to 256 MiB, or never, from a pipe that stays open).
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(noise(16_384, 3));
    // Fails the test if scan is still reading the open pipe after LIMIT.
    let out = run_bounded(
        newswatch()
            .arg("scan")
            .arg("--config")
            .arg(default_config())
            .arg("-"),
        Input::Open(&png),
        LIMIT,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("binary"), "{}", out.stderr);
}

#[test]
fn random_bytes_named_txt_are_skipped_and_the_good_file_is_scanned() {
    let (dir, good) = workspace();
    // Random bytes with every NUL removed: invalid UTF-8, no NUL to give it away.
    let bytes: Vec<u8> = noise(50_000, 99).into_iter().filter(|&b| b != 0).collect();
    let bad = write(&dir, "notes.txt", &bytes);

    let out = scan(&[&good, &bad]);
    assert_sane(&out);
    assert_code(&out, 0);
    assert_reported(&out, &bad, &["binary", "not text"]);
    assert!(
        out.items_of(&bad).is_empty(),
        "items from random bytes: {}",
        shorten(&all_text_of(&out, &bad), 300)
    );
    assert_good(&out, &good);
}

#[test]
fn control_characters_without_nul_are_skipped_as_binary() {
    let (dir, good) = workspace();
    let controls: Vec<u8> = (1u8..=31)
        .filter(|b| !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c))
        .chain([0x7f])
        .collect();
    let bytes: Vec<u8> = (0..8000)
        .map(|i| {
            if i % 7 == 0 {
                b'a' + (i % 26) as u8
            } else {
                controls[i % controls.len()]
            }
        })
        .collect();
    let bad = write(&dir, "controls.txt", &bytes);

    let out = scan(&[&bad, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    assert_reported(&out, &bad, &["binary"]);
    assert!(out.items_of(&bad).is_empty(), "items from control bytes");
    assert_good(&out, &good);
}

#[test]
fn text_followed_by_binary_garbage_does_not_crash() {
    // A NUL-free text head (beyond any sniffing window) and then a binary tail.
    let (dir, good) = workspace();
    let mut bytes = GOOD.repeat(40).into_bytes();
    bytes.extend(noise(100_000, 3));
    let bad = write(&dir, "truncated-archive.txt", &bytes);

    let out = scan(&[&bad, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    assert!(
        !out.items_of(&bad).is_empty() || !out.messages_about(&bad).is_empty(),
        "the file was neither scanned nor reported\nstderr:\n{}",
        out.err()
    );
    assert_good(&out, &good);
}

// ---------------------------------------------------------------------------
// Encodings
// ---------------------------------------------------------------------------

#[test]
fn invalid_utf8_in_english_text_is_decoded_by_guess_with_a_note() {
    let (dir, good) = workspace();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"Ceasefire talks to resume\n\nRussian President Vladimir Putin ");
    bytes.push(0xFF); // a byte that is never UTF-8
    bytes.extend_from_slice(b" said a ceasefire with Ukraine was possible ");
    bytes.extend_from_slice(b"\xE2\x80"); // a dash cut short
    bytes.extend_from_slice(b" and Ukrainian President Volodymyr Zelensky agreed \xD0"); // Cyrillic cut short
    bytes.extend_from_slice(b" to talks in Istanbul.\n\nMore talks next week \xF0\x9F\x98"); // emoji cut short
    let bad = write(&dir, "latin.txt", &bytes);

    let out = scan(&[&bad, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    assert_reported(&out, &bad, &["utf-8", "utf8"]);
    let items = out.items_of(&bad);
    assert!(
        !items.is_empty(),
        "the file was not scanned\nstderr:\n{}",
        out.err()
    );
    let text = all_text_of(&out, &bad);
    for words in [
        "Vladimir Putin",
        "ceasefire with Ukraine",
        "Volodymyr Zelensky",
    ] {
        assert!(text.contains(words), "{words:?} lost in: {text}");
    }
    let ids = entity_ids(items[0]);
    assert!(
        ids.iter().any(|i| i == "putin") && ids.iter().any(|i| i == "zelensky"),
        "{ids:?}"
    );
    assert!(
        topic_ids(items[0]).iter().any(|t| t == "ceasefire-talks"),
        "{:?}",
        topic_ids(items[0])
    );
    assert_good(&out, &good);
}

#[test]
fn windows_1251_russian_text_is_decoded_and_comes_out_right() {
    let (dir, good) = workspace();
    let title = "В Кремле оценили ход переговоров с Украиной";
    let body = "Пресс-секретарь Кремля Дмитрий Песков заявил, что Путин внимательно следит \
за переговорами с Украиной и что Москва готова обсуждать перемирие, если будут учтены её \
условия. По его словам, ответ на предложения Зеленского пока не подготовлен. Переговоры \
«в ближайшее время» не возобновятся — сообщили в Кремле.";
    let russian = format!("{title}\n\n{body}\n");
    let bytes = windows_1251(&russian);
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "test input is not windows-1251"
    );
    let bad = write(&dir, "kremlin-1251.txt", &bytes);

    let out = scan(&[&bad, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    assert_reported(&out, &bad, &["windows-1251"]);
    let items = out.items_of(&bad);
    assert!(
        !items.is_empty(),
        "the file was not scanned\nstderr:\n{}",
        out.err()
    );
    let text = all_text_of(&out, &bad);
    for words in [
        "В Кремле оценили ход переговоров с Украиной",
        "Путин внимательно следит",
        "ответ на предложения Зеленского пока не подготовлен",
        "её",
    ] {
        assert!(text.contains(words), "{words:?} is not in: {text}");
    }
    assert!(
        !text.contains('\u{FFFD}'),
        "replacement characters in: {text}"
    );
    let ids: Vec<String> = items.iter().flat_map(|i| entity_ids(i)).collect();
    for id in ["putin", "zelensky", "kremlin", "moscow", "ukraine"] {
        assert!(ids.iter().any(|i| i == id), "no {id} in {ids:?}");
    }
    assert_good(&out, &good);
}

#[test]
fn utf16_with_a_byte_order_mark_is_decoded() {
    let (dir, good) = workspace();
    let mut bytes = vec![0xFF, 0xFE];
    for unit in GOOD.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    // UTF-16 is full of NUL bytes; the byte-order mark must win over the binary sniff.
    let bom = write(&dir, "utf16.txt", &bytes);

    let out = scan(&[&bom, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    let text = all_text_of(&out, &bom);
    assert!(
        text.contains("Vladimir Putin"),
        "UTF-16 text not decoded: {text:?}\nstderr:\n{}",
        out.err()
    );
    assert_good(&out, &good);
}

#[test]
fn feed_with_invalid_utf8_and_no_declared_charset_is_still_read() {
    let (dir, good) = workspace();
    let mut bytes = b"<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel><title>t</title>\
<item><guid>g1</guid><title>Ceasefire talks \xFF resume</title>\
<description>Vladimir Putin discussed a ceasefire\xE2\x80 with Ukraine.</description></item>\
</channel></rss>\n"
        .to_vec();
    bytes.extend_from_slice(b"\n");
    let feed = write(&dir, "latin-feed.xml", &bytes);

    let out = scan(&[&feed, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    assert_reported(&out, &feed, &["utf-8", "utf8"]);
    let items = out.items_of(&feed);
    assert_eq!(items.len(), 1, "stderr:\n{}", out.err());
    assert_eq!(items[0]["kind"], "feed");
    assert!(
        entity_ids(items[0]).iter().any(|i| i == "putin"),
        "{}",
        items[0]
    );
    assert_good(&out, &good);
}

// ---------------------------------------------------------------------------
// Size
// ---------------------------------------------------------------------------

#[test]
fn a_50_mb_text_file_is_scanned_in_bounded_time() {
    let (dir, good) = workspace();
    let path = dir.path().join("huge.txt");
    let paragraphs = [
        "KYIV, March 14 (Newswire) - Russian President Vladimir Putin said on Friday that \
Moscow was ready in principle to discuss a ceasefire in Ukraine, but that several conditions \
would first have to be met, according to a Kremlin statement published after talks with envoys.",
        "Ukrainian President Volodymyr Zelensky told reporters in Kyiv that any truce must be \
accompanied by security guarantees, and that Ukraine would not accept a freeze that allowed \
Russia to regroup its forces along the front line in Donetsk and Zaporizhzhia.",
        "Markets reacted cautiously. Oil prices edged higher in Asian trading while European gas \
futures fell for a third day as traders weighed the chances of a lasting peace deal, analysts \
at several banks said in notes to clients.",
        "The talks, expected to resume next week in Istanbul, would be the first direct \
negotiations between the two sides since the spring. Officials on both sides cautioned that \
a breakthrough was unlikely in the first round.",
    ];
    const TARGET: u64 = 50 * 1024 * 1024;
    {
        let mut file = std::io::BufWriter::new(fs::File::create(&path).expect("create"));
        file.write_all(b"Ceasefire talks: the full record\n\n")
            .expect("write");
        let mut written = 0u64;
        let mut n = 0usize;
        // Bounded: every pass writes at least one paragraph.
        while written < TARGET {
            let para = format!("(Update {n}) {}\n\n", paragraphs[n % paragraphs.len()]);
            file.write_all(para.as_bytes()).expect("write");
            written += para.len() as u64;
            n += 1;
        }
        file.flush().expect("flush");
    }
    let size = fs::metadata(&path).expect("metadata").len();
    assert!(size >= TARGET);

    let out = run_within(
        newswatch()
            .arg("scan")
            .arg("--config")
            .arg(default_config())
            .arg(&path)
            .arg(&good),
        BIG_LIMIT,
    );
    eprintln!(
        "hostile: scanning a {:.1} MB text file took {:.1?}",
        size as f64 / 1e6,
        out.elapsed
    );
    assert_sane(&out);
    assert_code(&out, 0);
    let items = out.items_of(&path);
    assert!(
        (1..=10).contains(&items.len()),
        "{} items from one 50 MB article\nstderr:\n{}",
        items.len(),
        out.err()
    );
    let chars: u64 = items
        .iter()
        .map(|i| i["text_length"].as_u64().expect("text_length"))
        .sum();
    assert!(
        chars >= size * 8 / 10,
        "only {chars} characters of text kept from {size} bytes"
    );
    let putin = items.iter().find_map(|i| entity(i, "putin"));
    assert!(putin.is_some(), "putin not found in a 50 MB text about him");
    // The good file has no --text here; check its findings only.
    let good_items = out.items_of(&good);
    assert!(!good_items.is_empty(), "good file not scanned");
    assert!(entity_ids(good_items[0]).iter().any(|i| i == "putin"));
}

#[test]
fn a_single_5_mb_line_without_spaces_is_scanned_in_bounded_time() {
    let (dir, good) = workspace();
    let mut text = String::from("Putin ceasefire ");
    text.push_str(&"x".repeat(5 * 1024 * 1024));
    text.push_str(" Zelensky\n");
    let long = write(&dir, "one-line.txt", text.as_bytes());

    let out = scan(&[&long, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    assert!(
        !out.items_of(&long).is_empty() || !out.messages_about(&long).is_empty(),
        "the file was neither scanned nor reported"
    );
    assert_good(&out, &good);
}

#[test]
fn a_million_short_lines_are_scanned_in_bounded_time() {
    // Menu and caption detection look at runs of short lines: make sure a run of a
    // million costs linear time, not quadratic.
    let (dir, good) = workspace();
    let mut text = String::from("Putin and Zelensky discuss a ceasefire\n\n");
    for i in 0..1_000_000u32 {
        text.push_str(if i % 2 == 0 { "Home\n" } else { "News\n" });
    }
    let lines = write(&dir, "lines.txt", text.as_bytes());

    let out = scan(&[&lines, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    assert_good(&out, &good);
}

#[test]
fn ten_thousand_separated_articles_give_ten_thousand_items() {
    let (dir, good) = workspace();
    let mut text = String::new();
    for i in 0..10_000 {
        if i > 0 {
            text.push_str("\n==========\n");
        }
        text.push_str(&format!(
            "Article {i} on the talks\n\nVladimir Putin spoke about a ceasefire in article {i}.\n"
        ));
    }
    let many = write(&dir, "many.txt", text.as_bytes());

    let out = scan(&[&many, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    let items = out.items_of(&many);
    assert_eq!(items.len(), 10_000, "stderr:\n{}", out.err());
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["index"], i, "{item}");
    }
    assert_good(&out, &good);
}

// ---------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------

#[test]
fn unclosed_tag_soup_html_is_scanned_as_html() {
    let (dir, good) = workspace();
    let soup = r#"<html><head><title>Ceasefire talks resume</title><body>
<div class=nav><ul><li><a href=/>Home<li><a href=/world>World</ul>
<div><p>Russian President Vladimir Putin said Moscow was ready to discuss a <b>ceasefire <i>with Ukraine.
<p>Ukrainian President Volodymyr <span>Zelensky</div></b> welcomed the <table><tr><td>offer<td>but <font>said</table> Kyiv needs guarantees.
<script>var s = "<p>not text</p>"; if (a < b && c > d) { document.write("</script>") }</script>
<style>p { color: red }</style>
<p>Talks are &amp expected &#x41; &#99999999; &bogus; in <a href="x>Istanbul <![CDATA[ never closed
<p>Next week <!-- a comment that never ends
"#;
    let html = write(&dir, "soup.html", soup.as_bytes());

    let out = run_within(
        newswatch()
            .arg("scan")
            .arg("--text")
            .arg("--explain")
            .arg("--config")
            .arg(default_config())
            .arg(&html)
            .arg(&good),
        LIMIT,
    );
    assert_sane(&out);
    assert_code(&out, 0);
    let items = out.items_of(&html);
    assert!(!items.is_empty(), "no items\nstderr:\n{}", out.err());
    assert_eq!(items[0]["kind"], "html");
    let text = all_text_of(&out, &html);
    assert!(
        text.contains("Vladimir Putin") && text.contains("ceasefire"),
        "{text}"
    );
    for markup in ["<p>", "<div", "</b>", "var s =", "color: red"] {
        assert!(
            !text.contains(markup),
            "{markup:?} left in the text: {text}"
        );
    }
    assert_good(&out, &good);
}

#[test]
fn a_sentence_cut_into_short_lines_by_tag_soup_is_not_dropped_as_a_menu() {
    // A table inside a paragraph, or <br>s, cut one sentence into short lines
    // that look like menu entries; the words (and the entity) must survive.
    let (dir, good) = workspace();
    let table = write(
        &dir,
        "table-in-sentence.html",
        b"<html><body><h1>Talks</h1><p>Russian President Vladimir Putin said Moscow was ready \
to discuss a ceasefire with Ukraine.<p>Ukrainian President Volodymyr <span>Zelensky</div></b> \
welcomed the <table><tr><td>offer<td>but <font>said</table> Kyiv needs guarantees.",
    );
    let breaks = write(
        &dir,
        "br-in-sentence.html",
        b"<html><body><h1>Talks</h1><p>Putin said Moscow was ready to discuss a ceasefire with \
Ukraine.</p><p>Zelensky welcomed<br>the offer<br>but said<br>Kyiv needs guarantees.</p>",
    );

    let out = scan(&[&table, &breaks, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    for path in [&table, &breaks] {
        let text = all_text_of(&out, path);
        assert!(
            text.contains("Zelensky") && text.contains("welcomed"),
            "{}: the sentence about Zelensky was dropped: {text:?}",
            path.display()
        );
        let ids: Vec<String> = out
            .items_of(path)
            .iter()
            .flat_map(|i| entity_ids(i))
            .collect();
        assert!(ids.iter().any(|i| i == "zelensky"), "{ids:?}");
    }
    assert_good(&out, &good);
}

#[test]
fn a_tag_soup_page_title_is_not_its_first_menu_link() {
    let (dir, good) = workspace();
    let page = write(
        &dir,
        "nav.html",
        b"<html><head><title>Ceasefire talks resume</title><body>\
<div class=nav><ul><li><a href=/>Home<li><a href=/world>World</ul>\
<div><p>Russian President Vladimir Putin said Moscow was ready to discuss a ceasefire.",
    );

    let out = scan(&[&page, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    let items = out.items_of(&page);
    assert!(!items.is_empty(), "stderr:\n{}", out.err());
    let title = items[0]["title"].as_str().unwrap_or("");
    assert!(
        title.contains("Ceasefire talks resume") || title.contains("Vladimir Putin"),
        "title {title:?} of {}",
        items[0]
    );
    assert_good(&out, &good);
}

/// `<tag>` repeated `depth` times around an article, closed or not.
fn nested(open: &str, close: &str, depth: usize, closed: bool) -> String {
    let mut html = String::from("<!DOCTYPE html><html><body>");
    html.push_str(&open.repeat(depth));
    html.push_str("<p>Vladimir Putin agreed to discuss a ceasefire with Ukraine.</p>");
    if closed {
        html.push_str(&close.repeat(depth));
    }
    html.push_str("</body></html>\n");
    html
}

fn assert_deep_html_survives(name: &str, html: &str) {
    let (dir, good) = workspace();
    let deep = write(&dir, name, html.as_bytes());
    let out = scan(&[&deep, &good]);
    eprintln!("hostile: {name} took {:.1?}", out.elapsed);
    assert_sane(&out);
    assert_code(&out, 0);
    let text = all_text_of(&out, &deep);
    assert!(
        text.contains("ceasefire"),
        "the article inside the nest was lost: {}\nstderr:\n{}",
        shorten(&text, 300),
        out.err()
    );
    assert_good(&out, &good);
}

#[test]
fn a_100000_deep_nest_of_closed_divs_does_not_overflow_the_stack() {
    assert_deep_html_survives(
        "deep-closed.html",
        &nested("<div>", "</div>", 100_000, true),
    );
}

#[test]
fn a_100000_deep_nest_of_unclosed_divs_does_not_overflow_the_stack() {
    assert_deep_html_survives("deep-open.html", &nested("<div>", "</div>", 100_000, false));
}

#[test]
fn a_100000_deep_nest_of_inline_tags_does_not_overflow_the_stack() {
    assert_deep_html_survives(
        "deep-inline.html",
        &nested("<span>", "</span>", 100_000, true),
    );
}

#[test]
fn html_served_as_feed_xml_is_treated_as_html() {
    let (dir, good) = workspace();
    let page = "<!DOCTYPE html>\n<html><head><title>World news</title></head><body>\
<h1>Ceasefire talks resume</h1><p>Russian President Vladimir Putin said a ceasefire with \
Ukraine could be discussed next week.</p></body></html>\n";
    let feed = write(&dir, "feed.xml", page.as_bytes());
    let page_without_doctype = page.replace("<!DOCTYPE html>\n", "");
    let feed2 = write(&dir, "rss.xml", page_without_doctype.as_bytes());

    let out = scan(&[&feed, &feed2, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    for path in [&feed, &feed2] {
        let items = out.items_of(path);
        assert!(
            !items.is_empty(),
            "{}: no items\nstderr:\n{}",
            path.display(),
            out.err()
        );
        assert_eq!(items[0]["kind"], "html", "{}", items[0]);
        let text = all_text_of(&out, path);
        assert!(text.contains("Vladimir Putin"), "{text}");
        assert!(!text.contains("<p>"), "markup left: {text}");
        assert!(
            entity_ids(items[0]).iter().any(|i| i == "putin"),
            "{}",
            items[0]
        );
    }
    assert_good(&out, &good);
}

#[test]
fn html_without_any_text_is_reported_not_printed_as_an_empty_item() {
    let (dir, good) = workspace();
    let empty = write(
        &dir,
        "blank.html",
        b"<!DOCTYPE html><html><head><script>var x = 1;</script></head><body>\
<div><img src=a.png></div></body></html>\n",
    );

    let out = scan(&[&empty, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    let items = out.items_of(&empty);
    assert!(
        items.is_empty(),
        "an empty item was printed: {:?}",
        items.first()
    );
    assert_reported(&out, &empty, &["no articles", "no text", "empty"]);
    assert_good(&out, &good);
}

// ---------------------------------------------------------------------------
// Empty input, missing files
// ---------------------------------------------------------------------------

#[test]
fn empty_and_whitespace_only_files_are_reported_and_skipped_with_exit_0() {
    let (dir, good) = workspace();
    let empty = write(&dir, "empty.txt", b"");
    let blank = write(&dir, "blank.txt", b"  \n\t\n   \r\n\x0c\n");
    let bom_only = write(&dir, "bom.txt", b"\xEF\xBB\xBF \n");

    let out = scan(&[&empty, &blank, &good, &bom_only]);
    assert_sane(&out);
    assert_code(&out, 0);
    for path in [&empty, &blank, &bom_only] {
        assert_reported(&out, path, &["empty", "blank", "no text", "whitespace"]);
        assert!(
            out.items_of(path).is_empty(),
            "items from {}",
            path.display()
        );
    }
    assert_good(&out, &good);
}

#[test]
fn missing_file_and_directory_exit_1_and_the_good_file_is_still_scanned() {
    let (dir, good) = workspace();
    let missing = dir.path().join("missing.txt");
    let folder = dir.path().join("folder");
    fs::create_dir(&folder).expect("mkdir");

    let out = scan(&[&missing, &folder, &good]);
    assert_sane(&out);
    assert_code(&out, 1);
    assert_reported(
        &out,
        &missing,
        &["no such file", "not found", "does not exist"],
    );
    assert_reported(&out, &folder, &["directory"]);
    assert_good(&out, &good);
}

#[test]
fn source_is_the_path_as_given_when_relative() {
    let (dir, _good) = workspace();
    let out = run_within(
        newswatch()
            .current_dir(dir.path())
            .arg("scan")
            .arg("--text")
            .arg("--config")
            .arg(default_config())
            .arg("nope.txt")
            .arg("good.txt"),
        LIMIT,
    );
    assert_sane(&out);
    assert_code(&out, 1);
    assert_reported(
        &out,
        Path::new("nope.txt"),
        &["no such file", "not found", "does not exist"],
    );
    assert_good(&out, Path::new("good.txt"));
}

#[cfg(unix)]
#[test]
fn unreadable_file_exits_1_and_the_good_file_is_still_scanned() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, good) = workspace();
    let locked = write(&dir, "locked.txt", GOOD.as_bytes());
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    if fs::read(&locked).is_ok() {
        eprintln!("hostile: running with permission to read mode-000 files (root?); skipped");
        return;
    }
    let out = scan(&[&locked, &good]);
    assert_sane(&out);
    assert_code(&out, 1);
    assert_reported(&out, &locked, &["permission denied"]);
    assert_good(&out, &good);
}

// ---------------------------------------------------------------------------
// Feeds
// ---------------------------------------------------------------------------

#[test]
fn a_truncated_rss_feed_is_reported_or_read_best_effort() {
    let (dir, good) = workspace();
    let broken = write(
        &dir,
        "broken.xml",
        b"<rss version=\"2.0\"><channel><item><title>x",
    );
    let cut = write(
        &dir,
        "cut.xml",
        b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>\
<item><title>Putin backs ceasefire talks</title><description>Vladimir Putin said",
    );

    let out = scan(&[&broken, &cut, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    for path in [&broken, &cut] {
        assert!(
            !out.items_of(path).is_empty()
                || out
                    .messages_about(path)
                    .iter()
                    .any(|l| l.to_lowercase().contains("feed")),
            "{}: neither items nor a message about the feed\nstderr:\n{}",
            path.display(),
            out.err()
        );
    }
    assert_good(&out, &good);
}

#[test]
fn a_truncated_json_feed_is_reported() {
    let (dir, good) = workspace();
    let broken = write(
        &dir,
        "feed.json",
        br#"{"version": "https://jsonfeed.org/version/1.1", "title": "x", "items": [{"id": "1", "title": "Putin cease"#,
    );

    let out = scan(&[&broken, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    assert_reported(&out, &broken, &["feed", "json"]);
    assert_good(&out, &good);
}

/// The inputs of issue 17, each of which panicked at a fixed-length byte slice that
/// ended inside a character: a Japanese title (`nests_deeper_than`), a Cyrillic Atom
/// author, `<?xml ééé?>` (`first_element`) and a `<` in an attribute value right
/// before Japanese text (the repair pass). Each is read whole, and the file after
/// each one is still scanned.
#[test]
fn feeds_with_non_ascii_right_after_a_tag_are_read_and_the_next_file_scanned() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inputs = [
        (
            "title.xml",
            "<rss version=\"2.0\"><channel><title>News</title><item><title>東京で停戦交渉</title></item></channel></rss>",
            "東京で停戦交渉",
        ),
        (
            "author.xml",
            "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>t</title><id>urn:x</id>\
             <updated>2025-03-14T10:00:00Z</updated><entry><title>Talks resume</title><id>urn:x:1</id>\
             <updated>2025-03-14T10:00:00Z</updated><author><name>Иван Петров</name></author></entry></feed>",
            "Talks resume",
        ),
        (
            "declaration.xml",
            "<?xml ééé?><rss version=\"2.0\"><channel><title>t</title><item><title>Déclaration</title></item></channel></rss>",
            "Déclaration",
        ),
        (
            "attribute.xml",
            "<rss version=\"2.0\"><channel><title>t</title><item><title>Photos</title>\
             <enclosure url=\"https://example.org/a.jpg\" type=\"image/jpeg\" length=\"1\" title=\"a<東京の写真\"/>\
             </item></channel></rss>",
            "Photos",
        ),
    ];
    let mut files = Vec::new();
    for (i, (name, text, _)) in inputs.iter().enumerate() {
        files.push(write(&dir, name, text.as_bytes()));
        files.push(write(&dir, &format!("good-{i}.txt"), GOOD.as_bytes()));
    }
    let out = scan(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    assert_sane(&out);
    assert_code(&out, 0);
    for (pair, (_, _, title)) in files.chunks(2).zip(inputs) {
        let items = out.items_of(&pair[0]);
        assert_eq!(
            items.len(),
            1,
            "{}\nstderr:\n{}",
            pair[0].display(),
            out.err()
        );
        assert_eq!(items[0]["title"], title);
        assert_good(&out, &pair[1]);
    }
}

#[test]
fn an_rss_feed_with_10000_items_gives_10000_lines() {
    let (dir, good) = workspace();
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel>\
<title>Big</title><link>https://example.org/</link><description>d</description>\n",
    );
    for i in 0..10_000 {
        xml.push_str(&format!(
            "<item><guid>id-{i}</guid><title>Item {i}: ceasefire talks</title>\
<link>https://example.org/{i}</link><pubDate>Fri, 14 Mar 2025 10:00:00 GMT</pubDate>\
<description>&lt;p&gt;Vladimir Putin and Volodymyr Zelensky, item {i}.&lt;/p&gt;</description></item>\n"
        ));
    }
    xml.push_str("</channel></rss>\n");
    let feed = write(&dir, "big.xml", xml.as_bytes());

    let out = scan(&[&feed, &good]);
    eprintln!("hostile: the 10,000-item feed took {:.1?}", out.elapsed);
    assert_sane(&out);
    assert_code(&out, 0);
    let items = out.items_of(&feed);
    assert_eq!(items.len(), 10_000, "stderr:\n{}", out.err());
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["index"], i, "{item}");
        assert_eq!(item["kind"], "feed", "{item}");
        assert_eq!(
            item["title"],
            format!("Item {i}: ceasefire talks"),
            "{item}"
        );
    }
    assert!(topic_ids(items[9_999])
        .iter()
        .any(|t| t == "ceasefire-talks"));
    assert_good(&out, &good);
}

#[test]
fn a_feed_with_100000_nested_xml_elements_does_not_crash() {
    let (dir, good) = workspace();
    let mut xml = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>\
<item><guid>g1</guid><title>Putin backs ceasefire</title><x:deep xmlns:x=\"urn:x\">",
    );
    xml.push_str(&"<x:a>".repeat(100_000));
    xml.push_str(&"</x:a>".repeat(100_000));
    xml.push_str(
        "</x:deep><description>Vladimir Putin said a ceasefire was near.</description></item>\
</channel></rss>\n",
    );
    let feed = write(&dir, "deep.xml", xml.as_bytes());

    let out = scan(&[&feed, &good]);
    eprintln!("hostile: the deep XML feed took {:.1?}", out.elapsed);
    assert_sane(&out);
    assert_code(&out, 0);
    assert!(
        !out.items_of(&feed).is_empty() || !out.messages_about(&feed).is_empty(),
        "the feed was neither scanned nor reported"
    );
    assert_good(&out, &good);
}

#[test]
fn a_feed_item_with_a_100000_deep_html_body_does_not_overflow_the_stack() {
    let (dir, good) = workspace();
    let mut xml = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>\
<item><guid>g1</guid><title>Putin backs ceasefire</title><description>",
    );
    xml.push_str(&"&lt;div&gt;".repeat(100_000));
    xml.push_str("Vladimir Putin said a ceasefire was near.");
    xml.push_str("</description></item></channel></rss>\n");
    let feed = write(&dir, "deep-body.xml", xml.as_bytes());

    let out = scan(&[&feed, &good]);
    eprintln!("hostile: the deep HTML feed body took {:.1?}", out.elapsed);
    assert_sane(&out);
    assert_code(&out, 0);
    let items = out.items_of(&feed);
    assert_eq!(items.len(), 1, "stderr:\n{}", out.err());
    assert!(
        text_of(items[0]).contains("ceasefire was near"),
        "{}",
        shorten(text_of(items[0]), 300)
    );
    assert_good(&out, &good);
}

#[test]
fn an_entity_expansion_bomb_in_a_feed_is_not_expanded() {
    let (dir, good) = workspace();
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE rss [\n<!ENTITY lol \"lol\">\n");
    for level in 1..=9 {
        let prev = if level == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", level - 1)
        };
        xml.push_str(&format!(
            "<!ENTITY lol{level} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    xml.push_str(
        "]>\n<rss version=\"2.0\"><channel><title>&lol9;</title><item><guid>g</guid>\
<title>Putin &lol9;</title><description>ceasefire &lol9;</description></item></channel></rss>\n",
    );
    let bomb = write(&dir, "bomb.xml", xml.as_bytes());

    let out = scan(&[&bomb, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    let text = all_text_of(&out, &bomb);
    assert!(
        text.len() < 1_000_000,
        "entities were expanded: {} bytes of text",
        text.len()
    );
    assert!(
        !out.items_of(&bomb).is_empty() || !out.messages_about(&bomb).is_empty(),
        "the feed was neither scanned nor reported"
    );
    assert_good(&out, &good);
}

#[test]
fn an_rss_feed_with_an_internal_dtd_subset_is_not_mistaken_for_html() {
    // `<!DOCTYPE rss [ ... ]>`: the `>` of the first declaration inside the
    // brackets is not the end of the doctype.
    let (dir, good) = workspace();
    let feed = write(
        &dir,
        "dtd.xml",
        b"<?xml version=\"1.0\"?>\n<!DOCTYPE rss [\n<!ENTITY nbsp \"&#160;\">\n]>\n\
<rss version=\"2.0\"><channel><title>t</title><item><guid>g1</guid>\
<title>Putin&nbsp;backs ceasefire</title>\
<description>Vladimir Putin said a ceasefire was near.</description></item></channel></rss>\n",
    );

    let out = scan(&[&feed, &good]);
    assert_sane(&out);
    assert_code(&out, 0);
    let items = out.items_of(&feed);
    for item in &items {
        assert_eq!(item["kind"], "feed", "an RSS feed read as {item}");
    }
    assert!(
        items
            .first()
            .is_some_and(|i| i["title"] == "Putin backs ceasefire")
            || out
                .messages_about(&feed)
                .iter()
                .any(|l| l.to_lowercase().contains("feed")),
        "neither the item nor a message about the feed; items: {items:?}\nstderr:\n{}",
        out.err()
    );
    assert_good(&out, &good);
}

// ---------------------------------------------------------------------------
// stdin
// ---------------------------------------------------------------------------

#[test]
fn stdin_dash_is_scanned_as_text_with_source_dash() {
    let (_dir, good) = workspace();
    let out = run_bounded(
        newswatch()
            .arg("scan")
            .arg("--text")
            .arg("--config")
            .arg(default_config())
            .arg("-")
            .arg(&good),
        Input::Bytes(GOOD.as_bytes()),
        LIMIT,
    );
    assert_sane(&out);
    assert_code(&out, 0);
    assert_good(&out, Path::new("-"));
    assert_good(&out, &good);
}

#[test]
fn binary_on_stdin_is_reported_as_dash_and_skipped() {
    let (_dir, good) = workspace();
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(noise(10_000, 5));
    let out = run_bounded(
        newswatch()
            .arg("scan")
            .arg("--config")
            .arg(default_config())
            .arg("-")
            .arg(&good),
        Input::Bytes(&png),
        LIMIT,
    );
    assert_sane(&out);
    assert_code(&out, 0);
    assert_reported(&out, Path::new("-"), &["binary"]);
    assert!(out.items_of(Path::new("-")).is_empty());
    assert!(!out.items_of(&good).is_empty(), "good file not scanned");
}

#[test]
fn empty_stdin_is_reported_as_dash() {
    let (_dir, good) = workspace();
    let out = run_bounded(
        newswatch()
            .arg("scan")
            .arg("--config")
            .arg(default_config())
            .arg("-")
            .arg(&good),
        Input::Bytes(b""),
        LIMIT,
    );
    assert_sane(&out);
    assert_code(&out, 0);
    assert_reported(&out, Path::new("-"), &["empty"]);
    assert!(!out.items_of(&good).is_empty(), "good file not scanned");
}

// ---------------------------------------------------------------------------
// Broken configs (a config with many errors, each named by `check` and `scan`, is in
// tests/check.rs)
// ---------------------------------------------------------------------------

#[test]
fn minimal_config_used_by_these_tests_is_valid() {
    let (_cfg_dir, config) = config_with_query("ceasefire AND @putin");
    let out = check(&config);
    assert_no_crash(&out);
    assert_code(&out, 0);
}

#[test]
fn unclosed_group_in_a_query_fails_check_and_scan_with_exit_2_and_a_column() {
    let (_dir, good) = workspace();
    let (_cfg_dir, config) = config_with_query("(ceasefire AND");

    let out = check(&config);
    assert_no_crash(&out);
    assert_code(&out, 2);
    assert_config_error_with_column(&out, &config, "topics[0].query");

    let out = scan_with(&config, &[&good]);
    assert_sane(&out);
    assert_code(&out, 2);
    assert_config_error_with_column(&out, &config, "topics[0].query");
    assert!(
        out.items.is_empty(),
        "scan printed items with a broken config"
    );
}

#[test]
fn unknown_entity_in_a_query_fails_check_and_scan_with_exit_2_and_its_column() {
    let (_dir, good) = workspace();
    let (_cfg_dir, config) = config_with_query("ceasefire @nobody");

    let out = check(&config);
    assert_no_crash(&out);
    assert_code(&out, 2);
    assert_config_error_with_column(&out, &config, "topics[0].query");
    assert!(
        out.stderr.contains("column 11") && out.stderr.contains("nobody"),
        "the error should point at @nobody (column 11):\n{}",
        out.err()
    );

    let out = scan_with(&config, &[&good]);
    assert_sane(&out);
    assert_code(&out, 2);
    assert_config_error_with_column(&out, &config, "topics[0].query");
    assert!(
        out.items.is_empty(),
        "scan printed items with a broken config"
    );
}

#[test]
fn absurdly_deep_queries_are_config_errors_not_stack_overflows() {
    let deep_groups = format!("{}ceasefire{}", "(".repeat(20_000), ")".repeat(20_000));
    let deep_nots = format!("{}ceasefire", "NOT ".repeat(20_000));
    let near_chain = format!("ceasefire{}", " NEAR/3 truce".repeat(5_000));
    let unclosed = "(".repeat(20_000);
    let config_text = format!(
        r#"
[[entities]]
id = "putin"
kind = "person"
name = "Vladimir Putin"

[[sinks]]
id = "log"
kind = "log"

[[topics]]
id = "groups"
query = '{deep_groups}'
sinks = ["log"]

[[topics]]
id = "nots"
query = '{deep_nots}'
sinks = ["log"]

[[topics]]
id = "near"
query = '{near_chain}'
sinks = ["log"]

[[topics]]
id = "unclosed"
query = '{unclosed}'
sinks = ["log"]
"#
    );
    let (_cfg_dir, config) = temp_config(&config_text);

    let out = check(&config);
    assert_no_crash(&out);
    assert_code(&out, 2);
    for i in 0..4 {
        assert_config_error_with_column(&out, &config, &format!("topics[{i}].query"));
    }
}

#[test]
fn a_query_of_20000_ored_words_is_accepted_and_scans_quickly() {
    let (_dir, good) = workspace();
    let words: Vec<String> = (0..20_000).map(|i| format!("word{i}")).collect();
    let query = format!("({} OR ceasefire) AND @putin", words.join(" OR "));
    let (_cfg_dir, config) = config_with_query(&query);

    let out = scan_with(&config, &[&good]);
    assert_sane(&out);
    assert_code(&out, 0);
    let items = out.items_of(&good);
    assert!(!items.is_empty(), "stderr:\n{}", out.err());
    assert!(topic_ids(items[0]).iter().any(|t| t == "t"), "{}", items[0]);
}
