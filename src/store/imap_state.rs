//! IMAP sync state: per (account, mailbox) the server's UIDVALIDITY and the
//! next UID aliwatch has not looked at yet (table `mailbox_state`).
//!
//! The IMAP module advances `uid_next` only after every candidate email
//! below it has been ingested and committed, so a crash re-fetches at most
//! the emails in flight (ingestion is idempotent): exactly-once in effect.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;

use super::{fmt_time, Store};

pub use crate::model::MailboxState;

impl Store {
    /// The stored state of `mailbox` in `account`, if it was ever synced.
    pub fn mailbox_state(&self, account: &str, mailbox: &str) -> Result<Option<MailboxState>> {
        self.conn
            .query_row(
                "SELECT uidvalidity, uid_next FROM mailbox_state WHERE account = ?1 AND mailbox = ?2",
                (account, mailbox),
                |r| {
                    let v: i64 = r.get(0)?;
                    let n: i64 = r.get(1)?;
                    Ok(MailboxState {
                        uidvalidity: u32::try_from(v).unwrap_or(0),
                        uid_next: u32::try_from(n).unwrap_or(1),
                    })
                },
            )
            .optional()
            .with_context(|| format!("reading the sync state of {account}/{mailbox}"))
    }

    /// Records the state of `mailbox` (upsert) and when it was synced.
    pub fn set_mailbox_state(
        &self,
        account: &str,
        mailbox: &str,
        state: MailboxState,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO mailbox_state(account, mailbox, uidvalidity, uid_next, last_sync_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(account, mailbox) DO UPDATE SET
                    uidvalidity = excluded.uidvalidity,
                    uid_next = excluded.uid_next,
                    last_sync_at = excluded.last_sync_at",
                (
                    account,
                    mailbox,
                    i64::from(state.uidvalidity),
                    i64::from(state.uid_next),
                    fmt_time(now),
                ),
            )
            .with_context(|| format!("writing the sync state of {account}/{mailbox}"))?;
        Ok(())
    }
}

/// The `meta` key prefix of one mailbox's missing-UID counters.
fn misses_prefix(account: &str, mailbox: &str, uidvalidity: u32) -> String {
    format!("imap.missing:{account}/{mailbox}:{uidvalidity}:")
}

impl Store {
    /// Candidate UIDs a fetch left out, with the passes each was missing
    /// (kept in `meta`, one key per UID; few ever exist).
    pub fn fetch_misses(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<std::collections::BTreeMap<u32, u32>> {
        let prefix = misses_prefix(account, mailbox, uidvalidity);
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM meta WHERE substr(key, 1, length(?1)) = ?1")?;
        let rows = stmt.query_map([&prefix], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = std::collections::BTreeMap::new();
        for row in rows {
            let (k, v) = row?;
            if let (Some(uid), Ok(n)) = (
                k.get(prefix.len()..).and_then(|u| u.parse::<u32>().ok()),
                v.parse::<u32>(),
            ) {
                out.insert(uid, n);
            }
        }
        Ok(out)
    }

    /// Sets (or with `passes == 0` removes) one missing-UID counter.
    pub fn set_fetch_misses(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
        uid: u32,
        passes: u32,
    ) -> Result<()> {
        let key = format!("{}{uid}", misses_prefix(account, mailbox, uidvalidity));
        if passes == 0 {
            self.conn
                .execute("DELETE FROM meta WHERE key = ?1", [&key])?;
        } else {
            self.conn.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (&key, passes.to_string()),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_upserts() {
        let store = Store::open_in_memory().expect("opens");
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(store.mailbox_state("a", "INBOX").expect("reads"), None);
        let s1 = MailboxState {
            uidvalidity: 7,
            uid_next: 10,
        };
        store
            .set_mailbox_state("a", "INBOX", s1, now)
            .expect("writes");
        assert_eq!(store.mailbox_state("a", "INBOX").expect("reads"), Some(s1));
        let s2 = MailboxState {
            uidvalidity: u32::MAX,
            uid_next: 42,
        };
        store
            .set_mailbox_state("a", "INBOX", s2, now)
            .expect("writes");
        assert_eq!(store.mailbox_state("a", "INBOX").expect("reads"), Some(s2));
        assert_eq!(store.mailbox_state("b", "INBOX").expect("reads"), None);
    }
}
