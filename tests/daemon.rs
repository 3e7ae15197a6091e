//! `newswatch once` and `newswatch run` end to end: the real binary polling a real
//! HTTP server on 127.0.0.1 into a real sled directory, killed and restarted.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::util::daemon::Daemon;
use crate::util::server::FeedServer;
use crate::util::{default_config, feeds_config, newswatch, run};

/// Stored items, via `newswatch items --json`.
fn stored(config: &std::path::Path) -> Vec<Value> {
    let out = run(newswatch()
        .args(["items", "--json", "--limit", "1000000", "--config"])
        .arg(config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.items
}

fn once(config: &std::path::Path) -> String {
    let out = run(newswatch().arg("once").arg("--config").arg(config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
}

/// Every item stored exactly once: as many items as the server serves, no id twice,
/// every link present.
fn assert_complete(items: &[Value], feeds: usize, per_feed: usize) {
    let ids: HashSet<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), items.len(), "an id is stored twice");
    assert_eq!(items.len(), feeds * per_feed, "items lost or duplicated");
    let links: HashSet<&str> = items.iter().map(|i| i["url"].as_str().unwrap()).collect();
    for n in 0..feeds {
        for i in 0..per_feed {
            assert!(
                links.contains(FeedServer::link(n, i).as_str()),
                "missing item {i} of feed {n}"
            );
        }
    }
}

#[test]
fn once_twice_processes_nothing_the_second_time() {
    let server = FeedServer::generated(30);
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = (0..20).map(|n| server.feed_url(n)).collect();
    let config = feeds_config(dir.path(), &urls);

    let first = once(&config);
    assert!(
        first.contains("polled 20 feeds") && first.contains("600 new items"),
        "{first}"
    );
    assert_complete(&stored(&config), 20, 30);

    let hits = server.hits();
    let second = once(&config);
    assert!(server.hits() >= hits + 20, "the second run polls again");
    assert!(second.contains("0 new items"), "{second}");
    assert_complete(&stored(&config), 20, 30);
}

#[test]
fn sigkill_during_run_loses_and_duplicates_nothing() {
    let (feeds, per_feed) = (60, 100);
    let server = FeedServer::generated(per_feed);
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = (0..feeds).map(|n| server.feed_url(n)).collect();
    let config = feeds_config(dir.path(), &urls);

    let mut daemon = Daemon::run(&config);
    let fetched = daemon
        .log
        .wait_for("Fetched feed.", 5, Duration::from_secs(60));
    assert!(fetched, "the daemon never fetched a feed");
    daemon.kill(); // SIGKILL

    let before = stored(&config).len();
    assert!(
        before < feeds * per_feed,
        "killed after it had finished; the test proves nothing"
    );

    let out = once(&config);
    assert!(
        out.contains(&format!("{} new items", feeds * per_feed - before)),
        "{out}"
    );
    assert_complete(&stored(&config), feeds, per_feed);
}

#[test]
fn sigterm_stops_cleanly_and_quickly() {
    let server = FeedServer::generated(20);
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = (0..10).map(|n| server.feed_url(n)).collect();
    let config = feeds_config(dir.path(), &urls);
    let daemon = Daemon::run(&config);
    assert!(daemon
        .log
        .wait_for("Fetched feed.", 10, Duration::from_secs(60)));
    // Let the processor catch up with what was fetched, then ask it to stop: it must
    // exit cleanly within 10 s.
    std::thread::sleep(Duration::from_millis(500));
    daemon.stop(Duration::from_secs(10));
    assert_complete(&stored(&config), 10, 20);
}

/// A config without sinks (and so without topics) is a daemon that only collects: it
/// runs until told to stop. The alert stage used to end at once for want of sinks,
/// which the daemon took for a failure: it logged "A stage of the daemon ended on its
/// own; stopping." and exited right after starting.
#[test]
fn run_without_sinks_keeps_running_until_sigterm() {
    let server = FeedServer::generated(5);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("newswatch.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = {:?}\n[poller]\ninterval = \"1h\"\n[[feeds]]\nurl = {:?}\n",
            dir.path().join("data"),
            server.feed_url(0)
        ),
    )
    .unwrap();
    let mut daemon = Daemon::run(&config);
    assert!(
        daemon
            .log
            .wait_for("Fetched feed.", 1, Duration::from_secs(60)),
        "the daemon never fetched the feed; stderr:\n{}",
        daemon.log.text()
    );
    let stopped = crate::util::wait_until(Duration::from_secs(2), || daemon.exited().is_some());
    assert!(
        !stopped,
        "the daemon stopped on its own; stderr:\n{}",
        daemon.log.text()
    );
    daemon.stop(Duration::from_secs(10));
    assert_complete(&stored(&config), 1, 5);
}

#[test]
fn copies_of_a_story_are_grouped_and_other_stories_kept_apart() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(newswatch()
        .arg("once")
        .arg("--config")
        .arg(default_config())
        .env("NEWSWATCH__STORAGE__PATH", dir.path().join("data")));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(newswatch()
        .args(["items", "--json", "--config"])
        .arg(default_config())
        .args(["--limit", "1000"])
        .env("NEWSWATCH__STORAGE__PATH", dir.path().join("data")));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let items = out.items;
    assert_eq!(items.len(), 21, "the four sample feeds hold 21 items");
    // The wire service's lightly edited copy of the Putin–Witkoff story.
    let copies: Vec<&Value> = items
        .iter()
        .filter(|i| {
            i["title"]
                .as_str()
                .unwrap()
                .contains("Witkoff messages for Trump")
        })
        .collect();
    assert_eq!(copies.len(), 2);
    assert_eq!(copies[0]["story"], copies[1]["story"], "one story");
    assert_eq!(
        copies.iter().filter(|i| i["story_lead"] == true).count(),
        1,
        "one lead"
    );
    // Every other item leads a story of its own, including the several on the same talks.
    let stories: HashSet<&str> = items.iter().map(|i| i["story"].as_str().unwrap()).collect();
    assert_eq!(stories.len(), 20);
    let on_topic = items
        .iter()
        .filter(|i| {
            i["topics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["id"] == "ceasefire-talks")
        })
        .count();
    assert_eq!(on_topic, 8, "as tests/fixtures/README.md lists");
}

#[test]
fn a_copy_arriving_after_a_restart_joins_its_story_and_does_not_alert() {
    let dir = tempfile::tempdir().unwrap();
    let samples = crate::util::root().join("config/samples");
    let config = |feeds: &[&str]| {
        let mut text = format!("[storage]\npath = {:?}\n", dir.path().join("data"));
        for feed in feeds {
            text.push_str(&format!(
                "[[feeds]]\nurl = \"file:{}\"\n",
                samples.join(feed).display()
            ));
        }
        text.push_str(
            "[[entities]]\nid = \"putin\"\nkind = \"person\"\nname = \"Vladimir Putin\"\naliases = [\"Putin\"]\n\
             [[sinks]]\nid = \"log\"\nkind = \"log\"\n\
             [[topics]]\nid = \"putin\"\nquery = \"@putin\"\nsinks = [\"log\"]\n",
        );
        let path = dir.path().join("newswatch.toml");
        std::fs::write(&path, text).unwrap();
        path
    };
    // The first run sees the story; the second, a new process, sees its wire copy.
    once(&config(&["world-rss.xml"]));
    let path = config(&["world-rss.xml", "wire-atom.xml"]);
    once(&path);
    let items = stored(&path);
    let copies: Vec<&Value> = items
        .iter()
        .filter(|i| {
            i["title"]
                .as_str()
                .unwrap()
                .contains("Witkoff messages for Trump")
        })
        .collect();
    assert_eq!(copies.len(), 2);
    assert_eq!(
        copies[0]["story"], copies[1]["story"],
        "the copy joined the story across the restart"
    );
    let out = run(newswatch()
        .args(["alerts", "--json", "--limit", "100", "--config"])
        .arg(&path));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let story = copies[0]["story"].as_str().unwrap();
    let alerts_for_story = out
        .items
        .iter()
        .filter(|a| {
            items
                .iter()
                .any(|i| i["id"] == a["item"] && i["story"] == story)
        })
        .count();
    assert_eq!(
        alerts_for_story, 1,
        "one alert for the story, none for its copy"
    );
}

#[test]
fn once_fails_when_no_feed_could_be_polled_and_says_how_many_failed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = |n: usize| {
        format!(
            "file:{}",
            dir.path().join(format!("gone-{n}.xml")).display()
        )
    };
    let config = feeds_config(dir.path(), &[missing(1), missing(2)]);
    let all_failed = run(newswatch().arg("once").arg("--config").arg(&config));
    assert_eq!(all_failed.code, 1, "{}", all_failed.stderr);
    assert!(
        all_failed
            .stderr
            .contains("no feed could be polled: all 2 failed"),
        "{}",
        all_failed.stderr
    );

    let good = dir.path().join("good.xml");
    std::fs::copy(crate::util::fixture("feed-rss.xml"), &good).expect("copy a feed");
    let config = feeds_config(
        dir.path(),
        &[missing(1), format!("file:{}", good.display())],
    );
    let some_failed = run(newswatch().arg("once").arg("--config").arg(&config));
    assert_eq!(some_failed.code, 0, "{}", some_failed.stderr);
    assert!(
        some_failed.stderr.contains("1 of 2 feeds failed"),
        "{}",
        some_failed.stderr
    );
    assert_eq!(stored(&config).len(), 3);
}

/// `once` over feeds in Japanese, Chinese, Korean, Cyrillic and Arabic whose text
/// follows a `<` in titles, authors, processing instructions and attributes: every
/// item is stored and no feed fails (reading them used to panic, and the daemon
/// marked such a feed failed on every poll).
#[test]
fn once_stores_feeds_in_other_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "feed-cjk-rss.xml",
        "feed-cyrillic-arabic-atom.xml",
        "feed-arabic-rss.xml",
        "feed-korean-atom.xml",
        "feed-pi-and-attributes.xml",
    ];
    let urls: Vec<String> = names
        .iter()
        .map(|n| format!("file:{}", crate::util::fixture(n).display()))
        .collect();
    let config = feeds_config(dir.path(), &urls);
    let summary = once(&config);
    assert!(
        summary.contains("polled 5 feeds") && summary.contains("0 failed"),
        "{summary}"
    );
    let items = stored(&config);
    let titles: HashSet<&str> = items
        .iter()
        .map(|i| i["title"].as_str().unwrap_or_default())
        .collect();
    for title in [
        "東京で停戦交渉",
        "北京举行停火谈判",
        "서울에서 휴전 회담",
        "Переговоры о перемирии",
        "محادثات وقف إطلاق النار",
        "مفاوضات وقف إطلاق النار في جدة",
        "휴전 협상 재개",
    ] {
        assert!(titles.contains(title), "{title} not stored: {titles:?}");
    }
    assert_eq!(items.len(), 10, "{titles:?}");
}

/// A daemon started while a command holds the store for a moment (`items`, a backup
/// check) waits for it instead of failing; one that never gets it fails with the lock
/// error after a bounded wait.
#[test]
fn run_waits_a_moment_for_a_store_another_command_holds() {
    use crate::util::daemon::run_command;

    let server = FeedServer::generated(3);
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = (0..2).map(|n| server.feed_url(n)).collect();
    let config = feeds_config(dir.path(), &urls);
    let data = dir.path().join("data");
    let held = newswatch::store::SledStore::open(&data).unwrap();
    let daemon = Daemon::spawn(&mut run_command(&config));
    assert!(
        daemon.log.wait_for(
            "held by another newswatch process",
            1,
            Duration::from_secs(30)
        ),
        "{}",
        daemon.log.text()
    );
    drop(held);
    assert!(
        daemon.log.wait_for("Started.", 1, Duration::from_secs(30)),
        "the daemon did not start once the store was free:\n{}",
        daemon.log.text()
    );
    assert!(daemon
        .log
        .wait_for("Fetched feed.", 2, Duration::from_secs(30)));
    daemon.stop(Duration::from_secs(10));

    // Held for longer than the daemon waits: `once` fails, saying why.
    let _held = newswatch::store::SledStore::open(&data).unwrap();
    let out = run(newswatch().arg("once").arg("--config").arg(&config));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("in use by another newswatch process"),
        "{}",
        out.stderr
    );
}
