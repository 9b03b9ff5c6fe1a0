//! How dates and numbers look for one reader: their time zone, their language's calendar
//! (Solar Hijri for Persian, through ICU4X) and their digits (Persian, Devanagari or Latin).

use chrono::{Datelike, Timelike};
use chrono_tz::Tz;
use seva_domain::{Digits, Timestamp, User};

#[derive(Debug, Clone, Copy)]
pub struct Format {
    tz: Tz,
    digits: Option<char>,
    persian_calendar: bool,
}

impl Format {
    /// Persian readers get the Solar Hijri calendar and Persian digits unless they chose Latin
    /// digits; Marathi and Hindi readers get Devanagari digits when they chose them.
    pub fn new(lang: &str, time_zone: Option<&str>, digits: Option<Digits>) -> Self {
        let tz = time_zone
            .and_then(|name| name.parse::<Tz>().ok())
            .unwrap_or(Tz::UTC);
        let native = match lang {
            "fa" => Some('\u{06F0}'),
            "mr" | "hi" => Some('\u{0966}'),
            _ => None,
        };
        let digits = match digits {
            Some(Digits::Native) => native,
            None if lang == "fa" => native,
            _ => None,
        };
        Self {
            tz,
            digits,
            persian_calendar: lang == "fa",
        }
    }

    /// The same reader looking at another time zone (a report's).
    #[must_use]
    pub fn in_zone(self, tz: Tz) -> Self {
        Self { tz, ..self }
    }

    pub fn for_user(lang: &str, user: &User) -> Self {
        Self::new(lang, user.time_zone.as_deref(), user.digits)
    }

    /// Writes ASCII digits in the reader's digits.
    pub fn digits(self, text: &str) -> String {
        match self.digits {
            None => text.to_owned(),
            Some(zero) => text
                .chars()
                .map(|c| match c.to_digit(10) {
                    Some(d) if c.is_ascii_digit() => char::from_u32(zero as u32 + d).unwrap_or(c),
                    _ => c,
                })
                .collect(),
        }
    }

    pub fn number(self, n: impl std::fmt::Display) -> String {
        self.digits(&n.to_string())
    }

    /// An amount in minor units as the reader writes it, with its currency code: `520,000.00
    /// IRR`, `۵۲۰٬۰۰۰٫۰۰ IRR`; rupees in lakhs and crores (`1,49,900.00 INR`).
    pub fn money(self, minor: i64, currency: &seva_domain::commerce::Currency) -> String {
        let exponent = currency.exponent();
        let scale = 10_i64.pow(exponent);
        let (units, fraction) = (
            minor.unsigned_abs() / scale.unsigned_abs(),
            minor.unsigned_abs() % scale.unsigned_abs(),
        );
        let digits = units.to_string();
        let indian = currency.as_str() == "INR";
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            let left = digits.len() - i;
            let boundary = if indian && left > 3 {
                (left - 3) % 2 == 0
            } else {
                left % 3 == 0
            };
            if i > 0 && boundary && left >= 3 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if minor < 0 { "-" } else { "" };
        let text = if exponent > 0 {
            let width = exponent as usize;
            format!("{sign}{grouped}.{fraction:0width$}")
        } else {
            format!("{sign}{grouped}")
        };
        let text = self.digits(&text);
        // Persian writes the Arabic thousands separator and decimal point with its digits.
        let text = if self.digits == Some('\u{06F0}') {
            text.replace(',', "\u{066C}").replace('.', "\u{066B}")
        } else {
            text
        };
        format!("{text} {}", currency.as_str())
    }

    /// Year, month and day in the reader's calendar.
    fn ymd(self, at: Timestamp) -> (i32, u8, u8) {
        let local = at.with_timezone(&self.tz);
        let (y, m, d) = (local.year(), local.month() as u8, local.day() as u8);
        if self.persian_calendar
            && let Ok(iso) = icu_calendar::Date::try_new_iso(y, m, d)
        {
            let persian = iso.to_calendar(icu_calendar::cal::Persian);
            return (
                persian.era_year().year,
                persian.month().ordinal,
                persian.day_of_month().0,
            );
        }
        (y, m, d)
    }

    pub fn date(self, at: Timestamp) -> String {
        let (y, m, d) = self.ymd(at);
        self.digits(&format!("{y:04}/{m:02}/{d:02}"))
    }

    pub fn time(self, at: Timestamp) -> String {
        let local = at.with_timezone(&self.tz);
        self.digits(&format!("{:02}:{:02}", local.hour(), local.minute()))
    }

    pub fn date_time(self, at: Timestamp) -> String {
        format!("{} {}", self.date(at), self.time(at))
    }

    /// The time alone when `at` is on the reader's today, else the date.
    pub fn short(self, at: Timestamp, now: Timestamp) -> String {
        if at.with_timezone(&self.tz).date_naive() == now.with_timezone(&self.tz).date_naive() {
            self.time(at)
        } else {
            self.date(at)
        }
    }
}

/// The time zones a user can choose from, by IANA name.
pub fn time_zones() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
}

pub fn is_time_zone(name: &str) -> bool {
    name.parse::<Tz>().is_ok()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;

    #[test]
    fn money_is_grouped_in_the_readers_digits_never_as_a_float() {
        let irr = seva_domain::commerce::Currency::parse("IRR").unwrap();
        let inr = seva_domain::commerce::Currency::parse("INR").unwrap();
        let jpy = seva_domain::commerce::Currency::parse("JPY").unwrap();
        let en = Format::new("en", None, None);
        assert_eq!(en.money(52_000_000, &irr), "520,000.00 IRR");
        assert_eq!(en.money(14_990_000, &inr), "1,49,900.00 INR");
        assert_eq!(en.money(5, &inr), "0.05 INR");
        assert_eq!(en.money(1_234_567, &jpy), "1,234,567 JPY");
        assert_eq!(en.money(-150, &inr), "-1.50 INR");
        assert_eq!(
            Format::new("fa", None, None).money(52_000_000, &irr),
            "۵۲۰٬۰۰۰٫۰۰ IRR"
        );
        assert_eq!(
            Format::new("mr", None, Some(Digits::Native)).money(14_990_000, &inr),
            "१,४९,९००.०० INR"
        );
    }

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn persian_readers_get_solar_hijri_dates_in_tehran_time_with_persian_digits() {
        let f = Format::new("fa", Some("Asia/Tehran"), None);
        // 2026-03-20 20:30 UTC is 2026-03-21 00:00 in Tehran (+03:30): 1 Farvardin 1405.
        assert_eq!(f.date(at(2026, 3, 20, 20, 30)), "۱۴۰۵/۰۱/۰۱");
        assert_eq!(f.time(at(2026, 3, 20, 20, 30)), "۰۰:۰۰");
        // 2026-11-22 is 1 Azar 1405.
        assert_eq!(f.date(at(2026, 11, 22, 9, 0)), "۱۴۰۵/۰۹/۰۱");
        let latin = Format::new("fa", Some("Asia/Tehran"), Some(Digits::Latin));
        assert_eq!(latin.date(at(2026, 11, 22, 9, 0)), "1405/09/01");
    }

    #[test]
    fn devanagari_digits_only_when_chosen_and_kolkata_half_hours() {
        let chosen = Format::new("mr", Some("Asia/Kolkata"), Some(Digits::Native));
        assert_eq!(chosen.date_time(at(2026, 11, 22, 9, 0)), "२०२६/११/२२ १४:३०");
        let default = Format::new("hi", Some("Asia/Kolkata"), None);
        assert_eq!(
            default.date_time(at(2026, 11, 22, 9, 0)),
            "2026/11/22 14:30"
        );
        assert_eq!(Format::new("en", None, None).number(1234), "1234");
        assert_eq!(
            Format::new("en", None, Some(Digits::Native)).number(12),
            "12"
        );
    }

    #[test]
    fn today_shows_the_time_and_other_days_the_date() {
        let f = Format::new("en", Some("Asia/Kolkata"), None);
        let now = at(2026, 11, 22, 12, 0);
        assert_eq!(f.short(at(2026, 11, 22, 3, 0), now), "08:30");
        // 19:00 UTC on the 21st is already the 22nd in Kolkata.
        assert_eq!(f.short(at(2026, 11, 21, 19, 0), now), "00:30");
        assert_eq!(f.short(at(2026, 11, 21, 18, 0), now), "2026/11/21");
        assert!(is_time_zone("Asia/Tehran"));
        assert!(!is_time_zone("Mars/Olympus"));
        assert!(time_zones().any(|z| z == "Asia/Kolkata"));
    }
}
