//! Who and what exists: the caller, users, teams and brands.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use seva_domain::{Role, User};
use seva_store::staff;

use super::Page;
use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiCaller;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(show_me))
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
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NamedJson {
    pub id: i64,
    pub name: String,
}

/// The user the token belongs to.
#[utoipa::path(get, path = "/api/v1/me", tag = "directory",
    responses((status = 200, body = UserJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_me(ApiCaller(caller): ApiCaller) -> Json<UserJson> {
    Json(caller.user.into())
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
    responses((status = 200, body = Page<NamedJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_teams(
    State(state): State<AppState>,
    _caller: ApiCaller,
) -> ApiResult<Json<Page<NamedJson>>> {
    let mut conn = state.app.store.conn().await?;
    let teams = staff::teams(&mut conn).await?;
    Ok(Json(Page {
        items: teams
            .into_iter()
            .map(|t| NamedJson {
                id: t.id.0,
                name: t.name,
            })
            .collect(),
        next_cursor: None,
    }))
}

#[utoipa::path(get, path = "/api/v1/brands", tag = "directory",
    responses((status = 200, body = Page<NamedJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_brands(
    State(state): State<AppState>,
    _caller: ApiCaller,
) -> ApiResult<Json<Page<NamedJson>>> {
    let mut conn = state.app.store.conn().await?;
    let brands = staff::brands(&mut conn).await?;
    Ok(Json(Page {
        items: brands
            .into_iter()
            .map(|b| NamedJson {
                id: b.id.0,
                name: b.name,
            })
            .collect(),
        next_cursor: None,
    }))
}
