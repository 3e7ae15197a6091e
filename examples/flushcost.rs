//! What a durable store write costs: sled syncs in the background, so newswatch
//! flushes before it counts anything as stored. This inserts the same items flushing
//! after every item, after every feed-sized batch (what the daemon does), and once.
//! Run with `cargo run --release --example flushcost`; figures in BENCHMARKS.md.

use chrono::Utc;
use newswatch::store::{SledStore, StoredItem};
use std::time::Instant;

fn item(i: usize) -> StoredItem {
    StoredItem {
        id: format!("u:https://example.org/{i}"),
        feed: "f".into(),
        feed_name: "f".into(),
        title: format!("title {i}"),
        url: Some(format!("https://example.org/{i}")),
        published: None,
        fetched: Utc::now(),
        text: "word ".repeat(300),
        entities: vec![],
        topics: vec![],
        story: format!("s{i}"),
        is_story_lead: true,
        fingerprint: i as u64,
    }
}

#[tokio::main]
async fn main() {
    let n = 5000;
    for (label, batch) in [
        ("per item", 1usize),
        ("per feed (50)", 50),
        ("once at end", n),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let items: Vec<StoredItem> = (0..n).map(item).collect();
        let start = Instant::now();
        for chunk in items.chunks(batch) {
            store.insert_items(chunk).unwrap();
            store.flush().await.unwrap();
        }
        let t = start.elapsed();
        println!(
            "{label:>14}: {n} items in {:.2} s = {:.0} items/s",
            t.as_secs_f64(),
            n as f64 / t.as_secs_f64()
        );
    }
}
