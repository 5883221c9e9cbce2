//! Ingestion (one email's extraction applied in one transaction) and the
//! status snapshot.

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::Store;

/// Where an IMAP email sits on its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapLocation {
    pub account: String,
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// Where an email came from.
#[derive(Debug, Clone)]
pub struct EmailOrigin {
    /// "imap:<account>/<mailbox>" or "import:<path>".
    pub source: String,
    /// Set for emails read from IMAP.
    pub imap: Option<ImapLocation>,
    /// INTERNALDATE (IMAP) or the file's time (import): the email's date when
    /// it has no Date header.
    pub received_at: DateTime<Utc>,
}

/// What ingesting one email did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Processed for the first time.
    New {
        is_aliexpress: bool,
        orders_new: usize,
        orders_updated: usize,
        parcels_new: usize,
    },
    /// Seen before (same Message-ID or same bytes): nothing changed.
    Duplicate,
    /// Could not be parsed; recorded as seen with its error and skipped.
    Unparseable(String),
}

impl Store {
    /// Extracts `raw` and applies what it says in ONE transaction together
    /// with "this email is processed". Idempotent. (Skeleton.)
    pub fn ingest_email(
        &mut self,
        raw: &[u8],
        origin: &EmailOrigin,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome> {
        let _ = (raw, origin, now);
        Ok(IngestOutcome::Duplicate)
    }
}
