//! Several instances on one database: each mailbox is watched by one of them at a time, and
//! another takes over when that one stops.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;
use std::time::{Duration, Instant};

use seva_app::attachments::LocalBlobs;
use seva_app::mail::MailboxInput;
use seva_app::{App, Caller, FixedClock, SystemClock};
use seva_channels::testing::Dovecot;
use seva_domain::Role;
use seva_domain::mail::{Security, Server};
use seva_store::testing::TestDb;
use seva_store::{Backend, Store, StoreOptions};
use tokio::sync::watch;

async fn admin(app: &App) -> Caller {
    Caller {
        user: app
            .create_user("admin@shop.example.com", "Admin", Role::Admin, None, None)
            .await
            .unwrap(),
    }
}

fn input(dovecot: &Dovecot) -> MailboxInput {
    let server = |port| Server {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        user: Some(dovecot.user.clone()),
        password: Some(dovecot.password.clone()),
    };
    MailboxInput {
        name: "Support".into(),
        address: "support@shop.example.com".into(),
        brand_id: None,
        imap: server(dovecot.port),
        imap_folder: None,
        smtp: server(dovecot.port),
        active: true,
    }
}

#[tokio::test]
async fn one_instance_at_a_time_holds_a_mailbox_until_its_lease_runs_out() {
    // Only PostgreSQL has instances side by side; on SQLite the one instance always holds it.
    {
        let db = TestDb::new(Backend::Sqlite).await;
        let app = App::new(db.store.clone(), Arc::new(SystemClock));
        let dovecot = Dovecot::start().unwrap();
        let id = app
            .create_mailbox(&admin(&app).await, &input(&dovecot))
            .await
            .unwrap()
            .id;
        assert!(app.claim_mailbox_watch(id, "one").await.unwrap());
        assert!(app.claim_mailbox_watch(id, "after-a-crash").await.unwrap());
    }
    for backend in [Backend::Postgres] {
        let db = TestDb::new(backend).await;
        let clock = Arc::new(FixedClock::new(
            chrono::DateTime::from_timestamp(1_794_000_000, 0).unwrap(),
        ));
        let app = App::new(db.store.clone(), clock.clone());
        let dovecot = Dovecot::start().unwrap();
        let mailbox = app
            .create_mailbox(&admin(&app).await, &input(&dovecot))
            .await
            .unwrap();
        let id = mailbox.id;
        assert!(app.claim_mailbox_watch(id, "one").await.unwrap());
        assert!(
            !app.claim_mailbox_watch(id, "two").await.unwrap(),
            "held by one"
        );
        clock.advance(chrono::Duration::seconds(20));
        assert!(app.claim_mailbox_watch(id, "one").await.unwrap(), "renewed");
        clock.advance(chrono::Duration::seconds(25));
        assert!(
            !app.claim_mailbox_watch(id, "two").await.unwrap(),
            "the renewal counts"
        );
        clock.advance(chrono::Duration::seconds(6));
        assert!(
            app.claim_mailbox_watch(id, "two").await.unwrap(),
            "one's lease ran out"
        );
        assert!(!app.claim_mailbox_watch(id, "one").await.unwrap());
        app.release_mailbox_watch(id, "one").await.unwrap();
        assert!(
            !app.claim_mailbox_watch(id, "three").await.unwrap(),
            "only two can release"
        );
        app.release_mailbox_watch(id, "two").await.unwrap();
        assert!(app.claim_mailbox_watch(id, "three").await.unwrap());
    }
}

async fn messages(store: &Store) -> i64 {
    let mut conn = store.conn().await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn wait_for(store: &Store, want: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = messages(store).await;
        if n >= want || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn mail(i: usize) -> Vec<u8> {
    format!(
        "From: c{i}@example.org\r\nSubject: Question {i}\r\nMessage-ID: <lease-{i}@example.org>\r\n\r\nHello {i}\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_instance_takes_the_mailbox_over_when_the_first_stops() {
    let db = TestDb::new(Backend::Postgres).await;
    // Instances side by side share the database and the attachment folder.
    let blobs_dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(LocalBlobs::new(blobs_dir.path()));
    let one = App::new(db.store.clone(), Arc::new(SystemClock)).with_blobs(blobs.clone());
    let two_store = Store::open(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    let two = App::new(two_store, Arc::new(SystemClock)).with_blobs(blobs);
    let dovecot = Dovecot::start().unwrap();
    one.create_mailbox(&admin(&one).await, &input(&dovecot))
        .await
        .unwrap();
    let every = Duration::from_millis(100);
    let poll = Duration::from_mins(10);

    // Instance one starts first and takes the mailbox.
    let (stop_one, stopped_one) = watch::channel(false);
    let first = tokio::spawn(seva_jobs::mailboxes::run(
        one.clone(),
        poll,
        every,
        stopped_one,
    ));
    for i in 0..5 {
        dovecot.deliver(&mail(i)).unwrap();
    }
    assert_eq!(wait_for(&db.store, 5).await, 5);
    let holder = watcher(&db.store).await.unwrap();

    // Instance two starts: the mailbox stays with one.
    let (stop_two, stopped_two) = watch::channel(false);
    let second = tokio::spawn(seva_jobs::mailboxes::run(
        two.clone(),
        poll,
        every,
        stopped_two,
    ));
    tokio::time::sleep(every * 5).await;
    assert_eq!(watcher(&db.store).await.as_deref(), Some(holder.as_str()));

    // One stops (releasing its lease); two takes over and fetches what arrives next.
    stop_one.send(true).unwrap();
    first.await.unwrap();
    for i in 5..10 {
        dovecot.deliver(&mail(i)).unwrap();
    }
    assert_eq!(
        wait_for(&db.store, 10).await,
        10,
        "the other instance took over"
    );
    let taken_over = watcher(&db.store).await.unwrap();
    assert_ne!(taken_over, holder);
    assert_eq!(messages(&db.store).await, 10, "nothing twice");
    stop_two.send(true).unwrap();
    second.await.unwrap();
    assert_eq!(watcher(&db.store).await, None, "released at shutdown");
}

async fn watcher(store: &Store) -> Option<String> {
    let mut conn = store.conn().await.unwrap();
    sqlx::query_scalar("SELECT watcher FROM mailboxes")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}
