//! Email: mailboxes, mail taken in (one transaction per mail: its message, files, raw source
//! and the mailbox's fetch position), mail set aside, and the outbox that sends replies.
//!
//! The channel crate speaks IMAP, SMTP and MIME; this module decides what a mail means:
//! which conversation it joins, who wrote it, and what must never happen twice.

use std::fmt::Write as _;

use seva_domain::mail::{
    self as domain, Automatic, Delivery, DeliveryStatus, MailReject, Mailbox, MailboxId, OutboxId,
    Server,
};
use seva_domain::values::{bounded_text, limits};
use seva_domain::{
    Actor, Attachment, BrandId, Change, Channel, Conversation, ConversationId, CustomerId,
    Identity, IdentityKind, Message, MessageId, MessageKind, Priority, Role, Status, Timestamp,
};
use seva_store::conversations::{self as conversations, NewConversation};
use seva_store::mail::{self as store, MailboxSettings, NewReject, NewSource};
use seva_store::{StoreError, Tx, customers, events};

use crate::attachments::{MAX_FILE_BYTES, MAX_FILES, NewFile};
use crate::conversations::{Body, add_message_in};
use crate::customers::{CustomerInput, find_or_create_customer};
use crate::live::Notice;
use crate::{App, AppError, Caller, Result, not_found};

/// How long a claim to watch a mailbox lasts without renewal (watchers renew every 10 s): how
/// long another instance waits to take over from one that died.
pub const WATCH_LEASE: chrono::Duration = chrono::Duration::seconds(30);

/// Largest mail taken in whole; a larger one is set aside with its headers.
pub const MAX_MAIL_BYTES: usize = 40 * 1024 * 1024;

/// What an admin sets on a mailbox. A password left `None` on an update keeps the old one.
#[derive(Debug, Clone)]
pub struct MailboxInput {
    pub name: String,
    pub address: String,
    pub brand_id: Option<BrandId>,
    pub imap: Server,
    pub imap_folder: Option<String>,
    pub smtp: Server,
    pub active: bool,
}

/// A mail as the channel read it.
#[derive(Debug, Clone, Default)]
pub struct InboundEmail {
    /// The Message-ID without angle brackets; one made from the content when the mail had none.
    pub message_id: String,
    /// In-Reply-To and References, the most likely parent first.
    pub references: Vec<String>,
    pub subject_reference: Option<ConversationId>,
    pub from: String,
    pub from_name: Option<String>,
    /// Where answers go when it differs from `from`.
    pub reply_to: Option<String>,
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
    pub files: Vec<NewFile>,
    pub automatic: Option<Automatic>,
    /// For a bounce: the Message-IDs of the mails that did not arrive.
    pub bounced: Vec<String>,
}

/// The server's position of a mail: its folder's UIDVALIDITY and its UID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub uid_validity: u32,
    pub uid: u32,
}

/// What taking a mail in did.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A new message, in a new conversation or joining one.
    Stored {
        conversation: ConversationId,
        message: MessageId,
        new_conversation: bool,
    },
    /// The same Message-ID was taken in before: nothing changed but the position.
    Duplicate { message: MessageId },
}

/// A mail that cannot become a message.
#[derive(Debug, Clone)]
pub struct RejectedEmail {
    pub size: u64,
    pub sender: Option<String>,
    pub subject: Option<String>,
    /// `too_large`, `unreadable` or `invalid`.
    pub error: &'static str,
    pub detail: String,
}

/// See [`App::mail_details`].
#[derive(Debug, Clone, Default)]
pub struct MailDetails {
    pub deliveries: Vec<Delivery>,
    pub sources: Vec<MessageId>,
    /// Order numbers customers gave on the contact form, by message.
    pub order_numbers: Vec<(MessageId, String)>,
    /// When this was read: a queued reply due later is waiting (a chat reply that is emailed
    /// only if the visitor does not see it).
    pub now: Timestamp,
}

/// Everything the sender needs to write one reply as a threaded email.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub delivery: Delivery,
    pub mailbox: Mailbox,
    pub brand_name: Option<String>,
    /// Without angle brackets.
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub subject: String,
    pub text: String,
    pub agent_name: Option<String>,
    /// The customer's message this answers, quoted below the reply.
    pub quote: Option<Quote>,
    pub files: Vec<(Attachment, Vec<u8>)>,
    pub at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Quote {
    pub author: String,
    pub at: Timestamp,
    pub text: String,
}

fn validate_server(what: &'static str, server: &Server, old: Option<&Server>) -> Result<Server> {
    let host = bounded_text(what, server.host.trim(), 253)?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(seva_domain::ValueError::Empty { field: what }.into());
    }
    if server.port == 0 {
        return Err(seva_domain::ValueError::Empty { field: what }.into());
    }
    let user = server
        .user
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| bounded_text(what, u, 320))
        .transpose()?;
    // An empty password on an edit means "unchanged": forms never show the stored one.
    let password = server
        .password
        .clone()
        .filter(|p| !p.is_empty())
        .or_else(|| old.and_then(|o| o.password.clone()));
    Ok(Server {
        host,
        port: server.port,
        security: server.security,
        user,
        password,
    })
}

impl App {
    /// Trusts these certificate authorities (PEM) for mail servers, besides the public ones:
    /// for a shop whose mail server has a certificate from its own CA.
    pub fn with_mail_ca(mut self, pem: Vec<u8>) -> Self {
        self.mail_ca = Some(pem.into());
        self
    }

    pub fn mail_ca(&self) -> Option<&[u8]> {
        self.mail_ca.as_deref()
    }

    pub async fn create_mailbox(&self, caller: &Caller, input: &MailboxInput) -> Result<Mailbox> {
        caller.require_role(Role::Admin)?;
        self.save_mailbox(None, input).await
    }

    pub async fn update_mailbox(
        &self,
        caller: &Caller,
        id: MailboxId,
        input: &MailboxInput,
    ) -> Result<Mailbox> {
        caller.require_role(Role::Admin)?;
        self.save_mailbox(Some(id), input).await
    }

    async fn save_mailbox(&self, id: Option<MailboxId>, input: &MailboxInput) -> Result<Mailbox> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let old = match id {
            Some(id) => Some(
                store::mailbox(&mut tx, id)
                    .await
                    .map_err(not_found("mailbox"))?,
            ),
            None => None,
        };
        let name = bounded_text("name", input.name.trim(), limits::NAME)?;
        if name.is_empty() {
            return Err(seva_domain::ValueError::Empty { field: "name" }.into());
        }
        let address = Identity::parse(IdentityKind::Email, &input.address)?.value;
        let imap = validate_server("imap_host", &input.imap, old.as_ref().map(|o| &o.imap))?;
        if imap.user.is_none() {
            return Err(seva_domain::ValueError::Empty { field: "imap_user" }.into());
        }
        if imap.password.is_none() {
            return Err(seva_domain::ValueError::Empty {
                field: "imap_password",
            }
            .into());
        }
        let smtp = validate_server("smtp_host", &input.smtp, old.as_ref().map(|o| &o.smtp))?;
        let folder = input
            .imap_folder
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .unwrap_or("INBOX");
        let folder = bounded_text("imap_folder", folder, 200)?;
        if let Some(brand) = input.brand_id
            && !seva_store::staff::brand_exists(&mut tx, brand).await?
        {
            return Err(AppError::NotFound("brand"));
        }
        let settings = MailboxSettings {
            name: &name,
            address: &address,
            brand_id: input.brand_id,
            imap: &imap,
            imap_folder: &folder,
            smtp: &smtp,
            active: input.active,
        };
        let saved = match id {
            Some(id) => store::update_mailbox(&mut tx, id, &settings, now)
                .await
                .map(|()| id),
            None => store::insert_mailbox(&mut tx, &settings, now).await,
        };
        let id = saved.map_err(|e| match e {
            StoreError::Conflict { .. } => AppError::AlreadyExists("mailbox address"),
            other => AppError::Store(other),
        })?;
        let mailbox = store::mailbox(&mut tx, id).await?;
        tx.commit().await?;
        Ok(mailbox)
    }

    pub async fn mailboxes(&self, caller: &Caller) -> Result<Vec<Mailbox>> {
        caller.require_role(Role::Admin)?;
        let mut conn = self.store.conn().await?;
        Ok(store::mailboxes(&mut conn).await?)
    }

    pub async fn mailbox(&self, caller: &Caller, id: MailboxId) -> Result<Mailbox> {
        caller.require_role(Role::Admin)?;
        self.mailbox_for_channel(id).await
    }

    /// The newest mail set aside in a mailbox.
    pub async fn mailbox_rejects(&self, caller: &Caller, id: MailboxId) -> Result<Vec<MailReject>> {
        caller.require_role(Role::Admin)?;
        let mut conn = self.store.conn().await?;
        Ok(store::rejects(&mut conn, id, 50).await?)
    }

    /// A mailbox as the channel needs it (no caller: the fetcher and sender act for the shop).
    pub async fn mailbox_for_channel(&self, id: MailboxId) -> Result<Mailbox> {
        let mut conn = self.store.conn().await?;
        store::mailbox(&mut conn, id)
            .await
            .map_err(not_found("mailbox"))
    }

    /// The mailboxes the fetcher works on.
    pub async fn active_mailboxes(&self) -> Result<Vec<Mailbox>> {
        let mut conn = self.store.conn().await?;
        Ok(store::mailboxes(&mut conn)
            .await?
            .into_iter()
            .filter(|m| m.active)
            .collect())
    }

    /// Claims (or renews) the right to watch a mailbox for a minute, for the instance named
    /// `watcher`: with several instances on one database, one IMAP connection per mailbox.
    pub async fn claim_mailbox_watch(&self, id: MailboxId, watcher: &str) -> Result<bool> {
        // One instance per SQLite file: nobody to share with, and nothing to wait for after a
        // crash.
        if self.store.backend() == seva_store::Backend::Sqlite {
            return Ok(true);
        }
        let now = self.now();
        let mut conn = self.store.conn().await?;
        Ok(store::claim_watch(&mut conn, id, watcher, now, now + WATCH_LEASE).await?)
    }

    pub async fn release_mailbox_watch(&self, id: MailboxId, watcher: &str) -> Result<()> {
        let mut conn = self.store.conn().await?;
        Ok(store::release_watch(&mut conn, id, watcher).await?)
    }

    /// Records whether the mail server answered; `None` clears the error.
    pub async fn record_mailbox_health(&self, id: MailboxId, error: Option<&str>) -> Result<()> {
        let mut conn = self.store.conn().await?;
        let error = error.map(|e| e.chars().take(500).collect::<String>());
        store::set_mailbox_health(&mut conn, id, error.as_deref(), self.now()).await?;
        Ok(())
    }

    /// Moves the fetch position past mail that needs nothing stored (gone from the server).
    pub async fn advance_mailbox(&self, id: MailboxId, position: Position) -> Result<()> {
        let mut conn = self.store.conn().await?;
        store::set_position(&mut conn, id, position.uid_validity, position.uid).await?;
        Ok(())
    }

    /// Takes a mail in: its raw source and files go to the blob store first, then the message,
    /// its files' rows, its source row and the mailbox position in one transaction. The same
    /// Message-ID twice stores one message.
    pub async fn receive_email(
        &self,
        mailbox: &Mailbox,
        mail: &InboundEmail,
        raw: &[u8],
        position: Option<Position>,
    ) -> Result<Received> {
        let raw_sha = self.put_blob(raw.to_vec()).await?;
        let (mail, dropped) = keep_acceptable_files(mail);
        let files = self.store_files(&mail.files).await?;
        let mut text = mail.text.clone();
        for (name, size) in dropped {
            let _ = write!(
                text,
                "\n\n[Seva: the attachment \u{201c}{name}\u{201d} ({size} bytes) was not kept: \
                 a message keeps at most {MAX_FILES} files of {MAX_FILE_BYTES} bytes each. \
                 It is in the mail's source.]"
            );
        }
        let mail = InboundEmail { text, ..mail };
        let raw_len = raw.len() as u64;
        let done = match self
            .try_receive_email(mailbox, &mail, &files, &raw_sha, raw_len, position)
            .await
        {
            // Another fetcher stored the same mail meanwhile: the second try finds it.
            Err(AppError::Store(StoreError::Conflict { .. })) => {
                self.try_receive_email(mailbox, &mail, &files, &raw_sha, raw_len, position)
                    .await
            }
            other => other,
        }?;
        if let Received::Stored { conversation, .. } = &done {
            self.publish(Notice::Changed(*conversation));
        }
        Ok(done)
    }

    async fn try_receive_email(
        &self,
        mailbox: &Mailbox,
        mail: &InboundEmail,
        files: &[crate::attachments::StoredFile],
        raw_sha: &str,
        raw_size: u64,
        position: Option<Position>,
    ) -> Result<Received> {
        let now = self.now();
        let Cleaned {
            message_id,
            sender,
            subject,
            text,
            html,
        } = clean(mail, files.is_empty())?;

        let mut tx = self.store.begin().await?;
        if let Some(position) = position {
            store::set_position(&mut tx, mailbox.id, position.uid_validity, position.uid).await?;
        }
        let message_id = match dedupe(&mut tx, message_id, &text, raw_sha).await? {
            Ok(id) => id,
            Err(message) => {
                tx.commit().await?;
                return Ok(Received::Duplicate { message });
            }
        };
        let sender_customer =
            customers::find_by_identity(&mut tx, sender.kind, &sender.value).await?;
        let threaded = self.thread_of(&mut tx, mail, sender_customer).await?;
        let target = threaded.or(note_bounce(&mut tx, mail, &text).await?);
        let mut conversation = match target {
            Some(id) => Some(conversations::get(&mut tx, id).await?),
            None => None,
        }
        .filter(|c| c.status != Status::Closed);

        let new_conversation = conversation.is_none();
        let (conversation_id, customer_id) = if let Some(c) = &conversation {
            (c.id, c.customer_id)
        } else {
            start_conversation(
                &mut tx,
                mailbox,
                &sender.value,
                mail,
                subject.as_deref(),
                now,
            )
            .await?
        };
        let body = Body {
            text: &text,
            html: html.as_deref(),
            external_id: Some(&message_id),
        };
        let message = add_message_in(
            &mut tx,
            None,
            conversation_id,
            customer_id,
            MessageKind::Customer,
            &body,
            now,
        )
        .await?;
        for file in files {
            let row = seva_store::attachments::NewAttachment {
                message_id: message,
                conversation_id,
                sha256: &file.sha256,
                filename: &file.filename,
                content_type: &file.content_type,
                size: file.size,
                at: now,
            };
            seva_store::attachments::insert(&mut tx, &row).await?;
        }
        let reply_to = mail
            .reply_to
            .as_deref()
            .and_then(|r| Identity::parse(IdentityKind::Email, r).ok())
            .map_or(sender.value.clone(), |r| r.value);
        store::insert_source(
            &mut tx,
            &NewSource {
                message_id: message,
                mailbox_id: mailbox.id,
                outbound: false,
                sha256: raw_sha,
                size: raw_size,
                reply_to: Some(&reply_to),
                automatic: mail.automatic,
                at: now,
            },
        )
        .await?;
        if let Some(c) = &mut conversation {
            touch_conversation(&mut tx, c, mail.automatic.is_none(), now).await?;
        }
        tx.commit().await?;
        Ok(Received::Stored {
            conversation: conversation_id,
            message,
            new_conversation,
        })
    }

    /// The conversation a mail answers: by its headers, else by the reference in its subject
    /// when the sender is that conversation's customer (a reference alone is easy to guess, so
    /// it never lets a stranger write into someone else's conversation).
    async fn thread_of(
        &self,
        tx: &mut Tx,
        mail: &InboundEmail,
        sender: Option<CustomerId>,
    ) -> Result<Option<ConversationId>> {
        let references: Vec<String> = mail
            .references
            .iter()
            .filter(|r| !r.is_empty() && r.len() <= limits::EXTERNAL_ID)
            .take(50)
            .cloned()
            .collect();
        if let Some(id) = store::conversation_of(tx, &references).await? {
            return Ok(Some(id));
        }
        // An answer to an acknowledgement Seva sent for the contact form.
        for reference in references.iter().rev().take(5) {
            if let Some(id) = seva_store::public::conversation_of_notice(tx, reference).await? {
                return Ok(Some(id));
            }
        }
        if let (Some(id), Some(sender)) = (mail.subject_reference, sender)
            && let Ok(c) = conversations::get(tx, id).await
            && c.customer_id == sender
        {
            return Ok(Some(c.id));
        }
        Ok(None)
    }

    /// Sets a mail aside with its reason (and its raw source, when it was downloaded), moving
    /// the position past it in the same transaction, so the fetcher goes on to the next one.
    pub async fn set_aside_email(
        &self,
        mailbox: &Mailbox,
        rejected: &RejectedEmail,
        raw: Option<&[u8]>,
        position: Position,
    ) -> Result<()> {
        let sha = match raw {
            Some(raw) => Some(self.put_blob(raw.to_vec()).await?),
            None => None,
        };
        let clip = |s: &Option<String>, n: usize| {
            s.as_deref().map(|s| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(n)
                    .collect::<String>()
            })
        };
        let (sender, subject) = (clip(&rejected.sender, 320), clip(&rejected.subject, 500));
        let detail: String = rejected.detail.chars().take(1000).collect();
        let mut tx = self.store.begin().await?;
        store::insert_reject(
            &mut tx,
            &NewReject {
                mailbox_id: mailbox.id,
                uid: position.uid,
                sha256: sha.as_deref(),
                size: rejected.size,
                sender: sender.as_deref(),
                subject: subject.as_deref(),
                error: rejected.error,
                detail: &detail,
                at: self.now(),
            },
        )
        .await?;
        store::set_position(&mut tx, mailbox.id, position.uid_validity, position.uid).await?;
        tx.commit().await?;
        tracing::warn!(mailbox = %mailbox.id, uid = position.uid, error = rejected.error, %detail, "mail set aside");
        Ok(())
    }

    /// How each email reply of a conversation is doing.
    pub async fn deliveries(&self, conversation: ConversationId) -> Result<Vec<Delivery>> {
        let mut conn = self.store.conn().await?;
        Ok(store::deliveries(&mut conn, conversation).await?)
    }

    /// A conversation's email side, on one connection: deliveries of replies, and which
    /// messages have their raw source kept.
    pub async fn mail_details(&self, conversation: ConversationId) -> Result<MailDetails> {
        let mut conn = self.store.conn().await?;
        Ok(MailDetails {
            deliveries: store::deliveries(&mut conn, conversation).await?,
            sources: store::sourced(&mut conn, conversation).await?,
            order_numbers: seva_store::public::order_numbers(&mut conn, conversation).await?,
            now: self.now(),
        })
    }

    /// The raw source of a message that came or went by email, as received or sent: what an
    /// audit (or a support request about a strange mail) needs.
    pub async fn message_source(&self, message: MessageId) -> Result<Vec<u8>> {
        let mut conn = self.store.conn().await?;
        let (sha256, _) = store::source(&mut conn, message)
            .await?
            .ok_or(AppError::NotFound("message source"))?;
        drop(conn);
        self.blob(&sha256).await
    }

    /// Claims queued replies that are due, for this sender only, for five minutes.
    pub async fn claim_outbox(&self, limit: i64) -> Result<Vec<OutboxId>> {
        let now = self.now();
        let mut conn = self.store.conn().await?;
        Ok(store::claim_due(&mut conn, now, now + chrono::Duration::minutes(5), limit).await?)
    }

    /// Drops a claimed chat reply the visitor's browser was given while it waited: it needs no
    /// email. Returns whether it was dropped.
    pub async fn skip_seen_chat_reply(&self, id: OutboxId) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let (delivery, _) = store::delivery(&mut tx, id)
            .await
            .map_err(not_found("outbox entry"))?;
        let message = conversations::get_message(&mut tx, delivery.message_id).await?;
        let conversation = conversations::find(&mut tx, message.conversation_id).await?;
        if conversation.channel != Channel::Chat
            || !seva_store::chat::delivered_in_chat(&mut tx, conversation.id, message.id.0).await?
        {
            return Ok(false);
        }
        store::unqueue(&mut tx, id).await?;
        tx.commit().await?;
        self.publish(Notice::Changed(conversation.id));
        Ok(true)
    }

    /// A claimed reply with everything needed to write it as email.
    pub async fn outgoing_email(&self, id: OutboxId) -> Result<OutgoingEmail> {
        let mut conn = self.store.conn().await?;
        let (delivery, mailbox_id) = store::delivery(&mut conn, id)
            .await
            .map_err(not_found("outbox entry"))?;
        let mailbox = store::mailbox(&mut conn, mailbox_id).await?;
        let message = conversations::get_message(&mut conn, delivery.message_id).await?;
        let conversation = conversations::get(&mut conn, message.conversation_id).await?;
        let thread = conversations::messages(&mut conn, conversation.id).await?;
        let before: Vec<&Message> = thread.iter().filter(|m| m.id < message.id).collect();
        let ids: Vec<(MessageId, String)> = store::thread_ids(&mut conn, conversation.id)
            .await?
            .into_iter()
            .filter(|(id, _)| *id < message.id)
            .collect();
        let earlier_ids: Vec<String> = ids.iter().map(|(_, mid)| mid.clone()).collect();
        let last_customer = before
            .iter()
            .rev()
            .find(|m| m.kind == MessageKind::Customer);
        // The customer's newest mail (a customer message that came by email).
        let in_reply_to = before
            .iter()
            .rev()
            .filter(|m| m.kind == MessageKind::Customer)
            .find_map(|m| ids.iter().find(|(id, _)| *id == m.id))
            .map(|(_, mid)| mid.clone());
        let customer = customers::get(&mut conn, conversation.customer_id).await?;
        let quote = last_customer.map(|m| Quote {
            author: customer
                .name
                .clone()
                .or_else(|| customer.emails().next().map(str::to_owned))
                .unwrap_or_default(),
            at: m.created_at,
            text: m.text.clone(),
        });
        let agent_name = match message.author_user_id {
            Some(user) => Some(seva_store::staff::user(&mut conn, user).await?.name),
            None => None,
        };
        let brand_name = match mailbox.brand_id.or(conversation.brand_id) {
            Some(brand) => seva_store::staff::brands(&mut conn)
                .await?
                .into_iter()
                .find(|b| b.id == brand)
                .map(|b| b.name),
            None => None,
        };
        let rows = seva_store::attachments::for_message(&mut conn, message.id).await?;
        drop(conn);
        let mut files = Vec::with_capacity(rows.len());
        for row in rows {
            let bytes = self.blob(&row.sha256).await?;
            files.push((row, bytes));
        }
        // The newest twenty ids are plenty for every mail program to find the thread.
        let skip = earlier_ids.len().saturating_sub(20);
        Ok(OutgoingEmail {
            message_id: delivery
                .mail_message_id
                .clone()
                .or_else(|| message.external_id.clone())
                .unwrap_or_default(),
            subject: domain::reply_subject(conversation.subject.as_deref(), conversation.id),
            text: message.text.clone(),
            references: earlier_ids.into_iter().skip(skip).collect(),
            in_reply_to,
            agent_name,
            brand_name,
            quote,
            files,
            at: message.created_at,
            delivery,
            mailbox,
        })
    }

    /// Records that the server took the mail, with the source as sent. The mail is out: it is
    /// marked sent even when its copy cannot be kept (a full disk), so it is never sent again.
    pub async fn email_sent(&self, id: OutboxId, raw: &[u8]) -> Result<()> {
        let sha = match self.put_blob(raw.to_vec()).await {
            Ok(sha) => Some(sha),
            Err(e) => {
                tracing::warn!(outbox = %id, error = %e, "a sent email's copy could not be kept");
                None
            }
        };
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let (delivery, mailbox) = store::delivery(&mut tx, id).await?;
        store::mark_sent(&mut tx, id, now).await?;
        if let Some(sha) = &sha
            && store::source(&mut tx, delivery.message_id).await?.is_none()
        {
            store::insert_source(
                &mut tx,
                &NewSource {
                    message_id: delivery.message_id,
                    mailbox_id: mailbox,
                    outbound: true,
                    sha256: sha,
                    size: raw.len() as u64,
                    reply_to: None,
                    automatic: None,
                    at: now,
                },
            )
            .await?;
        }
        let message = conversations::get_message(&mut tx, delivery.message_id).await?;
        tx.commit().await?;
        self.publish(Notice::Changed(message.conversation_id));
        Ok(())
    }

    /// Records a failed try; the mail is tried again later, or after the last try marked
    /// failed (shown on the message). Returns where it stands now.
    pub async fn email_failed(&self, id: OutboxId, error: &str) -> Result<DeliveryStatus> {
        let error: String = error.chars().take(500).collect();
        let mut tx = self.store.begin().await?;
        let (delivery, _) = store::delivery(&mut tx, id).await?;
        let attempt = delivery.attempts + 1;
        let retry_at = domain::retry_delay(attempt)
            .filter(|_| attempt < domain::MAX_ATTEMPTS)
            .map(|delay| self.now() + delay);
        store::mark_failed(&mut tx, id, &error, retry_at).await?;
        let message = conversations::get_message(&mut tx, delivery.message_id).await?;
        tx.commit().await?;
        // Agents watching the conversation see the retry (and the final failure) live.
        self.publish(Notice::Changed(message.conversation_id));
        if retry_at.is_none() {
            tracing::warn!(outbox = %id, %error, "email reply given up after the last try");
            return Ok(DeliveryStatus::Failed);
        }
        Ok(DeliveryStatus::Queued)
    }
}

/// Queues an agent's reply to an email conversation: to the sender of the newest mail, from
/// the mailbox it came to (else the brand's mailbox and the customer's first email). Gives the
/// reply its Message-ID now, so the customer's answer threads even before it is sent. Without a
/// mailbox or an address the reply stays in Seva only.
pub(crate) async fn queue_reply(
    tx: &mut Tx,
    conversation: &Conversation,
    message: MessageId,
    now: Timestamp,
) -> Result<()> {
    // When it leaves: at once, or for a chat after the widget's waiting time, and only if the
    // visitor's browser has not been given it by then (`skip_seen_chat_reply`).
    let due = match conversation.channel {
        Channel::Email | Channel::Form | Channel::Portal => now,
        Channel::Chat => {
            let wait = seva_store::chat::away_after_of(tx, conversation.id)
                .await?
                .unwrap_or(crate::chat::AWAY_AFTER_DEFAULT);
            now + chrono::Duration::seconds(i64::from(wait))
        }
        _ => return Ok(()),
    };
    let customer = customers::get(tx, conversation.customer_id).await?;
    let route = store::reply_route(tx, conversation.id).await?;
    let mailbox = match &route {
        Some((id, _)) => Some(store::mailbox(tx, *id).await?),
        None => store::mailbox_for_brand(tx, conversation.brand_id).await?,
    };
    // The newest mail's sender, when that is the customer (a Reply-To or a CC'd colleague who
    // threaded in by headers must not redirect the conversation); else the customer's address.
    let sender = route.and_then(|(_, to)| to);
    let recipient = sender
        .filter(|to| customer.emails().any(|e| e == to))
        .or_else(|| customer.emails().next().map(str::to_owned));
    let (Some(mailbox), Some(recipient)) = (mailbox, recipient) else {
        return Ok(());
    };
    let mail_message_id = new_mail_message_id(&mailbox, &message.0.to_string());
    // A reply without an id of its own is known by its Message-ID too (an API client's id is
    // kept: it is what the client retries with).
    if conversations::get_message(tx, message)
        .await?
        .external_id
        .is_none()
    {
        store::set_external_id(tx, message, &mail_message_id).await?;
    }
    store::queue(
        tx,
        message,
        mailbox.id,
        &recipient,
        &mail_message_id,
        due,
        now,
    )
    .await?;
    Ok(())
}

/// A mail's parts checked and cut to the limits: a long mail is kept, shortened, rather than
/// refused.
struct Cleaned {
    message_id: String,
    sender: Identity,
    subject: Option<String>,
    text: String,
    html: Option<String>,
}

fn clean(mail: &InboundEmail, no_files: bool) -> Result<Cleaned> {
    let message_id = bounded_text("message_id", &mail.message_id, limits::EXTERNAL_ID)?;
    let sender = Identity::parse(IdentityKind::Email, &mail.from)?;
    let subject = mail
        .subject
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(limits::SUBJECT).collect::<String>());
    let text = if mail.text.trim().is_empty() && mail.html.is_none() && no_files {
        "(empty message)".to_owned()
    } else {
        mail.text.chars().take(limits::MESSAGE_TEXT).collect()
    };
    let html = mail
        .html
        .as_deref()
        .filter(|h| h.chars().count() <= limits::MESSAGE_TEXT * 2)
        .map(ammonia::clean)
        .filter(|h| !h.trim().is_empty());
    Ok(Cleaned {
        message_id,
        sender,
        subject,
        text,
        html,
    })
}

/// The id a mail is stored under, or `Err` with the message already stored for it. The same
/// Message-ID with the same words is the same mail; with other words it comes from a mailer
/// that reuses its ids (web forms, scanners): a different mail, kept under the id and its
/// content's hash.
async fn dedupe(
    tx: &mut Tx,
    message_id: String,
    text: &str,
    raw_sha: &str,
) -> Result<Result<String, MessageId>> {
    let Some(existing) = conversations::find_message_by_external_id(tx, &message_id).await? else {
        return Ok(Ok(message_id));
    };
    if existing.text == text {
        return Ok(Err(existing.id));
    }
    let base: String = message_id.chars().take(limits::EXTERNAL_ID - 20).collect();
    let own = format!("{base}#{}", raw_sha.get(..16).unwrap_or(raw_sha));
    Ok(
        match conversations::find_message_by_external_id(tx, &own).await? {
            Some(existing) => Err(existing.id),
            None => Ok(own),
        },
    )
}

/// A bounce for one of Seva's own replies marks that reply not delivered, and names the
/// conversation it belongs in.
async fn note_bounce(
    tx: &mut Tx,
    mail: &InboundEmail,
    text: &str,
) -> Result<Option<ConversationId>> {
    let mut found = None;
    if mail.automatic != Some(Automatic::Bounce) {
        return Ok(found);
    }
    for bounced in &mail.bounced {
        let ours = match store::message_sent_as(tx, bounced).await? {
            Some(id) => Some(conversations::get_message(tx, id).await?),
            None => conversations::find_message_by_external_id(tx, bounced).await?,
        };
        if let Some(ours) = ours {
            let detail = format!("bounced: {}", first_line(text));
            store::mark_bounced(tx, ours.id, &detail).await?;
            found = found.or(Some(ours.conversation_id));
        }
    }
    Ok(found)
}

/// A new email conversation for the sender (found or created by their address).
async fn start_conversation(
    tx: &mut Tx,
    mailbox: &Mailbox,
    sender: &str,
    mail: &InboundEmail,
    subject: Option<&str>,
    now: Timestamp,
) -> Result<(ConversationId, CustomerId)> {
    let input = CustomerInput {
        email: Some(sender.to_owned()),
        name: mail.from_name.clone(),
        ..CustomerInput::default()
    };
    let customer = find_or_create_customer(tx, &input, Actor::SYSTEM, now).await?;
    let id = conversations::insert(
        tx,
        &NewConversation {
            customer_id: customer,
            brand_id: mailbox.brand_id,
            channel: Channel::Email,
            status: Status::Open,
            priority: Priority::Normal,
            subject,
            assignee_id: None,
            team_id: None,
            at: now,
        },
    )
    .await?;
    // Automatic mail is marked, so agents can filter it out of their way.
    if let Some(automatic) = mail.automatic {
        let tag = automatic.as_str().replace('_', "-");
        conversations::add_tags(tx, id, &[tag]).await?;
    }
    let created = Change::ConversationCreated {
        channel: Channel::Email,
        subject: subject.map(str::to_owned),
    };
    let actor = Actor::customer(customer);
    events::record(tx, Some(id), Some(customer), actor, &created, now).await?;
    Ok((id, customer))
}

/// A customer's mail in an existing conversation: reopens it (unless no person wrote the mail)
/// and moves its activity time.
async fn touch_conversation(
    tx: &mut Tx,
    c: &mut Conversation,
    reopen: bool,
    now: Timestamp,
) -> Result<()> {
    if reopen {
        let to = c
            .status
            .after_customer_message()
            .map_err(|_| AppError::ConversationClosed)?;
        if to != c.status {
            let change = Change::StatusChanged { from: c.status, to };
            let actor = Actor::customer(c.customer_id);
            events::record(tx, Some(c.id), Some(c.customer_id), actor, &change, now).await?;
            c.status = to;
        }
    }
    c.updated_at = now;
    c.last_activity_at = c.last_activity_at.max(now);
    conversations::update(tx, c).await?;
    Ok(())
}

/// Splits off files over the limits (a mail is taken in anyway), naming what was left out.
fn keep_acceptable_files(mail: &InboundEmail) -> (InboundEmail, Vec<(String, usize)>) {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for file in &mail.files {
        if file.bytes.len() > MAX_FILE_BYTES || kept.len() >= MAX_FILES {
            dropped.push((
                seva_domain::conversation::clean_filename(&file.filename),
                file.bytes.len(),
            ));
        } else {
            kept.push(file.clone());
        }
    }
    (
        InboundEmail {
            files: kept,
            ..mail.clone()
        },
        dropped,
    )
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// A new Message-ID (without angle brackets) in the mailbox's domain: `seva.{what}.{random}`.
pub(crate) fn new_mail_message_id(mailbox: &Mailbox, what: &str) -> String {
    let domain = mailbox
        .address
        .rsplit_once('@')
        .map_or("seva.invalid", |(_, d)| d);
    let random = crate::secrets::new_secret("");
    format!("seva.{what}.{}@{domain}", random.get(..16).unwrap_or("0"))
}
