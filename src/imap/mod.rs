//! IMAP: connecting, finding AliExpress candidates without downloading the
//! mailbox, IDLE with a polling fallback, and reconnects with backoff.
//!
//! - [`connect`]: TCP + TLS/STARTTLS (always verified), greeting, login,
//!   capabilities; timeouts on every step.
//! - [`sync`]: one pass over one mailbox (EXAMINE, `UID SEARCH` for
//!   candidates on the server, `UID FETCH BODY.PEEK[]` in explicit UID
//!   batches, ingestion, `uid_next` bookkeeping in the store).
//! - [`guard`]: what a server may make aliwatch hold (literal, line and
//!   response sizes, below async-imap) and the excerpts errors may quote.
//! - [`watch`]: the per-mailbox loop of `run` (IDLE or polling, reconnects
//!   with jittered exponential backoff, slow retries on a rejected login).
//!
//! aliwatch never changes the user's mail: mailboxes are opened read-only
//! (EXAMINE), bodies are fetched with `BODY.PEEK[]` (no `\Seen`), and no
//! STORE/COPY/MOVE/EXPUNGE/DELETE is ever sent.
//!
//! Fetched emails go to a [`MailSink`] the caller gives (the pipeline's,
//! which extracts and records them): this module knows IMAP, not the
//! database. Sink calls are synchronous and never span an await.

pub mod connect;
pub mod guard;
pub mod sync;
pub mod watch;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::config::ImapAccount;
use crate::model::{EmailOrigin, IngestOutcome, MailboxState};

pub use connect::AuthRejected;
pub use sync::MailboxSync;
pub use watch::{watch_mailbox_live, watch_mailbox_with};

/// Where fetched emails go, and where each mailbox's position is kept.
/// The position moves only after the emails below it were handed over.
pub trait MailSink: Send + Sync {
    /// The stored position of `mailbox` in `account`, if it was ever synced.
    fn mailbox_state(&self, account: &str, mailbox: &str) -> Result<Option<MailboxState>>;
    /// Records the position of `mailbox` and when it was synced.
    fn set_mailbox_state(
        &self,
        account: &str,
        mailbox: &str,
        state: MailboxState,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Processes one fetched email (idempotent).
    fn deliver(
        &self,
        raw: &[u8],
        origin: &EmailOrigin,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome>;

    /// For each candidate UID of `mailbox` (under `uidvalidity`) that a
    /// fetch left out in earlier passes, how many passes it was missing.
    fn fetch_misses(
        &self,
        _account: &str,
        _mailbox: &str,
        _uidvalidity: u32,
    ) -> Result<std::collections::BTreeMap<u32, u32>> {
        Ok(std::collections::BTreeMap::new())
    }

    /// Records that `uid` was missing `passes` times (`0`: forget it).
    fn set_fetch_misses(
        &self,
        _account: &str,
        _mailbox: &str,
        _uidvalidity: u32,
        _uid: u32,
        _passes: u32,
    ) -> Result<()> {
        Ok(())
    }
}

/// What `sync_account_once` did.
#[derive(Debug, Clone, Default)]
pub struct SyncSummary {
    pub account: String,
    pub mailboxes: Vec<MailboxSync>,
}

impl SyncSummary {
    /// Emails fetched and handed to ingestion, over all mailboxes.
    pub fn fetched(&self) -> usize {
        self.mailboxes.iter().map(|m| m.fetched).sum()
    }
    /// Emails that were new to the store.
    pub fn new_emails(&self) -> usize {
        self.mailboxes.iter().map(|m| m.new_emails).sum()
    }
    /// Body bytes fetched.
    pub fn bytes_fetched(&self) -> u64 {
        self.mailboxes.iter().map(|m| m.bytes_fetched).sum()
    }
}

/// One pass over every mailbox of `account` (for `aliwatch sync`), then
/// LOGOUT. A rejected login fails with an [`AuthRejected`] error whose
/// message says so.
pub async fn sync_account_once_with(
    account: &ImapAccount,
    sink: &dyn MailSink,
    now: DateTime<Utc>,
) -> Result<SyncSummary> {
    let mut conn = connect::connect(account)
        .await
        .with_context(|| format!("imap account {:?}", account.name))?;
    let mut summary = SyncSummary {
        account: account.name.clone(),
        mailboxes: Vec::new(),
    };
    for mailbox in &account.mailboxes {
        let m = sync::sync_mailbox(&mut conn.session, account, mailbox, sink, now)
            .await
            .with_context(|| format!("imap account {:?}", account.name))?;
        summary.mailboxes.push(m);
    }
    // A failed LOGOUT changes nothing: everything is committed already.
    let _ = connect::timed("LOGOUT", connect::COMMAND_TIMEOUT, conn.session.logout()).await;
    Ok(summary)
}

/// `check-config --connect`: logs in to the account, checks that every
/// configured mailbox can be opened read-only, and logs out.
pub async fn check_account(account: &ImapAccount) -> Result<String> {
    let mut conn = connect::connect(account).await?;
    for mailbox in &account.mailboxes {
        connect::timed(
            "EXAMINE",
            connect::COMMAND_TIMEOUT,
            conn.session.examine(mailbox),
        )
        .await
        .with_context(|| format!("cannot open mailbox {mailbox:?}"))?;
    }
    let idle = conn.can_idle;
    let _ = connect::timed("LOGOUT", connect::COMMAND_TIMEOUT, conn.session.logout()).await;
    Ok(format!(
        "logged in to {}:{} as {:?}, {} mailbox(es) readable, IDLE {}",
        account.host,
        account.port,
        account.username,
        account.mailboxes.len(),
        if idle {
            "supported"
        } else {
            "not supported (polling)"
        }
    ))
}
