//! When a parcel is asked for again: pure functions of the parcel's state and
//! an injected `now`, so the whole schedule is table-tested.
//!
//! The rules (SPEC §2 `refresh_interval` is "the least time between two
//! refreshes of one parcel", so jitter only ever lengthens it):
//! - never checked: due at once (one `sync` registers and fetches a new
//!   number in the same pass, SPEC §4);
//! - normally every `refresh_interval` (default 6 h) plus 0–10 % jitter
//!   derived from the number, so that parcels spread out but tests are stable;
//! - out for delivery / ready for pickup: every 2 h (capped by a shorter
//!   `refresh_interval`);
//! - nothing found for a week: daily; nothing found for 30 days: give up
//!   (17TRACK itself stops such numbers after 30 days);
//! - delivered / returned: one confirming refresh one interval later, then
//!   never again; expired by the provider: never again;
//! - Cainiao: never more often than every 6 h per parcel (unofficial
//!   endpoint, Alibaba throttles unusual traffic; ha-cainiao polls every
//!   6 h), whichever provider asked last;
//!
//! and which provider a due parcel is asked of ([`route`]): the first
//! configured one that accepts its number format and is available, unless
//! that one has answered "not found" past the grace period (2 days after
//! the first email naming the number) or needs a registration the quota
//! cannot pay; a provider that fails or rate-limits is left alone for
//! [`backoff`] (a whole day for Cainiao on signs of a ban).

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use crate::facts::{DoneReason, Next};
use crate::facts::{DueParcel, TrackingCandidate};
use crate::model::{ParcelStatus, Provider, Providers};
use crate::providers::FailKind;

/// Interval while a parcel is out for delivery or waiting at a pickup point.
pub const FAST: Duration = Duration::from_secs(2 * 3600);
/// Interval for numbers that showed nothing for [`SLOW_AFTER`].
pub const SLOW: Duration = Duration::from_secs(24 * 3600);
/// How long "not found" lasts before a number is asked for daily only.
pub const SLOW_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long "not found" lasts before aliwatch gives up on a number.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a provider's "not found" is believed, counted from the first
/// email naming the number, before the next provider is asked.
pub const NOT_FOUND_GRACE: Duration = Duration::from_secs(2 * 24 * 3600);
/// How long a provider is left alone after a rate limit (Cainiao: a day).
pub const RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// How long Cainiao is left alone after it failed (5xx, timeouts).
pub const CAINIAO_FAILURE_BACKOFF: Duration = Duration::from_secs(3600);
/// How long 17TRACK is left alone after refusing the key.
pub const REFUSED_BACKOFF: Duration = Duration::from_secs(3600);
/// Jitter: up to this fraction is added to an interval.
pub const JITTER: f64 = 0.10;

/// The state the decision needs.
#[derive(Debug, Clone)]
pub struct AfterRefresh<'a> {
    pub number: &'a str,
    pub provider: Provider,
    /// `tracking.refresh_interval`.
    pub base: Duration,
    pub now: DateTime<Utc>,
    /// The stored provider status before this refresh (`None`: first time).
    pub prev_status: Option<ParcelStatus>,
    /// The status after applying this refresh.
    pub status: ParcelStatus,
    /// Since when the provider has had nothing for the number (`None`:
    /// something was found).
    pub not_found_since: Option<DateTime<Utc>>,
}

/// A deterministic fraction in `[0, JITTER)` derived from the number
/// (FNV-1a), so that parcels registered together spread out but every run
/// of the tests sees the same times.
pub fn jitter_fraction(number: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in number.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 10_000) as f64 / 10_000.0 * JITTER
}

/// The interval before the next refresh, without jitter.
pub fn base_interval(
    provider: Provider,
    base: Duration,
    status: ParcelStatus,
    not_found_for: Option<Duration>,
) -> Duration {
    let interval = match status {
        ParcelStatus::OutForDelivery | ParcelStatus::AvailableForPickup => base.min(FAST),
        _ if not_found_for.is_some_and(|d| d >= SLOW_AFTER) => base.max(SLOW),
        _ => base,
    };
    interval.max(provider.min_interval())
}

/// How long `provider` is left alone after a request failed this way
/// (zero: asked again in the next pass). Cainiao has no key to be wrong,
/// so a refusal or a 429 is a sign of a ban: a whole day.
pub fn backoff(provider: Provider, kind: FailKind) -> Duration {
    match (provider, kind) {
        (Provider::Cainiao, FailKind::RateLimited | FailKind::Refused) => {
            crate::providers::cainiao::BAN_BACKOFF
        }
        (Provider::Cainiao, FailKind::Transient) => CAINIAO_FAILURE_BACKOFF,
        (_, FailKind::RateLimited) => RATE_LIMIT_BACKOFF,
        (_, FailKind::Refused) => REFUSED_BACKOFF,
        (_, FailKind::Transient) => Duration::ZERO,
    }
}

/// Whether 17TRACK registrations may be tried at `now`: not while the
/// quota is known to be spent (or at the reserve), except for the hourly
/// `getquota` probe.
pub fn may_register(state: &crate::facts::TrackingState, now: DateTime<Utc>) -> bool {
    let spent = state.quota_exhausted.is_some()
        || state
            .quota_remain
            .is_some_and(|q| q <= crate::providers::seventeen::QUOTA_RESERVE);
    let probe_due = state.quota_checked_at.is_none_or(|t| {
        (now - t)
            .to_std()
            .is_ok_and(|d| d >= crate::providers::QUOTA_PROBE_EVERY)
    });
    !spent || probe_due
}

/// What [`route`] needs to know about the providers now.
pub struct RouteFacts<'a> {
    pub providers: Providers,
    /// Whether a provider may be asked at all now (not backing off, not
    /// refused in this pass).
    pub available: &'a dyn Fn(Provider) -> bool,
    /// Whether 17TRACK may register a new number now (quota).
    pub can_register: bool,
}

/// Where a due parcel goes now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Ask(Provider),
    /// The provider that should be asked was asked less than its pacing
    /// allows: waited for rather than spending another provider's quota.
    Paced(Provider),
    /// Only a registration could track it, and the quota cannot pay.
    NeedsQuota,
    /// No configured provider can track the number now.
    Nobody,
}

/// Which provider to ask about `p` now: the first configured one that
/// accepts the number's format and is available, unless it has answered
/// "not found" past the grace period (then it is the last resort) or
/// needs a registration the quota cannot pay.
pub fn route(f: &RouteFacts<'_>, p: &DueParcel, now: DateTime<Utc>) -> Route {
    let mut needs_quota = false;
    let grace_over = |since: DateTime<Utc>| {
        let from = p.named_at.map_or(since, |n| n.min(since));
        now >= add(from, NOT_FOUND_GRACE)
    };
    let paced = |prov: Provider| {
        p.record(prov)
            .and_then(|r| r.last_asked_at)
            .is_some_and(|at| now < add(at, prov.min_interval()))
    };
    let mut handed_on: Option<Provider> = None;
    for prov in f.providers.iter() {
        if !prov.accepts(p.number.as_str()) || !(f.available)(prov) {
            continue;
        }
        if prov == Provider::SeventeenTrack && !p.registered && !f.can_register {
            needs_quota = true;
            continue;
        }
        let not_found = p.record(prov).and_then(|r| r.not_found_since);
        if not_found.is_some_and(grace_over) {
            // "Not found" for long enough: the next provider gets a turn;
            // this one stays the last resort.
            handed_on.get_or_insert(prov);
            continue;
        }
        return if paced(prov) {
            Route::Paced(prov)
        } else {
            Route::Ask(prov)
        };
    }
    match handed_on {
        Some(prov) if paced(prov) => Route::Paced(prov),
        Some(prov) => Route::Ask(prov),
        None if needs_quota => Route::NeedsQuota,
        None => Route::Nobody,
    }
}

fn add(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Decides the next refresh after a successful one.
pub fn after_refresh(a: &AfterRefresh<'_>) -> Next {
    if a.status == ParcelStatus::Expired {
        return Next::Done(DoneReason::Expired);
    }
    if a.status.is_final() && a.prev_status == Some(a.status) {
        return Next::Done(DoneReason::Confirmed);
    }
    let not_found_for = a
        .not_found_since
        .and_then(|since| (a.now - since).to_std().ok());
    if not_found_for.is_some_and(|d| d >= GIVE_UP_AFTER) {
        return Next::Done(DoneReason::GaveUp);
    }
    let interval = base_interval(a.provider, a.base, a.status, not_found_for);
    let jittered = interval.mul_f64(1.0 + jitter_fraction(a.number));
    Next::At(add(a.now, jittered))
}

/// Whether a parcel should be asked for now.
pub fn is_due(
    next_check_at: Option<DateTime<Utc>>,
    tracking_done_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    tracking_done_at.is_none() && next_check_at.is_none_or(|at| at <= now)
}

/// The parcels to ask for now, in the candidates' order: due by their
/// schedule, and either without an order or in at least one order that is
/// not completed (`completed` holds the ids of completed orders; the one
/// "completed" rule is `decide::orders`').
pub fn due(
    candidates: Vec<TrackingCandidate>,
    completed: &HashSet<String>,
    now: DateTime<Utc>,
) -> Vec<DueParcel> {
    candidates
        .into_iter()
        .filter(|c| is_due(c.next_check_at, None, now))
        .filter(|c| c.orders.is_empty() || c.orders.iter().any(|o| !completed.contains(o)))
        .map(|c| c.parcel)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const H: u64 = 3600;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
            .single()
            .expect("valid")
    }

    fn hours(h: f64) -> chrono::Duration {
        chrono::Duration::milliseconds((h * 3_600_000.0) as i64)
    }

    #[test]
    fn jitter_is_stable_and_bounded() {
        for n in ["LP00123456789012", "RR123456789CN", "", "X"] {
            let j = jitter_fraction(n);
            assert!((0.0..JITTER).contains(&j), "{n}: {j}");
            assert_eq!(j, jitter_fraction(n));
        }
        assert_ne!(jitter_fraction("LP001"), jitter_fraction("LP002"));
    }

    #[test]
    fn next_check_table() {
        use ParcelStatus as S;
        let six = Duration::from_secs(6 * H);
        let one = Duration::from_secs(H);
        let days = |d: i64| Some(t0() - chrono::Duration::days(d));
        // (provider, base, prev, status, not_found_since, want lower bound in hours or done)
        type Case = (
            Provider,
            Duration,
            Option<S>,
            S,
            Option<DateTime<Utc>>,
            Result<f64, DoneReason>,
        );
        let cases: Vec<Case> = vec![
            (
                Provider::SeventeenTrack,
                six,
                None,
                S::Pending,
                Some(t0()),
                Ok(6.0),
            ),
            (
                Provider::SeventeenTrack,
                six,
                Some(S::InTransit),
                S::InTransit,
                None,
                Ok(6.0),
            ),
            (
                Provider::SeventeenTrack,
                six,
                Some(S::InTransit),
                S::OutForDelivery,
                None,
                Ok(2.0),
            ),
            (
                Provider::SeventeenTrack,
                one,
                Some(S::InTransit),
                S::OutForDelivery,
                None,
                Ok(1.0),
            ),
            (
                Provider::SeventeenTrack,
                six,
                Some(S::InTransit),
                S::AvailableForPickup,
                None,
                Ok(2.0),
            ),
            (
                Provider::SeventeenTrack,
                six,
                Some(S::Pending),
                S::Pending,
                days(8),
                Ok(24.0),
            ),
            (
                Provider::SeventeenTrack,
                six,
                Some(S::Pending),
                S::Pending,
                days(3),
                Ok(6.0),
            ),
            (
                Provider::SeventeenTrack,
                six,
                Some(S::Pending),
                S::Pending,
                days(31),
                Err(DoneReason::GaveUp),
            ),
            (
                Provider::SeventeenTrack,
                six,
                Some(S::OutForDelivery),
                S::Delivered,
                None,
                Ok(6.0),
            ),
            (
                Provider::SeventeenTrack,
                six,
                Some(S::Delivered),
                S::Delivered,
                None,
                Err(DoneReason::Confirmed),
            ),
            (
                Provider::SeventeenTrack,
                six,
                Some(S::Returned),
                S::Returned,
                None,
                Err(DoneReason::Confirmed),
            ),
            (
                Provider::SeventeenTrack,
                six,
                Some(S::InTransit),
                S::Expired,
                None,
                Err(DoneReason::Expired),
            ),
            (
                Provider::Cainiao,
                six,
                Some(S::InTransit),
                S::OutForDelivery,
                None,
                Ok(6.0),
            ),
            (
                Provider::Cainiao,
                one,
                Some(S::InTransit),
                S::InTransit,
                None,
                Ok(6.0),
            ),
            (
                Provider::Cainiao,
                Duration::from_secs(12 * H),
                None,
                S::InTransit,
                None,
                Ok(12.0),
            ),
        ];
        for (i, (provider, base, prev, status, nf, want)) in cases.into_iter().enumerate() {
            let got = after_refresh(&AfterRefresh {
                number: "LP00123456789012",
                provider,
                base,
                now: t0(),
                prev_status: prev,
                status,
                not_found_since: nf,
            });
            match (got, want) {
                (Next::At(at), Ok(h)) => {
                    assert!(at >= t0() + hours(h), "case {i}: {at} < {h} h");
                    assert!(
                        at <= t0() + hours(h * (1.0 + JITTER)),
                        "case {i}: {at} > {h} h + jitter"
                    );
                }
                (Next::Done(r), Err(w)) => assert_eq!(r, w, "case {i}"),
                (got, want) => panic!("case {i}: got {got:?}, want {want:?}"),
            }
        }
    }

    fn parcel(
        number: &str,
        registered: bool,
        records: &[(Provider, Option<f64>, Option<f64>)],
    ) -> DueParcel {
        let at = |h: Option<f64>| h.map(|h| t0() + hours(h));
        DueParcel {
            registered,
            named_at: Some(t0()),
            asked: records
                .iter()
                .map(|(p, asked, nf)| crate::facts::ProviderRecord {
                    provider: *p,
                    last_asked_at: at(*asked),
                    not_found_since: at(*nf),
                })
                .collect(),
            ..DueParcel::new(number)
        }
    }

    #[test]
    fn route_table() {
        use Provider::{Cainiao as C, SeventeenTrack as S};
        let both = Providers::new(&[C, S]);
        let lp = "LP00123456789012";
        // (providers, cainiao available, can register, parcel, now h) -> route
        type Case = (Providers, bool, bool, DueParcel, f64, Route);
        let cases: Vec<Case> = vec![
            // a new number: the first provider, Cainiao (no quota spent)
            (both, true, true, parcel(lp, false, &[]), 0.0, Route::Ask(C)),
            // Cainiao found it: it stays with Cainiao
            (
                both,
                true,
                true,
                parcel(lp, false, &[(C, Some(0.0), None)]),
                7.0,
                Route::Ask(C),
            ),
            // within Cainiao's 6 h per parcel: waited for, not sent to 17TRACK
            (
                both,
                true,
                true,
                parcel(lp, false, &[(C, Some(0.0), None)]),
                5.0,
                Route::Paced(C),
            ),
            // "not found" within the 2-day grace: Cainiao again
            (
                both,
                true,
                true,
                parcel(lp, false, &[(C, Some(40.0), Some(0.0))]),
                47.0,
                Route::Ask(C),
            ),
            // past the grace: 17TRACK
            (
                both,
                true,
                true,
                parcel(lp, false, &[(C, Some(42.0), Some(0.0))]),
                48.0,
                Route::Ask(S),
            ),
            // past the grace but no quota to register: Cainiao stays the last resort
            (
                both,
                true,
                false,
                parcel(lp, false, &[(C, Some(42.0), Some(0.0))]),
                48.0,
                Route::Ask(C),
            ),
            // ... and with only 17TRACK configured it waits for quota
            (
                Providers::new(&[S]),
                true,
                false,
                parcel(lp, false, &[]),
                0.0,
                Route::NeedsQuota,
            ),
            // registered already: polling is free, the quota does not matter
            (
                Providers::new(&[S]),
                true,
                false,
                parcel(lp, true, &[]),
                0.0,
                Route::Ask(S),
            ),
            // Cainiao unavailable (a ban, failures): 17TRACK
            (
                both,
                false,
                true,
                parcel(lp, false, &[(C, Some(0.0), None)]),
                7.0,
                Route::Ask(S),
            ),
            // Cainiao unavailable and no quota: nobody
            (
                both,
                false,
                false,
                parcel(lp, false, &[]),
                0.0,
                Route::NeedsQuota,
            ),
            // a format Cainiao does not take (too short): 17TRACK
            (
                both,
                true,
                true,
                parcel("RB1234", false, &[]),
                0.0,
                Route::Ask(S),
            ),
            // a format nobody takes
            (
                both,
                true,
                true,
                parcel("AB-12", false, &[]),
                0.0,
                Route::Nobody,
            ),
            (
                Providers::default(),
                true,
                true,
                parcel(lp, false, &[]),
                0.0,
                Route::Nobody,
            ),
        ];
        for (i, (providers, cainiao_up, can_register, p, h, want)) in cases.into_iter().enumerate()
        {
            let available = |q: Provider| q != C || cainiao_up;
            let f = RouteFacts {
                providers,
                available: &available,
                can_register,
            };
            assert_eq!(route(&f, &p, t0() + hours(h)), want, "case {i}");
        }
    }

    #[test]
    fn backoff_table() {
        use FailKind::*;
        let h = |n: u64| Duration::from_secs(n * 3600);
        let cases = [
            (Provider::Cainiao, RateLimited, h(24)),
            (Provider::Cainiao, Refused, h(24)),
            (Provider::Cainiao, Transient, h(1)),
            (
                Provider::SeventeenTrack,
                RateLimited,
                Duration::from_secs(15 * 60),
            ),
            (Provider::SeventeenTrack, Refused, h(1)),
            (Provider::SeventeenTrack, Transient, Duration::ZERO),
        ];
        for (p, k, want) in cases {
            assert_eq!(backoff(p, k), want, "{p:?} {k:?}");
        }
    }

    #[test]
    fn may_register_table() {
        use crate::facts::TrackingState;
        let now = t0();
        let st = |exhausted: bool, remain: Option<i64>, checked_h_ago: Option<f64>| TrackingState {
            quota_exhausted: exhausted.then(|| "quota ran out".to_string()),
            quota_remain: remain,
            quota_checked_at: checked_h_ago.map(|h| now - hours(h)),
            ..TrackingState::default()
        };
        assert!(may_register(&st(false, None, None), now), "nothing known");
        assert!(may_register(&st(false, Some(50), Some(0.1)), now));
        assert!(
            !may_register(&st(false, Some(2), Some(0.1)), now),
            "the reserve is kept"
        );
        assert!(
            !may_register(&st(true, Some(0), Some(0.5)), now),
            "spent, probed recently"
        );
        assert!(
            may_register(&st(true, Some(0), Some(1.5)), now),
            "the hourly probe"
        );
    }

    #[test]
    fn due_table() {
        let now = t0();
        assert!(is_due(None, None, now), "never checked is due at once");
        assert!(is_due(Some(now), None, now));
        assert!(is_due(Some(now - hours(1.0)), None, now));
        assert!(!is_due(Some(now + hours(0.1)), None, now));
        assert!(!is_due(None, Some(now), now), "done is never due");
        assert!(!is_due(Some(now - hours(5.0)), Some(now), now));
    }
}
