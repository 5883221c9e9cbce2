//! `check-config` on the shipped example and on bad configs: exit codes
//! and messages naming file, line and column (ntpd-rs `tests/ctl.rs`).

use crate::util::*;

#[test]
fn example_config_is_valid() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = run(aliwatch(home.path())
        .arg("-c")
        .arg(root().join("config.example.toml"))
        .arg("check-config"));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("host = \"imap.example.com\""), "{text}");
    assert!(text.contains("warn_before = [\"7d\", \"2d\"]"), "{text}");
    // the secret files of the example do not exist here: a warning, not an error
    assert!(stderr(&out).contains("password_file"), "{}", stderr(&out));
}

/// A non-root user who copies the example must not get a database path
/// under /var/lib ("Permission denied" on the first command).
#[test]
fn example_config_leaves_the_database_at_its_default() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = run(aliwatch(home.path())
        .arg("-c")
        .arg(root().join("config.example.toml"))
        .arg("check-config"));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let want = home.path().join("state/aliwatch/aliwatch.db");
    assert!(
        stdout(&out).contains(&format!("database = \"{}\"", want.display())),
        "{}",
        stdout(&out)
    );
}

fn bad(name: &str, line_col: &str, needle: &str) {
    let home = tempfile::tempdir().expect("tempdir");
    let path = fixture(&format!("config/{name}"));
    let out = run(aliwatch(home.path())
        .arg("-c")
        .arg(&path)
        .arg("check-config"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(78), "{name}: {err}");
    assert!(
        err.contains(&format!("{name}:{line_col}")),
        "{name}: want {line_col} in {err}"
    );
    assert!(err.contains(needle), "{name}: want {needle:?} in {err}");
}

#[test]
fn unknown_key_names_line_and_column() {
    bad("unknown_field.toml", "5:1", "unknown field `colour`");
}

#[test]
fn bad_duration_names_line_and_column() {
    bad("bad_duration.toml", "3:17", "write a duration like");
}

#[test]
fn wrong_type_names_line_and_column() {
    bad("bad_type.toml", "2:8", "invalid type");
}

#[test]
fn plain_text_towards_a_remote_host_is_refused() {
    bad("plain_remote.toml", "3:12", "loopback");
}

#[test]
fn missing_required_key_is_named() {
    bad("missing_key.toml", "1:1", "missing field `from`");
}

#[test]
fn unknown_timezone_is_named() {
    bad("bad_timezone.toml", "1:12", "IANA");
}

#[test]
fn unreadable_secret_warns_in_check_config_and_fails_with_connect() {
    let home = tempfile::tempdir().expect("tempdir");
    let path = fixture("config/unreadable_secret.toml");
    let out = run(aliwatch(home.path())
        .arg("-c")
        .arg(&path)
        .arg("check-config"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: password_file"),
        "{}",
        stderr(&out)
    );
    let out = run(aliwatch(home.path())
        .arg("-c")
        .arg(&path)
        .arg("check-config")
        .arg("--connect"));
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/nonexistent/aliwatch/smtp-password"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn secrets_are_redacted_in_check_config() {
    let home = tempfile::tempdir().expect("tempdir");
    let cfg = home.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[imap]\nhost = \"127.0.0.1\"\nsecurity = \"plain\"\nusername = \"me\"\npassword = \"hunter2-very-secret\"\n",
    )
    .expect("writes");
    let out = run(aliwatch(home.path())
        .arg("-c")
        .arg(&cfg)
        .arg("check-config"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains("hunter2"), "{all}");
    assert!(all.contains("<redacted>"), "{all}");
    assert!(stderr(&out).contains("inline"), "{}", stderr(&out));
}

#[test]
fn missing_explicit_config_file_is_a_config_error() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = run(aliwatch(home.path())
        .arg("-c")
        .arg("/nonexistent/aliwatch.toml")
        .arg("status"));
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = run(aliwatch(home.path()).arg("frobnicate"));
    assert_eq!(out.status.code(), Some(2));
    let out = run(aliwatch(home.path()).arg("digest"));
    assert_eq!(out.status.code(), Some(2));
}
