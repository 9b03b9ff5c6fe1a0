//! The reports' cache of closed days. A report over 30 days at a million conversations would
//! otherwise read every duration of the period on each view; instead each local day's
//! per-conversation figures (durations, survey answers, SLA targets, one-touch and FCR
//! counts) are read once, kept in memory per view (time zone, clock, filters, breakdown), and
//! reused while the versions of the UTC days under it are unchanged (`seva_store::kpi_days`
//! bumps them when an old day's figures move). Only settled days are kept: recent ones, which
//! live traffic still changes, are read each time, and so is everything under a segment
//! filter (membership changes with time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use seva_domain::Timestamp;
use seva_store::kpi_days::{self, FCR_SETTLED_DAYS, SETTLED_DAYS};
use seva_store::reports::{Cell, Grouping, Period, Scope};

use crate::reports::Measured;
use crate::{App, Result};

/// At most this many bytes of durations and counts are kept; the least recently used days go.
const BUDGET_BYTES: usize = 64 << 20;

/// One local day of a report: its start, its end, and the bucket (of the report's series)
/// it adds to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Day {
    pub date: chrono::NaiveDate,
    pub start: Timestamp,
    pub end: Timestamp,
    pub bucket: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// Time zone, clock, filters and breakdown.
    view: String,
    date: chrono::NaiveDate,
}

/// What is kept for a day.
#[derive(Debug, Clone)]
enum Kept {
    /// Per-conversation figures; whether the resolutions are there (FCR settled when read).
    Conversations(Measured, bool),
    /// Customers who ordered that day, and how many orders each.
    Buyers(Vec<(i64, i64)>),
    /// Customers churned at the day's start.
    Churned(i64),
}

struct Entry {
    /// The versions of the UTC days under it (or a fingerprint), when it was read.
    versions: Vec<(i64, i64)>,
    kept: Kept,
    bytes: usize,
    used: u64,
}

#[derive(Default)]
pub(crate) struct DayCache {
    inner: Mutex<Inner>,
    /// One reader at a time per group of days (a view's period, a range of buyers, a churn
    /// instant): requests arriving together wait for the first to keep the days, then find
    /// them, instead of all reading the same days at once.
    readers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for DayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DayCache")
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    bytes: usize,
    tick: u64,
}

fn size(kept: &Kept) -> usize {
    match kept {
        Kept::Conversations(m, _) => {
            let cell = std::mem::size_of::<Cell<Vec<i64>>>() + 16;
            let durations: usize = m
                .durations
                .iter()
                .flatten()
                .map(|c| cell + c.value.len() * 8)
                .sum();
            durations + (m.resolutions.len() + m.answers.len() + m.sla.len()) * 128 + 256
        }
        Kept::Buyers(b) => b.len() * 16 + 256,
        Kept::Churned(_) => 256,
    }
}

impl DayCache {
    /// Waits for any other reader of the same group of days; the guard lets the next in.
    async fn reading(&self, group: String) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut readers = self
                .readers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Forget groups nobody waits on, so the map stays small.
            readers.retain(|_, l| Arc::strong_count(l) > 1);
            Arc::clone(readers.entry(group).or_default())
        };
        lock.lock_owned().await
    }

    /// Whether something is kept under every one of `keys` (whatever its versions): then
    /// a reader need not wait for others, as there is little or nothing to read.
    fn holds_all(&self, mut keys: impl Iterator<Item = Key>) -> bool {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.all(|k| inner.entries.contains_key(&k))
    }

    /// Waits for other readers of `group` only when some of `keys` is not kept yet (the
    /// first view after a start): reads of recent days, never kept, go side by side.
    async fn reading_if_missing(
        &self,
        group: String,
        keys: impl Iterator<Item = Key>,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        if self.holds_all(keys) {
            None
        } else {
            Some(self.reading(group).await)
        }
    }

    /// What was kept for `key` if it was read under the same versions.
    fn get(&self, key: &Key, versions: &[(i64, i64)]) -> Option<Kept> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.entries.get_mut(key)?;
        if entry.versions != versions {
            return None;
        }
        entry.used = tick;
        Some(entry.kept.clone())
    }

    fn put(&self, key: Key, versions: Vec<(i64, i64)>, kept: Kept) {
        let bytes = size(&kept);
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.tick += 1;
        let used = inner.tick;
        if let Some(old) = inner.entries.insert(
            key,
            Entry {
                versions,
                kept,
                bytes,
                used,
            },
        ) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        while inner.bytes > BUDGET_BYTES {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.bytes -= gone.bytes;
            }
        }
    }
}

/// The versions read for day `d` of `days` (consecutive days: its place is its distance from
/// the first).
fn versions_at(days: &[Day], versions: &[Vec<(i64, i64)>], d: &Day) -> Vec<(i64, i64)> {
    days.first()
        .and_then(|first| usize::try_from((d.date - first.date).num_days()).ok())
        .and_then(|i| versions.get(i).cloned())
        .unwrap_or_default()
}

/// Consecutive runs of the days `wanted` marks, as index ranges.
fn runs(wanted: &[bool]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &w) in wanted.iter().chain(std::iter::once(&false)).enumerate() {
        match (w, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Moves cells of a run (bucket = day within the run) to their days.
fn spread<T>(cells: Vec<Cell<T>>, run_start: usize, days: &mut [Vec<Cell<T>>]) {
    for cell in cells {
        if let Some(day) = days.get_mut(run_start + cell.bucket) {
            day.push(cell);
        }
    }
}

impl App {
    /// The clock that decides which days are settled: the application's, but never ahead of
    /// the system's, which decides which days changes bump (`kpi_days`), so a test's clock set
    /// in the future cannot make the cache keep a day no change would bump.
    fn settled_clock(&self) -> Timestamp {
        #[allow(clippy::disallowed_methods)]
        let system = chrono::Utc::now();
        self.now().min(system)
    }

    /// The versions of the UTC days under each of `days`, read once for the settled ones.
    async fn versions_of_days(
        &self,
        kind: kpi_days::Kind,
        days: &[Day],
        settled: &[bool],
    ) -> Result<Vec<Vec<(i64, i64)>>> {
        let utc_days = |d: &Day| {
            kpi_days::day_of(seva_store::to_micros(d.start))
                ..=kpi_days::day_of(seva_store::to_micros(d.end) - 1)
        };
        let versions = match (days.first(), settled.iter().rposition(|s| *s)) {
            (Some(first), Some(last)) => {
                let mut conn = self.store.conn().await?;
                kpi_days::versions(
                    &mut conn,
                    kind,
                    *utc_days(first).start(),
                    *utc_days(&days[last]).end(),
                )
                .await?
            }
            _ => HashMap::new(),
        };
        Ok(days
            .iter()
            .map(|d| {
                utc_days(d)
                    .map(|u| (u, versions.get(&u).copied().unwrap_or(0)))
                    .collect()
            })
            .collect())
    }

    /// Which of `days` ended at least `after` days ago on the settling clock.
    fn settled(&self, days: &[Day], after: i64) -> Vec<bool> {
        let cut = self.settled_clock() - Duration::days(after);
        days.iter().map(|d| d.end <= cut).collect()
    }

    /// The per-conversation figures of `days` (a report's period, day by day), grouped by
    /// `by` and by each day's bucket: settled days from the cache when their versions are
    /// unchanged, the rest read now (and kept when settled).
    pub(crate) async fn measured_days(
        &self,
        view: &str,
        period: Period,
        scope: &Scope,
        by: Option<seva_store::reports::Dimension>,
        days: &[Day],
    ) -> Result<Measured> {
        let settled = self.settled(days, SETTLED_DAYS);
        let fcr_settled = self.settled(days, FCR_SETTLED_DAYS);
        let first = days.first().map_or(0, |d| seva_store::to_micros(d.start));
        let kept = days.iter().zip(&settled).filter(|(_, s)| **s);
        let _reading = self
            .report_days
            .reading_if_missing(
                format!("{view}|{first}"),
                kept.map(|(d, _)| Key {
                    view: view.to_owned(),
                    date: d.date,
                }),
            )
            .await;
        let versions = self
            .versions_of_days(kpi_days::Kind::Conversations, days, &settled)
            .await?;
        let versions_of = |d: &Day| versions_at(days, &versions, d);
        let key = |d: &Day| Key {
            view: view.to_owned(),
            date: d.date,
        };
        // Each day's figures, and whether its resolutions are in them.
        let mut found: Vec<Option<(Measured, bool)>> = days
            .iter()
            .zip(&settled)
            .zip(&fcr_settled)
            .map(|((d, &s), &fcr)| {
                match self.report_days.get(&key(d), &versions_of(d)) {
                    // Resolutions kept when FCR had settled are not for a clock set back since.
                    Some(Kept::Conversations(m, r)) if s => Some((m, r && fcr)),
                    _ => None,
                }
            })
            .collect();
        let need_main: Vec<bool> = found.iter().map(Option::is_none).collect();
        let need_resolutions: Vec<bool> = found
            .iter()
            .map(|f| f.as_ref().is_none_or(|(_, r)| !r))
            .collect();
        let mut fresh = FreshDays::new(days.len());
        for run in runs(&need_main) {
            let m = self
                .read_run(period, scope, by, &days[run.clone()], true, false)
                .await?;
            fresh.add(run.start, m);
        }
        for run in runs(&need_resolutions) {
            let m = self
                .read_run(period, scope, by, &days[run.clone()], false, true)
                .await?;
            fresh.add(run.start, m);
        }
        let mut out = Measured::default();
        for (i, day) in days.iter().enumerate() {
            let (mut figures, had_resolutions) = found[i].take().unwrap_or_default();
            if need_main[i] {
                figures.durations = std::mem::take(&mut fresh.durations[i]);
                figures.answers = std::mem::take(&mut fresh.answers[i]);
                figures.sla = std::mem::take(&mut fresh.sla[i]);
            }
            if need_resolutions[i] {
                figures.resolutions = std::mem::take(&mut fresh.resolutions[i]);
            }
            let with_resolutions = had_resolutions || fcr_settled[i];
            if settled[i] && (need_main[i] || (need_resolutions[i] && fcr_settled[i])) {
                let mut kept = figures.clone();
                if !with_resolutions {
                    kept.resolutions.clear();
                }
                self.report_days.put(
                    key(day),
                    versions_of(day),
                    Kept::Conversations(kept, with_resolutions),
                );
            }
            out.add_day(figures, day.bucket);
        }
        Ok(out)
    }

    /// Reads the figures of consecutive days, one bucket per day.
    async fn read_run(
        &self,
        period: Period,
        scope: &Scope,
        by: Option<seva_store::reports::Dimension>,
        days: &[Day],
        main: bool,
        resolutions: bool,
    ) -> Result<Measured> {
        let (Some(first), Some(last)) = (days.first(), days.last()) else {
            return Ok(Measured::default());
        };
        let starts: Vec<Timestamp> = days.iter().map(|d| d.start).collect();
        let run = Period {
            from: first.start,
            to: last.end,
            ..period
        };
        let grouping = Grouping {
            by,
            starts: &starts,
        };
        Box::pin(self.measured_parts(run, scope, grouping, main, resolutions)).await
    }
}

/// Figures read now, per day of the report.
struct FreshDays {
    durations: Vec<[Vec<Cell<Vec<i64>>>; 4]>,
    resolutions: Vec<Vec<Cell<seva_store::reports::Resolutions>>>,
    answers: Vec<Vec<Cell<[seva_domain::kpi::Answers; 3]>>>,
    sla: Vec<Vec<Cell<seva_domain::sla::Attainment>>>,
}

impl FreshDays {
    fn new(n: usize) -> Self {
        FreshDays {
            durations: (0..n).map(|_| Default::default()).collect(),
            resolutions: (0..n).map(|_| Vec::new()).collect(),
            answers: (0..n).map(|_| Vec::new()).collect(),
            sla: (0..n).map(|_| Vec::new()).collect(),
        }
    }

    fn add(&mut self, run_start: usize, read: Measured) {
        for (which, cells) in read.durations.into_iter().enumerate() {
            for cell in cells {
                if let Some(day) = self.durations.get_mut(run_start + cell.bucket) {
                    day[which].push(cell);
                }
            }
        }
        spread(read.resolutions, run_start, &mut self.resolutions);
        spread(read.answers, run_start, &mut self.answers);
        spread(read.sla, run_start, &mut self.sla);
    }
}

impl App {
    /// Customers who ordered (not cancelled) on `days`, and how many orders each: settled days
    /// from the cache while their versions are unchanged, the rest read now.
    pub(crate) async fn buyers_of_days(&self, days: &[Day]) -> Result<HashMap<i64, i64>> {
        let cut = self.settled_clock();
        let settled = |d: &Day| d.end <= cut - Duration::days(SETTLED_DAYS);
        let all_settled: Vec<bool> = days.iter().map(settled).collect();
        let versions = self
            .versions_of_days(kpi_days::Kind::Orders, days, &all_settled)
            .await?;
        let versions_of = |d: &Day| versions_at(days, &versions, d);
        // The same local day in any time zone with the same midnights: the same buyers.
        let key = |d: &Day| Key {
            view: format!(
                "buyers|{}|{}",
                seva_store::to_micros(d.start),
                seva_store::to_micros(d.end)
            ),
            date: d.date,
        };
        let first = days.first().map_or(0, |d| seva_store::to_micros(d.start));
        let _reading = self
            .report_days
            .reading_if_missing(
                format!("buyers|{first}"),
                days.iter().filter(|d| settled(d)).map(key),
            )
            .await;
        let mut per_day: Vec<Option<Vec<(i64, i64)>>> = days
            .iter()
            .map(|d| match self.report_days.get(&key(d), &versions_of(d)) {
                Some(Kept::Buyers(b)) if settled(d) => Some(b),
                _ => None,
            })
            .collect();
        let missing: Vec<bool> = per_day.iter().map(Option::is_none).collect();
        for run in runs(&missing) {
            let run_days = &days[run.clone()];
            let starts: Vec<Timestamp> = run_days.iter().map(|d| d.start).collect();
            let (Some(first), Some(last)) = (run_days.first(), run_days.last()) else {
                continue;
            };
            let mut conn = self.store.conn().await?;
            let rows =
                seva_store::reports::buyers(&mut conn, first.start, last.end, &starts).await?;
            drop(conn);
            let mut fresh: Vec<Vec<(i64, i64)>> = vec![Vec::new(); run_days.len()];
            for (bucket, customer, n) in rows {
                if let Some(day) = fresh.get_mut(bucket) {
                    day.push((customer, n));
                }
            }
            for (i, buyers) in fresh.into_iter().enumerate() {
                let d = &run_days[i];
                if settled(d) {
                    self.report_days
                        .put(key(d), versions_of(d), Kept::Buyers(buyers.clone()));
                }
                per_day[run.start + i] = Some(buyers);
            }
        }
        let mut all: HashMap<i64, i64> = HashMap::new();
        for (customer, n) in per_day.into_iter().flatten().flatten() {
            *all.entry(customer).or_default() += n;
        }
        Ok(all)
    }

    /// Customers churned at `at` (no order within `horizon` before it, one before that): at a
    /// settled instant, read once per version of the orders before it; later, from the last
    /// settled day's start and the change since (two short windows of orders).
    pub(crate) async fn churned_at(&self, at: Timestamp, horizon: Duration) -> Result<i64> {
        let cut = self.settled_clock() - Duration::days(SETTLED_DAYS);
        let base = if at <= cut {
            at
        } else {
            let day = kpi_days::day_of(seva_store::to_micros(cut));
            seva_store::from_micros(day * kpi_days::DAY_MICROS)?
        };
        let key = Key {
            view: format!(
                "churned|{}|{}",
                seva_store::to_micros(base),
                horizon.num_seconds()
            ),
            date: chrono::NaiveDate::default(),
        };
        let _reading = self
            .report_days
            .reading_if_missing(key.view.clone(), std::iter::once(key.clone()))
            .await;
        let mut conn = self.store.conn().await?;
        if at - base > horizon / 2 {
            // A clock far ahead of the system's (a test's): the change is not short; read it.
            let scope = Scope::default();
            return Ok(seva_store::reports::churned(&mut conn, at - horizon, at, &scope).await?);
        }
        let fingerprint = kpi_days::fingerprint_before(
            &mut conn,
            kpi_days::Kind::Orders,
            kpi_days::day_of(seva_store::to_micros(base) - 1) + 1,
        )
        .await?;
        let churned = if let Some(Kept::Churned(n)) = self.report_days.get(&key, &[fingerprint]) {
            n
        } else {
            let scope = Scope::default();
            let n = seva_store::reports::churned(&mut conn, base - horizon, base, &scope).await?;
            self.report_days
                .put(key, vec![fingerprint], Kept::Churned(n));
            n
        };
        if base == at {
            return Ok(churned);
        }
        Ok(churned + seva_store::reports::churn_change(&mut conn, base, at, horizon).await?)
    }
}
