//! One sync pass over one selected mailbox: UIDVALIDITY check, candidate
//! search on the server, UID-range fetch of the candidates' bodies, hand-off
//! to ingestion, and the `uid_next` bookkeeping.
//!
//! The mailbox is opened with EXAMINE (read-only, RFC 3501 §6.3.2) and bodies
//! are fetched with `BODY.PEEK[]`, so aliwatch can never set `\Seen` or
//! change anything else; it sends no STORE, COPY, MOVE, EXPUNGE or DELETE.
//!
//! Candidates are found by the server with an ASCII-only search (FROM,
//! SUBJECT and BODY terms such as "aliexpress" and "cainiao"). ASCII only
//! because Exchange and others answer a non-ASCII search with
//! `[BADCHARSET]`; BODY because forwarded AliExpress emails come from the
//! user, not from AliExpress. Only the candidates' bodies cross the wire.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::connect::{timed, ImapSession, COMMAND_TIMEOUT, SEARCH_TIMEOUT};
use super::MailSink;
use crate::config::ImapAccount;
use crate::model::{EmailOrigin, ImapLocation, IngestOutcome, MailboxState};

/// The search terms. Lower-case ASCII; IMAP SEARCH is case-insensitive.
pub const SEARCH_TERMS: &[&str] = &["aliexpress", "cainiao"];

/// At most this many UIDs per `UID FETCH` (Delta Chat fetches in batches
/// too: bounded memory, and progress is committed after each batch).
pub const FETCH_BATCH: usize = 50;

/// At most this many bytes (by RFC822.SIZE) per `UID FETCH` of bodies: a
/// batch of ten 200 MB emails once held 1.9 GB. A single email larger
/// than this (up to `imap.max_message_size`) is fetched alone.
pub const FETCH_BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// The size assumed for a candidate whose RFC822.SIZE the server did not
/// tell.
const UNKNOWN_SIZE: u64 = 256 * 1024;

/// UIDs per `UID FETCH (RFC822.SIZE)`: one short line each.
const SIZE_BATCH: usize = 1_000;

/// A mailbox with more messages than this is searched in ranges of this
/// many sequence numbers, so that no SEARCH answer is longer than about
/// 220 KB: async-imap re-parses a response from its start on every read,
/// so one answer of n UIDs costs O(n²) (200,000 UIDs 0.47 s, 800,000
/// 7.6 s, 20 million never finished).
pub const SEARCH_CHUNK: u32 = 20_000;

/// Consecutive search ranges overlap by this many messages: an EXPUNGE
/// by another client during the pass (allowed during UID commands, RFC
/// 3501 §7.4.1) shifts sequence numbers down, and the overlap keeps a
/// shifted message inside the next range.
pub const SEARCH_OVERLAP: u32 = 500;

/// Passes in which a candidate the server did not return (a FETCH that
/// leaves out a UID it was asked for) holds the mailbox position below it
/// and is asked for again, before it is given up with a warning.
pub const MAX_FETCH_MISSES: u32 = 5;

/// What one pass over one mailbox did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxSync {
    pub mailbox: String,
    pub uidvalidity: u32,
    /// The stored next UID after the pass.
    pub uid_next: u32,
    /// The backfill window was scanned (first sync or UIDVALIDITY changed).
    pub rescanned: bool,
    /// Candidate UIDs the server's search returned.
    pub candidates: usize,
    /// Emails whose body was fetched and handed to ingestion.
    pub fetched: usize,
    /// Bytes of message bodies fetched.
    pub bytes_fetched: u64,
    /// Ingestion outcomes.
    pub new_emails: usize,
    pub duplicates: usize,
    pub unparseable: usize,
    /// Candidates skipped because they are larger than
    /// `imap.max_message_size`.
    pub too_large: usize,
    /// Candidates the server left out of a FETCH in this pass.
    pub missing: usize,
    /// `UID SEARCH` commands sent.
    pub searches: usize,
}

/// The search key that matches likely AliExpress emails:
/// `OR FROM t1 OR SUBJECT t1 OR BODY t1 OR ...` in prefix form.
pub fn candidate_criteria(terms: &[&str]) -> String {
    let keys: Vec<String> = terms
        .iter()
        .flat_map(|t| {
            ["FROM", "SUBJECT", "BODY"]
                .into_iter()
                .map(move |k| format!("{k} {}", quote_ascii(t)))
        })
        .collect();
    let mut out = String::new();
    for (i, k) in keys.iter().enumerate() {
        if i + 1 < keys.len() {
            out.push_str("OR ");
        }
        out.push_str(k);
        out.push(' ');
    }
    format!("({})", out.trim_end())
}

fn quote_ascii(s: &str) -> String {
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\')
        .collect();
    format!("\"{clean}\"")
}

/// The date key for `SINCE` (RFC 3501 `date`: `1-Feb-2026`), `days` before
/// `now`.
pub fn since_date(now: DateTime<Utc>, days: u32) -> String {
    let d = now - chrono::Duration::days(i64::from(days));
    d.format("%-d-%b-%Y").to_string()
}

/// Sorted UIDs as compact UID sets (`3:7,9,12:13`) of at most `batch` UIDs
/// each. Always explicit: never `*`, which would match the last message
/// even when it is below the range (RFC 3501 §6.4.8).
pub fn uid_batches(uids: &[u32], batch: usize) -> Vec<(String, Vec<u32>)> {
    let mut out = Vec::new();
    for chunk in uids.chunks(batch.max(1)) {
        let mut set = String::new();
        let mut i = 0;
        while i < chunk.len() {
            let start = chunk[i];
            let mut end = start;
            while i + 1 < chunk.len() && chunk[i + 1] == end.saturating_add(1) {
                i += 1;
                end = chunk[i];
            }
            if !set.is_empty() {
                set.push(',');
            }
            if start == end {
                let _ = write!(set, "{start}");
            } else {
                let _ = write!(set, "{start}:{end}");
            }
            i += 1;
        }
        out.push((set, chunk.to_vec()));
    }
    out
}

/// Message sequence sets covering 1..=`exists` in [`SEARCH_CHUNK`]-sized
/// ranges overlapping by [`SEARCH_OVERLAP`]; the last one ends in `*` so
/// that it also covers mail that arrived meanwhile. In `UID SEARCH` a bare
/// sequence set selects by message number (RFC 3501 §6.4.4), which is dense
/// where UIDs may be sparse.
pub fn search_ranges(exists: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut lo: u32 = 1;
    loop {
        let hi = lo.saturating_add(SEARCH_CHUNK - 1);
        if hi >= exists {
            out.push(format!("{lo}:*"));
            return out;
        }
        out.push(format!("{lo}:{hi}"));
        lo = hi + 1 - SEARCH_OVERLAP;
    }
}

/// What to do given the stored state and the server's (UIDVALIDITY, UIDNEXT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// First sight, or UIDVALIDITY changed: search the backfill window.
    Backfill,
    /// Search UIDs from this one upwards.
    From(u32),
    /// Nothing new since the last pass.
    UpToDate,
}

/// Decides the plan (pure; Delta Chat's `select_with_uidvalidity` rules).
pub fn plan(stored: Option<MailboxState>, uidvalidity: u32, server_uid_next: u32) -> Plan {
    match stored {
        None => Plan::Backfill,
        Some(s) if s.uidvalidity != uidvalidity => Plan::Backfill,
        Some(s) if server_uid_next > s.uid_next => Plan::From(s.uid_next.max(1)),
        Some(_) => Plan::UpToDate,
    }
}

/// The mailbox being synced: names for messages and the server's numbers.
struct Target<'a> {
    account: &'a ImapAccount,
    mailbox: &'a str,
    /// `account/mailbox`, for messages.
    what: String,
    uidvalidity: u32,
    uid_next: u32,
}

/// EXAMINE (read-only) and the server's (UIDVALIDITY, UIDNEXT, EXISTS).
async fn open_mailbox(
    session: &mut ImapSession,
    mailbox: &str,
    what: &str,
) -> Result<(u32, u32, u32)> {
    let mb = timed(
        &format!("EXAMINE {mailbox}"),
        COMMAND_TIMEOUT,
        session.examine(mailbox),
    )
    .await
    .with_context(|| format!("cannot open mailbox {what}"))?;
    let exists = mb.exists;
    if let (Some(v), Some(n)) = (mb.uid_validity, mb.uid_next) {
        return Ok((v, n, exists));
    }
    // Some servers omit UIDNEXT from SELECT/EXAMINE; STATUS has it.
    let st = timed(
        &format!("STATUS {mailbox}"),
        COMMAND_TIMEOUT,
        session.status(mailbox, "(UIDNEXT UIDVALIDITY)"),
    )
    .await?;
    match (
        mb.uid_validity.or(st.uid_validity),
        st.uid_next.or(mb.uid_next),
    ) {
        (Some(v), Some(n)) => Ok((v, n, exists)),
        _ => bail!("mailbox {what}: the server reports no UIDVALIDITY/UIDNEXT"),
    }
}

/// The candidate UIDs to fetch under `plan`, sorted; `None` when the
/// mailbox is up to date.
async fn search_candidates(
    session: &mut ImapSession,
    t: &Target<'_>,
    plan: Plan,
    exists: u32,
    now: DateTime<Utc>,
    summary: &mut MailboxSync,
) -> Result<Vec<u32>> {
    let criteria = candidate_criteria(SEARCH_TERMS);
    let (query, lowest) = match plan {
        Plan::UpToDate => return Ok(Vec::new()),
        Plan::Backfill => (
            format!(
                "SINCE {} {criteria}",
                since_date(now, t.account.backfill_days)
            ),
            1,
        ),
        Plan::From(from) => (format!("UID {from}:* {criteria}"), from),
    };
    // At most how many messages the search can match.
    let span = exists.min(t.uid_next.saturating_sub(lowest));
    let queries: Vec<String> = if span <= SEARCH_CHUNK {
        vec![query]
    } else {
        search_ranges(exists)
            .into_iter()
            .map(|set| format!("{set} {query}"))
            .collect()
    };
    let mut found = std::collections::BTreeSet::new();
    for q in queries {
        summary.searches += 1;
        let part = timed("UID SEARCH", SEARCH_TIMEOUT, session.uid_search(&q))
            .await
            .with_context(|| format!("searching {}", t.what))?;
        found.extend(part);
    }
    // `n:*` also matches the highest UID when it is below n; and mail that
    // arrived after EXAMINE is left for the next pass (its UID >= uid_next).
    let uids: Vec<u32> = found
        .into_iter()
        .filter(|u| *u >= lowest && *u < t.uid_next)
        .collect();
    tracing::debug!(mailbox = %t.what, candidates = uids.len(), ?plan, "searched");
    Ok(uids)
}

/// `UID FETCH (UID RFC822.SIZE)` for `uids`: each candidate's size, so
/// that bodies are fetched in batches by bytes and oversized ones skipped.
async fn fetch_sizes(
    session: &mut ImapSession,
    what: &str,
    uids: &[u32],
) -> Result<BTreeMap<u32, u64>> {
    let mut sizes = BTreeMap::new();
    for (set, _) in uid_batches(uids, SIZE_BATCH) {
        let mut stream = timed(
            "UID FETCH",
            COMMAND_TIMEOUT,
            session.uid_fetch(&set, "(UID RFC822.SIZE)"),
        )
        .await
        .with_context(|| format!("fetching sizes from {what}"))?;
        loop {
            let item = match tokio::time::timeout(COMMAND_TIMEOUT, stream.next()).await {
                Err(_) => bail!(
                    "fetching sizes from {what}: no data from the server within {}s",
                    COMMAND_TIMEOUT.as_secs()
                ),
                Ok(None) => break,
                Ok(Some(r)) => r
                    .map_err(super::guard::server_error)
                    .with_context(|| format!("fetching sizes from {what}"))?,
            };
            if let (Some(uid), Some(size)) = (item.uid, item.size) {
                sizes.insert(uid, u64::from(size));
            }
        }
    }
    Ok(sizes)
}

/// Groups candidates into body fetches of at most [`FETCH_BATCH`] UIDs and
/// [`FETCH_BATCH_BYTES`] bytes (a larger single email goes alone).
pub fn byte_batches(cands: &[(u32, u64)]) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = Vec::new();
    let mut cur: Vec<u32> = Vec::new();
    let mut bytes = 0u64;
    for &(uid, size) in cands {
        if !cur.is_empty() && (cur.len() >= FETCH_BATCH || bytes + size > FETCH_BATCH_BYTES) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.push(uid);
        bytes += size;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `UID FETCH` of one batch: body and INTERNALDATE per UID. A server that
/// sends more than `budget` bytes of bodies (more than it announced) fails
/// the batch.
async fn fetch_batch(
    session: &mut ImapSession,
    what: &str,
    set: &str,
    budget: u64,
) -> Result<BTreeMap<u32, (Vec<u8>, Option<DateTime<Utc>>)>> {
    let mut got = BTreeMap::new();
    let mut total = 0u64;
    let mut stream = timed(
        "UID FETCH",
        COMMAND_TIMEOUT,
        session.uid_fetch(set, "(UID INTERNALDATE BODY.PEEK[])"),
    )
    .await
    .with_context(|| format!("fetching from {what}"))?;
    loop {
        let item = match tokio::time::timeout(COMMAND_TIMEOUT, stream.next()).await {
            Err(_) => bail!(
                "fetching from {what}: no data from the server within {}s",
                COMMAND_TIMEOUT.as_secs()
            ),
            Ok(None) => break,
            Ok(Some(r)) => r
                .map_err(super::guard::server_error)
                .with_context(|| format!("fetching from {what}"))?,
        };
        let (Some(uid), Some(body)) = (item.uid, item.body()) else {
            continue; // an unsolicited FETCH (flags) for another message
        };
        total += body.len() as u64;
        if total > budget {
            bail!("fetching from {what}: the server sent more than {budget} bytes for one batch (more than RFC822.SIZE announced)");
        }
        let date = item.internal_date().map(|d| d.with_timezone(&Utc));
        got.insert(uid, (body.to_vec(), date));
    }
    Ok(got)
}

/// Hands one fetched batch to the sink, in UID order, and counts. Returns
/// the UIDs of the batch the server did not return.
fn deliver_batch(
    sink: &dyn MailSink,
    t: &Target<'_>,
    batch: &[u32],
    mut got: BTreeMap<u32, (Vec<u8>, Option<DateTime<Utc>>)>,
    now: DateTime<Utc>,
    summary: &mut MailboxSync,
) -> Result<Vec<u32>> {
    let mut missing = Vec::new();
    for uid in batch {
        let Some((raw, date)) = got.remove(uid) else {
            missing.push(*uid);
            continue;
        };
        summary.fetched += 1;
        summary.bytes_fetched += raw.len() as u64;
        let origin = EmailOrigin {
            source: format!("imap:{}/{}", t.account.name, t.mailbox),
            imap: Some(ImapLocation {
                account: t.account.name.clone(),
                mailbox: t.mailbox.to_string(),
                uidvalidity: t.uidvalidity,
                uid: *uid,
            }),
            received_at: date.unwrap_or(now),
        };
        // The hand-off is synchronous: a cancellation can only happen at an
        // await, i.e. between two emails, never inside one.
        let outcome = sink
            .deliver(&raw, &origin, now)
            .with_context(|| format!("processing {} UID {uid}", t.what))?;
        match outcome {
            IngestOutcome::New { .. } => summary.new_emails += 1,
            IngestOutcome::Duplicate => summary.duplicates += 1,
            IngestOutcome::Unparseable(_) => summary.unparseable += 1,
        }
    }
    Ok(missing)
}

/// Syncs `mailbox` on `session`: EXAMINE, search, fetch, hand over. Returns
/// what it did; the position is committed after each fetched batch.
pub async fn sync_mailbox(
    session: &mut ImapSession,
    account: &ImapAccount,
    mailbox: &str,
    sink: &dyn MailSink,
    now: DateTime<Utc>,
) -> Result<MailboxSync> {
    let what = format!("{}/{}", account.name, mailbox);
    let (uidvalidity, uid_next, exists) = open_mailbox(session, mailbox, &what).await?;
    let t = Target {
        account,
        mailbox,
        what,
        uidvalidity,
        uid_next,
    };
    let stored = sink.mailbox_state(&account.name, mailbox)?;
    let mut summary = MailboxSync {
        mailbox: mailbox.to_string(),
        uidvalidity,
        uid_next: stored.map_or(1, |s| s.uid_next),
        ..MailboxSync::default()
    };
    if let Some(s) = stored {
        if s.uidvalidity == uidvalidity && uid_next < s.uid_next {
            tracing::warn!(mailbox = %t.what, stored = s.uid_next, server = uid_next, "UIDNEXT went backwards; following the server");
        }
    }
    let plan = plan(stored, uidvalidity, uid_next);
    if let (Plan::Backfill, Some(s)) = (plan, stored) {
        tracing::info!(mailbox = %t.what, old = s.uidvalidity, new = uidvalidity, "UIDVALIDITY changed; rescanning the backfill window");
    }
    summary.rescanned = plan == Plan::Backfill;
    let uids = search_candidates(session, &t, plan, exists, now, &mut summary).await?;
    summary.candidates = uids.len();

    // Sizes first: oversized candidates are skipped (their UID is passed
    // like any other), the rest fetched in batches by bytes.
    let sizes = if uids.is_empty() {
        BTreeMap::new()
    } else {
        fetch_sizes(session, &t.what, &uids).await?
    };
    let limit = account.max_message_size;
    let mut wanted = Vec::with_capacity(uids.len());
    for uid in &uids {
        match sizes.get(uid) {
            Some(&size) if size > limit => {
                summary.too_large += 1;
                tracing::warn!(mailbox = %t.what, uid, size, limit, "skipping a candidate email larger than imap.max_message_size");
            }
            Some(&size) => wanted.push((*uid, size)),
            None => wanted.push((*uid, UNKNOWN_SIZE)),
        }
    }
    let misses = sink.fetch_misses(&account.name, mailbox, uidvalidity)?;
    // The lowest UID that was asked for, not returned, and not yet given
    // up: the position stays below it so that the next pass asks again.
    let mut held: Option<u32> = None;
    let budget = FETCH_BATCH_BYTES.max(limit).saturating_add(limit);
    for batch in byte_batches(&wanted) {
        let Some((set, _)) = uid_batches(&batch, batch.len()).into_iter().next() else {
            continue;
        };
        let got = fetch_batch(session, &t.what, &set, budget).await?;
        let missing = deliver_batch(sink, &t, &batch, got, now, &mut summary)?;
        for uid in &batch {
            if misses.contains_key(uid) && !missing.contains(uid) {
                sink.set_fetch_misses(&account.name, mailbox, uidvalidity, *uid, 0)?;
            }
        }
        for uid in missing {
            summary.missing += 1;
            let passes = misses.get(&uid).copied().unwrap_or(0) + 1;
            if passes >= MAX_FETCH_MISSES {
                tracing::warn!(mailbox = %t.what, uid, passes, "the server did not return a candidate email it was asked for; giving up on it");
                sink.set_fetch_misses(&account.name, mailbox, uidvalidity, uid, 0)?;
            } else {
                tracing::info!(mailbox = %t.what, uid, passes, "the server did not return a candidate email; asking again in the next pass");
                sink.set_fetch_misses(&account.name, mailbox, uidvalidity, uid, passes)?;
                held = Some(held.map_or(uid, |h| h.min(uid)));
            }
        }
        // Every candidate up to the batch's last UID is committed, except
        // one held back.
        if let Some(last) = batch.last() {
            let state = MailboxState {
                uidvalidity,
                uid_next: held.unwrap_or(last.saturating_add(1)),
            };
            sink.set_mailbox_state(&account.name, mailbox, state, now)?;
        }
    }
    let state = MailboxState {
        uidvalidity,
        uid_next: held.unwrap_or(uid_next),
    };
    sink.set_mailbox_state(&account.name, mailbox, state, now)?;
    summary.uid_next = state.uid_next;
    if summary.fetched > 0 {
        tracing::info!(mailbox = %t.what, fetched = summary.fetched, new = summary.new_emails, bytes = summary.bytes_fetched, "fetched candidate emails");
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_is_a_prefix_or_chain_of_ascii_keys() {
        assert_eq!(
            candidate_criteria(&["a"]),
            "(OR FROM \"a\" OR SUBJECT \"a\" BODY \"a\")"
        );
        let c = candidate_criteria(&["aliexpress", "cainiao"]);
        assert_eq!(c.matches("OR ").count(), 5);
        assert!(c.is_ascii());
        assert_eq!(quote_ascii("ali\"ex\\préss"), "\"aliexprss\"");
    }

    #[test]
    fn since_uses_the_imap_date_format() {
        let now = DateTime::parse_from_rfc3339("2026-03-05T10:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(since_date(now, 0), "5-Mar-2026");
        assert_eq!(since_date(now, 90), "5-Dec-2025");
    }

    #[test]
    fn uid_sets_are_compact_and_bounded() {
        let cases: &[(&[u32], usize, &[&str])] = &[
            (&[], 50, &[]),
            (&[7], 50, &["7"]),
            (&[1, 2, 3, 5, 7, 8], 50, &["1:3,5,7:8"]),
            (&[1, 2, 3, 5, 7, 8], 2, &["1:2", "3,5", "7:8"]),
            (&[u32::MAX - 1, u32::MAX], 50, &["4294967294:4294967295"]),
        ];
        for (uids, batch, want) in cases {
            let got: Vec<String> = uid_batches(uids, *batch).into_iter().map(|b| b.0).collect();
            assert_eq!(got, *want, "{uids:?}");
        }
    }

    #[test]
    fn large_mailboxes_are_searched_in_overlapping_ranges() {
        assert_eq!(search_ranges(5), vec!["1:*"]);
        assert_eq!(search_ranges(SEARCH_CHUNK), vec!["1:*"]);
        let r = search_ranges(50_000);
        assert_eq!(r, vec!["1:20000", "19501:39500", "39001:*"]);
    }

    #[test]
    fn body_fetches_are_batched_by_bytes_and_count() {
        let mb = 1024 * 1024;
        let cands = [(1, 3 * mb), (2, 3 * mb), (3, 3 * mb), (4, 20 * mb), (5, 1)];
        assert_eq!(
            byte_batches(&cands),
            vec![vec![1, 2], vec![3], vec![4], vec![5]]
        );
        let small: Vec<(u32, u64)> = (1..=120).map(|u| (u, 1000)).collect();
        let b = byte_batches(&small);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![50, 50, 20]);
    }

    #[test]
    fn plan_follows_uidvalidity_and_uidnext() {
        let s = |v, n| {
            Some(MailboxState {
                uidvalidity: v,
                uid_next: n,
            })
        };
        let cases = [
            (None, 5, 10, Plan::Backfill),
            (s(4, 3), 5, 10, Plan::Backfill),
            (s(5, 3), 5, 10, Plan::From(3)),
            (s(5, 10), 5, 10, Plan::UpToDate),
            (s(5, 12), 5, 10, Plan::UpToDate),
            (s(5, 0), 5, 10, Plan::From(1)),
        ];
        for (stored, v, n, want) in cases {
            assert_eq!(plan(stored, v, n), want, "{stored:?} {v} {n}");
        }
    }
}
