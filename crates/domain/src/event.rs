//! Events: the immutable record of everything that happened. Written in the same transaction as
//! the change they describe; the base of the KPIs and of the audit log.

use crate::Timestamp;
use crate::conversation::{Channel, MessageKind, Priority, Status};
use crate::customer::Identity;
use crate::ids::{BrandId, ConversationId, CustomerId, EventId, MessageId, TeamId, UserId};
use crate::macros::string_enum;

string_enum! {
    pub enum ActorKind {
        User => "user",
        Customer => "customer",
        System => "system",
    }
}

/// Who caused a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<i64>,
}

impl Actor {
    pub const SYSTEM: Actor = Actor {
        kind: ActorKind::System,
        id: None,
    };

    pub fn user(id: UserId) -> Self {
        Self {
            kind: ActorKind::User,
            id: Some(id.0),
        }
    }

    pub fn customer(id: CustomerId) -> Self {
        Self {
            kind: ActorKind::Customer,
            id: Some(id.0),
        }
    }
}

/// What changed. The variant name is the event's kind; its fields are the detail.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    ConversationCreated {
        channel: Channel,
        subject: Option<String>,
    },
    MessageAdded {
        message_id: MessageId,
        kind: MessageKind,
    },
    StatusChanged {
        from: Status,
        to: Status,
    },
    PriorityChanged {
        from: Priority,
        to: Priority,
    },
    Assigned {
        from: Option<UserId>,
        to: Option<UserId>,
    },
    TeamChanged {
        from: Option<TeamId>,
        to: Option<TeamId>,
    },
    BrandChanged {
        from: Option<BrandId>,
        to: Option<BrandId>,
    },
    TagsChanged {
        added: Vec<String>,
        removed: Vec<String>,
    },
    SubjectChanged {
        from: Option<String>,
        to: Option<String>,
    },
    CustomerCreated {
        name: Option<String>,
    },
    CustomerUpdated {
        fields: Vec<String>,
    },
    IdentityAdded {
        identity: Identity,
    },
    /// An order from the shop's platform was recorded or changed (on the customer's timeline).
    OrderRecorded {
        order_id: crate::commerce::OrderId,
        number: String,
        created: bool,
    },
    CustomerTagsChanged {
        added: Vec<String>,
        removed: Vec<String>,
    },
    CustomerNoteAdded {
        note_id: crate::ids::CustomerNoteId,
    },
    /// `from` was merged into this event's customer: its identities, conversations, orders,
    /// requests, notes, tags and history moved here. The counts say how much moved.
    CustomerMerged {
        from: CustomerId,
        into: CustomerId,
        identities: u64,
        conversations: u64,
        orders: u64,
    },
    /// Everything kept about the customer was handed out (an access request).
    CustomerExported,
    /// The customer was erased: name, identities, notes and every word of their conversations
    /// removed; counts and amounts kept for the reports.
    CustomerErased,
    /// An agent said the conversation is about this order.
    OrderLinked {
        order_id: crate::commerce::OrderId,
        number: String,
    },
    OrderRequestRecorded {
        request_id: crate::commerce::OrderRequestId,
        order_id: crate::commerce::OrderId,
        kind: crate::commerce::RequestKind,
    },
    OrderRequestChanged {
        request_id: crate::commerce::OrderRequestId,
        from: crate::commerce::RequestStatus,
        to: crate::commerce::RequestStatus,
    },
    /// The customer was asked these questions (on the conversation just resolved, or, for
    /// relationship NPS, on the customer alone).
    SurveySent {
        survey_id: crate::ids::SurveyId,
        asks: Vec<crate::survey::SurveyKind>,
        channel: crate::survey::SurveyChannel,
    },
    /// The customer answered (or changed an answer). A comment stays with the survey, so
    /// erasure has one place to clear.
    SurveyAnswered {
        survey_id: crate::ids::SurveyId,
        kind: crate::survey::SurveyKind,
        score: u8,
    },
    SurveyCommented {
        survey_id: crate::ids::SurveyId,
    },
}

impl Change {
    /// The stable name stored in the `kind` column, for filtering without parsing the detail.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::ConversationCreated { .. } => "conversation_created",
            Change::MessageAdded { .. } => "message_added",
            Change::StatusChanged { .. } => "status_changed",
            Change::PriorityChanged { .. } => "priority_changed",
            Change::Assigned { .. } => "assigned",
            Change::TeamChanged { .. } => "team_changed",
            Change::BrandChanged { .. } => "brand_changed",
            Change::TagsChanged { .. } => "tags_changed",
            Change::SubjectChanged { .. } => "subject_changed",
            Change::CustomerCreated { .. } => "customer_created",
            Change::CustomerUpdated { .. } => "customer_updated",
            Change::IdentityAdded { .. } => "identity_added",
            Change::OrderRecorded { .. } => "order_recorded",
            Change::CustomerTagsChanged { .. } => "customer_tags_changed",
            Change::CustomerNoteAdded { .. } => "customer_note_added",
            Change::CustomerMerged { .. } => "customer_merged",
            Change::CustomerExported => "customer_exported",
            Change::CustomerErased => "customer_erased",
            Change::OrderLinked { .. } => "order_linked",
            Change::OrderRequestRecorded { .. } => "order_request_recorded",
            Change::OrderRequestChanged { .. } => "order_request_changed",
            Change::SurveySent { .. } => "survey_sent",
            Change::SurveyAnswered { .. } => "survey_answered",
            Change::SurveyCommented { .. } => "survey_commented",
        }
    }

    /// The same change without what identifies a person or repeats their words (names,
    /// identities, subjects), for erasure. What happened, and when, stays.
    #[must_use]
    pub fn redacted(self) -> Self {
        match self {
            Change::ConversationCreated { channel, .. } => Change::ConversationCreated {
                channel,
                subject: None,
            },
            Change::SubjectChanged { .. } => Change::SubjectChanged {
                from: None,
                to: None,
            },
            Change::CustomerCreated { .. } => Change::CustomerCreated { name: None },
            Change::IdentityAdded { identity } => Change::IdentityAdded {
                identity: Identity {
                    kind: identity.kind,
                    value: String::new(),
                },
            },
            other => other,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub conversation_id: Option<ConversationId>,
    pub customer_id: Option<CustomerId>,
    pub actor: Actor,
    pub change: Change,
    pub at: Timestamp,
}
