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
    // The effective config is printed; the secret files of the example do
    // not exist here, which `run` would refuse: so does check-config.
    let text = stdout(&out);
    assert!(text.contains("host = \"imap.example.com\""), "{text}");
    assert!(text.contains("warn_before = [\"7d\", \"2d\"]"), "{text}");
    assert_eq!(out.status.code(), Some(78), "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains("password_file"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("unknown field"), "{}", stderr(&out));
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
    // 78: the example's secret files do not exist here (as `run` would
    // say); the effective config is printed all the same.
    assert_eq!(out.status.code(), Some(78), "stderr: {}", stderr(&out));
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
fn unreadable_secret_fails_check_config_as_run_does() {
    let home = tempfile::tempdir().expect("tempdir");
    let path = fixture("config/unreadable_secret.toml");
    let out = run(aliwatch(home.path())
        .arg("-c")
        .arg(&path)
        .arg("check-config"));
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let checked = stderr(&out);
    assert!(checked.contains("password_file"), "{checked}");
    let out = run(aliwatch(home.path()).arg("-c").arg(&path).arg("run"));
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert_eq!(stderr(&out), checked);
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

/// check-config on `text` (written to a file in `home`); returns the output.
fn check_text(home: &std::path::Path, text: &str) -> std::process::Output {
    let cfg = home.join("c.toml");
    std::fs::write(&cfg, text).expect("writes");
    run(aliwatch(home).arg("-c").arg(&cfg).arg("check-config"))
}

#[test]
fn config_errors_never_quote_a_secret() {
    let home = tempfile::tempdir().expect("tempdir");
    let db = home.path().join("a.db");
    let head = format!(
        "database = {:?}\n[imap]\nhost = \"127.0.0.1\"\nsecurity = \"plain\"\nusername = \"me\"\n",
        db.display().to_string()
    );
    let cases = [
        // a misspelt key
        "pasword = \"hunter2-secret\"\n",
        "passwd = \"hunter2-secret\"\n",
        // a type error on a secret line
        "password = 4242424242\n",
        "password = [\"hunter2-secret\"]\n",
        "password = { value = \"hunter2-secret\" }\n",
        // lines inside a secret table
        "[imap.password]\nvalue = \"hunter2-secret\"\n",
    ];
    for case in cases {
        let out = check_text(home.path(), &format!("{head}{case}"));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(78), "{case}: {err}");
        assert!(err.contains("c.toml:"), "{case}: names the file: {err}");
        assert!(!err.contains("hunter2"), "{case}: leaks: {err}");
        assert!(!err.contains("4242424242"), "{case}: leaks: {err}");
    }
    // a misspelt key is still named
    let out = check_text(
        home.path(),
        &format!("{head}pasword = \"hunter2-secret\"\n"),
    );
    assert!(
        stderr(&out).contains("unknown field `pasword`"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("c.toml:6:1"), "{}", stderr(&out));
}

/// Redaction knows the secret keys by their place in the document: any
/// spelling of a key the table does not know, inline tables and arrays of
/// inline tables, and a syntax error on such a line.
#[test]
fn config_errors_never_quote_a_secret_in_any_spelling_or_table_form() {
    let home = tempfile::tempdir().expect("tempdir");
    let db = home.path().join("a.db");
    let top = format!("database = {:?}\n", db.display().to_string());
    let imap = "[imap]\nhost = \"127.0.0.1\"\nsecurity = \"plain\"\nusername = \"me\"\n";
    let cases = [
        format!("{imap}pssword = \"hunter2-secret\"\n"),
        format!("{imap}assword = \"hunter2-secret\"\n"),
        format!("{imap}Password = \"hunter2-secret\"\n"),
        "imap = { host = \"127.0.0.1\", security = \"plain\", username = \"me\", pssword = \"hunter2-secret\" }\n".to_string(),
        "imap = { host = \"127.0.0.1\", security = \"plain\", username = \"me\", password = 4242424242 }\n".to_string(),
        "notify = [{ type = \"ntfy\", url = \"https://ntfy.sh/hunter2-topic\", tokn = \"hunter2-secret\" }]\n".to_string(),
        "notify = [{ type = \"ntfy\", url = 4242424242 }]\n".to_string(),
        // not TOML at all: no tree, the keys on the line decide
        "imap = { host = \"h\", pssword = \"hunter2-secret\" \n".to_string(),
    ];
    for case in &cases {
        let out = check_text(home.path(), &format!("{top}{case}"));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(78), "{case}: {err}");
        assert!(err.contains("c.toml:"), "{case}: names the file: {err}");
        assert!(!err.contains("hunter2"), "{case}: leaks: {err}");
        assert!(!err.contains("4242424242"), "{case}: leaks: {err}");
    }
}

/// An error on a key that holds no secret says what is wrong, bounds
/// included (it read "between <redacted> and <redacted>").
#[test]
fn config_errors_on_public_keys_keep_their_bounds() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = check_text(home.path(), "command_timeout = \"0s\"\n");
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("command_timeout: must be between \"1s\" and \"10m\""),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("<redacted>"), "{}", stderr(&out));
}

/// Every number is range-checked, never cast: "4294967296d" is 2^32 days,
/// which an unchecked `as u32` turned into 0.
#[test]
fn config_numbers_out_of_range_are_rejected_not_wrapped() {
    let home = tempfile::tempdir().expect("tempdir");
    for (case, want) in [
        (
            "[protection]\nwarn_before = [\"4294967296d\"]\n",
            "warn_before",
        ),
        ("[protection]\nwarn_before = [\"366d\"]\n", "warn_before"),
        (
            "[protection]\nstalled_after = \"99999999w\"\n",
            "stalled_after",
        ),
        ("[protection]\nstalled_after = \"1s\"\n", "stalled_after"),
        (
            "[tracking]\nprovider = \"none\"\nrefresh_interval = \"99999999w\"\n",
            "refresh_interval",
        ),
        ("[protection]\ndays = 4294967297\n", "days"),
    ] {
        let out = check_text(home.path(), case);
        assert_eq!(out.status.code(), Some(78), "{case}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{case}: {}", stderr(&out));
    }
}

#[test]
fn secret_commands_are_bounded_and_their_stderr_is_dropped() {
    let home = tempfile::tempdir().expect("tempdir");
    let db = home.path().join("a.db");
    let cfg = |cmd: &str| {
        format!(
            "database = {:?}\ncommand_timeout = \"1s\"\n[imap]\nhost = \"127.0.0.1\"\nsecurity = \"plain\"\nusername = \"me\"\npassword_command = {cmd:?}\n",
            db.display().to_string()
        )
    };
    // a command that never ends: killed at the limit, with a message
    let started = std::time::Instant::now();
    let out = check_text(home.path(), &cfg("echo leaked-stderr >&2; sleep 100"));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // a transient fault (exit 1, systemd retries), not an invalid config
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did not finish within 1s"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("leaked-stderr"), "{}", stderr(&out));
    // a failing command: its exit status, not its output
    let out = check_text(
        home.path(),
        &cfg("echo hunter2-out; echo leaked-stderr >&2; exit 7"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("exit status: 7"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("leaked-stderr"), "{}", stderr(&out));
    // a working command whose stderr is chatty
    let out = check_text(home.path(), &cfg("echo leaked-stderr >&2; echo pw"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("leaked-stderr"), "{}", stderr(&out));
}

/// SPEC §1: a secret command that fails or times out is a runtime failure
/// (exit 1: systemd retries; the unit's RestartPreventExitStatus=78 would
/// otherwise stop the service for good), a missing secret file stays 78.
#[test]
fn secret_command_timeout_at_start_is_exit_1_and_a_missing_file_is_78() {
    let home = tempfile::tempdir().expect("tempdir");
    let db = home.path().join("a.db");
    let imap = |secret: &str| {
        format!(
            "database = {:?}\ncommand_timeout = \"1s\"\n[imap]\nhost = \"127.0.0.1\"\nsecurity = \"plain\"\nusername = \"me\"\n{secret}\n",
            db.display().to_string()
        )
    };
    // a helper that leaves the process group (setsid) and holds stdout
    let started = std::time::Instant::now();
    let out = check_text(
        home.path(),
        &imap("password_command = \"setsid sh -c 'sleep 60; echo late'\""),
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did not finish within 1s"),
        "{}",
        stderr(&out)
    );
    let missing = home.path().join("missing");
    let out = check_text(
        home.path(),
        &imap(&format!(
            "password_file = {:?}",
            missing.display().to_string()
        )),
    );
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
}

#[test]
fn check_config_refuses_an_unwritable_database_as_run_does() {
    let home = tempfile::tempdir().expect("tempdir");
    // the parent is a file: no one, not even root, can create it
    let file = home.path().join("plainfile");
    std::fs::write(&file, "x").expect("writes");
    let cfg = home.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "database = {:?}\n",
            file.join("sub/a.db").display().to_string()
        ),
    )
    .expect("writes");
    let checked = run(aliwatch(home.path())
        .arg("-c")
        .arg(&cfg)
        .arg("check-config"));
    assert_eq!(checked.status.code(), Some(78), "{}", stderr(&checked));
    assert!(
        stderr(&checked).contains("is not a directory"),
        "{}",
        stderr(&checked)
    );
    let ran = run(aliwatch(home.path()).arg("-c").arg(&cfg).arg("run"));
    assert_eq!(ran.status.code(), Some(78), "{}", stderr(&ran));
    assert_eq!(stderr(&ran), stderr(&checked));
}

#[test]
fn run_without_a_config_file_says_so() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = run(aliwatch(home.path()).arg("run"));
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("no config file"), "{}", stderr(&out));
}

#[test]
fn read_only_commands_never_create_or_switch_the_database() {
    let home = tempfile::tempdir().expect("tempdir");
    let missing = home.path().join("typo/dir/a.db");
    for args in [&["status"][..], &["digest", "--print"]] {
        let out = run(aliwatch(home.path())
            .arg("--database")
            .arg(&missing)
            .args(args));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
        assert!(!home.path().join("typo").exists(), "{args:?} created it");
    }
    // a database in rollback-journal mode in a read-only folder
    let dir = home.path().join("ro");
    std::fs::create_dir(&dir).expect("mkdir");
    let db = dir.join("a.db");
    let out = run(aliwatch(home.path())
        .arg("--database")
        .arg(&db)
        .arg("import")
        .arg(fixture("emails/real/aliexpress_order_shipped.eml")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    {
        let c = rusqlite::Connection::open(&db).expect("opens");
        let m: String = c
            .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
            .expect("switches");
        assert_eq!(m, "delete");
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    for args in [&["status", "--json"][..], &["digest", "--print"]] {
        let out = run(aliwatch(home.path()).arg("--database").arg(&db).args(args));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let c = rusqlite::Connection::open(&db).expect("opens");
    let m: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("reads");
    assert_eq!(m, "delete", "a read-only command switched the journal mode");
    assert!(!dir.join("a.db-wal").exists());
}
