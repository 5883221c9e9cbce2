//! Parcel tracking: the provider interface, the 17TRACK and Cainiao
//! clients, the unified status model and the refresh schedule.
//!
//! Layout (pure core, I/O shell):
//! - [`status`]: data tables mapping each provider's vocabulary to
//!   [`ParcelStatus`];
//! - [`schedule`]: when a parcel is asked for again (pure, injected `now`);
//! - [`seventeen`], [`cainiao`]: request bodies and response parsing into
//!   the provider-neutral [`TrackResult`];
//! - this file: the HTTP shell ([`Http`]: one reqwest client, at most 2
//!   requests per second, retries with backoff) and [`Tracker::refresh_due`],
//!   one pass over every due parcel. Store writes live in
//!   `store/tracking.rs`, one transaction per batch.
//!
//! Production and tests differ only in `tracking.base_url` (and, in tests,
//! a faster [`Pacing`]).

pub mod cainiao;
pub mod schedule;
pub mod seventeen;
pub mod status;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};

use crate::config::{Provider, TrackingConfig};
use crate::model::ParcelStatus;
use crate::store::tracking::{DueParcel, Failure};
use crate::store::{fmt_time, parse_time, Store};

/// `meta` key: set while 17TRACK refuses registrations (quota ran out or the
/// daily limit was hit); the value is a message for the log and the digest.
pub const META_QUOTA_EXHAUSTED: &str = "tracking.quota_exhausted";
/// `meta` key: when the quota was last probed with `getquota`.
pub const META_QUOTA_CHECKED_AT: &str = "tracking.quota_checked_at";
/// `meta` key: the last tracking error that needs the user (bad key, …);
/// cleared by a pass without errors. The digest reports it.
pub const META_LAST_ERROR: &str = "tracking.last_error";

/// How often an exhausted quota is probed with `getquota`.
pub const QUOTA_PROBE_EVERY: Duration = Duration::from_secs(3600);

/// One carrier event, provider-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackEvent {
    pub time_utc: DateTime<Utc>,
    /// The time as the provider gave it, with its UTC offset (RFC 3339).
    pub time_local: Option<String>,
    pub description: String,
    pub location: Option<String>,
    /// The event's own unified status, where its code says one.
    pub status: Option<ParcelStatus>,
    /// 17TRACK `sub_status`/`stage`, Cainiao `actionCode`.
    pub raw_code: Option<String>,
}

/// What a provider said about one number.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackResult {
    pub number: String,
    /// The provider has something for the number.
    pub found: bool,
    pub status: ParcelStatus,
    /// The provider's own status (17TRACK `status/sub_status`, Cainiao
    /// newest `actionCode`).
    pub raw_status: Option<String>,
    pub status_detail: Option<String>,
    pub carrier: Option<String>,
    pub carrier_code: Option<i64>,
    /// Newest first, deduplicated.
    pub events: Vec<TrackEvent>,
    pub eta_from: Option<NaiveDate>,
    pub eta_to: Option<NaiveDate>,
    /// The time of the delivery (or return) event.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The last-mile number the parcel continues under.
    pub last_mile: Option<String>,
}

impl TrackResult {
    /// The provider knows nothing about `number` (yet).
    pub fn not_found(number: &str) -> TrackResult {
        TrackResult {
            number: number.to_owned(),
            found: false,
            status: ParcelStatus::Pending,
            raw_status: None,
            status_detail: None,
            carrier: None,
            carrier_code: None,
            events: Vec::new(),
            eta_from: None,
            eta_to: None,
            delivered_at: None,
            last_mile: None,
        }
    }
}

/// Tracking numbers are compared without spaces, in upper case.
pub fn normalise_number(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// The deduplication key of an event description: lower case, letters and
/// digits only, single spaces (Cainiao repeats its newest event with
/// cosmetic differences).
pub fn description_key(s: &str) -> String {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sorts events newest first and drops duplicates by (UTC time, normalised
/// description).
pub(crate) fn sort_dedup_events(events: &mut Vec<TrackEvent>) {
    events.sort_by_key(|e| std::cmp::Reverse(e.time_utc));
    let mut seen = HashSet::new();
    events.retain(|e| seen.insert((e.time_utc, description_key(&e.description))));
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
            .build()
            .context("cannot build the http client")?;
        Ok(Http {
            client,
            pacing,
            last_start: tokio::sync::Mutex::new(None),
            requests: AtomicU64::new(0),
        })
    }

    /// Requests sent so far (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    async fn pace(&self) {
        let mut last = self.last_start.lock().await;
        if let Some(t) = *last {
            tokio::time::sleep_until(t + self.pacing.min_interval).await;
        }
        *last = Some(tokio::time::Instant::now());
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .pacing
            .backoff_base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.pacing.backoff_cap);
        let jitter_ms = fastrand::u64(0..=(exp.as_millis() as u64 / 2));
        exp + Duration::from_millis(jitter_ms)
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
                    // without_url: the URL may carry numbers, never secrets,
                    // but keeps log lines short.
                    why: format!("request failed: {}", e.without_url()),
                    after: None,
                    rate_limited: false,
                },
                Ok(resp) => self.classify(resp).await,
            };
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
            return match resp.text().await {
                Ok(t) => Attempt::Done(Ok(t)),
                Err(e) => Attempt::Retry {
                    why: format!("reading the response failed: {}", e.without_url()),
                    after: None,
                    rate_limited: false,
                },
            };
        }
        match status.as_u16() {
            401 | 403 => Attempt::Done(Err(HttpError::Unauthorized(format!("http {status}")))),
            429 => {
                // Retry-After in seconds (RFC 9110 §10.2.3); an HTTP-date is
                // rare here and read as "unknown".
                let after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
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

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshSummary {
    /// Parcels that were due.
    pub due: usize,
    /// Numbers registered with 17TRACK in this pass.
    pub registered: usize,
    /// Parcels with a fresh answer from the provider.
    pub refreshed: usize,
    /// Parcels whose status changed.
    pub changed: usize,
    pub new_events: usize,
    /// Parcels whose tracking ended (delivered and confirmed, expired, …).
    pub finished: usize,
    /// Last-mile numbers learned.
    pub last_mile: usize,
    /// Parcels left due because a request failed.
    pub failed: usize,
    /// Parcels waiting for registration quota.
    pub queued: usize,
    pub quota_exhausted: bool,
    /// The provider refused the key: the pass stopped.
    pub auth_failed: bool,
    /// HTTP requests sent (retries included).
    pub requests: u64,
    pub errors: Vec<String>,
}

impl RefreshSummary {
    /// Adds what applying `refreshed` answers did.
    fn absorb(&mut self, refreshed: usize, out: &crate::store::tracking::ApplyOutcome) {
        self.refreshed += refreshed;
        self.changed += out.changed;
        self.new_events += out.new_events;
        self.finished += out.done.len();
        self.last_mile += out.last_mile.len();
    }
}

/// The tracker: the configured provider's client and the refresh pass.
pub struct Tracker {
    provider: Provider,
    base_url: String,
    key: Option<String>,
    refresh_interval: Duration,
    http: Http,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Tracker {
    /// A tracker with production pacing.
    pub fn new(cfg: &TrackingConfig) -> Result<Tracker> {
        Tracker::with_pacing(cfg, Pacing::default())
    }

    /// A tracker with the given pacing (tests use short waits).
    pub fn with_pacing(cfg: &TrackingConfig, pacing: Pacing) -> Result<Tracker> {
        let key = match cfg.provider {
            Provider::SeventeenTrack => {
                let secret = cfg
                    .api_key
                    .as_ref()
                    .context("tracking.provider = \"17track\" needs tracking.api_key_file (or api_key_command)")?;
                let key = secret.resolve().context("17track api key")?;
                anyhow::ensure!(!key.is_empty(), "the 17track api key is empty");
                Some(key)
            }
            _ => None,
        };
        let base_url = match (cfg.provider, cfg.base_url.trim()) {
            (Provider::SeventeenTrack, "") => "https://api.17track.net".to_owned(),
            (Provider::Cainiao, "") => "https://global.cainiao.com".to_owned(),
            (_, url) => url.trim_end_matches('/').to_owned(),
        };
        Ok(Tracker {
            provider: cfg.provider,
            base_url,
            key,
            refresh_interval: cfg.refresh_interval,
            http: Http::new(pacing)?,
        })
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Requests sent by this tracker so far.
    pub fn requests(&self) -> u64 {
        self.http.requests()
    }

    /// For `check-config --connect`: one cheap request that proves the
    /// provider answers (17TRACK: `getquota`, which also shows the quota).
    pub async fn check(&self) -> Result<String> {
        match self.provider {
            Provider::None => Ok("tracking disabled (email-only status)".into()),
            Provider::SeventeenTrack => {
                let q = self
                    .seventeen()
                    .getquota()
                    .await
                    .map_err(|e| anyhow::anyhow!("17track: {e:?}"))?;
                Ok(format!(
                    "17track ok: registration quota {} of {} left, {} used today",
                    q.remain, q.total, q.today_used
                ))
            }
            Provider::Cainiao => {
                cainiao::Client {
                    http: &self.http,
                    base_url: &self.base_url,
                }
                .detail(&["LP00000000000".to_owned()])
                .await
                .map_err(|e| anyhow::anyhow!("cainiao: {e}"))?;
                Ok("cainiao ok (unofficial endpoint)".into())
            }
        }
    }

    fn seventeen(&self) -> seventeen::Client<'_> {
        seventeen::Client {
            http: &self.http,
            base_url: &self.base_url,
            key: self.key.as_deref().unwrap_or(""),
        }
    }

    /// One pass: every due parcel is registered (17TRACK, once) and asked
    /// for, in batches, and the answers are written one transaction per
    /// batch. Provider failures never fail the pass: the parcels stay due
    /// and the summary says what happened. Only store errors are `Err`.
    pub async fn refresh_due(
        &self,
        store: &mut Store,
        now: DateTime<Utc>,
    ) -> Result<RefreshSummary> {
        let mut sum = RefreshSummary::default();
        if self.provider == Provider::None {
            return Ok(sum);
        }
        let start_requests = self.http.requests();
        let mut attempted: HashSet<String> = HashSet::new();
        // A second round asks for last-mile numbers learned in the first.
        for _round in 0..2 {
            let due: Vec<DueParcel> = store
                .tracking_due(now)?
                .into_iter()
                .filter(|p| !attempted.contains(&p.number))
                .collect();
            if due.is_empty() {
                break;
            }
            attempted.extend(due.iter().map(|p| p.number.clone()));
            sum.due += due.len();
            let last_mile_before = sum.last_mile;
            match self.provider {
                Provider::SeventeenTrack => self.pass_17track(store, &due, now, &mut sum).await?,
                Provider::Cainiao => self.pass_cainiao(store, &due, now, &mut sum).await?,
                Provider::None => {}
            }
            if sum.auth_failed || sum.last_mile == last_mile_before {
                break;
            }
        }
        sum.requests = self.http.requests() - start_requests;
        if !sum.auth_failed {
            if sum.errors.is_empty() {
                if sum.requests > 0 {
                    store.meta_set(META_LAST_ERROR, None)?;
                }
            } else {
                store.meta_set(META_LAST_ERROR, Some(&sum.errors.join("; ")))?;
            }
        }
        if sum.due > 0 {
            tracing::info!(
                provider = self.provider.as_str(),
                due = sum.due,
                registered = sum.registered,
                refreshed = sum.refreshed,
                changed = sum.changed,
                finished = sum.finished,
                failed = sum.failed,
                queued = sum.queued,
                requests = sum.requests,
                "tracking pass"
            );
        }
        Ok(sum)
    }

    fn auth_failed(&self, store: &Store, why: &str, sum: &mut RefreshSummary) -> Result<()> {
        let msg = match self.provider {
            Provider::SeventeenTrack => format!(
                "17track refused the api key ({why}); check tracking.api_key_file and the key on the 17TRACK dashboard"
            ),
            _ => format!("{} refused the request ({why})", self.provider.as_str()),
        };
        tracing::error!(provider = self.provider.as_str(), error = %msg, "tracking stopped for this pass");
        store.meta_set(META_LAST_ERROR, Some(&msg))?;
        sum.auth_failed = true;
        sum.errors.push(msg);
        Ok(())
    }

    fn batch_failed(&self, what: &str, n: usize, why: &str, sum: &mut RefreshSummary) {
        tracing::warn!(provider = self.provider.as_str(), numbers = n, error = %why, "{what} failed; parcels stay due");
        sum.failed += n;
        sum.errors
            .push(format!("{} {what}: {why}", self.provider.as_str()));
    }

    /// Whether 17TRACK registrations may be tried: not while the quota is
    /// known to be exhausted, except for a `getquota` probe once an hour.
    async fn may_register(
        &self,
        store: &mut Store,
        now: DateTime<Utc>,
        sum: &mut RefreshSummary,
    ) -> Result<bool> {
        if store.meta_get(META_QUOTA_EXHAUSTED)?.is_none() {
            return Ok(true);
        }
        let probe_due = store
            .meta_get(META_QUOTA_CHECKED_AT)?
            .and_then(|t| parse_time(&t))
            .is_none_or(|t| (now - t).to_std().is_ok_and(|d| d >= QUOTA_PROBE_EVERY));
        if !probe_due {
            return Ok(false);
        }
        store.meta_set(META_QUOTA_CHECKED_AT, Some(&fmt_time(now)))?;
        match self.seventeen().getquota().await {
            Ok(q) if q.can_register() => {
                tracing::info!(remain = q.remain, "17track registration quota is back");
                store.meta_set(META_QUOTA_EXHAUSTED, None)?;
                Ok(true)
            }
            Ok(q) => {
                tracing::info!(
                    remain = q.remain,
                    today_used = q.today_used,
                    "17track registration quota still exhausted"
                );
                Ok(false)
            }
            Err(seventeen::CallError::Auth(m)) => {
                self.auth_failed(store, &m, sum)?;
                Ok(false)
            }
            Err(seventeen::CallError::Transient(m)) => {
                tracing::warn!(error = %m, "17track getquota failed");
                Ok(false)
            }
        }
    }

    async fn pass_17track(
        &self,
        store: &mut Store,
        due: &[DueParcel],
        now: DateTime<Utc>,
        sum: &mut RefreshSummary,
    ) -> Result<()> {
        let client = self.seventeen();
        let unregistered: Vec<&DueParcel> = due.iter().filter(|p| !p.registered).collect();
        let mut fetch: Vec<(String, Option<i64>)> = due
            .iter()
            .filter(|p| p.registered)
            .map(|p| (p.number.clone(), p.carrier_code))
            .collect();

        if !unregistered.is_empty() {
            let mut may = self.may_register(store, now, sum).await?;
            if sum.auth_failed {
                return Ok(());
            }
            for batch in unregistered.chunks(seventeen::BATCH) {
                if !may {
                    sum.queued += batch.len();
                    continue;
                }
                let numbers: Vec<String> = batch.iter().map(|p| p.number.clone()).collect();
                match client.register(&numbers).await {
                    Ok(env) => {
                        let mut ok: Vec<(String, Option<i64>)> = env
                            .accepted
                            .iter()
                            .map(|a| (a.number.clone(), a.carrier))
                            .collect();
                        let mut retry_later = Vec::new();
                        let mut give_up = Vec::new();
                        let mut quota_msg = None;
                        for r in &env.rejected {
                            match r.code {
                                seventeen::ALREADY_REGISTERED => {
                                    let code = batch
                                        .iter()
                                        .find(|p| p.number == r.number)
                                        .and_then(|p| p.carrier_code);
                                    ok.push((r.number.clone(), code));
                                }
                                seventeen::DAILY_LIMIT | seventeen::QUOTA_RAN_OUT => {
                                    sum.queued += 1;
                                    quota_msg = Some(r.message.clone());
                                }
                                seventeen::BAD_FORMAT => give_up
                                    .push((r.number.clone(), format!("17track: {}", r.message))),
                                _ => retry_later.push((
                                    r.number.clone(),
                                    format!("17track register: {}", r.message),
                                )),
                            }
                        }
                        store.tracking_mark_registered(&ok, now)?;
                        store.tracking_record_failure(&give_up, Failure::GiveUp, now)?;
                        store.tracking_record_failure(
                            &retry_later,
                            Failure::RetryAt(now + chrono::Duration::hours(24)),
                            now,
                        )?;
                        sum.registered += ok.len();
                        fetch.extend(ok);
                        if let Some(m) = quota_msg {
                            let msg = format!(
                                "17track registration quota exhausted ({m}); new numbers wait until it is back"
                            );
                            tracing::warn!(message = %msg, "17track quota");
                            store.meta_set(META_QUOTA_EXHAUSTED, Some(&msg))?;
                            store.meta_set(META_QUOTA_CHECKED_AT, Some(&fmt_time(now)))?;
                            sum.quota_exhausted = true;
                            may = false;
                        }
                    }
                    Err(seventeen::CallError::Auth(m)) => return self.auth_failed(store, &m, sum),
                    Err(seventeen::CallError::Transient(m)) => {
                        self.batch_failed("register", batch.len(), &m, sum)
                    }
                }
            }
            if !may {
                sum.quota_exhausted = true;
            }
        }

        let mut stop: Vec<(String, Option<i64>)> = Vec::new();
        for batch in fetch.chunks(seventeen::BATCH) {
            match client.gettrackinfo(batch).await {
                Ok(env) => {
                    let mut results = Vec::new();
                    let mut bad = Vec::new();
                    let mut unregister = Vec::new();
                    for a in &env.accepted {
                        match seventeen::parse_track_info(a) {
                            Ok(r) => results.push(r),
                            Err(e) => bad.push((a.number.clone(), format!("{e:#}"))),
                        }
                    }
                    for r in &env.rejected {
                        match r.code {
                            seventeen::NOT_REGISTERED => unregister.push(r.number.clone()),
                            seventeen::NO_INFO_YET => {
                                results.push(TrackResult::not_found(&r.number))
                            }
                            _ => bad.push((r.number.clone(), format!("17track: {}", r.message))),
                        }
                    }
                    let out = store.tracking_apply(
                        Provider::SeventeenTrack,
                        self.refresh_interval,
                        &results,
                        now,
                    )?;
                    sum.absorb(results.len(), &out);
                    for (n, reason) in &out.done {
                        if *reason == schedule::DoneReason::Confirmed {
                            let code = batch.iter().find(|(b, _)| b == n).and_then(|(_, c)| *c);
                            stop.push((n.clone(), code));
                        }
                    }
                    store.tracking_mark_unregistered(&unregister)?;
                    let next = now
                        + chrono::Duration::from_std(self.refresh_interval)
                            .unwrap_or(chrono::Duration::hours(6));
                    store.tracking_record_failure(&bad, Failure::RetryAt(next), now)?;
                }
                Err(seventeen::CallError::Auth(m)) => return self.auth_failed(store, &m, sum),
                Err(seventeen::CallError::Transient(m)) => {
                    self.batch_failed("gettrackinfo", batch.len(), &m, sum)
                }
            }
        }

        // Delivery confirmed: tell 17TRACK to stop (retrack stays possible
        // once). A failure here costs nothing but 17TRACK's own effort.
        for batch in stop.chunks(seventeen::BATCH) {
            match client.stoptrack(batch).await {
                Ok(_) => {}
                Err(seventeen::CallError::Auth(m)) => return self.auth_failed(store, &m, sum),
                Err(seventeen::CallError::Transient(m)) => {
                    tracing::warn!(error = %m, "17track stoptrack failed")
                }
            }
        }
        Ok(())
    }

    async fn pass_cainiao(
        &self,
        store: &mut Store,
        due: &[DueParcel],
        now: DateTime<Utc>,
        sum: &mut RefreshSummary,
    ) -> Result<()> {
        let client = cainiao::Client {
            http: &self.http,
            base_url: &self.base_url,
        };
        for batch in due.chunks(cainiao::BATCH) {
            let numbers: Vec<String> = batch.iter().map(|p| p.number.clone()).collect();
            match client.detail(&numbers).await {
                Ok(results) => {
                    let out = store.tracking_apply(
                        Provider::Cainiao,
                        self.refresh_interval,
                        &results,
                        now,
                    )?;
                    sum.absorb(results.len(), &out);
                }
                Err(HttpError::Unauthorized(m)) => return self.auth_failed(store, &m, sum),
                Err(e) => self.batch_failed("detail.json", batch.len(), &e.to_string(), sum),
            }
        }
        Ok(())
    }
}

/// One pass with a tracker built from the config (production pacing).
pub async fn refresh_due(
    store: &mut Store,
    cfg: &TrackingConfig,
    now: DateTime<Utc>,
) -> Result<RefreshSummary> {
    if cfg.provider == Provider::None {
        return Ok(RefreshSummary::default());
    }
    Tracker::new(cfg)?.refresh_due(store, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_descriptions_normalise() {
        assert_eq!(normalise_number(" lp00 1234\t5 "), "LP0012345");
        assert_eq!(
            description_key("  Departed  from Customs!"),
            "departed from customs"
        );
        assert_eq!(
            description_key("Departed from customs"),
            description_key("departed, from customs.")
        );
    }

    #[test]
    fn events_sort_newest_first_without_duplicates() {
        let t = |s: &str| parse_time(s).expect("valid time");
        let e = |time: &str, d: &str| TrackEvent {
            time_utc: t(time),
            time_local: None,
            description: d.into(),
            location: None,
            status: None,
            raw_code: None,
        };
        let mut v = vec![
            e("2026-01-01T00:00:00Z", "a"),
            e("2026-01-02T00:00:00Z", "B!"),
            e("2026-01-02T00:00:00Z", "b"),
            e("2026-01-02T00:00:00Z", "c"),
        ];
        sort_dedup_events(&mut v);
        let d: Vec<_> = v.iter().map(|e| e.description.as_str()).collect();
        assert_eq!(d, ["B!", "c", "a"]);
    }
}
