//! The watcher of `run`: one connection per mailbox, IDLE when the server
//! has it (RFC 2177), polling otherwise, reconnecting forever with jittered
//! exponential backoff until cancelled.
//!
//! Patterns from Delta Chat core (`src/imap/idle.rs`, `src/scheduler.rs`):
//! IDLE is re-issued every 5 minutes, well inside the 29 minutes after which
//! RFC 2177 lets servers drop an idle client (and inside NAT timeouts);
//! unsolicited responses are drained before IDLE and any EXISTS among them
//! means "sync first"; after IDLE the mailbox is always re-synced, whatever
//! woke us; DONE has a short timeout, so a dead connection is noticed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use tokio_util::sync::CancellationToken;

use super::connect::{self, timed, AuthRejected, ImapSession};
use super::sync::sync_mailbox;
use super::MailSink;
use crate::config::ImapAccount;
use crate::live::{Live, MailboxLive};

/// How long one IDLE lasts before it is re-issued.
pub const IDLE_REFRESH: Duration = Duration::from_secs(5 * 60);
/// How long the server may take to answer DONE.
pub const DONE_TIMEOUT: Duration = Duration::from_secs(15);
/// Backoff bounds for reconnects.
pub const BACKOFF_MIN: Duration = Duration::from_secs(2);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);
/// The least wait after the server rejected our credentials: retrying a
/// wrong password quickly only gets the account locked.
pub const AUTH_RETRY: Duration = Duration::from_secs(5 * 60);

/// Jittered exponential backoff (2 s doubling to 5 min), reset after a
/// successful sync.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The next delay; `jitter` in [0, 1) picks a point in [d/2, d).
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let d = self.next;
        self.next = crate::backoff::exponential(1, self.next, BACKOFF_MAX);
        crate::backoff::spread(d, 0.5, 1.0, jitter)
    }
    /// Back to the shortest delay.
    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// What is wrong with a watcher's connection, for the status line: a
/// short text ("login rejected") and the wait before the next attempt.
pub type Trouble = Option<(String, Duration)>;

/// Watches `mailbox` of `account` until `cancel` fires: hands new
/// candidate emails to `sink` and calls `on_change` after a pass that
/// handed emails over. Never returns an error: connection problems are
/// logged and retried.
pub async fn watch_mailbox_with<S: MailSink>(
    account: ImapAccount,
    mailbox: String,
    ingest: S,
    cancel: CancellationToken,
    on_change: impl Fn() + Send + Sync,
) {
    watch_mailbox_live(account, mailbox, ingest, cancel, on_change, Live::new()).await;
}

/// [`watch_mailbox_with`], reporting the connection in `live`: connected
/// and in IDLE (for the web face), and what keeps failing (for the status
/// line; cleared by the next successful sync).
pub async fn watch_mailbox_live<S: MailSink>(
    account: ImapAccount,
    mailbox: String,
    ingest: S,
    cancel: CancellationToken,
    on_change: impl Fn() + Send + Sync,
    live: Arc<Live>,
) {
    let what = format!("{}/{}", account.name, mailbox);
    let mut backoff = Backoff::default();
    let mut auth_reported = false;
    let mut failures = 0u32;
    loop {
        let mut state = LoopState {
            backoff: &mut backoff,
            auth_reported: &mut auth_reported,
            failures: &mut failures,
        };
        // Dropping the session future at an await point is safe: ingestion
        // and state writes are synchronous, so no email is half-processed.
        let report = Report {
            live: &live,
            account: &account.name,
            mailbox: &mailbox,
        };
        let err = tokio::select! {
            _ = cancel.cancelled() => { report.set(false, false); return }
            e = session(&account, &mailbox, &ingest, &on_change, &mut state, &report) => e,
        };
        report.set(false, false);
        let delay = if let Some(rej) = err.downcast_ref::<AuthRejected>() {
            if !auth_reported {
                tracing::error!(mailbox = %what, error = %rej, "login rejected; retrying every {} minutes", AUTH_RETRY.as_secs() / 60);
                auth_reported = true;
            }
            let delay = backoff.next_delay(fastrand::f64()).max(AUTH_RETRY);
            report.trouble(Some(("login rejected".into(), delay)));
            delay
        } else {
            failures += 1;
            let delay = backoff.next_delay(fastrand::f64());
            // The first failure is often a server restart: quiet about it.
            if failures >= 2 {
                tracing::warn!(mailbox = %what, error = format!("{err:#}"), retry_in_s = delay.as_secs(), "imap connection failed");
                report.trouble(Some((format!("{err:#}"), delay)));
            } else {
                tracing::info!(mailbox = %what, error = format!("{err:#}"), retry_in_s = delay.as_secs(), "imap connection lost; reconnecting");
            }
            delay
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Where a watcher reports its connection.
struct Report<'a> {
    live: &'a Live,
    account: &'a str,
    mailbox: &'a str,
}

impl Report<'_> {
    /// What keeps failing (`None`: nothing any more), for the status line,
    /// under the task's name `imap ACCOUNT/MAILBOX`.
    fn trouble(&self, trouble: Trouble) {
        let task = format!("imap {}/{}", self.account, self.mailbox);
        self.live.troubles.set(&task, trouble);
    }

    fn set(&self, connected: bool, idling: bool) {
        self.live.set(
            self.account,
            self.mailbox,
            MailboxLive { connected, idling },
        );
    }
}

struct LoopState<'a> {
    backoff: &'a mut Backoff,
    auth_reported: &'a mut bool,
    failures: &'a mut u32,
}

/// One connection's life: connect, sync, then wait (IDLE/poll) and sync
/// again, until an error ends it. Returns that error.
async fn session(
    account: &ImapAccount,
    mailbox: &str,
    ingest: &dyn MailSink,
    on_change: &(impl Fn() + Send + Sync),
    state: &mut LoopState<'_>,
    report: &Report<'_>,
) -> anyhow::Error {
    let conn = match connect::connect(account).await {
        Ok(c) => c,
        Err(e) => return e,
    };
    report.set(true, false);
    let use_idle = account.idle && conn.can_idle;
    tracing::debug!(account = %account.name, mailbox, idle = use_idle, "connected");
    let mut session = conn.session;
    loop {
        match sync_mailbox(&mut session, account, mailbox, ingest, chrono::Utc::now()).await {
            Ok(s) => {
                state.backoff.reset();
                *state.auth_reported = false;
                *state.failures = 0;
                report.trouble(None);
                if s.fetched > 0 {
                    on_change();
                }
            }
            Err(e) => return e,
        }
        let r: Result<ImapSession> = if use_idle {
            report.set(true, true);
            let r = idle_once(session).await;
            report.set(true, false);
            r
        } else {
            tokio::time::sleep(account.poll_interval).await;
            Ok(session)
        };
        session = match r {
            Ok(s) => s,
            Err(e) => return e,
        };
    }
}

/// One IDLE round: returns when the server reported something, after
/// [`IDLE_REFRESH`], or at once when changes are already queued.
async fn idle_once(session: ImapSession) -> Result<ImapSession> {
    let mut pending = false;
    while let Ok(r) = session.unsolicited_responses.try_recv() {
        if matches!(
            r,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        ) {
            pending = true;
        }
    }
    if pending {
        return Ok(session);
    }
    let mut handle = session.idle();
    timed("IDLE", connect::COMMAND_TIMEOUT, handle.init()).await?;
    let (fut, _stop) = handle.wait_with_timeout(IDLE_REFRESH + Duration::from_secs(60));
    match tokio::time::timeout(IDLE_REFRESH, fut).await {
        Ok(Ok(IdleResponse::NewData(d))) => tracing::trace!(data = ?d.parsed(), "idle: new data"),
        Ok(Ok(IdleResponse::Timeout)) | Err(_) => tracing::trace!("idle: refresh"),
        // The stream ended: the server closed the connection; DONE fails.
        Ok(Ok(IdleResponse::ManualInterrupt)) => tracing::trace!("idle: interrupted"),
        Ok(Err(e)) => return Err(super::guard::server_error(e).context("IDLE")),
    }
    let session = timed("DONE", DONE_TIMEOUT, handle.done()).await?;
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_caps_and_resets() {
        let mut b = Backoff::default();
        let d: Vec<u64> = (0..10).map(|_| b.next_delay(0.999_999).as_secs()).collect();
        assert_eq!(d, vec![1, 3, 7, 15, 31, 63, 127, 255, 299, 299]);
        let mut b = Backoff::default();
        assert_eq!(b.next_delay(0.0), Duration::from_secs(1));
        assert_eq!(b.next_delay(0.0), Duration::from_secs(2));
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_secs(1));
    }
}
