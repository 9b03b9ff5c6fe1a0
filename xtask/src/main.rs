//! `cargo xtask ci`: exactly what CI runs, runnable locally. Each step says what it checks.

mod apt;
mod bench;
mod chat_load;

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench::run(&args[1..]),
        Some("chat-load") => chat_load::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask ci | cargo xtask bench [--scale quick|10k|100k|1m] [--backend sqlite|postgres|both] | cargo xtask chat-load [--connections N] [--replies N] [--backend sqlite|postgres]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn step(name: &str) {
    println!("\n==> {name}");
}

fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(env!("CARGO"))
        .args(args)
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}

fn ci() -> anyhow::Result<()> {
    step("PostgreSQL on 127.0.0.1:5432 (the store tests run on it as well as on SQLite)");
    ensure_postgres()?;

    step("formatting (rustfmt)");
    cargo(&["fmt", "--all", "--", "--check"])?;

    step("lints (clippy, warnings are errors)");
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;

    step("dependency direction: the domain crate does no I/O");
    check_domain_is_pure()?;

    step("the chat widget: static/widget.js is what widget/src builds to");
    check_widget_is_built()?;

    step("headless Chromium, its WebDriver and a Devanagari font for the browser tests");
    apt::ensure(
        "the browser tests",
        &["chromium", "chromium-driver", "fonts-lohit-deva-marathi"],
    )?;

    step("Dovecot (IMAP) and aiosmtpd (an SMTP sink) for the mail channel tests");
    apt::ensure("the mail tests", &["dovecot-imapd", "openssl"])?;
    apt::ensure_python_module("the mail tests", "aiosmtpd", "aiosmtpd")?;

    step("tests on SQLite and PostgreSQL");
    count_tests_per_backend()?;
    if has_nextest() {
        cargo(&["nextest", "run", "--workspace", "--no-fail-fast"])?;
    } else {
        println!("(cargo-nextest not installed: using cargo test)");
        cargo(&["test", "--workspace", "--no-fail-fast"])?;
    }

    step(
        "benchmark smoke test: every scenario at quick scale on both backends, errors only, no timings",
    );
    bench::run(&[
        "--scale".into(),
        "quick".into(),
        "--duration".into(),
        "2".into(),
        "--out".into(),
        "target/bench-smoke".into(),
    ])?;

    println!("\nxtask: all checks passed");
    Ok(())
}

fn postgres_answers() -> bool {
    let addr: SocketAddr = "127.0.0.1:5432".parse().expect("valid address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// The tests need PostgreSQL. Start the machine's cluster if it is installed but stopped;
/// otherwise fail loudly: skipping the PostgreSQL half silently would hide broken queries.
fn ensure_postgres() -> anyhow::Result<()> {
    if postgres_answers() {
        println!("PostgreSQL answers on 127.0.0.1:5432");
        return Ok(());
    }
    println!("PostgreSQL is not answering; trying to start the local cluster");
    let versions = std::fs::read_dir("/etc/postgresql").map(|d| {
        d.filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect::<Vec<_>>()
    });
    if let Ok(versions) = versions {
        for version in versions {
            let _ = Command::new("pg_ctlcluster")
                .arg("--skip-systemctl-redirect")
                .arg(&version)
                .args(["main", "start"])
                .status();
        }
    }
    for _ in 0..20 {
        if postgres_answers() {
            println!("PostgreSQL started");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!(
        "\n\n*** PostgreSQL is required and is not reachable on 127.0.0.1:5432 (user postgres, trust auth).\n\
         *** Install and start it (e.g. `apt-get install postgresql` then \
         `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`),\n\
         *** or point SEVA_TEST_PG_URL at a server where user postgres may create databases.\n"
    )
}

fn check_domain_is_pure() -> anyhow::Result<()> {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "seva-domain",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .context("running cargo tree")?;
    let tree = String::from_utf8_lossy(&output.stdout);
    let forbidden = ["sqlx", "axum", "tokio", "serde_json", "hyper"];
    let found: Vec<&str> = forbidden
        .iter()
        .copied()
        .filter(|name| {
            tree.lines()
                .any(|l| l.split_whitespace().next() == Some(*name))
        })
        .collect();
    if !found.is_empty() {
        bail!("seva-domain depends on {found:?}; the domain must stay pure");
    }
    println!("seva-domain depends on none of {forbidden:?}");
    Ok(())
}

fn has_nextest() -> bool {
    Command::new(env!("CARGO"))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Prints how many tests run on each backend, so a run where one backend silently lost its
/// tests shows it.
fn count_tests_per_backend() -> anyhow::Result<()> {
    if !has_nextest() {
        return Ok(());
    }
    let output = Command::new(env!("CARGO"))
        .args([
            "nextest",
            "list",
            "--workspace",
            "--message-format",
            "oneline",
        ])
        .output()
        .context("listing tests")?;
    let list = String::from_utf8_lossy(&output.stdout);
    let count = |needle: &str| {
        list.lines()
            .filter(|l| l.to_ascii_lowercase().contains(needle))
            .count()
    };
    let (sqlite, postgres) = (count("sqlite"), count("postgres"));
    println!(
        "tests naming sqlite: {sqlite}; tests naming postgres: {postgres}; all tests: {}",
        list.lines().count()
    );
    if sqlite == 0 || postgres == 0 {
        bail!("one backend has no tests");
    }
    Ok(())
}

/// The widget is committed built (the binary embeds it, and building needs npm): rebuild it
/// from `widget/src` with the locked esbuild and fail when the committed file was stale.
fn check_widget_is_built() -> anyhow::Result<()> {
    let npm_runs = || {
        Command::new("npm")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !npm_runs() {
        apt::ensure("the widget build check", &["nodejs", "npm"])?;
    }
    let built = std::path::Path::new("crates/web/static/widget.js");
    let before = std::fs::read(built).context("reading crates/web/static/widget.js")?;
    for args in [
        &["ci", "--no-audit", "--no-fund", "--silent"][..],
        &["run", "--silent", "build"][..],
    ] {
        let status = Command::new("npm")
            .args(args)
            .current_dir("widget")
            .status()
            .with_context(|| format!("running npm {}", args.join(" ")))?;
        if !status.success() {
            bail!("npm {} failed in widget/", args.join(" "));
        }
    }
    if std::fs::read(built)? != before {
        bail!("crates/web/static/widget.js did not match widget/src: it is rebuilt now; commit it");
    }
    println!("static/widget.js matches widget/src");
    Ok(())
}
