//! The CRM side of customers: tags, notes, duplicates and merging, access and erasure
//! requests; orders linked to conversations; returns, exchanges and refund requests; products.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use seva_app::crm::{Export, ProductInput, RequestInput};
use seva_domain::commerce::{
    OrderId, OrderRequest, OrderRequestId, Product, RequestItem, RequestKind, RequestStatus,
};
use seva_domain::{ConversationId, CustomerId};
use seva_store::crm::Note;

use super::Page;
use super::conversations::{ConversationJson, EventJson, MessageJson};
use super::customers::CustomerJson;
use super::orders::OrderJson;
use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiCaller, ApiId, ApiJson};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/customers/{id}/tags", post(change_tags))
        .route("/customers/{id}/notes", get(list_notes).post(add_note))
        .route("/customers/{id}/duplicates", get(list_duplicates))
        .route("/customers/{id}/merge", post(merge_customer))
        .route("/customers/{id}/export", get(export_customer))
        .route("/customers/{id}/erase", post(erase_customer))
        .route(
            "/customers/{id}/order-requests",
            get(list_customer_requests),
        )
        .route(
            "/conversations/{id}/orders",
            get(list_linked_orders).post(link_order),
        )
        .route("/order-requests", post(create_request))
        .route(
            "/order-requests/{id}",
            get(show_request).patch(update_request),
        )
        .route("/products", get(list_products).post(save_product))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagsBody {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TagsJson {
    pub tags: Vec<String>,
}

/// Adds and removes the customer's tags.
#[utoipa::path(post, path = "/api/v1/customers/{id}/tags", tag = "customers",
    params(("id" = i64, Path)), request_body = TagsBody,
    responses((status = 200, body = TagsJson), (status = "4XX", body = ErrorBody)))]
pub async fn change_tags(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<TagsBody>,
) -> ApiResult<Json<TagsJson>> {
    let b = body.value;
    let tags = state
        .app
        .change_customer_tags(&caller, CustomerId(id), &b.add, &b.remove)
        .await?;
    Ok(Json(TagsJson { tags }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoteJson {
    pub id: i64,
    pub author_id: Option<i64>,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

impl From<Note> for NoteJson {
    fn from(n: Note) -> Self {
        Self {
            id: n.id.0,
            author_id: n.author_id.map(|a| a.0),
            body: n.body,
            created_at: n.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub body: String,
}

/// Adds an internal note about the customer (agents only see it).
#[utoipa::path(post, path = "/api/v1/customers/{id}/notes", tag = "customers",
    params(("id" = i64, Path)), request_body = NoteBody,
    responses((status = 201, body = NoteJson), (status = "4XX", body = ErrorBody)))]
pub async fn add_note(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<NoteBody>,
) -> ApiResult<(StatusCode, Json<NoteJson>)> {
    let note = state
        .app
        .add_customer_note(&caller, CustomerId(id), &body.value.body)
        .await?;
    Ok((StatusCode::CREATED, Json(note.into())))
}

/// The customer's notes, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/notes", tag = "customers",
    params(("id" = i64, Path)),
    responses((status = 200, body = Page<NoteJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_notes(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<Page<NoteJson>>> {
    let notes = state.app.customer_notes(&caller, CustomerId(id)).await?;
    Ok(Json(Page {
        items: notes.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DuplicateJson {
    pub customer: CustomerJson,
    /// What they share: `email` (the same mailbox behind provider aliases), `phone` (the same
    /// last 10 digits), `name_address` (the same name at the same order address).
    pub reasons: Vec<String>,
}

/// Customers likely to be the same person, most shared keys first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/duplicates", tag = "customers",
    params(("id" = i64, Path)),
    responses((status = 200, body = Page<DuplicateJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_duplicates(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<Page<DuplicateJson>>> {
    let found = state
        .app
        .customer_duplicates(&caller, CustomerId(id))
        .await?;
    Ok(Json(Page {
        items: found
            .into_iter()
            .map(|(c, reasons)| DuplicateJson {
                customer: c.into(),
                reasons,
            })
            .collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The customer merged into this one; it keeps its id, pointing here (`merged_into`).
    pub from: i64,
}

/// Merges another customer into this one: identities, conversations, orders, requests, notes,
/// tags and history move here; recorded as `customer_merged` on both.
#[utoipa::path(post, path = "/api/v1/customers/{id}/merge", tag = "customers",
    params(("id" = i64, Path)), request_body = MergeBody,
    responses((status = 200, body = CustomerJson), (status = "4XX", body = ErrorBody)))]
pub async fn merge_customer(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<MergeBody>,
) -> ApiResult<Json<CustomerJson>> {
    let merged = state
        .app
        .merge_customers(&caller, CustomerId(id), CustomerId(body.value.from))
        .await?;
    Ok(Json(merged.into()))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportConversationJson {
    pub conversation: ConversationJson,
    pub messages: Vec<MessageJson>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportJson {
    pub exported_at: DateTime<Utc>,
    pub customer: CustomerJson,
    pub tags: Vec<String>,
    pub notes: Vec<NoteJson>,
    pub conversations: Vec<ExportConversationJson>,
    pub orders: Vec<OrderJson>,
    pub order_requests: Vec<OrderRequestJson>,
    pub surveys: Vec<super::surveys::SurveyJson>,
    pub events: Vec<EventJson>,
}

impl From<Export> for ExportJson {
    fn from(e: Export) -> Self {
        Self {
            exported_at: e.exported_at,
            customer: e.customer.into(),
            tags: e.tags,
            notes: e.notes.into_iter().map(Into::into).collect(),
            conversations: e
                .conversations
                .into_iter()
                .map(|(c, messages)| ExportConversationJson {
                    conversation: c.into(),
                    messages: messages.into_iter().map(Into::into).collect(),
                })
                .collect(),
            orders: e.orders.into_iter().map(Into::into).collect(),
            order_requests: e.requests.into_iter().map(Into::into).collect(),
            surveys: e.surveys.into_iter().map(Into::into).collect(),
            events: e.events.into_iter().map(Into::into).collect(),
        }
    }
}

/// Everything kept about the customer, as one JSON document (an access request under GDPR or
/// India's DPDP Act). Admins only; recorded as `customer_exported`.
#[utoipa::path(get, path = "/api/v1/customers/{id}/export", tag = "customers",
    params(("id" = i64, Path)),
    responses((status = 200, body = ExportJson), (status = "4XX", body = ErrorBody)))]
pub async fn export_customer(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<ExportJson>> {
    Ok(Json(
        state
            .app
            .export_customer(&caller, CustomerId(id))
            .await?
            .into(),
    ))
}

/// Erases the customer: name, identities, tags, notes, addresses and every word of their
/// conversations; counts, times and amounts stay for the reports. Admins only; cannot be
/// undone; recorded as `customer_erased`.
#[utoipa::path(post, path = "/api/v1/customers/{id}/erase", tag = "customers",
    params(("id" = i64, Path)),
    responses((status = 200, body = CustomerJson), (status = "4XX", body = ErrorBody)))]
pub async fn erase_customer(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<CustomerJson>> {
    state.app.erase_customer(&caller, CustomerId(id)).await?;
    Ok(Json(state.app.customer(CustomerId(id)).await?.into()))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderRequestJson {
    pub id: i64,
    pub order_id: i64,
    pub customer_id: i64,
    pub conversation_id: Option<i64>,
    /// return, exchange or refund.
    pub kind: RequestKind,
    /// requested, approved, rejected, received or completed.
    pub status: RequestStatus,
    pub reason: String,
    pub items: Vec<RequestItem>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<OrderRequest> for OrderRequestJson {
    fn from(r: OrderRequest) -> Self {
        Self {
            id: r.id.0,
            order_id: r.order_id.0,
            customer_id: r.customer_id.0,
            conversation_id: r.conversation_id.map(|c| c.0),
            kind: r.kind,
            status: r.status,
            reason: r.reason,
            items: r.items,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The customer's return, exchange and refund requests, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/order-requests", tag = "orders",
    params(("id" = i64, Path)),
    responses((status = 200, body = Page<OrderRequestJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_customer_requests(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<Page<OrderRequestJson>>> {
    let requests = state.app.customer_requests(&caller, CustomerId(id)).await?;
    Ok(Json(Page {
        items: requests.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    pub order_id: i64,
}

/// Says the conversation is about this order (one of its customer's).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/orders", tag = "orders",
    params(("id" = i64, Path)), request_body = LinkBody,
    responses((status = 200, body = Page<OrderJson>), (status = "4XX", body = ErrorBody)))]
pub async fn link_order(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<LinkBody>,
) -> ApiResult<Json<Page<OrderJson>>> {
    let linked = state
        .app
        .link_order(&caller, ConversationId(id), OrderId(body.value.order_id))
        .await?;
    Ok(Json(Page {
        items: linked.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

/// The orders linked to the conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/orders", tag = "orders",
    params(("id" = i64, Path)),
    responses((status = 200, body = Page<OrderJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_linked_orders(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<Page<OrderJson>>> {
    state.app.conversation(ConversationId(id)).await?;
    let linked = state.app.linked_orders(&caller, ConversationId(id)).await?;
    Ok(Json(Page {
        items: linked.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    pub order_id: i64,
    /// The conversation it came up in; the order is linked to it.
    pub conversation_id: Option<i64>,
    /// return, exchange or refund.
    pub kind: RequestKind,
    pub reason: String,
    /// What goes back (or is exchanged): 1 to 100 items, never more than was ordered.
    pub items: Vec<RequestItem>,
}

/// Records a return, exchange or refund request (status `requested`).
#[utoipa::path(post, path = "/api/v1/order-requests", tag = "orders", request_body = RequestBody,
    responses((status = 201, body = OrderRequestJson), (status = "4XX", body = ErrorBody)))]
pub async fn create_request(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: ApiJson<RequestBody>,
) -> ApiResult<(StatusCode, Json<OrderRequestJson>)> {
    let b = body.value;
    let input = RequestInput {
        order_id: OrderId(b.order_id),
        conversation_id: b.conversation_id.map(ConversationId),
        kind: b.kind,
        reason: b.reason,
        items: b.items,
    };
    let request = state.app.create_order_request(&caller, &input).await?;
    Ok((StatusCode::CREATED, Json(request.into())))
}

#[utoipa::path(get, path = "/api/v1/order-requests/{id}", tag = "orders",
    params(("id" = i64, Path)),
    responses((status = 200, body = OrderRequestJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_request(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<OrderRequestJson>> {
    Ok(Json(
        state
            .app
            .order_request(&caller, OrderRequestId(id))
            .await?
            .into(),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestPatch {
    /// requested → approved or rejected; approved → received, completed or rejected;
    /// received → completed.
    pub status: RequestStatus,
}

/// Moves a request along.
#[utoipa::path(patch, path = "/api/v1/order-requests/{id}", tag = "orders",
    params(("id" = i64, Path)), request_body = RequestPatch,
    responses((status = 200, body = OrderRequestJson), (status = "4XX", body = ErrorBody)))]
pub async fn update_request(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<RequestPatch>,
) -> ApiResult<Json<OrderRequestJson>> {
    Ok(Json(
        state
            .app
            .set_order_request_status(&caller, OrderRequestId(id), body.value.status)
            .await?
            .into(),
    ))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductJson {
    pub sku: String,
    pub title: String,
    /// ISO 4217, with `price`.
    pub currency: Option<String>,
    /// Minor units of `currency`.
    pub price: Option<i64>,
    pub url: Option<String>,
}

impl From<Product> for ProductJson {
    fn from(p: Product) -> Self {
        Self {
            sku: p.sku,
            title: p.title,
            currency: p.price.as_ref().map(|(c, _)| c.as_str().to_owned()),
            price: p.price.map(|(_, p)| p),
            url: p.url,
        }
    }
}

/// Creates or updates a catalogue product by SKU.
#[utoipa::path(post, path = "/api/v1/products", tag = "orders", request_body = ProductJson,
    responses((status = 200, body = ProductJson), (status = "4XX", body = ErrorBody)))]
pub async fn save_product(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: ApiJson<ProductJson>,
) -> ApiResult<Json<ProductJson>> {
    let b = body.value;
    let input = ProductInput {
        sku: b.sku,
        title: b.title,
        currency: b.currency,
        price: b.price,
        url: b.url,
    };
    Ok(Json(state.app.save_product(&caller, &input).await?.into()))
}

/// The catalogue, by SKU (the first 1,000).
#[utoipa::path(get, path = "/api/v1/products", tag = "orders",
    responses((status = 200, body = Page<ProductJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_products(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> ApiResult<Json<Page<ProductJson>>> {
    let products = state.app.products(&caller).await?;
    Ok(Json(Page {
        items: products.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}
