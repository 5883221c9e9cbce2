//! IMAP: connecting, finding AliExpress candidates without downloading the
//! mailbox, IDLE with a polling fallback, and reconnects with backoff.
//!
//! - [`connect`]: TCP + TLS/STARTTLS (always verified), greeting, login,
//!   capabilities; timeouts on every step.
//! - [`sync`]: one pass over one mailbox (EXAMINE, `UID SEARCH` for
//!   candidates on the server, `UID FETCH BODY.PEEK[]` in explicit UID
//!   batches, ingestion, `uid_next` bookkeeping in the store).
//! - [`watch`]: the per-mailbox loop of `run` (IDLE or polling, reconnects
//!   with jittered exponential backoff, slow retries on a rejected login).
//!
//! aliwatch never changes the user's mail: mailboxes are opened read-only
//! (EXAMINE), bodies are fetched with `BODY.PEEK[]` (no `\Seen`), and no
//! STORE/COPY/MOVE/EXPUNGE/DELETE is ever sent.
//!
//! The store is shared as `Arc<std::sync::Mutex<Store>>`, locked only for
//! the synchronous store calls and never across an await.

pub mod connect;
pub mod sync;
pub mod watch;

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::config::ImapAccount;
use crate::store::orders::ImapLocation;
use crate::store::Store;

pub use connect::AuthRejected;
pub use sync::MailboxSync;
pub use watch::{watch_mailbox, watch_mailbox_with};

/// Called after each email was handed to ingestion (tests and benchmarks
/// count with it).
pub type Observer = Arc<dyn Fn(&ImapLocation, &[u8]) + Send + Sync>;

/// Where fetched emails go: the store, plus an optional observer.
#[derive(Clone)]
pub struct Ingest {
    pub store: Arc<Mutex<Store>>,
    pub observer: Option<Observer>,
}

impl Ingest {
    /// Ingestion into `store` only.
    pub fn new(store: Arc<Mutex<Store>>) -> Ingest {
        Ingest {
            store,
            observer: None,
        }
    }

    /// Also calls `observer` for each email handed to ingestion.
    pub fn with_observer(mut self, observer: Observer) -> Ingest {
        self.observer = Some(observer);
        self
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
pub async fn sync_account_once(
    account: &ImapAccount,
    store: &Arc<Mutex<Store>>,
    now: DateTime<Utc>,
) -> Result<SyncSummary> {
    sync_account_once_with(account, &Ingest::new(store.clone()), now).await
}

/// [`sync_account_once`] with an observer.
pub async fn sync_account_once_with(
    account: &ImapAccount,
    ingest: &Ingest,
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
        let m = sync::sync_mailbox(&mut conn.session, account, mailbox, ingest, now)
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
