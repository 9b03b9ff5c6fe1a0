//! Chat widgets on both backends: admins create, read and change them through the API and on
//! the settings pages; others are refused; bad settings get precise errors.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

mod common;

use axum::http::{Method, StatusCode, header};
use serde_json::json;
use seva_store::Backend;

use common::*;

on_both_backends!(
    admins_add_and_edit_widgets_on_the_settings_pages,
    admins_manage_widgets_and_others_are_refused,
    bad_widget_settings_are_refused_with_precise_codes,
);

async fn admins_manage_widgets_and_others_are_refused(backend: Backend) {
    let t = TestApp::new(backend).await;
    let body = json!({"name": "Kahroba shop", "allowed_origins": ["https://Shop.Example/"],
                      "color": "#0B8043", "greeting": "سلام!", "prechat": "name_email"});
    let created = t
        .call(
            Method::POST,
            "/api/v1/widgets",
            &t.admin,
            Some(body.clone()),
            None,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(
        created.body["allowed_origins"],
        json!(["https://shop.example"])
    );
    assert_eq!(created.body["color"], "#0b8043");
    assert_eq!(created.body["prechat"], "name_email");
    assert!(
        created.body["public_key"]
            .as_str()
            .unwrap()
            .starts_with("w_")
    );
    assert!(created.body["secret"].as_str().unwrap().starts_with("whs_"));
    let embed = created.body["embed"].as_str().unwrap();
    assert!(embed.starts_with("<script src=\"http"), "{embed}");
    assert!(embed.contains("/static/widget.js\""), "{embed}");
    let key = created.body["public_key"].as_str().unwrap();
    assert!(embed.contains(&format!("data-key=\"{key}\"")), "{embed}");

    let listed = t
        .call(Method::GET, "/api/v1/widgets", &t.admin, None, None)
        .await;
    assert_eq!(listed.body["items"][0]["id"].as_i64(), Some(id));
    let changed = t
        .call(
            Method::PATCH,
            &format!("/api/v1/widgets/{id}"),
            &t.admin,
            Some(json!({"name": "Kahroba", "active": false})),
            None,
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["active"], false);
    assert_eq!(
        changed.body["public_key"], created.body["public_key"],
        "the key stays"
    );
    let shown = t
        .call(
            Method::GET,
            &format!("/api/v1/widgets/{id}"),
            &t.admin,
            None,
            None,
        )
        .await;
    assert_eq!(shown.body["name"], "Kahroba");
    let missing = t
        .call(Method::GET, "/api/v1/widgets/999", &t.admin, None, None)
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "widget_not_found")
    );
    for token in [&t.agent, &t.readonly] {
        let reply = t
            .call(
                Method::POST,
                "/api/v1/widgets",
                token,
                Some(body.clone()),
                None,
            )
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::FORBIDDEN, "forbidden")
        );
        let reply = t
            .call(Method::GET, "/api/v1/widgets", token, None, None)
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
    }
    t.finish().await;
}

async fn bad_widget_settings_are_refused_with_precise_codes(backend: Backend) {
    let t = TestApp::new(backend).await;
    for (body, code) in [
        (json!({"name": ""}), "field_required"),
        (json!({"name": "x", "color": "red"}), "invalid_value"),
        (
            json!({"name": "x", "allowed_origins": ["shop.example"]}),
            "invalid_value",
        ),
        (json!({"name": "x", "prechat": "phone"}), "invalid_body"),
        (json!({"name": "x", "brand_id": 999}), "brand_not_found"),
        (json!({"name": "x", "colour": "#ffffff"}), "invalid_body"),
    ] {
        let reply = t
            .call(
                Method::POST,
                "/api/v1/widgets",
                &t.admin,
                Some(body.clone()),
                None,
            )
            .await;
        assert_eq!(reply.code(), code, "{body}: {}", reply.text);
    }
    assert_eq!(t.count("widgets").await, 0, "nothing half-written");
    t.finish().await;
}

async fn admins_add_and_edit_widgets_on_the_settings_pages(backend: Backend) {
    let t = TestApp::new(backend).await;
    let admin = sign_in(&t, "admin@shop.example").await;
    let agent = sign_in(&t, "sara@shop.example").await;
    let settings = t.page(Method::GET, "/settings", None, &admin, None).await;
    assert!(settings.text.contains("href=\"/settings/widgets\""));
    let agents_settings = t.page(Method::GET, "/settings", None, &agent, None).await;
    assert!(!agents_settings.text.contains("/settings/widgets"));
    for path in ["/settings/widgets", "/settings/widgets/new"] {
        let refused = t.page(Method::GET, path, None, &agent, None).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
    }
    let empty = t
        .page(Method::GET, "/settings/widgets", None, &admin, None)
        .await;
    assert!(empty.text.contains("No chat widgets yet"), "{}", empty.text);

    let new = t
        .page(Method::GET, "/settings/widgets/new", None, &admin, None)
        .await;
    assert_eq!(new.status, StatusCode::OK);
    assert!(new.text.contains("value=\"120\""), "the default wait");
    let csrf = hidden_field(&new.text, "csrf");
    let fields = |away: &str, brand: &str| {
        serde_urlencoded::to_string([
            ("csrf", csrf.as_str()),
            ("name", "Kahroba shop"),
            ("brand", brand),
            (
                "origins",
                "https://Shop.Example/\r\nhttps://www.shop.example",
            ),
            ("color", "#0b8043"),
            ("greeting", "سلام! چطور می‌توانیم کمک کنیم؟"),
            ("prechat", "email"),
            ("away_after", away),
            ("active", "1"),
        ])
        .unwrap()
    };

    // Ten seconds, typed in Persian digits: too short, said in Persian; the form keeps the text.
    let short = t
        .page(
            Method::POST,
            "/settings/widgets",
            Some(&fields("۱۰", "")),
            &admin,
            Some("fa"),
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        plain(&short.text).contains("چند ثانیه برای پشتیبان صبر شود"),
        "{}",
        short.text
    );
    assert!(short.text.contains("value=\"Kahroba shop\""));
    let bad_origin = t
        .page(
            Method::POST,
            "/settings/widgets",
            Some(&fields("180", "").replace("https%3A%2F%2FShop", "shop")),
            &admin,
            None,
        )
        .await;
    assert_eq!(bad_origin.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(plain(&bad_origin.text).contains("Check “Sites allowed to show it”"));
    assert_eq!(t.count("widgets").await, 0, "nothing half-written");

    let created = t
        .page(
            Method::POST,
            "/settings/widgets",
            Some(&fields("۱۸۰", "")),
            &admin,
            None,
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text);
    let location = created.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(location.ends_with("?notice=created"), "{location}");
    let shown = t.page(Method::GET, &location, None, &admin, None).await;
    let mut conn = t.app.store.conn().await.unwrap();
    let widget = seva_store::chat::widgets(&mut conn)
        .await
        .unwrap()
        .remove(0);
    drop(conn);
    assert_eq!(widget.away_after, 180);
    assert_eq!(
        widget.allowed_origins,
        ["https://shop.example", "https://www.shop.example"]
    );
    assert!(shown.text.contains("Chat widget added."));
    assert!(
        shown
            .text
            .contains(&format!("data-key=&quot;{}&quot;", widget.public_key))
            || shown
                .text
                .contains(&format!("data-key=&#34;{}&#34;", widget.public_key)),
        "the tag to copy: {}",
        shown.text
    );
    assert!(shown.text.contains(&widget.secret), "the signing secret");
    assert!(shown.text.contains("The brand is open now"));

    // Given a brand that is closed today, the page says until when.
    let mut conn = t.app.store.conn().await.unwrap();
    let brand = seva_store::staff::insert_brand(&mut conn, "Kahroba", t0())
        .await
        .unwrap();
    drop(conn);
    let hours = t
        .call(
            Method::POST,
            "/api/v1/business-hours",
            &t.admin,
            Some(json!({"name": "Tehran", "time_zone": "Asia/Tehran",
                        "week": {"sat": "09:00-17:00"}})),
            None,
        )
        .await;
    let patched = t
        .call(
            Method::PATCH,
            &format!("/api/v1/brands/{brand}"),
            &t.admin,
            Some(json!({"business_hours_id": hours.body["id"]})),
            None,
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let path = location.trim_end_matches("?notice=created");
    let saved = t
        .page(
            Method::POST,
            path,
            Some(&fields("180", &brand.0.to_string())),
            &admin,
            None,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let shown = t
        .page(
            Method::GET,
            &format!("{path}?notice=saved"),
            None,
            &admin,
            None,
        )
        .await;
    assert!(shown.text.contains("Chat widget saved."));
    // t0 is Wednesday 2026-11-18; the brand opens on Saturday 09:00 Tehran time.
    assert!(
        plain(&shown.text).contains("The brand is closed until"),
        "{}",
        shown.text
    );
    let list = t
        .page(Method::GET, "/settings/widgets", None, &admin, None)
        .await;
    assert!(list.text.contains("Kahroba shop"));
    assert!(
        list.text
            .contains("https://shop.example, https://www.shop.example")
    );
    let missing = t
        .page(Method::GET, "/settings/widgets/999", None, &admin, None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
