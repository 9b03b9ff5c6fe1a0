//! SLA policies (which targets apply to which conversations) and the targets each conversation
//! has, kept with its KPI facts (`kpi::refresh` writes them).

use seva_domain::sla::{Conditions, SlaPolicy, SlaPolicyId, Targets};
use seva_domain::{BrandId, Channel, ConversationId, Priority, TeamId, Timestamp};
use sqlx::any::AnyRow;

use crate::rows::{col, opt_time, time};
use crate::{Conn, Result, StoreError, to_micros};

/// A policy as written: everything but its id.
#[derive(Debug, Clone)]
pub struct NewPolicy<'a> {
    pub name: &'a str,
    pub position: i64,
    pub conditions: &'a Conditions,
    pub targets: &'a Targets,
    pub business_hours: bool,
}

/// Binds a policy's fields as `$1`..`$10`, in the order of the columns below.
fn bind_policy<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    p: &NewPolicy<'q>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(p.name)
        .bind(p.position)
        .bind(p.conditions.brand.map(|b| b.0))
        .bind(p.conditions.team.map(|t| t.0))
        .bind(p.conditions.channel.map(Channel::as_str))
        .bind(p.conditions.priority.map(Priority::as_str))
        .bind(p.targets.first_reply)
        .bind(p.targets.next_reply)
        .bind(p.targets.resolution)
        .bind(i64::from(p.business_hours))
}

pub async fn insert(conn: &mut Conn, p: &NewPolicy<'_>, now: Timestamp) -> Result<SlaPolicyId> {
    let row = bind_policy(
        sqlx::query(
            "INSERT INTO sla_policies (name, position, brand_id, team_id, channel, priority,
                 first_reply_secs, next_reply_secs, resolution_secs, business_hours, created_at,
                 updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
        ),
        p,
    )
    .bind(to_micros(now))
    .fetch_one(&mut *conn)
    .await?;
    Ok(SlaPolicyId(col(&row, "id")?))
}

pub async fn update(
    conn: &mut Conn,
    id: SlaPolicyId,
    p: &NewPolicy<'_>,
    now: Timestamp,
) -> Result<()> {
    let done = bind_policy(
        sqlx::query(
            "UPDATE sla_policies SET name = $1, position = $2, brand_id = $3, team_id = $4,
                    channel = $5, priority = $6, first_reply_secs = $7, next_reply_secs = $8,
                    resolution_secs = $9, business_hours = $10, updated_at = $11
             WHERE id = $12",
        ),
        p,
    )
    .bind(to_micros(now))
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Deletes a policy; targets it set keep their outcomes.
pub async fn delete(conn: &mut Conn, id: SlaPolicyId) -> Result<()> {
    let done = sqlx::query("DELETE FROM sla_policies WHERE id = $1")
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn get(conn: &mut Conn, id: SlaPolicyId) -> Result<SlaPolicy> {
    let row = sqlx::query("SELECT * FROM sla_policies WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

/// Every policy, in the order they are tried.
pub async fn all(conn: &mut Conn) -> Result<Vec<SlaPolicy>> {
    let rows = sqlx::query("SELECT * FROM sla_policies ORDER BY position, id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

fn from_row(row: &AnyRow) -> Result<SlaPolicy> {
    let parsed = |c: &str| -> Result<Option<String>> { col::<Option<String>>(row, c) };
    let corrupt = |e: seva_domain::ValueError| StoreError::Corrupt(format!("sla_policies: {e}"));
    Ok(SlaPolicy {
        id: SlaPolicyId(col(row, "id")?),
        name: col(row, "name")?,
        position: col(row, "position")?,
        conditions: Conditions {
            brand: col::<Option<i64>>(row, "brand_id")?.map(BrandId),
            team: col::<Option<i64>>(row, "team_id")?.map(TeamId),
            channel: parsed("channel")?
                .map(|c| c.parse())
                .transpose()
                .map_err(corrupt)?,
            priority: parsed("priority")?
                .map(|c| c.parse())
                .transpose()
                .map_err(corrupt)?,
        },
        targets: Targets {
            first_reply: col(row, "first_reply_secs")?,
            next_reply: col(row, "next_reply_secs")?,
            resolution: col(row, "resolution_secs")?,
        },
        business_hours: col::<i64>(row, "business_hours")? != 0,
    })
}

/// Whether any policy exists or any target still runs: otherwise a change of policies or
/// business hours has nothing to judge again.
pub async fn in_use(conn: &mut Conn) -> Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM sla_policies)
            OR EXISTS (SELECT 1 FROM sla_outcomes WHERE done_at IS NULL)",
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}

/// Conversations whose targets may still be running (not resolved), to judge again under
/// changed policies or business hours.
pub async fn unresolved(conn: &mut Conn) -> Result<Vec<ConversationId>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT conversation_id FROM conversation_facts WHERE final_resolved_at IS NULL
         ORDER BY conversation_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids.into_iter().map(ConversationId).collect())
}

/// A conversation's targets, as the conversation page shows them.
pub async fn of_conversation(conn: &mut Conn, conversation: ConversationId) -> Result<Vec<Kept>> {
    let rows = sqlx::query(
        "SELECT o.target, o.started_at, o.done_at, o.settled_at, o.met, p.name
         FROM sla_outcomes o LEFT JOIN sla_policies p ON p.id = o.policy_id
         WHERE o.conversation_id = $1 ORDER BY o.started_at, o.target",
    )
    .bind(conversation.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let target: String = col(row, "target")?;
            Ok(Kept {
                target: target
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("sla_outcomes: {e}")))?,
                started: time(row, "started_at")?,
                done: opt_time(row, "done_at")?,
                settled: opt_time(row, "settled_at")?,
                met: col::<i64>(row, "met")? != 0,
                policy: col(row, "name")?,
            })
        })
        .collect()
}

/// A target as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub target: seva_domain::sla::Target,
    pub started: Timestamp,
    pub done: Option<Timestamp>,
    /// When it was met, or is (was) breached; `None` while its clock stands short of the limit.
    pub settled: Option<Timestamp>,
    pub met: bool,
    /// The policy's name (`None` when it was deleted since).
    pub policy: Option<String>,
}

impl Kept {
    /// `met`, `missed` (breached by `now`) or `running`.
    pub fn state(&self, now: Timestamp) -> &'static str {
        match (self.met, self.settled) {
            (true, _) => "met",
            (false, Some(due)) if due <= now => "missed",
            _ => "running",
        }
    }
}
