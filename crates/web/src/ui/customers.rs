//! The customer pages: the list (with lookup and likely duplicates) and the customer's whole
//! picture (identities, preferences, consent, attributes, tags, notes, spend per currency,
//! orders, requests and one timeline), with merging, the access export and erasure.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use serde::Deserialize;
use seva_app::AppError;
use seva_app::crm::Profile;
use seva_app::customers::CustomerPatch;
use seva_app::workspace::Directory;
use seva_domain::customer::ConsentKind;
use seva_domain::event::ActorKind;
use seva_domain::{
    Change, Channel, Customer, CustomerId, Event, Identity, IdentityKind, Role, UserId,
};
use seva_store::customers::CustomerFilter;

use super::conversation::Fact;
use super::inbox::Choice;
use super::mailboxes::{NoticeQuery, unavailable};
use super::session::Agent;
use super::{Shell, render};
use crate::AppState;
use crate::i18n::Tr;

pub struct CustomerRow {
    pub href: String,
    pub name: String,
    pub contact: String,
}

pub struct DuplicateGroup {
    pub reason: String,
    pub customers: Vec<CustomerRow>,
}

#[derive(Template)]
#[template(path = "customers.html")]
pub struct CustomersPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub q: String,
    pub rows: Vec<CustomerRow>,
    pub duplicates: Vec<DuplicateGroup>,
}

fn display_name(tr: &Tr<'_>, agent: &Agent, c: &Customer) -> String {
    if c.erased_at.is_some() {
        return tr.t("customer-erased-name");
    }
    c.name
        .clone()
        .unwrap_or_else(|| tr.t1("customer-number", "id", &agent.fmt.number(c.id.0)))
}

pub fn row_of(tr: &Tr<'_>, agent: &Agent, c: &Customer) -> CustomerRow {
    CustomerRow {
        href: format!("/customers/{}", c.id.0),
        name: display_name(tr, agent, c),
        contact: c
            .identities
            .iter()
            .filter(|i| i.kind != IdentityKind::External)
            .map(|i| i.value.as_str())
            .collect::<Vec<_>>()
            .join(" · "),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    q: String,
}

/// Customers, newest first, or the one an email or phone points to; likely duplicates below.
pub async fn list(
    State(state): State<AppState>,
    agent: Agent,
    Query(q): Query<ListQuery>,
) -> Response {
    let tr = agent.tr(&state);
    let wanted = q.q.trim();
    let identity = if wanted.is_empty() {
        None
    } else if wanted.contains('@') {
        Identity::parse(IdentityKind::Email, wanted).ok()
    } else {
        Identity::parse(IdentityKind::Phone, wanted)
            .ok()
            .or_else(|| Identity::parse(IdentityKind::External, wanted).ok())
    };
    if !wanted.is_empty() && identity.is_none() {
        return Redirect::to("/customers").into_response();
    }
    let filter = CustomerFilter {
        identity,
        before_id: None,
        limit: 50,
    };
    let (customers, groups) = match (
        state.app.list_customers(&filter).await,
        state.app.duplicate_groups(&agent.caller).await,
    ) {
        (Ok(c), Ok(g)) => (c, g),
        (Err(e), _) | (_, Err(e)) => return unavailable(&e),
    };
    let page = CustomersPage {
        shell: Shell::new(&agent, &tr, String::new()),
        q: wanted.to_owned(),
        rows: customers.iter().map(|c| row_of(&tr, &agent, c)).collect(),
        duplicates: groups
            .iter()
            .take(20)
            .map(|(kind, group)| DuplicateGroup {
                reason: tr.t(&format!("duplicate-reason-{kind}")),
                customers: group.iter().map(|c| row_of(&tr, &agent, c)).collect(),
            })
            .collect(),
        tr,
    };
    render(&page, StatusCode::OK)
}

pub struct SpendRow {
    pub currency: String,
    pub net: String,
    pub orders: String,
    pub first: String,
    pub last: String,
}

pub struct OrderLineRow {
    pub title: String,
    pub quantity: String,
    pub total: String,
}

pub struct OrderRow {
    pub number: String,
    pub when: String,
    pub when_iso: String,
    pub total: String,
    pub status: String,
    pub payment: String,
    pub fulfilment: String,
    pub cancelled: bool,
    pub lines: Vec<OrderLineRow>,
}

pub struct RequestRow {
    pub id: i64,
    pub title: String,
    pub status: String,
    pub reason: String,
    pub items: String,
    pub next: Vec<Choice>,
}

pub struct NoteRow {
    pub author: String,
    pub when: String,
    pub body: String,
}

pub struct TimelineItem {
    pub when: String,
    pub when_iso: String,
    /// conversation, order, request, note or event: the style.
    pub kind: &'static str,
    pub text: String,
    pub href: Option<String>,
}

pub struct DuplicateRow {
    pub id: i64,
    pub href: String,
    pub name: String,
    pub contact: String,
    pub reasons: String,
}

#[derive(Template)]
#[template(path = "customer.html")]
pub struct CustomerPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub id: i64,
    pub name: String,
    pub erased: Option<String>,
    pub facts: Vec<Fact>,
    pub tags: String,
    pub channels: Vec<Choice>,
    pub consents: Vec<(String, String, Vec<Choice>)>,
    pub spend: Vec<SpendRow>,
    pub orders: Vec<OrderRow>,
    pub requests: Vec<RequestRow>,
    pub notes: Vec<NoteRow>,
    pub timeline: Vec<TimelineItem>,
    pub duplicates: Vec<DuplicateRow>,
    pub can_write: bool,
    pub is_admin: bool,
    pub notice: Option<String>,
}

/// The customer's page; a merged customer's address leads to the survivor's.
pub async fn show(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<i64>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    let tr = agent.tr(&state);
    let profile = match state
        .app
        .customer_profile(&agent.caller, CustomerId(id))
        .await
    {
        Ok(p) => p,
        Err(AppError::NotFound(_)) => {
            return (StatusCode::NOT_FOUND, tr.t("customer-not-found")).into_response();
        }
        Err(e) => return unavailable(&e),
    };
    if let Some(into) = profile.customer.merged_into {
        return Redirect::to(&format!("/customers/{}?notice=merged", into.0)).into_response();
    }
    let directory = match state.app.directory().await {
        Ok(d) => d,
        Err(e) => return unavailable(&e),
    };
    let page = page(&tr, &agent, &directory, &profile, q.notice());
    render(&page, StatusCode::OK)
}

fn page<'a>(
    tr: &Tr<'a>,
    agent: &Agent,
    directory: &Directory,
    p: &Profile,
    notice: Option<&str>,
) -> CustomerPage<'a> {
    let c = &p.customer;
    let facts = super::conversation::customer_facts(tr, agent, c);
    let (channels, consents) = preference_choices(tr, c);
    let spend = p
        .spend
        .iter()
        .map(|s| SpendRow {
            currency: s.currency.as_str().to_owned(),
            net: agent.fmt.money(s.net, &s.currency),
            orders: agent.fmt.number(s.orders),
            first: agent.fmt.date(s.first_order_at),
            last: agent.fmt.date(s.last_order_at),
        })
        .collect();
    let orders = order_rows(tr, agent, &p.orders);
    let number_of = |order: seva_domain::commerce::OrderId| {
        p.orders
            .iter()
            .find(|o| o.id == order)
            .map_or_else(|| format!("#{}", order.0), |o| o.number.clone())
    };
    let requests = p
        .requests
        .iter()
        .map(|r| request_row(tr, agent, r, &number_of(r.order_id)))
        .collect();
    let author = |id: Option<UserId>| {
        id.and_then(|id| directory.user_name(id).map(str::to_owned))
            .unwrap_or_else(|| tr.t("someone"))
    };
    let notes = p
        .notes
        .iter()
        .map(|n| NoteRow {
            author: author(n.author_id),
            when: agent.fmt.date_time(n.created_at),
            body: n.body.clone(),
        })
        .collect();
    let timeline = timeline(tr, agent, directory, p, &number_of);
    let duplicates = p
        .duplicates
        .iter()
        .map(|(d, reasons)| DuplicateRow {
            id: d.id.0,
            href: format!("/customers/{}", d.id.0),
            name: display_name(tr, agent, d),
            contact: row_of(tr, agent, d).contact,
            reasons: reasons
                .iter()
                .map(|r| tr.t(&format!("duplicate-reason-{r}")))
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    CustomerPage {
        shell: Shell::new(agent, tr, String::new()),
        tr: *tr,
        id: c.id.0,
        name: display_name(tr, agent, c),
        erased: c
            .erased_at
            .map(|at| tr.t1("customer-erased-on", "date", &agent.fmt.date(at))),
        facts,
        tags: p.tags.join(", "),
        channels,
        consents,
        spend,
        orders,
        requests,
        notes,
        timeline,
        duplicates,
        can_write: agent.can_write() && c.erased_at.is_none(),
        is_admin: agent.caller.user.role == Role::Admin && c.erased_at.is_none(),
        notice: notice.map(|code| notice_text(tr, code)),
    }
}

type ConsentChoices = Vec<(String, String, Vec<Choice>)>;

/// The preferred channel and each consent flag as the form's choices.
fn preference_choices(tr: &Tr<'_>, c: &Customer) -> (Vec<Choice>, ConsentChoices) {
    let mut channels = vec![Choice {
        value: String::new(),
        label: tr.t("no-preference"),
        selected: c.preferred_channel.is_none(),
    }];
    channels.extend(Channel::ALL.iter().map(|ch| Choice {
        value: ch.as_str().to_owned(),
        label: tr.t(&format!("channel-{ch}")),
        selected: c.preferred_channel == Some(*ch),
    }));
    let consents = ConsentKind::ALL
        .iter()
        .map(|kind| {
            let now = c.consent.get(kind).copied();
            let choice = |value: &str, label: &str, selected: bool| Choice {
                value: value.to_owned(),
                label: tr.t(label),
                selected,
            };
            (
                kind.as_str().to_owned(),
                tr.t(&format!("consent-{kind}")),
                vec![
                    choice("", "consent-unknown", now.is_none()),
                    choice("yes", "consent-given", now == Some(true)),
                    choice("no", "consent-withdrawn", now == Some(false)),
                ],
            )
        })
        .collect();
    (channels, consents)
}

fn order_rows(
    tr: &Tr<'_>,
    agent: &Agent,
    orders: &[seva_domain::commerce::Order],
) -> Vec<OrderRow> {
    orders
        .iter()
        .map(|o| OrderRow {
            number: o.number.clone(),
            when: agent.fmt.date(o.placed_at),
            when_iso: o.placed_at.to_rfc3339(),
            total: agent.fmt.money(o.total, &o.currency),
            status: tr.t(&format!("order-status-{}", o.status)),
            payment: tr.t(&format!("payment-{}", o.payment_status)),
            fulfilment: tr.t(&format!("fulfilment-{}", o.fulfilment_status)),
            cancelled: o.status == seva_domain::commerce::OrderStatus::Cancelled,
            lines: o
                .lines
                .iter()
                .map(|l| OrderLineRow {
                    title: l.title.clone(),
                    quantity: agent.fmt.number(l.quantity),
                    total: agent.fmt.money(l.total, &o.currency),
                })
                .collect(),
        })
        .collect()
}

/// A request as the customer page and the conversation sidebar show it, with the moves it can
/// make next.
pub fn request_row(
    tr: &Tr<'_>,
    agent: &Agent,
    r: &seva_domain::commerce::OrderRequest,
    order_number: &str,
) -> RequestRow {
    use seva_domain::commerce::RequestStatus;
    RequestRow {
        id: r.id.0,
        title: tr.t_args(
            "request-title",
            &[
                ("kind", &tr.t(&format!("request-kind-{}", r.kind))),
                ("order", order_number),
            ],
        ),
        status: tr.t(&format!("request-status-{}", r.status)),
        reason: r.reason.clone(),
        items: r
            .items
            .iter()
            .map(|i| format!("{} × {}", agent.fmt.number(i.quantity), i.title))
            .collect::<Vec<_>>()
            .join(", "),
        next: RequestStatus::ALL
            .iter()
            .filter(|to| r.status.can_become(**to))
            .map(|to| Choice {
                value: to.as_str().to_owned(),
                label: tr.t(&format!("request-status-{to}")),
                selected: false,
            })
            .collect(),
    }
}

/// Everything that happened with the customer, newest first: conversations on every channel,
/// orders, requests, notes, and changes to the customer itself.
fn timeline(
    tr: &Tr<'_>,
    agent: &Agent,
    directory: &Directory,
    p: &Profile,
    number_of: &dyn Fn(seva_domain::commerce::OrderId) -> String,
) -> Vec<TimelineItem> {
    let mut items: Vec<(seva_domain::Timestamp, TimelineItem)> = Vec::new();
    let mut push = |at: seva_domain::Timestamp, kind, text: String, href: Option<String>| {
        items.push((
            at,
            TimelineItem {
                when: agent.fmt.date_time(at),
                when_iso: at.to_rfc3339(),
                kind,
                text,
                href,
            },
        ));
    };
    for c in &p.conversations {
        let text = tr.t_args(
            "timeline-conversation",
            &[
                ("channel", &tr.t(&format!("channel-{}", c.channel))),
                (
                    "subject",
                    &c.subject.clone().unwrap_or_else(|| tr.t("no-subject")),
                ),
                ("status", &tr.t(&format!("status-{}", c.status))),
            ],
        );
        push(
            c.created_at,
            "conversation",
            text,
            Some(format!("/conversations/{}", c.id.0)),
        );
    }
    for o in &p.orders {
        let text = tr.t_args(
            "timeline-order",
            &[
                ("number", &o.number),
                ("total", &agent.fmt.money(o.total, &o.currency)),
            ],
        );
        push(o.placed_at, "order", text, None);
    }
    for r in &p.requests {
        let text = tr.t_args(
            "timeline-request",
            &[
                ("kind", &tr.t(&format!("request-kind-{}", r.kind))),
                ("order", &number_of(r.order_id)),
                ("status", &tr.t(&format!("request-status-{}", r.status))),
            ],
        );
        push(
            r.created_at,
            "request",
            text,
            r.conversation_id.map(|c| format!("/conversations/{}", c.0)),
        );
    }
    for n in &p.notes {
        push(
            n.created_at,
            "note",
            tr.t1("timeline-note", "note", &n.body),
            None,
        );
    }
    for e in &p.events {
        if let Some(text) = describe(tr, agent, directory, e) {
            push(e.at, "event", text, None);
        }
    }
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    items.into_iter().map(|(_, item)| item).collect()
}

/// What a change to the customer says on the timeline; `None` for what the timeline shows
/// otherwise (orders, notes, requests).
fn describe(tr: &Tr<'_>, agent: &Agent, directory: &Directory, e: &Event) -> Option<String> {
    let actor = match (e.actor.kind, e.actor.id) {
        (ActorKind::User, Some(id)) => directory
            .user_name(UserId(id))
            .map_or_else(|| tr.t("someone"), str::to_owned),
        (ActorKind::Customer, _) => tr.t("customer"),
        _ => tr.t("app-name"),
    };
    let a = ("actor", actor.as_str());
    let customer = |id: CustomerId| tr.t1("customer-number", "id", &agent.fmt.number(id.0));
    Some(match &e.change {
        Change::CustomerCreated { .. } => tr.t_args("timeline-created", &[a]),
        Change::IdentityAdded { identity } => tr.t_args(
            "timeline-identity",
            &[
                a,
                ("kind", &tr.t(&format!("identity-{}", identity.kind))),
                ("value", &identity.value),
            ],
        ),
        Change::CustomerUpdated { fields } => {
            tr.t_args("timeline-updated", &[a, ("fields", &fields.join(", "))])
        }
        Change::CustomerTagsChanged { added, removed } => {
            let mut parts: Vec<String> = added.iter().map(|t| format!("+{t}")).collect();
            parts.extend(removed.iter().map(|t| format!("−{t}")));
            tr.t_args("event-tags", &[a, ("tags", &parts.join(" "))])
        }
        Change::CustomerMerged { from, into, .. } if Some(*into) == e.customer_id => {
            tr.t_args("timeline-merged-in", &[a, ("other", &customer(*from))])
        }
        Change::CustomerMerged { into, .. } => {
            tr.t_args("timeline-merged-into", &[a, ("other", &customer(*into))])
        }
        Change::CustomerExported => tr.t_args("timeline-exported", &[a]),
        Change::CustomerErased => tr.t_args("timeline-erased", &[a]),
        Change::OrderRequestChanged { to, .. } => tr.t_args(
            "event-request-status",
            &[a, ("status", &tr.t(&format!("request-status-{to}")))],
        ),
        Change::SurveySent { .. }
        | Change::SurveyAnswered { .. }
        | Change::SurveyCommented { .. } => {
            return super::conversation::survey_event(tr, agent.fmt, &e.change, a.1);
        }
        _ => return None,
    })
}

fn notice_text(tr: &Tr<'_>, code: &str) -> String {
    tr.t(match code {
        "saved" => "notice-updated",
        "noted" => "notice-note-added",
        "merged" => "notice-customer-merged",
        "erased" => "notice-customer-erased",
        "confirm" => "error-erase-confirm",
        "forbidden" => "error-read-only",
        "refused" => "error-customer-refused",
        "empty" => "error-empty-message",
        "invalid" => "error-invalid-value",
        "request-moved" => "notice-request-moved",
        "transition" => "error-request-transition",
        _ => "notice-error",
    })
}

fn refusal(e: &AppError) -> &'static str {
    match e {
        AppError::Forbidden => "forbidden",
        AppError::MergeRefused(_) => "refused",
        AppError::Invalid(seva_domain::ValueError::Empty { .. }) => "empty",
        AppError::Invalid(_) | AppError::IdentityTaken(_) => "invalid",
        _ => "error",
    }
}

fn back(id: i64, result: Result<&'static str, &'static str>) -> Response {
    let code = result.unwrap_or_else(|e| e);
    Redirect::to(&format!("/customers/{id}?notice={code}")).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CustomerForm {
    csrf: String,
    tags: String,
    body: String,
    preferred_channel: String,
    email_marketing: String,
    sms_marketing: String,
    whatsapp_marketing: String,
    from: String,
    confirm: String,
}

/// Checks the form and its CSRF token; `Err` is the answer to give instead.
fn checked(
    agent: &Agent,
    headers: &HeaderMap,
    form: Result<Form<CustomerForm>, axum_extra::extract::FormRejection>,
    id: i64,
) -> Result<CustomerForm, Box<Response>> {
    let Ok(Form(form)) = form else {
        return Err(Box::new(back(id, Err("error"))));
    };
    if let Some(refused) = agent.refuse_bad_csrf(headers, Some(&form.csrf)) {
        return Err(Box::new(refused));
    }
    Ok(form)
}

/// Replaces the customer's tags with those typed (comma separated).
pub async fn save_tags(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<CustomerForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let form = match checked(&agent, &headers, form, id) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let wanted: Vec<String> = form
        .tags
        .split([',', '،'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect();
    let current = match state.app.customer_tags(&agent.caller, CustomerId(id)).await {
        Ok(tags) => tags,
        Err(e) => return back(id, Err(refusal(&e))),
    };
    let add: Vec<String> = wanted
        .iter()
        .filter(|t| !current.contains(t))
        .cloned()
        .collect();
    let remove: Vec<String> = current
        .iter()
        .filter(|t| !wanted.contains(t))
        .cloned()
        .collect();
    let done = state
        .app
        .change_customer_tags(&agent.caller, CustomerId(id), &add, &remove)
        .await;
    back(id, done.map(|_| "saved").map_err(|e| refusal(&e)))
}

pub async fn add_note(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<CustomerForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let form = match checked(&agent, &headers, form, id) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let done = state
        .app
        .add_customer_note(&agent.caller, CustomerId(id), &form.body)
        .await;
    back(id, done.map(|_| "noted").map_err(|e| refusal(&e)))
}

/// The preferred channel and the consent flags.
pub async fn save_preferences(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<CustomerForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let form = match checked(&agent, &headers, form, id) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let channel = match form.preferred_channel.trim() {
        "" => None,
        c => match c.parse::<Channel>() {
            Ok(c) => Some(c),
            Err(_) => return back(id, Err("invalid")),
        },
    };
    let flag = |v: &str| match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    };
    let patch = CustomerPatch {
        preferred_channel: Some(channel),
        consent: vec![
            (ConsentKind::EmailMarketing, flag(&form.email_marketing)),
            (ConsentKind::SmsMarketing, flag(&form.sms_marketing)),
            (
                ConsentKind::WhatsappMarketing,
                flag(&form.whatsapp_marketing),
            ),
        ],
        ..CustomerPatch::default()
    };
    let done = state
        .app
        .update_customer(&agent.caller, CustomerId(id), &patch)
        .await;
    back(id, done.map(|_| "saved").map_err(|e| refusal(&e)))
}

/// Merges the customer named in the form (`from`) into this one.
pub async fn merge(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<CustomerForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let form = match checked(&agent, &headers, form, id) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let Ok(from) = form.from.trim().parse::<i64>() else {
        return back(id, Err("invalid"));
    };
    let done = state
        .app
        .merge_customers(&agent.caller, CustomerId(id), CustomerId(from))
        .await;
    back(id, done.map(|_| "merged").map_err(|e| refusal(&e)))
}

/// Erases the customer, once the admin ticked the confirmation.
pub async fn erase(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<CustomerForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let form = match checked(&agent, &headers, form, id) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if form.confirm != "yes" {
        return back(id, Err("confirm"));
    }
    let done = state
        .app
        .erase_customer(&agent.caller, CustomerId(id))
        .await;
    back(id, done.map(|()| "erased").map_err(|e| refusal(&e)))
}

/// The access export as a JSON download (admins).
pub async fn export(State(state): State<AppState>, agent: Agent, Path(id): Path<i64>) -> Response {
    match state
        .app
        .export_customer(&agent.caller, CustomerId(id))
        .await
    {
        Ok(export) => {
            let json = crate::api::crm::ExportJson::from(export);
            let body = serde_json::to_vec_pretty(&json).unwrap_or_default();
            (
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"customer-{id}.json\""),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                ],
                body,
            )
                .into_response()
        }
        Err(AppError::Forbidden) => (
            StatusCode::FORBIDDEN,
            agent.tr(&state).t("error-admins-only"),
        )
            .into_response(),
        Err(e) => back(id, Err(refusal(&e))),
    }
}
