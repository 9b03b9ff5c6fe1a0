//! HTTP tests against the real router, on SQLite and on PostgreSQL, each on a fresh database.
//! Only the clock is faked.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::Duration;
use serde_json::{Value, json};
use seva_app::{App, FixedClock};
use seva_domain::Role;
use seva_store::Backend;
use seva_store::testing::TestDb;

mod common;

use common::*;

on_both_backends!(
    creating_a_conversation_finds_or_creates_the_customer_by_email_or_phone,
    the_same_idempotency_key_yields_one_conversation,
    a_message_external_id_is_stored_once,
    malformed_requests_get_stable_4xx_codes_and_write_nothing,
    replies_notes_and_changes_are_recorded_as_events,
    a_customer_message_reopens_a_resolved_conversation_but_not_a_closed_one,
    conversations_page_through_with_a_cursor_and_filters,
    customers_are_created_looked_up_and_updated,
    only_admins_may_import_history_with_original_times,
    read_only_users_can_read_but_not_write,
    the_openapi_document_describes_every_endpoint,
    health_and_readiness_answer,
    agents_sign_in_and_out_with_csrf_protection,
    repeated_failed_sign_ins_slow_down_then_lock,
    the_first_admin_is_created_from_a_one_time_link,
    a_setup_link_dies_once_an_admin_exists,
    search_finds_persian_and_marathi_messages_with_highlights,
    pages_follow_the_browser_language_and_persian_is_right_to_left,
);

async fn creating_a_conversation_finds_or_creates_the_customer_by_email_or_phone(backend: Backend) {
    let t = TestApp::new(backend).await;
    let first = t
        .post_conversation(json!({"customer": {"email": "ali@example.com", "name": "Ali", "phone": "+98 912 345 6789"},
            "channel": "api", "subject": "Where is my order?", "message": {"text": "سفارشم کجاست؟"}}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.body["status"], "open");
    assert_eq!(first.body["subject"], "Where is my order?");
    let customer_id = first.body["customer_id"].as_i64().unwrap();

    let by_phone = t
        .post_conversation(
            json!({"customer": {"phone": "+989123456789"}, "message": {"text": "Any news?"}}),
        )
        .await;
    assert_eq!(by_phone.status, StatusCode::CREATED);
    assert_eq!(
        by_phone.body["customer_id"].as_i64(),
        Some(customer_id),
        "the phone finds the same customer"
    );
    let by_email = t
        .post_conversation(
            json!({"customer": {"email": "ALI@example.com"}, "message": {"text": "Hello?"}}),
        )
        .await;
    assert_eq!(
        by_email.body["customer_id"].as_i64(),
        Some(customer_id),
        "emails match case-insensitively"
    );

    let customer = t.get(&format!("/api/v1/customers/{customer_id}")).await;
    assert_eq!(customer.body["name"], "Ali");
    assert_eq!(customer.body["emails"], json!(["ali@example.com"]));
    assert_eq!(customer.body["phones"], json!(["+989123456789"]));
    let shown = t
        .get(&format!("/api/v1/conversations/{}", first.body["id"]))
        .await;
    assert_eq!(shown.body["messages"][0]["text"], "سفارشم کجاست؟");
    assert_eq!(shown.body["messages"][0]["kind"], "customer");
    assert_eq!(shown.body["messages"][0]["direction"], "inbound");
    t.finish().await;
}

async fn the_same_idempotency_key_yields_one_conversation(backend: Backend) {
    let t = TestApp::new(backend).await;
    let body = json!({"customer": {"email": "ali@example.com"}, "subject": "Refund", "message": {"text": "Please refund"}});
    let first = t
        .call(
            Method::POST,
            "/api/v1/conversations",
            &t.agent,
            Some(body.clone()),
            Some("req-1"),
        )
        .await;
    let second = t
        .call(
            Method::POST,
            "/api/v1/conversations",
            &t.agent,
            Some(body.clone()),
            Some("req-1"),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(first.body["id"], second.body["id"]);
    assert_eq!(t.count("conversations").await, 1);
    assert_eq!(t.count("messages").await, 1);

    let other =
        json!({"customer": {"email": "ali@example.com"}, "message": {"text": "Something else"}});
    let reused = t
        .call(
            Method::POST,
            "/api/v1/conversations",
            &t.agent,
            Some(other),
            Some("req-1"),
        )
        .await;
    assert_eq!(
        (reused.status, reused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );

    let id = first.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/conversations/{id}/messages");
    let reply = json!({"kind": "reply", "text": "Done!"});
    let a = t
        .call(
            Method::POST,
            &path,
            &t.agent,
            Some(reply.clone()),
            Some("reply-1"),
        )
        .await;
    let b = t
        .call(Method::POST, &path, &t.agent, Some(reply), Some("reply-1"))
        .await;
    assert_eq!((a.status, b.status), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a.body["id"], b.body["id"]);
    assert_eq!(t.count("messages").await, 2);
    t.finish().await;
}

async fn a_message_external_id_is_stored_once(backend: Backend) {
    let t = TestApp::new(backend).await;
    let body = json!({"customer": {"email": "ali@example.com"}, "message": {"text": "Hi", "external_id": "<m1@mail.example>"}});
    let first = t.post_conversation(body.clone()).await;
    let again = t.post_conversation(body).await;
    assert_eq!(
        (first.status, again.status),
        (StatusCode::CREATED, StatusCode::OK)
    );
    assert_eq!(first.body["id"], again.body["id"]);
    let id = first.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/conversations/{id}/messages");
    let follow_up = json!({"kind": "customer", "text": "More", "external_id": "<m2@mail.example>"});
    let a = t
        .call(Method::POST, &path, &t.agent, Some(follow_up.clone()), None)
        .await;
    let b = t
        .call(Method::POST, &path, &t.agent, Some(follow_up), None)
        .await;
    assert_eq!((a.status, b.status), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(t.count("messages").await, 2);
    let stranger = t
        .post_conversation(json!({"customer": {"email": "eve@example.com"}, "message": {"text": "Hi", "external_id": "<m1@mail.example>"}}))
        .await;
    assert_eq!(
        (stranger.status, stranger.code()),
        (StatusCode::CONFLICT, "external_id_taken"),
        "another customer's id is a collision, not a retry"
    );
    let other = t.open_conversation("sara@example.com").await;
    let elsewhere = t
        .call(
            Method::POST,
            &format!("/api/v1/conversations/{other}/messages"),
            &t.agent,
            Some(json!({"kind": "customer", "text": "More", "external_id": "<m2@mail.example>"})),
            None,
        )
        .await;
    assert_eq!(
        (elsewhere.status, elsewhere.code()),
        (StatusCode::CONFLICT, "external_id_taken")
    );
    assert_eq!(t.count("messages").await, 3);
    t.finish().await;
}

/// (method, path, who calls, raw body, expected code, what it shows)
type Case<'a> = (
    Method,
    String,
    Option<&'a str>,
    Option<String>,
    &'a str,
    &'a str,
);

async fn malformed_requests_get_stable_4xx_codes_and_write_nothing(backend: Backend) {
    let t = TestApp::new(backend).await;
    let id = t.open_conversation("ali@example.com").await;
    t.patch(id, json!({"status": "closed"})).await;
    let open = t.open_conversation("sara@example.com").await;
    let (conversations, messages, customers, events) = (
        t.count("conversations").await,
        t.count("messages").await,
        t.count("customers").await,
        t.count("events").await,
    );
    let long = "x".repeat(501);
    let huge = "x".repeat(2 * 1024 * 1024);
    let conv = "/api/v1/conversations";
    let cases: Vec<Case> = vec![
        // (method, path, token, raw body, expected code, what)
        (Method::POST, conv.into(), Some("agent"), Some("{\"customer\": ".into()), "malformed_json", "truncated JSON"),
        (Method::POST, conv.into(), Some("agent"), Some("[1, 2]".into()), "invalid_body", "an array instead of an object"),
        (Method::POST, conv.into(), Some("agent"), Some(json!({"customer": {"email": 5}, "message": {"text": "x"}}).to_string()), "invalid_body", "wrong type"),
        (Method::POST, conv.into(), Some("agent"), Some(json!({"customer": {"email": "a@b.co"}, "channel": "fax", "message": {"text": "x"}}).to_string()), "invalid_body", "unknown enum value"),
        (Method::POST, conv.into(), Some("agent"), Some(json!({"customer": {"email": "a@b.co"}, "mesage": {"text": "x"}}).to_string()), "invalid_body", "unknown field"),
        (Method::POST, conv.into(), Some("agent"), Some(json!({"customer": {"email": "not-an-email"}, "message": {"text": "x"}}).to_string()), "invalid_email", "bad email"),
        (Method::POST, conv.into(), Some("agent"), Some(json!({"customer": {"phone": "call me"}, "message": {"text": "x"}}).to_string()), "invalid_phone", "bad phone"),
        (Method::POST, conv.into(), Some("agent"), Some(json!({"customer": {"name": "Nobody"}, "message": {"text": "x"}}).to_string()), "customer_identity_required", "no identity"),
        (Method::POST, conv.into(), Some("agent"), Some(json!({"customer": {"email": "new@b.co"}, "subject": long, "message": {"text": "x"}}).to_string()), "field_too_long", "over-long subject"),
        (Method::POST, conv.into(), Some("agent"), Some(json!({"customer": {"email": "new@b.co"}, "message": {"text": "   "}}).to_string()), "field_required", "blank message"),
        (Method::POST, conv.into(), Some("agent"), Some(json!({"customer": {"email": "new@b.co"}, "tags": ["two words"], "message": {"text": "x"}}).to_string()), "invalid_tag", "bad tag"),
        (Method::POST, conv.into(), Some("agent"), Some(json!({"customer": {"email": "new@b.co"}, "team_id": 999, "message": {"text": "x"}}).to_string()), "team_not_found", "unknown team"),
        (Method::POST, conv.into(), Some("agent"), Some(json!({"customer": {"email": "new@b.co", "language": "klingon"}, "message": {"text": "x"}}).to_string()), "invalid_language", "bad language"),
        (Method::POST, conv.into(), Some("agent"), Some(format!("{{\"customer\": {{\"email\": \"a@b.co\"}}, \"message\": {{\"text\": \"{huge}\"}}}}")), "payload_too_large", "2 MB body"),
        (Method::POST, conv.into(), Some("agent"), None, "unsupported_media_type", "no JSON content type"),
        (Method::POST, conv.into(), Some("agent"), Some(json!({"customer": {"email": "nul@b.co"}, "message": {"text": "a\u{0}b"}}).to_string()), "invalid_value", "NUL in text"),
        (Method::POST, conv.into(), Some("agent"), Some(json!({"customer": {"email": "nul@b.co", "name": "A\u{0}"}, "message": {"text": "x"}}).to_string()), "invalid_value", "NUL in name"),
        (Method::GET, "/api/v1/conversations?tag=%00".into(), Some("agent"), None, "invalid_query", "NUL in tag filter"),
        (Method::POST, conv.into(), None, Some(json!({}).to_string()), "unauthorized", "no token"),
        (Method::POST, conv.into(), Some("bogus"), Some(json!({}).to_string()), "unauthorized", "unknown token"),
        (Method::GET, "/api/v1/conversations/999999".into(), Some("agent"), None, "conversation_not_found", "unknown id"),
        (Method::GET, "/api/v1/conversations/abc".into(), Some("agent"), None, "invalid_id", "non-numeric id"),
        (Method::GET, "/api/v1/customers/424242".into(), Some("agent"), None, "customer_not_found", "unknown customer"),
        (Method::GET, "/api/v1/conversations?cursor=garbage!".into(), Some("agent"), None, "invalid_cursor", "bad cursor"),
        (Method::GET, "/api/v1/conversations?limit=0".into(), Some("agent"), None, "invalid_limit", "limit 0"),
        (Method::GET, "/api/v1/conversations?limit=ten".into(), Some("agent"), None, "invalid_query", "limit not a number"),
        (Method::GET, "/api/v1/conversations?status=reopened".into(), Some("agent"), None, "invalid_query", "unknown status filter"),
        (Method::GET, "/api/v1/conversations?colour=red".into(), Some("agent"), None, "invalid_query", "unknown parameter"),
        (Method::GET, "/api/v1/nothing-here".into(), Some("agent"), None, "not_found", "unknown route"),
        (Method::DELETE, conv.into(), Some("agent"), None, "method_not_allowed", "wrong method"),
        (Method::PATCH, format!("{conv}/{id}"), Some("agent"), Some(json!({"status": "open"}).to_string()), "invalid_status_transition", "reopening a closed conversation"),
        (Method::PATCH, format!("{conv}/{open}"), Some("agent"), Some(json!({"assignee_id": 999}).to_string()), "assignee_not_found", "unknown assignee"),
        (Method::PATCH, format!("{conv}/{open}"), Some("agent"), Some(json!({"priority": "extreme"}).to_string()), "invalid_body", "unknown priority"),
        (Method::POST, format!("{conv}/{id}/messages"), Some("agent"), Some(json!({"kind": "customer", "text": "again"}).to_string()), "conversation_closed", "writing to a closed conversation"),
        (Method::POST, format!("{conv}/{open}/messages"), Some("agent"), Some(json!({"kind": "shout", "text": "x"}).to_string()), "invalid_body", "unknown message kind"),
        (Method::POST, format!("{conv}/999999/messages"), Some("agent"), Some(json!({"kind": "reply", "text": "x"}).to_string()), "conversation_not_found", "message to unknown conversation"),
        (Method::POST, "/api/v1/customers".into(), Some("agent"), Some(json!({"emails": ["ali@example.com"]}).to_string()), "identity_taken", "email of another customer"),
        (Method::POST, "/api/v1/customers".into(), Some("agent"), Some(json!({"attributes": {"bad key": 1}}).to_string()), "invalid_value", "bad attribute name"),
        (Method::GET, "/api/v1/customers?email=a@b.co&phone=%2B989123456789".into(), Some("agent"), None, "invalid_query", "two lookups at once"),
    ];
    for (method, path, who, body, expected, what) in cases {
        let token = match who {
            Some("agent") => t.agent.clone(),
            Some(other) => other.to_owned(),
            None => String::new(),
        };
        let mut request = Request::builder().method(method).uri(&path);
        if who.is_some() {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let content_json = body.is_some() && what != "no JSON content type";
        if content_json {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(body.map_or_else(Body::empty, Body::from))
            .unwrap();
        let reply = t.send(request).await;
        assert!(
            reply.status.is_client_error(),
            "{what}: expected 4xx, got {} {}",
            reply.status,
            reply.text
        );
        assert_eq!(reply.code(), expected, "{what}: {}", reply.text);
        assert!(
            !reply.body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .is_empty(),
            "{what}: a message explains the error"
        );
    }
    assert_eq!(
        (
            t.count("conversations").await,
            t.count("messages").await,
            t.count("customers").await,
            t.count("events").await
        ),
        (conversations, messages, customers, events),
        "refused requests wrote nothing"
    );
    t.finish().await;
}

async fn replies_notes_and_changes_are_recorded_as_events(backend: Backend) {
    let t = TestApp::new(backend).await;
    let id = t.open_conversation("ali@example.com").await;
    let me = t.get("/api/v1/me").await.body["id"].as_i64().unwrap();
    t.clock.advance(Duration::minutes(5));
    assert_eq!(
        t.message(id, "note", "Checking the warehouse").await.status,
        StatusCode::CREATED
    );
    let reply = t.message(id, "reply", "It ships today").await;
    assert_eq!(
        (
            reply.body["kind"].as_str(),
            reply.body["direction"].as_str()
        ),
        (Some("reply"), Some("outbound"))
    );
    assert_eq!(reply.body["author_user_id"].as_i64(), Some(me));
    let patched = t.patch(id, json!({"status": "resolved", "assignee_id": me, "priority": "high", "tags": ["Shipping", "vip"]})).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["tags"], json!(["shipping", "vip"]));
    assert_eq!(patched.body["assignee_id"].as_i64(), Some(me));
    let unassigned = t.patch(id, json!({"assignee_id": null})).await;
    assert_eq!(unassigned.body["assignee_id"], Value::Null);

    let events = t.get(&format!("/api/v1/conversations/{id}/events")).await;
    let kinds: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["change"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "conversation_created",
            "message_added",
            "message_added",
            "message_added",
            "status_changed",
            "priority_changed",
            "assigned",
            "tags_changed",
            "assigned"
        ]
    );
    let status = &events.body["items"][4];
    assert_eq!(
        (
            status["change"]["from"].as_str(),
            status["change"]["to"].as_str()
        ),
        (Some("open"), Some("resolved"))
    );
    assert_eq!(status["actor"], json!({"kind": "user", "id": me}));
    assert_eq!(status["at"].as_str(), Some("2026-11-18T11:11:40Z"));

    let (brand, team) = {
        let mut conn = t.db.store.conn().await.unwrap();
        let brand = seva_store::staff::insert_brand(&mut conn, "Kahroba Home", t0())
            .await
            .unwrap();
        let team = seva_store::staff::insert_team(&mut conn, "Returns", t0())
            .await
            .unwrap();
        (brand.0, team.0)
    };
    let moved = t
        .patch(id, json!({"brand_id": brand, "team_id": team}))
        .await;
    assert_eq!(
        (
            moved.body["brand_id"].as_i64(),
            moved.body["team_id"].as_i64()
        ),
        (Some(brand), Some(team))
    );
    let unchanged = t.patch(id, json!({"brand_id": brand})).await;
    assert_eq!(unchanged.status, StatusCode::OK);
    let events = t.get(&format!("/api/v1/conversations/{id}/events")).await;
    let tail: Vec<Value> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .skip(9)
        .map(|e| e["change"].clone())
        .collect();
    assert_eq!(
        tail,
        [
            json!({"type": "team_changed", "from": null, "to": team}),
            json!({"type": "brand_changed", "from": null, "to": brand})
        ],
        "every change is an event; a patch that changes nothing records none"
    );
    t.finish().await;
}

async fn a_customer_message_reopens_a_resolved_conversation_but_not_a_closed_one(backend: Backend) {
    let t = TestApp::new(backend).await;
    let id = t.open_conversation("ali@example.com").await;
    t.patch(id, json!({"status": "resolved"})).await;
    assert_eq!(
        t.message(id, "customer", "It broke again").await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        t.get(&format!("/api/v1/conversations/{id}")).await.body["status"],
        "open"
    );
    let events = t.get(&format!("/api/v1/conversations/{id}/events")).await;
    let last = events.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last["change"],
        json!({"type": "status_changed", "from": "resolved", "to": "open"})
    );
    assert_eq!(last["actor"]["kind"], "customer");

    t.patch(id, json!({"status": "closed"})).await;
    let refused = t.message(id, "customer", "Hello?").await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "conversation_closed")
    );
    t.finish().await;
}

async fn conversations_page_through_with_a_cursor_and_filters(backend: Backend) {
    let t = TestApp::new(backend).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        t.clock.advance(Duration::minutes(1));
        let channel = if i % 2 == 0 { "email" } else { "chat" };
        let reply = t
            .post_conversation(json!({"customer": {"email": format!("c{i}@example.com")}, "channel": channel,
                "tags": if i == 3 { json!(["vip"]) } else { json!([]) }, "message": {"text": "Hi"}}))
            .await;
        ids.push(reply.body["id"].as_i64().unwrap());
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/conversations?limit=3".to_owned();
    loop {
        let page = t.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_i64().unwrap()),
        );
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/conversations?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
    assert_eq!(
        seen, newest_first,
        "every conversation once, newest activity first"
    );

    let chats = t.get("/api/v1/conversations?channel=chat").await;
    assert_eq!(chats.body["items"].as_array().unwrap().len(), 3);
    let vip = t.get("/api/v1/conversations?tag=VIP").await;
    assert_eq!(vip.body["items"][0]["id"].as_i64(), Some(ids[3]));
    t.patch(
        ids[0],
        json!({"assignee_id": t.get("/api/v1/me").await.body["id"]}),
    )
    .await;
    t.patch(ids[1], json!({"status": "pending"})).await;
    let mine = t.get("/api/v1/conversations?assignee=me").await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);
    let unassigned_open = t
        .get("/api/v1/conversations?assignee=none&status=open")
        .await;
    assert_eq!(unassigned_open.body["items"].as_array().unwrap().len(), 5);
    let customer = t
        .get(&format!("/api/v1/conversations/{}", ids[2]))
        .await
        .body["customer_id"]
        .clone();
    let theirs = t
        .get(&format!("/api/v1/conversations?customer={customer}"))
        .await;
    assert_eq!(theirs.body["items"][0]["id"].as_i64(), Some(ids[2]));
    t.finish().await;
}

async fn customers_are_created_looked_up_and_updated(backend: Backend) {
    let t = TestApp::new(backend).await;
    let created = t
        .call(Method::POST, "/api/v1/customers", &t.agent,
            Some(json!({"name": "प्राजक्ता पाटील", "language": "mr-in", "emails": ["Prajakta@Example.com"], "phones": ["+91 98765 43210"],
                "external_ids": ["shopify:123"], "attributes": {"city": "पुणे", "vip": true}})), None)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["language"], "mr-IN");
    assert_eq!(created.body["external_ids"], json!(["shopify:123"]));
    let id = created.body["id"].as_i64().unwrap();

    let found = t.get("/api/v1/customers?email=prajakta@example.com").await;
    assert_eq!(found.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(found.body["items"][0]["id"].as_i64(), Some(id));
    let by_phone = t.get("/api/v1/customers?phone=%2B919876543210").await;
    assert_eq!(by_phone.body["items"][0]["id"].as_i64(), Some(id));
    let none = t.get("/api/v1/customers?email=nobody@example.com").await;
    assert_eq!(none.body["items"], json!([]));

    let patched = t
        .call(Method::PATCH, &format!("/api/v1/customers/{id}"), &t.agent,
            Some(json!({"attributes": {"vip": null, "shoe_size": 38}, "add_phones": ["+91 91234 56789"], "name": "Prajakta Patil"})), None)
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(
        patched.body["attributes"],
        json!({"city": "पुणे", "shoe_size": 38})
    );
    assert_eq!(
        patched.body["phones"],
        json!(["+919876543210", "+919123456789"])
    );
    assert_eq!(patched.body["name"], "Prajakta Patil");

    let other = t
        .call(
            Method::POST,
            "/api/v1/customers",
            &t.agent,
            Some(json!({"name": "Other"})),
            None,
        )
        .await;
    let taken = t
        .call(
            Method::PATCH,
            &format!("/api/v1/customers/{}", other.body["id"]),
            &t.agent,
            Some(json!({"add_emails": ["prajakta@example.com"]})),
            None,
        )
        .await;
    assert_eq!(
        (taken.status, taken.code()),
        (StatusCode::CONFLICT, "identity_taken")
    );
    t.finish().await;
}

async fn only_admins_may_import_history_with_original_times(backend: Backend) {
    let t = TestApp::new(backend).await;
    let body = json!({"customer": {"email": "old@example.com"}, "message": {"text": "From 2024"}, "created_at": "2024-03-01T09:00:00Z"});
    let refused = t
        .call(
            Method::POST,
            "/api/v1/conversations",
            &t.agent,
            Some(body.clone()),
            None,
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::FORBIDDEN, "import_requires_admin")
    );
    let imported = t
        .call(
            Method::POST,
            "/api/v1/conversations",
            &t.admin,
            Some(body),
            None,
        )
        .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
    assert_eq!(imported.body["created_at"], "2024-03-01T09:00:00Z");
    let id = imported.body["id"].as_i64().unwrap();
    let resolved = t
        .call(
            Method::PATCH,
            &format!("/api/v1/conversations/{id}"),
            &t.admin,
            Some(json!({"status": "resolved", "at": "2024-03-02T10:00:00Z"})),
            None,
        )
        .await;
    assert_eq!(resolved.status, StatusCode::OK);
    let events = t.get(&format!("/api/v1/conversations/{id}/events")).await;
    let last = events.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["change"]["type"].as_str(), last["at"].as_str()),
        (Some("status_changed"), Some("2024-03-02T10:00:00Z"))
    );
    let agent_patch = t
        .patch(id, json!({"status": "open", "at": "2024-03-03T10:00:00Z"}))
        .await;
    assert_eq!(agent_patch.code(), "import_requires_admin");
    t.finish().await;
}

async fn read_only_users_can_read_but_not_write(backend: Backend) {
    let t = TestApp::new(backend).await;
    let id = t.open_conversation("ali@example.com").await;
    let read = t
        .call(
            Method::GET,
            &format!("/api/v1/conversations/{id}"),
            &t.readonly,
            None,
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/conversations/{id}"),
            json!({"status": "resolved"}),
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{id}/messages"),
            json!({"kind": "note", "text": "x"}),
        ),
        (
            Method::POST,
            "/api/v1/conversations".to_owned(),
            json!({"customer": {"email": "x@example.com"}, "message": {"text": "x"}}),
        ),
        (
            Method::POST,
            "/api/v1/customers".to_owned(),
            json!({"name": "X"}),
        ),
    ] {
        let reply = t.call(method, &path, &t.readonly, Some(body), None).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{path}"
        );
    }
    assert_eq!(
        t.get(&format!("/api/v1/conversations/{id}")).await.body["status"],
        "open"
    );
    t.finish().await;
}

async fn the_openapi_document_describes_every_endpoint(backend: Backend) {
    let t = TestApp::new(backend).await;
    let doc = t.get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/conversations", "post"),
        ("/api/v1/conversations", "get"),
        ("/api/v1/conversations/{id}", "get"),
        ("/api/v1/conversations/{id}", "patch"),
        ("/api/v1/conversations/{id}/messages", "post"),
        ("/api/v1/conversations/{id}/events", "get"),
        ("/api/v1/customers", "get"),
        ("/api/v1/customers", "post"),
        ("/api/v1/customers/{id}", "get"),
        ("/api/v1/customers/{id}", "patch"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is documented"
        );
    }
    let codes = doc.body["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    assert!(
        codes.contains(&json!("conversation_not_found"))
            && codes.contains(&json!("idempotency_key_reused"))
    );
    assert_eq!(
        doc.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    t.finish().await;
}

async fn health_and_readiness_answer(backend: Backend) {
    let t = TestApp::new(backend).await;
    let health = t.page(Method::GET, "/healthz", None, "", None).await;
    let ready = t.page(Method::GET, "/readyz", None, "", None).await;
    assert_eq!(
        (health.status, ready.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert!(health.headers.contains_key("x-request-id"));
    t.db.store.close().await;
    let down = t.page(Method::GET, "/readyz", None, "", None).await;
    assert_eq!(
        (down.status, down.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
    );
    t.finish().await;
}

async fn sign_in_form(t: &TestApp, lang: Option<&str>) -> (String, String) {
    let form = t.page(Method::GET, "/login", None, "", lang).await;
    assert_eq!(form.status, StatusCode::OK);
    (cookies_of(&form), hidden_field(&form.text, "csrf"))
}

async fn agents_sign_in_and_out_with_csrf_protection(backend: Backend) {
    let t = TestApp::new(backend).await;
    let anonymous = t.page(Method::GET, "/inbox", None, "", None).await;
    assert_eq!(
        (
            anonymous.status,
            anonymous.headers[header::LOCATION].to_str().unwrap()
        ),
        (StatusCode::SEE_OTHER, "/login")
    );

    let (cookies, csrf) = sign_in_form(&t, None).await;
    assert!(
        t.page(Method::GET, "/login", None, "", None).await.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("HttpOnly")
    );
    let forged = t
        .page(
            Method::POST,
            "/login",
            Some("email=sara%40shop.example&password=correct+horse+battery&csrf=forged"),
            &cookies,
            None,
        )
        .await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "a form without the right CSRF token is refused"
    );
    let wrong = t
        .page(
            Method::POST,
            "/login",
            Some(&format!(
                "email=sara%40shop.example&password=wrong&csrf={csrf}"
            )),
            &cookies,
            None,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text.contains("The email or password is wrong."));
    let (cookies, csrf) = sign_in_form(&t, None).await;
    let ok = t
        .page(
            Method::POST,
            "/login",
            Some(&format!(
                "email=Sara%40shop.example&password=correct+horse+battery&csrf={csrf}"
            )),
            &cookies,
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let set_cookie = ok
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        set_cookie.contains("seva_session=")
            && set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    let session = cookies_of(&ok);

    let home = t.page(Method::GET, "/inbox", None, &session, None).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.text.contains("Sara · Agent") && home.text.contains("Sign out"),
        "{}",
        home.text
    );
    let logout_csrf = hidden_field(&home.text, "csrf");
    let forged_logout = t
        .page(Method::POST, "/logout", Some("csrf=forged"), &session, None)
        .await;
    assert_eq!(forged_logout.status, StatusCode::FORBIDDEN);
    let out = t
        .page(
            Method::POST,
            "/logout",
            Some(&format!("csrf={logout_csrf}")),
            &session,
            None,
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = t.page(Method::GET, "/inbox", None, &session, None).await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "the old session cookie no longer works"
    );
    t.finish().await;
}

async fn repeated_failed_sign_ins_slow_down_then_lock(backend: Backend) {
    let t = TestApp::new(backend).await;
    let attempt = |password: &'static str| {
        let t = &t;
        async move {
            let (cookies, csrf) = sign_in_form(t, None).await;
            t.page(
                Method::POST,
                "/login",
                Some(&format!(
                    "email=sara%40shop.example&password={password}&csrf={csrf}"
                )),
                &cookies,
                None,
            )
            .await
        }
    };
    for _ in 0..3 {
        assert_eq!(attempt("wrong").await.status, StatusCode::UNAUTHORIZED);
    }
    let slowed = attempt("correct+horse+battery").await;
    assert_eq!(
        slowed.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits after three failures"
    );
    // Fluent isolates placeables with U+2068/U+2069 so numbers stay right in Persian text.
    let plain: String = slowed
        .text
        .chars()
        .filter(|c| !matches!(c, '\u{2068}' | '\u{2069}'))
        .collect();
    assert!(plain.contains("Try again in 1 seconds"), "{plain}");
    for _ in 0..7 {
        t.clock.advance(Duration::seconds(61));
        assert_eq!(attempt("wrong").await.status, StatusCode::UNAUTHORIZED);
    }
    t.clock.advance(Duration::minutes(5));
    assert_eq!(
        attempt("correct+horse+battery").await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "locked after ten failures"
    );
    t.clock.advance(Duration::minutes(11));
    assert_eq!(
        attempt("correct+horse+battery").await.status,
        StatusCode::SEE_OTHER,
        "the lock runs out"
    );
    t.finish().await;
}

async fn the_first_admin_is_created_from_a_one_time_link(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = App::new(db.store.clone(), Arc::new(FixedClock::new(t0())));
    let state = seva_web::AppState::new(
        app.clone(),
        seva_web::WebConfig {
            public_url: "http://seva.test".into(),
        },
    );
    let t = TestApp {
        router: seva_web::router(state),
        app: app.clone(),
        clock: Arc::new(FixedClock::new(t0())),
        db,
        admin: String::new(),
        agent: String::new(),
        readonly: String::new(),
        blobs: tempfile::tempdir().unwrap(),
    };
    let token = t
        .app
        .first_admin_setup_token()
        .await
        .unwrap()
        .expect("no admin yet, so a link");
    let bogus = t
        .page(Method::GET, "/setup?token=bogus", None, "", None)
        .await;
    assert_eq!(bogus.status, StatusCode::NOT_FOUND);
    let form = t
        .page(
            Method::GET,
            &format!("/setup?token={token}"),
            None,
            "",
            None,
        )
        .await;
    assert_eq!(form.status, StatusCode::OK);
    let (cookies, csrf) = (cookies_of(&form), hidden_field(&form.text, "csrf"));
    let mismatch = format!(
        "token={token}&name=Owner&email=owner%40shop.example&password=long+enough+pw&password_confirm=other+password&csrf={csrf}"
    );
    let refused = t
        .page(Method::POST, "/setup", Some(&mismatch), &cookies, None)
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let csrf = hidden_field(&refused.text, "csrf");
    let cookies = cookies_of(&refused);
    let body = format!(
        "token={token}&name=Owner&email=owner%40shop.example&password=long+enough+pw&password_confirm=long+enough+pw&csrf={csrf}"
    );
    let done = t
        .page(Method::POST, "/setup", Some(&body), &cookies, None)
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let home = t
        .page(Method::GET, "/inbox", None, &cookies_of(&done), None)
        .await;
    assert!(home.text.contains("Owner"), "the new admin is signed in");
    assert_eq!(
        t.app
            .user_by_email("owner@shop.example")
            .await
            .unwrap()
            .role,
        Role::Admin
    );
    let again = t
        .page(Method::POST, "/setup", Some(&body), &cookies, None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "the link works once");
    assert!(
        t.app.first_admin_setup_token().await.unwrap().is_none(),
        "no link once an admin exists"
    );
    t.finish().await;
}

async fn pages_follow_the_browser_language_and_persian_is_right_to_left(backend: Backend) {
    let t = TestApp::new(backend).await;
    let fa = t
        .page(Method::GET, "/login", None, "", Some("fa-IR,fa;q=0.9"))
        .await;
    assert!(fa.text.contains("dir=\"rtl\"") && fa.text.contains("lang=\"fa\""));
    assert!(fa.text.contains("ورود به سوا"));
    let mr = t.page(Method::GET, "/login", None, "", Some("mr")).await;
    assert!(mr.text.contains("dir=\"ltr\"") && mr.text.contains("सेवामध्ये साइन इन करा"));
    let hi = t.page(Method::GET, "/login", None, "", Some("hi-IN")).await;
    assert!(hi.text.contains("सेवा में साइन इन करें"));
    t.finish().await;
}

async fn a_setup_link_dies_once_an_admin_exists(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = App::new(db.store.clone(), Arc::new(FixedClock::new(t0())));
    let token = app
        .first_admin_setup_token()
        .await
        .unwrap()
        .expect("no admin yet, so a link");
    assert!(app.setup_token_valid(&token).await.unwrap());
    app.create_user(
        "cli@shop.example",
        "From the CLI",
        Role::Admin,
        Some("correct horse battery"),
        None,
    )
    .await
    .unwrap();
    let late = app
        .complete_setup(&token, "late@shop.example", "Late", "long enough pw")
        .await;
    assert!(
        matches!(late, Err(seva_app::AppError::SetupLinkInvalid)),
        "{late:?}"
    );
    assert!(
        app.user_by_email("late@shop.example").await.is_err(),
        "no second admin was made"
    );
    db.finish().await;
}

async fn search_finds_persian_and_marathi_messages_with_highlights(backend: Backend) {
    let t = TestApp::new(backend).await;
    let persian = t
        .post_conversation(
            json!({"customer": {"email": "maryam@example.com"}, "subject": "سفارش",
            "message": {"text": "سلام، بسته\u{200C}ام هنوز نرسیده است"}}),
        )
        .await;
    let marathi = t
        .post_conversation(json!({"customer": {"email": "sneha@example.com"}, "message": {"text": "माझी ऑर्डर अजून आली नाही"}}))
        .await;
    let id = persian.body["id"].as_i64().unwrap();
    t.message(id, "reply", "بسته شما امروز ارسال شد").await;

    let found = t
        .get("/api/v1/search?q=%D8%A8%D8%B3%D8%AA%D9%87%D8%A7%D9%85")
        .await; // بستهام, typed without ZWNJ
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert_eq!(
        found.body["items"][0]["conversation"]["id"].as_i64(),
        Some(id)
    );
    assert!(
        found.body["items"][0]["snippet_html"]
            .as_str()
            .unwrap()
            .contains("<mark>"),
        "{}",
        found.text
    );
    let marathi_hit = t
        .get("/api/v1/search?q=%E0%A4%91%E0%A4%B0%E0%A5%8D%E0%A4%A1%E0%A4%B0")
        .await; // ऑर्डर
    assert_eq!(marathi_hit.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        marathi_hit.body["items"][0]["conversation"]["id"],
        marathi.body["id"]
    );

    let missing = t.get("/api/v1/search").await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    let long = t
        .get(&format!("/api/v1/search?q={}", "a".repeat(201)))
        .await;
    assert_eq!(long.code(), "field_too_long");
    let nothing = t.get("/api/v1/search?q=%22%2A%28").await;
    assert_eq!(
        (nothing.status, nothing.body["items"].clone()),
        (StatusCode::OK, json!([]))
    );
    t.finish().await;
}
