//! What agents keep about customers (tags, notes), the keys that find likely duplicates, and
//! merging two customers into one.

use seva_domain::customer::{MatchKey, mailbox_key, name_address_key, phone_key};
use seva_domain::{CustomerId, CustomerNoteId, Identity, IdentityKind, Timestamp, UserId};
use sqlx::AssertSqlSafe;

use crate::rows::{col, placeholders, time};
use crate::{Conn, Result, to_micros};

/// The duplicate keys an identity gives (external ids give none: they are exact already).
pub fn identity_keys(identity: &Identity) -> Vec<MatchKey> {
    match identity.kind {
        IdentityKind::Email => mailbox_key(&identity.value).into_iter().collect(),
        IdentityKind::Phone => phone_key(&identity.value).into_iter().collect(),
        IdentityKind::External => Vec::new(),
    }
}

pub async fn add_match_keys(
    conn: &mut Conn,
    customer: CustomerId,
    keys: &[MatchKey],
) -> Result<()> {
    for key in keys {
        sqlx::query(
            "INSERT INTO customer_match_keys (kind, value, customer_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(key.kind())
        .bind(key.value())
        .bind(customer.0)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Fills the keys from identities and order addresses recorded before keys were kept. Runs
/// once, after the migration that added them, when identities exist but no keys do.
pub(crate) async fn backfill_match_keys(conn: &mut Conn) -> Result<()> {
    let have_keys: Option<i64> =
        sqlx::query_scalar("SELECT customer_id FROM customer_match_keys LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    if have_keys.is_some() {
        return Ok(());
    }
    let rows = sqlx::query(
        "SELECT customer_id, kind, value FROM customer_identities WHERE kind <> 'external'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let identity = Identity {
            kind: crate::rows::parse(&row, "kind")?,
            value: col(&row, "value")?,
        };
        let customer = CustomerId(col(&row, "customer_id")?);
        add_match_keys(conn, customer, &identity_keys(&identity)).await?;
    }
    let rows = sqlx::query(
        "SELECT customer_id, shipping_address FROM orders WHERE shipping_address IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let address: String = col(&row, "shipping_address")?;
        if let Ok(address) = serde_json::from_str(&address) {
            let customer = CustomerId(col(&row, "customer_id")?);
            add_match_keys(conn, customer, &address_keys(&address)).await?;
        }
    }
    Ok(())
}

/// The name-and-address key of an order's shipping address.
pub fn address_keys(address: &seva_domain::commerce::Address) -> Vec<MatchKey> {
    match (&address.name, &address.line1) {
        (Some(name), Some(line1)) => {
            name_address_key(name, line1, address.postal_code.as_deref().unwrap_or(""))
                .into_iter()
                .collect()
        }
        _ => Vec::new(),
    }
}

/// A customer who shares a key with the one asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub customer_id: CustomerId,
    /// Which keys they share: `email`, `phone`, `name_address`.
    pub reasons: Vec<String>,
}

/// Customers (not merged away) sharing a key with `customer`, most shared keys first.
pub async fn duplicates_of(conn: &mut Conn, customer: CustomerId) -> Result<Vec<Suggestion>> {
    let rows = sqlx::query(
        "SELECT other.customer_id, other.kind FROM customer_match_keys mine
         JOIN customer_match_keys other ON other.kind = mine.kind AND other.value = mine.value
         JOIN customers c ON c.id = other.customer_id
         WHERE mine.customer_id = $1 AND other.customer_id <> $1 AND c.merged_into IS NULL
         ORDER BY other.customer_id",
    )
    .bind(customer.0)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: Vec<Suggestion> = Vec::new();
    for row in rows {
        let id = CustomerId(col(&row, "customer_id")?);
        let kind: String = col(&row, "kind")?;
        match out.iter_mut().find(|s| s.customer_id == id) {
            Some(s) if !s.reasons.contains(&kind) => s.reasons.push(kind),
            Some(_) => {}
            None => out.push(Suggestion {
                customer_id: id,
                reasons: vec![kind],
            }),
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.reasons.len()));
    Ok(out)
}

/// Groups of customers sharing a key, newest keys first: the duplicates list.
pub async fn duplicate_groups(
    conn: &mut Conn,
    limit: i64,
) -> Result<Vec<(String, Vec<CustomerId>)>> {
    let rows = sqlx::query(
        "SELECT k.kind, k.value FROM customer_match_keys k
         JOIN customers c ON c.id = k.customer_id AND c.merged_into IS NULL
         GROUP BY k.kind, k.value HAVING COUNT(*) > 1
         ORDER BY MAX(k.customer_id) DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut groups = Vec::with_capacity(rows.len());
    for row in rows {
        let kind: String = col(&row, "kind")?;
        let value: String = col(&row, "value")?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT k.customer_id FROM customer_match_keys k
             JOIN customers c ON c.id = k.customer_id AND c.merged_into IS NULL
             WHERE k.kind = $1 AND k.value = $2 ORDER BY k.customer_id",
        )
        .bind(&kind)
        .bind(&value)
        .fetch_all(&mut *conn)
        .await?;
        groups.push((kind, ids.into_iter().map(CustomerId).collect()));
    }
    Ok(groups)
}

pub async fn tags_of(conn: &mut Conn, customer: CustomerId) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT tag FROM customer_tags WHERE customer_id = $1 ORDER BY tag")
            .bind(customer.0)
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// Adds and removes tags; returns those really added and removed.
pub async fn change_tags(
    conn: &mut Conn,
    customer: CustomerId,
    add: &[String],
    remove: &[String],
) -> Result<(Vec<String>, Vec<String>)> {
    let mut added = Vec::new();
    for tag in add {
        let done = sqlx::query(
            "INSERT INTO customer_tags (customer_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(customer.0)
        .bind(tag)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() > 0 {
            added.push(tag.clone());
        }
    }
    let mut removed = Vec::new();
    for tag in remove {
        let done = sqlx::query("DELETE FROM customer_tags WHERE customer_id = $1 AND tag = $2")
            .bind(customer.0)
            .bind(tag)
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() > 0 {
            removed.push(tag.clone());
        }
    }
    Ok((added, removed))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub id: CustomerNoteId,
    pub author_id: Option<UserId>,
    pub body: String,
    pub created_at: Timestamp,
}

pub async fn add_note(
    conn: &mut Conn,
    customer: CustomerId,
    author: Option<UserId>,
    body: &str,
    at: Timestamp,
) -> Result<CustomerNoteId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO customer_notes (customer_id, author_id, body, created_at)
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(customer.0)
    .bind(author.map(|a| a.0))
    .bind(body)
    .bind(to_micros(at))
    .fetch_one(&mut *conn)
    .await?;
    Ok(CustomerNoteId(id))
}

/// A customer's notes, newest first.
pub async fn notes_of(conn: &mut Conn, customer: CustomerId) -> Result<Vec<Note>> {
    let rows = sqlx::query("SELECT * FROM customer_notes WHERE customer_id = $1 ORDER BY id DESC")
        .bind(customer.0)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Note {
                id: CustomerNoteId(col(row, "id")?),
                author_id: col::<Option<i64>>(row, "author_id")?.map(UserId),
                body: col(row, "body")?,
                created_at: time(row, "created_at")?,
            })
        })
        .collect()
}

/// How much a merge moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    pub identities: u64,
    pub conversations: u64,
    pub orders: u64,
}

/// Moves everything of `from` to `into`: identities, conversations, orders, requests, notes,
/// tags, keys, history, chat and portal links; `from` stays as a row pointing to `into`.
/// Call inside a transaction, with both customers locked; the caller merges the profile
/// fields (name, language, attributes, consent) and records the event.
pub async fn merge(
    conn: &mut Conn,
    from: CustomerId,
    into: CustomerId,
    now: Timestamp,
) -> Result<Moved> {
    let mut moved = Moved::default();
    for table in [
        "customer_identities",
        "conversations",
        "order_requests",
        "customer_notes",
        "events",
        "chat_visitors",
        "portal_links",
        "portal_sessions",
        "surveys",
    ] {
        let sql = format!("UPDATE {table} SET customer_id = $1 WHERE customer_id = $2");
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(into.0)
            .bind(from.0)
            .execute(&mut *conn)
            .await?;
        match table {
            "customer_identities" => moved.identities = done.rows_affected(),
            "conversations" => moved.conversations = done.rows_affected(),
            _ => {}
        }
    }
    // What reports' kept days count moves with the rows: the orders' days, and every day the
    // conversations count in (the customer's other conversations decide FCR). Read from
    // the rows moved, so a row written meanwhile is not missed; moved after the
    // conversations and bumped last, so rows are locked in the order every change takes.
    let placed: Vec<i64> = sqlx::query_scalar(
        "UPDATE orders SET customer_id = $1 WHERE customer_id = $2 RETURNING placed_at",
    )
    .bind(into.0)
    .bind(from.0)
    .fetch_all(&mut *conn)
    .await?;
    moved.orders = u64::try_from(placed.len()).unwrap_or(u64::MAX);
    let facts: Vec<i64> = sqlx::query_scalar(
        "UPDATE conversation_facts SET customer_id = $1 WHERE customer_id = $2
         RETURNING conversation_id",
    )
    .bind(into.0)
    .bind(from.0)
    .fetch_all(&mut *conn)
    .await?;
    crate::kpi_days::moved(conn, &facts, &placed).await?;
    for (table, column) in [
        ("customer_tags", "tag"),
        ("customer_match_keys", "kind, value"),
    ] {
        let sql = format!(
            "INSERT INTO {table} (customer_id, {column}) SELECT $1, {column} FROM {table}
             WHERE customer_id = $2 ON CONFLICT DO NOTHING"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(into.0)
            .bind(from.0)
            .execute(&mut *conn)
            .await?;
        let sql = format!("DELETE FROM {table} WHERE customer_id = $1");
        sqlx::query(AssertSqlSafe(sql))
            .bind(from.0)
            .execute(&mut *conn)
            .await?;
    }
    // Earlier merges into `from` now point at the survivor too.
    sqlx::query(
        "UPDATE customers SET merged_into = $1, updated_at = $3 WHERE id = $2 OR merged_into = $2",
    )
    .bind(into.0)
    .bind(from.0)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(moved)
}

/// The ids of customers in `ids` that still exist and were not merged away.
pub async fn live_ids(conn: &mut Conn, ids: &[CustomerId]) -> Result<Vec<CustomerId>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id FROM customers WHERE merged_into IS NULL AND id IN ({}) ORDER BY id",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query_scalar(AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id.0);
    }
    let found: Vec<i64> = query.fetch_all(&mut *conn).await?;
    Ok(found.into_iter().map(CustomerId).collect())
}
