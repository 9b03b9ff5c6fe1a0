//! `/reports/kpis`: every KPI Seva measures so far, for whole days in a time zone, on the
//! calendar or the business-hours clock, with the counts behind each figure so other tools can
//! check it. Definitions: PRODUCT.md's KPI table.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use seva_app::reports::{Figures, KpiReport, ReportQuery, ReportScope, Step};
use seva_domain::kpi::{Answers, CHURN_HORIZON_DAYS, Ratio, Stats};
use seva_domain::survey::SurveyKind;
use seva_domain::{BrandId, Channel, SegmentId, TeamId, UserId};
use seva_store::reports::{CustomerDrill, Dimension, Drill};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{ApiCaller, ApiQuery};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reports/kpis", get(show_kpis))
        .route("/reports/kpis/conversations", get(list_kpi_conversations))
        .route("/reports/kpis/customers", get(list_kpi_customers))
        .route("/reports/service-impact", get(show_service_impact))
}

#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KpiQuery {
    /// First day, in `tz` (2026-11-01).
    pub from: String,
    /// Last day, included.
    pub to: String,
    /// IANA time zone of the days (default UTC).
    pub tz: Option<String>,
    /// `calendar` (default) or `business`.
    pub clock: Option<String>,
    /// Only conversations on this channel (`email`, `chat`, ...).
    pub channel: Option<String>,
    /// Only conversations of this team, agent (assignee), brand, tag or customer segment.
    pub team: Option<i64>,
    pub agent: Option<i64>,
    pub brand: Option<i64>,
    pub tag: Option<String>,
    pub segment: Option<i64>,
    /// A breakdown: `channel`, `team`, `agent`, `brand`, `tag` or `segment` (each saved
    /// segment as the filter, in place of `segment`).
    pub by: Option<String>,
    /// A series: `day` or `week`.
    pub step: Option<String>,
    /// `previous`: the same figures for the previous period of the same length.
    pub compare: Option<String>,
    /// Drill-downs only: which figure's conversations (see `/reports/kpis/conversations`)
    /// or customers (see `/reports/kpis/customers`).
    pub figure: Option<String>,
}

/// The report's question, read from the query string, with precise errors.
pub(crate) fn report_query(q: &KpiQuery) -> Result<(ReportQuery, String), ApiError> {
    let invalid = |message: &str| ApiError::new(ErrorCode::InvalidQuery, message.to_owned());
    let day = |raw: &str, name: &str| {
        NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .map_err(|_| invalid(&format!("{name} must be a date such as 2026-11-01")))
    };
    let tz_name =
        q.tz.clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "UTC".to_owned());
    let tz: chrono_tz::Tz = tz_name
        .parse()
        .map_err(|_| invalid("tz must be an IANA time zone such as Asia/Tehran"))?;
    let business_clock = match q.clock.as_deref().unwrap_or("calendar") {
        "calendar" | "" => false,
        "business" => true,
        _ => return Err(invalid("clock must be calendar or business")),
    };
    let by = match q.by.as_deref().unwrap_or("") {
        "" => None,
        "channel" => Some(Dimension::Channel),
        "team" => Some(Dimension::Team),
        "agent" => Some(Dimension::Agent),
        "brand" => Some(Dimension::Brand),
        "tag" => Some(Dimension::Tag),
        "segment" => Some(Dimension::Segment),
        _ => {
            return Err(invalid(
                "by must be channel, team, agent, brand, tag or segment",
            ));
        }
    };
    let step = match q.step.as_deref().unwrap_or("") {
        "" => None,
        "day" => Some(Step::Day),
        "week" => Some(Step::Week),
        _ => return Err(invalid("step must be day or week")),
    };
    let compare = match q.compare.as_deref().unwrap_or("") {
        "" => false,
        "previous" => true,
        _ => return Err(invalid("compare must be previous")),
    };
    let channel = q
        .channel
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<Channel>()
                .map_err(|_| invalid("channel must be one of Seva's channels, e.g. email"))
        })
        .transpose()?;
    let tag = q.tag.clone().filter(|t| !t.is_empty());
    let query = ReportQuery {
        from: day(&q.from, "from")?,
        to: day(&q.to, "to")?,
        tz,
        business_clock,
        scope: ReportScope {
            channel,
            team: q.team.map(TeamId),
            agent: q.agent.map(UserId),
            brand: q.brand.map(BrandId),
            tag,
            segment: q.segment.map(SegmentId),
        },
        by,
        step,
        compare,
    };
    Ok((query, tz_name))
}

/// Durations in seconds: how many, and their median (of an even count, the mean of the middle
/// two), p90 (nearest rank) and mean.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DurationJson {
    pub count: u64,
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<i64>,
    pub mean_seconds: Option<f64>,
}

impl From<Stats> for DurationJson {
    fn from(s: Stats) -> Self {
        Self {
            count: s.count,
            median_seconds: s.median,
            p90_seconds: s.p90,
            mean_seconds: s.mean,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RatioJson {
    pub numerator: u64,
    pub denominator: u64,
    /// numerator ÷ denominator × 100; null when the denominator is 0.
    pub percent: Option<f64>,
}

impl From<Ratio> for RatioJson {
    fn from(r: Ratio) -> Self {
        Self {
            numerator: r.numerator,
            denominator: r.denominator,
            percent: r.percent(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnansweredJson {
    /// Conversations whose customer still waits for a first reply at the period's end.
    pub count: i64,
    pub oldest_wait_seconds: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FcrJson {
    #[serde(flatten)]
    pub ratio: RatioJson,
    /// Resolved in the period, still inside the repeat window: in neither count.
    pub pending: u64,
    pub repeat_window_days: i64,
}

/// Answers to one survey question: how many gave each score, and the question's figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SurveyJson {
    pub answers: u64,
    /// Score → how many answers gave it.
    pub by_score: BTreeMap<u8, u64>,
    pub mean: Option<f64>,
    /// CSAT: answers of 4–5 ÷ all; CES: answers of 5–7 ÷ all. Absent for NPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub satisfied: Option<RatioJson>,
    /// NPS only: % of 9–10 − % of 0–6.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nps: Option<NpsJson>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NpsJson {
    pub promoters: u64,
    pub detractors: u64,
    pub score: Option<f64>,
}

fn survey_json(a: Answers, kind: SurveyKind) -> SurveyJson {
    let by_score = kind
        .scale()
        .map(|s| (s, a.by_score[usize::from(s)]))
        .filter(|(_, n)| *n > 0)
        .collect();
    SurveyJson {
        answers: a.count(),
        by_score,
        mean: a.mean(),
        satisfied: match kind {
            SurveyKind::Csat => Some(a.csat().into()),
            SurveyKind::Ces => Some(a.ces_agree().into()),
            SurveyKind::Nps => None,
        },
        nps: (kind == SurveyKind::Nps).then(|| {
            let n = a.nps();
            NpsJson {
                promoters: n.promoters,
                detractors: n.detractors,
                score: n.score(),
            }
        }),
    }
}

/// The figures that add up per conversation (for the period, a day or week, a breakdown row).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FiguresJson {
    pub first_response: DurationJson,
    pub average_response: DurationJson,
    pub first_resolution: DurationJson,
    pub full_resolution: DurationJson,
    pub one_touch_resolution: RatioJson,
    pub first_contact_resolution: FcrJson,
    pub csat: SurveyJson,
    pub ces: SurveyJson,
    pub nps: SurveyJson,
    pub sla_attainment: SlaJson,
}

/// SLA targets met ÷ targets due in the period, per target. A target counts when it was met
/// (at the reply or resolution) or breached (at the breach, replied since or not); targets
/// still running count in neither.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SlaJson {
    pub first_reply: RatioJson,
    pub next_reply: RatioJson,
    pub resolution: RatioJson,
    /// All three together.
    pub all: RatioJson,
}

fn sla_json(a: &seva_domain::sla::Attainment) -> SlaJson {
    let [first_reply, next_reply, resolution] = *a;
    SlaJson {
        first_reply: first_reply.into(),
        next_reply: next_reply.into(),
        resolution: resolution.into(),
        all: seva_domain::sla::total(a).into(),
    }
}

fn figures_json(f: &Figures) -> FiguresJson {
    FiguresJson {
        first_response: f.first_response.into(),
        average_response: f.average_response.into(),
        first_resolution: f.first_resolution.into(),
        full_resolution: f.full_resolution.into(),
        one_touch_resolution: f.one_touch.into(),
        first_contact_resolution: FcrJson {
            ratio: f.fcr.into(),
            pending: f.fcr_pending,
            repeat_window_days: seva_domain::kpi::REPEAT_WINDOW_DAYS,
        },
        csat: survey_json(f.csat, SurveyKind::Csat),
        ces: survey_json(f.ces, SurveyKind::Ces),
        nps: survey_json(f.nps, SurveyKind::Nps),
        sla_attainment: sla_json(&f.sla),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BacklogJson {
    pub total: i64,
    pub by_status: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChurnJson {
    pub count: i64,
    pub horizon_days: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeriesJson {
    /// Where the day (or week) starts.
    pub start: DateTime<Utc>,
    #[serde(flatten)]
    pub figures: FiguresJson,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BreakdownJson {
    /// The channel, or the team's, agent's, brand's or segment's id, or the tag; null: none.
    pub key: Option<String>,
    #[serde(flatten)]
    pub figures: FiguresJson,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KpiJson {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub time_zone: String,
    /// `calendar` or `business`.
    pub clock: String,
    #[serde(flatten)]
    pub figures: FiguresJson,
    pub unanswered: UnansweredJson,
    pub backlog: BacklogJson,
    pub repeat_purchase_rate: RatioJson,
    pub retention_rate: RatioJson,
    pub churned_customers: ChurnJson,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub breakdown: Vec<BreakdownJson>,
    /// The previous period of the same length (with `compare=previous`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub previous: Option<Box<KpiJson>>,
}

pub(crate) fn to_json(r: &KpiReport, time_zone: &str, clock: &str) -> KpiJson {
    KpiJson {
        from: r.from,
        to: r.to,
        time_zone: time_zone.to_owned(),
        clock: clock.to_owned(),
        figures: figures_json(&r.figures),
        unanswered: UnansweredJson {
            count: r.unanswered,
            oldest_wait_seconds: r.unanswered_oldest_seconds,
        },
        backlog: BacklogJson {
            total: r.backlog.iter().map(|(_, n)| n).sum(),
            by_status: r.backlog.iter().cloned().collect(),
        },
        repeat_purchase_rate: r.repeat_purchase.into(),
        retention_rate: r.retention.into(),
        churned_customers: ChurnJson {
            count: r.churned,
            horizon_days: CHURN_HORIZON_DAYS,
        },
        series: r
            .series
            .iter()
            .map(|(start, f)| SeriesJson {
                start: *start,
                figures: figures_json(f),
            })
            .collect(),
        breakdown: r
            .breakdown
            .iter()
            .map(|(key, f)| BreakdownJson {
                key: key.clone(),
                figures: figures_json(f),
            })
            .collect(),
        previous: r
            .previous
            .as_ref()
            .map(|p| Box::new(to_json(p, time_zone, clock))),
    }
}

/// A conversation behind a figure.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DrillJson {
    /// `null` for a relationship NPS answer: asked of a customer, about no conversation.
    pub conversation_id: Option<i64>,
    pub customer_id: i64,
    /// When it counted (the reply, the resolution, the answer), or since when it waits.
    pub at: DateTime<Utc>,
    pub seconds: Option<i64>,
    /// For resolved conversations `one_touch=1 fcr=yes` (one-touch 1 or 0; FCR `yes`, `no`,
    /// or `pending` inside the repeat window), the status for the backlog, the scores for
    /// survey answers (`csat=4 nps=9`), the target and its outcome for SLA targets
    /// (`first_reply met`, `resolution missed`).
    pub detail: Option<String>,
}

/// What `figure=` names for a drill-down.
pub(crate) fn drill_of(name: &str) -> Option<Drill> {
    Some(match name {
        "first_response" => Drill::FirstResponse,
        "average_response" => Drill::Turns,
        "first_resolution" => Drill::FirstResolution,
        "full_resolution" => Drill::FullResolution,
        "resolved" => Drill::Resolved,
        "unanswered" => Drill::Unanswered,
        "backlog" => Drill::Backlog,
        "answers" => Drill::Answers,
        "sla" => Drill::Sla,
        _ => return None,
    })
}

/// The conversations behind one figure (newest first, at most 500), for the same period and
/// filters as the report.
#[utoipa::path(get, path = "/api/v1/reports/kpis/conversations", tag = "reports",
    params(KpiQuery),
    responses((status = 200, body = [DrillJson]), (status = "4XX", body = ErrorBody)))]
pub async fn list_kpi_conversations(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> ApiResult<Json<Vec<DrillJson>>> {
    let (query, _) = report_query(&q)?;
    let which = q.figure.as_deref().and_then(drill_of).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            "figure must be first_response, average_response, first_resolution, full_resolution, resolved, unanswered, backlog, answers or sla",
        )
    })?;
    let rows = state.app.kpi_drill(&caller, &query, which).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| DrillJson {
                conversation_id: r.conversation_id.map(|c| c.0),
                customer_id: r.customer_id.0,
                at: r.at,
                seconds: r.seconds,
                detail: r.detail,
            })
            .collect(),
    ))
}

/// A customer behind a purchase figure.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerDrillJson {
    pub customer_id: i64,
    /// Their latest order that counted (for churn: their last order).
    pub at: DateTime<Utc>,
    /// `orders=3` for the period's buyers (repeat purchase: 2 or more), `again=yes` or
    /// `again=no` for the earlier days' buyers (retention).
    pub detail: Option<String>,
}

/// What `figure=` names for a customer drill-down.
pub(crate) fn customer_drill_of(name: &str) -> Option<CustomerDrill> {
    Some(match name {
        "repeat_purchase" => CustomerDrill::Buyers,
        "retention" => CustomerDrill::Earlier,
        "churned" => CustomerDrill::Churned,
        _ => return None,
    })
}

/// The customers behind a purchase figure (latest order first, at most 500): the period's
/// buyers with their order counts (repeat purchase), the buyers of the same number of days
/// before and whether they ordered again (retention), or the customers churned at its end.
#[utoipa::path(get, path = "/api/v1/reports/kpis/customers", tag = "reports",
    params(KpiQuery),
    responses((status = 200, body = [CustomerDrillJson]), (status = "4XX", body = ErrorBody)))]
pub async fn list_kpi_customers(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> ApiResult<Json<Vec<CustomerDrillJson>>> {
    let (query, _) = report_query(&q)?;
    let which = q
        .figure
        .as_deref()
        .and_then(customer_drill_of)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                "figure must be repeat_purchase, retention or churned",
            )
        })?;
    let rows = state.app.kpi_customers(&caller, &query, which).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| CustomerDrillJson {
                customer_id: r.customer_id.0,
                at: r.at,
                detail: r.detail,
            })
            .collect(),
    ))
}

/// Every KPI measured so far, for the days `from` to `to` (included) in `tz`.
#[utoipa::path(get, path = "/api/v1/reports/kpis", tag = "reports", params(KpiQuery),
    responses((status = 200, body = KpiJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_kpis(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> ApiResult<Json<KpiJson>> {
    let (query, tz_name) = report_query(&q)?;
    let report = state.app.kpi_report(&caller, &query).await?;
    let clock = if query.business_clock {
        "business"
    } else {
        "calendar"
    };
    Ok(Json(to_json(&report, &tz_name, clock)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImpactCsatJson {
    /// Answered 4 or 5.
    pub good: RatioJson,
    /// Answered 1 to 3.
    pub bad: RatioJson,
    /// Not answered.
    pub none: RatioJson,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImpactFcrJson {
    pub yes: RatioJson,
    pub no: RatioJson,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImpactFirstResponseJson {
    pub within_target: RatioJson,
    pub over_target: RatioJson,
}

/// Each ratio: conversations whose customer ordered again within the horizon ÷ conversations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceImpactJson {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub horizon_days: i64,
    pub first_response_target_seconds: i64,
    pub all: RatioJson,
    pub by_csat: ImpactCsatJson,
    pub by_fcr: ImpactFcrJson,
    pub by_first_response: ImpactFirstResponseJson,
    /// Customers who ordered in the period without a conversation: ordered again within the
    /// horizon after their first order in it ÷ those customers.
    pub no_conversation: RatioJson,
    /// Resolved in the period, but the horizon has not passed: not counted yet.
    pub pending: u64,
}

/// Service impact: what resolved conversations did to repeat purchases, split by CSAT, FCR
/// and first response, beside customers with no conversation.
#[utoipa::path(get, path = "/api/v1/reports/service-impact", tag = "reports",
    params(KpiQuery),
    responses((status = 200, body = ServiceImpactJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_service_impact(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> ApiResult<Json<ServiceImpactJson>> {
    let (query, _) = report_query(&q)?;
    let i = state.app.service_impact(&caller, &query).await?;
    let (from, to) = seva_app::reports::period_of(&query)?;
    Ok(Json(ServiceImpactJson {
        from,
        to,
        horizon_days: seva_app::reports::IMPACT_HORIZON_DAYS,
        first_response_target_seconds: seva_app::reports::FIRST_RESPONSE_TARGET_SECONDS,
        all: i.all.into(),
        by_csat: ImpactCsatJson {
            good: i.csat_good.into(),
            bad: i.csat_bad.into(),
            none: i.csat_none.into(),
        },
        by_fcr: ImpactFcrJson {
            yes: i.fcr_yes.into(),
            no: i.fcr_no.into(),
        },
        by_first_response: ImpactFirstResponseJson {
            within_target: i.first_response_within_target.into(),
            over_target: i.first_response_over_target.into(),
        },
        no_conversation: i.no_conversation.into(),
        pending: i.pending,
    }))
}
