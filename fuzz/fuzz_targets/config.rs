//! Config loading: any TOML either loads or gives errors naming keys, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let file = std::path::Path::new("/nonexistent/fuzz/newswatch.toml");
        let _ = newswatch::config::parse_str(text, file);
    }
});
