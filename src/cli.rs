//! The command line: parses arguments, runs a command, maps the outcome to an exit code.
//!
//! Exit codes: 0 success; 1 a command failed (for `scan`, an input could not be read
//! at all; for `once`, every feed failed); 2 the config is invalid or the arguments
//! are wrong.
//!
//! docs/cli.md is the contract: every command and flag, what it prints, exit codes.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

use crate::config::{self, Config};
use crate::daemon;
use crate::parse::{self, Parsed};
use crate::service::{self, Notifier};
use crate::store::{AlertStatus, ItemQuery, Listing, SharedStore, SledStore, StoreError};
use crate::view;

/// The largest input `scan` reads; a larger file is refused rather than exhausting memory.
const MAX_SCAN_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Parser)]
#[command(
    name = "newswatch",
    version,
    about = "Monitor news feeds for tracked topics"
)]
pub struct Args {
    /// Log format on stderr.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config; print every error with its file, key and reason.
    Check {
        /// Config file [default: $NEWSWATCH_CONFIG, else /etc/newswatch/newswatch.toml
        /// under systemd, else config/newswatch.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Also fetch every feed once and read it, saying per feed whether it gives
        /// items (and, for an HTML page, which feed url it advertises). Stores nothing.
        #[arg(long)]
        online: bool,
    },
    /// Run the pipeline over local files (feeds, HTML, text; `-` is stdin) and print one
    /// JSON line per item. Stores and alerts nothing.
    Scan {
        /// Config file [default: $NEWSWATCH_CONFIG, else /etc/newswatch/newswatch.toml
        /// under systemd, else config/newswatch.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Include the cleaned text of each item.
        #[arg(long)]
        text: bool,
        /// Say why each topic matched or did not.
        #[arg(long)]
        explain: bool,
        /// Files read and analysed at once, one per thread; the output keeps the order
        /// of FILE... whatever the number [default: the number of cores].
        #[arg(long, short, value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// Files to scan.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Poll every feed once, process and store what is new, then exit (cron, tests).
    Once {
        /// Config file [default: $NEWSWATCH_CONFIG, else /etc/newswatch/newswatch.toml
        /// under systemd, else config/newswatch.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// The daemon: poll, process and store until SIGINT or SIGTERM.
    Run {
        /// Config file [default: $NEWSWATCH_CONFIG, else /etc/newswatch/newswatch.toml
        /// under systemd, else config/newswatch.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Show stored items, newest first.
    Items {
        /// Config file [default: $NEWSWATCH_CONFIG, else /etc/newswatch/newswatch.toml
        /// under systemd, else config/newswatch.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Only items that matched this topic id.
        #[arg(long)]
        topic: Option<String>,
        /// Only items fetched since then: a duration ago ("2h", "3d") or a date
        /// ("2025-03-14", "2025-03-14T10:00:00Z").
        #[arg(long, value_parser = parse_since)]
        since: Option<DateTime<Utc>>,
        /// At most this many items.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show every configured feed's health: ok, stale, failing, gone or moved.
    Feeds {
        /// Config file [default: $NEWSWATCH_CONFIG, else /etc/newswatch/newswatch.toml
        /// under systemd, else config/newswatch.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a topic of the config, or a query, over the stored history with the
    /// daemon's rules, and print what would have alerted: items and stories, by day.
    Backtest {
        /// Config file [default: $NEWSWATCH_CONFIG, else /etc/newswatch/newswatch.toml
        /// under systemd, else config/newswatch.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The topic of the config to run [default: every topic].
        #[arg(long, conflicts_with = "query")]
        topic: Option<String>,
        /// A query to run instead, with the config's entities (docs/query.md).
        #[arg(long)]
        query: Option<String>,
        /// Items fetched since then: a duration ago ("7d", "36h") or a date
        /// ("2025-03-14", "2025-03-14T10:00:00Z").
        #[arg(long, value_parser = parse_since, default_value = crate::api::BACKTEST_SINCE)]
        since: DateTime<Utc>,
        /// Say why each item matched.
        #[arg(long)]
        explain: bool,
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Inspect the alert outbox and replay failed alerts.
    Alerts {
        /// Config file [default: $NEWSWATCH_CONFIG, else /etc/newswatch/newswatch.toml
        /// under systemd, else config/newswatch.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Only alerts with this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// Put this failed alert back in the queue (it is sent by the next `once` or
        /// by the running daemon).
        #[arg(long, conflicts_with = "retry_all_failed")]
        retry: Option<String>,
        /// Put every failed alert back in the queue.
        #[arg(long)]
        retry_all_failed: bool,
        /// At most this many alerts.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check the store (with the daemon stopped: it needs the store to itself) or back
    /// it up (while the daemon runs too: through its API when it holds the store).
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Read every record and index entry; exit 1 if any is damaged or missing.
    Check {
        /// Config file [default: $NEWSWATCH_CONFIG, else /etc/newswatch/newswatch.toml
        /// under systemd, else config/newswatch.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Copy the store into DIR (new or empty), then check the copy.
    Backup {
        /// Config file [default: $NEWSWATCH_CONFIG, else /etc/newswatch/newswatch.toml
        /// under systemd, else config/newswatch.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Where the copy goes; open it by pointing [storage] path at it.
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Pending,
    Delivered,
    Failed,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(args.log_format);
    match run(args) {
        Ok(code) => code,
        // A reader that stops early (`newswatch scan ... | head`) is not an error.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("newswatch: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<io::Error>()
            .map(io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(|e| e.io_error_kind())
            });
        kind == Some(io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a journal or a log file gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(io::stderr);
    // try_init: a second init (tests calling main twice) is not an error worth dying for.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Check { config, online } => Ok(check(config, online)),
        Command::Scan {
            config,
            text,
            explain,
            jobs,
            files,
        } => {
            let config = match load_config(config) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            let jobs = jobs.map_or_else(crate::par::cores, usize::from);
            scan(&config, &files, text, explain, jobs)
        }
        Command::Once { config } => {
            let config = match load_config(config) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            let summary = runtime()?.block_on(daemon::once(&config))?;
            println!(
                "polled {} feeds ({} not modified, {} failed): {} new items, {} on a topic, {} new stories; alerts: {} delivered, {} to retry, {} failed",
                summary.feeds_polled,
                summary.feeds_not_modified,
                summary.feeds_failed,
                summary.items_new,
                summary.items_matched,
                summary.stories_new,
                summary.alerts_delivered,
                summary.alerts_retrying,
                summary.alerts_failed
            );
            Ok(once_exit(&summary))
        }
        Command::Run { config } => {
            let path = config.unwrap_or_else(config::default_path);
            let config = match load_config(Some(path.clone())) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            // Only the long-running daemon: `once` exits, and pays for the cap in
            // throughput (see the function).
            service::limit_allocator_arenas();
            runtime()?.block_on(async {
                let service = daemon::Service {
                    config_path: path,
                    notifier: Notifier::from_env(),
                    signals: service::signals().context("listening for signals")?,
                };
                daemon::run(config, service).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Items {
            config,
            topic,
            since,
            limit,
            json,
        } => {
            let config = match load_config(config) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            items(&config, topic, since, limit, json)
        }
        Command::Feeds { config, json } => {
            let config = match load_config(config) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            feeds(&config, json)
        }
        Command::Backtest {
            config,
            topic,
            query,
            since,
            explain,
            json,
        } => {
            let config = match load_config(config) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            backtest(&config, topic, query, since, explain, json)
        }
        Command::Alerts {
            config,
            status,
            retry,
            retry_all_failed,
            limit,
            json,
        } => {
            let config = match load_config(config) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            alerts(&config, status, retry, retry_all_failed, limit, json)
        }
        Command::Store { action } => {
            let (config, backup_to) = match action {
                StoreAction::Check { config } => (config, None),
                StoreAction::Backup { config, dir } => (config, Some(dir)),
            };
            let config = match load_config(config) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            store_command(&config, backup_to.as_deref())
        }
    }
}

/// `store check`, and `store backup DIR` (a copy, then a check of the copy).
fn store_command(config: &Config, backup_to: Option<&Path>) -> anyhow::Result<ExitCode> {
    if let config::Backend::Postgres(pg) = &config.storage.backend {
        // The database keeps its own consistency; its tools back it up (docs/cluster.md).
        anyhow::bail!(
            "`newswatch store check` and `store backup` are for the embedded store; this \
             config stores in PostgreSQL at {}: `newswatch check` says whether it is \
             reachable and at which schema version, and pg_dump backs it up",
            pg.url
        );
    }
    let path = &config.storage.path;
    let store = match SledStore::open(path) {
        Err(StoreError::Locked { .. }) => match (backup_to, &config.api) {
            (Some(dir), Some(api)) => return backup_through_api(&ApiReader::new(api)?, dir, path),
            (Some(_), None) => anyhow::bail!(
                "the store at {} is in use by another newswatch process (a running \
                 `newswatch run`?), and the config has no [api] to ask it for a backup: \
                 add [api] listen and restart it, or stop it to back up the store here",
                path.display()
            ),
            (None, _) => anyhow::bail!(
                "the store at {} is in use by another newswatch process (a running \
                 `newswatch run`?); checking needs the store to itself: stop the daemon \
                 first, or check a backup of it (`newswatch store backup DIR` works \
                 while it runs)",
                path.display()
            ),
        },
        opened => opened?,
    };
    let (checked, report) = match backup_to {
        None => (path.to_path_buf(), store.check()?),
        Some(dir) => {
            let (copied, copy) = store.backup(dir)?;
            drop(store);
            println!(
                "copied {} entries of {} trees from {} to {}",
                copied.entries,
                copied.trees,
                path.display(),
                dir.display()
            );
            (dir.to_path_buf(), copy.check()?)
        }
    };
    for (tree, entries) in &report.entries {
        println!("{tree:<12} {entries:>10} entries");
    }
    if report.is_clean() {
        println!(
            "{}: every record decodes and every index agrees",
            checked.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (kind, (count, examples)) in &report.problems {
        println!("problem: {count} × {kind}; e.g. {}", examples.join(", "));
    }
    eprintln!(
        "newswatch: the store at {} has {} problems (listed above); `items` and `alerts` \
         skip what they cannot read",
        checked.display(),
        report.problem_count()
    );
    Ok(ExitCode::from(1))
}

/// Where the shipped systemd unit lets the daemon write a backup
/// (`StateDirectory=newswatch-backups` in systemd/newswatch.service).
const BACKUPS_UNDER_SYSTEMD: &str = "/var/lib/newswatch-backups";

/// `store backup DIR` while a daemon holds the store: the daemon makes the copy
/// (writes wait meanwhile) and checks it. DIR is made absolute, since the daemon does
/// not share our working directory.
fn backup_through_api(api: &ApiReader, dir: &Path, store: &Path) -> anyhow::Result<ExitCode> {
    let dir = std::path::absolute(dir)
        .with_context(|| format!("making {} an absolute path", dir.display()))?;
    let url = format!("{}/api/store/backup", api.base);
    eprintln!(
        "newswatch: the store at {} is held by a running newswatch; asking it for the \
         backup through its API at {}",
        store.display(),
        api.base
    );
    let ask = async {
        let mut request = reqwest::Client::new()
            .post(&url)
            .query(&[("dir", dir.display().to_string())])
            .timeout(std::time::Duration::from_secs(3600));
        if let Some(token) = &api.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        Ok::<_, reqwest::Error>((status, response.text().await?))
    };
    let (status, body) = runtime()?.block_on(ask).with_context(|| {
        format!(
            "the store at {} is in use by a running newswatch, and its API at {url} did \
             not answer; stop the daemon, or check [api] in the config",
            store.display()
        )
    })?;
    let answer: Value = serde_json::from_str(&body)
        .with_context(|| format!("the answer of {url} ({status}) is not JSON: {body}"))?;
    if !status.is_success() {
        anyhow::bail!(
            "the running newswatch did not back up the store ({status}): {}; it writes the \
             copy as the service, so only where the service may write: under the shipped \
             systemd unit, in a new directory under {BACKUPS_UNDER_SYSTEMD}",
            answer["error"].as_str().unwrap_or(body.trim())
        );
    }
    // The daemon may see another file system than this command does: under systemd's
    // PrivateTmp its /tmp is its own, and a copy made there vanishes with the service.
    let visible = match std::fs::read_dir(&dir) {
        Ok(mut entries) => entries.next().is_some(),
        // Under the unit the copy belongs to the service's user, in a directory only
        // it (and root) may read: the daemon's word has to do.
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!(
                "newswatch: cannot look into {} from here ({err}); the daemon says the copy \
                 is there",
                dir.display()
            );
            true
        }
        Err(_) => false,
    };
    if !visible {
        anyhow::bail!(
            "the running newswatch says it backed up the store into {}, but that directory \
             is {} from here: the service sees another file system (a private /tmp under \
             systemd); back up into a new directory under {BACKUPS_UNDER_SYSTEMD} instead",
            dir.display(),
            if dir.exists() { "empty" } else { "missing" }
        );
    }
    println!(
        "copied {} entries of {} trees from {} to {} (made by the running daemon)",
        answer["entries"],
        answer["trees"],
        store.display(),
        dir.display()
    );
    if let Some(entries) = answer["checked"].as_object() {
        for (tree, count) in entries {
            println!("{tree:<12} {count:>10} entries");
        }
    }
    let problems = answer["problems"].as_array().cloned().unwrap_or_default();
    if problems.is_empty() {
        println!(
            "{}: every record decodes and every index agrees",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &problems {
        println!(
            "problem: {} × {}; e.g. {}",
            problem["count"],
            problem["kind"].as_str().unwrap_or("?"),
            problem["examples"]
                .as_array()
                .map(|e| e
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        );
    }
    eprintln!(
        "newswatch: the backup at {} has {} kinds of problems (listed above)",
        dir.display(),
        problems.len()
    );
    Ok(ExitCode::from(1))
}

fn alerts(
    config: &Config,
    status: Option<StatusArg>,
    retry: Option<String>,
    retry_all_failed: bool,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let path = &config.storage.path;
    let store = match open_for_reading(config)? {
        Reader::Store(store) => store,
        Reader::Api(api) if retry.is_none() && !retry_all_failed => {
            let mut query = vec![("limit", api.limit(limit).to_string())];
            query.extend(status.map(|s| {
                let status = match s {
                    StatusArg::Pending => AlertStatus::Pending,
                    StatusArg::Delivered => AlertStatus::Delivered,
                    StatusArg::Failed => AlertStatus::Failed,
                };
                ("status", status.as_str().to_string())
            }));
            let rows = api.get("alerts", &query, path)?;
            print_rows(&rows, json, alert_line)?;
            if rows.is_empty() && !json {
                eprintln!("newswatch: no alerts");
            }
            return Ok(ExitCode::SUCCESS);
        }
        Reader::Api(_) => anyhow::bail!(
            "the store at {} is in use by a running newswatch; stop it to requeue alerts \
             (its API only reads)",
            path.display()
        ),
    };
    let flush = |store: &SharedStore| -> anyhow::Result<()> {
        runtime()?
            .block_on(store.flush())
            .context("flushing the store")?;
        Ok(())
    };
    if let Some(id) = retry {
        return match store.get_alert(&id).context("reading the outbox")? {
            None => {
                eprintln!("newswatch: no alert {id:?}");
                Ok(ExitCode::from(1))
            }
            Some(alert) if alert.status != AlertStatus::Failed => {
                eprintln!(
                    "newswatch: alert {id} is {}, not failed; nothing to retry",
                    alert.status.as_str()
                );
                Ok(ExitCode::from(1))
            }
            Some(_) => {
                store
                    .retry_alert(&id, Utc::now())
                    .context("requeueing the alert")?;
                flush(&store)?;
                println!("alert {id} queued again");
                Ok(ExitCode::SUCCESS)
            }
        };
    }
    if retry_all_failed {
        let mut count = 0;
        for alert in store
            .alerts(Some(AlertStatus::Failed), usize::MAX)
            .context("reading the outbox")?
        {
            if store
                .retry_alert(&alert.id, Utc::now())
                .context("requeueing an alert")?
            {
                count += 1;
            }
        }
        flush(&store)?;
        println!("{count} failed alerts queued again");
        return Ok(ExitCode::SUCCESS);
    }
    let status = status.map(|s| match s {
        StatusArg::Pending => AlertStatus::Pending,
        StatusArg::Delivered => AlertStatus::Delivered,
        StatusArg::Failed => AlertStatus::Failed,
    });
    let found = store.alerts(status, limit).context("reading the outbox")?;
    report_damage(&found, "alerts", path);
    let rows: Vec<Value> = found.iter().map(view::alert_json).collect();
    print_rows(&rows, json, alert_line)?;
    if rows.is_empty() && !json {
        eprintln!("newswatch: no alerts");
    }
    Ok(ExitCode::SUCCESS)
}

/// `once`'s exit code: 1 when feeds were configured and none could be polled, so that
/// cron and systemd timers see a run that did nothing; failures of some feeds only are
/// said on stderr and exit 0 (the others were stored). A 304 counts as polled.
fn once_exit(summary: &daemon::Summary) -> ExitCode {
    let (failed, polled) = (summary.feeds_failed, summary.feeds_polled);
    if failed == 0 {
        return ExitCode::SUCCESS;
    }
    if failed == polled {
        eprintln!(
            "newswatch: no feed could be polled: all {failed} failed (the log above says why)"
        );
        return ExitCode::from(1);
    }
    eprintln!("newswatch: {failed} of {polled} feeds failed (the log above says why)");
    ExitCode::SUCCESS
}

/// Says on stderr what a listing had to skip; the records shown are still good, so
/// this is a warning and the exit code stays 0.
fn report_damage<T>(listing: &Listing<T>, what: &str, store: &Path) {
    if listing.skipped > 0 {
        let (noun, verb) = match listing.skipped {
            1 => (what.trim_end_matches('s'), "was"),
            _ => (what, "were"),
        };
        eprintln!(
            "newswatch: warning: {} stored {noun} could not be read and {verb} skipped \
             (damaged records in the store at {}); the rest are shown",
            listing.skipped,
            store.display()
        );
    }
    if listing.cut_short {
        eprintln!(
            "newswatch: warning: listing {what} stopped early at a damaged part of the \
             store at {}; older {what} may be missing",
            store.display()
        );
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `--since`: a duration ago ("2h") or a date or timestamp.
fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    view::parse_since(text, Utc::now())
}

fn items(
    config: &Config,
    topic: Option<String>,
    since: Option<DateTime<Utc>>,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if let Some(topic) = &topic {
        if !config.topics.iter().any(|t| &t.id == topic) {
            eprintln!(
                "newswatch: unknown topic {topic:?} (the config has: {})",
                config
                    .topics
                    .iter()
                    .map(|t| t.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Ok(ExitCode::from(2));
        }
    }
    let path = &config.storage.path;
    let rows = match open_for_reading(config)? {
        Reader::Store(store) => {
            let found = store
                .items(&ItemQuery {
                    topic,
                    since,
                    limit,
                })
                .context("reading items")?;
            report_damage(&found, "items", path);
            found.iter().map(view::item_json).collect()
        }
        Reader::Api(api) => {
            let mut query = vec![("limit", api.limit(limit).to_string())];
            query.extend(topic.map(|t| ("topic", t)));
            query.extend(since.map(|s| ("since", s.to_rfc3339())));
            api.get("items", &query, path)?
        }
    };
    print_rows(&rows, json, item_line)?;
    if rows.is_empty() && !json {
        eprintln!("newswatch: no items");
    }
    Ok(ExitCode::SUCCESS)
}

fn feeds(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let path = &config.storage.path;
    let rows = match open_for_reading(config)? {
        Reader::Store(store) => {
            let states = store.feed_states().context("reading feed states")?;
            crate::health::assess_feeds(&config.feeds, states, &config.health, Utc::now())
                .iter()
                .map(|(feed, state, health)| view::feed_json(feed, state, health))
                .collect()
        }
        Reader::Api(api) => api.get("feeds", &[], path)?,
    };
    print_rows(&rows, json, feed_line)?;
    if rows.is_empty() && !json {
        eprintln!("newswatch: no feeds in the config");
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of `feeds` output: name, state, last HTTP status, consecutive errors, last
/// success, last new item, usual gap, and why the state is not `ok`.
fn feed_line(feed: &Value) -> String {
    let text = |key: &str| feed[key].as_str().unwrap_or("");
    let when = |key: &str| {
        DateTime::parse_from_rfc3339(text(key)).map_or_else(
            |_| "-".to_string(),
            |t| t.with_timezone(&Utc).format("%Y-%m-%d %H:%M").to_string(),
        )
    };
    let status = feed["last_status"]
        .as_u64()
        .map_or_else(|| "-".to_string(), |s| s.to_string());
    let gap = feed["usual_gap_seconds"].as_u64().map_or_else(
        || "-".to_string(),
        |s| crate::health::human(std::time::Duration::from_secs(s)),
    );
    let why = match (feed["reason"].as_str(), feed["moved_to"].as_str()) {
        (_, Some(to)) => format!("  use {to}"),
        (Some(reason), None) => format!("  {reason}"),
        (None, None) => String::new(),
    };
    format!(
        "{:<20}  {:<7}  {status:>3}  {:>3} err  ok {:<16}  new {:<16}  gap {gap:<8}{why}",
        truncate(text("name"), 20),
        text("state"),
        feed["consecutive_errors"].as_u64().unwrap_or(0),
        when("last_success"),
        when("last_new_item"),
    )
}

/// `backtest`: the topics to run (exit 2 for an unknown topic or a bad query), then
/// the report, read here or by the running daemon through its API.
fn backtest(
    config: &Config,
    topic: Option<String>,
    query: Option<String>,
    since: DateTime<Utc>,
    explain: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let topics = match (&topic, &query) {
        (Some(id), _) => match config.topics.iter().find(|t| &t.id == id) {
            Some(topic) => vec![topic.clone()],
            None => {
                eprintln!(
                    "newswatch: unknown topic {id:?} (the config has: {})",
                    config
                        .topics
                        .iter()
                        .map(|t| t.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Ok(ExitCode::from(2));
            }
        },
        (None, Some(text)) => match crate::backtest::query_topic(text, &config.entities) {
            Ok(topic) => vec![topic],
            Err(problem) => {
                eprintln!("newswatch: --query: {problem}");
                return Ok(ExitCode::from(2));
            }
        },
        (None, None) if config.topics.is_empty() => {
            eprintln!(
                "newswatch: the config at {} has no topics; name one with --query",
                config.file.display()
            );
            return Ok(ExitCode::from(2));
        }
        (None, None) => config.topics.clone(),
    };
    let path = &config.storage.path;
    let report = match open_for_reading(config)? {
        Reader::Store(store) => {
            let rules =
                crate::pipeline::rules::RuleSet::new(config.entities.clone(), topics.clone());
            let report = crate::backtest::run(store.as_ref(), &rules, since, explain)
                .context("reading the stored items")?;
            report.to_json()
        }
        Reader::Api(api) => {
            let mut params = vec![("since", since.to_rfc3339())];
            params.extend(topic.map(|t| ("topic", t)));
            params.extend(query.map(|q| ("query", q)));
            if explain {
                params.push(("explain", "true".into()));
            }
            api.get_value("backtest", &params, path)?
        }
    };
    if report["skipped"].as_u64().unwrap_or(0) > 0 {
        eprintln!(
            "newswatch: warning: {} stored items could not be read and were skipped \
             (damaged records in the store at {})",
            report["skipped"],
            path.display()
        );
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if json {
        serde_json::to_writer(&mut out, &report).context("writing to stdout")?;
        writeln!(out).context("writing to stdout")?;
    } else {
        write_backtest(&mut out, &report).context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// `backtest`'s table: a heading per day, its stories that would alert, then its
/// matching items (`*` marks the one its story alerts on), and a closing count.
fn write_backtest(out: &mut impl Write, report: &Value) -> io::Result<()> {
    let text = |v: &Value, key: &str| v[key].as_str().unwrap_or("").to_string();
    let time = |v: &Value| {
        DateTime::parse_from_rfc3339(v["fetched"].as_str().unwrap_or(""))
            .map(|t| t.with_timezone(&Utc).format("%H:%M").to_string())
            .unwrap_or_default()
    };
    let empty = Vec::new();
    for day in report["days"].as_array().unwrap_or(&empty) {
        let items = day["items"].as_array().unwrap_or(&empty);
        let stories = day["stories"].as_array().unwrap_or(&empty);
        writeln!(
            out,
            "{}: {} stor{} would alert, {} matching item{}",
            text(day, "day"),
            stories.len(),
            if stories.len() == 1 { "y" } else { "ies" },
            items.len(),
            if items.len() == 1 { "" } else { "s" },
        )?;
        for story in stories {
            let copies = story["items"].as_u64().unwrap_or(1);
            writeln!(
                out,
                "  story  {}  {:<18}  score {:>5.1}  {}{}",
                time(story),
                truncate(&text(story, "topic"), 18),
                story["score"].as_f64().unwrap_or(0.0),
                text(story, "title"),
                if copies > 1 {
                    format!("  ({copies} items in the window)")
                } else {
                    String::new()
                }
            )?;
        }
        for item in items {
            writeln!(
                out,
                "  item {} {}  {:<18}  score {:>5.1}  {:<20}  {}",
                if item["alerts"].as_bool().unwrap_or(false) {
                    "*"
                } else {
                    " "
                },
                time(item),
                truncate(&text(item, "topic"), 18),
                item["score"].as_f64().unwrap_or(0.0),
                truncate(&text(item, "feed"), 20),
                text(item, "title"),
            )?;
            if let Some(why) = item["explain"].as_str() {
                writeln!(out, "         why: {why}")?;
            }
        }
    }
    writeln!(
        out,
        "{} stored items since {} read: {} matched, {} stories would have alerted",
        report["scanned"],
        text(report, "since"),
        report["items"],
        report["stories"],
    )
}

/// One line of `items` output, from the item's JSON form (local or from the API).
fn item_line(item: &Value) -> String {
    let text = |key: &str| item[key].as_str().unwrap_or("");
    let fetched = DateTime::parse_from_rfc3339(text("fetched"))
        .map(|t| t.with_timezone(&Utc).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default();
    let topics: Vec<&str> = item["topics"]
        .as_array()
        .map(|topics| topics.iter().filter_map(|t| t["id"].as_str()).collect())
        .unwrap_or_default();
    format!(
        "{fetched}  {:<20}  {:<18}  {}{}",
        truncate(text("feed"), 20),
        truncate(&topics.join(","), 18),
        text("title"),
        if item["story_lead"].as_bool().unwrap_or(true) {
            ""
        } else {
            "  (copy)"
        },
    )
}

/// One line of `alerts` output, from the alert's JSON form.
fn alert_line(alert: &Value) -> String {
    let text = |key: &str| alert[key].as_str().unwrap_or("");
    let attempts = alert["attempts"].as_u64().unwrap_or(0);
    // A follow-up says which, so that it is not taken for a second alert.
    let event = match text("event") {
        "" | "story.new" => String::new(),
        other => format!("{other}: "),
    };
    format!(
        "{}  {:<9}  {:<10}  {:<16}  {attempts} attempt{}  {event}{}{}",
        text("id"),
        text("status"),
        truncate(text("sink"), 10),
        truncate(text("topic"), 16),
        if attempts == 1 { "" } else { "s" },
        text("title"),
        alert["last_error"]
            .as_str()
            .map(|e| format!("  [{e}]"))
            .unwrap_or_default(),
    )
}

/// Prints rows as JSON lines or as text lines.
fn print_rows(rows: &[Value], json: bool, line: fn(&Value) -> String) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for row in rows {
        if json {
            serde_json::to_writer(&mut out, row).context("writing to stdout")?;
            writeln!(out).context("writing to stdout")?;
        } else {
            writeln!(out, "{}", line(row)).context("writing to stdout")?;
        }
    }
    out.flush().context("writing to stdout")
}

/// Where `items`, `feeds` and `alerts` read: the store, or the running daemon's API while the
/// daemon holds the store (sled lets one process open it).
enum Reader {
    Store(SharedStore),
    Api(ApiReader),
}

fn open_for_reading(config: &Config) -> anyhow::Result<Reader> {
    match crate::store::open(&config.storage) {
        Ok(store) => Ok(Reader::Store(store)),
        Err(StoreError::Locked { .. }) => match &config.api {
            Some(api) => Ok(Reader::Api(ApiReader::new(api)?)),
            None => anyhow::bail!(
                "the store at {} is in use by another newswatch process (a running \
                 `newswatch run`?), and the config has no [api] to read through instead; \
                 stop it, or add [api] listen to the config and restart it so that `items`, \
                 `feeds` and `alerts` read through its API",
                config.storage.path.display()
            ),
        },
        Err(err) => Err(err.into()),
    }
}

/// Reads listings from a running daemon's API.
/// How long a read through the daemon's API may take: listings answer at once, but a
/// backtest scans the whole history window (about 3 s per 100,000 items,
/// BENCHMARKS.md), so it gets minutes rather than seconds.
fn api_timeout(what: &str) -> std::time::Duration {
    match what {
        "backtest" => std::time::Duration::from_secs(600),
        _ => std::time::Duration::from_secs(30),
    }
}

struct ApiReader {
    base: String,
    token: Option<String>,
}

impl ApiReader {
    fn new(api: &config::Api) -> anyhow::Result<ApiReader> {
        // A daemon listening on every address is reached on loopback.
        let mut addr = api.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let token = crate::api::load_token(api).context("reading the API token")?;
        Ok(ApiReader {
            base: format!("http://{addr}"),
            token,
        })
    }

    /// The API lists at most `MAX_LIMIT` records a request.
    fn limit(&self, limit: usize) -> usize {
        if limit > crate::api::MAX_LIMIT {
            eprintln!(
                "newswatch: note: reading through the running daemon's API, which lists at \
                 most {} records",
                crate::api::MAX_LIMIT
            );
        }
        limit.clamp(1, crate::api::MAX_LIMIT)
    }

    /// `GET /api/{what}` with `query`: the records, after saying on stderr that they
    /// come from the daemon and what it skipped.
    fn get(
        &self,
        what: &str,
        query: &[(&str, String)],
        store: &Path,
    ) -> anyhow::Result<Vec<Value>> {
        let (value, url) = self.fetch(what, query, store)?;
        let rows: Vec<Value> = serde_json::from_value(value)
            .with_context(|| format!("the answer of {url} is not a JSON array"))?;
        Ok(rows)
    }

    /// `GET /api/{what}` with `query`: the JSON document it answers.
    fn get_value(
        &self,
        what: &str,
        query: &[(&str, String)],
        store: &Path,
    ) -> anyhow::Result<Value> {
        Ok(self.fetch(what, query, store)?.0)
    }

    fn fetch(
        &self,
        what: &str,
        query: &[(&str, String)],
        store: &Path,
    ) -> anyhow::Result<(Value, String)> {
        let url = format!("{}/api/{what}", self.base);
        eprintln!(
            "newswatch: the store at {} is held by a running newswatch; reading {what} \
             through its API at {}",
            store.display(),
            self.base
        );
        let fetch = async {
            let mut request = reqwest::Client::new()
                .get(&url)
                .query(query)
                .timeout(api_timeout(what));
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await?;
            let status = response.status();
            let skipped = response
                .headers()
                .get(crate::api::SKIPPED_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response.text().await?;
            Ok::<_, reqwest::Error>((status, skipped, body))
        };
        let (status, skipped, body) = runtime()?.block_on(fetch).with_context(|| {
            format!(
                "the store at {} is in use by a running newswatch, and its API at {url} \
                 did not answer; stop the daemon, or check [api] in the config",
                store.display()
            )
        })?;
        if !status.is_success() {
            anyhow::bail!(
                "the running newswatch's API at {url} answered {status}: {}",
                body.trim()
            );
        }
        let value: Value = serde_json::from_str(&body)
            .with_context(|| format!("the answer of {url} is not JSON"))?;
        if let Some(skipped) = skipped {
            eprintln!(
                "newswatch: warning: the running daemon skipped damaged {what} records \
                 ({skipped}); the rest are shown"
            );
        }
        Ok((value, url))
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Loads the config, printing every error and returning exit code 2 when invalid.
fn load_config(path: Option<PathBuf>) -> Result<Config, ExitCode> {
    let path = path.unwrap_or_else(config::default_path);
    config::load(&path).map_err(|errors| {
        for err in &errors.0 {
            eprintln!("newswatch: {err}");
        }
        eprintln!(
            "newswatch: {} error{} in {}",
            errors.0.len(),
            if errors.0.len() == 1 { "" } else { "s" },
            path.display()
        );
        ExitCode::from(2)
    })
}

fn check(path: Option<PathBuf>, online: bool) -> ExitCode {
    match load_config(path) {
        Ok(config) if online => {
            let offline = check(Some(config.file.clone()), false);
            let feeds = check_feeds(&config);
            if offline != ExitCode::SUCCESS {
                offline
            } else {
                feeds
            }
        }
        Ok(config) => {
            println!(
                "{}: ok: {} feeds, {} entities, {} topics, {} sinks",
                config.file.display(),
                config.feeds.len(),
                config.entities.len(),
                config.topics.len(),
                config.sinks.len()
            );
            match &config.storage.backend {
                config::Backend::Sled => ExitCode::SUCCESS,
                config::Backend::Postgres(pg) => check_database(pg),
            }
        }
        Err(code) => code,
    }
}

/// `check --online`: fetches every feed once, as the poller would (its timeout, body
/// limit and headers) but without validators or a store, and says per feed whether it
/// reads; exit 1 if any does not. A page given instead of a feed names the feeds it
/// advertises (docs/feeds.md, "A page instead of a feed").
fn check_feeds(config: &Config) -> ExitCode {
    use crate::poller::{FetchOutcome, Fetcher};
    let run = || -> anyhow::Result<usize> {
        let fetcher = Fetcher::new(&config.poller).context("setting up the HTTP client")?;
        let mut failed = 0usize;
        runtime()?.block_on(async {
            for feed in &config.feeds {
                let base = match &feed.url {
                    config::FeedUrl::Http(url) => Some(url.clone()),
                    config::FeedUrl::File(_) => None,
                };
                let read = match fetcher
                    .fetch(&feed.url, &crate::store::FeedState::default())
                    .await
                {
                    Ok(FetchOutcome::Fetched { body, charset, .. }) => {
                        crate::isolate::isolate(|| {
                            parse::read_feed_at(&body, charset.as_deref(), base.as_ref())
                        })
                        .map_err(|panic| panic.to_string())
                        .and_then(|read| read.map_err(|e| e.to_string()))
                    }
                    Ok(FetchOutcome::NotModified { .. }) => {
                        Err("answered 304 Not Modified to a request without validators".into())
                    }
                    Err(err) => Err(err.to_string()),
                };
                match read {
                    Ok(read) => println!(
                        "feed {:?} ({}): ok: {} items, {}",
                        feed.name,
                        feed.url,
                        read.items.len(),
                        read.encoding
                    ),
                    Err(err) => {
                        failed += 1;
                        println!("feed {:?} ({}): failed: {err}", feed.name, feed.url);
                    }
                }
            }
        });
        Ok(failed)
    };
    match run() {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(err) => {
            eprintln!("newswatch: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// Says whether the cluster's database is reachable and at which schema version,
/// without changing it (the daemons migrate it when they start).
fn check_database(pg: &config::Postgres) -> ExitCode {
    use crate::store::postgres::{schema, PgStore};
    match PgStore::schema_version(pg) {
        Ok(Some(version)) if version == schema::VERSION => {
            println!("{}: reachable, schema version {version}", pg.url);
            ExitCode::SUCCESS
        }
        Ok(Some(version)) if version < schema::VERSION => {
            println!(
                "{}: reachable, schema version {version}; this build migrates it to {} when it starts",
                pg.url,
                schema::VERSION
            );
            ExitCode::SUCCESS
        }
        Ok(Some(version)) => {
            eprintln!(
                "newswatch: {}: schema version {version} was written by a newer newswatch; this build reads version {}",
                pg.url,
                schema::VERSION
            );
            ExitCode::from(1)
        }
        Ok(None) => {
            println!(
                "{}: reachable, no newswatch schema yet; the first daemon to start creates it (version {})",
                pg.url,
                schema::VERSION
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("newswatch: {err}");
            ExitCode::from(1)
        }
    }
}

fn scan(
    config: &Config,
    files: &[PathBuf],
    with_text: bool,
    explain: bool,
    jobs: usize,
) -> anyhow::Result<ExitCode> {
    let pipeline = config.pipeline();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut unreadable = 0usize;
    let mut crashed = 0usize;
    // One file alone gets the threads for its items instead.
    let item_threads = if files.len() == 1 { jobs } else { 1 };
    for_each_isolated(
        files,
        jobs,
        |file| scan_file(&pipeline, file, with_text, explain, item_threads),
        |file, result| {
            let source = file.display().to_string();
            match result {
                Ok(Ok(scanned)) => {
                    for note in scanned.notes {
                        eprintln!("newswatch: {source}: {note}");
                    }
                    for line in scanned.lines {
                        serde_json::to_writer(&mut out, &line).context("writing to stdout")?;
                        out.write_all(b"\n").context("writing to stdout")?;
                    }
                }
                Ok(Err(ScanSkip::Unreadable(err))) => {
                    eprintln!("newswatch: {source}: {err:#}");
                    unreadable += 1;
                }
                Ok(Err(ScanSkip::Skipped(notes, err))) => {
                    for note in notes {
                        eprintln!("newswatch: {source}: {note}");
                    }
                    eprintln!("newswatch: {source}: skipped: {err}");
                }
                Err(panic) => {
                    // A bug this file's bytes found: say which file, go on with the
                    // next, and fail the run at the end so it is not missed.
                    eprintln!(
                        "newswatch: {source}: skipped: {panic} (a bug in newswatch; please report it with this file)"
                    );
                    crashed += 1;
                }
            }
            Ok(())
        },
    )?;
    out.flush().context("writing to stdout")?;
    Ok(if unreadable + crashed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Why `scan` printed nothing for a file.
enum ScanSkip {
    /// The file could not be read (counted: exit code 1).
    Unreadable(anyhow::Error),
    /// It was read but holds no documents (binary, empty, a broken feed); notes on
    /// its decoding come first.
    Skipped(Vec<String>, parse::ParseError),
}

/// What `scan` prints for one file: notes for stderr, JSON lines for stdout. Kept
/// until the file's turn comes, so that files read at once print in the given order.
struct Scanned {
    notes: Vec<String>,
    lines: Vec<serde_json::Value>,
}

/// Runs `read` on each file, `jobs` files at once, and hands each result to `then` in
/// the order of `files`; a panic in `read` becomes that file's
/// [`Panicked`](crate::isolate::Panicked) and the other files are read (ARCHITECTURE.md,
/// "Nothing panics on input": should it still happen, one file must not take the others
/// with it).
fn for_each_isolated<T: Send>(
    files: &[PathBuf],
    jobs: usize,
    read: impl Fn(&Path) -> T + Sync,
    mut then: impl FnMut(&Path, Result<T, crate::isolate::Panicked>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    crate::par::for_each_ordered(
        files.len(),
        jobs,
        |at| read(&files[at]),
        |at, result| then(&files[at], result),
    )
}

/// What `scan` prints for one file; its items are analysed on `threads` threads.
fn scan_file(
    pipeline: &crate::pipeline::Pipeline,
    file: &Path,
    with_text: bool,
    explain: bool,
    threads: usize,
) -> Result<Scanned, ScanSkip> {
    let source = file.display().to_string();
    let bytes = read_input(file).map_err(ScanSkip::Unreadable)?;
    let decoded = parse::decode(&bytes, None).map_err(|e| ScanSkip::Skipped(Vec::new(), e))?;
    let mut notes: Vec<String> = decoded.note.iter().cloned().collect();
    let encoding = json!({ "encoding": decoded.encoding });
    let parsed = match parse::parse(&decoded.text) {
        Ok(parsed) => parsed,
        Err(err) => return Err(ScanSkip::Skipped(notes, err)),
    };
    // The parsed document owns its text: the file's bytes and their decoded copy
    // would only add two copies of a large file to the peak memory.
    drop(bytes);
    let decoded = parse::Decoded {
        text: String::new(),
        ..decoded
    };
    let (kind, items) = match parsed {
        Parsed::Feed(entries) => {
            let texts: Vec<(&str, &str)> = entries
                .iter()
                .map(|e| (e.title.as_str(), e.body.as_str()))
                .collect();
            let processed = pipeline.process_items(&texts, threads);
            (
                "feed",
                entries
                    .iter()
                    .zip(processed)
                    .map(|(e, processed)| {
                        let extra = json!({
                            "id": e.id,
                            "url": e.link,
                            "published": e.published.map(|d| d.to_rfc3339()),
                            "encoding": decoded.encoding,
                        });
                        (processed, Some(extra))
                    })
                    .collect::<Vec<_>>(),
            )
        }
        Parsed::Html(html) => (
            "html",
            pipeline
                .process_document(&html, true, threads)
                .into_iter()
                .map(|p| (p, Some(encoding.clone())))
                .collect(),
        ),
        Parsed::Text(text) => (
            "text",
            pipeline
                .process_document(&text, false, threads)
                .into_iter()
                .map(|p| (p, Some(encoding.clone())))
                .collect(),
        ),
    };
    if items.is_empty() {
        notes.push("no articles found".into());
    }
    let lines = items
        .into_iter()
        .enumerate()
        .map(|(index, (processed, extra))| {
            view::scanned_json(
                pipeline, &source, kind, index, &processed, extra, with_text, explain,
            )
        })
        .collect();
    Ok(Scanned { notes, lines })
}

/// Reads a file, or stdin for `-`, refusing inputs too large to hold.
///
/// A file whose size is over the limit is refused before any of it is read, and
/// binary data is noticed in the first block: [`parse::decode`] refuses it from that
/// block alone, so reading (say) a 200 MB image whole would be wasted.
fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    let too_large = || {
        anyhow::anyhow!(
            "larger than {} MiB, not scanned",
            MAX_SCAN_BYTES / (1024 * 1024)
        )
    };
    let mut input: Box<dyn Read> = if path == Path::new("-") {
        Box::new(io::stdin())
    } else {
        let file = std::fs::File::open(path).context("cannot open")?;
        let meta = file.metadata().context("cannot read")?;
        if meta.is_dir() {
            anyhow::bail!("is a directory");
        }
        if meta.is_file() && meta.len() > MAX_SCAN_BYTES {
            return Err(too_large());
        }
        Box::new(file)
    };
    let what = if path == Path::new("-") {
        "cannot read stdin"
    } else {
        "cannot read"
    };
    let mut bytes = Vec::new();
    (&mut input)
        .take(HEAD_BYTES)
        .read_to_end(&mut bytes)
        .context(what)?;
    if matches!(
        parse::decode(&bytes, None),
        Err(parse::ParseError::Binary { .. })
    ) {
        return Ok(bytes);
    }
    input
        .take(MAX_SCAN_BYTES + 1 - bytes.len() as u64)
        .read_to_end(&mut bytes)
        .context(what)?;
    if bytes.len() as u64 > MAX_SCAN_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The first block of an input, enough for [`parse::decode`]'s binary check.
const HEAD_BYTES: u64 = parse::SNIFF_LEN as u64;

#[cfg(test)]
mod tests {
    use super::*;

    /// `scan`'s loop: a panic while reading the second of three files is that
    /// file's error, naming it, and the third is still read, one file at a time or
    /// several at once.
    #[test]
    fn a_panic_on_one_file_is_its_error_and_the_next_is_read() {
        let files: Vec<PathBuf> = ["a.xml", "b.xml", "c.xml"].map(PathBuf::from).into();
        for jobs in [1, 2, 3] {
            let mut seen = Vec::new();
            for_each_isolated(
                &files,
                jobs,
                |file| {
                    if file == Path::new("b.xml") {
                        panic!("byte index 306 is not a char boundary");
                    }
                    file.display().to_string()
                },
                |file, result| {
                    seen.push((file.to_path_buf(), result.map_err(|p| p.to_string())));
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(
                seen,
                vec![
                    (PathBuf::from("a.xml"), Ok("a.xml".to_string())),
                    (
                        PathBuf::from("b.xml"),
                        Err("internal error: byte index 306 is not a char boundary".to_string())
                    ),
                    (PathBuf::from("c.xml"), Ok("c.xml".to_string())),
                ],
                "{jobs} jobs"
            );
        }
    }
}
