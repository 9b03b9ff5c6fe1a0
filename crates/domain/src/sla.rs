//! SLA policies and their targets, as `PRODUCT.md` defines attainment: targets met ÷ targets
//! due, per target (first reply, next reply, resolution), on a clock that pauses while the
//! conversation is pending or on hold (and while it is resolved).
//!
//! A target is **settled** at one instant, and counted in the period holding it: when it was
//! met, at the reply or resolution that met it; when it was missed, at the instant it was
//! breached (whether the reply came later or not yet). A target neither met nor breached yet is
//! running, in neither count. Pure: the store gathers the conversation's facts and status
//! changes, these functions decide.

use crate::kpi::{Clock, Facts};
use crate::macros::{id_type, string_enum};
use crate::{BrandId, Channel, Priority, TeamId, Timestamp};

id_type!(SlaPolicyId);

string_enum! {
    /// What a target measures.
    pub enum Target {
        /// First customer message → first public agent reply (conversations the customer
        /// started).
        FirstReply => "first_reply",
        /// Each later customer turn → the next public agent reply.
        NextReply => "next_reply",
        /// First customer message → the resolution that holds (a reopening runs it on).
        Resolution => "resolution",
    }
}

/// The most a target may take, in seconds of the policy's clock; a target left out is not
/// measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Targets {
    pub first_reply: Option<i64>,
    pub next_reply: Option<i64>,
    pub resolution: Option<i64>,
}

impl Targets {
    pub fn of(&self, target: Target) -> Option<i64> {
        match target {
            Target::FirstReply => self.first_reply,
            Target::NextReply => self.next_reply,
            Target::Resolution => self.resolution,
        }
    }
}

/// Which conversations a policy covers: every condition set must hold; none set covers all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conditions {
    pub brand: Option<BrandId>,
    pub team: Option<TeamId>,
    pub channel: Option<Channel>,
    pub priority: Option<Priority>,
}

/// What a conversation is, as conditions see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    pub brand: Option<BrandId>,
    pub team: Option<TeamId>,
    pub channel: Channel,
    pub priority: Priority,
}

impl Conditions {
    pub fn covers(&self, s: &Subject) -> bool {
        self.brand.is_none_or(|b| s.brand == Some(b))
            && self.team.is_none_or(|t| s.team == Some(t))
            && self.channel.is_none_or(|c| s.channel == c)
            && self.priority.is_none_or(|p| s.priority == p)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SlaPolicy {
    pub id: SlaPolicyId,
    pub name: String,
    /// Policies are tried in this order; the first that covers a conversation applies.
    pub position: i64,
    pub conditions: Conditions,
    pub targets: Targets,
    /// Targets run on the business hours of the conversation's team, else its brand (the
    /// calendar when neither keeps hours); otherwise on the calendar.
    pub business_hours: bool,
}

/// The policy that applies to a conversation: the first (by position) that covers it.
pub fn policy_for<'a>(policies: &'a [SlaPolicy], subject: &Subject) -> Option<&'a SlaPolicy> {
    policies
        .iter()
        .filter(|p| p.conditions.covers(subject))
        .min_by_key(|p| (p.position, p.id))
}

/// When a conversation's SLA clock runs: while it is open, not while it is pending, on hold,
/// resolved or closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// Whether it ran before the first change.
    pub initially: bool,
    /// Each instant it started (`true`) or stopped (`false`) running, in time order.
    pub changes: Vec<(Timestamp, bool)>,
}

impl Activity {
    /// The running intervals from `from` on; the last may never end.
    fn running_from(&self, from: Timestamp) -> Vec<(Timestamp, Option<Timestamp>)> {
        let mut out = Vec::new();
        let mut running = self.initially;
        let mut since = from;
        for &(at, now_running) in &self.changes {
            if at <= from {
                running = now_running;
                continue;
            }
            if running && !now_running {
                out.push((since, Some(at)));
            }
            if !running && now_running {
                since = at;
            }
            running = now_running;
        }
        if running {
            out.push((since, None));
        }
        out
    }

    /// Seconds the clock ran in `[from, to)`.
    pub fn running_seconds(&self, from: Timestamp, to: Timestamp, clock: Clock<'_>) -> i64 {
        self.running_from(from)
            .into_iter()
            .map(|(start, end)| clock.seconds(start.min(to), end.map_or(to, |e| e.min(to))))
            .sum()
    }

    /// The instant at which the clock, started at `from`, has run `limit` seconds; `None` when
    /// it has stopped for good before (it stays stopped until a change, which recomputes).
    pub fn deadline(&self, from: Timestamp, limit: i64, clock: Clock<'_>) -> Option<Timestamp> {
        let mut left = limit;
        for (start, end) in self.running_from(from) {
            let here = end.map(|e| clock.seconds(start, e));
            if here.is_none_or(|h| h >= left) {
                return match clock {
                    Clock::Calendar => Some(start + chrono::Duration::seconds(left)),
                    Clock::Business(schedule) => schedule.after_open_seconds(start, left),
                };
            }
            left -= here.unwrap_or(0);
        }
        None
    }
}

/// One target of one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub target: Target,
    /// When its clock started: the customer message it waits on.
    pub started: Timestamp,
    /// The reply or resolution that ended it, if any yet.
    pub done: Option<Timestamp>,
    /// When it is breached, or was (`None`: the clock stopped short of the limit, or it was
    /// met first).
    pub due: Option<Timestamp>,
    pub met: bool,
}

impl Outcome {
    /// When it counts: at the reply that met it, else at its breach. Until `now` passes that
    /// instant (a breach still ahead) it is running and counts nowhere.
    pub fn settled(&self) -> Option<Timestamp> {
        if self.met { self.done } else { self.due }
    }

    /// Whether it is settled by `now`, and if so whether met.
    pub fn at(&self, now: Timestamp) -> Option<bool> {
        self.settled().filter(|s| *s <= now).map(|_| self.met)
    }
}

/// One target of a conversation, whatever the policy: what it measures, when its clock
/// started, and the reply or resolution that ended it, if any yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    pub target: Target,
    pub started: Timestamp,
    pub done: Option<Timestamp>,
}

/// The targets a conversation has, from its facts: a first reply when the customer started
/// it, a next reply for each customer turn after the first reply, and its resolution.
pub fn instances(facts: &Facts) -> Vec<Instance> {
    let mut out = Vec::new();
    if facts.customer_started
        && let Some(first) = facts.first_customer_message
    {
        out.push(Instance {
            target: Target::FirstReply,
            started: first,
            done: facts.first_reply,
        });
    }
    // Later turns: those that began after the first reply.
    for &(start, answered) in &facts.turns {
        if facts.first_reply.is_some_and(|r| start > r) {
            out.push(Instance {
                target: Target::NextReply,
                started: start,
                done: answered,
            });
        }
    }
    if let Some(first) = facts.first_customer_message {
        out.push(Instance {
            target: Target::Resolution,
            started: first,
            done: facts.final_resolution,
        });
    }
    out
}

/// A target judged under a policy's `targets` on `clock` (`None`: the policy sets no such
/// target).
pub fn judge(
    i: &Instance,
    activity: &Activity,
    targets: &Targets,
    clock: Clock<'_>,
) -> Option<Outcome> {
    let limit = targets.of(i.target)?;
    let met = i
        .done
        .is_some_and(|d| activity.running_seconds(i.started, d, clock) <= limit);
    Some(Outcome {
        target: i.target,
        started: i.started,
        done: i.done,
        due: if met {
            None
        } else {
            activity.deadline(i.started, limit, clock)
        },
        met,
    })
}

/// A conversation's targets under a policy's `targets`, with its facts and its activity,
/// measured on `clock`.
pub fn outcomes(
    facts: &Facts,
    activity: &Activity,
    targets: &Targets,
    clock: Clock<'_>,
) -> Vec<Outcome> {
    instances(facts)
        .iter()
        .filter_map(|i| judge(i, activity, targets, clock))
        .collect()
}

/// The targets to keep for a conversation: a target already done (replied to, resolved) keeps
/// the outcome it was given then, whatever policy applies now (a new priority, an edited or
/// deleted policy); the others are judged under `policy` now, or dropped without one. `kept`
/// holds its done targets as last written, with the policy that judged them.
pub fn settle<P: Copy>(
    facts: &Facts,
    activity: &Activity,
    kept: &[(Outcome, P)],
    policy: Option<(P, &Targets, Clock<'_>)>,
) -> Vec<(Outcome, P)> {
    instances(facts)
        .iter()
        .filter_map(|i| {
            let done_before = kept.iter().find(|(o, _)| {
                i.done.is_some()
                    && o.target == i.target
                    && o.started == i.started
                    && o.done == i.done
            });
            if let Some(old) = done_before {
                return Some(*old);
            }
            let (id, targets, clock) = policy?;
            judge(i, activity, targets, clock).map(|o| (o, id))
        })
        .collect()
}

/// Met and due targets of one kind, summed (a `Ratio`: met ÷ due).
pub type Attainment = [crate::kpi::Ratio; 3];

/// All targets together.
pub fn total(a: &Attainment) -> crate::kpi::Ratio {
    a.iter()
        .fold(crate::kpi::Ratio::default(), |sum, r| sum.plus(*r))
}

/// The index of a target in an [`Attainment`].
pub fn slot(target: Target) -> usize {
    match target {
        Target::FirstReply => 0,
        Target::NextReply => 1,
        Target::Resolution => 2,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::hours::Schedule;
    use crate::kpi::{Step, facts};

    fn at(text: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn always() -> Activity {
        Activity {
            initially: true,
            changes: Vec::new(),
        }
    }

    const HOUR: i64 = 3600;

    #[test]
    fn first_reply_within_the_target_is_met_at_the_reply() {
        let f = facts(&[
            Step::CustomerMessage(at("2026-05-04T09:00:00Z")),
            Step::AgentReply(at("2026-05-04T09:50:00Z")),
        ]);
        let targets = Targets {
            first_reply: Some(HOUR),
            ..Targets::default()
        };
        let o = outcomes(&f, &always(), &targets, Clock::Calendar);
        assert_eq!(o.len(), 1);
        assert!(o[0].met);
        assert_eq!(o[0].settled(), Some(at("2026-05-04T09:50:00Z")));
    }

    #[test]
    fn a_late_reply_is_missed_at_the_breach_not_at_the_reply() {
        let f = facts(&[
            Step::CustomerMessage(at("2026-05-04T23:30:00Z")),
            Step::AgentReply(at("2026-05-05T02:00:00Z")),
        ]);
        let targets = Targets {
            first_reply: Some(HOUR),
            ..Targets::default()
        };
        let o = outcomes(&f, &always(), &targets, Clock::Calendar);
        assert!(!o[0].met);
        assert_eq!(o[0].settled(), Some(at("2026-05-05T00:30:00Z")));
        // Unanswered: breached all the same, once the hour has passed.
        let waiting = facts(&[Step::CustomerMessage(at("2026-05-04T23:30:00Z"))]);
        let o = outcomes(&waiting, &always(), &targets, Clock::Calendar);
        assert_eq!(o[0].at(at("2026-05-05T00:29:59Z")), None, "still running");
        assert_eq!(o[0].at(at("2026-05-05T00:30:00Z")), Some(false));
    }

    #[test]
    fn the_clock_pauses_while_pending_or_on_hold() {
        // Open 09:00-09:30, pending 09:30-11:30, open again; reply at 12:00: 60 minutes ran.
        let activity = Activity {
            initially: true,
            changes: vec![
                (at("2026-05-04T09:30:00Z"), false),
                (at("2026-05-04T11:30:00Z"), true),
            ],
        };
        let f = facts(&[
            Step::CustomerMessage(at("2026-05-04T09:00:00Z")),
            Step::AgentReply(at("2026-05-04T12:00:00Z")),
        ]);
        let on_time = Targets {
            first_reply: Some(HOUR),
            ..Targets::default()
        };
        assert!(outcomes(&f, &activity, &on_time, Clock::Calendar)[0].met);
        let tight = Targets {
            first_reply: Some(45 * 60),
            ..Targets::default()
        };
        let o = outcomes(&f, &activity, &tight, Clock::Calendar)[0];
        assert!(!o.met);
        // 30 minutes before the pause, 15 after it.
        assert_eq!(o.due, Some(at("2026-05-04T11:45:00Z")));
        // Paused for good before the limit: running, never due.
        let parked = Activity {
            initially: true,
            changes: vec![(at("2026-05-04T09:30:00Z"), false)],
        };
        let waiting = facts(&[Step::CustomerMessage(at("2026-05-04T09:00:00Z"))]);
        assert_eq!(
            outcomes(&waiting, &parked, &tight, Clock::Calendar)[0].settled(),
            None
        );
    }

    #[test]
    fn next_reply_covers_each_later_turn_and_resolution_runs_through_a_reopening() {
        let f = facts(&[
            Step::CustomerMessage(at("2026-05-04T09:00:00Z")),
            Step::AgentReply(at("2026-05-04T09:10:00Z")),
            Step::Resolved(at("2026-05-04T09:20:00Z")),
            Step::Reopened(at("2026-05-04T12:00:00Z")),
            Step::CustomerMessage(at("2026-05-04T12:00:00Z")),
            Step::AgentReply(at("2026-05-04T14:00:00Z")),
            Step::Resolved(at("2026-05-04T14:30:00Z")),
        ]);
        // Not running while resolved (09:20-12:00).
        let activity = Activity {
            initially: true,
            changes: vec![
                (at("2026-05-04T09:20:00Z"), false),
                (at("2026-05-04T12:00:00Z"), true),
                (at("2026-05-04T14:30:00Z"), false),
            ],
        };
        let targets = Targets {
            first_reply: Some(HOUR),
            next_reply: Some(HOUR),
            resolution: Some(3 * HOUR),
        };
        let o = outcomes(&f, &activity, &targets, Clock::Calendar);
        let kinds: Vec<_> = o.iter().map(|o| (o.target, o.met)).collect();
        assert_eq!(
            kinds,
            vec![
                (Target::FirstReply, true),
                (Target::NextReply, false),
                (Target::Resolution, true),
            ]
        );
        assert_eq!(o[1].settled(), Some(at("2026-05-04T13:00:00Z")));
        // 20 minutes, then 2 h 30 min: 2 h 50 min ran of 3 h.
        assert_eq!(o[2].settled(), Some(at("2026-05-04T14:30:00Z")));
    }

    #[test]
    fn business_hours_deadlines_skip_closed_time_in_a_half_hour_zone() {
        // Tehran (UTC+3:30), open 09:00-13:00 and 16:00-20:00; a message at 12:30 local with
        // a 2-hour target is due at 17:30 local (30 minutes, then 90).
        let tehran = Schedule::from_text(
            "Asia/Tehran",
            "sat 09:00-13:00 16:00-20:00\nsun 09:00-13:00 16:00-20:00\n\
             mon 09:00-13:00 16:00-20:00",
            "",
        )
        .unwrap();
        let f = facts(&[Step::CustomerMessage(at("2026-05-04T09:00:00Z"))]);
        let targets = Targets {
            first_reply: Some(2 * HOUR),
            ..Targets::default()
        };
        let o = outcomes(&f, &always(), &targets, Clock::Business(&tehran));
        assert_eq!(o[0].due, Some(at("2026-05-04T14:00:00Z")));
        assert_eq!(
            tehran.open_seconds(at("2026-05-04T09:00:00Z"), at("2026-05-04T14:00:00Z")),
            2 * HOUR
        );
    }

    #[test]
    fn a_done_target_keeps_its_outcome_and_a_waiting_one_follows_the_policy_now() {
        let f = facts(&[
            Step::CustomerMessage(at("2026-05-04T09:00:00Z")),
            Step::AgentReply(at("2026-05-04T11:00:00Z")),
            Step::CustomerMessage(at("2026-05-04T12:00:00Z")),
        ]);
        let normal = Targets {
            first_reply: Some(3 * HOUR),
            next_reply: Some(3 * HOUR),
            ..Targets::default()
        };
        let urgent = Targets {
            first_reply: Some(HOUR / 2),
            next_reply: Some(HOUR / 2),
            ..Targets::default()
        };
        let before = settle(&f, &always(), &[], Some((1, &normal, Clock::Calendar)));
        assert!(before[0].0.met, "first reply in 2 h of 3");
        // Urgent now: the first reply, done, stays met under policy 1; the waiting next reply
        // is judged under policy 2.
        let done: Vec<_> = before
            .iter()
            .filter(|(o, _)| o.done.is_some())
            .copied()
            .collect();
        let after = settle(&f, &always(), &done, Some((2, &urgent, Clock::Calendar)));
        assert_eq!(after[0], before[0]);
        assert_eq!(after[1].1, 2);
        assert_eq!(after[1].0.due, Some(at("2026-05-04T12:30:00Z")));
        // No policy any more: the done target stays, the waiting one goes.
        let none = settle::<i32>(&f, &always(), &done, None);
        assert_eq!(none, vec![before[0]]);
    }

    #[test]
    fn the_first_policy_in_order_that_covers_the_conversation_applies() {
        let policy = |id, position, priority| SlaPolicy {
            id: SlaPolicyId(id),
            name: format!("p{id}"),
            position,
            conditions: Conditions {
                priority,
                ..Conditions::default()
            },
            targets: Targets::default(),
            business_hours: false,
        };
        let all = [policy(1, 2, None), policy(2, 1, Some(Priority::Urgent))];
        let subject = |priority| Subject {
            brand: None,
            team: None,
            channel: Channel::Email,
            priority,
        };
        assert_eq!(
            policy_for(&all, &subject(Priority::Urgent)).map(|p| p.id),
            Some(SlaPolicyId(2))
        );
        assert_eq!(
            policy_for(&all, &subject(Priority::Low)).map(|p| p.id),
            Some(SlaPolicyId(1))
        );
    }
}

#[cfg(test)]
mod properties {
    use chrono::{DateTime, Duration, Utc};
    use proptest::prelude::*;

    use super::*;

    fn base() -> Timestamp {
        DateTime::parse_from_rfc3339("2026-05-04T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    proptest! {
        /// The deadline is exactly where the running clock reaches the limit, and never
        /// before the clock started.
        #[test]
        fn the_deadline_is_where_the_clock_reaches_the_limit(
            flips in proptest::collection::vec(1i64..20_000, 0..8),
            initially in any::<bool>(),
            limit in 1i64..40_000,
        ) {
            let mut t = base();
            let mut running = initially;
            let mut changes = Vec::new();
            for step in flips {
                t += Duration::seconds(step);
                running = !running;
                changes.push((t, running));
            }
            let activity = Activity { initially, changes };
            let from = base() + Duration::seconds(5);
            if let Some(due) = activity.deadline(from, limit, Clock::Calendar) {
                prop_assert!(due >= from);
                prop_assert_eq!(activity.running_seconds(from, due, Clock::Calendar), limit);
            } else {
                let far = base() + Duration::days(30);
                prop_assert!(activity.running_seconds(from, far, Clock::Calendar) < limit);
            }
        }
    }
}
