//! Sending over SMTP with lettre, behind the small [`Sender`] trait so the
//! once-only logic can be tested with a recording fake while integration
//! tests talk to a real server.
//!
//! Security follows `[smtp] security`: `tls` = implicit TLS (RFC 8314,
//! port 465), `starttls` = STARTTLS that is *required* (lettre
//! `Tls::Required`: a server that does not offer it is an error, never a
//! silent downgrade), `plain` = no TLS, refused unless the host is
//! loopback. Certificates are always verified: the system roots plus
//! `ca_file` when given.

use std::future::Future;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::Digest;

use crate::config::is_loopback_host;
use crate::config::{Security, SmtpConfig};

/// How long one SMTP step (connect, each command) may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A fully rendered email, ready for headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The ledger key (`digest:…`, `warning:…`), for logs.
    pub key: String,
    /// With angle brackets: `<digest.2026-11-28@example.com>`.
    pub message_id: String,
    pub date: DateTime<Utc>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub use super::SendError;

/// Something that delivers an [`OutgoingEmail`].
pub trait Sender {
    /// Delivers one email; `Ok` means the server accepted it.
    fn send(&self, email: &OutgoingEmail) -> impl Future<Output = Result<(), SendError>> + Send;
}

impl<T: Sender + Sync> Sender for &T {
    fn send(&self, email: &OutgoingEmail) -> impl Future<Output = Result<(), SendError>> + Send {
        (**self).send(email)
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834 §5): tells vacation
/// responders and other robots not to answer.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// Builds the MIME message: From, To, Subject, Date, the deterministic
/// Message-ID, Auto-Submitted and a `multipart/alternative` body (text
/// first, HTML last: RFC 2046 §5.1.4, the preferred part comes last).
pub fn build_message(email: &OutgoingEmail, from: &str, to: &[String]) -> Result<Message> {
    let from: Mailbox = from
        .parse()
        .with_context(|| format!("invalid smtp.from address {from:?}"))?;
    let mut b = Message::builder()
        .from(from)
        .subject(email.subject.clone())
        .date(std::time::SystemTime::from(email.date))
        .message_id(Some(email.message_id.clone()))
        .header(AutoSubmitted);
    if to.is_empty() {
        bail!("smtp.to is empty: nobody to send to");
    }
    for rcpt in to {
        let mb: Mailbox = rcpt
            .parse()
            .with_context(|| format!("invalid smtp.to address {rcpt:?}"))?;
        b = b.to(mb);
    }
    b.multipart(MultiPart::alternative_plain_html(
        email.text.clone(),
        email.html.clone(),
    ))
    .with_context(|| format!("cannot build email {}", email.key))
}

/// The real sender: lettre over tokio with rustls.
///
/// The password is read when the sender is built and again when the
/// server refuses it (535, RFC 4954 §6): a `password_file` replaced on
/// disk, or a `password_command` that now answers something else, is
/// used for the same message at once, without a restart.
pub struct SmtpSender {
    /// The transport with the credentials read last.
    transport: std::sync::Mutex<AsyncSmtpTransport<Tokio1Executor>>,
    /// SHA-256 of the password in `transport`: tells a new password from
    /// the refused one without keeping a second copy of it.
    password_digest: std::sync::Mutex<Option<[u8; 32]>>,
    /// Host, sender, recipients, and where the password comes from.
    cfg: SmtpConfig,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("host", &self.cfg.host)
            .finish()
    }
}

impl SmtpSender {
    /// Builds the transport (resolving the password secret, reading
    /// `ca_file`); connects only when sending.
    pub fn new(cfg: &SmtpConfig) -> Result<SmtpSender> {
        let (transport, password_digest) = Self::transport(cfg)?;
        Ok(SmtpSender {
            transport: std::sync::Mutex::new(transport),
            password_digest: std::sync::Mutex::new(password_digest),
            cfg: cfg.clone(),
        })
    }

    /// The transport for `cfg` with the password read now, and the
    /// password's digest.
    fn transport(
        cfg: &SmtpConfig,
    ) -> Result<(AsyncSmtpTransport<Tokio1Executor>, Option<[u8; 32]>)> {
        let host = cfg.host.clone();
        let tls_params = || -> Result<TlsParameters> {
            // Default store = the system roots (rustls-native-certs); the
            // CA file is added to them, never replacing verification.
            let mut b = TlsParameters::builder(host.clone());
            if let Some(ca) = &cfg.ca_file {
                let pem = std::fs::read(ca)
                    .with_context(|| format!("cannot read smtp.ca_file {}", ca.display()))?;
                let cert = Certificate::from_pem(&pem).with_context(|| {
                    format!("smtp.ca_file {} holds no PEM certificate", ca.display())
                })?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().context("cannot set up TLS for smtp")
        };
        let tls = match cfg.security {
            Security::Tls => Tls::Wrapper(tls_params()?),
            Security::StartTls => Tls::Required(tls_params()?),
            Security::Plain => {
                if !is_loopback_host(&host) {
                    bail!("smtp.security = \"plain\" is only allowed towards a loopback host, not {host:?}");
                }
                Tls::None
            }
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        let mut digest = None;
        if let Some(user) = &cfg.username {
            let pass = match &cfg.password {
                Some(s) => s.resolve().context("smtp password")?,
                None => bail!("smtp.username is set but no password_file / password_command"),
            };
            digest = Some(sha2::Sha256::digest(pass.as_bytes()).into());
            b = b.credentials(Credentials::new(user.clone(), pass));
        }
        Ok((b.build(), digest))
    }

    fn current(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        // A clone shares the connection pool; a poisoned lock still holds
        // a whole transport.
        self.transport
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// After the server refused the credentials: reads the password again
    /// (a command is asked again) and, if it changed, builds a transport
    /// with it. `true` when there is a new password to try.
    fn reload_refused_password(&self) -> bool {
        let Some(secret) = &self.cfg.password else {
            return false;
        };
        secret.forget();
        match Self::transport(&self.cfg) {
            Ok((transport, digest)) => {
                let mut current = self
                    .password_digest
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if *current == digest {
                    return false;
                }
                *current = digest;
                *self.transport.lock().unwrap_or_else(|p| p.into_inner()) = transport;
                tracing::info!(host = %self.cfg.host, "the smtp password changed; sending with the new one");
                true
            }
            Err(e) => {
                tracing::warn!(host = %self.cfg.host, error = %format!("{e:#}"), "cannot read the smtp password again");
                false
            }
        }
    }

    fn send_error(&self, e: &lettre::transport::smtp::Error) -> SendError {
        let mut message = format!("smtp {}: {}", self.cfg.host, error_chain(e));
        if credentials_refused(e) {
            message.push_str(
                "; check smtp.username and the password (it is read again at the next attempt)",
            );
        }
        // lettre's errors name the step and the server's answer, never
        // the credentials.
        SendError {
            permanent: e.is_permanent(),
            message,
        }
    }

    /// Connects and says EHLO (and STARTTLS/AUTH), for `check-config --connect`.
    pub async fn test_connection(&self) -> Result<()> {
        let ok = self
            .current()
            .test_connection()
            .await
            .with_context(|| format!("cannot connect to smtp server {}", self.cfg.host))?;
        if !ok {
            bail!("smtp server {} did not answer NOOP", self.cfg.host);
        }
        Ok(())
    }
}

impl Sender for SmtpSender {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), SendError> {
        let msg = build_message(email, &self.cfg.from, &self.cfg.to).map_err(|e| SendError {
            permanent: true,
            message: format!("{e:#}"),
        })?;
        match self.current().send(msg.clone()).await {
            Ok(_) => Ok(()),
            Err(e) if credentials_refused(&e) && self.reload_refused_password() => self
                .current()
                .send(msg)
                .await
                .map(|_| ())
                .map_err(|e| self.send_error(&e)),
            Err(e) => Err(self.send_error(&e)),
        }
    }
}

/// 535: "authentication credentials invalid" (RFC 4954 §6).
fn credentials_refused(e: &lettre::transport::smtp::Error) -> bool {
    e.status().map(u16::from) == Some(535)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["smtp.example.com", "10.0.0.1", "localhost.example.com", ""] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn message_has_the_headers_and_both_parts() {
        let email = OutgoingEmail {
            key: "digest:2026-11-28".into(),
            message_id: "<digest.2026-11-28@example.com>".into(),
            date: DateTime::parse_from_rfc3339("2026-11-28T07:00:00Z")
                .expect("time")
                .with_timezone(&Utc),
            subject: "aliwatch: 1 in transit <script>".into(),
            text: "plain".into(),
            html: "<p>html</p>".into(),
        };
        let m = build_message(
            &email,
            "aliwatch <me@example.com>",
            &["me@example.com".into()],
        )
        .expect("builds");
        let raw = String::from_utf8(m.formatted()).expect("utf-8");
        assert!(
            raw.contains("Message-ID: <digest.2026-11-28@example.com>"),
            "{raw}"
        );
        assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
        assert!(
            raw.contains("Date: Sat, 28 Nov 2026 07:00:00 +0000"),
            "{raw}"
        );
        assert!(raw.contains("multipart/alternative"), "{raw}");
        let parsed = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parses");
        assert_eq!(parsed.subject(), Some("aliwatch: 1 in transit <script>"));
        assert_eq!(parsed.body_text(0).as_deref(), Some("plain"));
        assert_eq!(parsed.body_html(0).as_deref(), Some("<p>html</p>"));
        assert!(build_message(&email, "not an address", &["me@example.com".into()]).is_err());
        assert!(build_message(&email, "me@example.com", &[]).is_err());
    }
}
