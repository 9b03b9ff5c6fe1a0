//! The event log: append-only. There is no update or delete here, by design.

use seva_domain::event::ActorKind;
use seva_domain::{Actor, Change, ConversationId, CustomerId, Event, EventId, Timestamp};
use sqlx::any::AnyRow;

use crate::rows::{col, parse, time};
use crate::{Conn, Result, StoreError, to_micros};

/// Appends one event. Call it in the same transaction as the change it records.
pub async fn record(
    conn: &mut Conn,
    conversation: Option<ConversationId>,
    customer: Option<CustomerId>,
    actor: Actor,
    change: &Change,
    at: Timestamp,
) -> Result<EventId> {
    let data = serde_json::to_string(change).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO events (conversation_id, customer_id, actor_kind, actor_id, kind, data, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(conversation.map(|c| c.0))
    .bind(customer.map(|c| c.0))
    .bind(actor.kind.as_str())
    .bind(actor.id)
    .bind(change.kind())
    .bind(data)
    .bind(to_micros(at))
    .fetch_one(&mut *conn)
    .await?;
    // Every change to a conversation records an event in its transaction: the one place that
    // keeps the KPI facts in step.
    if let Some(conversation) = conversation {
        crate::kpi::on_event(conn, conversation, change).await?;
    }
    Ok(EventId(id))
}

/// A conversation's events, oldest first.
pub async fn for_conversation(conn: &mut Conn, id: ConversationId) -> Result<Vec<Event>> {
    let rows = sqlx::query("SELECT * FROM events WHERE conversation_id = $1 ORDER BY id")
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// A customer's events, oldest first: those about the customer, and survey answers (asked on
/// a conversation, they are feedback about the customer's whole experience). The rest of
/// their conversations' events stay on the conversations.
pub async fn for_customer(conn: &mut Conn, id: CustomerId) -> Result<Vec<Event>> {
    let rows = sqlx::query(
        "SELECT * FROM events WHERE customer_id = $1
           AND (conversation_id IS NULL
                OR kind IN ('survey_sent', 'survey_answered', 'survey_commented'))
         ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

fn from_row(row: &AnyRow) -> Result<Event> {
    let data: String = col(row, "data")?;
    Ok(Event {
        id: EventId(col(row, "id")?),
        conversation_id: col::<Option<i64>>(row, "conversation_id")?.map(ConversationId),
        customer_id: col::<Option<i64>>(row, "customer_id")?.map(CustomerId),
        actor: Actor {
            kind: parse::<ActorKind>(row, "actor_kind")?,
            id: col(row, "actor_id")?,
        },
        change: serde_json::from_str(&data)
            .map_err(|e| StoreError::Corrupt(format!("event data: {e}")))?,
        at: time(row, "at")?,
    })
}
