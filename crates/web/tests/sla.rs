//! SLA attainment against hand-computed values, on both backends: policies chosen by priority
//! and order, targets on Tehran business hours (UTC+03:30, a holiday) and on the calendar,
//! the clock stopped while on hold or pending, a late reply missed at its breach, an
//! unanswered conversation missed when its time ran out, a paused one running, then a
//! reopening and a change of priority moving targets of days the report had already read.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use seva_store::Backend;

use common::*;

on_both_backends!(attainment_matches_its_hand_computed_value);

async fn ok(t: &TestApp, method: Method, path: &str, body: Value) -> Value {
    let reply = t.call(method, path, &t.admin, Some(body), None).await;
    assert!(reply.status.is_success(), "{path}: {}", reply.text);
    reply.body
}

async fn writes(t: &TestApp, brand: i64, email: &str, first: &str, priority: &str) -> i64 {
    let body = ok(
        t,
        Method::POST,
        "/api/v1/conversations",
        json!({"customer": {"email": email}, "brand_id": brand, "priority": priority,
               "subject": "Where is my order?", "message": {"text": "Hello"},
               "created_at": first}),
    )
    .await;
    body["id"].as_i64().unwrap()
}

async fn reply(t: &TestApp, id: i64, kind: &str, when: &str) {
    ok(
        t,
        Method::POST,
        &format!("/api/v1/conversations/{id}/messages"),
        json!({"kind": kind, "text": "…", "created_at": when}),
    )
    .await;
}

async fn status(t: &TestApp, id: i64, to: &str, when: &str) {
    ok(
        t,
        Method::PATCH,
        &format!("/api/v1/conversations/{id}"),
        json!({"status": to, "at": when}),
    )
    .await;
}

/// The period's attainment: (first reply, next reply, resolution) as (met, due).
async fn attainment(t: &TestApp) -> [(u64, u64); 3] {
    let r = t
        .call(
            Method::GET,
            "/api/v1/reports/kpis?from=2026-11-02&to=2026-11-03&tz=Asia/Tehran",
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let sla = &r.body["sla_attainment"];
    let pair = |k: &str| {
        (
            sla[k]["numerator"].as_u64().unwrap(),
            sla[k]["denominator"].as_u64().unwrap(),
        )
    };
    [pair("first_reply"), pair("next_reply"), pair("resolution")]
}

async fn targets(t: &TestApp, id: i64) -> Vec<Value> {
    let r = t
        .call(
            Method::GET,
            &format!("/api/v1/conversations/{id}/sla"),
            &t.agent,
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body.as_array().unwrap().clone()
}

/// The conversation's targets once its first one's `field` reads `value`: a policy change
/// judges running targets again in the background. Fails after five seconds.
async fn settled_into(t: &TestApp, id: i64, field: &str, value: &str) -> Vec<Value> {
    for _ in 0..100 {
        let now = targets(t, id).await;
        if now[0][field] == value {
            return now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{field} of conversation {id}'s first target never became {value}");
}

async fn names_to_ids(t: &TestApp) -> std::collections::HashMap<String, i64> {
    let listed = t
        .call(Method::GET, "/api/v1/sla-policies", &t.admin, None, None)
        .await;
    listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn attainment_matches_its_hand_computed_value(backend: Backend) {
    let t = TestApp::new(backend).await;
    let mut conn = t.app.store.conn().await.unwrap();
    let brand = seva_store::staff::insert_brand(&mut conn, "Kahroba", t0())
        .await
        .unwrap()
        .0;
    drop(conn);
    // Tehran: Saturday to Wednesday 09:00–17:00, Thursday 09:00–13:00; Wednesday 2026-11-04
    // is a holiday. 2026-11-02 is a Monday; 09:00 there is 05:30 UTC.
    let hours = ok(
        &t,
        Method::POST,
        "/api/v1/business-hours",
        json!({"name": "Tehran", "time_zone": "Asia/Tehran",
            "week": {"sat": "09:00-17:00", "sun": "09:00-17:00", "mon": "09:00-17:00",
                     "tue": "09:00-17:00", "wed": "09:00-17:00", "thu": "09:00-13:00"},
            "holidays": ["2026-11-04"]}),
    )
    .await;
    ok(
        &t,
        Method::PATCH,
        &format!("/api/v1/brands/{brand}"),
        json!({"business_hours_id": hours["id"]}),
    )
    .await;

    // Bad input is refused with stable codes, and writes nothing.
    for (body, code) in [
        (json!({"name": "Empty"}), "field_required"),
        (
            json!({"name": "Zero", "first_reply_minutes": 0}),
            "invalid_value",
        ),
        (
            json!({"name": "Odd", "channel": "pigeon", "first_reply_minutes": 5}),
            "invalid_value",
        ),
        (
            json!({"name": "Lost", "team_id": 999, "first_reply_minutes": 5}),
            "team_not_found",
        ),
    ] {
        let r = t
            .call(
                Method::POST,
                "/api/v1/sla-policies",
                &t.admin,
                Some(body),
                None,
            )
            .await;
        assert_eq!(r.code(), code, "{}", r.text);
    }
    let refused = t
        .call(
            Method::POST,
            "/api/v1/sla-policies",
            &t.agent,
            Some(json!({"name": "Mine", "first_reply_minutes": 5})),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(t.count("sla_policies").await, 0);

    // Urgent conversations: a 30-minute first reply on the calendar. Everything else: first
    // reply in 2 business hours, next replies in 4, resolution in 24.
    ok(
        &t,
        Method::POST,
        "/api/v1/sla-policies",
        json!({"name": "Standard", "position": 2, "first_reply_minutes": 120,
               "next_reply_minutes": 240, "resolution_minutes": 1440}),
    )
    .await;
    let urgent = ok(
        &t,
        Method::POST,
        "/api/v1/sla-policies",
        json!({"name": "Urgent", "position": 1, "priority": "urgent",
               "first_reply_minutes": 30, "business_hours": false}),
    )
    .await;
    assert_eq!(urgent["business_hours"], json!(false));
    let taken = t
        .call(
            Method::POST,
            "/api/v1/sla-policies",
            &t.admin,
            Some(json!({"name": "Urgent", "first_reply_minutes": 5})),
            None,
        )
        .await;
    assert_eq!(taken.code(), "already_exists");
    let listed = t
        .call(Method::GET, "/api/v1/sla-policies", &t.agent, None, None)
        .await;
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Urgent", "Standard"], "tried in order");

    // 1. Standard. Customer Mon 09:00, reply 10:00 (first reply met, 1 h). Customer again
    // 10:30; on hold 11:00 (30 min ran) until Tue 09:00; reply Tue 12:30: 30 min + 3 h 30 =
    // the 4 hours exactly, met. Resolved Tue 13:30: 2 h Monday + 4 h 30 Tuesday, met.
    let c1 = writes(&t, brand, "a@example.com", "2026-11-02T05:30:00Z", "normal").await;
    reply(&t, c1, "reply", "2026-11-02T06:30:00Z").await;
    reply(&t, c1, "customer", "2026-11-02T07:00:00Z").await;
    status(&t, c1, "on_hold", "2026-11-02T07:30:00Z").await;
    status(&t, c1, "open", "2026-11-03T05:30:00Z").await;
    reply(&t, c1, "reply", "2026-11-03T09:00:00Z").await;
    status(&t, c1, "resolved", "2026-11-03T10:00:00Z").await;
    // 2. Urgent. Customer Mon 06:00 UTC, reply an hour later: missed at 06:30 UTC.
    let c2 = writes(&t, brand, "b@example.com", "2026-11-02T06:00:00Z", "urgent").await;
    reply(&t, c2, "reply", "2026-11-02T07:00:00Z").await;
    // 3. Standard, never answered. Customer Mon 15:30: 1 h 30 Monday, 30 min Tuesday; missed
    // Tue 09:30 (06:00 UTC).
    let c3 = writes(&t, brand, "c@example.com", "2026-11-02T12:00:00Z", "normal").await;
    // 4. Standard, pending after 10 minutes and never back: its clock stands, running.
    let c4 = writes(&t, brand, "d@example.com", "2026-11-02T05:30:00Z", "normal").await;
    status(&t, c4, "pending", "2026-11-02T05:40:00Z").await;

    assert_eq!(attainment(&t).await, [(1, 3), (1, 1), (1, 1)]);
    // Read again: the days are kept now, and give the same.
    assert_eq!(attainment(&t).await, [(1, 3), (1, 1), (1, 1)]);

    let of_c3 = targets(&t, c3).await;
    assert_eq!(of_c3[0]["target"], "first_reply");
    assert_eq!(of_c3[0]["state"], "missed");
    assert_eq!(of_c3[0]["due_at"], "2026-11-03T06:00:00Z");
    assert_eq!(of_c3[0]["policy"], "Standard");
    let of_c4 = targets(&t, c4).await;
    assert_eq!(of_c4[0]["state"], "running");
    assert_eq!(
        of_c4[0]["due_at"],
        Value::Null,
        "the clock stands while pending"
    );
    let of_c1 = targets(&t, c1).await;
    let states: Vec<(&str, &str)> = of_c1
        .iter()
        .map(|o| (o["target"].as_str().unwrap(), o["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("first_reply", "met"),
            ("resolution", "met"),
            ("next_reply", "met")
        ]
    );

    // The conversations behind the figure, each with its target and outcome.
    let drill = t
        .call(
            Method::GET,
            "/api/v1/reports/kpis/conversations?from=2026-11-02&to=2026-11-03&tz=Asia/Tehran&figure=sla",
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(drill.status, StatusCode::OK, "{}", drill.text);
    let rows = drill.body.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().any(|r| r["conversation_id"] == c2
        && r["detail"] == "first_reply missed"
        && r["at"] == "2026-11-02T06:30:00Z"));

    // 4 opens again Tue 09:00: 10 minutes ran Monday, so it is missed at 10:50 (07:20 UTC).
    status(&t, c4, "open", "2026-11-03T05:30:00Z").await;
    assert_eq!(attainment(&t).await, [(1, 4), (1, 1), (1, 1)]);
    assert_eq!(targets(&t, c4).await[0]["due_at"], "2026-11-03T07:20:00Z");

    // 3 becomes urgent: the urgent policy applies (30 calendar minutes, no resolution target).
    ok(
        &t,
        Method::PATCH,
        &format!("/api/v1/conversations/{c3}"),
        json!({"priority": "urgent"}),
    )
    .await;
    let of_c3 = targets(&t, c3).await;
    assert_eq!(of_c3.len(), 1, "{of_c3:?}");
    assert_eq!(of_c3[0]["due_at"], "2026-11-02T12:30:00Z");
    assert_eq!(of_c3[0]["policy"], "Urgent");
    assert_eq!(attainment(&t).await, [(1, 4), (1, 1), (1, 1)]);
    // 1 becomes urgent after its replies: targets already done keep their outcome.
    ok(
        &t,
        Method::PATCH,
        &format!("/api/v1/conversations/{c1}"),
        json!({"priority": "urgent"}),
    )
    .await;
    let of_c1 = targets(&t, c1).await;
    assert_eq!(of_c1[0]["state"], "met");
    assert_eq!(of_c1[0]["policy"], "Standard");
    assert_eq!(attainment(&t).await, [(1, 4), (1, 1), (1, 1)]);

    // The dashboard shows it, its note, and the drill-down in the reader's language.
    let cookies = sign_in(&t, "admin@shop.example").await;
    let page = t
        .page(
            Method::GET,
            "/reports?from=2026-11-02&to=2026-11-03&tz=Asia/Tehran",
            None,
            &cookies,
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let text = plain(&page.text);
    assert!(text.contains("SLA attainment"), "card");
    assert!(text.contains("50.0%"), "3 of 6 targets met");
    assert!(
        text.contains("first reply 25.0%"),
        "{}",
        &text[..200.min(text.len())]
    );
    assert!(
        page.text.contains("/reports/conversations?figure=sla"),
        "links its drill-down"
    );
    let drill_page = t
        .page(
            Method::GET,
            "/reports/conversations?figure=sla&from=2026-11-02&to=2026-11-03&tz=Asia/Tehran",
            None,
            &cookies,
            Some("fa"),
        )
        .await;
    assert_eq!(drill_page.status, StatusCode::OK);
    assert!(plain(&drill_page.text).contains("نخستین پاسخ · از دست رفت"));
    // The conversation page lists its targets.
    let conversation = t
        .page(
            Method::GET,
            &format!("/conversations/{c1}"),
            None,
            &cookies,
            None,
        )
        .await;
    let text = plain(&conversation.text);
    assert!(text.contains("Next reply</strong> · met"), "sidebar");

    // Admins manage policies from settings.
    let list = t
        .page(Method::GET, "/settings/sla", None, &cookies, None)
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.text.contains("Urgent") && list.text.contains("Standard"));
    let form = t
        .page(Method::GET, "/settings/sla/new", None, &cookies, None)
        .await;
    let csrf = hidden_field(&form.text, "csrf");
    let saved = t
        .page(
            Method::POST,
            "/settings/sla",
            Some(&format!(
                "csrf={csrf}&name=Chat&position=%DB%B3&channel=chat&first_reply_minutes=%DB%B5&business_hours=1"
            )),
            &cookies,
            None,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let policies = t
        .call(Method::GET, "/api/v1/sla-policies", &t.admin, None, None)
        .await;
    let chat = policies.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Chat")
        .cloned()
        .unwrap();
    assert_eq!(chat["position"], 3, "Persian digits read");
    assert_eq!(chat["first_reply_minutes"], 5);
    assert_eq!(chat["channel"], "chat");
    let no_target = t
        .page(
            Method::POST,
            "/settings/sla",
            Some(&format!("csrf={csrf}&name=Nothing")),
            &cookies,
            None,
        )
        .await;
    assert_eq!(no_target.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(plain(&no_target.text).contains("Set at least one target."));
    let deleted = t
        .call(
            Method::DELETE,
            &format!("/api/v1/sla-policies/{}", urgent["id"]),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = t
        .call(
            Method::GET,
            &format!("/api/v1/sla-policies/{}", urgent["id"]),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(gone.code(), "sla_policy_not_found");
    // Targets it judged that were done keep their outcome (2's late reply); 3, still waiting,
    // falls to the standard policy within moments, and is missed there too.
    let of_c3 = settled_into(&t, c3, "policy", "Standard").await;
    assert_eq!(of_c3[0]["due_at"], "2026-11-03T06:00:00Z");
    assert_eq!(attainment(&t).await, [(1, 4), (1, 1), (1, 1)]);
    // A day for a first reply: the waiting ones move at once. 3: 1 h 30 Monday, 8 h Tuesday,
    // the holiday, 4 h Thursday, 8 h Saturday, 2 h 30 Sunday. 4: 10 min Monday, then from
    // Tuesday 09:00 on. Both now fall after the period.
    let standard = &names_to_ids(&t).await["Standard"];
    ok(
        &t,
        Method::PUT,
        &format!("/api/v1/sla-policies/{standard}"),
        json!({"name": "Standard", "position": 2, "first_reply_minutes": 1440,
               "next_reply_minutes": 240, "resolution_minutes": 1440}),
    )
    .await;
    settled_into(&t, c3, "due_at", "2026-11-08T08:00:00Z").await;
    settled_into(&t, c4, "due_at", "2026-11-08T09:20:00Z").await;
    assert_eq!(attainment(&t).await, [(1, 2), (1, 1), (1, 1)]);
    // The same per brand, and under a brand filter (through the conversations' facts).
    let by_brand = t
        .call(
            Method::GET,
            &format!(
                "/api/v1/reports/kpis?from=2026-11-02&to=2026-11-03&tz=Asia/Tehran&by=brand&brand={brand}"
            ),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(by_brand.status, StatusCode::OK, "{}", by_brand.text);
    let row = &by_brand.body["breakdown"][0];
    assert_eq!(row["key"], brand.to_string());
    assert_eq!(row["sla_attainment"]["first_reply"]["numerator"], 1);
    assert_eq!(row["sla_attainment"]["first_reply"]["denominator"], 2);
    assert_eq!(row["sla_attainment"]["all"]["denominator"], 4);
    t.finish().await;
}
