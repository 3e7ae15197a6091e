//! Running as a service: process signals, and notifications to systemd.
//!
//! [`Signals`] turns SIGTERM and SIGINT into [`Signal::Shutdown`] and SIGHUP into
//! [`Signal::Reload`]. [`Notifier`] speaks the `sd_notify` protocol: `READY=1` once the
//! daemon serves, `RELOADING=1`/`READY=1` around a reload, `STOPPING=1`, `STATUS=` and
//! `WATCHDOG=1`. Outside systemd (`NOTIFY_SOCKET` unset) every notification is a no-op,
//! so the daemon calls them unconditionally. [`watchdog_interval`] says how often to
//! send `WATCHDOG=1`.
//!
//! Notifications are best effort: the service manager going away must not stop the
//! daemon, so a failed send is logged (a warning the first time, then at debug level)
//! and otherwise ignored.
//!
//! A daemon that runs for months must also not hoard memory: [`limit_allocator_arenas`]
//! and [`release_free_memory`] keep glibc's allocator from holding freed memory.
//!
//! `systemd/newswatch.service` is the unit that relies on this module; docs/service.md
//! is the contract.

use std::ffi::OsStr;
use std::future::poll_fn;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::signal::unix::SignalKind;

/// What a signal asks the daemon to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: stop scheduling, drain, flush, exit.
    Shutdown,
    /// SIGHUP: read the config again; keep the old one if the new one is invalid.
    Reload,
}

/// Why signals cannot be listened for.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot listen for {signal}: {error}")]
    Signal {
        signal: &'static str,
        error: io::Error,
    },
    #[error("cannot listen for signals outside the async runtime")]
    NoRuntime,
}

/// The signals the daemon handles, in the order they are checked when several are
/// pending at once: a shutdown wins over a reload.
const HANDLED: [(SignalKind, &str, Signal); 3] = [
    (SignalKind::terminate(), "SIGTERM", Signal::Shutdown),
    (SignalKind::interrupt(), "SIGINT", Signal::Shutdown),
    (SignalKind::hangup(), "SIGHUP", Signal::Reload),
];

/// Listens for SIGTERM, SIGINT and SIGHUP; see [`signals`].
#[derive(Debug)]
pub struct Signals {
    listeners: Vec<Listener>,
}

#[derive(Debug)]
struct Listener {
    stream: tokio::signal::unix::Signal,
    name: &'static str,
    meaning: Signal,
}

/// Starts listening for SIGTERM, SIGINT (→ [`Signal::Shutdown`]) and SIGHUP
/// (→ [`Signal::Reload`]).
///
/// Call it early, before `READY=1`: from then on these signals are handled here, and
/// until then a SIGHUP (a `systemctl reload` racing the start) would kill the process
/// by default. The handlers stay installed for the life of the process, so keep the
/// returned [`Signals`] and keep reading it until exit, or a later SIGTERM is swallowed.
///
/// Must be called within a Tokio runtime with I/O enabled (`enable_all`), as the
/// daemon's is; outside any runtime it returns [`ServiceError::NoRuntime`].
pub fn signals() -> Result<Signals, ServiceError> {
    Signals::listen(&HANDLED)
}

impl Signals {
    fn listen(handled: &[(SignalKind, &'static str, Signal)]) -> Result<Signals, ServiceError> {
        // tokio::signal panics outside a runtime; this is the error for it instead.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ServiceError::NoRuntime);
        }
        let listeners = handled
            .iter()
            .map(|&(kind, name, meaning)| {
                tokio::signal::unix::signal(kind)
                    .map(|stream| Listener {
                        stream,
                        name,
                        meaning,
                    })
                    .map_err(|error| ServiceError::Signal {
                        signal: name,
                        error,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Signals { listeners })
    }

    /// Waits for the next signal. `None` only when the runtime is shutting down and no
    /// signal can arrive any more.
    ///
    /// Cancel-safe: a signal is never lost by dropping this future (in `select!`).
    /// Several deliveries of one signal before it is read count as one.
    pub async fn next(&mut self) -> Option<Signal> {
        let (name, meaning) = poll_fn(|cx| {
            for listener in &mut self.listeners {
                match listener.stream.poll_recv(cx) {
                    Poll::Ready(Some(())) => {
                        return Poll::Ready(Some((listener.name, listener.meaning)))
                    }
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => {}
                }
            }
            Poll::Pending
        })
        .await?;
        tracing::info!(signal = name, "Received a signal.");
        Some(meaning)
    }
}

/// Sends state changes to systemd over `$NOTIFY_SOCKET`; a no-op without it.
///
/// Cheap to clone (the watchdog task and the main loop can hold one each); every
/// method returns at once and never fails: see the module docs.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    target: Option<Arc<Target>>,
}

#[derive(Debug)]
struct Target {
    address: SocketAddr,
    /// Set after the first failed send, so a gone service manager logs one warning
    /// rather than one per watchdog tick.
    warned: AtomicBool,
}

impl Notifier {
    /// The notifier systemd asks for: the socket in `$NOTIFY_SOCKET`, read once now.
    /// Disabled when the variable is unset or empty, or names an address kind this
    /// daemon cannot use (a warning says so).
    ///
    /// The variable is left in the environment: newswatch starts no child processes
    /// that could inherit it, and changing the environment of a multi-threaded process
    /// is not safe.
    pub fn from_env() -> Notifier {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(socket) if !socket.is_empty() => Notifier::for_socket(&socket),
            _ => Notifier::disabled(),
        }
    }

    /// A notifier that sends nothing (not under systemd, or in tests).
    pub fn disabled() -> Notifier {
        Notifier { target: None }
    }

    /// A notifier sending to `socket`, written as in `$NOTIFY_SOCKET`: a file system
    /// path, or `@name` for a Linux abstract socket.
    pub fn for_socket(socket: &OsStr) -> Notifier {
        match socket_address(socket) {
            Ok(address) => Notifier {
                target: Some(Arc::new(Target {
                    address,
                    warned: AtomicBool::new(false),
                })),
            },
            Err(err) => {
                tracing::warn!(
                    socket = %socket.to_string_lossy(),
                    error = %err,
                    "Cannot use the systemd notification socket; not sending notifications."
                );
                Notifier::disabled()
            }
        }
    }

    /// Whether notifications go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// `READY=1`: started (config and store open), or done reloading.
    pub fn ready(&self) {
        self.send(&[NotifyState::Ready]);
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=`, in one message: a reload has started. The
    /// timestamp is what systemd 253 and later require for `Type=notify-reload`; older
    /// versions and `Type=notify` ignore it. Follow with [`Notifier::ready`] whether or
    /// not the new config was accepted.
    pub fn reloading(&self) {
        if self.target.is_none() {
            return;
        }
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            // Cannot happen on Linux; still better to say RELOADING=1 alone.
            Err(err) => {
                tracing::debug!(error = %err, "Cannot read the monotonic clock.");
                self.send(&[NotifyState::Reloading]);
            }
        }
    }

    /// `STOPPING=1`: shutting down; systemd waits for the exit.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// `STATUS=<text>`, shown by `systemctl status`. Line breaks become spaces: a
    /// newline would end the status and start another assignment.
    pub fn status(&self, text: &str) {
        if self.target.is_none() {
            return;
        }
        let line = text.replace(['\n', '\r'], " ");
        self.send(&[NotifyState::Status(&line)]);
    }

    /// `WATCHDOG=1`: the daemon is alive; send it every [`watchdog_interval`].
    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        let Some(target) = &self.target else { return };
        let mut message = String::new();
        for state in states {
            message.push_str(&state.to_string());
            message.push('\n');
        }
        if let Err(err) = send_to(&target.address, message.as_bytes()) {
            if target.warned.swap(true, Ordering::Relaxed) {
                tracing::debug!(error = %err, "Could not notify systemd.");
            } else {
                tracing::warn!(
                    error = %err,
                    "Could not notify systemd; continuing without (further failures are logged at debug level)."
                );
            }
        }
    }
}

/// One datagram from a fresh unbound socket, as libsystemd does: no connection to go
/// stale if systemd re-creates its socket (daemon-reexec).
fn send_to(address: &SocketAddr, message: &[u8]) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let sent = socket.send_to_addr(message, address)?;
    if sent != message.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the notification was cut short",
        ));
    }
    Ok(())
}

/// The address in `$NOTIFY_SOCKET`. sd-notify 0.4 would treat `@name` as a file name;
/// systemd means a Linux abstract socket by it.
fn socket_address(socket: &OsStr) -> io::Result<SocketAddr> {
    let bytes = socket.as_bytes();
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(socket),
        Some(b'@') => abstract_address(&bytes[1..]),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "neither an absolute path nor an @abstract socket name",
        )),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_address(name: &[u8]) -> io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt as _;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt as _;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_address(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist only on Linux",
    ))
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// recommends, when the watchdog is on for this process. `None` when it is off.
///
/// `$WATCHDOG_PID`, when set, must be this process; when unset the watchdog applies
/// (as in libsystemd), which lets a test that cannot know the pid in advance turn it
/// on. Never zero, so it can go straight into `tokio::time::interval`.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    watchdog_interval_from(usec.as_deref(), pid.as_deref(), std::process::id())
}

fn watchdog_interval_from(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&usec| usec > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != me {
            return None;
        }
    }
    Some(Duration::from_micros((usec / 2).max(1)))
}

/// Caps glibc's malloc arenas at one per core; call it before the runtime's threads
/// start.
///
/// glibc gives each thread that meets a locked arena a new one, up to eight per core,
/// and memory freed in one arena serves only that arena. A daemon whose tokio and
/// blocking-pool threads take turns allocating ends with many half-empty arenas:
/// after a 2,000-feed ingest its idle RSS kept creeping (124 → 150 MiB in 15 min with
/// no polls), while with one arena per core it held at 117–119 MiB over 5 min. The
/// price is allocator contention in bursts: a cold `once` of the same feeds took
/// about 7% longer (BENCHMARKS.md, "Polling"), so only `run` sets the cap. An
/// operator's own `MALLOC_ARENA_MAX` is left to rule. A no-op with other C libraries.
pub fn limit_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets a tunable of the allocator; called before the
        // runtime starts its threads, and glibc takes its own lock for it anyway.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Hands memory freed since the last call back to the kernel. glibc keeps freed
/// chunks in its arenas for reuse; after the start (reading the story window) or a
/// burst of polls, that was 40 MiB an idle daemon held for nothing (see
/// BENCHMARKS.md, "Polling"). A no-op with other C libraries.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and returns the allocator's free lists; it is
    // thread-safe and takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    /// The environment is shared by every thread of the test binary: tests that set
    /// NOTIFY_SOCKET or WATCHDOG_* hold this lock. No other test reads those variables.
    static ENV: Mutex<()> = Mutex::new(());

    /// Sets (Some) or removes (None) variables for the length of `f`, then restores them.
    fn with_env<T>(vars: &[(&str, Option<&OsStr>)], f: impl FnOnce() -> T) -> T {
        let _guard = ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let saved: Vec<_> = vars
            .iter()
            .map(|(key, _)| (*key, std::env::var_os(key)))
            .collect();
        for (key, value) in vars {
            match value {
                Some(value) => std::env::set_var(key, value),
                None => std::env::remove_var(key),
            }
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        for (key, value) in saved {
            match value {
                Some(value) => std::env::set_var(key, value),
                None => std::env::remove_var(key),
            }
        }
        result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// A datagram socket standing in for systemd's, in a temporary directory.
    struct FakeSystemd {
        _dir: tempfile::TempDir,
        path: PathBuf,
        socket: UnixDatagram,
    }

    impl FakeSystemd {
        fn bind() -> FakeSystemd {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("notify");
            let socket = UnixDatagram::bind(&path).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            FakeSystemd {
                _dir: dir,
                path,
                socket,
            }
        }

        fn recv(&self) -> String {
            let mut buf = [0u8; 4096];
            let len = self.socket.recv(&mut buf).expect("a notification in 5 s");
            String::from_utf8(buf[..len].to_vec()).unwrap()
        }

        fn assert_nothing_pending(&self) {
            self.socket.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 4096];
            let got = self.socket.recv(&mut buf);
            self.socket.set_nonblocking(false).unwrap();
            match got {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                other => panic!("unexpected datagram: {other:?}"),
            }
        }
    }

    fn notifier_for(path: &Path) -> Notifier {
        Notifier::for_socket(path.as_os_str())
    }

    #[test]
    fn from_env_sends_every_state_to_the_notify_socket() {
        let systemd = FakeSystemd::bind();
        let notifier = with_env(&[("NOTIFY_SOCKET", Some(systemd.path.as_os_str()))], || {
            Notifier::from_env()
        });
        assert!(notifier.is_enabled());
        // Read once at construction: later changes to the environment do not matter.
        notifier.ready();
        assert_eq!(systemd.recv(), "READY=1\n");
        notifier.status("3 feeds, 120 items, 4 alerts");
        assert_eq!(systemd.recv(), "STATUS=3 feeds, 120 items, 4 alerts\n");
        notifier.watchdog();
        assert_eq!(systemd.recv(), "WATCHDOG=1\n");
        notifier.clone().stopping();
        assert_eq!(systemd.recv(), "STOPPING=1\n");
        systemd.assert_nothing_pending();
    }

    #[test]
    fn without_notify_socket_nothing_is_sent_and_nothing_fails() {
        for value in [None, Some(OsStr::new(""))] {
            let notifier = with_env(&[("NOTIFY_SOCKET", value)], Notifier::from_env);
            assert!(!notifier.is_enabled());
            notifier.ready();
            notifier.reloading();
            notifier.status("x");
            notifier.watchdog();
            notifier.stopping();
        }
        Notifier::default().ready();
    }

    #[test]
    fn reloading_sends_monotonic_usec_in_the_same_datagram() {
        let systemd = FakeSystemd::bind();
        let notifier = notifier_for(&systemd.path);
        let now = || match NotifyState::monotonic_usec_now().unwrap() {
            NotifyState::MonotonicUsec(usec) => usec,
            other => panic!("{other:?}"),
        };
        let before = now();
        notifier.reloading();
        let after = now();
        let message = systemd.recv();
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.len(), 2, "{message:?}");
        assert_eq!(lines[0], "RELOADING=1");
        let usec: i128 = lines[1]
            .strip_prefix("MONOTONIC_USEC=")
            .unwrap_or_else(|| panic!("{message:?}"))
            .parse()
            .unwrap();
        assert!(before <= usec && usec <= after, "{before} {usec} {after}");
        notifier.ready();
        assert_eq!(systemd.recv(), "READY=1\n");
    }

    #[test]
    fn a_status_cannot_smuggle_in_other_assignments() {
        let systemd = FakeSystemd::bind();
        let notifier = notifier_for(&systemd.path);
        notifier.status("polling\nREADY=1\r\nSTOPPING=1");
        assert_eq!(systemd.recv(), "STATUS=polling READY=1  STOPPING=1\n");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_at_sign_names_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("newswatch-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&address).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Notifier::for_socket(OsStr::new(&format!("@{name}"))).ready();
        let mut buf = [0u8; 64];
        let len = socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\n");
    }

    #[test]
    fn a_relative_socket_path_disables_the_notifier() {
        assert!(!Notifier::for_socket(OsStr::new("run/notify")).is_enabled());
    }

    /// A log sink for one test: what the fmt subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_gone_service_manager_is_warned_about_once_and_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        // A path where nothing listens: every send fails (ENOENT).
        let notifier = notifier_for(&dir.path().join("gone"));
        assert!(notifier.is_enabled());
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            notifier.ready();
            notifier.watchdog();
            notifier.clone().watchdog();
            notifier.reloading();
            notifier.stopping();
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(log.matches("Could not notify systemd").count(), 1, "{log}");
        assert_eq!(log.lines().count(), 1, "{log}");
    }

    #[test]
    fn watchdog_interval_is_half_the_timeout_for_this_process() {
        let half = Some(Duration::from_secs(60));
        assert_eq!(
            watchdog_interval_from(Some("120000000"), Some("42"), 42),
            half
        );
        // Without WATCHDOG_PID the watchdog applies, as in libsystemd.
        assert_eq!(watchdog_interval_from(Some("120000000"), None, 42), half);
        // Meant for another process (a parent that exec'd us without clearing it).
        assert_eq!(
            watchdog_interval_from(Some("120000000"), Some("7"), 42),
            None
        );
        assert_eq!(
            watchdog_interval_from(Some("120000000"), Some("pid"), 42),
            None
        );
        assert_eq!(watchdog_interval_from(None, Some("42"), 42), None);
        assert_eq!(watchdog_interval_from(Some("0"), None, 42), None);
        assert_eq!(watchdog_interval_from(Some("2s"), None, 42), None);
        assert_eq!(watchdog_interval_from(Some(""), None, 42), None);
        // Never zero: tokio's interval panics on a zero period.
        assert_eq!(
            watchdog_interval_from(Some("1"), None, 42),
            Some(Duration::from_micros(1))
        );
    }

    #[test]
    fn watchdog_interval_reads_the_environment() {
        let me = std::process::id().to_string();
        let got = with_env(
            &[
                ("WATCHDOG_USEC", Some(OsStr::new("2000000"))),
                ("WATCHDOG_PID", Some(OsStr::new(&me))),
            ],
            watchdog_interval,
        );
        assert_eq!(got, Some(Duration::from_secs(1)));
        let got = with_env(
            &[
                ("WATCHDOG_USEC", Some(OsStr::new("2000000"))),
                ("WATCHDOG_PID", None),
            ],
            watchdog_interval,
        );
        assert_eq!(got, Some(Duration::from_secs(1)));
        let got = with_env(
            &[("WATCHDOG_USEC", None), ("WATCHDOG_PID", None)],
            watchdog_interval,
        );
        assert_eq!(got, None);
    }

    #[test]
    fn signals_outside_a_runtime_is_an_error_not_a_panic() {
        let err = signals().unwrap_err();
        assert!(matches!(err, ServiceError::NoRuntime), "{err}");
        assert!(err.to_string().contains("runtime"), "{err}");
    }

    // Only SIGHUP is sent to this process: once tokio handles SIGTERM or SIGINT it
    // never gives them back, and a test binary deaf to them could not be interrupted.
    // tests/service.rs sends both to the real daemon.
    #[tokio::test]
    async fn sighup_means_reload() {
        let mut signals = Signals::listen(&[(SignalKind::hangup(), "SIGHUP", Signal::Reload)])
            .expect("listen for SIGHUP");
        let sent = std::process::Command::new("kill")
            .arg("-HUP")
            .arg(std::process::id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let got = tokio::time::timeout(Duration::from_secs(5), signals.next()).await;
        assert_eq!(got, Ok(Some(Signal::Reload)));
    }

    #[test]
    fn shutdown_signals_are_checked_before_reload() {
        let meanings: Vec<_> = HANDLED.iter().map(|(_, name, m)| (*name, *m)).collect();
        assert_eq!(
            meanings,
            [
                ("SIGTERM", Signal::Shutdown),
                ("SIGINT", Signal::Shutdown),
                ("SIGHUP", Signal::Reload)
            ]
        );
    }
}
