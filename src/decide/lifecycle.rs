//! Orders in time (SPEC §7): what an order is *today*, from its facts and
//! today's date only. AliExpress moves every order on by itself — it
//! completes a delivered order a few days after delivery, completes an
//! undelivered one when protection ends, and leaves 15 days for a dispute
//! after either — so an order nobody touched for months is completed here
//! too, by the date, without any job rewriting the database.
//!
//! - delivered: `delivered` until `auto_completes_on` (delivery + 5 days,
//!   never after the protection end), `completed` (`auto`) after it, also
//!   when the protection end is unknown (an order first seen delivered);
//! - protection ended, not delivered: `protection_ended` from the day after
//!   `protection_ends` until `dispute_until` (= end + 15 days), then
//!   `completed` (`auto`);
//! - no protection end known and no news for [`STALE_AFTER_DAYS`]:
//!   `completed` (`stale`);
//! - "needs action" ([`needs_action`]) is the one list the digest, warnings
//!   and push channels read.

use chrono::{Duration, NaiveDate};

use super::protection::{Protection, DISPUTE_DAYS_AFTER_COMPLETION};
use crate::model::{ActionReason, CompletedReason, OrderState, ParcelStatus};
use crate::report::{ActionNeeded, OrderView, ParcelView};

/// Days without an email, carrier event or command after which an order
/// whose protection end is unknown is given up as stale.
pub const STALE_AFTER_DAYS: i64 = 120;

/// What the time rules need about one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeFacts {
    /// The state from the facts alone (emails, parcels, commands).
    pub state: OrderState,
    /// Why a `completed` state is completed (an email or `done`).
    pub completion: Option<CompletedReason>,
    pub protection: Protection,
    /// The day of the newest email, carrier event or command.
    pub last_activity: Option<NaiveDate>,
}

/// An order's state today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Today {
    pub state: OrderState,
    pub completed_reason: Option<CompletedReason>,
    pub auto_completes_on: Option<NaiveDate>,
    pub dispute_until: Option<NaiveDate>,
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// The order's state on `today`.
pub fn in_time(f: &TimeFacts, today: NaiveDate) -> Today {
    let p = f.protection;
    let mut out = Today {
        state: f.state,
        completed_reason: None,
        auto_completes_on: p.auto_completes_on,
        dispute_until: p.dispute_until,
    };
    let auto = |out: Today, dispute_until: NaiveDate| Today {
        state: OrderState::Completed,
        completed_reason: Some(CompletedReason::Auto),
        dispute_until: Some(dispute_until),
        ..out
    };
    if f.state == OrderState::Completed {
        out.completed_reason = Some(f.completion.unwrap_or(CompletedReason::Closed));
        return out;
    }
    match (f.state, p.ends) {
        (OrderState::Delivered, ends) if p.auto_completes_on.or(ends).is_some() => {
            // A delivered order completes from its delivery date even when
            // its protection end is unknown.
            let completes = p.auto_completes_on.or(ends).unwrap_or(today);
            if today > completes {
                return auto(out, completes + days(DISPUTE_DAYS_AFTER_COMPLETION));
            }
        }
        (OrderState::AwaitingShipment | OrderState::Shipped, Some(ends)) => {
            if today > ends {
                let until = ends + days(DISPUTE_DAYS_AFTER_COMPLETION);
                if today > until {
                    return auto(out, until);
                }
                out.state = OrderState::ProtectionEnded;
                out.dispute_until = Some(until);
            }
        }
        // An open dispute is AliExpress's to decide; it stays until an
        // email closes it (or no news for long, below).
        (OrderState::Disputed | OrderState::ProtectionEnded | OrderState::Completed, Some(_)) => {}
        // Nothing dates the order: only long silence ends it.
        (_, _) => {
            let silent = f
                .last_activity
                .is_some_and(|d| today > d + days(STALE_AFTER_DAYS));
            if silent {
                out.state = OrderState::Completed;
                out.completed_reason = Some(CompletedReason::Stale);
            }
        }
    }
    out
}

/// The day an order was completed, as far as the view shows it: the
/// automatic completion (dispute deadline − 15 days); for a stale order
/// the day it went stale (last news + 120 days); else the day of its
/// newest email, carrier event or command (`last_activity`), else the
/// newest date the order shows (delivery, last carrier event, shipping,
/// order date).
pub fn completed_on(o: &OrderView, tz: chrono_tz::Tz) -> Option<NaiveDate> {
    match o.completed_reason {
        Some(CompletedReason::Auto) => {
            if let Some(d) = o.dispute_until {
                return Some(d - Duration::days(DISPUTE_DAYS_AFTER_COMPLETION));
            }
        }
        Some(CompletedReason::Stale) => {
            if let Some(d) = o.last_activity {
                return Some(d + Duration::days(STALE_AFTER_DAYS));
            }
        }
        _ => {}
    }
    if o.last_activity.is_some() {
        return o.last_activity;
    }
    // the day in the user's zone, like every date a person reads
    let day = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).date_naive();
    let parcel_dates = o.parcels.iter().flat_map(|p| {
        [
            p.delivered_at.map(day),
            p.last_event.as_ref().map(|e| day(e.time)),
        ]
    });
    parcel_dates
        .chain([o.shipped_at, o.confirmed_at])
        .flatten()
        .max()
}

/// Why an order needs the user today (SPEC §7), most urgent first; empty
/// for completed orders and orders that need nothing.
pub fn needs_action(
    today_state: &Today,
    protection_ends: Option<NaiveDate>,
    parcels: &[ParcelView],
    warn_horizon_days: u32,
    today: NaiveDate,
) -> Vec<ActionNeeded> {
    let mut out = Vec::new();
    if !today_state.state.is_active() {
        return out;
    }
    match today_state.state {
        OrderState::ProtectionEnded => out.push(ActionNeeded {
            reason: ActionReason::ProtectionEnded,
            by: today_state.dispute_until,
            tracking_number: None,
        }),
        OrderState::Delivered => {
            if today_state.auto_completes_on.is_some_and(|a| a >= today) {
                out.push(ActionNeeded {
                    reason: ActionReason::DeliveredNotConfirmed,
                    by: today_state.auto_completes_on,
                    tracking_number: None,
                });
            }
        }
        _ => {
            if let Some(ends) = protection_ends {
                let left = (ends - today).num_days();
                if (0..=i64::from(warn_horizon_days)).contains(&left) {
                    out.push(ActionNeeded {
                        reason: ActionReason::ProtectionEnding,
                        by: Some(ends),
                        tracking_number: None,
                    });
                }
            }
        }
    }
    for p in parcels {
        let reason = match p.status {
            ParcelStatus::CustomsHold => Some(ActionReason::CustomsHold),
            ParcelStatus::DeliveryFailed => Some(ActionReason::DeliveryFailed),
            ParcelStatus::AvailableForPickup => Some(ActionReason::ReadyForPickup),
            ParcelStatus::Exception => Some(ActionReason::Exception),
            ParcelStatus::Returning => Some(ActionReason::Returning),
            _ if p.stalled => Some(ActionReason::Stalled),
            _ => None,
        };
        if let Some(reason) = reason {
            out.push(ActionNeeded {
                reason,
                by: None,
                tracking_number: Some(p.tracking_number.clone()),
            });
        }
    }
    out.sort_by_key(|a| a.reason);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProtectionSource;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn prot(ends: &str, auto: Option<&str>) -> Protection {
        Protection {
            ends: Some(d(ends)),
            source: ProtectionSource::Default,
            auto_completes_on: auto.map(d),
            dispute_until: auto.map(|a| d(a) + days(15)),
        }
    }

    const UNKNOWN: Protection = Protection {
        ends: None,
        source: ProtectionSource::Unknown,
        auto_completes_on: None,
        dispute_until: None,
    };

    fn facts(state: OrderState, p: Protection, last: Option<&str>) -> TimeFacts {
        TimeFacts {
            state,
            completion: None,
            protection: p,
            last_activity: last.map(d),
        }
    }

    #[test]
    fn today_moves_an_order_across_every_boundary() {
        use CompletedReason as R;
        use OrderState as S;
        let shipped = facts(S::Shipped, prot("2026-12-10", None), Some("2026-10-11"));
        let delivered = facts(
            S::Delivered,
            prot("2026-11-25", Some("2026-11-25")),
            Some("2026-11-20"),
        );
        let unknown = facts(S::AwaitingShipment, UNKNOWN, Some("2026-08-01"));
        // delivered, nothing shows when it shipped: §7 from the delivery
        let delivered_only = facts(
            S::Delivered,
            Protection {
                auto_completes_on: Some(d("2026-11-25")),
                dispute_until: Some(d("2026-12-10")),
                ..UNKNOWN
            },
            Some("2026-11-20"),
        );
        // in transit, first seen through a later-stage email: unknown end
        let in_transit_only = facts(S::Shipped, UNKNOWN, Some("2026-08-01"));
        // (facts, today, state, reason, dispute_until)
        type Case<'a> = (&'a TimeFacts, &'a str, S, Option<R>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            // protection end: the day before, of and after
            (&shipped, "2026-12-09", S::Shipped, None, None),
            (&shipped, "2026-12-10", S::Shipped, None, None),
            (
                &shipped,
                "2026-12-11",
                S::ProtectionEnded,
                None,
                Some("2026-12-25"),
            ),
            // dispute end: the day of and after
            (
                &shipped,
                "2026-12-25",
                S::ProtectionEnded,
                None,
                Some("2026-12-25"),
            ),
            (
                &shipped,
                "2026-12-26",
                S::Completed,
                Some(R::Auto),
                Some("2026-12-25"),
            ),
            // automatic completion after delivery: before, of, after
            (
                &delivered,
                "2026-11-24",
                S::Delivered,
                None,
                Some("2026-12-10"),
            ),
            (
                &delivered,
                "2026-11-25",
                S::Delivered,
                None,
                Some("2026-12-10"),
            ),
            (
                &delivered,
                "2026-11-26",
                S::Completed,
                Some(R::Auto),
                Some("2026-12-10"),
            ),
            // 120 days of silence without a protection end
            (&unknown, "2026-11-29", S::AwaitingShipment, None, None),
            (&unknown, "2026-11-30", S::Completed, Some(R::Stale), None),
            (&in_transit_only, "2026-11-29", S::Shipped, None, None),
            (
                &in_transit_only,
                "2026-11-30",
                S::Completed,
                Some(R::Stale),
                None,
            ),
            // delivered only: automatic completion from the delivery date
            (
                &delivered_only,
                "2026-11-25",
                S::Delivered,
                None,
                Some("2026-12-10"),
            ),
            (
                &delivered_only,
                "2026-11-26",
                S::Completed,
                Some(R::Auto),
                Some("2026-12-10"),
            ),
        ];
        for (f, today, state, reason, until) in cases {
            let t = in_time(f, d(today));
            assert_eq!(
                (t.state, t.completed_reason, t.dispute_until),
                (state, reason, until.map(d)),
                "{:?} on {today}",
                f.state
            );
        }
    }

    #[test]
    fn explicit_completion_keeps_its_reason_and_disputes_stay_open() {
        let mut f = facts(OrderState::Completed, prot("2026-12-10", None), None);
        f.completion = Some(CompletedReason::Done);
        let t = in_time(&f, d("2027-06-01"));
        assert_eq!(t.completed_reason, Some(CompletedReason::Done));
        let disputed = facts(
            OrderState::Disputed,
            prot("2026-12-10", None),
            Some("2026-12-01"),
        );
        assert_eq!(
            in_time(&disputed, d("2027-01-30")).state,
            OrderState::Disputed
        );
        let silent = facts(OrderState::Disputed, UNKNOWN, Some("2026-01-01"));
        assert_eq!(
            in_time(&silent, d("2026-06-01")).state,
            OrderState::Completed
        );
    }

    fn parcel(status: ParcelStatus, stalled: bool) -> ParcelView {
        ParcelView {
            stalled,
            ..ParcelView::sample("LP00000000000001", status)
        }
    }

    fn reasons(
        t: &Today,
        ends: Option<&str>,
        parcels: &[ParcelView],
        today: &str,
    ) -> Vec<ActionReason> {
        needs_action(t, ends.map(d), parcels, 7, d(today))
            .into_iter()
            .map(|a| a.reason)
            .collect()
    }

    #[test]
    fn needs_action_is_exactly_the_spec_set() {
        use ActionReason as A;
        let shipped = facts(
            OrderState::Shipped,
            prot("2026-12-10", None),
            Some("2026-11-01"),
        );
        let moving = [parcel(ParcelStatus::InTransit, false)];
        let on = |today: &str| in_time(&shipped, d(today));
        // 8 days left: nothing; 7: protection ending; ended: dispute
        assert!(reasons(&on("2026-12-02"), Some("2026-12-10"), &moving, "2026-12-02").is_empty());
        assert_eq!(
            reasons(&on("2026-12-03"), Some("2026-12-10"), &moving, "2026-12-03"),
            [A::ProtectionEnding]
        );
        assert_eq!(
            reasons(&on("2026-12-12"), Some("2026-12-10"), &moving, "2026-12-12"),
            [A::ProtectionEnded]
        );
        // completed after the dispute window: nothing at all
        assert!(reasons(&on("2026-12-30"), Some("2026-12-10"), &moving, "2026-12-30").is_empty());
        // parcel problems, stalled
        let t = on("2026-11-20");
        for (status, want) in [
            (ParcelStatus::CustomsHold, A::CustomsHold),
            (ParcelStatus::DeliveryFailed, A::DeliveryFailed),
            (ParcelStatus::AvailableForPickup, A::ReadyForPickup),
            (ParcelStatus::Exception, A::Exception),
            (ParcelStatus::Returning, A::Returning),
        ] {
            assert_eq!(
                reasons(
                    &t,
                    Some("2026-12-10"),
                    &[parcel(status, false)],
                    "2026-11-20"
                ),
                [want]
            );
        }
        assert_eq!(
            reasons(
                &t,
                Some("2026-12-10"),
                &[parcel(ParcelStatus::InTransit, true)],
                "2026-11-20"
            ),
            [A::Stalled]
        );
        // returned or customs (not held) need nothing
        for status in [
            ParcelStatus::Returned,
            ParcelStatus::Customs,
            ParcelStatus::Pending,
        ] {
            assert!(reasons(
                &t,
                Some("2026-12-10"),
                &[parcel(status, false)],
                "2026-11-20"
            )
            .is_empty());
        }
        // delivered, not confirmed, until the automatic completion
        let delivered = facts(
            OrderState::Delivered,
            prot("2026-11-25", Some("2026-11-25")),
            Some("2026-11-20"),
        );
        let done = [parcel(ParcelStatus::Delivered, false)];
        let dt = in_time(&delivered, d("2026-11-25"));
        assert_eq!(
            reasons(&dt, Some("2026-11-25"), &done, "2026-11-25"),
            [A::DeliveredNotConfirmed]
        );
        let after = in_time(&delivered, d("2026-11-26"));
        assert!(reasons(&after, Some("2026-11-25"), &done, "2026-11-26").is_empty());
    }
}
