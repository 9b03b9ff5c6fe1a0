//! Customers: create, update, look up, and find-or-create from an incoming message.

use seva_domain::customer::{Attributes, validate_attributes};
use seva_domain::values::{bounded_text, limits, parse_language};
use seva_domain::{
    Actor, AttributeValue, Change, Customer, CustomerId, Identity, IdentityKind, Timestamp,
};
use seva_store::customers::{self as store, CustomerFilter, CustomerUpdate, NewCustomer};
use seva_store::{Conn, StoreError, events};

use crate::{App, AppError, Caller, Result, not_found};

/// Who a message is from, as a channel or API client knows them.
#[derive(Debug, Clone, Default)]
pub struct CustomerInput {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub language: Option<String>,
    /// Where a phone written the national way is from (ISO 3166 alpha-2, e.g. `IR`, `IN`).
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NewCustomerInput {
    pub name: Option<String>,
    pub language: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub external_ids: Vec<String>,
    pub attributes: Attributes,
}

/// A change to a customer. Identities are only added here (merging and removal are their own
/// use cases); an attribute set to `None` is removed.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    pub name: Option<Option<String>>,
    pub language: Option<Option<String>>,
    pub attributes: Option<Vec<(String, Option<AttributeValue>)>>,
    pub add_identities: Vec<(IdentityKind, String)>,
    /// Where a phone written the national way is from (ISO 3166 alpha-2).
    pub country: Option<String>,
    pub preferred_channel: Option<Option<seva_domain::Channel>>,
    /// Consent flags to set (`Some`) or forget (`None`).
    pub consent: Vec<(seva_domain::customer::ConsentKind, Option<bool>)>,
}

fn clean_name(name: Option<&str>) -> Result<Option<String>> {
    Ok(name
        .filter(|n| !n.trim().is_empty())
        .map(|n| bounded_text("name", n, limits::NAME))
        .transpose()?)
}

fn clean_language(language: Option<&str>) -> Result<Option<String>> {
    Ok(language
        .filter(|l| !l.trim().is_empty())
        .map(parse_language)
        .transpose()?)
}

/// Adds identities, mapping "belongs to someone else" to a clear error.
async fn add_identities(
    conn: &mut Conn,
    customer: CustomerId,
    identities: &[Identity],
    actor: Actor,
    at: Timestamp,
) -> Result<()> {
    for identity in identities {
        match store::add_identity(conn, customer, identity, at).await {
            Ok(true) => {
                let change = Change::IdentityAdded {
                    identity: identity.clone(),
                };
                events::record(conn, None, Some(customer), actor, &change, at).await?;
            }
            Ok(false) => {}
            Err(StoreError::Conflict { .. }) => {
                return Err(AppError::IdentityTaken(format!(
                    "{} {}",
                    identity.kind, identity.value
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The customer the given identities point to, if any, without creating one.
pub(crate) async fn find_customer(
    conn: &mut Conn,
    input: &CustomerInput,
) -> Result<Option<CustomerId>> {
    let given = [
        (IdentityKind::Email, input.email.as_deref()),
        (IdentityKind::Phone, input.phone.as_deref()),
        (IdentityKind::External, input.external_id.as_deref()),
    ];
    for (kind, value) in given {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            let identity = Identity::parse_in(kind, value, input.country.as_deref())?;
            if let Some(id) = store::find_by_identity(conn, identity.kind, &identity.value).await? {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

/// The customer an incoming message or order is from: found by external id (the platform's,
/// or a signed shopper's), then email, then phone; created (with every identity given) when
/// none matches. Identities given that the found customer lacks are added, unless another
/// customer has them.
pub(crate) async fn find_or_create_customer(
    conn: &mut Conn,
    input: &CustomerInput,
    actor: Actor,
    at: Timestamp,
) -> Result<CustomerId> {
    let mut identities = Vec::new();
    if let Some(external) = input
        .external_id
        .as_deref()
        .filter(|p| !p.trim().is_empty())
    {
        identities.push(Identity::parse(IdentityKind::External, external)?);
    }
    if let Some(email) = input.email.as_deref().filter(|e| !e.trim().is_empty()) {
        identities.push(Identity::parse(IdentityKind::Email, email)?);
    }
    if let Some(phone) = input.phone.as_deref().filter(|p| !p.trim().is_empty()) {
        identities.push(Identity::parse_in(
            IdentityKind::Phone,
            phone,
            input.country.as_deref(),
        )?);
    }
    if identities.is_empty() {
        return Err(AppError::CustomerIdentityRequired);
    }
    let name = clean_name(input.name.as_deref())?;
    let language = clean_language(input.language.as_deref())?;
    for identity in &identities {
        if let Some(id) = store::find_by_identity(conn, identity.kind, &identity.value).await? {
            // Only identities nobody has yet are added: a message never moves an identity.
            // An identity claimed by a concurrent request meanwhile is simply not added.
            for other in identities.iter().filter(|other| *other != identity) {
                let free = store::find_by_identity(conn, other.kind, &other.value)
                    .await?
                    .is_none();
                if free
                    && store::add_identity(conn, id, other, at)
                        .await
                        .unwrap_or(false)
                {
                    let change = Change::IdentityAdded {
                        identity: other.clone(),
                    };
                    events::record(conn, None, Some(id), actor, &change, at).await?;
                }
            }
            return Ok(id);
        }
    }
    let attributes = Attributes::new();
    let id = store::insert(
        conn,
        &NewCustomer {
            name: name.as_deref(),
            language: language.as_deref(),
            attributes: &attributes,
        },
        at,
    )
    .await?;
    events::record(
        conn,
        None,
        Some(id),
        actor,
        &Change::CustomerCreated { name },
        at,
    )
    .await?;
    // A conflict here means a concurrent request created this customer first: the caller retries.
    for identity in &identities {
        if !store::add_identity(conn, id, identity, at).await? {
            continue;
        }
        let change = Change::IdentityAdded {
            identity: identity.clone(),
        };
        events::record(conn, None, Some(id), actor, &change, at).await?;
    }
    Ok(id)
}

impl App {
    /// Finds or creates the customer a row of an import file describes (no user: the import
    /// command runs as the system).
    pub async fn import_customer(&self, input: &CustomerInput) -> Result<CustomerId> {
        let mut tx = self.store.begin().await?;
        let id = find_or_create_customer(&mut tx, input, Actor::SYSTEM, self.now()).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn create_customer(
        &self,
        caller: &Caller,
        input: &NewCustomerInput,
    ) -> Result<Customer> {
        caller.require_write()?;
        let name = clean_name(input.name.as_deref())?;
        let language = clean_language(input.language.as_deref())?;
        validate_attributes(&input.attributes)?;
        let mut identities = Vec::new();
        for (kind, values) in [
            (IdentityKind::Email, &input.emails),
            (IdentityKind::Phone, &input.phones),
            (IdentityKind::External, &input.external_ids),
        ] {
            for value in values {
                identities.push(Identity::parse(kind, value)?);
            }
        }
        let now = self.now();
        let actor = Actor::user(caller.user.id);
        let mut tx = self.store.begin().await?;
        let id = store::insert(
            &mut tx,
            &NewCustomer {
                name: name.as_deref(),
                language: language.as_deref(),
                attributes: &input.attributes,
            },
            now,
        )
        .await?;
        events::record(
            &mut tx,
            None,
            Some(id),
            actor,
            &Change::CustomerCreated { name },
            now,
        )
        .await?;
        add_identities(&mut tx, id, &identities, actor, now).await?;
        let customer = store::get(&mut tx, id).await?;
        tx.commit().await?;
        Ok(customer)
    }

    pub async fn update_customer(
        &self,
        caller: &Caller,
        id: CustomerId,
        patch: &CustomerPatch,
    ) -> Result<Customer> {
        caller.require_write()?;
        let now = self.now();
        let actor = Actor::user(caller.user.id);
        let identities = patch
            .add_identities
            .iter()
            .map(|(kind, value)| Identity::parse_in(*kind, value, patch.country.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut tx = self.store.begin().await?;
        store::lock(&mut tx, id).await?;
        let mut customer = crate::crm::live_customer(&mut tx, id).await?;
        let mut fields = Vec::new();
        if let Some(channel) = patch.preferred_channel {
            customer.preferred_channel = channel;
            fields.push("preferred_channel".to_owned());
        }
        for (kind, value) in &patch.consent {
            match value {
                Some(v) => customer.consent.insert(*kind, *v),
                None => customer.consent.remove(kind),
            };
            fields.push(format!("consent.{kind}"));
        }
        if let Some(name) = &patch.name {
            customer.name = clean_name(name.as_deref())?;
            fields.push("name".to_owned());
        }
        if let Some(language) = &patch.language {
            customer.language = clean_language(language.as_deref())?;
            fields.push("language".to_owned());
        }
        if let Some(attributes) = &patch.attributes {
            for (key, value) in attributes {
                match value {
                    Some(value) => customer.attributes.insert(key.clone(), value.clone()),
                    None => customer.attributes.remove(key),
                };
                fields.push(format!("attributes.{key}"));
            }
            validate_attributes(&customer.attributes)?;
        }
        if !fields.is_empty() {
            store::update(
                &mut tx,
                id,
                &CustomerUpdate {
                    name: customer.name.as_deref(),
                    language: customer.language.as_deref(),
                    preferred_channel: customer.preferred_channel,
                    attributes: &customer.attributes,
                    consent: &customer.consent,
                },
                now,
            )
            .await?;
            events::record(
                &mut tx,
                None,
                Some(id),
                actor,
                &Change::CustomerUpdated { fields },
                now,
            )
            .await?;
        }
        add_identities(&mut tx, id, &identities, actor, now).await?;
        let customer = store::get(&mut tx, id).await?;
        tx.commit().await?;
        Ok(customer)
    }

    pub async fn customer(&self, id: CustomerId) -> Result<Customer> {
        let mut conn = self.store.conn().await?;
        store::get(&mut conn, id)
            .await
            .map_err(not_found("customer"))
    }

    pub async fn list_customers(&self, filter: &CustomerFilter) -> Result<Vec<Customer>> {
        let mut conn = self.store.conn().await?;
        Ok(store::list(&mut conn, filter).await?)
    }
}
