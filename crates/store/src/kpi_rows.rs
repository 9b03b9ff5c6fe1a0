//! A conversation's KPI rows as stored: its facts, its answered turns and its SLA targets.
//!
//! A refresh reads them once, computes what they should be, and writes only the parts that
//! moved; what the conversation counts in reports' days ([`crate::kpi_days::Counted`]) is
//! worked out from both in memory. Most messages move one part or none, so a message costs a
//! few statements rather than a rewrite of everything (and a second read to compare).

use seva_domain::sla::{Outcome, SlaPolicyId};
use sqlx::AssertSqlSafe;

use crate::rows::{col, parse};
use crate::{Conn, Result, from_micros, to_micros};

/// Rows per multi-row `INSERT`: well under either backend's limit of bound values.
pub(crate) const BATCH: usize = 500;

/// Everything of one conversation's KPI rows, as stored (or as a refresh would store them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) facts: FactsRow,
    /// By time; one per instant (the table's key).
    pub(crate) turns: Vec<TurnRow>,
    /// By kind and start; one per pair (the table's key).
    pub(crate) targets: Vec<TargetRow>,
}

/// The `conversation_facts` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FactsRow {
    pub(crate) customer_id: i64,
    pub(crate) brand_id: Option<i64>,
    pub(crate) team_id: Option<i64>,
    pub(crate) assignee_id: Option<i64>,
    pub(crate) channel: String,
    pub(crate) status: String,
    pub(crate) created_at: i64,
    pub(crate) customer_started: i64,
    pub(crate) first_customer_at: Option<i64>,
    pub(crate) first_reply_at: Option<i64>,
    pub(crate) first_response_cal: Option<i64>,
    pub(crate) first_response_bus: Option<i64>,
    pub(crate) first_resolved_at: Option<i64>,
    pub(crate) first_resolution_cal: Option<i64>,
    pub(crate) first_resolution_bus: Option<i64>,
    pub(crate) final_resolved_at: Option<i64>,
    pub(crate) full_resolution_cal: Option<i64>,
    pub(crate) full_resolution_bus: Option<i64>,
    pub(crate) reopened: i64,
    pub(crate) public_replies: i64,
    pub(crate) one_touch: Option<i64>,
    /// `None` only in rows written before facts kept the priority.
    pub(crate) priority: Option<String>,
}

/// A `turn_responses` row: when the reply came and how long the turn waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TurnRow {
    pub(crate) answered_at: i64,
    pub(crate) seconds_cal: i64,
    pub(crate) seconds_bus: i64,
}

/// A `sla_outcomes` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TargetRow {
    pub(crate) target: seva_domain::sla::Target,
    pub(crate) started_at: i64,
    pub(crate) done_at: Option<i64>,
    pub(crate) settled_at: Option<i64>,
    pub(crate) met: bool,
    pub(crate) policy_id: i64,
}

impl TargetRow {
    pub(crate) fn new(o: &Outcome, policy: SlaPolicyId) -> Self {
        TargetRow {
            target: o.target,
            started_at: to_micros(o.started),
            done_at: o.done.map(to_micros),
            settled_at: o.settled().map(to_micros),
            met: o.met,
            policy_id: policy.0,
        }
    }

    /// The outcome as far as the row keeps it: a miss's breach is its settling instant.
    fn outcome(&self) -> Result<(Outcome, SlaPolicyId)> {
        let settled = self.settled_at.map(from_micros).transpose()?;
        Ok((
            Outcome {
                target: self.target,
                started: from_micros(self.started_at)?,
                done: self.done_at.map(from_micros).transpose()?,
                due: if self.met { None } else { settled },
                met: self.met,
            },
            SlaPolicyId(self.policy_id),
        ))
    }
}

impl Stored {
    /// Sorts and de-duplicates turns and targets by their keys, as the tables keep them (the
    /// first of two at one key stays, as `ON CONFLICT DO NOTHING` keeps it).
    pub(crate) fn new(
        facts: FactsRow,
        mut turns: Vec<TurnRow>,
        mut targets: Vec<TargetRow>,
    ) -> Self {
        turns.sort_by_key(|t| t.answered_at);
        turns.dedup_by_key(|t| t.answered_at);
        targets.sort_by_key(|t| (t.target.as_str(), t.started_at));
        targets.dedup_by_key(|t| (t.target.as_str(), t.started_at));
        Stored {
            facts,
            turns,
            targets,
        }
    }

    /// Its targets already done (replied to, resolved), with the policy that judged each:
    /// they keep their outcome (`seva_domain::sla::settle`).
    pub(crate) fn done_targets(&self) -> Result<Vec<(Outcome, SlaPolicyId)>> {
        self.targets
            .iter()
            .filter(|t| t.done_at.is_some())
            .map(TargetRow::outcome)
            .collect()
    }
}

/// The conversation's rows (`None`: it has no facts yet).
pub(crate) async fn load(conn: &mut Conn, conversation: i64) -> Result<Option<Stored>> {
    let Some(row) = sqlx::query(
        "SELECT customer_id, brand_id, team_id, assignee_id, channel, status, created_at,
                customer_started, first_customer_at, first_reply_at, first_response_cal,
                first_response_bus, first_resolved_at, first_resolution_cal,
                first_resolution_bus, final_resolved_at, full_resolution_cal,
                full_resolution_bus, reopened, public_replies, one_touch, priority
         FROM conversation_facts WHERE conversation_id = $1",
    )
    .bind(conversation)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let facts = FactsRow {
        customer_id: col(&row, "customer_id")?,
        brand_id: col(&row, "brand_id")?,
        team_id: col(&row, "team_id")?,
        assignee_id: col(&row, "assignee_id")?,
        channel: col(&row, "channel")?,
        status: col(&row, "status")?,
        created_at: col(&row, "created_at")?,
        customer_started: col(&row, "customer_started")?,
        first_customer_at: col(&row, "first_customer_at")?,
        first_reply_at: col(&row, "first_reply_at")?,
        first_response_cal: col(&row, "first_response_cal")?,
        first_response_bus: col(&row, "first_response_bus")?,
        first_resolved_at: col(&row, "first_resolved_at")?,
        first_resolution_cal: col(&row, "first_resolution_cal")?,
        first_resolution_bus: col(&row, "first_resolution_bus")?,
        final_resolved_at: col(&row, "final_resolved_at")?,
        full_resolution_cal: col(&row, "full_resolution_cal")?,
        full_resolution_bus: col(&row, "full_resolution_bus")?,
        reopened: col(&row, "reopened")?,
        public_replies: col(&row, "public_replies")?,
        one_touch: col(&row, "one_touch")?,
        priority: col(&row, "priority")?,
    };
    let turns = sqlx::query(
        "SELECT answered_at, seconds_cal, seconds_bus FROM turn_responses
         WHERE conversation_id = $1",
    )
    .bind(conversation)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        Ok(TurnRow {
            answered_at: col(row, "answered_at")?,
            seconds_cal: col(row, "seconds_cal")?,
            seconds_bus: col(row, "seconds_bus")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    let targets = sqlx::query(
        "SELECT target, started_at, done_at, settled_at, met, policy_id FROM sla_outcomes
         WHERE conversation_id = $1",
    )
    .bind(conversation)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        Ok(TargetRow {
            target: parse(row, "target")?,
            started_at: col(row, "started_at")?,
            done_at: col(row, "done_at")?,
            settled_at: col(row, "settled_at")?,
            met: col::<i64>(row, "met")? != 0,
            policy_id: col(row, "policy_id")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    Ok(Some(Stored::new(facts, turns, targets)))
}

/// Writes `after` over `before` (`None`: the conversation has no rows yet), only the parts
/// that differ: a message rarely moves more than one part.
pub(crate) async fn write(
    conn: &mut Conn,
    conversation: i64,
    before: Option<&Stored>,
    after: &Stored,
) -> Result<()> {
    if before.map(|b| &b.facts) != Some(&after.facts) {
        upsert_facts(conn, &[(conversation, &after.facts)]).await?;
    }
    let old_turns = before.map_or(&[][..], |b| &b.turns[..]);
    if old_turns != after.turns {
        // Only when there is something to delete: on a freshly migrated PostgreSQL the
        // planner sees an empty table and scans it for each delete.
        if !old_turns.is_empty() {
            delete(conn, "turn_responses", conversation).await?;
        }
        let turns: Vec<_> = after.turns.iter().map(|t| (conversation, t)).collect();
        insert_turns(conn, &turns).await?;
    }
    let old_targets = before.map_or(&[][..], |b| &b.targets[..]);
    if old_targets != after.targets {
        if !old_targets.is_empty() {
            delete(conn, "sla_outcomes", conversation).await?;
        }
        let targets: Vec<_> = after.targets.iter().map(|t| (conversation, t)).collect();
        insert_targets(conn, &targets).await?;
    }
    Ok(())
}

/// Deletes the conversation's rows of `table` (one of this module's, never input).
async fn delete(conn: &mut Conn, table: &'static str, conversation: i64) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE conversation_id = $1"
    )))
    .bind(conversation)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes the rows of conversations that have none yet (the start-up backfill), a few
/// multi-row statements for the lot.
pub(crate) async fn insert(conn: &mut Conn, all: &[(i64, Stored)]) -> Result<()> {
    let facts: Vec<_> = all.iter().map(|(id, s)| (*id, &s.facts)).collect();
    upsert_facts(conn, &facts).await?;
    let turns: Vec<_> = all
        .iter()
        .flat_map(|(id, s)| s.turns.iter().map(move |t| (*id, t)))
        .collect();
    insert_turns(conn, &turns).await?;
    let targets: Vec<_> = all
        .iter()
        .flat_map(|(id, s)| s.targets.iter().map(move |t| (*id, t)))
        .collect();
    insert_targets(conn, &targets).await
}

async fn insert_turns(conn: &mut Conn, turns: &[(i64, &TurnRow)]) -> Result<()> {
    for chunk in turns.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO turn_responses (conversation_id, answered_at, seconds_cal, seconds_bus)
             VALUES {} ON CONFLICT DO NOTHING",
            values(chunk.len(), 4)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (id, t) in chunk {
            query = query
                .bind(*id)
                .bind(t.answered_at)
                .bind(t.seconds_cal)
                .bind(t.seconds_bus);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_targets(conn: &mut Conn, targets: &[(i64, &TargetRow)]) -> Result<()> {
    for chunk in targets.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO sla_outcomes (conversation_id, target, started_at, done_at, settled_at,
                 met, policy_id)
             VALUES {} ON CONFLICT DO NOTHING",
            values(chunk.len(), 7)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (id, t) in chunk {
            query = query
                .bind(*id)
                .bind(t.target.as_str())
                .bind(t.started_at)
                .bind(t.done_at)
                .bind(t.settled_at)
                .bind(i64::from(t.met))
                .bind(t.policy_id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `($1, $2), ($3, $4)` for `rows` rows of `width` values.
fn values(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", crate::rows::placeholders(r * width + 1, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An upsert: two transactions refreshing one conversation (or a start-up backfill meeting
/// live traffic) must not collide on the key.
async fn upsert_facts(conn: &mut Conn, facts: &[(i64, &FactsRow)]) -> Result<()> {
    // 23 values a row: 500 rows stay under either backend's limit.
    for chunk in facts.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO conversation_facts (conversation_id, customer_id, brand_id, team_id,
                 assignee_id, channel, status, created_at, customer_started, first_customer_at,
                 first_reply_at, first_response_cal, first_response_bus, first_resolved_at,
                 first_resolution_cal, first_resolution_bus, final_resolved_at,
                 full_resolution_cal, full_resolution_bus, reopened, public_replies, one_touch,
                 priority)
             VALUES {}
             ON CONFLICT (conversation_id) DO UPDATE SET customer_id = EXCLUDED.customer_id,
                 brand_id = EXCLUDED.brand_id, team_id = EXCLUDED.team_id,
                 assignee_id = EXCLUDED.assignee_id, channel = EXCLUDED.channel,
                 status = EXCLUDED.status, created_at = EXCLUDED.created_at,
                 customer_started = EXCLUDED.customer_started,
                 first_customer_at = EXCLUDED.first_customer_at,
                 first_reply_at = EXCLUDED.first_reply_at,
                 first_response_cal = EXCLUDED.first_response_cal,
                 first_response_bus = EXCLUDED.first_response_bus,
                 first_resolved_at = EXCLUDED.first_resolved_at,
                 first_resolution_cal = EXCLUDED.first_resolution_cal,
                 first_resolution_bus = EXCLUDED.first_resolution_bus,
                 final_resolved_at = EXCLUDED.final_resolved_at,
                 full_resolution_cal = EXCLUDED.full_resolution_cal,
                 full_resolution_bus = EXCLUDED.full_resolution_bus,
                 reopened = EXCLUDED.reopened, public_replies = EXCLUDED.public_replies,
                 one_touch = EXCLUDED.one_touch, priority = EXCLUDED.priority",
            values(chunk.len(), 23)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (id, f) in chunk {
            query = query
                .bind(*id)
                .bind(f.customer_id)
                .bind(f.brand_id)
                .bind(f.team_id)
                .bind(f.assignee_id)
                .bind(f.channel.clone())
                .bind(f.status.clone())
                .bind(f.created_at)
                .bind(f.customer_started)
                .bind(f.first_customer_at)
                .bind(f.first_reply_at)
                .bind(f.first_response_cal)
                .bind(f.first_response_bus)
                .bind(f.first_resolved_at)
                .bind(f.first_resolution_cal)
                .bind(f.first_resolution_bus)
                .bind(f.final_resolved_at)
                .bind(f.full_resolution_cal)
                .bind(f.full_resolution_bus)
                .bind(f.reopened)
                .bind(f.public_replies)
                .bind(f.one_touch)
                .bind(f.priority.clone());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
