//! The one error type of the web layer. Every failure a client can see has a stable snake_case
//! code (a documented contract: see `ErrorCode`), a human message and the right status.
//! Internal details are logged with the request id and never shown.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use seva_app::AppError;
use seva_domain::ValueError;
use seva_store::StoreError;

/// Every error code the API can return. The spelling is a contract with clients: add codes,
/// never rename them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // 400
    MalformedJson,
    InvalidQuery,
    InvalidId,
    InvalidCursor,
    InvalidLimit,
    InvalidIdempotencyKey,
    // 401, 403
    Unauthorized,
    IdentityUnverified,
    WebhookSignatureInvalid,
    InvalidCredentials,
    Forbidden,
    ImportRequiresAdmin,
    CsrfFailed,
    // 404, 405
    NotFound,
    MethodNotAllowed,
    ConversationNotFound,
    CustomerNotFound,
    UserNotFound,
    SetupLinkInvalid,
    PortalLinkInvalid,
    SurveyLinkInvalid,
    SurveyClosed,
    MailboxNotFound,
    WidgetNotFound,
    BusinessHoursNotFound,
    OrderNotFound,
    OrderRequestNotFound,
    SegmentNotFound,
    SlaPolicyNotFound,
    // 409
    InvalidStatusTransition,
    ConversationClosed,
    IdentityTaken,
    ExternalIdTaken,
    AlreadyExists,
    InUse,
    MergeRefused,
    Conflict,
    // 413, 415
    PayloadTooLarge,
    AttachmentTooLarge,
    UnsupportedMediaType,
    // 422
    InvalidBody,
    InvalidEmail,
    InvalidPhone,
    InvalidTag,
    InvalidLanguage,
    InvalidValue,
    FieldTooLong,
    FieldRequired,
    CustomerIdentityRequired,
    BrandNotFound,
    TeamNotFound,
    AssigneeNotFound,
    IdempotencyKeyReused,
    WeakPassword,
    TooManyAttachments,
    OrderOfAnotherCustomer,
    // 429
    SignInThrottled,
    RateLimited,
    // 5xx
    InternalError,
    DatabaseUnavailable,
    AttachmentsUnavailable,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode as C;
        match self {
            C::MalformedJson
            | C::InvalidQuery
            | C::InvalidId
            | C::InvalidCursor
            | C::InvalidLimit
            | C::InvalidIdempotencyKey => StatusCode::BAD_REQUEST,
            C::Unauthorized
            | C::InvalidCredentials
            | C::IdentityUnverified
            | C::WebhookSignatureInvalid => StatusCode::UNAUTHORIZED,
            C::Forbidden | C::ImportRequiresAdmin | C::CsrfFailed => StatusCode::FORBIDDEN,
            C::NotFound
            | C::ConversationNotFound
            | C::CustomerNotFound
            | C::UserNotFound
            | C::SetupLinkInvalid
            | C::PortalLinkInvalid
            | C::SurveyLinkInvalid
            | C::MailboxNotFound
            | C::WidgetNotFound
            | C::BusinessHoursNotFound
            | C::OrderNotFound
            | C::OrderRequestNotFound
            | C::SegmentNotFound
            | C::SlaPolicyNotFound => StatusCode::NOT_FOUND,
            C::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            C::SurveyClosed => StatusCode::GONE,
            C::InvalidStatusTransition
            | C::ConversationClosed
            | C::IdentityTaken
            | C::ExternalIdTaken
            | C::AlreadyExists
            | C::InUse
            | C::MergeRefused
            | C::Conflict => StatusCode::CONFLICT,
            C::PayloadTooLarge | C::AttachmentTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            C::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            C::InvalidBody
            | C::InvalidEmail
            | C::InvalidPhone
            | C::InvalidTag
            | C::InvalidLanguage
            | C::InvalidValue
            | C::FieldTooLong
            | C::FieldRequired
            | C::CustomerIdentityRequired
            | C::BrandNotFound
            | C::TeamNotFound
            | C::AssigneeNotFound
            | C::IdempotencyKeyReused
            | C::WeakPassword
            | C::TooManyAttachments
            | C::OrderOfAnotherCustomer => StatusCode::UNPROCESSABLE_ENTITY,
            C::SignInThrottled | C::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            C::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            C::DatabaseUnavailable | C::AttachmentsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// `{"error": {"code": "...", "message": "..."}}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn internal() -> Self {
        Self::new(
            ErrorCode::InternalError,
            "something went wrong on our side; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        AppError::Store(error).into()
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        use ErrorCode as C;
        let message = error.to_string();
        let code = match &error {
            AppError::Invalid(v) => match v {
                ValueError::InvalidEmail(_) => C::InvalidEmail,
                ValueError::InvalidPhone(_) => C::InvalidPhone,
                ValueError::TooLong { .. } => C::FieldTooLong,
                ValueError::Empty { .. } => C::FieldRequired,
                ValueError::InvalidTag(_) => C::InvalidTag,
                ValueError::InvalidLanguage(_) => C::InvalidLanguage,
                ValueError::UnknownValue { .. } | ValueError::ControlCharacter { .. } => {
                    C::InvalidValue
                }
            },
            AppError::NotFound(what) => match *what {
                "conversation" => C::ConversationNotFound,
                "customer" => C::CustomerNotFound,
                "user" => C::UserNotFound,
                "brand" => C::BrandNotFound,
                "team" => C::TeamNotFound,
                "assignee" => C::AssigneeNotFound,
                "mailbox" => C::MailboxNotFound,
                "widget" => C::WidgetNotFound,
                "business hours" => C::BusinessHoursNotFound,
                "order" => C::OrderNotFound,
                "order request" => C::OrderRequestNotFound,
                "segment" => C::SegmentNotFound,
                "SLA policy" => C::SlaPolicyNotFound,
                _ => C::NotFound,
            },
            AppError::Forbidden => C::Forbidden,
            AppError::ImportRequiresAdmin => C::ImportRequiresAdmin,
            AppError::InvalidTransition(_) | AppError::RequestTransition { .. } => {
                C::InvalidStatusTransition
            }
            AppError::ConversationClosed => C::ConversationClosed,
            AppError::IdentityTaken(_) => C::IdentityTaken,
            AppError::ExternalIdTaken => C::ExternalIdTaken,
            AppError::CustomerIdentityRequired => C::CustomerIdentityRequired,
            AppError::IdempotencyKeyReused => C::IdempotencyKeyReused,
            AppError::AlreadyExists(_) => C::AlreadyExists,
            AppError::InUse(_) => C::InUse,
            AppError::MergeRefused(_) => C::MergeRefused,
            AppError::OrderOfAnotherCustomer => C::OrderOfAnotherCustomer,
            AppError::InvalidCredentials => C::InvalidCredentials,
            AppError::SignInThrottled { retry_after_secs } => {
                return Self {
                    code: C::SignInThrottled,
                    message,
                    retry_after: Some(*retry_after_secs),
                };
            }
            AppError::RateLimited { retry_after_secs } => {
                return Self {
                    code: C::RateLimited,
                    message,
                    retry_after: Some(*retry_after_secs),
                };
            }
            AppError::SetupLinkInvalid => C::SetupLinkInvalid,
            AppError::PortalLinkInvalid => C::PortalLinkInvalid,
            AppError::SurveyLinkInvalid => C::SurveyLinkInvalid,
            AppError::SurveyClosed => C::SurveyClosed,
            AppError::WeakPassword { .. } => C::WeakPassword,
            AppError::AttachmentTooLarge { .. } => C::AttachmentTooLarge,
            AppError::TooManyAttachments { .. } => C::TooManyAttachments,
            AppError::AttachmentsUnavailable => C::AttachmentsUnavailable,
            AppError::IdentityUnverified => C::IdentityUnverified,
            AppError::WebhookSignatureInvalid => C::WebhookSignatureInvalid,
            AppError::AttachmentStore(reason) => {
                tracing::error!(%reason, "attachment store failed");
                return Self::new(
                    C::AttachmentsUnavailable,
                    "attachments cannot be stored or read right now; retry shortly",
                );
            }
            AppError::Store(StoreError::Conflict { constraint }) => {
                tracing::info!(%constraint, "write refused by a uniqueness rule");
                return Self::new(
                    C::Conflict,
                    "the change conflicts with another one; retry it",
                );
            }
            AppError::Store(StoreError::Unavailable(reason)) => {
                tracing::error!(%reason, "database unavailable");
                return Self::new(
                    C::DatabaseUnavailable,
                    "the database is unavailable; retry shortly",
                );
            }
            AppError::Store(other) => {
                tracing::error!(error = %other, "store error");
                return Self::internal();
            }
        };
        Self::new(code, message)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_server_errors_are_only_for_the_server() {
        let all = [
            ErrorCode::MalformedJson,
            ErrorCode::ConversationNotFound,
            ErrorCode::InvalidStatusTransition,
            ErrorCode::IdempotencyKeyReused,
            ErrorCode::SignInThrottled,
            ErrorCode::InternalError,
        ];
        for code in all {
            let text = code.as_str();
            assert!(
                !text.is_empty() && text.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{text}"
            );
        }
        assert_eq!(
            ErrorCode::ConversationNotFound.as_str(),
            "conversation_not_found"
        );
        assert_eq!(
            ErrorCode::InvalidBody.status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let missing_mailbox = ApiError::from(AppError::NotFound("mailbox"));
        assert_eq!(missing_mailbox.code.as_str(), "mailbox_not_found");
        let missing_widget = ApiError::from(AppError::NotFound("widget"));
        assert_eq!(missing_widget.code.as_str(), "widget_not_found");
        assert_eq!(missing_widget.code.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing_mailbox.code.status(), StatusCode::NOT_FOUND);
    }
}
