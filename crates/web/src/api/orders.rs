//! `/orders`: orders from the shop's platform. Posting an order creates it, or updates the one
//! with the same `source` and `external_id`; posting the same content again changes nothing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use seva_app::commerce::{OrderInput, RECENT_ORDERS};
use seva_app::customers::CustomerInput;
use seva_domain::CustomerId;
use seva_domain::commerce::{
    Address, FulfilmentStatus, Integration, Order, OrderId, OrderLine, OrderSource, OrderStatus,
    PaymentStatus,
};
use seva_store::commerce::Recorded;

use super::Page;
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{ApiCaller, ApiId, ApiJson};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", post(record_order))
        .route("/orders/{id}", get(show_order))
        .route("/customers/{id}/orders", get(list_customer_orders))
        .route(
            "/integrations",
            get(list_integrations).post(create_integration),
        )
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LineJson {
    pub sku: Option<String>,
    pub title: String,
    pub quantity: i64,
    /// Minor units of the order's currency.
    pub unit_price: i64,
    /// Minor units.
    pub total: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderJson {
    pub id: i64,
    pub source: OrderSource,
    pub external_id: String,
    pub number: String,
    pub customer_id: i64,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub fulfilment_status: FulfilmentStatus,
    /// ISO 4217.
    pub currency: String,
    /// Minor units (rials for IRR, paise for INR).
    pub total: i64,
    pub refunded: i64,
    pub placed_at: DateTime<Utc>,
    pub shipping_address: Option<Address>,
    pub lines: Vec<LineJson>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Order> for OrderJson {
    fn from(o: Order) -> Self {
        Self {
            id: o.id.0,
            source: o.source,
            external_id: o.external_id,
            number: o.number,
            customer_id: o.customer_id.0,
            status: o.status,
            payment_status: o.payment_status,
            fulfilment_status: o.fulfilment_status,
            currency: o.currency.as_str().to_owned(),
            total: o.total,
            refunded: o.refunded,
            placed_at: o.placed_at,
            shipping_address: o.shipping_address,
            lines: o
                .lines
                .into_iter()
                .map(|l| LineJson {
                    sku: l.sku,
                    title: l.title,
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    total: l.total,
                })
                .collect(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// Who ordered: matched by platform customer id, then email, then phone; a new customer when
/// nothing matches.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCustomer {
    /// The platform's customer id.
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
    /// Where a phone written the national way is from (ISO 3166 alpha-2, e.g. `IR`, `IN`).
    pub country: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    /// api (default), csv, shopify or woocommerce.
    pub source: Option<OrderSource>,
    /// The platform's order id.
    pub external_id: String,
    /// What the shopper sees, e.g. `#1042`; default: the external id.
    pub number: Option<String>,
    pub customer: OrderCustomer,
    /// open (default), completed or cancelled.
    pub status: Option<OrderStatus>,
    /// pending (default), paid, partially_refunded, refunded or failed.
    pub payment_status: Option<PaymentStatus>,
    /// unfulfilled (default), partial or fulfilled.
    pub fulfilment_status: Option<FulfilmentStatus>,
    /// ISO 4217, e.g. IRR, INR.
    pub currency: String,
    /// Minor units, an integer.
    pub total: i64,
    #[serde(default)]
    pub refunded: i64,
    pub placed_at: DateTime<Utc>,
    /// When your system last changed the order: a delivery older than the recorded one is
    /// ignored (a late retry cannot undo a newer change).
    pub updated_at: Option<DateTime<Utc>>,
    pub shipping_address: Option<Address>,
    #[serde(default)]
    pub lines: Vec<LineJson>,
}

impl OrderBody {
    fn into_input(self) -> Result<OrderInput, ApiError> {
        let source = self.source.unwrap_or(OrderSource::Api);
        if !matches!(source, OrderSource::Api | OrderSource::Csv) {
            // Platform orders come through their signed webhooks only.
            return Err(ApiError::new(
                ErrorCode::InvalidValue,
                "source must be api or csv; shopify and woocommerce orders arrive by webhook",
            ));
        }
        Ok(OrderInput {
            source,
            external_id: self.external_id,
            number: self.number,
            customer: CustomerInput {
                email: self.customer.email,
                phone: self.customer.phone,
                external_id: self.customer.external_id,
                name: self.customer.name,
                language: None,
                country: self.customer.country,
            },
            status: self.status.unwrap_or(OrderStatus::Open),
            payment_status: self.payment_status.unwrap_or(PaymentStatus::Pending),
            fulfilment_status: self
                .fulfilment_status
                .unwrap_or(FulfilmentStatus::Unfulfilled),
            currency: self.currency,
            total: self.total,
            refunded: self.refunded,
            placed_at: self.placed_at,
            source_updated_at: self.updated_at,
            shipping_address: self.shipping_address,
            lines: self
                .lines
                .into_iter()
                .map(|l| OrderLine {
                    sku: l.sku,
                    title: l.title,
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    total: l.total,
                })
                .collect(),
        })
    }
}

/// Records an order: 201 when new, 200 when it updated or repeated a known one.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = OrderBody,
    responses((status = 201, body = OrderJson), (status = 200, body = OrderJson),
              (status = "4XX", body = ErrorBody)))]
pub async fn record_order(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: ApiJson<OrderBody>,
) -> ApiResult<(StatusCode, Json<OrderJson>)> {
    let (order, recorded) = state
        .app
        .record_order(&caller, &body.value.into_input()?)
        .await?;
    let status = match recorded {
        Recorded::Created(_) => StatusCode::CREATED,
        Recorded::Updated(_) | Recorded::Unchanged(_) => StatusCode::OK,
    };
    Ok((status, Json(order.into())))
}

/// One order with its lines.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = i64, Path)),
    responses((status = 200, body = OrderJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_order(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<OrderJson>> {
    Ok(Json(state.app.order(&caller, OrderId(id)).await?.into()))
}

/// A customer's most recent orders, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/orders", tag = "orders",
    params(("id" = i64, Path)),
    responses((status = 200, body = Page<OrderJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_customer_orders(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<Page<OrderJson>>> {
    let customer = state.app.customer(CustomerId(id)).await?;
    let orders = state
        .app
        .customer_orders(&caller, customer.id, RECENT_ORDERS)
        .await?;
    Ok(Json(Page {
        items: orders.into_iter().map(OrderJson::from).collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntegrationJson {
    pub id: i64,
    /// shopify or woocommerce.
    pub platform: OrderSource,
    pub name: String,
    /// Where the platform sends order webhooks (topics orders/create and orders/updated on
    /// Shopify, order.created and order.updated on WooCommerce).
    pub webhook_url: String,
}

impl IntegrationJson {
    fn new(i: Integration, public_url: &str) -> Self {
        Self {
            webhook_url: format!("{public_url}/webhooks/{}/{}", i.platform.as_str(), i.id),
            id: i.id,
            platform: i.platform,
            name: i.name,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationBody {
    /// shopify or woocommerce.
    pub platform: OrderSource,
    pub name: String,
    /// Shopify: the app's client secret; WooCommerce: the webhook's secret. Never shown again.
    pub secret: String,
}

/// Adds a shop platform that sends order webhooks (admins).
#[utoipa::path(post, path = "/api/v1/integrations", tag = "orders", request_body = IntegrationBody,
    responses((status = 201, body = IntegrationJson), (status = "4XX", body = ErrorBody)))]
pub async fn create_integration(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: ApiJson<IntegrationBody>,
) -> ApiResult<(StatusCode, Json<IntegrationJson>)> {
    let b = body.value;
    let integration = state
        .app
        .create_integration(&caller, b.platform, &b.name, &b.secret)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(IntegrationJson::new(integration, &state.config.public_url)),
    ))
}

/// The shop platforms that send order webhooks (admins).
#[utoipa::path(get, path = "/api/v1/integrations", tag = "orders",
    responses((status = 200, body = Page<IntegrationJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_integrations(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> ApiResult<Json<Page<IntegrationJson>>> {
    let all = state.app.integrations(&caller).await?;
    Ok(Json(Page {
        items: all
            .into_iter()
            .map(|i| IntegrationJson::new(i, &state.config.public_url))
            .collect(),
        next_cursor: None,
    }))
}
