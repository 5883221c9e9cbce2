//! The decision core: pure functions of facts, [`Rules`] and an injected
//! "now". No clock, no I/O, no config file: the pipeline loads the facts,
//! builds the rules from the config once, and carries out what is decided
//! here.
//!
//! - [`orders`]: the status derivation (facts → `status --json` model);
//! - [`protection`]: when Buyer Protection ends, order state, stalled parcels;
//! - [`lifecycle`]: what an order is today (SPEC §7) and what needs action;
//! - [`parcel`]: what a provider's answer changes for a parcel;
//! - [`schedule`]: when a parcel is asked for again;
//! - [`notifications`]: which digest and warnings are due, and whether a
//!   pending one still applies.

pub mod lifecycle;
pub mod notifications;
pub mod orders;
pub mod parcel;
pub mod protection;
pub mod schedule;

use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;

use crate::model::Providers;

/// The few settings decisions depend on (from the config's `timezone`,
/// `[digest]`, `[protection]` and `[tracking]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Dates, "days left" and the digest time are in this zone.
    pub timezone: Tz,
    pub digest: DigestRules,
    pub protection: ProtectionRules,
    pub tracking: TrackingRules,
}

/// `[digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRules {
    pub enabled: bool,
    /// Local time in `timezone`, once a day.
    pub at: NaiveTime,
    /// No digest on days with no active order.
    pub skip_when_empty: bool,
}

/// `[protection]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectionRules {
    /// Window from the shipping date when no email states one.
    pub days: u32,
    /// Thresholds in days, largest first.
    pub warn_before_days: Vec<u32>,
    /// No new tracking event this long → stalled.
    pub stalled_after: Duration,
}

/// `[tracking]`, as far as the schedule needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackingRules {
    /// `tracking.providers`, in the order asked (empty: email-only status).
    pub providers: Providers,
    /// The least time between two refreshes of one parcel.
    pub refresh_interval: Duration,
}

impl Default for DigestRules {
    fn default() -> Self {
        DigestRules {
            enabled: true,
            at: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
            skip_when_empty: true,
        }
    }
}

impl Default for ProtectionRules {
    fn default() -> Self {
        ProtectionRules {
            days: 60,
            warn_before_days: vec![7, 2],
            stalled_after: Duration::from_secs(10 * 86400),
        }
    }
}

impl Default for Rules {
    /// The documented defaults (SPEC §2), in UTC.
    fn default() -> Rules {
        Rules {
            timezone: chrono_tz::UTC,
            digest: DigestRules::default(),
            protection: ProtectionRules::default(),
            tracking: TrackingRules {
                providers: Providers::default(),
                refresh_interval: Duration::from_secs(6 * 3600),
            },
        }
    }
}
