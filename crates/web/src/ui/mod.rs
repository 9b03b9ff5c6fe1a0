//! The browser pages of the foundation: sign-in, sign-out, the first-admin set-up link, and a
//! minimal signed-in page. CSRF: the sign-in and set-up forms use a double-submit cookie (there
//! is no session yet); signed-in forms carry the session's own token.

mod conversation;
mod customers;

pub(crate) use format::is_time_zone;

/// An inbox query string reduced to its view and filters, as saved views keep it.
pub(crate) fn canonical_inbox_query(raw: &str) -> String {
    inbox::InboxQuery::parse(Some(raw))
        .canonical()
        .to_query_string()
}
mod format;
mod hours;
mod inbox;
mod live;
mod mailboxes;
pub(crate) mod public;
mod reports;
mod segments;
mod session;
mod settings;
mod sla;
pub(crate) mod surveys;
mod widgets;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;
use seva_app::auth::{NewSession, SESSION_LIFETIME};
use seva_app::{AppError, Caller};

use crate::AppState;
use crate::i18n::Tr;

pub const SESSION_COOKIE: &str = "seva_session";
const FORM_CSRF_COOKIE: &str = "seva_form_csrf";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/inbox") }))
        .route("/inbox", get(inbox::show_inbox))
        .route("/inbox/bulk", post(inbox::bulk))
        .route("/views", post(inbox::save_view))
        .route("/views/{id}/delete", post(inbox::delete_view))
        .route(
            "/conversations/{id}",
            get(conversation::show_conversation).post(conversation::update),
        )
        .route(
            "/conversations/{id}/messages",
            post(conversation::add_message).layer(axum::extract::DefaultBodyLimit::max(
                conversation::MAX_REPLY_BYTES,
            )),
        )
        .route("/attachments/{id}", get(conversation::download))
        .route("/messages/{id}/source", get(conversation::download_source))
        .route("/conversations/{id}/typing", post(conversation::typing))
        .route("/conversations/{id}/orders", post(conversation::link_order))
        .route(
            "/conversations/{id}/requests",
            post(conversation::add_request),
        )
        .route("/order-requests/{id}", post(conversation::move_request))
        .route("/live", get(live::events))
        .route("/segments", get(segments::list).post(segments::create))
        .route("/segments/{id}", get(segments::show))
        .route("/segments/{id}/export.csv", get(segments::export))
        .route("/segments/{id}/delete", post(segments::delete))
        .route("/customers", get(customers::list))
        .route("/customers/{id}", get(customers::show))
        .route("/customers/{id}/tags", post(customers::save_tags))
        .route("/customers/{id}/notes", post(customers::add_note))
        .route(
            "/customers/{id}/preferences",
            post(customers::save_preferences),
        )
        .route("/customers/{id}/merge", post(customers::merge))
        .route("/customers/{id}/erase", post(customers::erase))
        .route("/customers/{id}/export.json", get(customers::export))
        .route("/reports", get(reports::show))
        .route("/reports/export.csv", get(reports::export))
        .route("/reports/conversations", get(reports::conversations))
        .route("/reports/customers", get(reports::customers))
        .route("/reports/impact", get(reports::impact))
        .route("/settings", get(settings::show).post(settings::save))
        .route(
            "/settings/surveys",
            get(surveys::settings).post(surveys::save_settings),
        )
        .route("/survey/{id}", get(surveys::show).post(surveys::answer))
        .route("/survey/{id}/{kind}/{score}", get(surveys::click))
        .route("/portal/surveys/{id}", post(surveys::portal_answer))
        .route(
            "/settings/mailboxes",
            get(mailboxes::list).post(mailboxes::create),
        )
        .route("/settings/mailboxes/new", get(mailboxes::new))
        .route(
            "/settings/mailboxes/{id}",
            get(mailboxes::show).post(mailboxes::update),
        )
        .route("/settings/mailboxes/{id}/check", post(mailboxes::check))
        .route(
            "/settings/widgets",
            get(widgets::list).post(widgets::create),
        )
        .route("/settings/widgets/new", get(widgets::new))
        .route(
            "/settings/business-hours",
            get(hours::list).post(hours::create),
        )
        .route("/settings/business-hours/new", get(hours::new))
        .route("/settings/business-hours/assign", post(hours::assign))
        .route(
            "/settings/business-hours/{id}",
            get(hours::show).post(hours::update),
        )
        .route("/settings/business-hours/{id}/delete", post(hours::delete))
        .route("/settings/sla", get(sla::list).post(sla::create))
        .route("/settings/sla/new", get(sla::new))
        .route("/settings/sla/{id}", get(sla::show).post(sla::update))
        .route("/settings/sla/{id}/delete", post(sla::delete))
        .route(
            "/settings/widgets/{id}",
            get(widgets::show).post(widgets::update),
        )
        .route("/login", get(show_login).post(sign_in))
        .route("/logout", post(sign_out))
        .route("/setup", get(show_setup).post(complete_setup))
        .route("/static/{file}", get(asset))
        .merge(public::router())
}

/// Assets compiled into the binary: (name, content type, bytes). htmx is vendored from the npm
/// registry (see static/vendor/README.md); the rest is Seva's own.
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "seva.css",
        "text/css; charset=utf-8",
        include_str!("../../static/seva.css"),
    ),
    (
        "seva.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/seva.js"),
    ),
    // The chat widget shops embed, built from widget/ with esbuild (see widget/package.json).
    (
        "widget.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/widget.js"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/vendor/htmx.min.js"),
    ),
];

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// What every workspace page shows around its content: the bar, the search box, the
/// shortcuts overlay.
pub struct Shell {
    pub csrf: String,
    pub user_name: String,
    pub role: String,
    pub search_q: String,
}

impl Shell {
    fn new(agent: &session::Agent, tr: &Tr<'_>, search_q: String) -> Self {
        Self {
            csrf: agent.csrf.clone(),
            user_name: agent.caller.user.name.clone(),
            role: tr.t(&format!("role-{}", agent.caller.user.role)),
            search_q,
        }
    }
}

fn render(template: &impl Template, status: StatusCode) -> Response {
    match template.render() {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

fn tr<'a>(state: &'a AppState, headers: &HeaderMap, preferred: Option<&str>) -> Tr<'a> {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    state.i18n.tr(state.i18n.negotiate(preferred, accept))
}

fn new_csrf() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random generator is available");
    hex::encode(bytes)
}

fn cookie(
    state: &AppState,
    name: &'static str,
    value: String,
    max_age: Option<time_like::Duration>,
) -> Cookie<'static> {
    let mut c = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(if name == SESSION_COOKIE {
            SameSite::Lax
        } else {
            SameSite::Strict
        })
        .secure(state.config.secure_cookies())
        .build();
    if let Some(age) = max_age {
        c.set_max_age(age);
    }
    c
}

/// `cookie`'s duration type, named once here.
mod time_like {
    pub type Duration = cookie::time::Duration;
}

/// Compares the form's CSRF token with the expected one in constant time.
fn csrf_ok(expected: Option<&str>, given: &str) -> bool {
    let Some(expected) = expected else {
        return false;
    };
    expected.len() == given.len()
        && !given.is_empty()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn signed_in(state: &AppState, jar: &CookieJar) -> Option<(Caller, String)> {
    let token = jar.get(SESSION_COOKIE)?.value().to_owned();
    state.app.session(&token).await.ok().flatten()
}

fn start_session(state: &AppState, jar: CookieJar, session: NewSession) -> (CookieJar, Redirect) {
    let age = time_like::Duration::seconds(SESSION_LIFETIME.num_seconds());
    let jar = jar
        .add(cookie(state, SESSION_COOKIE, session.token, Some(age)))
        .remove(Cookie::build(FORM_CSRF_COOKIE).path("/"));
    (jar, Redirect::to("/inbox"))
}

// ---- sign-in --------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    tr: Tr<'a>,
    csrf: String,
    email: String,
    error: Option<String>,
}

async fn show_login(State(state): State<AppState>, headers: HeaderMap, jar: CookieJar) -> Response {
    if signed_in(&state, &jar).await.is_some() {
        return Redirect::to("/inbox").into_response();
    }
    let csrf = new_csrf();
    let jar = jar.add(cookie(&state, FORM_CSRF_COOKIE, csrf.clone(), None));
    let page = LoginPage {
        tr: tr(&state, &headers, None),
        csrf,
        email: String::new(),
        error: None,
    };
    (jar, render(&page, StatusCode::OK)).into_response()
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    csrf: String,
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let tr = tr(&state, &headers, None);
    let csrf = new_csrf();
    let retry = |jar: CookieJar, email: String, error: String, status: StatusCode| {
        let jar = jar.add(cookie(&state, FORM_CSRF_COOKIE, csrf.clone(), None));
        let page = LoginPage {
            tr,
            csrf: csrf.clone(),
            email,
            error: Some(error),
        };
        (jar, render(&page, status)).into_response()
    };
    let Ok(Form(form)) = form else {
        return retry(
            jar,
            String::new(),
            tr.t("error-form-expired"),
            StatusCode::BAD_REQUEST,
        );
    };
    if !csrf_ok(jar.get(FORM_CSRF_COOKIE).map(Cookie::value), &form.csrf) {
        return retry(
            jar,
            form.email,
            tr.t("error-form-expired"),
            StatusCode::FORBIDDEN,
        );
    }
    match state.app.sign_in(&form.email, &form.password).await {
        Ok(session) => start_session(&state, jar, session).into_response(),
        Err(AppError::InvalidCredentials) => retry(
            jar,
            form.email,
            tr.t("error-invalid-credentials"),
            StatusCode::UNAUTHORIZED,
        ),
        Err(AppError::SignInThrottled { retry_after_secs }) => retry(
            jar,
            form.email,
            tr.t1("error-throttled", "seconds", &retry_after_secs.to_string()),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed");
            retry(
                jar,
                form.email,
                tr.t("error-generic"),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    }
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    csrf: String,
}

async fn sign_out(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<LogoutForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some((_, expected)) = signed_in(&state, &jar).await else {
        return Redirect::to("/login").into_response();
    };
    let given = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if !csrf_ok(Some(&expected), &given) {
        return (
            StatusCode::FORBIDDEN,
            "The form expired; go back and try again.",
        )
            .into_response();
    }
    if let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned())
        && let Err(e) = state.app.sign_out(&token).await
    {
        tracing::error!(error = %e, "sign-out failed");
    }
    (
        jar.remove(Cookie::build(SESSION_COOKIE).path("/")),
        Redirect::to("/login"),
    )
        .into_response()
}

// ---- first-admin set-up ---------------------------------------------------------------------

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    tr: Tr<'a>,
    valid: bool,
    csrf: String,
    token: String,
    name: String,
    email: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SetupQuery {
    token: Option<String>,
}

async fn show_setup(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    query: Result<Query<SetupQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let token = query.ok().and_then(|Query(q)| q.token).unwrap_or_default();
    let valid = !token.is_empty() && state.app.setup_token_valid(&token).await.unwrap_or(false);
    let csrf = new_csrf();
    let jar = jar.add(cookie(&state, FORM_CSRF_COOKIE, csrf.clone(), None));
    let page = SetupPage {
        tr: tr(&state, &headers, None),
        valid,
        csrf,
        token,
        name: String::new(),
        email: String::new(),
        error: None,
    };
    (
        jar,
        render(
            &page,
            if valid {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            },
        ),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct SetupForm {
    token: String,
    name: String,
    email: String,
    password: String,
    password_confirm: String,
    csrf: String,
}

async fn complete_setup(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<SetupForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let tr = tr(&state, &headers, None);
    let csrf = new_csrf();
    let Ok(Form(form)) = form else {
        let page = SetupPage {
            tr,
            valid: false,
            csrf,
            token: String::new(),
            name: String::new(),
            email: String::new(),
            error: None,
        };
        return render(&page, StatusCode::BAD_REQUEST);
    };
    let again = |jar: CookieJar, form: SetupForm, error: String, status: StatusCode| {
        let jar = jar.add(cookie(&state, FORM_CSRF_COOKIE, csrf.clone(), None));
        let page = SetupPage {
            tr,
            valid: true,
            csrf: csrf.clone(),
            token: form.token,
            name: form.name,
            email: form.email,
            error: Some(error),
        };
        (jar, render(&page, status)).into_response()
    };
    if !csrf_ok(jar.get(FORM_CSRF_COOKIE).map(Cookie::value), &form.csrf) {
        return again(jar, form, tr.t("error-form-expired"), StatusCode::FORBIDDEN);
    }
    if form.password != form.password_confirm {
        return again(
            jar,
            form,
            tr.t("error-password-mismatch"),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    match state
        .app
        .complete_setup(&form.token, &form.email, &form.name, &form.password)
        .await
    {
        Ok(session) => start_session(&state, jar, session).into_response(),
        Err(AppError::SetupLinkInvalid) => {
            let page = SetupPage {
                tr,
                valid: false,
                csrf,
                token: String::new(),
                name: String::new(),
                email: String::new(),
                error: None,
            };
            render(&page, StatusCode::NOT_FOUND)
        }
        Err(AppError::WeakPassword { min }) => again(
            jar,
            form,
            tr.t1("error-weak-password", "min", &min.to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(AppError::Invalid(seva_domain::ValueError::InvalidEmail(_))) => again(
            jar,
            form,
            tr.t("error-invalid-email"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "first-admin set-up refused");
            let message = if matches!(e, AppError::Store(_)) {
                tr.t("error-generic")
            } else {
                e.to_string()
            };
            again(jar, form, message, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}
