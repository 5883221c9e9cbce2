//! Ingestion and the status derivation through a real (in-memory) store:
//! order independence, duplicates, forwards, unparseable emails, replaced
//! numbers, manual commands and sorting.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use crate::config::Config;
use crate::model::{
    EmailKind, EmailOrigin, Extraction, IngestOutcome, OrderAction, OrderRef, ParcelStatus,
    TrackingNumber,
};
use crate::store::Store;

fn t(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 9, 0, 0)
        .single()
        .expect("valid time")
}

fn origin(n: usize) -> EmailOrigin {
    EmailOrigin {
        source: format!("test:{n}"),
        imap: None,
        received_at: t(1),
    }
}

fn email(id: &str, day: u32, kind: EmailKind, orders: &[(Option<&str>, &[&str])]) -> Extraction {
    Extraction {
        is_aliexpress: true,
        kind,
        orders: orders
            .iter()
            .map(|(o, t)| OrderRef {
                order_id: o.map(str::to_string),
                tracking_numbers: t.iter().map(|s| s.to_string()).collect(),
                ..OrderRef::default()
            })
            .collect(),
        message_id: Some(format!("{id}@test")),
        date: Some(t(day)),
        subject: format!("subject of {id}"),
        ..Default::default()
    }
}

fn cfg() -> Config {
    let mut c = Config::defaults(":memory:".into());
    c.timezone = chrono_tz::Europe::Berlin;
    c
}

fn ingest_all(store: &mut Store, emails: &[Extraction]) {
    for (i, e) in emails.iter().enumerate() {
        let sha = format!("sha-{}", e.message_id.clone().unwrap_or_default());
        store
            .record_email(&sha, Ok(e), &origin(i), t(27))
            .expect("ingests");
    }
}

fn report_json(store: &Store) -> serde_json::Value {
    let mut v =
        serde_json::to_value(super::status_report(store, t(28), &cfg().rules()).expect("report"))
            .expect("json");
    v.as_object_mut().expect("object").remove("generated_at");
    v
}

fn journey() -> Vec<Extraction> {
    let a = "8123456789012345";
    let b = "3012345678901234";
    let mut protection = email("p", 20, EmailKind::Protection, &[(Some(a), &[])]);
    protection.protection_until = Some(NaiveDate::from_ymd_opt(2026, 12, 20).expect("date"));
    let mut customs = email(
        "c",
        10,
        EmailKind::InTransit,
        &[(Some(a), &["LP00123456789012"])],
    );
    customs.parcel_status = Some(ParcelStatus::Customs);
    vec![
        email(
            "conf",
            1,
            EmailKind::OrderConfirmed,
            &[(Some(a), &[]), (Some(b), &[])],
        ),
        email(
            "ship",
            3,
            EmailKind::Shipped,
            &[(Some(a), &["LP00123456789012"])],
        ),
        customs,
        email(
            "dlv",
            15,
            EmailKind::Delivered,
            &[(Some(a), &["LP00123456789012"])],
        ),
        protection,
        email(
            "pkg",
            12,
            EmailKind::InTransit,
            &[(None, &["JY26CAA0D000551012"])],
        ),
        email("ship-b", 5, EmailKind::Shipped, &[(Some(b), &[])]),
    ]
}

#[test]
fn same_result_in_order_reversed_and_twice() {
    let emails = journey();
    let mut forward = Store::open_in_memory().expect("db");
    ingest_all(&mut forward, &emails);
    let want = report_json(&forward);

    let mut reversed = Store::open_in_memory().expect("db");
    let mut rev = emails.clone();
    rev.reverse();
    ingest_all(&mut reversed, &rev);
    assert_eq!(report_json(&reversed), want);

    // a rotation, and everything again: duplicates change nothing
    let mut rotated = Store::open_in_memory().expect("db");
    let mut rot = emails.clone();
    rot.rotate_left(3);
    ingest_all(&mut rotated, &rot);
    ingest_all(&mut rotated, &emails);
    assert_eq!(report_json(&rotated), want);

    let orders = want["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 2, "{want:#}");
    let a = orders
        .iter()
        .find(|o| o["order_id"] == "8123456789012345")
        .expect("order a");
    assert_eq!(a["state"], "delivered");
    assert_eq!(a["confirmed_at"], "2026-11-01");
    assert_eq!(a["shipped_at"], "2026-11-03");
    assert_eq!(a["protection_ends"], "2026-12-20");
    assert_eq!(a["protection_source"], "email");
    assert_eq!(a["protection_days_left"], 22);
    assert_eq!(a["parcels"][0]["status"], "delivered");
    let b = orders
        .iter()
        .find(|o| o["order_id"] == "3012345678901234")
        .expect("order b");
    assert_eq!(b["state"], "shipped");
    assert_eq!(b["protection_ends"], "2027-01-04");
    assert_eq!(b["protection_source"], "default");
    assert_eq!(
        want["unassigned_parcels"][0]["tracking_number"],
        "JY26CAA0D000551012"
    );
    assert_eq!(want["unassigned_parcels"][0]["status"], "in_transit");
}

#[test]
fn duplicate_by_message_id_or_content_is_reported_and_harmless() {
    let mut store = Store::open_in_memory().expect("db");
    let e = email(
        "x",
        3,
        EmailKind::Shipped,
        &[(Some("8123456789012345"), &["LP00123456789012"])],
    );
    let first = store
        .record_email("aa", Ok(&e), &origin(0), t(27))
        .expect("ingests");
    assert!(
        matches!(
            first,
            IngestOutcome::New {
                orders_new: 1,
                parcels_new: 1,
                ..
            }
        ),
        "{first:?}"
    );
    let again = store
        .record_email("bb", Ok(&e), &origin(1), t(27))
        .expect("ingests");
    assert_eq!(again, IngestOutcome::Duplicate);
    let mut no_mid = e;
    no_mid.message_id = None;
    let same_bytes = store
        .record_email("aa", Ok(&no_mid), &origin(2), t(27))
        .expect("ingests");
    assert_eq!(same_bytes, IngestOutcome::Duplicate);
    assert_eq!(store.counts().expect("counts"), (1, 1, 1));
}

#[test]
fn a_forward_of_a_known_email_changes_nothing() {
    let mut store = Store::open_in_memory().expect("db");
    ingest_all(&mut store, &journey());
    let before = report_json(&store);
    let mut fwd = email(
        "ship",
        25,
        EmailKind::Shipped,
        &[(Some("8123456789012345"), &["LP00123456789012"])],
    );
    fwd.message_id = Some("fwd-of-ship@user".into());
    let out = store
        .record_email("fwd", Ok(&fwd), &origin(9), t(27))
        .expect("ingests");
    assert!(
        matches!(out, IngestOutcome::New { orders_new: 0, .. }),
        "{out:?}"
    );
    // The forward is news of the order (it renews `last_activity`, what
    // "no news for 120 days" counts from); nothing else moves.
    let without_activity = |mut v: serde_json::Value| {
        for o in v["orders"].as_array_mut().expect("orders") {
            o.as_object_mut().expect("order").remove("last_activity");
        }
        v
    };
    assert_eq!(
        without_activity(report_json(&store)),
        without_activity(before)
    );
}

#[test]
fn unparseable_email_is_recorded_and_skipped() {
    let mut store = Store::open_in_memory().expect("db");
    let out = store
        .record_email("zz", Err("not an RFC 5322 message: bad"), &origin(0), t(27))
        .expect("ingests");
    assert!(matches!(out, IngestOutcome::Unparseable(_)));
    let again = store
        .record_email("zz", Err("not an RFC 5322 message: bad"), &origin(0), t(27))
        .expect("ingests");
    assert_eq!(again, IngestOutcome::Duplicate);
}

#[test]
fn replaced_number_stays_linked_to_its_successor() {
    let mut store = Store::open_in_memory().expect("db");
    let order = "8123456789012345";
    let mut changed = email(
        "chg",
        9,
        EmailKind::Shipped,
        &[(Some(order), &["RB123456785GB"])],
    );
    changed.replaced_tracking_numbers = vec!["LP00123456789012".into()];
    ingest_all(
        &mut store,
        &[
            email(
                "ship",
                3,
                EmailKind::Shipped,
                &[(Some(order), &["LP00123456789012"])],
            ),
            changed,
        ],
    );
    let r = report_json(&store);
    let parcels = r["orders"][0]["parcels"].as_array().expect("parcels");
    assert_eq!(parcels.len(), 1, "{r:#}");
    assert_eq!(parcels[0]["tracking_number"], "RB123456785GB");
    assert_eq!(parcels[0]["previous_numbers"][0], "LP00123456789012");
}

#[test]
fn status_never_moves_back_from_delivered() {
    let mut store = Store::open_in_memory().expect("db");
    let order = "8123456789012345";
    ingest_all(
        &mut store,
        &[email(
            "d",
            9,
            EmailKind::Delivered,
            &[(Some(order), &["LP00123456789012"])],
        )],
    );
    store
        .conn
        .execute("UPDATE parcels SET provider_status = 'in_transit'", [])
        .expect("updates");
    let r = report_json(&store);
    assert_eq!(r["orders"][0]["parcels"][0]["status"], "delivered");
}

#[test]
fn manual_commands_add_extend_and_done() {
    let mut store = Store::open_in_memory().expect("db");
    let order = "8123456789012345";
    ingest_all(
        &mut store,
        &[email("s", 3, EmailKind::Shipped, &[(Some(order), &[])])],
    );
    assert!(store
        .add_parcel(
            &TrackingNumber::new("jy26 caa0d000551012"),
            None,
            false,
            t(27)
        )
        .expect("adds"));
    let r = report_json(&store);
    assert_eq!(
        r["unassigned_parcels"][0]["tracking_number"],
        "JY26CAA0D000551012"
    );
    assert!(!store
        .add_parcel(
            &TrackingNumber::new("JY26CAA0D000551012"),
            Some(order),
            false,
            t(27)
        )
        .expect("adds"));
    let r = report_json(&store);
    assert_eq!(r["unassigned_parcels"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        r["orders"][0]["parcels"][0]["tracking_number"],
        "JY26CAA0D000551012"
    );

    store
        .add_order_action(order, OrderAction::Extend(10), t(27))
        .expect("extends");
    let r = report_json(&store);
    assert_eq!(r["orders"][0]["protection_ends"], "2027-01-12");
    assert_eq!(r["orders"][0]["protection_source"], "manual");
    store
        .add_order_action(
            order,
            OrderAction::Until(NaiveDate::from_ymd_opt(2026, 12, 1).expect("date")),
            t(27),
        )
        .expect("until");
    assert_eq!(
        report_json(&store)["orders"][0]["protection_ends"],
        "2027-01-12"
    );

    store
        .add_order_action(order, OrderAction::Done, t(27))
        .expect("done");
    assert_eq!(report_json(&store)["orders"][0]["state"], "completed");
    assert!(store
        .add_order_action("999", OrderAction::Done, t(27))
        .is_err());
    assert!(store
        .add_order_action("8000000000000000", OrderAction::Done, t(27))
        .is_err());
}

#[test]
fn orders_sort_by_protection_end_then_id() {
    let mut store = Store::open_in_memory().expect("db");
    ingest_all(
        &mut store,
        &[
            email(
                "1",
                10,
                EmailKind::Shipped,
                &[(Some("8000000000000002"), &[])],
            ),
            email(
                "2",
                3,
                EmailKind::Shipped,
                &[(Some("8000000000000003"), &[])],
            ),
            email(
                "3",
                3,
                EmailKind::OrderConfirmed,
                &[(Some("8000000000000001"), &[])],
            ),
        ],
    );
    let r = report_json(&store);
    let ids: Vec<&str> = r["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter_map(|o| o["order_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["8000000000000003", "8000000000000002", "8000000000000001"]
    );
}

#[test]
fn a_forged_email_adds_no_more_parcels_than_the_bounds() {
    use crate::decide::parcel::{MAX_PARCELS_PER_EMAIL, MAX_PARCELS_PER_ORDER};
    let mut store = Store::open_in_memory().expect("db");
    let many: Vec<String> = (0..256).map(|i| format!("LP{:014}", 7000 + i)).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    // One order naming 256 numbers: the order keeps the first ones.
    let e = email(
        "forged",
        3,
        EmailKind::Shipped,
        &[(Some("8123456789012345"), &refs)],
    );
    ingest_all(&mut store, &[e]);
    assert_eq!(
        store.counts().expect("counts").2 as usize,
        MAX_PARCELS_PER_ORDER,
        "parcels per order"
    );
    // Several orders of 15 in one email: the email stops at its bound.
    let orders: Vec<(Option<&str>, &[&str])> = [
        "8123456789012346",
        "8123456789012347",
        "8123456789012348",
        "8123456789012349",
    ]
    .iter()
    .enumerate()
    .map(|(i, o)| (Some(*o), &refs[100 + 15 * i..115 + 15 * i]))
    .collect();
    let e = email("forged-2", 4, EmailKind::Shipped, &orders);
    ingest_all(&mut store, &[e]);
    assert_eq!(
        store.counts().expect("counts").2 as usize,
        MAX_PARCELS_PER_ORDER + MAX_PARCELS_PER_EMAIL,
        "parcels per email"
    );
    // Numbers already known are never cut: a real follow-up email of the
    // first order still counts.
    let e = email(
        "follow-up",
        5,
        EmailKind::InTransit,
        &[(Some("8123456789012345"), &refs[..3])],
    );
    ingest_all(&mut store, &[e]);
    assert_eq!(
        store.counts().expect("counts").2 as usize,
        MAX_PARCELS_PER_ORDER + MAX_PARCELS_PER_EMAIL
    );
}
