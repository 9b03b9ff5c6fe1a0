//! The admins' SLA policies: which conversations each covers (brand, team, channel,
//! priority) and the most its first reply, next replies and resolution may take. Plain forms;
//! saving redirects back.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use serde::Deserialize;
use seva_app::AppError;
use seva_app::sla::PolicyInput;
use seva_app::workspace::Directory;
use seva_domain::sla::{Conditions, SlaPolicy, SlaPolicyId};
use seva_domain::{BrandId, Channel, Priority, TeamId, ValueError};

use super::format::Format;
use super::hours::CsrfOnly;
use super::inbox::Choice;
use super::mailboxes::{NoticeQuery, latin_digits, refuse_non_admin, unavailable};
use super::reports::duration;
use super::session::Agent;
use super::{Shell, render};
use crate::AppState;
use crate::i18n::Tr;

pub struct PolicyRow {
    pub href: String,
    pub position: String,
    pub name: String,
    /// Its conditions in words; "All conversations" when none.
    pub covers: String,
    pub first_reply: String,
    pub next_reply: String,
    pub resolution: String,
    pub clock: String,
}

#[derive(Template)]
#[template(path = "sla_policies.html")]
pub struct PoliciesPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub rows: Vec<PolicyRow>,
    pub notice: Option<String>,
}

pub struct SelectField {
    pub name: &'static str,
    pub label: String,
    pub choices: Vec<Choice>,
}

pub struct TargetField {
    pub name: &'static str,
    pub label: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "sla_policy_form.html")]
pub struct PolicyPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub id: Option<i64>,
    pub title: String,
    pub action: String,
    pub name: String,
    pub position: String,
    pub selects: Vec<SelectField>,
    pub targets: Vec<TargetField>,
    pub business_hours: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// The form as posted; empty fields are "any" (conditions) or "no target".
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PolicyForm {
    csrf: String,
    name: String,
    position: String,
    brand: String,
    team: String,
    channel: String,
    priority: String,
    first_reply_minutes: String,
    next_reply_minutes: String,
    resolution_minutes: String,
    /// Present (`1`) when ticked.
    business_hours: String,
}

impl PolicyForm {
    fn from_policy(p: &SlaPolicy) -> Self {
        let text = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let minutes = |s: Option<i64>| text(s.map(|s| s / 60));
        Self {
            csrf: String::new(),
            name: p.name.clone(),
            position: p.position.to_string(),
            brand: text(p.conditions.brand.map(|b| b.0)),
            team: text(p.conditions.team.map(|t| t.0)),
            channel: p
                .conditions
                .channel
                .map(|c| c.to_string())
                .unwrap_or_default(),
            priority: p
                .conditions
                .priority
                .map(|c| c.to_string())
                .unwrap_or_default(),
            first_reply_minutes: minutes(p.targets.first_reply),
            next_reply_minutes: minutes(p.targets.next_reply),
            resolution_minutes: minutes(p.targets.resolution),
            business_hours: if p.business_hours { "1" } else { "" }.to_owned(),
        }
    }

    /// The policy to save; numbers may be typed in Persian or Devanagari digits.
    fn input(&self) -> Result<PolicyInput, ValueError> {
        fn number<T: std::str::FromStr>(
            field: &'static str,
            raw: &str,
        ) -> Result<Option<T>, ValueError> {
            let raw = latin_digits(raw.trim());
            if raw.is_empty() {
                return Ok(None);
            }
            raw.parse().map(Some).map_err(|_| ValueError::UnknownValue {
                field,
                value: raw.chars().take(40).collect(),
            })
        }
        fn parsed<T: std::str::FromStr<Err = ValueError>>(
            raw: &str,
        ) -> Result<Option<T>, ValueError> {
            (!raw.is_empty()).then(|| raw.parse()).transpose()
        }
        Ok(PolicyInput {
            name: self.name.clone(),
            position: number("position", &self.position)?.unwrap_or(0),
            conditions: Conditions {
                brand: number("brand", &self.brand)?.map(BrandId),
                team: number("team", &self.team)?.map(TeamId),
                channel: parsed(&self.channel)?,
                priority: parsed(&self.priority)?,
            },
            first_reply_minutes: number("first_reply_minutes", &self.first_reply_minutes)?,
            next_reply_minutes: number("next_reply_minutes", &self.next_reply_minutes)?,
            resolution_minutes: number("resolution_minutes", &self.resolution_minutes)?,
            business_hours: !self.business_hours.is_empty(),
        })
    }
}

/// A target in words: "4 h 0 min", or "—" when not set.
fn target_text(tr: &Tr<'_>, fmt: Format, seconds: Option<i64>) -> String {
    #[allow(clippy::cast_precision_loss)]
    seconds.map_or_else(|| "—".to_owned(), |s| duration(tr, fmt, s as f64))
}

/// The form's conditions: brand, team, channel and priority, each with "any".
fn selects(tr: &Tr<'_>, directory: &Directory, form: &PolicyForm) -> Vec<SelectField> {
    let any = |tr: &Tr<'_>, current: &str| Choice {
        value: String::new(),
        label: tr.t("sla-any"),
        selected: current.is_empty(),
    };
    let choice = |value: String, label: String, current: &str| Choice {
        selected: value == current,
        value,
        label,
    };
    let mut brands = vec![any(tr, &form.brand)];
    brands.extend(
        directory
            .brands
            .iter()
            .map(|b| choice(b.id.0.to_string(), b.name.clone(), &form.brand)),
    );
    let mut teams = vec![any(tr, &form.team)];
    teams.extend(
        directory
            .teams
            .iter()
            .map(|t| choice(t.id.0.to_string(), t.name.clone(), &form.team)),
    );
    let mut channels = vec![any(tr, &form.channel)];
    channels.extend(Channel::ALL.iter().map(|c| {
        choice(
            c.as_str().to_owned(),
            tr.t(&format!("channel-{c}")),
            &form.channel,
        )
    }));
    let mut priorities = vec![any(tr, &form.priority)];
    priorities.extend(Priority::ALL.iter().map(|p| {
        choice(
            p.as_str().to_owned(),
            tr.t(&format!("priority-{p}")),
            &form.priority,
        )
    }));
    vec![
        SelectField {
            name: "brand",
            label: tr.t("brand"),
            choices: brands,
        },
        SelectField {
            name: "team",
            label: tr.t("team"),
            choices: teams,
        },
        SelectField {
            name: "channel",
            label: tr.t("sla-channel"),
            choices: channels,
        },
        SelectField {
            name: "priority",
            label: tr.t("sla-priority"),
            choices: priorities,
        },
    ]
}

async fn policy_page<'a>(
    state: &'a AppState,
    agent: &Agent,
    id: Option<SlaPolicyId>,
    form: &PolicyForm,
) -> Result<PolicyPage<'a>, AppError> {
    let tr = agent.tr(state);
    let directory = state.app.directory().await?;
    let selects = selects(&tr, &directory, form);
    let target = |name, key: &str, value: &str| TargetField {
        name,
        label: tr.t1("sla-minutes", "target", &tr.t(key)),
        value: value.to_owned(),
    };
    let targets = vec![
        target(
            "first_reply_minutes",
            "sla-target-first_reply",
            &form.first_reply_minutes,
        ),
        target(
            "next_reply_minutes",
            "sla-target-next_reply",
            &form.next_reply_minutes,
        ),
        target(
            "resolution_minutes",
            "sla-target-resolution",
            &form.resolution_minutes,
        ),
    ];
    Ok(PolicyPage {
        shell: Shell::new(agent, &tr, String::new()),
        id: id.map(|i| i.0),
        title: if id.is_some() {
            form.name.clone()
        } else {
            tr.t("sla-new")
        },
        action: id.map_or_else(
            || "/settings/sla".to_owned(),
            |i| format!("/settings/sla/{}", i.0),
        ),
        name: form.name.clone(),
        position: form.position.clone(),
        selects,
        targets,
        business_hours: !form.business_hours.is_empty(),
        notice: None,
        error: None,
        tr,
    })
}

/// Every policy, in the order they are tried.
pub async fn list(
    State(state): State<AppState>,
    agent: Agent,
    Query(q): Query<NoticeQuery>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let tr = agent.tr(&state);
    let (all, directory) = match (
        state.app.sla_policies(&agent.caller).await,
        state.app.directory().await,
    ) {
        (Ok(p), Ok(d)) => (p, d),
        (Err(e), _) | (_, Err(e)) => return unavailable(&e),
    };
    let fmt = agent.fmt;
    let rows = all
        .iter()
        .map(|p| {
            let c = &p.conditions;
            let mut covers = Vec::new();
            if let Some(b) = c.brand {
                let name = directory.brands.iter().find(|x| x.id == b);
                covers.push(name.map_or_else(|| b.to_string(), |x| x.name.clone()));
            }
            if let Some(t) = c.team {
                let name = directory.teams.iter().find(|x| x.id == t);
                covers.push(name.map_or_else(|| t.to_string(), |x| x.name.clone()));
            }
            if let Some(ch) = c.channel {
                covers.push(tr.t(&format!("channel-{ch}")));
            }
            if let Some(pr) = c.priority {
                covers.push(tr.t(&format!("priority-{pr}")));
            }
            PolicyRow {
                href: format!("/settings/sla/{}", p.id.0),
                position: fmt.number(p.position),
                name: p.name.clone(),
                covers: if covers.is_empty() {
                    tr.t("sla-covers-all")
                } else {
                    covers.join(tr.t("list-separator").as_str())
                },
                first_reply: target_text(&tr, fmt, p.targets.first_reply),
                next_reply: target_text(&tr, fmt, p.targets.next_reply),
                resolution: target_text(&tr, fmt, p.targets.resolution),
                clock: tr.t(if p.business_hours {
                    "kpi-clock-business"
                } else {
                    "kpi-clock-calendar"
                }),
            }
        })
        .collect();
    let notice = match q.notice() {
        Some("deleted") => Some(tr.t("sla-deleted")),
        Some(_) => Some(tr.t("notice-error")),
        None => None,
    };
    let page = PoliciesPage {
        shell: Shell::new(&agent, &tr, String::new()),
        rows,
        notice,
        tr,
    };
    render(&page, StatusCode::OK)
}

pub async fn new(State(state): State<AppState>, agent: Agent) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    // A new policy starts on business hours, as most shops measure.
    let form = PolicyForm {
        business_hours: "1".to_owned(),
        position: "0".to_owned(),
        ..PolicyForm::default()
    };
    match policy_page(&state, &agent, None, &form).await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => unavailable(&e),
    }
}

pub async fn show(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<i64>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let id = SlaPolicyId(id);
    let policy = match state.app.sla_policy(&agent.caller, id).await {
        Ok(p) => p,
        Err(AppError::NotFound(_)) => {
            let text = agent.tr(&state).t("sla-not-found");
            return (StatusCode::NOT_FOUND, text).into_response();
        }
        Err(e) => return unavailable(&e),
    };
    let mut page =
        match policy_page(&state, &agent, Some(id), &PolicyForm::from_policy(&policy)).await {
            Ok(page) => page,
            Err(e) => return unavailable(&e),
        };
    match q.notice() {
        Some("saved") => page.notice = Some(page.tr.t("sla-saved")),
        Some(_) => page.error = Some(page.tr.t("notice-error")),
        None => {}
    }
    render(&page, StatusCode::OK)
}

pub async fn create(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    form: Result<Form<PolicyForm>, axum_extra::extract::FormRejection>,
) -> Response {
    save(state, agent, headers, None, form).await
}

pub async fn update(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<PolicyForm>, axum_extra::extract::FormRejection>,
) -> Response {
    save(state, agent, headers, Some(SlaPolicyId(id)), form).await
}

/// What a refused save says, and its status.
fn refusal(tr: &Tr<'_>, e: &AppError) -> (String, StatusCode) {
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;
    match e {
        AppError::Invalid(ValueError::Empty { field }) if field.starts_with("targets") => {
            (tr.t("sla-error-no-target"), invalid)
        }
        AppError::Invalid(ValueError::Empty { .. }) => (
            tr.t1("error-mailbox-field-required", "field", &tr.t("hours-name")),
            invalid,
        ),
        AppError::Invalid(ValueError::UnknownValue { value, .. }) => {
            (tr.t1("sla-error-number", "value", value), invalid)
        }
        AppError::AlreadyExists(_) => (tr.t("sla-error-name-taken"), StatusCode::CONFLICT),
        AppError::NotFound(_) | AppError::Invalid(_) => (tr.t("notice-error"), invalid),
        AppError::Forbidden => (tr.t("error-admins-only"), StatusCode::FORBIDDEN),
        other => {
            tracing::error!(error = %other, "SLA policy not saved");
            (tr.t("error-generic"), StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

async fn save(
    state: AppState,
    agent: Agent,
    headers: HeaderMap,
    id: Option<SlaPolicyId>,
    form: Result<Form<PolicyForm>, axum_extra::extract::FormRejection>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let Ok(Form(form)) = form else {
        return Redirect::to("/settings/sla?notice=error").into_response();
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let saved = match form.input() {
        Err(e) => Err(AppError::Invalid(e)),
        Ok(input) => match id {
            Some(id) => state.app.update_sla_policy(&agent.caller, id, &input).await,
            None => state.app.create_sla_policy(&agent.caller, &input).await,
        },
    };
    match saved {
        Ok(p) => Redirect::to(&format!("/settings/sla/{}?notice=saved", p.id.0)).into_response(),
        Err(e) => {
            let mut page = match policy_page(&state, &agent, id, &form).await {
                Ok(page) => page,
                Err(e) => return unavailable(&e),
            };
            let (error, status) = refusal(&page.tr, &e);
            page.error = Some(error);
            render(&page, status)
        }
    }
}

/// Deletes a policy; targets it set keep their outcomes.
pub async fn delete(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<CsrfOnly>, axum_extra::extract::FormRejection>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&csrf)) {
        return refused;
    }
    let notice = match state
        .app
        .delete_sla_policy(&agent.caller, SlaPolicyId(id))
        .await
    {
        Ok(()) => "deleted",
        Err(AppError::NotFound(_)) => "error",
        Err(e) => return unavailable(&e),
    };
    Redirect::to(&format!("/settings/sla?notice={notice}")).into_response()
}
