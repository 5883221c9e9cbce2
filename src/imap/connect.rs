//! Connecting and logging in: TCP, implicit TLS or STARTTLS, the greeting,
//! LOGIN / AUTHENTICATE PLAIN / AUTHENTICATE XOAUTH2, and the capabilities
//! (read once per connection, after login, because servers such as Dovecot
//! list IDLE only to authenticated clients).
//!
//! TLS is rustls (ring) trusting the system roots plus the account's
//! `ca_file`; the certificate chain and the host name are always verified
//! (there is deliberately no switch to turn that off). Every network step has
//! a timeout so that a silent peer never hangs a watcher.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use async_imap::{Client, Session};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::guard::Guarded;
use crate::config::{ImapAccount, ImapAuth, Secret, Security};

/// How long a `password_command` or `oauth2_token_command` may run by
/// default (`command_timeout` in the config).
pub const SECRET_TIMEOUT: Duration = crate::config::command::DEFAULT_TIMEOUT;

/// TCP connect, TLS handshake, greeting, login: each gets this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one command (or one FETCH response) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Any byte stream a session can run over (TCP, TLS over TCP, test doubles).
pub trait ImapIo: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> ImapIo for T {}

/// The session type used everywhere in this module.
pub type ImapSession = Session<Box<dyn ImapIo>>;

/// The server rejected the credentials (LOGIN/AUTHENTICATE answered NO).
/// Watchers retry this slowly; `sync` reports it and exits 1.
#[derive(Debug, thiserror::Error)]
#[error("the server {host} rejected the login for user {username:?} (wrong password or token?): {server_says}")]
pub struct AuthRejected {
    pub account: String,
    pub host: String,
    pub username: String,
    /// The server's text, which never contains our secret.
    pub server_says: String,
}

/// A logged-in connection and what the server can do.
pub struct Connection {
    pub session: ImapSession,
    /// The server advertised IDLE (RFC 2177).
    pub can_idle: bool,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("can_idle", &self.can_idle)
            .finish()
    }
}

/// Runs `fut` with a timeout, naming `what` when it expires.
pub async fn timed<T, E>(
    what: &str,
    limit: Duration,
    fut: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(limit, fut).await {
        // Server text in errors is cut to an excerpt (see `guard`).
        Ok(r) => r.map_err(|e| super::guard::server_error(e).context(what.to_string())),
        Err(_) => bail!(
            "{what}: no answer from the server within {}s",
            limit.as_secs()
        ),
    }
}

/// How long a `UID SEARCH` may take: servers without a full-text index
/// read every message in the window for a BODY search.
pub const SEARCH_TIMEOUT: Duration = Duration::from_secs(300);

pub use crate::config::is_loopback_host as is_loopback;

/// Connects, secures, logs in and reads the capabilities.
pub async fn connect(account: &ImapAccount) -> Result<Connection> {
    let target = format!("{}:{}", account.host, account.port);
    // Config validation enforces this too; the password must never cross a
    // network in clear, so check again where it matters.
    if account.security == Security::Plain && !is_loopback(&account.host) {
        bail!(
            "security = \"plain\" is allowed only towards loopback hosts, not {:?}",
            account.host
        );
    }
    let tcp = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((account.host.as_str(), account.port)),
    )
    .await
    {
        Ok(r) => r.with_context(|| format!("cannot connect to {target}"))?,
        Err(_) => bail!(
            "cannot connect to {target}: timed out after {}s",
            CONNECT_TIMEOUT.as_secs()
        ),
    };
    let _ = tcp.set_nodelay(true);

    // Every byte from the server passes the size guard before async-imap
    // buffers it (see `guard`).
    let limit = account.max_message_size;
    let stream: Box<dyn ImapIo> = match account.security {
        Security::Plain => Box::new(Guarded::new(tcp, limit)),
        Security::Tls => Box::new(Guarded::new(tls_handshake(account, tcp).await?, limit)),
        Security::StartTls => {
            let mut client = Client::new(Guarded::new(tcp, limit));
            read_greeting(&mut client, &target).await?;
            timed(
                &format!("STARTTLS on {target}"),
                COMMAND_TIMEOUT,
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await
            .with_context(|| {
                format!("{target} does not support STARTTLS (security = \"starttls\" requires it)")
            })?;
            // Anything the server sent after its OK is dropped with the old
            // client's buffer (no STARTTLS response injection, RFC 3501 §6.2.1).
            let tcp = client.into_inner().into_inner();
            Box::new(Guarded::new(tls_handshake(account, tcp).await?, limit))
        }
    };
    let mut client = Client::new(stream);
    if account.security != Security::StartTls {
        read_greeting(&mut client, &target).await?;
    }
    let session = login(account, client).await?;
    finish(session, &target).await
}

async fn finish(mut session: ImapSession, target: &str) -> Result<Connection> {
    let caps = timed(
        &format!("CAPABILITY on {target}"),
        COMMAND_TIMEOUT,
        session.capabilities(),
    )
    .await?;
    Ok(Connection {
        can_idle: caps.has_str("IDLE"),
        session,
    })
}

async fn read_greeting<T>(client: &mut Client<T>, target: &str) -> Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug,
{
    match tokio::time::timeout(CONNECT_TIMEOUT, client.read_response()).await {
        Err(_) => bail!(
            "{target} sent no IMAP greeting within {}s",
            CONNECT_TIMEOUT.as_secs()
        ),
        Ok(Err(e)) => Err(super::guard::server_error(e)
            .context(format!("reading the IMAP greeting from {target}"))),
        Ok(Ok(None)) => bail!("{target} closed the connection before the IMAP greeting"),
        Ok(Ok(Some(resp))) => {
            use async_imap::imap_proto::{Response, Status};
            match resp.parsed() {
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } => bail!(
                    "{target} refused the connection: {}",
                    outcome.information.as_deref().unwrap_or("BYE")
                ),
                _ => Ok(()),
            }
        }
    }
}

async fn login(account: &ImapAccount, client: Client<Box<dyn ImapIo>>) -> Result<ImapSession> {
    let target = format!("{}:{}", account.host, account.port);
    let rejected = |e: async_imap::error::Error| -> anyhow::Error {
        match e {
            async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
                anyhow!(AuthRejected {
                    account: account.name.clone(),
                    host: target.clone(),
                    username: account.username.clone(),
                    server_says: server_text(&text),
                })
            }
            other => super::guard::server_error(other).context(format!("logging in to {target}")),
        }
    };
    match &account.auth {
        ImapAuth::Password(secret) => {
            let password = resolve_secret(secret).await.with_context(|| {
                format!("imap account {:?}: reading the password", account.name)
            })?;
            let fut = async {
                if password.is_ascii() && !password.contains(['\r', '\n']) {
                    client.login(&account.username, &password).await
                } else {
                    // LOGIN takes a quoted string that must be 7-bit;
                    // AUTHENTICATE PLAIN (RFC 4616) carries UTF-8 safely.
                    let plain = SaslPlain {
                        response: format!("\0{}\0{}", account.username, password),
                    };
                    client.authenticate("PLAIN", plain).await
                }
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, fut).await {
                Err(_) => bail!(
                    "logging in to {target}: no answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                ),
                Ok(Ok(s)) => Ok(s),
                Ok(Err((e, _client))) => {
                    // The cached answer of a password_command is stale.
                    secret.forget();
                    Err(rejected(e))
                }
            }
        }
        ImapAuth::XOAuth2 { token_command } => {
            // A cached token may have expired: when the server says no, fetch
            // a fresh one and try once more on the same connection.
            let mut client = client;
            let mut last = None;
            for attempt in 0..2 {
                let token = run_secret_command(token_command).await.with_context(|| {
                    format!("imap account {:?}: oauth2_token_command", account.name)
                })?;
                let auth = XOAuth2 {
                    response: format!("user={}\x01auth=Bearer {}\x01\x01", account.username, token),
                    sent: false,
                };
                match tokio::time::timeout(CONNECT_TIMEOUT, client.authenticate("XOAUTH2", auth))
                    .await
                {
                    Err(_) => bail!(
                        "logging in to {target}: no answer within {}s",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                    Ok(Ok(s)) => return Ok(s),
                    Ok(Err((e, c))) => {
                        tracing::debug!(attempt, "xoauth2 rejected, fetching a new token");
                        crate::config::command::forget(token_command);
                        client = c;
                        last = Some(e);
                    }
                }
            }
            Err(rejected(last.expect("the loop ran at least once")))
        }
    }
}

/// async-imap formats a NO as `code: .., info: Some("text")`; keep the text.
fn server_text(raw: &str) -> String {
    let text = raw
        .split_once("info: Some(\"")
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map_or(raw, |(text, _)| text);
    super::guard::excerpt(text)
}

struct SaslPlain {
    response: String,
}
impl async_imap::Authenticator for SaslPlain {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        std::mem::take(&mut self.response)
    }
}

/// XOAUTH2 (Google/Microsoft): the first reply carries the token; on
/// failure the server sends a JSON error as a challenge, which must be
/// answered with an empty line before the tagged NO arrives.
struct XOAuth2 {
    response: String,
    sent: bool,
}
impl async_imap::Authenticator for XOAuth2 {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        if self.sent {
            String::new()
        } else {
            self.sent = true;
            std::mem::take(&mut self.response)
        }
    }
}

// ---------------------------------------------------------------- TLS --

fn native_roots() -> &'static [rustls::pki_types::CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<rustls::pki_types::CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let result = rustls_native_certs::load_native_certs();
        for e in &result.errors {
            tracing::debug!(error = %e, "some system CA certificates could not be loaded");
        }
        result.certs
    })
}

/// The rustls client config for `account`: system roots plus `ca_file`.
pub fn tls_config(account: &ImapAccount) -> Result<Arc<rustls::ClientConfig>> {
    client_tls_config(account.ca_file.as_deref())
}

/// The one rustls client config of aliwatch (IMAP, MQTT): the system's
/// roots plus `ca_file`, chain and host name always verified.
pub fn client_tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let (_added, _ignored) = roots.add_parsable_certificates(native_roots().iter().cloned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read ca_file {}", path.display()))?;
        let mut n = 0;
        // rustls-pki-types reads PEM itself (rustls-pemfile's job moved there).
        use rustls::pki_types::pem::PemObject;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert =
                cert.with_context(|| format!("ca_file {} is not valid PEM", path.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("ca_file {}: unusable certificate", path.display()))?;
            n += 1;
        }
        if n == 0 {
            bail!("ca_file {} holds no PEM certificate", path.display());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn tls_handshake(
    account: &ImapAccount,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let config = tls_config(account)?;
    let name = rustls::pki_types::ServerName::try_from(account.host.clone())
        .with_context(|| format!("{:?} is not a valid TLS server name", account.host))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let target = format!("{}:{}", account.host, account.port);
    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
        Err(_) => bail!("TLS handshake with {target} timed out"),
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) if e.to_string().contains("certificate") => Err(anyhow!(e)).with_context(|| {
            format!(
                "TLS handshake with {target} failed: the server certificate could not be verified \
                 for {:?} (is it signed by a CA in the system store or in ca_file?)",
                account.host
            )
        }),
        Ok(Err(e)) => {
            Err(anyhow!(e)).with_context(|| format!("TLS handshake with {target} failed"))
        }
    }
}

// ------------------------------------------------------------ secrets --

/// Reads a secret (file, command or inline) off the async runtime: a
/// `password_command` may take a while (a password manager prompting), but
/// not forever: after `command_timeout` the login fails and is retried.
pub async fn resolve_secret(secret: &Secret) -> Result<String> {
    let key = secret.key();
    let secret = secret.clone();
    let task = tokio::task::spawn_blocking(move || secret.resolve());
    // The runner has its own limit; this one only guards a file read that
    // hangs (a FIFO, a dead network file system).
    let limit = crate::config::command::timeout() + Duration::from_secs(5);
    match tokio::time::timeout(limit, task).await {
        Err(_) => bail!("{key}: did not finish within {} s", limit.as_secs()),
        Ok(joined) => Ok(joined.context("secret resolver task")??),
    }
}

/// Runs `command` with `sh -c` and returns its trimmed stdout. The output is
/// never logged or put into an error.
async fn run_secret_command(command: &str) -> Result<String> {
    // The config's one bounded runner (time limit, stderr dropped), off
    // the async runtime.
    let command = command.to_string();
    let task = tokio::task::spawn_blocking(move || {
        crate::config::command::run_cached(
            "oauth2_token_command",
            &command,
            crate::config::command::timeout(),
        )
    });
    Ok(task.await.context("secret command task")??)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for (h, want) in [
            ("localhost", true),
            ("127.0.0.1", true),
            ("127.1.2.3", true),
            ("::1", true),
            ("[::1]", true),
            ("imap.example.com", false),
            ("10.0.0.1", false),
        ] {
            assert_eq!(is_loopback(h), want, "{h}");
        }
    }

    #[test]
    fn server_text_is_extracted_from_the_formatted_no() {
        let cases = [
            (
                r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#,
                "[AUTHENTICATIONFAILED] Authentication failed.",
            ),
            ("plain text", "plain text"),
            (r#"info: Some("a "quoted" b")"#, r#"a "quoted" b"#),
        ];
        for (raw, want) in cases {
            assert_eq!(server_text(raw), want);
        }
    }

    fn b64(data: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in data.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= c.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn account(auth: ImapAuth) -> ImapAccount {
        ImapAccount {
            name: "t".into(),
            host: "imap.test".into(),
            port: 993,
            security: Security::Tls,
            username: "me@example.com".into(),
            auth,
            ca_file: None,
            mailboxes: vec!["INBOX".into()],
            backfill_days: 90,
            idle: true,
            poll_interval: Duration::from_secs(300),
            max_message_size: crate::config::DEFAULT_MAX_MESSAGE_SIZE,
        }
    }

    /// A scripted server: the first token is rejected (with the JSON
    /// challenge XOAUTH2 servers send), the re-fetched second one accepted.
    #[tokio::test]
    async fn xoauth2_fetches_a_new_token_when_the_server_rejects_one() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let dir = tempfile::tempdir().expect("tempdir");
        let counter = dir.path().join("n");
        let cmd = format!(
            "n=$(cat {0} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {0}; echo tok$n",
            counter.display()
        );
        let (client_end, server_end) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let (r, mut w) = tokio::io::split(server_end);
            let mut lines = BufReader::new(r).lines();
            let mut got = Vec::new();
            for (tok, ok) in [("tok1", false), ("tok2", true)] {
                let cmd = lines.next_line().await.expect("reads").expect("a line");
                let (tag, rest) = cmd.split_once(' ').expect("tagged");
                assert_eq!(rest, "AUTHENTICATE XOAUTH2");
                w.write_all(b"+ \r\n").await.expect("writes");
                let resp = lines.next_line().await.expect("reads").expect("a line");
                let want =
                    b64(format!("user=me@example.com\x01auth=Bearer {tok}\x01\x01").as_bytes());
                got.push(resp == want);
                if ok {
                    w.write_all(format!("{tag} OK done\r\n").as_bytes())
                        .await
                        .expect("writes");
                } else {
                    w.write_all(b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n")
                        .await
                        .expect("writes");
                    let empty = lines.next_line().await.expect("reads").expect("a line");
                    assert_eq!(empty, "");
                    w.write_all(
                        format!("{tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
                            .as_bytes(),
                    )
                    .await
                    .expect("writes");
                }
            }
            got
        });
        let acct = account(ImapAuth::XOAuth2 { token_command: cmd });
        let client = Client::new(Box::new(client_end) as Box<dyn ImapIo>);
        login(&acct, client).await.expect("second token accepted");
        assert_eq!(server.await.expect("server"), vec![true, true]);
    }
}
