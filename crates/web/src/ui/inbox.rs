//! The inbox: views (mine, unassigned, my teams, all, saved), filters, search, pages by cursor,
//! and bulk actions on a selection. The list is also served alone (`fragment=list`) so the page
//! can refresh it when something changes.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use serde::{Deserialize, Serialize};
use seva_app::conversations::ConversationPatch;
use seva_app::workspace::Directory;
use seva_domain::values::parse_tag;
use seva_domain::{BrandId, Channel, Conversation, ConversationId, CustomerId, Priority, Status};
use seva_store::conversations::{ConversationCursor, ConversationFilter};
use seva_store::staff::SavedView;

use super::session::Agent;
use super::{Shell, render};
use crate::AppState;
use crate::i18n::Tr;

pub const PAGE_SIZE: u32 = 25;
const SEARCH_LIMIT: u32 = 50;

/// The inbox page's query string. Empty values (a picker left on "any") count as absent.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct InboxQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// A segment's id: conversations of its customers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fragment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
}

fn given(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

impl InboxQuery {
    pub fn parse(raw: Option<&str>) -> Self {
        raw.and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default()
    }

    pub fn view(&self) -> &str {
        match given(self.view.as_ref()) {
            Some(v @ ("mine" | "unassigned" | "teams" | "all")) => v,
            _ => "all",
        }
    }

    /// The view and filters alone: what a saved view keeps and what links carry along.
    pub fn canonical(&self) -> Self {
        let keep = |v: Option<&String>| given(v).map(str::to_owned);
        Self {
            view: Some(self.view().to_owned()),
            status: keep(self.status.as_ref()),
            channel: keep(self.channel.as_ref()),
            brand: keep(self.brand.as_ref()),
            priority: keep(self.priority.as_ref()),
            tag: keep(self.tag.as_ref()),
            segment: keep(self.segment.as_ref()),
            ..Self::default()
        }
    }

    pub fn to_query_string(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }

    fn unresolved() -> Vec<Status> {
        vec![Status::Open, Status::Pending, Status::OnHold]
    }

    fn statuses(&self) -> Vec<Status> {
        match given(self.status.as_ref()) {
            Some("any") => Vec::new(),
            // An unknown status shows the default view rather than everything.
            Some(s) => s.parse().map_or_else(|_| Self::unresolved(), |s| vec![s]),
            None => Self::unresolved(),
        }
    }

    /// The store filter for this query as `agent` sees it; `None` when the view is empty by
    /// definition (an agent in no team looking at "my teams").
    pub async fn filter(&self, state: &AppState, agent: &Agent) -> Option<ConversationFilter> {
        let mut filter = ConversationFilter {
            statuses: self.statuses(),
            channel: given(self.channel.as_ref()).and_then(|c| c.parse::<Channel>().ok()),
            brand: given(self.brand.as_ref())
                .and_then(|b| b.parse().ok())
                .map(BrandId),
            priority: given(self.priority.as_ref()).and_then(|p| p.parse::<Priority>().ok()),
            tag: given(self.tag.as_ref()).and_then(|t| parse_tag(t).ok()),
            ..ConversationFilter::default()
        };
        // An unknown or deleted segment shows nobody rather than everybody.
        if let Some(id) = given(self.segment.as_ref()) {
            let id = id.parse().map(seva_domain::SegmentId).ok()?;
            let segment = state.app.segment(&agent.caller, id).await.ok()?;
            filter.segment = Some((segment.rules, state.app.now()));
        }
        match self.view() {
            "mine" => filter.assignee = Some(Some(agent.caller.user.id)),
            "unassigned" => filter.assignee = Some(None),
            "teams" => {
                filter.teams = state.app.teams_of(&agent.caller).await.ok()?;
                if filter.teams.is_empty() {
                    return None;
                }
            }
            _ => {}
        }
        Some(filter)
    }
}

fn cursor_of(c: &Conversation) -> String {
    format!("{}-{}", seva_store::to_micros(c.last_activity_at), c.id.0)
}

fn parse_cursor(raw: Option<&String>) -> Option<ConversationCursor> {
    let (at, id) = given(raw)?.split_once('-')?;
    Some(ConversationCursor {
        last_activity_at: at.parse().ok()?,
        id: id.parse().ok()?,
    })
}

/// One row of the list, ready to show.
pub struct Row {
    pub id: i64,
    pub href: String,
    pub subject: String,
    pub customer: String,
    pub channel: String,
    pub status: String,
    pub status_code: &'static str,
    pub priority: String,
    pub priority_code: &'static str,
    pub assignee: String,
    pub when: String,
    pub when_full: String,
    pub tags: Vec<String>,
    /// Highlighted search snippet: built by `seva_domain::search::snippet_html`, which escapes
    /// everything but its own `<mark>` tags.
    pub snippet: Option<String>,
}

pub fn rows(
    state: &AppState,
    agent: &Agent,
    tr: &Tr<'_>,
    directory: &Directory,
    names: &HashMap<CustomerId, String>,
    list: Vec<(Conversation, Option<String>)>,
    back: &str,
) -> Vec<Row> {
    let now = state.app.now();
    list.into_iter()
        .map(|(c, snippet)| Row {
            id: c.id.0,
            href: format!("/conversations/{}?{back}", c.id.0),
            subject: c.subject.clone().unwrap_or_else(|| tr.t("no-subject")),
            customer: names.get(&c.customer_id).cloned().unwrap_or_else(|| {
                tr.t1("customer-number", "id", &agent.fmt.number(c.customer_id.0))
            }),
            channel: tr.t(&format!("channel-{}", c.channel)),
            status: tr.t(&format!("status-{}", c.status)),
            status_code: c.status.as_str(),
            priority: tr.t(&format!("priority-{}", c.priority)),
            priority_code: c.priority.as_str(),
            assignee: c
                .assignee_id
                .and_then(|id| directory.user_name(id))
                .map_or_else(|| tr.t("unassigned"), str::to_owned),
            when: agent.fmt.short(c.last_activity_at, now),
            when_full: agent.fmt.date_time(c.last_activity_at),
            tags: c.tags,
            snippet,
        })
        .collect()
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choices(tr: &Tr<'_>, prefix: &str, codes: &[&str], current: Option<&str>) -> Vec<Choice> {
    codes
        .iter()
        .map(|code| Choice {
            value: (*code).to_owned(),
            label: tr.t(&format!("{prefix}-{code}")),
            selected: current == Some(*code),
        })
        .collect()
}

pub struct ViewTab {
    pub href: String,
    pub label: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "inbox.html")]
pub struct InboxPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub heading: String,
    pub views: Vec<ViewTab>,
    pub saved: Vec<(SavedView, bool)>,
    pub statuses: Vec<Choice>,
    pub channels: Vec<Choice>,
    pub priorities: Vec<Choice>,
    pub brands: Vec<Choice>,
    pub view: String,
    pub tag: String,
    pub segments: Vec<Choice>,
    pub searching: bool,
    pub rows: Vec<Row>,
    pub next_page: Option<String>,
    pub first_page: Option<String>,
    pub query: String,
    pub list_url: String,
    pub can_write: bool,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "inbox_list.html")]
pub struct InboxList<'a> {
    pub tr: Tr<'a>,
    pub searching: bool,
    pub rows: Vec<Row>,
    pub next_page: Option<String>,
    pub first_page: Option<String>,
    pub can_write: bool,
}

pub async fn show_inbox(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Query(q): Query<InboxQuery>,
) -> Response {
    let tr = agent.tr(&state);
    let directory = state.app.directory().await.unwrap_or_default();
    let canonical = q.canonical();
    let back = canonical.to_query_string();
    let search = given(q.q.as_ref()).map(str::to_owned);

    let (list, next_page) = load(&state, &agent, &q, search.as_deref(), &canonical).await;
    let first_page = given(q.after.as_ref()).map(|_| format!("/inbox?{back}"));
    let ids: Vec<_> = list.iter().map(|(c, _)| c.customer_id).collect();
    let names = state.app.customer_names(&ids).await.unwrap_or_default();
    let rows = rows(&state, &agent, &tr, &directory, &names, list, &back);

    if q.fragment.as_deref() == Some("list") || headers.contains_key("hx-request") {
        let list = InboxList {
            tr,
            searching: search.is_some(),
            rows,
            next_page,
            first_page,
            can_write: agent.can_write(),
        };
        return render(&list, StatusCode::OK);
    }

    let view = canonical.view().to_owned();
    let views = ["all", "mine", "unassigned", "teams"]
        .iter()
        .map(|v| {
            let mut link = canonical.clone();
            link.view = Some((*v).to_owned());
            ViewTab {
                href: format!("/inbox?{}", link.to_query_string()),
                label: tr.t(&format!("view-{v}")),
                current: search.is_none() && view == *v,
            }
        })
        .collect();
    let saved = state
        .app
        .saved_views(&agent.caller)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            let current =
                search.is_none() && InboxQuery::parse(Some(&v.query)).canonical() == canonical;
            (v, current)
        })
        .collect();
    let mut list_query = q.clone();
    list_query.fragment = Some("list".to_owned());
    list_query.notice = None;
    list_query.n = None;
    let notice = q.notice.as_deref().map(|code| match code {
        "bulk-done" => {
            agent
                .fmt
                .digits(&tr.t_count("notice-bulk-done", "count", i64::from(q.n.unwrap_or(0))))
        }
        "view-saved" => tr.t("notice-view-saved"),
        "view-deleted" => tr.t("notice-view-deleted"),
        _ => tr.t("notice-error"),
    });
    let [statuses, channels, priorities, brands] = pickers(&tr, &q, &directory);
    let page = InboxPage {
        shell: Shell::new(&agent, &tr, search.clone().unwrap_or_default()),
        heading: match &search {
            Some(s) => tr.t1("search-results-for", "query", s),
            None => tr.t(&format!("view-{view}")),
        },
        views,
        saved,
        statuses,
        channels,
        priorities,
        brands,
        view,
        tag: given(q.tag.as_ref()).unwrap_or_default().to_owned(),
        segments: state
            .app
            .segments(&agent.caller)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|s| Choice {
                selected: given(q.segment.as_ref()) == Some(s.id.0.to_string().as_str()),
                value: s.id.0.to_string(),
                label: s.name,
            })
            .collect(),
        searching: search.is_some(),
        rows,
        next_page,
        first_page,
        query: back,
        list_url: format!("/inbox?{}", list_query.to_query_string()),
        can_write: agent.can_write(),
        notice,
        tr,
    };
    render(&page, StatusCode::OK)
}

/// The conversations the inbox shows for `q` (search hits with snippets, or a page of a view)
/// and the link to the next page.
async fn load(
    state: &AppState,
    agent: &Agent,
    q: &InboxQuery,
    search: Option<&str>,
    canonical: &InboxQuery,
) -> (Vec<(Conversation, Option<String>)>, Option<String>) {
    if let Some(search) = search {
        return match state.app.search(search, SEARCH_LIMIT).await {
            Ok(hits) => (
                hits.into_iter()
                    .map(|(c, hit)| (c, Some(hit.snippet_html)))
                    .collect(),
                None,
            ),
            Err(e) => {
                tracing::warn!(error = %e, "inbox search failed");
                (Vec::new(), None)
            }
        };
    }
    let page = match q.filter(state, agent).await {
        Some(filter) => state
            .app
            .list_conversations(&filter, parse_cursor(q.after.as_ref()), PAGE_SIZE)
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "inbox could not list conversations");
                Vec::new()
            }),
        None => Vec::new(),
    };
    let next = (page.len() == PAGE_SIZE as usize)
        .then(|| page.last().map(cursor_of))
        .flatten()
        .map(|cursor| {
            let mut next = canonical.clone();
            next.after = Some(cursor);
            format!("/inbox?{}", next.to_query_string())
        });
    (page.into_iter().map(|c| (c, None)).collect(), next)
}

/// The filter pickers of the inbox page.
fn pickers(tr: &Tr<'_>, q: &InboxQuery, directory: &Directory) -> [Vec<Choice>; 4] {
    let mut statuses = choices(
        tr,
        "status",
        &["open", "pending", "on_hold", "resolved", "closed"],
        given(q.status.as_ref()),
    );
    statuses.push(Choice {
        value: "any".to_owned(),
        label: tr.t("status-any"),
        selected: given(q.status.as_ref()) == Some("any"),
    });
    let channels = choices(
        tr,
        "channel",
        &Channel::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        given(q.channel.as_ref()),
    );
    let priorities = choices(
        tr,
        "priority",
        &["urgent", "high", "normal", "low"],
        given(q.priority.as_ref()),
    );
    let brands = directory
        .brands
        .iter()
        .map(|b| Choice {
            value: b.id.0.to_string(),
            label: b.name.clone(),
            selected: given(q.brand.as_ref()) == Some(b.id.0.to_string().as_str()),
        })
        .collect();
    [statuses, channels, priorities, brands]
}

// ---- bulk actions ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct BulkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ids: Vec<i64>,
    /// A button's action, or else the one picked from the "more actions" list.
    #[serde(default)]
    action: String,
    #[serde(default)]
    action_more: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    back: String,
}

/// Applies one action to every selected conversation; each is its own transaction, so one
/// refusal (a closed conversation) does not undo the others.
pub async fn bulk(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    form: Result<Form<BulkForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return Redirect::to("/inbox?notice=error").into_response();
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let back = InboxQuery::parse(Some(&form.back)).canonical();
    let mut patch = ConversationPatch::default();
    let mut add_tag = None;
    let action = if form.action.is_empty() {
        form.action_more.as_str()
    } else {
        form.action.as_str()
    };
    match action {
        "assign_me" => patch.assignee_id = Some(Some(agent.caller.user.id)),
        "unassign" => patch.assignee_id = Some(None),
        "resolve" => patch.status = Some(Status::Resolved),
        "close" => patch.status = Some(Status::Closed),
        "open" => patch.status = Some(Status::Open),
        "pending" => patch.status = Some(Status::Pending),
        "tag" => match parse_tag(&form.tag) {
            Ok(tag) => add_tag = Some(tag),
            Err(_) => return redirect_back(&back, "error", 0),
        },
        other => match other.strip_prefix("priority_").map(str::parse::<Priority>) {
            Some(Ok(p)) => patch.priority = Some(p),
            _ => return redirect_back(&back, "error", 0),
        },
    }
    if let Some(tag) = add_tag {
        // Added inside each conversation's transaction: a concurrent tag edit is kept.
        patch.add_tags = vec![tag];
    }
    let mut done = 0;
    for id in form.ids.iter().take(PAGE_SIZE as usize * 4) {
        let id = ConversationId(*id);
        match state
            .app
            .update_conversation(&agent.caller, id, &patch)
            .await
        {
            Ok(_) => done += 1,
            Err(seva_app::AppError::Forbidden) => return redirect_back(&back, "error", 0),
            Err(e) => tracing::info!(error = %e, conversation = id.0, "bulk action skipped one"),
        }
    }
    redirect_back(&back, "bulk-done", done)
}

fn redirect_back(back: &InboxQuery, notice: &str, n: u32) -> Response {
    let mut to = back.clone();
    to.notice = Some(notice.to_owned());
    to.n = Some(n);
    Redirect::to(&format!("/inbox?{}", to.to_query_string())).into_response()
}

// ---- saved views ----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct SaveViewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    query: String,
}

pub async fn save_view(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    form: Result<Form<SaveViewForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return Redirect::to("/inbox?notice=error").into_response();
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let query = InboxQuery::parse(Some(&form.query)).canonical();
    match state
        .app
        .save_view(&agent.caller, &form.name, &query.to_query_string())
        .await
    {
        Ok(_) => redirect_back(&query, "view-saved", 0),
        Err(_) => redirect_back(&query, "error", 0),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn delete_view(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<CsrfForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&csrf)) {
        return refused;
    }
    let notice = match state.app.delete_view(&agent.caller, id).await {
        Ok(()) => "view-deleted",
        Err(_) => "error",
    };
    redirect_back(&InboxQuery::default().canonical(), notice, 0)
}
