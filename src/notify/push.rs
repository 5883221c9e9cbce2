//! The HTTP push channels of `[[notify]]` (SPEC §8): ntfy and webhooks.
//! One [`PushChannel`] per table, its name its ledger channel; it renders
//! an event (`render::push`), sends one HTTP POST and says whether the
//! other side accepted it. The ledger, retries and "exactly once" are the
//! pipeline's (`pipeline::notify`), as for email.
//!
//! - **ntfy**: the message as the plain-text body; `Title` (RFC 2047
//!   encoded-word when it is not ASCII, which ntfy decodes), `Priority`
//!   (`high` for protection warnings and `protection_ended`), `Tags`,
//!   `Click` (the order page), `Authorization: Bearer` with a token, and
//!   `X-Aliwatch-Id` (the event's id; ntfy ignores it).
//! - **webhook**: one JSON object per event, [`WebhookPayload`]; with a
//!   secret, `X-Aliwatch-Signature: sha256=HEX`, the HMAC-SHA256 of the
//!   exact body bytes.
//!
//! Limits: connect 10 s, whole request 20 s ([`CONNECT_TIMEOUT`],
//! [`REQUEST_TIMEOUT`]); redirects are never followed (a token must not be
//! handed to another host); at most [`MAX_ANSWER_BYTES`] of an answer are
//! read. TLS is always verified (system roots, plus `ca_file`). Errors name
//! the host, never the URL's path (an ntfy topic or a webhook id is as good
//! as a password) nor the token.

use std::time::Duration;

use anyhow::{Context, Result};
use futures::future::BoxFuture;
use serde::Serialize;

use super::{Delivery, Notifier, SendError};
use crate::config::{NotifyConfig, NotifyKind};
use crate::model::EventKind;
use crate::render::push::{render_push, PushMessage};
use crate::report::{fmt_utc, OrderView};
use crate::tracking::{describe, excerpt};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// An answer is only read for an error message.
pub const MAX_ANSWER_BYTES: usize = 4096;

/// The signature header of webhooks.
pub const SIGNATURE_HEADER: &str = "X-Aliwatch-Signature";

/// One `[[notify]]` channel over HTTP.
pub struct PushChannel {
    name: String,
    kind: NotifyKind,
    url: reqwest::Url,
    /// The resolved `token_file` (bearer token or HMAC secret).
    token: Option<String>,
    events: Vec<EventKind>,
    client: reqwest::Client,
}

/// The JSON a webhook receives (SPEC §8; docs/formats.md).
#[derive(Debug, Serialize)]
pub struct WebhookPayload<'a> {
    pub event: &'static str,
    /// Stable per event: a retry repeats it.
    pub id: &'a str,
    /// When this attempt was made (RFC 3339 UTC).
    pub time: String,
    pub order_id: Option<&'a str>,
    pub tracking_number: Option<&'a str>,
    pub title: &'a str,
    pub message: &'a str,
    pub url: Option<&'a str>,
    /// The order as in `status --json`.
    pub order: Option<&'a OrderView>,
}

impl PushChannel {
    /// Builds the channel: reads the token and the CA file. Errors name
    /// the channel and the file, never the secret.
    pub fn new(cfg: &NotifyConfig) -> Result<PushChannel> {
        let token = match &cfg.token {
            Some(s) => Some(s.resolve().map_err(|e| {
                crate::config::ConfigError(format!(
                    "{}: [[notify]] {:?}: {e}",
                    cfg.location, cfg.name
                ))
            })?),
            None => None,
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("aliwatch/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path).with_context(|| {
                format!(
                    "[[notify]] {:?}: cannot read ca_file {}",
                    cfg.name,
                    path.display()
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!(
                    "[[notify]] {:?}: ca_file {} is not valid PEM",
                    cfg.name,
                    path.display()
                )
            })?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder.build().context("cannot build the http client")?;
        let url = reqwest::Url::parse(&cfg.url)
            .with_context(|| format!("[[notify]] {:?}: invalid url", cfg.name))?;
        Ok(PushChannel {
            name: cfg.name.clone(),
            kind: cfg.kind,
            url,
            token,
            events: cfg.events.clone(),
            client,
        })
    }

    /// Where it posts, for messages: `https://host[:port]`.
    pub fn target(&self) -> String {
        let port = self.url.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}://{}{port}",
            self.url.scheme(),
            self.url.host_str().unwrap_or("")
        )
    }

    /// `check-config --connect`: a HEAD request to the URL, publishing
    /// nothing. Any answer but 401/403 (token rejected) and 5xx means the
    /// server is there: a webhook receiver may well refuse HEAD (405).
    pub async fn check(&self) -> Result<String> {
        let mut req = self.client.head(self.url.clone());
        if let (NotifyKind::Ntfy, Some(t)) = (self.kind, &self.token) {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", self.target(), describe(&e)))?;
        let status = resp.status();
        match status.as_u16() {
            401 | 403 => anyhow::bail!("{}: http {status}: the token was rejected", self.target()),
            500..=599 => anyhow::bail!("{}: http {status}", self.target()),
            _ => Ok(format!(
                "{} reached (HEAD answered {status})",
                self.target()
            )),
        }
    }

    async fn post(
        &self,
        m: &PushMessage<'_>,
        id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), SendError> {
        let req = match self.kind {
            NotifyKind::Ntfy => self.ntfy_request(m, id),
            NotifyKind::Webhook | NotifyKind::Mqtt => {
                let body = webhook_body(m, id, now);
                let mut req = self
                    .client
                    .post(self.url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("X-Aliwatch-Event", m.event.as_str());
                if let Some(secret) = &self.token {
                    req = req.header(SIGNATURE_HEADER, signature(secret.as_bytes(), &body));
                }
                req.body(body)
            }
        };
        let resp = req.send().await.map_err(|e| SendError {
            permanent: false,
            message: format!("{}: {}", self.target(), describe(&e)),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let answer = read_answer(resp).await;
        let code = status.as_u16();
        // A refused request (bad token, too large) fails the same way on
        // the next event too, but quickly: only timeouts, 5xx, 408 and 429
        // mark the channel down for this pass.
        let permanent = (400..500).contains(&code) && code != 408 && code != 429;
        Err(SendError {
            permanent,
            message: format!(
                "{}: http {status}{}",
                self.target(),
                if answer.is_empty() {
                    String::new()
                } else {
                    format!(": {answer}")
                }
            ),
        })
    }

    fn ntfy_request(&self, m: &PushMessage<'_>, id: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .post(self.url.clone())
            .header("Title", header_text(&m.title))
            .header("Priority", if m.high { "high" } else { "default" })
            // ntfy ignores it; a proxy or a test can tell a repeat by it.
            .header("X-Aliwatch-Id", header_text(id))
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8");
        if !m.tags.is_empty() {
            req = req.header("Tags", m.tags.join(","));
        }
        if let Some(u) = &m.url {
            req = req.header("Click", u.as_str());
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req.body(m.message.clone())
    }
}

impl Notifier for PushChannel {
    fn channel(&self) -> &str {
        &self.name
    }

    fn events(&self) -> &[EventKind] {
        &self.events
    }

    fn deliver<'a>(&'a self, d: Delivery<'a>) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let m = render_push(&d.content, d.report, d.rules, d.now);
            self.post(&m, d.id, d.now).await
        })
    }
}

/// The exact webhook body.
pub fn webhook_body(m: &PushMessage<'_>, id: &str, now: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let payload = WebhookPayload {
        event: m.event.as_str(),
        id,
        time: fmt_utc(&now),
        order_id: m.order.map(|o| o.order_id.as_str()),
        tracking_number: m.tracking_number.as_deref(),
        title: &m.title,
        message: &m.message,
        url: m.url.as_deref(),
        order: m.order,
    };
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// `sha256=HEX`: the HMAC-SHA256 of `body` with `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        // HMAC takes keys of any length; this is unreachable.
        return String::new();
    };
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A header value: ASCII as it is, anything else as one RFC 2047
/// encoded-word (`=?UTF-8?B?…?=`), which ntfy decodes (ntfy ≥ 2.4).
/// Control characters never get here (`render::push` keeps titles to one
/// line), but are dropped again to be sure.
pub fn header_text(s: &str) -> String {
    use base64::Engine;
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    if clean.is_ascii() {
        return clean;
    }
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(clean.as_bytes())
    )
}

/// At most [`MAX_ANSWER_BYTES`] of an error answer, as one short line.
async fn read_answer(mut resp: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ANSWER_BYTES {
            body.truncate(MAX_ANSWER_BYTES);
            break;
        }
    }
    excerpt(String::from_utf8_lossy(&body).trim(), 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn non_ascii_titles_become_one_encoded_word() {
        assert_eq!(header_text("Delivered: Lamp"), "Delivered: Lamp");
        assert_eq!(
            header_text("Lampe für 5 €"),
            "=?UTF-8?B?TGFtcGUgZsO8ciA1IOKCrA==?="
        );
        assert_eq!(header_text("a\r\nb"), "ab");
    }
}
