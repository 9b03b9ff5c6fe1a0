//! Orders through the API on both backends: an order creates or finds its customer, a
//! redelivery changes nothing, a change updates the order and replaces its lines, bad money is
//! refused with precise codes and writes nothing.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use seva_store::Backend;

use common::*;

on_both_backends!(
    the_conversation_sidebar_shows_the_customers_orders,
    orders_join_their_customer_and_a_redelivery_changes_nothing,
    bad_orders_are_refused_and_write_nothing,
);

fn order_1042() -> Value {
    json!({
        "source": "csv",
        "external_id": "5551042",
        "number": "#1042",
        "customer": {"external_id": "shopify:77", "email": "Maryam@Example.com",
                     "name": "مریم رضایی"},
        "status": "open",
        "payment_status": "paid",
        "currency": "irr",
        "total": 52_000_000,
        "placed_at": "2026-11-01T08:30:00Z",
        "shipping_address": {"name": "مریم رضایی", "line1": "خیابان ولیعصر ۱۲", "city": "تهران",
                             "country": "IR", "phone": "+98 912 345 6789"},
        "lines": [
            {"sku": "SCARF-RED", "title": "شال ابریشمی", "quantity": 2,
             "unit_price": 21_000_000, "total": 42_000_000},
            {"title": "Gift wrap", "quantity": 1, "unit_price": 10_000_000,
             "total": 10_000_000}
        ]
    })
}

async fn orders_join_their_customer_and_a_redelivery_changes_nothing(backend: Backend) {
    let t = TestApp::new(backend).await;
    let created = t
        .call(
            Method::POST,
            "/api/v1/orders",
            &t.agent,
            Some(order_1042()),
            None,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let order = &created.body;
    assert_eq!(order["number"], "#1042");
    assert_eq!(order["currency"], "IRR");
    assert_eq!(order["total"], 52_000_000);
    assert_eq!(order["fulfilment_status"], "unfulfilled", "the default");
    assert_eq!(order["lines"][0]["title"], "شال ابریشمی");
    assert_eq!(order["lines"][1]["sku"], Value::Null);
    assert_eq!(order["shipping_address"]["city"], "تهران");
    let customer = order["customer_id"].as_i64().unwrap();
    let shown = t
        .call(
            Method::GET,
            &format!("/api/v1/customers/{customer}"),
            &t.agent,
            None,
            None,
        )
        .await;
    assert_eq!(shown.body["name"], "مریم رضایی", "a new customer, named");
    assert!(shown.text.contains("maryam@example.com"), "{}", shown.text);

    // The platform delivers the same order again: nothing changes, nothing is recorded.
    let events = t.count("events").await;
    let again = t
        .call(
            Method::POST,
            "/api/v1/orders",
            &t.agent,
            Some(order_1042()),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["id"], order["id"]);
    assert_eq!(again.body["updated_at"], order["updated_at"]);
    assert_eq!(t.count("orders").await, 1);
    assert_eq!(t.count("order_lines").await, 2);
    assert_eq!(
        t.count("events").await,
        events,
        "a redelivery records nothing"
    );

    // Fulfilled, one scarf refunded, the gift wrap dropped: the lines are replaced.
    t.clock.advance(chrono::Duration::hours(2));
    let mut changed = order_1042();
    changed["fulfilment_status"] = json!("fulfilled");
    changed["payment_status"] = json!("partially_refunded");
    changed["refunded"] = json!(21_000_000);
    changed["lines"] = json!([{"sku": "SCARF-RED", "title": "شال ابریشمی", "quantity": 2,
                               "unit_price": 21_000_000, "total": 42_000_000}]);
    let updated = t
        .call(
            Method::POST,
            "/api/v1/orders",
            &t.agent,
            Some(changed),
            None,
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.body["id"], order["id"]);
    assert_eq!(updated.body["refunded"], 21_000_000);
    assert_eq!(updated.body["lines"].as_array().unwrap().len(), 1);
    assert_ne!(updated.body["updated_at"], order["updated_at"]);
    assert_eq!(t.count("order_lines").await, 1);
    assert_eq!(t.count("events").await, events + 1);

    // A second order by the platform's customer id alone joins the same customer; by the
    // email alone, too. The customer's orders come newest first.
    let second = json!({"external_id": "5551043", "customer": {"external_id": "shopify:77"},
                        "currency": "IRR", "total": 9_000_000,
                        "placed_at": "2026-11-10T10:00:00Z"});
    let second = t
        .call(Method::POST, "/api/v1/orders", &t.agent, Some(second), None)
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    assert_eq!(second.body["customer_id"].as_i64(), Some(customer));
    assert_eq!(
        second.body["number"], "5551043",
        "the external id by default"
    );
    assert_eq!(second.body["source"], "api");
    let third = json!({"source": "api", "external_id": "5551042",
                       "customer": {"email": "maryam@example.com"},
                       "currency": "INR", "total": 149_900,
                       "placed_at": "2026-10-01T10:00:00Z"});
    let third = t
        .call(Method::POST, "/api/v1/orders", &t.agent, Some(third), None)
        .await;
    assert_eq!(
        third.status,
        StatusCode::CREATED,
        "the same external id from another source is another order"
    );
    assert_eq!(third.body["customer_id"].as_i64(), Some(customer));
    let listed = t
        .call(
            Method::GET,
            &format!("/api/v1/customers/{customer}/orders"),
            &t.agent,
            None,
            None,
        )
        .await;
    let numbers: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["5551043", "#1042", "5551042"]);
    let one = t
        .call(
            Method::GET,
            &format!("/api/v1/orders/{}", order["id"]),
            &t.readonly,
            None,
            None,
        )
        .await;
    assert_eq!(
        one.status,
        StatusCode::OK,
        "read-only users may read orders"
    );
    assert_eq!(one.body["fulfilment_status"], "fulfilled");
}

async fn bad_orders_are_refused_and_write_nothing(backend: Backend) {
    let t = TestApp::new(backend).await;
    let with = |field: &str, value: Value| {
        let mut body = order_1042();
        body[field] = value;
        body
    };
    let mut negative_line = order_1042();
    negative_line["lines"][0]["quantity"] = json!(0);
    let mut no_title = order_1042();
    no_title["lines"][0]["title"] = json!("  ");
    for (body, code) in [
        (with("currency", json!("RIAL")), "invalid_value"),
        (with("source", json!("shopify")), "invalid_value"),
        (with("total", json!(-5)), "invalid_value"),
        (with("refunded", json!(60_000_000)), "invalid_value"),
        (with("total", json!(5.5)), "invalid_body"),
        (with("status", json!("shipped")), "invalid_body"),
        (
            with("customer", json!({"name": "No way to reach"})),
            "customer_identity_required",
        ),
        (
            with("customer", json!({"email": "not-an-email"})),
            "invalid_email",
        ),
        (with("external_id", json!("")), "field_required"),
        (negative_line, "invalid_value"),
        (no_title, "field_required"),
    ] {
        let reply = t
            .call(
                Method::POST,
                "/api/v1/orders",
                &t.agent,
                Some(body.clone()),
                None,
            )
            .await;
        assert_eq!(reply.code(), code, "{body}: {}", reply.text);
    }
    let by_readonly = t
        .call(
            Method::POST,
            "/api/v1/orders",
            &t.readonly,
            Some(order_1042()),
            None,
        )
        .await;
    assert_eq!(by_readonly.code(), "forbidden");
    assert_eq!(t.count("orders").await, 0);
    assert_eq!(t.count("order_lines").await, 0);
    assert_eq!(t.count("customers").await, 0, "no customer left behind");
    let missing = t
        .call(Method::GET, "/api/v1/orders/999", &t.agent, None, None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "order_not_found");
}

async fn the_conversation_sidebar_shows_the_customers_orders(backend: Backend) {
    let t = TestApp::new(backend).await;
    let conversation = t
        .call(
            Method::POST,
            "/api/v1/conversations",
            &t.agent,
            Some(
                json!({"customer": {"email": "maryam@example.com"}, "subject": "Where is it?",
                        "message": {"text": "سفارشم کجاست؟"}}),
            ),
            None,
        )
        .await;
    assert_eq!(
        conversation.status,
        StatusCode::CREATED,
        "{}",
        conversation.text
    );
    let path = format!("/conversations/{}", conversation.body["id"]);
    let session = sign_in(&t, "sara@shop.example").await;
    let before = t.page(Method::GET, &path, None, &session, None).await;
    assert!(before.text.contains("No orders"), "{}", before.text);

    let mut cancelled = order_1042();
    cancelled["external_id"] = json!("5551040");
    cancelled["number"] = json!("#1040");
    cancelled["status"] = json!("cancelled");
    cancelled["placed_at"] = json!("2026-10-20T08:30:00Z");
    for body in [order_1042(), cancelled] {
        let reply = t
            .call(Method::POST, "/api/v1/orders", &t.agent, Some(body), None)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
    let page = t.page(Method::GET, &path, None, &session, Some("fa")).await;
    let text = plain(&page.text);
    let newest = text.find("#1042").expect("the order in the sidebar");
    let older = text.find("#1040").expect("the cancelled order too");
    assert!(newest < older, "newest first");
    assert!(
        text.contains("۵۲۰٬۰۰۰٫۰۰ IRR"),
        "money in Persian digits: {text}"
    );
    assert!(text.contains("پرداخت‌شده"), "the payment status, translated");
    assert!(text.contains("class=\"cancelled\""));
}
