//! The 17TRACK Tracking API v2.2 client: request bodies, the response
//! envelope and `track_info` → [`TrackResult`].
//!
//! Every call is `POST {base_url}/track/v2.2/<endpoint>` with a JSON array of
//! at most 40 items and the header `17token`. HTTP 200 is only "processed":
//! the body can still carry a non-zero `code` (whole call failed, details in
//! `data.errors[]`) or per-number items in `data.rejected[]`, so both are
//! always inspected. Parsing is lenient (`serde_json::Value`): 17TRACK adds
//! fields between versions (v2.4 `provider_tips`, `time_raw`) and many are
//! `null` in real payloads.

use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use super::status;
use super::{Http, HttpError, Outcome, TrackingProvider, QUOTA_PROBE_EVERY};
use crate::config::Secret;
use crate::facts::{DueParcel, Failure, ProviderBatch, TrackingState};
use crate::model::ParcelStatus;
use crate::model::{normalise_number, Provider, TrackEvent, TrackResult, TrackingNumber};
use futures::future::BoxFuture;

// The provider's facts live one floor down, in `crate::providers`.
pub use crate::providers::seventeen::{accepts, tracking_page, BATCH, QUOTA_RESERVE};

/// How long a `getquota` reading is trusted before registering again
/// (registrations since are counted down from it).
pub const QUOTA_READ_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Already registered: counts as success.
pub const ALREADY_REGISTERED: i64 = -18019901;
/// Not registered (gettrackinfo before register).
pub const NOT_REGISTERED: i64 = -18019902;
/// Daily registration limit reached.
pub const DAILY_LIMIT: i64 = -18019907;
/// Quota ran out.
pub const QUOTA_RAN_OUT: i64 = -18019908;
/// No tracking information at the moment.
pub const NO_INFO_YET: i64 = -18019909;
/// Bad number format.
pub const BAD_FORMAT: i64 = -18010012;
/// Whole-call codes that mean the key is unusable (IP not whitelisted,
/// invalid key, account disabled): never retried.
pub const AUTH_CODES: [i64; 2] = [-18010001, -18010002];
/// Whole-call "too frequent": retried like a 429.
pub const TOO_FREQUENT: i64 = -18010003;

/// One accepted item of a v2.2 response.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub number: String,
    pub carrier: Option<i64>,
    pub item: Value,
}

/// One rejected item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub number: String,
    pub code: i64,
    pub message: String,
}

/// A processed response.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub accepted: Vec<Accepted>,
    pub rejected: Vec<Rejected>,
}

impl Envelope {
    /// Keeps only answers about numbers in `asked`, each number once (the
    /// first answer wins): a provider that lists numbers aliwatch never
    /// asked about (one hostile answer listed 70,000) must not make it
    /// register, fetch or store them. Logs one line when it drops any.
    pub fn only_asked(&mut self, asked: &[String], endpoint: &str) {
        let asked: std::collections::HashSet<String> =
            asked.iter().map(|n| normalise_number(n)).collect();
        let before = self.accepted.len() + self.rejected.len();
        let mut seen = std::collections::HashSet::new();
        self.accepted
            .retain(|a| asked.contains(a.number.as_str()) && seen.insert(a.number.clone()));
        self.rejected
            .retain(|r| asked.contains(r.number.as_str()) && seen.insert(r.number.clone()));
        let dropped = before - self.accepted.len() - self.rejected.len();
        if dropped > 0 {
            tracing::warn!(
                endpoint,
                dropped,
                asked = asked.len(),
                "17track answered about numbers that were not asked for; ignored them"
            );
        }
    }
}

/// Why a call failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The key is unusable: never retried.
    Auth(String),
    /// Try again in a later pass.
    Transient(String),
}

impl From<HttpError> for CallError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Unauthorized(m) => CallError::Auth(m),
            other => CallError::Transient(other.to_string()),
        }
    }
}

/// Quota counters from `getquota`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quota {
    pub total: i64,
    pub used: i64,
    pub remain: i64,
    pub today_used: i64,
    pub max_daily: i64,
}

impl Quota {
    /// Registrations that can succeed now: what is left of the quota,
    /// capped by what is left of today's limit (when the account has one).
    pub fn left(&self) -> i64 {
        let today = if self.max_daily > 0 {
            self.max_daily - self.today_used
        } else {
            i64::MAX
        };
        self.remain.min(today).max(0)
    }

    /// Whether a registration can succeed now.
    pub fn can_register(&self) -> bool {
        self.left() > 0
    }
}

/// The 17TRACK client.
pub struct Client<'a> {
    pub http: &'a Http,
    pub base_url: &'a str,
    pub key: String,
}

impl Client<'_> {
    async fn call(&self, endpoint: &str, body: &Value) -> Result<Value, CallError> {
        let url = format!(
            "{}/track/v2.2/{endpoint}",
            self.base_url.trim_end_matches('/')
        );
        let text = self
            .http
            .send(|c| {
                c.post(&url)
                    .header("17token", self.key.as_str())
                    .header("content-type", "application/json")
                    .body(body.to_string())
            })
            .await?;
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            CallError::Transient(format!("17track {endpoint}: response is not JSON: {e}"))
        })?;
        let code = v.get("code").and_then(Value::as_i64).ok_or_else(|| {
            CallError::Transient(format!("17track {endpoint}: response has no code"))
        })?;
        if code != 0 {
            let msg = v
                .pointer("/data/errors/0/message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            let msg = format!("17track {endpoint}: error {code}: {msg}");
            return Err(if AUTH_CODES.contains(&code) {
                CallError::Auth(msg)
            } else {
                CallError::Transient(msg)
            });
        }
        Ok(v)
    }

    /// `register`: numbers without a carrier (auto-detection).
    pub async fn register(&self, numbers: &[String]) -> Result<Envelope, CallError> {
        let body = Value::Array(numbers.iter().map(|n| json!({ "number": n })).collect());
        let v = self.call("register", &body).await?;
        let mut env = parse_envelope(&v)
            .map_err(|e| CallError::Transient(format!("17track register: {e:#}")))?;
        env.only_asked(numbers, "register");
        Ok(env)
    }

    /// `gettrackinfo` with the carrier codes 17TRACK assigned.
    pub async fn gettrackinfo(
        &self,
        items: &[(String, Option<i64>)],
    ) -> Result<Envelope, CallError> {
        let v = self.call("gettrackinfo", &number_items(items)).await?;
        let mut env = parse_envelope(&v)
            .map_err(|e| CallError::Transient(format!("17track gettrackinfo: {e:#}")))?;
        env.only_asked(&asked_numbers(items), "gettrackinfo");
        Ok(env)
    }

    /// `stoptrack` after delivery is confirmed.
    pub async fn stoptrack(&self, items: &[(String, Option<i64>)]) -> Result<Envelope, CallError> {
        let v = self.call("stoptrack", &number_items(items)).await?;
        let mut env = parse_envelope(&v)
            .map_err(|e| CallError::Transient(format!("17track stoptrack: {e:#}")))?;
        env.only_asked(&asked_numbers(items), "stoptrack");
        Ok(env)
    }

    /// `getquota`.
    pub async fn getquota(&self) -> Result<Quota, CallError> {
        let v = self.call("getquota", &json!({})).await?;
        Ok(parse_quota(&v))
    }
}

fn asked_numbers(items: &[(String, Option<i64>)]) -> Vec<String> {
    items.iter().map(|(n, _)| n.clone()).collect()
}

fn number_items(items: &[(String, Option<i64>)]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|(n, c)| match c {
                Some(c) => json!({ "number": n, "carrier": c }),
                None => json!({ "number": n }),
            })
            .collect(),
    )
}

/// Parses `{"code":0,"data":{"accepted":[…],"rejected":[…]}}`.
pub fn parse_envelope(v: &Value) -> Result<Envelope> {
    let data = v.get("data").context("no data")?;
    let list = |k: &str| -> Vec<Value> {
        data.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let accepted = list("accepted")
        .into_iter()
        .filter_map(|item| {
            let number = normalise_number(item.get("number")?.as_str()?);
            let carrier = item.get("carrier").and_then(Value::as_i64);
            Some(Accepted {
                number,
                carrier,
                item,
            })
        })
        .collect();
    let rejected = list("rejected")
        .into_iter()
        .filter_map(|item| {
            Some(Rejected {
                number: normalise_number(item.get("number")?.as_str()?),
                code: item
                    .pointer("/error/code")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                message: item
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("rejected")
                    .to_owned(),
            })
        })
        .collect();
    Ok(Envelope { accepted, rejected })
}

/// Parses a `getquota` response; missing fields read as 0.
pub fn parse_quota(v: &Value) -> Quota {
    let f = |k: &str| {
        v.pointer(&format!("/data/{k}"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    Quota {
        total: f("quota_total"),
        used: f("quota_used"),
        remain: f("quota_remain"),
        today_used: f("today_used"),
        max_daily: f("max_track_daily"),
    }
}

fn s<'v>(v: &'v Value, ptr: &str) -> Option<&'v str> {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn utc(v: &Value, ptr_utc: &str, ptr_iso: &str) -> Option<DateTime<Utc>> {
    s(v, ptr_utc)
        .or_else(|| s(v, ptr_iso))
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// A date from `estimated_delivery_date.from/to`: an RFC 3339 time (its own
/// calendar date) or a bare `YYYY-MM-DD`.
fn eta_date(v: &Value, ptr: &str) -> Option<NaiveDate> {
    let t = s(v, ptr)?;
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.date_naive())
        .or_else(|| NaiveDate::parse_from_str(t.get(..10)?, "%Y-%m-%d").ok())
}

/// One accepted `gettrackinfo` item → [`TrackResult`].
pub fn parse_track_info(acc: &Accepted) -> Result<TrackResult> {
    let ti = acc
        .item
        .get("track_info")
        .filter(|t| t.is_object())
        .ok_or_else(|| anyhow!("17track item {} has no track_info", acc.number))?;
    let main = s(ti, "/latest_status/status");
    let sub = s(ti, "/latest_status/sub_status");
    let providers = ti
        .pointer("/tracking/providers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut events: Vec<TrackEvent> = Vec::new();
    for p in &providers {
        for e in p
            .get("events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(time_utc) = utc(e, "/time_utc", "/time_iso") else {
                continue;
            };
            let description = s(e, "/description").unwrap_or("").to_owned();
            let raw_code = s(e, "/sub_status")
                .or_else(|| s(e, "/stage"))
                .map(str::to_owned);
            events.push(TrackEvent {
                time_utc,
                time_local: s(e, "/time_iso").map(str::to_owned),
                description,
                location: s(e, "/location").map(str::to_owned),
                status: status::seventeen_event(s(e, "/sub_status"), s(e, "/stage")),
                raw_code,
            });
        }
    }
    crate::model::sort_dedup_events(&mut events);
    let found = main != Some("NotFound") || !events.is_empty();
    let st = status::seventeen(main, sub)
        .or_else(|| events.first().and_then(|e| e.status))
        .unwrap_or(if found {
            ParcelStatus::InTransit
        } else {
            ParcelStatus::Pending
        });
    if status::seventeen(main, sub).is_none() && (main.is_some() || sub.is_some()) {
        tracing::warn!(number = %acc.number, status = ?main, sub_status = ?sub, "unknown 17track status");
    }
    let raw_status = match (main, sub) {
        (Some(m), Some(s)) => Some(format!("{m}/{s}")),
        (Some(m), None) => Some(m.to_owned()),
        (None, Some(s)) => Some(s.to_owned()),
        (None, None) => None,
    };
    let status_detail = s(ti, "/latest_status/sub_status_descr")
        .map(str::to_owned)
        .or_else(|| {
            events
                .first()
                .map(|e| e.description.clone())
                .filter(|d| !d.is_empty())
        })
        .or_else(|| s(ti, "/latest_event/description").map(str::to_owned));
    let delivered_at = if st.is_final() {
        let stage = if st == ParcelStatus::Delivered {
            "Delivered"
        } else {
            "Returned"
        };
        ti.get("milestone")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|m| s(m, "/key_stage") == Some(stage))
            .and_then(|m| utc(m, "/time_utc", "/time_iso"))
            .or_else(|| {
                events
                    .iter()
                    .find(|e| e.status == Some(st))
                    .map(|e| e.time_utc)
            })
            .or_else(|| utc(ti, "/latest_event/time_utc", "/latest_event/time_iso"))
            .or_else(|| events.first().map(|e| e.time_utc))
    } else {
        None
    };
    let carrier = providers
        .first()
        .and_then(|p| s(p, "/provider/name"))
        .map(str::to_owned);
    let last_mile = s(ti, "/misc_info/local_number")
        .map(normalise_number)
        .filter(|n| *n != acc.number && n.len() >= 4)
        .map(TrackingNumber::from);
    Ok(TrackResult {
        number: TrackingNumber::new(&acc.number),
        found,
        status: st,
        raw_status,
        status_detail,
        carrier,
        carrier_code: acc.carrier,
        events,
        eta_from: eta_date(ti, "/time_metrics/estimated_delivery_date/from"),
        eta_to: eta_date(ti, "/time_metrics/estimated_delivery_date/to"),
        delivered_at,
        last_mile,
    })
}

/// The 17TRACK provider: registers each number once (quota), then asks
/// for its track info; stops tracking once delivery is confirmed.
pub struct SeventeenTrack {
    http: std::sync::Arc<Http>,
    base_url: String,
    /// Where the api key comes from: read again at the start of every
    /// pass, so a key file replaced on disk is used without a restart; a
    /// `api_key_command`'s answer is kept until 17TRACK refuses it.
    secret: Secret,
    /// The key this pass uses.
    key: std::sync::Mutex<String>,
    /// Numbers whose info could not be read are asked for again after this.
    refresh_interval: std::time::Duration,
}

impl SeventeenTrack {
    /// Reads the key now: an unreadable or empty key is an error (at
    /// start: the config is wrong).
    pub fn new(
        http: std::sync::Arc<Http>,
        base_url: String,
        secret: Secret,
        refresh_interval: std::time::Duration,
    ) -> Result<SeventeenTrack> {
        let key = secret.resolve().context("17track api key")?;
        Ok(SeventeenTrack {
            http,
            base_url,
            secret,
            key: std::sync::Mutex::new(key),
            refresh_interval,
        })
    }

    fn client(&self) -> Client<'_> {
        Client {
            http: &self.http,
            base_url: &self.base_url,
            key: self.current_key(),
        }
    }

    fn current_key(&self) -> String {
        // A panic elsewhere while holding this lock leaves a whole String.
        self.key.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the key again for a new pass; `Some` when it cannot be read
    /// (this pass skips 17TRACK and says why; the next one reads again).
    fn reload_key(&self) -> Option<Outcome> {
        match self.secret.resolve() {
            Ok(key) => {
                let mut current = self.key.lock().unwrap_or_else(|p| p.into_inner());
                if *current != key {
                    tracing::info!("17track api key changed; using the new one");
                    *current = key;
                }
                None
            }
            Err(e) => Some(Outcome::AuthFailed(format!(
                "cannot read the 17track api key: {e}"
            ))),
        }
    }

    /// After 17TRACK refused the key: a command is asked again next pass.
    fn forget_refused_key(&self, out: &[Outcome]) {
        if out.iter().any(|o| matches!(o, Outcome::AuthFailed(_))) {
            self.secret.forget();
        }
    }

    fn auth_failed(why: &str) -> Outcome {
        Outcome::AuthFailed(format!(
            "17track refused the api key ({why}); check tracking.api_key_file and the key on the 17TRACK dashboard"
        ))
    }

    /// Whether registrations may be tried: not while the quota is known to
    /// be exhausted, except for a `getquota` probe once an hour.
    async fn may_register(
        &self,
        state: &TrackingState,
        now: DateTime<Utc>,
        out: &mut Vec<Outcome>,
    ) -> bool {
        if state.quota_exhausted.is_none() {
            return true;
        }
        let probe_due = state
            .quota_checked_at
            .is_none_or(|t| (now - t).to_std().is_ok_and(|d| d >= QUOTA_PROBE_EVERY));
        if !probe_due {
            return false;
        }
        out.push(Outcome::QuotaProbed(now));
        match self.client().getquota().await {
            Ok(q) if q.left() > QUOTA_RESERVE => {
                out.push(Outcome::QuotaRead(q.left()));
                tracing::info!(remain = q.remain, "17track registration quota is back");
                out.push(Outcome::QuotaBack);
                true
            }
            Ok(q) => {
                out.push(Outcome::QuotaRead(q.left()));
                tracing::info!(
                    remain = q.remain,
                    today_used = q.today_used,
                    "17track registration quota still exhausted"
                );
                false
            }
            Err(CallError::Auth(m)) => {
                out.push(Self::auth_failed(&m));
                false
            }
            Err(CallError::Transient(m)) => {
                tracing::warn!(error = %m, "17track getquota failed");
                false
            }
        }
    }

    /// Registrations left before spending any: `getquota` is read when
    /// the stored reading is missing or older than a day (one request on
    /// the days something is registered). `Ok(None)`: no reading (an
    /// answer without the counters; 17TRACK's own refusal then stops
    /// registrations); `Err`: the provider is failing now.
    async fn budget(
        &self,
        state: &TrackingState,
        now: DateTime<Utc>,
        out: &mut Vec<Outcome>,
    ) -> Result<Option<i64>, String> {
        if let Some(q) = out.iter().rev().find_map(|o| match o {
            Outcome::QuotaRead(q) => Some(*q),
            _ => None,
        }) {
            return Ok(Some(q));
        }
        let fresh = state
            .quota_checked_at
            .is_some_and(|t| (now - t).to_std().is_ok_and(|d| d < QUOTA_READ_EVERY));
        if let (Some(q), true) = (state.quota_remain, fresh) {
            return Ok(Some(q));
        }
        out.push(Outcome::QuotaProbed(now));
        match self.client().call("getquota", &json!({})).await {
            Ok(v) if v.pointer("/data/quota_remain").is_none() => {
                tracing::warn!(
                    "17track getquota answered without quota_remain; registering without a reading"
                );
                Ok(None)
            }
            Ok(v) => {
                // Stored capped: a reading is reused for a day, and the
                // day's limit must hold for every pass that reuses it.
                let left = parse_quota(&v).left();
                out.push(Outcome::QuotaRead(left));
                Ok(Some(left))
            }
            Err(CallError::Auth(m)) => {
                out.push(Self::auth_failed(&m));
                Ok(None)
            }
            Err(CallError::Transient(m)) => Err(m),
        }
    }

    /// Registers the unregistered due parcels, batch by batch. Returns the
    /// numbers now registered (to fetch in the same pass), or `None` when
    /// the key was refused.
    async fn register_all(
        &self,
        unregistered: &[&DueParcel],
        state: &TrackingState,
        now: DateTime<Utc>,
        out: &mut Vec<Outcome>,
    ) -> Option<Vec<(String, Option<i64>)>> {
        let mut fetch = Vec::new();
        let mut may = self.may_register(state, now, out).await;
        if out.iter().any(|o| matches!(o, Outcome::AuthFailed(_))) {
            return None;
        }
        let mut budget = if may {
            match self.budget(state, now, out).await {
                Ok(b) => b,
                // The provider is failing now (5xx, a redirect, timeouts):
                // no registrations this pass; the parcels stay due and the
                // next provider may take them.
                Err(m) => {
                    out.push(Outcome::BatchFailed {
                        what: "getquota",
                        numbers: unregistered.iter().map(|p| p.number.clone()).collect(),
                        kind: fail_kind(&m),
                        error: m,
                    });
                    return Some(fetch);
                }
            }
        } else {
            None
        };
        if out.iter().any(|o| matches!(o, Outcome::AuthFailed(_))) {
            return None;
        }
        for all in unregistered.chunks(BATCH) {
            // Registrations stop at the reserve, before the quota is gone.
            let allowed = match budget {
                Some(b) => usize::try_from((b - QUOTA_RESERVE).max(0)).unwrap_or(0),
                None => all.len(),
            };
            if may && allowed < all.len() && budget.is_some() {
                let msg = format!(
                    "17track registration quota at its reserve ({} left, {QUOTA_RESERVE} kept back); new numbers wait until it is back",
                    budget.unwrap_or(0)
                );
                tracing::warn!(message = %msg, "17track quota");
                out.push(Outcome::QuotaExhausted(Some(msg)));
                may = false;
                if allowed == 0 {
                    out.push(Outcome::Queued(all.len()));
                    continue;
                }
            } else if !may {
                out.push(Outcome::Queued(all.len()));
                continue;
            }
            let (batch, later) = all.split_at(allowed.min(all.len()));
            if !later.is_empty() {
                out.push(Outcome::Queued(later.len()));
            }
            if let Some(b) = budget.as_mut() {
                *b -= batch.len() as i64;
            }
            let numbers: Vec<String> = batch.iter().map(|p| p.number.to_string()).collect();
            match self.client().register(&numbers).await {
                Ok(env) => {
                    let (result, ok, quota) = registration(batch, &env, now);
                    fetch.extend(ok);
                    out.push(Outcome::Batch(result));
                    if quota.queued > 0 {
                        out.push(Outcome::Queued(quota.queued));
                    }
                    if let Some(m) = quota.message {
                        out.push(Outcome::QuotaRead(0));
                        let msg = format!(
                            "17track registration quota exhausted ({m}); new numbers wait until it is back"
                        );
                        tracing::warn!(message = %msg, "17track quota");
                        out.push(Outcome::QuotaExhausted(Some(msg)));
                        may = false;
                    }
                }
                Err(CallError::Auth(m)) => {
                    out.push(Self::auth_failed(&m));
                    return None;
                }
                Err(CallError::Transient(m)) => out.push(Outcome::BatchFailed {
                    what: "register",
                    numbers: batch.iter().map(|p| p.number.clone()).collect(),
                    kind: fail_kind(&m),
                    error: m,
                }),
            }
        }
        if !may {
            out.push(Outcome::QuotaExhausted(None));
        }
        Some(fetch)
    }

    /// Asks for the track info of registered numbers, batch by batch.
    async fn fetch_all(
        &self,
        fetch: &[(String, Option<i64>)],
        now: DateTime<Utc>,
        out: &mut Vec<Outcome>,
    ) {
        let retry = now
            + chrono::Duration::from_std(self.refresh_interval)
                .unwrap_or(chrono::Duration::hours(6));
        for batch in fetch.chunks(BATCH) {
            match self.client().gettrackinfo(batch).await {
                Ok(env) => {
                    let mut b = ProviderBatch::default();
                    for a in &env.accepted {
                        match parse_track_info(a) {
                            Ok(r) => b.results.push(r),
                            Err(e) => b.failed.push((
                                a.number.as_str().into(),
                                format!("{e:#}"),
                                Failure::RetryAt(retry),
                            )),
                        }
                    }
                    for r in &env.rejected {
                        match r.code {
                            NOT_REGISTERED => b.unregistered.push(r.number.as_str().into()),
                            NO_INFO_YET => b.results.push(TrackResult::not_found(&r.number)),
                            _ => b.failed.push((
                                r.number.as_str().into(),
                                format!("17track: {}", r.message),
                                Failure::RetryAt(retry),
                            )),
                        }
                    }
                    out.push(Outcome::Batch(b));
                }
                Err(CallError::Auth(m)) => {
                    out.push(Self::auth_failed(&m));
                    return;
                }
                Err(CallError::Transient(m)) => out.push(Outcome::BatchFailed {
                    what: "gettrackinfo",
                    numbers: batch.iter().map(|(n, _)| TrackingNumber::new(n)).collect(),
                    kind: fail_kind(&m),
                    error: m,
                }),
            }
        }
    }
}

/// A transient call error's kind: rate limits are told apart by their
/// text (`CallError` keeps only the message).
fn fail_kind(m: &str) -> super::FailKind {
    if m.contains("rate limited") || m.contains("too frequent") {
        super::FailKind::RateLimited
    } else {
        super::FailKind::Transient
    }
}

/// What a `register` answer means for the store, the numbers to fetch now,
/// and whether the quota ran out.
fn registration(
    batch: &[&DueParcel],
    env: &Envelope,
    now: DateTime<Utc>,
) -> (ProviderBatch, Vec<(String, Option<i64>)>, QuotaNews) {
    let mut ok: Vec<(String, Option<i64>)> = env
        .accepted
        .iter()
        .map(|a| (a.number.clone(), a.carrier))
        .collect();
    let mut b = ProviderBatch::default();
    let mut quota = QuotaNews::default();
    for r in &env.rejected {
        match r.code {
            ALREADY_REGISTERED => {
                let code = batch
                    .iter()
                    .find(|p| p.number == r.number)
                    .and_then(|p| p.carrier_code);
                ok.push((r.number.clone(), code));
            }
            DAILY_LIMIT | QUOTA_RAN_OUT => {
                quota.queued += 1;
                quota.message = Some(r.message.clone());
            }
            BAD_FORMAT => b.failed.push((
                r.number.as_str().into(),
                format!("17track: {}", r.message),
                Failure::GiveUp,
            )),
            _ => b.failed.push((
                r.number.as_str().into(),
                format!("17track register: {}", r.message),
                Failure::RetryAt(now + chrono::Duration::hours(24)),
            )),
        }
    }
    b.registered = ok
        .iter()
        .map(|(n, c)| (TrackingNumber::new(n), *c))
        .collect();
    (b, ok, quota)
}

/// Registrations refused for quota in one answer.
#[derive(Debug, Default)]
struct QuotaNews {
    queued: usize,
    message: Option<String>,
}

impl SeventeenTrack {
    /// One pass's registrations and fetches with the key just read.
    async fn refresh_with_key(
        &self,
        due: &[DueParcel],
        state: &TrackingState,
        now: DateTime<Utc>,
    ) -> Vec<Outcome> {
        let mut out = Vec::new();
        let unregistered: Vec<&DueParcel> = due.iter().filter(|p| !p.registered).collect();
        let mut fetch: Vec<(String, Option<i64>)> = due
            .iter()
            .filter(|p| p.registered)
            .map(|p| (p.number.to_string(), p.carrier_code))
            .collect();
        if !unregistered.is_empty() {
            match self.register_all(&unregistered, state, now, &mut out).await {
                Some(more) => fetch.extend(more),
                None => return out,
            }
        }
        self.fetch_all(&fetch, now, &mut out).await;
        out
    }

    async fn finish_with_key(&self, confirmed: &[(String, Option<i64>)]) -> Vec<Outcome> {
        for batch in confirmed.chunks(BATCH) {
            match self.client().stoptrack(batch).await {
                Ok(_) => {}
                Err(CallError::Auth(m)) => return vec![Self::auth_failed(&m)],
                Err(CallError::Transient(m)) => {
                    tracing::warn!(error = %m, "17track stoptrack failed")
                }
            }
        }
        Vec::new()
    }
}

impl TrackingProvider for SeventeenTrack {
    fn provider(&self) -> Provider {
        Provider::SeventeenTrack
    }

    fn refresh<'a>(
        &'a self,
        due: &'a [DueParcel],
        state: &'a TrackingState,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            if let Some(unreadable) = self.reload_key() {
                return vec![unreadable];
            }
            let out = self.refresh_with_key(due, state, now).await;
            self.forget_refused_key(&out);
            out
        })
    }

    /// Delivery confirmed: tell 17TRACK to stop (retrack stays possible
    /// once). A failure here costs nothing but 17TRACK's own effort.
    fn finish<'a>(&'a self, confirmed: &'a [(String, Option<i64>)]) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let out = self.finish_with_key(confirmed).await;
            self.forget_refused_key(&out);
            out
        })
    }

    /// `getquota`, which also shows the quota.
    fn check(&self) -> BoxFuture<'_, anyhow::Result<String>> {
        Box::pin(async move {
            let q = self
                .client()
                .getquota()
                .await
                .map_err(|e| anyhow!("17track: {e:?}"))?;
            Ok(format!(
                "17track ok: registration quota {} of {} left, {} used today",
                q.remain, q.total, q.today_used
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reading is reused for a day: what is stored must already hold the
    /// daily limit (it once stored the whole quota and registered past it).
    #[test]
    fn registrations_left_are_the_quota_capped_by_todays_limit() {
        let q = |remain, today_used, max_daily| Quota {
            total: 200,
            used: 200 - remain,
            remain,
            today_used,
            max_daily,
        };
        assert_eq!(q(100, 8, 10).left(), 2);
        assert_eq!(q(100, 12, 10).left(), 0);
        assert_eq!(q(5, 0, 0).left(), 5, "no daily limit");
        assert_eq!(q(0, 0, 10).left(), 0);
        assert!(!q(100, 10, 10).can_register());
        assert!(q(100, 9, 10).can_register());
    }

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/tracking-api/17track/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("fixture exists");
        serde_json::from_str(&text).expect("fixture is JSON")
    }

    #[test]
    fn parses_the_real_delivered_track_info() {
        let env = parse_envelope(&fixture(
            "gettrackinfo_response_delivered_realtrackinfo.json",
        ))
        .expect("parses");
        let r = parse_track_info(&env.accepted[0]).expect("has track_info");
        assert_eq!(r.status, ParcelStatus::Delivered);
        assert_eq!(r.raw_status.as_deref(), Some("Delivered/Delivered_Other"));
        assert_eq!(r.carrier.as_deref(), Some("UPS"));
        assert_eq!(r.status_detail.as_deref(), Some("DELIVERED"));
        assert_eq!(
            r.delivered_at.map(crate::store::fmt_time).as_deref(),
            Some("2022-04-04T23:35:22Z")
        );
        assert!(r.events.len() > 3);
        assert!(
            r.events.windows(2).all(|w| w[0].time_utc >= w[1].time_utc),
            "newest first"
        );
        assert_eq!(
            r.events[0].time_local.as_deref(),
            Some("2022-04-04T16:35:22-07:00")
        );
        assert_eq!(r.last_mile, None, "empty local_number is no number");
    }

    #[test]
    fn parses_in_transit_not_found_and_rejected() {
        let env = parse_envelope(&fixture(
            "reconstructed_gettrackinfo_response_mixed_all.json",
        ))
        .expect("parses");
        let by = |n: &str| {
            let a = env
                .accepted
                .iter()
                .find(|a| a.number == n)
                .expect("present");
            parse_track_info(a).expect("parses")
        };
        let lp = by("LP00123456789012");
        assert_eq!(lp.status, ParcelStatus::InTransit);
        assert_eq!(lp.status_detail.as_deref(), Some("Departed from customs"));
        assert_eq!(lp.carrier.as_deref(), Some("Cainiao"));
        assert_eq!(lp.carrier_code, Some(190271));
        assert_eq!(lp.events[1].status, Some(ParcelStatus::Customs));
        let rr = by("RR123456789CN");
        assert!(!rr.found);
        assert_eq!(rr.status, ParcelStatus::Pending);
        assert!(rr.events.is_empty());
        assert_eq!(env.rejected[0].code, NOT_REGISTERED);
    }

    #[test]
    fn register_envelopes() {
        let env =
            parse_envelope(&fixture("reconstructed_register_response_mixed.json")).expect("ok");
        assert_eq!(env.accepted.len(), 2);
        assert_eq!(env.accepted[1].carrier, Some(3011));
        assert_eq!(env.rejected[0].code, BAD_FORMAT);
        let env = parse_envelope(&fixture(
            "reconstructed_register_response_quota_exhausted.json",
        ))
        .expect("ok");
        assert_eq!(env.rejected[0].code, QUOTA_RAN_OUT);
        let q = parse_quota(&fixture("reconstructed_getquota_response.json"));
        assert_eq!(q.remain, 158);
        assert!(q.can_register());
    }

    #[test]
    fn webhook_track_infos_parse_too() {
        let v = fixture("webhook_TRACKING_UPDATED_exception_DHLPaket.json");
        let acc = Accepted {
            number: "1234567890".into(),
            carrier: Some(7041),
            item: v["data"].clone(),
        };
        let r = parse_track_info(&acc).expect("parses");
        assert_eq!(r.status, ParcelStatus::Exception);
        assert!(r.status_detail.is_some());
    }
}
