//! The local web face (SPEC §9, `[http]`): an HTTP server inside `run`, on
//! the daemon's tokio runtime. Reads go through its own read-only database
//! connections; the few writes ([`write`]) open a connection of their own
//! and change exactly what the command line would.
//!
//! | path | what |
//! |---|---|
//! | `GET /` | the dashboard ([`crate::render::dashboard`]) |
//! | `GET /api/status` | exactly `status --json --all` |
//! | `GET /calendar.ics` | the deadline feed ([`crate::render::calendar`]), = `aliwatch calendar` |
//! | `GET /metrics` | Prometheus text ([`crate::render::metrics`]) |
//! | `GET /healthz` | `200 ok`, or `503` and the reasons ([`health`]) |
//! | `POST /api/orders/{order_id}/done`, `…/protection`, `…/parcels` | the writes ([`write`]): `done`, `protection`, `add --order` |
//!
//! The rules every request passes first ([`guard`]), in this order (a
//! write under `/api/orders/` has its own: POST only, the token always); a
//! method other than `GET`/`HEAD` is `405`; a
//! request with a body is `413`; with `token_file`, a request without
//! `Authorization: Bearer TOKEN` or `?token=TOKEN` is `401` (the token is
//! compared in constant time, as SHA-256 digests, and never logged: logs
//! name the path only). Every answer carries `Cache-Control: no-store`,
//! `Referrer-Policy: no-referrer` (the token may be in the page's URL),
//! `X-Content-Type-Options: nosniff` and a Content-Security-Policy that
//! allows no script, no frame and nothing from elsewhere.
//!
//! Limits: [`MAX_CONNECTIONS`] connections open at once (more wait in the
//! kernel's backlog), of which at most [`MAX_WAITING`] have not yet sent a
//! request (when one more arrives, the one that has waited longest is
//! closed: idle connections cannot starve the others), request head at
//! most [`MAX_HEAD_BYTES`] (else `431`) and read within [`HEAD_TIMEOUT`],
//! a connection kept at most [`CONNECTION_LIFETIME`], [`WORKERS`] requests
//! reading the database at once, HTTP/1.1 only. A request without the
//! token is answered `401` and its connection closed, so a client without
//! the token never holds a connection past one request. There are no
//! files served, so there is no directory to list.

pub mod health;
pub mod write;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::live::Live;
use crate::store::Store;

/// Connections open at once (waiting for a request or served).
pub const MAX_CONNECTIONS: usize = 256;
/// Connections open at once that have not sent a request yet; beyond it the
/// oldest of them is closed.
pub const MAX_WAITING: usize = 64;
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
                let t = secret
                    .resolve()
                    .map_err(crate::config::SecretError::into_anyhow)?;
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
        .route("/api/orders/{order_id}/done", post(write::done))
        .route("/api/orders/{order_id}/protection", post(write::protection))
        .route("/api/orders/{order_id}/parcels", post(write::parcels))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(web.clone(), guard))
        .with_state(web)
}

/// Serves `listener` until `cancel` fires.
pub async fn serve(listener: TcpListener, web: Arc<Web>, cancel: CancellationToken) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let app = router(web);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let waiting = Arc::new(Waiting::default());
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
        let (id, evicted) = waiting.add();
        // The first request of the connection takes it off the waiting list.
        let service = {
            let app = app.clone();
            let waiting = waiting.clone();
            tower::service_fn(move |req: Request<hyper::body::Incoming>| {
                waiting.remove(id);
                let mut app = app.clone();
                async move {
                    use tower::Service as _;
                    app.call(req.map(Body::new)).await
                }
            })
        };
        let service = hyper_util::service::TowerToHyperService::new(service);
        let cancel = cancel.clone();
        let waiting = waiting.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _listed = Listed(waiting, id);
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
                // Closed to make room: it had sent nothing.
                _ = evicted.cancelled() => return,
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

/// The connections that have not sent a request yet, oldest first, each
/// with the token that closes it.
#[derive(Default)]
struct Waiting {
    list: Mutex<(u64, std::collections::VecDeque<(u64, CancellationToken)>)>,
}

impl Waiting {
    /// Lists a new connection, closing the oldest waiting one when
    /// [`MAX_WAITING`] are listed already.
    fn add(&self) -> (u64, CancellationToken) {
        let token = CancellationToken::new();
        let mut g = self.list.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        let id = g.0;
        while g.1.len() >= MAX_WAITING {
            if let Some((_, oldest)) = g.1.pop_front() {
                tracing::debug!("web: closing the longest-waiting idle connection");
                oldest.cancel();
            }
        }
        g.1.push_back((id, token.clone()));
        (id, token)
    }

    fn remove(&self, id: u64) {
        let mut g = self.list.lock().unwrap_or_else(|e| e.into_inner());
        g.1.retain(|(i, _)| *i != id);
    }
}

/// Takes a connection off the waiting list when its task ends.
struct Listed(Arc<Waiting>, u64);

impl Drop for Listed {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

/// The rules before every route (see the module doc), and the headers
/// after it.
async fn guard(State(web): State<Arc<Web>>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let writes = path.starts_with("/api/orders/");
    let mut resp = if writes {
        write_guard(&web, &method, req, next).await
    } else if method != Method::GET && method != Method::HEAD {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD here; the writes are POST under /api/orders/\n",
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
        token_required()
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
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    // The path only: the query may hold the token.
    tracing::debug!(%method, path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "web request");
    resp
}

/// The rules for a write (see [`write`]): POST only (`405`), and the token
/// always, in the header or the query (`401`; without `token_file` no
/// write is possible at all).
async fn write_guard(web: &Web, method: &Method, req: Request, next: Next) -> Response {
    if method != Method::POST {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "writes are POST only\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    if web.token.is_none() {
        return plain(
            StatusCode::UNAUTHORIZED,
            "writes always need the token: set token_file in [http] (also on loopback)\n",
        );
    }
    if !authorised(web, &req) {
        return token_required();
    }
    next.run(req).await
}

/// `401` with the way to send the token, and no keep-alive: a client
/// without the token does not hold the connection.
fn token_required() -> Response {
    let mut r = plain(
        StatusCode::UNAUTHORIZED,
        "a token is required: send Authorization: Bearer TOKEN or add ?token=TOKEN\n",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"aliwatch\""),
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
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

async fn dashboard(State(web): State<Arc<Web>>, req: Request) -> Response {
    // The forms carry the token the page was opened with (`?token=`):
    // writes need it, and nothing else (no cookie) would.
    let query_token = query_values(req.uri().query().unwrap_or(""), "token")
        .next()
        .map(|t| String::from_utf8_lossy(&t).into_owned());
    let has_token_file = web.token.is_some();
    let r = web
        .with_store(move |w, s| {
            use crate::render::dashboard::Actions;
            let now = Utc::now();
            let rules = w.cfg.rules();
            let report = crate::pipeline::status_report(s, now, &rules)?;
            let actions = match (&query_token, has_token_file) {
                (_, false) => Actions::NeedTokenFile,
                (Some(t), true) => Actions::With { token: t },
                (None, true) => Actions::NeedTokenInUrl,
            };
            Ok(crate::render::dashboard::render_dashboard_page(
                &report, &rules, now, &actions,
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

    /// Idle connections cannot starve the others: a connection that has
    /// sent its request leaves the waiting list, and when the list is full
    /// the one that has waited longest is closed for the newcomer.
    #[test]
    fn the_longest_waiting_idle_connection_is_closed_for_a_new_one() {
        let w = Waiting::default();
        let listed: Vec<(u64, CancellationToken)> = (0..MAX_WAITING).map(|_| w.add()).collect();
        assert!(listed.iter().all(|(_, t)| !t.is_cancelled()));
        w.remove(listed[0].0);
        let _room = w.add();
        assert!(listed.iter().all(|(_, t)| !t.is_cancelled()));
        let _full = w.add();
        assert!(listed[1].1.is_cancelled());
        assert!(listed[2..].iter().all(|(_, t)| !t.is_cancelled()));
    }
}
