//! Shared test helpers: run the real binary, locate fixtures, write configs.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The crate root, where config/ and tests/fixtures live.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// The shipped default config.
pub fn default_config() -> PathBuf {
    root().join("config/newswatch.toml")
}

/// The binary under test, with no config or log settings leaking in from the caller.
pub fn newswatch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_newswatch"));
    cmd.env_remove("NEWSWATCH_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("INVOCATION_ID")
        .stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("NEWSWATCH__") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// What a run printed, with stdout parsed as JSON lines.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub items: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
}

/// How long one run of the binary may take before the test fails, so that a hang
/// is a named failure and not a CI job that never ends.
pub const RUN_LIMIT: Duration = Duration::from_secs(300);

pub fn run(cmd: &mut Command) -> Run {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn newswatch");
    wait_bounded(child, format!("{cmd:?}"))
}

/// Runs with `input` on stdin.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn newswatch");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let run = wait_bounded(child, format!("{cmd:?}"));
    let _ = writer.join();
    run
}

/// Waits for `child` at most `RUN_LIMIT`, reading its output meanwhile so that a full
/// pipe cannot stall it.
fn wait_bounded(mut child: Child, what: String) -> Run {
    fn drain(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = from.read_to_end(&mut buf);
            buf
        })
    }
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for newswatch") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!(
                "{what} did not finish within {RUN_LIMIT:?}; stderr: {}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    finish(status.code().unwrap_or(-1), stdout, stderr)
}

fn finish(code: i32, stdout: Vec<u8>, stderr: Vec<u8>) -> Run {
    let stdout = String::from_utf8(stdout).expect("stdout is UTF-8");
    // Commands that print JSON print one object per line; others print plain text.
    let items = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    Run {
        code,
        items,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `newswatch scan --text --config <default> FILES...`
pub fn scan(files: &[&Path]) -> Run {
    let mut cmd = newswatch();
    cmd.arg("scan")
        .arg("--text")
        .arg("--config")
        .arg(default_config());
    cmd.args(files);
    run(&mut cmd)
}

/// Entity ids of a scanned item.
pub fn entity_ids(item: &Value) -> Vec<String> {
    item["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect()
}

/// Topic ids of a scanned item.
pub fn topic_ids(item: &Value) -> Vec<String> {
    item["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_string())
        .collect()
}

/// The entity entry with `id`, if found.
pub fn entity<'a>(item: &'a Value, id: &str) -> Option<&'a Value> {
    item["entities"].as_array()?.iter().find(|e| e["id"] == id)
}

/// Writes a config into a temporary directory and returns (dir, path).
pub fn temp_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("newswatch.toml");
    std::fs::write(&path, text).expect("write config");
    (dir, path)
}

pub mod daemon;
pub mod receiver;
pub mod server;

/// Polls `done` every 50 ms until it holds, for at most `limit` (then once more): what a
/// test waits on happens in another process or thread, and a wait that never ends would
/// hang the test run instead of failing one test.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// A config polling `urls`, storing in `data` below `dir`.
pub fn feeds_config(dir: &Path, urls: &[String]) -> PathBuf {
    let mut text = format!(
        "[storage]\npath = {:?}\n[poller]\ninterval = \"1h\"\nconcurrency = 8\nper_host = 8\ntimeout = \"10s\"\n",
        dir.join("data")
    );
    for url in urls {
        text.push_str(&format!("[[feeds]]\nurl = {url:?}\n"));
    }
    text.push_str(
        "[[entities]]\nid = \"putin\"\nkind = \"person\"\nname = \"Vladimir Putin\"\n\
         [[sinks]]\nid = \"log\"\nkind = \"log\"\n\
         [[topics]]\nid = \"museums\"\nquery = \"museum\"\nsinks = [\"log\"]\n",
    );
    let path = dir.join("newswatch.toml");
    std::fs::write(&path, text).expect("write config");
    path
}
