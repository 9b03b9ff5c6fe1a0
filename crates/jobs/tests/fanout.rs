//! Two instances on one PostgreSQL database hear each other's changes and viewers.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use seva_app::live::Notice;
use seva_app::{App, Caller, SystemClock};
use seva_domain::{ConversationId, Role};
use seva_store::testing::TestDb;
use seva_store::{Backend, Store, StoreOptions};
use tokio::sync::watch;

async fn next_notice(rx: &mut tokio::sync::broadcast::Receiver<Notice>) -> Notice {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a notice within 5 s")
        .unwrap()
}

#[tokio::test]
async fn instances_on_one_postgres_database_share_live_updates_and_viewers() {
    let db = TestDb::new(Backend::Postgres).await;
    let one = App::new(db.store.clone(), Arc::new(SystemClock));
    let other_store = Store::open(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    let two = App::new(other_store, Arc::new(SystemClock));
    let (stop_tx, stop) = watch::channel(false);
    let jobs = seva_jobs::spawn_all(&two, &stop);
    let sara = Caller {
        user: one
            .create_user("sara@shop.example", "Sara", Role::Agent, None, None)
            .await
            .unwrap(),
    };
    let mut heard = two.subscribe();
    let c = ConversationId(42);

    // The listener needs a moment to start listening; announce until it hears.
    let mut arrived = false;
    for _ in 0..50 {
        one.publish(Notice::Changed(c));
        while let Ok(Ok(notice)) =
            tokio::time::timeout(Duration::from_millis(100), heard.recv()).await
        {
            // On connecting, the listener first tells its pages to reload.
            if notice != Notice::Everything {
                assert_eq!(notice, Notice::Changed(c));
                arrived = true;
            }
        }
        if arrived {
            break;
        }
    }
    assert!(arrived, "instance two hears instance one's change");
    while heard.try_recv().is_ok() {}

    one.heartbeat(&sara, c, Some(true));
    assert_eq!(next_notice(&mut heard).await, Notice::Presence(c));
    let viewers = two.viewers(c, seva_domain::UserId(0));
    assert_eq!(viewers.len(), 1);
    assert!(viewers[0].name == "Sara" && viewers[0].typing);

    one.leave(&sara, c);
    assert_eq!(next_notice(&mut heard).await, Notice::Presence(c));
    assert!(two.viewers(c, seva_domain::UserId(0)).is_empty());

    // Its own announcements do not come back to it twice.
    let mut own = one.subscribe();
    one.publish(Notice::Changed(c));
    assert_eq!(next_notice(&mut own).await, Notice::Changed(c));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(own.try_recv().is_err());

    stop_tx.send_replace(true);
    for job in jobs {
        job.await.unwrap();
    }
    db.finish().await;
}

#[tokio::test]
async fn on_sqlite_the_fan_out_job_has_nothing_to_do_and_ends() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = App::new(db.store.clone(), Arc::new(SystemClock));
    let (_stop_tx, stop) = watch::channel(false);
    tokio::time::timeout(Duration::from_secs(2), seva_jobs::fanout::run(app, stop))
        .await
        .expect("ends at once: one instance has no one to hear");
    db.finish().await;
}
