//! The demo shop loads on both backends with believable, consistent timelines.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

use std::sync::Arc;

use chrono::DateTime;
use seva_app::demo::DemoSize;
use seva_app::{App, AppError, FixedClock};
use seva_store::Backend;
use seva_store::testing::TestDb;

#[tokio::test]
async fn the_demo_shop_loads_on_sqlite() {
    the_demo_shop_loads(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_demo_shop_loads_on_postgres() {
    the_demo_shop_loads(Backend::Postgres).await;
}

async fn the_demo_shop_loads(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
    let app = App::new(db.store.clone(), Arc::new(FixedClock::new(now)));
    let report = app
        .load_demo(
            7,
            DemoSize {
                customers: 60,
                conversations: 200,
            },
        )
        .await
        .unwrap();
    assert_eq!((report.customers, report.conversations), (60, 200));
    assert_eq!(db.count("conversations").await, 200);
    assert_eq!(
        db.count("customers").await,
        60,
        "every customer is found again by email or phone, never duplicated"
    );
    assert_eq!(db.count("messages").await, report.messages as i64);
    assert!(
        report.messages > 400,
        "conversations have replies and follow-ups: {}",
        report.messages
    );
    assert_eq!(db.count("brands").await, 2);
    assert_eq!(db.count("sla_policies").await, 1);
    // Every conversation the customer started has a first reply target under it.
    assert!(
        db.count("sla_outcomes").await >= 200,
        "targets for the dashboard's attainment: {}",
        db.count("sla_outcomes").await
    );
    assert_eq!(db.count("orders").await, report.orders as i64);
    assert!(
        report.orders > 60,
        "most customers ordered, some several times: {}",
        report.orders
    );
    assert_eq!(
        db.count("customers").await,
        60,
        "orders found their customers by email"
    );

    let all = app
        .list_conversations(
            &seva_store::conversations::ConversationFilter::default(),
            None,
            200,
        )
        .await
        .unwrap();
    assert!(
        all.iter()
            .all(|c| c.last_activity_at <= now && c.created_at <= now),
        "nothing happens in the future"
    );
    let statuses: std::collections::HashSet<_> = all.iter().map(|c| c.status).collect();
    assert!(statuses.len() >= 4, "a mix of statuses: {statuses:?}");
    let languages: std::collections::HashSet<_> = {
        let mut set = std::collections::HashSet::new();
        for c in all.iter().take(60) {
            set.insert(app.customer(c.customer_id).await.unwrap().language);
        }
        set
    };
    assert!(
        languages.len() >= 4,
        "customers in English, Persian, Marathi and Hindi: {languages:?}"
    );
    let reopened = {
        let mut n = 0;
        for c in &all {
            let events = app.conversation_events(c.id).await.unwrap();
            n += usize::from(events.iter().any(|e| {
                matches!(
                    e.change,
                    seva_domain::Change::StatusChanged {
                        from: seva_domain::Status::Resolved,
                        to: seva_domain::Status::Open
                    }
                )
            }));
        }
        n
    };
    assert!(reopened > 0, "some conversations were reopened");
    assert!(
        matches!(
            app.load_demo(7, DemoSize::default()).await,
            Err(AppError::AlreadyExists(_))
        ),
        "loading twice is refused"
    );
    db.finish().await;
}
