//! Article extraction on the evaluation pages of tests/fixtures/extraction: for each
//! page the token F1 (`pipeline::clean::token_f1`) of the cleaned article body against
//! the page's expected text, beside a naive tag strip (every text node of the page
//! but scripts and styles) and the time to extract. Prints the table and the means
//! that BENCHMARKS.md reports:
//!
//!     cargo run --release --example extraction
//!
//! tests/extraction.rs holds the mean to its target; benches/extract.rs times the
//! extractor with criterion.

use std::path::Path;
use std::time::Instant;

use newswatch::parse;
use newswatch::pipeline::clean::{token_f1, Cleaner};
use scraper::{Html, Node};

fn naive_strip(html: &str) -> String {
    let doc = Html::parse_document(html);
    let mut out = String::new();
    for node in doc.tree.nodes() {
        if let Node::Text(text) = node.value() {
            let inside_code = node.parent().is_some_and(|p| {
                matches!(p.value(), Node::Element(e) if matches!(e.name(), "script" | "style" | "noscript" | "template"))
            });
            if !inside_code {
                out.push_str(text);
                out.push(' ');
            }
        }
    }
    out
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/extraction");
    let mut pages: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/extraction")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    pages.sort();
    let cleaner = Cleaner::new(Vec::new(), Vec::new());
    let (mut ours, mut naive, mut n) = (0.0, 0.0, 0.0);
    println!("| page | KB | F1 | naive F1 | extract ms |");
    println!("|---|---:|---:|---:|---:|");
    for page in pages {
        let bytes = std::fs::read(page.join("page.html")).expect("page.html");
        let html = parse::decode(&bytes, None).expect("decodes").text;
        let expected = std::fs::read_to_string(page.join("expected.txt")).expect("expected.txt");
        let start = Instant::now();
        let articles = cleaner.clean_document(&html, true);
        let took = start.elapsed();
        let body = articles.first().map(|a| a.body.as_str()).unwrap_or("");
        let f1 = token_f1(body, &expected);
        let base = token_f1(&naive_strip(&html), &expected);
        ours += f1;
        naive += base;
        n += 1.0;
        println!(
            "| {} | {} | {f1:.3} | {base:.3} | {:.2} |",
            page.file_name().unwrap().to_string_lossy(),
            bytes.len() / 1024,
            took.as_secs_f64() * 1e3
        );
    }
    println!(
        "mean token F1 over {n} pages: {:.3} (naive tag strip {:.3})",
        ours / n,
        naive / n
    );
}
