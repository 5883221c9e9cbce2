//! The commands: wiring config, store and the I/O modules together, and
//! mapping every outcome to an exit code (SPEC §1): 0 success, 1 runtime
//! failure, 2 usage error, 78 invalid config.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::Utc;
use clap::Parser;
use tracing::{error, info};

use crate::cli::{Cli, Command};
use crate::config::{self, Config, ConfigError};
use crate::daemon::{require_secrets, runtime, smtp_sender, startup_checks};
use crate::mailfile;
use crate::model::{EmailOrigin, IngestOutcome, OrderAction, TrackingNumber};
use crate::notify::SmtpSender;
use crate::pipeline;
use crate::store::Store;
use crate::tracking::Tracker;

/// Exit code for an invalid config (sysexits.h `EX_CONFIG`).
pub const EXIT_CONFIG: u8 = 78;

/// A failure that has already been reported and only needs its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failed {
    pub message: String,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    crate::logging::init(cli.verbose, cli.quiet);
    match dispatch(cli) {
        Ok(code) => code,
        // The reader went away (`aliwatch status | head`): what it wanted
        // it has; exit quietly, as ripgrep and other filters do.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(ce) = e.downcast_ref::<ConfigError>() {
                eprintln!("aliwatch: invalid config: {ce}");
                return ExitCode::from(EXIT_CONFIG);
            }
            if let Some(config::SecretError::Config(ce)) = e.downcast_ref::<config::SecretError>() {
                eprintln!("aliwatch: invalid config: {ce}");
                return ExitCode::from(EXIT_CONFIG);
            }
            if let Some(f) = e.downcast_ref::<Failed>() {
                if !f.message.is_empty() {
                    eprintln!("aliwatch: {}", f.message);
                }
                return ExitCode::from(1);
            }
            eprintln!("aliwatch: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Writes `text` to standard output and flushes it at once, so that a
/// closed pipe (`aliwatch calendar | head`) or a full disk (`> /dev/full`)
/// is an error here, never a panic in `print!` or a tail lost silently at
/// exit. [`main`] turns a closed pipe into a quiet exit 0 and anything
/// else into exit 1 with the reason. Every command writes through this.
pub fn write_stdout(text: impl AsRef<[u8]>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_ref())
        .and_then(|()| out.flush())
        .context("cannot write to standard output")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    // `extract` needs no config, no database, no network.
    if let Command::Extract { json, files } = &cli.command {
        return cmd_extract(files, *json);
    }
    if let Command::Generate { what } = &cli.command {
        return crate::docgen::run(what);
    }
    let cfg = load_config(cli.config.as_deref(), cli.database.clone())?;
    match cli.command {
        Command::Extract { .. } | Command::Generate { .. } => unreachable!("handled above"),
        Command::CheckConfig { connect } => cmd_check_config(&cfg, connect),
        Command::Import { paths } => cmd_import(&cfg, &paths),
        Command::Status { json, all, wide } => cmd_status(&cfg, json, all, wide),
        Command::Calendar => {
            let store = Store::open_read_only(&cfg.database)?;
            write_stdout(pipeline::calendar(&store, Utc::now(), &cfg.rules())?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Add {
            tracking_number,
            order,
            create,
            force,
        } => cmd_add(&cfg, &tracking_number, order.as_deref(), create, force),
        Command::Protection {
            order_id,
            extend,
            until,
        } => {
            let mut store = open_store(&cfg)?;
            let action = match (extend, until) {
                (Some(d), _) => OrderAction::Extend(d),
                (None, Some(u)) => OrderAction::Until(u),
                (None, None) => unreachable!("clap requires one of --extend/--until"),
            };
            let now = Utc::now();
            store.add_order_action(&order_id, action, now)?;
            let report = pipeline::status_report(&store, now, &cfg.rules())?;
            if let Some(o) = report.orders.iter().find(|o| o.order_id == order_id.trim()) {
                match (o.protection_ends, o.protection_days_left) {
                    (Some(end), Some(left)) => write_stdout(format!(
                        "order {}: protection ends {end} ({left} days left, source {})\n",
                        o.order_id,
                        o.protection_source.map_or("unknown", |s| s.as_str())
                    ))?,
                    _ => write_stdout(format!("order {}: recorded\n", o.order_id))?,
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Done { order_id } => {
            let mut store = open_store(&cfg)?;
            store.add_order_action(&order_id, OrderAction::Done, Utc::now())?;
            write_stdout(format!(
                "order {}: completed; no more tracking or warnings\n",
                order_id.trim()
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Digest { print, send } => cmd_digest(&cfg, print, send),
        Command::Sync => cmd_sync(&cfg),
        Command::Run => cmd_run(&cfg),
    }
}

/// Finds and loads the config; without any config file the defaults apply
/// (commands that only need the database work without one).
pub fn load_config(
    explicit: Option<&std::path::Path>,
    database: Option<PathBuf>,
) -> Result<Config> {
    let mut cfg = match config::locate(explicit)? {
        Some(path) => Config::load(&path)?,
        None => Config::defaults(config::default_database()),
    };
    if let Some(db) = database {
        cfg.database = db;
    }
    Ok(cfg)
}

/// `add`: the number is checked before the database is touched (a typo or
/// an order number never becomes a parcel that is asked for every day).
/// Exit 1 with the reason when refused.
fn cmd_add(
    cfg: &Config,
    tracking_number: &str,
    order: Option<&str>,
    create: bool,
    force: bool,
) -> Result<ExitCode> {
    let number = TrackingNumber::new(tracking_number);
    let format = crate::extract::numbers::check_typed(number.as_str(), force)
        .map_err(|message| Failed { message })?;
    let mut store = open_store(cfg)?;
    if store.order_known(number.as_str())? {
        return Err(Failed {
            message: format!(
                "{number} is an AliExpress order number (an email named it), not a tracking number; to tie a parcel to it use `aliwatch add TRACKING_NUMBER --order {number}`"
            ),
        }
        .into());
    }
    let new = store.add_parcel(&number, order, create, Utc::now())?;
    write_stdout(format!(
        "{} {number} ({}){}\n",
        if new { "tracking" } else { "already tracking" },
        format.unwrap_or("format unknown to aliwatch"),
        order
            .map(|o| format!(" for order {}", crate::model::normalise_number(o)))
            .unwrap_or_default()
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn open_store(cfg: &Config) -> Result<Store> {
    Store::open(&cfg.database)
}

fn cmd_check_config(cfg: &Config, connect: bool) -> Result<ExitCode> {
    write_stdout(cfg.render_redacted())?;
    for w in cfg.warnings() {
        eprintln!("warning: {w}");
    }
    // What `run` and `sync` would refuse, refused here with the same words.
    startup_checks(cfg)?;
    if !connect {
        return Ok(ExitCode::SUCCESS);
    }
    check_connections(cfg)
}

/// Stack of each `extract` worker thread (the main thread's default).
const EXTRACT_STACK: usize = 8 * 1024 * 1024;

fn cmd_extract(files: &[PathBuf], json: bool) -> Result<ExitCode> {
    // Extraction is pure and independent per file: split the list into
    // contiguous chunks, one per core, and print the results in input order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads).max(32);
    let results: Vec<(String, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                // The MIME bounds keep mail-parser's recursion shallow; the
                // main thread's stack size is defence in depth for workers.
                std::thread::Builder::new()
                    .stack_size(EXTRACT_STACK)
                    .spawn_scoped(scope, move || {
                        part.iter()
                            .map(|f| extract_one(f, json))
                            .collect::<Vec<_>>()
                    })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h {
                Ok(h) => h.join().unwrap_or_default(),
                Err(_) => Vec::new(),
            })
            .collect()
    });
    let mut out = String::new();
    if !json {
        out.push_str(&format!(
            "{:<40} {:<6} {:<16} {:<20} TRACKING\n",
            "FILE", "ALI", "KIND", "ORDER"
        ));
    }
    let mut failed = false;
    for (text, ok) in &results {
        failed |= !ok;
        out.push_str(text);
    }
    write_stdout(out)?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One file's `extract` output (JSON line or table rows) and whether it
/// could be read and parsed.
fn extract_one(f: &std::path::Path, json: bool) -> (String, bool) {
    use std::fmt::Write as _;
    let name = f.display().to_string();
    // The table shows file names; JSON keeps the path as given.
    let short = f
        .file_name()
        .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned());
    let result = std::fs::read(f)
        .map_err(|e| e.to_string())
        .and_then(|raw| crate::extract::extract(&raw).map_err(|e| e.to_string()));
    let mut out = String::new();
    match result {
        Ok(ex) if json => {
            let _ = writeln!(out, "{}", ex.to_spec_json(&name));
        }
        Ok(ex) => {
            let ali = if ex.is_aliexpress { "yes" } else { "no" };
            if ex.orders.is_empty() {
                let _ = writeln!(
                    out,
                    "{short:<40} {ali:<6} {:<16} {:<20} -",
                    ex.kind.as_str(),
                    "-"
                );
            }
            for o in &ex.orders {
                let tn = if o.tracking_numbers.is_empty() {
                    "-".to_string()
                } else {
                    o.tracking_numbers.join(", ")
                };
                let _ = writeln!(
                    out,
                    "{short:<40} {ali:<6} {:<16} {:<20} {tn}",
                    ex.kind.as_str(),
                    o.order_id.as_deref().unwrap_or("(none)")
                );
            }
        }
        Err(e) => {
            if json {
                let _ = writeln!(out, "{}", serde_json::json!({"file": name, "error": e}));
            } else {
                let _ = writeln!(out, "{short:<40} error: {e}");
            }
            return (out, false);
        }
    }
    (out, true)
}

/// Counts for the `import` summary.
#[derive(Debug, Default)]
struct ImportSummary {
    read: u64,
    aliexpress: u64,
    duplicates: u64,
    orders_new: u64,
    orders_updated: u64,
    parcels_new: u64,
    unparseable: u64,
}

fn cmd_import(cfg: &Config, paths: &[PathBuf]) -> Result<ExitCode> {
    let mut store = open_store(cfg)?;
    let mut s = ImportSummary::default();
    let started = std::time::Instant::now();
    let progress = std::io::stderr().is_terminal();
    let problems = mailfile::for_each_message(paths, &mut |m| {
        let origin = EmailOrigin {
            source: format!("import:{}", m.label),
            imap: None,
            received_at: m.received_at,
        };
        let outcome = pipeline::ingest_email(&mut store, &m.raw, &origin, Utc::now())
            .with_context(|| format!("importing {}", m.label))?;
        s.read += 1;
        match outcome {
            IngestOutcome::New {
                is_aliexpress,
                orders_new,
                orders_updated,
                parcels_new,
            } => {
                s.aliexpress += u64::from(is_aliexpress);
                s.orders_new += orders_new as u64;
                s.orders_updated += orders_updated as u64;
                s.parcels_new += parcels_new as u64;
            }
            IngestOutcome::Duplicate => s.duplicates += 1,
            IngestOutcome::Unparseable(e) => {
                tracing::warn!(file = %m.label, error = %e, "skipped an email that cannot be parsed");
                s.unparseable += 1;
            }
        }
        // Progress for large imports: in place on a terminal, a line per
        // 10,000 emails in logs.
        if progress && s.read % 1000 == 0 {
            eprint!("\rimported {} emails ...", s.read);
        } else if !progress && s.read % 10_000 == 0 {
            eprintln!("imported {} emails ...", s.read);
        }
        Ok(())
    })?;
    if s.read >= 1000 && progress {
        eprintln!();
    }
    for p in &problems.errors {
        eprintln!("aliwatch: cannot read {p}");
    }
    let secs = started.elapsed().as_secs_f64();
    write_stdout(format!(
        "imported {} emails in {:.1}s: {} from AliExpress, {} already known, {} new orders, {} orders updated, {} new parcels, {} unparseable, {} unreadable inputs\n",
        s.read, secs, s.aliexpress, s.duplicates, s.orders_new, s.orders_updated, s.parcels_new, s.unparseable, problems.errors.len()
    ))?;
    Ok(if problems.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The width the `status` table fits: the terminal's when stdout is one
/// (`COLUMNS` first, as shells export it after a resize), else 80.
fn table_width() -> usize {
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return crate::render::status::DEFAULT_COLUMNS;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
        .or_else(|| terminal_size::terminal_size_of(&stdout).map(|(w, _)| w.0 as usize))
        .unwrap_or(crate::render::status::DEFAULT_COLUMNS)
}

fn cmd_status(cfg: &Config, json: bool, all: bool, wide: bool) -> Result<ExitCode> {
    let store = Store::open_read_only(&cfg.database)?;
    let now = Utc::now();
    let rules = cfg.rules();
    if json {
        // The same function answers `GET /api/status`.
        write_stdout(pipeline::status_json(&store, now, &rules, all)?)?;
    } else {
        let mut report = pipeline::status_report(&store, now, &rules)?;
        if !all {
            report.orders.retain(|o| o.is_active());
        }
        let layout = if wide {
            crate::render::status::Layout::Wide
        } else {
            crate::render::status::Layout::Fit(table_width())
        };
        let table = crate::render::render_status_table(&report, &rules, layout);
        write_stdout(table)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `sync`: one pass of everything that is due now, then exit. Exit 1 when
/// a part failed (e.g. a rejected password); the other parts still run.
fn cmd_sync(cfg: &Config) -> Result<ExitCode> {
    startup_checks(cfg)?;
    let shared = Arc::new(std::sync::Mutex::new(Store::open(&cfg.database)?));
    runtime()?.block_on(async {
        let mut failures = Vec::new();
        if cfg.imap.is_empty() {
            info!("no [imap] configured: not reading mail");
        }
        for account in &cfg.imap {
            match pipeline::sync_account_once(account, &shared, Utc::now()).await {
                Ok(s) => info!(
                    account = %account.name,
                    fetched = s.fetched(),
                    new = s.new_emails(),
                    bytes = s.bytes_fetched(),
                    "mail synced"
                ),
                Err(e) => {
                    error!(account = %account.name, "mail sync failed: {e:#}");
                    failures.push(format!("imap {}: {e:#}", account.name));
                }
            }
        }
        // Every other task is done with the store: take it back.
        let mut store = match Arc::try_unwrap(shared) {
            Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
            Err(_) => anyhow::bail!("the store is still shared after the mail sync"),
        };
        let tracked = match Tracker::new(&cfg.tracking) {
            Ok(t) => crate::daemon::tracking_pass(cfg, &mut store, t.as_ref()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = tracked {
            error!("tracking failed: {e:#}");
            failures.push(format!("tracking: {e:#}"));
        }
        if cfg.smtp.is_none() {
            info!("no [smtp] configured: warnings and digests stay due and are not sent");
        }
        let sender = smtp_sender(cfg)?;
        let push = crate::daemon::push_channels_or_log(cfg, Arc::new(|| {}));
        let notified = pipeline::notify::notification_pass(
            cfg,
            &mut store,
            sender.as_ref(),
            &push,
            Utc::now(),
        )
        .await;
        for channel in &push {
            channel.close().await;
        }
        if let Err(e) = notified {
            error!("notifications failed: {e:#}");
            failures.push(format!("notifications: {e:#}"));
        }
        if failures.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            Err(Failed {
                message: format!("sync finished with errors: {}", failures.join("; ")),
            }
            .into())
        }
    })
}

/// `digest --print | --send`.
fn cmd_digest(cfg: &Config, print: bool, send: bool) -> Result<ExitCode> {
    let mut store = if send {
        Store::open(&cfg.database)?
    } else {
        Store::open_read_only(&cfg.database)?
    };
    let now = Utc::now();
    let rules = cfg.rules();
    let report = pipeline::status_report(&store, now, &rules)?;
    if print {
        let email = crate::render::render_digest(&report, &rules, now);
        write_stdout(&email.text)?;
    }
    if send {
        if cfg.smtp.is_none() {
            return Err(
                ConfigError("digest --send needs an [smtp] section in the config".into()).into(),
            );
        }
        require_secrets(cfg)?;
        let sender = smtp_sender(cfg)?.context("smtp is configured")?;
        let sent = runtime()?.block_on(pipeline::send_digest_now(
            &mut store, &report, cfg, now, &sender,
        ))?;
        eprintln!("digest sent ({})", sent.message_id);
    }
    Ok(ExitCode::SUCCESS)
}

/// `check-config --connect`: log in to IMAP, SMTP and the tracking API,
/// reach every `[[notify]]` channel (without publishing), and report each. Exit 1 when one of them fails.
fn check_connections(cfg: &Config) -> Result<ExitCode> {
    let rt = runtime()?;
    let mut failed = 0;
    let mut report = |what: String, r: Result<String>| match r {
        Ok(msg) => write_stdout(format!("ok      {what}: {msg}\n")),
        Err(e) => {
            failed += 1;
            write_stdout(format!("FAILED  {what}: {e:#}\n"))
        }
    };
    for account in &cfg.imap {
        let r = rt.block_on(crate::imap::check_account(account));
        report(format!("imap {}", account.name), r)?;
    }
    if let Some(smtp) = &cfg.smtp {
        let r = rt.block_on(async {
            let sender = SmtpSender::new(smtp)?;
            sender.test_connection().await?;
            Ok(format!("logged in to {}:{}", smtp.host, smtp.port))
        });
        report("smtp".into(), r)?;
    }
    if cfg.tracking.provider != crate::model::Provider::None {
        let r = rt.block_on(async {
            let tracker = Tracker::new(&cfg.tracking)?.context("a tracking provider is set")?;
            tracker.provider().check().await
        });
        report(format!("tracking {}", cfg.tracking.provider.as_str()), r)?;
    }
    for n in &cfg.notify {
        let r = rt.block_on(async {
            if n.kind == crate::config::NotifyKind::Mqtt {
                let channel = crate::notify::MqttChannel::probe(n)?;
                return channel.check().await;
            }
            let channel = crate::notify::PushChannel::new(n)?;
            channel.check().await
        });
        report(format!("notify {} ({})", n.name, n.kind.as_str()), r)?;
    }
    if failed > 0 {
        return Err(Failed {
            message: format!("{failed} connection check(s) failed"),
        }
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_run(cfg: &Config) -> Result<ExitCode> {
    crate::daemon::run_command(cfg)
}
