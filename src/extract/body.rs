//! Step 4 of extraction: the body text (HTML flattened, folded, lower
//! case). Label/value pairs for orders and tracking numbers in every
//! language, table header rows, protection and delivery dates, and the
//! tracking formats recognised anywhere (`numbers.rs`); which tokens are
//! acceptable as order or tracking numbers in which position.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Is `t` acceptable as a tracking number in a labelled (or link) position?
pub(super) fn accept_labelled(t: &str) -> bool {
    match numbers::classify(t) {
        Verdict::Invalid => false,
        Verdict::Known(_) => true,
        Verdict::Unknown => {
            numbers::plausible_unknown(t)
                && (t.bytes().any(|b| b.is_ascii_alphabetic()) || t.len() > 20)
        }
    }
}

/// Is `t` acceptable as a tracking number in a subject's parcel position?
/// Any plausible token, even of an unknown format, unless a check digit
/// fails (SPEC §3).
pub(super) fn accept_subject_parcel(t: &str) -> bool {
    match numbers::classify(t) {
        Verdict::Invalid => false,
        Verdict::Known(_) => true,
        Verdict::Unknown => numbers::plausible_unknown(t),
    }
}

/// A token that stands where a number stands and is one, whatever its
/// format: 8 or more letters and digits, with digits.
pub(super) fn looks_like_number(t: &str) -> bool {
    t.len() >= 8
        && t.bytes().all(|b| b.is_ascii_alphanumeric())
        && t.bytes().any(|b| b.is_ascii_digit())
}

pub(super) fn is_order_id(t: &str) -> bool {
    (12..=20).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
}

/// Picks the tracking number after a label: the token itself, or the token
/// joined with the digit groups that follow it.
pub(super) fn tracking_value(v: &text::Value<'_>, accept: fn(&str) -> bool) -> Option<String> {
    let first = numbers::normalise(v.first());
    if accept(&first) {
        return Some(first);
    }
    let joined: Vec<String> = v.joined().iter().map(|j| numbers::normalise(j)).collect();
    // Digit groups that only make a number of an unknown format as a whole
    // are an order number in a table's next row ("Sendungsnummer" over
    // "3098 2641 7797 2301"), never a tracking number made of its first
    // groups.
    if joined
        .first()
        .is_some_and(|j| is_order_id(j) && !matches!(numbers::classify(j), Verdict::Known(_)))
    {
        return None;
    }
    joined
        .into_iter()
        .find(|j| matches!(numbers::classify(j), Verdict::Known(_)))
}

pub(super) fn order_value(v: &text::Value<'_>) -> Option<String> {
    let first = v.first();
    if is_order_id(first) {
        return Some(first.to_string());
    }
    if first.len() < 12 && first.bytes().all(|b| b.is_ascii_digit()) {
        return v.joined().into_iter().find(|j| is_order_id(j));
    }
    None
}

pub(super) fn scan_body(body: &str, ref_date: Option<NaiveDate>, found: &mut Found) {
    let table = &*LABELS;
    let year = ref_date.map(|d| d.year());
    for (kind, _, start, end) in table.word_hits(body) {
        match kind {
            LabelKind::Order => match text::value_after(body, end) {
                Some(v) => {
                    if let Some(id) = order_value(&v) {
                        // "Order numbers: N1, N2 & N3": the list goes on.
                        let more = if v.first() == id {
                            text::list_continuation(body, v.start + id.len())
                        } else {
                            Vec::new()
                        };
                        found.label_orders.push((id, start));
                        for o in more.into_iter().filter(|o| is_order_id(o)) {
                            found.label_orders.push((o.to_string(), start));
                        }
                    }
                }
                // A label with no value but a tracking label close after it
                // is a table header row ("Order number | Tracking number",
                // also with columns between): the values stand in the rows
                // below (see `scan_header_tables`).
                None => {
                    if header_label_follows(body, end, |k| {
                        matches!(k, LabelKind::Tracking | LabelKind::Package)
                    }) {
                        found.header_row = true;
                    }
                }
            },
            LabelKind::Tracking | LabelKind::Package => {
                match text::value_after(body, end)
                    .and_then(|v| tracking_value(&v, accept_labelled).map(|t| (t, v.start)))
                {
                    Some((t, at)) => found.tracks.push((t, Some(at))),
                    // The same header row with the parcel column first.
                    None => {
                        if header_label_follows(body, end, |k| k == LabelKind::Order) {
                            found.header_row = true;
                        }
                    }
                }
            }
            LabelKind::OldTracking => {
                if let Some(t) =
                    text::value_after(body, end).and_then(|v| tracking_value(&v, accept_labelled))
                {
                    found.replaced.push(t);
                }
            }
            LabelKind::ProtectionEnd => {
                if found.protection_until.is_none() {
                    let w = window(body, end, 60);
                    found.protection_until = text::dates(w, year, ref_date).first().copied();
                }
            }
            LabelKind::Eta => {
                if found.eta.is_none() {
                    let w = window(body, end, 100);
                    let d = text::dates(w, year, ref_date);
                    found.eta = match (d.first(), d.get(1)) {
                        (Some(&a), Some(&b)) if b >= a => Some((a, b)),
                        (Some(&a), _) => Some((a, a)),
                        _ => None,
                    };
                }
            }
        }
    }
    // Distinctive formats anywhere in the text.
    for (pos, tok) in text::ascii_tokens(body) {
        if tok.len() < 8 || !tok.bytes().any(|b| b.is_ascii_digit()) {
            continue;
        }
        let norm = tok.to_ascii_uppercase();
        if let Verdict::Known(f) = numbers::classify(&norm) {
            if f.strength == numbers::Strength::Free {
                found.tracks.push((norm, Some(pos)));
            }
        }
    }
}

/// Does a label of the wanted kind open one of the next few lines after
/// `end` (the next cells of a header row, at most 3 columns on)?
pub(super) fn header_label_follows(
    body: &str,
    end: usize,
    want: impl Fn(LabelKind) -> bool,
) -> bool {
    let table = &*LABELS;
    let opens = |l: &str| {
        let l =
            l.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '.' | '#' | '|'));
        table.ac.find(l).is_some_and(|n| {
            n.start() == 0
                && table
                    .items
                    .get(n.pattern().as_usize())
                    .is_some_and(|x| want(x.0))
        })
    };
    let after = window(body, end, 120);
    let mut lines = after.split('\n');
    let own = lines.next().unwrap_or("");
    // "Order number | Tracking number" on one line.
    if opens(own) {
        return true;
    }
    // Else the rest of the label's own line holds fillers only ("no.").
    let only_fillers = own
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .all(|w| lang::FILLERS.contains(&w));
    only_fillers
        && lines
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(3)
            .any(opens)
}
