//! The shared vocabulary of aliwatch, typed: email kinds, parcel statuses,
//! order states, protection sources, tracking numbers, what one email says
//! ([`Extraction`]), what a provider says about a parcel ([`TrackResult`]),
//! manual actions, notification keys and where an email came from.
//!
//! Every other module speaks in these types, so the strings users and scripts
//! see in `extract --json` and `status --json`, and the strings the database
//! keeps, are defined in one place and parsed, never compared as strings.
//! Pure: no I/O, no clock.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// What an email is about (SPEC §3 `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    /// Placed or paid.
    OrderConfirmed,
    /// Shipped, partially shipped, tracking number given or changed.
    Shipped,
    /// Any later carrier step before delivery.
    InTransit,
    /// Delivered, or AliExpress confirmed delivery.
    Delivered,
    /// Awaiting confirmation of receipt, protection extended or ending.
    Protection,
    /// Closed, dispute, refund, marketing, security, not AliExpress.
    #[default]
    Other,
}

impl EmailKind {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::OrderConfirmed => "order_confirmed",
            EmailKind::Shipped => "shipped",
            EmailKind::InTransit => "in_transit",
            EmailKind::Delivered => "delivered",
            EmailKind::Protection => "protection",
            EmailKind::Other => "other",
        }
    }

    /// Every kind, for parsing and tests.
    pub const ALL: [EmailKind; 6] = [
        EmailKind::OrderConfirmed,
        EmailKind::Shipped,
        EmailKind::InTransit,
        EmailKind::Delivered,
        EmailKind::Protection,
        EmailKind::Other,
    ];

    /// Parses the snake_case name (as stored in the database).
    pub fn parse(s: &str) -> Option<EmailKind> {
        EmailKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Kinds that show an order is on its way (its state is at least
    /// `shipped`). Not a shipping date: see [`EmailKind::dates_shipping`].
    pub fn shows_shipped(self) -> bool {
        matches!(
            self,
            EmailKind::Shipped | EmailKind::InTransit | EmailKind::Delivered
        )
    }

    /// Whether an email of this kind dates the shipping (SPEC §4
    /// `shipped_at`): only "your order has shipped". A later-stage email
    /// (in transit, customs, out for delivery, delivered) arrives days or
    /// weeks after the parcel left; taking its date would move the
    /// protection end later than the real one, the dangerous direction.
    pub fn dates_shipping(self) -> bool {
        self == EmailKind::Shipped
    }

    /// The parcel status an email of this kind implies when it names no
    /// finer one.
    pub fn implied_parcel_status(self) -> Option<ParcelStatus> {
        match self {
            EmailKind::Shipped => Some(ParcelStatus::InfoReceived),
            EmailKind::InTransit => Some(ParcelStatus::InTransit),
            EmailKind::Delivered => Some(ParcelStatus::Delivered),
            EmailKind::OrderConfirmed | EmailKind::Protection | EmailKind::Other => None,
        }
    }
}

/// A parcel's unified status (SPEC §4 parcel `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParcelStatus {
    Pending,
    InfoReceived,
    InTransit,
    Customs,
    CustomsHold,
    OutForDelivery,
    AvailableForPickup,
    DeliveryFailed,
    Delivered,
    Returning,
    Returned,
    Exception,
    Expired,
}

impl ParcelStatus {
    /// Every status, for tables and tests.
    pub const ALL: [ParcelStatus; 13] = [
        ParcelStatus::Pending,
        ParcelStatus::InfoReceived,
        ParcelStatus::InTransit,
        ParcelStatus::Customs,
        ParcelStatus::CustomsHold,
        ParcelStatus::OutForDelivery,
        ParcelStatus::AvailableForPickup,
        ParcelStatus::DeliveryFailed,
        ParcelStatus::Delivered,
        ParcelStatus::Returning,
        ParcelStatus::Returned,
        ParcelStatus::Exception,
        ParcelStatus::Expired,
    ];

    /// The snake_case name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ParcelStatus::Pending => "pending",
            ParcelStatus::InfoReceived => "info_received",
            ParcelStatus::InTransit => "in_transit",
            ParcelStatus::Customs => "customs",
            ParcelStatus::CustomsHold => "customs_hold",
            ParcelStatus::OutForDelivery => "out_for_delivery",
            ParcelStatus::AvailableForPickup => "available_for_pickup",
            ParcelStatus::DeliveryFailed => "delivery_failed",
            ParcelStatus::Delivered => "delivered",
            ParcelStatus::Returning => "returning",
            ParcelStatus::Returned => "returned",
            ParcelStatus::Exception => "exception",
            ParcelStatus::Expired => "expired",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<ParcelStatus> {
        ParcelStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The status in words, for people (digest, `status` table).
    pub fn words(self) -> &'static str {
        match self {
            ParcelStatus::Pending => "no tracking information yet",
            ParcelStatus::InfoReceived => "label created, waiting for the carrier",
            ParcelStatus::InTransit => "in transit",
            ParcelStatus::Customs => "at customs",
            ParcelStatus::CustomsHold => "held at customs",
            ParcelStatus::OutForDelivery => "out for delivery",
            ParcelStatus::AvailableForPickup => "ready for pickup",
            ParcelStatus::DeliveryFailed => "delivery attempt failed",
            ParcelStatus::Delivered => "delivered",
            ParcelStatus::Returning => "being returned to the sender",
            ParcelStatus::Returned => "returned to the sender",
            ParcelStatus::Exception => "problem reported by the carrier",
            ParcelStatus::Expired => "tracking expired",
        }
    }

    /// Final statuses: a parcel never moves back from these because of an
    /// older event (SPEC §4).
    pub fn is_final(self) -> bool {
        matches!(self, ParcelStatus::Delivered | ParcelStatus::Returned)
    }

    /// How far along the journey a status is. Email-derived status only ever
    /// moves a parcel forward along this order; statuses that are not steps
    /// of a normal journey (failures, returns) rank with their neighbours.
    pub fn progress(self) -> u8 {
        match self {
            ParcelStatus::Pending => 0,
            ParcelStatus::Expired => 0,
            ParcelStatus::InfoReceived => 1,
            ParcelStatus::InTransit => 2,
            ParcelStatus::Exception => 2,
            ParcelStatus::Customs => 3,
            ParcelStatus::CustomsHold => 3,
            ParcelStatus::OutForDelivery => 4,
            ParcelStatus::AvailableForPickup => 5,
            ParcelStatus::DeliveryFailed => 5,
            ParcelStatus::Returning => 6,
            ParcelStatus::Delivered => 7,
            ParcelStatus::Returned => 7,
        }
    }

    /// Statuses the user should act on or at least look at.
    pub fn needs_attention(self) -> bool {
        matches!(
            self,
            ParcelStatus::CustomsHold
                | ParcelStatus::DeliveryFailed
                | ParcelStatus::Exception
                | ParcelStatus::Returning
                | ParcelStatus::Returned
                | ParcelStatus::AvailableForPickup
        )
    }
}

impl std::fmt::Display for ParcelStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An order's state (SPEC §4 order `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    AwaitingShipment,
    Shipped,
    Delivered,
    /// Protection ended without delivery: AliExpress completed the order,
    /// and a dispute can still be opened until `dispute_until` (SPEC §7).
    ProtectionEnded,
    Completed,
    Disputed,
}

impl OrderState {
    /// The snake_case name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::AwaitingShipment => "awaiting_shipment",
            OrderState::Shipped => "shipped",
            OrderState::Delivered => "delivered",
            OrderState::ProtectionEnded => "protection_ended",
            OrderState::Completed => "completed",
            OrderState::Disputed => "disputed",
        }
    }

    /// Every state but `completed` is active (SPEC §4).
    pub fn is_active(self) -> bool {
        self != OrderState::Completed
    }
}

impl std::fmt::Display for OrderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an order is completed (SPEC §4 `completed_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletedReason {
    /// An email says receipt was confirmed.
    Confirmed,
    /// An email says the order was closed, cancelled or refunded.
    Closed,
    /// The `done` command.
    Done,
    /// AliExpress completed it by itself (SPEC §7).
    Auto,
    /// No news for 120 days and no running protection window.
    Stale,
}

impl CompletedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CompletedReason::Confirmed => "confirmed",
            CompletedReason::Closed => "closed",
            CompletedReason::Done => "done",
            CompletedReason::Auto => "auto",
            CompletedReason::Stale => "stale",
        }
    }
}

/// Why an active order needs the user (SPEC §7 "needs action"; push
/// channels call it `action_needed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionReason {
    /// Protection ends within the largest `warn_before`.
    ProtectionEnding,
    /// Protection ended without delivery: the last days to dispute.
    ProtectionEnded,
    DeliveryFailed,
    ReadyForPickup,
    CustomsHold,
    Exception,
    Returning,
    /// No tracking news for `stalled_after`.
    Stalled,
    /// Delivered, not confirmed, and AliExpress has not completed it yet.
    DeliveredNotConfirmed,
}

impl ActionReason {
    pub const ALL: [ActionReason; 9] = [
        ActionReason::ProtectionEnding,
        ActionReason::ProtectionEnded,
        ActionReason::DeliveryFailed,
        ActionReason::ReadyForPickup,
        ActionReason::CustomsHold,
        ActionReason::Exception,
        ActionReason::Returning,
        ActionReason::Stalled,
        ActionReason::DeliveredNotConfirmed,
    ];

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<ActionReason> {
        ActionReason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActionReason::ProtectionEnding => "protection_ending",
            ActionReason::ProtectionEnded => "protection_ended",
            ActionReason::DeliveryFailed => "delivery_failed",
            ActionReason::ReadyForPickup => "ready_for_pickup",
            ActionReason::CustomsHold => "customs_hold",
            ActionReason::Exception => "exception",
            ActionReason::Returning => "returning",
            ActionReason::Stalled => "stalled",
            ActionReason::DeliveredNotConfirmed => "delivered_not_confirmed",
        }
    }
}

/// Where an order's protection end date comes from (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtectionSource {
    /// A date or extension an email stated.
    Email,
    /// The `protection` command.
    Manual,
    /// Shipping date plus `protection.days`.
    Default,
    /// Nothing shows when the order shipped and no email or command states
    /// a date: `protection_ends` is `null` (SPEC §4). Never guessed.
    Unknown,
}

impl ProtectionSource {
    /// The snake_case name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtectionSource::Email => "email",
            ProtectionSource::Manual => "manual",
            ProtectionSource::Default => "default",
            ProtectionSource::Unknown => "unknown",
        }
    }
}

/// `tracking.provider`: who is asked about parcels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    SeventeenTrack,
    Cainiao,
    None,
}

impl Provider {
    /// The config spelling (also the `provider` column of stored events).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::SeventeenTrack => "17track",
            Provider::Cainiao => "cainiao",
            Provider::None => "none",
        }
    }

    /// Parses the config spelling (as stored in the `provider` column).
    pub fn parse(s: &str) -> Option<Provider> {
        [Provider::SeventeenTrack, Provider::Cainiao, Provider::None]
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    /// The one list of providers that track parcels (`none` is not one).
    /// Adding a provider: its module under `tracking/`, a variant, this
    /// list, and the arms below that point into its module.
    pub const TRACKERS: [Provider; 2] = [Provider::Cainiao, Provider::SeventeenTrack];

    /// Whether the provider can track a number of this format (each
    /// provider's module says which it accepts).
    pub fn accepts(self, number: &str) -> bool {
        match self {
            Provider::Cainiao => crate::providers::cainiao::accepts(number),
            Provider::SeventeenTrack => crate::providers::seventeen::accepts(number),
            Provider::None => false,
        }
    }

    /// The least time between two requests for one parcel: a pacing rule
    /// of the provider, whatever `refresh_interval` says.
    pub fn min_interval(self) -> std::time::Duration {
        match self {
            Provider::Cainiao => crate::providers::cainiao::MIN_INTERVAL,
            Provider::SeventeenTrack | Provider::None => std::time::Duration::ZERO,
        }
    }

    /// The provider's public tracking page for `number` (SPEC §4
    /// `tracking_url`); with `none`, 17TRACK's.
    pub fn tracking_page(self, number: &str) -> String {
        match self {
            Provider::Cainiao => crate::providers::cainiao::tracking_page(number),
            Provider::SeventeenTrack | Provider::None => {
                crate::providers::seventeen::tracking_page(number)
            }
        }
    }

    /// Whether `url` is one of the providers' public tracking pages: the
    /// only tracking links aliwatch puts into an email.
    pub fn is_tracking_page(url: &str) -> bool {
        Provider::TRACKERS.iter().any(|p| {
            let page = p.tracking_page("");
            url.starts_with(&page[..page.find('?').or(page.find('#')).unwrap_or(page.len())])
        })
    }
}

/// `tracking.providers`: the ordered providers, each at most once, never
/// `none` (empty: status from emails only). Copy, so that the decision
/// core's rules stay plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Providers {
    items: [Option<Provider>; Provider::TRACKERS.len()],
}

impl Providers {
    /// The list in the given order, repeats and `none` dropped.
    pub fn new(list: &[Provider]) -> Providers {
        let mut items = [None; Provider::TRACKERS.len()];
        let mut n = 0;
        for p in list {
            if *p == Provider::None || items.contains(&Some(*p)) || n == items.len() {
                continue;
            }
            items[n] = Some(*p);
            n += 1;
        }
        Providers { items }
    }

    pub fn iter(&self) -> impl Iterator<Item = Provider> + '_ {
        self.items.iter().flatten().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.items[0].is_none()
    }

    pub fn first(&self) -> Option<Provider> {
        self.items[0]
    }

    pub fn contains(&self, p: Provider) -> bool {
        self.items.contains(&Some(p))
    }

    /// `["cainiao", "17track"]`, for logs and `check-config`.
    pub fn spelled(&self) -> String {
        let names: Vec<String> = self.iter().map(|p| format!("{:?}", p.as_str())).collect();
        format!("[{}]", names.join(", "))
    }
}

// ---------------------------------------------------------------------------
// Numbers

/// The one normaliser of order and tracking numbers (SPEC §3: "no spaces,
/// upper case"). ASCII upper case only: every real format is ASCII, and a
/// Unicode case mapping could change the length (`ß` → `SS`).
pub fn normalise_number(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A tracking number, normalised by [`normalise_number`] on construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TrackingNumber(String);

impl TrackingNumber {
    pub fn new(s: &str) -> TrackingNumber {
        TrackingNumber(normalise_number(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it looks like a tracking number at all (6 to 40 letters and
    /// digits), for numbers typed by hand.
    pub fn is_plausible(&self) -> bool {
        (6..=40).contains(&self.0.len()) && self.0.chars().all(|c| c.is_ascii_alphanumeric())
    }
}

impl std::ops::Deref for TrackingNumber {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrackingNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TrackingNumber {
    fn from(s: &str) -> TrackingNumber {
        TrackingNumber::new(s)
    }
}

impl From<String> for TrackingNumber {
    fn from(s: String) -> TrackingNumber {
        TrackingNumber::new(&s)
    }
}

impl From<&String> for TrackingNumber {
    fn from(s: &String) -> TrackingNumber {
        TrackingNumber::new(s)
    }
}

impl PartialEq<str> for TrackingNumber {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TrackingNumber {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for TrackingNumber {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

/// Checks an AliExpress order number (12 to 20 digits, SPEC §3).
pub fn check_order_id(order: &str) -> Result<(), String> {
    if !(12..=20).contains(&order.len()) || !order.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{order:?} is not an AliExpress order number (12 to 20 digits)"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// What one email says

/// A price as an email shows it: the amount as a decimal string with a
/// dot (`"1.99"`, never a float) and an ISO 4217 currency code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Price {
    pub amount: String,
    pub currency: String,
}

/// One item of an order (SPEC §4 `items`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Item {
    /// The email's text, trimmed, whitespace collapsed, without a trailing
    /// ellipsis.
    pub title: String,
    pub variant: Option<String>,
    pub quantity: Option<u32>,
    pub price: Option<Price>,
}

/// One order an email refers to, with the parcels the email gives for it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct OrderRef {
    /// 12 to 20 digits; `None` for parcels named without any order.
    pub order_id: Option<String>,
    /// Current tracking numbers, normalised (no spaces, upper case).
    pub tracking_numbers: Vec<String>,
    /// The items the email shows for this order (none for a parcel-only
    /// entry).
    pub items: Vec<Item>,
    /// The seller's store name, where the email shows it.
    pub store: Option<String>,
}

/// Everything aliwatch takes from one email (the extractor's output).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Extraction {
    /// Sent by AliExpress, a carrier about an AliExpress order, or a forward.
    pub is_aliexpress: bool,
    /// SPEC §3 kind.
    pub kind: EmailKind,
    /// SPEC §3 orders.
    pub orders: Vec<OrderRef>,
    /// The finer parcel status the email states (customs, out for delivery…),
    /// when it states one.
    pub parcel_status: Option<ParcelStatus>,
    /// Tracking numbers the email says were replaced (old numbers), so the
    /// store can link old and new.
    pub replaced_tracking_numbers: Vec<String>,
    /// A protection end date the email states.
    pub protection_until: Option<NaiveDate>,
    /// A protection extension (days) the email states.
    pub protection_extended_days: Option<u32>,
    /// The order was closed or receipt confirmed.
    pub order_completed: bool,
    /// A dispute was opened.
    pub dispute_opened: bool,
    /// An expected delivery window the email states.
    pub eta: Option<(NaiveDate, NaiveDate)>,
    /// The Message-ID header, without angle brackets.
    pub message_id: Option<String>,
    /// The Date header.
    pub date: Option<DateTime<Utc>>,
    /// The decoded Subject header.
    pub subject: String,
}

impl Extraction {
    /// The SPEC §3 `extract --json` object for this email.
    pub fn to_spec_json(&self, file: &str) -> serde_json::Value {
        let orders: Vec<serde_json::Value> = self
            .orders
            .iter()
            .map(|o| {
                let mut v = serde_json::json!({
                    "order_id": o.order_id,
                    "tracking_numbers": o.tracking_numbers,
                });
                // Additive (SPEC §3): only where the email shows them.
                if o.order_id.is_some() && (!o.items.is_empty() || o.store.is_some()) {
                    v["items"] = serde_json::json!(o.items);
                    v["store"] = serde_json::json!(o.store);
                }
                v
            })
            .collect();
        serde_json::json!({
            "file": file,
            "is_aliexpress": self.is_aliexpress,
            "kind": self.kind.as_str(),
            "orders": orders,
        })
    }
}

/// Where an IMAP email sits on its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapLocation {
    pub account: String,
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// Where an email came from.
#[derive(Debug, Clone)]
pub struct EmailOrigin {
    /// "imap:<account>/<mailbox>" or "import:<path>".
    pub source: String,
    /// Set for emails read from IMAP.
    pub imap: Option<ImapLocation>,
    /// INTERNALDATE (IMAP) or the file's time (import): the email's date when
    /// it has no Date header.
    pub received_at: DateTime<Utc>,
}

/// What recording one email did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Processed for the first time.
    New {
        is_aliexpress: bool,
        orders_new: usize,
        orders_updated: usize,
        parcels_new: usize,
    },
    /// Seen before (same Message-ID or same bytes): nothing changed.
    Duplicate,
    /// Could not be parsed; recorded as seen with its error and skipped.
    Unparseable(String),
}

/// What aliwatch remembers about one IMAP mailbox: the server's UIDVALIDITY
/// and the next UID it has not looked at yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxState {
    pub uidvalidity: u32,
    pub uid_next: u32,
}

// ---------------------------------------------------------------------------
// Manual commands

/// A manual order command (`protection --extend/--until`, `done`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAction {
    Extend(u32),
    Until(NaiveDate),
    Done,
}

impl OrderAction {
    /// The `order_actions.action` and `value` columns.
    pub fn to_columns(self) -> (&'static str, String) {
        match self {
            OrderAction::Extend(days) => ("extend", days.to_string()),
            OrderAction::Until(date) => ("until", date.format("%Y-%m-%d").to_string()),
            OrderAction::Done => ("done", String::new()),
        }
    }

    /// Reads the columns back; `None` for a row this version does not know.
    pub fn from_columns(action: &str, value: &str) -> Option<OrderAction> {
        match action {
            "extend" => value.parse().ok().map(OrderAction::Extend),
            "until" => NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .map(OrderAction::Until),
            "done" => Some(OrderAction::Done),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// What a tracking provider says

/// One carrier event, provider-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackEvent {
    pub time_utc: DateTime<Utc>,
    /// The time as the provider gave it, with its UTC offset (RFC 3339).
    pub time_local: Option<String>,
    pub description: String,
    pub location: Option<String>,
    /// The event's own unified status, where its code says one.
    pub status: Option<ParcelStatus>,
    /// 17TRACK `sub_status`/`stage`, Cainiao `actionCode`.
    pub raw_code: Option<String>,
}

/// What a provider said about one number.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackResult {
    pub number: TrackingNumber,
    /// The provider has something for the number.
    pub found: bool,
    pub status: ParcelStatus,
    /// The provider's own status (17TRACK `status/sub_status`, Cainiao
    /// newest `actionCode`).
    pub raw_status: Option<String>,
    pub status_detail: Option<String>,
    pub carrier: Option<String>,
    pub carrier_code: Option<i64>,
    /// Newest first, deduplicated.
    pub events: Vec<TrackEvent>,
    pub eta_from: Option<NaiveDate>,
    pub eta_to: Option<NaiveDate>,
    /// The time of the delivery (or return) event.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The last-mile number the parcel continues under.
    pub last_mile: Option<TrackingNumber>,
}

impl TrackResult {
    /// The provider knows nothing about `number` (yet).
    pub fn not_found(number: &str) -> TrackResult {
        TrackResult {
            number: TrackingNumber::new(number),
            found: false,
            status: ParcelStatus::Pending,
            raw_status: None,
            status_detail: None,
            carrier: None,
            carrier_code: None,
            events: Vec::new(),
            eta_from: None,
            eta_to: None,
            delivered_at: None,
            last_mile: None,
        }
    }
}

/// The deduplication key of an event description: lower case, letters and
/// digits only, single spaces (Cainiao repeats its newest event with
/// cosmetic differences).
pub fn description_key(s: &str) -> String {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sorts events newest first and drops duplicates by (UTC time, normalised
/// description).
pub fn sort_dedup_events(events: &mut Vec<TrackEvent>) {
    events.sort_by_key(|e| std::cmp::Reverse(e.time_utc));
    let mut seen = HashSet::new();
    events.retain(|e| seen.insert((e.time_utc, description_key(&e.description))));
}

// ---------------------------------------------------------------------------
// Notifications

/// What a notification is about: its key in the sent-once ledger (together
/// with the channel). Written as `digest:<YYYY-MM-DD>` or
/// `warning:<order>:<N>d` in the database and in Message-IDs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NotificationKey {
    /// The daily digest of a local date in `timezone`.
    Digest(NaiveDate),
    /// A Buyer Protection warning for an order at a threshold (days).
    Warning {
        order_id: String,
        threshold_days: u32,
    },
    /// Push channels: an order entered "needs action" for a reason (once
    /// per order and reason).
    Action {
        order_id: String,
        reason: ActionReason,
    },
    /// Push channels: a parcel is out for delivery (once per parcel).
    OutForDelivery { tracking_number: String },
    /// Push channels: a parcel was delivered (once per parcel).
    Delivered { tracking_number: String },
}

impl NotificationKey {
    /// The ledger's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            NotificationKey::Digest(_) => "digest",
            NotificationKey::Warning { .. } => "warning",
            NotificationKey::Action { .. } => "action",
            NotificationKey::OutForDelivery { .. } => "out_for_delivery",
            NotificationKey::Delivered { .. } => "delivered",
        }
    }

    /// The push event this key is (SPEC §8).
    pub fn event(&self) -> EventKind {
        match self {
            NotificationKey::Digest(_) => EventKind::Digest,
            NotificationKey::Warning { .. } => EventKind::ProtectionWarning,
            NotificationKey::Action { .. } => EventKind::ActionNeeded,
            NotificationKey::OutForDelivery { .. } => EventKind::OutForDelivery,
            NotificationKey::Delivered { .. } => EventKind::Delivered,
        }
    }
}

impl fmt::Display for NotificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotificationKey::Digest(d) => write!(f, "digest:{}", d.format("%Y-%m-%d")),
            NotificationKey::Warning {
                order_id,
                threshold_days,
            } => write!(f, "warning:{order_id}:{threshold_days}d"),
            NotificationKey::Action { order_id, reason } => {
                write!(f, "action:{order_id}:{}", reason.as_str())
            }
            NotificationKey::OutForDelivery { tracking_number } => {
                write!(f, "out_for_delivery:{tracking_number}")
            }
            NotificationKey::Delivered { tracking_number } => {
                write!(f, "delivered:{tracking_number}")
            }
        }
    }
}

impl FromStr for NotificationKey {
    type Err = String;

    fn from_str(key: &str) -> Result<NotificationKey, String> {
        let bad = || format!("unknown notification key {key:?}");
        if let Some(d) = key.strip_prefix("digest:") {
            return NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map(NotificationKey::Digest)
                .map_err(|_| bad());
        }
        let number = |n: &str| {
            let ok = !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric());
            ok.then(|| n.to_owned()).ok_or_else(bad)
        };
        if let Some(n) = key.strip_prefix("out_for_delivery:") {
            return Ok(NotificationKey::OutForDelivery {
                tracking_number: number(n)?,
            });
        }
        if let Some(n) = key.strip_prefix("delivered:") {
            return Ok(NotificationKey::Delivered {
                tracking_number: number(n)?,
            });
        }
        if let Some(rest) = key.strip_prefix("action:") {
            let (order, reason) = rest.rsplit_once(':').ok_or_else(bad)?;
            let reason = ActionReason::parse(reason).ok_or_else(bad)?;
            if order.is_empty() {
                return Err(bad());
            }
            return Ok(NotificationKey::Action {
                order_id: order.to_owned(),
                reason,
            });
        }
        let rest = key.strip_prefix("warning:").ok_or_else(bad)?;
        let (order, days) = rest.rsplit_once(':').ok_or_else(bad)?;
        let threshold_days = days
            .strip_suffix('d')
            .and_then(|n| n.parse().ok())
            .ok_or_else(bad)?;
        if order.is_empty() {
            return Err(bad());
        }
        Ok(NotificationKey::Warning {
            order_id: order.to_owned(),
            threshold_days,
        })
    }
}

impl PartialEq<&str> for NotificationKey {
    fn eq(&self, other: &&str) -> bool {
        other.parse::<NotificationKey>().is_ok_and(|k| k == *self)
    }
}

/// A push event a `[[notify]]` channel can subscribe to (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A Buyer Protection warning (the email warning's thresholds).
    ProtectionWarning,
    /// An order newly needs action (SPEC §7), once per order and reason.
    ActionNeeded,
    /// A parcel is out for delivery, once per parcel.
    OutForDelivery,
    /// A parcel was delivered, once per parcel.
    Delivered,
    /// The daily summary, short form.
    Digest,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::ProtectionWarning,
        EventKind::ActionNeeded,
        EventKind::OutForDelivery,
        EventKind::Delivered,
        EventKind::Digest,
    ];

    /// The config and payload spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ProtectionWarning => "protection_warning",
            EventKind::ActionNeeded => "action_needed",
            EventKind::OutForDelivery => "out_for_delivery",
            EventKind::Delivered => "delivered",
            EventKind::Digest => "digest",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// A ledger row's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationState {
    /// Recorded, not yet accepted by the channel.
    Pending,
    Sent,
    /// Never to be sent (a smaller threshold or a newer digest replaced it,
    /// or it no longer applied).
    Superseded,
}

impl NotificationState {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Sent => "sent",
            NotificationState::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<NotificationState> {
        [
            NotificationState::Pending,
            NotificationState::Sent,
            NotificationState::Superseded,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl PartialEq<&str> for NotificationState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The name of the email channel in the per-channel notification ledger;
/// push channels are named by their `[[notify]]` tables and may not take it.
pub const EMAIL_CHANNEL: &str = "email";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parcel_status_names_round_trip() {
        for st in ParcelStatus::ALL {
            assert_eq!(ParcelStatus::parse(st.as_str()), Some(st));
            let json = serde_json::to_string(&st).expect("serialises");
            assert_eq!(json, format!("\"{}\"", st.as_str()));
        }
    }

    #[test]
    fn only_delivered_and_returned_are_final() {
        let finals: Vec<_> = ParcelStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(
            finals,
            vec![ParcelStatus::Delivered, ParcelStatus::Returned]
        );
    }

    #[test]
    fn email_kinds_round_trip() {
        for k in EmailKind::ALL {
            assert_eq!(EmailKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EmailKind::parse("shipped "), None);
    }

    #[test]
    fn notification_keys_round_trip_and_reject_garbage() {
        let cases = [
            "digest:2026-11-28",
            "warning:8123456789012345:7d",
            "warning:1:2d",
            "action:8123456789012345:customs_hold",
            "action:1:delivered_not_confirmed",
            "out_for_delivery:LP00527423524449",
            "delivered:RB123456785CN",
        ];
        for k in cases {
            let parsed: NotificationKey = k.parse().expect(k);
            assert_eq!(parsed.to_string(), k);
        }
        for bad in [
            "digest:2026-13-01",
            "warning::7d",
            "warning:1:7",
            "other:x",
            "action:1:bored",
            "action::stalled",
            "delivered:",
            "delivered:LP 1",
            "out_for_delivery:a:b",
            "",
        ] {
            assert!(bad.parse::<NotificationKey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn one_normaliser_for_numbers() {
        assert_eq!(normalise_number(" lp00 1234\t5 "), "LP0012345");
        assert_eq!(
            TrackingNumber::new("jy26 caa0d000551012"),
            "JY26CAA0D000551012"
        );
        assert!(!TrackingNumber::new("hello").is_plausible());
        assert!(TrackingNumber::new("RB123456785GB").is_plausible());
    }

    #[test]
    fn descriptions_normalise_for_dedup() {
        assert_eq!(
            description_key("  Departed  from Customs!"),
            "departed from customs"
        );
        assert_eq!(
            description_key("Departed from customs"),
            description_key("departed, from customs.")
        );
    }

    #[test]
    fn order_actions_round_trip_through_columns() {
        let until = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        for a in [
            OrderAction::Extend(10),
            OrderAction::Until(until),
            OrderAction::Done,
        ] {
            let (name, value) = a.to_columns();
            assert_eq!(OrderAction::from_columns(name, &value), Some(a));
        }
    }
}
