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

/// EXAMINE (read-only) and the server's (UIDVALIDITY, UIDNEXT).
async fn open_mailbox(session: &mut ImapSession, mailbox: &str, what: &str) -> Result<(u32, u32)> {
    let mb = timed(
        &format!("EXAMINE {mailbox}"),
        COMMAND_TIMEOUT,
        session.examine(mailbox),
    )
    .await
    .with_context(|| format!("cannot open mailbox {what}"))?;
    if let (Some(v), Some(n)) = (mb.uid_validity, mb.uid_next) {
        return Ok((v, n));
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
        (Some(v), Some(n)) => Ok((v, n)),
        _ => bail!("mailbox {what}: the server reports no UIDVALIDITY/UIDNEXT"),
    }
}

/// The candidate UIDs to fetch under `plan`, sorted; `None` when the
/// mailbox is up to date.
async fn search_candidates(
    session: &mut ImapSession,
    t: &Target<'_>,
    plan: Plan,
    now: DateTime<Utc>,
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
    let found = timed("UID SEARCH", SEARCH_TIMEOUT, session.uid_search(&query))
        .await
        .with_context(|| format!("searching {}", t.what))?;
    // `n:*` also matches the highest UID when it is below n; and mail that
    // arrived after EXAMINE is left for the next pass (its UID >= uid_next).
    let mut uids: Vec<u32> = found
        .into_iter()
        .filter(|u| *u >= lowest && *u < t.uid_next)
        .collect();
    uids.sort_unstable();
    tracing::debug!(mailbox = %t.what, candidates = uids.len(), ?plan, "searched");
    Ok(uids)
}

/// `UID FETCH` of one batch: body and INTERNALDATE per UID.
async fn fetch_batch(
    session: &mut ImapSession,
    what: &str,
    set: &str,
) -> Result<BTreeMap<u32, (Vec<u8>, Option<DateTime<Utc>>)>> {
    let mut got = BTreeMap::new();
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
            Ok(Some(r)) => r.with_context(|| format!("fetching from {what}"))?,
        };
        let (Some(uid), Some(body)) = (item.uid, item.body()) else {
            continue; // an unsolicited FETCH (flags) for another message
        };
        let date = item.internal_date().map(|d| d.with_timezone(&Utc));
        got.insert(uid, (body.to_vec(), date));
    }
    Ok(got)
}

/// Hands one fetched batch to the sink, in UID order, and counts.
fn deliver_batch(
    sink: &dyn MailSink,
    t: &Target<'_>,
    batch: &[u32],
    mut got: BTreeMap<u32, (Vec<u8>, Option<DateTime<Utc>>)>,
    now: DateTime<Utc>,
    summary: &mut MailboxSync,
) -> Result<()> {
    for uid in batch {
        let Some((raw, date)) = got.remove(uid) else {
            tracing::debug!(mailbox = %t.what, uid, "candidate vanished before it was fetched");
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
    Ok(())
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
    let (uidvalidity, uid_next) = open_mailbox(session, mailbox, &what).await?;
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
    let uids = search_candidates(session, &t, plan, now).await?;
    summary.candidates = uids.len();

    for (set, batch) in uid_batches(&uids, FETCH_BATCH) {
        let got = fetch_batch(session, &t.what, &set).await?;
        deliver_batch(sink, &t, &batch, got, now, &mut summary)?;
        // Every candidate up to the batch's last UID is committed.
        if let Some(last) = batch.last() {
            let state = MailboxState {
                uidvalidity,
                uid_next: last.saturating_add(1),
            };
            sink.set_mailbox_state(&account.name, mailbox, state, now)?;
        }
    }
    let state = MailboxState {
        uidvalidity,
        uid_next,
    };
    sink.set_mailbox_state(&account.name, mailbox, state, now)?;
    summary.uid_next = uid_next;
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
