//! A cluster: three `newswatch run` daemons (the real binary) sharing one PostgreSQL
//! database (`util::pg`), polling one feed server on 127.0.0.1 and alerting signed
//! webhook receivers. What the PostgreSQL backend promises a cluster:
//!
//! - a feed is polled by one daemon at a time and once per interval, under a lease;
//! - a daemon that dies holding leases leaves its feeds to the others once they expire;
//! - copies of one story reaching several daemons at once join one story and alert
//!   once per story, topic and sink;
//! - a daemon paused past its lease stores and sends nothing of the poll it was in.
//!
//! Each daemon names itself in the config (`storage.node`) and in its user agent
//! (`poller.user_agent = "newswatch-test/NODE"`), so the feed server knows which daemon
//! fetched what, and the database which one stored what (`items.stored_by`).
//!
//! Time: no config polls a feed more often than once a minute (`poller::schedule`,
//! `Bounds::default().min`, `config::MIN_INTERVAL`: a shorter `poller.interval` is a
//! config error), so only the first test waits for a second round of
//! polls; the others work at the lease's time scale (3 s), from the first poll a daemon
//! makes at start.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::daemon::{run_command, Daemon};
use crate::util::pg::{self, psql, TestDb};
use crate::util::receiver::{expected_signature, secret, Mode, Received, Receiver};
use crate::util::server::{pick_words, FeedServer, Gate, Reply, WORDS};
use crate::util::wait_until;

/// `storage.lease` of the tests that are about leases.
const LEASE: Duration = Duration::from_secs(3);
/// `poller.interval`: the shortest there is (see the module doc).
const INTERVAL: Duration = Duration::from_secs(60);
/// The longest a feed waits for its next poll: the interval and its +10 % jitter.
const INTERVAL_MAX: Duration = Duration::from_secs(66);
/// How long a daemon may take to start (connect, migrate, build its stages) on a
/// loaded two-core machine.
const START: Duration = Duration::from_secs(60);
/// Slack for what should take a moment (a fetch, a transaction, a delivery) on a loaded
/// machine.
const SLACK: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------
// Feeds: what each serves now, changed by the test while the daemons poll.

/// One feed entry. Its GUID is its link (a permalink), so its item id is `u:` and the
/// link (docs/stories.md, "Item ids"), which the tests look up in `items.id`. (Without
/// a GUID the id would not be the link: feed-rs makes one up from the link and title,
/// which newswatch takes for the feed's GUID.)
#[derive(Debug, Clone)]
struct Entry {
    title: String,
    link: String,
    text: String,
}

impl Entry {
    /// Entry `i` of feed `feed`: a text of its own (so a story of its own) that
    /// matches no topic of these tests.
    fn generated(feed: usize, i: usize) -> Entry {
        Entry {
            title: format!("Report {feed}-{i}"),
            link: format!("https://example.org/cluster/{feed}/{i}"),
            text: words(&format!("{feed}/{i}"), 40),
        }
    }

    /// The id the daemons give it.
    fn id(&self) -> String {
        format!("u:{}", self.link)
    }
}

/// `count` words picked by a hash of `seed`: different seeds, unrelated texts; none is
/// a topic term of these tests.
fn words(seed: &str, count: usize) -> String {
    let plain: Vec<&str> = WORDS
        .iter()
        .copied()
        .filter(|w| !["harbour", "ferry"].contains(w))
        .collect();
    let hash = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    pick_words(&plain, hash, count)
}

/// The entries of every feed, by feed number.
#[derive(Clone)]
struct Feeds(Arc<Mutex<Vec<Vec<Entry>>>>);

impl Feeds {
    /// `feeds` feeds of `per_feed` generated entries each.
    fn generated(feeds: usize, per_feed: usize) -> Feeds {
        Feeds(Arc::new(Mutex::new(
            (0..feeds)
                .map(|f| (0..per_feed).map(|i| Entry::generated(f, i)).collect())
                .collect(),
        )))
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn add(&self, feed: usize, entry: Entry) {
        self.0.lock().unwrap()[feed].push(entry);
    }

    fn set(&self, feed: usize, entries: Vec<Entry>) {
        self.0.lock().unwrap()[feed] = entries;
    }

    /// Every entry of every feed, with its feed.
    fn all(&self) -> Vec<(usize, Entry)> {
        let feeds = self.0.lock().unwrap();
        feeds
            .iter()
            .enumerate()
            .flat_map(|(f, entries)| entries.iter().map(move |e| (f, e.clone())))
            .collect()
    }

    fn rss(&self, feed: usize) -> String {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel>\
             <title>Cluster feed</title>",
        );
        for e in &self.0.lock().unwrap()[feed] {
            xml.push_str(&format!(
                "<item><guid>{}</guid><title>{}</title><link>{}</link>\
                 <description>{}</description></item>",
                e.link, e.title, e.link, e.text
            ));
        }
        xml.push_str("</channel></rss>");
        xml
    }
}

/// One request for a feed, as the server saw it arrive.
#[derive(Debug, Clone)]
struct Fetch {
    feed: usize,
    /// The daemon, from its user agent.
    node: String,
    at: Instant,
}

/// Every fetch so far, in order of arrival.
#[derive(Clone, Default)]
struct Fetches(Arc<Mutex<Vec<Fetch>>>);

impl Fetches {
    fn all(&self) -> Vec<Fetch> {
        self.0.lock().unwrap().clone()
    }

    fn of(&self, feed: usize) -> Vec<Fetch> {
        self.all().into_iter().filter(|f| f.feed == feed).collect()
    }

    fn by(&self, node: &str) -> Vec<Fetch> {
        self.all().into_iter().filter(|f| f.node == node).collect()
    }

    /// The fewest fetches any of the first `feeds` feeds had.
    fn fewest(&self, feeds: usize) -> usize {
        let all = self.all();
        (0..feeds)
            .map(|n| all.iter().filter(|f| f.feed == n).count())
            .min()
            .unwrap_or(0)
    }

    /// Every fetch, feed by feed: "feed 3: b at 0.41 s, a at 61.02 s", for failures.
    fn describe(&self, since: Instant) -> String {
        let mut by_feed: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for f in self.all() {
            by_feed.entry(f.feed).or_default().push(format!(
                "{} at {:.2} s",
                f.node,
                f.at.saturating_duration_since(since).as_secs_f64()
            ));
        }
        by_feed
            .iter()
            .map(|(feed, fetches)| format!("feed {feed}: {}", fetches.join(", ")))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A feed server for `feeds` at `/feed/{n}`, recording each fetch in `fetches`;
/// `shape` decides how the reply is held, given the fetch and which fetch of its feed
/// it is (1 for the first).
fn serve(
    feeds: &Feeds,
    fetches: &Fetches,
    shape: impl Fn(&Fetch, usize, Reply) -> Reply + Send + Sync + 'static,
) -> FeedServer {
    let (feeds, fetches) = (feeds.clone(), fetches.clone());
    FeedServer::start(move |request| {
        let Some(feed) = request
            .path
            .strip_prefix("/feed/")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n < feeds.count())
        else {
            return Reply::not_found();
        };
        let node = request
            .header("user-agent")
            .and_then(|ua| ua.strip_prefix("newswatch-test/"))
            .unwrap_or("?")
            .to_string();
        let fetch = Fetch {
            feed,
            node,
            at: Instant::now(),
        };
        // The body is what the feed holds now, when the request arrives, however long
        // the reply is then held.
        let reply = Reply::feed(feeds.rss(feed));
        let hit = {
            let mut all = fetches.0.lock().unwrap();
            all.push(fetch.clone());
            all.iter().filter(|f| f.feed == feed).count()
        };
        shape(&fetch, hit, reply)
    })
}

// ---------------------------------------------------------------------------------
// The daemons.

/// What the daemons of a test share: the database, the feeds, the sinks and topics.
struct Setup<'a> {
    db: &'a TestDb,
    feeds: Vec<String>,
    lease: Duration,
    /// `poller.concurrency` and `poller.per_host` (all feeds are on one host).
    per_host: usize,
    /// Webhook sinks: id and URL.
    hooks: Vec<(&'static str, String)>,
    /// Topics: id, query, sinks.
    topics: Vec<(&'static str, &'static str, Vec<&'static str>)>,
}

impl Setup<'_> {
    /// The config of daemon `node`, written into `dir`.
    fn config(&self, dir: &Path, node: &str) -> PathBuf {
        let mut text = format!(
            "[storage]\nbackend = \"postgres\"\nurl = {:?}\nlease = \"{}ms\"\nnode = {node:?}\n\
             pool = 4\npath = {:?}\n\
             [poller]\ninterval = \"{}s\"\nconcurrency = {per_host}\nper_host = {per_host}\n\
             timeout = \"30s\"\nuser_agent = \"newswatch-test/{node}\"\n",
            self.db.url,
            self.lease.as_millis(),
            dir.join(format!("data-{node}")),
            INTERVAL.as_secs(),
            per_host = self.per_host,
        );
        for url in &self.feeds {
            text.push_str(&format!("[[feeds]]\nurl = {url:?}\n"));
        }
        for (id, url) in &self.hooks {
            text.push_str(&format!(
                "[[sinks]]\nid = {id:?}\nkind = \"webhook\"\nurl = {url:?}\n\
                 secret_env = \"NW_TEST_SECRET\"\nmax_attempts = 100\nretry_base = \"200ms\"\n\
                 retry_max = \"2s\"\n"
            ));
        }
        for (id, query, sinks) in &self.topics {
            text.push_str(&format!(
                "[[topics]]\nid = {id:?}\nquery = {query:?}\nsinks = {sinks:?}\n"
            ));
        }
        let path = dir.join(format!("{node}.toml"));
        std::fs::write(&path, text).expect("write config");
        path
    }
}

/// The daemons of a test, by node name.
struct Cluster {
    daemons: BTreeMap<&'static str, Daemon>,
}

impl Cluster {
    fn new() -> Cluster {
        Cluster {
            daemons: BTreeMap::new(),
        }
    }

    /// Starts daemon `node` with its config from `setup`; does not wait for it.
    fn spawn(&mut self, dir: &Path, setup: &Setup, node: &'static str) {
        let mut cmd = run_command(&setup.config(dir, node));
        cmd.env("NW_TEST_SECRET", secret());
        self.daemons.insert(node, Daemon::spawn(&mut cmd));
    }

    /// Waits until each of `nodes` has logged `Started.`.
    fn wait_started(&self, nodes: &[&str]) {
        for node in nodes {
            let daemon = self.get(node);
            assert!(
                daemon.log.wait_for("Started.", 1, START),
                "daemon {node} did not start; stderr:\n{}",
                daemon.log.text()
            );
        }
    }

    fn get(&self, node: &str) -> &Daemon {
        &self.daemons[node]
    }

    /// SIGKILL for `node`, waited for; it stays in the cluster, exited.
    fn kill(&mut self, node: &str) {
        self.daemons
            .get_mut(node)
            .expect("a daemon of the cluster")
            .kill();
    }

    /// Every daemon's log, for failure messages.
    fn logs(&self) -> String {
        self.daemons
            .iter()
            .map(|(node, d)| format!("--- daemon {node}:\n{}", d.log.text()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// SIGTERM to every running daemon at once, then a clean exit of each within 15 s
    /// (shutdown gives polls in flight 5 s, and gives the leases up).
    fn stop(mut self) {
        let mut running = Vec::new();
        for (node, daemon) in self.daemons.iter_mut() {
            if daemon.exited().is_none() {
                daemon.signal("TERM");
                running.push(*node);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for node in running {
            let daemon = self.daemons.get_mut(node).expect("a daemon");
            let status = daemon.exit_by(deadline, "15 s after SIGTERM");
            assert!(
                status.success(),
                "daemon {node}: {status}; stderr:\n{}",
                daemon.log.text()
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// The database.

/// The rows `sql` gives, each split into its columns.
fn rows(db: &TestDb, sql: &str) -> Vec<Vec<String>> {
    psql(&db.url, sql)
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| line.split('|').map(str::to_string).collect())
        .collect()
}

/// The one number `sql` gives.
fn number(db: &TestDb, sql: &str) -> i64 {
    let out = psql(&db.url, sql);
    out.parse()
        .unwrap_or_else(|_| panic!("{sql:?} gave {out:?}, not a number"))
}

/// Which daemon stored each item: id → node.
fn stored_by(db: &TestDb) -> BTreeMap<String, String> {
    rows(db, "select id, stored_by from items order by id")
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect()
}

/// Each feed's epoch, by feed number: how many leases it was granted.
fn epochs(db: &TestDb, setup: &Setup) -> Vec<i64> {
    let by_url: HashMap<String, i64> = rows(db, "select url, epoch from feeds")
        .into_iter()
        .map(|row| (row[0].clone(), row[1].parse().expect("an epoch")))
        .collect();
    setup
        .feeds
        .iter()
        .map(|url| by_url.get(url).copied().unwrap_or(0))
        .collect()
}

// ---------------------------------------------------------------------------------
// Alerts.

/// What a receiver got, each request checked: answered 200, signed with the secret,
/// its `webhook-id` the body's `id`. Returns the bodies.
fn deliveries(receiver: &Receiver, sink: &str) -> Vec<Value> {
    receiver
        .received()
        .iter()
        .map(|r: &Received| {
            let id = r.header("webhook-id");
            assert_eq!(r.status, 200, "sink {sink}: request {id} was not accepted");
            assert_eq!(
                r.header("webhook-signature"),
                expected_signature(id, r.header("webhook-timestamp"), &r.body),
                "sink {sink}: request {id} is not signed with the sink's secret"
            );
            let body: Value = serde_json::from_slice(&r.body).expect("a JSON body");
            assert_eq!(body["id"], id, "sink {sink}: webhook-id is the body's id");
            body
        })
        .collect()
}

/// Fails unless each of the first `feeds` feeds was fetched at most once per interval:
/// any two of its fetches at least the interval apart (less a second: the next poll is
/// due an interval after the claim, which comes just before the request).
fn assert_once_per_interval(fetches: &Fetches, feeds: usize, began: Instant) {
    for feed in 0..feeds {
        for pair in fetches.of(feed).windows(2) {
            let gap = pair[1].at.duration_since(pair[0].at);
            assert!(
                gap >= INTERVAL - Duration::from_secs(1),
                "feed {feed} was fetched by {} and then by {} within {gap:?}, less than \
                 the interval:\n{}",
                pair[0].node,
                pair[1].node,
                fetches.describe(began)
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// The tests.

/// Twelve feeds, three daemons, two rounds of polls (the start, and one interval
/// later, when all three daemons find every feed due at the same moment): each feed is
/// fetched once per round, by one daemon, the rounds an interval apart; the work is
/// shared; each item is stored once, by the daemon that fetched it.
///
/// Checked to fail: with `claim_feed` granting every claim (its subquery without the
/// lease and due conditions and without SKIP LOCKED), each feed is fetched by all three
/// daemons at the start ("feed 0 was fetched by c and then by a within 306ms").
#[test]
fn every_feed_is_polled_by_one_daemon_per_interval() {
    const FEEDS: usize = 12;
    let db = pg::database();
    let feeds = Feeds::generated(FEEDS, 3);
    let fetches = Fetches::default();
    // A fetch takes a moment, so that a daemon that started first cannot take every
    // feed before the others are up: with two fetches at a time each, they share.
    let server = serve(&feeds, &fetches, |_, _, reply| {
        reply.after(Duration::from_millis(300))
    });
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        db: &db,
        feeds: (0..FEEDS).map(|n| server.feed_url(n)).collect(),
        lease: LEASE,
        per_host: 2,
        hooks: Vec::new(),
        topics: Vec::new(),
    };
    let began = Instant::now();
    let mut cluster = Cluster::new();
    for node in ["a", "b", "c"] {
        cluster.spawn(dir.path(), &setup, node);
    }
    cluster.wait_started(&["a", "b", "c"]);

    // The first round: every feed once.
    assert!(
        wait_until(START, || fetches.fewest(FEEDS) >= 1),
        "not every feed was polled at the start:\n{}\n{}",
        fetches.describe(began),
        cluster.logs()
    );
    let first_round = Instant::now();
    // A daemon that polled a feed again within the interval would do it as soon as the
    // lease of the one that polled it ran out, or at once.
    std::thread::sleep(LEASE + Duration::from_secs(1));
    assert_once_per_interval(&fetches, FEEDS, began);
    // A new item in every feed, for the second round to store.
    for feed in 0..FEEDS {
        feeds.add(feed, Entry::generated(feed, 3));
    }
    // The second round: due an interval (and its jitter) after the first.
    assert!(
        wait_until(INTERVAL_MAX + LEASE + SLACK, || fetches.fewest(FEEDS) >= 2),
        "not every feed was polled again an interval later:\n{}\n{}",
        fetches.describe(began),
        cluster.logs()
    );
    let expected: BTreeSet<String> = feeds.all().iter().map(|(_, e)| e.id()).collect();
    assert!(
        wait_until(SLACK, || stored_by(&db).len() == expected.len()),
        "{} of {} items stored; fetches:\n{}\n{}",
        stored_by(&db).len(),
        expected.len(),
        fetches.describe(began),
        cluster.logs()
    );
    std::thread::sleep(LEASE + Duration::from_secs(1));
    let elapsed = first_round.elapsed();
    assert!(
        elapsed < INTERVAL + INTERVAL_MAX,
        "the test ran into a third round ({elapsed:?}); its counts are for two"
    );

    let all = fetches.all();
    let nodes: BTreeSet<&str> = all.iter().map(|f| f.node.as_str()).collect();
    assert!(
        nodes.iter().all(|n| ["a", "b", "c"].contains(n)),
        "a fetch by no daemon of the cluster: {nodes:?}"
    );
    assert_once_per_interval(&fetches, FEEDS, began);
    for feed in 0..FEEDS {
        let of = fetches.of(feed);
        assert_eq!(
            of.len(),
            2,
            "feed {feed} was fetched {} times in two rounds:\n{}",
            of.len(),
            fetches.describe(began)
        );
    }
    // One lease per fetch: no daemon was granted a feed it then did not fetch, nor
    // fetched one without a lease.
    assert_eq!(
        epochs(&db, &setup),
        vec![2; FEEDS],
        "leases granted per feed"
    );

    // Each item once, by the daemon that fetched it in the round that first served it.
    let stored = stored_by(&db);
    assert_eq!(
        stored.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "the items stored are the items served"
    );
    for (feed, entry) in feeds.all() {
        let round = if entry.link.ends_with("/3") { 1 } else { 0 };
        let fetcher = &fetches.of(feed)[round].node;
        assert_eq!(
            &stored[&entry.id()],
            fetcher,
            "item {} of feed {feed} was stored by another daemon than the one that \
             fetched it in round {}",
            entry.link,
            round + 1
        );
    }
    let storers: BTreeSet<&String> = stored.values().collect();
    assert!(
        storers.len() >= 2,
        "one daemon did all the work: {storers:?}; fetches:\n{}",
        fetches.describe(began)
    );

    cluster.stop();
    // No lease is left behind.
    assert_eq!(
        number(
            &db,
            "select count(*) from feeds where lease_owner is not null"
        ),
        0
    );
}

/// A daemon killed in the middle of polling holds leases on the feeds it was fetching;
/// once they run out (and not before), the other two poll those feeds: everything in
/// every feed after the kill is stored, by the survivors, once, within a lease and an
/// interval (in practice within about a lease: the survivors start polling then).
///
/// Checked to fail, each by breaking the condition of `claim_feed`'s claim:
/// - ignoring live leases (the `lease_until`/`lease_owner` condition made true): both
///   survivors fetch the victim's feeds at once ("feed 0 was fetched 2 times by the
///   survivors");
/// - never granting over an expired lease (`OR lease_until < now()` dropped): the
///   victim's feeds are not polled again until the next interval ("15 of 27 items
///   stored 79 s after the kill");
/// - granting every claim (as for the first test): fails as the first case.
#[test]
fn a_killed_daemons_feeds_are_taken_over_once_its_leases_expire() {
    const FEEDS: usize = 9;
    const VICTIM: &str = "c";
    // The victim takes four feeds at once and is held fetching them.
    const HELD: usize = 4;
    let db = pg::database();
    let feeds = Feeds::generated(FEEDS, 2);
    let fetches = Fetches::default();
    let held = Gate::new();
    let gate = held.clone();
    let server = serve(&feeds, &fetches, move |fetch, _, reply| {
        if fetch.node == VICTIM {
            reply.held_by(&gate)
        } else {
            reply
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        db: &db,
        feeds: (0..FEEDS).map(|n| server.feed_url(n)).collect(),
        lease: LEASE,
        per_host: HELD,
        hooks: Vec::new(),
        topics: Vec::new(),
    };
    let began = Instant::now();
    let mut cluster = Cluster::new();
    cluster.spawn(dir.path(), &setup, VICTIM);
    assert!(
        wait_until(START, || fetches.by(VICTIM).len() >= HELD),
        "daemon {VICTIM} did not start polling:\n{}\n{}",
        fetches.describe(began),
        cluster.logs()
    );
    cluster.spawn(dir.path(), &setup, "a");
    cluster.spawn(dir.path(), &setup, "b");
    cluster.kill(VICTIM);
    let killed = Instant::now();
    // The victim's feeds, each fetched once, under a lease that is still live.
    let victims: BTreeMap<usize, Instant> =
        fetches.by(VICTIM).iter().map(|f| (f.feed, f.at)).collect();
    assert_eq!(
        victims.len(),
        HELD,
        "the victim holds {HELD} feeds:\n{}",
        fetches.describe(began)
    );
    for feed in 0..FEEDS {
        feeds.add(feed, Entry::generated(feed, 2));
    }
    // The survivors start now: they find the victim's feeds leased, and the rest due.

    let expected: BTreeSet<String> = feeds.all().iter().map(|(_, e)| e.id()).collect();
    let stored = wait_until(LEASE + INTERVAL_MAX + SLACK, || {
        stored_by(&db).len() == expected.len()
    });
    let took = killed.elapsed();
    assert!(
        stored,
        "{} of {} items stored {took:?} after the kill; fetches:\n{}\n{}",
        stored_by(&db).len(),
        expected.len(),
        fetches.describe(began),
        cluster.logs()
    );
    cluster.wait_started(&["a", "b"]);

    let stored = stored_by(&db);
    assert_eq!(
        stored.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "the items stored are the items served"
    );
    for (id, node) in &stored {
        assert!(
            node == "a" || node == "b",
            "item {id} was stored by {node}, not by a survivor"
        );
    }
    // Each feed fetched by one survivor, once (the next round is an interval away);
    // the victim's only after its lease ran out.
    for feed in 0..FEEDS {
        let survivors: Vec<Fetch> = fetches
            .of(feed)
            .into_iter()
            .filter(|f| f.node != VICTIM)
            .collect();
        assert_eq!(
            survivors.len(),
            1,
            "feed {feed} was fetched {} times by the survivors:\n{}",
            survivors.len(),
            fetches.describe(began)
        );
        if let Some(victim_at) = victims.get(&feed) {
            // The lease was granted just before the victim's request arrived.
            let after = survivors[0].at.duration_since(*victim_at);
            assert!(
                after >= LEASE - Duration::from_millis(250),
                "feed {feed} was taken {after:?} after the victim's lease began, before \
                 the lease of {LEASE:?} ran out:\n{}",
                fetches.describe(began)
            );
        }
    }
    assert_eq!(
        epochs(&db, &setup),
        (0..FEEDS)
            .map(|f| if victims.contains_key(&f) { 2 } else { 1 })
            .collect::<Vec<_>>(),
        "leases granted per feed: the victim's feeds twice, the others once"
    );
    held.open();
    cluster.stop();
    // The victim's leases were taken over and given up: none is left behind.
    assert_eq!(
        number(
            &db,
            "select count(*) from feeds where lease_owner is not null"
        ),
        0
    );
}

/// The title, link and text of a copy of a wire story: the same text, another link,
/// the title lightly edited.
fn copy(story: &str, n: usize, titles: &[&str], text: &str) -> Entry {
    Entry {
        title: titles[n % titles.len()].to_string(),
        link: format!("https://example.org/cluster/{story}/copy-{n}"),
        text: text.to_string(),
    }
}

const STRIKE: &str = "Dock workers at the city harbour ended their two week strike on \
    Thursday after the port authority agreed to a new pay deal, and the first ferry left \
    the terminal at noon. Union leaders said the agreement raises wages by six percent \
    over two years and limits night shifts. Freight companies had warned that the \
    stoppage cost the region millions every day, and hundreds of containers are still \
    waiting on the quay to be loaded.";

const STRIKE_TITLES: &[&str] = &[
    "Harbour strike ends after pay deal",
    "Harbour strike ends after new pay deal",
    "UPDATE: Harbour strike ends after pay deal",
    "Harbour strike ends after pay deal, union says",
    "Harbour strike over after pay deal",
    "Dockers end harbour strike after pay deal",
];

const LIMITS: &str = "The harbour master announced new speed limits for pleasure boats \
    in the outer basin after a collision last month injured two kayakers. The limits \
    apply from May to September and will be enforced by patrol boats, with fines of up \
    to five hundred euros for repeat offenders. Sailing clubs welcomed the rules but \
    asked for clearer buoys marking the zones.";

const LIMITS_TITLES: &[&str] = &[
    "Speed limits for boats in the harbour",
    "New speed limits for boats in the harbour",
    "Harbour sets speed limits for boats",
];

/// Which story of [`every_story_alerts_once_per_topic_and_sink`] an item link is of:
/// `strike`, `limits`, or `d0`, `d1`... for the distinct ones.
fn story_of_link(link: &str) -> String {
    let rest = link
        .strip_prefix("https://example.org/cluster/")
        .unwrap_or(link);
    match rest.split_once('/') {
        Some(("strike", _)) => "strike".into(),
        Some(("limits", _)) => "limits".into(),
        Some((feed, _)) => format!("d{feed}"),
        None => rest.into(),
    }
}

/// Six feeds, each held until every daemon is fetching two of them, then all answered
/// at once: a wire story on all six feeds (so at all three daemons), another on three
/// (so at two daemons at least), and a story of its own on each feed, two of them on a
/// topic. Each story alerts once per topic and sink, whichever daemons stored its
/// copies, and the outbox holds exactly what the receivers got.
///
/// Checked to fail: with the store's check of a new story's lead against the stories in
/// the database switched off (`join_known_stories` returning 0 at once), each daemon
/// makes the copies it has a story of its own, and the receivers get the wire stories
/// once per daemon that had a copy. (With `claim_feed` granting every claim it fails
/// too: a daemon polls all six feeds and the copies are not spread.)
#[test]
fn every_story_alerts_once_per_topic_and_sink() {
    const FEEDS: usize = 6;
    let db = pg::database();
    let feeds = Feeds::generated(FEEDS, 0);
    for feed in 0..FEEDS {
        let mut entries = vec![copy("strike", feed, STRIKE_TITLES, STRIKE)];
        if feed % 2 == 0 {
            entries.push(copy("limits", feed / 2, LIMITS_TITLES, LIMITS));
        }
        // A story of its own; those of feeds 0 and 1 are about the harbour too.
        let mut own = Entry::generated(feed, 0);
        if feed < 2 {
            own.text.push_str(" harbour");
        }
        entries.push(own);
        feeds.set(feed, entries);
    }
    let fetches = Fetches::default();
    let gate = Gate::new();
    let held = gate.clone();
    let server = serve(&feeds, &fetches, move |_, _, reply| reply.held_by(&held));
    let hook1 = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Ok);
    let hook2 = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        db: &db,
        feeds: (0..FEEDS).map(|n| server.feed_url(n)).collect(),
        // Longer than the start of three daemons: the replies are held meanwhile, and
        // a write after the lease ran out would be refused (this test is not about
        // leases).
        lease: Duration::from_secs(20),
        // Two fetches at a time each: six feeds held, two at each daemon.
        per_host: 2,
        hooks: vec![("hook1", hook1.url()), ("hook2", hook2.url())],
        topics: vec![
            ("harbour", "harbour", vec!["hook1", "hook2"]),
            ("ferry", "ferry", vec!["hook1"]),
        ],
    };
    let began = Instant::now();
    let mut cluster = Cluster::new();
    for node in ["a", "b", "c"] {
        cluster.spawn(dir.path(), &setup, node);
    }
    assert!(
        wait_until(START, || fetches.all().len() >= FEEDS),
        "the daemons did not fetch every feed:\n{}\n{}",
        fetches.describe(began),
        cluster.logs()
    );
    for node in ["a", "b", "c"] {
        assert_eq!(
            fetches.by(node).len(),
            2,
            "each daemon fetches two feeds:\n{}",
            fetches.describe(began)
        );
    }
    gate.open();

    // strike: harbour to both sinks, ferry to hook1; limits: harbour to both;
    // d0 and d1: harbour to both.
    let expected1: BTreeSet<(String, String)> = [
        ("strike", "harbour"),
        ("strike", "ferry"),
        ("limits", "harbour"),
        ("d0", "harbour"),
        ("d1", "harbour"),
    ]
    .iter()
    .map(|(s, t)| (s.to_string(), t.to_string()))
    .collect();
    let expected2: BTreeSet<(String, String)> = expected1
        .iter()
        .filter(|(_, topic)| topic == "harbour")
        .cloned()
        .collect();
    let items = FEEDS + FEEDS / 2 + FEEDS;
    let done = wait_until(START, || {
        stored_by(&db).len() == items
            && hook1.received().len() >= expected1.len()
            && hook2.received().len() >= expected2.len()
    });
    assert!(
        done,
        "{} of {items} items stored, {} and {} of {} and {} alerts received:\n{}",
        stored_by(&db).len(),
        hook1.received().len(),
        hook2.received().len(),
        expected1.len(),
        expected2.len(),
        cluster.logs()
    );
    // A second alert for a story would be sent as soon as it was stored, like the
    // first; give it a moment to arrive.
    std::thread::sleep(Duration::from_secs(2));

    // Every copy of the wire story stored, at every daemon.
    let stored = stored_by(&db);
    let strike_nodes: BTreeSet<&String> = stored
        .iter()
        .filter(|(id, _)| id.contains("/strike/"))
        .map(|(_, node)| node)
        .collect();
    assert_eq!(
        strike_nodes.len(),
        3,
        "the wire story's copies were stored by {strike_nodes:?}, not by all three"
    );
    let stories: BTreeMap<String, BTreeSet<String>> = rows(&db, "select id, story from items")
        .into_iter()
        .fold(BTreeMap::new(), |mut by, row| {
            by.entry(story_of_link(row[0].trim_start_matches("u:")))
                .or_default()
                .insert(row[1].clone());
            by
        });

    let mut delivered = BTreeMap::new();
    for (sink, receiver, expected) in [("hook1", &hook1, &expected1), ("hook2", &hook2, &expected2)]
    {
        let bodies = deliveries(receiver, sink);
        let got: Vec<(String, String)> = bodies
            .iter()
            .map(|b| {
                (
                    story_of_link(b["item"]["url"].as_str().unwrap_or_default()),
                    b["topic"]["id"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let once: BTreeSet<(String, String)> = got.iter().cloned().collect();
        assert_eq!(
            (got.len(), &once),
            (expected.len(), expected),
            "sink {sink}: one alert per story and topic; got {got:?}"
        );
        for body in &bodies {
            let story = story_of_link(body["item"]["url"].as_str().unwrap_or_default());
            let ids = &stories[&story];
            assert!(
                ids.contains(body["story"]["id"].as_str().unwrap_or_default()),
                "sink {sink}: the alert names story {}, the items {ids:?}",
                body["story"]["id"]
            );
        }
        let ids: BTreeSet<String> = bodies
            .iter()
            .map(|b| b["id"].as_str().unwrap_or_default().to_string())
            .collect();
        delivered.insert(sink.to_string(), ids);
    }

    // The outbox agrees: the alerts the receivers got, each once, delivered.
    let mut outbox: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in rows(&db, "select sink, id, status, delivered_by from alerts") {
        assert_eq!(row[2], "delivered", "alert {row:?}");
        assert!(
            ["a", "b", "c"].contains(&row[3].as_str()),
            "alert {row:?} delivered by no daemon of the cluster"
        );
        outbox
            .entry(row[0].clone())
            .or_default()
            .insert(row[1].clone());
    }
    assert_eq!(outbox, delivered, "the alerts table and the receivers");
    assert_eq!(
        number(&db, "select count(*) from alerts") as usize,
        expected1.len() + expected2.len()
    );
    // One story per story, whichever daemons stored its copies.
    for (story, ids) in &stories {
        assert_eq!(ids.len(), 1, "story {story} was stored as {ids:?}");
    }
    assert_eq!(stories.len(), 2 + FEEDS, "{stories:?}");
    let alerted = psql(
        &db.url,
        "select array_to_string(array(select unnest(alerted) order by 1), ',') \
         from stories s join items i on i.story = s.id \
         where i.id like '%/strike/copy-0'",
    );
    assert_eq!(alerted, "ferry,harbour", "the wire story's alerted topics");

    cluster.stop();
}

/// A daemon paused in the middle of a poll (held by the server, then SIGSTOP) past its
/// lease: another daemon polls the feed meanwhile and stores what it now holds; the
/// paused daemon, resumed, stores and sends nothing of what it had fetched and says so.
///
/// What it fetched is an item the feed has dropped since, so that only the lease keeps
/// it out of the store: an item the new owner had stored too would be skipped as seen.
///
/// Checked to fail: with `check_lease` and the leased `put_feed_state` granting every
/// write (their queries without the epoch, owner and expiry conditions), the resumed
/// daemon stores the old item and alerts it; with `claim_feed` ignoring live leases,
/// another daemon polls the feed while the first is paused, before its lease ran out.
#[test]
fn a_daemon_paused_past_its_lease_stores_and_sends_nothing() {
    let db = pg::database();
    let old = Entry {
        title: "Harbour crane collapses in storm".into(),
        link: "https://example.org/cluster/0/crane".into(),
        text: "A crane at the container harbour collapsed in the storm on Sunday night, \
               damaging two ships; nobody was hurt, the port said."
            .into(),
    };
    let new = Entry {
        title: "Harbour reopens after storm".into(),
        link: "https://example.org/cluster/0/reopens".into(),
        text: "The container harbour reopened on Tuesday after inspectors cleared the \
               quays damaged in the weekend storm, the port authority said."
            .into(),
    };
    let feeds = Feeds::generated(1, 0);
    feeds.set(0, vec![old.clone()]);
    let fetches = Fetches::default();
    let gate = Gate::new();
    let held = gate.clone();
    // The first fetch is held, whichever daemon made it.
    let server = serve(&feeds, &fetches, move |_, hit, reply| {
        if hit == 1 {
            reply.held_by(&held)
        } else {
            reply
        }
    });
    let hook = Receiver::start("127.0.0.1:0".parse().unwrap(), Mode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        db: &db,
        feeds: vec![server.feed_url(0)],
        lease: LEASE,
        per_host: 2,
        hooks: vec![("hook", hook.url())],
        topics: vec![("harbour", "harbour", vec!["hook"])],
    };
    let began = Instant::now();
    let mut cluster = Cluster::new();
    for node in ["a", "b", "c"] {
        cluster.spawn(dir.path(), &setup, node);
    }
    assert!(
        wait_until(START, || !fetches.all().is_empty()),
        "no daemon polled the feed:\n{}",
        cluster.logs()
    );
    let first = fetches.all()[0].clone();
    let paused = first.node.clone();
    cluster.get(&paused).signal("STOP");
    // The feed moves on while the daemon is paused.
    feeds.set(0, vec![new.clone()]);

    // Another daemon takes the feed once the lease has run out, and stores what the
    // feed holds now; its alert goes out.
    let taken = wait_until(LEASE + SLACK, || {
        stored_by(&db).contains_key(&new.id()) && !hook.received().is_empty()
    });
    assert!(
        taken,
        "no other daemon stored and alerted the feed's new item {}: stored {:?}, {} alerts \
         received; fetches:\n{}\n{}",
        new.id(),
        stored_by(&db),
        hook.received().len(),
        fetches.describe(began),
        cluster.logs()
    );
    let owner = stored_by(&db)[&new.id()].clone();
    assert_ne!(owner, paused, "stored by the paused daemon");
    let second = fetches.all()[1].clone();
    assert!(
        second.at.duration_since(first.at) >= LEASE - Duration::from_millis(250),
        "the feed was taken over before the paused daemon's lease ran out:\n{}",
        fetches.describe(began)
    );

    // The paused daemon gets its reply and goes on.
    let daemon = cluster.get(&paused);
    let mark = daemon.log.mark();
    gate.open();
    daemon.signal("CONT");
    let refused =
        daemon
            .log
            .wait_after(mark, &["lease on it has expired or been taken over"], SLACK);
    // What it would store and send, it would store and send at once.
    std::thread::sleep(Duration::from_secs(2));

    let stored = stored_by(&db);
    assert_eq!(
        stored,
        BTreeMap::from([(new.id(), owner.clone())]),
        "only the new item, stored by {owner}; the paused daemon {paused} stored nothing"
    );
    assert_eq!(
        number(
            &db,
            &format!("select count(*) from items where stored_by = '{paused}'")
        ),
        0
    );
    let bodies = deliveries(&hook, "hook");
    let links: Vec<&str> = bodies
        .iter()
        .map(|b| b["item"]["url"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(links, [new.link.as_str()], "one alert, for the new item");
    assert_eq!(
        rows(&db, "select id, status from alerts"),
        [[bodies[0]["id"].as_str().unwrap_or_default(), "delivered"]],
        "the outbox holds the one alert, delivered"
    );
    assert_eq!(
        fetches.all().len(),
        2,
        "fetched once by each owner:\n{}",
        fetches.describe(began)
    );
    // Two leases: the paused daemon's and the new owner's.
    assert_eq!(epochs(&db, &setup), [2]);
    assert!(
        refused,
        "daemon {paused}, resumed, did not log the refused write; stderr:\n{}",
        daemon.log.text()
    );

    cluster.stop();
}
