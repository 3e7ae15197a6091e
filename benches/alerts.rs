//! Alert delivery of the real `newswatch` binary: throughput and latency to loopback
//! webhook receivers. A plain `fn main()` (harness = false): these are whole-run
//! measurements of a subprocess, not micro-benchmarks.
//!
//! ```text
//! cargo build --release                     # the binary under test
//! cargo bench --bench alerts                # both parts (about two minutes)
//! cargo bench --bench alerts -- throughput  # part (a) only
//! cargo bench --bench alerts -- latency     # part (b) only
//! ```
//!
//! Both parts run servers on 127.0.0.1 inside this process, on one small tokio runtime:
//! a feed server (axum) and a webhook receiver (axum, answering 200 to every POST on
//! `/hook/{sink}` and noting when each arrived and which item it was about).
//!
//! - (a) throughput: 40 feeds of 100 items, every item a distinct story matching the one
//!   topic. `newswatch once` on a fresh store, first with 1 webhook sink, then with 4
//!   (the topic names all 4). Deliveries per second are taken from the receiver's
//!   arrival times: (requests - 1) / (last arrival - first arrival), all sinks
//!   together; the wall time of the whole `once` (poll, process, store, deliver) is
//!   reported beside it. Each case runs [`ROUNDS`] times; the median is reported.
//! - (b) latency: `newswatch run` on a fresh store with 100 feeds of 5 items. All feeds
//!   are due at start, but feed `n` answers its first poll only `n × 100 ms` after the
//!   request, so the items arrive spread over 10 s at instants this process records
//!   (just before the response is returned). The latency of an alert is its arrival at
//!   the receiver minus the instant the feed server answered the poll that carried its
//!   item: parsing, the pipeline, the store write and flush, waking the worker, and the
//!   webhook request. Median, p99 and max over all alerts, with 1 and with 4 sinks. The
//!   run stays under the poller's one-minute minimum interval, so each feed is read
//!   once; then the daemon is stopped with SIGTERM.
//!
//! Figures and the machine they were taken on are in BENCHMARKS.md, section "Alerts".

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

/// Throughput part: feeds and items per feed (every item raises one alert per sink).
const THROUGHPUT_FEEDS: usize = 40;
const THROUGHPUT_ITEMS: usize = 100;
/// Runs of each throughput case; the median is reported.
const ROUNDS: usize = 5;
/// Latency part: feeds, items per feed, and how much later each next feed answers.
const LATENCY_FEEDS: usize = 100;
const LATENCY_ITEMS: usize = 5;
const LATENCY_STEP: Duration = Duration::from_millis(100);
/// The longest a latency run waits for its alerts.
const LATENCY_LIMIT: Duration = Duration::from_secs(50);
/// Words per generated item text.
const TEXT_WORDS: usize = 80;
const SEED: u64 = 0x616c_6572_7473_2d62;

// ---------------------------------------------------------------------------
// Deterministic text: splitmix64 over a generated vocabulary.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// 4,000 pronounceable made-up words, so texts share no phrases by accident and every
/// item is its own story.
fn vocabulary(rng: &mut Rng) -> Vec<String> {
    const ONSETS: &[&str] = &[
        "b", "br", "c", "d", "dr", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "pr", "r", "s",
        "st", "t", "tr", "v", "w", "z",
    ];
    const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "ou"];
    const CODAS: &[&str] = &["", "n", "r", "s", "t", "l", "nd", "rk", "st"];
    (0..4000)
        .map(|_| {
            let syllables = 2 + rng.below(2);
            (0..syllables)
                .map(|_| {
                    format!(
                        "{}{}{}",
                        ONSETS[rng.below(ONSETS.len())],
                        VOWELS[rng.below(VOWELS.len())],
                        CODAS[rng.below(CODAS.len())]
                    )
                })
                .collect::<String>()
        })
        .collect()
}

/// An item text: made-up words with "museum" (the topic's term) somewhere in it.
fn item_text(rng: &mut Rng, words: &[String]) -> String {
    let at = rng.below(TEXT_WORDS);
    (0..TEXT_WORDS)
        .map(|i| {
            if i == at {
                "museum"
            } else {
                words[rng.below(words.len())].as_str()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn title(part: &str, feed: usize, item: usize) -> String {
    format!("Bench {part} feed {feed} item {item}")
}

/// An RSS 2.0 feed of `items` generated items.
fn feed_xml(part: &str, feed: usize, items: usize, rng: &mut Rng, words: &[String]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>Bench</title>",
    );
    for i in 0..items {
        let _ = write!(
            xml,
            "<item><guid isPermaLink=\"false\">{part}-{feed}-{i}</guid><title>{}</title>\
             <link>https://example.org/{part}/{feed}/{i}</link><description>{}</description></item>",
            title(part, feed, i),
            item_text(rng, words)
        );
    }
    xml.push_str("</channel></rss>");
    xml
}

// ---------------------------------------------------------------------------
// Servers: feeds and the webhook receiver.

/// One answered poll of a latency feed: when, and which items it carried.
#[derive(Debug, Clone)]
struct Served {
    at: Instant,
    feed: usize,
}

/// One request that reached the receiver.
#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    sink: usize,
    title: String,
}

#[derive(Clone)]
struct Shared {
    throughput: Arc<Vec<String>>,
    latency: Arc<Vec<String>>,
    served: Arc<Mutex<Vec<Served>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

async fn throughput_feed(State(s): State<Shared>, UrlPath(n): UrlPath<usize>) -> impl IntoResponse {
    match s.throughput.get(n) {
        Some(xml) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/rss+xml")],
            xml.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Feed `n` of the latency part answers `n × LATENCY_STEP` after the request.
async fn latency_feed(State(s): State<Shared>, UrlPath(n): UrlPath<usize>) -> impl IntoResponse {
    let Some(xml) = s.latency.get(n).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    tokio::time::sleep(LATENCY_STEP * n as u32).await;
    s.served.lock().unwrap().push(Served {
        at: Instant::now(),
        feed: n,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/rss+xml")],
        xml,
    )
        .into_response()
}

async fn hook(State(s): State<Shared>, UrlPath(sink): UrlPath<usize>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let title = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["item"]["title"].as_str().map(str::to_string))
        .unwrap_or_default();
    s.hits.lock().unwrap().push(Hit { at, sink, title });
    StatusCode::OK
}

struct Servers {
    addr: std::net::SocketAddr,
    shared: Shared,
    _runtime: tokio::runtime::Runtime,
}

impl Servers {
    fn start() -> Servers {
        let mut rng = Rng(SEED);
        let words = vocabulary(&mut rng);
        let throughput = (0..THROUGHPUT_FEEDS)
            .map(|n| feed_xml("t", n, THROUGHPUT_ITEMS, &mut rng, &words))
            .collect();
        let latency = (0..LATENCY_FEEDS)
            .map(|n| feed_xml("l", n, LATENCY_ITEMS, &mut rng, &words))
            .collect();
        let shared = Shared {
            throughput: Arc::new(throughput),
            latency: Arc::new(latency),
            served: Arc::default(),
            hits: Arc::default(),
        };
        // One worker: the daemon under test gets the other core.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("bench runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new()
            .route("/t/{n}", get(throughput_feed))
            .route("/l/{n}", get(latency_feed))
            .route("/hook/{sink}", post(hook))
            .with_state(shared.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Servers {
            addr,
            shared,
            _runtime: runtime,
        }
    }

    fn reset(&self) {
        self.shared.served.lock().unwrap().clear();
        self.shared.hits.lock().unwrap().clear();
    }

    fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------
// The binary under test.

fn binary() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/newswatch");
    if !path.is_file() {
        eprintln!(
            "alerts bench: {} is missing; build it first with `cargo build --release`.",
            path.display()
        );
        std::process::exit(2);
    }
    path
}

/// A config: `feeds` feeds under `/{part}/`, one topic matching every item, and
/// `sinks` webhook sinks (all named by the topic), signed as in production.
fn write_config(
    dir: &Path,
    addr: std::net::SocketAddr,
    part: &str,
    feeds: usize,
    sinks: usize,
) -> PathBuf {
    let mut text = format!(
        "[storage]\npath = {:?}\n[poller]\ninterval = \"1h\"\nconcurrency = 128\nper_host = 128\ntimeout = \"30s\"\nallow_private = true\n[alert]\nallow_private = true\n",
        dir.join("data")
    );
    for n in 0..feeds {
        let _ = write!(
            text,
            "[[feeds]]\nurl = \"http://{addr}/{part}/{n}\"\nname = \"Bench {n}\"\n"
        );
    }
    for k in 0..sinks {
        let _ = write!(
            text,
            "[[sinks]]\nid = \"hook{k}\"\nkind = \"webhook\"\nurl = \"http://{addr}/hook/{k}\"\n\
             secret_env = \"NW_BENCH_SECRET\"\n"
        );
    }
    let names: Vec<String> = (0..sinks).map(|k| format!("\"hook{k}\"")).collect();
    let _ = write!(
        text,
        "[[topics]]\nid = \"bench\"\nname = \"Bench\"\nquery = \"museum\"\nsinks = [{}]\n",
        names.join(", ")
    );
    let path = dir.join("newswatch.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn newswatch(config: &Path, command: &str, log: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.arg(command)
        .arg("--config")
        .arg(config)
        .env_remove("NEWSWATCH_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("INVOCATION_ID")
        .env_remove("NOTIFY_SOCKET")
        .env(
            "NW_BENCH_SECRET",
            "whsec_YmVuY2gtc2VjcmV0LWtleS0zMi1ieXRlcyEhISE=",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"));
    cmd
}

// ---------------------------------------------------------------------------
// Part (a): throughput of `once`.

struct Throughput {
    sinks: usize,
    delivered: usize,
    expected: usize,
    per_second: f64,
    delivery: Duration,
    wall: Duration,
}

fn throughput_round(servers: &Servers, sinks: usize) -> Throughput {
    servers.reset();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), servers.addr, "t", THROUGHPUT_FEEDS, sinks);
    let log = dir.path().join("newswatch.log");
    let start = Instant::now();
    let status = newswatch(&config, "once", &log)
        .status()
        .expect("run newswatch once");
    let wall = start.elapsed();
    if !status.success() {
        panic!(
            "newswatch once failed ({status}):\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    let mut hits = servers.hits();
    hits.sort_by_key(|h| h.at);
    let expected = sinks * THROUGHPUT_FEEDS * THROUGHPUT_ITEMS;
    let delivery = match (hits.first(), hits.last()) {
        (Some(first), Some(last)) => last.at - first.at,
        _ => Duration::ZERO,
    };
    let per_second = if delivery.is_zero() {
        0.0
    } else {
        (hits.len() - 1) as f64 / delivery.as_secs_f64()
    };
    Throughput {
        sinks,
        delivered: hits.len(),
        expected,
        per_second,
        delivery,
        wall,
    }
}

fn throughput(servers: &Servers, report: &mut String) {
    let _ = writeln!(
        report,
        "\n(a) throughput: `newswatch once`, {} feeds x {} items, every item one alert per sink; median of {ROUNDS} rounds\n",
        THROUGHPUT_FEEDS, THROUGHPUT_ITEMS
    );
    let _ = writeln!(
        report,
        "| sinks | alerts delivered | deliveries/s (receiver) | delivery phase | `once` wall time | rounds (deliveries/s) |"
    );
    let _ = writeln!(report, "|---:|---:|---:|---:|---:|---|");
    for sinks in [1, 4] {
        let mut rounds: Vec<Throughput> = (0..ROUNDS)
            .map(|round| {
                let r = throughput_round(servers, sinks);
                eprintln!(
                    "  throughput: {sinks} sink(s), round {}: {} of {} delivered, {:.0}/s over {:.2} s, once took {:.2} s",
                    round + 1,
                    r.delivered,
                    r.expected,
                    r.per_second,
                    r.delivery.as_secs_f64(),
                    r.wall.as_secs_f64()
                );
                r
            })
            .collect();
        let all: Vec<String> = rounds
            .iter()
            .map(|r| format!("{:.0}", r.per_second))
            .collect();
        rounds.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
        let median = &rounds[rounds.len() / 2];
        let _ = writeln!(
            report,
            "| {} | {} of {} | **{:.0}** | {:.2} s | {:.2} s | {} |",
            median.sinks,
            median.delivered,
            median.expected,
            median.per_second,
            median.delivery.as_secs_f64(),
            median.wall.as_secs_f64(),
            all.join(", ")
        );
    }
}

// ---------------------------------------------------------------------------
// Part (b): latency of `run`, from the poll's answer to the webhook's arrival.

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn latency_run(servers: &Servers, sinks: usize, report: &mut String) {
    servers.reset();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), servers.addr, "l", LATENCY_FEEDS, sinks);
    let log = dir.path().join("newswatch.log");
    let expected = sinks * LATENCY_FEEDS * LATENCY_ITEMS;
    let mut child = newswatch(&config, "run", &log)
        .spawn()
        .expect("spawn newswatch run");
    let start = Instant::now();
    while servers.hits().len() < expected && start.elapsed() < LATENCY_LIMIT {
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill(2) on the pid of a child this process spawned and has not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().expect("wait for newswatch run");
    let hits = servers.hits();
    if hits.len() < expected {
        eprintln!(
            "alerts bench: only {} of {expected} alerts arrived within {LATENCY_LIMIT:?}; log:\n{}",
            hits.len(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    // When each feed's first poll was answered.
    let mut answered: HashMap<usize, Instant> = HashMap::new();
    for s in servers.shared.served.lock().unwrap().iter() {
        answered.entry(s.feed).or_insert(s.at);
    }
    let polled_again = servers.shared.served.lock().unwrap().len() - answered.len();
    let feed_of: HashMap<String, usize> = (0..LATENCY_FEEDS)
        .flat_map(|n| (0..LATENCY_ITEMS).map(move |i| (title("l", n, i), n)))
        .collect();
    let mut latencies = Vec::new();
    let mut per_sink: Vec<Vec<Duration>> = vec![Vec::new(); sinks];
    for hit in &hits {
        let feed = feed_of[&hit.title];
        let latency = hit.at.saturating_duration_since(answered[&feed]);
        latencies.push(latency);
        per_sink[hit.sink].push(latency);
    }
    latencies.sort();
    let spread = answered
        .values()
        .max()
        .zip(answered.values().min())
        .map_or(Duration::ZERO, |(a, b)| *a - *b);
    eprintln!(
        "  latency: {sinks} sink(s): {} alerts, polls answered over {:.1} s, {polled_again} repeat polls, exit {status}",
        hits.len(),
        spread.as_secs_f64()
    );
    let sink_medians: Vec<String> = per_sink
        .iter_mut()
        .map(|l| {
            l.sort();
            ms(percentile(l, 0.5))
        })
        .collect();
    let _ = writeln!(
        report,
        "| {sinks} | {} of {expected} | **{}** | {} | **{}** | {} | {} |",
        hits.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
        sink_medians.join(", ")
    );
}

fn latency(servers: &Servers, report: &mut String) {
    let _ = writeln!(
        report,
        "\n(b) latency: `newswatch run`, {} feeds x {} items, feed n answers its poll n x {} ms after the request\n",
        LATENCY_FEEDS,
        LATENCY_ITEMS,
        LATENCY_STEP.as_millis()
    );
    let _ = writeln!(
        report,
        "| sinks | alerts | median | p90 | p99 | max | median per sink |"
    );
    let _ = writeln!(report, "|---:|---:|---:|---:|---:|---:|---|");
    for sinks in [1, 4] {
        latency_run(servers, sinks, report);
    }
}

// ---------------------------------------------------------------------------

fn machine() -> String {
    let run = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    let model = run("lscpu", &[])
        .lines()
        .find_map(|l| l.strip_prefix("Model name:").map(|m| m.trim().to_string()))
        .unwrap_or_else(|| "?".into());
    format!(
        "nproc = {}; CPU: {model}; {}",
        run("nproc", &[]),
        run("rustc", &["-V"])
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is a filter.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |part: &str| filters.is_empty() || filters.iter().any(|f| part.contains(f));
    let binary = binary();
    let servers = Servers::start();
    let began = Instant::now();
    let mut report = String::new();
    let _ = writeln!(report, "machine: {}", machine());
    let _ = writeln!(
        report,
        "binary: {} (modified {:?} ago)",
        binary.display(),
        std::fs::metadata(&binary)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .map(|d| Duration::from_secs(d.as_secs()))
            .unwrap_or_default()
    );
    let _ = writeln!(report, "load average at start: {}", loadavg());
    if wanted("throughput") {
        throughput(&servers, &mut report);
    }
    if wanted("latency") {
        latency(&servers, &mut report);
    }
    let _ = writeln!(
        report,
        "\nload average at end: {}; bench took {:.0} s",
        loadavg(),
        began.elapsed().as_secs_f64()
    );
    println!("{report}");
}
