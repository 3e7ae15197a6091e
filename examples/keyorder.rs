//! What the order of keys costs sled: 100,000 values of 2,200 bytes (an item's size)
//! written in feed-sized batches of 50, flushed every 64 batches as the daemon does,
//! keyed either by a random id (how schema 1 keyed `items`) or by a counter in front
//! of the id (time order, as schema 2 does). Prints wall and CPU time, the store's
//! size on disk and the process's RSS after the writes.
//!
//! `cargo run --release --example keyorder -- 100000 random` (or `ordered`); figures
//! in BENCHMARKS.md ("Polling") and the store's module doc.
use std::time::Instant;

/// CPU seconds of this process, user and system.
fn cpu() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given and reads nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    (u.ru_utime.tv_sec + u.ru_stime.tv_sec) as f64
        + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) as f64 / 1e6
}

fn dir_size(p: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            dir_size(&e.path())
        } else {
            m.len()
        };
    }
    n
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().unwrap());
    let mode = std::env::args().nth(2).unwrap_or("random".into());
    if mode != "random" && mode != "ordered" {
        eprintln!("keyorder: the second argument is `random` or `ordered`, not {mode:?}");
        std::process::exit(2);
    }
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(16 << 20)
        .open()
        .unwrap();
    let items = db.open_tree("items").unwrap();
    let value: Vec<u8> = (0..2200u32).map(|i| b'a' + (i * 7 % 26) as u8).collect();
    let (t0, c0) = (Instant::now(), cpu());
    // xorshift64: ids that look like hashed GUIDs, the same in every run.
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for feed in 0..n / 50 {
        let mut batch = sled::Batch::default();
        for i in 0..50 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = format!("g:{x:016x}");
            let key = if mode == "random" {
                id.into_bytes()
            } else {
                let mut k = ((feed * 50 + i) as u64).to_be_bytes().to_vec();
                k.extend_from_slice(id.as_bytes());
                k
            };
            batch.insert(key, value.as_slice());
        }
        items.apply_batch(batch).unwrap();
        if feed % 64 == 63 {
            db.flush().unwrap();
        }
    }
    db.flush().unwrap();
    let (wall, c) = (t0.elapsed().as_secs_f64(), cpu() - c0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap()
        .to_string();
    println!(
        "{mode}: {n} values of 2,200 B: wall {wall:.2} s, cpu {c:.2} s ({:.1} us/item), disk {:.0} MiB, {rss}",
        c * 1e6 / n as f64,
        dir_size(dir.path()) as f64 / 1048576.0
    );
}
