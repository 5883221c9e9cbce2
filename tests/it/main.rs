//! The one integration test binary (ripgrep's `tests/tests.rs` layout).
//! Each module is one area; `mailstack` is the harness that starts real
//! Dovecot and SMTP servers on loopback.

mod extract;
#[allow(dead_code)]
mod mailstack;
