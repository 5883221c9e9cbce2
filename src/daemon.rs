//! The long-running parts: `sync` (one pass of everything due), `run` (the
//! daemon), `digest`, and `check-config --connect`.
//!
//! `run` is a set of independent tasks under one cancellation token (Delta
//! Chat's scheduler): one IMAP watcher per mailbox, the tracking scheduler
//! and the notification scheduler. Each task owns its own SQLite
//! connection (WAL lets them work side by side; the busy timeout serialises
//! writers), so no lock is ever held across an await. Transactions never
//! span an await either, so cancelling a task at any await point leaves
//! the database consistent; SIGTERM therefore only has to cancel, wait a
//! few seconds for the tasks to return, and exit 0.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::{Config, ConfigError, Provider};
use crate::notify::{self, smtp::SmtpSender};
use crate::store::Store;
use crate::systemd;
use crate::tracking::Tracker;

/// How often the schedulers look at what is due when nothing kicks them.
pub const SCHEDULER_TICK: Duration = Duration::from_secs(60);
/// How long SIGTERM waits for tasks to finish before exiting anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Backoff for a task whose pass failed: first and largest wait.
pub const TASK_BACKOFF_MIN: Duration = Duration::from_secs(2);
pub const TASK_BACKOFF_MAX: Duration = Duration::from_secs(300);

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Secrets are read when a command needs them; an unreadable one is a
/// config error (exit 78) naming the key and path.
fn require_secrets(cfg: &Config) -> Result<()> {
    let problems = cfg.check_secrets();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError(problems.join("; ")).into())
    }
}

/// Jittered exponential backoff: `attempt` 0 gives about `min`.
pub fn backoff(attempt: u32, min: Duration, max: Duration) -> Duration {
    let base = min.saturating_mul(1u32 << attempt.min(16)).min(max);
    // ±25 % jitter so that several tasks do not retry in lockstep.
    let jitter = 0.75 + fastrand::f64() * 0.5;
    base.mul_f64(jitter).min(max)
}

// ---------------------------------------------------------------------------
// sync

/// `sync`: one pass of everything that is due now, then exit. Exit 1 when
/// a part failed (e.g. a rejected password); the other parts still run.
pub fn sync_command(cfg: &Config) -> Result<ExitCode> {
    require_secrets(cfg)?;
    let shared = Arc::new(std::sync::Mutex::new(Store::open(&cfg.database)?));
    runtime()?.block_on(async {
        let mut failures = Vec::new();
        if cfg.imap.is_empty() {
            info!("no [imap] configured: not reading mail");
        }
        for account in &cfg.imap {
            match crate::imap::sync_account_once(account, &shared, Utc::now()).await {
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
        if let Err(e) = tracking_pass(cfg, &mut store, None).await {
            error!("tracking failed: {e:#}");
            failures.push(format!("tracking: {e:#}"));
        }
        if cfg.smtp.is_none() {
            info!("no [smtp] configured: warnings and digests stay due and are not sent");
        }
        let sender = smtp_sender(cfg)?;
        if let Err(e) = notification_pass(cfg, &mut store, sender.as_ref()).await {
            error!("notifications failed: {e:#}");
            failures.push(format!("notifications: {e:#}"));
        }
        if failures.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            Err(crate::app::Failed {
                message: format!("sync finished with errors: {}", failures.join("; ")),
            }
            .into())
        }
    })
}

/// One tracking pass (no-op with `provider = "none"`).
async fn tracking_pass(cfg: &Config, store: &mut Store, tracker: Option<&Tracker>) -> Result<()> {
    if cfg.tracking.provider == Provider::None {
        return Ok(());
    }
    let owned;
    let tracker = match tracker {
        Some(t) => t,
        None => {
            owned = Tracker::new(&cfg.tracking)?;
            &owned
        }
    };
    let s = tracker.refresh_due(store, Utc::now()).await?;
    if s.due > 0 {
        info!(
            due = s.due,
            registered = s.registered,
            refreshed = s.refreshed,
            changed = s.changed,
            failed = s.failed,
            queued = s.queued,
            "tracking pass"
        );
    }
    if s.auth_failed {
        anyhow::bail!("the tracking provider rejected the API key; check tracking.api_key_file");
    }
    Ok(())
}

/// One notification pass: warnings and the digest that are due now.
/// Without `[smtp]` (`sender` is `None`) nothing is sent and what is due
/// stays due.
async fn notification_pass(
    cfg: &Config,
    store: &mut Store,
    sender: Option<&SmtpSender>,
) -> Result<()> {
    let Some(sender) = sender else {
        return Ok(());
    };
    // Two processes on one database (`run` and a `sync` from cron or the
    // user) would otherwise both send a pending notification before
    // either marks it sent. An advisory lock next to the database makes
    // the pass exclusive; the kernel drops it when a process dies, so a
    // crash never leaves it held.
    let _lock = match notify_lock(&cfg.database) {
        NotifyLock::Held(f) => Some(f),
        NotifyLock::Busy => {
            info!("another aliwatch process is sending notifications; leaving them to it");
            return Ok(());
        }
        NotifyLock::Unavailable => None,
    };
    let now = Utc::now();
    let report = store.status_report(now, cfg)?;
    let s = notify::send_due(store, &report, cfg, now, sender).await?;
    if s.sent > 0 || s.failed > 0 {
        info!(
            sent = s.sent,
            failed = s.failed,
            waiting = s.waiting,
            "notifications"
        );
    }
    if s.failed > 0 {
        anyhow::bail!(
            "could not send {} notification(s), will retry: {}",
            s.failed,
            s.last_error.unwrap_or_default()
        );
    }
    Ok(())
}

enum NotifyLock {
    Held(std::fs::File),
    /// Another process holds it.
    Busy,
    /// No lock file could be opened (e.g. a read-only directory): go on
    /// without one rather than never notify.
    Unavailable,
}

/// Takes the exclusive notification lock (`<database>.notify-lock`)
/// without waiting.
fn notify_lock(database: &std::path::Path) -> NotifyLock {
    let mut path = database.as_os_str().to_owned();
    path.push(".notify-lock");
    let file = match std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => {
            warn!(path = %std::path::Path::new(&path).display(), error = %e, "cannot open the notification lock file; sending without it");
            return NotifyLock::Unavailable;
        }
    };
    match file.try_lock() {
        Ok(()) => NotifyLock::Held(file),
        Err(std::fs::TryLockError::WouldBlock) => NotifyLock::Busy,
        Err(std::fs::TryLockError::Error(e)) => {
            warn!(error = %e, "cannot lock the notification lock file; sending without it");
            NotifyLock::Unavailable
        }
    }
}

/// The SMTP sender, when `[smtp]` is configured.
fn smtp_sender(cfg: &Config) -> Result<Option<SmtpSender>> {
    cfg.smtp.as_ref().map(SmtpSender::new).transpose()
}

// ---------------------------------------------------------------------------
// run

/// `run`: the daemon, until SIGTERM/SIGINT.
pub fn run_command(cfg: &Config) -> Result<ExitCode> {
    require_secrets(cfg)?;
    runtime()?.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        // Signal streams first (a SIGTERM during start-up must stop us
        // cleanly, not by the default action), and created once
        // (re-creating them per loop pass can lose a signal in between).
        let signals = Signals {
            term: signal(SignalKind::terminate()).context("SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("SIGHUP handler")?,
        };
        // Migrate once up front: a broken database stops the start, before
        // READY=1, with a clear message.
        drop(Store::open(&cfg.database)?);
        let tracker = if cfg.tracking.provider == Provider::None {
            None
        } else {
            Some(Arc::new(Tracker::new(&cfg.tracking)?))
        };
        run(cfg.clone(), tracker, signals).await
    })
}

/// The signals `run` reacts to.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

async fn run(cfg: Config, tracker: Option<Arc<Tracker>>, signals: Signals) -> Result<ExitCode> {
    let Signals {
        term: mut sigterm,
        int: mut sigint,
        hup: mut sighup,
    } = signals;

    let cfg = Arc::new(cfg);
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    // New mail or new state: the schedulers look again at once.
    let kick = Arc::new(Notify::new());

    let mut mailboxes = 0usize;
    for account in &cfg.imap {
        for mailbox in &account.mailboxes {
            mailboxes += 1;
            let (account, mailbox) = (account.clone(), mailbox.clone());
            let (cancel, kick) = (cancel.clone(), kick.clone());
            // Each watcher has its own connection to the database.
            let store = Arc::new(std::sync::Mutex::new(Store::open(&cfg.database)?));
            tasks.spawn(async move {
                crate::imap::watch_mailbox(account, mailbox, store, cancel, move || {
                    kick.notify_waiters()
                })
                .await;
            });
        }
    }
    if let Some(tracker) = tracker {
        let (cfg, cancel, kick) = (cfg.clone(), cancel.clone(), kick.clone());
        tasks.spawn(async move { tracking_loop(&cfg, &tracker, &cancel, &kick).await });
    }
    if cfg.smtp.is_none() {
        warn!("no [smtp] configured: warnings and digests stay due and are not sent");
    }
    {
        let (cfg, cancel, kick) = (cfg.clone(), cancel.clone(), kick.clone());
        tasks.spawn(async move { notification_loop(&cfg, &cancel, &kick).await });
    }
    tasks.close();

    // One connection for the status line, kept open: reopening the
    // database every minute would re-run its integrity check each time.
    let mut status_store: Option<Store> = None;
    systemd::ready(&status_line(&mut status_store, &cfg, mailboxes));
    info!(mailboxes, database = %cfg.database.display(), "aliwatch running");

    let watchdog = systemd::watchdog_interval();
    let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    let mut status_tick = tokio::time::interval(SCHEDULER_TICK);
    status_tick.tick().await;
    loop {
        tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = sighup.recv() => {
                warn!("SIGHUP: the config is read at start only; run `systemctl restart aliwatch` to apply changes");
            }
            _ = watchdog_tick.tick(), if watchdog.is_some() => systemd::watchdog_ping(),
            _ = status_tick.tick() => systemd::status(&status_line(&mut status_store, &cfg, mailboxes)),
        }
    }
    systemd::stopping();
    cancel.cancel();
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
        .await
        .is_err()
    {
        warn!("tasks did not stop within {SHUTDOWN_GRACE:?}; exiting anyway (no transaction is left open)");
    }
    info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The `STATUS=` line `systemctl status` shows.
fn status_line(slot: &mut Option<Store>, cfg: &Config, mailboxes: usize) -> String {
    let parcels = match task_store(slot, cfg).and_then(|s| s.active_parcel_count()) {
        Ok(n) => n.to_string(),
        Err(_) => {
            *slot = None;
            "?".into()
        }
    };
    let digest = if cfg.digest.enabled && cfg.smtp.is_some() {
        format!(", next digest {}", cfg.digest.at.format("%H:%M"))
    } else {
        String::new()
    };
    format!(
        "watching {mailboxes} mailbox{}, {parcels} parcels active{digest}",
        if mailboxes == 1 { "" } else { "es" }
    )
}

/// Waits `delay`, or less when kicked. False when cancelled.
async fn wait_next(cancel: &CancellationToken, kick: &Notify, delay: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = kick.notified() => {
            // Let a burst of new mail settle into one pass.
            tokio::select! {
                _ = cancel.cancelled() => false,
                _ = tokio::time::sleep(Duration::from_millis(200)) => true,
            }
        }
        _ = tokio::time::sleep(delay) => true,
    }
}

/// The delay before the next pass after one that succeeded or failed
/// `failures` times in a row.
fn next_delay(name: &str, result: Result<()>, failures: &mut u32) -> Duration {
    match result {
        Ok(()) => {
            *failures = 0;
            SCHEDULER_TICK
        }
        Err(e) => {
            *failures += 1;
            let d = backoff(*failures - 1, TASK_BACKOFF_MIN, TASK_BACKOFF_MAX);
            error!(task = name, retry_in = ?d, "{e:#}");
            d
        }
    }
}

/// Opens the task's own store connection, keeping it across passes and
/// reopening it after an error.
fn task_store<'a>(slot: &'a mut Option<Store>, cfg: &Config) -> Result<&'a mut Store> {
    if slot.is_none() {
        *slot = Some(Store::open(&cfg.database)?);
    }
    slot.as_mut().context("store slot was just filled")
}

/// The tracking scheduler: a pass every [`SCHEDULER_TICK`] (the per-parcel
/// schedule decides what is actually asked for) and after new mail.
async fn tracking_loop(cfg: &Config, tracker: &Tracker, cancel: &CancellationToken, kick: &Notify) {
    let mut slot = None;
    let mut failures = 0;
    loop {
        let result = match task_store(&mut slot, cfg) {
            Ok(store) => tokio::select! {
                r = tracking_pass(cfg, store, Some(tracker)) => r,
                _ = cancel.cancelled() => return,
            },
            Err(e) => Err(e),
        };
        if result.is_err() {
            slot = None;
        }
        let delay = next_delay("tracking", result, &mut failures);
        if !wait_next(cancel, kick, delay).await {
            return;
        }
    }
}

/// The notification scheduler: warnings and the digest, checked every
/// [`SCHEDULER_TICK`] and after every state change.
async fn notification_loop(cfg: &Config, cancel: &CancellationToken, kick: &Notify) {
    let sender = match smtp_sender(cfg) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot set up SMTP, no notifications will be sent: {e:#}");
            return;
        }
    };
    let mut slot = None;
    let mut failures = 0;
    loop {
        let result = match task_store(&mut slot, cfg) {
            Ok(store) => tokio::select! {
                r = notification_pass(cfg, store, sender.as_ref()) => r,
                _ = cancel.cancelled() => return,
            },
            Err(e) => Err(e),
        };
        if result.is_err() {
            slot = None;
        }
        let delay = next_delay("notifications", result, &mut failures);
        if !wait_next(cancel, kick, delay).await {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// digest, check-config --connect

/// `digest --print | --send`.
pub fn digest_command(cfg: &Config, print: bool, send: bool) -> Result<ExitCode> {
    let mut store = Store::open(&cfg.database)?;
    let now = Utc::now();
    let report = store.status_report(now, cfg)?;
    if print {
        let email = notify::render_digest(&report, cfg, now);
        print!("{}", email.text);
    }
    if send {
        if cfg.smtp.is_none() {
            return Err(
                ConfigError("digest --send needs an [smtp] section in the config".into()).into(),
            );
        }
        require_secrets(cfg)?;
        let sender = smtp_sender(cfg)?.context("smtp is configured")?;
        let sent = runtime()?.block_on(notify::send_digest_now(
            &mut store, &report, cfg, now, &sender,
        ))?;
        eprintln!("digest sent ({})", sent.message_id);
    }
    Ok(ExitCode::SUCCESS)
}

/// `check-config --connect`: log in to IMAP, SMTP and the tracking API and
/// report each. Exit 1 when one of them fails.
pub fn check_connections(cfg: &Config) -> Result<ExitCode> {
    let rt = runtime()?;
    let mut failed = 0;
    let mut report = |what: String, r: Result<String>| match r {
        Ok(msg) => println!("ok      {what}: {msg}"),
        Err(e) => {
            failed += 1;
            println!("FAILED  {what}: {e:#}");
        }
    };
    for account in &cfg.imap {
        let r = rt.block_on(crate::imap::check_account(account));
        report(format!("imap {}", account.name), r);
    }
    if let Some(smtp) = &cfg.smtp {
        let r = rt.block_on(async {
            let sender = SmtpSender::new(smtp)?;
            sender.test_connection().await?;
            Ok(format!("logged in to {}:{}", smtp.host, smtp.port))
        });
        report("smtp".into(), r);
    }
    if cfg.tracking.provider != Provider::None {
        let r = rt.block_on(async { Tracker::new(&cfg.tracking)?.check().await });
        report(format!("tracking {}", cfg.tracking.provider.as_str()), r);
    }
    if failed > 0 {
        return Err(crate::app::Failed {
            message: format!("{failed} connection check(s) failed"),
        }
        .into());
    }
    Ok(ExitCode::SUCCESS)
}
