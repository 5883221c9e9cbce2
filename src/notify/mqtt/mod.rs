//! The MQTT channel of `[[notify]]` (`type = "mqtt"`, SPEC §8), made for
//! Home Assistant: one long-lived connection (rumqttc) kept by a task of
//! its own, which
//! - connects with a last will `offline` (retained) on
//!   `<topic_prefix>/status` and publishes `online` there on every connect;
//! - reconnects with the crate-wide backoff (1 s doubling to 5 min, jittered);
//! - subscribes to `homeassistant/status` (Home Assistant announces
//!   `online` after it starts) and to its own command topics
//!   `<topic_prefix>/order/+/+/set` only, never to other clients' topics;
//! - asks for the retained state to be published again on every connect
//!   and every `online` of Home Assistant (`Hooks::on_change`, the daemon's
//!   kick), and hands every well-formed button press to `Hooks::on_command`
//!   (the daemon runs `done` or `untrack` as the command line would);
//!   anything else on a command topic is logged and ignored.
//!
//! **Retained state** ([`Notifier::sync_state`], every notification pass):
//! the entities of [`discovery`] (per active order a sensor and the
//! buttons "Received" and "Stop tracking"; the needs-action summary; the
//! event entity), each a config under the node id `aliwatch_<instance>`
//! and its retained states. Every payload is kept under [`MAX_PAYLOAD`]
//! (an order's parcels are summarised), so no state is ever a reason for
//! the broker to drop the connection.
//!
//! Every retained topic is recorded in the database before it is
//! published ([`RetainedLedger`]); one no longer wanted (its order stopped
//! being active) gets an empty retained message, which removes the entity.
//! Only recorded topics are ever cleared, so a fresh or empty database
//! removes nothing and another install's entities stay. The configs that
//! versions before instance ids published
//! (`<discovery_prefix>/sensor/aliwatch_<order_id>/config`) are cleared
//! once, for the orders this database knows. A topic is published again
//! only when its payload changed, or after a (re)connect.
//!
//! **Events** go to `<topic_prefix>/event`, not retained, QoS 1, as the
//! webhook's JSON object (`push::webhook_body`, its order shortened like
//! the attributes when needed); Home Assistant's event entity reads them
//! there. The ledger counts one as
//! sent when the broker's PUBACK came back (at most [`ACK_TIMEOUT`]).
//!
//! TLS (`mqtts://`) is verified as IMAP's is: the system roots plus
//! `ca_file`, never off. The password is read once, at start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::future::BoxFuture;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS, Transport};
use tokio::sync::{mpsc, Notify};

use super::{Delivery, Hooks, Notifier, RetainedLedger, SendError};
use crate::config::{MqttSettings, NotifyConfig};
use crate::decide::Rules;
use crate::model::EventKind;
use crate::render::push::render_push;
use crate::report::StatusReport;

pub mod discovery;

use discovery::{
    command_filter, discovery, event_topic, legacy_config_topic, parse_command, shorten_parcels,
    status_topic, MAX_PAYLOAD, NEED_ACTION,
};
pub use discovery::{ButtonAction, Command};

/// How long a publish waits for the broker's PUBACK.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a pass waits for the connection before giving up on it.
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// Reconnect backoff: first wait and cap.
pub const RECONNECT_FIRST: Duration = Duration::from_secs(1);
pub const RECONNECT_CAP: Duration = Duration::from_secs(300);
/// The largest MQTT packet sent or accepted, both ways (what aliwatch
/// publishes is kept under [`MAX_PAYLOAD`]; it subscribes only to its own
/// command topics and Home Assistant's birth topic).
pub const MAX_PACKET: usize = 256 * 1024;
/// Home Assistant's birth topic.
pub const HA_STATUS: &str = "homeassistant/status";

/// What the connection task reports to publishers.
#[derive(Debug)]
enum LoopEvent {
    Sent(u16),
    Acked(u16),
    Down(String),
}

struct Shared {
    connected: AtomicBool,
    /// This process is closing the connection itself (the end of `sync`,
    /// a check): the connection's end is no news.
    closing: AtomicBool,
    connected_now: Notify,
    /// Publish every retained topic again (after a connect, or Home
    /// Assistant came online).
    republish: AtomicBool,
    /// SUBACKs since the last connect (one subscription).
    subacks: std::sync::atomic::AtomicU32,
    last_error: Mutex<Option<String>>,
}

/// One `[[notify]]` MQTT channel (see the module docs).
pub struct MqttChannel {
    name: String,
    events: Vec<EventKind>,
    settings: MqttSettings,
    /// This database's instance id (discovery node id).
    instance: String,
    client: AsyncClient,
    shared: Arc<Shared>,
    /// Serialises acknowledged publishes; the receiver of the task's reports.
    acks: tokio::sync::Mutex<mpsc::UnboundedReceiver<LoopEvent>>,
    /// What was last published on each retained topic (this connection).
    published: Mutex<BTreeMap<String, Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MqttChannel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MqttChannel {
    /// Starts the connection task (needs a tokio runtime). `on_change` is
    /// called when the retained state should be published again soon.
    /// `instance` is the database's instance id.
    pub fn start(cfg: &NotifyConfig, hooks: Hooks, instance: &str) -> Result<MqttChannel> {
        MqttChannel::start_with(cfg, hooks, false, instance)
    }

    /// A connection for `check-config --connect` only: no last will, no
    /// `online`, no subscriptions, so a check leaves nothing on the broker.
    pub fn probe(cfg: &NotifyConfig) -> Result<MqttChannel> {
        MqttChannel::start_with(cfg, Hooks::none(), true, "probe")
    }

    fn start_with(
        cfg: &NotifyConfig,
        hooks: Hooks,
        probe: bool,
        instance: &str,
    ) -> Result<MqttChannel> {
        let m = cfg
            .mqtt
            .clone()
            .context("an mqtt channel has mqtt settings")?;
        let client_id = format!("aliwatch-{}-{}", cfg.name, std::process::id());
        let mut opts = MqttOptions::new(client_id, m.host.clone(), m.port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_clean_session(true);
        opts.set_max_packet_size(MAX_PACKET, MAX_PACKET);
        if !probe {
            opts.set_last_will(LastWill::new(
                status_topic(&m),
                "offline",
                QoS::AtLeastOnce,
                true,
            ));
        }
        if let Some(user) = &m.username {
            let password = match &m.password {
                Some(s) => s.resolve().map_err(|e| {
                    crate::config::ConfigError(format!(
                        "{}: [[notify]] {:?}: {e}",
                        cfg.location, cfg.name
                    ))
                })?,
                None => String::new(),
            };
            opts.set_credentials(user.clone(), password);
        }
        if m.tls {
            let tls = crate::imap::connect::client_tls_config(cfg.ca_file.as_deref())
                .with_context(|| format!("[[notify]] {:?}", cfg.name))?;
            opts.set_transport(Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(tls),
            ));
        }
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        eventloop.network_options.set_connection_timeout(10);
        let shared = Arc::new(Shared {
            connected: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            connected_now: Notify::new(),
            republish: AtomicBool::new(true),
            subacks: std::sync::atomic::AtomicU32::new(0),
            last_error: Mutex::new(None),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let task = {
            let (client, shared, m, name) =
                (client.clone(), shared.clone(), m.clone(), cfg.name.clone());
            tokio::spawn(async move {
                let mut failures: u32 = 0;
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            failures = 0;
                            tracing::info!(channel = %name, broker = %format!("{}:{}", m.host, m.port), "mqtt connected");
                            if !probe {
                                let online = status_topic(&m);
                                let _ = client.try_publish(online, QoS::AtMostOnce, true, "online");
                                let _ = client.try_subscribe(HA_STATUS, QoS::AtMostOnce);
                                let _ = client.try_subscribe(command_filter(&m), QoS::AtMostOnce);
                            }
                            shared.republish.store(true, Ordering::SeqCst);
                            shared.subacks.store(0, Ordering::SeqCst);
                            shared.connected.store(true, Ordering::SeqCst);
                            shared.connected_now.notify_waiters();
                            (hooks.on_change)();
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            if p.topic == HA_STATUS {
                                if p.payload.as_ref() == b"online" {
                                    tracing::info!(channel = %name, "Home Assistant is online: publishing the state again");
                                    shared.republish.store(true, Ordering::SeqCst);
                                    (hooks.on_change)();
                                }
                            } else if p.retain {
                                // A retained command would act again on
                                // every connect: never carried out.
                                tracing::warn!(channel = %name, topic = %p.topic, "ignored a retained message on a command topic");
                            } else {
                                match parse_command(&m, &p.topic, &p.payload) {
                                    Ok(c) => (hooks.on_command)(c),
                                    Err(why) => {
                                        tracing::warn!(channel = %name, topic = %p.topic, "ignored a message on a command topic: {why}")
                                    }
                                }
                            }
                        }
                        Ok(Event::Outgoing(Outgoing::Publish(pkid))) if pkid != 0 => {
                            let _ = tx.send(LoopEvent::Sent(pkid));
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            shared.subacks.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Event::Incoming(Packet::PubAck(a))) => {
                            let _ = tx.send(LoopEvent::Acked(a.pkid));
                        }
                        Ok(_) => {}
                        Err(_) if shared.closing.load(Ordering::SeqCst) => {
                            tracing::debug!(channel = %name, "mqtt connection closed");
                            shared.connected.store(false, Ordering::SeqCst);
                            let _ = tx.send(LoopEvent::Down("closed".into()));
                            return;
                        }
                        Err(e) => {
                            let why = e.to_string();
                            if shared.connected.swap(false, Ordering::SeqCst) || failures == 0 {
                                tracing::warn!(channel = %name, error = %why, "mqtt connection lost; reconnecting with backoff");
                            }
                            *lock(&shared.last_error) = Some(why.clone());
                            let _ = tx.send(LoopEvent::Down(why));
                            let wait = crate::backoff::jittered(
                                failures,
                                RECONNECT_FIRST,
                                RECONNECT_CAP,
                                1.0,
                                1.5,
                            );
                            failures = failures.saturating_add(1);
                            tokio::time::sleep(wait).await;
                        }
                    }
                }
            })
        };
        Ok(MqttChannel {
            name: cfg.name.clone(),
            events: cfg.events.clone(),
            settings: m,
            instance: instance.to_owned(),
            client,
            shared,
            acks: tokio::sync::Mutex::new(rx),
            published: Mutex::new(BTreeMap::new()),
            task,
        })
    }

    /// Waits until connected, at most `limit`.
    pub async fn wait_connected(&self, limit: Duration) -> Result<(), SendError> {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.shared.connected.load(Ordering::SeqCst) {
            let notified = self.shared.connected_now.notified();
            if self.shared.connected.load(Ordering::SeqCst) {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let why = lock(&self.shared.last_error)
                    .clone()
                    .unwrap_or_else(|| "no answer".into());
                return Err(SendError {
                    permanent: false,
                    message: format!("{}: not connected: {why}", self.broker()),
                });
            }
        }
        Ok(())
    }

    fn broker(&self) -> String {
        let scheme = if self.settings.tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://{}:{}", self.settings.host, self.settings.port)
    }

    /// `check-config --connect`: CONNECT (and the availability `online`),
    /// then a clean DISCONNECT; no event, no state.
    pub async fn check(&self) -> Result<String> {
        self.wait_connected(CONNECT_WAIT)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        self.shared.closing.store(true, Ordering::SeqCst);
        let _ = self.client.disconnect().await;
        Ok(format!("{} connected", self.broker()))
    }

    /// A clean DISCONNECT (the end of `sync`): the last will is not sent,
    /// the retained state stays.
    pub async fn close(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        if self.shared.connected.load(Ordering::SeqCst) {
            let _ = self.client.disconnect().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Publishes with QoS 1 and waits for the broker's PUBACK.
    async fn publish_acked(
        &self,
        topic: &str,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<(), SendError> {
        self.wait_connected(CONNECT_WAIT).await?;
        let down = |why: String| SendError {
            permanent: false,
            message: format!("{}: {why}", self.broker()),
        };
        let mut rx = self.acks.lock().await;
        while rx.try_recv().is_ok() {}
        self.client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
            .map_err(|e| down(format!("cannot queue the publish: {e}")))?;
        let wait = async {
            let mut pkid = None;
            while let Some(ev) = rx.recv().await {
                match (ev, pkid) {
                    (LoopEvent::Sent(p), None) => pkid = Some(p),
                    (LoopEvent::Acked(p), Some(mine)) if p == mine => return Ok(()),
                    (LoopEvent::Down(why), _) => {
                        return Err(down(format!("connection lost: {why}")))
                    }
                    _ => {}
                }
            }
            Err(down("the connection task ended".into()))
        };
        match tokio::time::timeout(ACK_TIMEOUT, wait).await {
            Ok(r) => r,
            Err(_) => Err(down(format!("no PUBACK within {}s", ACK_TIMEOUT.as_secs()))),
        }
    }

    /// Publishes a retained topic if its payload changed since the last
    /// publish on this connection (or everything is to be republished).
    async fn retain(&self, topic: String, payload: Vec<u8>, all: bool) -> Result<(), SendError> {
        if !all && lock(&self.published).get(&topic) == Some(&payload) {
            return Ok(());
        }
        self.publish_acked(&topic, true, payload.clone()).await?;
        lock(&self.published).insert(topic, payload);
        Ok(())
    }

    async fn sync_retained(
        &self,
        report: &StatusReport,
        ledger: &mut dyn RetainedLedger,
    ) -> Result<(), SendError> {
        self.wait_connected(CONNECT_WAIT).await?;
        let all = self.shared.republish.swap(false, Ordering::SeqCst);
        if all {
            // After a connect: the birth-topic subscription first, so an
            // `online` of Home Assistant during the publish is not missed.
            let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
            while self.shared.subacks.load(Ordering::SeqCst) < 2
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let result = self.sync_retained_inner(report, all, ledger).await;
        if result.is_err() && all {
            self.shared.republish.store(true, Ordering::SeqCst);
        }
        result
    }

    async fn sync_retained_inner(
        &self,
        report: &StatusReport,
        all: bool,
        ledger: &mut dyn RetainedLedger,
    ) -> Result<(), SendError> {
        let m = &self.settings;
        let db = |e: anyhow::Error| SendError {
            permanent: false,
            message: format!("database: {e:#}"),
        };
        // The configs of versions before instance ids, once: before the
        // new ones, so Home Assistant frees the entity ids for them.
        if ledger.legacy_pending().map_err(db)? {
            let mut old: Vec<String> = report
                .orders
                .iter()
                .map(|o| legacy_config_topic(m, &format!("aliwatch_{}", o.order_id)))
                .collect();
            old.push(legacy_config_topic(m, NEED_ACTION));
            for topic in &old {
                self.publish_acked(topic, true, Vec::new()).await?;
            }
            ledger.legacy_done().map_err(db)?;
            tracing::info!(channel = %self.name, cleared = old.len(), "cleared the Home Assistant configs of the topics before instance ids");
        }
        let recorded = ledger.recorded().map_err(db)?;
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for e in discovery(report, m, &self.instance) {
            // The config before its states: Home Assistant makes the
            // entity, then reads the retained state.
            for r in std::iter::once(e.config).chain(e.states) {
                if !recorded.contains(&r.topic) {
                    ledger.record(&r.topic).map_err(db)?;
                }
                wanted.insert(r.topic.clone());
                self.retain(r.topic, r.payload, all).await?;
            }
        }
        // Orders no longer active: the retained messages this instance
        // published go away (an empty config removes the entity); nobody
        // else's.
        let gone: Vec<&String> = recorded.difference(&wanted).collect();
        for topic in &gone {
            self.publish_acked(topic, true, Vec::new()).await?;
            lock(&self.published).remove(*topic);
            ledger.forget(topic).map_err(db)?;
        }
        if !gone.is_empty() {
            tracing::info!(channel = %self.name, cleared = gone.len(), "orders no longer active: their Home Assistant entities removed");
        }
        Ok(())
    }
}

/// An event's JSON at most [`MAX_PAYLOAD`] bytes: the order inside it
/// loses parcels first (see [`discovery::bounded_order`]).
fn bounded_event(body: Vec<u8>) -> Vec<u8> {
    if body.len() <= MAX_PAYLOAD {
        return body;
    }
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return body;
    };
    let room = MAX_PAYLOAD.saturating_sub(
        body.len().saturating_sub(
            v.get("order")
                .map_or(0, |o| serde_json::to_vec(o).map_or(0, |b| b.len())),
        ),
    );
    if let Some(order) = v.get_mut("order") {
        shorten_parcels(order, room);
    }
    serde_json::to_vec(&v).unwrap_or(body)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Notifier for MqttChannel {
    fn channel(&self) -> &str {
        &self.name
    }

    fn events(&self) -> &[EventKind] {
        &self.events
    }

    fn sync_state<'a>(
        &'a self,
        report: &'a StatusReport,
        _rules: &'a Rules,
        ledger: &'a mut dyn RetainedLedger,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(self.sync_retained(report, ledger))
    }

    fn deliver<'a>(&'a self, d: Delivery<'a>) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let m = render_push(&d.content, d.report, d.rules, d.now);
            let body = bounded_event(super::push::webhook_body(&m, d.id, d.now));
            self.publish_acked(&event_topic(&self.settings), false, body)
                .await
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(MqttChannel::close(self))
    }
}
