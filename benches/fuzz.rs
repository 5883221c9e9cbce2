//! The long fuzz run (harness = false): the suite's structure-aware
//! generators (`tests/it/fuzz_gen.rs`) from a fresh seed, for a number of
//! seconds, through the extractor and the import readers. Panics are
//! caught and counted; an input that panics, breaks an invariant or takes
//! longer than the time limit is written to `target/fuzz-crashes/`.
//!
//! `scripts/fuzz [SECONDS]` (or `cargo bench --bench fuzz -- SECONDS`;
//! `ALIWATCH_FUZZ_SEED=N` repeats a run). Prints executions, execs/s and
//! crashes; exits 1 when anything failed.

#[allow(dead_code)]
#[path = "../tests/it/fuzz_gen.rs"]
mod fuzz_gen;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use fuzz_gen::*;

/// Slower than this in the release build counts as a failure.
const LIMIT: Duration = Duration::from_secs(1);

/// Cheap byte-level mutants run after each generated email: generating a
/// structured email costs more than extracting it, so each one seeds a
/// few damaged copies (random flips, inserted bytes, cuts, duplicated
/// stretches), each one execution of its own.
const MUTANTS: usize = 7;

fn mutant(rng: &mut fastrand::Rng, raw: &[u8]) -> Vec<u8> {
    let mut m = raw.to_vec();
    let muts: Vec<Mutation> = (0..rng.usize(1..5))
        .map(|_| match rng.u8(0..8) {
            0..=2 => Mutation::Flip(rng.usize(..), rng.u8(..)),
            3..=5 => Mutation::Insert(
                rng.usize(..),
                (0..rng.usize(1..32)).map(|_| rng.u8(..)).collect(),
            ),
            6 => Mutation::Truncate(rng.usize(..)),
            _ => Mutation::Duplicate(rng.usize(..), rng.usize(1..2048)),
        })
        .collect();
    apply(&mut m, &muts);
    m
}

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("ALIWATCH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let crash_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
    // Panics are counted and saved; their messages still go to stderr.
    let _ = FIXTURES.len();

    let one = input();
    let mbox = proptest::collection::vec(input(), 1..5);
    let trees = tree();

    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut execs: u64 = 0;
    let mut emails: u64 = 0;
    let mut crashes: u64 = 0;
    let mut failures: u64 = 0;
    let mut slowest = Duration::ZERO;
    let mut slowest_input: Vec<u8> = Vec::new();
    let mut last_report = start;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut pending: Vec<Vec<u8>> = Vec::new();
    // Generated inputs: every 4th is an mbox, every 200th an import tree.
    let mut generated: u64 = 0;
    println!("fuzz: seed {seed}, {secs} s, {} fixtures", FIXTURES.len());
    while Instant::now() < deadline {
        execs += 1;
        let next_mutant = pending.pop();
        if next_mutant.is_none() {
            generated += 1;
        }
        let (kind, raw, result) = if let Some(raw) = next_mutant {
            emails += 1;
            let r = catch_unwind(AssertUnwindSafe(|| check_extract(&raw, LIMIT)));
            ("eml", raw, r)
        } else if generated.is_multiple_of(200) {
            let Ok(t) = trees.new_tree(&mut runner) else {
                continue;
            };
            let t = t.current();
            emails += (t.cur.len() + t.new.len() + t.eml.len() + t.mbox.len()) as u64;
            let r = catch_unwind(AssertUnwindSafe(|| check_tree(&t, LIMIT)));
            (
                "tree",
                format!("{t:?}").into_bytes(),
                r.map(|r| r.map(|_| Duration::ZERO)),
            )
        } else if generated.is_multiple_of(4) {
            let Ok(v) = mbox.new_tree(&mut runner) else {
                continue;
            };
            let list: Vec<Vec<u8>> = v.current().iter().map(bytes).collect();
            emails += list.len() as u64;
            let file = mboxrd(&list.iter().cloned().map(mbox_ready).collect::<Vec<_>>());
            let r = catch_unwind(AssertUnwindSafe(|| {
                check_mbox_bytes(&file)?;
                check_mbox_round_trip(&list, LIMIT).map(|_| Duration::ZERO)
            }));
            ("mbox", file, r)
        } else {
            let Ok(v) = one.new_tree(&mut runner) else {
                continue;
            };
            let raw = bytes(&v.current());
            emails += 1;
            pending.extend((0..MUTANTS).map(|_| mutant(&mut rng, &raw)));
            let r = catch_unwind(AssertUnwindSafe(|| check_extract(&raw, LIMIT)));
            ("eml", raw, r)
        };
        let failed = match result {
            Ok(Ok(took)) => {
                if took > slowest {
                    slowest = took;
                    slowest_input.clone_from(&raw);
                }
                None
            }
            Ok(Err(why)) => {
                failures += 1;
                Some(why)
            }
            Err(_) => {
                crashes += 1;
                Some("panic".to_string())
            }
        };
        if let Some(why) = failed {
            let _ = std::fs::create_dir_all(&crash_dir);
            let n = crashes + failures;
            let path = crash_dir.join(format!("{seed}-{n}.{kind}"));
            let _ = std::fs::write(&path, &raw);
            eprintln!("fuzz: {why}: input written to {}", path.display());
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            last_report = Instant::now();
            let t = start.elapsed().as_secs_f64();
            println!(
                "fuzz: {execs} executions, {:.0} execs/s, {crashes} crashes, {failures} failed checks",
                execs as f64 / t
            );
        }
    }
    // The slowest email, to time on its own (wall time under load
    // includes waiting for the CPU).
    let _ = std::fs::create_dir_all(&crash_dir);
    let _ = std::fs::write(
        crash_dir.join(format!("slowest-{seed}.eml")),
        &slowest_input,
    );
    let t = start.elapsed().as_secs_f64();
    println!(
        "fuzz: {execs} executions ({emails} emails) in {t:.0} s, {:.0} execs/s, {crashes} crashes, {failures} failed checks, slowest email {:.1} ms, seed {seed}",
        execs as f64 / t,
        slowest.as_secs_f64() * 1e3
    );
    if crashes + failures > 0 {
        std::process::exit(1);
    }
}
