//! The topic query language: any text either parses or is an error with a column.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = newswatch::query::parse(text);
    }
});
