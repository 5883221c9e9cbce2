//! XOAUTH2 against the real Dovecot: its `oauth2` passdb checks each
//! bearer token at the harness's introspection endpoint (`TokenIssuer` in
//! `mailstack.rs`), the way Gmail and Microsoft 365 check theirs. A cached
//! token that has expired is replaced by running `oauth2_token_command`
//! again; tokens never reach the output.

use std::path::Path;

use crate::mailstack::{MailStack, StackOptions};
use crate::util::*;

const SHIPPED: &[u8] = include_bytes!("../fixtures/imap/c1_real_order_shipped.eml");

/// A token command that prints `first` on its first run and `later` on
/// every run after it (a tool whose cached token has expired), counting
/// its runs in `dir/runs`.
fn token_command(dir: &Path, first: &str, later: &str) -> String {
    let script = dir.join("token.sh");
    std::fs::write(
        &script,
        format!(
            "n=$(cat '{runs}' 2>/dev/null || echo 0)\n\
             echo $((n + 1)) > '{runs}'\n\
             if [ \"$n\" = 0 ]; then echo {first}; else echo {later}; fi\n",
            runs = dir.join("runs").display()
        ),
    )
    .unwrap();
    format!("sh {}", script.display())
}

fn runs(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join("runs"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `aliwatch sync` as alice with XOAUTH2 over TLS; stdout and stderr.
fn sync(stack: &MailStack, dir: &Path, command: &str) -> (Option<i32>, String) {
    let cfg = dir.join("aliwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "database = \"{db}\"\n[imap]\nhost = \"localhost\"\nport = {port}\nsecurity = \"tls\"\n\
             username = \"alice\"\nauth = \"xoauth2\"\noauth2_token_command = \"{command}\"\nca_file = \"{ca}\"\n",
            db = dir.join("a.db").display(),
            port = stack.imaps_port,
            ca = stack.ca_pem().display(),
        ),
    )
    .unwrap();
    let out = run(aliwatch(dir)
        .arg("-c")
        .arg(&cfg)
        .arg("sync")
        .env("ALIWATCH_LOG", "debug"));
    (
        out.status.code(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

#[test]
fn xoauth2_replaces_an_expired_token_and_syncs_from_dovecot() {
    let stack = MailStack::start(StackOptions {
        oauth2: true,
        ..Default::default()
    });
    stack.append("alice", "INBOX", SHIPPED, None);
    let issuer = stack.oauth2();
    issuer.grant("expired-token-1a2b", "alice");
    issuer.expire("expired-token-1a2b");
    issuer.grant("fresh-token-3c4d", "alice");
    let dir = tempfile::tempdir().unwrap();
    let cmd = token_command(dir.path(), "expired-token-1a2b", "fresh-token-3c4d");

    let (code, all) = sync(&stack, dir.path(), &cmd);
    assert_eq!(code, Some(0), "{all}\n{}", stack.dovecot_log());
    // Dovecot asked about the expired token, then about the fresh one
    assert_eq!(
        issuer.asked(),
        ["expired-token-1a2b", "fresh-token-3c4d"],
        "{}",
        stack.dovecot_log()
    );
    assert_eq!(runs(dir.path()), 2);
    assert!(all.contains("mail synced"), "{all}");
    assert!(
        !all.contains("token-1a2b") && !all.contains("token-3c4d"),
        "{all}"
    );

    let out = run(aliwatch(dir.path())
        .arg("--database")
        .arg(dir.path().join("a.db"))
        // --all: the fixture email is months old, so by today AliExpress
        // has completed its order (SPEC §7); it is still there.
        .args(["status", "--json", "--all"]));
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("status --json");
    assert_eq!(
        status["orders"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );
}

#[test]
fn xoauth2_with_a_rejected_fresh_token_exits_1_after_one_retry_without_showing_it() {
    let stack = MailStack::start(StackOptions {
        oauth2: true,
        ..Default::default()
    });
    let issuer = stack.oauth2();
    issuer.grant("revoked-token-5e6f", "alice");
    issuer.expire("revoked-token-5e6f");
    let dir = tempfile::tempdir().unwrap();
    let cmd = token_command(dir.path(), "revoked-token-5e6f", "revoked-token-5e6f");

    let (code, all) = sync(&stack, dir.path(), &cmd);
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("rejected the login"), "{all}");
    assert!(!all.contains("token-5e6f"), "{all}");
    // one fresh token after the rejection, not a loop
    assert_eq!(runs(dir.path()), 2, "{all}");
    assert_eq!(issuer.asked().len(), 2, "{:?}", issuer.asked());
}

#[test]
fn password_logins_still_work_beside_the_oauth2_passdb() {
    let stack = MailStack::start(StackOptions {
        oauth2: true,
        ..Default::default()
    });
    let r = stack.imap_cmd("alice", "NOOP");
    assert!(r.last().unwrap().contains("OK"), "{r:?}");
    // PLAIN/LOGIN never reach the token endpoint
    assert!(
        stack.oauth2().asked().is_empty(),
        "{:?}",
        stack.oauth2().asked()
    );
}

/// A `password_command` runs once per process: `sync` checks every secret
/// at start and logs in later with the same answer (it ran twice).
#[test]
fn password_command_runs_once_per_sync() {
    let stack = MailStack::start(StackOptions::default());
    stack.append("alice", "INBOX", SHIPPED, None);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pw.sh");
    std::fs::write(
        &script,
        format!(
            "echo run >> '{}'\necho secret1\n",
            dir.path().join("pw-runs").display()
        ),
    )
    .unwrap();
    let cfg = dir.path().join("aliwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "database = \"{db}\"\n[imap]\nhost = \"localhost\"\nport = {port}\nsecurity = \"tls\"\n\
             username = \"alice\"\npassword_command = \"sh {script}\"\nca_file = \"{ca}\"\n",
            db = dir.path().join("a.db").display(),
            port = stack.imaps_port,
            script = script.display(),
            ca = stack.ca_pem().display(),
        ),
    )
    .unwrap();
    let out = run(aliwatch(dir.path()).arg("-c").arg(&cfg).arg("sync"));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{all}");
    let runs = std::fs::read_to_string(dir.path().join("pw-runs")).unwrap_or_default();
    assert_eq!(runs.lines().count(), 1, "{all}");
}
