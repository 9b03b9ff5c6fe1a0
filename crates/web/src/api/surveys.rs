//! `/survey-settings` (what each brand asks, admins) and the surveys of a conversation or a
//! customer, with their answers.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use seva_domain::survey::{Survey, SurveyKind, SurveySettings};
use seva_domain::{BrandId, ConversationId, CustomerId};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiCaller, ApiId, ApiJson};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/survey-settings",
            get(list_survey_settings).put(save_survey_settings),
        )
        .route(
            "/conversations/{id}/surveys",
            get(list_conversation_surveys),
        )
        .route("/customers/{id}/surveys", get(list_customer_surveys))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveySettingsJson {
    /// The brand; null: the default, for conversations without a brand (or whose brand has
    /// no settings of its own) and for relationship NPS.
    pub brand_id: Option<i64>,
    /// Asked when a conversation is resolved: any of `csat`, `ces`, `nps`.
    pub on_resolution: Vec<SurveyKind>,
    /// A customer asked within this many days (0 to 365) is not asked again.
    pub quiet_days: i64,
    /// Default settings only: NPS every this many days (30 to 365) to customers who ordered.
    pub relationship_nps_days: Option<i64>,
}

fn settings_json(brand: Option<BrandId>, s: SurveySettings) -> SurveySettingsJson {
    SurveySettingsJson {
        brand_id: brand.map(|b| b.0),
        on_resolution: s.on_resolution,
        quiet_days: s.quiet_days,
        relationship_nps_days: s.relationship_nps_days,
    }
}

/// Every saved survey setting (the default first).
#[utoipa::path(get, path = "/api/v1/survey-settings", tag = "surveys",
    responses((status = 200, body = [SurveySettingsJson]), (status = "4XX", body = ErrorBody)))]
pub async fn list_survey_settings(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> ApiResult<Json<Vec<SurveySettingsJson>>> {
    let all = state.app.survey_settings(&caller).await?;
    Ok(Json(
        all.into_iter().map(|(b, s)| settings_json(b, s)).collect(),
    ))
}

/// Saves one brand's (or the default's) settings. Admins only.
#[utoipa::path(put, path = "/api/v1/survey-settings", tag = "surveys",
    request_body = SurveySettingsJson,
    responses((status = 200, body = SurveySettingsJson), (status = "4XX", body = ErrorBody)))]
pub async fn save_survey_settings(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiJson { value: body, .. }: ApiJson<SurveySettingsJson>,
) -> ApiResult<Json<SurveySettingsJson>> {
    let brand = body.brand_id.map(BrandId);
    let saved = state
        .app
        .save_survey_settings(
            &caller,
            brand,
            SurveySettings {
                on_resolution: body.on_resolution,
                quiet_days: body.quiet_days,
                relationship_nps_days: body.relationship_nps_days,
            },
        )
        .await?;
    Ok(Json(settings_json(brand, saved)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SurveyJson {
    pub id: i64,
    pub customer_id: i64,
    /// Null for relationship NPS.
    pub conversation_id: Option<i64>,
    /// `email` (one-click links) or `portal`.
    pub channel: String,
    pub asks: Vec<SurveyKind>,
    pub csat: Option<u8>,
    pub ces: Option<u8>,
    pub nps: Option<u8>,
    pub comment: Option<String>,
    pub sent_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
}

impl From<Survey> for SurveyJson {
    fn from(s: Survey) -> Self {
        Self {
            id: s.id.0,
            customer_id: s.customer_id.0,
            conversation_id: s.conversation_id.map(|c| c.0),
            channel: s.channel.to_string(),
            asks: s.asks,
            csat: s.csat,
            ces: s.ces,
            nps: s.nps,
            comment: s.comment,
            sent_at: s.created_at,
            answered_at: s.answered_at,
        }
    }
}

/// A conversation's surveys, oldest first.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/surveys", tag = "surveys",
    params(("id" = i64, Path)),
    responses((status = 200, body = [SurveyJson]), (status = "4XX", body = ErrorBody)))]
pub async fn list_conversation_surveys(
    State(state): State<AppState>,
    ApiCaller(_caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<Vec<SurveyJson>>> {
    state.app.conversation(ConversationId(id)).await?;
    let list = state.app.conversation_surveys(ConversationId(id)).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// A customer's surveys, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/surveys", tag = "surveys",
    params(("id" = i64, Path)),
    responses((status = 200, body = [SurveyJson]), (status = "4XX", body = ErrorBody)))]
pub async fn list_customer_surveys(
    State(state): State<AppState>,
    ApiCaller(_caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<Vec<SurveyJson>>> {
    state.app.customer(CustomerId(id)).await?;
    let list = state.app.customer_surveys(CustomerId(id)).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}
