//! The `notifications` table: the once-and-only-once ledger of digests and
//! warnings.
//!
//! Protocol (see `notify::send_due`): a notification is inserted as
//! `pending` in its own committed transaction BEFORE it is sent, and marked
//! `sent` after the server accepted it. A crash in between leaves it
//! `pending`, so it is sent again on the next pass — with the same
//! deterministic Message-ID. We chose "at most one repeat, never a skip":
//! a lost warning can cost the user their refund, a duplicate costs one
//! extra (merged) email. Failed attempts stay `pending` with `attempts`
//! and `last_error`; the time of the last attempt lives in `meta`
//! (`notify.last_attempt:<key>`) because migration v1 has no column for it.

use std::collections::HashSet;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;

use super::{fmt_time, parse_time, Store};
use crate::notify::due::{Notification, NotificationKind};

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    pub key: String,
    pub kind: String,
    pub order_id: Option<String>,
    pub threshold_days: Option<u32>,
    pub digest_date: Option<String>,
    pub message_id: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When the last failed attempt was made (from `meta`).
    pub last_attempt_at: Option<DateTime<Utc>>,
}

fn attempt_meta_key(key: &str) -> String {
    format!("notify.last_attempt:{key}")
}

const COLUMNS: &str = "key, kind, order_id, threshold_days, digest_date, message_id, state, \
                       created_at, sent_at, attempts, last_error";

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<NotificationRecord> {
    let created: String = r.get(7)?;
    let sent: Option<String> = r.get(8)?;
    let threshold: Option<i64> = r.get(3)?;
    let attempts: i64 = r.get(9)?;
    Ok(NotificationRecord {
        key: r.get(0)?,
        kind: r.get(1)?,
        order_id: r.get(2)?,
        threshold_days: threshold.and_then(|t| u32::try_from(t).ok()),
        digest_date: r.get(4)?,
        message_id: r.get(5)?,
        state: r.get(6)?,
        created_at: parse_time(&created).unwrap_or_default(),
        sent_at: sent.as_deref().and_then(parse_time),
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_error: r.get(10)?,
        last_attempt_at: None,
    })
}

impl Store {
    /// Every key in the ledger, whatever its state.
    pub fn notification_keys(&self) -> Result<HashSet<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT key FROM notifications")
            .context("cannot read notifications")?;
        let keys = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<HashSet<_>>>()
            .context("cannot read notifications")?;
        Ok(keys)
    }

    /// Records the intent to send `n` (state `pending`), its superseded
    /// siblings (state `superseded`), and — for a digest — supersedes any
    /// older digest still pending (never a backlog), all in one
    /// transaction. Idempotent: an existing key is left as it is.
    pub fn record_intent(
        &mut self,
        n: &Notification,
        message_id: &str,
        sibling_ids: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self
            .write_tx()
            .context("cannot start notification transaction")?;
        let at = fmt_time(now);
        let (kind, order_id, threshold, date) = match &n.kind {
            NotificationKind::Digest { date } => {
                let d = date.format("%Y-%m-%d").to_string();
                tx.execute(
                    "UPDATE notifications SET state = 'superseded',
                         last_error = 'superseded by a newer digest'
                     WHERE kind = 'digest' AND state = 'pending' AND key <> ?1",
                    [&n.key],
                )?;
                ("digest", None, None, Some(d))
            }
            NotificationKind::Warning {
                order_id,
                threshold_days,
                ..
            } => {
                // A smaller threshold makes a still-pending larger one
                // pointless: one email, for the smallest (SPEC §5).
                tx.execute(
                    "UPDATE notifications SET state = 'superseded', last_error = ?3
                     WHERE kind = 'warning' AND state = 'pending' AND order_id = ?1
                       AND threshold_days > ?2",
                    rusqlite::params![order_id, threshold_days, format!("superseded by {}", n.key)],
                )?;
                (
                    "warning",
                    Some(order_id.clone()),
                    Some(*threshold_days),
                    None,
                )
            }
        };
        tx.execute(
            "INSERT INTO notifications (key, kind, order_id, threshold_days, digest_date,
                                        message_id, state, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7)
             ON CONFLICT(key) DO NOTHING",
            rusqlite::params![n.key, kind, order_id, threshold, date, message_id, at],
        )
        .with_context(|| format!("cannot record notification {}", n.key))?;
        for (key, mid) in sibling_ids {
            let threshold = match crate::notify::due::parse_key(key) {
                Some(crate::notify::due::ParsedKey::Warning { threshold_days, .. }) => {
                    Some(threshold_days)
                }
                _ => None,
            };
            tx.execute(
                "INSERT INTO notifications (key, kind, order_id, threshold_days, message_id,
                                            state, created_at, last_error)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'superseded', ?6, ?7)
                 ON CONFLICT(key) DO NOTHING",
                rusqlite::params![
                    key,
                    kind,
                    order_id,
                    threshold,
                    mid,
                    at,
                    format!("superseded by {}", n.key)
                ],
            )
            .with_context(|| format!("cannot record notification {key}"))?;
        }
        tx.commit()
            .with_context(|| format!("cannot record notification {}", n.key))?;
        Ok(())
    }

    /// One ledger row.
    pub fn notification(&self, key: &str) -> Result<Option<NotificationRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE key = ?1");
        let rec = self
            .conn
            .query_row(&sql, [key], row_to_record)
            .optional()
            .with_context(|| format!("cannot read notification {key}"))?;
        match rec {
            Some(mut r) => {
                r.last_attempt_at = self
                    .meta_get(&attempt_meta_key(&r.key))?
                    .as_deref()
                    .and_then(parse_time);
                Ok(Some(r))
            }
            None => Ok(None),
        }
    }

    /// Every row, oldest first.
    pub fn notifications(&self) -> Result<Vec<NotificationRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM notifications ORDER BY created_at, key");
        let mut st = self.conn.prepare(&sql)?;
        let rows = st
            .query_map([], row_to_record)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("cannot read notifications")?;
        Ok(rows)
    }

    /// Pending rows, oldest first (warnings before a digest created at the
    /// same time, by key order).
    pub fn pending_notifications(&self) -> Result<Vec<NotificationRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE state = 'pending'
             ORDER BY created_at, kind DESC, key"
        );
        let mut st = self.conn.prepare(&sql)?;
        let mut rows = st
            .query_map([], row_to_record)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("cannot read pending notifications")?;
        for r in &mut rows {
            r.last_attempt_at = self
                .meta_get(&attempt_meta_key(&r.key))?
                .as_deref()
                .and_then(parse_time);
        }
        Ok(rows)
    }

    /// The server accepted it.
    pub fn mark_notification_sent(&mut self, key: &str, now: DateTime<Utc>) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "UPDATE notifications SET state = 'sent', sent_at = ?2, attempts = attempts + 1,
                 last_error = NULL
             WHERE key = ?1",
            (key, fmt_time(now)),
        )
        .with_context(|| format!("cannot mark notification {key} as sent"))?;
        tx.execute("DELETE FROM meta WHERE key = ?1", [attempt_meta_key(key)])?;
        tx.commit()
            .with_context(|| format!("cannot mark notification {key} as sent"))?;
        Ok(())
    }

    /// A send failed: stays pending, to be retried with backoff.
    pub fn mark_notification_failed(
        &mut self,
        key: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "UPDATE notifications SET attempts = attempts + 1, last_error = ?2 WHERE key = ?1",
            (key, error),
        )
        .with_context(|| format!("cannot record the failure of notification {key}"))?;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (attempt_meta_key(key), fmt_time(now)),
        )?;
        tx.commit()
            .with_context(|| format!("cannot record the failure of notification {key}"))?;
        Ok(())
    }

    /// A pending notification no longer applies (e.g. the order was
    /// completed meanwhile): it will not be sent.
    pub fn mark_notification_superseded(&mut self, key: &str, reason: &str) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "UPDATE notifications SET state = 'superseded', last_error = ?2
             WHERE key = ?1 AND state = 'pending'",
            (key, reason),
        )
        .with_context(|| format!("cannot update notification {key}"))?;
        tx.execute("DELETE FROM meta WHERE key = ?1", [attempt_meta_key(key)])?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).expect("time")
    }

    fn digest(d: &str) -> Notification {
        let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("date");
        Notification {
            key: format!("digest:{d}"),
            kind: NotificationKind::Digest { date },
            supersedes: vec![],
        }
    }

    #[test]
    fn pending_then_failed_then_sent() {
        let mut s = Store::open_in_memory().expect("store");
        let n = digest("2026-11-28");
        s.record_intent(&n, "<digest.2026-11-28@x>", &[], t("2026-11-28T08:00:00Z"))
            .expect("record");
        // idempotent
        s.record_intent(&n, "<other@x>", &[], t("2026-11-28T09:00:00Z"))
            .expect("record again");
        let p = s.pending_notifications().expect("pending");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].message_id, "<digest.2026-11-28@x>");
        s.mark_notification_failed(&n.key, "connection refused", t("2026-11-28T08:00:01Z"))
            .expect("fail");
        let r = s.notification(&n.key).expect("read").expect("row");
        assert_eq!((r.state.as_str(), r.attempts), ("pending", 1));
        assert_eq!(r.last_attempt_at, Some(t("2026-11-28T08:00:01Z")));
        assert_eq!(r.last_error.as_deref(), Some("connection refused"));
        s.mark_notification_sent(&n.key, t("2026-11-28T08:05:00Z"))
            .expect("sent");
        let r = s.notification(&n.key).expect("read").expect("row");
        assert_eq!((r.state.as_str(), r.attempts), ("sent", 2));
        assert_eq!(r.last_attempt_at, None);
        assert!(s.pending_notifications().expect("pending").is_empty());
        assert!(s.notification_keys().expect("keys").contains(&n.key));
    }

    #[test]
    fn a_new_digest_supersedes_an_older_pending_one() {
        let mut s = Store::open_in_memory().expect("store");
        s.record_intent(
            &digest("2026-11-27"),
            "<a@x>",
            &[],
            t("2026-11-27T08:00:00Z"),
        )
        .expect("record");
        s.record_intent(
            &digest("2026-11-28"),
            "<b@x>",
            &[],
            t("2026-11-28T08:00:00Z"),
        )
        .expect("record");
        let p = s.pending_notifications().expect("pending");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, "digest:2026-11-28");
        let old = s
            .notification("digest:2026-11-27")
            .expect("read")
            .expect("row");
        assert_eq!(old.state, "superseded");
    }

    #[test]
    fn warning_siblings_are_recorded_superseded() {
        let mut s = Store::open_in_memory().expect("store");
        let n = Notification {
            key: "warning:1:2d".into(),
            kind: NotificationKind::Warning {
                order_id: "1".into(),
                threshold_days: 2,
                protection_ends: NaiveDate::from_ymd_opt(2026, 11, 29).expect("date"),
                days_left: 1,
            },
            supersedes: vec!["warning:1:7d".into()],
        };
        s.record_intent(
            &n,
            "<warning.1.2d@x>",
            &[("warning:1:7d".into(), "<warning.1.7d@x>".into())],
            t("2026-11-28T08:00:00Z"),
        )
        .expect("record");
        let r = s.notification("warning:1:7d").expect("read").expect("row");
        assert_eq!(r.state, "superseded");
        assert_eq!(r.threshold_days, Some(7));
        assert_eq!(r.order_id.as_deref(), Some("1"));
        assert_eq!(s.pending_notifications().expect("pending").len(), 1);
    }
}
