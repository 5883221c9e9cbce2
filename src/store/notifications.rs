//! The `notifications` table: the once-and-only-once ledger of digests,
//! warnings and push events, one row per (channel, key). The `kind`
//! column is the key's kind (`warning`, `digest`, `action`,
//! `out_for_delivery`, `delivered`); no migration was needed for the push
//! kinds, and a version that does not know a kind leaves its rows alone.
//!
//! Protocol (see `pipeline::notify`): a notification is inserted as
//! `pending` in its own committed transaction BEFORE it is sent, and marked
//! `sent` after the channel accepted it. A crash in between leaves it
//! `pending`, so it is sent again on the next pass — with the same
//! deterministic id. We chose "at most one repeat, never a skip": a lost
//! warning can cost the user their refund, a duplicate costs one extra
//! (merged) message. Failed attempts stay `pending` with `attempts`,
//! `last_error` and `last_attempt_at`.

use std::collections::HashSet;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;

use super::facts::{stored_time, stored_time_opt};
use super::{fmt_time, Store};
use crate::facts::NotificationRecord;
use crate::model::{NotificationKey, NotificationState};

const COLUMNS: &str = "channel, key, message_id, state, created_at, sent_at, attempts, \
                       last_error, last_attempt_at";

type RawRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
);

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

/// A typed row; `Ok(None)` for a key or state this version does not know
/// (written by a newer aliwatch): it is left alone.
fn typed(row: RawRow) -> Result<Option<NotificationRecord>> {
    let (channel, key, message_id, state, created, sent, attempts, last_error, last_attempt) = row;
    let what = || format!("notifications row ({channel}, {key})");
    let (Ok(parsed), Some(state)) = (key.parse(), NotificationState::parse(&state)) else {
        tracing::warn!(
            channel,
            key,
            "ignoring a notification row this version cannot read"
        );
        return Ok(None);
    };
    Ok(Some(NotificationRecord {
        key: parsed,
        message_id,
        state,
        created_at: stored_time(&created, what)?,
        sent_at: stored_time_opt(sent, what)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_error,
        last_attempt_at: stored_time_opt(last_attempt, what)?,
        channel,
    }))
}

/// The order and threshold columns kept beside the key, for SQL readers.
fn key_columns(key: &NotificationKey) -> (Option<&str>, Option<u32>, Option<String>) {
    match key {
        NotificationKey::Digest(d) => (None, None, Some(d.format("%Y-%m-%d").to_string())),
        NotificationKey::Warning {
            order_id,
            threshold_days,
        } => (Some(order_id.as_str()), Some(*threshold_days), None),
        NotificationKey::Action { order_id, .. } => (Some(order_id.as_str()), None, None),
        NotificationKey::OutForDelivery { .. } | NotificationKey::Delivered { .. } => {
            (None, None, None)
        }
    }
}

impl Store {
    /// Every key in `channel`'s ledger, whatever its state.
    pub fn notification_keys(&self, channel: &str) -> Result<HashSet<NotificationKey>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT key FROM notifications WHERE channel = ?1")
            .context("cannot read notifications")?;
        let keys = st
            .query_map([channel], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("cannot read notifications")?;
        Ok(keys.iter().filter_map(|k| k.parse().ok()).collect())
    }

    /// Records the intent to send `key` on `channel` (state `pending`), its
    /// superseded siblings (state `superseded`), and — for a digest —
    /// supersedes any older digest still pending on the channel (never a
    /// backlog), all in one transaction. A smaller warning threshold makes a
    /// still-pending larger one of the same order pointless (SPEC §5: one
    /// email, for the smallest). Idempotent: an existing key is left as it is.
    pub fn record_intent(
        &mut self,
        channel: &str,
        key: &NotificationKey,
        message_id: &str,
        siblings: &[(NotificationKey, String)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let name = key.to_string();
        let tx = self
            .write_tx()
            .context("cannot start notification transaction")?;
        let at = fmt_time(now);
        match key {
            NotificationKey::Digest(_) => {
                tx.execute(
                    "UPDATE notifications SET state = 'superseded',
                         last_error = 'superseded by a newer digest'
                     WHERE channel = ?1 AND kind = 'digest' AND state = 'pending' AND key <> ?2",
                    rusqlite::params![channel, name],
                )?;
            }
            NotificationKey::Warning {
                order_id,
                threshold_days,
            } => {
                tx.execute(
                    "UPDATE notifications SET state = 'superseded', last_error = ?4
                     WHERE channel = ?1 AND kind = 'warning' AND state = 'pending'
                       AND order_id = ?2 AND threshold_days > ?3",
                    rusqlite::params![
                        channel,
                        order_id,
                        threshold_days,
                        format!("superseded by {name}")
                    ],
                )?;
            }
            // Push events: one row each, nothing they replace.
            NotificationKey::Action { .. }
            | NotificationKey::OutForDelivery { .. }
            | NotificationKey::Delivered { .. } => {}
        }
        let rows = std::iter::once((key, message_id, "pending", None)).chain(siblings.iter().map(
            |(k, mid)| {
                (
                    k,
                    mid.as_str(),
                    "superseded",
                    Some(format!("superseded by {name}")),
                )
            },
        ));
        for (k, mid, state, note) in rows {
            let (order_id, threshold, date) = key_columns(k);
            tx.execute(
                "INSERT INTO notifications (channel, key, kind, order_id, threshold_days,
                                            digest_date, message_id, state, created_at, last_error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(channel, key) DO NOTHING",
                rusqlite::params![
                    channel,
                    k.to_string(),
                    k.kind(),
                    order_id,
                    threshold,
                    date,
                    mid,
                    state,
                    at,
                    note
                ],
            )
            .with_context(|| format!("cannot record notification {k}"))?;
        }
        tx.commit()
            .with_context(|| format!("cannot record notification {name}"))?;
        Ok(())
    }

    /// One ledger row.
    pub fn notification(
        &self,
        channel: &str,
        key: &NotificationKey,
    ) -> Result<Option<NotificationRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE channel = ?1 AND key = ?2");
        let row = self
            .conn
            .query_row(&sql, (channel, key.to_string()), raw_row)
            .optional()
            .with_context(|| format!("cannot read notification {key}"))?;
        Ok(row.map(typed).transpose()?.flatten())
    }

    /// `channel`'s pending rows, oldest first (warnings before a digest
    /// created at the same time, by key order).
    pub fn pending_notifications(&self, channel: &str) -> Result<Vec<NotificationRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE channel = ?1 AND state = 'pending'
             ORDER BY created_at, kind DESC, key"
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows = st
            .query_map([channel], raw_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("cannot read pending notifications")?;
        let mut out = Vec::new();
        for r in rows {
            out.extend(typed(r)?);
        }
        Ok(out)
    }

    /// Records that `keys` go out together under one id (folded warnings),
    /// before that message is sent: a resend after a crash finds the same
    /// rows under the same id and sends the same message.
    pub fn assign_message_id(
        &mut self,
        channel: &str,
        keys: &[NotificationKey],
        message_id: &str,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        for k in keys {
            tx.execute(
                "UPDATE notifications SET message_id = ?3 WHERE channel = ?1 AND key = ?2",
                (channel, k.to_string(), message_id),
            )
            .with_context(|| format!("cannot update notification {k}"))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The channel accepted it.
    pub fn mark_notification_sent(
        &mut self,
        channel: &str,
        key: &NotificationKey,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE notifications SET state = 'sent', sent_at = ?3, attempts = attempts + 1,
                     last_error = NULL, last_attempt_at = NULL
                 WHERE channel = ?1 AND key = ?2",
                (channel, key.to_string(), fmt_time(now)),
            )
            .with_context(|| format!("cannot mark notification {key} as sent"))?;
        Ok(())
    }

    /// A send failed: stays pending, to be retried with backoff.
    pub fn mark_notification_failed(
        &mut self,
        channel: &str,
        key: &NotificationKey,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE notifications SET attempts = attempts + 1, last_error = ?3,
                     last_attempt_at = ?4
                 WHERE channel = ?1 AND key = ?2",
                (channel, key.to_string(), error, fmt_time(now)),
            )
            .with_context(|| format!("cannot record the failure of notification {key}"))?;
        Ok(())
    }

    /// A pending notification no longer applies (e.g. the order was
    /// completed meanwhile): it will not be sent.
    pub fn mark_notification_superseded(
        &mut self,
        channel: &str,
        key: &NotificationKey,
        reason: &str,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE notifications SET state = 'superseded', last_error = ?3,
                     last_attempt_at = NULL
                 WHERE channel = ?1 AND key = ?2 AND state = 'pending'",
                (channel, key.to_string(), reason),
            )
            .with_context(|| format!("cannot update notification {key}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::parse_time;

    const EMAIL: &str = "email";

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).expect("time")
    }

    fn key(k: &str) -> NotificationKey {
        k.parse().expect("key")
    }

    #[test]
    fn pending_then_failed_then_sent() {
        let mut s = Store::open_in_memory().expect("store");
        let n = key("digest:2026-11-28");
        s.record_intent(
            EMAIL,
            &n,
            "<digest.2026-11-28@x>",
            &[],
            t("2026-11-28T08:00:00Z"),
        )
        .expect("record");
        // idempotent
        s.record_intent(EMAIL, &n, "<other@x>", &[], t("2026-11-28T09:00:00Z"))
            .expect("record again");
        let p = s.pending_notifications(EMAIL).expect("pending");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].message_id, "<digest.2026-11-28@x>");
        s.mark_notification_failed(EMAIL, &n, "connection refused", t("2026-11-28T08:00:01Z"))
            .expect("fail");
        let r = s.notification(EMAIL, &n).expect("read").expect("row");
        assert_eq!((r.state.as_str(), r.attempts), ("pending", 1));
        assert_eq!(r.last_attempt_at, Some(t("2026-11-28T08:00:01Z")));
        assert_eq!(r.last_error.as_deref(), Some("connection refused"));
        s.mark_notification_sent(EMAIL, &n, t("2026-11-28T08:05:00Z"))
            .expect("sent");
        let r = s.notification(EMAIL, &n).expect("read").expect("row");
        assert_eq!((r.state.as_str(), r.attempts), ("sent", 2));
        assert_eq!(r.last_attempt_at, None);
        assert!(s.pending_notifications(EMAIL).expect("pending").is_empty());
        assert!(s.notification_keys(EMAIL).expect("keys").contains(&n));
    }

    #[test]
    fn a_new_digest_supersedes_an_older_pending_one() {
        let mut s = Store::open_in_memory().expect("store");
        s.record_intent(
            EMAIL,
            &key("digest:2026-11-27"),
            "<a@x>",
            &[],
            t("2026-11-27T08:00:00Z"),
        )
        .expect("record");
        s.record_intent(
            EMAIL,
            &key("digest:2026-11-28"),
            "<b@x>",
            &[],
            t("2026-11-28T08:00:00Z"),
        )
        .expect("record");
        let p = s.pending_notifications(EMAIL).expect("pending");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, "digest:2026-11-28");
        let old = s
            .notification(EMAIL, &key("digest:2026-11-27"))
            .expect("read")
            .expect("row");
        assert_eq!(old.state, "superseded");
    }

    #[test]
    fn warning_siblings_are_recorded_superseded() {
        let mut s = Store::open_in_memory().expect("store");
        s.record_intent(
            EMAIL,
            &key("warning:1:2d"),
            "<warning.1.2d@x>",
            &[(key("warning:1:7d"), "<warning.1.7d@x>".into())],
            t("2026-11-28T08:00:00Z"),
        )
        .expect("record");
        let r = s
            .notification(EMAIL, &key("warning:1:7d"))
            .expect("read")
            .expect("row");
        assert_eq!(r.state, "superseded");
        assert_eq!(
            r.key,
            NotificationKey::Warning {
                order_id: "1".into(),
                threshold_days: 7
            }
        );
        assert_eq!(s.pending_notifications(EMAIL).expect("pending").len(), 1);
    }

    #[test]
    fn each_channel_has_its_own_ledger() {
        let mut s = Store::open_in_memory().expect("store");
        let n = key("warning:1:7d");
        s.record_intent(EMAIL, &n, "<w@x>", &[], t("2026-11-28T08:00:00Z"))
            .expect("record");
        s.mark_notification_sent(EMAIL, &n, t("2026-11-28T08:00:01Z"))
            .expect("sent");
        s.record_intent("phone", &n, "w-phone", &[], t("2026-11-28T08:00:00Z"))
            .expect("record");
        assert_eq!(s.pending_notifications(EMAIL).expect("pending").len(), 0);
        assert_eq!(s.pending_notifications("phone").expect("pending").len(), 1);
    }
}
