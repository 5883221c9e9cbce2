//! The committed man pages (`docs/man/`) and shell completions
//! (`docs/completions/`) are what `aliwatch generate all` makes from the
//! clap definitions today: a changed option or help text without
//! regenerating them fails here.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::util::*;

const REFRESH: &str = "refresh them with `cargo run -- generate all docs` and commit the result";

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn committed_man_pages_and_completions_are_up_to_date() {
    let home = tempfile::tempdir().expect("tempdir");
    let out_dir = home.path().join("generated");
    let out = run(aliwatch(home.path())
        .args(["generate", "all"])
        .arg(&out_dir));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let mut stale = Vec::new();
    for sub in ["man", "completions"] {
        let fresh = out_dir.join(sub);
        let committed = root().join("docs").join(sub);
        let (want, have) = (names(&fresh), names(&committed));
        for name in want.difference(&have) {
            stale.push(format!("docs/{sub}/{name} is missing"));
        }
        for name in have.difference(&want) {
            stale.push(format!("docs/{sub}/{name} is no longer generated"));
        }
        for name in want.intersection(&have) {
            let a = fs::read(fresh.join(name)).expect("read generated");
            let b = fs::read(committed.join(name)).expect("read committed");
            if a != b {
                stale.push(format!("docs/{sub}/{name} is stale"));
            }
        }
    }
    assert!(stale.is_empty(), "{}; {REFRESH}", stale.join(", "));
}

#[test]
fn generate_is_hidden_from_help_pages_and_completions() {
    let home = tempfile::tempdir().expect("tempdir");
    let help = stdout(&run(aliwatch(home.path()).arg("--help")));
    assert!(help.contains("check-config"), "{help}");
    assert!(!help.contains("generate"), "{help}");
    for f in [
        "completions/aliwatch.bash",
        "completions/_aliwatch",
        "completions/aliwatch.fish",
        "man/aliwatch.1",
    ] {
        let text = fs::read_to_string(root().join("docs").join(f)).expect("read");
        // roff writes a hyphen as `\-`
        assert!(text.replace("\\-", "-").contains("check-config"), "{f}");
        assert!(
            !text.contains("generate"),
            "{f} offers the hidden generate command"
        );
    }
}
