//! What each order contains (SPEC §3/§4 `items`, `store`), read from the
//! item blocks of order, shipping and parcel emails.
//!
//! AliExpress lays out an item block the same way in every language, one
//! line each once the HTML is flattened:
//!
//! ```text
//! Beispiel Store               <- the store (above the items)
//! Beispiel-Lampe LED flach...  <- title, often cut with an ellipsis
//! Variante A                   <- variant (may be missing)
//! € 1,99x1                     <- price (may be missing) and quantity
//! ```
//!
//! The quantity line anchors an item; the title and variant are the lines
//! above it, unless those are labels, headings, prices, numbers or
//! sentences. Several orders in one email each have their own block,
//! marked by a short line naming the order number, either above its items
//! ("Bestellung N" in multi-order confirmations) or below them ("Bestell-Nr."
//! N in shipping updates); the layout that gives every order its items wins.
//! Anything after a recommendation heading ("You may also like") is an
//! offer, not the order, until the next order marker.
//!
//! Works on the case-preserving flattened text (titles keep their case);
//! all words come from [`lang`].

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};

mod inline;

use super::{lang, text, LABELS, STATUS};
use crate::model::{Item, OrderRef, Price};

/// The most items taken from one email (hostile input).
const MAX_ITEMS: usize = 64;

/// Longer lines are never titles, variants or stores.
const MAX_LINE_CHARS: usize = 300;

/// A line naming an order is a block marker only when it is this short (a
/// label with the number); longer ones are sentences ("Your order N has
/// shipped") that say nothing about where a block starts.
const MARKER_CHARS: usize = 60;

/// Variants are short ("Color: White, 2PCS"); a line above the quantity
/// longer than this, not cut by an ellipsis, is the title itself.
const VARIANT_CHARS: usize = 40;

static RECOMMEND: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(lang::RECOMMENDATION_HEADINGS).expect("static table builds"));

static CURRENCY: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(lang::CURRENCIES.iter().map(|c| c.0))
        .expect("static table builds")
});

/// One non-blank line of the flattened body, borrowed: most lines are
/// never looked at closely, so nothing is copied until an item needs it.
struct Line<'a> {
    /// Trimmed, case kept.
    text: &'a str,
    /// The same line of the folded, lower-cased body, trimmed.
    lower: &'a str,
    /// The order (index into the email's orders) this line names, if it is
    /// a short marker line.
    marker: Option<usize>,
    /// Names an order or parcel number anywhere (never an item's text).
    has_number: bool,
}

/// What was read from one item block.
struct Found {
    line: usize,
    item: Item,
    store: Option<String>,
}

/// Fills `items` and `store` of the orders from the item blocks of `flat`
/// (the case-preserving flattened body; `body` is the same text folded and
/// lower-cased, line for line). Parcel-only entries stay empty.
pub(super) fn fill(flat: &str, body: &str, orders: &mut [OrderRef]) {
    let ids: Vec<Option<&str>> = orders.iter().map(|o| o.order_id.as_deref()).collect();
    if ids.iter().all(Option::is_none) {
        return;
    }
    // Cheap gate: most emails have no quantity line at all.
    if flat.lines().any(|l| quantity(l.trim()).is_some()) {
        let lines = read_lines(flat, body, &ids);
        let found = read_blocks(&lines);
        if !found.is_empty() {
            let owners = assign(&lines, &found, ids.len());
            put(orders, found.into_iter().zip(owners));
            return;
        }
    }
    // No item block: text/plain parts and HTML collapsed to one paragraph
    // write each item inline ("Lamp, White x1 US $2.10").
    put(orders, inline::items(flat, &ids).into_iter());
}

/// Gives each item read to its order.
fn put(orders: &mut [OrderRef], found: impl Iterator<Item = (Found, Option<usize>)>) {
    for (f, owner) in found {
        let Some(o) = owner.and_then(|i| orders.get_mut(i)) else {
            continue;
        };
        if o.order_id.is_none() || o.items.len() >= MAX_ITEMS {
            continue;
        }
        if o.store.is_none() {
            o.store = f.store;
        }
        o.items.push(f.item);
    }
}

fn read_lines<'a>(flat: &'a str, body: &'a str, ids: &[Option<&str>]) -> Vec<Line<'a>> {
    flat.lines()
        .zip(body.lines())
        .map(|(t, l)| (t.trim(), l.trim()))
        .filter(|(t, _)| !t.is_empty())
        .map(|(text, lower)| {
            let mut has_number = false;
            let mut marker = None;
            if text.bytes().filter(u8::is_ascii_digit).count() >= 10 {
                let runs = digit_runs(text);
                has_number = runs.iter().any(|r| r.len() >= 10);
                let named = ids.iter().position(|id| {
                    id.is_some_and(|id| {
                        // A running number may be glued in front of the id
                        // ("Bestellung 19999999999990001", see
                        // `fix_running_numbers`).
                        runs.iter()
                            .any(|r| r.strip_suffix(id).is_some_and(|glued| glued.len() <= 2))
                    })
                });
                marker = named.filter(|_| text.chars().count() <= MARKER_CHARS);
            }
            Line {
                text,
                lower,
                marker,
                has_number,
            }
        })
        .collect()
}

/// Runs of ASCII digits in `s`.
fn digit_runs(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|r| !r.is_empty())
        .collect()
}

/// The email's text of a line: folded (no-break spaces, zero-width
/// characters), whitespace collapsed, trimmed.
fn clean(line: &str) -> String {
    let folded = text::fold(line);
    let mut out = String::with_capacity(folded.len());
    for w in folded.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// A title without its trailing ellipsis ("Lampe LED flach..." → "Lampe
/// LED flach").
fn strip_ellipsis(s: &str) -> String {
    let mut t = s.trim_end();
    loop {
        let next = t
            .strip_suffix("...")
            .or_else(|| t.strip_suffix('…'))
            .map(str::trim_end);
        match next {
            Some(n) => t = n,
            None => break,
        }
    }
    t.to_string()
}

fn ends_with_ellipsis(s: &str) -> bool {
    s.ends_with("...") || s.ends_with('…')
}

/// Reads every item block, in line order.
fn read_blocks(lines: &[Line]) -> Vec<Found> {
    let mut out = Vec::new();
    let mut in_recommendations = false;
    let mut store: Option<String> = None;
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        let at = i;
        i += 1;
        if line.marker.is_some() {
            // A new order's block: recommendations and the store of the
            // previous block end here.
            in_recommendations = false;
            store = None;
            continue;
        }
        if RECOMMEND.is_match(line.lower) {
            in_recommendations = true;
            continue;
        }
        let Some((quantity, mut price)) = quantity(line.text) else {
            continue;
        };
        if in_recommendations || out.len() >= MAX_ITEMS {
            continue;
        }
        // A price on its own line just above the quantity ("€ 1,99" / "x1").
        let mut above = at;
        if price.is_none() {
            if let Some(p) = at
                .checked_sub(1)
                .and_then(|k| lines.get(k))
                .and_then(|l| parse_price(l.text))
            {
                price = Some(p);
                above -= 1;
            }
        }
        let a = above.checked_sub(1).and_then(|k| lines.get(k));
        let b = above.checked_sub(2).and_then(|k| lines.get(k));
        let Some(a) = a.filter(|l| !is_boundary(l)) else {
            continue;
        };
        let b = b.filter(|l| !is_boundary(l));
        let b_is_store = b.is_some_and(|l| store_name(l).is_some());
        let (title, variant) = match b {
            Some(b)
                if !b_is_store
                    && !ends_with_ellipsis(a.text)
                    && (ends_with_ellipsis(b.text) || a.text.chars().count() <= VARIANT_CHARS) =>
            {
                (b, Some(a))
            }
            _ => (a, None),
        };
        let title_text = strip_ellipsis(&clean(title.text));
        if title_text.is_empty() {
            continue;
        }
        // The store stands above the first item of its block; the next
        // items of the block (below the previous item's quantity) keep it.
        let title_at = if variant.is_some() {
            above.checked_sub(2)
        } else {
            above.checked_sub(1)
        };
        if let Some(s) = title_at
            .and_then(|t| t.checked_sub(1))
            .and_then(|k| lines.get(k))
            .and_then(store_name)
        {
            store = Some(s);
        }
        out.push(Found {
            line: at,
            item: Item {
                title: title_text,
                variant: variant.map(|v| clean(v.text)),
                quantity: Some(quantity),
                price,
            },
            store: store.clone(),
        });
    }
    out
}

/// A line that can never be an item's title or variant: a marker or other
/// line with an order or parcel number, a quantity, a price, a label
/// ("Order ID:", "Ship to:"), a heading or button with an order, package or
/// status word ("Track order", "Paketinfos", "Delivered"), or a sentence.
fn is_boundary(l: &Line) -> bool {
    if l.marker.is_some() || l.has_number || l.text.chars().count() > MAX_LINE_CHARS {
        return true;
    }
    if l.text.ends_with(':') || l.text.ends_with('：') {
        return true;
    }
    if quantity(l.text).is_some() || has_price(l.text) {
        return true;
    }
    if RECOMMEND.is_match(l.lower) {
        return true;
    }
    let words = l.text.split_whitespace().count();
    if words > 6 && l.text.ends_with(['.', '!', '?', '。']) && !ends_with_ellipsis(l.text) {
        return true;
    }
    if words <= 5 {
        let label = LABELS
            .word_hits(l.lower)
            .any(|(kind, ..)| !matches!(kind, super::LabelKind::Eta));
        let status = STATUS.hits(l.lower).next().is_some();
        if label || status {
            return true;
        }
    }
    false
}

/// The store a line names: "Store: X" (a store label), or a short line
/// holding a store word ("Beispiel Store") that is not a button.
fn store_name(l: &Line) -> Option<String> {
    for label in lang::STORE_LABELS {
        if let Some(rest) = l.lower.strip_prefix(label) {
            // Lower-casing may change byte lengths: cut the original by
            // the rest's length from the end.
            let cut = l.text.len().checked_sub(rest.len())?;
            let name = l
                .text
                .get(cut..)?
                .trim()
                .trim_start_matches([':', '：'])
                .trim();
            return (!name.is_empty() && name.chars().count() <= 80).then(|| clean(name));
        }
    }
    if l.marker.is_some() || l.has_number || l.text.chars().count() > 60 {
        return None;
    }
    if l.text.split_whitespace().count() > 6 || has_price(l.text) {
        return None;
    }
    if lang::STORE_BUTTONS.iter().any(|b| l.lower.contains(b)) {
        return None;
    }
    let has_word = l
        .lower
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| lang::STORE_WORDS.contains(&w))
        || l.lower.contains('店');
    let name = l.text.trim_end_matches(['>', '›', '»', ' ']).trim();
    (has_word && !name.is_empty()).then(|| clean(name))
}

/// The quantity (and price) of a quantity line: "x1", "€ 1,99x1",
/// "US $6.48 x1", "x2 · 3,98 zł", "Qty: 2". `None` for any other line.
fn quantity(line: &str) -> Option<(u32, Option<Price>)> {
    // Every quantity line holds a digit; most lines of an email do not
    // (this runs on every line as the gate).
    if line.is_empty() || line.len() > 60 || !line.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(q) = labelled_quantity(line) {
        return Some(q);
    }
    let mut search = 0;
    while let Some(pos) = line.get(search..).and_then(|r| r.find(['x', 'X', '×'])) {
        let at = search + pos;
        let sign_len = if line.get(at..).is_some_and(|r| r.starts_with('×')) {
            '×'.len_utf8()
        } else {
            1
        };
        search = at + sign_len;
        let after = line.get(search..).unwrap_or("");
        let digits_from = after.len() - after.trim_start_matches(' ').len();
        let rest = after.get(digits_from..).unwrap_or("");
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 4 || digits_from > 1 {
            continue;
        }
        let Ok(q) = rest.get(..n).unwrap_or("").parse::<u32>() else {
            continue;
        };
        let pre = line.get(..at).unwrap_or("");
        let post = rest.get(n..).unwrap_or("");
        let trim = |s: &str| {
            s.trim_matches(|c: char| c.is_whitespace() || matches!(c, '·' | '|' | '-' | '/' | ','))
                .to_string()
        };
        let (pre, post) = (trim(pre), trim(post));
        let price = match (pre.is_empty(), post.is_empty()) {
            (true, true) => None,
            (false, true) => Some(parse_price(&pre)?),
            (true, false) => Some(parse_price(&post)?),
            (false, false) => continue,
        };
        if q == 0 {
            return None;
        }
        return Some((q, price));
    }
    None
}

/// "Qty: 2", "Menge: 2", "Количество: 2 шт." style quantities.
fn labelled_quantity(line: &str) -> Option<(u32, Option<Price>)> {
    if !line.starts_with(char::is_alphabetic) || line.len() > 40 {
        return None;
    }
    let lower = line.to_lowercase();
    let label = lang::QUANTITY_LABELS
        .iter()
        .find(|l| lower.starts_with(*l))?;
    let rest = lower.get(label.len()..)?;
    let rest =
        rest.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '：' | '.'));
    let n = rest.bytes().take_while(u8::is_ascii_digit).count();
    let q: u32 = rest.get(..n)?.parse().ok()?;
    let tail = rest.get(n..)?.trim();
    // Only a unit word may follow ("2 шт.", "2 pcs"), nothing with digits.
    (q > 0 && tail.chars().count() <= 6 && !tail.bytes().any(|b| b.is_ascii_digit()))
        .then_some((q, None))
}

/// Does the line hold a price anywhere (a currency next to an amount)?
fn has_price(line: &str) -> bool {
    CURRENCY.find_iter(line).any(|m| {
        let before = line.get(..m.start()).unwrap_or("").trim_end();
        let after = line.get(m.end()..).unwrap_or("").trim_start();
        before.ends_with(|c: char| c.is_ascii_digit())
            || after.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// Parses a whole string as one price: a currency before or after an
/// amount ("US $6.48", "€ 1,99", "43,57zł", "1 234,56 ₽", "R$ 25,90").
pub(super) fn parse_price(s: &str) -> Option<Price> {
    let s = s.trim();
    let m = CURRENCY
        .find_iter(s)
        .find(|m| m.start() == 0 || m.end() == s.len())?;
    let &(_, iso) = lang::CURRENCIES.get(m.pattern().as_usize())?;
    let amount = if m.start() == 0 {
        s.get(m.end()..)?
    } else {
        s.get(..m.start())?
    };
    // A code written next to a word is not a currency ("TL" in "HTML").
    let sign = s.get(m.start()..m.end())?;
    if sign.chars().all(|c| c.is_ascii_alphabetic()) {
        let glued = if m.start() == 0 {
            amount.starts_with(|c: char| c.is_alphabetic())
        } else {
            amount.ends_with(|c: char| c.is_alphabetic())
        };
        if glued {
            return None;
        }
    }
    Some(Price {
        amount: parse_amount(amount.trim())?,
        currency: iso.to_string(),
    })
}

/// "1,99" / "1.99" / "1.234,56" / "1,234.56" / "1 234" → "1.99", "1234.56"…
/// The last separator followed by one or two digits is the decimal mark;
/// every other separator groups thousands.
fn parse_amount(s: &str) -> Option<String> {
    if s.is_empty()
        || !s.starts_with(|c: char| c.is_ascii_digit())
        || !s.ends_with(|c: char| c.is_ascii_digit())
        || !s.chars().all(|c| {
            c.is_ascii_digit() || matches!(c, '.' | ',' | ' ' | '\'' | '\u{a0}' | '\u{202f}')
        })
    {
        return None;
    }
    let last_sep = s.rfind(['.', ',']);
    let (int, frac) = match last_sep {
        Some(p) => {
            let frac = s.get(p + 1..)?;
            if (1..=2).contains(&frac.len()) {
                (s.get(..p)?, Some(frac))
            } else {
                (s, None)
            }
        }
        None => (s, None),
    };
    let int: String = int.chars().filter(char::is_ascii_digit).collect();
    if int.is_empty() || int.len() > 12 {
        return None;
    }
    Some(match frac {
        Some(f) => format!("{int}.{f}"),
        None => int,
    })
}

/// Which order each item belongs to. One order: all of them. Several
/// orders: by their marker lines, above or below the items (the layout
/// that gives more orders items wins, above on a tie); without markers
/// the email does not say which item is whose, so none is given.
fn assign(lines: &[Line], found: &[Found], n_orders: usize) -> Vec<Option<usize>> {
    if n_orders == 1 {
        return found.iter().map(|_| Some(0)).collect();
    }
    let markers: Vec<(usize, usize)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.marker.map(|o| (i, o)))
        .collect();
    let above: Vec<Option<usize>> = found
        .iter()
        .map(|f| {
            markers
                .iter()
                .rev()
                .find(|(i, _)| *i < f.line)
                .map(|(_, o)| *o)
        })
        .collect();
    let below: Vec<Option<usize>> = found
        .iter()
        .map(|f| markers.iter().find(|(i, _)| *i > f.line).map(|(_, o)| *o))
        .collect();
    let score = |v: &[Option<usize>]| {
        let mut seen: Vec<usize> = v.iter().flatten().copied().collect();
        seen.sort_unstable();
        seen.dedup();
        (seen.len(), v.iter().flatten().count())
    };
    if score(&below) > score(&above) {
        below
    } else {
        above
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn price(a: &str, c: &str) -> Option<Price> {
        Some(Price {
            amount: a.into(),
            currency: c.into(),
        })
    }

    #[test]
    fn prices_in_every_notation() {
        assert_eq!(parse_price("€ 1,99"), price("1.99", "EUR"));
        assert_eq!(parse_price("1,99€"), price("1.99", "EUR"));
        assert_eq!(parse_price("US $6.48"), price("6.48", "USD"));
        assert_eq!(parse_price("$6.48"), price("6.48", "USD"));
        assert_eq!(parse_price("43,57zł"), price("43.57", "PLN"));
        assert_eq!(parse_price("1.234,56 ₽"), price("1234.56", "RUB"));
        assert_eq!(parse_price("1 234,56 ₽"), price("1234.56", "RUB"));
        assert_eq!(parse_price("US $1,234.50"), price("1234.50", "USD"));
        assert_eq!(parse_price("R$ 25,90"), price("25.90", "BRL"));
        assert_eq!(parse_price("£5.99"), price("5.99", "GBP"));
        assert_eq!(parse_price("₩ 12,000"), price("12000", "KRW"));
        assert_eq!(parse_price("CA $3.10"), price("3.10", "CAD"));
        assert_eq!(parse_price("129,90 Kč"), price("129.90", "CZK"));
        assert_eq!(parse_price("Variante A"), None);
        assert_eq!(parse_price("HTML5"), None);
        assert_eq!(parse_price("€"), None);
        assert_eq!(parse_price("99 kr"), None);
    }

    #[test]
    fn quantity_lines_and_lines_that_only_look_like_them() {
        assert_eq!(quantity("x1"), Some((1, None)));
        assert_eq!(quantity("× 3"), Some((3, None)));
        assert_eq!(quantity("€ 1,99x1"), Some((1, price("1.99", "EUR"))));
        assert_eq!(quantity("US $6.48 x1"), Some((1, price("6.48", "USD"))));
        assert_eq!(quantity("x2 · 3,98 zł"), Some((2, price("3.98", "PLN"))));
        assert_eq!(quantity("Qty: 2"), Some((2, None)));
        assert_eq!(quantity("Количество: 2 шт."), Some((2, None)));
        assert_eq!(quantity("4x4 Offroad Car"), None);
        assert_eq!(quantity("Cable 2m x2"), None);
        assert_eq!(quantity("Box 10x10"), None);
        assert_eq!(quantity("US $3.12"), None);
        assert_eq!(quantity("x0"), None);
    }

    #[test]
    fn titles_lose_only_a_trailing_ellipsis() {
        assert_eq!(strip_ellipsis("Lampe LED flach..."), "Lampe LED flach");
        assert_eq!(strip_ellipsis("Relay Module …"), "Relay Module");
        assert_eq!(strip_ellipsis("USB-C auf USB-..."), "USB-C auf USB-");
        assert_eq!(strip_ellipsis("2.5 mm Jack"), "2.5 mm Jack");
        assert_eq!(
            clean("  Beispiel\u{a0}Lampe \t LED  "),
            "Beispiel Lampe LED"
        );
    }
}
