//! The store contract: every test here runs on SQLite and on PostgreSQL, each on a fresh
//! database. A query that works on one backend only fails here.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

use chrono::{DateTime, Duration, Utc};
use seva_domain::customer::Attributes;
use seva_domain::{
    Actor, AttributeValue, AuthorKind, Change, Channel, Identity, IdentityKind, MessageKind,
    Priority, Role, Status, UserId,
};
use seva_store::conversations::{
    self, ConversationCursor, ConversationFilter, NewConversation, NewMessage,
};
use seva_store::customers::{self, CustomerFilter, NewCustomer};
use seva_store::testing::TestDb;
use seva_store::{Backend, StoreError, events, idempotency, search, staff};

/// Runs each listed test once per backend, as `sqlite::name` and `postgres::name`, so the test
/// output shows both ran.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(seva_store::Backend::Sqlite).await })+
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(seva_store::Backend::Postgres).await })+
        }
    };
}

on_both_backends!(
    migrations_are_recorded_and_idempotent,
    both_schemas_agree,
    a_customer_keeps_several_identities_and_each_identity_one_customer,
    customer_attributes_round_trip,
    conversations_list_newest_activity_first_with_filters_and_cursor,
    messages_with_the_same_external_id_are_refused,
    events_are_read_back_in_order_with_their_detail,
    api_tokens_find_their_active_owner,
    sessions_expire,
    setup_links_work_once,
    idempotency_keys_are_unique_per_user,
    a_rolled_back_transaction_leaves_nothing,
    search_finds_words_in_every_language_ranks_and_highlights,
    churn_moves_by_the_customers_who_lapsed_or_came_back,
);

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + secs, 0).expect("valid time")
}

async fn new_customer(db: &TestDb, email: &str) -> seva_domain::CustomerId {
    let mut tx = db.store.begin().await.unwrap();
    let attrs = Attributes::new();
    let id = customers::insert(
        &mut tx,
        &NewCustomer {
            name: Some("Ali"),
            language: Some("fa"),
            attributes: &attrs,
        },
        t(0),
    )
    .await
    .unwrap();
    customers::add_identity(
        &mut tx,
        id,
        &Identity::parse(IdentityKind::Email, email).unwrap(),
        t(0),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn new_agent(db: &TestDb, email: &str) -> UserId {
    let mut conn = db.store.conn().await.unwrap();
    staff::insert_user(
        &mut conn,
        &staff::NewUser {
            email,
            name: "Sara",
            role: Role::Agent,
            password_hash: None,
            language: None,
        },
        t(0),
    )
    .await
    .unwrap()
}

async fn migrations_are_recorded_and_idempotent(backend: Backend) {
    let db = TestDb::empty(backend).await;
    db.store.migrate().await.unwrap();
    db.store
        .migrate()
        .await
        .expect("running migrations twice changes nothing");
    let mut conn = db.store.conn().await.unwrap();
    let applied: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = $1")
            .bind(1_i64)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(applied, 1, "the first migration is recorded once");
    drop(conn);
    db.finish().await;
}

/// The tables and columns (with their nullability) of a backend's schema. The search index is
/// left out: it is the one place the schemas differ by design (an FTS5 table and its shadow
/// tables on SQLite, a table with a tsvector on PostgreSQL); its own tests cover it.
async fn schema_of(db: &TestDb) -> Vec<(String, String, bool)> {
    let mut conn = db.store.conn().await.unwrap();
    let sql = match db.store.backend() {
        Backend::Sqlite => {
            "SELECT m.name AS t, p.name AS c, p.\"notnull\" AS nn FROM sqlite_master m
             JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%' AND m.name NOT LIKE 'search_index%'"
        }
        Backend::Postgres => {
            "SELECT table_name::TEXT AS t, column_name::TEXT AS c,
                    CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END AS nn
             FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%' AND table_name NOT LIKE 'search_index%'"
        }
    };
    let rows: Vec<(String, String, i32)> = sqlx::query_as(sql).fetch_all(&mut *conn).await.unwrap();
    let mut out: Vec<_> = rows
        .into_iter()
        // SQLite reports INTEGER PRIMARY KEY columns as nullable; PostgreSQL does not.
        .map(|(table, column, not_null)| {
            let not_null = not_null != 0 || column == "id";
            (table, column, not_null)
        })
        .collect();
    out.sort();
    out
}

async fn both_schemas_agree(backend: Backend) {
    let other = match backend {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    };
    let (a, b) = (TestDb::new(backend).await, TestDb::new(other).await);
    let (schema_a, schema_b) = (schema_of(&a).await, schema_of(&b).await);
    assert!(schema_a.len() > 50, "schema read back: {schema_a:?}");
    assert_eq!(
        schema_a, schema_b,
        "the SQLite and PostgreSQL migrations have drifted apart"
    );
    a.finish().await;
    b.finish().await;
}

async fn a_customer_keeps_several_identities_and_each_identity_one_customer(backend: Backend) {
    let db = TestDb::new(backend).await;
    let ali = new_customer(&db, "ali@example.com").await;
    let sara = new_customer(&db, "sara@example.com").await;
    let mut conn = db.store.conn().await.unwrap();
    let phone = Identity::parse(IdentityKind::Phone, "+98 912 345 6789").unwrap();
    assert!(
        customers::add_identity(&mut conn, ali, &phone, t(1))
            .await
            .unwrap()
    );
    assert!(
        !customers::add_identity(&mut conn, ali, &phone, t(1))
            .await
            .unwrap(),
        "adding twice is a no-op"
    );
    let taken = customers::add_identity(&mut conn, sara, &phone, t(1)).await;
    assert!(
        matches!(taken, Err(StoreError::Conflict { .. })),
        "{taken:?}"
    );

    let found = customers::find_by_identity(&mut conn, IdentityKind::Phone, "+989123456789")
        .await
        .unwrap();
    assert_eq!(found, Some(ali));
    let ali_row = customers::get(&mut conn, ali).await.unwrap();
    assert_eq!(ali_row.emails().collect::<Vec<_>>(), ["ali@example.com"]);
    assert_eq!(ali_row.phones().collect::<Vec<_>>(), ["+989123456789"]);

    let listed = customers::list(
        &mut conn,
        &CustomerFilter {
            identity: Some(Identity::parse(IdentityKind::Email, "SARA@example.com").unwrap()),
            before_id: None,
            limit: 10,
        },
    )
    .await
    .unwrap();
    assert_eq!(listed.iter().map(|c| c.id).collect::<Vec<_>>(), [sara]);
    let all = customers::list(
        &mut conn,
        &CustomerFilter {
            identity: None,
            before_id: None,
            limit: 10,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        all.iter().map(|c| c.id).collect::<Vec<_>>(),
        [sara, ali],
        "newest first"
    );
    let after = customers::list(
        &mut conn,
        &CustomerFilter {
            identity: None,
            before_id: Some(sara),
            limit: 10,
        },
    )
    .await
    .unwrap();
    assert_eq!(after.iter().map(|c| c.id).collect::<Vec<_>>(), [ali]);
    drop(conn);
    db.finish().await;
}

async fn customer_attributes_round_trip(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut attrs = Attributes::new();
    attrs.insert("city".into(), AttributeValue::Text("تهران".into()));
    attrs.insert("vip".into(), AttributeValue::Bool(true));
    attrs.insert("orders".into(), AttributeValue::Integer(12));
    attrs.insert("shoe_size".into(), AttributeValue::Number(42.5));
    let mut conn = db.store.conn().await.unwrap();
    let id = customers::insert(
        &mut conn,
        &NewCustomer {
            name: Some("मीरा"),
            language: Some("mr"),
            attributes: &attrs,
        },
        t(5),
    )
    .await
    .unwrap();
    let back = customers::get(&mut conn, id).await.unwrap();
    assert_eq!(back.attributes, attrs);
    assert_eq!(back.name.as_deref(), Some("मीरा"));
    assert_eq!(back.created_at, t(5));
    drop(conn);
    db.finish().await;
}

async fn conversations_list_newest_activity_first_with_filters_and_cursor(backend: Backend) {
    let db = TestDb::new(backend).await;
    let customer = new_customer(&db, "ali@example.com").await;
    let agent = new_agent(&db, "sara@shop.example").await;
    let mut conn = db.store.conn().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = conversations::insert(
            &mut conn,
            &NewConversation {
                customer_id: customer,
                brand_id: None,
                channel: if i % 2 == 0 {
                    Channel::Email
                } else {
                    Channel::Chat
                },
                status: if i == 4 {
                    Status::Resolved
                } else {
                    Status::Open
                },
                priority: Priority::Normal,
                subject: Some("Where is my order?"),
                assignee_id: (i < 2).then_some(agent),
                team_id: None,
                at: t(i),
            },
        )
        .await
        .unwrap();
        ids.push(id);
    }
    conversations::set_tags(&mut conn, ids[1], &["refund".into(), "vip".into()])
        .await
        .unwrap();

    let all = conversations::list(&mut conn, &ConversationFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|c| c.id).collect::<Vec<_>>(),
        [ids[4], ids[3], ids[2], ids[1], ids[0]]
    );
    assert_eq!(all[3].tags, ["refund", "vip"]);

    let open_email = ConversationFilter {
        statuses: vec![Status::Open],
        channel: Some(Channel::Email),
        ..Default::default()
    };
    let listed = conversations::list(&mut conn, &open_email, None, 10)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        [ids[2], ids[0]]
    );

    let unassigned = ConversationFilter {
        assignee: Some(None),
        ..Default::default()
    };
    assert_eq!(
        conversations::list(&mut conn, &unassigned, None, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    let mine = ConversationFilter {
        assignee: Some(Some(agent)),
        ..Default::default()
    };
    assert_eq!(
        conversations::list(&mut conn, &mine, None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    let tagged = ConversationFilter {
        tag: Some("vip".into()),
        ..Default::default()
    };
    assert_eq!(
        conversations::list(&mut conn, &tagged, None, 10)
            .await
            .unwrap()[0]
            .id,
        ids[1]
    );

    let page1 = conversations::list(&mut conn, &ConversationFilter::default(), None, 2)
        .await
        .unwrap();
    let last = page1.last().unwrap();
    let cursor = ConversationCursor {
        last_activity_at: last.last_activity_at.timestamp_micros(),
        id: last.id.0,
    };
    let page2 = conversations::list(&mut conn, &ConversationFilter::default(), Some(cursor), 2)
        .await
        .unwrap();
    assert_eq!(
        page2.iter().map(|c| c.id).collect::<Vec<_>>(),
        [ids[2], ids[1]]
    );

    let mut moved = conversations::get(&mut conn, ids[0]).await.unwrap();
    moved.last_activity_at = t(100);
    moved.status = Status::Pending;
    conversations::update(&mut conn, &moved).await.unwrap();
    let first = conversations::list(&mut conn, &ConversationFilter::default(), None, 1)
        .await
        .unwrap();
    assert_eq!(
        (first[0].id, first[0].status),
        (ids[0], Status::Pending),
        "activity moves a conversation to the top"
    );
    drop(conn);
    db.finish().await;
}

async fn messages_with_the_same_external_id_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let customer = new_customer(&db, "ali@example.com").await;
    let mut conn = db.store.conn().await.unwrap();
    let conversation = conversations::insert(
        &mut conn,
        &NewConversation {
            customer_id: customer,
            brand_id: None,
            channel: Channel::Email,
            status: Status::Open,
            priority: Priority::Normal,
            subject: None,
            assignee_id: None,
            team_id: None,
            at: t(0),
        },
    )
    .await
    .unwrap();
    let message = NewMessage {
        conversation_id: conversation,
        kind: MessageKind::Customer,
        author_kind: AuthorKind::Customer,
        author_user_id: None,
        text: "سلام، سفارشم کجاست؟",
        html: None,
        external_id: Some("<abc@mail.example>"),
        at: t(1),
    };
    let id = conversations::insert_message(&mut conn, &message)
        .await
        .unwrap();
    let again = conversations::insert_message(&mut conn, &message).await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    let found = conversations::find_message_by_external_id(&mut conn, "<abc@mail.example>")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, found.text.as_str()), (id, "سلام، سفارشم کجاست؟"));
    assert_eq!(
        conversations::messages(&mut conn, conversation)
            .await
            .unwrap()
            .len(),
        1
    );
    drop(conn);
    db.finish().await;
}

async fn events_are_read_back_in_order_with_their_detail(backend: Backend) {
    let db = TestDb::new(backend).await;
    let customer = new_customer(&db, "ali@example.com").await;
    let agent = new_agent(&db, "sara@shop.example").await;
    let mut conn = db.store.conn().await.unwrap();
    let conversation = conversations::insert(
        &mut conn,
        &NewConversation {
            customer_id: customer,
            brand_id: None,
            channel: Channel::Api,
            status: Status::Open,
            priority: Priority::High,
            subject: None,
            assignee_id: None,
            team_id: None,
            at: t(0),
        },
    )
    .await
    .unwrap();
    let changes = [
        Change::ConversationCreated {
            channel: Channel::Api,
            subject: None,
        },
        Change::Assigned {
            from: None,
            to: Some(agent),
        },
        Change::StatusChanged {
            from: Status::Open,
            to: Status::Resolved,
        },
    ];
    for (i, change) in changes.iter().enumerate() {
        events::record(
            &mut conn,
            Some(conversation),
            Some(customer),
            Actor::user(agent),
            change,
            t(i as i64),
        )
        .await
        .unwrap();
    }
    let back = events::for_conversation(&mut conn, conversation)
        .await
        .unwrap();
    assert_eq!(
        back.iter().map(|e| e.change.clone()).collect::<Vec<_>>(),
        changes
    );
    assert_eq!(back[2].at, t(2));
    assert_eq!(back[1].actor, Actor::user(agent));
    drop(conn);
    db.finish().await;
}

async fn api_tokens_find_their_active_owner(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agent = new_agent(&db, "sara@shop.example").await;
    let mut conn = db.store.conn().await.unwrap();
    staff::insert_token(&mut conn, agent, "zapier", "hash-1", t(0))
        .await
        .unwrap();
    let owner = staff::user_by_token(&mut conn, "hash-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (owner.id, owner.role, owner.active),
        (agent, Role::Agent, true)
    );
    assert!(
        staff::user_by_token(&mut conn, "hash-2")
            .await
            .unwrap()
            .is_none()
    );
    drop(conn);
    db.finish().await;
}

async fn sessions_expire(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agent = new_agent(&db, "sara@shop.example").await;
    let mut conn = db.store.conn().await.unwrap();
    staff::insert_session(
        &mut conn,
        "s1",
        agent,
        "csrf",
        t(0),
        t(0) + Duration::hours(12),
    )
    .await
    .unwrap();
    let (user, csrf) = staff::session(&mut conn, "s1", t(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((user.id, csrf.as_str()), (agent, "csrf"));
    assert!(
        staff::session(&mut conn, "s1", t(0) + Duration::hours(13))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        staff::delete_expired_sessions(&mut conn, t(0) + Duration::hours(13))
            .await
            .unwrap(),
        1
    );
    drop(conn);
    db.finish().await;
}

async fn setup_links_work_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut conn = db.store.conn().await.unwrap();
    staff::replace_setup_token(&mut conn, "old", t(0), t(3600))
        .await
        .unwrap();
    staff::replace_setup_token(&mut conn, "new", t(1), t(3600))
        .await
        .unwrap();
    assert!(
        !staff::use_setup_token(&mut conn, "old", t(2))
            .await
            .unwrap(),
        "a replaced link is dead"
    );
    assert!(
        !staff::use_setup_token(&mut conn, "new", t(3601))
            .await
            .unwrap(),
        "an expired link is dead"
    );
    assert!(
        staff::use_setup_token(&mut conn, "new", t(2))
            .await
            .unwrap()
    );
    assert!(
        !staff::use_setup_token(&mut conn, "new", t(3))
            .await
            .unwrap(),
        "a link works once"
    );
    drop(conn);
    db.finish().await;
}

async fn idempotency_keys_are_unique_per_user(backend: Backend) {
    let db = TestDb::new(backend).await;
    let a = new_agent(&db, "a@shop.example").await;
    let b = new_agent(&db, "b@shop.example").await;
    let mut conn = db.store.conn().await.unwrap();
    let record = idempotency::IdempotencyRecord {
        request_hash: "h".into(),
        resource_kind: "conversation".into(),
        resource_id: 7,
    };
    idempotency::insert(&mut conn, a, "key-1", &record, t(0))
        .await
        .unwrap();
    idempotency::insert(&mut conn, b, "key-1", &record, t(0))
        .await
        .expect("keys are per user");
    let again = idempotency::insert(&mut conn, a, "key-1", &record, t(0)).await;
    assert!(matches!(again, Err(StoreError::Conflict { .. })));
    assert_eq!(
        idempotency::find(&mut conn, a, "key-1").await.unwrap(),
        Some(record)
    );
    drop(conn);
    db.finish().await;
}

async fn a_rolled_back_transaction_leaves_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut tx = db.store.begin().await.unwrap();
    let attrs = Attributes::new();
    let id = customers::insert(
        &mut tx,
        &NewCustomer {
            name: None,
            language: None,
            attributes: &attrs,
        },
        t(0),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let mut conn = db.store.conn().await.unwrap();
    assert!(matches!(
        customers::get(&mut conn, id).await,
        Err(StoreError::NotFound)
    ));
    drop(conn);
    db.finish().await;
}

async fn search_finds_words_in_every_language_ranks_and_highlights(backend: Backend) {
    let db = TestDb::new(backend).await;
    let customer = new_customer(&db, "ali@example.com").await;
    let mut conn = db.store.conn().await.unwrap();
    let mut open = async |subject: Option<&str>, text: &str| {
        let id = conversations::insert(
            &mut conn,
            &NewConversation {
                customer_id: customer,
                brand_id: None,
                channel: Channel::Email,
                status: Status::Open,
                priority: Priority::Normal,
                subject,
                assignee_id: None,
                team_id: None,
                at: t(0),
            },
        )
        .await
        .unwrap();
        let message = NewMessage {
            conversation_id: id,
            kind: MessageKind::Customer,
            author_kind: AuthorKind::Customer,
            author_user_id: None,
            text,
            html: None,
            external_id: None,
            at: t(1),
        };
        conversations::insert_message(&mut conn, &message)
            .await
            .unwrap();
        id
    };
    let english = open(
        Some("Where is my order?"),
        "The parcel never arrived, order 1234 <script>alert(1)</script>",
    )
    .await;
    let persian = open(None, "سلام علي، می\u{200C}خواهم سفارشم را لغو کنم").await;
    let marathi = open(None, "माझी ऑर्डर अजून आली नाही").await;
    let hindi = open(None, "मेरा रिफ़ंड नहीं मिला").await;
    let repeated = open(None, "order order order").await;

    let found = async |conn: &mut seva_store::Conn, q: &str| -> Vec<seva_domain::ConversationId> {
        search::search(conn, q, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.conversation_id)
            .collect()
    };
    assert_eq!(
        found(&mut conn, "میخواهم").await,
        [persian],
        "typed without the ZWNJ"
    );
    assert_eq!(
        found(&mut conn, "می\u{200C}خواهم").await,
        [persian],
        "typed with the ZWNJ"
    );
    assert_eq!(
        found(&mut conn, "علی").await,
        [persian],
        "Persian yeh finds Arabic yeh"
    );
    assert_eq!(
        found(&mut conn, "ऑर्डर").await,
        [marathi],
        "a Marathi word with vowel signs"
    );
    assert!(
        found(&mut conn, "डर").await.is_empty(),
        "a piece of a Devanagari word (after its virama) is not a word"
    );
    assert_eq!(
        found(&mut conn, "आली नाही").await,
        [marathi],
        "every word must match"
    );
    assert_eq!(found(&mut conn, "रिफ़ंड").await, [hindi]);
    assert_eq!(
        found(&mut conn, "۱۲۳۴").await,
        [english],
        "Persian digits find ASCII digits"
    );
    assert_eq!(
        found(&mut conn, "ORDER").await,
        [repeated, english],
        "more matches rank higher; case does not matter"
    );
    assert!(found(&mut conn, "नहीं मिला ऑर्डर").await.is_empty());
    assert_eq!(
        found(&mut conn, "\"order\" * ( ^ -").await,
        [repeated, english],
        "search syntax in a query is just words"
    );
    assert!(found(&mut conn, "   ").await.is_empty());

    let hit = search::search(&mut conn, "parcel", 10)
        .await
        .unwrap()
        .remove(0);
    assert!(
        hit.snippet_html.contains("<mark>parcel</mark>"),
        "{}",
        hit.snippet_html
    );
    assert!(
        !hit.snippet_html.contains("<script>"),
        "customer text is escaped: {}",
        hit.snippet_html
    );

    search::index_subject(&mut conn, english, Some("Refund for a broken vase"))
        .await
        .unwrap();
    assert_eq!(
        found(&mut conn, "vase").await,
        [english],
        "a changed subject is found"
    );
    assert!(
        !found(&mut conn, "where").await.contains(&english),
        "the old subject is gone"
    );
    drop(conn);
    db.finish().await;
}

/// The dashboard's churn as of now is a kept count at a recent day plus `churn_change` since:
/// the change must equal the difference of the two counts, whoever lapsed, came back, or
/// ordered only something cancelled.
async fn churn_moves_by_the_customers_who_lapsed_or_came_back(backend: Backend) {
    use seva_domain::commerce::{
        Currency, FulfilmentStatus, OrderSource, OrderStatus, PaymentStatus,
    };
    use seva_store::{commerce, reports};
    let db = TestDb::new(backend).await;
    let day = |d: i64| t(d * 86_400);
    let inr = Currency::parse("INR").unwrap();
    // (customer, day placed, cancelled)
    let plan: [(&str, &[(i64, bool)]); 5] = [
        ("a@example.in", &[(0, false)]),               // churns at day 180
        ("b@example.in", &[(0, false), (100, false)]), // churns at day 280
        ("c@example.in", &[(0, false), (200, false)]), // churns at 180, back at 200
        ("d@example.in", &[(10, false), (150, true)]), // the cancelled one does not count
        ("e@example.in", &[(185, false)]),             // new, never churned
    ];
    let mut n = 0;
    for (email, orders) in plan {
        let customer = new_customer(&db, email).await;
        for (placed, cancelled) in orders {
            n += 1;
            let external = format!("o{n}");
            let mut conn = db.store.conn().await.unwrap();
            commerce::record(
                &mut conn,
                &commerce::NewOrder {
                    source: OrderSource::Api,
                    external_id: &external,
                    number: &external,
                    customer_id: customer,
                    status: if *cancelled {
                        OrderStatus::Cancelled
                    } else {
                        OrderStatus::Completed
                    },
                    payment_status: PaymentStatus::Paid,
                    fulfilment_status: FulfilmentStatus::Fulfilled,
                    currency: &inr,
                    total: 1000,
                    refunded: 0,
                    placed_at: day(*placed),
                    shipping_address: None,
                    lines: &[],
                    fingerprint: &external,
                    source_updated_at: None,
                },
                day(*placed),
            )
            .await
            .unwrap();
        }
    }
    let horizon = Duration::days(180);
    let store = &db.store;
    let churned = |at: i64| async move {
        let at = day(at);
        let mut conn = store.conn().await.unwrap();
        reports::churned(&mut conn, at - horizon, at, &reports::Scope::default())
            .await
            .unwrap()
    };
    // By hand: nobody at 170; a, c and d at 195; a and d at 205 (c came back at 200); a, d
    // and b at 290.
    assert_eq!(churned(170).await, 0);
    assert_eq!(churned(195).await, 3);
    assert_eq!(churned(205).await, 2);
    assert_eq!(churned(290).await, 3);
    for (base, at) in [
        (170, 195),
        (179, 205),
        (195, 205),
        (195, 210),
        (200, 290),
        (280, 290),
    ] {
        let mut conn = db.store.conn().await.unwrap();
        let change = reports::churn_change(&mut conn, day(base), day(at), horizon)
            .await
            .unwrap();
        drop(conn);
        assert_eq!(
            change,
            churned(at).await - churned(base).await,
            "from day {base} to day {at}"
        );
    }
}
