//! KPI facts: one row per conversation (and one per answered customer turn), recomputed from
//! the conversation's messages and status changes whenever an event about it is recorded, in
//! the same transaction. Reports read these rows by indexed time ranges; the arithmetic is
//! `seva_domain::kpi`.

use seva_domain::kpi::{Clock, Facts, Step, facts};
use seva_domain::sla::{self, Activity, Outcome, SlaPolicy, SlaPolicyId, Subject};
use seva_domain::{
    BrandId, Change, Channel, ConversationId, MessageKind, Priority, Status, TeamId,
};

use crate::rows::{col, parse, time};
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
        crate::kpi_days::changed(conn, c.id, before).await?;
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

/// The conversation's steps: its messages (customer messages and public agent replies) and its
/// resolutions and reopenings, in time order; and when its SLA clock ran (`now`: its status
/// now, which it had all along if it never changed).
async fn steps(
    conn: &mut Conn,
    conversation: ConversationId,
    now: Status,
) -> Result<(Vec<Step>, Activity)> {
    let mut steps = Vec::new();
    let rows = sqlx::query(
        // Automatic mail (bounces, auto-replies, lists) is not the customer writing.
        "SELECT m.kind, m.author_kind, m.created_at FROM messages m
         LEFT JOIN mail_sources s ON s.message_id = m.id
         WHERE m.conversation_id = $1 AND s.automatic IS NULL
         ORDER BY m.created_at, m.id",
    )
    .bind(conversation.0)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let kind: String = col(&row, "kind")?;
        let author: String = col(&row, "author_kind")?;
        let at = time(&row, "created_at")?;
        match (kind.as_str(), author.as_str()) {
            ("customer", _) => steps.push(Step::CustomerMessage(at)),
            ("reply", "agent") => steps.push(Step::AgentReply(at)),
            _ => {}
        }
    }
    let rows = sqlx::query(
        "SELECT data, at FROM events WHERE conversation_id = $1 AND kind = 'status_changed'
         ORDER BY id",
    )
    .bind(conversation.0)
    .fetch_all(&mut *conn)
    .await?;
    let mut changes = Vec::new();
    for row in rows {
        let data: String = col(&row, "data")?;
        let at = time(&row, "at")?;
        if let Ok(Change::StatusChanged { from, to }) = serde_json::from_str(&data) {
            match (resolved(from), resolved(to)) {
                (false, true) => steps.push(Step::Resolved(at)),
                (true, false) => steps.push(Step::Reopened(at)),
                _ => {}
            }
            changes.push((at, from, to));
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
    Ok((steps, activity))
}

/// Recomputes and stores the conversation's facts. Call inside the transaction that changed it.
pub async fn refresh(conn: &mut Conn, conversation: ConversationId) -> Result<()> {
    let policies = crate::sla::all(conn).await?;
    // What it counted before, to bump the reports' kept days the change moves.
    let before = crate::kpi_days::counted(conn, conversation).await?;
    write_facts(conn, conversation, &policies, false).await?;
    crate::kpi_days::changed(conn, conversation, before).await
}

/// `first`: the conversation has no facts yet (the start-up backfill, where no report has kept
/// a day yet), so there are no old turns to delete. That matters: on a freshly migrated
/// PostgreSQL the planner sees an empty `turn_responses` and scans it for each delete,
/// quadratic over a million conversations.
async fn write_facts(
    conn: &mut Conn,
    conversation: ConversationId,
    policies: &[SlaPolicy],
    first: bool,
) -> Result<()> {
    let row = sqlx::query(
        "SELECT customer_id, brand_id, team_id, assignee_id, channel, status, priority,
                created_at
         FROM conversations WHERE id = $1",
    )
    .bind(conversation.0)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    let status: Status = parse(&row, "status")?;
    let priority: Priority = parse(&row, "priority")?;
    let channel: Channel = parse(&row, "channel")?;
    let (steps, activity) = steps(conn, conversation, status).await?;
    let f = facts(&steps);
    let hours = crate::hours::of_conversation(conn, conversation).await?;
    let business = hours
        .as_ref()
        .map_or(Clock::Calendar, |h| Clock::Business(&h.schedule));
    let subject = Subject {
        brand: col::<Option<i64>>(&row, "brand_id")?.map(BrandId),
        team: col::<Option<i64>>(&row, "team_id")?.map(TeamId),
        channel,
        priority,
    };
    let kept = if first {
        Vec::new()
    } else {
        crate::sla::done_targets(conn, conversation).await?
    };
    let targets = targets(policies, &subject, &f, &activity, business, &kept);
    let both = |get: &dyn Fn(&Facts, Clock<'_>) -> Option<i64>| {
        (get(&f, Clock::Calendar), get(&f, business))
    };
    let (first_cal, first_bus) = both(&|f, c| f.first_response(c));
    let (res1_cal, res1_bus) = both(&|f, c| f.first_resolution_time(c));
    let (full_cal, full_bus) = both(&|f, c| f.full_resolution_time(c));
    let micros = |t: Option<seva_domain::Timestamp>| t.map(to_micros);
    let customer_id: i64 = col(&row, "customer_id")?;
    // An upsert: two transactions refreshing one conversation (or a start-up backfill meeting
    // live traffic) must not collide on the key.
    sqlx::query(
        "INSERT INTO conversation_facts (conversation_id, customer_id, brand_id, team_id,
             assignee_id, channel, status, created_at, customer_started, first_customer_at,
             first_reply_at, first_response_cal, first_response_bus, first_resolved_at,
             first_resolution_cal, first_resolution_bus, final_resolved_at, full_resolution_cal,
             full_resolution_bus, reopened, public_replies, one_touch, priority)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                 $18, $19, $20, $21, $22, $23)
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
    )
    .bind(conversation.0)
    .bind(customer_id)
    .bind(col::<Option<i64>>(&row, "brand_id")?)
    .bind(col::<Option<i64>>(&row, "team_id")?)
    .bind(col::<Option<i64>>(&row, "assignee_id")?)
    .bind(channel.as_str())
    .bind(status.as_str())
    .bind(col::<i64>(&row, "created_at")?)
    .bind(i64::from(f.customer_started))
    .bind(micros(f.first_customer_message))
    .bind(micros(f.first_reply))
    .bind(first_cal)
    .bind(first_bus)
    .bind(micros(f.first_resolution))
    .bind(res1_cal)
    .bind(res1_bus)
    .bind(micros(f.final_resolution))
    .bind(full_cal)
    .bind(full_bus)
    .bind(i64::try_from(f.reopened_at.len()).unwrap_or(i64::MAX))
    .bind(i64::from(f.public_replies))
    .bind(f.one_touch().map(i64::from))
    .bind(priority.as_str())
    .execute(&mut *conn)
    .await?;
    crate::sla::write(conn, conversation, &targets, first).await?;
    write_turns(conn, conversation, &f, business, first).await
}

/// Replaces the conversation's answered turns (`first`: it had none, skip the delete).
async fn write_turns(
    conn: &mut Conn,
    conversation: ConversationId,
    f: &Facts,
    business: Clock<'_>,
    first: bool,
) -> Result<()> {
    if !first {
        sqlx::query("DELETE FROM turn_responses WHERE conversation_id = $1")
            .bind(conversation.0)
            .execute(&mut *conn)
            .await?;
    }
    let calendar = f.turn_responses(Clock::Calendar);
    let on_hours = f.turn_responses(business);
    for ((at, cal), (_, bus)) in calendar.into_iter().zip(on_hours) {
        sqlx::query(
            "INSERT INTO turn_responses (conversation_id, answered_at, seconds_cal, seconds_bus)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(conversation.0)
        .bind(to_micros(at))
        .bind(cal)
        .bind(bus)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
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
    for id in missing {
        write_facts(conn, ConversationId(id), &policies, true).await?;
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
