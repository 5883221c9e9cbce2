//! Configuration: the TOML file (SPEC §2), parsed into `raw` structs that
//! mirror the file, then validated into typed values (durations, times of
//! day, IANA zones, addresses). Parse, then validate (ripgrep's
//! lowargs/hiargs split): every error names the file, the line and column
//! where there is one, and what to fix; the binary exits 78 on it.
//!
//! Secrets are not read here; a [`Secret`] says where the secret lives and
//! is resolved only by the command that needs it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (`None`: no config file, defaults only).
    pub source: Option<PathBuf>,
    pub database: PathBuf,
    pub timezone: Tz,
    pub imap: Vec<ImapAccount>,
    pub smtp: Option<SmtpConfig>,
    pub tracking: TrackingConfig,
    pub digest: DigestConfig,
    pub protection: ProtectionConfig,
}

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Implicit TLS from the first byte.
    Tls,
    /// Plain connection upgraded with STARTTLS (required, never optional).
    StartTls,
    /// No TLS; allowed towards loopback hosts only.
    Plain,
}

impl Security {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Tls => "tls",
            Security::StartTls => "starttls",
            Security::Plain => "plain",
        }
    }
}

/// Where a secret comes from. Never printed: `Debug` and `Display` redact.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A file whose trimmed content is the secret.
    File { key: &'static str, path: PathBuf },
    /// A shell command whose trimmed stdout is the secret.
    Command { key: &'static str, command: String },
    /// Inline in the config file (accepted, with a warning).
    Inline { key: &'static str, value: String },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::File { key, path } => write!(f, "{key} = {:?}", path.display().to_string()),
            Secret::Command { key, command } => write!(f, "{key} = {command:?}"),
            Secret::Inline { key, .. } => write!(f, "{key} = \"<redacted>\""),
        }
    }
}

/// IMAP authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImapAuth {
    /// LOGIN / AUTHENTICATE PLAIN with a password.
    Password(Secret),
    /// AUTHENTICATE XOAUTH2 with a token printed by a command.
    XOAuth2 { token_command: String },
}

/// One IMAP account (`[imap]` or each `[[imap]]`).
#[derive(Debug, Clone)]
pub struct ImapAccount {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub auth: ImapAuth,
    pub ca_file: Option<PathBuf>,
    pub mailboxes: Vec<String>,
    pub backfill_days: u32,
    pub idle: bool,
    pub poll_interval: Duration,
}

/// `[smtp]`.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    /// The From header, as written (`"aliwatch <me@example.com>"`).
    pub from: String,
    pub to: Vec<String>,
}

/// `tracking.provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    SeventeenTrack,
    Cainiao,
    None,
}

impl Provider {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::SeventeenTrack => "17track",
            Provider::Cainiao => "cainiao",
            Provider::None => "none",
        }
    }
}

/// `[tracking]`.
#[derive(Debug, Clone)]
pub struct TrackingConfig {
    pub provider: Provider,
    pub api_key: Option<Secret>,
    /// Host root; the client appends the provider's paths.
    pub base_url: String,
    pub refresh_interval: Duration,
}

/// `[digest]`.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    pub enabled: bool,
    pub at: NaiveTime,
    pub skip_when_empty: bool,
}

/// `[protection]`.
#[derive(Debug, Clone)]
pub struct ProtectionConfig {
    pub days: u32,
    /// Sorted largest first, deduplicated, whole days.
    pub warn_before_days: Vec<u32>,
    pub stalled_after: Duration,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            provider: Provider::None,
            api_key: None,
            base_url: String::new(),
            refresh_interval: Duration::from_secs(6 * 3600),
        }
    }
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            enabled: true,
            at: NaiveTime::from_hms_opt(8, 0, 0).expect("08:00 is a time"),
            skip_when_empty: true,
        }
    }
}

impl Default for ProtectionConfig {
    fn default() -> Self {
        ProtectionConfig {
            days: 60,
            warn_before_days: vec![7, 2],
            stalled_after: Duration::from_secs(10 * 86400),
        }
    }
}

/// A config error: exits 78.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Built-in defaults, used when there is no config file at all.
    pub fn defaults(database: PathBuf) -> Config {
        Config {
            source: None,
            database,
            timezone: chrono_tz::UTC,
            imap: Vec::new(),
            smtp: None,
            tracking: TrackingConfig::default(),
            digest: DigestConfig::default(),
            protection: ProtectionConfig::default(),
        }
    }

    /// Loads and validates `path` (skeleton; replaced by the real loader).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Err(ConfigError(format!("{}: config loading not implemented yet", path.display())))
    }
}
