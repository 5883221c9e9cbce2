//! What the MQTT channel publishes and understands, pure: Home Assistant
//! discovery configs and their retained states, the topics, the commands
//! Home Assistant's buttons send back, and the bounds that keep every
//! payload under the packet limit.
//!
//! Per active order (node id `aliwatch_<instance>`, see the parent module):
//! - a `sensor` (`sensor.aliwatch_<order_id>`): state = the parcel status in
//!   words on `<topic_prefix>/order/<order_id>`, attributes = the order as
//!   in `status --json` on `…/attributes`;
//! - a `button` "Received" (`button.aliwatch_<order_id>_received`): its
//!   press publishes `PRESS` to `<topic_prefix>/order/<order_id>/received/set`,
//!   which is `aliwatch done <order_id>`;
//! - a `button` "Stop tracking" (`button.aliwatch_<order_id>_stop_tracking`):
//!   `PRESS` on `<topic_prefix>/order/<order_id>/stop_tracking/set`, which is
//!   `aliwatch untrack <order_id>`.
//!
//! Once per instance: the summary sensor `sensor.aliwatch_need_action` and
//! the `event` entity `event.aliwatch_events` on `<topic_prefix>/event`
//! (every event aliwatch pushes, `event_type` = the event's name).
//!
//! Configs carry `default_entity_id` (Home Assistant 2026.4 and later
//! ignore `object_id`) with `object_id` beside it for versions before
//! 2025.10, a `unique_id` with the instance id, availability and the device.

use serde_json::{json, Value};

use crate::config::MqttSettings;
use crate::model::{EventKind, OrderState};
use crate::render::email::order_name;
use crate::report::{OrderView, StatusReport};

/// The largest payload aliwatch publishes: well under the packet limit
/// (the topic and headers take the rest) and Home Assistant's liking.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// The summary sensor's object id.
pub const NEED_ACTION: &str = "aliwatch_need_action";
/// The event entity's object id.
pub const EVENTS: &str = "aliwatch_events";

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

/// What aliwatch subscribes to for its buttons:
/// `<topic_prefix>/order/+/+/set`.
pub fn command_filter(m: &MqttSettings) -> String {
    format!("{}/order/+/+/set", m.topic_prefix)
}

/// The discovery node id of `instance`: `aliwatch_<instance>`.
pub fn node_id(instance: &str) -> String {
    format!("aliwatch_{instance}")
}

/// `<discovery_prefix>/<platform>/aliwatch_<instance>/<object_id>/config`.
pub fn config_topic(m: &MqttSettings, instance: &str, platform: &str, object_id: &str) -> String {
    format!(
        "{}/{platform}/{}/{object_id}/config",
        m.discovery_prefix,
        node_id(instance)
    )
}

/// The config topic of versions before instance ids:
/// `<discovery_prefix>/sensor/<object_id>/config`.
pub fn legacy_config_topic(m: &MqttSettings, object_id: &str) -> String {
    format!("{}/sensor/{object_id}/config", m.discovery_prefix)
}

/// What a button asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonAction {
    /// "Received": `aliwatch done`.
    Received,
    /// "Stop tracking": `aliwatch untrack`.
    StopTracking,
}

impl ButtonAction {
    pub const ALL: [ButtonAction; 2] = [ButtonAction::Received, ButtonAction::StopTracking];

    /// The topic level and object id suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            ButtonAction::Received => "received",
            ButtonAction::StopTracking => "stop_tracking",
        }
    }

    fn name(self) -> &'static str {
        match self {
            ButtonAction::Received => "Received",
            ButtonAction::StopTracking => "Stop tracking",
        }
    }

    fn icon(self) -> &'static str {
        match self {
            ButtonAction::Received => "mdi:package-variant-closed-check",
            ButtonAction::StopTracking => "mdi:eye-off-outline",
        }
    }
}

/// A button press for one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub order_id: String,
    pub action: ButtonAction,
}

/// `<topic_prefix>/order/<order_id>/<action>/set` with payload `PRESS`
/// → the command; anything else is refused with the reason (logged,
/// never acted on).
pub fn parse_command(m: &MqttSettings, topic: &str, payload: &[u8]) -> Result<Command, String> {
    let rest = topic
        .strip_prefix(&format!("{}/order/", m.topic_prefix))
        .and_then(|r| r.strip_suffix("/set"))
        .ok_or_else(|| "not a command topic".to_string())?;
    let (order_id, action) = rest
        .split_once('/')
        .ok_or_else(|| "no action in the topic".to_string())?;
    let action = ButtonAction::ALL
        .into_iter()
        .find(|a| a.as_str() == action)
        .ok_or_else(|| "an action aliwatch does not know".to_string())?;
    let valid_order =
        (12..=20).contains(&order_id.len()) && order_id.bytes().all(|b| b.is_ascii_digit());
    if !valid_order {
        return Err("not an order number".into());
    }
    if payload != b"PRESS" {
        return Err("the payload is not PRESS".into());
    }
    Ok(Command {
        order_id: order_id.to_string(),
        action,
    })
}

/// One retained message.
#[derive(Debug, Clone, PartialEq)]
pub struct Retained {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// One discovery entity: its config (published first) and its states.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub platform: &'static str,
    pub object_id: String,
    pub config: Retained,
    pub states: Vec<Retained>,
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
fn device(instance: &str) -> Value {
    json!({
        "identifiers": [node_id(instance)],
        "name": "aliwatch",
        "manufacturer": "aliwatch",
        "model": "AliExpress order tracker",
        "sw_version": env!("CARGO_PKG_VERSION"),
    })
}

/// The keys every config of this instance has.
fn base(m: &MqttSettings, instance: &str, platform: &str, object_id: &str, name: String) -> Value {
    json!({
        "name": name,
        "unique_id": format!("{}_{}", node_id(instance), object_id.trim_start_matches("aliwatch_")),
        "default_entity_id": format!("{platform}.{object_id}"),
        "object_id": object_id,
        "availability_topic": status_topic(m),
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device(instance),
    })
}

fn entity(
    m: &MqttSettings,
    instance: &str,
    platform: &'static str,
    object_id: String,
    config: Value,
    states: Vec<Retained>,
) -> Entity {
    Entity {
        config: Retained {
            topic: config_topic(m, instance, platform, &object_id),
            payload: config.to_string().into_bytes(),
        },
        platform,
        object_id,
        states,
    }
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// Every entity for `report` (pure; see the module docs).
pub fn discovery(report: &StatusReport, m: &MqttSettings, instance: &str) -> Vec<Entity> {
    let mut out = Vec::new();
    for o in report.orders.iter().filter(|o| o.is_active()) {
        let object_id = format!("aliwatch_{}", o.order_id);
        let state_topic = order_topic(m, &o.order_id);
        let attributes_topic = format!("{state_topic}/attributes");
        let name = order_name(o, 60);
        let config = merge(
            base(m, instance, "sensor", &object_id, name.clone()),
            json!({
                "state_topic": state_topic,
                "json_attributes_topic": attributes_topic,
                "icon": "mdi:package-variant",
            }),
        );
        let states = vec![
            Retained {
                topic: state_topic.clone(),
                payload: status_words(o).into_bytes(),
            },
            Retained {
                topic: attributes_topic,
                payload: bounded_order(o),
            },
        ];
        out.push(entity(
            m,
            instance,
            "sensor",
            object_id.clone(),
            config,
            states,
        ));
        for action in ButtonAction::ALL {
            let id = format!("{object_id}_{}", action.as_str());
            let config = merge(
                base(
                    m,
                    instance,
                    "button",
                    &id,
                    format!("{name}: {}", action.name()),
                ),
                json!({
                    "command_topic": format!("{state_topic}/{}/set", action.as_str()),
                    "payload_press": "PRESS",
                    "icon": action.icon(),
                }),
            );
            out.push(entity(m, instance, "button", id, config, Vec::new()));
        }
    }
    let need = report
        .orders
        .iter()
        .filter(|o| o.is_active() && o.needs_action())
        .count();
    let state_topic = format!("{}/need_action", m.topic_prefix);
    let config = merge(
        base(
            m,
            instance,
            "sensor",
            NEED_ACTION,
            "AliExpress orders needing action".into(),
        ),
        json!({
            "state_topic": state_topic,
            "unit_of_measurement": "orders",
            "state_class": "measurement",
            "icon": "mdi:alert-circle-outline",
        }),
    );
    let states = vec![Retained {
        topic: state_topic,
        payload: need.to_string().into_bytes(),
    }];
    out.push(entity(
        m,
        instance,
        "sensor",
        NEED_ACTION.into(),
        config,
        states,
    ));
    let config = merge(
        base(m, instance, "event", EVENTS, "AliExpress events".into()),
        json!({
            "state_topic": event_topic(m),
            "event_types": EventKind::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
            // The payload is the webhook's JSON; Home Assistant wants the
            // type under `event_type`, the rest become its attributes.
            "value_template": "{{ {'event_type': value_json.event, 'order_id': value_json.order_id, 'tracking_number': value_json.tracking_number, 'title': value_json.title, 'message': value_json.message, 'url': value_json.url} | tojson }}",
            "icon": "mdi:bell-ring-outline",
        }),
    );
    out.push(entity(
        m,
        instance,
        "event",
        EVENTS.into(),
        config,
        Vec::new(),
    ));
    out
}

/// The order as in `status --json`, at most [`MAX_PAYLOAD`] bytes: an
/// order with more parcels than fit keeps the first ones and says how many
/// there are (`parcels_total`, `parcels_shown`), rather than a packet the
/// broker refuses (issue 21: one order of 1,024 parcels stopped the
/// channel).
pub fn bounded_order(o: &OrderView) -> Vec<u8> {
    let whole = serde_json::to_vec(o).unwrap_or_default();
    if whole.len() <= MAX_PAYLOAD {
        return whole;
    }
    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
    shorten_parcels(&mut v, MAX_PAYLOAD);
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The lists of an order that grow with its parcels.
const LONG_LISTS: [&str; 2] = ["parcels", "needs_action"];

/// Shortens an order's long lists (`parcels`, `needs_action`) in place
/// until it serialises to at most `limit` bytes, halving them together (at
/// the worst, empty); each shortened list says how long it was
/// (`parcels_total`, `parcels_shown`, `needs_action_total`, …).
pub fn shorten_parcels(order: &mut Value, limit: usize) {
    let len = |v: &Value| serde_json::to_vec(v).map_or(0, |b| b.len());
    if len(order) <= limit {
        return;
    }
    let totals: Vec<(&str, usize)> = LONG_LISTS
        .iter()
        .filter_map(|k| Some((*k, order.get(*k)?.as_array()?.len())))
        .collect();
    let Some(longest) = totals.iter().map(|(_, n)| *n).max() else {
        return;
    };
    let mut keep = longest;
    while keep > 0 {
        keep /= 2;
        let mut candidate = order.clone();
        if let Some(obj) = candidate.as_object_mut() {
            for (key, total) in &totals {
                let shown = keep.min(*total);
                if let Some(Value::Array(list)) = obj.get_mut(*key) {
                    list.truncate(shown);
                }
                obj.insert(format!("{key}_total"), json!(total));
                obj.insert(format!("{key}_shown"), json!(shown));
            }
        }
        if len(&candidate) <= limit || keep == 0 {
            *order = candidate;
            return;
        }
    }
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

    fn config(e: &Entity) -> Value {
        serde_json::from_slice(&e.config.payload).expect("json")
    }

    #[test]
    fn a_sensor_and_two_buttons_per_active_order_a_summary_and_the_events() {
        let r = StatusReport {
            generated_at: chrono::DateTime::UNIX_EPOCH,
            orders: vec![
                order(
                    "812345678901",
                    OrderState::Shipped,
                    &[ParcelStatus::InTransit, ParcelStatus::Delivered],
                ),
                order(
                    "822345678901",
                    OrderState::Completed,
                    &[ParcelStatus::Delivered],
                ),
                order("832345678901", OrderState::AwaitingShipment, &[]),
            ],
            unassigned_parcels: vec![],
            notices: vec![],
        };
        let all = discovery(&r, &settings(), "0a1b2c3d");
        let ids: Vec<String> = all
            .iter()
            .map(|e| format!("{}.{}", e.platform, e.object_id))
            .collect();
        assert_eq!(
            ids,
            [
                "sensor.aliwatch_812345678901",
                "button.aliwatch_812345678901_received",
                "button.aliwatch_812345678901_stop_tracking",
                "sensor.aliwatch_832345678901",
                "button.aliwatch_832345678901_received",
                "button.aliwatch_832345678901_stop_tracking",
                "sensor.aliwatch_need_action",
                "event.aliwatch_events",
            ]
        );
        for e in &all {
            let c = config(e);
            assert_eq!(
                c["default_entity_id"],
                format!("{}.{}", e.platform, e.object_id)
            );
            assert_eq!(c["object_id"], e.object_id);
            assert!(c["unique_id"]
                .as_str()
                .is_some_and(|u| u.starts_with("aliwatch_0a1b2c3d_")));
            assert_eq!(c["device"]["identifiers"][0], "aliwatch_0a1b2c3d");
            assert_eq!(c["availability_topic"], "aliwatch/status");
            assert_eq!(
                e.config.topic,
                format!(
                    "homeassistant/{}/aliwatch_0a1b2c3d/{}/config",
                    e.platform, e.object_id
                )
            );
        }
        let sensor = &all[0];
        assert_eq!(config(sensor)["name"], "USB-C cable");
        assert_eq!(sensor.states[0].topic, "aliwatch/order/812345678901");
        assert_eq!(sensor.states[0].payload, b"in transit, delivered");
        let attrs: Value = serde_json::from_slice(&sensor.states[1].payload).expect("json");
        assert_eq!(attrs["order_id"], "812345678901");
        assert_eq!(all[3].states[0].payload, b"awaiting shipment");
        let received = config(&all[1]);
        assert_eq!(
            received["command_topic"],
            "aliwatch/order/812345678901/received/set"
        );
        assert_eq!(received["payload_press"], "PRESS");
        assert_eq!(all[6].states[0].payload, b"0");
        let events = config(&all[7]);
        assert_eq!(events["state_topic"], "aliwatch/event");
        assert!(events["event_types"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("delivered"))));
    }

    #[test]
    fn only_a_press_on_a_known_action_of_an_order_number_is_a_command() {
        let m = settings();
        let ok = |topic: &str, payload: &[u8]| parse_command(&m, topic, payload);
        assert_eq!(
            ok("aliwatch/order/812345678901/received/set", b"PRESS"),
            Ok(Command {
                order_id: "812345678901".into(),
                action: ButtonAction::Received
            })
        );
        assert_eq!(
            ok("aliwatch/order/812345678901/stop_tracking/set", b"PRESS").map(|c| c.action),
            Ok(ButtonAction::StopTracking)
        );
        for (topic, payload) in [
            ("aliwatch/order/812345678901/received/set", &b"press"[..]),
            ("aliwatch/order/812345678901/delete/set", b"PRESS"),
            ("aliwatch/order/12/received/set", b"PRESS"),
            ("aliwatch/order/81234567890x/received/set", b"PRESS"),
            ("aliwatch/order/812345678901/received", b"PRESS"),
            ("other/order/812345678901/received/set", b"PRESS"),
            ("aliwatch/order/812345678901/x/received/set", b"PRESS"),
        ] {
            assert!(ok(topic, payload).is_err(), "{topic}");
        }
    }

    #[test]
    fn an_order_too_large_for_a_packet_is_shortened_not_refused() {
        let statuses = vec![ParcelStatus::InTransit; 1024];
        let mut o = order("812345678901", OrderState::Shipped, &statuses);
        for (i, p) in o.parcels.iter_mut().enumerate() {
            p.tracking_number = format!("LP{i:014}");
        }
        let full = serde_json::to_vec(&o).expect("json");
        assert!(full.len() > MAX_PAYLOAD, "{}", full.len());
        let bounded = bounded_order(&o);
        assert!(bounded.len() <= MAX_PAYLOAD, "{}", bounded.len());
        let v: Value = serde_json::from_slice(&bounded).expect("json");
        assert_eq!(v["parcels_total"], 1024);
        let shown = v["parcels_shown"].as_u64().expect("shown");
        assert!(shown > 0 && shown < 1024);
        assert_eq!(v["parcels"].as_array().map(Vec::len), Some(shown as usize));
        // A small order is left as it is.
        let small = order(
            "812345678901",
            OrderState::Shipped,
            &[ParcelStatus::InTransit],
        );
        assert_eq!(
            bounded_order(&small),
            serde_json::to_vec(&small).expect("json")
        );
    }
}
