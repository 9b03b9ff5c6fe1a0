//! Business hours: named schedules, and which team or brand keeps which.

use seva_domain::hours::{BusinessHours, BusinessHoursId, Schedule};
use seva_domain::{BrandId, ConversationId, TeamId, Timestamp};
use sqlx::any::AnyRow;

use crate::rows::col;
use crate::{Conn, Result, StoreError, to_micros};

pub async fn insert(
    conn: &mut Conn,
    name: &str,
    schedule: &Schedule,
    now: Timestamp,
) -> Result<BusinessHoursId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO business_hours (name, time_zone, week, holidays, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(name)
    .bind(schedule.time_zone())
    .bind(schedule.week_text())
    .bind(schedule.holidays_text())
    .bind(to_micros(now))
    .fetch_one(&mut *conn)
    .await?;
    Ok(BusinessHoursId(id))
}

pub async fn update(
    conn: &mut Conn,
    id: BusinessHoursId,
    name: &str,
    schedule: &Schedule,
    now: Timestamp,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE business_hours SET name = $1, time_zone = $2, week = $3, holidays = $4,
                updated_at = $5
         WHERE id = $6",
    )
    .bind(name)
    .bind(schedule.time_zone())
    .bind(schedule.week_text())
    .bind(schedule.holidays_text())
    .bind(to_micros(now))
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Deletes a schedule no team or brand keeps; `Conflict` while one does.
pub async fn delete(conn: &mut Conn, id: BusinessHoursId) -> Result<()> {
    let users: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM teams WHERE business_hours_id = $1)
              + (SELECT COUNT(*) FROM brands WHERE business_hours_id = $1)",
    )
    .bind(id.0)
    .fetch_one(&mut *conn)
    .await?;
    if users > 0 {
        return Err(StoreError::Conflict {
            constraint: "business_hours in use".into(),
        });
    }
    let done = sqlx::query("DELETE FROM business_hours WHERE id = $1")
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn get(conn: &mut Conn, id: BusinessHoursId) -> Result<BusinessHours> {
    let row = sqlx::query("SELECT * FROM business_hours WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

pub async fn all(conn: &mut Conn) -> Result<Vec<BusinessHours>> {
    let rows = sqlx::query("SELECT * FROM business_hours ORDER BY name, id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Gives a brand a schedule, or none (always open).
pub async fn set_for_brand(
    conn: &mut Conn,
    brand: BrandId,
    hours: Option<BusinessHoursId>,
) -> Result<()> {
    let done = sqlx::query("UPDATE brands SET business_hours_id = $1 WHERE id = $2")
        .bind(hours.map(|h| h.0))
        .bind(brand.0)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Gives a team a schedule, or none (its brand's, else always open).
pub async fn set_for_team(
    conn: &mut Conn,
    team: TeamId,
    hours: Option<BusinessHoursId>,
) -> Result<()> {
    let done = sqlx::query("UPDATE teams SET business_hours_id = $1 WHERE id = $2")
        .bind(hours.map(|h| h.0))
        .bind(team.0)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The schedule a brand keeps, if any.
pub async fn of_brand(conn: &mut Conn, brand: BrandId) -> Result<Option<BusinessHours>> {
    let row = sqlx::query(
        "SELECT h.* FROM business_hours h JOIN brands b ON b.business_hours_id = h.id
         WHERE b.id = $1",
    )
    .bind(brand.0)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// A conversation's clock: its team's schedule, else its brand's, else none (always open).
pub async fn of_conversation(
    conn: &mut Conn,
    conversation: ConversationId,
) -> Result<Option<BusinessHours>> {
    let row = sqlx::query(
        "SELECT h.* FROM conversations c
           LEFT JOIN teams t ON t.id = c.team_id
           LEFT JOIN brands b ON b.id = c.brand_id
           JOIN business_hours h ON h.id = COALESCE(t.business_hours_id, b.business_hours_id)
         WHERE c.id = $1",
    )
    .bind(conversation.0)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

fn from_row(row: &AnyRow) -> Result<BusinessHours> {
    from_row_as(row, "")
}

/// Business hours from a row whose columns carry `prefix` (`hours_id`, `hours_week`, ...).
pub(crate) fn from_row_as(row: &AnyRow, prefix: &str) -> Result<BusinessHours> {
    let time_zone: String = col(row, &format!("{prefix}time_zone"))?;
    let week: String = col(row, &format!("{prefix}week"))?;
    let holidays: String = col(row, &format!("{prefix}holidays"))?;
    Ok(BusinessHours {
        id: BusinessHoursId(col(row, &format!("{prefix}id"))?),
        name: col(row, &format!("{prefix}name"))?,
        schedule: Schedule::from_text(&time_zone, &week, &holidays)
            .map_err(|e| StoreError::Corrupt(format!("business_hours: {e}")))?,
    })
}
