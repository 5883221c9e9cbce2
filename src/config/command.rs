//! The one bounded runner for every `*_command` (`password_command`,
//! `api_key_command`, `oauth2_token_command`): `/bin/sh -c COMMAND` with
//! stdin closed, a time limit, stdout read as the secret (at most
//! [`MAX_OUTPUT`] bytes) and stderr drained and dropped (its size is
//! logged at debug: a helper may print the secret or a prompt there, and
//! under systemd stderr is the journal).
//!
//! Each command runs once per process: [`run_cached`] keeps its answer for
//! the lifetime of the process, and [`forget`] drops it after the server
//! refused it, so that a password manager is asked again only then.
//!
//! The time limit holds for everything the command starts. It runs in its
//! own process group, which is killed whole at the limit (`sh -c "sleep
//! 100"` forks `sleep`, which would otherwise keep the pipes open). A
//! helper that leaves the group (`setsid`) cannot be reached that way, so
//! stdout is read against the same deadline, and whoever still holds the
//! pipe's write end when it passes is found in `/proc` and killed.
//!
//! A command that fails or times out is a runtime failure ([`CommandFailed`],
//! exit 1, systemd retries: a locked or slow password manager is a
//! transient fault), never a config error (SPEC §1).

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// The default time limit of a secret command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The most stdout read from a secret command; a secret is short.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// The limit the loaded config set (`command_timeout`), in milliseconds.
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(60_000);

/// A `*_command` that failed, timed out or printed no secret: a runtime
/// failure (exit 1). Names the key and what went wrong, never the output
/// or the command.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CommandFailed(pub String);

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

/// The answers of the commands run so far, by command text. The lock is
/// held while a command runs, so two threads asking at once run it once.
static CACHE: LazyLock<Mutex<HashMap<String, String>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// [`run`] once per process: later calls get the first answer.
pub fn run_cached(key: &str, command: &str, limit: Duration) -> Result<String, CommandFailed> {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = cache.get(command) {
        return Ok(v.clone());
    }
    let v = run(key, command, limit)?;
    cache.insert(command.to_string(), v.clone());
    Ok(v)
}

/// Drops the cached answer of `command` (the server refused it), so the
/// next [`run_cached`] runs it again.
pub fn forget(command: &str) {
    CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(command);
}

/// Runs `command` through `/bin/sh -c` and returns its trimmed stdout,
/// all within `limit` (see the module comment).
pub fn run(key: &str, command: &str, limit: Duration) -> Result<String, CommandFailed> {
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| CommandFailed(format!("{key}: cannot run /bin/sh: {e}")))?;
    let pid = child.id();
    let pipe = child.stdout.as_ref().and_then(pipe_inode);
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    if let Some(mut out) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = (&mut out).take(MAX_OUTPUT as u64 + 1).read_to_end(&mut buf);
            // Drain the rest so the command does not block on a full pipe.
            let _ = std::io::copy(&mut out, &mut std::io::sink());
            let _ = tx.send(buf);
        });
    }
    if let Some(mut err) = child.stderr.take() {
        // Not waited for: a helper that escaped may hold it open.
        std::thread::spawn(move || {
            let n = std::io::copy(&mut err, &mut std::io::sink()).unwrap_or(0);
            if n > 0 {
                tracing::debug!(bytes = n, "secret command wrote to stderr (dropped)");
            }
        });
    }
    let timed_out = || {
        CommandFailed(format!(
            "{key}: the command did not finish within {}s and was killed",
            limit.as_secs_f64()
        ))
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= limit => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                kill_group(pid);
                let _ = child.kill();
                let _ = child.wait();
                return Err(CommandFailed(format!(
                    "{key}: cannot wait for the command: {e}"
                )));
            }
        }
    };
    // The shell is gone or overdue; whatever it left in its group is
    // killed so that the pipes close and the reader finishes.
    kill_group(pid);
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        kill_pipe_holders(pipe);
        return Err(timed_out());
    };
    let left = limit.saturating_sub(started.elapsed());
    let out = match rx.recv_timeout(left) {
        Ok(out) => out,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Vec::new(),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            kill_pipe_holders(pipe);
            return Err(timed_out());
        }
    };
    if !status.success() {
        return Err(CommandFailed(format!(
            "{key}: the command failed ({status})"
        )));
    }
    if out.len() > MAX_OUTPUT {
        return Err(CommandFailed(format!(
            "{key}: the command printed more than {MAX_OUTPUT} bytes"
        )));
    }
    let text = String::from_utf8(out).map_err(|_| {
        CommandFailed(format!(
            "{key}: the command printed something that is not UTF-8"
        ))
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(CommandFailed(format!("{key}: the command printed nothing")));
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

/// The inode of the pipe behind `out` (both ends of a pipe share it).
fn pipe_inode(out: &std::process::ChildStdout) -> Option<u64> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/fd/{}", out.as_raw_fd()))
        .ok()
        .map(|m| m.ino())
}

/// SIGKILL to every other process that holds the pipe `inode` open: a
/// helper that left the command's process group (`setsid`) and still
/// holds its stdout. Linux `/proc`; elsewhere nothing is found.
fn kill_pipe_holders(inode: Option<u64>) {
    let Some(inode) = inode else { return };
    let want = format!("pipe:[{inode}]");
    let me = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let pid = p.file_name().to_string_lossy().into_owned();
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str()));
        if holds {
            tracing::warn!(
                pid,
                "killing a secret command's helper that outlived its time limit"
            );
            let _ = Command::new("kill")
                .args(["-KILL", "--", &pid])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
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

    #[test]
    fn secret_command_that_setsids_still_ends_at_the_limit() {
        // The helper leaves the process group and keeps stdout open.
        let t = Instant::now();
        let e = run(
            "password_command",
            // The shell waits a moment, so that the helper has left the
            // group before the shell ends (else killing the group at the
            // shell's end would catch it, and nothing would be escaping).
            "setsid sh -c 'sleep 30; echo late' & sleep 0.2",
            Duration::from_millis(500),
        )
        .expect_err("times out");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(e.0.contains("did not finish within 0.5s"), "{e}");
    }

    #[test]
    fn secret_command_runs_once_per_process_until_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let count = dir.path().join("runs");
        let cmd = format!("echo x >> '{}'; echo s3cret", count.display());
        let runs = || std::fs::read_to_string(&count).map_or(0, |t| t.lines().count());
        assert_eq!(
            run_cached("k", &cmd, DEFAULT_TIMEOUT).expect("runs"),
            "s3cret"
        );
        assert_eq!(
            run_cached("k", &cmd, DEFAULT_TIMEOUT).expect("cached"),
            "s3cret"
        );
        assert_eq!(runs(), 1);
        forget(&cmd);
        run_cached("k", &cmd, DEFAULT_TIMEOUT).expect("runs again");
        assert_eq!(runs(), 2);
    }
}
