//! The service's end of the control socket, inside `run`: accepts the
//! command line's requests and carries them out with the same functions
//! the command line uses on the database ([`crate::ops`]), in the service,
//! so reads show what the service shows and writes reach its schedulers at
//! once (a kick: the MQTT state and the dashboard follow within a second).
//! `sync` runs the mail part here and asks the schedulers for a pass each
//! ([`crate::live::Passes`]); `digest --send` sends under the same guard as
//! the notification pass, so the two never both send today's digest.
//!
//! Limits: [`MAX_CONNECTIONS`] at a time (more are told so and closed); a
//! connection that does not send its request within
//! [`super::ACCEPT_TIMEOUT`] is closed; a frame over
//! [`protocol::MAX_FRAME`] ends the connection.

use std::io::{BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use super::protocol::{self, Accepted, Hello, ImportFrame, Reply, Request};
use crate::config::Config;
use crate::live::Live;
use crate::ops::{self, ImportSummary};
use crate::render::status::Layout;
use crate::store::Store;

/// Requests served at the same time.
pub const MAX_CONNECTIONS: usize = 8;
/// How long `sync` waits for each scheduler's pass.
pub const PASS_WAIT: Duration = Duration::from_secs(600);
/// How long the service waits for the next frame of an `import`.
pub const IMPORT_FRAME_TIMEOUT: Duration = Duration::from_secs(120);

/// What the requests need from the running service.
pub struct Service {
    pub cfg: Arc<Config>,
    pub live: Arc<Live>,
}

/// Listens on `path`: a socket file left by a service that died is removed
/// first (the caller holds the run lock, so no live service owns it), and
/// the socket is made 0660: its user and the `aliwatch` group.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path).with_context(|| {
                format!("cannot remove the stale control socket {}", path.display())
            })?;
        } else {
            anyhow::bail!(
                "{} exists and is not a socket; remove it so the control socket can be made",
                path.display()
            );
        }
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot listen on the control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(listener)
}

/// Serves requests until `cancel`; removes the socket file at the end.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    service: Arc<Service>,
    cancel: CancellationToken,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer = stream.peer_cred().ok().map(|c| c.uid());
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let permit = slots.clone().try_acquire_owned();
        let service = service.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let Ok(permit) = permit else {
                let _ = refuse(
                    stream,
                    "the service is busy with other commands; try again in a moment",
                );
                return;
            };
            if let Err(e) = serve_one(stream, &service, &handle, peer) {
                tracing::debug!(error = %format!("{e:#}"), "control socket: connection ended");
            }
            drop(permit);
        });
    }
    let _ = std::fs::remove_file(&path);
}

fn refuse(mut stream: UnixStream, why: &str) -> std::io::Result<()> {
    stream.set_write_timeout(Some(super::ACCEPT_TIMEOUT))?;
    stream.write_all(&protocol::encode(&Accepted {
        accepted: false,
        error: Some(why.into()),
    }))
}

/// One connection: hello, accepted, the command, its reply.
fn serve_one(
    stream: UnixStream,
    service: &Service,
    handle: &tokio::runtime::Handle,
    peer: Option<u32>,
) -> Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(super::ACCEPT_TIMEOUT))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let hello: Hello = match protocol::read_frame(&mut reader) {
        Ok(Some(h)) => h,
        Ok(None) => return Ok(()),
        Err(e) => {
            let _ = refuse(writer, &format!("a request this service cannot read: {e}"));
            return Ok(());
        }
    };
    if hello.aliwatch != protocol::VERSION {
        let why = format!(
            "the service speaks control protocol {} and this command {}: use the same aliwatch version for both (restart the service after an upgrade)",
            protocol::VERSION,
            hello.aliwatch
        );
        let _ = refuse(writer, &why);
        return Ok(());
    }
    tracing::info!(command = hello.request.name(), uid = ?peer, "command from the control socket");
    writer.write_all(&protocol::encode(&Accepted {
        accepted: true,
        error: None,
    }))?;
    reader
        .get_ref()
        .set_read_timeout(Some(IMPORT_FRAME_TIMEOUT))?;
    let reply = execute(&hello.request, &mut reader, service, handle);
    writer.write_all(&protocol::encode(&reply))?;
    Ok(())
}

/// Carries out one request in the service.
fn execute(
    request: &Request,
    reader: &mut BufReader<UnixStream>,
    service: &Service,
    handle: &tokio::runtime::Handle,
) -> Reply {
    let cfg = &service.cfg;
    let now = Utc::now();
    let read = || Store::open_read_only(&cfg.database);
    let write = || Store::open(&cfg.database);
    let changed = |r: Result<String>| {
        if r.is_ok() {
            // The schedulers publish the new state (MQTT, next digest) now.
            service.live.kick();
        }
        Reply::from_result(r)
    };
    match request.clone() {
        Request::Status {
            json,
            all,
            wide,
            columns,
        } => {
            let layout = if wide {
                Layout::Wide
            } else {
                Layout::Fit(columns)
            };
            Reply::from_result(read().and_then(|s| ops::status(&s, cfg, now, json, all, layout)))
        }
        Request::Calendar => Reply::from_result(read().and_then(|s| ops::calendar(&s, cfg, now))),
        Request::DigestPrint => {
            Reply::from_result(read().and_then(|s| ops::digest_text(&s, cfg, now)))
        }
        Request::Add {
            tracking_number,
            order,
            create,
            force,
        } => changed(write().and_then(|mut s| {
            ops::add(
                &mut s,
                &tracking_number,
                order.as_deref(),
                create,
                force,
                now,
            )
        })),
        Request::Protection {
            order_id,
            extend,
            until,
        } => {
            let action = match ops::protection_action(extend, until) {
                Ok(a) => a,
                Err(e) => return Reply::from_result(Err(e.into())),
            };
            changed(write().and_then(|mut s| ops::protection(&mut s, cfg, &order_id, action, now)))
        }
        Request::Done { order_id } => {
            changed(write().and_then(|mut s| ops::done(&mut s, &order_id, now)))
        }
        Request::Untrack { order_id } => {
            changed(write().and_then(|mut s| ops::untrack(&mut s, &order_id, now)))
        }
        Request::Import => changed(import(reader, cfg)),
        Request::DigestSend => {
            let r = handle.block_on(digest_send(service));
            match r {
                Ok(note) => Reply {
                    notes: note,
                    ..Reply::default()
                },
                Err(e) => Reply::from_error(&e),
            }
        }
        Request::Sync => handle.block_on(sync(service)),
    }
}

/// `import` through the service: the client reads the files (the service
/// may not see them) and sends each email; each is recorded as it comes.
fn import(reader: &mut BufReader<UnixStream>, cfg: &Config) -> Result<String> {
    let mut store = Store::open(&cfg.database)?;
    let mut summary = ImportSummary::default();
    let started = std::time::Instant::now();
    loop {
        match protocol::read_frame::<ImportFrame>(reader) {
            Ok(Some(ImportFrame::Email(m))) => summary.ingest(&mut store, &m, Utc::now())?,
            Ok(Some(ImportFrame::End { unreadable })) => {
                return Ok(summary.line(started.elapsed().as_secs_f64(), unreadable))
            }
            Ok(None) => anyhow::bail!(
                "the import was cut short after {} emails (those are kept; run it again, it skips what it has)",
                summary.read
            ),
            Err(e) => anyhow::bail!(
                "the import was cut short after {} emails: {e} (those are kept)",
                summary.read
            ),
        }
    }
}

/// `digest --send` in the service, under the notification pass's guard.
async fn digest_send(service: &Service) -> Result<String> {
    crate::ops::smtp_for_digest(&service.cfg)?;
    let _sending = service.live.sending.lock().await;
    crate::ops::digest_send(&service.cfg, Utc::now()).await
}

/// `sync` in the service: new mail from every account now, then a tracking
/// pass and a notification pass of the schedulers (not beside them: one
/// sender, one request per parcel), with a summary of each.
async fn sync(service: &Service) -> Reply {
    let cfg = &service.cfg;
    let mut notes = Vec::new();
    let mut failures = Vec::new();
    // One connection for every account, as `aliwatch sync` alone does.
    let store = match Store::open(&cfg.database) {
        Ok(s) => Arc::new(std::sync::Mutex::new(s)),
        Err(e) => return Reply::from_error(&e),
    };
    for account in &cfg.imap {
        match crate::pipeline::sync_account_once(account, &store, Utc::now()).await {
            Ok(s) => notes.push(format!(
                "mail {}: {} fetched, {} new",
                account.name,
                s.fetched(),
                s.new_emails()
            )),
            Err(e) => failures.push(format!("imap {}: {e:#}", account.name)),
        }
    }
    if cfg.imap.is_empty() {
        notes.push("mail: no [imap] configured".into());
    }
    let mut pass = |name: &str, r: Option<Result<(), String>>| match r {
        Some(Ok(())) => notes.push(format!("{name}: done")),
        Some(Err(e)) => failures.push(format!("{name}: {e}")),
        None => failures.push(format!(
            "{name}: no pass finished within {} min",
            PASS_WAIT.as_secs() / 60
        )),
    };
    if !cfg.tracking.providers.is_empty() {
        pass("tracking", service.live.tracking.pass_now(PASS_WAIT).await);
    }
    pass(
        "notifications",
        service.live.notifications.pass_now(PASS_WAIT).await,
    );
    let mut reply = Reply {
        notes: format!(
            "sync by the service (pid {}): {}\n",
            std::process::id(),
            notes.join("; ")
        ),
        ..Reply::default()
    };
    if !failures.is_empty() {
        reply.error = Some(format!(
            "sync finished with errors: {}",
            failures.join("; ")
        ));
        reply.exit = 1;
    }
    reply
}
