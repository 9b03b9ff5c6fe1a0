//! Web chat's words: widgets (what a shop embeds, per brand) and their settings, checked.

use crate::Timestamp;
use crate::ids::BrandId;
use crate::macros::{id_type, string_enum};
use crate::values::ValueError;

id_type!(WidgetId);

string_enum! {
    /// What the widget asks before the first message.
    pub enum Prechat {
        None => "none",
        Name => "name",
        Email => "email",
        NameEmail => "name_email",
    }
}

impl Prechat {
    pub fn asks_name(self) -> bool {
        matches!(self, Prechat::Name | Prechat::NameEmail)
    }

    pub fn asks_email(self) -> bool {
        matches!(self, Prechat::Email | Prechat::NameEmail)
    }
}

/// A chat widget as admins configure it. The secret signs shoppers' identities.
#[derive(Clone, PartialEq, Eq)]
pub struct Widget {
    pub id: WidgetId,
    /// In the embed snippet; identifies the widget, grants nothing.
    pub public_key: String,
    pub secret: String,
    pub name: String,
    pub brand_id: Option<BrandId>,
    /// Sites allowed to embed it (`https://shop.example.com`); empty: any.
    pub allowed_origins: Vec<String>,
    pub color: String,
    pub greeting: Option<String>,
    pub prechat: Prechat,
    /// Seconds a visitor waits for a first answer before being told nobody is free and offered
    /// email; also how long an unseen chat reply waits before it is emailed.
    pub away_after: u32,
    pub active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The secret stays out of logs.
impl std::fmt::Debug for Widget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Widget")
            .field("id", &self.id)
            .field("public_key", &self.public_key)
            .field("name", &self.name)
            .field("brand_id", &self.brand_id)
            .field("allowed_origins", &self.allowed_origins)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Widget {
    /// Whether a page at `origin` (the browser's `Origin` header) may use this widget.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        if self.allowed_origins.is_empty() {
            return true;
        }
        origin
            .and_then(|o| parse_origin(o).ok())
            .is_some_and(|o| self.allowed_origins.contains(&o))
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, lower-cased, no path or slash.
pub fn parse_origin(input: &str) -> Result<String, ValueError> {
    let invalid = || ValueError::UnknownValue {
        field: "origin",
        value: input.chars().take(80).collect(),
    };
    let text = input.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = text.split_once("://").ok_or_else(invalid)?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() {
        return Err(invalid());
    }
    let valid = rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !valid || rest.starts_with(':') || rest.starts_with('.') {
        return Err(invalid());
    }
    if let Some((_, port)) = rest.rsplit_once(':')
        && !rest.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(invalid());
    }
    Ok(format!("{scheme}://{rest}"))
}

/// A colour as `#rrggbb`, lower-cased.
pub fn parse_color(input: &str) -> Result<String, ValueError> {
    let text = input.trim().to_ascii_lowercase();
    let hex = text.strip_prefix('#').unwrap_or("");
    if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(text)
    } else {
        Err(ValueError::UnknownValue {
            field: "color",
            value: input.chars().take(20).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_anything_else_refused() {
        assert_eq!(
            parse_origin("https://Shop.Example.com/").as_deref(),
            Ok("https://shop.example.com")
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:8080").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        for bad in [
            "shop.example.com",
            "ftp://shop.example.com",
            "https://",
            "https://shop.example.com/path",
            "https://shop example.com",
            "https://shop.example.com:99999",
            "javascript://x",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn colours_are_six_hex_digits() {
        assert_eq!(parse_color("#1A73E8").as_deref(), Ok("#1a73e8"));
        for bad in ["1a73e8", "#fff", "#12345g", "red", "#1a73e8;x"] {
            assert!(parse_color(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_widget_without_origins_allows_any_page_else_only_its_own() {
        let now = chrono::DateTime::from_timestamp(0, 0).unwrap_or_default();
        let mut widget = Widget {
            id: WidgetId(1),
            public_key: "w".into(),
            secret: "s".into(),
            name: "Shop".into(),
            brand_id: None,
            allowed_origins: Vec::new(),
            color: "#1a73e8".into(),
            greeting: None,
            prechat: Prechat::None,
            away_after: 120,
            active: true,
            created_at: now,
            updated_at: now,
        };
        assert!(widget.allows(None));
        widget.allowed_origins = vec!["https://shop.example.com".into()];
        assert!(widget.allows(Some("https://SHOP.example.com")));
        assert!(!widget.allows(Some("https://evil.example.net")));
        assert!(!widget.allows(None));
    }
}
