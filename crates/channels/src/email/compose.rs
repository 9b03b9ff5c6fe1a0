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
