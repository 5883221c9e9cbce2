//! Test harness: real Dovecot (IMAP/IMAPS), an aiosmtpd SMTP sink and/or a
//! Postfix instance on 127.0.0.1, each in its own temp dir, process group and
//! free ports. std-only. Linux, run as root (CI runs as root).
//!
//! Needs (Debian 12): dovecot-imapd, python3-aiosmtpd (for the sink),
//! postfix (optional), openssl.
//!
//! With `oauth2: true` Dovecot also offers XOAUTH2/OAUTHBEARER through its
//! `oauth2` passdb, which asks [`TokenIssuer`] (a local RFC 7662 token
//! introspection endpoint) whether a bearer token is valid; the test grants
//! and expires tokens with `stack.oauth2().grant(..)` / `.expire(..)`.
//!
//! ```ignore
//! let stack = MailStack::start(StackOptions { sink: true, postfix: true, ..Default::default() });
//! // IMAP  127.0.0.1:stack.imap_port  (plain + STARTTLS), stack.imaps_port (TLS)
//! // SMTP  stack.sink_port (aiosmtpd), stack.smtp_port (Postfix): STARTTLS + AUTH
//! // CA    stack.ca_pem()  -> trust this in the client; server name "localhost"
//! drop(stack); // SIGTERM to every process group, wait, SIGKILL leftovers, rm -rf dir
//! ```

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const DOVECOT_CONF: &str = include_str!("../testdata/servers/dovecot.conf.in");
const POSTFIX_MAIN: &str = include_str!("../testdata/servers/postfix-main.cf.in");
const POSTFIX_MASTER: &str = include_str!("../testdata/servers/postfix-master.cf.in");
const SMTP_SINK: &str = include_str!("../testdata/servers/smtp_sink.py");
const GEN_CERTS: &str = include_str!("../testdata/servers/gen-certs.sh");

/// uid/gid the mail processes run as. Dovecot refuses mail access as root
/// ("Mail access not allowed for root"); 65534 = nobody:nogroup on Debian.
pub const MAIL_UID: u32 = 65534;
pub const MAIL_GID: u32 = 65534;

// ---------------------------------------------------------------- temp dir --
pub struct TempDir(PathBuf);
impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        // keep it short: Dovecot's unix sockets live below it (108-byte limit)
        let p = std::env::temp_dir().join(format!(
            "{prefix}{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        // mail processes (uid 65534) and Postfix daemons must traverse it
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("MAILSTACK_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

// ------------------------------------------------------------ a daemon --
/// A child started with `process_group(0)`: its PGID == its PID, and every
/// process it forks stays in that group unless it calls setsid() itself.
pub struct Daemon {
    pub name: &'static str,
    child: Child,
    /// process groups to signal on drop (Postfix's master setsid()s itself,
    /// so its group differs from the start-fg wrapper's)
    extra_pgids: Vec<i32>,
}

impl Daemon {
    pub fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Daemon {
        let out = fs::File::create(log).unwrap();
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Daemon {
            name,
            child,
            extra_pgids: vec![],
        }
    }
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

fn signal_group(pgid: i32, sig: &str) {
    // std has no kill(2); `kill` from procps/util-linux is always there.
    // (With the libc crate: libc::kill(-pgid, libc::SIGTERM).)
    let _ = Command::new("kill")
        .args([sig, "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

fn group_alive(pgid: i32) -> bool {
    // any non-zombie process whose PGID is pgid?
    let Ok(rd) = fs::read_dir("/proc") else {
        return false;
    };
    rd.flatten().any(|e| {
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            return false;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.len() > 2 && f[0] != "Z" && f[2] == pgid.to_string()
    })
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let mut groups = self.extra_pgids.clone();
        groups.push(self.pid());
        for g in &groups {
            signal_group(*g, "-TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let child_done = self.child.try_wait().map(|s| s.is_some()).unwrap_or(true);
            if child_done && !groups.iter().any(|g| group_alive(*g)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for g in &groups {
            signal_group(*g, "-KILL");
        }
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------- helpers --
/// Free port from the kernel. Racy (someone may take it before the daemon
/// binds), so callers retry on "Address already in use".
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait until `port` accepts and sends a greeting starting with `prefix`.
fn wait_greeting(
    port: u16,
    prefix: &[u8],
    d: &mut Daemon,
    log: &Path,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut buf = vec![0u8; prefix.len()];
            if s.read_exact(&mut buf).is_ok() && buf == prefix {
                return Ok(());
            }
        }
        if let Some(st) = d.exited() {
            return Err(format!(
                "{} exited ({st}): {}",
                d.name,
                fs::read_to_string(log).unwrap_or_default()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("{} not ready after {timeout:?}", d.name));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn render(t: &str, vars: &[(&str, String)]) -> String {
    let mut s = t.to_string();
    for (k, v) in vars {
        s = s.replace(k, v);
    }
    s
}

fn chown_r(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    if p.is_dir() {
        for e in fs::read_dir(p).unwrap().flatten() {
            chown_r(&e.path(), uid, gid);
        }
    }
}

/// Set mtime one minute back: Postfix sleeps up to ~2 s before reading a
/// main.cf / texthash file that was modified within the last second.
fn backdate(p: &Path) {
    let f = fs::File::options().write(true).open(p).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .unwrap();
}

// ---------------------------------------------------------- the stack --
#[derive(Clone)]
pub struct StackOptions {
    pub users: Vec<(String, String)>,
    pub sink: bool,
    pub postfix: bool,
    /// XOAUTH2/OAUTHBEARER against a [`TokenIssuer`].
    pub oauth2: bool,
}
impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            users: vec![
                ("alice".into(), "secret1".into()),
                ("bob".into(), "secret2".into()),
            ],
            sink: false,
            postfix: false,
            oauth2: false,
        }
    }
}

pub struct MailStack {
    // drop order = field order: daemons first, directory last
    postfix: Option<Daemon>,
    sink: Option<Daemon>,
    dovecot: Option<Daemon>,
    oauth2: Option<TokenIssuer>,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub sink_port: u16,
    pub smtp_port: u16,
    pub users: Vec<(String, String)>,
    dir: TempDir,
}

impl MailStack {
    pub fn start(opts: StackOptions) -> MailStack {
        let dir = TempDir::new("mst");
        let d = dir.path().to_path_buf();
        for sub in ["run", "state", "mail", "certs"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        // certs: throw-away CA + localhost cert (~50 ms)
        let gen = d.join("gen-certs.sh");
        fs::write(&gen, GEN_CERTS).unwrap();
        let st = Command::new("sh")
            .arg(&gen)
            .arg(d.join("certs"))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "gen-certs failed");
        // users (Dovecot passwd-file; the sink reads the same file)
        let mut users = String::new();
        for (u, p) in &opts.users {
            users += &format!(
                "{u}:{{PLAIN}}{p}:{MAIL_UID}:{MAIL_GID}::{}::\n",
                d.join("mail").join(u).display()
            );
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(d.join("mail").join(u).join("Maildir").join(sub)).unwrap();
            }
        }
        fs::write(d.join("users"), users).unwrap();
        // the auth process runs as user "dovecot", not root
        fs::set_permissions(d.join("users"), fs::Permissions::from_mode(0o644)).unwrap();
        chown_r(&d.join("mail"), MAIL_UID, MAIL_GID);

        // OAuth2: the introspection endpoint must listen before Dovecot
        // starts; its settings live in a file of their own (Dovecot 2.3).
        let oauth2 = opts.oauth2.then(TokenIssuer::start);
        let (oauth2_mechs, oauth2_passdb) = match &oauth2 {
            Some(issuer) => {
                fs::write(
                    d.join("oauth2.conf.ext"),
                    format!(
                        "introspection_mode = post\n\
                         introspection_url = http://127.0.0.1:{}/introspect\n\
                         username_attribute = username\n\
                         active_attribute = active\n\
                         active_value = true\n",
                        issuer.port
                    ),
                )
                .unwrap();
                // The auth process runs as user "dovecot".
                fs::set_permissions(d.join("oauth2.conf.ext"), fs::Permissions::from_mode(0o644))
                    .unwrap();
                (
                    " xoauth2 oauthbearer".to_string(),
                    format!(
                        "passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n",
                        d.join("oauth2.conf.ext").display()
                    ),
                )
            }
            None => (String::new(), String::new()),
        };

        // Dovecot, retrying with new ports if one was taken meanwhile
        let (dovecot, imap_port, imaps_port) = (|| {
            for _ in 0..5 {
                let (p1, p2) = (free_port(), free_port());
                if p1 == p2 {
                    continue;
                }
                let conf = render(
                    DOVECOT_CONF,
                    &[
                        ("@DIR@", d.display().to_string()),
                        ("@IMAP_PORT@", p1.to_string()),
                        ("@IMAPS_PORT@", p2.to_string()),
                        ("@UID@", MAIL_UID.to_string()),
                        ("@GID@", MAIL_GID.to_string()),
                        ("@OAUTH2_MECHS@", oauth2_mechs.clone()),
                        ("@OAUTH2_PASSDB@", oauth2_passdb.clone()),
                    ],
                );
                fs::write(d.join("dovecot.conf"), conf).unwrap();
                let log = d.join("dovecot.stdout");
                let mut dc = Daemon::spawn(
                    "dovecot",
                    Command::new("/usr/sbin/dovecot")
                        .arg("-c")
                        .arg(d.join("dovecot.conf"))
                        .arg("-F"),
                    &log,
                );
                match wait_greeting(p1, b"* OK", &mut dc, &log, Duration::from_secs(10)) {
                    Ok(()) => return (dc, p1, p2),
                    Err(e) if e.contains("Address already in use") => continue,
                    Err(e) => panic!(
                        "{e}\n{}",
                        fs::read_to_string(d.join("dovecot.log")).unwrap_or_default()
                    ),
                }
            }
            panic!("dovecot: no free ports after 5 tries");
        })();

        let mut stack = MailStack {
            postfix: None,
            sink: None,
            dovecot: Some(dovecot),
            oauth2,
            imap_port,
            imaps_port,
            sink_port: 0,
            smtp_port: 0,
            users: opts.users.clone(),
            dir,
        };
        if opts.sink {
            stack.start_sink();
        }
        if opts.postfix {
            stack.start_postfix();
        }
        stack
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// The token introspection endpoint (only with `oauth2: true`).
    pub fn oauth2(&self) -> &TokenIssuer {
        self.oauth2
            .as_ref()
            .expect("MailStack started without StackOptions::oauth2")
    }
    pub fn ca_pem(&self) -> PathBuf {
        self.dir().join("certs/ca.pem")
    }
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir().join("mail").join(user).join("Maildir")
    }
    pub fn dovecot_log(&self) -> String {
        fs::read_to_string(self.dir().join("dovecot.log")).unwrap_or_default()
    }
    pub fn process_groups(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.dovecot.iter().map(Daemon::pid).collect();
        for d in [&self.sink, &self.postfix].into_iter().flatten() {
            v.push(d.pid());
            v.extend(&d.extra_pgids);
        }
        v
    }

    /// Stop Dovecot (SIGTERM to its process group); mail and state stay.
    pub fn stop_dovecot(&mut self) {
        self.dovecot = None;
    }

    /// Start Dovecot again with the same directory, config and ports.
    pub fn start_dovecot(&mut self) {
        assert!(self.dovecot.is_none(), "dovecot is running");
        let d = self.dir().to_path_buf();
        let log = d.join("dovecot.stdout");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut dc = Daemon::spawn(
                "dovecot",
                Command::new("/usr/sbin/dovecot")
                    .arg("-c")
                    .arg(d.join("dovecot.conf"))
                    .arg("-F"),
                &log,
            );
            match wait_greeting(
                self.imap_port,
                b"* OK",
                &mut dc,
                &log,
                Duration::from_secs(10),
            ) {
                Ok(()) => {
                    self.dovecot = Some(dc);
                    return;
                }
                // the old listener's port may linger for a moment
                Err(e) if e.contains("Address already in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("{e}\n{}", self.dovecot_log()),
            }
        }
    }

    /// Log in as `user` over plain IMAP (loopback) and run one command.
    pub fn imap_cmd(&self, user: &str, cmd: &str) -> Vec<String> {
        let pass = &self
            .users
            .iter()
            .find(|(u, _)| u == user)
            .expect("known user")
            .1;
        let mut c = PlainImap::connect(self.imap_port);
        let r = c.cmd(&format!("LOGIN {user} {pass}"), None);
        assert!(r.last().unwrap().contains("OK"), "{r:?}");
        c.cmd(cmd, None)
    }

    /// IMAP APPEND `msg` to `mailbox` of `user`, optionally with an
    /// INTERNALDATE like `"01-Jan-2020 10:00:00 +0000"`. Returns the replies.
    pub fn append(&self, user: &str, mailbox: &str, msg: &[u8], date: Option<&str>) -> Vec<String> {
        let pass = &self
            .users
            .iter()
            .find(|(u, _)| u == user)
            .expect("known user")
            .1;
        let mut c = PlainImap::connect(self.imap_port);
        let r = c.cmd(&format!("LOGIN {user} {pass}"), None);
        assert!(r.last().unwrap().contains("OK"), "{r:?}");
        let cmd = match date {
            Some(d) => format!("APPEND {mailbox} () \"{d}\""),
            None => format!("APPEND {mailbox}"),
        };
        let r = c.cmd(&cmd, Some(msg));
        assert!(r.last().unwrap().contains("OK"), "{r:?}");
        r
    }

    /// Deliver a message the way an MDA does (write tmp/, rename into new/).
    /// Dovecot notices it on the next sync; IDLE clients get EXISTS ~0.5 s later.
    pub fn deliver_file(&self, user: &str, msg: &[u8]) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let md = self.maildir(user);
        let name = format!(
            "{}.M{}P{}Q{}.harness",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            N.fetch_add(1, Ordering::SeqCst),
            std::process::id(),
            self.imap_port
        );
        let tmp = md.join("tmp").join(&name);
        fs::write(&tmp, msg).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
        let new = md.join("new").join(&name);
        fs::rename(&tmp, &new).unwrap();
        new
    }

    fn start_sink(&mut self) {
        let d = self.dir().to_path_buf();
        fs::write(d.join("smtp_sink.py"), SMTP_SINK).unwrap();
        let log = d.join("sink.stderr");
        // port 0: the sink binds, then prints "READY smtp=N smtps=M" -> no port race
        let mut cmd = Command::new("/usr/bin/python3"); // Debian's python3-aiosmtpd lives there
        cmd.arg(d.join("smtp_sink.py"))
            .args(["--port", "0", "--tls-port", "0"])
            .arg("--cert")
            .arg(d.join("certs/server.pem"))
            .arg("--key")
            .arg(d.join("certs/server.key"))
            .arg("--users-file")
            .arg(d.join("users"))
            .arg("--spool")
            .arg(d.join("sink"))
            .arg("--deliver-root")
            .arg(d.join("mail"))
            .args(["--chown", &format!("{MAIL_UID}:{MAIL_GID}")]);
        let err = fs::File::create(&log).unwrap();
        let mut child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("spawn smtp_sink.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let daemon = Daemon {
            name: "smtp_sink",
            child,
            extra_pgids: vec![],
        };
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| {
                panic!(
                    "sink not ready: {}",
                    fs::read_to_string(&log).unwrap_or_default()
                )
            });
        let port = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("smtp="))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "bad READY line {line:?}: {}",
                    fs::read_to_string(&log).unwrap_or_default()
                )
            });
        self.sink_port = port;
        self.sink = Some(daemon);
    }

    fn start_postfix(&mut self) {
        let d = self.dir().to_path_buf();
        let pf = d.join("postfix");
        for sub in ["etc", "spool", "data"] {
            fs::create_dir_all(pf.join(sub)).unwrap();
        }
        let st = Command::new("chown")
            .arg("postfix")
            .arg(pf.join("data"))
            .status()
            .unwrap();
        assert!(st.success());
        let main = render(
            POSTFIX_MAIN,
            &[
                ("@PF@", pf.display().to_string()),
                ("@MAIL@", d.join("mail").display().to_string()),
                (
                    "@AUTHSOCK@",
                    d.join("run/auth-postfix").display().to_string(),
                ),
                ("@UID@", MAIL_UID.to_string()),
                ("@GID@", MAIL_GID.to_string()),
                ("@CERTS@", d.join("certs").display().to_string()),
            ],
        );
        fs::write(pf.join("etc/main.cf"), main).unwrap();
        let vmailbox: String = self
            .users
            .iter()
            .map(|(u, _)| format!("{u}@example.test {u}/Maildir/\n"))
            .collect();
        fs::write(pf.join("etc/vmailbox"), vmailbox).unwrap();
        backdate(&pf.join("etc/main.cf"));
        backdate(&pf.join("etc/vmailbox"));
        let etc = pf.join("etc");
        // `postfix check` wants a master.cf; the real one is written below
        fs::write(
            pf.join("etc/master.cf"),
            POSTFIX_MASTER.replace("@SMTP_PORT@", "25"),
        )
        .unwrap();
        let st = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&etc)
            .arg("check")
            .status()
            .unwrap();
        assert!(
            st.success(),
            "postfix check failed: {}",
            fs::read_to_string(pf.join("maillog")).unwrap_or_default()
        );
        for _ in 0..5 {
            let port = free_port();
            fs::write(
                pf.join("etc/master.cf"),
                POSTFIX_MASTER.replace("@SMTP_PORT@", &port.to_string()),
            )
            .unwrap();
            backdate(&pf.join("etc/master.cf"));
            let log = pf.join("start-fg.out");
            let mut daemon = Daemon::spawn(
                "postfix",
                Command::new("/usr/sbin/postfix")
                    .arg("-c")
                    .arg(&etc)
                    .arg("start-fg"),
                &log,
            );
            match wait_greeting(port, b"220 ", &mut daemon, &log, Duration::from_secs(10)) {
                Ok(()) => {
                    // the master is its own session leader: remember its group too
                    let mpid: i32 = fs::read_to_string(pf.join("spool/pid/master.pid"))
                        .unwrap()
                        .trim()
                        .parse()
                        .unwrap();
                    daemon.extra_pgids.push(mpid);
                    self.smtp_port = port;
                    self.postfix = Some(daemon);
                    return;
                }
                Err(_)
                    if fs::read_to_string(pf.join("maillog"))
                        .unwrap_or_default()
                        .contains("Address already in use") =>
                {
                    let _ = fs::remove_file(pf.join("maillog"));
                    continue;
                }
                Err(e) => panic!(
                    "{e}\n{}",
                    fs::read_to_string(pf.join("maillog")).unwrap_or_default()
                ),
            }
        }
        panic!("postfix: no free port after 5 tries");
    }
}

// ------------------------------------------------------ OAuth2 tokens --
/// A stand-in for an OAuth2 provider's token introspection endpoint
/// (RFC 7662), the way Dovecot's `oauth2` passdb checks bearer tokens
/// (`introspection_mode = post`): it answers `POST /introspect` with
/// `token=...` by `{"active": true, "username": ...}` for a granted token
/// and `{"active": false}` for an expired or unknown one. std-only, one
/// thread, one request per connection.
pub struct TokenIssuer {
    pub port: u16,
    /// token -> (user, still valid)
    tokens: Arc<Mutex<HashMap<String, (String, bool)>>>,
    /// every token Dovecot asked about, in order
    asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenIssuer {
    pub fn start() -> TokenIssuer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let tokens: Arc<Mutex<HashMap<String, (String, bool)>>> = Arc::default();
        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (tokens, asked, stop) = (tokens.clone(), asked.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(conn) = conn {
                        let _ = Self::answer(conn, &tokens, &asked);
                    }
                }
            })
        };
        TokenIssuer {
            port,
            tokens,
            asked,
            stop,
            thread: Some(thread),
        }
    }

    /// `token` is valid for `user` from now on.
    pub fn grant(&self, token: &str, user: &str) {
        self.tokens
            .lock()
            .unwrap()
            .insert(token.into(), (user.into(), true));
    }

    /// `token` has expired: introspection says it is no longer active.
    pub fn expire(&self, token: &str) {
        if let Some(t) = self.tokens.lock().unwrap().get_mut(token) {
            t.1 = false;
        }
    }

    /// Every token the server asked about, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }

    fn answer(
        conn: TcpStream,
        tokens: &Mutex<HashMap<String, (String, bool)>>,
        asked: &Mutex<Vec<String>>,
    ) -> std::io::Result<()> {
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut r = BufReader::new(conn.try_clone()?);
        let mut request_line = String::new();
        r.read_line(&mut request_line)?;
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        r.read_exact(&mut body)?;
        let body = String::from_utf8_lossy(&body).into_owned();
        let token = body
            .split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(percent_decode)
            .unwrap_or_default();
        asked.lock().unwrap().push(token.clone());
        let reply = match tokens.lock().unwrap().get(&token) {
            Some((user, true)) if request_line.starts_with("POST /introspect ") => {
                format!(
                    r#"{{"active": true, "username": "{user}", "scope": "mail", "token_type": "Bearer"}}"#
                )
            }
            _ => r#"{"active": false}"#.to_string(),
        };
        let mut w = conn;
        write!(
            w,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
            reply.len()
        )?;
        w.flush()
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop so that it sees the flag
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `application/x-www-form-urlencoded` value: `+` and `%XX`.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Minimal blocking IMAP client over plain TCP, enough for harness self-tests.
pub struct PlainImap {
    r: BufReader<TcpStream>,
    w: TcpStream,
    tag: u32,
}
impl PlainImap {
    pub fn connect(port: u16) -> PlainImap {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = PlainImap {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
            tag: 0,
        };
        let g = c.line();
        assert!(g.starts_with("* OK"), "{g}");
        c
    }
    pub fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l
    }
    pub fn cmd_raw(&mut self, raw: &str) {
        self.w.write_all(raw.as_bytes()).unwrap();
    }
    /// Send a command (optionally with one literal), return all lines up to the tagged reply.
    pub fn cmd(&mut self, c: &str, literal: Option<&[u8]>) -> Vec<String> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        match literal {
            None => write!(self.w, "{tag} {c}\r\n").unwrap(),
            Some(lit) => {
                write!(self.w, "{tag} {c} {{{}}}\r\n", lit.len()).unwrap();
                let cont = self.line();
                assert!(cont.starts_with('+'), "{cont}");
                self.w.write_all(lit).unwrap();
                self.w.write_all(b"\r\n").unwrap();
            }
        }
        let mut out = vec![];
        loop {
            let l = self.line();
            assert!(!l.is_empty(), "connection closed");
            let done = l.starts_with(&format!("{tag} "));
            out.push(l);
            if done {
                return out;
            }
        }
    }
}
