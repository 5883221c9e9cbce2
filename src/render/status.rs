//! The `status` table. Pure: a function of the status model, "now", the
//! rules and the layout.
//!
//! The default layout fits a terminal (80 columns, or the terminal's width
//! when stdout is one): one line per order (number, what it is, state, the
//! date that matters) and one indented line per parcel below it, every
//! column aligned by display width (East Asian wide characters take two
//! columns) and item titles shortened to what is left. `--wide` prints one
//! line per parcel with every column in full, for `grep` and wide screens.
//! Marks: `!stalled` on a stalled parcel, `!ends` on protection ending soon;
//! both survive every cut.

use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::decide::lifecycle::completed_on;
use crate::decide::Rules;
use crate::model::{CompletedReason, OrderState};
use crate::report::{OrderView, ParcelOrigin, ParcelView, StatusReport};

use super::email::{items_name, one_line, protection_unknown, PROTECTION_UNKNOWN};
use super::text::{pad, shorten, width};

/// The narrowest table the fitted layout makes; a narrower terminal gets
/// lines this wide (and wraps them) rather than columns of ellipses.
pub const MIN_COLUMNS: usize = 40;

/// The fewest columns left for what an order is before the fitted layout
/// moves state and protection to a line of their own.
const MIN_WHAT_COLUMNS: usize = 16;

/// The default width when stdout is not a terminal.
pub const DEFAULT_COLUMNS: usize = 80;

/// How to lay the table out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// At most this many columns (never less than [`MIN_COLUMNS`]).
    Fit(usize),
    /// Every column in full, one line per parcel.
    Wide,
}

/// The gap between columns.
const GAP: &str = "  ";

/// What the order is, in full: its items, else its store.
fn what(o: &OrderView) -> String {
    if let Some(items) = items_name(o) {
        items
    } else if let Some(s) = &o.store {
        format!("({} order)", one_line(s))
    } else {
        "-".to_owned()
    }
}

/// The date that matters for the order, with a mark when it is soon:
/// protection's end for active orders, why and when for completed ones.
fn when(o: &OrderView, soon: i64, tz: Tz) -> String {
    if o.state == OrderState::Completed {
        return completed_words(o, tz);
    }
    if o.state == OrderState::ProtectionEnded {
        if let Some(d) = o.dispute_until {
            return format!("dispute by {d}");
        }
    }
    match (o.protection_ends, o.protection_days_left) {
        (Some(end), Some(left)) => {
            let mark = if (0..=soon).contains(&left) {
                " !ends"
            } else {
                ""
            };
            format!("{end} ({left}d){mark}")
        }
        _ if protection_unknown(o) => "unknown".into(),
        _ => "-".into(),
    }
}

/// The line under an order whose protection end is unknown: what to do,
/// with the page that shows it.
fn unknown_line(o: &OrderView) -> Option<String> {
    protection_unknown(o).then(|| format!("{PROTECTION_UNKNOWN} {}", o.url))
}

/// The same in the fitted layout: the words, then the link on a line of
/// its own (a link is never cut).
fn unknown_lines(o: &OrderView) -> Option<String> {
    protection_unknown(o).then(|| format!("  {PROTECTION_UNKNOWN}:\n  {}\n", o.url))
}

/// Where a parcel without an order came from, truthfully (an AliExpress
/// email that named no order, or `aliwatch add`); first, so no cut loses it.
fn origin_words(p: &ParcelView) -> &'static str {
    match p.origin {
        ParcelOrigin::Email => "(email)",
        ParcelOrigin::Hand => "(by hand)",
    }
}

/// Why a completed order is completed, with its day where one is known:
/// "auto-completed 2026-10-02", "confirmed 2026-09-20", "closed", "done",
/// "no news since 2026-07-01" (the day of the last news, not the day it
/// went stale: that is what a user can look up).
fn completed_words(o: &OrderView, tz: Tz) -> String {
    let with_day = |word: &str, day: Option<NaiveDate>| match day {
        Some(d) => format!("{word} {d}"),
        None => word.to_owned(),
    };
    match o.completed_reason {
        Some(CompletedReason::Auto) => with_day("auto-completed", completed_on(o, tz)),
        Some(CompletedReason::Confirmed) => with_day("confirmed", completed_on(o, tz)),
        Some(CompletedReason::Closed) => "closed".into(),
        Some(CompletedReason::Done) => "done".into(),
        Some(CompletedReason::Stale) => with_day("no news since", o.last_activity),
        None => "completed".into(),
    }
}

/// A parcel's status in words with its last event, and its mark.
fn parcel_status(p: &ParcelView, rules: &Rules) -> (String, &'static str) {
    let mut status = p.status.words().to_string();
    if let Some(e) = &p.last_event {
        let when = e.time.with_timezone(&rules.timezone).format("%m-%d");
        // `one_line` also blanks control characters: a provider's text
        // never reaches the terminal as an escape sequence.
        status = format!("{status}: {when} {}", one_line(&e.description));
    }
    let mark = if p.stalled { "!stalled" } else { "" };
    (status, mark)
}

/// The parcel's status and its mark, in full.
fn marked_status(p: &ParcelView, rules: &Rules) -> String {
    match parcel_status(p, rules) {
        (s, "") => s,
        (s, m) => format!("{s} {m}"),
    }
}

/// `text` then `mark`, cut so that both fit `cols` columns.
fn with_mark(text: &str, mark: &str, cols: usize) -> String {
    if mark.is_empty() {
        return shorten(text, cols);
    }
    let room = cols.saturating_sub(width(mark) + 1);
    format!("{} {mark}", shorten(text, room))
}

/// `line` cut to `cols`, keeping a trailing `!ends` mark.
fn with_mark_at_end(line: &str, cols: usize) -> String {
    match line.strip_suffix(" !ends") {
        Some(text) => with_mark(text, "!ends", cols),
        None => shorten(line, cols),
    }
}

/// Pads every cell but the last to its column's width and joins the row.
fn row(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            line.push_str(GAP);
        }
        if i + 1 == cells.len() {
            line.push_str(c);
        } else {
            line.push_str(&pad(c, widths[i]));
        }
    }
    line.trim_end().to_owned()
}

fn max_width<'a>(header: &str, cells: impl Iterator<Item = &'a String>) -> usize {
    cells.map(|c| width(c)).fold(width(header), usize::max)
}

/// The readable `status` table.
pub fn render_status_table(report: &StatusReport, rules: &Rules, layout: Layout) -> String {
    if report.orders.is_empty() && report.unassigned_parcels.is_empty() {
        return "no active orders (aliwatch status --all shows completed ones)\n".into();
    }
    let soon = rules
        .protection
        .warn_before_days
        .first()
        .copied()
        .unwrap_or(7) as i64;
    match layout {
        Layout::Fit(cols) => fitted(report, rules, soon, cols.max(MIN_COLUMNS)),
        Layout::Wide => wide(report, rules, soon),
    }
}

/// One line per order, one indented line per parcel, within `cols`.
fn fitted(report: &StatusReport, rules: &Rules, soon: i64, cols: usize) -> String {
    const HEAD: [&str; 4] = ["ORDER", "WHAT", "STATE", "PROTECTION"];
    struct OrderRow {
        cells: [String; 4],
        parcels: Vec<(String, String, &'static str)>,
        note: Option<String>,
    }
    let mut rows: Vec<OrderRow> = report
        .orders
        .iter()
        .map(|o| {
            let mut parcels: Vec<_> = o
                .parcels
                .iter()
                .map(|p| {
                    let (s, m) = parcel_status(p, rules);
                    (p.tracking_number.clone(), s, m)
                })
                .collect();
            if parcels.is_empty() && o.state == OrderState::Shipped {
                parcels.push(("-".into(), "no tracking number yet".into(), ""));
            }
            OrderRow {
                cells: [
                    o.order_id.clone(),
                    what(o),
                    o.state.as_str().to_owned(),
                    when(o, soon, rules.timezone),
                ],
                parcels,
                note: unknown_lines(o),
            }
        })
        .collect();
    if !report.unassigned_parcels.is_empty() {
        rows.push(OrderRow {
            cells: [
                "(no order)".into(),
                "no order yet".into(),
                "-".into(),
                "-".into(),
            ],
            parcels: report
                .unassigned_parcels
                .iter()
                .map(|p| {
                    let (s, m) = parcel_status(p, rules);
                    (
                        p.tracking_number.clone(),
                        format!("{} {s}", origin_words(p)),
                        m,
                    )
                })
                .collect(),
            note: None,
        });
    }
    let col = |i: usize| max_width(HEAD[i], rows.iter().map(|r| &r.cells[i]));
    let (id_w, state_w, when_w) = (col(0), col(2), col(3));
    // What the order is takes what the other columns leave.
    let fixed = id_w + state_w + when_w + 3 * GAP.len();
    // Too narrow for four columns: state and protection go on a line of
    // their own under each order.
    let stacked = fixed + MIN_WHAT_COLUMNS > cols;
    let what_w = if stacked {
        cols.saturating_sub(id_w + GAP.len())
    } else {
        cols - fixed
    };
    let widths = [id_w, what_w, state_w, when_w];
    let number_w = rows
        .iter()
        .flat_map(|r| r.parcels.iter().map(|p| width(&p.0)))
        .max()
        .unwrap_or(0);
    let mut o = String::new();
    let head: Vec<String> = HEAD.iter().map(|h| h.to_string()).collect();
    let shown = if stacked { 2 } else { 4 };
    o.push_str(&row(&head[..shown], &widths));
    o.push('\n');
    for r in &rows {
        let mut cells = r.cells.clone();
        cells[1] = shorten(&cells[1], what_w);
        o.push_str(&row(&cells[..shown], &widths));
        o.push('\n');
        if stacked {
            let line = format!("  {}{GAP}{}", cells[2], cells[3]);
            o.push_str(&with_mark_at_end(&line, cols));
            o.push('\n');
        }
        for (number, status, mark) in &r.parcels {
            let lead = format!("  {}{GAP}", pad(number, number_w));
            let room = cols.saturating_sub(width(&lead));
            o.push_str(&lead);
            o.push_str(&with_mark(status, mark, room.max(10)));
            o.push('\n');
        }
        if let Some(note) = &r.note {
            o.push_str(note);
        }
    }
    o
}

/// One line per parcel, every column in full.
fn wide(report: &StatusReport, rules: &Rules, soon: i64) -> String {
    const HEAD: [&str; 8] = [
        "ORDER",
        "STATE",
        "PARCEL",
        "STATUS / LAST EVENT",
        "SHIPPED",
        "PROTECTION",
        "STORE",
        "WHAT",
    ];
    let mut rows: Vec<[String; 8]> = Vec::new();
    for o in &report.orders {
        let shipped = o
            .shipped_at
            .map(|d| d.to_string())
            .unwrap_or_else(|| "-".into());
        let base = |parcel: String, status: String| {
            [
                o.order_id.clone(),
                o.state.as_str().to_owned(),
                parcel,
                status,
                shipped.clone(),
                unknown_line(o).unwrap_or_else(|| when(o, soon, rules.timezone)),
                o.store.as_deref().map_or_else(|| "-".into(), one_line),
                what(o),
            ]
        };
        if o.parcels.is_empty() {
            let words = if o.state == OrderState::AwaitingShipment {
                "not shipped yet"
            } else {
                "no tracking number yet"
            };
            rows.push(base("-".into(), words.into()));
        }
        for p in &o.parcels {
            rows.push(base(p.tracking_number.clone(), marked_status(p, rules)));
        }
    }
    for p in &report.unassigned_parcels {
        let status = format!("{} {}", origin_words(p), marked_status(p, rules));
        rows.push([
            "(no order)".into(),
            "-".into(),
            p.tracking_number.clone(),
            status,
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
        ]);
    }
    let widths: Vec<usize> = (0..HEAD.len())
        .map(|i| max_width(HEAD[i], rows.iter().map(|r| &r[i])))
        .collect();
    let mut o = String::new();
    let head: Vec<String> = HEAD.iter().map(|h| h.to_string()).collect();
    o.push_str(&row(&head, &widths));
    o.push('\n');
    for r in &rows {
        o.push_str(&row(r, &widths));
        o.push('\n');
    }
    o
}
