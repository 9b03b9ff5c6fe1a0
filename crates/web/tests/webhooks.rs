//! Order webhooks from Shopify and WooCommerce on both backends, with payloads shaped like the
//! platforms' documented examples and signatures computed here as the platforms compute them:
//! a signed delivery creates or updates the order, a bad signature gets 401 and stores nothing,
//! a redelivery changes nothing.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use hmac::Mac as _;
use serde_json::{Value, json};
use seva_store::Backend;

use common::*;

on_both_backends!(
    shopify_order_webhooks_are_verified_and_idempotent,
    woocommerce_order_webhooks_are_verified_and_idempotent,
);

const SHOPIFY_SECRET: &str = "shpss_0123456789abcdef";
const WOO_SECRET: &str = "wc-webhook-secret-42";

/// base64(HMAC-SHA256(secret, body)): Shopify's `X-Shopify-Hmac-Sha256` and WooCommerce's
/// `X-WC-Webhook-Signature`.
fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn deliver(t: &TestApp, path: &str, headers: &[(&str, String)], body: &[u8]) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    t.send(request.body(Body::from(body.to_vec())).unwrap())
        .await
}

/// The order as the API shows it.
async fn stored(t: &TestApp, id: i64) -> Reply {
    t.call(
        Method::GET,
        &format!("/api/v1/orders/{id}"),
        &t.agent,
        None,
        None,
    )
    .await
}

async fn integration(t: &TestApp, platform: &str, secret: &str) -> String {
    let created = t
        .call(
            Method::POST,
            "/api/v1/integrations",
            &t.admin,
            Some(
                json!({"platform": platform, "name": format!("{platform} shop"),
                        "secret": secret}),
            ),
            None,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(!created.text.contains(secret), "the secret is never shown");
    let url = created.body["webhook_url"].as_str().unwrap();
    url[url.find("/webhooks/").unwrap()..].to_owned()
}

/// Shaped like Shopify's documented `orders/create` example.
fn shopify_order() -> Value {
    json!({
        "id": 820_982_911_946_154_508_u64,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
        "email": "jon@example.com",
        "created_at": "2026-11-01T12:00:00+03:30",
        "updated_at": "2026-11-01T12:00:00+03:30",
        "number": 234,
        "name": "#9999",
        "currency": "INR",
        "total_price": "403.00",
        "subtotal_price": "393.00",
        "financial_status": "paid",
        "fulfillment_status": null,
        "cancelled_at": null,
        "closed_at": null,
        "phone": null,
        "customer": {"id": 115_310_627_314_723_954_u64, "email": "john@example.com",
                     "first_name": "John", "last_name": "Smith", "phone": "555-555-SHIP"},
        "line_items": [
            {"id": 866_550_311_766_439_020_u64, "sku": "IPOD-342-N", "title": "IPod Nano",
             "name": "IPod Nano - 8GB", "quantity": 1, "price": "199.00"},
            {"id": 141_249_953_214_522_974_u64, "sku": "IPOD-342-L", "title": "IPod Nano",
             "name": "IPod Nano - 8GB", "quantity": 2, "price": "97.00"}
        ],
        "shipping_address": {"first_name": "Steve", "last_name": "Shipper",
                             "address1": "123 Shipping Street", "address2": null,
                             "city": "Shippington", "province": "Kentucky", "zip": "40003",
                             "country_code": "US", "phone": "555-555-SHIP"},
        "refunds": []
    })
}

async fn shopify_order_webhooks_are_verified_and_idempotent(backend: Backend) {
    let t = TestApp::new(backend).await;
    let path = integration(&t, "shopify", SHOPIFY_SECRET).await;
    let body = serde_json::to_vec(&shopify_order()).unwrap();
    let topic = ("x-shopify-topic", "orders/create".to_owned());

    // Unsigned, signed with another secret, or sent to another integration: 401, nothing kept.
    for (headers, to) in [
        (vec![topic.clone()], path.clone()),
        (
            vec![
                topic.clone(),
                ("x-shopify-hmac-sha256", sign("wrong", &body)),
            ],
            path.clone(),
        ),
        (
            vec![
                topic.clone(),
                ("x-shopify-hmac-sha256", sign(SHOPIFY_SECRET, &body)),
            ],
            "/webhooks/shopify/999".to_owned(),
        ),
        (
            vec![
                topic.clone(),
                ("x-shopify-hmac-sha256", sign(SHOPIFY_SECRET, &body)),
            ],
            path.replace("shopify", "woocommerce"),
        ),
    ] {
        let refused = deliver(&t, &to, &headers, &body).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{to}: {}",
            refused.text
        );
        assert_eq!(refused.code(), "webhook_signature_invalid");
    }
    // A body changed after signing is refused too.
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("403.00", "4.03");
    let refused = deliver(
        &t,
        &path,
        &[("x-shopify-hmac-sha256", sign(SHOPIFY_SECRET, &body))],
        tampered.as_bytes(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.count("orders").await, 0);
    assert_eq!(t.count("customers").await, 0);

    let signed = vec![
        topic.clone(),
        ("x-shopify-hmac-sha256", sign(SHOPIFY_SECRET, &body)),
    ];
    let created = deliver(&t, &path, &signed, &body).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.body["result"], "created");
    let id = created.body["order_id"].as_i64().unwrap();
    let order = stored(&t, id).await;
    assert_eq!(order.body["source"], "shopify");
    assert_eq!(order.body["external_id"], "820982911946154508");
    assert_eq!(order.body["number"], "#9999");
    assert_eq!(order.body["total"], 40_300, "paise, exactly");
    assert_eq!(order.body["payment_status"], "paid");
    assert_eq!(order.body["placed_at"], "2026-11-01T08:30:00Z");
    assert_eq!(order.body["lines"][1]["total"], 19_400);
    assert_eq!(order.body["shipping_address"]["name"], "Steve Shipper");
    let customer = order.body["customer_id"].as_i64().unwrap();
    let shown = t
        .call(
            Method::GET,
            &format!("/api/v1/customers/{customer}"),
            &t.agent,
            None,
            None,
        )
        .await;
    assert_eq!(shown.body["name"], "John Smith");
    assert!(shown.text.contains("john@example.com"), "{}", shown.text);
    assert!(
        !shown.text.contains("555"),
        "an invalid phone is left out, not fatal"
    );

    // Shopify delivers again (at least once): nothing changes.
    let events = t.count("events").await;
    let again = deliver(&t, &path, &signed, &body).await;
    assert_eq!(again.body["result"], "unchanged", "{}", again.text);
    assert_eq!(again.body["order_id"].as_i64(), Some(id));
    assert_eq!(t.count("orders").await, 1);
    assert_eq!(t.count("events").await, events);

    // orders/updated: fulfilled, 10.00 refunded.
    let mut updated = shopify_order();
    updated["updated_at"] = json!("2026-11-02T09:00:00+03:30");
    updated["fulfillment_status"] = json!("fulfilled");
    updated["financial_status"] = json!("partially_refunded");
    updated["refunds"] = json!([{"id": 509_562_969, "transactions": [
        {"amount": "10.00", "kind": "refund", "status": "success"},
        {"amount": "5.00", "kind": "refund", "status": "failure"}]}]);
    let body = serde_json::to_vec(&updated).unwrap();
    let reply = deliver(
        &t,
        &path,
        &[
            ("x-shopify-topic", "orders/updated".to_owned()),
            ("x-shopify-hmac-sha256", sign(SHOPIFY_SECRET, &body)),
        ],
        &body,
    )
    .await;
    assert_eq!(reply.body["result"], "updated", "{}", reply.text);
    let order = stored(&t, id).await;
    assert_eq!(order.body["fulfilment_status"], "fulfilled");
    assert_eq!(order.body["refunded"], 1_000);
    assert_eq!(
        t.count("customers").await,
        1,
        "the same customer, by Shopify's id"
    );

    // A late retry of an older version (unfulfilled, no refund) does not undo the update.
    let mut stale = shopify_order();
    stale["updated_at"] = json!("2026-11-01T12:05:00+03:30");
    let body = serde_json::to_vec(&stale).unwrap();
    let late = deliver(
        &t,
        &path,
        &[("x-shopify-hmac-sha256", sign(SHOPIFY_SECRET, &body))],
        &body,
    )
    .await;
    assert_eq!(late.body["result"], "unchanged", "{}", late.text);
    let order = stored(&t, id).await;
    assert_eq!(order.body["refunded"], 1_000);

    // Signed garbage is a clear 422, and nothing is kept.
    let junk = br#"{"id": "not a number"}"#;
    let reply = deliver(
        &t,
        &path,
        &[("x-shopify-hmac-sha256", sign(SHOPIFY_SECRET, junk))],
        junk,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    assert_eq!(reply.code(), "invalid_body");
    assert_eq!(t.count("orders").await, 1);
}

/// Shaped like WooCommerce's REST API v3 order, which its `order.*` webhooks carry.
fn woo_order(status: &str) -> Value {
    json!({
        "id": 727,
        "parent_id": 0,
        "number": "727",
        "order_key": "wc_order_58d2d042d1d",
        "created_via": "checkout",
        "status": status,
        "currency": "INR",
        "date_created": "2026-11-02T14:00:00",
        "date_created_gmt": "2026-11-02T08:30:00",
        "discount_total": "0.00",
        "shipping_total": "100.00",
        "total": "1699.00",
        "customer_id": 12,
        "billing": {"first_name": "प्रिया", "last_name": "देशपांडे", "company": "",
                    "address_1": "12 FC Road", "address_2": "", "city": "Pune", "state": "MH",
                    "postcode": "411004", "country": "IN", "email": "priya@example.in",
                    "phone": "०९८७६५ ४३२१०"},
        "shipping": {"first_name": "प्रिया", "last_name": "देशपांडे", "company": "",
                     "address_1": "12 FC Road", "address_2": "", "city": "Pune",
                     "state": "MH", "postcode": "411004", "country": "IN"},
        "payment_method": "cod",
        "line_items": [
            {"id": 315, "name": "पैठणी साडी", "product_id": 93, "variation_id": 0,
             "quantity": 1, "subtotal": "1499.00", "total": "1499.00", "sku": "PAITHANI-1",
             "price": 1499},
            {"id": 316, "name": "Bangles", "product_id": 94, "variation_id": 0,
             "quantity": 3, "subtotal": "100.00", "total": "100.00", "sku": "BANGLE-3",
             "price": 33.333_333_333_333_336}
        ],
        "refunds": []
    })
}

async fn woocommerce_order_webhooks_are_verified_and_idempotent(backend: Backend) {
    let t = TestApp::new(backend).await;
    let path = integration(&t, "woocommerce", WOO_SECRET).await;

    // The ping WooCommerce sends, unsigned, when the webhook is saved.
    let answered = deliver(&t, &path, &[], b"webhook_id=7").await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text);
    assert_eq!(t.count("orders").await, 0);

    let body = serde_json::to_vec(&woo_order("processing")).unwrap();
    let bad = deliver(
        &t,
        &path,
        &[("x-wc-webhook-signature", sign("not-the-secret", &body))],
        &body,
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.count("orders").await, 0);

    let signed = [
        ("x-wc-webhook-topic", "order.created".to_owned()),
        ("x-wc-webhook-signature", sign(WOO_SECRET, &body)),
    ];
    let created = deliver(&t, &path, &signed, &body).await;
    assert_eq!(created.body["result"], "created", "{}", created.text);
    let id = created.body["order_id"].as_i64().unwrap();
    let order = stored(&t, id).await;
    assert_eq!(order.body["source"], "woocommerce");
    assert_eq!(order.body["number"], "#727");
    assert!(
        order.body["external_id"]
            .as_str()
            .unwrap()
            .ends_with(":727"),
        "WooCommerce ids are per site: the key carries the integration"
    );
    assert_eq!(order.body["total"], 169_900);
    assert_eq!(
        order.body["lines"][1]["unit_price"], 3_333,
        "a float price is not trusted: the line total ÷ quantity, rounded"
    );
    assert_eq!(order.body["payment_status"], "paid");
    assert_eq!(order.body["placed_at"], "2026-11-02T08:30:00Z");
    assert_eq!(order.body["lines"][0]["title"], "पैठणी साडी");
    assert_eq!(order.body["lines"][0]["unit_price"], 149_900);
    let customer = order.body["customer_id"].as_i64().unwrap();
    let shown = t
        .call(
            Method::GET,
            &format!("/api/v1/customers/{customer}"),
            &t.agent,
            None,
            None,
        )
        .await;
    assert_eq!(shown.body["name"], "प्रिया देशपांडे");
    assert_eq!(shown.body["phones"], json!(["+919876543210"]));

    let again = deliver(&t, &path, &signed, &body).await;
    assert_eq!(again.body["result"], "unchanged");

    // Completed, with a partial refund.
    let mut completed = woo_order("completed");
    completed["refunds"] = json!([{"id": 730, "reason": "damaged", "total": "-100.00"}]);
    let body = serde_json::to_vec(&completed).unwrap();
    let reply = deliver(
        &t,
        &path,
        &[("x-wc-webhook-signature", sign(WOO_SECRET, &body))],
        &body,
    )
    .await;
    assert_eq!(reply.body["result"], "updated", "{}", reply.text);
    let order = stored(&t, id).await;
    assert_eq!(order.body["status"], "completed");
    assert_eq!(order.body["fulfilment_status"], "fulfilled");
    assert_eq!(order.body["payment_status"], "partially_refunded");
    assert_eq!(order.body["refunded"], 10_000);
    assert_eq!(t.count("orders").await, 1);

    let refused = t
        .call(Method::GET, "/api/v1/integrations", &t.agent, None, None)
        .await;
    assert_eq!(refused.code(), "forbidden", "integrations are for admins");
}
