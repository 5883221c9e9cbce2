//! The shared vocabulary of aliwatch: email kinds, parcel statuses, order
//! states and protection sources, exactly as SPEC.md spells them.
//!
//! Every other module speaks in these types, so the strings users and scripts
//! see in `extract --json` and `status --json` are defined in one place.

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
            OrderState::Completed => "completed",
            OrderState::Disputed => "disputed",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<OrderState> {
        [
            OrderState::AwaitingShipment,
            OrderState::Shipped,
            OrderState::Delivered,
            OrderState::Completed,
            OrderState::Disputed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
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
}

impl ProtectionSource {
    /// The snake_case name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtectionSource::Email => "email",
            ProtectionSource::Manual => "manual",
            ProtectionSource::Default => "default",
        }
    }
}

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
        assert_eq!(finals, vec![ParcelStatus::Delivered, ParcelStatus::Returned]);
    }
}
