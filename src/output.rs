//! The one writer of standard output: every command prints through
//! [`write_stdout`], so a closed pipe or a full disk is an error the
//! caller reports (`app::main` exits 0 quietly for a closed pipe, 1 for
//! anything else), never a panic inside `print!`. Messages for stderr go
//! through [`to_stderr`], which never panics either (`2>/dev/full`).

use std::io::Write;

use anyhow::{Context, Result};

/// Writes `text` to standard output and flushes it at once, so that a
/// closed pipe (`aliwatch calendar | head`) or a full disk (`> /dev/full`)
/// is an error here, never a panic in `print!` or a tail lost silently at
/// exit. `app::main` turns a closed pipe into a quiet exit 0 and anything
/// else into exit 1 with the reason. Every command writes through this.
pub fn write_stdout(text: impl AsRef<[u8]>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_ref())
        .and_then(|()| out.flush())
        .context("cannot write to standard output")
}

/// Writes `text` to standard error, ignoring a closed or full stderr:
/// there is nowhere left to report that, and `eprintln!` would panic.
pub fn to_stderr(text: impl AsRef<[u8]>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_ref()).and_then(|()| err.flush());
}
