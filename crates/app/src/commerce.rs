//! Orders from the shop's platform: recorded idempotently (a redelivery with the same content
//! writes nothing), linked to the customer by platform customer id, email or phone (a customer
//! is created when none matches), and read back per customer for the agent's sidebar.

use seva_domain::commerce::{
    Address, Currency, FulfilmentStatus, Integration, Order, OrderId, OrderLine, OrderSource,
    OrderStatus, PaymentStatus, check_order,
};
use seva_domain::values::{bounded_text, limits};
use seva_domain::{Actor, Change, CustomerId, Identity, IdentityKind, Role, Timestamp, ValueError};
use seva_store::commerce::{self as store, NewOrder, Recorded};
use seva_store::{StoreError, events};
use sha2::Digest as _;

use crate::customers::{CustomerInput, find_or_create_customer};
use crate::{App, AppError, Caller, Result, not_found};

/// An order as an integration reports it.
#[derive(Debug, Clone)]
pub struct OrderInput {
    pub source: OrderSource,
    pub external_id: String,
    /// What the shopper sees; default: the external id.
    pub number: Option<String>,
    /// Who ordered: the platform's customer id (as `external_id`), email and/or phone.
    pub customer: CustomerInput,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub fulfilment_status: FulfilmentStatus,
    pub currency: String,
    /// Minor units.
    pub total: i64,
    pub refunded: i64,
    pub placed_at: Timestamp,
    pub shipping_address: Option<Address>,
    pub lines: Vec<OrderLine>,
    /// When the platform last changed the order, if it says (Shopify's `updated_at`,
    /// WooCommerce's `date_modified_gmt`): a delivery older than the recorded one is ignored.
    pub source_updated_at: Option<Timestamp>,
}

/// Orders the sidebar and customer page show.
pub const RECENT_ORDERS: i64 = 10;

impl OrderInput {
    /// The content, hashed: the same order delivered again hashes the same.
    fn fingerprint(&self, number: &str, currency: &Currency) -> String {
        let mut hash = sha2::Sha256::new();
        let mut field = |text: &str| {
            hash.update(text.len().to_le_bytes());
            hash.update(text.as_bytes());
        };
        field(number);
        field(self.customer.external_id.as_deref().unwrap_or(""));
        field(self.customer.email.as_deref().unwrap_or(""));
        field(self.customer.phone.as_deref().unwrap_or(""));
        field(self.status.as_str());
        field(self.payment_status.as_str());
        field(self.fulfilment_status.as_str());
        field(currency.as_str());
        field(&self.total.to_string());
        field(&self.refunded.to_string());
        field(&self.placed_at.timestamp_micros().to_string());
        field(&format!("{:?}", self.shipping_address));
        for line in &self.lines {
            field(&format!("{line:?}"));
        }
        hex::encode(hash.finalize())
    }
}

/// Checks everything about an order that needs no database: what an import's dry run reports.
/// Returns the external id, the number and the currency, cleaned.
pub fn check_input(input: &OrderInput) -> Result<(String, String, Currency)> {
    let external_id = bounded_text("external_id", &input.external_id, limits::EXTERNAL_ID)?;
    let number = match input.number.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => bounded_text("number", n, limits::EXTERNAL_ID)?,
        _ => external_id.clone(),
    };
    let currency = Currency::parse(&input.currency)?;
    check_order(input.total, input.refunded, &input.lines)?;
    let c = &input.customer;
    let given = [
        (IdentityKind::External, c.external_id.as_deref()),
        (IdentityKind::Email, c.email.as_deref()),
        (IdentityKind::Phone, c.phone.as_deref()),
    ];
    let mut any = false;
    for (kind, value) in given {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            Identity::parse_in(kind, value, c.country.as_deref())?;
            any = true;
        }
    }
    if !any {
        return Err(AppError::CustomerIdentityRequired);
    }
    if let Some(name) = c.name.as_deref().filter(|n| !n.trim().is_empty()) {
        bounded_text("name", name, limits::NAME)?;
    }
    Ok((external_id, number, currency))
}

impl App {
    /// Records an order, or updates the one with the same source and external id; a
    /// redelivery with the same content changes nothing.
    pub async fn record_order(
        &self,
        caller: &Caller,
        input: &OrderInput,
    ) -> Result<(Order, Recorded)> {
        caller.require_write()?;
        self.record_order_by(Actor::user(caller.user.id), input)
            .await
    }

    /// Records an order a verified webhook delivered.
    pub async fn record_webhook_order(
        &self,
        integration: &Integration,
        input: &OrderInput,
    ) -> Result<(Order, Recorded)> {
        if input.source != integration.platform {
            return Err(AppError::WebhookSignatureInvalid);
        }
        self.record_order_by(Actor::SYSTEM, input).await
    }

    /// The integration a webhook names, when `signature` (base64 of HMAC-SHA256 of the raw
    /// body with its secret, as Shopify and WooCommerce send it) is right; compared in
    /// constant time. Unknown integrations and bad signatures look the same.
    pub async fn verify_webhook(
        &self,
        id: i64,
        platform: OrderSource,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<Integration> {
        use base64::Engine as _;
        use hmac::Mac as _;
        let mut conn = self.store.conn().await?;
        let integration = store::integration(&mut conn, id)
            .await?
            .filter(|i| i.platform == platform)
            .ok_or(AppError::WebhookSignatureInvalid)?;
        let expected = signature
            .and_then(|s| {
                base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .ok()
            })
            .ok_or(AppError::WebhookSignatureInvalid)?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(integration.secret.as_bytes())
            .map_err(|_| AppError::WebhookSignatureInvalid)?;
        mac.update(body);
        mac.verify_slice(&expected)
            .map_err(|_| AppError::WebhookSignatureInvalid)?;
        Ok(integration)
    }

    /// Adds a platform that sends order webhooks (admins).
    pub async fn create_integration(
        &self,
        caller: &Caller,
        platform: OrderSource,
        name: &str,
        secret: &str,
    ) -> Result<Integration> {
        caller.require_role(Role::Admin)?;
        if !matches!(platform, OrderSource::Shopify | OrderSource::Woocommerce) {
            return Err(ValueError::UnknownValue {
                field: "platform",
                value: platform.as_str().to_owned(),
            }
            .into());
        }
        let name = bounded_text("name", name, limits::NAME)?;
        let secret = bounded_text("secret", secret, 500)?;
        let mut tx = self.store.begin().await?;
        let id = store::insert_integration(&mut tx, platform, &name, &secret, self.now())
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => {
                    AppError::AlreadyExists("an integration with this name")
                }
                other => other.into(),
            })?;
        let integration = store::integration(&mut tx, id)
            .await?
            .ok_or(AppError::NotFound("integration"))?;
        tx.commit().await?;
        Ok(integration)
    }

    pub async fn integrations(&self, caller: &Caller) -> Result<Vec<Integration>> {
        caller.require_role(Role::Admin)?;
        let mut conn = self.store.conn().await?;
        Ok(store::integrations(&mut conn).await?)
    }

    /// Records an order from an import file (no user: the import command runs as the system).
    pub async fn import_order(&self, input: &OrderInput) -> Result<(Order, Recorded)> {
        self.record_order_by(Actor::SYSTEM, input).await
    }

    /// Two first deliveries of one order at once: the loser's insert meets the winner's row,
    /// and its retry finds the order recorded.
    async fn record_order_by(&self, actor: Actor, input: &OrderInput) -> Result<(Order, Recorded)> {
        match self.record_order_once(actor, input).await {
            Err(AppError::Store(StoreError::Conflict { .. })) => {
                self.record_order_once(actor, input).await
            }
            done => done,
        }
    }

    async fn record_order_once(
        &self,
        actor: Actor,
        input: &OrderInput,
    ) -> Result<(Order, Recorded)> {
        let (external_id, number, currency) = check_input(input)?;
        let fingerprint = input.fingerprint(&number, &currency);
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let customer = find_or_create_customer(&mut tx, &input.customer, actor, now).await?;
        let new = NewOrder {
            source: input.source,
            external_id: &external_id,
            number: &number,
            customer_id: customer,
            status: input.status,
            payment_status: input.payment_status,
            fulfilment_status: input.fulfilment_status,
            currency: &currency,
            total: input.total,
            refunded: input.refunded,
            placed_at: input.placed_at,
            shipping_address: input.shipping_address.as_ref(),
            lines: &input.lines,
            fingerprint: &fingerprint,
            source_updated_at: input.source_updated_at,
        };
        let recorded = store::record(&mut tx, &new, now).await?;
        if !matches!(recorded, Recorded::Unchanged(_)) {
            let change = Change::OrderRecorded {
                order_id: recorded.id(),
                number: number.clone(),
                created: matches!(recorded, Recorded::Created(_)),
            };
            events::record(&mut tx, None, Some(customer), actor, &change, now).await?;
        }
        let order = store::get(&mut tx, recorded.id()).await?;
        tx.commit().await?;
        Ok((order, recorded))
    }

    pub async fn order(&self, _caller: &Caller, id: OrderId) -> Result<Order> {
        let mut conn = self.store.conn().await?;
        store::get(&mut conn, id).await.map_err(not_found("order"))
    }

    /// A customer's most recent orders without their lines, for the conversation's sidebar.
    pub async fn recent_orders(
        &self,
        _caller: &Caller,
        customer: CustomerId,
        limit: i64,
    ) -> Result<Vec<Order>> {
        let mut conn = self.store.conn().await?;
        Ok(store::recent_of_customer(&mut conn, customer, limit).await?)
    }

    /// A customer's orders, newest first, with their lines.
    pub async fn customer_orders(
        &self,
        _caller: &Caller,
        customer: CustomerId,
        limit: i64,
    ) -> Result<Vec<Order>> {
        let mut conn = self.store.conn().await?;
        Ok(store::of_customer(&mut conn, customer, limit).await?)
    }
}
