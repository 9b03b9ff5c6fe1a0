//! Order webhooks from shop platforms: `POST /webhooks/shopify/{integration}` and
//! `POST /webhooks/woocommerce/{integration}`. Each delivery is verified with the platform's
//! own scheme (base64 HMAC-SHA256 of the raw body with the integration's secret, in
//! `X-Shopify-Hmac-Sha256` or `X-WC-Webhook-Signature`) before anything is read, then recorded
//! like any order: a redelivery changes nothing.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use seva_app::commerce::OrderInput;
use seva_app::customers::CustomerInput;
use seva_domain::commerce::{
    Address, Currency, FulfilmentStatus, OrderLine, OrderSource, OrderStatus, PaymentStatus,
    parse_amount,
};
use seva_domain::{Email, Phone};
use seva_store::commerce::Recorded;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorCode};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/shopify/{id}", post(shopify))
        .route("/webhooks/woocommerce/{id}", post(woocommerce))
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidBody, message)
}

fn answer(recorded: Recorded) -> Json<Value> {
    let result = match recorded {
        Recorded::Created(_) => "created",
        Recorded::Updated(_) => "updated",
        Recorded::Unchanged(_) => "unchanged",
    };
    Json(json!({"order_id": recorded.id().0, "result": result}))
}

/// A JSON number or string as written (`199`, `"199.00"`), for exact amounts.
fn amount_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn amount(value: &Value, currency: &Currency, what: &str) -> Result<i64, ApiError> {
    amount_text(value)
        .and_then(|t| parse_amount(&t, currency).ok())
        .ok_or_else(|| invalid(format!("{what} is not an amount in {}", currency.as_str())))
}

/// Contact details platforms send are not always valid; an invalid one is left out rather than
/// losing the order.
fn valid_email(text: Option<&str>) -> Option<String> {
    text.and_then(|t| Email::parse(t).ok())
        .map(|e| e.as_str().to_owned())
}

/// A phone in international form, or in the national form of `country` (the address's).
fn valid_phone(text: Option<&str>, country: Option<&str>) -> Option<String> {
    text.and_then(|t| Phone::parse_in(t, country).ok())
        .map(|p| p.as_str().to_owned())
}

fn text(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn full_name(first: Option<String>, last: Option<String>) -> Option<String> {
    text(Some(
        [text(first), text(last)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
    ))
}

// ---- Shopify --------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct ShopifyOrder {
    id: u64,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    created_at: DateTime<chrono::FixedOffset>,
    updated_at: Option<DateTime<chrono::FixedOffset>>,
    currency: String,
    total_price: Value,
    financial_status: Option<String>,
    fulfillment_status: Option<String>,
    cancelled_at: Option<String>,
    closed_at: Option<String>,
    customer: Option<ShopifyCustomer>,
    #[serde(default)]
    line_items: Vec<ShopifyLine>,
    shipping_address: Option<ShopifyAddress>,
    #[serde(default)]
    refunds: Vec<ShopifyRefund>,
}

#[derive(Debug, Deserialize)]
struct ShopifyCustomer {
    id: Option<u64>,
    email: Option<String>,
    phone: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ShopifyLine {
    sku: Option<String>,
    title: Option<String>,
    name: Option<String>,
    quantity: i64,
    price: Value,
}

#[derive(Debug, Deserialize)]
struct ShopifyAddress {
    first_name: Option<String>,
    last_name: Option<String>,
    address1: Option<String>,
    address2: Option<String>,
    city: Option<String>,
    province: Option<String>,
    zip: Option<String>,
    country_code: Option<String>,
    phone: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ShopifyRefund {
    #[serde(default)]
    transactions: Vec<ShopifyTransaction>,
}

#[derive(Debug, Deserialize)]
struct ShopifyTransaction {
    amount: Value,
    kind: Option<String>,
    status: Option<String>,
}

fn shopify_order(o: ShopifyOrder) -> Result<OrderInput, ApiError> {
    let currency = Currency::parse(&o.currency).map_err(|e| invalid(e.to_string()))?;
    let total = amount(&o.total_price, &currency, "total_price")?;
    let mut lines = Vec::with_capacity(o.line_items.len());
    for line in o.line_items {
        let unit_price = amount(&line.price, &currency, "a line's price")?;
        lines.push(OrderLine {
            sku: text(line.sku),
            title: text(line.title)
                .or(text(line.name))
                .unwrap_or_else(|| "-".into()),
            quantity: line.quantity,
            total: unit_price
                .checked_mul(line.quantity)
                .ok_or_else(|| invalid("a line's total is too large"))?,
            unit_price,
        });
    }
    let mut refunded = 0_i64;
    for t in o.refunds.iter().flat_map(|r| &r.transactions) {
        if t.kind.as_deref() == Some("refund") && t.status.as_deref() == Some("success") {
            refunded = refunded
                .checked_add(amount(&t.amount, &currency, "a refund's amount")?.abs())
                .ok_or_else(|| invalid("the refunds add up to too much"))?;
        }
    }
    let customer = o.customer;
    let country = o
        .shipping_address
        .as_ref()
        .and_then(|a| a.country_code.clone());
    let status = if o.cancelled_at.is_some() {
        OrderStatus::Cancelled
    } else if o.closed_at.is_some() {
        OrderStatus::Completed
    } else {
        OrderStatus::Open
    };
    let payment_status = match o.financial_status.as_deref() {
        Some("paid" | "partially_paid") => PaymentStatus::Paid,
        Some("partially_refunded") => PaymentStatus::PartiallyRefunded,
        Some("refunded") => PaymentStatus::Refunded,
        Some("voided") => PaymentStatus::Failed,
        _ => PaymentStatus::Pending,
    };
    let fulfilment_status = match o.fulfillment_status.as_deref() {
        Some("fulfilled") => FulfilmentStatus::Fulfilled,
        Some("partial") => FulfilmentStatus::Partial,
        _ => FulfilmentStatus::Unfulfilled,
    };
    let (customer_id, email, phone, name) = match customer {
        Some(c) => (
            c.id.map(|id| format!("shopify:{id}")),
            valid_email(c.email.as_deref()).or(valid_email(o.email.as_deref())),
            valid_phone(c.phone.as_deref(), country.as_deref())
                .or(valid_phone(o.phone.as_deref(), country.as_deref())),
            full_name(c.first_name, c.last_name),
        ),
        None => (
            None,
            valid_email(o.email.as_deref()),
            valid_phone(o.phone.as_deref(), country.as_deref()),
            None,
        ),
    };
    Ok(OrderInput {
        source: OrderSource::Shopify,
        external_id: o.id.to_string(),
        number: o.name,
        customer: CustomerInput {
            email,
            phone,
            external_id: customer_id,
            name,
            language: None,
            country,
        },
        status,
        payment_status,
        fulfilment_status,
        currency: currency.as_str().to_owned(),
        total,
        refunded: refunded.min(total),
        placed_at: o.created_at.with_timezone(&Utc),
        source_updated_at: o.updated_at.map(|t| t.with_timezone(&Utc)),
        shipping_address: o.shipping_address.map(|a| Address {
            name: full_name(a.first_name, a.last_name),
            line1: text(a.address1),
            line2: text(a.address2),
            city: text(a.city),
            region: text(a.province),
            postal_code: text(a.zip),
            country: text(a.country_code),
            phone: text(a.phone),
        }),
        lines,
    })
}

/// An order created or updated in a Shopify store (topics `orders/create`, `orders/updated`,
/// `orders/paid`, `orders/cancelled`, `orders/fulfilled`).
async fn shopify(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let signature = header(&headers, "x-shopify-hmac-sha256");
    let integration = state
        .app
        .verify_webhook(id, OrderSource::Shopify, &body, signature)
        .await?;
    let order: ShopifyOrder =
        serde_json::from_slice(&body).map_err(|e| invalid(format!("not a Shopify order: {e}")))?;
    let input = shopify_order(order)?;
    let (_, recorded) = state.app.record_webhook_order(&integration, &input).await?;
    Ok(answer(recorded))
}

// ---- WooCommerce ----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct WooOrder {
    id: u64,
    number: Option<String>,
    status: String,
    currency: String,
    date_created_gmt: NaiveDateTime,
    date_modified_gmt: Option<NaiveDateTime>,
    total: Value,
    #[serde(default)]
    customer_id: u64,
    billing: Option<WooContact>,
    shipping: Option<WooContact>,
    #[serde(default)]
    line_items: Vec<WooLine>,
    #[serde(default)]
    refunds: Vec<WooRefund>,
}

#[derive(Debug, Deserialize)]
struct WooContact {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    address_1: Option<String>,
    address_2: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postcode: Option<String>,
    country: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WooLine {
    name: Option<String>,
    sku: Option<String>,
    quantity: i64,
    /// The line's total; its `price` is a float (total ÷ quantity) and is not used.
    total: Value,
}

#[derive(Debug, Deserialize)]
struct WooRefund {
    total: Value,
}

/// WooCommerce's order statuses as Seva's three:
/// https://woocommerce.com/document/managing-orders/order-statuses/
fn woo_statuses(status: &str) -> (OrderStatus, PaymentStatus, FulfilmentStatus) {
    match status {
        "processing" => (
            OrderStatus::Open,
            PaymentStatus::Paid,
            FulfilmentStatus::Unfulfilled,
        ),
        "completed" => (
            OrderStatus::Completed,
            PaymentStatus::Paid,
            FulfilmentStatus::Fulfilled,
        ),
        "cancelled" => (
            OrderStatus::Cancelled,
            PaymentStatus::Pending,
            FulfilmentStatus::Unfulfilled,
        ),
        "refunded" => (
            OrderStatus::Completed,
            PaymentStatus::Refunded,
            FulfilmentStatus::Unfulfilled,
        ),
        "failed" => (
            OrderStatus::Open,
            PaymentStatus::Failed,
            FulfilmentStatus::Unfulfilled,
        ),
        // pending, on-hold, checkout-draft
        _ => (
            OrderStatus::Open,
            PaymentStatus::Pending,
            FulfilmentStatus::Unfulfilled,
        ),
    }
}

/// WooCommerce numbers orders and customers per site: the keys carry the integration, so two
/// shops' order 1042 stay two orders, and their customer 12 two people.
fn woo_order(integration: i64, o: WooOrder) -> Result<OrderInput, ApiError> {
    let currency = Currency::parse(&o.currency).map_err(|e| invalid(e.to_string()))?;
    let total = amount(&o.total, &currency, "total")?;
    let mut lines = Vec::with_capacity(o.line_items.len());
    for line in o.line_items {
        let line_total = amount(&line.total, &currency, "a line's total")?;
        // The unit price, rounded to the currency's minor unit.
        let unit_price = if line.quantity > 0 {
            (line_total + line.quantity / 2) / line.quantity
        } else {
            line_total
        };
        lines.push(OrderLine {
            sku: text(line.sku),
            title: text(line.name).unwrap_or_else(|| "-".into()),
            quantity: line.quantity,
            unit_price,
            total: line_total,
        });
    }
    let mut refunded = 0_i64;
    for refund in &o.refunds {
        refunded = refunded
            .checked_add(amount(&refund.total, &currency, "a refund's total")?.abs())
            .ok_or_else(|| invalid("the refunds add up to too much"))?;
    }
    let (status, payment_status, fulfilment_status) = woo_statuses(&o.status);
    let payment_status = if payment_status == PaymentStatus::Paid && refunded > 0 {
        PaymentStatus::PartiallyRefunded
    } else {
        payment_status
    };
    let billing = o.billing;
    let country = billing.as_ref().and_then(|b| b.country.clone());
    let (email, phone, name) = match &billing {
        Some(b) => (
            valid_email(b.email.as_deref()),
            valid_phone(b.phone.as_deref(), country.as_deref()),
            full_name(b.first_name.clone(), b.last_name.clone()),
        ),
        None => (None, None, None),
    };
    Ok(OrderInput {
        source: OrderSource::Woocommerce,
        external_id: format!("{integration}:{}", o.id),
        number: o.number.map(|n| format!("#{n}")),
        customer: CustomerInput {
            email,
            phone,
            // 0 is a guest checkout.
            external_id: (o.customer_id > 0)
                .then(|| format!("woocommerce:{integration}:{}", o.customer_id)),
            name,
            language: None,
            country,
        },
        status,
        payment_status,
        fulfilment_status,
        currency: currency.as_str().to_owned(),
        total,
        refunded: refunded.min(total),
        placed_at: o.date_created_gmt.and_utc(),
        source_updated_at: o.date_modified_gmt.map(|t| t.and_utc()),
        shipping_address: o
            .shipping
            .filter(|s| s.address_1.as_deref().is_some_and(|a| !a.trim().is_empty()))
            .map(|s| Address {
                name: full_name(s.first_name, s.last_name),
                line1: text(s.address_1),
                line2: text(s.address_2),
                city: text(s.city),
                region: text(s.state),
                postal_code: text(s.postcode),
                country: text(s.country),
                phone: text(s.phone),
            }),
        lines,
    })
}

fn is_ping(body: &[u8]) -> bool {
    body.strip_prefix(b"webhook_id=")
        .is_some_and(|id| !id.is_empty() && id.iter().all(u8::is_ascii_digit))
}

/// An order created or updated in a WooCommerce store (topics `order.created`,
/// `order.updated`). The ping WooCommerce sends when a webhook is saved is answered too.
async fn woocommerce(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    // WooCommerce pings a webhook, unsigned, when it is saved; nothing is read or kept.
    if is_ping(&body) {
        return Ok(Json(json!({"ok": true})));
    }
    let signature = header(&headers, "x-wc-webhook-signature");
    let integration = state
        .app
        .verify_webhook(id, OrderSource::Woocommerce, &body, signature)
        .await?;
    let order: WooOrder = serde_json::from_slice(&body)
        .map_err(|e| invalid(format!("not a WooCommerce order: {e}")))?;
    let input = woo_order(integration.id, order)?;
    let (_, recorded) = state.app.record_webhook_order(&integration, &input).await?;
    Ok(answer(recorded))
}
