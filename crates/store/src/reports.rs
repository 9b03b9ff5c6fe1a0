//! Reading the KPI facts for reports. Everything is aggregated in the database: counts and
//! sums as numbers, and each group's durations as one comma-separated value (`group_concat` /
//! `string_agg`), so a report moves a handful of rows however many conversations it covers.
//! The medians and p90s are computed from those lists by `seva_domain::kpi::stats`.
//!
//! A report reads a [`Scope`] (which conversations: channel, team, agent, brand, tag, segment)
//! grouped by a [`Grouping`] (a breakdown dimension and/or time buckets).

use std::fmt::Write as _;

use seva_domain::kpi::{Answers, Ratio};
use seva_domain::segment::Rules;
use seva_domain::sla::{Attainment, Target, slot};
use seva_domain::survey::SurveyKind;
use seva_domain::{ConversationId, CustomerId, Timestamp};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::{Arg, bind_all, col};
use crate::{Conn, Result, dialect, to_micros};

/// Which conversations a report covers (all when empty).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub channel: Option<String>,
    pub team: Option<i64>,
    pub agent: Option<i64>,
    pub brand: Option<i64>,
    pub tag: Option<String>,
    /// A segment's rules, evaluated at the given time, over the conversation's customer.
    pub segment: Option<(Rules, Timestamp)>,
}

impl Scope {
    /// The SQL condition on facts row `f` (starting with ` AND`), its values pushed to `args`.
    fn condition(&self, args: &mut Vec<Arg>) -> String {
        let mut sql = String::new();
        let arg = |args: &mut Vec<Arg>, value: Arg| {
            args.push(value);
            format!("${}", args.len())
        };
        if let Some(c) = &self.channel {
            let p = arg(args, Arg::Text(c.clone()));
            let _ = write!(sql, " AND f.channel = {p}");
        }
        for (column, value) in [
            ("team_id", self.team),
            ("assignee_id", self.agent),
            ("brand_id", self.brand),
        ] {
            if let Some(v) = value {
                let p = arg(args, Arg::Int(v));
                let _ = write!(sql, " AND f.{column} = {p}");
            }
        }
        if let Some(tag) = &self.tag {
            let p = arg(args, Arg::Text(tag.clone()));
            let _ = write!(
                sql,
                " AND EXISTS (SELECT 1 FROM conversation_tags st \
                 WHERE st.conversation_id = f.conversation_id AND st.tag = {p})"
            );
        }
        if let Some((rules, now)) = &self.segment {
            let inner = crate::segments::condition(rules, *now, "sc", args);
            let _ = write!(
                sql,
                " AND f.customer_id IN (SELECT sc.id FROM customers sc WHERE {inner})"
            );
        }
        sql
    }

    pub fn is_empty(&self) -> bool {
        self.channel.is_none()
            && self.team.is_none()
            && self.agent.is_none()
            && self.brand.is_none()
            && self.tag.is_none()
            && self.segment.is_none()
    }
}

/// What a breakdown groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Channel,
    Team,
    Agent,
    Brand,
    Tag,
    /// Saved segments: one row per segment, measured with it as the filter (the app runs
    /// one report per segment; a customer may be in several, so no single SQL key exists).
    Segment,
}

impl Dimension {
    /// The group key's SQL (text; NULL for "none"), and the join it needs.
    fn key(self) -> (&'static str, &'static str) {
        match self {
            Dimension::Segment => ("NULL", ""),
            Dimension::Channel => ("f.channel", ""),
            Dimension::Team => ("CAST(f.team_id AS TEXT)", ""),
            Dimension::Agent => ("CAST(f.assignee_id AS TEXT)", ""),
            Dimension::Brand => ("CAST(f.brand_id AS TEXT)", ""),
            Dimension::Tag => (
                "gt.tag",
                " JOIN conversation_tags gt ON gt.conversation_id = f.conversation_id",
            ),
        }
    }
}

/// How a report's rows are grouped: by a dimension, and by time buckets (bucket `i` starts at
/// `starts[i]`; a time before `starts[1]` is bucket 0). No buckets: one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grouping<'a> {
    pub by: Option<Dimension>,
    pub starts: &'a [Timestamp],
}

impl Grouping<'_> {
    /// `key, bucket` select expressions over time column `at`, and the join the key needs.
    fn select(&self, at: &str) -> (String, &'static str) {
        let (key, join) = self.by.map_or(("NULL", ""), Dimension::key);
        let buckets = bucket_of(at, self.starts, 0, self.starts.len().max(1));
        (format!("{key} AS k, CAST({buckets} AS BIGINT) AS b"), join)
    }
}

/// Which of buckets `lo..hi` time `at` falls in, as nested CASEs halving the range (a year of
/// days costs each row 9 comparisons, not 366). Microsecond numbers computed here, never
/// input, are written into the SQL.
fn bucket_of(at: &str, starts: &[Timestamp], lo: usize, hi: usize) -> String {
    if hi - lo <= 1 {
        return lo.to_string();
    }
    let mid = usize::midpoint(lo, hi);
    format!(
        "CASE WHEN {at} < {} THEN {} ELSE {} END",
        to_micros(starts[mid]),
        bucket_of(at, starts, lo, mid),
        bucket_of(at, starts, mid, hi)
    )
}

/// One group of a report: its key (`None`: no team, no agent, ... or no breakdown), its time
/// bucket, and what was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell<T> {
    pub key: Option<String>,
    pub bucket: usize,
    pub value: T,
}

fn cell_head(row: &AnyRow) -> Result<(Option<String>, usize)> {
    let bucket: i64 = col(row, "b")?;
    Ok((col(row, "k")?, usize::try_from(bucket).unwrap_or(0)))
}

/// A report's period, `[from, to)`, and which clock its durations use.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
    pub business: bool,
}

impl Period {
    fn suffix(self) -> &'static str {
        if self.business { "bus" } else { "cal" }
    }
}

/// A duration KPI: which rows, by which closing time, which value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durations {
    /// First response times, by the first reply's time.
    FirstResponse,
    /// Every customer turn's wait, by the reply's time.
    Turn,
    /// First resolution times, by the first resolution.
    FirstResolution,
    /// Full resolution times of conversations resolved now, by the last resolution.
    FullResolution,
}

impl Durations {
    /// (FROM clause, time column, value column) for clock suffix `c`.
    fn parts(self, c: &str) -> (&'static str, &'static str, String) {
        match self {
            Durations::FirstResponse => (
                "conversation_facts f",
                "f.first_reply_at",
                format!("f.first_response_{c}"),
            ),
            Durations::Turn => (
                "turn_responses r JOIN conversation_facts f ON f.conversation_id = r.conversation_id",
                "r.answered_at",
                format!("r.seconds_{c}"),
            ),
            Durations::FirstResolution => (
                "conversation_facts f",
                "f.first_resolved_at",
                format!("f.first_resolution_{c}"),
            ),
            Durations::FullResolution => (
                "conversation_facts f",
                "f.final_resolved_at",
                format!("f.full_resolution_{c}"),
            ),
        }
    }
}

fn concat(conn: &Conn, value: &str) -> String {
    if dialect::is_postgres(conn) {
        format!("string_agg(CAST({value} AS TEXT), ',')")
    } else {
        format!("group_concat({value})")
    }
}

/// The durations (seconds) closed in the period, per group.
pub async fn durations(
    conn: &mut Conn,
    which: Durations,
    period: Period,
    scope: &Scope,
    grouping: Grouping<'_>,
) -> Result<Vec<Cell<Vec<i64>>>> {
    let (mut from, at, value) = which.parts(period.suffix());
    if which == Durations::Turn && grouping.by.is_none() && scope.is_empty() {
        from = "turn_responses r";
    }
    let (select, join) = grouping.select(at);
    let list = concat(conn, &value);
    let mut args = vec![
        Arg::Int(to_micros(period.from)),
        Arg::Int(to_micros(period.to)),
    ];
    let scope = scope.condition(&mut args);
    let sql = format!(
        "SELECT {select}, {list} AS v FROM {from}{join}
         WHERE {at} >= $1 AND {at} < $2 AND {value} IS NOT NULL{scope}
         GROUP BY k, b"
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let (key, bucket) = cell_head(row)?;
            let text: Option<String> = col(row, "v")?;
            let value = text
                .unwrap_or_default()
                .split(',')
                .filter_map(|v| v.parse().ok())
                .collect();
            Ok(Cell { key, bucket, value })
        })
        .collect()
}

/// One-touch and FCR counts of conversations resolved (and still resolved) in the period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resolutions {
    pub one_touch: Ratio,
    pub fcr: Ratio,
    /// Resolved, but the repeat window has not passed yet.
    pub fcr_pending: u64,
}

impl Resolutions {
    #[must_use]
    pub fn plus(self, o: Resolutions) -> Resolutions {
        Resolutions {
            one_touch: Ratio {
                numerator: self.one_touch.numerator + o.one_touch.numerator,
                denominator: self.one_touch.denominator + o.one_touch.denominator,
            },
            fcr: Ratio {
                numerator: self.fcr.numerator + o.fcr.numerator,
                denominator: self.fcr.denominator + o.fcr.denominator,
            },
            fcr_pending: self.fcr_pending + o.fcr_pending,
        }
    }
}

/// One-touch and FCR as PRODUCT.md defines them (`seva_domain::kpi::fcr`, in SQL): a
/// conversation counts when it has a public reply; FCR is decided once the repeat window after
/// its resolution has passed at `now` (pending until then), and is yes when one-touch and the
/// customer started no other conversation within the window.
pub async fn resolutions(
    conn: &mut Conn,
    period: Period,
    window: chrono::Duration,
    now: Timestamp,
    scope: &Scope,
    grouping: Grouping<'_>,
) -> Result<Vec<Cell<Resolutions>>> {
    let (select, join) = grouping.select("f.final_resolved_at");
    let mut args = vec![
        Arg::Int(to_micros(period.from)),
        Arg::Int(to_micros(period.to)),
        Arg::Int(to_micros(now - window)),
        Arg::Int(window.num_microseconds().unwrap_or(i64::MAX)),
    ];
    let scope = scope.condition(&mut args);
    let sql = format!(
        "SELECT {select},
                COUNT(f.one_touch) AS touched,
                COALESCE(SUM(CASE WHEN f.one_touch = 1 THEN 1 ELSE 0 END), 0) AS one_touch,
                COALESCE(SUM(CASE WHEN f.one_touch IS NOT NULL AND f.final_resolved_at > $3
                                  THEN 1 ELSE 0 END), 0) AS pending,
                COALESCE(SUM(CASE WHEN f.one_touch IS NOT NULL AND f.final_resolved_at <= $3
                                  THEN 1 ELSE 0 END), 0) AS due,
                COALESCE(SUM(CASE WHEN f.one_touch = 1 AND f.final_resolved_at <= $3
                   AND NOT EXISTS (SELECT 1 FROM conversation_facts n
                       WHERE n.customer_id = f.customer_id
                         AND n.created_at >= f.final_resolved_at
                         AND n.created_at < f.final_resolved_at + $4
                         AND n.conversation_id <> f.conversation_id
                         AND n.customer_started = 1)
                   THEN 1 ELSE 0 END), 0) AS fcr
         FROM conversation_facts f{join}
         WHERE f.final_resolved_at >= $1 AND f.final_resolved_at < $2{scope}
         GROUP BY k, b"
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_all(&mut *conn)
        .await?;
    let n = |row: &AnyRow, c: &str| -> Result<u64> {
        Ok(u64::try_from(col::<i64>(row, c)?).unwrap_or(0))
    };
    rows.iter()
        .map(|row| {
            let (key, bucket) = cell_head(row)?;
            Ok(Cell {
                key,
                bucket,
                value: Resolutions {
                    one_touch: Ratio {
                        numerator: n(row, "one_touch")?,
                        denominator: n(row, "touched")?,
                    },
                    fcr: Ratio {
                        numerator: n(row, "fcr")?,
                        denominator: n(row, "due")?,
                    },
                    fcr_pending: n(row, "pending")?,
                },
            })
        })
        .collect()
}

/// SLA targets settled in the period, by `now` (`seva_domain::sla`): met and due, per target
/// and group. A target counts at the reply or resolution that met it, else at its breach.
pub async fn sla(
    conn: &mut Conn,
    period: Period,
    now: Timestamp,
    scope: &Scope,
    grouping: Grouping<'_>,
) -> Result<Vec<Cell<Attainment>>> {
    let (select, join) = grouping.select("o.settled_at");
    let mut args = vec![
        Arg::Int(to_micros(period.from)),
        Arg::Int(to_micros(period.to)),
        Arg::Int(to_micros(now)),
    ];
    // Unfiltered and not broken down, the targets alone answer, from their covering index.
    let from = if grouping.by.is_none() && scope.is_empty() {
        "sla_outcomes o"
    } else {
        "sla_outcomes o JOIN conversation_facts f ON f.conversation_id = o.conversation_id"
    };
    let scope = scope.condition(&mut args);
    let sql = format!(
        "SELECT {select}, o.target AS t, COUNT(*) AS due,
                CAST(COALESCE(SUM(o.met), 0) AS BIGINT) AS met
         FROM {from}{join}
         WHERE o.settled_at >= $1 AND o.settled_at < $2 AND o.settled_at <= $3{scope}
         GROUP BY k, b, t"
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_all(&mut *conn)
        .await?;
    let mut cells: Vec<Cell<Attainment>> = Vec::new();
    for row in &rows {
        let (key, bucket) = cell_head(row)?;
        let target: String = col(row, "t")?;
        let Ok(target) = target.parse::<Target>() else {
            continue;
        };
        let count =
            |c: &str| -> Result<u64> { Ok(u64::try_from(col::<i64>(row, c)?).unwrap_or(0)) };
        let ratio = Ratio {
            numerator: count("met")?,
            denominator: count("due")?,
        };
        if let Some(cell) = cells
            .iter_mut()
            .find(|c| c.key == key && c.bucket == bucket)
        {
            cell.value[slot(target)] = ratio;
        } else {
            let mut value = Attainment::default();
            value[slot(target)] = ratio;
            cells.push(Cell { key, bucket, value });
        }
    }
    Ok(cells)
}

/// Survey answers first given in the period: CSAT, CES and NPS counts by score. Relationship
/// NPS (no conversation) counts when the scope is empty, under no key.
pub async fn answers(
    conn: &mut Conn,
    from: Timestamp,
    to: Timestamp,
    scope: &Scope,
    grouping: Grouping<'_>,
) -> Result<Vec<Cell<[Answers; 3]>>> {
    let (select, join) = grouping.select("s.answered_at");
    let mut args = vec![Arg::Int(to_micros(from)), Arg::Int(to_micros(to))];
    let scope = scope.condition(&mut args);
    let mut parts = Vec::new();
    for kind in SurveyKind::ALL {
        let k = kind.as_str();
        parts.push(format!(
            "SELECT {select}, '{k}' AS kind, s.{k} AS score, COUNT(*) AS n
             FROM surveys s LEFT JOIN conversation_facts f
                  ON f.conversation_id = s.conversation_id{join}
             WHERE s.answered_at >= $1 AND s.answered_at < $2 AND s.{k} IS NOT NULL{scope}
             GROUP BY k, b, s.{k}"
        ));
    }
    let sql = parts.join(" UNION ALL ");
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_all(&mut *conn)
        .await?;
    let mut cells: Vec<Cell<[Answers; 3]>> = Vec::new();
    for row in &rows {
        let (key, bucket) = cell_head(row)?;
        let kind: String = col(row, "kind")?;
        let given: i64 = col(row, "score")?;
        let n: i64 = col(row, "n")?;
        let index = SurveyKind::ALL
            .iter()
            .position(|k| k.as_str() == kind)
            .unwrap_or(0);
        let position = cells
            .iter()
            .position(|c| c.key == key && c.bucket == bucket)
            .unwrap_or_else(|| {
                cells.push(Cell {
                    key,
                    bucket,
                    value: [Answers::default(); 3],
                });
                cells.len() - 1
            });
        if let Ok(given) = usize::try_from(given)
            && let Some(slot) = cells[position].value[index].by_score.get_mut(given)
        {
            *slot += u64::try_from(n).unwrap_or(0);
        }
    }
    Ok(cells)
}

/// Conversations waiting for a first reply at `at` (the customer wrote before, no reply and no
/// resolution came before it): how many, and since when the oldest. Two ranges of the waiting
/// index (never replied; replied after `at`), not the `OR` of both: at a past instant the `OR`
/// read every conversation resolved since (88 ms against 37 ms on PostgreSQL at 1m).
pub async fn unanswered(
    conn: &mut Conn,
    at: Timestamp,
    scope: &Scope,
) -> Result<(i64, Option<Timestamp>)> {
    let mut args = vec![Arg::Int(to_micros(at))];
    let scope = scope.condition(&mut args);
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n, MIN(oldest) AS oldest FROM (
             SELECT COUNT(*) AS n, MIN(f.first_customer_at) AS oldest FROM conversation_facts f
             WHERE f.customer_started = 1 AND f.first_reply_at IS NULL
               AND f.first_customer_at < $1
               AND (f.first_resolved_at IS NULL OR f.first_resolved_at >= $1){scope}
             UNION ALL
             SELECT COUNT(*) AS n, MIN(f.first_customer_at) AS oldest FROM conversation_facts f
             WHERE f.customer_started = 1 AND f.first_reply_at >= $1
               AND f.first_customer_at < $1
               AND (f.first_resolved_at IS NULL OR f.first_resolved_at >= $1){scope}
         ) AS waiting"
    );
    let row = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_one(&mut *conn)
        .await?;
    Ok((col(&row, "n")?, crate::rows::opt_time(&row, "oldest")?))
}

/// Conversations open at `at` (created before, not resolved by then), by status now. Two
/// indexed ranges (unresolved now; resolved after `at`), never a scan of the whole table.
pub async fn backlog(conn: &mut Conn, at: Timestamp, scope: &Scope) -> Result<Vec<(String, i64)>> {
    let mut args = vec![Arg::Int(to_micros(at))];
    let scope = scope.condition(&mut args);
    let sql = format!(
        "SELECT status, CAST(SUM(n) AS BIGINT) AS n FROM (
             SELECT f.status, COUNT(*) AS n FROM conversation_facts f
             WHERE f.final_resolved_at IS NULL AND f.created_at < $1{scope} GROUP BY f.status
             UNION ALL
             SELECT f.status, COUNT(*) AS n FROM conversation_facts f
             WHERE f.final_resolved_at >= $1 AND f.created_at < $1{scope} GROUP BY f.status
         ) AS open_then GROUP BY status ORDER BY status"
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| Ok((col(row, "status")?, col(row, "n")?)))
        .collect()
}

/// The condition "order `o` belongs to a customer in the segment" (` AND ...`), if any.
fn order_scope(scope: &Scope, args: &mut Vec<Arg>) -> String {
    scope
        .segment
        .as_ref()
        .map_or_else(String::new, |(rules, now)| {
            let inner = crate::segments::condition(rules, *now, "sc", args);
            format!(" AND o.customer_id IN (SELECT sc.id FROM customers sc WHERE {inner})")
        })
}

/// Repeat purchase: customers with at least two orders in `[from, to)` ÷ customers with one.
pub async fn repeat_purchase(
    conn: &mut Conn,
    from: Timestamp,
    to: Timestamp,
    scope: &Scope,
) -> Result<Ratio> {
    let mut args = vec![Arg::Int(to_micros(from)), Arg::Int(to_micros(to))];
    let segment = order_scope(scope, &mut args);
    let sql = format!(
        "SELECT COUNT(*) AS buyers,
                COALESCE(SUM(CASE WHEN n >= 2 THEN 1 ELSE 0 END), 0) AS repeaters
         FROM (SELECT o.customer_id, COUNT(*) AS n FROM orders o
               WHERE o.placed_at >= $1 AND o.placed_at < $2 AND o.status <> 'cancelled'{segment}
               GROUP BY o.customer_id) AS buyers"
    );
    let row = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Ratio {
        numerator: u64::try_from(col::<i64>(&row, "repeaters")?).unwrap_or(0),
        denominator: u64::try_from(col::<i64>(&row, "buyers")?).unwrap_or(0),
    })
}

/// Retention: customers who ordered in `[before, from)` and again in `[from, to)` ÷ customers
/// who ordered in `[before, from)`.
pub async fn retention(
    conn: &mut Conn,
    before: Timestamp,
    from: Timestamp,
    to: Timestamp,
    scope: &Scope,
) -> Result<Ratio> {
    let mut args = vec![
        Arg::Int(to_micros(before)),
        Arg::Int(to_micros(from)),
        Arg::Int(to_micros(to)),
    ];
    let segment = order_scope(scope, &mut args);
    let sql = format!(
        "SELECT COUNT(*) AS earlier,
                COALESCE(SUM(CASE WHEN EXISTS (
                    SELECT 1 FROM orders a WHERE a.customer_id = p.customer_id
                      AND a.placed_at >= $2 AND a.placed_at < $3 AND a.status <> 'cancelled')
                  THEN 1 ELSE 0 END), 0) AS again
         FROM (SELECT DISTINCT o.customer_id FROM orders o
               WHERE o.placed_at >= $1 AND o.placed_at < $2 AND o.status <> 'cancelled'{segment}
              ) AS p"
    );
    let row = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Ratio {
        numerator: u64::try_from(col::<i64>(&row, "again")?).unwrap_or(0),
        denominator: u64::try_from(col::<i64>(&row, "earlier")?).unwrap_or(0),
    })
}

/// Customers whose last order (not cancelled) as of `at` was placed before `before`.
pub async fn churned(
    conn: &mut Conn,
    before: Timestamp,
    at: Timestamp,
    scope: &Scope,
) -> Result<i64> {
    let mut args = vec![Arg::Int(to_micros(before)), Arg::Int(to_micros(at))];
    let segment = order_scope(scope, &mut args);
    let sql = format!(
        "SELECT COUNT(*) AS n FROM (SELECT o.customer_id FROM orders o
                               WHERE o.status <> 'cancelled' AND o.placed_at < $2{segment}
                               GROUP BY o.customer_id HAVING MAX(o.placed_at) < $1) AS lapsed"
    );
    let row = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_one(&mut *conn)
        .await?;
    col(&row, "n")
}

/// Customers who placed orders (not cancelled) in `[from, to)`, per bucket of `starts`:
/// (bucket, customer, how many orders).
pub async fn buyers(
    conn: &mut Conn,
    from: Timestamp,
    to: Timestamp,
    starts: &[Timestamp],
) -> Result<Vec<(usize, i64, i64)>> {
    let (select, _) = Grouping { by: None, starts }.select("o.placed_at");
    let sql = format!(
        "SELECT {select}, o.customer_id, COUNT(*) AS n FROM orders o
         WHERE o.placed_at >= $1 AND o.placed_at < $2 AND o.status <> 'cancelled'
         GROUP BY k, b, o.customer_id"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let (_, bucket) = cell_head(row)?;
            Ok((bucket, col(row, "customer_id")?, col(row, "n")?))
        })
        .collect()
}

/// How the churned count moves from `base` to a later `at` (`horizon`: how long without an
/// order churns): plus the customers whose last order crossed the horizon in between, minus
/// the churned ones who ordered again. Reads only the orders of two short windows, each
/// with its customer's latest earlier order (one index probe each: a `NOT EXISTS` let
/// PostgreSQL hash half a year of orders instead, 200 ms at 1m against 30 ms).
pub async fn churn_change(
    conn: &mut Conn,
    base: Timestamp,
    at: Timestamp,
    horizon: chrono::Duration,
) -> Result<i64> {
    let row = sqlx::query(
        "SELECT
           (SELECT COUNT(DISTINCT o.customer_id) FROM orders o
            WHERE o.placed_at >= $1 AND o.placed_at < $4 AND o.status <> 'cancelled'
              AND (SELECT MAX(a.placed_at) FROM orders a WHERE a.customer_id = o.customer_id
                   AND a.placed_at < $3 AND a.status <> 'cancelled') < $4) AS lapsed,
           (SELECT COUNT(DISTINCT o.customer_id) FROM orders o
            WHERE o.placed_at >= $2 AND o.placed_at < $3 AND o.status <> 'cancelled'
              AND (SELECT MAX(a.placed_at) FROM orders a WHERE a.customer_id = o.customer_id
                   AND a.placed_at < $2 AND a.status <> 'cancelled') < $1) AS back",
    )
    .bind(to_micros(base - horizon))
    .bind(to_micros(base))
    .bind(to_micros(at))
    .bind(to_micros(at - horizon))
    .fetch_one(&mut *conn)
    .await?;
    let lapsed: i64 = col(&row, "lapsed")?;
    let back: i64 = col(&row, "back")?;
    Ok(lapsed - back)
}

/// What a customer drill-down lists: the customers behind a purchase figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerDrill {
    /// Customers who ordered in the period, with how many orders (repeat purchase).
    Buyers,
    /// Customers who ordered in the days before, and whether again in the period (retention).
    Earlier,
    /// Customers churned at the period's end, by their last order.
    Churned,
}

/// A customer behind a purchase figure: their latest order that counted, and what they
/// contributed (`orders=3`, `again=yes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRow {
    pub customer_id: seva_domain::CustomerId,
    pub at: Timestamp,
    pub detail: Option<String>,
}

/// The windows a customer drill-down reads: the period `[from, to)`, the days before it
/// from `earlier`, and churn at `at` with `horizon`.
#[derive(Debug, Clone, Copy)]
pub struct OrderWindows {
    pub earlier: Timestamp,
    pub from: Timestamp,
    pub to: Timestamp,
    pub at: Timestamp,
    pub horizon: chrono::Duration,
}

/// The customers behind a purchase figure, latest order first, at most `limit`.
pub async fn drill_customers(
    conn: &mut Conn,
    which: CustomerDrill,
    w: OrderWindows,
    scope: &Scope,
    limit: i64,
) -> Result<Vec<CustomerRow>> {
    let (a, b) = match which {
        CustomerDrill::Buyers => (w.from, w.to),
        CustomerDrill::Earlier => (w.earlier, w.from),
        CustomerDrill::Churned => (w.at - w.horizon, w.at),
    };
    let mut args = vec![
        Arg::Int(to_micros(a)),
        Arg::Int(to_micros(b)),
        Arg::Int(limit),
    ];
    if which == CustomerDrill::Earlier {
        args.push(Arg::Int(to_micros(w.to)));
    }
    let segment = order_scope(scope, &mut args);
    let sql = match which {
        CustomerDrill::Buyers => format!(
            "SELECT o.customer_id, MAX(o.placed_at) AS at,
                    'orders=' || CAST(COUNT(*) AS TEXT) AS detail
             FROM orders o
             WHERE o.placed_at >= $1 AND o.placed_at < $2 AND o.status <> 'cancelled'{segment}
             GROUP BY o.customer_id ORDER BY at DESC LIMIT $3"
        ),
        CustomerDrill::Earlier => format!(
            "SELECT p.customer_id, p.at,
                    CASE WHEN EXISTS (SELECT 1 FROM orders a WHERE a.customer_id = p.customer_id
                                        AND a.placed_at >= $2 AND a.placed_at < $4
                                        AND a.status <> 'cancelled')
                         THEN 'again=yes' ELSE 'again=no' END AS detail
             FROM (SELECT o.customer_id, MAX(o.placed_at) AS at FROM orders o
                   WHERE o.placed_at >= $1 AND o.placed_at < $2
                     AND o.status <> 'cancelled'{segment}
                   GROUP BY o.customer_id) AS p
             ORDER BY p.at DESC LIMIT $3"
        ),
        CustomerDrill::Churned => format!(
            "SELECT o.customer_id, MAX(o.placed_at) AS at, CAST(NULL AS TEXT) AS detail
             FROM orders o
             WHERE o.status <> 'cancelled' AND o.placed_at < $2{segment}
             GROUP BY o.customer_id HAVING MAX(o.placed_at) < $1
             ORDER BY at DESC LIMIT $3"
        ),
    };
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(CustomerRow {
                customer_id: seva_domain::CustomerId(col(row, "customer_id")?),
                at: crate::rows::time(row, "at")?,
                detail: col(row, "detail")?,
            })
        })
        .collect()
}

/// What a drill-down lists: the conversations behind one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drill {
    FirstResponse,
    /// Every customer turn answered in the period (average response), one row per turn.
    Turns,
    FirstResolution,
    FullResolution,
    /// Resolved in the period with a public reply: one-touch or not, FCR yes/no/pending.
    Resolved,
    /// Waiting for a first reply at the period's end.
    Unanswered,
    /// Open at the period's end.
    Backlog,
    /// Survey answers given in the period.
    Answers,
    /// SLA targets settled in the period: `first_reply met`, `resolution missed`, ...
    Sla,
}

/// A conversation behind a figure, with what it contributed.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillRow {
    /// `None` for a relationship NPS answer (asked of a customer, not about a conversation).
    pub conversation_id: Option<ConversationId>,
    pub customer_id: CustomerId,
    /// When it counted (reply, resolution, answer), or since when it waits.
    pub at: Timestamp,
    /// Its duration in seconds, for duration figures.
    pub seconds: Option<i64>,
    /// One-touch (resolved), or the survey's scores as `csat=4 nps=9`.
    pub detail: Option<String>,
}

/// FCR as of `now` with repeat window `window`: decided once the window has passed.
#[derive(Debug, Clone, Copy)]
pub struct FcrAsOf {
    pub now: Timestamp,
    pub window: chrono::Duration,
}

/// The conversations behind a figure, newest first, at most `limit`.
pub async fn drill(
    conn: &mut Conn,
    which: Drill,
    period: Period,
    scope: &Scope,
    fcr: FcrAsOf,
    limit: i64,
) -> Result<Vec<DrillRow>> {
    let mut args = vec![
        Arg::Int(to_micros(period.from)),
        Arg::Int(to_micros(period.to)),
        Arg::Int(limit),
    ];
    let scope_sql = scope.condition(&mut args);
    let (at, seconds, detail, from, filter) =
        drill_parts(which, period.suffix(), to_micros(period.to), fcr);
    // Answers also list relationship NPS (no conversation), as the report counts them.
    let (ids, extra) = if which == Drill::Answers {
        ("s.conversation_id, s.customer_id", ", s.csat, s.ces, s.nps")
    } else {
        (
            "f.conversation_id, f.customer_id",
            ", CAST(NULL AS BIGINT) AS csat, CAST(NULL AS BIGINT) AS ces, CAST(NULL AS BIGINT) AS nps",
        )
    };
    let sql = format!(
        "SELECT {ids}, {at} AS at, {seconds} AS seconds, {detail} AS detail{extra}
         FROM {from} WHERE {filter}{scope_sql} ORDER BY {at} DESC LIMIT $3"
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let mut detail: Option<String> = col(row, "detail")?;
            if which == Drill::Answers {
                let scores: Vec<String> = SurveyKind::ALL
                    .iter()
                    .filter_map(|k| {
                        col::<Option<i64>>(row, k.as_str())
                            .ok()
                            .flatten()
                            .map(|s| format!("{k}={s}"))
                    })
                    .collect();
                detail = Some(scores.join(" "));
            }
            Ok(DrillRow {
                conversation_id: col::<Option<i64>>(row, "conversation_id")?.map(ConversationId),
                customer_id: CustomerId(col(row, "customer_id")?),
                at: crate::rows::time(row, "at")?,
                seconds: col(row, "seconds")?,
                detail,
            })
        })
        .collect()
}

/// What a drill-down selects: (time column, seconds, detail, FROM, condition). `$1` and `$2`
/// are the period; figures at the period's end use `end` and keep both placeholders used.
/// Numbers written into the SQL are computed here, never input.
fn drill_parts(
    which: Drill,
    c: &str,
    end: i64,
    fcr: FcrAsOf,
) -> (&'static str, String, String, &'static str, String) {
    let window = fcr.window.num_microseconds().unwrap_or(i64::MAX);
    let due = to_micros(fcr.now - fcr.window);
    // Resolved: `one_touch=1 fcr=yes|no|pending`, as the report counts them.
    let resolved = format!(
        "'one_touch=' || CAST(f.one_touch AS TEXT) || ' fcr=' ||
         CASE WHEN f.final_resolved_at > {due} THEN 'pending'
              WHEN f.one_touch = 1 AND NOT EXISTS (SELECT 1 FROM conversation_facts n
                   WHERE n.customer_id = f.customer_id
                     AND n.created_at >= f.final_resolved_at
                     AND n.created_at < f.final_resolved_at + {window}
                     AND n.conversation_id <> f.conversation_id
                     AND n.customer_started = 1) THEN 'yes'
              ELSE 'no' END"
    );
    let null = || "NULL".to_owned();
    match which {
        Drill::FirstResponse => (
            "f.first_reply_at",
            format!("f.first_response_{c}"),
            null(),
            "conversation_facts f",
            format!("f.first_reply_at >= $1 AND f.first_reply_at < $2 AND f.first_response_{c} IS NOT NULL"),
        ),
        Drill::Turns => (
            "r.answered_at",
            format!("r.seconds_{c}"),
            null(),
            "turn_responses r JOIN conversation_facts f ON f.conversation_id = r.conversation_id",
            "r.answered_at >= $1 AND r.answered_at < $2".to_owned(),
        ),
        Drill::FirstResolution => (
            "f.first_resolved_at",
            format!("f.first_resolution_{c}"),
            null(),
            "conversation_facts f",
            format!("f.first_resolved_at >= $1 AND f.first_resolved_at < $2 AND f.first_resolution_{c} IS NOT NULL"),
        ),
        Drill::FullResolution => (
            "f.final_resolved_at",
            format!("f.full_resolution_{c}"),
            null(),
            "conversation_facts f",
            format!("f.final_resolved_at >= $1 AND f.final_resolved_at < $2 AND f.full_resolution_{c} IS NOT NULL"),
        ),
        Drill::Resolved => (
            "f.final_resolved_at",
            "CAST(NULL AS BIGINT)".to_owned(),
            resolved,
            "conversation_facts f",
            "f.final_resolved_at >= $1 AND f.final_resolved_at < $2 AND f.one_touch IS NOT NULL"
                .to_owned(),
        ),
        Drill::Unanswered => (
            "f.first_customer_at",
            "CAST(NULL AS BIGINT)".to_owned(),
            null(),
            "conversation_facts f",
            format!(
                "f.customer_started = 1 AND f.first_customer_at < {end}
                 AND (f.first_reply_at IS NULL OR f.first_reply_at >= {end})
                 AND (f.first_resolved_at IS NULL OR f.first_resolved_at >= {end})
                 AND $1 <= $2"
            ),
        ),
        Drill::Backlog => (
            "f.created_at",
            "CAST(NULL AS BIGINT)".to_owned(),
            "f.status".to_owned(),
            "conversation_facts f",
            format!(
                "f.created_at < {end} AND (f.final_resolved_at IS NULL OR f.final_resolved_at >= {end})
                 AND $1 <= $2"
            ),
        ),
        Drill::Answers => (
            "s.answered_at",
            "CAST(NULL AS BIGINT)".to_owned(),
            "s.asks".to_owned(),
            "surveys s LEFT JOIN conversation_facts f ON f.conversation_id = s.conversation_id",
            "s.answered_at >= $1 AND s.answered_at < $2".to_owned(),
        ),
        Drill::Sla => (
            "o.settled_at",
            "CAST(NULL AS BIGINT)".to_owned(),
            "o.target || CASE WHEN o.met = 1 THEN ' met' ELSE ' missed' END".to_owned(),
            "sla_outcomes o JOIN conversation_facts f ON f.conversation_id = o.conversation_id",
            format!(
                "o.settled_at >= $1 AND o.settled_at < $2 AND o.settled_at <= {}",
                to_micros(fcr.now)
            ),
        ),
    }
}

/// One group of resolved conversations for the service impact: its CSAT (`good` 4–5, `bad`
/// 1–3, `none`), FCR (`yes`, `no`, `none`: not counted) and first response (`fast`: within
/// the target, `slow`, `none`: no first response), how many, and how many of their customers
/// ordered again within the horizon after the resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpactCell {
    pub csat: String,
    pub fcr: String,
    pub first_response: String,
    pub conversations: u64,
    pub ordered_again: u64,
}

/// Customers with a conversation resolved (and still resolved) in the period, each by their
/// last resolution in it, whose horizon has passed by `now`, grouped as [`ImpactCell`]; and
/// how many were left out because it has not.
pub async fn service_impact(
    conn: &mut Conn,
    period: Period,
    now: Timestamp,
    window: chrono::Duration,
    horizon: chrono::Duration,
    target_seconds: i64,
    scope: &Scope,
) -> Result<(Vec<ImpactCell>, u64)> {
    let c = period.suffix();
    let micros = |d: chrono::Duration| d.num_microseconds().unwrap_or(i64::MAX);
    let mut args = vec![
        Arg::Int(to_micros(period.from)),
        Arg::Int(to_micros(period.to)),
        Arg::Int(to_micros(now - horizon)),
        Arg::Int(micros(window)),
        Arg::Int(micros(horizon)),
        Arg::Int(target_seconds),
    ];
    let scope_sql = scope.condition(&mut args);
    let sql = format!(
        "SELECT csat, fcr, fast, COUNT(*) AS n, COALESCE(SUM(again), 0) AS again FROM (
           SELECT
             CASE WHEN s.best IS NULL THEN 'none' WHEN s.best >= 4 THEN 'good' ELSE 'bad' END
               AS csat,
             CASE WHEN f.one_touch IS NULL THEN 'none'
                  WHEN f.one_touch = 1 AND NOT EXISTS (SELECT 1 FROM conversation_facts n
                       WHERE n.customer_id = f.customer_id
                         AND n.created_at >= f.final_resolved_at
                         AND n.created_at < f.final_resolved_at + $4
                         AND n.conversation_id <> f.conversation_id
                         AND n.customer_started = 1) THEN 'yes'
                  ELSE 'no' END AS fcr,
             CASE WHEN f.first_response_{c} IS NULL THEN 'none'
                  WHEN f.first_response_{c} <= $6 THEN 'fast' ELSE 'slow' END AS fast,
             CASE WHEN EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = f.customer_id
                                 AND o.placed_at > f.final_resolved_at
                                 AND o.placed_at <= f.final_resolved_at + $5
                                 AND o.status <> 'cancelled') THEN 1 ELSE 0 END AS again
           FROM conversation_facts f
           LEFT JOIN (SELECT conversation_id, MAX(csat) AS best FROM surveys
                      WHERE csat IS NOT NULL GROUP BY conversation_id) s
                  ON s.conversation_id = f.conversation_id
           WHERE f.final_resolved_at >= $1 AND f.final_resolved_at < $2
             AND f.final_resolved_at <= $3{scope_sql}
             AND NOT EXISTS (SELECT 1 FROM conversation_facts l
                             WHERE l.customer_id = f.customer_id
                               AND l.final_resolved_at > f.final_resolved_at
                               AND l.final_resolved_at < $2)
         ) AS resolved GROUP BY csat, fcr, fast"
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_all(&mut *conn)
        .await?;
    let n = |row: &AnyRow, c: &str| -> Result<u64> {
        Ok(u64::try_from(col::<i64>(row, c)?).unwrap_or(0))
    };
    let cells = rows
        .iter()
        .map(|row| {
            Ok(ImpactCell {
                csat: col(row, "csat")?,
                fcr: col(row, "fcr")?,
                first_response: col(row, "fast")?,
                conversations: n(row, "n")?,
                ordered_again: n(row, "again")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut args = vec![
        Arg::Int(to_micros(period.from)),
        Arg::Int(to_micros(period.to)),
        Arg::Int(to_micros(now - horizon)),
    ];
    let scope_sql = scope.condition(&mut args);
    let sql = format!(
        "SELECT COUNT(*) AS n FROM conversation_facts f
         WHERE f.final_resolved_at >= $1 AND f.final_resolved_at < $2
           AND f.final_resolved_at > $3{scope_sql}
           AND NOT EXISTS (SELECT 1 FROM conversation_facts l
                           WHERE l.customer_id = f.customer_id
                             AND l.final_resolved_at > f.final_resolved_at
                             AND l.final_resolved_at < $2)"
    );
    let row = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_one(&mut *conn)
        .await?;
    Ok((cells, n(&row, "n")?))
}

/// The rate to compare with: customers who ordered in the period and had no conversation
/// from the horizon before it to its end, and of them, those who ordered again within the
/// horizon after their first order in the period (only orders whose horizon has passed).
pub async fn impact_baseline(
    conn: &mut Conn,
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
    horizon: chrono::Duration,
    scope: &Scope,
) -> Result<Ratio> {
    let mut args = vec![
        Arg::Int(to_micros(from)),
        Arg::Int(to_micros(to)),
        Arg::Int(to_micros(now - horizon)),
        Arg::Int(horizon.num_microseconds().unwrap_or(i64::MAX)),
    ];
    // Of the filters, a segment applies (the others are about conversations these
    // customers did not have).
    let segment = order_scope(scope, &mut args);
    let sql = format!(
        "SELECT COUNT(*) AS n,
                COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM orders a
                    WHERE a.customer_id = b.customer_id AND a.placed_at > b.first_at
                      AND a.placed_at <= b.first_at + $4 AND a.status <> 'cancelled')
                  THEN 1 ELSE 0 END), 0) AS again
         FROM (SELECT o.customer_id, MIN(o.placed_at) AS first_at FROM orders o
               WHERE o.placed_at >= $1 AND o.placed_at < $2 AND o.status <> 'cancelled'{segment}
               GROUP BY o.customer_id) AS b
         WHERE b.first_at <= $3
           AND NOT EXISTS (SELECT 1 FROM conversation_facts f
                           WHERE f.customer_id = b.customer_id
                             AND f.created_at >= $1 - $4 AND f.created_at < $2)"
    );
    let row = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Ratio {
        numerator: u64::try_from(col::<i64>(&row, "again")?).unwrap_or(0),
        denominator: u64::try_from(col::<i64>(&row, "n")?).unwrap_or(0),
    })
}
