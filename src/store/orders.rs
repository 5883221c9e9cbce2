//! Ingestion (one email's extraction applied in one transaction together
//! with "this email is processed"), the manual commands (`add`,
//! `protection`, `done`), and the status snapshot.
//!
//! The store records facts — what each email said about each order and
//! parcel, manual commands, carrier events — and derives states, dates and
//! deadlines at read time with the pure rules in `protection.rs`. That makes
//! ingestion order-independent: a "delivered" email that arrives before the
//! "shipped" one gives the same result as the other way round, and seeing
//! the same facts twice (a forward of an email already seen) changes
//! nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rusqlite::{params, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use super::{fmt_time, parse_time, Store};
use crate::config::Config;
use crate::extract::{self, Extraction};
use crate::model::{EmailKind, ParcelStatus};
use crate::protection::{self, ManualProtection, ProtectionFacts, StateFacts};
use crate::report::{EtaView, EventView, OrderView, ParcelView, StatusReport};

/// Where an IMAP email sits on its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapLocation {
    pub account: String,
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// Where an email came from.
#[derive(Debug, Clone)]
pub struct EmailOrigin {
    /// "imap:<account>/<mailbox>" or "import:<path>".
    pub source: String,
    /// Set for emails read from IMAP.
    pub imap: Option<ImapLocation>,
    /// INTERNALDATE (IMAP) or the file's time (import): the email's date when
    /// it has no Date header.
    pub received_at: DateTime<Utc>,
}

/// What ingesting one email did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Processed for the first time.
    New {
        is_aliexpress: bool,
        orders_new: usize,
        orders_updated: usize,
        parcels_new: usize,
    },
    /// Seen before (same Message-ID or same bytes): nothing changed.
    Duplicate,
    /// Could not be parsed; recorded as seen with its error and skipped.
    Unparseable(String),
}

/// The parcel status an email implies when it names no finer one.
fn status_from_kind(kind: EmailKind) -> Option<ParcelStatus> {
    match kind {
        EmailKind::Shipped => Some(ParcelStatus::InfoReceived),
        EmailKind::InTransit => Some(ParcelStatus::InTransit),
        EmailKind::Delivered => Some(ParcelStatus::Delivered),
        EmailKind::OrderConfirmed | EmailKind::Protection | EmailKind::Other => None,
    }
}

/// Kinds that show an order shipped or moving (SPEC §4 `shipped_at`).
fn shows_shipped(kind: &str) -> bool {
    matches!(kind, "shipped" | "in_transit" | "delivered")
}

impl Store {
    /// Extracts `raw` and applies what it says in ONE transaction together
    /// with "this email is processed". Idempotent: an email seen before (by
    /// Message-ID or by content) changes nothing but where it was seen.
    pub fn ingest_email(
        &mut self,
        raw: &[u8],
        origin: &EmailOrigin,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome> {
        let sha = hex(&Sha256::digest(raw));
        self.ingest_extracted(&sha, extract::extract(raw), origin, now)
    }

    /// The part of [`Store::ingest_email`] after extraction: `sha` is the
    /// SHA-256 of the raw bytes (hex). Tests feed hand-made extractions.
    pub fn ingest_extracted(
        &mut self,
        sha: &str,
        extraction: Result<Extraction, extract::ExtractError>,
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
                let msg = e.to_string();
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
                    apply_extraction(&tx, id, &ex, date, now)?
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

    /// `add TRACKING_NUMBER [--order ORDER_ID]`: tracks a parcel by hand.
    /// Returns whether the parcel was new.
    pub fn add_parcel(
        &mut self,
        number: &str,
        order: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let number = normalise_number(number);
        if number.len() < 6
            || number.len() > 40
            || !number.chars().all(|c| c.is_ascii_alphanumeric())
        {
            bail!("{number:?} does not look like a tracking number (6 to 40 letters and digits)");
        }
        let tx = self.write_tx()?;
        let new = upsert_parcel(&tx, &number, now)?;
        if let Some(order) = order {
            let order = normalise_number(order);
            check_order_id(&order)?;
            upsert_order(&tx, &order, now)?;
            link(&tx, &order, &number)?;
        }
        tx.commit()?;
        Ok(new)
    }

    /// `protection ORDER_ID --extend/--until` and `done ORDER_ID`.
    pub fn add_order_action(
        &mut self,
        order: &str,
        action: OrderAction,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let order = normalise_number(order);
        check_order_id(&order)?;
        let tx = self.write_tx()?;
        let known: bool = tx
            .query_row("SELECT 1 FROM orders WHERE order_id = ?1", [&order], |_| {
                Ok(())
            })
            .optional()?
            .is_some();
        if !known {
            bail!("order {order} is not known; check the number with `aliwatch status --all`");
        }
        let (name, value) = match action {
            OrderAction::Extend(days) => ("extend", days.to_string()),
            OrderAction::Until(date) => ("until", date.format("%Y-%m-%d").to_string()),
            OrderAction::Done => ("done", String::new()),
        };
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

    /// Parcels still being followed (not delivered/returned, not replaced,
    /// not only in completed orders), for the daemon's status line.
    pub fn active_parcel_count(&self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM parcels p
             WHERE p.replaced_by IS NULL AND p.tracking_done_at IS NULL
               AND coalesce(p.provider_status, '') NOT IN ('delivered', 'returned')
               AND NOT EXISTS (SELECT 1 FROM parcel_emails pe WHERE pe.tracking_number = p.tracking_number AND pe.parcel_status = 'delivered')",
            [],
            |r| r.get(0),
        )?)
    }

    /// The status snapshot (SPEC §4): every order (active and completed;
    /// callers filter) and every parcel not tied to an order.
    pub fn status_report(&self, now: DateTime<Utc>, cfg: &Config) -> Result<StatusReport> {
        let mut report = Snapshot::load(self)?.report(now, cfg)?;
        for key in [
            crate::tracking::META_QUOTA_EXHAUSTED,
            crate::tracking::META_LAST_ERROR,
        ] {
            if let Some(msg) = self.meta_get(key)? {
                report.notices.push(format!("parcel tracking: {msg}"));
            }
        }
        Ok(report)
    }
}

/// A manual order command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAction {
    Extend(u32),
    Until(NaiveDate),
    Done,
}

fn check_order_id(order: &str) -> Result<()> {
    if !(12..=20).contains(&order.len()) || !order.bytes().all(|b| b.is_ascii_digit()) {
        bail!("{order:?} is not an AliExpress order number (12 to 20 digits)");
    }
    Ok(())
}

fn normalise_number(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

fn hex(bytes: &[u8]) -> String {
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
    let status = ex.parcel_status.or_else(|| status_from_kind(ex.kind));
    let date_s = fmt_time(date);
    for order in &ex.orders {
        let numbers: Vec<String> = order
            .tracking_numbers
            .iter()
            .map(|n| normalise_number(n))
            .collect();
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
                 parcel_count, protection_until, extended_days, completed, disputed, eta_from, eta_to)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
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
            ],
        )?;
    }
    Ok((orders_new, orders_updated, parcels_new))
}

// ---------------------------------------------------------------------------
// The snapshot: facts loaded once, states derived in memory.

struct OrderEmail {
    kind: String,
    date: DateTime<Utc>,
    status: Option<ParcelStatus>,
    parcel_count: i64,
    protection_until: Option<NaiveDate>,
    extended_days: Option<u32>,
    completed: bool,
    disputed: bool,
    eta: Option<(NaiveDate, NaiveDate)>,
}

struct ParcelEmail {
    date: DateTime<Utc>,
    status: Option<ParcelStatus>,
    subject: String,
}

struct ParcelRow {
    number: String,
    replaced_by: Option<String>,
    carrier: Option<String>,
    provider_status: Option<ParcelStatus>,
    status_detail: Option<String>,
    eta: Option<(NaiveDate, NaiveDate)>,
    delivered_at: Option<DateTime<Utc>>,
    last_checked_at: Option<DateTime<Utc>>,
    first_seen_at: DateTime<Utc>,
}

struct Snapshot {
    orders: Vec<String>,
    order_emails: HashMap<String, Vec<OrderEmail>>,
    actions: HashMap<String, Vec<(String, String, DateTime<Utc>)>>,
    parcels: BTreeMap<String, ParcelRow>,
    order_parcels: HashMap<String, BTreeSet<String>>,
    parcel_orders: HashMap<String, BTreeSet<String>>,
    parcel_emails: HashMap<String, Vec<ParcelEmail>>,
    last_events: HashMap<String, EventView>,
    first_events: HashMap<String, DateTime<Utc>>,
    /// Current number -> the earlier numbers that were replaced by it.
    predecessors: HashMap<String, Vec<String>>,
}

fn date_col(s: Option<String>) -> Option<NaiveDate> {
    s.and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
}

fn eta_cols(from: Option<String>, to: Option<String>) -> Option<(NaiveDate, NaiveDate)> {
    match (date_col(from), date_col(to)) {
        (Some(a), Some(b)) => Some((a.min(b), a.max(b))),
        (Some(a), None) | (None, Some(a)) => Some((a, a)),
        (None, None) => None,
    }
}

impl Snapshot {
    fn load(store: &Store) -> Result<Snapshot> {
        let c = &store.conn;
        let mut orders = Vec::new();
        let mut stmt = c.prepare("SELECT order_id FROM orders ORDER BY order_id")?;
        for r in stmt.query_map([], |r| r.get::<_, String>(0))? {
            orders.push(r?);
        }

        let mut order_emails: HashMap<String, Vec<OrderEmail>> = HashMap::new();
        let mut stmt = c.prepare(
            "SELECT order_id, kind, email_date, parcel_status, parcel_count, protection_until,
                    extended_days, completed, disputed, eta_from, eta_to FROM order_emails",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                OrderEmail {
                    kind: r.get(1)?,
                    date: parse_time(&r.get::<_, String>(2)?).unwrap_or_default(),
                    status: r
                        .get::<_, Option<String>>(3)?
                        .and_then(|s| ParcelStatus::parse(&s)),
                    parcel_count: r.get(4)?,
                    protection_until: date_col(r.get(5)?),
                    extended_days: r
                        .get::<_, Option<i64>>(6)?
                        .and_then(|d| u32::try_from(d).ok()),
                    completed: r.get(7)?,
                    disputed: r.get(8)?,
                    eta: eta_cols(r.get(9)?, r.get(10)?),
                },
            ))
        })?;
        for r in rows {
            let (o, e) = r?;
            order_emails.entry(o).or_default().push(e);
        }

        let mut actions: HashMap<String, Vec<(String, String, DateTime<Utc>)>> = HashMap::new();
        let mut stmt =
            c.prepare("SELECT order_id, action, value, at FROM order_actions ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                r.get::<_, String>(3)?,
            ))
        })?;
        for r in rows {
            let (o, a, v, at) = r?;
            actions
                .entry(o)
                .or_default()
                .push((a, v, parse_time(&at).unwrap_or_default()));
        }

        let mut parcels = BTreeMap::new();
        let mut stmt = c.prepare(
            "SELECT tracking_number, replaced_by, carrier, provider_status, status_detail, eta_from,
                    eta_to, delivered_at, last_checked_at, first_seen_at FROM parcels",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ParcelRow {
                number: r.get(0)?,
                replaced_by: r.get(1)?,
                carrier: r.get(2)?,
                provider_status: r
                    .get::<_, Option<String>>(3)?
                    .and_then(|s| ParcelStatus::parse(&s)),
                status_detail: r.get(4)?,
                eta: eta_cols(r.get(5)?, r.get(6)?),
                delivered_at: r.get::<_, Option<String>>(7)?.and_then(|s| parse_time(&s)),
                last_checked_at: r.get::<_, Option<String>>(8)?.and_then(|s| parse_time(&s)),
                first_seen_at: parse_time(&r.get::<_, String>(9)?).unwrap_or_default(),
            })
        })?;
        for r in rows {
            let p = r?;
            parcels.insert(p.number.clone(), p);
        }

        let mut order_parcels: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut parcel_orders: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut stmt = c.prepare("SELECT order_id, tracking_number FROM order_parcels")?;
        for r in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
            let (o, p) = r?;
            order_parcels
                .entry(o.clone())
                .or_default()
                .insert(p.clone());
            parcel_orders.entry(p).or_default().insert(o);
        }

        let mut parcel_emails: HashMap<String, Vec<ParcelEmail>> = HashMap::new();
        let mut stmt = c.prepare(
            "SELECT pe.tracking_number, pe.email_date, pe.parcel_status, e.subject
             FROM parcel_emails pe JOIN emails e ON e.id = pe.email_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                ParcelEmail {
                    date: parse_time(&r.get::<_, String>(1)?).unwrap_or_default(),
                    status: r
                        .get::<_, Option<String>>(2)?
                        .and_then(|s| ParcelStatus::parse(&s)),
                    subject: r.get(3)?,
                },
            ))
        })?;
        for r in rows {
            let (p, e) = r?;
            parcel_emails.entry(p).or_default().push(e);
        }

        // Newest event per parcel (ties broken by id, newest insert wins).
        let mut last_events = HashMap::new();
        let mut first_events = HashMap::new();
        let mut stmt = c.prepare(
            "SELECT tracking_number, time_utc, description, location FROM events
             ORDER BY tracking_number, time_utc DESC, id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        for r in rows {
            let (p, t, d, l) = r?;
            let Some(time) = parse_time(&t) else { continue };
            first_events
                .entry(p.clone())
                .and_modify(|f: &mut DateTime<Utc>| *f = (*f).min(time))
                .or_insert(time);
            last_events.entry(p).or_insert(EventView {
                time,
                description: d,
                location: l.filter(|l| !l.is_empty()),
            });
        }

        let mut snap = Snapshot {
            orders,
            order_emails,
            actions,
            parcels,
            order_parcels,
            parcel_orders,
            parcel_emails,
            last_events,
            first_events,
            predecessors: HashMap::new(),
        };
        let mut predecessors: HashMap<String, Vec<String>> = HashMap::new();
        for p in snap.parcels.values().filter(|p| p.replaced_by.is_some()) {
            let current = snap.current_number(&p.number);
            if current != p.number {
                predecessors
                    .entry(current.to_string())
                    .or_default()
                    .push(p.number.clone());
            }
        }
        snap.predecessors = predecessors;
        Ok(snap)
    }

    /// The current number a (possibly replaced) number leads to.
    fn current_number<'a>(&'a self, mut n: &'a str) -> &'a str {
        for _ in 0..16 {
            match self.parcels.get(n).and_then(|p| p.replaced_by.as_deref()) {
                Some(next) if self.parcels.contains_key(next) => n = next,
                _ => break,
            }
        }
        n
    }

    /// The best email-stated status for a parcel: its own emails and
    /// order-wide statements (emails that named no parcel) of its orders.
    fn email_status(&self, number: &str, previous: &[String]) -> Option<ParcelStatus> {
        let own = std::iter::once(number)
            .chain(previous.iter().map(String::as_str))
            .flat_map(|n| self.parcel_emails.get(n).into_iter().flatten())
            .filter_map(|e| e.status);
        let order_wide = self
            .parcel_orders
            .get(number)
            .into_iter()
            .flatten()
            .flat_map(|o| self.order_emails.get(o).into_iter().flatten())
            .filter(|e| e.parcel_count == 0)
            .filter_map(|e| e.status);
        own.chain(order_wide).max_by_key(|s| s.progress())
    }

    fn parcel_view(
        &self,
        number: &str,
        shipped: Option<DateTime<Utc>>,
        active: bool,
        now: DateTime<Utc>,
        cfg: &Config,
    ) -> ParcelView {
        let previous: Vec<String> = self.predecessors.get(number).cloned().unwrap_or_default();
        let row = self.parcels.get(number);
        let email_status = self.email_status(number, &previous);
        let provider_status = row.and_then(|r| r.provider_status);
        // Never backwards: the furthest status wins; on a tie, the provider's
        // (it is more precise than an email's wording).
        let status = match (provider_status, email_status) {
            (Some(p), Some(e)) if e.progress() > p.progress() => e,
            (Some(p), _) => p,
            (None, Some(e)) => e,
            (None, None) => ParcelStatus::Pending,
        };
        let emails: Vec<&ParcelEmail> = std::iter::once(number)
            .chain(previous.iter().map(String::as_str))
            .flat_map(|n| self.parcel_emails.get(n).into_iter().flatten())
            .collect();
        let last_event = self.last_events.get(number).cloned().or_else(|| {
            // Email-only tracking: the email that brought the furthest
            // status (the earliest such) stands in for a carrier event, so
            // a later forward of an old email changes nothing.
            emails
                .iter()
                .filter_map(|e| {
                    e.status
                        .map(|s| (s.progress(), std::cmp::Reverse(e.date), *e))
                })
                .max_by_key(|(p, d, _)| (*p, *d))
                .map(|(_, _, e)| e)
                .map(|e| EventView {
                    time: e.date,
                    description: e.subject.clone(),
                    location: None,
                })
        });
        let delivered_at = row.and_then(|r| r.delivered_at).or_else(|| {
            (status == ParcelStatus::Delivered)
                .then(|| {
                    emails
                        .iter()
                        .filter(|e| e.status == Some(ParcelStatus::Delivered))
                        .map(|e| e.date)
                        .min()
                })
                .flatten()
        });
        let eta = row.and_then(|r| r.eta).or_else(|| {
            self.parcel_orders
                .get(number)
                .into_iter()
                .flatten()
                .flat_map(|o| self.order_emails.get(o).into_iter().flatten())
                .filter(|e| e.eta.is_some())
                .max_by_key(|e| e.date)
                .and_then(|e| e.eta)
        });
        let last_activity = self
            .last_events
            .get(number)
            .map(|e| e.time)
            .or(shipped)
            .or_else(|| emails.iter().map(|e| e.date).min())
            .or(row.map(|r| r.first_seen_at));
        ParcelView {
            tracking_number: number.to_string(),
            carrier: row.and_then(|r| r.carrier.clone()),
            status,
            status_detail: row.and_then(|r| r.status_detail.clone()),
            last_event,
            eta: eta.map(|(from, to)| EtaView { from, to }),
            last_checked_at: row.and_then(|r| r.last_checked_at),
            delivered_at,
            stalled: active
                && protection::is_stalled(
                    status.is_final(),
                    last_activity,
                    now,
                    cfg.protection.stalled_after,
                ),
            previous_numbers: previous,
        }
    }

    fn report(&self, now: DateTime<Utc>, cfg: &Config) -> Result<StatusReport> {
        let tz: Tz = cfg.timezone;
        let local = |t: DateTime<Utc>| t.with_timezone(&tz).date_naive();
        let today = local(now);
        let mut orders = Vec::new();
        for order_id in &self.orders {
            let emails: &[OrderEmail] = self
                .order_emails
                .get(order_id)
                .map_or(&[], |v| v.as_slice());
            let actions: &[(String, String, DateTime<Utc>)] =
                self.actions.get(order_id).map_or(&[], |v| v.as_slice());
            let numbers: BTreeSet<&str> = self
                .order_parcels
                .get(order_id)
                .into_iter()
                .flatten()
                .map(|n| self.current_number(n))
                .collect();

            let confirmed = emails
                .iter()
                .filter(|e| e.kind == "order_confirmed")
                .map(|e| e.date)
                .min();
            let first_event = numbers
                .iter()
                .filter_map(|n| self.first_events.get(*n))
                .min()
                .copied();
            let shipped = emails
                .iter()
                .filter(|e| shows_shipped(&e.kind))
                .map(|e| e.date)
                .min()
                .or(first_event);
            let done_action = actions.iter().find(|a| a.0 == "done").map(|a| a.2);
            let completed_email = emails.iter().filter(|e| e.completed).map(|e| e.date).min();
            let completed_at = match (done_action, completed_email) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let disputed = emails.iter().any(|e| e.disputed);
            let delivered_email = emails
                .iter()
                .any(|e| e.kind == "delivered" && e.parcel_count == 0);

            // Parcels need the order's activity to decide "stalled"; decide
            // the state first from statuses alone.
            let pre: Vec<ParcelView> = numbers
                .iter()
                .map(|n| self.parcel_view(n, shipped, true, now, cfg))
                .collect();
            let delivered_count = pre
                .iter()
                .filter(|p| p.status == ParcelStatus::Delivered)
                .count();
            let state = protection::order_state(StateFacts {
                completed: completed_at.is_some(),
                disputed,
                delivered_email,
                parcels: pre.len(),
                parcels_delivered: delivered_count,
                shipped: shipped.is_some(),
            });
            let parcels: Vec<ParcelView> = if state.is_active() {
                pre
            } else {
                pre.into_iter()
                    .map(|p| ParcelView {
                        stalled: false,
                        ..p
                    })
                    .collect()
            };

            let delivered_on = if state == crate::model::OrderState::Delivered
                || (completed_at.is_some() && delivered_count > 0)
            {
                parcels
                    .iter()
                    .filter_map(|p| p.delivered_at)
                    .max()
                    .or_else(|| {
                        emails
                            .iter()
                            .filter(|e| e.kind == "delivered")
                            .map(|e| e.date)
                            .min()
                    })
                    .map(local)
            } else {
                None
            };
            let manual = actions
                .iter()
                .filter_map(|(a, v, _)| match a.as_str() {
                    "extend" => v.parse().ok().map(ManualProtection::Extend),
                    "until" => NaiveDate::parse_from_str(v, "%Y-%m-%d")
                        .ok()
                        .map(ManualProtection::Until),
                    _ => None,
                })
                .collect();
            let facts = ProtectionFacts {
                shipped_on: shipped.map(local),
                delivered_on,
                completed_on: completed_at.map(local),
                email_until: emails.iter().filter_map(|e| e.protection_until).collect(),
                email_extensions: emails.iter().filter_map(|e| e.extended_days).collect(),
                manual,
            };
            let prot = protection::protection(&facts, cfg.protection.days);
            orders.push(OrderView {
                order_id: order_id.clone(),
                state,
                confirmed_at: confirmed.map(local),
                shipped_at: shipped.map(local),
                protection_ends: prot.map(|p| p.ends),
                protection_days_left: prot.map(|p| protection::days_left(p.ends, today)),
                protection_source: prot.map(|p| p.source),
                auto_completes_on: prot.and_then(|p| p.auto_completes_on),
                dispute_until: prot.and_then(|p| p.dispute_until),
                parcels,
            });
        }
        orders.sort_by(|a, b| match (a.protection_ends, b.protection_ends) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.order_id.cmp(&b.order_id)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.order_id.cmp(&b.order_id),
        });

        let unassigned_parcels = self
            .parcels
            .values()
            .filter(|p| p.replaced_by.is_none() && !self.parcel_orders.contains_key(&p.number))
            .filter(|p| {
                // A parcel whose earlier number is tied to an order is not
                // unassigned.
                !self.parcels.values().any(|q| {
                    self.current_number(&q.number) == p.number
                        && self.parcel_orders.contains_key(&q.number)
                })
            })
            .map(|p| self.parcel_view(&p.number, None, true, now, cfg))
            .collect();
        Ok(StatusReport {
            generated_at: now,
            orders,
            unassigned_parcels,
            notices: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::OrderRef;
    use chrono::TimeZone;

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 9, 0, 0)
            .single()
            .expect("valid time")
    }

    fn origin(n: usize) -> EmailOrigin {
        EmailOrigin {
            source: format!("test:{n}"),
            imap: None,
            received_at: t(1),
        }
    }

    fn email(
        id: &str,
        day: u32,
        kind: EmailKind,
        orders: &[(Option<&str>, &[&str])],
    ) -> Extraction {
        Extraction {
            is_aliexpress: true,
            kind,
            orders: orders
                .iter()
                .map(|(o, t)| OrderRef {
                    order_id: o.map(str::to_string),
                    tracking_numbers: t.iter().map(|s| s.to_string()).collect(),
                })
                .collect(),
            message_id: Some(format!("{id}@test")),
            date: Some(t(day)),
            subject: format!("subject of {id}"),
            ..Default::default()
        }
    }

    fn cfg() -> Config {
        let mut c = Config::defaults(":memory:".into());
        c.timezone = chrono_tz::Europe::Berlin;
        c
    }

    fn ingest_all(store: &mut Store, emails: &[Extraction]) {
        for (i, e) in emails.iter().enumerate() {
            let sha = format!("sha-{}", e.message_id.clone().unwrap_or_default());
            store
                .ingest_extracted(&sha, Ok(e.clone()), &origin(i), t(27))
                .expect("ingests");
        }
    }

    fn report_json(store: &Store) -> serde_json::Value {
        let mut v = serde_json::to_value(store.status_report(t(28), &cfg()).expect("report"))
            .expect("json");
        v.as_object_mut().expect("object").remove("generated_at");
        v
    }

    fn journey() -> Vec<Extraction> {
        let a = "8123456789012345";
        let b = "3012345678901234";
        let mut protection = email("p", 20, EmailKind::Protection, &[(Some(a), &[])]);
        protection.protection_until = Some(NaiveDate::from_ymd_opt(2026, 12, 20).expect("date"));
        let mut customs = email(
            "c",
            10,
            EmailKind::InTransit,
            &[(Some(a), &["LP00123456789012"])],
        );
        customs.parcel_status = Some(ParcelStatus::Customs);
        vec![
            email(
                "conf",
                1,
                EmailKind::OrderConfirmed,
                &[(Some(a), &[]), (Some(b), &[])],
            ),
            email(
                "ship",
                3,
                EmailKind::Shipped,
                &[(Some(a), &["LP00123456789012"])],
            ),
            customs,
            email(
                "dlv",
                15,
                EmailKind::Delivered,
                &[(Some(a), &["LP00123456789012"])],
            ),
            protection,
            email(
                "pkg",
                12,
                EmailKind::InTransit,
                &[(None, &["JY26CAA0D000551012"])],
            ),
            email("ship-b", 5, EmailKind::Shipped, &[(Some(b), &[])]),
        ]
    }

    #[test]
    fn same_result_in_order_reversed_and_twice() {
        let emails = journey();
        let mut forward = Store::open_in_memory().expect("db");
        ingest_all(&mut forward, &emails);
        let want = report_json(&forward);

        let mut reversed = Store::open_in_memory().expect("db");
        let mut rev = emails.clone();
        rev.reverse();
        ingest_all(&mut reversed, &rev);
        assert_eq!(report_json(&reversed), want);

        // a rotation, and everything again: duplicates change nothing
        let mut rotated = Store::open_in_memory().expect("db");
        let mut rot = emails.clone();
        rot.rotate_left(3);
        ingest_all(&mut rotated, &rot);
        ingest_all(&mut rotated, &emails);
        assert_eq!(report_json(&rotated), want);

        let orders = want["orders"].as_array().expect("orders");
        assert_eq!(orders.len(), 2, "{want:#}");
        let a = orders
            .iter()
            .find(|o| o["order_id"] == "8123456789012345")
            .expect("order a");
        assert_eq!(a["state"], "delivered");
        assert_eq!(a["confirmed_at"], "2026-11-01");
        assert_eq!(a["shipped_at"], "2026-11-03");
        assert_eq!(a["protection_ends"], "2026-12-20");
        assert_eq!(a["protection_source"], "email");
        assert_eq!(a["protection_days_left"], 22);
        assert_eq!(a["parcels"][0]["status"], "delivered");
        let b = orders
            .iter()
            .find(|o| o["order_id"] == "3012345678901234")
            .expect("order b");
        assert_eq!(b["state"], "shipped");
        assert_eq!(b["protection_ends"], "2027-01-04");
        assert_eq!(b["protection_source"], "default");
        assert_eq!(
            want["unassigned_parcels"][0]["tracking_number"],
            "JY26CAA0D000551012"
        );
        assert_eq!(want["unassigned_parcels"][0]["status"], "in_transit");
    }

    #[test]
    fn duplicate_by_message_id_or_content_is_reported_and_harmless() {
        let mut store = Store::open_in_memory().expect("db");
        let e = email(
            "x",
            3,
            EmailKind::Shipped,
            &[(Some("8123456789012345"), &["LP00123456789012"])],
        );
        let first = store
            .ingest_extracted("aa", Ok(e.clone()), &origin(0), t(27))
            .expect("ingests");
        assert!(
            matches!(
                first,
                IngestOutcome::New {
                    orders_new: 1,
                    parcels_new: 1,
                    ..
                }
            ),
            "{first:?}"
        );
        let again = store
            .ingest_extracted("bb", Ok(e.clone()), &origin(1), t(27))
            .expect("ingests");
        assert_eq!(again, IngestOutcome::Duplicate);
        let mut no_mid = e;
        no_mid.message_id = None;
        let same_bytes = store
            .ingest_extracted("aa", Ok(no_mid), &origin(2), t(27))
            .expect("ingests");
        assert_eq!(same_bytes, IngestOutcome::Duplicate);
        assert_eq!(store.counts().expect("counts"), (1, 1, 1));
    }

    #[test]
    fn a_forward_of_a_known_email_changes_nothing() {
        let mut store = Store::open_in_memory().expect("db");
        ingest_all(&mut store, &journey());
        let before = report_json(&store);
        let mut fwd = email(
            "ship",
            25,
            EmailKind::Shipped,
            &[(Some("8123456789012345"), &["LP00123456789012"])],
        );
        fwd.message_id = Some("fwd-of-ship@user".into());
        let out = store
            .ingest_extracted("fwd", Ok(fwd), &origin(9), t(27))
            .expect("ingests");
        assert!(
            matches!(out, IngestOutcome::New { orders_new: 0, .. }),
            "{out:?}"
        );
        assert_eq!(report_json(&store), before);
    }

    #[test]
    fn unparseable_email_is_recorded_and_skipped() {
        let mut store = Store::open_in_memory().expect("db");
        let out = store
            .ingest_extracted(
                "zz",
                Err(extract::ExtractError::Malformed("bad".into())),
                &origin(0),
                t(27),
            )
            .expect("ingests");
        assert!(matches!(out, IngestOutcome::Unparseable(_)));
        let again = store
            .ingest_extracted(
                "zz",
                Err(extract::ExtractError::Malformed("bad".into())),
                &origin(0),
                t(27),
            )
            .expect("ingests");
        assert_eq!(again, IngestOutcome::Duplicate);
    }

    #[test]
    fn replaced_number_stays_linked_to_its_successor() {
        let mut store = Store::open_in_memory().expect("db");
        let order = "8123456789012345";
        let mut changed = email(
            "chg",
            9,
            EmailKind::Shipped,
            &[(Some(order), &["RB123456785GB"])],
        );
        changed.replaced_tracking_numbers = vec!["LP00123456789012".into()];
        ingest_all(
            &mut store,
            &[
                email(
                    "ship",
                    3,
                    EmailKind::Shipped,
                    &[(Some(order), &["LP00123456789012"])],
                ),
                changed,
            ],
        );
        let r = report_json(&store);
        let parcels = r["orders"][0]["parcels"].as_array().expect("parcels");
        assert_eq!(parcels.len(), 1, "{r:#}");
        assert_eq!(parcels[0]["tracking_number"], "RB123456785GB");
        assert_eq!(parcels[0]["previous_numbers"][0], "LP00123456789012");
    }

    #[test]
    fn status_never_moves_back_from_delivered() {
        let mut store = Store::open_in_memory().expect("db");
        let order = "8123456789012345";
        ingest_all(
            &mut store,
            &[email(
                "d",
                9,
                EmailKind::Delivered,
                &[(Some(order), &["LP00123456789012"])],
            )],
        );
        store
            .conn
            .execute("UPDATE parcels SET provider_status = 'in_transit'", [])
            .expect("updates");
        let r = report_json(&store);
        assert_eq!(r["orders"][0]["parcels"][0]["status"], "delivered");
    }

    #[test]
    fn manual_commands_add_extend_and_done() {
        let mut store = Store::open_in_memory().expect("db");
        let order = "8123456789012345";
        ingest_all(
            &mut store,
            &[email("s", 3, EmailKind::Shipped, &[(Some(order), &[])])],
        );
        assert!(store
            .add_parcel("jy26 caa0d000551012", None, t(27))
            .expect("adds"));
        let r = report_json(&store);
        assert_eq!(
            r["unassigned_parcels"][0]["tracking_number"],
            "JY26CAA0D000551012"
        );
        assert!(!store
            .add_parcel("JY26CAA0D000551012", Some(order), t(27))
            .expect("adds"));
        let r = report_json(&store);
        assert_eq!(r["unassigned_parcels"].as_array().map(Vec::len), Some(0));
        assert_eq!(
            r["orders"][0]["parcels"][0]["tracking_number"],
            "JY26CAA0D000551012"
        );

        store
            .add_order_action(order, OrderAction::Extend(10), t(27))
            .expect("extends");
        let r = report_json(&store);
        assert_eq!(r["orders"][0]["protection_ends"], "2027-01-12");
        assert_eq!(r["orders"][0]["protection_source"], "manual");
        store
            .add_order_action(
                order,
                OrderAction::Until(NaiveDate::from_ymd_opt(2026, 12, 1).expect("date")),
                t(27),
            )
            .expect("until");
        assert_eq!(
            report_json(&store)["orders"][0]["protection_ends"],
            "2027-01-12"
        );

        store
            .add_order_action(order, OrderAction::Done, t(27))
            .expect("done");
        assert_eq!(report_json(&store)["orders"][0]["state"], "completed");
        assert!(store
            .add_order_action("999", OrderAction::Done, t(27))
            .is_err());
        assert!(store
            .add_order_action("8000000000000000", OrderAction::Done, t(27))
            .is_err());
    }

    #[test]
    fn orders_sort_by_protection_end_then_id() {
        let mut store = Store::open_in_memory().expect("db");
        ingest_all(
            &mut store,
            &[
                email(
                    "1",
                    10,
                    EmailKind::Shipped,
                    &[(Some("8000000000000002"), &[])],
                ),
                email(
                    "2",
                    3,
                    EmailKind::Shipped,
                    &[(Some("8000000000000003"), &[])],
                ),
                email(
                    "3",
                    3,
                    EmailKind::OrderConfirmed,
                    &[(Some("8000000000000001"), &[])],
                ),
            ],
        );
        let r = report_json(&store);
        let ids: Vec<&str> = r["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .filter_map(|o| o["order_id"].as_str())
            .collect();
        assert_eq!(
            ids,
            ["8000000000000003", "8000000000000002", "8000000000000001"]
        );
    }
}
