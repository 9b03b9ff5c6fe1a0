//! `/sla-policies`: first reply, next reply and resolution targets for the conversations a
//! policy's conditions cover (admins change them; anyone may read them), and
//! `/conversations/{id}/sla`: a conversation's targets, met, missed or running.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use seva_app::sla::PolicyInput;
use seva_domain::sla::{Conditions, SlaPolicy, SlaPolicyId};
use seva_domain::{BrandId, ConversationId, TeamId};

use super::Page;
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{ApiCaller, ApiId, ApiJson};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sla-policies", get(list_policies).post(create_policy))
        .route(
            "/sla-policies/{id}",
            get(show_policy).put(replace_policy).delete(delete_policy),
        )
        .route("/conversations/{id}/sla", get(conversation_sla))
}

/// A policy: the conversations it covers, and the most each target may take.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyJson {
    pub id: i64,
    pub name: String,
    /// Policies are tried by position (then id); the first that covers a conversation applies.
    pub position: i64,
    pub brand_id: Option<i64>,
    pub team_id: Option<i64>,
    pub channel: Option<String>,
    pub priority: Option<String>,
    pub first_reply_minutes: Option<i64>,
    pub next_reply_minutes: Option<i64>,
    pub resolution_minutes: Option<i64>,
    /// Targets run on the business hours of the conversation's team, else its brand.
    pub business_hours: bool,
}

impl From<SlaPolicy> for PolicyJson {
    fn from(p: SlaPolicy) -> Self {
        let minutes = |s: Option<i64>| s.map(|s| s / 60);
        Self {
            id: p.id.0,
            name: p.name,
            position: p.position,
            brand_id: p.conditions.brand.map(|b| b.0),
            team_id: p.conditions.team.map(|t| t.0),
            channel: p.conditions.channel.map(|c| c.as_str().to_owned()),
            priority: p.conditions.priority.map(|c| c.as_str().to_owned()),
            first_reply_minutes: minutes(p.targets.first_reply),
            next_reply_minutes: minutes(p.targets.next_reply),
            resolution_minutes: minutes(p.targets.resolution),
            business_hours: p.business_hours,
        }
    }
}

fn yes() -> bool {
    true
}

/// A policy, for creating and for replacing. Conditions left out cover every conversation; at
/// least one target is required.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    pub name: String,
    #[serde(default)]
    pub position: i64,
    pub brand_id: Option<i64>,
    pub team_id: Option<i64>,
    /// email, chat, form, portal, api, sms, whatsapp, phone or in_store
    pub channel: Option<String>,
    /// low, normal, high, urgent
    pub priority: Option<String>,
    pub first_reply_minutes: Option<i64>,
    pub next_reply_minutes: Option<i64>,
    pub resolution_minutes: Option<i64>,
    /// Default true: business hours (the calendar where no schedule is kept).
    #[serde(default = "yes")]
    pub business_hours: bool,
}

impl PolicyBody {
    fn into_input(self) -> Result<PolicyInput, ApiError> {
        let invalid =
            |e: seva_domain::ValueError| ApiError::new(ErrorCode::InvalidValue, e.to_string());
        Ok(PolicyInput {
            name: self.name,
            position: self.position,
            conditions: Conditions {
                brand: self.brand_id.map(BrandId),
                team: self.team_id.map(TeamId),
                channel: self
                    .channel
                    .map(|c| c.parse())
                    .transpose()
                    .map_err(invalid)?,
                priority: self
                    .priority
                    .map(|p| p.parse())
                    .transpose()
                    .map_err(invalid)?,
            },
            first_reply_minutes: self.first_reply_minutes,
            next_reply_minutes: self.next_reply_minutes,
            resolution_minutes: self.resolution_minutes,
            business_hours: self.business_hours,
        })
    }
}

/// Every policy, in the order they are tried.
#[utoipa::path(get, path = "/api/v1/sla-policies", tag = "sla",
    responses((status = 200, body = Page<PolicyJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_policies(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> ApiResult<Json<Page<PolicyJson>>> {
    let all = state.app.sla_policies(&caller).await?;
    Ok(Json(Page {
        items: all.into_iter().map(PolicyJson::from).collect(),
        next_cursor: None,
    }))
}

/// Adds a policy (admins). It applies to each conversation it covers from that
/// conversation's next change.
#[utoipa::path(post, path = "/api/v1/sla-policies", tag = "sla",
    request_body = PolicyBody,
    responses((status = 201, body = PolicyJson), (status = "4XX", body = ErrorBody)))]
pub async fn create_policy(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: ApiJson<PolicyBody>,
) -> ApiResult<(StatusCode, Json<PolicyJson>)> {
    let input = body.value.into_input()?;
    let policy = state.app.create_sla_policy(&caller, &input).await?;
    Ok((StatusCode::CREATED, Json(policy.into())))
}

/// One policy.
#[utoipa::path(get, path = "/api/v1/sla-policies/{id}", tag = "sla",
    params(("id" = i64, Path)),
    responses((status = 200, body = PolicyJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_policy(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<PolicyJson>> {
    let policy = state.app.sla_policy(&caller, SlaPolicyId(id)).await?;
    Ok(Json(policy.into()))
}

/// Replaces a policy (admins).
#[utoipa::path(put, path = "/api/v1/sla-policies/{id}", tag = "sla",
    params(("id" = i64, Path)), request_body = PolicyBody,
    responses((status = 200, body = PolicyJson), (status = "4XX", body = ErrorBody)))]
pub async fn replace_policy(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<PolicyBody>,
) -> ApiResult<Json<PolicyJson>> {
    let input = body.value.into_input()?;
    let policy = state
        .app
        .update_sla_policy(&caller, SlaPolicyId(id), &input)
        .await?;
    Ok(Json(policy.into()))
}

/// Deletes a policy (admins); targets it set keep their outcomes.
#[utoipa::path(delete, path = "/api/v1/sla-policies/{id}", tag = "sla",
    params(("id" = i64, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub async fn delete_policy(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<StatusCode> {
    state
        .app
        .delete_sla_policy(&caller, SlaPolicyId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One target of a conversation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TargetJson {
    /// first_reply, next_reply or resolution
    pub target: String,
    /// The customer message its clock started at.
    pub started_at: DateTime<Utc>,
    /// The reply or resolution that ended it.
    pub done_at: Option<DateTime<Utc>>,
    /// When it is (or was) breached, unless met; null while its clock is stopped (pending, on
    /// hold, resolved) short of the limit.
    pub due_at: Option<DateTime<Utc>>,
    /// `met`, `missed` (breached), or `running`.
    pub state: &'static str,
    /// The policy that set it; null when deleted since.
    pub policy: Option<String>,
}

/// A conversation's SLA targets under the policy that covers it.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/sla", tag = "sla",
    params(("id" = i64, Path)),
    responses((status = 200, body = [TargetJson]), (status = "4XX", body = ErrorBody)))]
pub async fn conversation_sla(
    State(state): State<AppState>,
    ApiCaller(_caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<Vec<TargetJson>>> {
    let now = state.app.now();
    let targets = state.app.conversation_sla(ConversationId(id)).await?;
    Ok(Json(
        targets
            .into_iter()
            .map(|t| TargetJson {
                target: t.target.as_str().to_owned(),
                started_at: t.started,
                done_at: t.done,
                due_at: if t.met { None } else { t.settled },
                state: t.state(now),
                policy: t.policy,
            })
            .collect(),
    ))
}
