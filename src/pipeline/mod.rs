//! The order of steps. Every other room does one thing; this one says in
//! which order they happen and carries the results between them:
//!
//! - one email: extract (pure) → record in the store, one transaction
//!   ([`ingest_email`]; IMAP hands emails over through [`Ingest`], a
//!   [`MailSink`]);
//! - the status model: load facts → derive ([`status_report`]);
//! - one tracking pass: due (decided) → provider (HTTP) → decide each
//!   parcel → store, one transaction per provider request
//!   ([`tracking::tracking_pass`]);
//! - one notification pass: facts → what is due (decided) → record intent →
//!   render and deliver per channel → mark sent ([`notify::send_due`]).

pub mod notify;
pub mod tracking;

#[cfg(test)]
mod ingest_tests;
#[cfg(test)]
mod notify_tests;

use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::config::ImapAccount;
use crate::decide::Rules;
use crate::imap::{MailSink, SyncSummary};
use crate::model::{EmailOrigin, ImapLocation, IngestOutcome, MailboxState};
use crate::report::StatusReport;
use crate::store::Store;

pub use notify::{send_digest_now, send_due, DigestSent, SendSummary};
pub use tracking::{tracking_pass, RefreshSummary};

/// Extracts `raw` and records what it says (or why it cannot be parsed) in
/// ONE transaction together with "this email is processed". Idempotent.
pub fn ingest_email(
    store: &mut Store,
    raw: &[u8],
    origin: &EmailOrigin,
    now: DateTime<Utc>,
) -> Result<IngestOutcome> {
    let sha = crate::store::orders::hex(&Sha256::digest(raw));
    let extraction = crate::extract::extract(raw).map_err(|e| e.to_string());
    store.record_email(
        &sha,
        extraction.as_ref().map_err(String::as_str),
        origin,
        now,
    )
}

/// The status model now (SPEC §4): every order (active and completed;
/// callers filter) and every parcel not tied to an order, plus notices
/// about the tracking provider for the digest.
pub fn status_report(store: &Store, now: DateTime<Utc>, rules: &Rules) -> Result<StatusReport> {
    let facts = store.load_facts()?;
    let mut report = crate::decide::orders::report(&facts, now, rules);
    let state = store.tracking_state()?;
    for msg in [state.quota_exhausted, state.last_error]
        .into_iter()
        .flatten()
    {
        report.notices.push(format!("parcel tracking: {msg}"));
    }
    Ok(report)
}

/// `status --json [--all]` as one line of JSON: the report of
/// [`status_report`], active orders only unless `all`. `GET /api/status`
/// is this with `all`.
pub fn status_json(store: &Store, now: DateTime<Utc>, rules: &Rules, all: bool) -> Result<String> {
    let mut report = status_report(store, now, rules)?;
    if !all {
        report.orders.retain(|o| o.is_active());
    }
    let mut json = serde_json::to_string(&report)?;
    json.push('\n');
    Ok(json)
}

/// The calendar feed of `aliwatch calendar` and `GET /calendar.ics`.
pub fn calendar(store: &Store, now: DateTime<Utc>, rules: &Rules) -> Result<String> {
    let report = status_report(store, now, rules)?;
    Ok(crate::render::render_calendar(&report, rules, now))
}

/// Called after each email was handed to ingestion (tests and benchmarks
/// count with it).
pub type Observer = Arc<dyn Fn(&ImapLocation, &[u8]) + Send + Sync>;

/// The IMAP sink: fetched emails are ingested into the store (shared as
/// `Arc<Mutex<Store>>`, locked only for the synchronous store calls, never
/// across an await), plus an optional observer.
#[derive(Clone)]
pub struct Ingest {
    pub store: Arc<Mutex<Store>>,
    pub observer: Option<Observer>,
}

impl Ingest {
    /// Ingestion into `store` only.
    pub fn new(store: Arc<Mutex<Store>>) -> Ingest {
        Ingest {
            store,
            observer: None,
        }
    }

    /// Also calls `observer` for each email handed to ingestion.
    pub fn with_observer(mut self, observer: Observer) -> Ingest {
        self.observer = Some(observer);
        self
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Store>> {
        self.store
            .lock()
            .map_err(|_| anyhow!("the store lock is poisoned"))
    }
}

impl MailSink for Ingest {
    fn mailbox_state(&self, account: &str, mailbox: &str) -> Result<Option<MailboxState>> {
        self.lock()?.mailbox_state(account, mailbox)
    }

    fn set_mailbox_state(
        &self,
        account: &str,
        mailbox: &str,
        state: MailboxState,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.lock()?.set_mailbox_state(account, mailbox, state, now)
    }

    fn deliver(
        &self,
        raw: &[u8],
        origin: &EmailOrigin,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome> {
        let outcome = ingest_email(&mut *self.lock()?, raw, origin, now)?;
        if let (Some(obs), Some(loc)) = (&self.observer, &origin.imap) {
            obs(loc, raw);
        }
        Ok(outcome)
    }

    fn fetch_misses(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<std::collections::BTreeMap<u32, u32>> {
        self.lock()?.fetch_misses(account, mailbox, uidvalidity)
    }

    fn set_fetch_misses(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
        uid: u32,
        passes: u32,
    ) -> Result<()> {
        self.lock()?
            .set_fetch_misses(account, mailbox, uidvalidity, uid, passes)
    }
}

/// One pass over every mailbox of `account` into `store` (for `sync`).
pub async fn sync_account_once(
    account: &ImapAccount,
    store: &Arc<Mutex<Store>>,
    now: DateTime<Utc>,
) -> Result<SyncSummary> {
    crate::imap::sync_account_once_with(account, &Ingest::new(store.clone()), now).await
}
