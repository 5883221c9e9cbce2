//! Push channels (`[[notify]]`, SPEC §8) through the REAL binary: `import`
//! of shipping emails dated so that protection is about to end, then
//! `aliwatch sync`, against a local HTTP receiver that speaks what ntfy
//! and webhook receivers speak (any POST answered 200) and can answer 5xx,
//! drop the connection, hang past the client's timeout, or SIGKILL the
//! sending aliwatch between receiving an event and answering it (the crash
//! between send and record). Email goes to the real SMTP sink.
//!
//! Judged on what the receivers got: each event accepted exactly once per
//! channel, a repeat only after a failure or crash and then under the same
//! `id`, valid signatures, the headers ntfy reads.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::mailstack::{free_port, MailStack, StackOptions};
use crate::standin::read_request;
use crate::util;

/// What the receiver does with the next request.
#[derive(Debug, Clone)]
pub enum Fault {
    Status(u16),
    /// Reads the request and closes without an answer.
    Drop,
    /// Reads the request and answers nothing for this long.
    Hang(Duration),
    /// Reads the request, SIGKILLs this process, then closes.
    Kill(u32),
}

/// One request as received, with what the receiver answered.
#[derive(Debug, Clone)]
pub struct Got {
    pub method: String,
    pub path: String,
    pub headers: std::collections::HashMap<String, String>,
    pub body: Vec<u8>,
    /// 200, or the fault applied.
    pub answered: Option<u16>,
}

#[derive(Default)]
struct RxState {
    got: Vec<Got>,
    faults: VecDeque<Fault>,
    /// Answer every request with this status (a server that is down).
    always: Option<u16>,
}

/// A local HTTP receiver on 127.0.0.1 (std threads, one per connection).
pub struct Receiver {
    pub port: u16,
    state: Arc<Mutex<RxState>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(RxState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        Receiver { port, state, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn push_fault(&self, f: Fault) {
        self.state.lock().expect("lock").faults.push_back(f);
    }

    pub fn set_always(&self, status: Option<u16>) {
        self.state.lock().expect("lock").always = status;
    }

    pub fn got(&self) -> Vec<Got> {
        self.state.lock().expect("lock").got.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<RxState>) {
    let Ok(req) = read_request(&conn) else { return };
    // A sender killed in the middle of its request sent no request.
    if req.path.is_empty() {
        return;
    }
    let (fault, always) = {
        let mut s = state.lock().expect("lock");
        (s.faults.pop_front(), s.always)
    };
    let answered = match (&fault, always) {
        (Some(Fault::Status(c)), _) => Some(*c),
        (Some(_), _) => None,
        (None, Some(c)) => Some(c),
        (None, None) => Some(200),
    };
    state.lock().expect("lock").got.push(Got {
        method: req.method,
        path: req.path,
        headers: req.headers,
        body: req.body,
        answered,
    });
    match fault {
        Some(Fault::Drop) => return,
        Some(Fault::Hang(d)) => {
            std::thread::sleep(d);
            return;
        }
        Some(Fault::Kill(pid)) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            return;
        }
        _ => {}
    }
    let code = answered.unwrap_or(200);
    let body = if code == 200 {
        "{\"id\":\"ok\"}"
    } else {
        "nope"
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

const TOKEN: &str = "tk_ntfy-token-do-not-print";
const SECRET: &str = "webhook-hmac-secret";

/// A temp dir with config, secrets and database.
struct World {
    dir: tempfile::TempDir,
    cfg: PathBuf,
}

impl World {
    fn new(toml: impl FnOnce(&Path) -> String) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join("ntfy-token"), format!("{TOKEN}\n")).expect("secret");
        fs::write(dir.path().join("hook-secret"), format!("{SECRET}\n")).expect("secret");
        fs::write(dir.path().join("smtp-password"), "secret1\n").expect("secret");
        let cfg = dir.path().join("config.toml");
        fs::write(&cfg, toml(dir.path())).expect("config");
        World { dir, cfg }
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = util::aliwatch(&self.dir.path().join("home"));
        c.arg("-c").arg(&self.cfg).args(args);
        c
    }

    fn import(&self, emails: &[(String, Vec<u8>)]) {
        let mut paths = Vec::new();
        for (name, raw) in emails {
            let p = self.dir.path().join(name);
            fs::write(&p, raw).expect("email");
            paths.push(p.display().to_string());
        }
        let mut args = vec!["import"];
        args.extend(paths.iter().map(String::as_str));
        let out = util::run(&mut self.cmd(&args));
        assert!(out.status.success(), "import: {}", util::stderr(&out));
    }

    fn status(&self) -> Value {
        let out = util::run(&mut self.cmd(&["status", "--json"]));
        assert!(out.status.success(), "status: {}", util::stderr(&out));
        serde_json::from_str(&util::stdout(&out)).expect("json")
    }

    /// Lets every failed notification be retried now (as the retry wait
    /// passing does).
    fn make_retries_due(&self) {
        let c = rusqlite::Connection::open(self.dir.path().join("aliwatch.db")).expect("db");
        c.execute(
            "UPDATE notifications SET last_attempt_at = '2000-01-01T00:00:00Z'
             WHERE state = 'pending'",
            [],
        )
        .expect("update");
    }

    fn ledger(&self) -> Vec<(String, String, String)> {
        let c = rusqlite::Connection::open(self.dir.path().join("aliwatch.db")).expect("db");
        let mut st = c
            .prepare("SELECT channel, key, state FROM notifications ORDER BY channel, key")
            .expect("sql");
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows")
    }
}

fn shipping_email(order: &str, tracking: &str, date: DateTime<Utc>) -> Vec<u8> {
    format!(
        "From: AliExpress <transaction@notice.aliexpress.com>\r\n\
         To: alice@example.test\r\n\
         Subject: Your order {order} has been shipped\r\n\
         Date: {date}\r\n\
         Message-ID: <push.{order}@notice.aliexpress.com>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=\"UTF-8\"\r\n\
         \r\n\
         Your order {order} has been shipped by the seller.\r\n\
         \r\n\
         TRACKING NUMBER : {tracking}\r\n\
         \r\n\
         Order details: https://www.aliexpress.com/p/order/detail.html?orderId={order}\r\n",
        date = date.to_rfc2822(),
    )
    .into_bytes()
}

/// Two orders shipped 55 and 57 days ago: protection ends in 5 and 3 days.
fn two_orders() -> Vec<(String, Vec<u8>)> {
    let now = Utc::now();
    vec![
        (
            "a.eml".into(),
            shipping_email(
                "8123456700001001",
                "LP00999000001001",
                now - chrono::Duration::days(55),
            ),
        ),
        (
            "b.eml".into(),
            shipping_email(
                "8123456700001002",
                "LP00999000001002",
                now - chrono::Duration::days(57),
            ),
        ),
    ]
}

/// The ids `status --json` says are due for `events` today: one warning
/// per order (7 days), one action_needed per order and reason but
/// protection_ending, and the digest.
fn expected_ids(status: &Value, events: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for o in status["orders"].as_array().expect("orders") {
        let id = o["order_id"].as_str().expect("id");
        if events.contains(&"protection_warning") {
            out.insert(format!("warning:{id}:7d"));
        }
        if events.contains(&"action_needed") {
            for a in o["needs_action"].as_array().expect("needs") {
                let r = a["reason"].as_str().expect("reason");
                if r != "protection_ending" {
                    out.insert(format!("action:{id}:{r}"));
                }
            }
        }
    }
    if events.contains(&"digest") {
        out.insert(format!("digest:{}", Utc::now().format("%Y-%m-%d")));
    }
    out
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Accepted (200) events per id, and every attempt per id.
fn tally(
    got: &[Got],
    id_of: impl Fn(&Got) -> String,
) -> (BTreeMap<String, u32>, BTreeMap<String, u32>) {
    let (mut ok, mut all) = (BTreeMap::new(), BTreeMap::new());
    for g in got.iter().filter(|g| g.method == "POST") {
        let id = id_of(g);
        *all.entry(id.clone()).or_insert(0) += 1;
        if g.answered == Some(200) {
            *ok.entry(id).or_insert(0) += 1;
        }
    }
    (ok, all)
}

fn webhook_id(g: &Got) -> String {
    let v: Value = serde_json::from_slice(&g.body).expect("webhook body is JSON");
    v["id"].as_str().expect("id").to_owned()
}

fn ntfy_id(g: &Got) -> String {
    g.headers
        .get("x-aliwatch-id")
        .cloned()
        .expect("x-aliwatch-id")
}

fn push_config(d: &Path, ntfy: &str, hook: &str, extra: &str) -> String {
    format!(
        r#"database = "{db}"
timezone = "UTC"
{extra}
[digest]
at = "00:00"

[[notify]]
name = "phone"
type = "ntfy"
url = "{ntfy}"
token_file = "{d}/ntfy-token"

[[notify]]
name = "hook"
type = "webhook"
url = "{hook}"
token_file = "{d}/hook-secret"
events = ["protection_warning", "action_needed", "out_for_delivery", "delivered", "digest"]
"#,
        db = d.join("aliwatch.db").display(),
        d = d.display(),
    )
}

#[test]
fn every_event_reaches_each_channel_once_through_5xx_drops_and_a_crash() {
    let ntfy = Receiver::start();
    let hook = Receiver::start();
    let w =
        World::new(|d| push_config(d, &ntfy.url("/aliwatch-topic"), &hook.url("/hooks/aw"), ""));
    w.import(&two_orders());
    let status = w.status();
    let want_ntfy = expected_ids(&status, &["protection_warning", "action_needed"]);
    let want_hook = expected_ids(
        &status,
        &[
            "protection_warning",
            "action_needed",
            "out_for_delivery",
            "delivered",
            "digest",
        ],
    );
    assert!(want_ntfy.len() >= 2, "{want_ntfy:?}");

    // 1: ntfy answers 500, the webhook drops the connection: sync says so
    // (exit 1), nothing is lost, each channel stops for this pass.
    ntfy.push_fault(Fault::Status(500));
    hook.push_fault(Fault::Drop);
    let out = util::run(&mut w.cmd(&["sync"]));
    assert_eq!(out.status.code(), Some(1), "{}", util::stderr(&out));
    let err = util::stderr(&out);
    assert!(err.contains("phone:") && err.contains("hook:"), "{err}");
    assert!(
        !err.contains(TOKEN) && !err.contains("aliwatch-topic"),
        "{err}"
    );
    assert_eq!(ntfy.got().len(), 1);
    assert_eq!(hook.got().len(), 1);

    // 2: retries due; the webhook receiver gets its first event and the
    // sending process is SIGKILLed before the answer: the crash between
    // send and record.
    w.make_retries_due();
    let mut child = w.cmd(&["sync"]).spawn().expect("spawn sync");
    hook.push_fault(Fault::Kill(child.id()));
    let st = child.wait().expect("wait");
    assert_eq!(st.code(), None, "killed by a signal");

    // 3: the next pass sends what is left; the killed one again, same id.
    w.make_retries_due();
    let out = util::run(&mut w.cmd(&["sync"]));
    assert!(out.status.success(), "{}", util::stderr(&out));
    // 4: and nothing more.
    let out = util::run(&mut w.cmd(&["sync"]));
    assert!(out.status.success(), "{}", util::stderr(&out));

    let got = ntfy.got();
    let (ok, all) = tally(&got, ntfy_id);
    assert_eq!(ok.keys().cloned().collect::<BTreeSet<_>>(), want_ntfy);
    // ntfy delivers beside the webhook, so the SIGKILL of step 2 may fall
    // between one of its sends and its record: that one, and only that
    // kind, may come twice, under the same id (SPEC §5 "Once").
    assert!(ok.values().all(|&n| n <= 2), "{ok:?}");
    let repeats = ok.values().filter(|&&n| n == 2).count() as u32;
    assert_eq!(
        all.values().sum::<u32>(),
        want_ntfy.len() as u32 + 1 + repeats,
        "{all:?}"
    );

    let got_hook = hook.got();
    let (ok, all) = tally(&got_hook, webhook_id);
    assert_eq!(ok.keys().cloned().collect::<BTreeSet<_>>(), want_hook);
    assert!(ok.values().all(|&n| n == 1), "{ok:?}");
    // one drop + one crash: two repeats, each of an id that then succeeded
    assert_eq!(
        all.values().sum::<u32>(),
        want_hook.len() as u32 + 2,
        "{all:?}"
    );

    // ntfy: what ntfy reads
    for g in got.iter().filter(|g| g.answered == Some(200)) {
        assert_eq!(g.path, "/aliwatch-topic");
        assert_eq!(
            g.headers.get("authorization").map(String::as_str),
            Some(&*format!("Bearer {TOKEN}"))
        );
        let id = ntfy_id(g);
        let title = g.headers.get("title").expect("title");
        let body = String::from_utf8(g.body.clone()).expect("utf-8");
        let order = id.split(':').nth(1).expect("order");
        assert!(body.contains(order), "{body}");
        assert_eq!(
            g.headers.get("click").map(String::as_str),
            Some(&*format!(
                "https://www.aliexpress.com/p/order/detail.html?orderId={order}"
            ))
        );
        assert!(g.headers.contains_key("tags"));
        if id.starts_with("warning:") {
            assert_eq!(g.headers.get("priority").map(String::as_str), Some("high"));
            assert!(title.starts_with("Buyer Protection ends in "), "{title}");
            assert!(body.contains("Buyer Protection ends on "), "{body}");
        } else {
            assert_eq!(
                g.headers.get("priority").map(String::as_str),
                Some("default")
            );
        }
    }
    // webhook: the documented payload, signed
    let mut bodies: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for g in &got_hook {
        let sig = g.headers.get("x-aliwatch-signature").expect("signed");
        assert_eq!(sig, &format!("sha256={}", hmac_hex(SECRET, &g.body)));
        let v: Value = serde_json::from_slice(&g.body).expect("json");
        let keys: BTreeSet<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "event",
                "id",
                "time",
                "order_id",
                "tracking_number",
                "title",
                "message",
                "url",
                "order"
            ])
        );
        let id = v["id"].as_str().expect("id").to_owned();
        if id.starts_with("digest:") {
            assert_eq!(v["event"], "digest");
            assert!(v["order"].is_null());
        } else {
            assert_eq!(v["order"]["order_id"], v["order_id"]);
            assert_eq!(v["url"], v["order"]["url"]);
        }
        bodies.entry(id).or_default().push(v);
    }
    // a repeat is the same event: same id, same content
    for (id, vs) in &bodies {
        for v in vs {
            assert_eq!(v["title"], vs[0]["title"], "{id}");
            assert_eq!(v["message"], vs[0]["message"], "{id}");
        }
    }
    assert!(
        w.ledger()
            .iter()
            .all(|(_, _, st)| st == "sent" || st == "superseded"),
        "{:?}",
        w.ledger()
    );
}

#[test]
fn a_channel_that_hangs_never_keeps_the_email_or_another_channel_waiting() {
    let stack = MailStack::start(StackOptions {
        sink: true,
        ..StackOptions::default()
    });
    let ntfy = Receiver::start();
    let hook = Receiver::start();
    ntfy.push_fault(Fault::Hang(Duration::from_secs(40)));
    let smtp = |d: &Path| {
        format!(
            r#"
[smtp]
host = "localhost"
port = {port}
security = "starttls"
username = "alice"
password_file = "{d}/smtp-password"
ca_file = "{ca}"
from = "aliwatch <alice@example.test>"
to = ["alice@example.test"]
"#,
            port = stack.sink_port,
            d = d.display(),
            ca = stack.ca_pem().display()
        )
    };
    let w = World::new(|d| push_config(d, &ntfy.url("/t"), &hook.url("/h"), &smtp(d)));
    w.import(&two_orders());
    let want_hook = expected_ids(
        &w.status(),
        &[
            "protection_warning",
            "action_needed",
            "out_for_delivery",
            "delivered",
            "digest",
        ],
    );
    let t0 = std::time::Instant::now();
    let out = util::run(&mut w.cmd(&["sync"]));
    let took = t0.elapsed();
    // ntfy timed out (exit 1, named), everything else went out in the pass
    assert_eq!(out.status.code(), Some(1), "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains("phone: could not send 1"),
        "{}",
        util::stderr(&out)
    );
    assert!(took < Duration::from_secs(35), "{took:?}");
    let (ok, _) = tally(&hook.got(), webhook_id);
    assert_eq!(ok.keys().cloned().collect::<BTreeSet<_>>(), want_hook);
    let ledger = w.ledger();
    let sent = |ch: &str| {
        ledger
            .iter()
            .filter(|(c, _, s)| c == ch && s == "sent")
            .count()
    };
    assert!(sent("email") >= 2, "{ledger:?}");
    assert_eq!(sent("phone"), 0, "{ledger:?}");
    assert_eq!(
        ntfy.got().len(),
        1,
        "one timeout per pass, not one per event"
    );
}

#[test]
fn check_config_connect_reaches_push_channels_without_publishing() {
    let ntfy = Receiver::start();
    let hook = Receiver::start();
    hook.set_always(Some(405));
    let w = World::new(|d| push_config(d, &ntfy.url("/secret-topic"), &hook.url("/h"), ""));
    let out = util::run(&mut w.cmd(&["check-config", "--connect"]));
    let text = util::stdout(&out);
    assert!(out.status.success(), "{text}{}", util::stderr(&out));
    assert!(text.contains("ok      notify phone (ntfy)"), "{text}");
    assert!(text.contains("ok      notify hook (webhook)"), "{text}");
    // the effective config names the host, never the topic or the token
    assert!(
        text.contains(&format!("url = \"http://127.0.0.1:{}/…\"", ntfy.port)),
        "{text}"
    );
    assert!(
        !text.contains("secret-topic") && !text.contains(TOKEN),
        "{text}"
    );
    for g in ntfy.got().iter().chain(hook.got().iter()) {
        assert_eq!(g.method, "HEAD", "nothing is published");
    }
    // a rejected token fails the check
    ntfy.set_always(Some(403));
    let out = util::run(&mut w.cmd(&["check-config", "--connect"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        util::stdout(&out).contains("FAILED  notify phone (ntfy)"),
        "{}",
        util::stdout(&out)
    );
    // nothing listening
    let closed = free_port();
    let w = World::new(|d| {
        push_config(
            d,
            &format!("http://127.0.0.1:{closed}/t"),
            &hook.url("/h"),
            "",
        )
    });
    let out = util::run(&mut w.cmd(&["check-config", "--connect"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        util::stdout(&out).contains("connection refused"),
        "{}",
        util::stdout(&out)
    );
}

#[test]
fn bad_notify_tables_exit_78_naming_the_line() {
    let cases: &[(&str, &str, &str)] = &[
        ("type = \"pager\"\nurl = \"https://x.example/t\"", ":3:", "type: \"pager\" is not one of"),
        ("type = \"mqtt\"\nurl = \"mqtt://x.example\"\nusername = \"u\"\npassword_file = \"/x\"", ":4:", "sends the password unencrypted"),
        ("type = \"mqtt\"\nurl = \"mqtts://x.example/topic\"", ":4:", "an mqtt url is mqtt://host:1883"),
        ("type = \"mqtt\"\nurl = \"mqtts://x.example\"\ntoken_file = \"/x\"", ":5:", "logs in with username and password_file"),
        ("type = \"mqtt\"\nurl = \"mqtts://x.example\"\ntopic_prefix = \"a/#\"", ":5:", "topic_prefix: an MQTT topic prefix"),
        ("type = \"ntfy\"\nurl = \"https://ntfy.sh/t\"\nusername = \"u\"", ":5:", "username: only for type = \"mqtt\""),
        ("type = \"ntfy\"\nurl = \"ntfy.sh/topic\"", ":4:", "url: not a URL"),
        ("type = \"ntfy\"\nurl = \"https://ntfy.sh/\"", ":4:", "names the topic"),
        ("type = \"ntfy\"\nurl = \"ftp://ntfy.sh/t\"", ":4:", "must be an http(s) URL"),
        ("type = \"webhook\"\nurl = \"https://u:pw@x.example/h\"", ":4:", "must not hold a user name"),
        ("type = \"ntfy\"\nurl = \"http://ntfy.example/t\"\ntoken_file = \"/x\"", ":4:", "would travel unencrypted"),
        ("type = \"ntfy\"\nurl = \"https://ntfy.sh/t\"\nevents = [\"shipped\"]", ":5:", "events: \"shipped\" is not one of"),
        ("type = \"ntfy\"\nurl = \"https://ntfy.sh/t\"\nevents = []", ":5:", "list at least one"),
        ("type = \"ntfy\"\nurl = \"https://ntfy.sh/t\"\ntopic = \"x\"", ":5:", "unknown field `topic`"),
        ("name = \"email\"\ntype = \"ntfy\"\nurl = \"https://ntfy.sh/t\"", ":3:", "email channel's own ledger"),
        ("name = \"my phone\"\ntype = \"ntfy\"\nurl = \"https://ntfy.sh/t\"", ":3:", "name: 1 to 64 letters"),
        (
            "type = \"ntfy\"\nurl = \"https://ntfy.sh/t\"\n[[notify]]\ntype = \"ntfy\"\nurl = \"https://ntfy.sh/u\"",
            ":6:",
            "two [[notify]] channels are called \"ntfy\"",
        ),
        (
            "type = \"ntfy\"\nurl = \"https://ntfy.sh/t\"\ntoken_file = \"/nonexistent/ntfy-token\"",
            ":3",
            "token_file: cannot read the secret file /nonexistent/ntfy-token",
        ),
    ];
    for (table, line, needle) in cases {
        let dir = tempfile::tempdir().expect("dir");
        let cfg = dir.path().join("config.toml");
        fs::write(
            &cfg,
            format!(
                "database = \"{}/db\"\n[[notify]]\n{table}\n",
                dir.path().display()
            ),
        )
        .expect("config");
        let out = util::run(
            util::aliwatch(dir.path())
                .arg("-c")
                .arg(&cfg)
                .arg("check-config"),
        );
        let err = util::stderr(&out);
        assert_eq!(out.status.code(), Some(78), "{table}: {err}");
        assert!(
            err.contains(&format!("config.toml{line}")),
            "{table}: want {line} in {err}"
        );
        assert!(err.contains(needle), "{table}: want {needle:?} in {err}");
        // the url's path (a topic, a webhook id) is not quoted back
        assert!(!err.contains("ntfy.sh/t\""), "{table}: {err}");
    }
}

/// Push latency and idle footprint with three channels (ntfy, webhook,
/// MQTT) against a real Dovecot with IDLE, a local receiver and a real
/// mosquitto; run by `scripts/bench-push` (release build). Latency: from
/// the IMAP APPEND of a shipping email that crosses a warning threshold to
/// the warning's arrival at each channel. Footprint: VmRSS of `run` after
/// it settled, without and with the three channels.
#[test]
#[ignore]
fn bench_push_latency_and_footprint() {
    use crate::mqtt::{Broker, EventLog, PASSWORD, USER};
    use std::time::Instant;
    let stack = MailStack::start(StackOptions::default());
    let ntfy = Receiver::start();
    let hook = Receiver::start();
    let broker = Broker::start();
    let secs: u64 = std::env::var("BENCH_SETTLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let config = |d: &Path, channels: bool| {
        fs::write(d.join("imap-password"), "secret1\n").expect("secret");
        fs::write(d.join("mqtt-password"), format!("{PASSWORD}\n")).expect("secret");
        let mut t = format!(
            r#"database = "{d}/aliwatch.db"
timezone = "UTC"
[imap]
host = "localhost"
port = {port}
security = "tls"
username = "alice"
password_file = "{d}/imap-password"
ca_file = "{ca}"
idle = true
[digest]
enabled = false
"#,
            d = d.display(),
            port = stack.imaps_port,
            ca = stack.ca_pem().display()
        );
        if channels {
            t += &format!(
                r#"
[[notify]]
name = "phone"
type = "ntfy"
url = "{ntfy}"
token_file = "{d}/ntfy-token"
[[notify]]
name = "hook"
type = "webhook"
url = "{hook}"
token_file = "{d}/hook-secret"
[[notify]]
name = "ha"
type = "mqtt"
url = "mqtt://127.0.0.1:{mqtt}"
username = "{USER}"
password_file = "{d}/mqtt-password"
"#,
                ntfy = ntfy.url("/t"),
                hook = hook.url("/h"),
                mqtt = broker.port,
                d = d.display()
            );
        }
        t
    };
    let rss = |pid: u32| -> String {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    };
    let now = Utc::now();
    // five orders already in the mailbox (extraction tables built)
    for i in 0..5 {
        let o = format!("81234567000030{i:02}");
        stack.append(
            "alice",
            "INBOX",
            &shipping_email(
                &o,
                &format!("LP0099900003{i:04}"),
                now - chrono::Duration::days(20),
            ),
            None,
        );
    }
    for channels in [false, true] {
        let w = World::new(|d| config(d, channels));
        let log = fs::File::create(w.dir.path().join("run.log")).expect("log");
        let mut run = w
            .cmd(&["run"])
            .env("ALIWATCH_LOG", "info")
            .stderr(log)
            .spawn()
            .expect("run");
        let pid = run.id();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = fs::read_to_string(w.dir.path().join("run.log")).unwrap_or_default();
            if log.contains("aliwatch running") {
                break;
            }
            assert!(Instant::now() < deadline, "{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(secs));
        let settled = rss(pid);
        println!(
            "bench: VmRSS after {secs} s, {} channels: {settled}",
            if channels { 3 } else { 0 }
        );
        if channels {
            let events = EventLog::start(broker.port);
            let mut lat = Vec::new();
            for i in 0..5 {
                let o = format!("81234567000040{i:02}");
                let t0 = Instant::now();
                stack.append(
                    "alice",
                    "INBOX",
                    &shipping_email(
                        &o,
                        &format!("LP0099900004{i:04}"),
                        now - chrono::Duration::days(55),
                    ),
                    None,
                );
                let id = format!("warning:{o}:7d");
                let mut at: [Option<Duration>; 3] = [None; 3];
                while at.iter().any(Option::is_none) {
                    assert!(
                        t0.elapsed() < Duration::from_secs(30),
                        "no push for {id}: {at:?}"
                    );
                    if at[0].is_none()
                        && ntfy
                            .got()
                            .iter()
                            .any(|g| g.headers.get("x-aliwatch-id") == Some(&id))
                    {
                        at[0] = Some(t0.elapsed());
                    }
                    if at[1].is_none()
                        && hook
                            .got()
                            .iter()
                            .any(|g| g.method == "POST" && webhook_id(g) == id)
                    {
                        at[1] = Some(t0.elapsed());
                    }
                    if at[2].is_none() && events.ids().contains(&id) {
                        at[2] = Some(t0.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                let ms: Vec<u128> = at
                    .iter()
                    .map(|d| d.unwrap_or_default().as_millis())
                    .collect();
                println!(
                    "bench: APPEND → warning ntfy {} ms, webhook {} ms, mqtt {} ms",
                    ms[0], ms[1], ms[2]
                );
                lat.push(ms.into_iter().max().unwrap_or(0));
            }
            lat.sort_unstable();
            println!(
                "bench: latency to the last channel: min {} median {} max {} ms",
                lat[0], lat[2], lat[4]
            );
            println!("bench: VmRSS after the pushes: {}", rss(pid));
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let _ = run.wait();
    }
}

/// Issue 21: a receiver that answers slowly (15 s) held up every later
/// channel: ntfy got its first of 12 events after 180 s. Each channel
/// delivers on its own now.
#[test]
fn a_webhook_answering_after_15_s_delays_ntfy_by_nothing() {
    let ntfy = Receiver::start();
    let hook = Receiver::start();
    for _ in 0..12 {
        hook.push_fault(Fault::Hang(Duration::from_secs(15)));
    }
    let w = World::new(|d| push_config(d, &ntfy.url("/t"), &hook.url("/h"), ""));
    w.import(&two_orders());
    let started = std::time::Instant::now();
    let mut sync = util::Reaped(
        w.cmd(&["sync"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sync"),
    );
    util::wait_for(Duration::from_secs(10), "ntfy's first event", || {
        (!ntfy.got().is_empty()).then_some(())
    });
    let first = started.elapsed();
    assert!(first < Duration::from_secs(2), "ntfy waited {first:?}");
    // The webhook is still in its first slow answer; ntfy has them all.
    let want = expected_ids(&w.status(), &["protection_warning", "action_needed"]);
    util::wait_for(Duration::from_secs(5), "every ntfy event", || {
        let (ok, _) = tally(&ntfy.got(), ntfy_id);
        (ok.keys().cloned().collect::<BTreeSet<_>>() == want).then_some(())
    });
    assert!(hook.got().len() <= 1, "the webhook is still busy");
    let _ = sync.0.kill();
    eprintln!("ntfy's first event after {first:?}");
}
