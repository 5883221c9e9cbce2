//! The command line beside the running service (issue 19, SPEC §1 "one
//! state per config, one sender"): `aliwatch run` started as the unit
//! starts it (systemd's `STATE_DIRECTORY` and `RUNTIME_DIRECTORY` set)
//! against real Dovecot, the SMTP sink, mosquitto and a webhook receiver;
//! commands from a shell with the same config go through its control
//! socket. And what a command does when the holder of the database does
//! not answer: a one-line error, exit 1, never a hang, never acting
//! beside it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::e2e::sink_messages;
use crate::mailstack::{MailStack, StackOptions};
use crate::mqtt::{retained, Broker, EventLog, PASSWORD, USER};
use crate::push::Receiver;
use crate::util::{self, wait_for};

const A: &str = "8123456700019001";
const B: &str = "8123456700019002";

struct World {
    dir: tempfile::TempDir,
    cfg: PathBuf,
}

impl World {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = util::aliwatch(&self.dir.path().join("home"));
        c.arg("-c").arg(&self.cfg).args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = util::run(&mut self.cmd(args));
        assert!(
            out.status.success(),
            "{args:?}: {} {}",
            out.status,
            util::stderr(&out)
        );
        util::stdout(&out)
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("run.log")).unwrap_or_default()
    }
}

fn shipping_email(order: &str, i: usize, days_ago: i64) -> Vec<u8> {
    let date = chrono::Utc::now() - chrono::Duration::days(days_ago);
    format!(
        "From: AliExpress <transaction@notice.aliexpress.com>\r\nTo: alice@example.test\r\nSubject: Your order {order} has been shipped\r\nDate: {date}\r\nMessage-ID: <svc.{order}@notice.aliexpress.com>\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\n\r\nYour order {order} has been shipped by the seller.\r\n\r\nTRACKING NUMBER : LP0099900019{i}001\r\n\r\nOrder details: https://www.aliexpress.com/p/order/detail.html?orderId={order}\r\n",
        date = date.to_rfc2822()
    )
    .into_bytes()
}

fn undated(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("generated_at");
    }
    v
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("sends");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("reads");
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// `check-config`'s `database = …` line.
fn database_line(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("database"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_command_line_acts_through_the_running_service_and_nothing_is_sent_twice() {
    let stack = MailStack::start(StackOptions {
        sink: true,
        ..Default::default()
    });
    let broker = Broker::start();
    let hook = Receiver::start();
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    fs::write(d.join("secret"), "secret1\n").expect("secret");
    fs::write(d.join("mqtt-password"), format!("{PASSWORD}\n")).expect("secret");
    let http = crate::mailstack::free_port();
    // No `database`: the shell and the service must still agree on it.
    let cfg = d.join("config.toml");
    fs::write(
        &cfg,
        format!(
            r#"timezone = "UTC"

[imap]
name = "svc"
host = "localhost"
port = {imaps}
security = "tls"
username = "alice"
password_file = "{d}/secret"
ca_file = "{ca}"
mailboxes = ["INBOX"]

[smtp]
host = "localhost"
port = {sink}
security = "starttls"
username = "alice"
password_file = "{d}/secret"
ca_file = "{ca}"
from = "aliwatch <alice@example.test>"
to = ["bob@example.test"]

[tracking]
provider = "none"

[digest]
at = "00:00"

[http]
listen = "127.0.0.1:{http}"

[[notify]]
name = "hook"
type = "webhook"
url = "{hook}"
events = ["protection_warning", "action_needed", "out_for_delivery", "delivered", "digest"]

[[notify]]
name = "ha"
type = "mqtt"
url = "mqtt://127.0.0.1:{mqtt}"
username = "{USER}"
password_file = "{d}/mqtt-password"
events = ["protection_warning", "action_needed", "digest"]
"#,
            d = d.display(),
            ca = stack.ca_pem().display(),
            imaps = stack.imaps_port,
            sink = stack.sink_port,
            hook = hook.url("/hook"),
            mqtt = broker.port,
        ),
    )
    .expect("config");
    let w = World { dir, cfg };

    // One state per config: what systemd adds changes nothing.
    let state_dir = w.dir.path().join("state-directory");
    let runtime_dir = w.dir.path().join("runtime-directory");
    fs::create_dir_all(&state_dir).expect("dir");
    fs::create_dir_all(&runtime_dir).expect("dir");
    let plain = w.ok(&["check-config"]);
    let out = util::run(
        w.cmd(&["check-config"])
            .env("STATE_DIRECTORY", &state_dir)
            .env("RUNTIME_DIRECTORY", &runtime_dir),
    );
    assert_eq!(
        database_line(&util::stdout(&out)),
        database_line(&plain),
        "{plain}"
    );

    stack.append("alice", "INBOX", &shipping_email(A, 1, 55), None);
    stack.append("alice", "INBOX", &shipping_email(B, 2, 57), None);
    let events = EventLog::start(broker.port);

    // `run` the way the unit starts it.
    let log = fs::File::create(w.dir.path().join("run.log")).expect("log");
    let mut run = util::Reaped(
        w.cmd(&["run"])
            .env("ALIWATCH_LOG", "info")
            .env("STATE_DIRECTORY", &state_dir)
            .env("RUNTIME_DIRECTORY", &runtime_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("run"),
    );
    assert!(
        runtime_dir.join("control.sock").exists() || {
            wait_for(Duration::from_secs(20), "the control socket", || {
                runtime_dir.join("control.sock").exists().then_some(true)
            })
        }
    );
    // Both orders arrive; the warnings go out (one email for both).
    wait_for(
        Duration::from_secs(30),
        "two orders and the warning sent",
        || {
            let s: Value = serde_json::from_str(&w.ok(&["status", "--json"])).ok()?;
            let sent = !sink_messages(&stack).is_empty();
            (s["orders"].as_array()?.len() == 2 && sent).then_some(())
        },
    );

    // Reads: exactly what the service shows.
    let shell: Value = serde_json::from_str(&w.ok(&["status", "--json", "--all"])).expect("json");
    let api: Value = serde_json::from_str(&http_get(http, "/api/status")).expect("json");
    assert_eq!(undated(shell), undated(api));
    let socket_log = w.log();
    assert!(
        socket_log.contains("command from the control socket"),
        "{socket_log}"
    );

    // A write reaches the dashboard and Home Assistant within a second.
    let b_config = wait_for(Duration::from_secs(10), "B's Home Assistant entity", || {
        crate::mqtt::config_topic_of(&retained(broker.port), B)
    });
    let cleared = when_cleared(broker.port, &b_config);
    w.ok(&["done", B]);
    let started = Instant::now();
    wait_for(Duration::from_secs(1), "done B on /api/status", || {
        let api: Value = serde_json::from_str(&http_get(http, "/api/status")).ok()?;
        let b = api["orders"]
            .as_array()?
            .iter()
            .find(|o| o["order_id"] == B)?
            .clone();
        (b["state"] == "completed").then_some(())
    });
    let on_dashboard = started.elapsed();
    let at = cleared
        .recv_timeout(Duration::from_secs(5))
        .expect("B's Home Assistant entity removed");
    let on_mqtt = at.saturating_duration_since(started);
    eprintln!("done → dashboard in {on_dashboard:?}, MQTT in {on_mqtt:?}");
    assert!(on_mqtt < Duration::from_secs(1), "{on_mqtt:?}");

    // `sync` and `digest --print` beside it.
    let out = util::run(&mut w.cmd(&["sync"]));
    assert!(out.status.success(), "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains("sync by the service"),
        "{}",
        util::stderr(&out)
    );
    let digest = w.ok(&["digest", "--print"]);
    assert!(digest.contains(A), "{digest}");
    w.ok(&["sync"]);

    // Each channel got each event once.
    std::thread::sleep(Duration::from_millis(500));
    let mids: Vec<String> = sink_messages(&stack).into_iter().map(|(m, ..)| m).collect();
    let distinct: BTreeSet<&String> = mids.iter().collect();
    assert_eq!(mids.len(), distinct.len(), "email sent twice: {mids:?}");
    let hooks: Vec<String> = hook
        .got()
        .iter()
        .filter_map(|g| serde_json::from_slice::<Value>(&g.body).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect();
    let mut counted: BTreeMap<&String, usize> = BTreeMap::new();
    for id in &hooks {
        *counted.entry(id).or_default() += 1;
    }
    assert!(!hooks.is_empty());
    assert!(
        counted.values().all(|&n| n == 1),
        "webhook twice: {counted:?}"
    );
    let ids = events.ids();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert!(!ids.is_empty());
    assert_eq!(ids.len(), distinct.len(), "mqtt event twice: {ids:?}");

    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(run.0.id().to_string())
        .status();
    let status = run.0.wait().expect("run exits");
    assert_eq!(status.code(), Some(0), "{}", w.log());
    assert!(
        !runtime_dir.join("control.sock").exists(),
        "socket removed at exit"
    );
    // Without the service the same commands work on the database.
    let out = w.ok(&["status", "--json", "--all"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["orders"].as_array().map(Vec::len), Some(2));
}

/// When `topic` gets an empty retained message (its entity removed), from a
/// subscriber that is listening before the change.
fn when_cleared(port: u16, topic: &str) -> std::sync::mpsc::Receiver<Instant> {
    use rumqttc::{Client, Event, Packet, QoS};
    let (client, mut conn) = Client::new(crate::mqtt::options(port, "test-watch"), 10);
    client.subscribe(topic, QoS::AtMostOnce).expect("subscribe");
    // Wait for the SUBACK (and the retained config) before going on.
    loop {
        match conn.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => break,
            Ok(Ok(_)) => {}
            other => panic!("subscribe: {other:?}"),
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _client = client;
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::Publish(p))) if p.payload.is_empty() => {
                    let _ = tx.send(Instant::now());
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    rx
}

/// A world whose database is "held" by this test process: the run lock
/// taken here, with the lines a service would write.
struct FakeHolder {
    dir: tempfile::TempDir,
    cfg: PathBuf,
    _lock: fs::File,
}

fn fake_holder(pid: u32, socket: &dyn Fn(&Path) -> PathBuf) -> FakeHolder {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("aliwatch.db");
    let cfg = dir.path().join("config.toml");
    fs::write(&cfg, format!("database = \"{}\"\n", db.display())).expect("config");
    // A real database with an order, so a command acting beside the
    // holder would have something to change.
    let w = World {
        dir,
        cfg: cfg.clone(),
    };
    let p = w.dir.path().join("a.eml");
    fs::write(&p, shipping_email(A, 1, 10)).expect("email");
    w.ok(&["import", &p.display().to_string()]);
    let socket = socket(w.dir.path());
    let mut lock = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(w.dir.path().join("aliwatch.db.run-lock"))
        .expect("lock file");
    lock.try_lock().expect("lock");
    write!(lock, "{pid}\nrun\n{}\n", socket.display()).expect("lines");
    FakeHolder {
        dir: w.dir,
        cfg,
        _lock: lock,
    }
}

impl FakeHolder {
    fn run(&self, args: &[&str]) -> (std::process::Output, Duration) {
        let started = Instant::now();
        let mut c = util::aliwatch(&self.dir.path().join("home"));
        c.arg("-c").arg(&self.cfg).args(args);
        (util::run(&mut c), started.elapsed())
    }

    /// Every command fails with one line and exit 1, within `limit`, and
    /// nothing was done to the database.
    fn refuses(&self, limit: Duration, words: &str) {
        for args in [
            &["status"][..],
            &["done", A],
            &["sync"],
            &["digest", "--print"],
        ] {
            let (out, took) = self.run(args);
            let err = util::stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(took < limit, "{args:?} took {took:?}");
            assert!(err.contains(words), "{args:?}: {err}");
            assert!(err.contains("nothing was done"), "{args:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        }
        let db = rusqlite::Connection::open(self.dir.path().join("aliwatch.db")).expect("db");
        let actions: i64 = db
            .query_row("SELECT count(*) FROM order_actions", [], |r| r.get(0))
            .unwrap_or(0);
        assert_eq!(actions, 0, "`done` acted beside the holder");
    }
}

/// A socket served by this test process that accepts and never answers.
fn mute_socket() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("mute.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    (dir, path)
}

#[test]
fn a_stale_control_socket_is_an_error_not_a_fallback() {
    let h = fake_holder(std::process::id(), &|d| {
        let p = d.join("stale.sock");
        drop(UnixListener::bind(&p).expect("bind"));
        p
    });
    h.refuses(Duration::from_secs(5), "does not answer");
}

#[test]
fn a_service_that_does_not_answer_within_5_s_is_an_error_not_a_hang() {
    let (_dir, path) = mute_socket();
    let h = fake_holder(std::process::id(), &|_| path.clone());
    h.refuses(Duration::from_secs(9), "did not answer");
}

#[test]
fn a_control_socket_served_by_another_process_is_never_believed() {
    let (_dir, path) = mute_socket();
    // The lock names pid 1; the socket is served by this test process.
    let h = fake_holder(1, &|_| path.clone());
    h.refuses(Duration::from_secs(5), "refusing to talk to it");
}

/// `sudo aliwatch sync` (or `import`) while the service is stopped must not
/// leave a database or lock file owned by root in the service's state
/// directory: the service's user could not open it and would not start.
#[test]
fn files_root_makes_beside_the_database_belong_to_its_directory_owner() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().expect("dir");
    if fs::metadata(dir.path()).expect("meta").uid() != 0 {
        eprintln!("skipped: not running as root");
        return;
    }
    let state = dir.path().join("state");
    fs::create_dir(&state).expect("dir");
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).expect("chown");
    let cfg = dir.path().join("config.toml");
    fs::write(
        &cfg,
        format!(
            "database = \"{}/aliwatch.db\"\n[tracking]\nprovider = \"none\"\n",
            state.display()
        ),
    )
    .expect("config");
    let p = dir.path().join("a.eml");
    fs::write(&p, shipping_email(A, 1, 10)).expect("email");
    let w = World { dir, cfg };
    w.ok(&["import", &p.display().to_string()]);
    w.ok(&["sync"]);
    for entry in fs::read_dir(&state).expect("list") {
        let entry = entry.expect("entry");
        let meta = entry.metadata().expect("meta");
        assert_eq!(
            (meta.uid(), meta.gid()),
            (65534, 65534),
            "{} belongs to root",
            entry.path().display()
        );
    }
}

/// An error message into a full stderr (`2>/dev/full`) was a panic
/// (`eprintln!`, exit 134); it is exit 1 like any other failure.
#[test]
fn an_error_into_a_full_stderr_is_exit_1_not_a_panic() {
    let dir = tempfile::tempdir().expect("dir");
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = util::aliwatch(&dir.path().join("home"))
        .arg("--database")
        .arg(dir.path().join("missing/aliwatch.db"))
        .arg("status")
        .stderr(full)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{:?}", out.status);
}
