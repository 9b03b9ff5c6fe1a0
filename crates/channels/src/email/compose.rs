//! An agent's reply written as a threaded email: From the mailbox, In-Reply-To the customer's
//! mail, References the thread, the conversation reference in the subject, the customer's
//! message quoted below, the files attached.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::message_id::MessageId;
use seva_app::mail::OutgoingEmail;

use super::quote;

/// Header text with no line breaks or other controls left, so nothing an agent typed (or a
/// customer's name) can add a header.
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sender's display name: the agent and the mailbox ("Sara (Shop Support)").
fn display_name(mail: &OutgoingEmail) -> String {
    let mailbox = one_line(&mail.mailbox.name);
    match mail.agent_name.as_deref().map(one_line) {
        Some(agent) if !agent.is_empty() => format!("{agent} ({mailbox})"),
        _ => mailbox,
    }
}

/// The raw RFC 5322 message to send.
pub fn compose(mail: &OutgoingEmail) -> std::io::Result<Vec<u8>> {
    let body = quote::with_quote(
        &mail.text,
        mail.quote
            .as_ref()
            .map(|q| (q.author.as_str(), q.at, q.text.as_str())),
    );
    let mut builder = MessageBuilder::new()
        .from(Address::new_address(
            Some(display_name(mail)),
            mail.mailbox.address.clone(),
        ))
        .to(Address::new_address(
            None::<String>,
            mail.delivery.recipient.clone(),
        ))
        .subject(one_line(&mail.subject))
        .message_id(mail.message_id.clone())
        .date(mail.at.timestamp())
        .text_body(body);
    if let Some(parent) = &mail.in_reply_to {
        builder = builder.in_reply_to(parent.clone());
    }
    if !mail.references.is_empty() {
        builder = builder.references(MessageId::from(mail.references.clone()));
    }
    for (file, bytes) in &mail.files {
        builder = builder.attachment(
            file.content_type.clone(),
            one_line(&file.filename),
            bytes.clone(),
        );
    }
    builder.write_to_vec()
}

/// A notice Seva sends on its own (an acknowledgement, a sign-in link): plain text from the
/// mailbox, marked as automatic so that mail programs do not answer it with auto-replies.
pub fn compose_notice(mail: &seva_app::public::OutgoingNotice) -> std::io::Result<Vec<u8>> {
    MessageBuilder::new()
        .from(Address::new_address(
            Some(one_line(&mail.mailbox.name)),
            mail.mailbox.address.clone(),
        ))
        .to(Address::new_address(
            None::<String>,
            mail.notice.recipient.clone(),
        ))
        .subject(one_line(&mail.notice.subject))
        .message_id(mail.notice.mail_message_id.clone())
        .date(mail.at.timestamp())
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-generated"),
        )
        .text_body(mail.notice.body.clone())
        .write_to_vec()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use seva_app::mail::{OutgoingEmail, Quote};
    use seva_domain::mail::Server;
    use seva_domain::mail::{Delivery, DeliveryStatus, Mailbox, MailboxId, OutboxId, Security};
    use seva_domain::{MessageId, Timestamp};

    use super::compose;

    fn at() -> Timestamp {
        chrono::DateTime::from_timestamp(1_794_000_000, 0).unwrap()
    }

    fn mail(subject: &str, agent: &str) -> OutgoingEmail {
        let server = Server {
            host: "127.0.0.1".into(),
            port: 25,
            security: Security::None,
            user: None,
            password: None,
        };
        OutgoingEmail {
            delivery: Delivery {
                id: OutboxId(1),
                message_id: MessageId(2),
                recipient: "maryam@example.org".into(),
                status: DeliveryStatus::Queued,
                attempts: 0,
                next_attempt_at: at(),
                last_error: None,
                sent_at: None,
                mail_message_id: Some("seva.2.abc@shop.example.com".into()),
            },
            mailbox: Mailbox {
                id: MailboxId(1),
                name: "Shop Support".into(),
                address: "support@shop.example.com".into(),
                brand_id: None,
                imap: server.clone(),
                imap_folder: "INBOX".into(),
                smtp: server,
                uid_validity: None,
                last_uid: 0,
                checked_at: None,
                last_error: None,
                active: true,
                created_at: at(),
                updated_at: at(),
            },
            brand_name: None,
            message_id: "seva.2.abc@shop.example.com".into(),
            in_reply_to: Some("first@example.org".into()),
            references: vec!["first@example.org".into()],
            subject: subject.into(),
            text: "Your order ships today.".into(),
            agent_name: Some(agent.into()),
            quote: Some(Quote {
                author: "Maryam".into(),
                at: at(),
                text: "Where is my order?".into(),
            }),
            files: Vec::new(),
            at: at(),
        }
    }

    fn header_lines(raw: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(raw);
        let head = text.split("\r\n\r\n").next().unwrap_or("").to_owned();
        head.split("\r\n").map(str::to_owned).collect()
    }

    #[test]
    fn a_subject_or_name_an_agent_typed_cannot_add_headers() {
        let raw = compose(&mail(
            "Re: order [#1]\r\nBcc: everyone@example.net",
            "Sara\r\nBcc: all@example.net",
        ))
        .unwrap();
        let lines = header_lines(&raw);
        assert!(
            !lines
                .iter()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{lines:#?}"
        );
        let parsed = crate::email::parse::parse(&raw).unwrap();
        assert_eq!(
            parsed.subject.as_deref(),
            Some("Re: order [#1] Bcc: everyone@example.net")
        );
    }

    #[test]
    fn a_reply_is_threaded_and_quotes_the_customer() {
        let raw = compose(&mail("Re: order [#1]", "Sara")).unwrap();
        let lines = header_lines(&raw);
        assert!(
            lines.contains(&"In-Reply-To: <first@example.org>".to_owned()),
            "{lines:#?}"
        );
        assert!(
            lines.contains(&"References: <first@example.org>".to_owned()),
            "{lines:#?}"
        );
        assert!(lines.contains(&"Message-ID: <seva.2.abc@shop.example.com>".to_owned()));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("From: \"Sara (Shop Support)\" <support@shop.example.com>")),
            "{lines:#?}"
        );
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let body = parsed.body_text(0).unwrap().replace("\r\n", "\n");
        assert!(body.starts_with("Your order ships today.\n\nOn "), "{body}");
        assert!(
            body.contains("Maryam wrote:\n> Where is my order?"),
            "{body}"
        );
    }
}
