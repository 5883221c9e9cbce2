//! Extraction: one RFC 5322 email in, what it says about AliExpress orders
//! and parcels out. PURE: no I/O, no async, no clock.
//!
//! (Skeleton: the extraction helper fills this module in.)

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::model::{EmailKind, ParcelStatus};

/// One order an email refers to, with the parcels the email gives for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRef {
    /// 12 to 20 digits; `None` for parcels named without any order.
    pub order_id: Option<String>,
    /// Current tracking numbers, normalised (no spaces, upper case).
    pub tracking_numbers: Vec<String>,
}

/// Everything aliwatch takes from one email.
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

/// Why an email could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("not an RFC 5322 message: {0}")]
    Malformed(String),
}

/// Classifies and extracts one raw email.
pub fn extract(raw: &[u8]) -> Result<Extraction, ExtractError> {
    if raw.is_empty() {
        return Err(ExtractError::Malformed("empty input".into()));
    }
    Ok(Extraction::default())
}
