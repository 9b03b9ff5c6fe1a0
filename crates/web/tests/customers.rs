//! The customer pages, the sidebar's order tools and the segment pages, as an agent uses them
//! through plain forms, on both backends and in Persian.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};
use seva_store::Backend;

use common::*;

on_both_backends!(
    the_customer_page_shows_everything_and_its_forms_work,
    the_sidebar_links_an_order_and_records_a_return,
    segments_are_built_from_a_form_and_filter_the_inbox,
);

fn order(id: &str, email: &str, currency: &str, total: i64, placed_at: &str) -> Value {
    json!({
        "source": "api", "external_id": id, "number": format!("#{id}"),
        "customer": {"email": email}, "payment_status": "paid", "currency": currency,
        "total": total, "placed_at": placed_at,
        "shipping_address": {"name": "مریم رضایی", "line1": "خیابان ولیعصر ۱۲", "postal_code": "1511"},
        "lines": [{"sku": "SCARF-RED", "title": "شال ابریشمی", "quantity": 2,
                   "unit_price": total / 2, "total": total}]
    })
}

async fn record(t: &TestApp, body: Value) -> Value {
    let reply = t
        .call(Method::POST, "/api/v1/orders", &t.agent, Some(body), None)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body
}

fn location(reply: &Reply) -> String {
    reply.headers[header::LOCATION].to_str().unwrap().to_owned()
}

async fn the_customer_page_shows_everything_and_its_forms_work(backend: Backend) {
    let t = TestApp::new(backend).await;
    let created = t
        .post_conversation(json!({
            "customer": {"email": "maryam@example.com", "name": "مریم رضایی"},
            "channel": "whatsapp", "subject": "شال نرسید", "message": {"text": "سلام"}}))
        .await;
    let customer = created.body["customer_id"].as_i64().unwrap();
    record(
        &t,
        order(
            "1042",
            "maryam@example.com",
            "IRR",
            52_000_000,
            "2026-10-01T10:00:00Z",
        ),
    )
    .await;
    record(
        &t,
        order(
            "1043",
            "maryam@example.com",
            "IRR",
            8_000_000,
            "2026-10-20T10:00:00Z",
        ),
    )
    .await;
    record(
        &t,
        order(
            "77",
            "maryam@example.com",
            "INR",
            149_900,
            "2026-09-05T10:00:00Z",
        ),
    )
    .await;
    // The same person ordered once as a guest with another address: same name, same address.
    let twin = record(
        &t,
        order(
            "900",
            "m.rezaei@example.org",
            "IRR",
            1_000_000,
            "2026-08-01T10:00:00Z",
        ),
    )
    .await;
    let twin = twin["customer_id"].as_i64().unwrap();

    let agent = sign_in(&t, "sara@shop.example").await;
    let path = format!("/customers/{customer}");
    let page = t.page(Method::GET, &path, None, &agent, Some("fa")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let text = plain(&page.text);
    assert!(text.contains("مریم رضایی"), "the name");
    assert!(text.contains("maryam@example.com"), "the identities");
    // Lifetime value per currency, never summed across currencies, with order counts.
    assert!(
        text.contains("۶۰۰٬۰۰۰٫۰۰ IRR"),
        "IRR 520,000 + 80,000: {text}"
    );
    assert!(text.contains("۱٬۴۹۹٫۰۰ INR"), "INR on its own line");
    // Orders newest first with their lines; the timeline holds the conversation and orders.
    let newest = text.find("#1043").unwrap();
    let older = text.find("#1042").unwrap();
    assert!(newest < older, "newest first");
    assert!(text.contains("شال ابریشمی"), "the order's lines");
    assert!(
        text.contains("گفتگو در واتس‌اپ: شال نرسید"),
        "the conversation on the timeline: {text}"
    );
    // The likely duplicate, with why.
    assert!(text.contains("همان نام و نشانی"), "the reason: {text}");
    assert!(
        page.text
            .contains(&format!("name=\"from\" value=\"{twin}\""))
    );

    // Tags, a note, preferences and consent through the forms.
    let csrf = hidden_field(&page.text, "csrf");
    let post = |action: &str, form: String| {
        let action = format!("{path}/{action}");
        let agent = agent.clone();
        let t = &t;
        async move {
            t.page(Method::POST, &action, Some(&form), &agent, None)
                .await
        }
    };
    let saved = post(
        "tags",
        format!("csrf={csrf}&tags=vip%2C+%D9%88%DB%8C%DA%98%D9%87"),
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert!(location(&saved).ends_with("notice=saved"));
    let noted = post("notes", format!("csrf={csrf}&body=Prefers+mornings")).await;
    assert!(location(&noted).ends_with("notice=noted"));
    let prefs = post(
        "preferences",
        format!("csrf={csrf}&preferred_channel=whatsapp&email_marketing=no&sms_marketing=yes"),
    )
    .await;
    assert!(
        location(&prefs).ends_with("notice=saved"),
        "{}",
        location(&prefs)
    );
    let shown = t.get(&format!("/api/v1/customers/{customer}")).await;
    assert_eq!(shown.body["preferred_channel"], "whatsapp");
    assert_eq!(
        shown.body["consent"],
        json!({"email_marketing": false, "sms_marketing": true})
    );
    let page = t.page(Method::GET, &path, None, &agent, None).await;
    let text = plain(&page.text);
    assert!(text.contains("Prefers mornings"));
    assert!(
        page.text.contains("value=\"vip, ویژه\""),
        "the tags, as saved"
    );
    assert!(
        text.contains("changed the tags: +vip +ویژه"),
        "on the timeline: {text}"
    );
    // A bad CSRF token changes nothing.
    let forged = post("notes", "csrf=nope&body=forged".to_owned()).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Agents see no privacy tools, and the routes refuse them.
    assert!(!page.text.contains("/erase"), "agents get no erase button");
    let refused = t
        .page(
            Method::GET,
            &format!("{path}/export.json"),
            None,
            &agent,
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Merging the likely duplicate from the page.
    let merged = post("merge", format!("csrf={csrf}&from={twin}")).await;
    assert!(
        location(&merged).ends_with("notice=merged"),
        "{}",
        location(&merged)
    );
    let gone = t
        .page(
            Method::GET,
            &format!("/customers/{twin}"),
            None,
            &agent,
            None,
        )
        .await;
    assert_eq!(
        gone.status,
        StatusCode::SEE_OTHER,
        "a merged customer leads to the survivor"
    );
    assert_eq!(
        location(&gone),
        format!("/customers/{customer}?notice=merged")
    );
    let page = t.page(Method::GET, &path, None, &agent, None).await;
    let text = plain(&page.text);
    assert!(text.contains("#900"), "the twin's order moved here");
    assert!(text.contains("m.rezaei@example.org"), "and its address");
    assert!(
        text.contains("into this customer"),
        "the merge on the timeline: {text}"
    );

    // The admin exports, then erases (only once the confirmation is ticked).
    let admin = sign_in(&t, "admin@shop.example").await;
    let export = t
        .page(
            Method::GET,
            &format!("{path}/export.json"),
            None,
            &admin,
            None,
        )
        .await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(
        export.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    assert_eq!(export.body["customer"]["name"], "مریم رضایی");
    assert_eq!(export.body["orders"].as_array().unwrap().len(), 4);
    let page = t.page(Method::GET, &path, None, &admin, None).await;
    let csrf = hidden_field(&page.text, "csrf");
    let unconfirmed = t
        .page(
            Method::POST,
            &format!("{path}/erase"),
            Some(&format!("csrf={csrf}")),
            &admin,
            None,
        )
        .await;
    assert!(location(&unconfirmed).ends_with("notice=confirm"));
    assert_eq!(t.count("customer_identities").await, 2, "nothing erased");
    let erased = t
        .page(
            Method::POST,
            &format!("{path}/erase"),
            Some(&format!("csrf={csrf}&confirm=yes")),
            &admin,
            None,
        )
        .await;
    assert!(location(&erased).ends_with("notice=erased"));
    let page = t.page(Method::GET, &path, None, &admin, Some("fa")).await;
    let text = plain(&page.text);
    assert!(text.contains("مشتری پاک‌شده"), "{text}");
    assert!(!text.contains("maryam@example.com"));
    assert!(!page.text.contains("/erase\""), "nothing left to erase");
    t.finish().await;
}

async fn the_sidebar_links_an_order_and_records_a_return(backend: Backend) {
    let t = TestApp::new(backend).await;
    let conversation = t.open_conversation("ravi@example.in").await;
    let placed = record(
        &t,
        order(
            "2001",
            "ravi@example.in",
            "INR",
            149_900,
            "2026-10-20T10:00:00Z",
        ),
    )
    .await;
    let order_id = placed["id"].as_i64().unwrap();
    let agent = sign_in(&t, "sara@shop.example").await;
    let path = format!("/conversations/{conversation}");
    let page = t.page(Method::GET, &path, None, &agent, Some("mr")).await;
    assert!(
        page.text.contains(&format!("action=\"{path}/orders\"")),
        "the link button"
    );
    assert!(
        page.text
            .contains(&format!("href=\"/customers/{}\"", placed["customer_id"])),
        "the customer's name leads to their page"
    );
    let csrf = hidden_field(&page.text, "csrf");
    let linked = t
        .page(
            Method::POST,
            &format!("{path}/orders"),
            Some(&format!("csrf={csrf}&order_id={order_id}&back=")),
            &agent,
            None,
        )
        .await;
    assert!(
        location(&linked).contains("notice=order-linked"),
        "{}",
        location(&linked)
    );
    let page = t.page(Method::GET, &path, None, &agent, Some("mr")).await;
    let text = plain(&page.text);
    assert!(
        text.contains("या संभाषणाशी संबंधित"),
        "linked, in Marathi: {text}"
    );
    assert!(text.contains("ऑर्डर #2001 जोडली"), "on the thread");

    // A return of one of the two scarves, the quantity in Devanagari digits.
    let form = format!(
        "csrf={csrf}&order_id={order_id}&kind=return&line=0&quantity=%E0%A5%A7&reason=Too+small&back="
    );
    let recorded = t
        .page(
            Method::POST,
            &format!("{path}/requests"),
            Some(&form),
            &agent,
            None,
        )
        .await;
    assert!(
        location(&recorded).contains("notice=request-recorded"),
        "{}",
        location(&recorded)
    );
    let too_many = form.replace("quantity=%E0%A5%A7", "quantity=5");
    let refused = t
        .page(
            Method::POST,
            &format!("{path}/requests"),
            Some(&too_many),
            &agent,
            None,
        )
        .await;
    assert!(
        location(&refused).contains("notice=invalid"),
        "{}",
        location(&refused)
    );
    assert_eq!(t.count("order_requests").await, 1);
    let page = t.page(Method::GET, &path, None, &agent, None).await;
    let text = plain(&page.text);
    assert!(text.contains("Return, order #2001"), "{text}");
    assert!(text.contains("1 × شال ابریشمی"));
    let request: i64 = t
        .get(&format!(
            "/api/v1/customers/{}/order-requests",
            placed["customer_id"]
        ))
        .await
        .body["items"][0]["id"]
        .as_i64()
        .unwrap();
    let moved = t
        .page(
            Method::POST,
            &format!("/order-requests/{request}"),
            Some(&format!("csrf={csrf}&status=approved&next={path}")),
            &agent,
            None,
        )
        .await;
    assert_eq!(location(&moved), format!("{path}?notice=request-moved"));
    // The way back is a page of this site only.
    let away = t
        .page(
            Method::POST,
            &format!("/order-requests/{request}"),
            Some(&format!(
                "csrf={csrf}&status=received&next=https://evil.example/x"
            )),
            &agent,
            None,
        )
        .await;
    assert!(
        location(&away).starts_with("/inbox?"),
        "{}",
        location(&away)
    );
    let shown = t.get(&format!("/api/v1/order-requests/{request}")).await;
    assert_eq!(shown.body["status"], "received");
    t.finish().await;
}

async fn segments_are_built_from_a_form_and_filter_the_inbox(backend: Backend) {
    let t = TestApp::new(backend).await;
    let days_ago = |d: i64| (t0() - chrono::Duration::days(d)).to_rfc3339();
    record(
        &t,
        order("1", "big@example.com", "IRR", 600_000_000, &days_ago(10)),
    )
    .await;
    record(
        &t,
        order("2", "small@example.com", "IRR", 10_000_000, &days_ago(10)),
    )
    .await;
    let big_chat = t.open_conversation("big@example.com").await;
    t.open_conversation("small@example.com").await;
    let agent = sign_in(&t, "sara@shop.example").await;
    let page = t
        .page(Method::GET, "/segments", None, &agent, Some("fa"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = hidden_field(&page.text, "csrf");
    // 5,000,000 rials in Persian digits with Persian separators, in the last ۹۰ days.
    let form = format!(
        "csrf={csrf}&name=Big&spent_currency=IRR&spent_amount={}&spent_days={}",
        "%DB%B5%D9%AC%DB%B0%DB%B0%DB%B0%D9%AC%DB%B0%DB%B0%DB%B0", "%DB%B9%DB%B0"
    );
    let created = t
        .page(Method::POST, "/segments", Some(&form), &agent, Some("fa"))
        .await;
    assert_eq!(
        created.status,
        StatusCode::SEE_OTHER,
        "{}",
        plain(&created.text)
    );
    let segment_path = location(&created);
    let page = t
        .page(Method::GET, &segment_path, None, &agent, Some("fa"))
        .await;
    let text = plain(&page.text);
    assert!(text.contains("۱ مشتری"), "the live count: {text}");
    assert!(text.contains("big@example.com"));
    assert!(!text.contains("small@example.com"));
    assert!(
        text.contains("خرید بیش از ۵٬۰۰۰٬۰۰۰٫۰۰ IRR در ۹۰ روز گذشته"),
        "the rules in words: {text}"
    );
    let csv_path = format!("{segment_path}/export.csv");
    let refused = t.page(Method::GET, &csv_path, None, &agent, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "contacts in bulk");
    let admin = sign_in(&t, "admin@shop.example").await;
    let csv = t.page(Method::GET, &csv_path, None, &admin, None).await;
    assert_eq!(csv.text.lines().count(), 2, "{}", csv.text);

    // Refusals keep what was typed and say why.
    let empty = t
        .page(
            Method::POST,
            "/segments",
            Some(&format!("csrf={csrf}&name=Nothing")),
            &agent,
            None,
        )
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(plain(&empty.text).contains("Fill in at least one rule."));
    let taken = t
        .page(Method::POST, "/segments", Some(&form), &agent, None)
        .await;
    assert!(plain(&taken.text).contains("A segment has this name already."));
    let bad = t
        .page(
            Method::POST,
            "/segments",
            Some(&format!(
                "csrf={csrf}&name=Bad&spent_amount=12&spent_currency=rupees"
            )),
            &agent,
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text.contains("value=\"rupees\""),
        "what was typed stays"
    );

    // The inbox offers the segment and shows its customers' conversations only.
    let id = segment_path.rsplit('/').next().unwrap();
    let inbox = t
        .page(
            Method::GET,
            &format!("/inbox?view=all&segment={id}"),
            None,
            &agent,
            None,
        )
        .await;
    assert!(
        inbox
            .text
            .contains(&format!("<option value=\"{id}\" selected>Big</option>"))
    );
    assert!(inbox.text.contains(&format!("/conversations/{big_chat}")));
    assert_eq!(
        inbox.text.matches("href=\"/conversations/").count(),
        1,
        "only the segment's conversation"
    );
    t.finish().await;
}
