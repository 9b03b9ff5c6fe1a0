//! Erasure (a GDPR/DPDP erasure request): everything that identifies a customer or repeats
//! their words goes; what happened and when (counts, times, amounts) stays for the reports.

use std::fmt::Write as _;

use seva_domain::{Change, CustomerId, Timestamp};
use sqlx::AssertSqlSafe;

use crate::rows::{col, placeholders};
use crate::{Conn, Result, StoreError, dialect, search, to_micros};

/// What erasing left for the caller: blobs (attachments, raw mail) nothing refers to any more,
/// to delete from the blob store once the transaction has committed.
#[derive(Debug, Default)]
pub struct Erased {
    pub orphan_blobs: Vec<String>,
}

/// Erases the customer. Call inside a transaction with the customer locked. (SQLite
/// connections zero deleted content, `secure_delete`, so the words do not linger in the file.)
pub async fn erase(conn: &mut Conn, customer: CustomerId, now: Timestamp) -> Result<Erased> {
    let postgres = dialect::is_postgres(conn);
    erase_rows(conn, customer, now, postgres).await
}

async fn erase_rows(
    conn: &mut Conn,
    customer: CustomerId,
    now: Timestamp,
    postgres: bool,
) -> Result<Erased> {
    let c = customer.0;
    let emails: Vec<String> = sqlx::query_scalar(
        "SELECT value FROM customer_identities WHERE customer_id = $1 AND kind = 'email'",
    )
    .bind(c)
    .fetch_all(&mut *conn)
    .await?;
    let conversations: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM conversations WHERE customer_id = $1")
            .bind(c)
            .fetch_all(&mut *conn)
            .await?;
    let delete_doc = if postgres {
        dialect::SEARCH_DELETE_POSTGRES
    } else {
        dialect::SEARCH_DELETE_SQLITE
    };
    let mut blobs: Vec<String> = Vec::new();
    for &conversation in &conversations {
        blobs.extend(erase_conversation(conn, conversation, delete_doc).await?);
    }
    // Mail that was refused but came from the customer's addresses (the address alone, or in
    // angle brackets after a name), and notices to them (portal sign-in links belong to no
    // conversation).
    for email in &emails {
        let escaped = email
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let bracketed = format!("%<{escaped}>%");
        let found: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT sha256 FROM mail_rejects
             WHERE lower(sender) = $1 OR lower(sender) LIKE $2 ESCAPE '\\'",
        )
        .bind(email)
        .bind(&bracketed)
        .fetch_all(&mut *conn)
        .await?;
        blobs.extend(found.into_iter().flatten());
        sqlx::query(
            "DELETE FROM mail_rejects WHERE lower(sender) = $1 OR lower(sender) LIKE $2 ESCAPE '\\'",
        )
        .bind(email)
        .bind(&bracketed)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM mail_notices WHERE lower(recipient) = $1")
            .bind(email)
            .execute(&mut *conn)
            .await?;
    }
    redact_events(conn, customer, &conversations).await?;
    for sql in [
        "DELETE FROM customer_identities WHERE customer_id = $1",
        "DELETE FROM customer_match_keys WHERE customer_id = $1",
        "DELETE FROM customer_tags WHERE customer_id = $1",
        "DELETE FROM customer_notes WHERE customer_id = $1",
        "DELETE FROM chat_visitors WHERE customer_id = $1",
        "DELETE FROM portal_sessions WHERE customer_id = $1",
        "DELETE FROM portal_links WHERE customer_id = $1",
        "UPDATE orders SET shipping_address = NULL WHERE customer_id = $1",
        "UPDATE order_requests SET reason = '' WHERE customer_id = $1",
        "UPDATE surveys SET comment = NULL WHERE customer_id = $1",
    ] {
        sqlx::query(sql).bind(c).execute(&mut *conn).await?;
    }
    let done = sqlx::query(
        "UPDATE customers SET name = NULL, attributes = '{}', consent = '{}',
                preferred_channel = NULL, erased_at = $2, updated_at = $2
         WHERE id = $1",
    )
    .bind(c)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    blobs.sort();
    blobs.dedup();
    let mut orphan_blobs = Vec::new();
    for sha in blobs {
        let used: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM attachments WHERE sha256 = $1
             UNION ALL SELECT 1 FROM mail_sources WHERE sha256 = $1
             UNION ALL SELECT 1 FROM mail_rejects WHERE sha256 = $1 LIMIT 1",
        )
        .bind(&sha)
        .fetch_optional(&mut *conn)
        .await?;
        if used.is_none() {
            orphan_blobs.push(sha);
        }
    }
    Ok(Erased { orphan_blobs })
}

/// Empties one conversation of the customer's words; returns the blobs it referred to.
async fn erase_conversation(
    conn: &mut Conn,
    conversation: i64,
    delete_doc: &'static str,
) -> Result<Vec<String>> {
    let mut blobs = Vec::new();
    let messages: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM messages WHERE conversation_id = $1")
            .bind(conversation)
            .fetch_all(&mut *conn)
            .await?;
    for &message in &messages {
        sqlx::query(delete_doc)
            .bind(search::message_doc(seva_domain::MessageId(message)))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(delete_doc)
        .bind(search::subject_doc(seva_domain::ConversationId(
            conversation,
        )))
        .execute(&mut *conn)
        .await?;
    for sql in [
        "SELECT a.sha256 FROM attachments a WHERE a.conversation_id = $1",
        "SELECT s.sha256 FROM mail_sources s JOIN messages m ON m.id = s.message_id
         WHERE m.conversation_id = $1",
    ] {
        let found: Vec<String> = sqlx::query_scalar(sql)
            .bind(conversation)
            .fetch_all(&mut *conn)
            .await?;
        blobs.extend(found);
    }
    for sql in [
        "DELETE FROM attachments WHERE conversation_id = $1",
        "DELETE FROM mail_sources WHERE message_id IN
             (SELECT id FROM messages WHERE conversation_id = $1)",
        "UPDATE messages SET body_text = '', body_html = NULL, external_id = NULL
         WHERE conversation_id = $1",
        "UPDATE outbox SET recipient = '', last_error = NULL WHERE message_id IN
             (SELECT id FROM messages WHERE conversation_id = $1)",
        "DELETE FROM mail_notices WHERE conversation_id = $1",
        "UPDATE form_submissions SET order_number = NULL WHERE conversation_id = $1",
        "UPDATE conversations SET subject = NULL WHERE id = $1",
        "DELETE FROM chat_visitors WHERE conversation_id = $1",
    ] {
        sqlx::query(sql)
            .bind(conversation)
            .execute(&mut *conn)
            .await?;
    }
    Ok(blobs)
}

/// Rewrites the customer's and their conversations' events without names, identities and
/// subjects (`Change::redacted`).
async fn redact_events(conn: &mut Conn, customer: CustomerId, conversations: &[i64]) -> Result<()> {
    let mut sql = String::from("SELECT id, data FROM events WHERE customer_id = $1");
    if !conversations.is_empty() {
        let _ = write!(
            sql,
            " OR conversation_id IN ({})",
            placeholders(2, conversations.len())
        );
    }
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(customer.0);
    for id in conversations {
        query = query.bind(*id);
    }
    for row in query.fetch_all(&mut *conn).await? {
        let id: i64 = col(&row, "id")?;
        let data: String = col(&row, "data")?;
        let change: Change = serde_json::from_str(&data)
            .map_err(|e| StoreError::Corrupt(format!("event {id}: {e}")))?;
        let redacted = serde_json::to_string(&change.redacted())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if redacted != data {
            sqlx::query("UPDATE events SET data = $1 WHERE id = $2")
                .bind(redacted)
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// After an erasure has committed: copies the WAL back into the SQLite file and empties it, so
/// the old pages are gone from both. Best effort (a long reader can hold it back); PostgreSQL
/// reclaims dead rows with its own vacuum.
pub async fn checkpoint(conn: &mut Conn) -> Result<()> {
    if !dialect::is_postgres(conn) {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
