//! The commands: wiring config, store and the I/O modules together, and
//! mapping every outcome to an exit code (SPEC §1): 0 success, 1 runtime
//! failure, 2 usage error, 78 invalid config.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::Utc;
use clap::Parser;
use tracing::{error, info};

use std::time::Duration;

use crate::cli::{Cli, Command};
use crate::config::{self, Config};
use crate::control::{self, client::Route, protocol::Reply, protocol::Request};
use crate::daemon::{require_secrets, runtime, startup_checks};
use crate::mailfile;
use crate::notify::SmtpSender;
use crate::ops::{self, ImportSummary, ImportedEmail};
use crate::pipeline;
use crate::render::status::Layout;
use crate::store::Store;
use crate::tracking::Tracker;

pub use crate::ops::EXIT_CONFIG;

/// A failure that has already been reported and only needs its exit code.
pub use crate::ops::Failed;

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
            let (code, message) = crate::ops::exit_for(&e);
            if let Some(m) = message {
                crate::output::to_stderr(format!("aliwatch: {m}\n"));
            }
            ExitCode::from(code)
        }
    }
}

pub use crate::output::write_stdout;

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
    // `demo` never reads the config: it must not touch the user's database.
    if let Command::Demo { listen } = &cli.command {
        return cmd_demo(cli.database.as_deref(), *listen);
    }
    let cfg = load_config(cli.config.as_deref(), cli.database.clone())?;
    let quiet = cli.quiet > 0;
    let now = Utc::now;
    match cli.command {
        Command::Extract { .. } | Command::Generate { .. } | Command::Demo { .. } => {
            unreachable!("handled above")
        }
        Command::CheckConfig { connect } => cmd_check_config(&cfg, connect),
        Command::Run => cmd_run(&cfg),
        Command::Import { paths } => cmd_import(&cfg, &paths, quiet),
        Command::Status { json, all, wide } => {
            let columns = table_width();
            let request = Request::Status {
                json,
                all,
                wide,
                columns,
            };
            beside_service(&cfg, request, quiet, || {
                let store = Store::open_read_only(&cfg.database)?;
                let layout = if wide {
                    Layout::Wide
                } else {
                    Layout::Fit(columns)
                };
                ops::status(&store, &cfg, now(), json, all, layout)
            })
        }
        Command::Calendar => beside_service(&cfg, Request::Calendar, quiet, || {
            ops::calendar(&Store::open_read_only(&cfg.database)?, &cfg, now())
        }),
        Command::Add {
            tracking_number,
            order,
            create,
            force,
        } => {
            let request = Request::Add {
                tracking_number: tracking_number.clone(),
                order: order.clone(),
                create,
                force,
            };
            beside_service(&cfg, request, quiet, || {
                let mut store = open_store(&cfg)?;
                ops::add(
                    &mut store,
                    &tracking_number,
                    order.as_deref(),
                    create,
                    force,
                    now(),
                )
            })
        }
        Command::Protection {
            order_id,
            extend,
            until,
        } => {
            let action = ops::protection_action(extend, until)?;
            let request = Request::Protection {
                order_id: order_id.clone(),
                extend,
                until,
            };
            beside_service(&cfg, request, quiet, || {
                ops::protection(&mut open_store(&cfg)?, &cfg, &order_id, action, now())
            })
        }
        Command::Done { order_id } => {
            let request = Request::Done {
                order_id: order_id.clone(),
            };
            beside_service(&cfg, request, quiet, || {
                ops::done(&mut open_store(&cfg)?, &order_id, now())
            })
        }
        Command::Untrack { order_id } => {
            let request = Request::Untrack {
                order_id: order_id.clone(),
            };
            beside_service(&cfg, request, quiet, || {
                ops::untrack(&mut open_store(&cfg)?, &order_id, now())
            })
        }
        Command::Digest { print, send } => cmd_digest(&cfg, print, send, quiet),
        Command::Sync => cmd_sync(&cfg, quiet),
    }
}

/// How long a command waits for the service's reply once it accepted.
fn reply_wait(request: &Request) -> Duration {
    match request {
        // a pass of everything: mail, tracking, notifications
        Request::Sync => Duration::from_secs(1800),
        Request::DigestSend | Request::Import => Duration::from_secs(300),
        _ => Duration::from_secs(120),
    }
}

/// Runs a command that does not send: through the running service when
/// one holds the database, else `direct` on the database here.
fn beside_service(
    cfg: &Config,
    request: Request,
    quiet: bool,
    direct: impl FnOnce() -> Result<String>,
) -> Result<ExitCode> {
    match control::client::route(&cfg.database, false, request.name())? {
        Route::Direct(_) => {
            let text = direct()?;
            write_stdout(text)?;
            Ok(ExitCode::SUCCESS)
        }
        Route::Service { pid, socket } => {
            let wait = reply_wait(&request);
            let reply = control::client::call(pid, &socket, request, None, wait)?;
            print_reply(reply, quiet)
        }
    }
}

/// Prints what the service answered, with its exit code.
fn print_reply(reply: Reply, quiet: bool) -> Result<ExitCode> {
    write_stdout(&reply.stdout)?;
    if !quiet && !reply.notes.is_empty() {
        crate::output::to_stderr(&reply.notes);
    }
    if let Some(e) = &reply.error {
        crate::output::to_stderr(format!("aliwatch: {e}\n"));
    }
    Ok(ExitCode::from(reply.exit))
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

/// `aliwatch demo`: the demo database (a new file), then its dashboard
/// until Ctrl-C. No SMTP, push or tracking is set up, so nothing is sent.
fn cmd_demo(database: Option<&std::path::Path>, listen: std::net::SocketAddr) -> Result<ExitCode> {
    let (path, _temp) = match database {
        Some(p) if p.exists() => {
            return Err(Failed {
                message: format!(
                    "{} exists; the demo writes a new database (give a new file name, or none for a temporary one)",
                    p.display()
                ),
            }
            .into())
        }
        Some(p) => (p.to_path_buf(), None),
        None => {
            let dir = TempDir::new()?;
            (dir.0.join("demo.sqlite"), Some(dir))
        }
    };
    let emails = crate::demo::build(&path, Utc::now())?;
    let mut cfg = Config::defaults(path.clone());
    cfg.http = Some(crate::config::HttpConfig {
        listen,
        token: None,
    });
    let cfg = Arc::new(cfg);
    runtime()?.block_on(async move {
        let listener = crate::web::bind(listen).await?;
        let web = crate::web::Web::new(cfg.clone(), crate::live::Live::new())?;
        let addr = listener.local_addr()?;
        info!(emails, database = %path.display(), "demo database built");
        write_stdout(format!(
            "aliwatch demo: open http://{addr}/ (Ctrl-C to stop; nothing is sent)\n"
        ))?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let serving = tokio::spawn(crate::web::serve(listener, web, cancel.clone()));
        tokio::signal::ctrl_c().await?;
        cancel.cancel();
        let _ = serving.await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A directory of our own under the system's temporary directory, removed
/// when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let dir = std::env::temp_dir().join(format!(
            "aliwatch-demo-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open_store(cfg: &Config) -> Result<Store> {
    Store::open(&cfg.database)
}

fn cmd_check_config(cfg: &Config, connect: bool) -> Result<ExitCode> {
    write_stdout(cfg.render_redacted())?;
    for w in cfg.warnings() {
        crate::output::to_stderr(format!("warning: {w}\n"));
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

fn cmd_import(cfg: &Config, paths: &[PathBuf], quiet: bool) -> Result<ExitCode> {
    let progress = std::io::stderr().is_terminal();
    let mut count = 0u64;
    let mut tick = move || {
        count += 1;
        // Progress for large imports: in place on a terminal, a line per
        // 10,000 emails in logs.
        if progress && count.is_multiple_of(1000) {
            crate::output::to_stderr(format!("\rimported {count} emails ..."));
        } else if !progress && count.is_multiple_of(10_000) {
            crate::output::to_stderr(format!("imported {count} emails ...\n"));
        }
        count
    };
    let read_all = |each: &mut dyn FnMut(ImportedEmail) -> Result<()>| -> Result<Vec<String>> {
        let problems = mailfile::for_each_message(paths, &mut |m| {
            each(ImportedEmail {
                label: m.label,
                received_at: m.received_at,
                raw: m.raw,
            })
        })?;
        Ok(problems.errors)
    };
    let finish = |errors: &[String], read: u64| {
        if read >= 1000 && progress {
            crate::output::to_stderr("\n");
        }
        for p in errors {
            crate::output::to_stderr(format!("aliwatch: cannot read {p}\n"));
        }
    };
    match control::client::route(&cfg.database, false, "import")? {
        Route::Direct(_) => {
            let mut store = open_store(cfg)?;
            let mut s = ImportSummary::default();
            let started = std::time::Instant::now();
            let errors = read_all(&mut |m| {
                s.ingest(&mut store, &m, Utc::now())?;
                tick();
                Ok(())
            })?;
            finish(&errors, s.read);
            let line = s.line(started.elapsed().as_secs_f64(), errors.len());
            write_stdout(line)?;
            Ok(if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Route::Service { pid, socket } => {
            let mut errors = Vec::new();
            let mut read = 0;
            let mut emails = |send: &mut dyn FnMut(ImportedEmail) -> Result<()>| -> Result<usize> {
                let mut too_big = Vec::new();
                errors = read_all(&mut |m| {
                    // One protocol line holds one email in base64.
                    if m.raw.len() > control::protocol::MAX_EMAIL {
                        too_big.push(format!(
                            "{}: larger than {} MiB, too large to hand to the service",
                            m.label,
                            control::protocol::MAX_EMAIL >> 20
                        ));
                        return Ok(());
                    }
                    send(m)?;
                    read = tick();
                    Ok(())
                })?;
                errors.extend(too_big);
                Ok(errors.len())
            };
            let reply = control::client::call(
                pid,
                &socket,
                Request::Import,
                Some(&mut emails),
                reply_wait(&Request::Import),
            )?;
            finish(&errors, read);
            let code = print_reply(reply, quiet)?;
            Ok(if errors.is_empty() {
                code
            } else {
                ExitCode::from(1)
            })
        }
    }
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

/// `sync`: one pass of everything that is due now, then exit. Exit 1 when
/// a part failed (e.g. a rejected password); the other parts still run.
fn cmd_sync(cfg: &Config, quiet: bool) -> Result<ExitCode> {
    // Only the holder of the run lock sends (SPEC §1): the running service
    // (with its own secrets and database: a member of the aliwatch group
    // reads neither), or this `sync` while it holds the lock.
    let _run_lock = match control::client::route(&cfg.database, true, "sync")? {
        Route::Direct(lock) => lock,
        Route::Service { pid, socket } => {
            let reply = control::client::call(
                pid,
                &socket,
                Request::Sync,
                None,
                reply_wait(&Request::Sync),
            )?;
            return print_reply(reply, quiet);
        }
    };
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
        let instance = store.instance_id()?;
        let push =
            crate::daemon::push_channels_or_log(cfg, crate::notify::Hooks::none(), &instance);
        let channels = pipeline::notify::channels(cfg, push)?;
        let notified = pipeline::notify::notification_pass(cfg, &channels, Utc::now()).await;
        for channel in &channels {
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

/// `digest --print | --send` (one or the other).
fn cmd_digest(cfg: &Config, print: bool, send: bool, quiet: bool) -> Result<ExitCode> {
    if print || !send {
        return beside_service(cfg, Request::DigestPrint, quiet, || {
            ops::digest_text(&Store::open_read_only(&cfg.database)?, cfg, Utc::now())
        });
    }
    ops::smtp_for_digest(cfg)?;
    let _run_lock = match control::client::route(&cfg.database, true, "digest")? {
        Route::Direct(lock) => lock,
        Route::Service { pid, socket } => {
            let wait = reply_wait(&Request::DigestSend);
            let reply = control::client::call(pid, &socket, Request::DigestSend, None, wait)?;
            return print_reply(reply, quiet);
        }
    };
    require_secrets(cfg)?;
    let said = runtime()?.block_on(ops::digest_send(cfg, Utc::now()))?;
    crate::output::to_stderr(said);
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
    // Each configured provider, in order: one cheap request each, through
    // one tracker (its clients built once).
    if !cfg.tracking.providers.is_empty() {
        match Tracker::new(&cfg.tracking) {
            Ok(Some(tracker)) => {
                for p in cfg.tracking.providers.iter() {
                    let r = rt.block_on(async {
                        tracker
                            .get(p)
                            .with_context(|| {
                                format!(
                                    "tracking.providers lists {} but no client was built for it",
                                    p.as_str()
                                )
                            })?
                            .check()
                            .await
                    });
                    report(format!("tracking {}", p.as_str()), r)?;
                }
            }
            Ok(None) => {}
            Err(e) => report("tracking".into(), Err(e))?,
        }
    }
    for n in &cfg.notify {
        let r = rt.block_on(crate::notify::check(n));
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
