//! Request extractors that turn every kind of bad input into a precise `ApiError`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{header, request::Parts};
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// A JSON body. Also keeps a digest of the raw request, so an `Idempotency-Key` reused with a
/// different body is told apart from a retry.
#[derive(Debug)]
pub struct ApiJson<T> {
    pub value: T,
    pub digest: String,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || mime.to_ascii_lowercase().ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send JSON with Content-Type: application/json",
            ));
        }
        let method_and_path = format!("{} {}", req.method(), req.uri().path());
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body is larger than the limit",
                )
            } else {
                ApiError::new(
                    ErrorCode::MalformedJson,
                    "the request body could not be read",
                )
            }
        })?;
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                    ErrorCode::MalformedJson,
                    format!("the body is not valid JSON: {e}"),
                ),
                Category::Data => ApiError::new(
                    ErrorCode::InvalidBody,
                    format!("the body does not fit: {e}"),
                ),
            }
        })?;
        let mut hasher = Sha256::new();
        hasher.update(method_and_path.as_bytes());
        hasher.update([0]);
        hasher.update(&bytes);
        Ok(Self {
            value,
            digest: hex::encode(hasher.finalize()),
        })
    }
}

/// Query parameters; anything that does not parse is `invalid_query`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))
    }
}

/// A numeric id in the path; anything else is `invalid_id`.
#[derive(Debug)]
pub struct ApiId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for ApiId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::new(ErrorCode::InvalidId, "the path needs one id"))?;
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Self)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidId,
                    format!(
                        "'{}' is not an id",
                        raw.chars().take(30).collect::<String>()
                    ),
                )
            })
    }
}

/// The caller of an API request, from `Authorization: Bearer <token>`.
#[derive(Debug)]
pub struct ApiCaller(pub seva_app::Caller);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            ApiError::new(
                ErrorCode::Unauthorized,
                "send a valid API token as Authorization: Bearer <token>",
            )
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 200)
            .ok_or_else(unauthorized)?;
        state
            .app
            .authenticate_token(token)
            .await?
            .map(Self)
            .ok_or_else(unauthorized)
    }
}

/// The optional `Idempotency-Key` header: 1 to 255 visible ASCII characters.
#[derive(Debug)]
pub struct IdempotencyHeader(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
            .map(|k| Self(Some(k.to_owned())))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidIdempotencyKey,
                    "Idempotency-Key must be 1 to 255 visible ASCII characters",
                )
            })
    }
}

impl IdempotencyHeader {
    pub fn with_digest(self, digest: &str) -> Option<seva_app::IdempotencyKey> {
        self.0.map(|key| seva_app::IdempotencyKey {
            key,
            request_hash: digest.to_owned(),
        })
    }
}
