//! A real PostgreSQL 15 server for the cluster tests, and a fresh database per test.
//!
//! `.ci/test` starts one server for the whole run and sets `NEWSWATCH_TEST_PG_URL`;
//! without it (a plain `cargo test`), the first test that asks starts one for this test
//! process, the same way, and it is stopped when the process exits. Databases are made
//! and inspected with the `psql` binary, so the tests need no PostgreSQL client crate of
//! their own.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where Debian's postgresql-15 puts the server binaries.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The admin URL of a server the caller started (`.ci/test` sets it).
pub const URL_VAR: &str = "NEWSWATCH_TEST_PG_URL";

/// The role every test server is made with (`initdb -U`); trust authentication.
const ROLE: &str = "newswatch";

/// The server directories are `/tmp/newswatch-pg.XXXXXX`, as `.ci/test` makes them.
const DIR_PREFIX: &str = "newswatch-pg.";

/// How long one psql run may take: a CREATE or DROP DATABASE waits for a checkpoint,
/// slow when many tests and daemons share two cores.
const PSQL_LIMIT: Duration = Duration::from_secs(60);

const MISSING: &str = "PostgreSQL 15 server binaries not found at /usr/lib/postgresql/15/bin: \
    install postgresql-15 (apt-get install postgresql-15), or set NEWSWATCH_TEST_PG_URL to a \
    server where user newswatch may create databases; .ci/test does both";

/// The admin URL (database `postgres`, a role that may create databases) of the test
/// server: `NEWSWATCH_TEST_PG_URL` when set, else a server this process starts once.
///
/// Panics, saying why, when no server can be had; every later call panics the same way
/// at once rather than trying again.
pub fn admin_url() -> String {
    if let Ok(url) = std::env::var(URL_VAR) {
        if !url.is_empty() {
            return url;
        }
    }
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    match SERVER.get_or_init(start_server) {
        Ok(url) => url.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// A database of its own for one test, dropped when this is dropped.
#[derive(Debug)]
pub struct TestDb {
    /// `postgres://newswatch@127.0.0.1:PORT/NAME`: what a daemon's config points at.
    pub url: String,
    pub name: String,
}

/// Creates a fresh, uniquely named database on the test server.
pub fn database() -> TestDb {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let admin = admin_url();
    // Unique within the process by the counter, across processes sharing a server by
    // the pid, and across runs (a killed run leaves its databases behind on a server
    // that outlives it) by the clock.
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() % 1_000_000_000_000)
        .unwrap_or(0);
    let name = format!(
        "nw_test_{}_{}_{clock}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    psql(&admin, &format!("CREATE DATABASE \"{name}\""));
    TestDb {
        url: url_with_database(&admin, &name),
        name,
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // FORCE: a daemon of the test may still hold connections (it is killed, not
        // stopped, when a test fails). Errors are ignored: a drop must not panic during
        // a test's unwinding, and a database left behind goes with the server.
        let _ = try_psql(
            &admin_url(),
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        );
    }
}

/// Runs `sql` (one or more statements) on the database at `url` and returns what it
/// printed, unaligned and without headers, trimmed: `select 1` gives `1`, a row of two
/// columns `a|b`. Panics with psql's stderr when any statement fails.
pub fn psql(url: &str, sql: &str) -> String {
    try_psql(url, sql).unwrap_or_else(|why| panic!("{why}"))
}

/// psql on `url` running `sql`, for a caller that runs it its own way (in the
/// background, say, to hold a connection open).
pub fn psql_command(url: &str, sql: &str) -> Command {
    let mut cmd = pg_command(&psql_binary());
    cmd.args([
        "-X",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        url,
        "-c",
        sql,
    ]);
    cmd
}

fn try_psql(url: &str, sql: &str) -> Result<String, String> {
    let output = run(&mut psql_command(url, sql), PSQL_LIMIT)?;
    if !output.status.success() {
        return Err(format!(
            "psql on {url} failed ({}) running {sql:?}:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The server's psql when the server is installed, else the client package's.
fn psql_binary() -> PathBuf {
    [
        Path::new(PG_BIN).join("psql"),
        PathBuf::from("/usr/bin/psql"),
    ]
    .into_iter()
    .find(|path| path.exists())
    .unwrap_or_else(|| PathBuf::from("psql"))
}

/// `admin` with its database (the path) replaced by `name`, anything after it kept.
fn url_with_database(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin, String::new()),
    };
    let authority = base.find("://").map_or(0, |at| at + 3);
    let root = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    format!("{root}/{name}{query}")
}

/// A command for one of the PostgreSQL programs, with no `PG*` setting of the caller's
/// (PGHOST, PGOPTIONS, PGDATABASE...) overriding what the tests ask for, and a bound on
/// connecting so that a server that does not answer fails the test instead of hanging.
fn pg_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    cmd.env("PGCONNECT_TIMEOUT", "10").stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion, its output read meanwhile, for at most `limit` (then it
/// is killed and this is an error).
fn run(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    fn drain(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = from.read_to_end(&mut buf);
            buf
        })
    }
    let what = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let stdout = drain(child.stdout.take().expect("stdout pipe"));
    let stderr = drain(child.stderr.take().expect("stderr pipe"));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = stderr.join().unwrap_or_default();
                return Err(format!(
                    "{what} did not finish within {limit:?} and was killed; stderr:\n{}",
                    String::from_utf8_lossy(&stderr).trim()
                ));
            }
            Err(e) => return Err(format!("cannot wait for {what}: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// The directory of the server this process started, for [`stop_at_exit`].
static SERVER_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Starts a throwaway server as `.ci/test` does and returns its admin URL.
fn start_server() -> Result<String, String> {
    let bin = Path::new(PG_BIN);
    if !bin.join("initdb").exists() || !bin.join("pg_ctl").exists() {
        return Err(MISSING.to_string());
    }
    remove_abandoned_servers();
    let user = server_user()?;
    // Under /tmp, not $TMPDIR: nobody must be able to reach it, and the socket path
    // inside must stay under the ~107 bytes a unix socket name may have.
    let dir = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir_in("/tmp")
        .map_err(|e| format!("cannot make a directory for the test server in /tmp: {e}"))?
        .keep();
    let result = std::fs::write(dir.join("owner.pid"), std::process::id().to_string())
        .map_err(|e| format!("cannot write {}: {e}", dir.display()))
        .and_then(|()| {
            // From here on the directory is removed at exit, whatever happens next.
            let _ = SERVER_DIR.set(dir.clone());
            static AT_EXIT: Once = Once::new();
            AT_EXIT.call_once(|| {
                // SAFETY: registers a plain function with no arguments; it runs once at
                // exit, touching only SERVER_DIR, which is set and never changes.
                unsafe { libc::atexit(stop_at_exit) };
            });
            init_and_start(bin, &dir, user)
        });
    if result.is_err() {
        stop_and_remove(&dir);
    }
    result
}

/// initdb, the settings, and a started server in `dir`, which ends up owned by `user`
/// (None: this process's own user).
fn init_and_start(bin: &Path, dir: &Path, user: Option<(u32, u32)>) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))
            .map_err(|e| format!("cannot hand {} to uid {uid}: {e}", dir.display()))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display()))?;
    let data = dir.join("data");
    // Run inside the directory: the test's own may not be readable by nobody.
    let server_command = |program: &str| {
        let mut cmd = pg_command(&bin.join(program));
        cmd.current_dir(dir);
        if let Some((uid, gid)) = user {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        cmd
    };
    let mut initdb = server_command("initdb");
    initdb.arg("-D").arg(&data).args([
        "-A",
        "trust",
        "-U",
        ROLE,
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    ]);
    let output = run(&mut initdb, Duration::from_secs(120))?;
    if !output.status.success() {
        return Err(format!(
            "initdb for the test server failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // Durability is worth nothing to a server deleted with the test process. 200
    // connections: tests run three daemons each with a pool, and many tests at once.
    // The same settings as .ci/test's.
    let settings = format!(
        "\n# newswatch test server (tests/util/pg.rs)\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = '{}'\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         max_connections = 200\n",
        dir.display()
    );
    let conf = data.join("postgresql.conf");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .and_then(|mut file| std::io::Write::write_all(&mut file, settings.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;

    // The port is free when picked and may be taken before the server binds it: then
    // another one, a few times.
    let log = dir.join("server.log");
    let mut port = 0;
    for attempt in 1..=3 {
        port = free_port()?;
        // Removed, not emptied: the server's user must be able to create it.
        let _ = std::fs::remove_file(&log);
        let mut start = server_command("pg_ctl");
        start.arg("-D").arg(&data).arg("-l").arg(&log).args([
            "-o",
            &format!("-p {port}"),
            "-w",
            "-t",
            "30",
            "start",
        ]);
        let output = run(&mut start, Duration::from_secs(60))?;
        if output.status.success() {
            break;
        }
        let server_log = std::fs::read_to_string(&log).unwrap_or_default();
        if attempt == 3 || !server_log.contains("could not bind") {
            return Err(format!(
                "the test server did not start ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr),
                server_log
            ));
        }
    }

    // pg_ctl -w waits for the server to say it is ready; check it answers on TCP, as
    // the tests connect, for up to 30 s.
    let started = Instant::now();
    loop {
        let mut ready = pg_command(&bin.join("pg_isready"));
        ready.args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", ROLE]);
        ready.args(["-d", "postgres"]);
        if run(&mut ready, Duration::from_secs(15))?.status.success() {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "the test server on 127.0.0.1:{port} did not accept connections within \
                 30 s; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(format!("postgres://{ROLE}@127.0.0.1:{port}/postgres"))
}

/// A port on 127.0.0.1 that nothing listens on now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

/// initdb and the server refuse to run as root: as root, they run as nobody (uid, gid);
/// as anyone else, as that user (None).
fn server_user() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: the name is a NUL-terminated literal; the record getpwnam returns is read
    // at once, and this runs once per process (inside the OnceLock), so no other call
    // overwrites it meanwhile.
    let entry = unsafe { libc::getpwnam(c"nobody".as_ptr()) };
    if entry.is_null() {
        return Err(
            "the tests run as root and there is no user nobody to run the \
                    PostgreSQL test server as (initdb refuses root)"
                .to_string(),
        );
    }
    // SAFETY: not null, so a valid passwd record.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some((uid, gid)))
}

/// Registered with atexit: the server of this process goes when the process does,
/// whether the tests passed or failed.
extern "C" fn stop_at_exit() {
    if let Some(dir) = SERVER_DIR.get() {
        stop_and_remove(dir);
    }
}

/// Stops the server in `dir`, if one runs, and removes `dir`. Never panics: it runs
/// at exit and while cleaning up after a failure.
fn stop_and_remove(dir: &Path) {
    if let Some(pid) = postmaster_of(&dir.join("data")) {
        // SIGQUIT is what `pg_ctl stop -m immediate` sends: no checkpoint, which is
        // worth nothing here; sending it ourselves spares running pg_ctl at exit.
        // SAFETY: kill has no memory effects; pid is the server's (postmaster_of).
        unsafe { libc::kill(pid, libc::SIGQUIT) };
        let started = Instant::now();
        while is_running(pid) && started.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if is_running(pid) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The pid of the server running on `data`, from its postmaster.pid, if that process
/// is still that server: a pid in a file left behind may since be another program's.
fn postmaster_of(data: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let data = data.to_str()?;
    cmdline
        .split(|&b| b == 0)
        .any(|arg| arg == data.as_bytes())
        .then_some(pid)
}

/// Whether `pid` runs: it exists and is not a zombie (in a container whose first
/// process does not reap orphans, a stopped server stays a zombie).
fn is_running(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may hold spaces.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// Stops the servers and removes the directories of test runs that were killed before
/// they could (a test process killed by a signal runs no atexit handler; `.ci/test`
/// killed with SIGKILL runs no trap). Directories whose owner still runs are left.
fn remove_abandoned_servers() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        // A directory without an owner file is being set up right now, or holds no
        // server; either way it is not ours to remove.
        let owner = std::fs::read_to_string(dir.join("owner.pid"))
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok());
        if owner.is_some_and(|owner| !is_running(owner)) {
            stop_and_remove(&dir);
        }
    }
}
