//! `GET /metrics` (SPEC §9): the Prometheus text exposition format
//! (version 0.0.4). Pure: a function of the status model and the numbers
//! the store and the running daemon know ([`MetricsInput`]).
//!
//! Gauges of today's view (`aliwatch_orders{state}`,
//! `aliwatch_parcels{status}`, `aliwatch_need_action`) are derived from the
//! same report as `status`, so they say what `status` says; every state
//! and status is listed, zeros included, so a series never disappears.
//! The counters (`*_total`) come from the database and survive restarts.
//! Label values are escaped (`\`, `"`, newline).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::model::{OrderState, ParcelStatus};
use crate::report::StatusReport;

/// One configured mailbox, as the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxMetric {
    pub account: String,
    pub mailbox: String,
    /// The end of the last completed sync (the database's `last_sync_at`).
    pub last_sync: Option<DateTime<Utc>>,
    /// Whether the watcher holds a connection now.
    pub connected: bool,
}

/// What the metrics read besides the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsInput {
    pub mailboxes: Vec<MailboxMetric>,
    /// (provider, outcome) → requests.
    pub tracking_requests: BTreeMap<(String, String), u64>,
    /// (channel, outcome) → notifications sent, attempts failed,
    /// notifications superseded (counters).
    pub notifications: BTreeMap<(String, String), u64>,
    /// channel → notifications due and not yet delivered (a gauge).
    pub notifications_pending: BTreeMap<String, u64>,
    /// Each configured tracking provider, in the order asked.
    pub tracking_providers: Vec<ProviderMetric>,
}

/// One configured tracking provider, as the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetric {
    pub provider: String,
    /// When it is left alone until (a ban, failures, a rate limit).
    pub unavailable_until: Option<DateTime<Utc>>,
    /// Registrations left (17TRACK, as `getquota` last said).
    pub quota_remaining: Option<i64>,
}

/// Every order state, in the order `status` documents them.
const ORDER_STATES: [OrderState; 6] = [
    OrderState::AwaitingShipment,
    OrderState::Shipped,
    OrderState::Delivered,
    OrderState::ProtectionEnded,
    OrderState::Disputed,
    OrderState::Completed,
];

/// Escapes a label value (exposition format: `\\`, `\"`, `\n`).
pub fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// The exposition document.
pub fn render_metrics(report: &StatusReport, input: &MetricsInput) -> String {
    let mut o = String::new();
    head(
        &mut o,
        "aliwatch_orders",
        "gauge",
        "Orders by state today (completed ones included).",
    );
    for s in ORDER_STATES {
        let n = report.orders.iter().filter(|x| x.state == s).count();
        let _ = writeln!(o, "aliwatch_orders{{state=\"{}\"}} {n}", s.as_str());
    }
    head(
        &mut o,
        "aliwatch_parcels",
        "gauge",
        "Parcels by status (of every order and without an order).",
    );
    let parcels: Vec<ParcelStatus> = report
        .orders
        .iter()
        .flat_map(|x| x.parcels.iter())
        .chain(report.unassigned_parcels.iter())
        .map(|p| p.status)
        .collect();
    for s in ParcelStatus::ALL {
        let n = parcels.iter().filter(|p| **p == s).count();
        let _ = writeln!(o, "aliwatch_parcels{{status=\"{}\"}} {n}", s.as_str());
    }
    head(
        &mut o,
        "aliwatch_need_action",
        "gauge",
        "Active orders that need the user now (the digest's first section).",
    );
    let need = report
        .orders
        .iter()
        .filter(|x| x.is_active() && x.needs_action())
        .count();
    let _ = writeln!(o, "aliwatch_need_action {need}");
    head(
        &mut o,
        "aliwatch_mailbox_last_sync_timestamp_seconds",
        "gauge",
        "Unix time of the last completed sync of each mailbox.",
    );
    for m in &input.mailboxes {
        if let Some(t) = m.last_sync {
            let _ = writeln!(
                o,
                "aliwatch_mailbox_last_sync_timestamp_seconds{{account=\"{}\",mailbox=\"{}\"}} {}",
                escape_label(&m.account),
                escape_label(&m.mailbox),
                t.timestamp()
            );
        }
    }
    head(
        &mut o,
        "aliwatch_mailbox_connected",
        "gauge",
        "1 while the mailbox's watcher holds a connection to the server.",
    );
    for m in &input.mailboxes {
        let _ = writeln!(
            o,
            "aliwatch_mailbox_connected{{account=\"{}\",mailbox=\"{}\"}} {}",
            escape_label(&m.account),
            escape_label(&m.mailbox),
            u8::from(m.connected)
        );
    }
    head(
        &mut o,
        "aliwatch_tracking_requests_total",
        "counter",
        "HTTP requests to the tracking provider (retries included) by outcome.",
    );
    for ((provider, outcome), n) in &input.tracking_requests {
        let _ = writeln!(
            o,
            "aliwatch_tracking_requests_total{{provider=\"{}\",outcome=\"{}\"}} {n}",
            escape_label(provider),
            escape_label(outcome)
        );
    }
    head(
        &mut o,
        "aliwatch_tracking_provider_available",
        "gauge",
        "1 while the tracking provider may be asked; 0 while it is left alone (ban, failures, rate limit).",
    );
    for p in &input.tracking_providers {
        let _ = writeln!(
            o,
            "aliwatch_tracking_provider_available{{provider=\"{}\"}} {}",
            escape_label(&p.provider),
            u8::from(p.unavailable_until.is_none())
        );
    }
    head(
        &mut o,
        "aliwatch_tracking_provider_unavailable_until_timestamp_seconds",
        "gauge",
        "Unix time until which an unavailable tracking provider is left alone.",
    );
    for p in &input.tracking_providers {
        if let Some(t) = p.unavailable_until {
            let _ = writeln!(
                o,
                "aliwatch_tracking_provider_unavailable_until_timestamp_seconds{{provider=\"{}\"}} {}",
                escape_label(&p.provider),
                t.timestamp()
            );
        }
    }
    head(
        &mut o,
        "aliwatch_tracking_quota_remaining",
        "gauge",
        "Registrations the provider (17TRACK) would accept now, as last read: the quota left, capped by the daily limit.",
    );
    for p in &input.tracking_providers {
        if let Some(q) = p.quota_remaining {
            let _ = writeln!(
                o,
                "aliwatch_tracking_quota_remaining{{provider=\"{}\"}} {q}",
                escape_label(&p.provider)
            );
        }
    }
    head(
        &mut o,
        "aliwatch_notifications_total",
        "counter",
        "Notifications by channel and outcome: sent, failed (attempts, each retried), superseded.",
    );
    for ((channel, state), n) in &input.notifications {
        let _ = writeln!(
            o,
            "aliwatch_notifications_total{{channel=\"{}\",state=\"{}\"}} {n}",
            escape_label(channel),
            escape_label(state)
        );
    }
    head(
        &mut o,
        "aliwatch_notifications_pending",
        "gauge",
        "Notifications due and not yet delivered, by channel.",
    );
    for (channel, n) in &input.notifications_pending {
        let _ = writeln!(
            o,
            "aliwatch_notifications_pending{{channel=\"{}\"}} {n}",
            escape_label(channel)
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let cases = [
            ("INBOX", "INBOX"),
            ("a\"b", "a\\\"b"),
            ("a\\b", "a\\\\b"),
            ("a\nb", "a\\nb"),
            ("Posteingang/Ünïcode", "Posteingang/Ünïcode"),
        ];
        for (input, want) in cases {
            assert_eq!(escape_label(input), want, "{input:?}");
        }
    }

    #[test]
    fn every_state_and_status_is_listed_and_counters_carry_their_labels() {
        // A fixed "now", like every other test of the pure core.
        let t = DateTime::parse_from_rfc3339("2026-02-10T12:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        let report = StatusReport {
            generated_at: t,
            orders: vec![],
            unassigned_parcels: vec![],
            notices: vec![],
        };
        let input = MetricsInput {
            mailboxes: vec![
                MailboxMetric {
                    account: "home".into(),
                    mailbox: "IN\"BOX".into(),
                    last_sync: Some(t),
                    connected: true,
                },
                MailboxMetric {
                    account: "work".into(),
                    mailbox: "INBOX".into(),
                    last_sync: None,
                    connected: false,
                },
            ],
            tracking_requests: [(("17track".to_string(), "ok".to_string()), 12)].into(),
            notifications: [(("email".to_string(), "sent".to_string()), 3)].into(),
            notifications_pending: [("email".to_string(), 1)].into(),
            tracking_providers: vec![
                ProviderMetric {
                    provider: "cainiao".into(),
                    unavailable_until: Some(t),
                    quota_remaining: None,
                },
                ProviderMetric {
                    provider: "17track".into(),
                    unavailable_until: None,
                    quota_remaining: Some(97),
                },
            ],
        };
        let m = render_metrics(&report, &input);
        for s in ORDER_STATES {
            assert!(m.contains(&format!("aliwatch_orders{{state=\"{}\"}} 0\n", s.as_str())));
        }
        for s in ParcelStatus::ALL {
            assert!(m.contains(&format!(
                "aliwatch_parcels{{status=\"{}\"}} 0\n",
                s.as_str()
            )));
        }
        assert!(m.contains("aliwatch_need_action 0\n"));
        assert!(m.contains(
            "aliwatch_mailbox_last_sync_timestamp_seconds{account=\"home\",mailbox=\"IN\\\"BOX\"} 1770724800\n"
        ));
        assert!(!m.contains("last_sync_timestamp_seconds{account=\"work\""));
        assert!(m.contains("aliwatch_mailbox_connected{account=\"work\",mailbox=\"INBOX\"} 0\n"));
        assert!(m.contains(
            "aliwatch_tracking_requests_total{provider=\"17track\",outcome=\"ok\"} 12\n"
        ));
        assert!(m.contains("aliwatch_tracking_provider_available{provider=\"cainiao\"} 0\n"));
        assert!(m.contains("aliwatch_tracking_provider_available{provider=\"17track\"} 1\n"));
        assert!(m.contains(
            "aliwatch_tracking_provider_unavailable_until_timestamp_seconds{provider=\"cainiao\"} 1770724800\n"
        ));
        assert!(!m.contains("unavailable_until_timestamp_seconds{provider=\"17track\""));
        assert!(m.contains("aliwatch_tracking_quota_remaining{provider=\"17track\"} 97\n"));
        assert!(m.contains("aliwatch_notifications_total{channel=\"email\",state=\"sent\"} 3\n"));
        assert!(m.contains("# TYPE aliwatch_notifications_total counter\n"));
        assert!(m.contains("aliwatch_notifications_pending{channel=\"email\"} 1\n"));
        assert!(m.contains("# TYPE aliwatch_notifications_pending gauge\n"));
        // Every sample line is `name{labels} value` or `name value`.
        for l in m.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = l.rsplit_once(' ').expect("a value");
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }
}
