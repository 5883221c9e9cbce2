//! Orders and parcels in the store: recording one email's extraction in one
//! transaction together with "this email is processed", the manual
//! commands (`add`, `protection`, `done`), and loading the [`Facts`] the
//! status derivation reads.
//!
//! The store records facts — what each email said about each order and
//! parcel, manual commands, carrier events — and `decide::orders` derives
//! states, dates and deadlines from them at read time. That makes
//! ingestion order-independent: a "delivered" email that arrives before the
//! "shipped" one gives the same result as the other way round, and seeing
//! the same facts twice (a forward of an email already seen) changes
//! nothing.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{fmt_time, Store};
use crate::model::{
    check_order_id, normalise_number, EmailKind, EmailOrigin, Extraction, IngestOutcome,
    OrderAction, TrackingNumber,
};

impl Store {
    /// Records one email: what its extraction says (or why it could not be
    /// parsed) in ONE transaction together with "this email is processed".
    /// `sha` is the SHA-256 of the raw bytes (hex). Idempotent: an email
    /// seen before (by Message-ID or by content) changes nothing but where
    /// it was seen.
    pub fn record_email(
        &mut self,
        sha: &str,
        extraction: Result<&Extraction, &str>,
        origin: &EmailOrigin,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome> {
        let message_id = extraction
            .as_ref()
            .ok()
            .and_then(|e| e.message_id.clone())
            .filter(|m| !m.is_empty());
        let dedup_key = match &message_id {
            Some(m) => format!("mid:{m}"),
            None => format!("sha256:{sha}"),
        };

        let tx = self.write_tx()?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM emails WHERE dedup_key = ?1 OR content_sha256 = ?2 LIMIT 1",
                params![dedup_key, sha],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = existing {
            record_location(&tx, origin, id)?;
            tx.commit()?;
            return Ok(IngestOutcome::Duplicate);
        }

        let outcome = match extraction {
            Err(e) => {
                let msg = e.to_owned();
                let id = insert_email(
                    &tx,
                    &dedup_key,
                    None,
                    sha,
                    "",
                    None,
                    false,
                    EmailKind::Other,
                    Some(&msg),
                    origin,
                    now,
                )?;
                record_location(&tx, origin, id)?;
                IngestOutcome::Unparseable(msg)
            }
            Ok(ex) => {
                let date = ex.date.unwrap_or(origin.received_at);
                let id = insert_email(
                    &tx,
                    &dedup_key,
                    message_id.as_deref(),
                    sha,
                    &ex.subject,
                    Some(date),
                    ex.is_aliexpress,
                    ex.kind,
                    None,
                    origin,
                    now,
                )?;
                record_location(&tx, origin, id)?;
                let (orders_new, orders_updated, parcels_new) = if ex.is_aliexpress {
                    apply_extraction(&tx, id, ex, date, now)?
                } else {
                    (0, 0, 0)
                };
                IngestOutcome::New {
                    is_aliexpress: ex.is_aliexpress,
                    orders_new,
                    orders_updated,
                    parcels_new,
                }
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// `add TRACKING_NUMBER [--order ORDER_ID [--create]]`: tracks a
    /// parcel by hand. The order must be known (an email named it) unless
    /// `create_order`. Returns whether the parcel was new.
    pub fn add_parcel(
        &mut self,
        number: &TrackingNumber,
        order: Option<&str>,
        create_order: bool,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        if !number.is_plausible() {
            return Err(super::Refused(format!(
                "{:?} does not look like a tracking number (6 to 40 letters and digits)",
                number.as_str()
            ))
            .into());
        }
        let tx = self.write_tx()?;
        let order = order.map(normalise_number);
        if let Some(order) = &order {
            check_order_id(order).map_err(super::Refused)?;
            if !create_order && !order_known(&tx, order)? {
                return Err(super::Refused(format!("order {order} is not known (no email named it); check the number with `aliwatch status --all`, or add --create to record it")).into());
            }
        }
        let new = upsert_parcel(&tx, number, now)?;
        if let Some(order) = &order {
            upsert_order(&tx, order, now)?;
            link(&tx, order, number)?;
        }
        tx.commit()?;
        Ok(new)
    }

    /// Whether an AliExpress email named this number as a parcel.
    pub fn parcel_named_by_email(&self, number: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM parcel_emails WHERE tracking_number = ?1 LIMIT 1",
                params![normalise_number(number)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Whether an email (or `add --create`) recorded this order.
    pub fn order_known(&self, order: &str) -> Result<bool> {
        order_known(&self.conn, &normalise_number(order))
    }

    /// `untrack ORDER_ID` (Home Assistant's "Stop tracking"): its parcels
    /// are never asked for again; the order itself, its protection
    /// deadline and its warnings stay. Returns how many parcels stopped.
    pub fn stop_tracking_order(&mut self, order: &str, now: DateTime<Utc>) -> Result<usize> {
        let order = normalise_number(order);
        check_order_id(&order).map_err(super::Refused)?;
        let tx = self.write_tx()?;
        refuse_unknown_order(&tx, &order)?;
        let n = tx.execute(
            "UPDATE parcels SET tracking_done_at = ?2, next_check_at = NULL
             WHERE tracking_done_at IS NULL
               AND tracking_number IN (SELECT tracking_number FROM order_parcels WHERE order_id = ?1)",
            rusqlite::params![order, crate::store::fmt_time(now)],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// `protection ORDER_ID --extend/--until` and `done ORDER_ID`.
    pub fn add_order_action(
        &mut self,
        order: &str,
        action: OrderAction,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let order = normalise_number(order);
        check_order_id(&order).map_err(super::Refused)?;
        let tx = self.write_tx()?;
        refuse_unknown_order(&tx, &order)?;
        let (name, value) = action.to_columns();
        tx.execute(
            "INSERT INTO order_actions(order_id, action, value, at) VALUES (?1, ?2, ?3, ?4)",
            params![order, name, value, fmt_time(now)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Numbers of emails, orders and parcels, for summaries.
    pub fn counts(&self) -> Result<(i64, i64, i64)> {
        Ok(self.conn.query_row(
            "SELECT (SELECT count(*) FROM emails), (SELECT count(*) FROM orders), (SELECT count(*) FROM parcels)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?)
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[allow(clippy::too_many_arguments)]
fn insert_email(
    tx: &Transaction,
    dedup_key: &str,
    message_id: Option<&str>,
    sha: &str,
    subject: &str,
    date: Option<DateTime<Utc>>,
    is_aliexpress: bool,
    kind: EmailKind,
    error: Option<&str>,
    origin: &EmailOrigin,
    now: DateTime<Utc>,
) -> Result<i64> {
    tx.execute(
        "INSERT INTO emails(dedup_key, message_id, content_sha256, subject, email_date,
                            is_aliexpress, kind, error, source, processed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            dedup_key,
            message_id,
            sha,
            subject,
            date.map(fmt_time),
            is_aliexpress,
            kind.as_str(),
            error,
            origin.source,
            fmt_time(now)
        ],
    )
    .context("recording the email")?;
    Ok(tx.last_insert_rowid())
}

fn record_location(tx: &Transaction, origin: &EmailOrigin, email_id: i64) -> Result<()> {
    if let Some(loc) = &origin.imap {
        tx.execute(
            "INSERT OR IGNORE INTO email_locations(account, mailbox, uidvalidity, uid, email_id)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![loc.account, loc.mailbox, loc.uidvalidity, loc.uid, email_id],
        )?;
    }
    Ok(())
}

fn upsert_order(tx: &Transaction, order: &str, now: DateTime<Utc>) -> Result<bool> {
    Ok(tx.execute(
        "INSERT OR IGNORE INTO orders(order_id, first_seen_at) VALUES (?1, ?2)",
        params![order, fmt_time(now)],
    )? == 1)
}

fn upsert_parcel(tx: &Transaction, number: &str, now: DateTime<Utc>) -> Result<bool> {
    Ok(tx.execute(
        "INSERT OR IGNORE INTO parcels(tracking_number, first_seen_at) VALUES (?1, ?2)",
        params![number, fmt_time(now)],
    )? == 1)
}

fn link(tx: &Transaction, order: &str, number: &str) -> Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO order_parcels(order_id, tracking_number) VALUES (?1, ?2)",
        params![order, number],
    )?;
    Ok(())
}

/// Applies one AliExpress email's facts. Returns (orders new, orders
/// updated, parcels new).
fn apply_extraction(
    tx: &Transaction,
    email_id: i64,
    ex: &Extraction,
    date: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(usize, usize, usize)> {
    let (mut orders_new, mut orders_updated, mut parcels_new) = (0, 0, 0);
    let status = ex.parcel_status.or_else(|| ex.kind.implied_parcel_status());
    let date_s = fmt_time(date);
    // Bounded by design (decide::parcel::MAX_PARCELS_PER_*): numbers past
    // the bounds are not recorded, and the email says so once in the log.
    let mut email_added = 0usize;
    let mut cut = 0usize;
    for order in &ex.orders {
        let mut numbers: Vec<String> = Vec::new();
        for n in order.tracking_numbers.iter().map(|n| normalise_number(n)) {
            if !numbers.contains(&n) {
                numbers.push(n);
            }
        }
        let known = |n: &String| -> Result<bool> {
            let linked: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM parcels WHERE tracking_number = ?1",
                    [n],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(linked.is_some())
        };
        let order_has = match &order.order_id {
            Some(o) => Some(tx.query_row(
                "SELECT count(*) FROM order_parcels WHERE order_id = ?1",
                [o],
                |r| r.get::<_, i64>(0),
            )? as usize),
            None => None,
        };
        let mut fresh = 0usize;
        for n in &numbers {
            if !known(n)? {
                fresh += 1;
            }
        }
        let take = crate::decide::parcel::parcels_to_take(fresh, order_has, email_added);
        if take < fresh {
            let mut left = take;
            let mut kept = Vec::new();
            for n in numbers {
                if known(&n)? {
                    kept.push(n);
                } else if left > 0 {
                    left -= 1;
                    kept.push(n);
                } else {
                    cut += 1;
                }
            }
            numbers = kept;
        }
        email_added += take;
        for n in &numbers {
            if upsert_parcel(tx, n, now)? {
                parcels_new += 1;
            }
            tx.execute(
                "INSERT OR IGNORE INTO parcel_emails(tracking_number, email_id, kind, email_date, parcel_status)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![n, email_id, ex.kind.as_str(), date_s, status.map(|s| s.as_str())],
            )?;
        }
        // A replaced number stays linked to its successor (LP… -> last mile).
        if let Some(current) = numbers.first() {
            for old in &ex.replaced_tracking_numbers {
                let old = normalise_number(old);
                if &old == current {
                    continue;
                }
                if upsert_parcel(tx, &old, now)? {
                    parcels_new += 1;
                }
                tx.execute(
                    "UPDATE parcels SET replaced_by = ?2 WHERE tracking_number = ?1",
                    params![old, current],
                )?;
                if let Some(o) = &order.order_id {
                    upsert_order(tx, o, now)?;
                    link(tx, o, &old)?;
                }
            }
        }
        let Some(order_id) = &order.order_id else {
            continue;
        };
        if upsert_order(tx, order_id, now)? {
            orders_new += 1;
        } else {
            orders_updated += 1;
        }
        for n in &numbers {
            link(tx, order_id, n)?;
        }
        tx.execute(
            "INSERT OR IGNORE INTO order_emails(order_id, email_id, kind, email_date, parcel_status,
                 parcel_count, protection_until, extended_days, completed, disputed, eta_from, eta_to,
                 store)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                order_id,
                email_id,
                ex.kind.as_str(),
                date_s,
                status.map(|s| s.as_str()),
                numbers.len() as i64,
                ex.protection_until.map(|d| d.format("%Y-%m-%d").to_string()),
                ex.protection_extended_days,
                ex.order_completed,
                ex.dispute_opened,
                ex.eta.map(|e| e.0.format("%Y-%m-%d").to_string()),
                ex.eta.map(|e| e.1.format("%Y-%m-%d").to_string()),
                order.store,
            ],
        )?;
        for (i, item) in order.items.iter().enumerate() {
            tx.execute(
                "INSERT OR IGNORE INTO order_items(order_id, email_id, position, title, variant,
                     quantity, price_amount, price_currency)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    order_id,
                    email_id,
                    i as i64,
                    item.title,
                    item.variant,
                    item.quantity,
                    item.price.as_ref().map(|p| p.amount.as_str()),
                    item.price.as_ref().map(|p| p.currency.as_str()),
                ],
            )?;
        }
    }
    if cut > 0 {
        tracing::warn!(
            email_id,
            dropped = cut,
            per_order = crate::decide::parcel::MAX_PARCELS_PER_ORDER,
            per_email = crate::decide::parcel::MAX_PARCELS_PER_EMAIL,
            "an email named more tracking numbers than an order or an email may have; the rest are not recorded (a forged or broken email?)"
        );
    }
    Ok((orders_new, orders_updated, parcels_new))
}

/// The user's commands act only on orders an email (or `add --create`)
/// recorded: anything else is a typo, refused with what to do.
fn refuse_unknown_order(conn: &rusqlite::Connection, order: &str) -> Result<()> {
    if order_known(conn, order)? {
        return Ok(());
    }
    Err(super::Refused(format!(
        "order {order} is not known; check the number with `aliwatch status --all`"
    ))
    .into())
}

fn order_known(conn: &rusqlite::Connection, order: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM orders WHERE order_id = ?1", [order], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}
