//! Digest and warnings against a REAL SMTP server: the aiosmtpd sink from
//! `mailstack.rs` on loopback, STARTTLS required, AUTH required, TLS from
//! the throw-away test CA. Messages are read back byte-exact from the
//! sink's spool and parsed with mail-parser.

use std::path::PathBuf;

use aliwatch::config::{Config, Secret, Security, SmtpConfig};
use aliwatch::model::{OrderState, ParcelStatus, ProtectionSource};
use aliwatch::notify::email::EMAIL;
use aliwatch::notify::{OutgoingEmail, Sender, SmtpSender};
use aliwatch::pipeline::{self as notify, notify::message_id_for};
use aliwatch::report::{EtaView, EventView, OrderView, ParcelView, StatusReport};
use aliwatch::store::Store;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use mail_parser::{MessageParser, MimeHeaders};

use crate::mailstack::{free_port, MailStack, StackOptions};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// 08:00 in Berlin.
const NOW: &str = "2026-11-28T07:00:00Z";

fn smtp_config(stack: &MailStack, port: u16, password_file: PathBuf) -> SmtpConfig {
    SmtpConfig {
        host: "localhost".into(),
        port,
        security: Security::StartTls,
        username: Some("alice".into()),
        password: Some(Secret::File {
            key: "password_file",
            path: password_file,
        }),
        ca_file: Some(stack.ca_pem()),
        from: "aliwatch <alice@example.test>".into(),
        to: vec!["alice@example.test".into()],
    }
}

fn config(smtp: SmtpConfig) -> Config {
    let mut c = Config::defaults(PathBuf::from(":memory:"));
    c.timezone = chrono_tz::Europe::Berlin;
    // The digest at 08:00 and warnings at 7 and 2 days are the defaults.
    c.smtp = Some(smtp);
    c
}

fn parcel(number: &str, status: ParcelStatus, desc: &str) -> ParcelView {
    ParcelView {
        tracking_number: number.into(),
        tracking_url: String::new(),
        carrier: Some("Cainiao".into()),
        provider: None,
        status,
        status_detail: Some(desc.into()),
        last_event: Some(EventView {
            time: utc("2026-11-20T10:12:00Z"),
            description: desc.into(),
            location: Some("Liege, BE".into()),
        }),
        eta: Some(EtaView {
            from: date("2026-12-02"),
            to: date("2026-12-06"),
        }),
        last_checked_at: None,
        delivered_at: None,
        stalled: false,
        origin: Default::default(),
        previous_numbers: vec![],
    }
}

fn order(id: &str, state: OrderState, ends: &str, parcels: Vec<ParcelView>) -> OrderView {
    OrderView {
        order_id: id.into(),
        state,
        completed_reason: None,
        confirmed_at: Some(date("2026-10-01")),
        shipped_at: Some(date("2026-10-04")),
        protection_ends: Some(date(ends)),
        protection_days_left: None,
        protection_source: ProtectionSource::Default,
        auto_completes_on: None,
        dispute_until: None,
        last_activity: None,
        items: vec![],
        store: None,
        url: String::new(),
        needs_action: vec![],
        parcels,
    }
}

/// Three active orders (one 5 days from the end of protection, one with a
/// hostile event description) and a completed one.
fn report() -> StatusReport {
    with_actions(StatusReport {
        generated_at: utc(NOW),
        orders: vec![
            order(
                "8123456789012345",
                OrderState::Shipped,
                "2026-12-03",
                vec![parcel(
                    "LP00527423524449",
                    ParcelStatus::InTransit,
                    "Departed from customs",
                )],
            ),
            order(
                "3084943433511931",
                OrderState::Shipped,
                "2026-12-20",
                vec![
                    parcel(
                        "RB123456785CN",
                        ParcelStatus::Exception,
                        "<script>alert('x')</script> held",
                    ),
                    parcel(
                        "CNDEU0000123456",
                        ParcelStatus::InTransit,
                        "Arrived at linehaul office",
                    ),
                ],
            ),
            order(
                "3089000000000002",
                OrderState::AwaitingShipment,
                "2027-01-30",
                vec![],
            ),
            order(
                "3077000000000003",
                OrderState::Completed,
                "2026-11-30",
                vec![parcel(
                    "LP00500000000003",
                    ParcelStatus::Delivered,
                    "DELIVERED",
                )],
            ),
        ],
        unassigned_parcels: vec![],
        notices: Vec::new(),
    })
}

/// What the status derivation adds to hand-made orders: the needs-action
/// list (SPEC §7) as of the report's time.
fn with_actions(mut r: StatusReport) -> StatusReport {
    let today = r.generated_at.date_naive();
    for o in &mut r.orders {
        o.protection_days_left = o.protection_ends.map(|e| (e - today).num_days());
        let t = aliwatch::decide::lifecycle::Today {
            state: o.state,
            completed_reason: None,
            auto_completes_on: o.auto_completes_on,
            dispute_until: o.dispute_until,
        };
        o.needs_action =
            aliwatch::decide::lifecycle::needs_action(&t, o.protection_ends, &o.parcels, 7, today);
    }
    r
}

/// Every message the sink accepted, in order, with its envelope.
fn delivered(stack: &MailStack) -> Vec<(serde_json::Value, Vec<u8>)> {
    let log = std::fs::read_to_string(stack.dir().join("sink/envelopes.jsonl")).unwrap_or_default();
    log.lines()
        .map(|l| {
            let env: serde_json::Value = serde_json::from_str(l).expect("envelope json");
            let file = env["spool_file"].as_str().expect("spool_file").to_owned();
            (env, std::fs::read(file).expect("spooled message"))
        })
        .collect()
}

fn password_file(dir: &tempfile::TempDir) -> PathBuf {
    let p = dir.path().join("smtp-password");
    std::fs::write(&p, "secret1\n").expect("write password");
    p
}

#[tokio::test]
async fn digest_and_warning_arrive_over_starttls_with_auth() {
    let stack = MailStack::start(StackOptions {
        sink: true,
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(smtp_config(&stack, stack.sink_port, password_file(&tmp)));
    let sender = SmtpSender::new(cfg.smtp.as_ref().expect("smtp")).expect("sender");
    let mut store = Store::open(&tmp.path().join("db.sqlite")).expect("store");
    let report = report();
    // `check-config --connect`: STARTTLS + AUTH + NOOP
    sender.test_connection().await.expect("connects");

    let started = std::time::Instant::now();
    let sum = notify::send_due(&mut store, &report, &cfg, utc(NOW), &sender)
        .await
        .expect("pass");
    eprintln!("two emails sent in {:?}", started.elapsed());
    assert_eq!((sum.sent, sum.failed), (2, 0), "{sum:?}");

    let msgs = delivered(&stack);
    assert_eq!(msgs.len(), 2);
    let active: Vec<&OrderView> = report.orders.iter().filter(|o| o.is_active()).collect();
    for (env, raw) in &msgs {
        assert_eq!(env["tls"], true);
        assert_eq!(env["auth_user"], "alice");
        assert_eq!(env["rcpt_tos"][0], "alice@example.test");
        let m = MessageParser::default().parse(raw).expect("parses");
        let ct = m.content_type().expect("content-type");
        assert_eq!(
            (ct.ctype(), ct.subtype()),
            ("multipart", Some("alternative")),
            "{}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(
            m.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
        assert!(m.date().is_some());
        // wrapping may break any phrase of the text part
        let text = m
            .body_text(0)
            .expect("text part")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let html = m.body_html(0).expect("html part").into_owned();
        // the HTML part is not a conversion of the text part
        assert!(html.contains("<html"));
        assert!(!html.contains("<script>"), "{html}");
        if m.subject().is_some_and(|s| s.starts_with("aliwatch:")) {
            assert_eq!(m.message_id(), Some("digest.2026-11-28@example.test"));
            assert_eq!(
                m.subject(),
                Some("aliwatch: 2 need action, 1 awaiting shipment")
            );
            for o in &active {
                assert!(text.contains(&o.order_id), "{} in text", o.order_id);
                assert!(html.contains(&o.order_id), "{} in html", o.order_id);
                for p in &o.parcels {
                    assert!(text.contains(&p.tracking_number), "{}", p.tracking_number);
                    assert!(html.contains(&p.tracking_number), "{}", p.tracking_number);
                }
            }
            assert!(!text.contains("3077000000000003"), "completed order listed");
            assert!(text.contains("<script>alert('x')</script> held"));
            assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; held"));
        } else {
            assert_eq!(
                m.subject(),
                Some("Buyer Protection for order 8123456789012345 ends in 5 days (2026-12-03)")
            );
            assert_eq!(
                m.message_id(),
                Some("warning.8123456789012345.7d@example.test")
            );
            for part in [&text, &html] {
                assert!(part.contains("LP00527423524449"));
                assert!(part.contains("open a dispute before 2026-12-03"));
            }
        }
    }

    // later passes the same day send nothing more
    for t in ["2026-11-28T07:10:00Z", "2026-11-28T21:00:00Z"] {
        let sum = notify::send_due(&mut store, &report, &cfg, utc(t), &sender)
            .await
            .expect("pass");
        assert_eq!(sum.sent, 0, "{t}");
    }
    assert_eq!(delivered(&stack).len(), 2);
}

#[tokio::test]
async fn server_down_at_digest_time_then_exactly_one_digest() {
    let stack = MailStack::start(StackOptions {
        sink: true,
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let pw = password_file(&tmp);
    let mut report = report();
    report.orders.truncate(3);
    report.orders[0].protection_ends = Some(date("2026-12-31")); // no warning in this test
    let mut store = Store::open(&tmp.path().join("db.sqlite")).expect("store");

    // nothing listens on this port: connection refused
    let down = config(smtp_config(&stack, free_port(), pw.clone()));
    let sender = SmtpSender::new(down.smtp.as_ref().expect("smtp")).expect("sender");
    let sum = notify::send_due(&mut store, &report, &down, utc(NOW), &sender)
        .await
        .expect("pass");
    assert_eq!((sum.sent, sum.failed), (0, 1), "{sum:?}");
    let rec = store
        .notification(EMAIL, &"digest:2026-11-28".parse().expect("key"))
        .expect("read")
        .expect("recorded as pending");
    assert_eq!(rec.state, "pending");
    assert!(
        rec.last_error
            .as_deref()
            .unwrap_or("")
            .contains("localhost"),
        "{rec:?}"
    );
    assert!(!rec.last_error.as_deref().unwrap_or("").contains("secret1"));
    assert!(delivered(&stack).is_empty());

    // the server is back (same settings, the port that answers)
    let up = config(smtp_config(&stack, stack.sink_port, pw));
    let sender = SmtpSender::new(up.smtp.as_ref().expect("smtp")).expect("sender");
    // still inside the backoff: waits
    let t = utc(NOW) + Duration::seconds(20);
    let sum = notify::send_due(&mut store, &report, &up, t, &sender)
        .await
        .expect("pass");
    assert_eq!((sum.sent, sum.waiting), (0, 1));
    for minutes in [2, 3, 60, 600] {
        let t = utc(NOW) + Duration::minutes(minutes);
        notify::send_due(&mut store, &report, &up, t, &sender)
            .await
            .expect("pass");
    }
    let msgs = delivered(&stack);
    assert_eq!(msgs.len(), 1);
    let m = MessageParser::default().parse(&msgs[0].1).expect("parses");
    assert_eq!(m.message_id(), Some("digest.2026-11-28@example.test"));
    let rec = store
        .notification(EMAIL, &"digest:2026-11-28".parse().expect("key"))
        .expect("read")
        .expect("row");
    assert_eq!((rec.state.as_str(), rec.attempts), ("sent", 2));
}

#[tokio::test]
async fn crash_between_send_and_record_repeats_at_most_the_same_message() {
    let stack = MailStack::start(StackOptions {
        sink: true,
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(smtp_config(&stack, stack.sink_port, password_file(&tmp)));
    cfg.digest.enabled = false;
    let db = tmp.path().join("db.sqlite");
    let report = report();
    let now = utc(NOW);
    let sender = SmtpSender::new(cfg.smtp.as_ref().expect("smtp")).expect("sender");

    // the pass that "crashes": intent recorded, email sent, never marked
    {
        let mut store = Store::open(&db).expect("store");
        let due = aliwatch::decide::notifications::due_notifications(
            &report,
            &store.notification_keys(EMAIL).expect("keys"),
            now,
            &cfg.rules(),
        );
        assert_eq!(due.len(), 1);
        let n = &due[0];
        let mid = message_id_for(&n.key, &cfg);
        store
            .record_intent(EMAIL, &n.key, &mid, &[], now)
            .expect("record");
        let r = aliwatch::render::render_warning(&report.orders[0], 7, &cfg.rules(), now);
        sender
            .send(&OutgoingEmail {
                key: n.key.to_string(),
                message_id: mid,
                date: now,
                subject: r.subject,
                text: r.text,
                html: r.html,
            })
            .await
            .expect("sent");
        // dropped here without marking: the crash
    }
    // restart: the pending warning goes out once more, same Message-ID
    {
        let mut store = Store::open(&db).expect("store after restart");
        let sum = notify::send_due(
            &mut store,
            &report,
            &cfg,
            now + Duration::minutes(1),
            &sender,
        )
        .await
        .expect("pass");
        assert_eq!(sum.sent, 1);
    }
    // another restart: already marked sent, nothing more
    {
        let mut store = Store::open(&db).expect("store after second restart");
        for hours in [1, 5, 30] {
            let t = now + Duration::hours(hours);
            let sum = notify::send_due(&mut store, &report, &cfg, t, &sender)
                .await
                .expect("pass");
            assert_eq!(sum.sent, 0);
        }
    }
    let ids: Vec<String> = delivered(&stack)
        .iter()
        .map(|(_, raw)| {
            MessageParser::default()
                .parse(raw)
                .and_then(|m| m.message_id().map(str::to_owned))
                .expect("message-id")
        })
        .collect();
    assert_eq!(
        ids,
        [
            "warning.8123456789012345.7d@example.test",
            "warning.8123456789012345.7d@example.test"
        ]
    );
}

/// A user who rotates the SMTP password edits `password_file`; the
/// running sender reads it again when the server refuses the old one
/// (535) and sends the same message with the new one, no restart.
#[tokio::test]
async fn a_replaced_smtp_password_file_is_read_again_after_the_server_refuses_the_old_one() {
    let stack = MailStack::start(StackOptions {
        sink: true,
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let pw = tmp.path().join("smtp-password");
    std::fs::write(&pw, "the-old-password\n").expect("write");
    let cfg = config(smtp_config(&stack, stack.sink_port, pw.clone()));
    let sender = SmtpSender::new(cfg.smtp.as_ref().expect("smtp")).expect("sender");
    let mut store = Store::open_in_memory().expect("store");

    let sum = notify::send_due(&mut store, &report(), &cfg, utc(NOW), &sender)
        .await
        .expect("pass");
    assert_eq!(sum.sent, 0, "{sum:?}");
    let err = sum.last_error.expect("an error");
    assert!(err.contains("535"), "the server's answer: {err}");
    assert!(err.contains("password"), "says what to check: {err}");
    assert!(!err.contains("the-old-password"), "{err}");
    assert!(delivered(&stack).is_empty());

    std::fs::write(&pw, "secret1\n").expect("rotate");
    let later = utc(NOW) + Duration::hours(2);
    let sum = notify::send_due(&mut store, &report(), &cfg, later, &sender)
        .await
        .expect("pass");
    assert_eq!((sum.sent, sum.failed), (2, 0), "{sum:?}");
    assert_eq!(delivered(&stack).len(), 2);
}

#[tokio::test]
async fn wrong_password_and_plain_towards_a_remote_host_fail_cleanly() {
    let stack = MailStack::start(StackOptions {
        sink: true,
        ..Default::default()
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let pw = tmp.path().join("bad");
    std::fs::write(&pw, "not-the-password").expect("write");
    let cfg = config(smtp_config(&stack, stack.sink_port, pw));
    let sender = SmtpSender::new(cfg.smtp.as_ref().expect("smtp")).expect("sender");
    let mut store = Store::open_in_memory().expect("store");
    assert!(sender.test_connection().await.is_err());
    let sum = notify::send_due(&mut store, &report(), &cfg, utc(NOW), &sender)
        .await
        .expect("pass");
    assert_eq!(sum.sent, 0);
    let err = sum.last_error.expect("an error");
    assert!(!err.contains("not-the-password"), "{err}");
    assert!(delivered(&stack).is_empty());
    assert_eq!(
        store.pending_notifications(EMAIL).expect("pending").len(),
        2
    );

    let mut remote = smtp_config(&stack, 25, tmp.path().join("bad"));
    remote.host = "smtp.example.com".into();
    remote.security = Security::Plain;
    let err = SmtpSender::new(&remote).expect_err("plain to a remote host");
    assert!(format!("{err:#}").contains("loopback"), "{err:#}");
}
