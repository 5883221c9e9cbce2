//! The MQTT channel against a REAL broker: Debian's mosquitto, started on
//! a free loopback port with a password file (scripts/test installs the
//! package). The test reads what Home Assistant would read, with its own
//! rumqttc client: retained discovery configs, states, attributes and
//! availability, and the events on `aliwatch/event`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

use crate::mailstack::free_port;
use crate::util::{self, wait_for};

pub const USER: &str = "aliwatch";
pub const PASSWORD: &str = "mqtt-secret-1";

/// A mosquitto broker on 127.0.0.1, killed on drop.
pub struct Broker {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Broker {
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().expect("dir");
        let port = free_port();
        let mut b = Broker {
            dir,
            port,
            child: None,
        };
        let passwd = b.dir.path().join("passwd");
        let st = Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&passwd)
            .args([USER, PASSWORD])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mosquitto_passwd");
        assert!(st.success());
        // The test user (the broker here) must read it; mosquitto warns
        // about world-readable password files but reads them.
        fs::write(
            b.dir.path().join("mosquitto.conf"),
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\nuser root\nlog_dest stderr\n",
                passwd.display()
            ),
        )
        .expect("conf");
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("mosquitto.log"))
            .expect("log");
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start /usr/sbin/mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn options(port: u16, id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_credentials(USER, PASSWORD);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_max_packet_size(1 << 20, 1 << 20);
    o
}

/// Every retained message under `homeassistant/#` and `aliwatch/#` now.
pub(crate) fn retained(port: u16) -> BTreeMap<String, String> {
    let (client, mut conn) = Client::new(options(port, "test-reader"), 100);
    client
        .subscribe("homeassistant/#", QoS::AtMostOnce)
        .expect("sub");
    client
        .subscribe("aliwatch/#", QoS::AtMostOnce)
        .expect("sub");
    let mut out = BTreeMap::new();
    let mut subacks = 0;
    let mut quiet_until: Option<Instant> = None;
    loop {
        if quiet_until.is_some_and(|t| Instant::now() > t) {
            break;
        }
        match conn.recv_timeout(Duration::from_millis(300)) {
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                subacks += 1;
                if subacks == 2 {
                    quiet_until = Some(Instant::now() + Duration::from_millis(500));
                }
            }
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) if p.retain => {
                out.insert(
                    p.topic.clone(),
                    String::from_utf8_lossy(&p.payload).into_owned(),
                );
            }
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => panic!("reader: {e}"),
        }
    }
    let _ = client.disconnect();
    out
}

/// Collects everything published on `aliwatch/event`, from a thread.
pub struct EventLog {
    got: Arc<Mutex<Vec<Value>>>,
    client: Client,
}

impl EventLog {
    pub fn start(port: u16) -> EventLog {
        let (client, mut conn) = Client::new(options(port, "test-events"), 100);
        client
            .subscribe("aliwatch/event", QoS::AtLeastOnce)
            .expect("sub");
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        assert!(!p.retain, "events are not retained");
                        let v: Value = serde_json::from_slice(&p.payload).expect("event json");
                        g.lock().expect("lock").push(v);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5)).expect("subscribed");
        EventLog { got, client }
    }

    pub fn ids(&self) -> Vec<String> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        let _ = self.client.disconnect();
    }
}

struct World {
    dir: tempfile::TempDir,
    cfg: PathBuf,
}

impl World {
    fn new(port: u16) -> World {
        let dir = tempfile::tempdir().expect("dir");
        fs::write(dir.path().join("mqtt-password"), format!("{PASSWORD}\n")).expect("secret");
        let cfg = dir.path().join("config.toml");
        fs::write(
            &cfg,
            format!(
                r#"database = "{d}/aliwatch.db"
timezone = "UTC"

[digest]
at = "00:00"

[[notify]]
name = "ha"
type = "mqtt"
url = "mqtt://127.0.0.1:{port}"
username = "{USER}"
password_file = "{d}/mqtt-password"
events = ["protection_warning", "action_needed", "out_for_delivery", "delivered", "digest"]
"#,
                d = dir.path().display()
            ),
        )
        .expect("config");
        World { dir, cfg }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = util::aliwatch(&self.dir.path().join("home"));
        c.arg("-c").arg(&self.cfg).args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = util::run(&mut self.cmd(args));
        assert!(out.status.success(), "{args:?}: {}", util::stderr(&out));
        util::stdout(&out)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The retained discovery config of order `id` (or `need_action`), whatever
/// the instance: `homeassistant/sensor/aliwatch_<instance>/aliwatch_<id>/config`.
pub(crate) fn config_topic_of(r: &BTreeMap<String, String>, id: &str) -> Option<String> {
    let suffix = format!("/aliwatch_{id}/config");
    r.keys()
        .find(|k| {
            k.starts_with("homeassistant/")
                && k.split('/')
                    .nth(2)
                    .is_some_and(|node| node.starts_with("aliwatch_"))
                && k.ends_with(&suffix)
                && k.split('/').count() == 5
        })
        .cloned()
}

pub(crate) fn config_of<'r>(r: &'r BTreeMap<String, String>, id: &str) -> Option<&'r String> {
    config_topic_of(r, id).and_then(|t| r.get(&t))
}

/// The instance id in the discovery topics (one instance on the broker).
fn instance_of(r: &BTreeMap<String, String>) -> Option<String> {
    r.keys().find_map(|k| {
        let node = k
            .strip_prefix("homeassistant/sensor/aliwatch_")?
            .split('/')
            .next()?;
        (node.len() == 8).then(|| node.to_string())
    })
}

const A: &str = "8123456700002001";
const B: &str = "8123456700002002";

fn import_two(w: &World) {
    let now = chrono::Utc::now();
    for (i, (order, days)) in [(A, 55), (B, 57)].iter().enumerate() {
        let raw = format!(
            "From: AliExpress <transaction@notice.aliexpress.com>\r\nTo: a@example.test\r\nSubject: Your order {order} has been shipped\r\nDate: {date}\r\nMessage-ID: <mqtt.{order}@notice.aliexpress.com>\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\n\r\nYour order {order} has been shipped by the seller.\r\n\r\nTRACKING NUMBER : LP0099900000{i}2001\r\n\r\nOrder details: https://www.aliexpress.com/p/order/detail.html?orderId={order}\r\n",
            date = (now - chrono::Duration::days(*days)).to_rfc2822(),
        );
        let p = w.path().join(format!("{i}.eml"));
        fs::write(&p, raw).expect("email");
        w.ok(&["import", &p.display().to_string()]);
    }
}

#[test]
fn home_assistant_sees_orders_appear_change_and_vanish_on_a_real_broker() {
    let broker = Broker::start();
    let w = World::new(broker.port);
    let out = w.ok(&["check-config", "--connect"]);
    assert!(out.contains("ok      notify ha (mqtt)"), "{out}");
    // a check publishes nothing: no state, no event, no availability
    assert!(retained(broker.port).is_empty());

    import_two(&w);
    let events = EventLog::start(broker.port);
    w.ok(&["sync"]);
    let r = retained(broker.port);
    for id in [A, B] {
        let cfg: Value =
            serde_json::from_str(config_of(&r, id).expect("config")).expect("config json");
        let instance = instance_of(&r).expect("instance id");
        assert_eq!(cfg["unique_id"], format!("aliwatch_{instance}_{id}"));
        assert_eq!(cfg["default_entity_id"], format!("sensor.aliwatch_{id}"));
        assert_eq!(cfg["object_id"], format!("aliwatch_{id}"));
        assert_eq!(cfg["state_topic"], format!("aliwatch/order/{id}"));
        assert_eq!(cfg["availability_topic"], "aliwatch/status");
        assert_eq!(
            cfg["json_attributes_topic"],
            format!("aliwatch/order/{id}/attributes")
        );
        assert!(cfg["name"].as_str().is_some_and(|n| !n.is_empty()));
        let state = &r[&format!("aliwatch/order/{id}")];
        assert!(
            !state.is_empty() && !state.starts_with('{'),
            "status in words: {state}"
        );
        let attrs: Value =
            serde_json::from_str(&r[&format!("aliwatch/order/{id}/attributes")]).expect("attrs");
        assert_eq!(attrs["order_id"], id);
        assert!(attrs["protection_ends"].is_string());
    }
    assert!(config_of(&r, "need_action").is_some(), "{r:?}");
    assert_eq!(r["aliwatch/need_action"], "2");
    assert_eq!(r["aliwatch/status"], "online");
    // events: each once, with the webhook's shape; two warnings and the
    // digest (no "stalled" without a tracking provider: issue 20)
    let ids = wait_for(Duration::from_secs(5), "events", || {
        let ids = events.ids();
        (ids.len() >= 3).then_some(ids)
    });
    assert!(!ids.iter().any(|i| i.contains("stalled")), "{ids:?}");
    assert!(
        ids.contains(&format!("warning:{A}:7d")) && ids.contains(&format!("warning:{B}:7d")),
        "{ids:?}"
    );
    assert!(ids.iter().any(|i| i.starts_with("digest:")), "{ids:?}");
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "each event once: {ids:?}");

    // B is done: its entity vanishes (empty retained config), A stays;
    // a second sync sends no event again.
    w.ok(&["done", B]);
    w.ok(&["sync"]);
    let r = retained(broker.port);
    assert!(config_of(&r, B).is_none(), "{r:?}");
    assert!(!r.contains_key(&format!("aliwatch/order/{B}")), "{r:?}");
    assert!(config_of(&r, A).is_some());
    assert_eq!(r["aliwatch/need_action"], "1");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        events.ids().len(),
        ids.len(),
        "no event twice: {:?}",
        events.ids()
    );

    // `run`: availability online; the broker restarts (and forgets every
    // retained message): aliwatch reconnects and publishes it all again.
    let mut broker = broker;
    let log = fs::File::create(w.path().join("run.log")).expect("log");
    let mut run = w
        .cmd(&["run"])
        .env("ALIWATCH_LOG", "info")
        .stderr(log)
        .spawn()
        .expect("run");
    broker.stop();
    broker.spawn();
    let r = wait_for(
        Duration::from_secs(30),
        "republished after the broker restart",
        || {
            let r = retained(broker.port);
            (r.get("aliwatch/status").map(String::as_str) == Some("online")
                && config_of(&r, A).is_some())
            .then_some(r)
        },
    );
    assert!(config_of(&r, B).is_none());

    // Home Assistant restarts and says so: the state is published again.
    let a_topic = config_topic_of(&r, A).expect("A's config");
    {
        let (c, mut conn) = Client::new(options(broker.port, "test-ha"), 10);
        c.publish(a_topic.clone(), QoS::AtLeastOnce, true, Vec::<u8>::new())
            .expect("clear");
        c.publish("homeassistant/status", QoS::AtLeastOnce, false, "online")
            .expect("birth");
        c.disconnect().expect("disconnect");
        for ev in conn.iter() {
            if ev.is_err() {
                break;
            }
        }
    }
    wait_for(
        Duration::from_secs(10),
        "republished after homeassistant/status online",
        || {
            retained(broker.port)
                .get(&a_topic)
                .is_some_and(|c| !c.is_empty())
                .then_some(())
        },
    );

    // aliwatch dies: the broker publishes its last will.
    let _ = run.kill();
    let _ = run.wait();
    wait_for(Duration::from_secs(10), "last will offline", || {
        (retained(broker.port)
            .get("aliwatch/status")
            .map(String::as_str)
            == Some("offline"))
        .then_some(())
    });
    let log = fs::read_to_string(w.path().join("run.log")).unwrap_or_default();
    assert!(!log.contains(PASSWORD), "{log}");
}

#[test]
fn a_wrong_mqtt_password_fails_the_check_without_printing_it() {
    let broker = Broker::start();
    let w = World::new(broker.port);
    fs::write(w.path().join("mqtt-password"), "wrong-password-xyz\n").expect("secret");
    let out = util::run(&mut w.cmd(&["check-config", "--connect"]));
    assert_eq!(out.status.code(), Some(1), "{}", util::stdout(&out));
    let text = util::stdout(&out) + &util::stderr(&out);
    assert!(text.contains("FAILED  notify ha (mqtt)"), "{text}");
    assert!(!text.contains("wrong-password-xyz"), "{text}");
}

/// Issue 19: a second aliwatch with an empty database (a test install, a
/// laptop) on the same broker removed every entity of the first.
#[test]
fn a_second_instance_on_the_same_broker_removes_nothing_of_the_first() {
    let broker = Broker::start();
    let first = World::new(broker.port);
    import_two(&first);
    first.ok(&["sync"]);
    let before = retained(broker.port);
    let configs: Vec<String> = before
        .keys()
        .filter(|k| k.starts_with("homeassistant/") && k.ends_with("/config"))
        .cloned()
        .collect();
    assert_eq!(
        configs.len(),
        8,
        "a sensor and two buttons per order, the summary and the events: {configs:?}"
    );

    let second = World::new(broker.port);
    second.ok(&["sync"]);
    let after = retained(broker.port);
    for c in &configs {
        assert_eq!(
            after.get(c),
            before.get(c),
            "{c} of the first instance kept"
        );
    }
    // The second one has its own summary entity, under its own node id.
    let summaries: Vec<&String> = after
        .keys()
        .filter(|k| k.ends_with("/aliwatch_need_action/config") && !after[*k].is_empty())
        .collect();
    assert_eq!(summaries.len(), 2, "{summaries:?}");

    // The first still removes what it published when an order ends.
    first.ok(&["done", B]);
    first.ok(&["sync"]);
    let r = retained(broker.port);
    assert!(config_of(&r, B).is_none(), "{r:?}");
    assert!(config_of(&r, A).is_some(), "{r:?}");
}

/// Issue 21: the Mosquitto add-on on the LAN with a password over plain
/// mqtt:// (and ntfy with a token over plain http on the LAN) was refused
/// with exit 78; public hosts still need TLS.
#[test]
fn a_lan_broker_over_plain_mqtt_is_accepted_with_one_warning_and_a_public_one_is_not() {
    let dir = tempfile::tempdir().expect("dir");
    fs::write(dir.path().join("pw"), "secret\n").expect("secret");
    let check = |url: &str, kind: &str, secret: &str| {
        let cfg = dir.path().join("c.toml");
        fs::write(
            &cfg,
            format!(
                "database = \"{d}/a.db\"\n[[notify]]\ntype = \"{kind}\"\nurl = \"{url}\"\n{secret}\n",
                d = dir.path().display()
            ),
        )
        .expect("config");
        let out = util::run(
            util::aliwatch(&dir.path().join("home"))
                .arg("-c")
                .arg(&cfg)
                .arg("check-config"),
        );
        (out.status.code(), util::stderr(&out))
    };
    let mqtt_pw = format!(
        "username = \"ha\"\npassword_file = \"{}/pw\"",
        dir.path().display()
    );
    let ntfy_token = format!("token_file = \"{}/pw\"", dir.path().display());
    for url in [
        "mqtt://192.168.1.10:1883",
        "mqtt://homeassistant.local",
        "mqtt://[fd00::2]:1883",
        "mqtt://core-mosquitto.home.arpa",
    ] {
        let (code, err) = check(url, "mqtt", &mqtt_pw);
        assert_eq!(code, Some(0), "{url}: {err}");
        let warnings: Vec<&str> = err.lines().filter(|l| l.contains("without TLS")).collect();
        assert_eq!(warnings.len(), 1, "{url}: {err}");
        assert!(!err.contains("secret\n"), "{err}");
    }
    let (code, err) = check("http://ntfy.lan/aliwatch-topic", "ntfy", &ntfy_token);
    assert_eq!(code, Some(0), "{err}");
    for (url, kind, secret) in [
        ("mqtt://broker.example.com:1883", "mqtt", &mqtt_pw),
        ("mqtt://8.8.8.8", "mqtt", &mqtt_pw),
        (
            "http://ntfy.example.com/aliwatch-topic",
            "ntfy",
            &ntfy_token,
        ),
    ] {
        let (code, err) = check(url, kind, secret);
        assert_eq!(code, Some(78), "{url}: {err}");
        assert!(err.contains("unencrypted"), "{err}");
    }
}

/// Issue 21: every `sync` with an MQTT channel ended with "mqtt connection
/// lost; reconnecting", the only line under -q, so cron mailed it each run.
#[test]
fn a_quiet_sync_with_mqtt_prints_nothing() {
    let broker = Broker::start();
    let w = World::new(broker.port);
    import_two(&w);
    for _ in 0..2 {
        let out = util::run(&mut w.cmd(&["-q", "sync"]));
        assert!(out.status.success(), "{}", util::stderr(&out));
        assert_eq!(util::stderr(&out), "", "stderr under -q");
        assert_eq!(util::stdout(&out), "", "stdout");
    }
    let out = util::run(w.cmd(&["sync"]).env("ALIWATCH_LOG", "info"));
    assert!(
        !util::stderr(&out).contains("connection lost"),
        "{}",
        util::stderr(&out)
    );
}

/// What Home Assistant's MQTT discovery accepts for the platforms aliwatch
/// uses (its current schema: the keys of `sensor`, `button` and `event`
/// with the shared entity, availability and device keys; the required
/// ones; `default_entity_id` with the platform's prefix; no key given both
/// in full and abbreviated).
fn check_discovery_schema(platform: &str, cfg: &Value) -> Result<(), String> {
    const COMMON: &[&str] = &[
        "name",
        "unique_id",
        "default_entity_id",
        "object_id",
        "icon",
        "availability_topic",
        "payload_available",
        "payload_not_available",
        "availability",
        "availability_mode",
        "device",
        "entity_category",
        "enabled_by_default",
        "qos",
        "json_attributes_topic",
        "json_attributes_template",
        "encoding",
        "origin",
    ];
    let (required, own): (&[&str], &[&str]) = match platform {
        "sensor" => (
            &["state_topic"],
            &[
                "state_topic",
                "value_template",
                "unit_of_measurement",
                "state_class",
                "device_class",
                "expire_after",
                "force_update",
                "suggested_display_precision",
            ],
        ),
        "button" => (
            &["command_topic"],
            &[
                "command_topic",
                "command_template",
                "payload_press",
                "retain",
                "device_class",
            ],
        ),
        "event" => (
            &["state_topic", "event_types"],
            &[
                "state_topic",
                "event_types",
                "value_template",
                "device_class",
            ],
        ),
        other => return Err(format!("platform {other} is not one aliwatch uses")),
    };
    let obj = cfg.as_object().ok_or("not an object")?;
    for key in obj.keys() {
        if !COMMON.contains(&key.as_str()) && !own.contains(&key.as_str()) {
            return Err(format!("{platform}: key {key} is not in the schema"));
        }
    }
    for key in required {
        if obj.get(*key).is_none_or(|v| v.is_null()) {
            return Err(format!("{platform}: required key {key} missing"));
        }
    }
    for (full, short) in [
        ("state_topic", "stat_t"),
        ("command_topic", "cmd_t"),
        ("unique_id", "uniq_id"),
        ("availability_topic", "avty_t"),
        ("default_entity_id", "def_ent_id"),
        ("device", "dev"),
    ] {
        if obj.contains_key(full) && obj.contains_key(short) {
            return Err(format!("{full} given twice ({short})"));
        }
    }
    let id = obj["default_entity_id"]
        .as_str()
        .ok_or("default_entity_id missing")?;
    let (prefix, rest) = id
        .split_once('.')
        .ok_or("default_entity_id without a platform")?;
    if prefix != platform
        || rest.is_empty()
        || !rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "default_entity_id {id} is not {platform}.<lower_case_id>"
        ));
    }
    if obj["unique_id"].as_str().is_none_or(str::is_empty) {
        return Err("unique_id missing".into());
    }
    let ids = obj["device"]["identifiers"]
        .as_array()
        .ok_or("device.identifiers missing")?;
    if ids.is_empty() {
        return Err("device.identifiers empty".into());
    }
    if platform == "event" && obj["event_types"].as_array().is_none_or(Vec::is_empty) {
        return Err("event_types empty".into());
    }
    Ok(())
}

/// Presses a button the way Home Assistant does (`PRESS`, not retained).
fn press(port: u16, topic: &str, payload: &str) {
    let (c, mut conn) = Client::new(options(port, "test-ha-button"), 10);
    c.publish(topic, QoS::AtLeastOnce, false, payload)
        .expect("publish");
    c.disconnect().expect("disconnect");
    for ev in conn.iter() {
        if ev.is_err() {
            break;
        }
    }
}

/// Issue 21: act from Home Assistant; configs Home Assistant accepts today.
#[test]
fn home_assistant_buttons_act_as_the_command_line_and_every_config_passes_the_schema() {
    let broker = Broker::start();
    let w = World::new(broker.port);
    import_two(&w);
    let log = fs::File::create(w.path().join("run.log")).expect("log");
    let mut run = util::Reaped(
        w.cmd(&["run"])
            .env("ALIWATCH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("run"),
    );
    let r = wait_for(Duration::from_secs(20), "the entities", || {
        let r = retained(broker.port);
        (config_of(&r, &format!("{B}_received")).is_some()).then_some(r)
    });
    let mut platforms = BTreeSet::new();
    for (topic, payload) in r
        .iter()
        .filter(|(t, p)| t.ends_with("/config") && !p.is_empty())
    {
        let platform = topic.split('/').nth(1).expect("platform");
        platforms.insert(platform.to_string());
        let cfg: Value = serde_json::from_str(payload).expect("json");
        check_discovery_schema(platform, &cfg)
            .unwrap_or_else(|e| panic!("{topic}: {e}\n{payload}"));
    }
    assert_eq!(
        platforms.into_iter().collect::<Vec<_>>(),
        ["button", "event", "sensor"]
    );
    let received: Value =
        serde_json::from_str(config_of(&r, &format!("{B}_received")).expect("button"))
            .expect("json");
    assert_eq!(
        received["default_entity_id"],
        format!("button.aliwatch_{B}_received")
    );

    // Garbage on a command topic is ignored (and logged).
    press(
        broker.port,
        &format!("aliwatch/order/{B}/received/set"),
        "DELETE",
    );
    press(broker.port, "aliwatch/order/123/received/set", "PRESS");
    // "Stop tracking" on A: its parcels are no longer asked for.
    press(
        broker.port,
        &format!("aliwatch/order/{A}/stop_tracking/set"),
        "PRESS",
    );
    // "Received" on B: exactly `aliwatch done B`.
    let cmd = received["command_topic"]
        .as_str()
        .expect("topic")
        .to_string();
    press(
        broker.port,
        &cmd,
        received["payload_press"].as_str().expect("payload"),
    );
    wait_for(Duration::from_secs(5), "B's entities removed", || {
        config_of(&retained(broker.port), B).is_none().then_some(())
    });
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(run.0.id().to_string())
        .status();
    let _ = run.0.wait();
    let status: Value = serde_json::from_str(&w.ok(&["status", "--json", "--all"])).expect("json");
    let order = |id: &str| {
        status["orders"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["order_id"] == id))
            .cloned()
            .expect("order")
    };
    assert_eq!(order(B)["state"], "completed");
    assert_eq!(order(B)["completed_reason"], "done");
    assert_ne!(
        order(A)["state"],
        "completed",
        "stop tracking keeps the order"
    );
    let db = rusqlite::Connection::open(w.path().join("aliwatch.db")).expect("db");
    let untracked: i64 = db
        .query_row(
            &format!("SELECT count(*) FROM parcels p JOIN order_parcels o USING (tracking_number) WHERE o.order_id = '{A}' AND p.tracking_done_at IS NOT NULL"),
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(untracked, 1);
    let log = fs::read_to_string(w.path().join("run.log")).unwrap_or_default();
    assert!(
        log.contains("ignored a message on a command topic"),
        "{log}"
    );
}

/// Issue 21: a foreign 300 KB retained config and an order of 1,024
/// parcels stopped the channel (16 reconnects in 30 s, 0 events).
#[test]
fn a_huge_foreign_config_and_an_order_of_1024_parcels_leave_events_flowing() {
    let broker = Broker::start();
    let w = World::new(broker.port);
    {
        let (c, mut conn) = Client::new(options(broker.port, "test-foreign"), 10);
        c.publish(
            "homeassistant/sensor/someone_else/big/config",
            QoS::AtLeastOnce,
            true,
            vec![b'x'; 300 * 1024],
        )
        .expect("publish");
        c.disconnect().expect("disconnect");
        for ev in conn.iter() {
            if ev.is_err() {
                break;
            }
        }
    }
    import_two(&w);
    {
        let db = rusqlite::Connection::open(w.path().join("aliwatch.db")).expect("db");
        let tx = db.unchecked_transaction().expect("tx");
        for i in 0..1024 {
            let n = format!("LP{:014}", 70_000_000_000u64 + i);
            tx.execute(
                "INSERT INTO parcels (tracking_number, first_seen_at) VALUES (?1, '2026-11-01T00:00:00Z')",
                [&n],
            )
            .expect("parcel");
            tx.execute(
                "INSERT INTO order_parcels (order_id, tracking_number) VALUES (?1, ?2)",
                [A, n.as_str()],
            )
            .expect("order parcel");
        }
        tx.commit().expect("commit");
    }
    let events = EventLog::start(broker.port);
    let out = util::run(w.cmd(&["sync"]).env("ALIWATCH_LOG", "info"));
    assert!(out.status.success(), "{}", util::stderr(&out));
    let err = util::stderr(&out);
    assert!(!err.contains("connection lost"), "{err}");
    let ids = wait_for(Duration::from_secs(5), "events", || {
        let ids = events.ids();
        (ids.iter().any(|i| i == &format!("warning:{A}:7d"))).then_some(ids)
    });
    assert!(ids.iter().any(|i| i.starts_with("digest:")), "{ids:?}");
    let r = retained(broker.port);
    let attrs: Value =
        serde_json::from_str(&r[&format!("aliwatch/order/{A}/attributes")]).expect("json");
    assert_eq!(attrs["parcels_total"], 1025);
    let size = r[&format!("aliwatch/order/{A}/attributes")].len();
    assert!(
        size <= 64 * 1024,
        "{size} bytes, {} parcels shown",
        attrs["parcels_shown"]
    );
    assert!(config_of(&r, A).is_some() && config_of(&r, B).is_some());
}
