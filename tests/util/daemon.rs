//! `newswatch run` as a child process: its stderr log captured, bounded waits on what
//! it logs, signals, and a bounded stop. A daemon left running by a failed assertion is
//! killed when its handle drops, so no test leaves a process behind.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{newswatch, spawn, wait_until};

/// `newswatch run --config <config>`, for callers that add to it before [`Daemon::spawn`].
pub fn run_command(config: &Path) -> Command {
    let mut cmd = newswatch();
    cmd.arg("run").arg("--config").arg(config);
    cmd
}

/// A running daemon and its log.
pub struct Daemon {
    child: Child,
    pub log: Log,
}

impl Daemon {
    /// Spawns `cmd` with stdout discarded and stderr captured into [`Daemon::log`]: a
    /// `run`, or any command a test signals or kills before it ends (a run to completion
    /// is [`crate::util::run`]'s).
    pub fn spawn(cmd: &mut Command) -> Daemon {
        let mut child = spawn(cmd.stdout(Stdio::null()).stderr(Stdio::piped()));
        let log = Log::drain(child.stderr.take().expect("stderr pipe"));
        Daemon { child, log }
    }

    /// `newswatch run --config <config>`, as [`Daemon::spawn`] runs it.
    pub fn run(config: &Path) -> Daemon {
        Daemon::spawn(&mut run_command(config))
    }

    /// Its exit status, if it has exited; does not wait.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll newswatch")
    }

    /// Sends `signal` ("TERM", "HUP", ...) with kill(1), as an operator or systemd would.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// SIGKILL, a crash the daemon cannot see coming, and waits for the exit.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL newswatch");
        self.child.wait().expect("wait for newswatch");
    }

    /// Waits until `deadline` for the exit. A daemon that hangs on shutdown must fail
    /// the test, not hang it: past the deadline it is killed and the test fails, naming
    /// `what` and showing its stderr.
    pub fn exit_by(&mut self, deadline: Instant, what: &str) -> ExitStatus {
        let limit = deadline.saturating_duration_since(Instant::now());
        if wait_until(limit, || self.exited().is_some()) {
            return self.child.wait().expect("wait for newswatch");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!("still running {what}; stderr:\n{}", self.log.text());
    }

    /// SIGTERM, then a successful exit within `limit` of it: the clean, prompt stop a
    /// service manager expects. Fails the test otherwise, with the daemon's stderr.
    pub fn stop(mut self, limit: Duration) {
        self.signal("TERM");
        let status = self.exit_by(Instant::now() + limit, &format!("{limit:?} after SIGTERM"));
        assert!(status.success(), "{status}; stderr:\n{}", self.log.text());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The daemon's stderr, line by line, read by a thread of its own so that the daemon
/// never blocks on a full pipe and a test can wait on its lines with a bound.
#[derive(Clone, Default)]
pub struct Log(Arc<(Mutex<Lines>, Condvar)>);

#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    /// Stderr reached its end: the daemon exited (or closed it), so no line will come.
    closed: bool,
}

impl Log {
    fn drain(stderr: impl Read + Send + 'static) -> Log {
        let log = Log::default();
        let writer = log.clone();
        std::thread::spawn(move || {
            let (state, changed) = &*writer.0;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                state.lock().unwrap().lines.push(line);
                changed.notify_all();
            }
            state.lock().unwrap().closed = true;
            changed.notify_all();
        });
        log
    }

    /// Lines logged so far; a mark for [`Log::wait_after`].
    pub fn mark(&self) -> usize {
        self.0 .0.lock().unwrap().lines.len()
    }

    /// Waits up to `limit` until `count` lines logged since the start contain `needle`.
    pub fn wait_for(&self, needle: &str, count: usize, limit: Duration) -> bool {
        self.wait_lines(0, &[needle], count, limit)
    }

    /// Waits up to `limit` for a line after `mark` containing every one of `needles`.
    pub fn wait_after(&self, mark: usize, needles: &[&str], limit: Duration) -> bool {
        self.wait_lines(mark, needles, 1, limit)
    }

    /// Waits until `count` lines after `mark` contain every one of `needles`; false
    /// after `limit`, or as soon as stderr has closed without them (no line can come).
    fn wait_lines(&self, mark: usize, needles: &[&str], count: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (state, changed) = &*self.0;
        let mut state = state.lock().unwrap();
        let (mut checked, mut seen) = (mark, 0);
        loop {
            for line in state.lines.iter().skip(checked) {
                if needles.iter().all(|n| line.contains(n)) {
                    seen += 1;
                }
            }
            checked = checked.max(state.lines.len());
            if seen >= count {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if state.closed || left.is_zero() {
                return false;
            }
            state = changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Everything logged so far, for failure messages.
    pub fn text(&self) -> String {
        self.0 .0.lock().unwrap().lines.join("\n")
    }
}
