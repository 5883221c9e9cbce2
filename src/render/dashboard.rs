//! The dashboard (`GET /`, SPEC §9): one server-rendered HTML page with
//! what the digest says — orders that need action first, each with the one
//! thing to do and its date, then every other active order in one line,
//! parcels without an order — plus the orders completed in the last
//! [`COMPLETED_DAYS`] days. Pure: a function of the status model, "now"
//! and the rules.
//!
//! It reuses the digest's pieces (`email.rs`: the sections, the cards, the
//! lines, the style sheet with its `prefers-color-scheme: dark` variant),
//! so the page and the digest say the same thing in the same words. No
//! JavaScript; the server's `Refresh` header reloads it. One column, at
//! most 760 px wide, readable from 320 px up. Everything from an email or
//! a provider goes through `esc`; links only go to aliwatch's own
//! AliExpress and tracking URLs.

use chrono::{DateTime, NaiveDate, Utc};

use super::email::{
    esc, fmt_date, html_sections, id_suffix, link, one_line, order_name, sections, summary, Medium,
    STYLE,
};
use crate::decide::lifecycle::completed_on;
use crate::decide::notifications::local_today;
use crate::decide::Rules;
use crate::model::CompletedReason;
use crate::report::{OrderView, StatusReport};

/// How far back the "Completed" section reaches.
pub const COMPLETED_DAYS: i64 = 60;

/// The page's additions to the digest's style sheet: a wider column, the
/// completed list dimmed, long tokens (tracking numbers, URLs) wrapped,
/// and the warning red readable in dark mode (the digest's inline colour
/// is for mail clients that drop `<style>`).
const PAGE_STYLE: &str = ".w{max-width:760px}body{overflow-wrap:anywhere}\
li{line-height:1.5}.d li{color:#475467}code{font-size:13px}\
.a form{display:inline-block;margin:4px 8px 4px 0}.a input{width:auto}\
@media (prefers-color-scheme:dark){.d li{color:#b0b3b8}.x{color:#fda29b!important}}";

fn completed_words(o: &OrderView) -> &'static str {
    match o.completed_reason {
        Some(CompletedReason::Confirmed) => "receipt confirmed",
        Some(CompletedReason::Closed) => "closed",
        Some(CompletedReason::Done) => "marked done",
        Some(CompletedReason::Auto) => "completed by AliExpress",
        Some(CompletedReason::Stale) => "no news for months",
        None => "completed",
    }
}

/// Whether and how the page offers its actions (the web face's writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actions<'a> {
    /// No actions (the digest-like page alone).
    Hidden,
    /// Writes need `[http] token_file`, which is not set: say so.
    NeedTokenFile,
    /// The page was opened without `?token=`, so its forms could not send
    /// it: say how to open it.
    NeedTokenInUrl,
    /// Forms that post to the writes with this token in their URL.
    With { token: &'a str },
}

/// The dashboard page without actions.
pub fn render_dashboard(report: &StatusReport, rules: &Rules, now: DateTime<Utc>) -> String {
    render_dashboard_page(report, rules, now, &Actions::Hidden)
}

/// The actions section: per active order, "Received", "Extend protection"
/// and "Add a tracking number", each a plain form (no script) posting to
/// the web face's writes.
fn actions_section(h: &mut String, report: &StatusReport, actions: &Actions<'_>) {
    let active: Vec<&OrderView> = report.orders.iter().filter(|o| o.is_active()).collect();
    if active.is_empty() || *actions == Actions::Hidden {
        return;
    }
    h.push_str("<h2>Act on an order</h2>\n");
    let token = match actions {
        Actions::With { token } => *token,
        Actions::NeedTokenFile => {
            h.push_str("<p class=\"m\">To mark orders received, record an extension or add a tracking number here, set <code>token_file</code> in <code>[http]</code>: writes always need the token.</p>\n");
            return;
        }
        _ => {
            h.push_str("<p class=\"m\">Open this page with <code>?token=…</code> to use its buttons (writes need the token in the address).</p>\n");
            return;
        }
    };
    let q = super::text::percent_encode(token);
    h.push_str("<ul class=\"a\">\n");
    for o in active {
        let base = format!("/api/orders/{}", super::text::percent_encode(&o.order_id));
        h.push_str(&format!(
            "<li><strong>{}</strong><span class=\"m\">{}</span><br>\
             <form method=\"post\" action=\"{base}/done?token={q}\"><button>Received</button></form> \
             <form method=\"post\" action=\"{base}/protection?token={q}\"><input name=\"extend_days\" type=\"number\" min=\"1\" max=\"365\" value=\"15\" aria-label=\"days\"> <button>Extend protection</button></form> \
             <form method=\"post\" action=\"{base}/parcels?token={q}\"><input name=\"tracking_number\" size=\"18\" placeholder=\"tracking number\" aria-label=\"tracking number\"> <button>Add</button></form></li>\n",
            esc(&order_name(o, 80)),
            esc(&id_suffix(o)),
        ));
    }
    h.push_str("</ul>\n");
}

/// The dashboard page, with its actions as `actions` says.
pub fn render_dashboard_page(
    report: &StatusReport,
    rules: &Rules,
    now: DateTime<Utc>,
    actions: &Actions<'_>,
) -> String {
    let tz = rules.timezone;
    let today = local_today(now, tz);
    let s = sections(report, now);
    let summary = summary(&s);
    let mut completed: Vec<(NaiveDate, &OrderView)> = report
        .orders
        .iter()
        .filter(|o| !o.is_active())
        .filter_map(|o| completed_on(o, tz).map(|d| (d, o)))
        .filter(|(d, _)| (today - *d).num_days() <= COMPLETED_DAYS)
        .collect();
    completed.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.order_id.cmp(&b.1.order_id)));

    let title = if s.action.is_empty() {
        "aliwatch".to_string()
    } else {
        format!("aliwatch: {} need action", s.action.len())
    };
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{}</title>\n<style>{STYLE}{PAGE_STYLE}</style>\n</head>\n<body>\n<main class=\"w\">\n",
        esc(&title)
    );
    h.push_str(&format!(
        "<h1>Your AliExpress orders</h1>\n<p class=\"m\">{} · <strong>{}</strong> · updated {}</p>\n",
        esc(&today.format("%A, %-d %B %Y").to_string()),
        esc(&summary),
        esc(&now.with_timezone(&tz).format("%H:%M").to_string())
    ));
    html_sections(&mut h, report, &s, today, tz, Medium::Page);
    actions_section(&mut h, report, actions);
    if !completed.is_empty() {
        h.push_str(&format!(
            "<h2>Completed in the last {COMPLETED_DAYS} days ({})</h2>\n<ul class=\"d\">\n",
            completed.len()
        ));
        for (day, o) in &completed {
            let parcels: Vec<String> = o
                .parcels
                .iter()
                .map(|p| link(&one_line(&p.tracking_number), &p.tracking_url))
                .collect();
            let parcels = if parcels.is_empty() {
                String::new()
            } else {
                format!(" · {}", parcels.join(", "))
            };
            let dispute = o
                .dispute_until
                .filter(|d| *d >= today)
                .map(|d| format!(" · dispute possible until {}", fmt_date(d)))
                .unwrap_or_default();
            h.push_str(&format!(
                "<li>{} — {} {}{}<span class=\"m\">{}{parcels}</span></li>\n",
                link(&order_name(o, 120), &o.url),
                completed_words(o),
                esc(&fmt_date(*day)),
                esc(&dispute),
                esc(&id_suffix(o))
            ));
        }
        h.push_str("</ul>\n");
    }
    h.push_str(&format!(
        "<p class=\"f\">aliwatch {} · times are in {} · this page reloads every 5 minutes · the same data: <code>/api/status</code>, deadlines for your calendar: <code>/calendar.ics</code></p>\n</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(tz.name())
    ));
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ActionReason, Item, OrderState, ParcelStatus};
    use crate::report::{ActionNeeded, ParcelView};

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-02-10T12:00:00Z")
            .expect("valid")
            .with_timezone(&Utc)
    }

    fn order(id: &str, state: OrderState, title: &str) -> OrderView {
        OrderView {
            confirmed_at: Some(d("2026-01-01")),
            shipped_at: Some(d("2026-01-03")),
            protection_ends: Some(d("2026-03-04")),
            protection_days_left: Some(22),
            items: vec![Item::titled(title)],
            url: crate::decide::orders::order_url(id),
            parcels: vec![ParcelView {
                tracking_url: format!("https://t.17track.net/en#nums=LP{id}"),
                ..ParcelView::sample(&format!("LP{id}"), ParcelStatus::InTransit)
            }],
            ..OrderView::sample(id, state)
        }
    }

    fn rules() -> Rules {
        Rules {
            timezone: chrono_tz::UTC,
            ..Rules::default()
        }
    }

    fn page(orders: Vec<OrderView>) -> String {
        let report = StatusReport {
            generated_at: now(),
            orders,
            unassigned_parcels: vec![],
            notices: vec![],
        };
        render_dashboard(&report, &rules(), now())
    }

    #[test]
    fn needs_action_comes_first_with_the_thing_to_do_and_its_date() {
        let mut urgent = order("1002", OrderState::Shipped, "Phone case");
        urgent.protection_ends = Some(d("2026-02-12"));
        urgent.protection_days_left = Some(2);
        urgent.needs_action = vec![ActionNeeded {
            reason: ActionReason::ProtectionEnding,
            by: Some(d("2026-02-12")),
            tracking_number: None,
        }];
        let h = page(vec![
            order("1001", OrderState::Shipped, "USB-C cable"),
            urgent,
        ]);
        let action = h.find("Needs your action (1)").expect("action section");
        let transit = h.find("In transit (1)").expect("transit section");
        assert!(action < transit);
        assert!(h.find("Phone case").expect("urgent order") < transit);
        assert!(h.contains("Protection ends in 2 days (2026-02-12)"), "{h}");
        assert!(h.contains("href=\"https://www.aliexpress.com/p/order/detail.html?orderId=1002\""));
        assert!(h.contains("href=\"https://t.17track.net/en#nums=LP1001\""));
        assert!(h.contains("prefers-color-scheme:dark"));
        assert!(h.contains("width=device-width"));
        assert!(!h.contains("<script"));
    }

    #[test]
    fn completed_orders_of_the_last_60_days_are_listed_newest_first() {
        let mut recent = order("2001", OrderState::Completed, "Recent lamp");
        recent.completed_reason = Some(CompletedReason::Auto);
        recent.dispute_until = Some(d("2026-02-20")); // completed 2026-02-05
        let mut older = order("2002", OrderState::Completed, "Older mug");
        older.completed_reason = Some(CompletedReason::Confirmed);
        older.shipped_at = Some(d("2026-01-01"));
        let mut ancient = order("2003", OrderState::Completed, "Ancient sock");
        ancient.completed_reason = Some(CompletedReason::Done);
        ancient.shipped_at = Some(d("2025-10-01"));
        ancient.confirmed_at = Some(d("2025-09-28"));
        let h = page(vec![older, ancient, recent]);
        assert!(h.contains("Completed in the last 60 days (2)"), "{h}");
        let (a, b) = (
            h.find("Recent lamp").expect("recent"),
            h.find("Older mug").expect("older"),
        );
        assert!(a < b);
        assert!(!h.contains("Ancient sock"));
        assert!(
            h.contains("completed by AliExpress 2026-02-05 · dispute possible until 2026-02-20")
        );
    }

    #[test]
    fn text_from_emails_and_providers_is_escaped() {
        let mut o = order(
            "3001",
            OrderState::Shipped,
            "<script>alert(1)</script> & \"x\"",
        );
        o.store = Some("<img src=x onerror=alert(2)>".into());
        o.parcels[0].last_event = Some(crate::report::EventView {
            time: now(),
            description: "<b>arrived</b>".into(),
            location: Some("<i>hub</i>".into()),
        });
        o.parcels[0].tracking_url = "javascript:alert(3)".into();
        let h = page(vec![o]);
        assert!(!h.contains("<script>alert"), "{h}");
        assert!(!h.contains("<img src=x"));
        assert!(!h.contains("<b>arrived"));
        assert!(!h.contains("javascript:"));
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"));
    }

    /// Bidi controls (a "Trojan Source" U+202E that makes "Delivered" read
    /// backwards) and other invisible format characters from emails and
    /// providers reach no medium: dashboard, digest (text and HTML),
    /// `status`, calendar, push.
    #[test]
    fn bidi_controls_from_emails_never_reach_a_reader() {
        let hidden = [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}', '\u{200B}', '\u{FEFF}',
        ];
        let evil: String = hidden.iter().map(|c| format!("Phone{c}case ")).collect();
        let mut o = order("3002", OrderState::Shipped, &evil);
        o.store = Some("Shop\u{202E}pohS".to_string());
        o.parcels[0].last_event = Some(crate::report::EventView {
            time: now(),
            description: "\u{202E}deliver\u{2066}ed".to_string(),
            location: Some("hub\u{200F}\u{061C}".to_string()),
        });
        let report = StatusReport {
            generated_at: now(),
            orders: vec![o],
            unassigned_parcels: vec![],
            notices: vec![],
        };
        let digest = crate::render::render_digest(&report, &rules(), now());
        let push = crate::render::push::render_push(
            &crate::decide::notifications::Content::Digest,
            &report,
            &rules(),
            now(),
        );
        let outputs = [
            ("dashboard", render_dashboard(&report, &rules(), now())),
            ("digest text", digest.text.clone()),
            ("digest html", digest.html.clone()),
            (
                "status",
                crate::render::render_status_table(
                    &report,
                    &rules(),
                    crate::render::status::Layout::Wide,
                ),
            ),
            (
                "calendar",
                crate::render::render_calendar(&report, &rules(), now()),
            ),
            ("push", format!("{}\n{}", push.title, push.message)),
        ];
        for (what, text) in outputs {
            for c in hidden {
                assert!(
                    !text.contains(c),
                    "{what} shows U+{:04X}:\n{text}",
                    c as u32
                );
            }
        }
    }
}
