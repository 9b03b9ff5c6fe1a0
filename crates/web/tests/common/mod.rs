//! What the HTTP tests share: a fresh database per test on either backend, the real router,
//! users with tokens, and helpers for API calls, pages and forms.
#![allow(clippy::unwrap_used, dead_code)] // tests: a panic is the failure report

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use seva_app::{App, FixedClock};
use seva_domain::Role;
use seva_store::Backend;
use seva_store::testing::TestDb;
use tower::ServiceExt as _;

#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(seva_store::Backend::Sqlite).await })+
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(seva_store::Backend::Postgres).await })+
        }
    };
}

pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).expect("valid time")
}

pub struct TestApp {
    pub db: TestDb,
    pub app: App,
    pub clock: Arc<FixedClock>,
    pub router: axum::Router,
    pub admin: String,
    pub agent: String,
    pub readonly: String,
    /// The attachment store's folder, removed with the test.
    pub blobs: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }
}

impl TestApp {
    pub async fn new(backend: Backend) -> Self {
        let db = TestDb::new(backend).await;
        let clock = Arc::new(FixedClock::new(t0()));
        let blobs = tempfile::tempdir().unwrap();
        let app = App::new(db.store.clone(), clock.clone()).with_blobs(Arc::new(
            seva_app::attachments::LocalBlobs::new(blobs.path()),
        ));
        let state = seva_web::AppState::new(
            app.clone(),
            seva_web::WebConfig {
                public_url: "http://seva.test".into(),
            },
        );
        // The state's app: it writes survey emails.
        let app = state.app.clone();
        let router = seva_web::router(state);
        let mut tokens = Vec::new();
        for (email, role) in [
            ("admin@shop.example", Role::Admin),
            ("sara@shop.example", Role::Agent),
            ("ro@shop.example", Role::ReadOnly),
        ] {
            app.create_user(email, "Sara", role, Some("correct horse battery"), None)
                .await
                .unwrap();
            tokens.push(app.create_token(email, "test").await.unwrap());
        }
        let [admin, agent, readonly] = tokens.try_into().unwrap();
        Self {
            db,
            app,
            clock,
            router,
            admin,
            agent,
            readonly,
            blobs,
        }
    }

    pub async fn finish(self) {
        self.db.finish().await;
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, &self.agent, None, None).await
    }

    pub async fn post_conversation(&self, body: Value) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/conversations",
            &self.agent,
            Some(body),
            None,
        )
        .await
    }

    pub async fn open_conversation(&self, email: &str) -> i64 {
        let reply = self.post_conversation(json!({"customer": {"email": email}, "subject": "Order", "message": {"text": "Hi"}})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.body["id"].as_i64().unwrap()
    }

    pub async fn message(&self, id: i64, kind: &str, text: &str) -> Reply {
        self.call(
            Method::POST,
            &format!("/api/v1/conversations/{id}/messages"),
            &self.agent,
            Some(json!({"kind": kind, "text": text})),
            None,
        )
        .await
    }

    pub async fn patch(&self, id: i64, body: Value) -> Reply {
        self.call(
            Method::PATCH,
            &format!("/api/v1/conversations/{id}"),
            &self.agent,
            Some(body),
            None,
        )
        .await
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.db.count(table).await
    }

    pub async fn page(
        &self,
        method: Method,
        path: &str,
        form: Option<&str>,
        cookies: &str,
        lang: Option<&str>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::COOKIE, cookies);
        if let Some(lang) = lang {
            request = request.header(header::ACCEPT_LANGUAGE, lang);
        }
        let request = match form {
            Some(form) => request
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form.to_owned())),
            None => request.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }
}

/// An active mailbox (its servers are never reached): notices can be queued.
pub async fn add_mailbox(t: &TestApp) {
    let body = serde_json::json!({
        "name": "Kahroba Support",
        "address": "support@kahroba.example",
        "imap": {"host": "127.0.0.1", "port": 1, "security": "none", "user": "s", "password": "p"},
        "smtp": {"host": "127.0.0.1", "port": 1, "security": "none"},
    });
    let created = t
        .call(
            Method::POST,
            "/api/v1/mailboxes",
            &t.admin,
            Some(body),
            None,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
}

/// Signs a user in through the sign-in form; returns the session cookie.
pub async fn sign_in(t: &TestApp, email: &str) -> String {
    let form = t.page(Method::GET, "/login", None, "", None).await;
    let csrf = hidden_field(&form.text, "csrf");
    let body = format!(
        "email={}&password=correct+horse+battery&csrf={csrf}",
        email.replace('@', "%40")
    );
    let done = t
        .page(
            Method::POST,
            "/login",
            Some(&body),
            &cookies_of(&form),
            None,
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    cookies_of(&done)
}

/// `name=value` pairs of the Set-Cookie headers, ready for a Cookie header.
pub fn cookies_of(reply: &Reply) -> String {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .map(|i| i + marker.len())
        .expect("hidden field present");
    html[start..].split('"').next().unwrap().to_owned()
}

/// Page text without Fluent's bidi isolation marks around placeables.
pub fn plain(text: &str) -> String {
    text.replace(['\u{2068}', '\u{2069}'], "")
}
