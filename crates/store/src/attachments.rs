//! What describes each attachment; the bytes are in the app's attachment store.

use seva_domain::{Attachment, AttachmentId, ConversationId, MessageId, Timestamp};
use sqlx::any::AnyRow;

use crate::rows::{col, time};
use crate::{Conn, Result, StoreError, to_micros};

pub struct NewAttachment<'a> {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub sha256: &'a str,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size: u64,
    pub at: Timestamp,
}

pub async fn insert(conn: &mut Conn, new: &NewAttachment<'_>) -> Result<AttachmentId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO attachments (message_id, conversation_id, sha256, filename, content_type,
                                  size, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(new.message_id.0)
    .bind(new.conversation_id.0)
    .bind(new.sha256)
    .bind(new.filename)
    .bind(new.content_type)
    .bind(i64::try_from(new.size).unwrap_or(i64::MAX))
    .bind(to_micros(new.at))
    .fetch_one(&mut *conn)
    .await?;
    Ok(AttachmentId(id))
}

pub async fn get(conn: &mut Conn, id: AttachmentId) -> Result<Attachment> {
    let row = sqlx::query("SELECT * FROM attachments WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

/// Every attachment of a conversation, oldest first.
pub async fn for_conversation(conn: &mut Conn, id: ConversationId) -> Result<Vec<Attachment>> {
    let rows = sqlx::query("SELECT * FROM attachments WHERE conversation_id = $1 ORDER BY id")
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn for_message(conn: &mut Conn, id: MessageId) -> Result<Vec<Attachment>> {
    let rows = sqlx::query("SELECT * FROM attachments WHERE message_id = $1 ORDER BY id")
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

fn from_row(row: &AnyRow) -> Result<Attachment> {
    Ok(Attachment {
        id: AttachmentId(col(row, "id")?),
        message_id: MessageId(col(row, "message_id")?),
        filename: col(row, "filename")?,
        content_type: col(row, "content_type")?,
        size: u64::try_from(col::<i64>(row, "size")?)
            .map_err(|_| StoreError::Corrupt("attachments.size".to_owned()))?,
        sha256: col(row, "sha256")?,
        created_at: time(row, "created_at")?,
    })
}
