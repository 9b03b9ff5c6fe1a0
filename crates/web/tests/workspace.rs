//! The agent workspace over real HTTP on both backends: inbox views, filters and pages, saved
//! views, the conversation page and its forms, bulk actions, preferences, read-only users, CSRF,
//! and the live event stream.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::json;
use seva_store::Backend;
use tower::ServiceExt as _;

use common::*;

on_both_backends!(
    the_inbox_has_views_filters_pages_and_saved_views,
    agents_reply_note_assign_and_resolve_on_the_conversation_page,
    bulk_actions_change_every_selected_conversation,
    read_only_agents_see_no_forms_and_change_nothing,
    persian_agents_get_right_to_left_pages_solar_hijri_dates_and_persian_digits,
    watching_pages_hear_changes_and_who_else_is_there,
    replies_carry_files_that_agents_download,
    preferences_and_saved_views_through_the_api,
);

fn rows(html: &str) -> usize {
    html.matches("data-row=").count()
}

fn location(reply: &Reply) -> String {
    reply.headers[header::LOCATION].to_str().unwrap().to_owned()
}

async fn the_inbox_has_views_filters_pages_and_saved_views(backend: Backend) {
    let t = TestApp::new(backend).await;
    let sara = t.app.user_by_email("sara@shop.example").await.unwrap().id.0;
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(t.open_conversation(&format!("c{n}@example.com")).await);
        t.clock.advance(chrono::Duration::seconds(1));
    }
    for id in &ids[..3] {
        assert_eq!(
            t.patch(*id, json!({"assignee_id": sara})).await.status,
            StatusCode::OK
        );
    }
    t.patch(ids[5], json!({"priority": "urgent", "tags": ["vip"]}))
        .await;
    t.patch(ids[6], json!({"status": "resolved"})).await;
    let session = sign_in(&t, "sara@shop.example").await;

    let all = t.page(Method::GET, "/inbox", None, &session, None).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(rows(&all.text), 25, "the first page holds 25");
    assert!(all.text.contains("Older →"));
    let next = all.text.split("rel=\"next\"").next().unwrap();
    let next_href = next
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let older = t
        .page(
            Method::GET,
            &next_href.replace("&#38;", "&"),
            None,
            &session,
            None,
        )
        .await;
    assert_eq!(
        rows(&older.text),
        4,
        "29 unresolved in all: 25 + 4; {next_href}"
    );

    let mine = t
        .page(Method::GET, "/inbox?view=mine", None, &session, None)
        .await;
    assert_eq!(rows(&mine.text), 3);
    let unassigned = t
        .page(
            Method::GET,
            "/inbox?view=unassigned&status=any",
            None,
            &session,
            None,
        )
        .await;
    assert_eq!(rows(&unassigned.text), 25);
    let urgent = t
        .page(Method::GET, "/inbox?priority=urgent", None, &session, None)
        .await;
    assert_eq!(rows(&urgent.text), 1);
    assert!(urgent.text.contains(&format!("data-row=\"{}\"", ids[5])));
    let tagged = t
        .page(Method::GET, "/inbox?tag=vip", None, &session, None)
        .await;
    assert_eq!(rows(&tagged.text), 1);
    let resolved = t
        .page(Method::GET, "/inbox?status=resolved", None, &session, None)
        .await;
    assert_eq!(rows(&resolved.text), 1);
    let teams = t
        .page(Method::GET, "/inbox?view=teams", None, &session, None)
        .await;
    assert_eq!(rows(&teams.text), 0, "Sara is in no team");
    let fragment = t
        .page(
            Method::GET,
            "/inbox?priority=urgent&fragment=list",
            None,
            &session,
            None,
        )
        .await;
    assert!(!fragment.text.contains("<html") && rows(&fragment.text) == 1);

    // Save the urgent filter as a view; it appears in the list and can be deleted.
    let csrf = hidden_field(&all.text, "csrf");
    let saved = t
        .page(
            Method::POST,
            "/views",
            Some(&format!(
                "csrf={csrf}&name=Urgent+ones&query=view%3Dall%26priority%3Durgent"
            )),
            &session,
            None,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert!(location(&saved).contains("notice=view-saved"));
    let page = t
        .page(Method::GET, &location(&saved), None, &session, None)
        .await;
    assert!(page.text.contains("Urgent ones") && page.text.contains("View saved."));
    assert!(
        page.text
            .contains("href=\"/inbox?view=all&#38;priority=urgent\" aria-current=\"page\"")
    );
    let forged = t
        .page(
            Method::POST,
            "/views",
            Some("csrf=nope&name=X&query=view%3Dall"),
            &session,
            None,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let view_id = page
        .text
        .split("/views/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let deleted = t
        .page(
            Method::POST,
            &format!("/views/{view_id}/delete"),
            Some(&format!("csrf={csrf}")),
            &session,
            None,
        )
        .await;
    assert!(location(&deleted).contains("notice=view-deleted"));
    assert_eq!(t.count("saved_views").await, 0);

    // A conversation page links to its neighbours in the view it was opened from.
    let middle = t
        .page(
            Method::GET,
            &format!("/conversations/{}?view=all", ids[20]),
            None,
            &session,
            None,
        )
        .await;
    assert!(middle.text.contains(&format!(
        "href=\"/conversations/{}?view=all\" data-key=\"k\"",
        ids[21]
    )));
    assert!(middle.text.contains(&format!(
        "href=\"/conversations/{}?view=all\" data-key=\"j\"",
        ids[19]
    )));
    let mine_first = t
        .page(
            Method::GET,
            &format!("/conversations/{}?view=mine", ids[2]),
            None,
            &session,
            None,
        )
        .await;
    assert!(
        !mine_first.text.contains("data-key=\"k\""),
        "the newest of mine has none above"
    );
    assert!(mine_first.text.contains(&format!(
        "href=\"/conversations/{}?view=mine\" data-key=\"j\"",
        ids[1]
    )));

    // Search from the same box finds by any word.
    let found = t
        .page(Method::GET, "/inbox?q=Hi", None, &session, None)
        .await;
    assert!(found.text.contains("<mark>Hi</mark>"), "{}", found.text);
    t.finish().await;
}

async fn agents_reply_note_assign_and_resolve_on_the_conversation_page(backend: Backend) {
    let t = TestApp::new(backend).await;
    let id = t.open_conversation("noor@example.com").await;
    let other = t.open_conversation("noor@example.com").await;
    let session = sign_in(&t, "sara@shop.example").await;
    let url = format!("/conversations/{id}?view=all");
    let page = t.page(Method::GET, &url, None, &session, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("noor@example.com"),
        "the customer is beside the thread"
    );
    assert!(
        page.text
            .contains(&format!("/conversations/{other}?view=all")),
        "and their other conversation"
    );
    assert!(page.text.contains("New conversation by"));
    let csrf = hidden_field(&page.text, "csrf");
    let messages = t.count("messages").await;

    let forged = t
        .page(
            Method::POST,
            &format!("/conversations/{id}/messages"),
            Some("kind=reply&text=Hello&csrf=forged"),
            &session,
            None,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.count("messages").await,
        messages,
        "a forged form writes nothing"
    );

    let sent = t
        .page(
            Method::POST,
            &format!("/conversations/{id}/messages"),
            Some(&format!(
                "kind=reply&text=Your+parcel+left+today&back=view%3Dall&csrf={csrf}"
            )),
            &session,
            None,
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&sent), format!("{url}&notice=sent"));
    let empty = t
        .page(
            Method::POST,
            &format!("/conversations/{id}/messages"),
            Some(&format!("kind=note&text=+&csrf={csrf}")),
            &session,
            None,
        )
        .await;
    assert!(location(&empty).ends_with("notice=empty"));
    assert_eq!(t.count("messages").await, messages + 1);

    // With htmx the answer is the refreshed thread, with what happened.
    let note = t
        .send(
            Request::post(format!("/conversations/{id}/messages"))
                .header(header::COOKIE, &session)
                .header("hx-request", "true")
                .header("x-seva-csrf", &csrf)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("kind=note&text=Customer+is+a+regular"))
                .unwrap(),
        )
        .await;
    assert_eq!(note.status, StatusCode::OK);
    assert_eq!(note.headers["x-seva-clear"], "1");
    assert!(!note.text.contains("<html"));
    assert!(note.text.contains("Note added.") && note.text.contains("item-note"));

    for form in ["assignee=me", "status=resolved"] {
        let done = t
            .page(
                Method::POST,
                &format!("/conversations/{id}"),
                Some(&format!("{form}&back=view%3Dall&csrf={csrf}")),
                &session,
                None,
            )
            .await;
        assert!(location(&done).ends_with("notice=updated"), "{form}");
    }
    let page = t
        .page(Method::GET, &location(&sent), None, &session, None)
        .await;
    assert!(page.text.contains("Your parcel left today"));
    assert!(page.text.contains("Customer is a regular"));
    assert!(plain(&page.text).contains("Sara assigned the conversation to Sara"));
    assert!(plain(&page.text).contains("Sara set the status to Resolved"));
    assert!(page.text.contains("Reply sent."));
    let c = t
        .app
        .conversation(seva_domain::ConversationId(id))
        .await
        .unwrap();
    assert_eq!(c.status, seva_domain::Status::Resolved);
    assert!(c.assignee_id.is_some());

    let bad = t
        .page(
            Method::POST,
            &format!("/conversations/{id}"),
            Some(&format!("priority=sky-high&csrf={csrf}")),
            &session,
            None,
        )
        .await;
    assert!(location(&bad).ends_with("notice=error"));
    let missing = t
        .page(Method::GET, "/conversations/999999", None, &session, None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    t.finish().await;
}

async fn bulk_actions_change_every_selected_conversation(backend: Backend) {
    let t = TestApp::new(backend).await;
    let a = t.open_conversation("a@example.com").await;
    let b = t.open_conversation("b@example.com").await;
    let c = t.open_conversation("c@example.com").await;
    t.patch(c, json!({"status": "closed"})).await;
    let session = sign_in(&t, "sara@shop.example").await;
    let inbox = t.page(Method::GET, "/inbox", None, &session, None).await;
    let csrf = hidden_field(&inbox.text, "csrf");
    let bulk = |body: String| {
        let t = &t;
        let session = session.clone();
        async move {
            t.page(Method::POST, "/inbox/bulk", Some(&body), &session, None)
                .await
        }
    };
    t.patch(a, json!({"tags": ["vip"]})).await;
    let tagged = bulk(format!("csrf={csrf}&ids={a}&ids={b}&action=tag&tag=refund")).await;
    assert!(
        location(&tagged).contains("notice=bulk-done&n=2"),
        "{}",
        location(&tagged)
    );
    let resolved = bulk(format!(
        "csrf={csrf}&ids={a}&ids={b}&ids={c}&action=resolve&back=view%3Dall"
    ))
    .await;
    assert!(
        location(&resolved).contains("notice=bulk-done&n=2"),
        "the closed one is skipped: {}",
        location(&resolved)
    );
    let urgent = bulk(format!(
        "csrf={csrf}&ids={a}&action=&action_more=priority_urgent"
    ))
    .await;
    assert!(location(&urgent).contains("n=1"));
    for (id, tags) in [(a, vec!["refund", "vip"]), (b, vec!["refund"])] {
        let conv = t
            .app
            .conversation(seva_domain::ConversationId(id))
            .await
            .unwrap();
        assert_eq!(conv.status, seva_domain::Status::Resolved);
        assert_eq!(conv.tags, tags, "the tag is added to what was there");
    }
    let api = t.patch(b, json!({"add_tags": ["gift"]})).await;
    assert_eq!(api.body["tags"], json!(["gift", "refund"]), "{}", api.text);
    let conv = t
        .app
        .conversation(seva_domain::ConversationId(a))
        .await
        .unwrap();
    assert_eq!(conv.priority, seva_domain::Priority::Urgent);
    let forged = bulk(format!("csrf=x&ids={a}&action=close")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let page = t
        .page(Method::GET, &location(&resolved), None, &session, None)
        .await;
    assert!(plain(&page.text).contains("2 conversations changed."));
    t.finish().await;
}

async fn read_only_agents_see_no_forms_and_change_nothing(backend: Backend) {
    let t = TestApp::new(backend).await;
    let id = t.open_conversation("r@example.com").await;
    let session = sign_in(&t, "ro@shop.example").await;
    let inbox = t.page(Method::GET, "/inbox", None, &session, None).await;
    assert_eq!(rows(&inbox.text), 1);
    assert!(!inbox.text.contains("action=\"/inbox/bulk\""));
    let csrf = hidden_field(&inbox.text, "csrf");
    let page = t
        .page(
            Method::GET,
            &format!("/conversations/{id}"),
            None,
            &session,
            None,
        )
        .await;
    assert!(
        page.text
            .contains("Your role can read conversations but not change them.")
    );
    assert!(!page.text.contains("id=\"reply\""));
    let messages = t.count("messages").await;
    let events = t.count("events").await;
    let reply = t
        .page(
            Method::POST,
            &format!("/conversations/{id}/messages"),
            Some(&format!("kind=reply&text=Hi&csrf={csrf}")),
            &session,
            None,
        )
        .await;
    assert!(location(&reply).ends_with("notice=forbidden"));
    let change = t
        .page(
            Method::POST,
            &format!("/conversations/{id}"),
            Some(&format!("status=closed&csrf={csrf}")),
            &session,
            None,
        )
        .await;
    assert!(location(&change).ends_with("notice=forbidden"));
    let bulk = t
        .page(
            Method::POST,
            "/inbox/bulk",
            Some(&format!("csrf={csrf}&ids={id}&action=close")),
            &session,
            None,
        )
        .await;
    assert!(location(&bulk).contains("notice=error"));
    assert_eq!(
        (t.count("messages").await, t.count("events").await),
        (messages, events)
    );
    let shown = t
        .page(Method::GET, &location(&reply), None, &session, None)
        .await;
    assert!(
        shown
            .text
            .contains("Your role cannot change conversations.")
    );
    t.finish().await;
}

async fn persian_agents_get_right_to_left_pages_solar_hijri_dates_and_persian_digits(
    backend: Backend,
) {
    let t = TestApp::new(backend).await;
    t.open_conversation("p@example.com").await;
    let session = sign_in(&t, "sara@shop.example").await;
    let settings = t.page(Method::GET, "/settings", None, &session, None).await;
    assert!(settings.text.contains("Asia/Tehran") && settings.text.contains("فارسی"));
    let csrf = hidden_field(&settings.text, "csrf");
    let bad = t
        .page(
            Method::POST,
            "/settings",
            Some(&format!("csrf={csrf}&language=fa&time_zone=Mars%2FOlympus")),
            &session,
            None,
        )
        .await;
    assert_eq!(location(&bad), "/settings?notice=error");
    let saved = t
        .page(
            Method::POST,
            "/settings",
            Some(&format!(
                "csrf={csrf}&language=fa&time_zone=Asia%2FTehran&digits="
            )),
            &session,
            None,
        )
        .await;
    assert_eq!(location(&saved), "/settings?notice=saved");
    let inbox = t
        .page(Method::GET, "/inbox?status=any", None, &session, None)
        .await;
    assert!(inbox.text.contains("<html lang=\"fa\" dir=\"rtl\">"));
    assert!(inbox.text.contains("همهٔ گفتگوها"), "view names in Persian");
    // 2026-11-18 11:06 UTC is 27 Aban 1405, 14:36 in Tehran; the list shows the time today.
    assert!(
        inbox.text.contains("title=\"۱۴۰۵/۰۸/۲۷ ۱۴:۳۶\""),
        "{}",
        inbox.text
    );
    assert!(
        inbox.text.contains("dir=\"auto\""),
        "user text keeps its own direction"
    );

    let digits = t
        .page(
            Method::POST,
            "/settings",
            Some(&format!(
                "csrf={csrf}&language=mr&time_zone=Asia%2FKolkata&digits=native"
            )),
            &session,
            None,
        )
        .await;
    assert_eq!(digits.status, StatusCode::SEE_OTHER);
    let inbox = t.page(Method::GET, "/inbox", None, &session, None).await;
    assert!(inbox.text.contains("<html lang=\"mr\" dir=\"ltr\">"));
    assert!(
        inbox.text.contains("title=\"२०२६/११/१८ १६:३६\""),
        "{}",
        inbox.text
    );
    t.finish().await;
}

/// Reads a server-sent event stream until `want` appears, or fails after a few seconds.
async fn read_until(body: &mut Body, want: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains(want) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no {want:?} in {seen:?}"))
            .expect("the stream stays open")
            .unwrap();
        if let Some(data) = frame.data_ref() {
            seen.push_str(&plain(&String::from_utf8_lossy(data)));
        }
    }
    seen
}

async fn open_stream(t: &TestApp, session: &str, path: &str) -> Body {
    let response = t
        .router
        .clone()
        .oneshot(
            Request::get(path)
                .header(header::COOKIE, session)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    response.into_body()
}

async fn watching_pages_hear_changes_and_who_else_is_there(backend: Backend) {
    let t = TestApp::new(backend).await;
    let id = t.open_conversation("live@example.com").await;
    let elsewhere = t.open_conversation("other@example.com").await;
    let admin = sign_in(&t, "admin@shop.example").await;
    let sara = sign_in(&t, "sara@shop.example").await;
    let mut inbox = open_stream(&t, &admin, "/live").await;
    let mut watching = open_stream(&t, &admin, &format!("/live?conversation={id}")).await;

    // Sara opens the same conversation: the admin sees her there, then typing.
    let saras = open_stream(&t, &sara, &format!("/live?conversation={id}")).await;
    let seen = read_until(&mut watching, "is viewing").await;
    assert!(
        seen.contains("event: presence") && seen.contains("Sara is viewing"),
        "{seen}"
    );
    let page = t
        .page(
            Method::GET,
            &format!("/conversations/{id}"),
            None,
            &sara,
            None,
        )
        .await;
    let csrf = hidden_field(&page.text, "csrf");
    let typing = t
        .page(
            Method::POST,
            &format!("/conversations/{id}/typing"),
            Some(&format!("typing=1&csrf={csrf}")),
            &sara,
            None,
        )
        .await;
    assert_eq!(typing.status, StatusCode::NO_CONTENT);
    read_until(&mut watching, "Sara is typing").await;

    // A change elsewhere reaches the inbox but not this conversation's page.
    t.message(elsewhere, "note", "elsewhere").await;
    read_until(&mut inbox, &format!("data: {elsewhere}")).await;
    t.message(id, "customer", "Where is my parcel?").await;
    let seen = read_until(&mut watching, "event: changed").await;
    assert!(
        seen.contains(&format!("data: {id}")) && !seen.contains(&format!("data: {elsewhere}\n"))
    );

    // Sara leaves: her stream closes and the admin sees nobody.
    drop(saras);
    read_until(&mut watching, "data: {\"text\":\"\"}").await;
    t.finish().await;
}

/// A `multipart/form-data` body: text fields, then files as (name, type, bytes).
fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "sevaTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (filename, content_type, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_multipart(t: &TestApp, path: &str, session: &str, form: (String, Vec<u8>)) -> Reply {
    t.send(
        Request::post(path)
            .header(header::COOKIE, session)
            .header(header::CONTENT_TYPE, form.0)
            .body(Body::from(form.1))
            .unwrap(),
    )
    .await
}

async fn replies_carry_files_that_agents_download(backend: Backend) {
    let t = TestApp::new(backend).await;
    let id = t.open_conversation("files@example.com").await;
    let session = sign_in(&t, "sara@shop.example").await;
    let page = t
        .page(
            Method::GET,
            &format!("/conversations/{id}"),
            None,
            &session,
            None,
        )
        .await;
    let csrf = hidden_field(&page.text, "csrf");
    let pdf: &[u8] = b"%PDF-1.4 invoice 1405";
    let sent = post_multipart(
        &t,
        &format!("/conversations/{id}/messages"),
        &session,
        multipart(
            &[
                ("csrf", &csrf),
                ("kind", "reply"),
                ("text", "Here is your invoice"),
            ],
            &[
                ("فاکتور.pdf", "application/pdf", pdf),
                ("", "application/octet-stream", b""),
            ],
        ),
    )
    .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text);
    assert!(
        location(&sent).ends_with("notice=sent"),
        "{}",
        location(&sent)
    );
    assert_eq!(
        t.count("attachments").await,
        1,
        "the empty file input adds nothing"
    );

    let page = t
        .page(
            Method::GET,
            &format!("/conversations/{id}"),
            None,
            &session,
            None,
        )
        .await;
    assert!(page.text.contains("فاکتور.pdf") && plain(&page.text).contains("1 KB"));
    let href = page
        .text
        .split("href=\"/attachments/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let file = t
        .page(
            Method::GET,
            &format!("/attachments/{href}"),
            None,
            &session,
            None,
        )
        .await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.headers[header::CONTENT_TYPE], "application/pdf");
    let disposition = file.headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment;")
            && disposition.contains("filename*=UTF-8''%D9%81%D8%A7%DA%A9%D8%AA%D9%88%D8%B1.pdf"),
        "{disposition}"
    );
    assert_eq!(file.text.as_bytes(), pdf);

    // Too large: refused with a clear notice, and nothing is written.
    let (messages, attachments) = (t.count("messages").await, t.count("attachments").await);
    let big = vec![b'x'; seva_app::attachments::MAX_FILE_BYTES + 1];
    let refused = post_multipart(
        &t,
        &format!("/conversations/{id}/messages"),
        &session,
        multipart(
            &[("csrf", &csrf), ("kind", "note"), ("text", "big")],
            &[("big.bin", "application/octet-stream", &big)],
        ),
    )
    .await;
    assert!(
        location(&refused).ends_with("notice=too-large"),
        "{}",
        location(&refused)
    );
    assert_eq!(
        (t.count("messages").await, t.count("attachments").await),
        (messages, attachments)
    );
    let shown = t
        .page(Method::GET, &location(&refused), None, &session, None)
        .await;
    assert!(
        shown
            .text
            .contains("A file is too large: each may be at most 10 MB.")
    );

    let forged = post_multipart(
        &t,
        &format!("/conversations/{id}/messages"),
        &session,
        multipart(
            &[("csrf", "forged"), ("text", "x")],
            &[("a.txt", "text/plain", b"a")],
        ),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let missing = t
        .page(Method::GET, "/attachments/999999", None, &session, None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let anonymous = t
        .page(Method::GET, &format!("/attachments/{href}"), None, "", None)
        .await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    t.finish().await;
}

async fn preferences_and_saved_views_through_the_api(backend: Backend) {
    let t = TestApp::new(backend).await;
    let call = |method: Method, path: &str, body: Option<serde_json::Value>| {
        let t = &t;
        let path = path.to_owned();
        async move { t.call(method, &path, &t.agent, body, None).await }
    };
    let me = call(
        Method::PATCH,
        "/api/v1/me",
        Some(json!({"language": "fa", "time_zone": "Asia/Tehran", "digits": "latn"})),
    )
    .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(
        (
            &me.body["language"],
            &me.body["time_zone"],
            &me.body["digits"]
        ),
        (&json!("fa"), &json!("Asia/Tehran"), &json!("latn"))
    );
    let kept = call(Method::PATCH, "/api/v1/me", Some(json!({"digits": null}))).await;
    assert_eq!(
        kept.body["language"], "fa",
        "a field left out keeps its value"
    );
    assert!(kept.body["digits"].is_null());
    for (body, code) in [
        (json!({"language": "de"}), "invalid_language"),
        (json!({"time_zone": "Mars/Olympus"}), "invalid_value"),
        (json!({"digits": "roman"}), "invalid_body"),
        (json!({"colour": "blue"}), "invalid_body"),
    ] {
        let refused = call(Method::PATCH, "/api/v1/me", Some(body.clone())).await;
        assert_eq!(refused.code(), code, "{body}: {}", refused.text);
    }

    let view = call(
        Method::POST,
        "/api/v1/me/views",
        Some(json!({"name": "Urgent ones", "query": "view=all&priority=urgent&after=1-2&q=x"})),
    )
    .await;
    assert_eq!(view.status, StatusCode::CREATED, "{}", view.text);
    assert_eq!(
        view.body["query"], "view=all&priority=urgent",
        "kept as a view, not a page"
    );
    let listed = call(Method::GET, "/api/v1/me/views", None).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let empty = call(
        Method::POST,
        "/api/v1/me/views",
        Some(json!({"name": " ", "query": ""})),
    )
    .await;
    assert_eq!(empty.code(), "field_required");
    let id = view.body["id"].as_i64().unwrap();
    let others = t
        .call(
            Method::DELETE,
            &format!("/api/v1/me/views/{id}"),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(
        others.status,
        StatusCode::NOT_FOUND,
        "another user's view is not theirs"
    );
    let gone = call(Method::DELETE, &format!("/api/v1/me/views/{id}"), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(t.count("saved_views").await, 0);
    t.finish().await;
}
