//! Pages for customers, without an agent's account: the contact form (hosted at `/contact` and
//! `/contact/{brand}`, embeddable in an iframe with `?embed=1`) and the customer portal
//! (`/portal`: a sign-in link by email, then the customer's own conversations).
//!
//! Spam protection needs no outside service: a honeypot field people never see, a signed time
//! stamp (a form sent within seconds of loading, or days later, is refused), and rate limits per
//! network address (here, in memory) and per address over an hour (in the database, shared by
//! every instance).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, FromRequest as _, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;
use seva_app::AppError;
use seva_app::attachments::NewFile;
use seva_app::public::{ContactForm, MailText, PORTAL_SESSION_LIFETIME};
use seva_domain::{BrandId, ConversationId, CustomerId, MessageKind};

use super::format::Format;
use super::{FORM_CSRF_COOKIE, csrf_ok, new_csrf, render, time_like};
use crate::AppState;
use crate::i18n::Tr;

const PORTAL_COOKIE: &str = "seva_portal";
/// Largest contact form: the text and up to 25 MB of files (each file is limited by the app).
pub const MAX_FORM_BYTES: usize = 26 * 1024 * 1024;
/// A form sent sooner than this after its page loaded was not typed by a person.
const FORM_MIN_SECS: i64 = 3;
/// A form page older than this has expired.
const FORM_MAX_SECS: i64 = 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contact", get(contact_page).post(contact_send))
        .route("/contact/{brand}", get(contact_page).post(contact_send))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .route("/portal", get(portal_home).post(portal_request))
        .route("/portal/link/{token}", get(link_page).post(link_use))
        .route(
            "/portal/conversations/{id}",
            get(portal_thread).post(portal_reply),
        )
        .route("/portal/logout", post(portal_logout))
}

// ---- rate limits ----------------------------------------------------------------------------

/// Fixed one-minute windows of requests per (purpose, network address), in this process.
#[derive(Debug, Default)]
pub struct Limiter {
    windows: Mutex<Windows>,
}

/// Each (purpose, address): when its minute started, and the requests in it.
type Windows = HashMap<(&'static str, IpAddr), (Instant, u32)>;

impl Limiter {
    /// Whether one more `purpose` request from `ip` fits in `per_minute`. Loopback peers are
    /// not limited: that is a reverse proxy on the same machine (which cannot tell its clients
    /// apart here, so limits per address belong in the proxy) or a local load test.
    pub fn allow(&self, purpose: &'static str, ip: IpAddr, per_minute: u32) -> bool {
        if ip.is_loopback() {
            return true;
        }
        let now = Instant::now();
        let Ok(mut windows) = self.windows.lock() else {
            return true;
        };
        if windows.len() > 50_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_mins(1));
        }
        let entry = windows.entry((purpose, ip)).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_mins(1) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= per_minute
    }
}

/// The client's network address: the connection's peer, or, when that is a reverse proxy on
/// the same machine, the address it appended to `X-Forwarded-For` (the last one: earlier ones
/// are whatever the client claimed). 0.0.0.0 when the server was started without peer
/// addresses, as in some tests.
pub fn client_ip(headers: &HeaderMap, extensions: &axum::http::Extensions) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    if !peer.is_loopback() {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
        .next_back()
        .unwrap_or(peer)
}

/// [`client_ip`] as an extractor.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(client_ip(&parts.headers, &parts.extensions)))
    }
}

fn too_many(tr: &Tr<'_>) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, "60")],
        tr.t("public-rate-limited"),
    )
        .into_response()
}

pub(crate) fn language<'a>(state: &'a AppState, headers: &HeaderMap, lang: Option<&str>) -> Tr<'a> {
    super::tr(state, headers, lang)
}

// ---- contact form ---------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    embed: Option<String>,
    #[serde(default)]
    lang: Option<String>,
}

#[derive(Template)]
#[template(path = "contact.html")]
struct ContactPage<'a> {
    tr: Tr<'a>,
    action: String,
    embed: bool,
    issued: String,
    form: FormFields,
    error: Option<String>,
    sent: Option<i64>,
}

#[derive(Debug, Default, Clone)]
struct FormFields {
    name: String,
    email: String,
    subject: String,
    order_number: String,
    text: String,
    website: String,
    issued: String,
    files: Vec<NewFile>,
}

fn brand_of(path: Option<Path<i64>>) -> Option<BrandId> {
    path.map(|Path(id)| BrandId(id))
}

fn action_of(brand: Option<BrandId>, q: &PageQuery, tr: &Tr<'_>) -> String {
    let base = brand.map_or_else(|| "/contact".to_owned(), |b| format!("/contact/{}", b.0));
    let embed = if q.embed.is_some() { "&embed=1" } else { "" };
    format!("{base}?lang={}{embed}", tr.lang)
}

/// An embedded form may be framed by any site; everything else Seva serves may not.
fn framing(response: Response, embed: bool) -> Response {
    let mut response = response;
    if embed {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; frame-ancestors *; form-action 'self'"),
        );
        response.headers_mut().insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("ALLOWALL"),
        );
    }
    response
}

async fn contact_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    brand: Option<Path<i64>>,
    Query(q): Query<PageQuery>,
) -> Response {
    let tr = language(&state, &headers, q.lang.as_deref());
    let brand = brand_of(brand);
    let issued = match state.app.form_token().await {
        Ok(token) => token,
        Err(e) => {
            tracing::error!(error = %e, "contact form unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, tr.t("error-generic")).into_response();
        }
    };
    let page = ContactPage {
        action: action_of(brand, &q, &tr),
        embed: q.embed.is_some(),
        issued,
        form: FormFields::default(),
        error: None,
        sent: None,
        tr,
    };
    framing(render(&page, StatusCode::OK), q.embed.is_some())
}

/// Reads the form (multipart, for files). `Err` is the message key to show.
async fn read_form(state: &AppState, request: Request) -> Result<FormFields, &'static str> {
    let mut parts = Multipart::from_request(request, state)
        .await
        .map_err(|_| "error-generic")?;
    let mut form = FormFields::default();
    while let Some(field) = parts.next_field().await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "contact-too-large"
        } else {
            "error-generic"
        }
    })? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "files" {
            let filename = field.file_name().unwrap_or_default().to_owned();
            let content_type = field.content_type().unwrap_or_default().to_owned();
            let bytes = field.bytes().await.map_err(|_| "contact-too-large")?;
            if !(filename.is_empty() && bytes.is_empty()) {
                form.files.push(NewFile {
                    filename,
                    content_type,
                    bytes: bytes.to_vec(),
                });
            }
            continue;
        }
        let value = field.text().await.map_err(|_| "error-generic")?;
        match name.as_str() {
            "name" => form.name = value,
            "email" => form.email = value,
            "subject" => form.subject = value,
            "order_number" => form.order_number = value,
            "text" => form.text = value,
            "website" => form.website = value,
            "issued" => form.issued = value,
            _ => {}
        }
    }
    Ok(form)
}

fn contact_refusal(e: &AppError) -> (&'static str, StatusCode) {
    use seva_domain::ValueError as V;
    match e {
        AppError::Invalid(V::InvalidEmail(_)) => {
            ("error-invalid-email", StatusCode::UNPROCESSABLE_ENTITY)
        }
        AppError::Invalid(V::Empty { .. }) => ("contact-missing", StatusCode::UNPROCESSABLE_ENTITY),
        AppError::Invalid(V::TooLong { .. }) => {
            ("contact-too-long", StatusCode::UNPROCESSABLE_ENTITY)
        }
        AppError::Invalid(_) => ("contact-invalid", StatusCode::UNPROCESSABLE_ENTITY),
        AppError::AttachmentTooLarge { .. } => ("contact-too-large", StatusCode::PAYLOAD_TOO_LARGE),
        AppError::TooManyAttachments { .. } => {
            ("contact-too-many-files", StatusCode::UNPROCESSABLE_ENTITY)
        }
        AppError::RateLimited { .. } => ("public-rate-limited", StatusCode::TOO_MANY_REQUESTS),
        AppError::NotFound(_) => ("contact-no-brand", StatusCode::NOT_FOUND),
        _ => ("error-generic", StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// The acknowledgement mailed for a new request, in the page's language.
fn acknowledgement(tr: &Tr<'_>, public_url: &str, id: ConversationId, subject: &str) -> MailText {
    let reference = seva_domain::mail::subject_reference(id);
    MailText {
        subject: format!("{} {reference}", tr.t1("ack-subject", "subject", subject)),
        body: format!(
            "{}\n\n{}\n{public_url}/portal\n",
            tr.t1("ack-body", "reference", &reference),
            tr.t("ack-portal"),
        ),
    }
}

async fn contact_send(
    State(state): State<AppState>,
    brand: Option<Path<i64>>,
    Query(q): Query<PageQuery>,
    ClientIp(ip): ClientIp,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let tr = language(&state, &headers, q.lang.as_deref());
    let embed = q.embed.is_some();
    if !state.limiter.allow("contact", ip, 20) {
        return framing(too_many(&tr), embed);
    }
    let brand = brand_of(brand);
    let action = action_of(brand, &q, &tr);
    let page =
        |form: FormFields, error: Option<String>, sent: Option<i64>, issued: String| ContactPage {
            tr,
            action: action.clone(),
            embed,
            issued,
            form,
            error,
            sent,
        };
    let form = match read_form(&state, request).await {
        Ok(form) => form,
        Err(key) => {
            let issued = state.app.form_token().await.unwrap_or_default();
            let p = page(FormFields::default(), Some(tr.t(key)), None, issued);
            return framing(render(&p, StatusCode::UNPROCESSABLE_ENTITY), embed);
        }
    };
    let age = state.app.form_token_age(&form.issued).await.ok().flatten();
    // A filled honeypot or a form sent within seconds of loading is a robot: it is told the
    // message was sent, and nothing is stored.
    if !form.website.is_empty() || age.is_some_and(|a| a.num_seconds() < FORM_MIN_SECS) {
        tracing::info!("contact form refused as automated");
        let p = page(FormFields::default(), None, Some(0), String::new());
        return framing(render(&p, StatusCode::OK), embed);
    }
    let fresh = state.app.form_token().await.unwrap_or_default();
    if age.is_none_or(|a| a.num_seconds() > FORM_MAX_SECS) {
        let p = page(form, Some(tr.t("error-form-expired")), None, fresh);
        return framing(render(&p, StatusCode::FORBIDDEN), embed);
    }
    let input = ContactForm {
        name: Some(form.name.clone()),
        email: form.email.clone(),
        subject: form.subject.clone(),
        text: form.text.clone(),
        order_number: Some(form.order_number.clone()),
        language: Some(tr.lang.to_owned()),
    };
    let public_url = state.config.public_url.clone();
    let subject = form.subject.trim().to_owned();
    let outcome = state
        .app
        .submit_contact_form(brand, &input, &form.files, &ip.to_string(), |id| {
            acknowledgement(&tr, &public_url, id, &subject)
        })
        .await;
    match outcome {
        Ok(id) => {
            let p = page(FormFields::default(), None, Some(id.0), String::new());
            framing(render(&p, StatusCode::OK), embed)
        }
        Err(e) => {
            let (key, status) = contact_refusal(&e);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::error!(error = %e, "contact form failed");
            }
            let mut form = form;
            form.files.clear();
            let p = page(form, Some(tr.t(key)), None, fresh);
            framing(render(&p, status), embed)
        }
    }
}

// ---- customer portal ------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "portal.html")]
struct PortalPage<'a> {
    tr: Tr<'a>,
    view: PortalView,
}

enum PortalView {
    /// Ask for a sign-in link (or: the link was sent).
    Request {
        sent: bool,
        error: Option<String>,
    },
    /// Confirm using a link (or: it is not valid).
    Link {
        token: String,
        csrf: String,
        valid: bool,
    },
    List {
        rows: Vec<PortalRow>,
    },
    Thread(Box<ThreadView>),
    NotFound,
}

struct PortalRow {
    id: i64,
    subject: String,
    status: String,
    channel: String,
    at: String,
}

struct ThreadView {
    id: i64,
    subject: String,
    status: String,
    can_reply: bool,
    notice: Option<String>,
    messages: Vec<PortalMessage>,
    /// Questions of this conversation's surveys still unanswered.
    surveys: Vec<super::surveys::PortalPrompt>,
}

struct PortalMessage {
    mine: bool,
    author: String,
    text: String,
    at: String,
}

fn portal_page(tr: Tr<'_>, view: PortalView, status: StatusCode) -> Response {
    render(&PortalPage { tr, view }, status)
}

pub(crate) async fn portal_customer(state: &AppState, jar: &CookieJar) -> Option<CustomerId> {
    let token = jar.get(PORTAL_COOKIE)?.value().to_owned();
    state.app.portal_customer(&token).await.ok().flatten()
}

async fn portal_home(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Query(q): Query<PageQuery>,
) -> Response {
    let tr = language(&state, &headers, q.lang.as_deref());
    let Some(customer) = portal_customer(&state, &jar).await else {
        let view = PortalView::Request {
            sent: false,
            error: None,
        };
        return portal_page(tr, view, StatusCode::OK);
    };
    let conversations = match state.app.portal_conversations(customer).await {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "portal list failed");
            return (StatusCode::SERVICE_UNAVAILABLE, tr.t("error-generic")).into_response();
        }
    };
    let fmt = Format::new(tr.lang, None, None);
    let rows = conversations
        .into_iter()
        .map(|c| PortalRow {
            id: c.id.0,
            subject: c
                .subject
                .clone()
                .unwrap_or_else(|| tr.t(&format!("channel-{}", c.channel.as_str()))),
            status: tr.t(&format!("status-{}", c.status.as_str())),
            channel: tr.t(&format!("channel-{}", c.channel.as_str())),
            at: fmt.date_time(c.last_activity_at),
        })
        .collect();
    portal_page(tr, PortalView::List { rows }, StatusCode::OK)
}

#[derive(Debug, Deserialize)]
struct LinkRequest {
    email: String,
}

async fn portal_request(
    State(state): State<AppState>,
    Query(q): Query<PageQuery>,
    ClientIp(ip): ClientIp,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let tr = language(&state, &headers, q.lang.as_deref());
    if !state.limiter.allow("portal-link", ip, 10) {
        return too_many(&tr);
    }
    let Ok(Form(form)) = Form::<LinkRequest>::from_request(request, &state).await else {
        let view = PortalView::Request {
            sent: false,
            error: Some(tr.t("error-invalid-email")),
        };
        return portal_page(tr, view, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let public_url = state.config.public_url.clone();
    let outcome = state
        .app
        .request_portal_link(&form.email, |token| MailText {
            subject: tr.t("portal-link-subject"),
            body: format!(
                "{}\n\n{public_url}/portal/link/{token}\n\n{}\n",
                tr.t("portal-link-body"),
                tr.t("portal-link-ignore")
            ),
        })
        .await;
    let view = match outcome {
        Ok(()) => PortalView::Request {
            sent: true,
            error: None,
        },
        Err(AppError::Invalid(_)) => PortalView::Request {
            sent: false,
            error: Some(tr.t("error-invalid-email")),
        },
        Err(e) => {
            tracing::error!(error = %e, "portal link request failed");
            PortalView::Request {
                sent: false,
                error: Some(tr.t("error-generic")),
            }
        }
    };
    let status = match &view {
        PortalView::Request { error: None, .. } => StatusCode::OK,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    portal_page(tr, view, status)
}

/// A sign-in link opens a page with a button: mail scanners that open links must not spend
/// a single-use link.
async fn link_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Path(token): Path<String>,
) -> Response {
    let tr = language(&state, &headers, None);
    let valid = state.app.portal_link_usable(&token).await.unwrap_or(false);
    let csrf = new_csrf();
    let jar = jar.add(super::cookie(&state, FORM_CSRF_COOKIE, csrf.clone(), None));
    let status = if valid {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    let view = PortalView::Link { token, csrf, valid };
    (jar, portal_page(tr, view, status)).into_response()
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn link_use(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Path(token): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let tr = language(&state, &headers, None);
    let given = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if !csrf_ok(jar.get(FORM_CSRF_COOKIE).map(Cookie::value), &given) {
        return (StatusCode::FORBIDDEN, tr.t("error-form-expired")).into_response();
    }
    match state.app.redeem_portal_link(&token).await {
        Ok(session) => {
            let age = time_like::Duration::seconds(PORTAL_SESSION_LIFETIME.num_seconds());
            let cookie = Cookie::build((PORTAL_COOKIE, session))
                .path("/portal")
                .http_only(true)
                // Strict: no other site can make the browser send it (the portal's CSRF guard).
                .same_site(SameSite::Strict)
                .secure(state.config.secure_cookies())
                .max_age(age)
                .build();
            let jar = jar
                .add(cookie)
                .remove(Cookie::build(FORM_CSRF_COOKIE).path("/"));
            (jar, Redirect::to("/portal")).into_response()
        }
        Err(AppError::PortalLinkInvalid) => {
            let view = PortalView::Link {
                token: String::new(),
                csrf: String::new(),
                valid: false,
            };
            portal_page(tr, view, StatusCode::NOT_FOUND)
        }
        Err(e) => {
            tracing::error!(error = %e, "portal sign-in failed");
            (StatusCode::SERVICE_UNAVAILABLE, tr.t("error-generic")).into_response()
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ThreadQuery {
    #[serde(default)]
    notice: Option<String>,
}

async fn portal_thread(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Path(id): Path<i64>,
    Query(q): Query<ThreadQuery>,
) -> Response {
    let tr = language(&state, &headers, None);
    let Some(customer) = portal_customer(&state, &jar).await else {
        return Redirect::to("/portal").into_response();
    };
    let thread = match state.app.portal_thread(customer, ConversationId(id)).await {
        Ok(thread) => thread,
        Err(AppError::NotFound(_)) => {
            return portal_page(tr, PortalView::NotFound, StatusCode::NOT_FOUND);
        }
        Err(e) => {
            tracing::error!(error = %e, "portal conversation failed");
            return (StatusCode::SERVICE_UNAVAILABLE, tr.t("error-generic")).into_response();
        }
    };
    let fmt = Format::new(tr.lang, None, None);
    let c = &thread.conversation;
    let surveys = match state.app.conversation_surveys(c.id).await {
        Ok(list) => {
            let brand = super::surveys::brand_name(&state, c.brand_id).await;
            super::surveys::portal_prompts(&tr, &list, &brand, state.app.now())
        }
        Err(e) => {
            tracing::error!(error = %e, "portal surveys failed");
            Vec::new()
        }
    };
    let view = ThreadView {
        surveys,
        id: c.id.0,
        subject: c
            .subject
            .clone()
            .unwrap_or_else(|| tr.t(&format!("channel-{}", c.channel.as_str()))),
        status: tr.t(&format!("status-{}", c.status.as_str())),
        can_reply: c.status != seva_domain::Status::Closed,
        notice: q
            .notice
            .filter(|n| {
                ["sent", "empty", "closed", "rated", "rating-refused"].contains(&n.as_str())
            })
            .map(|n| tr.t(&format!("portal-notice-{n}"))),
        messages: thread
            .messages
            .iter()
            .map(|(m, agent)| PortalMessage {
                mine: m.kind == MessageKind::Customer,
                author: if m.kind == MessageKind::Customer {
                    tr.t("portal-you")
                } else {
                    agent.clone().unwrap_or_else(|| tr.t("portal-support"))
                },
                text: m.text.clone(),
                at: fmt.date_time(m.created_at),
            })
            .collect(),
    };
    portal_page(tr, PortalView::Thread(Box::new(view)), StatusCode::OK)
}

#[derive(Debug, Deserialize)]
struct ReplyForm {
    #[serde(default)]
    text: String,
}

async fn portal_reply(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Path(id): Path<i64>,
    form: Result<Form<ReplyForm>, FormRejection>,
) -> Response {
    let tr = language(&state, &headers, None);
    let Some(customer) = portal_customer(&state, &jar).await else {
        return Redirect::to("/portal").into_response();
    };
    let text = form.map(|Form(f)| f.text).unwrap_or_default();
    let notice = match state
        .app
        .portal_reply(customer, ConversationId(id), &text)
        .await
    {
        Ok(_) => "sent",
        Err(AppError::NotFound(_)) => {
            return portal_page(tr, PortalView::NotFound, StatusCode::NOT_FOUND);
        }
        Err(AppError::ConversationClosed) => "closed",
        Err(AppError::Invalid(_)) => "empty",
        Err(e) => {
            tracing::error!(error = %e, "portal reply failed");
            return (StatusCode::SERVICE_UNAVAILABLE, tr.t("error-generic")).into_response();
        }
    };
    Redirect::to(&format!("/portal/conversations/{id}?notice={notice}")).into_response()
}

async fn portal_logout(State(state): State<AppState>, jar: CookieJar) -> Response {
    if let Some(token) = jar.get(PORTAL_COOKIE).map(|c| c.value().to_owned())
        && let Err(e) = state.app.portal_sign_out(&token).await
    {
        tracing::warn!(error = %e, "portal sign-out failed");
    }
    (
        jar.remove(Cookie::build(PORTAL_COOKIE).path("/portal")),
        Redirect::to("/portal"),
    )
        .into_response()
}
