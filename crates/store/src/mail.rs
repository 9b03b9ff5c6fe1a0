//! The email channel's tables: mailboxes and their fetch position, raw sources, mail set
//! aside, and the outbox.

use seva_domain::mail::{
    Automatic, Delivery, DeliveryStatus, MailReject, MailRejectId, Mailbox, MailboxId, OutboxId,
    Server,
};
use seva_domain::{BrandId, ConversationId, MessageId, Timestamp};
use sqlx::any::AnyRow;

use crate::rows::{col, opt_time, parse, placeholders, time};
use crate::{Conn, Result, StoreError, to_micros};

// ---- mailboxes ------------------------------------------------------------------------------

/// What an admin sets on a mailbox.
pub struct MailboxSettings<'a> {
    pub name: &'a str,
    pub address: &'a str,
    pub brand_id: Option<BrandId>,
    pub imap: &'a Server,
    pub imap_folder: &'a str,
    pub smtp: &'a Server,
    pub active: bool,
}

pub async fn insert_mailbox(
    conn: &mut Conn,
    new: &MailboxSettings<'_>,
    now: Timestamp,
) -> Result<MailboxId> {
    let row = bind_settings(
        sqlx::query(
            "INSERT INTO mailboxes (name, address, brand_id, imap_host, imap_port, imap_security,
                                imap_user, imap_password, imap_folder, smtp_host, smtp_port,
                                smtp_security, smtp_user, smtp_password, last_uid, disabled_at,
                                created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0, $15, $16, $16)
         RETURNING id",
        ),
        new,
    )
    .bind((!new.active).then(|| to_micros(now)))
    .bind(to_micros(now))
    .fetch_one(&mut *conn)
    .await?;
    Ok(MailboxId(col(&row, "id")?))
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds a mailbox's settings as `$1` to `$14`, in the order both statements name them.
fn bind_settings<'q>(query: Query<'q>, new: &'q MailboxSettings<'q>) -> Query<'q> {
    query
        .bind(new.name)
        .bind(new.address)
        .bind(new.brand_id.map(|b| b.0))
        .bind(&new.imap.host)
        .bind(i64::from(new.imap.port))
        .bind(new.imap.security.as_str())
        .bind(new.imap.user.as_deref().unwrap_or(""))
        .bind(new.imap.password.as_deref().unwrap_or(""))
        .bind(new.imap_folder)
        .bind(&new.smtp.host)
        .bind(i64::from(new.smtp.port))
        .bind(new.smtp.security.as_str())
        .bind(new.smtp.user.as_deref())
        .bind(new.smtp.password.as_deref())
}

/// Replaces the settings; the fetch position starts again when the server or folder changed.
pub async fn update_mailbox(
    conn: &mut Conn,
    id: MailboxId,
    new: &MailboxSettings<'_>,
    now: Timestamp,
) -> Result<()> {
    let done = bind_settings(
        sqlx::query(
            "UPDATE mailboxes SET
            uid_validity = CASE WHEN imap_host = $4 AND imap_port = $5 AND imap_user = $7
                                     AND imap_folder = $9 THEN uid_validity ELSE NULL END,
            last_uid = CASE WHEN imap_host = $4 AND imap_port = $5 AND imap_user = $7
                                 AND imap_folder = $9 THEN last_uid ELSE 0 END,
            name = $1, address = $2, brand_id = $3, imap_host = $4, imap_port = $5,
            imap_security = $6, imap_user = $7, imap_password = $8, imap_folder = $9,
            smtp_host = $10, smtp_port = $11, smtp_security = $12, smtp_user = $13,
            smtp_password = $14,
            disabled_at = CASE WHEN $15 = 1 THEN NULL ELSE COALESCE(disabled_at, $16) END,
            last_error = NULL, updated_at = $16
         WHERE id = $17",
        ),
        new,
    )
    .bind(i64::from(new.active))
    .bind(to_micros(now))
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn mailbox(conn: &mut Conn, id: MailboxId) -> Result<Mailbox> {
    let row = sqlx::query("SELECT * FROM mailboxes WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    mailbox_from_row(&row)
}

pub async fn mailboxes(conn: &mut Conn) -> Result<Vec<Mailbox>> {
    let rows = sqlx::query("SELECT * FROM mailboxes ORDER BY name, id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(mailbox_from_row).collect()
}

/// The first active mailbox of a brand (or any active one for `None`), for replies to
/// conversations that did not start by email.
pub async fn mailbox_for_brand(
    conn: &mut Conn,
    brand_id: Option<BrandId>,
) -> Result<Option<Mailbox>> {
    let row = sqlx::query(
        "SELECT * FROM mailboxes WHERE disabled_at IS NULL AND ($1 IS NULL OR brand_id = $1)
         ORDER BY id LIMIT 1",
    )
    .bind(brand_id.map(|b| b.0))
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(mailbox_from_row).transpose()
}

/// Records how the last contact with the server went.
pub async fn set_mailbox_health(
    conn: &mut Conn,
    id: MailboxId,
    error: Option<&str>,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE mailboxes SET last_error = $1,
                checked_at = CASE WHEN $1 IS NULL THEN $2 ELSE checked_at END
         WHERE id = $3",
    )
    .bind(error)
    .bind(to_micros(at))
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes or renews the lease on watching a mailbox for `watcher` until `until`; `false` when
/// another instance holds a lease that has not run out. One statement, so two instances cannot
/// both win.
pub async fn claim_watch(
    conn: &mut Conn,
    id: MailboxId,
    watcher: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE mailboxes SET watcher = $1, watcher_until = $2
         WHERE id = $3 AND (watcher IS NULL OR watcher = $1 OR watcher_until <= $4)",
    )
    .bind(watcher)
    .bind(to_micros(until))
    .bind(id.0)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives the lease up (at shutdown), so another instance takes over at once.
pub async fn release_watch(conn: &mut Conn, id: MailboxId, watcher: &str) -> Result<()> {
    sqlx::query(
        "UPDATE mailboxes SET watcher = NULL, watcher_until = NULL
         WHERE id = $1 AND watcher = $2",
    )
    .bind(id.0)
    .bind(watcher)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves the fetch position. Called in the transaction that stored the mail at `uid`, so the
/// position never runs ahead of what is stored.
pub async fn set_position(
    conn: &mut Conn,
    id: MailboxId,
    uid_validity: u32,
    last_uid: u32,
) -> Result<()> {
    // Never backwards within one UIDVALIDITY: another instance may have moved it further.
    sqlx::query(
        "UPDATE mailboxes
         SET last_uid = CASE WHEN uid_validity = $1 AND last_uid > $2 THEN last_uid ELSE $2 END,
             uid_validity = $1
         WHERE id = $3",
    )
    .bind(i64::from(uid_validity))
    .bind(i64::from(last_uid))
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn server(row: &AnyRow, prefix: &str) -> Result<Server> {
    let port: i64 = col(row, &format!("{prefix}_port"))?;
    let user: Option<String> = col(row, &format!("{prefix}_user"))?;
    let password: Option<String> = col(row, &format!("{prefix}_password"))?;
    Ok(Server {
        host: col(row, &format!("{prefix}_host"))?,
        port: u16::try_from(port).map_err(|_| StoreError::Corrupt(format!("{prefix}_port")))?,
        security: parse(row, &format!("{prefix}_security"))?,
        user: user.filter(|u| !u.is_empty()),
        password: password.filter(|p| !p.is_empty()),
    })
}

fn mailbox_from_row(row: &AnyRow) -> Result<Mailbox> {
    let uid = |v: i64| u32::try_from(v).map_err(|_| StoreError::Corrupt("mailboxes uid".into()));
    Ok(Mailbox {
        id: MailboxId(col(row, "id")?),
        name: col(row, "name")?,
        address: col(row, "address")?,
        brand_id: col::<Option<i64>>(row, "brand_id")?.map(BrandId),
        imap: server(row, "imap")?,
        imap_folder: col(row, "imap_folder")?,
        smtp: server(row, "smtp")?,
        uid_validity: col::<Option<i64>>(row, "uid_validity")?
            .map(uid)
            .transpose()?,
        last_uid: uid(col(row, "last_uid")?)?,
        checked_at: opt_time(row, "checked_at")?,
        last_error: col(row, "last_error")?,
        active: col::<Option<i64>>(row, "disabled_at")?.is_none(),
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

// ---- raw sources and threading --------------------------------------------------------------

pub struct NewSource<'a> {
    pub message_id: MessageId,
    pub mailbox_id: MailboxId,
    pub outbound: bool,
    pub sha256: &'a str,
    pub size: u64,
    pub reply_to: Option<&'a str>,
    pub automatic: Option<Automatic>,
    pub at: Timestamp,
}

pub async fn insert_source(conn: &mut Conn, new: &NewSource<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO mail_sources (message_id, mailbox_id, direction, sha256, size, reply_to,
                                   automatic, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(new.message_id.0)
    .bind(new.mailbox_id.0)
    .bind(if new.outbound { "outbound" } else { "inbound" })
    .bind(new.sha256)
    .bind(i64::try_from(new.size).unwrap_or(i64::MAX))
    .bind(new.reply_to)
    .bind(new.automatic.map(Automatic::as_str))
    .bind(to_micros(new.at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A message's raw source: its SHA-256 in the attachment store and its size.
pub async fn source(conn: &mut Conn, message_id: MessageId) -> Result<Option<(String, u64)>> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT sha256, size FROM mail_sources WHERE message_id = $1")
            .bind(message_id.0)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(sha, size)| (sha, u64::try_from(size).unwrap_or(0))))
}

/// The messages of a conversation that came or went by email (their raw source is kept).
pub async fn sourced(conn: &mut Conn, conversation_id: ConversationId) -> Result<Vec<MessageId>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT s.message_id FROM mail_sources s JOIN messages m ON m.id = s.message_id
         WHERE m.conversation_id = $1",
    )
    .bind(conversation_id.0)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids.into_iter().map(MessageId).collect())
}

/// The messages of a conversation that are automatic mail.
pub async fn automatic_in(
    conn: &mut Conn,
    conversation_id: ConversationId,
) -> Result<Vec<(MessageId, Automatic)>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT s.message_id, s.automatic FROM mail_sources s
         JOIN messages m ON m.id = s.message_id
         WHERE m.conversation_id = $1 AND s.automatic IS NOT NULL",
    )
    .bind(conversation_id.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(id, a)| {
            let a = a.parse().map_err(|_| StoreError::Corrupt(a))?;
            Ok((MessageId(id), a))
        })
        .collect()
}

/// The conversation that holds the newest of these Message-IDs (of mail taken in, or of
/// replies sent), for threading a reply.
pub async fn conversation_of(
    conn: &mut Conn,
    message_ids: &[String],
) -> Result<Option<ConversationId>> {
    if message_ids.is_empty() {
        return Ok(None);
    }
    let list = placeholders(1, message_ids.len());
    let sql = format!(
        "SELECT conversation_id FROM (
             SELECT conversation_id, id FROM messages WHERE external_id IN ({list})
             UNION ALL
             SELECT m.conversation_id, m.id FROM outbox o JOIN messages m ON m.id = o.message_id
             WHERE o.mail_message_id IN ({list})
         ) found ORDER BY id DESC LIMIT 1"
    );
    let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
    for id in message_ids {
        query = query.bind(id);
    }
    Ok(query.fetch_optional(&mut *conn).await?.map(ConversationId))
}

/// The message a Message-ID of ours was sent with, for bounces.
pub async fn message_sent_as(conn: &mut Conn, mail_message_id: &str) -> Result<Option<MessageId>> {
    let id: Option<i64> =
        sqlx::query_scalar("SELECT message_id FROM outbox WHERE mail_message_id = $1")
            .bind(mail_message_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(id.map(MessageId))
}

/// Where an email reply in this conversation goes: the mailbox and sender of its newest
/// inbound mail.
pub async fn reply_route(
    conn: &mut Conn,
    conversation_id: ConversationId,
) -> Result<Option<(MailboxId, Option<String>)>> {
    let row: Option<(i64, Option<String>)> = sqlx::query_as(
        "SELECT s.mailbox_id, s.reply_to FROM mail_sources s
         JOIN messages m ON m.id = s.message_id
         WHERE m.conversation_id = $1 AND s.direction = 'inbound' AND s.automatic IS NULL
         ORDER BY m.id DESC LIMIT 1",
    )
    .bind(conversation_id.0)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(mailbox, to)| (MailboxId(mailbox), to)))
}

/// The Message-IDs of a conversation's email messages (as received, or as sent), oldest
/// first, for In-Reply-To and References.
pub async fn thread_ids(
    conn: &mut Conn,
    conversation_id: ConversationId,
) -> Result<Vec<(MessageId, String)>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT m.id, COALESCE(o.mail_message_id, m.external_id) FROM messages m
         LEFT JOIN outbox o ON o.message_id = m.id
         WHERE m.conversation_id = $1
           AND (o.mail_message_id IS NOT NULL
                OR (m.external_id IS NOT NULL
                    AND EXISTS (SELECT 1 FROM mail_sources s WHERE s.message_id = m.id)))
         ORDER BY m.id",
    )
    .bind(conversation_id.0)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, mid)| (MessageId(id), mid))
        .collect())
}

/// Gives a message its Message-ID (outgoing replies get theirs when queued).
pub async fn set_external_id(conn: &mut Conn, id: MessageId, external_id: &str) -> Result<()> {
    sqlx::query("UPDATE messages SET external_id = $1 WHERE id = $2")
        .bind(external_id)
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// ---- mail set aside -------------------------------------------------------------------------

pub struct NewReject<'a> {
    pub mailbox_id: MailboxId,
    pub uid: u32,
    pub sha256: Option<&'a str>,
    pub size: u64,
    pub sender: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub error: &'a str,
    pub detail: &'a str,
    pub at: Timestamp,
}

pub async fn insert_reject(conn: &mut Conn, new: &NewReject<'_>) -> Result<MailRejectId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO mail_rejects (mailbox_id, imap_uid, sha256, size, sender, subject, error,
                                   detail, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(new.mailbox_id.0)
    .bind(i64::from(new.uid))
    .bind(new.sha256)
    .bind(i64::try_from(new.size).unwrap_or(i64::MAX))
    .bind(new.sender)
    .bind(new.subject)
    .bind(new.error)
    .bind(new.detail)
    .bind(to_micros(new.at))
    .fetch_one(&mut *conn)
    .await?;
    Ok(MailRejectId(id))
}

/// The newest mail set aside in a mailbox.
pub async fn rejects(
    conn: &mut Conn,
    mailbox_id: MailboxId,
    limit: i64,
) -> Result<Vec<MailReject>> {
    let rows =
        sqlx::query("SELECT * FROM mail_rejects WHERE mailbox_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(mailbox_id.0)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|row| {
            Ok(MailReject {
                id: MailRejectId(col(row, "id")?),
                uid: u32::try_from(col::<i64>(row, "imap_uid")?).unwrap_or(0),
                size: u64::try_from(col::<i64>(row, "size")?).unwrap_or(0),
                sender: col(row, "sender")?,
                subject: col(row, "subject")?,
                error: col(row, "error")?,
                detail: col(row, "detail")?,
                created_at: time(row, "created_at")?,
            })
        })
        .collect()
}

// ---- outbox ---------------------------------------------------------------------------------

pub async fn queue(
    conn: &mut Conn,
    message_id: MessageId,
    mailbox_id: MailboxId,
    recipient: &str,
    mail_message_id: &str,
    due: Timestamp,
    at: Timestamp,
) -> Result<OutboxId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (message_id, mailbox_id, recipient, status, attempts,
                             next_attempt_at, created_at, mail_message_id)
         VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6) RETURNING id",
    )
    .bind(message_id.0)
    .bind(mailbox_id.0)
    .bind(recipient)
    .bind(to_micros(due))
    .bind(to_micros(at))
    .bind(mail_message_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(OutboxId(id))
}

/// Claims up to `limit` queued mails that are due, for `lease`: another sender skips them until
/// the lease runs out, so a sender that dies mid-send only delays its mails.
pub async fn claim_due(
    conn: &mut Conn,
    now: Timestamp,
    lease_until: Timestamp,
    limit: i64,
) -> Result<Vec<OutboxId>> {
    // One statement, so two instances cannot claim the same row: the UPDATE re-checks the
    // lease under the row lock (PostgreSQL) or the database lock (SQLite).
    let ids: Vec<i64> = sqlx::query_scalar(
        "UPDATE outbox SET locked_until = $2
         WHERE id IN (SELECT id FROM outbox
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
    Ok(ids.into_iter().map(OutboxId).collect())
}

pub async fn delivery(conn: &mut Conn, id: OutboxId) -> Result<(Delivery, MailboxId)> {
    let row = sqlx::query("SELECT * FROM outbox WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok((
        delivery_from_row(&row)?,
        MailboxId(col(&row, "mailbox_id")?),
    ))
}

/// How each email reply of a conversation is doing.
pub async fn deliveries(conn: &mut Conn, conversation_id: ConversationId) -> Result<Vec<Delivery>> {
    let rows = sqlx::query(
        "SELECT o.* FROM outbox o JOIN messages m ON m.id = o.message_id
         WHERE m.conversation_id = $1 ORDER BY o.id",
    )
    .bind(conversation_id.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(delivery_from_row).collect()
}

pub async fn mark_sent(conn: &mut Conn, id: OutboxId, at: Timestamp) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = $1,
                           locked_until = NULL, last_error = NULL
         WHERE id = $2 AND status = 'queued'",
    )
    .bind(to_micros(at))
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a failed try: the mail is tried again at `retry_at`, or, with `None`, given up.
pub async fn mark_failed(
    conn: &mut Conn,
    id: OutboxId,
    error: &str,
    retry_at: Option<Timestamp>,
) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $1, locked_until = NULL,
                           status = CASE WHEN $2 IS NULL THEN 'failed' ELSE 'queued' END,
                           next_attempt_at = COALESCE($2, next_attempt_at)
         WHERE id = $3 AND status = 'queued'",
    )
    .bind(error)
    .bind(retry_at.map(to_micros))
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A bounce for a mail already sent: it did not arrive after all.
pub async fn mark_bounced(conn: &mut Conn, message_id: MessageId, error: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET status = 'failed', last_error = $1, locked_until = NULL
         WHERE message_id = $2 AND status <> 'failed'",
    )
    .bind(error)
    .bind(message_id.0)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery> {
    Ok(Delivery {
        id: OutboxId(col(row, "id")?),
        message_id: MessageId(col(row, "message_id")?),
        recipient: col(row, "recipient")?,
        status: parse::<DeliveryStatus>(row, "status")?,
        attempts: u32::try_from(col::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: time(row, "next_attempt_at")?,
        last_error: col(row, "last_error")?,
        sent_at: opt_time(row, "sent_at")?,
        mail_message_id: col(row, "mail_message_id")?,
    })
}

/// Drops a queued reply that no longer needs to leave (a chat reply the visitor saw).
pub async fn unqueue(conn: &mut Conn, id: OutboxId) -> Result<()> {
    sqlx::query("DELETE FROM outbox WHERE id = $1 AND status = 'queued'")
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
