//! KPI arithmetic, exactly as `PRODUCT.md` defines it, over what happened in a conversation
//! (its `Step`s) and over survey answers and orders. Pure: the store gathers the steps, these
//! functions count. Every duration is in seconds, on the calendar or the business-hours clock.

use chrono::Duration;

use crate::Timestamp;
use crate::hours::Schedule;

/// Which clock a duration is measured on.
#[derive(Debug, Clone, Copy)]
pub enum Clock<'a> {
    Calendar,
    /// Only the open time of the schedule (the conversation's team's, else its brand's) counts.
    Business(&'a Schedule),
}

impl Clock<'_> {
    /// Seconds from `from` to `to` on this clock; 0 when `to` is not after `from`.
    pub fn seconds(&self, from: Timestamp, to: Timestamp) -> i64 {
        if to <= from {
            return 0;
        }
        match self {
            Clock::Calendar => (to - from).num_seconds(),
            Clock::Business(schedule) => schedule.open_seconds(from, to),
        }
    }
}

/// Median, p90 and mean of durations, with how many there were.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    pub count: u64,
    pub mean: Option<f64>,
    /// The middle value; of an even count, the mean of the middle two.
    pub median: Option<f64>,
    /// By nearest rank: the ⌈0.9·n⌉-th smallest value.
    pub p90: Option<i64>,
}

/// The statistics of `values` (sorted in place).
pub fn stats(values: &mut [i64]) -> Stats {
    values.sort_unstable();
    let n = values.len();
    if n == 0 {
        return Stats {
            count: 0,
            mean: None,
            median: None,
            p90: None,
        };
    }
    #[allow(clippy::cast_precision_loss)] // durations in seconds fit f64 exactly
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    #[allow(clippy::cast_precision_loss)]
    let median = if n % 2 == 1 {
        values[n / 2] as f64
    } else {
        f64::midpoint(values[n / 2 - 1] as f64, values[n / 2] as f64)
    };
    // ⌈0.9·n⌉ in integers: (9n + 9) / 10.
    let rank = (9 * n).div_ceil(10);
    Stats {
        count: n as u64,
        mean: Some(mean),
        median: Some(median),
        p90: Some(values[rank.max(1) - 1]),
    }
}

/// What happened in a conversation, as the KPIs see it, in time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A message from the customer (any channel).
    CustomerMessage(Timestamp),
    /// A public reply written by a human agent (not a note, bot, automatic or survey message).
    AgentReply(Timestamp),
    /// The conversation became resolved (or closed without being resolved first).
    Resolved(Timestamp),
    /// It was opened again after a resolution.
    Reopened(Timestamp),
}

impl Step {
    pub fn at(self) -> Timestamp {
        match self {
            Step::CustomerMessage(at)
            | Step::AgentReply(at)
            | Step::Resolved(at)
            | Step::Reopened(at) => at,
        }
    }
}

/// A conversation's facts, read once from its steps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// The customer wrote before any agent reply. Conversations an agent started have no first
    /// response time.
    pub customer_started: bool,
    pub first_customer_message: Option<Timestamp>,
    pub first_reply: Option<Timestamp>,
    /// Each customer turn (consecutive customer messages): when it began and when the next
    /// public agent reply answered it, if one did.
    pub turns: Vec<(Timestamp, Option<Timestamp>)>,
    pub first_resolution: Option<Timestamp>,
    /// The last resolution, when the conversation is resolved now.
    pub final_resolution: Option<Timestamp>,
    pub reopened: bool,
    /// When it was reopened after a resolution, each time.
    pub reopened_at: Vec<Timestamp>,
    pub public_replies: u32,
}

/// Reads a conversation's facts from its steps (sorted by time here; a reply and a customer
/// message at the same instant keep their given order).
pub fn facts(steps: &[Step]) -> Facts {
    let mut steps = steps.to_vec();
    steps.sort_by_key(|s| s.at());
    let mut f = Facts::default();
    let mut open_turn: Option<Timestamp> = None;
    let mut resolved = false;
    for step in steps {
        match step {
            Step::CustomerMessage(at) => {
                if f.first_customer_message.is_none() {
                    f.first_customer_message = Some(at);
                    f.customer_started = f.first_reply.is_none();
                }
                if open_turn.is_none() {
                    open_turn = Some(at);
                }
            }
            Step::AgentReply(at) => {
                f.public_replies += 1;
                if f.first_reply.is_none() {
                    f.first_reply = Some(at);
                }
                if let Some(start) = open_turn.take() {
                    f.turns.push((start, Some(at)));
                }
            }
            Step::Resolved(at) => {
                if f.first_resolution.is_none() {
                    f.first_resolution = Some(at);
                }
                f.final_resolution = Some(at);
                resolved = true;
            }
            Step::Reopened(at) => {
                if resolved {
                    f.reopened = true;
                    f.reopened_at.push(at);
                }
                f.final_resolution = None;
                resolved = false;
            }
        }
    }
    if let Some(start) = open_turn {
        f.turns.push((start, None));
    }
    f
}

impl Facts {
    /// First customer message → first public agent reply; `None` when the agent started the
    /// conversation or nobody has answered yet.
    pub fn first_response(&self, clock: Clock<'_>) -> Option<i64> {
        match (
            self.customer_started,
            self.first_customer_message,
            self.first_reply,
        ) {
            (true, Some(from), Some(to)) => Some(clock.seconds(from, to)),
            _ => None,
        }
    }

    /// The customer is still waiting for a first reply (reported apart: a count and ages).
    pub fn unanswered(&self) -> bool {
        self.customer_started && self.first_reply.is_none()
    }

    /// Every answered customer turn: (answered at, seconds it waited).
    pub fn turn_responses(&self, clock: Clock<'_>) -> Vec<(Timestamp, i64)> {
        self.turns
            .iter()
            .filter_map(|&(start, answered)| answered.map(|at| (at, clock.seconds(start, at))))
            .collect()
    }

    /// First customer message → first resolution.
    pub fn first_resolution_time(&self, clock: Clock<'_>) -> Option<i64> {
        Some(clock.seconds(self.first_customer_message?, self.first_resolution?))
    }

    /// First customer message → the final resolution (the conversation is resolved now).
    pub fn full_resolution_time(&self, clock: Clock<'_>) -> Option<i64> {
        Some(clock.seconds(self.first_customer_message?, self.final_resolution?))
    }

    /// Resolved, never reopened, with exactly one public agent reply; `None` when it does not
    /// count (not resolved, or resolved without any public reply).
    pub fn one_touch(&self) -> Option<bool> {
        if self.final_resolution.is_none() || self.public_replies == 0 {
            return None;
        }
        Some(!self.reopened && self.public_replies == 1)
    }

    /// First contact resolution, given when the same customer next opened a conversation (on
    /// any channel) after this one's resolution.
    pub fn fcr(&self, next_contact: Option<Timestamp>, window: Duration, now: Timestamp) -> Fcr {
        fcr(
            self.one_touch(),
            self.final_resolution,
            next_contact,
            window,
            now,
        )
    }
}

/// First contact resolution of a conversation that is one-touch or not (`None`: does not
/// count), resolved at `resolved`, whose customer next opened a conversation at
/// `next_contact`: yes when one-touch and nothing came back within the repeat window after the
/// resolution; counted only once the window has passed (until then, pending).
pub fn fcr(
    one_touch: Option<bool>,
    resolved: Option<Timestamp>,
    next_contact: Option<Timestamp>,
    window: Duration,
    now: Timestamp,
) -> Fcr {
    let (Some(one_touch), Some(resolved)) = (one_touch, resolved) else {
        return Fcr::NotCounted;
    };
    let window_end = resolved + window;
    if now < window_end {
        return Fcr::Pending;
    }
    let came_back = next_contact.is_some_and(|at| at >= resolved && at < window_end);
    if one_touch && !came_back {
        Fcr::Yes
    } else {
        Fcr::No
    }
}

/// Whether a conversation was resolved at first contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fcr {
    Yes,
    No,
    /// Resolved, but the repeat window has not passed yet: in neither count.
    Pending,
    /// Not resolved, or resolved without a public reply.
    NotCounted,
}

/// A share with the counts behind it, so other tools can check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ratio {
    pub numerator: u64,
    pub denominator: u64,
}

impl Ratio {
    /// The share in percent; `None` when there is nothing to divide.
    pub fn percent(self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        (self.denominator > 0).then(|| 100.0 * self.numerator as f64 / self.denominator as f64)
    }

    /// Adds another period's counts: splitting a period and adding the parts gives the whole.
    #[must_use]
    pub fn plus(self, other: Ratio) -> Ratio {
        Ratio {
            numerator: self.numerator + other.numerator,
            denominator: self.denominator + other.denominator,
        }
    }
}

/// Survey answers of one kind, summed: enough to give every survey figure and to add periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Answers {
    /// How many answers gave each score (index = score).
    pub by_score: [u64; 11],
}

impl Answers {
    pub fn from_scores(scores: impl IntoIterator<Item = u8>) -> Self {
        let mut a = Answers::default();
        for s in scores {
            if let Some(slot) = a.by_score.get_mut(usize::from(s)) {
                *slot += 1;
            }
        }
        a
    }

    #[must_use]
    pub fn plus(self, other: Answers) -> Answers {
        let mut by_score = self.by_score;
        for (mine, theirs) in by_score.iter_mut().zip(other.by_score) {
            *mine += theirs;
        }
        Answers { by_score }
    }

    pub fn count(&self) -> u64 {
        self.by_score.iter().sum()
    }

    fn count_in(&self, scores: std::ops::RangeInclusive<usize>) -> u64 {
        scores.filter_map(|s| self.by_score.get(s)).sum()
    }

    pub fn mean(&self) -> Option<f64> {
        let n = self.count();
        #[allow(clippy::cast_precision_loss)]
        (n > 0).then(|| {
            let total: u64 = self
                .by_score
                .iter()
                .enumerate()
                .map(|(s, c)| s as u64 * c)
                .sum();
            total as f64 / n as f64
        })
    }

    /// CSAT (1–5): answers of 4 or 5 ÷ all answers.
    pub fn csat(&self) -> Ratio {
        Ratio {
            numerator: self.count_in(4..=5),
            denominator: self.count(),
        }
    }

    /// NPS (0–10): % of 9–10 − % of 0–6, from −100 to 100, with the counts.
    pub fn nps(&self) -> Nps {
        Nps {
            promoters: self.count_in(9..=10),
            detractors: self.count_in(0..=6),
            answers: self.count(),
        }
    }

    /// CES (1–7): the mean is the headline; also the share of 5–7.
    pub fn ces_agree(&self) -> Ratio {
        Ratio {
            numerator: self.count_in(5..=7),
            denominator: self.count(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nps {
    pub promoters: u64,
    pub detractors: u64,
    pub answers: u64,
}

impl Nps {
    pub fn score(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        (self.answers > 0)
            .then(|| 100.0 * (self.promoters as f64 - self.detractors as f64) / self.answers as f64)
    }
}

/// Repeat purchase rate: customers with 2 or more orders in the period ÷ customers with at
/// least one. `orders_per_customer` holds each ordering customer's count in the period.
pub fn repeat_purchase(orders_per_customer: impl IntoIterator<Item = u64>) -> Ratio {
    let mut r = Ratio::default();
    for n in orders_per_customer {
        if n >= 1 {
            r.denominator += 1;
            if n >= 2 {
                r.numerator += 1;
            }
        }
    }
    r
}

/// Retention: of the customers who ordered in the previous period (of equal length), those who
/// ordered again in this one. Both lists are customer ids.
pub fn retention(previous: &[i64], this: &[i64]) -> Ratio {
    let this: std::collections::HashSet<i64> = this.iter().copied().collect();
    let previous: std::collections::HashSet<i64> = previous.iter().copied().collect();
    Ratio {
        numerator: previous.iter().filter(|c| this.contains(c)).count() as u64,
        denominator: previous.len() as u64,
    }
}

/// Churned: the customer's last order is older than the horizon (default 180 days).
pub fn churned(last_order: Timestamp, horizon: Duration, now: Timestamp) -> bool {
    last_order < now - horizon
}

/// The default churn horizon and FCR repeat window of PRODUCT.md.
pub const CHURN_HORIZON_DAYS: i64 = 180;
pub const REPEAT_WINDOW_DAYS: i64 = 7;

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;

    fn t(h: i64, m: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()
            + Duration::hours(h)
            + Duration::minutes(m)
    }

    #[test]
    fn statistics_use_the_mean_of_the_middle_two_and_the_nearest_rank() {
        let s = stats(&mut [40, 10, 30, 20]);
        assert_eq!(s.count, 4);
        assert_eq!(s.median, Some(25.0), "mean of 20 and 30");
        assert_eq!(s.mean, Some(25.0));
        assert_eq!(s.p90, Some(40), "⌈3.6⌉ = 4th");
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(stats(&mut ten.clone()).p90, Some(9), "⌈9⌉ = 9th");
        assert_eq!(stats(&mut [7]).p90, Some(7));
        assert_eq!(stats(&mut []).median, None);
        assert_eq!(stats(&mut [5, 1, 3]).median, Some(3.0));
    }

    #[test]
    fn first_response_turns_and_resolutions_follow_the_definitions() {
        let f = facts(&[
            Step::CustomerMessage(t(9, 0)),
            Step::CustomerMessage(t(9, 5)), // the same turn
            Step::AgentReply(t(9, 30)),
            Step::CustomerMessage(t(10, 0)),
            Step::AgentReply(t(11, 0)),
            Step::Resolved(t(11, 5)),
            Step::Reopened(t(12, 0)),
            Step::CustomerMessage(t(12, 0)),
            Step::AgentReply(t(12, 10)),
            Step::Resolved(t(12, 20)),
        ]);
        let cal = Clock::Calendar;
        assert_eq!(f.first_response(cal), Some(30 * 60));
        let turns: Vec<i64> = f.turn_responses(cal).into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            turns,
            [30 * 60, 60 * 60, 10 * 60],
            "three turns, the first of two messages"
        );
        assert_eq!(f.first_resolution_time(cal), Some(2 * 3600 + 5 * 60));
        assert_eq!(f.full_resolution_time(cal), Some(3 * 3600 + 20 * 60));
        assert!(f.reopened);
        assert_eq!(f.one_touch(), Some(false), "reopened, three replies");
        assert_eq!(
            f.fcr(None, Duration::days(7), t(12, 20) + Duration::days(8)),
            Fcr::No
        );
    }

    #[test]
    fn conversations_agents_start_have_no_first_response_and_unanswered_ones_wait() {
        let outbound = facts(&[
            Step::AgentReply(t(9, 0)),
            Step::CustomerMessage(t(10, 0)),
            Step::AgentReply(t(10, 30)),
        ]);
        assert_eq!(outbound.first_response(Clock::Calendar), None);
        assert_eq!(
            outbound.turn_responses(Clock::Calendar),
            [(t(10, 30), 30 * 60)],
            "its customer turns still count for the average response time"
        );
        let waiting = facts(&[Step::CustomerMessage(t(9, 0))]);
        assert!(waiting.unanswered());
        assert_eq!(waiting.first_response(Clock::Calendar), None);
        assert_eq!(waiting.one_touch(), None);
    }

    #[test]
    fn fcr_waits_for_the_repeat_window_and_sees_contacts_on_any_channel() {
        let f = facts(&[
            Step::CustomerMessage(t(9, 0)),
            Step::AgentReply(t(9, 30)),
            Step::Resolved(t(9, 40)),
        ]);
        let week = Duration::days(7);
        let resolved = t(9, 40);
        assert_eq!(f.one_touch(), Some(true));
        assert_eq!(
            f.fcr(None, week, resolved + Duration::days(3)),
            Fcr::Pending
        );
        assert_eq!(f.fcr(None, week, resolved + week), Fcr::Yes);
        let inside = Some(resolved + Duration::days(6));
        assert_eq!(f.fcr(inside, week, resolved + week), Fcr::No);
        let outside = Some(resolved + Duration::days(8));
        assert_eq!(f.fcr(outside, week, resolved + Duration::days(9)), Fcr::Yes);
        let unresolved = facts(&[Step::CustomerMessage(t(9, 0)), Step::AgentReply(t(9, 30))]);
        assert_eq!(
            unresolved.fcr(None, week, t(9, 0) + week * 2),
            Fcr::NotCounted
        );
    }

    #[test]
    fn survey_figures_match_their_formulas() {
        let csat = Answers::from_scores([5, 4, 4, 3, 1]);
        assert_eq!(
            csat.csat(),
            Ratio {
                numerator: 3,
                denominator: 5
            }
        );
        assert_eq!(csat.csat().percent(), Some(60.0));
        assert_eq!(csat.mean(), Some(3.4));
        let nps = Answers::from_scores([10, 9, 8, 7, 6, 0]).nps();
        assert_eq!((nps.promoters, nps.detractors, nps.answers), (2, 2, 6));
        assert_eq!(nps.score(), Some(0.0));
        assert_eq!(Answers::from_scores([10, 10]).nps().score(), Some(100.0));
        assert_eq!(Answers::from_scores([0]).nps().score(), Some(-100.0));
        let ces = Answers::from_scores([7, 6, 5, 2]);
        assert_eq!(ces.mean(), Some(5.0));
        assert_eq!(ces.ces_agree().percent(), Some(75.0));
        assert_eq!(Answers::default().csat().percent(), None);
    }

    #[test]
    fn purchase_figures_match_their_formulas() {
        assert_eq!(
            repeat_purchase([1, 2, 5, 1]),
            Ratio {
                numerator: 2,
                denominator: 4
            }
        );
        assert_eq!(
            retention(&[1, 2, 3, 4], &[2, 4, 9]),
            Ratio {
                numerator: 2,
                denominator: 4
            }
        );
        let now = t(0, 0);
        assert!(churned(now - Duration::days(181), Duration::days(180), now));
        assert!(!churned(
            now - Duration::days(179),
            Duration::days(180),
            now
        ));
    }

    fn tehran_shop() -> Schedule {
        Schedule::from_text(
            "Asia/Tehran",
            "sat 09:00-13:00 16:00-20:00\nsun 09:00-17:00\nmon 09:00-17:00\ntue 09:00-17:00\n\
             wed 09:00-17:00\nthu 09:00-13:00",
            "2026-11-04",
        )
        .unwrap()
    }

    #[test]
    fn the_business_clock_skips_nights_weekends_and_holidays_in_tehran() {
        let schedule = tehran_shop();
        // Thursday 2026-11-05 12:00 local (08:30 UTC) → Saturday 10:00 local (06:30 UTC):
        // one open hour on Thursday, none on Friday, one on Saturday.
        let from = Utc.with_ymd_and_hms(2026, 11, 5, 8, 30, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 11, 7, 6, 30, 0).unwrap();
        let f = facts(&[Step::CustomerMessage(from), Step::AgentReply(to)]);
        assert_eq!(f.first_response(Clock::Business(&schedule)), Some(2 * 3600));
        assert_eq!(f.first_response(Clock::Calendar), Some(46 * 3600));
        // Over the Wednesday holiday (2026-11-04): nothing counts that day.
        let tue = Utc.with_ymd_and_hms(2026, 11, 3, 12, 30, 0).unwrap(); // 16:00 local
        let thu = Utc.with_ymd_and_hms(2026, 11, 5, 6, 30, 0).unwrap(); // 10:00 local
        assert_eq!(Clock::Business(&schedule).seconds(tue, thu), 2 * 3600);
    }

    proptest! {
        /// Splitting the answers of a period in two and adding the parts' counts gives the
        /// whole period's figures.
        #[test]
        fn survey_counts_add_up_across_a_split(
            scores in proptest::collection::vec(0_u8..=10, 0..200),
            cut in 0_usize..200,
        ) {
            let cut = cut.min(scores.len());
            let whole = Answers::from_scores(scores.iter().copied());
            let first = Answers::from_scores(scores[..cut].iter().copied());
            let second = Answers::from_scores(scores[cut..].iter().copied());
            prop_assert_eq!(first.plus(second), whole);
            prop_assert_eq!(first.csat().plus(second.csat()), whole.csat());
            let (a, b, w) = (first.nps(), second.nps(), whole.nps());
            prop_assert_eq!(a.promoters + b.promoters, w.promoters);
            prop_assert_eq!(a.detractors + b.detractors, w.detractors);
        }

        /// The median and p90 are values between the smallest and the largest, in order.
        #[test]
        fn statistics_stay_within_the_values(values in proptest::collection::vec(0_i64..1_000_000, 1..100)) {
            let mut v = values.clone();
            let s = stats(&mut v);
            let (min, max) = (*v.first().unwrap(), *v.last().unwrap());
            let median = s.median.unwrap();
            let p90 = s.p90.unwrap();
            #[allow(clippy::cast_precision_loss)]
            {
                prop_assert!(median >= min as f64 && median <= max as f64);
                prop_assert!(p90 as f64 >= median);
            }
            prop_assert!(p90 >= min && p90 <= max);
        }

        /// A response on the business clock never takes longer than on the calendar.
        #[test]
        fn business_time_never_exceeds_calendar_time(
            start in 0_i64..(60 * 24 * 60),
            wait in 0_i64..(14 * 24 * 60),
        ) {
            let schedule = tehran_shop();
            let from = t(0, 0) + Duration::minutes(start);
            let to = from + Duration::minutes(wait);
            let f = facts(&[Step::CustomerMessage(from), Step::AgentReply(to)]);
            let business = f.first_response(Clock::Business(&schedule)).unwrap();
            let calendar = f.first_response(Clock::Calendar).unwrap();
            prop_assert!(business <= calendar);
            prop_assert!(business >= 0);
        }
    }
}
