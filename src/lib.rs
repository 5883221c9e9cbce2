//! aliwatch: watches IMAP inboxes for AliExpress order and shipping emails,
//! tracks every parcel, keeps it all in SQLite, mails a daily digest and
//! warns before an order's Buyer Protection runs out.
//!
//! Architecture: a pure core and an I/O shell.
//!
//! | module | kind | owns |
//! |---|---|---|
//! | [`model`] | pure | the shared vocabulary (kinds, statuses, states) |
//! | [`config`] | pure + file read | TOML → validated [`config::Config`]; secrets |
//! | [`extract`] | pure | one email's bytes → orders and parcels |
//! | [`protection`] | pure | when Buyer Protection ends, stalled parcels |
//! | [`report`] | pure | the `status --json` read model |
//! | [`notify`] | pure core + SMTP shell | digest and warnings: what is due, rendering, sending |
//! | [`tracking`] | pure core + HTTP shell | 17TRACK / Cainiao clients, unified status, schedule |
//! | [`store`] | SQLite | durable state, ingestion transactions |
//! | [`imap`] | network | mailbox watching: IDLE, polling, backfill |
//! | [`mailfile`] | file read | `.eml`, Maildir and mbox for `import` |
//! | [`logging`] | stderr | the tracing subscriber; journald priority prefixes |
//! | [`cli`], [`app`], [`daemon`] | wiring | the commands, `sync` and `run` |
//! | [`docgen`] | file write | man pages and completions from the clap definitions |

#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod docgen;
pub mod extract;
pub mod imap;
pub mod logging;
pub mod mailfile;
pub mod model;
pub mod notify;
pub mod protection;
pub mod report;
pub mod store;
pub mod systemd;
pub mod tracking;
