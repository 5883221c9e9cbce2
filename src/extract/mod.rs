//! Extraction: one RFC 5322 email in, what it says about AliExpress orders
//! and parcels out (SPEC §3). PURE: no I/O, no async, no clock.
//!
//! The pipeline, in order:
//! 1. MIME (mail-parser): headers, RFC 2047 subjects, charsets, QP (numbers
//!    broken over soft line breaks come out whole), base64, and nested
//!    `message/rfc822` parts, each read as a *view* of its own.
//! 2. Sender: `*.aliexpress.com` (also behind Apple Hide-My-Email relays),
//!    a carrier writing about an AliExpress order, or a forward of either
//!    (attached, or inline with the original `From:` line in the body).
//!    Look-alike domains are never AliExpress, whatever they contain.
//! 3. Subject: status phrase → kind and parcel status; `<order word> N` and
//!    `<package word> T` positions.
//! 4. Body (HTML flattened to text, lower-cased): label/value pairs for
//!    orders and tracking numbers, tracking formats with check digits
//!    (`numbers.rs`), replaced numbers, protection dates, ETA.
//! 5. Links in the raw HTML: `orderId`, `tradeOrderId`, `o_ids` lists,
//!    `trackingNumber` (paired with the order of the same link).
//! 6. Assignment: every order gets the parcels the email gives for it.
//!
//! All language knowledge is in [`lang`]; all number formats in [`numbers`].
//! Hostile input never panics: no indexing or string slicing that can go out
//! of bounds (enforced by the clippy lints below).

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used)]

mod items;
pub mod lang;
pub mod numbers;
pub mod text;

use std::collections::HashSet;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use mail_parser::{Message, MessageParser, PartType};
use regex::Regex;

use crate::model::{EmailKind, ParcelStatus};
use lang::Flag;
use numbers::Verdict;

pub use crate::model::{Extraction, OrderRef};

/// Why an email could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("not an RFC 5322 message: {0}")]
    Malformed(String),
}

static PARSER: LazyLock<MessageParser> = LazyLock::new(MessageParser::default);

/// The most orders, parcels or link pairs taken from one email.
const MAX_ITEMS: usize = 256;

/// How deep `message/rfc822` attachments are followed.
const MAX_NESTING: usize = 4;

/// One message of the MIME tree (the top one or an attached one).
struct View<'m> {
    from: Vec<String>,
    subject: String,
    html: Vec<&'m str>,
    plain: Vec<&'m str>,
}

fn collect<'m, 'x: 'm>(msg: &'m Message<'x>, depth: usize, out: &mut Vec<View<'m>>) {
    let from = msg
        .from()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address.as_deref())
                .map(|s| s.trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let mut view = View {
        from,
        subject: msg.subject().unwrap_or("").to_string(),
        html: Vec::new(),
        plain: Vec::new(),
    };
    let mut nested = Vec::new();
    for part in &msg.parts {
        match &part.body {
            PartType::Text(t) => view.plain.push(t.as_ref()),
            PartType::Html(h) => view.html.push(h.as_ref()),
            PartType::Message(m) if depth < MAX_NESTING => nested.push(m),
            _ => {}
        }
    }
    out.push(view);
    for m in nested {
        collect(m, depth + 1, out);
    }
}

/// What a sender address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    AliExpress,
    LookAlike,
    Carrier,
    Other,
}

fn domain_in(domain: &str, table: &[&str]) -> bool {
    table.iter().any(|d| {
        domain
            .strip_suffix(d)
            .is_some_and(|p| p.is_empty() || p.ends_with('.'))
    })
}

fn classify_domain(domain: &str) -> Sender {
    let domain = domain.trim_end_matches('.');
    if domain_in(domain, lang::ALIEXPRESS_DOMAINS) {
        Sender::AliExpress
    } else if domain.contains("aliexpres") || domain.contains("ali-express") {
        Sender::LookAlike
    } else if domain_in(domain, lang::CARRIER_DOMAINS) {
        Sender::Carrier
    } else {
        Sender::Other
    }
}

/// Classifies one sender address. Apple Hide-My-Email rewrites senders to
/// `local_at_sub_domain_tld_<id>[_<id>]@privaterelay.appleid.com`; the ids
/// hold digits, which is what tells `..._aliexpress_com_0a1b2c` (genuine)
/// from `..._aliexpress_com_example_net_0a1b` (a look-alike domain).
fn classify_sender(addr: &str) -> Sender {
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return Sender::Other;
    };
    if domain == "privaterelay.appleid.com" {
        let Some((_, rest)) = local.split_once("_at_") else {
            return Sender::Other;
        };
        let segs: Vec<&str> = rest.split('_').collect();
        for k in 2..segs.len() {
            let (dom, ids) = segs.split_at(k);
            let ids_ok = ids.iter().all(|s| {
                !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_alphanumeric())
                    && s.bytes().any(|b| b.is_ascii_digit())
            });
            if !ids_ok {
                continue;
            }
            // The shortest domain whose tail is all ids is the sender's.
            return classify_domain(&dom.join("."));
        }
        return if rest.contains("aliexpres") {
            Sender::LookAlike
        } else {
            Sender::Other
        };
    }
    classify_domain(domain)
}

fn strongest(addrs: &[String]) -> Sender {
    let classes: Vec<Sender> = addrs.iter().map(|a| classify_sender(a)).collect();
    for want in [Sender::LookAlike, Sender::AliExpress, Sender::Carrier] {
        if classes.contains(&want) {
            return want;
        }
    }
    Sender::Other
}

/// The original sender of a mailing-list post whose `From` the list
/// rewrote (DMARC "From munging": `'AliExpress' via Family <list@…>`).
/// Google Groups and Mailman keep the original in `X-Original-From` and
/// `Reply-To`. Only trusted in a list post (`List-Id`) whose rewritten
/// display name says "via", so a plain `Reply-To` never makes an email
/// AliExpress on its own (SPEC §3:
/// AliExpress "also behind relays"; a list is one).
fn list_original_senders(msg: &Message<'_>) -> Vec<String> {
    let via = msg.from().is_some_and(|a| {
        a.iter().any(|x| {
            x.name
                .as_deref()
                .is_some_and(|n| n.to_lowercase().contains(" via "))
        })
    });
    // Lists always say they are lists (RFC 2919 `List-Id`, RFC 2369
    // `List-Post`); a "via" display name alone is just a name.
    let is_list = msg.header_raw("List-Id").is_some() || msg.header_raw("List-Post").is_some();
    if !via || !is_list {
        return Vec::new();
    }
    let mut out: Vec<String> = msg
        .reply_to()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address.as_deref())
                .map(|s| s.trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    if let Some(raw) = msg.header_raw("X-Original-From") {
        let raw = raw.to_ascii_lowercase();
        out.extend(EMAIL.find_iter(&raw).map(|m| m.as_str().to_string()));
    }
    out
}

fn mentions_aliexpress(s: &str) -> bool {
    lang::ALIEXPRESS_NAMES.iter().any(|n| s.contains(n))
}

/// Strips forward/reply prefixes (`Fwd:`, `WG:`, `TR:`, `Пересл:` …).
fn strip_forward_prefixes(subject: &str) -> &str {
    let mut s = subject.trim();
    for _ in 0..8 {
        let Some((pos, c)) = s
            .char_indices()
            .take(24)
            .find(|&(_, c)| c == ':' || c == '：')
        else {
            break;
        };
        let prefix = s.get(..pos).unwrap_or("").trim().trim_matches(['[', ']']);
        let prefix = prefix.to_lowercase();
        if lang::FORWARD_PREFIXES.contains(&prefix.as_str()) {
            s = s.get(pos + c.len_utf8()..).unwrap_or("").trim();
        } else {
            break;
        }
    }
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LabelKind {
    Tracking,
    OldTracking,
    Order,
    Package,
    ProtectionEnd,
    Eta,
}

struct Table<T> {
    ac: AhoCorasick,
    items: Vec<(T, &'static str)>,
}

impl<T: Copy> Table<T> {
    /// Table words in `hay` that start a word: (kind, phrase, where the
    /// word starts, where the whole word ends).
    fn word_hits<'h>(
        &'h self,
        hay: &'h str,
    ) -> impl Iterator<Item = (T, &'static str, usize, usize)> + 'h {
        self.ac.find_iter(hay).filter_map(move |m| {
            let &(kind, phrase) = self.items.get(m.pattern().as_usize())?;
            text::at_word_start(hay, m.start(), phrase).then(|| {
                (
                    kind,
                    phrase,
                    m.start(),
                    text::extend_word(hay, m.end(), phrase),
                )
            })
        })
    }
}

fn build_table<T: Copy>(groups: &[(T, &[&'static str])]) -> Table<T> {
    let mut seen = HashSet::new();
    let mut items = Vec::new();
    for &(kind, words) in groups {
        for &w in words {
            if seen.insert(w) {
                items.push((kind, w));
            }
        }
    }
    // A contiguous NFA, not a DFA: over ~350 labels in 18 scripts the DFA
    // took 4.0 MB (states × byte classes) and stayed resident in the
    // daemon after the first email; the NFA takes 0.13 MB and is as fast
    // here (README, Performance).
    let ac = AhoCorasick::builder()
        .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
        .match_kind(MatchKind::LeftmostLongest)
        .build(items.iter().map(|(_, w)| *w))
        .expect("static keyword table builds");
    Table { ac, items }
}

static LABELS: LazyLock<Table<LabelKind>> = LazyLock::new(|| {
    build_table(&[
        (LabelKind::OldTracking, lang::OLD_TRACKING_LABELS),
        (LabelKind::Tracking, lang::TRACKING_LABELS),
        (LabelKind::Order, lang::ORDER_WORDS),
        (LabelKind::Package, lang::PACKAGE_WORDS),
        (LabelKind::ProtectionEnd, lang::PROTECTION_END_LABELS),
        (LabelKind::Eta, lang::ETA_LABELS),
    ])
});

/// The status phrases of every language in one automaton. Korean writes
/// the same phrase with or without its spaces ("배송 완료", "배송완료"), so
/// each Hangul phrase also stands without them; `of` maps every pattern
/// back to its row of [`lang::STATUSES`].
pub(super) struct StatusTable {
    ac: AhoCorasick,
    of: Vec<u16>,
}

impl StatusTable {
    /// Status phrases in `hay` that start a word: (row, start, end).
    pub(super) fn hits<'h>(
        &'h self,
        hay: &'h str,
    ) -> impl Iterator<Item = (&'static lang::Status, usize, usize)> + 'h {
        self.ac.find_iter(hay).filter_map(move |m| {
            let i = usize::from(*self.of.get(m.pattern().as_usize())?);
            let st = lang::STATUSES.get(i)?;
            let phrase = hay.get(m.start()..m.end())?;
            text::at_word_start(hay, m.start(), phrase).then_some((st, m.start(), m.end()))
        })
    }
}

/// A Hangul phrase without the spaces between its Hangul words.
fn unspaced_hangul(phrase: &str) -> Option<String> {
    let hangul = |c: char| ('\u{AC00}'..='\u{D7A3}').contains(&c);
    let chars: Vec<char> = phrase.chars().collect();
    let mut out = String::with_capacity(phrase.len());
    let mut changed = false;
    for (i, &c) in chars.iter().enumerate() {
        let joins = c == ' '
            && i.checked_sub(1)
                .and_then(|p| chars.get(p))
                .is_some_and(|&p| hangul(p))
            && chars.get(i + 1).is_some_and(|&n| hangul(n));
        if joins {
            changed = true;
        } else {
            out.push(c);
        }
    }
    changed.then_some(out)
}

pub(super) static STATUS: LazyLock<StatusTable> = LazyLock::new(|| {
    let mut phrases: Vec<String> = Vec::new();
    let mut of: Vec<u16> = Vec::new();
    for (i, st) in lang::STATUSES.iter().enumerate() {
        let row = u16::try_from(i).expect("status table fits u16");
        phrases.push(st.phrase.to_string());
        of.push(row);
        if let Some(joined) = unspaced_hangul(st.phrase) {
            phrases.push(joined);
            of.push(row);
        }
    }
    let ac = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&phrases)
        .expect("static status table builds");
    StatusTable { ac, of }
});

static FWD_FROM: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(lang::FORWARD_FROM_LABELS)
        .expect("static table builds")
});

static FWD_SUBJECT: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(lang::FORWARD_SUBJECT_LABELS)
        .expect("static table builds")
});

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}").expect("static regex is valid")
});

fn alternation(words: &[&str]) -> String {
    let mut w: Vec<&str> = words.to_vec();
    w.sort_by_key(|s| std::cmp::Reverse(s.len()));
    w.iter()
        .map(|s| regex::escape(s))
        .collect::<Vec<_>>()
        .join("|")
}

/// "N days" in any language (the number of days of an extension).
static N_DAYS: LazyLock<Regex> = LazyLock::new(|| {
    let days = alternation(lang::DAY_WORDS);
    Regex::new(&format!(r"(?:^|[^\d])(\d{{1,3}})\s*(?:{days})")).expect("static regex is valid")
});

/// The days of a protection extension: an "N days" within a short distance
/// of an "extended" word ("extended … by 15 days", "um 15 Tage verlängert").
fn extension_days(body: &str) -> Option<u32> {
    EXTENDED_WORDS.find(body)?;
    N_DAYS.captures_iter(body).find_map(|c| {
        let m = c.get(1)?;
        let before_start = (m.start().saturating_sub(160)..=m.start())
            .find(|&i| body.is_char_boundary(i))
            .unwrap_or(m.start());
        let before = body.get(before_start..m.start()).unwrap_or("");
        let after = window(body, m.end(), 60);
        let near = EXTENDED_WORDS.find(before).is_some() || EXTENDED_WORDS.find(after).is_some();
        let days: u32 = m.as_str().parse().ok()?;
        (near && (1..=365).contains(&days)).then_some(days)
    })
}

/// "Extended" words; also a cheap gate: [`N_DAYS`] starts with a digit, so
/// it has no literal prefilter and would otherwise scan every body.
static EXTENDED_WORDS: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(lang::EXTENDED_WORDS).expect("static table builds"));

static CHANGED_FROM_TO: LazyLock<Regex> = LazyLock::new(|| {
    let from: Vec<&str> = lang::CHANGE_FROM_TO.iter().map(|p| p.0).collect();
    let to: Vec<&str> = lang::CHANGE_FROM_TO.iter().map(|p| p.1).collect();
    Regex::new(&format!(
        r"(?:^|[^\w])(?:{})\s+([a-z0-9]{{8,35}})\s*,?\s+(?:{})\s+([a-z0-9]{{8,35}})",
        alternation(&from),
        alternation(&to)
    ))
    .expect("static regex is valid")
});

/// Finds the original sender of an inline forward: a `From:`-style line in
/// the body carrying an address. Returns its class and the original subject
/// line when one follows.
fn inline_forward(body: &str) -> Option<(Sender, Option<&str>)> {
    for m in FWD_FROM.find_iter(body) {
        let phrase = lang::FORWARD_FROM_LABELS
            .get(m.pattern().as_usize())
            .copied()
            .unwrap_or("");
        if !text::at_word_start(body, m.start(), phrase) {
            continue;
        }
        let line = line_after(body, m.end(), 300);
        // Plain-text forwards wrap long headers: the address may open the
        // next line ("From: \"AliExpress Notifications\"\n<transaction@…>").
        let next = body
            .get(m.end() + line.len()..)
            .and_then(|r| r.strip_prefix('\n'))
            .map(|r| line_after(r, 0, 300))
            .filter(|l| l.trim_start().starts_with('<'));
        let Some(addr) = EMAIL
            .find(line)
            .or_else(|| next.and_then(|l| EMAIL.find(l)))
        else {
            continue;
        };
        let class = classify_sender(addr.as_str());
        if class == Sender::Other {
            continue;
        }
        let window = window(body, m.end(), 1500);
        let subject = FWD_SUBJECT
            .find(window)
            .map(|s| line_after(window, s.end(), 300).trim());
        return Some((class, subject));
    }
    None
}

/// The rest of the line from `from`, at most `max` bytes (on a char boundary).
fn line_after(s: &str, from: usize, max: usize) -> &str {
    let w = window(s, from, max);
    w.split('\n').next().unwrap_or("")
}

/// `s[from..from+max]`, shrunk to char boundaries; empty when out of range.
fn window(s: &str, from: usize, max: usize) -> &str {
    let mut end = from.saturating_add(max).min(s.len());
    while end > from && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(from..end).unwrap_or("")
}

/// Is `t` acceptable as a tracking number in a labelled (or link) position?
fn accept_labelled(t: &str) -> bool {
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
fn accept_subject_parcel(t: &str) -> bool {
    match numbers::classify(t) {
        Verdict::Invalid => false,
        Verdict::Known(_) => true,
        Verdict::Unknown => numbers::plausible_unknown(t),
    }
}

/// A token that stands where a number stands and is one, whatever its
/// format: 8 or more letters and digits, with digits.
fn looks_like_number(t: &str) -> bool {
    t.len() >= 8
        && t.bytes().all(|b| b.is_ascii_alphanumeric())
        && t.bytes().any(|b| b.is_ascii_digit())
}

fn is_order_id(t: &str) -> bool {
    (12..=20).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
}

/// Picks the tracking number after a label: the token itself, or the token
/// joined with the digit groups that follow it.
fn tracking_value(v: &text::Value<'_>, accept: fn(&str) -> bool) -> Option<String> {
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

fn order_value(v: &text::Value<'_>) -> Option<String> {
    let first = v.first();
    if is_order_id(first) {
        return Some(first.to_string());
    }
    if first.len() < 12 && first.bytes().all(|b| b.is_ascii_digit()) {
        return v.joined().into_iter().find(|j| is_order_id(j));
    }
    None
}

/// Everything found in one email, before assignment.
#[derive(Default)]
struct Found {
    /// (order id, body position if found in the body text).
    subject_orders: Vec<String>,
    label_orders: Vec<(String, usize)>,
    link_orders: Vec<String>,
    /// (tracking number, body position if any).
    tracks: Vec<(String, Option<usize>)>,
    replaced: Vec<String>,
    pairs: Vec<(String, String)>,
    protection_until: Option<NaiveDate>,
    eta: Option<(NaiveDate, NaiveDate)>,
    /// The subject names a parcel in its parcel position (`Package T: …`).
    subject_parcel: bool,
    /// The subject's parcel position holds a number that was not taken
    /// (its check digit fails): the subject is still about one parcel.
    subject_parcel_refused: bool,
    /// The body has a table header row of labels (order, tracking).
    header_row: bool,
}

fn scan_subject(subj: &str, found: &mut Found) {
    let table = &*LABELS;
    let mut has_order_word = false;
    let mut parcel_spans: Vec<(usize, usize)> = Vec::new();
    for (kind, _, _, end) in table.word_hits(subj) {
        match kind {
            LabelKind::Order => has_order_word = true,
            LabelKind::Package | LabelKind::Tracking => {
                if let Some(v) = text::value_after(subj, end) {
                    if let Some(t) = tracking_value(&v, accept_subject_parcel) {
                        parcel_spans.push((v.start, v.start + v.first().len()));
                        found.tracks.push((t, None));
                        found.subject_parcel = true;
                    } else if looks_like_number(v.first()) {
                        found.subject_parcel_refused = true;
                    }
                }
            }
            LabelKind::OldTracking => {
                if let Some(t) =
                    text::value_after(subj, end).and_then(|v| tracking_value(&v, accept_labelled))
                {
                    found.replaced.push(t);
                }
            }
            _ => {}
        }
    }
    for (pos, tok) in text::ascii_tokens(subj) {
        if parcel_spans.iter().any(|&(s, e)| pos >= s && pos < e) {
            continue;
        }
        if has_order_word && is_order_id(tok) {
            found.subject_orders.push(tok.to_string());
            continue;
        }
        let norm = tok.to_ascii_uppercase();
        if let Verdict::Known(f) = numbers::classify(&norm) {
            if f.strength == numbers::Strength::Free {
                found.tracks.push((norm, None));
            }
        }
    }
}

fn scan_body(body: &str, ref_date: Option<NaiveDate>, found: &mut Found) {
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
fn header_label_follows(body: &str, end: usize, want: impl Fn(LabelKind) -> bool) -> bool {
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

fn scan_links(raw: &str, found: &mut Found) {
    let flush = |orders: &mut Vec<String>, tracks: &mut Vec<String>, found: &mut Found| {
        for o in orders.iter() {
            for t in tracks.iter() {
                found.pairs.push((o.clone(), t.clone()));
            }
        }
        found.link_orders.append(orders);
        found.tracks.extend(tracks.drain(..).map(|t| (t, None)));
    };
    let mut current: Option<usize> = None;
    let mut orders = Vec::new();
    let mut tracks = Vec::new();
    for p in text::params(raw) {
        if current != Some(p.url_start) {
            flush(&mut orders, &mut tracks, found);
            current = Some(p.url_start);
        }
        for item in text::split_list(p.value) {
            if p.is_order {
                if is_order_id(item) {
                    orders.push(item.to_string());
                }
            } else {
                let t = numbers::normalise(item);
                if accept_labelled(&t) {
                    tracks.push(t);
                }
            }
        }
    }
    flush(&mut orders, &mut tracks, found);
}

/// What a whole table cell is, when it is only a label ("Order number",
/// "Tracking No.:"): a label word followed by nothing but punctuation and
/// fillers.
fn cell_label(cell: &str) -> Option<LabelKind> {
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
fn scan_header_tables(tables: Vec<Vec<Vec<String>>>, found: &mut Found) {
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
fn cell_order(cell: &str) -> Option<String> {
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
fn cell_tracks(cell: &str) -> Vec<String> {
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

/// Multi-order mails glue a running number in front of each order number
/// ("Bestellung 19999999999990001", "Bestellung 29999999999990002", see
/// fixtures real/126). When the label-found numbers of a list start with
/// 1, 2, 3 … and stripping that index yields a number the email also gives
/// elsewhere, strip it from all of them. Then drop any number that is just
/// a 1–2 digit prefix glued to another order number of the email.
fn fix_running_numbers(found: &mut Found) {
    let others: HashSet<String> = found
        .subject_orders
        .iter()
        .chain(&found.link_orders)
        .cloned()
        .collect();
    let mut seen = HashSet::new();
    let list: Vec<String> = found
        .label_orders
        .iter()
        .filter(|(id, _)| seen.insert(id.clone()))
        .map(|(id, _)| id.clone())
        .collect();
    let long: Vec<&String> = list.iter().filter(|id| id.len() >= 13).collect();
    if long.len() >= 2 {
        let stripped: Option<Vec<(String, String)>> = long
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let idx = (i + 1).to_string();
                id.strip_prefix(idx.as_str())
                    .filter(|rest| rest.len() >= 12)
                    .map(|rest| ((*id).clone(), rest.to_string()))
            })
            .collect();
        if let Some(stripped) = stripped {
            if stripped
                .iter()
                .any(|(_, s)| others.contains(s) || list.contains(s))
            {
                for (orig, new) in stripped {
                    for (id, _) in found.label_orders.iter_mut() {
                        if *id == orig {
                            id.clone_from(&new);
                        }
                    }
                }
            }
        }
    }
    let all: HashSet<String> = found
        .label_orders
        .iter()
        .map(|(id, _)| id.clone())
        .chain(others)
        .collect();
    let glued = |id: &str| {
        (1..=2).any(|k| {
            id.get(k..)
                .is_some_and(|rest| rest.len() >= 12 && all.contains(rest))
        })
    };
    found.label_orders.retain(|(id, _)| !glued(id));
}

fn dedup(v: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    v.into_iter().filter(|x| seen.insert(x.clone())).collect()
}

/// Byte spans of the order, package and tracking words of `hay` (over
/// their inflections): a status phrase inside one is part of that word, not
/// a status ("Отправление T" is "shipment T", not "отправлен" = shipped).
fn label_word_spans(hay: &str) -> Vec<(usize, usize)> {
    let table = &*LABELS;
    table
        .ac
        .find_iter(hay)
        .filter_map(|m| {
            let &(kind, phrase) = table.items.get(m.pattern().as_usize())?;
            let wordy = matches!(
                kind,
                LabelKind::Order | LabelKind::Package | LabelKind::Tracking
            );
            (wordy && text::at_word_start(hay, m.start(), phrase))
                .then(|| (m.start(), text::extend_word(hay, m.end(), phrase)))
        })
        .collect()
}

fn best_status(hay: &str, multiword_only: bool) -> Option<&'static lang::Status> {
    let spans = if multiword_only {
        Vec::new()
    } else {
        label_word_spans(hay)
    };
    let mut best: Option<(&'static lang::Status, usize)> = None;
    for (st, start, end) in STATUS.hits(hay) {
        if spans.iter().any(|&(s, e)| start >= s && end < e) {
            continue;
        }
        // Japanese and Chinese write phrases without spaces: in the body
        // those count too (a single Latin word there is noise: "shipped"
        // in a footer).
        let phrase_like = st.phrase.contains(' ')
            || (st.phrase.chars().next().is_some_and(text::is_unspaced)
                && st.phrase.chars().count() >= 3);
        if multiword_only && !phrase_like {
            continue;
        }
        if best.is_none_or(|(_, len)| end - start > len) {
            best = Some((st, end - start));
        }
    }
    best.map(|(st, _)| st)
}

fn assign(found: &Found, orders: &[String], tracks: &[String], body: &str) -> Vec<OrderRef> {
    if orders.is_empty() {
        if tracks.is_empty() {
            return Vec::new();
        }
        return vec![OrderRef {
            order_id: None,
            tracking_numbers: tracks.to_vec(),
            ..OrderRef::default()
        }];
    }
    let mut out: Vec<OrderRef> = orders
        .iter()
        .map(|o| OrderRef {
            order_id: Some(o.clone()),
            ..OrderRef::default()
        })
        .collect();
    let paired: HashSet<&str> = found
        .pairs
        .iter()
        .filter(|(o, t)| orders.contains(o) && tracks.contains(t))
        .map(|(_, t)| t.as_str())
        .collect();
    let unpaired: Vec<&String> = tracks
        .iter()
        .filter(|t| !paired.contains(t.as_str()))
        .collect();
    // Order mentions with body positions, for table layouts.
    let mentions: Vec<(&str, usize)> = found
        .label_orders
        .iter()
        .filter(|(id, _)| orders.contains(id))
        .map(|(id, p)| (id.as_str(), *p))
        .collect();
    let distinct_mentioned: HashSet<&str> = mentions.iter().map(|(id, _)| *id).collect();
    let by_position = unpaired.len() >= 2 && distinct_mentioned.len() >= 2;
    for t in tracks {
        let mut targets: Vec<&str> = Vec::new();
        if paired.contains(t.as_str()) {
            targets.extend(
                found
                    .pairs
                    .iter()
                    .filter(|(_, pt)| pt == t)
                    .map(|(o, _)| o.as_str()),
            );
        } else if by_position {
            // A parcel shared by several orders is listed once per order
            // (one table row each): every position the number stands at
            // names the order mentioned nearest before it.
            let near: Vec<&str> = found
                .tracks
                .iter()
                .filter(|(x, _)| x == t)
                .filter_map(|(_, p)| *p)
                .filter_map(|p| {
                    mentions
                        .iter()
                        .filter(|(_, mp)| *mp <= p)
                        .max_by_key(|(_, mp)| *mp)
                        .or_else(|| {
                            mentions
                                .iter()
                                .filter(|(_, mp)| *mp > p)
                                .min_by_key(|(_, mp)| *mp)
                        })
                        .map(|(id, _)| *id)
                })
                .collect();
            if near.is_empty() {
                targets.extend(orders.iter().map(String::as_str));
            } else {
                targets.extend(near);
            }
        } else if let Some(own) = row_owners(found, &mentions, t, body) {
            targets.extend(own);
        } else {
            targets.extend(orders.iter().map(String::as_str));
        }
        for o in out.iter_mut() {
            if o.order_id
                .as_deref()
                .is_some_and(|id| targets.contains(&id))
                && !o.tracking_numbers.contains(t)
            {
                o.tracking_numbers.push(t.clone());
            }
        }
    }
    out
}

/// A label row of stacked order/parcel rows ("Order number N1 / Status …",
/// "Order number N2 / Tracking number T"): the one parcel number stands at
/// most a few lines below exactly one order's label, with no other order
/// between, so it is that order's, not every order's. `None` when any of
/// its positions is not like that (a number given once for a combined
/// delivery below all the orders' blocks is theirs together).
fn row_owners<'f>(
    found: &'f Found,
    mentions: &[(&'f str, usize)],
    t: &str,
    body: &str,
) -> Option<Vec<&'f str>> {
    /// How many lines a row's order label may stand above its parcel
    /// number: the label, the order number (same or next line), one more
    /// row of the same order ("Status: Shipped") or the parcel's label.
    const ROW_LINES: usize = 3;
    let distinct: HashSet<&str> = mentions.iter().map(|(id, _)| *id).collect();
    if distinct.len() < 2 {
        return None;
    }
    let mut owners = Vec::new();
    for p in found.tracks.iter().filter(|(x, _)| x == t).map(|(_, p)| *p) {
        let p = p?;
        let mp = mentions
            .iter()
            .map(|(_, mp)| *mp)
            .filter(|mp| *mp <= p)
            .max()?;
        let mut at: Vec<&str> = mentions
            .iter()
            .filter(|(_, m)| *m == mp)
            .map(|(id, _)| *id)
            .collect();
        at.dedup();
        let between = body.get(mp..p)?;
        let lines = between.split('\n').filter(|l| !l.trim().is_empty()).count();
        if at.len() != 1 || lines > ROW_LINES {
            return None;
        }
        owners.extend(at);
    }
    (!owners.is_empty()).then_some(owners)
}

/// Classifies and extracts one raw email.
pub fn extract(raw: &[u8]) -> Result<Extraction, ExtractError> {
    let msg = parse_message(raw)?;
    let mut views = Vec::new();
    collect(&msg, 0, &mut views);

    let mut ex = header_fields(&msg);
    let Some(top) = views.first() else {
        return Ok(ex);
    };
    let flat = flatten_bodies(&views);
    let body = text::fold_lower(&flat);
    let Some(origin) = classify_origin(&msg, &views, top, &body) else {
        return Ok(ex);
    };
    ex.is_aliexpress = true;
    let subj = origin.subject.to_lowercase();

    let ref_date = ex.date.map(|d| d.date_naive());
    let mut found = scan_all(&views, &subj, &body, ref_date);
    let (status, from_subject) = apply_status(&mut ex, &subj, &body, &mut found);
    let (orders, tracks, replaced) = select_numbers(&mut found);
    ex.orders = assign(&found, &orders, &tracks, &body);
    cap_orders(&mut ex);
    items::fill(&flat, &body, &mut ex.orders);
    ex.replaced_tracking_numbers = replaced;
    settle_kind(
        &mut ex,
        Evidence {
            status: status.is_some(),
            subject_parcel: found.subject_parcel,
            subject_event: from_subject && found.subject_parcel_refused,
            from_carrier: origin.from_carrier,
            tracks: !tracks.is_empty(),
        },
    );
    Ok(ex)
}

/// The most MIME parts one email may have. AliExpress emails have fewer
/// than 20; a million empty parts in 7 MB cost mail-parser 200 MB.
pub const MAX_MIME_PARTS: usize = 1_000;

/// The most `message/*` parts (attached emails) one email may have.
/// mail-parser parses and drops an attached message recursively, so
/// 80,000 nested `message/rfc822` parts overflow any thread's stack;
/// a forward of a forward of a forward needs 3.
pub const MAX_ATTACHED_MESSAGES: usize = 32;

/// The most orders taken from one email. A real multi-order confirmation
/// lists a handful; one forged email named 256.
pub const MAX_ORDERS_PER_EMAIL: usize = 20;

/// A cheap, linear pre-scan of the raw bytes, before mail-parser builds
/// (and later drops) a tree: counts `Content-Type` header lines (folded
/// values included), the `message/*` ones among them and boundary-like
/// `--` lines, and rejects what exceeds [`MAX_MIME_PARTS`] or
/// [`MAX_ATTACHED_MESSAGES`]. Over-counting (a body line that looks like
/// a header) can only reject an email far past any real one.
fn check_mime_bounds(raw: &[u8]) -> Result<(), ExtractError> {
    let mut content_types = 0usize;
    let mut messages = 0usize;
    let mut dash_lines = 0usize;
    let mut lines = raw.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        if line.starts_with(b"--") {
            dash_lines += 1;
            continue;
        }
        let Some((name, rest)) = line.split_at_checked(13) else {
            continue;
        };
        if !name.eq_ignore_ascii_case(b"content-type:") {
            continue;
        }
        content_types += 1;
        // The value, with its folded continuation lines (RFC 5322 §2.2.3).
        let mut value: Vec<u8> = rest.to_ascii_lowercase();
        while let Some(next) = lines.peek() {
            if !next.first().is_some_and(|b| *b == b' ' || *b == b'\t') || value.len() > 1024 {
                break;
            }
            value.extend(next.iter().map(u8::to_ascii_lowercase));
            lines.next();
        }
        let v = String::from_utf8_lossy(&value);
        if v.trim_start().starts_with("message/") {
            messages += 1;
        }
    }
    if messages > MAX_ATTACHED_MESSAGES {
        return Err(ExtractError::Malformed(format!(
            "more than {MAX_ATTACHED_MESSAGES} attached messages (message/rfc822 parts)"
        )));
    }
    if content_types > MAX_MIME_PARTS || dash_lines > 2 * MAX_MIME_PARTS {
        return Err(ExtractError::Malformed(format!(
            "more than {MAX_MIME_PARTS} MIME parts"
        )));
    }
    Ok(())
}

/// Keeps the first [`MAX_ORDERS_PER_EMAIL`] orders and logs when it drops
/// some.
fn cap_orders(ex: &mut Extraction) {
    if ex.orders.len() > MAX_ORDERS_PER_EMAIL {
        tracing::warn!(
            message_id = ex.message_id.as_deref().unwrap_or("-"),
            orders = ex.orders.len(),
            kept = MAX_ORDERS_PER_EMAIL,
            "an email names more orders than any real one; keeping the first"
        );
        ex.orders.truncate(MAX_ORDERS_PER_EMAIL);
    }
}

/// Parses the raw email; input that is blank, not a message, without any
/// header field or past the MIME bounds is an error.
fn parse_message(raw: &[u8]) -> Result<Message<'_>, ExtractError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ExtractError::Malformed("empty input".into()));
    }
    check_mime_bounds(raw)?;
    let msg = PARSER
        .parse(raw)
        .ok_or_else(|| ExtractError::Malformed("no message found".into()))?;
    if msg.headers().is_empty() {
        return Err(ExtractError::Malformed("no header fields".into()));
    }
    Ok(msg)
}

/// The extraction of an email that is not (yet) known to be AliExpress's:
/// only its Message-ID, Date and Subject.
fn header_fields(msg: &Message<'_>) -> Extraction {
    Extraction {
        message_id: msg
            .message_id()
            .map(|s| s.trim_matches(['<', '>']).to_string()),
        date: msg
            .date()
            .and_then(|d| DateTime::<Utc>::from_timestamp(d.to_timestamp(), 0)),
        subject: msg.subject().unwrap_or("").to_string(),
        ..Extraction::default()
    }
}

/// Body text of every view, flattened (case kept: item titles need it; the
/// scanners read it folded and lower-cased).
fn flatten_bodies(views: &[View<'_>]) -> String {
    let mut flat = String::new();
    for v in views {
        if v.html.is_empty() {
            for p in &v.plain {
                flat.push_str(p);
                flat.push_str("\n\n");
            }
        } else {
            for h in &v.html {
                text::html_to_text(h, &mut flat);
                flat.push_str("\n\n");
            }
        }
    }
    flat
}

/// Where an AliExpress email comes from, as far as reading it goes.
struct Origin {
    /// The subject to read (the forwarded email's, for a forward), folded
    /// and without forward prefixes.
    subject: String,
    /// The email comes from a carrier, directly or forwarded.
    from_carrier: bool,
}

/// Checks the sender (of the email, of a list post's original, of an
/// attached or inline forward): `None` when the email is not AliExpress's.
fn classify_origin(
    msg: &Message<'_>,
    views: &[View<'_>],
    top: &View<'_>,
    body: &str,
) -> Option<Origin> {
    let mut subject = strip_forward_prefixes(&text::fold(&top.subject)).to_string();
    let mut sender = strongest(&top.from);
    if sender == Sender::Other {
        let original = strongest(&list_original_senders(msg));
        if original != Sender::Other {
            sender = original;
        }
    }
    // The email comes from a carrier (directly or forwarded): carriers hold
    // the parcel, so their events are later carrier steps (SPEC §3).
    let mut from_carrier = sender == Sender::Carrier;
    let is_ali = match sender {
        Sender::LookAlike => false,
        Sender::AliExpress => true,
        Sender::Carrier => {
            mentions_aliexpress(body) || mentions_aliexpress(&top.subject.to_lowercase())
        }
        Sender::Other => {
            let nested = views.iter().skip(1).find(|v| match strongest(&v.from) {
                Sender::AliExpress => true,
                Sender::Carrier => mentions_aliexpress(body),
                _ => false,
            });
            if let Some(v) = nested {
                subject = strip_forward_prefixes(&text::fold(&v.subject)).to_string();
                from_carrier = strongest(&v.from) == Sender::Carrier;
                true
            } else {
                match inline_forward(body) {
                    Some((Sender::AliExpress, subj)) => {
                        if let Some(s) = subj.filter(|s| !s.is_empty()) {
                            subject = strip_forward_prefixes(s).to_string();
                        }
                        true
                    }
                    Some((Sender::Carrier, _)) => {
                        from_carrier = true;
                        mentions_aliexpress(body)
                    }
                    _ => false,
                }
            }
        }
    };
    is_ali.then_some(Origin {
        subject,
        from_carrier,
    })
}

/// Scans the subject, the body text, the links of every view and, when the
/// body has a header row of labels, the HTML tables.
fn scan_all(views: &[View<'_>], subj: &str, body: &str, ref_date: Option<NaiveDate>) -> Found {
    let mut found = Found::default();
    scan_subject(subj, &mut found);
    scan_body(body, ref_date, &mut found);
    for v in views {
        for raw in v.html.iter().chain(&v.plain) {
            scan_links(raw, &mut found);
        }
        if found.header_row {
            for raw in &v.html {
                scan_header_tables(text::tables(raw), &mut found);
            }
            if v.html.is_empty() {
                for raw in &v.plain {
                    scan_header_tables(text::plain_tables(raw), &mut found);
                }
            }
        }
    }
    found
}

/// Sets the kind, parcel status and flags from the status phrase, and what
/// comes with them: replaced tracking numbers, a protection extension, the
/// protection date and the ETA. Returns the status phrase, if any, and
/// whether the subject said it.
fn apply_status(
    ex: &mut Extraction,
    subj: &str,
    body: &str,
    found: &mut Found,
) -> (Option<&'static lang::Status>, bool) {
    // Kind and flags: the subject first, else the body's opening lines.
    let from_subject = best_status(subj, false);
    let status = from_subject.or_else(|| best_status(window(body, 0, 1500), true));
    let mut changed = false;
    if let Some(st) = status {
        ex.kind = st.kind;
        ex.parcel_status = st.parcel;
        match st.flag {
            Flag::Completed => ex.order_completed = true,
            Flag::Dispute => ex.dispute_opened = true,
            Flag::TrackingChanged => changed = true,
            Flag::None => {}
        }
    }

    if changed {
        for c in CHANGED_FROM_TO.captures_iter(body) {
            let old = c.get(1).map(|m| numbers::normalise(m.as_str()));
            let new = c.get(2).map(|m| numbers::normalise(m.as_str()));
            if let (Some(old), Some(new)) = (old, new) {
                if accept_labelled(&old) && accept_labelled(&new) {
                    found.replaced.push(old);
                    found.tracks.push((new, None));
                }
            }
        }
    }
    // Only protection emails state extensions; elsewhere "extended by N
    // days" is about delivery times.
    if ex.kind == EmailKind::Protection {
        ex.protection_extended_days = extension_days(body);
    }
    ex.protection_until = found.protection_until;
    ex.eta = found.eta;
    (status, from_subject.is_some())
}

/// Bounds, fixes and deduplicates the numbers found: returns the orders, the
/// current tracking numbers and the replaced ones, no number in two lists.
fn select_numbers(found: &mut Found) -> (Vec<String>, Vec<String>, Vec<String>) {
    // Bound the work on hostile input: no real email names more than a few
    // dozen orders or parcels.
    found.label_orders.truncate(MAX_ITEMS);
    found.link_orders.truncate(MAX_ITEMS);
    found.subject_orders.truncate(MAX_ITEMS);
    found.pairs.truncate(MAX_ITEMS * 4);
    found.replaced.truncate(MAX_ITEMS);
    fix_running_numbers(found);
    let replaced = dedup(found.replaced.iter().cloned());
    let tracks: Vec<String> = dedup(
        found
            .tracks
            .iter()
            .map(|(t, _)| t.clone())
            .filter(|t| !replaced.contains(t)),
    )
    .into_iter()
    .take(MAX_ITEMS * 4)
    .collect();
    let orders: Vec<String> = dedup(
        found
            .subject_orders
            .iter()
            .cloned()
            .chain(found.label_orders.iter().map(|(id, _)| id.clone()))
            .chain(found.link_orders.iter().cloned())
            .filter(|o| !tracks.contains(o) && !replaced.contains(o)),
    );
    let orders: Vec<String> = orders.into_iter().take(MAX_ITEMS).collect();
    let tracks: Vec<String> = tracks
        .into_iter()
        .filter(|t| !orders.contains(t))
        .take(MAX_ITEMS)
        .collect();
    (orders, tracks, replaced)
}

/// What the kind is settled from, besides the status phrase's kind.
struct Evidence {
    /// A status phrase was found (subject or opening lines).
    status: bool,
    /// The subject names a parcel in its parcel position.
    subject_parcel: bool,
    /// The subject is an event by structure and vocabulary alone: a status
    /// phrase and a parcel position whose number was refused.
    subject_event: bool,
    /// The email comes from a carrier (directly or forwarded).
    from_carrier: bool,
    /// Some tracking number was taken.
    tracks: bool,
}

/// Settles the kind once the orders are assigned: without a status phrase,
/// from the parcels given; a carrier's `shipped` is `in_transit`; an email
/// without any order or parcel is `other`, unless its subject alone says
/// what happened to a parcel.
fn settle_kind(ex: &mut Extraction, ev: Evidence) {
    let Evidence {
        status: has_status,
        subject_parcel,
        subject_event,
        from_carrier,
        tracks: has_tracks,
    } = ev;
    if !has_status {
        // No known status phrase: a parcel subject (`Package T: …`) is a
        // carrier step; a tracking number given elsewhere means shipped.
        (ex.kind, ex.parcel_status) = if subject_parcel || (from_carrier && has_tracks) {
            (EmailKind::InTransit, Some(ParcelStatus::InTransit))
        } else if has_tracks {
            (EmailKind::Shipped, Some(ParcelStatus::InfoReceived))
        } else {
            (EmailKind::Other, None)
        };
    }
    if from_carrier && ex.kind == EmailKind::Shipped {
        // A carrier holding the parcel ("your parcel is on its way") is a
        // later carrier step, not the seller's shipping (SPEC §3).
        ex.kind = EmailKind::InTransit;
        if ex.parcel_status == Some(ParcelStatus::InfoReceived) {
            ex.parcel_status = Some(ParcelStatus::InTransit);
        }
    }
    if ex.orders.is_empty() && !subject_event {
        // Status words without any order or parcel are marketing ("deals
        // delivered to you"), not an event (SPEC §3: marketing is `other`).
        // A subject shaped `Package T: <status>` is an event even when T
        // fails its check digit and is not taken (SPEC §3: "must pass
        // it"): the number is left out, the kind stays the subject's, and
        // with no order nothing in the store moves.
        ex.kind = EmailKind::Other;
        ex.parcel_status = None;
        ex.order_completed = false;
        ex.dispute_opened = false;
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hangul_status_phrases_match_with_and_without_spaces() {
        assert_eq!(unspaced_hangul("배송 완료").as_deref(), Some("배송완료"));
        assert_eq!(unspaced_hangul("in transit"), None);
        for subj in ["주문 1: 배송 완료", "주문 1: 배송완료"] {
            let st = best_status(subj, false).expect(subj);
            assert_eq!(st.kind, EmailKind::Delivered, "{subj}");
        }
    }

    #[test]
    fn parcel_subject_with_failed_check_digit_keeps_its_kind_not_its_number() {
        // RB123456785CN passes the S10 check; …786CN does not.
        let raw = b"From: AliExpress <transaction@notice.aliexpress.com>\r\n\
Subject: Package RB123456786CN: arrived in your country\r\n\
Content-Type: text/plain\r\n\r\nYour package is in your country.\r\n";
        let ex = extract(raw).unwrap();
        assert!(ex.orders.is_empty());
        assert_eq!(ex.kind, EmailKind::InTransit);
        // Without the parcel position, status words alone stay marketing.
        let raw = b"From: AliExpress <promotion@aliexpress.com>\r\n\
Subject: Deals delivered to your country\r\n\
Content-Type: text/plain\r\n\r\nShop now.\r\n";
        assert_eq!(extract(raw).unwrap().kind, EmailKind::Other);
    }

    #[test]
    fn a_status_row_awaiting_shipment_is_not_the_emails_kind() {
        let raw = b"From: AliExpress <transaction@notice.aliexpress.com>\r\n\
Subject: Your 2 orders: shipping update\r\n\
Content-Type: text/plain\r\n\r\n\
Order number: 3012227505581126\r\nStatus: Awaiting shipment\r\n\r\n\
Order number: 8211588542083415\r\nTracking number: LP00921335197721\r\nStatus: Shipped\r\n";
        assert_eq!(extract(raw).unwrap().kind, EmailKind::Shipped);
    }

    #[test]
    fn senders() {
        assert_eq!(
            classify_sender("transaction@notice.aliexpress.com"),
            Sender::AliExpress
        );
        assert_eq!(
            classify_sender("promotion@aliexpress.com"),
            Sender::AliExpress
        );
        assert_eq!(
            classify_sender(
                "transaction_at_notice_aliexpress_com_0a1b2c3d4e_0a1b2c3d@privaterelay.appleid.com"
            ),
            Sender::AliExpress
        );
        assert_eq!(
            classify_sender(
                "transaction_at_aliexpress_com_example_net_0a1b2c@privaterelay.appleid.com"
            ),
            Sender::LookAlike
        );
        assert_eq!(
            classify_sender("x@aliexpress.com.example.net"),
            Sender::LookAlike
        );
        assert_eq!(
            classify_sender("x@aliexpress-support.xyz"),
            Sender::LookAlike
        );
        assert_eq!(
            classify_sender("x@notice-aliexpress.com"),
            Sender::LookAlike
        );
        assert_eq!(classify_sender("no-reply@cainiao.com"), Sender::Carrier);
        assert_eq!(classify_sender("orders@order.temu.com"), Sender::Other);
        assert_eq!(classify_sender("garbage"), Sender::Other);
    }

    #[test]
    fn forward_prefixes() {
        assert_eq!(strip_forward_prefixes("Fwd: WG: Order 1: x"), "Order 1: x");
        assert_eq!(strip_forward_prefixes("Пересл: Заказ 1"), "Заказ 1");
        assert_eq!(
            strip_forward_prefixes("Order 8211968327931234: order shipped"),
            "Order 8211968327931234: order shipped"
        );
    }

    fn spec(raw: &str) -> serde_json::Value {
        let mut v = extract(raw.as_bytes())
            .map(|e| e.to_spec_json("x"))
            .unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("file");
        }
        v
    }

    #[test]
    fn french_outlook_inline_forward_plain_text() {
        let raw = "From: Camille <camille@example.fr>\nSubject: TR: Commande 8049982045479811 : commande exp\u{e9}di\u{e9}e\n\
                   Content-Type: text/plain; charset=utf-8\n\nRegarde.\n\n\
                   De : AliExpress <transaction@notice.aliexpress.com>\n\
                   Objet : Commande 8049982045479811 : commande exp\u{e9}di\u{e9}e\n\n\
                   Num\u{e9}ro de suivi : RS339620215NL\n";
        assert_eq!(
            spec(raw),
            serde_json::json!({"is_aliexpress": true, "kind": "shipped",
                "orders": [{"order_id": "8049982045479811", "tracking_numbers": ["RS339620215NL"]}]})
        );
    }

    #[test]
    fn numbers_split_by_wbr_zero_width_and_inline_tags() {
        let raw = "From: AliExpress <transaction@notice.aliexpress.com>\nSubject: Order #8211968327931235 shipped\n\
                   Content-Type: text/html; charset=utf-8\n\n\
                   <p>Tracking numbers: LP0052742<wbr>35&#8203;24449, <b>RB4267</b>74729SG</p>\
                   <p>Item no. 1005005834912540 \u{b7} Call (+1) 555 010 0000</p>";
        assert_eq!(
            spec(raw),
            serde_json::json!({"is_aliexpress": true, "kind": "shipped",
                "orders": [{"order_id": "8211968327931235",
                            "tracking_numbers": ["LP00527423524449", "RB426774729SG"]}]})
        );
    }

    #[test]
    fn chinese_labels() {
        let raw = "From: AliExpress <transaction@notice.aliexpress.com>\nSubject: \u{8ba2}\u{5355}\u{5df2}\u{53d1}\u{8d27}\n\
                   Content-Type: text/plain; charset=utf-8\n\n\
                   \u{8ba2}\u{5355}\u{53f7}\u{ff1a}8211968327931236\n\u{8fd0}\u{5355}\u{53f7}\u{ff1a}LP00527423524449\n";
        let v = spec(raw);
        assert_eq!(v["orders"][0]["order_id"], "8211968327931236");
        assert_eq!(v["orders"][0]["tracking_numbers"][0], "LP00527423524449");
    }

    fn html_mail(subject: &str, body: &str) -> String {
        format!(
            "From: AliExpress <transaction@notice.aliexpress.com>\nSubject: {subject}\n\
             Content-Type: text/html; charset=utf-8\n\n<html><body>{body}</body></html>\n"
        )
    }

    fn pairs(v: &serde_json::Value) -> Vec<(String, Vec<String>)> {
        v["orders"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                let t = o["tracking_numbers"].as_array().into_iter().flatten();
                (
                    o["order_id"].as_str().unwrap_or("-").to_string(),
                    t.filter_map(|x| x.as_str().map(str::to_string)).collect(),
                )
            })
            .collect()
    }

    fn p(o: &str, t: &[&str]) -> (String, Vec<String>) {
        (o.to_string(), t.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn table_rows_pair_each_order_with_its_own_parcels_across_a_carrier_column() {
        let raw = html_mail(
            "Your 2 orders have been shipped",
            "<table><tr><th>Order</th><th>Carrier</th><th>Tracking number</th></tr>\
             <tr><td>3012227505580718</td><td>Cainiao</td><td>LP00921335197205<br>RB084844600SG</td></tr>\
             <tr><td>8211588542083182</td><td>PostNL</td><td>RS339620215NL</td></tr></table>",
        );
        assert_eq!(
            pairs(&spec(&raw)),
            vec![
                p("3012227505580718", &["LP00921335197205", "RB084844600SG"]),
                p("8211588542083182", &["RS339620215NL"])
            ]
        );
    }

    #[test]
    fn table_rows_pair_through_nested_cells_and_grouped_digits() {
        let raw = html_mail(
            "Your 2 orders have been shipped",
            "<table><tr><th>Order No.</th><th>Tracking No.</th></tr>\
             <tr><td><table><tr><td>3012 2275 0558 0718</td></tr></table></td><td>LP00 9213 3519 7205</td></tr>\
             <tr><td><table><tr><td>8211 5885 4208 3182</td></tr></table></td><td>RB 0848 4460 0 SG</td></tr></table>",
        );
        assert_eq!(
            pairs(&spec(&raw)),
            vec![
                p("3012227505580718", &["LP00921335197205"]),
                p("8211588542083182", &["RB084844600SG"])
            ]
        );
    }

    #[test]
    fn table_rows_pair_with_the_parcel_column_first() {
        let raw = html_mail(
            "Your 2 orders have been shipped",
            "<table><tr><th>Tracking number</th><th>Order number</th></tr>\
             <tr><td>LP00921335197205</td><td>3012227505580718</td></tr>\
             <tr><td>RB084844600SG</td><td>8211588542083182</td></tr></table>",
        );
        assert_eq!(
            pairs(&spec(&raw)),
            vec![
                p("3012227505580718", &["LP00921335197205"]),
                p("8211588542083182", &["RB084844600SG"])
            ]
        );
    }

    #[test]
    fn a_parcel_in_the_second_orders_row_is_not_the_first_orders() {
        let raw = html_mail(
            "Your 2 orders: shipping update",
            "<table><tr><td>Order number</td><td>3012227505580718</td></tr>\
             <tr><td>Status</td><td>Awaiting shipment</td></tr></table>\
             <table><tr><td>Order number</td><td>8211588542083182</td></tr>\
             <tr><td>Tracking number</td><td>LP00921335197205</td></tr></table>",
        );
        assert_eq!(
            pairs(&spec(&raw)),
            vec![
                p("3012227505580718", &[]),
                p("8211588542083182", &["LP00921335197205"])
            ]
        );
    }

    #[test]
    fn plain_text_pipe_tables_pair_rows() {
        let raw = "From: AliExpress <transaction@notice.aliexpress.com>\nSubject: Your 2 orders have been shipped\n\
                   Content-Type: text/plain; charset=utf-8\n\n\
                   | Order number | Tracking number |\n|---|---|\n\
                   | 3012227505580718 | LP00921335197205 |\n| 8211588542083182 | RB084844600SG |\n";
        assert_eq!(
            pairs(&spec(raw)),
            vec![
                p("3012227505580718", &["LP00921335197205"]),
                p("8211588542083182", &["RB084844600SG"])
            ]
        );
    }

    #[test]
    fn items_skip_recommendations_totals_and_banners() {
        let raw = html_mail(
            "Order 8207731945520186: order confirmed",
            "<p>Your order 8207731945520186 has been confirmed.</p>\
             <p>Coupon: US $3.00 off orders over US $29.00</p>\
             <p>Example Official Store</p><p>Desk Lamp LED Flat ...</p><p>Warm white</p><p>US $6.48 x1</p>\
             <p>Subtotal US $6.48</p><p>Order total US $6.48</p>\
             <p>You may also like</p><p>Phone Holder ...</p><p>Black</p><p>US $3.12 x1</p>",
        );
        let v = spec(&raw);
        assert_eq!(
            v["orders"][0]["items"],
            serde_json::json!([{"title": "Desk Lamp LED Flat", "variant": "Warm white",
                "quantity": 1, "price": {"amount": "6.48", "currency": "USD"}}])
        );
        assert_eq!(v["orders"][0]["store"], "Example Official Store");
    }

    #[test]
    fn items_of_several_orders_go_to_the_order_named_below_their_block() {
        let raw = html_mail(
            "Bestellung 9999999999990007: Neuer Lieferstatus",
            "<p>Ihre kombinierte Lieferung (Bestellung 9999999999990007) hat ein Update.</p>\
             <p>A Store</p><p>Lampe ...</p><p>Variante A</p><p>\u{20ac} 1,99x1</p>\
             <p>Bestell-Nr.</p><p>9999999999990007</p>\
             <p>B Store</p><p>Kabel ...</p><p>x2</p><p>Sensor ...</p><p>x1</p>\
             <p>Bestell-Nr.</p><p>9999999999990008</p>",
        );
        let v = spec(&raw);
        let titles = |i: usize| -> Vec<String> {
            v["orders"][i]["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|it| it["title"].as_str().map(str::to_string))
                .collect()
        };
        assert_eq!(titles(0), vec!["Lampe"]);
        assert_eq!(titles(1), vec!["Kabel", "Sensor"]);
        assert_eq!(v["orders"][1]["store"], "B Store");
    }

    #[test]
    fn parcel_emails_naming_several_orders_only_in_links_give_no_items() {
        let raw = html_mail(
            "Package H9999207472066355373: in your country",
            "<p>Package details</p><p>Lampe ...</p><p>x1</p><p>Kabel ...</p><p>x1</p>\
             <a href=\"https://www.aliexpress.com/p/tracking/index.html?tradeOrderId=9999999999990013\">Track</a>\
             <a href=\"https://www.aliexpress.com/p/tracking/index.html?tradeOrderId=9999999999990014\">Track</a>",
        );
        let v = spec(&raw);
        assert_eq!(v["orders"].as_array().map(Vec::len), Some(2));
        assert!(v["orders"][0].get("items").is_none());
        assert!(v["orders"][1].get("items").is_none());
    }

    #[test]
    fn garbage_is_an_error_or_other() {
        assert!(extract(b"").is_err());
        assert!(extract(b"   \n").is_err());
        let e = extract(b"\xff\xfe\x00garbage").map(|e| e.is_aliexpress);
        assert!(matches!(e, Ok(false) | Err(_)));
    }
}
