//! The HTTP API (`newswatch::api`) over a real sled store in a temporary directory,
//! served on 127.0.0.1 and asked with a real HTTP client.
//!
//! Metrics are process-wide and other tests in this binary poll feeds in-process, so
//! shared counters are checked to have moved by at least what a test did, and exact
//! values only on labels no other test uses.

use std::time::Duration;

use chrono::{DateTime, Utc};
use newswatch::api::{self, ApiState, Health};
use newswatch::metrics;
use newswatch::store::{Attempt, SledStore};
use prometheus_parse::{Scrape, Value as Sample};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::util::records::{alert, item};

/// The API serving a store with four items and three alerts.
struct ApiServer {
    base: String,
    health: Health,
    client: reqwest::Client,
    stop: CancellationToken,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    now: DateTime<Utc>,
    _dir: tempfile::TempDir,
}

impl ApiServer {
    async fn start(token: Option<&str>) -> ApiServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(dir.path()).expect("open store");
        let now = Utc::now();
        fill(&store, now);
        let health = Health::new();
        health.set_store_open(true);
        health.progress();
        let state = ApiState::new(
            std::sync::Arc::new(store),
            health.clone(),
            token.map(str::to_string),
            api::progress_bound(Duration::from_secs(60)),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let stop = CancellationToken::new();
        let served = tokio::spawn(api::serve(listener, state, stop.clone()));
        ApiServer {
            base,
            health,
            client: reqwest::Client::new(),
            stop,
            served,
            now,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// GET, expecting `status` and a JSON body.
    async fn json(&self, path: &str, status: u16) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status().as_u16(), status, "GET {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "GET {path}"
        );
        let text = response.text().await.expect("a body");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {text}"))
    }

    /// The ids of a JSON array answer.
    async fn ids(&self, path: &str) -> Vec<String> {
        self.json(path, 200)
            .await
            .as_array()
            .unwrap_or_else(|| panic!("GET {path}: not an array"))
            .iter()
            .map(|v| v["id"].as_str().expect("id").to_string())
            .collect()
    }

    async fn scrape(&self) -> Scrape {
        let response = self.get("/metrics").await;
        assert_eq!(response.status().as_u16(), 200);
        let kind = response.headers()["content-type"].to_str().unwrap();
        assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
        let text = response.text().await.unwrap();
        Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text")
    }
}

/// Items i1 (5 h ago, ceasefire), i2 (3 h, energy), i3 (1 h, both), i4 (10 min, none);
/// alerts: i1's pending, i2's failed, i3's delivered.
fn fill(store: &SledStore, now: DateTime<Utc>) {
    let ago = |minutes| now - chrono::Duration::minutes(minutes);
    let items = [
        item("i1", ago(300), &["ceasefire"]),
        item("i2", ago(180), &["energy"]),
        item("i3", ago(60), &["ceasefire", "energy"]),
        item("i4", ago(10), &[]),
    ];
    let alerts = [
        alert(&items[0], "ceasefire", "hook", ago(300)),
        alert(&items[1], "energy", "log", ago(180)),
        alert(&items[2], "ceasefire", "hook", ago(60)),
    ];
    assert_eq!(store.insert_items_with_alerts(&items, &alerts).unwrap(), 4);
    store
        .record_attempt(
            &alerts[1].id,
            &Attempt::Failed {
                error: "400 Bad Request".into(),
            },
        )
        .unwrap();
    store
        .record_attempt(&alerts[2].id, &Attempt::Delivered { at: ago(59) })
        .unwrap();
}

fn scalar(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
    match found.map(|s| &s.value) {
        Some(Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v)) => *v,
        other => panic!("no scalar sample {name} {labels:?}: {other:?}"),
    }
}

#[tokio::test]
async fn healthz_is_ok_only_with_the_store_open_and_the_poll_loop_progressing() {
    let server = ApiServer::start(None).await;
    let ok = server.json("/healthz", 200).await;
    assert_eq!(ok["status"], "ok");
    assert_eq!(ok["store_open"], true);
    assert_eq!(ok["progress_bound_seconds"], 600);

    server.health.set_store_open(false);
    let down = server.json("/healthz", 503).await;
    assert_eq!(down["status"], "unavailable");
    assert!(
        down["reason"]
            .as_str()
            .unwrap()
            .contains("store is not open"),
        "{down}"
    );

    server.health.set_store_open(true);
    server
        .health
        .progress_at(Utc::now() - chrono::Duration::minutes(11));
    let stalled = server.json("/healthz", 503).await;
    let reason = stalled["reason"].as_str().unwrap();
    assert!(
        reason.contains("poll loop has made no progress"),
        "{reason}"
    );
    assert!(!reason.contains("store"), "{reason}");

    server.health.progress();
    assert_eq!(server.json("/healthz", 200).await["status"], "ok");
}

#[tokio::test]
async fn metrics_parse_and_move_with_what_is_recorded() {
    let server = ApiServer::start(None).await;
    let before = server.scrape().await;
    let fetched = |s: &Scrape| {
        scalar(
            s,
            "newswatch_feed_fetches_total",
            &[("outcome", "not_modified")],
        )
    };

    let m = metrics::global();
    m.fetch("not_modified");
    m.topic_matched("api-test-topic");
    m.topic_matched("api-test-topic");
    m.alert("api-test-sink", "delivered");

    let after = server.scrape().await;
    assert!(
        fetched(&after) >= fetched(&before) + 1.0,
        "{} then {}",
        fetched(&before),
        fetched(&after)
    );
    assert_eq!(
        scalar(
            &after,
            "newswatch_topic_matches_total",
            &[("topic", "api-test-topic")]
        ),
        2.0
    );
    assert_eq!(
        scalar(
            &after,
            "newswatch_alerts_total",
            &[("sink", "api-test-sink"), ("outcome", "delivered")]
        ),
        1.0
    );
    // The store gauges are refreshed from this server's store at each scrape.
    assert_eq!(scalar(&after, "newswatch_store_items", &[]), 4.0);
    assert_eq!(scalar(&after, "newswatch_alerts_pending", &[]), 1.0);
    assert_eq!(
        scalar(
            &after,
            "newswatch_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(after
        .samples
        .iter()
        .any(|s| s.metric == "newswatch_alert_delivery_seconds"
            && matches!(s.value, Sample::Histogram(_))));
}

#[tokio::test]
async fn items_filter_by_topic_since_and_limit() {
    let server = ApiServer::start(None).await;
    assert_eq!(server.ids("/api/items").await, ["i4", "i3", "i2", "i1"]);
    assert_eq!(server.ids("/api/items?topic=ceasefire").await, ["i3", "i1"]);
    assert_eq!(server.ids("/api/items?topic=energy").await, ["i3", "i2"]);
    assert!(server.ids("/api/items?topic=unknown").await.is_empty());
    assert_eq!(server.ids("/api/items?since=2h").await, ["i4", "i3"]);
    let since = (server.now - chrono::Duration::minutes(200)).to_rfc3339();
    let path = format!(
        "/api/items?topic=energy&since={}",
        since.replace('+', "%2B")
    );
    assert_eq!(server.ids(&path).await, ["i3", "i2"]);
    assert_eq!(server.ids("/api/items?limit=2").await, ["i4", "i3"]);
    assert_eq!(
        server.ids("/api/items?topic=ceasefire&limit=1").await,
        ["i3"]
    );

    // The fields of `newswatch items --json`.
    let items = server.json("/api/items?topic=ceasefire&limit=1", 200).await;
    let i3 = &items[0];
    assert_eq!(i3["feed"], "Example");
    assert_eq!(i3["title"], "Title of i3");
    assert_eq!(i3["url"], "https://example.org/i3");
    assert_eq!(i3["story"], "i3");
    assert_eq!(i3["story_lead"], true);
    assert_eq!(i3["entities"][0]["id"], "ukraine");
    assert_eq!(i3["topics"][0]["id"], "ceasefire");
    assert_eq!(i3["topics"][0]["score"], 2.5);
    assert!(DateTime::parse_from_rfc3339(i3["fetched"].as_str().unwrap()).is_ok());
    assert!(DateTime::parse_from_rfc3339(i3["published"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn alerts_filter_by_status() {
    let server = ApiServer::start(None).await;
    assert_eq!(
        server.ids("/api/alerts").await,
        [
            "a-i3-ceasefire-hook",
            "a-i2-energy-log",
            "a-i1-ceasefire-hook"
        ]
    );
    assert_eq!(
        server.ids("/api/alerts?status=pending").await,
        ["a-i1-ceasefire-hook"]
    );
    assert_eq!(
        server.ids("/api/alerts?status=failed").await,
        ["a-i2-energy-log"]
    );
    assert_eq!(
        server.ids("/api/alerts?limit=1").await,
        ["a-i3-ceasefire-hook"]
    );

    // The fields of `newswatch alerts --json`.
    let delivered = server.json("/api/alerts?status=delivered", 200).await;
    let a = &delivered[0];
    assert_eq!(a["id"], "a-i3-ceasefire-hook");
    assert_eq!(a["status"], "delivered");
    assert_eq!(a["sink"], "hook");
    assert_eq!(a["topic"], "ceasefire");
    assert_eq!(a["item"], "i3");
    assert_eq!(a["title"], "Title of i3");
    assert_eq!(a["attempts"], 1);
    assert!(a["delivered_at"].is_string());
    assert!(a["last_error"].is_null());
    let failed = server.json("/api/alerts?status=failed", 200).await;
    assert_eq!(failed[0]["last_error"], "400 Bad Request");
}

#[tokio::test]
async fn bad_parameters_are_400_naming_them() {
    let server = ApiServer::start(None).await;
    for (path, parameter) in [
        ("/api/items?limit=0", "limit"),
        ("/api/items?limit=1001", "limit"),
        ("/api/items?limit=ten", "limit"),
        ("/api/items?limit=-1", "limit"),
        ("/api/items?since=yesterday", "since"),
        ("/api/items?since=100000000y", "since"),
        ("/api/items?topic=", "topic"),
        ("/api/items?topics=ceasefire", "topics"),
        ("/api/items?limit=1&limit=2", "limit"),
        ("/api/alerts?status=lost", "status"),
        ("/api/alerts?limit=5000", "limit"),
        ("/api/alerts?topic=ceasefire", "topic"),
    ] {
        let body = server.json(path, 400).await;
        assert_eq!(body["parameter"], parameter, "{path}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("parameter {parameter}:")),
            "{path}: {error}"
        );
    }
    // The largest limit is fine.
    assert_eq!(server.ids("/api/items?limit=1000").await.len(), 4);
    // An unknown endpoint answers in JSON too.
    let missing = server.json("/api/nothing", 404).await;
    assert!(missing["error"].is_string());
}

#[tokio::test]
async fn a_token_guards_the_api_but_not_health_or_metrics() {
    let server = ApiServer::start(Some("s3cret")).await;
    for path in ["/api/items", "/api/alerts"] {
        let bare = server.get(path).await;
        assert_eq!(bare.status().as_u16(), 401, "{path}");
        assert_eq!(bare.headers()["www-authenticate"], "Bearer");
        let body: Value = serde_json::from_str(&bare.text().await.unwrap()).unwrap();
        assert!(body["error"].as_str().unwrap().contains("bearer token"));

        for wrong in ["Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret"] {
            let response = server
                .client
                .get(format!("{}{path}", server.base))
                .header("authorization", wrong)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 401, "{path} with {wrong}");
        }
        let ok = server
            .client
            .get(format!("{}{path}", server.base))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status().as_u16(), 200, "{path}");
    }
    // A bad parameter is only looked at once the token is checked.
    assert_eq!(
        server.get("/api/items?limit=0").await.status().as_u16(),
        401
    );
    assert_eq!(server.get("/healthz").await.status().as_u16(), 200);
    assert_eq!(server.get("/metrics").await.status().as_u16(), 200);
}

#[tokio::test]
async fn serve_stops_when_cancelled() {
    let server = ApiServer::start(None).await;
    // A kept-alive connection from this client stays open across the cancel.
    assert_eq!(server.get("/healthz").await.status().as_u16(), 200);
    server.stop.cancel();
    let served = tokio::time::timeout(Duration::from_secs(5), server.served)
        .await
        .expect("serve returns within its grace period")
        .expect("the serve task");
    served.expect("serve ends without an error");
    let fresh = reqwest::Client::new()
        .get(format!("{}/healthz", server.base))
        .send()
        .await;
    assert!(fresh.is_err(), "still answering after shutdown");
}

/// The real daemon with `[api]` on: polling loopback feeds moves the counters that
/// `/metrics` exposes, `/healthz` is ok, and `/api/items` serves what was stored.
#[test]
fn the_running_daemon_serves_metrics_that_move_with_polls() {
    use crate::util::daemon::Daemon;
    use crate::util::receiver::free_addr;
    use crate::util::server::FeedServer;

    let server = FeedServer::generated(8);
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = (0..5).map(|n| server.feed_url(n)).collect();
    let config = crate::util::feeds_config(dir.path(), &urls);
    let listen = free_addr();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("[api]\nlisten = \"{listen}\"\n"));
    std::fs::write(&config, text).unwrap();

    let daemon = Daemon::run(&config);
    assert!(
        daemon
            .log
            .wait_for("Fetched feed.", 5, Duration::from_secs(60)),
        "the daemon did not poll its five feeds"
    );
    // The feed server has a runtime of its own; the HTTP client gets one here.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let base = format!("http://{listen}");
        let client = reqwest::Client::new();
        // Processing follows fetching: wait (bounded) until all 40 items were stored.
        let mut scrape = None;
        for _ in 0..100 {
            let body = client
                .get(format!("{base}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let lines = body.lines().map(|l| Ok(l.to_string()));
            let parsed = Scrape::parse(lines).expect("Prometheus text exposition");
            if scalar(&parsed, "newswatch_items_stored_total", &[]) >= 40.0 {
                scrape = Some(parsed);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let scrape = scrape.expect("items_stored_total never reached 40");
        assert!(
            scalar(
                &scrape,
                "newswatch_feed_fetches_total",
                &[("outcome", "fetched")]
            ) >= 5.0
        );
        assert!(scalar(&scrape, "newswatch_items_processed_total", &[]) >= 40.0);
        assert_eq!(scalar(&scrape, "newswatch_feeds", &[]), 5.0);

        let health = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let body = client
            .get(format!("{base}/api/items?limit=100"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let items: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(items.as_array().unwrap().len(), 40);
    });

    daemon.stop(Duration::from_secs(10));
}

/// `newswatch run` with an API (token `s3cret` from `NEWSWATCH_TEST_TOKEN`) over five
/// local feeds of eight items, once it has fetched them all; the CLI commands of the
/// tests below run against it.
struct ApiDaemon {
    daemon: crate::util::daemon::Daemon,
    /// The config without `[api]`, and the one with it.
    bare: std::path::PathBuf,
    with_api: std::path::PathBuf,
    dir: tempfile::TempDir,
    _server: crate::util::server::FeedServer,
}

impl ApiDaemon {
    fn start() -> ApiDaemon {
        use crate::util::daemon::{run_command, Daemon};
        use crate::util::receiver::free_addr;
        use crate::util::server::FeedServer;

        let server = FeedServer::generated(8);
        let dir = tempfile::tempdir().unwrap();
        let urls: Vec<String> = (0..5).map(|n| server.feed_url(n)).collect();
        let bare = crate::util::feeds_config(dir.path(), &urls);
        let text = std::fs::read_to_string(&bare).unwrap();
        let listen = free_addr();
        let with_api = dir.path().join("with-api.toml");
        std::fs::write(
            &with_api,
            format!("{text}[api]\nlisten = \"{listen}\"\ntoken_env = \"NEWSWATCH_TEST_TOKEN\"\n"),
        )
        .unwrap();
        let daemon = Daemon::spawn(run_command(&with_api).env("NEWSWATCH_TEST_TOKEN", "s3cret"));
        // Until the daemon holds the store, a CLI command would open it itself (and
        // could keep the daemon from opening it).
        assert!(
            daemon
                .log
                .wait_for("Fetched feed.", 5, Duration::from_secs(60)),
            "the daemon did not poll its five feeds"
        );
        ApiDaemon {
            daemon,
            bare,
            with_api,
            dir,
            _server: server,
        }
    }

    /// `newswatch ARGS --config CONFIG` with the API token in the environment.
    fn cli(&self, args: &[&str], config: &std::path::Path) -> crate::util::Run {
        crate::util::run(
            crate::util::newswatch()
                .args(args)
                .arg("--config")
                .arg(config)
                .env("NEWSWATCH_TEST_TOKEN", "s3cret"),
        )
    }

    /// `items --json` through the API once all 40 items are stored (processing
    /// follows fetching; a bounded wait).
    fn all_items(&self) -> crate::util::Run {
        for _ in 0..200 {
            let out = self.cli(&["items", "--json", "--limit", "100"], &self.with_api);
            assert_eq!(out.code, 0, "{}", out.stderr);
            if out.items.len() == 40 {
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the daemon never stored the 40 items");
    }

    fn stop(self) {
        self.daemon.stop(Duration::from_secs(10));
    }
}

/// While `run` holds the store, `items` and `alerts` read through its API (with its
/// token); requeueing, which writes, says to stop the daemon; and with no `[api]` the
/// lock error says what to configure.
#[test]
fn items_and_alerts_read_through_the_running_daemon() {
    use crate::util::{newswatch, run};

    let daemon = ApiDaemon::start();
    let with_api = &daemon.with_api;
    let listed = daemon.all_items();
    assert!(
        listed.stderr.contains("reading items through its API"),
        "{}",
        listed.stderr
    );
    assert!(listed.items.iter().all(|i| i["title"].is_string()));
    let text = daemon.cli(&["items", "--limit", "3"], with_api);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert_eq!(text.stdout.lines().count(), 3, "{}", text.stdout);

    let alerts = daemon.cli(&["alerts", "--json"], with_api);
    assert_eq!(alerts.code, 0, "{}", alerts.stderr);
    assert!(alerts.stderr.contains("reading alerts through its API"));

    // A wrong token is the API's refusal, said as such.
    let refused = run(newswatch()
        .args(["items", "--config"])
        .arg(with_api)
        .env("NEWSWATCH_TEST_TOKEN", "wrong"));
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("401"), "{}", refused.stderr);

    let retry = daemon.cli(&["alerts", "--retry-all-failed"], with_api);
    assert_eq!(retry.code, 1);
    assert!(
        retry.stderr.contains("stop it to requeue alerts"),
        "{}",
        retry.stderr
    );

    let no_api = daemon.cli(&["items"], &daemon.bare);
    assert_eq!(no_api.code, 1);
    assert!(
        no_api
            .stderr
            .contains("in use by another newswatch process")
            && no_api.stderr.contains("add [api] listen"),
        "{}",
        no_api.stderr
    );

    daemon.stop();
}

/// `newswatch store backup DIR` while `newswatch run` holds the store: the daemon
/// makes the copy (its writes wait meanwhile) and checks it; the copy opens on its own
/// with every item. `store check` says to check a backup instead.
#[test]
fn store_backup_works_while_the_daemon_runs() {
    use crate::util::{newswatch, run};

    let daemon = ApiDaemon::start();
    let (dir, with_api) = (daemon.dir.path(), &daemon.with_api);
    let stored = daemon.all_items().items;

    // A relative DIR is the CLI's working directory, made absolute for the daemon.
    let copy = dir.join("copy");
    let backup = run(newswatch()
        .current_dir(dir)
        .args(["store", "backup", "copy", "--config"])
        .arg(with_api)
        .env("NEWSWATCH_TEST_TOKEN", "s3cret"));
    assert_eq!(backup.code, 0, "{}\n{}", backup.stdout, backup.stderr);
    assert!(
        backup.stdout.contains("made by the running daemon")
            && backup
                .stdout
                .contains("every record decodes and every index agrees"),
        "{}",
        backup.stdout
    );

    // The copy is a store of its own, with every item, while the daemon still runs.
    let bare = std::fs::read_to_string(&daemon.bare).unwrap();
    let copy_config = dir.join("copy.toml");
    let data = format!("{:?}", dir.join("data"));
    assert!(bare.contains(&data));
    std::fs::write(&copy_config, bare.replace(&data, &format!("{:?}", copy))).unwrap();
    let listed = daemon.cli(&["items", "--json", "--limit", "100"], &copy_config);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let ids = |items: &[serde_json::Value]| {
        let mut ids: Vec<String> = items.iter().map(|i| i["id"].to_string()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&listed.items), ids(&stored));
    let checked = daemon.cli(&["store", "check"], &copy_config);
    assert_eq!(checked.code, 0, "{}", checked.stderr);

    // Not into a directory that holds something: the daemon's refusal, said as such.
    let again = daemon.cli(&["store", "backup", copy.to_str().unwrap()], with_api);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);
    // Checking the live store needs it to itself, and says what to do instead.
    let check = daemon.cli(&["store", "check"], with_api);
    assert_eq!(check.code, 1);
    assert!(
        check.stderr.contains("check a backup of it"),
        "{}",
        check.stderr
    );

    daemon.stop();
}

/// A daemon that says it made a backup the CLI cannot see (a private /tmp under
/// systemd) is not taken at its word: the command fails and says where to back up.
#[test]
fn a_backup_the_cli_cannot_see_is_an_error() {
    use crate::util::server::{FeedServer, Reply};
    use crate::util::{newswatch, run};

    let dir = tempfile::tempdir().unwrap();
    // Answers as a daemon that backed up into its own private /tmp would.
    let fake_daemon = FeedServer::start(|_| {
        Reply::status(
            200,
            r#"{"dir":"x","trees":3,"entries":10,"checked":{},"problems":[]}"#,
        )
        .header("content-type", "application/json")
    });
    let listen = fake_daemon.addr;
    let data = dir.path().join("data");
    let config = dir.path().join("newswatch.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = {data:?}\n[api]\nlisten = \"{listen}\"\ntoken_env = \"NEWSWATCH_TEST_TOKEN\"\n"
        ),
    )
    .unwrap();
    // Held here, as a running daemon would hold it.
    let _held = SledStore::open(&data).unwrap();
    let copy = dir.path().join("copy");
    let out = run(newswatch()
        .args(["store", "backup"])
        .arg(&copy)
        .arg("--config")
        .arg(&config)
        .env("NEWSWATCH_TEST_TOKEN", "s3cret"));
    let requests: Vec<String> = fake_daemon.requests().iter().map(|r| r.line()).collect();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].starts_with("POST /api/store/backup?dir="),
        "{requests:?}"
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("missing from here")
            && out.stderr.contains("/var/lib/newswatch-backups"),
        "{}",
        out.stderr
    );
}
