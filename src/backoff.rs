//! The one backoff rule of the crate: exponential growth from a first delay
//! to a cap, with an optional random spread so that many clients (or
//! tasks) do not retry in lockstep. Used for IMAP reconnects, daemon tasks
//! whose pass failed, tracking HTTP retries and notification resends; each
//! caller keeps its own first delay, cap and spread.

use std::time::Duration;

/// `first` doubled `attempt` times, at most `cap` (attempt 0 is `first`).
pub fn exponential(attempt: u32, first: Duration, cap: Duration) -> Duration {
    first.saturating_mul(1u32 << attempt.min(16)).min(cap)
}

/// A point in `[d * low, d * high)` picked by `unit` in [0, 1). Pure: the
/// caller passes the random number (tests pass fixed ones).
pub fn spread(d: Duration, low: f64, high: f64, unit: f64) -> Duration {
    d.mul_f64(low + (high - low) * unit.clamp(0.0, 1.0))
}

/// [`exponential`] spread over `[low, high)` with a fresh random number,
/// never above `cap`.
pub fn jittered(attempt: u32, first: Duration, cap: Duration, low: f64, high: f64) -> Duration {
    spread(exponential(attempt, first, cap), low, high, fastrand::f64())
        .min(cap.mul_f64(high.max(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let s = Duration::from_secs;
        let got: Vec<u64> = (0..8)
            .map(|a| exponential(a, s(2), s(60)).as_secs())
            .collect();
        assert_eq!(got, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(exponential(u32::MAX, s(1), s(300)), s(300));
    }

    #[test]
    fn spread_stays_in_its_band() {
        let d = Duration::from_secs(100);
        assert_eq!(spread(d, 0.5, 1.0, 0.0), Duration::from_secs(50));
        assert_eq!(spread(d, 0.75, 1.25, 0.5), d);
        assert!(spread(d, 0.5, 1.0, 0.999) < d);
        for _ in 0..100 {
            let j = jittered(3, Duration::from_secs(1), Duration::from_secs(30), 1.0, 1.5);
            assert!(
                j >= Duration::from_secs(8) && j < Duration::from_secs(12),
                "{j:?}"
            );
        }
    }
}
