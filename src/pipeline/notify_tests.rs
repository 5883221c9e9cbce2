//! Tests of rendering (golden files under `tests/golden/notify/`, rewrite
//! with `UPDATE_GOLDEN=1`) and of the once-only pass with a recording fake
//! sender and an in-memory store.

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};

use chrono::Duration;

use super::notify::{message_id_for, retry_delay, send_digest_now, send_due};
use crate::config::{Config, Security, SmtpConfig};
use crate::decide::notifications::{due_notifications, pending_content, Content};
use crate::model::{OrderState, ParcelStatus, ProtectionSource};
use crate::notify::email::EMAIL;
use crate::notify::{OutgoingEmail, SendError, Sender};
use crate::pipeline::SendSummary;
use crate::render::{render_digest, render_warning};
use crate::report::{EtaView, EventView, OrderView, ParcelView, StatusReport};
use crate::store::Store;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn config() -> Config {
    let mut c = Config::defaults(PathBuf::from(":memory:"));
    c.timezone = chrono_tz::Europe::Berlin;
    // The digest at 08:00 and warnings at 7 and 2 days are the defaults.
    c.smtp = Some(SmtpConfig {
        host: "127.0.0.1".into(),
        port: 1,
        security: Security::StartTls,
        username: None,
        password: None,
        ca_file: None,
        from: "aliwatch <watch@example.com>".into(),
        to: vec!["me@example.com".into()],
    });
    c
}

fn parcel(number: &str, status: ParcelStatus) -> ParcelView {
    ParcelView::sample(number, status)
}

fn event(t: &str, d: &str, loc: Option<&str>) -> Option<EventView> {
    Some(EventView {
        time: utc(t),
        description: d.into(),
        location: loc.map(str::to_owned),
    })
}

fn order(id: &str, state: OrderState, shipped: Option<&str>, ends: Option<&str>) -> OrderView {
    OrderView {
        confirmed_at: Some(date("2026-10-01")),
        shipped_at: shipped.map(date),
        protection_ends: ends.map(date),
        protection_source: ends.map_or(ProtectionSource::Unknown, |_| ProtectionSource::Default),
        ..OrderView::sample(id, state)
    }
}

/// The digest example: one order of each kind, values from the tracking
/// fixtures, one hostile description.
pub(crate) fn example_report(now: DateTime<Utc>) -> StatusReport {
    let mut ending = order(
        "8123456789012345",
        OrderState::Shipped,
        Some("2026-10-04"),
        Some("2026-12-03"),
    );
    let mut p = parcel("LP00527423524449", ParcelStatus::InTransit);
    p.carrier = Some("Cainiao".into());
    p.last_event = event(
        "2026-11-20T10:12:00Z",
        "Departed from customs",
        Some("Liege, BE"),
    );
    p.eta = Some(EtaView {
        from: date("2026-12-02"),
        to: date("2026-12-06"),
    });
    ending.parcels.push(p);

    let mut stalled = order(
        "3084943433511931",
        OrderState::Shipped,
        Some("2026-10-20"),
        Some("2026-12-19"),
    );
    let mut p = parcel("RB123456785CN", ParcelStatus::CustomsHold);
    p.carrier = Some("China Post".into());
    p.last_event = event(
        "2026-11-10T08:30:00Z",
        "wait for customs clearance <script>alert(1)</script>",
        Some("Frankfurt & Main"),
    );
    p.stalled = true;
    stalled.parcels.push(p);
    let mut p = parcel("CNDEU0000123456", ParcelStatus::InTransit);
    p.last_event = event("2026-11-26T16:45:00Z", "Arrived at linehaul office", None);
    stalled.parcels.push(p);

    let mut delivered = order(
        "5012345678901234",
        OrderState::Delivered,
        Some("2026-10-25"),
        Some("2026-12-24"),
    );
    delivered.auto_completes_on = Some(date("2026-12-05"));
    let mut p = parcel("UH037593814DE", ParcelStatus::Delivered);
    p.carrier = Some("DHL Paket".into());
    p.last_event = event("2026-11-27T11:02:00Z", "Parcel delivered", Some("Berlin"));
    p.delivered_at = Some(utc("2026-11-27T11:02:00Z"));
    delivered.parcels.push(p);

    let mut transit = order(
        "3088000000000001",
        OrderState::Shipped,
        Some("2026-11-18"),
        Some("2027-01-17"),
    );
    let mut p = parcel("LP00600000000001", ParcelStatus::OutForDelivery);
    p.carrier = Some("GLS".into());
    p.last_event = event(
        "2026-11-28T05:40:00Z",
        "Out For Delivery Today",
        Some("Potsdam"),
    );
    p.eta = Some(EtaView {
        from: date("2026-11-28"),
        to: date("2026-11-28"),
    });
    p.previous_numbers = vec!["LP00599999999999".into()];
    transit.parcels.push(p);

    let awaiting = order("3089000000000002", OrderState::AwaitingShipment, None, None);

    let mut completed = order(
        "3077000000000003",
        OrderState::Completed,
        Some("2026-10-01"),
        Some("2026-11-30"),
    );
    let mut p = parcel("LP00500000000003", ParcelStatus::Delivered);
    p.delivered_at = Some(utc("2026-11-25T09:00:00Z"));
    p.last_event = event("2026-11-25T09:00:00Z", "DELIVERED", None);
    completed.parcels.push(p);

    let mut loose = parcel("YT2412345678901234", ParcelStatus::InTransit);
    loose.last_event = event(
        "2026-11-27T03:00:00Z",
        "Shipment departed from facility",
        None,
    );

    ending.items = vec![item("LED desk lamp, flat", Some("Warm white"), 1, "1.99")];
    ending.store = Some("Beispiel Store".into());
    stalled.items = vec![
        item("USB-C cable 2 m braided", None, 2, "3.49"),
        item("手机壳 透明 防摔", Some("iPhone 15"), 1, "0.99"),
    ];
    transit.store = Some("GLS Gadgets Official Store".into());
    derived(StatusReport {
        generated_at: now,
        orders: vec![ending, stalled, delivered, transit, completed, awaiting],
        unassigned_parcels: vec![loose],
        notices: Vec::new(),
    })
}

fn item(title: &str, variant: Option<&str>, quantity: u32, eur: &str) -> crate::model::Item {
    crate::model::Item {
        title: title.into(),
        variant: variant.map(str::to_owned),
        quantity: Some(quantity),
        price: Some(crate::model::Price {
            amount: eur.into(),
            currency: "EUR".into(),
        }),
    }
}

/// Fills what the status derivation adds to hand-made orders: links and
/// the needs-action list (decide::lifecycle), as of the report's time.
pub(crate) fn derived(mut r: StatusReport) -> StatusReport {
    let rules = config().rules();
    let today = crate::decide::notifications::local_today(r.generated_at, rules.timezone);
    let link = |p: &mut ParcelView| {
        p.tracking_url = crate::decide::orders::tracking_url(
            &p.tracking_number,
            rules
                .tracking
                .providers
                .first()
                .unwrap_or(crate::model::Provider::None),
        )
    };
    for o in &mut r.orders {
        o.url = crate::decide::orders::order_url(&o.order_id);
        o.parcels.iter_mut().for_each(link);
        o.protection_days_left = o.protection_ends.map(|e| (e - today).num_days());
        let t = crate::decide::lifecycle::Today {
            state: o.state,
            completed_reason: None,
            auto_completes_on: o.auto_completes_on,
            dispute_until: o.dispute_until,
        };
        o.needs_action =
            crate::decide::lifecycle::needs_action(&t, o.protection_ends, &o.parcels, 7, today);
    }
    r.unassigned_parcels.iter_mut().for_each(link);
    r
}

const NOW: &str = "2026-11-28T07:00:00Z"; // 08:00 in Berlin

fn golden(name: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/notify")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    if want != got {
        let failed = path.with_extension("failed");
        let _ = std::fs::write(&failed, got);
        panic!(
            "{} differs; got written to {} (UPDATE_GOLDEN=1 to accept)",
            path.display(),
            failed.display()
        );
    }
}

#[test]
fn digest_golden() {
    let now = utc(NOW);
    let r = render_digest(&example_report(now), &config().rules(), now);
    golden("digest.subject", &format!("{}\n", r.subject));
    golden("digest.txt", &r.text);
    golden("digest.html", &r.html);
    // the README example is the golden HTML
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/digest-example.html");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(docs.parent().expect("dir")).expect("mkdir");
        std::fs::write(&docs, &r.html).expect("write example");
    }
}

#[test]
fn warning_golden() {
    let now = utc(NOW);
    let report = example_report(now);
    let r = render_warning(&report.orders[0], 7, &config().rules(), now);
    golden("warning.subject", &format!("{}\n", r.subject));
    golden("warning.txt", &r.text);
    golden("warning.html", &r.html);
}

#[test]
fn digest_content_rules() {
    let now = utc(NOW);
    let report = example_report(now);
    let r = render_digest(&report, &config().rules(), now);
    assert_eq!(
        r.subject,
        "aliwatch: 3 need action, 1 in transit, 1 awaiting shipment, 1 recently delivered, 1 parcel without an order"
    );
    // every active order and its parcels in both parts
    for o in report.orders.iter().filter(|o| o.is_active()) {
        assert!(r.text.contains(&o.order_id), "{}", o.order_id);
        assert!(r.html.contains(&o.order_id), "{}", o.order_id);
        for p in &o.parcels {
            assert!(r.text.contains(&p.tracking_number));
            assert!(r.html.contains(&p.tracking_number));
            assert!(r.text.contains(p.status.words()));
            assert!(r.html.contains(p.status.words()));
        }
    }
    // action first, under a heading that says so
    let action = r.text.find("NEEDS YOUR ACTION").expect("heading");
    let transit = r.text.find("IN TRANSIT").expect("heading");
    assert!(action < transit);
    assert!(r.text.find("8123456789012345").expect("id") < transit);
    assert!(r.text.find("3088000000000001").expect("id") > transit);
    // each order that needs action says the one thing to do, with its date
    let text = flat(&r.text);
    assert!(text.contains("Protection ends in 5 days (2026-12-03): ask the seller to extend it"));
    assert!(text.contains("Confirm receipt or dispute by 2026-12-05"));
    assert!(text.contains("Contact customs about RB123456785CN"));
    // orders are named by their items, the order id is always there
    assert!(text.contains("LED desk lamp, flat"));
    assert!(text.contains("USB-C cable 2 m braided ×2 + 手机壳 透明 防摔"));
    // links: every order to its page, every parcel to its tracking page
    for o in report.orders.iter().filter(|o| o.is_active()) {
        assert!(r.html.contains(&format!("href=\"{}\"", o.url)), "{}", o.url);
        for p in &o.parcels {
            assert!(r.html.contains(&format!("href=\"{}\"", p.tracking_url)));
        }
    }
    // hostile values arrive escaped in HTML, verbatim in text
    assert!(!r.html.contains("<script>"), "{}", r.html);
    assert!(r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(r.html.contains("Frankfurt &amp; Main"));
    assert!(text.contains("<script>alert(1)</script>"));
    // times in the configured zone: 10:12Z is 11:12 in Berlin
    assert!(text.contains("2026-11-20 11:12"));
    // days since shipping and protection
    assert!(text.contains("shipped 2026-10-04 (day 56)"));
    assert!(text.contains("protection until 2026-12-03 (5 days left)"));
    assert!(text.contains("expected 2026-12-02 – 2026-12-06"));
    // the text part keeps to 80 columns, wide characters counting two
    for l in r.text.lines() {
        assert!(crate::render::text::width(l) <= 80, "{l:?}");
    }
    // a dark variant where clients honour it
    assert!(r.html.contains("prefers-color-scheme:dark"));
}

/// Text with line breaks and indents folded to single spaces (wrapping
/// may break any phrase).
fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 100 active orders with long titles, events and links: the HTML part
/// stays under Gmail's ~102 KB clipping, the text part within 80 columns.
#[test]
fn a_digest_of_100_orders_fits_gmail_and_80_columns() {
    let now = utc(NOW);
    let base = example_report(now);
    let mut big = base.clone();
    big.orders.clear();
    for i in 0..100 {
        let mut o = base.orders[i % 4].clone();
        o.order_id = format!("81{i:014}");
        o.url = crate::decide::orders::order_url(&o.order_id);
        o.items = vec![item(
            &format!("Wireless earbuds Bluetooth 5.3 noise cancelling sport headset model {i} with charging case"),
            Some("Black"),
            1,
            "12.99",
        )];
        big.orders.push(o);
    }
    let r = render_digest(&big, &config().rules(), now);
    eprintln!(
        "digest of 100 orders: html {} B, text {} B",
        r.html.len(),
        r.text.len()
    );
    assert!(r.html.len() < 102_000, "{} bytes", r.html.len());
    for l in r.text.lines() {
        assert!(crate::render::text::width(l) <= 80, "{l:?}");
    }
}

#[test]
fn hostile_order_ids_and_subjects_are_escaped() {
    let now = utc(NOW);
    let mut o = order(
        "<script>x</script>",
        OrderState::Shipped,
        Some("2026-10-04"),
        Some("2026-12-03"),
    );
    let mut p = parcel("<b>\"'&", ParcelStatus::Exception);
    p.carrier = Some("<img src=x onerror=alert(1)>".into());
    o.parcels.push(p);
    let report = StatusReport {
        generated_at: now,
        orders: vec![o.clone()],
        unassigned_parcels: vec![],
        notices: Vec::new(),
    };
    for r in [
        render_digest(&report, &config().rules(), now),
        render_warning(&o, 7, &config().rules(), now),
    ] {
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(!r.html.contains("<img"), "{}", r.html);
        assert!(!r.html.contains("<b>"), "{}", r.html);
        assert!(r.html.contains("&lt;b&gt;&quot;&#39;&amp;"), "{}", r.html);
        // no order link for a non-numeric id
        assert!(!r.html.contains("orderId="), "{}", r.html);
    }
}

#[test]
fn empty_digest_says_so() {
    let now = utc(NOW);
    let report = StatusReport {
        generated_at: now,
        orders: vec![],
        unassigned_parcels: vec![],
        notices: Vec::new(),
    };
    let r = render_digest(&report, &config().rules(), now);
    assert_eq!(r.subject, "aliwatch: no active orders");
    assert!(r.text.contains("Nothing is on its way right now."));
}

#[test]
fn warning_subject_and_advice() {
    let now = utc(NOW);
    let report = example_report(now);
    let r = render_warning(&report.orders[0], 7, &config().rules(), now);
    assert_eq!(
        r.subject,
        "Buyer Protection for order 8123456789012345 ends in 5 days (2026-12-03)"
    );
    for part in [&flat(&r.text), &r.html] {
        assert!(part.contains("Check the parcel"));
        assert!(part.contains("ask the seller to extend Buyer Protection"));
        assert!(part.contains("open a dispute before 2026-12-03"));
        assert!(part.contains("LP00527423524449"));
        assert!(part.contains("Departed from customs"));
    }
    let mut o = report.orders[0].clone();
    o.protection_ends = Some(date("2026-11-28"));
    let r = render_warning(&o, 2, &config().rules(), now);
    assert_eq!(
        r.subject,
        "Buyer Protection for order 8123456789012345 ends today (2026-11-28)"
    );
}

// ------------------------------------------------------ the once-only pass

/// Records what it was asked to send; fails while `fail` is set.
#[derive(Default)]
struct FakeSender {
    sent: Mutex<Vec<OutgoingEmail>>,
    fail: Mutex<Option<bool>>,
}

impl FakeSender {
    fn failing(permanent: bool) -> FakeSender {
        let f = FakeSender::default();
        *f.fail.lock().expect("lock") = Some(permanent);
        f
    }
    fn heal(&self) {
        *self.fail.lock().expect("lock") = None;
    }
    fn keys(&self) -> Vec<String> {
        self.sent
            .lock()
            .expect("lock")
            .iter()
            .map(|e| e.key.clone())
            .collect()
    }
}

impl Sender for FakeSender {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), SendError> {
        if let Some(permanent) = *self.fail.lock().expect("lock") {
            return Err(SendError {
                permanent,
                message: "connection refused".into(),
            });
        }
        self.sent.lock().expect("lock").push(email.clone());
        Ok(())
    }
}

fn one_order_report(now: DateTime<Utc>, state: OrderState, ends: &str) -> StatusReport {
    let mut o = order("8123456789012345", state, Some("2026-10-04"), Some(ends));
    o.parcels
        .push(parcel("LP00527423524449", ParcelStatus::InTransit));
    StatusReport {
        generated_at: now,
        orders: vec![o],
        unassigned_parcels: vec![],
        notices: Vec::new(),
    }
}

#[tokio::test]
async fn warning_and_digest_are_sent_once() {
    let mut store = Store::open_in_memory().expect("store");
    let cfg = config();
    let now = utc(NOW);
    let report = one_order_report(now, OrderState::Shipped, "2026-12-03");
    let s = FakeSender::default();
    let sum = send_due(&mut store, &report, &cfg, now, &s)
        .await
        .expect("pass");
    assert_eq!((sum.newly_due, sum.sent), (2, 2));
    assert_eq!(
        s.keys(),
        ["warning:8123456789012345:7d", "digest:2026-11-28"]
    );
    let sent = s.sent.lock().expect("lock").clone();
    assert_eq!(
        sent[0].message_id,
        "<warning.8123456789012345.7d@example.com>"
    );
    assert_eq!(sent[1].message_id, "<digest.2026-11-28@example.com>");
    // more passes the same day: nothing
    for t in ["2026-11-28T07:05:00Z", "2026-11-28T20:00:00Z"] {
        let sum = send_due(&mut store, &report, &cfg, utc(t), &s)
            .await
            .expect("pass");
        assert_eq!(sum, SendSummary::default(), "{t}");
    }
    assert_eq!(s.keys().len(), 2);
    // 2 days left (2026-12-01 in Berlin): the second warning, and that day's digest
    let t = utc("2026-12-01T07:00:00Z");
    send_due(&mut store, &report, &cfg, t, &s)
        .await
        .expect("pass");
    assert_eq!(
        s.keys()[2..],
        [
            "warning:8123456789012345:2d".to_string(),
            "digest:2026-12-01".to_string()
        ]
    );
}

#[tokio::test]
async fn failed_sends_stay_pending_and_are_retried_with_backoff() {
    let mut store = Store::open_in_memory().expect("store");
    let cfg = config();
    let now = utc(NOW);
    let report = one_order_report(now, OrderState::Shipped, "2026-12-31");
    let s = FakeSender::failing(false);
    let sum = send_due(&mut store, &report, &cfg, now, &s)
        .await
        .expect("pass");
    assert_eq!((sum.newly_due, sum.sent, sum.failed), (1, 0, 1));
    assert_eq!(sum.last_error.as_deref(), Some("connection refused"));
    let rec = store
        .notification(EMAIL, &"digest:2026-11-28".parse().expect("key"))
        .expect("read")
        .expect("row");
    assert_eq!((rec.state.as_str(), rec.attempts), ("pending", 1));
    // within the backoff: not tried
    let t = now + Duration::seconds(30);
    let sum = send_due(&mut store, &report, &cfg, t, &s)
        .await
        .expect("pass");
    assert_eq!((sum.failed, sum.waiting), (0, 1));
    // after it: tried again, fails again (attempt 2 -> 2 minutes)
    let t = now + Duration::minutes(1);
    let sum = send_due(&mut store, &report, &cfg, t, &s)
        .await
        .expect("pass");
    assert_eq!(sum.failed, 1);
    // server back, next day already: the pending digest is sent once, no backlog
    s.heal();
    let t = utc("2026-11-28T09:00:00Z");
    let sum = send_due(&mut store, &report, &cfg, t, &s)
        .await
        .expect("pass");
    assert_eq!(sum.sent, 1);
    assert_eq!(s.keys(), ["digest:2026-11-28"]);
    let sum = send_due(&mut store, &report, &cfg, t + Duration::hours(1), &s)
        .await
        .expect("pass");
    assert_eq!(sum, SendSummary::default());
}

#[tokio::test]
async fn a_day_old_pending_digest_is_replaced_by_todays() {
    let mut store = Store::open_in_memory().expect("store");
    let cfg = config();
    let report = one_order_report(utc(NOW), OrderState::Shipped, "2026-12-31");
    let s = FakeSender::failing(false);
    send_due(&mut store, &report, &cfg, utc(NOW), &s)
        .await
        .expect("pass");
    s.heal();
    // down for three days; back after `at` on 12-01: one digest, 12-01's
    let t = utc("2026-12-01T10:00:00Z");
    let sum = send_due(&mut store, &report, &cfg, t, &s)
        .await
        .expect("pass");
    assert_eq!(sum.sent, 1);
    assert_eq!(s.keys(), ["digest:2026-12-01"]);
    let old = store
        .notification(EMAIL, &"digest:2026-11-28".parse().expect("key"))
        .expect("read")
        .expect("row");
    assert_eq!(old.state, "superseded");
}

#[tokio::test]
async fn crash_between_send_and_mark_repeats_the_same_message_id_once() {
    let mut store = Store::open_in_memory().expect("store");
    let cfg = config();
    let now = utc(NOW);
    let report = one_order_report(now, OrderState::Shipped, "2026-12-03");
    // simulate the crashed pass: intent recorded, email sent, never marked
    let recorded = store.notification_keys(EMAIL).expect("keys");
    let due = due_notifications(&report, &recorded, now, &cfg.rules());
    let s = FakeSender::default();
    for n in &due {
        store
            .record_intent(EMAIL, &n.key, &message_id_for(&n.key, &cfg), &[], now)
            .expect("record");
        let rec = store
            .notification(EMAIL, &n.key)
            .expect("read")
            .expect("row");
        let r = match pending_content(&rec.key, &report, now, &cfg.rules()).expect("applies") {
            Content::Digest => render_digest(&report, &cfg.rules(), now),
            Content::Warning {
                order,
                threshold_days,
            } => render_warning(order, threshold_days, &cfg.rules(), now),
            Content::Warnings(list) => crate::render::render_warnings(&list, &cfg.rules(), now),
            other => panic!("not an email: {other:?}"),
        };
        s.send(&OutgoingEmail {
            key: n.key.to_string(),
            message_id: message_id_for(&n.key, &cfg),
            date: now,
            subject: r.subject,
            text: r.text,
            html: r.html,
        })
        .await
        .expect("sent");
    }
    // "restart": a new pass re-sends each at most once, same Message-IDs
    let later = now + Duration::minutes(3);
    send_due(&mut store, &report, &cfg, later, &s)
        .await
        .expect("pass");
    send_due(&mut store, &report, &cfg, later + Duration::hours(2), &s)
        .await
        .expect("pass");
    let sent = s.sent.lock().expect("lock").clone();
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[0].message_id, sent[2].message_id);
    assert_eq!(sent[1].message_id, sent[3].message_id);
}

#[tokio::test]
async fn a_pending_larger_threshold_is_superseded_by_a_smaller_one() {
    let mut store = Store::open_in_memory().expect("store");
    let mut cfg = config();
    cfg.digest.enabled = false;
    let now = utc(NOW);
    let report = one_order_report(now, OrderState::Shipped, "2026-12-03");
    // 7d due while the server is down for four days
    let s = FakeSender::failing(false);
    send_due(&mut store, &report, &cfg, now, &s)
        .await
        .expect("pass");
    s.heal();
    // back when 1 day is left: one email, the 2d one
    let t = utc("2026-12-02T07:00:00Z");
    let sum = send_due(&mut store, &report, &cfg, t, &s)
        .await
        .expect("pass");
    assert_eq!(sum.sent, 1);
    assert_eq!(s.keys(), ["warning:8123456789012345:2d"]);
    let old = store
        .notification(EMAIL, &"warning:8123456789012345:7d".parse().expect("key"))
        .expect("read")
        .expect("row");
    assert_eq!(old.state, "superseded");
}

#[test]
fn rendering_is_fast() {
    let now = utc(NOW);
    let base = example_report(now);
    let mut big = base.clone();
    for i in 0..500 {
        let mut o = base.orders[i % base.orders.len()].clone();
        o.order_id = format!("9{i:015}");
        big.orders.push(o);
    }
    let started = std::time::Instant::now();
    let r = render_digest(&big, &config().rules(), now);
    let took = started.elapsed();
    eprintln!(
        "digest of {} orders: {took:?}, text {} B, html {} B",
        big.orders.len(),
        r.text.len(),
        r.html.len()
    );
    assert!(took < std::time::Duration::from_secs(2));
}

#[tokio::test]
async fn completed_orders_are_never_warned_and_stale_pending_warnings_dropped() {
    let mut store = Store::open_in_memory().expect("store");
    let mut cfg = config();
    cfg.digest.enabled = false;
    let now = utc(NOW);
    let s = FakeSender::failing(false);
    let active = one_order_report(now, OrderState::Shipped, "2026-12-03");
    send_due(&mut store, &active, &cfg, now, &s)
        .await
        .expect("pass");
    // the user confirmed receipt meanwhile; the server is back
    s.heal();
    let done = one_order_report(now, OrderState::Completed, "2026-12-03");
    let sum = send_due(&mut store, &done, &cfg, now + Duration::hours(1), &s)
        .await
        .expect("pass");
    assert_eq!((sum.sent, sum.dropped), (0, 1));
    assert!(s.keys().is_empty());
}

#[tokio::test]
async fn without_smtp_nothing_is_recorded_and_it_stays_due() {
    let mut store = Store::open_in_memory().expect("store");
    let mut cfg = config();
    cfg.smtp = None;
    let now = utc(NOW);
    let report = one_order_report(now, OrderState::Shipped, "2026-12-03");
    let s = FakeSender::default();
    let sum = send_due(&mut store, &report, &cfg, now, &s)
        .await
        .expect("pass");
    assert!(sum.not_configured);
    assert_eq!(sum.newly_due, 2);
    assert!(store.notification_keys(EMAIL).expect("keys").is_empty());
    assert!(send_digest_now(&mut store, &report, &cfg, now, &s)
        .await
        .is_err());
}

#[tokio::test]
async fn digest_send_counts_as_todays_digest() {
    let mut store = Store::open_in_memory().expect("store");
    let cfg = config();
    let report = one_order_report(utc(NOW), OrderState::Shipped, "2026-12-31");
    let s = FakeSender::default();
    // 06:00 Berlin, before `at`
    let early = utc("2026-11-28T05:00:00Z");
    let d = send_digest_now(&mut store, &report, &cfg, early, &s)
        .await
        .expect("send");
    assert_eq!(d.message_id, "<digest.2026-11-28@example.com>");
    assert!(!d.extra_copy);
    // the scheduled one does not follow
    let sum = send_due(&mut store, &report, &cfg, utc(NOW), &s)
        .await
        .expect("pass");
    assert_eq!(sum.sent, 0);
    // a second --send: an extra copy with its own Message-ID
    let d = send_digest_now(&mut store, &report, &cfg, utc(NOW), &s)
        .await
        .expect("send");
    assert!(d.extra_copy);
    assert_eq!(
        d.message_id,
        "<digest.2026-11-28.manual-070000@example.com>"
    );
    assert_eq!(s.keys().len(), 2);
}

#[test]
fn retry_delays_grow_to_an_hour() {
    let m: Vec<i64> = (1..=9).map(|a| retry_delay(a).num_minutes()).collect();
    assert_eq!(m, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
}

#[test]
fn service_notices_reach_both_parts_escaped() {
    let now = utc("2026-11-28T08:00:00Z");
    let mut report = example_report(now);
    report
        .notices
        .push("17TRACK registration quota used up <b>(3 numbers queued)</b>".into());
    let email = render_digest(&report, &config().rules(), now);
    assert!(
        email
            .text
            .contains("quota used up <b>(3 numbers queued)</b>"),
        "{}",
        email.text
    );
    assert!(
        email
            .html
            .contains("quota used up &lt;b&gt;(3 numbers queued)&lt;/b&gt;"),
        "{}",
        email.html
    );
}

/// SPEC §5: a first sync that finds two orders past two thresholds sends
/// ONE warning naming both, soonest first, each threshold recorded once;
/// a second pass sends nothing; a resend after a crash is the same
/// message.
#[tokio::test]
async fn warnings_due_in_one_pass_are_folded_into_one_email() {
    let mut cfg = config();
    cfg.digest.enabled = false;
    let now = utc(NOW);
    let mut soon = order(
        "8100000000000001",
        OrderState::Shipped,
        Some("2026-10-01"),
        Some("2026-11-29"),
    );
    soon.items = vec![item("Desk lamp", None, 1, "9.99")];
    let later = order(
        "8100000000000002",
        OrderState::Shipped,
        Some("2026-10-05"),
        Some("2026-12-03"),
    );
    let report = derived(StatusReport {
        generated_at: now,
        orders: vec![later, soon],
        unassigned_parcels: vec![],
        notices: Vec::new(),
    });
    let mut store = Store::open_in_memory().expect("store");
    let s = FakeSender::default();
    let sum = send_due(&mut store, &report, &cfg, now, &s)
        .await
        .expect("pass");
    assert_eq!((sum.newly_due, sum.sent), (2, 2));
    let sent = s.sent.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1, "one email for both orders");
    let email = &sent[0];
    assert!(email.subject.contains("Buyer Protection") && email.subject.contains("2 orders"));
    assert!(
        email.subject.contains("the first ends in 1 day"),
        "{}",
        email.subject
    );
    let first = email.text.find("8100000000000001").expect("soonest named");
    let second = email.text.find("8100000000000002").expect("both named");
    assert!(first < second, "soonest deadline first");
    for k in ["warning:8100000000000001:2d", "warning:8100000000000002:7d"] {
        let rec = store
            .notification(EMAIL, &k.parse().expect("key"))
            .expect("read")
            .expect("recorded");
        assert_eq!(rec.state, "sent", "{k}");
    }
    // nothing more in a second pass
    let again = send_due(&mut store, &report, &cfg, now + Duration::minutes(5), &s)
        .await
        .expect("pass");
    assert_eq!((again.newly_due, again.sent), (0, 0));
    assert_eq!(s.sent.lock().expect("lock").len(), 1);
    // the same set of keys always gets the same Message-ID (a resend
    // after a crash is the same message)
    let keys: Vec<crate::model::NotificationKey> =
        ["warning:8100000000000001:2d", "warning:8100000000000002:7d"]
            .iter()
            .map(|k| k.parse().expect("key"))
            .collect();
    let ch = crate::notify::EmailChannel {
        sender: FakeSender::default(),
        from: cfg.smtp.as_ref().map(|s| s.from.clone()),
    };
    use crate::notify::Notifier;
    let mut reversed = keys.clone();
    reversed.reverse();
    assert_eq!(ch.id_for_group(&keys), email.message_id);
    assert_eq!(ch.id_for_group(&reversed), email.message_id);
}

fn status_table(r: &StatusReport, layout: crate::render::status::Layout) -> String {
    crate::render::render_status_table(r, &config().rules(), layout)
}

#[test]
fn status_table_golden() {
    use crate::render::status::Layout;
    let report = example_report(utc(NOW));
    golden("status-80.txt", &status_table(&report, Layout::Fit(80)));
    golden("status-wide.txt", &status_table(&report, Layout::Wide));
}

/// Whatever the width, every line of the fitted table fits it, the marks
/// survive the cuts and the columns line up by display width, also with
/// Chinese titles (two columns per character).
#[test]
fn status_table_fits_every_width_and_keeps_marks() {
    use crate::render::status::{Layout, MIN_COLUMNS};
    use crate::render::text::width;
    let mut report = example_report(utc(NOW));
    report.orders[1].items = vec![item("无线蓝牙耳机 降噪 运动型 带充电盒", None, 2, "9.99")];
    report.orders[0].parcels[0].stalled = true;
    let wide = status_table(&report, Layout::Wide);
    for cols in [40, 60, 72, 80, 100, 132, 200] {
        let t = status_table(&report, Layout::Fit(cols));
        let limit = cols.max(MIN_COLUMNS);
        for l in t.lines() {
            assert!(width(l) <= limit, "{cols} cols: {l:?} is {}", width(l));
        }
        assert!(t.contains("!stalled"), "{cols}:\n{t}");
        assert_eq!(
            t.matches("!ends").count(),
            wide.matches("!ends").count(),
            "{cols}:\n{t}"
        );
        // The state column starts at the same display column on every
        // order line.
        if cols < 80 {
            continue;
        }
        let starts: Vec<usize> = t
            .lines()
            .filter(|l| !l.starts_with(' '))
            .filter_map(|l| {
                let at = ["shipped", "delivered", "STATE", "awaiting_shipment"]
                    .iter()
                    .filter_map(|w| l.find(&format!("  {w}")))
                    .max()?;
                Some(width(&l[..at]))
            })
            .collect();
        assert!(starts.windows(2).all(|w| w[0] == w[1]), "{cols}:\n{t}");
    }
    assert!(
        wide.contains("无线蓝牙耳机 降噪 运动型 带充电盒 ×2"),
        "{wide}"
    );
}

/// `--all` says why and when each completed order completed.
#[test]
fn status_table_says_why_completed() {
    use crate::model::CompletedReason;
    use crate::render::status::Layout;
    let now = utc(NOW);
    let mut report = example_report(now);
    let cases = [
        (CompletedReason::Auto, "auto-completed 2026-10-02"),
        (CompletedReason::Closed, "closed"),
        (CompletedReason::Done, "done"),
        (CompletedReason::Stale, "no news since 2026-07-01"),
        // the day of the receipt email (its newest news), not the day the
        // order was placed (`confirmed_at`)
        (CompletedReason::Confirmed, "confirmed 2026-07-01"),
    ];
    let template = report.orders[0].clone();
    report.orders.clear();
    report.unassigned_parcels.clear();
    for (i, (reason, _)) in cases.iter().enumerate() {
        let mut o = template.clone();
        o.order_id = format!("812345678901234{i}");
        o.state = OrderState::Completed;
        o.completed_reason = Some(*reason);
        o.dispute_until = Some(date("2026-10-17"));
        o.confirmed_at = Some(date("2026-06-01"));
        o.last_activity = Some(date("2026-07-01"));
        o.needs_action.clear();
        report.orders.push(o);
    }
    let t = status_table(&report, Layout::Fit(80));
    for (i, (_, words)) in cases.iter().enumerate() {
        let line = t
            .lines()
            .find(|l| l.starts_with(&format!("812345678901234{i}")))
            .expect("order line");
        assert!(line.ends_with(words), "{line:?} should end with {words:?}");
    }
}

/// A provider's or an email's text never reaches the terminal as a control
/// sequence (an escape could clear the screen or retitle the window).
#[test]
fn status_table_blanks_control_characters_from_emails_and_providers() {
    use crate::render::status::Layout;
    let mut report = example_report(utc(NOW));
    report.orders[0].parcels[0].last_event = event(
        "2026-11-20T10:12:00Z",
        "Departed\u{1b}[2J\u{1b}]0;pwned\u{7}",
        None,
    );
    report.orders[0].store = Some("Shop\u{1b}[31m".into());
    report.orders[0].items[0].title = "Lamp\r\nX-Injected: 1".into();
    for layout in [Layout::Fit(80), Layout::Wide] {
        let t = status_table(&report, layout);
        assert!(
            !t.chars().any(|c| c.is_control() && c != '\n'),
            "{layout:?}: {t:?}"
        );
    }
}

#[test]
fn status_table_says_where_a_parcel_came_from_and_what_is_unknown() {
    use crate::render::status::Layout;
    let now = utc(NOW);
    let mut report = example_report(now);
    let mut by_hand = report.unassigned_parcels[0].clone();
    by_hand.tracking_number = "RB123456785GB".into();
    by_hand.origin = crate::report::ParcelOrigin::Hand;
    report.unassigned_parcels.push(by_hand);
    let mut unknown = report.orders[0].clone();
    unknown.order_id = "8100000000000505".into();
    unknown.state = OrderState::Shipped;
    unknown.shipped_at = None;
    unknown.protection_ends = None;
    unknown.protection_days_left = None;
    unknown.protection_source = ProtectionSource::Unknown;
    unknown.needs_action.clear();
    unknown.url = crate::decide::orders::order_url("8100000000000505");
    report.orders.push(unknown);
    for layout in [Layout::Fit(80), Layout::Wide] {
        let t = status_table(&report, layout);
        let line = |n: &str| t.lines().find(|l| l.contains(n)).unwrap_or_default();
        assert!(line("YT2412345678901234").contains("(email)"), "{t}");
        assert!(line("RB123456785GB").contains("(by hand)"), "{t}");
        assert!(!t.contains("added by hand"), "{t}");
        assert!(
            t.contains("protection end unknown: check the order page"),
            "{t}"
        );
        assert!(
            t.contains("https://www.aliexpress.com/p/order/detail.html?orderId=8100000000000505"),
            "{t}"
        );
        if layout == Layout::Fit(80) {
            assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
        }
    }
}
