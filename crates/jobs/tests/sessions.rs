//! The session purge removes expired sessions and keeps live ones, on both backends.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;

use chrono::{DateTime, Duration};
use seva_app::{App, FixedClock};
use seva_domain::Role;
use seva_store::Backend;
use seva_store::testing::TestDb;

async fn expired_sessions_are_purged_and_live_ones_kept(backend: Backend) {
    let db = TestDb::new(backend).await;
    let clock = Arc::new(FixedClock::new(
        DateTime::from_timestamp(1_795_000_000, 0).unwrap(),
    ));
    let app = App::new(db.store.clone(), clock.clone());
    app.create_user(
        "sara@shop.example",
        "Sara",
        Role::Agent,
        Some("correct horse battery"),
        None,
    )
    .await
    .unwrap();
    let old = app
        .sign_in("sara@shop.example", "correct horse battery")
        .await
        .unwrap();
    clock.advance(Duration::hours(11));
    let fresh = app
        .sign_in("sara@shop.example", "correct horse battery")
        .await
        .unwrap();
    clock.advance(Duration::hours(2));

    let outcome = seva_jobs::sessions::run_once(&app).await.unwrap();
    assert_eq!(outcome.done, 1);
    assert!(app.session(&old.token).await.unwrap().is_none());
    assert!(app.session(&fresh.token).await.unwrap().is_some());
    assert_eq!(
        seva_jobs::sessions::run_once(&app).await.unwrap().done,
        0,
        "nothing left to purge"
    );
    db.finish().await;
}

#[tokio::test]
async fn sqlite_expired_sessions_are_purged_and_live_ones_kept() {
    expired_sessions_are_purged_and_live_ones_kept(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_expired_sessions_are_purged_and_live_ones_kept() {
    expired_sessions_are_purged_and_live_ones_kept(Backend::Postgres).await;
}
