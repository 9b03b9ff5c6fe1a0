//! Real mail servers for tests: a Dovecot IMAP server and an aiosmtpd SMTP sink, each a fresh
//! instance on a free port of 127.0.0.1, in its own temp dir, killed when dropped.
//!
//! They are real servers rather than fakes so that the mail channel meets the protocol quirks
//! (IDLE, UIDPLUS, literal syntax, dot-stuffing, 8-bit bodies) that production servers have.
//! Everything here is synchronous and blocks only briefly (tens to hundreds of milliseconds
//! while a server starts), so it may be called from inside a tokio multi-thread test.
//!
//! Needs `dovecot` (Debian package dovecot-imapd) and `python3` with the aiosmtpd module;
//! `cargo xtask ci` installs both.

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
// Dovecot
// ---------------------------------------------------------------------------------------------

/// A Dovecot IMAP server on 127.0.0.1, a fresh instance per call, on a free high port, in its
/// own temp dir, killed on Drop. One user, whose INBOX is a Maildir; IDLE and UIDPLUS are on
/// (Dovecot's defaults), TLS is off. A wrong password is answered `NO` after about 0.5 s,
/// without the growing per-address penalty a production Dovecot adds.
pub struct Dovecot {
    pub port: u16,
    pub user: String,
    pub password: String,
    owner: Owner,
    maildir: PathBuf,
    child: Child,
    // Dropped after `child` is killed (fields drop after `Drop::drop`).
    _dir: TempDir,
}

impl Dovecot {
    /// Starts Dovecot and returns once the IMAP port answers with this instance's greeting.
    pub fn start() -> Result<Dovecot, HarnessError> {
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

        let log = root.join("dovecot.log");
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            // A master that failed in an earlier attempt leaves its pid file and sockets behind.
            let _ = fs::remove_dir_all(root.join("run"));
            for sub in ["run", "state"] {
                create_dir(&root.join(sub))?;
            }
            let conf = root.join("dovecot.conf");
            write_file(
                &conf,
                dovecot_conf(&root, &owner, port, &token, &passwd, &home).as_bytes(),
            )?;
            // Dovecot logs to `log` once its log process runs; anything before goes to stderr.
            let out = open_log(&log)?;
            let err = out.try_clone().context(|| "dup log file".to_owned())?;
            let mut command = Command::new(&program);
            command
                .arg("-F") // foreground: the master is our child, so Drop can kill it
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                // Its own process group, so that Drop reaches auth, login and imap children.
                .process_group(0);
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(HarnessError::Missing {
                        program: "dovecot",
                        install: INSTALL_DOVECOT,
                    });
                }
                Err(e) => return Err(e).context(|| format!("spawning {}", program.display())),
            };
            let ready = wait_until(&mut child, || imap_greets(port, &token));
            last_log = read_log(&log);
            match ready {
                Ok(()) => {
                    return Ok(Dovecot {
                        port,
                        user,
                        password,
                        owner,
                        maildir,
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

impl Drop for Dovecot {
    fn drop(&mut self) {
        kill_tree(&mut self.child);
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

/// The whole configuration; `-c` means Debian's /etc/dovecot is not read at all, and every
/// path Dovecot writes to is inside `root`, so instances run side by side.
fn dovecot_conf(
    root: &Path,
    owner: &Owner,
    port: u16,
    token: &str,
    passwd: &Path,
    home: &Path,
) -> String {
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
ssl = no
disable_plaintext_auth = no
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
    port = 0
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
/// stores every message it accepts in a Maildir. No auth, no TLS, 8BITMIME, 32 MB size limit.
pub struct SmtpSink {
    pub port: u16,
    maildir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    _dir: TempDir,
}

impl SmtpSink {
    /// Starts the sink and returns once it listens and sends its 220 greeting.
    pub fn start() -> Result<SmtpSink, HarnessError> {
        let dir = temp_dir("seva-smtp-")?;
        let mut sink = SmtpSink {
            port: 0,
            maildir: dir.path().join("Maildir"),
            log: dir.path().join("aiosmtpd.log"),
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

    /// Starts the sink again on the same port with the same Maildir, and waits until ready.
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
            .arg(format!("127.0.0.1:{}", self.port))
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
        // Listening is checked on our own process, not just "something answers on the port":
        // another test's server may have taken the port, and then this one is about to exit.
        let ready = wait_until(&mut child, || {
            process_listens(pid, port) && first_line(port).is_some_and(|l| l.starts_with("220"))
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
    use std::io::{BufRead, BufReader, Write};
    use std::net::{Ipv4Addr, TcpStream};
    use std::time::{Duration, Instant};

    use super::{Dovecot, SmtpSink};

    /// One line-based text protocol connection (IMAP and SMTP both are).
    struct Conn {
        reader: BufReader<TcpStream>,
        writer: TcpStream,
    }

    impl Conn {
        fn open(port: u16) -> Conn {
            let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            Conn {
                reader: BufReader::new(stream.try_clone().unwrap()),
                writer: stream,
            }
        }

        fn line(&mut self) -> String {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "connection closed");
            line
        }

        fn send(&mut self, bytes: &[u8]) {
            self.writer.write_all(bytes).unwrap();
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
            self.send(input);
            loop {
                let line = self.line();
                if line.as_bytes().get(3) != Some(&b'-') {
                    return line;
                }
            }
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
