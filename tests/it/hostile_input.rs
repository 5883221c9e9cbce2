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

/// `depth` nested messages whose `Content-Type` is spelt `spelling` (the
/// header line, up to and including the type), each inside the previous.
pub fn nested_spelt(depth: usize, spelling: &str) -> Vec<u8> {
    let mut s = String::with_capacity(depth * (spelling.len() + 32) + 64);
    for _ in 0..depth {
        s.push_str("From: a@example.com\r\n");
        s.push_str(spelling);
        s.push_str("\r\n\r\n");
    }
    s.push_str("From: a@example.com\r\nSubject: inner\r\n\r\nhello\r\n");
    s.into_bytes()
}

/// Header spellings mail-parser reads as a nested message: RFC 5322 §4.5's
/// obsolete white space before the colon, folding (§2.2.3), case, a
/// leading colon, comments and quotes, message/global, a parameter with
/// an encoded word (RFC 2231/2047).
pub const NESTING_SPELLINGS: &[&str] = &[
    "Content-Type : message/rfc822",
    "Content-Type\t:message/rfc822",
    "CONTENT-TYPE: MESSAGE/RFC822",
    "content-type:\r\n message/rfc822",
    "Content-Type:\r\n\t message/\r\n rfc822",
    " Content - Type : message/rfc822",
    ":Content-Type: message/rfc822",
    "Content-Type: message/global",
    "Content-Type: \"message\"/rfc822",
    "Content-Type: message/rfc822; name=\"=?utf-8?q?a?=\"",
];

/// Runs `f` on a thread with a small stack: a walk or drop that recursed
/// once per nesting level would overflow it (and abort the test binary).
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .expect("spawns")
        .join()
        .expect("no panic")
}

#[test]
fn nested_messages_in_every_header_spelling_are_rejected_not_a_stack_overflow() {
    for spelling in NESTING_SPELLINGS {
        for depth in [15_000, 60_000] {
            let raw = nested_spelt(depth, spelling);
            let r = on_small_stack(move || aliwatch::extract::extract(&raw).map(|_| ()));
            let err = r.expect_err(spelling);
            assert!(
                err.to_string().contains("attached messages"),
                "{spelling:?}: {err}"
            );
        }
        // a forward of a forward in the same spelling still parses
        assert!(
            aliwatch::extract::extract(&nested_spelt(3, spelling)).is_ok(),
            "{spelling:?}"
        );
    }
}

#[test]
fn nested_messages_inside_an_encoded_attached_message_are_rejected() {
    use base64::Engine as _;
    for spelling in [
        "Content-Type : message/rfc822",
        "Content-Type: message/rfc822",
    ] {
        let inner = nested_spelt(60_000, spelling);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&inner);
        let mut raw = String::from(
            "From: a@example.com\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        );
        for chunk in b64.as_bytes().chunks(76) {
            raw.push_str(std::str::from_utf8(chunk).expect("ascii"));
            raw.push_str("\r\n");
        }
        let r = on_small_stack(move || aliwatch::extract::extract(raw.as_bytes()).map(|_| ()));
        let err = r.expect_err("rejected");
        assert!(err.to_string().contains("attached messages"), "{err}");
        // quoted-printable: the same nest, `=` escaped
        let qp = String::from_utf8(inner).expect("ascii").replace('=', "=3D");
        let raw = format!(
            "From: a@example.com\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{qp}"
        );
        let r = on_small_stack(move || aliwatch::extract::extract(raw.as_bytes()).map(|_| ()));
        assert!(r.is_err(), "quoted-printable nest accepted");
    }
}

#[test]
fn nested_digests_are_rejected_not_a_stack_overflow() {
    // RFC 2046 §5.1.5: a part of a multipart/digest without a Content-Type
    // is a message/rfc822.
    let mut s = String::from("From: a@example.com\r\n");
    // Fewer levels than MIME parts allowed: only the nesting bound stops it.
    for i in 0..900 {
        s.push_str(&format!(
            "Content-Type: multipart/digest; boundary=d{i}\r\n\r\n--d{i}\r\n\r\nFrom: a@example.com\r\n"
        ));
    }
    s.push_str("Subject: inner\r\n\r\nhello\r\n");
    let r = on_small_stack(move || aliwatch::extract::extract(s.as_bytes()).map(|_| ()));
    let err = r.expect_err("900 nested digests accepted");
    assert!(err.to_string().contains("attached messages"), "{err}");
}

#[test]
fn import_of_nine_good_emails_and_one_deep_nest_stores_the_nine() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join("mail");
    std::fs::create_dir(&dir).expect("mkdir");
    write(
        &dir,
        "0-deep.eml",
        &nested_spelt(15_000, "Content-Type : message/rfc822"),
    );
    write(
        &dir,
        "0-deeper.eml",
        &nested_spelt(60_000, "content-type:\r\n message/rfc822"),
    );
    let real = fixture("emails/real");
    let mut good = 0;
    for e in std::fs::read_dir(&real).expect("fixtures") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "eml") && good < 9 {
            good += 1;
            std::fs::copy(
                &p,
                dir.join(format!(
                    "{good}-{}",
                    p.file_name().expect("name").to_string_lossy()
                )),
            )
            .expect("copies");
        }
    }
    assert_eq!(good, 9);
    let db = home.path().join("a.db");
    let out = run(aliwatch(home.path())
        .arg("--database")
        .arg(&db)
        .arg("import")
        .arg(&dir));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("imported 11 emails"), "{text}");
    assert!(text.contains("2 unparseable"), "{text}");
    assert!(text.contains("9 from AliExpress"), "{text}");
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
