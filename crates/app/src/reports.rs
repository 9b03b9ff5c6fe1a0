//! The KPI report: every figure of PRODUCT.md's table that Seva has the data for, over a period
//! of whole days in a time zone, on the calendar or the business-hours clock, with the counts
//! behind each figure.

use chrono::{Duration, NaiveDate, TimeZone as _};
use chrono_tz::Tz;
use seva_domain::kpi::{
    CHURN_HORIZON_DAYS, Fcr, REPEAT_WINDOW_DAYS, Ratio, Stats, fcr as fcr_of, repeat_purchase,
    retention, stats,
};
use seva_domain::{Role, Timestamp, ValueError};
use seva_store::kpi::{self as store, Period};

use crate::{App, AppError, Caller, Result};

/// What to report on: whole days `from..=to` in `tz`.
#[derive(Debug, Clone, Copy)]
pub struct ReportQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub tz: Tz,
    pub business_clock: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KpiReport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub first_response: Stats,
    /// Conversations still waiting for a first reply at the end of the period.
    pub unanswered: i64,
    /// How long the oldest of them has waited by then, in calendar seconds.
    pub unanswered_oldest_seconds: Option<i64>,
    pub average_response: Stats,
    pub first_resolution: Stats,
    pub full_resolution: Stats,
    pub one_touch: Ratio,
    pub fcr: Ratio,
    /// Resolved in the period, but the repeat window has not passed yet.
    pub fcr_pending: u64,
    pub backlog: Vec<(String, i64)>,
    pub repeat_purchase: Ratio,
    pub retention: Ratio,
    pub churned: i64,
}

/// The instant a local day starts in `tz` (the first instant, should midnight repeat; the end
/// of the gap, should a daylight-saving change skip it).
fn day_start(tz: Tz, day: NaiveDate) -> Result<Timestamp> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(midnight + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok_or(AppError::Invalid(ValueError::UnknownValue {
            field: "from/to",
            value: day.to_string(),
        }))
}

impl App {
    /// The KPI report (supervisors and admins).
    pub async fn kpi_report(&self, caller: &Caller, q: &ReportQuery) -> Result<KpiReport> {
        if !matches!(caller.user.role, Role::Admin | Role::Supervisor) {
            return Err(AppError::Forbidden);
        }
        if q.to < q.from || (q.to - q.from).num_days() > 366 {
            return Err(AppError::Invalid(ValueError::UnknownValue {
                field: "period (from..to, at most 366 days)",
                value: format!("{}..{}", q.from, q.to),
            }));
        }
        let out_of_range = || {
            AppError::Invalid(ValueError::UnknownValue {
                field: "from/to (years 1900 to 9999)",
                value: format!("{}..{}", q.from, q.to),
            })
        };
        let sane = |d: NaiveDate| (1900..=9999).contains(&chrono::Datelike::year(&d));
        if !sane(q.from) || !sane(q.to) {
            return Err(out_of_range());
        }
        let from = day_start(q.tz, q.from)?;
        let to = day_start(q.tz, q.to.succ_opt().ok_or_else(out_of_range)?)?;
        let period = Period {
            from,
            to,
            business: q.business_clock,
        };
        let now = self.now();
        let end = to.min(now);
        let mut conn = self.store.conn().await?;
        let first_response = stats(&mut store::first_responses(&mut conn, period).await?);
        let average_response = stats(&mut store::turn_responses(&mut conn, period).await?);
        let first_resolution = stats(&mut store::first_resolutions(&mut conn, period).await?);
        let full_resolution = stats(&mut store::full_resolutions(&mut conn, period).await?);
        let (unanswered, oldest) = store::unanswered(&mut conn, end).await?;
        let (mut one_touch, mut fcr, mut fcr_pending) = (Ratio::default(), Ratio::default(), 0);
        let window = Duration::days(REPEAT_WINDOW_DAYS);
        for r in store::resolved_in(&mut conn, period).await? {
            let Some(touch) = r.one_touch else { continue };
            one_touch.denominator += 1;
            one_touch.numerator += u64::from(touch);
            match fcr_of(
                Some(touch),
                Some(r.resolved_at),
                r.next_contact,
                window,
                now,
            ) {
                Fcr::Yes => {
                    fcr.numerator += 1;
                    fcr.denominator += 1;
                }
                Fcr::No => fcr.denominator += 1,
                Fcr::Pending => fcr_pending += 1,
                Fcr::NotCounted => {}
            }
        }
        let length = to - from;
        let this = store::orders_per_customer(&mut conn, from, to).await?;
        let previous = store::orders_per_customer(&mut conn, from - length, from).await?;
        let previous_ids: Vec<i64> = previous.iter().map(|(c, _)| *c).collect();
        let this_ids: Vec<i64> = this.iter().map(|(c, _)| *c).collect();
        Ok(KpiReport {
            from,
            to,
            first_response,
            unanswered,
            unanswered_oldest_seconds: oldest.map(|at| (end - at).num_seconds()),
            average_response,
            first_resolution,
            full_resolution,
            one_touch,
            fcr,
            fcr_pending,
            backlog: store::backlog(&mut conn, end).await?,
            repeat_purchase: repeat_purchase(
                this.iter().map(|(_, n)| u64::try_from(*n).unwrap_or(0)),
            ),
            retention: retention(&previous_ids, &this_ids),
            churned: store::churned(&mut conn, end - Duration::days(CHURN_HORIZON_DAYS), end)
                .await?,
        })
    }
}
