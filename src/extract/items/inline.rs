//! Items written inline, as text: the same item grammar as the HTML blocks
//! of [`super`], read from `text/plain` parts, from forwards whose original
//! was collapsed to one paragraph, and from HTML that is one paragraph.
//!
//! One item is one line or one sentence of such text:
//!
//! ```text
//! - USB C Hub 7 in 1, Color: Gray x1 US $23.49
//! Artikel: Schreibtischlampe, Farbe: Weiß, Menge: 1, 12,99 €
//! … has shipped. Bluetooth Speaker, Blue, x1, US $15.20. Order total: …
//! Funda de silicona [Rojo] Cantidad: 2 4,50 €
//! ```
//!
//! The quantity (`x1`, `×1` or a quantity label from [`lang`]) anchors the
//! item; before it stand the title and its variant (after the last comma,
//! or in brackets at the end), after it the price. A sentence naming an
//! order number starts that order's items; totals, fees and shipping lines
//! ([`lang::TOTAL_WORDS`]) and anything after a recommendation heading are
//! never items. Only read when the email has no item block, so an HTML
//! email's items never change here.

use std::sync::LazyLock;

use regex::Regex;

use super::{
    clean, digit_runs, parse_price, store_name, strip_ellipsis, Found, Line, MAX_ITEMS,
    MAX_LINE_CHARS, RECOMMEND, VARIANT_CHARS,
};
use crate::extract::{lang, text, LabelKind, LABELS};
use crate::model::{Item, Price};

/// A quantity inside a line: `x1`, `×1`, `x 1`, or a label and a number
/// (`Qty: 1`, `Menge: 1`, `Ilość: 1`). Stands after a space, comma or
/// bracket (never inside a word: "4K", "Box2") and is followed by no
/// letter or digit, nor by a decimal part ("x1.5"). Group 1 or 2 holds the
/// number.
static INLINE_QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
    let labels = crate::extract::subject::alternation(lang::QUANTITY_LABELS);
    Regex::new(&format!(
        r"(?i)(?:^|[\s,;(\[·|])(?:[x×] ?(\d{{1,4}})|(?:{labels})\s*[:：.]?\s*(\d{{1,4}}))(?:$|[^\p{{L}}\p{{N}}.,]|[.,](?:\s|$))"
    ))
    .expect("static regex is valid")
});

/// The items of `flat` written inline, each with the index of its order.
pub(super) fn items(flat: &str, ids: &[Option<&str>]) -> Vec<(Found, Option<usize>)> {
    // Cheap gate: no quantity anywhere, no item.
    if !INLINE_QUANTITY.is_match(flat) {
        return Vec::new();
    }
    let single = match ids {
        [Some(_)] => Some(0),
        _ => None,
    };
    let mut out = Vec::new();
    let mut owner = single;
    let mut store: Option<String> = None;
    let mut in_recommendations = false;
    for (n, seg) in flat.lines().flat_map(sentences).enumerate() {
        if out.len() >= MAX_ITEMS {
            break;
        }
        let mut rest = seg;
        // A sentence naming an order number starts that order's items;
        // what follows the number may still be an item ("Order N: Lamp x1").
        if let Some((i, after)) = names_order(seg, ids) {
            owner = Some(i);
            store = None;
            in_recommendations = false;
            rest = after;
        }
        // Everything after a recommendations heading is skipped unread
        // (until an order number), so it is not even lower-cased.
        if in_recommendations {
            continue;
        }
        let lower = seg.to_lowercase();
        if RECOMMEND.is_match(&lower) {
            in_recommendations = true;
            continue;
        }
        if let Some(item) = parse(rest) {
            out.push((
                Found {
                    line: n,
                    item,
                    store: store.clone(),
                },
                owner,
            ));
            continue;
        }
        let line = Line {
            text: seg,
            lower: &lower,
            marker: None,
            has_number: digit_runs(seg).iter().any(|r| r.len() >= 10),
        };
        if let Some(s) = store_name(&line) {
            store = Some(s);
        }
    }
    out
}

/// The sentences of a line: a collapsed paragraph ("… has shipped. Lamp,
/// White, x1. Order total …") holds one item or total per sentence. A
/// sentence ends at `.`/`!`/`?` before a space and a capital letter (or a
/// letter of a script without case), at `。` or at a bullet `•`; a decimal
/// point never ends one, nor does `;` or `|` (they separate a variant's
/// parts: "Color: Red; Size: M").
fn sentences(line: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in line.char_indices() {
        let cut = match c {
            '.' | '!' | '?' | '。' => {
                let after = line.get(i + c.len_utf8()..).unwrap_or("");
                let next = after.trim_start_matches(' ');
                c == '。'
                    || (after.starts_with(' ')
                        && next.chars().next().is_some_and(|n| {
                            n.is_uppercase() || (n.is_alphabetic() && !n.is_lowercase())
                        }))
            }
            '•' => true,
            _ => false,
        };
        if cut {
            out.push(line.get(start..i).unwrap_or(""));
            start = i + c.len_utf8();
        }
    }
    out.push(line.get(start..).unwrap_or(""));
    out.into_iter().map(str::trim).filter(|s| !s.is_empty())
}

/// The order a sentence names (by number, a running number glued in front
/// allowed) and the text after that number.
fn names_order<'s>(seg: &'s str, ids: &[Option<&str>]) -> Option<(usize, &'s str)> {
    if seg.bytes().filter(u8::is_ascii_digit).count() < 10 {
        return None;
    }
    for run in digit_runs(seg) {
        let Some(i) = ids
            .iter()
            .position(|id| id.is_some_and(|id| run.strip_suffix(id).is_some_and(|g| g.len() <= 2)))
        else {
            continue;
        };
        let at = seg.find(run)? + run.len();
        let after = seg
            .get(at..)?
            .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '：' | ',' | ')'));
        return Some((i, after));
    }
    None
}

/// Reads one item from a line or sentence, `None` when it is none.
fn parse(seg: &str) -> Option<Item> {
    if seg.chars().count() > MAX_LINE_CHARS {
        return None;
    }
    let caps = INLINE_QUANTITY.captures(seg)?;
    let num = caps.get(1).or_else(|| caps.get(2))?;
    let whole = caps.get(0)?;
    let quantity: u32 = num.as_str().parse().ok().filter(|q| *q > 0)?;
    // The match opens with the separator before the quantity (or nothing).
    let before = seg.get(..whole.start())?;
    let after = seg.get(num.end()..)?;
    let (title, variant, mut price) = title_variant(before)?;
    // The price after the quantity: the rest, or its first part ("US $2.10,
    // free shipping"); a decimal comma stays ("12,99 €").
    let after = after.trim_matches(separator);
    if !after.is_empty() {
        let first = after
            .split([';', '('])
            .next()
            .and_then(|a| a.split(", ").next())
            .unwrap_or("")
            .trim_matches(separator);
        if let Some(p) = parse_price(after).or_else(|| parse_price(first)) {
            price = Some(p);
        }
    }
    Some(Item {
        title,
        variant,
        quantity: Some(quantity),
        price,
    })
}

fn separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ';' | '·' | '|' | '-' | '–' | '/' | ':' | '=' | '@')
}

/// Title, variant and a price written before the quantity: "Lamp, White",
/// "Lamp (White)", "Lamp [White]", "Item: Lamp, White, US $2.10".
fn title_variant(before: &str) -> Option<(String, Option<String>, Option<Price>)> {
    let mut s = before.trim().trim_start_matches(|c: char| {
        matches!(c, '-' | '*' | '•' | '·' | '>') || c.is_whitespace()
    });
    // An item label in front ("Item:", "Artikel:").
    if let Some((label, rest)) = s.split_once([':', '：']) {
        if lang::ITEM_LABELS.contains(&label.trim().to_lowercase().as_str()) {
            s = rest;
        }
    }
    let mut s = s.trim_matches(separator);
    // A price before the quantity ("Lamp, White, US $2.10 x1").
    let mut price = None;
    if let Some((head, tail)) = s.rsplit_once([',', '·', '|']) {
        if let Some(p) = parse_price(tail.trim()) {
            price = Some(p);
            s = head.trim_matches(separator);
        }
    }
    let (title, variant) = if let Some(open) = bracketed_tail(s) {
        let inside = s.get(open + 1..s.len().checked_sub(1)?)?.trim();
        (s.get(..open)?.trim(), Some(inside))
    } else {
        match s.rsplit_once(", ") {
            Some((head, tail))
                if !head.trim().is_empty() && tail.trim().chars().count() <= VARIANT_CHARS =>
            {
                (head.trim(), Some(tail.trim()))
            }
            _ => (s, None),
        }
    };
    let title = strip_ellipsis(&clean(title));
    if !is_title(&title) {
        return None;
    }
    let variant = variant.map(clean).filter(|v| !v.is_empty());
    Some((title, variant, price))
}

/// Where the bracket opens when `s` ends with "(…)" or "[…]".
fn bracketed_tail(s: &str) -> Option<usize> {
    let open = match s.chars().next_back()? {
        ')' => '(',
        ']' => '[',
        _ => return None,
    };
    let at = s.rfind(open)?;
    (at > 0).then_some(at)
}

/// Can this text be an item's title? Letters, no long number (an order or
/// parcel), not a total or fee line, not a label or a sentence about the
/// order.
fn is_title(t: &str) -> bool {
    let chars = t.chars().count();
    if !(3..=MAX_LINE_CHARS).contains(&chars) || !t.chars().any(char::is_alphabetic) {
        return false;
    }
    if digit_runs(t).iter().any(|r| r.len() >= 10) {
        return false;
    }
    let lower = text::fold_lower(t);
    // A fee word opens the line: as a whole word ("Shipping: …"), or as the
    // stem of a compound in a short line ("Versandkosten", "Gesamtsumme"); a
    // product title is longer ("Total Station Laser Level 3D 12 Lines").
    let short = lower.split_whitespace().count() <= 3;
    if lang::TOTAL_WORDS.iter().any(|w| {
        lower.strip_prefix(w).is_some_and(|rest| {
            short
                || rest
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_alphanumeric() || text::is_unspaced(c))
        })
    }) {
        return false;
    }
    // "Order number", "Tracking number …": a label, never a title.
    let label = LABELS.word_hits(&lower).any(|(kind, _, start, _)| {
        start == 0
            && matches!(
                kind,
                LabelKind::Order | LabelKind::Tracking | LabelKind::OldTracking
            )
    });
    !label
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Title, variant, quantity and (amount, currency).
    type Read = (String, Option<String>, u32, Option<(String, String)>);

    fn item(seg: &str) -> Option<Read> {
        parse(seg).map(|i| {
            (
                i.title,
                i.variant,
                i.quantity.unwrap(),
                i.price.map(|p| (p.amount, p.currency)),
            )
        })
    }

    #[test]
    fn inline_item_grammar_reads_comma_bracket_and_label_quantities() {
        let p = |a: &str, c: &str| Some((a.to_string(), c.to_string()));
        assert_eq!(
            item("- Lamp LED flat, Color: White x2 US $3.10"),
            Some((
                "Lamp LED flat".into(),
                Some("Color: White".into()),
                2,
                p("3.10", "USD")
            ))
        );
        assert_eq!(
            item("Lampe (Weiß) ×1 · 1,99 €"),
            Some(("Lampe".into(), Some("Weiß".into()), 1, p("1.99", "EUR")))
        );
        assert_eq!(
            item("Artikel: Lampe [Weiß], Menge: 3, 12,99 €"),
            Some(("Lampe".into(), Some("Weiß".into()), 3, p("12.99", "EUR")))
        );
        assert_eq!(
            item("Ładowarka USB-C 20W Ilość: 1"),
            Some(("Ładowarka USB-C 20W".into(), None, 1, None))
        );
    }

    #[test]
    fn totals_fees_labels_and_numbers_are_never_inline_items() {
        for seg in [
            "Order total: US $9.99 x1",
            "Shipping, x1 US $0.00",
            "Versandkosten x1 0,00 €",
            "Tracking number LP00123456789012 x1",
            "x1 US $2.00",
            "USB hub 4K 7in1",
            "Size x1.5 cm",
        ] {
            assert_eq!(item(seg), None, "{seg}");
        }
    }

    #[test]
    fn collapsed_paragraph_splits_into_sentences_not_at_decimals() {
        let s: Vec<&str> =
            sentences("Your order shipped. Lamp, White, x1, US $15.20. Order total: US $15.20.")
                .collect();
        assert_eq!(
            s,
            [
                "Your order shipped",
                "Lamp, White, x1, US $15.20",
                "Order total: US $15.20."
            ]
        );
    }
}
