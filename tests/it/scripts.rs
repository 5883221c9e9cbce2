//! The repository's scripts, run with stand-ins for the tools they call:
//! `scripts/test` prints its closing count and fails when a test failed
//! (it used to stop at the failing `cargo test` under `set -e`/pipefail
//! without a count); `scripts/check-package` says it skipped, and succeeds,
//! where cargo-deb or lintian is not installed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::util::*;

/// Writes an executable shell script `name` into `dir`.
fn stub(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write stub");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod stub");
}

/// `scripts/test` installs the servers when they are missing; with a stub
/// cargo that must not happen here, so the test needs them present (the
/// real `scripts/test` run installs them before it gets here).
fn servers_installed() -> bool {
    Path::new("/usr/sbin/dovecot").exists()
        && Command::new("/usr/bin/python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success())
        && Command::new("/usr/bin/python3")
            .args(["-c", "import icalendar"])
            .status()
            .is_ok_and(|s| s.success())
        && Command::new("sh")
            .args(["-c", "command -v openssl"])
            .status()
            .is_ok_and(|s| s.success())
        && (Path::new("/usr/bin/kill").exists() || Path::new("/bin/kill").exists())
        && Path::new("/usr/sbin/mosquitto").exists()
}

/// A cargo whose `test` reports two binaries, one of them failing.
const FAILING_CARGO: &str = r#"case "$1" in
  fmt|clippy) exit 0 ;;
  test)
    echo "test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out"
    echo "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out"
    exit 101 ;;
esac
exit 1"#;

fn run_scripts_test(cargo: &str) -> std::process::Output {
    let bin = tempfile::tempdir().expect("tempdir");
    stub(bin.path(), "cargo", cargo);
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash")
        .arg(root().join("scripts/test"))
        .env("PATH", path)
        .output()
        .expect("run scripts/test")
}

#[test]
fn scripts_test_prints_the_count_and_fails_when_a_test_fails() {
    if !servers_installed() {
        eprintln!("skipped: the test servers are not installed (scripts/test installs them)");
        return;
    }
    let out = run_scripts_test(FAILING_CARGO);
    let text = stdout(&out);
    assert_eq!(
        text.lines().last(),
        Some("8 passed, 2 failed, 1 skipped"),
        "{text}\n{}",
        stderr(&out)
    );
    assert!(text.contains("FAILED: cargo test (exit 101)"), "{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn scripts_test_fails_on_clippy_but_still_runs_and_counts_the_tests() {
    if !servers_installed() {
        eprintln!("skipped: the test servers are not installed (scripts/test installs them)");
        return;
    }
    let out = run_scripts_test(
        r#"case "$1" in
  fmt) exit 0 ;;
  clippy) exit 101 ;;
  test) echo "test result: ok. 4 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"; exit 0 ;;
esac
exit 1"#,
    );
    let text = stdout(&out);
    assert_eq!(
        text.lines().last(),
        Some("4 passed, 0 failed, 0 skipped"),
        "{text}"
    );
    assert!(text.contains("FAILED: cargo clippy"), "{text}");
    assert_ne!(out.status.code(), Some(0), "{text}");
}

#[test]
fn scripts_test_passes_when_everything_passes() {
    if !servers_installed() {
        eprintln!("skipped: the test servers are not installed (scripts/test installs them)");
        return;
    }
    let out = run_scripts_test(
        r#"case "$1" in
  fmt|clippy) exit 0 ;;
  test) echo "test result: ok. 4 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out"; exit 0 ;;
esac
exit 1"#,
    );
    let text = stdout(&out);
    assert_eq!(
        text.lines().last(),
        Some("4 passed, 0 failed, 2 skipped"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn check_package_skips_and_says_so_without_cargo_deb() {
    let bin = tempfile::tempdir().expect("tempdir");
    // a cargo without the deb subcommand
    stub(bin.path(), "cargo", "exit 101");
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(root().join("scripts/check-package"))
        .env("PATH", path)
        .output()
        .expect("run scripts/check-package");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("skipped, not installed: cargo-deb"), "{err}");
}
