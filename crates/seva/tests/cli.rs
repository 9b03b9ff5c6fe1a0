//! The `seva` binary as operators use it: real processes, real TCP, real signals, on SQLite
//! and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use seva_store::Backend;
use seva_store::testing::TestDb;

const SEVA: &str = env!("CARGO_BIN_EXE_seva");

/// A running `seva serve` and the lines it printed so far.
struct Server {
    child: Child,
    url: String,
    output: Vec<String>,
}

fn base_command(data_dir: &std::path::Path, database_url: Option<&str>) -> Command {
    let mut command = Command::new(SEVA);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .env("SEVA_LOG", "warn");
    if let Some(url) = database_url {
        command.arg("--database-url").arg(url);
    }
    command
}

#[allow(clippy::zombie_processes)] // the caller waits, in `terminate`
fn start(data_dir: &std::path::Path, database_url: Option<&str>) -> Server {
    let mut child = base_command(data_dir, database_url)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("seva starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut output = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("seva did not announce its URL; printed: {output:?}"));
        output.push(line.clone());
        if let Some(url) = line.strip_prefix("Seva is serving at ") {
            return Server {
                child,
                url: url.trim().to_owned(),
                output,
            };
        }
    }
}

/// A plain HTTP/1.1 GET over a TCP socket: (status, body).
fn get(url: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect to seva");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn terminate(mut server: Server) -> std::process::ExitStatus {
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    server.child.wait().expect("seva exits")
}

fn run(command: &mut Command, stdin: Option<&str>) -> (bool, String, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn sqlite_first_start_prints_a_setup_link_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None);
    assert!(
        dir.path().join("seva.db").exists(),
        "the SQLite database is created in the data folder"
    );
    let link = server
        .output
        .iter()
        .find(|l| l.contains("/setup?token="))
        .expect("a one-time set-up link is printed")
        .trim()
        .to_owned();
    assert!(link.starts_with(&server.url));
    let path = link.trim_start_matches(&server.url).to_owned();
    assert_eq!(get(&server.url, "/healthz", None).0, 200);
    assert_eq!(get(&server.url, "/readyz", None).0, 200);
    let (status, _) = get(&server.url, &path, None);
    assert_eq!(status, 200, "the printed link opens the set-up page");
    let exit = terminate(server);
    assert!(exit.success(), "SIGTERM is a clean shutdown: {exit:?}");

    // A second start with no admin yet prints a fresh link; the old one is dead.
    let again = start(dir.path(), None);
    let (old_status, _) = get(&again.url, &path, None);
    assert_eq!(old_status, 404, "only the newest link works");
    assert!(terminate(again).success());
}

async fn admin_commands_create_users_and_tokens_the_api_accepts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("seva.db").display()),
        Backend::Postgres => db.url.clone(),
    };
    let (ok, out, err) = run(
        base_command(dir.path(), Some(&url)).args([
            "admin",
            "create-user",
            "--email",
            "Owner@Shop.example",
            "--name",
            "Owner",
            "--role",
            "admin",
            "--password-stdin",
        ]),
        Some("a long enough password\n"),
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("Created admin user Owner <owner@shop.example>"),
        "{out}"
    );
    let (ok, _, err) = run(
        base_command(dir.path(), Some(&url)).args([
            "admin",
            "create-user",
            "--email",
            "x@shop.example",
            "--name",
            "X",
            "--role",
            "agent",
            "--password-stdin",
        ]),
        Some("short\n"),
    );
    assert!(!ok && err.contains("at least 10 characters"), "{err}");
    let (ok, token, err) = run(
        base_command(dir.path(), Some(&url)).args([
            "admin",
            "create-token",
            "--email",
            "owner@shop.example",
            "--label",
            "ci",
        ]),
        None,
    );
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("seva_") && token.len() == 69, "{token}");
    let (ok, _, err) = run(
        base_command(dir.path(), Some(&url)).args([
            "admin",
            "create-token",
            "--email",
            "nobody@shop.example",
        ]),
        None,
    );
    assert!(!ok && err.contains("user not found"), "{err}");

    let server = start(dir.path(), Some(&url));
    assert!(
        !server.output.iter().any(|l| l.contains("/setup?token=")),
        "no set-up link once an admin exists"
    );
    let (status, body) = get(&server.url, "/api/v1/me", Some(&token));
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"email\":\"owner@shop.example\"") && body.contains("\"role\":\"admin\""),
        "{body}"
    );
    assert_eq!(get(&server.url, "/api/v1/me", Some("seva_wrong")).0, 401);
    assert!(terminate(server).success());
    db.finish().await;
}

#[tokio::test]
async fn admin_commands_create_users_and_tokens_the_api_accepts_on_sqlite() {
    admin_commands_create_users_and_tokens_the_api_accepts(Backend::Sqlite).await;
}

#[tokio::test]
async fn admin_commands_create_users_and_tokens_the_api_accepts_on_postgres() {
    admin_commands_create_users_and_tokens_the_api_accepts(Backend::Postgres).await;
}

#[tokio::test]
async fn the_demo_command_loads_once_and_the_inbox_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(
        base_command(dir.path(), None).args(["demo", "--customers", "20", "--conversations", "40"]),
        None,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("Loaded the demo shop: 20 customers, 40 conversations"),
        "{out}"
    );
    let (ok, _, err) = run(base_command(dir.path(), None).args(["demo"]), None);
    assert!(!ok && err.contains("the demo shop already exists"), "{err}");
    let (ok, _, err) = run(
        base_command(dir.path(), None).args(["--database-url", "mysql://x", "demo"]),
        None,
    );
    assert!(!ok && err.contains("sqlite: or postgres://"), "{err}");
}
