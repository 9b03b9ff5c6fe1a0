//! Orders and their lines.

use seva_domain::commerce::{
    Address, Currency, Integration, Order, OrderId, OrderLine, OrderSource,
};
use seva_domain::{CustomerId, Timestamp};
use sqlx::any::AnyRow;

use crate::rows::{col, parse, time};
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
    let existing = sqlx::query(
        "SELECT id, fingerprint, source_updated_at FROM orders
             WHERE source = $1 AND external_id = $2",
    )
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
        Recorded::Created(OrderId(id))
    };
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
