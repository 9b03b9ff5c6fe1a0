//! Surveys over real HTTP, on both backends: a resolution asks the customer by email in their
//! language; the one-click link records the rating; links cannot be forged or moved to another
//! survey; the quiet period holds; answers reach the conversation, the customer's timeline and
//! the KPI report; relationship NPS goes to customers who ordered.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use axum::http::{Method, StatusCode};
use chrono::Duration;
use common::*;
use serde_json::json;
use seva_app::Clock as _;
use seva_domain::survey::SurveyKind;
use seva_store::Backend;

on_both_backends!(
    a_resolution_asks_by_email_and_the_click_records_the_rating,
    relationship_nps_asks_customers_who_ordered,
);

async fn survey_notices(t: &TestApp) -> Vec<seva_store::public::Notice> {
    let mut conn = t.app.store.conn().await.unwrap();
    let mut all = Vec::new();
    for id in 1..=t.count("mail_notices").await {
        let n = seva_store::public::notice(&mut conn, id).await.unwrap();
        if n.kind == "survey" {
            all.push(n);
        }
    }
    all
}

/// The path of the link for `score` in a survey email (without the host).
fn link(body: &str, kind: &str, score: u8) -> String {
    let marker = format!("/{kind}/{score}?s=");
    let line = body
        .lines()
        .find(|l| l.contains(&marker))
        .unwrap_or_else(|| panic!("no {kind} {score} link in {body}"));
    let url = line.split_whitespace().last().unwrap();
    url.strip_prefix("http://seva.test").unwrap().to_owned()
}

async fn settings(t: &TestApp, token: &str, body: serde_json::Value) -> Reply {
    t.call(
        Method::PUT,
        "/api/v1/survey-settings",
        token,
        Some(body),
        None,
    )
    .await
}

/// The cookie of a portal session signed in with an emailed link.
async fn portal_session(t: &TestApp, email: &str) -> String {
    let mut token = None;
    t.app
        .request_portal_link(email, |tok| {
            token = Some(tok.to_owned());
            seva_app::public::MailText {
                subject: "Sign in".into(),
                body: format!("/portal/link/{tok}"),
            }
        })
        .await
        .unwrap();
    let session = t
        .app
        .redeem_portal_link(&token.expect("a sign-in link"))
        .await
        .unwrap();
    format!("seva_portal={session}")
}

/// A conversation's surveys, as an agent reads them through the API.
async fn surveys_of(t: &TestApp, conversation: i64) -> Reply {
    t.call(
        Method::GET,
        &format!("/api/v1/conversations/{conversation}/surveys"),
        &t.agent,
        None,
        None,
    )
    .await
}

async fn resolve(t: &TestApp, id: i64) {
    let done = t.patch(id, json!({"status": "resolved"})).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
}

async fn a_resolution_asks_by_email_and_the_click_records_the_rating(backend: Backend) {
    let t = TestApp::new(backend).await;
    add_mailbox(&t).await;
    let csat_and_nps = json!({"brand_id": null, "on_resolution": ["nps", "csat"], "quiet_days": 7});
    let refused = settings(&t, &t.agent, csat_and_nps.clone()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "only admins");
    let bad = settings(
        &t,
        &t.admin,
        json!({"brand_id": null, "on_resolution": ["csat"], "quiet_days": 400}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    let saved = settings(&t, &t.admin, csat_and_nps).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    assert_eq!(saved.body["on_resolution"], json!(["csat", "nps"]));

    // A Persian-speaking customer writes; an agent answers and resolves.
    let created = t
        .post_conversation(json!({
            "customer": {"email": "maryam@example.ir", "language": "fa"},
            "subject": "کفش", "message": {"text": "سلام، سفارشم کجاست؟"}}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_i64().unwrap();
    let customer = created.body["customer_id"].as_i64().unwrap();
    assert!(
        t.message(id, "reply", "فردا می‌رسد.")
            .await
            .status
            .is_success()
    );
    assert!(
        survey_notices(&t).await.is_empty(),
        "nothing before the resolution"
    );
    resolve(&t, id).await;

    let mails = survey_notices(&t).await;
    assert_eq!(mails.len(), 1, "one survey per resolution");
    let mail = &mails[0];
    assert_eq!(mail.recipient, "maryam@example.ir");
    assert!(
        mail.body
            .contains("چقدر از کمکی که دریافت کردید راضی هستید؟"),
        "{}",
        mail.body
    );
    assert!(mail.subject.contains("کفش"), "{}", mail.subject);
    let four = link(&mail.body, "csat", 4);
    assert!(four.starts_with("/survey/1/csat/4?s="), "{four}");
    assert_eq!(
        mail.body.matches("/survey/1/csat/").count(),
        5,
        "one link per score"
    );

    // The click records the rating and offers the rest.
    let clicked = t.page(Method::GET, &four, None, "", None).await;
    assert_eq!(clicked.status, StatusCode::OK, "{}", clicked.text);
    assert!(clicked.text.contains("survey-thanks"));
    assert!(clicked.text.contains("question-nps"), "the other question");
    let listed = surveys_of(&t, id).await;
    assert_eq!(listed.body[0]["csat"], 4, "{}", listed.text);
    assert_eq!(listed.body[0]["channel"], "email");
    assert!(listed.body[0]["answered_at"].is_string());

    // The same click again (a mail scanner, then the customer) is one answer.
    t.page(Method::GET, &four, None, "", None).await;
    // Forged: a changed signature, or this survey's signature on another id.
    let signature = four.split("?s=").nth(1).unwrap().to_owned();
    let mut forged = signature.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    for path in [
        format!("/survey/1/csat/1?s={forged}"),
        format!("/survey/2/csat/1?s={signature}"),
        "/survey/1/csat/1?s=".to_owned(),
        format!("/survey/1/csat/1?s={}", "ab".repeat(40)),
    ] {
        let refused = t.page(Method::GET, &path, None, "", None).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{path}");
        assert!(refused.text.contains("survey-invalid"));
    }
    // Off the scale: refused, the earlier answer stays.
    let off = t
        .page(
            Method::GET,
            &format!("/survey/1/csat/9?s={signature}"),
            None,
            "",
            None,
        )
        .await;
    assert_eq!(off.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The page's form: NPS and a comment.
    let sent = t
        .page(
            Method::POST,
            &format!("/survey/1?s={signature}"),
            Some("nps=%DB%B9&comment=%D8%B9%D8%A7%D9%84%DB%8C+%D8%A8%D9%88%D8%AF"),
            "",
            None,
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let listed = t
        .call(
            Method::GET,
            &format!("/api/v1/customers/{customer}/surveys"),
            &t.agent,
            None,
            None,
        )
        .await;
    let s = &listed.body[0];
    assert_eq!(
        (s["csat"].as_i64(), s["nps"].as_i64()),
        (Some(4), Some(9)),
        "Persian ۹ read as 9"
    );
    assert_eq!(s["comment"], "عالی بود");
    let events = t
        .call(
            Method::GET,
            &format!("/api/v1/conversations/{id}/events"),
            &t.agent,
            None,
            None,
        )
        .await;
    let kinds: Vec<&str> = events.body["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["change"]["type"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        kinds.iter().filter(|k| k.starts_with("survey_")).count(),
        4,
        "sent, two answers, the comment: {kinds:?}"
    );

    // The agent's page shows the answer on the thread; the customer's timeline too. The
    // settings are the admins'.
    let cookie = sign_in(&t, "sara@shop.example").await;
    let settings_page = t
        .page(Method::GET, "/settings/surveys", None, &cookie, None)
        .await;
    assert_eq!(settings_page.status, StatusCode::FORBIDDEN);
    let admin_cookie = sign_in(&t, "admin@shop.example").await;
    let settings_page = t
        .page(Method::GET, "/settings/surveys", None, &admin_cookie, None)
        .await;
    assert_eq!(
        settings_page.status,
        StatusCode::OK,
        "{}",
        settings_page.text
    );
    assert!(
        settings_page
            .text
            .contains("name=\"csat\" value=\"on\" checked")
    );
    // A mail client looking ahead (HEAD, prefetch) records nothing.
    let ahead = t
        .page(Method::HEAD, &link(&mail.body, "csat", 1), None, "", None)
        .await;
    assert_eq!(ahead.status, StatusCode::OK);
    let still = surveys_of(&t, id).await;
    assert_eq!(still.body[0]["csat"], 4, "HEAD recorded nothing");
    let thread = t
        .page(
            Method::GET,
            &format!("/conversations/{id}"),
            None,
            &cookie,
            None,
        )
        .await;
    assert!(
        plain(&thread.text).contains("answered CSAT: 4 of 5"),
        "{}",
        thread.text
    );
    let timeline = t
        .page(
            Method::GET,
            &format!("/customers/{customer}"),
            None,
            &cookie,
            None,
        )
        .await;
    assert!(plain(&timeline.text).contains("answered NPS: 9 of 10"));

    // Reopened and resolved again inside the quiet period: not asked again.
    let reply = t.message(id, "customer", "یک سوال دیگر").await;
    assert!(reply.status.is_success());
    resolve(&t, id).await;
    assert_eq!(t.count("surveys").await, 1, "quiet period");
    // After it: asked again.
    t.clock.advance(Duration::days(8));
    assert!(
        t.message(id, "customer", "باز هم")
            .await
            .status
            .is_success()
    );
    resolve(&t, id).await;
    assert_eq!(t.count("surveys").await, 2);
    assert_eq!(survey_notices(&t).await.len(), 2);

    // The portal asks it too: Maryam signs in and rates it there.
    let portal = portal_session(&t, "maryam@example.ir").await;
    let thread = t
        .page(
            Method::GET,
            &format!("/portal/conversations/{id}"),
            None,
            &portal,
            Some("fa"),
        )
        .await;
    assert_eq!(thread.status, StatusCode::OK, "{}", thread.text);
    assert!(
        thread.text.contains("action=\"/portal/surveys/2\""),
        "{}",
        thread.text
    );
    assert!(
        !thread.text.contains("action=\"/portal/surveys/1\""),
        "the answered one is not asked"
    );
    let rated = t
        .page(
            Method::POST,
            "/portal/surveys/2",
            Some(&format!("conversation={id}&kind=csat&score=5")),
            &portal,
            None,
        )
        .await;
    assert_eq!(rated.status, StatusCode::SEE_OTHER, "{}", rated.text);
    let listed = surveys_of(&t, id).await;
    assert_eq!(listed.body[1]["csat"], 5, "{}", listed.text);

    // A customer without an email is asked in the portal, not by mail.
    let phone_only = t
        .post_conversation(json!({"customer": {"phone": "+989123456789"},
                                  "message": {"text": "Hi"}}))
        .await;
    let other = phone_only.body["id"].as_i64().unwrap();
    t.message(other, "reply", "Hello").await;
    resolve(&t, other).await;
    let listed = surveys_of(&t, other).await;
    assert_eq!(listed.body[0]["channel"], "portal", "{}", listed.text);
    assert_eq!(
        survey_notices(&t).await.len(),
        2,
        "no mail without an address"
    );
    // Only the survey's own customer answers it in the portal.
    let portal_survey = listed.body[0]["id"].as_i64().unwrap();
    let wrong = t
        .app
        .answer_survey_in_portal(
            seva_domain::CustomerId(customer),
            portal_survey,
            SurveyKind::Csat,
            5,
        )
        .await;
    assert!(
        matches!(wrong, Err(seva_app::AppError::NotFound(_))),
        "{wrong:?}"
    );
    let own = phone_only.body["customer_id"].as_i64().unwrap();
    let rated = t
        .app
        .answer_survey_in_portal(
            seva_domain::CustomerId(own),
            portal_survey,
            SurveyKind::Csat,
            2,
        )
        .await
        .unwrap();
    assert_eq!(rated.csat, Some(2));
    // "Had a bad CSAT" is a segment: the phone customer is in it, Maryam (4) is not.
    let count = t
        .call(
            Method::POST,
            "/api/v1/segments/count",
            &t.admin,
            Some(json!({"rules": {"all": [{"type": "bad_csat", "days": 30}]}})),
            None,
        )
        .await;
    assert_eq!(count.status, StatusCode::OK, "{}", count.text);
    assert_eq!(count.body["count"], 1, "{}", count.text);

    // The KPI report counts the answers.
    let today = (t.clock.now() - Duration::days(8)).date_naive();
    let from = today - Duration::days(1);
    let report = t
        .call(
            Method::GET,
            &format!("/api/v1/reports/kpis?from={from}&to={today}"),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text);
    assert_eq!(report.body["csat"]["answers"], 1, "{}", report.body["csat"]);
    assert_eq!(report.body["csat"]["satisfied"]["percent"], 100.0);
    assert_eq!(report.body["nps"]["nps"]["score"], 100.0);
    assert_eq!(report.body["ces"]["answers"], 0);

    // Four weeks after it was sent a survey closes: the email's link, its page and the
    // portal take no more answers, and change none.
    t.clock.advance(Duration::days(28));
    let two = four.replace("/csat/4?", "/csat/2?");
    let late = t.page(Method::GET, &two, None, "", Some("fa")).await;
    assert_eq!(late.status, StatusCode::GONE, "{}", late.text);
    assert!(late.text.contains("id=\"survey-closed\""), "{}", late.text);
    assert!(late.text.contains("این نظرسنجی بسته شده است"), "translated");
    assert!(!late.text.contains("survey-send"), "no form");
    let portal = portal_session(&t, "maryam@example.ir").await;
    let comment = t
        .page(
            Method::POST,
            &format!("/survey/1?s={signature}"),
            Some("comment=late"),
            "",
            None,
        )
        .await;
    assert_eq!(comment.status, StatusCode::GONE, "{}", comment.text);
    let thread = t
        .page(
            Method::GET,
            &format!("/portal/conversations/{id}"),
            None,
            &portal,
            None,
        )
        .await;
    assert_eq!(thread.status, StatusCode::OK, "{}", thread.text);
    assert!(
        !thread.text.contains("action=\"/portal/surveys/2\""),
        "a closed survey is not asked"
    );
    let refused = t
        .page(
            Method::POST,
            "/portal/surveys/2",
            Some(&format!("conversation={id}&kind=nps&score=3")),
            &portal,
            None,
        )
        .await;
    assert!(
        refused
            .headers
            .get("location")
            .is_some_and(|l| l.to_str().unwrap().ends_with("notice=rating-refused")),
        "{:?}",
        refused.headers
    );
    let listed = surveys_of(&t, id).await;
    assert_eq!(listed.body[0]["csat"], 4, "{}", listed.text);
    assert_eq!(listed.body[0]["comment"], "عالی بود", "{}", listed.text);
    assert_eq!(listed.body[1]["nps"], json!(null), "{}", listed.text);
    t.finish().await;
}

async fn relationship_nps_asks_customers_who_ordered(backend: Backend) {
    let t = TestApp::new(backend).await;
    add_mailbox(&t).await;
    let saved = settings(
        &t,
        &t.admin,
        json!({"brand_id": null, "on_resolution": [], "quiet_days": 7,
               "relationship_nps_days": 90}),
    )
    .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    let placed = (t.clock.now() - Duration::days(10)).to_rfc3339();
    let mut dev_id = 0;
    for (n, email) in ["dev@example.in", "amir@example.ir"].iter().enumerate() {
        let order = t
            .call(
                Method::POST,
                "/api/v1/orders",
                &t.admin,
                Some(
                    json!({"external_id": format!("o{n}"), "customer": {"email": email},
                            "currency": "INR", "total": 49_900, "placed_at": placed}),
                ),
                None,
            )
            .await;
        assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
        if n == 0 {
            dev_id = order.body["customer_id"].as_i64().unwrap();
        }
    }
    // A customer who never ordered is not asked.
    t.post_conversation(json!({"customer": {"email": "browser@example.in"},
                               "message": {"text": "Do you ship to Pune?"}}))
        .await;
    assert_eq!(t.app.send_relationship_nps(100).await.unwrap(), 2);
    let mails = survey_notices(&t).await;
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().all(|m| m.body.contains("/nps/10?s=")));
    assert!(mails.iter().all(|m| !m.body.contains("/csat/")));
    // Dev answers 9; the answers drill-down lists it under him, about no conversation.
    let dev = mails
        .iter()
        .find(|m| m.recipient == "dev@example.in")
        .unwrap();
    let clicked = t
        .page(Method::GET, &link(&dev.body, "nps", 9), None, "", None)
        .await;
    assert_eq!(clicked.status, StatusCode::OK, "{}", clicked.text);
    let today = t.clock.now().date_naive();
    let drill = t
        .call(
            Method::GET,
            &format!("/api/v1/reports/kpis/conversations?figure=answers&from={today}&to={today}"),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(drill.status, StatusCode::OK, "{}", drill.text);
    assert_eq!(drill.body.as_array().unwrap().len(), 1, "{}", drill.text);
    assert_eq!(drill.body[0]["conversation_id"], json!(null));
    assert_eq!(drill.body[0]["customer_id"], dev_id);
    assert_eq!(drill.body[0]["detail"], "nps=9");
    let cookie = sign_in(&t, "admin@shop.example").await;
    let page = t
        .page(
            Method::GET,
            &format!("/reports/conversations?figure=answers&from={today}&to={today}"),
            None,
            &cookie,
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains(&format!("href=\"/customers/{dev_id}\"")),
        "{}",
        page.text
    );
    assert!(plain(&page.text).contains("Relationship NPS, customer"));
    // Not again within the interval.
    t.clock.advance(Duration::days(30));
    assert_eq!(t.app.send_relationship_nps(100).await.unwrap(), 0);
    t.finish().await;
}
