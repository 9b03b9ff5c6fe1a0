//! Validated values. Each constructor is the only way in, so a value that exists is valid.

use std::fmt;

/// Why a value was refused. Every variant maps to a stable API error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("'{0}' is not a valid email address")]
    InvalidEmail(String),
    #[error("'{0}' is not a valid phone number: use international form, e.g. +98 912 345 6789")]
    InvalidPhone(String),
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} contains a control character")]
    ControlCharacter { field: &'static str },
    #[error("'{0}' is not a valid tag: 1 to 50 characters, no spaces or commas")]
    InvalidTag(String),
    #[error("'{0}' is not a valid language tag (e.g. en, fa, mr, hi, en-IN)")]
    InvalidLanguage(String),
    #[error("'{value}' is not a valid {field}")]
    UnknownValue { field: &'static str, value: String },
}

/// Limits shared by validation and the database schema comments.
pub mod limits {
    pub const NAME: usize = 200;
    pub const SUBJECT: usize = 500;
    pub const MESSAGE_TEXT: usize = 100_000;
    pub const EXTERNAL_ID: usize = 255;
    pub const TAG: usize = 50;
    pub const TAGS_PER_CONVERSATION: usize = 50;
    pub const ATTRIBUTES: usize = 100;
    pub const ATTRIBUTE_KEY: usize = 64;
    pub const ATTRIBUTE_TEXT: usize = 2_000;
    pub const EMAIL: usize = 254;
}

/// Trims `value` and checks it is non-empty, at most `max` characters long, and free of control
/// characters other than line breaks and tabs (PostgreSQL cannot store NUL at all).
pub fn bounded_text(field: &'static str, value: &str, max: usize) -> Result<String, ValueError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValueError::Empty { field });
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ValueError::ControlCharacter { field });
    }
    if trimmed.chars().count() > max {
        return Err(ValueError::TooLong { field, max });
    }
    Ok(trimmed.to_owned())
}

/// An email address, trimmed and lower-cased so that one address is one identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let value = input.trim().to_lowercase();
        if value.len() > limits::EMAIL
            || value.contains(|c: char| c.is_whitespace() || c.is_control())
            || !email_address::EmailAddress::is_valid(&value)
            // A bare "user@localhost" is valid per RFC 5321 but never a customer's address.
            || !value.rsplit('@').next().is_some_and(|domain| domain.contains('.'))
        {
            return Err(ValueError::InvalidEmail(input.chars().take(80).collect()));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form, checked against the numbering plans of libphonenumber's
/// metadata (through the `phonenumber` crate): a number that no country issues is refused.
/// Spaces, dashes, dots and brackets are dropped, and Persian, Arabic-Indic and Devanagari digits
/// are read as their ASCII equivalents, since customers in Iran and India type them. A number
/// written the national way (`0912 345 6789`, `098765 43210`) needs the country it was written
/// in: see [`Phone::parse_in`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// An international number: `+` (or `00`) and the country code.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        Self::parse_in(input, None)
    }

    /// A number in international form, or in the national form of `country` (an ISO 3166
    /// alpha-2 code such as `IR` or `IN`; unknown codes are ignored).
    pub fn parse_in(input: &str, country: Option<&str>) -> Result<Self, ValueError> {
        let invalid = || ValueError::InvalidPhone(input.chars().take(40).collect());
        let mut ascii = String::with_capacity(input.len());
        for c in input.trim().chars() {
            match c {
                '+' if ascii.is_empty() => ascii.push('+'),
                ' ' | '-' | '.' | '(' | ')' | '/' | '\u{200c}' | '\u{00a0}' => {}
                _ => ascii.push(ascii_digit(c).ok_or_else(invalid)?),
            }
        }
        if let Some(rest) = ascii.strip_prefix("00") {
            ascii = format!("+{rest}");
        }
        let region = if ascii.starts_with('+') {
            None
        } else {
            Some(
                country
                    .and_then(|c| {
                        c.trim()
                            .to_ascii_uppercase()
                            .parse::<phonenumber::country::Id>()
                            .ok()
                    })
                    .ok_or_else(invalid)?,
            )
        };
        let number = phonenumber::parse(region, &ascii).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        Ok(Self(e164))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Maps ASCII, Persian (U+06F0..), Arabic-Indic (U+0660..) and Devanagari (U+0966..) digits to
/// ASCII.
fn ascii_digit(c: char) -> Option<char> {
    let zero = match c {
        '0'..='9' => return Some(c),
        '\u{06F0}'..='\u{06F9}' => 0x06F0,
        '\u{0660}'..='\u{0669}' => 0x0660,
        '\u{0966}'..='\u{096F}' => 0x0966,
        _ => return None,
    };
    char::from_digit(u32::from(c) - zero, 10)
}

/// A conversation tag: trimmed, lower-cased, 1 to 50 characters without spaces or commas.
pub fn parse_tag(input: &str) -> Result<String, ValueError> {
    let tag = input.trim().to_lowercase();
    if tag.is_empty()
        || tag.chars().count() > limits::TAG
        || tag.contains(|c: char| c.is_whitespace() || c == ',' || c.is_control())
    {
        return Err(ValueError::InvalidTag(input.chars().take(60).collect()));
    }
    Ok(tag)
}

/// A BCP 47 language tag of the simple form customers and agents use: a 2 or 3 letter language,
/// optionally a script and a region (`en`, `fa-IR`, `hi-Latn`, `mr-IN`). Stored canonically cased.
pub fn parse_language(input: &str) -> Result<String, ValueError> {
    let invalid = || ValueError::InvalidLanguage(input.chars().take(20).collect());
    let mut parts = input.trim().split(['-', '_']);
    let lang = parts
        .next()
        .filter(|p| (2..=3).contains(&p.len()))
        .ok_or_else(invalid)?;
    if !lang.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(invalid());
    }
    let mut out = lang.to_ascii_lowercase();
    for part in parts {
        out.push('-');
        match part.len() {
            4 if part.chars().all(|c| c.is_ascii_alphabetic()) => {
                out.push_str(&part[..1].to_ascii_uppercase());
                out.push_str(&part[1..].to_ascii_lowercase());
            }
            2 if part.chars().all(|c| c.is_ascii_alphabetic()) => {
                out.push_str(&part.to_ascii_uppercase());
            }
            _ => return Err(invalid()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ali@Example.COM ").unwrap().as_str(),
            "ali@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "ali",
            "ali@",
            "@example.com",
            "ali@localhost",
            "a b@example.com",
            "ali@exa\nmple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn phones_are_normalised_to_e164_from_any_digit_script() {
        assert_eq!(
            Phone::parse("+98 (912) 345-6789").unwrap().as_str(),
            "+989123456789"
        );
        assert_eq!(
            Phone::parse("+۹۸۹۱۲۳۴۵۶۷۸۹").unwrap().as_str(),
            "+989123456789"
        );
        assert_eq!(
            Phone::parse("+९१ ९८७६५ ४३२१०").unwrap().as_str(),
            "+919876543210"
        );
    }

    #[test]
    fn national_numbers_are_read_in_the_given_country() {
        let iran = |s: &str| Phone::parse_in(s, Some("IR")).map(|p| p.0);
        let india = |s: &str| Phone::parse_in(s, Some("in")).map(|p| p.0);
        assert_eq!(iran("0912 345 6789").unwrap(), "+989123456789");
        assert_eq!(iran("۰۹۱۲ ۳۴۵ ۶۷۸۹").unwrap(), "+989123456789");
        assert_eq!(iran("021-8888 7777").unwrap(), "+982188887777");
        assert_eq!(iran("0098 912 345 6789").unwrap(), "+989123456789");
        assert_eq!(india("098765 43210").unwrap(), "+919876543210");
        assert_eq!(india("९८७६५ ४३२१०").unwrap(), "+919876543210");
        // An international number ignores the country given.
        assert_eq!(india("+98 912 345 6789").unwrap(), "+989123456789");
        // Too short for Iran's plan, and no country to read a national number in.
        assert!(iran("0912 345").is_err());
        assert!(Phone::parse_in("0912 345 6789", None).is_err());
        assert!(Phone::parse_in("0912 345 6789", Some("XX")).is_err());
    }

    #[test]
    fn phones_without_country_code_or_with_letters_are_refused() {
        for bad in [
            "09123456789",
            "+98 912 CALL ME",
            "+1",
            "+0123456789",
            "",
            "+98+912345678",
            "+98 912 345",
            "+1 555 555 SHIP",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn tags_are_lower_cased_and_must_be_one_word() {
        assert_eq!(parse_tag(" Refund ").unwrap(), "refund");
        assert_eq!(parse_tag("بازگشت-وجه").unwrap(), "بازگشت-وجه");
        assert!(parse_tag("two words").is_err());
        assert!(parse_tag("a,b").is_err());
        assert!(parse_tag(&"x".repeat(51)).is_err());
    }

    #[test]
    fn language_tags_are_canonically_cased() {
        assert_eq!(parse_language("FA_ir").unwrap(), "fa-IR");
        assert_eq!(parse_language("hi-latn").unwrap(), "hi-Latn");
        assert!(parse_language("english").is_err());
        assert!(parse_language("e1").is_err());
    }

    #[test]
    fn bounded_text_counts_characters_not_bytes() {
        // 200 Devanagari characters are 600 bytes but within a 200-character limit.
        assert!(bounded_text("name", &"क".repeat(200), 200).is_ok());
        assert_eq!(
            bounded_text("name", &"क".repeat(201), 200),
            Err(ValueError::TooLong {
                field: "name",
                max: 200
            })
        );
        assert_eq!(
            bounded_text("name", "   ", 200),
            Err(ValueError::Empty { field: "name" })
        );
        assert_eq!(
            bounded_text("text", "a\0b", 200),
            Err(ValueError::ControlCharacter { field: "text" })
        );
        assert!(bounded_text("text", "line one\nline two\tend", 200).is_ok());
    }
}
