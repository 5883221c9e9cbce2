//! Databases written by earlier schema versions keep working: each
//! committed `tests/fixtures/db/schema-vN.db` is opened (and migrated to the
//! current version) and its data read back.

use aliwatch::config::Config;
use aliwatch::store::{migrations::MIGRATIONS, Store};

use crate::util::fixture;

#[test]
fn a_database_written_by_schema_v1_migrates_and_keeps_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("old.db");
    std::fs::copy(fixture("db/schema-v1.db"), &db).expect("copies the fixture");
    let store = Store::open(&db).expect("opens and migrates");
    assert_eq!(store.schema_version().expect("version"), MIGRATIONS.len());
    let cfg = Config::defaults(db.clone());
    let report =
        aliwatch::pipeline::status_report(&store, chrono::Utc::now(), &cfg.rules()).expect("reads");
    let order = report
        .orders
        .iter()
        .find(|o| o.order_id == "3084943433511931")
        .expect("the order written by v1");
    assert_eq!(order.parcels[0].tracking_number, "LP00527423524449");
    assert_eq!(order.protection_source.as_str(), "manual");
    assert_eq!(
        report.unassigned_parcels[0].tracking_number,
        "JY26CAA0D000551012"
    );
}

#[test]
fn a_database_from_a_newer_aliwatch_is_refused_not_reset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("future.db");
    drop(Store::open(&db).expect("creates"));
    let conn = rusqlite::Connection::open(&db).expect("opens");
    conn.pragma_update(None, "user_version", 999)
        .expect("bumps");
    drop(conn);
    let err = Store::open(&db).expect_err("refuses");
    assert!(
        format!("{err:#}").contains("newer than this aliwatch"),
        "{err:#}"
    );
}

/// The status model of every fixture email, imported in file order at a
/// fixed "now", with manual commands on top, against its golden file
/// (`generated_at` aside). First written before the "one house"
/// restructuring, which changed no field of it; rewritten (`UPDATE_GOLDEN=1`)
/// only when the status model changes on purpose.
#[test]
fn status_of_every_fixture_matches_its_golden_file() {
    use chrono::TimeZone;
    let now = chrono::Utc
        .with_ymd_and_hms(2026, 11, 28, 8, 0, 0)
        .single()
        .expect("valid time");
    let mut cfg = Config::defaults(":memory:".into());
    cfg.timezone = chrono_tz::Europe::Berlin;
    let mut store = Store::open_in_memory().expect("opens");
    let mut count = 0;
    let problems = aliwatch::mailfile::for_each_message(&[fixture("emails")], &mut |m| {
        let origin = aliwatch::model::EmailOrigin {
            source: format!("import:{}", m.label),
            imap: None,
            received_at: m.received_at,
        };
        aliwatch::pipeline::ingest_email(&mut store, &m.raw, &origin, now)?;
        count += 1;
        Ok(())
    })
    .expect("imports");
    assert!(problems.errors.is_empty(), "{:?}", problems.errors);
    assert!(count >= 100, "{count} fixture emails");
    use aliwatch::model::{OrderAction, TrackingNumber};
    store
        .add_parcel(
            &TrackingNumber::new("RB123456785GB"),
            Some("8123456789012345"),
            true,
            now,
        )
        .expect("adds");
    store
        .add_parcel(&TrackingNumber::new("JY26CAA0D000551012"), None, false, now)
        .expect("adds");
    let report = aliwatch::pipeline::status_report(&store, now, &cfg.rules()).expect("report");
    let some = |i: usize| report.orders[i].order_id.clone();
    let (a, b) = (some(0), some(report.orders.len() / 2));
    store
        .add_order_action(&a, OrderAction::Extend(10), now)
        .expect("extends");
    store
        .add_order_action(&b, OrderAction::Done, now)
        .expect("done");
    let report = aliwatch::pipeline::status_report(&store, now, &cfg.rules()).expect("report");
    let mut got = serde_json::to_value(&report).expect("json");
    got.as_object_mut().expect("object").remove("generated_at");
    let got = serde_json::to_string_pretty(&got).expect("pretty") + "\n";
    let path = crate::util::root().join("tests/golden/status_all_fixtures.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).expect("writes golden");
    }
    let want = std::fs::read_to_string(&path).expect("golden file exists");
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(0);
        panic!(
            "status differs from {} from line {}:\n got: {}\nwant: {}",
            path.display(),
            first + 1,
            got.lines().nth(first).unwrap_or(""),
            want.lines().nth(first).unwrap_or("")
        );
    }
}
