//! IMAP against a real Dovecot (see `mailstack.rs`): candidate search,
//! incremental sync, IDLE latency, reconnect after a server restart,
//! UIDVALIDITY change, TLS/STARTTLS verification, wrong password, and the
//! user's mail left unread and in place.
//!
//! The ingestion seam is observed with an [`Observer`] that records every
//! email handed to `Store::ingest_email`; assertions about the store's
//! `emails` table hold for the stub ingestion and the real one alike.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aliwatch::config::{ImapAccount, ImapAuth, Secret, Security};
use aliwatch::imap::{self, AuthRejected};
use aliwatch::pipeline::{self, Ingest, Observer};
use aliwatch::store::Store;
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::mailstack::{MailStack, StackOptions};

const CANDIDATES: &[(&str, &[u8])] = &[
    (
        "c1",
        include_bytes!("../fixtures/imap/c1_real_order_shipped.eml"),
    ),
    ("c2", include_bytes!("../fixtures/imap/c2_de_shipped.eml")),
    ("c3", include_bytes!("../fixtures/imap/c3_ru_shipped.eml")),
    ("c4", include_bytes!("../fixtures/imap/c4_fwd_shipped.eml")),
    ("c5", include_bytes!("../fixtures/imap/c5_cainiao.eml")),
    (
        "c6",
        include_bytes!("../fixtures/imap/c6_paypal_mentions_aliexpress.eml"),
    ),
];
const OTHERS: &[&[u8]] = &[
    include_bytes!("../fixtures/imap/n_amazon_dispatched_ups.eml"),
    include_bytes!("../fixtures/imap/n_flight_booking.eml"),
    include_bytes!("../fixtures/imap/n_github_notification.eml"),
    include_bytes!("../fixtures/imap/n_hosting_invoice.eml"),
    include_bytes!("../fixtures/imap/n_phone_bill.eml"),
    include_bytes!("../fixtures/imap/n_temu_shipped_yt.eml"),
];

fn account(stack: &MailStack, security: Security, password: &str) -> ImapAccount {
    ImapAccount {
        name: "test".into(),
        host: "localhost".into(),
        port: if security == Security::Tls {
            stack.imaps_port
        } else {
            stack.imap_port
        },
        security,
        username: "alice".into(),
        auth: ImapAuth::Password(Secret::Inline {
            key: "password",
            value: password.into(),
        }),
        ca_file: None,
        mailboxes: vec!["INBOX".into()],
        backfill_days: 90,
        idle: true,
        poll_interval: Duration::from_secs(300),
        max_message_size: aliwatch::config::DEFAULT_MAX_MESSAGE_SIZE,
    }
}

/// (mailbox, uidvalidity, uid, Message-ID) of every email handed over.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Handed>>>);

/// (mailbox, uidvalidity, uid, Message-ID)
type Handed = (String, u32, u32, String);

impl Seen {
    fn observer(&self) -> Observer {
        let inner = self.0.clone();
        Arc::new(move |loc, raw| {
            inner.lock().unwrap().push((
                loc.mailbox.clone(),
                loc.uidvalidity,
                loc.uid,
                message_id(raw),
            ));
        })
    }
    fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.0.lock().unwrap().iter().map(|s| s.3.clone()).collect();
        v.sort();
        v
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    async fn wait_for(&self, n: usize, limit: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if self.len() >= n {
                return Some(t0.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }
}

fn message_id(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("message-id")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn ids_of(list: &[(&str, &[u8])]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|(_, raw)| message_id(raw)).collect();
    v.sort();
    v
}

/// `raw` with a new Message-ID (a different email as far as dedup goes).
fn with_message_id(raw: &[u8], id: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut done = false;
    for line in text.split_inclusive('\n') {
        if !done && line.to_ascii_lowercase().starts_with("message-id:") {
            out.push_str(&format!("Message-ID: <{id}>\r\n"));
            done = true;
        } else {
            out.push_str(line);
        }
    }
    assert!(done, "fixture has a Message-ID");
    out.into_bytes()
}

fn store_at(path: &Path) -> Arc<Mutex<Store>> {
    Arc::new(Mutex::new(Store::open(path).expect("store opens")))
}

/// Duplicate rows in `emails` (0 with the stub ingestion and the real one).
fn duplicate_email_rows(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("db opens");
    conn.query_row(
        "SELECT COUNT(*) - COUNT(DISTINCT COALESCE(message_id, content_sha256)) FROM emails",
        [],
        |r| r.get(0),
    )
    .expect("query")
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

fn fill_inbox(stack: &MailStack) {
    for (_, raw) in CANDIDATES {
        stack.append("alice", "INBOX", raw, None);
    }
    for raw in OTHERS {
        stack.append("alice", "INBOX", raw, None);
    }
    // An AliExpress email older than the backfill window: not fetched.
    let old = with_message_id(CANDIDATES[0].1, "old-order@notice.aliexpress.com");
    stack.append("alice", "INBOX", &old, Some("01-Jan-2020 10:00:00 +0000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_fetches_only_candidates_then_nothing_and_leaves_mail_unread() {
    let stack = MailStack::start(StackOptions::default());
    fill_inbox(&stack);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let store = store_at(&db);
    let seen = Seen::default();
    let ingest = Ingest::new(store.clone()).with_observer(seen.observer());
    let acct = account(&stack, Security::Plain, "secret1");

    let s1 = imap::sync_account_once_with(&acct, &ingest, Utc::now())
        .await
        .expect("first sync");
    assert_eq!(
        seen.ids(),
        ids_of(CANDIDATES),
        "exactly the candidates, not the old one"
    );
    let m = &s1.mailboxes[0];
    assert_eq!(
        (m.candidates, m.fetched),
        (CANDIDATES.len(), CANDIDATES.len())
    );
    assert!(m.rescanned);
    let cand_bytes: usize = CANDIDATES.iter().map(|c| c.1.len()).sum();
    // bodies only for candidates (Dovecot may normalise line endings)
    assert!(
        s1.bytes_fetched() as usize <= cand_bytes + 2 * CANDIDATES.len() * 200,
        "{}",
        s1.bytes_fetched()
    );
    assert_eq!(m.uid_next, 14, "13 messages appended");
    let st = store
        .lock()
        .unwrap()
        .mailbox_state("test", "INBOX")
        .unwrap()
        .unwrap();
    assert_eq!(st.uid_next, 14);

    // The store holds exactly the AliExpress orders of the candidates (the
    // PayPal receipt that mentions AliExpress gives none).
    let want: std::collections::BTreeSet<String> = CANDIDATES
        .iter()
        .filter_map(|(_, raw)| aliwatch::extract::extract(raw).ok())
        .filter(|e| e.is_aliexpress)
        .flat_map(|e| e.orders.into_iter().filter_map(|o| o.order_id))
        .collect();
    let report = pipeline::status_report(
        &store.lock().unwrap(),
        Utc::now(),
        &aliwatch::config::Config::defaults(db.clone()).rules(),
    )
    .unwrap();
    let got: std::collections::BTreeSet<String> =
        report.orders.iter().map(|o| o.order_id.clone()).collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);

    let s2 = imap::sync_account_once_with(&acct, &ingest, Utc::now())
        .await
        .expect("second sync");
    assert_eq!((s2.fetched(), s2.mailboxes[0].candidates), (0, 0));
    assert!(!s2.mailboxes[0].rescanned);
    assert_eq!(seen.len(), CANDIDATES.len());
    assert_eq!(duplicate_email_rows(&db), 0);

    // Unread and in place.
    let all = stack.imap_cmd("alice", "EXAMINE INBOX");
    assert!(all.iter().any(|l| l.contains("* 13 EXISTS")), "{all:?}");
    let unseen = search(&stack, "UNSEEN");
    assert_eq!(unseen.len(), 13, "no \\Seen set: {unseen:?}");
    assert!(search(&stack, "DELETED").is_empty());
}

fn search(stack: &MailStack, key: &str) -> Vec<u32> {
    let pass = "secret1";
    let mut c = crate::mailstack::PlainImap::connect(stack.imap_port);
    c.cmd(&format!("LOGIN alice {pass}"), None);
    c.cmd("EXAMINE INBOX", None);
    let r = c.cmd(&format!("UID SEARCH {key}"), None);
    r.iter()
        .filter_map(|l| l.strip_prefix("* SEARCH"))
        .flat_map(|l| {
            l.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

struct Watcher {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    changes: Arc<std::sync::atomic::AtomicUsize>,
}

fn start_watcher(acct: ImapAccount, ingest: Ingest) -> Watcher {
    let cancel = CancellationToken::new();
    let changes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = changes.clone();
    let task = tokio::spawn(imap::watch_mailbox_with(
        acct,
        "INBOX".into(),
        ingest,
        cancel.clone(),
        move || {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        },
    ));
    Watcher {
        cancel,
        task,
        changes,
    }
}

impl Watcher {
    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("watcher stops promptly after cancel")
            .expect("watcher task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_hands_over_an_appended_email_within_2s() {
    let stack = Arc::new(MailStack::start(StackOptions::default()));
    stack.append("alice", "INBOX", CANDIDATES[0].1, None);
    let dir = tempfile::tempdir().unwrap();
    let seen = Seen::default();
    let ingest = Ingest::new(store_at(&dir.path().join("a.db"))).with_observer(seen.observer());
    let w = start_watcher(account(&stack, Security::Plain, "secret1"), ingest);
    seen.wait_for(1, Duration::from_secs(10))
        .await
        .expect("initial sync");
    // let the watcher enter IDLE
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..2 {
        let msg = with_message_id(CANDIDATES[1].1, &format!("idle-{i}@notice.aliexpress.com"));
        let s = stack.clone();
        blocking(move || s.append("alice", "INBOX", &msg, None)).await;
        let t = seen
            .wait_for(2 + i, Duration::from_secs(5))
            .await
            .expect("handed over");
        assert!(t < Duration::from_secs(2), "IDLE latency {t:?}");
        // unrelated mail wakes the watcher but is not fetched
        let s = stack.clone();
        blocking(move || s.append("alice", "INBOX", OTHERS[0], None)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(seen.len(), 3);
    assert!(w.changes.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_without_idle_picks_up_new_mail() {
    let stack = Arc::new(MailStack::start(StackOptions::default()));
    let dir = tempfile::tempdir().unwrap();
    let seen = Seen::default();
    let ingest = Ingest::new(store_at(&dir.path().join("a.db"))).with_observer(seen.observer());
    let mut acct = account(&stack, Security::Plain, "secret1");
    acct.idle = false;
    acct.poll_interval = Duration::from_millis(200);
    let w = start_watcher(acct, ingest);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = stack.clone();
    blocking(move || s.append("alice", "INBOX", CANDIDATES[4].1, None)).await;
    seen.wait_for(1, Duration::from_secs(3))
        .await
        .expect("polled");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_server_restart_without_loss_or_duplicates() {
    let mut stack = MailStack::start(StackOptions::default());
    stack.append("alice", "INBOX", CANDIDATES[0].1, None);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let seen = Seen::default();
    let ingest = Ingest::new(store_at(&db)).with_observer(seen.observer());
    let w = start_watcher(account(&stack, Security::Plain, "secret1"), ingest);
    seen.wait_for(1, Duration::from_secs(10))
        .await
        .expect("initial sync");
    tokio::time::sleep(Duration::from_millis(300)).await;

    stack.stop_dovecot();
    // mail arrives while the server is down (an MDA writes the Maildir)
    stack.deliver_file(
        "alice",
        &with_message_id(CANDIDATES[2].1, "down-1@notice.aliexpress.com"),
    );
    stack.deliver_file("alice", OTHERS[1]);
    stack.deliver_file(
        "alice",
        &with_message_id(CANDIDATES[3].1, "down-2@mail.example.com"),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.start_dovecot();

    seen.wait_for(3, Duration::from_secs(20))
        .await
        .expect("reconnected and synced");
    // and IDLE works on the new connection
    let stack = Arc::new(stack);
    let s = stack.clone();
    blocking(move || {
        s.append(
            "alice",
            "INBOX",
            &with_message_id(CANDIDATES[4].1, "after@cainiao.com"),
            None,
        )
    })
    .await;
    seen.wait_for(4, Duration::from_secs(5))
        .await
        .expect("idle after reconnect");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = seen.ids();
    let mut dedup = ids.clone();
    dedup.dedup();
    assert_eq!(ids, dedup, "no email handed over twice");
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(duplicate_email_rows(&db), 0);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uidvalidity_change_rescans_the_backfill_window() {
    let stack = MailStack::start(StackOptions::default());
    stack.imap_cmd("alice", "CREATE Orders");
    for (_, raw) in &CANDIDATES[..3] {
        stack.append("alice", "Orders", raw, None);
    }
    stack.append("alice", "Orders", OTHERS[2], None);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let store = store_at(&db);
    let seen = Seen::default();
    let ingest = Ingest::new(store.clone()).with_observer(seen.observer());
    let mut acct = account(&stack, Security::Plain, "secret1");
    acct.mailboxes = vec!["Orders".into()];
    let s1 = imap::sync_account_once_with(&acct, &ingest, Utc::now())
        .await
        .expect("sync 1");
    let v1 = s1.mailboxes[0].uidvalidity;
    assert_eq!(s1.fetched(), 3);

    // recreate the mailbox: new UIDVALIDITY, same emails plus one
    stack.imap_cmd("alice", "DELETE Orders");
    std::thread::sleep(Duration::from_millis(1100)); // Dovecot's UIDVALIDITY is time-based
    stack.imap_cmd("alice", "CREATE Orders");
    for (_, raw) in &CANDIDATES[..4] {
        stack.append("alice", "Orders", raw, None);
    }
    let s2 = imap::sync_account_once_with(&acct, &ingest, Utc::now())
        .await
        .expect("sync 2");
    let m = &s2.mailboxes[0];
    assert_ne!(m.uidvalidity, v1);
    assert!(m.rescanned);
    assert_eq!(
        m.fetched, 4,
        "the whole window again; dedup is ingestion's job"
    );
    assert_eq!(duplicate_email_rows(&db), 0);
    let st = store
        .lock()
        .unwrap()
        .mailbox_state("test", "Orders")
        .unwrap()
        .unwrap();
    assert_eq!((st.uidvalidity, st.uid_next), (m.uidvalidity, 5));
    let s3 = imap::sync_account_once_with(&acct, &ingest, Utc::now())
        .await
        .expect("sync 3");
    assert_eq!(s3.fetched(), 0);
    assert!(seen.0.lock().unwrap().iter().all(|s| s.0 == "Orders"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_an_unknown_ca_and_trusts_ca_file() {
    let stack = MailStack::start(StackOptions::default());
    let store = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
    let mut acct = account(&stack, Security::Tls, "secret1");
    let err = pipeline::sync_account_once(&acct, &store, Utc::now())
        .await
        .expect_err("unknown CA");
    let msg = format!("{err:#}");
    eprintln!("unknown CA: {msg}");
    assert!(
        msg.contains("TLS handshake") && msg.contains("certificate"),
        "{msg}"
    );
    assert!(
        msg.contains("UnknownIssuer") || msg.contains("unknown"),
        "{msg}"
    );

    acct.ca_file = Some(stack.ca_pem());
    pipeline::sync_account_once(&acct, &store, Utc::now())
        .await
        .expect("trusted with ca_file");

    // the host name is verified too: the certificate is not for this name
    acct.host = "127.0.0.2".into();
    assert!(pipeline::sync_account_once(&acct, &store, Utc::now())
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_verified_and_works() {
    let stack = MailStack::start(StackOptions::default());
    stack.append("alice", "INBOX", CANDIDATES[0].1, None);
    let store = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
    let mut acct = account(&stack, Security::StartTls, "secret1");
    let err = pipeline::sync_account_once(&acct, &store, Utc::now())
        .await
        .expect_err("unknown CA");
    assert!(format!("{err:#}").contains("TLS handshake"), "{err:#}");
    acct.ca_file = Some(stack.ca_pem());
    let s = pipeline::sync_account_once(&acct, &store, Utc::now())
        .await
        .expect("starttls");
    assert_eq!(s.fetched(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_clear_error_and_never_shows_the_password() {
    let stack = MailStack::start(StackOptions::default());
    let store = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
    let acct = account(&stack, Security::Plain, "not-the-password");
    let err = pipeline::sync_account_once(&acct, &store, Utc::now())
        .await
        .expect_err("rejected");
    assert!(err.downcast_ref::<AuthRejected>().is_some(), "{err:#}");
    let msg = format!("{err:#}");
    eprintln!("wrong password: {msg}");
    assert!(
        msg.contains("rejected the login") && msg.contains("alice"),
        "{msg}"
    );
    assert!(!msg.contains("not-the-password"), "{msg}");

    // a password file and a password command work the same way
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pw");
    std::fs::write(&f, "secret1\n").unwrap();
    let mut acct = account(&stack, Security::Plain, "");
    acct.auth = ImapAuth::Password(Secret::File {
        key: "password_file",
        path: f,
    });
    pipeline::sync_account_once(&acct, &store, Utc::now())
        .await
        .expect("password_file");
    acct.auth = ImapAuth::Password(Secret::Command {
        key: "password_command",
        command: "echo secret1".into(),
    });
    pipeline::sync_account_once(&acct, &store, Utc::now())
        .await
        .expect("password_command");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_with_a_wrong_password_retries_slowly_and_stops_on_cancel() {
    let stack = MailStack::start(StackOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let ingest = Ingest::new(store_at(&dir.path().join("a.db")));
    let w = start_watcher(account(&stack, Security::Plain, "wrong"), ingest);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fails = stack.dovecot_log().matches("auth failed").count();
    assert!(
        (1..=2).contains(&fails),
        "retried in a tight loop: {fails}\n{}",
        stack.dovecot_log()
    );
    w.stop().await;
}

/// Benchmark (run by `scripts/bench-imap`, not part of the normal suite): a
/// 20,000-message INBOX with 200 AliExpress emails; first sync time and
/// bytes fetched, then the IDLE new-mail latency (APPEND → handed over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with scripts/bench-imap"]
async fn bench_imap_first_sync_and_idle_latency() {
    use std::os::unix::fs::PermissionsExt;
    const TOTAL: usize = 20_000;
    const ALI: usize = 200;
    let stack = Arc::new(MailStack::start(StackOptions::default()));
    let cur = stack.maildir("alice").join("cur");
    let t0 = Instant::now();
    let mut total_bytes = 0usize;
    for i in 0..TOTAL {
        let msg: Vec<u8> = if i % (TOTAL / ALI) == 0 {
            let (_, raw) = CANDIDATES[(i / (TOTAL / ALI)) % CANDIDATES.len()];
            with_message_id(raw, &format!("bench-{i}@notice.aliexpress.com"))
        } else {
            filler(i)
        };
        total_bytes += msg.len();
        let p = cur.join(format!("1700000000.M{i}P1.bench:2,"));
        std::fs::write(&p, &msg).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    println!(
        "bench: wrote {TOTAL} messages ({:.1} MB) in {:.2?}",
        total_bytes as f64 / 1e6,
        t0.elapsed()
    );
    let t0 = Instant::now();
    let st = stack.imap_cmd("alice", "STATUS INBOX (MESSAGES UIDNEXT)");
    println!(
        "bench: Dovecot's first indexing of the Maildir (STATUS): {:.2?} {:?}",
        t0.elapsed(),
        st.first()
    );

    let dir = tempfile::tempdir().unwrap();
    let seen = Seen::default();
    let ingest = Ingest::new(store_at(&dir.path().join("a.db"))).with_observer(seen.observer());
    let acct = account(&stack, Security::Plain, "secret1");
    let t0 = Instant::now();
    let s = imap::sync_account_once_with(&acct, &ingest, Utc::now())
        .await
        .expect("first sync");
    let first = t0.elapsed();
    let m = &s.mailboxes[0];
    println!(
        "bench: first sync of {TOTAL} messages: {first:.2?}; candidates {}, bodies fetched {}, body bytes {} ({:.2}% of the mailbox)",
        m.candidates,
        m.fetched,
        m.bytes_fetched,
        100.0 * m.bytes_fetched as f64 / total_bytes as f64
    );
    assert_eq!(m.fetched, ALI);
    let t0 = Instant::now();
    let s2 = imap::sync_account_once_with(&acct, &ingest, Utc::now())
        .await
        .expect("second sync");
    println!(
        "bench: second sync (nothing new): {:.2?}, fetched {}",
        t0.elapsed(),
        s2.fetched()
    );

    let w = start_watcher(acct, ingest);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut lat = Vec::new();
    for i in 0..10 {
        let n = seen.len();
        let msg = with_message_id(
            CANDIDATES[i % CANDIDATES.len()].1,
            &format!("lat-{i}@notice.aliexpress.com"),
        );
        let s = stack.clone();
        let t0 = Instant::now();
        blocking(move || s.append("alice", "INBOX", &msg, None)).await;
        seen.wait_for(n + 1, Duration::from_secs(10))
            .await
            .expect("handed over");
        lat.push(t0.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    lat.sort();
    println!(
        "bench: IDLE latency APPEND -> ingestion over {} emails: min {:.0?}, median {:.0?}, max {:.0?}",
        lat.len(),
        lat[0],
        lat[lat.len() / 2],
        lat[lat.len() - 1]
    );
    w.stop().await;
}

/// An unrelated email of a few KB (no AliExpress or Cainiao words).
fn filler(i: usize) -> Vec<u8> {
    let senders = [
        "news@shop.example.com",
        "billing@isp.example.net",
        "friend@example.org",
        "noreply@bank.example",
    ];
    let mut body = String::new();
    for k in 0..(20 + i % 60) {
        body.push_str(&format!(
            "Line {k} of message {i}: lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n"
        ));
    }
    format!(
        "From: {}\r\nTo: alice@example.test\r\nSubject: Message number {i}\r\nDate: Tue, 10 Mar 2026 10:00:00 +0000\r\nMessage-ID: <filler-{i}@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
        senders[i % senders.len()]
    )
    .into_bytes()
}

/// `aliwatch sync` through the binary: a rejected password is a clear
/// error and exit 1, and the password appears nowhere in the output.
#[test]
fn sync_with_a_wrong_password_exits_1_without_showing_it() {
    let stack = MailStack::start(StackOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("imap-password");
    std::fs::write(&pw, "not-the-password-42\n").unwrap();
    let cfg = dir.path().join("aliwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "database = \"{db}\"\n[imap]\nhost = \"localhost\"\nport = {port}\nsecurity = \"tls\"\nusername = \"alice\"\npassword_file = \"{pw}\"\nca_file = \"{ca}\"\n",
            db = dir.path().join("a.db").display(),
            port = stack.imaps_port,
            pw = pw.display(),
            ca = stack.ca_pem().display(),
        ),
    )
    .unwrap();
    let out = crate::util::run(
        crate::util::aliwatch(dir.path())
            .arg("-c")
            .arg(&cfg)
            .arg("sync"),
    );
    let all = format!("{}{}", crate::util::stdout(&out), crate::util::stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("rejected the login"), "{all}");
    assert!(!all.contains("not-the-password-42"), "{all}");
}
