//! The PostgreSQL store as two daemons of a cluster see it: two `PgStore`s (two nodes)
//! on one real database, through the same `Store` interface the daemon uses.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use newswatch::config::Postgres;
use newswatch::model::payload::Payload;
use newswatch::store::postgres::{schema, PgStore};
use newswatch::store::{
    AlertStatus, Attempt, Claim, FeedHealth, FeedState, ItemQuery, Store, StoreError,
};

use crate::util::pg::{self, TestDb};
use crate::util::records::{alert, item};

fn config(db: &TestDb, node: &str, lease: Duration) -> Postgres {
    Postgres {
        url: db.url.clone(),
        password_env: "NEWSWATCH_TEST_NO_PASSWORD".into(),
        lease,
        pool: 2,
        node: Some(node.into()),
    }
}

fn open(db: &TestDb, node: &str, lease: Duration) -> PgStore {
    PgStore::open(&config(db, node, lease), Duration::from_secs(48 * 3600))
        .unwrap_or_else(|err| panic!("opening node {node}: {err}"))
}

const FEED: &str = "https://example.org/rss";

/// Stores item `id`, on topic "talks", with its alert for sink "hook"; returns the alert.
fn store_pending_alert(store: &PgStore, id: &str) -> newswatch::store::StoredAlert {
    let now = Utc::now();
    let lead = item(id, now, &["talks"]);
    let pending = alert(&lead, "talks", "hook", now);
    store
        .insert_batch(None, &[lead], std::slice::from_ref(&pending), &[])
        .unwrap();
    pending
}

/// A sketch of `n` values from `start`, as the pipeline makes them (sorted).
fn sketch(start: u32, n: u32) -> Vec<u32> {
    (start..start + n).map(|v| v * 7919).collect()
}

#[test]
fn the_schema_is_created_once_and_a_newer_one_is_refused() {
    let db = pg::database();
    let a = open(&db, "a", Duration::from_secs(60));
    // A second daemon starting on the migrated database changes nothing.
    let _b = open(&db, "b", Duration::from_secs(60));
    assert_eq!(
        pg::psql(
            &db.url,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations"
        ),
        (1..=schema::VERSION)
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(
        PgStore::schema_version(&config(&db, "c", Duration::from_secs(60))).unwrap(),
        Some(schema::VERSION)
    );
    drop(a);
    pg::psql(
        &db.url,
        "INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')",
    );
    let err = PgStore::open(
        &config(&db, "d", Duration::from_secs(60)),
        Duration::from_secs(3600),
    )
    .unwrap_err();
    assert!(
        matches!(err, StoreError::Schema { found: 999, .. }),
        "{err}"
    );
}

#[test]
fn items_are_stored_once_and_listed_newest_first_by_topic() {
    let db = pg::database();
    let store = open(&db, "a", Duration::from_secs(60));
    let now = Utc::now();
    let first = item("i1", now - chrono::Duration::minutes(2), &["talks"]);
    let second = item("i2", now - chrono::Duration::minutes(1), &[]);
    let inserted = store
        .insert_batch(None, &[first.clone(), second.clone()], &[], &[])
        .unwrap();
    assert_eq!(inserted.new, 2);
    // The same batch again stores nothing.
    let again = store
        .insert_batch(None, &[first.clone(), second], &[], &[])
        .unwrap();
    assert_eq!(again.new, 0);
    assert!(store.seen("i1").unwrap());
    assert!(!store.seen("nope").unwrap());
    assert_eq!(store.get_item("i1").unwrap(), Some(first));
    assert_eq!(store.item_count(), 2);
    let all = store
        .items(&ItemQuery {
            limit: 10,
            ..ItemQuery::default()
        })
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["i2", "i1"]);
    let on_topic = store
        .items(&ItemQuery {
            topic: Some("talks".into()),
            limit: 10,
            ..ItemQuery::default()
        })
        .unwrap();
    let ids: Vec<&str> = on_topic.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["i1"]);
}

/// Two daemons store copies of one story at the same moment, each as the lead of a
/// new story (neither daemon's window knows the other's): the database joins them
/// into one story, which alerts once per topic and sink.
#[test]
fn copies_stored_at_once_by_two_daemons_make_one_story_and_one_alert() {
    let db = pg::database();
    let a = Arc::new(open(&db, "a", Duration::from_secs(60)));
    let b = Arc::new(open(&db, "b", Duration::from_secs(60)));
    let now = Utc::now();
    let shared = sketch(1, 48);
    let mut handles = Vec::new();
    for (store, id) in [(a.clone(), "copy-a"), (b.clone(), "copy-b")] {
        let shared = shared.clone();
        handles.push(std::thread::spawn(move || {
            let mut lead = item(id, now, &["talks"]);
            lead.fingerprint = 0xABCD;
            let alerts = ["hook", "slack"].map(|sink| {
                // Named as the daemon names them: by story, topic and sink.
                let mut proposed = alert(&lead, "talks", sink, now);
                proposed.id = newswatch::identity::alert_id(id, "talks", sink);
                if let Payload::Alert(body) = &mut proposed.payload {
                    body.id = proposed.id.clone();
                }
                proposed
            });
            store
                .insert_batch(None, &[lead], &alerts, &[(id, &shared)])
                .unwrap()
                .new
        }));
    }
    let stored: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(stored, 2, "both copies are stored");
    let listed = a.alerts(None, 10).unwrap();
    let mut sinks: Vec<&str> = listed.iter().map(|x| x.sink.as_str()).collect();
    sinks.sort_unstable();
    assert_eq!(sinks, ["hook", "slack"], "one alert per sink: {listed:?}");
    let story = &listed[0].story;
    assert!(listed.iter().all(|x| &x.story == story));
    // The stored alert's id is the one any daemon would give that story, topic, sink.
    for x in listed.iter() {
        assert_eq!(x.id, newswatch::identity::alert_id(story, "talks", &x.sink));
        assert_eq!(x.payload.id(), x.id);
    }
    let record = b.get_story(story).unwrap().expect("the story has a record");
    assert_eq!(record.alerted, ["talks"]);
    assert_eq!(record.related.len(), 1, "{record:?}");
    // Both items name the one story.
    for id in ["copy-a", "copy-b"] {
        assert_eq!(&a.get_item(id).unwrap().unwrap().story, story);
    }
    // A different story at the same time is its own.
    let mut other = item("other", now, &["talks"]);
    other.fingerprint = 0xABCD;
    let alerts = [alert(&other, "talks", "hook", now)];
    let sketch_other = sketch(1000, 48);
    a.insert_batch(None, &[other], &alerts, &[("other", &sketch_other)])
        .unwrap();
    assert_eq!(a.alerts(None, 10).unwrap().len(), 3);
}

#[test]
fn a_feed_is_leased_to_one_daemon_and_a_stale_lease_writes_nothing() {
    let db = pg::database();
    let lease = Duration::from_secs(1);
    let a = open(&db, "a", lease);
    let b = open(&db, "b", lease);
    let now = Utc::now();
    let Claim::Granted {
        lease: Some(held), ..
    } = a.claim_feed(FEED, now).unwrap()
    else {
        panic!("the first claim is granted");
    };
    match b.claim_feed(FEED, now).unwrap() {
        Claim::Taken { until, .. } => assert!(until > now, "{until}"),
        granted => panic!("a leased feed is not granted again: {granted:?}"),
    }
    // After the lease runs out, b takes the feed over under a new epoch.
    std::thread::sleep(Duration::from_millis(1300));
    let Claim::Granted {
        lease: Some(taken), ..
    } = b.claim_feed(FEED, Utc::now()).unwrap()
    else {
        panic!("an expired lease is taken over");
    };
    assert!(taken.epoch > held.epoch);
    // a, waking up, can store nothing under its old lease.
    let late = item("late", Utc::now(), &["talks"]);
    let err = a
        .insert_batch(Some(&held), std::slice::from_ref(&late), &[], &[])
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err}");
    assert!(err.to_string().contains(FEED), "{err}");
    let state = FeedState {
        etag: Some("\"stale\"".into()),
        ..FeedState::default()
    };
    assert!(matches!(
        a.put_feed_state(Some(&held), FEED, &state),
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(!a.seen("late").unwrap());
    // b stores under its lease, and saving the state gives the lease up.
    assert_eq!(
        b.insert_batch(Some(&taken), &[late], &[], &[]).unwrap().new,
        1
    );
    let next = Utc::now() + chrono::Duration::minutes(5);
    let polled = FeedState {
        etag: Some("\"b\"".into()),
        next_poll: Some(next),
        ..FeedState::default()
    };
    b.put_feed_state(Some(&taken), FEED, &polled).unwrap();
    assert_eq!(
        pg::psql(&db.url, "SELECT coalesce(lease_owner, 'none') FROM feeds"),
        "none"
    );
    // Not due for five minutes: a claim now says so, with b's state.
    match a.claim_feed(FEED, Utc::now()).unwrap() {
        Claim::Taken { until, state } => {
            assert_eq!(until.timestamp_millis(), next.timestamp_millis());
            assert_eq!(state.unwrap().etag.as_deref(), Some("\"b\""));
        }
        granted => panic!("a feed polled by another daemon is not due: {granted:?}"),
    }
}

/// A feed state's health fields are kept by the PostgreSQL store too, and states of
/// the layout before them (postcard under the `PLAIN` tag, or JSON) still read, an
/// older build's 410 as `gone`.
#[test]
fn feed_health_fields_are_kept_and_older_feed_states_read() {
    let db = pg::database();
    let a = open(&db, "a", Duration::from_secs(60));
    let now = Utc::now();
    let state = FeedState {
        etag: Some("\"e\"".into()),
        failures: 3,
        last_status: Some(503),
        failing_since: Some(now),
        last_new_item: Some(now - chrono::Duration::hours(2)),
        usual_gap_secs: Some(3600),
        items_digest: Some(42),
        health: FeedHealth::Failing,
        ..FeedState::default()
    };
    a.put_feed_state(None, FEED, &state).unwrap();
    // Postcard of the older layout: etag "x", failures 1, disabled "410", items_total 7.
    pg::psql(
        &db.url,
        "INSERT INTO feeds (url, state) VALUES \
         ('https://old.example/plain', '\\xa10101780000000100000103343130000007'::bytea), \
         ('https://old.example/json', convert_to('{\"etag\":\"j\",\"failures\":0}', 'UTF8'))",
    );
    let states: std::collections::HashMap<String, FeedState> =
        a.feed_states().unwrap().into_iter().collect();
    assert_eq!(states.len(), 3);
    let read = &states[FEED];
    assert_eq!(
        (
            read.last_status,
            read.usual_gap_secs,
            read.items_digest,
            read.health
        ),
        (Some(503), Some(3600), Some(42), FeedHealth::Failing)
    );
    assert_eq!(
        read.failing_since.map(|t| t.timestamp_millis()),
        Some(now.timestamp_millis())
    );
    let plain = &states["https://old.example/plain"];
    assert_eq!(plain.etag.as_deref(), Some("x"));
    assert_eq!((plain.failures, plain.items_total), (1, 7));
    assert_eq!(
        (plain.last_status, plain.health),
        (Some(410), FeedHealth::Gone)
    );
    let json = &states["https://old.example/json"];
    assert_eq!(
        (json.etag.as_deref(), json.health),
        (Some("j"), FeedHealth::Ok)
    );
    // A claim hands the stored state over with its health fields.
    match a.claim_feed(FEED, Utc::now()).unwrap() {
        Claim::Granted { state, .. } => {
            assert_eq!(state.unwrap().health, FeedHealth::Failing)
        }
        taken => panic!("a due feed is granted: {taken:?}"),
    }
}

#[test]
fn a_lease_given_up_at_shutdown_is_free_at_once() {
    let db = pg::database();
    let a = open(&db, "a", Duration::from_secs(600));
    let b = open(&db, "b", Duration::from_secs(600));
    assert!(matches!(
        a.claim_feed(FEED, Utc::now()).unwrap(),
        Claim::Granted { lease: Some(_), .. }
    ));
    assert!(matches!(
        b.claim_feed(FEED, Utc::now()).unwrap(),
        Claim::Taken { .. }
    ));
    a.release_leases().unwrap();
    assert!(matches!(
        b.claim_feed(FEED, Utc::now()).unwrap(),
        Claim::Granted { lease: Some(_), .. }
    ));
}

#[test]
fn a_due_alert_is_claimed_by_one_daemon_until_its_claim_runs_out() {
    let db = pg::database();
    let lease = Duration::from_secs(1);
    let a = open(&db, "a", lease);
    let b = open(&db, "b", lease);
    let pending = store_pending_alert(&a, "i1");
    assert_eq!(a.pending_alerts(), 1);
    let due_a = a.due_alerts("hook", Utc::now(), 10).unwrap();
    assert_eq!(due_a.len(), 1);
    assert!(
        b.due_alerts("hook", Utc::now(), 10).unwrap().is_empty(),
        "claimed by a"
    );
    // For b the alert is due when a's claim runs out.
    let next = b.next_due("hook").unwrap().expect("a pending alert");
    assert!(next > Utc::now(), "{next}");
    // a died without recording: after the claim runs out, b delivers.
    std::thread::sleep(Duration::from_millis(1300));
    let due_b = b.due_alerts("hook", Utc::now(), 10).unwrap();
    assert_eq!(due_b.len(), 1);
    let done = b
        .record_attempt(&pending.id, &Attempt::Delivered { at: Utc::now() })
        .unwrap();
    assert_eq!(done.status, AlertStatus::Delivered);
    assert_eq!(done.attempts, 1);
    assert_eq!(b.pending_alerts(), 0);
    assert_eq!(pg::psql(&db.url, "SELECT delivered_by FROM alerts"), "b");
    assert!(a.due_alerts("hook", Utc::now(), 10).unwrap().is_empty());
    // Another alert fails at a, and is put back by hand from any node.
    let doomed = store_pending_alert(&a, "i2");
    assert_eq!(a.due_alerts("hook", Utc::now(), 10).unwrap().len(), 1);
    let failed = a
        .record_attempt(
            &doomed.id,
            &Attempt::Failed {
                error: "gone".into(),
            },
        )
        .unwrap();
    assert_eq!(failed.status, AlertStatus::Failed);
    assert!(b.retry_alert(&doomed.id, Utc::now()).unwrap());
    assert!(
        !b.retry_alert(&doomed.id, Utc::now()).unwrap(),
        "pending now"
    );
    assert_eq!(a.due_alerts("hook", Utc::now(), 10).unwrap().len(), 1);
}

#[test]
fn pruning_removes_old_items_and_keeps_matched_ones_for_the_retention() {
    let db = pg::database();
    let store = open(&db, "a", Duration::from_secs(60));
    let now = Utc::now();
    let old = now - chrono::Duration::days(10);
    store
        .insert_batch(
            None,
            &[
                item("old-plain", old, &[]),
                item("old-matched", old, &["talks"]),
                item("new", now, &[]),
            ],
            &[],
            &[],
        )
        .unwrap();
    let report = store
        .prune(
            now,
            Duration::from_secs(7 * 86400),
            Duration::from_secs(90 * 86400),
            1000,
        )
        .unwrap();
    assert_eq!(report.items, 1);
    assert!(report.done);
    assert!(store.get_item("old-plain").unwrap().is_none());
    assert!(store.get_item("old-matched").unwrap().is_some());
    // Its id stays seen for the retention period, so it is not processed again.
    assert!(store.seen("old-plain").unwrap());
}

#[test]
fn an_unreachable_database_is_an_error_naming_it() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let config = Postgres {
        url: format!("postgres://newswatch@127.0.0.1:{port}/nowhere"),
        password_env: "NEWSWATCH_TEST_NO_PASSWORD".into(),
        lease: Duration::from_secs(60),
        pool: 1,
        node: None,
    };
    let err = PgStore::open(&config, Duration::from_secs(3600)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}/nowhere")),
        "{text}"
    );
    assert!(text.contains("connecting"), "{text}");
}

/// One article in two feeds polled by two daemons at once: both batches are stored,
/// the shared item once, and neither fails on the other's key.
#[test]
fn an_item_stored_at_once_by_two_daemons_is_stored_once_and_both_batches_succeed() {
    let db = pg::database();
    let a = Arc::new(open(&db, "a", Duration::from_secs(60)));
    let b = Arc::new(open(&db, "b", Duration::from_secs(60)));
    let now = Utc::now();
    // Bounded rounds: each races two transactions on one id.
    for round in 0..15 {
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let handles: Vec<_> = [(a.clone(), "a"), (b.clone(), "b")]
            .into_iter()
            .map(|(store, node)| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let batch = [
                        item(&format!("own-{node}-{round}"), now, &[]),
                        item(&format!("shared-{round}"), now, &[]),
                    ];
                    barrier.wait();
                    store.insert_batch(None, &batch, &[], &[])
                })
            })
            .collect();
        let stored: Vec<usize> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap()
                    .unwrap_or_else(|err| panic!("round {round}: {err}"))
                    .new
            })
            .collect();
        assert_eq!(stored.iter().sum::<usize>(), 3, "round {round}: {stored:?}");
    }
    assert_eq!(a.item_count(), 45);
}

/// A daemon whose claim on an alert ran out while it worked through its batch (a
/// paced or slow sink) must not send it once another daemon has taken it, and its late
/// record must not undo the other's delivery.
#[test]
fn an_alert_taken_over_after_its_claim_ran_out_is_neither_sent_nor_recorded_twice() {
    let db = pg::database();
    let lease = Duration::from_secs(1);
    let a = open(&db, "a", lease);
    let b = open(&db, "b", lease);
    let pending = store_pending_alert(&a, "i1");
    assert_eq!(a.due_alerts("hook", Utc::now(), 10).unwrap().len(), 1);
    // a renews its claim just before sending: b cannot take it meanwhile.
    assert!(a.renew_claim(&pending.id).unwrap());
    assert!(b.due_alerts("hook", Utc::now(), 10).unwrap().is_empty());
    // a is slow; its claim runs out and b takes the alert and delivers it.
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(b.due_alerts("hook", Utc::now(), 10).unwrap().len(), 1);
    assert!(
        !a.renew_claim(&pending.id).unwrap(),
        "a must not send an alert b holds"
    );
    b.record_attempt(&pending.id, &Attempt::Delivered { at: Utc::now() })
        .unwrap();
    // a's late failure leaves b's delivery as it is.
    let after = a
        .record_attempt(
            &pending.id,
            &Attempt::Failed {
                error: "timed out".into(),
            },
        )
        .unwrap();
    assert_eq!(after.status, AlertStatus::Delivered);
    assert_eq!(
        a.get_alert(&pending.id).unwrap().unwrap().status,
        AlertStatus::Delivered
    );
    assert!(
        !a.renew_claim(&pending.id).unwrap(),
        "delivered: not pending"
    );
}

/// Two daemons adding copies to one story that alerted, at the same moment, take its
/// update steps one after the other: with a step per copy, ten copies stored by two
/// store handles racing make exactly steps 1 to 10, each one event, each counting one
/// more copy than the last (fails without the story's row lock around the step: two
/// daemons reading the same step state lose a step).
#[test]
fn two_daemons_growing_one_story_send_each_step_once() {
    use newswatch::model::payload::Payload;
    use newswatch::store::{Batch, UpdateRule};
    let db = pg::database();
    let a = Arc::new(open(&db, "a", Duration::from_secs(60)));
    let b = Arc::new(open(&db, "b", Duration::from_secs(60)));
    let rules = vec![UpdateRule {
        topic: "talks".into(),
        topic_name: "Talks".into(),
        sinks: vec!["hook".into()],
        grow_by: 1,
        interval: Duration::ZERO,
    }];
    let now = Utc::now();
    let lead = item("lead", now, &["talks"]);
    let proposed = alert(&lead, "talks", "hook", now);
    a.write_batch(
        None,
        &Batch {
            items: std::slice::from_ref(&lead),
            alerts: std::slice::from_ref(&proposed),
            sketches: &[],
            rules: &rules,
            changed: &[],
        },
    )
    .unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = [(a.clone(), "a"), (b.clone(), "b")]
        .into_iter()
        .map(|(store, node)| {
            let (rules, barrier) = (rules.clone(), barrier.clone());
            std::thread::spawn(move || {
                for i in 0..5 {
                    let mut copy = item(&format!("copy-{node}-{i}"), Utc::now(), &[]);
                    copy.story = "lead".into();
                    copy.is_story_lead = false;
                    barrier.wait();
                    store
                        .write_batch(
                            None,
                            &Batch {
                                items: &[copy],
                                alerts: &[],
                                sketches: &[],
                                rules: &rules,
                                changed: &[],
                            },
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let mut steps: Vec<(u32, u32)> = a
        .alerts(None, 100)
        .unwrap()
        .iter()
        .filter_map(|event| match &event.payload {
            Payload::StoryUpdated(body) => Some((body.step, body.story.sources)),
            _ => None,
        })
        .collect();
    steps.sort_unstable();
    let expected: Vec<(u32, u32)> = (1..=10).map(|step| (step, step + 1)).collect();
    assert_eq!(steps, expected);
    assert_eq!(
        pg::psql(
            &db.url,
            "SELECT step || ',' || sources FROM story_steps WHERE story = 'lead'"
        ),
        "10,11"
    );
}

/// A changed item replaces its stored version and raises `item.updated` only for the
/// topics its story alerted on, once however many daemons propose the same change.
#[test]
fn a_changed_item_is_stored_over_its_version_with_events_of_alerted_topics() {
    use newswatch::model::payload::Payload;
    use newswatch::store::{Batch, ChangedItem, ItemVersion, UpdateRule};
    let db = pg::database();
    let a = open(&db, "a", Duration::from_secs(60));
    let b = open(&db, "b", Duration::from_secs(60));
    let rules = vec![UpdateRule {
        topic: "talks".into(),
        topic_name: "Talks".into(),
        sinks: vec!["hook".into()],
        grow_by: 3,
        interval: Duration::ZERO,
    }];
    let now = Utc::now();
    let lead = item("lead", now, &["talks"]);
    let other = item("other", now, &["talks"]);
    let proposed = alert(&lead, "talks", "hook", now);
    a.insert_batch(
        None,
        &[lead.clone(), other.clone()],
        std::slice::from_ref(&proposed),
        &[],
    )
    .unwrap();
    let versions = b.versions_among(&["lead", "other", "nope"]).unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions["lead"], ItemVersion::of(&lead));
    let changed: Vec<ChangedItem> = [&lead, &other]
        .into_iter()
        .map(|old| {
            let new = newswatch::store::StoredItem {
                title: format!("{} (corrected)", old.title),
                ..old.clone()
            };
            let events = newswatch::alert::outbox::item_updated(&new, &old.title, &rules, now);
            ChangedItem { item: new, events }
        })
        .collect();
    for store in [&a, &b] {
        store
            .write_batch(
                None,
                &Batch {
                    changed: &changed,
                    ..Batch::default()
                },
            )
            .unwrap();
    }
    assert_eq!(
        b.get_item("lead").unwrap().unwrap().title,
        "Title of lead (corrected)"
    );
    assert_eq!(
        a.versions_among(&["lead"]).unwrap()["lead"],
        ItemVersion::of(&changed[0].item)
    );
    let events: Vec<_> = a
        .alerts(None, 10)
        .unwrap()
        .into_iter()
        .filter(|e| e.event() == "item.updated")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    let Payload::ItemUpdated(body) = &events[0].payload else {
        panic!("{events:?}")
    };
    assert_eq!(body.previous_title, "Title of lead");
    assert_eq!(body.item.id, "lead");
}
