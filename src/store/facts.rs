//! Loading the [`Facts`] the status derivation reads: every order, what each
//! email said about each order and parcel, manual commands, parcel rows and
//! the first and newest carrier event per parcel. One read per table.
//!
//! A stored value this version cannot read (a timestamp that does not
//! parse, a kind or status it does not know) is an error naming the table
//! and row, never silently "1970" or "pending".

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, NaiveDate, Utc};

use super::{parse_time, Store};
use crate::facts::{Facts, ManualAction, OrderEmail, ParcelEmail, ParcelRow};
use crate::model::{EmailKind, Item, OrderAction, ParcelStatus, Price, Provider};
use crate::report::EventView;

/// A stored timestamp, or an error naming where it was found.
pub(crate) fn stored_time(s: &str, what: impl FnOnce() -> String) -> Result<DateTime<Utc>> {
    parse_time(s).ok_or_else(|| anyhow!("{}: unreadable timestamp {s:?}", what()))
}

/// An optional stored timestamp.
pub(crate) fn stored_time_opt(
    s: Option<String>,
    what: impl FnOnce() -> String,
) -> Result<Option<DateTime<Utc>>> {
    s.map(|s| stored_time(&s, what)).transpose()
}

fn stored_status(s: Option<String>, what: impl FnOnce() -> String) -> Result<Option<ParcelStatus>> {
    s.map(|s| {
        ParcelStatus::parse(&s).ok_or_else(|| anyhow!("{}: unknown parcel status {s:?}", what()))
    })
    .transpose()
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

impl Store {
    /// Everything the status derivation needs, read in one go.
    pub fn load_facts(&self) -> Result<Facts> {
        let (order_parcels, parcel_orders) = self.load_order_parcels()?;
        let Events {
            first: first_events,
            last: last_events,
            providers: mut event_providers,
        } = self.load_events()?;
        // The provider whose answer the parcel shows (merged: not always
        // the one with the newest event); older rows fall back to that.
        let mut stmt = self
            .conn
            .prepare("SELECT tracking_number, provider FROM parcels WHERE provider IS NOT NULL")?;
        let shown = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (n, p) in shown {
            if let Some(p) = Provider::parse(&p) {
                event_providers.insert(n, p);
            }
        }
        let order_first_seen = self.load_orders()?;
        let facts: Result<Facts> = Ok(Facts {
            orders: order_first_seen.iter().map(|(o, _)| o.clone()).collect(),
            order_first_seen: order_first_seen.into_iter().collect(),
            order_emails: self.load_order_emails()?,
            actions: self.load_actions()?,
            parcels: self.load_parcels()?,
            order_parcels,
            parcel_orders,
            parcel_emails: self.load_parcel_emails()?,
            last_events,
            first_events,
            event_providers,
        });
        facts.context("reading the database")
    }

    /// Every order id, sorted, with when it was first seen.
    fn load_orders(&self) -> Result<Vec<(String, DateTime<Utc>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT order_id, first_seen_at FROM orders ORDER BY order_id")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(o, t)| {
                let seen = stored_time(&t, || format!("orders row {o}"))?;
                Ok((o, seen))
            })
            .collect()
    }

    fn load_order_emails(&self) -> Result<HashMap<String, Vec<OrderEmail>>> {
        let mut stmt = self.conn.prepare(
            "SELECT order_id, email_id, kind, email_date, parcel_status, parcel_count,
                    protection_until, extended_days, completed, disputed, eta_from, eta_to, store
             FROM order_emails",
        )?;
        type Row = (
            String,
            i64,
            String,
            String,
            Option<String>,
            i64,
            Option<String>,
            Option<i64>,
            bool,
            bool,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows = stmt
            .query_map([], |r| {
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
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<Row>>>()?;
        let mut items = self.load_order_items()?;
        let mut out: HashMap<String, Vec<OrderEmail>> = HashMap::new();
        for (
            order,
            email,
            kind,
            date,
            status,
            count,
            until,
            ext,
            completed,
            disputed,
            ef,
            et,
            store,
        ) in rows
        {
            let what = || format!("order_emails row (order {order}, email {email})");
            let e = OrderEmail {
                kind: EmailKind::parse(&kind)
                    .ok_or_else(|| anyhow!("{}: unknown email kind {kind:?}", what()))?,
                date: stored_time(&date, what)?,
                status: stored_status(status, what)?,
                parcel_count: count,
                protection_until: date_col(until),
                extended_days: ext.and_then(|d| u32::try_from(d).ok()),
                completed,
                disputed,
                eta: eta_cols(ef, et),
                items: items.remove(&(order.clone(), email)).unwrap_or_default(),
                store,
            };
            out.entry(order).or_default().push(e);
        }
        Ok(out)
    }

    /// Items per (order, email), in the email's order.
    fn load_order_items(&self) -> Result<HashMap<(String, i64), Vec<Item>>> {
        let mut stmt = self.conn.prepare(
            "SELECT order_id, email_id, title, variant, quantity, price_amount, price_currency
             FROM order_items ORDER BY order_id, email_id, position",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out: HashMap<(String, i64), Vec<Item>> = HashMap::new();
        for (order, email, title, variant, quantity, amount, currency) in rows {
            let price = match (amount, currency) {
                (Some(amount), Some(currency)) => Some(Price { amount, currency }),
                _ => None,
            };
            out.entry((order, email)).or_default().push(Item {
                title,
                variant,
                quantity: quantity.and_then(|q| u32::try_from(q).ok()),
                price,
            });
        }
        Ok(out)
    }

    fn load_actions(&self) -> Result<HashMap<String, Vec<ManualAction>>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, order_id, action, value, at FROM order_actions ORDER BY id")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    r.get::<_, String>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out: HashMap<String, Vec<ManualAction>> = HashMap::new();
        for (id, order, action, value, at) in rows {
            let what = || format!("order_actions row {id}");
            let at = stored_time(&at, what)?;
            // A value this version cannot read (e.g. a hand-edited row)
            // is left out, as before: it never moved a deadline.
            if let Some(action) = OrderAction::from_columns(&action, &value) {
                out.entry(order)
                    .or_default()
                    .push(ManualAction { action, at });
            }
        }
        Ok(out)
    }

    fn load_parcels(&self) -> Result<BTreeMap<String, ParcelRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT tracking_number, replaced_by, carrier, provider_status, status_detail, eta_from,
                    eta_to, delivered_at, last_checked_at, first_seen_at FROM parcels",
        )?;
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
        );
        let rows = stmt
            .query_map([], |r| {
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
                    r.get(9)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<Row>>>()?;
        let mut out = BTreeMap::new();
        for (number, replaced_by, carrier, status, detail, ef, et, delivered, checked, first) in
            rows
        {
            let what = || format!("parcels row {number}");
            let p = ParcelRow {
                replaced_by,
                carrier,
                provider_status: stored_status(status, what)?,
                status_detail: detail,
                eta: eta_cols(ef, et),
                delivered_at: stored_time_opt(delivered, what)?,
                last_checked_at: stored_time_opt(checked, what)?,
                first_seen_at: stored_time(&first, what)?,
                number: number.clone(),
            };
            out.insert(number, p);
        }
        Ok(out)
    }

    #[allow(clippy::type_complexity)]
    fn load_order_parcels(
        &self,
    ) -> Result<(
        HashMap<String, BTreeSet<String>>,
        HashMap<String, BTreeSet<String>>,
    )> {
        let mut order_parcels: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut parcel_orders: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT order_id, tracking_number FROM order_parcels")?;
        for r in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
            let (o, p) = r?;
            order_parcels
                .entry(o.clone())
                .or_default()
                .insert(p.clone());
            parcel_orders.entry(p).or_default().insert(o);
        }
        Ok((order_parcels, parcel_orders))
    }

    fn load_parcel_emails(&self) -> Result<HashMap<String, Vec<ParcelEmail>>> {
        let mut stmt = self.conn.prepare(
            "SELECT pe.tracking_number, pe.email_id, pe.email_date, pe.parcel_status, e.subject
             FROM parcel_emails pe JOIN emails e ON e.id = pe.email_id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out: HashMap<String, Vec<ParcelEmail>> = HashMap::new();
        for (number, email, date, status, subject) in rows {
            let what = || format!("parcel_emails row (parcel {number}, email {email})");
            let e = ParcelEmail {
                date: stored_time(&date, what)?,
                status: stored_status(status, what)?,
                subject,
            };
            out.entry(number).or_default().push(e);
        }
        Ok(out)
    }

    /// The oldest event time, the newest event and its provider per
    /// parcel (ties broken by id, newest insert wins).
    fn load_events(&self) -> Result<Events> {
        let mut out = Events::default();
        let mut stmt = self.conn.prepare(
            "SELECT id, tracking_number, time_utc, description, location, provider FROM events
             ORDER BY tracking_number, time_utc DESC, id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        for r in rows {
            let (id, p, t, d, l, provider) = r?;
            let time = stored_time(&t, || format!("events row {id}"))?;
            out.first
                .entry(p.clone())
                .and_modify(|f: &mut DateTime<Utc>| *f = (*f).min(time))
                .or_insert(time);
            if out.last.contains_key(&p) {
                continue;
            }
            if let Some(provider) = Provider::parse(&provider) {
                out.providers.insert(p.clone(), provider);
            }
            out.last.insert(
                p,
                EventView {
                    time,
                    description: d,
                    location: l.filter(|l| !l.is_empty()),
                },
            );
        }
        Ok(out)
    }
}

/// Carrier events per parcel, as the status derivation reads them.
#[derive(Default)]
struct Events {
    first: HashMap<String, DateTime<Utc>>,
    last: HashMap<String, EventView>,
    providers: HashMap<String, Provider>,
}
