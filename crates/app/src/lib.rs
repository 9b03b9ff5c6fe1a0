//! Use cases: what a user or a channel can do, each in one transaction that also records its
//! events. Declares the ports it needs (the [`Clock`]); knows nothing of HTTP or JSON wire
//! formats.

pub mod attachments;
pub mod auth;
pub mod chat;
pub mod commerce;
pub mod conversations;
pub mod crm;
pub mod customers;
pub mod demo;
pub mod hours;
pub mod live;
pub mod mail;
pub mod public;
mod report_days;
pub mod reports;
mod secrets;
mod segments;
pub mod sla;
pub mod surveys;
pub mod workspace;

use std::sync::{Arc, Mutex};

use seva_domain::{Role, Timestamp, User, ValueError, conversation::InvalidTransition};
use seva_store::{Store, StoreError};

/// Where "now" comes from. Production reads the system clock; tests set the time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the system clock
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A clock that stays where a test puts it.
#[derive(Debug)]
pub struct FixedClock(Mutex<Timestamp>);

impl FixedClock {
    pub fn new(at: Timestamp) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: Timestamp) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Everything a use case needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// Password checks take turns: see `App::sign_in`.
    password_checks: Arc<tokio::sync::Semaphore>,
    live: Arc<live::Live>,
    /// See `App::directory`.
    directory: workspace::DirectoryCache,
    /// Where attachment bytes go; see `App::with_blobs`.
    blobs: Option<Arc<dyn attachments::BlobStore>>,
    /// Extra certificate authorities mail servers may use; see `App::with_mail_ca`.
    mail_ca: Option<Arc<[u8]>>,
    /// Who writes survey emails; see `App::with_survey_mail`.
    survey_mail: Option<Arc<dyn surveys::SurveyMail>>,
    /// Closed days of reports; see `report_days`.
    report_days: Arc<report_days::DayCache>,
    /// Re-judging running SLA targets takes turns; see `App::reapply_sla_later`.
    sla_reapply: Arc<tokio::sync::Mutex<()>>,
}

impl App {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            password_checks: Arc::new(tokio::sync::Semaphore::new(1)),
            live: Arc::new(live::Live::default()),
            directory: workspace::DirectoryCache::default(),
            blobs: None,
            mail_ca: None,
            survey_mail: None,
            report_days: Arc::default(),
            sla_reapply: Arc::default(),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// The signed-in user (or API token owner) a use case acts for.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
}

impl Caller {
    pub fn require_write(&self) -> Result<(), AppError> {
        if self.user.role.can_write() {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    pub fn require_role(&self, role: Role) -> Result<(), AppError> {
        if self.user.role == role {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// Original times from another system may be written by admins only.
    pub fn allow_backdating(&self, at: Option<Timestamp>) -> Result<(), AppError> {
        match at {
            Some(_) if !self.user.role.can_import() => Err(AppError::ImportRequiresAdmin),
            _ => Ok(()),
        }
    }
}

/// An `Idempotency-Key` and a digest of the request it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

/// Outcomes a caller branches on. The web crate maps each to a stable code and status.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Invalid(#[from] ValueError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this account may not make changes")]
    Forbidden,
    #[error("only admins may set original times (created_at, at) when importing history")]
    ImportRequiresAdmin,
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    #[error("the conversation is closed; the customer's new message needs a new conversation")]
    ConversationClosed,
    #[error("{0} already belongs to another customer")]
    IdentityTaken(String),
    #[error("a customer needs an email, a phone or an external id")]
    CustomerIdentityRequired,
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("this external_id belongs to another conversation's message")]
    ExternalIdTaken,
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error("{0} is still in use")]
    InUse(&'static str),
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("too many failed sign-ins; try again in {retry_after_secs} seconds")]
    SignInThrottled { retry_after_secs: i64 },
    #[error("the set-up link is unknown, used or expired")]
    SetupLinkInvalid,
    #[error("the password must be at least {min} characters long")]
    WeakPassword { min: usize },
    #[error("{filename} is larger than {max_bytes} bytes")]
    AttachmentTooLarge { filename: String, max_bytes: usize },
    #[error("a message may carry at most {max} files")]
    TooManyAttachments { max: usize },
    #[error("this server keeps no attachments")]
    AttachmentsUnavailable,
    #[error("the shopper's identity is not signed with this widget's secret")]
    IdentityUnverified,
    #[error("too many requests; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: i64 },
    #[error("the webhook's signature is not HMAC-SHA256 of its body with the integration's secret")]
    WebhookSignatureInvalid,
    #[error("the sign-in link is unknown, used or expired; ask for a new one")]
    PortalLinkInvalid,
    #[error("{0}")]
    MergeRefused(&'static str),
    #[error("the survey link is not one Seva sent; use the link from the email")]
    SurveyLinkInvalid,
    #[error("the survey closed {days} days after it was sent; it takes no more answers", days = seva_domain::survey::ANSWER_DAYS)]
    SurveyClosed,
    #[error(
        "the order belongs to another customer than the conversation's; merge the customers first if they are the same person"
    )]
    OrderOfAnotherCustomer,
    #[error("a {from} request cannot become {to}")]
    RequestTransition {
        from: seva_domain::commerce::RequestStatus,
        to: seva_domain::commerce::RequestStatus,
    },
    #[error("the attachment store failed: {0}")]
    AttachmentStore(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        AppError::Store(error)
    }
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// Maps the store's "not found" to a named one, leaving other errors as they are.
pub(crate) fn not_found(what: &'static str) -> impl FnOnce(StoreError) -> AppError {
    move |e| match e {
        StoreError::NotFound => AppError::NotFound(what),
        other => AppError::Store(other),
    }
}
