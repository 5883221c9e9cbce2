//! The long-running parts: `sync` (one pass of everything due), `run` (the
//! daemon), `digest`, and `check-config --connect`.

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::config::Config;

/// `sync`: one pass of everything that is due now.
pub fn sync_command(cfg: &Config) -> Result<ExitCode> {
    let _ = cfg;
    bail!("sync is not implemented yet")
}

/// `run`: the daemon.
pub fn run_command(cfg: &Config) -> Result<ExitCode> {
    let _ = cfg;
    bail!("run is not implemented yet")
}

/// `digest --print | --send`.
pub fn digest_command(cfg: &Config, print: bool, send: bool) -> Result<ExitCode> {
    let _ = (cfg, print, send);
    bail!("digest is not implemented yet")
}

/// `check-config --connect`.
pub fn check_connections(cfg: &Config) -> Result<ExitCode> {
    let _ = cfg;
    bail!("check-config --connect is not implemented yet")
}
