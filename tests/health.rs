//! Feed health through the real binary: `once` against a loopback feed server whose
//! feeds answer 200, 500s, 404s, 410, a permanent redirect, and a feed gone quiet;
//! then `newswatch feeds` (from the store, and through a running daemon's API),
//! `/api/feeds` and the `feeds_by_state` metric. The health transitions are logged
//! once per change, across processes (each `once` is a new one).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use prometheus_parse::Scrape;
use serde_json::Value;

use crate::util::daemon::{run_command, Daemon};
use crate::util::receiver::free_addr;
use crate::util::server::{FeedServer, Reply};
use crate::util::{newswatch, run, Run};

/// An RSS feed of items published `ages` ago.
fn rss(name: &str, ages: &[TimeDelta]) -> String {
    let now = Utc::now();
    let items: String = ages
        .iter()
        .enumerate()
        .map(|(i, age)| {
            format!(
                "<item><title>{name} story {i}</title><link>https://example.org/{name}/{i}</link>\
                 <guid>{name}-{i}</guid><pubDate>{}</pubDate>\
                 <description>Museum news number {i} from {name}.</description></item>",
                (now - *age).to_rfc2822()
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{name}</title>\
         <link>https://example.org/</link><description>{name}</description>{items}</channel></rss>"
    )
}

/// The feeds of the tests, by name: path on the server.
const FEEDS: [(&str, &str); 6] = [
    ("fine", "/fine"),
    ("flaky", "/flaky"),
    ("missing", "/missing"),
    ("gone", "/gone"),
    ("moved", "/old"),
    ("quiet", "/quiet"),
];

struct Setup {
    server: FeedServer,
    /// `/flaky` answers 500 while this is set.
    flaky_down: Arc<AtomicBool>,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

fn setup(extra: &str) -> Setup {
    let flaky_down = Arc::new(AtomicBool::new(true));
    let down = flaky_down.clone();
    let hourly: Vec<TimeDelta> = (1..=5).map(TimeDelta::hours).collect();
    let month_ago: Vec<TimeDelta> = (30..=34).map(TimeDelta::days).collect();
    let server = FeedServer::start(move |request| match request.path.as_str() {
        "/fine" | "/new" => Reply::feed(rss("fine", &hourly)),
        "/flaky" if down.load(Ordering::SeqCst) => Reply::status(500, "down"),
        "/flaky" => Reply::feed(rss("flaky", &hourly)),
        "/gone" => Reply::status(410, "gone"),
        "/old" => Reply::redirect(301, "/new"),
        "/quiet" => Reply::feed(rss("quiet", &month_ago)),
        _ => Reply::not_found(),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!(
        "[storage]\npath = {:?}\n[poller]\ninterval = \"1h\"\ntimeout = \"10s\"\n\
         [[sinks]]\nid = \"log\"\nkind = \"log\"\n[health]\nsink = \"log\"\n{extra}",
        dir.path().join("data")
    );
    for (name, path) in FEEDS {
        text.push_str(&format!(
            "[[feeds]]\nname = {name:?}\nurl = {:?}\n",
            server.url(path)
        ));
    }
    let config = dir.path().join("newswatch.toml");
    std::fs::write(&config, text).unwrap();
    Setup {
        server,
        flaky_down,
        dir,
        config,
    }
}

/// `newswatch once`, logging JSON lines.
fn once(config: &std::path::Path) -> Run {
    let out = run(newswatch()
        .args(["--log-format", "json", "once", "--config"])
        .arg(config));
    // Some feeds fail, not all: the run itself succeeds.
    assert_eq!(out.code, 0, "{}", out.err());
    out
}

/// The (feed, state) of every log line of `once` with this message.
fn logged(out: &Run, message: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = out
        .stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == message)
        .map(|line| {
            let field = |k: &str| line["fields"][k].as_str().unwrap_or("").to_string();
            (field("feed"), field("state"))
        })
        .collect();
    found.sort();
    found
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// `feeds --json` rows by feed name.
fn by_name(rows: &[Value]) -> std::collections::BTreeMap<String, Value> {
    rows.iter()
        .map(|row| (row["name"].as_str().unwrap().to_string(), row.clone()))
        .collect()
}

fn states(rows: &[Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Three `once` runs: the 410, the redirect and the quiet feed are bad from the first
/// poll, the 500s and 404s from the third (`failing_after = 3`); each transition is
/// logged once, in the run that made it, and never again in later runs (new
/// processes reading the state back); a feed that answers again recovers once.
/// `newswatch feeds` shows each state with its reason and the moved feed's new url.
#[test]
fn feeds_show_each_health_state_and_transitions_are_told_once() {
    let setup = setup("");
    let config = &setup.config;

    let first = once(config);
    assert_eq!(
        logged(&first, "Feed became unhealthy."),
        pairs(&[("gone", "gone"), ("moved", "moved"), ("quiet", "stale")]),
        "{}",
        first.err()
    );
    let second = once(config);
    assert_eq!(logged(&second, "Feed became unhealthy."), []);
    let third = once(config);
    assert_eq!(
        logged(&third, "Feed became unhealthy."),
        pairs(&[("flaky", "failing"), ("missing", "failing")])
    );
    let fourth = once(config);
    assert_eq!(logged(&fourth, "Feed became unhealthy."), []);
    assert_eq!(logged(&fourth, "Feed is healthy again."), []);

    let listed = run(newswatch()
        .args(["feeds", "--json", "--config"])
        .arg(config));
    assert_eq!(listed.code, 0, "{}", listed.err());
    assert_eq!(
        states(&listed.items),
        pairs(&[
            ("fine", "ok"),
            ("flaky", "failing"),
            ("gone", "gone"),
            ("missing", "failing"),
            ("moved", "moved"),
            ("quiet", "stale"),
        ])
    );
    let rows = by_name(&listed.items);
    // Config order, every feed.
    let names: Vec<&str> = listed
        .items
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, FEEDS.map(|(name, _)| name));
    let fine = &rows["fine"];
    assert_eq!(fine["consecutive_errors"], 0);
    assert_eq!(fine["last_status"], 200);
    assert!(fine["last_success"].is_string());
    assert_eq!(fine["usual_gap_seconds"], 3600, "{fine}");
    assert!(fine["reason"].is_null());
    let flaky = &rows["flaky"];
    assert_eq!(flaky["consecutive_errors"], 4);
    assert_eq!(flaky["last_status"], 500);
    let reason = flaky["reason"].as_str().unwrap();
    assert!(
        reason.contains("4 consecutive failed polls") && reason.contains("HTTP 500"),
        "{reason}"
    );
    assert!(flaky["last_success"].is_null());
    assert_eq!(rows["missing"]["last_status"], 404);
    assert_eq!(rows["gone"]["last_status"], 410);
    let moved = &rows["moved"];
    assert_eq!(moved["moved_to"], setup.server.url("/new").as_str());
    assert_eq!(moved["url"], setup.server.url("/old").as_str());
    let quiet = &rows["quiet"];
    assert_eq!(quiet["usual_gap_seconds"], 86_400);
    assert!(
        quiet["reason"]
            .as_str()
            .unwrap()
            .contains("usually one every 1d"),
        "{quiet}"
    );

    // The table says the same, with the address to use for the moved feed.
    let table = run(newswatch().args(["feeds", "--config"]).arg(config));
    assert_eq!(table.code, 0, "{}", table.err());
    let line = |name: &str| {
        table
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {}", table.stdout))
            .to_string()
    };
    assert!(
        line("moved").contains(&format!("use {}", setup.server.url("/new"))),
        "{}",
        table.stdout
    );
    assert!(
        line("flaky").contains("failing  500    4 err  ok -"),
        "{}",
        table.stdout
    );
    assert!(line("quiet").contains("gap 1d"), "{}", table.stdout);

    // The server answers again: recovered, once.
    setup.flaky_down.store(false, Ordering::SeqCst);
    let fifth = once(config);
    assert_eq!(
        logged(&fifth, "Feed is healthy again."),
        pairs(&[("flaky", "ok")])
    );
    let sixth = once(config);
    assert_eq!(logged(&sixth, "Feed is healthy again."), []);
    let listed = run(newswatch()
        .args(["feeds", "--json", "--config"])
        .arg(config));
    let flaky = &by_name(&listed.items)["flaky"];
    assert_eq!(
        (
            flaky["state"].as_str(),
            flaky["consecutive_errors"].as_u64()
        ),
        (Some("ok"), Some(0))
    );
    drop(setup.dir);
}

/// A feed answering 404 is `gone` once it has for `gone_after`, not before.
#[test]
fn a_feed_answering_404_for_gone_after_is_gone() {
    let setup = setup("failing_after = 10\ngone_after = \"1s\"\n");
    let first = once(&setup.config);
    assert_eq!(logged(&first, "Feed became unhealthy.").len(), 3);
    let listed = run(newswatch()
        .args(["feeds", "--json", "--config"])
        .arg(&setup.config));
    assert_eq!(by_name(&listed.items)["missing"]["state"], "ok");
    // The second failure comes more than `gone_after` after the first.
    std::thread::sleep(Duration::from_millis(1100));
    let second = once(&setup.config);
    assert_eq!(
        logged(&second, "Feed became unhealthy."),
        pairs(&[("missing", "gone")])
    );
    let listed = run(newswatch()
        .args(["feeds", "--json", "--config"])
        .arg(&setup.config));
    let missing = &by_name(&listed.items)["missing"];
    assert_eq!(missing["state"], "gone");
    assert!(
        missing["reason"]
            .as_str()
            .unwrap()
            .contains("404 Not Found"),
        "{missing}"
    );
}

/// `newswatch run` finds each state in its first round of polls; while it holds the
/// store, `feeds` reads through its API (with the token); `/api/feeds` needs the token
/// like `/api/items`; `/metrics` counts the feeds in each state and the changes.
#[test]
fn feeds_and_their_counts_are_served_by_the_running_daemon() {
    // One failure is enough to be failing here, so the daemon's first round of polls
    // brings every state.
    let setup = setup("failing_after = 1\n");
    let listen = free_addr();
    let with_api = setup.dir.path().join("with-api.toml");
    let text = std::fs::read_to_string(&setup.config).unwrap();
    std::fs::write(
        &with_api,
        format!("{text}[api]\nlisten = \"{listen}\"\ntoken_env = \"NEWSWATCH_TEST_TOKEN\"\n"),
    )
    .unwrap();
    let daemon = Daemon::spawn(run_command(&with_api).env("NEWSWATCH_TEST_TOKEN", "s3cret"));
    assert!(
        daemon
            .log
            .wait_for("Feed became unhealthy.", 5, Duration::from_secs(60)),
        "the daemon did not find five feeds unhealthy:\n{}",
        daemon.log.text()
    );

    // The states are saved once the poll's items are stored: a bounded wait for them.
    let expected = pairs(&[
        ("fine", "ok"),
        ("flaky", "failing"),
        ("gone", "gone"),
        ("missing", "failing"),
        ("moved", "moved"),
        ("quiet", "stale"),
    ]);
    let mut through = None;
    for _ in 0..100 {
        let out = run(newswatch()
            .args(["feeds", "--json", "--config"])
            .arg(&with_api)
            .env("NEWSWATCH_TEST_TOKEN", "s3cret"));
        assert_eq!(out.code, 0, "{}", out.err());
        if states(&out.items) == expected {
            through = Some(out);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let through = through.expect("feeds never showed the expected states");
    assert!(
        through.stderr.contains("reading feeds through its API"),
        "{}",
        through.stderr
    );
    assert_eq!(
        by_name(&through.items)["moved"]["moved_to"],
        setup.server.url("/new").as_str()
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let base = format!("http://{listen}");
        let client = reqwest::Client::new();
        let open = client
            .get(format!("{base}/api/feeds"))
            .send()
            .await
            .unwrap();
        assert_eq!(open.status(), 401);
        let answer = client
            .get(format!("{base}/api/feeds"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let rows: Vec<Value> = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
        assert_eq!(states(&rows), expected);
        let odd = client
            .get(format!("{base}/api/feeds?state=ok"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(odd.status(), 400);

        // Each change is counted just after its state is saved: a bounded wait.
        let mut found = None;
        for _ in 0..100 {
            let body = client
                .get(format!("{base}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
            let changes: f64 = scrape
                .samples
                .iter()
                .filter(|s| s.metric == "newswatch_feed_health_changes_total")
                .map(|s| match s.value {
                    prometheus_parse::Value::Counter(v) => v,
                    _ => 0.0,
                })
                .sum();
            if changes >= 5.0 {
                found = Some((body, scrape));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (body, scrape) = found.expect("five health changes were never counted");
        for (state, n) in [
            ("failing", 2.0),
            ("gone", 1.0),
            ("moved", 1.0),
            ("stale", 1.0),
        ] {
            let sample = scrape
                .samples
                .iter()
                .find(|s| {
                    s.metric == "newswatch_feed_health_changes_total"
                        && s.labels.get("state") == Some(state)
                })
                .unwrap_or_else(|| panic!("no feed_health_changes_total for {state}:\n{body}"));
            match sample.value {
                prometheus_parse::Value::Counter(v) => assert_eq!(v, n, "{state}"),
                ref other => panic!("not a counter: {other:?}"),
            }
        }
        for (state, n) in [
            ("ok", 1.0),
            ("stale", 1.0),
            ("failing", 2.0),
            ("gone", 1.0),
            ("moved", 1.0),
        ] {
            let sample = scrape
                .samples
                .iter()
                .find(|s| {
                    s.metric == "newswatch_feeds_by_state" && s.labels.get("state") == Some(state)
                })
                .unwrap_or_else(|| panic!("no feeds_by_state sample for {state}:\n{body}"));
            match sample.value {
                prometheus_parse::Value::Gauge(v) => assert_eq!(v, n, "{state}"),
                ref other => panic!("not a gauge: {other:?}"),
            }
        }
    });
    daemon.stop(Duration::from_secs(10));
}

#[test]
fn each_health_change_is_one_signed_event_to_the_health_sink() {
    use crate::util::receiver::{expected_signature, secret, Mode, Receiver};
    let setup = setup("");
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Ok);
    let text = std::fs::read_to_string(&setup.config).unwrap().replace(
        "id = \"log\"\nkind = \"log\"\n",
        &format!(
            "id = \"log\"\nkind = \"webhook\"\nurl = {:?}\nsecret_env = \"NW_TEST_SECRET\"\n",
            receiver.url()
        ),
    );
    std::fs::write(&setup.config, text).unwrap();
    let once = |config: &std::path::Path| {
        let out = run(newswatch()
            .args(["once", "--config"])
            .arg(config)
            .env("NW_TEST_SECRET", secret()));
        assert_eq!(out.code, 0, "{}", out.err());
    };
    for _ in 0..3 {
        once(&setup.config);
    }
    setup.flaky_down.store(false, Ordering::SeqCst);
    once(&setup.config);
    once(&setup.config);

    let mut told: Vec<(String, String, String)> = receiver
        .received()
        .iter()
        .map(|r| {
            let id = r.header("webhook-id");
            let ts = r.header("webhook-timestamp");
            assert!(
                r.header("webhook-signature")
                    .contains(&expected_signature(id, ts, &r.body)),
                "a health event must be signed"
            );
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(r.header("newswatch-event"), body["event"].as_str().unwrap());
            (
                body["feed"]["name"].as_str().unwrap().to_string(),
                body["event"].as_str().unwrap().to_string(),
                body["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    told.sort();
    let expected: Vec<(String, String, String)> = [
        ("flaky", "feed.recovered", "ok"),
        ("flaky", "feed.unhealthy", "failing"),
        ("gone", "feed.unhealthy", "gone"),
        ("missing", "feed.unhealthy", "failing"),
        ("moved", "feed.unhealthy", "moved"),
        ("quiet", "feed.unhealthy", "stale"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(told, expected, "one event per change, none per poll");
}
