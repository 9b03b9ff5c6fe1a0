//! The email channel's settings and deliveries over real HTTP on both backends: the mailbox API
//! (admins only, passwords never shown), the connection check against a closed port, mail set
//! aside, the settings pages and their forms, and how email replies show their delivery.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};
use seva_app::mail::{Position, RejectedEmail};
use seva_domain::mail::MailboxId;
use seva_store::Backend;

use common::*;

on_both_backends!(
    mailboxes_are_created_listed_read_and_updated_without_ever_showing_a_password,
    only_admins_may_see_or_change_mailboxes,
    a_mailbox_address_is_taken_once_and_bad_settings_are_refused,
    checking_a_mailbox_whose_servers_are_down_reports_and_records_it,
    mail_set_aside_is_listed_per_mailbox,
    admins_add_edit_and_check_mailboxes_on_the_settings_pages,
    email_replies_show_their_delivery_in_the_api_and_under_the_reply,
);

const IMAP_SECRET: &str = "imap-secret-Kq82";
const SMTP_SECRET: &str = "smtp-secret-Zw19";

fn settings(address: &str) -> Value {
    json!({
        "name": "Support",
        "address": address,
        "imap": {"host": "imap.shop.example", "port": 993, "security": "tls",
                 "user": "support", "password": IMAP_SECRET},
        "smtp": {"host": "smtp.shop.example", "port": 465, "security": "tls",
                 "user": "support", "password": SMTP_SECRET},
    })
}

/// A port on loopback that nothing listens on: bound once, then let go.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn down_settings(address: &str, port: u16) -> Value {
    json!({
        "name": "Down",
        "address": address,
        "imap": {"host": "127.0.0.1", "port": port, "security": "none",
                 "user": "support", "password": IMAP_SECRET},
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none"},
    })
}

async fn admin(t: &TestApp, method: Method, path: &str, body: Option<Value>) -> Reply {
    t.call(method, path, &t.admin, body, None).await
}

async fn create(t: &TestApp, body: Value) -> Reply {
    admin(t, Method::POST, "/api/v1/mailboxes", Some(body)).await
}

fn assert_no_secret(reply: &Reply) {
    assert!(
        !reply.text.contains(IMAP_SECRET) && !reply.text.contains(SMTP_SECRET),
        "a password leaked: {}",
        reply.text
    );
}

async fn mailboxes_are_created_listed_read_and_updated_without_ever_showing_a_password(
    backend: Backend,
) {
    let t = TestApp::new(backend).await;
    let created = create(&t, settings("Support@Shop.example")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_no_secret(&created);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(created.body["name"], "Support");
    assert_eq!(created.body["address"], "support@shop.example");
    assert_eq!(created.body["imap_folder"], "INBOX", "the default folder");
    assert_eq!(created.body["active"], true, "active unless said otherwise");
    assert_eq!(created.body["last_uid"], 0);
    assert_eq!(created.body["checked_at"], Value::Null);
    assert_eq!(
        created.body["imap"],
        json!({"host": "imap.shop.example", "port": 993, "security": "tls",
               "user": "support", "password_set": true})
    );
    assert_eq!(created.body["smtp"]["password_set"], true);
    assert!(created.body["imap"].get("password").is_none());
    assert!(created.body.get("uid_validity").is_none());

    let list = admin(&t, Method::GET, "/api/v1/mailboxes", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_no_secret(&list);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["items"][0]["id"].as_i64(), Some(id));

    let shown = admin(&t, Method::GET, &format!("/api/v1/mailboxes/{id}"), None).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_no_secret(&shown);
    assert_eq!(shown.body["address"], "support@shop.example");

    // A PATCH without passwords (and one with empty ones) keeps the stored passwords.
    let mut changed = settings("support@shop.example");
    changed["name"] = json!("Customer care");
    changed["imap_folder"] = json!("Support");
    changed["active"] = json!(false);
    changed["imap"].as_object_mut().unwrap().remove("password");
    changed["smtp"]["password"] = json!("");
    let patched = admin(
        &t,
        Method::PATCH,
        &format!("/api/v1/mailboxes/{id}"),
        Some(changed),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_no_secret(&patched);
    assert_eq!(patched.body["name"], "Customer care");
    assert_eq!(patched.body["imap_folder"], "Support");
    assert_eq!(patched.body["active"], false);
    assert_eq!(patched.body["imap"]["password_set"], true);
    assert_eq!(patched.body["smtp"]["password_set"], true);
    let stored = t.app.mailbox_for_channel(MailboxId(id)).await.unwrap();
    assert_eq!(stored.imap.password.as_deref(), Some(IMAP_SECRET));
    assert_eq!(stored.smtp.password.as_deref(), Some(SMTP_SECRET));

    // A new password replaces the old one.
    let mut new_password = settings("support@shop.example");
    new_password["imap"]["password"] = json!("a-new-one");
    let patched = admin(
        &t,
        Method::PATCH,
        &format!("/api/v1/mailboxes/{id}"),
        Some(new_password),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert!(!patched.text.contains("a-new-one"));
    let stored = t.app.mailbox_for_channel(MailboxId(id)).await.unwrap();
    assert_eq!(stored.imap.password.as_deref(), Some("a-new-one"));
    assert_eq!(stored.smtp.password.as_deref(), Some(SMTP_SECRET));

    // An SMTP relay that needs no sign-in.
    let mut relay = settings("sales@shop.example");
    relay["smtp"] = json!({"host": "relay.internal", "port": 25, "security": "none"});
    let relay = create(&t, relay).await;
    assert_eq!(relay.status, StatusCode::CREATED, "{}", relay.text);
    assert_eq!(
        relay.body["smtp"],
        json!({"host": "relay.internal", "port": 25, "security": "none",
               "user": null, "password_set": false})
    );

    let doc = t.get("/api/v1/openapi.json").await;
    for (path, method) in [
        ("/api/v1/mailboxes", "get"),
        ("/api/v1/mailboxes", "post"),
        ("/api/v1/mailboxes/{id}", "get"),
        ("/api/v1/mailboxes/{id}", "patch"),
        ("/api/v1/mailboxes/{id}/check", "post"),
        ("/api/v1/mailboxes/{id}/rejected", "get"),
    ] {
        assert!(
            doc.body["paths"][path].get(method).is_some(),
            "{method} {path} is documented"
        );
    }
    let codes = doc.body["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    assert!(codes.contains(&json!("mailbox_not_found")));
    t.finish().await;
}

async fn only_admins_may_see_or_change_mailboxes(backend: Backend) {
    let t = TestApp::new(backend).await;
    let id = create(&t, settings("support@shop.example")).await.body["id"]
        .as_i64()
        .unwrap();
    for token in [&t.agent, &t.readonly] {
        for (method, path, body) in [
            (Method::GET, "/api/v1/mailboxes".to_owned(), None),
            (
                Method::POST,
                "/api/v1/mailboxes".to_owned(),
                Some(settings("other@shop.example")),
            ),
            (Method::GET, format!("/api/v1/mailboxes/{id}"), None),
            (
                Method::PATCH,
                format!("/api/v1/mailboxes/{id}"),
                Some(settings("support@shop.example")),
            ),
            (Method::POST, format!("/api/v1/mailboxes/{id}/check"), None),
            (
                Method::GET,
                format!("/api/v1/mailboxes/{id}/rejected"),
                None,
            ),
        ] {
            let reply = t.call(method.clone(), &path, token, body, None).await;
            assert_eq!(
                (reply.status, reply.code()),
                (StatusCode::FORBIDDEN, "forbidden"),
                "{method} {path}"
            );
            assert_no_secret(&reply);
        }
    }
    assert_eq!(t.count("mailboxes").await, 1);

    for (method, path, body) in [
        (Method::GET, "/api/v1/mailboxes/999", None),
        (
            Method::PATCH,
            "/api/v1/mailboxes/999",
            Some(settings("x@shop.example")),
        ),
        (Method::POST, "/api/v1/mailboxes/999/check", None),
        (Method::GET, "/api/v1/mailboxes/999/rejected", None),
    ] {
        let reply = admin(&t, method.clone(), path, body).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::NOT_FOUND, "mailbox_not_found"),
            "{method} {path}"
        );
    }
    let bad_id = admin(&t, Method::GET, "/api/v1/mailboxes/abc", None).await;
    assert_eq!(bad_id.code(), "invalid_id");
    t.finish().await;
}

async fn a_mailbox_address_is_taken_once_and_bad_settings_are_refused(backend: Backend) {
    let t = TestApp::new(backend).await;
    assert_eq!(
        create(&t, settings("support@shop.example")).await.status,
        StatusCode::CREATED
    );
    let again = create(&t, settings("SUPPORT@shop.example")).await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "already_exists"),
        "{}",
        again.text
    );
    let other = create(&t, settings("sales@shop.example")).await;
    let other_id = other.body["id"].as_i64().unwrap();
    let moved = admin(
        &t,
        Method::PATCH,
        &format!("/api/v1/mailboxes/{other_id}"),
        Some(settings("support@shop.example")),
    )
    .await;
    assert_eq!(
        (moved.status, moved.code()),
        (StatusCode::CONFLICT, "already_exists")
    );

    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = settings("new@shop.example");
        change(&mut body);
        body
    };
    for (body, code) in [
        (
            with(&|b| b["imap"]["security"] = json!("ssl")),
            "invalid_body",
        ),
        (with(&|b| b["smtp"]["port"] = json!(70000)), "invalid_body"),
        (with(&|b| b["imap"]["port"] = json!(0)), "field_required"),
        (with(&|b| b["colour"] = json!("blue")), "invalid_body"),
        (
            with(&|b| {
                b["imap"].as_object_mut().unwrap().remove("password");
            }),
            "field_required",
        ),
        (with(&|b| b["imap"]["user"] = json!(" ")), "field_required"),
        (with(&|b| b["name"] = json!("")), "field_required"),
        (
            with(&|b| b["address"] = json!("not-an-address")),
            "invalid_email",
        ),
        (with(&|b| b["brand_id"] = json!(999)), "brand_not_found"),
    ] {
        let reply = create(&t, body.clone()).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{body}: {}",
            reply.text
        );
    }
    assert_eq!(t.count("mailboxes").await, 2, "refusals write nothing");
    t.finish().await;
}

async fn checking_a_mailbox_whose_servers_are_down_reports_and_records_it(backend: Backend) {
    let t = TestApp::new(backend).await;
    let port = closed_port();
    let id = create(&t, down_settings("down@shop.example", port))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let check = admin(
        &t,
        Method::POST,
        &format!("/api/v1/mailboxes/{id}/check"),
        None,
    )
    .await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.text);
    assert_no_secret(&check);
    assert_eq!(check.body["imap"]["ok"], false);
    assert_eq!(check.body["imap"]["code"], "mail_connect_failed");
    assert!(
        check.body["imap"]["message"]
            .as_str()
            .unwrap()
            .contains(&port.to_string()),
        "{}",
        check.text
    );
    assert_eq!(check.body["smtp"]["ok"], false);
    // Needs seva-channels' smtp::check to report an unreachable server as MailError::Connect
    // (today every lettre error becomes smtp_failed).
    assert_eq!(
        check.body["smtp"]["code"], "mail_connect_failed",
        "{}",
        check.text
    );

    let shown = admin(&t, Method::GET, &format!("/api/v1/mailboxes/{id}"), None).await;
    assert!(
        shown.body["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("connect")),
        "the IMAP failure is recorded: {}",
        shown.text
    );
    assert_eq!(
        shown.body["checked_at"],
        Value::Null,
        "checked_at is the last time the server answered"
    );
    t.finish().await;
}

async fn mail_set_aside_is_listed_per_mailbox(backend: Backend) {
    let t = TestApp::new(backend).await;
    let id = create(&t, settings("support@shop.example")).await.body["id"]
        .as_i64()
        .unwrap();
    let other = create(&t, settings("sales@shop.example")).await.body["id"]
        .as_i64()
        .unwrap();
    let empty = admin(
        &t,
        Method::GET,
        &format!("/api/v1/mailboxes/{id}/rejected"),
        None,
    )
    .await;
    assert_eq!(empty.body["items"], json!([]));
    let mailbox = t.app.mailbox_for_channel(MailboxId(id)).await.unwrap();
    t.app
        .set_aside_email(
            &mailbox,
            &RejectedEmail {
                size: 52_000_000,
                sender: Some("ali@example.com".into()),
                subject: Some("فاکتور بزرگ".into()),
                error: "too_large",
                detail: "52000000 bytes; the limit is 41943040".into(),
            },
            None,
            Position {
                uid_validity: 5,
                uid: 7,
            },
        )
        .await
        .unwrap();
    let listed = admin(
        &t,
        Method::GET,
        &format!("/api/v1/mailboxes/{id}/rejected"),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["uid"], 7);
    assert_eq!(items[0]["size"], 52_000_000);
    assert_eq!(items[0]["sender"], "ali@example.com");
    assert_eq!(items[0]["subject"], "فاکتور بزرگ");
    assert_eq!(items[0]["error"], "too_large");
    let elsewhere = admin(
        &t,
        Method::GET,
        &format!("/api/v1/mailboxes/{other}/rejected"),
        None,
    )
    .await;
    assert_eq!(elsewhere.body["items"], json!([]));
    let moved = admin(&t, Method::GET, &format!("/api/v1/mailboxes/{id}"), None).await;
    assert_eq!(moved.body["last_uid"], 7, "the fetcher moves past it");
    t.finish().await;
}

fn location(reply: &Reply) -> String {
    reply.headers[header::LOCATION].to_str().unwrap().to_owned()
}

fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap()
}

async fn admins_add_edit_and_check_mailboxes_on_the_settings_pages(backend: Backend) {
    let t = TestApp::new(backend).await;
    let admin_session = sign_in(&t, "admin@shop.example").await;
    let agent_session = sign_in(&t, "sara@shop.example").await;

    let settings_page = t
        .page(Method::GET, "/settings", None, &admin_session, None)
        .await;
    assert!(settings_page.text.contains("href=\"/settings/mailboxes\""));
    let agents_settings = t
        .page(Method::GET, "/settings", None, &agent_session, None)
        .await;
    assert!(!agents_settings.text.contains("/settings/mailboxes"));
    for path in ["/settings/mailboxes", "/settings/mailboxes/new"] {
        let refused = t.page(Method::GET, path, None, &agent_session, None).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
    }

    let empty = t
        .page(
            Method::GET,
            "/settings/mailboxes",
            None,
            &admin_session,
            None,
        )
        .await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.text.contains("No mailboxes yet"));

    let new = t
        .page(
            Method::GET,
            "/settings/mailboxes/new",
            None,
            &admin_session,
            None,
        )
        .await;
    assert_eq!(new.status, StatusCode::OK);
    let csrf = hidden_field(&new.text, "csrf");
    let port = closed_port().to_string();
    // The form as a browser sends it; `changes` replace fields, and a field set to None is
    // left out (an unticked checkbox).
    let fields = |csrf: &str, changes: &[(&str, Option<&str>)]| {
        let mut fields = vec![
            ("csrf", csrf),
            ("name", "Support desk"),
            ("address", "help@shop.example"),
            ("brand", ""),
            ("imap_host", "127.0.0.1"),
            ("imap_port", port.as_str()),
            ("imap_security", "none"),
            ("imap_user", "help"),
            ("imap_password", ""),
            ("imap_folder", ""),
            ("smtp_host", "127.0.0.1"),
            ("smtp_port", port.as_str()),
            ("smtp_security", "none"),
            ("smtp_user", ""),
            ("smtp_password", ""),
            ("active", "1"),
        ];
        for (name, value) in changes {
            let at = fields.iter().position(|(n, _)| n == name).unwrap();
            match value {
                Some(value) => fields[at].1 = value,
                None => {
                    fields.remove(at);
                }
            }
        }
        form(&fields)
    };
    let with_password = [("imap_password", Some(IMAP_SECRET))];

    let forged = t
        .page(
            Method::POST,
            "/settings/mailboxes",
            Some(&fields("forged", &with_password)),
            &admin_session,
            None,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let by_agent = t
        .page(
            Method::POST,
            "/settings/mailboxes",
            Some(&fields(&csrf, &with_password)),
            &agent_session,
            None,
        )
        .await;
    assert_eq!(by_agent.status, StatusCode::FORBIDDEN);
    let no_password = t
        .page(
            Method::POST,
            "/settings/mailboxes",
            Some(&fields(&csrf, &[])),
            &admin_session,
            None,
        )
        .await;
    assert_eq!(no_password.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_password.text.contains("Enter the IMAP password."));
    assert!(
        no_password.text.contains("value=\"Support desk\""),
        "what was typed stays"
    );
    assert_eq!(t.count("mailboxes").await, 0);

    let created = t
        .page(
            Method::POST,
            "/settings/mailboxes",
            Some(&fields(&csrf, &with_password)),
            &admin_session,
            None,
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text);
    let page_path = location(&created);
    assert!(page_path.ends_with("?notice=created"), "{page_path}");
    let page_path = page_path.trim_end_matches("?notice=created").to_owned();
    let id: i64 = page_path.rsplit('/').next().unwrap().parse().unwrap();
    let stored = t.app.mailbox_for_channel(MailboxId(id)).await.unwrap();
    assert_eq!(stored.imap.password.as_deref(), Some(IMAP_SECRET));
    assert_eq!(stored.imap_folder, "INBOX");
    assert_eq!(stored.smtp.user, None);

    let list = t
        .page(
            Method::GET,
            "/settings/mailboxes",
            None,
            &admin_session,
            None,
        )
        .await;
    assert!(list.text.contains("help@shop.example"));
    assert!(list.text.contains("Support desk"));
    let shown = t
        .page(
            Method::GET,
            &format!("{page_path}?notice=created"),
            None,
            &admin_session,
            None,
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.text.contains("Mailbox added."));
    assert!(
        !shown.text.contains(IMAP_SECRET),
        "no page shows a password"
    );
    assert!(shown.text.contains("Leave this empty to keep it."));

    let again = t
        .page(
            Method::POST,
            "/settings/mailboxes",
            Some(&fields(&csrf, &with_password)),
            &admin_session,
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again
            .text
            .contains("Another mailbox already uses this email address.")
    );

    // Editing with the password left empty keeps it.
    let edited = fields(&csrf, &[("name", Some("Help desk")), ("active", None)]);
    let saved = t
        .page(
            Method::POST,
            &page_path,
            Some(&edited),
            &admin_session,
            None,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    assert_eq!(location(&saved), format!("{page_path}?notice=saved"));
    let stored = t.app.mailbox_for_channel(MailboxId(id)).await.unwrap();
    assert_eq!(stored.name, "Help desk");
    assert!(!stored.active);
    assert_eq!(stored.imap.password.as_deref(), Some(IMAP_SECRET));
    let bad_port = fields(&csrf, &[("imap_port", Some("ninety"))]);
    let refused = t
        .page(
            Method::POST,
            &page_path,
            Some(&bad_port),
            &admin_session,
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("A port is a number"));
    let persian_port = fields(&csrf, &[("imap_port", Some("۹۹۳"))]);
    let saved = t
        .page(
            Method::POST,
            &page_path,
            Some(&persian_port),
            &admin_session,
            None,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let stored = t.app.mailbox_for_channel(MailboxId(id)).await.unwrap();
    assert_eq!(stored.imap.port, 993);

    // The check, in Persian: both servers are down, and the IMAP error is kept.
    let back = fields(&csrf, &[]);
    t.page(Method::POST, &page_path, Some(&back), &admin_session, None)
        .await;
    let checked = t
        .page(
            Method::POST,
            &format!("{page_path}/check"),
            Some(&form(&[("csrf", &csrf)])),
            &admin_session,
            Some("fa"),
        )
        .await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.text);
    let text = plain(&checked.text);
    assert!(text.contains("dir=\"rtl\""));
    assert!(
        text.contains("ایمیل ورودی (IMAP)</strong>: اتصال به سرور ممکن نیست."),
        "{text}"
    );
    assert_eq!(
        text.matches("data-ok=\"false\"").count(),
        2,
        "both servers failed"
    );
    let stored = t.app.mailbox_for_channel(MailboxId(id)).await.unwrap();
    assert!(stored.last_error.is_some() && stored.checked_at.is_none());
    let list = t
        .page(
            Method::GET,
            "/settings/mailboxes",
            None,
            &admin_session,
            None,
        )
        .await;
    assert!(list.text.contains(stored.last_error.as_deref().unwrap()));
    let forged_check = t
        .page(
            Method::POST,
            &format!("{page_path}/check"),
            Some("csrf=forged"),
            &admin_session,
            None,
        )
        .await;
    assert_eq!(forged_check.status, StatusCode::FORBIDDEN);

    // Mail set aside is listed on the mailbox's page with its reason translated.
    t.app
        .set_aside_email(
            &stored,
            &RejectedEmail {
                size: 10,
                sender: Some("ali@example.com".into()),
                subject: Some("Broken".into()),
                error: "unreadable",
                detail: "no headers".into(),
            },
            None,
            Position {
                uid_validity: 1,
                uid: 3,
            },
        )
        .await
        .unwrap();
    let shown = t
        .page(Method::GET, &page_path, None, &admin_session, None)
        .await;
    assert!(shown.text.contains("data-uid=\"3\""));
    assert!(shown.text.contains("Unreadable") && shown.text.contains("no headers"));
    let missing = t
        .page(
            Method::GET,
            "/settings/mailboxes/999",
            None,
            &admin_session,
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    t.finish().await;
}

async fn email_replies_show_their_delivery_in_the_api_and_under_the_reply(backend: Backend) {
    let t = TestApp::new(backend).await;
    assert_eq!(
        create(&t, settings("support@shop.example")).await.status,
        StatusCode::CREATED
    );
    let opened = t
        .post_conversation(
            json!({"customer": {"email": "ali@example.com"}, "channel": "email",
            "subject": "Order", "message": {"text": "Where is it?"}}),
        )
        .await;
    let id = opened.body["id"].as_i64().unwrap();
    let note = t.message(id, "note", "internal").await;
    assert!(note.body.get("delivery").is_none(), "notes are not emailed");
    let reply = t.message(id, "reply", "It left today").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["delivery"]["status"], "queued");
    assert_eq!(reply.body["delivery"]["attempts"], 0);
    assert_eq!(reply.body["delivery"]["recipient"], "ali@example.com");

    let session = sign_in(&t, "sara@shop.example").await;
    let page = |session: String| {
        let t = &t;
        async move {
            let page = t
                .page(
                    Method::GET,
                    &format!("/conversations/{id}"),
                    None,
                    &session,
                    None,
                )
                .await;
            plain(&page.text)
        }
    };
    let html = page(session.clone()).await;
    assert!(html.contains("data-delivery=\"sending\""));
    assert!(html.contains("Sending by email to ali@example.com…"));

    let claimed = t.app.claim_outbox(10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    t.app
        .email_failed(claimed[0], "smtp.shop.example: connection refused")
        .await
        .unwrap();
    t.app
        .email_failed(claimed[0], "still refused")
        .await
        .unwrap();
    let html = page(session.clone()).await;
    assert!(
        html.contains("Retrying (2 tries so far): still refused"),
        "{html}"
    );
    while t
        .app
        .email_failed(claimed[0], "gone for good")
        .await
        .unwrap()
        != seva_domain::mail::DeliveryStatus::Failed
    {}
    let html = page(session.clone()).await;
    assert!(html.contains("data-delivery=\"failed\""));
    assert!(html.contains("Not delivered to ali@example.com: gone for good"));

    let second = t.message(id, "reply", "Sorry, again").await;
    let second_id = second.body["id"].as_i64().unwrap();
    let claimed = t.app.claim_outbox(10).await.unwrap();
    t.app
        .email_sent(claimed[0], b"Subject: Re: Order\r\n\r\nSorry, again\r\n")
        .await
        .unwrap();
    let html = page(session.clone()).await;
    assert!(html.contains("Sent by email to ali@example.com"));
    assert!(html.contains("data-delivery=\"sent\""));

    // The email as sent is kept and downloadable from the thread; other messages have none.
    assert!(
        html.contains(&format!("/messages/{second_id}/source")),
        "{html}"
    );
    let note_id = note.body["id"].as_i64().unwrap();
    assert!(!html.contains(&format!("/messages/{note_id}/source")));
    let source = t
        .page(
            Method::GET,
            &format!("/messages/{second_id}/source"),
            None,
            &session,
            None,
        )
        .await;
    assert_eq!(source.status, StatusCode::OK);
    assert_eq!(source.headers["content-type"], "message/rfc822");
    assert_eq!(source.text, "Subject: Re: Order\r\n\r\nSorry, again\r\n");
    let missing = t
        .page(
            Method::GET,
            &format!("/messages/{note_id}/source"),
            None,
            &session,
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let shown = t.get(&format!("/api/v1/conversations/{id}")).await;
    let messages = shown.body["messages"].as_array().unwrap();
    let deliveries: Vec<&Value> = messages.iter().map(|m| &m["delivery"]).collect();
    assert_eq!(deliveries[0], &Value::Null, "the customer's mail");
    assert_eq!(deliveries[1], &Value::Null, "the note");
    assert_eq!(deliveries[2]["status"], "failed");
    assert_eq!(deliveries[2]["last_error"], "gone for good");
    assert_eq!(deliveries[3]["status"], "sent");
    assert_eq!(deliveries[3]["attempts"], 1);
    assert!(deliveries[3]["sent_at"].is_string());
    assert_eq!(messages[3]["id"].as_i64(), Some(second_id));
    let listed = t.get(&format!("/api/v1/conversations/{id}/messages")).await;
    assert_eq!(listed.body["items"][2]["delivery"]["status"], "failed");

    // A conversation that did not come by email sends nothing.
    let api = t.open_conversation("zed@example.com").await;
    let reply = t.message(api, "reply", "Hi").await;
    assert!(reply.body.get("delivery").is_none());
    t.finish().await;
}
