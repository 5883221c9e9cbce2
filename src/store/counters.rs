//! What `/metrics` reads from the database: counters that survive
//! restarts, the ledger's notification counts and each mailbox's last
//! sync.
//!
//! Counters live in the `meta` key/value table (no schema change): one
//! row per series, key `counter:NAME:LABEL1:LABEL2`, value the count.
//! Labels must not contain `:` (provider names and outcomes do not).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::{parse_time, Store};

/// The `meta` key prefix of counter `name`.
fn prefix(name: &str) -> String {
    format!("counter:{name}:")
}

impl Store {
    /// Adds `by` to each (label, label) series of counter `name`, in one
    /// transaction.
    pub fn add_counters(&mut self, name: &str, by: &BTreeMap<(String, String), u64>) -> Result<()> {
        if by.values().all(|n| *n == 0) {
            return Ok(());
        }
        let tx = self.write_tx()?;
        for ((a, b), n) in by {
            if *n == 0 {
                continue;
            }
            let key = format!("{}{a}:{b}", prefix(name));
            tx.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET
                    value = CAST(CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER) AS TEXT)",
                (&key, n.to_string()),
            )
            .with_context(|| format!("counting {key}"))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every series of counter `name`: (label, label) → count.
    pub fn counters(&self, name: &str) -> Result<BTreeMap<(String, String), u64>> {
        let p = prefix(name);
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM meta WHERE substr(key, 1, length(?1)) = ?1")?;
        let rows = stmt.query_map([&p], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (k, v) = row?;
            let labels = k.get(p.len()..).unwrap_or("");
            if let (Some((a, b)), Ok(n)) = (labels.split_once(':'), v.parse::<u64>()) {
                out.insert((a.to_string(), b.to_string()), n);
            }
        }
        Ok(out)
    }

    /// What the ledger has done, per channel, as counters that only grow
    /// (issue 21: a count of rows by state fell whenever a pending one was
    /// sent): (channel, outcome) → count, outcomes `sent` (notifications
    /// delivered), `failed` (attempts that failed; each is retried) and
    /// `superseded` (due ones that no longer applied). A row never leaves
    /// `sent` or `superseded`, and its `attempts` only grow (the one that
    /// succeeded is in `sent`).
    pub fn notification_counts(&self) -> Result<BTreeMap<(String, String), u64>> {
        let mut stmt = self.conn.prepare(
            "SELECT channel,
                    SUM(state = 'sent'),
                    SUM(attempts) - SUM(state = 'sent'),
                    SUM(state = 'superseded')
             FROM notifications GROUP BY channel",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                [
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ],
            ))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (channel, counts) = row?;
            for (outcome, n) in ["sent", "failed", "superseded"].into_iter().zip(counts) {
                out.insert(
                    (channel.clone(), outcome.to_string()),
                    u64::try_from(n).unwrap_or(0),
                );
            }
        }
        Ok(out)
    }

    /// Notifications due and not yet delivered, per channel (a gauge).
    pub fn notifications_pending(&self) -> Result<BTreeMap<String, u64>> {
        let mut stmt = self.conn.prepare(
            "SELECT channel, SUM(state = 'pending') FROM notifications GROUP BY channel",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (channel, n) = row?;
            out.insert(channel, u64::try_from(n).unwrap_or(0));
        }
        Ok(out)
    }

    /// When each mailbox last finished a sync: (account, mailbox) → time.
    pub fn mailbox_syncs(&self) -> Result<BTreeMap<(String, String), DateTime<Utc>>> {
        let mut stmt = self
            .conn
            .prepare("SELECT account, mailbox, last_sync_at FROM mailbox_state")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (a, m, t) = row?;
            if let Some(t) = t.as_deref().and_then(parse_time) {
                out.insert((a, m), t);
            }
        }
        Ok(out)
    }

    /// Whether the database answers (a read of its schema version).
    pub fn ping(&self) -> Result<()> {
        self.schema_version().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 21: `aliwatch_notifications_total{state="pending"}` fell when
    /// a pending notification was sent; a counter never falls.
    #[test]
    fn notification_counters_only_grow_as_a_notification_fails_and_is_sent() {
        let mut s = Store::open_in_memory().expect("opens");
        let now = Utc::now();
        let key = crate::decide::notifications::digest_key(now.date_naive());
        let mut seen: Vec<BTreeMap<(String, String), u64>> = Vec::new();
        s.record_intent("email", &key, "<d@x>", &[], now)
            .expect("intent");
        seen.push(s.notification_counts().expect("counts"));
        assert_eq!(s.notifications_pending().expect("pending")["email"], 1);
        s.mark_notification_failed("email", &key, "refused", now)
            .expect("failed");
        seen.push(s.notification_counts().expect("counts"));
        s.mark_notification_sent("email", &key, now).expect("sent");
        seen.push(s.notification_counts().expect("counts"));
        for pair in seen.windows(2) {
            for (label, n) in &pair[0] {
                assert!(
                    pair[1].get(label).copied().unwrap_or(0) >= *n,
                    "{label:?} fell: {seen:?}"
                );
            }
        }
        let last = seen.last().expect("counts");
        let k = |o: &str| ("email".to_string(), o.to_string());
        assert_eq!(
            (last[&k("sent")], last[&k("failed")], last[&k("superseded")]),
            (1, 1, 0)
        );
        assert_eq!(s.notifications_pending().expect("pending")["email"], 0);
    }

    #[test]
    fn counters_add_up_across_calls_and_keep_their_labels() {
        let mut s = Store::open_in_memory().expect("opens");
        let k = |a: &str, b: &str| (a.to_string(), b.to_string());
        s.add_counters(
            "t",
            &[(k("17track", "ok"), 3), (k("17track", "error"), 0)].into(),
        )
        .expect("adds");
        s.add_counters(
            "t",
            &[(k("17track", "ok"), 2), (k("cainiao", "error"), 1)].into(),
        )
        .expect("adds");
        assert_eq!(
            s.counters("t").expect("reads"),
            [(k("17track", "ok"), 5), (k("cainiao", "error"), 1)].into()
        );
        assert!(s.counters("other").expect("reads").is_empty());
    }
}
