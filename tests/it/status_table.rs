//! The `status` table through the real binary: it fits 80 columns when
//! stdout is not a terminal, `--wide` keeps every column, `--all` says why
//! completed orders completed, and a reader that goes away (`| head`)
//! ends it quietly.

use std::io::Read as _;
use std::process::Stdio;

use crate::util::{aliwatch, fixture, run, stderr, stdout};

fn imported() -> (tempfile::TempDir, std::path::PathBuf) {
    let home = tempfile::tempdir().expect("tempdir");
    let db = home.path().join("a.db");
    let out = run(aliwatch(home.path())
        .arg("--database")
        .arg(&db)
        .arg("import")
        .arg(fixture("emails")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (home, db)
}

fn columns(s: &str) -> usize {
    // Every fixture title is Latin, Cyrillic or CJK; a CJK character takes
    // two columns (UAX #11), everything else here one.
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFF00..=0xFF60 => 2,
            _ => 1,
        })
        .sum()
}

#[test]
fn status_fits_80_columns_and_wide_keeps_every_column() {
    let (home, db) = imported();
    let status = |args: &[&str]| {
        let out = run(aliwatch(home.path())
            .arg("--database")
            .arg(&db)
            .arg("status")
            .args(args)
            // not a terminal: COLUMNS is for terminals and is ignored
            .env("COLUMNS", "200"));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    for args in [&[][..], &["--all"]] {
        let table = status(args);
        assert!(table.lines().count() > 10, "{table}");
        for l in table.lines() {
            assert!(
                columns(l) <= 80,
                "{args:?}: {l:?} is {} columns",
                columns(l)
            );
        }
    }
    let all = status(&["--all"]);
    assert!(all.contains("auto-completed 20"), "{all}");
    assert!(all.contains("no news since 20"), "{all}");
    let wide = status(&["--wide", "--all"]);
    assert!(wide.lines().any(|l| columns(l) > 80), "{wide}");
    assert!(wide.starts_with("ORDER "), "{wide}");
    // the JSON and the table agree on how many parcels there are
    let json = run(aliwatch(home.path())
        .arg("--database")
        .arg(&db)
        .args(["status", "--json", "--all"]));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let parcels: usize = v["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["parcels"].as_array().map_or(0, Vec::len).max(1))
        .sum::<usize>()
        + v["unassigned_parcels"].as_array().map_or(0, Vec::len);
    assert_eq!(wide.lines().count() - 1, parcels, "{wide}");
}

#[test]
fn status_into_a_closed_pipe_exits_quietly() {
    let (home, db) = imported();
    for args in [
        &["status", "--all"][..],
        &["status", "--json", "--all"],
        &["status", "--wide", "--all"],
        &["digest", "--print"],
    ] {
        let mut child = aliwatch(home.path())
            .arg("--database")
            .arg(&db)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        // The reader goes away before the first write, like `| head -0`.
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("reads stderr");
        let status = child.wait().expect("waits");
        assert_eq!(status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} said: {err}");
    }
}

/// Every command that writes to stdout handles a reader that went away
/// (`aliwatch calendar | head`: exit 0, quietly) and a full disk
/// (`> /dev/full`: exit 1 with the reason), as `status` does; `print!`
/// panicked (exit 134).
#[test]
fn every_command_into_a_closed_pipe_or_a_full_disk_exits_cleanly() {
    let (home, db) = imported();
    let email = fixture("emails/real/aliexpress_order_shipped.eml");
    let email = email.to_str().expect("utf-8 path");
    let json = stdout(&run(aliwatch(home.path())
        .arg("--database")
        .arg(&db)
        .args(["status", "--json", "--all"])));
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let order = v["orders"][0]["order_id"]
        .as_str()
        .expect("an order")
        .to_string();
    let order = order.as_str();
    let commands: &[&[&str]] = &[
        &["calendar"],
        &["status", "--all"],
        &["status", "--json", "--all"],
        &["digest", "--print"],
        &["extract", email],
        &["extract", "--json", email],
        &["add", "LP00123456789012", "--force"],
        &["protection", order, "--extend", "5"],
        &["done", order],
    ];
    for args in commands {
        // closed pipe: the reader goes away before the first write
        let mut child = aliwatch(home.path())
            .arg("--database")
            .arg(&db)
            .args(*args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("reads stderr");
        let status = child.wait().expect("waits");
        assert_eq!(status.code(), Some(0), "{args:?} | head: {err}");
        assert!(!err.contains("panicked"), "{args:?} said: {err}");
        // full disk
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = aliwatch(home.path())
            .arg("--database")
            .arg(&db)
            .args(*args)
            .stdout(full)
            .output()
            .expect("runs");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?} > /dev/full: {err}");
        assert!(
            err.contains("cannot write to standard output"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
