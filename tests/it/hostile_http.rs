//! A hostile tracking API: raw TCP servers (no mock library) that
//! redirect with the key, answer without end, list numbers nobody asked
//! about, refuse connections, present an untrusted certificate or never
//! answer. aliwatch must keep its key, its memory and its word: bounded
//! reads, only the numbers it asked for, and errors that name the cause.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aliwatch::config::{Provider, Secret, TrackingConfig};
use aliwatch::decide::{Rules, TrackingRules};
use aliwatch::model::TrackingNumber;
use aliwatch::pipeline::RefreshSummary;
use aliwatch::store::Store;
use aliwatch::tracking::{Pacing, Tracker};
use chrono::Utc;

use crate::standin::{read_request, HttpReq};
use crate::util::*;

const KEY: &str = "hostile-test-17token-secret";
const NUMBER: &str = "LP00000000000021";

type Handler = dyn Fn(&HttpReq, &mut TcpStream) + Send + Sync;

/// A server on loopback that answers every request with `handler`, and
/// counts requests and the `17token` headers it saw.
pub struct Hostile {
    pub port: u16,
    pub requests: Arc<AtomicUsize>,
    pub tokens: Arc<Mutex<Vec<String>>>,
}

impl Hostile {
    pub fn start(handler: Arc<Handler>) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let tokens = Arc::new(Mutex::new(Vec::new()));
        let (r, t) = (requests.clone(), tokens.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let (handler, r, t) = (handler.clone(), r.clone(), t.clone());
                std::thread::spawn(move || {
                    let Ok(req) = read_request(&conn) else { return };
                    r.fetch_add(1, Ordering::SeqCst);
                    if let Some(k) = req.headers.get("17token") {
                        t.lock().unwrap_or_else(|e| e.into_inner()).push(k.clone());
                    }
                    handler(&req, &mut conn);
                });
            }
        });
        Hostile {
            port,
            requests,
            tokens,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn respond(conn: &mut TcpStream, status: &str, headers: &str, body: &str) {
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    );
}

/// The numbers in a 17TRACK request body.
fn asked(req: &HttpReq) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["number"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn pacing() -> Pacing {
    Pacing {
        min_interval: Duration::from_millis(1),
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(20),
        max_retries: 1,
        max_retry_after: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_millis(800),
    }
}

struct Env {
    _dir: tempfile::TempDir,
    store: Store,
    tracker: Tracker,
    rules: Rules,
}

fn env(provider: Provider, base_url: &str, numbers: &[&str]) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(&dir.path().join("a.db")).expect("opens");
    for n in numbers {
        store
            .add_parcel(&TrackingNumber::new(n), None, false, Utc::now())
            .expect("adds");
    }
    let cfg = TrackingConfig::single(
        provider,
        Some(Secret::Inline {
            key: "api_key",
            value: KEY.into(),
        }),
        base_url.into(),
        Duration::from_secs(6 * 3600),
    );
    let rules = Rules {
        tracking: TrackingRules {
            providers: cfg.providers,
            refresh_interval: cfg.refresh_interval,
        },
        ..Rules::default()
    };
    Env {
        _dir: dir,
        store,
        tracker: Tracker::with_pacing(&cfg, pacing()).expect("tracker"),
        rules,
    }
}

impl Env {
    async fn pass(&mut self) -> RefreshSummary {
        aliwatch::pipeline::tracking_pass(&mut self.store, &self.tracker, &self.rules, Utc::now())
            .await
            .expect("a pass never fails on provider trouble")
    }
}

#[tokio::test]
async fn the_api_key_never_follows_a_redirect() {
    let elsewhere = Hostile::start(Arc::new(|_req: &HttpReq, c: &mut TcpStream| {
        respond(
            c,
            "200 OK",
            "",
            r#"{"code":0,"data":{"accepted":[],"rejected":[]}}"#,
        )
    }));
    for status in [
        "302 Found",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let target = format!("{}/track/v2.2/register", elsewhere.url());
        let redirector = Hostile::start(Arc::new(move |_req: &HttpReq, c: &mut TcpStream| {
            respond(c, status, &format!("Location: {target}\r\n"), "")
        }));
        let mut env = env(Provider::SeventeenTrack, &redirector.url(), &[NUMBER]);
        let s = env.pass().await;
        assert_eq!(s.failed, 1, "{s:?}");
        let code = &status[..3];
        assert!(
            s.errors
                .iter()
                .any(|e| e.contains(code) && e.contains("redirect")),
            "{s:?}"
        );
        assert_eq!(redirector.requests.load(Ordering::SeqCst), 1, "not retried");
    }
    assert_eq!(elsewhere.requests.load(Ordering::SeqCst), 0);
    assert!(elsewhere.tokens.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn tracking_answers_are_read_up_to_a_limit() {
    // An endless body without a length: the client stops reading.
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    let endless = Hostile::start(Arc::new(move |_req: &HttpReq, c: &mut TcpStream| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"code\":0,\"data\":{\"accepted\":[");
        let chunk = vec![b' '; 1 << 20];
        // at most 256 MB, so that a client without a limit fails the test
        // instead of filling the machine
        for _ in 0..256 {
            if c.write_all(&chunk).is_err() {
                return;
            }
            w.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
    }));
    let mut env1 = env(Provider::SeventeenTrack, &endless.url(), &[NUMBER]);
    let s = env1.pass().await;
    assert_eq!(s.failed, 1, "{s:?}");
    assert!(s.errors.iter().any(|e| e.contains("larger than")), "{s:?}");
    std::thread::sleep(Duration::from_millis(200));
    let sent = written.load(Ordering::SeqCst);
    assert!(sent < 64 << 20, "the client read {sent} bytes");

    // An announced 1.5 GB: refused before reading.
    let announced = Hostile::start(Arc::new(|_req: &HttpReq, c: &mut TcpStream| {
        let _ = c.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1500000000\r\nConnection: close\r\n\r\n{",
        );
        std::thread::sleep(Duration::from_secs(2));
    }));
    let mut env2 = env(Provider::Cainiao, &announced.url(), &[NUMBER]);
    let started = std::time::Instant::now();
    let s = env2.pass().await;
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(s.failed, 1, "{s:?}");
    assert!(s.errors.iter().any(|e| e.contains("larger than")), "{s:?}");
}

#[tokio::test]
async fn only_numbers_that_were_asked_for_are_acted_on() {
    // Every answer lists the asked numbers and 70,000 others.
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    let flood = Hostile::start(Arc::new(move |req: &HttpReq, c: &mut TcpStream| {
        // `getquota` (read before registering) names no numbers: a plain
        // reading, so that the flood is timed on the answers that do.
        if req.path.ends_with("/getquota") {
            let q = r#"{"code":0,"data":{"quota_total":200,"quota_used":0,"quota_remain":200,"today_used":0,"max_track_daily":0}}"#;
            return respond(c, "200 OK", "", q);
        }
        let mut numbers = asked(req);
        s2.fetch_add(numbers.len(), Ordering::SeqCst);
        numbers.extend((0..70_000).map(|i| format!("LP{:014}", 10_000_000 + i)));
        let items: Vec<serde_json::Value> = numbers
            .iter()
            .map(|n| serde_json::json!({"number": n, "carrier": 190271}))
            .collect();
        let body = serde_json::json!({"code": 0, "data": {"accepted": items, "rejected": []}});
        respond(c, "200 OK", "", &body.to_string());
    }));
    let mine = ["LP00000000000021", "LP00000000000038", "LP00000000000045"];
    let mut env = env(Provider::SeventeenTrack, &flood.url(), &mine);
    let s = env.pass().await;
    assert!(s.requests <= 4, "getquota, register, gettrackinfo: {s:?}");
    assert!(flood.requests.load(Ordering::SeqCst) <= 4);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        6,
        "each number asked once per endpoint: {s:?}"
    );
    let (_, _, parcels) = env.store.counts().expect("counts");
    assert_eq!(parcels, 3, "no parcel was created from an answer");
}

#[tokio::test]
async fn failed_tracking_requests_name_their_cause() {
    // connection refused: a port with no listener
    let closed = TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let mut e = env(
        Provider::Cainiao,
        &format!("http://127.0.0.1:{port}"),
        &[NUMBER],
    );
    let s = e.pass().await;
    assert!(
        s.errors.iter().any(|x| x.contains("connection refused")),
        "{s:?}"
    );

    // a server that accepts and never answers
    let silent = Hostile::start(Arc::new(|_req: &HttpReq, _c: &mut TcpStream| {
        std::thread::sleep(Duration::from_secs(3));
    }));
    let mut e = env(Provider::Cainiao, &silent.url(), &[NUMBER]);
    let s = e.pass().await;
    assert!(s.errors.iter().any(|x| x.contains("timed out")), "{s:?}");

    // an HTTP status
    let teapot = Hostile::start(Arc::new(|_req: &HttpReq, c: &mut TcpStream| {
        respond(c, "418 I'm a teapot", "", "")
    }));
    let mut e = env(Provider::Cainiao, &teapot.url(), &[NUMBER]);
    let s = e.pass().await;
    assert!(s.errors.iter().any(|x| x.contains("418")), "{s:?}");

    // a certificate no root vouches for
    let tls = TlsServer::start();
    let mut e = env(
        Provider::Cainiao,
        &format!("https://localhost:{}", tls.port),
        &[NUMBER],
    );
    let s = e.pass().await;
    assert!(s.errors.iter().any(|x| x.contains("certificate")), "{s:?}");
}

#[test]
fn sync_exits_1_when_tracking_requests_fail() {
    let redirector = Hostile::start(Arc::new(|_req: &HttpReq, c: &mut TcpStream| {
        respond(c, "302 Found", "Location: http://example.invalid/\r\n", "")
    }));
    let home = tempfile::tempdir().expect("tempdir");
    let db = home.path().join("a.db");
    let cfg = home.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "database = {:?}\n[tracking]\nprovider = \"cainiao\"\nbase_url = {:?}\n",
            db.display().to_string(),
            redirector.url()
        ),
    )
    .expect("writes");
    let out = run(aliwatch(home.path())
        .arg("-c")
        .arg(&cfg)
        .args(["add", NUMBER]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(aliwatch(home.path()).arg("-c").arg(&cfg).arg("sync"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("302"), "{}", stderr(&out));
}

/// A TLS server with a self-signed certificate (made by openssl), which
/// completes no handshake with a verifying client.
struct TlsServer {
    port: u16,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let (key, cert) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
        let ok = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(ok.success());
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(&cert)
            .expect("cert")
            .collect::<Result<_, _>>()
            .expect("certs");
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key).expect("a key");
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut tcp) = conn else { continue };
                let config = config.clone();
                std::thread::spawn(move || {
                    let Ok(mut tls) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let _ = tls.complete_io(&mut tcp);
                    let mut buf = [0u8; 1024];
                    let _ = tcp.read(&mut buf);
                });
            }
        });
        TlsServer { port, _dir: dir }
    }
}
