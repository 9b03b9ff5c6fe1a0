//! The admins' business hours settings: schedules (time zone, each weekday's open intervals,
//! holidays) and which brand or team keeps which. Plain forms; saving redirects back.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use serde::Deserialize;
use seva_app::AppError;
use seva_app::hours::{HoursInput, week_texts};
use seva_domain::hours::{BusinessHours, BusinessHoursId, WEEKDAYS};
use seva_domain::{BrandId, TeamId, ValueError};

use super::format::time_zones;
use super::inbox::Choice;
use super::mailboxes::{NoticeQuery, latin_digits, refuse_non_admin, unavailable};
use super::session::Agent;
use super::{Shell, render};
use crate::AppState;
use crate::i18n::Tr;

pub struct HoursRow {
    pub href: String,
    pub name: String,
    pub time_zone: String,
    /// The open days, e.g. "Sat, Sun, Mon".
    pub days: String,
}

/// A brand or team and the schedule it keeps, with the form that changes it.
pub struct UnitRow {
    /// `brand:3` or `team:2`.
    pub unit: String,
    pub kind: String,
    pub name: String,
    pub choices: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "business_hours.html")]
pub struct HoursListPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub rows: Vec<HoursRow>,
    pub units: Vec<UnitRow>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// One weekday's field in the form.
pub struct DayField {
    pub key: &'static str,
    pub label: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "business_hours_form.html")]
pub struct HoursPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub id: Option<i64>,
    pub title: String,
    pub action: String,
    pub name: String,
    pub time_zones: Vec<Choice>,
    pub days: Vec<DayField>,
    pub holidays: String,
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// The form as posted: a field per weekday, named by its key.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HoursForm {
    csrf: String,
    name: String,
    time_zone: String,
    mon: String,
    tue: String,
    wed: String,
    thu: String,
    fri: String,
    sat: String,
    sun: String,
    /// Dates separated by lines, commas or spaces.
    holidays: String,
}

impl HoursForm {
    fn day(&self, key: &str) -> &str {
        match key {
            "mon" => &self.mon,
            "tue" => &self.tue,
            "wed" => &self.wed,
            "thu" => &self.thu,
            "fri" => &self.fri,
            "sat" => &self.sat,
            _ => &self.sun,
        }
    }

    /// The schedule to save; times and dates may be typed in Persian or Devanagari digits.
    fn input(&self) -> HoursInput {
        HoursInput {
            name: self.name.clone(),
            time_zone: self.time_zone.clone(),
            week: WEEKDAYS
                .iter()
                .map(|(day, key)| (*day, latin_digits(self.day(key))))
                .collect(),
            holidays: latin_digits(&self.holidays)
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    fn from_hours(h: &BusinessHours) -> Self {
        let texts = week_texts(&h.schedule);
        let text = |key: &str| {
            texts
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, t)| t.clone())
                .unwrap_or_default()
        };
        Self {
            csrf: String::new(),
            name: h.name.clone(),
            time_zone: h.schedule.time_zone().to_owned(),
            mon: text("mon"),
            tue: text("tue"),
            wed: text("wed"),
            thu: text("thu"),
            fri: text("fri"),
            sat: text("sat"),
            sun: text("sun"),
            holidays: h
                .schedule
                .holidays()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

fn hours_page<'a>(
    state: &'a AppState,
    agent: &Agent,
    id: Option<BusinessHoursId>,
    form: &HoursForm,
) -> HoursPage<'a> {
    let tr = agent.tr(state);
    let current_tz = if form.time_zone.is_empty() {
        agent.caller.user.time_zone.as_deref().unwrap_or("UTC")
    } else {
        form.time_zone.as_str()
    };
    HoursPage {
        shell: Shell::new(agent, &tr, String::new()),
        id: id.map(|i| i.0),
        title: if id.is_some() {
            form.name.clone()
        } else {
            tr.t("new-business-hours")
        },
        action: id.map_or_else(
            || "/settings/business-hours".to_owned(),
            |i| format!("/settings/business-hours/{}", i.0),
        ),
        name: form.name.clone(),
        time_zones: time_zones()
            .map(|name| Choice {
                value: name.to_owned(),
                label: name.to_owned(),
                selected: name == current_tz,
            })
            .collect(),
        days: WEEKDAYS
            .iter()
            .map(|(_, key)| DayField {
                key,
                label: tr.t(&format!("weekday-{key}")),
                value: form.day(key).to_owned(),
            })
            .collect(),
        holidays: form.holidays.clone(),
        notice: None,
        error: None,
        tr,
    }
}

/// What a refused save says, and its status.
fn refusal(tr: &Tr<'_>, e: &AppError) -> (String, StatusCode) {
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;
    match e {
        AppError::Invalid(ValueError::Empty { .. }) => (
            tr.t1("error-mailbox-field-required", "field", &tr.t("hours-name")),
            invalid,
        ),
        AppError::Invalid(ValueError::UnknownValue {
            field: "holiday",
            value,
        }) => (tr.t1("error-hours-holiday", "value", value), invalid),
        AppError::Invalid(ValueError::UnknownValue {
            field: "time zone", ..
        }) => (tr.t("error-hours-time-zone"), invalid),
        AppError::Invalid(ValueError::UnknownValue { value, .. }) => {
            (tr.t1("error-hours-interval", "value", value), invalid)
        }
        AppError::AlreadyExists(_) => (tr.t("error-hours-name-taken"), StatusCode::CONFLICT),
        AppError::Invalid(_) => (tr.t("notice-error"), invalid),
        AppError::Forbidden => (tr.t("error-admins-only"), StatusCode::FORBIDDEN),
        other => {
            tracing::error!(error = %other, "business hours not saved");
            (tr.t("error-generic"), StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

/// The schedules, and which brand or team keeps which.
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
        state.app.business_hours(&agent.caller).await,
        state.app.directory().await,
    ) {
        (Ok(h), Ok(d)) => (h, d),
        (Err(e), _) | (_, Err(e)) => return unavailable(&e),
    };
    let rows = all
        .iter()
        .map(|h| HoursRow {
            href: format!("/settings/business-hours/{}", h.id.0),
            name: h.name.clone(),
            time_zone: h.schedule.time_zone().to_owned(),
            days: WEEKDAYS
                .iter()
                .filter(|(d, _)| !h.schedule.day(*d).is_empty())
                .map(|(_, key)| tr.t(&format!("weekday-{key}")))
                .collect::<Vec<_>>()
                .join(tr.t("list-separator").as_str()),
        })
        .collect();
    let choices = |kept: Option<BusinessHoursId>, none: &str| {
        let mut choices = vec![Choice {
            value: String::new(),
            label: tr.t(none),
            selected: kept.is_none(),
        }];
        choices.extend(all.iter().map(|h| Choice {
            value: h.id.0.to_string(),
            label: h.name.clone(),
            selected: kept == Some(h.id),
        }));
        choices
    };
    let brands = directory.brands.iter().map(|b| UnitRow {
        unit: format!("brand:{}", b.id.0),
        kind: tr.t("brand"),
        name: b.name.clone(),
        choices: choices(b.business_hours_id, "hours-always-open"),
    });
    let teams = directory.teams.iter().map(|t| UnitRow {
        unit: format!("team:{}", t.id.0),
        kind: tr.t("team"),
        name: t.name.clone(),
        choices: choices(t.business_hours_id, "hours-as-brand"),
    });
    let units = brands.chain(teams).collect();
    let (notice, error) = match q.notice() {
        Some("deleted") => (Some(tr.t("notice-hours-deleted")), None),
        Some("assigned") => (Some(tr.t("notice-hours-assigned")), None),
        Some("in_use") => (None, Some(tr.t("error-hours-in-use"))),
        Some(_) => (None, Some(tr.t("notice-error"))),
        None => (None, None),
    };
    let page = HoursListPage {
        shell: Shell::new(&agent, &tr, String::new()),
        rows,
        units,
        notice,
        error,
        tr,
    };
    render(&page, StatusCode::OK)
}

pub async fn new(State(state): State<AppState>, agent: Agent) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    // A new schedule starts as a usual shop week: Monday to Friday, nine to five.
    let usual = "09:00-17:00".to_owned();
    let form = HoursForm {
        mon: usual.clone(),
        tue: usual.clone(),
        wed: usual.clone(),
        thu: usual.clone(),
        fri: usual,
        ..HoursForm::default()
    };
    render(&hours_page(&state, &agent, None, &form), StatusCode::OK)
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
    let id = BusinessHoursId(id);
    let hours = match state.app.business_hours_by_id(&agent.caller, id).await {
        Ok(h) => h,
        Err(AppError::NotFound(_)) => {
            let text = agent.tr(&state).t("hours-not-found");
            return (StatusCode::NOT_FOUND, text).into_response();
        }
        Err(e) => return unavailable(&e),
    };
    let mut page = hours_page(&state, &agent, Some(id), &HoursForm::from_hours(&hours));
    match q.notice() {
        Some("saved") => page.notice = Some(page.tr.t("notice-hours-saved")),
        Some(_) => page.error = Some(page.tr.t("notice-error")),
        None => {}
    }
    render(&page, StatusCode::OK)
}

pub async fn create(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    form: Result<Form<HoursForm>, axum_extra::extract::FormRejection>,
) -> Response {
    save(state, agent, headers, None, form).await
}

pub async fn update(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<HoursForm>, axum_extra::extract::FormRejection>,
) -> Response {
    save(state, agent, headers, Some(BusinessHoursId(id)), form).await
}

async fn save(
    state: AppState,
    agent: Agent,
    headers: HeaderMap,
    id: Option<BusinessHoursId>,
    form: Result<Form<HoursForm>, axum_extra::extract::FormRejection>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let Ok(Form(form)) = form else {
        return Redirect::to("/settings/business-hours?notice=error").into_response();
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let input = form.input();
    let saved = match id {
        Some(id) => {
            state
                .app
                .update_business_hours(&agent.caller, id, &input)
                .await
        }
        None => state.app.create_business_hours(&agent.caller, &input).await,
    };
    match saved {
        Ok(h) => Redirect::to(&format!("/settings/business-hours/{}?notice=saved", h.id.0))
            .into_response(),
        Err(AppError::NotFound(_)) => {
            Redirect::to("/settings/business-hours?notice=error").into_response()
        }
        Err(e) => {
            let mut page = hours_page(&state, &agent, id, &form);
            let (error, status) = refusal(&page.tr, &e);
            page.error = Some(error);
            render(&page, status)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsrfOnly {
    pub(crate) csrf: String,
}

/// Deletes a schedule no brand or team keeps.
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
        .delete_business_hours(&agent.caller, BusinessHoursId(id))
        .await
    {
        Ok(()) => "deleted",
        Err(AppError::InUse(_)) => "in_use",
        Err(AppError::NotFound(_)) => "error",
        Err(e) => return unavailable(&e),
    };
    Redirect::to(&format!("/settings/business-hours?notice={notice}")).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AssignForm {
    csrf: String,
    /// `brand:3` or `team:2`.
    unit: String,
    /// A schedule's id; empty: none.
    hours: String,
}

/// Gives a brand or a team a schedule, or none.
pub async fn assign(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    form: Result<Form<AssignForm>, axum_extra::extract::FormRejection>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let Ok(Form(form)) = form else {
        return Redirect::to("/settings/business-hours?notice=error").into_response();
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let hours = match form.hours.trim() {
        "" => None,
        raw => match raw.parse() {
            Ok(id) => Some(BusinessHoursId(id)),
            Err(_) => return Redirect::to("/settings/business-hours?notice=error").into_response(),
        },
    };
    let result = match form
        .unit
        .split_once(':')
        .map(|(k, v)| (k, v.parse::<i64>()))
    {
        Some(("brand", Ok(id))) => {
            state
                .app
                .set_brand_hours(&agent.caller, BrandId(id), hours)
                .await
        }
        Some(("team", Ok(id))) => {
            state
                .app
                .set_team_hours(&agent.caller, TeamId(id), hours)
                .await
        }
        _ => Err(AppError::NotFound("brand")),
    };
    let notice = match result {
        Ok(()) => "assigned",
        Err(AppError::NotFound(_)) => "error",
        Err(e) => return unavailable(&e),
    };
    Redirect::to(&format!("/settings/business-hours?notice={notice}")).into_response()
}
