//! Customers and the identities (emails, phones, external ids) that point to them.

use std::collections::BTreeMap;

use crate::Timestamp;
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

#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: CustomerId,
    pub name: Option<String>,
    /// Preferred language, a BCP 47 tag.
    pub language: Option<String>,
    pub identities: Vec<Identity>,
    pub attributes: Attributes,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
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
