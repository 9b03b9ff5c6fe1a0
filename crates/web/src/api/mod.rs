//! The REST API under `/api/v1`: JSON in and out, bearer-token auth, the OpenAPI document.

pub mod conversations;
pub mod crm;
pub mod customers;
pub mod directory;
pub mod hours;
pub mod mailboxes;
pub mod openapi;
pub mod orders;
pub mod reports;
pub mod segments;
pub mod sla;
pub mod surveys;
pub mod widgets;

use axum::Router;
use axum::http::{Method, Uri};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

pub const DEFAULT_LIMIT: u32 = 25;
pub const MAX_LIMIT: u32 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(conversations::router())
        .merge(customers::router())
        .merge(crm::router())
        .merge(segments::router())
        .merge(reports::router())
        .merge(surveys::router())
        .merge(directory::router())
        .merge(hours::router())
        .merge(sla::router())
        .merge(mailboxes::router())
        .merge(orders::router())
        .merge(widgets::router())
        .merge(openapi::router())
        .fallback(api_not_found)
        .method_not_allowed_fallback(api_method_not_allowed)
}

async fn api_not_found(uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no API endpoint at {}", uri.path()),
    )
}

async fn api_method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// A page of results: `next_cursor` is absent on the last page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub fn check_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit {n} is out of range 1..={MAX_LIMIT}"),
        )),
    }
}

/// Cursors are opaque to clients: base64url of the position's parts.
pub fn encode_cursor(parts: &[i64]) -> String {
    let text = parts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(":");
    URL_SAFE_NO_PAD.encode(text)
}

pub fn decode_cursor(cursor: &str, parts: usize) -> Result<Vec<i64>, ApiError> {
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidCursor,
            "the cursor is not one this API returned",
        )
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let values = text
        .split(':')
        .map(str::parse::<i64>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad())?;
    if values.len() == parts {
        Ok(values)
    } else {
        Err(bad())
    }
}

/// Tells a field that is absent (`None`) from one set to null (`Some(None)`), for PATCH.
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = encode_cursor(&[1_767_225_600_000_000, 42]);
        assert_eq!(
            decode_cursor(&cursor, 2).unwrap(),
            [1_767_225_600_000_000, 42]
        );
        assert!(decode_cursor("not-a-cursor!", 2).is_err());
        assert!(decode_cursor(&encode_cursor(&[1]), 2).is_err());
    }

    #[test]
    fn limits_outside_one_to_a_hundred_are_refused() {
        assert_eq!(check_limit(None).unwrap(), DEFAULT_LIMIT);
        assert!(check_limit(Some(0)).is_err());
        assert!(check_limit(Some(101)).is_err());
    }
}
