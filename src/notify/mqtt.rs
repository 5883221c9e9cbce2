//! The MQTT channel of `[[notify]]` (`type = "mqtt"`, SPEC §8), made for
//! Home Assistant: one long-lived connection (rumqttc) kept by a task of
//! its own, which
//! - connects with a last will `offline` (retained) on
//!   `<topic_prefix>/status` and publishes `online` there on every connect;
//! - reconnects with the crate-wide backoff (1 s doubling to 5 min, jittered);
//! - subscribes to `homeassistant/status` only (Home Assistant announces
//!   `online` after it starts): never to other clients' topics;
//! - asks for the retained state to be published again on every connect
//!   and every `online` of Home Assistant (`on_change`, the daemon's kick).
//!
//! **Retained state** ([`Notifier::sync_state`], every notification pass):
//! per active order a discovery config
//! `<discovery_prefix>/sensor/aliwatch_<instance>/aliwatch_<order_id>/config`
//! (a sensor named by the item title, its state the parcel status in words
//! on `<topic_prefix>/order/<order_id>`, its attributes the order as in
//! `status --json` on `<topic_prefix>/order/<order_id>/attributes`), and a
//! summary sensor `aliwatch_need_action` (the needs-action count on
//! `<topic_prefix>/need_action`). The instance id (8 hex digits, stable
//! per database) is the discovery node id and part of every `unique_id`,
//! so two installs on one broker never share a config; `default_entity_id`
//! (`sensor.aliwatch_<order_id>`) names the entity, with `object_id` beside
//! it for Home Assistant before 2025.10.
//!
//! Every config topic is recorded in the database before it is published
//! ([`RetainedLedger`]). An order that stops being active gets empty
//! retained messages on its three topics, which removes its entity; only
//! recorded topics are ever cleared, so a fresh or empty database removes
//! nothing and another install's entities stay. The configs that versions
//! before instance ids published (`<discovery_prefix>/sensor/aliwatch_<order_id>/config`)
//! are cleared once, for the orders this database knows. A topic is
//! published again only when its payload changed, or after a (re)connect.
//!
//! **Events** go to `<topic_prefix>/event`, not retained, QoS 1, as the
//! webhook's JSON object (`push::webhook_body`); the ledger counts one as
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
use serde_json::json;
use tokio::sync::{mpsc, Notify};

use super::{Delivery, Notifier, RetainedLedger, SendError};
use crate::config::{MqttSettings, NotifyConfig};
use crate::decide::Rules;
use crate::model::{EventKind, OrderState};
use crate::render::email::order_name;
use crate::render::push::render_push;
use crate::report::{OrderView, StatusReport};

/// How long a publish waits for the broker's PUBACK.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a pass waits for the connection before giving up on it.
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// Reconnect backoff: first wait and cap.
pub const RECONNECT_FIRST: Duration = Duration::from_secs(1);
pub const RECONNECT_CAP: Duration = Duration::from_secs(300);
/// The largest MQTT packet sent or accepted (an order's attributes are a
/// few KB).
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
    pub fn start(
        cfg: &NotifyConfig,
        on_change: Arc<dyn Fn() + Send + Sync>,
        instance: &str,
    ) -> Result<MqttChannel> {
        MqttChannel::start_with(cfg, on_change, false, instance)
    }

    /// A connection for `check-config --connect` only: no last will, no
    /// `online`, no subscriptions, so a check leaves nothing on the broker.
    pub fn probe(cfg: &NotifyConfig) -> Result<MqttChannel> {
        MqttChannel::start_with(cfg, Arc::new(|| {}), true, "probe")
    }

    fn start_with(
        cfg: &NotifyConfig,
        on_change: Arc<dyn Fn() + Send + Sync>,
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
                            }
                            shared.republish.store(true, Ordering::SeqCst);
                            shared.subacks.store(0, Ordering::SeqCst);
                            shared.connected.store(true, Ordering::SeqCst);
                            shared.connected_now.notify_waiters();
                            on_change();
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            if p.topic == HA_STATUS && p.payload.as_ref() == b"online" {
                                tracing::info!(channel = %name, "Home Assistant is online: publishing the state again");
                                shared.republish.store(true, Ordering::SeqCst);
                                on_change();
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
            while self.shared.subacks.load(Ordering::SeqCst) < 1
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
        let wanted = discovery_messages(report, m, &self.instance);
        let active: BTreeSet<String> = wanted.iter().map(|w| w.config_topic.clone()).collect();
        for w in wanted {
            if !recorded.contains(&w.config_topic) {
                ledger.record(&w.config_topic).map_err(db)?;
            }
            self.retain(w.config_topic, w.config, all).await?;
            self.retain(w.state_topic, w.state, all).await?;
            if let Some((t, a)) = w.attributes {
                self.retain(t, a, all).await?;
            }
        }
        // Orders no longer active: the entities this instance published
        // go away; nobody else's.
        for config in recorded.difference(&active) {
            let mut topics = vec![config.clone()];
            if let Some(order_id) = order_of_config(config, m, &self.instance) {
                let state = order_topic(m, order_id);
                topics.push(format!("{state}/attributes"));
                topics.push(state);
            }
            for topic in &topics {
                self.publish_acked(topic, true, Vec::new()).await?;
                lock(&self.published).remove(topic);
            }
            ledger.forget(config).map_err(db)?;
            tracing::info!(channel = %self.name, topic = %config, "order no longer active: Home Assistant entity removed");
        }
        Ok(())
    }
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
            let body = super::push::webhook_body(&m, d.id, d.now);
            self.publish_acked(&event_topic(&self.settings), false, body)
                .await
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(MqttChannel::close(self))
    }
}

// ------------------------------------------------------ pure: topics --

/// `<topic_prefix>/status`: `online` / `offline`.
pub fn status_topic(m: &MqttSettings) -> String {
    format!("{}/status", m.topic_prefix)
}

/// `<topic_prefix>/event`.
pub fn event_topic(m: &MqttSettings) -> String {
    format!("{}/event", m.topic_prefix)
}

/// `<topic_prefix>/order/<order_id>`.
pub fn order_topic(m: &MqttSettings, order_id: &str) -> String {
    format!("{}/order/{order_id}", m.topic_prefix)
}

/// The discovery node id of `instance`: `aliwatch_<instance>`.
pub fn node_id(instance: &str) -> String {
    format!("aliwatch_{instance}")
}

/// `<discovery_prefix>/sensor/aliwatch_<instance>/<object_id>/config`.
pub fn config_topic(m: &MqttSettings, instance: &str, object_id: &str) -> String {
    format!(
        "{}/sensor/{}/{object_id}/config",
        m.discovery_prefix,
        node_id(instance)
    )
}

/// The config topic of versions before instance ids:
/// `<discovery_prefix>/sensor/<object_id>/config`.
pub fn legacy_config_topic(m: &MqttSettings, object_id: &str) -> String {
    format!("{}/sensor/{object_id}/config", m.discovery_prefix)
}

/// The order id of one of this instance's order config topics.
fn order_of_config<'t>(topic: &'t str, m: &MqttSettings, instance: &str) -> Option<&'t str> {
    let prefix = format!(
        "{}/sensor/{}/aliwatch_",
        m.discovery_prefix,
        node_id(instance)
    );
    topic
        .strip_prefix(&prefix)?
        .strip_suffix("/config")
        .filter(|id| format!("aliwatch_{id}") != NEED_ACTION)
}

/// The summary sensor's object id.
pub const NEED_ACTION: &str = "aliwatch_need_action";

/// One entity's retained messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Retained {
    pub object_id: String,
    pub config_topic: String,
    pub config: Vec<u8>,
    pub state_topic: String,
    pub state: Vec<u8>,
    pub attributes: Option<(String, Vec<u8>)>,
}

/// An order's status in words, for its sensor's state: its parcels'
/// statuses (`in transit`, `delivered`, …), else the order state.
pub fn status_words(o: &OrderView) -> String {
    let mut words: Vec<&str> = Vec::new();
    for p in &o.parcels {
        let w = p.status.words();
        if !words.contains(&w) {
            words.push(w);
        }
    }
    if words.is_empty() {
        return match o.state {
            OrderState::AwaitingShipment => "awaiting shipment".into(),
            s => s.as_str().replace('_', " "),
        };
    }
    let mut s = words.join(", ");
    // Home Assistant refuses states over 255 characters.
    if s.len() > 250 {
        s = crate::render::text::shorten(&s, 200);
    }
    s
}

/// The device the entities belong to: one per instance.
fn device(instance: &str) -> serde_json::Value {
    json!({
        "identifiers": [node_id(instance)],
        "name": "aliwatch",
        "manufacturer": "aliwatch",
        "model": "AliExpress order tracker",
        "sw_version": env!("CARGO_PKG_VERSION"),
    })
}

/// The retained messages for `report`: one sensor per active order and the
/// needs-action summary (pure; see the module docs).
pub fn discovery_messages(
    report: &StatusReport,
    m: &MqttSettings,
    instance: &str,
) -> Vec<Retained> {
    let availability = status_topic(m);
    let mut out = Vec::new();
    for o in report.orders.iter().filter(|o| o.is_active()) {
        let object_id = format!("aliwatch_{}", o.order_id);
        let state_topic = order_topic(m, &o.order_id);
        let attributes_topic = format!("{state_topic}/attributes");
        let config = json!({
            "name": order_name(o, 60),
            "unique_id": format!("{}_{}", node_id(instance), o.order_id),
            "default_entity_id": format!("sensor.{object_id}"),
            "object_id": object_id,
            "state_topic": state_topic,
            "json_attributes_topic": attributes_topic,
            "availability_topic": availability,
            "payload_available": "online",
            "payload_not_available": "offline",
            "icon": "mdi:package-variant",
            "device": device(instance),
        });
        out.push(Retained {
            config_topic: config_topic(m, instance, &object_id),
            object_id,
            config: config.to_string().into_bytes(),
            state_topic,
            state: status_words(o).into_bytes(),
            attributes: Some((attributes_topic, serde_json::to_vec(o).unwrap_or_default())),
        });
    }
    let need = report
        .orders
        .iter()
        .filter(|o| o.is_active() && o.needs_action())
        .count();
    let state_topic = format!("{}/need_action", m.topic_prefix);
    let config = json!({
        "name": "AliExpress orders needing action",
        "unique_id": format!("{}_need_action", node_id(instance)),
        "default_entity_id": format!("sensor.{NEED_ACTION}"),
        "object_id": NEED_ACTION,
        "state_topic": state_topic,
        "availability_topic": availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "unit_of_measurement": "orders",
        "state_class": "measurement",
        "icon": "mdi:alert-circle-outline",
        "device": device(instance),
    });
    out.push(Retained {
        object_id: NEED_ACTION.into(),
        config_topic: config_topic(m, instance, NEED_ACTION),
        config: config.to_string().into_bytes(),
        state_topic,
        state: need.to_string().into_bytes(),
        attributes: None,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ParcelStatus;

    fn settings() -> MqttSettings {
        MqttSettings {
            host: "localhost".into(),
            port: 1883,
            tls: false,
            username: None,
            password: None,
            discovery_prefix: "homeassistant".into(),
            topic_prefix: "aliwatch".into(),
        }
    }

    fn order(id: &str, state: OrderState, statuses: &[ParcelStatus]) -> OrderView {
        OrderView {
            items: vec![crate::model::Item::titled("USB-C cable")],
            parcels: statuses
                .iter()
                .map(|s| crate::report::ParcelView::sample("LP1", *s))
                .collect(),
            ..OrderView::sample(id, state)
        }
    }

    #[test]
    fn one_sensor_per_active_order_and_a_summary() {
        let r = StatusReport {
            generated_at: chrono::DateTime::UNIX_EPOCH,
            orders: vec![
                order(
                    "81",
                    OrderState::Shipped,
                    &[ParcelStatus::InTransit, ParcelStatus::Delivered],
                ),
                order("82", OrderState::Completed, &[ParcelStatus::Delivered]),
                order("83", OrderState::AwaitingShipment, &[]),
            ],
            unassigned_parcels: vec![],
            notices: vec![],
        };
        let msgs = discovery_messages(&r, &settings(), "0a1b2c3d");
        let ids: Vec<&str> = msgs.iter().map(|m| m.object_id.as_str()).collect();
        assert_eq!(ids, ["aliwatch_81", "aliwatch_83", "aliwatch_need_action"]);
        assert_eq!(
            msgs[0].config_topic,
            "homeassistant/sensor/aliwatch_0a1b2c3d/aliwatch_81/config"
        );
        assert_eq!(msgs[0].state_topic, "aliwatch/order/81");
        assert_eq!(msgs[0].state, b"in transit, delivered");
        assert_eq!(msgs[1].state, b"awaiting shipment");
        let cfg: serde_json::Value = serde_json::from_slice(&msgs[0].config).expect("json");
        assert_eq!(cfg["name"], "USB-C cable");
        assert_eq!(cfg["unique_id"], "aliwatch_0a1b2c3d_81");
        assert_eq!(cfg["default_entity_id"], "sensor.aliwatch_81");
        assert_eq!(cfg["object_id"], "aliwatch_81");
        assert_eq!(cfg["device"]["identifiers"][0], "aliwatch_0a1b2c3d");
        assert_eq!(cfg["availability_topic"], "aliwatch/status");
        assert_eq!(cfg["json_attributes_topic"], "aliwatch/order/81/attributes");
        let (_, attrs) = msgs[0].attributes.clone().expect("attributes");
        let attrs: serde_json::Value = serde_json::from_slice(&attrs).expect("json");
        assert_eq!(attrs["order_id"], "81");
        assert_eq!(msgs[2].state, b"0");
        let s = settings();
        assert_eq!(
            order_of_config(&msgs[0].config_topic, &s, "0a1b2c3d"),
            Some("81")
        );
        // Another instance's topic, the summary and old topics are no order of ours.
        assert_eq!(order_of_config(&msgs[0].config_topic, &s, "ffffffff"), None);
        assert_eq!(order_of_config(&msgs[2].config_topic, &s, "0a1b2c3d"), None);
        assert_eq!(
            order_of_config("homeassistant/sensor/aliwatch_81/config", &s, "0a1b2c3d"),
            None
        );
    }
}
