//! `/conversations`: open, list, read, change; messages and events.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use seva_app::conversations::{ConversationPatch, MessageInput, NewConversationInput, Outcome};
use seva_app::customers::CustomerInput;
use seva_domain::event::Actor;
use seva_domain::mail::{Delivery, DeliveryStatus};
use seva_domain::values::parse_tag;
use seva_domain::{
    AuthorKind, BrandId, Change, Channel, Conversation, ConversationId, CustomerId, Direction,
    Event, Message, MessageKind, Priority, SegmentId, Status, TeamId, UserId,
};
use seva_store::conversations::{ConversationCursor, ConversationFilter};

use super::{Page, check_limit, decode_cursor, double_option, encode_cursor};
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{ApiCaller, ApiId, ApiJson, ApiQuery, IdempotencyHeader};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/conversations",
            get(list_conversations).post(create_conversation),
        )
        .route(
            "/conversations/{id}",
            get(show_conversation).patch(update_conversation),
        )
        .route(
            "/conversations/{id}/messages",
            get(list_messages).post(create_message),
        )
        .route("/conversations/{id}/events", get(list_events))
        .route("/search", get(search_conversations))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationJson {
    pub id: i64,
    pub customer_id: i64,
    pub brand_id: Option<i64>,
    pub channel: Channel,
    pub status: Status,
    pub priority: Priority,
    pub subject: Option<String>,
    pub assignee_id: Option<i64>,
    pub team_id: Option<i64>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    /// The thread, oldest first: included when one conversation is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<MessageJson>>,
}

impl From<Conversation> for ConversationJson {
    fn from(c: Conversation) -> Self {
        Self {
            id: c.id.0,
            customer_id: c.customer_id.0,
            brand_id: c.brand_id.map(|b| b.0),
            channel: c.channel,
            status: c.status,
            priority: c.priority,
            subject: c.subject,
            assignee_id: c.assignee_id.map(|u| u.0),
            team_id: c.team_id.map(|t| t.0),
            tags: c.tags,
            created_at: c.created_at,
            updated_at: c.updated_at,
            last_activity_at: c.last_activity_at,
            messages: None,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageJson {
    pub id: i64,
    pub conversation_id: i64,
    pub kind: MessageKind,
    pub direction: Direction,
    pub author_kind: AuthorKind,
    pub author_user_id: Option<i64>,
    pub text: String,
    /// Sanitised HTML, when the message came with HTML.
    pub html: Option<String>,
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// How the reply is doing as email: present on replies sent through a mailbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryJson>,
}

/// An email reply's delivery: `queued` (waiting for its first or next try), `sent` or
/// `failed` (given up after the last try).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryJson {
    pub status: DeliveryStatus,
    /// Tries so far, failed ones and the one that worked.
    pub attempts: u32,
    /// Why the last try failed.
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub recipient: String,
}

impl From<Delivery> for DeliveryJson {
    fn from(d: Delivery) -> Self {
        Self {
            status: d.status,
            attempts: d.attempts,
            last_error: d.last_error,
            sent_at: d.sent_at,
            recipient: d.recipient,
        }
    }
}

/// Messages as JSON, each email reply with its delivery.
fn with_deliveries(messages: Vec<Message>, deliveries: Vec<Delivery>) -> Vec<MessageJson> {
    // Ordered by outbox id: a later row for the same message wins.
    let mut by_message: std::collections::HashMap<_, _> =
        deliveries.into_iter().map(|d| (d.message_id, d)).collect();
    messages
        .into_iter()
        .map(|m| {
            let delivery = by_message.remove(&m.id).map(Into::into);
            MessageJson {
                delivery,
                ..m.into()
            }
        })
        .collect()
}

impl From<Message> for MessageJson {
    fn from(m: Message) -> Self {
        Self {
            id: m.id.0,
            conversation_id: m.conversation_id.0,
            direction: m.direction(),
            kind: m.kind,
            author_kind: m.author_kind,
            author_user_id: m.author_user_id.map(|u| u.0),
            text: m.text,
            html: m.html,
            external_id: m.external_id,
            created_at: m.created_at,
            delivery: None,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventJson {
    pub id: i64,
    pub conversation_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub actor: Actor,
    /// What changed; `type` names the kind of change.
    pub change: Change,
    pub at: DateTime<Utc>,
}

impl From<Event> for EventJson {
    fn from(e: Event) -> Self {
        Self {
            id: e.id.0,
            conversation_id: e.conversation_id.map(|c| c.0),
            customer_id: e.customer_id.map(|c| c.0),
            actor: e.actor,
            change: e.change,
            at: e.at,
        }
    }
}

/// Who wrote in. The customer is found by email, then phone, then external id, or created.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerRef {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub name: Option<String>,
    /// Preferred language, a BCP 47 tag such as `fa` or `mr-IN`.
    pub language: Option<String>,
    /// Where a phone written the national way is from (ISO 3166 alpha-2, e.g. `IR`, `IN`).
    pub country: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstMessage {
    pub text: String,
    pub html: Option<String>,
    /// The sender's own id for the message; a second message with it is not stored again.
    pub external_id: Option<String>,
    /// `customer` (default) or `reply` for a conversation an agent starts.
    pub kind: Option<MessageKind>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    pub customer: CustomerRef,
    /// Defaults to `api`.
    pub channel: Option<Channel>,
    pub subject: Option<String>,
    pub brand_id: Option<i64>,
    pub team_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub priority: Option<Priority>,
    pub status: Option<Status>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub message: FirstMessage,
    /// The original time, when importing history from another help desk (admin tokens only).
    pub created_at: Option<DateTime<Utc>>,
}

/// Open a conversation with the customer's first message.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "conversations",
    request_body = CreateConversation,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first result")),
    responses(
        (status = 201, description = "Created", body = ConversationJson),
        (status = 200, description = "Already created by an earlier request with the same Idempotency-Key or message external_id", body = ConversationJson),
        (status = "4XX", description = "Refused; see the error code", body = ErrorBody),
    ))]
pub async fn create_conversation(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    key: IdempotencyHeader,
    body: ApiJson<CreateConversation>,
) -> ApiResult<(StatusCode, Json<ConversationJson>)> {
    let req = body.value;
    let kind = req.message.kind.unwrap_or(MessageKind::Customer);
    if kind == MessageKind::Note {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            "a conversation starts with a customer message or a reply, not a note",
        ));
    }
    let input = NewConversationInput {
        customer: CustomerInput {
            email: req.customer.email,
            phone: req.customer.phone,
            external_id: req.customer.external_id,
            name: req.customer.name,
            language: req.customer.language,
            country: req.customer.country,
        },
        channel: req.channel.unwrap_or(Channel::Api),
        subject: req.subject,
        brand_id: req.brand_id.map(BrandId),
        team_id: req.team_id.map(TeamId),
        assignee_id: req.assignee_id.map(UserId),
        priority: req.priority,
        status: req.status,
        tags: req.tags,
        message: MessageInput {
            kind,
            text: req.message.text,
            html: req.message.html,
            external_id: req.message.external_id,
            created_at: req.created_at,
        },
    };
    let (conversation, outcome) = state
        .app
        .create_conversation(&caller, &input, key.with_digest(&body.digest).as_ref())
        .await?;
    Ok((created_or_ok(outcome), Json(conversation.into())))
}

fn created_or_ok(outcome: Outcome) -> StatusCode {
    match outcome {
        Outcome::Created => StatusCode::CREATED,
        Outcome::Existing => StatusCode::OK,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConversationQuery {
    /// Comma-separated statuses, e.g. `open,pending`.
    pub status: Option<String>,
    /// A user id, `me`, or `none` for unassigned.
    pub assignee: Option<String>,
    pub team: Option<i64>,
    pub brand: Option<i64>,
    pub channel: Option<String>,
    pub customer: Option<i64>,
    pub tag: Option<String>,
    /// Only conversations of customers in this segment (its id).
    pub segment: Option<i64>,
    /// low, normal, high or urgent.
    pub priority: Option<String>,
    /// 1 to 100, default 25.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// List conversations, newest activity first.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", params(ConversationQuery),
    responses((status = 200, body = Page<ConversationJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_conversations(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiQuery(q): ApiQuery<ConversationQuery>,
) -> ApiResult<Json<Page<ConversationJson>>> {
    let limit = check_limit(q.limit)?;
    let invalid = |what: &str, value: &str| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!(
                "{what} '{}' is not known",
                value.chars().take(40).collect::<String>()
            ),
        )
    };
    let statuses = q
        .status
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
        .map(|s| s.trim().parse::<Status>().map_err(|_| invalid("status", s)))
        .collect::<Result<Vec<_>, _>>()?;
    let assignee = match q.assignee.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some("me") => Some(Some(caller.user.id)),
        Some(id) => Some(Some(UserId(
            id.parse().map_err(|_| invalid("assignee", id))?,
        ))),
    };
    let channel = q
        .channel
        .as_deref()
        .map(|c| c.parse::<Channel>().map_err(|_| invalid("channel", c)))
        .transpose()?;
    let filter = ConversationFilter {
        statuses,
        assignee,
        team: q.team.map(TeamId),
        teams: Vec::new(),
        priority: q
            .priority
            .as_deref()
            .map(|p| p.parse::<Priority>().map_err(|_| invalid("priority", p)))
            .transpose()?,
        brand: q.brand.map(BrandId),
        channel,
        customer: q.customer.map(CustomerId),
        tag: q
            .tag
            .as_deref()
            .map(|t| parse_tag(t).map_err(|_| invalid("tag", t)))
            .transpose()?,
        segment: match q.segment {
            Some(id) => Some((
                state.app.segment(&caller, SegmentId(id)).await?.rules,
                state.app.now(),
            )),
            None => None,
        },
    };
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| {
            decode_cursor(c, 2).map(|p| ConversationCursor {
                last_activity_at: p[0],
                id: p[1],
            })
        })
        .transpose()?;
    // One extra row tells whether another page exists.
    let mut items = state
        .app
        .list_conversations(&filter, cursor, limit + 1)
        .await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items
            .last()
            .map(|c| encode_cursor(&[c.last_activity_at.timestamp_micros(), c.id.0]))
    } else {
        None
    };
    Ok(Json(Page {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One conversation with its messages.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations", params(("id" = i64, Path)),
    responses((status = 200, body = ConversationJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_conversation(
    State(state): State<AppState>,
    _caller: ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<ConversationJson>> {
    let conversation = state.app.conversation(ConversationId(id)).await?;
    let messages = state.app.messages(ConversationId(id)).await?;
    let deliveries = state.app.deliveries(ConversationId(id)).await?;
    let mut json = ConversationJson::from(conversation);
    json.messages = Some(with_deliveries(messages, deliveries));
    Ok(Json(json))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversation {
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    /// A user id, or null to unassign.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub assignee_id: Option<Option<i64>>,
    /// A team id, or null to clear.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub team_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub brand_id: Option<Option<i64>>,
    /// Replaces the whole set of tags.
    pub tags: Option<Vec<String>>,
    /// Adds these tags to the set as it is when the change applies (ignored with `tags`).
    #[serde(default)]
    pub add_tags: Vec<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub subject: Option<Option<String>>,
    /// The original time of the change, when importing history (admin tokens only).
    pub at: Option<DateTime<Utc>>,
}

/// Change status, priority, assignee, team, brand, subject or tags.
#[utoipa::path(patch, path = "/api/v1/conversations/{id}", tag = "conversations", params(("id" = i64, Path)),
    request_body = UpdateConversation,
    responses((status = 200, body = ConversationJson), (status = "4XX", body = ErrorBody)))]
pub async fn update_conversation(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<UpdateConversation>,
) -> ApiResult<Json<ConversationJson>> {
    let req = body.value;
    let patch = ConversationPatch {
        status: req.status,
        priority: req.priority,
        assignee_id: req.assignee_id.map(|a| a.map(UserId)),
        team_id: req.team_id.map(|t| t.map(TeamId)),
        brand_id: req.brand_id.map(|b| b.map(BrandId)),
        tags: req.tags,
        add_tags: req.add_tags,
        subject: req.subject,
        at: req.at,
    };
    Ok(Json(
        state
            .app
            .update_conversation(&caller, ConversationId(id), &patch)
            .await?
            .into(),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMessage {
    /// `customer` (inbound), `reply` (public agent reply) or `note` (internal).
    pub kind: MessageKind,
    pub text: String,
    pub html: Option<String>,
    pub external_id: Option<String>,
    /// The original time, when importing history (admin tokens only).
    pub created_at: Option<DateTime<Utc>>,
}

/// Add a customer message, a public reply or an internal note.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first result")),
    request_body = CreateMessage,
    responses((status = 201, body = MessageJson), (status = 200, description = "Already stored", body = MessageJson),
        (status = "4XX", body = ErrorBody)))]
pub async fn create_message(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    key: IdempotencyHeader,
    body: ApiJson<CreateMessage>,
) -> ApiResult<(StatusCode, Json<MessageJson>)> {
    let req = body.value;
    let input = MessageInput {
        kind: req.kind,
        text: req.text,
        html: req.html,
        external_id: req.external_id,
        created_at: req.created_at,
    };
    let (message, outcome) = state
        .app
        .add_message(
            &caller,
            ConversationId(id),
            &input,
            key.with_digest(&body.digest).as_ref(),
        )
        .await?;
    // A reply to an email conversation is queued in the same transaction: show it at once.
    let deliveries = if message.kind == MessageKind::Reply {
        state.app.deliveries(message.conversation_id).await?
    } else {
        Vec::new()
    };
    let json = with_deliveries(vec![message], deliveries)
        .pop()
        .ok_or_else(ApiError::internal)?;
    Ok((created_or_ok(outcome), Json(json)))
}

/// The messages of a conversation, oldest first.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "conversations", params(("id" = i64, Path)),
    responses((status = 200, body = Page<MessageJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_messages(
    State(state): State<AppState>,
    _caller: ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<Page<MessageJson>>> {
    let messages = state.app.messages(ConversationId(id)).await?;
    let deliveries = state.app.deliveries(ConversationId(id)).await?;
    Ok(Json(Page {
        items: with_deliveries(messages, deliveries),
        next_cursor: None,
    }))
}

/// Everything that happened to a conversation, oldest first.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/events", tag = "conversations", params(("id" = i64, Path)),
    responses((status = 200, body = Page<EventJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_events(
    State(state): State<AppState>,
    _caller: ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<Page<EventJson>>> {
    let events = state.app.conversation_events(ConversationId(id)).await?;
    Ok(Json(Page {
        items: events.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Words to find in subjects and messages, in any supported language (all must match).
    pub q: String,
    /// 1 to 100, default 25.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    pub conversation: ConversationJson,
    /// The best-matching text, HTML-escaped, with matched words in `<mark>`.
    pub snippet_html: String,
    /// Relevance; higher is better. Comparable within one response only.
    pub score: f64,
}

/// Full-text search over subjects and messages, best match first.
#[utoipa::path(get, path = "/api/v1/search", tag = "conversations", params(SearchQuery),
    responses((status = 200, body = Page<SearchHit>), (status = "4XX", body = ErrorBody)))]
pub async fn search_conversations(
    State(state): State<AppState>,
    _caller: ApiCaller,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Page<SearchHit>>> {
    let limit = check_limit(q.limit)?;
    let hits = state.app.search(&q.q, limit).await?;
    let items = hits
        .into_iter()
        .map(|(conversation, hit)| SearchHit {
            conversation: conversation.into(),
            snippet_html: hit.snippet_html,
            score: hit.score,
        })
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}
