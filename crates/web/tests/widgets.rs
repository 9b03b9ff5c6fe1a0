//! The chat widgets' API on both backends: admins create, read and change widgets; others are
//! refused; bad settings get precise errors.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use axum::http::{Method, StatusCode};
use serde_json::json;
use seva_store::Backend;

use common::*;

on_both_backends!(
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
