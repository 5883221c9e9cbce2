//! The command line (SPEC §1): global options before the command, one
//! subcommand per verb. Parsing only; `app.rs` carries the commands out.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{ArgGroup, Parser, Subcommand};

/// Watches your IMAP inbox for AliExpress orders, tracks every parcel and
/// warns you before Buyer Protection runs out.
#[derive(Debug, Parser)]
#[command(name = "aliwatch", version, about, long_about = None)]
pub struct Cli {
    /// Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml,
    /// $XDG_CONFIG_HOME/aliwatch/config.toml).
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Database file (overrides the config's `database`).
    #[arg(long = "database", value_name = "FILE", global = true)]
    pub database: Option<PathBuf>,

    /// More log output (-v debug, -vv trace).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Less log output (-q warnings and errors only, -qq errors only).
    #[arg(short = 'q', long = "quiet", action = clap::ArgAction::Count, global = true)]
    pub quiet: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: watch every mailbox, track parcels, send warnings and the
    /// daily digest until SIGTERM/SIGINT.
    Run,
    /// One pass of everything that is due now, then exit.
    Sync,
    /// Validate the config and print it with secrets redacted.
    CheckConfig {
        /// Also log in to IMAP, SMTP and the tracking API and report each.
        #[arg(long)]
        connect: bool,
    },
    /// Offline: classify and extract .eml files (no config, no database).
    Extract {
        /// One JSON object per file, one per line; the fields are described
        /// in docs/formats.md (installed in /usr/share/doc/aliwatch/).
        #[arg(long)]
        json: bool,
        /// The .eml files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Feed .eml files, Maildir folders, mbox files or directories of them
    /// through the pipeline (idempotent).
    Import {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Orders and parcels (active ones unless --all).
    Status {
        /// One JSON document instead of the table; the fields are described
        /// in docs/formats.md (installed in /usr/share/doc/aliwatch/).
        #[arg(long)]
        json: bool,
        /// Include completed orders, with why and when they completed.
        #[arg(long)]
        all: bool,
        /// One line per parcel with every column in full, whatever the
        /// terminal's width (the default fits 80 columns, or the terminal).
        #[arg(long, conflicts_with = "json")]
        wide: bool,
    },
    /// Print the calendar feed of Buyer Protection deadlines (iCalendar,
    /// the same as the web face's /calendar.ics).
    Calendar,
    /// Render the digest now.
    #[command(group(ArgGroup::new("mode").required(true).args(["print", "send"])))]
    Digest {
        /// Write its text part to stdout.
        #[arg(long)]
        print: bool,
        /// Mail it and record it as today's digest.
        #[arg(long)]
        send: bool,
    },
    /// Track a parcel by hand. The number must be of a format aliwatch
    /// knows and pass its check digit; an order number is refused.
    Add {
        #[arg(value_name = "TRACKING_NUMBER")]
        tracking_number: String,
        /// The order the parcel belongs to (one an email named, unless
        /// --create).
        #[arg(long, value_name = "ORDER_ID")]
        order: Option<String>,
        /// Record the --order even though no email named it.
        #[arg(long, requires = "order")]
        create: bool,
        /// Accept a carrier format aliwatch does not know (a failing check
        /// digit is still refused).
        #[arg(long)]
        force: bool,
    },
    /// Record a protection extension granted by the seller.
    #[command(group(ArgGroup::new("how").required(true).args(["extend", "until"])))]
    Protection {
        #[arg(value_name = "ORDER_ID")]
        order_id: String,
        /// Add DAYS to the current end.
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=365))]
        extend: Option<u32>,
        /// Set the end date (never earlier than the current one).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
        until: Option<NaiveDate>,
    },
    /// You confirmed receipt: stop tracking and warning for this order.
    Done {
        #[arg(value_name = "ORDER_ID")]
        order_id: String,
    },
    /// Stop asking the tracking provider about this order's parcels (its
    /// protection deadline and warnings go on).
    Untrack {
        #[arg(value_name = "ORDER_ID")]
        order_id: String,
    },
    /// A first look: build a demo database from example emails embedded in
    /// aliwatch (dated relative to today) and serve its dashboard until
    /// Ctrl-C. Sends nothing; never touches your database (--database
    /// names a new file to keep it, else a temporary one is used).
    Demo {
        /// Where the dashboard listens.
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8787")]
        listen: std::net::SocketAddr,
    },
    /// Write the man pages and shell completions (for packagers).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
}

/// What `aliwatch generate` writes.
#[derive(Debug, Subcommand)]
pub enum Generate {
    /// aliwatch.1 and one page per command into DIR.
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// The completion script for SHELL into DIR.
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Man pages into DIR/man, bash, zsh and fish completions into
    /// DIR/completions (`aliwatch generate all docs` refreshes the
    /// committed ones).
    All {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date; write YYYY-MM-DD"))
}
