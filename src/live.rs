//! What only the running daemon knows, in memory: whether each mailbox's
//! watcher holds a connection and whether it is in IDLE right now. The
//! IMAP watchers write it; the web face (`/metrics`, `/healthz`) reads it.
//! Everything else the web face shows comes from the database.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One mailbox watcher's connection, as it is now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxLive {
    pub connected: bool,
    pub idling: bool,
}

/// Every watcher's [`MailboxLive`], keyed (account, mailbox).
#[derive(Debug, Default)]
pub struct Live {
    mailboxes: Mutex<BTreeMap<(String, String), MailboxLive>>,
}

impl Live {
    /// A shared, empty registry.
    pub fn new() -> Arc<Live> {
        Arc::new(Live::default())
    }

    /// The state of (account, mailbox); never reported: all false.
    pub fn mailbox(&self, account: &str, mailbox: &str) -> MailboxLive {
        self.lock()
            .get(&(account.to_string(), mailbox.to_string()))
            .copied()
            .unwrap_or_default()
    }

    /// Records the state of (account, mailbox).
    pub fn set(&self, account: &str, mailbox: &str, state: MailboxLive) {
        self.lock()
            .insert((account.to_string(), mailbox.to_string()), state);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), MailboxLive>> {
        // A panic while holding this lock cannot leave the map half-written
        // (single inserts): the data is still good.
        self.mailboxes.lock().unwrap_or_else(|p| p.into_inner())
    }
}
