//! The web face (SPEC §9) of the REAL `aliwatch run` binary on a free
//! loopback port: every endpoint, `/api/status` against `status --json
//! --all`, the calendar feed read by a real iCalendar parser (Python's
//! `icalendar`, the Debian package `scripts/test` installs), metrics
//! against the SQLite file, health, the token rules and the limits.
//!
//! The client is a few lines over a `TcpStream` on purpose: the tests need
//! to send what no polite client sends (a POST, a body on a GET, a huge
//! header) and to see the raw status line and headers.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::mailstack::free_port;
use crate::util;

const TOKEN: &str = "0123456789abcdef-web-test-token";

/// One answer: status code, headers (lower-case names), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `raw` (a whole HTTP/1.1 request) and reads the answer to EOF.
fn exchange(port: u16, raw: &[u8]) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the web face");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // The server may close early (e.g. on an oversized head): a failed
    // write still leaves its answer to read.
    let _ = s.write_all(raw);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// `METHOD path` with extra header lines.
fn request(port: u16, method: &str, path: &str, headers: &[&str]) -> Answer {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    exchange(port, raw.as_bytes())
}

fn get(port: u16, path: &str) -> Answer {
    request(port, "GET", path, &[])
}

/// A shipping email as AliExpress sends it, dated `date` (the old English
/// plain-text template, as in `e2e.rs`).
fn shipping_email(order: &str, tracking: &str, date: DateTime<Utc>) -> String {
    format!(
        "From: AliExpress <transaction@notice.aliexpress.com>\r\n\
         To: alice@example.test\r\n\
         Subject: Your order {order} has been shipped\r\n\
         Date: {date}\r\n\
         Message-ID: <web-{order}@notice.aliexpress.com>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=\"UTF-8\"\r\n\
         \r\n\
         Your order {order} has been shipped by the seller.\r\n\
         \r\n\
         SHIPPING METHOD : AliExpress Standard Shipping.\r\n\
         TRACKING NUMBER : {tracking}\r\n\
         \r\n\
         Order details: https://www.aliexpress.com/p/order/detail.html?orderId={order}\r\n",
        date = date.to_rfc2822(),
    )
}

/// A temp dir with a config (`[http]` on a free port plus `extra`), a
/// database of orders shipped `ages` days ago, and the daemon's log.
struct Site {
    dir: tempfile::TempDir,
    cfg: PathBuf,
    db: PathBuf,
    port: u16,
}

impl Site {
    fn new(http_extra: &str, extra: &str, ages: &[i64]) -> Site {
        Site::new_at(http_extra, extra, ages, Utc::now())
    }

    /// A site whose emails are dated from `now` (twins compared field by
    /// field need the same one: a second apart, their event times differ).
    fn new_at(http_extra: &str, extra: &str, ages: &[i64], now: DateTime<Utc>) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let db = d.join("aliwatch.db");
        let port = free_port();
        fs::write(d.join("http-token"), format!("{TOKEN}\n")).expect("write token");
        let cfg = d.join("config.toml");
        fs::write(
            &cfg,
            format!(
                "database = \"{}\"\ntimezone = \"UTC\"\n{extra}\n[http]\nlisten = \"127.0.0.1:{port}\"\n{http_extra}\n",
                db.display()
            ),
        )
        .expect("write config");
        let site = Site { dir, cfg, db, port };
        let mails = site.dir.path().join("mails");
        fs::create_dir(&mails).expect("mkdir");
        for (i, age) in ages.iter().enumerate() {
            let order = format!("81234567{:08}", 5000 + i);
            let number = format!("LP00777{:09}", 5000 + i);
            let mail = shipping_email(&order, &number, now - chrono::Duration::days(*age));
            fs::write(mails.join(format!("{i}.eml")), mail).expect("write mail");
        }
        if !ages.is_empty() {
            let out = util::run(&mut site.cmd(&["import", &mails.display().to_string()]));
            assert!(out.status.success(), "import: {}", util::stderr(&out));
        }
        site
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = util::aliwatch(&self.dir.path().join("home"));
        c.arg("-c").arg(&self.cfg).args(args);
        c
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("run.log")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts `run` (debug logs) and waits until the web face answers.
    fn start(&self) -> Running<'_> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open run.log");
        let mut c = self.cmd(&["run"]);
        c.env("ALIWATCH_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = c.spawn().expect("spawn aliwatch run");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the web face did not come up; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Running { site: self, child }
    }

    fn status_all(&self) -> Value {
        let out = util::run(&mut self.cmd(&["status", "--json", "--all"]));
        assert!(out.status.success(), "status: {}", util::stderr(&out));
        serde_json::from_str(&util::stdout(&out)).expect("JSON")
    }

    fn sql(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(&self.db).expect("database opens");
        c.busy_timeout(Duration::from_secs(10)).expect("busy");
        c
    }
}

/// A running daemon, stopped with SIGTERM when dropped.
struct Running<'a> {
    site: &'a Site,
    child: Child,
}

impl Running<'_> {
    fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                assert!(st.success(), "run exited {st}; log:\n{}", self.site.log());
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("run did not stop; log:\n{}", self.site.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `v` without its `generated_at` (two documents made a second apart).
fn undated(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("generated_at");
    }
    v
}

/// The value of the sample `series` (`name{labels}`) in a metrics text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

// Ages: shipped 3 and 30 days ago (protection running), 65 days ago
// (protection ended, dispute still open), 80 days ago (completed by
// AliExpress 20 days ago) and 200 days ago (completed long ago).
const AGES: [i64; 5] = [3, 30, 65, 80, 200];

#[test]
fn web_endpoints_answer_on_a_running_daemon() {
    let site = Site::new("", "", &AGES);
    // Ledger rows and a counter as `run` and `sync` write them, so that the
    // metrics can be compared with the database.
    {
        let c = site.sql();
        for (key, state) in [
            ("digest:2026-01-01", "sent"),
            ("digest:2026-01-02", "sent"),
            ("digest:2026-01-03", "pending"),
        ] {
            c.execute(
                "INSERT INTO notifications (channel, key, kind, digest_date, message_id, state, created_at)
                 VALUES ('email', ?1, 'digest', '2026-01-01', '<m@x>', ?2, '2026-01-01T00:00:00Z')",
                (key, state),
            )
            .expect("insert ledger row");
        }
        c.execute(
            "INSERT INTO meta (key, value) VALUES ('counter:tracking_requests:17track:ok', '41')",
            [],
        )
        .expect("insert counter");
    }
    let run = site.start();
    let port = site.port;

    // /api/status is `status --json --all`.
    let api = get(port, "/api/status");
    assert_eq!(api.status, 200, "{api:?}");
    assert_eq!(api.header("content-type"), Some("application/json"));
    assert_eq!(api.header("cache-control"), Some("no-store"));
    let api_json: Value = serde_json::from_str(&api.body).expect("JSON");
    assert_eq!(undated(api_json), undated(site.status_all()));

    // The dashboard: needs action first, completed orders, escaped, no JS.
    let page = get(port, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(page.header("refresh").is_some());
    assert!(page
        .header("content-security-policy")
        .is_some_and(|c| c.contains("default-src 'none'")));
    let b = &page.body;
    let action = b.find("Needs your action").expect("needs action section");
    let transit = b.find("In transit").expect("transit section");
    assert!(action < transit, "{b}");
    assert!(b.contains("Open a dispute by"), "{b}");
    let completed = b
        .find("Completed in the last 60 days (1)")
        .expect("completed section");
    let recent = b
        .find("orderId=8123456700005003")
        .expect("the order completed 20 days ago");
    assert!(completed < recent);
    assert!(
        !b.contains("orderId=8123456700005004"),
        "completed 140 days ago: not shown"
    );
    assert!(b.contains("https://www.aliexpress.com/p/order/detail.html?orderId=8123456700005000"));
    assert!(!b.contains("<script"));

    // HEAD answers without a body.
    let head = request(port, "HEAD", "/", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    // Metrics match the database and the status report.
    let m = get(port, "/metrics");
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));
    let status = site.status_all();
    let orders = status["orders"].as_array().expect("orders");
    for state in ["shipped", "protection_ended", "completed", "delivered"] {
        let n = orders.iter().filter(|o| o["state"] == state).count() as f64;
        assert_eq!(
            sample(&m.body, &format!("aliwatch_orders{{state=\"{state}\"}}")),
            Some(n),
            "{state}\n{}",
            m.body
        );
    }
    let need = orders
        .iter()
        .filter(|o| {
            o["state"] != "completed" && o["needs_action"].as_array().is_some_and(|a| !a.is_empty())
        })
        .count() as f64;
    assert_eq!(sample(&m.body, "aliwatch_need_action"), Some(need));
    let parcels: i64 = site
        .sql()
        .query_row(
            "SELECT COUNT(*) FROM parcels WHERE replaced_by IS NULL",
            [],
            |r| r.get(0),
        )
        .expect("count");
    let listed: f64 = m
        .body
        .lines()
        .filter(|l| l.starts_with("aliwatch_parcels{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(listed, parcels as f64);
    let db_count = |state: &str| -> f64 {
        site.sql()
            .query_row(
                "SELECT COUNT(*) FROM notifications WHERE channel = 'email' AND state = ?1",
                [state],
                |r| r.get::<_, i64>(0),
            )
            .expect("count") as f64
    };
    assert_eq!(
        sample(
            &m.body,
            "aliwatch_notifications_total{channel=\"email\",state=\"sent\"}"
        ),
        Some(db_count("sent"))
    );
    assert_eq!(
        sample(&m.body, "aliwatch_notifications_pending{channel=\"email\"}"),
        Some(db_count("pending"))
    );
    assert_eq!(
        sample(
            &m.body,
            "aliwatch_tracking_requests_total{provider=\"17track\",outcome=\"ok\"}"
        ),
        Some(41.0)
    );

    // Health: no mailboxes configured, the database answers.
    let h = get(port, "/healthz");
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));

    // No write endpoint, no other path, no body, no huge head.
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = request(port, method, "/api/status", &["Content-Length: 0"]);
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    assert_eq!(get(port, "/nope").status, 404);
    assert_eq!(get(port, "/../../etc/passwd").status, 404);
    assert_eq!(get(port, "/api/").status, 404);
    let body = exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(body.status, 413);
    let huge = format!("X-Big: {}", "a".repeat(64 * 1024));
    let r = request(port, "GET", "/", &[&huge]);
    assert!(r.status == 431 || r.status == 0, "{}", r.status);
    // The daemon still answers after all of that.
    assert_eq!(get(port, "/healthz").status, 200);
    run.stop();
}

#[test]
fn web_calendar_parses_in_a_real_icalendar_parser_with_stable_uids() {
    let have_parser = Command::new("/usr/bin/python3")
        .args(["-c", "import icalendar"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have_parser,
        "python3-icalendar is missing (scripts/test installs it: apt-get install python3-icalendar)"
    );
    let site = Site::new("", "", &AGES);
    let run = site.start();
    let first = get(site.port, "/calendar.ics");
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("content-type"),
        Some("text/calendar; charset=utf-8")
    );
    let second = get(site.port, "/calendar.ics");
    run.stop();
    let run = site.start();
    let third = get(site.port, "/calendar.ics");
    run.stop();

    // What a real parser reads: (UID, start date, summary, alarms).
    let parse = |ics: &str| -> Vec<(String, String, String, usize)> {
        let file = site.dir.path().join("feed.ics");
        fs::write(&file, ics).expect("write feed");
        let script = r#"
import json, sys, icalendar
cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())
assert cal.get('VERSION') == '2.0', cal.get('VERSION')
out = []
for ev in cal.walk('VEVENT'):
    start = ev.decoded('DTSTART')
    end = ev.decoded('DTEND')
    assert type(start).__name__ == 'date', type(start)
    assert (end - start).days == 1
    out.append([str(ev.get('UID')), start.isoformat(), str(ev.get('SUMMARY')), len(ev.walk('VALARM'))])
print(json.dumps(out))
"#;
        let out = Command::new("/usr/bin/python3")
            .args(["-c", script])
            .arg(&file)
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "icalendar rejected the feed: {}\n{ics}",
            util::stderr(&out)
        );
        serde_json::from_str(&util::stdout(&out)).expect("parser output")
    };
    let events = parse(&first.body);
    assert_eq!(
        events,
        parse(&second.body),
        "the same feed on a second request"
    );
    assert_eq!(events, parse(&third.body), "the same feed after a restart");

    // One event per active order's protection end, one more per
    // protection_ended order's dispute deadline; two alarms each
    // (warn_before 7d, 2d by default).
    let status = site.status_all();
    let mut want = BTreeSet::new();
    for o in status["orders"].as_array().expect("orders") {
        let id = o["order_id"].as_str().expect("id");
        if o["state"] == "completed" {
            continue;
        }
        if let Some(d) = o["protection_ends"].as_str() {
            want.insert((format!("protection-ends-{id}@aliwatch"), d.to_string()));
        }
        if o["state"] == "protection_ended" {
            let d = o["dispute_until"].as_str().expect("dispute_until");
            want.insert((format!("dispute-until-{id}@aliwatch"), d.to_string()));
        }
    }
    let got: BTreeSet<(String, String)> = events
        .iter()
        .map(|(u, d, _, _)| (u.clone(), d.clone()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(events.len(), want.len(), "UIDs are unique");
    assert_eq!(
        want.len(),
        4,
        "three active orders, one of them past its protection end"
    );
    assert!(events
        .iter()
        .all(|(_, _, s, alarms)| !s.is_empty() && *alarms == 2));

    // Physical lines: CRLF, at most 75 octets.
    for l in first.body.split("\r\n") {
        assert!(l.len() <= 75, "{l:?}");
        assert!(!l.contains('\n'));
    }
    // `aliwatch calendar` prints the same feed (DTSTAMP is the moment).
    let out = util::run(&mut site.cmd(&["calendar"]));
    assert!(out.status.success(), "{}", util::stderr(&out));
    let no_stamp = |s: &str| -> String {
        s.split("\r\n")
            .filter(|l| !l.starts_with("DTSTAMP:"))
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    assert_eq!(no_stamp(&util::stdout(&out)), no_stamp(&first.body));
}

#[test]
fn web_token_rules_401_without_200_with_header_or_query() {
    let site = Site::new(
        &format!("token_file = \"{}\"", "http-token"),
        "",
        &AGES[..1],
    );
    let run = site.start();
    let port = site.port;
    for path in ["/", "/api/status", "/calendar.ics", "/metrics", "/healthz"] {
        let r = get(port, path);
        assert_eq!(r.status, 401, "{path} without a token");
        assert!(r
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")));
        assert!(
            !r.body.contains("8123456"),
            "{path} shows nothing without a token"
        );
        let bearer = format!("Authorization: Bearer {TOKEN}");
        assert_eq!(
            request(port, "GET", path, &[&bearer]).status,
            200,
            "{path} with the header"
        );
        assert_eq!(
            get(port, &format!("{path}?token={TOKEN}")).status,
            200,
            "{path} with ?token="
        );
        assert_eq!(get(port, &format!("{path}?x=1&token={TOKEN}")).status, 200);
    }
    let wrong = [
        "Authorization: Bearer wrong-token-of-some-length".to_string(),
        format!("Authorization: Basic {TOKEN}"),
        format!("Authorization: Bearer {TOKEN}x"),
        format!("Authorization: Bearer {}", &TOKEN[..TOKEN.len() - 1]),
    ];
    for h in &wrong {
        assert_eq!(request(port, "GET", "/api/status", &[h]).status, 401, "{h}");
    }
    assert_eq!(get(port, "/api/status?token=nope").status, 401);
    assert_eq!(get(port, "/api/status?tokens=x").status, 401);
    // Writing is refused whatever the token.
    let bearer = format!("Authorization: Bearer {TOKEN}");
    assert_eq!(
        request(port, "POST", "/api/status", &[&bearer, "Content-Length: 0"]).status,
        405
    );
    run.stop();
    // The token is never logged (the log is at debug level).
    let log = site.log();
    assert!(
        log.contains("web request"),
        "requests are logged at debug:\n{log}"
    );
    assert!(!log.contains(TOKEN), "the token is in the log:\n{log}");
}

#[test]
fn web_public_listen_without_token_is_a_config_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("config.toml");
    let check = |toml: &str, what: &str| -> String {
        fs::write(&cfg, toml).expect("write config");
        for args in [&["check-config"][..], &["run"][..]] {
            let out = util::run(
                util::aliwatch(&dir.path().join("home"))
                    .arg("-c")
                    .arg(&cfg)
                    .args(args),
            );
            assert_eq!(
                out.status.code(),
                Some(78),
                "{what}: {args:?}: {}",
                util::stderr(&out)
            );
        }
        let out = util::run(
            util::aliwatch(&dir.path().join("home"))
                .arg("-c")
                .arg(&cfg)
                .arg("check-config"),
        );
        util::stderr(&out)
    };
    let db = format!("database = \"{}/db.sqlite\"\n", dir.path().display());
    let e = check(
        &format!("{db}[http]\nlisten = \"0.0.0.0:8787\"\n"),
        "public listen",
    );
    assert!(e.contains("config.toml:3:"), "{e}");
    assert!(e.contains("token_file"), "{e}");
    assert!(e.contains("127.0.0.1:8787"), "{e}");
    let e = check(
        &format!("{db}[http]\nlisten = \"[::]:8787\"\n"),
        "public v6 listen",
    );
    assert!(e.contains("token_file"), "{e}");
    let e = check(
        &format!("{db}[http]\nlisten = \"nonsense\"\n"),
        "bad address",
    );
    assert!(e.contains("listen:"), "{e}");
    let e = check(
        &format!("{db}[http]\nlisten = \"127.0.0.1:8787\"\nport = 1\n"),
        "unknown key",
    );
    assert!(e.contains("port"), "{e}");
    // A token that cannot be read, or is too short: 78, the key named,
    // the token itself never printed.
    let e = check(
        &format!("{db}[http]\nlisten = \"0.0.0.0:8787\"\ntoken_file = \"missing-token\"\n"),
        "missing token file",
    );
    assert!(e.contains("token_file"), "{e}");
    fs::write(dir.path().join("short"), "abc123\n").expect("write");
    let e = check(
        &format!("{db}[http]\nlisten = \"0.0.0.0:8787\"\ntoken_file = \"short\"\n"),
        "short token",
    );
    assert!(e.contains("shorter than 16"), "{e}");
    assert!(!e.contains("abc123"), "{e}");
}

#[test]
fn web_healthz_is_503_until_every_mailbox_has_synced() {
    // An account whose server is not there: the watcher never syncs.
    let closed = free_port();
    let extra = format!(
        "[imap]\nname = \"home\"\nhost = \"127.0.0.1\"\nport = {closed}\nsecurity = \"plain\"\nusername = \"alice\"\npassword_file = \"imap-password\"\nmailboxes = [\"INBOX\", \"Orders\"]\npoll_interval = \"1m\"\n"
    );
    let site = Site::new("", &extra, &AGES[..1]);
    fs::write(site.dir.path().join("imap-password"), "secret\n").expect("write");
    let run = site.start();
    let h = get(site.port, "/healthz");
    assert_eq!(h.status, 503, "{h:?}");
    assert!(
        h.body.contains("mailbox home/INBOX: never synced"),
        "{}",
        h.body
    );
    assert!(
        h.body.contains("mailbox home/Orders: never synced"),
        "{}",
        h.body
    );
    let m = get(site.port, "/metrics");
    assert_eq!(
        sample(
            &m.body,
            "aliwatch_mailbox_connected{account=\"home\",mailbox=\"INBOX\"}"
        ),
        Some(0.0)
    );
    // A sync finished now (as the watcher records it) makes INBOX healthy;
    // an old one does not.
    let now = Utc::now();
    let c = site.sql();
    for (mailbox, at) in [
        ("INBOX", now),
        ("Orders", now - chrono::Duration::minutes(4)),
    ] {
        c.execute(
            "INSERT INTO mailbox_state (account, mailbox, uidvalidity, uid_next, last_sync_at) VALUES ('home', ?1, 1, 1, ?2)",
            (mailbox, at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        )
        .expect("insert");
    }
    let h = get(site.port, "/healthz");
    assert_eq!(h.status, 503);
    assert!(!h.body.contains("home/INBOX"), "{}", h.body);
    assert!(
        h.body.contains("mailbox home/Orders: last synced"),
        "{}",
        h.body
    );
    assert!(h.body.contains("3 × poll_interval = 3m"), "{}", h.body);
    let m = get(site.port, "/metrics");
    assert_eq!(
        sample(
            &m.body,
            "aliwatch_mailbox_last_sync_timestamp_seconds{account=\"home\",mailbox=\"INBOX\"}"
        ),
        Some(now.timestamp() as f64)
    );
    c.execute(
        "UPDATE mailbox_state SET last_sync_at = ?1 WHERE mailbox = 'Orders'",
        [now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)],
    )
    .expect("update");
    let h = get(site.port, "/healthz");
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));
    run.stop();
}

#[test]
fn web_healthz_ok_and_mailbox_connected_while_the_watcher_holds_idle() {
    use crate::mailstack::{MailStack, StackOptions};
    let mut stack = MailStack::start(StackOptions::default());
    let extra = format!(
        "[imap]\nname = \"home\"\nhost = \"localhost\"\nport = {}\nsecurity = \"tls\"\nusername = \"alice\"\npassword_file = \"imap-password\"\nca_file = \"{}\"\nmailboxes = [\"INBOX\"]\nidle = true\npoll_interval = \"10s\"\n",
        stack.imaps_port,
        stack.ca_pem().display()
    );
    let site = Site::new("", &extra, &[]);
    fs::write(site.dir.path().join("imap-password"), "secret1\n").expect("write");
    let run = site.start();
    let connected = "aliwatch_mailbox_connected{account=\"home\",mailbox=\"INBOX\"}";
    let wait = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ok() {
            assert!(
                Instant::now() < deadline,
                "timed out: {what}; log:\n{}",
                site.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait("connected and healthy", &|| {
        sample(&get(site.port, "/metrics").body, connected) == Some(1.0)
            && get(site.port, "/healthz").status == 200
    });
    // In IDLE the last sync may be old: the server would tell us.
    site.sql()
        .execute(
            "UPDATE mailbox_state SET last_sync_at = '2000-01-01T00:00:00Z'",
            [],
        )
        .expect("backdate");
    let h = get(site.port, "/healthz");
    assert_eq!(
        (h.status, h.body.as_str()),
        (200, "ok\n"),
        "IDLE counts as healthy"
    );
    // The server goes away: not connected, and an old sync is unhealthy.
    stack.stop_dovecot();
    wait("disconnected", &|| {
        sample(&get(site.port, "/metrics").body, connected) == Some(0.0)
    });
    let h = get(site.port, "/healthz");
    assert_eq!(h.status, 503, "{h:?}");
    assert!(
        h.body
            .contains("mailbox home/INBOX: last synced 2000-01-01T00:00:00Z"),
        "{}",
        h.body
    );
    run.stop();
}

/// Idle and tokenless connections cannot starve a client with the token:
/// with 100 connections that send nothing and 100 that send a request
/// without the token (each answered 401 and closed, or closed to make
/// room before it was read), `/healthz` with the
/// token still answers at once; 300 more idle connections only push the
/// longest-waiting idle ones out (at most `MAX_WAITING` wait at once).
#[test]
fn web_healthz_with_the_token_answers_while_100_tokenless_connections_are_open() {
    let site = Site::new(
        &format!("token_file = \"{}\"", "http-token"),
        "",
        &AGES[..1],
    );
    let _run = site.start();
    let port = site.port;
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    };
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let _idle: Vec<TcpStream> = (0..100).map(|_| connect()).collect();
    let tokenless: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = connect();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .expect("write");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for round in 0..3 {
        let t = Instant::now();
        let r = request(port, "GET", "/healthz", &[&bearer]);
        assert_eq!(r.status, 200, "round {round}: {}", r.body);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "round {round}: took {:?}",
            t.elapsed()
        );
    }
    // Each was answered 401 and closed, or (under load, before its request
    // was read) closed to make room; none is kept open or served.
    for mut s in tokenless {
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 401"),
            "{text:?}"
        );
    }
    let _more: Vec<TcpStream> = (0..300).map(|_| connect()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let r = request(port, "GET", "/healthz", &[&bearer]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
}

/// `aliwatch demo`: a database of its own from the embedded emails, dated
/// relative to today, served until Ctrl-C; it refuses to touch an existing
/// database.
#[test]
fn demo_serves_a_true_story_dated_today_and_refuses_an_existing_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("demo.db");
    let port = free_port();
    let mut child = util::aliwatch(&dir.path().join("home"))
        .arg("--database")
        .arg(&db)
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn demo");
    let started = std::time::Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the demo does not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let page = get(port, "/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("LED desk lamp"), "{}", page.body);
    // the order first seen in transit: no date invented, the page to check
    assert!(
        page.body.contains(
            "protection end unknown: <a href=\"https://www.aliexpress.com/p/order/detail.html?orderId=8100000000000505\">check the order page</a>"
        ),
        "{}",
        page.body
    );
    let status: Value = serde_json::from_str(&get(port, "/api/status").body).expect("json");
    let orders = status["orders"].as_array().expect("orders");
    let state = |id: &str| {
        orders
            .iter()
            .find(|o| o["order_id"] == id)
            .map(|o| o["state"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    // a few orders at different stages, few that need action
    assert_eq!(state("8100000000000101"), "shipped");
    assert_eq!(state("8100000000000303"), "delivered");
    assert_eq!(state("8100000000000404"), "awaiting_shipment");
    assert_eq!(state("8100000000000606"), "completed");
    let unknown = orders
        .iter()
        .find(|o| o["order_id"] == "8100000000000505")
        .expect("the order first seen in transit");
    assert_eq!(unknown["protection_source"], "unknown", "{unknown}");
    let needing: usize = orders
        .iter()
        .filter(|o| !o["needs_action"].as_array().expect("list").is_empty())
        .count();
    assert_eq!(needing, 2, "{status}");
    let st = std::process::Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let code = child.wait().expect("wait");
    assert!(code.success(), "{code}");

    // The database stays where it was asked for; a second demo will not
    // write into it.
    assert!(db.exists());
    let out = util::run(
        util::aliwatch(&dir.path().join("home"))
            .arg("--database")
            .arg(&db)
            .args(["demo", "--listen", "127.0.0.1:0"]),
    );
    assert_eq!(out.status.code(), Some(1), "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains("exists"),
        "{}",
        util::stderr(&out)
    );
}

/// `METHOD path` with headers and a body.
fn post(port: u16, path: &str, headers: &[&str], body: &str) -> Answer {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    exchange(port, raw.as_bytes())
}

/// Issue 21: act from the dashboard. Each write needs the token (401
/// without, also from a form or with a cookie: no CSRF), is POST only
/// (405), and changes exactly what the command line changes.
#[test]
fn web_writes_need_the_token_and_change_exactly_what_the_cli_changes() {
    let now = Utc::now();
    let site = Site::new_at("token_file = \"http-token\"", "", &AGES[..2], now);
    let twin = Site::new_at("token_file = \"http-token\"", "", &AGES[..2], now);
    let (a, b) = ("8123456700005000", "8123456700005001");
    let number = "LP00777000009999";
    let run = site.start();
    let port = site.port;
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let json = "Content-Type: application/json";
    let form = "Content-Type: application/x-www-form-urlencoded";
    let writes = [
        (format!("/api/orders/{a}/done"), "".to_string()),
        (
            format!("/api/orders/{b}/protection"),
            r#"{"extend_days": 10}"#.to_string(),
        ),
        (
            format!("/api/orders/{b}/parcels"),
            format!(r#"{{"tracking_number": "{number}"}}"#),
        ),
    ];
    let before = site.status_all();
    for (path, body) in &writes {
        // no token, a wrong one, a cookie, a form from elsewhere: never
        for headers in [
            vec![json],
            vec![json, "Authorization: Bearer wrong-token"],
            vec![form, "Origin: https://evil.example"],
        ] {
            assert_eq!(
                post(port, path, &headers, body).status,
                401,
                "{path} {headers:?}"
            );
        }
        let cookie = format!("Cookie: token={TOKEN}");
        assert_eq!(post(port, path, &[json, &cookie], body).status, 401);
        for method in ["GET", "PUT", "DELETE"] {
            let r = request(port, method, &format!("{path}?token={TOKEN}"), &[&bearer]);
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(r.header("allow"), Some("POST"));
        }
    }
    assert_eq!(
        undated(site.status_all()),
        undated(before),
        "nothing changed yet"
    );

    // The writes: JSON with the header, a form with ?token= (the page).
    let r = post(port, &writes[0].0, &[json, &bearer], &writes[0].1);
    assert_eq!(r.status, 200, "{}", r.body);
    let order: Value = serde_json::from_str(&r.body).expect("the order as JSON");
    assert_eq!(order["order_id"], a);
    assert_eq!(order["completed_reason"], "done");
    let r = post(
        port,
        &format!("{}?token={TOKEN}", writes[1].0),
        &[form],
        "extend_days=10",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("protection ends"),
        "the page says what happened: {}",
        r.body
    );
    assert!(
        r.body.contains(&format!("/?token={TOKEN}")),
        "and the way back"
    );
    let r = post(port, &writes[2].0, &[json, &bearer], &writes[2].1);
    assert_eq!(r.status, 200, "{}", r.body);

    // Bad input: 400 with the reason; an unknown order: 404.
    let r = post(
        port,
        &writes[1].0,
        &[json, &bearer],
        r#"{"extend_days": 0}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(serde_json::from_str::<Value>(&r.body).expect("json")["error"].is_string());
    let r = post(
        port,
        &writes[1].0,
        &[json, &bearer],
        r#"{"until": "tomorrow"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post(
        port,
        &writes[2].0,
        &[json, &bearer],
        r#"{"tracking_number": "8123456700005001"}"#,
    );
    assert_eq!(
        r.status, 400,
        "an order number is no tracking number: {}",
        r.body
    );
    let r = post(
        port,
        "/api/orders/8123456799999999/done",
        &[json, &bearer],
        "",
    );
    assert_eq!(r.status, 404, "{}", r.body);

    // The dashboard offers the actions, with the token it was opened with.
    let page = get(port, &format!("/?token={TOKEN}"));
    assert!(
        page.body
            .contains(&format!("action=\"/api/orders/{b}/done?token={TOKEN}\"")),
        "{}",
        page.body
    );
    assert!(page
        .header("content-security-policy")
        .is_some_and(|c| c.contains("form-action 'self'")));
    run.stop();

    // The same through the command line on the twin.
    for args in [
        vec!["done", a],
        vec!["protection", b, "--extend", "10"],
        vec!["add", number, "--order", b],
    ] {
        let out = util::run(&mut twin.cmd(&args));
        assert!(out.status.success(), "{args:?}: {}", util::stderr(&out));
    }
    assert_eq!(undated(site.status_all()), undated(twin.status_all()));
}

/// Writes always need the token, also on loopback: without `token_file`
/// there is no write at all.
#[test]
fn web_writes_without_a_token_file_are_refused() {
    let site = Site::new("", "", &AGES[..1]);
    let run = site.start();
    let r = post(site.port, "/api/orders/8123456700005000/done", &[], "");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("token_file"), "{}", r.body);
    let page = get(site.port, "/");
    assert!(
        page.body.contains("set <code>token_file</code>"),
        "{}",
        page.body
    );
    run.stop();
    assert_eq!(site.status_all()["orders"][0]["state"], "shipped");
}
