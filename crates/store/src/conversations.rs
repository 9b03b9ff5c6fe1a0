//! Conversations, their tags and their messages.

use std::collections::HashMap;
use std::fmt::Write as _;

use seva_domain::{
    AuthorKind, BrandId, Channel, Conversation, ConversationId, CustomerId, Message, MessageId,
    MessageKind, Priority, Status, TeamId, Timestamp, UserId,
};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::{Arg, bind_all, col, parse, placeholders, time};
use crate::{Conn, Result, StoreError, dialect, to_micros};

pub struct NewConversation<'a> {
    pub customer_id: CustomerId,
    pub brand_id: Option<BrandId>,
    pub channel: Channel,
    pub status: Status,
    pub priority: Priority,
    pub subject: Option<&'a str>,
    pub assignee_id: Option<UserId>,
    pub team_id: Option<TeamId>,
    pub at: Timestamp,
}

pub async fn insert(conn: &mut Conn, new: &NewConversation<'_>) -> Result<ConversationId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO conversations (customer_id, brand_id, channel, status, priority, subject,
                                    assignee_id, team_id, created_at, updated_at, last_activity_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9) RETURNING id",
    )
    .bind(new.customer_id.0)
    .bind(new.brand_id.map(|b| b.0))
    .bind(new.channel.as_str())
    .bind(new.status.as_str())
    .bind(new.priority.as_str())
    .bind(new.subject)
    .bind(new.assignee_id.map(|u| u.0))
    .bind(new.team_id.map(|t| t.0))
    .bind(to_micros(new.at))
    .fetch_one(&mut *conn)
    .await?;
    let id = ConversationId(id);
    if new.subject.is_some() {
        crate::search::index_subject(conn, id, new.subject).await?;
    }
    Ok(id)
}

/// Reads a conversation. Inside a write transaction on PostgreSQL the row is locked until
/// commit, so two concurrent changes to one conversation apply one after the other (SQLite's
/// `BEGIN IMMEDIATE` already serialises writers).
pub async fn get(conn: &mut Conn, id: ConversationId) -> Result<Conversation> {
    let sql = if dialect::is_postgres(conn) {
        "SELECT * FROM conversations WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT * FROM conversations WHERE id = $1"
    };
    let row = sqlx::query(sql)
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    let mut conversation = from_row(&row)?;
    conversation.tags = tags_of(conn, &[id]).await?.remove(&id).unwrap_or_default();
    Ok(conversation)
}

/// Reads a conversation without locking it.
pub async fn find(conn: &mut Conn, id: ConversationId) -> Result<Conversation> {
    let row = sqlx::query("SELECT * FROM conversations WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    let mut conversation = from_row(&row)?;
    conversation.tags = tags_of(conn, &[id]).await?.remove(&id).unwrap_or_default();
    Ok(conversation)
}

/// Several conversations by id, without locking, in the order of `ids`; unknown ids are skipped.
pub async fn find_many(conn: &mut Conn, ids: &[ConversationId]) -> Result<Vec<Conversation>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT * FROM conversations WHERE id IN ({})",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id.0);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let mut found = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    let mut tags = tags_of(conn, ids).await?;
    for c in &mut found {
        c.tags = tags.remove(&c.id).unwrap_or_default();
    }
    Ok(ids
        .iter()
        .filter_map(|id| {
            found
                .iter()
                .position(|c| c.id == *id)
                .map(|i| found[i].clone())
        })
        .collect())
}

/// Writes every mutable field of `conversation` (tags apart: see [`set_tags`]).
pub async fn update(conn: &mut Conn, c: &Conversation) -> Result<()> {
    let done = sqlx::query(
        "UPDATE conversations SET status = $2, priority = $3, subject = $4, assignee_id = $5,
                team_id = $6, brand_id = $7, updated_at = $8, last_activity_at = $9
         WHERE id = $1",
    )
    .bind(c.id.0)
    .bind(c.status.as_str())
    .bind(c.priority.as_str())
    .bind(c.subject.as_deref())
    .bind(c.assignee_id.map(|u| u.0))
    .bind(c.team_id.map(|t| t.0))
    .bind(c.brand_id.map(|b| b.0))
    .bind(to_micros(c.updated_at))
    .bind(to_micros(c.last_activity_at))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    crate::kpi::sync_columns(conn, c).await
}

/// Replaces a conversation's tags.
pub async fn set_tags(conn: &mut Conn, id: ConversationId, tags: &[String]) -> Result<()> {
    let removed = sqlx::query("DELETE FROM conversation_tags WHERE conversation_id = $1")
        .bind(id.0)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if removed > 0 && tags.is_empty() {
        // Reports filter and group by tag.
        crate::kpi_days::touch(conn, id).await?;
    }
    add_tags(conn, id, tags).await
}

/// Adds tags (a new conversation has none to replace).
pub async fn add_tags(conn: &mut Conn, id: ConversationId, tags: &[String]) -> Result<()> {
    for tag in tags {
        sqlx::query(
            "INSERT INTO conversation_tags (conversation_id, tag) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(id.0)
        .bind(tag)
        .execute(&mut *conn)
        .await?;
    }
    if !tags.is_empty() {
        // Reports filter and group by tag (a new conversation counts nowhere yet: no cost).
        crate::kpi_days::touch(conn, id).await?;
    }
    Ok(())
}

/// Who to show in a list. Every field narrows; `None` means any.
#[derive(Debug, Default, Clone)]
pub struct ConversationFilter {
    pub statuses: Vec<Status>,
    /// `Some(None)`: unassigned only.
    pub assignee: Option<Option<UserId>>,
    pub team: Option<TeamId>,
    /// Any of these teams (an agent's "my teams" view); empty: no condition.
    pub teams: Vec<TeamId>,
    pub priority: Option<Priority>,
    pub brand: Option<BrandId>,
    pub channel: Option<Channel>,
    pub customer: Option<CustomerId>,
    pub tag: Option<String>,
    /// Only conversations of customers in this segment (its rules, read at this time).
    pub segment: Option<(seva_domain::segment::Rules, seva_domain::Timestamp)>,
}

/// A position in the newest-activity-first order: the last item of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationCursor {
    pub last_activity_at: i64,
    pub id: i64,
}

/// A page of conversations, newest activity first, after `cursor`.
pub async fn list(
    conn: &mut Conn,
    filter: &ConversationFilter,
    cursor: Option<ConversationCursor>,
    limit: u32,
) -> Result<Vec<Conversation>> {
    let (sql, args) = list_query(filter, cursor, limit, false, "c.*");
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_all(&mut *conn)
        .await?;
    let mut conversations = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    let ids: Vec<ConversationId> = conversations.iter().map(|c| c.id).collect();
    let mut tags = tags_of(conn, &ids).await?;
    for c in &mut conversations {
        c.tags = tags.remove(&c.id).unwrap_or_default();
    }
    Ok(conversations)
}

/// The SQL and arguments of a page of `filter`, after `cursor` in newest-first order, or
/// before it (`newer`) in oldest-first order, selecting `columns` of `c`.
///
/// Several statuses are read as one ordered index range per status, each cut at `limit`, then
/// merged: `status IN (...) ORDER BY ...` would make both databases sort every matching row,
/// which at a million conversations is most of the table.
fn list_query(
    filter: &ConversationFilter,
    cursor: Option<ConversationCursor>,
    limit: u32,
    newer: bool,
    columns: &str,
) -> (String, Vec<Arg>) {
    let mut conds = String::new();
    let mut args: Vec<Arg> = Vec::new();
    if !filter.teams.is_empty() {
        conds.push_str(" AND c.team_id IN (");
        for (i, team) in filter.teams.iter().enumerate() {
            args.push(Arg::Int(team.0));
            let _ = write!(conds, "{}${}", if i == 0 { "" } else { ", " }, args.len());
        }
        conds.push(')');
    }
    let mut push = |conds: &mut String, clause: &str, arg: Arg| {
        args.push(arg);
        conds.push_str(&clause.replace("$?", &format!("${}", args.len())));
    };
    match filter.assignee {
        Some(Some(user)) => push(&mut conds, " AND c.assignee_id = $?", Arg::Int(user.0)),
        Some(None) => conds.push_str(" AND c.assignee_id IS NULL"),
        None => {}
    }
    if let Some(team) = filter.team {
        push(&mut conds, " AND c.team_id = $?", Arg::Int(team.0));
    }
    if let Some(priority) = filter.priority {
        push(
            &mut conds,
            " AND c.priority = $?",
            Arg::Text(priority.as_str().to_owned()),
        );
    }
    if let Some(brand) = filter.brand {
        push(&mut conds, " AND c.brand_id = $?", Arg::Int(brand.0));
    }
    if let Some(channel) = filter.channel {
        push(
            &mut conds,
            " AND c.channel = $?",
            Arg::Text(channel.as_str().to_owned()),
        );
    }
    if let Some(customer) = filter.customer {
        push(&mut conds, " AND c.customer_id = $?", Arg::Int(customer.0));
    }
    if let Some(tag) = &filter.tag {
        push(
            &mut conds,
            " AND EXISTS (SELECT 1 FROM conversation_tags t WHERE t.conversation_id = c.id AND t.tag = $?)",
            Arg::Text(tag.clone()),
        );
    }
    conds.push_str(&segment_clause(filter, &mut args));
    let (cmp, order) = if newer { (">", "ASC") } else { ("<", "DESC") };
    if let Some(cursor) = cursor {
        // The range on last activity is spelled out, with one placeholder used twice: from
        // `(a < $1 OR (a = $2 AND ...))` SQLite cannot tell the index range and scans every
        // row of the status from the top (70 ms at a million conversations; now 0.4 ms).
        args.push(Arg::Int(cursor.last_activity_at));
        let at = args.len();
        args.push(Arg::Int(cursor.id));
        let id = args.len();
        let _ = write!(
            conds,
            " AND c.last_activity_at {cmp}= ${at} \
             AND (c.last_activity_at {cmp} ${at} OR c.id {cmp} ${id})"
        );
    }
    args.push(Arg::Int(i64::from(limit)));
    let limit_at = args.len();
    let select = |status: Option<usize>| {
        let status = status
            .map(|n| format!(" AND c.status = ${n}"))
            .unwrap_or_default();
        format!(
            "SELECT {columns} FROM conversations c WHERE 1 = 1{status}{conds} \
             ORDER BY c.last_activity_at {order}, c.id {order} LIMIT ${limit_at}"
        )
    };
    let sql = match filter.statuses.as_slice() {
        [] => select(None),
        [status] => {
            args.push(Arg::Text(status.as_str().to_owned()));
            select(Some(args.len()))
        }
        statuses => {
            let mut parts = Vec::new();
            for (i, status) in statuses.iter().enumerate() {
                args.push(Arg::Text(status.as_str().to_owned()));
                parts.push(format!(
                    "SELECT * FROM ({}) AS s{i}",
                    select(Some(args.len()))
                ));
            }
            format!(
                "{} ORDER BY last_activity_at {order}, id {order} LIMIT ${limit_at}",
                parts.join(" UNION ALL ")
            )
        }
    };
    (sql, args)
}

/// "The customer is in the filter's segment", when it has one.
fn segment_clause(filter: &ConversationFilter, args: &mut Vec<Arg>) -> String {
    filter
        .segment
        .as_ref()
        .map_or_else(String::new, |(rules, now)| {
            let members = crate::segments::condition(rules, *now, "sc", args);
            format!(" AND c.customer_id IN (SELECT sc.id FROM customers sc WHERE {members})")
        })
}

/// The id of the conversation next to `cursor` in a view: the one above it (`newer`) or below
/// it in the newest-first order. Reads no tags.
pub async fn neighbour(
    conn: &mut Conn,
    filter: &ConversationFilter,
    cursor: ConversationCursor,
    newer: bool,
) -> Result<Option<ConversationId>> {
    let (sql, args) = list_query(filter, Some(cursor), 1, newer, "c.id, c.last_activity_at");
    let row = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|row| Ok(ConversationId(col(&row, "id")?)))
        .transpose()
}

async fn tags_of(
    conn: &mut Conn,
    ids: &[ConversationId],
) -> Result<HashMap<ConversationId, Vec<String>>> {
    let mut out: HashMap<ConversationId, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT conversation_id, tag FROM conversation_tags WHERE conversation_id IN ({})",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id.0);
    }
    for row in query.fetch_all(&mut *conn).await? {
        out.entry(ConversationId(col(&row, "conversation_id")?))
            .or_default()
            .push(col(&row, "tag")?);
    }
    // Sorted here, in byte order, because ORDER BY follows PostgreSQL's collation while SQLite
    // compares bytes: both backends must answer alike.
    for tags in out.values_mut() {
        tags.sort();
    }
    Ok(out)
}

fn from_row(row: &AnyRow) -> Result<Conversation> {
    Ok(Conversation {
        id: ConversationId(col(row, "id")?),
        customer_id: CustomerId(col(row, "customer_id")?),
        brand_id: col::<Option<i64>>(row, "brand_id")?.map(BrandId),
        channel: parse(row, "channel")?,
        status: parse(row, "status")?,
        priority: parse(row, "priority")?,
        subject: col(row, "subject")?,
        assignee_id: col::<Option<i64>>(row, "assignee_id")?.map(UserId),
        team_id: col::<Option<i64>>(row, "team_id")?.map(TeamId),
        tags: Vec::new(),
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        last_activity_at: time(row, "last_activity_at")?,
    })
}

// ---- messages -------------------------------------------------------------------------------

pub struct NewMessage<'a> {
    pub conversation_id: ConversationId,
    pub kind: MessageKind,
    pub author_kind: AuthorKind,
    pub author_user_id: Option<UserId>,
    pub text: &'a str,
    pub html: Option<&'a str>,
    pub external_id: Option<&'a str>,
    pub at: Timestamp,
}

pub async fn insert_message(conn: &mut Conn, new: &NewMessage<'_>) -> Result<MessageId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO messages (conversation_id, kind, direction, author_kind, author_user_id,
                               body_text, body_html, external_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(new.conversation_id.0)
    .bind(new.kind.as_str())
    .bind(new.kind.direction().as_str())
    .bind(new.author_kind.as_str())
    .bind(new.author_user_id.map(|u| u.0))
    .bind(new.text)
    .bind(new.html)
    .bind(new.external_id)
    .bind(to_micros(new.at))
    .fetch_one(&mut *conn)
    .await?;
    let id = MessageId(id);
    crate::search::index_message(conn, new.conversation_id, id, new.text).await?;
    Ok(id)
}

/// The message already stored under this external id, if any.
pub async fn find_message_by_external_id(
    conn: &mut Conn,
    external_id: &str,
) -> Result<Option<Message>> {
    let row = sqlx::query("SELECT * FROM messages WHERE external_id = $1")
        .bind(external_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(message_from_row).transpose()
}

pub async fn get_message(conn: &mut Conn, id: MessageId) -> Result<Message> {
    let row = sqlx::query("SELECT * FROM messages WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    message_from_row(&row)
}

/// The messages of a conversation in the order they were written.
pub async fn messages(conn: &mut Conn, id: ConversationId) -> Result<Vec<Message>> {
    let rows =
        sqlx::query("SELECT * FROM messages WHERE conversation_id = $1 ORDER BY created_at, id")
            .bind(id.0)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter().map(message_from_row).collect()
}

pub(crate) fn message_from_row(row: &AnyRow) -> Result<Message> {
    Ok(Message {
        id: MessageId(col(row, "id")?),
        conversation_id: ConversationId(col(row, "conversation_id")?),
        kind: parse(row, "kind")?,
        author_kind: parse(row, "author_kind")?,
        author_user_id: col::<Option<i64>>(row, "author_user_id")?.map(UserId),
        text: col(row, "body_text")?,
        html: col(row, "body_html")?,
        external_id: col(row, "external_id")?,
        created_at: time(row, "created_at")?,
    })
}
