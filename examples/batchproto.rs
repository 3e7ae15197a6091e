//! Prototype: what a feed's items cost written as one record against one record an
//! item, on sled, with the keys the daemon writes beside them. Reads the items of an
//! existing store (e.g. one kept by `POLL_BENCH_KEEP=1 cargo bench --bench poll --
//! local`), then writes them again per feed in each layout into a fresh directory.
//!
//! cargo run --release --example batchproto -- STORE_DIR

use std::collections::BTreeMap;
use std::time::Instant;

use newswatch::store::{ItemQuery, SledStore, StoredItem};

fn cpu() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

fn pack<T: serde::Serialize>(record: &T, c: &mut zstd::bulk::Compressor) -> Vec<u8> {
    let plain = postcard::to_stdvec(record).unwrap();
    let mut out = vec![0xA2];
    out.extend(c.compress(&plain).unwrap());
    out
}

fn key(at: u64, id: &[u8]) -> Vec<u8> {
    let mut k = at.to_be_bytes().to_vec();
    k.extend_from_slice(id);
    k
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let from = std::env::args().nth(1).expect("a store directory");
    let store = SledStore::open(std::path::Path::new(&from)).unwrap();
    let mut items = store
        .items(&ItemQuery {
            limit: usize::MAX,
            ..Default::default()
        })
        .unwrap()
        .records;
    drop(store);
    items.reverse();
    let mut feeds: BTreeMap<(i64, String), Vec<StoredItem>> = BTreeMap::new();
    for item in items.iter() {
        feeds
            .entry((item.fetched.timestamp_millis(), item.feed.clone()))
            .or_default()
            .push(item.clone());
    }
    let n = items.len();
    println!("{n} items in {} feed batches", feeds.len());
    let sketch: Vec<u8> = (0..48u32).flat_map(|v| (v * 7919).to_be_bytes()).collect();
    for layout in [
        "item records",
        "feed records",
        "feed records, no by_time/stories",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path())
            .cache_capacity(16 * 1024 * 1024)
            .open()
            .unwrap();
        let t = |name: &str| db.open_tree(name).unwrap();
        let (it, seen, sbt, bt, st, sst, sk) = (
            t("items"),
            t("seen"),
            t("seen_by_time"),
            t("by_time"),
            t("stories"),
            t("stories_by_time"),
            t("story_sketches"),
        );
        let mut c = zstd::bulk::Compressor::new(1).unwrap();
        let (start, wall) = (cpu(), Instant::now());
        for ((at, feed), batch) in &feeds {
            let at = *at as u64;
            let feed_key = key(
                at,
                &xxhash_rust::xxh3::xxh3_64(feed.as_bytes()).to_be_bytes(),
            );
            match layout {
                "item records" => {
                    for item in batch {
                        let id = item.id.as_bytes();
                        it.insert(key(at, id), pack(item, &mut c)).unwrap();
                        bt.insert(key(at, id), &[][..]).unwrap();
                        seen.insert(id, &at.to_be_bytes()[..]).unwrap();
                        sbt.insert(key(at, id), &[][..]).unwrap();
                        if item.is_story_lead {
                            st.insert(id, &[0u8; 150][..]).unwrap();
                            sst.insert(key(at, id), &[][..]).unwrap();
                            sk.insert(key(at, id), sketch.as_slice()).unwrap();
                        }
                    }
                }
                _ => {
                    it.insert(&feed_key, pack(batch, &mut c)).unwrap();
                    let ids: Vec<&str> = batch.iter().map(|i| i.id.as_str()).collect();
                    sbt.insert(&feed_key, postcard::to_stdvec(&ids).unwrap())
                        .unwrap();
                    for (n, item) in batch.iter().enumerate() {
                        let id = item.id.as_bytes();
                        let mut v = feed_key.clone();
                        v.push(n as u8);
                        seen.insert(id, v).unwrap();
                        if item.is_story_lead {
                            if layout == "feed records" {
                                st.insert(id, &[0u8; 150][..]).unwrap();
                                sst.insert(key(at, id), &[][..]).unwrap();
                            }
                            sk.insert(key(at, id), sketch.as_slice()).unwrap();
                        }
                    }
                }
            }
        }
        db.flush_async().await.unwrap();
        let (spent, wall) = (cpu() - start, wall.elapsed());
        drop((it, seen, sbt, bt, st, sst, sk));
        drop(db);
        std::thread::sleep(std::time::Duration::from_millis(500));
        let bytes = dir_size(dir.path());
        println!(
            "{layout:>34}: {:.1} µs CPU an item ({:.2} s wall), {} bytes an item on disk",
            spent * 1e6 / n as f64,
            wall.as_secs_f64(),
            bytes / n as u64
        );
    }
}
