//! One notification pass, per channel: (1) work out what is newly due from
//! the status model and the channel's ledger keys (`decide`), (2) record
//! each as `pending` in a committed transaction, (3) deliver every pending
//! one whose retry time has come, (4) mark it `sent`. A failed delivery
//! stays pending (attempts, last error) and is retried with backoff in
//! later passes: never lost. A crash between (3) and (4) repeats that one
//! notification on the next pass, under the same deterministic id, so mail
//! clients merge it: one possible duplicate is preferred over a possibly
//! skipped warning.
//!
//! Without `[smtp]` nothing is recorded or sent by email, so what is due
//! stays due until SMTP is configured.
//!
//! Every channel (email too) runs its own pass ([`channel_notification_pass`]):
//! the daemon gives each its own loop and database connection, so a slow
//! or hanging channel delays no other.
//!
//! Push channels (`[[notify]]`) run the same pass on their own ledger rows
//! (channel = the table's `name`) with their own events
//! (`decide::notifications::due_events`); they send one message per event
//! (no folding of warnings) under the event's key as its id, so a repeat
//! after a crash carries the same `id`.

use anyhow::{bail, Result};
use chrono::{DateTime, Duration, Utc};

use crate::config::Config;
use crate::decide::notifications::{self, Content};
use crate::decide::Rules;
use crate::facts::NotificationRecord;
use crate::model::{NotificationKey, NotificationState};
use crate::notify::{Delivery, EmailChannel, Notifier, Sender, SmtpSender};
use crate::report::{OrderView, StatusReport};
use crate::store::Store;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendSummary {
    /// Newly due notifications recorded in this pass.
    pub newly_due: usize,
    /// Accepted by the channel.
    pub sent: usize,
    /// Attempted and failed (still pending).
    pub failed: usize,
    /// Pending and waiting for their retry time (or for the channel after
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
    let d = crate::backoff::exponential(
        attempts.saturating_sub(1),
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(3600),
    );
    Duration::from_std(d).unwrap_or(Duration::hours(1))
}

/// The email channel of `cfg` over `sender`.
pub fn email_channel<S: Sender + Send + Sync>(sender: S, cfg: &Config) -> EmailChannel<S> {
    EmailChannel {
        sender,
        from: cfg.smtp.as_ref().map(|s| s.from.clone()),
    }
}

/// The Message-ID of a ledger key under this config.
pub fn message_id_for(key: &NotificationKey, cfg: &Config) -> String {
    crate::notify::email::message_id(&key.to_string(), cfg.smtp.as_ref().map(|s| s.from.as_str()))
}

/// One email pass (see the module docs). Errors are store errors; send
/// failures are counted in the summary and retried later.
pub async fn send_due<S: Sender + Send + Sync>(
    store: &mut Store,
    report: &StatusReport,
    cfg: &Config,
    now: DateTime<Utc>,
    sender: &S,
) -> Result<SendSummary> {
    let rules = cfg.rules();
    if cfg.smtp.is_none() {
        let recorded = store.notification_keys(crate::notify::email::EMAIL)?;
        let due = notifications::due_notifications(report, &recorded, now, &rules);
        return Ok(SendSummary {
            newly_due: due.len(),
            not_configured: true,
            ..SendSummary::default()
        });
    }
    channel_pass(store, report, &rules, now, &email_channel(sender, cfg)).await
}

/// One pass for one channel.
pub async fn channel_pass(
    store: &mut Store,
    report: &StatusReport,
    rules: &Rules,
    now: DateTime<Utc>,
    channel: &dyn Notifier,
) -> Result<SendSummary> {
    let name = channel.channel();
    let mut summary = SendSummary::default();
    let recorded = store.notification_keys(name)?;
    let due = notifications::due_events(report, &recorded, now, rules, channel.events());
    summary.newly_due = due.len();
    for n in &due {
        let siblings: Vec<(NotificationKey, String)> = n
            .supersedes
            .iter()
            .map(|k| (k.clone(), channel.id_for(k)))
            .collect();
        store.record_intent(name, &n.key, &channel.id_for(&n.key), &siblings, now)?;
        tracing::debug!(channel = name, key = %n.key, "notification due");
    }

    // Pending rows whose retry time has come, warnings first (they are
    // folded into one message), then the digest.
    let mut ready: Vec<NotificationRecord> = Vec::new();
    for rec in store.pending_notifications(name)? {
        let waiting = rec.attempts > 0
            && rec
                .last_attempt_at
                .is_some_and(|last| now < last + retry_delay(rec.attempts));
        if waiting {
            summary.waiting += 1;
        } else {
            ready.push(rec);
        }
    }
    let mut warnings: Vec<(NotificationRecord, &OrderView, u32)> = Vec::new();
    let mut singles: Vec<(NotificationRecord, Content<'_>)> = Vec::new();
    for rec in ready {
        match notifications::pending_content(&rec.key, report, now, rules) {
            Err(reason) => {
                tracing::info!(channel = name, key = %rec.key, reason, "notification dropped");
                store.mark_notification_superseded(name, &rec.key, &reason)?;
                summary.dropped += 1;
            }
            Ok(Content::Warning {
                order,
                threshold_days,
            }) if channel.folds_warnings() => warnings.push((rec, order, threshold_days)),
            Ok(content) => singles.push((rec, content)),
        }
    }
    // The digest last: it goes out after the events it also mentions.
    singles.sort_by_key(|(rec, _)| matches!(rec.key, NotificationKey::Digest(_)));

    let mut outbox: Vec<(Vec<NotificationRecord>, String, Content<'_>)> = Vec::new();
    // Warnings already sent together once (a crash, or a failure) go again
    // together under their id; the others that fell due now form one new
    // message (SPEC §5), its id recorded before it is sent.
    let (grouped, fresh): (Vec<_>, Vec<_>) =
        warnings.into_iter().partition(|w| in_group(channel, &w.0));
    let mut groups: Vec<Vec<(NotificationRecord, &OrderView, u32)>> = Vec::new();
    for w in grouped {
        match groups
            .iter_mut()
            .find(|g| g[0].0.message_id == w.0.message_id)
        {
            Some(g) => g.push(w),
            None => groups.push(vec![w]),
        }
    }
    if fresh.len() > 1 {
        let keys: Vec<NotificationKey> = fresh.iter().map(|w| w.0.key.clone()).collect();
        let id = channel.id_for_group(&keys);
        store.assign_message_id(name, &keys, &id)?;
        groups.push(
            fresh
                .into_iter()
                .map(|(mut rec, o, t)| {
                    rec.message_id = id.clone();
                    (rec, o, t)
                })
                .collect(),
        );
    } else {
        groups.extend(fresh.into_iter().map(|w| vec![w]));
    }
    for mut g in groups {
        let id = g[0].0.message_id.clone();
        let content = if g.len() == 1 && !in_group(channel, &g[0].0) {
            let (_, order, threshold_days) = &g[0];
            Content::Warning {
                order,
                threshold_days: *threshold_days,
            }
        } else {
            Content::Warnings(g.iter().map(|w| (w.1, w.2)).collect())
        };
        let recs = g.drain(..).map(|w| w.0).collect();
        outbox.push((recs, id, content));
    }
    for (rec, content) in singles {
        let id = rec.message_id.clone();
        outbox.push((vec![rec], id, content));
    }

    let mut channel_down = false;
    for (recs, id, content) in outbox {
        if channel_down {
            summary.waiting += recs.len();
            continue;
        }
        let keys: Vec<NotificationKey> = recs.iter().map(|r| r.key.clone()).collect();
        let delivery = Delivery {
            keys: &keys,
            id: &id,
            content,
            report,
            rules,
            now,
        };
        match channel.deliver(delivery).await {
            Ok(()) => {
                for rec in &recs {
                    store.mark_notification_sent(name, &rec.key, now)?;
                    summary.sent += 1;
                }
                tracing::info!(channel = name, keys = %keys_text(&keys), message_id = %id, "notification sent");
            }
            Err(e) => {
                for rec in &recs {
                    store.mark_notification_failed(name, &rec.key, &e.message, now)?;
                    summary.failed += 1;
                }
                let attempts = recs.iter().map(|r| r.attempts).max().unwrap_or(0) + 1;
                tracing::warn!(channel = name, keys = %keys_text(&keys), attempts, error = %e.message,
                    "notification not sent; will retry");
                summary.last_error = Some(e.message.clone());
                // A temporary failure (connection refused, 4xx, timeout)
                // most likely hits the next message too: wait for the
                // next pass instead of running into N timeouts.
                if !e.permanent {
                    channel_down = true;
                }
            }
        }
    }
    Ok(summary)
}

/// Whether a pending warning was already sent as part of a group: its
/// recorded id is not the one the channel gives it alone (it was given the
/// group's, [`Notifier::id_for_group`], before the group was first sent).
fn in_group(channel: &dyn Notifier, rec: &NotificationRecord) -> bool {
    rec.message_id != channel.id_for(&rec.key)
}

fn keys_text(keys: &[NotificationKey]) -> String {
    keys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
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
pub async fn send_digest_now<S: Sender + Send + Sync>(
    store: &mut Store,
    report: &StatusReport,
    cfg: &Config,
    now: DateTime<Utc>,
    sender: &S,
) -> Result<DigestSent> {
    if cfg.smtp.is_none() {
        bail!("no [smtp] section in the config: cannot send the digest (try digest --print)");
    }
    let rules = cfg.rules();
    let channel = email_channel(sender, cfg);
    let name = channel.channel();
    let key = notifications::digest_key(notifications::local_today(now, rules.timezone));
    let existing = store.notification(name, &key)?;
    let already_sent = existing
        .as_ref()
        .is_some_and(|r| r.state == NotificationState::Sent);
    let message_id = if already_sent {
        let stamp = now.format("%H%M%S");
        crate::notify::email::message_id(&format!("{key}.manual-{stamp}"), channel.from.as_deref())
    } else {
        store.record_intent(name, &key, &channel.id_for(&key), &[], now)?;
        // a row that existed keeps its Message-ID
        match store.notification(name, &key)? {
            Some(r) => r.message_id,
            None => channel.id_for(&key),
        }
    };
    let keys = [key.clone()];
    let delivery = Delivery {
        keys: &keys,
        id: &message_id,
        content: Content::Digest,
        report,
        rules: &rules,
        now,
    };
    match channel.deliver(delivery).await {
        Ok(()) => {
            if !already_sent {
                store.mark_notification_sent(name, &key, now)?;
            }
            Ok(DigestSent {
                key: key.to_string(),
                message_id,
                extra_copy: already_sent,
            })
        }
        Err(e) => {
            if !already_sent {
                store.mark_notification_failed(name, &key, &e.message, now)?;
            }
            bail!("digest not sent: {}", e.message)
        }
    }
}

/// Every configured channel of `cfg`: the email over SMTP when `[smtp]`
/// is there, then the `[[notify]]` channels in `push`. The daemon runs one
/// loop per channel; `sync` runs them side by side.
pub fn channels(cfg: &Config, push: Vec<Box<dyn Notifier>>) -> Result<Vec<Box<dyn Notifier>>> {
    let mut out: Vec<Box<dyn Notifier>> = Vec::new();
    if let Some(smtp) = &cfg.smtp {
        out.push(Box::new(email_channel(SmtpSender::new(smtp)?, cfg)));
    }
    out.extend(push);
    Ok(out)
}

/// One notification pass of one channel, as `run` and `sync` do it: its
/// retained state (MQTT), then what is due for it, on its own ledger rows.
/// A channel that is down (refused, 5xx, timing out) is retried later; it
/// has its own database connection and is run beside the others, so it
/// never keeps another channel waiting. Only the holder of the run lock
/// runs passes (SPEC §1: the service, or a `sync` while no service runs).
pub async fn channel_notification_pass(
    cfg: &Config,
    store: &mut Store,
    channel: &dyn Notifier,
    now: DateTime<Utc>,
) -> Result<()> {
    let rules = cfg.rules();
    let report = super::status_report(store, now, &rules)?;
    // Retained state first (MQTT); a channel that cannot take it is down:
    // its events wait for the next pass.
    let mut ledger = StoreLedger {
        store: &mut *store,
        channel: channel.channel().to_string(),
    };
    if let Err(e) = channel.sync_state(&report, &rules, &mut ledger).await {
        tracing::warn!(channel = channel.channel(), error = %e.message, "channel state not published; will retry");
        if !e.permanent {
            bail!("{}: {}", channel.channel(), e.message);
        }
    }
    let s = channel_pass(store, &report, &rules, now, channel).await?;
    if let Some(failure) = pass_note(channel.channel(), &s) {
        bail!("{failure}");
    }
    Ok(())
}

/// Every channel's pass side by side, each on its own connection to the
/// database (`sync`); the error names every channel that failed.
pub async fn notification_pass(
    cfg: &Config,
    channels: &[Box<dyn Notifier>],
    now: DateTime<Utc>,
) -> Result<()> {
    let passes = channels.iter().map(|channel| async move {
        let mut store = Store::open(&cfg.database)?;
        channel_notification_pass(cfg, &mut store, channel.as_ref(), now).await
    });
    let failures: Vec<String> = futures::future::join_all(passes)
        .await
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

/// Logs what one channel's pass did; its failure line, if it had one.
fn pass_note(name: &str, s: &SendSummary) -> Option<String> {
    if s.sent > 0 || s.failed > 0 || s.dropped > 0 {
        tracing::info!(
            channel = name,
            sent = s.sent,
            failed = s.failed,
            waiting = s.waiting,
            dropped = s.dropped,
            "notifications"
        );
    }
    (s.failed > 0).then(|| {
        format!(
            "{name}: could not send {} notification(s), will retry: {}",
            s.failed,
            s.last_error.clone().unwrap_or_default()
        )
    })
}

/// A channel's [`crate::notify::RetainedLedger`] in the store.
struct StoreLedger<'s> {
    store: &'s mut Store,
    channel: String,
}

impl crate::notify::RetainedLedger for StoreLedger<'_> {
    fn recorded(&mut self) -> Result<std::collections::BTreeSet<String>> {
        self.store.retained_topics(&self.channel)
    }

    fn record(&mut self, topic: &str) -> Result<()> {
        self.store.record_retained_topic(&self.channel, topic)
    }

    fn forget(&mut self, topic: &str) -> Result<()> {
        self.store.forget_retained_topic(&self.channel, topic)
    }

    fn legacy_pending(&mut self) -> Result<bool> {
        self.store.legacy_configs_pending(&self.channel)
    }

    fn legacy_done(&mut self) -> Result<()> {
        self.store.legacy_configs_done(&self.channel)
    }
}
