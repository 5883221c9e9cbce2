//! Logging setup: the one `tracing` subscriber of the process. Owns where
//! log lines go (stderr), the level (`-v`/`-q`, else `ALIWATCH_LOG` or
//! `RUST_LOG`), and how a line looks: with timestamps and colours on a
//! terminal; under journald without timestamps (journald adds its own) and
//! with the sd-daemon(3) priority prefix (`<3>` error, `<4>` warn, `<6>`
//! info, `<7>` debug and trace) so that `journalctl -p warning` works.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self as tsfmt, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Installs the subscriber. Level from -v/-q, or `ALIWATCH_LOG`/`RUST_LOG`
/// (tracing `EnvFilter` syntax) when neither is given.
pub fn init(verbose: u8, quiet: u8) {
    let level = match (verbose, quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let filter = std::env::var("ALIWATCH_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .filter(|_| verbose == 0 && quiet == 0)
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(format!("warn,aliwatch={level}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if stderr_is_journal() {
        let format = JournalPrefix(tsfmt::format().without_time().with_target(false));
        let _ = builder.with_ansi(false).event_format(format).try_init();
    } else {
        let _ = builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init();
    }
}

/// The sd-daemon(3) priority for a tracing level (syslog numbering).
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Whether stderr is a journald stream. systemd sets `JOURNAL_STREAM` to
/// the device and inode of the stream it connected (systemd.exec(5)), and
/// children inherit the variable even when their stderr goes elsewhere
/// (`aliwatch status > file` from a unit's shell, a pipe), so the variable
/// counts only when it names stderr itself.
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some(value) = value.to_str() else {
        return false;
    };
    match stderr_dev_ino() {
        Some((dev, ino)) => journal_stream_names(value, dev, ino),
        None => false,
    }
}

/// `JOURNAL_STREAM` is `DEVICE:INODE`, both decimal.
pub fn journal_stream_names(value: &str, dev: u64, ino: u64) -> bool {
    let parsed = value
        .split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)));
    parsed == Some((dev, ino))
}

/// fstat(2) of stderr, through a duplicate of the descriptor (std has no
/// safe fstat on a borrowed fd; closing the duplicate leaves stderr open).
fn stderr_dev_ino() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Formats an event with the inner format and puts `<N>` in front of every
/// line of it: journald reads the prefix per line, and a continuation line
/// without one would be filed at the default priority (info).
struct JournalPrefix<F>(F);

impl<S, N, F> FormatEvent<S, N> for JournalPrefix<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&prefix_lines(priority(*event.metadata().level()), &line))
    }
}

/// `<N>` before every line of `text`. The level word is kept (it is what
/// `journalctl -o cat` and grep show) without the padding that aligns it
/// on a terminal.
pub fn prefix_lines(priority: u8, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for (i, line) in text.lines().enumerate() {
        let line = if i == 0 { line.trim_start() } else { line };
        let _ = writeln!(out, "<{priority}>{line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
        assert_eq!(priority(Level::TRACE), 7);
    }

    #[test]
    fn every_line_of_a_multi_line_event_carries_the_priority() {
        assert_eq!(
            prefix_lines(
                3,
                " ERROR mail sync failed: login rejected\n  caused by: x\n"
            ),
            "<3>ERROR mail sync failed: login rejected\n<3>  caused by: x\n"
        );
    }

    #[test]
    fn journal_stream_must_name_stderr_itself() {
        assert!(journal_stream_names("8:1234", 8, 1234));
        assert!(!journal_stream_names("8:1234", 8, 1235));
        assert!(!journal_stream_names("8:1234", 9, 1234));
        assert!(!journal_stream_names("", 8, 1234));
        assert!(!journal_stream_names("8", 8, 1234));
        assert!(!journal_stream_names("x:y", 8, 1234));
    }
}
