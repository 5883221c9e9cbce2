//! What a provider's answer changes for one parcel: its status (never back
//! from delivered/returned because of an older view), the delivery time,
//! "not found since", the next check, and whether it continues under a
//! last-mile number. Pure: the store reads the previous state and writes
//! the returned [`ParcelUpdate`] in the batch's transaction.

use chrono::{DateTime, Utc};

use super::schedule::{self, AfterRefresh};
use super::TrackingRules;
use crate::facts::{ParcelPrevious, ParcelUpdate};
use crate::model::{ParcelStatus, Provider, TrackResult};

/// The most parcels one order may have. A real order ships in a few; a
/// forged email named 256, and each new number may cost 17TRACK quota.
pub const MAX_PARCELS_PER_ORDER: usize = 20;
/// The most new parcels one email may add (over all its orders).
pub const MAX_PARCELS_PER_EMAIL: usize = 40;

/// How many of `new` numbers (not yet known) an email may add to an order
/// that already has `order_has` parcels, when the email already added
/// `email_added`. Numbers already known cost nothing and are never cut.
pub fn parcels_to_take(new: usize, order_has: Option<usize>, email_added: usize) -> usize {
    let by_order = order_has.map_or(usize::MAX, |n| MAX_PARCELS_PER_ORDER.saturating_sub(n));
    new.min(by_order)
        .min(MAX_PARCELS_PER_EMAIL.saturating_sub(email_added))
}

/// The update `r`, `answering`'s answer, makes to a parcel whose stored
/// state is `prev`.
pub fn decide(
    prev: &ParcelPrevious,
    r: &TrackResult,
    answering: Provider,
    now: DateTime<Utc>,
    rules: &TrackingRules,
) -> ParcelUpdate {
    let newest = r.events.first().map(|e| e.time_utc);
    let keep_prev =
        keeps_previous_status(prev, r, newest) || behind_other_provider(prev, r, answering, newest);
    let provider = if keep_prev || !r.found {
        prev.provider
    } else {
        Some(answering)
    };
    let status = match (keep_prev, prev.status) {
        (true, Some(p)) => p,
        _ => r.status,
    };
    let found = r.found || prev.status.is_some_and(|p| p != ParcelStatus::Pending);
    let not_found_since = if found {
        None
    } else {
        prev.not_found_since.or(Some(now))
    };
    let delivered_at = if !status.is_final() {
        None
    } else if keep_prev {
        prev.delivered_at
    } else {
        r.delivered_at.or(prev.delivered_at).or(newest)
    };
    let next = schedule::after_refresh(&AfterRefresh {
        number: &r.number,
        provider: answering,
        base: rules.refresh_interval,
        now,
        prev_status: prev.last_checked_at.and(prev.status),
        status,
        not_found_since,
    });
    ParcelUpdate {
        status,
        keep_previous_detail: keep_prev,
        delivered_at,
        not_found_since,
        next,
        changed: prev.status != Some(status),
        link_last_mile: last_mile(prev, r),
        provider,
    }
}

/// Merged, never backwards: when another provider's answer is shown, this
/// one replaces it only if it is further along the journey, or as far and
/// with a newer event. A slower provider (the AliExpress leg while the
/// local post already delivers) never moves the parcel back.
fn behind_other_provider(
    prev: &ParcelPrevious,
    r: &TrackResult,
    answering: Provider,
    newest: Option<DateTime<Utc>>,
) -> bool {
    let (Some(shown), Some(status)) = (prev.provider, prev.status) else {
        return false;
    };
    if shown == answering || !r.found {
        return false;
    }
    let (theirs, ours) = (status.progress(), r.status.progress());
    let newer = match (newest, prev.shown_newest) {
        (Some(n), Some(s)) => n > s,
        (Some(_), None) => true,
        (None, _) => false,
    };
    ours < theirs || (ours == theirs && !newer)
}

/// Whether the stored status stands against this answer: never back from
/// delivered/returned because of an older event (or a provider glitch; a
/// genuinely newer event may still move it), and a provider that suddenly
/// finds nothing for a parcel it knew about changes nothing.
fn keeps_previous_status(
    prev: &ParcelPrevious,
    r: &TrackResult,
    newest: Option<DateTime<Utc>>,
) -> bool {
    let Some(p) = prev.status else {
        return false;
    };
    let newer = matches!((newest, prev.delivered_at), (Some(n), Some(d)) if n > d);
    (p.is_final() && !r.status.is_final() && !newer) || (!r.found && p != ParcelStatus::Pending)
}

/// The last-mile number to continue under, unless it is this number, the
/// one it already continues under, or one that continues under this one.
fn last_mile(prev: &ParcelPrevious, r: &TrackResult) -> Option<crate::model::TrackingNumber> {
    let m = r.last_mile.as_ref()?;
    let cycle = prev.last_mile_replaced_by.as_deref() == Some(r.number.as_str());
    let same = *m == r.number || prev.replaced_by.as_deref() == Some(m.as_str());
    (!cycle && !same).then(|| m.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{DoneReason, Next};
    use crate::model::{Provider, TrackEvent};
    use chrono::TimeZone;
    use std::time::Duration;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
            .single()
            .expect("valid")
    }

    fn h(n: i64) -> DateTime<Utc> {
        t0() + chrono::Duration::hours(n)
    }

    fn rules() -> TrackingRules {
        TrackingRules {
            providers: crate::model::Providers::new(&[Provider::Cainiao]),
            refresh_interval: Duration::from_secs(6 * 3600),
        }
    }

    fn answer(status: ParcelStatus, found: bool, newest_event_h: Option<i64>) -> TrackResult {
        let mut r = TrackResult::not_found("LP00123456789012");
        r.found = found;
        r.status = status;
        r.events = newest_event_h
            .map(|e| TrackEvent {
                time_utc: h(e),
                time_local: None,
                description: "x".into(),
                location: None,
                status: None,
                raw_code: None,
            })
            .into_iter()
            .collect();
        r
    }

    fn prev(status: Option<ParcelStatus>, delivered_h: Option<i64>) -> ParcelPrevious {
        ParcelPrevious {
            status,
            delivered_at: delivered_h.map(h),
            last_checked_at: status.map(|_| t0()),
            ..ParcelPrevious::default()
        }
    }

    #[test]
    fn status_table() {
        use ParcelStatus as S;
        // (previous status, delivered at h, answer status, found, newest event h)
        //   -> (stored status, kept previous detail, changed)
        let cases = [
            (
                None,
                None,
                S::InTransit,
                true,
                Some(5),
                S::InTransit,
                false,
                true,
            ),
            (
                Some(S::InTransit),
                None,
                S::Delivered,
                true,
                Some(10),
                S::Delivered,
                false,
                true,
            ),
            // an older view never moves a delivered parcel back
            (
                Some(S::Delivered),
                Some(10),
                S::InTransit,
                true,
                Some(5),
                S::Delivered,
                true,
                false,
            ),
            // a genuinely newer event does
            (
                Some(S::Delivered),
                Some(10),
                S::Returning,
                true,
                Some(12),
                S::Returning,
                false,
                true,
            ),
            // a provider that suddenly finds nothing changes nothing
            (
                Some(S::InTransit),
                None,
                S::Pending,
                false,
                None,
                S::InTransit,
                true,
                false,
            ),
            (
                Some(S::Pending),
                None,
                S::Pending,
                false,
                None,
                S::Pending,
                false,
                false,
            ),
        ];
        for (i, (ps, pd, st, found, ev, want, kept, changed)) in cases.into_iter().enumerate() {
            let up = decide(
                &prev(ps, pd),
                &answer(st, found, ev),
                Provider::Cainiao,
                h(20),
                &rules(),
            );
            assert_eq!(
                (up.status, up.keep_previous_detail, up.changed),
                (want, kept, changed),
                "case {i}"
            );
        }
    }

    #[test]
    fn delivery_time_and_confirmation() {
        let r = answer(ParcelStatus::Delivered, true, Some(10));
        let first = decide(&prev(None, None), &r, Provider::Cainiao, h(11), &rules());
        assert_eq!(first.delivered_at, Some(h(10)), "from the newest event");
        assert!(matches!(first.next, Next::At(_)), "one confirming refresh");
        let again = decide(
            &prev(Some(ParcelStatus::Delivered), Some(10)),
            &r,
            Provider::Cainiao,
            h(18),
            &rules(),
        );
        assert_eq!(again.next, Next::Done(DoneReason::Confirmed));
        assert_eq!(again.delivered_at, Some(h(10)));
    }

    #[test]
    fn not_found_since_starts_once_and_clears_when_found() {
        let nothing = answer(ParcelStatus::Pending, false, None);
        let up = decide(
            &ParcelPrevious::default(),
            &nothing,
            Provider::Cainiao,
            h(1),
            &rules(),
        );
        assert_eq!(up.not_found_since, Some(h(1)));
        let later = ParcelPrevious {
            not_found_since: Some(h(1)),
            ..ParcelPrevious::default()
        };
        assert_eq!(
            decide(&later, &nothing, Provider::Cainiao, h(30), &rules()).not_found_since,
            Some(h(1))
        );
        let found = answer(ParcelStatus::InTransit, true, Some(2));
        assert_eq!(
            decide(&later, &found, Provider::Cainiao, h(30), &rules()).not_found_since,
            None
        );
    }

    #[test]
    fn last_mile_links_once_and_never_in_a_cycle() {
        let mut r = answer(ParcelStatus::InTransit, true, Some(1));
        r.last_mile = Some("RB123456785GB".into());
        let fresh = decide(
            &ParcelPrevious::default(),
            &r,
            Provider::Cainiao,
            h(2),
            &rules(),
        );
        assert_eq!(fresh.link_last_mile.as_deref(), Some("RB123456785GB"));
        let linked = ParcelPrevious {
            replaced_by: Some("RB123456785GB".into()),
            ..ParcelPrevious::default()
        };
        assert_eq!(
            decide(&linked, &r, Provider::Cainiao, h(2), &rules()).link_last_mile,
            None
        );
        let cycle = ParcelPrevious {
            last_mile_replaced_by: Some("LP00123456789012".into()),
            ..ParcelPrevious::default()
        };
        assert_eq!(
            decide(&cycle, &r, Provider::Cainiao, h(2), &rules()).link_last_mile,
            None
        );
    }

    #[test]
    fn merged_never_backwards_table() {
        use ParcelStatus as S;
        use Provider::{Cainiao as C, SeventeenTrack as T};
        // (shown by, shown status, shown newest h, answering, answer, newest h)
        //   -> (stored status, shown by)
        let cases = [
            // a slower provider behind the shown one changes nothing
            (
                Some(T),
                S::OutForDelivery,
                Some(10),
                C,
                S::InTransit,
                Some(5),
                S::OutForDelivery,
                Some(T),
            ),
            // ... even with a newer event of a less advanced status
            (
                Some(T),
                S::Customs,
                Some(10),
                C,
                S::InTransit,
                Some(12),
                S::Customs,
                Some(T),
            ),
            // further along wins
            (
                Some(T),
                S::InTransit,
                Some(10),
                C,
                S::OutForDelivery,
                Some(11),
                S::OutForDelivery,
                Some(C),
            ),
            // as far along: the newer event wins
            (
                Some(T),
                S::InTransit,
                Some(10),
                C,
                S::InTransit,
                Some(11),
                S::InTransit,
                Some(C),
            ),
            (
                Some(T),
                S::InTransit,
                Some(10),
                C,
                S::InTransit,
                Some(9),
                S::InTransit,
                Some(T),
            ),
            // the shown provider itself may move its own status (as before)
            (
                Some(C),
                S::OutForDelivery,
                Some(10),
                C,
                S::DeliveryFailed,
                Some(11),
                S::DeliveryFailed,
                Some(C),
            ),
            // nothing shown yet: the answer is shown
            (
                None,
                S::Pending,
                None,
                T,
                S::InfoReceived,
                Some(1),
                S::InfoReceived,
                Some(T),
            ),
        ];
        for (i, (shown, status, shown_h, answering, st, newest, want, want_by)) in
            cases.into_iter().enumerate()
        {
            let p = ParcelPrevious {
                status: Some(status),
                last_checked_at: Some(t0()),
                provider: shown,
                shown_newest: shown_h.map(h),
                ..ParcelPrevious::default()
            };
            let up = decide(&p, &answer(st, true, newest), answering, h(20), &rules());
            assert_eq!((up.status, up.provider), (want, want_by), "case {i}");
        }
    }

    #[test]
    fn parcels_to_take_table() {
        let (o, e) = (MAX_PARCELS_PER_ORDER, MAX_PARCELS_PER_EMAIL);
        let cases = [
            (3, Some(0), 0, 3),
            (256, Some(0), 0, o),
            (5, Some(o - 2), 0, 2),
            (5, Some(o), 0, 0),
            (5, Some(o + 3), 0, 0),
            (256, None, 0, e),
            (10, None, e - 4, 4),
            (10, Some(0), e, 0),
        ];
        for (new, order_has, email_added, want) in cases {
            assert_eq!(
                parcels_to_take(new, order_has, email_added),
                want,
                "{new} {order_has:?} {email_added}"
            );
        }
    }
}
