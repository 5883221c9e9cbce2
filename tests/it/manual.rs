//! `add` through the binary: what a typed number must be, and the order it
//! names.

use super::util::{aliwatch, run, stderr, stdout};

fn add(home: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = run(aliwatch(home).arg("add").args(args));
    (out.status.code(), stdout(&out), stderr(&out))
}

/// The hand-added parcels; none when nothing created the database.
fn unassigned(home: &std::path::Path) -> Vec<String> {
    let out = run(aliwatch(home).args(["status", "--json", "--all"]));
    if out.status.code() == Some(1) && stderr(&out).contains("does not exist") {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    v["unassigned_parcels"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["tracking_number"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn add_refuses_words_and_numbers_failing_their_check_digit_with_the_reason() {
    let home = tempfile::tempdir().expect("tempdir");
    for (input, reason) in [
        ("hello world", "no digits"),
        ("hello-world-1", "6 to 40 letters and digits"),
        (
            "RB123456789GB",
            "check digit is 9, but the first 8 digits give 5",
        ),
        ("RB123456785XX", "not a country code"),
        ("00340434886289512141", "GS1 check digit"),
    ] {
        for force in [false, true] {
            let mut args = vec![input];
            if force {
                args.push("--force");
            }
            let (code, _, err) = add(home.path(), &args);
            assert_eq!(code, Some(1), "{input} {force}: {err}");
            assert!(err.contains(reason), "{input}: {err}");
        }
    }
    assert!(unassigned(home.path()).is_empty());
    let (code, out, err) = add(home.path(), &["rb 1234 5678 5gb"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("tracking RB123456785GB (UPU S10)"), "{out}");
}

#[test]
fn add_refuses_an_aliexpress_order_number() {
    let home = tempfile::tempdir().expect("tempdir");
    // Shaped like one: refused, --force if it really is a tracking number.
    let (code, _, err) = add(home.path(), &["8123456789012345"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("looks like an AliExpress order number"),
        "{err}"
    );
    assert!(err.contains("--order 8123456789012345"), "{err}");
    // Known as an order: refused even with --force.
    let (code, _, err) = add(
        home.path(),
        &[
            "LP00123456789012",
            "--order",
            "8123456789012345",
            "--create",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = add(home.path(), &["8123456789012345", "--force"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is an AliExpress order number"), "{err}");
}

#[test]
fn add_needs_force_for_a_carrier_format_aliwatch_does_not_know() {
    let home = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = add(home.path(), &["JY26CAA0D000551012"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("not a tracking number format aliwatch knows"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert!(unassigned(home.path()).is_empty());
    let (code, out, err) = add(home.path(), &["JY26CAA0D000551012", "--force"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("format unknown to aliwatch"), "{out}");
    assert_eq!(unassigned(home.path()), ["JY26CAA0D000551012"]);
}

#[test]
fn add_with_an_unknown_order_says_so_and_needs_create() {
    let home = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = add(
        home.path(),
        &["LP00123456789012", "--order", "8123456789012345"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("order 8123456789012345 is not known"), "{err}");
    assert!(err.contains("--create"), "{err}");
    let out = run(aliwatch(home.path()).args(["status", "--json", "--all"]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(
        v["orders"].as_array().map(Vec::len),
        Some(0),
        "no phantom order"
    );
    assert!(unassigned(home.path()).is_empty(), "nor its parcel");

    let (code, out, err) = add(
        home.path(),
        &[
            "LP00123456789012",
            "--order",
            "8123456789012345",
            "--create",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("for order 8123456789012345"), "{out}");
    // Now known: no --create needed for its next parcel.
    let (code, _, err) = add(
        home.path(),
        &["RB123456785GB", "--order", "8123456789012345"],
    );
    assert_eq!(code, Some(0), "{err}");
    // --create without --order is a usage error.
    let (code, _, _) = add(home.path(), &["RB123456785GB", "--create"]);
    assert_eq!(code, Some(2));
}
