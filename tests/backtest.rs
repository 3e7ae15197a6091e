//! `newswatch backtest`, `/api/backtest` and backfills: stores filled by the real
//! binary from a loopback feed server, the daemon reloaded with a topic that backfills,
//! a signing webhook receiver counting what it gets; and `Store::record_backfill` on
//! both backends.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use newswatch::backtest::{self, Backfilled};
use newswatch::model::Topic;
use newswatch::store::{SledStore, Store, StoredItem};
use serde_json::Value;

use crate::util::daemon::{run_command, Daemon};
use crate::util::receiver::{expected_signature, free_addr, secret, Mode, Receiver};
use crate::util::records::item;
use crate::util::server::{pick_words, FeedServer, Reply};
use crate::util::{newswatch, run, wait_until, Run};

/// Words of the generated texts: none of them is "museum" or "strike".
const WORDS: &[&str] = &[
    "river",
    "council",
    "budget",
    "school",
    "railway",
    "weather",
    "market",
    "harbour",
    "festival",
    "election",
    "hospital",
    "bridge",
    "garden",
    "factory",
    "library",
    "stadium",
    "airport",
    "forest",
    "village",
    "orchestra",
    "tram",
    "ferry",
    "bakery",
    "clinic",
];

/// Sixty words for an item body; one seed, one text.
fn body(seed: u64) -> String {
    pick_words(WORDS, seed, 60)
}

fn rss(items: &[(&str, &str, String)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>T</title>",
    );
    for (guid, title, text) in items {
        xml.push_str(&format!(
            "<item><guid isPermaLink=\"false\">{guid}</guid><title>{title}</title>\
             <link>https://example.org/{guid}</link><description>{text}</description></item>"
        ));
    }
    xml.push_str("</channel></rss>");
    xml
}

/// Two feeds: `/a.xml` and `/b.xml`. "museum" is in a1, a3, b1 (a copy of a1) and
/// b2: four items of three stories; a3 also says "strike". a2 and b3 match nothing.
fn museum_feeds() -> FeedServer {
    let a = rss(&[
        ("a1", "Museum reopens after repairs", body(1)),
        ("a2", "Council meets", body(2)),
        ("a3", "Strike closes the museum", body(3)),
    ]);
    let b = rss(&[
        ("b1", "Museum reopens after repairs", body(1)),
        (
            "b2",
            "Budget news",
            format!("{} and the museum budget grows", body(4)),
        ),
        ("b3", "Weather", body(5)),
    ]);
    FeedServer::start(move |request| match request.path.as_str() {
        "/a.xml" => Reply::feed(a.clone()),
        "/b.xml" => Reply::feed(b.clone()),
        _ => Reply::not_found(),
    })
}

/// A config polling both feeds; `sinks` and `topics` are TOML appended as written.
fn write_config(dir: &Path, server: &FeedServer, rest: &str) -> PathBuf {
    let text = format!(
        "[storage]\npath = {:?}\n[poller]\ninterval = \"1h\"\ntimeout = \"5s\"\n\
         [[feeds]]\nurl = {:?}\n[[feeds]]\nurl = {:?}\n\
         [[entities]]\nid = \"putin\"\nkind = \"person\"\nname = \"Vladimir Putin\"\n{rest}",
        dir.join("data"),
        server.url("/a.xml"),
        server.url("/b.xml"),
    );
    let path = dir.join("newswatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const LOG_TOPIC: &str = "[[sinks]]\nid = \"log\"\nkind = \"log\"\n\
     [[topics]]\nid = \"museums\"\nquery = \"museum\"\nsinks = [\"log\"]\n";

fn cli(config: &Path, args: &[&str]) -> Command {
    let mut cmd = newswatch();
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env("NW_TEST_SECRET", secret())
        .env("NEWSWATCH_TEST_TOKEN", "s3cret");
    cmd
}

/// `backtest ARGS --json`: its one JSON document.
fn backtest_json(config: &Path, args: &[&str]) -> (Value, Run) {
    let mut all = vec!["backtest", "--json"];
    all.extend_from_slice(args);
    let out = run(&mut cli(config, &all));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.items.len(), 1, "one JSON document: {}", out.stdout);
    (out.items[0].clone(), out)
}

/// Every item of every day of a report.
fn report_items(report: &Value) -> Vec<Value> {
    report["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|day| day["items"].as_array().unwrap().clone())
        .collect()
}

fn report_stories(report: &Value) -> Vec<Value> {
    report["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|day| day["stories"].as_array().unwrap().clone())
        .collect()
}

fn strings(values: &[Value], key: &str) -> BTreeSet<String> {
    values
        .iter()
        .map(|v| v[key].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The store `once` filled: a backtest of the config's topic finds the items the
/// pipeline matched and the stories the daemon alerted on, exactly, by day; a typed
/// query runs with the same rules; `--explain` says why; the table says the same.
#[test]
fn backtest_finds_exactly_what_the_daemon_alerted_on() {
    let server = museum_feeds();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &server, LOG_TOPIC);
    let once = run(&mut cli(&config, &["once"]));
    assert_eq!(once.code, 0, "{}", once.stderr);

    let (report, _) = backtest_json(&config, &["--topic", "museums"]);
    assert_eq!(report["topics"], serde_json::json!(["museums"]));
    assert_eq!(report["scanned"], 6, "{report:#}");
    assert_eq!(report["items"], 4, "{report:#}");
    assert_eq!(report["stories"], 3, "{report:#}");
    let days = report["days"].as_array().unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0]["day"], Utc::now().date_naive().to_string());
    let items = report_items(&report);
    let stories = report_stories(&report);
    // The copy b1 is in a1's story, and only one of the two alerts.
    let story_of = |guid: &str| {
        items
            .iter()
            .find(|i| i["url"].as_str().unwrap().ends_with(guid))
            .unwrap_or_else(|| panic!("{guid} not found: {report:#}"))["story"]
            .clone()
    };
    assert_eq!(story_of("/a1"), story_of("/b1"));
    assert_eq!(items.iter().filter(|i| i["alerts"] == true).count(), 3);
    assert_eq!(
        stories
            .iter()
            .map(|s| s["items"].as_u64().unwrap())
            .sum::<u64>(),
        4
    );
    assert!(items.iter().all(|i| i["score"].as_f64().unwrap() >= 1.0));

    // What the daemon did: the items it matched, and the items its alerts are on.
    let stored = run(&mut cli(&config, &["items", "--json", "--limit", "100"]));
    let matched: BTreeSet<String> = stored
        .items
        .iter()
        .filter(|i| !i["topics"].as_array().unwrap().is_empty())
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(strings(&items, "id"), matched);
    let alerts = run(&mut cli(&config, &["alerts", "--json"]));
    assert_eq!(alerts.items.len(), 3, "{}", alerts.stdout);
    assert_eq!(strings(&stories, "item"), strings(&alerts.items, "item"));

    // A typed query with the same text is the same rules.
    let (typed, _) = backtest_json(&config, &["--query", "museum"]);
    assert_eq!(typed["topics"], serde_json::json!(["query"]));
    assert_eq!(strings(&report_items(&typed), "id"), matched);
    assert_eq!(
        strings(&report_stories(&typed), "id"),
        strings(&stories, "id")
    );
    let (narrower, _) = backtest_json(&config, &["--query", "museum AND NOT strike"]);
    assert_eq!(
        (narrower["items"].as_u64(), narrower["stories"].as_u64()),
        (Some(3), Some(2)),
        "{narrower:#}"
    );

    let (explained, _) = backtest_json(&config, &["--topic", "museums", "--explain"]);
    for item in report_items(&explained) {
        let why = item["explain"].as_str().unwrap_or_default();
        assert!(why.contains("museum"), "{item:#}");
    }

    let table = run(&mut cli(&config, &["backtest", "--topic", "museums"]));
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table
            .stdout
            .contains("3 stories would alert, 4 matching items"),
        "{}",
        table.stdout
    );
    assert_eq!(
        table
            .stdout
            .lines()
            .filter(|l| l.starts_with("  story"))
            .count(),
        3
    );
    assert!(
        table.stdout.contains("6 stored items since"),
        "{}",
        table.stdout
    );

    let (future, _) = backtest_json(&config, &["--since", "2099-01-01"]);
    assert_eq!(
        (future["items"].as_u64(), future["scanned"].as_u64()),
        (Some(0), Some(0))
    );
}

/// A query that does not parse, or names an unknown entity, exits 2 naming the
/// column; an unknown topic exits 2 naming it.
#[test]
fn a_bad_query_or_topic_exits_2_and_says_where() {
    let server = museum_feeds();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &server, LOG_TOPIC);
    let cases: &[(&[&str], &str)] = &[
        (
            &["--query", "museum AND ("],
            "newswatch: --query: column 12: unclosed (",
        ),
        (
            &["--query", "museum OR @nobody"],
            "newswatch: --query: column 11: unknown entity @nobody",
        ),
        (&["--topic", "nope"], "unknown topic \"nope\""),
    ];
    for (args, said) in cases {
        let mut all = vec!["backtest"];
        all.extend_from_slice(args);
        let out = run(&mut cli(&config, &all));
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(said), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}

/// With `run` holding the store, `backtest` reads through its API (with its token)
/// and answers what it answers with the store to itself; `/api/backtest` needs the
/// token and names a bad parameter.
#[test]
fn backtest_reads_through_the_running_daemon_behind_its_token() {
    let server = museum_feeds();
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let config = write_config(
        dir.path(),
        &server,
        &format!("{LOG_TOPIC}[api]\nlisten = \"{listen}\"\ntoken_env = \"NEWSWATCH_TEST_TOKEN\"\n"),
    );
    let once = run(&mut cli(&config, &["once"]));
    assert_eq!(once.code, 0, "{}", once.stderr);
    let (local, _) = backtest_json(&config, &["--topic", "museums", "--explain"]);

    let daemon = Daemon::spawn(run_command(&config).env("NEWSWATCH_TEST_TOKEN", "s3cret"));
    assert!(
        daemon.log.wait_for("Started.", 1, Duration::from_secs(60)),
        "the daemon did not start; stderr:\n{}",
        daemon.log.text()
    );
    let (remote, out) = backtest_json(&config, &["--topic", "museums", "--explain"]);
    assert!(
        out.stderr.contains("reading backtest through its API"),
        "{}",
        out.stderr
    );
    assert_eq!(remote["days"], local["days"]);
    assert_eq!(remote["scanned"], local["scanned"]);

    let base = format!("http://{listen}/api/backtest");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let get = |query: &str, token: Option<&str>| -> (u16, Value) {
        runtime.block_on(async {
            let mut request = reqwest::Client::new().get(format!("{base}{query}"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("GET /api/backtest");
            let status = response.status().as_u16();
            let text = response.text().await.expect("a body");
            (status, serde_json::from_str(&text).expect("a JSON body"))
        })
    };
    assert_eq!(get("?topic=museums", None).0, 401);
    assert_eq!(get("?topic=museums", Some("wrong")).0, 401);
    let (status, body) = get("?topic=museums", Some("s3cret"));
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["stories"], 3);
    let (status, body) = get("?query=museum%20AND%20(", Some("s3cret"));
    assert_eq!(status, 400);
    assert_eq!(body["parameter"], "query");
    assert!(
        body["error"].as_str().unwrap().contains("column 12"),
        "{body:#}"
    );
    let (status, body) = get("?topic=nope", Some("s3cret"));
    assert_eq!((status, body["parameter"].as_str()), (400, Some("topic")));
    daemon.stop(Duration::from_secs(10));
}

/// A reload that adds a topic with `backfill`: the daemon raises its alerts for the
/// matching stored items once, one per story, signed; a second reload and a restart
/// send nothing more.
#[test]
fn a_backfill_on_reload_alerts_once_per_story_and_never_again() {
    let server = museum_feeds();
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let hook = format!(
        "[[sinks]]\nid = \"hook\"\nkind = \"webhook\"\nurl = {:?}\nsecret_env = \"NW_TEST_SECRET\"\n\
         retry_base = \"200ms\"\nretry_max = \"1s\"\n",
        receiver.url()
    );
    let before =
        format!("{hook}[[topics]]\nid = \"bridges\"\nquery = \"suspension\"\nsinks = [\"hook\"]\n");
    let config = write_config(dir.path(), &server, &before);
    let once = run(&mut cli(&config, &["once"]));
    assert_eq!(once.code, 0, "{}", once.stderr);
    assert!(receiver.received().is_empty(), "nothing matched yet");
    let (expected, _) = backtest_json(&config, &["--query", "museum"]);
    let expected_stories = strings(&report_stories(&expected), "id");
    let expected_items = strings(&report_stories(&expected), "item");
    assert_eq!(expected_stories.len(), 3);

    let mut daemon = Daemon::spawn(run_command(&config).env("NW_TEST_SECRET", secret()));
    assert!(
        daemon.log.wait_for("Started.", 1, Duration::from_secs(60)),
        "the daemon did not start; stderr:\n{}",
        daemon.log.text()
    );
    let after = format!(
        "{before}[[topics]]\nid = \"museums\"\nname = \"Museums\"\nquery = \"museum\"\n\
         sinks = [\"hook\"]\nbackfill = \"24h\"\n"
    );
    write_config(dir.path(), &server, &after);
    let mark = daemon.log.mark();
    daemon.signal("HUP");
    assert!(
        daemon.log.wait_after(
            mark,
            &["Backfilled a topic", "museums"],
            Duration::from_secs(60)
        ),
        "no backfill; stderr:\n{}",
        daemon.log.text()
    );
    assert!(
        wait_until(Duration::from_secs(30), || receiver.delivered_ids().len()
            >= 3),
        "the receiver got {} alerts; stderr:\n{}",
        receiver.received().len(),
        daemon.log.text()
    );

    // The second reload (same config) and a restart: the record says it was done.
    for again in 0..2 {
        let mark = if again == 0 {
            let mark = daemon.log.mark();
            daemon.signal("HUP");
            mark
        } else {
            daemon.stop(Duration::from_secs(10));
            daemon = Daemon::spawn(run_command(&config).env("NW_TEST_SECRET", secret()));
            0
        };
        assert!(
            daemon.log.wait_after(
                mark,
                &["backfilled before; not again", "museums"],
                Duration::from_secs(60)
            ),
            "round {again}: stderr:\n{}",
            daemon.log.text()
        );
        assert!(!daemon.log.text()[..].contains("Could not backfill"));
    }
    daemon.stop(Duration::from_secs(10));

    let got = receiver.received();
    assert_eq!(got.len(), 3, "one alert per story, each once");
    let mut stories = BTreeSet::new();
    let mut items = BTreeSet::new();
    for r in &got {
        assert_eq!(r.status, 200);
        let id = r.header("webhook-id");
        let ts = r.header("webhook-timestamp");
        assert_eq!(
            r.header("webhook-signature"),
            expected_signature(id, ts, &r.body)
        );
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["id"], id);
        assert_eq!(
            body["topic"],
            serde_json::json!({"id": "museums", "name": "Museums"})
        );
        assert_eq!(body["matched"], serde_json::json!(["museum"]));
        stories.insert(body["story"]["id"].as_str().unwrap().to_string());
        items.insert(body["item"]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(stories, expected_stories);
    assert_eq!(items, expected_items);
    let alerts = run(&mut cli(&config, &["alerts", "--json"]));
    assert_eq!(alerts.items.len(), 3, "{}", alerts.stdout);
    assert!(alerts.items.iter().all(|a| a["status"] == "delivered"));
}

/// `museum` stories: "l1" (with its copy "c1"), "l2" and "l4", which alerted on the
/// topic before; "l3" matches nothing.
fn fill_for_backfill(store: &dyn Store) {
    let now = Utc::now();
    let with_text = |id: &str, text: &str| StoredItem {
        text: text.to_string(),
        topics: Vec::new(),
        ..item(id, now - chrono::Duration::hours(1), &[])
    };
    let l1 = with_text("l1", "The museum reopens.");
    let c1 = StoredItem {
        id: "c1".into(),
        story: "l1".into(),
        is_story_lead: false,
        ..with_text("c1", "The museum reopens today.")
    };
    let l2 = with_text("l2", "A museum strike.");
    let l3 = with_text("l3", "Weather.");
    let l4 = StoredItem {
        topics: vec![newswatch::store::StoredTopic {
            id: "museums".into(),
            score: 1.0,
            matched: vec!["museum".into()],
        }],
        ..with_text("l4", "Museum budget.")
    };
    let mut earlier = crate::util::records::alert(&l4, "museums", "hook", now);
    earlier.id = newswatch::identity::alert_id("l4", "museums", "hook");
    store
        .insert_batch(None, &[l1, c1, l2, l3, l4], &[earlier], &[])
        .unwrap();
}

fn museums(min_score: f64) -> Topic {
    Topic {
        min_score,
        sinks: vec!["hook".into(), "log".into()],
        backfill: Some(Duration::from_secs(24 * 3600)),
        ..backtest::query_topic("museum", &[]).unwrap()
    }
}

/// One backfill writes an alert per story and sink, none for a story that alerted
/// before, and records itself; the same definition is not backfilled again, and a
/// changed one finds every story alerted.
fn backfill_writes_each_alert_once(store: &dyn Store) {
    fill_for_backfill(store);
    let topic = Topic {
        id: "museums".into(),
        ..museums(0.0)
    };
    let report = backtest::run(
        store,
        &newswatch::pipeline::rules::RuleSet::new(Vec::new(), vec![topic.clone()]),
        Utc::now() - chrono::Duration::days(1),
        false,
    )
    .unwrap();
    assert_eq!(
        (report.scanned, report.matches.len(), report.stories.len()),
        (5, 4, 3)
    );
    let copy = report.matches.iter().find(|m| m.item == "c1").unwrap();
    assert!(!copy.alerts && copy.story == "l1");

    let done = backtest::backfill(store, &[], &topic, Utc::now()).unwrap();
    // Stories l1, l2, l4; l4 had alerted on hook: two sinks of l1 and l2.
    assert_eq!(
        done,
        Backfilled::Done {
            stories: 3,
            alerts: 4
        }
    );
    let mut ids: Vec<String> = store
        .alerts(None, 100)
        .unwrap()
        .iter()
        .map(|a| a.id.clone())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = [
        ("l1", "hook"),
        ("l1", "log"),
        ("l2", "hook"),
        ("l2", "log"),
        ("l4", "hook"),
    ]
    .iter()
    .map(|(story, sink)| newswatch::identity::alert_id(story, "museums", sink))
    .collect();
    expected.sort();
    assert_eq!(ids, expected);
    let l2 = store.get_story("l2").unwrap().unwrap();
    assert_eq!(l2.alerted, ["museums"]);
    assert_eq!(
        store.backfilled("museums").unwrap(),
        Some(backtest::definition(&topic))
    );

    assert_eq!(
        backtest::backfill(store, &[], &topic, Utc::now()).unwrap(),
        Backfilled::AlreadyDone
    );
    let changed = Topic {
        id: "museums".into(),
        ..museums(0.5)
    };
    assert_ne!(backtest::definition(&changed), backtest::definition(&topic));
    assert_eq!(
        backtest::backfill(store, &[], &changed, Utc::now()).unwrap(),
        Backfilled::Done {
            stories: 3,
            alerts: 0
        }
    );
    assert_eq!(store.alerts(None, 100).unwrap().len(), 5);
}

#[test]
fn backfill_writes_each_alert_once_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    backfill_writes_each_alert_once(&store);
}

#[test]
fn backfill_writes_each_alert_once_on_postgres() {
    let db = crate::util::pg::database();
    let store: Arc<dyn Store> = Arc::new(
        newswatch::store::postgres::PgStore::open(
            &newswatch::config::Postgres {
                url: db.url.clone(),
                password_env: "NEWSWATCH_TEST_NO_PASSWORD".into(),
                lease: Duration::from_secs(60),
                pool: 2,
                node: Some("a".into()),
            },
            Duration::from_secs(48 * 3600),
        )
        .unwrap(),
    );
    backfill_writes_each_alert_once(store.as_ref());
}
