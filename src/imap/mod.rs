//! IMAP: connecting, finding AliExpress candidates without downloading the
//! mailbox, IDLE with a polling fallback, and reconnects with backoff.

// Placeholders until the IMAP module lands.
use crate::config::{Config, ImapAccount};
use crate::store::Store;

/// One pass over every mailbox of `account`.
pub async fn sync_account_once(
    account: &ImapAccount,
    store: &mut Store,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let _ = (account, store, now);
    anyhow::bail!("IMAP is not implemented yet")
}

/// Watches one mailbox until cancelled.
pub async fn watch_mailbox(
    cfg: &Config,
    account: ImapAccount,
    mailbox: String,
    cancel: tokio_util::sync::CancellationToken,
    on_change: impl Fn() + Send,
) {
    let _ = (cfg, account, mailbox, on_change);
    cancel.cancelled().await;
}

/// Logs in and reports the server (placeholder).
pub async fn check_account(account: &ImapAccount) -> anyhow::Result<String> {
    let _ = account;
    anyhow::bail!("IMAP is not implemented yet")
}
