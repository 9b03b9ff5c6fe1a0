//! Business hours through the API on both backends: admins keep schedules and give them to
//! brands and teams, through the API and on the settings pages; bad schedules get precise
//! errors; a schedule in use cannot be deleted.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use axum::http::{Method, StatusCode, header};
use serde_json::json;
use seva_store::Backend;

use common::*;

on_both_backends!(
    admins_keep_business_hours_on_the_settings_pages,
    admins_keep_business_hours_and_give_them_to_brands_and_teams,
    bad_schedules_are_refused_with_precise_codes,
);

async fn admins_keep_business_hours_and_give_them_to_brands_and_teams(backend: Backend) {
    let t = TestApp::new(backend).await;
    let mut conn = t.app.store.conn().await.unwrap();
    let brand = seva_store::staff::insert_brand(&mut conn, "Kahroba", t0())
        .await
        .unwrap();
    let team = seva_store::staff::insert_team(&mut conn, "Tehran desk", t0())
        .await
        .unwrap();
    drop(conn);

    // Saturday to Wednesday with a lunch break, Thursday mornings, Friday off, Nowruz closed.
    let split = "16:00-20:00, 09:00-13:00";
    let body = json!({"name": "Tehran shop", "time_zone": "Asia/Tehran",
        "week": {"sat": split, "sun": split, "mon": split, "tue": split, "wed": split,
                 "thu": "09:00-13:00"},
        "holidays": ["2027-03-21", "2027-03-22"]});
    let created = t
        .call(
            Method::POST,
            "/api/v1/business-hours",
            &t.admin,
            Some(body),
            None,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(created.body["time_zone"], "Asia/Tehran");
    assert_eq!(
        created.body["week"]["sat"], "09:00-13:00 16:00-20:00",
        "intervals are sorted"
    );
    assert_eq!(created.body["week"]["fri"], "", "every day is listed");
    assert_eq!(
        created.body["holidays"],
        json!(["2027-03-21", "2027-03-22"])
    );

    // Agents may read schedules, not change them.
    let listed = t
        .call(Method::GET, "/api/v1/business-hours", &t.agent, None, None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["items"][0]["name"], "Tehran shop");
    let refused = t
        .call(
            Method::PUT,
            &format!("/api/v1/business-hours/{id}"),
            &t.agent,
            Some(json!({"name": "x", "time_zone": "UTC"})),
            None,
        )
        .await;
    assert_eq!(refused.code(), "forbidden");

    // Kolkata, Monday to Saturday: a replacement keeps the id.
    let replaced = t
        .call(
            Method::PUT,
            &format!("/api/v1/business-hours/{id}"),
            &t.admin,
            Some(json!({"name": "Pune shop", "time_zone": "Asia/Kolkata",
                "week": {"mon": "10:00-19:00", "sat": "10:00-14:00"}})),
            None,
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(replaced.body["id"].as_i64(), Some(id));
    assert_eq!(replaced.body["week"]["sat"], "10:00-14:00");
    assert_eq!(replaced.body["week"]["wed"], "");
    let at = |day: &str| replaced.text.find(&format!("\"{day}\":")).unwrap();
    let order = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map(at);
    assert!(
        order.is_sorted(),
        "the week is listed Monday first: {}",
        replaced.text
    );
    assert_eq!(replaced.body["holidays"], json!([]));

    // Given to the brand and the team; the directory shows it.
    for path in [
        format!("/api/v1/brands/{brand}"),
        format!("/api/v1/teams/{team}"),
    ] {
        let set = t
            .call(
                Method::PATCH,
                &path,
                &t.admin,
                Some(json!({"business_hours_id": id})),
                None,
            )
            .await;
        assert_eq!(set.status, StatusCode::OK, "{path}: {}", set.text);
        assert_eq!(set.body["business_hours_id"].as_i64(), Some(id));
    }
    let brands = t
        .call(Method::GET, "/api/v1/brands", &t.agent, None, None)
        .await;
    assert_eq!(
        brands.body["items"][0]["business_hours_id"].as_i64(),
        Some(id)
    );

    // In use: not deleted, and still there.
    let in_use = t
        .call(
            Method::DELETE,
            &format!("/api/v1/business-hours/{id}"),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(in_use.status, StatusCode::CONFLICT);
    assert_eq!(in_use.code(), "in_use");
    assert_eq!(t.count("business_hours").await, 1);

    // Released by both, it goes.
    for path in [
        format!("/api/v1/brands/{brand}"),
        format!("/api/v1/teams/{team}"),
    ] {
        let cleared = t
            .call(
                Method::PATCH,
                &path,
                &t.admin,
                Some(json!({"business_hours_id": null})),
                None,
            )
            .await;
        assert_eq!(cleared.body["business_hours_id"], json!(null), "{path}");
    }
    let deleted = t
        .call(
            Method::DELETE,
            &format!("/api/v1/business-hours/{id}"),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let gone = t
        .call(
            Method::GET,
            &format!("/api/v1/business-hours/{id}"),
            &t.agent,
            None,
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.code(), "business_hours_not_found");
}

async fn bad_schedules_are_refused_with_precise_codes(backend: Backend) {
    let t = TestApp::new(backend).await;
    let post = |body: serde_json::Value| {
        t.call(
            Method::POST,
            "/api/v1/business-hours",
            &t.admin,
            Some(body),
            None,
        )
    };
    for (body, code) in [
        (
            json!({"name": "A", "time_zone": "Mars/Olympus"}),
            "invalid_value",
        ),
        (
            json!({"name": "A", "time_zone": "UTC", "week": {"someday": "09:00-17:00"}}),
            "invalid_value",
        ),
        (
            json!({"name": "A", "time_zone": "UTC", "week": {"mon": "17:00-09:00"}}),
            "invalid_value",
        ),
        (
            json!({"name": "A", "time_zone": "UTC", "week": {"mon": "9-5"}}),
            "invalid_value",
        ),
        (
            json!({"name": "A", "time_zone": "UTC", "holidays": ["2027-02-30"]}),
            "invalid_value",
        ),
        (json!({"name": " ", "time_zone": "UTC"}), "field_required"),
        (
            json!({"name": "A", "time_zone": "UTC", "colour": "red"}),
            "invalid_body",
        ),
    ] {
        let reply = post(body.clone()).await;
        assert_eq!(reply.code(), code, "{body}: {}", reply.text);
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    assert_eq!(t.count("business_hours").await, 0, "nothing half-written");

    let first = post(json!({"name": "Shop", "time_zone": "UTC"})).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = post(json!({"name": "Shop", "time_zone": "UTC"})).await;
    assert_eq!(again.code(), "already_exists");

    let unknown = t
        .call(
            Method::PATCH,
            "/api/v1/brands/999",
            &t.admin,
            Some(json!({"business_hours_id": first.body["id"]})),
            None,
        )
        .await;
    assert_eq!(unknown.code(), "brand_not_found");
    let mut conn = t.app.store.conn().await.unwrap();
    let brand = seva_store::staff::insert_brand(&mut conn, "Kahroba", t0())
        .await
        .unwrap();
    drop(conn);
    let no_hours = t
        .call(
            Method::PATCH,
            &format!("/api/v1/brands/{brand}"),
            &t.admin,
            Some(json!({"business_hours_id": 999})),
            None,
        )
        .await;
    assert_eq!(no_hours.status, StatusCode::NOT_FOUND);
    assert_eq!(no_hours.code(), "business_hours_not_found");
    let empty = t
        .call(
            Method::PATCH,
            &format!("/api/v1/brands/{brand}"),
            &t.admin,
            Some(json!({})),
            None,
        )
        .await;
    assert_eq!(
        empty.code(),
        "field_required",
        "an empty PATCH changes nothing"
    );
    let by_agent = t
        .call(
            Method::PATCH,
            &format!("/api/v1/brands/{brand}"),
            &t.agent,
            Some(json!({"business_hours_id": null})),
            None,
        )
        .await;
    assert_eq!(by_agent.code(), "forbidden");
}

async fn admins_keep_business_hours_on_the_settings_pages(backend: Backend) {
    let t = TestApp::new(backend).await;
    let mut conn = t.app.store.conn().await.unwrap();
    let brand = seva_store::staff::insert_brand(&mut conn, "Kahroba", t0())
        .await
        .unwrap();
    drop(conn);
    let admin = sign_in(&t, "admin@shop.example").await;
    let agent = sign_in(&t, "sara@shop.example").await;
    let settings = t.page(Method::GET, "/settings", None, &admin, None).await;
    assert!(settings.text.contains("href=\"/settings/business-hours\""));
    let refused = t
        .page(Method::GET, "/settings/business-hours", None, &agent, None)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let new = t
        .page(
            Method::GET,
            "/settings/business-hours/new",
            None,
            &admin,
            Some("fa"),
        )
        .await;
    assert_eq!(new.status, StatusCode::OK);
    assert!(new.text.contains("شنبه"), "weekdays in the page's language");
    assert!(
        new.text.contains("name=\"mon\" value=\"09:00-17:00\""),
        "a usual week to start from"
    );
    let csrf = hidden_field(&new.text, "csrf");
    let fields = |sat: &str, holidays: &str| {
        serde_urlencoded::to_string([
            ("csrf", csrf.as_str()),
            ("name", "Tehran shop"),
            ("time_zone", "Asia/Tehran"),
            ("sat", sat),
            // Typed on a Persian keyboard.
            ("sun", "۰۹:۰۰-۱۳:۰۰ ۱۶:۰۰-۲۰:۰۰"),
            ("mon", ""),
            ("tue", ""),
            ("wed", ""),
            ("thu", "09:00-13:00"),
            ("fri", ""),
            ("holidays", holidays),
        ])
        .unwrap()
    };
    let bad = t
        .page(
            Method::POST,
            "/settings/business-hours",
            Some(&fields("9-13", "")),
            &admin,
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        plain(&bad.text).contains("“9-13” is not an opening time"),
        "{}",
        bad.text
    );
    assert!(
        bad.text.contains("value=\"Tehran shop\""),
        "what was typed stays"
    );
    let bad_day = t
        .page(
            Method::POST,
            "/settings/business-hours",
            Some(&fields("09:00-13:00", "2027-02-30")),
            &admin,
            None,
        )
        .await;
    assert!(plain(&bad_day.text).contains("“2027-02-30” is not a date"));
    assert_eq!(t.count("business_hours").await, 0);

    let created = t
        .page(
            Method::POST,
            "/settings/business-hours",
            Some(&fields(
                "16:00-20:00, 09:00-13:00",
                "2027-03-21\r\n2027-03-22",
            )),
            &admin,
            None,
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text);
    let location = created.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let shown = t.page(Method::GET, &location, None, &admin, None).await;
    assert!(shown.text.contains("Business hours saved."));
    assert!(
        shown
            .text
            .contains("name=\"sat\" value=\"09:00-13:00 16:00-20:00\"")
    );
    assert!(
        shown
            .text
            .contains("name=\"sun\" value=\"09:00-13:00 16:00-20:00\"")
    );
    assert!(shown.text.contains("2027-03-21\n2027-03-22"));
    let id: i64 = location
        .trim_end_matches("?notice=saved")
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    // The brand keeps it; then it cannot be deleted.
    let list = t
        .page(Method::GET, "/settings/business-hours", None, &admin, None)
        .await;
    assert!(
        list.text.contains("Thursday, Saturday, Sunday"),
        "{}",
        list.text
    );
    assert!(list.text.contains(&format!("value=\"brand:{}\"", brand.0)));
    let assign = serde_urlencoded::to_string([
        ("csrf", csrf.as_str()),
        ("unit", &format!("brand:{}", brand.0)),
        ("hours", &id.to_string()),
    ])
    .unwrap();
    let assigned = t
        .page(
            Method::POST,
            "/settings/business-hours/assign",
            Some(&assign),
            &admin,
            None,
        )
        .await;
    assert_eq!(assigned.status, StatusCode::SEE_OTHER);
    let brands = t
        .call(Method::GET, "/api/v1/brands", &t.agent, None, None)
        .await;
    assert_eq!(
        brands.body["items"][0]["business_hours_id"].as_i64(),
        Some(id)
    );
    let list = t
        .page(Method::GET, "/settings/business-hours", None, &admin, None)
        .await;
    assert!(
        list.text
            .contains(&format!("<option value=\"{id}\" selected>")),
        "the page shows the brand's new schedule at once"
    );
    let delete = serde_urlencoded::to_string([("csrf", csrf.as_str())]).unwrap();
    let in_use = t
        .page(
            Method::POST,
            &format!("/settings/business-hours/{id}/delete"),
            Some(&delete),
            &admin,
            None,
        )
        .await;
    let back = in_use.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let page = t.page(Method::GET, &back, None, &admin, None).await;
    assert!(
        page.text.contains("still kept by a brand or team"),
        "{}",
        page.text
    );
    assert_eq!(t.count("business_hours").await, 1);
    let forged = t
        .page(
            Method::POST,
            "/settings/business-hours/assign",
            Some(&assign.replace(&csrf, "forged")),
            &admin,
            None,
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}
