//! `/reports/kpis`: every KPI Seva measures so far, for whole days in a time zone, on the
//! calendar or the business-hours clock, with the counts behind each figure so other tools can
//! check it. Definitions: PRODUCT.md's KPI table.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use seva_app::reports::{KpiReport, ReportQuery};
use seva_domain::kpi::{CHURN_HORIZON_DAYS, Ratio, Stats};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{ApiCaller, ApiQuery};

pub fn router() -> Router<AppState> {
    Router::new().route("/reports/kpis", get(show_kpis))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
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
pub struct FirstResponseJson {
    #[serde(flatten)]
    pub durations: DurationJson,
    pub unanswered: UnansweredJson,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FcrJson {
    #[serde(flatten)]
    pub ratio: RatioJson,
    /// Resolved in the period, still inside the repeat window: in neither count.
    pub pending: u64,
    pub repeat_window_days: i64,
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
pub struct KpiJson {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub time_zone: String,
    /// `calendar` or `business`.
    pub clock: String,
    pub first_response: FirstResponseJson,
    pub average_response: DurationJson,
    pub first_resolution: DurationJson,
    pub full_resolution: DurationJson,
    pub one_touch_resolution: RatioJson,
    pub first_contact_resolution: FcrJson,
    pub backlog: BacklogJson,
    pub repeat_purchase_rate: RatioJson,
    pub retention_rate: RatioJson,
    pub churned_customers: ChurnJson,
    /// KPIs of the table Seva does not measure yet.
    pub not_yet_measured: Vec<&'static str>,
}

fn to_json(r: KpiReport, time_zone: String, clock: &str) -> KpiJson {
    KpiJson {
        from: r.from,
        to: r.to,
        time_zone,
        clock: clock.to_owned(),
        first_response: FirstResponseJson {
            durations: r.first_response.into(),
            unanswered: UnansweredJson {
                count: r.unanswered,
                oldest_wait_seconds: r.unanswered_oldest_seconds,
            },
        },
        average_response: r.average_response.into(),
        first_resolution: r.first_resolution.into(),
        full_resolution: r.full_resolution.into(),
        one_touch_resolution: r.one_touch.into(),
        first_contact_resolution: FcrJson {
            ratio: r.fcr.into(),
            pending: r.fcr_pending,
            repeat_window_days: seva_domain::kpi::REPEAT_WINDOW_DAYS,
        },
        backlog: BacklogJson {
            total: r.backlog.iter().map(|(_, n)| n).sum(),
            by_status: r.backlog.into_iter().collect(),
        },
        repeat_purchase_rate: r.repeat_purchase.into(),
        retention_rate: r.retention.into(),
        churned_customers: ChurnJson {
            count: r.churned,
            horizon_days: CHURN_HORIZON_DAYS,
        },
        not_yet_measured: vec!["csat", "nps", "ces", "sla_attainment", "service_impact"],
    }
}

/// Every KPI measured so far, for the days `from` to `to` (included) in `tz`.
#[utoipa::path(get, path = "/api/v1/reports/kpis", tag = "reports", params(KpiQuery),
    responses((status = 200, body = KpiJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_kpis(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> ApiResult<Json<KpiJson>> {
    let day = |raw: &str, name: &str| {
        NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                format!("{name} must be a date such as 2026-11-01"),
            )
        })
    };
    let tz_name = q.tz.clone().unwrap_or_else(|| "UTC".to_owned());
    let tz: chrono_tz::Tz = tz_name.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            "tz must be an IANA time zone such as Asia/Tehran",
        )
    })?;
    let clock = q.clock.as_deref().unwrap_or("calendar");
    let business_clock = match clock {
        "calendar" => false,
        "business" => true,
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                "clock must be calendar or business",
            ));
        }
    };
    let query = ReportQuery {
        from: day(&q.from, "from")?,
        to: day(&q.to, "to")?,
        tz,
        business_clock,
    };
    let report = state.app.kpi_report(&caller, &query).await?;
    Ok(Json(to_json(report, tz_name, clock)))
}
