//! How the digest and the protection warnings look: pure functions of the
//! status model, "now" and the rules, returning a subject, a text part and
//! an HTML part that say the same.
//!
//! - **The digest** says what to do first: orders that need action (the one
//!   list `decide::lifecycle` makes) each with the one thing to do and its
//!   date, then every other active order in one line ("USB-C cable ×2 — in
//!   transit, day 12, Cainiao"). Orders are named by their items, else
//!   their store; the order id is always there.
//! - **The text part** keeps to [`TEXT_COLUMNS`] columns, wrapping with
//!   hanging indents by display width (wide characters count two).
//! - **The HTML part** is one centred column with a small `<style>` block
//!   (short class names, a `prefers-color-scheme: dark` variant) and only a
//!   few inline styles, so a digest of 100 orders stays well under Gmail's
//!   ~102 KB clipping and stays readable where `<style>` is stripped (plain
//!   headings, lists and links). Every order links to its AliExpress page
//!   and every parcel to its tracking page.
//! - Everything that came from a received email or a tracking provider goes
//!   through [`esc`] in HTML and through [`one_line`] in text.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::text::{shorten, wrap};
use crate::decide::notifications::{days_left, local_today};
use crate::decide::Rules;
use crate::model::{ActionReason, OrderState, ProtectionSource, Provider};
use crate::report::{ActionNeeded, OrderView, ParcelView, StatusReport};

/// A rendered email, before headers are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The widest line of a text part (RFC 5322 §2.1.1 recommends 78
/// characters; 80 columns is the terminal everyone reads mail in).
pub const TEXT_COLUMNS: usize = 80;

/// How many columns an order's name takes in a one-line entry.
const TITLE_COLUMNS: usize = 44;

/// How long a completed order whose parcel was delivered stays in
/// "Recently delivered".
const RECENT_DELIVERY_DAYS: i64 = 7;

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let s = super::text::readable(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Removes line breaks, control and invisible format characters (bidi
/// overrides among them, see [`super::text::readable`]) from a value that
/// goes into a single text line or a header (a provider's description may
/// hold newlines; a header must not).
pub(crate) fn one_line(s: &str) -> String {
    super::text::readable(s)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn plural(n: i64, word: &str) -> String {
    if n == 1 || n == -1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// "today", "tomorrow", "in 5 days".
pub(crate) fn in_days(n: i64) -> String {
    match n {
        0 => "today".into(),
        1 => "tomorrow".into(),
        n if n < 0 => format!("{} ago", plural(-n, "day")),
        n => format!("in {}", plural(n, "day")),
    }
}

pub(crate) fn fmt_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The day of `t` in `tz`: a carrier event at 23:30 UTC is the next day
/// in Berlin, and the digest must not say both.
pub(crate) fn local_date(t: DateTime<Utc>, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// What the digest, the dashboard and `status` say for an active order
/// whose protection end nothing dates (SPEC §4 `protection_source`
/// `unknown`): never a guessed date.
pub const PROTECTION_UNKNOWN: &str = "protection end unknown: check the order page";

/// Whether the order's protection end is unknown while it matters: the
/// order is on its way (not awaiting shipment, where protection has not
/// started, nor delivered, where the completion date is what counts).
pub fn protection_unknown(o: &OrderView) -> bool {
    o.is_active()
        && o.protection_source == ProtectionSource::Unknown
        && matches!(o.state, OrderState::Shipped | OrderState::Disputed)
}

pub(crate) fn fmt_local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// Only `https` links to AliExpress and to the tracking providers' own
/// pages (each provider's module says which) go into an `href` (the values
/// are built by `decide::orders`, but a link is the one place where
/// escaping alone would not be enough).
pub(crate) fn safe_url(u: &str) -> Option<&str> {
    let ok = u.starts_with("https://www.aliexpress.com/") || Provider::is_tracking_page(u);
    ok.then_some(u)
}

/// What an order is, for people, at most `cols` columns: its items
/// ("USB-C cable ×2 + Phone case"), else its store, else its order id.
pub fn order_name(o: &OrderView, cols: usize) -> String {
    let name = if let Some(items) = items_name(o) {
        items
    } else if let Some(s) = &o.store {
        format!("{} order", one_line(s))
    } else {
        format!("Order {}", one_line(&o.order_id))
    };
    shorten(&name, cols)
}

/// The order's items in one line ("USB-C cable ×2 + Phone case"), if any
/// email named them.
pub(super) fn items_name(o: &OrderView) -> Option<String> {
    let items: Vec<String> = o
        .items
        .iter()
        .map(|i| match i.quantity {
            Some(q) if q > 1 => format!("{} ×{q}", one_line(&i.title)),
            _ => one_line(&i.title),
        })
        .collect();
    (!items.is_empty()).then(|| items.join(" + "))
}

/// Days since the order shipped (day 1 is the shipping day).
fn shipping_day(o: &OrderView, today: NaiveDate) -> Option<i64> {
    o.shipped_at.map(|s| (today - s).num_days() + 1)
}

/// The one thing to do about `a`, with its date (in `tz`, like every date
/// a person reads).
pub fn todo(a: &ActionNeeded, o: &OrderView, today: NaiveDate, tz: Tz) -> String {
    let by = a.by.map(fmt_date).unwrap_or_default();
    let n = a
        .tracking_number
        .as_deref()
        .map(one_line)
        .unwrap_or_default();
    let parcel = o
        .parcels
        .iter()
        .find(|p| Some(p.tracking_number.as_str()) == a.tracking_number.as_deref());
    let dispute_by = o
        .protection_ends
        .filter(|e| *e >= today)
        .map(|e| format!(" by {}", fmt_date(e)))
        .unwrap_or_default();
    match a.reason {
        ActionReason::ProtectionEnded => format!(
            "Open a dispute by {by} — the parcel never arrived (protection ended {})",
            o.protection_ends.map(fmt_date).unwrap_or_default()
        ),
        ActionReason::ProtectionEnding => {
            let left = a.by.map(|d| (d - today).num_days()).unwrap_or(0);
            format!(
                "Protection ends {} ({by}): ask the seller to extend it, or open a dispute by then if it has not arrived",
                in_days(left)
            )
        }
        ActionReason::DeliveredNotConfirmed => format!(
            "Confirm receipt or dispute by {by} — delivered; AliExpress confirms it by itself then"
        ),
        ActionReason::ReadyForPickup => {
            let place = parcel
                .and_then(|p| p.last_event.as_ref())
                .and_then(|e| e.location.as_deref())
                .map(|l| format!(" at {}", one_line(l)))
                .unwrap_or_default();
            format!("Pick up parcel {n}{place} — it is waiting for you")
        }
        ActionReason::DeliveryFailed => {
            format!("Arrange a new delivery of {n} with the carrier — the attempt failed")
        }
        ActionReason::CustomsHold => {
            format!("Contact customs about {n} — it is held (look for a letter or a fee to pay)")
        }
        ActionReason::Exception => {
            format!("Check {n} on its tracking page — the carrier reports a problem")
        }
        ActionReason::Returning => {
            format!("Ask the seller about {n}, or open a dispute{dispute_by} — it is going back")
        }
        ActionReason::Stalled => {
            let quiet = parcel
                .and_then(|p| p.last_event.as_ref())
                .map(|e| format!(" since {}", fmt_date(local_date(e.time, tz))))
                .unwrap_or_default();
            format!(
                "Ask the seller about {n}, or open a dispute{dispute_by} — no tracking news{quiet}"
            )
        }
    }
}

/// The expected delivery window in words.
fn eta_words(p: &ParcelView) -> Option<String> {
    let eta = p.eta?;
    Some(if eta.from == eta.to {
        format!("expected {}", fmt_date(eta.from))
    } else {
        format!("expected {} – {}", fmt_date(eta.from), fmt_date(eta.to))
    })
}

/// The one line of an order that needs nothing: its status in words, the
/// shipping day, the carrier and the expected delivery, each parcel's
/// latest event, the protection end (text: with the order page's link
/// where it is unknown; HTML adds the link itself).
fn status_line(o: &OrderView, today: NaiveDate, tz: Tz, text: bool) -> String {
    let mut parts: Vec<String> = Vec::new();
    let p = o.parcels.first();
    let mut head = match (o.state, p) {
        (OrderState::AwaitingShipment, _) => "not shipped yet".to_string(),
        (OrderState::Disputed, _) => "dispute open".to_string(),
        (_, Some(p)) => p.status.words().to_string(),
        (_, None) => "shipped, no tracking number yet".to_string(),
    };
    if let Some(d) = shipping_day(o, today).filter(|_| o.state != OrderState::AwaitingShipment) {
        head.push_str(&format!(", day {d}"));
    }
    if let Some(c) = p.and_then(|p| p.carrier.as_deref()).map(one_line) {
        if !c.is_empty() {
            head.push_str(&format!(", {c}"));
        }
    }
    if let Some(e) = p.and_then(eta_words) {
        head.push_str(&format!(", {e}"));
    }
    parts.push(head);
    for (i, p) in o.parcels.iter().enumerate() {
        let mut s = one_line(&p.tracking_number);
        if i > 0 {
            s.push_str(&format!(" {}", p.status.words()));
        }
        if let Some(ev) = &p.last_event {
            s.push_str(&format!(
                " {} {}",
                fmt_date(local_date(ev.time, tz)),
                shorten(&one_line(&ev.description), 40)
            ));
        }
        parts.push(s);
    }
    if let (true, Some(ends), Some(left)) =
        (o.is_active(), o.protection_ends, o.protection_days_left)
    {
        if left >= 0 {
            parts.push(format!(
                "protection until {} ({} left)",
                fmt_date(ends),
                plural(left, "day")
            ));
        }
    }
    if protection_unknown(o) && text {
        parts.push(format!("{PROTECTION_UNKNOWN} {}", o.url));
    }
    parts.join(" · ")
}

/// " (order ID)" where the name does not already say the id.
pub(super) fn id_suffix(o: &OrderView) -> String {
    if o.items.is_empty() && o.store.is_none() {
        String::new()
    } else {
        format!(" (order {})", one_line(&o.order_id))
    }
}

/// A parcel's detail line: number, status, latest event.
pub(super) fn parcel_detail(p: &ParcelView, tz: Tz) -> String {
    let mut s = format!("{}: {}", one_line(&p.tracking_number), p.status.words());
    if let Some(ev) = &p.last_event {
        s.push_str(&format!(
            " — {} {}",
            fmt_local(ev.time, tz),
            one_line(&ev.description)
        ));
        if let Some(loc) = ev
            .location
            .as_deref()
            .map(one_line)
            .filter(|l| !l.is_empty())
        {
            s.push_str(&format!(" ({loc})"));
        }
    }
    if let Some(e) = eta_words(p) {
        s.push_str(&format!("; {e}"));
    }
    if !p.previous_numbers.is_empty() {
        let prev: Vec<String> = p.previous_numbers.iter().map(|s| one_line(s)).collect();
        s.push_str(&format!(" (was {})", prev.join(", ")));
    }
    s
}

/// The facts line under an order that needs action (the order page's
/// link follows on its own line in text, as the card's title in HTML).
fn order_facts(o: &OrderView, today: NaiveDate, text: bool) -> String {
    let mut parts = vec![format!("order {}", one_line(&o.order_id))];
    if let Some(s) = &o.store {
        if !o.items.is_empty() {
            parts.push(one_line(s));
        }
    }
    match (o.shipped_at, o.confirmed_at) {
        (Some(s), _) => parts.push(format!(
            "shipped {} (day {})",
            fmt_date(s),
            shipping_day(o, today).unwrap_or(1)
        )),
        (None, Some(c)) => parts.push(format!("ordered {}", fmt_date(c))),
        (None, None) => {}
    }
    if let (Some(ends), Some(left)) = (o.protection_ends, o.protection_days_left) {
        if left >= 0 {
            parts.push(format!(
                "protection until {} ({} left)",
                fmt_date(ends),
                plural(left, "day")
            ));
        }
    }
    if protection_unknown(o) && text {
        parts.push(PROTECTION_UNKNOWN.to_string());
    }
    parts.join(" · ")
}

/// HTML: " · protection end unknown: check the order page", the last words
/// a link to the order page; empty where the end is known.
pub(super) fn html_unknown(o: &OrderView) -> String {
    if !protection_unknown(o) {
        return String::new();
    }
    let (words, page) = PROTECTION_UNKNOWN
        .rsplit_once(": ")
        .unwrap_or((PROTECTION_UNKNOWN, ""));
    format!(" · {}: {}", esc(words), link(page, &o.url))
}

/// The digest's sections.
pub(super) struct Sections<'r> {
    pub(super) action: Vec<&'r OrderView>,
    pub(super) transit: Vec<&'r OrderView>,
    pub(super) awaiting: Vec<&'r OrderView>,
    pub(super) delivered: Vec<&'r OrderView>,
    pub(super) loose: Vec<&'r ParcelView>,
}

fn recently_delivered(o: &OrderView, now: DateTime<Utc>) -> bool {
    o.state == OrderState::Completed
        && o.parcels.iter().any(|p| {
            p.delivered_at
                .is_some_and(|d| (now - d).num_days() < RECENT_DELIVERY_DAYS)
        })
}

pub(super) fn sections(report: &StatusReport, now: DateTime<Utc>) -> Sections<'_> {
    let mut s = Sections {
        action: Vec::new(),
        transit: Vec::new(),
        awaiting: Vec::new(),
        delivered: Vec::new(),
        loose: Vec::new(),
    };
    for o in &report.orders {
        if !o.is_active() {
            if recently_delivered(o, now) {
                s.delivered.push(o);
            }
        } else if o.needs_action() {
            s.action.push(o);
        } else if o.state == OrderState::AwaitingShipment {
            s.awaiting.push(o);
        } else {
            s.transit.push(o);
        }
    }
    // Soonest deadline first; orders without a date keep their order.
    s.action.sort_by_key(|o| {
        o.needs_action
            .iter()
            .filter_map(|a| a.by)
            .min()
            .unwrap_or(NaiveDate::MAX)
    });
    s.loose = report
        .unassigned_parcels
        .iter()
        .filter(|p| {
            !p.status.is_final()
                || p.delivered_at
                    .is_some_and(|d| (now - d).num_days() < RECENT_DELIVERY_DAYS)
        })
        .collect();
    s
}

/// The digest's one-line summary and its "needs action" orders, soonest
/// deadline first (the short digest of push channels).
pub fn digest_headline(report: &StatusReport, now: DateTime<Utc>) -> (String, Vec<&OrderView>) {
    let s = sections(report, now);
    (summary(&s), s.action)
}

/// Counts for the subject and the summary line.
pub(super) fn summary(s: &Sections<'_>) -> String {
    let mut parts = Vec::new();
    let a = s.action.len();
    if a > 0 {
        parts.push(format!("{a} need{} action", if a == 1 { "s" } else { "" }));
    }
    if !s.transit.is_empty() {
        parts.push(format!("{} in transit", s.transit.len()));
    }
    if !s.awaiting.is_empty() {
        parts.push(format!("{} awaiting shipment", s.awaiting.len()));
    }
    if !s.delivered.is_empty() {
        parts.push(format!("{} recently delivered", s.delivered.len()));
    }
    let loose = s.loose.len();
    if loose > 0 {
        parts.push(format!(
            "{loose} parcel{} without an order",
            if loose == 1 { "" } else { "s" }
        ));
    }
    if parts.is_empty() {
        "no active orders".into()
    } else {
        parts.join(", ")
    }
}

/// The digest's style sheet: short class names keep 100 orders small; the
/// dark variant applies where the client honours `prefers-color-scheme`.
/// The inline red that clients stripping `<style>` still show would be dark
/// red on a dark page, so the dark variant overrides it (`!important` beats
/// an inline style).
pub(super) const STYLE: &str = "body{margin:0;background:#f2f4f7;color:#101828}\
.w{max-width:600px;margin:0 auto;padding:16px 12px;font:15px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}\
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 6px}\
.c{background:#fff;border:1px solid #d0d5dd;border-left:4px solid #d92d20;border-radius:8px;padding:10px 12px;margin:0 0 10px}\
.n{font-weight:700}.m{color:#475467;font-size:13px}.x{color:#b42318;font-weight:600}\
ul{margin:0;padding:0 0 0 18px}li{margin:0 0 6px}a{color:#175cd3}\
.f{margin:24px 0 0;padding-top:12px;border-top:1px solid #d0d5dd;color:#667085;font-size:12px}\
@media (prefers-color-scheme:dark){body{background:#0c111d;color:#f5f5f6}\
.c{background:#161b26;border-color:#333741;border-left-color:#f04438}.m,.f{color:#94969c}\
.x,[style*=b42318]{color:#fda29b!important}a{color:#84adff}}";

fn html_head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <meta name=\"supported-color-schemes\" content=\"light dark\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<div class=\"w\">\n",
        esc(title)
    )
}

fn html_foot(inner_html: &str) -> String {
    format!("<p class=\"f\">{inner_html}</p>\n</div>\n</body>\n</html>\n")
}

/// `text` as a link to `url` where it is one of aliwatch's own links.
pub(super) fn link(text: &str, url: &str) -> String {
    match safe_url(url) {
        Some(u) => format!("<a href=\"{}\">{}</a>", esc(u), esc(text)),
        None => esc(text),
    }
}

fn html_parcels(h: &mut String, o: &OrderView, tz: Tz) {
    for p in &o.parcels {
        let detail = parcel_detail(p, tz);
        let rest = detail
            .strip_prefix(&one_line(&p.tracking_number))
            .unwrap_or(&detail);
        h.push_str(&format!(
            "<div class=\"m\">{}{}</div>\n",
            link(&one_line(&p.tracking_number), &p.tracking_url),
            esc(rest)
        ));
    }
}

/// One order that needs action, as a card.
pub(super) fn html_action(h: &mut String, o: &OrderView, today: NaiveDate, tz: Tz) {
    h.push_str(&format!(
        "<div class=\"c\">\n<div class=\"n\">{}</div>\n",
        link(&order_name(o, 200), &o.url)
    ));
    for a in &o.needs_action {
        h.push_str(&format!(
            "<div class=\"x\" style=\"color:#b42318\">&#9888;&#xFE0E; {}</div>\n",
            esc(&todo(a, o, today, tz))
        ));
    }
    h.push_str(&format!(
        "<div class=\"m\">{}{}</div>\n",
        esc(&order_facts(o, today, false)),
        html_unknown(o)
    ));
    html_parcels(h, o, tz);
    h.push_str("</div>\n");
}

/// One order that needs nothing, as a list item.
pub(super) fn html_line(h: &mut String, o: &OrderView, today: NaiveDate, tz: Tz) {
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
    h.push_str(&format!(
        "<li>{} — {}{}<span class=\"m\">{}{parcels}</span></li>\n",
        link(&order_name(o, 120), &o.url),
        esc(&status_line(o, today, tz, false)),
        html_unknown(o),
        esc(&id_suffix(o))
    ));
}

/// The daily digest.
pub fn render_digest(report: &StatusReport, rules: &Rules, now: DateTime<Utc>) -> RenderedEmail {
    let tz = rules.timezone;
    let today = local_today(now, tz);
    let s = sections(report, now);
    let summary = summary(&s);
    let subject = format!("aliwatch: {summary}");
    let dateline = format!("{}", today.format("%A, %-d %B %Y"));
    let foot = Footer {
        tz,
        tracking_off: rules.tracking.providers.is_empty(),
    };
    RenderedEmail {
        text: digest_text(report, &s, &summary, &dateline, today, foot),
        html: digest_html(report, &s, &subject, &summary, &dateline, today, foot),
        subject,
    }
}

/// What the digest's footer says besides "sent by aliwatch".
#[derive(Debug, Clone, Copy)]
struct Footer {
    tz: Tz,
    /// No tracking provider (`providers = []`): said once here, so the user knows why
    /// no parcel is ever called stalled and how to change it.
    tracking_off: bool,
}

/// The footer's note about tracking being off (SPEC §7: without a
/// provider there is no "stalled").
pub const TRACKING_OFF: &str = "Tracking is off (no tracking providers): parcels show what AliExpress emails say, and aliwatch calls none stalled. To follow carrier events, set providers = [\"cainiao\"] (no API key needed) under [tracking] in the config.";

fn digest_text(
    report: &StatusReport,
    s: &Sections<'_>,
    summary: &str,
    dateline: &str,
    today: NaiveDate,
    foot: Footer,
) -> String {
    let tz = foot.tz;
    let w = TEXT_COLUMNS;
    let mut t = wrap(&format!("Your AliExpress orders — {dateline}"), w, "", "");
    t.push_str(&wrap(summary, w, "", ""));
    for n in &report.notices {
        t.push('\n');
        t.push_str(&wrap(
            &format!("aliwatch: {}", one_line(n)),
            w,
            "!! ",
            "   ",
        ));
    }
    if !s.action.is_empty() {
        t.push_str(&format!("\nNEEDS YOUR ACTION ({})\n", s.action.len()));
        for o in &s.action {
            t.push('\n');
            t.push_str(&wrap(&order_name(o, w - 2), w, "* ", "  "));
            for a in &o.needs_action {
                t.push_str(&wrap(&todo(a, o, today, tz), w, "  ! ", "    "));
            }
            t.push_str(&wrap(&order_facts(o, today, true), w, "  ", "  "));
            for p in &o.parcels {
                t.push_str(&wrap(&parcel_detail(p, tz), w, "  - ", "    "));
            }
            t.push_str(&wrap(&o.url, w, "  ", "  "));
        }
    }
    let lines = |t: &mut String, heading: &str, orders: &[&OrderView]| {
        if orders.is_empty() {
            return;
        }
        t.push_str(&format!("\n{heading} ({})\n", orders.len()));
        for o in orders {
            let line = format!(
                "{} — {}{}",
                order_name(o, TITLE_COLUMNS),
                status_line(o, today, tz, true),
                id_suffix(o)
            );
            t.push_str(&wrap(&line, w, "* ", "  "));
        }
    };
    lines(&mut t, "IN TRANSIT", &s.transit);
    lines(&mut t, "AWAITING SHIPMENT", &s.awaiting);
    lines(&mut t, "RECENTLY DELIVERED", &s.delivered);
    if !s.loose.is_empty() {
        t.push_str(&format!("\nPARCELS WITHOUT AN ORDER ({})\n", s.loose.len()));
        t.push_str(&wrap(
            "Tie them to an order with: aliwatch add NUMBER --order ORDER_ID",
            w,
            "",
            "",
        ));
        for p in &s.loose {
            t.push_str(&wrap(&parcel_detail(p, tz), w, "* ", "  "));
        }
    }
    if s.action.is_empty() && s.transit.is_empty() && s.awaiting.is_empty() && s.loose.is_empty() {
        t.push_str("\nNothing is on its way right now.\n");
    }
    t.push_str("\n-- \n");
    t.push_str(&wrap(
        &format!(
            "Sent by aliwatch. Times are in {}. `aliwatch status` shows the same any time.",
            tz.name()
        ),
        w,
        "",
        "",
    ));
    if foot.tracking_off {
        t.push_str(&wrap(TRACKING_OFF, w, "", ""));
    }
    t
}

/// Where the digest's HTML sections are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Medium {
    /// An email: the red stays inline too, for clients that strip
    /// `<style>`; delivered orders get their own section.
    Mail,
    /// The dashboard: its style sheet always applies, and it lists
    /// completed orders itself.
    Page,
}

/// The digest's sections in HTML: tracking notices, "needs your action"
/// (one card per order), in transit, awaiting shipment, recently delivered
/// (mail only) and parcels without an order.
pub(super) fn html_sections(
    h: &mut String,
    report: &StatusReport,
    s: &Sections<'_>,
    today: NaiveDate,
    tz: Tz,
    medium: Medium,
) {
    // The page's style sheet colours `.x`; mail repeats it inline.
    let (red, red_heading) = match medium {
        Medium::Mail => (" style=\"color:#b42318\"", " style=\"color:#b42318\""),
        Medium::Page => ("", " class=\"x\""),
    };
    for n in &report.notices {
        h.push_str(&format!("<p class=\"x\"{red}>aliwatch: {}</p>\n", esc(n)));
    }
    if !s.action.is_empty() {
        h.push_str(&format!(
            "<h2{red_heading}>Needs your action ({})</h2>\n",
            s.action.len()
        ));
        for o in &s.action {
            html_action(h, o, today, tz);
        }
    }
    let list = |h: &mut String, heading: &str, orders: &[&OrderView]| {
        if orders.is_empty() {
            return;
        }
        h.push_str(&format!("<h2>{heading} ({})</h2>\n<ul>\n", orders.len()));
        for o in orders {
            html_line(h, o, today, tz);
        }
        h.push_str("</ul>\n");
    };
    list(h, "In transit", &s.transit);
    list(h, "Awaiting shipment", &s.awaiting);
    if medium == Medium::Mail {
        list(h, "Recently delivered", &s.delivered);
    }
    if !s.loose.is_empty() {
        h.push_str(&format!(
            "<h2>Parcels without an order ({})</h2>\n<p class=\"m\">Tie them to an order with: <code>aliwatch add NUMBER --order ORDER_ID</code></p>\n<ul>\n",
            s.loose.len()
        ));
        for p in &s.loose {
            let detail = parcel_detail(p, tz);
            let rest = detail
                .strip_prefix(&one_line(&p.tracking_number))
                .unwrap_or(&detail);
            h.push_str(&format!(
                "<li>{}{}</li>\n",
                link(&one_line(&p.tracking_number), &p.tracking_url),
                esc(rest)
            ));
        }
        h.push_str("</ul>\n");
    }
    if s.action.is_empty() && s.transit.is_empty() && s.awaiting.is_empty() && s.loose.is_empty() {
        h.push_str("<p>Nothing is on its way right now.</p>\n");
    }
}

fn digest_html(
    report: &StatusReport,
    s: &Sections<'_>,
    subject: &str,
    summary: &str,
    dateline: &str,
    today: NaiveDate,
    foot: Footer,
) -> String {
    let tz = foot.tz;
    let mut h = html_head(subject);
    h.push_str(&format!(
        "<h1>Your AliExpress orders</h1>\n<p class=\"m\">{} · <strong>{}</strong></p>\n",
        esc(dateline),
        esc(summary)
    ));
    html_sections(&mut h, report, s, today, tz, Medium::Mail);
    let off = if foot.tracking_off {
        format!("<br>\n{}", esc(TRACKING_OFF))
    } else {
        String::new()
    };
    h.push_str(&html_foot(&format!(
        "Sent by aliwatch. Times are in {}. <code>aliwatch status</code> shows the same any time.{off}",
        esc(tz.name())
    )));
    h
}

/// What to do before a protection end, step by step.
fn warning_steps(id: &str, ends: &str) -> [String; 3] {
    [
        "Check the parcel (below). If everything has arrived and is as described, confirm receipt on AliExpress; nothing else to do.".to_string(),
        format!("If it has not arrived or is not right, ask the seller to extend Buyer Protection. When they do, tell aliwatch: aliwatch protection {id} --extend DAYS"),
        format!("If the seller does not extend it, open a dispute before {ends}. After that date you can no longer get a refund through AliExpress."),
    ]
}

fn warning_button(url: &str) -> String {
    match safe_url(url) {
        Some(u) => format!(
            "<p><a href=\"{}\" style=\"display:inline-block;background:#d92d20;color:#ffffff;text-decoration:none;font-weight:700;border-radius:6px;padding:10px 16px\">Open the order on AliExpress</a></p>\n",
            esc(u)
        ),
        None => String::new(),
    }
}

/// One order's block in a warning: name, facts, parcels.
fn warning_order_text(t: &mut String, o: &OrderView, today: NaiveDate, tz: Tz) {
    t.push_str(&wrap(
        &order_name(o, TEXT_COLUMNS - 2),
        TEXT_COLUMNS,
        "* ",
        "  ",
    ));
    t.push_str(&wrap(
        &order_facts(o, today, true),
        TEXT_COLUMNS,
        "  ",
        "  ",
    ));
    for p in &o.parcels {
        t.push_str(&wrap(&parcel_detail(p, tz), TEXT_COLUMNS, "  - ", "    "));
    }
    t.push_str(&wrap(&o.url, TEXT_COLUMNS, "  ", "  "));
}

fn warning_order_html(h: &mut String, o: &OrderView, today: NaiveDate, tz: Tz) {
    h.push_str(&format!(
        "<div class=\"c\">\n<div class=\"n\">{}</div>\n<div class=\"m\">{}</div>\n",
        link(&order_name(o, 200), &o.url),
        esc(&order_facts(o, today, false))
    ));
    html_parcels(h, o, tz);
    h.push_str("</div>\n");
}

/// The Buyer Protection warning for `order` (sent for `threshold_days`).
pub fn render_warning(
    order: &OrderView,
    threshold_days: u32,
    rules: &Rules,
    now: DateTime<Utc>,
) -> RenderedEmail {
    let tz = rules.timezone;
    let today = local_today(now, tz);
    let id = one_line(&order.order_id);
    let left = days_left(order, now, tz).unwrap_or(0);
    let ends = order
        .protection_ends
        .map(fmt_date)
        .unwrap_or_else(|| "unknown".into());
    let when = match left {
        0 => "ends today".to_string(),
        n => format!("ends in {}", plural(n, "day")),
    };
    let subject = format!("Buyer Protection for order {id} {when} ({ends})");
    let name = order_name(order, 60);
    let lead =
        format!("Buyer Protection for your AliExpress order {id} ({name}) {when}, on {ends}.");
    let steps = warning_steps(&id, &ends);
    let why = format!(
        "You get this once because protection ends within {} (protection.warn_before). Times are in {}.",
        plural(i64::from(threshold_days), "day"),
        tz.name()
    );

    let mut t = wrap(&lead, TEXT_COLUMNS, "", "");
    t.push_str(&format!("\nWhat to do before {ends}:\n"));
    for (i, s) in steps.iter().enumerate() {
        t.push_str(&wrap(s, TEXT_COLUMNS, &format!("  {}. ", i + 1), "     "));
    }
    t.push('\n');
    warning_order_text(&mut t, order, today, tz);
    t.push_str("\n-- \n");
    t.push_str(&wrap(
        &format!("Sent by aliwatch. {why}"),
        TEXT_COLUMNS,
        "",
        "",
    ));

    let mut h = html_head(&subject);
    h.push_str(&format!(
        "<h1 style=\"color:#b42318\">Buyer Protection {}</h1>\n<p>{}</p>\n<p><strong>What to do before {}:</strong></p>\n<ol>\n",
        esc(&when),
        esc(&lead),
        esc(&ends)
    ));
    for s in &steps {
        h.push_str(&format!("<li>{}</li>\n", esc(s)));
    }
    h.push_str("</ol>\n");
    h.push_str(&warning_button(&order.url));
    warning_order_html(&mut h, order, today, tz);
    h.push_str(&html_foot(&format!("Sent by aliwatch. {}", esc(&why))));
    RenderedEmail {
        subject,
        text: t,
        html: h,
    }
}

/// Several warnings that fell due in one pass, as one email listing every
/// order, soonest protection end first (SPEC §5). With one order it is the
/// single-order warning.
pub fn render_warnings(
    orders: &[(&OrderView, u32)],
    rules: &Rules,
    now: DateTime<Utc>,
) -> RenderedEmail {
    let mut sorted: Vec<(&OrderView, u32)> = orders.to_vec();
    sorted.sort_by_key(|(o, _)| (o.protection_ends, o.order_id.clone()));
    if let [(o, threshold)] = sorted.as_slice() {
        return render_warning(o, *threshold, rules, now);
    }
    let tz = rules.timezone;
    let today = local_today(now, tz);
    let soonest = sorted
        .iter()
        .filter_map(|(o, _)| days_left(o, now, tz))
        .min()
        .unwrap_or(0);
    let when = match soonest {
        0 => "the first ends today".to_string(),
        n => format!("the first ends in {}", plural(n, "day")),
    };
    let subject = format!(
        "Buyer Protection for {} orders ends soon: {when}",
        sorted.len()
    );
    let lead = format!(
        "Buyer Protection is ending for {} of your AliExpress orders; {when}. For each: check the parcel; if it has not arrived or is not right, ask the seller to extend protection (then: aliwatch protection ORDER --extend DAYS) or open a dispute before the date.",
        sorted.len()
    );
    let mut t = wrap(&lead, TEXT_COLUMNS, "", "");
    let mut h = html_head(&subject);
    h.push_str(&format!(
        "<h1 style=\"color:#b42318\">Buyer Protection ends soon for {} orders</h1>\n<p>{}</p>\n",
        sorted.len(),
        esc(&lead)
    ));
    for (o, _) in &sorted {
        let ends = o.protection_ends.map(fmt_date).unwrap_or_default();
        let left = days_left(o, now, tz).unwrap_or(0);
        let head = format!("Protection ends {} ({ends})", in_days(left));
        t.push('\n');
        t.push_str(&wrap(&head, TEXT_COLUMNS, "", ""));
        warning_order_text(&mut t, o, today, tz);
        h.push_str(&format!(
            "<h2 style=\"color:#b42318\">{}</h2>\n",
            esc(&head)
        ));
        warning_order_html(&mut h, o, today, tz);
    }
    let why = format!(
        "You get one email per protection.warn_before threshold and order; warnings due at the same time come together. Times are in {}.",
        tz.name()
    );
    t.push_str("\n-- \n");
    t.push_str(&wrap(
        &format!("Sent by aliwatch. {why}"),
        TEXT_COLUMNS,
        "",
        "",
    ));
    h.push_str(&html_foot(&format!("Sent by aliwatch. {}", esc(&why))));
    RenderedEmail {
        subject,
        text: t,
        html: h,
    }
}

#[cfg(test)]
mod tests {
    //! The digest says only what is true today, in one zone.
    use super::*;
    use crate::model::ParcelStatus;
    use crate::report::EventView;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn rules(provider: Provider) -> Rules {
        let mut r = Rules {
            timezone: chrono_tz::Europe::Berlin,
            ..Rules::default()
        };
        r.tracking.providers = crate::model::Providers::new(&[provider]);
        r
    }

    fn report(orders: Vec<OrderView>) -> StatusReport {
        StatusReport {
            generated_at: utc("2026-11-28T08:00:00Z"),
            orders,
            unassigned_parcels: vec![],
            notices: vec![],
        }
    }

    /// Shipped, one parcel whose last event is 23:30 UTC on 11-26, which
    /// is 00:30 on 11-27 in Berlin.
    fn late_event_order() -> OrderView {
        let mut p = ParcelView::sample("LP00100000000001", ParcelStatus::InTransit);
        p.last_event = Some(EventView {
            time: utc("2026-11-26T23:30:00Z"),
            description: "Departed from sorting center".into(),
            location: None,
        });
        OrderView {
            shipped_at: Some(chrono::NaiveDate::from_ymd_opt(2026, 11, 10).expect("date")),
            protection_ends: chrono::NaiveDate::from_ymd_opt(2027, 1, 9),
            protection_days_left: Some(42),
            protection_source: ProtectionSource::Default,
            url: crate::decide::orders::order_url("8100000000000001"),
            parcels: vec![p],
            ..OrderView::sample("8100000000000001", OrderState::Shipped)
        }
    }

    #[test]
    fn every_date_in_the_digest_is_in_the_users_zone() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 28, 8, 0, 0)
            .single()
            .expect("time");
        let d = render_digest(
            &report(vec![late_event_order()]),
            &rules(Provider::None),
            now,
        );
        // the one-line entry and nothing else: the Berlin day only
        assert!(d.text.contains("2026-11-27"), "{}", d.text);
        assert!(!d.text.contains("2026-11-26"), "{}", d.text);
        assert!(!d.html.contains("2026-11-26"), "{}", d.html);
    }

    #[test]
    fn the_footer_says_once_that_tracking_is_off_and_only_then() {
        let now = utc("2026-11-28T08:00:00Z");
        for (provider, want) in [(Provider::None, 1), (Provider::Cainiao, 0)] {
            let d = render_digest(&report(vec![late_event_order()]), &rules(provider), now);
            let flat = d.text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(flat.matches("Tracking is off").count(), want, "{}", d.text);
            assert_eq!(
                d.html.matches("Tracking is off").count(),
                want,
                "{provider:?}"
            );
        }
    }

    #[test]
    fn an_unknown_protection_end_says_where_to_look_with_the_link() {
        let now = utc("2026-11-28T08:00:00Z");
        let mut o = late_event_order();
        o.shipped_at = None;
        o.protection_ends = None;
        o.protection_days_left = None;
        o.protection_source = ProtectionSource::Unknown;
        let mut awaiting = OrderView::sample("8100000000000002", OrderState::AwaitingShipment);
        awaiting.url = crate::decide::orders::order_url("8100000000000002");
        let d = render_digest(&report(vec![o, awaiting]), &rules(Provider::None), now);
        let flat = d.text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains(&format!(
                "{PROTECTION_UNKNOWN} https://www.aliexpress.com/p/order/detail.html?orderId=8100000000000001"
            )),
            "{}",
            d.text
        );
        // not for an order that has not shipped: its protection has not
        // started, nothing is unknown yet
        assert_eq!(
            flat.matches("protection end unknown").count(),
            1,
            "{}",
            d.text
        );
        assert!(
            d.html.contains(
                "protection end unknown: <a href=\"https://www.aliexpress.com/p/order/detail.html?orderId=8100000000000001\">check the order page</a>"
            ),
            "{}",
            d.html
        );
        // no day count, no "shipped" day invented
        assert!(!flat.contains(", day "), "{}", d.text);
    }
}
