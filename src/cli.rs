//! The command line: parses arguments, runs a command, maps the outcome to an exit code.
//!
//! Exit codes: 0 success; 1 a command failed (for `scan`, an input could not be read
//! at all; for `once`, every feed failed); 2 the config is invalid or the arguments
//! are wrong.

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
use crate::pipeline::{Pipeline, Processed};
use crate::service::{self, Notifier};
use crate::store::{AlertStatus, ItemQuery, Listing, Store};

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
        /// Config file [default: $NEWSWATCH_CONFIG, else config/newswatch.toml].
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run the pipeline over local files (feeds, HTML, text; `-` is stdin) and print one
    /// JSON line per item. Stores and alerts nothing.
    Scan {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Include the cleaned text of each item.
        #[arg(long)]
        text: bool,
        /// Say why each topic matched or did not.
        #[arg(long)]
        explain: bool,
        /// Files to scan.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Poll every feed once, process and store what is new, then exit (cron, tests).
    Once {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// The daemon: poll, process and store until SIGINT or SIGTERM.
    Run {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Show stored items, newest first.
    Items {
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
    /// Inspect the alert outbox and replay failed alerts.
    Alerts {
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
        Command::Check { config } => Ok(check(config)),
        Command::Scan {
            config,
            text,
            explain,
            files,
        } => {
            let config = match load_config(config) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            scan(&config, &files, text, explain)
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
    }
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
    let store = Store::open(path).map_err(anyhow::Error::from)?;
    let flush = |store: &Store| -> anyhow::Result<()> {
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
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for alert in &found {
        if json {
            let line = crate::api::alert_json(alert);
            serde_json::to_writer(&mut out, &line).context("writing to stdout")?;
            writeln!(out).context("writing to stdout")?;
        } else {
            writeln!(
                out,
                "{}  {:<9}  {:<10}  {:<16}  {} attempt{}  {}{}",
                alert.id,
                alert.status.as_str(),
                truncate(&alert.sink, 10),
                truncate(&alert.topic, 16),
                alert.attempts,
                if alert.attempts == 1 { "" } else { "s" },
                alert.payload.item.title,
                alert
                    .last_error
                    .as_deref()
                    .map(|e| format!("  [{e}]"))
                    .unwrap_or_default(),
            )
            .context("writing to stdout")?;
        }
    }
    out.flush().context("writing to stdout")?;
    report_damage(&found, "alerts", &config.storage.path);
    if found.is_empty() && !json {
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
    crate::api::parse_since(text, Utc::now())
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
    let store = Store::open(path).map_err(anyhow::Error::from)?;
    let found = store
        .items(&ItemQuery {
            topic,
            since,
            limit,
        })
        .context("reading items")?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for item in &found {
        if json {
            let line = crate::api::item_json(item);
            serde_json::to_writer(&mut out, &line).context("writing to stdout")?;
            writeln!(out).context("writing to stdout")?;
        } else {
            let topics: Vec<&str> = item.topics.iter().map(|t| t.id.as_str()).collect();
            writeln!(
                out,
                "{}  {:<20}  {:<18}  {}{}",
                item.fetched.format("%Y-%m-%d %H:%M"),
                truncate(&item.feed_name, 20),
                truncate(&topics.join(","), 18),
                item.title,
                if item.is_story_lead { "" } else { "  (copy)" },
            )
            .context("writing to stdout")?;
        }
    }
    out.flush().context("writing to stdout")?;
    report_damage(&found, "items", path);
    if found.is_empty() && !json {
        eprintln!("newswatch: no items");
    }
    Ok(ExitCode::SUCCESS)
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

fn check(path: Option<PathBuf>) -> ExitCode {
    match load_config(path) {
        Ok(config) => {
            println!(
                "{}: ok: {} feeds, {} entities, {} topics, {} sinks",
                config.file.display(),
                config.feeds.len(),
                config.entities.len(),
                config.topics.len(),
                config.sinks.len()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn scan(
    config: &Config,
    files: &[PathBuf],
    with_text: bool,
    explain: bool,
) -> anyhow::Result<ExitCode> {
    let pipeline = Pipeline::from_config(config);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut unreadable = 0usize;
    for file in files {
        let source = file.display().to_string();
        let bytes = match read_input(file) {
            Ok(bytes) => bytes,
            Err(err) => {
                eprintln!("newswatch: {source}: {err:#}");
                unreadable += 1;
                continue;
            }
        };
        let decoded = match parse::decode(&bytes, None) {
            Ok(decoded) => decoded,
            Err(err) => {
                eprintln!("newswatch: {source}: skipped: {err}");
                continue;
            }
        };
        if let Some(note) = &decoded.note {
            eprintln!("newswatch: {source}: {note}");
        }
        let (kind, items) = match parse::parse(&decoded.text) {
            Ok(Parsed::Feed(entries)) => (
                "feed",
                entries
                    .iter()
                    .map(|e| {
                        let processed = pipeline.process_item(&e.title, &e.body);
                        let extra = json!({
                            "id": e.id,
                            "url": e.link,
                            "published": e.published.map(|d| d.to_rfc3339()),
                        });
                        (processed, Some(extra))
                    })
                    .collect::<Vec<_>>(),
            ),
            Ok(Parsed::Html(html)) => (
                "html",
                pipeline
                    .process_document(&html, true)
                    .into_iter()
                    .map(|p| (p, None))
                    .collect(),
            ),
            Ok(Parsed::Text(text)) => (
                "text",
                pipeline
                    .process_document(&text, false)
                    .into_iter()
                    .map(|p| (p, None))
                    .collect(),
            ),
            Err(err) => {
                eprintln!("newswatch: {source}: skipped: {err}");
                continue;
            }
        };
        if items.is_empty() {
            eprintln!("newswatch: {source}: no articles found");
        }
        for (index, (processed, extra)) in items.into_iter().enumerate() {
            let line = item_json(
                &pipeline, &source, kind, index, &processed, extra, with_text, explain,
            );
            serde_json::to_writer(&mut out, &line).context("writing to stdout")?;
            out.write_all(b"\n").context("writing to stdout")?;
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(if unreadable > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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

#[allow(clippy::too_many_arguments)]
fn item_json(
    pipeline: &Pipeline,
    source: &str,
    kind: &str,
    index: usize,
    processed: &Processed,
    extra: Option<Value>,
    with_text: bool,
    explain: bool,
) -> Value {
    let Processed {
        article, findings, ..
    } = processed;
    let mut line = json!({
        "source": source,
        "kind": kind,
        "index": index,
        "title": article.title,
        "entities": findings.entities.iter().map(|e| json!({
            "id": e.id,
            "name": e.name,
            "kind": e.kind.as_str(),
            "mentions": e.mentions,
            "first": {
                "field": if e.first.in_title { "title" } else { "body" },
                "char": e.first.char_offset,
            },
        })).collect::<Vec<_>>(),
        "topics": findings.topics.iter().map(|t| json!({
            "id": t.id,
            "name": t.name,
            "score": t.score,
            "matched": t.matched,
        })).collect::<Vec<_>>(),
        "text_length": article.body.chars().count(),
    });
    if let (Some(Value::Object(extra)), Some(obj)) = (extra, line.as_object_mut()) {
        for (k, v) in extra {
            if !v.is_null() {
                obj.insert(k, v);
            }
        }
    }
    if let Some(obj) = line.as_object_mut() {
        if with_text {
            obj.insert("text".into(), Value::String(article.body.clone()));
        }
        if explain {
            let why: serde_json::Map<String, Value> = pipeline
                .explain(article)
                .into_iter()
                .map(|(id, why)| (id, Value::String(why)))
                .collect();
            obj.insert("explain".into(), Value::Object(why));
        }
    }
    line
}
