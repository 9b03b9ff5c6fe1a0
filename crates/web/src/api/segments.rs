//! `/segments`: saved customer rules with a live count, their members and a CSV export. A
//! segment also filters the inbox (`/conversations?segment=ID`).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use seva_domain::segment::{Rules, Segment};
use seva_domain::{CustomerId, SegmentId};

use super::customers::CustomerJson;
use super::{Page, check_limit, decode_cursor, encode_cursor};
use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiCaller, ApiId, ApiJson, ApiQuery};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/segments", get(list_segments).post(create_segment))
        .route("/segments/count", post(count_rules))
        .route(
            "/segments/{id}",
            get(show_segment)
                .put(replace_segment)
                .delete(delete_segment),
        )
        .route("/segments/{id}/customers", get(list_members))
        .route("/segments/{id}/export.csv", get(export_members))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentJson {
    pub id: i64,
    pub name: String,
    pub rules: Rules,
    /// How many customers are in it now.
    pub count: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentBody {
    pub name: String,
    /// Every condition must hold, e.g.
    /// `{"all": [{"type": "spent_more_than", "currency": "IRR", "amount": 500000000, "days": 90}]}`.
    pub rules: Rules,
}

async fn with_count(
    state: &AppState,
    caller: &seva_app::Caller,
    s: Segment,
) -> ApiResult<SegmentJson> {
    let count = state.app.segment_count(caller, s.rules.clone()).await?;
    Ok(SegmentJson {
        id: s.id.0,
        name: s.name,
        rules: s.rules,
        count,
    })
}

/// Every segment, by name, with its live count.
#[utoipa::path(get, path = "/api/v1/segments", tag = "customers",
    responses((status = 200, body = Page<SegmentJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_segments(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> ApiResult<Json<Page<SegmentJson>>> {
    let mut items = Vec::new();
    for s in state.app.segments(&caller).await? {
        items.push(with_count(&state, &caller, s).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(post, path = "/api/v1/segments", tag = "customers", request_body = SegmentBody,
    responses((status = 201, body = SegmentJson), (status = "4XX", body = ErrorBody)))]
pub async fn create_segment(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: ApiJson<SegmentBody>,
) -> ApiResult<(StatusCode, Json<SegmentJson>)> {
    let b = body.value;
    let segment = state.app.create_segment(&caller, &b.name, b.rules).await?;
    Ok((
        StatusCode::CREATED,
        Json(with_count(&state, &caller, segment).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountBody {
    pub rules: Rules,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CountJson {
    pub count: i64,
}

/// How many customers rules take in now, without saving them.
#[utoipa::path(post, path = "/api/v1/segments/count", tag = "customers", request_body = CountBody,
    responses((status = 200, body = CountJson), (status = "4XX", body = ErrorBody)))]
pub async fn count_rules(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: ApiJson<CountBody>,
) -> ApiResult<Json<CountJson>> {
    let count = state.app.segment_count(&caller, body.value.rules).await?;
    Ok(Json(CountJson { count }))
}

#[utoipa::path(get, path = "/api/v1/segments/{id}", tag = "customers", params(("id" = i64, Path)),
    responses((status = 200, body = SegmentJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_segment(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<SegmentJson>> {
    let segment = state.app.segment(&caller, SegmentId(id)).await?;
    Ok(Json(with_count(&state, &caller, segment).await?))
}

#[utoipa::path(put, path = "/api/v1/segments/{id}", tag = "customers", params(("id" = i64, Path)),
    request_body = SegmentBody,
    responses((status = 200, body = SegmentJson), (status = "4XX", body = ErrorBody)))]
pub async fn replace_segment(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<SegmentBody>,
) -> ApiResult<Json<SegmentJson>> {
    let b = body.value;
    let segment = state
        .app
        .update_segment(&caller, SegmentId(id), &b.name, b.rules)
        .await?;
    Ok(Json(with_count(&state, &caller, segment).await?))
}

#[utoipa::path(delete, path = "/api/v1/segments/{id}", tag = "customers", params(("id" = i64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub async fn delete_segment(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<StatusCode> {
    state.app.delete_segment(&caller, SegmentId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The segment's customers, by id.
#[utoipa::path(get, path = "/api/v1/segments/{id}/customers", tag = "customers",
    params(("id" = i64, Path), MembersQuery),
    responses((status = 200, body = Page<CustomerJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    ApiQuery(q): ApiQuery<MembersQuery>,
) -> ApiResult<Json<Page<CustomerJson>>> {
    let limit = check_limit(q.limit)?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| decode_cursor(c, 1).map(|p| CustomerId(p[0])))
        .transpose()?;
    let segment = state.app.segment(&caller, SegmentId(id)).await?;
    let mut items = state
        .app
        .segment_members(&caller, &segment.rules, after, i64::from(limit) + 1)
        .await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|c| encode_cursor(&[c.id.0]))
    } else {
        None
    };
    Ok(Json(Page {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// The segment's customers as CSV: id, name, emails, phones, language, created_at.
#[utoipa::path(get, path = "/api/v1/segments/{id}/export.csv", tag = "customers",
    params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/csv"), (status = "4XX", body = ErrorBody)))]
pub async fn export_members(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<impl IntoResponse> {
    let csv = state.app.segment_csv(&caller, SegmentId(id)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"segment.csv\"",
            ),
        ],
        csv,
    ))
}
