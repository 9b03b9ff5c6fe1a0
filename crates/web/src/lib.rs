//! HTTP: the JSON API, the sign-in pages, health checks and the error contract. The only crate
//! that knows HTTP, HTML and JSON wire formats. Handlers are short: extract, call the app,
//! render.

pub mod api;
mod chat;
pub mod error;
pub mod extract;
pub mod i18n;
mod ui;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use seva_app::App;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ErrorCode};

/// The largest request body accepted anywhere: API messages are text, not files.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The address users reach Seva at, e.g. `http://127.0.0.1:8080` (no trailing slash).
    pub public_url: String,
}

impl WebConfig {
    /// Cookies get the `Secure` flag when Seva is reached over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub app: App,
    pub i18n: Arc<i18n::Catalogues>,
    pub config: Arc<WebConfig>,
    /// Per-address request limits of the public pages and the chat.
    pub limiter: Arc<ui::public::Limiter>,
}

impl AppState {
    /// The state the pages and API share. Survey emails are written here (the web crate
    /// knows the words and the public address), so the app is given the writer.
    pub fn new(app: App, config: WebConfig) -> Self {
        let i18n = Arc::new(i18n::Catalogues::load());
        let app = app.with_survey_mail(Arc::new(ui::surveys::SurveyWriter {
            i18n: i18n.clone(),
            public_url: config.public_url.clone(),
        }));
        Self {
            app,
            i18n,
            config: Arc::new(config),
            limiter: Arc::new(ui::public::Limiter::default()),
        }
    }
}

/// The whole application: pages, API, health checks, with logging, request ids, panic safety,
/// body limits and security headers.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .nest("/api/v1", api::router())
        .merge(ui::router())
        .merge(chat::router())
        .merge(webhooks::router())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), RequestIds::default()))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                        let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                    }),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::custom(|_| {
                    tracing::error!("a request handler panicked");
                    ApiError::internal().into_response()
                }))
                .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
                .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
                .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
                )),
        )
        .with_state(state)
}

/// Request ids: a per-process random prefix and a counter; short, unique, and cheap.
#[derive(Debug, Clone)]
struct RequestIds {
    prefix: String,
    next: Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).expect("the operating system's random generator is available");
        Self {
            prefix: hex::encode(bytes),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// The process is up: for liveness probes.
async fn healthz() -> &'static str {
    "ok"
}

/// The database answers: for load balancers deciding whether to send traffic here.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            ApiError::new(
                ErrorCode::DatabaseUnavailable,
                "the database is not reachable",
            )
            .into_response()
        }
    }
}
