//! The status derivation: the facts the store keeps → orders and parcels
//! as `status --json` shows them (SPEC §4). Pure: the same facts, rules and
//! "now" always give the same model, whatever order the emails arrived in.
//!
//! - A parcel's status is the furthest of what its provider and its emails
//!   say (never backwards); replaced numbers are followed to the current one
//!   and listed as `previous_numbers`.
//! - An order's dates come from its emails (`confirmed_at`, `shipped_at`)
//!   and carrier events; only a "shipped" email or the first carrier event
//!   dates the shipping, so an order first seen in transit has no shipping
//!   date and an unknown protection end rather than a late, invented one.
//!   Its state and protection come from [`protection`](super::protection),
//!   what they mean today from [`lifecycle`](super::lifecycle).
//! - A parcel is stalled only on a provider's evidence (its newest carrier
//!   event is older than `stalled_after`), never from silence.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::lifecycle::{self, TimeFacts};
use super::protection::{self, ManualProtection, ProtectionFacts, StateFacts, Tracked};
use super::Rules;
use crate::facts::{Facts, ManualAction, OrderEmail, ParcelEmail};
use crate::model::{
    CompletedReason, EmailKind, Item, OrderAction, OrderState, ParcelStatus, Provider,
};
use crate::report::{EtaView, EventView, OrderView, ParcelOrigin, ParcelView, StatusReport};

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

    /// What a provider has shown about `number`: the only evidence that
    /// can make it stalled (SPEC §7).
    fn tracked(&self, number: &str, rules: &Rules) -> Tracked {
        if rules.tracking.providers.is_empty() {
            return Tracked::Off;
        }
        match self.facts.last_events.get(number) {
            Some(e) if self.facts.event_providers.contains_key(number) => {
                Tracked::NewestEvent(e.time)
            }
            _ => Tracked::NoEvents,
        }
    }

    /// One parcel as `status --json` shows it. `stalled` is the parcel's
    /// own; [`Derivation::order_view`] clears it for an order that is no
    /// longer active.
    fn parcel_view(&self, number: &str, now: DateTime<Utc>, rules: &Rules) -> ParcelView {
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
        ParcelView {
            tracking_number: number.to_string(),
            tracking_url: tracking_url(
                number,
                self.facts
                    .event_providers
                    .get(number)
                    .copied()
                    .or(rules.tracking.providers.first())
                    .unwrap_or(Provider::None),
            ),
            carrier: row.and_then(|r| r.carrier.clone()),
            provider: self.facts.event_providers.get(number).copied(),
            status,
            status_detail: row.and_then(|r| r.status_detail.clone()),
            last_event,
            eta: eta.map(|(from, to)| EtaView { from, to }),
            last_checked_at: row.and_then(|r| r.last_checked_at),
            delivered_at,
            stalled: protection::is_stalled(
                status.is_final(),
                self.tracked(number, rules),
                now,
                rules.protection.stalled_after,
            ),
            previous_numbers: previous,
            origin: if emails.is_empty() {
                ParcelOrigin::Hand
            } else {
                ParcelOrigin::Email
            },
        }
    }

    /// The current parcel numbers of an order.
    fn order_numbers(&self, order_id: &str) -> BTreeSet<&str> {
        self.facts
            .order_parcels
            .get(order_id)
            .into_iter()
            .flatten()
            .map(|n| self.current_number(n))
            .collect()
    }

    /// When the order shipped (SPEC §4 `shipped_at`): the earlier of the
    /// first "shipped" email and the first carrier event. Later-stage
    /// emails are no shipping date.
    fn shipped(&self, emails: &[OrderEmail], numbers: &BTreeSet<&str>) -> Option<DateTime<Utc>> {
        let first_event = numbers
            .iter()
            .filter_map(|n| self.facts.first_events.get(*n))
            .min()
            .copied();
        let email = emails
            .iter()
            .filter(|e| e.kind.dates_shipping())
            .map(|e| e.date)
            .min();
        email.into_iter().chain(first_event).min()
    }

    /// One order as `status --json` shows it: the facts, the state they
    /// show, the protection they date, then what all of it means today.
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
        let numbers = self.order_numbers(order_id);

        let confirmed = emails
            .iter()
            .filter(|e| e.kind == EmailKind::OrderConfirmed)
            .map(|e| e.date)
            .min();
        let shipped = self.shipped(emails, &numbers);
        let completion = completion(emails, actions);
        let parcels: Vec<ParcelView> = numbers
            .iter()
            .map(|n| self.parcel_view(n, now, rules))
            .collect();
        let state = facts_state(emails, &parcels, completion.is_some(), shipped);
        let delivered_on =
            delivered_on(state, emails, &parcels, shipped, completion.is_some()).map(local);
        let prot = protection::protection(
            &ProtectionFacts {
                shipped_on: shipped.map(local),
                delivered_on,
                completed_on: completion.map(|c| local(c.0)),
                email_until: emails.iter().filter_map(|e| e.protection_until).collect(),
                email_extensions: emails.iter().filter_map(|e| e.extended_days).collect(),
                manual: manual_protection(actions),
            },
            rules.protection.days,
        );
        let last_activity = self
            .last_activity(order_id, emails, actions, &numbers)
            .map(local);
        let now_state = lifecycle::in_time(
            &TimeFacts {
                state,
                completion: completion.map(|c| c.1),
                protection: prot,
                last_activity,
            },
            today,
        );
        // A parcel of an order that is over is nobody's problem any more.
        let parcels: Vec<ParcelView> = parcels
            .into_iter()
            .map(|p| ParcelView {
                stalled: p.stalled && now_state.state.is_active(),
                ..p
            })
            .collect();
        let horizon = rules
            .protection
            .warn_before_days
            .iter()
            .copied()
            .max()
            .unwrap_or(0);
        let needs_action = lifecycle::needs_action(&now_state, prot.ends, &parcels, horizon, today);
        OrderView {
            order_id: order_id.to_owned(),
            state: now_state.state,
            completed_reason: now_state.completed_reason,
            confirmed_at: confirmed.map(local),
            shipped_at: shipped.map(local),
            protection_ends: prot.ends,
            protection_days_left: prot.ends.map(|e| protection::days_left(e, today)),
            protection_source: prot.source,
            auto_completes_on: now_state.auto_completes_on,
            dispute_until: now_state.dispute_until,
            last_activity,
            items: merge_items(emails),
            store: best_store(emails),
            url: order_url(order_id),
            needs_action,
            parcels,
        }
    }

    /// The newest email, carrier event or command of an order.
    fn last_activity(
        &self,
        order_id: &str,
        emails: &[OrderEmail],
        actions: &[ManualAction],
        numbers: &BTreeSet<&str>,
    ) -> Option<DateTime<Utc>> {
        let events = numbers
            .iter()
            .filter_map(|n| self.facts.last_events.get(*n).map(|e| e.time));
        let parcel_emails = numbers
            .iter()
            .flat_map(|n| self.facts.parcel_emails.get(*n).into_iter().flatten())
            .map(|e| e.date);
        // When aliwatch first saw the order is no news from AliExpress (a
        // year of mail imported today is a year old), but an order known
        // from nothing else is not given up on.
        let seen = emails
            .is_empty()
            .then(|| self.facts.order_first_seen.get(order_id).copied())
            .flatten();
        emails
            .iter()
            .map(|e| e.date)
            .chain(actions.iter().map(|a| a.at))
            .chain(events)
            .chain(parcel_emails)
            .chain(seen)
            .max()
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
            .map(|p| self.parcel_view(&p.number, now, rules))
            .collect();
        StatusReport {
            generated_at: now,
            orders,
            unassigned_parcels,
            notices: Vec::new(),
        }
    }
}

/// When and why the order completed, if an email or `done` says so:
/// "How did it go?" after a delivery means receipt was confirmed; any other
/// completing email says the order was closed. The earliest wins.
fn completion(
    emails: &[OrderEmail],
    actions: &[ManualAction],
) -> Option<(DateTime<Utc>, CompletedReason)> {
    let done = actions
        .iter()
        .find(|a| a.action == OrderAction::Done)
        .map(|a| (a.at, CompletedReason::Done));
    let email = emails.iter().filter(|e| e.completed).map(|e| {
        let how = if e.kind == EmailKind::Delivered {
            CompletedReason::Confirmed
        } else {
            CompletedReason::Closed
        };
        (e.date, how)
    });
    done.into_iter().chain(email).min_by_key(|c| c.0)
}

/// Whether a parcel's delivery counts for its order. A delivery dated
/// before the order shipped belongs to another journey (an old email about
/// a number tied to the order later, with `add --order`): it must not
/// deliver the order, nor cut its protection to a day before it shipped.
fn delivers_order(p: &ParcelView, shipped: Option<DateTime<Utc>>) -> bool {
    p.status == ParcelStatus::Delivered
        && !matches!((p.delivered_at, shipped), (Some(d), Some(s)) if d < s)
}

/// The state the facts alone show (no date rules yet).
fn facts_state(
    emails: &[OrderEmail],
    parcels: &[ParcelView],
    completed: bool,
    shipped: Option<DateTime<Utc>>,
) -> OrderState {
    protection::order_state(StateFacts {
        completed,
        disputed: emails.iter().any(|e| e.disputed),
        delivered_email: emails
            .iter()
            .any(|e| e.kind == EmailKind::Delivered && e.parcel_count == 0),
        parcels: parcels.len(),
        parcels_delivered: parcels
            .iter()
            .filter(|p| delivers_order(p, shipped))
            .count(),
        // A later-stage email dates nothing but shows the order moving.
        shipped: shipped.is_some() || emails.iter().any(|e| e.kind.shows_shipped()),
    })
}

/// When the order was delivered: its last parcel's delivery, else the
/// first "delivered" email; only for a delivered order (or a completed one
/// with a delivered parcel).
fn delivered_on(
    state: OrderState,
    emails: &[OrderEmail],
    parcels: &[ParcelView],
    shipped: Option<DateTime<Utc>>,
    completed: bool,
) -> Option<DateTime<Utc>> {
    let delivered_any = parcels.iter().any(|p| delivers_order(p, shipped));
    if state != OrderState::Delivered && !(completed && delivered_any) {
        return None;
    }
    parcels
        .iter()
        .filter(|p| delivers_order(p, shipped))
        .filter_map(|p| p.delivered_at)
        .max()
        .or_else(|| {
            emails
                .iter()
                .filter(|e| e.kind == EmailKind::Delivered)
                .map(|e| e.date)
                .min()
        })
}

/// The `protection` commands, in the order given.
fn manual_protection(actions: &[ManualAction]) -> Vec<ManualProtection> {
    actions
        .iter()
        .filter_map(|a| match a.action {
            OrderAction::Extend(days) => Some(ManualProtection::Extend(days)),
            OrderAction::Until(date) => Some(ManualProtection::Until(date)),
            OrderAction::Done => None,
        })
        .collect()
}

/// The order's page on AliExpress (SPEC §4 `url`).
pub fn order_url(order_id: &str) -> String {
    format!("https://www.aliexpress.com/p/order/detail.html?orderId={order_id}")
}

/// A public tracking page for `number`: that of the provider whose answer
/// the parcel shows, else the first configured, else 17TRACK's (SPEC §4
/// `tracking_url`). Each provider's module holds its page.
pub fn tracking_url(number: &str, provider: Provider) -> String {
    provider.tracking_page(number)
}

/// Whether two titles name the same item: equal, or one is the other cut
/// short (emails shorten long titles; the ellipsis is already gone).
fn same_item(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    !a.is_empty() && !b.is_empty() && (a.starts_with(&b) || b.starts_with(&a))
}

/// The best item list across an order's emails: the list of the email that
/// shows the most items (the newest on a tie), each item completed from
/// the other emails — the longest title wins, a missing variant, quantity
/// or price is filled in.
pub fn merge_items(emails: &[OrderEmail]) -> Vec<Item> {
    let Some(base) = emails
        .iter()
        .filter(|e| !e.items.is_empty())
        .max_by_key(|e| (e.items.len(), e.date))
    else {
        return Vec::new();
    };
    let mut items = base.items.clone();
    for item in &mut items {
        let title = item.title.clone();
        let others = emails
            .iter()
            .flat_map(|e| e.items.iter())
            .filter(|o| same_item(&o.title, &title));
        for o in others {
            if o.title.chars().count() > item.title.chars().count() {
                item.title = o.title.clone();
            }
            item.variant = item.variant.take().or_else(|| o.variant.clone());
            item.quantity = item.quantity.or(o.quantity);
            item.price = item.price.take().or_else(|| o.price.clone());
        }
    }
    items
}

/// The store the newest email that names one names.
fn best_store(emails: &[OrderEmail]) -> Option<String> {
    emails
        .iter()
        .filter(|e| e.store.is_some())
        .max_by_key(|e| e.date)
        .and_then(|e| e.store.clone())
}

#[cfg(test)]
mod tests {
    //! The derivation's own rules, each across its boundary in "today":
    //! what dates the shipping, when a parcel is stalled, and what an order
    //! first seen late (in transit, delivered) becomes over the days.
    use super::*;
    use crate::model::{OrderState, ProtectionSource};
    use chrono::{NaiveDate, TimeZone};

    const ORDER: &str = "8100000000000001";
    const PARCEL: &str = "LP00100000000001";

    fn t(day: &str) -> DateTime<Utc> {
        let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("date");
        Utc.from_utc_datetime(&d.and_hms_opt(10, 0, 0).expect("time"))
    }

    fn d(day: &str) -> NaiveDate {
        NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("date")
    }

    fn email(kind: EmailKind, day: &str) -> OrderEmail {
        OrderEmail {
            kind,
            date: t(day),
            status: kind.implied_parcel_status(),
            parcel_count: 1,
            protection_until: None,
            extended_days: None,
            completed: false,
            disputed: false,
            eta: None,
            items: vec![],
            store: None,
        }
    }

    /// One order with one parcel, told by `emails` (the parcel's own
    /// emails say the same) and, where given, carrier events from Cainiao.
    fn facts(emails: &[OrderEmail], events: Option<(&str, &str)>) -> Facts {
        let mut f = Facts {
            orders: vec![ORDER.into()],
            ..Facts::default()
        };
        f.order_emails.insert(ORDER.into(), emails.to_vec());
        f.order_parcels
            .insert(ORDER.into(), [PARCEL.to_string()].into_iter().collect());
        f.parcel_orders
            .insert(PARCEL.into(), [ORDER.to_string()].into_iter().collect());
        f.parcel_emails.insert(
            PARCEL.into(),
            emails
                .iter()
                .map(|e| ParcelEmail {
                    date: e.date,
                    status: e.status,
                    subject: format!("{:?}", e.kind),
                })
                .collect(),
        );
        f.parcels.insert(
            PARCEL.into(),
            crate::facts::ParcelRow {
                number: PARCEL.into(),
                replaced_by: None,
                carrier: None,
                provider_status: events.map(|_| ParcelStatus::InTransit),
                status_detail: None,
                eta: None,
                delivered_at: None,
                last_checked_at: None,
                first_seen_at: emails.first().map_or(t("2026-01-01"), |e| e.date),
            },
        );
        if let Some((first, last)) = events {
            f.first_events.insert(PARCEL.into(), t(first));
            f.last_events.insert(
                PARCEL.into(),
                EventView {
                    time: t(last),
                    description: "Departed from sorting center".into(),
                    location: None,
                },
            );
            f.event_providers.insert(PARCEL.into(), Provider::Cainiao);
        }
        f
    }

    fn rules(provider: Provider) -> Rules {
        let mut r = Rules::default();
        r.tracking.providers = crate::model::Providers::new(&[provider]);
        r
    }

    fn view(f: &Facts, today: &str, provider: Provider) -> OrderView {
        report(f, t(today), &rules(provider))
            .orders
            .into_iter()
            .next()
            .expect("one order")
    }

    #[test]
    fn only_a_shipped_email_or_the_first_carrier_event_dates_the_shipping() {
        use EmailKind as K;
        // (emails, carrier events (first, last), shipped_at, protection end)
        type Case<'a> = (
            Vec<OrderEmail>,
            Option<(&'a str, &'a str)>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                vec![email(K::Shipped, "2026-11-01")],
                None,
                Some("2026-11-01"),
                Some("2026-12-31"),
            ),
            // later-stage emails date nothing: unknown, never invented
            (vec![email(K::InTransit, "2026-11-20")], None, None, None),
            (vec![email(K::Delivered, "2026-11-20")], None, None, None),
            (
                vec![email(K::OrderConfirmed, "2026-10-28")],
                None,
                None,
                None,
            ),
            // a carrier's first event fills the date in, later too
            (
                vec![email(K::InTransit, "2026-11-20")],
                Some(("2026-11-03", "2026-11-19")),
                Some("2026-11-03"),
                Some("2027-01-02"),
            ),
            // the earlier of the shipped email and the first event
            (
                vec![email(K::Shipped, "2026-11-05")],
                Some(("2026-11-03", "2026-11-19")),
                Some("2026-11-03"),
                Some("2027-01-02"),
            ),
            (
                vec![
                    email(K::InTransit, "2026-11-02"),
                    email(K::Shipped, "2026-11-04"),
                ],
                None,
                Some("2026-11-04"),
                Some("2027-01-03"),
            ),
        ];
        for (emails, events, shipped, ends) in cases {
            let kinds: Vec<EmailKind> = emails.iter().map(|e| e.kind).collect();
            let o = view(&facts(&emails, events), "2026-11-21", Provider::None);
            assert_eq!(o.shipped_at, shipped.map(d), "{kinds:?} {events:?}");
            assert_eq!(o.protection_ends, ends.map(d), "{kinds:?} {events:?}");
            let source = if ends.is_some() {
                ProtectionSource::Default
            } else {
                ProtectionSource::Unknown
            };
            assert_eq!(o.protection_source, source, "{kinds:?} {events:?}");
        }
    }

    #[test]
    fn stalled_only_on_a_providers_events_older_than_stalled_after() {
        use EmailKind as K;
        let shipped = [email(K::Shipped, "2026-11-01")];
        let tracked = facts(&shipped, Some(("2026-11-02", "2026-11-10")));
        let silent = facts(&shipped, None);
        // (facts, provider, today, stalled)
        let cases = [
            // newest event 2026-11-10 10:00, stalled_after 10 days
            (&tracked, Provider::Cainiao, "2026-11-20", false),
            (&tracked, Provider::Cainiao, "2026-11-21", true),
            // provider switched off: its old events are no evidence now
            (&tracked, Provider::None, "2026-11-21", false),
            // no provider, or one without events yet: silence is no evidence
            (&silent, Provider::None, "2026-11-15", false),
            (&silent, Provider::None, "2026-12-20", false),
            (&silent, Provider::Cainiao, "2026-12-20", false),
        ];
        for (f, provider, today, want) in cases {
            let o = view(f, today, provider);
            assert_eq!(o.parcels[0].stalled, want, "{provider:?} on {today}");
            let asks = o
                .needs_action
                .iter()
                .any(|a| a.reason == crate::model::ActionReason::Stalled);
            assert_eq!(asks, want, "{provider:?} on {today}: {:?}", o.needs_action);
        }
        assert_eq!(
            view(&tracked, "2026-11-21", Provider::Cainiao).parcels[0].provider,
            Some(Provider::Cainiao)
        );
        assert_eq!(
            view(&silent, "2026-11-21", Provider::None).parcels[0].provider,
            None
        );
    }

    #[test]
    fn an_order_first_seen_late_moves_on_by_its_own_dates() {
        use EmailKind as K;
        use OrderState as S;
        let in_transit = facts(&[email(K::InTransit, "2026-08-01")], None);
        let delivered = facts(&[email(K::Delivered, "2026-11-20")], None);
        // (facts, today, state, auto completes, dispute until)
        type Case<'a> = (&'a Facts, &'a str, S, Option<&'a str>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            // in transit, unknown end: active until 120 days of silence
            (&in_transit, "2026-11-29", S::Shipped, None, None),
            (&in_transit, "2026-11-30", S::Completed, None, None),
            // delivered only: §7 from the delivery date
            (
                &delivered,
                "2026-11-25",
                S::Delivered,
                Some("2026-11-25"),
                Some("2026-12-10"),
            ),
            (
                &delivered,
                "2026-11-26",
                S::Completed,
                Some("2026-11-25"),
                Some("2026-12-10"),
            ),
        ];
        for (f, today, state, auto, until) in cases {
            let o = view(f, today, Provider::None);
            assert_eq!(o.state, state, "{today}");
            assert_eq!(o.shipped_at, None, "{today}");
            assert_eq!(o.protection_ends, None, "{today}");
            assert_eq!(o.protection_source, ProtectionSource::Unknown, "{today}");
            assert_eq!(o.auto_completes_on, auto.map(d), "{today}");
            assert_eq!(o.dispute_until, until.map(d), "{today}");
        }
    }

    #[test]
    fn a_delivery_before_the_order_shipped_keeps_the_orders_dates() {
        use EmailKind as K;
        // shipped 2026-11-17; a parcel tied to it later (add --order) with
        // an old "delivered" email
        let tied = |delivered: &str| {
            let mut f = facts(&[email(K::Shipped, "2026-11-17")], None);
            f.parcel_emails.insert(
                PARCEL.into(),
                vec![ParcelEmail {
                    date: t(delivered),
                    status: Some(ParcelStatus::Delivered),
                    subject: "Package delivered".into(),
                }],
            );
            f
        };
        // (delivered on, today, state, protection end)
        let cases = [
            // before shipping: not this order's delivery
            (
                "2026-10-28",
                "2026-11-20",
                OrderState::Shipped,
                "2027-01-16",
            ),
            (
                "2026-10-28",
                "2027-01-16",
                OrderState::Shipped,
                "2027-01-16",
            ),
            // after shipping: delivered, protection cut to delivery + 5
            (
                "2026-11-25",
                "2026-11-26",
                OrderState::Delivered,
                "2026-11-30",
            ),
            (
                "2026-11-25",
                "2026-12-01",
                OrderState::Completed,
                "2026-11-30",
            ),
        ];
        for (delivered, today, state, ends) in cases {
            let o = view(&tied(delivered), today, Provider::None);
            assert_eq!(o.state, state, "delivered {delivered}, {today}");
            assert_eq!(o.protection_ends, Some(d(ends)), "delivered {delivered}");
            assert_eq!(o.shipped_at, Some(d("2026-11-17")));
        }
    }
}
