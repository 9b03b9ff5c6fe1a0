//! One conversation: the thread (messages, notes and what happened), the reply box, the actions
//! and the customer beside it. The live part is also served alone (`fragment=live`) so the page
//! can refresh it when another agent changes something, without touching a half-typed reply.

use std::collections::HashMap;
use std::fmt::Write as _;

use askama::Template;
use axum::extract::{FromRequest as _, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use serde::Deserialize;
use seva_app::AppError;
use seva_app::attachments::NewFile;
use seva_app::conversations::{ConversationPatch, MessageInput};
use seva_app::workspace::ConversationPage as PageData;
use seva_app::workspace::Directory;
use seva_domain::event::ActorKind;
use seva_domain::mail::{Delivery, DeliveryStatus};
use seva_domain::values::parse_tag;
use seva_domain::{
    Attachment, AuthorKind, Change, ConversationId, Customer, Event, Message, MessageId,
    MessageKind, Priority, Status, TeamId, UserId,
};

use super::inbox::{Choice, InboxQuery, Row, rows};
use super::session::Agent;
use super::{Shell, render};
use crate::AppState;
use crate::i18n::Tr;

/// One entry of the thread: a message or something that happened.
pub struct Item {
    pub anchor: String,
    /// customer, reply, note or event
    pub kind: &'static str,
    pub author: String,
    pub when: String,
    pub when_iso: String,
    pub text: String,
    /// Sanitised when stored (ammonia), so it is shown as HTML.
    pub html: Option<String>,
    pub files: Vec<FileLink>,
    /// How a reply that went by email is doing.
    pub delivery: Option<DeliveryLine>,
    /// The link to the raw email, for messages that came or went by email.
    pub source: Option<String>,
    /// The order number the customer gave on the contact form.
    pub order: Option<String>,
}

/// An email reply's delivery, under the reply.
pub struct DeliveryLine {
    /// sending, sent, retrying or failed: the style.
    pub state: &'static str,
    pub text: String,
    /// When it was sent.
    pub when: Option<String>,
    pub when_iso: String,
}

fn delivery_line(
    tr: &Tr<'_>,
    agent: &Agent,
    d: &Delivery,
    now: seva_domain::Timestamp,
) -> DeliveryLine {
    let error = d
        .last_error
        .clone()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| tr.t("delivery-unknown-error"));
    let recipient = ("recipient", d.recipient.as_str());
    let (state, text) = match d.status {
        DeliveryStatus::Sent => ("sent", tr.t_args("delivery-sent", &[recipient])),
        DeliveryStatus::Failed => (
            "failed",
            tr.t_args("delivery-failed", &[recipient, ("error", &error)]),
        ),
        DeliveryStatus::Queued if d.attempts == 0 && d.next_attempt_at > now => {
            ("waiting", tr.t_args("delivery-waiting", &[recipient]))
        }
        DeliveryStatus::Queued if d.attempts == 0 => {
            ("sending", tr.t_args("delivery-sending", &[recipient]))
        }
        DeliveryStatus::Queued => (
            "retrying",
            tr.t_plural(
                "delivery-retrying",
                i64::from(d.attempts),
                &[("tries", &agent.fmt.number(d.attempts)), ("error", &error)],
            ),
        ),
    };
    DeliveryLine {
        state,
        text,
        when: d.sent_at.map(|at| agent.fmt.date_time(at)),
        when_iso: d.sent_at.map(|at| at.to_rfc3339()).unwrap_or_default(),
    }
}

/// An attachment as the thread links to it.
pub struct FileLink {
    pub href: String,
    pub name: String,
    pub size: String,
}

pub struct Fact {
    pub label: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "conversation.html")]
pub struct ConversationPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub subject: String,
    /// The rendered [`LivePart`].
    pub live_html: String,
    pub id: i64,
    pub back: String,
    pub inbox_href: String,
    pub newer: Option<String>,
    pub older: Option<String>,
    pub can_write: bool,
    pub notice: Option<String>,
    pub closed: bool,
}

/// One SLA target in the sidebar.
pub struct SlaLine {
    pub target: String,
    /// `met`, `missed` or `running`: the style.
    pub state: &'static str,
    pub text: String,
}

/// The part of the page that live updates replace.
#[derive(Template)]
#[template(path = "conversation_live.html")]
pub struct LivePart<'a> {
    pub tr: Tr<'a>,
    /// The customer's survey answers on this conversation: scores and comments.
    pub feedback: Vec<String>,
    /// Its SLA targets: which, and met, missed or due when.
    pub sla: Vec<SlaLine>,
    pub csrf: String,
    pub id: i64,
    /// The id as the reader writes numbers.
    pub number: String,
    pub back: String,
    pub subject: String,
    pub status: String,
    pub status_code: &'static str,
    pub priority: String,
    pub priority_code: &'static str,
    pub channel: String,
    pub items: Vec<Item>,
    pub can_write: bool,
    pub statuses: Vec<Choice>,
    pub priorities: Vec<Choice>,
    pub assignees: Vec<Choice>,
    pub teams: Vec<Choice>,
    pub tags: String,
    /// The assignee and team as the pickers' values ("" for none).
    pub assignee_value: String,
    pub team_value: String,
    pub customer_name: String,
    pub customer_facts: Vec<Fact>,
    pub other_conversations: Vec<Row>,
    /// The customer's most recent orders.
    pub orders: Vec<OrderRow>,
    pub customer_href: String,
    /// The orders this conversation is about, with their lines for a request.
    pub linked: Vec<LinkedOrder>,
    /// Returns, exchanges and refunds on the linked orders.
    pub requests: Vec<super::customers::RequestRow>,
    pub presence: String,
    pub assigned_to_me: bool,
    /// What the last action did, when the part answers one.
    pub notice: Option<String>,
}

/// One of the customer's orders in the sidebar.
pub struct OrderRow {
    pub id: i64,
    pub linked: bool,
    pub number: String,
    pub total: String,
    pub when: String,
    pub when_iso: String,
    pub payment: String,
    pub fulfilment: String,
    pub cancelled: bool,
}

/// An order the conversation is about, and what a request on it may name.
pub struct LinkedOrder {
    pub id: i64,
    pub number: String,
    pub lines: Vec<Choice>,
}

/// The conversation's linked orders (with lines) and the requests on them.
async fn linked_orders(
    state: &AppState,
    agent: &Agent,
    tr: &Tr<'_>,
    conversation: ConversationId,
) -> Result<(Vec<LinkedOrder>, Vec<super::customers::RequestRow>), AppError> {
    let mut linked = Vec::new();
    for o in state.app.linked_orders(&agent.caller, conversation).await? {
        let o = state.app.order(&agent.caller, o.id).await?;
        linked.push(o);
    }
    let ids: Vec<_> = linked.iter().map(|o| o.id).collect();
    let requests = state
        .app
        .requests_of_orders(&agent.caller, &ids)
        .await?
        .iter()
        .map(|r| {
            let number = linked
                .iter()
                .find(|o| o.id == r.order_id)
                .map_or_else(String::new, |o| o.number.clone());
            super::customers::request_row(tr, agent, r, &number)
        })
        .collect();
    let linked = linked
        .into_iter()
        .map(|o| LinkedOrder {
            id: o.id.0,
            lines: o
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| Choice {
                    value: i.to_string(),
                    label: format!("{} × {}", agent.fmt.number(l.quantity), l.title),
                    selected: i == 0,
                })
                .collect(),
            number: o.number,
        })
        .collect();
    Ok((linked, requests))
}

/// The sidebar's orders (marked when linked), the linked orders and their requests.
async fn sidebar_commerce(
    state: &AppState,
    agent: &Agent,
    tr: &Tr<'_>,
    customer: seva_domain::CustomerId,
    conversation: ConversationId,
) -> Result<SidebarCommerce, AppError> {
    let mut orders = sidebar_orders(state, agent, tr, customer).await?;
    let (linked, requests) = linked_orders(state, agent, tr, conversation).await?;
    for o in &mut orders {
        o.linked = linked.iter().any(|l| l.id == o.id);
    }
    Ok((orders, linked, requests))
}

type SidebarCommerce = (
    Vec<OrderRow>,
    Vec<LinkedOrder>,
    Vec<super::customers::RequestRow>,
);

/// Orders the sidebar shows.
const SIDEBAR_ORDERS: i64 = 5;

async fn sidebar_orders(
    state: &AppState,
    agent: &Agent,
    tr: &Tr<'_>,
    customer: seva_domain::CustomerId,
) -> Result<Vec<OrderRow>, AppError> {
    let orders = state
        .app
        .recent_orders(&agent.caller, customer, SIDEBAR_ORDERS)
        .await?;
    Ok(orders
        .into_iter()
        .map(|o| OrderRow {
            id: o.id.0,
            linked: false,
            total: agent.fmt.money(o.total, &o.currency),
            when: agent.fmt.date(o.placed_at),
            when_iso: o.placed_at.to_rfc3339(),
            payment: tr.t(&format!("payment-{}", o.payment_status)),
            fulfilment: tr.t(&format!("fulfilment-{}", o.fulfilment_status)),
            cancelled: o.status == seva_domain::commerce::OrderStatus::Cancelled,
            number: o.number,
        })
        .collect())
}

fn actor_name(tr: &Tr<'_>, event: &Event, directory: &Directory, customer: &str) -> String {
    match (event.actor.kind, event.actor.id) {
        (ActorKind::User, Some(id)) => directory
            .user_name(UserId(id))
            .map_or_else(|| tr.t("someone"), str::to_owned),
        (ActorKind::Customer, _) => customer.to_owned(),
        _ => tr.t("app-name"),
    }
}

/// What an event says in the thread, or `None` for events the thread already shows otherwise.
fn describe(
    tr: &Tr<'_>,
    fmt: super::format::Format,
    change: &Change,
    actor: &str,
    directory: &Directory,
) -> Option<String> {
    let user = |id: Option<UserId>| id.and_then(|id| directory.user_name(id).map(str::to_owned));
    let team = |id: Option<TeamId>| id.and_then(|id| directory.team_name(id).map(str::to_owned));
    let a = ("actor", actor);
    Some(match change {
        Change::ConversationCreated { channel, .. } => tr.t1(
            "event-created",
            "channel",
            &tr.t(&format!("channel-{channel}")),
        ),
        Change::StatusChanged { to, .. } => tr.t_args(
            "event-status",
            &[a, ("status", &tr.t(&format!("status-{to}")))],
        ),
        Change::PriorityChanged { to, .. } => tr.t_args(
            "event-priority",
            &[a, ("priority", &tr.t(&format!("priority-{to}")))],
        ),
        Change::Assigned { to, .. } => match user(*to) {
            Some(name) => tr.t_args("event-assigned", &[a, ("assignee", &name)]),
            None => tr.t_args("event-unassigned", &[a]),
        },
        Change::TeamChanged { to, .. } => match team(*to) {
            Some(name) => tr.t_args("event-team", &[a, ("team", &name)]),
            None => tr.t_args("event-team-removed", &[a]),
        },
        Change::BrandChanged { to, .. } => tr.t_args(
            "event-brand",
            &[
                a,
                (
                    "brand",
                    to.and_then(|b| directory.brand_name(b)).unwrap_or("-"),
                ),
            ],
        ),
        Change::TagsChanged { added, removed } => {
            let mut parts: Vec<String> = added.iter().map(|t| format!("+{t}")).collect();
            parts.extend(removed.iter().map(|t| format!("−{t}")));
            tr.t_args("event-tags", &[a, ("tags", &parts.join(" "))])
        }
        Change::SubjectChanged { to, .. } => tr.t_args(
            "event-subject",
            &[a, ("subject", to.as_deref().unwrap_or("-"))],
        ),
        Change::OrderLinked { number, .. } => {
            tr.t_args("event-order-linked", &[a, ("number", number)])
        }
        Change::OrderRequestRecorded { kind, .. } => tr.t_args(
            "event-request",
            &[a, ("kind", &tr.t(&format!("request-kind-{kind}")))],
        ),
        Change::OrderRequestChanged { to, .. } => tr.t_args(
            "event-request-status",
            &[a, ("status", &tr.t(&format!("request-status-{to}")))],
        ),
        Change::SurveySent { .. }
        | Change::SurveyAnswered { .. }
        | Change::SurveyCommented { .. } => return survey_event(tr, fmt, change, actor),
        Change::MessageAdded { .. }
        | Change::CustomerCreated { .. }
        | Change::CustomerUpdated { .. }
        | Change::IdentityAdded { .. }
        | Change::OrderRecorded { .. }
        | Change::CustomerTagsChanged { .. }
        | Change::CustomerNoteAdded { .. }
        | Change::CustomerMerged { .. }
        | Change::CustomerExported
        | Change::CustomerErased => return None,
    })
}

/// A survey's answers in one line: "CSAT 4/5 · NPS 9/10 — the comment".
fn feedback_line(
    tr: &Tr<'_>,
    fmt: super::format::Format,
    s: &seva_domain::survey::Survey,
) -> String {
    let scores: Vec<String> = s
        .asks
        .iter()
        .filter_map(|&k| {
            s.score(k).map(|v| {
                format!(
                    "{} {}/{}",
                    tr.t(&format!("survey-kind-{k}")),
                    fmt.number(v),
                    fmt.number(k.scale().end())
                )
            })
        })
        .collect();
    let mut line = scores.join(" · ");
    if let Some(comment) = &s.comment {
        let _ = write!(line, " — “{comment}”");
    }
    line
}

/// What a survey event says, on the thread and on the customer's timeline.
pub(crate) fn survey_event(
    tr: &Tr<'_>,
    fmt: super::format::Format,
    change: &Change,
    actor: &str,
) -> Option<String> {
    let a = ("actor", actor);
    Some(match change {
        Change::SurveySent { asks, channel, .. } => {
            let asks: Vec<String> = asks
                .iter()
                .map(|k| tr.t(&format!("survey-kind-{k}")))
                .collect();
            tr.t_args(
                "event-survey-sent",
                &[
                    ("questions", &asks.join(", ")),
                    ("channel", &tr.t(&format!("survey-channel-{channel}"))),
                ],
            )
        }
        Change::SurveyAnswered { kind, score, .. } => tr.t_args(
            "event-survey-answered",
            &[
                a,
                ("question", &tr.t(&format!("survey-kind-{kind}"))),
                ("score", &fmt.number(score)),
                ("top", &fmt.number(kind.scale().end())),
            ],
        ),
        Change::SurveyCommented { .. } => tr.t_args("event-survey-commented", &[a]),
        _ => return None,
    })
}

fn size_text(tr: &Tr<'_>, agent: &Agent, bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        let tenths = bytes * 10 / (1024 * 1024);
        let mb = format!("{}.{}", tenths / 10, tenths % 10);
        tr.t1("size-mb", "size", &agent.fmt.digits(&mb))
    } else {
        tr.t1("size-kb", "size", &agent.fmt.number(bytes.div_ceil(1024)))
    }
}

#[allow(clippy::too_many_arguments)] // the page's parts, read once and passed along
fn thread(
    tr: &Tr<'_>,
    agent: &Agent,
    messages: Vec<Message>,
    events: &[Event],
    attachments: Vec<Attachment>,
    mail: seva_app::mail::MailDetails,
    directory: &Directory,
    customer: &str,
) -> Vec<Item> {
    let seva_app::mail::MailDetails {
        deliveries,
        sources,
        order_numbers,
        now,
    } = mail;
    let mut orders: HashMap<MessageId, String> = order_numbers.into_iter().collect();
    // Ordered by outbox id: a later row for the same message wins.
    let deliveries: HashMap<MessageId, Delivery> =
        deliveries.into_iter().map(|d| (d.message_id, d)).collect();
    let mut files: HashMap<MessageId, Vec<FileLink>> = HashMap::new();
    for a in attachments {
        files.entry(a.message_id).or_default().push(FileLink {
            href: format!("/attachments/{}", a.id.0),
            size: size_text(tr, agent, a.size),
            name: a.filename,
        });
    }
    let mut items: Vec<(seva_domain::Timestamp, i64, Item)> = messages
        .into_iter()
        .map(|m| {
            let author = match m.author_kind {
                AuthorKind::Customer => customer.to_owned(),
                _ => m
                    .author_user_id
                    .and_then(|id| directory.user_name(id))
                    .map_or_else(|| tr.t("app-name"), str::to_owned),
            };
            let kind = match m.kind {
                MessageKind::Customer => "customer",
                MessageKind::Reply => "reply",
                MessageKind::Note => "note",
            };
            (
                m.created_at,
                0,
                Item {
                    anchor: format!("m{}", m.id.0),
                    kind,
                    author,
                    when: agent.fmt.date_time(m.created_at),
                    when_iso: m.created_at.to_rfc3339(),
                    files: files.remove(&m.id).unwrap_or_default(),
                    delivery: deliveries
                        .get(&m.id)
                        .map(|d| delivery_line(tr, agent, d, now)),
                    order: orders
                        .remove(&m.id)
                        .map(|o| tr.t1("form-order-number", "order", &o)),
                    source: sources
                        .contains(&m.id)
                        .then(|| format!("/messages/{}/source", m.id.0)),
                    text: m.text,
                    html: m.html,
                },
            )
        })
        .collect();
    for event in events {
        let actor = actor_name(tr, event, directory, customer);
        if let Some(text) = describe(tr, agent.fmt, &event.change, &actor, directory) {
            items.push((
                event.at,
                1,
                Item {
                    anchor: format!("e{}", event.id.0),
                    kind: "event",
                    author: actor,
                    when: agent.fmt.date_time(event.at),
                    when_iso: event.at.to_rfc3339(),
                    text,
                    html: None,
                    files: Vec::new(),
                    delivery: None,
                    source: None,
                    order: None,
                },
            ));
        }
    }
    // A message and the events it caused share a time: the message first.
    items.sort_by_key(|(at, order, _)| (*at, *order));
    items.into_iter().map(|(_, _, item)| item).collect()
}

pub(crate) fn customer_facts(tr: &Tr<'_>, agent: &Agent, customer: &Customer) -> Vec<Fact> {
    let mut facts: Vec<Fact> = customer
        .identities
        .iter()
        .map(|i| Fact {
            label: tr.t(&format!("identity-{}", i.kind)),
            value: i.value.clone(),
        })
        .collect();
    if let Some(language) = &customer.language {
        facts.push(Fact {
            label: tr.t("language"),
            value: language.clone(),
        });
    }
    for (key, value) in &customer.attributes {
        facts.push(Fact {
            label: key.clone(),
            value: match value {
                seva_domain::AttributeValue::Text(s) => s.clone(),
                other => serde_json::to_string(other).unwrap_or_default(),
            },
        });
    }
    facts.push(Fact {
        label: tr.t("customer-since"),
        value: agent.fmt.date(customer.created_at),
    });
    facts
}

/// Who else is here: agents viewing or typing, and a chat's visitor typing.
pub fn presence_text(
    tr: &Tr<'_>,
    viewers: &[seva_app::live::Viewer],
    visitor_typing: bool,
) -> String {
    let mut parts: Vec<String> = viewers
        .iter()
        .map(|v| {
            tr.t1(
                if v.typing {
                    "presence-typing"
                } else {
                    "presence-viewing"
                },
                "name",
                &v.name,
            )
        })
        .collect();
    if visitor_typing {
        parts.push(tr.t("presence-visitor-typing"));
    }
    parts.join(" · ")
}

fn team_choices(tr: &Tr<'_>, directory: &Directory, current: Option<TeamId>) -> Vec<Choice> {
    let mut teams = vec![Choice {
        value: String::new(),
        label: tr.t("no-team"),
        selected: current.is_none(),
    }];
    teams.extend(directory.teams.iter().map(|t| Choice {
        value: t.id.0.to_string(),
        label: t.name.clone(),
        selected: current == Some(t.id),
    }));
    teams
}

/// Who a conversation can be assigned to: active agents who can write, and the current
/// assignee.
fn assignee_choices(tr: &Tr<'_>, directory: &Directory, current: Option<UserId>) -> Vec<Choice> {
    let mut assignees = vec![Choice {
        value: String::new(),
        label: tr.t("unassigned"),
        selected: current.is_none(),
    }];
    assignees.extend(
        directory
            .users
            .iter()
            // The current assignee stays pickable even if they no longer could be chosen, so
            // saving another field does not unassign the conversation.
            .filter(|u| (u.active && u.role.can_write()) || current == Some(u.id))
            .map(|u| Choice {
                value: u.id.0.to_string(),
                label: u.name.clone(),
                selected: current == Some(u.id),
            }),
    );
    assignees
}

/// The conversation's SLA targets, for the sidebar: met when, missed when, or due when.
async fn sla_lines(
    state: &AppState,
    agent: &Agent,
    tr: &Tr<'_>,
    id: ConversationId,
) -> Result<Vec<SlaLine>, AppError> {
    let now = state.app.now();
    Ok(state
        .app
        .conversation_sla(id)
        .await?
        .iter()
        .map(|t| {
            let state = t.state(now);
            let text = match (state, t.settled) {
                ("met", Some(at)) => tr.t1("sla-met-at", "time", &agent.fmt.date_time(at)),
                ("missed", Some(at)) => tr.t1("sla-missed-at", "time", &agent.fmt.date_time(at)),
                (_, Some(at)) => tr.t1("sla-due-at", "time", &agent.fmt.date_time(at)),
                _ => tr.t("sla-paused"),
            };
            SlaLine {
                target: tr.t(&format!("sla-target-{}", t.target)),
                state,
                text,
            }
        })
        .collect())
}

async fn live_part<'a>(
    state: &'a AppState,
    agent: &Agent,
    page: PageData,
    back: &str,
) -> Result<LivePart<'a>, AppError> {
    let tr = agent.tr(state);
    let directory = state.app.directory().await?;
    let mail = state.app.mail_details(page.conversation.id).await?;
    let (orders, linked, requests) =
        sidebar_commerce(state, agent, &tr, page.customer.id, page.conversation.id).await?;
    let feedback = state
        .app
        .conversation_surveys(page.conversation.id)
        .await?
        .iter()
        .filter(|s| s.answered_at.is_some() || s.comment.is_some())
        .map(|s| feedback_line(&tr, agent.fmt, s))
        .collect();
    let sla = sla_lines(state, agent, &tr, page.conversation.id).await?;
    let PageData {
        conversation: c,
        messages,
        events,
        attachments,
        customer,
        others,
    } = page;
    let customer_name = customer
        .name
        .clone()
        .unwrap_or_else(|| tr.t1("customer-number", "id", &agent.fmt.number(customer.id.0)));
    let items = thread(
        &tr,
        agent,
        messages,
        &events,
        attachments,
        mail,
        &directory,
        &customer_name,
    );
    let names = HashMap::from([(customer.id, customer_name.clone())]);
    let others = others.into_iter().map(|o| (o, None)).collect();
    let other_conversations = rows(state, agent, &tr, &directory, &names, others, back);
    let pick = |prefix: &str, codes: &[&str], current: &str| {
        codes
            .iter()
            .map(|code| Choice {
                value: (*code).to_owned(),
                label: tr.t(&format!("{prefix}-{code}")),
                selected: *code == current,
            })
            .collect::<Vec<_>>()
    };
    let assignees = assignee_choices(&tr, &directory, c.assignee_id);
    Ok(LivePart {
        feedback,
        sla,
        csrf: agent.csrf.clone(),
        id: c.id.0,
        number: agent.fmt.number(c.id.0),
        back: back.to_owned(),
        subject: c.subject.clone().unwrap_or_else(|| tr.t("no-subject")),
        status: tr.t(&format!("status-{}", c.status)),
        status_code: c.status.as_str(),
        priority: tr.t(&format!("priority-{}", c.priority)),
        priority_code: c.priority.as_str(),
        channel: tr.t(&format!("channel-{}", c.channel)),
        items,
        can_write: agent.can_write(),
        statuses: pick(
            "status",
            &["open", "pending", "on_hold", "resolved", "closed"],
            c.status.as_str(),
        ),
        priorities: pick(
            "priority",
            &["urgent", "high", "normal", "low"],
            c.priority.as_str(),
        ),
        assignees,
        teams: team_choices(&tr, &directory, c.team_id),
        tags: c.tags.join(", "),
        assignee_value: c.assignee_id.map(|u| u.0.to_string()).unwrap_or_default(),
        team_value: c.team_id.map(|t| t.0.to_string()).unwrap_or_default(),
        customer_name,
        customer_facts: customer_facts(&tr, agent, &customer),
        other_conversations,
        orders,
        customer_href: format!("/customers/{}", customer.id.0),
        linked,
        requests,
        presence: presence_text(
            &tr,
            &state.app.viewers(c.id, agent.caller.user.id),
            state.app.visitor_is_typing(c.id),
        ),
        assigned_to_me: c.assignee_id == Some(agent.caller.user.id),
        notice: None,
        tr,
    })
}

fn not_found(state: &AppState, agent: &Agent) -> Response {
    let tr = agent.tr(state);
    (StatusCode::NOT_FOUND, tr.t("conversation-not-found")).into_response()
}

pub async fn show_conversation(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<i64>,
    Query(q): Query<InboxQuery>,
) -> Response {
    let tr = agent.tr(&state);
    let canonical = q.canonical();
    let back = canonical.to_query_string();
    let page = match state.app.conversation_page(ConversationId(id)).await {
        Ok(page) => page,
        Err(AppError::NotFound("conversation")) => return not_found(&state, &agent),
        Err(e) => return server_error(&e),
    };
    let c = page.conversation.clone();
    let live = match live_part(&state, &agent, page, &back).await {
        Ok(live) => live,
        Err(e) => return server_error(&e),
    };
    if q.fragment.as_deref() == Some("live") {
        return render(&live, StatusCode::OK);
    }
    let (newer, older) = match canonical.filter(&state, &agent).await {
        Some(filter) => state.app.neighbours(&filter, &c).await.unwrap_or_default(),
        None => (None, None),
    };
    let link = |id: ConversationId| format!("/conversations/{}?{}", id.0, &back);
    let notice = q.notice.as_deref().map(|code| notice_text(&tr, code));
    let live_html = match live.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "conversation template failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let page = ConversationPage {
        shell: Shell::new(&agent, &tr, String::new()),
        subject: live.subject.clone(),
        live_html,
        id,
        inbox_href: format!("/inbox?{back}"),
        back: back.clone(),
        newer: newer.map(&link),
        older: older.map(&link),
        can_write: agent.can_write(),
        notice,
        closed: c.status == Status::Closed,
        tr,
    };
    render(&page, StatusCode::OK)
}

fn notice_text(tr: &Tr<'_>, code: &str) -> String {
    tr.t(match code {
        "sent" => "notice-reply-sent",
        "noted" => "notice-note-added",
        "updated" => "notice-updated",
        "empty" => "error-empty-message",
        "closed" => "error-conversation-closed",
        "forbidden" => "error-read-only",
        "too-large" => "error-attachment-too-large",
        "too-many" => "error-too-many-attachments",
        "no-attachments" => "error-attachments-unavailable",
        "order-linked" => "notice-order-linked",
        "request-recorded" => "notice-request-recorded",
        "request-moved" => "notice-request-moved",
        "other-customer" => "error-order-of-another-customer",
        "invalid" => "error-invalid-value",
        "transition" => "error-request-transition",
        _ => "notice-error",
    })
}

fn server_error(e: &AppError) -> Response {
    tracing::error!(error = %e, "conversation page failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "Seva cannot reach its database right now.",
    )
        .into_response()
}

fn back_to(id: i64, back: &str, notice: &str) -> Response {
    let back = InboxQuery::parse(Some(back)).canonical().to_query_string();
    Redirect::to(&format!("/conversations/{id}?{back}&notice={notice}")).into_response()
}

fn refusal(e: &AppError) -> &'static str {
    match e {
        AppError::Forbidden => "forbidden",
        AppError::ConversationClosed | AppError::InvalidTransition(_) => "closed",
        AppError::Invalid(seva_domain::ValueError::Empty { .. }) => "empty",
        AppError::AttachmentTooLarge { .. } => "too-large",
        AppError::TooManyAttachments { .. } => "too-many",
        AppError::AttachmentsUnavailable | AppError::AttachmentStore(_) => "no-attachments",
        AppError::OrderOfAnotherCustomer => "other-customer",
        AppError::Invalid(_) => "invalid",
        AppError::RequestTransition { .. } => "transition",
        _ => "error",
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    back: String,
    #[serde(skip)]
    files: Vec<NewFile>,
}

/// Largest reply request: the text and up to 25 MB of files. Each file is further limited by
/// the app (`MAX_FILE_BYTES`).
pub const MAX_REPLY_BYTES: usize = 26 * 1024 * 1024;

/// Reads a reply sent as a plain form or, with files, as `multipart/form-data`. `Err` carries
/// the notice to show: the request was malformed or too large.
async fn read_reply(state: &AppState, request: Request) -> Result<ReplyForm, &'static str> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        return Form::<ReplyForm>::from_request(request, state)
            .await
            .map(|Form(form)| form)
            .map_err(|_| "error");
    }
    let mut parts = Multipart::from_request(request, state)
        .await
        .map_err(|_| "error")?;
    let mut form = ReplyForm::default();
    while let Some(field) = parts.next_field().await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "too-large"
        } else {
            "error"
        }
    })? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "files" {
            let filename = field.file_name().unwrap_or_default().to_owned();
            let content_type = field.content_type().unwrap_or_default().to_owned();
            let bytes = field.bytes().await.map_err(|_| "too-large")?;
            // A file input left empty still sends an empty part.
            if !(filename.is_empty() && bytes.is_empty()) {
                form.files.push(NewFile {
                    filename,
                    content_type,
                    bytes: bytes.to_vec(),
                });
            }
            continue;
        }
        let value = field.text().await.map_err(|_| "error")?;
        match name.as_str() {
            "csrf" => form.csrf = value,
            "kind" => form.kind = value,
            "text" => form.text = value,
            "back" => form.back = value,
            _ => {}
        }
    }
    Ok(form)
}

/// Sends a reply or adds a note, with files if any. With htmx the answer is the refreshed
/// live part; without it, a redirect back to the page.
pub async fn add_message(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let form = match read_reply(&state, request).await {
        Ok(form) => form,
        Err(notice) => return back_to(id, "", notice),
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let kind = if form.kind == "note" {
        MessageKind::Note
    } else {
        MessageKind::Reply
    };
    let input = MessageInput {
        kind,
        text: form.text.clone(),
        html: None,
        external_id: None,
        created_at: None,
    };
    let outcome = state
        .app
        .add_message_with_files(&agent.caller, ConversationId(id), &input, &form.files, None)
        .await;
    let notice = match &outcome {
        Ok(_) if kind == MessageKind::Note => "noted",
        Ok(_) => "sent",
        Err(AppError::NotFound("conversation")) => return not_found(&state, &agent),
        Err(e) => refusal(e),
    };
    if outcome.is_ok() {
        state
            .app
            .heartbeat(&agent.caller, ConversationId(id), Some(false));
    }
    if headers.contains_key("hx-request") {
        return live_response(&state, &agent, id, &form.back, outcome.is_ok(), notice).await;
    }
    back_to(id, &form.back, notice)
}

/// An attachment, as a download: its own name, its type, never shown inside Seva's pages.
pub async fn download(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<i64>,
) -> Response {
    match state.app.attachment(seva_domain::AttachmentId(id)).await {
        Ok((attachment, bytes)) => {
            let ascii: String = attachment
                .filename
                .chars()
                .map(|c| {
                    if c.is_ascii_graphic() || c == ' ' {
                        c
                    } else {
                        '_'
                    }
                })
                .filter(|c| !matches!(c, '"' | '\\'))
                .collect();
            let encoded: String = attachment
                .filename
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            let disposition =
                format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
            let mut response = (
                [
                    (header::CONTENT_TYPE, attachment.content_type.clone()),
                    (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
                ],
                bytes,
            )
                .into_response();
            if let Ok(value) = axum::http::HeaderValue::from_str(&disposition) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(AppError::NotFound(_)) => {
            let tr = agent.tr(&state);
            (StatusCode::NOT_FOUND, tr.t("attachment-not-found")).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "attachment could not be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                agent.tr(&state).t("error-attachments-unavailable"),
            )
                .into_response()
        }
    }
}

/// A message's raw email (RFC 5322), downloaded as a `.eml` file.
pub async fn download_source(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<i64>,
) -> Response {
    match state.app.message_source(MessageId(id)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "message/rfc822".to_owned()),
                (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"message-{id}.eml\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(AppError::NotFound(_)) => {
            let tr = agent.tr(&state);
            (StatusCode::NOT_FOUND, tr.t("message-source-not-found")).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "a message's source could not be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                agent.tr(&state).t("error-attachments-unavailable"),
            )
                .into_response()
        }
    }
}

/// The refreshed live part for htmx, with the outcome in a header the page script shows.
async fn live_response(
    state: &AppState,
    agent: &Agent,
    id: i64,
    back: &str,
    ok: bool,
    notice: &str,
) -> Response {
    let back = InboxQuery::parse(Some(back)).canonical().to_query_string();
    let page = match state.app.conversation_page(ConversationId(id)).await {
        Ok(page) => page,
        Err(e) => return server_error(&e),
    };
    match live_part(state, agent, page, &back).await {
        Ok(mut live) => {
            live.notice = Some(notice_text(&live.tr, notice));
            let mut response = render(&live, StatusCode::OK);
            if ok {
                response
                    .headers_mut()
                    .insert("x-seva-clear", axum::http::HeaderValue::from_static("1"));
            }
            response
        }
        Err(e) => server_error(&e),
    }
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    status: Option<String>,
    priority: Option<String>,
    /// "" unassigns, "me" is the caller, else a user id.
    assignee: Option<String>,
    team: Option<String>,
    tags: Option<String>,
    /// What the form showed when it was loaded: only fields the agent changed are saved, so
    /// an old form does not undo what others did meanwhile.
    was_status: Option<String>,
    was_priority: Option<String>,
    was_assignee: Option<String>,
    was_team: Option<String>,
    was_tags: Option<String>,
    #[serde(default)]
    back: String,
}

/// `value` unless the form says it showed exactly that.
fn changed<'a>(value: Option<&'a str>, was: Option<&str>) -> Option<&'a str> {
    value.filter(|v| was.is_none_or(|w| w != *v))
}

fn patch_of(form: &ActionForm, agent: &Agent) -> Option<ConversationPatch> {
    let id = |raw: &str| -> Option<Option<i64>> {
        match raw.trim() {
            "" => Some(None),
            n => n.parse().ok().map(Some),
        }
    };
    Some(ConversationPatch {
        status: match changed(form.status.as_deref(), form.was_status.as_deref()) {
            Some(s) => Some(s.parse::<Status>().ok()?),
            None => None,
        },
        priority: match changed(form.priority.as_deref(), form.was_priority.as_deref()) {
            Some(p) => Some(p.parse::<Priority>().ok()?),
            None => None,
        },
        assignee_id: match changed(form.assignee.as_deref(), form.was_assignee.as_deref()) {
            Some("me") => Some(Some(agent.caller.user.id)),
            Some(raw) => Some(id(raw)?.map(UserId)),
            None => None,
        },
        team_id: match changed(form.team.as_deref(), form.was_team.as_deref()) {
            Some(raw) => Some(id(raw)?.map(TeamId)),
            None => None,
        },
        tags: match changed(form.tags.as_deref(), form.was_tags.as_deref()) {
            Some(raw) => Some(
                raw.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| parse_tag(t).ok())
                    .collect::<Option<Vec<_>>>()?,
            ),
            None => None,
        },
        ..ConversationPatch::default()
    })
}

/// Assigns, changes status, priority, team or tags: whichever fields the form carried.
pub async fn update(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<ActionForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return back_to(id, "", "error");
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let notice = match patch_of(&form, &agent) {
        None => "error",
        Some(patch) => match state
            .app
            .update_conversation(&agent.caller, ConversationId(id), &patch)
            .await
        {
            Ok(_) => "updated",
            Err(AppError::NotFound("conversation")) => return not_found(&state, &agent),
            Err(e) => refusal(&e),
        },
    };
    if headers.contains_key("hx-request") {
        return live_response(&state, &agent, id, &form.back, notice == "updated", notice).await;
    }
    back_to(id, &form.back, notice)
}

#[derive(Debug, Deserialize)]
pub struct TypingForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    typing: String,
}

/// The page script says when the agent starts and stops typing a reply.
pub async fn typing(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<TypingForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    // Only an agent who may reply types, and only in a conversation that exists.
    if !agent.can_write() {
        return StatusCode::FORBIDDEN.into_response();
    }
    if state.app.conversation(ConversationId(id)).await.is_err() {
        return not_found(&state, &agent);
    }
    state
        .app
        .heartbeat(&agent.caller, ConversationId(id), Some(form.typing == "1"));
    StatusCode::NO_CONTENT.into_response()
}

// ---- orders and requests from the sidebar ------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OrderForm {
    csrf: String,
    back: String,
    order_id: String,
    kind: String,
    line: String,
    quantity: String,
    reason: String,
    status: String,
    next: String,
}

/// Links one of the customer's orders to the conversation.
pub async fn link_order(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<OrderForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return back_to(id, "", "error");
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let Ok(order) = form.order_id.trim().parse::<i64>() else {
        return back_to(id, &form.back, "error");
    };
    let done = state
        .app
        .link_order(
            &agent.caller,
            ConversationId(id),
            seva_domain::commerce::OrderId(order),
        )
        .await;
    match done {
        Ok(_) => back_to(id, &form.back, "order-linked"),
        Err(e) => back_to(id, &form.back, refusal(&e)),
    }
}

/// Records a return, exchange or refund request for one line of a linked order.
pub async fn add_request(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<OrderForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return back_to(id, "", "error");
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let digits = super::mailboxes::latin_digits(&form.quantity);
    let (Ok(order), Ok(kind), Ok(line), Ok(quantity)) = (
        form.order_id.trim().parse::<i64>(),
        form.kind.parse::<seva_domain::commerce::RequestKind>(),
        form.line.trim().parse::<usize>(),
        digits.trim().parse::<i64>(),
    ) else {
        return back_to(id, &form.back, "invalid");
    };
    let order = match state
        .app
        .order(&agent.caller, seva_domain::commerce::OrderId(order))
        .await
    {
        Ok(o) => o,
        Err(e) => return back_to(id, &form.back, refusal(&e)),
    };
    let Some(l) = order.lines.get(line) else {
        return back_to(id, &form.back, "invalid");
    };
    let input = seva_app::crm::RequestInput {
        order_id: order.id,
        conversation_id: Some(ConversationId(id)),
        kind,
        reason: form.reason,
        items: vec![seva_domain::commerce::RequestItem {
            sku: l.sku.clone(),
            title: l.title.clone(),
            quantity,
        }],
    };
    match state.app.create_order_request(&agent.caller, &input).await {
        Ok(_) => back_to(id, &form.back, "request-recorded"),
        Err(e) => back_to(id, &form.back, refusal(&e)),
    }
}

/// Moves a request along, then goes back to the page it was moved from (a conversation or a
/// customer).
pub async fn move_request(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<OrderForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return Redirect::to("/inbox").into_response();
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    // Only a page of this site, named by kind and number.
    let next = match form
        .next
        .split_once('/')
        .map(|(_, rest)| rest.split_once('/'))
    {
        Some(Some((kind @ ("customers" | "conversations"), n)))
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("/{kind}/{n}")
        }
        _ => "/inbox".to_owned(),
    };
    let code = match form.status.parse::<seva_domain::commerce::RequestStatus>() {
        Ok(to) => match state
            .app
            .set_order_request_status(&agent.caller, seva_domain::commerce::OrderRequestId(id), to)
            .await
        {
            Ok(_) => "request-moved",
            Err(e) => refusal(&e),
        },
        Err(_) => "invalid",
    };
    Redirect::to(&format!("{next}?notice={code}")).into_response()
}
