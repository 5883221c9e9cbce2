//! Order state, Buyer Protection deadlines and stalled parcels: pure
//! functions of what is known about an order and of "today".
//!
//! The store keeps facts (what each email said, manual commands, carrier
//! events) and derives everything here at read time, so the result is the
//! same whatever order the emails arrived in.
//!
//! Rules (SPEC §4, docs/aliexpress-emails.md §5):
//! - `default`: shipping date + `protection.days`;
//! - `email`: a date an email states replaces it; an extension an email
//!   states is added to it;
//! - `manual`: `protection --until D` sets it to D and `--extend N` adds N
//!   days, but a manual change never moves the end earlier;
//! - once delivered, AliExpress completes the order automatically after
//!   about five days ([`AUTO_COMPLETE_AFTER_DELIVERY_DAYS`]) and then leaves
//!   15 days to open a dispute ([`DISPUTE_DAYS_AFTER_COMPLETION`]). Without
//!   an email or manual date, the protection end becomes the earlier of the
//!   default end and the expected auto-completion;
//! - `unknown`: no shipping date, no stated date, no manual date: the end
//!   is `None`, never guessed (a late date is the dangerous direction); a
//!   delivered order still gets its auto-completion from the delivery;
//! - a parcel is stalled only on a provider's evidence ([`Tracked`]).

use chrono::{Duration as ChronoDuration, NaiveDate};

use crate::model::{OrderState, ProtectionSource};

/// Days after a recorded delivery until AliExpress completes the order by
/// itself (old official buyer-protection page: "the remaining time is cut to
/// 5 days").
pub const AUTO_COMPLETE_AFTER_DELIVERY_DAYS: i64 = 5;

/// Days after completion during which a dispute can still be opened.
pub const DISPUTE_DAYS_AFTER_COMPLETION: i64 = 15;

/// A manual `protection` command, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualProtection {
    /// `--extend DAYS`
    Extend(u32),
    /// `--until YYYY-MM-DD`
    Until(NaiveDate),
}

/// What is known about one order's protection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectionFacts {
    /// The date the order shipped (in the user's zone).
    pub shipped_on: Option<NaiveDate>,
    /// The date every parcel was delivered (in the user's zone).
    pub delivered_on: Option<NaiveDate>,
    /// The date the order completed (closed or receipt confirmed).
    pub completed_on: Option<NaiveDate>,
    /// Protection end dates stated by emails.
    pub email_until: Vec<NaiveDate>,
    /// Extensions (days) stated by emails, one per email.
    pub email_extensions: Vec<u32>,
    /// Manual commands, oldest first.
    pub manual: Vec<ManualProtection>,
}

/// The computed protection of one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    /// `None` exactly when `source` is [`ProtectionSource::Unknown`]: no
    /// shipping date, no stated date, no manual date. Never guessed.
    pub ends: Option<NaiveDate>,
    pub source: ProtectionSource,
    /// After delivery: the day the order is expected to complete by itself.
    pub auto_completes_on: Option<NaiveDate>,
    /// After delivery or completion: the last day a dispute can be opened.
    pub dispute_until: Option<NaiveDate>,
}

/// The end date and where it comes from, before delivery and completion
/// are applied: `None` while nothing dates it.
fn stated_end(facts: &ProtectionFacts, default_days: u32) -> Option<(NaiveDate, ProtectionSource)> {
    let days = |n: i64| ChronoDuration::days(n);
    let default_end = facts.shipped_on.map(|d| d + days(i64::from(default_days)));

    let mut end: Option<(NaiveDate, ProtectionSource)> =
        default_end.map(|d| (d, ProtectionSource::Default));

    // An email that states a date is authoritative (it may be earlier than
    // the default: AliExpress shortens the window after delivery).
    if let Some(stated) = facts.email_until.iter().max() {
        end = Some((*stated, ProtectionSource::Email));
    }
    let email_ext: i64 = facts.email_extensions.iter().map(|d| i64::from(*d)).sum();
    if email_ext > 0 {
        if let Some((d, _)) = end {
            end = Some((d + days(email_ext), ProtectionSource::Email));
        }
    }

    // Delivery shortens a default window to the auto-completion date.
    if let (Some((d, ProtectionSource::Default)), Some(auto)) = (end, auto_completion(facts)) {
        if auto < d {
            end = Some((auto, ProtectionSource::Default));
        }
    }

    for m in &facts.manual {
        end = match (*m, end) {
            (ManualProtection::Until(u), Some((d, _))) if u <= d => end,
            (ManualProtection::Until(u), _) => Some((u, ProtectionSource::Manual)),
            // A stored extension past chrono's calendar (only a database
            // written by hand holds one: `ops` refuses > 365 days) is
            // ignored rather than panicking on every report.
            (ManualProtection::Extend(n), Some((d, source))) => Some(
                d.checked_add_signed(days(i64::from(n)))
                    .map_or((d, source), |e| (e, ProtectionSource::Manual)),
            ),
            // Extending an unknown end has nothing to extend from.
            (ManualProtection::Extend(_), None) => None,
        };
    }
    end
}

/// Delivery + 5 days: when AliExpress completes a delivered order by
/// itself unless a date says otherwise.
fn auto_completion(facts: &ProtectionFacts) -> Option<NaiveDate> {
    facts
        .delivered_on
        .map(|d| d + ChronoDuration::days(AUTO_COMPLETE_AFTER_DELIVERY_DAYS))
}

/// Computes the protection of an order. While nothing dates the end (no
/// shipping date, no stated date), the end is unknown — but a delivered
/// order still completes by itself from its delivery date (SPEC §7).
pub fn protection(facts: &ProtectionFacts, default_days: u32) -> Protection {
    let days = |n: i64| ChronoDuration::days(n);
    let auto = auto_completion(facts);
    let Some((ends, source)) = stated_end(facts, default_days) else {
        let completion = facts.completed_on.or(auto);
        return Protection {
            ends: None,
            source: ProtectionSource::Unknown,
            auto_completes_on: auto.filter(|_| facts.completed_on.is_none()),
            dispute_until: completion.map(|c| c + days(DISPUTE_DAYS_AFTER_COMPLETION)),
        };
    };
    // A date an email or the user stated after delivery is the day
    // AliExpress confirms the order by itself ("awaiting confirmation …
    // until D"); the 5-day rule is the estimate when nothing says so.
    let auto_completes_on = match source {
        ProtectionSource::Default | ProtectionSource::Unknown => auto,
        ProtectionSource::Email | ProtectionSource::Manual => auto.map(|_| ends),
    };
    let completion = facts
        .completed_on
        .or(auto_completes_on.map(|a| a.min(ends)));
    Protection {
        ends: Some(ends),
        source,
        auto_completes_on: if facts.completed_on.is_none() {
            auto_completes_on.map(|a| a.min(ends))
        } else {
            None
        },
        dispute_until: completion.map(|c| c + days(DISPUTE_DAYS_AFTER_COMPLETION)),
    }
}

/// Whole days from `today` until `ends` (negative once it has passed).
pub fn days_left(ends: NaiveDate, today: NaiveDate) -> i64 {
    (ends - today).num_days()
}

/// What is known about an order's progress, for its state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateFacts {
    pub completed: bool,
    pub disputed: bool,
    /// An email said the whole order was delivered (naming no parcel).
    pub delivered_email: bool,
    /// Number of current parcels, and how many of them are delivered.
    pub parcels: usize,
    pub parcels_delivered: usize,
    /// Any email or event showed the order shipped or moving.
    pub shipped: bool,
}

/// The order's state (SPEC §4).
pub fn order_state(f: StateFacts) -> OrderState {
    if f.completed {
        OrderState::Completed
    } else if f.disputed {
        OrderState::Disputed
    } else if f.delivered_email || (f.parcels > 0 && f.parcels_delivered == f.parcels) {
        OrderState::Delivered
    } else if f.shipped || f.parcels > 0 || f.delivered_email {
        OrderState::Shipped
    } else {
        OrderState::AwaitingShipment
    }
}

/// What a tracking provider has shown about a parcel: the only evidence
/// that can make a parcel "stalled" (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    /// No provider is configured: AliExpress emails a parcel's progress
    /// only now and then, so silence says nothing.
    Off,
    /// A provider is configured but has no carrier event for the parcel
    /// (yet): a new number often takes days to show up.
    NoEvents,
    /// A provider tracks it; the time of its newest carrier event.
    NewestEvent(chrono::DateTime<chrono::Utc>),
}

/// Whether a parcel that is not delivered has gone quiet: a provider
/// tracks it and its newest carrier event is older than `stalled_after`.
/// Without that evidence it is never stalled.
pub fn is_stalled(
    final_status: bool,
    tracked: Tracked,
    now: chrono::DateTime<chrono::Utc>,
    stalled_after: std::time::Duration,
) -> bool {
    let Tracked::NewestEvent(last) = tracked else {
        return false;
    };
    if final_status {
        return false;
    }
    let limit = ChronoDuration::from_std(stalled_after).unwrap_or(ChronoDuration::MAX);
    now.signed_duration_since(last) > limit
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    #[test]
    fn protection_rules_table() {
        struct Case {
            name: &'static str,
            facts: ProtectionFacts,
            want: Option<(&'static str, ProtectionSource)>,
        }
        let shipped = |s: &str| ProtectionFacts {
            shipped_on: Some(d(s)),
            ..Default::default()
        };
        let cases = vec![
            Case {
                name: "nothing known",
                facts: ProtectionFacts::default(),
                want: None,
            },
            Case {
                name: "default: shipping date + 60 days",
                facts: shipped("2026-11-01"),
                want: Some(("2026-12-31", ProtectionSource::Default)),
            },
            Case {
                name: "email date replaces the default, even when earlier",
                facts: ProtectionFacts {
                    email_until: vec![d("2026-12-10")],
                    ..shipped("2026-11-01")
                },
                want: Some(("2026-12-10", ProtectionSource::Email)),
            },
            Case {
                name: "two email dates: the later wins",
                facts: ProtectionFacts {
                    email_until: vec![d("2026-12-10"), d("2026-12-20")],
                    ..shipped("2026-11-01")
                },
                want: Some(("2026-12-20", ProtectionSource::Email)),
            },
            Case {
                name: "email extension adds to the default",
                facts: ProtectionFacts {
                    email_extensions: vec![15],
                    ..shipped("2026-11-01")
                },
                want: Some(("2027-01-15", ProtectionSource::Email)),
            },
            Case {
                name: "email date without a shipping date",
                facts: ProtectionFacts {
                    email_until: vec![d("2026-12-10")],
                    ..Default::default()
                },
                want: Some(("2026-12-10", ProtectionSource::Email)),
            },
            Case {
                name: "manual extend adds to the current end",
                facts: ProtectionFacts {
                    manual: vec![ManualProtection::Extend(10)],
                    ..shipped("2026-11-01")
                },
                want: Some(("2027-01-10", ProtectionSource::Manual)),
            },
            Case {
                // A control-socket peer once stored 4,000,000,000 days and
                // every report after it panicked (the service crash-looped).
                name: "an extension past the calendar is ignored, not a panic",
                facts: ProtectionFacts {
                    manual: vec![ManualProtection::Extend(u32::MAX)],
                    ..shipped("2026-11-01")
                },
                want: Some(("2026-12-31", ProtectionSource::Default)),
            },
            Case {
                name: "manual until sets a later end",
                facts: ProtectionFacts {
                    manual: vec![ManualProtection::Until(d("2027-02-01"))],
                    ..shipped("2026-11-01")
                },
                want: Some(("2027-02-01", ProtectionSource::Manual)),
            },
            Case {
                name: "manual until never moves the end earlier",
                facts: ProtectionFacts {
                    manual: vec![ManualProtection::Until(d("2026-12-01"))],
                    ..shipped("2026-11-01")
                },
                want: Some(("2026-12-31", ProtectionSource::Default)),
            },
            Case {
                name: "manual until without any other date",
                facts: ProtectionFacts {
                    manual: vec![ManualProtection::Until(d("2026-12-01"))],
                    ..Default::default()
                },
                want: Some(("2026-12-01", ProtectionSource::Manual)),
            },
            Case {
                name: "manual commands apply in order",
                facts: ProtectionFacts {
                    manual: vec![
                        ManualProtection::Until(d("2027-01-10")),
                        ManualProtection::Extend(5),
                    ],
                    ..shipped("2026-11-01")
                },
                want: Some(("2027-01-15", ProtectionSource::Manual)),
            },
            Case {
                name: "delivery shortens a default window to auto-completion",
                facts: ProtectionFacts {
                    delivered_on: Some(d("2026-11-20")),
                    ..shipped("2026-11-01")
                },
                want: Some(("2026-11-25", ProtectionSource::Default)),
            },
            Case {
                name: "delivery does not override an email date",
                facts: ProtectionFacts {
                    delivered_on: Some(d("2026-11-20")),
                    email_until: vec![d("2026-12-05")],
                    ..shipped("2026-11-01")
                },
                want: Some(("2026-12-05", ProtectionSource::Email)),
            },
        ];
        let mut ran = 0;
        for c in cases {
            let p = protection(&c.facts, 60);
            let got = p.ends.map(|e| (e, p.source));
            assert_eq!(
                p.source == ProtectionSource::Unknown,
                p.ends.is_none(),
                "case: {}",
                c.name
            );
            let want = c.want.map(|(s, src)| (d(s), src));
            assert_eq!(got, want, "case: {}", c.name);
            ran += 1;
        }
        assert!(ran > 10);
    }

    #[test]
    fn delivered_order_shows_auto_completion_and_dispute_deadline() {
        let p = protection(
            &ProtectionFacts {
                shipped_on: Some(d("2026-11-01")),
                delivered_on: Some(d("2026-11-20")),
                ..Default::default()
            },
            60,
        );
        assert_eq!(p.auto_completes_on, Some(d("2026-11-25")));
        assert_eq!(p.dispute_until, Some(d("2026-12-10")));

        let done = protection(
            &ProtectionFacts {
                shipped_on: Some(d("2026-11-01")),
                completed_on: Some(d("2026-11-22")),
                ..Default::default()
            },
            60,
        );
        assert_eq!(done.auto_completes_on, None);
        assert_eq!(done.dispute_until, Some(d("2026-12-07")));
    }

    #[test]
    fn days_left_counts_whole_days_and_goes_negative() {
        assert_eq!(days_left(d("2026-12-31"), d("2026-11-28")), 33);
        assert_eq!(days_left(d("2026-11-28"), d("2026-11-28")), 0);
        assert_eq!(days_left(d("2026-11-26"), d("2026-11-28")), -2);
    }

    #[test]
    fn order_state_table() {
        let f = StateFacts::default;
        let cases = [
            (f(), OrderState::AwaitingShipment),
            (
                StateFacts {
                    shipped: true,
                    ..f()
                },
                OrderState::Shipped,
            ),
            (StateFacts { parcels: 1, ..f() }, OrderState::Shipped),
            (
                StateFacts {
                    parcels: 2,
                    parcels_delivered: 1,
                    ..f()
                },
                OrderState::Shipped,
            ),
            (
                StateFacts {
                    parcels: 2,
                    parcels_delivered: 2,
                    ..f()
                },
                OrderState::Delivered,
            ),
            (
                StateFacts {
                    delivered_email: true,
                    ..f()
                },
                OrderState::Delivered,
            ),
            (
                StateFacts {
                    disputed: true,
                    parcels: 1,
                    ..f()
                },
                OrderState::Disputed,
            ),
            (
                StateFacts {
                    completed: true,
                    disputed: true,
                    ..f()
                },
                OrderState::Completed,
            ),
        ];
        for (facts, want) in cases {
            assert_eq!(order_state(facts), want, "{facts:?}");
        }
    }

    #[test]
    fn stalled_only_on_a_providers_evidence_across_the_threshold() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 28, 8, 0, 0)
            .single()
            .expect("time");
        let ten_days = std::time::Duration::from_secs(10 * 86400);
        let ago = |h: i64| Tracked::NewestEvent(now - ChronoDuration::hours(h));
        // (what is known, final status, stalled)
        let cases = [
            (ago(10 * 24 - 1), false, false),
            (ago(10 * 24), false, false),
            (ago(10 * 24 + 1), false, true),
            (ago(30 * 24), false, true),
            (ago(30 * 24), true, false),
            // silence without a provider, or before its first event, is
            // no evidence, however long
            (Tracked::Off, false, false),
            (Tracked::NoEvents, false, false),
        ];
        for (tracked, final_status, want) in cases {
            assert_eq!(
                is_stalled(final_status, tracked, now, ten_days),
                want,
                "{tracked:?} final={final_status}"
            );
        }
    }

    #[test]
    fn unknown_protection_is_never_guessed_but_delivery_still_completes() {
        // (facts, ends, source, auto completes, dispute until)
        type Want = (
            Option<&'static str>,
            ProtectionSource,
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: Vec<(&str, ProtectionFacts, Want)> = vec![
            (
                "nothing dates it",
                ProtectionFacts::default(),
                (None, ProtectionSource::Unknown, None, None),
            ),
            (
                "delivered only: unknown end, completes delivery + 5",
                ProtectionFacts {
                    delivered_on: Some(d("2026-11-20")),
                    ..Default::default()
                },
                (
                    None,
                    ProtectionSource::Unknown,
                    Some("2026-11-25"),
                    Some("2026-12-10"),
                ),
            ),
            (
                "closed without a date: dispute from the closing",
                ProtectionFacts {
                    completed_on: Some(d("2026-11-22")),
                    ..Default::default()
                },
                (None, ProtectionSource::Unknown, None, Some("2026-12-07")),
            ),
            (
                "an extension of an unknown end stays unknown",
                ProtectionFacts {
                    manual: vec![ManualProtection::Extend(10)],
                    ..Default::default()
                },
                (None, ProtectionSource::Unknown, None, None),
            ),
            (
                "a shipping date fills it in",
                ProtectionFacts {
                    shipped_on: Some(d("2026-11-01")),
                    ..Default::default()
                },
                (Some("2026-12-31"), ProtectionSource::Default, None, None),
            ),
        ];
        for (name, facts, want) in cases {
            let p = protection(&facts, 60);
            assert_eq!(
                (p.ends, p.source, p.auto_completes_on, p.dispute_until),
                (want.0.map(d), want.1, want.2.map(d), want.3.map(d)),
                "case: {name}"
            );
        }
    }
}
