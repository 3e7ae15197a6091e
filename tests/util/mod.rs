//! Shared test helpers: run the real binary, locate fixtures, write configs.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
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
    // Every test server is on 127.0.0.1, which the fetcher refuses by default
    // (src/net.rs); set here once for every run of the binary. A test of the refusal
    // removes it.
    cmd.env("NEWSWATCH__POLLER__ALLOW_PRIVATE", "true")
        .env("NEWSWATCH__ALERT__ALLOW_PRIVATE", "true");
    cmd
}

/// Starts `cmd` (made by [`newswatch`]): the one place a test spawns the binary, both
/// for runs to completion ([`run_bounded`]) and for daemons ([`daemon::Daemon::spawn`]).
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// What a run printed, with stdout parsed as JSON lines.
#[derive(Debug)]
pub struct Run {
    /// The exit code ([`run_bounded`] fails the test if a signal killed the process).
    pub code: i32,
    /// The stdout lines that are JSON objects, parsed.
    pub items: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
    /// From the spawn to the exit.
    pub elapsed: Duration,
}

impl Run {
    /// The stdout lines that are not JSON objects (commands that print JSON print only
    /// JSON lines; others print plain text).
    pub fn other_lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| !l.starts_with('{'))
            .collect()
    }

    /// The items whose `source` is `path` as given on the command line.
    pub fn items_of(&self, path: &Path) -> Vec<&Value> {
        let source = path.display().to_string();
        self.items
            .iter()
            .filter(|item| item["source"] == source.as_str())
            .collect()
    }

    /// The stderr lines of the form `newswatch: <path>: ...`.
    pub fn messages_about(&self, path: &Path) -> Vec<&str> {
        let prefix = format!("newswatch: {}: ", path.display());
        self.stderr
            .lines()
            .filter(|line| line.starts_with(&prefix))
            .collect()
    }

    /// stderr, shortened for assertion messages.
    pub fn err(&self) -> String {
        shorten(&self.stderr, 3000)
    }
}

/// `text` cut to `max` characters, saying how long it was.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let head: String = text.chars().take(max).collect();
        format!("{head}… ({} bytes in all)", text.len())
    }
}

/// How long one run of the binary may take before the test fails, so that a hang
/// is a named failure and not a CI job that never ends.
pub const RUN_LIMIT: Duration = Duration::from_secs(300);

/// What a run reads on stdin.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Nothing: stdin is /dev/null.
    Null,
    /// These bytes, then the end of input.
    Bytes(&'a [u8]),
    /// These bytes, with the pipe left open until the process exits: input that never
    /// ends, as from a pipe whose writer stays.
    Open(&'a [u8]),
}

/// Runs `cmd` to completion within [`RUN_LIMIT`], stdin empty.
pub fn run(cmd: &mut Command) -> Run {
    run_bounded(cmd, Input::Null, RUN_LIMIT)
}

/// Runs `cmd` to completion within [`RUN_LIMIT`], with `input` on stdin.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Run {
    run_bounded(cmd, Input::Bytes(input), RUN_LIMIT)
}

/// Runs `cmd` to completion, stdin empty, within `limit`.
pub fn run_within(cmd: &mut Command, limit: Duration) -> Run {
    run_bounded(cmd, Input::Null, limit)
}

/// The one way tests run the binary to completion: `cmd` with `input` on stdin, its
/// output read meanwhile (so a full pipe cannot stall it), for at most `limit`.
///
/// Fails the test, naming the command and showing its stderr, if the process is still
/// running after `limit` (it is killed), if a signal killed it (a stack overflow aborts
/// with SIGABRT: a crash, never an outcome a test expects), if its stdout is not UTF-8,
/// or if a stdout line that starts like a JSON object is not one.
pub fn run_bounded(cmd: &mut Command, input: Input, limit: Duration) -> Run {
    fn drain(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = from.read_to_end(&mut buf);
            buf
        })
    }
    let (stdin, bytes, keep_open) = match input {
        Input::Null => (Stdio::null(), None, false),
        Input::Bytes(bytes) => (Stdio::piped(), Some(bytes.to_vec()), false),
        Input::Open(bytes) => (Stdio::piped(), Some(bytes.to_vec()), true),
    };
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!("{cmd:?}");
    let started = Instant::now();
    let mut child = spawn(cmd);
    // The binary may stop reading early (it refused the input); that is fine. A pipe
    // kept open is handed back, and closed once the process has exited.
    let writer = bytes.map(|bytes| {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
            let _ = pipe.flush();
            keep_open.then_some(pipe)
        })
    });
    let stdout = drain(child.stdout.take().expect("stdout pipe"));
    let stderr = drain(child.stderr.take().expect("stderr pipe"));
    // Bounded: every pass either returns, or fails the test once `limit` has passed.
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for newswatch") {
            break status;
        }
        if started.elapsed() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!(
                "{what} did not finish within {limit:?} and was killed; stderr:\n{}",
                shorten(&String::from_utf8_lossy(&stderr), 3000)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let stdout = stdout.join().expect("stdout reader");
    let stderr = String::from_utf8_lossy(&stderr.join().expect("stderr reader")).into_owned();
    if let Some(signal) = killed_by(&status) {
        panic!(
            "{what} was killed by signal {signal} ({}) after {elapsed:?} \
             (a stack overflow aborts with SIGABRT); stderr:\n{}",
            signal_name(signal),
            shorten(&stderr, 3000)
        );
    }
    let code = status.code().expect("an exit code when no signal");
    let stdout = String::from_utf8(stdout)
        .unwrap_or_else(|_| panic!("{what}: stdout is not UTF-8; stderr:\n{stderr}"));
    let items = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", shorten(l, 200)))
        })
        .collect();
    Run {
        code,
        items,
        stdout,
        stderr,
        elapsed,
    }
}

#[cfg(unix)]
fn killed_by(status: &ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(not(unix))]
fn killed_by(_status: &ExitStatus) -> Option<i32> {
    None
}

/// SIGABRT for 6, and so on, for the signals a crashed or killed test process gets.
fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "another signal",
    }
}

/// `newswatch scan --text --config <default> FILES...`, for [`scan`] or a bound of
/// the caller's.
pub fn scan_command(files: &[&Path]) -> Command {
    let mut cmd = newswatch();
    cmd.arg("scan")
        .arg("--text")
        .arg("--config")
        .arg(default_config());
    cmd.args(files);
    cmd
}

/// `newswatch scan --text --config <default> FILES...`, run within [`RUN_LIMIT`].
pub fn scan(files: &[&Path]) -> Run {
    run(&mut scan_command(files))
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
pub mod pg;
pub mod receiver;
pub mod records;
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
