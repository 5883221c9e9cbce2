//! Prints the SPEC §3 `extract --json` line for each file given, like
//! `aliwatch extract --json FILE...`. Used by `scripts/bench-extract` while
//! the CLI subcommand is not on this branch.

use std::io::Write;

fn main() {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = false;
    for path in std::env::args().skip(1) {
        let line = match std::fs::read(&path) {
            Ok(raw) => match aliwatch::extract::extract(&raw) {
                Ok(ex) => ex.to_spec_json(&path),
                Err(e) => {
                    failed = true;
                    serde_json::json!({"file": path, "error": e.to_string()})
                }
            },
            Err(e) => {
                failed = true;
                serde_json::json!({"file": path, "error": format!("cannot read: {e}")})
            }
        };
        if writeln!(out, "{line}").is_err() {
            std::process::exit(1);
        }
    }
    let _ = out.flush();
    std::process::exit(i32::from(failed));
}
