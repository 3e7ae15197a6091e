//! Feed bytes through decoding (BOM, declarations, guessing), liberal reading
//! (repairs, legacy formats, feed-rs) and the advertised feeds of an HTML page: the
//! poller's way from a body to items. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use newswatch::parse;

fuzz_target!(|data: &[u8]| {
    let base = url::Url::parse("https://example.org/news/").ok();
    let _ = parse::read_feed_at(data, None, base.as_ref());
    // The same body under a charset from the server, which it may contradict.
    let _ = parse::read_feed(data, Some("windows-1251"));
    if let Ok(decoded) = parse::decode(data, None) {
        if let Ok(parse::Parsed::Html(html)) = parse::parse(&decoded.text) {
            let _ = parse::advertised_feeds(&html, base.as_ref());
        }
    }
});
