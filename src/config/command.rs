//! The one bounded runner for every `*_command` (`password_command`,
//! `api_key_command`, `oauth2_token_command`): `/bin/sh -c COMMAND` with
//! stdin closed, a time limit, stdout read as the secret (at most
//! [`MAX_OUTPUT`] bytes) and stderr captured and dropped (its size is
//! logged at debug: a helper may print the secret or a prompt there, and
//! under systemd stderr is the journal).
//!
//! The command runs in its own process group so that a timeout kills the
//! shell and whatever it started (`sh -c "sleep 100"` forks `sleep`, which
//! would otherwise keep the pipes open).

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ConfigError;

/// The default time limit of a secret command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The most stdout read from a secret command; a secret is short.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// The limit the loaded config set (`command_timeout`), in milliseconds.
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(60_000);

/// Sets the time limit every later secret command gets (from the config's
/// `command_timeout`; one config per process).
pub fn set_timeout(limit: Duration) {
    let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1);
    TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// The current time limit of a secret command.
pub fn timeout() -> Duration {
    Duration::from_millis(TIMEOUT_MS.load(Ordering::Relaxed))
}

/// Runs `command` through `/bin/sh -c` and returns its trimmed stdout.
/// Errors name `key` and what went wrong (exit status, signal, timeout),
/// never the output, and never the command (it may hold a secret itself).
pub fn run(key: &str, command: &str, limit: Duration) -> Result<String, ConfigError> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| ConfigError(format!("{key}: cannot run /bin/sh: {e}")))?;
    let pid = child.id();
    let stdout = child.stdout.take().map(|mut out| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = (&mut out).take(MAX_OUTPUT as u64 + 1).read_to_end(&mut buf);
            // Drain the rest so the command does not block on a full pipe.
            let _ = std::io::copy(&mut out, &mut std::io::sink());
            buf
        })
    });
    let stderr = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()).unwrap_or(0))
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= limit => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                kill_group(pid);
                let _ = child.kill();
                let _ = child.wait();
                return Err(ConfigError(format!(
                    "{key}: cannot wait for the command: {e}"
                )));
            }
        }
    };
    let Some(status) = status else {
        kill_group(pid);
        let _ = child.kill();
        let _ = child.wait();
        return Err(ConfigError(format!(
            "{key}: the command did not finish within {}s and was killed",
            limit.as_secs_f64()
        )));
    };
    // The shell is gone; children it left in its group are killed so that
    // the pipes close and the readers finish.
    kill_group(pid);
    let out = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    let err_bytes = stderr.and_then(|h| h.join().ok()).unwrap_or(0);
    if err_bytes > 0 {
        tracing::debug!(
            key,
            bytes = err_bytes,
            "secret command wrote to stderr (dropped)"
        );
    }
    if !status.success() {
        return Err(ConfigError(format!("{key}: the command failed ({status})")));
    }
    if out.len() > MAX_OUTPUT {
        return Err(ConfigError(format!(
            "{key}: the command printed more than {MAX_OUTPUT} bytes"
        )));
    }
    let text = String::from_utf8(out).map_err(|_| {
        ConfigError(format!(
            "{key}: the command printed something that is not UTF-8"
        ))
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(ConfigError(format!("{key}: the command printed nothing")));
    }
    Ok(text.to_string())
}

/// SIGKILL to the process group `pgid` (std has no killpg; `kill` is in
/// every base system and `unsafe` is forbidden here).
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_is_the_secret_and_stderr_is_dropped() {
        let got = run("k", "echo ' s3cret '; echo noise >&2", DEFAULT_TIMEOUT).expect("runs");
        assert_eq!(got, "s3cret");
    }

    #[test]
    fn a_slow_command_is_killed_at_the_limit() {
        let t = Instant::now();
        let e = run(
            "password_command",
            "sleep 30; echo late",
            Duration::from_millis(300),
        )
        .expect_err("times out");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(e.0.contains("did not finish within 0.3s"), "{e}");
    }

    #[test]
    fn failure_names_the_status_not_the_output() {
        let e = run(
            "k",
            "echo hunter2; echo hunter2 >&2; exit 3",
            DEFAULT_TIMEOUT,
        )
        .expect_err("fails");
        assert!(e.0.contains("exit status: 3"), "{e}");
        assert!(!e.0.contains("hunter2"), "{e}");
        let e = run("k", "true", DEFAULT_TIMEOUT).expect_err("empty");
        assert!(e.0.contains("printed nothing"), "{e}");
    }
}
