//! The language of the business: customers and their identities, conversations, messages, the
//! events that record every change, users and their roles, and the validated values they carry.
//!
//! Pure by design: no I/O, no async runtime, no database, no HTTP, no JSON. "Now" is always a
//! parameter. Other crates depend on this one; it depends on none of them.

pub mod chat;
pub mod commerce;
pub mod conversation;
pub mod customer;
pub mod event;
pub mod hours;
pub mod ids;
pub mod kpi;
mod macros;
pub mod mail;
pub mod search;
pub mod segment;
pub mod sla;
pub mod survey;
pub mod user;
pub mod values;

pub use conversation::{
    Attachment, AuthorKind, Channel, Conversation, Direction, Message, MessageKind, Priority,
    Status,
};
pub use customer::{AttributeValue, Customer, Identity, IdentityKind};
pub use event::{Actor, Change, Event};
pub use ids::{
    AttachmentId, BrandId, ConversationId, CustomerId, CustomerNoteId, EventId, MessageId,
    SegmentId, SurveyId, TeamId, UserId,
};
pub use user::{Brand, Digits, Role, Team, User};
pub use values::{Email, Phone, ValueError};

/// A point in time, always UTC. Stored as microseconds since the Unix epoch.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
