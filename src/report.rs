//! The read model: orders and parcels as users see them, exactly the shape
//! of `status --json` (SPEC §4). Built by the store from its facts and the
//! pure rules in `protection.rs`; rendered by `status` and by the digest.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::model::{OrderState, ParcelStatus, ProtectionSource};

/// The whole `status --json` document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    #[serde(serialize_with = "ser_time")]
    pub generated_at: DateTime<Utc>,
    pub orders: Vec<OrderView>,
    pub unassigned_parcels: Vec<ParcelView>,
    /// Problems of aliwatch itself the user should know about (tracking
    /// quota used up, API key rejected). Shown in the digest, not part of
    /// the `status --json` contract.
    #[serde(skip)]
    pub notices: Vec<String>,
}

/// One order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderView {
    pub order_id: String,
    pub state: OrderState,
    pub confirmed_at: Option<NaiveDate>,
    pub shipped_at: Option<NaiveDate>,
    pub protection_ends: Option<NaiveDate>,
    pub protection_days_left: Option<i64>,
    pub protection_source: Option<ProtectionSource>,
    /// After delivery: the day AliExpress is expected to complete the order
    /// automatically (extension to SPEC §4).
    pub auto_completes_on: Option<NaiveDate>,
    /// After delivery or completion: the last day a dispute can be opened
    /// (completion + 15 days; extension to SPEC §4).
    pub dispute_until: Option<NaiveDate>,
    pub parcels: Vec<ParcelView>,
}

/// One parcel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParcelView {
    pub tracking_number: String,
    pub carrier: Option<String>,
    pub status: ParcelStatus,
    pub status_detail: Option<String>,
    pub last_event: Option<EventView>,
    pub eta: Option<EtaView>,
    #[serde(serialize_with = "ser_opt_time")]
    pub last_checked_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ser_opt_time")]
    pub delivered_at: Option<DateTime<Utc>>,
    pub stalled: bool,
    /// Earlier numbers of this parcel (e.g. the `LP…` number before the
    /// last-mile number; extension to SPEC §4).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub previous_numbers: Vec<String>,
}

/// A carrier event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventView {
    #[serde(serialize_with = "ser_time")]
    pub time: DateTime<Utc>,
    pub description: String,
    pub location: Option<String>,
}

/// An expected delivery window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EtaView {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// RFC 3339 in UTC with a `Z` and whole seconds, as SPEC §4 shows.
pub fn fmt_utc(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn ser_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_utc(t))
}

fn ser_opt_time<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&fmt_utc(t)),
        None => s.serialize_none(),
    }
}

impl OrderView {
    /// True when every parcel is in a final state or the order is completed.
    pub fn is_active(&self) -> bool {
        self.state.is_active()
    }
}
