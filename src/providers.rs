//! What each tracking provider is, as plain values: the number formats it
//! accepts, how many numbers one request carries, its pacing and its public
//! tracking page. The vocabulary ([`crate::model::Provider`]) and the
//! decisions read them, the clients in [`crate::tracking`] re-export them,
//! so a provider's facts stay in one place without the vocabulary reaching
//! up into the HTTP clients.

/// Cainiao (`global.cainiao.com`, keyless).
pub mod cainiao {
    /// Numbers per request: more than 10 is one of the patterns projects
    /// polling this endpoint report soft bans for.
    pub const BATCH: usize = 10;
    /// The least time between two requests for one parcel (ha-cainiao polls
    /// every 6 h; faster polling is reported to be throttled).
    pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(6 * 3600);
    /// The number formats Cainiao's page answers for: AliExpress lines (`LP…`,
    /// `CAINIAO…`), UPU S10 numbers and the forwarders' alphanumeric numbers,
    /// 8 to 40 ASCII letters and digits. Anything else is not asked.
    pub fn accepts(number: &str) -> bool {
        (8..=40).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_alphanumeric())
    }
    /// How long Cainiao is left alone after signs of a ban (429, 401/403, a
    /// refusal on HTTP 200): a whole day, since a soft ban lasts hours.
    pub const BAN_BACKOFF: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    /// Cainiao's public tracking page for `number`.
    pub fn tracking_page(number: &str) -> String {
        format!("https://global.cainiao.com/newDetail.htm?mailNoList={number}")
    }
}

/// 17TRACK (API v2.2, a key, a registration quota).
pub mod seventeen {
    /// Numbers per request (more gives -18010014).
    pub const BATCH: usize = 40;
    /// Registrations kept back from the quota: aliwatch stops registering
    /// while `getquota` says this many or fewer are left, so that the
    /// account is never run dry (the user may need one by hand).
    pub const QUOTA_RESERVE: i64 = 2;
    /// The number formats 17TRACK registers: 5 to 50 ASCII letters and digits
    /// (anything else is rejected with -18010012 after costing a request).
    pub fn accepts(number: &str) -> bool {
        (5..=50).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_alphanumeric())
    }
    /// 17TRACK's public tracking page for `number`.
    pub fn tracking_page(number: &str) -> String {
        format!("https://t.17track.net/en#nums={number}")
    }
}

/// Why a request failed, as far as the schedule cares (how long the
/// provider is left alone: `decide::schedule::backoff`; `tracking` says which an HTTP error is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// 5xx, timeouts, connection errors, an answer that is not the API's.
    Transient,
    /// 429 (after the retries this pass allows).
    RateLimited,
    /// The provider refused the caller (401/403, a refusal on HTTP 200).
    Refused,
}

/// How often an exhausted quota is probed with `getquota`.
pub const QUOTA_PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
