//! Web chat: widgets admins configure, and visitors who chat through them. A visitor holds a
//! random token (the browser keeps it; only its hash is stored) and resumes with it; each
//! message a visitor sends carries the browser's own id, so a message re-sent after a lost
//! connection is stored once.

use seva_domain::chat::{Prechat, Widget, WidgetId, parse_color, parse_origin};
use seva_domain::values::{bounded_text, limits};
use seva_domain::{
    Actor, BrandId, Change, Channel, ConversationId, Identity, IdentityKind, Message, MessageKind,
    Priority, Role, Status, ValueError,
};
use seva_store::chat::{self as store, WidgetSettings};
use seva_store::conversations::{self as conversations, NewConversation};
use seva_store::{StoreError, customers, events};

use crate::conversations::{Body, Outcome, add_message_in};
use crate::customers::{CustomerInput, find_or_create_customer};
use crate::live::Notice;
use crate::secrets::{hash_secret, new_secret};
use crate::{App, AppError, Caller, Result, not_found};

/// Longest chat message a visitor may send, in characters.
pub const MAX_CHAT_TEXT: usize = 5_000;

/// What an admin sets on a widget.
#[derive(Debug, Clone)]
pub struct WidgetInput {
    pub name: String,
    pub brand_id: Option<BrandId>,
    pub allowed_origins: Vec<String>,
    /// `#rrggbb`; default Seva's blue.
    pub color: Option<String>,
    pub greeting: Option<String>,
    pub prechat: Prechat,
    /// Seconds before a visitor waiting for a first answer is offered email (30 to 3600;
    /// default 120).
    pub away_after: Option<u32>,
    pub active: bool,
}

/// A visitor's chat, open on one connection.
#[derive(Debug, Clone)]
pub struct ChatSession {
    /// Given to the browser, which resumes with it.
    pub token: String,
    token_hash: String,
    pub widget: Widget,
    pub conversation: Option<ConversationId>,
}

/// A shopper the shop's own site signed in: its server signed `id` with the widget's secret
/// (`hash` = hex HMAC-SHA256(secret, id)), so Seva may link the chat to that customer.
#[derive(Debug, Clone, Default)]
pub struct SignedIdentity {
    /// The shop platform's customer id.
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub hash: String,
}

impl SignedIdentity {
    /// Whether the shop's server made this signature with the widget's secret (compared in
    /// constant time).
    pub fn verify(&self, widget: &Widget) -> bool {
        use hmac::Mac as _;
        let Ok(expected) = hex::decode(self.hash.trim()) else {
            return false;
        };
        let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(widget.secret.as_bytes())
        else {
            return false;
        };
        mac.update(self.id.as_bytes());
        mac.verify_slice(&expected).is_ok()
    }
}

/// Who the visitor said they are before the first message (not verified).
#[derive(Debug, Clone, Default)]
pub struct VisitorDetails {
    pub name: Option<String>,
    pub email: Option<String>,
}

/// Default seconds before a visitor waiting for an answer is offered email.
pub const AWAY_AFTER_DEFAULT: u32 = 120;

fn away_after_of(input: &WidgetInput) -> Result<u32> {
    let secs = input.away_after.unwrap_or(AWAY_AFTER_DEFAULT);
    if (30..=3600).contains(&secs) {
        Ok(secs)
    } else {
        // Seconds from 30 to 3600.
        Err(ValueError::UnknownValue {
            field: "away_after (30 to 3600 seconds)",
            value: secs.to_string(),
        }
        .into())
    }
}

fn settings_of(input: &WidgetInput) -> Result<(String, Vec<String>, String, Option<String>)> {
    let name = bounded_text("name", input.name.trim(), limits::NAME)?;
    if name.is_empty() {
        return Err(ValueError::Empty { field: "name" }.into());
    }
    let mut origins = input
        .allowed_origins
        .iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| parse_origin(o))
        .collect::<Result<Vec<_>, _>>()?;
    origins.sort();
    origins.dedup();
    let color = parse_color(input.color.as_deref().unwrap_or("#1a73e8"))?;
    let greeting = input
        .greeting
        .as_deref()
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| bounded_text("greeting", g, 500))
        .transpose()?;
    Ok((name, origins, color, greeting))
}

impl App {
    pub async fn create_widget(&self, caller: &Caller, input: &WidgetInput) -> Result<Widget> {
        caller.require_role(Role::Admin)?;
        let (name, origins, color, greeting) = settings_of(input)?;
        let away_after = away_after_of(input)?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        if let Some(brand) = input.brand_id
            && !seva_store::staff::brand_exists(&mut tx, brand).await?
        {
            return Err(AppError::NotFound("brand"));
        }
        let public_key = new_secret("w_").chars().take(26).collect::<String>();
        let settings = WidgetSettings {
            name: &name,
            brand_id: input.brand_id,
            allowed_origins: &origins,
            color: &color,
            greeting: greeting.as_deref(),
            prechat: input.prechat,
            away_after,
            active: input.active,
        };
        let id =
            store::insert_widget(&mut tx, &public_key, &new_secret("whs_"), &settings, now).await?;
        let widget = store::widget(&mut tx, id).await?;
        tx.commit().await?;
        Ok(widget)
    }

    pub async fn update_widget(
        &self,
        caller: &Caller,
        id: WidgetId,
        input: &WidgetInput,
    ) -> Result<Widget> {
        caller.require_role(Role::Admin)?;
        let (name, origins, color, greeting) = settings_of(input)?;
        let away_after = away_after_of(input)?;
        let mut tx = self.store.begin().await?;
        if let Some(brand) = input.brand_id
            && !seva_store::staff::brand_exists(&mut tx, brand).await?
        {
            return Err(AppError::NotFound("brand"));
        }
        let settings = WidgetSettings {
            name: &name,
            brand_id: input.brand_id,
            allowed_origins: &origins,
            color: &color,
            greeting: greeting.as_deref(),
            prechat: input.prechat,
            away_after,
            active: input.active,
        };
        store::update_widget(&mut tx, id, &settings, self.now())
            .await
            .map_err(not_found("widget"))?;
        let widget = store::widget(&mut tx, id).await?;
        tx.commit().await?;
        Ok(widget)
    }

    pub async fn widgets(&self, caller: &Caller) -> Result<Vec<Widget>> {
        caller.require_role(Role::Admin)?;
        let mut conn = self.store.conn().await?;
        Ok(store::widgets(&mut conn).await?)
    }

    /// An active widget by its public key, for the page at `origin`. Unknown, disabled and
    /// not-allowed-here widgets look the same to the visitor: not found.
    pub async fn widget_for(&self, public_key: &str, origin: Option<&str>) -> Result<Widget> {
        let mut conn = self.store.conn().await?;
        let widget = store::widget_by_key(&mut conn, public_key)
            .await?
            .filter(|w| w.active && w.allows(origin))
            .ok_or(AppError::NotFound("widget"))?;
        Ok(widget)
    }

    /// Opens a visitor's chat: resumes the one `token` names (for this widget), else starts a
    /// new one with a new token. A signed identity (checked against the widget's secret; a bad
    /// signature is refused) links the chat to that shopper's customer; a chat that belongs to
    /// another customer is then not resumed.
    pub async fn open_chat(
        &self,
        widget: &Widget,
        token: Option<&str>,
        identity: Option<&SignedIdentity>,
    ) -> Result<ChatSession> {
        let now = self.now();
        let customer = match identity {
            Some(identity) if !identity.verify(widget) => return Err(AppError::IdentityUnverified),
            Some(identity) => Some(self.signed_customer(identity).await?),
            None => None,
        };
        let mut conn = self.store.conn().await?;
        if let Some(token) = token.filter(|t| t.len() <= 100) {
            let token_hash = hash_secret(token);
            if let Some(visitor) = store::visitor(&mut conn, &token_hash).await?
                && visitor.widget_id == widget.id
                && (customer.is_none() || visitor.customer_id == customer)
            {
                store::touch_visitor(&mut conn, &token_hash, now).await?;
                return Ok(ChatSession {
                    token: token.to_owned(),
                    token_hash,
                    widget: widget.clone(),
                    conversation: visitor.conversation_id,
                });
            }
        }
        let token = new_secret("cv_");
        let token_hash = hash_secret(&token);
        store::insert_visitor(&mut conn, &token_hash, widget.id, customer, now).await?;
        Ok(ChatSession {
            token,
            token_hash,
            widget: widget.clone(),
            conversation: None,
        })
    }

    /// The customer a signed shopper is: found by the shop's id (or their email), else created
    /// with both.
    async fn signed_customer(&self, identity: &SignedIdentity) -> Result<seva_domain::CustomerId> {
        let input = CustomerInput {
            external_id: Some(identity.id.clone()),
            email: identity.email.clone().filter(|e| !e.trim().is_empty()),
            name: identity.name.clone().filter(|n| !n.trim().is_empty()),
            ..CustomerInput::default()
        };
        let mut tx = self.store.begin().await?;
        let customer = find_or_create_customer(&mut tx, &input, Actor::SYSTEM, self.now()).await?;
        tx.commit().await?;
        Ok(customer)
    }

    /// A visitor's message. The first one opens a conversation (channel chat, the widget's
    /// brand) for a new customer; `client_id` is the browser's id for the message, so sending
    /// it again (after a lost connection) stores it once.
    pub async fn chat_send(
        &self,
        session: &mut ChatSession,
        client_id: &str,
        text: &str,
        prechat: &VisitorDetails,
    ) -> Result<(Message, Outcome)> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ValueError::Empty { field: "text" }.into());
        }
        let text = bounded_text("text", text, MAX_CHAT_TEXT)?;
        let client_id = bounded_text("client_id", client_id.trim(), 64)?;
        if client_id.is_empty() {
            return Err(ValueError::Empty { field: "client_id" }.into());
        }
        let external_id = format!("chat:{}:{client_id}", &session.token_hash[..24]);
        let done = match self
            .try_chat_send(session, &external_id, &text, prechat)
            .await
        {
            Err(AppError::Store(StoreError::Conflict { .. })) => {
                self.try_chat_send(session, &external_id, &text, prechat)
                    .await
            }
            other => other,
        }?;
        if done.1 == Outcome::Created {
            self.publish(Notice::Changed(done.0.conversation_id));
        }
        session.conversation = Some(done.0.conversation_id);
        Ok(done)
    }

    async fn try_chat_send(
        &self,
        session: &ChatSession,
        external_id: &str,
        text: &str,
        prechat: &VisitorDetails,
    ) -> Result<(Message, Outcome)> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        if let Some(existing) =
            conversations::find_message_by_external_id(&mut tx, external_id).await?
        {
            return Ok((existing, Outcome::Existing));
        }
        let visitor = store::visitor(&mut tx, &session.token_hash)
            .await?
            .ok_or(AppError::NotFound("chat"))?;
        let open = match visitor.conversation_id {
            Some(id) => {
                Some(conversations::get(&mut tx, id).await?).filter(|c| c.status != Status::Closed)
            }
            None => None,
        };
        let (mut conversation, customer) = if let Some(c) = open {
            let customer = c.customer_id;
            (c, customer)
        } else {
            let customer = match visitor.customer_id {
                Some(customer) => customer,
                None => new_visitor_customer(&mut tx, &session.token_hash, prechat, now).await?,
            };
            let id = conversations::insert(
                &mut tx,
                &NewConversation {
                    customer_id: customer,
                    brand_id: session.widget.brand_id,
                    channel: Channel::Chat,
                    status: Status::Open,
                    priority: Priority::Normal,
                    subject: None,
                    assignee_id: None,
                    team_id: None,
                    at: now,
                },
            )
            .await?;
            let created = Change::ConversationCreated {
                channel: Channel::Chat,
                subject: None,
            };
            let actor = Actor::customer(customer);
            events::record(&mut tx, Some(id), Some(customer), actor, &created, now).await?;
            store::attach_visitor(&mut tx, &session.token_hash, customer, id).await?;
            (conversations::get(&mut tx, id).await?, customer)
        };
        let body = Body {
            text,
            html: None,
            external_id: Some(external_id),
        };
        let message = add_message_in(
            &mut tx,
            None,
            conversation.id,
            customer,
            MessageKind::Customer,
            &body,
            now,
        )
        .await?;
        let to = conversation
            .status
            .after_customer_message()
            .map_err(|_| AppError::ConversationClosed)?;
        if to != conversation.status {
            let change = Change::StatusChanged {
                from: conversation.status,
                to,
            };
            let actor = Actor::customer(customer);
            events::record(
                &mut tx,
                Some(conversation.id),
                Some(customer),
                actor,
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
        Ok((message, Outcome::Created))
    }

    /// Records that the visitor's browser was given messages up to `message`: an agent's reply
    /// it was given is not emailed.
    pub async fn chat_delivered(&self, session: &ChatSession, message: i64) -> Result<()> {
        let mut conn = self.store.conn().await?;
        Ok(store::mark_delivered(&mut conn, &session.token_hash, message).await?)
    }

    /// The visitor leaves an email address to be answered at (the widget offers it when nobody
    /// answered in time). As with the pre-chat email, an address that already belongs to
    /// someone is not added: an unsigned claim never joins a known customer's history.
    /// Returns whether replies can now reach the visitor by email.
    pub async fn chat_leave_email(&self, session: &ChatSession, email: &str) -> Result<bool> {
        let identity = Identity::parse(IdentityKind::Email, email.trim())?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let visitor = store::visitor(&mut tx, &session.token_hash)
            .await?
            .ok_or(AppError::NotFound("chat"))?;
        let Some(customer) = visitor.customer_id else {
            return Ok(false);
        };
        match customers::find_by_identity(&mut tx, identity.kind, &identity.value).await? {
            Some(owner) => return Ok(owner == customer),
            None => {
                customers::add_identity(&mut tx, customer, &identity, now).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The chat's public messages after message `after` (0: all), for a visitor (re)connecting.
    pub async fn chat_messages_after(
        &self,
        session: &ChatSession,
        after: i64,
    ) -> Result<Vec<Message>> {
        let Some(conversation) = session.conversation else {
            return Ok(Vec::new());
        };
        let mut conn = self.store.conn().await?;
        Ok(store::public_messages_after(&mut conn, conversation, after).await?)
    }
}

/// A customer for a visitor: known by the visitor's token, named as they said. An email they
/// typed is added only when it belongs to nobody yet: an unsigned claim never joins a known
/// customer's history.
async fn new_visitor_customer(
    tx: &mut seva_store::Tx,
    token_hash: &str,
    prechat: &VisitorDetails,
    now: seva_domain::Timestamp,
) -> Result<seva_domain::CustomerId> {
    let input = CustomerInput {
        external_id: Some(format!("chat-visitor:{}", &token_hash[..32])),
        name: prechat.name.clone().filter(|n| !n.trim().is_empty()),
        ..CustomerInput::default()
    };
    let customer = find_or_create_customer(tx, &input, Actor::SYSTEM, now).await?;
    if let Some(email) = prechat.email.as_deref().filter(|e| !e.trim().is_empty()) {
        let identity = Identity::parse(IdentityKind::Email, email)?;
        if customers::find_by_identity(tx, identity.kind, &identity.value)
            .await?
            .is_none()
        {
            customers::add_identity(tx, customer, &identity, now).await?;
        }
    }
    Ok(customer)
}
