//! Article extraction speed: `pipeline::clean::extract_article` on the real pages of
//! tests/fixtures/extraction between 150 and 300 KB (the bar: 2 ms for a
//! 200 KB page), and `Cleaner::clean_document` (extraction, normalisation and the
//! line rules, what `scan` does to a page) on the same pages, and html5ever's parse
//! alone (`parse_only`), the floor under both. Quality figures come from
//! `cargo run --release --example extraction`; both are in BENCHMARKS.md.
//!
//!     cargo bench --bench extract

use std::path::Path;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
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
        // html5ever's parse alone, the floor under the extractor.
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
