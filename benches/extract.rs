//! Article extraction speed: `pipeline::clean::extract_article` on the real pages of
//! tests/fixtures/extraction between 150 and 300 KB (the bar: 2 ms for a
//! 200 KB page), and `Cleaner::clean_document` (extraction, normalisation and the
//! line rules, what `scan` does to a page) on the same pages. Beside them, in the
//! same run: html5ever's tokenizer alone (`tokenize_only`), the floor under the
//! extractor, and html5ever's full tree through scraper (`parse_only`), the floor
//! under the extractor before it had its own tree (src/pipeline/clean/tree.rs).
//! Quality figures come from `cargo run --release --example extraction`; both are in
//! BENCHMARKS.md.
//!
//!     cargo bench --bench extract

use std::path::Path;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use newswatch::parse;
use newswatch::pipeline::clean::{extract_article, Cleaner};

fn pages() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/extraction");
    let mut pages = Vec::new();
    for entry in std::fs::read_dir(dir)
        .expect("tests/fixtures/extraction")
        .flatten()
    {
        let Ok(bytes) = std::fs::read(entry.path().join("page.html")) else {
            continue;
        };
        if (150_000..300_000).contains(&bytes.len()) {
            let html = parse::decode(&bytes, None).expect("decodes").text;
            pages.push((entry.file_name().to_string_lossy().into_owned(), html));
        }
    }
    pages.sort();
    pages
}

/// Counts tokens, so that the tokenizer's work is not optimised away. Raw text is
/// switched on as a tree builder does, so scripts cost what they cost the extractor.
#[derive(Default)]
struct CountingSink(usize);

impl TokenSink for CountingSink {
    type Handle = ();

    fn process_token(&mut self, token: Token, _line: u64) -> TokenSinkResult<()> {
        self.0 += 1;
        use html5ever::tokenizer::states::RawKind;
        match token {
            Token::TagToken(tag) if tag.kind == html5ever::tokenizer::TagKind::StartTag => {
                match &*tag.name {
                    "script" => TokenSinkResult::RawData(RawKind::ScriptData),
                    "style" | "noscript" | "iframe" | "xmp" => {
                        TokenSinkResult::RawData(RawKind::Rawtext)
                    }
                    "title" | "textarea" => TokenSinkResult::RawData(RawKind::Rcdata),
                    _ => TokenSinkResult::Continue,
                }
            }
            _ => TokenSinkResult::Continue,
        }
    }
}

fn tokenize(html: &str) -> usize {
    let mut tokenizer = Tokenizer::new(CountingSink::default(), TokenizerOpts::default());
    let mut input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&mut input);
    tokenizer.end();
    tokenizer.sink.0
}

fn benches(c: &mut Criterion) {
    let pages = pages();
    let cleaner = Cleaner::new(Vec::new(), Vec::new());
    let mut group = c.benchmark_group("extract");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, html) in &pages {
        group.throughput(Throughput::Bytes(html.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("extract_article", name),
            html,
            |b, html| b.iter(|| black_box(extract_article(black_box(html)))),
        );
        group.bench_with_input(BenchmarkId::new("tokenize_only", name), html, |b, html| {
            b.iter(|| black_box(tokenize(black_box(html))))
        });
        // html5ever's tree, what the extractor built before tree.rs.
        group.bench_with_input(BenchmarkId::new("parse_only", name), html, |b, html| {
            b.iter(|| black_box(scraper::Html::parse_document(black_box(html))))
        });
        group.bench_with_input(BenchmarkId::new("clean_document", name), html, |b, html| {
            b.iter(|| black_box(cleaner.clean_document(black_box(html), true)))
        });
    }
    group.finish();
}

criterion_group!(extract, benches);
criterion_main!(extract);
