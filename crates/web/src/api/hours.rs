//! `/business-hours`: schedules with a time zone, weekly open intervals and holidays (admins
//! change them; anyone may read them), and which team or brand keeps which.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use seva_app::hours::{HoursInput, week_texts};
use seva_domain::hours::{BusinessHours, BusinessHoursId, WEEKDAYS};
use seva_domain::{BrandId, TeamId};
use seva_store::staff;
use std::collections::BTreeMap;

use super::Page;
use super::directory::UnitJson;
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{ApiCaller, ApiId, ApiJson};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/business-hours", get(list_hours).post(create_hours))
        .route(
            "/business-hours/{id}",
            get(show_hours).put(replace_hours).delete(delete_hours),
        )
        .route("/brands/{id}", patch(update_brand))
        .route("/teams/{id}", patch(update_team))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HoursJson {
    pub id: i64,
    pub name: String,
    /// An IANA time zone, e.g. Asia/Tehran.
    pub time_zone: String,
    /// Every weekday with its open intervals, e.g. `09:00-13:00 16:00-20:00`; an empty text:
    /// closed.
    pub week: WeekJson,
    /// Local dates (`YYYY-MM-DD`) on which it stays closed.
    pub holidays: Vec<String>,
}

/// The week, Monday first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WeekJson {
    pub mon: String,
    pub tue: String,
    pub wed: String,
    pub thu: String,
    pub fri: String,
    pub sat: String,
    pub sun: String,
}

impl WeekJson {
    fn new(texts: &[(&'static str, String)]) -> Self {
        let day = |key: &str| {
            texts
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, t)| t.clone())
                .unwrap_or_default()
        };
        Self {
            mon: day("mon"),
            tue: day("tue"),
            wed: day("wed"),
            thu: day("thu"),
            fri: day("fri"),
            sat: day("sat"),
            sun: day("sun"),
        }
    }
}

impl From<BusinessHours> for HoursJson {
    fn from(h: BusinessHours) -> Self {
        Self {
            id: h.id.0,
            time_zone: h.schedule.time_zone().to_owned(),
            week: WeekJson::new(&week_texts(&h.schedule)),
            holidays: h.schedule.holidays().map(|d| d.to_string()).collect(),
            name: h.name,
        }
    }
}

/// A schedule, for creating and for replacing.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoursBody {
    pub name: String,
    pub time_zone: String,
    /// Weekday keys `mon` … `sun` to intervals such as `09:00-13:00 16:00-20:00` (an end of
    /// `24:00` is midnight); a day left out or empty is closed.
    #[serde(default)]
    pub week: BTreeMap<String, String>,
    #[serde(default)]
    pub holidays: Vec<String>,
}

impl HoursBody {
    fn into_input(self) -> Result<HoursInput, ApiError> {
        let mut week = Vec::with_capacity(self.week.len());
        for (key, text) in self.week {
            let (day, _) = WEEKDAYS.iter().find(|(_, k)| *k == key).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidValue,
                    format!("'{key}' is not a weekday: use mon, tue, wed, thu, fri, sat or sun"),
                )
            })?;
            week.push((*day, text));
        }
        Ok(HoursInput {
            name: self.name,
            time_zone: self.time_zone,
            week,
            holidays: self.holidays,
        })
    }
}

/// Every schedule, by name.
#[utoipa::path(get, path = "/api/v1/business-hours", tag = "business hours",
    responses((status = 200, body = Page<HoursJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_hours(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> ApiResult<Json<Page<HoursJson>>> {
    let all = state.app.business_hours(&caller).await?;
    Ok(Json(Page {
        items: all.into_iter().map(HoursJson::from).collect(),
        next_cursor: None,
    }))
}

/// Adds a schedule (admins).
#[utoipa::path(post, path = "/api/v1/business-hours", tag = "business hours",
    request_body = HoursBody,
    responses((status = 201, body = HoursJson), (status = "4XX", body = ErrorBody)))]
pub async fn create_hours(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: ApiJson<HoursBody>,
) -> ApiResult<(StatusCode, Json<HoursJson>)> {
    let input = body.value.into_input()?;
    let hours = state.app.create_business_hours(&caller, &input).await?;
    Ok((StatusCode::CREATED, Json(hours.into())))
}

/// One schedule.
#[utoipa::path(get, path = "/api/v1/business-hours/{id}", tag = "business hours",
    params(("id" = i64, Path)),
    responses((status = 200, body = HoursJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_hours(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<HoursJson>> {
    let hours = state
        .app
        .business_hours_by_id(&caller, BusinessHoursId(id))
        .await?;
    Ok(Json(hours.into()))
}

/// Replaces a schedule (admins); teams and brands keeping it follow the new one.
#[utoipa::path(put, path = "/api/v1/business-hours/{id}", tag = "business hours",
    params(("id" = i64, Path)), request_body = HoursBody,
    responses((status = 200, body = HoursJson), (status = "4XX", body = ErrorBody)))]
pub async fn replace_hours(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<HoursBody>,
) -> ApiResult<Json<HoursJson>> {
    let input = body.value.into_input()?;
    let hours = state
        .app
        .update_business_hours(&caller, BusinessHoursId(id), &input)
        .await?;
    Ok(Json(hours.into()))
}

/// Deletes a schedule no team or brand keeps (admins); `in_use` otherwise.
#[utoipa::path(delete, path = "/api/v1/business-hours/{id}", tag = "business hours",
    params(("id" = i64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub async fn delete_hours(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<StatusCode> {
    state
        .app
        .delete_business_hours(&caller, BusinessHoursId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What may change on a team or a brand.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitBody {
    /// A schedule's id; `null`: none. Required: an empty body changes nothing by mistake.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<i64>)]
    pub business_hours_id: Option<Option<i64>>,
}

impl UnitBody {
    fn hours(&self) -> Result<Option<BusinessHoursId>, ApiError> {
        self.business_hours_id
            .map(|id| id.map(BusinessHoursId))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::FieldRequired,
                    "business_hours_id is required (a schedule's id, or null for none)",
                )
            })
    }
}

/// Gives a brand its business hours (admins); the chat widget tells visitors when it is closed.
#[utoipa::path(patch, path = "/api/v1/brands/{id}", tag = "directory",
    params(("id" = i64, Path)), request_body = UnitBody,
    responses((status = 200, body = UnitJson), (status = "4XX", body = ErrorBody)))]
pub async fn update_brand(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<UnitBody>,
) -> ApiResult<Json<UnitJson>> {
    let hours = body.value.hours()?;
    state
        .app
        .set_brand_hours(&caller, BrandId(id), hours)
        .await?;
    let mut conn = state.app.store.conn().await?;
    let brand = staff::brands(&mut conn)
        .await?
        .into_iter()
        .find(|b| b.id == BrandId(id))
        .ok_or(seva_app::AppError::NotFound("brand"))?;
    Ok(Json(UnitJson {
        id: brand.id.0,
        name: brand.name,
        business_hours_id: brand.business_hours_id.map(|h| h.0),
    }))
}

/// Gives a team its business hours (admins); its conversations run on that clock.
#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "directory",
    params(("id" = i64, Path)), request_body = UnitBody,
    responses((status = 200, body = UnitJson), (status = "4XX", body = ErrorBody)))]
pub async fn update_team(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<UnitBody>,
) -> ApiResult<Json<UnitJson>> {
    let hours = body.value.hours()?;
    state.app.set_team_hours(&caller, TeamId(id), hours).await?;
    let mut conn = state.app.store.conn().await?;
    let team = staff::teams(&mut conn)
        .await?
        .into_iter()
        .find(|t| t.id == TeamId(id))
        .ok_or(seva_app::AppError::NotFound("team"))?;
    Ok(Json(UnitJson {
        id: team.id.0,
        name: team.name,
        business_hours_id: team.business_hours_id.map(|h| h.0),
    }))
}
