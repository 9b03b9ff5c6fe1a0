//! The contact form and the customer portal over real HTTP, on both backends: what a customer
//! sends becomes a conversation; robots and floods are turned away without a trace; a portal
//! sign-in link works once and not after it expires; a customer sees only their own requests.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::Duration;
use common::{Reply, TestApp, add_mailbox, cookies_of, hidden_field};
use serde_json::json;
use seva_store::Backend;

const BOUNDARY: &str = "----sevatestboundary";

/// A multipart form: text fields, then files as (name, content type, bytes).
fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (filename, content_type, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_form(t: &TestApp, path: &str, body: Vec<u8>) -> Reply {
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .unwrap();
    t.send(request).await
}

async fn notices(t: &TestApp) -> Vec<seva_store::public::Notice> {
    let mut conn = t.app.store.conn().await.unwrap();
    let mut all = Vec::new();
    for id in 1..=t.count("mail_notices").await {
        all.push(seva_store::public::notice(&mut conn, id).await.unwrap());
    }
    all
}

fn fields<'a>(issued: &'a str, email: &'a str, website: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("issued", issued),
        ("name", "Maryam Rahimi"),
        ("email", email),
        ("subject", "Wrong size delivered"),
        ("order_number", "KH-1042"),
        ("text", "سلام، کفش سایز ۳۸ سفارش دادم ولی ۴۰ رسید."),
        ("website", website),
    ]
}

async fn the_contact_form_makes_a_conversation_and_turns_robots_and_floods_away(backend: Backend) {
    let t = TestApp::new(backend).await;
    add_mailbox(&t).await;
    let page = t
        .page(Method::GET, "/contact?lang=fa", None, "", None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("dir=\"rtl\""),
        "the Persian form is right-to-left"
    );
    assert!(page.text.contains("تماس با ما"));
    let issued = hidden_field(&page.text, "issued");

    // Sent a second after loading: a robot. It is thanked, and nothing is stored.
    t.clock.advance(Duration::seconds(1));
    let fast = post_form(
        &t,
        "/contact?lang=fa",
        multipart(&fields(&issued, "maryam@example.ir", ""), &[]),
    )
    .await;
    assert_eq!(fast.status, StatusCode::OK);
    assert!(fast.text.contains("contact-sent"), "{}", fast.text);
    assert_eq!(
        t.count("conversations").await,
        0,
        "a too-fast form stores nothing"
    );

    // The honeypot, filled in: the same.
    t.clock.advance(Duration::seconds(20));
    let bot = post_form(
        &t,
        "/contact?lang=fa",
        multipart(&fields(&issued, "maryam@example.ir", "http://spam"), &[]),
    )
    .await;
    assert_eq!(bot.status, StatusCode::OK);
    assert_eq!(
        t.count("conversations").await,
        0,
        "a filled honeypot stores nothing"
    );

    // A forged time stamp is an expired form.
    let forged = post_form(
        &t,
        "/contact?lang=fa",
        multipart(&fields("1.abc", "maryam@example.ir", ""), &[]),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        forged.text.contains("Wrong size delivered"),
        "what was typed is kept"
    );

    // A person, with a file.
    let pdf: &[u8] = b"%PDF-1.4 receipt";
    let sent = post_form(
        &t,
        "/contact?lang=fa",
        multipart(
            &fields(&issued, "Maryam@Example.ir", ""),
            &[("رسید.pdf", "application/pdf", pdf)],
        ),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert_eq!(t.count("conversations").await, 1);
    let list = t.get("/api/v1/conversations?channel=form").await;
    let conversation = &list.body["items"][0];
    let id = conversation["id"].as_i64().unwrap();
    assert!(
        sent.text.contains(&format!("[#{id}]")),
        "the reference is shown"
    );
    assert_eq!(conversation["subject"], "Wrong size delivered");
    let thread = t.get(&format!("/api/v1/conversations/{id}/messages")).await;
    let first = &thread.body["items"][0];
    assert_eq!(first["kind"], "customer");
    assert!(first["text"].as_str().unwrap().contains("سایز ۳۸"));
    let mut conn = t.app.store.conn().await.unwrap();
    let message = seva_domain::MessageId(first["id"].as_i64().unwrap());
    let files = seva_store::attachments::for_message(&mut conn, message)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].filename, "رسید.pdf");
    let customer = t
        .get(&format!(
            "/api/v1/customers/{}",
            conversation["customer_id"]
        ))
        .await;
    assert_eq!(customer.body["language"], "fa", "the page's language");

    // The acknowledgement is queued, in Persian, with the reference and the portal's address.
    let queued = notices(&t).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].kind, "acknowledgement");
    assert_eq!(queued[0].recipient, "maryam@example.ir");
    assert!(
        queued[0].subject.contains(&format!("[#{id}]")),
        "{}",
        queued[0].subject
    );
    assert!(
        queued[0].subject.contains("دریافت کردیم"),
        "{}",
        queued[0].subject
    );
    assert!(queued[0].body.contains("http://seva.test/portal"));

    // An agent's answer to a form request leaves by email.
    let reply = t
        .message(id, "reply", "Sorry! A size 38 is on its way.")
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(t.count("outbox").await, 1, "the reply is queued for email");

    // Bad input is refused with the form kept, and nothing stored.
    let mut no_email = fields(&issued, "not-an-address", "");
    no_email.retain(|(k, _)| *k != "order_number");
    let refused = post_form(&t, "/contact?lang=fa", multipart(&no_email, &[])).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(t.count("conversations").await, 1);
    let no_brand = post_form(
        &t,
        "/contact/999",
        multipart(&fields(&issued, "a@example.ir", ""), &[]),
    )
    .await;
    assert_eq!(no_brand.status, StatusCode::NOT_FOUND);

    // Five forms an hour from one client; acknowledgements at most three an hour per address.
    for _ in 0..4 {
        let again = post_form(
            &t,
            "/contact?lang=fa",
            multipart(&fields(&issued, "maryam@example.ir", ""), &[]),
        )
        .await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    }
    let flood = post_form(
        &t,
        "/contact?lang=fa",
        multipart(&fields(&issued, "maryam@example.ir", ""), &[]),
    )
    .await;
    assert_eq!(flood.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(t.count("conversations").await, 5);
    let acks = notices(&t).await;
    assert_eq!(
        acks.len(),
        3,
        "no more than three acknowledgements an hour to one address"
    );
    t.clock.advance(Duration::minutes(61));
    let later = post_form(
        &t,
        "/contact?lang=fa",
        multipart(&fields(&issued, "maryam@example.ir", ""), &[]),
    )
    .await;
    assert_eq!(
        later.status,
        StatusCode::OK,
        "an hour later the client may write again"
    );
    t.finish().await;
}

/// Opens a sign-in link as a browser would: the page, then its button.
async fn use_link(t: &TestApp, link: &str) -> Reply {
    let path = link.trim_start_matches("http://seva.test");
    let page = t.page(Method::GET, path, None, "", None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let csrf = hidden_field(&page.text, "csrf");
    t.page(
        Method::POST,
        path,
        Some(&format!("csrf={csrf}")),
        &cookies_of(&page),
        None,
    )
    .await
}

fn link_in(body: &str) -> String {
    body.split_whitespace()
        .find(|w| w.contains("/portal/link/"))
        .unwrap()
        .to_owned()
}

async fn request_link(t: &TestApp, email: &str) -> Reply {
    t.page(
        Method::POST,
        "/portal",
        Some(&format!("email={}", email.replace('@', "%40"))),
        "",
        None,
    )
    .await
}

async fn a_portal_link_works_once_and_shows_only_the_customers_own_requests(backend: Backend) {
    let t = TestApp::new(backend).await;
    add_mailbox(&t).await;
    let mine = t.open_conversation("maryam@example.ir").await;
    let answer = t.message(mine, "reply", "Your parcel left today.").await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let note = t.message(mine, "note", "internal: courier is slow").await;
    assert_eq!(note.status, StatusCode::CREATED);
    let theirs = t.open_conversation("someone.else@example.in").await;

    // An unknown address gets the same answer and no mail.
    let unknown = request_link(&t, "nobody@example.com").await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert!(unknown.text.contains("portal-link-sent"));
    assert!(
        notices(&t).await.is_empty(),
        "nothing is sent to unknown addresses"
    );

    let asked = request_link(&t, "Maryam@example.ir").await;
    assert_eq!(asked.status, StatusCode::OK);
    assert_eq!(
        asked.text, unknown.text,
        "the page does not tell known from unknown"
    );
    let sent = notices(&t).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, "portal_link");
    let link = link_in(&sent[0].body);

    // A mail scanner opening the link does not spend it: only the button does.
    let signed_in = use_link(&t, &link).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text
    );
    let portal = cookies_of(&signed_in);
    assert!(portal.contains("seva_portal="), "{portal}");
    let again = t
        .page(
            Method::GET,
            link.trim_start_matches("http://seva.test"),
            None,
            "",
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "a link works once");

    // Their requests, and nobody else's.
    let home = t.page(Method::GET, "/portal", None, &portal, None).await;
    assert!(home.text.contains(&format!("/portal/conversations/{mine}")));
    assert!(
        !home
            .text
            .contains(&format!("/portal/conversations/{theirs}"))
    );
    let thread = t
        .page(
            Method::GET,
            &format!("/portal/conversations/{mine}"),
            None,
            &portal,
            None,
        )
        .await;
    assert_eq!(thread.status, StatusCode::OK);
    assert!(thread.text.contains("Your parcel left today."));
    assert!(
        !thread.text.contains("courier is slow"),
        "internal notes stay internal"
    );
    let other = t
        .page(
            Method::GET,
            &format!("/portal/conversations/{theirs}"),
            None,
            &portal,
            None,
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let missing = t
        .page(
            Method::GET,
            "/portal/conversations/999999",
            None,
            &portal,
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        other.text, missing.text,
        "another's request looks like none at all"
    );
    let before = t.count("messages").await;
    let meddle = t
        .page(
            Method::POST,
            &format!("/portal/conversations/{theirs}"),
            Some("text=hi"),
            &portal,
            None,
        )
        .await;
    assert_eq!(meddle.status, StatusCode::NOT_FOUND);
    assert_eq!(
        t.count("messages").await,
        before,
        "nothing written to another's request"
    );

    // Answering reopens the request, as an email would.
    let resolved = t.patch(mine, json!({"status": "resolved"})).await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.text);
    let answered = t
        .page(
            Method::POST,
            &format!("/portal/conversations/{mine}"),
            Some("text=Thanks%2C+one+more+question"),
            &portal,
            None,
        )
        .await;
    assert_eq!(answered.status, StatusCode::SEE_OTHER);
    let now = t.get(&format!("/api/v1/conversations/{mine}")).await;
    assert_eq!(now.body["status"], "open");
    let thread = t
        .get(&format!("/api/v1/conversations/{mine}/messages"))
        .await;
    let items = thread.body["items"].as_array().unwrap();
    assert_eq!(items.last().unwrap()["text"], "Thanks, one more question");
    assert_eq!(items.last().unwrap()["kind"], "customer");

    // Without the cookie there is nothing to see.
    let anonymous = t
        .page(
            Method::GET,
            &format!("/portal/conversations/{mine}"),
            None,
            "",
            None,
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);

    // A link expires after 30 minutes; three links per 15 minutes at most.
    request_link(&t, "maryam@example.ir").await;
    let expiring = link_in(&notices(&t).await[1].body);
    t.clock.advance(Duration::minutes(31));
    let late = t
        .page(
            Method::GET,
            expiring.trim_start_matches("http://seva.test"),
            None,
            "",
            None,
        )
        .await;
    assert_eq!(late.status, StatusCode::NOT_FOUND, "an expired link");
    for _ in 0..5 {
        request_link(&t, "maryam@example.ir").await;
    }
    assert_eq!(
        notices(&t).await.len(),
        2 + 3,
        "three links per quarter hour"
    );
    t.finish().await;
}

on_both_backends!(
    the_contact_form_makes_a_conversation_and_turns_robots_and_floods_away,
    a_portal_link_works_once_and_shows_only_the_customers_own_requests,
);
