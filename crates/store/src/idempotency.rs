//! Idempotency keys: a client's retry of a write returns what the first attempt created.

use seva_domain::{Timestamp, UserId};

use crate::rows::col;
use crate::{Conn, Result, to_micros};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    pub resource_kind: String,
    pub resource_id: i64,
}

pub async fn find(conn: &mut Conn, user: UserId, key: &str) -> Result<Option<IdempotencyRecord>> {
    let row = sqlx::query(
        "SELECT request_hash, resource_kind, resource_id FROM idempotency_keys
         WHERE user_id = $1 AND idem_key = $2",
    )
    .bind(user.0)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        Ok(IdempotencyRecord {
            request_hash: col(&row, "request_hash")?,
            resource_kind: col(&row, "resource_kind")?,
            resource_id: col(&row, "resource_id")?,
        })
    })
    .transpose()
}

/// Records the key in the transaction that creates the resource: both land or neither does.
/// A concurrent first use of the same key fails here with `Conflict`.
pub async fn insert(
    conn: &mut Conn,
    user: UserId,
    key: &str,
    record: &IdempotencyRecord,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO idempotency_keys (user_id, idem_key, request_hash, resource_kind, resource_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(user.0)
    .bind(key)
    .bind(&record.request_hash)
    .bind(&record.resource_kind)
    .bind(record.resource_id)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
