//! Full text for summary-only feeds (`full_text = true`) through the real binary, and
//! the fetcher's address policy: loopback feeds and redirects to link-local or
//! loopback addresses are refused unless `[poller] allow_private` or `allow_hosts`
//! says otherwise (src/net.rs, docs/config.md).

use std::time::Duration;

use newswatch::config;
use newswatch::poller::{FetchError, Fetcher};
use newswatch::store::FeedState;
use serde_json::Value;

use crate::util::server::{FeedServer, Reply};
use crate::util::{newswatch, run};

/// An article page: the body is only here, wrapped in site navigation, an ad,
/// related links and comments.
fn page(headline: &str, paragraphs: &[&str]) -> String {
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    format!(
        "<!DOCTYPE html><html><head><title>{headline} | Example</title></head><body>\
         <nav><a href='/'>Home</a> <a href='/world'>World</a> <a href='/sport'>Sport</a></nav>\
         <div class='ad-banner'>Advertisement: buy zeppelin insurance today, the best offer</div>\
         <main><article><h1>{headline}</h1>{body}</article></main>\
         <aside class='related'><ul><li><a href='/x'>Markets rally on harpsichord exports</a></li>\
         <li><a href='/y'>Another related story about gondolas</a></li></ul></aside>\
         <section class='comments'><p>Reader comment: the quokka deserves better coverage, truly.</p></section>\
         <footer>Copyright Example News</footer></body></html>"
    )
}

fn feed_xml(base: &str) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel><title>Summaries</title>\n",
    );
    for (i, path) in ["/a/1", "/a/2", "/missing"].iter().enumerate() {
        xml.push_str(&format!(
            "<item><guid>ft-{i}</guid><title>Story {i}</title><link>{base}{path}</link>\
             <description>One-line summary {i}.</description></item>\n"
        ));
    }
    xml.push_str("</channel></rss>\n");
    xml
}

fn server() -> FeedServer {
    FeedServer::start(|request| {
        match request.path.as_str() {
        "/feed.xml" => {
            let host = request.header("host").unwrap_or("127.0.0.1");
            Reply::feed(feed_xml(&format!("http://{host}")))
        }
        "/a/1" => Reply::status(
            200,
            page(
                "Glaciers retreat",
                &[
                    "Scientists measured the glaciers of the Andes for a decade, and found them shrinking faster than thought.",
                    "The flamingo colonies below the ice depend on the meltwater, the researchers said, and may move north.",
                ],
            ),
        )
        .header("content-type", "text/html; charset=utf-8"),
        "/a/2" => Reply::status(
            200,
            page(
                "Harbour reopens",
                &[
                    "The old harbour reopened on Monday after two years of repairs, with new cranes and a longer quay.",
                    "Fishermen said the first catch, mostly mackerel, sold out before noon at the market hall.",
                ],
            ),
        )
        .header("content-type", "text/html; charset=utf-8"),
        _ => Reply::not_found(),
    }
    })
}

fn config(dir: &std::path::Path, feed: &str) -> std::path::PathBuf {
    let text = format!(
        "[storage]\npath = {:?}\n[poller]\ninterval = \"1h\"\ntimeout = \"10s\"\nfull_text_pages = 10\n\
         [[feeds]]\nurl = {feed:?}\nfull_text = true\n\
         [[sinks]]\nid = \"log\"\nkind = \"log\"\n\
         [[topics]]\nid = \"birds\"\nquery = \"flamingo\"\nsinks = [\"log\"]\n\
         [[topics]]\nid = \"fish\"\nquery = \"mackerel\"\nsinks = [\"log\"]\n\
         [[topics]]\nid = \"summary\"\nquery = \"summary\"\nsinks = [\"log\"]\n\
         [[topics]]\nid = \"chrome\"\nquery = \"zeppelin OR harpsichord OR quokka OR gondolas OR copyright\"\nsinks = [\"log\"]\n",
        dir.join("data")
    );
    let path = dir.join("newswatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn items(config: &std::path::Path) -> Vec<Value> {
    let out = run(newswatch()
        .args(["items", "--json", "--limit", "100", "--config"])
        .arg(config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.items
}

#[test]
fn once_with_full_text_stores_each_pages_article_and_keeps_the_summary_of_a_missing_page() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &server.url("/feed.xml"));
    let out = run(newswatch().arg("once").arg("--config").arg(&config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let items = items(&config);
    assert_eq!(items.len(), 3, "{items:?}");
    // `items` shows topics, not text: each topic's words are only in one place.
    let topics = |title: &str| -> Vec<String> {
        let item = items.iter().find(|i| i["title"] == title).expect(title);
        let topics = item["topics"].as_array().unwrap();
        topics
            .iter()
            .map(|t| {
                t.as_str()
                    .map_or_else(|| t["id"].as_str().unwrap().to_string(), str::to_string)
            })
            .collect()
    };
    // "flamingo" and "mackerel" are only in the pages' article bodies; the navigation,
    // ad, related links, comments and footer words (topic "chrome") are not read; the
    // feed's "summary" is replaced, except for the page that 404s.
    assert_eq!(topics("Story 0"), ["birds"], "{items:?}");
    assert_eq!(topics("Story 1"), ["fish"], "{items:?}");
    assert_eq!(topics("Story 2"), ["summary"], "{items:?}");
    // Each page once; a second run fetches no page again (the items are seen).
    let out = run(newswatch().arg("once").arg("--config").arg(&config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.hits_to("/a/1"), 1);
    assert_eq!(server.hits_to("/missing"), 1);
}

#[test]
fn a_feed_on_loopback_is_refused_without_allow_private() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &server.url("/feed.xml"));
    let out = run(newswatch()
        .arg("once")
        .arg("--config")
        .arg(&config)
        .env_remove("NEWSWATCH__POLLER__ALLOW_PRIVATE"));
    assert!(
        out.stderr.contains("refused to connect to 127.0.0.1")
            && out.stderr.contains("allow_private"),
        "{}",
        out.stderr
    );
    assert_eq!(server.hits(), 0, "the server was asked");
    assert!(items(&config).is_empty());
}

#[test]
fn a_sink_on_loopback_is_refused_without_alert_allow_private() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("newswatch.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = {:?}\n\
             [[sinks]]\nid = \"hook\"\nkind = \"ntfy\"\nurl = \"http://127.0.0.1:9/alerts\"\n\
             [[topics]]\nid = \"t\"\nquery = \"x\"\nsinks = [\"hook\"]\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let out = run(newswatch()
        .arg("once")
        .arg("--config")
        .arg(&config)
        .env_remove("NEWSWATCH__ALERT__ALLOW_PRIVATE"));
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("sink \"hook\"") && out.stderr.contains("[alert] allow_private"),
        "{}",
        out.stderr
    );
    let out = run(newswatch().arg("once").arg("--config").arg(&config));
    assert_eq!(out.code, 0, "allowed with the setting: {}", out.stderr);
}

fn guarded_fetcher(allow_hosts: &[&str]) -> Fetcher {
    Fetcher::new(&config::Poller {
        interval: Duration::from_secs(60),
        concurrency: 2,
        per_host: 2,
        timeout: Duration::from_secs(10),
        max_body: 1 << 20,
        user_agent: "newswatch-test".into(),
        full_text_pages: 10,
        allow_private: false,
        allow_hosts: allow_hosts.iter().map(|h| h.to_string()).collect(),
    })
    .unwrap()
}

#[tokio::test]
async fn a_redirect_to_a_link_local_or_loopback_address_is_refused() {
    let server = FeedServer::start(|request| match request.path.as_str() {
        "/metadata" => Reply::redirect(302, "http://169.254.169.254/latest/meta-data/"),
        "/local" => Reply::redirect(302, "http://localhost:9/admin"),
        "/mapped" => Reply::redirect(302, "http://[::ffff:127.0.0.1]:9/"),
        _ => Reply::feed("<rss version=\"2.0\"><channel></channel></rss>"),
    });
    // 127.0.0.1 is listed, so the first hop is allowed; where it leads is not.
    let fetcher = guarded_fetcher(&["127.0.0.1"]);
    let feed = |path: &str| config::FeedUrl::Http(url::Url::parse(&server.url(path)).unwrap());
    let ok = fetcher
        .fetch(&feed("/feed.xml"), &FeedState::default())
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    for (path, addr) in [
        ("/metadata", "169.254.169.254"),
        ("/local", "127.0.0.1"),
        ("/mapped", "::ffff:127.0.0.1"),
    ] {
        let err = fetcher
            .fetch(&feed(path), &FeedState::default())
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Refused(_)), "{path}: {err:?}");
        let text = err.to_string();
        assert!(
            text.contains(addr) && text.contains("[poller] allow_private"),
            "{text}"
        );
    }
}
