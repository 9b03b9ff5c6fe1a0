//! One conversation: the thread (messages, notes and what happened), the reply box, the actions
//! and the customer beside it. The live part is also served alone (`fragment=live`) so the page
//! can refresh it when another agent changes something, without touching a half-typed reply.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use serde::Deserialize;
use seva_app::AppError;
use seva_app::conversations::{ConversationPatch, MessageInput};
use seva_app::workspace::ConversationPage as PageData;
use seva_app::workspace::Directory;
use seva_domain::event::ActorKind;
use seva_domain::values::parse_tag;
use seva_domain::{
    AuthorKind, Change, ConversationId, Customer, Event, Message, MessageKind, Priority, Status,
    TeamId, UserId,
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

/// The part of the page that live updates replace.
#[derive(Template)]
#[template(path = "conversation_live.html")]
pub struct LivePart<'a> {
    pub tr: Tr<'a>,
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
    pub customer_name: String,
    pub customer_facts: Vec<Fact>,
    pub other_conversations: Vec<Row>,
    pub presence: String,
    pub assigned_to_me: bool,
    /// What the last action did, when the part answers one.
    pub notice: Option<String>,
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
fn describe(tr: &Tr<'_>, change: &Change, actor: &str, directory: &Directory) -> Option<String> {
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
        Change::MessageAdded { .. }
        | Change::CustomerCreated { .. }
        | Change::CustomerUpdated { .. }
        | Change::IdentityAdded { .. } => return None,
    })
}

fn thread(
    tr: &Tr<'_>,
    agent: &Agent,
    messages: Vec<Message>,
    events: &[Event],
    directory: &Directory,
    customer: &str,
) -> Vec<Item> {
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
                    text: m.text,
                    html: m.html,
                },
            )
        })
        .collect();
    for event in events {
        let actor = actor_name(tr, event, directory, customer);
        if let Some(text) = describe(tr, &event.change, &actor, directory) {
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
                },
            ));
        }
    }
    // A message and the events it caused share a time: the message first.
    items.sort_by_key(|(at, order, _)| (*at, *order));
    items.into_iter().map(|(_, _, item)| item).collect()
}

fn customer_facts(tr: &Tr<'_>, agent: &Agent, customer: &Customer) -> Vec<Fact> {
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

pub fn presence_text(tr: &Tr<'_>, viewers: &[seva_app::live::Viewer]) -> String {
    viewers
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
        .collect::<Vec<_>>()
        .join(" · ")
}

async fn live_part<'a>(
    state: &'a AppState,
    agent: &Agent,
    page: PageData,
    back: &str,
) -> Result<LivePart<'a>, AppError> {
    let tr = agent.tr(state);
    let directory = state.app.directory().await?;
    let PageData {
        conversation: c,
        messages,
        events,
        customer,
        others,
    } = page;
    let customer_name = customer
        .name
        .clone()
        .unwrap_or_else(|| tr.t1("customer-number", "id", &agent.fmt.number(customer.id.0)));
    let items = thread(&tr, agent, messages, &events, &directory, &customer_name);
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
    let mut assignees = vec![Choice {
        value: String::new(),
        label: tr.t("unassigned"),
        selected: c.assignee_id.is_none(),
    }];
    assignees.extend(
        directory
            .users
            .iter()
            .filter(|u| u.active && u.role.can_write())
            .map(|u| Choice {
                value: u.id.0.to_string(),
                label: u.name.clone(),
                selected: c.assignee_id == Some(u.id),
            }),
    );
    let mut teams = vec![Choice {
        value: String::new(),
        label: tr.t("no-team"),
        selected: c.team_id.is_none(),
    }];
    teams.extend(directory.teams.iter().map(|t| Choice {
        value: t.id.0.to_string(),
        label: t.name.clone(),
        selected: c.team_id == Some(t.id),
    }));
    Ok(LivePart {
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
        teams,
        tags: c.tags.join(", "),
        customer_name,
        customer_facts: customer_facts(&tr, agent, &customer),
        other_conversations,
        presence: presence_text(&tr, &state.app.viewers(c.id, agent.caller.user.id)),
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
        Err(AppError::NotFound(_)) => return not_found(&state, &agent),
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
        _ => "error",
    }
}

#[derive(Debug, Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    back: String,
}

/// Sends a reply or adds a note. With htmx the answer is the refreshed live part; without it,
/// a redirect back to the page.
pub async fn add_message(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<ReplyForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return back_to(id, "", "error");
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
        .add_message(&agent.caller, ConversationId(id), &input, None)
        .await;
    state
        .app
        .heartbeat(&agent.caller, ConversationId(id), Some(false));
    let notice = match &outcome {
        Ok(_) if kind == MessageKind::Note => "noted",
        Ok(_) => "sent",
        Err(AppError::NotFound(_)) => return not_found(&state, &agent),
        Err(e) => refusal(e),
    };
    if headers.contains_key("hx-request") {
        return live_response(&state, &agent, id, &form.back, outcome.is_ok(), notice).await;
    }
    back_to(id, &form.back, notice)
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
    #[serde(default)]
    back: String,
}

fn patch_of(form: &ActionForm, agent: &Agent) -> Option<ConversationPatch> {
    let id = |raw: &str| -> Option<Option<i64>> {
        match raw.trim() {
            "" => Some(None),
            n => n.parse().ok().map(Some),
        }
    };
    Some(ConversationPatch {
        status: match form.status.as_deref() {
            Some(s) => Some(s.parse::<Status>().ok()?),
            None => None,
        },
        priority: match form.priority.as_deref() {
            Some(p) => Some(p.parse::<Priority>().ok()?),
            None => None,
        },
        assignee_id: match form.assignee.as_deref() {
            Some("me") => Some(Some(agent.caller.user.id)),
            Some(raw) => Some(id(raw)?.map(UserId)),
            None => None,
        },
        team_id: match form.team.as_deref() {
            Some(raw) => Some(id(raw)?.map(TeamId)),
            None => None,
        },
        tags: match form.tags.as_deref() {
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
            Err(AppError::NotFound(_)) => return not_found(&state, &agent),
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
    state
        .app
        .heartbeat(&agent.caller, ConversationId(id), Some(form.typing == "1"));
    StatusCode::NO_CONTENT.into_response()
}
