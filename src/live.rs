//! What only the running daemon knows, in memory: whether each mailbox's
//! watcher holds a connection and whether it is in IDLE right now (the
//! web face's `/metrics` and `/healthz` read it), and what keeps failing
//! in which task (the systemd status line reads it), and the passes of the
//! tracking and notification schedulers (a kick starts one; the control
//! socket waits for one that started after its request). The tasks write
//! it. Everything else comes from the database.

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
    /// The tracking scheduler's passes.
    pub tracking: Passes,
    /// The notification schedulers' passes, one per channel.
    pub notifications: ChannelPasses,
    /// Held while anything in this process sends (a notification pass,
    /// `digest --send` from the control socket), so two never send the
    /// same notification.
    pub sending: tokio::sync::Mutex<()>,
    /// Signalled when a pass ends or mail arrives: once the work settles
    /// the daemon gives the heap it freed back ([`crate::memory`]).
    pub worked: Notify,
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

    /// New mail or new state: both schedulers look again at once.
    pub fn kick(&self) {
        self.tracking.kick();
        self.notifications.kick();
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

/// The passes of every channel's notification scheduler (each channel has
/// its own, so a slow one delays no other).
#[derive(Debug, Default)]
pub struct ChannelPasses {
    list: Mutex<Vec<Arc<Passes>>>,
}

impl ChannelPasses {
    /// A new channel scheduler's passes.
    pub fn register(&self) -> Arc<Passes> {
        let p = Arc::new(Passes::default());
        if let Ok(mut list) = self.list.lock() {
            list.push(p.clone());
        }
        p
    }

    fn all(&self) -> Vec<Arc<Passes>> {
        self.list.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Asks every channel for a pass.
    pub fn kick(&self) {
        for p in self.all() {
            p.kick();
        }
    }

    /// [`Passes::pass_now`] of every channel: `Some(Ok)` all succeeded,
    /// `Some(Err)` the failures, `None` one did not finish in time. With
    /// no channel there is nothing to wait for.
    pub async fn pass_now(&self, limit: Duration) -> Option<Result<(), String>> {
        let results = futures::future::join_all(self.all().iter().map(|p| {
            let p = p.clone();
            async move { p.pass_now(limit).await }
        }))
        .await;
        let mut failures = Vec::new();
        for r in results {
            match r? {
                Ok(()) => {}
                Err(e) => failures.push(e),
            }
        }
        Some(if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        })
    }
}

/// One scheduler's passes: how many started and finished, and how the last
/// one ended. A kick is kept until the scheduler next waits (a kick during
/// a pass is not lost: another pass follows it).
#[derive(Debug)]
pub struct Passes {
    kick: Notify,
    state: tokio::sync::watch::Sender<PassCount>,
}

/// See [`Passes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassCount {
    pub started: u64,
    pub finished: u64,
    /// The last finished pass's error, if it failed.
    pub last_error: Option<String>,
}

impl Default for Passes {
    fn default() -> Passes {
        Passes {
            kick: Notify::new(),
            state: tokio::sync::watch::Sender::new(PassCount::default()),
        }
    }
}

impl Passes {
    /// Asks for a pass as soon as the scheduler is free.
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    /// Resolves when kicked (the scheduler's side).
    pub async fn kicked(&self) {
        self.kick.notified().await;
    }

    /// The scheduler starts a pass.
    pub fn begin(&self) {
        self.state.send_modify(|s| s.started += 1);
    }

    /// The scheduler finished the pass it began.
    pub fn end(&self, error: Option<String>) {
        self.state.send_modify(|s| {
            s.finished = s.started;
            s.last_error = error;
        });
    }

    /// Kicks and waits for a pass that started after this call, at most
    /// `limit`: `Some(Ok)` it succeeded, `Some(Err)` it failed, `None` no
    /// such pass finished in time (or no scheduler runs).
    pub async fn pass_now(&self, limit: Duration) -> Option<Result<(), String>> {
        let mut rx = self.state.subscribe();
        let target = rx.borrow_and_update().started + 1;
        self.kick();
        let done = async {
            let s = rx.wait_for(|s| s.finished >= target).await.ok()?;
            Some(match &s.last_error {
                None => Ok(()),
                Some(e) => Err(e.clone()),
            })
        };
        tokio::time::timeout(limit, done).await.ok().flatten()
    }
}

#[cfg(test)]
mod pass_tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_pass_asked_for_during_a_pass_is_the_next_one() {
        let passes = Arc::new(Passes::default());
        passes.begin();
        let waiter = {
            let p = passes.clone();
            tokio::spawn(async move { p.pass_now(Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        // The pass that was running when asked does not count...
        passes.end(None);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        // ...the kick was kept, and the next pass answers.
        passes.kicked().await;
        passes.begin();
        passes.end(Some("smtp: refused".into()));
        assert_eq!(
            waiter.await.expect("joins"),
            Some(Err("smtp: refused".to_string()))
        );
        // Nobody runs passes: the wait ends at its limit.
        assert_eq!(passes.pass_now(Duration::from_millis(50)).await, None);
    }
}
