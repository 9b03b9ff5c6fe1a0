//! Customers and the identities (emails, phones, external ids) that point to them.

use std::collections::BTreeMap;

use crate::Timestamp;
use crate::conversation::Channel;
use crate::ids::CustomerId;
use crate::macros::string_enum;
use crate::values::{Email, Phone, ValueError, limits};

string_enum! {
    pub enum IdentityKind {
        Email => "email",
        Phone => "phone",
        /// An id from the shop's platform (Shopify customer id, loyalty card number, ...).
        External => "external",
    }
}

/// One way to reach or recognise a customer. Each identity belongs to exactly one customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Identity {
    pub kind: IdentityKind,
    pub value: String,
}

impl Identity {
    pub fn email(email: &Email) -> Self {
        Self {
            kind: IdentityKind::Email,
            value: email.as_str().to_owned(),
        }
    }

    pub fn phone(phone: &Phone) -> Self {
        Self {
            kind: IdentityKind::Phone,
            value: phone.as_str().to_owned(),
        }
    }

    /// Validates and normalises a value of the given kind (phones in international form).
    pub fn parse(kind: IdentityKind, value: &str) -> Result<Self, ValueError> {
        Self::parse_in(kind, value, None)
    }

    /// As [`Identity::parse`], reading a phone written the national way as a number of
    /// `country` (ISO 3166 alpha-2), e.g. the country of the order's billing address.
    pub fn parse_in(
        kind: IdentityKind,
        value: &str,
        country: Option<&str>,
    ) -> Result<Self, ValueError> {
        let value = match kind {
            IdentityKind::Email => Email::parse(value)?.as_str().to_owned(),
            IdentityKind::Phone => Phone::parse_in(value, country)?.as_str().to_owned(),
            IdentityKind::External => {
                crate::values::bounded_text("external_id", value, limits::EXTERNAL_ID)?
            }
        };
        Ok(Self { kind, value })
    }
}

/// A custom attribute's value: what shops keep about customers (size, city, loyalty number).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum AttributeValue {
    Bool(bool),
    Integer(i64),
    Number(f64),
    Text(String),
}

pub type Attributes = BTreeMap<String, AttributeValue>;

/// Checks the number, keys and sizes of custom attributes.
pub fn validate_attributes(attributes: &Attributes) -> Result<(), ValueError> {
    if attributes.len() > limits::ATTRIBUTES {
        return Err(ValueError::TooLong {
            field: "attributes",
            max: limits::ATTRIBUTES,
        });
    }
    for (key, value) in attributes {
        let key_ok = !key.is_empty()
            && key.len() <= limits::ATTRIBUTE_KEY
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !key_ok {
            return Err(ValueError::UnknownValue {
                field: "attribute name (letters, digits, _ and -, at most 64)",
                value: key.chars().take(70).collect(),
            });
        }
        if let AttributeValue::Text(text) = value
            && text.chars().count() > limits::ATTRIBUTE_TEXT
        {
            return Err(ValueError::TooLong {
                field: "attribute value",
                max: limits::ATTRIBUTE_TEXT,
            });
        }
        if let AttributeValue::Number(n) = value
            && !n.is_finite()
        {
            return Err(ValueError::UnknownValue {
                field: "attribute value",
                value: n.to_string(),
            });
        }
    }
    Ok(())
}

string_enum! {
    /// What a customer agreed to be contacted about (marketing; service messages need none).
    pub enum ConsentKind {
        EmailMarketing => "email_marketing",
        SmsMarketing => "sms_marketing",
        WhatsappMarketing => "whatsapp_marketing",
    }
}

/// Consent flags: given (`true`), withdrawn (`false`), or never asked (absent).
pub type Consent = BTreeMap<ConsentKind, bool>;

#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: CustomerId,
    pub name: Option<String>,
    /// Preferred language, a BCP 47 tag.
    pub language: Option<String>,
    /// The channel the customer prefers to be answered on.
    pub preferred_channel: Option<Channel>,
    pub identities: Vec<Identity>,
    pub attributes: Attributes,
    pub consent: Consent,
    /// The customer this one was merged into: its identities, conversations and orders are
    /// there now.
    pub merged_into: Option<CustomerId>,
    /// When the customer was erased (name, identities and message text removed).
    pub erased_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The keys under which two customers are likely the same person. Two customers sharing a key
/// are suggested to agents as duplicates; nothing is merged without an agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchKey {
    /// The mailbox a provider really delivers to: Gmail ignores dots and `+tags`, most large
    /// providers ignore `+tags`.
    Mailbox(String),
    /// The last 10 digits of a phone: the same line written with and without a country code,
    /// or with a trunk prefix, ends the same.
    PhoneTail(String),
    /// The same name (case and spacing ignored) at the same street address and postcode.
    NameAndAddress(String),
}

impl MatchKey {
    pub fn kind(&self) -> &'static str {
        match self {
            MatchKey::Mailbox(_) => "email",
            MatchKey::PhoneTail(_) => "phone",
            MatchKey::NameAndAddress(_) => "name_address",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            MatchKey::Mailbox(v) | MatchKey::PhoneTail(v) | MatchKey::NameAndAddress(v) => v,
        }
    }
}

/// The mailbox key of a normalised (lower-case) email address.
pub fn mailbox_key(email: &str) -> Option<MatchKey> {
    let (local, domain) = email.rsplit_once('@')?;
    let domain = match domain {
        "googlemail.com" => "gmail.com",
        d => d,
    };
    let plus_ignored = matches!(
        domain,
        "gmail.com"
            | "outlook.com"
            | "hotmail.com"
            | "live.com"
            | "icloud.com"
            | "me.com"
            | "fastmail.com"
            | "proton.me"
            | "protonmail.com"
    );
    let mut local = if plus_ignored {
        local.split('+').next().unwrap_or(local).to_owned()
    } else {
        local.to_owned()
    };
    if domain == "gmail.com" {
        local.retain(|c| c != '.');
    }
    Some(MatchKey::Mailbox(format!("{local}@{domain}")))
}

/// The phone key of a phone as stored (E.164).
pub fn phone_key(phone: &str) -> Option<MatchKey> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 10).then(|| MatchKey::PhoneTail(digits[digits.len() - 10..].to_owned()))
}

/// The name-and-address key: a name and a shipping address (first line and postcode).
pub fn name_address_key(name: &str, line1: &str, postcode: &str) -> Option<MatchKey> {
    let squash = |s: &str| {
        s.split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (name, line1, postcode) = (squash(name), squash(line1), squash(postcode));
    (!name.is_empty() && !line1.is_empty())
        .then(|| MatchKey::NameAndAddress(format!("{name}|{line1}|{postcode}")))
}

impl Customer {
    pub fn emails(&self) -> impl Iterator<Item = &str> {
        self.identities_of(IdentityKind::Email)
    }

    pub fn phones(&self) -> impl Iterator<Item = &str> {
        self.identities_of(IdentityKind::Phone)
    }

    fn identities_of(&self, kind: IdentityKind) -> impl Iterator<Item = &str> {
        self.identities
            .iter()
            .filter(move |i| i.kind == kind)
            .map(|i| i.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_normalised_by_kind() {
        let email = Identity::parse(IdentityKind::Email, " Sara@Shop.IR").unwrap();
        assert_eq!(email.value, "sara@shop.ir");
        let phone = Identity::parse(IdentityKind::Phone, "+91 98765 43210").unwrap();
        assert_eq!(phone.value, "+919876543210");
        assert!(Identity::parse(IdentityKind::External, "  ").is_err());
    }

    #[test]
    fn duplicate_keys_see_through_provider_aliases_and_phone_formats() {
        let key = |e: &str| mailbox_key(e).unwrap();
        assert_eq!(
            key("sara.ahmadi+shop@gmail.com"),
            key("saraahmadi@googlemail.com")
        );
        assert_eq!(key("ravi+orders@outlook.com"), key("ravi@outlook.com"));
        // Dots matter outside Gmail; +tags matter where the provider does not ignore them.
        assert_ne!(key("sara.a@outlook.com"), key("saraa@outlook.com"));
        assert_ne!(key("ravi+x@shop.in"), key("ravi@shop.in"));
        assert_eq!(phone_key("+989123456789"), phone_key("+9809123456789"));
        assert_eq!(phone_key("+919876543210").unwrap().value(), "9876543210");
        assert_eq!(phone_key("+1234"), None);
        assert_eq!(
            name_address_key("Sara  Ahmadi", "12 Vali-asr St", "1511"),
            name_address_key("sara ahmadi", "12 vali-asr st", "1511 ")
        );
        assert_eq!(name_address_key("", "12 Vali-asr St", ""), None);
    }

    #[test]
    fn attribute_names_must_be_simple_and_values_bounded() {
        let mut attrs = Attributes::new();
        attrs.insert("shoe_size".into(), AttributeValue::Number(42.5));
        assert!(validate_attributes(&attrs).is_ok());
        attrs.insert("bad key".into(), AttributeValue::Bool(true));
        assert!(validate_attributes(&attrs).is_err());
        let mut long = Attributes::new();
        long.insert("note".into(), AttributeValue::Text("x".repeat(2001)));
        assert!(validate_attributes(&long).is_err());
    }
}
