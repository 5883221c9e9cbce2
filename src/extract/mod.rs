//! Extraction: one RFC 5322 email in, what it says about AliExpress orders
//! and parcels out (SPEC §3). PURE: no I/O, no async, no clock.
//!
//! The pipeline, in order:
//! 1. MIME (mail-parser): headers, RFC 2047 subjects, charsets, QP (numbers
//!    broken over soft line breaks come out whole), base64, and nested
//!    `message/rfc822` parts, each read as a *view* of its own.
//! 2. Sender: `*.aliexpress.com` (also behind Apple Hide-My-Email relays),
//!    a carrier writing about an AliExpress order, or a forward of either
//!    (attached, or inline with the original `From:` line in the body).
//!    Look-alike domains are never AliExpress, whatever they contain.
//! 3. Subject: status phrase → kind and parcel status; `<order word> N` and
//!    `<package word> T` positions.
//! 4. Body (HTML flattened to text, lower-cased): label/value pairs for
//!    orders and tracking numbers, tracking formats with check digits
//!    (`numbers.rs`), replaced numbers, protection dates, ETA.
//! 5. Links in the raw HTML: `orderId`, `tradeOrderId`, `o_ids` lists,
//!    `trackingNumber` (paired with the order of the same link).
//! 6. Assignment: every order gets the parcels the email gives for it.
//!
//! Each step has its file: `sender.rs` (2), `subject.rs` (3 and the status
//! phrases), `body.rs` (4), `links.rs` (5), `tables.rs` (header-row
//! tables), `assign.rs` (6 and the kind settled last), `items.rs` (what
//! each order contains); this file holds the MIME views and the order of
//! the steps.
//!
//! All language knowledge is in [`lang`]; all number formats in [`numbers`].
//! Hostile input never panics: no indexing or string slicing that can go out
//! of bounds (enforced by the clippy lints below).

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used)]

mod assign;
mod body;
mod bounds;
mod items;
pub mod lang;
mod links;
pub mod numbers;
mod sender;
mod subject;
mod tables;
pub mod text;

use std::collections::HashSet;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use mail_parser::{Message, MessageParser, PartType};
use regex::Regex;

use crate::model::{EmailKind, ParcelStatus};
use lang::Flag;
use numbers::Verdict;

use assign::*;
use body::*;
use links::*;
use sender::*;
use subject::*;
use tables::*;

pub use crate::model::{Extraction, OrderRef};
pub use bounds::{MAX_ATTACHED_MESSAGES, MAX_MIME_PARTS};

/// Why an email could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("not an RFC 5322 message: {0}")]
    Malformed(String),
}

static PARSER: LazyLock<MessageParser> = LazyLock::new(MessageParser::default);

/// The most orders, parcels or link pairs taken from one email.
const MAX_ITEMS: usize = 256;

/// How deep `message/rfc822` attachments are followed.
const MAX_NESTING: usize = 4;

/// One message of the MIME tree (the top one or an attached one).
struct View<'m> {
    from: Vec<String>,
    subject: String,
    html: Vec<&'m str>,
    plain: Vec<&'m str>,
}

fn collect<'m, 'x: 'm>(msg: &'m Message<'x>, depth: usize, out: &mut Vec<View<'m>>) {
    let from = addresses(msg.from());
    let mut view = View {
        from,
        subject: msg.subject().unwrap_or("").to_string(),
        html: Vec::new(),
        plain: Vec::new(),
    };
    let mut nested = Vec::new();
    for part in &msg.parts {
        match &part.body {
            PartType::Text(t) => view.plain.push(t.as_ref()),
            PartType::Html(h) => view.html.push(h.as_ref()),
            PartType::Message(m) if depth < MAX_NESTING => nested.push(m),
            _ => {}
        }
    }
    out.push(view);
    for m in nested {
        collect(m, depth + 1, out);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LabelKind {
    Tracking,
    OldTracking,
    Order,
    Package,
    ProtectionEnd,
    Eta,
}

struct Table<T> {
    ac: AhoCorasick,
    items: Vec<(T, &'static str)>,
}

impl<T: Copy> Table<T> {
    /// Table words in `hay` that start a word: (kind, phrase, where the
    /// word starts, where the whole word ends).
    fn word_hits<'h>(
        &'h self,
        hay: &'h str,
    ) -> impl Iterator<Item = (T, &'static str, usize, usize)> + 'h {
        self.ac.find_iter(hay).filter_map(move |m| {
            let &(kind, phrase) = self.items.get(m.pattern().as_usize())?;
            text::at_word_start(hay, m.start(), phrase).then(|| {
                (
                    kind,
                    phrase,
                    m.start(),
                    text::extend_word(hay, m.end(), phrase),
                )
            })
        })
    }
}

fn build_table<T: Copy>(groups: &[(T, &[&'static str])]) -> Table<T> {
    let mut seen = HashSet::new();
    let mut items = Vec::new();
    for &(kind, words) in groups {
        for &w in words {
            if seen.insert(w) {
                items.push((kind, w));
            }
        }
    }
    // A contiguous NFA, not a DFA: over ~350 labels in 18 scripts the DFA
    // took 4.0 MB (states × byte classes) and stayed resident in the
    // daemon after the first email; the NFA takes 0.13 MB and is as fast
    // here (README, Performance).
    let ac = AhoCorasick::builder()
        .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
        .match_kind(MatchKind::LeftmostLongest)
        .build(items.iter().map(|(_, w)| *w))
        .expect("static keyword table builds");
    Table { ac, items }
}

static LABELS: LazyLock<Table<LabelKind>> = LazyLock::new(|| {
    build_table(&[
        (LabelKind::OldTracking, lang::OLD_TRACKING_LABELS),
        (LabelKind::Tracking, lang::TRACKING_LABELS),
        (LabelKind::Order, lang::ORDER_WORDS),
        (LabelKind::Package, lang::PACKAGE_WORDS),
        (LabelKind::ProtectionEnd, lang::PROTECTION_END_LABELS),
        (LabelKind::Eta, lang::ETA_LABELS),
    ])
});

/// The rest of the line from `from`, at most `max` bytes (on a char boundary).
fn line_after(s: &str, from: usize, max: usize) -> &str {
    let w = window(s, from, max);
    w.split('\n').next().unwrap_or("")
}

/// `s[from..from+max]`, shrunk to char boundaries; empty when out of range.
fn window(s: &str, from: usize, max: usize) -> &str {
    let mut end = from.saturating_add(max).min(s.len());
    while end > from && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(from..end).unwrap_or("")
}

/// Everything found in one email, before assignment.
#[derive(Default)]
struct Found {
    /// (order id, body position if found in the body text).
    subject_orders: Vec<String>,
    label_orders: Vec<(String, usize)>,
    link_orders: Vec<String>,
    /// (tracking number, body position if any).
    tracks: Vec<(String, Option<usize>)>,
    replaced: Vec<String>,
    pairs: Vec<(String, String)>,
    protection_until: Option<NaiveDate>,
    eta: Option<(NaiveDate, NaiveDate)>,
    /// The subject names a parcel in its parcel position (`Package T: …`).
    subject_parcel: bool,
    /// The subject's parcel position holds a number that was not taken
    /// (its check digit fails): the subject is still about one parcel.
    subject_parcel_refused: bool,
    /// The body has a table header row of labels (order, tracking).
    header_row: bool,
}

/// Classifies and extracts one raw email.
pub fn extract(raw: &[u8]) -> Result<Extraction, ExtractError> {
    let msg = parse_message(raw)?;
    let mut views = Vec::new();
    collect(&msg, 0, &mut views);

    let mut ex = header_fields(&msg);
    let Some(top) = views.first() else {
        return Ok(ex);
    };
    let flat = flatten_bodies(&views);
    let body = text::fold_lower(&flat);
    let Some(origin) = classify_origin(&msg, &views, top, &body) else {
        return Ok(ex);
    };
    ex.is_aliexpress = true;
    let subj = origin.subject.to_lowercase();

    let ref_date = ex.date.map(|d| d.date_naive());
    let mut found = scan_all(&views, &subj, &body, ref_date);
    let (status, from_subject) = apply_status(&mut ex, &subj, &body, &mut found);
    let (orders, tracks, replaced) = select_numbers(&mut found);
    ex.orders = assign(&found, &orders, &tracks, &body);
    cap_orders(&mut ex);
    items::fill(&flat, &body, &mut ex.orders);
    ex.replaced_tracking_numbers = replaced;
    settle_kind(
        &mut ex,
        Evidence {
            status: status.is_some(),
            subject_parcel: found.subject_parcel,
            subject_event: from_subject && found.subject_parcel_refused,
            from_carrier: origin.from_carrier,
            tracks: !tracks.is_empty(),
        },
    );
    Ok(ex)
}

/// The most orders taken from one email. A real multi-order confirmation
/// lists a handful; one forged email named 256.
pub const MAX_ORDERS_PER_EMAIL: usize = 20;

/// Parses the raw email; input that is blank, not a message, without any
/// header field or past the MIME bounds is an error.
fn parse_message(raw: &[u8]) -> Result<bounds::Parsed<'_>, ExtractError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ExtractError::Malformed("empty input".into()));
    }
    bounds::check_raw(raw)?;
    let msg = bounds::Parsed(
        PARSER
            .parse(raw)
            .ok_or_else(|| ExtractError::Malformed("no message found".into()))?,
    );
    bounds::check_tree(&msg)?;
    if msg.headers().is_empty() {
        return Err(ExtractError::Malformed("no header fields".into()));
    }
    Ok(msg)
}

/// The extraction of an email that is not (yet) known to be AliExpress's:
/// only its Message-ID, Date and Subject.
fn header_fields(msg: &Message<'_>) -> Extraction {
    Extraction {
        message_id: msg
            .message_id()
            .map(|s| s.trim_matches(['<', '>']).to_string()),
        date: msg
            .date()
            .and_then(|d| DateTime::<Utc>::from_timestamp(d.to_timestamp(), 0)),
        subject: msg.subject().unwrap_or("").to_string(),
        ..Extraction::default()
    }
}

/// Body text of every view, flattened (case kept: item titles need it; the
/// scanners read it folded and lower-cased).
fn flatten_bodies(views: &[View<'_>]) -> String {
    let mut flat = String::new();
    for v in views {
        if v.html.is_empty() {
            for p in &v.plain {
                flat.push_str(p);
                flat.push_str("\n\n");
            }
        } else {
            for h in &v.html {
                text::html_to_text(h, &mut flat);
                flat.push_str("\n\n");
            }
        }
    }
    flat
}

/// Scans the subject, the body text, the links of every view and, when the
/// body has a header row of labels, the HTML tables.
fn scan_all(views: &[View<'_>], subj: &str, body: &str, ref_date: Option<NaiveDate>) -> Found {
    let mut found = Found::default();
    scan_subject(subj, &mut found);
    scan_body(body, ref_date, &mut found);
    for v in views {
        for raw in v.html.iter().chain(&v.plain) {
            scan_links(raw, &mut found);
        }
        if found.header_row {
            for raw in &v.html {
                scan_header_tables(text::tables(raw), &mut found);
            }
            if v.html.is_empty() {
                for raw in &v.plain {
                    scan_header_tables(text::plain_tables(raw), &mut found);
                }
            }
        }
    }
    found
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hangul_status_phrases_match_with_and_without_spaces() {
        assert_eq!(unspaced_hangul("배송 완료").as_deref(), Some("배송완료"));
        assert_eq!(unspaced_hangul("in transit"), None);
        for subj in ["주문 1: 배송 완료", "주문 1: 배송완료"] {
            let st = best_status(subj, false).expect(subj);
            assert_eq!(st.kind, EmailKind::Delivered, "{subj}");
        }
    }

    #[test]
    fn parcel_subject_with_failed_check_digit_keeps_its_kind_not_its_number() {
        // RB123456785CN passes the S10 check; …786CN does not.
        let raw = b"From: AliExpress <transaction@notice.aliexpress.com>\r\n\
Subject: Package RB123456786CN: arrived in your country\r\n\
Content-Type: text/plain\r\n\r\nYour package is in your country.\r\n";
        let ex = extract(raw).unwrap();
        assert!(ex.orders.is_empty());
        assert_eq!(ex.kind, EmailKind::InTransit);
        // Without the parcel position, status words alone stay marketing.
        let raw = b"From: AliExpress <promotion@aliexpress.com>\r\n\
Subject: Deals delivered to your country\r\n\
Content-Type: text/plain\r\n\r\nShop now.\r\n";
        assert_eq!(extract(raw).unwrap().kind, EmailKind::Other);
    }

    #[test]
    fn a_status_row_awaiting_shipment_is_not_the_emails_kind() {
        let raw = b"From: AliExpress <transaction@notice.aliexpress.com>\r\n\
Subject: Your 2 orders: shipping update\r\n\
Content-Type: text/plain\r\n\r\n\
Order number: 3012227505581126\r\nStatus: Awaiting shipment\r\n\r\n\
Order number: 8211588542083415\r\nTracking number: LP00921335197721\r\nStatus: Shipped\r\n";
        assert_eq!(extract(raw).unwrap().kind, EmailKind::Shipped);
    }

    #[test]
    fn senders() {
        assert_eq!(
            classify_sender("transaction@notice.aliexpress.com"),
            Sender::AliExpress
        );
        assert_eq!(
            classify_sender("promotion@aliexpress.com"),
            Sender::AliExpress
        );
        assert_eq!(
            classify_sender(
                "transaction_at_notice_aliexpress_com_0a1b2c3d4e_0a1b2c3d@privaterelay.appleid.com"
            ),
            Sender::AliExpress
        );
        assert_eq!(
            classify_sender(
                "transaction_at_aliexpress_com_example_net_0a1b2c@privaterelay.appleid.com"
            ),
            Sender::LookAlike
        );
        assert_eq!(
            classify_sender("x@aliexpress.com.example.net"),
            Sender::LookAlike
        );
        assert_eq!(
            classify_sender("x@aliexpress-support.xyz"),
            Sender::LookAlike
        );
        assert_eq!(
            classify_sender("x@notice-aliexpress.com"),
            Sender::LookAlike
        );
        assert_eq!(classify_sender("no-reply@cainiao.com"), Sender::Carrier);
        assert_eq!(classify_sender("orders@order.temu.com"), Sender::Other);
        assert_eq!(classify_sender("garbage"), Sender::Other);
    }

    #[test]
    fn forward_prefixes() {
        assert_eq!(strip_forward_prefixes("Fwd: WG: Order 1: x"), "Order 1: x");
        assert_eq!(strip_forward_prefixes("Пересл: Заказ 1"), "Заказ 1");
        assert_eq!(
            strip_forward_prefixes("Order 8211968327931234: order shipped"),
            "Order 8211968327931234: order shipped"
        );
    }

    fn spec(raw: &str) -> serde_json::Value {
        let mut v = extract(raw.as_bytes())
            .map(|e| e.to_spec_json("x"))
            .unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("file");
        }
        v
    }

    #[test]
    fn french_outlook_inline_forward_plain_text() {
        let raw = "From: Camille <camille@example.fr>\nSubject: TR: Commande 8049982045479811 : commande exp\u{e9}di\u{e9}e\n\
                   Content-Type: text/plain; charset=utf-8\n\nRegarde.\n\n\
                   De : AliExpress <transaction@notice.aliexpress.com>\n\
                   Objet : Commande 8049982045479811 : commande exp\u{e9}di\u{e9}e\n\n\
                   Num\u{e9}ro de suivi : RS339620215NL\n";
        assert_eq!(
            spec(raw),
            serde_json::json!({"is_aliexpress": true, "kind": "shipped",
                "orders": [{"order_id": "8049982045479811", "tracking_numbers": ["RS339620215NL"]}]})
        );
    }

    #[test]
    fn numbers_split_by_wbr_zero_width_and_inline_tags() {
        let raw = "From: AliExpress <transaction@notice.aliexpress.com>\nSubject: Order #8211968327931235 shipped\n\
                   Content-Type: text/html; charset=utf-8\n\n\
                   <p>Tracking numbers: LP0052742<wbr>35&#8203;24449, <b>RB4267</b>74729SG</p>\
                   <p>Item no. 1005005834912540 \u{b7} Call (+1) 555 010 0000</p>";
        assert_eq!(
            spec(raw),
            serde_json::json!({"is_aliexpress": true, "kind": "shipped",
                "orders": [{"order_id": "8211968327931235",
                            "tracking_numbers": ["LP00527423524449", "RB426774729SG"]}]})
        );
    }

    #[test]
    fn chinese_labels() {
        let raw = "From: AliExpress <transaction@notice.aliexpress.com>\nSubject: \u{8ba2}\u{5355}\u{5df2}\u{53d1}\u{8d27}\n\
                   Content-Type: text/plain; charset=utf-8\n\n\
                   \u{8ba2}\u{5355}\u{53f7}\u{ff1a}8211968327931236\n\u{8fd0}\u{5355}\u{53f7}\u{ff1a}LP00527423524449\n";
        let v = spec(raw);
        assert_eq!(v["orders"][0]["order_id"], "8211968327931236");
        assert_eq!(v["orders"][0]["tracking_numbers"][0], "LP00527423524449");
    }

    fn html_mail(subject: &str, body: &str) -> String {
        format!(
            "From: AliExpress <transaction@notice.aliexpress.com>\nSubject: {subject}\n\
             Content-Type: text/html; charset=utf-8\n\n<html><body>{body}</body></html>\n"
        )
    }

    fn pairs(v: &serde_json::Value) -> Vec<(String, Vec<String>)> {
        v["orders"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                let t = o["tracking_numbers"].as_array().into_iter().flatten();
                (
                    o["order_id"].as_str().unwrap_or("-").to_string(),
                    t.filter_map(|x| x.as_str().map(str::to_string)).collect(),
                )
            })
            .collect()
    }

    fn p(o: &str, t: &[&str]) -> (String, Vec<String>) {
        (o.to_string(), t.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn table_rows_pair_each_order_with_its_own_parcels_across_a_carrier_column() {
        let raw = html_mail(
            "Your 2 orders have been shipped",
            "<table><tr><th>Order</th><th>Carrier</th><th>Tracking number</th></tr>\
             <tr><td>3012227505580718</td><td>Cainiao</td><td>LP00921335197205<br>RB084844600SG</td></tr>\
             <tr><td>8211588542083182</td><td>PostNL</td><td>RS339620215NL</td></tr></table>",
        );
        assert_eq!(
            pairs(&spec(&raw)),
            vec![
                p("3012227505580718", &["LP00921335197205", "RB084844600SG"]),
                p("8211588542083182", &["RS339620215NL"])
            ]
        );
    }

    #[test]
    fn table_rows_pair_through_nested_cells_and_grouped_digits() {
        let raw = html_mail(
            "Your 2 orders have been shipped",
            "<table><tr><th>Order No.</th><th>Tracking No.</th></tr>\
             <tr><td><table><tr><td>3012 2275 0558 0718</td></tr></table></td><td>LP00 9213 3519 7205</td></tr>\
             <tr><td><table><tr><td>8211 5885 4208 3182</td></tr></table></td><td>RB 0848 4460 0 SG</td></tr></table>",
        );
        assert_eq!(
            pairs(&spec(&raw)),
            vec![
                p("3012227505580718", &["LP00921335197205"]),
                p("8211588542083182", &["RB084844600SG"])
            ]
        );
    }

    #[test]
    fn table_rows_pair_with_the_parcel_column_first() {
        let raw = html_mail(
            "Your 2 orders have been shipped",
            "<table><tr><th>Tracking number</th><th>Order number</th></tr>\
             <tr><td>LP00921335197205</td><td>3012227505580718</td></tr>\
             <tr><td>RB084844600SG</td><td>8211588542083182</td></tr></table>",
        );
        assert_eq!(
            pairs(&spec(&raw)),
            vec![
                p("3012227505580718", &["LP00921335197205"]),
                p("8211588542083182", &["RB084844600SG"])
            ]
        );
    }

    #[test]
    fn a_parcel_in_the_second_orders_row_is_not_the_first_orders() {
        let raw = html_mail(
            "Your 2 orders: shipping update",
            "<table><tr><td>Order number</td><td>3012227505580718</td></tr>\
             <tr><td>Status</td><td>Awaiting shipment</td></tr></table>\
             <table><tr><td>Order number</td><td>8211588542083182</td></tr>\
             <tr><td>Tracking number</td><td>LP00921335197205</td></tr></table>",
        );
        assert_eq!(
            pairs(&spec(&raw)),
            vec![
                p("3012227505580718", &[]),
                p("8211588542083182", &["LP00921335197205"])
            ]
        );
    }

    #[test]
    fn plain_text_pipe_tables_pair_rows() {
        let raw = "From: AliExpress <transaction@notice.aliexpress.com>\nSubject: Your 2 orders have been shipped\n\
                   Content-Type: text/plain; charset=utf-8\n\n\
                   | Order number | Tracking number |\n|---|---|\n\
                   | 3012227505580718 | LP00921335197205 |\n| 8211588542083182 | RB084844600SG |\n";
        assert_eq!(
            pairs(&spec(raw)),
            vec![
                p("3012227505580718", &["LP00921335197205"]),
                p("8211588542083182", &["RB084844600SG"])
            ]
        );
    }

    #[test]
    fn items_skip_recommendations_totals_and_banners() {
        let raw = html_mail(
            "Order 8207731945520186: order confirmed",
            "<p>Your order 8207731945520186 has been confirmed.</p>\
             <p>Coupon: US $3.00 off orders over US $29.00</p>\
             <p>Example Official Store</p><p>Desk Lamp LED Flat ...</p><p>Warm white</p><p>US $6.48 x1</p>\
             <p>Subtotal US $6.48</p><p>Order total US $6.48</p>\
             <p>You may also like</p><p>Phone Holder ...</p><p>Black</p><p>US $3.12 x1</p>",
        );
        let v = spec(&raw);
        assert_eq!(
            v["orders"][0]["items"],
            serde_json::json!([{"title": "Desk Lamp LED Flat", "variant": "Warm white",
                "quantity": 1, "price": {"amount": "6.48", "currency": "USD"}}])
        );
        assert_eq!(v["orders"][0]["store"], "Example Official Store");
    }

    #[test]
    fn items_of_several_orders_go_to_the_order_named_below_their_block() {
        let raw = html_mail(
            "Bestellung 9999999999990007: Neuer Lieferstatus",
            "<p>Ihre kombinierte Lieferung (Bestellung 9999999999990007) hat ein Update.</p>\
             <p>A Store</p><p>Lampe ...</p><p>Variante A</p><p>\u{20ac} 1,99x1</p>\
             <p>Bestell-Nr.</p><p>9999999999990007</p>\
             <p>B Store</p><p>Kabel ...</p><p>x2</p><p>Sensor ...</p><p>x1</p>\
             <p>Bestell-Nr.</p><p>9999999999990008</p>",
        );
        let v = spec(&raw);
        let titles = |i: usize| -> Vec<String> {
            v["orders"][i]["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|it| it["title"].as_str().map(str::to_string))
                .collect()
        };
        assert_eq!(titles(0), vec!["Lampe"]);
        assert_eq!(titles(1), vec!["Kabel", "Sensor"]);
        assert_eq!(v["orders"][1]["store"], "B Store");
    }

    #[test]
    fn parcel_emails_naming_several_orders_only_in_links_give_no_items() {
        let raw = html_mail(
            "Package H9999207472066355373: in your country",
            "<p>Package details</p><p>Lampe ...</p><p>x1</p><p>Kabel ...</p><p>x1</p>\
             <a href=\"https://www.aliexpress.com/p/tracking/index.html?tradeOrderId=9999999999990013\">Track</a>\
             <a href=\"https://www.aliexpress.com/p/tracking/index.html?tradeOrderId=9999999999990014\">Track</a>",
        );
        let v = spec(&raw);
        assert_eq!(v["orders"].as_array().map(Vec::len), Some(2));
        assert!(v["orders"][0].get("items").is_none());
        assert!(v["orders"][1].get("items").is_none());
    }

    #[test]
    fn garbage_is_an_error_or_other() {
        assert!(extract(b"").is_err());
        assert!(extract(b"   \n").is_err());
        let e = extract(b"\xff\xfe\x00garbage").map(|e| e.is_aliexpress);
        assert!(matches!(e, Ok(false) | Err(_)));
    }
}
