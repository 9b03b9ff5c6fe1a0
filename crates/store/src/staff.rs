//! Users, teams, brands, and the secrets that let users in: API tokens, browser sessions,
//! sign-in throttling and first-admin set-up links. Secrets are stored as SHA-256 hashes only.

use seva_domain::hours::BusinessHoursId;
use seva_domain::{Brand, BrandId, Role, Team, TeamId, Timestamp, User, UserId};
use sqlx::any::AnyRow;

use crate::rows::{col, opt_time, parse, time};
use crate::{Conn, Result, StoreError, to_micros};

// ---- users ----------------------------------------------------------------------------------

pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: Option<&'a str>,
    pub language: Option<&'a str>,
}

pub async fn insert_user(conn: &mut Conn, new: &NewUser<'_>, now: Timestamp) -> Result<UserId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, name, role, password_hash, language, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(new.email)
    .bind(new.name)
    .bind(new.role.as_str())
    .bind(new.password_hash)
    .bind(new.language)
    .bind(to_micros(now))
    .fetch_one(&mut *conn)
    .await?;
    Ok(UserId(id))
}

pub async fn user(conn: &mut Conn, id: UserId) -> Result<User> {
    let row = sqlx::query("SELECT * FROM users WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    user_from_row(&row)
}

/// The user with this (lower-cased) email and their password hash, if they have one.
pub async fn user_by_email(conn: &mut Conn, email: &str) -> Result<Option<(User, Option<String>)>> {
    let row = sqlx::query("SELECT * FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|row| Ok((user_from_row(&row)?, col(&row, "password_hash")?)))
        .transpose()
}

pub async fn users(conn: &mut Conn) -> Result<Vec<User>> {
    let rows = sqlx::query("SELECT * FROM users ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(user_from_row).collect()
}

pub async fn set_password(conn: &mut Conn, id: UserId, hash: &str, now: Timestamp) -> Result<()> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id.0)
        .bind(hash)
        .bind(to_micros(now))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn count_active_admins(conn: &mut Conn) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND deactivated_at IS NULL",
    )
    .fetch_one(&mut *conn)
    .await?)
}

fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: UserId(col(row, "id")?),
        email: col(row, "email")?,
        name: col(row, "name")?,
        role: parse(row, "role")?,
        active: col::<Option<i64>>(row, "deactivated_at")?.is_none(),
        language: col(row, "language")?,
        time_zone: col(row, "time_zone")?,
        digits: col::<Option<String>>(row, "digits")?
            .map(|d| d.parse())
            .transpose()
            .map_err(|_| StoreError::Corrupt("users.digits".to_owned()))?,
        created_at: time(row, "created_at")?,
    })
}

/// The interface preferences a user sets for themselves.
pub struct Preferences<'a> {
    pub language: Option<&'a str>,
    pub time_zone: Option<&'a str>,
    pub digits: Option<seva_domain::Digits>,
}

pub async fn set_preferences(
    conn: &mut Conn,
    id: UserId,
    prefs: &Preferences<'_>,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET language = $2, time_zone = $3, digits = $4, updated_at = $5 WHERE id = $1",
    )
    .bind(id.0)
    .bind(prefs.language)
    .bind(prefs.time_zone)
    .bind(prefs.digits.map(seva_domain::Digits::as_str))
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The teams a user belongs to.
pub async fn teams_of(conn: &mut Conn, user: UserId) -> Result<Vec<TeamId>> {
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT team_id FROM team_members WHERE user_id = $1 ORDER BY team_id")
            .bind(user.0)
            .fetch_all(&mut *conn)
            .await?;
    Ok(ids.into_iter().map(TeamId).collect())
}

// ---- saved views ----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedView {
    pub id: i64,
    pub name: String,
    /// The inbox page's query string.
    pub query: String,
}

/// Saves a view, replacing the user's view of the same name.
pub async fn save_view(
    conn: &mut Conn,
    user: UserId,
    name: &str,
    query: &str,
    now: Timestamp,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO saved_views (user_id, name, query, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, name) DO UPDATE SET query = excluded.query
         RETURNING id",
    )
    .bind(user.0)
    .bind(name)
    .bind(query)
    .bind(to_micros(now))
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

pub async fn saved_views(conn: &mut Conn, user: UserId) -> Result<Vec<SavedView>> {
    let rows =
        sqlx::query("SELECT id, name, query FROM saved_views WHERE user_id = $1 ORDER BY name")
            .bind(user.0)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|row| {
            Ok(SavedView {
                id: col(row, "id")?,
                name: col(row, "name")?,
                query: col(row, "query")?,
            })
        })
        .collect()
}

/// Deletes one of the user's views; `false` when they have no view with this id.
pub async fn delete_view(conn: &mut Conn, user: UserId, id: i64) -> Result<bool> {
    let done = sqlx::query("DELETE FROM saved_views WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user.0)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

// ---- teams and brands -----------------------------------------------------------------------

pub async fn insert_team(conn: &mut Conn, name: &str, now: Timestamp) -> Result<TeamId> {
    let id: i64 =
        sqlx::query_scalar("INSERT INTO teams (name, created_at) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(to_micros(now))
            .fetch_one(&mut *conn)
            .await?;
    Ok(TeamId(id))
}

pub async fn add_team_member(conn: &mut Conn, team: TeamId, user: UserId) -> Result<()> {
    sqlx::query(
        "INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(team.0)
    .bind(user.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn teams(conn: &mut Conn) -> Result<Vec<Team>> {
    let rows = sqlx::query("SELECT id, name, business_hours_id FROM teams ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Team {
                id: TeamId(col(r, "id")?),
                name: col(r, "name")?,
                business_hours_id: col::<Option<i64>>(r, "business_hours_id")?.map(BusinessHoursId),
            })
        })
        .collect()
}

pub async fn team_exists(conn: &mut Conn, id: TeamId) -> Result<bool> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT id FROM teams WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

pub async fn insert_brand(conn: &mut Conn, name: &str, now: Timestamp) -> Result<BrandId> {
    let id: i64 =
        sqlx::query_scalar("INSERT INTO brands (name, created_at) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(to_micros(now))
            .fetch_one(&mut *conn)
            .await?;
    Ok(BrandId(id))
}

pub async fn brands(conn: &mut Conn) -> Result<Vec<Brand>> {
    let rows = sqlx::query("SELECT id, name, business_hours_id FROM brands ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Brand {
                id: BrandId(col(r, "id")?),
                name: col(r, "name")?,
                business_hours_id: col::<Option<i64>>(r, "business_hours_id")?.map(BusinessHoursId),
            })
        })
        .collect()
}

pub async fn brand_exists(conn: &mut Conn, id: BrandId) -> Result<bool> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT id FROM brands WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

// ---- API tokens -----------------------------------------------------------------------------

pub async fn insert_token(
    conn: &mut Conn,
    user: UserId,
    label: &str,
    token_hash: &str,
    now: Timestamp,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO api_tokens (user_id, label, token_hash, created_at) VALUES ($1, $2, $3, $4)
         RETURNING id",
    )
    .bind(user.0)
    .bind(label)
    .bind(token_hash)
    .bind(to_micros(now))
    .fetch_one(&mut *conn)
    .await?)
}

/// The active user owning an unrevoked token with this hash.
pub async fn user_by_token(conn: &mut Conn, token_hash: &str) -> Result<Option<User>> {
    let row = sqlx::query(
        "SELECT u.* FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.deactivated_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(user_from_row).transpose()
}

// ---- browser sessions -----------------------------------------------------------------------

pub async fn insert_session(
    conn: &mut Conn,
    token_hash: &str,
    user: UserId,
    csrf_token: &str,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(user.0)
    .bind(csrf_token)
    .bind(to_micros(now))
    .bind(to_micros(expires_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The signed-in user and the session's CSRF token, if the session is valid at `now`.
pub async fn session(
    conn: &mut Conn,
    token_hash: &str,
    now: Timestamp,
) -> Result<Option<(User, String)>> {
    let row = sqlx::query(
        "SELECT u.*, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.deactivated_at IS NULL",
    )
    .bind(token_hash)
    .bind(to_micros(now))
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| Ok((user_from_row(&row)?, col(&row, "csrf_token")?)))
        .transpose()
}

pub async fn delete_session(conn: &mut Conn, token_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete_expired_sessions(conn: &mut Conn, now: Timestamp) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(to_micros(now))
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

// ---- sign-in throttling ---------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    pub failures: i64,
    pub last_failure_at: Timestamp,
    pub locked_until: Option<Timestamp>,
}

pub async fn throttle(conn: &mut Conn, email: &str) -> Result<Option<Throttle>> {
    let row = sqlx::query("SELECT * FROM login_throttle WHERE email = $1")
        .bind(email)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|row| {
        Ok(Throttle {
            failures: col(&row, "failures")?,
            last_failure_at: time(&row, "last_failure_at")?,
            locked_until: opt_time(&row, "locked_until")?,
        })
    })
    .transpose()
}

pub async fn save_throttle(conn: &mut Conn, email: &str, t: &Throttle) -> Result<()> {
    sqlx::query(
        "INSERT INTO login_throttle (email, failures, last_failure_at, locked_until)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (email) DO UPDATE SET failures = $2, last_failure_at = $3, locked_until = $4",
    )
    .bind(email)
    .bind(t.failures)
    .bind(to_micros(t.last_failure_at))
    .bind(t.locked_until.map(to_micros))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn clear_throttle(conn: &mut Conn, email: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_throttle WHERE email = $1")
        .bind(email)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// ---- first-admin set-up links ---------------------------------------------------------------

/// Replaces any earlier set-up link with this one: only the newest printed link works.
pub async fn replace_setup_token(
    conn: &mut Conn,
    token_hash: &str,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<()> {
    sqlx::query("DELETE FROM setup_tokens WHERE used_at IS NULL")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(to_micros(now))
    .bind(to_micros(expires_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks the link used if it is valid at `now`; `false` if it is unknown, used or expired.
pub async fn use_setup_token(conn: &mut Conn, token_hash: &str, now: Timestamp) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE setup_tokens SET used_at = $2
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn setup_token_valid(conn: &mut Conn, token_hash: &str, now: Timestamp) -> Result<bool> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT token_hash FROM setup_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(to_micros(now))
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}
