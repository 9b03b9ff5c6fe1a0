//! Segments: saved rules over customer data ("spent more than 5,000,000 IRR in the last 90
//! days", "ordered twice or more but not in 120 days", "language is Marathi"). A customer is in
//! a segment when every condition holds. Rules are data: the store turns them into one query,
//! so counts stay live.

use crate::commerce::Currency;
use crate::conversation::Channel;
use crate::ids::SegmentId;
use crate::values::{ValueError, parse_language, parse_tag};

/// One condition of a segment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Spent more than `amount` (minor units of `currency`, refunds deducted, cancelled orders
    /// left out) on orders placed in the last `days` days, or ever when `days` is absent.
    SpentMoreThan {
        currency: String,
        amount: i64,
        days: Option<u32>,
    },
    /// At least `count` orders that were not cancelled, ever.
    OrdersAtLeast { count: u32 },
    /// No order placed in the last `days` days.
    NoOrderWithin { days: u32 },
    /// The preferred language is `language` or a regional form of it (`mr` takes `mr-IN`).
    Language { language: String },
    /// Tagged `tag`.
    Tag { tag: String },
    /// Wrote to the shop through `channel`, in the last `days` days or ever.
    Contacted { channel: Channel, days: Option<u32> },
    /// Answered a CSAT survey with 1, 2 or 3, in the last `days` days or ever.
    BadCsat { days: Option<u32> },
}

/// A segment's rules: every condition must hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub all: Vec<Condition>,
}

pub const MAX_CONDITIONS: usize = 20;
/// Ten years: further back than any shop keeps orders.
pub const MAX_DAYS: u32 = 3_650;

impl Rules {
    /// Checks and normalises every condition (currency codes upper-cased, languages and tags in
    /// their stored form).
    pub fn check(mut self) -> Result<Self, ValueError> {
        if self.all.is_empty() {
            return Err(ValueError::Empty { field: "rules" });
        }
        if self.all.len() > MAX_CONDITIONS {
            return Err(ValueError::TooLong {
                field: "rules",
                max: MAX_CONDITIONS,
            });
        }
        let days = |d: u32| {
            if (1..=MAX_DAYS).contains(&d) {
                Ok(d)
            } else {
                Err(ValueError::UnknownValue {
                    field: "days (1 to 3650)",
                    value: d.to_string(),
                })
            }
        };
        for condition in &mut self.all {
            match condition {
                Condition::SpentMoreThan {
                    currency,
                    amount,
                    days: d,
                } => {
                    Currency::parse(currency)?.as_str().clone_into(currency);
                    if *amount < 0 {
                        return Err(ValueError::UnknownValue {
                            field: "amount",
                            value: amount.to_string(),
                        });
                    }
                    if let Some(d) = d {
                        days(*d)?;
                    }
                }
                Condition::OrdersAtLeast { count } => {
                    if *count == 0 {
                        return Err(ValueError::UnknownValue {
                            field: "count",
                            value: "0".into(),
                        });
                    }
                }
                Condition::NoOrderWithin { days: d } => {
                    days(*d)?;
                }
                Condition::Contacted { days: d, .. } | Condition::BadCsat { days: d } => {
                    if let Some(d) = d {
                        days(*d)?;
                    }
                }
                Condition::Language { language } => *language = parse_language(language)?,
                Condition::Tag { tag } => *tag = parse_tag(tag)?,
            }
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub id: SegmentId,
    pub name: String,
    pub rules: Rules,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_checked_and_normalised() {
        let rules = Rules {
            all: vec![
                Condition::SpentMoreThan {
                    currency: "irr".into(),
                    amount: 500_000_000,
                    days: Some(90),
                },
                Condition::Language {
                    language: "MR".into(),
                },
                Condition::Tag { tag: "VIP".into() },
            ],
        }
        .check()
        .unwrap();
        assert_eq!(
            rules.all[0],
            Condition::SpentMoreThan {
                currency: "IRR".into(),
                amount: 500_000_000,
                days: Some(90)
            }
        );
        assert_eq!(
            rules.all[1],
            Condition::Language {
                language: "mr".into()
            }
        );
        assert_eq!(rules.all[2], Condition::Tag { tag: "vip".into() });
        for bad in [
            Condition::NoOrderWithin { days: 0 },
            Condition::OrdersAtLeast { count: 0 },
            Condition::SpentMoreThan {
                currency: "rupees".into(),
                amount: 1,
                days: None,
            },
            Condition::Language {
                language: "marathi language".into(),
            },
        ] {
            assert!(
                Rules {
                    all: vec![bad.clone()]
                }
                .check()
                .is_err(),
                "{bad:?}"
            );
        }
        assert!(Rules { all: vec![] }.check().is_err());
    }

    #[test]
    fn rules_read_from_json_refuse_unknown_conditions() {
        let rules: Rules = serde_json::from_str(
            r#"{"all":[{"type":"orders_at_least","count":2},{"type":"no_order_within","days":120}]}"#,
        )
        .unwrap();
        assert_eq!(rules.all.len(), 2);
        assert!(serde_json::from_str::<Rules>(r#"{"all":[{"type":"bought_a_yacht"}]}"#).is_err());
    }
}
