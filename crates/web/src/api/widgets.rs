//! `/widgets`: chat widgets (admins only). The response carries the embed key and the secret
//! a shop's server signs shoppers' identities with.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use seva_app::chat::WidgetInput;
use seva_domain::chat::{Prechat, Widget, WidgetId};
use seva_domain::{BrandId, Role};

use super::Page;
use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiCaller, ApiId, ApiJson};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/widgets", get(list_widgets).post(create_widget))
        .route("/widgets/{id}", get(show_widget).patch(update_widget))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WidgetJson {
    pub id: i64,
    pub name: String,
    /// Goes in the embed snippet; identifies the widget and grants nothing.
    pub public_key: String,
    /// Signs shoppers' identities (HMAC-SHA256) on the shop's server. Keep it there.
    pub secret: String,
    pub brand_id: Option<i64>,
    /// The sites that may embed the widget; empty: any.
    pub allowed_origins: Vec<String>,
    pub color: String,
    pub greeting: Option<String>,
    /// none, name, email or name_email: what the widget asks before the first message.
    pub prechat: String,
    /// Seconds a visitor waits for a first answer before the widget offers email; also how
    /// long an agent's chat reply waits unseen before it is emailed.
    pub away_after: u32,
    pub active: bool,
    /// The tag to put on the shop's pages.
    pub embed: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The tag a shop puts on its pages.
pub fn embed_tag(w: &Widget, public_url: &str) -> String {
    format!(
        "<script src=\"{public_url}/static/widget.js\" data-key=\"{}\" async></script>",
        w.public_key
    )
}

impl WidgetJson {
    fn new(w: Widget, public_url: &str) -> Self {
        Self {
            embed: embed_tag(&w, public_url),
            id: w.id.0,
            name: w.name,
            public_key: w.public_key,
            secret: w.secret,
            brand_id: w.brand_id.map(|b| b.0),
            allowed_origins: w.allowed_origins,
            color: w.color,
            greeting: w.greeting,
            prechat: w.prechat.as_str().to_owned(),
            away_after: w.away_after,
            active: w.active,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// A widget's settings, for creating and for replacing.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetSettings {
    pub name: String,
    pub brand_id: Option<i64>,
    /// Origins such as `https://shop.example.com`; empty or left out: any site.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// `#rrggbb`; default `#1a73e8`.
    pub color: Option<String>,
    pub greeting: Option<String>,
    /// none (default), name, email or name_email.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub prechat: Option<Prechat>,
    /// Seconds, 30 to 3600; default 120.
    pub away_after: Option<u32>,
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

impl WidgetSettings {
    fn into_input(self) -> WidgetInput {
        WidgetInput {
            name: self.name,
            brand_id: self.brand_id.map(BrandId),
            allowed_origins: self.allowed_origins,
            color: self.color,
            greeting: self.greeting,
            prechat: self.prechat.unwrap_or(Prechat::None),
            away_after: self.away_after,
            active: self.active,
        }
    }
}

/// The chat widgets, by name.
#[utoipa::path(get, path = "/api/v1/widgets", tag = "widgets",
    responses((status = 200, body = Page<WidgetJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_widgets(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> ApiResult<Json<Page<WidgetJson>>> {
    let widgets = state.app.widgets(&caller).await?;
    Ok(Json(Page {
        items: widgets
            .into_iter()
            .map(|w| WidgetJson::new(w, &state.config.public_url))
            .collect(),
        next_cursor: None,
    }))
}

/// Adds a chat widget; embed it with its `public_key`.
#[utoipa::path(post, path = "/api/v1/widgets", tag = "widgets", request_body = WidgetSettings,
    responses((status = 201, body = WidgetJson), (status = "4XX", body = ErrorBody)))]
pub async fn create_widget(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: ApiJson<WidgetSettings>,
) -> ApiResult<(StatusCode, Json<WidgetJson>)> {
    caller.require_role(Role::Admin)?;
    let widget = state
        .app
        .create_widget(&caller, &body.value.into_input())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(WidgetJson::new(widget, &state.config.public_url)),
    ))
}

/// One widget.
#[utoipa::path(get, path = "/api/v1/widgets/{id}", tag = "widgets", params(("id" = i64, Path)),
    responses((status = 200, body = WidgetJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_widget(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<WidgetJson>> {
    let widget = state
        .app
        .widgets(&caller)
        .await?
        .into_iter()
        .find(|w| w.id == WidgetId(id))
        .ok_or(seva_app::AppError::NotFound("widget"))?;
    Ok(Json(WidgetJson::new(widget, &state.config.public_url)))
}

/// Replaces a widget's settings (its key and secret stay).
#[utoipa::path(patch, path = "/api/v1/widgets/{id}", tag = "widgets", params(("id" = i64, Path)),
    request_body = WidgetSettings,
    responses((status = 200, body = WidgetJson), (status = "4XX", body = ErrorBody)))]
pub async fn update_widget(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<WidgetSettings>,
) -> ApiResult<Json<WidgetJson>> {
    let widget = state
        .app
        .update_widget(&caller, WidgetId(id), &body.value.into_input())
        .await?;
    Ok(Json(WidgetJson::new(widget, &state.config.public_url)))
}
