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
    /// The time limit of every `*_command` (`command_timeout`).
    pub command_timeout: Duration,
    pub timezone: Tz,
    pub imap: Vec<ImapAccount>,
    pub smtp: Option<SmtpConfig>,
    pub tracking: TrackingConfig,
    pub digest: DigestConfig,
    pub protection: ProtectionConfig,
    /// `[http]`: the local web face; `None` without `listen`.
    pub http: Option<HttpConfig>,
    /// `[[notify]]` push channels, in file order.
    pub notify: Vec<NotifyConfig>,
}

/// `[http]` (SPEC §9): where the web face listens and the token every
/// request must carry (required unless `listen` is a loopback address).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: std::net::SocketAddr,
    /// `token_file`; `None` only on a loopback address.
    pub token: Option<Secret>,
}

/// The shortest accepted web token (`openssl rand -hex 32` gives 64).
pub const MIN_TOKEN_CHARS: usize = 16;

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
    /// A candidate email larger than this (bytes, by RFC822.SIZE) is
    /// skipped with a warning; no literal larger than this is read.
    pub max_message_size: u64,
}

/// The default `imap.max_message_size`: AliExpress emails are below 1 MB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 25 * 1024 * 1024;

/// Parses a size: a number of bytes, or a string `"512KB"`, `"25MB"`,
/// `"1GB"` (binary multiples; `K`/`M`/`G` and `KiB`/`MiB`/`GiB` too).
pub fn parse_size(v: &toml::Value) -> Option<u64> {
    match v {
        toml::Value::Integer(n) => u64::try_from(*n).ok(),
        toml::Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: u64 = num.parse().ok()?;
            let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1,
                "k" | "kb" | "kib" => 1 << 10,
                "m" | "mb" | "mib" => 1 << 20,
                "g" | "gb" | "gib" => 1 << 30,
                _ => return None,
            };
            n.checked_mul(mult)
        }
        _ => None,
    }
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

pub use crate::model::{Provider, Providers};

/// `[tracking]`.
#[derive(Debug, Clone)]
pub struct TrackingConfig {
    /// `providers` (or the older single `provider`), in the order asked.
    pub providers: Providers,
    /// 17TRACK's key (`[tracking]` or `[tracking.17track]`).
    pub api_key: Option<Secret>,
    /// Host root for every provider (`[tracking] base_url`, a stand-in in
    /// tests); empty: each provider's own default.
    pub base_url: String,
    /// Host roots from the per-provider tables; they win over `base_url`.
    pub base_urls: Vec<(Provider, String)>,
    pub refresh_interval: Duration,
}

impl TrackingConfig {
    /// One provider, as the older `provider = "…"` wrote it.
    pub fn single(
        provider: Provider,
        api_key: Option<Secret>,
        base_url: String,
        refresh_interval: Duration,
    ) -> TrackingConfig {
        TrackingConfig {
            providers: Providers::new(&[provider]),
            api_key,
            base_url,
            base_urls: Vec::new(),
            refresh_interval,
        }
    }

    /// The host root `provider` is asked at (empty: its default).
    pub fn base_url_for(&self, provider: Provider) -> &str {
        self.base_urls
            .iter()
            .find(|(p, _)| *p == provider)
            .map(|(_, u)| u.as_str())
            .unwrap_or(&self.base_url)
    }
}

/// The kind of a `[[notify]]` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKind {
    /// ntfy: HTTP POST of a plain-text message to a topic URL.
    Ntfy,
    /// A JSON POST per event, signed with HMAC-SHA256 when a secret is set.
    Webhook,
    /// An MQTT broker, with Home Assistant discovery.
    Mqtt,
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Ntfy => "ntfy",
            NotifyKind::Webhook => "webhook",
            NotifyKind::Mqtt => "mqtt",
        }
    }
}

/// One `[[notify]]` table (SPEC §8).
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Unique; the channel's name in the sent-once ledger.
    pub name: String,
    pub kind: NotifyKind,
    /// The topic URL (ntfy) or POST URL (webhook), checked: http(s), a
    /// host, no user name or password in it. Never printed whole: its path
    /// (an ntfy topic, a webhook id) is as good as a password.
    pub url: String,
    /// ntfy: the bearer token; webhook: the HMAC secret.
    pub token: Option<Secret>,
    /// Extra CA certificates (PEM) to trust besides the system's, for a
    /// self-hosted server with its own CA.
    pub ca_file: Option<PathBuf>,
    /// The events it subscribes to, in SPEC order, without repeats.
    pub events: Vec<crate::model::EventKind>,
    /// `file:line` of the table's `type`, for problems found after parsing
    /// (an unreadable `token_file`).
    pub location: String,
    /// `type = "mqtt"` only.
    pub mqtt: Option<MqttSettings>,
}

/// The MQTT settings of a `[[notify]]` table.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    /// `mqtts://` (TLS, verified like IMAP) or `mqtt://`.
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Home Assistant's discovery prefix (`homeassistant`).
    pub discovery_prefix: String,
    /// Where aliwatch's own topics live (`aliwatch`).
    pub topic_prefix: String,
}

impl NotifyConfig {
    /// The URL with its path, query and fragment replaced by `…`: enough
    /// to say where it goes, not enough to publish there.
    pub fn url_redacted(&self) -> String {
        redact_url(&self.url)
    }
}

/// `scheme://host[:port]/…` of a URL (see [`NotifyConfig::url_redacted`]).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{}{port}/…", u.scheme(), u.host_str().unwrap_or(""))
        }
        Err(_) => "<invalid url>".into(),
    }
}

/// `[digest]` (validated: the decision core's own type).
pub type DigestConfig = crate::decide::DigestRules;

/// `[protection]` (validated; thresholds sorted largest first,
/// deduplicated, whole days).
pub type ProtectionConfig = crate::decide::ProtectionRules;

impl Default for TrackingConfig {
    fn default() -> Self {
        // No `[tracking]` table at all: email-only status, as before
        // providers existed (a config that never asked for network
        // traffic does not start making it); a `[tracking]` table without
        // `providers` gets ["cainiao"] (config/raw.rs).
        TrackingConfig {
            providers: Providers::default(),
            api_key: None,
            base_url: String::new(),
            base_urls: Vec::new(),
            refresh_interval: Duration::from_secs(6 * 3600),
        }
    }
}

/// A config error: exits 78.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Why a secret could not be read: a config error (a missing file, an
/// empty secret: exit 78, retrying cannot help) or a command that failed
/// or timed out (exit 1: systemd retries; SPEC §1).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Command(#[from] command::CommandFailed),
}

impl SecretError {
    /// As an `anyhow` error whose [`ConfigError`] `main` still finds (exit
    /// 78), or a plain runtime error (exit 1).
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            SecretError::Config(e) => e.into(),
            SecretError::Command(e) => e.into(),
        }
    }
}

/// What [`Config::check_secrets`] found: config problems (exit 78) and
/// commands that failed or timed out (exit 1).
#[derive(Debug, Default)]
pub struct SecretProblems {
    pub config: Vec<String>,
    pub unavailable: Vec<String>,
}

impl SecretProblems {
    fn push(&mut self, e: SecretError) {
        match e {
            SecretError::Config(e) => self.config.push(e.to_string()),
            SecretError::Command(e) => self.unavailable.push(e.to_string()),
        }
    }
}

impl Config {
    /// The settings the decision core needs, and nothing else.
    pub fn rules(&self) -> crate::decide::Rules {
        crate::decide::Rules {
            timezone: self.timezone,
            digest: self.digest.clone(),
            protection: self.protection.clone(),
            tracking: crate::decide::TrackingRules {
                providers: self.tracking.providers,
                refresh_interval: self.tracking.refresh_interval,
            },
        }
    }

    /// Built-in defaults, used when there is no config file at all.
    pub fn defaults(database: PathBuf) -> Config {
        Config {
            source: None,
            database,
            command_timeout: command::DEFAULT_TIMEOUT,
            timezone: system_timezone(),
            imap: Vec::new(),
            smtp: None,
            tracking: TrackingConfig::default(),
            digest: DigestConfig::default(),
            protection: ProtectionConfig::default(),
            http: None,
            notify: Vec::new(),
        }
    }

    /// Reads, parses and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "{}: cannot read the config file: {e}",
                path.display()
            ))
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` is used in messages and to
    /// resolve relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim_end().to_string();
            match e.span() {
                Some(span) => {
                    let loc = Located { text, path };
                    match explain_serde_error(text, span.start, &msg) {
                        Some((msg, example)) => {
                            ConfigError(loc.message_with_example(span.start, &msg, &example))
                        }
                        None => ConfigError(loc.message(span.start, &msg)),
                    }
                }
                None => ConfigError(format!("{}: {msg}", path.display())),
            }
        })?;
        raw::validate(raw, text, path)
    }

    /// Checks that every secret the config names can be read. Returns one
    /// line per problem (key and path or command, never the secret).
    pub fn check_secrets(&self) -> SecretProblems {
        let mut problems = SecretProblems::default();
        let mut check = |s: &Secret| {
            if let Err(e) = s.resolve() {
                problems.push(e);
            }
        };
        for a in &self.imap {
            match &a.auth {
                ImapAuth::Password(s) => check(s),
                ImapAuth::XOAuth2 { .. } => {}
            }
        }
        if let Some(s) = self.smtp.as_ref().and_then(|s| s.password.as_ref()) {
            check(s);
        }
        if let Some(s) = &self.tracking.api_key {
            check(s);
        }
        if let Some(s) = self.http.as_ref().and_then(|h| h.token.as_ref()) {
            match s.resolve() {
                Err(e) => problems.push(e),
                Ok(t) if t.chars().count() < MIN_TOKEN_CHARS => problems.config.push(format!(
                    "{s}: the token is shorter than {MIN_TOKEN_CHARS} characters; write a long random one, e.g. `openssl rand -hex 32`"
                )),
                Ok(_) => {}
            }
        }
        for n in &self.notify {
            let password = n.mqtt.as_ref().and_then(|m| m.password.as_ref());
            for s in n.token.iter().chain(password) {
                if let Err(e) = s.resolve() {
                    problems.config.push(format!(
                        "{}: [[notify]] {:?}: {e}; create the file or fix the path",
                        n.location, n.name
                    ));
                }
            }
        }
        problems
    }

    /// Warnings about a valid but questionable config (inline secrets, a
    /// world-readable file).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut inline = |s: &Secret| {
            if let Secret::Inline { key, .. } = s {
                out.push(format!(
                    "{key} is inline in the config file; prefer {key}_file (with systemd LoadCredential=) or {key}_command"
                ));
            }
        };
        for a in &self.imap {
            if let ImapAuth::Password(s) = &a.auth {
                inline(s);
            }
        }
        if let Some(s) = self.smtp.as_ref().and_then(|s| s.password.as_ref()) {
            inline(s);
        }
        if let Some(s) = &self.tracking.api_key {
            inline(s);
        }
        for n in &self.notify {
            if let Ok(u) = reqwest::Url::parse(&n.url) {
                let host = u.host_str().unwrap_or("");
                if matches!(u.scheme(), "http" | "mqtt") && !is_loopback_host(host) {
                    // A webhook's secret signs the body and never travels.
                    let secret = (n.kind == NotifyKind::Ntfy && n.token.is_some())
                        || n.mqtt.as_ref().is_some_and(|m| m.password.is_some());
                    out.push(if secret {
                        format!(
                            "[[notify]] {:?} sends its secret and order details to {} without TLS; accepted because {host} is on your local network, use {}s:// if anything between is not yours",
                            n.name,
                            n.url_redacted(),
                            u.scheme()
                        )
                    } else {
                        format!(
                            "[[notify]] {:?} sends to {} without TLS: order details travel unencrypted; prefer https or mqtts",
                            n.name,
                            n.url_redacted()
                        )
                    });
                }
            }
        }
        if let Some(src) = &self.source {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(src) {
                if meta.permissions().mode() & 0o004 != 0 && self.has_inline_secret() {
                    out.push(format!(
                        "{} holds a secret and is readable by every user; chmod 600 it",
                        src.display()
                    ));
                }
            }
        }
        out
    }

    fn has_inline_secret(&self) -> bool {
        let is_inline = |s: &Secret| matches!(s, Secret::Inline { .. });
        self.imap
            .iter()
            .any(|a| matches!(&a.auth, ImapAuth::Password(s) if is_inline(s)))
            || self
                .smtp
                .as_ref()
                .and_then(|s| s.password.as_ref())
                .is_some_and(is_inline)
            || self.tracking.api_key.as_ref().is_some_and(is_inline)
    }

    /// The effective config as TOML, every secret redacted (`check-config`).
    pub fn render_redacted(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        let q = |s: &str| toml_quote(s);
        if let Some(src) = &self.source {
            let _ = writeln!(o, "# effective config from {}", src.display());
        } else {
            let _ = writeln!(o, "# no config file: built-in defaults");
        }
        let _ = writeln!(o, "database = {}", q(&self.database.display().to_string()));
        let _ = writeln!(o, "timezone = {}", q(self.timezone.name()));
        let _ = writeln!(
            o,
            "command_timeout = {}",
            q(&fmt_duration(self.command_timeout))
        );
        for a in &self.imap {
            let _ = writeln!(o, "\n[[imap]]");
            let _ = writeln!(o, "name = {}", q(&a.name));
            let _ = writeln!(o, "host = {}", q(&a.host));
            let _ = writeln!(o, "port = {}", a.port);
            let _ = writeln!(o, "security = {}", q(a.security.as_str()));
            let _ = writeln!(o, "username = {}", q(&a.username));
            match &a.auth {
                ImapAuth::Password(s) => {
                    let _ = writeln!(o, "{s}");
                }
                ImapAuth::XOAuth2 { token_command } => {
                    let _ = writeln!(o, "auth = \"xoauth2\"");
                    let _ = writeln!(o, "oauth2_token_command = {}", q(token_command));
                }
            }
            if let Some(ca) = &a.ca_file {
                let _ = writeln!(o, "ca_file = {}", q(&ca.display().to_string()));
            }
            let boxes: Vec<String> = a.mailboxes.iter().map(|m| q(m)).collect();
            let _ = writeln!(o, "mailboxes = [{}]", boxes.join(", "));
            let _ = writeln!(o, "backfill_days = {}", a.backfill_days);
            let _ = writeln!(o, "idle = {}", a.idle);
            let _ = writeln!(o, "poll_interval = {}", q(&fmt_duration(a.poll_interval)));
            let _ = writeln!(o, "max_message_size = {}", a.max_message_size);
        }
        if let Some(s) = &self.smtp {
            let _ = writeln!(o, "\n[smtp]");
            let _ = writeln!(o, "host = {}", q(&s.host));
            let _ = writeln!(o, "port = {}", s.port);
            let _ = writeln!(o, "security = {}", q(s.security.as_str()));
            if let Some(u) = &s.username {
                let _ = writeln!(o, "username = {}", q(u));
            }
            if let Some(p) = &s.password {
                let _ = writeln!(o, "{p}");
            }
            if let Some(ca) = &s.ca_file {
                let _ = writeln!(o, "ca_file = {}", q(&ca.display().to_string()));
            }
            let _ = writeln!(o, "from = {}", q(&s.from));
            let to: Vec<String> = s.to.iter().map(|m| q(m)).collect();
            let _ = writeln!(o, "to = [{}]", to.join(", "));
        }
        let t = &self.tracking;
        let _ = writeln!(o, "\n[tracking]");
        let _ = writeln!(o, "providers = {}", t.providers.spelled());
        if let Some(k) = &t.api_key {
            let _ = writeln!(o, "{k}");
        }
        if !t.base_url.is_empty() {
            let _ = writeln!(o, "base_url = {}", q(&t.base_url));
        }
        for (p, u) in &t.base_urls {
            let _ = writeln!(o, "# [tracking.{}] base_url = {}", p.as_str(), q(u));
        }
        let _ = writeln!(
            o,
            "refresh_interval = {}",
            q(&fmt_duration(t.refresh_interval))
        );
        let d = &self.digest;
        let _ = writeln!(o, "\n[digest]");
        let _ = writeln!(o, "enabled = {}", d.enabled);
        let _ = writeln!(o, "at = {}", q(&d.at.format("%H:%M").to_string()));
        let _ = writeln!(o, "skip_when_empty = {}", d.skip_when_empty);
        let p = &self.protection;
        let _ = writeln!(o, "\n[protection]");
        let _ = writeln!(o, "days = {}", p.days);
        let warn: Vec<String> = p
            .warn_before_days
            .iter()
            .map(|d| q(&format!("{d}d")))
            .collect();
        let _ = writeln!(o, "warn_before = [{}]", warn.join(", "));
        let _ = writeln!(o, "stalled_after = {}", q(&fmt_duration(p.stalled_after)));
        if let Some(h) = &self.http {
            let _ = writeln!(o, "\n[http]");
            let _ = writeln!(o, "listen = {}", q(&h.listen.to_string()));
            if let Some(t) = &h.token {
                let _ = writeln!(o, "{t}");
            }
        }
        for n in &self.notify {
            let _ = writeln!(o, "\n[[notify]]");
            let _ = writeln!(o, "name = {}", q(&n.name));
            let _ = writeln!(o, "type = {}", q(n.kind.as_str()));
            let _ = writeln!(o, "url = {}  # path redacted", q(&n.url_redacted()));
            if let Some(t) = &n.token {
                let _ = writeln!(o, "{t}");
            }
            if let Some(ca) = &n.ca_file {
                let _ = writeln!(o, "ca_file = {}", q(&ca.display().to_string()));
            }
            if let Some(m) = &n.mqtt {
                if let Some(u) = &m.username {
                    let _ = writeln!(o, "username = {}", q(u));
                }
                if let Some(p) = &m.password {
                    let _ = writeln!(o, "{p}");
                }
                let _ = writeln!(o, "discovery_prefix = {}", q(&m.discovery_prefix));
                let _ = writeln!(o, "topic_prefix = {}", q(&m.topic_prefix));
            }
            let events: Vec<String> = n.events.iter().map(|e| q(e.as_str())).collect();
            let _ = writeln!(o, "events = [{}]", events.join(", "));
        }
        o
    }
}

impl Secret {
    /// Reads the secret: the trimmed file content, or the trimmed stdout of
    /// the command (run once per process, see [`command::run_cached`]).
    /// Errors name the key and the path or command, never the secret or
    /// the command's output.
    pub fn resolve(&self) -> Result<String, SecretError> {
        let value = match self {
            Secret::Inline { value, .. } => value.clone(),
            Secret::File { key, path } => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!(
                        "{key}: cannot read the secret file {}: {e}",
                        path.display()
                    ))
                })?;
                text.trim().to_string()
            }
            Secret::Command { key, command } => {
                command::run_cached(key, command, command::timeout())?
            }
        };
        if value.is_empty() {
            return Err(ConfigError(format!("{}: the secret is empty", self.key())).into());
        }
        Ok(value)
    }

    /// Forgets a command's cached answer after the server refused it, so
    /// the next [`Secret::resolve`] asks the command again.
    pub fn forget(&self) {
        if let Secret::Command { command, .. } = self {
            command::forget(command);
        }
    }

    /// The config key this secret was given under.
    pub fn key(&self) -> &'static str {
        match self {
            Secret::File { key, .. } | Secret::Command { key, .. } | Secret::Inline { key, .. } => {
                key
            }
        }
    }
}

/// Where the config file is: `-c`, else `$ALIWATCH_CONFIG`, else
/// `/etc/aliwatch/config.toml`, else `$XDG_CONFIG_HOME/aliwatch/config.toml`.
/// `Ok(None)` when none was named and no default file exists.
pub fn locate(explicit: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(p) = explicit {
        return Ok(Some(p.to_owned()));
    }
    if let Some(p) = std::env::var_os("ALIWATCH_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(Some(PathBuf::from(p)));
    }
    let etc = PathBuf::from("/etc/aliwatch/config.toml");
    if etc.exists() {
        return Ok(Some(etc));
    }
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(x) = xdg {
        let p = x.join("aliwatch/config.toml");
        if p.exists() {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// The database of the system-wide service, and of every command run with
/// its config.
pub const SYSTEM_DATABASE: &str = "/var/lib/aliwatch/aliwatch.db";

/// The default database of a config file without `database` (SPEC §1, "one
/// state per config"): a function of the config file's path only, never of
/// the environment, so a shell command and the service started by systemd
/// (which adds `STATE_DIRECTORY`) open the same file.
/// - a config under `/etc` (the system service's): `/var/lib/aliwatch/aliwatch.db`,
///   the unit's `StateDirectory=aliwatch`;
/// - any other config: `$XDG_STATE_HOME/aliwatch/aliwatch.db`
///   (`~/.local/state/aliwatch/aliwatch.db`) of the user running it.
pub fn default_database_for(config: &Path) -> PathBuf {
    if is_system_config(config) {
        return PathBuf::from(SYSTEM_DATABASE);
    }
    default_database()
}

/// Whether `path` is a system-wide config (under `/etc`, also through a
/// relative path or a symlinked folder).
fn is_system_config(path: &Path) -> bool {
    let absolute = std::fs::canonicalize(path)
        .ok()
        .or_else(|| std::path::absolute(path).ok())
        .unwrap_or_else(|| path.to_owned());
    absolute.starts_with("/etc")
}

/// The database of the commands run without any config file:
/// `$XDG_STATE_HOME/aliwatch/aliwatch.db` (`~/.local/state/...`).
pub fn default_database() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("aliwatch/aliwatch.db")
}

/// The system's zone: `$TZ` when it names an IANA zone, else the zone of
/// /etc/localtime, else UTC.
pub fn system_timezone() -> Tz {
    if let Ok(tz) = std::env::var("TZ") {
        if let Ok(z) = tz.trim_start_matches(':').parse::<Tz>() {
            return z;
        }
    }
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse::<Tz>().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// Parses `"90s"`, `"5m"`, `"6h"`, `"7d"`, `"1h30m"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut saw_unit = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 7 * 86400,
            _ => return Err(format!("unknown unit {c:?}")),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| "a number must come before each unit".to_string())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or("duration too large")?;
        digits.clear();
        saw_unit = true;
    }
    if !digits.is_empty() || !saw_unit {
        return Err("missing unit (s, m, h, d or w)".into());
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration in the config's own syntax.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    for (unit, secs) in [("d", 86400), ("h", 3600), ("m", 60)] {
        if s.is_multiple_of(secs) {
            return format!("{}{unit}", s / secs);
        }
    }
    format!("{s}s")
}

fn toml_quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Whether `host` is a loopback name or address (where plain text is safe).
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `host` is on the local network, where a home broker or ntfy
/// server usually speaks plain `mqtt://` / `http://` (SPEC §8): a loopback
/// or private address (RFC 1918 10/8, 172.16/12, 192.168/16; RFC 4193
/// fc00::/7; link-local 169.254/16 and fe80::/10, RFC 3927 and RFC 4291) or
/// a name of the local network (`.local`, RFC 6762; `.lan`; `.home.arpa`,
/// RFC 8375). A secret may travel there without TLS (with a warning);
/// anywhere else it may not.
pub fn is_private_host(host: &str) -> bool {
    if is_loopback_host(host) {
        return true;
    }
    let h = host.trim_start_matches('[').trim_end_matches(']');
    match h.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_private() || ip.is_link_local(),
        Ok(std::net::IpAddr::V6(ip)) => {
            let first = ip.segments()[0];
            // fc00::/7 unique local; fe80::/10 link-local
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
        Err(_) => {
            let name = h.trim_end_matches('.').to_ascii_lowercase();
            [".local", ".lan", ".home.arpa"]
                .iter()
                .any(|suffix| name.ends_with(suffix) && name.len() > suffix.len())
        }
    }
}

/// Whether a config key may hold a secret: `password`, `pasword`,
/// `passwd`, `pw`, `api_key`, `token`, `secret`, `*_command`, … Generous on
/// purpose: redacting a harmless value costs nothing.
pub fn secret_looking_key(key: &str) -> bool {
    let k = key.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
    [
        "pas", "pw", "secret", "token", "key", "cred", "auth", "command",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// Whether line `line` (1-based) of `text` holds a secret-looking key, or
/// sits in a table whose name is secret-looking (`[imap.password]`), or
/// continues a multi-line value (a line with no `=` after such a key).
fn secret_line(text: &str, line: usize) -> bool {
    let mut in_secret_table = false;
    let mut in_notify = false;
    let mut last_key_secret = false;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_start();
        if t.starts_with('[') {
            let name = t.trim_matches(|c| c == '[' || c == ']' || c == ' ');
            in_secret_table = name.split('.').any(secret_looking_key);
            in_notify = name == "notify";
            last_key_secret = false;
        } else if let Some((k, _)) = t.split_once('=') {
            // A [[notify]] url is a capability: an ntfy topic or a webhook id.
            last_key_secret = k.split('.').any(secret_looking_key)
                || (in_notify && k.trim().trim_matches(['"', '\'']) == "url");
        } else if t.is_empty() || t.starts_with('#') {
            // keeps the state: a multi-line value may contain blank lines
        }
        if i + 1 == line {
            return in_secret_table || last_key_secret;
        }
    }
    false
}

/// Whether line `line` (1-based) of `text` shows any part of a secret
/// value: known by its position in the document ([`redact`]), or, when
/// the document is not valid TOML, guessed from the keys on the line.
fn line_touches_secret(text: &str, line: usize) -> bool {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let src = text
        .split_inclusive('\n')
        .nth(line.saturating_sub(1))
        .unwrap_or("");
    let end = start + src.len();
    match redact::secret_ranges(text) {
        Some(ranges) => ranges.iter().any(|r| r.start < end && start < r.end),
        None => {
            let (table, _) = key_at(text, line);
            secret_line(text, line) || redact::line_looks_secret(src, &table)
        }
    }
}

/// The source line with its value replaced by `<redacted>`, and the
/// message with every quoted or back-quoted fragment that is not a key
/// name replaced too (toml quotes the offending value in type errors).
fn redact_line(src: &str, msg: &str) -> (String, String) {
    let line = match src.split_once('=') {
        Some((k, _)) => format!("{}= <redacted>", k),
        None => "<redacted>".to_string(),
    };
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(start) = rest.find(['"', '\'']) {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let quote = from.chars().next().unwrap_or('"');
        match from.get(1..).and_then(|r| r.find(quote)) {
            Some(end) => {
                out.push_str("<redacted>");
                rest = from.get(end + 2..).unwrap_or("");
            }
            None => {
                out.push_str("<redacted>");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    // Back-quoted words are key names in toml's messages ("unknown field
    // `pasword`, expected one of `host`, …"); a value in back quotes is a
    // number or a date (`invalid type: integer `1234``): redact those.
    let mut fixed = String::with_capacity(out.len());
    let mut parts = out.split('`');
    if let Some(first) = parts.next() {
        fixed.push_str(first);
    }
    for (i, p) in parts.enumerate() {
        fixed.push('`');
        let inside = i % 2 == 0;
        let identifier = p.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if inside && !identifier {
            fixed.push_str("<redacted>");
        } else {
            fixed.push_str(p);
        }
    }
    (line, fixed)
}

/// The example config, the source of every example value in error messages.
const EXAMPLE_CONFIG: &str = include_str!("../config.example.toml");

/// The example line for `key` in `table` (`""` for the top level) from
/// `config.example.toml`, commented-out lines included, without its
/// trailing comment: `port = 993`.
pub fn example_for(table: &str, key: &str) -> Option<String> {
    let mut current = String::new();
    let mut fallback = None;
    for line in EXAMPLE_CONFIG.lines() {
        let t = line.trim_start_matches(['#', ' ']).trim_end();
        if let Some(h) = t.strip_prefix('[') {
            if !line.starts_with('#') {
                current = h.trim_matches(['[', ']']).trim().to_string();
            }
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            continue;
        };
        if k.trim() != key || v.trim().is_empty() {
            continue;
        }
        // The value, without a trailing `   # comment` (values hold no "  #").
        let v = v.split("  #").next().unwrap_or(v).trim();
        let found = format!("{key} = {v}");
        if current == table {
            return Some(found);
        }
        fallback.get_or_insert(found);
    }
    fallback
}

/// The table (`imap`, `""` at the top) line `line` (1-based) is in, and the
/// key it sets (the last key above it for a continued value).
fn key_at(text: &str, line: usize) -> (String, Option<String>) {
    let mut table = String::new();
    let mut key = None;
    for (i, l) in text.lines().enumerate().take(line) {
        let t = l.trim();
        if t.starts_with('[') {
            table = t.trim_matches(['[', ']', ' ']).to_string();
            key = None;
        } else if let Some((k, _)) = t.split_once('=') {
            if !t.starts_with('#') {
                key = Some(k.trim().trim_matches(['"', '\'']).to_string());
            }
        }
        if i + 1 == line && t.starts_with('[') {
            key = None;
        }
    }
    (table, key)
}

/// What a serde type word means to someone writing TOML.
fn toml_kind(serde: &str) -> String {
    let s = serde.trim();
    match s {
        "string" | "a string" => "a string in quotes".into(),
        "integer" => "a number".into(),
        "i64" | "i32" | "u64" | "u32" | "u16" | "u8" | "an integer" => "a whole number".into(),
        "boolean" | "a boolean" => "true or false".into(),
        "floating point" => "a decimal number".into(),
        "sequence" | "a sequence" => "a list in brackets".into(),
        "map" | "a map" => "a table".into(),
        _ if s.starts_with("struct ") => "a table".into(),
        _ if s.starts_with("a ") || s.starts_with("an ") => s.to_string(),
        _ => format!("a {s}"),
    }
}

/// Rewrites serde's type errors ("invalid type: integer `1`, expected a
/// string", "missing field `host`") into one that names the key, what was
/// expected and what was found, and gives an example line from
/// `config.example.toml`. The value found is never repeated (it may be a
/// secret; the source line below the message shows it, redacted where it
/// is one). `None` for messages that already say what to do.
fn explain_serde_error(text: &str, offset: usize, msg: &str) -> Option<(String, String)> {
    let before = text.get(..offset.min(text.len())).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let (table, key) = key_at(text, line);
    // Back-quoted plain names survive the redaction of secret lines;
    // `imap.password` would not.
    let path = |key: &str| {
        if table.is_empty() {
            format!("`{key}`")
        } else {
            format!("`{key}` in [{table}]")
        }
    };
    // An inline secret has no example: point at its `_file` form.
    let example = |key: &str| {
        example_for(&table, key)
            .or_else(|| example_for(&table, &format!("{key}_file")))
            .map(|e| format!("for example: {e}"))
            .unwrap_or_default()
    };
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let missing = rest.split('`').next()?;
        let what = if table.is_empty() {
            format!("the key `{missing}` is missing")
        } else {
            format!("[{table}] needs the key `{missing}`")
        };
        return Some((
            format!("missing field `{missing}`: {what}"),
            example(missing),
        ));
    }
    let rest = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))?;
    let (found, expected) = rest.split_once(", expected ")?;
    let found = found.split(['`', '"', '\'']).next().unwrap_or(found).trim();
    let key = key?;
    Some((
        format!(
            "invalid type for {}: expected {}, found {}",
            path(&key),
            toml_kind(expected),
            toml_kind(found)
        ),
        example(&key),
    ))
}

/// Turns byte offsets into `file:line:column` messages.
struct Located<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Located<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = self.text.get(..offset.min(self.text.len())).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// [`Located::message`] with a line of advice after the source line;
    /// the advice comes from aliwatch itself, so it is never redacted.
    fn message_with_example(&self, offset: usize, msg: &str, example: &str) -> String {
        let m = self.message(offset, msg);
        if example.is_empty() {
            m
        } else {
            format!("{m}\n    {example}")
        }
    }

    fn message(&self, offset: usize, msg: &str) -> String {
        let (line, col) = self.line_col(offset);
        let src = self.text.lines().nth(line - 1).unwrap_or("");
        // A secret (or a misspelt secret key) never reaches the message:
        // it goes to the terminal or, under systemd, to the journal.
        let (src, msg) = if line_touches_secret(self.text, line) {
            redact_line(src, msg)
        } else {
            (src.to_string(), msg.to_string())
        };
        format!(
            "{}:{line}:{col}: {msg}\n    {line} | {src}\n    {} | {}^",
            self.path.display(),
            " ".repeat(line.to_string().len()),
            " ".repeat(col.saturating_sub(1))
        )
    }
}

pub mod command;
mod raw;
mod redact;
#[cfg(test)]
mod tracking_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 21: the usual Home Assistant broker (the Mosquitto add-on on
    /// the LAN, plain mqtt:// with a password) was refused.
    #[test]
    fn lan_hosts_are_private_and_public_ones_are_not() {
        for host in [
            "localhost",
            "127.0.0.1",
            "[::1]",
            "10.0.0.5",
            "172.16.1.1",
            "172.31.255.1",
            "192.168.1.10",
            "169.254.3.4",
            "[fd12:3456::1]",
            "[fe80::1]",
            "homeassistant.local",
            "ha.lan",
            "broker.home.arpa",
            "HA.LOCAL.",
        ] {
            assert!(is_private_host(host), "{host}");
        }
        for host in [
            "8.8.8.8",
            "172.32.0.1",
            "[2001:db8::1]",
            "example.com",
            "local",
            "lan",
            "evil.local.example.com",
            "ntfy.sh",
        ] {
            assert!(!is_private_host(host), "{host}");
        }
    }

    /// Issue 19: the service (STATE_DIRECTORY set by systemd) and a shell
    /// with the same config used two different databases.
    #[test]
    fn the_default_database_follows_the_config_file_not_the_environment() {
        assert_eq!(
            default_database_for(Path::new("/etc/aliwatch/config.toml")),
            PathBuf::from(SYSTEM_DATABASE)
        );
        let home = default_database();
        assert_eq!(
            default_database_for(Path::new("/home/me/aliwatch.toml")),
            home
        );
        assert_eq!(default_database(), home);
        assert!(!is_system_config(Path::new("/etcetera/a.toml")));
        // The environment of a systemd service does not enter into it.
        let text = "timezone = \"UTC\"\n";
        let cfg = Config::parse(text, Path::new("/etc/aliwatch/config.toml")).expect("parses");
        assert_eq!(cfg.database, PathBuf::from("/var/lib/aliwatch/aliwatch.db"));
    }

    fn error(text: &str) -> String {
        match Config::parse(text, Path::new("/etc/aliwatch/c.toml")) {
            Ok(_) => panic!("parsed: {text}"),
            Err(e) => e.0,
        }
    }

    const IMAP: &str = "[imap]\nhost = \"127.0.0.1\"\nsecurity = \"plain\"\nusername = \"me\"\npassword_file = \"/p\"\n";

    /// Every serde type error names the key, what was expected and what
    /// was found, with file:line:column and an example line.
    #[test]
    fn type_errors_name_the_key_what_was_expected_and_an_example() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "timezone = 5\n",
                "c.toml:1:12",
                &["invalid type for `timezone`: expected a string in quotes, found a number", "for example: timezone = \"Europe/Berlin\""],
            ),
            (
                "port = \"993\"\n",
                "c.toml:6:8",
                &["invalid type for `port` in [imap]: expected a whole number, found a string in quotes", "for example: port = 993"],
            ),
            (
                "idle = \"yes\"\n",
                "c.toml:6:8",
                &["`idle` in [imap]: expected true or false", "for example: idle = true"],
            ),
            (
                "mailboxes = \"INBOX\"\n",
                "c.toml:6:13",
                &["`mailboxes` in [imap]: expected a list in brackets, found a string in quotes", "for example: mailboxes = [\"INBOX\"]"],
            ),
            (
                "backfill_days = 1.5\n",
                "c.toml:6:17",
                &["`backfill_days` in [imap]: expected a whole number, found a decimal number", "for example: backfill_days = 90"],
            ),
            (
                "[smtp]\nhost = \"127.0.0.1\"\nsecurity = \"plain\"\nfrom = \"a@b\"\nto = \"a@b\"\n",
                "c.toml:10:6",
                &["`to` in [smtp]: expected a list in brackets", "for example: to = [\"me@example.com\"]"],
            ),
            (
                "[smtp]\nhost = \"127.0.0.1\"\nsecurity = \"plain\"\nto = [\"a@b\"]\n",
                "c.toml:6:1",
                &["[smtp] needs the key `from`", "for example: from = \"aliwatch <me@example.com>\""],
            ),
            (
                "[digest]\nenabled = 1\n",
                "c.toml:7:11",
                &["`enabled` in [digest]: expected true or false, found a number", "for example: enabled = true"],
            ),
            (
                "[protection]\nwarn_before = \"7d\"\n",
                "c.toml:7:15",
                &["`warn_before` in [protection]: expected a list in brackets", "for example: warn_before = [\"7d\", \"2d\"]"],
            ),
        ];
        for (tail, at, wants) in cases {
            let text = if tail.starts_with("timezone") {
                tail.to_string()
            } else {
                format!("{IMAP}{tail}")
            };
            let e = error(&text);
            assert!(e.contains(at), "{tail}: want {at} in {e}");
            for want in *wants {
                assert!(e.contains(want), "{tail}: want {want:?} in\n{e}");
            }
        }
    }

    /// A type error on a secret line still names the key and gives an
    /// example, and never shows the value.
    #[test]
    fn type_errors_on_secret_lines_stay_redacted_with_their_example() {
        let text = format!("{IMAP}password_command = 4242424242\n");
        let e = error(&text);
        assert!(e.contains("c.toml:6:20"), "{e}");
        assert!(
            e.contains("invalid type for `password_command` in [imap]: expected a string in quotes, found a number"),
            "{e}"
        );
        assert!(
            e.contains("for example: password_command = \"pass show mail/imap\""),
            "{e}"
        );
        assert!(!e.contains("4242"), "{e}");
        let e = error(&format!("{IMAP}password = 4242424242\n"));
        assert!(e.contains("invalid type for `password` in [imap]"), "{e}");
        assert!(
            e.contains("for example: password_file = \"/run/credentials/"),
            "{e}"
        );
        assert!(!e.contains("4242"), "{e}");
    }

    /// Every key of the config has an example line in config.example.toml
    /// for its messages, and the example type-checks.
    #[test]
    fn every_key_has_an_example_in_the_example_config() {
        let keys: &[(&str, &[&str])] = &[
            ("", &["database", "timezone", "command_timeout"]),
            (
                "imap",
                &[
                    "name",
                    "host",
                    "port",
                    "security",
                    "username",
                    "password_file",
                    "password_command",
                    "auth",
                    "oauth2_token_command",
                    "ca_file",
                    "mailboxes",
                    "backfill_days",
                    "idle",
                    "poll_interval",
                    "max_message_size",
                ],
            ),
            (
                "smtp",
                &[
                    "host",
                    "port",
                    "security",
                    "username",
                    "password_file",
                    "ca_file",
                    "from",
                    "to",
                ],
            ),
            (
                "tracking",
                &["providers", "api_key_file", "base_url", "refresh_interval"],
            ),
            ("digest", &["enabled", "at", "skip_when_empty"]),
            ("protection", &["days", "warn_before", "stalled_after"]),
        ];
        for (table, names) in keys {
            for key in *names {
                let e = example_for(table, key)
                    .unwrap_or_else(|| panic!("no example for {table}.{key}"));
                let doc = if table.is_empty() {
                    e.clone()
                } else {
                    format!("[{table}]\n{e}\n")
                };
                assert!(
                    toml::from_str::<toml::Table>(&doc).is_ok(),
                    "{table}.{key}: {e}"
                );
            }
        }
    }
}
