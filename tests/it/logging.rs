//! Log lines under journald: every line carries its sd-daemon(3) priority
//! prefix when stderr is the stream `JOURNAL_STREAM` names, so that
//! `journalctl -p warning` filters them; nothing changes otherwise.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// Runs `aliwatch run` with a config that has no mailbox and no SMTP (it warns
/// that nothing is sent, then logs "aliwatch running" at info), with stderr
/// going to a file and `JOURNAL_STREAM` set to what `stream` makes of that
/// file's metadata; stops it with SIGTERM and returns the log.
fn run_daemon_logging_to_file(stream: impl FnOnce(&fs::Metadata) -> String) -> String {
    let home = tempfile::tempdir().expect("tempdir");
    let log_path = home.path().join("stderr.log");
    let log = fs::File::create(&log_path).expect("create log");
    let journal_stream = stream(&log.metadata().expect("stat log"));
    let config = home.path().join("config.toml");
    fs::write(
        &config,
        "timezone = \"UTC\"\n[tracking]\nprovider = \"none\"\n",
    )
    .expect("write config");
    let mut child = aliwatch(home.path())
        .arg("-c")
        .arg(&config)
        .arg("--database")
        .arg(home.path().join("aliwatch.db"))
        .arg("run")
        .env("ALIWATCH_LOG", "info")
        .env("JOURNAL_STREAM", journal_stream)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn aliwatch run");
    let read = || fs::read_to_string(&log_path).unwrap_or_default();
    // SIGTERM before the signal handlers exist would kill it outright.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !read().contains("aliwatch running") {
        if Instant::now() > deadline || child.try_wait().expect("try_wait").is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aliwatch run did not start; log:\n{}", read());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .expect("run kill(1)");
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no exit within 10 s of SIGTERM; log:\n{}", read());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}; log:\n{}", read());
    read()
}

/// The line of `log` that contains `needle`.
fn line_with<'a>(log: &'a str, needle: &str) -> &'a str {
    log.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{log}"))
}

#[test]
fn journald_lines_carry_sd_daemon_priorities() {
    let log = run_daemon_logging_to_file(|m| format!("{}:{}", m.dev(), m.ino()));
    assert!(
        line_with(&log, "no [smtp] configured").starts_with("<4>WARN "),
        "{log}"
    );
    assert!(
        line_with(&log, "aliwatch running").starts_with("<6>INFO "),
        "{log}"
    );
    for line in log.lines() {
        let prio = line
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .map(|(p, _)| p);
        assert!(
            matches!(prio, Some("3" | "4" | "6" | "7")),
            "line without a priority: {line:?}\n{log}"
        );
    }
}

#[test]
fn inherited_journal_stream_naming_another_stream_adds_no_prefix() {
    // A child of a unit inherits JOURNAL_STREAM even when its stderr is a
    // file or pipe: the variable names a different inode then.
    let log = run_daemon_logging_to_file(|m| format!("{}:{}", m.dev(), m.ino() + 1));
    let warn = line_with(&log, "no [smtp] configured");
    assert!(!warn.starts_with('<'), "{log}");
    assert!(warn.contains("WARN"), "{log}");
}
