//! How the digest and the protection warning look: pure functions of the
//! read model, "now" and the config, returning a subject, a text part and
//! an HTML part.
//!
//! Both parts are rendered from one intermediate model (sections → orders
//! → lines), so they always say the same. The HTML is deliberately plain:
//! one centred column (max 600 px, fluid below), inline styles only (many
//! clients, Gmail among them, strip `<style>` blocks), no images, no
//! tables for layout. Every value that came from a received email or a
//! tracking provider goes through [`esc`] — order ids, tracking numbers,
//! carriers, event descriptions and locations alike.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::decide::Rules;
use crate::model::{OrderState, ParcelStatus};
use crate::report::{OrderView, ParcelView, StatusReport};

use crate::decide::notifications::{days_left, local_today};

/// A rendered email, before headers are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// How long a delivered (completed) order stays in "Recently delivered".
const RECENT_DELIVERY_DAYS: i64 = 7;

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
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

/// Removes line breaks and other control characters from a value that
/// goes into a single text line or a header (a provider's description may
/// hold newlines; a header must not).
fn one_line(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn plural(n: i64, word: &str) -> String {
    if n == 1 || n == -1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// "today", "tomorrow", "in 5 days".
fn in_days(n: i64) -> String {
    match n {
        0 => "today".into(),
        1 => "tomorrow".into(),
        n if n < 0 => format!("{} ago", plural(-n, "day")),
        n => format!("in {}", plural(n, "day")),
    }
}

fn fmt_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn fmt_local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// The visual tone of a line or badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    Alert,
    Info,
    Good,
    Muted,
}

impl Tone {
    /// (text colour, background) with enough contrast on white.
    fn colours(self) -> (&'static str, &'static str) {
        match self {
            Tone::Alert => ("#b42318", "#fee4e2"),
            Tone::Info => ("#175cd3", "#e0eaff"),
            Tone::Good => ("#067647", "#dcfae6"),
            Tone::Muted => ("#475467", "#eaecf0"),
        }
    }
}

fn status_tone(s: ParcelStatus) -> Tone {
    if s.needs_attention() {
        Tone::Alert
    } else if s == ParcelStatus::Delivered {
        Tone::Good
    } else if matches!(s, ParcelStatus::Pending | ParcelStatus::Expired) {
        Tone::Muted
    } else {
        Tone::Info
    }
}

/// One parcel as shown.
struct ParcelBlock {
    number: String,
    carrier: Option<String>,
    status: ParcelStatus,
    lines: Vec<String>,
}

/// One order as shown.
struct OrderBlock {
    order_id: String,
    reasons: Vec<String>,
    facts: Vec<String>,
    parcels: Vec<ParcelBlock>,
}

/// One section of the digest.
struct Section {
    heading: String,
    tone: Tone,
    note: Option<String>,
    orders: Vec<OrderBlock>,
}

fn parcel_block(p: &ParcelView, now: DateTime<Utc>, tz: Tz) -> ParcelBlock {
    let mut lines = Vec::new();
    match &p.last_event {
        Some(ev) => {
            let mut l = format!(
                "Latest: {} — {}",
                fmt_local(ev.time, tz),
                one_line(&ev.description)
            );
            if let Some(loc) = ev
                .location
                .as_deref()
                .map(one_line)
                .filter(|s| !s.is_empty())
            {
                l.push_str(&format!(" ({loc})"));
            }
            lines.push(l);
        }
        None => match p
            .status_detail
            .as_deref()
            .map(one_line)
            .filter(|s| !s.is_empty())
        {
            Some(d) => lines.push(format!("Latest: {d}")),
            None => lines.push("No carrier events yet".into()),
        },
    }
    if let Some(d) = p.delivered_at {
        // the delivery event usually is the latest event: say it once
        if p.last_event.as_ref().map(|e| e.time) != Some(d) {
            lines.push(format!("Delivered {}", fmt_local(d, tz)));
        }
    } else if let Some(eta) = p.eta {
        if eta.from == eta.to {
            lines.push(format!("Expected delivery: {}", fmt_date(eta.from)));
        } else {
            lines.push(format!(
                "Expected delivery: {} – {}",
                fmt_date(eta.from),
                fmt_date(eta.to)
            ));
        }
    }
    if p.stalled {
        lines.push(stalled_phrase(p, now));
    }
    if !p.previous_numbers.is_empty() {
        let prev: Vec<String> = p.previous_numbers.iter().map(|s| one_line(s)).collect();
        lines.push(format!("Previously tracked as {}", prev.join(", ")));
    }
    ParcelBlock {
        number: one_line(&p.tracking_number),
        carrier: p.carrier.as_deref().map(one_line).filter(|s| !s.is_empty()),
        status: p.status,
        lines,
    }
}

fn stalled_phrase(p: &ParcelView, now: DateTime<Utc>) -> String {
    match &p.last_event {
        Some(ev) => format!(
            "No tracking update for {}",
            plural((now - ev.time).num_days().max(0), "day")
        ),
        None => "No tracking update for a long time".into(),
    }
}

/// Why an active order needs the user's attention (empty: it does not).
fn action_reasons(o: &OrderView, now: DateTime<Utc>, rules: &Rules) -> Vec<String> {
    let mut r = Vec::new();
    if !o.is_active() {
        return r;
    }
    let horizon = rules
        .protection
        .warn_before_days
        .iter()
        .copied()
        .max()
        .unwrap_or(0);
    if let (Some(ends), Some(left)) = (o.protection_ends, days_left(o, now, rules.timezone)) {
        if (0..=i64::from(horizon)).contains(&left) {
            r.push(format!(
                "Buyer Protection ends {} ({}): ask the seller to extend it or open a dispute if the parcel has not arrived",
                in_days(left),
                fmt_date(ends)
            ));
        }
    }
    match o.state {
        OrderState::Delivered => {
            let mut s = "Delivered but not confirmed: check the items, then confirm receipt or open a dispute".to_string();
            if let Some(d) = o.auto_completes_on {
                s.push_str(&format!(
                    " (AliExpress confirms it by itself on {})",
                    fmt_date(d)
                ));
            }
            r.push(s);
        }
        OrderState::Disputed => r.push("Dispute open: follow it up on AliExpress".into()),
        _ => {}
    }
    for p in &o.parcels {
        let n = one_line(&p.tracking_number);
        if p.status.needs_attention() {
            r.push(format!("Parcel {n}: {}", p.status.words()));
        }
        if p.stalled {
            r.push(format!(
                "Parcel {n}: {}",
                stalled_phrase(p, now).to_lowercase()
            ));
        }
    }
    r
}

fn order_block(
    o: &OrderView,
    reasons: Vec<String>,
    now: DateTime<Utc>,
    rules: &Rules,
) -> OrderBlock {
    let tz = rules.timezone;
    let today = local_today(now, tz);
    let mut facts = Vec::new();
    match (o.shipped_at, o.confirmed_at) {
        (Some(s), _) => {
            let d = (today - s).num_days();
            facts.push(format!("Shipped {} ({})", fmt_date(s), in_days(-d)));
        }
        (None, Some(c)) => facts.push(format!("Ordered {}, not shipped yet", fmt_date(c))),
        (None, None) => {}
    }
    let protection = o.protection_ends.zip(days_left(o, now, tz));
    if let (true, Some((ends, left))) = (o.is_active(), protection) {
        if left >= 0 {
            facts.push(format!(
                "Buyer Protection until {} ({} left)",
                fmt_date(ends),
                plural(left, "day")
            ));
        } else {
            facts.push(format!("Buyer Protection ended {}", fmt_date(ends)));
        }
    }
    OrderBlock {
        order_id: one_line(&o.order_id),
        reasons,
        facts,
        parcels: o.parcels.iter().map(|p| parcel_block(p, now, tz)).collect(),
    }
}

fn recently_delivered(o: &OrderView, now: DateTime<Utc>) -> bool {
    o.state == OrderState::Completed
        && o.parcels.iter().any(|p| {
            p.delivered_at
                .is_some_and(|d| (now - d).num_days() < RECENT_DELIVERY_DAYS)
        })
}

/// The digest's sections, in order; empty sections are left out.
fn digest_sections(report: &StatusReport, now: DateTime<Utc>, rules: &Rules) -> Vec<Section> {
    let mut action = Vec::new();
    let mut transit = Vec::new();
    let mut awaiting = Vec::new();
    let mut delivered = Vec::new();
    for o in &report.orders {
        if !o.is_active() {
            if recently_delivered(o, now) {
                delivered.push(order_block(o, Vec::new(), now, rules));
            }
            continue;
        }
        let reasons = action_reasons(o, now, rules);
        if !reasons.is_empty() {
            action.push(order_block(o, reasons, now, rules));
        } else if o.state == OrderState::AwaitingShipment {
            awaiting.push(order_block(o, reasons, now, rules));
        } else {
            transit.push(order_block(o, reasons, now, rules));
        }
    }
    let loose: Vec<ParcelBlock> = report
        .unassigned_parcels
        .iter()
        .filter(|p| {
            !p.status.is_final()
                || p.delivered_at
                    .is_some_and(|d| (now - d).num_days() < RECENT_DELIVERY_DAYS)
        })
        .map(|p| parcel_block(p, now, rules.timezone))
        .collect();
    let mut out = Vec::new();
    let mut push = |heading: &str, tone, note: Option<&str>, orders: Vec<OrderBlock>| {
        if !orders.is_empty() {
            out.push(Section {
                heading: format!("{heading} ({})", orders.len()),
                tone,
                note: note.map(str::to_owned),
                orders,
            });
        }
    };
    push(
        "Needs your action",
        Tone::Alert,
        Some("Protection ending soon, parcels stuck or in trouble, deliveries to confirm."),
        action,
    );
    push("In transit", Tone::Info, None, transit);
    push("Awaiting shipment", Tone::Muted, None, awaiting);
    push("Recently delivered", Tone::Good, None, delivered);
    if !loose.is_empty() {
        out.push(Section {
            heading: format!("Parcels without an order ({})", loose.len()),
            tone: Tone::Muted,
            note: Some("Tie them to an order with: aliwatch add NUMBER --order ORDER_ID".into()),
            orders: vec![OrderBlock {
                order_id: String::new(),
                reasons: Vec::new(),
                facts: Vec::new(),
                parcels: loose,
            }],
        });
    }
    out
}

/// Counts for the subject and the summary line.
fn summary(sections: &[Section]) -> String {
    let count = |prefix: &str| {
        sections
            .iter()
            .find(|s| s.heading.starts_with(prefix))
            .map_or(0, |s| s.orders.len())
    };
    let mut parts = Vec::new();
    let a = count("Needs your action");
    if a > 0 {
        parts.push(format!("{a} need{} action", if a == 1 { "s" } else { "" }));
    }
    let t = count("In transit");
    if t > 0 {
        parts.push(format!("{t} in transit"));
    }
    let w = count("Awaiting shipment");
    if w > 0 {
        parts.push(format!("{w} awaiting shipment"));
    }
    let d = count("Recently delivered");
    if d > 0 {
        parts.push(format!("{d} recently delivered"));
    }
    let loose = sections
        .iter()
        .find(|s| s.heading.starts_with("Parcels without"))
        .map_or(0, |s| {
            s.orders.iter().map(|o| o.parcels.len()).sum::<usize>()
        });
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

/// The daily digest.
pub fn render_digest(report: &StatusReport, rules: &Rules, now: DateTime<Utc>) -> RenderedEmail {
    let sections = digest_sections(report, now, rules);
    let summary = summary(&sections);
    let subject = format!("aliwatch: {summary}");
    let today = local_today(now, rules.timezone);
    let dateline = format!("{}", today.format("%A, %-d %B %Y"));

    // text/plain
    let mut t = String::new();
    t.push_str(&format!("Your AliExpress orders — {dateline}\n{summary}\n"));
    for n in &report.notices {
        t.push_str(&format!("\n!! aliwatch: {n}\n"));
    }
    for s in &sections {
        t.push_str(&format!("\n== {} ==\n", s.heading));
        if let Some(n) = &s.note {
            t.push_str(&format!("{n}\n"));
        }
        for o in &s.orders {
            t.push('\n');
            text_order(&mut t, o);
        }
    }
    if sections.is_empty() {
        t.push_str("\nNothing is on its way right now.\n");
    }
    t.push_str(&format!(
        "\n-- \nSent by aliwatch. Times are in {}. `aliwatch status` shows the same any time.\n",
        rules.timezone.name()
    ));

    // text/html
    let mut h = String::new();
    h.push_str(&html_head(&subject));
    h.push_str(&format!(
        "<h1 style=\"font-size:20px;line-height:1.3;margin:0 0 4px 0;color:#101828;\">Your AliExpress orders</h1>\n\
         <p style=\"margin:0 0 16px 0;color:#475467;font-size:14px;\">{} · <strong>{}</strong></p>\n",
        esc(&dateline),
        esc(&summary)
    ));
    for n in &report.notices {
        h.push_str(&format!(
            "<p style=\"margin:0 0 12px 0;padding:8px 12px;background:#fef3f2;color:#b42318;border-radius:8px;font-size:14px;\">aliwatch: {}</p>\n",
            esc(n)
        ));
    }
    for s in &sections {
        let (fg, _) = s.tone.colours();
        h.push_str(&format!(
            "<h2 style=\"font-size:17px;line-height:1.3;margin:24px 0 4px 0;color:{fg};\">{}</h2>\n",
            esc(&s.heading)
        ));
        if let Some(n) = &s.note {
            h.push_str(&format!(
                "<p style=\"margin:0 0 8px 0;color:#475467;font-size:13px;\">{}</p>\n",
                esc(n)
            ));
        }
        for o in &s.orders {
            html_order(&mut h, o, s.tone);
        }
    }
    if sections.is_empty() {
        h.push_str("<p style=\"margin:16px 0;\">Nothing is on its way right now.</p>\n");
    }
    h.push_str(&html_foot(&format!(
        "Sent by aliwatch. Times are in {}. <code>aliwatch status</code> shows the same any time.",
        esc(rules.timezone.name())
    )));
    RenderedEmail {
        subject,
        text: t,
        html: h,
    }
}

fn text_order(t: &mut String, o: &OrderBlock) {
    let indent = if o.order_id.is_empty() {
        ""
    } else {
        t.push_str(&format!("Order {}\n", o.order_id));
        "  "
    };
    for r in &o.reasons {
        t.push_str(&format!("{indent}! {r}\n"));
    }
    for f in &o.facts {
        t.push_str(&format!("{indent}{f}\n"));
    }
    for p in &o.parcels {
        let carrier = p
            .carrier
            .as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        t.push_str(&format!(
            "{indent}- {}{carrier}: {}\n",
            p.number,
            p.status.words()
        ));
        for l in &p.lines {
            t.push_str(&format!("{indent}    {l}\n"));
        }
    }
}

fn html_head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light\">\n<title>{}</title>\n</head>\n\
         <body style=\"margin:0;padding:0;background:#f2f4f7;\">\n\
         <div style=\"max-width:600px;margin:0 auto;padding:16px 12px;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:15px;line-height:1.45;color:#101828;\">\n",
        esc(title)
    )
}

fn html_foot(inner_html: &str) -> String {
    format!(
        "<p style=\"margin:24px 0 0 0;padding-top:12px;border-top:1px solid #d0d5dd;color:#667085;font-size:12px;\">{inner_html}</p>\n</div>\n</body>\n</html>\n"
    )
}

fn badge(p: &ParcelBlock) -> String {
    let (fg, bg) = status_tone(p.status).colours();
    format!(
        "<span style=\"display:inline-block;background:{bg};color:{fg};border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600;white-space:nowrap;\">{}</span>",
        esc(p.status.words())
    )
}

fn html_order(h: &mut String, o: &OrderBlock, tone: Tone) {
    let (accent, _) = tone.colours();
    h.push_str(&format!(
        "<div style=\"background:#ffffff;border:1px solid #d0d5dd;border-left:4px solid {accent};border-radius:8px;padding:12px 14px;margin:0 0 12px 0;\">\n"
    ));
    if !o.order_id.is_empty() {
        h.push_str(&format!(
            "<div style=\"font-weight:700;font-size:16px;word-break:break-all;\">Order {}</div>\n",
            esc(&o.order_id)
        ));
    }
    for r in &o.reasons {
        h.push_str(&format!(
            "<div style=\"color:#b42318;font-size:14px;margin:6px 0 0 0;\">&#9888;&#xFE0E; {}</div>\n",
            esc(r)
        ));
    }
    if !o.facts.is_empty() {
        let facts: Vec<String> = o.facts.iter().map(|f| esc(f)).collect();
        h.push_str(&format!(
            "<div style=\"color:#475467;font-size:13px;margin:6px 0 0 0;\">{}</div>\n",
            facts.join("<br>")
        ));
    }
    for p in &o.parcels {
        html_parcel(h, p);
    }
    h.push_str("</div>\n");
}

fn html_parcel(h: &mut String, p: &ParcelBlock) {
    let carrier = p
        .carrier
        .as_deref()
        .map(|c| {
            format!(
                " <span style=\"color:#667085;font-size:13px;\">{}</span>",
                esc(c)
            )
        })
        .unwrap_or_default();
    h.push_str(&format!(
        "<div style=\"margin:10px 0 0 0;padding:8px 0 0 0;border-top:1px solid #eaecf0;\">\n\
         <div><span style=\"font-family:ui-monospace,Menlo,Consolas,monospace;font-size:14px;word-break:break-all;\">{}</span>{carrier} {}</div>\n",
        esc(&p.number),
        badge(p)
    ));
    if !p.lines.is_empty() {
        let lines: Vec<String> = p.lines.iter().map(|l| esc(l)).collect();
        h.push_str(&format!(
            "<div style=\"color:#344054;font-size:13px;margin:4px 0 0 0;\">{}</div>\n",
            lines.join("<br>")
        ));
    }
    h.push_str("</div>\n");
}

/// The AliExpress order page, for ids that look like order numbers (digits
/// only, so nothing needs escaping in the URL).
fn order_url(order_id: &str) -> Option<String> {
    (!order_id.is_empty() && order_id.len() <= 24 && order_id.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("https://www.aliexpress.com/p/order/detail.html?orderId={order_id}"))
}

/// The Buyer Protection warning for `order` (sent for `threshold_days`).
pub fn render_warning(
    order: &OrderView,
    threshold_days: u32,
    rules: &Rules,
    now: DateTime<Utc>,
) -> RenderedEmail {
    let tz = rules.timezone;
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
    let lead = format!("Buyer Protection for your AliExpress order {id} {when}, on {ends}.");
    let steps = [
        "Check the parcel (below). If everything has arrived and is as described, confirm receipt on AliExpress; nothing else to do.".to_string(),
        format!("If it has not arrived or is not right, ask the seller to extend Buyer Protection. When they do, tell aliwatch: aliwatch protection {id} --extend DAYS"),
        format!("If the seller does not extend it, open a dispute before {ends}. After that date you can no longer get a refund through AliExpress."),
    ];
    let block = order_block(order, Vec::new(), now, rules);
    let url = order_url(&id);
    let why = format!(
        "You get this once because protection ends within {} (protection.warn_before). Times are in {}.",
        plural(i64::from(threshold_days), "day"),
        tz.name()
    );

    let mut t = format!("{lead}\n\nWhat to do before {ends}:\n");
    for (i, s) in steps.iter().enumerate() {
        t.push_str(&format!("  {}. {s}\n", i + 1));
    }
    if let Some(u) = &url {
        t.push_str(&format!("\nOrder page: {u}\n"));
    }
    t.push('\n');
    text_order(&mut t, &block);
    t.push_str(&format!("\n-- \nSent by aliwatch. {why}\n"));

    let mut h = html_head(&subject);
    h.push_str(&format!(
        "<h1 style=\"font-size:20px;line-height:1.3;margin:0 0 8px 0;color:#b42318;\">Buyer Protection {}</h1>\n\
         <p style=\"margin:0 0 12px 0;\">{}</p>\n\
         <p style=\"margin:0 0 4px 0;font-weight:700;\">What to do before {}:</p>\n<ol style=\"margin:0 0 12px 0;padding-left:22px;\">\n",
        esc(&when),
        esc(&lead),
        esc(&ends)
    ));
    for s in &steps {
        h.push_str(&format!(
            "<li style=\"margin:0 0 6px 0;\">{}</li>\n",
            esc(s)
        ));
    }
    h.push_str("</ol>\n");
    if let Some(u) = &url {
        h.push_str(&format!(
            "<p style=\"margin:0 0 16px 0;\"><a href=\"{}\" style=\"display:inline-block;background:#d92d20;color:#ffffff;text-decoration:none;font-weight:700;border-radius:6px;padding:10px 16px;\">Open the order on AliExpress</a></p>\n",
            esc(u)
        ));
    }
    html_order(&mut h, &block, Tone::Alert);
    h.push_str(&html_foot(&format!("Sent by aliwatch. {}", esc(&why))));
    RenderedEmail {
        subject,
        text: t,
        html: h,
    }
}
