//! The status derivation: the facts the store keeps → orders and parcels
//! as `status --json` shows them (SPEC §4). Pure: the same facts, rules and
//! "now" always give the same model, whatever order the emails arrived in.
//!
//! - A parcel's status is the furthest of what its provider and its emails
//!   say (never backwards); replaced numbers are followed to the current one
//!   and listed as `previous_numbers`.
//! - An order's dates come from its emails (`confirmed_at`, `shipped_at`),
//!   else from carrier events; its state and protection from
//!   [`protection`](super::protection).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::protection::{self, ManualProtection, ProtectionFacts, StateFacts};
use super::Rules;
use crate::facts::{Facts, ManualAction, OrderEmail, ParcelEmail};
use crate::model::{EmailKind, OrderAction, ParcelStatus};
use crate::report::{EtaView, EventView, OrderView, ParcelView, StatusReport};

/// The status model of `facts` at `now`.
pub fn report(facts: &Facts, now: DateTime<Utc>, rules: &Rules) -> StatusReport {
    Derivation::new(facts).report(now, rules)
}

/// The facts with the replacement chains resolved.
struct Derivation<'f> {
    facts: &'f Facts,
    /// Current number -> the earlier numbers that were replaced by it.
    predecessors: HashMap<String, Vec<String>>,
}

impl<'f> Derivation<'f> {
    fn new(facts: &'f Facts) -> Derivation<'f> {
        let mut d = Derivation {
            facts,
            predecessors: HashMap::new(),
        };
        let mut predecessors: HashMap<String, Vec<String>> = HashMap::new();
        for p in facts.parcels.values().filter(|p| p.replaced_by.is_some()) {
            let current = d.current_number(&p.number);
            if current != p.number {
                predecessors
                    .entry(current.to_string())
                    .or_default()
                    .push(p.number.clone());
            }
        }
        d.predecessors = predecessors;
        d
    }

    /// The current number a (possibly replaced) number leads to.
    fn current_number<'a>(&'a self, mut n: &'a str) -> &'a str {
        for _ in 0..16 {
            match self
                .facts
                .parcels
                .get(n)
                .and_then(|p| p.replaced_by.as_deref())
            {
                Some(next) if self.facts.parcels.contains_key(next) => n = next,
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
            .flat_map(|n| self.facts.parcel_emails.get(n).into_iter().flatten())
            .filter_map(|e| e.status);
        let order_wide = self
            .facts
            .parcel_orders
            .get(number)
            .into_iter()
            .flatten()
            .flat_map(|o| self.facts.order_emails.get(o).into_iter().flatten())
            .filter(|e| e.parcel_count == 0)
            .filter_map(|e| e.status);
        own.chain(order_wide).max_by_key(|s| s.progress())
    }

    /// One parcel as `status --json` shows it; `shipped` is its order's
    /// shipping time, `active` whether that order is still active.
    fn parcel_view(
        &self,
        number: &str,
        shipped: Option<DateTime<Utc>>,
        active: bool,
        now: DateTime<Utc>,
        rules: &Rules,
    ) -> ParcelView {
        let previous: Vec<String> = self.predecessors.get(number).cloned().unwrap_or_default();
        let row = self.facts.parcels.get(number);
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
            .flat_map(|n| self.facts.parcel_emails.get(n).into_iter().flatten())
            .collect();
        let last_event = self.facts.last_events.get(number).cloned().or_else(|| {
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
            self.facts
                .parcel_orders
                .get(number)
                .into_iter()
                .flatten()
                .flat_map(|o| self.facts.order_emails.get(o).into_iter().flatten())
                .filter(|e| e.eta.is_some())
                .max_by_key(|e| e.date)
                .and_then(|e| e.eta)
        });
        let last_activity = self
            .facts
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
                    rules.protection.stalled_after,
                ),
            previous_numbers: previous,
        }
    }

    /// One order as `status --json` shows it.
    fn order_view(&self, order_id: &str, now: DateTime<Utc>, rules: &Rules) -> OrderView {
        let tz: Tz = rules.timezone;
        let local = |t: DateTime<Utc>| t.with_timezone(&tz).date_naive();
        let today = local(now);
        let emails: &[OrderEmail] = self
            .facts
            .order_emails
            .get(order_id)
            .map_or(&[], |v| v.as_slice());
        let actions: &[ManualAction] = self
            .facts
            .actions
            .get(order_id)
            .map_or(&[], |v| v.as_slice());
        let numbers: BTreeSet<&str> = self
            .facts
            .order_parcels
            .get(order_id)
            .into_iter()
            .flatten()
            .map(|n| self.current_number(n))
            .collect();

        let confirmed = emails
            .iter()
            .filter(|e| e.kind == EmailKind::OrderConfirmed)
            .map(|e| e.date)
            .min();
        let first_event = numbers
            .iter()
            .filter_map(|n| self.facts.first_events.get(*n))
            .min()
            .copied();
        let shipped = emails
            .iter()
            .filter(|e| e.kind.shows_shipped())
            .map(|e| e.date)
            .min()
            .or(first_event);
        let done_action = actions
            .iter()
            .find(|a| a.action == OrderAction::Done)
            .map(|a| a.at);
        let completed_email = emails.iter().filter(|e| e.completed).map(|e| e.date).min();
        let completed_at = match (done_action, completed_email) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let disputed = emails.iter().any(|e| e.disputed);
        let delivered_email = emails
            .iter()
            .any(|e| e.kind == EmailKind::Delivered && e.parcel_count == 0);

        // Parcels need the order's activity to decide "stalled"; decide
        // the state first from statuses alone.
        let pre: Vec<ParcelView> = numbers
            .iter()
            .map(|n| self.parcel_view(n, shipped, true, now, rules))
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
                        .filter(|e| e.kind == EmailKind::Delivered)
                        .map(|e| e.date)
                        .min()
                })
                .map(local)
        } else {
            None
        };
        let manual = actions
            .iter()
            .filter_map(|a| match a.action {
                OrderAction::Extend(days) => Some(ManualProtection::Extend(days)),
                OrderAction::Until(date) => Some(ManualProtection::Until(date)),
                OrderAction::Done => None,
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
        let prot = protection::protection(&facts, rules.protection.days);
        OrderView {
            order_id: order_id.to_owned(),
            state,
            confirmed_at: confirmed.map(local),
            shipped_at: shipped.map(local),
            protection_ends: prot.map(|p| p.ends),
            protection_days_left: prot.map(|p| protection::days_left(p.ends, today)),
            protection_source: prot.map(|p| p.source),
            auto_completes_on: prot.and_then(|p| p.auto_completes_on),
            dispute_until: prot.and_then(|p| p.dispute_until),
            parcels,
        }
    }

    /// The whole status model: every order (active and completed; callers
    /// filter), sorted by protection end then id, and every parcel no order
    /// claims.
    pub fn report(&self, now: DateTime<Utc>, rules: &Rules) -> StatusReport {
        let mut orders: Vec<OrderView> = self
            .facts
            .orders
            .iter()
            .map(|id| self.order_view(id, now, rules))
            .collect();
        orders.sort_by(|a, b| match (a.protection_ends, b.protection_ends) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.order_id.cmp(&b.order_id)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.order_id.cmp(&b.order_id),
        });

        let unassigned_parcels = self
            .facts
            .parcels
            .values()
            .filter(|p| {
                p.replaced_by.is_none() && !self.facts.parcel_orders.contains_key(&p.number)
            })
            .filter(|p| {
                // A parcel whose earlier number is tied to an order is not
                // unassigned.
                !self.facts.parcels.values().any(|q| {
                    self.current_number(&q.number) == p.number
                        && self.facts.parcel_orders.contains_key(&q.number)
                })
            })
            .map(|p| self.parcel_view(&p.number, None, true, now, rules))
            .collect();
        StatusReport {
            generated_at: now,
            orders,
            unassigned_parcels,
            notices: Vec::new(),
        }
    }
}
