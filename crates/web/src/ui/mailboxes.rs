//! The admins' mailbox settings: the list, the form that adds and edits one, the connection
//! check and the mail set aside. Plain forms; saving redirects back. Stored passwords are
//! never put in a page: their inputs stay empty, and empty keeps them.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use serde::Deserialize;
use seva_app::AppError;
use seva_app::mail::MailboxInput;
use seva_channels::email::MailError;
use seva_domain::mail::{MailReject, Mailbox, MailboxId, Security, Server};
use seva_domain::{BrandId, Role, ValueError};

use super::inbox::Choice;
use super::session::Agent;
use super::{Shell, render};
use crate::AppState;
use crate::i18n::Tr;

/// One mailbox in the list.
pub struct MailboxRow {
    pub href: String,
    pub name: String,
    pub address: String,
    pub brand: String,
    pub checked: String,
    pub checked_iso: String,
    pub last_error: Option<String>,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "mailboxes.html")]
pub struct MailboxesPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub rows: Vec<MailboxRow>,
    pub notice: Option<String>,
}

/// What the form shows: the settings as stored or as typed, never a password.
#[derive(Debug, Clone)]
pub struct Fields {
    pub name: String,
    pub address: String,
    pub brand: String,
    pub imap_host: String,
    pub imap_port: String,
    pub imap_security: String,
    pub imap_user: String,
    pub imap_folder: String,
    pub smtp_host: String,
    pub smtp_port: String,
    pub smtp_security: String,
    pub smtp_user: String,
    pub active: bool,
}

impl Default for Fields {
    /// A new mailbox: the usual ports with TLS from the first byte.
    fn default() -> Self {
        Self {
            name: String::new(),
            address: String::new(),
            brand: String::new(),
            imap_host: String::new(),
            imap_port: "993".into(),
            imap_security: "tls".into(),
            imap_user: String::new(),
            imap_folder: "INBOX".into(),
            smtp_host: String::new(),
            smtp_port: "465".into(),
            smtp_security: "tls".into(),
            smtp_user: String::new(),
            active: true,
        }
    }
}

impl From<&Mailbox> for Fields {
    fn from(m: &Mailbox) -> Self {
        Self {
            name: m.name.clone(),
            address: m.address.clone(),
            brand: m.brand_id.map(|b| b.0.to_string()).unwrap_or_default(),
            imap_host: m.imap.host.clone(),
            imap_port: m.imap.port.to_string(),
            imap_security: m.imap.security.as_str().into(),
            imap_user: m.imap.user.clone().unwrap_or_default(),
            imap_folder: m.imap_folder.clone(),
            smtp_host: m.smtp.host.clone(),
            smtp_port: m.smtp.port.to_string(),
            smtp_security: m.smtp.security.as_str().into(),
            smtp_user: m.smtp.user.clone().unwrap_or_default(),
            active: m.active,
        }
    }
}

/// One server's outcome of a connection check.
pub struct CheckLine {
    pub server: String,
    pub ok: bool,
    pub text: String,
    /// What the server or the network said.
    pub detail: Option<String>,
}

pub struct RejectRow {
    pub uid: String,
    pub sender: String,
    pub subject: String,
    pub reason: String,
    pub detail: String,
    pub when: String,
    pub when_iso: String,
}

#[derive(Template)]
#[template(path = "mailbox.html")]
pub struct MailboxPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    /// `None`: the form adds a new mailbox.
    pub id: Option<i64>,
    pub title: String,
    pub action: String,
    pub fields: Fields,
    pub brands: Vec<Choice>,
    pub imap_securities: Vec<Choice>,
    pub smtp_securities: Vec<Choice>,
    pub imap_password_set: bool,
    pub smtp_password_set: bool,
    pub checked: Option<String>,
    pub checked_iso: String,
    pub last_error: Option<String>,
    pub check: Vec<CheckLine>,
    pub rejects: Vec<RejectRow>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

impl NoticeQuery {
    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }
}

/// The form as posted. Every field may be missing: a missing one is refused like an empty one.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MailboxForm {
    csrf: String,
    name: String,
    address: String,
    brand: String,
    imap_host: String,
    imap_port: String,
    imap_security: String,
    imap_user: String,
    imap_password: String,
    imap_folder: String,
    smtp_host: String,
    smtp_port: String,
    smtp_security: String,
    smtp_user: String,
    smtp_password: String,
    active: Option<String>,
}

impl MailboxForm {
    fn fields(&self) -> Fields {
        Fields {
            name: self.name.clone(),
            address: self.address.clone(),
            brand: self.brand.clone(),
            imap_host: self.imap_host.clone(),
            imap_port: self.imap_port.clone(),
            imap_security: self.imap_security.clone(),
            imap_user: self.imap_user.clone(),
            imap_folder: self.imap_folder.clone(),
            smtp_host: self.smtp_host.clone(),
            smtp_port: self.smtp_port.clone(),
            smtp_security: self.smtp_security.clone(),
            smtp_user: self.smtp_user.clone(),
            active: self.active.is_some(),
        }
    }

    /// The settings to save; `Err` names the message to show.
    fn input(&self, creating: bool) -> Result<MailboxInput, &'static str> {
        let security = |raw: &str| raw.parse::<Security>().map_err(|_| "notice-error");
        let brand_id = match self.brand.trim() {
            "" => None,
            raw => Some(BrandId(raw.parse().map_err(|_| "notice-error")?)),
        };
        if creating && self.imap_password.is_empty() {
            return Err("error-mailbox-password-required");
        }
        let optional = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(MailboxInput {
            name: self.name.clone(),
            address: self.address.clone(),
            brand_id,
            imap: Server {
                host: self.imap_host.clone(),
                port: parse_port(&self.imap_port)?,
                security: security(&self.imap_security)?,
                user: optional(&self.imap_user),
                // Passwords are taken as typed: spaces may belong to them.
                password: Some(self.imap_password.clone()).filter(|p| !p.is_empty()),
            },
            imap_folder: optional(&self.imap_folder),
            smtp: Server {
                host: self.smtp_host.clone(),
                port: parse_port(&self.smtp_port)?,
                security: security(&self.smtp_security)?,
                user: optional(&self.smtp_user),
                password: Some(self.smtp_password.clone()).filter(|p| !p.is_empty()),
            },
            active: self.active.is_some(),
        })
    }
}

/// A port from 1 to 65535, in Latin, Persian, Arabic-Indic or Devanagari digits (whatever the
/// admin's keyboard typed).
fn parse_port(raw: &str) -> Result<u16, &'static str> {
    ascii_digits(raw)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|p| *p > 0)
        .ok_or("error-mailbox-port")
}

/// Digits as typed on a Latin, Persian, Arabic or Devanagari keyboard, as ASCII; `None` when
/// anything else is in the way.
pub fn ascii_digits(raw: &str) -> Option<String> {
    let text = raw.trim();
    let latin = latin_digits(text);
    latin.bytes().all(|b| b.is_ascii_digit()).then_some(latin)
}

/// The text with Persian, Arabic-Indic and Devanagari digits made ASCII; the rest as it is.
pub fn latin_digits(text: &str) -> String {
    text.chars()
        .map(|c| {
            let zero = match c {
                '\u{06F0}'..='\u{06F9}' => 0x06F0,
                '\u{0660}'..='\u{0669}' => 0x0660,
                '\u{0966}'..='\u{096F}' => 0x0966,
                _ => return c,
            };
            char::from_digit(u32::from(c) - zero, 10).unwrap_or(c)
        })
        .collect()
}

/// Settings hold server passwords and secrets: only admins reach these pages (others get no
/// link).
pub fn refuse_non_admin(state: &AppState, agent: &Agent) -> Option<Response> {
    (agent.caller.user.role != Role::Admin).then(|| {
        (
            StatusCode::FORBIDDEN,
            [(header::CACHE_CONTROL, "no-store")],
            agent.tr(state).t("error-admins-only"),
        )
            .into_response()
    })
}

pub fn unavailable(e: &AppError) -> Response {
    tracing::error!(error = %e, "a settings page failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "Seva cannot reach its database right now.",
    )
        .into_response()
}

fn mailbox_not_found(state: &AppState, agent: &Agent) -> Response {
    (
        StatusCode::NOT_FOUND,
        agent.tr(state).t("mailbox-not-found"),
    )
        .into_response()
}

/// What a refused save says, and its status.
fn refusal(tr: &Tr<'_>, e: &AppError) -> (String, StatusCode) {
    let field_label = |field: &str| match field {
        "name" => tr.t("mailbox-name"),
        "imap_host" => tr.t("mailbox-imap-host"),
        "imap_user" => tr.t("mailbox-imap-user"),
        "imap_folder" => tr.t("mailbox-imap-folder"),
        "smtp_host" => tr.t("mailbox-smtp-host"),
        _ => tr.t("mailbox-settings"),
    };
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;
    match e {
        AppError::Invalid(ValueError::InvalidEmail(_)) => (tr.t("error-invalid-email"), invalid),
        AppError::Invalid(ValueError::Empty { field }) => (
            tr.t1("error-mailbox-field-required", "field", &field_label(field)),
            invalid,
        ),
        AppError::Invalid(
            ValueError::TooLong { field, .. } | ValueError::ControlCharacter { field },
        ) => (
            tr.t1("error-mailbox-field-invalid", "field", &field_label(field)),
            invalid,
        ),
        AppError::AlreadyExists(_) => (tr.t("error-mailbox-address-taken"), StatusCode::CONFLICT),
        AppError::Forbidden => (tr.t("error-admins-only"), StatusCode::FORBIDDEN),
        AppError::Invalid(_) | AppError::NotFound(_) => (tr.t("notice-error"), invalid),
        other => {
            tracing::error!(error = %other, "mailbox not saved");
            (tr.t("error-generic"), StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

/// The translated outcome of talking to one server.
fn check_line(tr: &Tr<'_>, server: String, result: &Result<(), MailError>) -> CheckLine {
    match result {
        Ok(()) => CheckLine {
            server,
            ok: true,
            text: tr.t("mailbox-check-ok"),
            detail: None,
        },
        Err(e) => CheckLine {
            server,
            ok: false,
            text: match e.code() {
                "mail_connect_failed" => tr.t("mail-error-connect"),
                "mail_sign_in_failed" => tr.t("mail-error-sign-in"),
                "mail_timeout" => tr.t("mail-error-timeout"),
                "imap_failed" => tr.t("mail-error-imap"),
                "smtp_failed" => tr.t("mail-error-smtp"),
                "mail_address_invalid" => tr.t("mail-error-address"),
                _ => tr.t("mail-error-other"),
            },
            detail: Some(e.to_string()),
        },
    }
}

fn reject_row(tr: &Tr<'_>, agent: &Agent, r: MailReject) -> RejectRow {
    RejectRow {
        uid: agent.fmt.number(r.uid),
        sender: r.sender.unwrap_or_default(),
        subject: r.subject.unwrap_or_else(|| tr.t("no-subject")),
        reason: match r.error.as_str() {
            "too_large" => tr.t("reject-too_large"),
            "unreadable" => tr.t("reject-unreadable"),
            "invalid" => tr.t("reject-invalid"),
            _ => tr.t("reject-other"),
        },
        detail: r.detail,
        when: agent.fmt.date_time(r.created_at),
        when_iso: r.created_at.to_rfc3339(),
    }
}

/// The add or edit page, before its notice, error and check results.
async fn mailbox_page<'a>(
    state: &'a AppState,
    agent: &Agent,
    mailbox: Option<&Mailbox>,
    fields: Fields,
) -> Result<MailboxPage<'a>, AppError> {
    let tr = agent.tr(state);
    let directory = state.app.directory().await?;
    let mut brands = vec![Choice {
        value: String::new(),
        label: tr.t("mailbox-no-brand"),
        selected: fields.brand.is_empty(),
    }];
    brands.extend(directory.brands.iter().map(|b| Choice {
        value: b.id.0.to_string(),
        label: b.name.clone(),
        selected: fields.brand == b.id.0.to_string(),
    }));
    let securities = |current: &str| {
        Security::ALL
            .iter()
            .map(|s| Choice {
                value: s.as_str().to_owned(),
                label: match s {
                    Security::Tls => tr.t("security-tls"),
                    Security::Starttls => tr.t("security-starttls"),
                    Security::None => tr.t("security-none"),
                },
                selected: s.as_str() == current,
            })
            .collect::<Vec<_>>()
    };
    let rejects = match mailbox {
        Some(m) => state
            .app
            .mailbox_rejects(&agent.caller, m.id)
            .await?
            .into_iter()
            .map(|r| reject_row(&tr, agent, r))
            .collect(),
        None => Vec::new(),
    };
    Ok(MailboxPage {
        shell: Shell::new(agent, &tr, String::new()),
        id: mailbox.map(|m| m.id.0),
        title: mailbox.map_or_else(|| tr.t("new-mailbox"), |m| m.name.clone()),
        action: mailbox.map_or_else(
            || "/settings/mailboxes".to_owned(),
            |m| format!("/settings/mailboxes/{}", m.id.0),
        ),
        brands,
        imap_securities: securities(&fields.imap_security),
        smtp_securities: securities(&fields.smtp_security),
        imap_password_set: mailbox.is_some_and(|m| m.imap.password.is_some()),
        smtp_password_set: mailbox.is_some_and(|m| m.smtp.password.is_some()),
        checked: mailbox.and_then(|m| m.checked_at.map(|at| agent.fmt.date_time(at))),
        checked_iso: mailbox
            .and_then(|m| m.checked_at)
            .map(|at| at.to_rfc3339())
            .unwrap_or_default(),
        last_error: mailbox.and_then(|m| m.last_error.clone()),
        fields,
        check: Vec::new(),
        rejects,
        notice: None,
        error: None,
        tr,
    })
}

/// The mailboxes, with their brand and health.
pub async fn list(
    State(state): State<AppState>,
    agent: Agent,
    Query(q): Query<NoticeQuery>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let tr = agent.tr(&state);
    let (mailboxes, directory) = match (
        state.app.mailboxes(&agent.caller).await,
        state.app.directory().await,
    ) {
        (Ok(m), Ok(d)) => (m, d),
        (Err(e), _) | (_, Err(e)) => return unavailable(&e),
    };
    let rows = mailboxes
        .into_iter()
        .map(|m| MailboxRow {
            href: format!("/settings/mailboxes/{}", m.id.0),
            brand: m
                .brand_id
                .and_then(|b| directory.brand_name(b))
                .unwrap_or("-")
                .to_owned(),
            checked: m.checked_at.map_or_else(
                || tr.t("mailbox-never-checked"),
                |at| agent.fmt.date_time(at),
            ),
            checked_iso: m.checked_at.map(|at| at.to_rfc3339()).unwrap_or_default(),
            name: m.name,
            address: m.address,
            last_error: m.last_error,
            active: m.active,
        })
        .collect();
    let page = MailboxesPage {
        shell: Shell::new(&agent, &tr, String::new()),
        rows,
        notice: q.notice.map(|_| tr.t("notice-error")),
        tr,
    };
    render(&page, StatusCode::OK)
}

/// The empty form for a new mailbox.
pub async fn new(
    State(state): State<AppState>,
    agent: Agent,
    Query(q): Query<NoticeQuery>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    match mailbox_page(&state, &agent, None, Fields::default()).await {
        Ok(mut page) => {
            page.error = q.notice.map(|_| page.tr.t("notice-error"));
            render(&page, StatusCode::OK)
        }
        Err(e) => unavailable(&e),
    }
}

/// One mailbox: its health, the connection check, its settings and the mail set aside.
pub async fn show(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<i64>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let mailbox = match state.app.mailbox(&agent.caller, MailboxId(id)).await {
        Ok(m) => m,
        Err(AppError::NotFound(_)) => return mailbox_not_found(&state, &agent),
        Err(e) => return unavailable(&e),
    };
    match mailbox_page(&state, &agent, Some(&mailbox), Fields::from(&mailbox)).await {
        Ok(mut page) => {
            match q.notice.as_deref() {
                Some("created") => page.notice = Some(page.tr.t("notice-mailbox-created")),
                Some("saved") => page.notice = Some(page.tr.t("notice-mailbox-saved")),
                Some(_) => page.error = Some(page.tr.t("notice-error")),
                None => {}
            }
            render(&page, StatusCode::OK)
        }
        Err(e) => unavailable(&e),
    }
}

/// The form again, as typed, with why it was refused.
async fn form_again(
    state: &AppState,
    agent: &Agent,
    mailbox: Option<&Mailbox>,
    form: &MailboxForm,
    error: String,
    status: StatusCode,
) -> Response {
    match mailbox_page(state, agent, mailbox, form.fields()).await {
        Ok(mut page) => {
            page.error = Some(error);
            render(&page, status)
        }
        Err(e) => unavailable(&e),
    }
}

/// Adds a mailbox and opens its page, where the connection can be checked.
pub async fn create(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    form: Result<Form<MailboxForm>, axum_extra::extract::FormRejection>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let Ok(Form(form)) = form else {
        return Redirect::to("/settings/mailboxes/new?notice=error").into_response();
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let tr = agent.tr(&state);
    let input = match form.input(true) {
        Ok(input) => input,
        Err(key) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return form_again(&state, &agent, None, &form, tr.t(key), status).await;
        }
    };
    match state.app.create_mailbox(&agent.caller, &input).await {
        Ok(m) => {
            Redirect::to(&format!("/settings/mailboxes/{}?notice=created", m.id.0)).into_response()
        }
        Err(e) => {
            let (error, status) = refusal(&tr, &e);
            form_again(&state, &agent, None, &form, error, status).await
        }
    }
}

/// Saves a mailbox's settings; empty password fields keep the stored passwords.
pub async fn update(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<MailboxForm>, axum_extra::extract::FormRejection>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let Ok(Form(form)) = form else {
        return Redirect::to(&format!("/settings/mailboxes/{id}?notice=error")).into_response();
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let tr = agent.tr(&state);
    let mailbox = match state.app.mailbox(&agent.caller, MailboxId(id)).await {
        Ok(m) => m,
        Err(AppError::NotFound(_)) => return mailbox_not_found(&state, &agent),
        Err(e) => return unavailable(&e),
    };
    let input = match form.input(false) {
        Ok(input) => input,
        Err(key) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return form_again(&state, &agent, Some(&mailbox), &form, tr.t(key), status).await;
        }
    };
    match state
        .app
        .update_mailbox(&agent.caller, mailbox.id, &input)
        .await
    {
        Ok(_) => Redirect::to(&format!("/settings/mailboxes/{id}?notice=saved")).into_response(),
        Err(AppError::NotFound("mailbox")) => mailbox_not_found(&state, &agent),
        Err(e) => {
            let (error, status) = refusal(&tr, &e);
            form_again(&state, &agent, Some(&mailbox), &form, error, status).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CheckForm {
    #[serde(default)]
    csrf: String,
}

/// Signs in to both servers and shows the outcome on the mailbox's page. The answer is the
/// page itself, not a redirect: the servers' own words are shown once and not kept (the IMAP
/// outcome is kept as the mailbox's health).
pub async fn check(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<CheckForm>, axum_extra::extract::FormRejection>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&csrf)) {
        return refused;
    }
    let (mailbox, check) =
        match crate::api::mailboxes::run_check(&state.app, &agent.caller, MailboxId(id)).await {
            Ok(done) => done,
            Err(AppError::NotFound(_)) => return mailbox_not_found(&state, &agent),
            Err(e) => return unavailable(&e),
        };
    match mailbox_page(&state, &agent, Some(&mailbox), Fields::from(&mailbox)).await {
        Ok(mut page) => {
            let tr = page.tr;
            page.check = vec![
                check_line(&tr, tr.t("mailbox-incoming"), &check.imap),
                check_line(&tr, tr.t("mailbox-outgoing"), &check.smtp),
            ];
            render(&page, StatusCode::OK)
        }
        Err(e) => unavailable(&e),
    }
}
