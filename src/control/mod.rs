//! The command line beside the running service (SPEC §1, "one state per
//! config, one sender"): while `run` holds a database, `status`,
//! `digest`, `calendar`, `add`, `done`, `protection`, `import` and `sync`
//! are carried out by the service, through a Unix socket it listens on,
//! the way `chronyc` talks to `chronyd`.
//!
//! - **Finding it.** `run` holds `<database>.run-lock` and writes its PID,
//!   the role `run` and the socket's path into it ([`crate::store::locks`]).
//!   The socket is `$RUNTIME_DIRECTORY/control.sock` under systemd
//!   (`/run/aliwatch/control.sock`), else `<database>.sock`. A command
//!   that finds the lock held by `run` talks to that socket; a free lock
//!   means no service, and the command works on the database itself.
//! - **Trust.** The socket is 0660 (the `aliwatch` group and the service's
//!   user); the client checks with `SO_PEERCRED` that the process answering
//!   is the one holding the lock, so a stale or planted socket is never
//!   believed.
//! - **Wire** ([`protocol`]): one JSON object per line. The client sends
//!   a hello with its [`protocol::Request`], the service answers `accepted`
//!   within [`ACCEPT_TIMEOUT`], `import` then streams its emails, and the
//!   service ends with a [`protocol::Reply`]: what to print and the exit
//!   code. Every line is bounded ([`protocol::MAX_FRAME`]).
//! - **Never twice.** A service that holds the lock but does not answer is
//!   an error (exit 1, naming what to do), never a reason to act on the
//!   database beside it: only the lock's holder sends.

pub mod client;
pub mod protocol;
pub mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a client waits for the service to accept a request.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest path a Unix socket address holds (`sun_path`, 108 bytes
/// with its terminating NUL on Linux).
const SUN_PATH_MAX: usize = 107;

/// Where `run` listens: `$RUNTIME_DIRECTORY/control.sock` (systemd's
/// `RuntimeDirectory=`, the first when it names several), else beside the
/// database. An error when that path is too long for a socket address.
pub fn socket_path(database: &Path) -> Result<PathBuf, String> {
    let path = match std::env::var_os("RUNTIME_DIRECTORY").filter(|d| !d.is_empty()) {
        Some(dirs) => {
            let first = dirs
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or("")
                .to_string();
            PathBuf::from(first).join("control.sock")
        }
        None => {
            let mut p = database.as_os_str().to_owned();
            p.push(".sock");
            PathBuf::from(p)
        }
    };
    if path.as_os_str().len() > SUN_PATH_MAX {
        return Err(format!(
            "the control socket path {} is longer than {SUN_PATH_MAX} bytes; give the database a shorter path (or run under systemd with RuntimeDirectory=)",
            path.display()
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_sits_beside_the_database_without_a_runtime_directory() {
        // RUNTIME_DIRECTORY is not set in the test environment.
        if std::env::var_os("RUNTIME_DIRECTORY").is_some() {
            return;
        }
        assert_eq!(
            socket_path(Path::new("/var/lib/aliwatch/aliwatch.db")),
            Ok(PathBuf::from("/var/lib/aliwatch/aliwatch.db.sock"))
        );
        let long = format!("/{}/a.db", "x".repeat(120));
        assert!(socket_path(Path::new(&long))
            .unwrap_err()
            .contains("longer than 107 bytes"));
    }
}
