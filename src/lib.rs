//! aliwatch: watches IMAP inboxes for AliExpress order and shipping emails,
//! tracks every parcel, keeps it all in SQLite, mails a daily digest and
//! warns before an order's Buyer Protection runs out.
//!
//! Architecture: a pure core and an I/O shell.
//!
//! | module | kind | owns |
//! |---|---|---|
//! | [`model`], [`facts`], [`report`] | pure data | the shared vocabulary; the store's typed rows; the `status --json` model |
//! | [`extract`] | pure | one email's bytes → orders and parcels |
//! | [`decide`] | pure | state in time, protection, tracking policy and schedule, what is due |
//! | [`render`] | pure | digest and warning emails, the `status` table, push messages, the dashboard, the calendar feed, metrics |
//! | [`backoff`] | pure | the one retry-delay rule |
//! | [`providers`] | pure | each tracking provider's facts: number formats, batch, pacing, tracking page |
//! | [`config`] | file read | TOML → validated [`config::Config`]; secrets |
//! | [`store`] | SQLite | durable facts, one transaction per change; decides nothing |
//! | [`tracking`] | HTTP | the provider trait, 17TRACK / Cainiao clients |
//! | [`notify`] | SMTP, HTTP, MQTT | the channel trait; email, ntfy, webhooks, MQTT / Home Assistant |
//! | [`imap`] | network | mailbox watching: IDLE, polling, backfill, into a sink |
//! | [`mailfile`] | file read | `.eml`, Maildir and mbox for `import` |
//! | [`pipeline`] | wiring | the order of steps: one email, one tracking pass, one notification pass |
//! | [`daemon`] | tasks | `run`: tasks, signals, watchdog, status line |
//! | [`web`] | HTTP server | the local web face: dashboard, `/api/status`, calendar, metrics, health (read-only) |
//! | [`live`] | memory | what only the running daemon knows: mailbox connections |
//! | [`memory`] | allocator | gives the heap a burst of work freed back to the system (the crate's one `unsafe` call) |
//! | [`output`] | stdout | the one checked writer of standard output |
//! | [`logging`] | stderr | the tracing subscriber; journald priority prefixes |
//! | [`docgen`] | file write | man pages and completions from the clap definitions |
//! | [`ops`] | wiring | what the database commands do (`status`, `add`, `done`, `import`, …), shared by the command line and the service |
//! | [`control`] | Unix socket | the command line beside the running service: routing, the control socket's protocol, client and server |
//! | [`demo`] | file write | `aliwatch demo`: embedded demo emails, dated relative to now, into a database of their own |
//! | [`cli`], [`app`] | face | the commands and exit codes |

// Denied, not forbidden: `memory` allows itself one audited foreign call.
#![deny(unsafe_code)]

pub mod app;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod decide;
pub mod demo;
pub mod docgen;
pub mod extract;
pub mod facts;
pub mod imap;
pub mod live;
pub mod logging;
pub mod mailfile;
pub mod memory;
pub mod model;
pub mod notify;
pub mod ops;
pub mod output;
pub mod pipeline;
pub mod providers;
pub mod render;
pub mod report;
pub mod store;
pub mod systemd;
pub mod tracking;
pub mod web;
