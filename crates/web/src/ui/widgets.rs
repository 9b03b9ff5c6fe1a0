//! The admins' chat widget settings: the list, and the form that adds and edits one, with the
//! tag to copy into the shop's pages and the secret its server signs shoppers with. Plain
//! forms; saving redirects back.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use serde::Deserialize;
use seva_app::AppError;
use seva_app::chat::{AWAY_AFTER_DEFAULT, WidgetInput};
use seva_domain::chat::{Prechat, Widget, WidgetId};
use seva_domain::{BrandId, ValueError};

use super::inbox::Choice;
use super::mailboxes::{NoticeQuery, refuse_non_admin, unavailable};
use super::session::Agent;
use super::{Shell, render};
use crate::AppState;
use crate::i18n::Tr;

pub struct WidgetRow {
    pub href: String,
    pub name: String,
    pub brand: String,
    pub origins: String,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "widgets.html")]
pub struct WidgetsPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub rows: Vec<WidgetRow>,
}

/// What the form shows: the settings as stored or as typed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WidgetForm {
    csrf: String,
    pub name: String,
    pub brand: String,
    /// One origin per line.
    pub origins: String,
    pub color: String,
    pub greeting: String,
    pub prechat: String,
    pub away_after: String,
    pub active: Option<String>,
}

impl WidgetForm {
    fn new_widget() -> Self {
        Self {
            color: "#1a73e8".into(),
            prechat: Prechat::NameEmail.as_str().into(),
            away_after: AWAY_AFTER_DEFAULT.to_string(),
            active: Some("1".into()),
            ..Self::default()
        }
    }

    fn from_widget(w: &Widget) -> Self {
        Self {
            csrf: String::new(),
            name: w.name.clone(),
            brand: w.brand_id.map(|b| b.0.to_string()).unwrap_or_default(),
            origins: w.allowed_origins.join("\n"),
            color: w.color.clone(),
            greeting: w.greeting.clone().unwrap_or_default(),
            prechat: w.prechat.as_str().into(),
            away_after: w.away_after.to_string(),
            active: w.active.then(|| "1".into()),
        }
    }

    /// The settings to save; `Err` names the message to show.
    fn input(&self) -> Result<WidgetInput, &'static str> {
        let brand_id = match self.brand.trim() {
            "" => None,
            raw => Some(BrandId(raw.parse().map_err(|_| "notice-error")?)),
        };
        let away_after = super::mailboxes::ascii_digits(&self.away_after)
            .and_then(|d| d.parse::<u32>().ok())
            .ok_or("error-widget-away-after")?;
        Ok(WidgetInput {
            name: self.name.clone(),
            brand_id,
            allowed_origins: self.origins.lines().map(str::to_owned).collect(),
            color: Some(self.color.clone()),
            greeting: Some(self.greeting.clone()),
            prechat: self.prechat.parse().map_err(|_| "notice-error")?,
            away_after: Some(away_after),
            active: self.active.is_some(),
        })
    }
}

/// How the widget's brand keeps its hours, said in a sentence.
pub struct HoursLine {
    pub text: String,
    pub open: bool,
}

#[derive(Template)]
#[template(path = "widget.html")]
pub struct WidgetPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub id: Option<i64>,
    pub title: String,
    pub action: String,
    pub fields: WidgetForm,
    pub brands: Vec<Choice>,
    pub prechats: Vec<Choice>,
    /// The tag to paste into the shop's pages.
    pub embed: Option<String>,
    pub secret: Option<String>,
    pub hours: Option<HoursLine>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

fn widget_not_found(state: &AppState, agent: &Agent) -> Response {
    (StatusCode::NOT_FOUND, agent.tr(state).t("widget-not-found")).into_response()
}

/// What a refused save says, and its status.
fn refusal(tr: &Tr<'_>, e: &AppError) -> (String, StatusCode) {
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;
    let field_label = |field: &str| match field {
        "name" => tr.t("widget-name"),
        "greeting" => tr.t("widget-greeting"),
        "origin" => tr.t("widget-origins"),
        "color" => tr.t("widget-color"),
        f if f.starts_with("away_after") => tr.t("widget-away-after"),
        _ => tr.t("widgets"),
    };
    match e {
        AppError::Invalid(ValueError::Empty { field }) => (
            tr.t1("error-mailbox-field-required", "field", &field_label(field)),
            invalid,
        ),
        AppError::Invalid(
            ValueError::TooLong { field, .. }
            | ValueError::ControlCharacter { field }
            | ValueError::UnknownValue { field, .. },
        ) => (
            tr.t1("error-mailbox-field-invalid", "field", &field_label(field)),
            invalid,
        ),
        AppError::Forbidden => (tr.t("error-admins-only"), StatusCode::FORBIDDEN),
        AppError::Invalid(_) | AppError::NotFound(_) => (tr.t("notice-error"), invalid),
        other => {
            tracing::error!(error = %other, "widget not saved");
            (tr.t("error-generic"), StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

async fn widget_page<'a>(
    state: &'a AppState,
    agent: &Agent,
    widget: Option<&Widget>,
    fields: WidgetForm,
) -> Result<WidgetPage<'a>, AppError> {
    let tr = agent.tr(state);
    let directory = state.app.directory().await?;
    let mut brands = vec![Choice {
        value: String::new(),
        label: tr.t("mailbox-no-brand"),
        selected: fields.brand.is_empty(),
    }];
    brands.extend(directory.brands.iter().map(|b| Choice {
        value: b.id.0.to_string(),
        label: b.name.clone(),
        selected: fields.brand == b.id.0.to_string(),
    }));
    let prechats = Prechat::ALL
        .iter()
        .map(|p| Choice {
            value: p.as_str().into(),
            label: tr.t(&format!("prechat-{}", p.as_str())),
            selected: fields.prechat == p.as_str(),
        })
        .collect();
    // Not knowing the hours leaves the line out rather than the page.
    let hours = match widget {
        Some(w) => hours_line(state, agent, &tr, w).await.ok(),
        None => None,
    };
    Ok(WidgetPage {
        shell: Shell::new(agent, &tr, String::new()),
        id: widget.map(|w| w.id.0),
        title: widget.map_or_else(|| tr.t("new-widget"), |w| w.name.clone()),
        action: widget.map_or_else(
            || "/settings/widgets".to_owned(),
            |w| format!("/settings/widgets/{}", w.id.0),
        ),
        embed: widget.map(|w| crate::api::widgets::embed_tag(w, &state.config.public_url)),
        secret: widget.map(|w| w.secret.clone()),
        hours,
        fields,
        brands,
        prechats,
        notice: None,
        error: None,
        tr,
    })
}

/// Whether the widget's brand is open now, by its business hours.
async fn hours_line(
    state: &AppState,
    agent: &Agent,
    tr: &Tr<'_>,
    widget: &Widget,
) -> Result<HoursLine, AppError> {
    let availability = state.app.widget_availability(widget).await?;
    let text = match (availability.open, availability.opens_at) {
        (true, _) => tr.t("widget-hours-open"),
        (false, Some(at)) => tr.t1(
            "widget-hours-closed-until",
            "when",
            &agent.fmt.date_time(at),
        ),
        (false, None) => tr.t("widget-hours-closed"),
    };
    Ok(HoursLine {
        text,
        open: availability.open,
    })
}

/// The widgets, with their brand and the sites that may embed them.
pub async fn list(State(state): State<AppState>, agent: Agent) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let tr = agent.tr(&state);
    let (widgets, directory) = match (
        state.app.widgets(&agent.caller).await,
        state.app.directory().await,
    ) {
        (Ok(w), Ok(d)) => (w, d),
        (Err(e), _) | (_, Err(e)) => return unavailable(&e),
    };
    let rows = widgets
        .into_iter()
        .map(|w| WidgetRow {
            href: format!("/settings/widgets/{}", w.id.0),
            brand: w
                .brand_id
                .and_then(|b| directory.brand_name(b))
                .unwrap_or("-")
                .to_owned(),
            origins: if w.allowed_origins.is_empty() {
                tr.t("widget-any-site")
            } else {
                w.allowed_origins.join(", ")
            },
            name: w.name,
            active: w.active,
        })
        .collect();
    let page = WidgetsPage {
        shell: Shell::new(&agent, &tr, String::new()),
        rows,
        tr,
    };
    render(&page, StatusCode::OK)
}

/// The form for a new widget.
pub async fn new(State(state): State<AppState>, agent: Agent) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    match widget_page(&state, &agent, None, WidgetForm::new_widget()).await {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => unavailable(&e),
    }
}

async fn find(state: &AppState, agent: &Agent, id: i64) -> Result<Widget, Response> {
    match state.app.widgets(&agent.caller).await {
        Ok(all) => all
            .into_iter()
            .find(|w| w.id == WidgetId(id))
            .ok_or_else(|| widget_not_found(state, agent)),
        Err(e) => Err(unavailable(&e)),
    }
}

/// One widget: the tag to embed, the signing secret, the hours and the settings.
pub async fn show(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<i64>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let widget = match find(&state, &agent, id).await {
        Ok(w) => w,
        Err(response) => return response,
    };
    match widget_page(
        &state,
        &agent,
        Some(&widget),
        WidgetForm::from_widget(&widget),
    )
    .await
    {
        Ok(mut page) => {
            match q.notice() {
                Some("created") => page.notice = Some(page.tr.t("notice-widget-created")),
                Some("saved") => page.notice = Some(page.tr.t("notice-widget-saved")),
                Some(_) => page.error = Some(page.tr.t("notice-error")),
                None => {}
            }
            render(&page, StatusCode::OK)
        }
        Err(e) => unavailable(&e),
    }
}

async fn form_again(
    state: &AppState,
    agent: &Agent,
    widget: Option<&Widget>,
    form: WidgetForm,
    error: String,
    status: StatusCode,
) -> Response {
    match widget_page(state, agent, widget, form).await {
        Ok(mut page) => {
            page.error = Some(error);
            render(&page, status)
        }
        Err(e) => unavailable(&e),
    }
}

/// Adds a widget and opens its page, with the tag to embed.
pub async fn create(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    form: Result<Form<WidgetForm>, axum_extra::extract::FormRejection>,
) -> Response {
    save(state, agent, headers, None, form).await
}

/// Saves a widget's settings; its key and secret stay.
pub async fn update(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<WidgetForm>, axum_extra::extract::FormRejection>,
) -> Response {
    save(state, agent, headers, Some(id), form).await
}

async fn save(
    state: AppState,
    agent: Agent,
    headers: HeaderMap,
    id: Option<i64>,
    form: Result<Form<WidgetForm>, axum_extra::extract::FormRejection>,
) -> Response {
    if let Some(refused) = refuse_non_admin(&state, &agent) {
        return refused;
    }
    let back = id.map_or_else(
        || "/settings/widgets/new".to_owned(),
        |id| format!("/settings/widgets/{id}"),
    );
    let Ok(Form(form)) = form else {
        return Redirect::to(&format!("{back}?notice=error")).into_response();
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let widget = match id {
        Some(id) => match find(&state, &agent, id).await {
            Ok(w) => Some(w),
            Err(response) => return response,
        },
        None => None,
    };
    let tr = agent.tr(&state);
    let input = match form.input() {
        Ok(input) => input,
        Err(key) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return form_again(&state, &agent, widget.as_ref(), form, tr.t(key), status).await;
        }
    };
    let saved = match &widget {
        Some(w) => state.app.update_widget(&agent.caller, w.id, &input).await,
        None => state.app.create_widget(&agent.caller, &input).await,
    };
    match saved {
        Ok(w) => {
            let notice = if widget.is_some() { "saved" } else { "created" };
            Redirect::to(&format!("/settings/widgets/{}?notice={notice}", w.id.0)).into_response()
        }
        Err(e) => {
            let (error, status) = refusal(&tr, &e);
            form_again(&state, &agent, widget.as_ref(), form, error, status).await
        }
    }
}
