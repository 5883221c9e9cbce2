//! Notifications: the daily digest and Buyer Protection warnings — what is
//! due (`due.rs`, pure), how they look (`render.rs`, pure), and sending them
//! over SMTP (`smtp.rs`) exactly once (this file, with the ledger in
//! `store/notifications.rs`).
//!
//! Once and only once: each pass (1) works out what is newly due from the
//! read model and the ledger's keys, (2) records each as `pending` in a
//! committed transaction, (3) sends every pending one whose retry time has
//! come, (4) marks it `sent`. A failed send stays pending (attempts,
//! last error) and is retried with backoff in later passes: never lost. A
//! crash between (3) and (4) repeats that one email on the next pass, with
//! the same deterministic Message-ID, so mail clients merge it: we prefer
//! one possible duplicate over a possibly skipped warning.
//!
//! Without `[smtp]` nothing is recorded or sent, so what is due stays due
//! until SMTP is configured.

pub mod due;
pub mod render;
pub mod smtp;

use anyhow::{bail, Result};
use chrono::{DateTime, Duration, Utc};

use crate::config::Config;
use crate::report::StatusReport;
use crate::store::notifications::NotificationRecord;
use crate::store::Store;

pub use due::{due_notifications, next_digest_at, Notification, NotificationKind};
pub use render::{render_digest, render_warning, RenderedEmail};
pub use smtp::{OutgoingEmail, SendError, Sender, SmtpSender};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendSummary {
    /// Newly due notifications recorded in this pass.
    pub newly_due: usize,
    /// Accepted by the server.
    pub sent: usize,
    /// Attempted and failed (still pending).
    pub failed: usize,
    /// Pending and waiting for their retry time (or for the server after
    /// an earlier failure in this pass).
    pub waiting: usize,
    /// Pending ones that no longer apply (order completed, protection
    /// extended or ended); recorded as superseded.
    pub dropped: usize,
    /// No `[smtp]`: nothing recorded, nothing sent; `newly_due` says how
    /// many are waiting for it.
    pub not_configured: bool,
    /// The last send error, for the log.
    pub last_error: Option<String>,
}

/// The wait before retry number `attempts + 1`: 1, 2, 4 … minutes, at most
/// one hour, so a server that is back is used within the hour.
pub fn retry_delay(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(6);
    Duration::minutes((1i64 << exp).min(60))
}

fn from_of(cfg: &Config) -> Option<&str> {
    cfg.smtp.as_ref().map(|s| s.from.as_str())
}

/// The Message-ID of a ledger key under this config.
pub fn message_id_for(key: &str, cfg: &Config) -> String {
    due::message_id(key, from_of(cfg))
}

/// Renders a pending row from the current read model. `Err(reason)`: it no
/// longer applies and is dropped.
fn render_pending(
    rec: &NotificationRecord,
    report: &StatusReport,
    cfg: &Config,
    now: DateTime<Utc>,
) -> Result<RenderedEmail, String> {
    match due::parse_key(&rec.key) {
        Some(due::ParsedKey::Digest(_)) => Ok(render_digest(report, cfg, now)),
        Some(due::ParsedKey::Warning {
            order_id,
            threshold_days,
        }) => {
            let Some(order) = report.orders.iter().find(|o| o.order_id == order_id) else {
                return Err("the order is no longer known".into());
            };
            if !order.is_active() {
                return Err("the order was completed".into());
            }
            match due::days_left(order, now, cfg.timezone) {
                None => Err("the order has no protection date any more".into()),
                Some(left) if left < 0 => Err("protection ended before it could be sent".into()),
                Some(left) if left > i64::from(threshold_days) => {
                    Err("protection was extended".into())
                }
                Some(_) => Ok(render_warning(order, threshold_days, cfg, now)),
            }
        }
        None => Err(format!("unknown notification key {:?}", rec.key)),
    }
}

/// One pass: record what is newly due, then send everything pending whose
/// retry time has come. Errors are store errors; send failures are counted
/// in the summary and retried later.
pub async fn send_due<S: Sender>(
    store: &mut Store,
    report: &StatusReport,
    cfg: &Config,
    now: DateTime<Utc>,
    sender: &S,
) -> Result<SendSummary> {
    let mut summary = SendSummary::default();
    let recorded = store.notification_keys()?;
    let due = due_notifications(report, &recorded, now, cfg);
    summary.newly_due = due.len();
    if cfg.smtp.is_none() {
        summary.not_configured = true;
        return Ok(summary);
    }
    for n in &due {
        let siblings: Vec<(String, String)> = n
            .supersedes
            .iter()
            .map(|k| (k.clone(), message_id_for(k, cfg)))
            .collect();
        store.record_intent(n, &message_id_for(&n.key, cfg), &siblings, now)?;
        tracing::debug!(key = %n.key, "notification due");
    }

    let mut server_down = false;
    for rec in store.pending_notifications()? {
        if server_down {
            summary.waiting += 1;
            continue;
        }
        if rec.attempts > 0 {
            if let Some(last) = rec.last_attempt_at {
                if now < last + retry_delay(rec.attempts) {
                    summary.waiting += 1;
                    continue;
                }
            }
        }
        let rendered = match render_pending(&rec, report, cfg, now) {
            Ok(r) => r,
            Err(reason) => {
                tracing::info!(key = %rec.key, reason, "notification dropped");
                store.mark_notification_superseded(&rec.key, &reason)?;
                summary.dropped += 1;
                continue;
            }
        };
        let email = OutgoingEmail {
            key: rec.key.clone(),
            message_id: rec.message_id.clone(),
            date: now,
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        };
        match sender.send(&email).await {
            Ok(()) => {
                store.mark_notification_sent(&rec.key, now)?;
                tracing::info!(key = %rec.key, message_id = %rec.message_id, "notification sent");
                summary.sent += 1;
            }
            Err(e) => {
                store.mark_notification_failed(&rec.key, &e.message, now)?;
                tracing::warn!(key = %rec.key, attempts = rec.attempts + 1, error = %e.message,
                    "notification not sent; will retry");
                summary.failed += 1;
                summary.last_error = Some(e.message.clone());
                // A temporary failure (connection refused, 4xx, timeout)
                // most likely hits the next message too: wait for the
                // next pass instead of running into N timeouts.
                if !e.permanent {
                    server_down = true;
                }
            }
        }
    }
    Ok(summary)
}

/// What `digest --send` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSent {
    pub key: String,
    pub message_id: String,
    /// Today's digest had already been sent: this one went out as an extra
    /// copy with its own Message-ID (so clients do not merge it away) and
    /// the ledger is unchanged.
    pub extra_copy: bool,
}

/// `digest --send`: renders and sends the digest now, and records it as
/// today's digest (so the scheduled one does not follow). Fails when there
/// is no `[smtp]` or the server refuses it (then it stays pending and the
/// daemon retries it).
pub async fn send_digest_now<S: Sender>(
    store: &mut Store,
    report: &StatusReport,
    cfg: &Config,
    now: DateTime<Utc>,
    sender: &S,
) -> Result<DigestSent> {
    if cfg.smtp.is_none() {
        bail!("no [smtp] section in the config: cannot send the digest (try digest --print)");
    }
    let today = due::local_today(now, cfg.timezone);
    let key = due::digest_key(today);
    let rendered = render_digest(report, cfg, now);
    let existing = store.notification(&key)?;
    let already_sent = existing.as_ref().is_some_and(|r| r.state == "sent");
    let message_id = if already_sent {
        let stamp = now.format("%H%M%S");
        message_id_for(&format!("{key}.manual-{stamp}"), cfg)
    } else {
        let mid = message_id_for(&key, cfg);
        let n = Notification {
            key: key.clone(),
            kind: NotificationKind::Digest { date: today },
            supersedes: Vec::new(),
        };
        store.record_intent(&n, &mid, &[], now)?;
        // a row that existed keeps its Message-ID
        store.notification(&key)?.map_or(mid, |r| r.message_id)
    };
    let email = OutgoingEmail {
        key: key.clone(),
        message_id: message_id.clone(),
        date: now,
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
    };
    match sender.send(&email).await {
        Ok(()) => {
            if !already_sent {
                store.mark_notification_sent(&key, now)?;
            }
            Ok(DigestSent {
                key,
                message_id,
                extra_copy: already_sent,
            })
        }
        Err(e) => {
            if !already_sent {
                store.mark_notification_failed(&key, &e.message, now)?;
            }
            bail!("digest not sent: {}", e.message)
        }
    }
}

#[cfg(test)]
mod tests;
