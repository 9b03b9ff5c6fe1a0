//! The KPI report against hand-computed values, on both backends: conversations built through
//! the API with their original times (an admin's import), in Tehran (UTC+03:30) with a
//! Friday weekend and a holiday, a reopened conversation, repeat contacts inside and outside the
//! FCR window, one still inside it, one unanswered, one an agent started, and orders for the
//! purchase figures.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use seva_store::Backend;

use common::*;

on_both_backends!(
    every_kpi_matches_its_hand_computed_value,
    cached_days_follow_every_change_to_an_old_day
);

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

struct Shop<'a> {
    t: &'a TestApp,
    brand: i64,
}

impl Shop<'_> {
    /// A conversation the customer starts at `first` (UTC).
    async fn customer_writes(&self, email: &str, first: &str) -> i64 {
        let reply = self
            .t
            .call(
                Method::POST,
                "/api/v1/conversations",
                &self.t.admin,
                Some(json!({"customer": {"email": email}, "brand_id": self.brand,
                            "subject": "Where is my order?", "message": {"text": "Hello"},
                            "created_at": first})),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.body["id"].as_i64().unwrap()
    }

    async fn message(&self, id: i64, kind: &str, when: &str) {
        let reply = self
            .t
            .call(
                Method::POST,
                &format!("/api/v1/conversations/{id}/messages"),
                &self.t.admin,
                Some(json!({"kind": kind, "text": "…", "created_at": when})),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }

    async fn resolve(&self, id: i64, when: &str) {
        let reply = self
            .t
            .call(
                Method::PATCH,
                &format!("/api/v1/conversations/{id}"),
                &self.t.admin,
                Some(json!({"status": "resolved", "at": when})),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }

    /// Customer at `first`, one agent reply at `reply`, resolved at `resolved`.
    async fn one_touch(&self, email: &str, first: &str, reply: &str, resolved: &str) -> i64 {
        let id = self.customer_writes(email, first).await;
        self.message(id, "reply", reply).await;
        self.resolve(id, resolved).await;
        id
    }

    async fn order(&self, email: &str, id: &str, placed_at: &str) {
        let reply = self
            .t
            .call(
                Method::POST,
                "/api/v1/orders",
                &self.t.admin,
                Some(json!({"external_id": id, "customer": {"email": email},
                            "currency": "IRR", "total": 1_000_000, "placed_at": placed_at})),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
}

fn close(actual: &Value, expected: f64) {
    let actual = actual.as_f64().unwrap_or(f64::NAN);
    assert!(
        (actual - expected).abs() < 0.01,
        "{actual} is not {expected}"
    );
}

async fn every_kpi_matches_its_hand_computed_value(backend: Backend) {
    let t = TestApp::new(backend).await;
    let mut conn = t.app.store.conn().await.unwrap();
    let brand = seva_store::staff::insert_brand(&mut conn, "Kahroba", t0())
        .await
        .unwrap();
    drop(conn);
    // Tehran, UTC+03:30: Saturday to Wednesday 09:00–17:00, Thursday 09:00–13:00, Friday off;
    // Wednesday 2026-11-04 is a holiday. (2026-11-02 is a Monday.)
    let hours = t
        .call(
            Method::POST,
            "/api/v1/business-hours",
            &t.admin,
            Some(json!({"name": "Tehran", "time_zone": "Asia/Tehran",
                "week": {"sat": "09:00-17:00", "sun": "09:00-17:00", "mon": "09:00-17:00",
                         "tue": "09:00-17:00", "wed": "09:00-17:00", "thu": "09:00-13:00"},
                "holidays": ["2026-11-04"]})),
            None,
        )
        .await;
    assert_eq!(hours.status, StatusCode::CREATED, "{}", hours.text);
    let assigned = t
        .call(
            Method::PATCH,
            &format!("/api/v1/brands/{}", brand.0),
            &t.admin,
            Some(json!({"business_hours_id": hours.body["id"]})),
            None,
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
    let shop = Shop {
        t: &t,
        brand: brand.0,
    };

    // A: Monday 16:00 local → Tuesday 10:00: 18 h on the calendar, 2 open hours.
    let a = shop
        .one_touch(
            "a@example.com",
            "2026-11-02T12:30:00Z",
            "2026-11-03T06:30:00Z",
            "2026-11-03T06:30:00Z",
        )
        .await;
    // B: Tuesday 16:30 → Thursday 09:30 over the Wednesday holiday: 41 h, 1 open hour. Then
    // the customer writes again on Saturday 10:00 (reopening it), is answered at 10:20 and it
    // is resolved at 10:30.
    let twice = shop
        .one_touch(
            "b@example.com",
            "2026-11-03T13:00:00Z",
            "2026-11-05T06:00:00Z",
            "2026-11-05T06:00:00Z",
        )
        .await;
    shop.message(twice, "customer", "2026-11-07T06:30:00Z")
        .await;
    shop.message(twice, "reply", "2026-11-07T06:50:00Z").await;
    shop.resolve(twice, "2026-11-07T07:00:00Z").await;
    // C1 is one-touch, but C comes back two days later on the chat: not FCR. C2 is.
    shop.one_touch(
        "c@example.com",
        "2026-11-08T06:30:00Z",
        "2026-11-08T06:40:00Z",
        "2026-11-08T06:45:00Z",
    )
    .await;
    let c2 = shop
        .one_touch(
            "c@example.com",
            "2026-11-10T06:30:00Z",
            "2026-11-10T06:35:00Z",
            "2026-11-10T06:40:00Z",
        )
        .await;
    // D comes back ten days later, outside the seven-day window: both count as FCR.
    shop.one_touch(
        "d@example.com",
        "2026-11-09T05:30:00Z",
        "2026-11-09T06:00:00Z",
        "2026-11-09T06:05:00Z",
    )
    .await;
    shop.one_touch(
        "d@example.com",
        "2026-11-19T05:30:00Z",
        "2026-11-19T05:40:00Z",
        "2026-11-19T05:45:00Z",
    )
    .await;
    // E is resolved on the period's last day: its window has not passed by "now".
    shop.one_touch(
        "e@example.com",
        "2026-11-21T05:30:00Z",
        "2026-11-21T05:50:00Z",
        "2026-11-21T06:30:00Z",
    )
    .await;
    // I is answered and resolved on the last morning, then the customer writes again: reopened,
    // unresolved at the period's end.
    let again = shop
        .one_touch(
            "i@example.com",
            "2026-11-21T06:00:00Z",
            "2026-11-21T06:10:00Z",
            "2026-11-21T06:20:00Z",
        )
        .await;
    shop.message(again, "customer", "2026-11-21T09:00:00Z")
        .await;
    // F waits for a first reply: 12 h by the period's end (2026-11-21 24:00 local).
    shop.customer_writes("f@example.com", "2026-11-21T08:30:00Z")
        .await;
    // G was started by an agent: no first response time, but its customer turn counts.
    let outbound = t
        .call(
            Method::POST,
            "/api/v1/conversations",
            &t.admin,
            Some(
                json!({"customer": {"email": "g@example.com"}, "brand_id": brand.0,
                        "message": {"text": "Your order shipped", "kind": "reply"},
                        "created_at": "2026-11-12T06:30:00Z"}),
            ),
            None,
        )
        .await;
    assert_eq!(outbound.status, StatusCode::CREATED, "{}", outbound.text);
    let outbound = outbound.body["id"].as_i64().unwrap();
    shop.message(outbound, "customer", "2026-11-12T07:00:00Z")
        .await;
    shop.message(outbound, "reply", "2026-11-12T07:30:00Z")
        .await;
    // H is before the period.
    shop.one_touch(
        "h@example.com",
        "2026-10-20T06:00:00Z",
        "2026-10-20T07:00:00Z",
        "2026-10-20T07:00:00Z",
    )
    .await;
    // Orders: in the period (from 2026-11-01 local) and in the 21 days before it.
    shop.order("a@example.com", "o1", "2026-11-02T10:00:00Z")
        .await;
    shop.order("a@example.com", "o2", "2026-11-15T10:00:00Z")
        .await;
    shop.order("b@example.com", "o3", "2026-10-20T10:00:00Z")
        .await;
    shop.order("b@example.com", "o4", "2026-11-10T10:00:00Z")
        .await;
    shop.order("c@example.com", "o5", "2026-10-25T10:00:00Z")
        .await;
    shop.order("z@example.com", "o6", "2026-11-05T10:00:00Z")
        .await;
    shop.order("y@example.com", "o7", "2026-03-01T10:00:00Z")
        .await;

    t.clock.set(at("2026-11-27T12:00:00Z"));
    let report = |clock: &str| {
        let path = format!(
            "/api/v1/reports/kpis?from=2026-11-01&to=2026-11-21&tz=Asia/Tehran&clock={clock}"
        );
        let t = &t;
        async move { t.call(Method::GET, &path, &t.admin, None, None).await }
    };
    let cal = report("calendar").await;
    assert_eq!(cal.status, StatusCode::OK, "{}", cal.text);
    let k = &cal.body;
    assert_eq!(k["from"], "2026-10-31T20:30:00Z", "midnight in Tehran");
    assert_eq!(k["to"], "2026-11-21T20:30:00Z");
    // First response: 300, 600, 600, 600, 1200, 1800, 64800, 147600.
    let fr = &k["first_response"];
    assert_eq!(fr["count"], 8, "{fr}");
    close(&fr["median_seconds"], 900.0);
    assert_eq!(fr["p90_seconds"], 147_600, "⌈7.2⌉ = 8th");
    close(&fr["mean_seconds"], 217_500.0 / 8.0);
    assert_eq!(k["unanswered"]["count"], 1);
    assert_eq!(k["unanswered"]["oldest_wait_seconds"], 12 * 3600);
    // Every answered customer turn: the eight first ones, B's second (1200) and G's (1800);
    // I's second turn is not answered.
    let ar = &k["average_response"];
    assert_eq!(ar["count"], 10, "{ar}");
    close(&ar["median_seconds"], 1200.0);
    close(&ar["mean_seconds"], 220_500.0 / 10.0);
    // Resolution: B's first resolution is 41 h; its full one 90 h. I counts for its first
    // resolution (1200) but has no full one: it is open again.
    let first = &k["first_resolution"];
    assert_eq!(first["count"], 8);
    assert_eq!(first["p90_seconds"], 147_600);
    close(&first["median_seconds"], 1650.0);
    let full = &k["full_resolution"];
    assert_eq!(full["count"], 7);
    assert_eq!(full["p90_seconds"], 324_000);
    // One-touch: all but B, of the seven resolved with a reply.
    assert_eq!(
        k["one_touch_resolution"],
        json!({"numerator": 6, "denominator": 7, "percent": 600.0 / 7.0})
    );
    // FCR: A, C2, D, D2 yes; B and C1 no; E pending.
    let fcr = &k["first_contact_resolution"];
    assert_eq!(
        (fcr["numerator"].as_i64(), fcr["denominator"].as_i64()),
        (Some(4), Some(6)),
        "{fcr}"
    );
    assert_eq!(fcr["pending"], 1);
    // Backlog at the period's end: F, G and I, none resolved; I's facts follow its reopening.
    assert_eq!(k["backlog"]["total"], 3, "{}", k["backlog"]);
    assert_eq!(k["backlog"]["by_status"]["open"], 3, "{}", k["backlog"]);
    // Purchases: a ordered twice, b and z once: 1 of 3; of b and c (the 21 days before),
    // b ordered again: 1 of 2; y's last order is older than 180 days.
    assert_eq!(
        k["repeat_purchase_rate"],
        json!({"numerator": 1, "denominator": 3, "percent": 100.0 / 3.0})
    );
    assert_eq!(
        k["retention_rate"],
        json!({"numerator": 1, "denominator": 2, "percent": 50.0})
    );
    assert_eq!(k["churned_customers"]["count"], 1);
    // The customers behind them.
    let customers = |figure: &str| {
        let path = format!(
            "/api/v1/reports/kpis/customers?from=2026-11-01&to=2026-11-21&tz=Asia/Tehran&figure={figure}"
        );
        let t = &t;
        async move {
            let reply = t.call(Method::GET, &path, &t.admin, None, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            let mut details: Vec<String> = reply
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["detail"].as_str().unwrap_or("").to_owned())
                .collect();
            details.sort();
            details
        }
    };
    assert_eq!(
        customers("repeat_purchase").await,
        ["orders=1", "orders=1", "orders=2"]
    );
    assert_eq!(customers("retention").await, ["again=no", "again=yes"]);
    assert_eq!(customers("churned").await, [""]);
    let wrong = t
        .call(
            Method::GET,
            "/api/v1/reports/kpis/customers?from=2026-11-01&to=2026-11-21&tz=UTC&figure=backlog",
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(wrong.code(), "invalid_query");

    // A breakdown by saved segment: a and b ordered twice; their conversations A and B.
    let segment = t
        .call(
            Method::POST,
            "/api/v1/segments",
            &t.admin,
            Some(json!({"name": "Came back to buy",
                        "rules": {"all": [{"type": "orders_at_least", "count": 2}]}})),
            None,
        )
        .await;
    assert_eq!(segment.status, StatusCode::CREATED, "{}", segment.text);
    let by_segment = t
        .call(
            Method::GET,
            "/api/v1/reports/kpis?from=2026-11-01&to=2026-11-21&tz=Asia/Tehran&by=segment",
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(by_segment.status, StatusCode::OK, "{}", by_segment.text);
    let segment_id = segment.body["id"].as_i64().unwrap().to_string();
    let row = by_segment.body["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == segment_id.as_str())
        .unwrap_or_else(|| panic!("no row for the segment: {}", by_segment.text));
    assert_eq!(row["first_response"]["count"], 2, "{row}");
    assert_eq!(row["first_response"]["p90_seconds"], 147_600, "{row}");

    // The business clock: A 2 h, B 1 h (the holiday and the night skipped), the rest inside
    // opening hours: 300, 600, 600, 600, 1200, 1800, 3600, 7200.
    let bus = report("business").await;
    let fr = &bus.body["first_response"];
    assert_eq!(fr["count"], 8);
    assert_eq!(fr["p90_seconds"], 7200, "{fr}");
    close(&fr["mean_seconds"], 15_900.0 / 8.0);
    close(&fr["median_seconds"], 900.0);
    // B's full resolution on the business clock: Tue 30 min + Thu 4 h + Sat 1.5 h = 6 h.
    assert_eq!(bus.body["full_resolution"]["p90_seconds"], 21_600);

    // The same conversations split by channel and per day, beside the previous period; the
    // parts add up to the whole.
    let base = "/api/v1/reports/kpis?from=2026-11-01&to=2026-11-21&tz=Asia/Tehran";
    let split = t
        .call(
            Method::GET,
            &format!("{base}&by=channel&step=day&compare=previous"),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(split.status, StatusCode::OK, "{}", split.text);
    let sum = |rows: &Value, figure: &str| -> i64 {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r[figure]["count"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(sum(&split.body["breakdown"], "first_response"), 8);
    assert_eq!(
        split.body["series"].as_array().unwrap().len(),
        21,
        "one per day"
    );
    assert_eq!(sum(&split.body["series"], "first_response"), 8);
    assert_eq!(sum(&split.body["series"], "full_resolution"), 7);
    assert_eq!(split.body["previous"]["from"], "2026-10-10T20:30:00Z");
    assert_eq!(split.body["first_response"], k["first_response"]);
    // Filters: the shop's brand holds them all; another brand none.
    for (brand, count) in [(shop.brand, 8), (shop.brand + 1000, 0)] {
        let only = t
            .call(
                Method::GET,
                &format!("{base}&brand={brand}"),
                &t.admin,
                None,
                None,
            )
            .await;
        assert_eq!(only.body["first_response"]["count"], count, "{}", only.text);
    }
    // The conversations behind a figure.
    let drill = |figure: &str| {
        let path = format!(
            "/api/v1/reports/kpis/conversations?from=2026-11-01&to=2026-11-21&tz=Asia/Tehran&figure={figure}"
        );
        let t = &t;
        async move { t.call(Method::GET, &path, &t.admin, None, None).await }
    };
    let behind = drill("first_response").await;
    assert_eq!(behind.body.as_array().unwrap().len(), 8, "{}", behind.text);
    assert!(
        behind
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["seconds"] == 147_600)
    );
    // Every answered customer turn, one row each: the ten of the average response.
    let turns = drill("average_response").await;
    assert_eq!(turns.body.as_array().unwrap().len(), 10, "{}", turns.text);
    assert!(
        turns
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["seconds"] == 1200)
    );
    // Each resolution with its FCR outcome, as the report counted them: 4 yes, 2 no, 1 pending.
    let resolved = drill("resolved").await;
    let outcomes = |fcr: &str| {
        resolved
            .body
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["detail"].as_str().unwrap_or("").ends_with(fcr))
            .count()
    };
    assert_eq!(
        (
            outcomes("fcr=yes"),
            outcomes("fcr=no"),
            outcomes("fcr=pending")
        ),
        (4, 2, 1),
        "{}",
        resolved.text
    );
    assert_eq!(drill("unanswered").await.body.as_array().unwrap().len(), 1);
    assert_eq!(drill("backlog").await.body.as_array().unwrap().len(), 3);
    assert_eq!(drill("sideways").await.code(), "invalid_query");

    // The dashboard page: cards with their notes, charts, the drill-down and CSV.
    let cookie = sign_in(&t, "admin@shop.example").await;
    let query = "from=2026-11-01&to=2026-11-21&tz=Asia%2FTehran&step=day";
    let page = t
        .page(
            Method::GET,
            &format!("/reports?{query}"),
            None,
            &cookie,
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("id=\"kpi-first-response\""));
    assert!(page.text.contains("<svg class=\"chart\""));
    assert!(
        plain(&page.text).contains("8 conversations"),
        "the first response's sample"
    );
    assert!(page.text.contains("How this is calculated"));
    assert!(page.text.contains("/reports/customers?figure=retention"));
    let buyers = t
        .page(
            Method::GET,
            &format!("/reports/customers?figure=repeat_purchase&{query}"),
            None,
            &cookie,
            None,
        )
        .await;
    assert_eq!(buyers.status, StatusCode::OK, "{}", buyers.text);
    let text = plain(&buyers.text);
    assert!(
        text.contains("Customers who ordered in the period"),
        "{text}"
    );
    assert!(text.contains("2 orders"), "{text}");
    let list = t
        .page(
            Method::GET,
            &format!("/reports/conversations?figure=first_response&{query}"),
            None,
            &cookie,
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.text.matches("href=\"/conversations/").count(), 8);
    let csv = t
        .page(
            Method::GET,
            &format!("/reports/export.csv?table=summary&{query}"),
            None,
            &cookie,
            None,
        )
        .await;
    assert!(
        csv.text.starts_with("group,first_responses,"),
        "{}",
        csv.text
    );
    assert!(
        csv.text.contains("\r\nperiod,8,900.0,147600,"),
        "{}",
        csv.text
    );
    let agent_cookie = sign_in(&t, "sara@shop.example").await;
    let refused = t
        .page(Method::GET, "/reports", None, &agent_cookie, None)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Only supervisors and admins read reports; bad queries get precise codes.
    let agent = t
        .call(
            Method::GET,
            "/api/v1/reports/kpis?from=2026-11-01&to=2026-11-21",
            &t.agent,
            None,
            None,
        )
        .await;
    assert_eq!(agent.status, StatusCode::FORBIDDEN);
    for bad in [
        "from=2026-11-31&to=2026-12-01",
        "from=2026-11-01&to=2026-11-21&tz=Mars/Olympus",
        "from=2026-11-01&to=2026-11-21&clock=lunar",
    ] {
        let reply = t
            .call(
                Method::GET,
                &format!("/api/v1/reports/kpis?{bad}"),
                &t.admin,
                None,
                None,
            )
            .await;
        assert_eq!(reply.code(), "invalid_query", "{bad}: {}", reply.text);
    }
    let backwards = t
        .call(
            Method::GET,
            "/api/v1/reports/kpis?from=2026-11-21&to=2026-11-01",
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(backwards.code(), "invalid_value");

    // Service impact: the 90 days after the November resolutions have not passed yet.
    let impact_path = "/api/v1/reports/service-impact?from=2026-11-01&to=2026-11-21&tz=Asia/Tehran";
    let early = t.call(Method::GET, impact_path, &t.admin, None, None).await;
    assert_eq!(early.status, StatusCode::OK, "{}", early.text);
    assert_eq!(early.body["pending"], 5, "a to e, {}", early.text);
    assert_eq!(early.body["all"]["denominator"], 0);
    // A answered CSAT 5 and C2 answered 2; by March every horizon has passed.
    let mut conn = t.app.store.conn().await.unwrap();
    for (id, score) in [(a, 5), (c2, 2)] {
        let c = seva_store::conversations::find(&mut conn, seva_domain::ConversationId(id))
            .await
            .unwrap();
        let survey = seva_store::surveys::insert(
            &mut conn,
            &seva_store::surveys::NewSurvey {
                customer: c.customer_id,
                conversation: Some(c.id),
                brand: None,
                channel: seva_domain::survey::SurveyChannel::Email,
                asks: &[seva_domain::survey::SurveyKind::Csat],
                at: at("2026-11-12T00:00:00Z"),
            },
        )
        .await
        .unwrap();
        seva_store::surveys::answer(
            &mut conn,
            survey,
            seva_domain::survey::SurveyKind::Csat,
            score,
            at("2026-11-12T01:00:00Z"),
        )
        .await
        .unwrap();
    }
    drop(conn);
    t.clock.set(at("2027-03-01T12:00:00Z"));
    let impact = t.call(Method::GET, impact_path, &t.admin, None, None).await;
    let i = &impact.body;
    let ratio = |v: &Value| {
        (
            v["numerator"].as_i64().unwrap(),
            v["denominator"].as_i64().unwrap(),
        )
    };
    // Customers with a conversation resolved (and still resolved) in the period, each by
    // their last resolution in it: a (A), b (B), c (C2), d (D2), e (E). Ordered again within
    // 90 days of it: a (o2) and b (o4).
    assert_eq!(ratio(&i["all"]), (2, 5), "{i}");
    assert_eq!(i["pending"], 0);
    assert_eq!(ratio(&i["by_csat"]["good"]), (1, 1), "a");
    assert_eq!(ratio(&i["by_csat"]["bad"]), (0, 1), "c");
    assert_eq!(ratio(&i["by_csat"]["none"]), (1, 3), "b, d, e");
    assert_eq!(ratio(&i["by_fcr"]["yes"]), (1, 4), "A, C2, D2, E");
    assert_eq!(ratio(&i["by_fcr"]["no"]), (1, 1), "B");
    // Within 4 calendar hours: all but A (18 h) and B (41 h).
    assert_eq!(ratio(&i["by_first_response"]["within_target"]), (0, 3));
    assert_eq!(ratio(&i["by_first_response"]["over_target"]), (2, 2));
    // Ordered in the period without a conversation: z, who did not order again.
    assert_eq!(ratio(&i["no_conversation"]), (0, 1));
    // On the business clock A's first response took 2 h and B's 1 h: all within the target.
    let business = t
        .call(
            Method::GET,
            &format!("{impact_path}&clock=business"),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(
        ratio(&business.body["by_first_response"]["within_target"]),
        (2, 5)
    );
    // Signed in again: months have passed.
    let cookie = sign_in(&t, "admin@shop.example").await;
    let page = t
        .page(
            Method::GET,
            "/reports/impact?from=2026-11-01&to=2026-11-21&tz=Asia%2FTehran",
            None,
            &cookie,
            Some("fa"),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let text = plain(&page.text);
    assert!(
        text.contains("همهٔ مشتریان با گفتگوی رسیدگی‌شده</th><td>۵</td><td>۲</td><td>۴۰.۰%</td>"),
        "{text}"
    );
    t.finish().await;
}

/// Reports keep settled days in memory: each change to what an old day counts (an import, a
/// reassignment, a tag, a returning customer, a merge, a changed survey answer) must show in
/// the next report, and a report read twice must say the same.
async fn cached_days_follow_every_change_to_an_old_day(backend: Backend) {
    let t = TestApp::new(backend).await;
    t.clock.set(at("2026-02-20T12:00:00Z"));
    let mut conn = t.app.store.conn().await.unwrap();
    let brand = seva_store::staff::insert_brand(&mut conn, "Kahroba", t0())
        .await
        .unwrap();
    drop(conn);
    let shop = Shop {
        t: &t,
        brand: brand.0,
    };
    let read = |query: &str| {
        let path = format!("/api/v1/reports/kpis?from=2026-01-01&to=2026-01-31&tz=UTC{query}");
        let t = &t;
        async move {
            let reply = t.call(Method::GET, &path, &t.admin, None, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            reply.body
        }
    };
    let early = shop
        .one_touch(
            "a@example.com",
            "2026-01-05T09:00:00Z",
            "2026-01-05T09:10:00Z",
            "2026-01-05T09:20:00Z",
        )
        .await;
    let middle = shop
        .one_touch(
            "b@example.com",
            "2026-01-15T09:00:00Z",
            "2026-01-15T09:30:00Z",
            "2026-01-15T09:40:00Z",
        )
        .await;
    let late = shop
        .one_touch(
            "c@example.com",
            "2026-01-17T09:00:00Z",
            "2026-01-17T10:00:00Z",
            "2026-01-17T10:10:00Z",
        )
        .await;
    // Orders: p twice in January (a repeat), q in December and January (retained), r last in
    // June (churned by the end of January).
    shop.order("p@example.com", "p1", "2026-01-03T10:00:00Z")
        .await;
    shop.order("p@example.com", "p2", "2026-01-20T10:00:00Z")
        .await;
    shop.order("q@example.com", "q1", "2025-12-10T10:00:00Z")
        .await;
    shop.order("q@example.com", "q2", "2026-01-10T10:00:00Z")
        .await;
    shop.order("r@example.com", "r1", "2025-06-01T10:00:00Z")
        .await;
    let first = read("&step=day&by=agent").await;
    assert_eq!(first["first_response"]["count"], 3, "{first}");
    let ratio = |k: &Value, name: &str| {
        (
            k[name]["numerator"].as_i64().unwrap(),
            k[name]["denominator"].as_i64().unwrap(),
        )
    };
    assert_eq!(ratio(&first, "repeat_purchase_rate"), (1, 2));
    assert_eq!(ratio(&first, "retention_rate"), (1, 1));
    assert_eq!(first["churned_customers"]["count"], 1);
    assert_eq!(first["first_contact_resolution"]["numerator"], 3);
    assert_eq!(
        read("&step=day&by=agent").await,
        first,
        "the same report twice"
    );
    // Views asked at once wait for one another's reading, and all answer the same.
    let (daily, again, weekly) = tokio::join!(
        read("&step=day&by=agent&compare=previous"),
        read("&step=day&by=agent&compare=previous"),
        read("&step=week&compare=previous"),
    );
    assert_eq!(daily, again);
    assert_eq!(daily["first_response"], weekly["first_response"]);
    assert_eq!(
        daily["previous"]["first_response"]["count"], 0,
        "nothing in December"
    );

    // An import on a day already read.
    shop.one_touch(
        "d@example.com",
        "2026-01-05T12:00:00Z",
        "2026-01-05T14:00:00Z",
        "2026-01-05T14:10:00Z",
    )
    .await;
    let k = read("&step=day&by=agent").await;
    assert_eq!(k["first_response"]["count"], 4, "{k}");
    assert_eq!(k["series"][4]["first_response"]["count"], 2, "5 January");

    // Orders imported on old days, and one cancelled.
    shop.order("s@example.com", "s1", "2025-12-15T10:00:00Z")
        .await;
    shop.order("u@example.com", "u1", "2025-05-01T10:00:00Z")
        .await;
    let cancelled = t
        .call(
            Method::POST,
            "/api/v1/orders",
            &t.admin,
            Some(
                json!({"external_id": "p2", "customer": {"email": "p@example.com"},
                        "currency": "IRR", "total": 1_000_000, "status": "cancelled",
                        "placed_at": "2026-01-20T10:00:00Z"}),
            ),
            None,
        )
        .await;
    assert!(cancelled.status.is_success(), "{}", cancelled.text);
    let k = read("&step=day&by=agent").await;
    assert_eq!(ratio(&k, "repeat_purchase_rate"), (0, 2), "p2 is cancelled");
    assert_eq!(
        ratio(&k, "retention_rate"),
        (1, 2),
        "s ordered in December only"
    );
    assert_eq!(
        k["churned_customers"]["count"], 2,
        "r and u: nothing for 180 days"
    );

    // A reassignment moves the conversation to the agent's row of the breakdown.
    let me = t
        .call(Method::GET, "/api/v1/me", &t.admin, None, None)
        .await;
    let admin_id = me.body["id"].as_i64().unwrap();
    let admin_key = admin_id.to_string();
    let assigned = t
        .call(
            Method::PATCH,
            &format!("/api/v1/conversations/{early}"),
            &t.admin,
            Some(json!({"assignee_id": admin_id})),
            None,
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
    let k = read("&step=day&by=agent").await;
    let row = k["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == admin_key.as_str())
        .unwrap_or_else(|| panic!("no row for the agent: {k}"));
    assert_eq!(row["first_response"]["count"], 1, "{row}");

    // A tag given now counts under the tag on its old day.
    assert_eq!(read("&tag=refund").await["first_response"]["count"], 0);
    let tagged = t
        .call(
            Method::PATCH,
            &format!("/api/v1/conversations/{middle}"),
            &t.admin,
            Some(json!({"tags": ["refund"]})),
            None,
        )
        .await;
    assert_eq!(tagged.status, StatusCode::OK, "{}", tagged.text);
    assert_eq!(read("&tag=refund").await["first_response"]["count"], 1);

    // A's customer comes back within seven days (imported): A is no longer FCR.
    shop.customer_writes("a@example.com", "2026-01-08T09:00:00Z")
        .await;
    let k = read("&step=day&by=agent").await;
    assert_eq!(k["first_contact_resolution"]["numerator"], 3, "{k}");
    assert_eq!(k["first_contact_resolution"]["denominator"], 4);

    // C's customer merged into B's: C opened two days after B's resolution, so B is not FCR.
    let customer_of = |id: i64| {
        let t = &t;
        async move {
            let path = format!("/api/v1/conversations/{id}");
            let reply = t.call(Method::GET, &path, &t.admin, None, None).await;
            reply.body["customer_id"].as_i64().unwrap()
        }
    };
    let (into, from) = (customer_of(middle).await, customer_of(late).await);
    let merged = t
        .call(
            Method::POST,
            &format!("/api/v1/customers/{into}/merge"),
            &t.admin,
            Some(json!({"from": from})),
            None,
        )
        .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.text);
    let k = read("&step=day&by=agent").await;
    assert_eq!(k["first_contact_resolution"]["numerator"], 2, "{k}");

    // A survey answered on 16 January, then changed: the change shows on that day.
    let mut conn = t.app.store.conn().await.unwrap();
    let conversation =
        seva_store::conversations::get(&mut conn, seva_domain::ConversationId(middle))
            .await
            .unwrap();
    let survey = seva_store::surveys::insert(
        &mut conn,
        &seva_store::surveys::NewSurvey {
            customer: conversation.customer_id,
            conversation: Some(conversation.id),
            brand: Some(brand),
            channel: seva_domain::survey::SurveyChannel::Email,
            asks: &[seva_domain::survey::SurveyKind::Csat],
            at: at("2026-01-16T09:00:00Z"),
        },
    )
    .await
    .unwrap();
    let csat = seva_domain::survey::SurveyKind::Csat;
    seva_store::surveys::answer(&mut conn, survey, csat, 2, at("2026-01-16T10:00:00Z"))
        .await
        .unwrap();
    drop(conn);
    let k = read("&step=day").await;
    assert_eq!(k["csat"]["answers"], 1, "{}", k["csat"]);
    close(&k["csat"]["satisfied"]["percent"], 0.0);
    let mut conn = t.app.store.conn().await.unwrap();
    seva_store::surveys::answer(&mut conn, survey, csat, 5, at("2026-02-20T12:00:00Z"))
        .await
        .unwrap();
    drop(conn);
    let k = read("&step=day").await;
    close(&k["csat"]["satisfied"]["percent"], 100.0);
    assert_eq!(
        k["series"][15]["csat"]["answers"], 1,
        "counted on 16 January"
    );
}
