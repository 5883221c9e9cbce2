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

    /// Notifications in the ledger: (channel, state) → count.
    pub fn notification_counts(&self) -> Result<BTreeMap<(String, String), u64>> {
        let mut stmt = self.conn.prepare(
            "SELECT channel, state, COUNT(*) FROM notifications GROUP BY channel, state",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (c, s, n) = row?;
            out.insert((c, s), u64::try_from(n).unwrap_or(0));
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
