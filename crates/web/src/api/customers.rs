//! `/customers`: create, list and look up by email or phone, read, change.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use seva_app::customers::{CustomerPatch, NewCustomerInput};
use seva_domain::customer::{Attributes, Consent, ConsentKind};
use seva_domain::{AttributeValue, Channel, Customer, CustomerId, Identity, IdentityKind};
use seva_store::customers::CustomerFilter;

use super::{Page, check_limit, decode_cursor, double_option, encode_cursor};
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{ApiCaller, ApiId, ApiJson, ApiQuery};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/customers", get(list_customers).post(create_customer))
        .route("/customers/{id}", get(show_customer).patch(update_customer))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerJson {
    pub id: i64,
    pub name: Option<String>,
    pub language: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub external_ids: Vec<String>,
    pub identities: Vec<Identity>,
    #[schema(value_type = Object)]
    pub attributes: Attributes,
    /// The channel the customer prefers to be answered on.
    pub preferred_channel: Option<Channel>,
    /// Marketing consent: `email_marketing`, `sms_marketing`, `whatsapp_marketing`, each true
    /// (given) or false (withdrawn); absent: never asked.
    #[schema(value_type = Object)]
    pub consent: Consent,
    /// Set when this customer was merged into another: that one holds everything now.
    pub merged_into: Option<i64>,
    /// Set when the customer was erased.
    pub erased_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Customer> for CustomerJson {
    fn from(c: Customer) -> Self {
        let of = |kind| {
            c.identities
                .iter()
                .filter(|i| i.kind == kind)
                .map(|i| i.value.clone())
                .collect()
        };
        Self {
            id: c.id.0,
            emails: of(IdentityKind::Email),
            phones: of(IdentityKind::Phone),
            external_ids: of(IdentityKind::External),
            name: c.name,
            language: c.language,
            identities: c.identities,
            attributes: c.attributes,
            preferred_channel: c.preferred_channel,
            consent: c.consent,
            merged_into: c.merged_into.map(|m| m.0),
            erased_at: c.erased_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    /// Find the customer with this email.
    pub email: Option<String>,
    /// Find the customer with this phone (international form).
    pub phone: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// List customers, newest first, or look one up by `email` or `phone`.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers", params(CustomerQuery),
    responses((status = 200, body = Page<CustomerJson>), (status = "4XX", body = ErrorBody)))]
pub async fn list_customers(
    State(state): State<AppState>,
    _caller: ApiCaller,
    ApiQuery(q): ApiQuery<CustomerQuery>,
) -> ApiResult<Json<Page<CustomerJson>>> {
    let limit = check_limit(q.limit)?;
    let identity = match (&q.email, &q.phone) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                "look up by email or by phone, not both",
            ));
        }
        (Some(email), None) => {
            Some(Identity::parse(IdentityKind::Email, email).map_err(seva_app::AppError::from)?)
        }
        (None, Some(phone)) => {
            Some(Identity::parse(IdentityKind::Phone, phone).map_err(seva_app::AppError::from)?)
        }
        (None, None) => None,
    };
    let before_id = q
        .cursor
        .as_deref()
        .map(|c| decode_cursor(c, 1).map(|p| CustomerId(p[0])))
        .transpose()?;
    let mut items = state
        .app
        .list_customers(&CustomerFilter {
            identity,
            before_id,
            limit: limit + 1,
        })
        .await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|c| encode_cursor(&[c.id.0]))
    } else {
        None
    };
    Ok(Json(Page {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    pub name: Option<String>,
    pub language: Option<String>,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub phones: Vec<String>,
    #[serde(default)]
    pub external_ids: Vec<String>,
    /// Custom attributes: names of letters, digits, `_` and `-`; values text, number or boolean.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Attributes,
}

#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = CreateCustomer,
    responses((status = 201, body = CustomerJson), (status = "4XX", body = ErrorBody)))]
pub async fn create_customer(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    body: ApiJson<CreateCustomer>,
) -> ApiResult<(StatusCode, Json<CustomerJson>)> {
    let req = body.value;
    let input = NewCustomerInput {
        name: req.name,
        language: req.language,
        emails: req.emails,
        phones: req.phones,
        external_ids: req.external_ids,
        attributes: req.attributes,
    };
    Ok((
        StatusCode::CREATED,
        Json(state.app.create_customer(&caller, &input).await?.into()),
    ))
}

#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = i64, Path)),
    responses((status = 200, body = CustomerJson), (status = "4XX", body = ErrorBody)))]
pub async fn show_customer(
    State(state): State<AppState>,
    _caller: ApiCaller,
    ApiId(id): ApiId,
) -> ApiResult<Json<CustomerJson>> {
    Ok(Json(state.app.customer(CustomerId(id)).await?.into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub language: Option<Option<String>>,
    /// Attributes to set; an attribute set to null is removed; others are kept.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<BTreeMap<String, Option<AttributeValue>>>,
    #[serde(default)]
    pub add_emails: Vec<String>,
    #[serde(default)]
    pub add_phones: Vec<String>,
    #[serde(default)]
    pub add_external_ids: Vec<String>,
    /// Where phones written the national way are from (ISO 3166 alpha-2, e.g. `IR`, `IN`).
    pub country: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Channel>)]
    pub preferred_channel: Option<Option<Channel>>,
    /// Consent flags to set (true or false) or forget (null); others are kept.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub consent: BTreeMap<ConsentKind, Option<bool>>,
}

#[utoipa::path(patch, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = i64, Path)),
    request_body = UpdateCustomer,
    responses((status = 200, body = CustomerJson), (status = "4XX", body = ErrorBody)))]
pub async fn update_customer(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    ApiId(id): ApiId,
    body: ApiJson<UpdateCustomer>,
) -> ApiResult<Json<CustomerJson>> {
    let req = body.value;
    let mut add_identities = Vec::new();
    for (kind, values) in [
        (IdentityKind::Email, req.add_emails),
        (IdentityKind::Phone, req.add_phones),
        (IdentityKind::External, req.add_external_ids),
    ] {
        add_identities.extend(values.into_iter().map(|v| (kind, v)));
    }
    let patch = CustomerPatch {
        name: req.name,
        language: req.language,
        attributes: req.attributes.map(|a| a.into_iter().collect()),
        add_identities,
        country: req.country,
        preferred_channel: req.preferred_channel,
        consent: req.consent.into_iter().collect(),
    };
    Ok(Json(
        state
            .app
            .update_customer(&caller, CustomerId(id), &patch)
            .await?
            .into(),
    ))
}
