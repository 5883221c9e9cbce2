//! Tables whose header row holds the labels and whose rows hold the
//! values ("Order number | Tracking number" over one row per order): each
//! row pairs its own order with its own parcels.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What a whole table cell is, when it is only a label ("Order number",
/// "Tracking No.:"): a label word followed by nothing but punctuation and
/// fillers.
pub(super) fn cell_label(cell: &str) -> Option<LabelKind> {
    let table = &*LABELS;
    let m = table.ac.find(cell)?;
    if m.start() != 0 {
        return None;
    }
    let &(kind, phrase) = table.items.get(m.pattern().as_usize())?;
    let end = text::extend_word(cell, m.end(), phrase);
    let rest = cell.get(end..).unwrap_or("");
    let only_fillers = rest
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .all(|w| lang::FILLERS.contains(&w));
    only_fillers.then_some(kind)
}

/// Tables whose header row holds the labels and whose rows below hold the
/// values ("Order number | Carrier | Tracking number" over "N1 | … | T1",
/// "N2 | … | T2"): each row pairs its order with its own parcels, never
/// with another row's order. A row may give several numbers for its order
/// (one per line or comma-separated).
pub(super) fn scan_header_tables(tables: Vec<Vec<Vec<String>>>, found: &mut Found) {
    for rows in tables {
        let mut i = 0;
        while let Some(row) = rows.get(i) {
            i += 1;
            let labels: Vec<Option<LabelKind>> = row.iter().map(|c| cell_label(c)).collect();
            let order_col = labels.iter().position(|k| *k == Some(LabelKind::Order));
            let track_col = labels
                .iter()
                .position(|k| matches!(k, Some(LabelKind::Tracking | LabelKind::Package)));
            if order_col.is_none() && track_col.is_none() {
                continue;
            }
            while let Some(data) = rows.get(i).filter(|r| r.len() == row.len()) {
                let order = order_col
                    .and_then(|c| data.get(c))
                    .and_then(|c| cell_order(c));
                let tracks = track_col
                    .and_then(|c| data.get(c))
                    .map(|c| cell_tracks(c))
                    .unwrap_or_default();
                if order.is_none() && tracks.is_empty() {
                    break;
                }
                if let Some(o) = &order {
                    for t in &tracks {
                        found.pairs.push((o.clone(), t.clone()));
                    }
                }
                found.link_orders.extend(order);
                found.tracks.extend(tracks.into_iter().map(|t| (t, None)));
                i += 1;
            }
        }
    }
}

/// The order number of a table cell: the whole cell (digits grouped by
/// spaces) or its first number that is one ("Order 8123…", "#8123…").
pub(super) fn cell_order(cell: &str) -> Option<String> {
    let whole = numbers::normalise(cell);
    if is_order_id(&whole) {
        return Some(whole);
    }
    cell.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|t| is_order_id(t))
        .map(str::to_string)
}

/// The tracking numbers of a table cell: one per line or list entry, each
/// possibly grouped by spaces ("LP00 9213 3519 7205"), or with words next
/// to it ("LP00921335197205 (Cainiao)").
pub(super) fn cell_tracks(cell: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in cell.split(['\n', ',', ';', '/']) {
        let whole = numbers::normalise(part);
        if whole.is_empty() {
            continue;
        }
        if accept_labelled(&whole) {
            out.push(whole);
            continue;
        }
        out.extend(
            part.split(|c: char| !c.is_ascii_alphanumeric())
                .map(numbers::normalise)
                .filter(|t| matches!(numbers::classify(t), Verdict::Known(_))),
        );
    }
    out.truncate(16);
    out
}
