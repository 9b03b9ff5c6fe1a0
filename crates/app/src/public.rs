//! What customers do without an agent's account: send the contact form, and use the customer
//! portal (a sign-in link by email, then their own conversations). Both refuse floods by
//! counting in the database, so the limits hold across instances.

use chrono::Duration;
use seva_domain::values::{bounded_text, limits};
use seva_domain::{
    Actor, BrandId, Change, Channel, Conversation, ConversationId, CustomerId, Identity,
    IdentityKind, Message, MessageKind, Priority, Status,
};
use seva_store::conversations::{self as conversations, ConversationFilter, NewConversation};
use seva_store::public::{self as store, NewNotice};
use seva_store::{Tx, events};

use crate::attachments::NewFile;
use crate::conversations::{Body, add_message_in};
use crate::customers::{CustomerInput, find_or_create_customer};
use crate::live::Notice;
use crate::secrets::{hash_secret, new_secret};
use crate::{App, AppError, Result};

/// Forms one client (network address) may send per hour.
pub const FORMS_PER_HOUR: i64 = 5;
/// Acknowledgements one address receives per hour: the form must not become a way to flood
/// someone's mailbox.
pub const ACKNOWLEDGEMENTS_PER_HOUR: i64 = 3;
/// Sign-in links one address receives per 15 minutes.
pub const LINKS_PER_QUARTER_HOUR: i64 = 3;
/// How long a portal sign-in link works, and a portal session lasts.
pub const LINK_LIFETIME: Duration = Duration::minutes(30);
pub const PORTAL_SESSION_LIFETIME: Duration = Duration::days(7);
/// Longest order number a form accepts.
pub const ORDER_NUMBER_MAX: usize = 64;

/// What a customer wrote on the contact form.
#[derive(Debug, Clone, Default)]
pub struct ContactForm {
    pub name: Option<String>,
    pub email: String,
    pub subject: String,
    pub text: String,
    pub order_number: Option<String>,
    /// The page's language: a new customer's language.
    pub language: Option<String>,
}

/// A mail's subject and text, written by the caller in the customer's language.
#[derive(Debug, Clone)]
pub struct MailText {
    pub subject: String,
    pub body: String,
}

/// A portal conversation as its customer sees it: public messages only, with agents' names.
#[derive(Debug, Clone)]
pub struct PortalThread {
    pub conversation: Conversation,
    pub messages: Vec<(Message, Option<String>)>,
}

struct CleanForm {
    email: Identity,
    name: Option<String>,
    subject: String,
    text: String,
    order_number: Option<String>,
    language: Option<String>,
}

fn clean_form(form: &ContactForm) -> Result<CleanForm> {
    let email = Identity::parse(IdentityKind::Email, form.email.trim())?;
    let optional = |field: &'static str, value: Option<&str>, max: usize| {
        value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| bounded_text(field, v, max))
            .transpose()
    };
    Ok(CleanForm {
        email,
        name: optional("name", form.name.as_deref(), limits::NAME)?,
        subject: bounded_text("subject", &form.subject, limits::SUBJECT)?,
        text: bounded_text("text", &form.text, limits::MESSAGE_TEXT)?,
        order_number: optional(
            "order_number",
            form.order_number.as_deref(),
            ORDER_NUMBER_MAX,
        )?,
        language: form.language.clone(),
    })
}

impl App {
    /// A contact form submission becomes a conversation (channel form) for the customer the
    /// address belongs to: replies go to that address by email, so a stranger typing someone's
    /// address learns nothing. The customer gets an acknowledgement by email when the brand has
    /// a mailbox. `client` is who sent it (a network address), counted for the rate limit;
    /// `ack` writes the acknowledgement for the new conversation.
    pub async fn submit_contact_form(
        &self,
        brand: Option<BrandId>,
        form: &ContactForm,
        files: &[NewFile],
        client: &str,
        ack: impl FnOnce(ConversationId) -> MailText,
    ) -> Result<ConversationId> {
        let form = clean_form(form)?;
        let now = self.now();
        let client_hash = hash_secret(client);
        {
            let mut conn = self.store.conn().await?;
            let hour_ago = now - Duration::hours(1);
            if store::submissions_since(&mut conn, &client_hash, hour_ago).await? >= FORMS_PER_HOUR
            {
                return Err(AppError::RateLimited {
                    retry_after_secs: 3600,
                });
            }
        }
        let files = self.store_files(files).await?;
        let mut tx = self.store.begin().await?;
        if let Some(brand) = brand
            && !seva_store::staff::brand_exists(&mut tx, brand).await?
        {
            return Err(AppError::NotFound("brand"));
        }
        let input = CustomerInput {
            email: Some(form.email.value.clone()),
            name: form.name.clone(),
            language: form.language.clone(),
            ..CustomerInput::default()
        };
        let customer = find_or_create_customer(&mut tx, &input, Actor::SYSTEM, now).await?;
        let id = conversations::insert(
            &mut tx,
            &NewConversation {
                customer_id: customer,
                brand_id: brand,
                channel: Channel::Form,
                status: Status::Open,
                priority: Priority::Normal,
                subject: Some(&form.subject),
                assignee_id: None,
                team_id: None,
                at: now,
            },
        )
        .await?;
        let created = Change::ConversationCreated {
            channel: Channel::Form,
            subject: Some(form.subject.clone()),
        };
        let actor = Actor::customer(customer);
        events::record(&mut tx, Some(id), Some(customer), actor, &created, now).await?;
        let body = Body {
            text: &form.text,
            html: None,
            external_id: None,
        };
        let message = add_message_in(
            &mut tx,
            None,
            id,
            customer,
            MessageKind::Customer,
            &body,
            now,
        )
        .await?;
        for file in &files {
            let row = seva_store::attachments::NewAttachment {
                message_id: message,
                conversation_id: id,
                sha256: &file.sha256,
                filename: &file.filename,
                content_type: &file.content_type,
                size: file.size,
                at: now,
            };
            seva_store::attachments::insert(&mut tx, &row).await?;
        }
        let order = form.order_number.as_deref();
        store::insert_submission(&mut tx, message, id, order, &client_hash, now).await?;
        let since = now - Duration::hours(1);
        let recipient = form.email.value.as_str();
        if store::notices_since(&mut tx, recipient, "acknowledgement", since).await?
            < ACKNOWLEDGEMENTS_PER_HOUR
        {
            let text = ack(id);
            queue_notice(
                &mut tx,
                "acknowledgement",
                brand,
                Some(id),
                recipient,
                &text,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        self.publish(Notice::Changed(id));
        Ok(id)
    }

    /// The order numbers customers gave on the form in a conversation, by message.
    pub async fn form_order_numbers(
        &self,
        conversation: ConversationId,
    ) -> Result<Vec<(seva_domain::MessageId, String)>> {
        let mut conn = self.store.conn().await?;
        Ok(store::order_numbers(&mut conn, conversation).await?)
    }

    /// Sends a portal sign-in link to `email` when it is a customer's address. Unknown
    /// addresses, and addresses that asked too often, get nothing, and the caller cannot tell
    /// the difference. `mail` writes the mail around the link's token.
    pub async fn request_portal_link(
        &self,
        email: &str,
        mail: impl FnOnce(&str) -> MailText,
    ) -> Result<()> {
        let identity = Identity::parse(IdentityKind::Email, email.trim())?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let Some(customer) =
            seva_store::customers::find_by_identity(&mut tx, identity.kind, &identity.value)
                .await?
        else {
            return Ok(());
        };
        let since = now - Duration::minutes(15);
        if store::notices_since(&mut tx, &identity.value, "portal_link", since).await?
            >= LINKS_PER_QUARTER_HOUR
        {
            tracing::info!("portal sign-in link not sent: asked for too often");
            return Ok(());
        }
        let token = new_secret("pl_");
        store::insert_link(
            &mut tx,
            &hash_secret(&token),
            customer,
            now + LINK_LIFETIME,
            now,
        )
        .await?;
        let text = mail(&token);
        if !queue_notice(
            &mut tx,
            "portal_link",
            None,
            None,
            &identity.value,
            &text,
            now,
        )
        .await?
        {
            tracing::warn!("portal sign-in link not sent: no active mailbox to send it from");
            return Ok(());
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether a sign-in link can still be used (the page asks to confirm before using it, so
    /// a mail scanner opening the link does not spend it).
    pub async fn portal_link_usable(&self, token: &str) -> Result<bool> {
        let mut conn = self.store.conn().await?;
        Ok(store::link_usable(&mut conn, &hash_secret(token), self.now()).await?)
    }

    /// Spends a sign-in link (once) and starts a portal session; returns its token.
    pub async fn redeem_portal_link(&self, token: &str) -> Result<String> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let customer = store::redeem_link(&mut tx, &hash_secret(token), now)
            .await?
            .ok_or(AppError::PortalLinkInvalid)?;
        let session = new_secret("ps_");
        store::insert_portal_session(
            &mut tx,
            &hash_secret(&session),
            customer,
            now + PORTAL_SESSION_LIFETIME,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(session)
    }

    /// The customer a portal session belongs to, while it lasts.
    pub async fn portal_customer(&self, session: &str) -> Result<Option<CustomerId>> {
        if session.len() > 100 {
            return Ok(None);
        }
        let mut conn = self.store.conn().await?;
        Ok(store::portal_session(&mut conn, &hash_secret(session), self.now()).await?)
    }

    pub async fn portal_sign_out(&self, session: &str) -> Result<()> {
        let mut conn = self.store.conn().await?;
        Ok(store::delete_portal_session(&mut conn, &hash_secret(session)).await?)
    }

    /// A customer's conversations on every channel, newest activity first (the newest 100).
    pub async fn portal_conversations(&self, customer: CustomerId) -> Result<Vec<Conversation>> {
        let filter = ConversationFilter {
            customer: Some(customer),
            ..ConversationFilter::default()
        };
        let mut conn = self.store.conn().await?;
        Ok(conversations::list(&mut conn, &filter, None, 100).await?)
    }

    /// One of the customer's conversations. Another customer's looks exactly like one that
    /// does not exist.
    pub async fn portal_thread(
        &self,
        customer: CustomerId,
        id: ConversationId,
    ) -> Result<PortalThread> {
        let mut conn = self.store.conn().await?;
        let conversation = own_conversation(&mut conn, customer, id).await?;
        let messages = seva_store::chat::public_messages_after(&mut conn, id, 0).await?;
        let mut named = Vec::with_capacity(messages.len());
        for message in messages {
            let name = match message.author_user_id {
                Some(user) => Some(seva_store::staff::user(&mut conn, user).await?.name),
                None => None,
            };
            named.push((message, name));
        }
        Ok(PortalThread {
            conversation,
            messages: named,
        })
    }

    /// The customer answers in the portal: a customer message that reopens the conversation
    /// as an email would. A closed conversation is not reopened (the portal offers a new
    /// request instead).
    pub async fn portal_reply(
        &self,
        customer: CustomerId,
        id: ConversationId,
        text: &str,
    ) -> Result<Message> {
        let text = bounded_text("text", text, limits::MESSAGE_TEXT)?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let mut conversation = own_conversation(&mut tx, customer, id).await?;
        let to = conversation
            .status
            .after_customer_message()
            .map_err(|_| AppError::ConversationClosed)?;
        let body = Body {
            text: &text,
            html: None,
            external_id: None,
        };
        let message = add_message_in(
            &mut tx,
            None,
            id,
            customer,
            MessageKind::Customer,
            &body,
            now,
        )
        .await?;
        if to != conversation.status {
            let change = Change::StatusChanged {
                from: conversation.status,
                to,
            };
            events::record(
                &mut tx,
                Some(id),
                Some(customer),
                Actor::customer(customer),
                &change,
                now,
            )
            .await?;
            conversation.status = to;
        }
        conversation.updated_at = now;
        conversation.last_activity_at = conversation.last_activity_at.max(now);
        conversations::update(&mut tx, &conversation).await?;
        let message = conversations::get_message(&mut tx, message).await?;
        tx.commit().await?;
        self.publish(Notice::Changed(id));
        Ok(message)
    }
}

/// A customer's own conversation; anyone else's is "not found".
async fn own_conversation(
    conn: &mut seva_store::Conn,
    customer: CustomerId,
    id: ConversationId,
) -> Result<Conversation> {
    match conversations::find(conn, id).await {
        Ok(c) if c.customer_id == customer => Ok(c),
        Ok(_) | Err(seva_store::StoreError::NotFound) => Err(AppError::NotFound("conversation")),
        Err(e) => Err(e.into()),
    }
}

/// Queues a notice from the brand's mailbox (else any active one). Returns false when there is
/// no mailbox to send from.
pub(crate) async fn queue_notice(
    tx: &mut Tx,
    kind: &str,
    brand: Option<BrandId>,
    conversation: Option<ConversationId>,
    recipient: &str,
    text: &MailText,
    now: seva_domain::Timestamp,
) -> Result<bool> {
    let mut mailbox = seva_store::mail::mailbox_for_brand(tx, brand).await?;
    if mailbox.is_none() && brand.is_some() {
        mailbox = seva_store::mail::mailbox_for_brand(tx, None).await?;
    }
    let Some(mailbox) = mailbox else {
        return Ok(false);
    };
    let mail_message_id = crate::mail::new_mail_message_id(&mailbox, "notice");
    let subject: String = text
        .subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    store::insert_notice(
        tx,
        &NewNotice {
            kind,
            mailbox_id: mailbox.id,
            conversation_id: conversation,
            recipient,
            subject: &subject,
            body: &text.body,
            mail_message_id: &mail_message_id,
            at: now,
        },
    )
    .await?;
    Ok(true)
}

/// A claimed notice with the mailbox it leaves from.
#[derive(Debug, Clone)]
pub struct OutgoingNotice {
    pub notice: store::Notice,
    pub mailbox: seva_domain::mail::Mailbox,
    pub at: seva_domain::Timestamp,
}

impl App {
    /// Claims due notices for five minutes (as the outbox does for replies).
    pub async fn claim_notices(&self, limit: i64) -> Result<Vec<i64>> {
        let now = self.now();
        let mut conn = self.store.conn().await?;
        Ok(store::claim_notices(&mut conn, now, now + Duration::minutes(5), limit).await?)
    }

    pub async fn outgoing_notice(&self, id: i64) -> Result<OutgoingNotice> {
        let mut conn = self.store.conn().await?;
        let notice = store::notice(&mut conn, id)
            .await
            .map_err(crate::not_found("notice"))?;
        let mailbox = seva_store::mail::mailbox(&mut conn, notice.mailbox_id).await?;
        Ok(OutgoingNotice {
            at: notice.created_at,
            notice,
            mailbox,
        })
    }

    pub async fn notice_sent(&self, id: i64) -> Result<()> {
        let mut conn = self.store.conn().await?;
        Ok(store::notice_sent(&mut conn, id, self.now()).await?)
    }

    /// A failed try: retried on the replies' schedule, then given up. A sign-in link is only
    /// worth a few tries: it expires in half an hour.
    pub async fn notice_failed(&self, id: i64, error: &str) -> Result<()> {
        let error: String = error.chars().take(500).collect();
        let mut conn = self.store.conn().await?;
        let notice = store::notice(&mut conn, id).await?;
        let attempt = notice.attempts + 1;
        let last = if notice.kind == "portal_link" {
            3
        } else {
            seva_domain::mail::MAX_ATTEMPTS
        };
        let retry_at = seva_domain::mail::retry_delay(attempt)
            .filter(|_| attempt < last)
            .map(|delay| self.now() + delay);
        Ok(store::notice_failed(&mut conn, id, &error, retry_at).await?)
    }
}

impl App {
    /// A time stamp for a contact form page, signed with the server's form key: the form
    /// sends it back, and `form_token_age` tells how long the page was open.
    pub async fn form_token(&self) -> Result<String> {
        use hmac::Mac as _;
        let now = self.now().timestamp();
        let mac = self.form_mac(now).await?.finalize().into_bytes();
        Ok(format!("{now}.{}", hex::encode(mac)))
    }

    /// How long ago `token` was given out; `None` when it is not one of ours.
    pub async fn form_token_age(&self, token: &str) -> Result<Option<Duration>> {
        use hmac::Mac as _;
        let Some((secs, mac)) = token.split_once('.') else {
            return Ok(None);
        };
        let (Ok(secs), Ok(mac)) = (secs.parse::<i64>(), hex::decode(mac)) else {
            return Ok(None);
        };
        // Compared in constant time by the hmac crate.
        let ours = self.form_mac(secs).await?.verify_slice(&mac).is_ok();
        Ok(ours.then(|| Duration::seconds(self.now().timestamp() - secs)))
    }

    /// HMAC-SHA256 over `form:{secs}` with the server's form key (made once, shared).
    async fn form_mac(&self, secs: i64) -> Result<hmac::Hmac<sha2::Sha256>> {
        use hmac::Mac as _;
        let mut conn = self.store.conn().await?;
        let key = store::server_key(&mut conn, "form", &new_secret(""), self.now()).await?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
            .map_err(|_| seva_store::StoreError::Corrupt("the form key".into()))?;
        mac.update(format!("form:{secs}").as_bytes());
        Ok(mac)
    }
}
