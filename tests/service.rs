//! `newswatch run` as systemd runs it: the real binary with `NOTIFY_SOCKET` pointing at
//! a datagram socket this test owns (a stand-in for systemd), `WATCHDOG_USEC` set, and
//! signals sent with kill(1). Every wait is bounded; a daemon left running by a failed
//! assertion is killed when its handle drops.
//!
//! `WATCHDOG_PID` is left unset on purpose: the pid is unknown before the spawn, and
//! the daemon, like libsystemd, takes the watchdog to be its own when no pid is named.

use std::collections::VecDeque;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::daemon::{self, Log};
use crate::util::server::{FeedServer, Gate, Reply};
use crate::util::{feeds_config, newswatch, run, wait_until};

/// systemd's side of the notify socket: every datagram the daemon sends, in order.
struct FakeSystemd {
    _dir: tempfile::TempDir,
    path: PathBuf,
    socket: UnixDatagram,
    /// Datagrams received and not yet consumed by [`FakeSystemd::expect`].
    pending: VecDeque<String>,
    /// Every datagram received, for [`FakeSystemd::saw`] and failure messages.
    history: Vec<String>,
}

impl FakeSystemd {
    fn bind() -> FakeSystemd {
        // A short path: a Unix socket path must fit in 108 bytes.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        FakeSystemd {
            _dir: dir,
            path,
            socket,
            pending: VecDeque::new(),
            history: Vec::new(),
        }
    }

    /// Receives one datagram before `deadline`; false when none came.
    fn receive(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        self.socket.set_read_timeout(Some(left)).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        match self.socket.recv(&mut buf) {
            Ok(len) => {
                let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                self.pending.push_back(text.clone());
                self.history.push(text);
                true
            }
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                false
            }
            Err(err) => panic!("reading the notify socket: {err}"),
        }
    }

    /// The next datagram, in order, with a line matching `wanted`; the datagrams before
    /// it are consumed. Lines after the match in the same datagram stay pending, so
    /// `READY=1\nSTATUS=…` serves a search for each. `None` after `limit`.
    fn find(&mut self, wanted: &dyn Fn(&str) -> bool, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            while let Some(datagram) = self.pending.pop_front() {
                let lines: Vec<&str> = datagram.lines().collect();
                if let Some(at) = lines.iter().position(|line| wanted(line)) {
                    let rest = lines[at + 1..].join("\n");
                    if !rest.is_empty() {
                        self.pending.push_front(rest);
                    }
                    return Some(datagram);
                }
            }
            if !self.receive(deadline) {
                return None;
            }
        }
    }

    /// The first line ever received (consumed or not) matching `wanted`, waiting up to
    /// `limit` for it; for notifications whose order does not matter.
    fn saw(&mut self, wanted: &dyn Fn(&str) -> bool, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        let mut checked = 0;
        loop {
            for datagram in &self.history[checked..] {
                if let Some(line) = datagram.lines().find(|line| wanted(line)) {
                    return Some(line.to_string());
                }
            }
            checked = self.history.len();
            if !self.receive(deadline) {
                return None;
            }
        }
    }
}

/// `newswatch run --config <config>` under the fake systemd.
struct Daemon {
    process: daemon::Daemon,
    log: Log,
    systemd: FakeSystemd,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let systemd = FakeSystemd::bind();
        let process = daemon::Daemon::spawn(
            daemon::run_command(config)
                .env("NOTIFY_SOCKET", &systemd.path)
                .env("WATCHDOG_USEC", "2000000")
                .env_remove("WATCHDOG_PID"),
        );
        let log = process.log.clone();
        Daemon {
            process,
            log,
            systemd,
        }
    }

    /// The next notification with a line matching `wanted` (see [`FakeSystemd::find`]);
    /// panics after `limit`, or soon after the daemon exits, with what it sent and logged.
    fn expect(&mut self, what: &str, wanted: impl Fn(&str) -> bool, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            // Short slices, so a daemon that died is noticed without waiting out `limit`.
            let left = deadline.saturating_duration_since(Instant::now());
            let exited = self.process.exited().is_some();
            let slice = if exited {
                // What it sent before exiting is still in the socket.
                Duration::from_millis(200)
            } else {
                left.min(Duration::from_secs(1))
            };
            if let Some(datagram) = self.systemd.find(&wanted, slice) {
                return datagram;
            }
            if exited || Instant::now() >= deadline {
                self.fail(&format!(
                    "no {what} within {limit:?}{}",
                    if exited { " (the daemon exited)" } else { "" }
                ));
            }
        }
    }

    fn fail(&self, what: &str) -> ! {
        // Give the stderr thread a moment to read the last lines.
        std::thread::sleep(Duration::from_millis(200));
        panic!(
            "{what}; the daemon sent: {:#?}\nstderr:\n{}",
            self.systemd.history,
            self.log.text()
        );
    }

    fn expect_line(&mut self, line: &str, limit: Duration) -> String {
        self.expect(line, |l| l == line, limit)
    }

    fn signal(&self, signal: &str) {
        self.process.signal(signal);
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.process.exited() {
            panic!("the daemon exited ({status}); stderr:\n{}", self.log.text());
        }
    }

    /// SIGTERM, then `STOPPING=1` and a successful exit, both within 10 s of the signal.
    fn stop(mut self) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        self.expect_line("STOPPING=1", Duration::from_secs(10));
        let status = self.process.exit_by(deadline, "10 s after SIGTERM");
        assert!(status.success(), "{status}; stderr:\n{}", self.log.text());
    }
}

/// Serves one RSS document at `/feed.xml`, but holds every response until
/// [`Gate::open`]: the test decides whether an item is processed before or after a
/// reload. A held response is sent anyway after [`GATE_LIMIT`](crate::util::server::GATE_LIMIT).
struct GatedFeed {
    server: FeedServer,
    gate: Gate,
}

impl GatedFeed {
    fn start(rss: String) -> GatedFeed {
        let gate = Gate::new();
        let held = gate.clone();
        let server = FeedServer::start(move |request| match request.path.as_str() {
            "/feed.xml" => Reply::feed(rss.clone()).held_by(&held),
            _ => Reply::not_found(),
        });
        GatedFeed { server, gate }
    }

    fn url(&self) -> String {
        self.server.url("/feed.xml")
    }

    /// Waits until the daemon has asked for the feed (its response now held).
    fn wait_requested(&self, limit: Duration) -> bool {
        wait_until(limit, || self.server.hits_to("/feed.xml") > 0)
    }

    fn open(&self) {
        self.gate.open();
    }
}

fn rss(guid: &str, title: &str, description: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel>\
         <title>Gated</title><item><guid isPermaLink=\"false\">{guid}</guid>\
         <title>{title}</title><link>https://example.org/{guid}</link>\
         <description>{description}</description></item></channel></rss>"
    )
}

/// A config polling `url` into `dir/data`, alerting to the log on `topics` (id, query).
/// The poll timeout is long: a gated response is held for a few seconds.
fn gated_config(dir: &Path, url: &str, topics: &[(&str, &str)]) -> String {
    let mut text = format!(
        "[storage]\npath = {:?}\n[poller]\ninterval = \"1h\"\nconcurrency = 4\nper_host = 4\n\
         timeout = \"60s\"\n[[feeds]]\nurl = {url:?}\n[[sinks]]\nid = \"log\"\nkind = \"log\"\n",
        dir.join("data")
    );
    for (id, query) in topics {
        text.push_str(&format!(
            "[[topics]]\nid = {id:?}\nquery = {query:?}\nsinks = [\"log\"]\n"
        ));
    }
    text
}

/// Alerts in the store, via `newswatch alerts --json` (the daemon stopped).
fn alerts(config: &Path) -> Vec<Value> {
    let out = run(newswatch()
        .args(["alerts", "--json", "--config"])
        .arg(config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.items
}

const START: Duration = Duration::from_secs(60);

#[test]
fn run_notifies_ready_status_and_watchdog_and_stopping_on_sigterm() {
    let server = FeedServer::generated(5);
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = (0..3).map(|n| server.feed_url(n)).collect();
    let config = feeds_config(dir.path(), &urls);
    let mut daemon = Daemon::start(&config);

    daemon.expect_line("READY=1", START);
    // The counts, in whatever words: "3 feeds, 15 items, 11 alerts".
    let status = daemon.systemd.saw(
        &|line| {
            let lower = line.to_lowercase();
            line.starts_with("STATUS=")
                && ["feed", "item", "alert"].iter().all(|w| lower.contains(w))
                && line.chars().any(|c| c.is_ascii_digit())
        },
        Duration::from_secs(30),
    );
    let Some(status) = status else {
        daemon.fail("no STATUS= with feeds, items and alerts counts in 30 s");
    };
    assert!(status.contains('3'), "three feeds: {status}");
    // WATCHDOG_USEC=2 s: a ping every second or so; two prove it repeats.
    daemon.expect_line("WATCHDOG=1", Duration::from_secs(5));
    daemon.expect_line("WATCHDOG=1", Duration::from_secs(5));

    daemon.stop();
}

#[test]
fn sighup_sends_reloading_with_a_timestamp_then_ready() {
    let server = FeedServer::generated(3);
    let dir = tempfile::tempdir().unwrap();
    let config = feeds_config(dir.path(), &[server.feed_url(0)]);
    let mut daemon = Daemon::start(&config);
    daemon.expect_line("READY=1", START);

    daemon.signal("HUP");
    let reloading = daemon.expect_line("RELOADING=1", Duration::from_secs(10));
    // systemd >= 253 (Type=notify-reload) wants the timestamp in the same message.
    assert!(
        reloading.lines().any(|l| l
            .strip_prefix("MONOTONIC_USEC=")
            .is_some_and(|v| v.parse::<u64>().is_ok_and(|v| v > 0))),
        "{reloading:?}"
    );
    daemon.expect_line("READY=1", Duration::from_secs(30));
    daemon.assert_running();
    // And a second reload works as the first did.
    daemon.signal("HUP");
    daemon.expect_line("RELOADING=1", Duration::from_secs(10));
    daemon.expect_line("READY=1", Duration::from_secs(30));

    daemon.stop();
}

#[test]
fn sighup_with_a_new_topic_alerts_on_it() {
    let feed = GatedFeed::start(rss(
        "harbour-1",
        "Harbour reopens after the storm",
        "The harbour reopened on Tuesday after a week of repairs to the breakwater.",
    ));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("newswatch.toml");
    std::fs::write(
        &config,
        gated_config(dir.path(), &feed.url(), &[("museums", "museum")]),
    )
    .unwrap();
    let mut daemon = Daemon::start(&config);
    daemon.expect_line("READY=1", START);
    // The item is fetched but held: it reaches the pipeline only after the reload.
    assert!(
        feed.wait_requested(Duration::from_secs(30)),
        "the daemon never polled the feed; stderr:\n{}",
        daemon.log.text()
    );

    std::fs::write(
        &config,
        gated_config(
            dir.path(),
            &feed.url(),
            &[("museums", "museum"), ("harbours", "harbour")],
        ),
    )
    .unwrap();
    daemon.signal("HUP");
    daemon.expect_line("RELOADING=1", Duration::from_secs(10));
    daemon.expect_line("READY=1", Duration::from_secs(30));

    let mark = daemon.log.mark();
    feed.open();
    assert!(
        daemon.log.wait_after(
            mark,
            &["Matched an item.", "harbours"],
            Duration::from_secs(30)
        ),
        "the item never matched the new topic; stderr:\n{}",
        daemon.log.text()
    );
    daemon.stop();

    let alerts = alerts(&config);
    let topics: Vec<&str> = alerts
        .iter()
        .map(|a| a["topic"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(topics, ["harbours"], "{alerts:#?}");
}

/// A reload while a feed's poll is in flight: the old generation finishes it and saves
/// the feed's state before the new one starts, so the new one does not fetch the feed
/// again while (or right after) the old one does. Two generations at once would also
/// leave the stories the old one stored meanwhile out of the new story window.
#[test]
fn a_reload_during_a_poll_does_not_fetch_the_feed_twice() {
    let body = rss(
        "quay-1",
        "Quay repaired",
        "The old quay was repaired over the winter and opens again on Monday.",
    );
    let server = FeedServer::start(move |request| match request.path.as_str() {
        "/feed.xml" => Reply::feed(body.clone()).after(Duration::from_secs(2)),
        _ => Reply::not_found(),
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("newswatch.toml");
    std::fs::write(
        &config,
        gated_config(dir.path(), &server.url("/feed.xml"), &[("quays", "quay")]),
    )
    .unwrap();
    let mut daemon = Daemon::start(&config);
    daemon.expect_line("READY=1", START);
    assert!(
        wait_until(Duration::from_secs(30), || server.hits_to("/feed.xml") > 0),
        "the daemon never polled the feed; stderr:\n{}",
        daemon.log.text()
    );
    daemon.signal("HUP");
    daemon.expect_line("RELOADING=1", Duration::from_secs(10));
    daemon.expect_line("READY=1", Duration::from_secs(30));
    // The feed's interval is an hour: any second fetch within seconds is the new
    // generation polling a feed the old one had in flight.
    let again = wait_until(Duration::from_secs(3), || server.hits_to("/feed.xml") > 1);
    assert!(
        !again && server.max_in_flight() == 1,
        "fetched {} times, {} at once; stderr:\n{}",
        server.hits_to("/feed.xml"),
        server.max_in_flight(),
        daemon.log.text()
    );
    daemon.stop();
    let alerts = alerts(&config);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one() {
    let feed = GatedFeed::start(rss(
        "museum-1",
        "Museum reopens after the storm",
        "The city museum reopened on Tuesday after a week of repairs to its roof.",
    ));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("newswatch.toml");
    let good = gated_config(dir.path(), &feed.url(), &[("museums", "museum")]);
    std::fs::write(&config, &good).unwrap();
    let mut daemon = Daemon::start(&config);
    daemon.expect_line("READY=1", START);
    assert!(
        feed.wait_requested(Duration::from_secs(30)),
        "the daemon never polled the feed; stderr:\n{}",
        daemon.log.text()
    );

    // Two errors: both must be named, and neither may take effect.
    let broken = gated_config(dir.path(), &feed.url(), &[("museums", "museum AND (")])
        .replace("interval = \"1h\"", "interval = \"soon\"");
    std::fs::write(&config, broken).unwrap();
    let mark = daemon.log.mark();
    daemon.signal("HUP");
    // systemd leaves the unit "reloading" until READY=1, so it comes even on failure.
    daemon.expect_line("RELOADING=1", Duration::from_secs(10));
    daemon.expect_line("READY=1", Duration::from_secs(30));
    for key in ["poller.interval", "topics[0].query"] {
        assert!(
            daemon.log.wait_after(mark, &[key], Duration::from_secs(10)),
            "the failed reload does not name {key}; stderr:\n{}",
            daemon.log.text()
        );
    }
    daemon.assert_running();

    // Still on the old config: the held item is matched by the old topic.
    let mark = daemon.log.mark();
    feed.open();
    assert!(
        daemon.log.wait_after(
            mark,
            &["Matched an item.", "museums"],
            Duration::from_secs(30)
        ),
        "the item was not matched on the old config; stderr:\n{}",
        daemon.log.text()
    );
    daemon.stop();

    std::fs::write(&config, &good).unwrap();
    let alerts = alerts(&config);
    let topics: Vec<&str> = alerts
        .iter()
        .map(|a| a["topic"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(topics, ["museums"], "{alerts:#?}");
}
