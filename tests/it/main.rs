//! The one integration test binary (ripgrep's `tests/tests.rs` layout).
//! Each module is one area; `util` runs the real binary; `mailstack` is
//! the harness that starts real Dovecot and SMTP servers on loopback;
//! `standin` is the local HTTP stand-in for the tracking providers.

#[allow(dead_code)]
mod mailstack;
#[allow(dead_code)]
mod standin;
#[allow(dead_code)]
mod util;

// check-config on the example and on bad configs
mod config;
// golden extraction tests over tests/fixtures/emails, property test
mod extract;
// journald priority prefixes on log lines
mod logging;
// the committed man pages and completions are current
mod generated;
// docs/formats.md documents every JSON field
mod formats;
// scripts/test with a stand-in cargo
mod scripts;
// import + status through the binary
mod import;
// add: typed numbers and the orders they name
mod manual;
// the status table's width, --wide, --all and a closed pipe
mod status_table;
// old databases keep working
mod store;
// 17TRACK and Cainiao clients against the stand-in
mod tracking;
// several providers: routing, fallback, quota, merging, request counts
mod tracking_providers;
// digest and warnings against the real SMTP sink
mod notify;
// IMAP sync and watching against the real Dovecot
mod imap;
// XOAUTH2 against the real Dovecot and a token introspection endpoint
mod xoauth2;
// the real `aliwatch run` binary end to end: mail, tracking, digest, signals, SIGKILL
mod e2e;
// the bounded fuzz run: generated emails, mbox files and import trees
mod fuzz;
#[allow(dead_code)]
mod fuzz_gen;
// hostile emails without a server: parser bounds, extract and import
mod hostile_input;
// a hostile tracking API: redirects, endless answers, floods, refusals
mod hostile_http;
// the web face of `run`: endpoints, calendar, metrics, health, tokens
mod web;
// a hostile IMAP server: garbage, huge literals, huge searches, lies
mod hostile_imap;
// [[notify]] ntfy and webhooks through the binary against a local receiver (5xx, drops, hangs, SIGKILL)
mod push;
// [[notify]] type = "mqtt": Home Assistant discovery against a real mosquitto
mod mqtt;
// the command line beside the running service: one state, one sender, the control socket
mod service;
