//! What only the running daemon knows, in memory: whether each mailbox's
//! watcher holds a connection and whether it is in IDLE right now (the
//! web face's `/metrics` and `/healthz` read it), and what keeps failing
//! in which task (the systemd status line reads it). The tasks write it.
//! Everything else comes from the database.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

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
    /// What keeps failing, per task.
    pub troubles: Troubles,
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

/// What keeps failing, per task ("imap personal/INBOX", "tracking",
/// "notifications"): a short text and when the next attempt is. Tasks set
/// and clear their entry; the main loop redraws the status line at once.
#[derive(Debug, Default)]
pub struct Troubles {
    map: std::sync::Mutex<std::collections::BTreeMap<String, (String, Instant)>>,
    pub changed: Notify,
}

impl Troubles {
    /// Sets (`Some((what, retry_in))`) or clears `task`'s trouble.
    pub fn set(&self, task: &str, trouble: Option<(String, Duration)>) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        let changed = match trouble {
            Some((what, retry_in)) => {
                map.insert(
                    task.to_string(),
                    (short_trouble(&what), Instant::now() + retry_in),
                );
                true
            }
            None => map.remove(task).is_some(),
        };
        drop(map);
        if changed {
            self.changed.notify_one();
        }
    }

    /// Every trouble with the time left until its next attempt.
    pub fn now(&self) -> Vec<(String, String, Duration)> {
        let now = Instant::now();
        self.map
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(task, (what, at))| {
                        (
                            task.clone(),
                            what.clone(),
                            at.saturating_duration_since(now),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The most characters of one error the status line shows.
pub const TROUBLE_CHARS: usize = 80;

/// One line, whitespace collapsed, at most [`TROUBLE_CHARS`] characters.
fn short_trouble(what: &str) -> String {
    let one: String = what.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= TROUBLE_CHARS {
        return one;
    }
    let mut s: String = one.chars().take(TROUBLE_CHARS - 1).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn troubles_are_short_and_cleared_by_success() {
        let t = Troubles::default();
        t.set(
            "tracking",
            Some(("a\nlong\n".repeat(40), Duration::from_secs(60))),
        );
        let now = t.now();
        assert_eq!(now.len(), 1);
        assert!(now[0].1.chars().count() <= TROUBLE_CHARS, "{}", now[0].1);
        assert!(now[0].1.starts_with("a long a long"), "{}", now[0].1);
        assert!(now[0].1.ends_with('…'));
        t.set("tracking", None);
        assert!(t.now().is_empty());
    }
}
