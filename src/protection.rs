//! Buyer Protection deadlines and stalled parcels: pure functions of what
//! is known about an order and of "today".
