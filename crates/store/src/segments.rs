//! Saved segments, and their rules turned into one SQL condition over `customers`, so a count,
//! a member list and the inbox filter all read the live data.

use std::fmt::Write as _;

use chrono::Duration;
use seva_domain::segment::{Condition, Rules, Segment};
use seva_domain::{CustomerId, SegmentId, Timestamp, UserId};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::{Arg, bind_all, col};
use crate::{Conn, Result, StoreError, to_micros};

/// The SQL condition "customer `alias` is in the segment", its values appended to `args`
/// (placeholders numbered after those already there). Merged and erased customers are never
/// members.
pub(crate) fn condition(rules: &Rules, now: Timestamp, alias: &str, args: &mut Vec<Arg>) -> String {
    let mut sql = format!("{alias}.merged_into IS NULL AND {alias}.erased_at IS NULL");
    let arg = |args: &mut Vec<Arg>, value: Arg| {
        args.push(value);
        format!("${}", args.len())
    };
    let since = |days: u32| to_micros(now - Duration::days(i64::from(days)));
    for rule in &rules.all {
        match rule {
            Condition::SpentMoreThan {
                currency,
                amount,
                days,
            } => {
                let currency = arg(args, Arg::Text(currency.clone()));
                let window = days
                    .map(|d| format!(" AND o.placed_at >= {}", arg(args, Arg::Int(since(d)))))
                    .unwrap_or_default();
                let amount = arg(args, Arg::Int(*amount));
                let _ = write!(
                    sql,
                    " AND (SELECT COALESCE(SUM(o.total - o.refunded), 0) FROM orders o \
                     WHERE o.customer_id = {alias}.id AND o.status <> 'cancelled' \
                     AND o.currency = {currency}{window}) > {amount}"
                );
            }
            Condition::OrdersAtLeast { count } => {
                let count = arg(args, Arg::Int(i64::from(*count)));
                let _ = write!(
                    sql,
                    " AND (SELECT COUNT(*) FROM orders o WHERE o.customer_id = {alias}.id \
                     AND o.status <> 'cancelled') >= {count}"
                );
            }
            Condition::NoOrderWithin { days } => {
                let since = arg(args, Arg::Int(since(*days)));
                let _ = write!(
                    sql,
                    " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = {alias}.id \
                     AND o.placed_at >= {since})"
                );
            }
            Condition::Language { language } => {
                let exact = arg(args, Arg::Text(language.clone()));
                let regional = arg(args, Arg::Text(format!("{language}-%")));
                let _ = write!(
                    sql,
                    " AND ({alias}.language = {exact} OR {alias}.language LIKE {regional})"
                );
            }
            Condition::Tag { tag } => {
                let tag = arg(args, Arg::Text(tag.clone()));
                let _ = write!(
                    sql,
                    " AND EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = {alias}.id \
                     AND t.tag = {tag})"
                );
            }
            Condition::Contacted { channel, days } => {
                let channel = arg(args, Arg::Text(channel.as_str().to_owned()));
                let window = days
                    .map(|d| format!(" AND v.created_at >= {}", arg(args, Arg::Int(since(d)))))
                    .unwrap_or_default();
                let _ = write!(
                    sql,
                    " AND EXISTS (SELECT 1 FROM conversations v WHERE v.customer_id = {alias}.id \
                     AND v.channel = {channel}{window})"
                );
            }
            Condition::BadCsat { days } => {
                let window = days
                    .map(|d| format!(" AND s.answered_at >= {}", arg(args, Arg::Int(since(d)))))
                    .unwrap_or_default();
                let _ = write!(
                    sql,
                    " AND EXISTS (SELECT 1 FROM surveys s WHERE s.customer_id = {alias}.id \
                     AND s.csat <= 3{window})"
                );
            }
        }
    }
    sql
}

/// How many customers are in the segment now.
pub async fn count(conn: &mut Conn, rules: &Rules, now: Timestamp) -> Result<i64> {
    let mut args = Vec::new();
    let clause = condition(rules, now, "c", &mut args);
    let sql = format!("SELECT COUNT(*) AS n FROM customers c WHERE {clause}");
    let row = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_one(&mut *conn)
        .await?;
    col(&row, "n")
}

/// A page of the segment's members, by id, after `after`.
pub async fn members(
    conn: &mut Conn,
    rules: &Rules,
    now: Timestamp,
    after: Option<CustomerId>,
    limit: i64,
) -> Result<Vec<CustomerId>> {
    let mut args = Vec::new();
    let mut clause = condition(rules, now, "c", &mut args);
    if let Some(after) = after {
        args.push(Arg::Int(after.0));
        let _ = write!(clause, " AND c.id > ${}", args.len());
    }
    args.push(Arg::Int(limit));
    let sql = format!(
        "SELECT c.id FROM customers c WHERE {clause} ORDER BY c.id LIMIT ${}",
        args.len()
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| Ok(CustomerId(col(r, "id")?))).collect()
}

fn rules_json(rules: &Rules) -> Result<String> {
    serde_json::to_string(rules).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Saves a new segment; a taken name is `Conflict`.
pub async fn insert(
    conn: &mut Conn,
    name: &str,
    rules: &Rules,
    by: Option<UserId>,
    at: Timestamp,
) -> Result<SegmentId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO segments (name, rules, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(name)
    .bind(rules_json(rules)?)
    .bind(by.map(|u| u.0))
    .bind(to_micros(at))
    .fetch_one(&mut *conn)
    .await?;
    Ok(SegmentId(id))
}

pub async fn update(
    conn: &mut Conn,
    id: SegmentId,
    name: &str,
    rules: &Rules,
    at: Timestamp,
) -> Result<()> {
    let done =
        sqlx::query("UPDATE segments SET name = $2, rules = $3, updated_at = $4 WHERE id = $1")
            .bind(id.0)
            .bind(name)
            .bind(rules_json(rules)?)
            .bind(to_micros(at))
            .execute(&mut *conn)
            .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: SegmentId) -> Result<()> {
    let done = sqlx::query("DELETE FROM segments WHERE id = $1")
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn get(conn: &mut Conn, id: SegmentId) -> Result<Segment> {
    let row = sqlx::query("SELECT * FROM segments WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

pub async fn all(conn: &mut Conn) -> Result<Vec<Segment>> {
    let rows = sqlx::query("SELECT * FROM segments ORDER BY name")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

fn from_row(row: &AnyRow) -> Result<Segment> {
    let rules: String = col(row, "rules")?;
    Ok(Segment {
        id: SegmentId(col(row, "id")?),
        name: col(row, "name")?,
        rules: serde_json::from_str(&rules)
            .map_err(|e| StoreError::Corrupt(format!("segments.rules: {e}")))?,
    })
}
