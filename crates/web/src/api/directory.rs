//! Who and what exists: the caller, users, teams and brands.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use seva_domain::{Digits, Role, User};
use seva_store::staff;

use super::Page;
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{ApiCaller, ApiId, ApiJson};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(show_me).patch(update_me))
        .route("/me/views", get(list_views).post(create_view))
        .route("/me/views/{id}", delete(delete_view))
        .route("/users", get(list_users))
        .route("/teams", get(list_teams))
        .route("/brands", get(list_brands))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserJson {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
    pub language: Option<String>,
    /// The IANA time zone pages show dates in; absent: UTC.
    pub time_zone: Option<String>,
    /// latn or native; absent: the language's usual digits.
    pub digits: Option<Digits>,
}

impl From<User> for UserJson {
    fn from(u: User) -> Self {
        Self {
            id: u.id.0,
            email: u.email,
            name: u.name,
            role: u.role,
            active: u.active,
            language: u.language,
            time_zone: u.time_zone,
            digits: u.digits,
        }
    }
}

/// A team or a brand.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnitJson {
    pub id: i64,
    pub name: String,
    /// Its business hours; absent: a team follows its conversations' brand, a brand is always
    /// open.
    pub business_hours_id: Option<i64>,
}

/// The user the token belongs to.
#[utoipa::path(get, path = "/api/v1/me", tag = "directory",
    responses((status = 200, body = UserJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_me(ApiCaller(caller): ApiCaller) -> Json<UserJson> {
    Json(caller.user.into())
}

/// The caller's own interface preferences; a field left out keeps its value, `null` clears it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    /// en, fa, mr or hi; `null`: the browser's language.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub language: Option<Option<String>>,
    /// An IANA time zone such as Asia/Tehran; `null`: UTC.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub time_zone: Option<Option<String>>,
    /// latn or native; `null`: the language's usual digits.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<Digits>)]
    pub digits: Option<Option<Digits>>,
}

/// Sets the caller's language, time zone and digits, as the Settings page does.
#[utoipa::path(patch, path = "/api/v1/me", tag = "directory", request_body = UpdateMe,
    responses((status = 200, body = UserJson), (status = "4XX", body = ErrorBody)))]
pub async fn update_me(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: ApiJson<UpdateMe>,
) -> ApiResult<Json<UserJson>> {
    let req = body.value;
    let user = &caller.user;
    let language = req.language.unwrap_or_else(|| user.language.clone());
    if let Some(code) = &language
        && !crate::i18n::LANGUAGES.iter().any(|l| l.0 == code)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidLanguage,
            "language must be one of en, fa, mr, hi",
        ));
    }
    let time_zone = req.time_zone.unwrap_or_else(|| user.time_zone.clone());
    if let Some(tz) = &time_zone
        && !crate::ui::is_time_zone(tz)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            "time_zone must be an IANA time zone such as Asia/Tehran",
        ));
    }
    let digits = req.digits.unwrap_or(user.digits);
    state
        .app
        .set_preferences(&caller, language.as_deref(), time_zone.as_deref(), digits)
        .await?;
    Ok(Json(state.app.user_by_email(&user.email).await?.into()))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ViewJson {
    pub id: i64,
    pub name: String,
    /// The inbox page's query string, e.g. `view=all&priority=urgent`.
    pub query: String,
}

impl From<staff::SavedView> for ViewJson {
    fn from(v: staff::SavedView) -> Self {
        Self {
            id: v.id,
            name: v.name,
            query: v.query,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateView {
    /// Up to 80 characters; saving a name again replaces that view.
    pub name: String,
    pub query: String,
}

/// The caller's saved inbox views.
#[utoipa::path(get, path = "/api/v1/me/views", tag = "directory",
    responses((status = 200, body = Page<ViewJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_views(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> ApiResult<Json<Page<ViewJson>>> {
    let views = state.app.saved_views(&caller).await?;
    Ok(Json(Page {
        items: views.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

/// Saves an inbox view for the caller.
#[utoipa::path(post, path = "/api/v1/me/views", tag = "directory", request_body = CreateView,
    responses((status = 201, body = ViewJson), (status = "4XX", body = ErrorBody)))]
pub async fn create_view(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: ApiJson<CreateView>,
) -> ApiResult<(StatusCode, Json<ViewJson>)> {
    let req = body.value;
    let query = crate::ui::canonical_inbox_query(&req.query);
    let id = state.app.save_view(&caller, &req.name, &query).await?;
    let view = state
        .app
        .saved_views(&caller)
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

/// Deletes one of the caller's saved views.
#[utoipa::path(delete, path = "/api/v1/me/views/{id}", tag = "directory", params(("id" = i64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub async fn delete_view(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<StatusCode> {
    state.app.delete_view(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/users", tag = "directory",
    responses((status = 200, body = Page<UserJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    _caller: ApiCaller,
) -> ApiResult<Json<Page<UserJson>>> {
    let mut conn = state.app.store.conn().await?;
    let users = staff::users(&mut conn).await?;
    Ok(Json(Page {
        items: users.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

#[utoipa::path(get, path = "/api/v1/teams", tag = "directory",
    responses((status = 200, body = Page<UnitJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_teams(
    State(state): State<AppState>,
    _caller: ApiCaller,
) -> ApiResult<Json<Page<UnitJson>>> {
    let mut conn = state.app.store.conn().await?;
    let teams = staff::teams(&mut conn).await?;
    Ok(Json(Page {
        items: teams
            .into_iter()
            .map(|t| UnitJson {
                id: t.id.0,
                name: t.name,
                business_hours_id: t.business_hours_id.map(|h| h.0),
            })
            .collect(),
        next_cursor: None,
    }))
}

#[utoipa::path(get, path = "/api/v1/brands", tag = "directory",
    responses((status = 200, body = Page<UnitJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_brands(
    State(state): State<AppState>,
    _caller: ApiCaller,
) -> ApiResult<Json<Page<UnitJson>>> {
    let mut conn = state.app.store.conn().await?;
    let brands = staff::brands(&mut conn).await?;
    Ok(Json(Page {
        items: brands
            .into_iter()
            .map(|b| UnitJson {
                id: b.id.0,
                name: b.name,
                business_hours_id: b.business_hours_id.map(|h| h.0),
            })
            .collect(),
        next_cursor: None,
    }))
}
