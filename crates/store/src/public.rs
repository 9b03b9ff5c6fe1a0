//! The public side's tables: contact form submissions, mail Seva sends on its own (notices),
//! and the customer portal's sign-in links and sessions.

use seva_domain::mail::MailboxId;
use seva_domain::{ConversationId, CustomerId, MessageId, Timestamp};
use sqlx::any::AnyRow;

use crate::rows::{col, time};
use crate::{Conn, Result, StoreError, to_micros};

// ---- contact form ---------------------------------------------------------------------------

pub async fn insert_submission(
    conn: &mut Conn,
    message: MessageId,
    conversation: ConversationId,
    order_number: Option<&str>,
    client_hash: &str,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO form_submissions (message_id, conversation_id, order_number, client_hash,
                                       created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(message.0)
    .bind(conversation.0)
    .bind(order_number)
    .bind(client_hash)
    .bind(to_micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// How many forms this client (an address's hash) sent since `since`.
pub async fn submissions_since(
    conn: &mut Conn,
    client_hash: &str,
    since: Timestamp,
) -> Result<i64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM form_submissions WHERE client_hash = $1 AND created_at >= $2",
    )
    .bind(client_hash)
    .bind(to_micros(since))
    .fetch_one(&mut *conn)
    .await?;
    Ok(n)
}

/// The order numbers customers gave on the form, by message, for a conversation's page.
pub async fn order_numbers(
    conn: &mut Conn,
    conversation: ConversationId,
) -> Result<Vec<(MessageId, String)>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT message_id, order_number FROM form_submissions
         WHERE conversation_id = $1 AND order_number IS NOT NULL ORDER BY message_id",
    )
    .bind(conversation.0)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(m, o)| (MessageId(m), o)).collect())
}

// ---- notices: mail Seva sends on its own ----------------------------------------------------

pub struct NewNotice<'a> {
    /// `acknowledgement` or `portal_link`.
    pub kind: &'a str,
    pub mailbox_id: MailboxId,
    pub conversation_id: Option<ConversationId>,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub mail_message_id: &'a str,
    pub at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Notice {
    pub id: i64,
    pub kind: String,
    pub mailbox_id: MailboxId,
    pub conversation_id: Option<ConversationId>,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub mail_message_id: String,
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
}

pub async fn insert_notice(conn: &mut Conn, new: &NewNotice<'_>) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO mail_notices (kind, mailbox_id, conversation_id, recipient, subject, body,
                                   mail_message_id, status, attempts, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8, $8) RETURNING id",
    )
    .bind(new.kind)
    .bind(new.mailbox_id.0)
    .bind(new.conversation_id.map(|c| c.0))
    .bind(new.recipient)
    .bind(new.subject)
    .bind(new.body)
    .bind(new.mail_message_id)
    .bind(to_micros(new.at))
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// How many notices of `kind` went to `recipient` since `since` (sign-in links are limited).
pub async fn notices_since(
    conn: &mut Conn,
    recipient: &str,
    kind: &str,
    since: Timestamp,
) -> Result<i64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM mail_notices
         WHERE recipient = $1 AND kind = $2 AND created_at >= $3",
    )
    .bind(recipient)
    .bind(kind)
    .bind(to_micros(since))
    .fetch_one(&mut *conn)
    .await?;
    Ok(n)
}

/// Claims up to `limit` due notices until `lease_until` (as the outbox does for replies).
pub async fn claim_notices(
    conn: &mut Conn,
    now: Timestamp,
    lease_until: Timestamp,
    limit: i64,
) -> Result<Vec<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "UPDATE mail_notices SET locked_until = $2
         WHERE id IN (SELECT id FROM mail_notices
                      WHERE status = 'queued' AND next_attempt_at <= $1
                        AND (locked_until IS NULL OR locked_until <= $1)
                      ORDER BY next_attempt_at, id LIMIT $3)
           AND status = 'queued' AND (locked_until IS NULL OR locked_until <= $1)
         RETURNING id",
    )
    .bind(to_micros(now))
    .bind(to_micros(lease_until))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids)
}

pub async fn notice(conn: &mut Conn, id: i64) -> Result<Notice> {
    let row = sqlx::query("SELECT * FROM mail_notices WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    notice_from_row(&row)
}

/// The notices about a conversation (its acknowledgement), oldest first.
pub async fn conversation_notices(
    conn: &mut Conn,
    conversation: ConversationId,
) -> Result<Vec<Notice>> {
    let rows = sqlx::query("SELECT * FROM mail_notices WHERE conversation_id = $1 ORDER BY id")
        .bind(conversation.0)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(notice_from_row).collect()
}

/// The conversation a notice with this Message-ID was about, for threading the answer to it.
pub async fn conversation_of_notice(
    conn: &mut Conn,
    mail_message_id: &str,
) -> Result<Option<ConversationId>> {
    let id: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT conversation_id FROM mail_notices WHERE mail_message_id = $1 LIMIT 1",
    )
    .bind(mail_message_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.flatten().map(ConversationId))
}

/// The notice went out. A sign-in link's text is blanked: the link must not outlive the mail
/// in the database.
pub async fn notice_sent(conn: &mut Conn, id: i64, at: Timestamp) -> Result<()> {
    sqlx::query(
        "UPDATE mail_notices SET status = 'sent', attempts = attempts + 1, sent_at = $1,
                                 locked_until = NULL, last_error = NULL,
                                 body = CASE WHEN kind = 'portal_link' THEN '' ELSE body END
         WHERE id = $2 AND status = 'queued'",
    )
    .bind(to_micros(at))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A failed try: again at `retry_at`, or given up with `None`.
pub async fn notice_failed(
    conn: &mut Conn,
    id: i64,
    error: &str,
    retry_at: Option<Timestamp>,
) -> Result<()> {
    sqlx::query(
        "UPDATE mail_notices SET attempts = attempts + 1, last_error = $1, locked_until = NULL,
                                 status = CASE WHEN $2 IS NULL THEN 'failed' ELSE 'queued' END,
                                 next_attempt_at = COALESCE($2, next_attempt_at)
         WHERE id = $3 AND status = 'queued'",
    )
    .bind(error)
    .bind(retry_at.map(to_micros))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn notice_from_row(row: &AnyRow) -> Result<Notice> {
    Ok(Notice {
        id: col(row, "id")?,
        kind: col(row, "kind")?,
        mailbox_id: MailboxId(col(row, "mailbox_id")?),
        conversation_id: col::<Option<i64>>(row, "conversation_id")?.map(ConversationId),
        recipient: col(row, "recipient")?,
        subject: col(row, "subject")?,
        body: col(row, "body")?,
        mail_message_id: col(row, "mail_message_id")?,
        status: col(row, "status")?,
        attempts: u32::try_from(col::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
        last_error: col(row, "last_error")?,
        created_at: time(row, "created_at")?,
    })
}

// ---- customer portal ------------------------------------------------------------------------

pub async fn insert_link(
    conn: &mut Conn,
    token_hash: &str,
    customer: CustomerId,
    expires_at: Timestamp,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO portal_links (token_hash, customer_id, expires_at, created_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(customer.0)
    .bind(to_micros(expires_at))
    .bind(to_micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Uses a link: one statement marks it used only if it is unused and unexpired, so two clicks
/// racing each other sign in once.
pub async fn redeem_link(
    conn: &mut Conn,
    token_hash: &str,
    now: Timestamp,
) -> Result<Option<CustomerId>> {
    let id: Option<i64> = sqlx::query_scalar(
        "UPDATE portal_links SET used_at = $1
         WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
         RETURNING customer_id",
    )
    .bind(to_micros(now))
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.map(CustomerId))
}

/// Whether a link can still be used (for the page that asks to confirm it).
pub async fn link_usable(conn: &mut Conn, token_hash: &str, now: Timestamp) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM portal_links
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(to_micros(now))
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

pub async fn insert_portal_session(
    conn: &mut Conn,
    token_hash: &str,
    customer: CustomerId,
    expires_at: Timestamp,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO portal_sessions (token_hash, customer_id, expires_at, created_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(customer.0)
    .bind(to_micros(expires_at))
    .bind(to_micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn portal_session(
    conn: &mut Conn,
    token_hash: &str,
    now: Timestamp,
) -> Result<Option<CustomerId>> {
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT customer_id FROM portal_sessions WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(to_micros(now))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.map(CustomerId))
}

pub async fn delete_portal_session(conn: &mut Conn, token_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM portal_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// ---- server keys ----------------------------------------------------------------------------

/// The key called `name`, made from `fresh` by whichever instance asks first.
pub async fn server_key(
    conn: &mut Conn,
    name: &str,
    fresh: &str,
    now: Timestamp,
) -> Result<String> {
    // Read first: made once, the key is only read afterwards (no write lock per request).
    let known: Option<String> = sqlx::query_scalar("SELECT value FROM server_keys WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(value) = known {
        return Ok(value);
    }
    sqlx::query(
        "INSERT INTO server_keys (name, value, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(fresh)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    let value: String = sqlx::query_scalar("SELECT value FROM server_keys WHERE name = $1")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    Ok(value)
}
