//! Orders and their lines.

use seva_domain::commerce::{
    Address, Currency, Integration, Order, OrderId, OrderLine, OrderRequest, OrderRequestId,
    OrderSource, Product, ProductId, RequestItem, RequestKind, RequestStatus,
};
use seva_domain::{ConversationId, CustomerId, Timestamp, UserId};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::{col, parse, placeholders, time};
use crate::{Conn, Result, StoreError, to_micros};

/// An order as a platform reports it, before it has an id.
pub struct NewOrder<'a> {
    pub source: OrderSource,
    pub external_id: &'a str,
    pub number: &'a str,
    pub customer_id: CustomerId,
    pub status: seva_domain::commerce::OrderStatus,
    pub payment_status: seva_domain::commerce::PaymentStatus,
    pub fulfilment_status: seva_domain::commerce::FulfilmentStatus,
    pub currency: &'a Currency,
    pub total: i64,
    pub refunded: i64,
    pub placed_at: Timestamp,
    pub shipping_address: Option<&'a Address>,
    pub lines: &'a [OrderLine],
    /// Identifies the content: an unchanged redelivery has the same one.
    pub fingerprint: &'a str,
    /// When the platform last changed the order, if it says: an older delivery than the one
    /// recorded (a late retry) changes nothing.
    pub source_updated_at: Option<Timestamp>,
}

/// What recording an order did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Created(OrderId),
    Updated(OrderId),
    /// The same order with the same content: nothing written.
    Unchanged(OrderId),
}

impl Recorded {
    pub fn id(self) -> OrderId {
        match self {
            Recorded::Created(id) | Recorded::Updated(id) | Recorded::Unchanged(id) => id,
        }
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds an order's content as `$1` to `$12`, in the order both statements name it.
fn bind_content<'q>(
    query: Query<'q>,
    new: &'q NewOrder<'q>,
    address: Option<&'q str>,
) -> Query<'q> {
    query
        .bind(new.number)
        .bind(new.customer_id.0)
        .bind(new.status.as_str())
        .bind(new.payment_status.as_str())
        .bind(new.fulfilment_status.as_str())
        .bind(new.currency.as_str())
        .bind(new.total)
        .bind(new.refunded)
        .bind(to_micros(new.placed_at))
        .bind(address)
        .bind(new.fingerprint)
        .bind(new.source_updated_at.map(to_micros))
}

/// Creates the order, or updates the one with the same source and external id, with its lines
/// replaced. Call inside a transaction.
pub async fn record(conn: &mut Conn, new: &NewOrder<'_>, now: Timestamp) -> Result<Recorded> {
    // Locked on PostgreSQL (SQLite's writers take turns anyway): two deliveries of one order
    // compare with what the other wrote, so neither misses a change reports must see.
    let lock = if crate::dialect::is_postgres(conn) {
        " FOR UPDATE"
    } else {
        ""
    };
    let existing = sqlx::query(AssertSqlSafe(format!(
        "SELECT id, fingerprint, source_updated_at, placed_at, status, customer_id FROM orders
             WHERE source = $1 AND external_id = $2{lock}"
    )))
    .bind(new.source.as_str())
    .bind(new.external_id)
    .fetch_optional(&mut *conn)
    .await?;
    let address = new
        .shipping_address
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let recorded = if let Some(row) = existing {
        let id = OrderId(col(&row, "id")?);
        let fingerprint: String = col(&row, "fingerprint")?;
        let known: Option<i64> = col(&row, "source_updated_at")?;
        let stale = matches!(
            (known, new.source_updated_at),
            (Some(known), Some(new)) if to_micros(new) < known
        );
        if fingerprint == new.fingerprint || stale {
            return Ok(Recorded::Unchanged(id));
        }
        bind_content(
            sqlx::query(
                "UPDATE orders SET number = $1, customer_id = $2, status = $3,
                        payment_status = $4, fulfilment_status = $5, currency = $6, total = $7,
                        refunded = $8, placed_at = $9, shipping_address = $10,
                        fingerprint = $11, source_updated_at = $12, updated_at = $13
                 WHERE id = $14",
            ),
            new,
            address.as_deref(),
        )
        .bind(to_micros(now))
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM order_lines WHERE order_id = $1")
            .bind(id.0)
            .execute(&mut *conn)
            .await?;
        counted_change(conn, &row, new).await?;
        Recorded::Updated(id)
    } else {
        let row = bind_content(
            sqlx::query(
                "INSERT INTO orders (number, customer_id, status, payment_status,
                                     fulfilment_status, currency, total, refunded, placed_at,
                                     shipping_address, fingerprint, source_updated_at,
                                     created_at, updated_at, source, external_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15)
                 RETURNING id",
            ),
            new,
            address.as_deref(),
        )
        .bind(to_micros(now))
        .bind(new.source.as_str())
        .bind(new.external_id)
        .fetch_one(&mut *conn)
        .await?;
        let id: i64 = col(&row, "id")?;
        crate::kpi_days::orders_changed(conn, &[to_micros(new.placed_at)]).await?;
        Recorded::Created(OrderId(id))
    };
    if let Some(address) = new.shipping_address {
        crate::crm::add_match_keys(conn, new.customer_id, &crate::crm::address_keys(address))
            .await?;
    }
    for (position, line) in new.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO order_lines (order_id, position, sku, title, quantity, unit_price, total)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(recorded.id().0)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(line.sku.as_deref())
        .bind(&line.title)
        .bind(line.quantity)
        .bind(line.unit_price)
        .bind(line.total)
        .execute(&mut *conn)
        .await?;
    }
    Ok(recorded)
}

/// Reports may keep the days an updated order counted in (`row`: as it was): a new placing
/// day, customer or cancellation moves them (its shipping does not).
async fn counted_change(conn: &mut Conn, row: &AnyRow, new: &NewOrder<'_>) -> Result<()> {
    let placed: i64 = col(row, "placed_at")?;
    let status: String = col(row, "status")?;
    let customer: i64 = col(row, "customer_id")?;
    let cancelled = |status: &str| status == "cancelled";
    if placed != to_micros(new.placed_at)
        || customer != new.customer_id.0
        || cancelled(&status) != cancelled(new.status.as_str())
    {
        crate::kpi_days::orders_changed(conn, &[placed, to_micros(new.placed_at)]).await?;
    }
    Ok(())
}

pub async fn get(conn: &mut Conn, id: OrderId) -> Result<Order> {
    let row = sqlx::query("SELECT * FROM orders WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    let mut order = from_row(&row)?;
    order.lines = lines(conn, id).await?;
    Ok(order)
}

/// A customer's orders, newest first, with their lines.
pub async fn of_customer(conn: &mut Conn, customer: CustomerId, limit: i64) -> Result<Vec<Order>> {
    let mut orders = recent_of_customer(conn, customer, limit).await?;
    for order in &mut orders {
        order.lines = lines(conn, order.id).await?;
    }
    Ok(orders)
}

/// A customer's orders, newest first, without their lines (one query: the sidebar's).
pub async fn recent_of_customer(
    conn: &mut Conn,
    customer: CustomerId,
    limit: i64,
) -> Result<Vec<Order>> {
    let rows = sqlx::query(
        "SELECT * FROM orders WHERE customer_id = $1 ORDER BY placed_at DESC, id DESC LIMIT $2",
    )
    .bind(customer.0)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

async fn lines(conn: &mut Conn, order: OrderId) -> Result<Vec<OrderLine>> {
    let rows = sqlx::query("SELECT * FROM order_lines WHERE order_id = $1 ORDER BY position")
        .bind(order.0)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(OrderLine {
                sku: col(r, "sku")?,
                title: col(r, "title")?,
                quantity: col(r, "quantity")?,
                unit_price: col(r, "unit_price")?,
                total: col(r, "total")?,
            })
        })
        .collect()
}

fn from_row(row: &AnyRow) -> Result<Order> {
    let currency: String = col(row, "currency")?;
    let address: Option<String> = col(row, "shipping_address")?;
    Ok(Order {
        id: OrderId(col(row, "id")?),
        source: parse(row, "source")?,
        external_id: col(row, "external_id")?,
        number: col(row, "number")?,
        customer_id: CustomerId(col(row, "customer_id")?),
        status: parse(row, "status")?,
        payment_status: parse(row, "payment_status")?,
        fulfilment_status: parse(row, "fulfilment_status")?,
        currency: Currency::parse(&currency)
            .map_err(|e| StoreError::Corrupt(format!("orders.currency: {e}")))?,
        total: col(row, "total")?,
        refunded: col(row, "refunded")?,
        placed_at: time(row, "placed_at")?,
        shipping_address: address
            .map(|a| serde_json::from_str(&a))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("orders.shipping_address: {e}")))?,
        lines: Vec::new(),
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

// ---- integrations ---------------------------------------------------------------------------

pub async fn insert_integration(
    conn: &mut Conn,
    platform: OrderSource,
    name: &str,
    secret: &str,
    now: Timestamp,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO shop_integrations (platform, name, secret, created_at)
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(platform.as_str())
    .bind(name)
    .bind(secret)
    .bind(to_micros(now))
    .fetch_one(&mut *conn)
    .await?)
}

pub async fn integration(conn: &mut Conn, id: i64) -> Result<Option<Integration>> {
    let row = sqlx::query("SELECT * FROM shop_integrations WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(integration_from_row).transpose()
}

pub async fn integrations(conn: &mut Conn) -> Result<Vec<Integration>> {
    let rows = sqlx::query("SELECT * FROM shop_integrations ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(integration_from_row).collect()
}

fn integration_from_row(row: &AnyRow) -> Result<Integration> {
    Ok(Integration {
        id: col(row, "id")?,
        platform: parse(row, "platform")?,
        name: col(row, "name")?,
        secret: col(row, "secret")?,
    })
}

// ---- what a customer spent -------------------------------------------------------------------

/// Spend in one currency: totals less refunds of orders not cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    pub currency: Currency,
    pub net: i64,
    pub orders: i64,
    pub first_order_at: Timestamp,
    pub last_order_at: Timestamp,
}

/// A customer's lifetime value and order count per currency (never summed across currencies),
/// with first and last order dates; one grouped query over the `orders_customer` index.
pub async fn spend_of_customer(conn: &mut Conn, customer: CustomerId) -> Result<Vec<Spend>> {
    let rows = sqlx::query(
        "SELECT currency, CAST(SUM(total - refunded) AS BIGINT) AS net, COUNT(*) AS orders,
                MIN(placed_at) AS first_at, MAX(placed_at) AS last_at
         FROM orders WHERE customer_id = $1 AND status <> 'cancelled'
         GROUP BY currency ORDER BY currency",
    )
    .bind(customer.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let currency: String = col(row, "currency")?;
            Ok(Spend {
                currency: Currency::parse(&currency)
                    .map_err(|e| StoreError::Corrupt(format!("orders.currency: {e}")))?,
                net: col(row, "net")?,
                orders: col(row, "orders")?,
                first_order_at: time(row, "first_at")?,
                last_order_at: time(row, "last_at")?,
            })
        })
        .collect()
}

// ---- orders linked to conversations ------------------------------------------------------------

/// Links the order to the conversation; `false` when it already was.
pub async fn link(
    conn: &mut Conn,
    conversation: ConversationId,
    order: OrderId,
    by: Option<UserId>,
    at: Timestamp,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO conversation_orders (conversation_id, order_id, linked_by, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(conversation.0)
    .bind(order.0)
    .bind(by.map(|u| u.0))
    .bind(to_micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The orders linked to a conversation, in the order they were linked (without lines).
pub async fn linked_to(conn: &mut Conn, conversation: ConversationId) -> Result<Vec<Order>> {
    let rows = sqlx::query(
        "SELECT o.* FROM orders o JOIN conversation_orders l ON l.order_id = o.id
         WHERE l.conversation_id = $1 ORDER BY l.created_at, o.id",
    )
    .bind(conversation.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

// ---- returns, exchanges and refund requests ------------------------------------------------------

pub struct NewRequest<'a> {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub conversation_id: Option<ConversationId>,
    pub kind: RequestKind,
    pub reason: &'a str,
    pub items: &'a [RequestItem],
    pub created_by: Option<UserId>,
}

pub async fn insert_request(
    conn: &mut Conn,
    new: &NewRequest<'_>,
    at: Timestamp,
) -> Result<OrderRequestId> {
    let items = serde_json::to_string(new.items).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO order_requests (order_id, customer_id, conversation_id, kind, status,
                                     reason, items, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'requested', $5, $6, $7, $8, $8) RETURNING id",
    )
    .bind(new.order_id.0)
    .bind(new.customer_id.0)
    .bind(new.conversation_id.map(|c| c.0))
    .bind(new.kind.as_str())
    .bind(new.reason)
    .bind(items)
    .bind(new.created_by.map(|u| u.0))
    .bind(to_micros(at))
    .fetch_one(&mut *conn)
    .await?;
    Ok(OrderRequestId(id))
}

pub async fn request(conn: &mut Conn, id: OrderRequestId) -> Result<OrderRequest> {
    let row = sqlx::query("SELECT * FROM order_requests WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    request_from_row(&row)
}

/// Moves the request from `from` to `to`; `false` when it was no longer at `from` (a
/// concurrent change won).
pub async fn set_request_status(
    conn: &mut Conn,
    id: OrderRequestId,
    from: RequestStatus,
    to: RequestStatus,
    at: Timestamp,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE order_requests SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2",
    )
    .bind(id.0)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(to_micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A customer's requests, newest first.
pub async fn requests_of_customer(
    conn: &mut Conn,
    customer: CustomerId,
) -> Result<Vec<OrderRequest>> {
    let rows = sqlx::query("SELECT * FROM order_requests WHERE customer_id = $1 ORDER BY id DESC")
        .bind(customer.0)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(request_from_row).collect()
}

/// The requests of several orders (a conversation's linked orders), newest first.
pub async fn requests_of_orders(conn: &mut Conn, orders: &[OrderId]) -> Result<Vec<OrderRequest>> {
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT * FROM order_requests WHERE order_id IN ({}) ORDER BY id DESC",
        placeholders(1, orders.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in orders {
        query = query.bind(id.0);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter().map(request_from_row).collect()
}

fn request_from_row(row: &AnyRow) -> Result<OrderRequest> {
    let items: String = col(row, "items")?;
    Ok(OrderRequest {
        id: OrderRequestId(col(row, "id")?),
        order_id: OrderId(col(row, "order_id")?),
        customer_id: CustomerId(col(row, "customer_id")?),
        conversation_id: col::<Option<i64>>(row, "conversation_id")?.map(ConversationId),
        kind: parse(row, "kind")?,
        status: parse(row, "status")?,
        reason: col(row, "reason")?,
        items: serde_json::from_str(&items)
            .map_err(|e| StoreError::Corrupt(format!("order_requests.items: {e}")))?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

// ---- products ------------------------------------------------------------------------------------

/// Creates or updates the product with this SKU.
pub async fn upsert_product(
    conn: &mut Conn,
    sku: &str,
    title: &str,
    price: Option<(&Currency, i64)>,
    url: Option<&str>,
    at: Timestamp,
) -> Result<ProductId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO products (sku, title, currency, price, url, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (sku) DO UPDATE SET title = EXCLUDED.title, currency = EXCLUDED.currency,
             price = EXCLUDED.price, url = EXCLUDED.url, updated_at = EXCLUDED.updated_at
         RETURNING id",
    )
    .bind(sku)
    .bind(title)
    .bind(price.map(|(c, _)| c.as_str().to_owned()))
    .bind(price.map(|(_, p)| p))
    .bind(url)
    .bind(to_micros(at))
    .fetch_one(&mut *conn)
    .await?;
    Ok(ProductId(id))
}

/// Products by SKU, for the SKUs given that the catalogue has.
pub async fn products_by_sku(conn: &mut Conn, skus: &[&str]) -> Result<Vec<Product>> {
    if skus.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT * FROM products WHERE sku IN ({}) ORDER BY sku",
        placeholders(1, skus.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for sku in skus {
        query = query.bind(*sku);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter().map(product_from_row).collect()
}

pub async fn products(conn: &mut Conn, limit: i64) -> Result<Vec<Product>> {
    let rows = sqlx::query("SELECT * FROM products ORDER BY sku LIMIT $1")
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(product_from_row).collect()
}

fn product_from_row(row: &AnyRow) -> Result<Product> {
    let currency: Option<String> = col(row, "currency")?;
    let price: Option<i64> = col(row, "price")?;
    let price = match (currency, price) {
        (Some(c), Some(p)) => Some((
            Currency::parse(&c)
                .map_err(|e| StoreError::Corrupt(format!("products.currency: {e}")))?,
            p,
        )),
        _ => None,
    };
    Ok(Product {
        id: ProductId(col(row, "id")?),
        sku: col(row, "sku")?,
        title: col(row, "title")?,
        price,
        url: col(row, "url")?,
        updated_at: time(row, "updated_at")?,
    })
}
