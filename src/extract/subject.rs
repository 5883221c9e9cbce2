//! Step 3 of extraction: the subject and the status phrase. The subject's
//! `<order word> N` and `<package word> T` positions, and the status
//! phrases of every language (one automaton over [`lang::STATUSES`]) that
//! set the kind and parcel status, from the subject first, else from the
//! body's opening lines; with them the replaced tracking numbers and a
//! protection extension.

#[allow(clippy::wildcard_imports)]
use super::*;

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
pub(super) fn unspaced_hangul(phrase: &str) -> Option<String> {
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

pub(super) fn alternation(words: &[&str]) -> String {
    let mut w: Vec<&str> = words.to_vec();
    w.sort_by_key(|s| std::cmp::Reverse(s.len()));
    w.iter()
        .map(|s| regex::escape(s))
        .collect::<Vec<_>>()
        .join("|")
}

/// "N days" in any language (the number of days of an extension).
pub(super) static N_DAYS: LazyLock<Regex> = LazyLock::new(|| {
    let days = alternation(lang::DAY_WORDS);
    Regex::new(&format!(r"(?:^|[^\d])(\d{{1,3}})\s*(?:{days})")).expect("static regex is valid")
});

/// The days of a protection extension: an "N days" within a short distance
/// of an "extended" word ("extended … by 15 days", "um 15 Tage verlängert").
pub(super) fn extension_days(body: &str) -> Option<u32> {
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
pub(super) static EXTENDED_WORDS: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(lang::EXTENDED_WORDS).expect("static table builds"));

pub(super) static CHANGED_FROM_TO: LazyLock<Regex> = LazyLock::new(|| {
    let from: Vec<&str> = lang::CHANGE_FROM_TO.iter().map(|p| p.0).collect();
    let to: Vec<&str> = lang::CHANGE_FROM_TO.iter().map(|p| p.1).collect();
    Regex::new(&format!(
        r"(?:^|[^\w])(?:{})\s+([a-z0-9]{{8,35}})\s*,?\s+(?:{})\s+([a-z0-9]{{8,35}})",
        alternation(&from),
        alternation(&to)
    ))
    .expect("static regex is valid")
});

pub(super) fn scan_subject(subj: &str, found: &mut Found) {
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

/// Byte spans of the order, package and tracking words of `hay` (over
/// their inflections): a status phrase inside one is part of that word, not
/// a status ("Отправление T" is "shipment T", not "отправлен" = shipped).
pub(super) fn label_word_spans(hay: &str) -> Vec<(usize, usize)> {
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

pub(super) fn best_status(hay: &str, multiword_only: bool) -> Option<&'static lang::Status> {
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

/// Sets the kind, parcel status and flags from the status phrase, and what
/// comes with them: replaced tracking numbers, a protection extension, the
/// protection date and the ETA. Returns the status phrase, if any, and
/// whether the subject said it.
pub(super) fn apply_status(
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
