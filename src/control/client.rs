//! The command line's end of the control socket: where a command goes
//! ([`route`]: to the running service, or to the database itself), and
//! the conversation with the service ([`call`]).

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::protocol::{self, Accepted, Hello, ImportFrame, Reply, Request};
use crate::ops::{Failed, ImportedEmail};
use crate::store::locks::{self, Holder, Lock};

/// How long a command that sends waits for another one that sends (a
/// `sync` from cron) before it gives up.
pub const SENDER_WAIT: Duration = Duration::from_secs(120);
/// How long a command waits for a starting service to open its socket.
const STARTING_WAIT: Duration = Duration::from_secs(5);

/// Where a command is carried out.
#[derive(Debug)]
pub enum Route {
    /// No service holds the database: act on it here. `Some` holds the run
    /// lock for the command's life (commands that send: nobody else may).
    Direct(Option<std::fs::File>),
    /// The running service, at this socket.
    Service { pid: u32, socket: PathBuf },
}

/// Where a command on `database` goes. `sends`: the command sends email or
/// push itself when no service runs (`sync`, `digest --send`), so it takes
/// the run lock, waiting up to [`SENDER_WAIT`] for another such command;
/// `role` is its name in the lock file.
pub fn route(database: &Path, sends: bool, role: &str) -> Result<Route> {
    let deadline = Instant::now() + SENDER_WAIT;
    let mut told = false;
    loop {
        let found = if sends {
            match locks::try_lock_as(database, "run", role) {
                // Another user may only read the lock file: look, without
                // taking it.
                Lock::Unavailable(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    match locks::probe(database, "run") {
                        Lock::Held(_) => {
                            return Err(Failed::new(format!(
                                "no aliwatch service runs on {} and you may not change it yourself ({e}); start the service (systemctl start aliwatch) or run this as its user",
                                database.display()
                            ))
                            .into())
                        }
                        other => other,
                    }
                }
                other => other,
            }
        } else {
            locks::probe(database, "run")
        };
        match found {
            Lock::Held(file) => return Ok(Route::Direct(sends.then_some(file))),
            // Its folder is closed to this user: so is the database.
            Lock::Unavailable(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(Failed::new(format!(
                    "you may not use aliwatch's state at {} ({e}): only root and members of the aliwatch group may; join it (`sudo usermod -aG aliwatch $USER`, then log in again) or use sudo",
                    database.display()
                ))
                .into())
            }
            // No lock file (no database yet): the command meets the
            // database's own error, if any.
            Lock::Unavailable(_) => return Ok(Route::Direct(None)),
            Lock::Busy(holder) if is_service(&holder) => {
                return service_route(database, holder, sends, role)
            }
            Lock::Busy(_) if !sends => return Ok(Route::Direct(None)),
            Lock::Busy(holder) => {
                if Instant::now() >= deadline {
                    return Err(Failed::new(format!(
                        "another `aliwatch {}`{} has been sending on {} for {} s; try again when it has finished",
                        holder.role.as_deref().unwrap_or("command"),
                        holder.pid_words(),
                        database.display(),
                        SENDER_WAIT.as_secs()
                    ))
                    .into());
                }
                if !told {
                    tracing::info!(
                        holder = holder.role.as_deref().unwrap_or("?"),
                        pid = holder.pid,
                        "waiting for another aliwatch command that sends to finish"
                    );
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

/// A lock held by `run` (or by an older aliwatch, which only ran `run`
/// under the lock).
fn is_service(holder: &Holder) -> bool {
    matches!(holder.role.as_deref(), None | Some("run"))
}

/// The service's socket; a service that is starting gets a few seconds to
/// name it. One that stops meanwhile: the command routes again as it
/// asked (`sends`, `role`), so a `sync` then takes the run lock itself.
fn service_route(database: &Path, mut holder: Holder, sends: bool, role: &str) -> Result<Route> {
    let deadline = Instant::now() + STARTING_WAIT;
    loop {
        if let (Some(pid), Some(socket)) = (holder.pid, holder.socket.clone()) {
            return Ok(Route::Service { pid, socket });
        }
        if Instant::now() >= deadline {
            let what = if holder.role.is_none() {
                "an older aliwatch that has no control socket: restart it (systemctl restart aliwatch) so commands can reach it"
            } else {
                "no control socket yet: it may still be starting, or could not listen; see its log (journalctl -u aliwatch)"
            };
            return Err(Failed::new(format!(
                "the aliwatch service{} holds {} but has {what}; nothing was done",
                holder.pid_words(),
                database.display()
            ))
            .into());
        }
        std::thread::sleep(Duration::from_millis(100));
        match locks::probe(database, "run") {
            Lock::Busy(h) => holder = h,
            // It stopped meanwhile: the caller routes again.
            _ => return route(database, sends, role),
        }
    }
}

/// Reads an `import`'s inputs, handing each email to the function it is
/// given (which sends it to the service); returns the number of inputs it
/// could not read.
pub type ImportSource<'a> =
    dyn FnMut(&mut dyn FnMut(ImportedEmail) -> Result<()>) -> Result<usize> + 'a;

/// Sends `request` to the service and returns its reply. For `import`,
/// `emails` is called with a function that sends one email; it returns
/// the number of unreadable inputs. `wait` bounds the wait for the reply
/// once accepted.
pub fn call(
    pid: u32,
    socket: &Path,
    request: Request,
    emails: Option<&mut ImportSource<'_>>,
    wait: Duration,
) -> Result<Reply> {
    let stream = connect(pid, socket)?;
    stream.set_read_timeout(Some(super::ACCEPT_TIMEOUT))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let name = request.name();
    let unresponsive = |e: &dyn std::fmt::Display| {
        Failed::new(format!(
            "the aliwatch service (pid {pid}) did not answer on {} within {} s ({e}); nothing was done: check it with `systemctl status aliwatch`",
            socket.display(),
            super::ACCEPT_TIMEOUT.as_secs()
        ))
    };
    writer
        .write_all(&protocol::encode(&Hello {
            aliwatch: protocol::VERSION,
            request,
        }))
        .map_err(|e| unresponsive(&e))?;
    let accepted: Accepted = match protocol::read_frame(&mut reader) {
        Ok(Some(a)) => a,
        Ok(None) => return Err(unresponsive(&"it closed the connection").into()),
        Err(e) => return Err(unresponsive(&e).into()),
    };
    if !accepted.accepted {
        return Err(Failed::new(format!(
            "the aliwatch service (pid {pid}) refused `{name}`: {}",
            accepted.error.unwrap_or_default()
        ))
        .into());
    }
    if let Some(emails) = emails {
        let mut send = |m: ImportedEmail| -> Result<()> {
            writer
                .write_all(&protocol::encode(&ImportFrame::Email(m)))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "the service stopped taking the import ({e}); what it took is kept"
                    )
                })
        };
        let unreadable = emails(&mut send)?;
        writer.write_all(&protocol::encode(&ImportFrame::End { unreadable }))?;
    }
    reader.get_ref().set_read_timeout(Some(wait))?;
    match protocol::read_frame::<Reply>(&mut reader) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(Failed::new(format!(
            "the aliwatch service (pid {pid}) closed the connection before `{name}` finished; see its log (journalctl -u aliwatch)"
        ))
        .into()),
        Err(e) => Err(Failed::new(format!(
            "no answer from the aliwatch service (pid {pid}) to `{name}` within {} s: {e}",
            wait.as_secs()
        ))
        .into()),
    }
}

/// Connects and checks that the process answering is the one holding the
/// lock (`SO_PEERCRED`): a stale socket file, or one someone else put at
/// that path, is never talked to.
fn connect(pid: u32, socket: &Path) -> Result<UnixStream> {
    let shown = socket.display();
    let stream = UnixStream::connect(socket).map_err(|e| {
        let what = match e.kind() {
            std::io::ErrorKind::PermissionDenied => format!(
                "you may not use it ({e}): add yourself to the aliwatch group (`sudo usermod -aG aliwatch $USER`, then log in again) or use sudo"
            ),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => format!(
                "it does not answer ({e}): the service may be hanging; restart it (systemctl restart aliwatch)"
            ),
            _ => e.to_string(),
        };
        Failed::new(format!(
            "the aliwatch service (pid {pid}) holds the database, but its control socket {shown}: {what}; nothing was done"
        ))
    })?;
    let peer = peer_pid(&stream)?;
    if peer != Some(pid) {
        return Err(Failed::new(format!(
            "the control socket {shown} is served by {}, not by the aliwatch service holding the database (pid {pid}); refusing to talk to it; nothing was done",
            peer.map_or_else(|| "an unknown process".to_string(), |p| format!("pid {p}"))
        ))
        .into());
    }
    Ok(stream)
}

/// The PID of the process at the other end (std's `peer_cred` is not
/// stable yet; tokio's is).
fn peer_pid(stream: &UnixStream) -> Result<Option<u32>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let _entered = rt.enter();
    let copy = stream.try_clone()?;
    copy.set_nonblocking(true)?;
    let tokio_stream = tokio::net::UnixStream::from_std(copy)?;
    let cred = tokio_stream.peer_cred()?;
    // The clone shares the open file description: back to blocking.
    drop(tokio_stream);
    stream.set_nonblocking(false)?;
    Ok(cred.pid().and_then(|p| u32::try_from(p).ok()))
}
