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
use std::collections::HashMap;

use crate::facts::{
    ApplyOutcome, DueParcel, Failure, Next, ParcelPrevious, ParcelUpdate, ProviderAvailability,
    ProviderBatch, ProviderRecord, TrackingCandidate, TrackingState,
};
use crate::model::{description_key, ParcelStatus, Provider, TrackResult, TrackingNumber};

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
                     WHERE op.tracking_number = p.tracking_number),
                    COALESCE((SELECT min(pe.email_date) FROM parcel_emails pe
                              WHERE pe.tracking_number = p.tracking_number), p.first_seen_at)
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
                    r.get::<_, Option<String>>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("reading tracked parcels")?;
        let mut records = self.provider_records()?;
        rows.into_iter()
            .map(|(number, registered, carrier_code, next, orders, named)| {
                let next_check_at = stored_time_opt(next, || format!("parcels row {number}"))?;
                // An unreadable date only loses the grace period's start.
                let named_at = named.and_then(|t| stored_time(&t, String::new).ok());
                Ok(TrackingCandidate {
                    parcel: DueParcel {
                        asked: records.remove(&number).unwrap_or_default(),
                        number: TrackingNumber::new(&number),
                        registered,
                        carrier_code,
                        named_at,
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

    /// What each provider answered per parcel, by number.
    fn provider_records(&self) -> Result<HashMap<String, Vec<ProviderRecord>>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT tracking_number, provider, last_asked_at, not_found_since FROM parcel_providers",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("reading parcel_providers")?;
        let mut out: HashMap<String, Vec<ProviderRecord>> = HashMap::new();
        for (number, provider, asked, nf) in rows {
            // A provider no longer known to this version: not a record.
            let Some(provider) = Provider::parse(&provider) else {
                continue;
            };
            let what = || format!("parcel_providers row {number}");
            let rec = ProviderRecord {
                provider,
                last_asked_at: stored_time_opt(asked, what)?,
                not_found_since: stored_time_opt(nf, what)?,
            };
            out.entry(number).or_default().push(rec);
        }
        Ok(out)
    }

    /// The providers' account state (quota, last error, availability).
    pub fn tracking_state(&self) -> Result<TrackingState> {
        let row = self
            .conn
            .query_row(
                "SELECT quota_exhausted, quota_checked_at, last_error, quota_remain
                 FROM tracking_state WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                    ))
                },
            )
            .optional()
            .context("reading the tracking state")?;
        let mut state = match row {
            None => TrackingState::default(),
            Some((quota_exhausted, checked, last_error, quota_remain)) => TrackingState {
                quota_exhausted,
                quota_checked_at: stored_time_opt(checked, || "tracking_state row".into())?,
                last_error,
                quota_remain,
                unavailable: Vec::new(),
            },
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT provider, unavailable_until, reason FROM provider_state")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (p, until, reason) in rows {
            if let Some(p) = Provider::parse(&p) {
                let unavailable_until = stored_time_opt(until, || "provider_state row".into())?;
                state.unavailable.push((
                    p,
                    ProviderAvailability {
                        unavailable_until,
                        reason,
                    },
                ));
            }
        }
        Ok(state)
    }

    /// Replaces the providers' account state.
    pub fn set_tracking_state(&mut self, state: &TrackingState) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT INTO tracking_state(id, quota_exhausted, quota_checked_at, last_error, quota_remain)
             VALUES (1, ?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET quota_exhausted = excluded.quota_exhausted,
                quota_checked_at = excluded.quota_checked_at, last_error = excluded.last_error,
                quota_remain = excluded.quota_remain",
            params![
                state.quota_exhausted,
                state.quota_checked_at.map(fmt_time),
                state.last_error,
                state.quota_remain
            ],
        )
        .context("writing the tracking state")?;
        tx.execute("DELETE FROM provider_state", [])?;
        for (p, a) in &state.unavailable {
            tx.execute(
                "INSERT OR REPLACE INTO provider_state(provider, unavailable_until, reason)
                 VALUES (?1, ?2, ?3)",
                params![p.as_str(), a.unavailable_until.map(fmt_time), a.reason],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Writes one provider batch in ONE transaction: registrations, errors,
    /// and each answer with the update `decide` makes of it and the
    /// parcel's previous state (read inside the same transaction).
    pub fn apply_provider_batch(
        &mut self,
        provider: Provider,
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
    type Row = [Option<String>; 6];
    let row: Option<Row> = tx
        .query_row(
            "SELECT provider_status, delivered_at, not_found_since, last_checked_at, replaced_by,
                    provider
             FROM parcels WHERE tracking_number = ?1",
            [r.number.as_str()],
            |row| {
                Ok([
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ])
            },
        )
        .optional()?;
    let Some([status, delivered, nf, checked, replaced_by, shown]) = row else {
        return Ok(None);
    };
    let provider = shown.as_deref().and_then(Provider::parse);
    let shown_newest: Option<String> = match provider {
        Some(p) => tx.query_row(
            "SELECT max(time_utc) FROM events WHERE tracking_number = ?1 AND provider = ?2",
            params![r.number.as_str(), p.as_str()],
            |row| row.get(0),
        )?,
        None => None,
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
        provider,
        shown_newest: stored_time_opt(shown_newest, what)?,
    }))
}

fn apply_one(
    tx: &Transaction<'_>,
    provider: Provider,
    r: &TrackResult,
    now: DateTime<Utc>,
    decide: &impl Fn(&ParcelPrevious, &TrackResult) -> ParcelUpdate,
    out: &mut ApplyOutcome,
) -> Result<()> {
    let Some(prev) = previous(tx, r)? else {
        tracing::debug!(number = %r.number, "answer for a parcel that is not in the store");
        return Ok(());
    };
    // This provider's own record for the parcel: routing (not-found grace)
    // and per-parcel pacing read it.
    tx.execute(
        "INSERT INTO parcel_providers(tracking_number, provider, last_asked_at, not_found_since)
         VALUES (?1, ?2, ?3, CASE WHEN ?4 THEN NULL ELSE ?3 END)
         ON CONFLICT(tracking_number, provider) DO UPDATE SET
            last_asked_at = excluded.last_asked_at,
            not_found_since = CASE WHEN ?4 THEN NULL
                                   ELSE COALESCE(parcel_providers.not_found_since, excluded.last_asked_at) END",
        params![r.number.as_str(), provider.as_str(), fmt_time(now), r.found],
    )?;
    let provider = provider.as_str();
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
            tracking_error = NULL,
            provider = COALESCE(?14, provider)
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
            up.provider.map(|p| p.as_str()),
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
