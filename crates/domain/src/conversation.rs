//! Conversations and their messages: statuses and the moves between them.

use crate::Timestamp;
use crate::ids::{BrandId, ConversationId, CustomerId, MessageId, TeamId, UserId};
use crate::macros::string_enum;

string_enum! {
    /// Where a conversation stands. `pending` waits on the customer; `on_hold` waits on a third
    /// party; `resolved` can be reopened by the customer; `closed` is final.
    pub enum Status {
        Open => "open",
        Pending => "pending",
        OnHold => "on_hold",
        Resolved => "resolved",
        Closed => "closed",
    }
}

string_enum! {
    pub enum Priority {
        Low => "low",
        Normal => "normal",
        High => "high",
        Urgent => "urgent",
    }
}

string_enum! {
    /// How the customer reached the shop.
    pub enum Channel {
        Email => "email",
        Chat => "chat",
        Form => "form",
        Portal => "portal",
        Api => "api",
        Sms => "sms",
        Whatsapp => "whatsapp",
        Phone => "phone",
        InStore => "in_store",
    }
}

impl Channel {
    /// How a typical retailer's conversations split across channels, in percent (sums to 100):
    /// the demo shop and the benchmark's data set both follow it.
    pub const RETAIL_MIX: [(Channel, u32); 8] = [
        (Channel::Email, 40),
        (Channel::Chat, 25),
        (Channel::Form, 10),
        (Channel::Phone, 8),
        (Channel::Whatsapp, 7),
        (Channel::InStore, 5),
        (Channel::Sms, 3),
        (Channel::Api, 2),
    ];

    /// The channel at `percentile` (0 to 99) of [`Channel::RETAIL_MIX`].
    pub fn at_retail_percentile(percentile: u32) -> Channel {
        let mut rest = percentile;
        for (channel, weight) in Self::RETAIL_MIX {
            if rest < weight {
                return channel;
            }
            rest -= weight;
        }
        Channel::Email
    }
}

string_enum! {
    pub enum Direction {
        Inbound => "inbound",
        Outbound => "outbound",
    }
}

string_enum! {
    pub enum AuthorKind {
        Customer => "customer",
        Agent => "agent",
        Bot => "bot",
        System => "system",
    }
}

string_enum! {
    /// What a message is, as a caller of the API names it.
    pub enum MessageKind {
        /// An inbound message from the customer.
        Customer => "customer",
        /// A public reply by an agent: the unit of response-time KPIs.
        Reply => "reply",
        /// An internal note: never shown to the customer, never a reply.
        Note => "note",
    }
}

/// A refused status change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a conversation cannot move from {from} to {to}")]
pub struct InvalidTransition {
    pub from: Status,
    pub to: Status,
}

impl Status {
    /// Closed is final: a customer who writes again starts a new conversation. Every other move
    /// is allowed, because agents correct mistakes.
    pub fn transition(self, to: Status) -> Result<Status, InvalidTransition> {
        if self == Status::Closed && to != Status::Closed {
            return Err(InvalidTransition { from: self, to });
        }
        Ok(to)
    }

    /// Whether the conversation still needs the shop to act (it counts in the backlog).
    pub fn is_unresolved(self) -> bool {
        matches!(self, Status::Open | Status::Pending | Status::OnHold)
    }

    /// The status after a customer writes: a waiting or resolved conversation opens again.
    pub fn after_customer_message(self) -> Result<Status, InvalidTransition> {
        match self {
            Status::Closed => Err(InvalidTransition {
                from: self,
                to: Status::Open,
            }),
            Status::OnHold => Ok(Status::OnHold),
            _ => Ok(Status::Open),
        }
    }
}

impl MessageKind {
    pub fn direction(self) -> Direction {
        match self {
            MessageKind::Customer => Direction::Inbound,
            MessageKind::Reply | MessageKind::Note => Direction::Outbound,
        }
    }

    pub fn is_internal(self) -> bool {
        self == MessageKind::Note
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub id: ConversationId,
    pub customer_id: CustomerId,
    pub brand_id: Option<BrandId>,
    pub channel: Channel,
    pub status: Status,
    pub priority: Priority,
    pub subject: Option<String>,
    pub assignee_id: Option<UserId>,
    pub team_id: Option<TeamId>,
    pub tags: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The last message or change: what the inbox sorts by.
    pub last_activity_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub kind: MessageKind,
    pub author_kind: AuthorKind,
    pub author_user_id: Option<UserId>,
    pub text: String,
    /// Sanitised HTML, when the message came with HTML.
    pub html: Option<String>,
    /// The sender's own id for the message (an email Message-ID, an API client's id): the same
    /// external id is stored once.
    pub external_id: Option<String>,
    pub created_at: Timestamp,
}

/// A file that came with a message. The bytes live in the attachment store under their
/// SHA-256; the database keeps what describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: crate::ids::AttachmentId,
    pub message_id: MessageId,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub created_at: Timestamp,
}

/// A file name as people see it: the last path segment, without control characters, at most
/// 255 characters; "attachment" when nothing is left.
pub fn clean_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\u{202E}' | '\u{202D}'))
        .take(255)
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.');
    if trimmed.is_empty() {
        "attachment".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// A media type as `type/subtype` in lower case, or `application/octet-stream` when the given
/// one is not one (parameters such as `charset` are dropped).
pub fn clean_content_type(raw: &str) -> String {
    let essence = raw
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match essence.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) => essence,
        _ => "application/octet-stream".to_owned(),
    }
}

impl Message {
    pub fn direction(&self) -> Direction {
        self.kind.direction()
    }
}

#[cfg(test)]
mod attachment_tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_controls_and_direction_tricks() {
        assert_eq!(clean_filename("C:\\Users\\ali\\فاکتور.pdf"), "فاکتور.pdf");
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(clean_filename("a\"b\r\n.txt"), "ab.txt");
        assert_eq!(clean_filename("..."), "attachment");
        assert_eq!(clean_filename(""), "attachment");
    }

    #[test]
    fn content_types_are_kept_only_when_well_formed() {
        assert_eq!(clean_content_type("image/PNG"), "image/png");
        assert_eq!(
            clean_content_type("text/plain; charset=utf-8"),
            "text/plain"
        );
        assert_eq!(clean_content_type("nonsense"), "application/octet-stream");
        assert_eq!(
            clean_content_type("text/html\r\nX-Evil: 1"),
            "application/octet-stream"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_is_final() {
        assert!(Status::Closed.transition(Status::Open).is_err());
        assert!(Status::Closed.after_customer_message().is_err());
        assert_eq!(
            Status::Closed.transition(Status::Closed),
            Ok(Status::Closed)
        );
    }

    #[test]
    fn agents_may_move_between_any_other_statuses() {
        for &from in Status::ALL.iter().filter(|s| **s != Status::Closed) {
            for &to in Status::ALL {
                assert_eq!(from.transition(to), Ok(to));
            }
        }
    }

    #[test]
    fn a_customer_message_reopens_a_resolved_or_pending_conversation() {
        assert_eq!(Status::Resolved.after_customer_message(), Ok(Status::Open));
        assert_eq!(Status::Pending.after_customer_message(), Ok(Status::Open));
        assert_eq!(Status::OnHold.after_customer_message(), Ok(Status::OnHold));
    }

    #[test]
    fn the_retail_mix_covers_every_percentile() {
        assert_eq!(Channel::RETAIL_MIX.iter().map(|(_, w)| w).sum::<u32>(), 100);
        assert_eq!(Channel::at_retail_percentile(0), Channel::Email);
        assert_eq!(Channel::at_retail_percentile(40), Channel::Chat);
        assert_eq!(Channel::at_retail_percentile(99), Channel::Api);
    }

    #[test]
    fn status_spellings_round_trip() {
        for &s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert!("reopened".parse::<Status>().is_err());
    }

    #[test]
    fn only_customer_messages_are_inbound_and_only_notes_internal() {
        assert_eq!(MessageKind::Customer.direction(), Direction::Inbound);
        assert_eq!(MessageKind::Reply.direction(), Direction::Outbound);
        assert!(MessageKind::Note.is_internal());
        assert!(!MessageKind::Reply.is_internal());
    }
}
