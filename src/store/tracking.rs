//! Tracking state in the store: which parcels may be due, the provider's
//! account state, and writing one provider batch (registrations, errors,
//! answers, last-mile numbers, the next check) in one transaction.
//!
//! The policy — what an answer changes, when to ask again — is not decided
//! here: [`Store::apply_provider_batch`] reads each parcel's previous state
//! inside the transaction, hands it to the decision it is given, and writes
//! the result. Invariants kept here: events are deduplicated by the table's
//! UNIQUE (parcel, provider, UTC time, normalised description); a parcel
//! replaced by a last-mile number keeps its orders, and the new number is
//! linked to the same orders.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::facts::{stored_time, stored_time_opt};
use super::{fmt_time, Store};
use crate::facts::{
    ApplyOutcome, DueParcel, Failure, Next, ParcelPrevious, ParcelUpdate, ProviderBatch,
    TrackingCandidate, TrackingState,
};
use crate::model::{description_key, ParcelStatus, TrackResult, TrackingNumber};

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

impl Store {
    /// Parcels that are still followed (not done, not replaced), with when
    /// they are next due and their orders. Never-checked parcels come first,
    /// then by next check and number.
    pub fn tracking_candidates(&self) -> Result<Vec<TrackingCandidate>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.tracking_number, p.registered_at IS NOT NULL, p.carrier_code, p.next_check_at,
                    (SELECT group_concat(op.order_id, ' ') FROM order_parcels op
                     WHERE op.tracking_number = p.tracking_number)
             FROM parcels p
             WHERE p.tracking_done_at IS NULL AND p.replaced_by IS NULL
             ORDER BY p.last_checked_at IS NOT NULL, p.next_check_at, p.tracking_number",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("reading tracked parcels")?;
        rows.into_iter()
            .map(|(number, registered, carrier_code, next, orders)| {
                let next_check_at = stored_time_opt(next, || format!("parcels row {number}"))?;
                Ok(TrackingCandidate {
                    parcel: DueParcel {
                        number: TrackingNumber::new(&number),
                        registered,
                        carrier_code,
                    },
                    next_check_at,
                    orders: orders
                        .unwrap_or_default()
                        .split(' ')
                        .filter(|o| !o.is_empty())
                        .map(str::to_owned)
                        .collect(),
                })
            })
            .collect()
    }

    /// The provider's account state (quota, last error).
    pub fn tracking_state(&self) -> Result<TrackingState> {
        let row = self
            .conn
            .query_row(
                "SELECT quota_exhausted, quota_checked_at, last_error FROM tracking_state WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                },
            )
            .optional()
            .context("reading the tracking state")?;
        let Some((quota_exhausted, checked, last_error)) = row else {
            return Ok(TrackingState::default());
        };
        Ok(TrackingState {
            quota_exhausted,
            quota_checked_at: stored_time_opt(checked, || "tracking_state row".into())?,
            last_error,
        })
    }

    /// Replaces the provider's account state.
    pub fn set_tracking_state(&mut self, state: &TrackingState) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO tracking_state(id, quota_exhausted, quota_checked_at, last_error)
                 VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET quota_exhausted = excluded.quota_exhausted,
                    quota_checked_at = excluded.quota_checked_at, last_error = excluded.last_error",
                params![
                    state.quota_exhausted,
                    state.quota_checked_at.map(fmt_time),
                    state.last_error
                ],
            )
            .context("writing the tracking state")?;
        Ok(())
    }

    /// Writes one provider batch in ONE transaction: registrations, errors,
    /// and each answer with the update `decide` makes of it and the
    /// parcel's previous state (read inside the same transaction).
    pub fn apply_provider_batch(
        &mut self,
        provider: &str,
        batch: &ProviderBatch,
        now: DateTime<Utc>,
        decide: impl Fn(&ParcelPrevious, &TrackResult) -> ParcelUpdate,
    ) -> Result<ApplyOutcome> {
        let mut out = ApplyOutcome::default();
        let tx = self.write_tx()?;
        for (n, code) in &batch.registered {
            tx.execute(
                "UPDATE parcels SET registered_at = COALESCE(registered_at, ?2),
                        carrier_code = COALESCE(?3, carrier_code), tracking_error = NULL
                 WHERE tracking_number = ?1",
                params![n.as_str(), fmt_time(now), code],
            )
            .with_context(|| format!("marking {n} registered"))?;
        }
        for r in &batch.results {
            apply_one(&tx, provider, r, now, &decide, &mut out)
                .with_context(|| format!("storing tracking for {}", r.number))?;
        }
        for n in &batch.unregistered {
            tx.execute(
                "UPDATE parcels SET registered_at = NULL WHERE tracking_number = ?1",
                [n.as_str()],
            )?;
        }
        for (n, msg, failure) in &batch.failed {
            match failure {
                Failure::RetryAt(at) => tx.execute(
                    "UPDATE parcels SET tracking_error = ?2, next_check_at = ?3 WHERE tracking_number = ?1",
                    params![n.as_str(), msg, fmt_time(*at)],
                )?,
                Failure::GiveUp => tx.execute(
                    "UPDATE parcels SET tracking_error = ?2, tracking_done_at = ?3, next_check_at = NULL
                     WHERE tracking_number = ?1",
                    params![n.as_str(), msg, fmt_time(now)],
                )?,
            };
        }
        tx.commit()?;
        Ok(out)
    }

    /// One parcel's tracking columns.
    pub fn tracking_parcel(&self, number: &str) -> Result<Option<ParcelTracking>> {
        type Row = (ParcelTracking, [Option<String>; 6]);
        let row: Option<Row> = self
            .conn
            .query_row(
                "SELECT tracking_number, replaced_by, carrier, carrier_code, provider_status,
                        status_detail, raw_status, eta_from, eta_to, delivered_at, registered_at,
                        last_checked_at, next_check_at, not_found_since, tracking_done_at,
                        tracking_error
                 FROM parcels WHERE tracking_number = ?1",
                [number],
                |r| {
                    Ok((
                        ParcelTracking {
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
                            delivered_at: None,
                            registered_at: None,
                            last_checked_at: None,
                            next_check_at: None,
                            not_found_since: None,
                            tracking_done_at: None,
                            tracking_error: r.get(15)?,
                        },
                        [
                            r.get(9)?,
                            r.get(10)?,
                            r.get(11)?,
                            r.get(12)?,
                            r.get(13)?,
                            r.get(14)?,
                        ],
                    ))
                },
            )
            .optional()?;
        let Some((mut p, [delivered, registered, checked, next, nf, done])) = row else {
            return Ok(None);
        };
        let what = || format!("parcels row {number}");
        p.delivered_at = stored_time_opt(delivered, what)?;
        p.registered_at = stored_time_opt(registered, what)?;
        p.last_checked_at = stored_time_opt(checked, what)?;
        p.next_check_at = stored_time_opt(next, what)?;
        p.not_found_since = stored_time_opt(nf, what)?;
        p.tracking_done_at = stored_time_opt(done, what)?;
        Ok(Some(p))
    }

    /// A parcel's carrier events, newest first.
    pub fn tracking_events(&self, number: &str) -> Result<Vec<StoredEvent>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, provider, time_utc, time_local, description, location, status, raw_code
             FROM events WHERE tracking_number = ?1 ORDER BY time_utc DESC, id",
        )?;
        let rows = stmt
            .query_map([number], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(
                |(id, provider, t, time_local, description, location, status, raw_code)| {
                    Ok(StoredEvent {
                        provider,
                        time_utc: stored_time(&t, || format!("events row {id}"))?,
                        time_local,
                        description,
                        location,
                        status: status.as_deref().and_then(ParcelStatus::parse),
                        raw_code,
                    })
                },
            )
            .collect()
    }
}

/// The stored state `decide` needs, read inside the batch's transaction.
fn previous(tx: &Transaction<'_>, r: &TrackResult) -> Result<Option<ParcelPrevious>> {
    type Row = [Option<String>; 5];
    let row: Option<Row> = tx
        .query_row(
            "SELECT provider_status, delivered_at, not_found_since, last_checked_at, replaced_by
             FROM parcels WHERE tracking_number = ?1",
            [r.number.as_str()],
            |row| {
                Ok([
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ])
            },
        )
        .optional()?;
    let Some([status, delivered, nf, checked, replaced_by]) = row else {
        return Ok(None);
    };
    let what = || format!("parcels row {}", r.number);
    let last_mile_replaced_by = match &r.last_mile {
        Some(m) => tx
            .query_row(
                "SELECT replaced_by FROM parcels WHERE tracking_number = ?1",
                [m.as_str()],
                |row| row.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten(),
        None => None,
    };
    Ok(Some(ParcelPrevious {
        status: status.as_deref().and_then(ParcelStatus::parse),
        delivered_at: stored_time_opt(delivered, what)?,
        not_found_since: stored_time_opt(nf, what)?,
        last_checked_at: stored_time_opt(checked, what)?,
        replaced_by,
        last_mile_replaced_by,
    }))
}

fn apply_one(
    tx: &Transaction<'_>,
    provider: &str,
    r: &TrackResult,
    now: DateTime<Utc>,
    decide: &impl Fn(&ParcelPrevious, &TrackResult) -> ParcelUpdate,
    out: &mut ApplyOutcome,
) -> Result<()> {
    let Some(prev) = previous(tx, r)? else {
        tracing::debug!(number = %r.number, "answer for a parcel that is not in the store");
        return Ok(());
    };
    for e in &r.events {
        let n = tx.execute(
            "INSERT OR IGNORE INTO events(tracking_number, provider, time_utc, time_local,
                    description, description_key, location, status, raw_code)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                r.number.as_str(),
                provider,
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
    let up = decide(&prev, r);
    let (next_at, done_at) = match up.next {
        Next::At(at) => (Some(fmt_time(at)), None),
        Next::Done(reason) => {
            out.done.push((r.number.to_string(), reason));
            (None, Some(fmt_time(now)))
        }
    };
    let (detail, raw) = if up.keep_previous_detail {
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
            r.number.as_str(),
            r.carrier,
            r.carrier_code,
            up.status.as_str(),
            detail,
            raw,
            r.eta_from.map(|d| d.to_string()),
            r.eta_to.map(|d| d.to_string()),
            up.delivered_at.map(fmt_time),
            fmt_time(now),
            next_at,
            up.not_found_since.map(fmt_time),
            done_at,
        ],
    )?;
    if up.changed {
        out.changed += 1;
    }
    if let Some(m) = &up.link_last_mile {
        link_last_mile(tx, &r.number, m, now)?;
        out.last_mile.push(m.to_string());
    }
    Ok(())
}

/// The parcel continues under a last-mile number: the new number joins the
/// same orders; the old one is kept (its orders and events stay) but no
/// longer asked for.
fn link_last_mile(
    tx: &Transaction<'_>,
    number: &TrackingNumber,
    m: &TrackingNumber,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO parcels(tracking_number, first_seen_at) VALUES (?1, ?2)",
        params![m.as_str(), fmt_time(now)],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO order_parcels(order_id, tracking_number)
         SELECT order_id, ?2 FROM order_parcels WHERE tracking_number = ?1",
        params![number.as_str(), m.as_str()],
    )?;
    tx.execute(
        "UPDATE parcels SET replaced_by = ?2,
                tracking_done_at = COALESCE(tracking_done_at, ?3), next_check_at = NULL
         WHERE tracking_number = ?1",
        params![number.as_str(), m.as_str(), fmt_time(now)],
    )?;
    tracing::info!(number = %number, last_mile = %m, "parcel continues under a last-mile number");
    Ok(())
}
