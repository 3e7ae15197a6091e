//! `newswatch scan` over many files: the real release binary, one file at a time
//! (`--jobs 1`, what `scan` did before issue 12) against its default (one file per
//! core), on the same generated directory. A plain `fn main()` (harness = false): a
//! whole run of a subprocess, timed by wall clock, its CPU (user + system, all
//! threads) taken from `wait4`.
//!
//! ```text
//! cargo bench --bench scan                      # 96 files, 5 rounds
//! SCAN_BENCH_FILES=200 SCAN_BENCH_ROUNDS=9 cargo bench --bench scan
//! ```
//!
//! The corpus (splitmix64, no external data): RSS 2.0 feed files of 50 items, each a
//! title and a ~1 KB HTML description (paragraphs, links, entities) of news-like words;
//! one item in three is in Russian or Ukrainian, one in ten speaks of a ceasefire and
//! names the shipped entities, so the shipped config's topics match some. Rounds
//! alternate the two settings so that a busy machine weighs on both alike; the figures
//! are medians. Both runs' outputs are compared byte for byte.
//!
//! Figures and the machine they were taken on: BENCHMARKS.md, "Scan over files".

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ITEMS_PER_FILE: usize = 50;
const SEED: u64 = 0x7363_616e_6669_6c65;

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

const ENGLISH: &str = "the of and to in a is that for on was with he it as at by from \
    government people city police minister president country state week said report \
    officials council market prices budget company workers school hospital election party \
    vote parliament court judge law bill tax bank energy gas oil power water river bridge \
    railway airport road weather storm flood farmers food health doctors university \
    students football season festival music museum theatre science research climate \
    industry jobs inflation growth exports trade meeting summit leaders agreement plan \
    support opposition protest strike union wages housing families children village region";
const RUSSIAN: &str = "в и на с по что это как для его года власти города министр \
    президент страны правительство заявил сообщили переговоры встречи рынок цены бюджет \
    компании рабочие школы больницы выборы партии парламент суд закон налог банк энергия \
    газ нефть вода реки мост дороги погода фермеры здоровье университет студенты музыка";
const UKRAINIAN: &str = "і в на з що це як для його року влади міста міністр президент \
    країни уряд заявив повідомили переговори зустрічі ринок ціни бюджет компанії школи \
    лікарні вибори партії парламент суд закон податок банк енергія газ вода річки міст";
const WAR: &[&str] = &[
    "ceasefire talks between Russia and Ukraine",
    "Putin and Zelensky discuss a truce",
    "peace negotiations in Kyiv",
    "переговоры о перемирии между Россией и Украиной",
    "Путин и Зеленский обсуждают прекращение огня",
];

fn words(rng: &mut Rng, list: &[&str], n: usize) -> String {
    (0..n)
        .map(|_| list[rng.below(list.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// One RSS file of [`ITEMS_PER_FILE`] items.
fn feed(rng: &mut Rng, file: usize, lists: &[Vec<&str>; 3]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>Bench</title><link>https://example.org/</link><description>d</description>\n",
    );
    for item in 0..ITEMS_PER_FILE {
        let list = &lists[match rng.below(6) {
            0 => 1,
            1 => 2,
            _ => 0,
        }];
        let mut title = words(rng, list, 8);
        let mut body = String::new();
        for p in 0..4 {
            let mut para = words(rng, list, 30);
            if p == 1 && rng.below(10) == 0 {
                let war = WAR[rng.below(WAR.len())];
                para.push_str(&format!(", {war}"));
                title.push_str(" Kyiv");
            }
            let _ = write!(
                body,
                "<p>{para} <a href=\"https://example.org/{file}/{item}/{p}\">more &amp; more</a>.</p>"
            );
        }
        let _ = writeln!(
            xml,
            "<item><title>{title}</title><link>https://example.org/{file}/{item}</link>\
             <guid>bench-{file}-{item}</guid><pubDate>Sat, 06 Dec 2026 01:00:00 GMT</pubDate>\
             <description><![CDATA[{body}]]></description></item>"
        );
    }
    xml.push_str("</channel></rss>\n");
    xml
}

struct Measured {
    wall: Duration,
    cpu: Duration,
    out: Vec<u8>,
}

// The child is reaped with wait4 below, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run(files: &[PathBuf], jobs: Option<&str>) -> Measured {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_newswatch"));
    cmd.arg("scan")
        .arg("--config")
        .arg(root.join("config/newswatch.toml"));
    if let Some(jobs) = jobs {
        cmd.arg("--jobs").arg(jobs);
    }
    let start = Instant::now();
    let mut child = cmd
        .args(files)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting newswatch");
    let mut stdout = child.stdout.take().expect("the child's stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let mut status = 0;
    // SAFETY: a blocking wait4 on our own child with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(reaped, child.id() as i32, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "newswatch scan failed: {status}"
    );
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Measured {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        out: reader.join().expect("the stdout reader"),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that is not ours skips the run.
    if let Some(filter) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        if !"scan".contains(filter.as_str()) {
            return;
        }
    }
    let count = env_or("SCAN_BENCH_FILES", 96);
    let rounds = env_or("SCAN_BENCH_ROUNDS", 5);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let lists = [ENGLISH, RUSSIAN, UKRAINIAN].map(|l| l.split_whitespace().collect::<Vec<_>>());
    let mut rng = Rng(SEED);
    let mut bytes = 0;
    let files: Vec<PathBuf> = (0..count)
        .map(|n| {
            let path = dir.path().join(format!("feed-{n:04}.xml"));
            let xml = feed(&mut rng, n, &lists);
            bytes += xml.len();
            std::fs::write(&path, xml).expect("writing a feed file");
            path
        })
        .collect();
    let items = count * ITEMS_PER_FILE;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "scan over {count} files ({items} items, {:.1} MiB), {cores} cores, {rounds} rounds",
        bytes as f64 / 1048576.0
    );
    // One unmeasured run of each warms the page cache and the binary.
    let reference = run(&files, Some("1")).out;
    assert_eq!(run(&files, None).out, reference, "outputs differ");
    let (mut one, mut many) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for (jobs, into) in [(Some("1"), &mut one), (None, &mut many)] {
            let m = run(&files, jobs);
            assert!(m.out == reference, "round {round}: outputs differ");
            into.push((m.wall.as_secs_f64(), m.cpu.as_secs_f64()));
        }
        let (a, b) = (one[round], many[round]);
        println!(
            "round {round}: --jobs 1 {:.3} s wall {:.3} s CPU; default {:.3} s wall {:.3} s CPU ({:.2}× wall)",
            a.0,
            a.1,
            b.0,
            b.1,
            b.0 / a.0
        );
    }
    let wall = |v: &[(f64, f64)]| median(v.iter().map(|m| m.0).collect());
    let cpu = |v: &[(f64, f64)]| median(v.iter().map(|m| m.1).collect());
    let ratios: Vec<f64> = one.iter().zip(&many).map(|(a, b)| b.0 / a.0).collect();
    println!(
        "median: --jobs 1 {:.3} s wall, {:.3} s CPU ({:.1} µs CPU an item); default ({cores} jobs) \
         {:.3} s wall, {:.3} s CPU ({:.1} µs CPU an item); wall default ÷ --jobs 1: {:.2} \
         (median of the rounds' ratios), CPU default ÷ --jobs 1: {:.2}",
        wall(&one),
        cpu(&one),
        cpu(&one) * 1e6 / items as f64,
        wall(&many),
        cpu(&many),
        cpu(&many) * 1e6 / items as f64,
        median(ratios),
        cpu(&many) / cpu(&one),
    );
}
