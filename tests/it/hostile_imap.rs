//! A hostile IMAP server: a scripted raw-TCP server (std threads, no mock
//! library) that answers with garbage, announces enormous literals, sends
//! huge SEARCH answers, lies about and leaves out messages, and serves
//! emails built to break the parser. Against it, aliwatch must keep its
//! logs short, its memory bounded, its position honest and its mail.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aliwatch::config::{ImapAccount, ImapAuth, Secret, Security};
use aliwatch::pipeline::Ingest;
use aliwatch::store::Store;
use chrono::Utc;

use crate::hostile_input::{nested_rfc822, nested_spelt};
use crate::util::*;

/// What the server holds and how it misbehaves.
#[derive(Default, Clone)]
pub struct Script {
    pub uidvalidity: u32,
    /// EXISTS; when `synthetic`, messages 1..=exists with UID = number.
    pub exists: u32,
    pub uidnext: u32,
    pub synthetic: bool,
    /// Real messages by UID (sequence number = rank).
    pub messages: BTreeMap<u32, Vec<u8>>,
    /// RFC822.SIZE to report instead of the real one.
    pub sizes: BTreeMap<u32, u64>,
    /// UIDs left out of every body FETCH answer.
    pub omit: HashSet<u32>,
    /// Sent instead of an answer to UID SEARCH.
    pub search_garbage: Option<Vec<u8>>,
    /// A body FETCH answers with a literal announced this large.
    pub announce_literal: Option<u64>,
}

/// The running server; `commands` holds every command line received.
pub struct HostileImap {
    pub port: u16,
    pub commands: Arc<Mutex<Vec<String>>>,
    pub script: Arc<Mutex<Script>>,
}

impl HostileImap {
    pub fn start(script: Script) -> HostileImap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let port = listener.local_addr().expect("addr").port();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script));
        let (c, s) = (commands.clone(), script.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (c, s) = (c.clone(), s.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &c, &s);
                });
            }
        });
        HostileImap {
            port,
            commands,
            script,
        }
    }

    pub fn account(&self) -> ImapAccount {
        ImapAccount {
            name: "hostile".into(),
            host: "127.0.0.1".into(),
            port: self.port,
            security: Security::Plain,
            username: "u".into(),
            auth: ImapAuth::Password(Secret::Inline {
                key: "password",
                value: "p".into(),
            }),
            ca_file: None,
            mailboxes: vec!["INBOX".into()],
            backfill_days: 90,
            idle: false,
            poll_interval: Duration::from_secs(300),
            max_message_size: aliwatch::config::DEFAULT_MAX_MESSAGE_SIZE,
        }
    }

    /// A config file for the binary, pointing at this server.
    pub fn config(&self, home: &std::path::Path) -> std::path::PathBuf {
        let cfg = home.join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "database = {:?}\n[imap]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\nusername = \"u\"\npassword = \"p\"\nidle = false\n",
                home.join("a.db").display().to_string(),
                self.port
            ),
        )
        .expect("writes");
        cfg
    }

    pub fn commands(&self) -> Vec<String> {
        self.commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The UIDs of the mailbox in sequence order.
fn all_uids(s: &Script) -> Vec<u32> {
    if s.synthetic {
        (1..=s.exists).collect()
    } else {
        s.messages.keys().copied().collect()
    }
}

/// Expands a UID set (`1:3,7,9:*`) against the mailbox.
fn expand(set: &str, uids: &[u32]) -> Vec<u32> {
    let max = uids.last().copied().unwrap_or(0);
    let mut want = HashSet::new();
    for part in set.split(',') {
        let (a, b) = part.split_once(':').unwrap_or((part, part));
        let p = |x: &str| {
            if x == "*" {
                max
            } else {
                x.parse().unwrap_or(0)
            }
        };
        let (a, b) = (p(a), p(b));
        let (a, b) = (a.min(b), a.max(b));
        want.insert((a, b));
    }
    uids.iter()
        .copied()
        .filter(|u| want.iter().any(|(a, b)| u >= a && u <= b))
        .collect()
}

/// A response that fails to parse only after a literal near the size
/// limit: async-imap formatted the whole buffer into its error twice (once
/// as decimal numbers), 13 times the response (26 MB → 343 MB of RSS). Its
/// parse errors now quote an excerpt (vendor/async-imap), so the peak stays
/// a small multiple of the response limit.
#[test]
fn an_imap_parse_error_after_a_large_literal_costs_a_small_multiple_of_the_response() {
    const LITERAL: usize = 24 * 1024 * 1024;
    let mut g = format!("* 1 FETCH (UID 1 BODY[] {{{LITERAL}}}\r\n").into_bytes();
    g.extend(std::iter::repeat_n(b'\x01', LITERAL));
    g.extend_from_slice(b"%%%)\r\n");
    let server = HostileImap::start(Script {
        uidvalidity: 1,
        exists: 1,
        uidnext: 2,
        search_garbage: Some(g),
        ..Script::default()
    });
    let home = tempfile::tempdir().expect("tempdir");
    let cfg = server.config(home.path());
    let mut cmd = measured(home.path());
    cmd.arg("-c").arg(&cfg).arg("sync");
    let (out, rss) = run_measured(&mut cmd);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.len() < 4096, "{} bytes of log", err.len());
    assert!(!err.contains("1, 1, 1, 1"), "{err}");
    let kb = rss.expect("/usr/bin/time reports the max RSS");
    // the response itself is held (24 MB) while it is read; the error
    // must not multiply it (measured: 433 MB before, 40 MB after)
    assert!(kb < 2 * (LITERAL as u64 / 1024) + 32_000, "max RSS {kb} KB");
}

fn serve(conn: TcpStream, log: &Mutex<Vec<String>>, script: &Mutex<Script>) -> std::io::Result<()> {
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    w.write_all(b"* OK hostile IMAP ready\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        log.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cmd.clone());
        let (tag, rest) = cmd.split_once(' ').unwrap_or((&cmd, ""));
        let upper = rest.to_ascii_uppercase();
        let s = script.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let uids = all_uids(&s);
        if upper.starts_with("CAPABILITY") {
            write!(w, "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n")?;
        } else if upper.starts_with("LOGIN") {
            write!(w, "{tag} OK logged in\r\n")?;
        } else if upper.starts_with("EXAMINE") || upper.starts_with("SELECT") {
            write!(
                w,
                "* {} EXISTS\r\n* OK [UIDVALIDITY {}] v\r\n* OK [UIDNEXT {}] n\r\n{tag} OK [READ-ONLY] done\r\n",
                s.exists, s.uidvalidity, s.uidnext
            )?;
        } else if upper.starts_with("UID SEARCH") {
            if let Some(g) = &s.search_garbage {
                w.write_all(g)?;
                w.flush()?;
                std::thread::sleep(Duration::from_millis(300));
                return Ok(());
            }
            // An optional leading sequence set selects by message number.
            let args: Vec<&str> = rest.split_whitespace().skip(2).collect();
            let mut found: Vec<u32> = uids.clone();
            if let Some(first) = args.first() {
                if first.contains(':')
                    && first
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == ':' || c == '*')
                {
                    let seqs: Vec<u32> = (1..=uids.len() as u32).collect();
                    let pick: HashSet<u32> = expand(first, &seqs).into_iter().collect();
                    found = uids
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| pick.contains(&(*i as u32 + 1)))
                        .map(|(_, u)| *u)
                        .collect();
                }
            }
            if let Some(i) = args.iter().position(|a| a.eq_ignore_ascii_case("UID")) {
                if let Some(set) = args.get(i + 1) {
                    let keep: HashSet<u32> = expand(set, &uids).into_iter().collect();
                    found.retain(|u| keep.contains(u));
                }
            }
            let mut out = String::from("* SEARCH");
            for u in found {
                out.push(' ');
                out.push_str(&u.to_string());
            }
            write!(w, "{out}\r\n{tag} OK done\r\n")?;
        } else if upper.starts_with("UID FETCH") {
            let set = rest.split_whitespace().nth(2).unwrap_or("");
            let want = expand(set, &uids);
            if upper.contains("RFC822.SIZE") {
                let mut out = String::new();
                for u in &want {
                    let real = s.messages.get(u).map_or(1000, |m| m.len() as u64);
                    let size = s.sizes.get(u).copied().unwrap_or(real);
                    out.push_str(&format!("* {u} FETCH (UID {u} RFC822.SIZE {size})\r\n"));
                }
                write!(w, "{out}{tag} OK done\r\n")?;
            } else {
                if let Some(n) = s.announce_literal {
                    let u = want.first().copied().unwrap_or(1);
                    write!(w, "* 1 FETCH (UID {u} BODY[] {{{n}}}\r\nFrom: x\r\n")?;
                    w.flush()?;
                    std::thread::sleep(Duration::from_millis(500));
                    return Ok(());
                }
                for u in want {
                    if s.omit.contains(&u) {
                        continue;
                    }
                    let body = s.messages.get(&u).cloned().unwrap_or_default();
                    write!(
                        w,
                        "* {u} FETCH (UID {u} INTERNALDATE \"02-Dec-2026 08:00:00 +0000\" BODY[] {{{}}}\r\n",
                        body.len()
                    )?;
                    w.write_all(&body)?;
                    w.write_all(b")\r\n")?;
                }
                write!(w, "{tag} OK done\r\n")?;
            }
        } else if upper.starts_with("LOGOUT") {
            write!(w, "* BYE bye\r\n{tag} OK done\r\n")?;
            return Ok(());
        } else {
            write!(w, "{tag} OK done\r\n")?;
        }
        w.flush()?;
    }
}

fn email(i: u32) -> Vec<u8> {
    let raw = std::fs::read(fixture("emails/real/aliexpress_order_shipped.eml")).expect("fixture");
    let mut v = format!("Message-ID: <hostile-{i}@test>\r\n").into_bytes();
    v.extend_from_slice(&raw);
    v
}

fn new_store() -> (tempfile::TempDir, Arc<Mutex<Store>>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("a.db")).expect("opens");
    (dir, Arc::new(Mutex::new(store)))
}

async fn sync(
    server: &HostileImap,
    store: &Arc<Mutex<Store>>,
) -> anyhow::Result<aliwatch::imap::SyncSummary> {
    aliwatch::imap::sync_account_once_with(
        &server.account(),
        &Ingest::new(store.clone()),
        Utc::now(),
    )
    .await
}

/// The stored position of the hostile INBOX.
fn position(store: &Arc<Mutex<Store>>) -> Option<u32> {
    store
        .lock()
        .expect("lock")
        .mailbox_state("hostile", "INBOX")
        .expect("reads")
        .map(|s| s.uid_next)
}

/// Runs the binary under /usr/bin/time; returns (output, max RSS in KB).
fn run_measured(cmd: &mut std::process::Command) -> (std::process::Output, Option<u64>) {
    let out = run(cmd);
    let rss = stderr(&out)
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .and_then(|v| v.trim().parse().ok());
    (out, rss)
}

fn measured(home: &std::path::Path) -> std::process::Command {
    let c = aliwatch(home);
    let prog = c.get_program().to_owned();
    let mut t = std::process::Command::new("/usr/bin/time");
    t.env_clear();
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            t.env(k, v);
        }
    }
    t.args(["-f", "maxrss_kb=%M"]).arg(prog);
    t
}

#[test]
fn garbage_from_the_server_is_quoted_as_a_short_excerpt() {
    for garbage in [
        // one unparseable line of 1 MB (ends with CRLF: async-imap's parse
        // error then carries the whole buffer)
        {
            let mut g = b"* SEARCH 1 2 3 ".to_vec();
            g.extend(std::iter::repeat_n(b'\x01', 1_000_000 - 20));
            g.extend_from_slice(b"\r\n");
            g
        },
        // 4 MB without a line end
        vec![b'7'; 4 << 20],
    ] {
        let server = HostileImap::start(Script {
            uidvalidity: 1,
            exists: 1,
            uidnext: 2,
            search_garbage: Some(garbage),
            ..Script::default()
        });
        let home = tempfile::tempdir().expect("tempdir");
        let cfg = server.config(home.path());
        let mut cmd = measured(home.path());
        cmd.arg("-c").arg(&cfg).arg("sync");
        let (out, rss) = run_measured(&mut cmd);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.len() < 4096, "{} bytes of log", err.len());
        assert!(!err.contains("1, 1, 1, 1"), "{err}");
        assert!(err.contains("UID SEARCH"), "{err}");
        if let Some(kb) = rss {
            assert!(kb < 200_000, "max RSS {kb} KB");
        }
    }
}

#[test]
fn an_announced_huge_literal_is_refused_before_it_is_buffered() {
    let server = HostileImap::start(Script {
        uidvalidity: 1,
        exists: 1,
        uidnext: 2,
        messages: BTreeMap::from([(1, email(1))]),
        announce_literal: Some(400_000_000),
        ..Script::default()
    });
    let home = tempfile::tempdir().expect("tempdir");
    let cfg = server.config(home.path());
    let mut cmd = measured(home.path());
    cmd.arg("-c").arg(&cfg).arg("sync");
    let (out, rss) = run_measured(&mut cmd);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("400000000-byte literal"), "{err}");
    assert!(err.contains("max_message_size"), "{err}");
    if let Some(kb) = rss {
        assert!(kb < 150_000, "max RSS {kb} KB");
    }
}

#[tokio::test]
async fn bodies_are_fetched_in_batches_by_bytes_and_oversized_ones_skipped() {
    let mb = 1024 * 1024;
    let mut messages = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    for uid in 1..=8 {
        messages.insert(uid, email(uid));
        sizes.insert(uid, 3 * mb); // announced: three emails per 8 MB batch at most
    }
    // one larger than max_message_size, and one that breaks parsers
    messages.insert(9, email(9));
    sizes.insert(9, 30 * mb);
    messages.insert(10, nested_rfc822(80_000));
    let server = HostileImap::start(Script {
        uidvalidity: 7,
        exists: 10,
        uidnext: 11,
        messages,
        sizes,
        ..Script::default()
    });
    let (_d, store) = new_store();
    let s = sync(&server, &store).await.expect("syncs");
    let m = &s.mailboxes[0];
    assert_eq!((m.candidates, m.fetched, m.too_large), (10, 9, 1), "{m:?}");
    assert_eq!(
        (m.new_emails + m.duplicates, m.unparseable),
        (8, 1),
        "{m:?}"
    );
    assert_eq!(position(&store), Some(11));
    let body_fetches: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.contains("BODY.PEEK[]"))
        .collect();
    for c in &body_fetches {
        assert!(
            !c.contains(" 9 ") && !c.contains(",9") && !c.contains(":9"),
            "fetched the oversized one: {c}"
        );
    }
    assert!(body_fetches.len() >= 4, "{body_fetches:?}");
}

/// The crash loop of issue 23: 15,000 levels spelt `Content-Type :` (RFC
/// 5322 §4.5) aborted `run` with a stack overflow before the mailbox
/// position was recorded, at every restart. Now both nests are recorded as
/// unparseable, the good emails are stored and the position moves past all.
#[tokio::test]
async fn deeply_nested_emails_in_any_spelling_are_skipped_and_the_position_recorded() {
    let mut messages = BTreeMap::new();
    for uid in 1..=3 {
        messages.insert(uid, email(uid));
    }
    messages.insert(4, nested_spelt(15_000, "Content-Type : message/rfc822"));
    messages.insert(5, nested_spelt(60_000, "content-type:\r\n message/rfc822"));
    let server = HostileImap::start(Script {
        uidvalidity: 7,
        exists: 5,
        uidnext: 6,
        messages,
        ..Script::default()
    });
    let (_d, store) = new_store();
    let s = sync(&server, &store).await.expect("syncs");
    let m = &s.mailboxes[0];
    assert_eq!(
        (m.new_emails + m.duplicates, m.unparseable),
        (3, 2),
        "{m:?}"
    );
    assert_eq!(position(&store), Some(6));
}

#[tokio::test]
async fn a_uid_left_out_of_a_fetch_is_retried_then_given_up_with_a_warning() {
    let messages: BTreeMap<u32, Vec<u8>> = (1..=5).map(|u| (u, email(u))).collect();
    let server = HostileImap::start(Script {
        uidvalidity: 3,
        exists: 5,
        uidnext: 6,
        messages,
        omit: HashSet::from([3]),
        ..Script::default()
    });
    let (_d, store) = new_store();
    for pass in 1..aliwatch::imap::sync::MAX_FETCH_MISSES {
        let s = sync(&server, &store).await.expect("syncs");
        assert_eq!(s.mailboxes[0].missing, 1, "pass {pass}");
        assert_eq!(
            position(&store),
            Some(3),
            "held below the missing UID in pass {pass}"
        );
    }
    // the last pass gives up and moves on
    sync(&server, &store).await.expect("syncs");
    assert_eq!(position(&store), Some(6));

    // a UID that comes back on a later pass is taken, and the position moves
    let messages: BTreeMap<u32, Vec<u8>> = (1..=5).map(|u| (u, email(u + 10))).collect();
    let server = HostileImap::start(Script {
        uidvalidity: 3,
        exists: 5,
        uidnext: 6,
        messages,
        omit: HashSet::from([2]),
        ..Script::default()
    });
    let (_d2, store) = new_store();
    sync(&server, &store).await.expect("syncs");
    assert_eq!(position(&store), Some(2));
    server.script.lock().expect("lock").omit.clear();
    let s = sync(&server, &store).await.expect("syncs");
    assert_eq!(s.mailboxes[0].missing, 0, "{s:?}");
    assert_eq!(position(&store), Some(6));
}
