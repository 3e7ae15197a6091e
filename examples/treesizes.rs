//! Prints each tree's entry count and key and value bytes of a store directory, and
//! sled's size on disk: where a store's bytes are (BENCHMARKS.md, "Store records").
//! `cargo run --release --example treesizes -- DIR` (with no daemon holding DIR).
fn main() {
    let dir = std::env::args().nth(1).expect("store dir");
    let db = sled::open(&dir).expect("open");
    let mut total = 0;
    for name in db.tree_names() {
        let tree = db.open_tree(&name).unwrap();
        let (mut n, mut k, mut v) = (0usize, 0usize, 0usize);
        for (key, value) in tree.iter().flatten() {
            n += 1;
            k += key.len();
            v += value.len();
        }
        total += k + v;
        println!(
            "{:<16} {n:>8} entries  keys {k:>10} B  values {v:>10} B",
            String::from_utf8_lossy(&name)
        );
    }
    println!(
        "live total {total} B; size_on_disk {} B",
        db.size_on_disk().unwrap()
    );
}
