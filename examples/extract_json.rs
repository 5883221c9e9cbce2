//! Prints the SPEC §3 `extract --json` line for each file given, in input
//! order, like `aliwatch extract --json FILE...`. Used by
//! `scripts/bench-extract` while the CLI subcommand is not on this branch.
//!
//! Files are split into contiguous chunks, one per core (extraction is pure
//! and `Sync`), and printed in input order: the pattern the CLI can copy.

use std::io::Write;

fn one(path: &str) -> (String, bool) {
    let (v, ok) = match std::fs::read(path) {
        Ok(raw) => match aliwatch::extract::extract(&raw) {
            Ok(ex) => (ex.to_spec_json(path), true),
            Err(e) => (
                serde_json::json!({"file": path, "error": e.to_string()}),
                false,
            ),
        },
        Err(e) => (
            serde_json::json!({"file": path, "error": format!("cannot read: {e}")}),
            false,
        ),
    };
    (v.to_string(), ok)
}

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 16);
    let chunk = paths.len().div_ceil(workers).max(1);
    let results: Vec<Vec<(String, bool)>> = std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(|p| one(p)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = false;
    for (line, ok) in results.iter().flatten() {
        failed |= !ok;
        if writeln!(out, "{line}").is_err() {
            std::process::exit(1);
        }
    }
    let _ = out.flush();
    std::process::exit(i32::from(failed));
}
