//! Tests of the sled store, on real sled directories in temporary directories.

use super::*;

/// Opens a store, waiting (up to 5 s) while a store this test dropped still
/// holds the directory: sled lets go of its lock only when its background
/// threads, shared by every test in this process, have finished with it.
fn reopen(path: &Path) -> SledStore {
    open_when_free(path).unwrap()
}

/// [`SledStore::open`], waiting as [`reopen`] does, for opens that must fail.
fn open_when_free(path: &Path) -> Result<SledStore, StoreError> {
    for _ in 0..100 {
        match SledStore::open(path) {
            Err(StoreError::Locked { .. }) => std::thread::sleep(Duration::from_millis(50)),
            other => return other,
        }
    }
    SledStore::open(path)
}
use crate::model::payload::Payload;
use chrono::TimeZone;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn t(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, day, hour, 0, 0).unwrap()
}

fn item(id: &str, fetched: DateTime<Utc>, topics: &[&str]) -> StoredItem {
    StoredItem {
        id: id.to_string(),
        feed: "https://example.org/world/rss.xml".into(),
        feed_name: "Example World".into(),
        title: format!("Title of {id}"),
        url: Some(format!("https://example.org/{id}")),
        published: Some(fetched - chrono::Duration::minutes(5)),
        fetched,
        text: format!("Body of {id}."),
        entities: vec![StoredEntity {
            id: "putin".into(),
            mentions: 2,
        }],
        topics: topics
            .iter()
            .map(|topic| StoredTopic {
                id: topic.to_string(),
                score: 2.5,
                matched: vec!["ceasefire".into()],
            })
            .collect(),
        story: id.to_string(),
        is_story_lead: true,
        fingerprint: 0xfeed,
    }
}

fn copy_of(lead: &StoredItem, id: &str, fetched: DateTime<Utc>) -> StoredItem {
    StoredItem {
        story: lead.story.clone(),
        is_story_lead: false,
        feed: "https://example.net/wire/atom.xml".into(),
        ..item(id, fetched, &[])
    }
}

fn ids(items: &[StoredItem]) -> Vec<&str> {
    items.iter().map(|i| i.id.as_str()).collect()
}

fn query(topic: Option<&str>, since: Option<DateTime<Utc>>, limit: usize) -> ItemQuery {
    ItemQuery {
        topic: topic.map(str::to_string),
        since,
        limit,
    }
}

#[test]
fn story_sketches_are_stored_with_their_leads_and_pruned_after_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let now = t(20, 12);
    let lead = item("a", now - chrono::Duration::days(3), &[]);
    let copy = copy_of(&lead, "b", now - chrono::Duration::days(3));
    let mut other = item("c", lead.fetched, &[]);
    other.fingerprint = 0xbeef;
    let wordless = item("d", now, &[]);
    let sketches: [(&str, &[u32]); 4] = [
        ("a", &[1, 2, 3]),
        ("b", &[9]), // not a lead: not stored
        ("c", &[4, 5]),
        ("d", &[]), // empty: not stored
    ];
    {
        let store = reopen(dir.path());
        let batch = [lead.clone(), copy, other.clone(), wordless.clone()];
        assert_eq!(store.insert_batch(&batch, &[], &sketches).unwrap().new, 4);
        // Stored again: the items are seen, nothing changes.
        let changed = [(sketches[0].0, &[7u32][..])];
        assert_eq!(store.insert_batch(&batch, &[], &changed).unwrap().new, 0);
    }
    let store = reopen(dir.path());
    // Found by first-seen time and fingerprint, each under its own.
    assert_eq!(
        store.story_sketches(lead.fetched, 0xfeed).unwrap(),
        [("a".to_string(), vec![1, 2, 3])]
    );
    assert_eq!(
        store.story_sketches(lead.fetched, 0xbeef).unwrap(),
        [("c".to_string(), vec![4, 5])]
    );
    assert!(store
        .story_sketches(lead.fetched + chrono::Duration::milliseconds(1), 0xfeed)
        .unwrap()
        .is_empty());
    // The window is rebuilt from the sketches: every story with one, oldest first,
    // stories of one item ("c") included.
    let since = now - chrono::Duration::days(4);
    let window: Vec<(String, u64, Vec<u32>)> = store
        .sketches_since(since)
        .map(|lead| lead.map(|l| (l.story, l.fingerprint, l.sketch)))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        window,
        // First seen in the same millisecond: in the order stored.
        [
            ("a".to_string(), 0xfeed, vec![1, 2, 3]),
            ("c".to_string(), 0xbeef, vec![4, 5])
        ]
    );
    // The poll's two sketches are one record.
    assert_eq!(store.lead_sketches.len(), 1);
    // Only "a" has a copy, and so a record.
    let recorded: Vec<StoredStory> = store
        .stories_since(since)
        .collect::<Result<_, _>>()
        .unwrap();
    let ids: Vec<&str> = recorded.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["a"]);
    let recent = [
        recorded[0].clone(),
        store.get_story("c").unwrap().unwrap(),
        store.get_story("d").unwrap().unwrap(),
    ];
    assert_eq!(store.story_sketch(&recent[0]).unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(store.story_sketch(&recent[1]).unwrap(), Some(vec![4, 5]));
    assert_eq!(store.story_sketch(&recent[2]).unwrap(), None);
    // A story stored without a sketch gets one.
    store.put_story_sketch(&recent[2], &[6, 7]).unwrap();
    assert_eq!(store.story_sketch(&recent[2]).unwrap(), Some(vec![6, 7]));
    // Sketches go after the history period, the stories after the retention.
    store.prune(now, 2 * DAY, 20 * DAY, 100).unwrap();
    assert!(store.story_sketch(&recent[0]).unwrap().is_none());
    assert!(store
        .story_sketches(lead.fetched, 0xbeef)
        .unwrap()
        .is_empty());
    assert_eq!(store.story_sketch(&recent[2]).unwrap(), Some(vec![6, 7]));
    assert!(store.get_story("a").unwrap().is_some());
    // A corrupt sketch is skipped, never a panic: a record of schema 5 cut short...
    let (key, value) = store.lead_sketches.last().unwrap().unwrap();
    store
        .lead_sketches
        .insert(&key, &value[..value.len() - 3])
        .unwrap();
    assert_eq!(store.story_sketch(&recent[2]).unwrap(), None);
    assert!(store.story_sketches(now, 0xfeed).unwrap().is_empty());
    assert_eq!(store.sketches_since(since).count(), 0);
    assert_eq!(
        store.check().unwrap().problems["sketch record that does not decode"].0,
        1
    );
    // ...and a sketch of a key of its own (schema 4) whose length is not whole values.
    store
        .story_sketches
        .insert(sketch_key(now, 0xfeed, "d"), &[1u8, 2, 3][..])
        .unwrap();
    assert_eq!(store.story_sketch(&recent[2]).unwrap(), None);
    assert!(store.story_sketches(now, 0xfeed).unwrap().is_empty());
}

/// A store of schema 4 kept a sketch a key; opened by this build, those are found and
/// the window is rebuilt from them and the new records together, in time order.
#[test]
fn sketches_a_key_each_are_read_beside_the_records_of_a_poll() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let (early, middle, late) = (t(18, 9), t(18, 10), t(18, 11));
    for (at, story, fingerprint, sketch) in [
        (early, "old-early", 0x1u64, vec![1u32, 2]),
        (late, "old-late", 0x3, vec![5, 6]),
    ] {
        store
            .story_sketches
            .insert(sketch_key(at, fingerprint, story), encode_sketch(&sketch))
            .unwrap();
    }
    store
        .put_sketches(&[LeadSketch {
            story: "new-middle".into(),
            first_seen: middle,
            fingerprint: 0x2,
            sketch: vec![3, 4],
        }])
        .unwrap();
    let window: Vec<(String, Vec<u32>)> = store
        .sketches_since(t(18, 0))
        .map(|lead| lead.map(|l| (l.story, l.sketch)))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        window,
        [
            ("old-early".to_string(), vec![1, 2]),
            ("new-middle".to_string(), vec![3, 4]),
            ("old-late".to_string(), vec![5, 6]),
        ]
    );
    assert_eq!(
        store.story_sketches(late, 0x3).unwrap(),
        [("old-late".to_string(), vec![5, 6])]
    );
    assert_eq!(
        store.story_sketches(middle, 0x2).unwrap(),
        [("new-middle".to_string(), vec![3, 4])]
    );
    assert!(store.story_sketches(middle, 0x3).unwrap().is_empty());
    // Both kinds go after the history period.
    let report = store.prune(t(21, 0), 2 * DAY, 2 * DAY, 100).unwrap();
    assert!(report.done);
    assert_eq!(store.sketches_since(t(1, 0)).count(), 0);
    assert!(store.check().unwrap().is_clean());
}

#[test]
fn a_partial_snapshot_is_left_alone_while_another_handle_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let held = reopen(dir.path());
    // The holder may be writing this very file: removing it would break its
    // rename. sled's lock is an flock, which a second open in the same process
    // meets as another process would.
    let partial = dir.path().join("snap.00000000FFFFFFFF.generating");
    std::fs::write(&partial, b"").unwrap();
    assert!(matches!(
        SledStore::open(dir.path()),
        Err(StoreError::Locked { .. })
    ));
    assert!(
        partial.exists(),
        "removed a snapshot the holder may be writing"
    );
    drop(held);
    let store = reopen(dir.path());
    assert!(!partial.exists(), "a free store kept its partial snapshot");
    drop(store);
}

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let lead = item("a", t(10, 9), &["ceasefire-talks"]);
    let state = FeedState {
        etag: Some("\"v1\"".into()),
        failures: 2,
        ..FeedState::default()
    };
    {
        let store = reopen(dir.path());
        assert_eq!(
            store
                .insert_items(&[lead.clone(), copy_of(&lead, "b", t(10, 10))])
                .unwrap(),
            2
        );
        store
            .put_feed_state("https://example.org/world/rss.xml", &state)
            .unwrap();
        // A clone shares the handles; dropping both closes the directory.
        let clone = store.clone();
        drop(store);
        drop(clone);
    }
    let store = reopen(dir.path());
    assert_eq!(store.get_item("a").unwrap(), Some(lead));
    assert!(store.seen("a").unwrap() && store.seen("b").unwrap());
    assert!(!store.seen("c").unwrap());
    assert_eq!(store.get_story("a").unwrap().unwrap().related.len(), 1);
    assert_eq!(
        store
            .feed_state("https://example.org/world/rss.xml")
            .unwrap(),
        Some(state)
    );
    assert_eq!(
        ids(&store
            .items(&query(Some("ceasefire-talks"), None, 10))
            .unwrap()),
        ["a"]
    );
    assert_eq!(
        store.counts(),
        StoreCounts {
            items: 2,
            feeds: 1,
            stories: 1
        }
    );
}

#[test]
fn schema_version_mismatch_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = reopen(dir.path());
        // A fresh directory gets the current version written.
        let version = store.meta.get(SCHEMA_KEY).unwrap().unwrap();
        assert_eq!(version.as_ref(), SCHEMA_VERSION.to_be_bytes());
        store
            .meta
            .insert(SCHEMA_KEY, &9u32.to_be_bytes()[..])
            .unwrap();
    }
    let err = open_when_free(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Schema {
                found: 9,
                supported: SCHEMA_VERSION
            }
        ),
        "{err:?}"
    );
    assert_eq!(
            err.to_string(),
            format!(
                "store schema version 9 is not supported by this build (it reads version {SCHEMA_VERSION})"
            )
        );
    {
        let db = sled::open(dir.path()).unwrap();
        db.open_tree(META)
            .unwrap()
            .insert(SCHEMA_KEY, b"x".as_slice())
            .unwrap();
    }
    let err = open_when_free(dir.path()).unwrap_err();
    assert!(
        err.to_string().contains("tree meta at key schema_version"),
        "{err}"
    );
}

/// Rewrites every record of several items (schema 4) as records of one item each,
/// with the index entries schemas 2 and 3 kept for them.
fn as_schema_3(store: &SledStore) {
    let records: Vec<_> = store.items.iter().map(Result::unwrap).collect();
    for (key, value) in records {
        if !is_batch_key(&key) {
            continue;
        }
        let (at, _) = split_time_key(&key).unwrap();
        for item in codec::decode_items(&value).unwrap() {
            let id = item.id.as_bytes();
            let flag: &[u8] = if item.topics.is_empty() { &[] } else { &[1] };
            store
                .items
                .insert(time_key(at, id), encode(ITEMS, &item.id, &item).unwrap())
                .unwrap();
            store.by_time.insert(time_key(at, id), flag).unwrap();
            store.seen.insert(id, &at.to_be_bytes()[..]).unwrap();
            store.seen_by_time.insert(time_key(at, id), EMPTY).unwrap();
        }
        store.items.remove(&key).unwrap();
        store.by_time.remove(&key).unwrap();
        store.seen_by_time.remove(&key).unwrap();
    }
}

/// Puts every `step`th item back under its bare id, as schema 1 kept them.
fn key_items_by_id(store: &SledStore, step: usize) {
    let records: Vec<_> = store.items.iter().map(Result::unwrap).collect();
    for (key, value) in records.into_iter().step_by(step) {
        let (_, id) = split_time_key(&key).unwrap();
        store.items.insert(id, value).unwrap();
        store.items.remove(key).unwrap();
    }
}

/// A schema-1 store (items keyed by id) is moved to time keys when opened, in
/// batches, and reads as before.
#[test]
fn a_schema_1_store_is_moved_to_time_keys_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let count = 250; // more than one batch
    {
        let store = reopen(dir.path());
        let items: Vec<StoredItem> = (0..count)
            .map(|i| {
                let topics: &[&str] = if i == 7 { &["ceasefire-talks"] } else { &[] };
                item(
                    &format!("i{i}"),
                    t(10, 0) + chrono::Duration::seconds(i as i64),
                    topics,
                )
            })
            .collect();
        store.insert_items(&items).unwrap();
        as_schema_3(&store);
        key_items_by_id(&store, 1);
        // A record nothing says the time of.
        store.items.insert("lost", b"{not json".as_slice()).unwrap();
        store
            .meta
            .insert(SCHEMA_KEY, &1u32.to_be_bytes()[..])
            .unwrap();
        assert!(store.get_item("i7").unwrap().is_none());
    }
    let store = reopen(dir.path());
    assert_eq!(
        store.meta.get(SCHEMA_KEY).unwrap().unwrap().as_ref(),
        SCHEMA_VERSION.to_be_bytes()
    );
    assert_eq!(store.counts().items, count);
    let i7 = store.get_item("i7").unwrap().expect("moved");
    assert_eq!(i7.title, "Title of i7");
    assert_eq!(
        ids(&store
            .items(&query(Some("ceasefire-talks"), None, 10))
            .unwrap()),
        ["i7"]
    );
    assert_eq!(
        ids(&store.items(&query(None, None, 2)).unwrap()),
        [format!("i{}", count - 1), format!("i{}", count - 2)]
    );
    // Opened again: nothing left to move.
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(store.counts().items, count);
}

/// A move cut short (some items under time keys, some under ids, the interim
/// version written) goes on at the next open; an older build refuses the store
/// meanwhile, since it reads only version 1.
#[test]
fn a_move_to_schema_2_cut_short_goes_on_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = reopen(dir.path());
        let items: Vec<StoredItem> = (0..6)
            .map(|i| item(&format!("i{i}"), t(10, i), &[]))
            .collect();
        store.insert_items(&items).unwrap();
        as_schema_3(&store);
        key_items_by_id(&store, 2);
        store
            .meta
            .insert(SCHEMA_KEY, &SCHEMA_MOVING_1_TO_2.to_be_bytes()[..])
            .unwrap();
    }
    let store = reopen(dir.path());
    for i in 0..6 {
        assert!(store.get_item(&format!("i{i}")).unwrap().is_some(), "i{i}");
    }
    assert_eq!(store.counts().items, 6);
    // A seen entry that is not a time is an error naming it, not a missing item.
    store.seen.insert("i3", b"soon".as_slice()).unwrap();
    let err = store.get_item("i3").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("corrupt record in tree seen at key i3: "),
        "{err}"
    );
}

#[test]
fn a_store_held_by_another_opener_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let _held = SledStore::open(&path).unwrap();
    let err = SledStore::open(&path).expect_err("the second open must fail");
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("in use by another newswatch process"),
        "{message}"
    );
}

#[test]
fn an_unopenable_path_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = SledStore::open(&file).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        message.starts_with(&format!("opening the store at {}: ", file.display())),
        "{message}"
    );
}

#[test]
fn inserting_a_batch_twice_stores_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let lead = item("a", t(10, 9), &["ceasefire-talks"]);
    let batch = vec![
        lead.clone(),
        copy_of(&lead, "b", t(10, 9)),
        item("c", t(10, 9), &[]),
        // The same id twice within a batch counts once.
        item("c", t(10, 9), &[]),
    ];
    assert_eq!(store.insert_items(&batch).unwrap(), 3);
    assert_eq!(store.insert_items(&batch).unwrap(), 0);
    assert_eq!(store.items(&query(None, None, 100)).unwrap().len(), 3);
    assert_eq!(store.get_story("a").unwrap().unwrap().related.len(), 1);
    assert_eq!(
        store
            .items(&query(Some("ceasefire-talks"), None, 100))
            .unwrap()
            .len(),
        1
    );
    // "a" has a copy, so a record of its own; "c" is a story of one item, which
    // has none and is told by its lead.
    let recorded: Vec<String> = store
        .recent_stories(t(1, 0))
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(recorded, ["a"]);
    let c = store.get_story("c").unwrap().unwrap();
    assert_eq!((c.first_item.as_str(), c.related.len()), ("c", 0));
    assert_eq!(store.get_story("b").unwrap(), None, "a copy leads no story");
    assert_eq!(store.insert_items(&[]).unwrap(), 0);
}

#[test]
fn story_lead_and_related_copies() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let lead = item("wire-1", t(14, 11), &["ceasefire-talks"]);
    store.insert_items(std::slice::from_ref(&lead)).unwrap();
    let story = store.get_story("wire-1").unwrap().unwrap();
    assert_eq!(story.first_item, "wire-1");
    assert_eq!(story.first_seen, t(14, 11));
    assert_eq!(story.fingerprint, 0xfeed);
    assert!(story.related.is_empty());

    store
        .insert_items(&[copy_of(&lead, "outlet-1", t(14, 12))])
        .unwrap();
    let story = store.get_story("wire-1").unwrap().unwrap();
    assert_eq!(
        story.related,
        [Related {
            item_id: "outlet-1".into(),
            feed: "https://example.net/wire/atom.xml".into(),
            url: Some("https://example.org/outlet-1".into()),
            title: "Title of outlet-1".into(),
        }]
    );
    let stored = store.get_item("outlet-1").unwrap().unwrap();
    assert!(!stored.is_story_lead);
    assert_eq!(stored.story, "wire-1");

    // Within one batch a copy may come before its lead: the lead still leads.
    let lead2 = item("wire-2", t(14, 13), &[]);
    let early_copy = copy_of(&lead2, "outlet-2", t(14, 13));
    store.insert_items(&[early_copy, lead2]).unwrap();
    let story = store.get_story("wire-2").unwrap().unwrap();
    assert_eq!(story.first_item, "wire-2");
    assert_eq!(ids_of(&story), ["outlet-2"]);

    // A copy of a story that is not stored starts it.
    let orphan = StoredItem {
        story: "gone".into(),
        ..copy_of(&lead, "outlet-3", t(14, 14))
    };
    store.insert_items(&[orphan]).unwrap();
    assert_eq!(
        store.get_story("gone").unwrap().unwrap().first_item,
        "outlet-3"
    );

    let recent: Vec<String> = store
        .recent_stories(t(14, 12))
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(recent, ["wire-2", "gone"], "since honoured, oldest first");
}

fn ids_of(story: &StoredStory) -> Vec<&str> {
    story.related.iter().map(|r| r.item_id.as_str()).collect()
}

#[test]
fn items_by_topic_since_and_limit_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    store
        .insert_items(&[
            item("d1", t(1, 0), &["ceasefire-talks"]),
            item("d3", t(3, 0), &["ceasefire-talks", "energy"]),
            item("d2", t(2, 0), &[]),
            item("d4", t(4, 0), &["energy"]),
        ])
        .unwrap();
    store
        .insert_items(&[item("d5", t(5, 0), &["ceasefire-talks"])])
        .unwrap();
    let list =
        |topic, since, limit| ids(&store.items(&query(topic, since, limit)).unwrap()).join(" ");
    assert_eq!(list(None, None, 10), "d5 d4 d3 d2 d1");
    assert_eq!(list(None, None, 2), "d5 d4");
    assert_eq!(list(None, Some(t(3, 0)), 10), "d5 d4 d3");
    assert_eq!(list(None, None, 0), "");
    assert_eq!(list(Some("ceasefire-talks"), None, 10), "d5 d3 d1");
    assert_eq!(list(Some("ceasefire-talks"), Some(t(2, 0)), 10), "d5 d3");
    assert_eq!(list(Some("ceasefire-talks"), None, 1), "d5");
    assert_eq!(list(Some("energy"), None, 10), "d4 d3");
    // A topic id that is a prefix of another is its own topic.
    assert_eq!(list(Some("energ"), None, 10), "");
    assert_eq!(list(Some("unknown"), None, 10), "");
}

#[test]
fn prune_keeps_topic_matched_items_for_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let now = t(31, 0);
    store
        .insert_items(&[
            item("old-plain", now - chrono::Duration::days(10), &[]),
            item(
                "old-matched",
                now - chrono::Duration::days(10),
                &["ceasefire-talks"],
            ),
            item(
                "ancient-matched",
                now - chrono::Duration::days(25),
                &["ceasefire-talks"],
            ),
            item("new-plain", now - chrono::Duration::days(1), &[]),
        ])
        .unwrap();
    let report = store.prune(now, 7 * DAY, 20 * DAY, 100).unwrap();
    assert_eq!(
        report,
        PruneReport {
            items: 2,
            seen: 1,
            // Stories of one item have no record: they go with their leads.
            stories: 0,
            // ancient-matched, then old-plain and old-matched.
            scanned: 3,
            done: true
        }
    );
    assert_eq!(
        ids(&store.items(&query(None, None, 10)).unwrap()),
        ["new-plain", "old-matched"]
    );
    assert_eq!(
        ids(&store
            .items(&query(Some("ceasefire-talks"), None, 10))
            .unwrap()),
        ["old-matched"]
    );
    assert!(store.get_item("old-plain").unwrap().is_none());
    // The pruned plain item's id is still seen until the retention passes.
    assert!(store.seen("old-plain").unwrap());
    assert!(!store.seen("ancient-matched").unwrap());
    assert!(store.get_story("ancient-matched").unwrap().is_none());
    assert!(store.get_story("old-plain").unwrap().is_none());
    assert!(store.get_story("old-matched").unwrap().is_some());
    // Nothing is left to do, and a second pass changes nothing; nor does it read
    // the kept old-matched again.
    let again = store.prune(now, 7 * DAY, 20 * DAY, 100).unwrap();
    assert_eq!(
        again,
        PruneReport {
            done: true,
            ..PruneReport::default()
        }
    );
    // Re-inserting a pruned but still seen item stores nothing.
    assert_eq!(
        store.insert_items(&[item("old-plain", now, &[])]).unwrap(),
        0
    );
}

#[test]
fn prune_is_bounded_by_max() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let now = t(31, 0);
    // Five stories of two items each, so that each has a record to prune.
    let mut old: Vec<StoredItem> = Vec::new();
    for i in 0..10 {
        let fetched = now - chrono::Duration::days(30) + chrono::Duration::minutes(i);
        let id = format!("i{i}");
        old.push(match old.last() {
            Some(lead) if i % 2 == 1 => copy_of(lead, &id, fetched),
            _ => item(&id, fetched, &[]),
        });
    }
    store.insert_items(&old).unwrap();
    assert_eq!(store.counts().stories, 5);
    let mut passes = 0;
    let mut removed = 0;
    loop {
        let report = store.prune(now, DAY, 2 * DAY, 4).unwrap();
        assert!(
            report.items + report.seen + report.stories <= 4,
            "{report:?}"
        );
        removed += report.items + report.seen + report.stories;
        passes += 1;
        if report.done {
            break;
        }
        assert!(passes < 20, "pruning never finishes");
    }
    assert_eq!(removed, 25, "10 items, 10 seen ids, 5 stories");
    assert_eq!(store.counts().stories, 0);
    assert_eq!(store.counts().items, 0);
    // Oldest first: the first pass took the four oldest items.
    let store2 = {
        let dir2 = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir2.path()).unwrap();
        s.insert_items(&old).unwrap();
        s.prune(now, DAY, 2 * DAY, 4).unwrap();
        (
            ids(&s.items(&query(None, None, 100)).unwrap()).join(" "),
            dir2,
        )
    };
    assert_eq!(store2.0, "i9 i8 i7 i6 i5 i4");
}

/// Plain items among items on a topic, pruned in passes cut short by `max`:
/// every plain one goes, every matched one stays until the retention, and once
/// done, a pass reads none of the kept ones again.
#[test]
fn prune_passes_go_on_where_the_last_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let now = t(31, 0);
    let items: Vec<StoredItem> = (0..12)
        .map(|i| {
            let topics: &[&str] = if i % 3 == 0 {
                &[]
            } else {
                &["ceasefire-talks"]
            };
            let at = now - chrono::Duration::days(5) + chrono::Duration::minutes(i);
            item(&format!("i{i}"), at, topics)
        })
        .collect();
    store.insert_items(&items).unwrap();
    let mut scanned = 0;
    for pass in 1.. {
        let report = store.prune(now, DAY, 10 * DAY, 2).unwrap();
        assert!(report.items <= 2, "{report:?}");
        scanned += report.scanned;
        if report.done {
            break;
        }
        assert!(pass < 10, "pruning never finishes");
    }
    assert_eq!(
        ids(&store.items(&query(None, None, 100)).unwrap()).join(" "),
        "i11 i10 i8 i7 i5 i4 i2 i1"
    );
    // Each kept item was read at most twice (again where a pass stopped), not
    // once a pass.
    assert!(scanned <= 12 + 4, "{scanned} entries read");
    let again = store.prune(now, DAY, 10 * DAY, 2).unwrap();
    assert_eq!((again.items, again.scanned, again.done), (0, 0, true));
    // Past the retention the kept ones go too.
    let later = now + chrono::Duration::days(6);
    let report = store.prune(later, DAY, 10 * DAY, 100).unwrap();
    assert_eq!((report.items, report.done), (8, true));
    assert_eq!(store.counts().items, 0);
}

#[test]
fn corrupt_records_are_errors_or_skipped_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    store
        .insert_items(&[
            item("good", t(10, 0), &["ceasefire-talks"]),
            item("bad", t(11, 0), &["ceasefire-talks"]),
        ])
        .unwrap();
    // The record holding "bad" (its own: it was fetched at another time).
    let bad_key = seen_record(&store.seen.get("bad").unwrap().unwrap())
        .unwrap()
        .to_vec();
    store
        .items
        .insert(bad_key.as_slice(), b"{not json".as_slice())
        .unwrap();
    store.stories.insert("bad", b"\xff\xfe".as_slice()).unwrap();
    store
        .stories_by_time
        .insert(time_key(millis(t(11, 0)), b"bad"), b"".as_slice())
        .unwrap();
    store
        .feeds
        .insert(
            "https://broken.example/feed",
            br#"{"failures":"many"}"#.as_slice(),
        )
        .unwrap();
    store
        .put_feed_state("https://ok.example/feed", &FeedState::default())
        .unwrap();
    // Garbage in an index.
    store
        .by_time
        .insert(b"\x00\x00\x00".as_slice(), b"".as_slice())
        .unwrap();

    let err = store.get_item("bad").unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { tree: "items", ref key, .. } if key.ends_with(" (item bad)")),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "corrupt record in tree items at key {} (item bad): ",
            show_key(&bad_key)
        )),
        "{err}"
    );
    let err = store.get_story("bad").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("corrupt record in tree stories at key bad: "),
        "{err}"
    );
    let err = store.feed_state("https://broken.example/feed").unwrap_err();
    assert!(
        err.to_string()
            .contains("tree feeds at key https://broken.example/feed"),
        "{err}"
    );

    // Listings skip what they cannot read.
    assert_eq!(ids(&store.items(&query(None, None, 10)).unwrap()), ["good"]);
    assert_eq!(
        ids(&store
            .items(&query(Some("ceasefire-talks"), None, 10))
            .unwrap()),
        ["good"]
    );
    let states = store.feed_states().unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].0, "https://ok.example/feed");
    // "good" is a story of one item (no record); "bad"'s record does not decode.
    assert!(store.recent_stories(t(1, 0)).unwrap().is_empty());
    assert_eq!(store.get_story("good").unwrap().unwrap().first_item, "good");

    // A copy of a story whose lead's record is corrupt gets a fresh, readable story
    // record, led by the lead its `seen` entry names.
    let copy = StoredItem {
        story: "bad".into(),
        is_story_lead: false,
        ..item("copy", t(12, 0), &[])
    };
    assert_eq!(store.insert_items(&[copy]).unwrap(), 1);
    let story = store.get_story("bad").unwrap().unwrap();
    assert_eq!(story.first_item, "bad");
    assert_eq!(ids_of(&story), ["copy"]);

    // Pruning removes corrupt records like any other.
    let report = store.prune(t(31, 0), DAY, DAY, 100).unwrap();
    assert!(report.done);
    assert_eq!(store.counts().items, 0);
    assert!(store.by_time.is_empty());
    assert!(store.topic_index.iter().all(|e| {
        let (key, _) = e.unwrap();
        !key.ends_with(b"good")
    }));
}

#[test]
fn feed_state_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let url = "https://example.org/world/rss.xml";
    assert_eq!(store.feed_state(url).unwrap(), None);
    let state = FeedState {
        etag: Some("W/\"abc\"".into()),
        last_modified: Some("Tue, 18 Mar 2025 21:05:00 GMT".into()),
        last_attempt: Some(t(18, 21)),
        last_success: Some(t(18, 21)),
        failures: 0,
        next_poll: Some(t(18, 22)),
        last_error: None,
        permanent_url: Some("https://example.org/rss".into()),
        repairs: 3,
        items_total: 42,
        last_status: Some(200),
        failing_since: None,
        last_new_item: Some(t(18, 20)),
        usual_gap_secs: Some(3600),
        items_digest: Some(u64::MAX),
        health: FeedHealth::Moved,
    };
    store.put_feed_state(url, &state).unwrap();
    assert_eq!(store.feed_state(url).unwrap().as_ref(), Some(&state));
    let updated = FeedState {
        failures: 1,
        last_error: Some("timed out".into()),
        ..state
    };
    store.put_feed_state(url, &updated).unwrap();
    assert_eq!(store.feed_states().unwrap(), [(url.to_string(), updated)]);
    // Fields added later default when older records lack them.
    store
        .feeds
        .insert("https://old.example/feed", br#"{"etag":"x"}"#.as_slice())
        .unwrap();
    assert_eq!(
        store
            .feed_state("https://old.example/feed")
            .unwrap()
            .unwrap()
            .etag
            .as_deref(),
        Some("x")
    );
}

/// Feed states written before the health fields (postcard under the `PLAIN` tag, or
/// JSON) still read; a feed an older build disabled on a 410 reads as gone and is
/// due again.
#[test]
fn feed_states_of_the_layout_before_health_read_with_a_410_as_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let old = records::FeedStateV1 {
        etag: Some("\"v1\"".into()),
        last_attempt: Some(t(18, 21)),
        failures: 1,
        next_poll: None,
        last_error: Some("the feed is gone".into()),
        disabled: Some("410 Gone".into()),
        items_total: 9,
        ..records::FeedStateV1::default()
    };
    let plain = codec::encode("feeds", "k", &old, false).unwrap();
    store
        .feeds
        .insert("https://gone.example/rss", plain)
        .unwrap();
    let read = store
        .feed_state("https://gone.example/rss")
        .unwrap()
        .unwrap();
    assert_eq!(read.etag.as_deref(), Some("\"v1\""));
    assert_eq!(read.items_total, 9);
    assert_eq!(read.last_status, Some(410));
    assert_eq!(read.health, FeedHealth::Gone);
    assert_eq!(read.failing_since, Some(t(18, 21)));
    let fine = records::FeedStateV1 {
        etag: Some("e".into()),
        next_poll: Some(t(18, 22)),
        ..records::FeedStateV1::default()
    };
    store
        .feeds
        .insert(
            "https://fine.example/rss",
            serde_json::to_vec(&fine).unwrap(),
        )
        .unwrap();
    let listed: HashMap<String, FeedState> = store.feed_states().unwrap().into_iter().collect();
    assert_eq!(listed.len(), 2);
    let fine = &listed["https://fine.example/rss"];
    assert_eq!(
        (fine.health, fine.next_poll),
        (FeedHealth::Ok, Some(t(18, 22)))
    );
    // Written again, a state takes the current form and keeps its health fields.
    let mut state = read;
    state.usual_gap_secs = Some(60);
    store
        .put_feed_state("https://gone.example/rss", &state)
        .unwrap();
    assert_eq!(
        store.feed_state("https://gone.example/rss").unwrap(),
        Some(state)
    );
}

#[tokio::test]
async fn flush_then_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    store.insert_items(&[item("a", t(10, 0), &[])]).unwrap();
    store.flush().await.unwrap();
    assert_eq!(
        store.counts(),
        StoreCounts {
            items: 1,
            feeds: 0,
            // A story of one item has no record.
            stories: 0
        }
    );
}

/// Number of alerts of each status: (pending, delivered, failed).
fn alert_counts(store: &SledStore) -> (usize, usize, usize) {
    let mut counts = (0, 0, 0);
    for alert in store.alerts(None, usize::MAX).unwrap() {
        match alert.status {
            AlertStatus::Pending => counts.0 += 1,
            AlertStatus::Delivered => counts.1 += 1,
            AlertStatus::Failed => counts.2 += 1,
        }
    }
    counts
}

fn alert(item: &StoredItem, topic: &str, sink: &str, now: DateTime<Utc>) -> StoredAlert {
    use crate::model::payload::*;
    let id = format!("a-{}-{topic}-{sink}", item.story);
    StoredAlert {
        id: id.clone(),
        sink: sink.into(),
        topic: topic.into(),
        item_id: item.id.clone(),
        story: item.story.clone(),
        created: now,
        status: AlertStatus::Pending,
        attempts: 0,
        next_attempt: now,
        last_error: None,
        delivered_at: None,
        payload: Payload::Alert(AlertPayload {
            kind: ALERT_TYPE.into(),
            version: ALERT_VERSION,
            event: "story.new".into(),
            id,
            topic: TopicRef {
                id: topic.into(),
                name: topic.into(),
            },
            item: ItemRef {
                id: item.id.clone(),
                feed: item.feed_name.clone(),
                title: item.title.clone(),
                url: item.url.clone(),
                published: item.published,
                summary: item.text.clone(),
            },
            entities: vec![],
            matched: vec!["ceasefire".into()],
            score: 2.5,
            story: StoryRef {
                id: item.story.clone(),
                related: vec![],
            },
            detected_at: now,
        }),
    }
}

#[test]
fn alerts_are_written_once_per_story_topic_and_sink() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let now = t(10, 12);
    let lead = item("lead", now, &["talks"]);
    let copy = StoredItem {
        topics: lead.topics.clone(),
        ..copy_of(&lead, "copy", now)
    };
    let alerts = vec![
        alert(&lead, "talks", "hook", now),
        alert(&lead, "talks", "log", now),
        alert(&copy, "talks", "hook", now),
    ];
    // The copy's alert has the lead's id (same story, topic, sink) in real use;
    // here it differs, and still must not be written: the story already alerted.
    let new = store
        .insert_items_with_alerts(&[lead.clone(), copy.clone()], &alerts)
        .unwrap();
    assert_eq!(new, 2);
    let all = store.alerts(None, 100).unwrap();
    let mut ids: Vec<&str> = all.iter().map(|a| a.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["a-lead-talks-hook", "a-lead-talks-log"]);
    assert_eq!(store.get_story("lead").unwrap().unwrap().alerted, ["talks"]);
    // Storing the batch again writes nothing.
    store
        .insert_items_with_alerts(&[lead, copy], &alerts)
        .unwrap();
    assert_eq!(store.alerts(None, 100).unwrap().len(), 2);
}

#[test]
fn delivery_states_move_through_the_due_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let now = t(10, 12);
    let lead = item("lead", now, &["talks"]);
    let a = alert(&lead, "talks", "hook", now);
    store
        .insert_items_with_alerts(&[lead], std::slice::from_ref(&a))
        .unwrap();
    assert_eq!(store.due_alerts("hook", now, 10).unwrap().len(), 1);
    assert!(store.due_alerts("other", now, 10).unwrap().is_empty());
    assert_eq!(store.next_due("hook").unwrap(), Some(now));

    let later = now + chrono::Duration::minutes(5);
    store
        .record_attempt(
            &a.id,
            &Attempt::Retry {
                next: later,
                error: "503".into(),
            },
        )
        .unwrap();
    assert!(
        store.due_alerts("hook", now, 10).unwrap().is_empty(),
        "not due yet"
    );
    assert_eq!(store.next_due("hook").unwrap(), Some(later));
    let due = store.due_alerts("hook", later, 10).unwrap();
    assert_eq!((due.len(), due[0].attempts), (1, 1));

    store
        .record_attempt(
            &a.id,
            &Attempt::Failed {
                error: "400 Bad Request".into(),
            },
        )
        .unwrap();
    assert!(store.due_alerts("hook", later, 10).unwrap().is_empty());
    assert_eq!(store.next_due("hook").unwrap(), None);
    assert_eq!(
        store.alerts(Some(AlertStatus::Failed), 10).unwrap().len(),
        1
    );
    assert_eq!(alert_counts(&store), (0, 0, 1));

    assert!(store.retry_alert(&a.id, later).unwrap());
    assert!(
        !store.retry_alert(&a.id, later).unwrap(),
        "only failed alerts are retried"
    );
    let due = store.due_alerts("hook", later, 10).unwrap();
    assert_eq!((due.len(), due[0].attempts), (1, 0));
    store
        .record_attempt(&a.id, &Attempt::Delivered { at: later })
        .unwrap();
    assert_eq!(alert_counts(&store), (0, 1, 0));
    assert!(store.due_alerts("hook", later, 10).unwrap().is_empty());
}

#[test]
fn the_item_count_follows_inserts_and_prunes_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let now = t(10, 12);
    {
        let store = reopen(dir.path());
        let batch = [
            item("a", now, &[]),
            item("b", now, &["talks"]),
            item("c", now, &[]),
        ];
        store.insert_items(&batch).unwrap();
        store.insert_items(&batch).unwrap();
        assert_eq!(store.item_count(), 3, "a batch stored twice counts once");
        let later = now + chrono::Duration::days(8);
        let report = store
            .prune(
                later,
                Duration::from_secs(7 * 86400),
                Duration::from_secs(90 * 86400),
                100,
            )
            .unwrap();
        assert_eq!(report.items, 2, "the two items without a topic expire");
        assert_eq!(store.item_count(), 1);
        assert_eq!(store.item_count(), store.counts().items);
    }
    let store = reopen(dir.path());
    assert_eq!(store.item_count(), 1);
    assert_eq!(
        read_u64(store.meta.get(STORED_KEY).unwrap().as_deref()),
        1,
        "the count is kept in the store"
    );

    // A store of an older build, without the count: counted once, then kept.
    store.meta.remove(STORED_KEY).unwrap();
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(store.item_count(), 1);
    assert_eq!(read_u64(store.meta.get(STORED_KEY).unwrap().as_deref()), 1);
    // Opening reads the count; it does not walk the items to recount them.
    store
        .meta
        .insert(STORED_KEY, &7u64.to_be_bytes()[..])
        .unwrap();
    drop(store);
    assert_eq!(reopen(dir.path()).item_count(), 7);
}

/// Rewrites every record of `tree` as JSON, the form schema 2 wrote.
fn rewrite_as_json<T: Serialize + DeserializeOwned>(tree: &sled::Tree) -> usize {
    let records: Vec<_> = tree.iter().map(Result::unwrap).collect();
    for (key, value) in &records {
        let record: T = codec::decode(value).unwrap();
        tree.insert(key, serde_json::to_vec(&record).unwrap())
            .unwrap();
    }
    records.len()
}

/// A schema-2 store, every record JSON and of one item, opens as schema 4 and reads
/// as before; records written after that are compact, a record per feed poll.
#[test]
fn a_schema_2_store_of_json_records_reads_as_before_and_new_records_are_compact() {
    let dir = tempfile::tempdir().unwrap();
    let now = t(10, 12);
    let lead = item("lead", now, &["talks"]);
    let copy = copy_of(&lead, "copy", t(10, 13));
    let pending = alert(&lead, "talks", "hook", now);
    let state = FeedState {
        etag: Some("\"v7\"".into()),
        items_total: 2,
        ..FeedState::default()
    };
    let story;
    {
        let store = reopen(dir.path());
        store
            .insert_items_with_alerts(
                &[lead.clone(), copy.clone()],
                std::slice::from_ref(&pending),
            )
            .unwrap();
        store
            .put_feed_state("https://example.org/rss", &state)
            .unwrap();
        story = store.get_story("lead").unwrap().unwrap();
        as_schema_3(&store);
        assert_eq!(rewrite_as_json::<StoredItem>(&store.items), 2);
        assert_eq!(rewrite_as_json::<StoredStory>(&store.stories), 1);
        assert_eq!(rewrite_as_json::<FeedState>(&store.feeds), 1);
        // Schema 2's alerts carried the body of a new story's alert alone, without
        // `event`: written so here, they read as `story.new`.
        for (key, value) in store.outbox.iter().map(Result::unwrap) {
            let alert = codec::decode_alert(&value).unwrap();
            let mut json = serde_json::to_value(&alert).unwrap();
            let mut body = json["payload"]["Alert"].take();
            body.as_object_mut().unwrap().remove("event");
            json["payload"] = body;
            store
                .outbox
                .insert(key, serde_json::to_vec(&json).unwrap())
                .unwrap();
        }
        store
            .meta
            .insert(SCHEMA_KEY, &2u32.to_be_bytes()[..])
            .unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(
        store.meta.get(SCHEMA_KEY).unwrap().unwrap().as_ref(),
        SCHEMA_VERSION.to_be_bytes()
    );
    assert_eq!(store.get_item("lead").unwrap(), Some(lead.clone()));
    assert_eq!(store.get_item("copy").unwrap(), Some(copy));
    assert_eq!(store.get_story("lead").unwrap(), Some(story));
    assert_eq!(
        store.feed_state("https://example.org/rss").unwrap(),
        Some(state)
    );
    assert_eq!(store.get_alert(&pending.id).unwrap(), Some(pending));
    assert_eq!(store.items(&query(None, None, 10)).unwrap().skipped, 0);

    let later = item("later", t(11, 0), &[]);
    let json_size = serde_json::to_vec(&later).unwrap().len();
    store.insert_items(std::slice::from_ref(&later)).unwrap();
    let record = store
        .seen
        .get("later")
        .unwrap()
        .expect("the new item is seen");
    let record = seen_record(&record).expect("new items go to records of schema 4 on");
    let value = store
        .items
        .get(record)
        .unwrap()
        .expect("the new item is stored");
    assert_ne!(value[0], b'{', "a new record was written as JSON");
    assert!(
        value.len() < json_size,
        "{} bytes compact, {json_size} as JSON",
        value.len()
    );
    assert_eq!(store.get_item("later").unwrap(), Some(later));
}

/// The flushed count on file is what a flush made durable; items written after
/// it (not flushed by hand) never make a store look damaged, a larger count does.
#[tokio::test]
async fn a_store_with_fewer_items_than_were_flushed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(FLUSHED_FILE);
    {
        let store = reopen(dir.path());
        store
            .insert_items(&[item("a", t(10, 0), &[]), item("b", t(10, 1), &[])])
            .unwrap();
        store.flush().await.unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), "2");
        // A flush with nothing new written (a burst of 304s) leaves the file be.
        std::fs::remove_file(&file).unwrap();
        store.flush().await.unwrap();
        assert!(!file.exists(), "the file was written again for nothing");
        store.insert_items(&[item("c", t(10, 2), &[])]).unwrap();
        // Stored again: not counted twice.
        store.insert_items(&[item("c", t(10, 2), &[])]).unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(store.written().unwrap(), 3);
    drop(store);

    std::fs::write(&file, "99\n").unwrap();
    match SledStore::open(dir.path()) {
        Err(StoreError::Lost {
            flushed: 99,
            recovered: 3,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // A file cut short by a crash is no evidence either way.
    std::fs::write(&file, "").unwrap();
    assert_eq!(reopen(dir.path()).get_item("c").unwrap().unwrap().id, "c");
}

/// Most stories are one item and never alert: they are not written as records (two
/// keys an item saved). A record appears when a copy joins, built from the lead, or
/// when the story alerts, and from then on the story behaves as before.
#[test]
fn a_story_of_one_item_has_a_record_only_once_a_copy_joins_or_it_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let now = t(10, 12);
    let quiet = item("quiet", now, &[]);
    let loud = item("loud", now, &["talks"]);
    {
        let store = reopen(dir.path());
        let alerts = [alert(&loud, "talks", "hook", now)];
        store
            .insert_items_with_alerts(&[quiet.clone(), loud.clone()], &alerts)
            .unwrap();
        let recorded: Vec<String> = store
            .stories
            .iter()
            .keys()
            .map(|k| String::from_utf8(k.unwrap().to_vec()).unwrap())
            .collect();
        assert_eq!(recorded, ["loud"], "only the story that alerted is written");
        assert_eq!(store.stories_by_time.len(), 1);
        assert_eq!(store.get_story("loud").unwrap().unwrap().alerted, ["talks"]);
        let told = store.get_story("quiet").unwrap().unwrap();
        assert_eq!(
            (told.first_item.as_str(), told.first_seen, told.fingerprint),
            ("quiet", now, quiet.fingerprint)
        );
        assert!(told.related.is_empty() && told.alerted.is_empty());
    }
    // Later batches, after a restart: a copy of each story.
    let store = reopen(dir.path());
    let later = now + chrono::Duration::minutes(30);
    let quiet_copy = copy_of(&quiet, "quiet-copy", later);
    let loud_copy = StoredItem {
        topics: loud.topics.clone(),
        ..copy_of(&loud, "loud-copy", later)
    };
    // An alert id of its own, so that only the story's record can hold it back.
    let again = StoredAlert {
        id: "another-id".into(),
        ..alert(&loud_copy, "talks", "hook", later)
    };
    store
        .insert_items_with_alerts(&[quiet_copy, loud_copy], &[again])
        .unwrap();
    assert_eq!(
        store.alerts(None, 10).unwrap().len(),
        1,
        "the story alerted once"
    );
    let story = store.get_story("quiet").unwrap().unwrap();
    assert_eq!(story.first_item, "quiet");
    assert_eq!(story.first_seen, now, "the lead's time, not the copy's");
    let related: Vec<&str> = story.related.iter().map(|r| r.item_id.as_str()).collect();
    assert_eq!(related, ["quiet-copy"]);
    assert_eq!(store.get_story("loud").unwrap().unwrap().related.len(), 1);
    let ids: Vec<String> = store
        .recent_stories(now)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"quiet".to_string()) && ids.contains(&"loud".to_string()));
}

/// The new items of one feed poll are one record (schema 4), those on a topic in a
/// record of their own, so that pruning drops the plain ones after the history and
/// keeps the others for the retention without rewriting anything. Seen ids follow
/// the retention, listed once per record.
#[test]
fn a_feed_poll_is_one_record_and_its_topic_items_another() {
    let dir = tempfile::tempdir().unwrap();
    let now = t(10, 12);
    let poll: Vec<StoredItem> = ["p1", "m1", "p2", "m2", "p3"]
        .iter()
        .map(|id| {
            let topics: &[&str] = if id.starts_with('m') { &["talks"] } else { &[] };
            item(id, now, topics)
        })
        .collect();
    let store = reopen(dir.path());
    assert_eq!(store.insert_items(&poll).unwrap(), 5);
    assert_eq!(
        store.items.len(),
        2,
        "one record of plain items, one of matched"
    );
    assert_eq!(store.by_time.len(), 2);
    assert_eq!(store.seen_by_time.len(), 2);
    assert_eq!(store.seen.len(), 5);
    assert_eq!(store.item_count(), 5);
    for item in &poll {
        assert_eq!(store.get_item(&item.id).unwrap().as_ref(), Some(item));
    }
    // Newest first; within a record by id, descending, as keys of one item sorted.
    let all = store.items(&query(None, None, 10)).unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(
        ids(&store.items(&query(Some("talks"), None, 10)).unwrap()),
        ["m2", "m1"]
    );
    assert_eq!(ids(&store.items(&query(None, None, 2)).unwrap()).len(), 2);
    assert!(
        store.check().unwrap().is_clean(),
        "{:?}",
        store.check().unwrap()
    );

    // Past the history: the plain record goes whole, the matched one stays.
    let later = now + chrono::Duration::days(8);
    let report = store.prune(later, 7 * DAY, 30 * DAY, 100).unwrap();
    assert_eq!((report.items, report.seen, report.done), (3, 0, true));
    assert_eq!(
        ids(&store.items(&query(None, None, 10)).unwrap()),
        ["m2", "m1"]
    );
    assert!(store.get_item("p1").unwrap().is_none());
    assert!(store.seen("p1").unwrap(), "seen until the retention");
    assert_eq!(store.item_count(), 2);
    assert!(
        store.check().unwrap().is_clean(),
        "{:?}",
        store.check().unwrap()
    );
    // Stored again while seen: nothing.
    assert_eq!(store.insert_items(&poll).unwrap(), 0);

    // Past the retention: everything, seen ids included.
    let much_later = now + chrono::Duration::days(31);
    let report = store.prune(much_later, 7 * DAY, 30 * DAY, 100).unwrap();
    assert_eq!((report.items, report.seen, report.done), (2, 5, true));
    assert!(store.seen.is_empty() && store.seen_by_time.is_empty());
    assert!(store.items.is_empty() && store.topic_index.is_empty());
    assert_eq!(store.item_count(), 0);
    // Once its id has expired, an item is stored again, in a record of its own.
    assert_eq!(store.insert_items(&poll[..1]).unwrap(), 1);
    assert_eq!(store.get_item("p1").unwrap().as_ref(), Some(&poll[0]));
}

/// A store with records of one item (schema 3) and of several (schema 4) side by
/// side lists, finds, checks and prunes both.
#[test]
fn records_of_schema_3_and_4_live_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let old: Vec<StoredItem> = (0..3)
        .map(|i| item(&format!("old{i}"), t(1, i), &["talks"]))
        .collect();
    store.insert_items(&old).unwrap();
    as_schema_3(&store);
    let new: Vec<StoredItem> = (0..3)
        .map(|i| item(&format!("new{i}"), t(2, 0), &["talks"]))
        .collect();
    store.insert_items(&new).unwrap();
    assert_eq!(store.items.len(), 4, "three old records, one new");
    assert_eq!(
        ids(&store.items(&query(Some("talks"), None, 10)).unwrap()),
        ["new2", "new1", "new0", "old2", "old1", "old0"]
    );
    assert_eq!(store.get_item("old1").unwrap().as_ref(), Some(&old[1]));
    assert!(
        store.check().unwrap().is_clean(),
        "{:?}",
        store.check().unwrap()
    );
    // Pruned in passes of at most 2 items: a record counts with all its items.
    let mut passes = Vec::new();
    loop {
        let report = store.prune(t(25, 0), DAY, 3 * DAY, 2).unwrap();
        passes.push((report.items, report.seen));
        if report.done {
            break;
        }
        assert!(passes.len() < 10, "{passes:?}");
    }
    let (items, seen) = passes
        .iter()
        .fold((0, 0), |(i, s), (pi, ps)| (i + pi, s + ps));
    assert_eq!((items, seen), (6, 6), "{passes:?}");
    assert!(store.items.is_empty() && store.seen.is_empty());
}

/// A backup taken while items are being written is of one moment: the copy's kept
/// count, records and indexes agree (without the write gate, trees copied one after
/// another while a writer works disagree: the count copied after the items counts
/// items the copy does not have).
#[test]
fn a_backup_while_items_are_written_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for round in 0..300i64 {
                let at = t(1, 0) + chrono::Duration::seconds(round);
                let batch: Vec<StoredItem> = (0..10)
                    .map(|i| {
                        item(
                            &format!("r{round}-{i}"),
                            at,
                            if i == 0 { &["talks"] } else { &[] },
                        )
                    })
                    .collect();
                store.insert_items(&batch).unwrap();
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    let copy_dir = tempfile::tempdir().unwrap();
    let (copied, copy) = store.backup(&copy_dir.path().join("copy")).unwrap();
    writer.join().unwrap();
    assert!(copied.entries > 0);
    let report = copy.check().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(copy.item_count() % 10, 0, "whole batches only");
    assert!(store.check().unwrap().is_clean());
}

/// A store that lost its kept count (or never had one) counts its items once at
/// open, as many as its records hold, not one a record.
#[test]
fn a_count_made_at_open_counts_the_items_of_every_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = reopen(dir.path());
        let poll: Vec<StoredItem> = (0..7)
            .map(|i| item(&format!("p{i}"), t(3, 0), &[]))
            .collect();
        store.insert_items(&poll).unwrap();
        assert_eq!(store.by_time.len(), 1);
        store.meta.remove(STORED_KEY).unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(store.item_count(), 7);
    assert_eq!(read_u64(store.meta.get(STORED_KEY).unwrap().as_deref()), 7);
}

/// A write that waits behind a backup, made from an async task, does not stall the
/// runtime: with one worker, another task still runs meanwhile.
#[test]
fn a_write_waiting_for_a_backup_leaves_the_runtime_running() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let (ran, other_ran) = std::sync::mpsc::channel();
    // On a thread of its own, so that a stalled runtime fails this test instead of
    // hanging it (tokio's timers stop with its only worker).
    let daemon = {
        let store = store.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .unwrap();
            let backup = store.hold_writes();
            runtime.block_on(async {
                let writer = {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store.put_feed_state("https://example.org/rss", &FeedState::default())
                    })
                };
                // The writer is on the only worker by now, waiting for the gate.
                std::thread::sleep(Duration::from_millis(100));
                assert!(!writer.is_finished());
                ran.send(tokio::spawn(async { "ran" }).await.unwrap())
                    .unwrap();
                drop(backup);
                writer.await.unwrap().unwrap();
            });
        })
    };
    let other = other_ran.recv_timeout(Duration::from_secs(10));
    assert_eq!(
        other,
        Ok("ran"),
        "a task waited for a write held by a backup"
    );
    daemon.join().unwrap();
    assert!(store
        .feed_state("https://example.org/rss")
        .unwrap()
        .is_some());
}

/// After a restart with the clock gone back, a new record may draw a key a stored one
/// holds: it is stored under a new key, and neither record's items are lost.
#[test]
fn a_record_key_met_again_takes_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let at = t(18, 21);
    store.batch_seq.store(7, Ordering::Relaxed);
    store
        .insert_batch(&[item("a", at, &[]), item("b", at, &[])], &[], &[])
        .unwrap();
    // The same millisecond and the same sequence number again.
    store.batch_seq.store(7, Ordering::Relaxed);
    let inserted = store
        .insert_batch(&[item("c", at, &[]), item("d", at, &[])], &[], &[])
        .unwrap();
    assert_eq!(inserted.new, 2);
    let mut listed = store.items(&query(None, None, 10)).unwrap();
    listed.records.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(ids(&listed.records), ["a", "b", "c", "d"]);
    for id in ["a", "b", "c", "d"] {
        assert_eq!(store.get_item(id).unwrap().unwrap().id, id);
    }
    // Four items in two records.
    assert_eq!(store.counts().items, 4);
    assert_eq!(store.item_count(), 4);
    assert_eq!(store.check().unwrap().problem_count(), 0);
}

/// A record pruned between a topic listing's index read and its record read is gone,
/// not damaged: its items are neither listed nor counted as skipped.
#[test]
fn a_topic_listing_does_not_count_a_pruned_record_as_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let (early, late) = (t(18, 20), t(18, 21));
    store
        .insert_batch(
            &[item("a", early, &["talks"]), item("b", early, &["talks"])],
            &[],
            &[],
        )
        .unwrap();
    store
        .insert_batch(&[item("c", late, &["talks"])], &[], &[])
        .unwrap();
    // What a prune leaves for an instant: the index and seen marks still name the
    // record, the record itself is gone.
    let seen = store.seen.get("a").unwrap().unwrap();
    store.items.remove(seen_record(&seen).unwrap()).unwrap();
    let listed = store.items(&query(Some("talks"), None, 10)).unwrap();
    assert_eq!(ids(&listed.records), ["c"]);
    assert_eq!(listed.skipped, 0);
}

/// A prune whose removal fails (a full disk) leaves its expired items for the next
/// pass: it does not remember them as looked at.
#[test]
fn a_failed_prune_leaves_its_items_for_the_next_pass() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let now = t(31, 0);
    store
        .insert_items(&[
            item("old-plain", now - chrono::Duration::days(10), &[]),
            item("new-plain", now - chrono::Duration::days(1), &[]),
        ])
        .unwrap();
    store.fail_item_removals(true);
    assert!(store.prune(now, 7 * DAY, 20 * DAY, 100).is_err());
    store.fail_item_removals(false);
    let report = store.prune(now, 7 * DAY, 20 * DAY, 100).unwrap();
    assert_eq!(report.items, 1);
    assert!(store.get_item("old-plain").unwrap().is_none());
    assert_eq!(
        ids(&store.items(&query(None, None, 10)).unwrap().records),
        ["new-plain"]
    );
}

/// A story id too long for a sketch record (a feed's absurd link) loses only its own
/// sketch: the other stories of the poll keep theirs, and nothing fails.
#[test]
fn a_story_id_too_long_for_a_sketch_record_costs_only_its_sketch() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let at = t(18, 21);
    let long = format!("u:https://example.org/{}", "a".repeat(70_000));
    let lead = |story: &str, fingerprint: u64| LeadSketch {
        story: story.to_string(),
        first_seen: at,
        fingerprint,
        sketch: vec![1, 2, 3],
    };
    store
        .put_sketches(&[lead(&long, 0x1), lead("short", 0x2)])
        .unwrap();
    assert!(store.story_sketches(at, 0x1).unwrap().is_empty());
    assert_eq!(
        store.story_sketches(at, 0x2).unwrap(),
        [("short".to_string(), vec![1, 2, 3])]
    );
    let story = StoredStory {
        id: long.clone(),
        first_item: long,
        first_seen: at,
        fingerprint: 0x1,
        related: Vec::new(),
        alerted: Vec::new(),
    };
    store.put_story_sketch(&story, &[4, 5]).unwrap();
    assert_eq!(store.story_sketch(&story).unwrap(), None);
    assert!(store.check().unwrap().is_clean());
}

/// A lead stored by schema 4 has a `seen` value without its fingerprint: the first
/// copy to join its story after the upgrade builds the story from the lead's record.
#[test]
fn a_copy_joins_a_lead_stored_by_schema_4() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let lead = item("lead", t(18, 20), &[]);
    store.insert_items(std::slice::from_ref(&lead)).unwrap();
    // What schema 4 wrote: the record's key alone.
    let seen = store.seen.get("lead").unwrap().unwrap();
    assert!(seen_lead(&seen).is_some());
    let record = seen_record(&seen).unwrap().to_vec();
    store.seen.insert("lead", record).unwrap();
    assert!(seen_lead(&store.seen.get("lead").unwrap().unwrap()).is_none());

    let copy = copy_of(&lead, "copy", t(18, 21));
    assert_eq!(store.insert_items(&[copy]).unwrap(), 1);
    let story = store.get_story("lead").unwrap().unwrap();
    assert_eq!(story.first_item, "lead");
    assert_eq!(story.first_seen, lead.fetched);
    assert_eq!(story.fingerprint, lead.fingerprint);
    assert_eq!(ids_of(&story), ["copy"]);
    assert_eq!(store.get_item("lead").unwrap().unwrap().id, "lead");

    // A lead of schema 5: the story comes from its `seen` value, to the nanosecond.
    let mut lead5 = item(
        "lead5",
        t(18, 22) + chrono::Duration::nanoseconds(123_456_789),
        &[],
    );
    lead5.fingerprint = 0xabcd;
    store.insert_items(std::slice::from_ref(&lead5)).unwrap();
    let copy5 = copy_of(&lead5, "copy5", t(18, 23));
    assert_eq!(store.insert_items(&[copy5]).unwrap(), 1);
    let story = store.get_story("lead5").unwrap().unwrap();
    assert_eq!(
        (
            story.first_item.as_str(),
            story.first_seen,
            story.fingerprint
        ),
        ("lead5", lead5.fetched, 0xabcd)
    );
    assert_eq!(ids_of(&story), ["copy5"]);
}

/// An alert update is three single-key writes, not a transaction: a crash after any
/// of them must leave a pending alert due exactly once (never lost, never listed
/// twice), a finished one not due at all, and no entry the check calls damage.
#[test]
fn an_alert_update_stopped_between_its_writes_is_due_once_or_not_at_all() {
    let now = t(10, 12);
    let later = now + chrono::Duration::minutes(5);
    let attempts = [
        Attempt::Retry {
            next: later,
            error: "503".into(),
        },
        Attempt::Delivered { at: later },
        Attempt::Failed {
            error: "400".into(),
        },
    ];
    for attempt in &attempts {
        for allowed in 0..=3 {
            let dir = tempfile::tempdir().unwrap();
            let store = reopen(dir.path());
            let lead = item("lead", now, &["talks"]);
            let a = alert(&lead, "talks", "hook", now);
            store
                .insert_items_with_alerts(&[lead], std::slice::from_ref(&a))
                .unwrap();
            store.allow_alert_writes(allowed);
            let stopped = store.record_attempt(&a.id, attempt).is_err();
            store.allow_alert_writes(usize::MAX);
            let case = format!("{attempt:?} stopped after {allowed} writes");
            assert_eq!(stopped, allowed < 3, "{case}");

            let record = store.get_alert(&a.id).unwrap().unwrap();
            let pending = record.status == AlertStatus::Pending;
            let far = now + chrono::Duration::days(1);
            let due = store.due_alerts("hook", far, 10).unwrap();
            assert_eq!(due.len(), usize::from(pending), "{case}");
            if pending {
                assert_eq!(due[0].next_attempt, record.next_attempt, "{case}");
                assert_eq!(
                    store.next_due("hook").unwrap(),
                    Some(record.next_attempt),
                    "{case}"
                );
            } else {
                assert_eq!(store.next_due("hook").unwrap(), None, "{case}");
            }
            // The stale entry went with the listing.
            assert_eq!(store.pending_alerts(), usize::from(pending), "{case}");
            assert!(store.check().unwrap().is_clean(), "{case}");
        }
    }
}

/// An alert written by a build before event types (postcard of the old layout, as
/// schemas 3 to 5 wrote it) reads as a `story.new` alert, is listed, due and sent as
/// before; written again (an attempt), it takes the new layout.
#[test]
fn an_alert_of_an_earlier_build_reads_as_a_new_story_alert() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let now = t(10, 12);
    let lead = item("lead", now, &["talks"]);
    let pending = alert(&lead, "talks", "hook", now);
    let Payload::Alert(body) = pending.payload.clone() else {
        unreachable!("a new story's alert")
    };
    let old = records::v1::StoredAlert {
        id: pending.id.clone(),
        sink: pending.sink.clone(),
        topic: pending.topic.clone(),
        item_id: pending.item_id.clone(),
        story: pending.story.clone(),
        created: pending.created,
        status: pending.status,
        attempts: 0,
        next_attempt: pending.next_attempt,
        last_error: None,
        delivered_at: None,
        payload: records::v1::Body {
            kind: body.kind,
            version: body.version,
            id: body.id,
            topic: body.topic,
            item: body.item,
            entities: body.entities,
            matched: body.matched,
            score: body.score,
            story: body.story,
            detected_at: body.detected_at,
        },
    };
    // The old form: postcard compressed under the tag of records with text.
    let record = codec::encode(ITEMS, &pending.id, &old, true).unwrap();
    store.outbox.insert(pending.id.as_bytes(), record).unwrap();
    store.outbox_due.insert(due_key(&pending), EMPTY).unwrap();
    assert_eq!(store.get_alert(&pending.id).unwrap(), Some(pending.clone()));
    assert_eq!(
        store.get_alert(&pending.id).unwrap().unwrap().event(),
        "story.new"
    );
    assert_eq!(
        store.due_alerts("hook", now, 10).unwrap(),
        std::slice::from_ref(&pending)
    );
    assert_eq!(store.alerts(None, 10).unwrap().skipped, 0);
    let sent = store
        .record_attempt(&pending.id, &Attempt::Delivered { at: now })
        .unwrap();
    assert_eq!(sent.status, AlertStatus::Delivered);
    assert_eq!(store.get_alert(&pending.id).unwrap(), Some(sent));
}

/// The events of `store` of one type, oldest first.
fn events_of(store: &SledStore, event: &str) -> Vec<StoredAlert> {
    let mut out: Vec<StoredAlert> = store
        .alerts(None, usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|a| a.event() == event)
        .collect();
    out.sort_by_key(|a| a.created);
    out
}

fn update_rule(grow_by: u32, interval: Duration) -> UpdateRule {
    UpdateRule {
        topic: "talks".into(),
        topic_name: "Talks".into(),
        sinks: vec!["hook".into()],
        grow_by,
        interval,
    }
}

/// Writes `items` as a feed poll does, with the update rules.
fn write(store: &SledStore, items: &[StoredItem], alerts: &[StoredAlert], rules: &[UpdateRule]) {
    store
        .write_batch(&Batch {
            items,
            alerts,
            sketches: &[],
            rules,
            changed: &[],
        })
        .unwrap();
}

/// A story that alerted and grows raises one `story.updated` per `grow_by` copies (and
/// none before the interval is over), with the copies that joined since; the same
/// copy stored again raises nothing, and a story that did not alert on the topic has
/// no steps.
#[test]
fn a_story_that_grows_raises_one_update_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let rules = [update_rule(2, Duration::from_secs(3600))];
    let lead = item("lead", t(1, 0), &["talks"]);
    write(
        &store,
        std::slice::from_ref(&lead),
        &[alert(&lead, "talks", "hook", t(1, 0))],
        &rules,
    );
    let copies: Vec<StoredItem> = (1..=5)
        .map(|i| copy_of(&lead, &format!("copy{i}"), t(1, i)))
        .collect();
    write(&store, &copies[..1], &[], &rules);
    assert!(
        events_of(&store, "story.updated").is_empty(),
        "one copy is not a step"
    );
    write(&store, &copies[1..2], &[], &rules);
    let updates = events_of(&store, "story.updated");
    assert_eq!(updates.len(), 1, "{updates:?}");
    let Payload::StoryUpdated(body) = &updates[0].payload else {
        panic!("{updates:?}")
    };
    assert_eq!((body.step, body.story.sources), (1, 3));
    assert_eq!(body.story.title, "Title of lead");
    assert_eq!(body.story.url.as_deref(), Some("https://example.org/lead"));
    let added: Vec<&str> = body.added.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(added, ["Title of copy1", "Title of copy2"]);
    assert_eq!(
        updates[0].id,
        crate::identity::event_id("story.updated", "lead", "talks", "hook", 1)
    );
    assert_eq!(store.due_alerts("hook", t(2, 0), 10).unwrap().len(), 2);
    // Stored again: seen, nothing new.
    write(&store, &copies[..2], &[], &rules);
    assert_eq!(events_of(&store, "story.updated").len(), 1);
    // Two more copies within the hour of the last step: the step waits for a copy
    // after the interval, and names all three.
    let soon: Vec<StoredItem> = [30, 40]
        .map(|m| {
            copy_of(
                &lead,
                &format!("soon{m}"),
                t(1, 2) + chrono::Duration::minutes(m),
            )
        })
        .into();
    write(&store, &soon, &[], &rules);
    assert_eq!(
        events_of(&store, "story.updated").len(),
        1,
        "within the interval"
    );
    write(&store, &copies[2..3], &[], &rules);
    let updates = events_of(&store, "story.updated");
    assert_eq!(updates.len(), 2, "{updates:?}");
    let Payload::StoryUpdated(second) = &updates[1].payload else {
        panic!("{updates:?}")
    };
    assert_eq!((second.step, second.story.sources), (2, 6));
    assert_eq!(second.added.len(), 3);
    assert_ne!(updates[1].id, updates[0].id);

    // Without rules (updates off), a story that grows raises nothing.
    let other = item("other", t(2, 0), &["talks"]);
    write(
        &store,
        std::slice::from_ref(&other),
        &[alert(&other, "talks", "hook", t(2, 0))],
        &[],
    );
    let others: Vec<StoredItem> = (1..=4)
        .map(|i| copy_of(&other, &format!("other{i}"), t(2, i)))
        .collect();
    write(&store, &others, &[], &[]);
    // A story that never alerted on the topic has no steps, rules or not.
    let quiet = item("quiet", t(3, 0), &[]);
    write(&store, std::slice::from_ref(&quiet), &[], &rules);
    let quiet_copies: Vec<StoredItem> = (1..=4)
        .map(|i| copy_of(&quiet, &format!("quiet{i}"), t(3, i)))
        .collect();
    write(&store, &quiet_copies, &[], &rules);
    let updates = events_of(&store, "story.updated");
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert!(updates.iter().all(|u| u.story == "lead"));
}

/// A step's state goes with its story when the story is pruned.
#[test]
fn story_steps_are_pruned_with_their_story() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let rules = [update_rule(1, Duration::ZERO)];
    let lead = item("lead", t(1, 0), &["talks"]);
    write(
        &store,
        std::slice::from_ref(&lead),
        &[alert(&lead, "talks", "hook", t(1, 0))],
        &rules,
    );
    write(&store, &[copy_of(&lead, "copy", t(1, 1))], &[], &rules);
    assert_eq!(events_of(&store, "story.updated").len(), 1);
    assert_eq!(store.story_steps.len(), 1);
    let mut report = store.prune(t(30, 0), DAY, DAY, 1000).unwrap();
    while !report.done {
        report = store.prune(t(30, 0), DAY, DAY, 1000).unwrap();
    }
    assert_eq!(store.stories.len(), 0);
    assert_eq!(store.story_steps.len(), 0);
}

/// A changed item replaces its stored version in its record (the listing shows the
/// new one, once) and raises its `item.updated` events only for topics its story
/// alerted on; its version is the new one after, and goes when its seen id is pruned.
#[test]
fn a_changed_item_is_stored_over_its_version_with_events_of_alerted_topics() {
    let dir = tempfile::tempdir().unwrap();
    let store = reopen(dir.path());
    let rules = [update_rule(3, Duration::ZERO)];
    let lead = item("lead", t(1, 0), &["talks"]);
    let other = item("other", t(1, 0), &["talks"]);
    write(
        &store,
        &[lead.clone(), other.clone()],
        &[alert(&lead, "talks", "hook", t(1, 0))],
        &rules,
    );
    let before = store.versions_among(&["lead", "other", "nope"]).unwrap();
    assert_eq!(before.len(), 2);
    assert_eq!(before["lead"], ItemVersion::of(&lead));
    let corrected = |item: &StoredItem| StoredItem {
        title: format!("{} (corrected)", item.title),
        ..item.clone()
    };
    let (new_lead, new_other) = (corrected(&lead), corrected(&other));
    assert!(before["lead"].changed_to(&ItemVersion::of(&new_lead), 20));
    // Case and spacing are not a change.
    let respaced = StoredItem {
        title: format!("  {}  ", lead.title.to_uppercase()),
        ..lead.clone()
    };
    assert!(!before["lead"].changed_to(&ItemVersion::of(&respaced), 20));
    let changed: Vec<ChangedItem> = [(&new_lead, &lead), (&new_other, &other)]
        .into_iter()
        .map(|(new, old)| ChangedItem {
            item: new.clone(),
            events: vec![item_updated(new, &old.title)],
        })
        .collect();
    store
        .write_batch(&Batch {
            changed: &changed,
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(store.get_item("lead").unwrap(), Some(new_lead.clone()));
    assert_eq!(store.get_item("other").unwrap(), Some(new_other));
    let listed = store.items(&query(None, None, 10)).unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let events = events_of(&store, "item.updated");
    assert_eq!(events.len(), 1, "only the story that alerted: {events:?}");
    let Payload::ItemUpdated(body) = &events[0].payload else {
        panic!("{events:?}")
    };
    assert_eq!(body.previous_title, "Title of lead");
    assert_eq!(body.item.title, "Title of lead (corrected)");
    assert_eq!(
        store.versions_among(&["lead"]).unwrap()["lead"],
        ItemVersion::of(&new_lead)
    );
    // The same change proposed again is the same event, stored once.
    store
        .write_batch(&Batch {
            changed: &changed,
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(events_of(&store, "item.updated").len(), 1);
    let mut report = store.prune(t(30, 0), DAY, DAY, 1000).unwrap();
    while !report.done {
        report = store.prune(t(30, 0), DAY, DAY, 1000).unwrap();
    }
    assert!(store.versions_among(&["lead", "other"]).unwrap().is_empty());
}

/// The `item.updated` event a changed item proposes for topic "talks" and sink "hook",
/// as `alert::outbox::item_updated` builds it (the store does not import `alert`).
fn item_updated(item: &StoredItem, previous_title: &str) -> StoredAlert {
    use crate::model::payload::{ItemRef, ItemUpdated, TopicRef};
    let id = crate::identity::event_id(
        "item.updated",
        &item.id,
        "talks",
        "hook",
        ItemVersion::of(item).tag(),
    );
    StoredAlert {
        payload: Payload::ItemUpdated(ItemUpdated {
            kind: "newswatch.event".into(),
            version: 1,
            event: "item.updated".into(),
            id: id.clone(),
            topic: TopicRef {
                id: "talks".into(),
                name: "Talks".into(),
            },
            story_id: item.story.clone(),
            item: ItemRef {
                id: item.id.clone(),
                feed: item.feed_name.clone(),
                title: item.title.clone(),
                url: item.url.clone(),
                published: item.published,
                summary: item.text.clone(),
            },
            previous_title: previous_title.to_string(),
            detected_at: t(2, 0),
        }),
        id,
        ..alert(item, "talks", "hook", t(2, 0))
    }
}
