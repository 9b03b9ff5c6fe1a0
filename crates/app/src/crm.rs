//! The CRM use cases: the customer's whole picture (profile, spend, timeline), tags and notes,
//! duplicates and merging, orders linked to conversations, returns/exchanges/refund requests,
//! the product catalogue, and access and erasure requests.

use seva_domain::commerce::{
    Currency, Order, OrderId, OrderRequest, OrderRequestId, Product, RequestItem, RequestKind,
    RequestStatus, check_request,
};
use seva_domain::customer::validate_attributes;
use seva_domain::values::{bounded_text, parse_tag};
use seva_domain::{Actor, Change, ConversationId, Customer, CustomerId, Event, Role};
use seva_store::commerce::{self as orders, NewRequest, Spend};
use seva_store::conversations::ConversationFilter;
use seva_store::crm::{self, Note, Suggestion};
use seva_store::customers::{self as customers, CustomerUpdate};
use seva_store::{StoreError, events, privacy};

use crate::{App, AppError, Caller, Result, not_found};

/// Everything the customer page shows, read at once.
#[derive(Debug, Clone)]
pub struct Profile {
    pub customer: Customer,
    pub tags: Vec<String>,
    pub notes: Vec<Note>,
    pub spend: Vec<Spend>,
    pub orders: Vec<Order>,
    pub requests: Vec<OrderRequest>,
    pub conversations: Vec<seva_domain::Conversation>,
    /// The customer's own history (identities, orders recorded, merges, notes...), newest first.
    pub events: Vec<Event>,
    pub duplicates: Vec<(Customer, Vec<String>)>,
}

/// How many of each the profile reads; the page links to the full lists.
const PROFILE_ORDERS: i64 = 50;
const PROFILE_CONVERSATIONS: u32 = 50;

impl App {
    pub async fn customer_profile(&self, _caller: &Caller, id: CustomerId) -> Result<Profile> {
        let mut conn = self.store.conn().await?;
        let customer = customers::get(&mut conn, id)
            .await
            .map_err(not_found("customer"))?;
        let mut events = events::for_customer(&mut conn, id).await?;
        events.reverse();
        let duplicates = duplicates_with_customers(&mut conn, id).await?;
        let filter = ConversationFilter {
            customer: Some(id),
            ..ConversationFilter::default()
        };
        Ok(Profile {
            tags: crm::tags_of(&mut conn, id).await?,
            notes: crm::notes_of(&mut conn, id).await?,
            spend: orders::spend_of_customer(&mut conn, id).await?,
            orders: orders::of_customer(&mut conn, id, PROFILE_ORDERS).await?,
            requests: orders::requests_of_customer(&mut conn, id).await?,
            conversations: seva_store::conversations::list(
                &mut conn,
                &filter,
                None,
                PROFILE_CONVERSATIONS,
            )
            .await?,
            events,
            duplicates,
            customer,
        })
    }

    /// Adds and removes the customer's tags; returns the tags it has now.
    pub async fn change_customer_tags(
        &self,
        caller: &Caller,
        id: CustomerId,
        add: &[String],
        remove: &[String],
    ) -> Result<Vec<String>> {
        caller.require_write()?;
        let add = add
            .iter()
            .map(|t| parse_tag(t))
            .collect::<Result<Vec<_>, _>>()?;
        let remove = remove
            .iter()
            .map(|t| parse_tag(t))
            .collect::<Result<Vec<_>, _>>()?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        live_customer(&mut tx, id).await?;
        let (added, removed) = crm::change_tags(&mut tx, id, &add, &remove).await?;
        if crm::tags_of(&mut tx, id).await?.len()
            > seva_domain::values::limits::TAGS_PER_CONVERSATION
        {
            return Err(AppError::Invalid(seva_domain::ValueError::TooLong {
                field: "tags",
                max: seva_domain::values::limits::TAGS_PER_CONVERSATION,
            }));
        }
        if !added.is_empty() || !removed.is_empty() {
            let change = Change::CustomerTagsChanged { added, removed };
            events::record(
                &mut tx,
                None,
                Some(id),
                Actor::user(caller.user.id),
                &change,
                now,
            )
            .await?;
        }
        let tags = crm::tags_of(&mut tx, id).await?;
        tx.commit().await?;
        Ok(tags)
    }

    pub async fn add_customer_note(
        &self,
        caller: &Caller,
        id: CustomerId,
        body: &str,
    ) -> Result<Note> {
        caller.require_write()?;
        let body = bounded_text("note", body, 10_000)?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        live_customer(&mut tx, id).await?;
        let note_id = crm::add_note(&mut tx, id, Some(caller.user.id), &body, now).await?;
        let change = Change::CustomerNoteAdded { note_id };
        events::record(
            &mut tx,
            None,
            Some(id),
            Actor::user(caller.user.id),
            &change,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Note {
            id: note_id,
            author_id: Some(caller.user.id),
            body,
            created_at: now,
        })
    }

    /// Customers likely to be the same person as `id`, with the keys they share.
    pub async fn customer_duplicates(
        &self,
        _caller: &Caller,
        id: CustomerId,
    ) -> Result<Vec<(Customer, Vec<String>)>> {
        let mut conn = self.store.conn().await?;
        live_customer(&mut conn, id).await?;
        duplicates_with_customers(&mut conn, id).await
    }

    /// Groups of likely duplicates across all customers (the duplicates list), each with the
    /// kind of key they share.
    pub async fn duplicate_groups(&self, _caller: &Caller) -> Result<Vec<(String, Vec<Customer>)>> {
        let mut conn = self.store.conn().await?;
        let mut out = Vec::new();
        for (kind, ids) in crm::duplicate_groups(&mut conn, 100).await? {
            let mut group = Vec::with_capacity(ids.len());
            for id in ids {
                group.push(customers::get(&mut conn, id).await?);
            }
            out.push((kind, group));
        }
        Ok(out)
    }

    /// Merges `from` into `into`: every identity, conversation, order, request, note, tag and
    /// event moves to `into`; `into` keeps its own name, language, attributes and consent and
    /// takes those it lacks from `from`. Recorded on both customers' timelines.
    pub async fn merge_customers(
        &self,
        caller: &Caller,
        into: CustomerId,
        from: CustomerId,
    ) -> Result<Customer> {
        caller.require_write()?;
        if into == from {
            return Err(AppError::MergeRefused(
                "a customer cannot be merged into itself",
            ));
        }
        let now = self.now();
        let mut tx = self.store.begin().await?;
        // Lock in id order, so two opposite merges cannot deadlock.
        for id in [into.min(from), into.max(from)] {
            customers::lock(&mut tx, id).await?;
        }
        let mut survivor = live_customer(&mut tx, into).await?;
        let merged = live_customer(&mut tx, from).await?;
        survivor.name = survivor.name.or(merged.name);
        survivor.language = survivor.language.or(merged.language);
        survivor.preferred_channel = survivor.preferred_channel.or(merged.preferred_channel);
        for (key, value) in merged.attributes {
            survivor.attributes.entry(key).or_insert(value);
        }
        validate_attributes(&survivor.attributes)?;
        for (kind, value) in merged.consent {
            survivor.consent.entry(kind).or_insert(value);
        }
        let moved = crm::merge(&mut tx, from, into, now).await?;
        save_profile(&mut tx, &survivor, now).await?;
        let change = Change::CustomerMerged {
            from,
            into,
            identities: moved.identities,
            conversations: moved.conversations,
            orders: moved.orders,
        };
        let actor = Actor::user(caller.user.id);
        events::record(&mut tx, None, Some(into), actor, &change, now).await?;
        events::record(&mut tx, None, Some(from), actor, &change, now).await?;
        let customer = customers::get(&mut tx, into).await?;
        tx.commit().await?;
        Ok(customer)
    }

    /// Everything kept about the customer, for an access request (GDPR art. 15, DPDP s. 11):
    /// profile, identities, tags, notes, conversations with every message, orders with lines,
    /// requests and history. Admins only; recorded on the customer's timeline.
    pub async fn export_customer(&self, caller: &Caller, id: CustomerId) -> Result<Export> {
        caller.require_role(Role::Admin)?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let customer = live_customer(&mut tx, id).await?;
        let mut conversations = Vec::new();
        let filter = ConversationFilter {
            customer: Some(id),
            ..ConversationFilter::default()
        };
        let mut cursor = None;
        loop {
            let page = seva_store::conversations::list(&mut tx, &filter, cursor, 200).await?;
            let Some(last) = page.last() else { break };
            cursor = Some(seva_store::conversations::ConversationCursor {
                last_activity_at: seva_store::to_micros(last.last_activity_at),
                id: last.id.0,
            });
            for conversation in page {
                let messages =
                    seva_store::conversations::messages(&mut tx, conversation.id).await?;
                conversations.push((conversation, messages));
            }
        }
        let export = Export {
            tags: crm::tags_of(&mut tx, id).await?,
            notes: crm::notes_of(&mut tx, id).await?,
            orders: orders::of_customer(&mut tx, id, i64::MAX).await?,
            requests: orders::requests_of_customer(&mut tx, id).await?,
            surveys: seva_store::surveys::of_customer(&mut tx, id).await?,
            events: events::for_customer(&mut tx, id).await?,
            conversations,
            customer,
            exported_at: now,
        };
        events::record(
            &mut tx,
            None,
            Some(id),
            Actor::user(caller.user.id),
            &Change::CustomerExported,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(export)
    }

    /// Erases the customer (an erasure request): name, identities, tags, notes, attributes,
    /// addresses, and every word of their conversations (messages, subjects, attachments, raw
    /// mail, the search index) go; conversations, orders and events stay as facts without
    /// content, so the reports still count them. Admins only; recorded as `customer_erased`.
    pub async fn erase_customer(&self, caller: &Caller, id: CustomerId) -> Result<()> {
        caller.require_role(Role::Admin)?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        customers::lock(&mut tx, id).await?;
        let customer = customers::get(&mut tx, id)
            .await
            .map_err(not_found("customer"))?;
        if customer.merged_into.is_some() {
            return Err(AppError::MergeRefused(
                "this customer was merged; erase the customer it was merged into",
            ));
        }
        let erased = privacy::erase(&mut tx, id, now).await?;
        events::record(
            &mut tx,
            None,
            Some(id),
            Actor::user(caller.user.id),
            &Change::CustomerErased,
            now,
        )
        .await?;
        tx.commit().await?;
        if let Some(blobs) = self.blobs.clone() {
            let shas = erased.orphan_blobs;
            tokio::task::spawn_blocking(move || {
                for sha in shas {
                    if let Err(e) = blobs.delete(&sha) {
                        tracing::warn!(sha, error = %e, "could not delete an erased blob");
                    }
                }
            })
            .await
            .map_err(|e| AppError::AttachmentStore(e.to_string()))?;
        }
        let mut conn = self.store.conn().await?;
        if let Err(e) = privacy::checkpoint(&mut conn).await {
            tracing::warn!(error = %e, "checkpoint after an erasure failed; the next one will do");
        }
        Ok(())
    }

    /// Says the conversation is about this order (the order must be its customer's).
    pub async fn link_order(
        &self,
        caller: &Caller,
        conversation: ConversationId,
        order: OrderId,
    ) -> Result<Vec<Order>> {
        caller.require_write()?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let c = seva_store::conversations::get(&mut tx, conversation)
            .await
            .map_err(not_found("conversation"))?;
        let o = orders::get(&mut tx, order)
            .await
            .map_err(not_found("order"))?;
        if o.customer_id != c.customer_id {
            return Err(AppError::OrderOfAnotherCustomer);
        }
        if orders::link(&mut tx, conversation, order, Some(caller.user.id), now).await? {
            let change = Change::OrderLinked {
                order_id: order,
                number: o.number,
            };
            events::record(
                &mut tx,
                Some(conversation),
                Some(c.customer_id),
                Actor::user(caller.user.id),
                &change,
                now,
            )
            .await?;
        }
        let linked = orders::linked_to(&mut tx, conversation).await?;
        tx.commit().await?;
        self.publish(crate::live::Notice::Changed(conversation));
        Ok(linked)
    }

    pub async fn linked_orders(
        &self,
        _caller: &Caller,
        conversation: ConversationId,
    ) -> Result<Vec<Order>> {
        let mut conn = self.store.conn().await?;
        Ok(orders::linked_to(&mut conn, conversation).await?)
    }

    /// Records a return, exchange or refund request on an order, optionally from a
    /// conversation (which the order is then linked to).
    pub async fn create_order_request(
        &self,
        caller: &Caller,
        input: &RequestInput,
    ) -> Result<OrderRequest> {
        caller.require_write()?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let order = orders::get(&mut tx, input.order_id)
            .await
            .map_err(not_found("order"))?;
        let reason = check_request(&input.reason, &input.items, &order.lines)?;
        if let Some(conversation) = input.conversation_id {
            let c = seva_store::conversations::get(&mut tx, conversation)
                .await
                .map_err(not_found("conversation"))?;
            if c.customer_id != order.customer_id {
                return Err(AppError::OrderOfAnotherCustomer);
            }
            orders::link(&mut tx, conversation, order.id, Some(caller.user.id), now).await?;
        }
        let id = orders::insert_request(
            &mut tx,
            &NewRequest {
                order_id: order.id,
                customer_id: order.customer_id,
                conversation_id: input.conversation_id,
                kind: input.kind,
                reason: &reason,
                items: &input.items,
                created_by: Some(caller.user.id),
            },
            now,
        )
        .await?;
        let change = Change::OrderRequestRecorded {
            request_id: id,
            order_id: order.id,
            kind: input.kind,
        };
        events::record(
            &mut tx,
            input.conversation_id,
            Some(order.customer_id),
            Actor::user(caller.user.id),
            &change,
            now,
        )
        .await?;
        let request = orders::request(&mut tx, id).await?;
        tx.commit().await?;
        if let Some(conversation) = input.conversation_id {
            self.publish(crate::live::Notice::Changed(conversation));
        }
        Ok(request)
    }

    /// Moves a request along (see `RequestStatus::can_become`).
    pub async fn set_order_request_status(
        &self,
        caller: &Caller,
        id: OrderRequestId,
        to: RequestStatus,
    ) -> Result<OrderRequest> {
        caller.require_write()?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let request = orders::request(&mut tx, id)
            .await
            .map_err(not_found("order request"))?;
        if request.status == to {
            return Ok(request);
        }
        if !request.status.can_become(to)
            || !orders::set_request_status(&mut tx, id, request.status, to, now).await?
        {
            return Err(AppError::RequestTransition {
                from: request.status,
                to,
            });
        }
        let change = Change::OrderRequestChanged {
            request_id: id,
            from: request.status,
            to,
        };
        events::record(
            &mut tx,
            request.conversation_id,
            Some(request.customer_id),
            Actor::user(caller.user.id),
            &change,
            now,
        )
        .await?;
        let request = orders::request(&mut tx, id).await?;
        tx.commit().await?;
        Ok(request)
    }

    pub async fn order_request(
        &self,
        _caller: &Caller,
        id: OrderRequestId,
    ) -> Result<OrderRequest> {
        let mut conn = self.store.conn().await?;
        orders::request(&mut conn, id)
            .await
            .map_err(not_found("order request"))
    }

    /// The requests on these orders (a conversation's linked ones), newest first.
    pub async fn requests_of_orders(
        &self,
        _caller: &Caller,
        orders: &[OrderId],
    ) -> Result<Vec<OrderRequest>> {
        let mut conn = self.store.conn().await?;
        Ok(orders::requests_of_orders(&mut conn, orders).await?)
    }

    pub async fn customer_notes(&self, _caller: &Caller, id: CustomerId) -> Result<Vec<Note>> {
        let mut conn = self.store.conn().await?;
        customers::get(&mut conn, id)
            .await
            .map_err(not_found("customer"))?;
        Ok(crm::notes_of(&mut conn, id).await?)
    }

    pub async fn customer_tags(&self, _caller: &Caller, id: CustomerId) -> Result<Vec<String>> {
        let mut conn = self.store.conn().await?;
        Ok(crm::tags_of(&mut conn, id).await?)
    }

    pub async fn customer_requests(
        &self,
        _caller: &Caller,
        id: CustomerId,
    ) -> Result<Vec<OrderRequest>> {
        let mut conn = self.store.conn().await?;
        customers::get(&mut conn, id)
            .await
            .map_err(not_found("customer"))?;
        Ok(orders::requests_of_customer(&mut conn, id).await?)
    }

    /// Creates or updates a catalogue product by SKU.
    pub async fn save_product(&self, caller: &Caller, input: &ProductInput) -> Result<Product> {
        caller.require_write()?;
        let sku = bounded_text("sku", &input.sku, seva_domain::values::limits::EXTERNAL_ID)?;
        let title = bounded_text("title", &input.title, seva_domain::values::limits::NAME)?;
        let price = match (&input.currency, input.price) {
            (Some(currency), Some(price)) if price >= 0 => {
                Some((Currency::parse(currency)?, price))
            }
            (None, None) => None,
            _ => {
                return Err(AppError::Invalid(seva_domain::ValueError::UnknownValue {
                    field: "price (a non-negative amount in minor units, with its currency)",
                    value: format!("{:?} {:?}", input.price, input.currency),
                }));
            }
        };
        let url = input
            .url
            .as_deref()
            .map(|u| bounded_text("url", u, 2_000))
            .transpose()?;
        let mut tx = self.store.begin().await?;
        orders::upsert_product(
            &mut tx,
            &sku,
            &title,
            price.as_ref().map(|(c, p)| (c, *p)),
            url.as_deref(),
            self.now(),
        )
        .await?;
        let product = orders::products_by_sku(&mut tx, &[&sku])
            .await?
            .pop()
            .ok_or(AppError::NotFound("product"))?;
        tx.commit().await?;
        Ok(product)
    }

    pub async fn products(&self, _caller: &Caller) -> Result<Vec<Product>> {
        let mut conn = self.store.conn().await?;
        Ok(orders::products(&mut conn, 1_000).await?)
    }
}

/// The likely duplicates of `id`, each with the keys it shares.
async fn duplicates_with_customers(
    conn: &mut seva_store::Conn,
    id: CustomerId,
) -> Result<Vec<(Customer, Vec<String>)>> {
    let mut out = Vec::new();
    for Suggestion {
        customer_id,
        reasons,
    } in crm::duplicates_of(conn, id).await?
    {
        out.push((customers::get(conn, customer_id).await?, reasons));
    }
    Ok(out)
}

/// A customer that was neither merged away nor erased.
pub(crate) async fn live_customer(conn: &mut seva_store::Conn, id: CustomerId) -> Result<Customer> {
    let customer = customers::get(conn, id)
        .await
        .map_err(not_found("customer"))?;
    if customer.merged_into.is_some() {
        return Err(AppError::MergeRefused(
            "this customer was merged into another; use that one",
        ));
    }
    if customer.erased_at.is_some() {
        return Err(AppError::MergeRefused("this customer was erased"));
    }
    Ok(customer)
}

async fn save_profile(
    conn: &mut seva_store::Conn,
    customer: &Customer,
    now: seva_domain::Timestamp,
) -> Result<()> {
    customers::update(
        conn,
        customer.id,
        &CustomerUpdate {
            name: customer.name.as_deref(),
            language: customer.language.as_deref(),
            preferred_channel: customer.preferred_channel,
            attributes: &customer.attributes,
            consent: &customer.consent,
        },
        now,
    )
    .await
    .map_err(|e| match e {
        StoreError::NotFound => AppError::NotFound("customer"),
        other => other.into(),
    })
}

/// What an access request hands out.
#[derive(Debug, Clone)]
pub struct Export {
    pub customer: Customer,
    pub tags: Vec<String>,
    pub notes: Vec<Note>,
    pub conversations: Vec<(seva_domain::Conversation, Vec<seva_domain::Message>)>,
    pub orders: Vec<Order>,
    pub requests: Vec<OrderRequest>,
    /// Survey answers and comments.
    pub surveys: Vec<seva_domain::survey::Survey>,
    pub events: Vec<Event>,
    pub exported_at: seva_domain::Timestamp,
}

#[derive(Debug, Clone)]
pub struct RequestInput {
    pub order_id: OrderId,
    pub conversation_id: Option<ConversationId>,
    pub kind: RequestKind,
    pub reason: String,
    pub items: Vec<RequestItem>,
}

#[derive(Debug, Clone, Default)]
pub struct ProductInput {
    pub sku: String,
    pub title: String,
    pub currency: Option<String>,
    pub price: Option<i64>,
    pub url: Option<String>,
}
