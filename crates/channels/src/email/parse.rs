//! Raw mail to [`InboundEmail`]: charsets, transfer encodings, encoded words and file names are
//! mail-parser's work; this module picks what a help desk needs, cleans what a hostile sender
//! could abuse (control characters in headers, scripts and tracking images in HTML), trims the
//! quoted history from replies and recognises mail no person wrote.

use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders as _, PartType};
use seva_app::attachments::NewFile;
use seva_app::mail::InboundEmail;
use seva_domain::mail::{Automatic, find_subject_reference};
use sha2::{Digest as _, Sha256};

use super::quote;

/// Why a mail could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the mail is empty or has no headers")]
    Empty,
    #[error("the mail names no sender address")]
    NoSender,
    #[error("the MIME structure could not be read")]
    Malformed,
}

/// What can be told of a mail from its headers alone (for mail set aside).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub sender: Option<String>,
    pub subject: Option<String>,
}

/// Reads a raw mail. Never panics and never fails on broken MIME: whatever can be read is kept.
pub fn parse(raw: &[u8]) -> Result<InboundEmail, ParseError> {
    // mail-parser asserts on some broken nestings in debug builds (found by the fuzz target):
    // a panic there is this mail's fault and must not take the fetcher down with it.
    std::panic::catch_unwind(|| read(raw)).unwrap_or(Err(ParseError::Malformed))
}

fn read(raw: &[u8]) -> Result<InboundEmail, ParseError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(ParseError::Empty)?;
    if message.headers().is_empty() {
        return Err(ParseError::Empty);
    }
    let (from, from_name) = sender(&message).ok_or(ParseError::NoSender)?;
    let subject = message
        .subject()
        .map(clean_header)
        .filter(|s| !s.is_empty());
    let automatic = automatic(&message);
    let text = body_text(&message);
    let html = body_html(&message);
    let mut references = ids(message.in_reply_to());
    let mut chain = ids(message.references());
    chain.reverse();
    for id in chain {
        if !references.contains(&id) {
            references.push(id);
        }
    }
    let bounced = if automatic == Some(Automatic::Bounce) {
        bounced_ids(&message)
    } else {
        Vec::new()
    };
    Ok(InboundEmail {
        message_id: message
            .message_id()
            .map(clean_id)
            .filter(|id| !id.is_empty() && id.len() <= 255)
            .unwrap_or_else(|| content_id(raw)),
        references,
        subject_reference: subject.as_deref().and_then(find_subject_reference),
        from,
        from_name,
        reply_to: message
            .reply_to()
            .and_then(Address::first)
            .and_then(|a| a.address())
            .map(clean_header),
        subject,
        text: quote::trim_reply(&text),
        html: html.map(|h| quote::clean_email_html(&h)),
        files: files(&message),
        automatic,
        bounced,
    })
}

/// The sender and subject from the headers only, for a mail too large to download.
pub fn summary(raw_headers: &[u8]) -> Summary {
    let Ok(Some(message)) =
        std::panic::catch_unwind(|| MessageParser::default().parse_headers(raw_headers))
    else {
        return Summary::default();
    };
    Summary {
        sender: sender(&message).map(|(address, _)| address),
        subject: message.subject().map(clean_header),
    }
}

/// An id for a mail without a Message-ID: the same bytes always get the same id, so fetching
/// it twice still stores it once.
fn content_id(raw: &[u8]) -> String {
    format!("{}@no-message-id.seva", hex::encode(Sha256::digest(raw)))
}

fn sender(message: &Message<'_>) -> Option<(String, Option<String>)> {
    let from = [message.from(), message.sender()]
        .into_iter()
        .flatten()
        .flat_map(Address::iter)
        .find_map(|a| {
            let address = a.address().map(clean_header)?;
            address.contains('@').then(|| {
                let name = a.name().map(clean_header).filter(|n| !n.is_empty());
                (address, name)
            })
        });
    from.or_else(|| {
        message
            .return_address()
            .map(clean_header)
            .filter(|a| a.contains('@'))
            .map(|a| (a, None))
    })
}

/// Header text with every control character (CR and LF included: header injection) made a
/// space, and runs of spaces collapsed.
fn clean_header(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end().to_owned()
}

fn clean_id(id: &str) -> String {
    clean_header(id.trim().trim_start_matches('<').trim_end_matches('>')).replace(' ', "")
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<String> = match value {
        HeaderValue::Text(id) => vec![clean_id(id)],
        HeaderValue::TextList(ids) => ids.iter().map(|id| clean_id(id)).collect(),
        _ => Vec::new(),
    };
    list.into_iter()
        .filter(|id| !id.is_empty() && id.len() <= 255)
        .take(100)
        .collect()
}

fn header_text<'a>(message: &'a Message<'_>, name: &'static str) -> Option<&'a str> {
    message.header_raw(name).map(str::trim)
}

/// Bounces (delivery reports, the null sender, mailer daemons), auto-replies (RFC 3834 and the
/// common vendor headers) and list or bulk mail.
fn automatic(message: &Message<'_>) -> Option<Automatic> {
    let report = message.content_type().is_some_and(|ct| {
        ct.c_type.eq_ignore_ascii_case("multipart")
            && ct
                .c_subtype
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
    });
    let null_sender = header_text(message, "Return-Path").is_some_and(|p| p == "<>");
    let daemon = sender(message).is_some_and(|(address, _)| {
        let local = address.split('@').next().unwrap_or("").to_ascii_lowercase();
        local == "mailer-daemon" || local == "postmaster"
    });
    if report || (null_sender && daemon) {
        return Some(Automatic::Bounce);
    }
    let auto_submitted = header_text(message, "Auto-Submitted")
        .is_some_and(|v| !v.to_ascii_lowercase().starts_with("no"));
    let vendor = ["X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"]
        .iter()
        .any(|h| message.header_raw(*h).is_some());
    let precedence = header_text(message, "Precedence")
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if auto_submitted || vendor || precedence == "auto_reply" || null_sender {
        return Some(Automatic::AutoReply);
    }
    let listed = !message.list_id().is_empty() || !message.list_unsubscribe().is_empty();
    if listed || precedence == "bulk" || precedence == "list" || precedence == "junk" {
        return Some(Automatic::List);
    }
    None
}

/// The Message-IDs of the mails a delivery report is about: from the returned message or its
/// headers.
fn bounced_ids(message: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for part in message.parts.iter().skip(1) {
        let nested = match &part.body {
            PartType::Message(m) => m.message_id().map(clean_id),
            _ if part.is_content_type("text", "rfc822-headers") => MessageParser::default()
                .parse_headers(part.contents())
                .and_then(|m| m.message_id().map(clean_id)),
            _ => None,
        };
        if let Some(id) = nested.filter(|id| !id.is_empty() && !out.contains(id)) {
            out.push(id);
        }
    }
    out
}

fn body_text(message: &Message<'_>) -> String {
    let text = message
        .body_text(0)
        .map(|t| t.replace("\r\n", "\n"))
        .unwrap_or_default();
    // Keep line breaks and tabs; drop the other controls a broken mail can carry.
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .trim()
        .to_owned()
}

fn body_html(message: &Message<'_>) -> Option<String> {
    let part = message.html_part(0)?;
    match &part.body {
        PartType::Html(html) => Some(html.to_string()),
        _ => None,
    }
}

/// Attachments, inline images and forwarded mails, each with a usable name.
fn files(message: &Message<'_>) -> Vec<NewFile> {
    message
        .attachments()
        .enumerate()
        .filter(|(_, part)| !part.contents().is_empty())
        .map(|(i, part)| {
            let content_type = part.content_type().map_or_else(
                || "application/octet-stream".to_owned(),
                |ct| match ct.c_subtype.as_deref() {
                    Some(sub) => format!("{}/{}", ct.c_type, sub),
                    None => ct.c_type.to_string(),
                },
            );
            let filename = part
                .attachment_name()
                .map(clean_header)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| {
                    let extension = match &part.body {
                        PartType::Message(_) => "eml",
                        _ => content_type.split('/').nth(1).unwrap_or("bin"),
                    };
                    format!("attachment-{}.{extension}", i + 1)
                });
            NewFile {
                filename,
                content_type,
                bytes: part.contents().to_vec(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn header_injection_is_flattened_to_one_line() {
        assert_eq!(
            clean_header("Hello\r\nBcc: victim@example.net"),
            "Hello Bcc: victim@example.net"
        );
        assert_eq!(clean_header("  a\t\tb  "), "a b");
    }

    #[test]
    fn a_mail_without_headers_or_sender_is_refused_not_panicked_on() {
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(
            parse(b"Subject: hi\r\n\r\nbody").unwrap_err(),
            ParseError::NoSender
        );
        let mail = parse(b"From: a@example.com\r\n\r\nbody").unwrap();
        assert_eq!(mail.from, "a@example.com");
        assert!(mail.message_id.ends_with("@no-message-id.seva"));
        assert_eq!(
            parse(b"From: a@example.com\r\n\r\nbody")
                .unwrap()
                .message_id,
            mail.message_id
        );
    }
}
