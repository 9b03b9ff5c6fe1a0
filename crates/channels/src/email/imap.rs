//! Fetching with IMAP: new mail by UID above the mailbox's stored position, each mail stored
//! (one transaction with the position) before it is flagged \Seen on the server, then IDLE
//! until the server says more arrived (or a poll when it cannot IDLE).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_imap::types::UnsolicitedResponse;
use async_imap::{Client, Session};
use futures_util::TryStreamExt as _;
use seva_app::mail::{MAX_MAIL_BYTES, Position, Received, RejectedEmail};
use seva_app::{App, AppError};
use seva_domain::mail::{Mailbox, MailboxId, Security, Server};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::{MailError, parse};

/// Any connection IMAP can run over: plain TCP or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Stream for T {}

pub type ImapSession = Session<Box<dyn Stream>>;

/// How long one command may take before the connection is treated as lost.
const COMMAND: Duration = Duration::from_mins(1);
/// Mails fetched per command: enough to keep the connection busy, few enough to bound memory.
const BATCH: usize = 25;
const BATCH_BYTES: u64 = 50 * 1024 * 1024;

/// The public web PKI roots, plus the shop's own certificate authorities when it has some.
fn tls(extra_ca: Option<&[u8]>) -> Result<TlsConnector, MailError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| MailError::Connect(format!("the extra CA file: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| MailError::Connect(format!("the extra CA file: {e}")))?;
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| MailError::Connect(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn wrap_tls(
    server: &Server,
    extra_ca: Option<&[u8]>,
    tcp: TcpStream,
) -> Result<Box<dyn Stream>, MailError> {
    let name = ServerName::try_from(server.host.clone())
        .map_err(|e| MailError::Connect(format!("{}: {e}", server.host)))?;
    let stream = timeout(COMMAND, tls(extra_ca)?.connect(name, tcp))
        .await
        .map_err(|_| MailError::Timeout)?
        .map_err(|e| MailError::Connect(format!("TLS: {e}")))?;
    Ok(Box::new(stream))
}

async fn greeting<T: Stream>(client: &mut Client<T>) -> Result<(), MailError> {
    timeout(COMMAND, client.read_response())
        .await
        .map_err(|_| MailError::Timeout)?
        .map_err(|e| MailError::Connect(e.to_string()))?
        .ok_or_else(|| MailError::Connect("the server closed the connection".into()))?;
    Ok(())
}

/// Connects and signs in, trusting `extra_ca` (PEM) besides the public roots.
pub async fn connect(server: &Server, extra_ca: Option<&[u8]>) -> Result<ImapSession, MailError> {
    let tcp = timeout(
        COMMAND,
        TcpStream::connect((server.host.as_str(), server.port)),
    )
    .await
    .map_err(|_| MailError::Timeout)?
    .map_err(|e| MailError::Connect(format!("{}:{}: {e}", server.host, server.port)))?;
    let client = match server.security {
        Security::Tls => {
            let mut client = Client::new(wrap_tls(server, extra_ca, tcp).await?);
            greeting(&mut client).await?;
            client
        }
        Security::Starttls => {
            // Plain until the server agrees to TLS; no greeting follows STARTTLS.
            let mut plain = Client::new(tcp);
            greeting(&mut plain).await?;
            timeout(COMMAND, plain.run_command_and_check_ok("STARTTLS", None))
                .await
                .map_err(|_| MailError::Timeout)??;
            Client::new(wrap_tls(server, extra_ca, plain.into_inner()).await?)
        }
        Security::None => {
            let mut client = Client::new(Box::new(tcp) as Box<dyn Stream>);
            greeting(&mut client).await?;
            client
        }
    };
    let user = server.user.as_deref().unwrap_or("");
    let password = server.password.as_deref().unwrap_or("");
    timeout(COMMAND, client.login(user, password))
        .await
        .map_err(|_| MailError::Timeout)?
        .map_err(|(e, _)| MailError::SignIn(e.to_string()))
}

/// What one fetch round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fetched {
    pub stored: u64,
    pub duplicates: u64,
    pub set_aside: u64,
}

/// Whether an intake error is the mail's fault (set it aside and go on) or not (stop and try
/// the same mail again later). Only refusals of the mail's content are its fault: a database
/// that is away, a full disk or a lost race must never cost a customer's mail.
fn mail_is_at_fault(error: &AppError) -> bool {
    matches!(
        error,
        AppError::Invalid(_)
            | AppError::CustomerIdentityRequired
            | AppError::IdentityTaken(_)
            | AppError::ExternalIdTaken
            | AppError::InvalidTransition(_)
            | AppError::ConversationClosed
            | AppError::AttachmentTooLarge { .. }
            | AppError::TooManyAttachments { .. }
    )
}

/// Takes in every mail above the stored position. Each mail is stored with the new position in
/// one transaction, then flagged \Seen; a crash between the two only leaves it unflagged.
pub async fn fetch_new(
    app: &App,
    session: &mut ImapSession,
    id: MailboxId,
) -> Result<Fetched, MailError> {
    let mailbox = app.mailbox_for_channel(id).await?;
    let selected = timeout(COMMAND, session.select(&mailbox.imap_folder))
        .await
        .map_err(|_| MailError::Timeout)??;
    let validity = selected.uid_validity.unwrap_or(0);
    // A new UIDVALIDITY means the server renumbered the folder: read it all again; the
    // Message-IDs already stored keep it from making duplicates.
    let first = if mailbox.uid_validity == Some(validity) {
        mailbox.last_uid.saturating_add(1)
    } else {
        1
    };
    let sizes = list_new(session, first).await?;
    let mut done = Fetched::default();
    for batch in batches(&sizes) {
        let wanted: Vec<(u32, u32)> = batch
            .iter()
            .copied()
            .filter(|(_, size)| (*size as usize) <= MAX_MAIL_BYTES)
            .collect();
        let mut bodies = fetch_bodies(session, &wanted).await?;
        let mut stored = Vec::new();
        let mut failure = None;
        for &(uid, size) in batch {
            let position = Position {
                uid_validity: validity,
                uid,
            };
            if size as usize > MAX_MAIL_BYTES {
                let headers = headers_of(session, uid).await?;
                let summary = parse::summary(&headers);
                let rejected = RejectedEmail {
                    size: u64::from(size),
                    sender: summary.sender,
                    subject: summary.subject,
                    error: "too_large",
                    detail: format!(
                        "{size} bytes; Seva takes mails up to {MAX_MAIL_BYTES} bytes. It is still in the mailbox."
                    ),
                };
                app.set_aside_email(&mailbox, &rejected, Some(&headers), position)
                    .await?;
                done.set_aside += 1;
                continue;
            }
            let Some(raw) = bodies.remove(&uid) else {
                // Deleted on the server between the two commands: nothing to take in.
                app.advance_mailbox(mailbox.id, position).await?;
                continue;
            };
            // Mail set aside stays unread on the server, for a person to look at.
            match take_in(app, &mailbox, &raw, position).await {
                Ok(Some(Received::Stored { .. })) => done.stored += 1,
                Ok(Some(Received::Duplicate { .. })) => done.duplicates += 1,
                Ok(None) => {
                    done.set_aside += 1;
                    continue;
                }
                Err(e) => {
                    // The database is away: flag what was stored, then give up the round.
                    failure = Some(e);
                    break;
                }
            }
            stored.push(uid.to_string());
        }
        if !stored.is_empty() {
            timeout(
                COMMAND,
                session
                    .uid_store(stored.join(","), "+FLAGS.SILENT (\\Seen)")
                    .await?
                    .try_collect::<Vec<_>>(),
            )
            .await
            .map_err(|_| MailError::Timeout)??;
        }
        if let Some(e) = failure {
            return Err(e);
        }
    }
    Ok(done)
}

/// The UIDs from `first` on, with their sizes, oldest first.
async fn list_new(session: &mut ImapSession, first: u32) -> Result<Vec<(u32, u32)>, MailError> {
    let mut sizes: Vec<(u32, u32)> = {
        let stream = timeout(
            COMMAND,
            session.uid_fetch(format!("{first}:*"), "(UID RFC822.SIZE)"),
        )
        .await
        .map_err(|_| MailError::Timeout)??;
        let fetches: Vec<_> = timeout(COMMAND, stream.try_collect::<Vec<_>>())
            .await
            .map_err(|_| MailError::Timeout)??;
        fetches
            .iter()
            .filter_map(|f| Some((f.uid?, f.size.unwrap_or(0))))
            // "first:*" always returns the last mail, even when its UID is below `first`.
            .filter(|(uid, _)| *uid >= first)
            .collect()
    };
    sizes.sort_unstable();
    Ok(sizes)
}

/// The raw mails for these UIDs, without marking them read.
async fn fetch_bodies(
    session: &mut ImapSession,
    wanted: &[(u32, u32)],
) -> Result<HashMap<u32, Vec<u8>>, MailError> {
    let mut bodies: HashMap<u32, Vec<u8>> = HashMap::new();
    if wanted.is_empty() {
        return Ok(bodies);
    }
    let uids: Vec<String> = wanted.iter().map(|(uid, _)| uid.to_string()).collect();
    // A minute, plus time for the bytes at a slow 64 KB/s: a batch of large mails on a slow
    // link must not time out (and be retried) forever.
    let bytes: u64 = wanted.iter().map(|(_, size)| u64::from(*size)).sum();
    let allowed = COMMAND + Duration::from_secs(bytes / 65_536);
    let stream = timeout(
        COMMAND,
        session.uid_fetch(uids.join(","), "(UID BODY.PEEK[])"),
    )
    .await
    .map_err(|_| MailError::Timeout)??;
    let fetches: Vec<_> = timeout(allowed, stream.try_collect::<Vec<_>>())
        .await
        .map_err(|_| MailError::Timeout)??;
    for fetch in &fetches {
        if let (Some(uid), Some(body)) = (fetch.uid, fetch.body()) {
            bodies.insert(uid, body.to_vec());
        }
    }
    Ok(bodies)
}

/// Mails in batches of at most [`BATCH`] mails and [`BATCH_BYTES`] (a larger mail goes alone),
/// so memory stays bounded whatever senders send.
fn batches(sizes: &[(u32, u32)]) -> Vec<&[(u32, u32)]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, (_, size)) in sizes.iter().enumerate() {
        let size = u64::from(*size);
        if i > start && (i - start >= BATCH || bytes + size > BATCH_BYTES) {
            out.push(&sizes[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(&sizes[start..]);
    }
    out
}

/// Stores one mail, or sets it aside when it cannot be read or is refused. `None`: set aside.
async fn take_in(
    app: &App,
    mailbox: &Mailbox,
    raw: &[u8],
    position: Position,
) -> Result<Option<Received>, MailError> {
    let refused = match parse::parse(raw) {
        Ok(mail) => match app.receive_email(mailbox, &mail, raw, Some(position)).await {
            Ok(received) => return Ok(Some(received)),
            Err(e) if mail_is_at_fault(&e) => RejectedEmail {
                size: raw.len() as u64,
                sender: Some(mail.from.clone()),
                subject: mail.subject.clone(),
                error: "invalid",
                detail: e.to_string(),
            },
            Err(e) => return Err(e.into()),
        },
        Err(e) => {
            let summary = parse::summary(raw);
            RejectedEmail {
                size: raw.len() as u64,
                sender: summary.sender,
                subject: summary.subject,
                error: "unreadable",
                detail: e.to_string(),
            }
        }
    };
    app.set_aside_email(mailbox, &refused, Some(raw), position)
        .await?;
    Ok(None)
}

async fn headers_of(session: &mut ImapSession, uid: u32) -> Result<Vec<u8>, MailError> {
    let stream = timeout(
        COMMAND,
        session.uid_fetch(uid.to_string(), "(UID BODY.PEEK[HEADER])"),
    )
    .await
    .map_err(|_| MailError::Timeout)??;
    let fetches: Vec<_> = timeout(COMMAND, stream.try_collect::<Vec<_>>())
        .await
        .map_err(|_| MailError::Timeout)??;
    Ok(fetches
        .iter()
        .find_map(|f| f.header().map(<[u8]>::to_vec))
        .unwrap_or_default())
}

/// One round: connect, take in what is new, sign out.
pub async fn fetch_once(app: &App, id: MailboxId) -> Result<Fetched, MailError> {
    let mailbox = app.mailbox_for_channel(id).await?;
    let mut session = connect(&mailbox.imap, app.mail_ca()).await?;
    let done = fetch_new(app, &mut session, id).await?;
    let _ = timeout(COMMAND, session.logout()).await;
    Ok(done)
}

/// Watches one mailbox until `stop`: fetch, then IDLE (or sleep `poll`) and fetch again.
/// Connection errors are recorded on the mailbox and retried with a growing pause.
pub async fn watch(app: App, id: MailboxId, poll: Duration, mut stop: watch::Receiver<bool>) {
    let mut pause = Duration::from_secs(5);
    loop {
        let started = Instant::now();
        let error = match watch_connected(&app, id, poll, &mut stop).await {
            Ok(()) => return,
            Err(e) => e,
        };
        tracing::warn!(mailbox = %id, error = %error, "mailbox fetch failed; retrying");
        let _ = app
            .record_mailbox_health(id, Some(&error.to_string()))
            .await;
        // A connection that worked for a while starts the pauses again from the shortest.
        if started.elapsed() > Duration::from_mins(5) {
            pause = Duration::from_secs(5);
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
        pause = (pause * 2).min(Duration::from_mins(5));
    }
}

async fn watch_connected(
    app: &App,
    id: MailboxId,
    poll: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), MailError> {
    let mailbox = app.mailbox_for_channel(id).await?;
    let mut session = connect(&mailbox.imap, app.mail_ca()).await?;
    let can_idle = timeout(COMMAND, session.capabilities())
        .await
        .map_err(|_| MailError::Timeout)??
        .has_str("IDLE");
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let done = fetch_new(app, &mut session, id).await?;
        app.record_mailbox_health(id, None).await?;
        if done != Fetched::default() {
            tracing::info!(mailbox = %id, stored = done.stored, duplicates = done.duplicates, set_aside = done.set_aside, "mail taken in");
        }
        // Mail that arrived while this round ran was announced in passing (an untagged EXISTS
        // during FETCH or STORE); IDLE would not announce it again, so fetch once more first.
        let mut arrived = false;
        while let Ok(update) = session.unsolicited_responses.try_recv() {
            arrived |= matches!(
                update,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            );
        }
        if arrived {
            continue;
        }
        if can_idle {
            let mut idle = session.idle();
            timeout(COMMAND, idle.init())
                .await
                .map_err(|_| MailError::Timeout)??;
            let woke = {
                // Servers drop idle connections after 30 minutes; wake well before.
                let (wait, _interrupt) = idle.wait_with_timeout(
                    poll.max(Duration::from_mins(1))
                        .min(Duration::from_mins(25)),
                );
                tokio::select! {
                    result = wait => Some(result),
                    _ = stop.changed() => None,
                }
            };
            match woke {
                None => return Ok(()),
                Some(result) => {
                    result?;
                }
            }
            session = timeout(COMMAND, idle.done())
                .await
                .map_err(|_| MailError::Timeout)??;
        } else {
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                _ = stop.changed() => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_of_the_content_set_a_mail_aside() {
        let invalid = seva_domain::ValueError::Empty { field: "text" };
        assert!(mail_is_at_fault(&AppError::Invalid(invalid)));
        assert!(mail_is_at_fault(&AppError::CustomerIdentityRequired));
        // A database that is away, a lost race or a full disk: try the same mail again later.
        let away = seva_store::StoreError::Unavailable("connection refused".into());
        assert!(!mail_is_at_fault(&AppError::Store(away)));
        let race = seva_store::StoreError::Conflict {
            constraint: "messages_external_id".into(),
        };
        assert!(!mail_is_at_fault(&AppError::Store(race)));
        assert!(!mail_is_at_fault(&AppError::AttachmentStore(
            "disk full".into()
        )));
        assert!(!mail_is_at_fault(&AppError::AttachmentsUnavailable));
    }

    #[test]
    fn batches_stop_at_a_count_or_a_size_and_a_large_mail_goes_alone() {
        let small: Vec<(u32, u32)> = (1..=60).map(|uid| (uid, 1_000)).collect();
        let lens: Vec<usize> = batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(lens, vec![25, 25, 10]);
        let mb = 1024 * 1024;
        let mixed = [(1, 30 * mb), (2, 30 * mb), (3, 45 * mb), (4, 1), (5, 1)];
        let uids: Vec<Vec<u32>> = batches(&mixed)
            .iter()
            .map(|b| b.iter().map(|(uid, _)| *uid).collect())
            .collect();
        assert_eq!(uids, vec![vec![1], vec![2], vec![3, 4, 5]]);
        assert!(batches(&[]).is_empty());
    }
}
