//! Text through the shipped config's pipeline (cleaning HTML and text, splitting,
//! matching, explain) as `scan` runs it on a file and the daemon on a feed item.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use newswatch::pipeline::Pipeline;

static PIPELINE: LazyLock<Pipeline> = LazyLock::new(|| {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/newswatch.toml");
    newswatch::config::load(&path)
        .expect("the shipped config")
        .pipeline()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let pipeline = &*PIPELINE;
    for processed in pipeline.process_document(text, true) {
        let _ = pipeline.explain(&processed.article);
    }
    let _ = pipeline.process_document(text, false);
    let (title, body) = text.split_once('\n').unwrap_or((text, ""));
    let _ = pipeline.process_item(title, body);
});
