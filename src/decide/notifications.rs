//! What is due: pure decisions over the read model, the set of
//! notification keys already recorded, "now" and the config. No clock, no
//! store, no network — the caller injects all of them, so every rule here
//! is a table-driven test.
//!
//! Rules (SPEC §5):
//! - The digest is due once per local day, when `digest.at` has passed in
//!   `timezone` and `digest:<local date>` is not recorded. Only *today* is
//!   ever considered, so after any downtime at most one digest goes out,
//!   never a backlog.
//! - With `skip_when_empty`, a day without an active order (and without a
//!   tracked parcel that has no order) gets no digest, and nothing is
//!   recorded: an order that arrives later the same day still triggers that
//!   day's digest.
//! - A warning is due for an active order whose protection ends today or
//!   later, for each `warn_before` threshold `N` with `days_left <= N`.
//!   Where several unrecorded thresholds are crossed at once (aliwatch was
//!   off, or learned of the order late), ONE email goes out for the
//!   smallest, and the larger ones are recorded as superseded so they never
//!   send later.
//! - Push channels (SPEC §8) get the same warnings and digest, and the
//!   events of [`due_events`]: from the same `needs_action` view and parcel
//!   statuses that `status` shows, so every channel says the same thing.
//!   One event is one message per channel: the same delivery under several
//!   keys (two numbers of one parcel, one package for two orders, the
//!   order's "confirm receipt") is sent once, the other keys recorded as
//!   superseded with it.

use std::collections::HashSet;

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::Rules;
pub use crate::model::NotificationKey;
use crate::model::{ActionReason, EventKind, ParcelStatus};
use crate::report::{ActionNeeded, OrderView, ParcelView, StatusReport};

/// One notification that is due and not yet recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub key: NotificationKey,
    /// Keys to record as superseded together with this one (larger
    /// thresholds crossed at the same time); they are never sent.
    pub supersedes: Vec<NotificationKey>,
}

/// The key of a digest.
pub fn digest_key(date: NaiveDate) -> NotificationKey {
    NotificationKey::Digest(date)
}

/// The key of a warning.
pub fn warning_key(order_id: &str, threshold_days: u32) -> NotificationKey {
    NotificationKey::Warning {
        order_id: order_id.to_owned(),
        threshold_days,
    }
}

/// Today's date in `tz`.
pub fn local_today(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// The instant `date` at local time `at` in `tz`. DST: an ambiguous local
/// time (autumn) is its first occurrence; a nonexistent one (spring gap) is
/// the next valid instant, i.e. the end of the gap.
pub fn local_instant(date: NaiveDate, at: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let mut local = date.and_time(at);
    // Gaps are at most a few hours (historically ≤ 2 h; 24 h for a
    // skipped day such as Samoa 2011), so stepping by minutes terminates.
    for _ in 0..(26 * 60) {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => {
                // the next whole minute: lands exactly on the gap's end
                let secs = i64::from(chrono::Timelike::second(&local));
                local += Duration::seconds(60 - secs);
            }
        }
    }
    // Unreachable for real zones; fall back to reading the time as UTC.
    date.and_time(at).and_utc()
}

/// Whether the digest has content: an active order, or a tracked parcel
/// that no order claims yet and that is still on its way.
pub fn digest_has_content(report: &StatusReport) -> bool {
    report.orders.iter().any(OrderView::is_active)
        || report
            .unassigned_parcels
            .iter()
            .any(|p| !p.status.is_final())
}

/// Whole days from today (in `tz`) to the order's protection end.
pub fn days_left(order: &OrderView, now: DateTime<Utc>, tz: Tz) -> Option<i64> {
    order
        .protection_ends
        .map(|end| (end - local_today(now, tz)).num_days())
}

/// When the next digest falls due (for the daemon's timer): today's
/// `digest.at` if it is still ahead, else tomorrow's.
pub fn next_digest_at(now: DateTime<Utc>, rules: &Rules) -> DateTime<Utc> {
    let today = local_today(now, rules.timezone);
    let t = local_instant(today, rules.digest.at, rules.timezone);
    if t > now {
        return t;
    }
    let tomorrow = today.succ_opt().unwrap_or(today);
    local_instant(tomorrow, rules.digest.at, rules.timezone)
}

/// Everything due now that is not recorded yet. `recorded` holds every key
/// in the notifications table, whatever its state (pending ones are retried
/// by the sender, not re-created here).
pub fn due_notifications(
    report: &StatusReport,
    recorded: &HashSet<NotificationKey>,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Vec<Notification> {
    let mut out = Vec::new();

    for order in &report.orders {
        if let Some(n) = due_warning(order, recorded, now, rules) {
            out.push(n);
        }
    }

    out.extend(due_digest(report, recorded, now, rules));
    out
}

/// Today's digest, if it is due and not recorded.
fn due_digest(
    report: &StatusReport,
    recorded: &HashSet<NotificationKey>,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Option<Notification> {
    let tz = rules.timezone;
    if !rules.digest.enabled {
        return None;
    }
    let today = local_today(now, tz);
    let key = digest_key(today);
    let passed = now >= local_instant(today, rules.digest.at, tz);
    let wanted = digest_has_content(report) || !rules.digest.skip_when_empty;
    (passed && wanted && !recorded.contains(&key)).then_some(Notification {
        key,
        supersedes: Vec::new(),
    })
}

/// How long a parcel's delivery (or its being out for delivery) stays news
/// for push channels: older ones are not pushed, so a channel added to a
/// running install, or aliwatch back after days off, does not replay
/// history.
pub const PARCEL_NEWS: Duration = Duration::days(3);

/// Every push event due now for a channel subscribed to `events` whose
/// ledger holds `recorded` (SPEC §8). Warnings and the digest follow
/// exactly the email rules ([`due_notifications`]); on top:
/// - `action_needed`: for each active order, each reason of its
///   `needs_action` (SPEC §7) once per order and reason, except
///   `protection_ending`, which is the `protection_warning` event;
/// - `out_for_delivery` / `delivered`: once per parcel of an active order
///   (or a parcel no order claims), while the parcel has that status and
///   its last event (delivery time) is at most [`PARCEL_NEWS`] old.
pub fn due_events(
    report: &StatusReport,
    recorded: &HashSet<NotificationKey>,
    now: DateTime<Utc>,
    rules: &Rules,
    events: &[EventKind],
) -> Vec<Notification> {
    let wants = |e: EventKind| events.contains(&e);
    let mut parcel_keys: Vec<Notification> = Vec::new();
    let push = |key: NotificationKey, out: &mut Vec<Notification>| {
        if !recorded.contains(&key) && !out.iter().any(|n| n.key == key) {
            out.push(Notification {
                key,
                supersedes: Vec::new(),
            });
        }
    };
    // Parcel news first: one push per event. Parcels of one order that
    // turned the same way at the same moment (an order-wide "delivered"
    // email marks each number of the order, an LP number and its last-mile
    // number among them) are one event; a parcel renumbered after its
    // news was pushed is not news again.
    let mut parcel_news: Vec<News> = Vec::new();
    let claimed = report
        .orders
        .iter()
        .filter(|o| o.is_active())
        .flat_map(|o| {
            o.parcels
                .iter()
                .map(move |p| (Some(o.order_id.as_str()), p))
        });
    let loose = report.unassigned_parcels.iter().map(|p| (None, p));
    for (order_id, p) in claimed.chain(loose) {
        let Some(key) = parcel_event_key(p, now) else {
            continue;
        };
        let event = key.event();
        if !wants(event) || already_news(p, &key, recorded) {
            continue;
        }
        // One parcel of two orders (one package for both) is one event:
        // remember the second order too, so its "confirm receipt" folds in.
        if let Some(index) = parcel_keys.iter().position(|n| n.key == key) {
            parcel_news.push(News {
                order_id,
                event,
                when: news_time(p, event),
                index,
            });
            continue;
        }
        let news = News {
            order_id,
            event,
            when: news_time(p, event),
            index: parcel_keys.len(),
        };
        let same = parcel_news.iter().find(|n| {
            n.order_id.is_some()
                && n.order_id == news.order_id
                && n.event == news.event
                && n.when == news.when
        });
        match same {
            Some(n) => parcel_keys[n.index].supersedes.push(key),
            None => {
                parcel_news.push(news);
                push(key, &mut parcel_keys);
            }
        }
    }
    let mut keys: Vec<Notification> = Vec::new();
    for order in report.orders.iter().filter(|o| o.is_active()) {
        if wants(EventKind::ProtectionWarning) {
            keys.extend(due_warning(order, recorded, now, rules));
        }
        if wants(EventKind::ActionNeeded) {
            for need in &order.needs_action {
                if need.reason == ActionReason::ProtectionEnding {
                    continue;
                }
                let key = NotificationKey::Action {
                    order_id: order.order_id.clone(),
                    reason: need.reason,
                };
                if recorded.contains(&key) || keys.iter().any(|n| n.key == key) {
                    continue;
                }
                // "Delivered, confirm by D" is the delivery's own news: a
                // channel that gets the `delivered` push of that order in
                // this pass (it names the day) does not get it twice.
                let delivery = parcel_news.iter().find(|n| {
                    n.order_id == Some(order.order_id.as_str()) && n.event == EventKind::Delivered
                });
                match delivery {
                    Some(n) if need.reason == ActionReason::DeliveredNotConfirmed => {
                        parcel_keys[n.index].supersedes.push(key)
                    }
                    _ => push(key, &mut keys),
                }
            }
        }
    }
    keys.extend(parcel_keys);
    if wants(EventKind::Digest) {
        keys.extend(due_digest(report, recorded, now, rules));
    }
    keys
}

/// One parcel event due in this pass, to recognise the same event under
/// another number of the same order.
struct News<'r> {
    order_id: Option<&'r str>,
    event: EventKind,
    /// When it happened (the delivery, else the last event).
    when: Option<DateTime<Utc>>,
    /// Its notification among the parcel events.
    index: usize,
}

/// Whether the parcel's news was pushed already, under its number or an
/// earlier one (the `LP…` number before the last-mile number).
fn already_news(
    p: &ParcelView,
    key: &NotificationKey,
    recorded: &HashSet<NotificationKey>,
) -> bool {
    recorded.contains(key)
        || p.previous_numbers.iter().any(|n| {
            let earlier = match key {
                NotificationKey::Delivered { .. } => NotificationKey::Delivered {
                    tracking_number: n.clone(),
                },
                NotificationKey::OutForDelivery { .. } => NotificationKey::OutForDelivery {
                    tracking_number: n.clone(),
                },
                _ => return false,
            };
            recorded.contains(&earlier)
        })
}

/// When a parcel's news happened: its delivery, else its last event.
fn news_time(p: &ParcelView, event: EventKind) -> Option<DateTime<Utc>> {
    let last = p.last_event.as_ref().map(|e| e.time);
    match event {
        EventKind::Delivered => p.delivered_at.or(last),
        _ => last,
    }
}

/// The parcel event a parcel is news for now, if any.
fn parcel_event_key(p: &ParcelView, now: DateTime<Utc>) -> Option<NotificationKey> {
    let fresh = |t: Option<DateTime<Utc>>| t.is_none_or(|t| now - t <= PARCEL_NEWS);
    let tracking_number = p.tracking_number.clone();
    match p.status {
        ParcelStatus::OutForDelivery if fresh(p.last_event.as_ref().map(|e| e.time)) => {
            Some(NotificationKey::OutForDelivery { tracking_number })
        }
        ParcelStatus::Delivered
            if fresh(p.delivered_at.or(p.last_event.as_ref().map(|e| e.time))) =>
        {
            Some(NotificationKey::Delivered { tracking_number })
        }
        _ => None,
    }
}

/// The parcel `number` and the order it belongs to (none for a parcel no
/// order claims).
fn find_parcel<'r>(
    report: &'r StatusReport,
    number: &str,
) -> Option<(Option<&'r OrderView>, &'r ParcelView)> {
    for o in &report.orders {
        if let Some(p) = o.parcels.iter().find(|p| p.tracking_number == number) {
            return Some((Some(o), p));
        }
    }
    report
        .unassigned_parcels
        .iter()
        .find(|p| p.tracking_number == number)
        .map(|p| (None, p))
}

/// The warning due for one order, if any.
fn due_warning(
    order: &OrderView,
    recorded: &HashSet<NotificationKey>,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Option<Notification> {
    if !order.is_active() {
        return None;
    }
    let left = days_left(order, now, rules.timezone)?;
    // Ended already: nothing to warn about any more (this also covers
    // protection that ended before aliwatch learned of the order).
    if left < 0 {
        return None;
    }
    let mut crossed: Vec<u32> = rules
        .protection
        .warn_before_days
        .iter()
        .copied()
        .filter(|&n| left <= i64::from(n))
        .collect();
    crossed.sort_unstable();
    crossed.dedup();
    let smallest = *crossed.first()?;
    let key = warning_key(&order.order_id, smallest);
    if recorded.contains(&key) {
        return None;
    }
    let supersedes = crossed
        .iter()
        .skip(1)
        .map(|&n| warning_key(&order.order_id, n))
        .filter(|k| !recorded.contains(k))
        .collect();
    Some(Notification { key, supersedes })
}

/// What a pending notification is about now.
#[derive(Debug, Clone, PartialEq)]
pub enum Content<'r> {
    /// The digest, rendered from the whole report.
    Digest,
    /// A protection warning for one order at a threshold.
    Warning {
        order: &'r OrderView,
        threshold_days: u32,
    },
    /// Warnings that fell due in the same pass, sent together (SPEC §5).
    Warnings(Vec<(&'r OrderView, u32)>),
    /// Push: an order needs action for one reason.
    Action {
        order: &'r OrderView,
        need: &'r ActionNeeded,
    },
    /// Push: a parcel is out for delivery or delivered.
    Parcel {
        event: EventKind,
        order: Option<&'r OrderView>,
        parcel: &'r ParcelView,
    },
}

/// Whether a pending notification still applies, and to what.
/// `Err(reason)`: it no longer applies and is recorded as superseded.
pub fn pending_content<'r>(
    key: &NotificationKey,
    report: &'r StatusReport,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<Content<'r>, String> {
    let (order_id, threshold_days) = match key {
        NotificationKey::Digest(_) => return Ok(Content::Digest),
        NotificationKey::Warning {
            order_id,
            threshold_days,
        } => (order_id, *threshold_days),
        NotificationKey::Action { order_id, reason } => {
            let order = report
                .orders
                .iter()
                .find(|o| &o.order_id == order_id)
                .ok_or("the order is no longer known")?;
            let need = order
                .needs_action
                .iter()
                .find(|n| n.reason == *reason)
                .ok_or_else(|| format!("the order no longer needs action ({})", reason.as_str()))?;
            return Ok(Content::Action { order, need });
        }
        NotificationKey::OutForDelivery { tracking_number }
        | NotificationKey::Delivered { tracking_number } => {
            let (order, parcel) =
                find_parcel(report, tracking_number).ok_or("the parcel is no longer known")?;
            if order.is_some_and(|o| !o.is_active()) {
                return Err("the order was completed".into());
            }
            if parcel_event_key(parcel, now).as_ref() != Some(key) {
                return Err(format!("the parcel is {} now", parcel.status.words()));
            }
            return Ok(Content::Parcel {
                event: key.event(),
                order,
                parcel,
            });
        }
    };
    let Some(order) = report.orders.iter().find(|o| &o.order_id == order_id) else {
        return Err("the order is no longer known".into());
    };
    if !order.is_active() {
        return Err("the order was completed".into());
    }
    match days_left(order, now, rules.timezone) {
        None => Err("the order has no protection date any more".into()),
        Some(left) if left < 0 => Err("protection ended before it could be sent".into()),
        Some(left) if left > i64::from(threshold_days) => Err("protection was extended".into()),
        Some(_) => Ok(Content::Warning {
            order,
            threshold_days,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OrderState, ParcelStatus};
    use crate::report::ParcelView;

    fn cfg(tz: Tz) -> Rules {
        // The digest at 08:00 and warnings at 7 and 2 days are the defaults.
        Rules {
            timezone: tz,
            ..Rules::default()
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn order(id: &str, state: OrderState, shipped: &str, ends: &str) -> OrderView {
        OrderView {
            shipped_at: Some(date(shipped)),
            protection_ends: Some(date(ends)),
            parcels: vec![ParcelView::sample(
                "LP00000000000001",
                ParcelStatus::InTransit,
            )],
            ..OrderView::sample(id, state)
        }
    }

    fn report(orders: Vec<OrderView>, now: DateTime<Utc>) -> StatusReport {
        StatusReport {
            generated_at: now,
            orders,
            unassigned_parcels: vec![],
            notices: Vec::new(),
        }
    }

    fn keys(v: &[Notification]) -> Vec<String> {
        v.iter().map(|n| n.key.to_string()).collect()
    }

    /// Runs `due_notifications` and records its output (sent and
    /// superseded), as the sender would.
    fn pass(
        r: &StatusReport,
        rec: &mut HashSet<NotificationKey>,
        now: DateTime<Utc>,
        c: &Rules,
    ) -> Vec<Notification> {
        let due = due_notifications(r, rec, now, c);
        for n in &due {
            rec.insert(n.key.clone());
            rec.extend(n.supersedes.iter().cloned());
        }
        due
    }

    #[test]
    fn shipped_55_days_ago_gets_one_warning_now_and_one_at_two_days() {
        let c = cfg(chrono_tz::Europe::Berlin);
        let mut c = c;
        c.digest.enabled = false;
        // shipped 2026-10-04, 60 days -> ends 2026-12-03; today 2026-11-28 = 55 days later
        let o = order(
            "8123456789012345",
            OrderState::Shipped,
            "2026-10-04",
            "2026-12-03",
        );
        let mut rec = HashSet::new();
        let now = utc("2026-11-28T09:00:00Z");
        let r = report(vec![o.clone()], now);
        let due = pass(&r, &mut rec, now, &c);
        assert_eq!(keys(&due), ["warning:8123456789012345:7d"]);
        assert!(due[0].supersedes.is_empty());
        assert!(matches!(
            (&due[0].key, days_left(&o, now, c.timezone)),
            (
                NotificationKey::Warning {
                    threshold_days: 7,
                    ..
                },
                Some(5)
            )
        ));
        // later the same day and the next two days: nothing new
        for t in [
            "2026-11-28T20:00:00Z",
            "2026-11-29T09:00:00Z",
            "2026-11-30T22:59:59Z",
        ] {
            assert!(pass(&r, &mut rec, utc(t), &c).is_empty(), "{t}");
        }
        // 2026-12-01 in Berlin (23:00Z on 11-30 is 00:00 local): 2 days left
        let due = pass(&r, &mut rec, utc("2026-11-30T23:00:00Z"), &c);
        assert_eq!(keys(&due), ["warning:8123456789012345:2d"]);
        for t in [
            "2026-12-02T09:00:00Z",
            "2026-12-03T09:00:00Z",
            "2026-12-10T09:00:00Z",
        ] {
            assert!(pass(&r, &mut rec, utc(t), &c).is_empty(), "{t}");
        }
    }

    #[test]
    fn several_thresholds_crossed_at_once_give_one_email_for_the_smallest() {
        let mut c = cfg(chrono_tz::UTC);
        c.digest.enabled = false;
        c.protection.warn_before_days = vec![14, 7, 2];
        let o = order(
            "1000000000001",
            OrderState::Shipped,
            "2026-10-01",
            "2026-11-29",
        );
        let now = utc("2026-11-28T12:00:00Z");
        let mut rec = HashSet::new();
        let due = pass(&report(vec![o.clone()], now), &mut rec, now, &c);
        assert_eq!(keys(&due), ["warning:1000000000001:2d"]);
        assert_eq!(
            due[0].supersedes,
            ["warning:1000000000001:7d", "warning:1000000000001:14d"]
        );
        // never again, not even the superseded ones
        let later = utc("2026-11-29T12:00:00Z");
        assert!(pass(&report(vec![o], later), &mut rec, later, &c).is_empty());
    }

    #[test]
    fn late_second_threshold_after_first_was_sent() {
        // 7d was sent; aliwatch was off until 1 day is left: one 2d warning
        let mut c = cfg(chrono_tz::UTC);
        c.digest.enabled = false;
        let o = order(
            "42424242424242",
            OrderState::Shipped,
            "2026-10-01",
            "2026-11-29",
        );
        let mut rec: HashSet<NotificationKey> = [warning_key("42424242424242", 7)].into();
        let now = utc("2026-11-28T12:00:00Z");
        let due = pass(&report(vec![o], now), &mut rec, now, &c);
        assert_eq!(keys(&due), ["warning:42424242424242:2d"]);
        assert!(due[0].supersedes.is_empty());
    }

    #[test]
    fn no_warning_for_completed_ended_or_far_orders() {
        let mut c = cfg(chrono_tz::UTC);
        c.digest.enabled = false;
        let now = utc("2026-11-28T12:00:00Z");
        let table = [
            (OrderState::Completed, "2026-11-30", false),
            (OrderState::Shipped, "2026-11-27", false), // ended yesterday
            (OrderState::Shipped, "2026-12-06", false), // 8 days left
            (OrderState::Shipped, "2026-12-05", true),  // 7 days left
            (OrderState::Shipped, "2026-11-28", true),  // ends today
            (OrderState::Delivered, "2026-11-30", true),
            (OrderState::Disputed, "2026-11-30", true),
            (OrderState::AwaitingShipment, "2026-11-30", true),
        ];
        for (state, ends, want) in table {
            let o = order("5555555555555", state, "2026-10-01", ends);
            let due = due_notifications(&report(vec![o], now), &HashSet::new(), now, &c);
            assert_eq!(!due.is_empty(), want, "{state} {ends}");
        }
        // no protection date at all
        let mut o = order(
            "5555555555555",
            OrderState::Shipped,
            "2026-10-01",
            "2026-11-30",
        );
        o.protection_ends = None;
        assert!(due_notifications(&report(vec![o], now), &HashSet::new(), now, &c).is_empty());
    }

    #[test]
    fn digest_once_per_local_day_and_no_backlog() {
        let c = cfg(chrono_tz::Europe::Berlin);
        let o = order("1", OrderState::Shipped, "2026-11-01", "2026-12-31");
        let mut rec = HashSet::new();
        let r = report(vec![o], utc("2026-11-28T00:00:00Z"));
        // 07:59 Berlin (CET = UTC+1): not yet
        assert!(pass(&r, &mut rec, utc("2026-11-28T06:59:00Z"), &c).is_empty());
        // 08:00 Berlin: due
        let due = pass(&r, &mut rec, utc("2026-11-28T07:00:00Z"), &c);
        assert_eq!(keys(&due), ["digest:2026-11-28"]);
        // the rest of the day: nothing; 23:30 local is still 11-28
        for t in ["2026-11-28T12:00:00Z", "2026-11-28T22:30:00Z"] {
            assert!(pass(&r, &mut rec, utc(t), &c).is_empty(), "{t}");
        }
        // down for 3 days, back at 2026-12-01 10:00 local: exactly one digest, today's
        let due = pass(&r, &mut rec, utc("2026-12-01T09:00:00Z"), &c);
        assert_eq!(keys(&due), ["digest:2026-12-01"]);
        assert!(pass(&r, &mut rec, utc("2026-12-01T09:05:00Z"), &c).is_empty());
        // back before `at`: nothing for the missed day either
        assert!(pass(&r, &mut rec, utc("2026-12-04T06:00:00Z"), &c).is_empty());
    }

    #[test]
    fn digest_respects_dst_in_berlin() {
        let mut c = cfg(chrono_tz::Europe::Berlin);
        // summer: 08:00 CEST = 06:00Z
        assert_eq!(
            next_digest_at(utc("2026-07-01T05:00:00Z"), &c),
            utc("2026-07-01T06:00:00Z")
        );
        // 2026-03-29: clocks go 02:00 -> 03:00. 08:00 CEST = 06:00Z
        assert_eq!(
            next_digest_at(utc("2026-03-28T08:00:00Z"), &c),
            utc("2026-03-29T06:00:00Z")
        );
        // 2026-10-25: 03:00 -> 02:00. 08:00 CET = 07:00Z
        assert_eq!(
            next_digest_at(utc("2026-10-24T07:00:00Z"), &c),
            utc("2026-10-25T07:00:00Z")
        );
        // a nonexistent local time (02:30 on the spring day) is the gap's end, 03:00 CEST
        c.digest.at = NaiveTime::from_hms_opt(2, 30, 0).expect("time");
        assert_eq!(
            local_instant(date("2026-03-29"), c.digest.at, c.timezone),
            utc("2026-03-29T01:00:00Z")
        );
        // an ambiguous one (02:30 on the autumn day) is its first occurrence, CEST
        assert_eq!(
            local_instant(date("2026-10-25"), c.digest.at, c.timezone),
            utc("2026-10-25T00:30:00Z")
        );
        // once per local day across both transitions
        let r = report(
            vec![order("1", OrderState::Shipped, "2026-03-01", "2026-12-31")],
            utc("2026-03-28T00:00:00Z"),
        );
        let mut rec = HashSet::new();
        let mut sent = Vec::new();
        let mut t = utc("2026-03-27T00:00:00Z");
        while t < utc("2026-03-31T00:00:00Z") {
            for n in pass(&r, &mut rec, t, &c) {
                sent.push((n.key.to_string(), t));
            }
            t += Duration::minutes(10);
        }
        let want: Vec<(String, DateTime<Utc>)> = vec![
            ("digest:2026-03-27".into(), utc("2026-03-27T01:30:00Z")),
            ("digest:2026-03-28".into(), utc("2026-03-28T01:30:00Z")),
            ("digest:2026-03-29".into(), utc("2026-03-29T01:00:00Z")),
            ("digest:2026-03-30".into(), utc("2026-03-30T00:30:00Z")),
        ];
        assert_eq!(sent, want);
        let mut sent = Vec::new();
        let mut t = utc("2026-10-24T00:00:00Z");
        while t < utc("2026-10-27T00:00:00Z") {
            for n in pass(&r, &mut rec, t, &c) {
                sent.push(n.key.to_string());
            }
            t += Duration::minutes(10);
        }
        assert_eq!(
            sent,
            [
                "digest:2026-10-24",
                "digest:2026-10-25",
                "digest:2026-10-26"
            ]
        );
    }

    #[test]
    fn empty_days_are_skipped_without_recording() {
        let mut c = cfg(chrono_tz::UTC);
        let now = utc("2026-11-28T09:00:00Z");
        let done = order("1", OrderState::Completed, "2026-10-01", "2026-12-31");
        let r = report(vec![done.clone()], now);
        assert!(due_notifications(&r, &HashSet::new(), now, &c).is_empty());
        // an order arriving later that day still gets that day's digest
        let active = order("2", OrderState::Shipped, "2026-11-01", "2026-12-31");
        let r2 = report(vec![done, active], now);
        let later = utc("2026-11-28T15:00:00Z");
        assert_eq!(
            keys(&due_notifications(&r2, &HashSet::new(), later, &c)),
            ["digest:2026-11-28"]
        );
        // skip_when_empty = false: an empty digest is sent
        c.digest.skip_when_empty = false;
        assert_eq!(
            keys(&due_notifications(&r, &HashSet::new(), now, &c)),
            ["digest:2026-11-28"]
        );
        // disabled: never
        c.digest.enabled = false;
        assert!(due_notifications(&r2, &HashSet::new(), now, &c).is_empty());
    }

    #[test]
    fn keys_and_message_ids() {
        assert_eq!(digest_key(date("2026-11-28")), "digest:2026-11-28");
        assert_eq!(warning_key("8123", 7), "warning:8123:7d");
        let parse_key = |k: &str| k.parse::<NotificationKey>().ok();
        assert_eq!(
            parse_key("digest:2026-11-28"),
            Some(NotificationKey::Digest(date("2026-11-28")))
        );
        assert_eq!(
            parse_key("warning:8123:7d"),
            Some(NotificationKey::Warning {
                order_id: "8123".into(),
                threshold_days: 7
            })
        );
        for bad in [
            "",
            "digest:",
            "digest:2026-13-01",
            "warning::7d",
            "warning:1:7",
            "x:1",
        ] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
    }

    fn event_order(now: DateTime<Utc>) -> OrderView {
        use crate::report::{ActionNeeded, EventView};
        // ends 2026-12-03: 5 days left on 2026-11-28 (Berlin)
        let mut o = order(
            "8123456789012345",
            OrderState::Shipped,
            "2026-10-04",
            "2026-12-03",
        );
        o.needs_action = vec![
            ActionNeeded {
                reason: ActionReason::ProtectionEnding,
                by: Some(date("2026-12-03")),
                tracking_number: None,
            },
            ActionNeeded {
                reason: ActionReason::CustomsHold,
                by: None,
                tracking_number: Some("LP00000000000001".into()),
            },
        ];
        o.parcels[0].status = ParcelStatus::CustomsHold;
        let mut out = o.parcels[0].clone();
        out.tracking_number = "LP00000000000002".into();
        out.status = ParcelStatus::OutForDelivery;
        out.last_event = Some(EventView {
            time: now - Duration::hours(2),
            description: "Out for delivery".into(),
            location: None,
        });
        let mut delivered = out.clone();
        delivered.tracking_number = "LP00000000000003".into();
        delivered.status = ParcelStatus::Delivered;
        delivered.delivered_at = Some(now - Duration::days(1));
        o.parcels.push(out);
        o.parcels.push(delivered);
        o
    }

    fn due_keys(
        r: &StatusReport,
        rec: &mut HashSet<NotificationKey>,
        now: DateTime<Utc>,
        events: &[EventKind],
    ) -> Vec<String> {
        let due = due_events(r, rec, now, &cfg(chrono_tz::Europe::Berlin), events);
        rec.extend(due.iter().map(|n| n.key.clone()));
        keys(&due)
    }

    #[test]
    fn push_events_come_from_the_view_once_per_order_reason_and_parcel() {
        let now = utc("2026-11-28T09:00:00Z");
        let r = report(vec![event_order(now)], now);
        let mut rec = HashSet::new();
        assert_eq!(
            due_keys(&r, &mut rec, now, &EventKind::ALL),
            [
                "warning:8123456789012345:7d",
                // protection_ending is the warning, not an action_needed
                "action:8123456789012345:customs_hold",
                "out_for_delivery:LP00000000000002",
                "delivered:LP00000000000003",
                "digest:2026-11-28",
            ]
        );
        // recorded: nothing again, an hour or a day later
        assert!(due_keys(&r, &mut rec, now + Duration::hours(1), &EventKind::ALL).is_empty());
        let r2 = report(vec![event_order(now)], now + Duration::hours(24));
        let later = due_keys(&r2, &mut rec, now + Duration::hours(24), &EventKind::ALL);
        assert_eq!(later, ["digest:2026-11-29"]);
    }

    /// A delivered order as the issue saw it: an order-wide "delivered"
    /// email marks both numbers of the parcel (LP and last mile, not linked)
    /// delivered at the same moment, and the order needs confirming.
    fn delivered_twice(now: DateTime<Utc>) -> OrderView {
        use crate::report::ActionNeeded;
        let mut o = order(
            "8123456789012345",
            OrderState::Delivered,
            "2026-10-04",
            "2026-12-01",
        );
        o.needs_action = vec![ActionNeeded {
            reason: ActionReason::DeliveredNotConfirmed,
            by: Some(date("2026-12-01")),
            tracking_number: None,
        }];
        let mut lp = o.parcels[0].clone();
        lp.status = ParcelStatus::Delivered;
        lp.delivered_at = Some(now - Duration::hours(3));
        let mut last_mile = lp.clone();
        last_mile.tracking_number = "RB778899002CN".into();
        o.parcels = vec![lp, last_mile];
        o
    }

    #[test]
    fn one_delivery_is_one_push_per_channel() {
        let now = utc("2026-11-28T09:00:00Z");
        let rules = cfg(chrono_tz::Europe::Berlin);
        let r = report(vec![delivered_twice(now)], now);
        let events = [EventKind::Delivered, EventKind::ActionNeeded];
        let due = due_events(&r, &HashSet::new(), now, &rules, &events);
        // one message; the other number and the "confirm by" action are the
        // same event, recorded with it and never sent
        assert_eq!(keys(&due), ["delivered:LP00000000000001"]);
        let folded: Vec<String> = due[0].supersedes.iter().map(|k| k.to_string()).collect();
        assert_eq!(
            folded,
            [
                "delivered:RB778899002CN",
                "action:8123456789012345:delivered_not_confirmed"
            ]
        );
        // a channel without `delivered` still gets the action
        let due = due_events(&r, &HashSet::new(), now, &rules, &[EventKind::ActionNeeded]);
        assert_eq!(
            keys(&due),
            ["action:8123456789012345:delivered_not_confirmed"]
        );
        // deliveries at different moments are different events
        let mut apart = delivered_twice(now);
        apart.parcels[1].delivered_at = Some(now - Duration::hours(1));
        let r = report(vec![apart], now);
        let due = due_events(&r, &HashSet::new(), now, &rules, &[EventKind::Delivered]);
        assert_eq!(
            keys(&due),
            ["delivered:LP00000000000001", "delivered:RB778899002CN"]
        );
    }

    #[test]
    fn one_package_for_two_orders_is_one_push() {
        let now = utc("2026-11-28T09:00:00Z");
        let rules = cfg(chrono_tz::Europe::Berlin);
        let mut a = delivered_twice(now);
        a.parcels.truncate(1);
        let mut b = a.clone();
        b.order_id = "8123456789012399".into();
        let r = report(vec![a, b], now);
        let events = [EventKind::Delivered, EventKind::ActionNeeded];
        let due = due_events(&r, &HashSet::new(), now, &rules, &events);
        assert_eq!(keys(&due), ["delivered:LP00000000000001"]);
        let folded: Vec<String> = due[0].supersedes.iter().map(|k| k.to_string()).collect();
        assert_eq!(
            folded,
            [
                "action:8123456789012345:delivered_not_confirmed",
                "action:8123456789012399:delivered_not_confirmed"
            ]
        );
    }

    #[test]
    fn a_renumbered_parcel_is_not_news_again() {
        let now = utc("2026-11-28T09:00:00Z");
        let rules = cfg(chrono_tz::Europe::Berlin);
        let mut o = delivered_twice(now);
        o.parcels.truncate(1);
        o.parcels[0].tracking_number = "RB778899002CN".into();
        o.parcels[0].previous_numbers = vec!["LP00000000000001".into()];
        let r = report(vec![o], now);
        let sent: HashSet<NotificationKey> = ["delivered:LP00000000000001".parse().expect("key")]
            .into_iter()
            .collect();
        assert!(due_events(&r, &sent, now, &rules, &[EventKind::Delivered]).is_empty());
        assert_eq!(
            keys(&due_events(
                &r,
                &HashSet::new(),
                now,
                &rules,
                &[EventKind::Delivered]
            )),
            ["delivered:RB778899002CN"]
        );
    }

    #[test]
    fn a_channel_gets_only_the_events_it_subscribes_to() {
        let now = utc("2026-11-28T09:00:00Z");
        let r = report(vec![event_order(now)], now);
        let default = [EventKind::ProtectionWarning, EventKind::ActionNeeded];
        assert_eq!(
            due_keys(&r, &mut HashSet::new(), now, &default),
            [
                "warning:8123456789012345:7d",
                "action:8123456789012345:customs_hold"
            ]
        );
        assert_eq!(
            due_keys(&r, &mut HashSet::new(), now, &[EventKind::Delivered]),
            ["delivered:LP00000000000003"]
        );
    }

    #[test]
    fn old_deliveries_and_completed_orders_are_not_news() {
        let now = utc("2026-11-28T09:00:00Z");
        let mut o = event_order(now);
        o.parcels[1].last_event.as_mut().expect("event").time = now - Duration::days(4);
        o.parcels[2].delivered_at = Some(now - Duration::days(4));
        let r = report(vec![o.clone()], now);
        let parcels = [EventKind::OutForDelivery, EventKind::Delivered];
        assert!(due_keys(&r, &mut HashSet::new(), now, &parcels).is_empty());
        let mut done = event_order(now);
        done.state = OrderState::Completed;
        let r = report(vec![done], now);
        assert!(due_keys(&r, &mut HashSet::new(), now, &EventKind::ALL).is_empty());
    }

    #[test]
    fn a_pending_push_event_is_dropped_when_the_view_moved_on() {
        let now = utc("2026-11-28T09:00:00Z");
        let rules = cfg(chrono_tz::Europe::Berlin);
        let mut o = event_order(now);
        let out: NotificationKey = "out_for_delivery:LP00000000000002".parse().expect("key");
        let customs: NotificationKey = "action:8123456789012345:customs_hold".parse().expect("key");
        let r = report(vec![o.clone()], now);
        assert!(matches!(
            pending_content(&out, &r, now, &rules),
            Ok(Content::Parcel {
                event: EventKind::OutForDelivery,
                ..
            })
        ));
        assert!(matches!(
            pending_content(&customs, &r, now, &rules),
            Ok(Content::Action { .. })
        ));
        o.parcels[1].status = ParcelStatus::Delivered;
        o.needs_action
            .retain(|n| n.reason != ActionReason::CustomsHold);
        let r = report(vec![o], now);
        assert_eq!(
            pending_content(&out, &r, now, &rules),
            Err("the parcel is delivered now".into())
        );
        assert!(pending_content(&customs, &r, now, &rules).is_err());
    }
}
