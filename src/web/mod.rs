//! The local web face (SPEC §9, `[http]`): a read-only HTTP server inside
//! `run`, on the daemon's tokio runtime, reading the database through its
//! own read-only connections.
//!
//! | path | what |
//! |---|---|
//! | `GET /` | the dashboard ([`crate::render::dashboard`]) |
//! | `GET /api/status` | exactly `status --json --all` |
//! | `GET /calendar.ics` | the deadline feed ([`crate::render::calendar`]), = `aliwatch calendar` |
//! | `GET /metrics` | Prometheus text ([`crate::render::metrics`]) |
//! | `GET /healthz` | `200 ok`, or `503` and the reasons ([`health`]) |
//!
//! The rules every request passes first ([`guard`]), in this order: a
//! method other than `GET`/`HEAD` is `405` (nothing here writes); a
//! request with a body is `413`; with `token_file`, a request without
//! `Authorization: Bearer TOKEN` or `?token=TOKEN` is `401` (the token is
//! compared in constant time, as SHA-256 digests, and never logged: logs
//! name the path only). Every answer carries `Cache-Control: no-store`,
//! `Referrer-Policy: no-referrer` (the token may be in the page's URL),
//! `X-Content-Type-Options: nosniff` and a Content-Security-Policy that
//! allows no script, no frame and nothing from elsewhere.
//!
//! Limits: [`MAX_CONNECTIONS`] connections at once (more wait in the
//! kernel's backlog), request head at most [`MAX_HEAD_BYTES`] (else `431`)
//! and read within [`HEAD_TIMEOUT`], a connection kept at most
//! [`CONNECTION_LIFETIME`], [`WORKERS`] requests reading the database at
//! once, HTTP/1.1 only. There are no files served, so
//! there is no directory to list.

pub mod health;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::live::Live;
use crate::store::Store;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// The largest request head (request line and headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a client may take to send a request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection (with keep-alive) is served before it is
/// closed after its current request.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// The dashboard reloads itself this often (`Refresh` header).
pub const DASHBOARD_REFRESH_SECS: u32 = 300;
/// Requests that read the database at once (each on a blocking thread
/// with its own connection); more wait their turn. Two keep both cores
/// busy, and few threads keep the allocator's per-thread arenas, and so
/// the daemon's memory, small.
pub const WORKERS: usize = 2;

/// What every handler shares.
pub struct Web {
    cfg: Arc<Config>,
    /// SHA-256 of the token, when `token_file` is set.
    token: Option<[u8; 32]>,
    live: Arc<Live>,
    /// Read-only connections kept for reuse (at most [`WORKERS`]).
    pool: Mutex<Vec<Store>>,
    workers: tokio::sync::Semaphore,
}

impl Web {
    /// The web face of `cfg` (reads `token_file` now: a problem is a
    /// config error, exit 78).
    pub fn new(cfg: Arc<Config>, live: Arc<Live>) -> Result<Arc<Web>> {
        let token = match cfg.http.as_ref().and_then(|h| h.token.as_ref()) {
            Some(secret) => {
                let t = secret.resolve()?;
                Some(digest(t.as_bytes()))
            }
            None => None,
        };
        Ok(Arc::new(Web {
            cfg,
            token,
            live,
            pool: Mutex::new(Vec::new()),
            workers: tokio::sync::Semaphore::new(WORKERS),
        }))
    }

    /// Runs `f` with a read-only connection on the blocking pool.
    async fn with_store<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Web, &Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _turn = self
            .workers
            .acquire()
            .await
            .context("the web face is shutting down")?;
        let web = self.clone();
        tokio::task::spawn_blocking(move || {
            let taken = web.pool.lock().ok().and_then(|mut p| p.pop());
            let store = match taken {
                Some(s) => s,
                None => Store::open_read_only(&web.cfg.database)?,
            };
            let out = f(&web, &store);
            // A connection that failed is not reused.
            if out.is_ok() {
                if let Ok(mut p) = web.pool.lock() {
                    if p.len() < WORKERS {
                        p.push(store);
                    }
                }
            }
            out
        })
        .await
        .context("the web request's worker stopped")?
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Binds `[http] listen` (before READY=1, so a taken port stops the start
/// with a clear message).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("http.listen {addr}: cannot listen"))
}

/// The routes, behind [`guard`].
pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/api/status", get(api_status))
        .route("/calendar.ics", get(calendar))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(web.clone(), guard))
        .with_state(web)
}

/// Serves `listener` until `cancel` fires.
pub async fn serve(listener: TcpListener, web: Arc<Web>, cancel: CancellationToken) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let app = router(web);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, _peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    tracing::warn!(error = %e, "web: accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let end = tokio::select! {
                r = conn.as_mut() => Some(r),
                _ = tokio::time::sleep(CONNECTION_LIFETIME) => None,
                _ = cancel.cancelled() => None,
            };
            let result = match end {
                Some(r) => r,
                None => {
                    conn.as_mut().graceful_shutdown();
                    match tokio::time::timeout(Duration::from_secs(5), conn).await {
                        Ok(r) => r,
                        Err(_) => Ok(()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "web: connection ended with an error");
            }
        });
    }
}

/// The rules before every route (see the module doc), and the headers
/// after it.
async fn guard(State(web): State<Arc<Web>>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = if method != Method::GET && method != Method::HEAD {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD: the web face is read-only\n",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        r
    } else if has_body(&req) {
        plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "requests to the web face carry no body\n",
        )
    } else if !authorised(&web, &req) {
        let mut r = plain(
            StatusCode::UNAUTHORIZED,
            "a token is required: send Authorization: Bearer TOKEN or add ?token=TOKEN\n",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"aliwatch\""),
        );
        r
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    // The path only: the query may hold the token.
    tracing::debug!(%method, path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "web request");
    resp
}

fn has_body(req: &Request) -> bool {
    let h = req.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.to_str().map_or(true, |s| s.trim() != "0"))
}

/// Whether the request carries the token (always, without `token_file`).
fn authorised(web: &Web, req: &Request) -> bool {
    let Some(want) = &web.token else {
        return true;
    };
    let matches = |given: &[u8]| bool::from(digest(given).ct_eq(want));
    let from_header = req
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .any(|t| matches(t.as_bytes()));
    from_header || query_values(req.uri().query().unwrap_or(""), "token").any(|t| matches(&t))
}

/// The percent-decoded values of `name` in a query string.
fn query_values<'q>(query: &'q str, name: &'q str) -> impl Iterator<Item = Vec<u8>> + 'q {
    query.split('&').filter_map(move |pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// A 500 that names the problem without the details (they go to the log).
fn failed(what: &str, e: &anyhow::Error) -> Response {
    tracing::error!(what, "web: {e:#}");
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        "aliwatch could not read its database; see its log\n",
    )
}

fn typed(content_type: &'static str, body: String) -> Response {
    ([(header::CONTENT_TYPE, content_type)], Body::from(body)).into_response()
}

async fn not_found() -> Response {
    plain(
        StatusCode::NOT_FOUND,
        "not found; the web face has /, /api/status, /calendar.ics, /metrics and /healthz\n",
    )
}

async fn dashboard(State(web): State<Arc<Web>>) -> Response {
    let r = web
        .with_store(|w, s| {
            let now = Utc::now();
            let rules = w.cfg.rules();
            let report = crate::pipeline::status_report(s, now, &rules)?;
            Ok(crate::render::dashboard::render_dashboard(
                &report, &rules, now,
            ))
        })
        .await;
    match r {
        Ok(html) => {
            let mut resp = typed("text/html; charset=utf-8", html);
            resp.headers_mut()
                .insert("refresh", HeaderValue::from(DASHBOARD_REFRESH_SECS));
            resp
        }
        Err(e) => failed("dashboard", &e),
    }
}

async fn api_status(State(web): State<Arc<Web>>) -> Response {
    let r = web
        .with_store(|w, s| crate::pipeline::status_json(s, Utc::now(), &w.cfg.rules(), true))
        .await;
    match r {
        Ok(json) => typed("application/json", json),
        Err(e) => failed("status", &e),
    }
}

async fn calendar(State(web): State<Arc<Web>>) -> Response {
    let r = web
        .with_store(|w, s| crate::pipeline::calendar(s, Utc::now(), &w.cfg.rules()))
        .await;
    match r {
        Ok(ics) => {
            let mut resp = typed("text/calendar; charset=utf-8", ics);
            resp.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("inline; filename=\"aliwatch.ics\""),
            );
            resp
        }
        Err(e) => failed("calendar", &e),
    }
}

/// The configured mailboxes: (account, mailbox, poll interval, IDLE on).
fn mailboxes(cfg: &Config) -> Vec<(String, String, Duration)> {
    cfg.imap
        .iter()
        .flat_map(|a| {
            a.mailboxes
                .iter()
                .map(move |m| (a.name.clone(), m.clone(), a.poll_interval))
        })
        .collect()
}

/// Each configured provider's availability and quota at `now`.
fn provider_metrics(
    cfg: &Config,
    state: &crate::facts::TrackingState,
    now: chrono::DateTime<Utc>,
) -> Vec<crate::render::metrics::ProviderMetric> {
    let off = state.unavailable_now(now);
    cfg.tracking
        .providers
        .iter()
        .map(|p| crate::render::metrics::ProviderMetric {
            provider: p.as_str().to_owned(),
            unavailable_until: off
                .iter()
                .find(|(q, _, _)| *q == p)
                .and_then(|(_, _, left)| chrono::Duration::from_std(*left).ok())
                .map(|left| now + left),
            quota_remaining: (p == crate::model::Provider::SeventeenTrack)
                .then_some(state.quota_remain)
                .flatten(),
        })
        .collect()
}

async fn metrics(State(web): State<Arc<Web>>) -> Response {
    use crate::render::metrics::{render_metrics, MailboxMetric, MetricsInput};
    let r = web
        .with_store(|w, s| {
            let now = Utc::now();
            let report = crate::pipeline::status_report(s, now, &w.cfg.rules())?;
            let syncs = s.mailbox_syncs()?;
            let input = MetricsInput {
                mailboxes: mailboxes(&w.cfg)
                    .into_iter()
                    .map(|(account, mailbox, _)| MailboxMetric {
                        last_sync: syncs.get(&(account.clone(), mailbox.clone())).copied(),
                        connected: w.live.mailbox(&account, &mailbox).connected,
                        account,
                        mailbox,
                    })
                    .collect(),
                tracking_requests: s.counters(crate::pipeline::tracking::TRACKING_REQUESTS)?,
                notifications: s.notification_counts()?,
                notifications_pending: s.notifications_pending()?,
                tracking_providers: provider_metrics(&w.cfg, &s.tracking_state()?, now),
            };
            Ok(render_metrics(&report, &input))
        })
        .await;
    match r {
        Ok(text) => typed("text/plain; version=0.0.4; charset=utf-8", text),
        Err(e) => failed("metrics", &e),
    }
}

async fn healthz(State(web): State<Arc<Web>>) -> Response {
    let boxes = mailboxes(&web.cfg);
    let r = web
        .with_store(|_, s| {
            s.ping()?;
            s.mailbox_syncs()
        })
        .await;
    let problems = match r {
        Err(e) => vec![format!("database: {e:#}")],
        Ok(syncs) => {
            let mbs: Vec<health::MailboxHealth> = boxes
                .into_iter()
                .map(|(account, mailbox, poll)| health::MailboxHealth {
                    last_sync: syncs.get(&(account.clone(), mailbox.clone())).copied(),
                    idling: web.live.mailbox(&account, &mailbox).idling,
                    poll_interval: poll,
                    account,
                    mailbox,
                })
                .collect();
            health::problems(&mbs, Utc::now())
        }
    };
    if problems.is_empty() {
        typed("text/plain; charset=utf-8", "ok\n".into())
    } else {
        let mut resp = typed(
            "text/plain; charset=utf-8",
            format!("unhealthy\n{}\n", problems.join("\n")),
        );
        *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_tokens_are_percent_decoded_and_found_among_other_parameters() {
        let cases: [(&str, &[&str]); 6] = [
            ("token=abc", &["abc"]),
            ("x=1&token=a%2Fb%3D&y=2", &["a/b="]),
            ("token=a+b", &["a b"]),
            ("token=%zz", &["%zz"]),
            ("token=%4", &["%4"]),
            ("tokens=x&token", &[""]),
        ];
        for (q, want) in cases {
            let got: Vec<String> = query_values(q, "token")
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .collect();
            assert_eq!(got, want, "{q}");
        }
    }
}
