//! The email channel: IMAP in ([`imap`]), MIME read ([`parse`]) and written ([`compose`]),
//! SMTP out ([`smtp`]) through the app's outbox.

pub mod compose;
pub mod imap;
pub mod parse;
pub mod quote;
pub mod smtp;

use seva_app::{App, AppError};
use seva_domain::mail::{DeliveryStatus, Mailbox};

/// What went wrong talking to a mail server or the app.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("the server refused the sign-in: {0}")]
    SignIn(String),
    #[error("the server did not answer in time")]
    Timeout,
    #[error("IMAP: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("SMTP: {0}")]
    Smtp(String),
    #[error("bad address {0}")]
    Address(String),
    #[error("writing the mail failed: {0}")]
    Compose(#[from] std::io::Error),
    #[error(transparent)]
    App(#[from] AppError),
}

impl MailError {
    /// A stable code for the API and the settings page.
    pub fn code(&self) -> &'static str {
        match self {
            MailError::Connect(_) => "mail_connect_failed",
            MailError::SignIn(_) => "mail_sign_in_failed",
            MailError::Timeout => "mail_timeout",
            MailError::Imap(_) => "imap_failed",
            MailError::Smtp(_) => "smtp_failed",
            MailError::Address(_) => "mail_address_invalid",
            MailError::Compose(_) | MailError::App(_) => "mail_failed",
        }
    }
}

/// What checking a mailbox's servers found.
#[derive(Debug)]
pub struct Check {
    pub imap: Result<(), MailError>,
    pub smtp: Result<(), MailError>,
}

/// Signs in to both servers (and opens the IMAP folder) without taking anything in or sending.
pub async fn check(app: &App, mailbox: &Mailbox) -> Check {
    let imap = async {
        let mut session = imap::connect(&mailbox.imap, app.mail_ca()).await?;
        session.examine(&mailbox.imap_folder).await?;
        let _ = session.logout().await;
        Ok(())
    }
    .await;
    Check {
        imap,
        smtp: smtp::check(mailbox, app.mail_ca()).await,
    }
}

/// What one outbox round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
}

/// Sends the replies that are due. Each is claimed first (so another instance skips it), then
/// written, handed to the SMTP server, and marked sent; a failure schedules the next try.
pub async fn send_due(app: &App) -> Result<Sent, AppError> {
    let mut done = send_notices(app).await?;
    loop {
        // One at a time: each claim's lease covers one send, however slow the server is.
        let claimed = app.claim_outbox(1).await?;
        if claimed.is_empty() {
            return Ok(done);
        }
        for id in claimed {
            if app.skip_seen_chat_reply(id).await? {
                continue;
            }
            let result = async {
                let mail = app.outgoing_email(id).await?;
                let raw = compose::compose(&mail)?;
                smtp::send(&mail.mailbox, app.mail_ca(), &mail.delivery.recipient, &raw).await?;
                Ok::<_, MailError>(raw)
            }
            .await;
            match result {
                Ok(raw) => {
                    app.email_sent(id, &raw).await?;
                    done.sent += 1;
                }
                Err(MailError::App(e @ AppError::Store(_))) => return Err(e),
                Err(e) => {
                    tracing::warn!(outbox = %id, error = %e, "sending an email reply failed");
                    match app.email_failed(id, &e.to_string()).await? {
                        DeliveryStatus::Failed => done.failed += 1,
                        _ => done.retrying += 1,
                    }
                }
            }
        }
    }
}

/// Sends the due notices (acknowledgements, sign-in links), one claim at a time.
async fn send_notices(app: &App) -> Result<Sent, AppError> {
    let mut done = Sent::default();
    loop {
        let claimed = app.claim_notices(1).await?;
        if claimed.is_empty() {
            return Ok(done);
        }
        for id in claimed {
            let result = async {
                let mail = app.outgoing_notice(id).await?;
                let raw = compose::compose_notice(&mail)?;
                smtp::send(&mail.mailbox, app.mail_ca(), &mail.notice.recipient, &raw).await?;
                Ok::<_, MailError>(())
            }
            .await;
            match result {
                Ok(()) => {
                    app.notice_sent(id).await?;
                    done.sent += 1;
                }
                Err(MailError::App(e @ AppError::Store(_))) => return Err(e),
                Err(e) => {
                    tracing::warn!(notice = id, error = %e, "sending a notice failed");
                    app.notice_failed(id, &e.to_string()).await?;
                    done.retrying += 1;
                }
            }
        }
    }
}
