//! The bounded fuzz run in the suite: a fixed number of structure-aware
//! inputs (see `fuzz_gen.rs`) from a fixed seed through the extractor and
//! the import readers. No panic, every input within a time limit, and
//! every order and tracking number valid by its rules. The long run is
//! `scripts/fuzz [SECONDS]` (`benches/fuzz.rs`), from a fresh seed each
//! time.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use super::fuzz_gen::*;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x616c_6977_6174_6368),
        max_shrink_iters: 256,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn fuzzed_emails_extract_without_panic_in_bounded_time_with_valid_numbers(i in input()) {
        let raw = bytes(&i);
        check_extract(&raw, TIME_LIMIT).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn fuzzed_emails_survive_an_mbox_round_trip(inputs in proptest::collection::vec(input(), 1..5)) {
        let emails: Vec<Vec<u8>> = inputs.iter().map(bytes).collect();
        check_mbox_round_trip(&emails, TIME_LIMIT).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn fuzzed_bytes_read_as_an_mbox_never_panic_or_grow(i in input(), prefix in any::<bool>()) {
        let mut raw = bytes(&i);
        if prefix {
            raw.splice(0..0, b"From x\n".iter().copied());
        }
        check_mbox_bytes(&raw).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(config(12))]

    #[test]
    fn fuzzed_import_trees_read_every_message_once(t in tree()) {
        check_tree(&t, TIME_LIMIT).map_err(TestCaseError::fail)?;
    }
}

/// The invariants hold on every real fixture, so a fuzz failure is the
/// input's doing, not a check that was wrong from the start.
#[test]
fn fuzz_invariants_hold_on_every_fixture() {
    assert!(FIXTURES.len() > 100, "fixtures found: {}", FIXTURES.len());
    for (i, raw) in FIXTURES.iter().enumerate() {
        if let Err(e) = check_extract(raw, TIME_LIMIT) {
            panic!("fixture {i}: {e}");
        }
    }
}

/// Every fixture goes through an mbox and back unchanged.
#[test]
fn fixtures_survive_an_mbox_round_trip() {
    check_mbox_round_trip(&FIXTURES, TIME_LIMIT).expect("round trip");
}

/// The harness nests every container type thousands deep, in the header
/// spellings mail-parser accepts, and the extractor survives each
/// (a stack overflow would abort this test binary).
#[test]
fn fuzz_deep_nesting_of_every_container_in_every_spelling_is_survived() {
    for k in 0..CONTAINERS.len() as u32 {
        for spelling in [0u32, 1, 7, 12345, 0xdead_beef] {
            let input = Input::Deep {
                fixture: k as usize,
                depth: 5_000,
                // even: the same kind at every level
                kinds: k << 1,
                spelling,
                parts: 0,
            };
            let raw = bytes(&input);
            check_extract(&raw, TIME_LIMIT)
                .unwrap_or_else(|e| panic!("{:?} spelt {spelling}: {e}", CONTAINERS[k as usize]));
        }
    }
    // the spellings the generator writes
    let mut sp = Spelling::new(12345);
    let lines: String = (0..200)
        .map(|_| sp.line("Content-Type", "message/rfc822"))
        .collect();
    for want in [
        "Content-Type : ",
        "Content-Type\t:",
        "Content-Type:\n ",
        "content-type:",
        "CONTENT-TYPE:",
    ] {
        assert!(lines.contains(want), "{want:?} never written");
    }
}
