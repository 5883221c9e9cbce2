//! systemd integration: `sd_notify(3)` messages (READY=1, STATUS=,
//! WATCHDOG=1, STOPPING=1) over the datagram socket named by
//! `$NOTIFY_SOCKET`, and the watchdog interval from `$WATCHDOG_USEC`.
//!
//! Every function is a no-op outside systemd, so the daemon runs the same
//! under a terminal, a test harness or `Type=notify`. Written by hand (a few
//! lines) rather than with a crate: the protocol is one datagram, and the
//! `sd-notify` crate's env-unsetting functions are `unsafe`.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends one notification; errors are logged at debug level and otherwise
/// ignored (a missing notify socket must never stop the daemon).
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = (|| -> std::io::Result<()> {
        let sock = UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            // Abstract socket (sd_notify(3): a leading '@').
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            sock.send_to(state.as_bytes(), &path)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// READY=1: the config is valid and the database migrated.
pub fn ready(status: &str) {
    notify(&format!("READY=1\nSTATUS={status}"));
}

/// STATUS=…: the one line `systemctl status` shows.
pub fn status(status: &str) {
    notify(&format!("STATUS={status}"));
}

/// STOPPING=1: shutdown has begun.
pub fn stopping() {
    notify("STOPPING=1\nSTATUS=stopping");
}

/// WATCHDOG=1: the main loop is alive.
pub fn watchdog_ping() {
    notify("WATCHDOG=1");
}

/// How often to ping the watchdog (half of `WatchdogSec=`), when systemd
/// asked for pings for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
