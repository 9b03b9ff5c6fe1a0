//! Nothing lost, nothing twice: `seva serve` killed (SIGKILL) in the middle of taking in 500
//! mails from a real Dovecot, then started again, ends with exactly 500 messages, on SQLite and
//! on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use seva_app::mail::MailboxInput;
use seva_app::{App, Caller, SystemClock};
use seva_channels::testing::Dovecot;
use seva_domain::Role;
use seva_domain::mail::{Security, Server};
use seva_store::Backend;
use seva_store::testing::TestDb;

const SEVA: &str = env!("CARGO_BIN_EXE_seva");
const MAILS: i64 = 500;
/// The fetcher's batch: the most mails a kill can leave stored but not flagged.
const BATCH: usize = 25;

fn serve(data_dir: &std::path::Path, url: &str) -> Child {
    Command::new(SEVA)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--database-url")
        .arg(url)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SEVA_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("seva starts")
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let mut conn = db.store.conn().await.unwrap();
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

/// Waits until `sql` counts at least `want`, polling; returns the count then.
async fn wait_for(db: &TestDb, sql: &str, want: i64, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        let n = count(db, sql).await;
        if n >= want || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn killing_seva_mid_fetch_loses_nothing_and_stores_nothing_twice(backend: Backend) {
    let db = TestDb::new(backend).await;
    let data = tempfile::tempdir().unwrap();
    let dovecot = Dovecot::start().unwrap();
    let app = App::new(db.store.clone(), Arc::new(SystemClock));
    let admin = Caller {
        user: app
            .create_user("admin@shop.example.com", "Admin", Role::Admin, None, None)
            .await
            .unwrap(),
    };
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    app.create_mailbox(
        &admin,
        &MailboxInput {
            name: "Support".into(),
            address: "support@shop.example.com".into(),
            brand_id: None,
            imap: Server {
                host: "127.0.0.1".into(),
                port: dovecot.port,
                security: Security::None,
                user: Some(dovecot.user.clone()),
                password: Some(dovecot.password.clone()),
            },
            imap_folder: None,
            smtp: Server {
                host: "127.0.0.1".into(),
                port: closed_port,
                security: Security::None,
                user: None,
                password: None,
            },
            active: true,
        },
    )
    .await
    .unwrap();
    for i in 0..MAILS {
        // A tenth are answers to earlier mails, so threading runs under the crash too.
        let thread = if i % 10 == 9 {
            format!("In-Reply-To: <order-{}@example.org>\r\n", i - 1)
        } else {
            String::new()
        };
        let raw = format!(
            "From: Customer {c} <customer{c}@example.org>\r\nTo: support@shop.example.com\r\n\
             Subject: Order question {i}\r\nMessage-ID: <order-{i}@example.org>\r\n{thread}\
             Content-Type: text/plain; charset=UTF-8\r\n\r\nسلام، سفارش {i} کجاست؟ Where is order {i}?\r\n",
            c = i % 50,
        );
        dovecot.deliver(raw.as_bytes()).unwrap();
    }

    let messages = "SELECT COUNT(*) FROM messages";
    let started = Instant::now();
    let mut first = serve(data.path(), &db.url);
    let at_kill = wait_for(&db, messages, 100, Duration::from_mins(1)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let first_rate = at_kill as f64 / started.elapsed().as_secs_f64();
    let after_kill = count(&db, messages).await;
    assert!(
        (100..MAILS).contains(&after_kill),
        "killed mid-fetch: {after_kill} of {MAILS} stored"
    );

    let restarted = Instant::now();
    let mut second = serve(data.path(), &db.url);
    let total = wait_for(&db, messages, MAILS, Duration::from_mins(2)).await;
    let rest_rate = (total - after_kill) as f64 / restarted.elapsed().as_secs_f64();
    // Each batch of mails is flagged \Seen once stored. Mails stored in the batch the kill
    // interrupted may stay unread on the server (stored, never flagged): at most one batch.
    let flagged_at_least = MAILS as usize - BATCH;
    let deadline = Instant::now() + Duration::from_secs(30);
    while dovecot.counts().unwrap().1 < flagged_at_least && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();

    assert_eq!(
        count(&db, messages).await,
        MAILS,
        "exactly {MAILS} messages"
    );
    assert_eq!(
        count(&db, "SELECT COUNT(DISTINCT external_id) FROM messages").await,
        MAILS
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM mail_sources").await, MAILS);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM mail_rejects").await, 0);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM conversations").await,
        MAILS - MAILS / 10,
        "answers joined their conversations"
    );
    let (all, seen) = dovecot.counts().unwrap();
    assert_eq!(all, MAILS as usize, "nothing is removed from the server");
    assert!(
        (flagged_at_least..=MAILS as usize).contains(&seen),
        "{seen} of {MAILS} flagged"
    );
    eprintln!(
        "{backend:?}: {after_kill} mails before the kill ({first_rate:.0}/s including start-up), \
         the other {} after the restart ({rest_rate:.0}/s including start-up)",
        MAILS - after_kill
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_killing_seva_mid_fetch_loses_nothing_and_stores_nothing_twice() {
    killing_seva_mid_fetch_loses_nothing_and_stores_nothing_twice(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_killing_seva_mid_fetch_loses_nothing_and_stores_nothing_twice() {
    killing_seva_mid_fetch_loses_nothing_and_stores_nothing_twice(Backend::Postgres).await;
}
