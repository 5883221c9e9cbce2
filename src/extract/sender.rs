//! Step 2 of extraction: who sent the email. `*.aliexpress.com` (also
//! behind Apple Hide-My-Email relays and mailing lists that rewrite the
//! sender), a carrier writing about an AliExpress order, or a forward of
//! either (attached, or inline with the original `From:` line); look-alike
//! domains are never AliExpress. Also the subject to read: the forwarded
//! email's, without `Fwd:`/`WG:` prefixes.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What a sender address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sender {
    AliExpress,
    LookAlike,
    Carrier,
    Other,
}

pub(super) fn domain_in(domain: &str, table: &[&str]) -> bool {
    table.iter().any(|d| {
        domain
            .strip_suffix(d)
            .is_some_and(|p| p.is_empty() || p.ends_with('.'))
    })
}

pub(super) fn classify_domain(domain: &str) -> Sender {
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
pub(super) fn classify_sender(addr: &str) -> Sender {
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

pub(super) fn strongest(addrs: &[String]) -> Sender {
    let classes: Vec<Sender> = addrs.iter().map(|a| classify_sender(a)).collect();
    for want in [Sender::LookAlike, Sender::AliExpress, Sender::Carrier] {
        if classes.contains(&want) {
            return want;
        }
    }
    Sender::Other
}

/// The addresses of an address header, trimmed and lower-cased.
pub(super) fn addresses(header: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    header
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address.as_deref())
                .map(|s| s.trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

/// The original sender of a mailing-list post whose `From` the list
/// rewrote (DMARC "From munging": `'AliExpress' via Family <list@…>`).
/// Google Groups and Mailman keep the original in `X-Original-From` and
/// `Reply-To`. Only trusted in a list post (`List-Id`) whose rewritten
/// display name says "via", so a plain `Reply-To` never makes an email
/// AliExpress on its own (SPEC §3:
/// AliExpress "also behind relays"; a list is one).
pub(super) fn list_original_senders(msg: &Message<'_>) -> Vec<String> {
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
    let mut out: Vec<String> = addresses(msg.reply_to());
    if let Some(raw) = msg.header_raw("X-Original-From") {
        let raw = raw.to_ascii_lowercase();
        out.extend(EMAIL.find_iter(&raw).map(|m| m.as_str().to_string()));
    }
    out
}

pub(super) fn mentions_aliexpress(s: &str) -> bool {
    lang::ALIEXPRESS_NAMES.iter().any(|n| s.contains(n))
}

/// Strips forward/reply prefixes (`Fwd:`, `WG:`, `TR:`, `Пересл:` …).
pub(super) fn strip_forward_prefixes(subject: &str) -> &str {
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

pub(super) static FWD_FROM: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(lang::FORWARD_FROM_LABELS)
        .expect("static table builds")
});

pub(super) static FWD_SUBJECT: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(lang::FORWARD_SUBJECT_LABELS)
        .expect("static table builds")
});

pub(super) static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}").expect("static regex is valid")
});

/// Finds the original sender of an inline forward: a `From:`-style line in
/// the body carrying an address. Returns its class and the original subject
/// line when one follows.
pub(super) fn inline_forward(body: &str) -> Option<(Sender, Option<&str>)> {
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

/// Where an AliExpress email comes from, as far as reading it goes.
pub(super) struct Origin {
    /// The subject to read (the forwarded email's, for a forward), folded
    /// and without forward prefixes.
    pub(super) subject: String,
    /// The email comes from a carrier, directly or forwarded.
    pub(super) from_carrier: bool,
}

/// Checks the sender (of the email, of a list post's original, of an
/// attached or inline forward): `None` when the email is not AliExpress's.
pub(super) fn classify_origin(
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
