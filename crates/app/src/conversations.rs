//! Conversations: open one with the customer's first message, add messages, change status,
//! priority, assignment, team and tags. Every change is one transaction with its events.

use seva_domain::values::{bounded_text, limits, parse_tag};
use seva_domain::{
    Actor, AuthorKind, BrandId, Change, Channel, Conversation, ConversationId, CustomerId, Event,
    Identity, IdentityKind, Message, MessageKind, Priority, Status, TeamId, Timestamp, UserId,
};
use seva_store::conversations::{
    self as store, ConversationCursor, ConversationFilter, NewConversation, NewMessage,
};
use seva_store::idempotency::{self, IdempotencyRecord};
use seva_store::{Conn, StoreError, Tx, customers, events, staff};

use crate::attachments::{NewFile, StoredFile};
use crate::customers::{CustomerInput, find_customer, find_or_create_customer};
use crate::live::Notice;
use crate::{App, AppError, Caller, IdempotencyKey, Result, not_found};

#[derive(Debug, Clone)]
pub struct MessageInput {
    pub kind: MessageKind,
    pub text: String,
    pub html: Option<String>,
    pub external_id: Option<String>,
    /// The original time, when importing history (admins only).
    pub created_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct NewConversationInput {
    pub customer: CustomerInput,
    pub channel: Channel,
    pub subject: Option<String>,
    pub brand_id: Option<BrandId>,
    pub team_id: Option<TeamId>,
    pub assignee_id: Option<UserId>,
    pub priority: Option<Priority>,
    pub status: Option<Status>,
    pub tags: Vec<String>,
    pub message: MessageInput,
}

/// What a create call did: made something new, or found what an earlier identical call made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Existing,
}

/// A change to a conversation; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ConversationPatch {
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    /// `Some(None)` unassigns.
    pub assignee_id: Option<Option<UserId>>,
    pub team_id: Option<Option<TeamId>>,
    pub brand_id: Option<Option<BrandId>>,
    /// Replaces the whole set.
    pub tags: Option<Vec<String>>,
    /// Adds these to the set as it is when the change is applied (inside the transaction, so
    /// concurrent tag changes are not lost). Ignored when `tags` is given.
    pub add_tags: Vec<String>,
    pub subject: Option<Option<String>>,
    /// The original time of the change, when importing history (admins only).
    pub at: Option<Timestamp>,
}

const RESOURCE_CONVERSATION: &str = "conversation";
const RESOURCE_MESSAGE: &str = "message";

/// Validates a message and sanitises its HTML: scripts, event handlers, styles that can hide
/// content and unknown tags are removed before anything is stored.
fn validate_message(input: &MessageInput) -> Result<(String, Option<String>, Option<String>)> {
    let text = bounded_text("text", &input.text, limits::MESSAGE_TEXT)?;
    let external_id = input
        .external_id
        .as_deref()
        .map(|id| bounded_text("external_id", id, limits::EXTERNAL_ID))
        .transpose()?;
    if let Some(html) = &input.html
        && html.chars().count() > limits::MESSAGE_TEXT * 2
    {
        return Err(seva_domain::ValueError::TooLong {
            field: "html",
            max: limits::MESSAGE_TEXT * 2,
        }
        .into());
    }
    let html = input
        .html
        .as_deref()
        .map(ammonia::clean)
        .filter(|h| !h.trim().is_empty());
    Ok((text, external_id, html))
}

fn validate_tags(tags: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = tags
        .iter()
        .map(|t| parse_tag(t))
        .collect::<Result<_, _>>()?;
    out.sort();
    out.dedup();
    if out.len() > limits::TAGS_PER_CONVERSATION {
        return Err(seva_domain::ValueError::TooLong {
            field: "tags",
            max: limits::TAGS_PER_CONVERSATION,
        }
        .into());
    }
    Ok(out)
}

fn validate_subject(subject: Option<&str>) -> Result<Option<String>> {
    Ok(subject
        .filter(|s| !s.trim().is_empty())
        .map(|s| bounded_text("subject", s, limits::SUBJECT))
        .transpose()?)
}

/// Checks an idempotency key inside the transaction: the id created by an earlier identical
/// request, or an error when the key came with a different request.
async fn replayed(
    conn: &mut Conn,
    caller: &Caller,
    key: Option<&IdempotencyKey>,
    kind: &str,
) -> Result<Option<i64>> {
    let Some(key) = key else { return Ok(None) };
    match idempotency::find(conn, caller.user.id, &key.key).await? {
        Some(record) if record.request_hash == key.request_hash && record.resource_kind == kind => {
            Ok(Some(record.resource_id))
        }
        Some(_) => Err(AppError::IdempotencyKeyReused),
        None => Ok(None),
    }
}

async fn remember(
    conn: &mut Conn,
    caller: &Caller,
    key: Option<&IdempotencyKey>,
    kind: &str,
    id: i64,
    now: Timestamp,
) -> Result<()> {
    if let Some(key) = key {
        let record = IdempotencyRecord {
            request_hash: key.request_hash.clone(),
            resource_kind: kind.to_owned(),
            resource_id: id,
        };
        idempotency::insert(conn, caller.user.id, &key.key, &record, now).await?;
    }
    Ok(())
}

/// The conversation a retried delivery of the same first message already created. Another
/// customer's message with this external id is a collision, not a retry.
async fn delivered_before(
    conn: &mut Conn,
    input: &NewConversationInput,
    external_id: Option<&str>,
) -> Result<Option<Conversation>> {
    let Some(external_id) = external_id else {
        return Ok(None);
    };
    let Some(message) = store::find_message_by_external_id(conn, external_id).await? else {
        return Ok(None);
    };
    let conversation = store::find(conn, message.conversation_id).await?;
    if find_customer(conn, &input.customer).await? != Some(conversation.customer_id) {
        return Err(AppError::ExternalIdTaken);
    }
    Ok(Some(conversation))
}

async fn check_refs(
    conn: &mut Conn,
    brand: Option<BrandId>,
    team: Option<TeamId>,
    assignee: Option<UserId>,
) -> Result<()> {
    if let Some(brand) = brand
        && !staff::brand_exists(conn, brand).await?
    {
        return Err(AppError::NotFound("brand"));
    }
    if let Some(team) = team
        && !staff::team_exists(conn, team).await?
    {
        return Err(AppError::NotFound("team"));
    }
    if let Some(assignee) = assignee {
        let user = staff::user(conn, assignee)
            .await
            .map_err(not_found("assignee"))?;
        if !user.active || !user.role.can_write() {
            return Err(AppError::NotFound("assignee"));
        }
    }
    Ok(())
}

/// What an earlier identical request created: by its Idempotency-Key, or by the message's
/// external id (remembering the key for next time).
async fn earlier(
    tx: &mut Tx,
    caller: &Caller,
    key: Option<&IdempotencyKey>,
    input: &NewConversationInput,
    external_id: Option<&str>,
    now: Timestamp,
) -> Result<Option<Conversation>> {
    if let Some(id) = replayed(tx, caller, key, RESOURCE_CONVERSATION).await? {
        return Ok(Some(store::find(tx, ConversationId(id)).await?));
    }
    if let Some(conversation) = delivered_before(tx, input, external_id).await? {
        remember(
            tx,
            caller,
            key,
            RESOURCE_CONVERSATION,
            conversation.id.0,
            now,
        )
        .await?;
        return Ok(Some(conversation));
    }
    Ok(None)
}

impl App {
    /// Opens a conversation with its first message, finding or creating the customer.
    /// Idempotent by `Idempotency-Key` and by the message's external id.
    pub async fn create_conversation(
        &self,
        caller: &Caller,
        input: &NewConversationInput,
        key: Option<&IdempotencyKey>,
    ) -> Result<(Conversation, Outcome)> {
        caller.require_write()?;
        caller.allow_backdating(input.message.created_at)?;
        // A concurrent request creating the same customer or using the same key can make this
        // transaction fail on a unique rule; the retry then finds what the other one wrote.
        let done = match self.try_create_conversation(caller, input, key).await {
            Err(AppError::Store(StoreError::Conflict { .. })) => {
                self.try_create_conversation(caller, input, key).await
            }
            other => other,
        }?;
        if done.1 == Outcome::Created {
            self.publish(Notice::Changed(done.0.id));
        }
        Ok(done)
    }

    async fn try_create_conversation(
        &self,
        caller: &Caller,
        input: &NewConversationInput,
        key: Option<&IdempotencyKey>,
    ) -> Result<(Conversation, Outcome)> {
        let (text, external_id, html) = validate_message(&input.message)?;
        let subject = validate_subject(input.subject.as_deref())?;
        let tags = validate_tags(&input.tags)?;
        let now = self.now();
        let at = input.message.created_at.unwrap_or(now);

        let mut tx = self.store.begin().await?;
        if let Some(found) =
            earlier(&mut tx, caller, key, input, external_id.as_deref(), now).await?
        {
            tx.commit().await?;
            return Ok((found, Outcome::Existing));
        }
        check_refs(&mut tx, input.brand_id, input.team_id, input.assignee_id).await?;
        let actor = Actor::user(caller.user.id);
        let customer_id = find_or_create_customer(&mut tx, &input.customer, actor, at).await?;
        let status = input.status.unwrap_or(Status::Open);
        let priority = input.priority.unwrap_or(Priority::Normal);
        let id = store::insert(
            &mut tx,
            &NewConversation {
                customer_id,
                brand_id: input.brand_id,
                channel: input.channel,
                status,
                priority,
                subject: subject.as_deref(),
                assignee_id: input.assignee_id,
                team_id: input.team_id,
                at,
            },
        )
        .await?;
        store::add_tags(&mut tx, id, &tags).await?;
        let mut opening = vec![Change::ConversationCreated {
            channel: input.channel,
            subject: subject.clone(),
        }];
        if let Some(assignee) = input.assignee_id {
            opening.push(Change::Assigned {
                from: None,
                to: Some(assignee),
            });
        }
        for change in &opening {
            events::record(&mut tx, Some(id), Some(customer_id), actor, change, at).await?;
        }
        let body = Body {
            text: &text,
            html: html.as_deref(),
            external_id: external_id.as_deref(),
        };
        let message_id = add_message_in(
            &mut tx,
            Some(caller.user.id),
            id,
            customer_id,
            input.message.kind,
            &body,
            at,
        )
        .await?;
        if status != Status::Open {
            let change = Change::StatusChanged {
                from: Status::Open,
                to: status,
            };
            events::record(&mut tx, Some(id), Some(customer_id), actor, &change, at).await?;
        }
        // Exactly what was written; reading it back would cost two more queries per intake.
        let conversation = Conversation {
            id,
            customer_id,
            brand_id: input.brand_id,
            channel: input.channel,
            status,
            priority,
            subject,
            assignee_id: input.assignee_id,
            team_id: input.team_id,
            tags,
            created_at: at,
            updated_at: at,
            last_activity_at: at,
        };
        // An agent starting an email conversation writes to the customer by email.
        if input.message.kind == MessageKind::Reply
            && input.channel == Channel::Email
            && input.message.created_at.is_none()
        {
            crate::mail::queue_reply(&mut tx, &conversation, message_id, now).await?;
        }
        remember(&mut tx, caller, key, RESOURCE_CONVERSATION, id.0, now).await?;
        tx.commit().await?;
        Ok((conversation, Outcome::Created))
    }

    /// Adds a customer message, public reply or internal note. A customer message reopens a
    /// resolved or pending conversation. Idempotent by key and by external id.
    pub async fn add_message(
        &self,
        caller: &Caller,
        conversation_id: ConversationId,
        input: &MessageInput,
        key: Option<&IdempotencyKey>,
    ) -> Result<(Message, Outcome)> {
        self.add_message_with_files(caller, conversation_id, input, &[], key)
            .await
    }

    /// [`App::add_message`] with attached files, written to the blob store first.
    pub async fn add_message_with_files(
        &self,
        caller: &Caller,
        conversation_id: ConversationId,
        input: &MessageInput,
        files: &[NewFile],
        key: Option<&IdempotencyKey>,
    ) -> Result<(Message, Outcome)> {
        caller.require_write()?;
        caller.allow_backdating(input.created_at)?;
        // Refuse a bad message before its files are written, not after.
        if !files.is_empty() {
            validate_message(input)?;
        }
        let files = self.store_files(files).await?;
        // A concurrent retry with the same key or external id loses the race on a unique rule;
        // the second try then finds what the first one stored.
        let done = match self
            .try_add_message(caller, conversation_id, input, &files, key)
            .await
        {
            Err(AppError::Store(StoreError::Conflict { .. })) => {
                self.try_add_message(caller, conversation_id, input, &files, key)
                    .await
            }
            other => other,
        }?;
        if done.1 == Outcome::Created {
            self.publish(Notice::Changed(conversation_id));
        }
        Ok(done)
    }

    async fn try_add_message(
        &self,
        caller: &Caller,
        conversation_id: ConversationId,
        input: &MessageInput,
        files: &[StoredFile],
        key: Option<&IdempotencyKey>,
    ) -> Result<(Message, Outcome)> {
        let (text, external_id, html) = validate_message(input)?;
        let now = self.now();
        let at = input.created_at.unwrap_or(now);

        let mut tx = self.store.begin().await?;
        if let Some(id) = replayed(&mut tx, caller, key, RESOURCE_MESSAGE).await? {
            let message = store::get_message(&mut tx, seva_domain::MessageId(id)).await?;
            return Ok((message, Outcome::Existing));
        }
        if let Some(external_id) = &external_id
            && let Some(message) = store::find_message_by_external_id(&mut tx, external_id).await?
        {
            if message.conversation_id != conversation_id {
                return Err(AppError::ExternalIdTaken);
            }
            remember(&mut tx, caller, key, RESOURCE_MESSAGE, message.id.0, now).await?;
            tx.commit().await?;
            return Ok((message, Outcome::Existing));
        }
        let mut conversation = store::get(&mut tx, conversation_id)
            .await
            .map_err(not_found("conversation"))?;
        let customer_id = conversation.customer_id;
        let message_id = {
            let body = Body {
                text: &text,
                html: html.as_deref(),
                external_id: external_id.as_deref(),
            };
            add_message_in(
                &mut tx,
                Some(caller.user.id),
                conversation_id,
                customer_id,
                input.kind,
                &body,
                at,
            )
            .await?
        };
        for file in files {
            let row = seva_store::attachments::NewAttachment {
                message_id,
                conversation_id,
                sha256: &file.sha256,
                filename: &file.filename,
                content_type: &file.content_type,
                size: file.size,
                at,
            };
            seva_store::attachments::insert(&mut tx, &row).await?;
        }
        // A reply leaves by email when the conversation's channel answers by email (email, the
        // contact form, the portal; a chat only if the visitor does not see it in time), queued
        // in this transaction so it is sent exactly when the reply exists. Imported history (an
        // original time) is not sent.
        if input.kind == MessageKind::Reply && input.created_at.is_none() {
            crate::mail::queue_reply(&mut tx, &conversation, message_id, now).await?;
        }
        if input.kind == MessageKind::Customer {
            let to = conversation
                .status
                .after_customer_message()
                .map_err(|_| AppError::ConversationClosed)?;
            if to != conversation.status {
                let change = Change::StatusChanged {
                    from: conversation.status,
                    to,
                };
                events::record(
                    &mut tx,
                    Some(conversation_id),
                    Some(customer_id),
                    Actor::customer(customer_id),
                    &change,
                    at,
                )
                .await?;
                conversation.status = to;
            }
        }
        conversation.updated_at = now.max(at);
        conversation.last_activity_at = conversation.last_activity_at.max(at);
        store::update(&mut tx, &conversation).await?;
        remember(&mut tx, caller, key, RESOURCE_MESSAGE, message_id.0, now).await?;
        let message = store::get_message(&mut tx, message_id).await?;
        tx.commit().await?;
        Ok((message, Outcome::Created))
    }

    /// Applies a patch; records one event per field that actually changed.
    pub async fn update_conversation(
        &self,
        caller: &Caller,
        id: ConversationId,
        patch: &ConversationPatch,
    ) -> Result<Conversation> {
        caller.require_write()?;
        caller.allow_backdating(patch.at)?;
        let tags = patch.tags.as_deref().map(validate_tags).transpose()?;
        let subject = patch
            .subject
            .as_ref()
            .map(|s| validate_subject(s.as_deref()))
            .transpose()?;
        let now = self.now();
        let at = patch.at.unwrap_or(now);
        let actor = Actor::user(caller.user.id);

        let mut tx = self.store.begin().await?;
        let mut c = store::get(&mut tx, id)
            .await
            .map_err(not_found("conversation"))?;
        check_refs(
            &mut tx,
            patch.brand_id.flatten(),
            patch.team_id.flatten(),
            patch.assignee_id.flatten(),
        )
        .await?;
        let tags = match tags {
            None if !patch.add_tags.is_empty() => Some(validate_tags(
                &[c.tags.clone(), patch.add_tags.clone()].concat(),
            )?),
            tags => tags,
        };
        let validated = ConversationPatch {
            tags,
            subject,
            ..patch.clone()
        };
        let changes = apply_patch(&mut c, validated)?;
        if changes
            .iter()
            .any(|change| matches!(change, Change::TagsChanged { .. }))
        {
            store::set_tags(&mut tx, id, &c.tags).await?;
        }
        if changes
            .iter()
            .any(|change| matches!(change, Change::SubjectChanged { .. }))
        {
            seva_store::search::index_subject(&mut tx, id, c.subject.as_deref()).await?;
        }
        if changes.is_empty() {
            return Ok(c);
        }
        for change in &changes {
            events::record(&mut tx, Some(id), Some(c.customer_id), actor, change, at).await?;
        }
        c.updated_at = now.max(at);
        c.last_activity_at = c.last_activity_at.max(at);
        store::update(&mut tx, &c).await?;
        // A resolution now asks the customer; an imported one from the past does not.
        let recent = now - at < chrono::Duration::hours(1);
        if recent
            && changes.iter().any(|change| {
                matches!(change, Change::StatusChanged { from, to }
                    if from.is_unresolved() && !to.is_unresolved())
            })
        {
            self.ask_on_resolution(&mut tx, &c).await?;
        }
        tx.commit().await?;
        self.publish(Notice::Changed(id));
        Ok(c)
    }

    pub async fn conversation(&self, id: ConversationId) -> Result<Conversation> {
        let mut conn = self.store.conn().await?;
        store::find(&mut conn, id)
            .await
            .map_err(not_found("conversation"))
    }

    pub async fn list_conversations(
        &self,
        filter: &ConversationFilter,
        cursor: Option<ConversationCursor>,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        let mut conn = self.store.conn().await?;
        Ok(store::list(&mut conn, filter, cursor, limit).await?)
    }

    /// Conversations matching every word of `query` in a subject or message, best first, each
    /// with a highlighted snippet. Blank queries find nothing.
    pub async fn search(
        &self,
        query: &str,
        limit: u32,
    ) -> Result<Vec<(Conversation, seva_store::search::Hit)>> {
        if query.chars().count() > 200 {
            return Err(seva_domain::ValueError::TooLong {
                field: "q",
                max: 200,
            }
            .into());
        }
        let mut conn = self.store.conn().await?;
        let hits = seva_store::search::search(&mut conn, query, limit).await?;
        let ids: Vec<ConversationId> = hits.iter().map(|h| h.conversation_id).collect();
        let conversations = store::find_many(&mut conn, &ids).await?;
        Ok(conversations.into_iter().zip(hits).collect())
    }

    pub async fn messages(&self, id: ConversationId) -> Result<Vec<Message>> {
        let mut conn = self.store.conn().await?;
        store::find(&mut conn, id)
            .await
            .map_err(not_found("conversation"))?;
        Ok(store::messages(&mut conn, id).await?)
    }

    pub async fn conversation_events(&self, id: ConversationId) -> Result<Vec<Event>> {
        let mut conn = self.store.conn().await?;
        store::find(&mut conn, id)
            .await
            .map_err(not_found("conversation"))?;
        Ok(events::for_conversation(&mut conn, id).await?)
    }
}

/// Applies a patch to a conversation in memory and returns one change per field that actually
/// changed, in a fixed order. Refuses moves out of a closed conversation.
/// `patch` has its tags and subject already validated.
fn apply_patch(c: &mut Conversation, patch: ConversationPatch) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    if let Some(to) = patch.status
        && to != c.status
    {
        c.status.transition(to)?;
        changes.push(Change::StatusChanged { from: c.status, to });
        c.status = to;
    }
    if let Some((from, to)) = replace(&mut c.priority, patch.priority) {
        changes.push(Change::PriorityChanged { from, to });
    }
    if let Some((from, to)) = replace(&mut c.assignee_id, patch.assignee_id) {
        changes.push(Change::Assigned { from, to });
    }
    if let Some((from, to)) = replace(&mut c.team_id, patch.team_id) {
        changes.push(Change::TeamChanged { from, to });
    }
    if let Some((from, to)) = replace(&mut c.brand_id, patch.brand_id) {
        changes.push(Change::BrandChanged { from, to });
    }
    if let Some(to) = patch.subject
        && to != c.subject
    {
        changes.push(Change::SubjectChanged {
            from: c.subject.clone(),
            to: to.clone(),
        });
        c.subject = to;
    }
    if let Some(tags) = patch.tags
        && tags != c.tags
    {
        let added = tags
            .iter()
            .filter(|t| !c.tags.contains(t))
            .cloned()
            .collect();
        let removed = c
            .tags
            .iter()
            .filter(|t| !tags.contains(t))
            .cloned()
            .collect();
        changes.push(Change::TagsChanged { added, removed });
        c.tags = tags;
    }
    Ok(changes)
}

/// Sets `field` to `to` when given and different, returning the old and new values.
fn replace<T: Copy + PartialEq>(field: &mut T, to: Option<T>) -> Option<(T, T)> {
    let to = to.filter(|to| to != field)?;
    Some((std::mem::replace(field, to), to))
}

/// Stores one message and its event. The author follows from the kind: the customer for
/// inbound messages, the calling agent for replies and notes.
pub(crate) struct Body<'a> {
    pub text: &'a str,
    pub html: Option<&'a str>,
    pub external_id: Option<&'a str>,
}

pub(crate) async fn add_message_in(
    tx: &mut Tx,
    agent: Option<UserId>,
    conversation: ConversationId,
    customer: CustomerId,
    kind: MessageKind,
    body: &Body<'_>,
    at: Timestamp,
) -> Result<seva_domain::MessageId> {
    let (author_kind, author_user_id, actor) = match kind {
        MessageKind::Customer => (AuthorKind::Customer, None, Actor::customer(customer)),
        MessageKind::Reply | MessageKind::Note => {
            let agent = agent.ok_or(AppError::Forbidden)?;
            (AuthorKind::Agent, Some(agent), Actor::user(agent))
        }
    };
    let id = store::insert_message(
        tx,
        &NewMessage {
            conversation_id: conversation,
            kind,
            author_kind,
            author_user_id,
            text: body.text,
            html: body.html,
            external_id: body.external_id,
            at,
        },
    )
    .await?;
    let change = Change::MessageAdded {
        message_id: id,
        kind,
    };
    events::record(tx, Some(conversation), Some(customer), actor, &change, at).await?;
    Ok(id)
}

/// Finds the customer an identity points to, for lookups by email or phone.
pub async fn customer_by_identity(
    app: &App,
    kind: IdentityKind,
    value: &str,
) -> Result<Option<CustomerId>> {
    let identity = Identity::parse(kind, value)?;
    let mut conn = app.store.conn().await?;
    Ok(customers::find_by_identity(&mut conn, identity.kind, &identity.value).await?)
}
