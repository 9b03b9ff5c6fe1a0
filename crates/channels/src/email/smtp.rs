//! Sending through the mailbox's SMTP server (lettre, over rustls where the mailbox asks for
//! TLS).

use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use seva_domain::mail::{Mailbox, Security};

use super::MailError;

fn transport(mailbox: &Mailbox) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let server = &mailbox.smtp;
    let builder = match server.security {
        Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&server.host),
        Security::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&server.host),
        Security::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &server.host,
        )),
    }
    .map_err(|e| MailError::Smtp(e.to_string()))?;
    // Greet with the mailbox's own domain: some servers refuse a bare "localhost".
    let domain = mailbox
        .address
        .rsplit_once('@')
        .map_or("localhost", |(_, d)| d)
        .to_owned();
    let mut builder = builder
        .port(server.port)
        .hello_name(ClientId::Domain(domain))
        .timeout(Some(Duration::from_secs(30)));
    if let (Some(user), Some(password)) = (&server.user, &server.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

/// Hands one raw mail to the server for `to`.
pub async fn send(mailbox: &Mailbox, to: &str, raw: &[u8]) -> Result<(), MailError> {
    let from: Address = mailbox
        .address
        .parse()
        .map_err(|e| MailError::Address(format!("{}: {e}", mailbox.address)))?;
    let to: Address = to
        .parse()
        .map_err(|e| MailError::Address(format!("{to}: {e}")))?;
    let envelope =
        Envelope::new(Some(from), vec![to]).map_err(|e| MailError::Address(e.to_string()))?;
    transport(mailbox)?
        .send_raw(&envelope, raw)
        .await
        .map_err(|e| MailError::Smtp(e.to_string()))?;
    Ok(())
}

/// Connects and signs in without sending anything.
pub async fn check(mailbox: &Mailbox) -> Result<(), MailError> {
    match transport(mailbox)?.test_connection().await {
        Ok(true) => Ok(()),
        Ok(false) => Err(MailError::Smtp("the server did not answer".into())),
        Err(e) => Err(MailError::Smtp(e.to_string())),
    }
}
