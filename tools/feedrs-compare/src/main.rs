//! Reads every feed fixture under `tests/fixtures` with feed-rs 2 and feed-rs 3 and
//! says where they differ (entries and titles, or the error), then times both on the
//! same generated RSS 2.0 corpus, interleaved, three rounds. A panic in either version
//! is caught and reported as `PANIC`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

type Outcome = Result<(usize, String), String>;

fn feed_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            feed_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("xml" | "rdf" | "json" | "cdf" | "rss" | "atom")
        ) {
            out.push(path);
        }
    }
}

fn titles<'a>(titles: impl Iterator<Item = Option<&'a str>>) -> String {
    titles
        .map(|t| t.unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn read2(bytes: &[u8]) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| feed2::parser::parse(bytes))) {
        Ok(Ok(f)) => Ok((
            f.entries.len(),
            titles(
                f.entries
                    .iter()
                    .map(|e| e.title.as_ref().map(|t| t.content.as_str())),
            ),
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("PANIC".into()),
    }
}

fn read3(bytes: &[u8]) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| feed3::parser::parse(bytes))) {
        Ok(Ok(f)) => Ok((
            f.entries.len(),
            titles(
                f.entries
                    .iter()
                    .map(|e| e.title.as_ref().map(|t| t.content.as_str())),
            ),
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("PANIC".into()),
    }
}

fn brief(outcome: &Outcome) -> String {
    match outcome {
        Ok((n, _)) => format!("{n} entries"),
        Err(e) => format!("error: {}", e.chars().take(70).collect::<String>()),
    }
}

/// An RSS 2.0 feed of `items` news-like items with escaped HTML descriptions
/// (four paragraphs of about 40 words, a link each), from a fixed seed.
fn corpus(items: usize, seed: u64) -> String {
    const WORDS: &[&str] = &[
        "the",
        "talks",
        "ceasefire",
        "Kyiv",
        "minister",
        "said",
        "on",
        "Monday",
        "that",
        "a",
        "new",
        "round",
        "of",
        "negotiations",
        "would",
        "begin",
        "in",
        "Istanbul",
        "officials",
        "&amp;",
        "reported",
        "troops",
        "border",
        "agreement",
        "Russia",
        "Ukraine",
        "Putin",
        "Zelensky",
        "peace",
        "deal",
    ];
    let mut state = seed;
    let mut word = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        WORDS[(state >> 33) as usize % WORDS.len()]
    };
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>T</title><link>http://example.org/</link><description>d</description>\n",
    );
    for i in 0..items {
        let mut body = String::new();
        for _ in 0..4 {
            body.push_str("&lt;p&gt;");
            for _ in 0..40 {
                body.push_str(word());
                body.push(' ');
            }
            body.push_str("&lt;a href=\"http://example.org/z\"&gt;link&lt;/a&gt;&lt;/p&gt;");
        }
        xml.push_str(&format!(
            "<item><title>Item {i} {} {}</title><link>http://example.org/{i}</link>\
             <guid>http://example.org/{i}</guid><pubDate>Mon, 01 Dec 2026 10:{:02}:00 GMT</pubDate>\
             <category>World</category><description>{body}</description></item>\n",
            word(),
            word(),
            i % 60
        ));
    }
    xml.push_str("</channel></rss>\n");
    xml
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut files = Vec::new();
    feed_files(&root, &mut files);
    files.sort();
    let mut differ = 0;
    for path in &files {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let (two, three) = (read2(&bytes), read3(&bytes));
        let name = path.strip_prefix(&root).unwrap_or(path).display();
        if two == three {
            println!("same  {name}: {}", brief(&two));
        } else {
            differ += 1;
            println!("DIFF  {name}: v2 {} / v3 {}", brief(&two), brief(&three));
        }
    }
    println!("{} fixtures, {differ} read differently", files.len());

    let feeds: Vec<String> = (0..200).map(|seed| corpus(50, seed)).collect();
    let bytes: usize = feeds.iter().map(String::len).sum();
    for round in 1..=3 {
        let started = Instant::now();
        let items2: usize = feeds
            .iter()
            .map(|f| feed2::parser::parse(f.as_bytes()).map_or(0, |f| f.entries.len()))
            .sum();
        let two = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let items3: usize = feeds
            .iter()
            .map(|f| feed3::parser::parse(f.as_bytes()).map_or(0, |f| f.entries.len()))
            .sum();
        let three = started.elapsed().as_secs_f64();
        println!(
            "round {round}: {items2}/{items3} items, {:.1} MB: feed-rs 2 {:.1} µs an item, \
             feed-rs 3 {:.1} µs an item, 3 ÷ 2 = {:.3}",
            bytes as f64 / 1e6,
            two * 1e6 / items2.max(1) as f64,
            three * 1e6 / items3.max(1) as f64,
            three / two
        );
    }
}
