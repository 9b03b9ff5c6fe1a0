//! `/mailboxes`: the email channel's settings (admins only). Passwords go in and never come
//! out: responses say `password_set` instead.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use seva_app::mail::MailboxInput;
use seva_app::{App, AppError, Caller};
use seva_channels::email::{Check, MailError};
use seva_domain::mail::{MailReject, Mailbox, MailboxId, Security, Server};
use seva_domain::{BrandId, Role};

use super::Page;
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{ApiCaller, ApiId, ApiJson};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mailboxes", get(list_mailboxes).post(create_mailbox))
        .route("/mailboxes/{id}", get(show_mailbox).patch(update_mailbox))
        .route("/mailboxes/{id}/check", post(check_mailbox))
        .route("/mailboxes/{id}/rejected", get(list_rejected_mail))
}

/// A mail server as the API shows it: everything but the password.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServerJson {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Absent: the server needs no sign-in (SMTP only).
    pub user: Option<String>,
    /// Whether a password is stored; the password itself is never returned.
    pub password_set: bool,
}

impl From<Server> for ServerJson {
    fn from(s: Server) -> Self {
        Self {
            host: s.host,
            port: s.port,
            security: s.security,
            user: s.user,
            password_set: s.password.is_some_and(|p| !p.is_empty()),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MailboxJson {
    pub id: i64,
    pub name: String,
    /// Where customers write; replies leave from it.
    pub address: String,
    pub brand_id: Option<i64>,
    pub imap: ServerJson,
    pub imap_folder: String,
    pub smtp: ServerJson,
    /// The highest IMAP UID taken in (or set aside) so far.
    pub last_uid: u32,
    /// The last time Seva reached the IMAP server.
    pub checked_at: Option<DateTime<Utc>>,
    /// The last IMAP connection error; absent when the last attempt worked.
    pub last_error: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Mailbox> for MailboxJson {
    fn from(m: Mailbox) -> Self {
        Self {
            id: m.id.0,
            name: m.name,
            address: m.address,
            brand_id: m.brand_id.map(|b| b.0),
            imap: m.imap.into(),
            imap_folder: m.imap_folder,
            smtp: m.smtp.into(),
            last_uid: m.last_uid,
            checked_at: m.checked_at,
            last_error: m.last_error,
            active: m.active,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Where Seva fetches mail. Seva signs in with `user` and `password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImapSettings {
    pub host: String,
    /// Usually 993 with `tls`, 143 with `starttls`.
    pub port: u16,
    pub security: Security,
    pub user: String,
    /// Required when creating; on an update, left out or empty keeps the stored one.
    pub password: Option<String>,
}

/// Where Seva sends replies.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    /// Usually 465 with `tls`, 587 with `starttls`.
    pub port: u16,
    pub security: Security,
    /// Left out: the server needs no sign-in.
    pub user: Option<String>,
    /// On an update, left out or empty keeps the stored one.
    pub password: Option<String>,
}

/// All of a mailbox's settings, for creating and for updating (PATCH takes the full set too,
/// except that passwords left out keep their stored value).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxSettings {
    pub name: String,
    pub address: String,
    /// The brand of conversations that start in this mailbox.
    pub brand_id: Option<i64>,
    pub imap: ImapSettings,
    /// Defaults to `INBOX`.
    pub imap_folder: Option<String>,
    pub smtp: SmtpSettings,
    /// Defaults to true; an inactive mailbox is neither fetched nor sent through.
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

impl MailboxSettings {
    fn into_input(self) -> MailboxInput {
        MailboxInput {
            name: self.name,
            address: self.address,
            brand_id: self.brand_id.map(BrandId),
            imap: Server {
                host: self.imap.host,
                port: self.imap.port,
                security: self.imap.security,
                user: Some(self.imap.user),
                password: self.imap.password,
            },
            imap_folder: self.imap_folder,
            smtp: Server {
                host: self.smtp.host,
                port: self.smtp.port,
                security: self.smtp.security,
                user: self.smtp.user,
                password: self.smtp.password,
            },
            active: self.active,
        }
    }
}

/// The outcome of talking to one server.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServerCheckJson {
    pub ok: bool,
    /// Why it failed, a stable code: `mail_connect_failed`, `mail_sign_in_failed`,
    /// `mail_timeout`, `imap_failed`, `smtp_failed`, `mail_address_invalid` or `mail_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What the server or the network said, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl From<&Result<(), MailError>> for ServerCheckJson {
    fn from(result: &Result<(), MailError>) -> Self {
        match result {
            Ok(()) => Self {
                ok: true,
                code: None,
                message: None,
            },
            Err(e) => Self {
                ok: false,
                code: Some(e.code().to_owned()),
                message: Some(e.to_string()),
            },
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MailboxCheckJson {
    pub imap: ServerCheckJson,
    pub smtp: ServerCheckJson,
}

/// A mail that could not become a message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MailRejectJson {
    pub id: i64,
    /// Its IMAP UID in the mailbox's folder.
    pub uid: u32,
    pub size: u64,
    pub sender: Option<String>,
    pub subject: Option<String>,
    /// A stable code: `too_large`, `unreadable` or `invalid`.
    pub error: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

impl From<MailReject> for MailRejectJson {
    fn from(r: MailReject) -> Self {
        Self {
            id: r.id.0,
            uid: r.uid,
            size: r.size,
            sender: r.sender,
            subject: r.subject,
            error: r.error,
            detail: r.detail,
            created_at: r.created_at,
        }
    }
}

/// Signs in to a mailbox's servers without taking or sending mail, and records the IMAP
/// outcome as the mailbox's health (what the fetcher also records), so the settings show it.
pub(crate) async fn run_check(
    app: &App,
    caller: &Caller,
    id: MailboxId,
) -> Result<(Mailbox, Check), AppError> {
    let mailbox = app.mailbox(caller, id).await?;
    let check = seva_channels::email::check(app, &mailbox).await;
    let error = check.imap.as_ref().err().map(ToString::to_string);
    app.record_mailbox_health(id, error.as_deref()).await?;
    let mailbox = app.mailbox(caller, id).await?;
    Ok((mailbox, check))
}

/// The mailboxes, by name.
#[utoipa::path(get, path = "/api/v1/mailboxes", tag = "mailboxes",
    responses((status = 200, body = Page<MailboxJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_mailboxes(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> ApiResult<Json<Page<MailboxJson>>> {
    let mailboxes = state.app.mailboxes(&caller).await?;
    Ok(Json(Page {
        items: mailboxes.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

/// Adds a mailbox. Seva starts fetching it (when active) on the next round.
#[utoipa::path(post, path = "/api/v1/mailboxes", tag = "mailboxes", request_body = MailboxSettings,
    responses((status = 201, body = MailboxJson), (status = "4XX", body = ErrorBody)))]
pub async fn create_mailbox(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: ApiJson<MailboxSettings>,
) -> ApiResult<(StatusCode, Json<MailboxJson>)> {
    // Admins only: said before anything about the body.
    caller.require_role(Role::Admin)?;
    let settings = body.value;
    if settings.imap.password.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::new(
            ErrorCode::FieldRequired,
            "imap.password is required",
        ));
    }
    let mailbox = state
        .app
        .create_mailbox(&caller, &settings.into_input())
        .await?;
    Ok((StatusCode::CREATED, Json(mailbox.into())))
}

/// One mailbox.
#[utoipa::path(get, path = "/api/v1/mailboxes/{id}", tag = "mailboxes", params(("id" = i64, Path)),
    responses((status = 200, body = MailboxJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_mailbox(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<MailboxJson>> {
    Ok(Json(
        state.app.mailbox(&caller, MailboxId(id)).await?.into(),
    ))
}

/// Replaces a mailbox's settings. Passwords left out or empty keep their stored value. A new
/// IMAP server, user or folder starts fetching again from the folder's beginning.
#[utoipa::path(patch, path = "/api/v1/mailboxes/{id}", tag = "mailboxes", params(("id" = i64, Path)),
    request_body = MailboxSettings,
    responses((status = 200, body = MailboxJson), (status = "4XX", body = ErrorBody)))]
pub async fn update_mailbox(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<MailboxSettings>,
) -> ApiResult<Json<MailboxJson>> {
    let mailbox = state
        .app
        .update_mailbox(&caller, MailboxId(id), &body.value.into_input())
        .await?;
    Ok(Json(mailbox.into()))
}

/// Signs in to the IMAP and SMTP servers (and opens the folder) without taking in or sending
/// anything. The IMAP outcome is recorded as the mailbox's `checked_at` / `last_error`.
#[utoipa::path(post, path = "/api/v1/mailboxes/{id}/check", tag = "mailboxes", params(("id" = i64, Path)),
    responses((status = 200, body = MailboxCheckJson), (status = "4XX", body = ErrorBody)))]
pub async fn check_mailbox(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<MailboxCheckJson>> {
    let (_, check) = run_check(&state.app, &caller, MailboxId(id)).await?;
    Ok(Json(MailboxCheckJson {
        imap: (&check.imap).into(),
        smtp: (&check.smtp).into(),
    }))
}

/// The newest mail (up to 50) that could not become a message, with the reason; its source is
/// kept.
#[utoipa::path(get, path = "/api/v1/mailboxes/{id}/rejected", tag = "mailboxes", params(("id" = i64, Path)),
    responses((status = 200, body = Page<MailRejectJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_rejected_mail(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<Page<MailRejectJson>>> {
    let id = MailboxId(id);
    // An unknown mailbox is a 404, not an empty list.
    state.app.mailbox(&caller, id).await?;
    let rejects = state.app.mailbox_rejects(&caller, id).await?;
    Ok(Json(Page {
        items: rejects.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}
