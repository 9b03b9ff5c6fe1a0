//! Versions of UTC days, for the reports' cache of closed days (`seva_app`'s report cache).
//!
//! A report caches a closed day's figures with the versions of the UTC days it overlaps, and
//! uses them only while those versions are unchanged. Whatever changes what an old day counts
//! (an imported conversation, a reassignment, a new tag, a changed survey answer, a merge)
//! bumps the day's version in the same transaction, so every instance recomputes it. Recent
//! days are never cached, so live traffic, which only touches them, writes nothing here.

use std::collections::{BTreeSet, HashMap};

use seva_domain::ConversationId;
use seva_domain::kpi::REPEAT_WINDOW_DAYS;

use crate::kpi_rows::Stored;
use crate::rows::col;
use crate::{Conn, Result};

pub const DAY_MICROS: i64 = 86_400_000_000;
/// Durations, one-touch and survey answers of a day may be cached once it ended this many days
/// ago (figures still move while conversations from that day get their first replies).
pub const SETTLED_DAYS: i64 = 2;
/// FCR of a day may be cached once its repeat window has passed too.
pub const FCR_SETTLED_DAYS: i64 = REPEAT_WINDOW_DAYS + SETTLED_DAYS;

/// The UTC day (days since 1970-01-01) of a time in microseconds.
pub fn day_of(micros: i64) -> i64 {
    micros.div_euclid(DAY_MICROS)
}

/// What a day's version covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// What conversations count (facts, turns, SLA targets, tags, survey answers).
    Conversations,
    /// Orders placed that day.
    Orders,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Conversations => "conversations",
            Kind::Orders => "orders",
        }
    }
}

/// The current versions of UTC days `first..=last` (a day never bumped is absent: version 0).
pub async fn versions(
    conn: &mut Conn,
    kind: Kind,
    first: i64,
    last: i64,
) -> Result<HashMap<i64, i64>> {
    let rows = sqlx::query(
        "SELECT day, version FROM kpi_day_versions WHERE kind = $1 AND day >= $2 AND day <= $3",
    )
    .bind(kind.as_str())
    .bind(first)
    .bind(last)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok((col(row, "day")?, col(row, "version")?)))
        .collect()
}

/// A fingerprint of every day before `day` (sum and count of versions): it changes when any
/// of them is bumped, for figures that depend on all history (churn).
pub async fn fingerprint_before(conn: &mut Conn, kind: Kind, day: i64) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) AS v, COUNT(*) AS n
         FROM kpi_day_versions WHERE kind = $1 AND day < $2",
    )
    .bind(kind.as_str())
    .bind(day)
    .fetch_one(&mut *conn)
    .await?;
    Ok((col(&row, "v")?, col(&row, "n")?))
}

/// Bumps, in day order, the days a cache waiting `settled` days may hold.
async fn bump(conn: &mut Conn, days: BTreeSet<i64>, settled: i64) -> Result<()> {
    bump_kind(conn, Kind::Conversations, days, settled).await
}

/// The days a cache waiting `settled` days may hold: those that started more than
/// `settled - 1` days ago (the day between covers instances' clocks drifting apart).
fn settled_only(days: BTreeSet<i64>, settled: i64) -> BTreeSet<i64> {
    // The system clock on purpose: the bound must hold whatever a test sets the application's
    // clock to, and the application caches only days settled by both clocks.
    #[allow(clippy::disallowed_methods)]
    let limit = chrono::Utc::now().timestamp_micros() - (settled - 1) * DAY_MICROS;
    days.into_iter()
        .filter(|d| d.saturating_mul(DAY_MICROS) < limit)
        .collect()
}

async fn bump_kind(conn: &mut Conn, kind: Kind, days: BTreeSet<i64>, settled: i64) -> Result<()> {
    for day in settled_only(days, settled) {
        sqlx::query(
            "INSERT INTO kpi_day_versions (kind, day, version) VALUES ($1, $2, 1)
             ON CONFLICT (kind, day) DO UPDATE SET version = kpi_day_versions.version + 1",
        )
        .bind(kind.as_str())
        .bind(day)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What a conversation counts in reports' days, as read from its facts.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Counted {
    /// (UTC day, what it counts there: the figure, its time, values and groups).
    items: BTreeSet<(i64, String)>,
    /// Its channel, brand, team and assignee: what breakdowns and filters group by.
    groups: String,
    /// When it was opened, by whom, and whether the customer started it: it decides FCR of
    /// the customer's resolutions in the window before.
    opened: (i64, i64, i64),
}

impl Counted {
    fn days(&self) -> BTreeSet<i64> {
        self.items.iter().map(|(day, _)| *day).collect()
    }

    /// The days whose resolutions' FCR its opening decides.
    fn fcr_days(&self) -> BTreeSet<i64> {
        let (at, _, started) = self.opened;
        if started == 0 {
            return BTreeSet::new();
        }
        (day_of(at - REPEAT_WINDOW_DAYS * DAY_MICROS)..=day_of(at)).collect()
    }
}

/// What the conversation counts now (`None`: no facts yet).
pub(crate) async fn counted(conn: &mut Conn, id: ConversationId) -> Result<Option<Counted>> {
    Ok(crate::kpi_rows::load(conn, id.0)
        .await?
        .as_ref()
        .map(Counted::of))
}

impl Counted {
    /// What a conversation with these rows counts.
    pub(crate) fn of(rows: &Stored) -> Counted {
        let f = &rows.facts;
        let groups = format!(
            "{}/{:?}/{:?}/{:?}",
            f.channel, f.brand_id, f.team_id, f.assignee_id
        );
        let mut items = BTreeSet::new();
        for (figure, at, cal, bus) in [
            (
                "first_response",
                f.first_reply_at,
                f.first_response_cal,
                f.first_response_bus,
            ),
            (
                "first_resolution",
                f.first_resolved_at,
                f.first_resolution_cal,
                f.first_resolution_bus,
            ),
            (
                "full_resolution",
                f.final_resolved_at,
                f.full_resolution_cal,
                f.full_resolution_bus,
            ),
        ] {
            if let Some(at) = at {
                items.insert((
                    day_of(at),
                    format!("{figure} {at} {cal:?} {bus:?} {groups}"),
                ));
            }
        }
        if let Some(at) = f.final_resolved_at {
            items.insert((
                day_of(at),
                format!("resolved {at} {:?} {} {groups}", f.one_touch, f.customer_id),
            ));
        }
        for t in &rows.turns {
            let (at, cal, bus) = (t.answered_at, t.seconds_cal, t.seconds_bus);
            items.insert((day_of(at), format!("turn {at} {cal} {bus} {groups}")));
        }
        for t in &rows.targets {
            let Some(at) = t.settled_at else { continue };
            // Its start tells apart two turns breached at one instant (a shop opening).
            items.insert((
                day_of(at),
                format!(
                    "sla {} {} {at} {} {groups}",
                    t.target.as_str(),
                    t.started_at,
                    i64::from(t.met)
                ),
            ));
        }
        Counted {
            items,
            groups,
            opened: (f.created_at, f.customer_id, f.customer_started),
        }
    }
}

/// After the conversation's facts changed from `before` to `after`: bumps the days whose
/// figures moved.
pub(crate) async fn changed(
    conn: &mut Conn,
    id: ConversationId,
    before: Option<Counted>,
    after: Option<Counted>,
) -> Result<()> {
    if before == after {
        return Ok(());
    }
    let before = before.unwrap_or_default();
    let after = after.unwrap_or_default();
    // One bump, in day order: transactions lock version rows in the same order.
    let mut days: BTreeSet<i64> = before
        .items
        .symmetric_difference(&after.items)
        .map(|(day, _)| *day)
        .collect();
    if before.groups != after.groups {
        // Its survey answers are grouped by the conversation's groups too.
        days.extend(survey_days(conn, id).await?);
    }
    let mut all = settled_only(days, SETTLED_DAYS);
    if before.opened != after.opened {
        let mut fcr = before.fcr_days();
        fcr.extend(after.fcr_days());
        all.extend(settled_only(fcr, FCR_SETTLED_DAYS));
    }
    bump(conn, all, SETTLED_DAYS).await
}

/// Bumps every day the conversation counts in, for a change reports filter or group on that
/// its facts do not hold (its tags).
pub(crate) async fn touch(conn: &mut Conn, id: ConversationId) -> Result<()> {
    let Some(counted) = counted(conn, id).await? else {
        return Ok(());
    };
    let mut days = counted.days();
    days.extend(survey_days(conn, id).await?);
    bump(conn, days, SETTLED_DAYS).await
}

/// After conversations (their facts) and orders moved to another customer: bumps every day
/// they count in, and the days whose FCR their openings decide, once and in order.
pub(crate) async fn moved(conn: &mut Conn, conversations: &[i64], placed: &[i64]) -> Result<()> {
    let mut days = BTreeSet::new();
    for &id in conversations {
        if let Some(counted) = counted(conn, ConversationId(id)).await? {
            days.extend(counted.days());
            days.extend(counted.fcr_days());
        }
    }
    bump(conn, days, SETTLED_DAYS).await?;
    orders_changed(conn, placed).await
}

/// After conversations created since `oldest` got their facts in bulk (the start-up
/// backfill): bumps every day since, so instances already running forget what they kept.
pub(crate) async fn loaded_since(conn: &mut Conn, oldest: i64) -> Result<()> {
    #[allow(clippy::disallowed_methods)] // see `settled_only`
    let today = day_of(chrono::Utc::now().timestamp_micros());
    let days = (day_of(oldest)..=today).collect();
    bump(conn, days, SETTLED_DAYS).await
}

/// Bumps the day of a survey answer given at `at` (a changed answer keeps its first time).
pub(crate) async fn answer_changed(conn: &mut Conn, at: i64) -> Result<()> {
    bump(conn, BTreeSet::from([day_of(at)]), SETTLED_DAYS).await
}

/// Bumps the days of orders placed at `placed` (microseconds) that were written, changed or
/// moved to another customer.
pub(crate) async fn orders_changed(conn: &mut Conn, placed: &[i64]) -> Result<()> {
    let days = placed.iter().copied().map(day_of).collect();
    bump_kind(conn, Kind::Orders, days, SETTLED_DAYS).await
}

async fn survey_days(conn: &mut Conn, id: ConversationId) -> Result<BTreeSet<i64>> {
    let times: Vec<i64> = sqlx::query_scalar(
        "SELECT answered_at FROM surveys WHERE conversation_id = $1 AND answered_at IS NOT NULL",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    Ok(times.into_iter().map(day_of).collect())
}
