//! docs/formats.md documents every field `status --json` and
//! `extract --json` print: the fixtures are imported and extracted through
//! the real binary, and each key found must appear in the document, so a
//! field added to the output cannot go undocumented.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::util::*;

/// Every object key anywhere in `v`.
fn keys(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.insert(k.clone());
                keys(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

fn undocumented(found: &BTreeSet<String>) -> Vec<String> {
    let doc = std::fs::read_to_string(root().join("docs/formats.md")).expect("docs/formats.md");
    found
        .iter()
        // a key in a table row of its own, or nested like `orders[].order_id`
        .filter(|k| !doc.contains(&format!("`{k}`")) && !doc.contains(&format!(".{k}`")))
        .cloned()
        .collect()
}

#[test]
fn every_status_json_field_is_documented() {
    let home = tempfile::tempdir().expect("tempdir");
    let db = home.path().join("a.db");
    let out = run(aliwatch(home.path())
        .arg("--database")
        .arg(&db)
        .arg("import")
        .arg(fixture("emails")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(aliwatch(home.path())
        .arg("--database")
        .arg(&db)
        .args(["status", "--json", "--all"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("status --json is JSON");
    let mut found = BTreeSet::new();
    keys(&v, &mut found);
    // the fixtures reach parcels with events, ETAs and both kinds of order
    for k in [
        "last_event",
        "eta",
        "unassigned_parcels",
        "auto_completes_on",
    ] {
        assert!(found.contains(k), "the fixtures no longer produce {k}");
    }
    let missing = undocumented(&found);
    assert!(missing.is_empty(), "not in docs/formats.md: {missing:?}");
}

#[test]
fn every_extract_json_field_is_documented() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = fixture("emails/real");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    // a file that does not exist gives the error shape
    files.push(home.path().join("missing.eml"));
    let out = run(aliwatch(home.path())
        .args(["extract", "--json"])
        .args(&files));
    let mut found = BTreeSet::new();
    for line in stdout(&out).lines() {
        keys(
            &serde_json::from_str(line).expect("one JSON object per line"),
            &mut found,
        );
    }
    assert!(
        found.contains("error") && found.contains("tracking_numbers"),
        "{found:?}"
    );
    let missing = undocumented(&found);
    assert!(missing.is_empty(), "not in docs/formats.md: {missing:?}");
}
