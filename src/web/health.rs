//! `GET /healthz` (SPEC §9): healthy while the database answers and every
//! mailbox finished a sync within 3 × its `poll_interval`, or holds an
//! IDLE connection now. Pure: the reasons it is not, from the facts given.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How many poll intervals a mailbox may go without a finished sync.
pub const SYNC_INTERVALS: u32 = 3;

/// One configured mailbox's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxHealth {
    pub account: String,
    pub mailbox: String,
    pub poll_interval: Duration,
    pub last_sync: Option<DateTime<Utc>>,
    /// The watcher is in IDLE now (the server tells it about new mail).
    pub idling: bool,
}

/// The reasons the daemon is not healthy (empty: healthy).
pub fn problems(mailboxes: &[MailboxHealth], now: DateTime<Utc>) -> Vec<String> {
    let mut out = Vec::new();
    for m in mailboxes {
        if m.idling {
            continue;
        }
        let limit = m.poll_interval * SYNC_INTERVALS;
        let limit_words = crate::config::fmt_duration(limit);
        match m.last_sync {
            None => out.push(format!(
                "mailbox {}/{}: never synced (and not in IDLE)",
                m.account, m.mailbox
            )),
            Some(t) => {
                let age = (now - t).to_std().unwrap_or(Duration::ZERO);
                if age > limit {
                    out.push(format!(
                        "mailbox {}/{}: last synced {} ({} ago), more than {SYNC_INTERVALS} × poll_interval = {limit_words}, and not in IDLE",
                        m.account,
                        m.mailbox,
                        crate::report::fmt_utc(&t),
                        crate::config::fmt_duration(Duration::from_secs(age.as_secs()))
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailbox_is_healthy_when_synced_recently_or_in_idle() {
        let now = DateTime::parse_from_rfc3339("2026-02-10T12:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        let mb = |last: Option<i64>, idling: bool| MailboxHealth {
            account: "home".into(),
            mailbox: "INBOX".into(),
            poll_interval: Duration::from_secs(60),
            last_sync: last.map(|s| now - chrono::Duration::seconds(s)),
            idling,
        };
        let cases = [
            (mb(Some(10), false), None),
            (mb(Some(180), false), None),
            (
                mb(Some(181), false),
                Some(
                    "last synced 2026-02-10T11:56:59Z (181s ago), more than 3 × poll_interval = 3m",
                ),
            ),
            (mb(Some(86_400), true), None),
            (mb(None, false), Some("never synced")),
            (mb(None, true), None),
        ];
        for (m, want) in cases {
            let got = problems(std::slice::from_ref(&m), now);
            match want {
                None => assert!(got.is_empty(), "{m:?}: {got:?}"),
                Some(w) => {
                    assert_eq!(got.len(), 1, "{m:?}");
                    assert!(got[0].starts_with("mailbox home/INBOX: "), "{got:?}");
                    assert!(got[0].contains(w), "{got:?}");
                }
            }
        }
        assert!(problems(&[], now).is_empty());
    }
}
