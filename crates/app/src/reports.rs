//! The KPI report: every figure of PRODUCT.md's table that Seva measures, over a period of
//! whole days in a time zone, on the calendar or the business-hours clock, with the counts
//! behind each figure; optionally narrowed to a channel, team, agent, brand, tag or segment,
//! split per day or week, broken down by one of those dimensions, and compared with the
//! previous period of the same length.

use chrono::{Duration, NaiveDate, TimeZone as _};
use chrono_tz::Tz;
use seva_domain::kpi::{Answers, CHURN_HORIZON_DAYS, REPEAT_WINDOW_DAYS, Ratio, Stats, stats};
use seva_domain::sla::Attainment;
use seva_domain::{BrandId, Channel, Role, SegmentId, TeamId, Timestamp, UserId, ValueError};
use seva_store::reports::{
    self as store, Cell, Dimension, Drill, DrillRow, Durations, Grouping, Period, Resolutions,
    Scope,
};

use crate::report_days::Day;
use crate::{App, AppError, Caller, Result};

/// Which conversations a report covers (all when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportScope {
    pub channel: Option<Channel>,
    pub team: Option<TeamId>,
    pub agent: Option<UserId>,
    pub brand: Option<BrandId>,
    pub tag: Option<String>,
    pub segment: Option<SegmentId>,
}

/// How a chart splits the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Day,
    Week,
}

/// What to report on: whole days `from..=to` in `tz`.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub tz: Tz,
    pub business_clock: bool,
    pub scope: ReportScope,
    /// A breakdown by this dimension.
    pub by: Option<Dimension>,
    /// A series per day or week.
    pub step: Option<Step>,
    /// Also the same figures for the previous period of the same length.
    pub compare: bool,
}

impl ReportQuery {
    /// The whole days `from..=to` in `tz` on the calendar clock, nothing else.
    pub fn days(from: NaiveDate, to: NaiveDate, tz: Tz) -> Self {
        ReportQuery {
            from,
            to,
            tz,
            business_clock: false,
            scope: ReportScope::default(),
            by: None,
            step: None,
            compare: false,
        }
    }
}

/// The figures that add up per conversation: what a period, a day of a chart or a row of a
/// breakdown shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figures {
    pub first_response: Stats,
    pub average_response: Stats,
    pub first_resolution: Stats,
    pub full_resolution: Stats,
    pub one_touch: Ratio,
    pub fcr: Ratio,
    /// Resolved in the period, but the repeat window has not passed yet.
    pub fcr_pending: u64,
    pub csat: Answers,
    pub ces: Answers,
    pub nps: Answers,
    /// SLA targets met ÷ due, per target (`seva_domain::sla::slot`).
    pub sla: Attainment,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KpiReport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub figures: Figures,
    /// Conversations still waiting for a first reply at the end of the period.
    pub unanswered: i64,
    /// How long the oldest of them has waited by then, in calendar seconds.
    pub unanswered_oldest_seconds: Option<i64>,
    pub backlog: Vec<(String, i64)>,
    pub repeat_purchase: Ratio,
    pub retention: Ratio,
    pub churned: i64,
    /// Per day or week (each bucket's start), when asked for.
    pub series: Vec<(Timestamp, Figures)>,
    /// Per channel, team, agent, brand or tag (the key as stored; `None`: none), when asked.
    pub breakdown: Vec<(Option<String>, Figures)>,
    /// The previous period of the same length, when asked for.
    pub previous: Option<Box<KpiReport>>,
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

/// Durations per cell, turned into statistics per wanted group.
fn merge_durations<K: PartialEq + Clone>(
    cells: &[Cell<Vec<i64>>],
    key_of: impl Fn(&Cell<Vec<i64>>) -> K,
    keys: &[K],
) -> Vec<Stats> {
    let mut lists: Vec<Vec<i64>> = vec![Vec::new(); keys.len()];
    for cell in cells {
        if let Some(i) = keys.iter().position(|k| *k == key_of(cell)) {
            lists[i].extend_from_slice(&cell.value);
        }
    }
    lists.iter_mut().map(|l| stats(l)).collect()
}

/// The groups present in any of the cells, in a stable order (no key first).
fn keys_of(cells: &[&[Option<String>]]) -> Vec<Option<String>> {
    let mut keys: Vec<Option<String>> = cells.iter().flat_map(|c| c.iter().cloned()).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Everything measured per conversation, grouped by `key` (a bucket index or a breakdown key).
#[derive(Debug, Default, Clone)]
pub(crate) struct Measured {
    pub durations: [Vec<Cell<Vec<i64>>>; 4],
    pub resolutions: Vec<Cell<Resolutions>>,
    pub answers: Vec<Cell<[Answers; 3]>>,
    pub sla: Vec<Cell<Attainment>>,
}

impl Measured {
    /// Adds a day's cells, in bucket `bucket`.
    pub(crate) fn add_day(&mut self, day: Measured, bucket: usize) {
        fn into<T>(to: &mut Vec<Cell<T>>, from: Vec<Cell<T>>, bucket: usize) {
            to.extend(from.into_iter().map(|c| Cell { bucket, ..c }));
        }
        let [a, b, c, d] = day.durations;
        for (to, from) in self.durations.iter_mut().zip([a, b, c, d]) {
            into(to, from, bucket);
        }
        into(&mut self.resolutions, day.resolutions, bucket);
        into(&mut self.answers, day.answers, bucket);
        into(&mut self.sla, day.sla, bucket);
    }

    /// A breakdown's rows: one per key present in any figure.
    fn by_key(self) -> Vec<(Option<String>, Figures)> {
        let keys = keys_of(&[
            &self
                .durations
                .iter()
                .flatten()
                .map(|c| c.key.clone())
                .collect::<Vec<_>>(),
            &self
                .resolutions
                .iter()
                .map(|c| c.key.clone())
                .collect::<Vec<_>>(),
            &self
                .answers
                .iter()
                .map(|c| c.key.clone())
                .collect::<Vec<_>>(),
            &self.sla.iter().map(|c| c.key.clone()).collect::<Vec<_>>(),
        ]);
        let rows = self.figures(&keys, |k, _| k.cloned());
        keys.into_iter().zip(rows).collect()
    }

    fn figures<K: PartialEq + Clone>(
        &self,
        keys: &[K],
        key_of: impl Fn(Option<&String>, usize) -> K + Copy,
    ) -> Vec<Figures> {
        let mut out = vec![Figures::default(); keys.len()];
        for (i, list) in self.durations.iter().enumerate() {
            let merged = merge_durations(list, |c| key_of(c.key.as_ref(), c.bucket), keys);
            for (figures, s) in out.iter_mut().zip(merged) {
                match i {
                    0 => figures.first_response = s,
                    1 => figures.average_response = s,
                    2 => figures.first_resolution = s,
                    _ => figures.full_resolution = s,
                }
            }
        }
        for cell in &self.resolutions {
            if let Some(i) = keys
                .iter()
                .position(|k| *k == key_of(cell.key.as_ref(), cell.bucket))
            {
                let f = &mut out[i];
                let sum = Resolutions {
                    one_touch: f.one_touch,
                    fcr: f.fcr,
                    fcr_pending: f.fcr_pending,
                }
                .plus(cell.value);
                f.one_touch = sum.one_touch;
                f.fcr = sum.fcr;
                f.fcr_pending = sum.fcr_pending;
            }
        }
        for cell in &self.answers {
            if let Some(i) = keys
                .iter()
                .position(|k| *k == key_of(cell.key.as_ref(), cell.bucket))
            {
                let f = &mut out[i];
                let [csat, ces, nps] = cell.value;
                f.csat = f.csat.plus(csat);
                f.ces = f.ces.plus(ces);
                f.nps = f.nps.plus(nps);
            }
        }
        for cell in &self.sla {
            if let Some(i) = keys
                .iter()
                .position(|k| *k == key_of(cell.key.as_ref(), cell.bucket))
            {
                for (mine, theirs) in out[i].sla.iter_mut().zip(cell.value) {
                    *mine = mine.plus(theirs);
                }
            }
        }
        out
    }
}

impl App {
    /// The KPI report (supervisors and admins).
    pub async fn kpi_report(&self, caller: &Caller, q: &ReportQuery) -> Result<KpiReport> {
        let (period, scope) = self.report_of(caller, q).await?;
        let starts = match q.step {
            None => Vec::new(),
            Some(step) => bucket_starts(q, step)?,
        };
        // Day by day through the cache of closed days, unless a segment (its members change
        // with time) filters.
        let view = scope.segment.is_none().then(|| {
            format!(
                "{}|{}|{:?}",
                q.tz.name(),
                q.business_clock,
                (
                    &q.scope.channel,
                    q.scope.team,
                    q.scope.agent,
                    q.scope.brand,
                    &q.scope.tag
                )
            )
        });
        // The previous whole days of the same number (not the same seconds: a
        // daylight-saving change in between would move its midnight), and the ones before.
        let length = Duration::days((q.to - q.from).num_days() + 1);
        let days = days_of(q.tz, q.from, q.to, q.step)?;
        let before_days = days_of(q.tz, q.from - length, q.from - Duration::days(1), None)?;
        let current = Reading {
            period,
            starts: &starts,
            days: &days,
            earlier: &before_days,
            view: view.as_deref(),
        };
        // Boxed: a report's futures (several queries side by side) are large.
        if !q.compare {
            return Box::pin(self.measure(&current, &scope, q.by)).await;
        }
        let earlier_days = days_of(
            q.tz,
            q.from - length - length,
            q.from - length - Duration::days(1),
            None,
        )?;
        let before = Reading {
            period: Period {
                from: before_days.first().map_or(period.from, |d| d.start),
                to: period.from,
                ..period
            },
            starts: &[],
            days: &before_days,
            earlier: &earlier_days,
            view: view.as_deref(),
        };
        let (mut report, previous) = tokio::try_join!(
            Box::pin(self.measure(&current, &scope, q.by)),
            Box::pin(self.measure(&before, &scope, None)),
        )?;
        report.previous = Some(Box::new(previous));
        Ok(report)
    }

    /// The conversations behind one figure of a report, newest first (at most 500).
    pub async fn kpi_drill(
        &self,
        caller: &Caller,
        q: &ReportQuery,
        which: Drill,
    ) -> Result<Vec<DrillRow>> {
        let (period, scope) = self.report_of(caller, q).await?;
        // Figures at the period's end are read as of now when the period has not ended.
        let period = if matches!(which, Drill::Unanswered | Drill::Backlog) {
            Period {
                to: period.to.min(self.now()),
                ..period
            }
        } else {
            period
        };
        let mut conn = self.store.conn().await?;
        let fcr = store::FcrAsOf {
            now: self.now(),
            window: Duration::days(REPEAT_WINDOW_DAYS),
        };
        Ok(store::drill(&mut conn, which, period, &scope, fcr, 500).await?)
    }

    /// The customers behind a purchase figure of a report (repeat purchase: the period's
    /// buyers; retention: the earlier days' buyers; churn: those churned at its end), latest
    /// order first, at most 500.
    pub async fn kpi_customers(
        &self,
        caller: &Caller,
        q: &ReportQuery,
        which: store::CustomerDrill,
    ) -> Result<Vec<store::CustomerRow>> {
        let (period, scope) = self.report_of(caller, q).await?;
        let length = Duration::days((q.to - q.from).num_days() + 1);
        let windows = store::OrderWindows {
            earlier: day_start(q.tz, q.from - length)?,
            from: period.from,
            to: period.to,
            at: period.to.min(self.now()),
            horizon: Duration::days(CHURN_HORIZON_DAYS),
        };
        let mut conn = self.store.conn().await?;
        Ok(store::drill_customers(&mut conn, which, windows, &scope, 500).await?)
    }

    /// What every report starts with: the caller may read reports (supervisors and admins),
    /// and the query's period and scope, checked.
    async fn report_of(&self, caller: &Caller, q: &ReportQuery) -> Result<(Period, Scope)> {
        if !matches!(caller.user.role, Role::Admin | Role::Supervisor) {
            return Err(AppError::Forbidden);
        }
        let (from, to) = period_of(q)?;
        let period = Period {
            from,
            to,
            business: q.business_clock,
        };
        Ok((period, self.scope_of(&q.scope).await?))
    }

    async fn scope_of(&self, s: &ReportScope) -> Result<Scope> {
        let segment = match s.segment {
            None => None,
            Some(id) => {
                let mut conn = self.store.conn().await?;
                let segment = seva_store::segments::get(&mut conn, id)
                    .await
                    .map_err(crate::not_found("segment"))?;
                Some((segment.rules, self.now()))
            }
        };
        Ok(Scope {
            channel: s.channel.map(|c| c.as_str().to_owned()),
            team: s.team.map(|t| t.0),
            agent: s.agent.map(|u| u.0),
            brand: s.brand.map(|b| b.0),
            tag: s.tag.clone(),
            segment,
        })
    }

    /// Every figure of one period: the per-conversation figures in one pass per KPI (grouped
    /// per bucket, and again per breakdown key when asked), and the period-end and order
    /// figures, each query on its own pooled connection so they run side by side.
    async fn measure(
        &self,
        r: &Reading<'_>,
        scope: &Scope,
        by: Option<Dimension>,
    ) -> Result<KpiReport> {
        let (period, starts) = (r.period, r.starts);
        let now = self.now();
        let end = period.to.min(now);
        let (measured, breakdown, (unanswered, oldest), backlog, orders) = tokio::try_join!(
            self.grouped(r, scope, None),
            async {
                match by {
                    None => Ok(None),
                    Some(Dimension::Segment) => self.by_segment(r, scope).await.map(Some),
                    Some(by) => self
                        .grouped(r, scope, Some(by))
                        .await
                        .map(|m| Some(m.by_key())),
                }
            },
            async {
                let mut conn = self.store.conn().await?;
                Ok::<_, AppError>(store::unanswered(&mut conn, end, scope).await?)
            },
            async {
                let mut conn = self.store.conn().await?;
                Ok::<_, AppError>(store::backlog(&mut conn, end, scope).await?)
            },
            self.order_figures(r, end, scope),
        )?;
        let bucket_count = starts.len().max(1);
        let indexes: Vec<usize> = (0..bucket_count).collect();
        let figures = measured.figures(&[()], |_, _| ()).remove(0);
        let per_bucket = if starts.is_empty() {
            Vec::new()
        } else {
            measured.figures(&indexes, |_, b| b)
        };
        let series = if starts.is_empty() {
            Vec::new()
        } else {
            starts.iter().copied().zip(per_bucket).collect()
        };
        let breakdown = breakdown.unwrap_or_default();
        let (repeat_purchase, retention, churned) = orders;
        Ok(KpiReport {
            from: period.from,
            to: period.to,
            figures,
            unanswered,
            unanswered_oldest_seconds: oldest.map(|at| (end - at).num_seconds()),
            backlog,
            repeat_purchase,
            retention,
            churned,
            series,
            breakdown,
            previous: None,
        })
    }

    /// The per-conversation figures of a reading, per bucket of its series (`by`: none), or
    /// per key of a breakdown.
    async fn grouped(
        &self,
        r: &Reading<'_>,
        scope: &Scope,
        by: Option<Dimension>,
    ) -> Result<Measured> {
        let Some(view) = r.view else {
            let starts = if by.is_some() { &[][..] } else { r.starts };
            let grouping = Grouping { by, starts };
            return Box::pin(self.measured_parts(r.period, scope, grouping, true, true)).await;
        };
        let days: Vec<Day> = r
            .days
            .iter()
            .map(|d| Day {
                bucket: if by.is_some() { 0 } else { d.bucket },
                ..*d
            })
            .collect();
        Box::pin(self.measured_days(&format!("{view}|{by:?}"), r.period, scope, by, &days)).await
    }

    /// A breakdown by saved segment: each segment's figures, measured with it as the filter
    /// (in place of any segment filter of the report), at most 50 segments, in name order.
    async fn by_segment(
        &self,
        r: &Reading<'_>,
        scope: &Scope,
    ) -> Result<Vec<(Option<String>, Figures)>> {
        let mut conn = self.store.conn().await?;
        let mut segments = seva_store::segments::all(&mut conn).await?;
        drop(conn);
        segments.sort_by(|a, b| a.name.cmp(&b.name));
        let mut rows = Vec::new();
        for segment in segments.into_iter().take(50) {
            let filtered = Scope {
                segment: Some((segment.rules, self.now())),
                ..scope.clone()
            };
            let grouping = Grouping::default();
            let measured =
                Box::pin(self.measured_parts(r.period, &filtered, grouping, true, true)).await?;
            let figures = measured.figures(&[()], |_, _| ()).remove(0);
            rows.push((Some(segment.id.0.to_string()), figures));
        }
        Ok(rows)
    }

    /// Repeat purchase and retention of the period (against the same number of days before),
    /// and churn at its end: from the cache of days unless a segment filters.
    async fn order_figures(
        &self,
        r: &Reading<'_>,
        end: Timestamp,
        scope: &Scope,
    ) -> Result<(Ratio, Ratio, i64)> {
        let period = r.period;
        let earlier_from = r.earlier.first().map_or(period.from, |d| d.start);
        let horizon = Duration::days(CHURN_HORIZON_DAYS);
        if r.view.is_none() {
            let mut conn = self.store.conn().await?;
            let repeat = store::repeat_purchase(&mut conn, period.from, period.to, scope).await?;
            let retention =
                store::retention(&mut conn, earlier_from, period.from, period.to, scope).await?;
            let churned = store::churned(&mut conn, end - horizon, end, scope).await?;
            return Ok((repeat, retention, churned));
        }
        let (now, before, churned) = tokio::try_join!(
            self.buyers_of_days(r.days),
            self.buyers_of_days(r.earlier),
            self.churned_at(end, horizon),
        )?;
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let repeat = Ratio {
            numerator: count(now.values().filter(|n| **n >= 2).count()),
            denominator: count(now.len()),
        };
        let retention = Ratio {
            numerator: count(before.keys().filter(|c| now.contains_key(c)).count()),
            denominator: count(before.len()),
        };
        Ok((repeat, retention, churned))
    }

    /// The per-conversation figures of a period, grouped: the durations and answers when
    /// `main`, the one-touch and FCR counts when `resolutions`.
    pub(crate) async fn measured_parts(
        &self,
        period: Period,
        scope: &Scope,
        grouping: Grouping<'_>,
        main: bool,
        resolutions: bool,
    ) -> Result<Measured> {
        let durations = |which| async move {
            if !main {
                return Ok(Vec::new());
            }
            let mut conn = self.store.conn().await?;
            Ok::<_, AppError>(store::durations(&mut conn, which, period, scope, grouping).await?)
        };
        let (fr, ar, first, full, resolutions, answers, sla) = tokio::try_join!(
            durations(Durations::FirstResponse),
            durations(Durations::Turn),
            durations(Durations::FirstResolution),
            durations(Durations::FullResolution),
            async {
                if !resolutions {
                    return Ok(Vec::new());
                }
                let mut conn = self.store.conn().await?;
                Ok::<_, AppError>(
                    store::resolutions(
                        &mut conn,
                        period,
                        Duration::days(REPEAT_WINDOW_DAYS),
                        self.now(),
                        scope,
                        grouping,
                    )
                    .await?,
                )
            },
            async {
                if !main {
                    return Ok(Vec::new());
                }
                let mut conn = self.store.conn().await?;
                Ok::<_, AppError>(
                    store::answers(&mut conn, period.from, period.to, scope, grouping).await?,
                )
            },
            async {
                if !main {
                    return Ok(Vec::new());
                }
                let mut conn = self.store.conn().await?;
                Ok::<_, AppError>(store::sla(&mut conn, period, self.now(), scope, grouping).await?)
            },
        )?;
        Ok(Measured {
            durations: [fr, ar, first, full],
            resolutions,
            answers,
            sla,
        })
    }
}

/// The period's first instant and the instant after it, checked.
pub fn period_of(q: &ReportQuery) -> Result<(Timestamp, Timestamp)> {
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
    Ok((from, to))
}

/// A period to measure: its days, its series' bucket starts, and its cache view (`None`:
/// not cached).
struct Reading<'a> {
    period: Period,
    starts: &'a [Timestamp],
    days: &'a [Day],
    /// The same number of days just before (retention compares with them).
    earlier: &'a [Day],
    view: Option<&'a str>,
}

/// The local days `from..=to` in `tz`, each with its bucket of a series per `step`.
fn days_of(tz: Tz, from: NaiveDate, to: NaiveDate, step: Option<Step>) -> Result<Vec<Day>> {
    let mut days = Vec::new();
    let mut date = from;
    let mut start = day_start(tz, date)?;
    let mut i = 0;
    while date <= to {
        let next = date.succ_opt().unwrap_or(date);
        let end = day_start(tz, next)?;
        let bucket = match step {
            None => 0,
            Some(Step::Day) => i,
            Some(Step::Week) => i / 7,
        };
        days.push(Day {
            date,
            start,
            end,
            bucket,
        });
        date = next;
        start = end;
        i += 1;
    }
    Ok(days)
}

/// Where each day (or each 7 days from `from`) of the period starts, in `tz`.
fn bucket_starts(q: &ReportQuery, step: Step) -> Result<Vec<Timestamp>> {
    let days = match step {
        Step::Day => 1,
        Step::Week => 7,
    };
    let mut starts = Vec::new();
    let mut day = q.from;
    while day <= q.to {
        starts.push(day_start(q.tz, day)?);
        day += Duration::days(days);
    }
    Ok(starts)
}

/// How long after a resolution an order counts as "ordered again" for the service impact.
pub const IMPACT_HORIZON_DAYS: i64 = 90;
/// The first response target of the service impact's split (until SLA policies set one), in
/// seconds on the report's clock.
pub const FIRST_RESPONSE_TARGET_SECONDS: i64 = 4 * 3600;

/// Service impact: of the customers whose conversation was resolved in the period (their
/// last resolution in it, once its 90 days have passed), the share who ordered again within
/// 90 days, split by that conversation's CSAT, FCR and first response; beside the same rate
/// for customers who ordered and had no conversation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceImpact {
    pub all: Ratio,
    pub csat_good: Ratio,
    pub csat_bad: Ratio,
    pub csat_none: Ratio,
    pub fcr_yes: Ratio,
    pub fcr_no: Ratio,
    pub first_response_within_target: Ratio,
    pub first_response_over_target: Ratio,
    pub no_conversation: Ratio,
    /// Customers resolved in the period whose 90 days have not passed yet: not counted.
    pub pending: u64,
}

impl App {
    /// The service impact report (supervisors and admins).
    pub async fn service_impact(&self, caller: &Caller, q: &ReportQuery) -> Result<ServiceImpact> {
        let (period, scope) = self.report_of(caller, q).await?;
        let (from, to) = (period.from, period.to);
        let now = self.now();
        let horizon = Duration::days(IMPACT_HORIZON_DAYS);
        let mut conn = self.store.conn().await?;
        let (cells, pending) = store::service_impact(
            &mut conn,
            period,
            now,
            Duration::days(REPEAT_WINDOW_DAYS),
            horizon,
            FIRST_RESPONSE_TARGET_SECONDS,
            &scope,
        )
        .await?;
        let no_conversation =
            store::impact_baseline(&mut conn, from, to, now, horizon, &scope).await?;
        let mut impact = ServiceImpact {
            no_conversation,
            pending,
            ..ServiceImpact::default()
        };
        for cell in cells {
            let add = |r: &mut Ratio| {
                r.numerator += cell.ordered_again;
                r.denominator += cell.conversations;
            };
            add(&mut impact.all);
            match cell.csat.as_str() {
                "good" => add(&mut impact.csat_good),
                "bad" => add(&mut impact.csat_bad),
                _ => add(&mut impact.csat_none),
            }
            match cell.fcr.as_str() {
                "yes" => add(&mut impact.fcr_yes),
                "no" => add(&mut impact.fcr_no),
                _ => {}
            }
            match cell.first_response.as_str() {
                "fast" => add(&mut impact.first_response_within_target),
                "slow" => add(&mut impact.first_response_over_target),
                _ => {}
            }
        }
        Ok(impact)
    }
}
