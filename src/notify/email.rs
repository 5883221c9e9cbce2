//! The email channel: renders a notification (`render::email`) into an
//! [`OutgoingEmail`] with a deterministic Message-ID and hands it to a
//! [`Sender`] (SMTP in production, a recording fake in unit tests).

use futures::future::BoxFuture;

use super::smtp::{OutgoingEmail, Sender};
use super::{Delivery, Notifier, SendError};
use crate::decide::notifications::Content;
use crate::model::{EventKind, NotificationKey};
use crate::render::email::{render_digest, render_warning, render_warnings};

/// The ledger channel of email notifications (a `[[notify]]` table may
/// not take its name).
pub const EMAIL: &str = crate::model::EMAIL_CHANNEL;

/// Email through a [`Sender`]; `from` is the configured From address (the
/// Message-IDs' domain).
pub struct EmailChannel<S> {
    pub sender: S,
    pub from: Option<String>,
}

impl<S: Sender + Send + Sync> Notifier for EmailChannel<S> {
    fn channel(&self) -> &str {
        EMAIL
    }

    fn id_for(&self, key: &NotificationKey) -> String {
        message_id(&key.to_string(), self.from.as_deref())
    }

    fn id_for_group(&self, keys: &[NotificationKey]) -> String {
        message_id(
            &format!("warnings:{}", super::group_digest(keys)),
            self.from.as_deref(),
        )
    }

    /// Warnings and the digest.
    fn events(&self) -> &[EventKind] {
        &[EventKind::ProtectionWarning, EventKind::Digest]
    }

    /// Warnings due together go out as one email (SPEC §5).
    fn folds_warnings(&self) -> bool {
        true
    }

    fn deliver<'a>(&'a self, d: Delivery<'a>) -> BoxFuture<'a, Result<(), SendError>> {
        let rendered = match &d.content {
            Content::Digest => render_digest(d.report, d.rules, d.now),
            Content::Warning {
                order,
                threshold_days,
            } => render_warning(order, *threshold_days, d.rules, d.now),
            Content::Warnings(list) => render_warnings(list, d.rules, d.now),
            // The email ledger never holds push events (`due_notifications`).
            Content::Action { .. } | Content::Parcel { .. } => {
                return Box::pin(async {
                    Err(SendError {
                        permanent: true,
                        message: "push events are not sent by email".into(),
                    })
                })
            }
        };
        let names: Vec<String> = d.keys.iter().map(ToString::to_string).collect();
        let email = OutgoingEmail {
            key: names.join(","),
            message_id: d.id.to_owned(),
            date: d.now,
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        };
        Box::pin(async move { self.sender.send(&email).await })
    }
}

/// The deterministic Message-ID of a notification: the key with `:` turned
/// into `.`, at the domain of the From address (else `aliwatch`). A repeat
/// after a crash between send and record is therefore the same message,
/// which mail clients merge (RFC 5322 §3.6.4: a Message-ID names one
/// message).
pub fn message_id(key: &str, from: Option<&str>) -> String {
    let host = from
        .and_then(from_domain)
        .unwrap_or_else(|| "aliwatch".into());
    let local: String = key
        .chars()
        .map(|c| match c {
            ':' => '.',
            c if c.is_ascii_alphanumeric() || "-._".contains(c) => c,
            _ => '_',
        })
        .collect();
    format!("<{local}@{host}>")
}

/// The domain of `"Name <user@example.com>"` or `user@example.com`, if it
/// is a plain DNS name (usable as a Message-ID right-hand side).
fn from_domain(from: &str) -> Option<String> {
    let addr = match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => &from[a + 1..b],
        _ => from,
    };
    let domain = addr.trim().rsplit_once('@')?.1.trim();
    let ok = !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    ok.then(|| domain.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_deterministic() {
        assert_eq!(
            message_id("warning:8123:7d", Some("aliwatch <Me@Example.COM>")),
            "<warning.8123.7d@example.com>"
        );
        assert_eq!(
            message_id("digest:2026-11-28", None),
            "<digest.2026-11-28@aliwatch>"
        );
        assert_eq!(
            message_id("digest:2026-11-28", Some("weird <x@[127.0.0.1]>")),
            "<digest.2026-11-28@aliwatch>"
        );
    }
}
