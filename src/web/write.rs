//! The web face's writes (SPEC §9): mark an order received, record a
//! protection extension, add a tracking number to an order. Each changes
//! exactly what the command line's `done`, `protection` and `add --order`
//! change, through the same functions ([`crate::ops`]), in the service, and
//! kicks the schedulers so Home Assistant and the next digest follow at once.
//!
//! | request | body | CLI |
//! |---|---|---|
//! | `POST /api/orders/{order_id}/done` | none | `done ORDER_ID` |
//! | `POST /api/orders/{order_id}/protection` | `{"extend_days": N}` or `{"until": "YYYY-MM-DD"}` | `protection ORDER_ID --extend N \| --until DATE` |
//! | `POST /api/orders/{order_id}/parcels` | `{"tracking_number": "…"}` | `add NUMBER --order ORDER_ID` |
//!
//! The body is JSON or, from the dashboard's forms, form-encoded (the same
//! field names), at most [`MAX_BODY`] bytes. Answers: `200` with the order as
//! in `status --json` (a form gets a small page saying what happened, with
//! the way back), `400` with `{"error": "…"}` for bad input, `404` for an
//! unknown order; the guard in the parent module has already answered
//! `405` to any other method and `401` to a request without the token in
//! its `Authorization` header or `?token=` (never a cookie: a page on
//! another site cannot make a browser send it, so there is no cross-site
//! request forgery), and writes need `token_file` even on loopback.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;

use super::Web;
use crate::ops;
use crate::render::email::esc;
use crate::render::text::percent_encode;
use crate::store::Store;

/// The largest write body.
pub const MAX_BODY: usize = 4096;

/// What a write asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Done,
    Protection,
    Parcel,
}

/// The fields a write body may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    extend_days: Option<u32>,
    until: Option<String>,
    tracking_number: Option<String>,
}

/// Where the answer goes: a program (JSON) or a person at the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reader {
    Json,
    /// A form on the dashboard; the token the page was opened with, for
    /// the way back.
    Page(Option<String>),
}

pub async fn done(state: State<Arc<Web>>, path: Path<String>, req: Request) -> Response {
    write(state, path, req, Write::Done).await
}

pub async fn protection(state: State<Arc<Web>>, path: Path<String>, req: Request) -> Response {
    write(state, path, req, Write::Protection).await
}

pub async fn parcels(state: State<Arc<Web>>, path: Path<String>, req: Request) -> Response {
    write(state, path, req, Write::Parcel).await
}

async fn write(
    State(web): State<Arc<Web>>,
    Path(order_id): Path<String>,
    req: Request,
    what: Write,
) -> Response {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let reader = if form {
        let token = super::query_values(req.uri().query().unwrap_or(""), "token")
            .next()
            .map(|t| String::from_utf8_lossy(&t).into_owned());
        Reader::Page(token)
    } else {
        Reader::Json
    };
    let bytes = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return refused(
                &reader,
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is larger than {MAX_BODY} bytes"),
            )
        }
    };
    let fields = match parse(&bytes, form) {
        Ok(f) => f,
        Err(e) => return refused(&reader, StatusCode::BAD_REQUEST, &e),
    };
    let cfg = web.cfg.clone();
    let outcome = tokio::task::spawn_blocking(move || apply(&cfg, &order_id, what, &fields)).await;
    match outcome {
        Ok(Ok((said, order_json))) => {
            // The schedulers publish the new state now (MQTT, the digest).
            web.live.kick();
            match &reader {
                Reader::Json => typed_json(StatusCode::OK, order_json),
                Reader::Page(token) => page(StatusCode::OK, &said, token.as_deref()),
            }
        }
        Ok(Err((status, message))) => refused(&reader, status, &message),
        Err(e) => {
            tracing::error!("web: a write's worker stopped: {e}");
            refused(
                &reader,
                StatusCode::INTERNAL_SERVER_ERROR,
                "aliwatch could not carry it out; see its log",
            )
        }
    }
}

/// The body as [`Fields`]: JSON (empty = no fields) or form-encoded.
fn parse(bytes: &[u8], form: bool) -> Result<Fields, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Fields::default());
    }
    if !form {
        return serde_json::from_slice(bytes)
            .map_err(|e| format!("the body is not the JSON this write takes: {e}"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "the form is not UTF-8".to_string())?;
    let value = |name: &str| {
        super::query_values(text, name)
            .next()
            .map(|v| String::from_utf8_lossy(&v).trim().to_string())
            .filter(|v| !v.is_empty())
    };
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        if !["extend_days", "until", "tracking_number"].contains(&key) {
            return Err(format!("unknown field {key:?}"));
        }
    }
    Ok(Fields {
        extend_days: match value("extend_days") {
            Some(v) => Some(
                v.parse()
                    .map_err(|_| format!("extend_days: {v:?} is not a number of days"))?,
            ),
            None => None,
        },
        until: value("until"),
        tracking_number: value("tracking_number"),
    })
}

/// Carries the write out as the command line would; the message the
/// command prints and the order as in `status --json`, or the status and
/// the reason it was refused.
fn apply(
    cfg: &crate::config::Config,
    order_id: &str,
    what: Write,
    f: &Fields,
) -> Result<(String, String), (StatusCode, String)> {
    let internal = |e: anyhow::Error| {
        tracing::error!("web: write: {e:#}");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "aliwatch could not carry it out; see its log".to_string(),
        )
    };
    let mut store = Store::open(&cfg.database).map_err(internal)?;
    let order_id = crate::model::normalise_number(order_id);
    if !store.order_known(&order_id).map_err(internal)? {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no order {order_id} is known"),
        ));
    }
    let now = Utc::now();
    // What the caller asked for was refused (400); anything else is ours (500).
    let refused = |e: anyhow::Error| {
        if let Some(f) = e.downcast_ref::<ops::Failed>() {
            (StatusCode::BAD_REQUEST, f.message.clone())
        } else if let Some(r) = e.downcast_ref::<crate::store::Refused>() {
            (StatusCode::BAD_REQUEST, r.0.clone())
        } else {
            internal(e)
        }
    };
    let said = match what {
        Write::Done => ops::done(&mut store, &order_id, now),
        Write::Protection => {
            let until = match &f.until {
                Some(u) => Some(NaiveDate::parse_from_str(u, "%Y-%m-%d").map_err(|_| {
                    (
                        StatusCode::BAD_REQUEST,
                        format!("until: {u:?} is not a date like 2027-01-31"),
                    )
                })?),
                None => None,
            };
            ops::protection_action(f.extend_days, until)
                .map_err(anyhow::Error::from)
                .and_then(|action| ops::protection(&mut store, cfg, &order_id, action, now))
        }
        Write::Parcel => match &f.tracking_number {
            Some(n) => ops::add(&mut store, n, Some(&order_id), false, false, now),
            None => return Err((StatusCode::BAD_REQUEST, "tracking_number is missing".into())),
        },
    }
    .map_err(refused)?;
    let report = crate::pipeline::status_report(&store, now, &cfg.rules()).map_err(internal)?;
    let order = report
        .orders
        .iter()
        .find(|o| o.order_id == order_id)
        .map(|o| serde_json::to_string(o).unwrap_or_default())
        .unwrap_or_else(|| "null".into());
    Ok((said.trim().to_string(), order))
}

fn typed_json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response()
}

fn refused(reader: &Reader, status: StatusCode, message: &str) -> Response {
    match reader {
        Reader::Json => typed_json(status, serde_json::json!({ "error": message }).to_string()),
        Reader::Page(token) => page(status, message, token.as_deref()),
    }
}

/// What a dashboard form gets back: what happened, and the way back.
fn page(status: StatusCode, said: &str, token: Option<&str>) -> Response {
    let back = match token {
        Some(t) => format!("/?token={}", percent_encode(t)),
        None => "/".to_string(),
    };
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>aliwatch</title>\n</head>\n<body>\n\
         <p>{}</p>\n<p><a href=\"{}\">Back to the dashboard</a></p>\n</body>\n</html>\n",
        esc(said),
        esc(&back)
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        Body::from(html),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_form_bodies_give_the_same_fields_and_strangers_are_refused() {
        let j = parse(br#"{"extend_days": 10}"#, false).expect("json");
        assert_eq!(j.extend_days, Some(10));
        let f = parse(b"extend_days=10", true).expect("form");
        assert_eq!(f.extend_days, Some(10));
        let f = parse(b"tracking_number=LP+0012", true).expect("form");
        assert_eq!(f.tracking_number.as_deref(), Some("LP 0012"));
        assert!(parse(br#"{"extend": 10}"#, false).is_err());
        assert!(parse(b"extend_days=ten", true).is_err());
        assert!(parse(b"order_id=1", true).is_err());
        assert!(parse(b"", false).expect("empty").extend_days.is_none());
    }
}
