//! The Cainiao client: the unofficial public endpoint Cainiao's own tracking
//! page calls, `GET {base_url}/global/detail.json?mailNos=a,b,c&lang=en-US`.
//!
//! No key, at most 10 numbers per request (ha-cainiao's batch size). There is
//! no documentation; Alibaba throttles "unusual traffic", so the schedule
//! never asks for a parcel more often than every 6 h. Quirks handled here:
//! - an unknown number is HTTP 200 with a module entry whose `detailList` is
//!   empty (and no `status`): "not found yet", not an error;
//! - `success:false` on HTTP 200 means the service is unhappy with the caller;
//! - the top-level `status` vocabulary drifted, so the status is read from
//!   the NEWEST event's `actionCode`; `GTMS_STA_SIGNED` is a pickup station
//!   signing, not delivery;
//! - `timeZone` is `GMT+8`, `GMT+08:00`, `GMT-3` or blank (blank = GMT+8);
//!   `time` (epoch ms) is the instant; in the recorded payloads `timeStr` is
//!   that instant on Beijing wall clock whatever `timeZone` says, so the
//!   local time kept is `time` shown in `timeZone`;
//! - the last-mile number hides in `realMailNo` as
//!   `"Latest Tracking Number:\tRC…"`.

use anyhow::{bail, Context, Result};
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use super::status;
use super::{Http, HttpError, Outcome, TrackingProvider};
use crate::facts::{DueParcel, ProviderBatch, TrackingState};
use crate::model::ParcelStatus;
use crate::model::{normalise_number, Provider, TrackEvent, TrackResult, TrackingNumber};
use futures::future::BoxFuture;

// The provider's facts (formats, batch, pacing, page) are plain values the
// vocabulary also needs; they live one floor down, in `crate::providers`.
pub use crate::providers::cainiao::{accepts, tracking_page, BAN_BACKOFF, BATCH, MIN_INTERVAL};

/// The Cainiao client.
pub struct Client<'a> {
    pub http: &'a Http,
    pub base_url: &'a str,
}

impl Client<'_> {
    /// Asks for a batch; every number of the batch gets a result (a number
    /// missing from the answer reads as "not found yet").
    pub async fn detail(&self, numbers: &[String]) -> Result<Vec<TrackResult>, HttpError> {
        let url = format!("{}/global/detail.json", self.base_url.trim_end_matches('/'));
        let joined = numbers.join(",");
        let text = self
            .http
            .send(|c| {
                c.get(&url)
                    .query(&[("mailNos", joined.as_str()), ("lang", "en-US")])
            })
            .await?;
        parse_detail(&text, numbers).map_err(|e| HttpError::BadBody(format!("{e:#}")))
    }
}

/// Parses a `detail.json` body for the numbers asked for.
pub fn parse_detail(text: &str, asked: &[String]) -> Result<Vec<TrackResult>> {
    let v: Value = serde_json::from_str(text).context("cainiao response is not JSON")?;
    if v.get("success").and_then(Value::as_bool) == Some(false) {
        let code = v
            .get("errorCode")
            .map(|c| c.to_string())
            .unwrap_or_default();
        let msg = v.get("errorMsg").and_then(Value::as_str).unwrap_or("");
        bail!("cainiao refused the request (success=false {code} {msg})");
    }
    let modules = v
        .get("module")
        .and_then(Value::as_array)
        .context("cainiao response has no module list")?;
    let mut out = Vec::with_capacity(asked.len());
    for n in asked {
        let m = modules.iter().find(|m| {
            m.get("mailNo")
                .and_then(Value::as_str)
                .is_some_and(|x| normalise_number(x) == *n)
        });
        out.push(match m {
            Some(m) => parse_module(n, m),
            None => TrackResult::not_found(n),
        });
    }
    Ok(out)
}

fn text<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `GMT+8`, `GMT+08:00`, `GMT-3`, `UTC+2` → offset; blank or odd → GMT+8
/// (itsvic-dev/deliveries does the same).
pub fn parse_zone(z: Option<&str>) -> FixedOffset {
    let china = FixedOffset::east_opt(8 * 3600).expect("+8 h is a valid offset");
    let Some(z) = z else { return china };
    let rest = z.trim().trim_start_matches("GMT").trim_start_matches("UTC");
    let (sign, rest) = match rest.chars().next() {
        Some('+') => (1, &rest[1..]),
        Some('-') => (-1, &rest[1..]),
        _ => return china,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok(), m.parse::<i32>().ok()),
        None => (rest.parse::<i32>().ok(), Some(0)),
    };
    match (h, m) {
        (Some(h), Some(m)) if h <= 14 && m < 60 => {
            FixedOffset::east_opt(sign * (h * 3600 + m * 60)).unwrap_or(china)
        }
        _ => china,
    }
}

fn event(e: &Value) -> Option<TrackEvent> {
    let zone = parse_zone(text(e, "timeZone"));
    let local_wall =
        text(e, "timeStr").and_then(|t| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok());
    let time_utc = e
        .get("time")
        .and_then(Value::as_i64)
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .or_else(|| {
            local_wall
                .and_then(|w| zone.from_local_datetime(&w).single())
                .map(|t| t.with_timezone(&Utc))
        })?;
    let time_local = time_utc.with_timezone(&zone).to_rfc3339();
    let description = text(e, "desc")
        .or_else(|| text(e, "standerdDesc"))
        .unwrap_or("");
    let code = text(e, "actionCode");
    Some(TrackEvent {
        time_utc,
        time_local: Some(time_local),
        description: description.to_owned(),
        location: None,
        status: code.and_then(status::cainiao),
        raw_code: code.map(str::to_owned),
    })
}

fn ms_date(v: &Value, k: &str) -> Option<chrono::NaiveDate> {
    v.get(k)
        .and_then(Value::as_i64)
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|t| t.date_naive())
}

/// One `module[]` entry → [`TrackResult`].
pub fn parse_module(n: &str, m: &Value) -> TrackResult {
    let mut events: Vec<TrackEvent> = m
        .get("detailList")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(event)
        .collect();
    crate::model::sort_dedup_events(&mut events);
    if events.is_empty() {
        let mut r = TrackResult::not_found(n);
        r.raw_status = text(m, "status").map(str::to_owned);
        return r;
    }
    let newest = &events[0];
    let st = newest.status.unwrap_or_else(|| {
        tracing::warn!(number = n, action_code = ?newest.raw_code, "unknown cainiao actionCode");
        events
            .iter()
            .find_map(|e| e.status)
            .unwrap_or(ParcelStatus::InTransit)
    });
    let raw_status = newest
        .raw_code
        .clone()
        .or_else(|| text(m, "status").map(str::to_owned));
    let delivered_at = if st.is_final() {
        events
            .iter()
            .find(|e| e.status == Some(st))
            .map(|e| e.time_utc)
    } else {
        None
    };
    let eta = m.get("globalEtaInfo");
    let own = n.to_owned();
    let last_mile = ["realMailNo", "copyRealMailNo"]
        .iter()
        .filter_map(|k| text(m, k))
        .flat_map(|s| {
            s.split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|t| t.len() >= 8 && t.chars().any(|c| c.is_ascii_digit()))
                .map(normalise_number)
                .collect::<Vec<_>>()
        })
        .find(|t| *t != own)
        .map(TrackingNumber::from);
    TrackResult {
        number: TrackingNumber::new(n),
        found: true,
        status: st,
        raw_status,
        status_detail: Some(newest.description.clone()).filter(|d| !d.is_empty()),
        carrier: Some("Cainiao".to_owned()),
        carrier_code: None,
        eta_from: eta.and_then(|e| ms_date(e, "deliveryMinTime")),
        eta_to: eta.and_then(|e| ms_date(e, "deliveryMaxTime")),
        events,
        delivered_at,
        last_mile,
    }
}

/// The Cainiao provider (unofficial endpoint, no key): every due parcel
/// is asked for, at most [`BATCH`] per request.
pub struct Cainiao {
    pub http: std::sync::Arc<Http>,
    pub base_url: String,
}

impl Cainiao {
    fn client(&self) -> Client<'_> {
        Client {
            http: &self.http,
            base_url: &self.base_url,
        }
    }
}

impl TrackingProvider for Cainiao {
    fn provider(&self) -> Provider {
        Provider::Cainiao
    }

    fn refresh<'a>(
        &'a self,
        due: &'a [DueParcel],
        _state: &'a TrackingState,
        _now: DateTime<Utc>,
    ) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut failing: Option<(String, super::FailKind)> = None;
            for batch in due.chunks(BATCH) {
                // Once a request failed, the rest are not sent: hammering
                // an endpoint that is failing or banning is what gets a
                // client banned for longer. The next provider takes them.
                if let Some((error, kind)) = &failing {
                    out.push(Outcome::BatchFailed {
                        what: "detail.json (not sent)",
                        numbers: super::numbers_of(batch),
                        error: error.clone(),
                        kind: *kind,
                    });
                    continue;
                }
                let numbers: Vec<String> = batch.iter().map(|p| p.number.to_string()).collect();
                match self.client().detail(&numbers).await {
                    Ok(results) => out.push(Outcome::Batch(ProviderBatch {
                        results,
                        ..ProviderBatch::default()
                    })),
                    // A refusal (401/403) is a sign of a ban, not a bad
                    // key (there is none): the schedule leaves Cainiao
                    // alone for a day and the next provider takes over.
                    Err(e) => {
                        // `success:false` on HTTP 200 is Cainiao turning the
                        // caller away: a sign of a ban like a 429.
                        let kind = match &e {
                            HttpError::BadBody(m) if m.contains("cainiao refused the request") => {
                                super::FailKind::Refused
                            }
                            e => super::FailKind::of(e),
                        };
                        failing = Some((e.to_string(), kind));
                        out.push(Outcome::BatchFailed {
                            what: "detail.json",
                            numbers: super::numbers_of(batch),
                            error: e.to_string(),
                            kind,
                        })
                    }
                }
            }
            out
        })
    }

    fn check(&self) -> BoxFuture<'_, anyhow::Result<String>> {
        Box::pin(async move {
            self.client()
                .detail(&["LP00000000000".to_owned()])
                .await
                .map_err(|e| anyhow::anyhow!("cainiao: {e}"))?;
            Ok("cainiao ok (unofficial endpoint)".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/tracking-api/cainiao/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).expect("fixture exists")
    }

    #[test]
    fn zones() {
        for (z, secs) in [
            (Some("GMT+8"), 8 * 3600),
            (Some("GMT+08:00"), 8 * 3600),
            (Some("GMT-3"), -3 * 3600),
            (Some("GMT+2"), 2 * 3600),
            (Some(""), 8 * 3600),
            (None, 8 * 3600),
            (Some("Mars"), 8 * 3600),
        ] {
            assert_eq!(parse_zone(z).local_minus_utc(), secs, "{z:?}");
        }
    }

    #[test]
    fn batch_of_three() {
        let asked: Vec<String> = [
            "RC000000001EE",
            "RC000000002EE",
            "LP00000000000",
            "LPMISSING01",
        ]
        .map(String::from)
        .to_vec();
        let r = parse_detail(
            &fixture("reconstructed_detail_batch_three_numbers.json"),
            &asked,
        )
        .expect("parses");
        assert_eq!(r.len(), 4);
        let d = &r[0];
        assert_eq!(d.status, ParcelStatus::Delivered);
        assert_eq!(d.status_detail.as_deref(), Some("Parcel delivered"));
        assert_eq!(d.raw_status.as_deref(), Some("GTMS_SIGNED"));
        assert_eq!(
            d.delivered_at.map(crate::store::fmt_time).as_deref(),
            Some("2026-02-06T07:25:17Z")
        );
        assert_eq!(
            d.events[0].time_local.as_deref(),
            Some("2026-02-06T15:25:17+08:00")
        );
        assert_eq!(d.events.len(), 7);
        let c = &r[1];
        assert_eq!(c.status, ParcelStatus::InTransit, "leaving customs");
        assert_eq!(c.last_mile.as_deref(), Some("RC000000003EE"));
        assert_eq!(
            c.eta_from.map(|d| d.to_string()).as_deref(),
            Some("2026-08-27")
        );
        assert_eq!(
            c.events[0].time_local.as_deref(),
            Some("2026-08-23T08:18:40+02:00")
        );
        assert!(!r[2].found);
        assert_eq!(r[2].status, ParcelStatus::Pending);
        assert!(!r[3].found, "a number missing from the answer is not found");
    }

    #[test]
    fn empty_desc_falls_back_to_standerd_desc() {
        let module: Value =
            serde_json::from_str(&fixture("module_in_customs_brazil_pacotevicio.json"))
                .expect("json");
        let r = parse_module("LP00123456789CN", &module);
        assert_eq!(
            r.status_detail.as_deref(),
            Some("Import customs clearance complete")
        );
        assert_eq!(
            r.eta_from.map(|d| d.to_string()).as_deref(),
            Some("2025-06-04")
        );
        assert_eq!(
            r.eta_to.map(|d| d.to_string()).as_deref(),
            Some("2025-06-21")
        );
        assert_eq!(
            r.events[0].time_local.as_deref(),
            Some("2025-05-28T02:33:27-03:00")
        );
    }

    #[test]
    fn garbage_and_refusals_are_errors_not_panics() {
        let asked = vec!["LP1".to_owned()];
        for body in [
            "",
            "<html>",
            "{}",
            "{\"success\":false,\"errorMsg\":\"busy\"}",
            "[1,2]",
            "{\"module\":7}",
        ] {
            assert!(parse_detail(body, &asked).is_err(), "{body}");
        }
        let odd = r#"{"module":[{"mailNo":"LP1","detailList":[{"time":"x"},{"actionCode":5},{"time":1,"actionCode":"WHATEVER"}]}],"success":true}"#;
        let r = parse_detail(odd, &asked).expect("lenient");
        assert_eq!(r[0].status, ParcelStatus::InTransit);
    }
}
