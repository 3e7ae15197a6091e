//! Follow-ups end to end: the real binary polling loopback feeds that grow between
//! polls (more outlets' copies of stories that alerted) and a corrected headline, and
//! delivering to a loopback webhook receiver that checks every signature.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::util::receiver::{expected_signature, secret, Mode, Received, Receiver};
use crate::util::server::{FeedServer, Reply};
use crate::util::{newswatch, run};

/// One feed entry; its GUID is its link, so its id is `u:` and the link.
#[derive(Debug, Clone)]
struct Entry {
    title: String,
    link: String,
    text: String,
}

const MUSEUM: &str = "The city museum reopened its east wing on Saturday after three \
    years of repairs to the roof and the heating, and more than four thousand visitors \
    queued along the river to see the restored tapestries. The director said the wing \
    will host a travelling exhibition of medieval maps from the autumn, and that entry \
    stays free for children under twelve and for students on weekdays.";

const BRIDGE: &str = "Engineers closed the old railway bridge over the canal on Monday \
    after divers found cracks in two of its stone piers during a routine inspection. \
    Trains between the northern suburbs and the central station run on a diversion \
    through the freight yard, adding about twenty minutes, and the operator expects \
    the repairs to take at least six weeks before the line opens again.";

/// Copy `n` of a story: its text, a lightly edited title, a link of its outlet.
fn copy(story: &str, n: usize, title: &str, text: &str) -> Entry {
    Entry {
        title: if n == 0 {
            title.to_string()
        } else {
            format!("{title} (outlet {n})")
        },
        link: format!("https://outlet{n}.example/{story}"),
        text: text.to_string(),
    }
}

/// Feeds by number, each serving what the test put in it.
#[derive(Clone)]
struct Feeds(Arc<Mutex<Vec<Vec<Entry>>>>);

impl Feeds {
    fn rss(&self, n: usize) -> String {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel>\
             <title>Outlet</title>",
        );
        for e in self.0.lock().unwrap().get(n).into_iter().flatten() {
            xml.push_str(&format!(
                "<item><guid>{}</guid><title>{}</title><link>{}</link>\
                 <description>{}</description></item>",
                e.link, e.title, e.link, e.text
            ));
        }
        xml.push_str("</channel></rss>");
        xml
    }

    /// Feed `n` carries copy `n` of both stories from now on.
    fn open(&self, n: usize) {
        self.0.lock().unwrap()[n] = vec![
            copy("museum", n, "City museum reopens its east wing", MUSEUM),
            copy(
                "bridge",
                n,
                "Railway bridge closed after cracks found",
                BRIDGE,
            ),
        ];
    }
}

const FEEDS: usize = 5;

fn serve() -> (FeedServer, Feeds) {
    let feeds = Feeds(Arc::new(Mutex::new(vec![Vec::new(); FEEDS])));
    let shared = feeds.clone();
    let server = FeedServer::start(move |request| {
        match request
            .path
            .strip_prefix("/feed/")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if n < FEEDS => Reply::feed(shared.rss(n)),
            _ => Reply::not_found(),
        }
    });
    (server, feeds)
}

/// Topic "museums" with updates on (a step each two copies, no interval), topic
/// "bridges" with updates off, both to one signing webhook.
fn config(dir: &Path, server: &FeedServer, hook: &str) -> PathBuf {
    let mut text = format!(
        "[storage]\npath = {:?}\n[poller]\ninterval = \"1h\"\ntimeout = \"5s\"\n",
        dir.join("data")
    );
    for n in 0..FEEDS {
        text.push_str(&format!(
            "[[feeds]]\nurl = {:?}\nname = \"Outlet {n}\"\n",
            server.url(&format!("/feed/{n}"))
        ));
    }
    text.push_str(&format!(
        "[[sinks]]\nid = \"hook\"\nkind = \"webhook\"\nurl = {hook:?}\nsecret_env = \"NW_TEST_SECRET\"\n\
         [[topics]]\nid = \"museums\"\nname = \"Museums\"\nquery = \"museum\"\nsinks = [\"hook\"]\n\
         updates = true\ngrow_by = 2\nupdate_interval = \"0s\"\n\
         [[topics]]\nid = \"bridges\"\nname = \"Bridges\"\nquery = \"bridge\"\nsinks = [\"hook\"]\n"
    ));
    let path = dir.join("newswatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn once(config: &Path) {
    let out = run(newswatch()
        .arg("once")
        .arg("--config")
        .arg(config)
        .env("NW_TEST_SECRET", secret()));
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// The bodies received of event type `event`, each checked: answered 200, signed with
/// the test key over its id, timestamp and bytes, its type in the header and body.
fn events(receiver: &Receiver, event: &str) -> Vec<Value> {
    receiver
        .received()
        .iter()
        .map(checked)
        .filter(|body| body["event"] == event)
        .collect()
}

fn checked(r: &Received) -> Value {
    assert_eq!(r.status, 200);
    let id = r.header("webhook-id");
    assert_eq!(
        r.header("webhook-signature"),
        expected_signature(id, r.header("webhook-timestamp"), &r.body),
        "signature of {id}"
    );
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["id"], id);
    assert_eq!(body["event"], r.header("newswatch-event"));
    body
}

fn titles(body: &Value) -> Vec<&str> {
    body["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect()
}

/// A story that alerted grows by two outlets' copies at a time: each step is one
/// signed `story.updated` naming the new copies; polling again sends nothing; the
/// topic with updates off gets none.
#[test]
fn a_growing_story_sends_one_update_per_step_and_none_with_updates_off() {
    let (server, feeds) = serve();
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &server, &receiver.url());

    feeds.open(0);
    once(&config);
    let alerts = events(&receiver, "story.new");
    assert_eq!(alerts.len(), 2, "one alert per story: {alerts:?}");
    let museum = alerts
        .iter()
        .find(|a| a["topic"]["id"] == "museums")
        .expect("the museum story alerted");
    assert_eq!(museum["type"], "newswatch.alert");
    let story = museum["story"]["id"].as_str().unwrap().to_string();

    // One more copy each: below the step.
    feeds.open(1);
    once(&config);
    assert!(events(&receiver, "story.updated").is_empty());
    // The second copy: the first step, for the museums only.
    feeds.open(2);
    once(&config);
    let updates = events(&receiver, "story.updated");
    assert_eq!(updates.len(), 1, "{updates:?}");
    let first = &updates[0];
    assert_eq!(first["type"], "newswatch.event");
    assert_eq!(first["topic"]["id"], "museums");
    assert_eq!(first["story"]["id"], story.as_str());
    assert_eq!(first["story"]["title"], "City museum reopens its east wing");
    assert_eq!(first["story"]["url"], "https://outlet0.example/museum");
    assert_eq!(first["step"], 1);
    assert_eq!(first["story"]["sources"], 3);
    assert_eq!(
        titles(first),
        [
            "City museum reopens its east wing (outlet 1)",
            "City museum reopens its east wing (outlet 2)"
        ]
    );
    assert_eq!(first["added"][0]["url"], "https://outlet1.example/museum");

    // Nothing new: nothing sent.
    once(&config);
    assert_eq!(events(&receiver, "story.updated").len(), 1);
    // Two more outlets at once: the second step.
    feeds.open(3);
    feeds.open(4);
    once(&config);
    let updates = events(&receiver, "story.updated");
    assert_eq!(updates.len(), 2, "{updates:?}");
    let second = &updates[1];
    assert_eq!(second["step"], 2);
    assert_eq!(second["story"]["sources"], 5);
    assert_eq!(titles(second).len(), 2);
    assert_ne!(second["id"], first["id"]);
    // The bridge story grew alike, on a topic with updates off: no follow-up; and
    // each request was one event, sent once.
    assert!(updates.iter().all(|u| u["topic"]["id"] == "museums"));
    let ids = receiver.delivered_ids();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(receiver.received().len(), 4);
    // `alerts` lists them with the alerts, a follow-up after its type.
    let out = run(newswatch().arg("alerts").arg("--config").arg(&config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let follow_ups = out
        .stdout
        .lines()
        .filter(|l| l.contains("story.updated: City museum reopens its east wing"))
        .count();
    assert_eq!(follow_ups, 2, "{}", out.stdout);
}

/// A corrected headline (same GUID, another title) of a story that alerted is stored as
/// the item's new version and sent once as `item.updated` with the old title; the
/// same correction polled again sends nothing, and the topic with updates off none.
#[test]
fn a_corrected_headline_sends_one_item_update() {
    let (server, feeds) = serve();
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &server, &receiver.url());
    feeds.open(0);
    once(&config);
    assert_eq!(events(&receiver, "story.new").len(), 2);

    // The same entries polled again: unchanged, nothing sent.
    once(&config);
    assert!(events(&receiver, "item.updated").is_empty());
    // Both headlines corrected, a word of each text changed.
    {
        let mut all = feeds.0.lock().unwrap();
        for entry in &mut all[0] {
            entry.title = entry
                .title
                .replace("reopens", "reopened")
                .replace("closed", "shut");
            entry.text = entry.text.replace("Saturday", "Sunday");
        }
    }
    once(&config);
    let updates = events(&receiver, "item.updated");
    assert_eq!(updates.len(), 1, "{updates:?}");
    let update = &updates[0];
    assert_eq!(update["type"], "newswatch.event");
    assert_eq!(update["topic"]["id"], "museums");
    assert_eq!(update["item"]["id"], "u:https://outlet0.example/museum");
    assert_eq!(
        update["item"]["title"],
        "City museum reopened its east wing"
    );
    assert_eq!(
        update["previous_title"],
        "City museum reopens its east wing"
    );
    assert_eq!(update["story_id"], "u:https://outlet0.example/museum");
    // Polled again: the new version is the stored one.
    once(&config);
    assert_eq!(events(&receiver, "item.updated").len(), 1);
    let out = run(newswatch()
        .args(["items", "--json", "--config"])
        .arg(&config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let titles: Vec<&str> = out
        .items
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.contains(&"City museum reopened its east wing"),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"Railway bridge shut after cracks found"),
        "{titles:?}"
    );
    assert_eq!(out.items.len(), 2, "changed, not added: {titles:?}");
}
