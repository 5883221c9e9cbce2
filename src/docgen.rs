//! The hidden `aliwatch generate` command: man pages and shell completions,
//! built from the clap definitions in [`crate::cli`] so that they never
//! describe options the binary does not have. The generated files are
//! committed (`docs/man/`, `docs/completions/`), installed by the `.deb`,
//! and a test fails when they are stale.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::{Generator, Shell};
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;

use crate::cli::{Cli, Generate};

/// The shells whose completions are committed and packaged.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Carries out `aliwatch generate ...`, printing each file written.
pub fn run(what: &Generate) -> Result<ExitCode> {
    let written = match what {
        Generate::Man { dir } => man_pages(dir)?,
        Generate::Completions { shell, dir } => vec![completion(*shell, dir)?],
        Generate::All { dir } => {
            let mut files = man_pages(&dir.join("man"))?;
            for shell in SHELLS {
                files.push(completion(shell, &dir.join("completions"))?);
            }
            files
        }
    };
    let list: String = written
        .iter()
        .map(|f| format!("{}\n", f.display()))
        .collect();
    crate::output::write_stdout(list)?;
    Ok(ExitCode::SUCCESS)
}

/// The command as users see it: without the hidden `generate` (clap has
/// no way to drop a subcommand, and the completion generators offer hidden
/// ones, so the visible ones are moved into a copy) and without clap's
/// `help` subcommand (every page documents `--help` already).
fn command() -> clap::Command {
    let full = Cli::command();
    let visible: Vec<clap::Command> = full
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut cmd = clap::Command::new("aliwatch")
        .version(env!("CARGO_PKG_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .args(full.get_arguments().cloned())
        .subcommand_required(true)
        .subcommand_help_heading("COMMANDS")
        .subcommands(visible)
        .disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// `aliwatch.1` and one `aliwatch-COMMAND.1` per visible command (the
/// git/cargo layout the COMMANDS section of `aliwatch.1` refers to).
pub fn man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cmd = command();
    let mut written = Vec::new();
    let main = dir.join("aliwatch.1");
    write_file(&main, &main_page(&cmd)?)?;
    written.push(main);
    for sub in cmd.get_subcommands() {
        let man = page(sub.clone());
        let mut page = Vec::new();
        man.render(&mut page)?;
        page.extend_from_slice(
            Roff::new()
                .control("SH", ["SEE ALSO"])
                .text([bold("aliwatch"), roman("(1)")])
                .to_roff()
                .as_bytes(),
        );
        let path = dir.join(man.get_filename());
        write_file(&path, &page)?;
        written.push(path);
    }
    Ok(written)
}

/// A page with the footer every page shares: the package and version, and
/// the date of the latest release in the changelog (a fixed date keeps the
/// committed pages reproducible; clap_mangen would otherwise leave the date
/// empty, and roff drops an empty argument, shifting the footer).
fn page(cmd: clap::Command) -> Man {
    Man::new(cmd)
        .date(release_date())
        .source(concat!("aliwatch ", env!("CARGO_PKG_VERSION")))
        .manual("aliwatch manual")
}

/// `YYYY-MM-DD` of the newest entry in `packaging/changelog` (its first
/// ` -- Name <mail>  RFC 2822 date` trailer line).
pub fn release_date() -> String {
    const CHANGELOG: &str = include_str!("../packaging/changelog");
    CHANGELOG
        .lines()
        .find_map(|l| l.strip_prefix(" -- "))
        .and_then(|l| l.split_once(">  "))
        .and_then(|(_, date)| chrono::DateTime::parse_from_rfc2822(date.trim()).ok())
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The top page: clap's sections, then what a man page reader looks for
/// and `--help` has no room for.
fn main_page(cmd: &clap::Command) -> Result<Vec<u8>> {
    let man = page(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    page.extend_from_slice(description_extra().as_bytes());
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.extend_from_slice(main_page_extra().as_bytes());
    man.render_version_section(&mut page)?;
    Ok(page)
}

fn description_extra() -> String {
    Roff::new()
        .control("PP", [])
        .text([roman(
            "aliwatch recognises AliExpress order and shipping emails, extracts order and \
             tracking numbers, tracks every parcel through 17TRACK or Cainiao, keeps its state \
             in a local SQLite database, mails a daily digest and warns before an order's \
             Buyer Protection runs out.",
        )])
        .control("PP", [])
        .text([roman(
            "Global options come before the command. Every command has a page of its own, \
             named in the COMMANDS section below, and prints its options with ",
        )])
        .text([bold("--help"), roman(".")])
        .to_roff()
}

fn main_page_extra() -> String {
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    for (code, what) in [
        ("0", "success"),
        (
            "1",
            "a runtime failure (for sync: a part failed, the others still ran)",
        ),
        ("2", "a command-line usage error"),
        (
            "78",
            "an invalid config; the message names the file, line and column and what to fix",
        ),
    ] {
        r.control("TP", []).text([bold(code)]).text([roman(what)]);
    }
    r.control("SH", ["ENVIRONMENT"]);
    for (var, what) in [
        ("ALIWATCH_CONFIG", "the config file when -c is not given"),
        (
            "ALIWATCH_LOG",
            "the log filter (tracing EnvFilter syntax, e.g. debug) when neither -v nor -q is given; else RUST_LOG",
        ),
        (
            "STATE_DIRECTORY",
            "set by systemd (StateDirectory=): the default database is aliwatch.db in it",
        ),
        (
            "XDG_STATE_HOME",
            "otherwise the default database is $XDG_STATE_HOME/aliwatch/aliwatch.db (~/.local/state/aliwatch/aliwatch.db)",
        ),
        (
            "XDG_CONFIG_HOME",
            "$XDG_CONFIG_HOME/aliwatch/config.toml is the last place a config is looked for",
        ),
        (
            "JOURNAL_STREAM",
            "set by systemd when stderr is the journal: log lines then carry no timestamp and start with their sd-daemon(3) priority",
        ),
    ] {
        r.control("TP", []).text([bold(var)]).text([roman(what)]);
    }
    r.control("SH", ["FILES"]);
    for (file, what) in [
        (
            "/etc/aliwatch/config.toml",
            "the config (TOML); config.example.toml in /usr/share/doc/aliwatch documents every key",
        ),
        (
            "/var/lib/aliwatch/aliwatch.db",
            "the database of the systemd service",
        ),
        (
            "/run/credentials/aliwatch.service/",
            "secrets handed to the service through LoadCredential=",
        ),
        (
            "/usr/share/doc/aliwatch/formats.md",
            "the JSON printed by extract --json and status --json",
        ),
    ] {
        r.control("TP", []).text([italic(file)]).text([roman(what)]);
    }
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("systemctl"),
        roman("(1), "),
        bold("journalctl"),
        roman("(1), "),
        bold("sd_notify"),
        roman("(3); the README in /usr/share/doc/aliwatch."),
    ]);
    r.to_roff()
}

/// One shell's completion script, under the name its shell looks for
/// (`aliwatch.bash`, `_aliwatch`, `aliwatch.fish`).
pub fn completion(shell: Shell, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "aliwatch", &mut script);
    let path = dir.join(shell.file_name("aliwatch"));
    write_file(&path, &script)?;
    Ok(path)
}

fn write_file(path: &Path, content: &[u8]) -> Result<()> {
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(content)
        .with_context(|| format!("writing {}", path.display()))
}
