//! What a push event says (ntfy, webhooks; SPEC §8): a pure function of
//! the notification's content, the status model, "now" and the rules,
//! giving a one-line title, a short plain-text message that names the item
//! and the date that matters, ntfy's priority and tags, and the link. The
//! wording of "what to do" is the digest's own ([`super::email::todo`]),
//! so every channel says the same thing on the same day.
//!
//! Everything that came from an email or a provider passes through
//! [`one_line`] (no line breaks or control characters, so it cannot forge
//! a header), titles are at most [`TITLE_COLUMNS`] columns and messages at
//! most [`MAX_MESSAGE_BYTES`] bytes (below ntfy's 4096-byte limit, beyond
//! which ntfy turns a message into an attachment).

use chrono::{DateTime, Utc};

use super::email::{
    digest_headline, fmt_date, fmt_local, in_days, one_line, order_name, plural, safe_url, todo,
};
use super::text::shorten;
use crate::decide::notifications::{days_left, local_today, Content};
use crate::decide::Rules;
use crate::model::{ActionReason, EventKind};
use crate::report::{OrderView, ParcelView, StatusReport};

/// The widest title (display columns).
pub const TITLE_COLUMNS: usize = 120;
/// The longest message (bytes).
pub const MAX_MESSAGE_BYTES: usize = 3500;
/// Orders listed by name in the short digest.
const DIGEST_LINES: usize = 10;

/// One push event, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct PushMessage<'r> {
    pub event: EventKind,
    pub title: String,
    pub message: String,
    /// ntfy `Priority: high` (protection warnings and `protection_ended`).
    pub high: bool,
    /// ntfy tags (emoji short codes).
    pub tags: Vec<&'static str>,
    /// The order's AliExpress page, else the parcel's tracking page.
    pub url: Option<String>,
    pub order: Option<&'r OrderView>,
    pub tracking_number: Option<String>,
}

/// Renders `content` (see the module docs).
pub fn render_push<'r>(
    content: &Content<'r>,
    report: &'r StatusReport,
    rules: &Rules,
    now: DateTime<Utc>,
) -> PushMessage<'r> {
    let tz = rules.timezone;
    let today = local_today(now, tz);
    let mut m = match content {
        Content::Warning { order, .. } => warning(order, rules, now),
        Content::Warnings(list) => {
            let mut sorted: Vec<&OrderView> = list.iter().map(|(o, _)| *o).collect();
            sorted.sort_by_key(|o| (o.protection_ends, o.order_id.clone()));
            match sorted.as_slice() {
                [one] => warning(one, rules, now),
                _ => {
                    let lines: Vec<String> = sorted
                        .iter()
                        .map(|o| format!("• {}", warning(o, rules, now).message))
                        .collect();
                    PushMessage {
                        event: EventKind::ProtectionWarning,
                        title: format!("Buyer Protection ends soon for {} orders", sorted.len()),
                        message: lines.join("\n"),
                        high: true,
                        tags: vec!["warning"],
                        url: None,
                        order: None,
                        tracking_number: None,
                    }
                }
            }
        }
        Content::Action { order, need } => {
            let name = order_name(order, 60);
            PushMessage {
                event: EventKind::ActionNeeded,
                title: format!("{}: {name}", reason_words(need.reason)),
                message: format!(
                    "{name} (order {}): {}.",
                    one_line(&order.order_id),
                    todo(need, order, today, tz)
                ),
                high: need.reason == ActionReason::ProtectionEnded,
                tags: vec![reason_tag(need.reason)],
                url: order_url(order),
                order: Some(order),
                tracking_number: need.tracking_number.clone(),
            }
        }
        Content::Parcel {
            event,
            order,
            parcel,
        } => parcel_event(*event, *order, parcel, rules, now),
        Content::Digest => digest(report, rules, now),
    };
    m.title = shorten(&one_line(&m.title), TITLE_COLUMNS);
    m.message = cut_bytes(&super::text::readable(&m.message), MAX_MESSAGE_BYTES);
    m
}

fn order_url(o: &OrderView) -> Option<String> {
    safe_url(&o.url).map(str::to_owned)
}

fn warning<'r>(order: &'r OrderView, rules: &Rules, now: DateTime<Utc>) -> PushMessage<'r> {
    let left = days_left(order, now, rules.timezone).unwrap_or(0);
    let ends = order
        .protection_ends
        .map(fmt_date)
        .unwrap_or_else(|| "an unknown date".into());
    let name = order_name(order, 60);
    PushMessage {
        event: EventKind::ProtectionWarning,
        title: format!("Buyer Protection ends {}: {name}", in_days(left)),
        message: format!(
            "{name} (order {}): Buyer Protection ends on {ends} ({}). If it has not arrived or is not right, ask the seller to extend protection or open a dispute before then.",
            one_line(&order.order_id),
            match left {
                0 => "today".to_string(),
                n => format!("{} left", plural(n, "day")),
            }
        ),
        high: true,
        tags: vec!["warning"],
        url: order_url(order),
        order: Some(order),
        tracking_number: None,
    }
}

fn parcel_event<'r>(
    event: EventKind,
    order: Option<&'r OrderView>,
    parcel: &ParcelView,
    rules: &Rules,
    now: DateTime<Utc>,
) -> PushMessage<'r> {
    let tz = rules.timezone;
    let number = one_line(&parcel.tracking_number);
    let name = order.map_or_else(|| format!("Parcel {number}"), |o| order_name(o, 60));
    let url = order
        .and_then(order_url)
        .or_else(|| safe_url(&parcel.tracking_url).map(str::to_owned));
    let (title, message, tags) = if event == EventKind::OutForDelivery {
        let last = parcel
            .last_event
            .as_ref()
            .map(|e| format!(" ({}, {})", one_line(&e.description), fmt_local(e.time, tz)))
            .unwrap_or_default();
        (
            format!("Out for delivery: {name}"),
            format!("{name}: parcel {number} is out for delivery{last}."),
            vec!["truck"],
        )
    } else {
        let when = parcel
            .delivered_at
            .or(parcel.last_event.as_ref().map(|e| e.time))
            .map(|t| format!(" on {}", fmt_local(t, tz)))
            .unwrap_or_default();
        let next = order
            .and_then(|o| o.auto_completes_on)
            .filter(|d| *d >= local_today(now, tz))
            .map(|d| {
                format!(
                    " Check it, then confirm receipt, or open a dispute by {} (AliExpress confirms the order by itself then).",
                    fmt_date(d)
                )
            })
            .unwrap_or_default();
        (
            format!("Delivered: {name}"),
            format!("{name}: parcel {number} was delivered{when}.{next}"),
            vec!["package"],
        )
    };
    PushMessage {
        event,
        title,
        message,
        high: false,
        tags,
        url,
        order,
        tracking_number: Some(parcel.tracking_number.clone()),
    }
}

fn digest<'r>(report: &'r StatusReport, rules: &Rules, now: DateTime<Utc>) -> PushMessage<'r> {
    let today = local_today(now, rules.timezone);
    let (summary, action) = digest_headline(report, now);
    let mut lines: Vec<String> = action
        .iter()
        .take(DIGEST_LINES)
        .map(|o| {
            let first = o
                .needs_action
                .first()
                .map(|a| todo(a, o, today, rules.timezone))
                .unwrap_or_default();
            format!("• {}: {first}", order_name(o, 40))
        })
        .collect();
    if action.len() > DIGEST_LINES {
        lines.push(format!("+ {} more", action.len() - DIGEST_LINES));
    }
    if lines.is_empty() {
        lines.push("Nothing needs you today.".into());
    }
    PushMessage {
        event: EventKind::Digest,
        title: format!("aliwatch: {summary}"),
        message: lines.join("\n"),
        high: false,
        tags: vec!["memo"],
        url: None,
        order: None,
        tracking_number: None,
    }
}

/// A reason in a few words, for a title.
pub fn reason_words(r: ActionReason) -> &'static str {
    match r {
        ActionReason::ProtectionEnding => "Protection ending",
        ActionReason::ProtectionEnded => "Protection ended, not delivered",
        ActionReason::DeliveryFailed => "Delivery failed",
        ActionReason::ReadyForPickup => "Ready for pickup",
        ActionReason::CustomsHold => "Held at customs",
        ActionReason::Exception => "Carrier reports a problem",
        ActionReason::Returning => "Going back to the seller",
        ActionReason::Stalled => "No tracking news",
        ActionReason::DeliveredNotConfirmed => "Delivered, not confirmed",
    }
}

fn reason_tag(r: ActionReason) -> &'static str {
    match r {
        ActionReason::ProtectionEnding | ActionReason::ProtectionEnded => "warning",
        ActionReason::ReadyForPickup => "package",
        ActionReason::DeliveredNotConfirmed => "white_check_mark",
        _ => "exclamation",
    }
}

/// `s` cut to at most `max` bytes at a character boundary, an ellipsis
/// marking the cut.
fn cut_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Item, OrderState, ParcelStatus};
    use crate::report::{ActionNeeded, EventView};
    use chrono::NaiveDate;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn rules() -> Rules {
        Rules {
            timezone: chrono_tz::Europe::Berlin,
            ..Rules::default()
        }
    }

    fn parcel(status: ParcelStatus) -> ParcelView {
        ParcelView {
            tracking_url: "https://t.17track.net/en#nums=LP00527423524449".into(),
            last_event: Some(EventView {
                time: utc("2026-11-28T07:30:00Z"),
                description: "Out for delivery\r\nX-Evil: 1".into(),
                location: None,
            }),
            ..ParcelView::sample("LP00527423524449", status)
        }
    }

    fn order(title: &str) -> OrderView {
        OrderView {
            shipped_at: Some(date("2026-10-04")),
            protection_ends: Some(date("2026-12-03")),
            protection_days_left: Some(5),
            items: vec![Item::titled(title)],
            url: "https://www.aliexpress.com/p/order/detail.html?orderId=8123456789012345".into(),
            needs_action: vec![ActionNeeded {
                reason: ActionReason::CustomsHold,
                by: None,
                tracking_number: Some("LP00527423524449".into()),
            }],
            parcels: vec![parcel(ParcelStatus::CustomsHold)],
            ..OrderView::sample("8123456789012345", OrderState::Shipped)
        }
    }

    fn report(o: OrderView) -> StatusReport {
        StatusReport {
            generated_at: utc("2026-11-28T09:00:00Z"),
            orders: vec![o],
            unassigned_parcels: vec![],
            notices: vec![],
        }
    }

    #[test]
    fn a_warning_names_the_item_and_the_end_date_and_is_high() {
        let r = report(order("USB-C cable"));
        let m = render_push(
            &Content::Warning {
                order: &r.orders[0],
                threshold_days: 7,
            },
            &r,
            &rules(),
            utc("2026-11-28T09:00:00Z"),
        );
        assert_eq!(m.event, EventKind::ProtectionWarning);
        assert_eq!(m.title, "Buyer Protection ends in 5 days: USB-C cable");
        assert!(m.message.contains("USB-C cable (order 8123456789012345)"));
        assert!(m.message.contains("ends on 2026-12-03 (5 days left)"));
        assert!(m.high);
        assert_eq!(m.tags, ["warning"]);
        assert_eq!(m.url.as_deref(), Some(r.orders[0].url.as_str()));
    }

    #[test]
    fn action_needed_uses_the_digests_words_and_only_protection_ended_is_high() {
        let r = report(order("Phone case"));
        let o = &r.orders[0];
        let m = render_push(
            &Content::Action {
                order: o,
                need: &o.needs_action[0],
            },
            &r,
            &rules(),
            utc("2026-11-28T09:00:00Z"),
        );
        assert_eq!(m.title, "Held at customs: Phone case");
        assert!(m.message.contains("Contact customs about LP00527423524449"));
        assert!(!m.high);
        assert_eq!(m.tracking_number.as_deref(), Some("LP00527423524449"));
        let ended = ActionNeeded {
            reason: ActionReason::ProtectionEnded,
            by: Some(date("2026-12-18")),
            tracking_number: None,
        };
        let m = render_push(
            &Content::Action {
                order: o,
                need: &ended,
            },
            &r,
            &rules(),
            utc("2026-12-04T09:00:00Z"),
        );
        assert!(m.high);
        assert!(
            m.message.contains("Open a dispute by 2026-12-18"),
            "{}",
            m.message
        );
    }

    #[test]
    fn hostile_provider_text_cannot_break_a_title_or_a_line() {
        let mut o = order("Cable\r\nPriority: urgent");
        o.parcels[0] = parcel(ParcelStatus::OutForDelivery);
        let r = report(o);
        let m = render_push(
            &Content::Parcel {
                event: EventKind::OutForDelivery,
                order: Some(&r.orders[0]),
                parcel: &r.orders[0].parcels[0],
            },
            &r,
            &rules(),
            utc("2026-11-28T09:00:00Z"),
        );
        assert!(!m.title.contains('\n') && !m.title.contains('\r'));
        assert!(!m.message.contains('\r'));
        assert_eq!(m.title, "Out for delivery: Cable Priority: urgent");
        assert!(m
            .message
            .contains("(Out for delivery X-Evil: 1, 2026-11-28 08:30)"));
    }

    #[test]
    fn delivered_names_the_day_to_confirm_by() {
        let mut o = order("Lamp");
        o.state = OrderState::Delivered;
        o.auto_completes_on = Some(date("2026-12-02"));
        let mut p = parcel(ParcelStatus::Delivered);
        p.delivered_at = Some(utc("2026-11-27T12:00:00Z"));
        o.parcels[0] = p;
        let r = report(o);
        let m = render_push(
            &Content::Parcel {
                event: EventKind::Delivered,
                order: Some(&r.orders[0]),
                parcel: &r.orders[0].parcels[0],
            },
            &r,
            &rules(),
            utc("2026-11-28T09:00:00Z"),
        );
        assert_eq!(m.title, "Delivered: Lamp");
        assert!(m.message.contains("was delivered on 2026-11-27 13:00"));
        assert!(m.message.contains("open a dispute by 2026-12-02"));
    }

    #[test]
    fn the_short_digest_lists_what_needs_action_within_bounds() {
        let mut r = report(order("Cable"));
        for i in 0..20 {
            let mut o = order(&"x".repeat(400));
            o.order_id = format!("81234567890{i:05}");
            r.orders.push(o);
        }
        let m = render_push(&Content::Digest, &r, &rules(), utc("2026-11-28T09:00:00Z"));
        assert_eq!(m.title, "aliwatch: 21 need action");
        assert!(m.message.contains("+ 11 more"));
        assert!(m.message.len() <= MAX_MESSAGE_BYTES);
        assert_eq!(cut_bytes("ééé", 5), "é…");
    }
}
