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
    let report = store
        .status_report(chrono::Utc::now(), &cfg)
        .expect("reads");
    let order = report
        .orders
        .iter()
        .find(|o| o.order_id == "3084943433511931")
        .expect("the order written by v1");
    assert_eq!(order.parcels[0].tracking_number, "LP00527423524449");
    assert_eq!(order.protection_source.map(|s| s.as_str()), Some("manual"));
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
