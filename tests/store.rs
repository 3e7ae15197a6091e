//! The store on bad days: a full disk, a snapshot cut short, a damaged record.
//!
//! Each test builds a real store with the real binary, damages it the way a disk or a
//! crash would, and checks that the read commands still show what can be read, say
//! what they skipped, and never leave the store worse than they found it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::daemon::Daemon;
use crate::util::{default_config, newswatch, run, Run};

/// `newswatch ARGS` on the shipped config and sample feeds, storing in `data`.
fn shipped(data: &Path, args: &[&str]) -> Run {
    let mut cmd = newswatch();
    cmd.args(args)
        .arg("--config")
        .arg(default_config())
        .env("NEWSWATCH__STORAGE__PATH", data);
    run(&mut cmd)
}

/// The number in "N stored items could not be read", if the warning was printed.
fn skipped_in(stderr: &str) -> Option<usize> {
    let line = stderr
        .lines()
        .find(|l| l.contains("could not be read and"))?;
    let after = line.split("warning: ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

/// A tmpfs of a few MiB mounted on a temporary directory, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (and a message saying why the test is skipped) when mounting is not
    /// allowed here: it needs root, as in CI.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map(|out| out.status.success())
            .unwrap_or(false);
        if !mounted {
            eprintln!(
                "skipped: mounting a small tmpfs needs root (or mount is missing); \
                 this test runs in CI as root"
            );
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the filesystem with one file, to the last byte it takes.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = fs::File::create(&path).expect("create filler");
        let block = vec![0u8; 64 * 1024];
        // Bounded: a few MiB of tmpfs fill in well under 1,000 blocks of 64 KiB.
        for _ in 0..10_000 {
            if file.write_all(&block).is_err() {
                break;
            }
        }
        let byte = [0u8; 1];
        for _ in 0..64 * 1024 {
            if file.write_all(&byte).is_err() {
                break;
            }
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_read_on_a_full_disk_leaves_the_store_readable_once_space_is_back() {
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let data = disk.path().join("data");
    let first = shipped(&data, &["once"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before = shipped(&data, &["items", "--json", "--limit", "1000"]);
    assert_eq!(before.code, 0, "{}", before.stderr);
    assert!(!before.items.is_empty(), "the sample feeds stored nothing");
    // A second poll moves sled's log past its last snapshot, so the next open writes
    // a new snapshot: the write a full disk cuts short.
    let second = shipped(&data, &["once"]);
    assert_eq!(second.code, 0, "{}", second.stderr);

    let filler = disk.fill();
    let on_full = shipped(&data, &["items", "--json", "--limit", "1000"]);
    assert!(
        !on_full.stderr.contains("panicked"),
        "items panicked on a full disk: {}",
        on_full.stderr
    );
    fs::remove_file(filler).expect("remove filler");

    let after = shipped(&data, &["items", "--json", "--limit", "1000"]);
    assert_eq!(
        after.code, 0,
        "the store is unreadable after the disk was full: {}",
        after.stderr
    );
    let ids = |run: &Run| -> Vec<String> {
        run.items
            .iter()
            .map(|i| i["id"].as_str().expect("id").to_string())
            .collect()
    };
    assert_eq!(ids(&after), ids(&before), "items were lost");
    let again = shipped(&data, &["once"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
}

#[test]
fn a_snapshot_never_finished_does_not_make_the_store_unreadable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let first = shipped(&data, &["once"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    // What a crash or a full disk leaves while sled writes a snapshot: the file is
    // created, nothing is written to it, and it is never renamed.
    let partial = data.join("snap.00000000FFFFFFFF.generating");
    fs::write(&partial, b"").expect("plant a partial snapshot");

    let listed = shipped(&data, &["items", "--json", "--limit", "1000"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(!listed.items.is_empty());
    assert!(!partial.exists(), "the partial snapshot was left behind");
    let again = shipped(&data, &["once"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
}

/// Local RSS feeds of `items` items each, every description ~1 KB with a marker that
/// names its item, so a test can find an item's bytes in the store file.
fn write_feeds(dir: &Path, feeds: usize, items: usize) -> Vec<String> {
    let filler = "Negotiators met again on Tuesday to discuss the harbour, the grain \
                  corridor and the exchange of prisoners, officials said. ";
    let mut urls = Vec::new();
    for f in 0..feeds {
        let mut xml = String::from(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Local</title>",
        );
        for i in 0..items {
            xml.push_str(&format!(
                "<item><guid>local-{f}-{i}</guid><title>Report {f}-{i} on the harbour talks</title>\
                 <link>https://example.org/{f}/{i}</link>\
                 <description>&lt;p&gt;{} marker-{f}-{i}-end&lt;/p&gt;</description></item>",
                filler.repeat(7)
            ));
        }
        xml.push_str("</channel></rss>");
        let path = dir.join(format!("feed-{f}.xml"));
        fs::write(&path, xml).expect("write feed");
        urls.push(format!("file:{}", path.display()));
    }
    urls
}

/// 4 feeds of 150 items polled once into `dir/data`: the config and what `once` said.
fn polled_store(dir: &Path) -> (PathBuf, Run) {
    let urls = write_feeds(dir, 4, 150);
    let config = crate::util::feeds_config(dir, &urls);
    let polled = run(newswatch().arg("once").arg("--config").arg(&config));
    assert_eq!(polled.code, 0, "{}", polled.stderr);
    (config, polled)
}

/// `newswatch items --json` with no limit to speak of.
fn all_items(config: &Path) -> Run {
    run(newswatch()
        .args(["items", "--json", "--limit", "100000", "--config"])
        .arg(config))
}

#[test]
fn a_damaged_record_is_skipped_and_counted_and_the_rest_are_listed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (config, _) = polled_store(dir.path());
    let list = || all_items(&config);
    let before = list();
    assert_eq!(before.code, 0, "{}", before.stderr);
    let total = before.items.len();
    assert_eq!(total, 600);

    // Cut the records holding three items short, as a write torn by a crash in an
    // older build or a bit flipped before sled's checksum was taken would leave them.
    // (Zeroing sled's own pages instead is not a fair test of newswatch: sled's
    // recovery may hang or refuse the file, depending on where the zeroes fall.) A
    // record holds the new items of one feed poll, so each takes its neighbours along.
    let damaged = ["Report 0-20 ", "Report 1-75 ", "Report 3-140 "];
    let ids: Vec<&str> = before
        .items
        .iter()
        .filter(|item| {
            let title = item["title"].as_str().unwrap_or("");
            damaged.iter().any(|d| title.starts_with(d))
        })
        .map(|item| item["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), damaged.len(), "{:?}", before.items.first());
    {
        let db = sled::open(dir.path().join("data")).expect("open the store with sled");
        let items = db.open_tree("items").expect("items tree");
        let seen = db.open_tree("seen").expect("seen tree");
        let mut records = std::collections::BTreeSet::new();
        for id in &ids {
            // `seen` leads from an item's id to the key of its record.
            let key = seen.get(id).expect("read seen").expect("the item is seen");
            records.insert(key.to_vec());
        }
        assert_eq!(records.len(), damaged.len(), "one record a feed");
        for key in &records {
            let value = items.get(key).expect("read a record").expect("a record");
            items
                .insert(key.as_slice(), &value[..value.len() / 2])
                .expect("cut a record short");
        }
        db.flush().expect("flush");
    }

    let after = list();
    assert_eq!(
        after.code, 0,
        "one damaged page hid the whole store: {}",
        after.stderr
    );
    let skipped = skipped_in(&after.stderr).unwrap_or_else(|| {
        panic!(
            "no warning about skipped records on stderr: {}",
            after.stderr
        )
    });
    assert!(
        skipped >= damaged.len(),
        "{skipped} skipped: {}",
        after.stderr
    );
    // A record holds at most the 150 items of one feed's poll.
    assert!(
        skipped <= damaged.len() * 150,
        "{skipped} skipped: {}",
        after.stderr
    );
    for id in &ids {
        assert!(
            after.items.iter().all(|item| item["id"] != *id),
            "damaged item {id} listed"
        );
    }
    for item in &after.items {
        assert!(before.items.contains(item), "{item} was not stored");
    }
    assert!(
        after
            .stderr
            .contains(&dir.path().join("data").display().to_string()),
        "the warning does not name the store: {}",
        after.stderr
    );
    assert_eq!(
        after.items.len() + skipped,
        total,
        "listed and skipped items do not add up to what was stored"
    );
}

#[test]
fn a_store_whose_log_lost_flushed_items_says_so_instead_of_showing_fewer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (config, polled) = polled_store(dir.path());
    let items = || all_items(&config);
    assert!(polled.stdout.contains("600 new items"), "{}", polled.stdout);

    // Zero 4 KiB in the middle of sled's log, as a failing sector would. sled reads
    // its log up to the damage and drops the rest without a word: shown as it comes
    // back, the store would list fewer items and exit 0. (Right after `once` the
    // middle of the log holds live pages; after a clean reopen sled has written a
    // snapshot, and damage there may cost nothing.)
    let db = dir.path().join("data/db");
    let mut bytes = fs::read(&db).expect("read db");
    let page = bytes.len() / 2 / 4096 * 4096;
    bytes[page..page + 4096].fill(0);
    fs::write(&db, &bytes).expect("write db");

    let store = dir.path().join("data").display().to_string();
    for command in ["items", "alerts", "once"] {
        let out = run(newswatch().arg(command).arg("--config").arg(&config));
        assert_ne!(
            out.code,
            0,
            "{command} showed a store that lost items as if whole: {} items; {}",
            out.items.len(),
            out.stderr
        );
        assert_ne!(out.code, 101, "{command} crashed: {}", out.stderr);
        assert!(
            out.stderr
                .contains("has lost items: 600 had been written and flushed")
                && out.stderr.contains(&store),
            "{command} did not say what was lost and where: {}",
            out.stderr
        );
    }

    // The user may choose to go on with what is left.
    fs::remove_file(dir.path().join("data/newswatch-flushed")).expect("remove the record");
    let after = items();
    assert_eq!(after.code, 0, "{}", after.stderr);
    assert!(after.items.len() < 600);
}

#[test]
fn a_damaged_snapshot_is_set_aside_and_the_store_rebuilt_from_its_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (config, _) = polled_store(dir.path());
    let items = || all_items(&config);
    // Opening and closing the store again leaves a snapshot of sled's page table.
    assert_eq!(items().items.len(), 600);
    let data = dir.path().join("data");
    let snapshot = fs::read_dir(&data)
        .expect("read the store dir")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snap.") && !n.ends_with(".generating"))
        })
        .expect("a snapshot after a clean close");

    // Flip bytes in its middle, as a bad sector would: its checksum fails, and sled
    // alone refuses the whole store although every page is still in the log.
    let mut bytes = fs::read(&snapshot).expect("read the snapshot");
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 16] {
        *b ^= 0xff;
    }
    fs::write(&snapshot, &bytes).expect("write the snapshot");

    let after = items();
    assert_eq!(after.code, 0, "{}", after.stderr);
    assert_eq!(after.items.len(), 600, "{}", after.stderr);
    assert!(
        after.stderr.contains("snapshot was damaged; set it aside"),
        "{}",
        after.stderr
    );
    let name = snapshot.file_name().expect("name").to_string_lossy();
    assert!(
        data.join(format!("damaged-{name}")).is_file(),
        "the damaged snapshot was not kept for a look"
    );
}

#[test]
fn store_check_and_backup_find_damage_and_copy_every_item() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (config, _) = polled_store(dir.path());
    let store_cmd = |args: &[&str]| {
        run(newswatch()
            .arg("store")
            .args(args)
            .arg("--config")
            .arg(&config))
    };
    let ids = |data: &Path| -> Vec<String> {
        let out = run(newswatch()
            .args(["items", "--json", "--limit", "100000", "--config"])
            .arg(&config)
            .env("NEWSWATCH__STORAGE__PATH", data));
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.items
            .iter()
            .map(|i| i["id"].as_str().expect("id").to_string())
            .collect()
    };

    let clean = store_cmd(&["check"]);
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
    assert!(clean
        .stdout
        .contains("every record decodes and every index agrees"));

    let copy = dir.path().join("copy");
    let backup = store_cmd(&["backup", copy.to_str().expect("utf-8 path")]);
    assert_eq!(backup.code, 0, "{}{}", backup.stdout, backup.stderr);
    let original = ids(&dir.path().join("data"));
    assert_eq!(original.len(), 600);
    assert_eq!(
        ids(&copy),
        original,
        "the copy does not list the same items"
    );
    let again = store_cmd(&["backup", copy.to_str().expect("utf-8 path")]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("exists and is not empty"),
        "{}",
        again.stderr
    );

    // Damage: two records cut short and one index entry gone.
    {
        let db = sled::open(dir.path().join("data")).expect("open the store with sled");
        let items = db.open_tree("items").expect("items tree");
        for entry in items.iter().take(2) {
            let (key, value) = entry.expect("read an item");
            items
                .insert(&key, &value[..value.len() / 2])
                .expect("cut a record short");
        }
        let by_time = db.open_tree("by_time").expect("by_time tree");
        let (last, _) = by_time.last().expect("read").expect("an entry");
        by_time.remove(last).expect("remove an index entry");
        db.flush().expect("flush");
    }
    let damaged = store_cmd(&["check"]);
    assert_eq!(damaged.code, 1, "{}{}", damaged.stdout, damaged.stderr);
    for finding in [
        "2 × item record that does not decode",
        "1 × item without its by_time entry",
        "1 × kept item count differs from the items there are",
    ] {
        assert!(
            damaged.stdout.contains(finding),
            "{finding:?} not in {}",
            damaged.stdout
        );
    }
    assert!(
        damaged.stderr.contains("has 4 problems"),
        "{}",
        damaged.stderr
    );
}

/// Feeds of distinct stories, every item on the `harbour` topic: `feeds` × `items`.
fn write_story_feeds(dir: &Path, feeds: usize, items: usize) -> PathBuf {
    let words = [
        "grain",
        "corridor",
        "prisoners",
        "ministry",
        "border",
        "villages",
        "drones",
        "power",
        "grid",
        "envoy",
        "summit",
        "convoy",
        "ferry",
        "tariff",
        "reactor",
        "bridge",
        "monitor",
        "mayor",
        "court",
        "budget",
        "railway",
        "pipeline",
        "harvest",
        "vaccine",
    ];
    // A fixed xorshift, so the corpus is the same on every run.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut config = format!(
        "[storage]\npath = {:?}\n[poller]\ninterval = \"1h\"\nconcurrency = 4\nper_host = 4\n",
        dir.join("data")
    );
    for f in 0..feeds {
        let mut xml = String::from(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Local</title>",
        );
        for i in 0..items {
            let text: Vec<&str> = (0..60)
                .map(|_| words[(next() % words.len() as u64) as usize])
                .collect();
            xml.push_str(&format!(
                "<item><guid>s-{f}-{i}</guid><title>Harbour report {f}-{i}</title>\
                 <link>https://example.org/s/{f}/{i}</link>\
                 <description>The harbour {}.</description></item>",
                text.join(" ")
            ));
        }
        xml.push_str("</channel></rss>");
        let path = dir.join(format!("story-feed-{f}.xml"));
        fs::write(&path, xml).expect("write feed");
        config.push_str(&format!("[[feeds]]\nurl = \"file:{}\"\n", path.display()));
    }
    config.push_str(
        "[[entities]]\nid = \"putin\"\nkind = \"person\"\nname = \"Vladimir Putin\"\n\
         [[sinks]]\nid = \"log\"\nkind = \"log\"\n\
         [[topics]]\nid = \"harbour\"\nquery = \"harbour\"\nsinks = [\"log\"]\n",
    );
    let path = dir.join("stories.toml");
    fs::write(&path, config).expect("write config");
    path
}

/// `once` killed with SIGKILL at points spread over its run, each on a fresh store,
/// then run again to the end: every item is stored once, the store checks clean, and
/// every story on the topic has exactly one alert for its topic and sink.
#[test]
fn once_killed_at_any_point_loses_nothing_and_alerts_each_story_once() {
    use std::collections::{HashMap, HashSet};
    use std::time::Instant;

    let dir = tempfile::tempdir().expect("temp dir");
    let (feeds, per_feed) = (20, 50);
    let config = write_story_feeds(dir.path(), feeds, per_feed);
    let with_store = |data: &Path, args: &[&str]| {
        let mut cmd = newswatch();
        cmd.args(args)
            .arg("--config")
            .arg(&config)
            .env("NEWSWATCH__STORAGE__PATH", data);
        cmd
    };

    // How long a whole run takes here.
    let started = Instant::now();
    let full = run(&mut with_store(&dir.path().join("timing"), &["once"]));
    assert_eq!(full.code, 0, "{}", full.stderr);
    let whole = started.elapsed();

    let points = 8u32;
    let mut killed_running = 0;
    for point in 1..=points {
        let data = dir.path().join(format!("store-{point}"));
        let mut once = Daemon::spawn(&mut with_store(&data, &["once"]));
        // Points over the first 80% of a run: later ones may find it done.
        std::thread::sleep(whole * point * 4 / (5 * (points + 1)));
        if once.exited().is_none() {
            killed_running += 1;
        }
        once.kill();

        let again = run(&mut with_store(&data, &["once"]));
        assert_eq!(again.code, 0, "point {point}: {}", again.stderr);
        let items = run(&mut with_store(
            &data,
            &["items", "--json", "--limit", "100000"],
        ));
        assert_eq!(items.code, 0, "point {point}: {}", items.stderr);
        let ids: HashSet<&str> = items
            .items
            .iter()
            .map(|i| i["id"].as_str().expect("id"))
            .collect();
        assert_eq!(
            ids.len(),
            items.items.len(),
            "point {point}: an item stored twice"
        );
        assert_eq!(
            ids.len(),
            feeds * per_feed,
            "point {point}: items were lost"
        );

        let check = run(&mut with_store(&data, &["store", "check"]));
        assert_eq!(
            check.code, 0,
            "point {point}: {}{}",
            check.stdout, check.stderr
        );

        let story_of: HashMap<&str, &str> = items
            .items
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().expect("id"),
                    i["story"].as_str().expect("story"),
                )
            })
            .collect();
        let alerts = run(&mut with_store(
            &data,
            &["alerts", "--json", "--limit", "100000"],
        ));
        assert_eq!(alerts.code, 0, "point {point}: {}", alerts.stderr);
        let mut per_story: HashMap<(&str, String, String), usize> = HashMap::new();
        for alert in &alerts.items {
            let item = alert["item"].as_str().expect("item");
            let story = story_of.get(item).expect("an alert's item is stored");
            *per_story
                .entry((story, alert["topic"].to_string(), alert["sink"].to_string()))
                .or_default() += 1;
        }
        let stories: HashSet<&str> = story_of.values().copied().collect();
        assert_eq!(
            per_story.len(),
            stories.len(),
            "point {point}: a story on the topic has no alert"
        );
        assert!(
            per_story.values().all(|&n| n == 1),
            "point {point}: a story alerted twice: {:?}",
            per_story
                .iter()
                .filter(|(_, &n)| n > 1)
                .take(3)
                .collect::<Vec<_>>()
        );
    }
    // Timing on a shared machine varies; most kills must still land mid-run, or the
    // test would prove nothing.
    assert!(
        killed_running >= points / 2,
        "only {killed_running} of {points} runs were still running when killed"
    );
}
