//! The read model: orders and parcels as users see them, exactly the shape
//! of `status --json` (SPEC §4). Derived from the store's facts and today's
//! date by `decide::orders`; rendered by `status`, the digest and every
//! channel, so all of them say the same thing on the same day.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::model::{
    ActionReason, CompletedReason, Item, OrderState, ParcelStatus, ProtectionSource, Provider,
};

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
    /// Why a `completed` order is completed; `null` otherwise.
    pub completed_reason: Option<CompletedReason>,
    pub confirmed_at: Option<NaiveDate>,
    pub shipped_at: Option<NaiveDate>,
    pub protection_ends: Option<NaiveDate>,
    pub protection_days_left: Option<i64>,
    /// `unknown` while `protection_ends` is `null` (SPEC §4).
    pub protection_source: ProtectionSource,
    /// After delivery: the day AliExpress is expected to complete the order
    /// automatically (extension to SPEC §4).
    pub auto_completes_on: Option<NaiveDate>,
    /// After delivery or completion: the last day a dispute can be opened
    /// (completion + 15 days; extension to SPEC §4).
    pub dispute_until: Option<NaiveDate>,
    /// The day of the order's newest email, carrier event or command (what
    /// "no news since" counts from; additive to SPEC §4).
    pub last_activity: Option<NaiveDate>,
    /// What the order contains, as far as any email of it shows.
    pub items: Vec<Item>,
    /// The seller's store name.
    pub store: Option<String>,
    /// The order's page on AliExpress.
    pub url: String,
    /// Why the order needs the user now (SPEC §7), most urgent first; empty
    /// for orders that need nothing (additive to SPEC §4).
    pub needs_action: Vec<ActionNeeded>,
    pub parcels: Vec<ParcelView>,
}

/// One reason an order needs the user, with the date that matters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionNeeded {
    pub reason: ActionReason,
    /// The last day to act (protection end, dispute deadline, automatic
    /// completion), where there is one.
    pub by: Option<NaiveDate>,
    /// The parcel it is about, where it is about one.
    pub tracking_number: Option<String>,
}

/// One parcel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParcelView {
    pub tracking_number: String,
    /// A public tracking page for the number.
    pub tracking_url: String,
    pub carrier: Option<String>,
    /// The provider whose answer the parcel shows; `null` when none tracks
    /// it (additive to SPEC §4).
    #[serde(serialize_with = "ser_provider")]
    pub provider: Option<Provider>,
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
    /// Where aliwatch learned of the parcel (for `status`, not in JSON).
    #[serde(skip)]
    pub origin: ParcelOrigin,
}

/// Where aliwatch learned of a parcel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ParcelOrigin {
    /// An AliExpress email named it.
    #[default]
    Email,
    /// `aliwatch add`, and no email named it since.
    Hand,
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

fn ser_provider<S: serde::Serializer>(p: &Option<Provider>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(p.as_str()),
        None => s.serialize_none(),
    }
}

impl OrderView {
    /// Every state but `completed` is active (SPEC §4).
    pub fn is_active(&self) -> bool {
        self.state.is_active()
    }

    /// Whether the order needs the user now (SPEC §7).
    pub fn needs_action(&self) -> bool {
        !self.needs_action.is_empty()
    }

    /// What the order is, for people: its item titles, else its store,
    /// else nothing (callers fall back to the order id).
    pub fn what(&self) -> Option<String> {
        if !self.items.is_empty() {
            let titles: Vec<&str> = self.items.iter().map(|i| i.title.as_str()).collect();
            return Some(titles.join(" + "));
        }
        self.store.clone()
    }
}

/// Minimal values for table tests: only what a test names, the rest empty
/// (a test sets the fields it is about with struct update syntax).
#[cfg(test)]
impl ParcelView {
    pub(crate) fn sample(number: &str, status: ParcelStatus) -> ParcelView {
        ParcelView {
            tracking_number: number.into(),
            tracking_url: String::new(),
            carrier: None,
            provider: None,
            status,
            status_detail: None,
            last_event: None,
            eta: None,
            last_checked_at: None,
            delivered_at: None,
            stalled: false,
            previous_numbers: vec![],
            origin: ParcelOrigin::Email,
        }
    }
}

#[cfg(test)]
impl OrderView {
    pub(crate) fn sample(id: &str, state: OrderState) -> OrderView {
        OrderView {
            order_id: id.into(),
            state,
            completed_reason: None,
            confirmed_at: None,
            shipped_at: None,
            protection_ends: None,
            protection_days_left: None,
            protection_source: ProtectionSource::Unknown,
            auto_completes_on: None,
            dispute_until: None,
            last_activity: None,
            items: vec![],
            store: None,
            url: String::new(),
            needs_action: vec![],
            parcels: vec![],
        }
    }
}

#[cfg(test)]
impl crate::model::Item {
    /// An item with only a title.
    pub(crate) fn titled(title: &str) -> crate::model::Item {
        crate::model::Item {
            title: title.into(),
            variant: None,
            quantity: None,
            price: None,
        }
    }
}
