//! Alerts end to end: the real binary polling a loopback feed server and delivering to
//! a loopback webhook receiver, through outages, crashes and rejections.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::daemon::Daemon;
use crate::util::receiver::{expected_signature, free_addr, secret, Mode, Receiver};
use crate::util::server::FeedServer;
use crate::util::{newswatch, run, wait_until};

/// A config: `feeds` feeds of `server`, topic "museums" alerting the webhook at `hook`.
fn config(dir: &Path, server: &FeedServer, feeds: usize, hook: &str) -> PathBuf {
    config_with(dir, server, feeds, hook, "")
}

/// [`config`] with `sink_keys` (TOML lines) added to the webhook sink.
fn config_with(
    dir: &Path,
    server: &FeedServer,
    feeds: usize,
    hook: &str,
    sink_keys: &str,
) -> PathBuf {
    let mut text = format!(
        "[storage]\npath = {:?}\n[poller]\ninterval = \"1h\"\ntimeout = \"5s\"\n",
        dir.join("data")
    );
    for n in 0..feeds {
        text.push_str(&format!("[[feeds]]\nurl = {:?}\n", server.feed_url(n)));
    }
    text.push_str(&format!(
        "[[sinks]]\nid = \"hook\"\nkind = \"webhook\"\nurl = {hook:?}\nsecret_env = \"NW_TEST_SECRET\"\n\
         max_attempts = 100\nretry_base = \"200ms\"\nretry_max = \"2s\"\n{sink_keys}\n\
         [[topics]]\nid = \"museums\"\nname = \"Museums\"\nquery = \"museum\"\nsinks = [\"hook\"]\n"
    ));
    let path = dir.join("newswatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn cmd(config: &Path, args: &[&str]) -> Command {
    let mut cmd = newswatch();
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env("NW_TEST_SECRET", secret());
    cmd
}

fn json_lines(config: &Path, args: &[&str]) -> Vec<Value> {
    let out = run(&mut cmd(config, args));
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.items
}

/// Stories that matched the topic: each must raise exactly one alert.
fn matched_stories(config: &Path) -> HashSet<String> {
    json_lines(config, &["items", "--json", "--limit", "100000"])
        .iter()
        .filter(|i| !i["topics"].as_array().unwrap().is_empty())
        .map(|i| i["story"].as_str().unwrap().to_string())
        .collect()
}

fn alert_ids(config: &Path, status: Option<&str>) -> HashSet<String> {
    let mut args = vec!["alerts", "--json", "--limit", "100000"];
    if let Some(status) = status {
        args.extend(["--status", status]);
    }
    json_lines(config, &args)
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn webhook_bodies_and_signatures_follow_the_contract() {
    let server = FeedServer::generated(10);
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &server, 4, &receiver.url());

    let out = run(&mut cmd(&config, &["once"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let stories = matched_stories(&config);
    assert!(
        stories.len() >= 3,
        "the generated feeds mention museums: {}",
        stories.len()
    );
    let got = receiver.received();
    assert_eq!(
        got.len(),
        stories.len(),
        "one alert per matching story, none for others"
    );

    let now = chrono::Utc::now().timestamp();
    let mut ids = HashSet::new();
    for r in &got {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), "application/json");
        let id = r.header("webhook-id");
        assert!(ids.insert(id.to_string()), "webhook-id {id} sent twice");
        let ts: i64 = r.header("webhook-timestamp").parse().expect("unix seconds");
        assert!((now - ts).abs() < 120, "timestamp {ts} is not now");
        // The signature, computed here independently of the code under test.
        assert_eq!(
            r.header("webhook-signature"),
            expected_signature(id, &ts.to_string(), &r.body)
        );

        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["type"], "newswatch.alert");
        assert_eq!(body["version"], 1);
        assert_eq!(body["id"], id);
        assert_eq!(
            body["topic"],
            serde_json::json!({"id": "museums", "name": "Museums"})
        );
        assert!(body["item"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://example.org/news/"));
        assert!(body["item"]["title"]
            .as_str()
            .unwrap()
            .starts_with("Report "));
        assert!(body["item"]["summary"].as_str().unwrap().contains("museum"));
        assert_eq!(body["matched"], serde_json::json!(["museum"]));
        assert!(body["score"].as_f64().unwrap() >= 1.0);
        assert!(stories.contains(body["story"]["id"].as_str().unwrap()));
        assert!(body["entities"].is_array() && body["detected_at"].is_string());
    }

    // The same items again: nothing new, no alert again.
    let out = run(&mut cmd(&config, &["once"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(receiver.received().len(), got.len());
    assert_eq!(alert_ids(&config, Some("delivered")).len(), got.len());
}

#[test]
fn a_receiver_down_then_busy_then_up_gets_every_alert() {
    let server = FeedServer::generated(12);
    let addr = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &server, 2, &format!("http://{addr}/hook"));

    let daemon = Daemon::spawn(&mut cmd(&config, &["run"]));
    // Nothing listens yet: connection refused, retried with backoff.
    assert!(
        daemon
            .log
            .wait_for("will retry", 1, Duration::from_secs(30)),
        "no retry after a refused connection"
    );
    let receiver = Receiver::start(addr, Mode::Unavailable);
    assert!(wait_until(Duration::from_secs(30), || receiver
        .received()
        .iter()
        .any(|r| r.status == 503)));
    std::thread::sleep(Duration::from_millis(1500));
    receiver.set_mode(Mode::Ok);
    assert!(
        settled(&receiver, Duration::from_secs(40)),
        "alerts still undelivered"
    );
    daemon.stop(Duration::from_secs(10));

    let stories = matched_stories(&config);
    let delivered = receiver.delivered_ids();
    assert_eq!(delivered.len(), stories.len(), "every alert arrives");
    assert_eq!(alert_ids(&config, Some("delivered")).len(), stories.len());
    assert!(alert_ids(&config, Some("pending")).is_empty());
    // Retry-After was honoured: after a 503, the same alert came back no sooner than 1 s.
    let mut by_id: HashMap<String, Vec<(Instant, u16)>> = HashMap::new();
    for r in receiver.received() {
        by_id
            .entry(r.header("webhook-id").to_string())
            .or_default()
            .push((r.at, r.status));
    }
    let mut checked = 0;
    for attempts in by_id.values() {
        for pair in attempts.windows(2) {
            if pair[0].1 == 503 {
                assert!(
                    pair[1].0 - pair[0].0 >= Duration::from_millis(950),
                    "retried before Retry-After"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "no alert was retried after a 503");
}

#[test]
fn sigkill_with_alerts_pending_loses_none() {
    let server = FeedServer::generated(12);
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Unavailable);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &server, 3, &receiver.url());

    let mut daemon = Daemon::spawn(&mut cmd(&config, &["run"]));
    assert!(wait_until(Duration::from_secs(30), || receiver
        .received()
        .len()
        >= 3));
    daemon.kill(); // SIGKILL, with alerts pending and maybe one in flight
    assert!(receiver.delivered_ids().is_empty());
    let pending = alert_ids(&config, Some("pending"));
    assert!(!pending.is_empty());

    receiver.set_mode(Mode::Ok);
    let daemon = Daemon::spawn(&mut cmd(&config, &["run"]));
    assert!(
        settled(&receiver, Duration::from_secs(40)),
        "alerts still undelivered after the restart"
    );
    daemon.stop(Duration::from_secs(10));

    let all = alert_ids(&config, None);
    assert_eq!(
        all.len(),
        matched_stories(&config).len(),
        "one alert per matching story"
    );
    assert_eq!(alert_ids(&config, Some("delivered")), all);
    let delivered: HashSet<String> = receiver.delivered_ids().into_iter().collect();
    assert_eq!(delivered, all, "the receiver got exactly the stored alerts");
    // Each alert was accepted once: nothing was delivered before the crash.
    for id in &all {
        let oks = receiver
            .received()
            .iter()
            .filter(|r| r.status == 200 && r.header("webhook-id") == id)
            .count();
        assert_eq!(oks, 1, "alert {id} accepted {oks} times");
    }
}

/// Waits until every alert id the receiver has seen was accepted and nothing new
/// came for two seconds; false if that does not happen within `limit`.
fn settled(receiver: &Receiver, limit: Duration) -> bool {
    let mut last = (0, Instant::now());
    wait_until(limit, || {
        let got = receiver.received();
        if got.len() != last.0 {
            last = (got.len(), Instant::now());
        }
        let seen: HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
        !seen.is_empty()
            && receiver.delivered_ids().len() == seen.len()
            && last.1.elapsed() > Duration::from_secs(2)
    })
}

#[test]
fn a_rejected_alert_fails_at_once_and_can_be_replayed() {
    let server = FeedServer::generated(10);
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::BadRequest);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &server, 2, &receiver.url());

    let out = run(&mut cmd(&config, &["once"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let failed = json_lines(&config, &["alerts", "--json", "--status", "failed"]);
    assert!(!failed.is_empty());
    assert_eq!(receiver.received().len(), failed.len(), "one try each");
    for alert in &failed {
        assert_eq!(alert["attempts"], 1);
        assert!(
            alert["last_error"].as_str().unwrap().contains("400"),
            "{alert}"
        );
    }

    receiver.set_mode(Mode::Ok);
    let first = failed[0]["id"].as_str().unwrap();
    let out = run(&mut cmd(&config, &["alerts", "--retry", first]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(&mut cmd(&config, &["once"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(receiver.delivered_ids(), [first.to_string()]);
    assert_eq!(alert_ids(&config, Some("failed")).len(), failed.len() - 1);

    let out = run(&mut cmd(&config, &["alerts", "--retry-all-failed"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(&mut cmd(&config, &["once"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(receiver.delivered_ids().len(), failed.len());
    assert!(alert_ids(&config, Some("failed")).is_empty());

    // Retrying an alert that is not failed is refused with a reason.
    let out = run(&mut cmd(&config, &["alerts", "--retry", first]));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("delivered, not failed"),
        "{}",
        out.stderr
    );
}

/// Checks a digest request against the contract and returns its alert ids.
fn digest_alert_ids(r: &crate::util::receiver::Received) -> Vec<String> {
    assert_eq!(r.header("content-type"), "application/json");
    let id = r.header("webhook-id");
    assert_eq!(
        r.header("webhook-signature"),
        expected_signature(id, r.header("webhook-timestamp"), &r.body)
    );
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["type"], "newswatch.digest");
    assert_eq!(body["version"], 1);
    assert_eq!(body["id"], id);
    assert!(id.starts_with("d_"), "{id}");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["type", "version", "id", "alerts"]);
    body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| {
            assert_eq!(alert["type"], "newswatch.alert");
            assert_eq!(alert["topic"]["id"], "museums");
            alert["id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_digest_sink_gets_one_post_per_once_run() {
    let server = FeedServer::generated(20);
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let digest = "digest = \"1s\"";
    let config = config_with(dir.path(), &server, 2, &receiver.url(), digest);

    // `once` does not wait out the window: what the run raised goes out as one digest.
    let out = run(&mut cmd(&config, &["once"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = receiver.received();
    assert_eq!(got.len(), 1, "one POST for the whole run");
    let ids: HashSet<String> = digest_alert_ids(&got[0]).into_iter().collect();
    assert!(ids.len() >= 10, "only {} alerts", ids.len());
    assert!(ids.len() < 50, "this part stays under the cap");
    assert_eq!(alert_ids(&config, None), ids, "every alert, once");
    assert_eq!(alert_ids(&config, Some("delivered")), ids);
    assert_eq!(ids.len(), matched_stories(&config).len());

    // Nothing new: nothing sent.
    let out = run(&mut cmd(&config, &["once"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(receiver.received().len(), 1);

    // More alerts than one digest holds: digests of at most 50, each alert once.
    let server = FeedServer::generated(40);
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), &server, 8, &receiver.url(), digest);
    let out = run(&mut cmd(&config, &["once"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = receiver.received();
    let sizes: Vec<usize> = got.iter().map(|r| digest_alert_ids(r).len()).collect();
    assert!(sizes.len() >= 2 && sizes[0] == 50, "{sizes:?}");
    let mut all: Vec<String> = got.iter().flat_map(digest_alert_ids).collect();
    let sent = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), sent, "an alert sent in two digests");
    let all: HashSet<String> = all.into_iter().collect();
    assert_eq!(alert_ids(&config, Some("delivered")), all);
    assert_eq!(all.len(), matched_stories(&config).len());
}

#[test]
fn a_digest_waits_for_its_window_and_is_retried_whole() {
    let server = FeedServer::generated(12);
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Unavailable);
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), &server, 3, &receiver.url(), "digest = \"3s\"");

    let started = Instant::now();
    let daemon = Daemon::spawn(&mut cmd(&config, &["run"]));
    assert!(
        wait_until(Duration::from_secs(30), || !receiver.received().is_empty()),
        "no digest sent"
    );
    let first = receiver.received()[0].at;
    assert!(
        first - started >= Duration::from_millis(2900),
        "sent {:?} after the start, before the window ended",
        first - started
    );
    receiver.set_mode(Mode::Ok);
    assert!(
        settled(&receiver, Duration::from_secs(40)),
        "digest still undelivered"
    );
    daemon.stop(Duration::from_secs(10));

    let got = receiver.received();
    assert!(got.len() >= 2, "a 503, then a retry");
    let stories = matched_stories(&config);
    for r in &got {
        // The feeds were all read well within the window: every request carried every
        // alert, retried as one digest under one id.
        assert_eq!(r.header("webhook-id"), got[0].header("webhook-id"));
        assert_eq!(digest_alert_ids(r).len(), stories.len());
    }
    assert_eq!(got.iter().filter(|r| r.status == 200).count(), 1);
    for pair in got.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(950),
            "retried before Retry-After"
        );
    }
    assert_eq!(alert_ids(&config, Some("delivered")).len(), stories.len());
    assert!(alert_ids(&config, Some("pending")).is_empty());
}

#[test]
fn a_rate_limited_sink_spaces_its_requests() {
    let server = FeedServer::generated(10);
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        dir.path(),
        &server,
        2,
        &receiver.url(),
        "rate_limit = \"5/s\"",
    );

    let out = run(&mut cmd(&config, &["once"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = receiver.received();
    assert!(got.len() >= 5, "only {} alerts", got.len());
    assert_eq!(got.len(), matched_stories(&config).len());
    for pair in got.windows(2) {
        // 200 ms apart when sent; arrival adds a little jitter either way.
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(170), "requests {gap:?} apart");
    }
    let span = got.last().unwrap().at - got[0].at;
    assert!(
        span >= Duration::from_millis(200) * (got.len() as u32 - 1) - Duration::from_millis(30)
    );
}

#[test]
fn a_shutdown_does_not_wait_out_the_rate_limit() {
    let server = FeedServer::generated(10);
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        dir.path(),
        &server,
        2,
        &receiver.url(),
        "rate_limit = \"1/h\"",
    );

    let daemon = Daemon::spawn(&mut cmd(&config, &["run"]));
    assert!(wait_until(Duration::from_secs(30), || !receiver
        .received()
        .is_empty()));
    // The worker now waits an hour before the next alert; SIGTERM ends that wait
    // (`stop` fails the test unless the daemon exits cleanly within 10 s).
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    daemon.stop(Duration::from_secs(10));
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(receiver.received().len(), 1, "one alert an hour");

    // The rest are kept for later, none lost.
    let stories = matched_stories(&config);
    assert_eq!(alert_ids(&config, Some("delivered")).len(), 1);
    assert_eq!(alert_ids(&config, Some("pending")).len(), stories.len() - 1);
}
