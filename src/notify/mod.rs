//! Notification channels: the [`Notifier`] trait every channel implements,
//! the email channel ([`email::EmailChannel`] over SMTP, `smtp.rs`) and the
//! `[[notify]]` push channels: over HTTP ([`push::PushChannel`]: ntfy and
//! webhooks) and MQTT with Home Assistant discovery
//! ([`mqtt::MqttChannel`]).
//!
//! A channel gets one due notification at a time — its ledger key, the id
//! it must send it under, and what it is about — and says whether it was
//! accepted. What is due, the sent-once ledger and the retry schedule are
//! not a channel's business: `decide::notifications` decides, the store
//! records, `pipeline::notify` runs the pass. A channel never touches the
//! database, so one channel's outage cannot block another's ledger.
//!
//! Adding a channel kind (e.g. Gotify): a module implementing [`Notifier`]
//! (its name is its ledger channel), its arm in [`build`] and [`check`],
//! its `NotifyKind` and config validation, and the docs.

pub mod email;
pub mod mqtt;
pub mod push;
pub mod smtp;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::decide::notifications::Content;
use crate::decide::Rules;
use crate::model::{EventKind, NotificationKey};
use crate::report::StatusReport;

pub use email::EmailChannel;
pub use mqtt::MqttChannel;
pub use push::PushChannel;
pub use smtp::{OutgoingEmail, Sender, SmtpSender};

/// A `[[notify]]` channel of `cfg`'s kind: the one place that maps a kind
/// to its module (adding a kind adds an arm here, its module and its
/// config validation). An MQTT channel starts its connection task, so this
/// needs the runtime.
pub fn build(
    cfg: &crate::config::NotifyConfig,
    hooks: Hooks,
    instance: &str,
) -> anyhow::Result<Box<dyn Notifier>> {
    use crate::config::NotifyKind;
    Ok(match cfg.kind {
        NotifyKind::Ntfy | NotifyKind::Webhook => Box::new(PushChannel::new(cfg)?),
        NotifyKind::Mqtt => Box::new(MqttChannel::start(cfg, hooks, instance)?),
    })
}

/// `check-config --connect` for a `[[notify]]` channel: reaches it
/// without publishing anything (ntfy and webhooks: HEAD/OPTIONS; MQTT:
/// CONNECT without will, state or subscriptions).
pub async fn check(cfg: &crate::config::NotifyConfig) -> anyhow::Result<String> {
    use crate::config::NotifyKind;
    match cfg.kind {
        NotifyKind::Ntfy | NotifyKind::Webhook => PushChannel::new(cfg)?.check().await,
        NotifyKind::Mqtt => MqttChannel::probe(cfg)?.check().await,
    }
}

/// What a channel may ask of the process that runs it.
#[derive(Clone)]
pub struct Hooks {
    /// Publish the channel's state again soon (it reconnected, Home
    /// Assistant restarted): the daemon kicks its notification pass.
    pub on_change: std::sync::Arc<dyn Fn() + Send + Sync>,
    /// A command from the channel's side (a Home Assistant button press);
    /// the daemon carries it out as the command line would.
    pub on_command: std::sync::Arc<dyn Fn(mqtt::Command) + Send + Sync>,
}

impl Hooks {
    /// Hooks that do nothing (a `sync` or a check: nobody listens).
    pub fn none() -> Hooks {
        Hooks {
            on_change: std::sync::Arc::new(|| {}),
            on_command: std::sync::Arc::new(|c| {
                tracing::info!(order = %c.order_id, action = c.action.as_str(), "a Home Assistant button was pressed while only a one-off command ran; press it again while the service runs");
            }),
        }
    }
}

/// Why a channel did not accept a notification.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Retrying the same message will not help soon (an SMTP 5xx).
    pub permanent: bool,
    pub message: String,
}

/// One notification handed to a channel (several keys when warnings that
/// fell due together go out as one).
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    pub keys: &'a [NotificationKey],
    /// The id recorded in the ledger (the email's Message-ID): the same on
    /// every retry, so a repeat after a crash is recognisable.
    pub id: &'a str,
    pub content: Content<'a>,
    /// The whole status model, for the digest.
    pub report: &'a StatusReport,
    pub rules: &'a Rules,
    pub now: DateTime<Utc>,
}

/// What a channel left on its server between runs (MQTT's retained
/// discovery configs), as the database records it: a channel removes only
/// what it published and recorded here, never what another install put on
/// the same broker (SPEC §8).
pub trait RetainedLedger: Send {
    /// The topics this channel published and has not cleared.
    fn recorded(&mut self) -> anyhow::Result<std::collections::BTreeSet<String>>;
    /// Records a topic before it is published.
    fn record(&mut self, topic: &str) -> anyhow::Result<()>;
    /// Forgets a topic once it was cleared on the server.
    fn forget(&mut self, topic: &str) -> anyhow::Result<()>;
    /// Whether configs of versions before instance ids still need clearing.
    fn legacy_pending(&mut self) -> anyhow::Result<bool>;
    /// They were cleared.
    fn legacy_done(&mut self) -> anyhow::Result<()>;
}

/// A notification channel.
pub trait Notifier: Send + Sync {
    /// The channel's name in the sent-once ledger (`email` for SMTP).
    fn channel(&self) -> &str;

    /// The deterministic id a notification is sent under on this channel:
    /// by default its ledger key (`warning:8123456789012345:7d`,
    /// `delivered:LP00527423524449`), so a receiver can drop a repeat after
    /// a crash.
    fn id_for(&self, key: &NotificationKey) -> String {
        key.to_string()
    }

    /// The deterministic id of several notifications sent as one: the same
    /// set of keys always gives the same id, so a resend after a crash is
    /// the same message.
    fn id_for_group(&self, keys: &[NotificationKey]) -> String {
        format!("warnings-{}", group_digest(keys))
    }

    /// The events it gets.
    fn events(&self) -> &[EventKind];

    /// Whether warnings that fall due together go out as one message
    /// (email, SPEC §5). Push channels send one event each.
    fn folds_warnings(&self) -> bool {
        false
    }

    /// Brings the channel's retained state up to date with the report
    /// (MQTT's Home Assistant entities), before its events of a pass. Not
    /// ledgered: it is state, published again until it holds.
    fn sync_state<'a>(
        &'a self,
        _report: &'a StatusReport,
        _rules: &'a Rules,
        _ledger: &'a mut dyn RetainedLedger,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async { Ok(()) })
    }

    /// Ends the channel's connection cleanly (the end of `sync`).
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Delivers one notification; `Ok` means the other side accepted it.
    fn deliver<'a>(&'a self, d: Delivery<'a>) -> BoxFuture<'a, Result<(), SendError>>;
}

/// A short digest of a set of keys, whatever their order: the stable part
/// of a folded notification's id.
pub fn group_digest(keys: &[NotificationKey]) -> String {
    use sha2::{Digest, Sha256};
    let mut names: Vec<String> = keys.iter().map(ToString::to_string).collect();
    names.sort();
    let digest = Sha256::digest(names.join(",").as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}
