//! The MQTT channel against a REAL broker: Debian's mosquitto, started on
//! a free loopback port with a password file (scripts/test installs the
//! package). The test reads what Home Assistant would read, with its own
//! rumqttc client: retained discovery configs, states, attributes and
//! availability, and the events on `aliwatch/event`.

use std::collections::BTreeMap;
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

fn options(port: u16, id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_credentials(USER, PASSWORD);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_max_packet_size(1 << 20, 1 << 20);
    o
}

/// Every retained message under `homeassistant/#` and `aliwatch/#` now.
fn retained(port: u16) -> BTreeMap<String, String> {
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
            serde_json::from_str(&r[&format!("homeassistant/sensor/aliwatch_{id}/config")])
                .expect("config json");
        assert_eq!(cfg["unique_id"], format!("aliwatch_{id}"));
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
    assert!(r.contains_key("homeassistant/sensor/aliwatch_need_action/config"));
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
    assert!(
        !r.contains_key(&format!("homeassistant/sensor/aliwatch_{B}/config")),
        "{r:?}"
    );
    assert!(!r.contains_key(&format!("aliwatch/order/{B}")), "{r:?}");
    assert!(r.contains_key(&format!("homeassistant/sensor/aliwatch_{A}/config")));
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
                && r.contains_key(&format!("homeassistant/sensor/aliwatch_{A}/config")))
            .then_some(r)
        },
    );
    assert!(!r.contains_key(&format!("homeassistant/sensor/aliwatch_{B}/config")));

    // Home Assistant restarts and says so: the state is published again.
    {
        let (c, mut conn) = Client::new(options(broker.port, "test-ha"), 10);
        c.publish(
            format!("homeassistant/sensor/aliwatch_{A}/config"),
            QoS::AtLeastOnce,
            true,
            Vec::<u8>::new(),
        )
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
                .contains_key(&format!("homeassistant/sensor/aliwatch_{A}/config"))
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
