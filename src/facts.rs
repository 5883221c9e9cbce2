//! What the store knows and what it is told to write, as typed rows: the
//! boundary between the SQLite room (`store/`) and the pure core
//! (`decide/`). The store fills these from its tables and applies the
//! updates the core decides; neither side sees the other's internals.
//! Pure data: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use crate::model::{
    EmailKind, Item, NotificationKey, NotificationState, OrderAction, ParcelStatus, Provider,
    TrackingNumber,
};
use crate::report::EventView;

// ---------------------------------------------------------------------------
// Orders and parcels, for the status derivation

/// What one email said about one order (`order_emails`).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderEmail {
    pub kind: EmailKind,
    pub date: DateTime<Utc>,
    pub status: Option<ParcelStatus>,
    /// Parcels the email named for this order (0: an order-wide statement).
    pub parcel_count: i64,
    pub protection_until: Option<NaiveDate>,
    pub extended_days: Option<u32>,
    pub completed: bool,
    pub disputed: bool,
    pub eta: Option<(NaiveDate, NaiveDate)>,
    /// The items the email shows for the order, in its order.
    pub items: Vec<Item>,
    /// The store the email names for the order.
    pub store: Option<String>,
}

/// What one email said about one parcel (`parcel_emails` with the email's
/// subject).
#[derive(Debug, Clone, PartialEq)]
pub struct ParcelEmail {
    pub date: DateTime<Utc>,
    pub status: Option<ParcelStatus>,
    pub subject: String,
}

/// A parcel's own row (`parcels`), as far as the status derivation needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParcelRow {
    pub number: String,
    pub replaced_by: Option<String>,
    pub carrier: Option<String>,
    pub provider_status: Option<ParcelStatus>,
    pub status_detail: Option<String>,
    pub eta: Option<(NaiveDate, NaiveDate)>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub first_seen_at: DateTime<Utc>,
}

/// A manual command on an order and when it was given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ManualAction {
    pub action: OrderAction,
    pub at: DateTime<Utc>,
}

/// Everything the status derivation reads, loaded in one go.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Every known order id, sorted.
    pub orders: Vec<String>,
    /// When aliwatch first learned of each order.
    pub order_first_seen: HashMap<String, DateTime<Utc>>,
    pub order_emails: HashMap<String, Vec<OrderEmail>>,
    /// Manual commands per order, oldest first.
    pub actions: HashMap<String, Vec<ManualAction>>,
    pub parcels: BTreeMap<String, ParcelRow>,
    pub order_parcels: HashMap<String, BTreeSet<String>>,
    pub parcel_orders: HashMap<String, BTreeSet<String>>,
    pub parcel_emails: HashMap<String, Vec<ParcelEmail>>,
    /// The newest carrier event per parcel.
    pub last_events: HashMap<String, EventView>,
    /// The time of the oldest carrier event per parcel.
    pub first_events: HashMap<String, DateTime<Utc>>,
    /// The provider of the newest carrier event per parcel: the evidence a
    /// provider tracks it (only then can it be stalled).
    pub event_providers: HashMap<String, Provider>,
}

// ---------------------------------------------------------------------------
// Tracking

/// A parcel the tracker should ask for now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueParcel {
    pub number: TrackingNumber,
    /// Registered with 17TRACK already.
    pub registered: bool,
    /// The carrier code 17TRACK assigned.
    pub carrier_code: Option<i64>,
    /// When the first email naming the number was dated (else when the
    /// parcel became known): the start of the not-found grace period.
    pub named_at: Option<DateTime<Utc>>,
    /// What each provider asked so far answered about it.
    pub asked: Vec<ProviderRecord>,
}

impl DueParcel {
    /// A parcel nobody has asked about yet (tests, `add`).
    pub fn new(number: &str) -> DueParcel {
        DueParcel {
            number: TrackingNumber::new(number),
            registered: false,
            carrier_code: None,
            named_at: None,
            asked: Vec::new(),
        }
    }

    /// The record of `provider` for this parcel, if it was ever asked.
    pub fn record(&self, provider: Provider) -> Option<&ProviderRecord> {
        self.asked.iter().find(|r| r.provider == provider)
    }
}

/// One provider's history with one parcel (table `parcel_providers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRecord {
    pub provider: Provider,
    /// When it last answered for the parcel.
    pub last_asked_at: Option<DateTime<Utc>>,
    /// Since when it has had nothing for the number (`None`: found).
    pub not_found_since: Option<DateTime<Utc>>,
}

/// Whether a provider can be asked at all, from its stored state
/// (table `provider_state`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderAvailability {
    /// Left alone until then (signs of a ban, failures, rate limits).
    pub unavailable_until: Option<DateTime<Utc>>,
    /// Why, for the log, `/metrics` and the status line.
    pub reason: Option<String>,
}

/// Why tracking of a parcel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoneReason {
    /// Delivered or returned, and a later refresh confirmed it.
    Confirmed,
    /// The provider expired the number.
    Expired,
    /// Nothing found for 30 days.
    GaveUp,
}

impl DoneReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DoneReason::Confirmed => "confirmed",
            DoneReason::Expired => "expired",
            DoneReason::GaveUp => "gave up: nothing found for 30 days",
        }
    }
}

/// When a parcel is asked for again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Ask again at this time.
    At(DateTime<Utc>),
    /// Never ask again.
    Done(DoneReason),
}

/// A parcel's stored tracking state before a provider's answer is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParcelPrevious {
    pub status: Option<ParcelStatus>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub not_found_since: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    /// The number this parcel was already replaced by.
    pub replaced_by: Option<String>,
    /// When the answer names a last-mile number that is known: what that
    /// number was replaced by (a link back to this one would be a cycle).
    pub last_mile_replaced_by: Option<String>,
    /// The provider whose answer the parcel shows.
    pub provider: Option<Provider>,
    /// The newest event that provider reported for the parcel.
    pub shown_newest: Option<DateTime<Utc>>,
}

/// What to write for one parcel after a provider's answer (decided by
/// `decide::parcel`, written by the store in the batch's transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParcelUpdate {
    pub status: ParcelStatus,
    /// The answer is older than what is stored: keep the stored detail and
    /// raw status.
    pub keep_previous_detail: bool,
    pub delivered_at: Option<DateTime<Utc>>,
    pub not_found_since: Option<DateTime<Utc>>,
    pub next: Next,
    /// The provider status changed.
    pub changed: bool,
    /// Continue under this last-mile number (linked to the same orders).
    pub link_last_mile: Option<TrackingNumber>,
    /// The provider whose answer the parcel now shows.
    pub provider: Option<Provider>,
}

/// What applying one batch changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Parcels whose provider status changed.
    pub changed: usize,
    pub new_events: usize,
    /// Parcels whose tracking ended, and why.
    pub done: Vec<(String, DoneReason)>,
    /// Last-mile numbers created or linked.
    pub last_mile: Vec<String>,
}

/// What to do with a number whose request was answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Ask again at this time.
    RetryAt(DateTime<Utc>),
    /// Never ask again (e.g. the provider says the format is invalid).
    GiveUp,
}

/// The tracking provider's account state (`tracking_state`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackingState {
    /// Set while 17TRACK refuses registrations (quota ran out or the daily
    /// limit was hit): a message for the log and the digest.
    pub quota_exhausted: Option<String>,
    /// When the quota was last probed with `getquota`.
    pub quota_checked_at: Option<DateTime<Utc>>,
    /// The last tracking error that needs the user (bad key, …); cleared by
    /// a pass without errors. The digest reports it.
    pub last_error: Option<String>,
    /// 17TRACK registrations left, as `getquota` last said (counted down
    /// by each registration since).
    pub quota_remain: Option<i64>,
    /// Providers left alone for now, and why.
    pub unavailable: Vec<(Provider, ProviderAvailability)>,
}

impl TrackingState {
    /// Whether `provider` may be asked at `now`.
    pub fn available(&self, provider: Provider, now: DateTime<Utc>) -> bool {
        !self
            .unavailable
            .iter()
            .any(|(p, a)| *p == provider && a.unavailable_until.is_some_and(|u| u > now))
    }

    /// The providers left alone at `now`: why, and for how long yet.
    pub fn unavailable_now(
        &self,
        now: DateTime<Utc>,
    ) -> Vec<(Provider, String, std::time::Duration)> {
        self.unavailable
            .iter()
            .filter_map(|(p, a)| {
                let left = (a.unavailable_until? - now).to_std().ok()?;
                let why = a.reason.clone().unwrap_or_else(|| "failing".into());
                (!left.is_zero()).then_some((*p, why, left))
            })
            .collect()
    }

    /// Records that `provider` is left alone until `until`.
    pub fn set_unavailable(&mut self, provider: Provider, until: DateTime<Utc>, reason: String) {
        self.unavailable.retain(|(p, _)| *p != provider);
        self.unavailable.push((
            provider,
            ProviderAvailability {
                unavailable_until: Some(until),
                reason: Some(reason),
            },
        ));
    }
}

// ---------------------------------------------------------------------------
// Notifications

/// One row of the sent-once ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    /// The channel it is for (`email`, or a `[[notify]]` name).
    pub channel: String,
    pub key: NotificationKey,
    /// The id the channel sends it under (the email's Message-ID).
    pub message_id: String,
    pub state: NotificationState,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When the last failed attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
}

/// A parcel that may be due: not done, not replaced. Whether it is due now
/// is the schedule's decision (`decide::schedule::due`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingCandidate {
    pub parcel: DueParcel,
    pub next_check_at: Option<DateTime<Utc>>,
    /// The orders the parcel belongs to (none: an unassigned parcel).
    pub orders: Vec<String>,
}

/// What one provider request brought back, written in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderBatch {
    /// Numbers 17TRACK now knows (with the carrier it assigned).
    pub registered: Vec<(TrackingNumber, Option<i64>)>,
    /// Numbers the provider does not know any more: register them again.
    pub unregistered: Vec<TrackingNumber>,
    /// Per-number errors and what to do about them.
    pub failed: Vec<(TrackingNumber, String, Failure)>,
    /// Answers to apply (status, events, ETA, last-mile numbers).
    pub results: Vec<crate::model::TrackResult>,
}
