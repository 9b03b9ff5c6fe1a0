//! The CRM through the API, on both backends: likely duplicates and merging, access requests
//! and erasure (nothing of the customer's words left in any table, the search index, the
//! blob store or, on SQLite, the database file), orders linked to conversations with return
//! and refund requests, products, and segments.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use seva_app::Caller;
use seva_app::attachments::NewFile;
use seva_app::conversations::MessageInput;
use seva_domain::{ConversationId, MessageKind};
use seva_store::Backend;

use common::*;

on_both_backends!(
    likely_duplicates_are_suggested_and_a_merge_moves_everything,
    an_access_request_exports_everything_and_erasure_leaves_no_words_behind,
    orders_are_linked_to_conversations_and_requests_move_along,
    segments_count_list_export_and_filter_the_inbox,
);

fn order(
    external_id: &str,
    customer: &Value,
    currency: &str,
    total: i64,
    placed_at: &str,
) -> Value {
    json!({
        "source": "api", "external_id": external_id, "number": format!("#{external_id}"),
        "customer": customer, "payment_status": "paid", "currency": currency,
        "total": total, "placed_at": placed_at,
        "lines": [{"sku": "SCARF-RED", "title": "شال ابریشمی", "quantity": 2,
                   "unit_price": total / 2, "total": total}]
    })
}

async fn post(t: &TestApp, path: &str, token: &str, body: Value) -> Reply {
    t.call(Method::POST, path, token, Some(body), None).await
}

async fn likely_duplicates_are_suggested_and_a_merge_moves_everything(backend: Backend) {
    let t = TestApp::new(backend).await;
    // Sara writes from a +tag alias of her Gmail address...
    let chat = t
        .post_conversation(json!({
            "customer": {"email": "Sara.Ahmadi+shop@gmail.com", "name": "Sara Ahmadi"},
            "subject": "Where is my scarf?", "message": {"text": "It has not come"}}))
        .await;
    assert_eq!(chat.status, StatusCode::CREATED, "{}", chat.text);
    let a = chat.body["customer_id"].as_i64().unwrap();
    // ...and orders as saraahmadi@gmail.com, with her phone written the Iranian way.
    let placed = post(
        &t,
        "/api/v1/orders",
        &t.agent,
        order(
            "1001",
            &json!({"email": "saraahmadi@gmail.com", "phone": "۰۹۱۲ ۳۴۵ ۶۷۸۹", "country": "IR",
                   "name": "سارا احمدی"}),
            "IRR",
            52_000_000,
            "2026-10-01T10:00:00Z",
        ),
    )
    .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let b = placed.body["customer_id"].as_i64().unwrap();
    assert_ne!(a, b, "different addresses make different customers");
    let shown = t.get(&format!("/api/v1/customers/{b}")).await;
    assert_eq!(shown.body["phones"], json!(["+989123456789"]), "E.164");
    // An unrelated customer is not suggested.
    t.open_conversation("someone.else@example.com").await;

    let dupes = t.get(&format!("/api/v1/customers/{a}/duplicates")).await;
    assert_eq!(dupes.status, StatusCode::OK, "{}", dupes.text);
    let items = dupes.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", dupes.text);
    assert_eq!(items[0]["customer"]["id"], b);
    assert_eq!(items[0]["reasons"], json!(["email"]));

    // Things to move: a tag and a note on each, a request on B's order.
    for (id, tag) in [(a, "vip"), (b, "wholesale")] {
        let tagged = post(
            &t,
            &format!("/api/v1/customers/{id}/tags"),
            &t.agent,
            json!({"add": [tag, "Iran"]}),
        )
        .await;
        assert_eq!(tagged.status, StatusCode::OK, "{}", tagged.text);
    }
    let note = post(
        &t,
        &format!("/api/v1/customers/{b}/notes"),
        &t.agent,
        json!({"body": "Prefers morning deliveries"}),
    )
    .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);

    // Read-only users cannot merge; nobody merges a customer into itself.
    let refused = post(
        &t,
        &format!("/api/v1/customers/{a}/merge"),
        &t.readonly,
        json!({"from": b}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let itself = post(
        &t,
        &format!("/api/v1/customers/{a}/merge"),
        &t.agent,
        json!({"from": a}),
    )
    .await;
    assert_eq!(itself.status, StatusCode::CONFLICT);
    assert_eq!(itself.code(), "merge_refused");

    let merged = post(
        &t,
        &format!("/api/v1/customers/{a}/merge"),
        &t.agent,
        json!({"from": b}),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.text);
    assert_eq!(
        merged.body["name"], "Sara Ahmadi",
        "the survivor keeps its name"
    );
    let emails = merged.body["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 2, "{}", merged.text);
    assert_eq!(merged.body["phones"], json!(["+989123456789"]));

    let gone = t.get(&format!("/api/v1/customers/{b}")).await;
    assert_eq!(
        gone.body["merged_into"], a,
        "the merged customer points to the survivor"
    );
    let orders = t.get(&format!("/api/v1/customers/{a}/orders")).await;
    assert_eq!(orders.body["items"][0]["number"], "#1001");
    let notes = t.get(&format!("/api/v1/customers/{a}/notes")).await;
    assert_eq!(notes.body["items"][0]["body"], "Prefers morning deliveries");
    let listed = t.get(&format!("/api/v1/conversations?customer={a}")).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let tags = post(
        &t,
        &format!("/api/v1/customers/{a}/tags"),
        &t.agent,
        json!({}),
    )
    .await;
    assert_eq!(tags.body["tags"], json!(["iran", "vip", "wholesale"]));
    assert_eq!(
        t.get(&format!("/api/v1/customers/{a}/duplicates"))
            .await
            .body["items"],
        json!([]),
        "no longer a duplicate of itself"
    );

    // Audited: the merge is on both customers' history, with who did it and what moved.
    let mut conn = t.db.store.conn().await.unwrap();
    let rows: Vec<(Option<i64>, Option<i64>, String)> = sqlx::query_as(
        "SELECT customer_id, actor_id, data FROM events WHERE kind = 'customer_merged' ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, Some(a));
    assert!(rows[0].1.is_some(), "the agent who merged");
    let detail: Value = serde_json::from_str(&rows[0].2).unwrap();
    assert_eq!(detail["from"], b);
    assert_eq!(detail["orders"], 1);
    assert_eq!(detail["identities"], 2, "B's email and phone");

    // A second merge of the same customer is refused; new mail from B's address reaches A.
    let again = post(
        &t,
        &format!("/api/v1/customers/{a}/merge"),
        &t.agent,
        json!({"from": b}),
    )
    .await;
    assert_eq!(again.code(), "merge_refused");
    let later = t
        .post_conversation(json!({"customer": {"email": "saraahmadi@gmail.com"},
                                 "message": {"text": "One more thing"}}))
        .await;
    assert_eq!(later.body["customer_id"], a);
    t.finish().await;
}

/// Every text column of every table holding `needle`, as `table.column`.
async fn tables_holding(t: &TestApp, needle: &str, backend: Backend) -> Vec<String> {
    let mut conn = t.db.store.conn().await.unwrap();
    let columns: Vec<(String, String)> = match backend {
        Backend::Sqlite => sqlx::query_as(
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
             WHERE m.type = 'table'",
        ),
        Backend::Postgres => sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND data_type IN ('text', 'character varying')",
        ),
    }
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut found = Vec::new();
    for (table, column) in columns {
        let sql =
            format!("SELECT COUNT(*) FROM \"{table}\" WHERE CAST(\"{column}\" AS TEXT) LIKE $1");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(format!("%{needle}%"))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        if n > 0 {
            found.push(format!("{table}.{column}"));
        }
    }
    found
}

/// Whether the SQLite database file or its write-ahead log holds `needle`'s bytes.
fn sqlite_file_holds(t: &TestApp, needle: &str) -> bool {
    let path =
        t.db.url
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap()
            .to_owned();
    [path.clone(), format!("{path}-wal")].iter().any(|p| {
        std::fs::read(p)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

async fn an_access_request_exports_everything_and_erasure_leaves_no_words_behind(backend: Backend) {
    let t = TestApp::new(backend).await;
    let marker = "zanjabil7731";
    let created = t
        .post_conversation(json!({
            "customer": {"email": "maryam@example.com", "name": "Maryam Rezaei",
                         "phone": "+98 912 345 6789"},
            "subject": format!("Parcel {marker} lost"),
            "message": {"text": format!("My parcel {marker} never came. Call me on 0912 345 6789")}}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let conversation = created.body["id"].as_i64().unwrap();
    let customer = created.body["customer_id"].as_i64().unwrap();
    let reply = t
        .message(
            conversation,
            "reply",
            &format!("Sorry Maryam, {marker} is on its way"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    // A photo of the parcel, in the blob store.
    let agent = Caller {
        user: t.app.user_by_email("sara@shop.example").await.unwrap(),
    };
    t.app
        .add_message_with_files(
            &agent,
            ConversationId(conversation),
            &MessageInput {
                kind: MessageKind::Note,
                text: format!("Photo of {marker}"),
                html: None,
                external_id: None,
                created_at: None,
            },
            &[NewFile {
                filename: "parcel.png".into(),
                content_type: "image/png".into(),
                bytes: format!("PNG {marker} bytes").into_bytes(),
            }],
            None,
        )
        .await
        .unwrap();
    let blob_files = || {
        walk(t.blobs.path())
            .into_iter()
            .filter(|p| {
                std::fs::read(p).is_ok_and(|b| String::from_utf8_lossy(&b).contains(marker))
            })
            .count()
    };
    assert_eq!(blob_files(), 1, "the photo is stored");
    post(
        &t,
        &format!("/api/v1/customers/{customer}/notes"),
        &t.agent,
        json!({"body": format!("Asked about {marker} twice")}),
    )
    .await;
    let placed = post(
        &t,
        "/api/v1/orders",
        &t.agent,
        json!({"source": "api", "external_id": "9", "customer": {"email": "maryam@example.com"},
               "currency": "IRR", "total": 1_000_000, "placed_at": "2026-10-01T10:00:00Z",
               "shipping_address": {"name": "Maryam Rezaei", "line1": format!("{marker} Street 12")}}),
    )
    .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let found = t.get(&format!("/api/v1/search?q={marker}")).await;
    assert_eq!(
        found.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        found.text
    );

    // The access request: admins only, everything in one document, recorded.
    let denied = t
        .call(
            Method::GET,
            &format!("/api/v1/customers/{customer}/export"),
            &t.agent,
            None,
            None,
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let export = t
        .call(
            Method::GET,
            &format!("/api/v1/customers/{customer}/export"),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    let doc = &export.body;
    assert_eq!(doc["customer"]["name"], "Maryam Rezaei");
    assert_eq!(doc["customer"]["phones"], json!(["+989123456789"]));
    let messages = doc["conversations"][0]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "the question, the reply and the note");
    assert!(messages[0]["text"].as_str().unwrap().contains(marker));
    assert_eq!(doc["orders"][0]["total"], 1_000_000);
    assert!(doc["notes"][0]["body"].as_str().unwrap().contains(marker));
    assert!(
        doc["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["change"]["type"] == "identity_added"),
        "the history"
    );

    let holding = tables_holding(&t, marker, backend).await;
    assert!(
        holding.len() >= 4,
        "the marker is stored before: {holding:?}"
    );
    if backend == Backend::Sqlite {
        assert!(sqlite_file_holds(&t, marker), "in the SQLite file before");
    }
    let conversations_before = t.count("conversations").await;
    let messages_before = t.count("messages").await;

    // Erasure: admins only.
    let denied = post(
        &t,
        &format!("/api/v1/customers/{customer}/erase"),
        &t.agent,
        json!({}),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(t.count("customer_identities").await, 2, "nothing erased");
    let erased = t
        .call(
            Method::POST,
            &format!("/api/v1/customers/{customer}/erase"),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.text);
    assert_eq!(erased.body["name"], Value::Null);
    assert_eq!(erased.body["identities"], json!([]));
    assert!(erased.body["erased_at"].is_string());

    // No words left: in no table, not in the search index, not in the blob store.
    for needle in [
        marker,
        "Maryam",
        "maryam@example.com",
        "989123456789",
        "0912 345",
    ] {
        let holding = tables_holding(&t, needle, backend).await;
        assert!(holding.is_empty(), "{needle:?} is still in {holding:?}");
    }
    let found = t.get(&format!("/api/v1/search?q={marker}")).await;
    assert_eq!(found.body["items"], json!([]), "{}", found.text);
    assert_eq!(blob_files(), 0, "the photo's bytes are deleted");
    if backend == Backend::Sqlite {
        assert!(
            !sqlite_file_holds(&t, marker),
            "nothing in the SQLite file's pages or its log"
        );
    }
    // The facts stay for the reports: conversations, messages, the order's amount.
    assert_eq!(t.count("conversations").await, conversations_before);
    assert_eq!(t.count("messages").await, messages_before);
    let order = t
        .get(&format!("/api/v1/orders/{}", placed.body["id"]))
        .await;
    assert_eq!(order.body["total"], 1_000_000);
    assert_eq!(order.body["shipping_address"], Value::Null);
    let mut conn = t.db.store.conn().await.unwrap();
    let recorded: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM events WHERE customer_id = $1 AND kind IN ('customer_exported', 'customer_erased') ORDER BY id",
    )
    .bind(customer)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    assert_eq!(recorded, ["customer_exported", "customer_erased"]);
    // An erased customer cannot be changed or exported again.
    let again = t
        .call(
            Method::GET,
            &format!("/api/v1/customers/{customer}/export"),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(again.code(), "merge_refused", "{}", again.text);
    t.finish().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

async fn orders_are_linked_to_conversations_and_requests_move_along(backend: Backend) {
    let t = TestApp::new(backend).await;
    let conversation = t.open_conversation("ravi@example.in").await;
    let mine = post(
        &t,
        "/api/v1/orders",
        &t.agent,
        order(
            "2001",
            &json!({"email": "ravi@example.in"}),
            "INR",
            149_900,
            "2026-10-20T10:00:00Z",
        ),
    )
    .await;
    let mine = mine.body["id"].as_i64().unwrap();
    let theirs = post(
        &t,
        "/api/v1/orders",
        &t.agent,
        order(
            "2002",
            &json!({"email": "priya@example.in"}),
            "INR",
            99_900,
            "2026-10-21T10:00:00Z",
        ),
    )
    .await;
    let theirs = theirs.body["id"].as_i64().unwrap();

    let path = format!("/api/v1/conversations/{conversation}/orders");
    let linked = post(&t, &path, &t.agent, json!({"order_id": mine})).await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.text);
    assert_eq!(linked.body["items"][0]["number"], "#2001");
    let twice = post(&t, &path, &t.agent, json!({"order_id": mine})).await;
    assert_eq!(
        twice.body["items"].as_array().unwrap().len(),
        1,
        "linked once"
    );
    let other = post(&t, &path, &t.agent, json!({"order_id": theirs})).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.code(), "order_of_another_customer");
    let missing = post(&t, &path, &t.agent, json!({"order_id": 999_999})).await;
    assert_eq!(missing.code(), "order_not_found");

    // A return of more scarves than were bought is refused and stores nothing.
    let too_many = post(
        &t,
        "/api/v1/order-requests",
        &t.agent,
        json!({"order_id": mine, "conversation_id": conversation, "kind": "return",
               "reason": "Too small", "items": [{"sku": "SCARF-RED", "title": "شال ابریشمی", "quantity": 3}]}),
    )
    .await;
    assert_eq!(
        too_many.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        too_many.text
    );
    assert_eq!(too_many.code(), "invalid_value");
    assert_eq!(t.count("order_requests").await, 0);
    let created = post(
        &t,
        "/api/v1/order-requests",
        &t.agent,
        json!({"order_id": mine, "conversation_id": conversation, "kind": "return",
               "reason": "Too small", "items": [{"sku": "SCARF-RED", "title": "شال ابریشمی", "quantity": 1}]}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["status"], "requested");
    let request = created.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/order-requests/{request}");
    let move_to = |status: &str| {
        t.call(
            Method::PATCH,
            &path,
            &t.agent,
            Some(json!({ "status": status })),
            None,
        )
    };
    let skipped = move_to("received").await;
    assert_eq!(skipped.status, StatusCode::CONFLICT, "{}", skipped.text);
    assert_eq!(skipped.code(), "invalid_status_transition");
    for status in ["approved", "received", "completed"] {
        let moved = move_to(status).await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
        assert_eq!(moved.body["status"], status);
    }
    let listed = t
        .get(&format!(
            "/api/v1/customers/{}/order-requests",
            created.body["customer_id"]
        ))
        .await;
    assert_eq!(listed.body["items"][0]["status"], "completed");
    let events = t
        .get(&format!("/api/v1/conversations/{conversation}/events"))
        .await;
    let kinds: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["change"]["type"].as_str())
        .collect();
    assert!(kinds.contains(&"order_linked"), "{kinds:?}");
    assert!(kinds.contains(&"order_request_recorded"), "{kinds:?}");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "order_request_changed")
            .count(),
        3
    );

    // The catalogue: created, then updated by SKU; a price needs its currency.
    let product = post(
        &t,
        "/api/v1/products",
        &t.agent,
        json!({"sku": "SCARF-RED", "title": "Silk scarf", "currency": "INR", "price": 74_950}),
    )
    .await;
    assert_eq!(product.status, StatusCode::OK, "{}", product.text);
    let updated = post(
        &t,
        "/api/v1/products",
        &t.agent,
        json!({"sku": "SCARF-RED", "title": "Silk scarf, red"}),
    )
    .await;
    assert_eq!(updated.body["title"], "Silk scarf, red");
    assert_eq!(updated.body["price"], Value::Null);
    let half = post(
        &t,
        "/api/v1/products",
        &t.agent,
        json!({"sku": "X", "title": "X", "price": 100}),
    )
    .await;
    assert_eq!(half.code(), "invalid_value");
    let all = t.get("/api/v1/products").await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
    t.finish().await;
}

async fn segments_count_list_export_and_filter_the_inbox(backend: Backend) {
    let t = TestApp::new(backend).await;
    // t0 is the test clock's now; orders are placed relative to it.
    let days_ago = |d: i64| (t0() - chrono::Duration::days(d)).to_rfc3339();
    let big = |email: &str| json!({"email": email});
    for (id, email, total, ago) in [
        ("1", "big.recent@example.com", 600_000_000, 10),
        ("2", "big.old@example.com", 600_000_000, 200),
        ("3", "small.recent@example.com", 100_000_000, 10),
        ("4", "loyal@example.com", 50_000_000, 300),
        ("5", "loyal@example.com", 50_000_000, 200),
    ] {
        let placed = post(
            &t,
            "/api/v1/orders",
            &t.agent,
            order(id, &big(email), "IRR", total, &days_ago(ago)),
        )
        .await;
        assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    }
    let marathi = t
        .post_conversation(
            json!({"customer": {"email": "asha@example.in", "language": "mr-IN"},
                                 "message": {"text": "नमस्कार"}}),
        )
        .await;
    let big_recent_chat = t.open_conversation("big.recent@example.com").await;
    t.open_conversation("small.recent@example.com").await;

    let spent = json!({"all": [{"type": "spent_more_than", "currency": "irr",
                                "amount": 500_000_000, "days": 90}]});
    let count = post(
        &t,
        "/api/v1/segments/count",
        &t.agent,
        json!({"rules": spent}),
    )
    .await;
    assert_eq!(count.body["count"], 1, "{}", count.text);
    let created = post(
        &t,
        "/api/v1/segments",
        &t.agent,
        json!({"name": "Big spenders, 90 days", "rules": spent}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(
        created.body["rules"]["all"][0]["currency"], "IRR",
        "normalised"
    );
    let big_spenders = created.body["id"].as_i64().unwrap();
    let lapsed = post(
        &t,
        "/api/v1/segments",
        &t.agent,
        json!({"name": "Lapsed regulars", "rules": {"all": [
            {"type": "orders_at_least", "count": 2}, {"type": "no_order_within", "days": 120}]}}),
    )
    .await;
    assert_eq!(lapsed.body["count"], 1, "{}", lapsed.text);
    let members = t
        .get(&format!("/api/v1/segments/{}/customers", lapsed.body["id"]))
        .await;
    assert_eq!(
        members.body["items"][0]["emails"],
        json!(["loyal@example.com"])
    );
    let marathi_segment = post(
        &t,
        "/api/v1/segments",
        &t.agent,
        json!({"name": "Marathi", "rules": {"all": [{"type": "language", "language": "mr"}]}}),
    )
    .await;
    assert_eq!(marathi_segment.body["count"], 1, "mr takes mr-IN");

    // Bad rules and a taken name are refused with precise codes.
    let bad = post(
        &t,
        "/api/v1/segments",
        &t.agent,
        json!({"name": "Bad", "rules": {"all": [{"type": "no_order_within", "days": 0}]}}),
    )
    .await;
    assert_eq!(bad.code(), "invalid_value", "{}", bad.text);
    let unknown = post(
        &t,
        "/api/v1/segments",
        &t.agent,
        json!({"name": "Bad", "rules": {"all": [{"type": "owns_a_yacht"}]}}),
    )
    .await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.text
    );
    let taken = post(
        &t,
        "/api/v1/segments",
        &t.agent,
        json!({"name": "Marathi", "rules": {"all": [{"type": "tag", "tag": "vip"}]}}),
    )
    .await;
    assert_eq!(taken.code(), "already_exists");

    // The CSV export and the inbox filter read the same live members.
    let path = format!("/api/v1/segments/{big_spenders}/export.csv");
    let refused = t.call(Method::GET, &path, &t.agent, None, None).await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "contacts in bulk: supervisors and admins"
    );
    let csv = t.call(Method::GET, &path, &t.admin, None, None).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.text
            .starts_with("id,name,emails,phones,language,created_at\n")
    );
    assert_eq!(csv.text.lines().count(), 2, "{}", csv.text);
    assert!(csv.text.contains("big.recent@example.com"));
    let inbox = t
        .get(&format!("/api/v1/conversations?segment={big_spenders}"))
        .await;
    let ids: Vec<i64> = inbox.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [big_recent_chat], "{}", inbox.text);
    assert_eq!(
        t.get("/api/v1/conversations?segment=999999").await.code(),
        "segment_not_found"
    );

    // Time passes: the big order leaves the 90-day window, and the count follows.
    t.clock.advance(chrono::Duration::days(85));
    let now = t.get(&format!("/api/v1/segments/{big_spenders}")).await;
    assert_eq!(now.body["count"], 0, "{}", now.text);
    let _ = marathi;
    t.finish().await;
}
