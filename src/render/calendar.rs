//! The calendar feed (SPEC §9, RFC 5545): Buyer Protection deadlines as
//! all-day events that calendar apps subscribe to by URL
//! (`GET /calendar.ics`) and that `aliwatch calendar` prints. Pure: a
//! function of the status model and the rules.
//!
//! - One `VEVENT` per active order with a known `protection_ends`, on that
//!   day; and for `protection_ended` orders a second one on `dispute_until`
//!   (the last day to open a dispute).
//! - `UID`s are derived from the order id and the kind of deadline only
//!   (`protection-ends-ORDER@aliwatch`, `dispute-until-ORDER@aliwatch`),
//!   so they stay the same across requests, restarts and date changes (an
//!   extended protection moves the event, it does not add one).
//! - One `VALARM` per `protection.warn_before` threshold, at the digest's
//!   time of day on the day the warning email is due.
//! - The item titles (else the store, else the order id) are the
//!   `SUMMARY`; text values are escaped (`\`, `;`, `,`, newlines) and
//!   control characters dropped; every line is folded at 75 octets without
//!   splitting a UTF-8 character, and ends with CRLF.

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};

use super::email::{order_name, todo};
use crate::decide::notifications::local_today;
use crate::decide::Rules;
use crate::model::OrderState;
use crate::report::{OrderView, StatusReport};

/// The longest line in octets, CRLF not counted (RFC 5545 §3.1).
pub const FOLD_OCTETS: usize = 75;

/// How often subscribed calendars are asked to fetch the feed again.
pub const REFRESH: &str = "PT1H";

/// Which deadline an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// Buyer Protection ends (`protection_ends`).
    ProtectionEnds,
    /// The last day to open a dispute (`dispute_until`).
    DisputeUntil,
}

impl Deadline {
    fn uid_prefix(self) -> &'static str {
        match self {
            Deadline::ProtectionEnds => "protection-ends",
            Deadline::DisputeUntil => "dispute-until",
        }
    }
}

/// The stable `UID` of `order_id`'s `kind` event. Characters other than
/// ASCII letters, digits, `-` and `.` are written as `_XX` hex, so any
/// order id gives a valid, distinct UID.
pub fn event_uid(order_id: &str, kind: Deadline) -> String {
    let mut id = String::with_capacity(order_id.len());
    for b in order_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
            id.push(char::from(b));
        } else {
            id.push_str(&format!("_{b:02X}"));
        }
    }
    format!("{}-{id}@aliwatch", kind.uid_prefix())
}

/// Escapes a TEXT value (RFC 5545 §3.3.11): `\`, `;`, `,` and newlines;
/// other control and invisible format characters are dropped
/// ([`super::text::readable`]).
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // Bidi overrides and other invisible characters go (one cleaner for
    // every medium); CR LF become LF there, escaped below.
    let s = super::text::readable(&s.replace("\r\n", "\n").replace('\r', "\n"));
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds one content line (RFC 5545 §3.1): at most [`FOLD_OCTETS`] octets
/// per physical line, continuation lines start with one space (which
/// counts), a UTF-8 character is never split; every line ends in CRLF.
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3 + 2);
    let mut used = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if used + n > FOLD_OCTETS {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += n;
    }
    out.push_str("\r\n");
    out
}

fn date(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// The alarm trigger for a warning `days` before an all-day event: at
/// `at` (the digest's time of day) on that day, as a negative duration
/// from the event's start (midnight).
fn trigger(days: u32, at_minutes: i64) -> String {
    let total = i64::from(days) * 1440 - at_minutes;
    if total <= 0 {
        // The warning day's time of day is after midnight of the event:
        // the day itself at that time.
        let after = -total;
        return format!("PT{}H{}M", after / 60, after % 60);
    }
    let (d, rest) = (total / 1440, total % 1440);
    let (h, m) = (rest / 60, rest % 60);
    let mut s = format!("-P{d}D");
    if h > 0 || m > 0 {
        s.push('T');
        if h > 0 {
            s.push_str(&format!("{h}H"));
        }
        if m > 0 {
            s.push_str(&format!("{m}M"));
        }
    }
    if d == 0 {
        s = s.replacen("P0D", "P", 1);
    }
    s
}

/// One event's lines (unfolded).
fn event(
    lines: &mut Vec<String>,
    o: &OrderView,
    kind: Deadline,
    day: NaiveDate,
    stamp: &str,
    rules: &Rules,
    today: NaiveDate,
) {
    let name = order_name(o, 200);
    let summary = match kind {
        Deadline::ProtectionEnds => format!("Buyer Protection ends: {name}"),
        Deadline::DisputeUntil => format!("Last day to dispute: {name}"),
    };
    let mut description = Vec::new();
    description.push(format!("AliExpress order {}", o.order_id));
    match kind {
        Deadline::ProtectionEnds => description.push(
            "If it has not arrived or is not right: ask the seller to extend Buyer Protection (then: aliwatch protection ORDER --extend DAYS), or open a dispute before this day."
                .to_string(),
        ),
        Deadline::DisputeUntil => description.push(
            "Protection ended without delivery: open a dispute on AliExpress by this day to get a refund."
                .to_string(),
        ),
    }
    for a in &o.needs_action {
        description.push(format!("Now: {}", todo(a, o, today, rules.timezone)));
    }
    for p in &o.parcels {
        description.push(format!(
            "Parcel {}: {} ({})",
            p.tracking_number,
            p.status.words(),
            p.tracking_url
        ));
    }
    description.push(o.url.clone());
    lines.push("BEGIN:VEVENT".into());
    lines.push(format!("UID:{}", event_uid(&o.order_id, kind)));
    lines.push(format!("DTSTAMP:{stamp}"));
    lines.push(format!("DTSTART;VALUE=DATE:{}", date(day)));
    lines.push(format!(
        "DTEND;VALUE=DATE:{}",
        date(day + Duration::days(1))
    ));
    lines.push(format!("SUMMARY:{}", escape_text(&summary)));
    lines.push(format!(
        "DESCRIPTION:{}",
        escape_text(&description.join("\n"))
    ));
    // The order page: built by aliwatch from the order id, never taken
    // from an email.
    if o.url.starts_with("https://") && !o.url.contains(char::is_whitespace) {
        lines.push(format!("URL:{}", o.url));
    }
    lines.push("TRANSP:TRANSPARENT".into());
    lines.push("CATEGORIES:AliExpress".into());
    let at = rules.digest.at;
    let at_minutes = i64::from(at.hour()) * 60 + i64::from(at.minute());
    for days in &rules.protection.warn_before_days {
        let what = match kind {
            Deadline::ProtectionEnds => "Buyer Protection ends",
            Deadline::DisputeUntil => "Last day to dispute",
        };
        let when = match days {
            1 => "tomorrow".to_string(),
            n => format!("in {n} days"),
        };
        lines.push("BEGIN:VALARM".into());
        lines.push("ACTION:DISPLAY".into());
        lines.push(format!("TRIGGER:{}", trigger(*days, at_minutes)));
        lines.push(format!(
            "DESCRIPTION:{}",
            escape_text(&format!("{what} {when}: {name}"))
        ));
        lines.push("END:VALARM".into());
    }
    lines.push("END:VEVENT".into());
}

/// The deadlines of `report` as an iCalendar document.
pub fn render_calendar(report: &StatusReport, rules: &Rules, now: DateTime<Utc>) -> String {
    let today = local_today(now, rules.timezone);
    let stamp = report.generated_at.format("%Y%m%dT%H%M%SZ").to_string();
    let mut lines: Vec<String> = vec![
        "BEGIN:VCALENDAR".into(),
        "VERSION:2.0".into(),
        format!(
            "PRODID:-//aliwatch//aliwatch {}//EN",
            env!("CARGO_PKG_VERSION")
        ),
        "CALSCALE:GREGORIAN".into(),
        "METHOD:PUBLISH".into(),
        "X-WR-CALNAME:AliExpress deadlines (aliwatch)".into(),
        format!("X-WR-TIMEZONE:{}", rules.timezone.name()),
        format!("REFRESH-INTERVAL;VALUE=DURATION:{REFRESH}"),
        format!("X-PUBLISHED-TTL:{REFRESH}"),
    ];
    let mut orders: Vec<&OrderView> = report.orders.iter().filter(|o| o.is_active()).collect();
    orders.sort_by(|a, b| (a.protection_ends, &a.order_id).cmp(&(b.protection_ends, &b.order_id)));
    for o in orders {
        if let Some(ends) = o.protection_ends {
            event(
                &mut lines,
                o,
                Deadline::ProtectionEnds,
                ends,
                &stamp,
                rules,
                today,
            );
        }
        if o.state == OrderState::ProtectionEnded {
            if let Some(until) = o.dispute_until {
                event(
                    &mut lines,
                    o,
                    Deadline::DisputeUntil,
                    until,
                    &stamp,
                    rules,
                    today,
                );
            }
        }
    }
    lines.push("END:VCALENDAR".into());
    lines.iter().map(|l| fold(l)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Item, ParcelStatus};
    use crate::report::ParcelView;

    fn rules() -> Rules {
        let mut r = Rules {
            timezone: chrono_tz::UTC,
            ..Rules::default()
        };
        r.protection.warn_before_days = vec![7, 2];
        r.digest.at = chrono::NaiveTime::from_hms_opt(8, 0, 0).expect("valid");
        r
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn order(id: &str, state: OrderState, ends: Option<&str>, until: Option<&str>) -> OrderView {
        OrderView {
            shipped_at: Some(d("2026-01-01")),
            protection_ends: ends.map(d),
            dispute_until: until.map(d),
            items: vec![Item {
                quantity: Some(2),
                ..Item::titled("USB-C cable, 2 m; braided \\ black")
            }],
            url: crate::decide::orders::order_url(id),
            parcels: vec![ParcelView {
                tracking_url: "https://t.17track.net/en#nums=LP00123456789012".into(),
                ..ParcelView::sample("LP00123456789012", ParcelStatus::InTransit)
            }],
            ..OrderView::sample(id, state)
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-02-10T12:00:00Z")
            .expect("valid")
            .with_timezone(&Utc)
    }

    fn report(orders: Vec<OrderView>) -> StatusReport {
        StatusReport {
            generated_at: now(),
            orders,
            unassigned_parcels: vec![],
            notices: vec![],
        }
    }

    /// Unfolds a feed into its content lines.
    fn unfold(s: &str) -> Vec<String> {
        s.replace("\r\n ", "")
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn text_escaping_covers_backslash_semicolon_comma_and_newlines() {
        let cases = [
            ("plain", "plain"),
            ("a,b", "a\\,b"),
            ("a;b", "a\\;b"),
            ("a\\b", "a\\\\b"),
            ("a\nb", "a\\nb"),
            ("a\r\nb", "a\\nb"),
            ("a\rb", "a\\nb"),
            // a control character keeps the words apart (text::readable)
            ("bell\u{7}tab\t", "bell tab"),
            ("Ünïcødé 😀", "Ünïcødé 😀"),
        ];
        for (input, want) in cases {
            assert_eq!(escape_text(input), want, "{input:?}");
        }
    }

    #[test]
    fn folding_keeps_lines_within_75_octets_and_never_splits_a_character() {
        for line in [
            "SUMMARY:".to_string() + &"x".repeat(200),
            "SUMMARY:".to_string() + &"ü".repeat(100),
            "SUMMARY:".to_string() + &"😀".repeat(60),
            "SHORT:ok".to_string(),
            "X:".to_string() + &"a".repeat(73),
        ] {
            let folded = fold(&line);
            assert!(folded.ends_with("\r\n"));
            for physical in folded.trim_end_matches("\r\n").split("\r\n") {
                assert!(physical.len() <= FOLD_OCTETS, "{physical:?}");
            }
            assert_eq!(folded.replace("\r\n ", "").trim_end_matches("\r\n"), line);
        }
        assert_eq!(
            fold(&("X:".to_string() + &"a".repeat(73)))
                .matches("\r\n")
                .count(),
            1
        );
    }

    #[test]
    fn uids_depend_on_order_and_kind_only() {
        assert_eq!(
            event_uid("8123456789012345", Deadline::ProtectionEnds),
            "protection-ends-8123456789012345@aliwatch"
        );
        assert_eq!(
            event_uid("8123456789012345", Deadline::DisputeUntil),
            "dispute-until-8123456789012345@aliwatch"
        );
        assert_eq!(
            event_uid("a b@c", Deadline::ProtectionEnds),
            "protection-ends-a_20b_40c@aliwatch"
        );
        // A different date gives the same UID.
        let a = render_calendar(
            &report(vec![order(
                "1",
                OrderState::Shipped,
                Some("2026-03-01"),
                None,
            )]),
            &rules(),
            now(),
        );
        let b = render_calendar(
            &report(vec![order(
                "1",
                OrderState::Shipped,
                Some("2026-04-01"),
                None,
            )]),
            &rules(),
            now(),
        );
        let uid = |s: &str| {
            unfold(s)
                .into_iter()
                .filter(|l| l.starts_with("UID:"))
                .collect::<Vec<_>>()
        };
        assert_eq!(uid(&a), uid(&b));
    }

    #[test]
    fn alarm_triggers_fire_at_the_digest_time_on_the_warning_day() {
        let cases = [
            (7, 8 * 60, "-P6DT16H"),
            (2, 8 * 60, "-P1DT16H"),
            (1, 8 * 60, "-PT16H"),
            (7, 0, "-P7D"),
            (3, 8 * 60 + 30, "-P2DT15H30M"),
        ];
        for (days, at, want) in cases {
            assert_eq!(trigger(days, at), want, "{days}d at {at}");
        }
    }

    #[test]
    fn one_event_per_active_deadline_with_alarms_and_none_for_completed_orders() {
        let r = report(vec![
            order("1001", OrderState::Shipped, Some("2026-03-01"), None),
            order(
                "1002",
                OrderState::ProtectionEnded,
                Some("2026-02-05"),
                Some("2026-02-20"),
            ),
            order(
                "1003",
                OrderState::Completed,
                Some("2026-01-05"),
                Some("2026-01-20"),
            ),
            order("1004", OrderState::AwaitingShipment, None, None),
        ]);
        let feed = render_calendar(&r, &rules(), now());
        assert!(feed.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(feed.ends_with("END:VCALENDAR\r\n"));
        assert!(
            !feed.replace("\r\n", "").contains('\n'),
            "bare LF in the feed"
        );
        let lines = unfold(&feed);
        let uids: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("UID:"))
            .collect();
        assert_eq!(
            uids,
            [
                "protection-ends-1002@aliwatch",
                "dispute-until-1002@aliwatch",
                "protection-ends-1001@aliwatch"
            ]
        );
        assert!(lines.contains(&"DTSTART;VALUE=DATE:20260301".to_string()));
        assert!(lines.contains(&"DTEND;VALUE=DATE:20260302".to_string()));
        assert!(lines.contains(&"DTSTART;VALUE=DATE:20260220".to_string()));
        assert_eq!(lines.iter().filter(|l| *l == "BEGIN:VALARM").count(), 6);
        assert_eq!(lines.iter().filter(|l| *l == "TRIGGER:-P6DT16H").count(), 3);
        assert!(lines.contains(
            &"SUMMARY:Buyer Protection ends: USB-C cable\\, 2 m\\; braided \\\\ black ×2"
                .to_string()
        ));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("SUMMARY:Last day to dispute: USB-C")));
        assert!(lines.contains(&"DTSTAMP:20260210T120000Z".to_string()));
        assert!(lines.contains(
            &"URL:https://www.aliexpress.com/p/order/detail.html?orderId=1001".to_string()
        ));
    }

    #[test]
    fn hostile_titles_cannot_break_out_of_their_property() {
        let mut o = order("1001", OrderState::Shipped, Some("2026-03-01"), None);
        o.items[0].title = "x\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:evil".into();
        let feed = render_calendar(&report(vec![o]), &rules(), now());
        let lines = unfold(&feed);
        assert_eq!(lines.iter().filter(|l| *l == "BEGIN:VEVENT").count(), 1);
        assert!(!lines.iter().any(|l| l == "UID:evil"));
    }

    #[test]
    fn an_empty_report_is_a_valid_empty_calendar() {
        let feed = render_calendar(&report(vec![]), &rules(), now());
        let lines = unfold(&feed);
        assert_eq!(lines.first().map(String::as_str), Some("BEGIN:VCALENDAR"));
        assert_eq!(lines.last().map(String::as_str), Some("END:VCALENDAR"));
        assert!(!feed.contains("VEVENT"));
    }
}
