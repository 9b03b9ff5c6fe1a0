//! Sending through the mailbox's SMTP server (lettre, over rustls where the mailbox asks for
//! TLS).

use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use seva_domain::mail::{Mailbox, Security};

use super::MailError;

/// Sorts lettre's errors into what the settings page and the outbox tell apart: no answer,
/// refused sign-in, unreachable server, or anything else the server said.
fn smtp_error(e: &lettre::transport::smtp::Error) -> MailError {
    if e.is_timeout() {
        return MailError::Timeout;
    }
    if e.status().is_some_and(|c| c.to_string() == "535") {
        return MailError::SignIn(e.to_string());
    }
    if e.status().is_none() && !e.is_response() && !e.is_tls() {
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if s.is::<std::io::Error>() {
                return MailError::Connect(e.to_string());
            }
            source = s.source();
        }
    }
    MailError::Smtp(e.to_string())
}

fn transport(
    mailbox: &Mailbox,
    extra_ca: Option<&[u8]>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let server = &mailbox.smtp;
    let tls = |host: &str| {
        let mut params = TlsParameters::builder(host.to_owned());
        if let Some(pem) = extra_ca {
            for cert in pem_certificates(pem) {
                params = params.add_root_certificate(cert?);
            }
        }
        params
            .build_rustls()
            .map_err(|e| MailError::Connect(format!("TLS: {e}")))
    };
    let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host);
    let builder = match server.security {
        Security::Tls => builder.tls(Tls::Wrapper(tls(&server.host)?)),
        Security::Starttls => builder.tls(Tls::Required(tls(&server.host)?)),
        // Loopback relays and tests only; the settings page says so.
        Security::None => builder,
    };
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
pub async fn send(
    mailbox: &Mailbox,
    extra_ca: Option<&[u8]>,
    to: &str,
    raw: &[u8],
) -> Result<(), MailError> {
    let from: Address = mailbox
        .address
        .parse()
        .map_err(|e| MailError::Address(format!("{}: {e}", mailbox.address)))?;
    let to: Address = to
        .parse()
        .map_err(|e| MailError::Address(format!("{to}: {e}")))?;
    let envelope =
        Envelope::new(Some(from), vec![to]).map_err(|e| MailError::Address(e.to_string()))?;
    transport(mailbox, extra_ca)?
        .send_raw(&envelope, raw)
        .await
        .map_err(|e| smtp_error(&e))?;
    Ok(())
}

/// Connects and signs in without sending anything.
pub async fn check(mailbox: &Mailbox, extra_ca: Option<&[u8]>) -> Result<(), MailError> {
    match transport(mailbox, extra_ca)?.test_connection().await {
        Ok(true) => Ok(()),
        Ok(false) => Err(MailError::Smtp("the server did not answer".into())),
        Err(e) => Err(smtp_error(&e)),
    }
}

/// Each certificate of a PEM bundle, as lettre wants them.
fn pem_certificates(pem: &[u8]) -> Vec<Result<Certificate, MailError>> {
    let text = String::from_utf8_lossy(pem);
    let end = "-----END CERTIFICATE-----";
    text.split_inclusive(end)
        .filter(|block| block.contains("-----BEGIN CERTIFICATE-----"))
        .map(|block| {
            Certificate::from_pem(block.trim().as_bytes())
                .map_err(|e| MailError::Connect(format!("the extra CA file: {e}")))
        })
        .collect()
}
