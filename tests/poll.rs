//! The poller against a real HTTP server on 127.0.0.1: conditional GET, backoff,
//! redirects, body limits, gzip bombs, stalls, broken and legacy-encoded feeds, and
//! the concurrency limits of `poll_once` and `run`. No mocks: the tests' [`FeedServer`]
//! is started by each test, with one path per scenario (see [`scenario`]) and a record
//! of every request it saw. Every wait is bounded.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use newswatch::config::{self, Feed, FeedUrl};
use newswatch::poller::{
    poll_feed, FetchError, FetchOutcome, Fetcher, PollOutcome, PollResult, Poller,
};
use newswatch::store::FeedState;

use crate::util::server::{FeedServer, Reply, Request};

const ETAG: &str = "\"v1\"";
const LAST_MODIFIED: &str = "Fri, 14 Mar 2025 10:00:00 GMT";
const MAX_BODY: u64 = 4 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(1);
const INTERVAL: Duration = Duration::from_secs(300);

/// Runs a test body with an upper bound, so a hang fails instead of blocking CI.
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("the test took more than 60 s");
}

/// The feed of `path` on `server`, as the config would name it.
fn feed(server: &FeedServer, path: &str) -> Feed {
    Feed {
        url: FeedUrl::Http(http_url(server, path)),
        name: format!("test {path}"),
        interval: None,
        full_text: false,
    }
}

fn http_url(server: &FeedServer, path: &str) -> url::Url {
    url::Url::parse(&server.url(path)).expect("URL")
}

/// The test server: one path per scenario.
fn start() -> FeedServer {
    FeedServer::start(scenario)
}

fn rss(title: &str, items: usize) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel><title>{title}</title>\n"
    );
    for i in 0..items {
        xml.push_str(&format!(
            "<item><guid>{title}-{i}</guid><title>{title} item {i}</title><link>https://example.org/{i}</link>\
             <description>Body of item {i}.</description></item>\n"
        ));
    }
    xml.push_str("</channel></rss>\n");
    xml
}

/// 200 with `body` as `application/rss+xml`, no charset.
fn feed_response(body: impl Into<Body>) -> Reply {
    Reply::status(200, body).header("content-type", "application/rss+xml")
}

/// A site's page advertising feeds of these `(type, href)`.
fn page(feeds: &[(&str, &str)]) -> String {
    let links: String = feeds
        .iter()
        .map(|(kind, href)| format!("<link rel=\"alternate\" type=\"{kind}\" href=\"{href}\">\n"))
        .collect();
    format!("<!DOCTYPE html><html><head><title>Example News</title>\n{links}</head><body><p>Home</p></body></html>")
}

fn scenario(request: &Request) -> Reply {
    let path = request.path.as_str();
    match path {
        "/etag" => Reply::status(200, rss("etag", 2))
            .header("etag", ETAG)
            .header("last-modified", LAST_MODIFIED)
            .header("content-type", "application/rss+xml")
            .unless_unchanged(request),
        "/lastmod" => Reply::status(200, rss("lastmod", 1))
            .header("last-modified", LAST_MODIFIED)
            .unless_unchanged(request),
        "/retry" => Reply::status(429, "slow down").header("retry-after", "7200"),
        "/unavailable" => {
            let now = SystemTime::now();
            Reply::status(503, "maintenance")
                .header("date", httpdate::fmt_http_date(now))
                .header(
                    "retry-after",
                    httpdate::fmt_http_date(now + Duration::from_secs(600)),
                )
        }
        "/flaky" if request.hit <= 2 => Reply::status(500, "oops"),
        "/flaky" => feed_response(rss("flaky", 3)),
        "/500" => Reply::status(500, "always broken"),
        "/gone" => Reply::status(410, "gone"),
        "/loop/a" => Reply::redirect(302, "/loop/b"),
        "/loop/b" => Reply::redirect(302, "/loop/a"),
        p if p.starts_with("/chain/") => {
            let n: u32 = p["/chain/".len()..].parse().unwrap_or(0);
            Reply::redirect(302, &format!("/chain/{}", n + 1))
        }
        "/moved" => Reply::redirect(301, "/new-home"),
        "/moved-then-temp" => Reply::redirect(308, "/temp"),
        "/temp" => Reply::redirect(307, "/new-home"),
        "/new-home" => feed_response(rss("new-home", 2)),
        p if p.starts_with("/fixture/") => {
            let name = &p["/fixture/".len()..];
            match std::fs::read(crate::util::fixture(name)) {
                Ok(bytes) => feed_response(bytes),
                Err(_) => Reply::status(404, "no such fixture"),
            }
        }
        "/big" => {
            let mut xml = rss("big", 1);
            xml.push_str(&"<!-- padding -->".repeat(2 * MAX_BODY as usize / 16));
            feed_response(xml)
        }
        "/big-chunked" => {
            let chunk = Bytes::from(vec![b' '; 32 * 1024]);
            let chunks = (0..2 * MAX_BODY / (32 * 1024)).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
            feed_response(Body::from_stream(futures_util::stream::iter(chunks)))
        }
        "/bomb" => Reply::status(200, gzip_zeros(65_025))
            .header("content-type", "application/rss+xml")
            .header("content-encoding", "gzip"),
        "/gzip-feed" => Reply::status(200, gzip(rss("gzip", 4).as_bytes()))
            .header("content-type", "application/rss+xml")
            .header("content-encoding", "gzip"),
        "/stall" => {
            let start = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(
                    b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>stall</title>",
                ))
            });
            feed_response(Body::from_stream(
                start.chain(futures_util::stream::pending()),
            ))
        }
        "/html" => Reply::status(
            200,
            "<!DOCTYPE html><html><head><title>Subscribe to read</title></head><body><p>Paywall</p></body></html>",
        )
        .header("content-type", "text/html; charset=utf-8"),
        "/huge" => feed_response(rss("huge", 10_000)),
        "/cp1251" | "/cp1251-declared" => {
            let mut xml = "<rss version=\"2.0\"><channel><title>Новости</title>\
                <item><guid>1</guid><title>Переговоры о перемирии продолжаются</title></item>\
                <item><guid>2</guid><title>Зеленский и Путин</title></item></channel></rss>"
                .to_string();
            if path == "/cp1251-declared" {
                xml.insert_str(0, "<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n");
            }
            let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(&xml);
            Reply::status(200, bytes.into_owned())
                .header("content-type", "application/rss+xml; charset=windows-1251")
        }
        "/broken" => feed_response(
            "\n\n<?xml version=\"1.0\"?>\n<rss><channel><title>Broken</title>\
             <item><guid>1</guid><title>Peace&nbsp;talks &mdash; day&nbsp;2</title>\
             <description>Q&A &laquo;session&raquo;&hellip;</description></item></channel></rss>",
        ),
        "/ttl" => Reply::status(
            200,
            rss("ttl", 1).replace("<title>ttl</title>", "<title>ttl</title><ttl>120</ttl>"),
        )
        .header("cache-control", "max-age=600"),
        // Held a while, so that polls overlap if the poller lets them.
        "/slow" => feed_response(rss("slow", 1)).after(Duration::from_millis(200)),
        // A site's home page given as the feed's url: it advertises one feed
        // (relative href), or two.
        "/site" => Reply::status(200, page(&[("application/rss+xml", "site/feed.xml")]))
            .header("content-type", "text/html; charset=utf-8")
            .header("etag", ETAG),
        "/site/feed.xml" => feed_response(rss("site", 2)),
        "/portal" => Reply::status(
            200,
            page(&[
                ("application/rss+xml", "/portal/rss.xml"),
                ("application/atom+xml", "https://example.org/portal/atom.xml"),
                ("text/css", "/style.css"),
            ]),
        )
        .header("content-type", "text/html"),
        _ => Reply::not_found(),
    }
}

// ---- A hand-written gzip encoder (fixed-Huffman deflate), so a bomb needs no crate.

struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn new() -> Bits {
        Bits {
            out: Vec::new(),
            acc: 0,
            n: 0,
        }
    }

    /// Plain values go least-significant bit first.
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// Huffman codes go most-significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        let reversed = (0..len).fold(0, |r, i| r | (((code >> i) & 1) << (len - 1 - i)));
        self.put(reversed, len);
    }

    fn literal(&mut self, byte: u8) {
        let byte = u32::from(byte);
        if byte < 144 {
            self.code(0x30 + byte, 8);
        } else {
            self.code(0x190 + byte - 144, 9);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

fn crc32(bytes: impl Iterator<Item = u8>) -> u32 {
    let table: Vec<u32> = (0..256u32)
        .map(|mut c| {
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            c
        })
        .collect();
    !bytes.fold(!0u32, |crc, b| {
        table[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

fn gzip_member(deflate: Vec<u8>, crc: u32, len: usize) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    out.extend(deflate);
    out.extend(crc.to_le_bytes());
    out.extend((len as u32).to_le_bytes());
    out
}

/// `data` as a gzip of literals only.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut bits = Bits::new();
    bits.put(1, 1); // last block
    bits.put(1, 2); // fixed Huffman codes
    for &b in data {
        bits.literal(b);
    }
    bits.code(0, 7); // end of block
    gzip_member(bits.finish(), crc32(data.iter().copied()), data.len())
}

/// `1 + 258 * runs` zero bytes as gzip: one literal, then `runs` copies of
/// "258 bytes from distance 1", 13 bits each, about 160:1.
fn gzip_zeros(runs: usize) -> Vec<u8> {
    let mut bits = Bits::new();
    bits.put(1, 1);
    bits.put(1, 2);
    bits.literal(0);
    for _ in 0..runs {
        bits.code(0xC5, 8); // length code 285: 258 bytes
        bits.code(0, 5); // distance code 0: distance 1
    }
    bits.code(0, 7);
    let len = 1 + 258 * runs;
    gzip_member(bits.finish(), crc32(std::iter::repeat_n(0, len)), len)
}

// ---- Helpers.

fn poller_config(timeout: Duration) -> config::Poller {
    config::Poller {
        interval: INTERVAL,
        concurrency: 8,
        per_host: 2,
        timeout,
        max_body: MAX_BODY,
        user_agent: "newswatch-test".into(),
        full_text_pages: 10,
        // The test server is on 127.0.0.1 (refused by default: src/net.rs).
        allow_private: true,
        allow_hosts: Vec::new(),
    }
}

fn fetcher() -> Fetcher {
    Fetcher::new(&poller_config(TIMEOUT)).expect("HTTP client")
}

async fn poll(server: &FeedServer, path: &str, state: FeedState) -> PollResult {
    poll_feed(&fetcher(), &feed(server, path), state, Utc::now(), INTERVAL).await
}

fn delay(result: &PollResult, since: DateTime<Utc>) -> Duration {
    (result.state.next_poll.expect("a next poll") - since)
        .to_std()
        .expect("next poll in the future")
}

fn last_error(result: &PollResult) -> &str {
    result.state.last_error.as_deref().unwrap_or("")
}

fn full_config(per_host: usize) -> config::Config {
    let text = format!(
        "[poller]\ninterval = \"5m\"\nconcurrency = 8\nper_host = {per_host}\ntimeout = \"1s\"\nmax_body = \"4MiB\"\nallow_private = true\n"
    );
    config::parse_str(&text, std::path::Path::new("/nonexistent/newswatch.toml"))
        .expect("valid config")
}

async fn collect(mut rx: mpsc::Receiver<PollResult>) -> HashMap<String, PollResult> {
    let mut results = HashMap::new();
    while let Some(result) = rx.recv().await {
        results.insert(result.feed.url.to_string(), result);
    }
    results
}

// ---- Tests.

#[tokio::test]
async fn etag_and_last_modified_round_trip_then_304() {
    bounded(async {
        let server = start();
        let first = poll(&server, "/etag", FeedState::default()).await;
        assert_eq!(
            first.outcome,
            PollOutcome::Fetched {
                items: 2,
                repairs: 0
            }
        );
        assert_eq!(first.items.len(), 2);
        assert_eq!(first.state.etag.as_deref(), Some(ETAG));
        assert_eq!(first.state.last_modified.as_deref(), Some(LAST_MODIFIED));
        assert_eq!(first.state.items_total, 2);

        let second = poll(&server, "/etag", first.state.clone()).await;
        assert_eq!(second.outcome, PollOutcome::NotModified);
        assert!(second.items.is_empty());
        assert_eq!(second.state.etag.as_deref(), Some(ETAG));
        assert_eq!(second.state.last_modified.as_deref(), Some(LAST_MODIFIED));
        assert_eq!(second.state.failures, 0);
        assert!(second.state.next_poll.is_some());
        let sent = server.headers_to("/etag");
        assert_eq!(sent.len(), 2);
        assert!(sent[0].get("if-none-match").is_none());
        assert_eq!(sent[1]["if-none-match"], ETAG);
        assert_eq!(sent[1]["if-modified-since"], LAST_MODIFIED);
        assert!(sent[0]["user-agent"]
            .to_str()
            .unwrap()
            .contains("newswatch-test"));

        // Last-Modified alone works the same way.
        let first = poll(&server, "/lastmod", FeedState::default()).await;
        assert!(matches!(
            first.outcome,
            PollOutcome::Fetched { items: 1, .. }
        ));
        assert_eq!(first.state.etag, None);
        let second = poll(&server, "/lastmod", first.state).await;
        assert_eq!(second.outcome, PollOutcome::NotModified);
        assert_eq!(second.state.last_modified.as_deref(), Some(LAST_MODIFIED));
    })
    .await;
}

#[tokio::test]
async fn retry_after_is_honoured_on_429_and_503() {
    bounded(async {
        let server = start();
        let now = Utc::now();
        let result = poll_feed(
            &fetcher(),
            &feed(&server, "/retry"),
            FeedState::default(),
            now,
            INTERVAL,
        )
        .await;
        assert!(
            matches!(
                result.outcome,
                PollOutcome::Failed {
                    transient: true,
                    ..
                }
            ),
            "{:?}",
            result.outcome
        );
        assert_eq!(delay(&result, now), Duration::from_secs(7200));
        assert_eq!(result.state.failures, 1);
        assert!(
            last_error(&result).contains("429"),
            "{}",
            last_error(&result)
        );

        // An HTTP date, measured from the server's Date header.
        let now = Utc::now();
        let result = poll_feed(
            &fetcher(),
            &feed(&server, "/unavailable"),
            FeedState::default(),
            now,
            INTERVAL,
        )
        .await;
        assert!(
            last_error(&result).contains("503"),
            "{}",
            last_error(&result)
        );
        let d = delay(&result, now).as_secs();
        assert!((598..=602).contains(&d), "{d}");
    })
    .await;
}

#[tokio::test]
async fn server_errors_back_off_then_recover() {
    bounded(async {
        let server = start();
        let mut state = FeedState::default();
        for failures in 1..=2u32 {
            let now = Utc::now();
            let result =
                poll_feed(&fetcher(), &feed(&server, "/flaky"), state, now, INTERVAL).await;
            assert!(matches!(
                result.outcome,
                PollOutcome::Failed {
                    transient: true,
                    ..
                }
            ));
            assert_eq!(result.state.failures, failures);
            assert!(
                last_error(&result).contains("500"),
                "{}",
                last_error(&result)
            );
            let base = INTERVAL * 2u32.pow(failures);
            let d = delay(&result, now);
            assert!(
                d >= base.mul_f64(0.89) && d <= base.mul_f64(1.11),
                "{failures}: {d:?}"
            );
            state = result.state;
        }
        let result = poll(&server, "/flaky", state).await;
        assert!(matches!(
            result.outcome,
            PollOutcome::Fetched { items: 3, .. }
        ));
        assert_eq!(result.state.failures, 0);
        assert_eq!(result.state.last_error, None);
        assert!(result.state.last_success.is_some());
    })
    .await;
}

#[tokio::test]
async fn a_gone_feed_is_asked_again_daily_and_reads_as_gone() {
    bounded(async {
        let server = start();
        let result = poll(&server, "/gone", FeedState::default()).await;
        assert_eq!(result.outcome, PollOutcome::Gone);
        let attempt = result.state.last_attempt.expect("attempted");
        // Not every interval, as a failure would be: a day later.
        assert_eq!(
            result.state.next_poll,
            Some(attempt + chrono::TimeDelta::days(1))
        );
        assert_eq!(result.state.last_status, Some(410));
        assert!(
            last_error(&result).contains("410 Gone"),
            "{}",
            last_error(&result)
        );
        let health = newswatch::health::assess(
            &result.state,
            &newswatch::config::Health::default(),
            attempt,
        );
        assert_eq!(health.state, newswatch::store::FeedHealth::Gone);
    })
    .await;
}

#[tokio::test]
async fn redirect_loops_and_long_chains_are_errors() {
    bounded(async {
        let server = start();
        let result = poll(&server, "/loop/a", FeedState::default()).await;
        assert!(matches!(
            result.outcome,
            PollOutcome::Failed {
                transient: false,
                ..
            }
        ));
        assert!(
            last_error(&result).contains("loops"),
            "{}",
            last_error(&result)
        );
        assert_eq!(server.hits_to("/loop/a"), 1);
        assert_eq!(server.hits_to("/loop/b"), 1);

        let err = fetcher()
            .fetch(
                &FeedUrl::Http(http_url(&server, "/chain/0")),
                &FeedState::default(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::Redirects { hops: 5, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("too many redirects"), "{err}");
        assert_eq!(server.hits_to("/chain/5"), 1);
        assert_eq!(server.hits_to("/chain/6"), 0);
    })
    .await;
}

#[tokio::test]
async fn permanent_redirects_are_remembered_and_temporary_ones_not() {
    bounded(async {
        let server = start();
        let result = poll(&server, "/moved", FeedState::default()).await;
        assert!(matches!(
            result.outcome,
            PollOutcome::Fetched { items: 2, .. }
        ));
        let new_home = http_url(&server, "/new-home").to_string();
        assert_eq!(
            result.state.permanent_url.as_deref(),
            Some(new_home.as_str())
        );
        // The next poll goes straight to the new address.
        let again = poll(&server, "/moved", result.state).await;
        assert!(matches!(again.outcome, PollOutcome::Fetched { .. }));
        assert_eq!(server.hits_to("/moved"), 1);
        assert_eq!(server.hits_to("/new-home"), 2);

        let result = poll(&server, "/temp", FeedState::default()).await;
        assert!(matches!(result.outcome, PollOutcome::Fetched { .. }));
        assert_eq!(result.state.permanent_url, None);

        // 308 then 307: only the permanent hop is remembered.
        let outcome = fetcher()
            .fetch(
                &FeedUrl::Http(http_url(&server, "/moved-then-temp")),
                &FeedState::default(),
            )
            .await
            .unwrap();
        let FetchOutcome::Fetched {
            permanent_redirect, ..
        } = outcome
        else {
            panic!("not fetched: {outcome:?}")
        };
        assert_eq!(permanent_redirect, Some(http_url(&server, "/temp")));
    })
    .await;
}

#[tokio::test]
async fn bodies_over_max_body_are_too_large() {
    bounded(async {
        let server = start();
        for path in ["/big", "/big-chunked"] {
            let err = fetcher()
                .fetch(
                    &FeedUrl::Http(http_url(&server, path)),
                    &FeedState::default(),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, FetchError::TooLarge { limit: MAX_BODY }),
                "{path}: {err}"
            );
        }
        let result = poll(&server, "/big", FeedState::default()).await;
        assert!(
            last_error(&result).contains("larger than the limit"),
            "{}",
            last_error(&result)
        );
        assert_eq!(result.state.failures, 1);
    })
    .await;
}

#[tokio::test]
async fn a_gzip_bomb_is_cut_off_at_max_body() {
    bounded(async {
        let server = start();
        // The encoder is right: a gzipped feed reads back.
        let result = poll(&server, "/gzip-feed", FeedState::default()).await;
        assert!(
            matches!(result.outcome, PollOutcome::Fetched { items: 4, .. }),
            "{:?}",
            result.outcome
        );
        assert!(server.headers_to("/gzip-feed")[0]["accept-encoding"]
            .to_str()
            .unwrap()
            .contains("gzip"));

        let bomb = gzip_zeros(65_025);
        assert!(bomb.len() < 120 * 1024, "{}", bomb.len());
        let started = Instant::now();
        let err = fetcher()
            .fetch(
                &FeedUrl::Http(http_url(&server, "/bomb")),
                &FeedState::default(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit: MAX_BODY }),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    })
    .await;
}

#[tokio::test]
async fn a_body_that_stalls_times_out() {
    bounded(async {
        let server = start();
        let started = Instant::now();
        let err = fetcher()
            .fetch(
                &FeedUrl::Http(http_url(&server, "/stall")),
                &FeedState::default(),
            )
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
        assert!(err.is_transient());
        assert!(
            elapsed >= TIMEOUT.mul_f64(0.9) && elapsed < TIMEOUT + Duration::from_millis(1500),
            "{elapsed:?}"
        );
        let result = poll(&server, "/stall", FeedState::default()).await;
        assert!(
            last_error(&result).contains("timed out"),
            "{}",
            last_error(&result)
        );
    })
    .await;
}

#[tokio::test]
async fn html_instead_of_a_feed_is_a_named_failure() {
    bounded(async {
        let server = start();
        let result = poll(&server, "/html", FeedState::default()).await;
        assert!(
            matches!(
                result.outcome,
                PollOutcome::Failed {
                    transient: false,
                    ..
                }
            ),
            "{:?}",
            result.outcome
        );
        let error = last_error(&result);
        assert!(error.contains("HTML page"), "{error}");
        assert!(error.contains("Subscribe to read"), "{error}");
        assert!(result.items.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_feed_with_10000_items_gives_10000_items() {
    bounded(async {
        let server = start();
        let result = poll(&server, "/huge", FeedState::default()).await;
        assert!(
            matches!(result.outcome, PollOutcome::Fetched { items: 10_000, .. }),
            "{:?}",
            result.outcome
        );
        assert_eq!(result.items.len(), 10_000);
        assert_eq!(result.items[9_999].title, "huge item 9999");
        assert_eq!(result.state.items_total, 10_000);
    })
    .await;
}

#[tokio::test]
async fn windows_1251_with_charset_only_in_content_type() {
    bounded(async {
        let server = start();
        for path in ["/cp1251", "/cp1251-declared"] {
            let result = poll(&server, path, FeedState::default()).await;
            assert!(
                matches!(result.outcome, PollOutcome::Fetched { items: 2, .. }),
                "{path}: {:?}",
                result.outcome
            );
            assert_eq!(result.items[0].title, "Переговоры о перемирии продолжаются");
            assert_eq!(result.items[1].title, "Зеленский и Путин");
        }
    })
    .await;
}

#[tokio::test]
async fn rss_without_version_and_with_html_entities_is_repaired() {
    bounded(async {
        let server = start();
        let result = poll(&server, "/broken", FeedState::default()).await;
        let PollOutcome::Fetched { items, repairs } = result.outcome else {
            panic!("not fetched: {:?}", result.outcome)
        };
        assert_eq!(items, 1);
        // Leading blank lines, the version, the entities, the `&` of "Q&A".
        assert_eq!(repairs, 4);
        assert_eq!(result.state.repairs, 4);
        assert_eq!(
            result.items[0].title,
            "Peace\u{a0}talks \u{2014} day\u{a0}2"
        );
        assert!(
            result.items[0].body.contains("\u{ab}session\u{bb}\u{2026}"),
            "{}",
            result.items[0].body
        );
    })
    .await;
}

/// Feeds in Japanese, Chinese, Korean, Cyrillic and Arabic, with such text right after
/// `<` in titles, authors, processing instructions, doctypes and attribute values, are
/// fetched with all their items and no error: before, reading them panicked, and the
/// poller marked each such feed failed on every poll.
#[tokio::test]
async fn feeds_in_other_scripts_are_fetched_not_failed() {
    bounded(async {
        let server = start();
        for (name, titles) in [
            (
                "feed-cjk-rss.xml",
                &["東京で停戦交渉", "北京举行停火谈判", "서울에서 휴전 회담"][..],
            ),
            (
                "feed-cyrillic-arabic-atom.xml",
                &["Переговоры о перемирии", "محادثات وقف إطلاق النار"][..],
            ),
            (
                "feed-arabic-rss.xml",
                &["مفاوضات وقف إطلاق النار في جدة", "عودة الطلاب إلى المدارس"][..],
            ),
            ("feed-korean-atom.xml", &["휴전 협상 재개", "봄 축제 개막"][..]),
            ("feed-pi-and-attributes.xml", &["東京で停戦交渉"][..]),
        ] {
            let result = poll(&server, &format!("/fixture/{name}"), FeedState::default()).await;
            assert!(
                matches!(result.outcome, PollOutcome::Fetched { items, .. } if items == titles.len()),
                "{name}: {:?}",
                result.outcome
            );
            assert_eq!(result.state.last_error, None, "{name}");
            assert_eq!(result.state.failures, 0, "{name}");
            let got: Vec<&str> = result.items.iter().map(|i| i.title.as_str()).collect();
            assert_eq!(got, titles, "{name}");
        }
    })
    .await;
}

#[tokio::test]
async fn ttl_and_max_age_delay_the_next_poll() {
    bounded(async {
        let server = start();
        let now = Utc::now();
        let result = poll_feed(
            &fetcher(),
            &feed(&server, "/ttl"),
            FeedState::default(),
            now,
            INTERVAL,
        )
        .await;
        assert!(matches!(result.outcome, PollOutcome::Fetched { .. }));
        assert_eq!(delay(&result, now), Duration::from_secs(120 * 60));
    })
    .await;
}

#[tokio::test]
async fn local_files_are_read_and_unchanged_files_not_parsed_again() {
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("feed.xml");
        std::fs::write(&path, rss("file", 3)).expect("write feed");
        let feed = Feed {
            url: FeedUrl::File(path.clone()),
            name: "file".into(),
            interval: None,
            full_text: false,
        };
        let first = poll_feed(
            &fetcher(),
            &feed,
            FeedState::default(),
            Utc::now(),
            INTERVAL,
        )
        .await;
        assert!(matches!(
            first.outcome,
            PollOutcome::Fetched { items: 3, .. }
        ));
        let second = poll_feed(&fetcher(), &feed, first.state, Utc::now(), INTERVAL).await;
        assert_eq!(second.outcome, PollOutcome::NotModified);

        let missing = Feed {
            url: FeedUrl::File(dir.path().join("missing.xml")),
            ..feed
        };
        let result = poll_feed(
            &fetcher(),
            &missing,
            FeedState::default(),
            Utc::now(),
            INTERVAL,
        )
        .await;
        assert!(
            last_error(&result).contains("missing.xml"),
            "{}",
            last_error(&result)
        );
        assert_eq!(result.state.failures, 1);
    })
    .await;
}

#[tokio::test]
async fn one_bad_feed_among_good_ones_does_not_stop_the_others() {
    bounded(async {
        let server = start();
        let good = ["/etag", "/huge", "/cp1251", "/broken"];
        let bad = ["/500", "/html", "/gone", "/stall", "/loop/a", "/bomb"];
        let mut feeds: Vec<Feed> = good.iter().chain(&bad).map(|p| feed(&server, p)).collect();
        feeds.push(Feed {
            url: FeedUrl::Http(url::Url::parse("http://127.0.0.1:1/closed.xml").unwrap()),
            name: "closed port".into(),
            interval: None,
            full_text: false,
        });
        let poller = Poller::new(&full_config(2)).expect("poller");
        // A channel smaller than the number of feeds: results wait for room.
        let (tx, rx) = mpsc::channel(2);
        let collector = tokio::spawn(collect(rx));
        poller.poll_once(&feeds, HashMap::new(), tx).await;
        let results = collector.await.expect("collector");
        assert_eq!(results.len(), feeds.len());
        for path in good {
            let result = &results[&http_url(&server, path).to_string()];
            assert!(
                matches!(result.outcome, PollOutcome::Fetched { .. }),
                "{path}: {:?}",
                result.outcome
            );
        }
        for path in bad {
            let result = &results[&http_url(&server, path).to_string()];
            assert!(
                matches!(
                    result.outcome,
                    PollOutcome::Failed { .. } | PollOutcome::Gone
                ),
                "{path}: {:?}",
                result.outcome
            );
            assert!(result.state.last_error.is_some(), "{path}");
        }
        let closed = &results["http://127.0.0.1:1/closed.xml"];
        assert!(
            last_error(closed).contains("cannot connect"),
            "{}",
            last_error(closed)
        );
    })
    .await;
}

#[tokio::test]
async fn poll_once_keeps_to_the_per_host_limit() {
    bounded(async {
        let server = start();
        let feeds: Vec<Feed> = (0..6)
            .map(|i| {
                let mut feed = feed(&server, "/slow");
                feed.url = FeedUrl::Http(http_url(&server, &format!("/slow?feed={i}")));
                feed
            })
            .collect();
        let poller = Poller::new(&full_config(2)).expect("poller");
        let (tx, rx) = mpsc::channel(16);
        poller.poll_once(&feeds, HashMap::new(), tx).await;
        assert_eq!(collect(rx).await.len(), 6);
        assert_eq!(server.hits_to("/slow"), 6);
        assert_eq!(server.max_in_flight(), 2);
    })
    .await;
}

#[tokio::test]
async fn run_polls_due_feeds_and_stops_on_shutdown() {
    bounded(async {
        let server = start();
        let feeds = vec![
            feed(&server, "/etag"),
            feed(&server, "/new-home"),
            feed(&server, "/huge"),
        ];
        // The third feed is not due for an hour.
        let later = FeedState {
            next_poll: Some(Utc::now() + chrono::TimeDelta::hours(1)),
            ..FeedState::default()
        };
        let states = HashMap::from([(feeds[2].url.to_string(), later)]);
        let poller = Poller::new(&full_config(2)).expect("poller");
        let (tx, mut rx) = mpsc::channel(4);
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let running = tokio::spawn(async move { poller.run(feeds, states, tx, stop).await });
        let mut polled = Vec::new();
        for _ in 0..2 {
            let result = rx.recv().await.expect("a result");
            assert!(matches!(result.outcome, PollOutcome::Fetched { .. }));
            assert!(result.state.next_poll.unwrap() > Utc::now());
            polled.push(result.feed.url.to_string());
        }
        polled.sort();
        assert_eq!(
            polled,
            vec![
                http_url(&server, "/etag").to_string(),
                http_url(&server, "/new-home").to_string()
            ]
        );
        let started = Instant::now();
        shutdown.cancel();
        running.await.expect("run returns");
        assert!(started.elapsed() < Duration::from_secs(6));
        assert!(rx.recv().await.is_none(), "the channel closes after run");
        assert_eq!(server.hits_to("/huge"), 0);
        assert_eq!(server.hits_to("/etag"), 1);
    })
    .await;
}

/// A site's page given as a feed's url is read through the one feed it advertises
/// (resolved against the page's url), without keeping the page's validators; a page
/// advertising several says which they are.
#[tokio::test]
async fn an_html_page_is_read_through_the_feed_it_advertises() {
    bounded(async {
        let server = start();
        let first = poll(&server, "/site", FeedState::default()).await;
        assert_eq!(
            first.outcome,
            PollOutcome::Fetched {
                items: 2,
                repairs: 0
            },
            "{:?}",
            first.state.last_error
        );
        assert_eq!(first.items[0].title, "site item 0");
        assert_eq!(server.hits_to("/site/feed.xml"), 1);
        // The page's ETag would make the next poll a 304 while the feed moved on.
        assert_eq!(first.state.etag, None);
        let second = poll(&server, "/site", first.state).await;
        assert!(matches!(second.outcome, PollOutcome::Fetched { items: 2, .. }));
        assert_eq!(server.hits_to("/site/feed.xml"), 2);

        let several = poll(&server, "/portal", FeedState::default()).await;
        assert!(matches!(several.outcome, PollOutcome::Failed { .. }));
        assert_eq!(
            last_error(&several),
            format!(
                "an HTML page (\"Example News\") was served instead of a feed; the page advertises \
                 2 feeds, use one of them as the feed's url: {}, https://example.org/portal/atom.xml",
                server.url("/portal/rss.xml")
            )
        );
        assert_eq!(server.hits_to("/portal/rss.xml"), 0);
    })
    .await;
}
