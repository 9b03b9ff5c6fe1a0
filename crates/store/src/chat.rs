//! Web chat's tables: widgets and the visitors chatting through them.

use seva_domain::chat::{Widget, WidgetId};
use seva_domain::{BrandId, ConversationId, CustomerId, Message, Timestamp};
use sqlx::any::AnyRow;

use crate::rows::{col, parse, time};
use crate::{Conn, Result, StoreError, to_micros};

/// What an admin sets on a widget.
pub struct WidgetSettings<'a> {
    pub name: &'a str,
    pub brand_id: Option<BrandId>,
    pub allowed_origins: &'a [String],
    pub color: &'a str,
    pub greeting: Option<&'a str>,
    pub prechat: seva_domain::chat::Prechat,
    pub away_after: u32,
    pub active: bool,
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds a widget's settings as `$1` to `$7`, in the order both statements name them.
fn bind_settings<'q>(query: Query<'q>, new: &'q WidgetSettings<'q>) -> Query<'q> {
    query
        .bind(new.name)
        .bind(new.brand_id.map(|b| b.0))
        .bind(new.allowed_origins.join("\n"))
        .bind(new.color)
        .bind(new.greeting)
        .bind(new.prechat.as_str())
        .bind(i64::from(new.away_after))
}

pub async fn insert_widget(
    conn: &mut Conn,
    public_key: &str,
    secret: &str,
    new: &WidgetSettings<'_>,
    now: Timestamp,
) -> Result<WidgetId> {
    let row = bind_settings(
        sqlx::query(
            "INSERT INTO widgets (name, brand_id, allowed_origins, color, greeting, prechat,
                                  away_after, public_key, secret, disabled_at, created_at,
                                  updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
        ),
        new,
    )
    .bind(public_key)
    .bind(secret)
    .bind((!new.active).then(|| to_micros(now)))
    .bind(to_micros(now))
    .fetch_one(&mut *conn)
    .await?;
    let id: i64 = col(&row, "id")?;
    Ok(WidgetId(id))
}

pub async fn update_widget(
    conn: &mut Conn,
    id: WidgetId,
    new: &WidgetSettings<'_>,
    now: Timestamp,
) -> Result<()> {
    let done = bind_settings(
        sqlx::query(
            "UPDATE widgets SET name = $1, brand_id = $2, allowed_origins = $3, color = $4,
                    greeting = $5, prechat = $6, away_after = $7,
                    disabled_at = CASE WHEN $8 = 1 THEN NULL ELSE COALESCE(disabled_at, $9) END,
                    updated_at = $9
             WHERE id = $10",
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

pub async fn widget(conn: &mut Conn, id: WidgetId) -> Result<Widget> {
    let row = sqlx::query("SELECT * FROM widgets WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    widget_from_row(&row)
}

pub async fn widget_by_key(conn: &mut Conn, public_key: &str) -> Result<Option<Widget>> {
    let row = sqlx::query("SELECT * FROM widgets WHERE public_key = $1")
        .bind(public_key)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(widget_from_row).transpose()
}

pub async fn widgets(conn: &mut Conn) -> Result<Vec<Widget>> {
    let rows = sqlx::query("SELECT * FROM widgets ORDER BY name, id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(widget_from_row).collect()
}

fn widget_from_row(row: &AnyRow) -> Result<Widget> {
    let origins: String = col(row, "allowed_origins")?;
    Ok(Widget {
        id: WidgetId(col(row, "id")?),
        public_key: col(row, "public_key")?,
        secret: col(row, "secret")?,
        name: col(row, "name")?,
        brand_id: col::<Option<i64>>(row, "brand_id")?.map(BrandId),
        allowed_origins: origins
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        color: col(row, "color")?,
        greeting: col(row, "greeting")?,
        prechat: parse(row, "prechat")?,
        away_after: u32::try_from(col::<i64>(row, "away_after")?).unwrap_or(u32::MAX),
        active: col::<Option<i64>>(row, "disabled_at")?.is_none(),
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

// ---- visitors -------------------------------------------------------------------------------

/// A visitor's chat as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    pub widget_id: WidgetId,
    pub customer_id: Option<CustomerId>,
    pub conversation_id: Option<ConversationId>,
}

pub async fn insert_visitor(
    conn: &mut Conn,
    token_hash: &str,
    widget: WidgetId,
    customer: Option<CustomerId>,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO chat_visitors (token_hash, widget_id, customer_id, created_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(token_hash)
    .bind(widget.0)
    .bind(customer.map(|c| c.0))
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn visitor(conn: &mut Conn, token_hash: &str) -> Result<Option<Visitor>> {
    let row: Option<(i64, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT widget_id, customer_id, conversation_id FROM chat_visitors WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(widget, customer, conversation)| Visitor {
        widget_id: WidgetId(widget),
        customer_id: customer.map(CustomerId),
        conversation_id: conversation.map(ConversationId),
    }))
}

/// Ties the visitor to the customer and conversation their first message made.
pub async fn attach_visitor(
    conn: &mut Conn,
    token_hash: &str,
    customer: CustomerId,
    conversation: ConversationId,
) -> Result<()> {
    sqlx::query(
        "UPDATE chat_visitors SET customer_id = $1, conversation_id = $2 WHERE token_hash = $3",
    )
    .bind(customer.0)
    .bind(conversation.0)
    .bind(token_hash)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn touch_visitor(conn: &mut Conn, token_hash: &str, now: Timestamp) -> Result<()> {
    sqlx::query("UPDATE chat_visitors SET last_seen_at = $1 WHERE token_hash = $2")
        .bind(to_micros(now))
        .bind(token_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The public messages of a conversation after `after` (customer messages and replies, never
/// internal notes), oldest first.
pub async fn public_messages_after(
    conn: &mut Conn,
    conversation: ConversationId,
    after: i64,
) -> Result<Vec<Message>> {
    let rows = sqlx::query(
        "SELECT * FROM messages WHERE conversation_id = $1 AND id > $2 AND kind <> 'note'
         ORDER BY id LIMIT 500",
    )
    .bind(conversation.0)
    .bind(after)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(crate::conversations::message_from_row)
        .collect()
}

/// Records the newest message the visitor's browser was given (never moving back).
pub async fn mark_delivered(conn: &mut Conn, token_hash: &str, message: i64) -> Result<()> {
    sqlx::query(
        "UPDATE chat_visitors SET delivered_id = $1
         WHERE token_hash = $2 AND (delivered_id IS NULL OR delivered_id < $1)",
    )
    .bind(message)
    .bind(token_hash)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether some visitor's browser of this conversation was given message `message`.
pub async fn delivered_in_chat(
    conn: &mut Conn,
    conversation: ConversationId,
    message: i64,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM chat_visitors WHERE conversation_id = $1 AND delivered_id >= $2",
    )
    .bind(conversation.0)
    .bind(message)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// The waiting time of the widget a chat conversation came through.
pub async fn away_after_of(conn: &mut Conn, conversation: ConversationId) -> Result<Option<u32>> {
    let secs: Option<i64> = sqlx::query_scalar(
        "SELECT w.away_after FROM chat_visitors v JOIN widgets w ON w.id = v.widget_id
         WHERE v.conversation_id = $1 ORDER BY v.created_at DESC LIMIT 1",
    )
    .bind(conversation.0)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(secs.and_then(|s| u32::try_from(s).ok()))
}
