//! A feed server on 127.0.0.1 for end-to-end tests: `/feed/{n}` serves RSS feed `n`
//! with a fixed number of items whose texts are generated, distinct and repeatable.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// Words the generated texts are made of.
const WORDS: &[&str] = &[
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

pub struct FeedServer {
    pub addr: SocketAddr,
    pub items_per_feed: usize,
    hits: Arc<AtomicUsize>,
    // Keeps the server's runtime alive for as long as the test holds the server.
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct Shared {
    items: usize,
    hits: Arc<AtomicUsize>,
}

impl FeedServer {
    pub fn start(items_per_feed: usize) -> FeedServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("test runtime");
        let hits = Arc::new(AtomicUsize::new(0));
        let shared = Shared {
            items: items_per_feed,
            hits: hits.clone(),
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new()
            .route("/feed/{n}", get(feed))
            .with_state(shared);
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FeedServer {
            addr,
            items_per_feed,
            hits,
            _runtime: runtime,
        }
    }

    pub fn url(&self, n: usize) -> String {
        format!("http://{}/feed/{n}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The link of item `i` of feed `n`, as the store keeps it.
    pub fn link(n: usize, i: usize) -> String {
        format!("https://example.org/news/{n}/{i}?utm_source=feed")
    }
}

async fn feed(State(shared): State<Shared>, Path(n): Path<usize>) -> impl IntoResponse {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>Test feed</title>",
    );
    for i in 0..shared.items {
        xml.push_str(&format!(
            "<item><guid isPermaLink=\"false\">feed{n}-item{i}</guid><title>Report {n}-{i}</title>\
             <link>{}</link><description>{}</description></item>",
            FeedServer::link(n, i).replace('&', "&amp;"),
            text(n, i)
        ));
    }
    xml.push_str("</channel></rss>");
    (
        [(header::CONTENT_TYPE, "application/rss+xml; charset=utf-8")],
        xml,
    )
}

/// Forty words chosen by a hash of (n, i): different items get different texts, so
/// each one is its own story.
fn text(n: usize, i: usize) -> String {
    let mut x = (n as u64) << 32 | i as u64 | 1;
    (0..40)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            WORDS[(x % WORDS.len() as u64) as usize]
        })
        .collect::<Vec<_>>()
        .join(" ")
}
