//! Surveys: each brand's settings (brand 0: the workspace's default) and every invitation
//! with its answers.

use seva_domain::kpi::Answers;
use seva_domain::survey::{
    Survey, SurveyChannel, SurveyKind, SurveySettings, kinds_from_text, kinds_to_text,
};
use seva_domain::{BrandId, ConversationId, CustomerId, SurveyId, Timestamp};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::rows::{col, opt_time, parse, time};
use crate::{Conn, Result, StoreError, to_micros};

/// The settings row of conversations without a brand, and of relationship NPS.
pub const DEFAULT_BRAND: i64 = 0;

fn settings_of(row: &AnyRow) -> Result<SurveySettings> {
    let kinds: String = col(row, "on_resolution")?;
    Ok(SurveySettings {
        on_resolution: kinds_from_text(&kinds).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        quiet_days: col(row, "quiet_days")?,
        relationship_nps_days: col(row, "relationship_nps_days")?,
    })
}

/// A brand's settings (`DEFAULT_BRAND` for the default); `None` when never saved.
pub async fn settings(conn: &mut Conn, brand: i64) -> Result<Option<SurveySettings>> {
    let row = sqlx::query(
        "SELECT on_resolution, quiet_days, relationship_nps_days FROM survey_settings
         WHERE brand_id = $1",
    )
    .bind(brand)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(settings_of).transpose()
}

/// Every saved setting, by brand.
pub async fn all_settings(conn: &mut Conn) -> Result<Vec<(i64, SurveySettings)>> {
    let rows = sqlx::query(
        "SELECT brand_id, on_resolution, quiet_days, relationship_nps_days FROM survey_settings
         ORDER BY brand_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| Ok((col(row, "brand_id")?, settings_of(row)?)))
        .collect()
}

pub async fn save_settings(
    conn: &mut Conn,
    brand: i64,
    s: &SurveySettings,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO survey_settings (brand_id, on_resolution, quiet_days, relationship_nps_days,
                                      updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (brand_id) DO UPDATE SET on_resolution = excluded.on_resolution,
             quiet_days = excluded.quiet_days,
             relationship_nps_days = excluded.relationship_nps_days,
             updated_at = excluded.updated_at",
    )
    .bind(brand)
    .bind(kinds_to_text(&s.on_resolution))
    .bind(s.quiet_days)
    .bind(s.relationship_nps_days)
    .bind(to_micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// When the customer was last asked anything; `nps_only` looks at invitations asking NPS.
pub async fn last_asked(
    conn: &mut Conn,
    customer: CustomerId,
    nps_only: bool,
) -> Result<Option<Timestamp>> {
    let sql = if nps_only {
        "SELECT MAX(created_at) FROM surveys WHERE customer_id = $1 AND asks LIKE '%nps%'"
    } else {
        "SELECT MAX(created_at) FROM surveys WHERE customer_id = $1"
    };
    let at: Option<i64> = sqlx::query_scalar(sql)
        .bind(customer.0)
        .fetch_one(&mut *conn)
        .await?;
    at.map(crate::from_micros).transpose()
}

#[derive(Debug, Clone)]
pub struct NewSurvey<'a> {
    pub customer: CustomerId,
    pub conversation: Option<ConversationId>,
    pub brand: Option<BrandId>,
    pub channel: SurveyChannel,
    pub asks: &'a [SurveyKind],
    pub at: Timestamp,
}

pub async fn insert(conn: &mut Conn, new: &NewSurvey<'_>) -> Result<SurveyId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO surveys (customer_id, conversation_id, brand_id, channel, asks, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(new.customer.0)
    .bind(new.conversation.map(|c| c.0))
    .bind(new.brand.map(|b| b.0))
    .bind(new.channel.as_str())
    .bind(kinds_to_text(new.asks))
    .bind(to_micros(new.at))
    .fetch_one(&mut *conn)
    .await?;
    Ok(SurveyId(id))
}

const COLUMNS: &str = "id, customer_id, conversation_id, brand_id, channel, asks, csat, ces, nps,
                       comment, created_at, answered_at";

fn survey_of(row: &AnyRow) -> Result<Survey> {
    let asks: String = col(row, "asks")?;
    let score = |name: &str| -> Result<Option<u8>> {
        Ok(col::<Option<i64>>(row, name)?.and_then(|s| u8::try_from(s).ok()))
    };
    Ok(Survey {
        id: SurveyId(col(row, "id")?),
        customer_id: CustomerId(col(row, "customer_id")?),
        conversation_id: col::<Option<i64>>(row, "conversation_id")?.map(ConversationId),
        brand_id: col::<Option<i64>>(row, "brand_id")?.map(BrandId),
        channel: parse(row, "channel")?,
        asks: kinds_from_text(&asks).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        csat: score("csat")?,
        ces: score("ces")?,
        nps: score("nps")?,
        comment: col(row, "comment")?,
        created_at: time(row, "created_at")?,
        answered_at: opt_time(row, "answered_at")?,
    })
}

pub async fn get(conn: &mut Conn, id: SurveyId) -> Result<Survey> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM surveys WHERE id = $1"
    )))
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    survey_of(&row)
}

/// A conversation's surveys, oldest first.
pub async fn of_conversation(conn: &mut Conn, id: ConversationId) -> Result<Vec<Survey>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM surveys WHERE conversation_id = $1 ORDER BY id"
    )))
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(survey_of).collect()
}

/// A customer's surveys, newest first.
pub async fn of_customer(conn: &mut Conn, id: CustomerId) -> Result<Vec<Survey>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM surveys WHERE customer_id = $1 ORDER BY id DESC LIMIT 200"
    )))
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(survey_of).collect()
}

/// Records a score (a later click changes it); the first answer's time stays.
pub async fn answer(
    conn: &mut Conn,
    id: SurveyId,
    kind: SurveyKind,
    score: u8,
    at: Timestamp,
) -> Result<()> {
    // The column name comes from a closed set, never from input.
    let column = kind.as_str();
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE surveys SET {column} = $2, answered_at = COALESCE(answered_at, $3) WHERE id = $1"
    )))
    .bind(id.0)
    .bind(i64::from(score))
    .bind(to_micros(at))
    .execute(&mut *conn)
    .await?;
    // A changed answer counts on the day of the first: reports may hold that day.
    let first: Option<i64> = sqlx::query_scalar("SELECT answered_at FROM surveys WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .flatten();
    if let Some(first) = first {
        crate::kpi_days::answer_changed(conn, first).await?;
    }
    Ok(())
}

pub async fn comment(conn: &mut Conn, id: SurveyId, text: &str) -> Result<()> {
    sqlx::query("UPDATE surveys SET comment = $2 WHERE id = $1")
        .bind(id.0)
        .bind(text)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Survey answers given (first answered) in `[from, to)`: CSAT, CES and NPS counts by score.
pub async fn answers_in(
    conn: &mut Conn,
    from: Timestamp,
    to: Timestamp,
) -> Result<[(SurveyKind, Answers); 3]> {
    let rows = sqlx::query(
        "SELECT 'csat' AS kind, csat AS score, COUNT(*) AS n FROM surveys
         WHERE answered_at >= $1 AND answered_at < $2 AND csat IS NOT NULL GROUP BY csat
         UNION ALL
         SELECT 'ces', ces, COUNT(*) FROM surveys
         WHERE answered_at >= $1 AND answered_at < $2 AND ces IS NOT NULL GROUP BY ces
         UNION ALL
         SELECT 'nps', nps, COUNT(*) FROM surveys
         WHERE answered_at >= $1 AND answered_at < $2 AND nps IS NOT NULL GROUP BY nps",
    )
    .bind(to_micros(from))
    .bind(to_micros(to))
    .fetch_all(&mut *conn)
    .await?;
    let mut out = [
        (SurveyKind::Csat, Answers::default()),
        (SurveyKind::Ces, Answers::default()),
        (SurveyKind::Nps, Answers::default()),
    ];
    for row in &rows {
        let kind: SurveyKind = parse(row, "kind")?;
        let score: i64 = col(row, "score")?;
        let n: i64 = col(row, "n")?;
        if let (Some((_, answers)), Ok(score)) = (
            out.iter_mut().find(|(k, _)| *k == kind),
            usize::try_from(score),
        ) && let Some(slot) = answers.by_score.get_mut(score)
        {
            *slot += u64::try_from(n).unwrap_or(0);
        }
    }
    Ok(out)
}

/// Customers with an email address who ordered since `since`, were not asked for NPS since
/// `nps_since` and were not asked anything since `quiet_since`: the next batch for
/// relationship NPS (asked by email only: without a conversation the portal has no place
/// to ask).
pub async fn relationship_nps_due(
    conn: &mut Conn,
    since: Timestamp,
    nps_since: Timestamp,
    quiet_since: Timestamp,
    limit: i64,
) -> Result<Vec<CustomerId>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT o.customer_id FROM orders o
         JOIN customers c ON c.id = o.customer_id
         WHERE o.placed_at >= $1 AND o.status <> 'cancelled'
           AND c.merged_into IS NULL AND c.erased_at IS NULL
           AND EXISTS (SELECT 1 FROM customer_identities i
                       WHERE i.customer_id = o.customer_id AND i.kind = 'email')
           AND NOT EXISTS (SELECT 1 FROM surveys s WHERE s.customer_id = o.customer_id
                           AND (s.created_at >= $4
                                OR (s.created_at >= $2 AND s.asks LIKE '%nps%')))
         ORDER BY o.customer_id LIMIT $3",
    )
    .bind(to_micros(since))
    .bind(to_micros(nps_since))
    .bind(limit)
    .bind(to_micros(quiet_since))
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids.into_iter().map(CustomerId).collect())
}
