//! Article extraction quality: the main text of 30 real news pages
//! (tests/fixtures/extraction, human-annotated article bodies) as `scan` and full text
//! read them, scored by token F1 against the annotation. BENCHMARKS.md has the
//! per-page figures (`cargo run --release --example extraction`).

use std::path::Path;

use newswatch::parse;
use newswatch::pipeline::clean::{token_f1, Cleaner};

/// The mean token F1 the extractor must keep (issue 13; a naive tag strip scores 0.64).
const TARGET: f64 = 0.90;

#[test]
fn the_main_text_of_real_news_pages_scores_a_mean_token_f1_of_at_least_0_90() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/extraction");
    let mut pages: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/extraction")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    pages.sort();
    assert!(pages.len() >= 20, "only {} evaluation pages", pages.len());
    let cleaner = Cleaner::new(Vec::new(), Vec::new());
    let mut scores = Vec::new();
    for page in &pages {
        let bytes = std::fs::read(page.join("page.html")).expect("page.html");
        let html = parse::decode(&bytes, None).expect("decodes").text;
        let expected = std::fs::read_to_string(page.join("expected.txt")).expect("expected.txt");
        let articles = cleaner.clean_document(&html, true);
        let body = articles.first().map(|a| a.body.as_str()).unwrap_or("");
        scores.push((
            page.file_name().unwrap().to_string_lossy().into_owned(),
            token_f1(body, &expected),
        ));
    }
    let mean = scores.iter().map(|(_, f)| f).sum::<f64>() / scores.len() as f64;
    assert!(
        mean >= TARGET,
        "mean token F1 {mean:.3} < {TARGET}: {scores:?}"
    );
}

#[test]
fn token_f1_counts_words_as_multisets() {
    assert_eq!(token_f1("The cat sat", "the CAT sat"), 1.0);
    assert_eq!(token_f1("", "anything"), 0.0);
    // 2 of 4 words right, both expected words found: precision 0.5, recall 1.
    let f = token_f1("cat sat on mats", "cat sat");
    assert!((f - 2.0 / 3.0).abs() < 1e-9, "{f}");
}
