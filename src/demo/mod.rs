//! `aliwatch demo`: a first look that is true. A handful of AliExpress-style
//! emails written for the demo (no real user's mail) are embedded in the
//! binary; their dates are placeholders, filled in relative to now, so the
//! story is always current: an order on its way, one whose protection ends
//! in a few days, one delivered two days ago, one awaiting shipment, one
//! first seen in transit (protection end unknown), one completed weeks ago.
//!
//! The emails go through the same pipeline as mail from IMAP, into a
//! database of their own (never the user's); the dashboard of the web face
//! then serves it until Ctrl-C. Nothing is sent: no SMTP, no push, no
//! tracking provider.
//!
//! Placeholders: `{{DATE:N}}` is an RFC 2822 date N days from now (the
//! `Date` header), `{{DAY:N}}` the day N days from now as AliExpress writes
//! it in a body (`dd/mm/yyyy`). [`fill`] is pure; [`build`] writes.

use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};

use crate::model::{EmailOrigin, IngestOutcome};
use crate::store::Store;

/// The demo's emails, in the order they "arrived".
pub const EMAILS: &[(&str, &str)] = &[
    (
        "00_cable_confirmed.eml",
        include_str!("emails/00_cable_confirmed.eml"),
    ),
    (
        "00_tool_confirmed.eml",
        include_str!("emails/00_tool_confirmed.eml"),
    ),
    (
        "01_lamp_confirmed.eml",
        include_str!("emails/01_lamp_confirmed.eml"),
    ),
    (
        "02_lamp_shipped.eml",
        include_str!("emails/02_lamp_shipped.eml"),
    ),
    (
        "03_cable_shipped.eml",
        include_str!("emails/03_cable_shipped.eml"),
    ),
    (
        "04_case_shipped.eml",
        include_str!("emails/04_case_shipped.eml"),
    ),
    (
        "05_case_delivered.eml",
        include_str!("emails/05_case_delivered.eml"),
    ),
    (
        "06_socks_confirmed.eml",
        include_str!("emails/06_socks_confirmed.eml"),
    ),
    (
        "07_tool_in_transit.eml",
        include_str!("emails/07_tool_in_transit.eml"),
    ),
    (
        "08_kettle_shipped.eml",
        include_str!("emails/08_kettle_shipped.eml"),
    ),
    (
        "09_kettle_delivered.eml",
        include_str!("emails/09_kettle_delivered.eml"),
    ),
];

/// The template with every `{{DATE:N}}` and `{{DAY:N}}` replaced, N days
/// from `now` (emails are dated 09:30 UTC of their day). An unknown or
/// malformed placeholder is left as it is.
pub fn fill(template: &str, now: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        match expand(inner, now) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn expand(placeholder: &str, now: DateTime<Utc>) -> Option<String> {
    let (what, days) = placeholder.split_once(':')?;
    let days: i64 = days.trim().parse().ok()?;
    let day = (now + Duration::days(days)).date_naive();
    let at = day.and_hms_opt(9, 30, 0)?.and_utc();
    match what {
        "DATE" => Some(at.to_rfc2822()),
        "DAY" => Some(day.format("%d/%m/%Y").to_string()),
        _ => None,
    }
}

/// Feeds the demo emails, dated relative to `now`, into the database at
/// `path` (created if missing). Returns how many were new.
pub fn build(path: &Path, now: DateTime<Utc>) -> Result<usize> {
    let mut store = Store::open(path)?;
    let mut new = 0;
    for (name, template) in EMAILS {
        let raw = fill(template, now);
        let origin = EmailOrigin {
            source: format!("demo:{name}"),
            imap: None,
            received_at: now,
        };
        let outcome = crate::pipeline::ingest_email(&mut store, raw.as_bytes(), &origin, now)
            .with_context(|| format!("demo email {name}"))?;
        if matches!(outcome, IngestOutcome::New { .. }) {
            new += 1;
        }
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 23, 0, 0)
            .single()
            .expect("time")
    }

    #[test]
    fn placeholders_are_filled_relative_to_now() {
        let cases = [
            (
                "Date: {{DATE:-14}}",
                "Date: Mon, 23 Nov 2026 09:30:00 +0000",
            ),
            ("Delivered {{DAY:-2}}", "Delivered 05/12/2026"),
            ("{{DAY:0}}", "07/12/2026"),
            // not ours: left alone
            ("{{NAME}} and {{DAY:x}}", "{{NAME}} and {{DAY:x}}"),
            ("open {{DAY:-1", "open {{DAY:-1"),
        ];
        for (template, want) in cases {
            assert_eq!(fill(template, now()), want, "{template}");
        }
    }

    #[test]
    fn every_demo_email_has_its_date_filled() {
        for (name, template) in EMAILS {
            let raw = fill(template, now());
            assert!(!raw.contains("{{"), "{name} keeps a placeholder");
            assert!(raw.contains("\nDate: "), "{name} has no Date");
        }
    }
}
