//! The `status` table: one line per parcel, aligned columns, marks for
//! stalled parcels (`!stalled`) and protection ending soon (`!ends`). Pure:
//! a function of the status model, "now" and the rules.

use chrono::{DateTime, Utc};

use crate::decide::Rules;
use crate::model::OrderState;
use crate::report::StatusReport;

/// Cuts `s` to `max` characters, marking the cut with an ellipsis.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The readable `status` table: one line per parcel, marks for stalled
/// parcels (`!stalled`) and protection ending soon (`!ends`).
pub fn render_status_table(report: &StatusReport, now: DateTime<Utc>, rules: &Rules) -> String {
    use std::fmt::Write as _;
    let tz = rules.timezone;
    let today = now.with_timezone(&tz).date_naive();
    let soon = rules
        .protection
        .warn_before_days
        .first()
        .copied()
        .unwrap_or(7) as i64;
    let mut o = String::new();
    if report.orders.is_empty() && report.unassigned_parcels.is_empty() {
        o.push_str("no active orders (aliwatch status --all shows completed ones)\n");
        return o;
    }
    let _ = writeln!(
        o,
        "{:<20} {:<17} {:<22} {:<46} {:>8}  PROTECTION",
        "ORDER", "STATE", "PARCEL", "STATUS / LAST EVENT", "SHIPPED"
    );
    let parcel_line = |o: &mut String,
                       order: &str,
                       state: &str,
                       p: &crate::report::ParcelView,
                       shipped: String,
                       prot: &str| {
        let mut status = p.status.words().to_string();
        if let Some(e) = &p.last_event {
            let when = e.time.with_timezone(&tz).format("%m-%d");
            status = format!("{status}: {when} {}", e.description);
        }
        // The mark must survive the cut.
        let mark = if p.stalled { " !stalled" } else { "" };
        let status = format!("{}{mark}", truncate(&status, 46 - mark.len()));
        let _ = writeln!(
            o,
            "{order:<20} {state:<17} {:<22} {status:<46} {shipped:>8}  {prot}",
            p.tracking_number
        );
    };
    for ord in &report.orders {
        let shipped = ord
            .shipped_at
            .map(|d| format!("{}d ago", (today - d).num_days()))
            .unwrap_or_else(|| "-".into());
        let prot = match (ord.protection_ends, ord.protection_days_left) {
            (Some(end), Some(left)) => {
                let mark = if ord.is_active() && (0..=soon).contains(&left) {
                    " !ends"
                } else {
                    ""
                };
                format!("{end} ({left}d left){mark}")
            }
            _ => "-".into(),
        };
        if ord.parcels.is_empty() {
            let _ = writeln!(
                o,
                "{:<20} {:<17} {:<22} {:<46} {shipped:>8}  {prot}",
                ord.order_id,
                ord.state.as_str(),
                "-",
                if ord.state == OrderState::AwaitingShipment {
                    "not shipped yet"
                } else {
                    "no tracking number yet"
                }
            );
        }
        for p in &ord.parcels {
            parcel_line(
                &mut o,
                &ord.order_id,
                ord.state.as_str(),
                p,
                shipped.clone(),
                &prot,
            );
        }
    }
    for p in &report.unassigned_parcels {
        parcel_line(&mut o, "(no order)", "-", p, "-".into(), "-");
    }
    o
}
