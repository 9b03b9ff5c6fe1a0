//! Customers and their identities.

use std::collections::HashMap;
use std::fmt::Write as _;

use seva_domain::customer::{Attributes, Consent};
use seva_domain::{Channel, Customer, CustomerId, Identity, IdentityKind, Timestamp};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::{col, opt_time, parse, placeholders, time};
use crate::{Conn, Result, StoreError, to_micros};

pub struct NewCustomer<'a> {
    pub name: Option<&'a str>,
    pub language: Option<&'a str>,
    pub attributes: &'a Attributes,
}

pub async fn insert(conn: &mut Conn, new: &NewCustomer<'_>, now: Timestamp) -> Result<CustomerId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO customers (name, language, attributes, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(new.name)
    .bind(new.language)
    .bind(attributes_json(new.attributes)?)
    .bind(to_micros(now))
    .fetch_one(&mut *conn)
    .await?;
    Ok(CustomerId(id))
}

/// Adds an identity to a customer. Already this customer's: nothing to do (`Ok(false)`).
/// Another customer's: `Conflict`, because one identity belongs to one customer.
pub async fn add_identity(
    conn: &mut Conn,
    customer: CustomerId,
    identity: &Identity,
    now: Timestamp,
) -> Result<bool> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO customer_identities (customer_id, kind, value, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (kind, value) DO NOTHING RETURNING id",
    )
    .bind(customer.0)
    .bind(identity.kind.as_str())
    .bind(&identity.value)
    .bind(to_micros(now))
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_some() {
        crate::crm::add_match_keys(conn, customer, &crate::crm::identity_keys(identity)).await?;
        return Ok(true);
    }
    match find_by_identity(conn, identity.kind, &identity.value).await? {
        Some(owner) if owner == customer => Ok(false),
        _ => Err(StoreError::Conflict {
            constraint: "customer_identities_kind_value".into(),
        }),
    }
}

pub async fn find_by_identity(
    conn: &mut Conn,
    kind: IdentityKind,
    value: &str,
) -> Result<Option<CustomerId>> {
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT customer_id FROM customer_identities WHERE kind = $1 AND value = $2",
    )
    .bind(kind.as_str())
    .bind(value)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.map(CustomerId))
}

pub async fn get(conn: &mut Conn, id: CustomerId) -> Result<Customer> {
    let row = sqlx::query("SELECT * FROM customers WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    let mut customer = from_row(&row)?;
    customer.identities = identities_of(conn, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok(customer)
}

/// Locks the customer's row until the transaction ends, on PostgreSQL, so that concurrent
/// read-modify-write updates apply one after the other (SQLite's `BEGIN IMMEDIATE` already
/// serialises writers).
pub async fn lock(conn: &mut Conn, id: CustomerId) -> Result<()> {
    if crate::dialect::is_postgres(conn) {
        sqlx::query("SELECT id FROM customers WHERE id = $1 FOR UPDATE")
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn exists(conn: &mut Conn, id: CustomerId) -> Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM customers WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}

pub struct CustomerUpdate<'a> {
    pub name: Option<&'a str>,
    pub language: Option<&'a str>,
    pub preferred_channel: Option<Channel>,
    pub attributes: &'a Attributes,
    pub consent: &'a Consent,
}

pub async fn update(
    conn: &mut Conn,
    id: CustomerId,
    update: &CustomerUpdate<'_>,
    now: Timestamp,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE customers SET name = $2, language = $3, attributes = $4, updated_at = $5,
         preferred_channel = $6, consent = $7
         WHERE id = $1",
    )
    .bind(id.0)
    .bind(update.name)
    .bind(update.language)
    .bind(attributes_json(update.attributes)?)
    .bind(to_micros(now))
    .bind(update.preferred_channel.map(Channel::as_str))
    .bind(serde_json::to_string(update.consent).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Which customers to list, newest first. `identity` narrows to the one customer it points to.
#[derive(Debug, Default)]
pub struct CustomerFilter {
    pub identity: Option<Identity>,
    /// List customers with an id below this (the cursor).
    pub before_id: Option<CustomerId>,
    pub limit: u32,
}

pub async fn list(conn: &mut Conn, filter: &CustomerFilter) -> Result<Vec<Customer>> {
    // Merged customers live on in their survivor; lists show the survivor only.
    let mut sql = String::from("SELECT c.* FROM customers c WHERE c.merged_into IS NULL");
    let mut n = 0;
    if filter.identity.is_some() {
        sql.push_str(" AND c.id IN (SELECT customer_id FROM customer_identities WHERE kind = $1 AND value = $2)");
        n = 2;
    }
    if filter.before_id.is_some() {
        n += 1;
        let _ = write!(sql, " AND c.id < ${n}");
    }
    let _ = write!(sql, " ORDER BY c.id DESC LIMIT ${}", n + 1);
    let mut query = sqlx::query(AssertSqlSafe(sql));
    if let Some(identity) = &filter.identity {
        query = query
            .bind(identity.kind.as_str())
            .bind(identity.value.clone());
    }
    if let Some(before) = filter.before_id {
        query = query.bind(before.0);
    }
    let rows = query
        .bind(i64::from(filter.limit))
        .fetch_all(&mut *conn)
        .await?;
    let mut customers = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    let ids: Vec<CustomerId> = customers.iter().map(|c| c.id).collect();
    let mut identities = identities_of(conn, &ids).await?;
    for customer in &mut customers {
        customer.identities = identities.remove(&customer.id).unwrap_or_default();
    }
    Ok(customers)
}

async fn identities_of(
    conn: &mut Conn,
    ids: &[CustomerId],
) -> Result<HashMap<CustomerId, Vec<Identity>>> {
    let mut out: HashMap<CustomerId, Vec<Identity>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT customer_id, kind, value FROM customer_identities WHERE customer_id IN ({})
         ORDER BY id",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id.0);
    }
    for row in query.fetch_all(&mut *conn).await? {
        out.entry(CustomerId(col(&row, "customer_id")?))
            .or_default()
            .push(Identity {
                kind: parse(&row, "kind")?,
                value: col(&row, "value")?,
            });
    }
    Ok(out)
}

fn attributes_json(attributes: &Attributes) -> Result<String> {
    serde_json::to_string(attributes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn from_row(row: &AnyRow) -> Result<Customer> {
    let attributes: String = col(row, "attributes")?;
    let consent: String = col(row, "consent")?;
    let preferred_channel: Option<String> = col(row, "preferred_channel")?;
    Ok(Customer {
        id: CustomerId(col(row, "id")?),
        name: col(row, "name")?,
        language: col(row, "language")?,
        preferred_channel: preferred_channel
            .map(|c| {
                c.parse()
                    .map_err(|_| StoreError::Corrupt(format!("preferred_channel = {c:?}")))
            })
            .transpose()?,
        identities: Vec::new(),
        attributes: serde_json::from_str(&attributes)
            .map_err(|e| StoreError::Corrupt(format!("customer attributes: {e}")))?,
        consent: serde_json::from_str(&consent)
            .map_err(|e| StoreError::Corrupt(format!("customer consent: {e}")))?,
        merged_into: col::<Option<i64>>(row, "merged_into")?.map(CustomerId),
        erased_at: opt_time(row, "erased_at")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// The names of several customers at once (customers without a name are left out), for lists.
pub async fn names(conn: &mut Conn, ids: &[CustomerId]) -> Result<HashMap<CustomerId, String>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT id, name FROM customers WHERE name IS NOT NULL AND id IN ({})",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id.0);
    }
    for row in query.fetch_all(&mut *conn).await? {
        out.insert(CustomerId(col(&row, "id")?), col(&row, "name")?);
    }
    Ok(out)
}
