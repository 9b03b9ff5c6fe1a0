//! `cargo xtask chat-load`: how many chat widget connections one `seva` holds, and how fast an
//! agent's reply reaches the visitor.
//!
//! A release `seva serve` on a fresh database (SQLite by default); N visitors connect to the
//! widget's WebSocket, say hello and send a message each (so each has a conversation); then
//! agents' replies are posted through the REST API, one after another over the visitors, and
//! each visitor's socket times the reply from just before the POST until its frame arrives.
//! At the end it checks every connection is still open and reads the server's memory.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use seva_store::{Backend, Store, StoreOptions};
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::bench::{free_port, pg_admin_url, proc_status_kb, wait_ready};

struct Options {
    connections: usize,
    replies: usize,
    backend: Backend,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        connections: 1000,
        replies: 300,
        backend: Backend::Sqlite,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().context("a value after the flag");
        match arg.as_str() {
            "--connections" => options.connections = value()?.parse()?,
            "--replies" => options.replies = value()?.parse()?,
            "--backend" => {
                options.backend = match value()?.as_str() {
                    "sqlite" => Backend::Sqlite,
                    "postgres" => Backend::Postgres,
                    other => bail!("--backend sqlite|postgres, not {other}"),
                }
            }
            other => bail!(
                "unknown flag {other}; use --connections N --replies N --backend sqlite|postgres"
            ),
        }
    }
    Ok(options)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    println!("==> building seva (release)");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", "seva"])
        .status()?;
    if !status.success() {
        bail!("release build failed");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(load(&options))
}

async fn database(backend: Backend, dir: &std::path::Path) -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    Ok(match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("seva.db").display()),
        Backend::Postgres => {
            let name = format!("seva_chat_load_{}", std::process::id());
            let admin = sqlx::AnyPool::connect(&pg_admin_url()).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .execute(&admin)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await?;
            let base = pg_admin_url();
            let (server, _) = base.rsplit_once('/').context("a database in the URL")?;
            format!("{server}/{name}")
        }
    })
}

/// The PostgreSQL database `database` made, dropped; nothing to do for SQLite.
async fn drop_database(backend: Backend) -> anyhow::Result<()> {
    if backend == Backend::Postgres {
        let name = format!("seva_chat_load_{}", std::process::id());
        let admin = sqlx::AnyPool::connect(&pg_admin_url()).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await?;
    }
    Ok(())
}

/// An admin's API token and a widget, written before the server starts.
async fn prepare(url: &str) -> anyhow::Result<(String, String)> {
    let store = Store::open(url, &StoreOptions::default()).await?;
    let app = seva_app::App::new(store.clone(), Arc::new(seva_app::SystemClock));
    let admin = app
        .create_user(
            "load@load.example",
            "Load",
            seva_domain::Role::Admin,
            None,
            None,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let token = app
        .create_token("load@load.example", "chat load")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let widget = app
        .create_widget(
            &seva_app::Caller { user: admin },
            &seva_app::chat::WidgetInput {
                name: "Load".into(),
                brand_id: None,
                allowed_origins: Vec::new(),
                color: None,
                greeting: None,
                prechat: seva_domain::chat::Prechat::None,
                away_after: None,
                active: true,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    store.close().await;
    Ok((token, widget.public_key))
}

type Probes = Arc<Mutex<HashMap<String, Instant>>>;

async fn load(options: &Options) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("seva-chat-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = database(options.backend, &dir).await?;
    let (token, key) = prepare(&url).await?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let binary = crate::bench::release_binary();
    let mut server = Command::new(binary)
        .arg("--data-dir")
        .arg(&dir)
        .arg("--database-url")
        .arg(&url)
        .args(["serve", "--listen", &addr])
        .env("SEVA_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?;
    wait_ready(&addr, &mut server)?;
    let rss_idle_kb = proc_status_kb(server.id(), "VmRSS:")?;

    println!(
        "==> opening {} widget connections ({})",
        options.connections,
        options.backend.name()
    );
    let probes: Probes = Arc::default();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let (visitors, tasks) = open_all(&addr, &key, options.connections, &probes, &latencies).await?;
    let open_seconds = started.elapsed().as_secs_f64();
    let rss_open_kb = proc_status_kb(server.id(), "VmRSS:")?;
    println!(
        "{} connections open, each with a conversation, in {open_seconds:.1} s; server RSS {} MB",
        visitors.len(),
        rss_open_kb / 1024
    );

    let message_ids: Vec<i64> = visitors.iter().map(|(id, _)| *id).collect();
    let conversations = conversations_of(&url, &message_ids).await?;

    println!(
        "==> {} agent replies, each timed until its visitor has it",
        options.replies
    );
    post_replies(&addr, &token, &conversations, options.replies, &probes)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.lock().map_or(0, |l| l.len()) < options.replies && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut micros = latencies
        .lock()
        .map_err(|_| anyhow::anyhow!("latency lock"))?
        .clone();
    micros.sort_unstable();
    let still_open = visitors
        .iter()
        .filter(|(_, alive)| alive.load(std::sync::atomic::Ordering::Relaxed))
        .count();
    let rss_peak_kb = proc_status_kb(server.id(), "VmHWM:")?;
    for task in tasks {
        task.abort();
    }
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    drop_database(options.backend).await?;

    let pct = |p: f64| -> f64 {
        if micros.is_empty() {
            return 0.0;
        }
        // Nearest rank.
        let rank = ((p * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
        micros[rank - 1] as f64 / 1000.0
    };
    let report = json!({
        "backend": options.backend.name(),
        "connections": options.connections,
        "still_open": still_open,
        "replies": options.replies,
        "delivered": micros.len(),
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0),
        "open_seconds": open_seconds,
        "rss_idle_mb": rss_idle_kb / 1024, "rss_open_mb": rss_open_kb / 1024, "rss_peak_mb": rss_peak_kb / 1024,
    });
    println!("CHAT_LOAD_JSON {report}");
    println!(
        "{still_open} of {} connections held; {} of {} replies delivered; reply → visitor p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; RSS {} MB idle, {} MB with the connections, peak {} MB",
        options.connections,
        micros.len(),
        options.replies,
        pct(0.50),
        pct(0.99),
        pct(1.0),
        rss_idle_kb / 1024,
        rss_open_kb / 1024,
        rss_peak_kb / 1024
    );
    if still_open < options.connections || micros.len() < options.replies {
        bail!("connections dropped or replies lost");
    }
    Ok(())
}

type Visitors = Vec<(i64, Arc<std::sync::atomic::AtomicBool>)>;

/// Opens `n` visitors in waves of a hundred; each keeps listening in its own task.
async fn open_all(
    addr: &str,
    key: &str,
    n: usize,
    probes: &Probes,
    latencies: &Arc<Mutex<Vec<u128>>>,
) -> anyhow::Result<(Visitors, Vec<tokio::task::JoinHandle<()>>)> {
    let mut visitors = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    // In waves, so the server's accept queue is not the thing measured.
    for wave in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut opening = Vec::new();
        for &i in wave {
            let url = format!("ws://{addr}/widget/{key}/ws");
            opening.push(tokio::spawn(async move { open_visitor(url, i).await }));
        }
        for handle in opening {
            let (socket, message_id) = handle.await??;
            let (alive, task) = listen(socket, probes.clone(), latencies.clone());
            visitors.push((message_id, alive));
            tasks.push(task);
        }
    }
    Ok((visitors, tasks))
}

/// Which conversation each visitor's first message opened.
async fn conversations_of(url: &str, message_ids: &[i64]) -> anyhow::Result<Vec<i64>> {
    let store = Store::open(url, &StoreOptions::default()).await?;
    let mut conversations = Vec::with_capacity(message_ids.len());
    {
        let mut conn = store.conn().await?;
        for message_id in message_ids {
            let id: i64 = sqlx::query_scalar("SELECT conversation_id FROM messages WHERE id = $1")
                .bind(message_id)
                .fetch_one(&mut *conn)
                .await?;
            conversations.push(id);
        }
    }
    store.close().await;
    Ok(conversations)
}

/// Posts `replies` agent replies over the conversations, marking each probe's start.
fn post_replies(
    addr: &str,
    token: &str,
    conversations: &[i64],
    replies: usize,
    probes: &Probes,
) -> anyhow::Result<()> {
    for i in 0..replies {
        let conversation = conversations[i % conversations.len()];
        let marker = format!("probe-{i}");
        probes
            .lock()
            .map_err(|_| anyhow::anyhow!("probe lock"))?
            .insert(marker.clone(), Instant::now());
        let body = json!({"kind": "reply", "text": marker}).to_string();
        let status = post(
            addr,
            &format!("/api/v1/conversations/{conversation}/messages"),
            token,
            &body,
        )?;
        if status != 201 {
            bail!("posting a reply answered {status}");
        }
    }
    Ok(())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects, says hello, sends one message and waits for its echo: the message's id.
async fn open_visitor(url: String, i: usize) -> anyhow::Result<(Socket, i64)> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    socket
        .send(Frame::Text(json!({"type": "hello"}).to_string().into()))
        .await?;
    next_json(&mut socket).await?;
    let hello = json!({"type": "send", "client_id": format!("load-{i}"), "text": format!("Visitor {i} asks about an order")});
    socket.send(Frame::Text(hello.to_string().into())).await?;
    let echo = next_json(&mut socket).await?;
    echo["id"]
        .as_i64()
        .with_context(|| format!("no echo for visitor {i}: {echo}"))
        .map(|id| (socket, id))
}

async fn next_json(socket: &mut Socket) -> anyhow::Result<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .context("no frame in 30 s")?
            .context("closed")??;
        if let Frame::Text(text) = frame {
            return Ok(serde_json::from_str(text.as_str())?);
        }
    }
}

/// Reads a visitor's socket until it closes, timing probes as they arrive.
fn listen(
    mut socket: Socket,
    probes: Probes,
    latencies: Arc<Mutex<Vec<u128>>>,
) -> (
    Arc<std::sync::atomic::AtomicBool>,
    tokio::task::JoinHandle<()>,
) {
    let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = alive.clone();
    let task = tokio::spawn(async move {
        while let Some(Ok(frame)) = socket.next().await {
            let Frame::Text(text) = frame else { continue };
            let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            if let Some(marker) = value["text"].as_str().filter(|t| t.starts_with("probe-"))
                && let Some(sent) = probes.lock().ok().and_then(|mut p| p.remove(marker))
                && let Ok(mut l) = latencies.lock()
            {
                l.push(sent.elapsed().as_micros());
            }
        }
        flag.store(false, std::sync::atomic::Ordering::Relaxed);
    });
    (alive, task)
}

/// A plain HTTP/1.1 POST with a bearer token: the status.
fn post(addr: &str, path: &str, token: &str, body: &str) -> anyhow::Result<u16> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("an HTTP status")
}
