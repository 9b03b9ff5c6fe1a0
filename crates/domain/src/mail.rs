//! The email channel's words: mailboxes, how mail was sent, which mail is automatic, the
//! conversation reference in subjects and the outbox's retry schedule.

use crate::Timestamp;
use crate::ids::{BrandId, ConversationId, MessageId};
use crate::macros::{id_type, string_enum};

id_type!(MailboxId, OutboxId, MailRejectId);

string_enum! {
    /// How a connection to a mail server is protected: TLS from the first byte (IMAPS 993,
    /// SMTPS 465), STARTTLS on the plain port (143, 587), or none (loopback and tests only).
    pub enum Security {
        Tls => "tls",
        Starttls => "starttls",
        None => "none",
    }
}

string_enum! {
    /// Mail that no person wrote: it is taken in, but never answered automatically and never
    /// reopens a conversation.
    pub enum Automatic {
        AutoReply => "auto_reply",
        Bounce => "bounce",
        List => "list",
    }
}

string_enum! {
    /// Where an outgoing email stands.
    pub enum DeliveryStatus {
        Queued => "queued",
        Sent => "sent",
        Failed => "failed",
    }
}

/// A mail server the mailbox talks to.
#[derive(Clone, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// `None`: the server needs no sign-in (SMTP relays on a private network).
    pub user: Option<String>,
    pub password: Option<String>,
}

/// Passwords stay out of logs.
impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A configured entry point for email: customers write to `address`, Seva fetches from `imap`
/// and answers through `smtp` from the same address.
#[derive(Debug, Clone, PartialEq)]
pub struct Mailbox {
    pub id: MailboxId,
    pub name: String,
    pub address: String,
    pub brand_id: Option<BrandId>,
    pub imap: Server,
    pub imap_folder: String,
    pub smtp: Server,
    pub uid_validity: Option<u32>,
    pub last_uid: u32,
    pub checked_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// How an agent's email reply is doing, shown on the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: OutboxId,
    pub message_id: MessageId,
    pub recipient: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub sent_at: Option<Timestamp>,
    /// The Message-ID it is sent with, without angle brackets.
    pub mail_message_id: Option<String>,
}

/// A mail that could not become a message, kept with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailReject {
    pub id: MailRejectId,
    pub uid: u32,
    pub size: u64,
    pub sender: Option<String>,
    pub subject: Option<String>,
    /// A stable code: `too_large`, `unreadable`, `invalid`.
    pub error: String,
    pub detail: String,
    pub created_at: Timestamp,
}

/// The reference Seva puts in the subject of its replies, so a customer's answer finds its
/// conversation even when their mail program dropped In-Reply-To and References.
pub fn subject_reference(id: ConversationId) -> String {
    format!("[#{id}]")
}

/// The subject of a reply: "Re: " once, and the conversation reference once.
pub fn reply_subject(subject: Option<&str>, id: ConversationId) -> String {
    let subject = subject.unwrap_or("").trim();
    let reference = subject_reference(id);
    let base = if subject.is_empty() {
        reference.clone()
    } else if subject.contains(&reference) {
        subject.to_owned()
    } else {
        format!("{subject} {reference}")
    };
    let lower = base.to_lowercase();
    if lower.starts_with("re:") || lower.starts_with("aw:") {
        base
    } else {
        format!("Re: {base}")
    }
}

/// The conversation a subject refers to: the last `[#digits]` in it.
pub fn find_subject_reference(subject: &str) -> Option<ConversationId> {
    let mut found = None;
    let mut rest = subject;
    while let Some(start) = rest.find("[#") {
        let after = &rest[start + 2..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty()
            && after[digits.len()..].starts_with(']')
            && let Ok(id) = digits.parse::<i64>()
        {
            found = Some(ConversationId(id));
        }
        rest = after;
    }
    found
}

/// The outbox's retry schedule: how long to wait after the `attempt`-th failure (1-based), or
/// `None` when that was the last try. About eight hours in all, so a mail server that is down
/// for a night's maintenance loses nothing.
pub fn retry_delay(attempt: u32) -> Option<chrono::Duration> {
    const MINUTES: [i64; 7] = [1, 5, 15, 30, 60, 120, 240];
    let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
    MINUTES.get(index).map(|m| chrono::Duration::minutes(*m))
}

/// How many times the outbox tries before it reports a failure.
pub const MAX_ATTEMPTS: u32 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subjects_say_re_and_the_reference_once() {
        let id = ConversationId(42);
        assert_eq!(
            reply_subject(Some("Where is my order?"), id),
            "Re: Where is my order? [#42]"
        );
        assert_eq!(
            reply_subject(Some("RE: Where is my order? [#42]"), id),
            "RE: Where is my order? [#42]"
        );
        assert_eq!(reply_subject(None, id), "Re: [#42]");
        assert_eq!(reply_subject(Some("سفارش من"), id), "Re: سفارش من [#42]");
    }

    #[test]
    fn subject_references_are_found_and_other_brackets_ignored() {
        assert_eq!(
            find_subject_reference("RE: Where is my order [#42]"),
            Some(ConversationId(42))
        );
        assert_eq!(
            find_subject_reference("Fwd: [#7] and later [#1234]"),
            Some(ConversationId(1234))
        );
        assert_eq!(find_subject_reference("Order [#abc] [#] [# 12]"), None);
        assert_eq!(find_subject_reference("[#99999999999999999999999]"), None);
        assert_eq!(find_subject_reference(""), None);
    }

    #[test]
    fn retries_back_off_and_stop_after_the_last_attempt() {
        let delays: Vec<_> = (1..=MAX_ATTEMPTS).map(retry_delay).collect();
        assert_eq!(delays[0], Some(chrono::Duration::minutes(1)));
        assert!(delays.windows(2).all(|w| match (w[0], w[1]) {
            (Some(a), Some(b)) => a < b,
            (_, None) => true,
            (None, Some(_)) => false,
        }));
        assert_eq!(retry_delay(MAX_ATTEMPTS), None);
        assert_eq!(retry_delay(0), None);
        let total: i64 = (1..MAX_ATTEMPTS)
            .filter_map(retry_delay)
            .map(|d| d.num_minutes())
            .sum();
        assert!((400..=600).contains(&total), "{total} minutes in all");
    }
}
