//! The HTTP feed server of the tests, on 127.0.0.1: a handler of the test's decides
//! each answer (status, headers, body, a delay, a [`Gate`] to hold it behind), and the
//! server records every request, counts the requests to each path and how many it was
//! answering at once. It runs on a runtime of its own, so tests with or without one of
//! theirs can use it.
//!
//! [`FeedServer::generated`] is the common case: `/feed/{n}` serves RSS feed `n` with a
//! fixed number of items whose texts are generated, distinct and repeatable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Router;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The query, without its `?`.
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// Which request to this path it is: 1 for the first.
    pub hit: usize,
}

impl Request {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `POST /path?query`, as the request line says it.
    pub fn line(&self) -> String {
        match &self.query {
            Some(query) => format!("{} {}?{query}", self.method, self.path),
            None => format!("{} {}", self.method, self.path),
        }
    }
}

/// What the server answers to one request.
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
    hold: Hold,
}

enum Hold {
    No,
    For(Duration),
    Until(Gate),
}

/// The content type of the feeds served.
pub const RSS: &str = "application/rss+xml; charset=utf-8";

impl Reply {
    /// `status` with `body` and no headers.
    pub fn status(status: u16, body: impl Into<Body>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            hold: Hold::No,
        }
    }

    /// 200 with a feed: `body` as [`RSS`].
    pub fn feed(body: impl Into<Body>) -> Reply {
        Reply::status(200, body).header("content-type", RSS)
    }

    /// 404.
    pub fn not_found() -> Reply {
        Reply::status(404, "not found")
    }

    /// `status` redirecting to `location`.
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::status(status, Body::empty()).header("location", location)
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Answered `delay` after the request came.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.hold = Hold::For(delay);
        self
    }

    /// Answered once `gate` opens (or after [`GATE_LIMIT`]).
    pub fn held_by(mut self, gate: &Gate) -> Reply {
        self.hold = Hold::Until(gate.clone());
        self
    }

    /// A conditional GET: 304 (with the ETag, no body) when `request` names this
    /// reply's `etag` header in If-None-Match or, without one, its `last-modified`
    /// header in If-Modified-Since; this reply otherwise.
    pub fn unless_unchanged(self, request: &Request) -> Reply {
        let own = |name: &str| {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let (etag, last_modified) = (own("etag"), own("last-modified"));
        let unchanged = match request.header("if-none-match") {
            Some(sent) => etag.as_deref() == Some(sent),
            None => {
                last_modified.is_some()
                    && request.header("if-modified-since") == last_modified.as_deref()
            }
        };
        if !unchanged {
            return self;
        }
        let not_modified = Reply::status(304, Body::empty());
        match etag {
            Some(etag) => not_modified.header("etag", etag),
            None => not_modified,
        }
    }

    fn into_response(self) -> Response {
        let mut builder = Response::builder().status(self.status);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.body(self.body).expect("a valid test response")
    }
}

/// How long a reply held by a [`Gate`] waits for it at most, so no request hangs.
pub const GATE_LIMIT: Duration = Duration::from_secs(60);

/// Holds the replies made with [`Reply::held_by`] until [`Gate::open`]: the test decides
/// when what was requested arrives.
#[derive(Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Gate {
        Gate(Arc::new(tokio::sync::watch::Sender::new(false)))
    }
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets every held reply go, and every later one at once.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn wait(&self) {
        let mut open = self.0.subscribe();
        let _ = tokio::time::timeout(GATE_LIMIT, open.wait_for(|open| *open)).await;
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// What the server saw.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<Request>>,
    hits: Mutex<HashMap<String, usize>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[derive(Clone)]
struct Shared {
    handler: Arc<Handler>,
    seen: Arc<Seen>,
}

pub struct FeedServer {
    pub addr: SocketAddr,
    seen: Arc<Seen>,
    // The server's runtime, for as long as the test holds the server; shut down
    // without waiting on drop, which an async test may do too.
    runtime: Option<tokio::runtime::Runtime>,
}

impl FeedServer {
    /// Serves every request with `handler`'s reply.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FeedServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("test runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking socket");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Seen::default());
        let app = Router::new().fallback(serve).with_state(Shared {
            handler: Arc::new(handler),
            seen: seen.clone(),
        });
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            let _ = axum::serve(listener, app).await;
        });
        FeedServer {
            addr,
            seen,
            runtime: Some(runtime),
        }
    }

    /// `/feed/{n}` serves RSS feed `n` of `items_per_feed` generated items (see
    /// [`FeedServer::link`]); other paths are 404.
    pub fn generated(items_per_feed: usize) -> FeedServer {
        FeedServer::start(move |request| {
            match request
                .path
                .strip_prefix("/feed/")
                .and_then(|n| n.parse().ok())
            {
                Some(n) => Reply::feed(generated_feed(n, items_per_feed)),
                None => Reply::not_found(),
            }
        })
    }

    /// The address of `path` (which starts with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The address of generated feed `n` (see [`FeedServer::generated`]).
    pub fn feed_url(&self, n: usize) -> String {
        self.url(&format!("/feed/{n}"))
    }

    /// The link of item `i` of generated feed `n`, as the store keeps it.
    pub fn link(n: usize, i: usize) -> String {
        format!("https://example.org/news/{n}/{i}?utm_source=feed")
    }

    /// Requests so far, to any path.
    pub fn hits(&self) -> usize {
        self.seen.requests.lock().unwrap().len()
    }

    /// Requests so far to `path`.
    pub fn hits_to(&self, path: &str) -> usize {
        self.seen
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.requests.lock().unwrap().clone()
    }

    /// The headers of every request to `path`, in order.
    pub fn headers_to(&self, path: &str) -> Vec<HeaderMap> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .map(|r| r.headers)
            .collect()
    }

    /// The most requests it was answering at once.
    pub fn max_in_flight(&self) -> usize {
        self.seen.max_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Counts a request in flight until dropped, also when its connection goes first.
struct InFlight<'a>(&'a Seen);

impl<'a> InFlight<'a> {
    fn enter(seen: &'a Seen) -> InFlight<'a> {
        let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(seen)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve(
    axum::extract::State(shared): axum::extract::State<Shared>,
    request: axum::extract::Request,
) -> Response {
    let seen = &shared.seen;
    let path = request.uri().path().to_string();
    let hit = {
        let mut hits = seen.hits.lock().unwrap();
        let n = hits.entry(path.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let request = Request {
        method: request.method().to_string(),
        query: request.uri().query().map(str::to_string),
        headers: request.headers().clone(),
        path,
        hit,
    };
    seen.requests.lock().unwrap().push(request.clone());
    let _in_flight = InFlight::enter(seen);
    let mut reply = (shared.handler)(&request);
    match std::mem::replace(&mut reply.hold, Hold::No) {
        Hold::No => {}
        Hold::For(delay) => tokio::time::sleep(delay).await,
        Hold::Until(gate) => gate.wait().await,
    }
    reply.into_response()
}

/// Words the generated texts are made of.
pub const WORDS: &[&str] = &[
    "council",
    "harbour",
    "river",
    "budget",
    "school",
    "bridge",
    "festival",
    "railway",
    "museum",
    "election",
    "farmers",
    "orchestra",
    "hospital",
    "factory",
    "airport",
    "library",
    "mayor",
    "tunnel",
    "vineyard",
    "stadium",
    "satellite",
    "glacier",
    "forest",
    "ferry",
    "parliament",
    "court",
    "market",
    "village",
    "laboratory",
    "theatre",
    "archive",
    "highway",
    "canal",
];

/// Generated feed `n`: `items` items with distinct texts.
fn generated_feed(n: usize, items: usize) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>Test feed</title>",
    );
    for i in 0..items {
        xml.push_str(&format!(
            "<item><guid isPermaLink=\"false\">feed{n}-item{i}</guid><title>Report {n}-{i}</title>\
             <link>{}</link><description>{}</description></item>",
            FeedServer::link(n, i).replace('&', "&amp;"),
            text(n, i)
        ));
    }
    xml.push_str("</channel></rss>");
    xml
}

/// Forty words chosen by a hash of (n, i): different items get different texts, so
/// each one is its own story.
fn text(n: usize, i: usize) -> String {
    pick_words(WORDS, (n as u64) << 32 | i as u64, 40)
}

/// `count` of `words` picked by a hash of `seed` (xorshift): different seeds give
/// unrelated texts.
pub fn pick_words(words: &[&str], seed: u64, count: usize) -> String {
    let mut x = seed | 1;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            words[(x % words.len() as u64) as usize]
        })
        .collect::<Vec<_>>()
        .join(" ")
}
