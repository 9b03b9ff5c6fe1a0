//! Real mail servers for tests: a Dovecot IMAP server and an aiosmtpd SMTP sink, each a fresh
//! instance on a free port of 127.0.0.1, in its own temp dir, killed when dropped.
//!
//! They are real servers rather than fakes so that the mail channel meets the protocol quirks
//! (IDLE, UIDPLUS, literal syntax, dot-stuffing, 8-bit bodies) that production servers have.
//! Everything here is synchronous and blocks only briefly (tens to hundreds of milliseconds
//! while a server starts), so it may be called from inside a tokio multi-thread test.
//!
//! Both also come in TLS variants (`start_tls`), with a certificate from a throwaway [`TestCa`]
//! that the client under test is told to trust, so that implicit TLS and STARTTLS are tested
//! against real servers with real certificate verification.
//!
//! Needs `dovecot` (Debian package dovecot-imapd) and `python3` with the aiosmtpd module;
//! `cargo xtask ci` installs both. The TLS variants also need the `openssl` command line.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

/// How long a server may take to start. Generous: under a parallel test run on two cores a
/// Python interpreter alone can take a second to import.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// Polling interval while waiting for a server; short, since startup is usually ~100 ms.
const POLL: Duration = Duration::from_millis(10);
/// A free port can be taken by another process between choosing and binding it; that many
/// fresh ports are tried before giving up.
const PORT_ATTEMPTS: usize = 5;

const INSTALL_DOVECOT: &str = "apt-get install --no-install-recommends dovecot-imapd";
const INSTALL_AIOSMTPD: &str = "python3 -m pip install aiosmtpd";
const INSTALL_OPENSSL: &str = "apt-get install --no-install-recommends openssl";

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{program} is not installed; `cargo xtask ci` installs it (or by hand: `{install}`)")]
    Missing {
        program: &'static str,
        install: &'static str,
    },
    #[error("{server} did not start: {reason}\n--- its output ---\n{log}")]
    Start {
        server: &'static str,
        reason: String,
        log: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, HarnessError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, HarnessError> {
        self.map_err(|source| HarnessError::Io {
            context: context(),
            source,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Test certificate authority
// ---------------------------------------------------------------------------------------------

/// A throwaway certificate authority and a server certificate it signed for `localhost` and
/// 127.0.0.1 (subjectAltName DNS:localhost, IP:127.0.0.1), valid for two days, made with the
/// `openssl` command line. Give it to [`Dovecot::start_tls`] and [`SmtpSink::start_tls`], and
/// [`TestCa::ca_pem`] to the client, as the only root it trusts.
///
/// Both keys are P-256. The certificates are what webpki (rustls) insists on: X.509 v3, the CA
/// with a critical basicConstraints CA:TRUE and keyUsage keyCertSign, the server's not a CA,
/// with the SAN and extendedKeyUsage serverAuth.
pub struct TestCa {
    ca_pem: Vec<u8>,
    ca: PathBuf,
    /// The server's certificate followed by the CA's, as servers usually send them.
    chain: PathBuf,
    key: PathBuf,
    _dir: TempDir,
}

impl TestCa {
    pub fn new() -> Result<TestCa, HarnessError> {
        let dir = temp_dir("seva-ca-")?;
        let root = dir.path();
        // Only the CA certificate is for others to read (a client's config may name the file).
        fs::set_permissions(root, fs::Permissions::from_mode(0o711))
            .context(|| format!("chmod {}", root.display()))?;
        let token = unique_token();
        // Own config files, so that neither the system's openssl.cnf nor OPENSSL_CONF adds
        // or changes extensions.
        write_file(
            &root.join("ca.cnf"),
            format!(
                "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = ca_ext\n\
                 [dn]\nCN = Seva test CA {token}\n\
                 [ca_ext]\nbasicConstraints = critical, CA:TRUE\n\
                 keyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n"
            )
            .as_bytes(),
        )?;
        write_file(
            &root.join("server.cnf"),
            b"[req]\nprompt = no\ndistinguished_name = dn\n[dn]\nCN = localhost\n\
              [server_ext]\nbasicConstraints = critical, CA:FALSE\n\
              keyUsage = critical, digitalSignature\n\
              extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost, IP:127.0.0.1\n\
              subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
        )?;
        // Plain words only, so that each command splits on whitespace.
        let p256 = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        let days = "-days 2 -sha256";
        openssl(
            root,
            &format!("req -x509 -new -config ca.cnf {p256} {days} -keyout ca.key -out ca.pem"),
        )?;
        openssl(
            root,
            &format!("req -new -config server.cnf {p256} -keyout server.key -out server.csr"),
        )?;
        openssl(
            root,
            &format!(
                "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAserial ca.srl \
                 -CAcreateserial {days} -extfile server.cnf -extensions server_ext \
                 -out server.pem"
            ),
        )?;
        // What a client will check, checked once here so that a bad certificate shows up as
        // this error rather than as a handshake failure in some test.
        let verified = openssl(
            root,
            "verify -CAfile ca.pem -purpose sslserver -verify_hostname localhost \
             -verify_ip 127.0.0.1 server.pem",
        )?;
        if verified.trim() != "server.pem: OK" {
            return Err(HarnessError::Io {
                context: "openssl verify of the test server certificate".to_owned(),
                source: io::Error::other(verified),
            });
        }

        let ca = root.join("ca.pem");
        let ca_pem = fs::read(&ca).context(|| format!("reading {}", ca.display()))?;
        fs::set_permissions(&ca, fs::Permissions::from_mode(0o644))
            .context(|| format!("chmod {}", ca.display()))?;
        let leaf = root.join("server.pem");
        let mut chain = fs::read(&leaf).context(|| format!("reading {}", leaf.display()))?;
        chain.extend_from_slice(&ca_pem);
        write_file(&root.join("chain.pem"), &chain)?;
        Ok(TestCa {
            ca_pem,
            ca,
            chain: root.join("chain.pem"),
            key: root.join("server.key"),
            _dir: dir,
        })
    }

    /// The CA certificate, PEM: what a client must trust.
    pub fn ca_pem(&self) -> Vec<u8> {
        self.ca_pem.clone()
    }

    /// The same, as a file (readable by anyone), for clients configured with a path. It lives
    /// as long as this `TestCa`.
    pub fn ca_path(&self) -> &Path {
        &self.ca
    }

    /// Copies the server's certificate chain and key into `dir` (created if need be), so that
    /// a server outlives this `TestCa` and restarts from its own copy. Returns (chain, key);
    /// the key is readable by its owner only, which is enough: Dovecot's config process and
    /// aiosmtpd, which read it, run as we do (root, or the calling user).
    fn install(&self, dir: &Path) -> Result<(PathBuf, PathBuf), HarnessError> {
        create_dir(dir)?;
        let chain = dir.join("cert.pem");
        let key = dir.join("key.pem");
        fs::copy(&self.chain, &chain).context(|| format!("copying to {}", chain.display()))?;
        fs::copy(&self.key, &key).context(|| format!("copying to {}", key.display()))?;
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
            .context(|| format!("chmod {}", key.display()))?;
        Ok((chain, key))
    }
}

/// Runs `openssl` in `dir` with `args`, split on whitespace; returns its stdout.
fn openssl(dir: &Path, args: &str) -> Result<String, HarnessError> {
    let out = match Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(HarnessError::Missing {
                program: "openssl",
                install: INSTALL_OPENSSL,
            });
        }
        Err(e) => return Err(e).context(|| "spawning openssl".to_owned()),
    };
    if !out.status.success() {
        return Err(HarnessError::Io {
            context: format!("openssl {args} (making the test CA)"),
            source: io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

// ---------------------------------------------------------------------------------------------
// Dovecot
// ---------------------------------------------------------------------------------------------

/// A Dovecot IMAP server on 127.0.0.1, a fresh instance per call, on a free high port, in its
/// own temp dir, killed on Drop. One user, whose INBOX is a Maildir; IDLE and UIDPLUS are on
/// (Dovecot's defaults). TLS is off, or with [`Dovecot::start_tls`] offered as STARTTLS on
/// `port` and as implicit TLS (imaps) on `tls_port`. A wrong password is answered `NO` after
/// about 0.5 s, without the growing per-address penalty a production Dovecot adds.
pub struct Dovecot {
    /// Plain IMAP; with TLS it offers STARTTLS.
    pub port: u16,
    /// Implicit TLS (imaps), for [`Dovecot::start_tls`] only.
    pub tls_port: Option<u16>,
    pub user: String,
    pub password: String,
    owner: Owner,
    maildir: PathBuf,
    log: PathBuf,
    child: Child,
    // Dropped after `child` is killed (fields drop after `Drop::drop`).
    _dir: TempDir,
}

impl Dovecot {
    /// Starts Dovecot and returns once the IMAP port answers with this instance's greeting.
    pub fn start() -> Result<Dovecot, HarnessError> {
        Dovecot::launch(None)
    }

    /// Like [`Dovecot::start`], with TLS from `ca`'s server certificate: `port` offers
    /// STARTTLS and `tls_port` is implicit TLS. Returns once the plain port greets and the TLS
    /// port is bound by this instance.
    ///
    /// `disable_plaintext_auth = yes`, as in production, but Dovecot counts a connection whose
    /// local and remote addresses are equal as secure, and every test connection is
    /// 127.0.0.1 to 127.0.0.1: a plaintext LOGIN before STARTTLS is still accepted and the
    /// greeting has no LOGINDISABLED. A test that needs to know whether a login went over TLS
    /// asks [`Dovecot::logins`].
    pub fn start_tls(ca: &TestCa) -> Result<Dovecot, HarnessError> {
        Dovecot::launch(Some(ca))
    }

    fn launch(ca: Option<&TestCa>) -> Result<Dovecot, HarnessError> {
        let program = dovecot_program();
        let owner = Owner::for_servers()?;
        let token = unique_token();
        let dir = temp_dir("seva-dovecot-")?;
        let root = dir.path().to_path_buf();
        // Dovecot's auth process (as `owner`) reads the passwd file and the mail processes
        // reach the Maildir below this dir: it must be traversable, though not listable.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o711))
            .context(|| format!("chmod {}", root.display()))?;
        let home = root.join("home");
        let maildir = home.join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            create_dir(&maildir.join(sub))?;
        }
        for path in [home.clone(), maildir.clone()]
            .into_iter()
            .chain(["cur", "new", "tmp"].map(|sub| maildir.join(sub)))
        {
            owner.chown(&path)?;
        }
        let user = "support".to_owned();
        let password = format!("pw-{token}");
        let passwd = root.join("passwd");
        write_file(&passwd, format!("{user}:{{PLAIN}}{password}\n").as_bytes())?;
        fs::set_permissions(&passwd, fs::Permissions::from_mode(0o644))
            .context(|| format!("chmod {}", passwd.display()))?;

        let tls = ca.map(|ca| ca.install(&root.join("tls"))).transpose()?;

        let log = root.join("dovecot.log");
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let tls = match &tls {
                Some((cert, key)) => Some(DovecotTls {
                    port: free_port_other_than(port)?,
                    cert,
                    key,
                }),
                None => None,
            };
            // A master that failed in an earlier attempt leaves its pid file and sockets behind.
            let _ = fs::remove_dir_all(root.join("run"));
            for sub in ["run", "state"] {
                create_dir(&root.join(sub))?;
            }
            let conf = root.join("dovecot.conf");
            write_file(
                &conf,
                dovecot_conf(&root, &owner, port, tls.as_ref(), &token, &passwd, &home).as_bytes(),
            )?;
            let mut child = spawn_dovecot(&program, &conf, &log)?;
            let tls_port = tls.as_ref().map(|tls| tls.port);
            let pid = child.id();
            // The master binds every listener before it starts any service, so once the plain
            // port greets the TLS port is bound too; checked anyway, and that it is ours.
            let ready = wait_until(&mut child, || {
                imap_greets(port, &token)
                    && tls_port.is_none_or(|tls| process_listens(pid, tls) && accepts(tls))
            });
            last_log = read_log(&log);
            match ready {
                Ok(()) => {
                    return Ok(Dovecot {
                        port,
                        tls_port,
                        user,
                        password,
                        owner,
                        maildir,
                        log,
                        child,
                        _dir: dir,
                    });
                }
                Err(Wait::Exited(_)) if port_was_taken(&last_log) => {}
                Err(wait) => {
                    if matches!(wait, Wait::TimedOut) {
                        kill_tree(&mut child);
                    }
                    return Err(HarnessError::Start {
                        server: "dovecot",
                        reason: wait.to_string(),
                        log: last_log,
                    });
                }
            }
        }
        Err(HarnessError::Start {
            server: "dovecot",
            reason: format!("{PORT_ATTEMPTS} free ports were all taken before it could bind"),
            log: last_log,
        })
    }

    /// Delivers one raw RFC 5322 message into the INBOX the way an MDA does: written to the
    /// Maildir's tmp/, owned by the mail user, then renamed into new/ (which Dovecot notices
    /// at once through inotify, so an IDLE client hears of it).
    pub fn deliver(&self, raw: &[u8]) -> Result<(), HarnessError> {
        let name = maildir_name();
        let tmp = self.maildir.join("tmp").join(&name);
        write_file(&tmp, raw)?;
        self.owner.chown(&tmp)?;
        let new = self.maildir.join("new").join(&name);
        fs::rename(&tmp, &new).context(|| format!("rename into {}", new.display()))
    }

    /// Every successful login so far, oldest first, from the lines Dovecot logs for them
    /// (`imap-login: Info: Login: user=<support>, method=PLAIN, ..., TLS, session=<...>`).
    /// Dovecot writes its log through a separate process, so a login the client has just seen
    /// succeed may take a moment to appear.
    pub fn logins(&self) -> Vec<Login> {
        let text = fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|line| line.split_once(" Login: ").map(|(_, rest)| rest))
            .map(|rest| {
                let fields: Vec<&str> = rest.split(", ").collect();
                Login {
                    user: fields
                        .iter()
                        .find_map(|f| f.strip_prefix("user=<")?.strip_suffix('>'))
                        .unwrap_or_default()
                        .to_owned(),
                    // Dovecot's %c: "TLS" after STARTTLS or on imaps, "secured" for a
                    // plaintext connection it trusts (loopback), absent otherwise.
                    tls: fields.contains(&"TLS"),
                }
            })
            .collect()
    }

    /// How many messages are in INBOX, and how many of them carry \Seen, read from the
    /// Maildir: every file in new/ and cur/; seen are those in cur/ whose `:2,` flags hold `S`.
    pub fn counts(&self) -> Result<(usize, usize), HarnessError> {
        // Dovecot renames files (new/ to cur/, and within cur/ when flags change) while we
        // read; a directory being renamed in may be listed inconsistently, so read until two
        // readings agree.
        let mut previous = self.snapshot()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let current = self.snapshot()?;
            if current == previous || Instant::now() > deadline {
                let seen = current.values().filter(|&&seen| seen).count();
                return Ok((current.len(), seen));
            }
            previous = current;
        }
    }

    /// Each message's unique part of its file name, and whether it is seen. new/ is read
    /// before cur/, and files only move from new/ to cur/, so none is missed; keying by the
    /// unique part counts a file seen in both readings once.
    fn snapshot(&self) -> Result<BTreeMap<String, bool>, HarnessError> {
        let mut messages = BTreeMap::new();
        for name in list_dir(&self.maildir.join("new"))? {
            let unique = name.split(':').next().unwrap_or(&name).to_owned();
            messages.insert(unique, false);
        }
        for name in list_dir(&self.maildir.join("cur"))? {
            let (unique, seen) = match name.split_once(":2,") {
                Some((unique, flags)) => (unique.to_owned(), flags.contains('S')),
                None => (name.clone(), false),
            };
            messages.insert(unique, seen);
        }
        Ok(messages)
    }
}

/// One successful IMAP login, from Dovecot's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    /// Whether the connection was TLS by then (imaps, or after STARTTLS).
    pub tls: bool,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        kill_tree(&mut self.child);
    }
}

/// Starts the master with configuration `conf`, in the foreground, so that it is our child and
/// Drop can kill it.
fn spawn_dovecot(program: &Path, conf: &Path, log: &Path) -> Result<Child, HarnessError> {
    // Dovecot logs to `log` once its log process runs; anything before goes to stderr.
    let out = open_log(log)?;
    let err = out.try_clone().context(|| "dup log file".to_owned())?;
    let mut command = Command::new(program);
    command
        .arg("-F")
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group, so that Drop reaches auth, login and imap children.
        .process_group(0);
    match command.spawn() {
        Ok(child) => Ok(child),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(HarnessError::Missing {
            program: "dovecot",
            install: INSTALL_DOVECOT,
        }),
        Err(e) => Err(e).context(|| format!("spawning {}", program.display())),
    }
}

/// Dovecot lives in /usr/sbin, which is not on a non-root user's PATH.
fn dovecot_program() -> PathBuf {
    let sbin = Path::new("/usr/sbin/dovecot");
    if sbin.exists() {
        sbin.to_path_buf()
    } else {
        PathBuf::from("dovecot")
    }
}

/// TLS for one Dovecot instance: the imaps port, and its copy of the certificate and key.
struct DovecotTls<'a> {
    port: u16,
    cert: &'a Path,
    key: &'a Path,
}

/// The whole configuration; `-c` means Debian's /etc/dovecot is not read at all, and every
/// path Dovecot writes to is inside `root`, so instances run side by side.
fn dovecot_conf(
    root: &Path,
    owner: &Owner,
    port: u16,
    tls: Option<&DovecotTls>,
    token: &str,
    passwd: &Path,
    home: &Path,
) -> String {
    // `ssl_cert = <path` reads the file's contents (without `<` the value would be the PEM
    // itself). Dovecot's config process reads them, as root (or as we run), and hands them to
    // the login processes, which run as the unprivileged owner and could not read the key.
    let (ssl, imaps) = match tls {
        Some(DovecotTls { port, cert, key }) => (
            format!(
                "ssl = yes\nssl_cert = <{}\nssl_key = <{}\nssl_min_protocol = TLSv1.2\n\
                 disable_plaintext_auth = yes",
                cert.display(),
                key.display()
            ),
            format!("address = 127.0.0.1\n    port = {port}\n    ssl = yes"),
        ),
        None => (
            "ssl = no\ndisable_plaintext_auth = no".to_owned(),
            "port = 0".to_owned(),
        ),
    };
    let root = root.display();
    let passwd = passwd.display();
    let home = home.display();
    let Owner {
        uid,
        gid,
        user,
        group,
    } = owner;
    format!(
        r"# Written by seva_channels::testing for one test.
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
# Tests read the greeting to be sure they reached this instance, not one on a reused port.
login_greeting = {token}
{ssl}
# A wrong password is refused after ~0.5 s (Dovecot flushes failures on a 500 ms timer)
# rather than 2 s: tests of failed logins would crawl.
auth_failure_delay = 0
# Dovecot refuses uid 0 for mail, so mail is owned by one unprivileged user (nobody when run
# as root, else the caller); its internal and login processes run as that user too, so the
# Debian users dovecot/dovenull are not needed and a non-root run works the same way.
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {passwd}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}
}}
service imap-login {{
  # chroot needs root; without it the login process works the same way here.
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    {imaps}
  }}
}}
service anvil {{
  chroot =
  # No growing per-IP delay after failed logins either (every client here is 127.0.0.1).
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"
    )
}

/// Whether something accepts TCP connections on the port.
fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Whether the IMAP port answers with this instance's greeting.
fn imap_greets(port: u16, token: &str) -> bool {
    // The greeting ends with it after a space; a mere `contains` would take seva-1-1 for
    // seva-1-10.
    let ending = format!(" {token}");
    first_line(port)
        .is_some_and(|line| line.starts_with("* OK") && line.trim_end().ends_with(&ending))
}

// ---------------------------------------------------------------------------------------------
// SMTP sink
// ---------------------------------------------------------------------------------------------

/// An SMTP sink on 127.0.0.1: `python3 -m aiosmtpd` with `aiosmtpd.handlers.Mailbox`, which
/// stores every message it accepts in a Maildir. No auth, 8BITMIME, 32 MB size limit. No TLS,
/// or with [`SmtpSink::start_tls`] STARTTLS (required) or implicit TLS (SMTPS) on `port`.
pub struct SmtpSink {
    pub port: u16,
    maildir: PathBuf,
    log: PathBuf,
    tls: Option<SinkTls>,
    child: Option<Child>,
    _dir: TempDir,
}

/// The sink's own copy of the certificate and key, and which kind of TLS it serves.
struct SinkTls {
    cert: PathBuf,
    key: PathBuf,
    implicit: bool,
}

impl SmtpSink {
    /// Starts the sink and returns once it listens and sends its 220 greeting.
    pub fn start() -> Result<SmtpSink, HarnessError> {
        SmtpSink::launch(temp_dir("seva-smtp-")?, None)
    }

    /// Like [`SmtpSink::start`], with TLS from `ca`'s server certificate. Without `implicit`,
    /// `port` is plain SMTP offering STARTTLS, and requiring it: until the client has
    /// switched to TLS, every command but EHLO/HELO, NOOP, RSET, QUIT and STARTTLS is refused
    /// with `530 Must issue a STARTTLS command first`. With `implicit`, `port` is SMTPS: TLS
    /// from the first byte, the 220 greeting inside it (and no STARTTLS offered).
    pub fn start_tls(ca: &TestCa, implicit: bool) -> Result<SmtpSink, HarnessError> {
        let dir = temp_dir("seva-smtp-")?;
        let (cert, key) = ca.install(&dir.path().join("tls"))?;
        SmtpSink::launch(
            dir,
            Some(SinkTls {
                cert,
                key,
                implicit,
            }),
        )
    }

    fn launch(dir: TempDir, tls: Option<SinkTls>) -> Result<SmtpSink, HarnessError> {
        let mut sink = SmtpSink {
            port: 0,
            maildir: dir.path().join("Maildir"),
            log: dir.path().join("aiosmtpd.log"),
            tls,
            child: None,
            _dir: dir,
        };
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            sink.port = free_port()?;
            match sink.spawn() {
                Err(HarnessError::Start { log, .. }) if port_was_taken(&log) => last = Some(log),
                Err(e) => return Err(e),
                Ok(()) => return Ok(sink),
            }
        }
        Err(HarnessError::Start {
            server: "aiosmtpd",
            reason: format!("{PORT_ATTEMPTS} free ports were all taken before it could bind"),
            log: last.unwrap_or_default(),
        })
    }

    /// Kills the sink; afterwards its port refuses connections. Messages already received stay.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_tree(&mut child);
        }
    }

    /// Starts the sink again on the same port with the same Maildir (and the same TLS, if
    /// any), and waits until ready.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.spawn()
    }

    /// Every message received so far, in arrival order, as the handler stored it: Python's
    /// email package re-serialises each one with LF line endings, and the handler adds the
    /// headers X-Peer, X-MailFrom and X-RcptTo after the message's own.
    pub fn received(&self) -> Result<Vec<Vec<u8>>, HarnessError> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.maildir.join(sub);
            if !dir.exists() {
                continue;
            }
            for name in list_dir(&dir)? {
                files.push((arrival_key(&name), dir.join(name)));
            }
        }
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| fs::read(&path).context(|| format!("reading {}", path.display())))
            .collect()
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let out = open_log(&self.log)?;
        let err = out.try_clone().context(|| "dup log file".to_owned())?;
        let mut command = Command::new("python3");
        command
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port));
        if let Some(tls) = &self.tls {
            // --tlscert alone makes STARTTLS required (aiosmtpd's default, unless
            // --no-requiretls).
            let (cert, key) = if tls.implicit {
                ("--smtpscert", "--smtpskey")
            } else {
                ("--tlscert", "--tlskey")
            };
            command.arg(cert).arg(&tls.cert).arg(key).arg(&tls.key);
        }
        command
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(HarnessError::Missing {
                    program: "python3 (with aiosmtpd)",
                    install: INSTALL_AIOSMTPD,
                });
            }
            Err(e) => return Err(e).context(|| "spawning python3 -m aiosmtpd".to_owned()),
        };
        let port = self.port;
        let pid = child.id();
        let implicit = self.tls.as_ref().is_some_and(|tls| tls.implicit);
        // Listening is checked on our own process, not just "something answers on the port":
        // another test's server may have taken the port, and then this one is about to exit.
        // With SMTPS the greeting comes only after a TLS handshake; listening is enough then
        // (the certificate was loaded before the socket was opened).
        let ready = wait_until(&mut child, || {
            process_listens(pid, port)
                && if implicit {
                    accepts(port)
                } else {
                    first_line(port).is_some_and(|l| l.starts_with("220"))
                }
        });
        match ready {
            Ok(()) => {
                self.child = Some(child);
                Ok(())
            }
            Err(wait) => {
                if matches!(wait, Wait::TimedOut) {
                    kill_tree(&mut child);
                }
                let log = read_log(&self.log);
                if log.contains("No module named aiosmtpd") {
                    return Err(HarnessError::Missing {
                        program: "aiosmtpd",
                        install: INSTALL_AIOSMTPD,
                    });
                }
                Err(HarnessError::Start {
                    server: "aiosmtpd",
                    reason: wait.to_string(),
                    log,
                })
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sort key for the Maildir names Python's mailbox module writes,
/// `{secs}.M{micros}P{pid}Q{counter}.{host}`: time first (numerically: micros are not
/// zero-padded), then the per-process counter. Other names sort last, by name.
fn arrival_key(name: &str) -> (u64, u64, u64, String) {
    fn parse(name: &str) -> Option<(u64, u64, u64)> {
        let (secs, rest) = name.split_once(".M")?;
        let (micros, rest) = rest.split_once('P')?;
        let (_pid, rest) = rest.split_once('Q')?;
        let counter = rest.split('.').next()?;
        Some((
            secs.parse().ok()?,
            micros.parse().ok()?,
            counter.parse().ok()?,
        ))
    }
    let (secs, micros, counter) = parse(name).unwrap_or((u64::MAX, u64::MAX, u64::MAX));
    (secs, micros, counter, name.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing
// ---------------------------------------------------------------------------------------------

/// The unprivileged user that owns the mail and runs Dovecot's processes.
#[derive(Debug, Clone)]
struct Owner {
    uid: u32,
    gid: u32,
    user: String,
    group: String,
}

impl Owner {
    /// `nobody` when we are root (Dovecot will not serve mail as uid 0); otherwise ourselves,
    /// since an ordinary user cannot hand files to anyone else.
    fn for_servers() -> Result<Owner, HarnessError> {
        let me = id(&["-u"])?;
        let who: &[&str] = if me == "0" { &["nobody"] } else { &[] };
        let number = |flag: &str| -> Result<u32, HarnessError> {
            let text = id(&[&[flag], who].concat())?;
            text.parse().map_err(|_| HarnessError::Io {
                context: format!("looking up the mail user with id {flag}"),
                source: io::Error::other(format!("not a number: {text:?}")),
            })
        };
        Ok(Owner {
            uid: number("-u")?,
            gid: number("-g")?,
            user: id(&[&["-un"], who].concat())?,
            group: id(&[&["-gn"], who].concat())?,
        })
    }

    fn chown(&self, path: &Path) -> Result<(), HarnessError> {
        chown(path, Some(self.uid), Some(self.gid))
            .context(|| format!("chown {}:{} {}", self.uid, self.gid, path.display()))
    }
}

/// `id`, rather than parsing /etc/passwd, so that users from NSS (LDAP and the like) work.
fn id(args: &[&str]) -> Result<String, HarnessError> {
    let out = Command::new("id")
        .args(args)
        .output()
        .context(|| format!("running id {}", args.join(" ")))?;
    if !out.status.success() {
        return Err(HarnessError::Io {
            context: format!("looking up the mail user with id {}", args.join(" ")),
            source: io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

enum Wait {
    Exited(ExitStatus),
    TimedOut,
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wait::Exited(status) => write!(f, "it exited ({status})"),
            Wait::TimedOut => write!(f, "not ready after {}s", START_DEADLINE.as_secs()),
        }
    }
}

/// Polls `ready` until it holds, the child exits, or the deadline passes.
fn wait_until(child: &mut Child, mut ready: impl FnMut() -> bool) -> Result<(), Wait> {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Wait::Exited(status));
        }
        if ready() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Wait::TimedOut);
        }
        std::thread::sleep(POLL);
    }
}

/// Connects to the port and reads the server's first line, if it sends one within a second.
fn first_line(port: u16) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    Some(line)
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port`: the socket's inode
/// from /proc/net/tcp, looked for among the process's open files.
fn process_listens(pid: u32, port: u16) -> bool {
    const LISTEN: &str = "0A";
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let local = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&LISTEN))
                .then(|| fields.get(9).map(|inode| format!("socket:[{inode}]")))
                .flatten()
        })
        .collect();
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok).any(|fd| {
        fs::read_link(fd.path()).is_ok_and(|target| {
            inodes
                .iter()
                .any(|inode| target.as_os_str() == inode.as_str())
        })
    })
}

/// Kills the child's whole process group (it leads one: `process_group(0)` at spawn), reaps
/// the child, then waits briefly until no process of the group is still running, so that
/// the port refuses connections once this returns. `kill(1)` rather than a signal crate:
/// this workspace forbids unsafe code and needs no extra dependency for it.
fn kill_tree(child: &mut Child) {
    let group = child.id();
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    // In case `kill` itself is missing: at least the leader goes.
    let _ = child.kill();
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(2);
    while group_running(group) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether any process in group `group` is alive. Zombies don't count: they have closed their
/// sockets, and orphans killed with the master are reaped by init, not by us.
fn group_running(group: u32) -> bool {
    let Ok(procs) = fs::read_dir("/proc") else {
        return false;
    };
    procs.filter_map(Result::ok).any(|entry| {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        let Some((_, after)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        let alive = fields
            .first()
            .is_some_and(|state| !matches!(*state, "Z" | "X"));
        alive && fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(group)
    })
}

fn port_was_taken(log: &str) -> bool {
    log.to_ascii_lowercase().contains("address already in use")
}

/// A port that was free a moment ago. Another process may take it before the server binds;
/// the callers retry with a fresh one when the server says so.
fn free_port() -> Result<u16, HarnessError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context(|| "binding 127.0.0.1:0 to find a free port".to_owned())?;
    let addr = listener
        .local_addr()
        .context(|| "reading a bound port".to_owned())?;
    Ok(addr.port())
}

/// A second free port, for a server that binds two: the first was released when it was
/// chosen, so the kernel may offer it again.
fn free_port_other_than(port: u16) -> Result<u16, HarnessError> {
    loop {
        let other = free_port()?;
        if other != port {
            return Ok(other);
        }
    }
}

/// Unique across processes and instances: greetings, passwords.
fn unique_token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "seva-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A Maildir file name, `{secs}.M{micros}P{pid}.seva`, with a time strictly increasing within
/// the process: Dovecot gives new messages UIDs in file name order, so messages delivered one
/// after another get increasing UIDs even within one microsecond. Micros are zero-padded so
/// that the names also sort as text.
fn maildir_name() -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let previous = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or_else(|last| last);
    let stamp = now.max(previous + 1);
    format!(
        "{}.M{:06}P{}.seva",
        stamp / 1_000_000,
        stamp % 1_000_000,
        std::process::id()
    )
}

fn temp_dir(prefix: &str) -> Result<TempDir, HarnessError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context(|| "creating a temp dir".to_owned())
}

fn create_dir(path: &Path) -> Result<(), HarnessError> {
    fs::create_dir_all(path).context(|| format!("mkdir {}", path.display()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), HarnessError> {
    fs::write(path, bytes).context(|| format!("writing {}", path.display()))
}

fn open_log(path: &Path) -> Result<fs::File, HarnessError> {
    fs::File::create(path).context(|| format!("creating {}", path.display()))
}

/// The server's output for an error message; the tail, since the cause is usually last.
fn read_log(path: &Path) -> String {
    let text = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn list_dir(dir: &Path) -> Result<Vec<String>, HarnessError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).context(|| format!("listing {}", dir.display()))? {
        let entry = entry.context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::{Ipv4Addr, TcpStream};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tokio_rustls::rustls::crypto::ring;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

    use super::{Dovecot, Login, SmtpSink, TestCa};

    type TlsStream = StreamOwned<ClientConnection, TcpStream>;

    /// Plain TCP, or TLS over it.
    enum Stream {
        Plain(TcpStream),
        Tls(Box<TlsStream>),
    }

    impl Read for Stream {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self {
                Stream::Plain(tcp) => tcp.read(buf),
                Stream::Tls(tls) => tls.read(buf),
            }
        }
    }

    impl Write for Stream {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            match self {
                Stream::Plain(tcp) => tcp.write(buf),
                Stream::Tls(tls) => tls.write(buf),
            }
        }

        fn flush(&mut self) -> io::Result<()> {
            match self {
                Stream::Plain(tcp) => tcp.flush(),
                Stream::Tls(tls) => tls.flush(),
            }
        }
    }

    fn tcp(port: u16) -> TcpStream {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    /// A TLS handshake over `tcp` as the mail channel makes it: rustls with `ca_pem` as the
    /// only root, the server's certificate checked for `name` (a DNS name or an IP address).
    fn handshake(mut tcp: TcpStream, ca_pem: &[u8], name: &str) -> io::Result<TlsStream> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let mut conn = ClientConnection::new(Arc::new(config), name).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        Ok(StreamOwned::new(conn, tcp))
    }

    /// One line-based text protocol connection (IMAP and SMTP both are).
    struct Conn {
        reader: BufReader<Stream>,
    }

    impl Conn {
        fn open(port: u16) -> Conn {
            Conn {
                reader: BufReader::new(Stream::Plain(tcp(port))),
            }
        }

        /// Implicit TLS, verified against `ca_pem` for `name`.
        fn open_tls(port: u16, ca_pem: &[u8], name: &str) -> Conn {
            let tls = handshake(tcp(port), ca_pem, name).unwrap();
            Conn {
                reader: BufReader::new(Stream::Tls(Box::new(tls))),
            }
        }

        /// Switches to TLS after the server's go-ahead for STARTTLS.
        fn starttls(self, ca_pem: &[u8], name: &str) -> Conn {
            // Anything the server sent after its go-ahead would have been plaintext injected
            // before the handshake.
            assert!(
                self.reader.buffer().is_empty(),
                "data after the STARTTLS reply"
            );
            let Stream::Plain(tcp) = self.reader.into_inner() else {
                panic!("STARTTLS on a TLS connection");
            };
            let tls = handshake(tcp, ca_pem, name).unwrap();
            Conn {
                reader: BufReader::new(Stream::Tls(Box::new(tls))),
            }
        }

        fn line(&mut self) -> String {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "connection closed");
            line
        }

        fn send(&mut self, bytes: &[u8]) {
            let stream = self.reader.get_mut();
            stream.write_all(bytes).unwrap();
            stream.flush().unwrap();
        }

        /// Sends an IMAP command and returns every line up to and including the tagged one.
        fn imap(&mut self, tag: &str, command: &str) -> Vec<String> {
            self.send(format!("{tag} {command}\r\n").as_bytes());
            let mut lines = Vec::new();
            loop {
                let line = self.line();
                let done = line.starts_with(&format!("{tag} "));
                lines.push(line);
                if done {
                    return lines;
                }
            }
        }

        /// Sends SMTP input and returns the (possibly multi-line) reply's last line.
        fn smtp(&mut self, input: &[u8]) -> String {
            self.smtp_lines(input).pop().unwrap()
        }

        /// Sends SMTP input and returns every line of the reply.
        fn smtp_lines(&mut self, input: &[u8]) -> Vec<String> {
            self.send(input);
            let mut lines = Vec::new();
            loop {
                let line = self.line();
                let last = line.as_bytes().get(3) != Some(&b'-');
                lines.push(line);
                if last {
                    return lines;
                }
            }
        }

        /// The SMTP extensions an EHLO reply lists, e.g. "STARTTLS", "SIZE 33554432".
        fn ehlo(&mut self) -> Vec<String> {
            let lines = self.smtp_lines(b"EHLO harness.test\r\n");
            assert!(lines.iter().all(|l| l.starts_with("250")), "{lines:?}");
            lines[1..]
                .iter()
                .map(|l| l.get(4..).unwrap_or_default().trim_end().to_owned())
                .collect()
        }
    }

    fn message(subject: &str, body: &str) -> String {
        format!(
            "From: Asha <asha@example.test>\r\nTo: support@example.test\r\nSubject: {subject}\r\n\
             Message-ID: <{subject}@example.test>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
             {body}\r\n"
        )
    }

    fn send_mail(port: u16, raw: &str) {
        let mut smtp = Conn::open(port);
        assert!(smtp.line().starts_with("220"));
        send_mail_over(&mut smtp, raw);
    }

    /// From EHLO to QUIT, on a connection whose greeting was read.
    fn send_mail_over(smtp: &mut Conn, raw: &str) {
        assert!(smtp.smtp(b"EHLO harness.test\r\n").starts_with("250"));
        assert!(
            smtp.smtp(b"MAIL FROM:<asha@example.test>\r\n")
                .starts_with("250")
        );
        assert!(
            smtp.smtp(b"RCPT TO:<support@example.test>\r\n")
                .starts_with("250")
        );
        assert!(smtp.smtp(b"DATA\r\n").starts_with("354"));
        // Dot-stuffing: a body line starting with '.' is sent with a second one.
        let stuffed = raw.replace("\r\n.", "\r\n..");
        assert!(
            smtp.smtp(format!("{stuffed}.\r\n").as_bytes())
                .starts_with("250")
        );
        assert!(smtp.smtp(b"QUIT\r\n").starts_with("221"));
    }

    fn refuses(port: u16) -> bool {
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err()
    }

    #[test]
    fn harness_dovecot_serves_delivered_mail_over_imap() {
        let started = Instant::now();
        let dovecot = Dovecot::start().unwrap();
        eprintln!("dovecot ready in {:?}", started.elapsed());
        dovecot
            .deliver(message("first", "नमस्ते, मेरा ऑर्डर नहीं आया").as_bytes())
            .unwrap();
        dovecot
            .deliver(message("second", "سلام، سفارش من نرسیده").as_bytes())
            .unwrap();
        assert_eq!(dovecot.counts().unwrap(), (2, 0));

        let mut imap = Conn::open(dovecot.port);
        assert!(imap.line().starts_with("* OK"));
        let login = imap.imap(
            "a",
            &format!("LOGIN {} \"{}\"", dovecot.user, dovecot.password),
        );
        let ok = login.last().unwrap();
        assert!(ok.starts_with("a OK"), "{login:?}");
        // The mail channel relies on both.
        assert!(ok.contains(" IDLE ") && ok.contains(" UIDPLUS "), "{ok}");

        let select = imap.imap("b", "SELECT INBOX");
        assert!(select.iter().any(|l| l == "* 2 EXISTS\r\n"), "{select:?}");

        // UIDs follow delivery order.
        let fetch = imap.imap("c", "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
        let subjects: Vec<&String> = fetch.iter().filter(|l| l.starts_with("Subject")).collect();
        assert_eq!(subjects, ["Subject: first\r\n", "Subject: second\r\n"]);

        let store = imap.imap("d", "UID STORE 2 +FLAGS.SILENT (\\Seen)");
        assert!(store.last().unwrap().starts_with("d OK"), "{store:?}");
        assert_eq!(dovecot.counts().unwrap(), (2, 1));

        // A message delivered while the client is connected is announced.
        dovecot
            .deliver(message("third", "late").as_bytes())
            .unwrap();
        let noop = imap.imap("e", "NOOP");
        assert!(noop.iter().any(|l| l == "* 3 EXISTS\r\n"), "{noop:?}");

        // And pushed to an IDLE client at once (Dovecot watches the Maildir with inotify; its
        // fallback poll every 30 s would outlast the 10 s read timeout).
        imap.send(b"f IDLE\r\n");
        assert!(imap.line().starts_with("+ "));
        dovecot
            .deliver(message("fourth", "while idle").as_bytes())
            .unwrap();
        assert_eq!(imap.line(), "* 4 EXISTS\r\n");
        imap.send(b"DONE\r\n");
        while !imap.line().starts_with("f OK") {}
        imap.imap("z", "LOGOUT");

        let port = dovecot.port;
        drop(dovecot);
        assert!(refuses(port), "dovecot still listens after drop");
    }

    #[test]
    fn harness_dovecots_run_side_by_side_with_their_own_users() {
        let one = Dovecot::start().unwrap();
        let two = Dovecot::start().unwrap();
        assert_ne!(one.port, two.port);
        one.deliver(message("only-in-one", "x").as_bytes()).unwrap();
        assert_eq!(one.counts().unwrap(), (1, 0));
        assert_eq!(two.counts().unwrap(), (0, 0));
        // Each instance has its own password: one's does not open the other.
        let mut imap = Conn::open(two.port);
        imap.line();
        let login = imap.imap("a", &format!("LOGIN {} \"{}\"", one.user, one.password));
        assert!(login.last().unwrap().starts_with("a NO"), "{login:?}");
    }

    #[test]
    fn harness_smtp_sink_receives_stops_and_restarts() {
        let started = Instant::now();
        let mut sink = SmtpSink::start().unwrap();
        eprintln!("aiosmtpd ready in {:?}", started.elapsed());
        assert!(sink.received().unwrap().is_empty());

        let first = message("hello", "naïve ☃ body\r\n.starts with a dot\r\nend");
        send_mail(sink.port, &first);
        let received = sink.received().unwrap();
        assert_eq!(received.len(), 1);
        let text = String::from_utf8(received[0].clone()).unwrap();
        assert!(text.contains("Subject: hello\n"), "{text}");
        assert!(text.contains("X-RcptTo: support@example.test\n"), "{text}");
        // 8-bit survives as is, and the dot-stuffing was undone.
        assert!(
            text.ends_with("\n\nnaïve ☃ body\n.starts with a dot\nend\n"),
            "{text:?}"
        );

        let port = sink.port;
        sink.stop();
        assert!(refuses(port));

        let started = Instant::now();
        sink.restart().unwrap();
        eprintln!("aiosmtpd restarted in {:?}", started.elapsed());
        assert_eq!(sink.port, port);
        send_mail(sink.port, &message("again", "second message"));
        let received = sink.received().unwrap();
        assert_eq!(received.len(), 2);
        let subjects: Vec<bool> = received
            .iter()
            .map(|m| String::from_utf8_lossy(m).contains("Subject: again\n"))
            .collect();
        assert_eq!(subjects, [false, true]);

        drop(sink);
        assert!(refuses(port), "aiosmtpd still listens after drop");
    }

    /// What the mail channel's tests will do: start servers from async code on a multi-thread
    /// runtime and talk to them with tokio sockets.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn harness_servers_start_inside_a_tokio_runtime() {
        use tokio::io::{AsyncBufReadExt, BufReader};

        let dovecot = Dovecot::start().unwrap();
        let sink = SmtpSink::start().unwrap();
        for (port, greeting) in [(dovecot.port, "* OK"), (sink.port, "220 ")] {
            let stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .await
                .unwrap();
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line).await.unwrap();
            assert!(line.starts_with(greeting), "{line}");
        }
    }

    /// Polls `logins` until it has `n` entries (Dovecot logs through a separate process).
    fn wait_for_logins(dovecot: &Dovecot, n: usize) -> Vec<Login> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let logins = dovecot.logins();
            if logins.len() >= n || Instant::now() > deadline {
                return logins;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn harness_dovecot_serves_imaps_and_starttls_with_a_certificate_the_test_ca_signed() {
        let started = Instant::now();
        let ca = TestCa::new().unwrap();
        eprintln!("test CA made in {:?}", started.elapsed());
        let started = Instant::now();
        let dovecot = Dovecot::start_tls(&ca).unwrap();
        eprintln!("dovecot with TLS ready in {:?}", started.elapsed());
        let tls_port = dovecot.tls_port.unwrap();
        assert_ne!(tls_port, dovecot.port);
        let login = format!("LOGIN {} \"{}\"", dovecot.user, dovecot.password);

        // Implicit TLS: the greeting comes inside it, and offers no STARTTLS.
        let mut imap = Conn::open_tls(tls_port, &ca.ca_pem(), "localhost");
        let greeting = imap.line();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        assert!(!greeting.contains("STARTTLS"), "{greeting}");
        let reply = imap.imap("a", &login);
        assert!(reply.last().unwrap().starts_with("a OK"), "{reply:?}");
        imap.imap("z", "LOGOUT");

        // The certificate also names 127.0.0.1.
        let mut imap = Conn::open_tls(tls_port, &ca.ca_pem(), "127.0.0.1");
        assert!(imap.line().starts_with("* OK"));

        // Verification is real: a client trusting another CA refuses the server.
        let other = TestCa::new().unwrap();
        let Err(refused) = handshake(tcp(tls_port), &other.ca_pem(), "localhost") else {
            panic!("a client trusting another CA accepted the server");
        };
        assert!(refused.to_string().contains("UnknownIssuer"), "{refused}");

        // STARTTLS on the plain port: offered in the greeting, gone once in TLS.
        let mut imap = Conn::open(dovecot.port);
        let greeting = imap.line();
        assert!(greeting.contains(" STARTTLS"), "{greeting}");
        let reply = imap.imap("a", "STARTTLS");
        assert!(reply.last().unwrap().starts_with("a OK"), "{reply:?}");
        let mut imap = imap.starttls(&ca.ca_pem(), "localhost");
        let capability = imap.imap("b", "CAPABILITY");
        assert!(!capability[0].contains("STARTTLS"), "{capability:?}");
        let reply = imap.imap("c", &login);
        assert!(reply.last().unwrap().starts_with("c OK"), "{reply:?}");
        imap.imap("z", "LOGOUT");

        // Dovecot counts loopback connections as secure: even with disable_plaintext_auth a
        // plaintext LOGIN works here. Only its log tells the logins apart.
        let mut imap = Conn::open(dovecot.port);
        let greeting = imap.line();
        assert!(!greeting.contains("LOGINDISABLED"), "{greeting}");
        let reply = imap.imap("a", &login);
        assert!(reply.last().unwrap().starts_with("a OK"), "{reply:?}");
        imap.imap("z", "LOGOUT");

        let logins = wait_for_logins(&dovecot, 3);
        let tls: Vec<bool> = logins.iter().map(|l| l.tls).collect();
        assert_eq!(tls, [true, true, false], "{logins:?}");
        assert!(logins.iter().all(|l| l.user == dovecot.user), "{logins:?}");
    }

    #[test]
    fn harness_smtp_sink_requires_starttls_also_after_a_restart() {
        let ca = TestCa::new().unwrap();
        let started = Instant::now();
        let mut sink = SmtpSink::start_tls(&ca, false).unwrap();
        eprintln!("aiosmtpd with STARTTLS ready in {:?}", started.elapsed());

        let mut smtp = Conn::open(sink.port);
        assert!(smtp.line().starts_with("220"));
        let extensions = smtp.ehlo();
        assert!(extensions.iter().any(|e| e == "STARTTLS"), "{extensions:?}");
        let refused = smtp.smtp(b"MAIL FROM:<asha@example.test>\r\n");
        assert!(refused.starts_with("530"), "{refused}");
        assert!(smtp.smtp(b"STARTTLS\r\n").starts_with("220"));
        let mut smtp = smtp.starttls(&ca.ca_pem(), "localhost");
        let extensions = smtp.ehlo();
        assert!(
            !extensions.iter().any(|e| e == "STARTTLS"),
            "{extensions:?}"
        );
        send_mail_over(&mut smtp, &message("secret", "over TLS"));
        let received = sink.received().unwrap();
        assert_eq!(received.len(), 1);
        assert!(String::from_utf8_lossy(&received[0]).contains("Subject: secret\n"));

        let port = sink.port;
        sink.restart().unwrap();
        assert_eq!(sink.port, port);
        let mut smtp = Conn::open(sink.port);
        assert!(smtp.line().starts_with("220"));
        assert!(smtp.ehlo().iter().any(|e| e == "STARTTLS"));
        let refused = smtp.smtp(b"MAIL FROM:<asha@example.test>\r\n");
        assert!(refused.starts_with("530"), "{refused}");
    }

    #[test]
    fn harness_smtps_sink_speaks_tls_from_the_first_byte() {
        let ca = TestCa::new().unwrap();
        let started = Instant::now();
        let mut sink = SmtpSink::start_tls(&ca, true).unwrap();
        eprintln!("aiosmtpd with SMTPS ready in {:?}", started.elapsed());

        let mut smtp = Conn::open_tls(sink.port, &ca.ca_pem(), "127.0.0.1");
        assert!(smtp.line().starts_with("220"));
        let extensions = smtp.ehlo();
        assert!(
            !extensions.iter().any(|e| e == "STARTTLS"),
            "{extensions:?}"
        );
        send_mail_over(&mut smtp, &message("implicit", "over SMTPS"));
        assert_eq!(sink.received().unwrap().len(), 1);

        let other = TestCa::new().unwrap();
        assert!(handshake(tcp(sink.port), &other.ca_pem(), "localhost").is_err());

        // The sink outlives its CA: it restarts from its own copy of the certificate.
        let ca_pem = ca.ca_pem();
        drop(ca);
        sink.restart().unwrap();
        let mut smtp = Conn::open_tls(sink.port, &ca_pem, "localhost");
        assert!(smtp.line().starts_with("220"));
        send_mail_over(&mut smtp, &message("again", "after restart"));
        assert_eq!(sink.received().unwrap().len(), 2);
    }

    #[test]
    fn harness_smtp_sink_takes_a_large_message() {
        let sink = SmtpSink::start().unwrap();
        let line = "0123456789".repeat(7);
        let body = vec![line.as_str(); 5 * 1024 * 1024 / 72].join("\r\n");
        send_mail(sink.port, &message("big", &body));
        let received = sink.received().unwrap();
        assert_eq!(received.len(), 1);
        assert!(received[0].len() > 5 * 1000 * 1000);
    }
}
