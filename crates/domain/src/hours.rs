//! Business hours: when a team or brand is open, in its own time zone. A schedule is a time zone,
//! open intervals per weekday (split shifts allowed, any weekend) and holiday dates. It answers
//! whether it is open at an instant, when it next opens, and how many open seconds lie between
//! two instants (the business-hours clock of reports and SLAs).
//!
//! A local time that a daylight-saving change skips means the end of the gap (a shift from 02:30
//! on a spring-forward night starts at 03:00); a time it repeats means its first occurrence.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use crate::Timestamp;
use crate::macros::id_type;
use crate::values::ValueError;

id_type!(BusinessHoursId);

/// A named schedule, as admins keep it and assign it to teams and brands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    pub id: BusinessHoursId,
    pub name: String,
    pub schedule: Schedule,
}

/// Minutes in a day: an interval may end at 24:00.
pub const DAY_MINUTES: u16 = 1440;
/// Holidays one schedule may list.
pub const MAX_HOLIDAYS: usize = 400;
/// Intervals one day may have.
pub const MAX_INTERVALS_PER_DAY: usize = 8;
/// How far ahead `next_open` looks.
const LOOKAHEAD_DAYS: i64 = 800;

/// The weekdays in the order forms and the API list them, with their stable keys.
pub const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Mon, "mon"),
    (Weekday::Tue, "tue"),
    (Weekday::Wed, "wed"),
    (Weekday::Thu, "thu"),
    (Weekday::Fri, "fri"),
    (Weekday::Sat, "sat"),
    (Weekday::Sun, "sun"),
];

/// Open from `start` to `end`, minutes after local midnight; `start < end <= 1440`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    pub start: u16,
    pub end: u16,
}

/// A checked schedule: a known time zone, sorted and merged intervals, holidays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    tz: Tz,
    /// Indexed by `Weekday::num_days_from_monday`.
    week: [Vec<Interval>; 7],
    holidays: BTreeSet<NaiveDate>,
}

fn invalid(field: &'static str, value: &str) -> ValueError {
    ValueError::UnknownValue {
        field,
        value: value.chars().take(80).collect(),
    }
}

/// An IANA time zone name such as `Asia/Tehran`.
pub fn parse_time_zone(input: &str) -> Result<Tz, ValueError> {
    input
        .trim()
        .parse::<Tz>()
        .map_err(|_| invalid("time zone", input))
}

/// One day's intervals as people write them: `09:00-13:00, 16:00-20:00` (commas or spaces
/// between intervals; an end of `24:00` means midnight). Empty text: closed that day.
pub fn parse_day(input: &str) -> Result<Vec<Interval>, ValueError> {
    let mut intervals = Vec::new();
    for part in input
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
    {
        let bad = || invalid("opening hours", part);
        let (from, to) = part.split_once('-').ok_or_else(bad)?;
        let start = parse_clock(from).ok_or_else(bad)?;
        let end = parse_clock(to).ok_or_else(bad)?;
        if start >= end {
            return Err(bad());
        }
        intervals.push(Interval { start, end });
    }
    if intervals.len() > MAX_INTERVALS_PER_DAY {
        return Err(ValueError::TooLong {
            field: "opening hours",
            max: MAX_INTERVALS_PER_DAY,
        });
    }
    Ok(merge(intervals))
}

/// `HH:MM`, 00:00 to 24:00, as minutes; ASCII digits only.
fn parse_clock(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
    let minutes = h * 60 + m;
    (m < 60 && minutes <= DAY_MINUTES).then_some(minutes)
}

fn merge(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.sort_unstable();
    let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
    for next in intervals {
        match merged.last_mut() {
            Some(last) if next.start <= last.end => last.end = last.end.max(next.end),
            _ => merged.push(next),
        }
    }
    merged
}

/// One day's intervals as `parse_day` reads them: `09:00-13:00 16:00-20:00`.
pub fn format_day(intervals: &[Interval]) -> String {
    let clock = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
    intervals
        .iter()
        .map(|i| format!("{}-{}", clock(i.start), clock(i.end)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A holiday: `YYYY-MM-DD`, a date in the schedule's time zone.
pub fn parse_holiday(input: &str) -> Result<NaiveDate, ValueError> {
    NaiveDate::parse_from_str(input.trim(), "%Y-%m-%d").map_err(|_| invalid("holiday", input))
}

impl Schedule {
    /// `week` holds Monday's intervals first, Sunday's last.
    pub fn new(
        time_zone: &str,
        week: [Vec<Interval>; 7],
        holidays: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<Self, ValueError> {
        let tz = parse_time_zone(time_zone)?;
        let week = week.map(|day| {
            merge(
                day.into_iter()
                    .filter(|i| i.start < i.end && i.end <= DAY_MINUTES)
                    .collect(),
            )
        });
        let holidays: BTreeSet<NaiveDate> = holidays.into_iter().collect();
        if holidays.len() > MAX_HOLIDAYS {
            return Err(ValueError::TooLong {
                field: "holidays",
                max: MAX_HOLIDAYS,
            });
        }
        Ok(Self { tz, week, holidays })
    }

    /// A schedule from its stored text: one `day intervals` line per open day (`mon 09:00-17:00`)
    /// and holidays separated by commas or spaces.
    pub fn from_text(time_zone: &str, week: &str, holidays: &str) -> Result<Self, ValueError> {
        let mut days: [Vec<Interval>; 7] = Default::default();
        for line in week.lines().filter(|l| !l.trim().is_empty()) {
            let (key, rest) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
            let (day, _) = WEEKDAYS
                .iter()
                .find(|(_, k)| *k == key)
                .ok_or_else(|| invalid("weekday", key))?;
            days[day.num_days_from_monday() as usize].extend(parse_day(rest)?);
        }
        let holidays = holidays
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(parse_holiday)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(time_zone, days, holidays)
    }

    /// The week as `from_text` reads it.
    pub fn week_text(&self) -> String {
        WEEKDAYS
            .iter()
            .filter(|(d, _)| !self.day(*d).is_empty())
            .map(|(d, key)| format!("{key} {}", format_day(self.day(*d))))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The holidays as `from_text` reads them.
    pub fn holidays_text(&self) -> String {
        self.holidays
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn time_zone(&self) -> &'static str {
        self.tz.name()
    }

    pub fn day(&self, day: Weekday) -> &[Interval] {
        &self.week[day.num_days_from_monday() as usize]
    }

    pub fn holidays(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.holidays.iter().copied()
    }

    /// Whether the schedule is ever open (some interval on some day).
    pub fn ever_open(&self) -> bool {
        self.week.iter().any(|d| !d.is_empty())
    }

    pub fn is_open(&self, at: Timestamp) -> bool {
        let today = self.local_date(at);
        [today.pred_opt(), Some(today)]
            .into_iter()
            .flatten()
            .flat_map(|d| self.open_on(d))
            .any(|(start, end)| start <= at && at < end)
    }

    /// The first instant at or after `at` when the schedule is open; `None` when it never opens
    /// in the next two years.
    pub fn next_open(&self, at: Timestamp) -> Option<Timestamp> {
        if !self.ever_open() {
            return None;
        }
        let mut date = self.local_date(at).pred_opt()?;
        for _ in 0..LOOKAHEAD_DAYS {
            if let Some((start, _)) = self.open_on(date).into_iter().find(|(_, end)| *end > at) {
                return Some(start.max(at));
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// Open seconds in `[from, to)`; 0 when `to` is not after `from`.
    pub fn open_seconds(&self, from: Timestamp, to: Timestamp) -> i64 {
        if to <= from {
            return 0;
        }
        let (Some(first), Some(last)) = (
            self.local_date(from).pred_opt(),
            self.local_date(to).succ_opt(),
        ) else {
            return 0;
        };
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .flat_map(|d| self.open_on(d))
            .map(|(start, end)| (end.min(to) - start.max(from)).num_seconds().max(0))
            .sum()
    }

    /// The instant at which `seconds` open seconds have passed since `from` (the inverse of
    /// [`Schedule::open_seconds`]: `open_seconds(from, t) == seconds`, the earliest such `t`);
    /// `None` when the schedule does not open that long within two years.
    pub fn after_open_seconds(&self, from: Timestamp, seconds: i64) -> Option<Timestamp> {
        if seconds <= 0 {
            return Some(from);
        }
        if !self.ever_open() {
            return None;
        }
        let mut left = seconds;
        let mut date = self.local_date(from).pred_opt()?;
        for _ in 0..LOOKAHEAD_DAYS {
            for (start, end) in self.open_on(date) {
                let start = start.max(from);
                if end <= start {
                    continue;
                }
                let here = (end - start).num_seconds();
                if here >= left {
                    return Some(start + Duration::seconds(left));
                }
                left -= here;
            }
            date = date.succ_opt()?;
        }
        None
    }

    fn local_date(&self, at: Timestamp) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// The open intervals of one local date, as instants; none on a holiday.
    fn open_on(&self, date: NaiveDate) -> Vec<(Timestamp, Timestamp)> {
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        let midnight = date.and_time(chrono::NaiveTime::MIN);
        self.day(date.weekday())
            .iter()
            .map(|i| {
                let start = self.instant(midnight + Duration::minutes(i.start.into()));
                let end = self.instant(midnight + Duration::minutes(i.end.into()));
                (start, end)
            })
            .filter(|(start, end)| start < end)
            .collect()
    }

    /// A local wall-clock time as an instant: the first of two, or the end of a skipped gap.
    /// Either way later wall-clock times never give earlier instants, so one day's disjoint
    /// intervals stay disjoint.
    fn instant(&self, local: NaiveDateTime) -> Timestamp {
        // Gaps last an hour or two; a whole skipped day (Samoa, 2011) is the longest on record.
        for step in 0..=(2 * i64::from(DAY_MINUTES)) {
            let candidate = local + Duration::minutes(step);
            if let Some(t) = self.tz.from_local_datetime(&candidate).earliest() {
                return t.with_timezone(&Utc);
            }
        }
        local.and_utc()
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn at(text: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Saturday to Wednesday 09:00-13:00 and 16:00-20:00, Thursday mornings, Friday closed.
    fn tehran_shop() -> Schedule {
        Schedule::from_text(
            "Asia/Tehran",
            "sat 09:00-13:00 16:00-20:00\nsun 09:00-13:00,16:00-20:00\nmon 09:00-13:00 16:00-20:00\n\
             tue 09:00-13:00 16:00-20:00\nwed 09:00-13:00 16:00-20:00\nthu 09:00-13:00",
            "2026-03-21, 2026-03-22",
        )
        .unwrap()
    }

    #[test]
    fn tehrans_half_hour_offset_and_split_shifts_and_friday_weekend() {
        let s = tehran_shop();
        // 2026-11-23 is a Monday; Tehran is UTC+03:30 all year.
        assert!(!s.is_open(at("2026-11-23T05:29:59Z")), "08:59:59 local");
        assert!(s.is_open(at("2026-11-23T05:30:00Z")), "09:00 local");
        assert!(!s.is_open(at("2026-11-23T09:30:00Z")), "13:00 local: lunch");
        assert!(s.is_open(at("2026-11-23T12:30:00Z")), "16:00 local");
        assert_eq!(
            s.next_open(at("2026-11-23T10:00:00Z")),
            Some(at("2026-11-23T12:30:00Z"))
        );
        // Friday 2026-11-27 is closed: Thursday noon local's next opening after closing is Saturday.
        assert_eq!(
            s.next_open(at("2026-11-26T09:30:00Z")),
            Some(at("2026-11-28T05:30:00Z"))
        );
        // Monday 09:00 to Tuesday 09:00 local holds 8 open hours.
        assert_eq!(
            s.open_seconds(at("2026-11-23T05:30:00Z"), at("2026-11-24T05:30:00Z")),
            8 * 3600
        );
        assert_eq!(s.time_zone(), "Asia/Tehran");
    }

    #[test]
    fn holidays_are_closed_all_day() {
        let s = tehran_shop();
        // 2026-03-21 (Nowruz) is a Saturday, 2026-03-22 a Sunday: closed until Monday 09:00.
        assert!(!s.is_open(at("2026-03-21T07:00:00Z")));
        assert_eq!(
            s.next_open(at("2026-03-21T07:00:00Z")),
            Some(at("2026-03-23T05:30:00Z"))
        );
        assert_eq!(
            s.open_seconds(at("2026-03-20T00:00:00Z"), at("2026-03-23T00:00:00Z")),
            0
        );
    }

    #[test]
    fn kolkata_and_a_sunday_weekend() {
        let s = Schedule::from_text(
            "Asia/Kolkata",
            "mon 10:00-19:00\ntue 10:00-19:00\nwed 10:00-19:00\nthu 10:00-19:00\n\
             fri 10:00-19:00\nsat 10:00-14:00",
            "",
        )
        .unwrap();
        // Saturday 2026-11-28 14:00 IST is 08:30 UTC: closed till Monday 10:00 IST (04:30 UTC).
        assert!(s.is_open(at("2026-11-28T08:29:00Z")));
        assert_eq!(
            s.next_open(at("2026-11-28T08:30:00Z")),
            Some(at("2026-11-30T04:30:00Z"))
        );
        // A week holds 5 × 9 + 4 = 49 open hours.
        assert_eq!(
            s.open_seconds(at("2026-11-23T00:00:00Z"), at("2026-11-30T00:00:00Z")),
            49 * 3600
        );
    }

    #[test]
    fn daylight_saving_days_keep_their_wall_clock_hours() {
        let s =
            Schedule::from_text("Europe/London", "sun 00:00-24:00\nmon 09:00-17:00", "").unwrap();
        // Clocks went forward on Sunday 2026-03-29 (a 23-hour day) and back on 2026-10-25 (25).
        let day = |d: &str| at(&format!("{d}T00:00:00Z"));
        assert_eq!(
            s.open_seconds(day("2026-03-28"), day("2026-03-31")),
            (23 + 8) * 3600
        );
        assert_eq!(
            s.open_seconds(day("2026-10-24"), day("2026-10-28")),
            (25 + 8) * 3600
        );
        // Monday 09:00 BST is 08:00 UTC; 09:00 GMT is 09:00 UTC.
        assert_eq!(
            s.next_open(at("2026-03-30T01:00:00Z")),
            Some(at("2026-03-30T08:00:00Z"))
        );
        assert_eq!(
            s.next_open(at("2026-11-02T01:00:00Z")),
            Some(at("2026-11-02T09:00:00Z"))
        );
        // A shift starting in the skipped hour starts after it.
        let gap = Schedule::from_text("Europe/London", "sun 01:30-03:00", "").unwrap();
        assert_eq!(
            gap.next_open(at("2026-03-29T00:00:00Z")),
            Some(at("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn text_forms_round_trip_and_bad_input_is_refused() {
        let s = tehran_shop();
        let again = Schedule::from_text(s.time_zone(), &s.week_text(), &s.holidays_text()).unwrap();
        assert_eq!(again, s);
        assert_eq!(format_day(s.day(Weekday::Sat)), "09:00-13:00 16:00-20:00");
        assert_eq!(
            parse_day("16:00-20:00 09:00-13:00 12:00-14:00").unwrap(),
            [
                Interval {
                    start: 540,
                    end: 840
                },
                Interval {
                    start: 960,
                    end: 1200
                }
            ]
        );
        assert_eq!(parse_day("22:00-24:00").unwrap()[0].end, DAY_MINUTES);
        for bad in [
            "9-17",
            "09:00-08:00",
            "09:00-24:01",
            "25:00-26:00",
            "09:00",
            "۰۹:۰۰-۱۲:۰۰",
        ] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
        assert!(Schedule::from_text("Mars/Olympus", "", "").is_err());
        assert!(Schedule::from_text("UTC", "someday 09:00-10:00", "").is_err());
        assert!(Schedule::from_text("UTC", "", "2026-02-30").is_err());
        let never = Schedule::from_text("UTC", "", "").unwrap();
        assert_eq!(never.next_open(at("2026-01-01T00:00:00Z")), None);
        assert!(!never.is_open(at("2026-01-01T00:00:00Z")));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn schedule() -> impl Strategy<Value = Schedule> {
            let zones = prop::sample::select(vec![
                "UTC",
                "Asia/Tehran",
                "Asia/Kolkata",
                "Europe/London",
                "America/New_York",
                "Australia/Lord_Howe",
            ]);
            let day = prop::collection::vec((0u16..=1440, 0u16..=1440), 0..3).prop_map(|pairs| {
                pairs
                    .into_iter()
                    .map(|(a, b)| Interval {
                        start: a.min(b),
                        end: a.max(b),
                    })
                    .collect::<Vec<_>>()
            });
            let holidays = prop::collection::vec(0i64..730, 0..20);
            (zones, prop::array::uniform7(day), holidays).prop_map(|(tz, week, holidays)| {
                let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
                Schedule::new(
                    tz,
                    week,
                    holidays.into_iter().map(|d| base + Duration::days(d)),
                )
                .unwrap()
            })
        }

        /// Instants across 2026 and 2027, a minute apart at best.
        fn instant() -> impl Strategy<Value = Timestamp> {
            (1_767_225_600i64..1_830_297_600).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
        }

        proptest! {
            #[test]
            fn business_time_never_exceeds_calendar_time(s in schedule(), a in instant(), b in instant()) {
                let (from, to) = (a.min(b), a.max(b));
                let open = s.open_seconds(from, to);
                prop_assert!(open >= 0);
                prop_assert!(open <= (to - from).num_seconds());
            }

            #[test]
            fn splitting_a_period_and_adding_gives_the_whole(s in schedule(), a in instant(), b in instant(), c in instant()) {
                let mut t = [a, b, c];
                t.sort();
                prop_assert_eq!(s.open_seconds(t[0], t[2]), s.open_seconds(t[0], t[1]) + s.open_seconds(t[1], t[2]));
            }

            #[test]
            fn next_open_is_open_and_nothing_before_it_is(s in schedule(), a in instant()) {
                match s.next_open(a) {
                    Some(next) => {
                        prop_assert!(next >= a);
                        prop_assert!(s.is_open(next));
                        prop_assert_eq!(s.open_seconds(a, next), 0);
                    }
                    None => prop_assert!(!s.is_open(a)),
                }
            }
        }
    }
}
