//! Tracking state in the store: which parcels are due, registration marks,
//! and applying a provider's answers (status, events, ETA, last-mile
//! numbers, the next check) in one transaction per batch.
//!
//! Invariants kept here: events are deduplicated by the table's UNIQUE
//! (parcel, provider, UTC time, normalised description); a parcel never
//! moves back from delivered/returned because of an older event; a parcel
//! replaced by a last-mile number keeps its orders, and the new number is
//! linked to the same orders.

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{fmt_time, parse_time, Store};
use crate::config::Provider;
use crate::model::ParcelStatus;
use crate::tracking::schedule::{self, AfterRefresh, DoneReason, Next};
use crate::tracking::{description_key, TrackResult};

/// A parcel the tracker should ask for now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueParcel {
    pub number: String,
    /// Registered with 17TRACK already.
    pub registered: bool,
    /// The carrier code 17TRACK assigned.
    pub carrier_code: Option<i64>,
}

/// A parcel's tracking columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParcelTracking {
    pub number: String,
    pub replaced_by: Option<String>,
    pub carrier: Option<String>,
    pub carrier_code: Option<i64>,
    pub status: Option<ParcelStatus>,
    pub status_detail: Option<String>,
    pub raw_status: Option<String>,
    pub eta_from: Option<String>,
    pub eta_to: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub registered_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub not_found_since: Option<DateTime<Utc>>,
    pub tracking_done_at: Option<DateTime<Utc>>,
    pub tracking_error: Option<String>,
}

/// A stored carrier event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub provider: String,
    pub time_utc: DateTime<Utc>,
    pub time_local: Option<String>,
    pub description: String,
    pub location: Option<String>,
    pub status: Option<ParcelStatus>,
    pub raw_code: Option<String>,
}

/// What applying one batch changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Parcels whose provider status changed.
    pub changed: usize,
    pub new_events: usize,
    /// Parcels whose tracking ended, and why.
    pub done: Vec<(String, DoneReason)>,
    /// Last-mile numbers created or linked.
    pub last_mile: Vec<String>,
}

/// What to do with a number whose request was answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Ask again at this time.
    RetryAt(DateTime<Utc>),
    /// Never ask again (e.g. the provider says the format is invalid).
    GiveUp,
}

fn time_col(s: Option<String>) -> Option<DateTime<Utc>> {
    s.as_deref().and_then(parse_time)
}

impl Store {
    /// Parcels due for a refresh at `now`: not done, not replaced, not
    /// belonging only to completed orders (`done`, or an email saying
    /// receipt was confirmed / the order closed), and never checked or past
    /// their `next_check_at`. Never-checked parcels come first.
    pub fn tracking_due(&self, now: DateTime<Utc>) -> Result<Vec<DueParcel>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.tracking_number, p.registered_at IS NOT NULL, p.carrier_code
             FROM parcels p
             WHERE p.tracking_done_at IS NULL
               AND p.replaced_by IS NULL
               AND (p.next_check_at IS NULL OR p.next_check_at <= ?1)
               AND NOT (
                 EXISTS (SELECT 1 FROM order_parcels op WHERE op.tracking_number = p.tracking_number)
                 AND NOT EXISTS (
                   SELECT 1 FROM order_parcels op
                   WHERE op.tracking_number = p.tracking_number
                     AND NOT EXISTS (SELECT 1 FROM order_actions a
                                     WHERE a.order_id = op.order_id AND a.action = 'done')
                     AND NOT EXISTS (SELECT 1 FROM order_emails oe
                                     WHERE oe.order_id = op.order_id AND oe.completed = 1)))
             ORDER BY p.last_checked_at IS NOT NULL, p.next_check_at, p.tracking_number",
        )?;
        let rows = stmt
            .query_map([fmt_time(now)], |r| {
                Ok(DueParcel {
                    number: r.get(0)?,
                    registered: r.get(1)?,
                    carrier_code: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("reading due parcels")?;
        Ok(rows)
    }

    /// Records successful 17TRACK registrations (and the carrier assigned).
    pub fn tracking_mark_registered(
        &mut self,
        items: &[(String, Option<i64>)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        for (n, code) in items {
            tx.execute(
                "UPDATE parcels SET registered_at = COALESCE(registered_at, ?2),
                        carrier_code = COALESCE(?3, carrier_code), tracking_error = NULL
                 WHERE tracking_number = ?1",
                params![n, fmt_time(now), code],
            )
            .with_context(|| format!("marking {n} registered"))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets registrations the provider does not know (so the next pass
    /// registers them again).
    pub fn tracking_mark_unregistered(&mut self, numbers: &[String]) -> Result<()> {
        let tx = self.write_tx()?;
        for n in numbers {
            tx.execute(
                "UPDATE parcels SET registered_at = NULL WHERE tracking_number = ?1",
                [n],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records per-number errors from the provider.
    pub fn tracking_record_failure(
        &mut self,
        items: &[(String, String)],
        failure: Failure,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let tx = self.write_tx()?;
        for (n, msg) in items {
            match failure {
                Failure::RetryAt(at) => tx.execute(
                    "UPDATE parcels SET tracking_error = ?2, next_check_at = ?3 WHERE tracking_number = ?1",
                    params![n, msg, fmt_time(at)],
                )?,
                Failure::GiveUp => tx.execute(
                    "UPDATE parcels SET tracking_error = ?2, tracking_done_at = ?3, next_check_at = NULL
                     WHERE tracking_number = ?1",
                    params![n, msg, fmt_time(now)],
                )?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    /// Applies a batch of provider answers in one transaction.
    pub fn tracking_apply(
        &mut self,
        provider: Provider,
        refresh_interval: Duration,
        results: &[TrackResult],
        now: DateTime<Utc>,
    ) -> Result<ApplyOutcome> {
        let mut out = ApplyOutcome::default();
        let tx = self.write_tx()?;
        for r in results {
            apply_one(&tx, provider, refresh_interval, r, now, &mut out)
                .with_context(|| format!("storing tracking for {}", r.number))?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// One parcel's tracking columns.
    pub fn tracking_parcel(&self, number: &str) -> Result<Option<ParcelTracking>> {
        Ok(self
            .conn
            .query_row(
                "SELECT tracking_number, replaced_by, carrier, carrier_code, provider_status,
                        status_detail, raw_status, eta_from, eta_to, delivered_at, registered_at,
                        last_checked_at, next_check_at, not_found_since, tracking_done_at,
                        tracking_error
                 FROM parcels WHERE tracking_number = ?1",
                [number],
                |r| {
                    Ok(ParcelTracking {
                        number: r.get(0)?,
                        replaced_by: r.get(1)?,
                        carrier: r.get(2)?,
                        carrier_code: r.get(3)?,
                        status: r
                            .get::<_, Option<String>>(4)?
                            .as_deref()
                            .and_then(ParcelStatus::parse),
                        status_detail: r.get(5)?,
                        raw_status: r.get(6)?,
                        eta_from: r.get(7)?,
                        eta_to: r.get(8)?,
                        delivered_at: time_col(r.get(9)?),
                        registered_at: time_col(r.get(10)?),
                        last_checked_at: time_col(r.get(11)?),
                        next_check_at: time_col(r.get(12)?),
                        not_found_since: time_col(r.get(13)?),
                        tracking_done_at: time_col(r.get(14)?),
                        tracking_error: r.get(15)?,
                    })
                },
            )
            .optional()?)
    }

    /// A parcel's carrier events, newest first.
    pub fn tracking_events(&self, number: &str) -> Result<Vec<StoredEvent>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT provider, time_utc, time_local, description, location, status, raw_code
             FROM events WHERE tracking_number = ?1 ORDER BY time_utc DESC, id",
        )?;
        let rows = stmt
            .query_map([number], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .filter_map(
                |(provider, t, time_local, description, location, status, raw_code)| {
                    Some(StoredEvent {
                        provider,
                        time_utc: parse_time(&t)?,
                        time_local,
                        description,
                        location,
                        status: status.as_deref().and_then(ParcelStatus::parse),
                        raw_code,
                    })
                },
            )
            .collect())
    }
}

fn apply_one(
    tx: &rusqlite::Transaction<'_>,
    provider: Provider,
    refresh_interval: Duration,
    r: &TrackResult,
    now: DateTime<Utc>,
    out: &mut ApplyOutcome,
) -> Result<()> {
    type Prev = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let prev: Option<Prev> = tx
        .query_row(
            "SELECT provider_status, delivered_at, not_found_since, last_checked_at, replaced_by
             FROM parcels WHERE tracking_number = ?1",
            [&r.number],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            },
        )
        .optional()?;
    let Some((prev_status, prev_delivered, prev_nf, prev_checked, replaced_by)) = prev else {
        tracing::debug!(number = %r.number, "answer for a parcel that is not in the store");
        return Ok(());
    };
    let prev_status = prev_status.as_deref().and_then(ParcelStatus::parse);
    let prev_delivered = time_col(prev_delivered);

    for e in &r.events {
        let n = tx.execute(
            "INSERT OR IGNORE INTO events(tracking_number, provider, time_utc, time_local,
                    description, description_key, location, status, raw_code)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                r.number,
                provider.as_str(),
                fmt_time(e.time_utc),
                e.time_local,
                e.description,
                description_key(&e.description),
                e.location,
                e.status.map(|s| s.as_str()),
                e.raw_code,
            ],
        )?;
        out.new_events += n;
    }

    // Never back from delivered/returned because of an older event (or a
    // provider glitch); a genuinely newer event may still move it.
    let newest = r.events.first().map(|e| e.time_utc);
    let mut status = r.status;
    let mut keep_prev = false;
    if let Some(p) = prev_status {
        let newer = matches!((newest, prev_delivered), (Some(n), Some(d)) if n > d);
        if p.is_final() && !status.is_final() && !newer {
            keep_prev = true;
        }
        // A provider that suddenly finds nothing for a parcel it knew
        // about: keep what we had.
        if !r.found && p != ParcelStatus::Pending {
            keep_prev = true;
        }
    }
    if keep_prev {
        status = prev_status.unwrap_or(status);
    }
    let found = r.found || prev_status.is_some_and(|p| p != ParcelStatus::Pending);
    let not_found_since = if found {
        None
    } else {
        time_col(prev_nf).or(Some(now))
    };
    let delivered_at = if status.is_final() {
        if keep_prev {
            prev_delivered
        } else {
            r.delivered_at.or(prev_delivered).or(newest)
        }
    } else {
        None
    };
    let next = schedule::after_refresh(&AfterRefresh {
        number: &r.number,
        provider,
        base: refresh_interval,
        now,
        prev_status: prev_checked.as_ref().and(prev_status),
        status,
        not_found_since,
    });
    let (next_at, done_at) = match next {
        Next::At(at) => (Some(fmt_time(at)), None),
        Next::Done(reason) => {
            out.done.push((r.number.clone(), reason));
            (None, Some(fmt_time(now)))
        }
    };
    let (detail, raw) = if keep_prev {
        (None, None)
    } else {
        (r.status_detail.clone(), r.raw_status.clone())
    };
    tx.execute(
        "UPDATE parcels SET
            carrier = COALESCE(?2, carrier),
            carrier_code = COALESCE(?3, carrier_code),
            provider_status = ?4,
            status_detail = COALESCE(?5, status_detail),
            raw_status = COALESCE(?6, raw_status),
            eta_from = COALESCE(?7, eta_from),
            eta_to = COALESCE(?8, eta_to),
            delivered_at = ?9,
            last_checked_at = ?10,
            next_check_at = ?11,
            not_found_since = ?12,
            tracking_done_at = ?13,
            tracking_error = NULL
         WHERE tracking_number = ?1",
        params![
            r.number,
            r.carrier,
            r.carrier_code,
            status.as_str(),
            detail,
            raw,
            r.eta_from.map(|d| d.to_string()),
            r.eta_to.map(|d| d.to_string()),
            delivered_at.map(fmt_time),
            fmt_time(now),
            next_at,
            not_found_since.map(fmt_time),
            done_at,
        ],
    )?;
    if prev_status != Some(status) {
        out.changed += 1;
    }

    if let Some(m) = r.last_mile.as_deref() {
        let m_replaced_by: Option<Option<String>> = tx
            .query_row(
                "SELECT replaced_by FROM parcels WHERE tracking_number = ?1",
                [m],
                |row| row.get(0),
            )
            .optional()?;
        let cycle = m_replaced_by.flatten().as_deref() == Some(r.number.as_str());
        if m != r.number && replaced_by.as_deref() != Some(m) && !cycle {
            tx.execute(
                "INSERT OR IGNORE INTO parcels(tracking_number, first_seen_at) VALUES (?1, ?2)",
                params![m, fmt_time(now)],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO order_parcels(order_id, tracking_number)
                 SELECT order_id, ?2 FROM order_parcels WHERE tracking_number = ?1",
                params![r.number, m],
            )?;
            // The old number is kept (its orders and events stay) but no
            // longer asked for: the last-mile number carries on.
            tx.execute(
                "UPDATE parcels SET replaced_by = ?2,
                        tracking_done_at = COALESCE(tracking_done_at, ?3), next_check_at = NULL
                 WHERE tracking_number = ?1",
                params![r.number, m, fmt_time(now)],
            )?;
            tracing::info!(number = %r.number, last_mile = m, "parcel continues under a last-mile number");
            out.last_mile.push(m.to_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::TrackEvent;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
            .single()
            .expect("valid")
    }

    fn store() -> Store {
        let s = Store::open_in_memory().expect("opens");
        s.conn
            .execute_batch(
                "INSERT INTO orders VALUES ('O1', '2026-11-01T00:00:00Z'), ('O2', '2026-11-01T00:00:00Z'),
                                           ('O3', '2026-11-01T00:00:00Z');
                 INSERT INTO parcels(tracking_number, first_seen_at) VALUES
                   ('A', '2026-11-01T00:00:00Z'), ('B', '2026-11-01T00:00:00Z'),
                   ('C', '2026-11-01T00:00:00Z'), ('D', '2026-11-01T00:00:00Z'),
                   ('E', '2026-11-01T00:00:00Z');
                 INSERT INTO order_parcels VALUES ('O1', 'A'), ('O2', 'B'), ('O3', 'E');
                 INSERT INTO order_actions(order_id, action, at) VALUES ('O2', 'done', '2026-11-01T00:00:00Z');
                 INSERT INTO emails(id, dedup_key, content_sha256, is_aliexpress, kind, source, processed_at)
                   VALUES (1, 'k', 'h', 1, 'other', 'import:x', '2026-11-01T00:00:00Z');
                 INSERT INTO order_emails(order_id, email_id, kind, email_date, completed)
                   VALUES ('O3', 1, 'other', '2026-11-01T00:00:00Z', 1);
                 UPDATE parcels SET next_check_at = '2026-11-01T05:00:00Z' WHERE tracking_number = 'D';",
            )
            .expect("seed");
        s
    }

    fn due(s: &Store, now: DateTime<Utc>) -> Vec<String> {
        s.tracking_due(now)
            .expect("reads")
            .into_iter()
            .map(|p| p.number)
            .collect()
    }

    #[test]
    fn due_selection() {
        let s = store();
        // A: order active; C: unassigned; B: order done; E: order completed;
        // D: not yet due.
        assert_eq!(due(&s, t0()), ["A", "C"]);
        assert_eq!(due(&s, t0() + chrono::Duration::hours(5)), ["A", "C", "D"]);
    }

    fn result(n: &str, status: ParcelStatus, events: &[(i64, &str)]) -> TrackResult {
        TrackResult {
            number: n.into(),
            found: true,
            status,
            raw_status: Some(status.as_str().into()),
            status_detail: events.first().map(|e| e.1.to_owned()),
            carrier: Some("Cainiao".into()),
            carrier_code: None,
            events: events
                .iter()
                .map(|(h, d)| TrackEvent {
                    time_utc: t0() + chrono::Duration::hours(*h),
                    time_local: None,
                    description: (*d).into(),
                    location: None,
                    status: None,
                    raw_code: None,
                })
                .collect(),
            eta_from: None,
            eta_to: None,
            delivered_at: None,
            last_mile: None,
        }
    }

    #[test]
    fn apply_dedups_events_and_keeps_final_status() {
        let mut s = store();
        let six = Duration::from_secs(6 * 3600);
        let r = result(
            "A",
            ParcelStatus::Delivered,
            &[(10, "Delivered"), (5, "In transit")],
        );
        let out = s
            .tracking_apply(Provider::Cainiao, six, std::slice::from_ref(&r), t0())
            .expect("applies");
        assert_eq!((out.changed, out.new_events), (1, 2));
        // Same events again, spelled differently: no duplicates; confirmed.
        let mut again = r.clone();
        again.events[0].description = "DELIVERED.".into();
        let out = s
            .tracking_apply(
                Provider::Cainiao,
                six,
                &[again],
                t0() + chrono::Duration::hours(7),
            )
            .expect("applies");
        assert_eq!((out.changed, out.new_events), (0, 0));
        assert_eq!(out.done, vec![("A".to_owned(), DoneReason::Confirmed)]);
        // An older view never moves it back.
        let old = result("A", ParcelStatus::InTransit, &[(5, "In transit")]);
        s.tracking_apply(
            Provider::Cainiao,
            six,
            &[old],
            t0() + chrono::Duration::hours(8),
        )
        .expect("applies");
        let p = s.tracking_parcel("A").expect("reads").expect("exists");
        assert_eq!(p.status, Some(ParcelStatus::Delivered));
        assert_eq!(p.delivered_at, Some(t0() + chrono::Duration::hours(10)));
        assert_eq!(p.status_detail.as_deref(), Some("Delivered"));
        assert_eq!(s.tracking_events("A").expect("reads").len(), 2);
    }
}
