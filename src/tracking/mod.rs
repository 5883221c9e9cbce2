//! Parcel tracking over HTTP: the [`TrackingProvider`] trait, the 17TRACK
//! and Cainiao clients behind it, and the HTTP shell they share.
//!
//! Layout:
//! - [`status`]: data tables mapping each provider's vocabulary to
//!   [`ParcelStatus`](crate::model::ParcelStatus);
//! - [`seventeen`], [`cainiao`]: request bodies, response parsing into the
//!   provider-neutral [`TrackResult`], and each provider's pass;
//! - this file: the trait, the [`Outcome`]s a pass reports, the HTTP shell
//!   ([`Http`]: one reqwest client, at most 2 requests per second, retries
//!   with backoff) and [`Tracker`], the configured providers in order.
//!
//! Nothing here touches the database or decides what an answer means: a
//! provider gets the due parcels and the account state, and reports what it
//! learned; `pipeline::tracking` writes it (one transaction per request)
//! and `decide::parcel` decides each parcel's update. Production and tests
//! differ only in `tracking.base_url` (and, in tests, a faster [`Pacing`]).
//!
//! Adding a provider: a module implementing [`TrackingProvider`] and
//! holding its facts (number formats, batch size, pacing, public page,
//! status mapping), a [`Provider`] variant in `Provider::TRACKERS` (the
//! one list) with the arms that point into the module, and one arm in
//! [`Tracker::with_pacing`].

pub mod cainiao;
pub mod seventeen;
pub mod status;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::config::TrackingConfig;
use crate::facts::{DueParcel, ProviderBatch, TrackingState};
pub use crate::model::{Provider, Providers, TrackEvent, TrackResult, TrackingNumber};

/// The largest response body read from a provider. A 17TRACK answer for
/// a batch of 40 numbers with full histories is below 1 MB; one hostile
/// 1.5 GB answer drove the process to 5.9 GB.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// What a provider's pass learned, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// One request's answers: written in one transaction.
    Batch(ProviderBatch),
    /// A request failed after its retries: these parcels stay due, and
    /// the pass asks the next provider for them.
    BatchFailed {
        what: &'static str,
        numbers: Vec<TrackingNumber>,
        error: String,
        kind: FailKind,
    },
    /// `getquota` was read: registrations left.
    QuotaRead(i64),
    /// Parcels waiting for registration quota.
    Queued(usize),
    /// The quota was probed now.
    QuotaProbed(DateTime<Utc>),
    /// Registrations are refused: `Some(message)` when this pass found out,
    /// `None` when it was known already and is still so.
    QuotaExhausted(Option<String>),
    /// Registration quota is back.
    QuotaBack,
    /// The provider refused the credentials: the pass stopped. The message
    /// says what to check.
    AuthFailed(String),
}

pub use crate::providers::{FailKind, QUOTA_PROBE_EVERY};

impl FailKind {
    pub fn of(e: &HttpError) -> FailKind {
        match e {
            HttpError::RateLimited(_) => FailKind::RateLimited,
            HttpError::Unauthorized(_) => FailKind::Refused,
            HttpError::Transient(_) | HttpError::BadBody(_) => FailKind::Transient,
        }
    }
}

/// The numbers of a batch of due parcels.
pub fn numbers_of(batch: &[DueParcel]) -> Vec<TrackingNumber> {
    batch.iter().map(|p| p.number.clone()).collect()
}

/// A tracking provider: asked for the due parcels, it reports what it
/// learned. Implementations own their HTTP requests, batching and quota
/// rules, and nothing else.
pub trait TrackingProvider: Send + Sync {
    /// Which provider this is.
    fn provider(&self) -> Provider;

    /// The config spelling, also written beside every stored event.
    fn name(&self) -> &'static str {
        self.provider().as_str()
    }

    /// One pass over `due` (registering new numbers where the provider
    /// needs it). Provider failures are outcomes, never errors.
    fn refresh<'a>(
        &'a self,
        due: &'a [DueParcel],
        state: &'a TrackingState,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Vec<Outcome>>;

    /// Parcels whose delivery a refresh just confirmed (with their carrier
    /// codes): a provider that tracks numbers on its side can stop now.
    fn finish<'a>(
        &'a self,
        _confirmed: &'a [(String, Option<i64>)],
    ) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async { Vec::new() })
    }

    /// For `check-config --connect`: one cheap request that proves the
    /// provider answers.
    fn check(&self) -> BoxFuture<'_, Result<String>>;
}

/// Request pacing and retry policy. [`Pacing::default`] is production;
/// tests shorten the waits so that a simulated day runs in seconds.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// Least time between two request starts (2 requests per second).
    pub min_interval: Duration,
    /// First retry delay; doubles per attempt, plus up to 50 % jitter.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Retries per request within one pass.
    pub max_retries: u32,
    /// A 429 whose Retry-After is longer is left for a later pass (SPEC §4).
    pub max_retry_after: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            min_interval: Duration::from_millis(500),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(30),
            max_retries: 3,
            max_retry_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Why an HTTP exchange failed (after the retries this pass allows).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// 401/403: the key is wrong; never retried.
    #[error("the provider refused the credentials ({0})")]
    Unauthorized(String),
    /// 429 with a Retry-After beyond this pass, or still 429 after retries.
    #[error("rate limited by the provider (retry after {0:?})")]
    RateLimited(Option<Duration>),
    /// 5xx, timeouts, connection errors, other statuses.
    #[error("{0}")]
    Transient(String),
    /// HTTP 200 with a body that is not what the provider speaks.
    #[error("unexpected response: {0}")]
    BadBody(String),
}

/// The HTTP shell shared by both clients: one reqwest client with timeouts
/// and a User-Agent, a request pacer and the retry loop.
pub struct Http {
    client: reqwest::Client,
    pacing: Pacing,
    last_start: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    requests: AtomicU64,
    /// Requests by outcome since the last [`Http::take_outcomes`].
    outcomes: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

enum Attempt {
    Done(Result<String, HttpError>),
    Retry {
        why: String,
        after: Option<Duration>,
        rate_limited: bool,
    },
}

impl Http {
    pub fn new(pacing: Pacing) -> Result<Http> {
        let client = reqwest::Client::builder()
            .connect_timeout(pacing.connect_timeout)
            .timeout(pacing.request_timeout)
            .user_agent(concat!("aliwatch/", env!("CARGO_PKG_VERSION")))
            // Never follow a redirect: the 17TRACK key travels in a header,
            // and a 302 to another host would hand it over. The APIs do
            // not redirect; a 3xx is an error naming the status.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the http client")?;
        Ok(Http {
            client,
            pacing,
            last_start: tokio::sync::Mutex::new(None),
            requests: AtomicU64::new(0),
            outcomes: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        })
    }

    /// Requests sent so far (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests by outcome (`ok`, `error`, `rate_limited`,
    /// `unauthorized`, `bad_answer`) since the last call; the pipeline adds
    /// them to the database's counters after each pass.
    pub fn take_outcomes(&self) -> std::collections::BTreeMap<&'static str, u64> {
        match self.outcomes.lock() {
            Ok(mut m) => std::mem::take(&mut *m),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }

    fn count(&self, step: &Attempt) {
        let outcome = match step {
            Attempt::Done(Ok(_)) => "ok",
            Attempt::Done(Err(HttpError::Unauthorized(_))) => "unauthorized",
            Attempt::Done(Err(HttpError::RateLimited(_))) => "rate_limited",
            Attempt::Done(Err(HttpError::BadBody(_))) => "bad_answer",
            Attempt::Done(Err(HttpError::Transient(_))) => "error",
            Attempt::Retry { rate_limited, .. } if *rate_limited => "rate_limited",
            Attempt::Retry { .. } => "error",
        };
        if let Ok(mut m) = self.outcomes.lock() {
            *m.entry(outcome).or_default() += 1;
        }
    }

    async fn pace(&self) {
        let mut last = self.last_start.lock().await;
        if let Some(t) = *last {
            tokio::time::sleep_until(t + self.pacing.min_interval).await;
        }
        *last = Some(tokio::time::Instant::now());
    }

    /// Retry `attempt`: doubling from `backoff_base` to `backoff_cap`, plus
    /// up to 50 % jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        crate::backoff::jittered(
            attempt,
            self.pacing.backoff_base,
            self.pacing.backoff_cap,
            1.0,
            1.5,
        )
    }

    /// Sends the request `build` makes (again on each retry) and returns the
    /// body of a 2xx answer.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<String, HttpError> {
        let mut attempt = 0u32;
        loop {
            self.pace().await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let step = match build(&self.client).send().await {
                Err(e) => Attempt::Retry {
                    why: format!("request failed: {}", describe(&e)),
                    after: None,
                    rate_limited: false,
                },
                Ok(resp) => self.classify(resp).await,
            };
            self.count(&step);
            match step {
                Attempt::Done(r) => return r,
                Attempt::Retry {
                    why,
                    after,
                    rate_limited,
                } => {
                    if attempt >= self.pacing.max_retries {
                        return Err(if rate_limited {
                            HttpError::RateLimited(after)
                        } else {
                            HttpError::Transient(why)
                        });
                    }
                    let delay = after.unwrap_or_else(|| self.backoff(attempt));
                    tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, %why, "retrying tracking request");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn classify(&self, resp: reqwest::Response) -> Attempt {
        let status = resp.status();
        if status.is_success() {
            return match read_limited(resp, MAX_RESPONSE_BYTES).await {
                Ok(t) => Attempt::Done(Ok(t)),
                Err(ReadError::TooLarge) => Attempt::Done(Err(HttpError::BadBody(format!(
                    "the response is larger than {} MB; not read further",
                    MAX_RESPONSE_BYTES / (1024 * 1024)
                )))),
                Err(ReadError::Http(e)) => Attempt::Retry {
                    why: format!("reading the response failed: {}", describe(&e)),
                    after: None,
                    rate_limited: false,
                },
            };
        }
        match status.as_u16() {
            300..=399 => {
                // Only the host is named: the target is the server's text.
                let to = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| reqwest::Url::parse(l).ok())
                    .and_then(|u| u.host_str().map(|h| excerpt(h, 80)))
                    .map(|h| format!(" to {h}"))
                    .unwrap_or_default();
                Attempt::Done(Err(HttpError::Transient(format!(
                    "http {status}: a redirect{to}, not followed (check tracking.base_url)"
                ))))
            }
            401 | 403 => Attempt::Done(Err(HttpError::Unauthorized(format!("http {status}")))),
            429 => {
                let after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after(v, std::time::SystemTime::now()));
                match after {
                    Some(d) if d > self.pacing.max_retry_after => {
                        Attempt::Done(Err(HttpError::RateLimited(Some(d))))
                    }
                    _ => Attempt::Retry {
                        why: "http 429".into(),
                        after,
                        rate_limited: true,
                    },
                }
            }
            500..=599 => Attempt::Retry {
                why: format!("http {status}"),
                after: None,
                rate_limited: false,
            },
            _ => Attempt::Done(Err(HttpError::Transient(format!("http {status}")))),
        }
    }
}

/// A `Retry-After` value (RFC 9110 §10.2.3): seconds, or an HTTP-date
/// (via `httpdate`, all three formats RFC 9110 accepts), as the wait from
/// `now`; a date in the past is no wait. `None` when it is neither.
pub fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

enum ReadError {
    TooLarge,
    Http(reqwest::Error),
}

/// Reads the body chunk by chunk and stops past `limit` bytes (an
/// announced Content-Length above it is refused before reading).
async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<String, ReadError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// At most `max` characters of server-provided text, control characters
/// escaped, so that an error message stays one short line.
pub fn excerpt(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Names the cause of a failed request: reqwest's own text ("error
/// sending request") hides it in the source chain, where hyper, the
/// resolver, rustls and the OS put theirs.
pub fn describe(e: &reqwest::Error) -> String {
    let mut chain = Vec::new();
    let mut cause: Option<&'static str> = None;
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        let mut text = s.to_string();
        // reqwest appends "for url (…)": long, and the query names numbers.
        if let Some(i) = text.find(" for url (") {
            text.truncate(i);
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            cause = cause.or(match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Some("connection refused"),
                std::io::ErrorKind::ConnectionReset => Some("connection reset"),
                std::io::ErrorKind::TimedOut => Some("timed out"),
                _ => None,
            });
        }
        if s.downcast_ref::<rustls::Error>().is_some() || text.contains("certificate") {
            cause = cause.or(Some("TLS certificate rejected"));
        }
        if text.starts_with("dns error") || text.contains("failed to lookup address") {
            cause = cause.or(Some("DNS lookup failed"));
        }
        if !chain.iter().any(|c: &String| c.contains(&text)) {
            chain.push(text);
        }
        src = s.source();
    }
    if e.is_timeout() {
        cause = Some("timed out");
    }
    if let Some(status) = e.status() {
        chain.insert(0, format!("http {status}"));
    }
    let detail = excerpt(&chain.join(": "), 300);
    match cause {
        Some(c) => format!("{c} ({detail})"),
        None if e.is_connect() => format!("cannot connect ({detail})"),
        None => detail,
    }
}

/// The configured providers, in the order asked, each with the HTTP shell
/// it sends through (so that pacing and request counts are per provider).
pub struct Tracker {
    providers: Vec<(Box<dyn TrackingProvider>, Arc<Http>)>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.providers.iter().map(|(p, _)| p.name()).collect();
        f.debug_struct("Tracker")
            .field("providers", &names)
            .finish_non_exhaustive()
    }
}

impl Tracker {
    /// A tracker with production pacing; `None` when no provider is
    /// configured (email-only status).
    pub fn new(cfg: &TrackingConfig) -> Result<Option<Tracker>> {
        if cfg.providers.is_empty() {
            return Ok(None);
        }
        Tracker::with_pacing(cfg, Pacing::default()).map(Some)
    }

    /// A tracker with the given pacing (tests use short waits). The one
    /// place that builds each provider from its settings.
    pub fn with_pacing(cfg: &TrackingConfig, pacing: Pacing) -> Result<Tracker> {
        let mut providers: Vec<(Box<dyn TrackingProvider>, Arc<Http>)> = Vec::new();
        for p in cfg.providers.iter() {
            let http = Arc::new(Http::new(pacing.clone())?);
            let base = |default: &str| match cfg.base_url_for(p).trim() {
                "" => default.to_owned(),
                url => url.trim_end_matches('/').to_owned(),
            };
            let provider: Box<dyn TrackingProvider> = match p {
                Provider::SeventeenTrack => {
                    let secret = cfg.api_key.as_ref().context(
                        "provider \"17track\" needs tracking.api_key_file (or api_key_command)",
                    )?;
                    Box::new(seventeen::SeventeenTrack::new(
                        http.clone(),
                        base("https://api.17track.net"),
                        secret.clone(),
                        cfg.refresh_interval,
                    )?)
                }
                Provider::Cainiao => Box::new(cainiao::Cainiao {
                    http: http.clone(),
                    base_url: base("https://global.cainiao.com"),
                }),
                Provider::None => continue,
            };
            providers.push((provider, http));
        }
        Ok(Tracker { providers })
    }

    /// The providers, in the order asked.
    pub fn all(&self) -> impl Iterator<Item = &dyn TrackingProvider> + '_ {
        self.providers.iter().map(|(p, _)| p.as_ref())
    }

    /// The configured providers, in the order asked.
    pub fn list(&self) -> Providers {
        let ps: Vec<Provider> = self.all().map(|p| p.provider()).collect();
        Providers::new(&ps)
    }

    /// The provider `p`, when configured.
    pub fn get(&self, p: Provider) -> Option<&dyn TrackingProvider> {
        self.all().find(|x| x.provider() == p)
    }

    /// Requests sent by this tracker so far (retries included).
    pub fn requests(&self) -> u64 {
        self.providers.iter().map(|(_, h)| h.requests()).sum()
    }

    /// Requests by (provider, outcome) since the last call (see
    /// [`Http::take_outcomes`]).
    pub fn take_outcomes(&self) -> std::collections::BTreeMap<(&'static str, &'static str), u64> {
        let mut out = std::collections::BTreeMap::new();
        for (p, h) in &self.providers {
            for (outcome, n) in h.take_outcomes() {
                *out.entry((p.name(), outcome)).or_default() += n;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Wed, 02 Dec 2026 10:00:00 GMT").expect("date");
        let s = Duration::from_secs;
        let cases = [
            ("120", Some(s(120))),
            (" 0 ", Some(s(0))),
            ("Wed, 02 Dec 2026 10:05:00 GMT", Some(s(300))),
            // RFC 850 and asctime forms, which RFC 9110 still accepts
            ("Wednesday, 02-Dec-26 10:01:00 GMT", Some(s(60))),
            ("Wed Dec  2 10:00:30 2026", Some(s(30))),
            ("Wed, 02 Dec 2026 09:00:00 GMT", Some(s(0))),
            ("soon", None),
            ("-5", None),
            ("", None),
        ];
        for (v, want) in cases {
            assert_eq!(retry_after(v, now), want, "{v:?}");
        }
    }
}
