//! The config file as written (serde, `deny_unknown_fields`), and its
//! validation into [`super::Config`]. Values that need checking beyond
//! their TOML type are `Spanned`, so a bad value is reported at its own
//! line and column.

use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::*;

type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    database: Option<S<String>>,
    timezone: Option<S<String>>,
    command_timeout: Option<S<String>>,
    #[serde(default)]
    imap: OneOrMany,
    smtp: Option<S<RawSmtp>>,
    tracking: Option<S<RawTracking>>,
    digest: Option<RawDigest>,
    protection: Option<RawProtection>,
    http: Option<S<RawHttp>>,
    #[serde(default)]
    notify: Vec<RawNotify>,
}

/// `[imap]` (one table) or `[[imap]]` (an array of tables).
#[derive(Debug, Default)]
struct OneOrMany(Vec<RawImap>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an [imap] table or [[imap]] tables")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OneOrMany, A::Error> {
                let one: RawImap =
                    Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(OneOrMany(vec![one]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<OneOrMany, A::Error> {
                let many: Vec<RawImap> =
                    Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(OneOrMany(many))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImap {
    name: Option<S<String>>,
    host: S<String>,
    port: Option<S<i64>>,
    security: Option<S<String>>,
    username: S<String>,
    password: Option<String>,
    password_file: Option<S<String>>,
    password_command: Option<S<String>>,
    auth: Option<S<String>>,
    oauth2_token_command: Option<S<String>>,
    ca_file: Option<S<String>>,
    mailboxes: Option<S<Vec<String>>>,
    backfill_days: Option<S<i64>>,
    idle: Option<bool>,
    poll_interval: Option<S<String>>,
    max_message_size: Option<S<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: S<String>,
    port: Option<S<i64>>,
    security: Option<S<String>>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<S<String>>,
    password_command: Option<S<String>>,
    ca_file: Option<S<String>>,
    from: S<String>,
    to: S<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTracking {
    /// The older single-provider form, still accepted.
    provider: Option<S<String>>,
    providers: Option<S<Vec<String>>>,
    api_key: Option<String>,
    api_key_file: Option<S<String>>,
    api_key_command: Option<S<String>>,
    base_url: Option<S<String>>,
    refresh_interval: Option<S<String>>,
    cainiao: Option<S<RawProviderTable>>,
    #[serde(rename = "17track")]
    seventeen: Option<S<RawProviderTable>>,
}

/// `[tracking.cainiao]`, `[tracking.17track]`: one provider's own settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProviderTable {
    api_key: Option<String>,
    api_key_file: Option<S<String>>,
    api_key_command: Option<S<String>>,
    base_url: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDigest {
    enabled: Option<bool>,
    at: Option<S<String>>,
    skip_when_empty: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtection {
    days: Option<S<i64>>,
    warn_before: Option<S<Vec<String>>>,
    stalled_after: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<S<String>>,
    token_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    name: Option<S<String>>,
    #[serde(rename = "type")]
    kind: S<String>,
    url: S<String>,
    token_file: Option<S<String>>,
    ca_file: Option<S<String>>,
    events: Option<S<Vec<String>>>,
    // mqtt only
    username: Option<S<String>>,
    password_file: Option<S<String>>,
    discovery_prefix: Option<S<String>>,
    topic_prefix: Option<S<String>>,
}

struct Ctx<'a> {
    loc: Located<'a>,
    dir: PathBuf,
}

impl Ctx<'_> {
    fn err<T>(&self, span: std::ops::Range<usize>, msg: impl AsRef<str>) -> Result<T, ConfigError> {
        Err(ConfigError(self.loc.message(span.start, msg.as_ref())))
    }

    fn path(&self, v: &S<String>) -> PathBuf {
        let p = PathBuf::from(v.get_ref());
        if p.is_relative() {
            self.dir.join(p)
        } else {
            p
        }
    }

    fn duration(&self, v: &S<String>, key: &str) -> Result<Duration, ConfigError> {
        parse_duration(v.get_ref()).or_else(|e| {
            self.err(
                v.span(),
                format!(
                    "{key}: {e} in {:?}; write a duration like \"90s\", \"5m\", \"6h\" or \"7d\"",
                    v.get_ref()
                ),
            )
        })
    }

    fn security(&self, v: Option<&S<String>>, default: Security) -> Result<Security, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        match v.get_ref().as_str() {
            "tls" => Ok(Security::Tls),
            "starttls" => Ok(Security::StartTls),
            "plain" => Ok(Security::Plain),
            other => self.err(
                v.span(),
                format!("security: {other:?} is not one of \"tls\", \"starttls\", \"plain\""),
            ),
        }
    }

    fn port(&self, v: Option<&S<i64>>, default: u16) -> Result<u16, ConfigError> {
        match v {
            None => Ok(default),
            Some(p) => match u16::try_from(*p.get_ref()) {
                Ok(n) if n > 0 => Ok(n),
                _ => self.err(p.span(), "port: must be between 1 and 65535"),
            },
        }
    }

    fn host(
        &self,
        v: &S<String>,
        security: Security,
        sec_span: Option<&S<String>>,
    ) -> Result<String, ConfigError> {
        let h = v.get_ref().trim();
        if h.is_empty() || h.contains(char::is_whitespace) || h.contains('/') {
            return self.err(v.span(), "host: must be a host name or IP address");
        }
        if security == Security::Plain && !is_loopback_host(h) {
            let span = sec_span.map_or(v.span(), |s| s.span());
            return self.err(
                span,
                format!("security = \"plain\" sends the password unencrypted; it is allowed only towards a loopback host (localhost, 127.0.0.1, ::1), not {h:?}: use \"tls\" or \"starttls\""),
            );
        }
        Ok(h.to_string())
    }

    /// Exactly zero or one of `key`, `key_file`, `key_command`.
    fn secret(
        &self,
        key: &'static str,
        inline: Option<&String>,
        file: Option<&S<String>>,
        command: Option<&S<String>>,
        table_span: std::ops::Range<usize>,
    ) -> Result<Option<Secret>, ConfigError> {
        let n = inline.is_some() as u8 + file.is_some() as u8 + command.is_some() as u8;
        if n > 1 {
            return self.err(
                table_span,
                format!("give only one of {key}, {key}_file and {key}_command"),
            );
        }
        Ok(if let Some(v) = inline {
            Some(Secret::Inline {
                key,
                value: v.clone(),
            })
        } else if let Some(f) = file {
            Some(Secret::File {
                key: file_key(key),
                path: self.path(f),
            })
        } else {
            command.map(|c| Secret::Command {
                key: command_key(key),
                command: c.get_ref().clone(),
            })
        })
    }
}

fn file_key(key: &str) -> &'static str {
    match key {
        "password" => "password_file",
        "api_key" => "api_key_file",
        "token" => "token_file",
        _ => "secret_file",
    }
}

fn command_key(key: &str) -> &'static str {
    match key {
        "password" => "password_command",
        "api_key" => "api_key_command",
        _ => "secret_command",
    }
}

pub(super) fn validate(raw: RawConfig, text: &str, path: &Path) -> Result<Config, ConfigError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let cx = Ctx {
        loc: Located { text, path },
        dir,
    };

    let database = validate_database(&cx, raw.database.as_ref())?;
    let command_timeout = match &raw.command_timeout {
        None => command::DEFAULT_TIMEOUT,
        Some(t) => {
            let d = cx.duration(t, "command_timeout")?;
            if d < Duration::from_secs(1) || d > Duration::from_secs(600) {
                return cx.err(
                    t.span(),
                    "command_timeout: must be between \"1s\" and \"10m\"",
                );
            }
            d
        }
    };
    command::set_timeout(command_timeout);
    let timezone = validate_timezone(&cx, raw.timezone.as_ref())?;
    let imap = validate_imap(&cx, &raw.imap.0)?;
    let smtp = match &raw.smtp {
        None => None,
        Some(spanned) => Some(validate_smtp(&cx, spanned)?),
    };
    let tracking = match &raw.tracking {
        None => TrackingConfig::default(),
        Some(spanned) => validate_tracking(&cx, spanned)?,
    };
    let digest = match &raw.digest {
        None => DigestConfig::default(),
        Some(d) => validate_digest(&cx, d)?,
    };
    let protection = match &raw.protection {
        None => ProtectionConfig::default(),
        Some(p) => validate_protection(&cx, p)?,
    };
    let mut notify: Vec<NotifyConfig> = Vec::new();
    for n in &raw.notify {
        let channel = validate_notify(&cx, n, &notify)?;
        notify.push(channel);
    }

    let http = match &raw.http {
        None => None,
        Some(h) => validate_http(&cx, h)?,
    };

    Ok(Config {
        source: Some(path.to_owned()),
        database,
        command_timeout,
        timezone,
        imap,
        smtp,
        tracking,
        digest,
        protection,
        http,
        notify,
    })
}

/// Checks `[http]`: `listen` is `IP:PORT` (or `localhost:PORT`); anything
/// but a loopback address needs `token_file` (SPEC §9).
fn validate_http(cx: &Ctx, spanned: &S<RawHttp>) -> Result<Option<HttpConfig>, ConfigError> {
    let h = spanned.get_ref();
    let Some(listen) = &h.listen else {
        if h.token_file.is_some() {
            return cx.err(
                spanned.span(),
                "[http] has token_file but no listen; add listen = \"127.0.0.1:8787\" to turn the web face on",
            );
        }
        return Ok(None);
    };
    let text = listen.get_ref().trim();
    let addr = match text.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .ok()
            .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p))),
        None => text.parse::<std::net::SocketAddr>().ok(),
    };
    let Some(addr) = addr else {
        return cx.err(
            listen.span(),
            format!("listen: {text:?} is not an address and port; write e.g. \"127.0.0.1:8787\" or \"[::1]:8787\""),
        );
    };
    let token = h.token_file.as_ref().map(|f| Secret::File {
        key: "token_file",
        path: cx.path(f),
    });
    if token.is_none() && !addr.ip().is_loopback() {
        return cx.err(
            listen.span(),
            format!("listen = {text:?} is reachable from other machines, so the web face needs a token: add token_file = \"/etc/aliwatch/http-token\" to [http] (a file holding a long random token, e.g. from `openssl rand -hex 32`), or listen on \"127.0.0.1:{}\"", addr.port()),
        );
    }
    Ok(Some(HttpConfig {
        listen: addr,
        token,
    }))
}

/// Checks `database` (a non-empty path, relative to the config file's folder).
fn validate_database(cx: &Ctx, database: Option<&S<String>>) -> Result<PathBuf, ConfigError> {
    Ok(match database {
        Some(d) if d.get_ref().trim().is_empty() => {
            return cx.err(d.span(), "database: must be a file path")
        }
        Some(d) => cx.path(d),
        None => default_database_for(cx.loc.path),
    })
}

/// Checks `timezone` (an IANA zone name; the system's zone when absent).
fn validate_timezone(cx: &Ctx, timezone: Option<&S<String>>) -> Result<Tz, ConfigError> {
    Ok(match timezone {
        Some(z) => match z.get_ref().parse::<Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                return cx.err(
                    z.span(),
                    format!(
                        "timezone: {:?} is not an IANA time zone name; write e.g. \"Europe/Berlin\" or \"UTC\"",
                        z.get_ref()
                    ),
                )
            }
        },
        None => system_timezone(),
    })
}

/// Checks every `[imap]` account, in file order, and that their names are unique.
fn validate_imap(cx: &Ctx, accounts: &[RawImap]) -> Result<Vec<ImapAccount>, ConfigError> {
    let mut imap = Vec::new();
    for a in accounts {
        let account = validate_imap_account(cx, a, accounts.len() > 1, &imap)?;
        imap.push(account);
    }
    Ok(imap)
}

/// Checks one `[imap]` account; `several` says the file has more than one,
/// `earlier` holds the accounts already checked (for unique names).
fn validate_imap_account(
    cx: &Ctx,
    a: &RawImap,
    several: bool,
    earlier: &[ImapAccount],
) -> Result<ImapAccount, ConfigError> {
    // Account-level problems are reported at the account's `host` line
    // (serde cannot give the span of a table read through a visitor).
    let acct = &a.host;
    let security = cx.security(a.security.as_ref(), Security::Tls)?;
    let default_port = if security == Security::Tls { 993 } else { 143 };
    let port = cx.port(a.port.as_ref(), default_port)?;
    let host = cx.host(&a.host, security, a.security.as_ref())?;
    let username = a.username.get_ref().clone();
    if username.is_empty() {
        return cx.err(a.username.span(), "username: must not be empty");
    }
    let auth = validate_imap_auth(cx, a)?;
    let mailboxes = match &a.mailboxes {
        Some(m) if m.get_ref().is_empty() || m.get_ref().iter().any(|b| b.trim().is_empty()) => {
            return cx.err(
                m.span(),
                "mailboxes: list at least one mailbox, e.g. [\"INBOX\"]",
            )
        }
        Some(m) => m.get_ref().clone(),
        None => vec!["INBOX".to_string()],
    };
    let backfill_days = match &a.backfill_days {
        Some(b) => match u32::try_from(*b.get_ref()) {
            Ok(n) if n <= 3650 => n,
            _ => return cx.err(b.span(), "backfill_days: must be between 0 and 3650"),
        },
        None => 90,
    };
    let poll_interval = match &a.poll_interval {
        Some(p) => {
            let d = cx.duration(p, "poll_interval")?;
            if d < Duration::from_secs(10) || d > Duration::from_secs(86400) {
                return cx.err(
                    p.span(),
                    "poll_interval: must be between \"10s\" and \"1d\"",
                );
            }
            d
        }
        None => Duration::from_secs(300),
    };
    let max_message_size = match &a.max_message_size {
        None => DEFAULT_MAX_MESSAGE_SIZE,
        Some(v) => match parse_size(v.get_ref()) {
            Some(n) if (64 * 1024..=1024 * 1024 * 1024).contains(&n) => n,
            _ => {
                return cx.err(
                    v.span(),
                    "max_message_size: a size between \"64KB\" and \"1GB\", e.g. \"25MB\" or a number of bytes",
                )
            }
        },
    };
    let name = match &a.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            return cx.err(n.span(), "name: must not be empty")
        }
        Some(n) => n.get_ref().clone(),
        None if several => {
            return cx.err(
                acct.span(),
                "with several [[imap]] accounts each needs a unique `name`",
            )
        }
        None => format!("{username}@{host}"),
    };
    if earlier.iter().any(|x: &ImapAccount| x.name == name) {
        let span = a.name.as_ref().map_or(acct.span(), |n| n.span());
        return cx.err(
            span,
            format!("name: {name:?} is used by two [[imap]] accounts; names must be unique"),
        );
    }
    Ok(ImapAccount {
        name,
        host,
        port,
        security,
        username,
        auth,
        ca_file: a.ca_file.as_ref().map(|c| cx.path(c)),
        mailboxes,
        backfill_days,
        idle: a.idle.unwrap_or(true),
        poll_interval,
        max_message_size,
    })
}

/// Checks one `[imap]` account's `auth` and its password or token command.
fn validate_imap_auth(cx: &Ctx, a: &RawImap) -> Result<ImapAuth, ConfigError> {
    // Reported at the account's `host` line, as in `validate_imap_account`.
    let acct = &a.host;
    Ok(match a.auth.as_ref().map(|s| (s, s.get_ref().as_str())) {
        None | Some((_, "password")) | Some((_, "plain")) | Some((_, "login")) => {
            if a.oauth2_token_command.is_some() {
                return cx.err(acct.span(), "oauth2_token_command needs auth = \"xoauth2\"");
            }
            let secret = cx.secret(
                "password",
                a.password.as_ref(),
                a.password_file.as_ref(),
                a.password_command.as_ref(),
                acct.span(),
            )?;
            match secret {
                Some(s) => ImapAuth::Password(s),
                None => {
                    return cx.err(
                        acct.span(),
                        "[imap] needs password_file, password_command or password (or auth = \"xoauth2\" with oauth2_token_command)",
                    )
                }
            }
        }
        Some((_, "xoauth2")) => {
            if a.password.is_some() || a.password_file.is_some() || a.password_command.is_some() {
                return cx.err(
                    acct.span(),
                    "auth = \"xoauth2\" takes oauth2_token_command, not a password",
                );
            }
            match &a.oauth2_token_command {
                Some(c) => ImapAuth::XOAuth2 {
                    token_command: c.get_ref().clone(),
                },
                None => {
                    return cx.err(acct.span(), "auth = \"xoauth2\" needs oauth2_token_command (a command that prints a fresh access token)")
                }
            }
        }
        Some((s, other)) => {
            return cx.err(
                s.span(),
                format!("auth: {other:?} is not one of \"password\", \"xoauth2\""),
            )
        }
    })
}

/// Checks `[smtp]`: server, password, `from` and every `to` address.
fn validate_smtp(cx: &Ctx, spanned: &S<RawSmtp>) -> Result<SmtpConfig, ConfigError> {
    let s = spanned.get_ref();
    let security = cx.security(s.security.as_ref(), Security::StartTls)?;
    let default_port = match security {
        Security::Tls => 465,
        Security::StartTls => 587,
        Security::Plain => 25,
    };
    let port = cx.port(s.port.as_ref(), default_port)?;
    let host = cx.host(&s.host, security, s.security.as_ref())?;
    let password = cx.secret(
        "password",
        s.password.as_ref(),
        s.password_file.as_ref(),
        s.password_command.as_ref(),
        spanned.span(),
    )?;
    if password.is_some() && s.username.is_none() {
        return cx.err(spanned.span(), "[smtp] has a password but no username");
    }
    if s.from
        .get_ref()
        .parse::<lettre::message::Mailbox>()
        .is_err()
    {
        return cx.err(
            s.from.span(),
            format!(
                "from: {:?} is not an email address; write e.g. \"aliwatch <me@example.com>\"",
                s.from.get_ref()
            ),
        );
    }
    if s.to.get_ref().is_empty() {
        return cx.err(s.to.span(), "to: list at least one recipient");
    }
    for t in s.to.get_ref() {
        if t.parse::<lettre::message::Mailbox>().is_err() {
            return cx.err(s.to.span(), format!("to: {t:?} is not an email address"));
        }
    }
    Ok(SmtpConfig {
        host,
        port,
        security,
        username: s.username.clone(),
        password,
        ca_file: s.ca_file.as_ref().map(|c| cx.path(c)),
        from: s.from.get_ref().clone(),
        to: s.to.get_ref().clone(),
    })
}

/// Checks `[tracking]`: the providers (the list, or the older single
/// `provider`), the 17TRACK key, `base_url`s and `refresh_interval`.
fn validate_tracking(cx: &Ctx, spanned: &S<RawTracking>) -> Result<TrackingConfig, ConfigError> {
    let t = spanned.get_ref();
    // Spellings are `Provider::parse`'s; `none` is not a tracker (an
    // empty list says it).
    let parse = |name: &str, span: std::ops::Range<usize>| match Provider::parse(name) {
        Some(p) if p != Provider::None => Ok(p),
        _ => cx.err(
            span,
            format!("providers: {name:?} is not one of \"cainiao\", \"17track\""),
        ),
    };
    let list: Vec<Provider> = match (&t.provider, &t.providers) {
        (Some(_), Some(ps)) => {
            return cx.err(
                ps.span(),
                "write either providers = [...] or the older provider = \"...\", not both",
            )
        }
        (Some(p), None) => match Provider::parse(p.get_ref()) {
            Some(Provider::None) => Vec::new(),
            Some(one) => vec![one],
            None => {
                return cx.err(
                    p.span(),
                    format!(
                        "provider: {:?} is not one of \"17track\", \"cainiao\", \"none\"",
                        p.get_ref()
                    ),
                )
            }
        },
        (None, Some(ps)) => {
            let mut out = Vec::new();
            for name in ps.get_ref() {
                let p = parse(name, ps.span())?;
                if out.contains(&p) {
                    return cx.err(ps.span(), format!("providers: {name:?} is listed twice"));
                }
                out.push(p);
            }
            out
        }
        // Keyless Cainiao: tracking works without an account (SPEC §2).
        (None, None) => vec![Provider::Cainiao],
    };
    let providers = Providers::new(&list);
    let key_top = cx.secret(
        "api_key",
        t.api_key.as_ref(),
        t.api_key_file.as_ref(),
        t.api_key_command.as_ref(),
        spanned.span(),
    )?;
    let key_table = match &t.seventeen {
        Some(tb) => {
            let r = tb.get_ref();
            cx.secret(
                "api_key",
                r.api_key.as_ref(),
                r.api_key_file.as_ref(),
                r.api_key_command.as_ref(),
                tb.span(),
            )?
        }
        None => None,
    };
    if key_top.is_some() && key_table.is_some() {
        return cx.err(
            spanned.span(),
            "the 17track API key is given twice: in [tracking] and in [tracking.17track]",
        );
    }
    let api_key = key_top.or(key_table);
    let seventeen = providers.contains(Provider::SeventeenTrack);
    if seventeen && api_key.is_none() {
        return cx.err(
            spanned.span(),
            "provider \"17track\" needs api_key_file (or api_key_command); get a key at https://api.17track.net",
        );
    }
    if !seventeen && api_key.is_some() {
        return cx.err(
            spanned.span(),
            "an API key is only used with provider \"17track\" (add it to providers)",
        );
    }
    let url = |u: &S<String>| -> Result<String, ConfigError> {
        let v = u.get_ref().trim_end_matches('/');
        if !(v.starts_with("https://") || v.starts_with("http://")) || v.len() < 10 {
            return cx.err(
                u.span(),
                "base_url: must be an http(s) URL such as \"https://api.17track.net\"",
            );
        }
        Ok(v.to_string())
    };
    let base_url = match &t.base_url {
        Some(u) => url(u)?,
        None => String::new(),
    };
    let mut base_urls = Vec::new();
    for (p, table) in [
        (Provider::Cainiao, &t.cainiao),
        (Provider::SeventeenTrack, &t.seventeen),
    ] {
        let Some(tb) = table else { continue };
        if p == Provider::Cainiao {
            let r = tb.get_ref();
            if r.api_key.is_some() || r.api_key_file.is_some() || r.api_key_command.is_some() {
                return cx.err(
                    tb.span(),
                    "[tracking.cainiao] takes no API key (Cainiao needs none)",
                );
            }
        }
        if let Some(u) = &tb.get_ref().base_url {
            base_urls.push((p, url(u)?));
        }
    }
    let refresh_interval = match &t.refresh_interval {
        Some(r) => {
            let d = cx.duration(r, "refresh_interval")?;
            if d < Duration::from_secs(600) {
                return cx.err(r.span(), "refresh_interval: must be at least \"10m\" (providers ban clients that poll faster)");
            }
            if d > Duration::from_secs(7 * 86400) {
                return cx.err(r.span(), "refresh_interval: must be at most \"7d\"");
            }
            d
        }
        None => Duration::from_secs(6 * 3600),
    };
    Ok(TrackingConfig {
        providers,
        api_key,
        base_url,
        base_urls,
        refresh_interval,
    })
}

/// Checks `[digest]`: `at` is a time of day.
fn validate_digest(cx: &Ctx, d: &RawDigest) -> Result<DigestConfig, ConfigError> {
    Ok(DigestConfig {
        enabled: d.enabled.unwrap_or(true),
        at: match &d.at {
            Some(at) => match NaiveTime::parse_from_str(at.get_ref(), "%H:%M") {
                Ok(t) => t,
                Err(_) => {
                    return cx.err(
                        at.span(),
                        format!(
                            "at: {:?} is not a time of day; write \"HH:MM\", e.g. \"08:00\"",
                            at.get_ref()
                        ),
                    )
                }
            },
            None => DigestConfig::default().at,
        },
        skip_when_empty: d.skip_when_empty.unwrap_or(true),
    })
}

/// Checks `[protection]`: `days`, `warn_before` (whole days) and `stalled_after`.
fn validate_protection(cx: &Ctx, p: &RawProtection) -> Result<ProtectionConfig, ConfigError> {
    let days = match &p.days {
        Some(d) => match u32::try_from(*d.get_ref()) {
            Ok(n) if (1..=365).contains(&n) => n,
            _ => return cx.err(d.span(), "days: must be between 1 and 365"),
        },
        None => 60,
    };
    let warn_before_days = match &p.warn_before {
        None => vec![7, 2],
        Some(w) => {
            let mut out = Vec::new();
            for item in w.get_ref() {
                let d = parse_duration(item).map_err(|e| {
                    ConfigError(cx.loc.message(
                        w.span().start,
                        &format!("warn_before: {e} in {item:?}; write whole days like \"7d\""),
                    ))
                })?;
                if d.as_secs() == 0 || !d.as_secs().is_multiple_of(86400) {
                    return cx.err(
                        w.span(),
                        format!(
                            "warn_before: {item:?} must be a whole number of days, e.g. \"7d\""
                        ),
                    );
                }
                // Checked, never cast: "4294967296d" must not wrap to 0.
                match u32::try_from(d.as_secs() / 86400) {
                    Ok(n) if (1..=365).contains(&n) => out.push(n),
                    _ => {
                        return cx.err(
                            w.span(),
                            format!("warn_before: {item:?} must be between \"1d\" and \"365d\""),
                        )
                    }
                }
            }
            out.sort_unstable_by(|a, b| b.cmp(a));
            out.dedup();
            out
        }
    };
    let stalled_after = match &p.stalled_after {
        Some(s) => {
            let d = cx.duration(s, "stalled_after")?;
            if d < Duration::from_secs(86400) || d > Duration::from_secs(365 * 86400) {
                return cx.err(
                    s.span(),
                    "stalled_after: must be between \"1d\" and \"365d\"",
                );
            }
            d
        }
        None => Duration::from_secs(10 * 86400),
    };
    Ok(ProtectionConfig {
        days,
        warn_before_days,
        stalled_after,
    })
}

/// The events a `[[notify]]` channel gets without `events`.
pub const DEFAULT_EVENTS: [crate::model::EventKind; 2] = [
    crate::model::EventKind::ProtectionWarning,
    crate::model::EventKind::ActionNeeded,
];

/// Checks one `[[notify]]` table; `earlier` holds the channels already
/// checked (names are unique: each is its own ledger).
fn validate_notify(
    cx: &Ctx,
    n: &RawNotify,
    earlier: &[NotifyConfig],
) -> Result<NotifyConfig, ConfigError> {
    use crate::model::EventKind;
    let kind = match n.kind.get_ref().as_str() {
        "ntfy" => NotifyKind::Ntfy,
        "webhook" => NotifyKind::Webhook,
        "mqtt" => NotifyKind::Mqtt,
        other => {
            return cx.err(
                n.kind.span(),
                format!("type: {other:?} is not one of \"ntfy\", \"webhook\", \"mqtt\""),
            )
        }
    };
    let name = match &n.name {
        Some(v) => {
            let name = v.get_ref().trim();
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return cx.err(
                    v.span(),
                    "name: 1 to 64 letters, digits, '-' or '_', e.g. \"phone\"",
                );
            }
            name.to_string()
        }
        None => kind.as_str().to_string(),
    };
    let name_span = n.name.as_ref().map_or(n.kind.span(), |v| v.span());
    if name == crate::model::EMAIL_CHANNEL {
        return cx.err(
            name_span,
            "name: \"email\" is the email channel's own ledger; choose another name",
        );
    }
    if earlier.iter().any(|e| e.name == name) {
        return cx.err(
            name_span,
            format!("name: two [[notify]] channels are called {name:?}; give each a unique `name` (without one, the name is the type)"),
        );
    }
    let mqtt_only = [
        ("username", n.username.as_ref()),
        ("password_file", n.password_file.as_ref()),
        ("discovery_prefix", n.discovery_prefix.as_ref()),
        ("topic_prefix", n.topic_prefix.as_ref()),
    ];
    let (url, mqtt) = if kind == NotifyKind::Mqtt {
        if let Some(t) = &n.token_file {
            return cx.err(
                t.span(),
                "token_file: an mqtt channel logs in with username and password_file",
            );
        }
        let m = validate_mqtt(cx, n)?;
        (n.url.get_ref().trim().to_string(), Some(m))
    } else {
        if let Some((key, v)) = mqtt_only.iter().find_map(|(k, v)| v.map(|v| (k, v))) {
            return cx.err(v.span(), format!("{key}: only for type = \"mqtt\""));
        }
        (
            validate_notify_url(cx, &n.url, kind, n.token_file.is_some())?,
            None,
        )
    };
    let events = match &n.events {
        None => DEFAULT_EVENTS.to_vec(),
        Some(list) => {
            if list.get_ref().is_empty() {
                return cx.err(
                    list.span(),
                    "events: list at least one of \"protection_warning\", \"action_needed\", \"out_for_delivery\", \"delivered\", \"digest\"",
                );
            }
            let mut out = Vec::new();
            for e in list.get_ref() {
                match EventKind::parse(e) {
                    Some(k) => out.push(k),
                    None => {
                        return cx.err(
                            list.span(),
                            format!("events: {e:?} is not one of \"protection_warning\", \"action_needed\", \"out_for_delivery\", \"delivered\", \"digest\""),
                        )
                    }
                }
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    };
    let (line, _) = cx.loc.line_col(n.kind.span().start);
    Ok(NotifyConfig {
        name,
        kind,
        url,
        token: n.token_file.as_ref().map(|f| Secret::File {
            key: "token_file",
            path: cx.path(f),
        }),
        ca_file: n.ca_file.as_ref().map(|c| cx.path(c)),
        events,
        location: format!("{}:{line}", cx.loc.path.display()),
        mqtt,
    })
}

/// Checks the MQTT part of a `[[notify]]` table: `mqtt://host[:1883]` or
/// `mqtts://host[:8883]`; a password travels only over TLS or to a
/// loopback host; topic prefixes are plain MQTT topic levels.
fn validate_mqtt(cx: &Ctx, n: &RawNotify) -> Result<MqttSettings, ConfigError> {
    let v = &n.url;
    let bad = || {
        cx.err::<MqttSettings>(
            v.span(),
            "url: an mqtt url is mqtt://host:1883 or mqtts://host:8883, nothing after the port",
        )
    };
    let Ok(u) = reqwest::Url::parse(v.get_ref().trim()) else {
        return bad();
    };
    let tls = match u.scheme() {
        "mqtts" => true,
        "mqtt" => false,
        _ => return bad(),
    };
    let host = u
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.is_empty()
        || !u.path().trim_matches('/').is_empty()
        || u.query().is_some()
        || !u.username().is_empty()
        || u.password().is_some()
    {
        return bad();
    }
    let port = u.port().unwrap_or(if tls { 8883 } else { 1883 });
    if n.password_file.is_some() && n.username.is_none() {
        return cx.err(
            n.kind.span(),
            "password_file needs a username in the same [[notify]] table",
        );
    }
    if n.password_file.is_some() && !tls && !is_private_host(&host) {
        return cx.err(
            v.span(),
            format!("url: mqtt:// sends the password unencrypted; use mqtts:// (plain mqtt with a password only towards a loopback or local-network host: a private address, .local, .lan or .home.arpa; not {host:?})"),
        );
    }
    let prefix = |p: Option<&S<String>>, key: &str, default: &str| -> Result<String, ConfigError> {
        match p {
            None => Ok(default.to_string()),
            Some(p) => {
                let t = p.get_ref().trim_matches('/');
                let ok = !t.is_empty()
                    && t.len() <= 100
                    && !t.contains(['+', '#', '\0'])
                    && !t.split('/').any(str::is_empty);
                if ok {
                    Ok(t.to_string())
                } else {
                    cx.err(
                        p.span(),
                        format!("{key}: an MQTT topic prefix such as \"{default}\" (no +, # or empty levels)"),
                    )
                }
            }
        }
    };
    Ok(MqttSettings {
        host,
        port,
        tls,
        username: n.username.as_ref().map(|u| u.get_ref().clone()),
        password: n.password_file.as_ref().map(|f| Secret::File {
            key: "password_file",
            path: cx.path(f),
        }),
        discovery_prefix: prefix(
            n.discovery_prefix.as_ref(),
            "discovery_prefix",
            "homeassistant",
        )?,
        topic_prefix: prefix(n.topic_prefix.as_ref(), "topic_prefix", "aliwatch")?,
    })
}

/// Checks a `[[notify]]` url: http(s) with a host and no credentials; an
/// ntfy bearer token travels only over https (or to a loopback host).
fn validate_notify_url(
    cx: &Ctx,
    v: &S<String>,
    kind: NotifyKind,
    has_token: bool,
) -> Result<String, ConfigError> {
    let example = match kind {
        NotifyKind::Ntfy => "https://ntfy.sh/my-secret-topic",
        NotifyKind::Webhook | NotifyKind::Mqtt => "https://example.com/hooks/aliwatch",
    };
    let Ok(u) = reqwest::Url::parse(v.get_ref().trim()) else {
        return cx.err(v.span(), format!("url: not a URL; write e.g. {example}"));
    };
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return cx.err(
            v.span(),
            format!("url: must be an http(s) URL with a host, e.g. {example}"),
        );
    }
    if !u.username().is_empty() || u.password().is_some() {
        return cx.err(
            v.span(),
            "url: must not hold a user name or password; put the token in token_file",
        );
    }
    if kind == NotifyKind::Ntfy && u.path().trim_matches('/').is_empty() {
        return cx.err(
            v.span(),
            format!("url: an ntfy url names the topic, e.g. {example}"),
        );
    }
    let host = u.host_str().unwrap_or("");
    if kind == NotifyKind::Ntfy && has_token && u.scheme() == "http" && !is_private_host(host) {
        return cx.err(
            v.span(),
            "url: with token_file the secret would travel unencrypted; use https (plain http only towards a loopback or local-network host: a private address, .local, .lan or .home.arpa)",
        );
    }
    Ok(u.to_string())
}
