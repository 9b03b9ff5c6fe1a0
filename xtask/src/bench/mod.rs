//! `cargo xtask bench`: generates a data set, starts a release-built `seva serve` on SQLite and
//! on PostgreSQL as a separate process, drives it over HTTP with wrk, and reports throughput,
//! latency percentiles, errors, memory, database size and start-up time as JSON and Markdown.
//! Any request error fails the run. Timings are reported, never asserted.

mod generate;

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use seva_store::{Backend, Store, StoreOptions};

use generate::Scale;

const SCRIPT: &str = include_str!("scenarios.lua");

struct Options {
    scale: Scale,
    backends: Vec<Backend>,
    seconds: u32,
    reuse: bool,
    out: PathBuf,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        scale: Scale::parse("quick")?,
        backends: vec![Backend::Sqlite, Backend::Postgres],
        seconds: 10,
        reuse: false,
        out: PathBuf::from("bench-results"),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--scale" => options.scale = Scale::parse(value()?)?,
            "--backend" => {
                options.backends = match value()?.as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "postgres" => vec![Backend::Postgres],
                    "both" => vec![Backend::Sqlite, Backend::Postgres],
                    other => bail!("unknown backend '{other}': sqlite, postgres or both"),
                }
            }
            "--duration" => {
                options.seconds = value()?.parse().context("--duration takes seconds")?;
            }
            "--reuse" => options.reuse = true,
            "--out" => options.out = PathBuf::from(value()?),
            other => bail!(
                "unknown option '{other}'\nusage: cargo xtask bench [--scale quick|10k|100k|1m] [--backend sqlite|postgres|both] [--duration SECONDS] [--reuse] [--out DIR]"
            ),
        }
    }
    Ok(options)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    ensure_wrk()?;
    println!("==> building seva (release)");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", "seva"])
        .status()?;
    if !status.success() {
        bail!("release build failed");
    }
    let binary = release_binary();
    std::fs::create_dir_all(&options.out)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut reports = Vec::new();
    let mut failed = false;
    for &backend in &options.backends {
        let report = runtime.block_on(bench_backend(&options, backend, &binary))?;
        failed |= report["errors_total"].as_u64().unwrap_or(1) > 0;
        reports.push(report);
    }
    let markdown = markdown(&reports);
    let stamp = reports
        .first()
        .and_then(|r| r["started"].as_str())
        .unwrap_or("run")
        .replace(':', "-");
    let base = options.out.join(format!("{stamp}-{}", options.scale.name));
    std::fs::write(
        base.with_extension("json"),
        serde_json::to_string_pretty(&reports)?,
    )?;
    std::fs::write(base.with_extension("md"), &markdown)?;
    println!("\n{markdown}\nresults: {}.json and .md", base.display());
    if failed {
        bail!("some requests failed: a benchmark with errors measures nothing");
    }
    Ok(())
}

/// The release binary, wherever cargo puts its target directory.
pub(crate) fn release_binary() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
        .join("release/seva")
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_owned()
}

fn ensure_wrk() -> anyhow::Result<()> {
    crate::apt::ensure("the benchmark's load generator", &["wrk"])
}

pub(crate) fn pg_admin_url() -> String {
    std::env::var("SEVA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The database for this backend and scale: a file in `bench-data/`, or a PostgreSQL database.
async fn prepare_database(
    backend: Backend,
    scale: Scale,
    reuse: bool,
) -> anyhow::Result<(PathBuf, String, bool)> {
    let data_dir =
        workspace_root()
            .join("bench-data")
            .join(format!("{}-{}", backend.name(), scale.name));
    match backend {
        Backend::Sqlite => {
            let exists = data_dir.join("seva.db").exists();
            if exists && !reuse {
                std::fs::remove_dir_all(&data_dir)?;
            }
            std::fs::create_dir_all(&data_dir)?;
            let url = format!("sqlite://{}?mode=rwc", data_dir.join("seva.db").display());
            Ok((data_dir, url, exists && reuse))
        }
        Backend::Postgres => {
            use sqlx::Connection as _;
            sqlx::any::install_default_drivers();
            std::fs::create_dir_all(&data_dir)?;
            let admin_url = pg_admin_url();
            let name = format!("seva_bench_{}", scale.name);
            let mut admin = sqlx::AnyConnection::connect(&admin_url)
                .await
                .with_context(|| {
                    format!("PostgreSQL is needed for the benchmark at {admin_url}")
                })?;
            let exists: Option<String> =
                sqlx::query_scalar("SELECT datname::TEXT FROM pg_database WHERE datname = $1")
                    .bind(&name)
                    .fetch_optional(&mut admin)
                    .await?;
            if exists.is_some() && !reuse {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await?;
            }
            if exists.is_none() || !reuse {
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await?;
            }
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(b, _)| b);
            Ok((
                data_dir,
                format!("{base}/{name}"),
                exists.is_some() && reuse,
            ))
        }
    }
}

#[allow(clippy::too_many_lines)] // the run reads as its steps in order
async fn bench_backend(
    options: &Options,
    backend: Backend,
    binary: &Path,
) -> anyhow::Result<Value> {
    let scale = options.scale;
    println!(
        "\n==> {} at scale {} ({} conversations)",
        backend.name(),
        scale.name,
        scale.conversations
    );
    let started = now_rfc3339();
    let (data_dir, url, reused) = prepare_database(backend, scale, options.reuse).await?;
    let load = if reused {
        println!("reusing the data set already loaded");
        json!({"reused": true})
    } else {
        let store = Store::open(&url, &StoreOptions::default()).await?;
        let loaded = generate::generate(&store, scale, 42).await?;
        // The KPI facts of the bulk-loaded conversations, as the first start after an upgrade
        // would compute them (part of the load time, not of the start-up time).
        let facts = std::time::Instant::now();
        store.migrate().await?;
        println!(
            "computed the KPI facts in {:.1}s",
            facts.elapsed().as_secs_f64()
        );
        if backend == Backend::Postgres {
            // What autovacuum (on by default, off on these machines) does after a bulk load:
            // the visibility map the reports' index-only reads need, and fresh statistics.
            let vacuum = std::time::Instant::now();
            let mut conn = store.conn().await?;
            sqlx::query("VACUUM ANALYZE").execute(&mut *conn).await?;
            println!("vacuumed in {:.1}s", vacuum.elapsed().as_secs_f64());
        }
        store.close().await;
        println!(
            "loaded {} customers, {} conversations, {} messages, {} events, {} orders in {:.1}s ({:.0} rows/s)",
            loaded.customers,
            loaded.conversations,
            loaded.messages,
            loaded.events,
            loaded.orders,
            loaded.seconds,
            (loaded.customers * 2
                + loaded.conversations * 2
                + loaded.messages
                + loaded.events
                + loaded.orders * 2) as f64
                / loaded.seconds
        );
        json!({"customers": loaded.customers, "conversations": loaded.conversations, "messages": loaded.messages,
               "events": loaded.events, "orders": loaded.orders, "seconds": round(loaded.seconds, 1)})
    };

    let seva = |args: &[&str]| {
        let mut command = Command::new(binary);
        command
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--database-url")
            .arg(&url)
            .args(args)
            .env("SEVA_LOG", "warn");
        command
    };
    let mut create = seva(&[
        "admin",
        "create-user",
        "--email",
        "bench@bench.example",
        "--name",
        "Bench",
        "--role",
        "admin",
        "--password-stdin",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()?;
    create
        .stdin
        .take()
        .context("stdin")?
        .write_all(b"benchmark password\n")?;
    create.wait()?; // already there when the data set is reused
    let token_out = seva(&[
        "admin",
        "create-token",
        "--email",
        "bench@bench.example",
        "--label",
        "bench",
    ])
    .output()?;
    if !token_out.status.success() {
        bail!(
            "create-token failed: {}",
            String::from_utf8_lossy(&token_out.stderr)
        );
    }
    let token = String::from_utf8(token_out.stdout)?.trim().to_owned();
    // The page scenarios act as a signed-in agent: sign in as the browser form would.
    let session = {
        let store = Store::open(&url, &StoreOptions::default()).await?;
        let app = seva_app::App::new(store.clone(), std::sync::Arc::new(seva_app::SystemClock));
        let session = app
            .sign_in("bench@bench.example", "benchmark password")
            .await
            .map_err(|e| anyhow::anyhow!("signing the benchmark user in: {e}"))?;
        store.close().await;
        session.token
    };

    // Mail waiting in a real Dovecot before the server starts: the fetcher's rate is how fast
    // the message count grows once it does.
    let mails: i64 = if scale.conversations >= 1_000_000 {
        2000
    } else {
        500
    };
    let run_tag = format!("{}{}", backend.name(), std::process::id());
    let dovecot = seva_channels::testing::Dovecot::start()
        .map_err(|e| anyhow::anyhow!("starting Dovecot for the mail scenario: {e}"))?;
    let messages_before = {
        let store = Store::open(&url, &StoreOptions::default()).await?;
        let app = seva_app::App::new(store.clone(), std::sync::Arc::new(seva_app::SystemClock));
        let admin = seva_app::Caller {
            user: app
                .user_by_email("bench@bench.example")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        };
        let server = |port| seva_domain::mail::Server {
            host: "127.0.0.1".into(),
            port,
            security: seva_domain::mail::Security::None,
            user: Some(dovecot.user.clone()),
            password: Some(dovecot.password.clone()),
        };
        app.create_mailbox(
            &admin,
            &seva_app::mail::MailboxInput {
                name: "Bench".into(),
                address: format!("bench-{run_tag}@bench.example"),
                brand_id: None,
                imap: server(dovecot.port),
                imap_folder: None,
                smtp: server(free_port()?),
                active: true,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating the bench mailbox: {e}"))?;
        for i in 0..mails {
            let raw = format!(
                "From: Customer {c} <customer{c}@example.org>\r\nTo: support@bench.example\r\n\
                 Subject: Order question {i}\r\nMessage-ID: <bench-{run_tag}-{i}@example.org>\r\n\
                 Content-Type: text/plain; charset=UTF-8\r\n\r\nسلام، سفارش {i} کجاست؟ Where is order {i}? \
                 माझी ऑर्डर कुठे आहे?\r\n",
                c = i % 500,
            );
            dovecot
                .deliver(raw.as_bytes())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let count = count_messages(&store).await?;
        store.close().await;
        count
    };

    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let t0 = Instant::now();
    let mut server = seva(&["serve", "--listen", &addr])
        .stdout(Stdio::null())
        .spawn()?;
    wait_ready(&addr, &mut server)?;
    let startup_ms = t0.elapsed().as_secs_f64() * 1000.0;
    std::thread::sleep(Duration::from_secs(1));
    let rss_idle_kb = proc_status_kb(server.id(), "VmRSS:")?;
    println!(
        "serving after {startup_ms:.0} ms; idle RSS {} MB",
        rss_idle_kb / 1024
    );

    let mail_fetch = {
        let store = Store::open(&url, &StoreOptions::default()).await?;
        let deadline = Instant::now() + Duration::from_mins(5);
        let mut stored = 0;
        while Instant::now() < deadline {
            stored = count_messages(&store).await? - messages_before;
            if stored >= mails {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        store.close().await;
        let seconds = t0.elapsed().as_secs_f64();
        if stored < mails {
            bail!("the fetcher took in {stored} of {mails} mails in 5 minutes");
        }
        println!(
            "mail fetch: {mails} mails from Dovecot in {seconds:.1} s after start ({:.0} mails/s, including start-up)",
            mails as f64 / seconds
        );
        json!({"mails": mails, "seconds": round(seconds, 2), "mails_per_s": round(mails as f64 / seconds, 0)})
    };

    let status = http_status(&addr, "/inbox", &format!("seva_session={session}"))?;
    if status != 200 {
        bail!(
            "the signed-in inbox page answered {status}, not 200: the page scenarios would measure redirects"
        );
    }

    // The dashboard's first view after start reads every day of both periods (nothing is
    // cached yet); the scenarios below then measure views that find the closed days kept.
    let cold = Instant::now();
    let status = http_status(&addr, "/reports", &format!("seva_session={session}"))?;
    let dashboard_cold_ms = cold.elapsed().as_secs_f64() * 1000.0;
    if status != 200 {
        bail!("the dashboard page answered {status}, not 200");
    }
    println!("dashboard page, first view after start: {dashboard_cold_ms:.0} ms");

    let run_id = format!("{}{}", backend.name(), std::process::id());
    let scenarios: [(&str, &str, u32, u32); 17] = [
        ("message intake, 1 client", "intake", 1, 1),
        ("message intake, 8 clients", "intake", 2, 8),
        ("inbox first page with filters, 8 clients", "inbox", 2, 8),
        ("conversation view, 8 clients", "conversation", 2, 8),
        ("customer page, 8 clients", "customer", 2, 8),
        ("full-text search, English, 8 clients", "search_en", 2, 8),
        ("full-text search, Persian, 8 clients", "search_fa", 2, 8),
        ("full-text search, Marathi, 8 clients", "search_mr", 2, 8),
        ("full-text search, Hindi, 8 clients", "search_hi", 2, 8),
        (
            "inbox page (HTML) with filters, 8 clients",
            "page_inbox",
            2,
            8,
        ),
        (
            "conversation page (HTML), 8 clients",
            "page_conversation",
            2,
            8,
        ),
        ("customer page (HTML), 8 clients", "page_customer", 2, 8),
        ("segment count, live, 8 clients", "segment_count", 2, 8),
        ("KPI report, 30 days, 8 clients", "kpi_report", 2, 8),
        (
            "KPI dashboard (API), 30 days per day with the previous period, 1 client",
            "kpi_dashboard",
            1,
            1,
        ),
        (
            "KPI dashboard page (HTML), 30 days, 1 client",
            "page_dashboard",
            1,
            1,
        ),
        (
            "KPI dashboard page (HTML), 30 days, 4 clients",
            "page_dashboard",
            2,
            4,
        ),
    ];
    let script = data_dir.join("scenarios.lua");
    std::fs::write(&script, SCRIPT)?;
    let mut results = Vec::new();
    let mut errors_total = 0;
    for (n, (name, scenario, threads, clients)) in scenarios.into_iter().enumerate() {
        let output = Command::new("wrk")
            .args([
                "-t",
                &threads.to_string(),
                "-c",
                &clients.to_string(),
                "-d",
                &format!("{}s", options.seconds),
                "--timeout",
                "10s",
            ])
            .arg("-s")
            .arg(&script)
            .arg(format!("http://{addr}"))
            .args([
                "--",
                scenario,
                &token,
                &scale.customers.to_string(),
                &scale.conversations.to_string(),
                &scale.agents.to_string(),
                &format!("{run_id}s{n}"),
                &session,
            ])
            .output()
            .context("running wrk")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("BENCH_JSON "))
            .with_context(|| {
                format!(
                    "wrk printed no result for {name}: {stdout}{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            })?;
        for failure in stdout.lines().filter(|l| l.starts_with("BENCH_FAILURE")) {
            println!("  {failure}");
        }
        let raw: Value = serde_json::from_str(line)?;
        let errors: u64 = raw["errors"]
            .as_object()
            .map_or(0, |e| e.values().filter_map(Value::as_u64).sum());
        errors_total += errors;
        let requests = raw["requests"].as_u64().unwrap_or(0);
        let seconds = raw["duration_us"].as_f64().unwrap_or(1.0) / 1e6;
        let ms = |key: &str| round(raw[key].as_f64().unwrap_or(0.0) / 1000.0, 2);
        let result = json!({
            "scenario": name, "clients": clients, "requests": requests, "throughput_per_s": round(requests as f64 / seconds, 0),
            "p50_ms": ms("p50_us"), "p90_ms": ms("p90_us"), "p99_ms": ms("p99_us"), "max_ms": ms("max_us"),
            "errors": errors, "error_detail": raw["errors"],
        });
        println!(
            "{name}: {} req/s, p50 {} ms, p90 {} ms, p99 {} ms, errors {errors}",
            result["throughput_per_s"], result["p50_ms"], result["p90_ms"], result["p99_ms"]
        );
        results.push(result);
    }
    let rss_peak_kb = proc_status_kb(server.id(), "VmHWM:")?;
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let exit = server.wait()?;
    let db_bytes = database_bytes(backend, &data_dir, &url).await?;
    Ok(json!({
        "started": started,
        "commit": git(&["rev-parse", "--short", "HEAD"]) + if git(&["status", "--porcelain"]).is_empty() { "" } else { "-dirty" },
        "machine": machine(),
        "backend": backend.name(),
        "scale": {"name": scale.name, "conversations": scale.conversations, "customers": scale.customers, "agents": scale.agents},
        "load": load,
        "startup_ms": round(startup_ms, 0),
        "dashboard_first_view_ms": round(dashboard_cold_ms, 0),
        "rss_idle_mb": round(rss_idle_kb as f64 / 1024.0, 1),
        "rss_peak_mb": round(rss_peak_kb as f64 / 1024.0, 1),
        "database_mb": round(db_bytes as f64 / 1_048_576.0, 0),
        "clean_shutdown": exit.success(),
        "seconds_per_scenario": options.seconds,
        "scenarios": results,
        "mail_fetch": mail_fetch,
        "errors_total": errors_total,
        "not_measured_yet": ["widget message delivery (chat issue)"],
    }))
}

async fn count_messages(store: &Store) -> anyhow::Result<i64> {
    let mut conn = store.conn().await?;
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&mut *conn)
        .await?)
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10_f64.powi(places);
    (x * f).round() / f
}

fn now_rfc3339() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn git(args: &[&str]) -> String {
    Command::new("git")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> Value {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    json!({"cores": cores, "memory_gb": round(mem_kb as f64 / 1_048_576.0, 1), "cpu": cpu})
}

/// The status of one GET with a cookie: a minimal HTTP/1.1 exchange, enough for a check.
fn http_status(addr: &str, path: &str, cookie: &str) -> anyhow::Result<u16> {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let line = String::from_utf8_lossy(&head);
    line.get(9..12)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP answer: {line:?}"))
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Polls `/readyz` until the server answers 200; fails if it exits or takes over a minute.
pub(crate) fn wait_ready(addr: &str, server: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        if let Some(status) = server.try_wait()? {
            bail!("seva exited during start-up: {status}");
        }
        if let Ok(mut stream) = TcpStream::connect(addr) {
            let _ = write!(
                stream,
                "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            if response.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("seva did not become ready within a minute");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub(crate) fn proc_status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{field} missing from /proc/{pid}/status"))
}

async fn database_bytes(backend: Backend, data_dir: &Path, url: &str) -> anyhow::Result<u64> {
    match backend {
        Backend::Sqlite => Ok(std::fs::read_dir(data_dir)?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("seva.db"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()),
        Backend::Postgres => {
            use sqlx::Connection as _;
            let mut conn = sqlx::AnyConnection::connect(url).await?;
            let size: i64 =
                sqlx::query_scalar("SELECT pg_database_size(current_database())::BIGINT")
                    .fetch_one(&mut conn)
                    .await?;
            Ok(size.max(0) as u64)
        }
    }
}

fn markdown(reports: &[Value]) -> String {
    let mut md = String::new();
    let first = &reports[0];
    let _ = writeln!(
        md,
        "Commit `{}`, {} cores, {} GB ({}), scale {} ({} conversations, {} customers), {} s per scenario.\n",
        first["commit"].as_str().unwrap_or(""),
        first["machine"]["cores"],
        first["machine"]["memory_gb"],
        first["machine"]["cpu"].as_str().unwrap_or(""),
        first["scale"]["name"].as_str().unwrap_or(""),
        first["scale"]["conversations"],
        first["scale"]["customers"],
        first["seconds_per_scenario"],
    );
    md.push_str("| backend | scenario | clients | req/s | p50 ms | p90 ms | p99 ms | errors |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    for r in reports {
        for s in r["scenarios"].as_array().into_iter().flatten() {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r["backend"].as_str().unwrap_or(""),
                s["scenario"].as_str().unwrap_or(""),
                s["clients"],
                s["throughput_per_s"],
                s["p50_ms"],
                s["p90_ms"],
                s["p99_ms"],
                s["errors"]
            );
        }
    }
    md.push_str("\n| backend | bulk load | start-up to ready | dashboard, first view | RSS idle | RSS peak | database size |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for r in reports {
        let load = if r["load"]["reused"].as_bool() == Some(true) {
            "reused".to_owned()
        } else {
            format!("{} s", r["load"]["seconds"])
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} ms | {} ms | {} MB | {} MB | {} MB |",
            r["backend"].as_str().unwrap_or(""),
            load,
            r["startup_ms"],
            r["dashboard_first_view_ms"],
            r["rss_idle_mb"],
            r["rss_peak_mb"],
            r["database_mb"]
        );
    }
    md.push_str(
        "\n| backend | mail fetch from Dovecot (IMAP, one mailbox) | mails/s |\n|---|---:|---:|\n",
    );
    for r in reports {
        let _ = writeln!(
            md,
            "| {} | {} mails in {} s | {} |",
            r["backend"].as_str().unwrap_or(""),
            r["mail_fetch"]["mails"],
            r["mail_fetch"]["seconds"],
            r["mail_fetch"]["mails_per_s"]
        );
    }
    md
}
