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
//! - Cainiao: never more often than every 6 h (unofficial endpoint, Alibaba
//!   throttles unusual traffic; ha-cainiao polls every 6 h).

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use crate::facts::{DoneReason, Next};
use crate::facts::{DueParcel, TrackingCandidate};
use crate::model::{ParcelStatus, Provider};

/// Interval while a parcel is out for delivery or waiting at a pickup point.
pub const FAST: Duration = Duration::from_secs(2 * 3600);
/// Interval for numbers that showed nothing for [`SLOW_AFTER`].
pub const SLOW: Duration = Duration::from_secs(24 * 3600);
/// How long "not found" lasts before a number is asked for daily only.
pub const SLOW_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long "not found" lasts before aliwatch gives up on a number.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);
/// The least interval for the unofficial Cainiao endpoint.
pub const CAINIAO_MIN: Duration = Duration::from_secs(6 * 3600);
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
    match provider {
        Provider::Cainiao => interval.max(CAINIAO_MIN),
        _ => interval,
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
