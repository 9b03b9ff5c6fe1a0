//! KPI facts: one row per conversation (and one per answered customer turn), recomputed from
//! the conversation's messages and status changes whenever an event about it is recorded, in
//! the same transaction. Reports read these rows by indexed time ranges; the arithmetic is
//! `seva_domain::kpi`.

use seva_domain::kpi::{Clock, Facts, Step, facts};
use seva_domain::sla::{self, Activity, Outcome, SlaPolicy, SlaPolicyId, Subject};
use seva_domain::{
    BrandId, Change, Channel, ConversationId, MessageKind, Priority, Status, TeamId,
};

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use seva_domain::Timestamp;
use seva_domain::hours::BusinessHours;
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::kpi_days::Counted;
use crate::kpi_rows::{self, BATCH, FactsRow, Stored, TargetRow, TurnRow};
use crate::rows::{col, parse, placeholders, time};
use crate::{Conn, Result, StoreError, to_micros};

/// Keeps the conversation's facts in step with a change just recorded: a full recompute when
/// the change moves a KPI (a customer message or public reply, a resolution or reopening).
/// Changes to the conversation's own columns (status, team, brand, assignee) are followed by
/// [`sync_columns`], called when the conversation row is saved. Notes and other events cost
/// nothing.
pub async fn on_event(
    conn: &mut Conn,
    conversation: ConversationId,
    change: &Change,
) -> Result<()> {
    match change {
        Change::MessageAdded {
            kind: MessageKind::Customer | MessageKind::Reply,
            ..
        } => refresh(conn, conversation).await,
        // Resolutions and reopenings, and the SLA clock stopping or starting.
        Change::StatusChanged { from, to }
            if resolved(*from) != resolved(*to) || running(*from) != running(*to) =>
        {
            refresh(conn, conversation).await
        }
        _ => Ok(()),
    }
}

/// After the conversation row is saved: its status, team, brand and assignee into its facts;
/// a new team or brand may mean a new schedule, and a new priority another SLA policy, so
/// everything is recomputed then.
pub async fn sync_columns(conn: &mut Conn, c: &seva_domain::Conversation) -> Result<()> {
    let row = sqlx::query(
        "SELECT team_id, brand_id, assignee_id, priority FROM conversation_facts
         WHERE conversation_id = $1",
    )
    .bind(c.id.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        // Not yet computed: the first message's event will.
        return Ok(());
    };
    let team: Option<i64> = col(&row, "team_id")?;
    let brand: Option<i64> = col(&row, "brand_id")?;
    let priority: Option<String> = col(&row, "priority")?;
    // The priority may bring another SLA policy.
    if team != c.team_id.map(|t| t.0)
        || brand != c.brand_id.map(|b| b.0)
        || priority.as_deref() != Some(c.priority.as_str())
    {
        return refresh(conn, c.id).await;
    }
    let assignee: Option<i64> = col(&row, "assignee_id")?;
    // The status is not counted by cached days; the assignee is (breakdowns by agent).
    let reassigned = assignee != c.assignee_id.map(|u| u.0);
    let before = if reassigned {
        crate::kpi_days::counted(conn, c.id).await?
    } else {
        None
    };
    sqlx::query(
        "UPDATE conversation_facts SET status = $2, assignee_id = $3 WHERE conversation_id = $1",
    )
    .bind(c.id.0)
    .bind(c.status.as_str())
    .bind(c.assignee_id.map(|u| u.0))
    .execute(&mut *conn)
    .await?;
    if reassigned {
        let after = crate::kpi_days::counted(conn, c.id).await?;
        crate::kpi_days::changed(conn, c.id, before, after).await?;
    }
    Ok(())
}

fn resolved(status: Status) -> bool {
    matches!(status, Status::Resolved | Status::Closed)
}

/// Whether the SLA clock runs: not while pending, on hold, resolved or closed.
fn running(status: Status) -> bool {
    status == Status::Open
}

/// What a conversation's KPI rows are computed from: its own columns, its messages and
/// status changes, and the business hours of its team or brand.
struct Inputs {
    conversation: AnyRow,
    /// Customer messages and public agent replies, in time order.
    messages: Vec<Step>,
    /// Status changes as recorded, in the order recorded.
    changes: Vec<(Timestamp, Status, Status)>,
    hours: Option<Arc<BusinessHours>>,
}

/// Reads the inputs of `ids` (at most [`BATCH`] of them) in three queries, in `ids`' order; an
/// id without a conversation is an error.
async fn inputs(conn: &mut Conn, ids: &[i64]) -> Result<Vec<Inputs>> {
    let list = placeholders(1, ids.len());
    let sql = format!(
        "SELECT c.id, c.customer_id, c.brand_id, c.team_id, c.assignee_id, c.channel, c.status,
                c.priority, c.created_at, h.id AS hours_id, h.name AS hours_name,
                h.time_zone AS hours_time_zone, h.week AS hours_week,
                h.holidays AS hours_holidays
         FROM conversations c
           LEFT JOIN teams t ON t.id = c.team_id
           LEFT JOIN brands b ON b.id = c.brand_id
           LEFT JOIN business_hours h
             ON h.id = COALESCE(t.business_hours_id, b.business_hours_id)
         WHERE c.id IN ({list})"
    );
    let mut by_id: HashMap<i64, Inputs> = HashMap::with_capacity(ids.len());
    let mut schedules: HashMap<i64, Arc<BusinessHours>> = HashMap::new();
    for row in bind_ids(sqlx::query(AssertSqlSafe(sql)), ids)
        .fetch_all(&mut *conn)
        .await?
    {
        let hours = match col::<Option<i64>>(&row, "hours_id")? {
            Some(id) => Some(match schedules.entry(id) {
                Entry::Occupied(e) => Arc::clone(e.get()),
                Entry::Vacant(e) => {
                    Arc::clone(e.insert(Arc::new(crate::hours::from_row_as(&row, "hours_")?)))
                }
            }),
            None => None,
        };
        by_id.insert(
            col(&row, "id")?,
            Inputs {
                conversation: row,
                messages: Vec::new(),
                changes: Vec::new(),
                hours,
            },
        );
    }
    // Automatic mail (bounces, auto-replies, lists) is not the customer writing.
    let sql = format!(
        "SELECT m.conversation_id, m.kind, m.author_kind, m.created_at FROM messages m
         LEFT JOIN mail_sources s ON s.message_id = m.id
         WHERE m.conversation_id IN ({list}) AND s.automatic IS NULL
         ORDER BY m.conversation_id, m.created_at, m.id"
    );
    for row in bind_ids(sqlx::query(AssertSqlSafe(sql)), ids)
        .fetch_all(&mut *conn)
        .await?
    {
        let Some(input) = by_id.get_mut(&col(&row, "conversation_id")?) else {
            continue;
        };
        let kind: String = col(&row, "kind")?;
        let author: String = col(&row, "author_kind")?;
        let at = time(&row, "created_at")?;
        match (kind.as_str(), author.as_str()) {
            ("customer", _) => input.messages.push(Step::CustomerMessage(at)),
            ("reply", "agent") => input.messages.push(Step::AgentReply(at)),
            _ => {}
        }
    }
    let sql = format!(
        "SELECT conversation_id, data, at FROM events
         WHERE conversation_id IN ({list}) AND kind = 'status_changed'
         ORDER BY conversation_id, id"
    );
    for row in bind_ids(sqlx::query(AssertSqlSafe(sql)), ids)
        .fetch_all(&mut *conn)
        .await?
    {
        let Some(input) = by_id.get_mut(&col(&row, "conversation_id")?) else {
            continue;
        };
        let data: String = col(&row, "data")?;
        if let Ok(Change::StatusChanged { from, to }) = serde_json::from_str(&data) {
            input.changes.push((time(&row, "at")?, from, to));
        }
    }
    ids.iter()
        .map(|id| by_id.remove(id).ok_or(StoreError::NotFound))
        .collect()
}

fn bind_ids<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ids: &[i64],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for id in ids {
        query = query.bind(*id);
    }
    query
}

/// The conversation's steps: its messages and its resolutions and reopenings, in time order;
/// and when its SLA clock ran (`now`: its status now, which it had all along if it never
/// changed).
fn steps(input: &Inputs, now: Status) -> (Vec<Step>, Activity) {
    let mut steps = input.messages.clone();
    let mut changes = input.changes.clone();
    for (at, from, to) in &changes {
        match (resolved(*from), resolved(*to)) {
            (false, true) => steps.push(Step::Resolved(*at)),
            (true, false) => steps.push(Step::Reopened(*at)),
            _ => {}
        }
    }
    // Stable: at one instant, messages come before the status change they caused.
    steps.sort_by_key(|s| s.at());
    // In time order (an import may record an earlier change later); before the first change
    // it had the status that change left, and, without any, the status it has now.
    changes.sort_by_key(|(at, _, _)| *at);
    let activity = Activity {
        initially: changes
            .first()
            .map_or(running(now), |(_, from, _)| running(*from)),
        changes: changes
            .iter()
            .filter(|(_, from, to)| running(*from) != running(*to))
            .map(|(at, _, to)| (*at, running(*to)))
            .collect(),
    };
    (steps, activity)
}

/// Recomputes and stores the conversation's facts. Call inside the transaction that changed it.
pub async fn refresh(conn: &mut Conn, conversation: ConversationId) -> Result<()> {
    let policies = crate::sla::all(conn).await?;
    let before = kpi_rows::load(conn, conversation.0).await?;
    let kept = match &before {
        Some(b) => b.done_targets()?,
        None => Vec::new(),
    };
    let input = inputs(conn, &[conversation.0]).await?;
    let after = compute(&input[0], &policies, &kept)?;
    kpi_rows::write(conn, conversation.0, before.as_ref(), &after).await?;
    // The days bumped below are worked out from `after` in memory: every test checks that it
    // is exactly what was stored. (Without rows before, a start-up backfill on another
    // instance may have written them first; it bumps every day it loads.)
    #[cfg(debug_assertions)]
    if before.is_some() {
        let stored = kpi_rows::load(conn, conversation.0).await?;
        assert_eq!(stored.as_ref(), Some(&after), "stored KPI rows differ");
    }
    // What it counted before and after, to bump the reports' kept days the change moves.
    crate::kpi_days::changed(
        conn,
        conversation,
        before.as_ref().map(Counted::of),
        Some(Counted::of(&after)),
    )
    .await
}

/// What the conversation's KPI rows should be now (`kept`: its targets already done, which
/// keep their outcome).
fn compute(
    input: &Inputs,
    policies: &[SlaPolicy],
    kept: &[(Outcome, SlaPolicyId)],
) -> Result<Stored> {
    let row = &input.conversation;
    let status: Status = parse(row, "status")?;
    let priority: Priority = parse(row, "priority")?;
    let channel: Channel = parse(row, "channel")?;
    let (steps, activity) = steps(input, status);
    let f = facts(&steps);
    let business = input
        .hours
        .as_ref()
        .map_or(Clock::Calendar, |h| Clock::Business(&h.schedule));
    let brand_id: Option<i64> = col(row, "brand_id")?;
    let team_id: Option<i64> = col(row, "team_id")?;
    let subject = Subject {
        brand: brand_id.map(BrandId),
        team: team_id.map(TeamId),
        channel,
        priority,
    };
    let targets = targets(policies, &subject, &f, &activity, business, kept)
        .iter()
        .map(|(o, policy)| TargetRow::new(o, *policy))
        .collect();
    let both = |get: &dyn Fn(&Facts, Clock<'_>) -> Option<i64>| {
        (get(&f, Clock::Calendar), get(&f, business))
    };
    let (first_response_cal, first_response_bus) = both(&|f, c| f.first_response(c));
    let (first_resolution_cal, first_resolution_bus) = both(&|f, c| f.first_resolution_time(c));
    let (full_resolution_cal, full_resolution_bus) = both(&|f, c| f.full_resolution_time(c));
    let micros = |t: Option<seva_domain::Timestamp>| t.map(to_micros);
    let facts_row = FactsRow {
        customer_id: col(row, "customer_id")?,
        brand_id,
        team_id,
        assignee_id: col(row, "assignee_id")?,
        channel: channel.as_str().to_owned(),
        status: status.as_str().to_owned(),
        created_at: col(row, "created_at")?,
        customer_started: i64::from(f.customer_started),
        first_customer_at: micros(f.first_customer_message),
        first_reply_at: micros(f.first_reply),
        first_response_cal,
        first_response_bus,
        first_resolved_at: micros(f.first_resolution),
        first_resolution_cal,
        first_resolution_bus,
        final_resolved_at: micros(f.final_resolution),
        full_resolution_cal,
        full_resolution_bus,
        reopened: i64::try_from(f.reopened_at.len()).unwrap_or(i64::MAX),
        public_replies: i64::from(f.public_replies),
        one_touch: f.one_touch().map(i64::from),
        priority: Some(priority.as_str().to_owned()),
    };
    let calendar = f.turn_responses(Clock::Calendar);
    let on_hours = f.turn_responses(business);
    let turns = calendar
        .into_iter()
        .zip(on_hours)
        .map(|((at, cal), (_, bus))| TurnRow {
            answered_at: to_micros(at),
            seconds_cal: cal,
            seconds_bus: bus,
        })
        .collect();
    Ok(Stored::new(facts_row, turns, targets))
}

/// The SLA targets of a conversation: those already done as `kept`, the others under the first
/// policy covering it now (`business`: the business-hours clock of its team or brand, for
/// policies counting business hours only).
fn targets(
    policies: &[SlaPolicy],
    subject: &Subject,
    f: &Facts,
    activity: &Activity,
    business: Clock<'_>,
    kept: &[(Outcome, SlaPolicyId)],
) -> Vec<(Outcome, SlaPolicyId)> {
    let policy = sla::policy_for(policies, subject).map(|p| {
        let clock = if p.business_hours {
            business
        } else {
            Clock::Calendar
        };
        (p.id, &p.targets, clock)
    });
    sla::settle(f, activity, kept, policy)
}

/// Facts for conversations recorded before facts were kept (or loaded in bulk), at start. Every
/// conversation created since gets its facts in its own transaction, so when the newest one has
/// them there is nothing to do (two index lookups).
pub(crate) async fn backfill(conn: &mut Conn) -> Result<()> {
    let newest_lacks: Option<i64> = sqlx::query_scalar(
        "SELECT c.id FROM conversations c
         WHERE c.id = (SELECT MAX(id) FROM conversations)
           AND NOT EXISTS (SELECT 1 FROM conversation_facts f WHERE f.conversation_id = c.id)",
    )
    .fetch_optional(&mut *conn)
    .await?;
    if newest_lacks.is_none() {
        return Ok(());
    }
    let missing: Vec<i64> = sqlx::query_scalar(
        "SELECT c.id FROM conversations c
         WHERE NOT EXISTS (SELECT 1 FROM conversation_facts f WHERE f.conversation_id = c.id)",
    )
    .fetch_all(&mut *conn)
    .await?;
    let oldest: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(c.created_at) FROM conversations c
         WHERE NOT EXISTS (SELECT 1 FROM conversation_facts f WHERE f.conversation_id = c.id)",
    )
    .fetch_one(&mut *conn)
    .await?;
    let policies = crate::sla::all(conn).await?;
    // In batches: three reads and three writes per batch, not a dozen statements per
    // conversation (an hour of round trips at a million conversations on PostgreSQL).
    for ids in missing.chunks(BATCH) {
        let mut rows = Vec::with_capacity(ids.len());
        for (id, input) in ids.iter().zip(inputs(conn, ids).await?) {
            rows.push((*id, compute(&input, &policies, &[])?));
        }
        kpi_rows::insert(conn, &rows).await?;
    }
    // Other instances already running may keep days these conversations count in.
    if let Some(oldest) = oldest {
        crate::kpi_days::loaded_since(conn, oldest).await?;
    }
    // The tables went from empty to full in one go: without fresh statistics PostgreSQL plans
    // the reports' per-customer lookups as scans (39 s instead of 47 ms at 100k).
    sqlx::query("ANALYZE conversation_facts")
        .execute(&mut *conn)
        .await?;
    sqlx::query("ANALYZE turn_responses")
        .execute(&mut *conn)
        .await?;
    sqlx::query("ANALYZE sla_outcomes")
        .execute(&mut *conn)
        .await?;
    Ok(())
}
