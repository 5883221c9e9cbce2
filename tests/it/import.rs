//! `import` and `status` end to end through the real binary: the fixture
//! emails imported in order, in reverse order and twice give the same
//! `status --json`; a bad file is counted, not fatal.

use std::path::{Path, PathBuf};

use crate::util::*;

/// Every labelled fixture folder (each with an expected.json).
const FIXTURE_DIRS: [&str; 4] = [
    "emails/synthetic",
    "emails/real",
    "emails/extra",
    "emails/holdout",
];

fn fixture_emails() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in FIXTURE_DIRS {
        let d = fixture(dir);
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "eml") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

fn status_json(home: &Path, db: &Path) -> serde_json::Value {
    let out = run(aliwatch(home)
        .arg("--database")
        .arg(db)
        .args(["status", "--json", "--all"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut v: serde_json::Value =
        serde_json::from_str(&stdout(&out)).expect("status --json is JSON");
    v.as_object_mut().expect("object").remove("generated_at");
    v
}

fn import(home: &Path, db: &Path, files: &[PathBuf]) -> String {
    let out = run(aliwatch(home)
        .arg("--database")
        .arg(db)
        .arg("import")
        .args(files));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn import_in_order_reversed_and_twice_gives_the_same_status() {
    let files = fixture_emails();
    assert!(files.len() >= 30, "fixtures missing: {}", files.len());
    let home = tempfile::tempdir().expect("tempdir");

    let db1 = home.path().join("in-order.db");
    let summary = import(home.path(), &db1, &files);
    assert!(
        summary.contains(&format!("imported {} emails", files.len())),
        "{summary}"
    );
    let want = status_json(home.path(), &db1);

    let db2 = home.path().join("reversed.db");
    let mut rev = files.clone();
    rev.reverse();
    import(home.path(), &db2, &rev);
    assert_eq!(status_json(home.path(), &db2), want);

    let again = import(home.path(), &db1, &files);
    assert!(
        again.contains(&format!("{} already known", files.len())),
        "{again}"
    );
    assert_eq!(status_json(home.path(), &db1), want);

    // every order of the fixtures' expected.json is there exactly once
    let mut expected_orders = std::collections::BTreeSet::new();
    for dir in FIXTURE_DIRS {
        let text = std::fs::read_to_string(fixture(&format!("{dir}/expected.json")))
            .expect("expected.json");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        for entry in v.as_object().expect("object").values() {
            for o in entry["orders"].as_array().into_iter().flatten() {
                if let Some(id) = o["order_id"].as_str() {
                    expected_orders.insert(id.to_string());
                }
            }
        }
    }
    let got: Vec<String> = want["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter_map(|o| o["order_id"].as_str().map(str::to_string))
        .collect();
    let got_set: std::collections::BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), got_set.len(), "an order appears twice");
    assert_eq!(got_set, expected_orders);
}

#[test]
fn import_reads_maildirs_and_mbox_and_counts_bad_input() {
    let home = tempfile::tempdir().expect("tempdir");
    let md = home.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).expect("mkdir");
    }
    let files = fixture_emails();
    for (i, f) in files.iter().take(3).enumerate() {
        std::fs::copy(f, md.join(format!("new/{i}"))).expect("copies");
    }
    let mut mbox = Vec::new();
    for f in files.iter().skip(3).take(2) {
        mbox.extend_from_slice(b"From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n");
        mbox.extend_from_slice(&std::fs::read(f).expect("reads"));
        mbox.extend_from_slice(b"\n");
    }
    std::fs::write(home.path().join("export.mbox"), mbox).expect("writes");
    std::fs::write(home.path().join("garbage.eml"), [0xffu8, 0x00, 0x13, 0x37]).expect("writes");
    let db = home.path().join("a.db");
    let out = run(aliwatch(home.path())
        .arg("--database")
        .arg(&db)
        .arg("import")
        .arg(&md)
        .arg(home.path().join("export.mbox"))
        .arg(home.path().join("garbage.eml")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("imported 6 emails"),
        "{}",
        stdout(&out)
    );

    let out = run(aliwatch(home.path())
        .arg("--database")
        .arg(&db)
        .arg("import")
        .arg("/nonexistent/aliwatch-import"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unreadable input fails the import"
    );
}

#[test]
fn commands_without_a_config_use_the_default_database() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = run(aliwatch(home.path()).args(["add", "LP00123456789012"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(home.path().join("state/aliwatch/aliwatch.db").exists());
    let out = run(aliwatch(home.path()).args(["status", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(
        v["unassigned_parcels"][0]["tracking_number"],
        "LP00123456789012"
    );
    assert_eq!(v["unassigned_parcels"][0]["status"], "pending");
    let out = run(aliwatch(home.path()).args(["done", "8123456789012345"]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "unknown order: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("not known"), "{}", stderr(&out));
}
