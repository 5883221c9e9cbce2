//! The daemon (`run`): tasks, signals, the watchdog and the status line.
//! What each task does in one pass is the pipeline's; this module only
//! decides when passes run and how they stop.
//!
//! `run` is a set of independent tasks under one cancellation token (Delta
//! Chat's scheduler): one IMAP watcher per mailbox, the tracking scheduler,
//! the notification scheduler and, with `[http]`, the web face. Each task owns its own SQLite
//! connection (WAL lets them work side by side; the busy timeout serialises
//! writers), so no lock is ever held across an await. Transactions never
//! span an await either, so cancelling a task at any await point leaves
//! the database consistent; SIGTERM therefore only has to cancel, wait a
//! few seconds for the tasks to return, and exit 0.
//!
//! The schedulers pass every [`SCHEDULER_TICK`] and at once when kicked:
//! new mail kicks both, a finished tracking pass kicks the notification
//! scheduler (what a provider said may be due now). Each registers for the
//! kick before its pass, so a kick during a pass is not lost.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::{Config, ConfigError};
use crate::live::{Live, Passes, Troubles};
use crate::pipeline::{self, Ingest};
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
/// How long the daemon waits after its last pass or mail before it gives
/// the heap freed by that burst back ([`crate::memory`]).
pub const HEAP_SETTLE: Duration = Duration::from_secs(2);

/// The async runtime of `run`, `sync` and the network commands: two
/// worker threads are plenty for a handful of connections.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Secrets are read when a command needs them; an unreadable one is a
/// config error (exit 78) naming the key and path.
pub fn require_secrets(cfg: &Config) -> Result<()> {
    secret_outcome(cfg.check_secrets())
}

/// A config problem is exit 78; a `*_command` that failed or timed out is
/// a runtime failure (exit 1), which systemd retries (SPEC §1).
fn secret_outcome(p: crate::config::SecretProblems) -> Result<()> {
    if !p.config.is_empty() {
        let all: Vec<String> = p.config.into_iter().chain(p.unavailable).collect();
        return Err(ConfigError(all.join("; ")).into());
    }
    if !p.unavailable.is_empty() {
        anyhow::bail!("{}", p.unavailable.join("; "));
    }
    Ok(())
}

/// Everything `run` and `sync` check before they start, and
/// `check-config` checks the same way (same messages, exit 78): every
/// secret can be read and the database can be written.
pub fn startup_checks(cfg: &Config) -> Result<()> {
    let mut problems = cfg.check_secrets();
    if let Err(p) = database_writable(&cfg.database) {
        problems.config.push(p);
    }
    secret_outcome(problems)
}

/// Whether the database can be opened for writing (or created), without
/// creating it: an existing file is opened for writing; otherwise the
/// nearest existing folder above it must be a writable directory (probed
/// with a file created and removed at once).
fn database_writable(path: &std::path::Path) -> std::result::Result<(), String> {
    let shown = path.display();
    if path.is_dir() {
        return Err(format!("database {shown}: is a directory, not a file"));
    }
    if path.exists() {
        return std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map(drop)
            .map_err(|e| format!("database {shown}: cannot be written: {e}"));
    }
    let mut dir = path.parent().map(std::path::Path::to_path_buf);
    while let Some(d) = dir.clone() {
        if d.as_os_str().is_empty() {
            dir = Some(std::path::PathBuf::from("."));
            break;
        }
        if d.exists() {
            break;
        }
        dir = d.parent().map(std::path::Path::to_path_buf);
    }
    let dir = dir.unwrap_or_else(|| std::path::PathBuf::from("/"));
    if !dir.is_dir() {
        return Err(format!(
            "database {shown}: cannot be created: {} is not a directory",
            dir.display()
        ));
    }
    let probe = dir.join(format!(".aliwatch-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "database {shown}: cannot be created: the directory {} is not writable: {e}",
            dir.display()
        )),
    }
}

/// One tracking pass (no-op without a tracker); a refused key fails it.
pub async fn tracking_pass(
    cfg: &Config,
    store: &mut Store,
    tracker: Option<&Tracker>,
) -> Result<()> {
    let Some(tracker) = tracker else {
        return Ok(());
    };
    let s = pipeline::tracking_pass(store, tracker, &cfg.rules(), Utc::now()).await?;
    if s.auth_failed {
        anyhow::bail!("the tracking provider rejected the API key; check tracking.api_key_file");
    }
    // A request that failed after its retries leaves its parcels due for
    // the next pass; `sync` still reports it (exit 1), as for IMAP.
    if s.failed > 0 {
        anyhow::bail!(
            "{} parcel(s) not refreshed: {}",
            s.failed,
            s.errors.join("; ")
        );
    }
    Ok(())
}

/// The `[[notify]]` channels that can be set up (needs the runtime: an
/// MQTT channel starts its connection task). One that cannot (an unreadable
/// `ca_file`) is logged and left out, so it never keeps the others or the
/// email from being sent. `hooks` are what a channel may ask of this
/// process (publish the state again soon; a Home Assistant button press).
/// `instance` is the database's instance id (MQTT discovery ids).
pub fn push_channels_or_log(
    cfg: &Config,
    hooks: crate::notify::Hooks,
    instance: &str,
) -> Vec<Box<dyn crate::notify::Notifier>> {
    let mut out: Vec<Box<dyn crate::notify::Notifier>> = Vec::new();
    for n in &cfg.notify {
        match crate::notify::build(n, hooks.clone(), instance) {
            Ok(c) => out.push(c),
            Err(e) => {
                error!(channel = %n.name, "cannot set up the push channel, it gets nothing: {e:#}")
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// run

/// `run`: the daemon, until SIGTERM/SIGINT.
pub fn run_command(cfg: &Config) -> Result<ExitCode> {
    if cfg.source.is_none() {
        return Err(ConfigError(
            "no config file: `run` needs one with at least an [imap] account (looked at -c, $ALIWATCH_CONFIG, /etc/aliwatch/config.toml and $XDG_CONFIG_HOME/aliwatch/config.toml; start from config.example.toml)".into(),
        )
        .into());
    }
    startup_checks(cfg)?;
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
        let mut daemon_lock = daemon_lock(&cfg.database).await?;
        warn_outside_state_directory(&cfg.database);
        // The command line reaches this process through its control socket
        // (named in the lock file once it listens).
        let socket = crate::control::socket_path(&cfg.database).map_err(|e| anyhow::anyhow!(e))?;
        let control = crate::control::server::bind(&socket)?;
        crate::store::locks::describe(&mut daemon_lock, "run", Some(&socket)).with_context(
            || format!("cannot write the daemon lock of {}", cfg.database.display()),
        )?;
        let tracker = Tracker::new(&cfg.tracking)?.map(Arc::new);
        // The web face's port is taken before READY=1: a port in use stops
        // the start with a clear message.
        let listener = match &cfg.http {
            Some(h) => Some(crate::web::bind(h.listen).await?),
            None => None,
        };
        let control = (control, socket);
        run(cfg.clone(), tracker, listener, control, signals).await
    })
}

/// Under systemd, a database outside the unit's `StateDirectory=` is
/// probably a config written for another setup: say so once.
fn warn_outside_state_directory(database: &std::path::Path) {
    let Some(dirs) = std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) else {
        return;
    };
    let dirs = dirs.to_string_lossy().into_owned();
    if !dirs.split(':').any(|d| database.starts_with(d)) {
        warn!(database = %database.display(), state_directory = %dirs, "the database is outside the service's StateDirectory; commands from a shell use the same config and so the same database, but set `database` in the config if this is not the one you meant");
    }
}

/// One `run` per database: two would both poll IMAP and the tracking API,
/// and only the lock's holder sends (SPEC §1). The lock
/// (`<database>.run-lock`, taken once the store has created the database
/// and its directory) is held until `run` returns and dropped by the
/// kernel if it dies. A second `run` is refused (exit 1) naming the holder;
/// a command that sends while no service runs (`sync`, `digest --send`)
/// holds it too, and `run` waits for it to finish.
async fn daemon_lock(database: &std::path::Path) -> Result<std::fs::File> {
    use crate::store::locks::{self, Lock};
    let path = locks::lock_path(database, "run");
    let deadline = tokio::time::Instant::now() + crate::control::client::SENDER_WAIT;
    loop {
        match locks::try_lock_as(database, "run", "run") {
            Lock::Held(f) => return Ok(f),
            Lock::Busy(h) if matches!(h.role.as_deref(), Some(r) if r != "run")
                && tokio::time::Instant::now() < deadline =>
            {
                info!(holder = h.role.as_deref().unwrap_or("?"), pid = h.pid, "waiting for an aliwatch command that sends to finish");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Lock::Busy(h) => {
                return Err(anyhow::anyhow!(
                    "another `aliwatch {}`{} is already running on {}; stop it first (systemctl stop aliwatch) or give this one its own --database",
                    h.role.as_deref().unwrap_or("run"),
                    h.pid_words(),
                    database.display()
                ))
            }
            Lock::Unavailable(e) => {
                return Err(anyhow::anyhow!(
                    "cannot take the daemon lock {}: {e}",
                    path.display()
                ))
            }
        }
    }
}

/// The signals `run` reacts to.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

async fn run(
    cfg: Config,
    tracker: Option<Arc<Tracker>>,
    listener: Option<tokio::net::TcpListener>,
    control: (tokio::net::UnixListener, std::path::PathBuf),
    signals: Signals,
) -> Result<ExitCode> {
    let Signals {
        term: mut sigterm,
        int: mut sigint,
        hup: mut sighup,
    } = signals;

    let cfg = Arc::new(cfg);
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    // What the watchers know about their connections (for the web face),
    // what keeps failing (for the status line), and the schedulers' passes
    // (new mail or new state kicks them).
    let live = crate::live::Live::new();
    let troubles = &live.troubles;

    let mut mailboxes = 0usize;
    for account in &cfg.imap {
        for mailbox in &account.mailboxes {
            mailboxes += 1;
            let (account, mailbox) = (account.clone(), mailbox.clone());
            let (cancel, live) = (cancel.clone(), live.clone());
            // Each watcher has its own connection to the database.
            let store = Arc::new(std::sync::Mutex::new(Store::open(&cfg.database)?));
            tasks.spawn(async move {
                let kick = live.clone();
                crate::imap::watch_mailbox_live(
                    account,
                    mailbox,
                    Ingest::new(store),
                    cancel,
                    move || {
                        kick.kick();
                        kick.worked.notify_one();
                    },
                    live,
                )
                .await;
            });
        }
    }
    if let Some(tracker) = tracker {
        let (cfg, cancel, live) = (cfg.clone(), cancel.clone(), live.clone());
        tasks.spawn(async move { tracking_loop(&cfg, &tracker, &cancel, &live).await });
    }
    if cfg.smtp.is_none() {
        warn!("no [smtp] configured: warnings and digests stay due and are not sent");
    }
    spawn_channel_loops(&cfg, &tasks, &cancel, &live);
    {
        let (listener, path) = control;
        let service = Arc::new(crate::control::server::Service {
            cfg: cfg.clone(),
            live: live.clone(),
        });
        let cancel = cancel.clone();
        tasks.spawn(
            async move { crate::control::server::serve(listener, path, service, cancel).await },
        );
    }
    if let Some(listener) = listener {
        let web = crate::web::Web::new(cfg.clone(), live.clone())?;
        let token = cfg.http.as_ref().is_some_and(|h| h.token.is_some());
        match listener.local_addr() {
            Ok(addr) => info!(
                "web face on http://{addr}/ ({})",
                if token { "token required" } else { "no token" }
            ),
            Err(e) => warn!("web face listening (address unknown: {e})"),
        }
        let cancel = cancel.clone();
        tasks.spawn(async move { crate::web::serve(listener, web, cancel).await });
    }
    tasks.close();

    // One connection for the status line, kept open: reopening the
    // database every minute would re-run its integrity check each time.
    let mut status_store: Option<Store> = None;
    systemd::ready(&status_line(&mut status_store, &cfg, mailboxes, troubles));
    match task_store(&mut status_store, &cfg).and_then(|s| s.counts()) {
        Ok((emails, orders, parcels)) => {
            info!(mailboxes, emails, orders, parcels, database = %cfg.database.display(), "aliwatch running")
        }
        Err(_) => info!(mailboxes, database = %cfg.database.display(), "aliwatch running"),
    }

    let watchdog = systemd::watchdog_interval();
    let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    let mut status_tick = tokio::time::interval(SCHEDULER_TICK);
    status_tick.tick().await;
    // When to give freed heap back: HEAP_SETTLE after the last pass or
    // mail of a burst (each one moves it on), and at every status tick
    // (bursts of web requests signal nothing).
    let mut release_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = sighup.recv() => {
                warn!("SIGHUP: the config is read at start only; run `systemctl restart aliwatch` to apply changes");
            }
            _ = watchdog_tick.tick(), if watchdog.is_some() => systemd::watchdog_ping(),
            _ = status_tick.tick() => {
                systemd::status(&status_line(&mut status_store, &cfg, mailboxes, troubles));
                crate::memory::release_free_heap();
            }
            _ = live.worked.notified() => release_at = Some(tokio::time::Instant::now() + HEAP_SETTLE),
            _ = sleep_until_some(release_at), if release_at.is_some() => {
                release_at = None;
                crate::memory::release_free_heap();
            }
            _ = troubles.changed.notified() => systemd::status(&status_line(&mut status_store, &cfg, mailboxes, troubles)),
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

/// Sleeps until `at` (forever when `None`; the caller guards the branch).
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// "retrying in 5 min", "retrying in 40 s", "retrying now".
fn retry_words(left: Duration) -> String {
    match left.as_secs() {
        0 => "retrying now".into(),
        s @ 1..90 => format!("retrying in {s} s"),
        s => format!("retrying in {} min", (s + 30) / 60),
    }
}

/// The status line's text, pure: what keeps failing first (one
/// `task: what, retrying in …` per task), then what is watched.
pub fn status_text(
    mailboxes: usize,
    parcels: &str,
    digest_at: Option<chrono::NaiveTime>,
    troubles: &[(String, String, Duration)],
) -> String {
    let mut parts: Vec<String> = troubles
        .iter()
        .map(|(task, what, left)| format!("{task}: {what}, {}", retry_words(*left)))
        .collect();
    let digest = digest_at
        .map(|at| format!(", next digest {}", at.format("%H:%M")))
        .unwrap_or_default();
    parts.push(format!(
        "watching {mailboxes} mailbox{}, {parcels} parcels active{digest}",
        if mailboxes == 1 { "" } else { "es" }
    ));
    parts.join("; ")
}

/// The `STATUS=` line `systemctl status` shows.
fn status_line(
    slot: &mut Option<Store>,
    cfg: &Config,
    mailboxes: usize,
    troubles: &Troubles,
) -> String {
    let rules = cfg.rules();
    let count = |s: &mut Store| pipeline::tracking::active_parcel_count(s, Utc::now(), &rules);
    let parcels = match task_store(slot, cfg).and_then(count) {
        Ok(n) => n.to_string(),
        Err(_) => {
            *slot = None;
            "?".into()
        }
    };
    let digest = (cfg.digest.enabled && cfg.smtp.is_some()).then_some(cfg.digest.at);
    let mut now_troubles = troubles.now();
    if let Some(state) = slot.as_ref().and_then(|s| s.tracking_state().ok()) {
        now_troubles.extend(provider_troubles(&state, Utc::now()));
    }
    status_text(mailboxes, &parcels, digest, &now_troubles)
}

/// Providers left alone (a ban, failures, a rate limit) as status-line
/// troubles, so that `systemctl status` shows why parcels go to another
/// provider and until when.
pub fn provider_troubles(
    state: &crate::facts::TrackingState,
    now: chrono::DateTime<Utc>,
) -> Vec<(String, String, Duration)> {
    state
        .unavailable_now(now)
        .into_iter()
        .map(|(p, why, left)| {
            let why = crate::tracking::excerpt(&why, 80);
            (
                format!("tracking {}", p.as_str()),
                format!("unavailable ({why})"),
                left,
            )
        })
        .collect()
}

/// Waits `delay`, or less when kicked. False when cancelled.
async fn wait_next(cancel: &CancellationToken, passes: &Passes, delay: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = passes.kicked() => {
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
fn next_delay(name: &str, result: Result<()>, failures: &mut u32, troubles: &Troubles) -> Duration {
    match result {
        Ok(()) => {
            *failures = 0;
            troubles.set(name, None);
            SCHEDULER_TICK
        }
        Err(e) => {
            *failures += 1;
            // ±25 % jitter so that several tasks do not retry in lockstep.
            let d = crate::backoff::jittered(
                *failures - 1,
                TASK_BACKOFF_MIN,
                TASK_BACKOFF_MAX,
                0.75,
                1.25,
            )
            .min(TASK_BACKOFF_MAX);
            error!(task = name, retry_in = ?d, "{e:#}");
            troubles.set(name, Some((format!("{e:#}"), d)));
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

/// A Home Assistant button: the same as the command line's `done` or
/// `untrack`, carried out on the blocking pool (SQLite), then the
/// notification pass publishes the new state at once.
fn button_pressed(cfg: Arc<Config>, live: Arc<Live>, c: crate::notify::mqtt::Command) {
    use crate::notify::mqtt::ButtonAction;
    tokio::task::spawn_blocking(move || {
        let now = Utc::now();
        let result = Store::open(&cfg.database).and_then(|mut s| match c.action {
            ButtonAction::Received => crate::ops::done(&mut s, &c.order_id, now),
            ButtonAction::StopTracking => crate::ops::untrack(&mut s, &c.order_id, now),
        });
        match result {
            Ok(said) => {
                info!(order = %c.order_id, button = c.action.as_str(), "Home Assistant: {}", said.trim());
                live.kick();
            }
            Err(e) => {
                warn!(order = %c.order_id, button = c.action.as_str(), "Home Assistant button ignored: {e:#}")
            }
        }
    });
}

/// The tracking scheduler: a pass every [`SCHEDULER_TICK`] (the per-parcel
/// schedule decides what is actually asked for) and after new mail.
async fn tracking_loop(cfg: &Config, tracker: &Tracker, cancel: &CancellationToken, live: &Live) {
    let mut slot = None;
    let mut failures = 0;
    loop {
        live.tracking.begin();
        let result = match task_store(&mut slot, cfg) {
            Ok(store) => tokio::select! {
                r = tracking_pass(cfg, store, Some(tracker)) => r,
                _ = cancel.cancelled() => return,
            },
            Err(e) => Err(e),
        };
        if result.is_err() {
            slot = None;
        } else {
            // New answers may make notifications due.
            live.notifications.kick();
        }
        live.tracking
            .end(result.as_ref().err().map(|e| format!("{e:#}")));
        live.worked.notify_one();
        let delay = next_delay("tracking", result, &mut failures, &live.troubles);
        if !wait_next(cancel, &live.tracking, delay).await {
            return;
        }
    }
}

/// Every channel's notification scheduler (the email's, each
/// `[[notify]]` channel's), each a loop of its own.
fn spawn_channel_loops(
    cfg: &Arc<Config>,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
    live: &Arc<Live>,
) {
    let instance = match Store::open(&cfg.database).and_then(|s| s.instance_id()) {
        Ok(id) => id,
        Err(e) => {
            error!("cannot read the database's instance id, no notifications will be sent: {e:#}");
            return;
        }
    };
    let hooks = {
        let (on_change, on_command) = (live.clone(), live.clone());
        let cfg = cfg.clone();
        crate::notify::Hooks {
            on_change: Arc::new(move || on_change.notifications.kick()),
            on_command: Arc::new(move |c| button_pressed(cfg.clone(), on_command.clone(), c)),
        }
    };
    let push = push_channels_or_log(cfg, hooks, &instance);
    let channels = match pipeline::notify::channels(cfg, push) {
        Ok(c) => c,
        Err(e) => {
            error!("cannot set up SMTP, no notifications will be sent: {e:#}");
            return;
        }
    };
    for channel in channels {
        let (cfg, cancel, live) = (cfg.clone(), cancel.clone(), live.clone());
        let passes = live.notifications.register();
        tasks.spawn(async move { channel_loop(&cfg, channel, &passes, &cancel, &live).await });
    }
}

/// One channel's notification scheduler: its warnings, events and digest,
/// checked every [`SCHEDULER_TICK`] and after every state change, on its
/// own database connection.
async fn channel_loop(
    cfg: &Config,
    channel: Box<dyn crate::notify::Notifier>,
    passes: &Passes,
    cancel: &CancellationToken,
    live: &Live,
) {
    let name = format!("notifications {}", channel.channel());
    // `digest --send` through the control socket sends email too: never
    // beside the email channel's pass.
    let is_email = channel.channel() == crate::notify::email::EMAIL;
    let mut slot = None;
    let mut failures = 0;
    loop {
        passes.begin();
        let result = match task_store(&mut slot, cfg) {
            Ok(store) => tokio::select! {
                r = async {
                    let _sending = if is_email { Some(live.sending.lock().await) } else { None };
                    pipeline::notify::channel_notification_pass(cfg, store, channel.as_ref(), Utc::now()).await
                } => r,
                _ = cancel.cancelled() => break,
            },
            Err(e) => Err(e),
        };
        if result.is_err() {
            slot = None;
        }
        passes.end(result.as_ref().err().map(|e| format!("{e:#}")));
        live.worked.notify_one();
        let delay = next_delay(&name, result, &mut failures, &live.troubles);
        if !wait_next(cancel, passes, delay).await {
            break;
        }
    }
    channel.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_which_provider_is_left_alone_and_until_when() {
        use crate::model::Provider;
        let now = Utc::now();
        let mut state = crate::facts::TrackingState::default();
        assert!(provider_troubles(&state, now).is_empty());
        state.set_unavailable(
            Provider::Cainiao,
            now + chrono::Duration::hours(20),
            "detail.json: rate limited by the provider (retry after None)".into(),
        );
        // A backoff that ran out says nothing.
        state.unavailable.push((
            Provider::SeventeenTrack,
            crate::facts::ProviderAvailability {
                unavailable_until: Some(now - chrono::Duration::minutes(1)),
                reason: Some("old".into()),
            },
        ));
        let t = provider_troubles(&state, now);
        let line = status_text(1, "7", None, &t);
        assert_eq!(
            line,
            "tracking cainiao: unavailable (detail.json: rate limited by the provider (retry after None)), retrying in 1200 min; watching 1 mailbox, 7 parcels active"
        );
    }

    #[test]
    fn the_status_line_says_what_keeps_failing() {
        let s = Duration::from_secs;
        let at = chrono::NaiveTime::from_hms_opt(8, 0, 0);
        let imap = |what: &str, left| ("imap personal/INBOX".to_string(), what.to_string(), left);
        type Trouble = (String, String, Duration);
        let cases: Vec<(Vec<Trouble>, &str)> = vec![
            (vec![], "watching 1 mailbox, 7 parcels active, next digest 08:00"),
            (
                vec![imap("login rejected", s(300))],
                "imap personal/INBOX: login rejected, retrying in 5 min; watching 1 mailbox, 7 parcels active, next digest 08:00",
            ),
            (
                vec![imap("connection refused", s(40))],
                "imap personal/INBOX: connection refused, retrying in 40 s; watching 1 mailbox, 7 parcels active, next digest 08:00",
            ),
            (
                vec![
                    imap("login rejected", s(0)),
                    ("tracking".into(), "the tracking provider rejected the API key".into(), s(125)),
                ],
                "imap personal/INBOX: login rejected, retrying now; tracking: the tracking provider rejected the API key, retrying in 2 min; watching 1 mailbox, 7 parcels active, next digest 08:00",
            ),
        ];
        for (troubles, want) in cases {
            assert_eq!(status_text(1, "7", at, &troubles), want);
        }
        assert_eq!(
            status_text(2, "?", None, &[]),
            "watching 2 mailboxes, ? parcels active"
        );
    }
}
