//! HTML to text, streaming against the tree (issue 12): the cleaner's streaming pass
//! over html5ever's tokenizer (`html_to_text`), the html5ever tree walk it replaced
//! (`benches/clean_tree.rs`), and the bare cost of the tokenizer doing the least a
//! text extractor does (text out, a line break per block element). All on the same
//! generated feed items: ~1-2 KB of HTML with paragraphs, links, `strong`, character
//! references and figures with captions.
//!
//! `cargo bench --bench clean`. With `NEWSWATCH_CLEAN_DIFF=1` it also prints, for
//! every `.html` file under tests/fixtures, where the streaming cleaner's normalised
//! text differs from the tree walk's.

#[path = "clean_tree.rs"]
mod tree;

use std::path::Path;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use newswatch::pipeline::clean::{html_to_text, normalize};

const ITEMS: usize = 2_000;

/// A deterministic generator (xorshift), so every run times the same items.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "the",
    "council",
    "said",
    "on",
    "Tuesday",
    "that",
    "talks",
    "would",
    "continue",
    "after",
    "officials",
    "met",
    "in",
    "the",
    "capital",
    "government",
    "minister",
    "ceasefire",
    "report",
    "police",
    "company",
    "shares",
    "rose",
    "market",
    "percent",
    "week",
    "city",
    "bridge",
    "river",
    "election",
    "vote",
    "court",
    "ruled",
    "against",
    "plan",
    "budget",
    "schools",
    "weather",
];

fn sentence(rng: &mut Rng) -> String {
    let mut s = String::new();
    for i in 0..8 + rng.below(14) {
        if i > 0 {
            s.push(' ');
        }
        let word = WORDS[rng.below(WORDS.len())];
        match rng.below(30) {
            0 => s.push_str(&format!(
                "<a href=\"https://example.org/{word}\">{word} news</a>"
            )),
            1 => s.push_str(&format!("<strong>{word}</strong>")),
            2 => s.push_str("&amp;"),
            3 => s.push_str(&format!("&#8220;{word}&#8221;")),
            4 => s.push_str(&format!("{word}&nbsp;{word}")),
            5 => s.push_str(&format!("it&#8217;s {word}")),
            _ => s.push_str(word),
        }
    }
    s.push('.');
    s
}

fn item(rng: &mut Rng) -> String {
    let mut html = String::new();
    let target = 1_000 + rng.below(1_000);
    while html.len() < target {
        html.push_str("<p>");
        for _ in 0..1 + rng.below(3) {
            html.push_str(&sentence(rng));
            html.push(' ');
        }
        html.push_str("</p>\n");
        if rng.below(6) == 0 {
            html.push_str(
                "<figure><img src=\"https://example.org/a.jpg\" alt=\"A photo\"><figcaption>\
                 Smoke over the docks. (AP Photo/Jane Doe)</figcaption></figure>\n",
            );
        }
    }
    html
}

/// The least a text extractor does on html5ever's tokenizer.
#[derive(Default)]
struct BareSink {
    out: String,
    raw: usize,
}

impl TokenSink for BareSink {
    type Handle = ();

    fn process_token(&mut self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            Token::CharacterTokens(text) if self.raw == 0 => self.out.push_str(&text),
            Token::TagToken(tag) => {
                let raw = matches!(&*tag.name, "script" | "style");
                if matches!(
                    &*tag.name,
                    "p" | "div" | "li" | "br" | "figure" | "h1" | "h2"
                ) {
                    self.out.push('\n');
                }
                if raw && tag.kind == TagKind::StartTag {
                    self.raw += 1;
                    return TokenSinkResult::RawData(RawKind::Rawtext);
                }
                if raw {
                    self.raw = self.raw.saturating_sub(1);
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

fn bare_tokenizer(html: &str) -> String {
    let mut tokenizer = Tokenizer::new(BareSink::default(), TokenizerOpts::default());
    let mut input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&mut input);
    tokenizer.end();
    tokenizer.sink.out
}

/// Prints where the two cleaners' normalised texts differ on the HTML fixtures.
fn compare_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "html") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut differ = 0;
    for path in &files {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let html = String::from_utf8_lossy(&bytes);
        let old = normalize(&tree::html_to_text(&html));
        let new = normalize(&html_to_text(&html));
        if old != new {
            differ += 1;
            eprintln!("--- {} differs:", path.display());
            let old_lines: Vec<&str> = old.lines().collect();
            let new_lines: Vec<&str> = new.lines().collect();
            for line in &old_lines {
                if !new_lines.contains(line) {
                    eprintln!("  - {line}");
                }
            }
            for line in &new_lines {
                if !old_lines.contains(line) {
                    eprintln!("  + {line}");
                }
            }
        }
    }
    eprintln!(
        "fixtures: {differ} of {} HTML files give a different text",
        files.len()
    );
}

fn benches(c: &mut Criterion) {
    if std::env::var_os("NEWSWATCH_CLEAN_DIFF").is_some() {
        compare_fixtures();
    }
    let mut rng = Rng(0x5eed_c1ea);
    let items: Vec<String> = (0..ITEMS).map(|_| item(&mut rng)).collect();
    let bytes: usize = items.iter().map(String::len).sum();
    eprintln!("{ITEMS} items, {} bytes on average", bytes / ITEMS);

    let mut group = c.benchmark_group("html_to_text");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(ITEMS as u64));
    type ToText = fn(&str) -> String;
    let cases: [(&str, ToText); 3] = [
        ("stream", html_to_text),
        ("tree", tree::html_to_text),
        ("bare_tokenizer", bare_tokenizer),
    ];
    for (name, f) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                for html in &items {
                    black_box(f(black_box(html)));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(clean, benches);
criterion_main!(clean);
