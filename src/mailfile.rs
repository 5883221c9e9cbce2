//! Reading exported mail for `import`: single `.eml` files, Maildir folders
//! (`cur/` and `new/`), mbox files (mboxo/mboxrd), and directories holding
//! any of these, read recursively.
//!
//! Messages are handed to a callback one at a time, so memory stays flat
//! however large the mbox or the tree is.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// One message read from disk.
#[derive(Debug)]
pub struct FileMessage {
    /// Where it came from: the file, or `mbox#N`.
    pub label: String,
    /// The file's modification time: the message's date when it has no
    /// Date header.
    pub received_at: DateTime<Utc>,
    pub raw: Vec<u8>,
}

/// What could not be read.
#[derive(Debug, Default)]
pub struct ReadProblems {
    pub errors: Vec<String>,
}

/// Walks `paths` and calls `each` for every message. Unreadable inputs are
/// collected, not fatal; an error from `each` stops the walk.
pub fn for_each_message(
    paths: &[PathBuf],
    each: &mut dyn FnMut(FileMessage) -> anyhow::Result<()>,
) -> anyhow::Result<ReadProblems> {
    let mut problems = ReadProblems::default();
    for p in paths {
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) => {
                problems.errors.push(format!("{}: {e}", p.display()));
                continue;
            }
        };
        if meta.is_dir() {
            walk_dir(p, &mut problems, each)?;
        } else {
            read_file(p, true, &mut problems, each)?;
        }
    }
    Ok(problems)
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() || dir.join("new").is_dir()
}

fn sorted_entries(dir: &Path, problems: &mut ReadProblems) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            v.sort();
            v
        }
        Err(e) => {
            problems.errors.push(format!("{}: {e}", dir.display()));
            Vec::new()
        }
    }
}

fn walk_dir(
    dir: &Path,
    problems: &mut ReadProblems,
    each: &mut dyn FnMut(FileMessage) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if is_maildir(dir) {
        for sub in ["cur", "new"] {
            for f in sorted_entries(&dir.join(sub), problems) {
                if f.is_file() {
                    read_file(&f, true, problems, each)?;
                }
            }
        }
    }
    for entry in sorted_entries(dir, problems) {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if is_maildir(dir) && matches!(name, "cur" | "new" | "tmp") {
            continue;
        }
        if entry.is_dir() {
            walk_dir(&entry, problems, each)?;
        } else if entry.is_file() {
            read_file(&entry, false, problems, each)?;
        }
    }
    Ok(())
}

fn mtime(path: &Path) -> DateTime<Utc> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(DateTime::<Utc>::from)
        .unwrap_or_default()
}

/// Reads one file as an mbox (it starts with a `From ` line) or as a
/// single message. In directory walks (`explicit == false`) only `.eml`
/// files and mbox files are taken, so READMEs and JSON beside them are not
/// mistaken for mail.
fn read_file(
    path: &Path,
    explicit: bool,
    problems: &mut ReadProblems,
    each: &mut dyn FnMut(FileMessage) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            problems.errors.push(format!("{}: {e}", path.display()));
            return Ok(());
        }
    };
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let head = match reader.fill_buf() {
        Ok(b) => b,
        Err(e) => {
            problems.errors.push(format!("{}: {e}", path.display()));
            return Ok(());
        }
    };
    let is_mbox = head.starts_with(b"From ");
    let is_eml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("eml"));
    let in_maildir = path
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "cur" || n == "new");
    if !explicit && !is_mbox && !is_eml && !in_maildir {
        return Ok(());
    }
    let received_at = mtime(path);
    if is_mbox {
        let label = path.display().to_string();
        return read_mbox(reader, &label, received_at, problems, each);
    }
    let mut raw = Vec::new();
    if let Err(e) = reader.read_to_end(&mut raw) {
        problems.errors.push(format!("{}: {e}", path.display()));
        return Ok(());
    }
    each(FileMessage {
        label: path.display().to_string(),
        received_at,
        raw,
    })
}

/// Splits an mbox at `From ` separator lines (a `From ` line at the start
/// of the file or after an empty line) and undoes mboxrd quoting
/// (`>From ` → `From `). Messages are labelled `LABEL#N`; a read error
/// ends the mbox and is collected in `problems`. Public for the fuzz
/// harness, which feeds it from memory.
pub fn read_mbox(
    mut reader: impl BufRead,
    label: &str,
    received_at: DateTime<Utc>,
    problems: &mut ReadProblems,
    each: &mut dyn FnMut(FileMessage) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut current: Option<Vec<u8>> = None;
    let mut line = Vec::new();
    let mut prev_blank = true;
    let mut n = 0usize;
    let mut emit = |msg: Vec<u8>, n: &mut usize| -> anyhow::Result<()> {
        *n += 1;
        each(FileMessage {
            label: format!("{label}#{n}"),
            received_at,
            raw: msg,
        })
    };
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                problems.errors.push(format!("{label}: {e}"));
                break;
            }
        }
        if prev_blank && line.starts_with(b"From ") {
            if let Some(mut msg) = current.take() {
                // The blank line before a separator belongs to the mbox.
                if msg.ends_with(b"\r\n\r\n") {
                    msg.truncate(msg.len() - 2);
                } else if msg.ends_with(b"\n\n") {
                    msg.truncate(msg.len() - 1);
                }
                emit(msg, &mut n)?;
            }
            current = Some(Vec::new());
            prev_blank = false;
            continue;
        }
        let blank = line == b"\n" || line == b"\r\n";
        if let Some(msg) = current.as_mut() {
            let gt = line.iter().take_while(|&&b| b == b'>').count();
            if gt > 0
                && line
                    .get(gt..)
                    .is_some_and(|rest| rest.starts_with(b"From "))
            {
                msg.extend_from_slice(line.get(1..).unwrap_or_default());
            } else {
                msg.extend_from_slice(&line);
            }
        }
        prev_blank = blank;
    }
    if let Some(msg) = current.take() {
        if !msg.is_empty() {
            emit(msg, &mut n)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(paths: &[PathBuf]) -> (Vec<FileMessage>, ReadProblems) {
        let mut out = Vec::new();
        let problems = for_each_message(paths, &mut |m| {
            out.push(m);
            Ok(())
        })
        .expect("walks");
        (out, problems)
    }

    #[test]
    fn splits_an_mbox_and_unquotes_from_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mbox = dir.path().join("export.mbox");
        std::fs::write(
            &mbox,
            "From a@b Sat Jan  1 00:00:00 2026\nSubject: one\n\nhello\n>From here\n\nFrom c@d Sat Jan  1 00:00:00 2026\nSubject: two\n\nbye\n",
        )
        .expect("writes");
        let (msgs, problems) = collect(&[mbox]);
        assert!(problems.errors.is_empty());
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].raw, b"Subject: one\n\nhello\nFrom here\n");
        assert_eq!(msgs[1].raw, b"Subject: two\n\nbye\n");
    }

    #[test]
    fn walks_maildirs_and_directories_but_skips_non_mail_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let md = dir.path().join("Mail/INBOX");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(md.join(sub)).expect("mkdir");
        }
        std::fs::write(md.join("cur/1:2,S"), "Subject: a\n\nx\n").expect("writes");
        std::fs::write(md.join("new/2"), "Subject: b\n\nx\n").expect("writes");
        std::fs::write(md.join("tmp/3"), "Subject: partial\n").expect("writes");
        std::fs::write(dir.path().join("one.eml"), "Subject: c\n\nx\n").expect("writes");
        std::fs::write(dir.path().join("README.md"), "not mail").expect("writes");
        let (msgs, problems) = collect(&[dir.path().to_path_buf()]);
        assert!(problems.errors.is_empty());
        assert_eq!(
            msgs.len(),
            3,
            "{:?}",
            msgs.iter().map(|m| &m.label).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_missing_path_is_a_problem_not_a_failure() {
        let (msgs, problems) = collect(&[PathBuf::from("/nonexistent/aliwatch-test")]);
        assert!(msgs.is_empty());
        assert_eq!(problems.errors.len(), 1);
    }
}
