//! Hostile input that needs no server: emails built to exhaust the parser
//! (nested `message/rfc822`, a million MIME parts, hundreds of orders),
//! fed through `extract`, `import` and the library, must be rejected or
//! bounded, never abort the process or hide the good files' results.

use std::path::Path;

use crate::util::*;

/// An email of `depth` `message/rfc822` parts, each inside the previous.
pub fn nested_rfc822(depth: usize) -> Vec<u8> {
    let mut s = String::with_capacity(depth * 48 + 64);
    for _ in 0..depth {
        s.push_str("From: a@example.com\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    s.push_str("From: a@example.com\r\nSubject: inner\r\n\r\nhello\r\n");
    s.into_bytes()
}

/// An email of `depth` nested `multipart/mixed` parts.
fn nested_multipart(depth: usize) -> Vec<u8> {
    let mut s = String::from("From: a@example.com\r\nSubject: x\r\n");
    for i in 0..depth {
        s.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        ));
    }
    s.push_str("Content-Type: text/plain\r\n\r\nhi\r\n");
    s.into_bytes()
}

/// One multipart with `n` empty parts.
fn many_parts(n: usize) -> Vec<u8> {
    let mut s = String::from(
        "From: a@example.com\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n",
    );
    for _ in 0..n {
        s.push_str("--b\r\n\r\n");
    }
    s.push_str("--b--\r\n");
    s.into_bytes()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("writes");
    p
}

#[test]
fn deeply_nested_attached_messages_are_rejected_before_parsing() {
    for depth in [15_000, 80_000] {
        let err = aliwatch::extract::extract(&nested_rfc822(depth)).expect_err("rejected");
        assert!(err.to_string().contains("attached messages"), "{err}");
    }
    // a forward of a forward still parses
    assert!(aliwatch::extract::extract(&nested_rfc822(3)).is_ok());
    // deep multipart nesting is bounded by the part count too
    let err = aliwatch::extract::extract(&nested_multipart(80_000)).expect_err("rejected");
    assert!(err.to_string().contains("MIME parts"), "{err}");
    let err = aliwatch::extract::extract(&many_parts(1_000_000)).expect_err("rejected");
    assert!(err.to_string().contains("MIME parts"), "{err}");
}

#[test]
fn extract_prints_the_good_files_around_a_hostile_one() {
    let home = tempfile::tempdir().expect("tempdir");
    let good = fixture("emails/real/aliexpress_order_shipped.eml");
    let deep = write(home.path(), "deep.eml", &nested_rfc822(80_000));
    let parts = write(home.path(), "parts.eml", &many_parts(1_000_000));
    let out = run(aliwatch(home.path())
        .arg("extract")
        .arg("--json")
        .arg(&good)
        .arg(&deep)
        .arg(&parts)
        .arg(&good));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 4, "{}", stdout(&out));
    assert_eq!(lines[0]["is_aliexpress"], true);
    assert!(lines[1]["error"]
        .as_str()
        .is_some_and(|e| e.contains("attached")));
    assert!(lines[2]["error"]
        .as_str()
        .is_some_and(|e| e.contains("MIME parts")));
    assert_eq!(lines[3]["is_aliexpress"], true);
}

#[test]
fn import_skips_a_deeply_nested_email_and_stores_the_rest() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join("mail");
    std::fs::create_dir(&dir).expect("mkdir");
    // sorts first
    write(&dir, "0-deep.eml", &nested_rfc822(80_000));
    std::fs::copy(
        fixture("emails/real/aliexpress_order_shipped.eml"),
        dir.join("1-good.eml"),
    )
    .expect("copies");
    let db = home.path().join("a.db");
    let out = run(aliwatch(home.path())
        .arg("--database")
        .arg(&db)
        .arg("import")
        .arg(&dir));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("imported 2 emails"), "{text}");
    assert!(text.contains("1 unparseable"), "{text}");
    assert!(text.contains("1 new orders"), "{text}");
}

#[test]
fn orders_per_email_are_capped() {
    let mut body = String::new();
    for i in 0..300u64 {
        body.push_str(&format!(
            "Order number: {}\r\n",
            8_100_000_000_000_000u64 + i * 7
        ));
    }
    let raw = format!(
        "From: AliExpress <transaction@notice.aliexpress.com>\r\nSubject: Your orders are confirmed\r\nMessage-ID: <many@x>\r\nContent-Type: text/plain\r\n\r\n{body}"
    );
    let ex = aliwatch::extract::extract(raw.as_bytes()).expect("parses");
    assert!(ex.is_aliexpress);
    assert!(!ex.orders.is_empty());
    assert!(
        ex.orders.len() <= aliwatch::extract::MAX_ORDERS_PER_EMAIL,
        "{}",
        ex.orders.len()
    );
}
