//! Surveys: CSAT, CES and NPS as PRODUCT.md words them, a brand's settings (which are asked,
//! the quiet period, relationship NPS), and the rules for when a customer is asked.

use crate::Timestamp;
use crate::macros::string_enum;
use crate::values::ValueError;

string_enum! {
    /// A survey question. The spelling is stored and shown by the API.
    pub enum SurveyKind {
        /// "How satisfied are you with the help you received?" 1–5.
        Csat => "csat",
        /// "{brand} made it easy to handle my issue." 1 (strongly disagree) … 7 (strongly agree).
        Ces => "ces",
        /// "How likely are you to recommend {brand} to a friend?" 0–10.
        Nps => "nps",
    }
}

impl SurveyKind {
    /// The scores a customer can give, lowest first.
    pub fn scale(self) -> std::ops::RangeInclusive<u8> {
        match self {
            SurveyKind::Csat => 1..=5,
            SurveyKind::Ces => 1..=7,
            SurveyKind::Nps => 0..=10,
        }
    }

    /// `score` if it is on this question's scale.
    pub fn check(self, score: i64) -> Result<u8, ValueError> {
        u8::try_from(score)
            .ok()
            .filter(|s| self.scale().contains(s))
            .ok_or_else(|| ValueError::UnknownValue {
                field: match self {
                    SurveyKind::Csat => "CSAT score (1 to 5)",
                    SurveyKind::Ces => "CES score (1 to 7)",
                    SurveyKind::Nps => "NPS score (0 to 10)",
                },
                value: score.to_string(),
            })
    }
}

string_enum! {
    /// How the customer was asked.
    pub enum SurveyChannel {
        /// One-click rating links in an email.
        Email => "email",
        /// Asked on the customer's portal (and answered there or in the widget).
        Portal => "portal",
    }
}

/// The longest quiet period, in days.
pub const MAX_QUIET_DAYS: i64 = 365;
/// Relationship NPS is asked at most this often, and at least this rarely, in days.
pub const RELATIONSHIP_NPS_DAYS: std::ops::RangeInclusive<i64> = 30..=365;

/// What a brand asks (the workspace's default applies to conversations without a brand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveySettings {
    /// Asked when a conversation is resolved, in this order (CSAT first when on).
    pub on_resolution: Vec<SurveyKind>,
    /// A customer asked within this many days is not asked again.
    pub quiet_days: i64,
    /// NPS asked every this many days of customers who ordered; `None`: not sent.
    pub relationship_nps_days: Option<i64>,
}

impl Default for SurveySettings {
    /// Nothing is asked until an admin turns it on.
    fn default() -> Self {
        SurveySettings {
            on_resolution: Vec::new(),
            quiet_days: 7,
            relationship_nps_days: None,
        }
    }
}

impl SurveySettings {
    /// Checks the numbers and puts the questions in their canonical order, each once.
    pub fn checked(mut self) -> Result<Self, ValueError> {
        if !(0..=MAX_QUIET_DAYS).contains(&self.quiet_days) {
            return Err(ValueError::UnknownValue {
                field: "quiet period (0 to 365 days)",
                value: self.quiet_days.to_string(),
            });
        }
        if let Some(days) = self.relationship_nps_days
            && !RELATIONSHIP_NPS_DAYS.contains(&days)
        {
            return Err(ValueError::UnknownValue {
                field: "relationship NPS interval (30 to 365 days)",
                value: days.to_string(),
            });
        }
        self.on_resolution.sort();
        self.on_resolution.dedup();
        Ok(self)
    }

    /// Whether a customer last asked at `last_asked` is asked again at `now`.
    pub fn may_ask(&self, last_asked: Option<Timestamp>, now: Timestamp) -> bool {
        last_asked.is_none_or(|at| now - at >= chrono::Duration::days(self.quiet_days))
    }

    /// Whether a customer whose last relationship NPS was at `last_nps` is due for one.
    pub fn relationship_nps_due(&self, last_nps: Option<Timestamp>, now: Timestamp) -> bool {
        self.relationship_nps_days
            .is_some_and(|days| last_nps.is_none_or(|at| now - at >= chrono::Duration::days(days)))
    }
}

/// One invitation: the questions asked together, and what the customer answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    pub id: crate::SurveyId,
    pub customer_id: crate::CustomerId,
    /// `None` for relationship NPS.
    pub conversation_id: Option<crate::ConversationId>,
    pub brand_id: Option<crate::BrandId>,
    pub channel: SurveyChannel,
    pub asks: Vec<SurveyKind>,
    pub csat: Option<u8>,
    pub ces: Option<u8>,
    pub nps: Option<u8>,
    pub comment: Option<String>,
    pub created_at: Timestamp,
    pub answered_at: Option<Timestamp>,
}

impl Survey {
    pub fn score(&self, kind: SurveyKind) -> Option<u8> {
        match kind {
            SurveyKind::Csat => self.csat,
            SurveyKind::Ces => self.ces,
            SurveyKind::Nps => self.nps,
        }
    }

    /// The question its one-click links answer: the first one asked.
    pub fn headline(&self) -> Option<SurveyKind> {
        self.asks.first().copied()
    }

    /// When it stops taking answers: [`ANSWER_DAYS`] after it was sent.
    pub fn closes_at(&self) -> Timestamp {
        self.created_at + chrono::Duration::days(ANSWER_DAYS)
    }

    /// Whether it still takes answers (and changed answers) at `now`.
    pub fn open_at(&self, now: Timestamp) -> bool {
        now < self.closes_at()
    }
}

/// How long a survey takes answers, in days after it was sent. A rating weeks later says
/// little about the service it rates, and an old link found in a mailbox should not move
/// a report of long ago; four weeks is what Zendesk gives its satisfaction surveys.
pub const ANSWER_DAYS: i64 = 28;

/// Kinds written as stored: `csat,nps`.
pub fn kinds_to_text(kinds: &[SurveyKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Kinds read back from `csat,nps` (empty text: none).
pub fn kinds_from_text(text: &str) -> Result<Vec<SurveyKind>, ValueError> {
    text.split(',')
        .filter(|k| !k.is_empty())
        .map(str::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn at(day: u32) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 3, day, 9, 0, 0).unwrap()
    }

    #[test]
    fn scores_must_be_on_the_question_scale() {
        assert_eq!(SurveyKind::Csat.check(5), Ok(5));
        assert!(SurveyKind::Csat.check(0).is_err());
        assert!(SurveyKind::Csat.check(6).is_err());
        assert_eq!(SurveyKind::Ces.check(7), Ok(7));
        assert!(SurveyKind::Ces.check(8).is_err());
        assert_eq!(SurveyKind::Nps.check(0), Ok(0));
        assert_eq!(SurveyKind::Nps.check(10), Ok(10));
        assert!(SurveyKind::Nps.check(11).is_err());
        assert!(SurveyKind::Nps.check(-1).is_err());
        assert!(SurveyKind::Nps.check(i64::MAX).is_err());
    }

    #[test]
    fn the_quiet_period_keeps_a_customer_from_being_asked_twice() {
        let s = SurveySettings {
            on_resolution: vec![SurveyKind::Csat],
            quiet_days: 7,
            relationship_nps_days: None,
        };
        assert!(s.may_ask(None, at(10)));
        assert!(!s.may_ask(Some(at(4)), at(10)));
        assert!(s.may_ask(Some(at(3)), at(10)));
        let never_quiet = SurveySettings {
            quiet_days: 0,
            ..s.clone()
        };
        assert!(never_quiet.may_ask(Some(at(10)), at(10)));
        assert!(!s.relationship_nps_due(None, at(10)));
    }

    #[test]
    fn relationship_nps_comes_at_its_interval() {
        let s = SurveySettings {
            relationship_nps_days: Some(30),
            ..SurveySettings::default()
        };
        assert!(s.relationship_nps_due(None, at(1)));
        let last = chrono::Utc.with_ymd_and_hms(2026, 2, 1, 9, 0, 0).unwrap();
        assert!(!s.relationship_nps_due(Some(last), at(2)));
        assert!(s.relationship_nps_due(Some(last), at(3)));
    }

    #[test]
    fn settings_are_checked_and_ordered() {
        let s = SurveySettings {
            on_resolution: vec![SurveyKind::Nps, SurveyKind::Csat, SurveyKind::Nps],
            ..SurveySettings::default()
        }
        .checked()
        .unwrap();
        assert_eq!(s.on_resolution, vec![SurveyKind::Csat, SurveyKind::Nps]);
        for bad in [
            SurveySettings {
                quiet_days: -1,
                ..SurveySettings::default()
            },
            SurveySettings {
                quiet_days: 366,
                ..SurveySettings::default()
            },
            SurveySettings {
                relationship_nps_days: Some(7),
                ..SurveySettings::default()
            },
        ] {
            assert!(bad.checked().is_err());
        }
    }

    #[test]
    fn a_survey_takes_answers_for_four_weeks_after_it_was_sent() {
        let survey = Survey {
            id: crate::SurveyId(1),
            customer_id: crate::CustomerId(1),
            conversation_id: None,
            brand_id: None,
            channel: SurveyChannel::Email,
            asks: vec![SurveyKind::Nps],
            csat: None,
            ces: None,
            nps: None,
            comment: None,
            created_at: at(1),
            answered_at: None,
        };
        assert!(survey.open_at(at(1)));
        assert!(survey.open_at(at(29) - chrono::Duration::seconds(1)));
        assert_eq!(survey.closes_at(), at(29));
        assert!(!survey.open_at(at(29)));
        assert!(!survey.open_at(at(30)));
    }
}
