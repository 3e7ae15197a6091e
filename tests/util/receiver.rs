//! A webhook receiver on 127.0.0.1 for alert tests: records every request and answers
//! as the test says (200, 503 with Retry-After, 400).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok = 0,
    Unavailable = 1,
    BadRequest = 2,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

#[derive(Clone)]
struct Shared {
    mode: Arc<AtomicU8>,
    log: Arc<Mutex<Vec<Received>>>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    log: Arc<Mutex<Vec<Received>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    /// Listens on `addr` (port 0 for any free port).
    pub fn start(addr: SocketAddr, mode: Mode) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("test runtime");
        let shared = Shared {
            mode: Arc::new(AtomicU8::new(mode as u8)),
            log: Arc::new(Mutex::new(Vec::new())),
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(shared.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            mode: shared.mode,
            log: shared.log,
            _runtime: runtime,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().expect("receiver log").clone()
    }

    /// Distinct `webhook-id`s answered with 200.
    pub fn delivered_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .received()
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.header("webhook-id").to_string())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// A port on 127.0.0.1 that nothing listens on (yet).
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr")
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (status, response) = match shared.mode.load(Ordering::SeqCst) {
        1 => (
            503,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", "1")],
                "busy",
            )
                .into_response(),
        ),
        2 => (400, (StatusCode::BAD_REQUEST, "no").into_response()),
        _ => (200, (StatusCode::OK, "ok").into_response()),
    };
    shared.log.lock().expect("receiver log").push(Received {
        headers,
        body,
        at: Instant::now(),
        status,
    });
    response
}

/// The signing key of the tests' webhook sinks.
pub const SECRET_KEY: &[u8] = b"a test key of thirty-two bytes!!";

/// [`SECRET_KEY`] as a sink's secret is written (`whsec_` and base64).
pub fn secret() -> String {
    use base64::Engine as _;
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(SECRET_KEY)
    )
}

/// The `webhook-signature` a request with these headers and body must carry, computed
/// here independently of the code under test (docs/webhooks.md).
pub fn expected_signature(id: &str, ts: &str, body: &[u8]) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET_KEY).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}
