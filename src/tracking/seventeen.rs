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
use super::{normalise_number, Http, HttpError, TrackEvent, TrackResult};
use crate::model::ParcelStatus;

/// Numbers per request (more gives -18010014).
pub const BATCH: usize = 40;

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
    /// Whether a registration can succeed now.
    pub fn can_register(&self) -> bool {
        self.remain > 0 && (self.max_daily <= 0 || self.today_used < self.max_daily)
    }
}

/// The 17TRACK client.
pub struct Client<'a> {
    pub http: &'a Http,
    pub base_url: &'a str,
    pub key: &'a str,
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
                    .header("17token", self.key)
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
        parse_envelope(&v).map_err(|e| CallError::Transient(format!("17track register: {e:#}")))
    }

    /// `gettrackinfo` with the carrier codes 17TRACK assigned.
    pub async fn gettrackinfo(
        &self,
        items: &[(String, Option<i64>)],
    ) -> Result<Envelope, CallError> {
        let v = self.call("gettrackinfo", &number_items(items)).await?;
        parse_envelope(&v).map_err(|e| CallError::Transient(format!("17track gettrackinfo: {e:#}")))
    }

    /// `stoptrack` after delivery is confirmed.
    pub async fn stoptrack(&self, items: &[(String, Option<i64>)]) -> Result<Envelope, CallError> {
        let v = self.call("stoptrack", &number_items(items)).await?;
        parse_envelope(&v).map_err(|e| CallError::Transient(format!("17track stoptrack: {e:#}")))
    }

    /// `getquota`.
    pub async fn getquota(&self) -> Result<Quota, CallError> {
        let v = self.call("getquota", &json!({})).await?;
        Ok(parse_quota(&v))
    }
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
    super::sort_dedup_events(&mut events);
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
        .filter(|n| *n != acc.number && n.len() >= 4);
    Ok(TrackResult {
        number: acc.number.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
