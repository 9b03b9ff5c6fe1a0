//! Surveys for customers and admins: the email with one-click rating links (written here, in
//! the customer's language), the page a link opens (the click itself records the rating, then
//! the other questions and a comment), the portal's prompt, and the admins' settings page.

use std::fmt::Write as _;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use seva_app::AppError;
use seva_app::public::MailText;
use seva_app::surveys::{Invitation, SurveyMail};
use seva_domain::BrandId;
use seva_domain::survey::{Survey, SurveyKind, SurveySettings};

use super::mailboxes::{NoticeQuery, latin_digits, unavailable};
use super::session::Agent;
use super::{Shell, render};
use crate::AppState;
use crate::i18n::{Catalogues, Tr};

/// Writes survey emails in the customer's language, with links to this server.
#[derive(Debug)]
pub struct SurveyWriter {
    pub i18n: Arc<Catalogues>,
    pub public_url: String,
}

/// A question's scale labels: the words for its lowest and highest score.
fn scale_words(tr: &Tr<'_>, kind: SurveyKind) -> (String, String) {
    (
        tr.t(&format!("survey-{kind}-low")),
        tr.t(&format!("survey-{kind}-high")),
    )
}

/// The question as the customer reads it.
fn question(tr: &Tr<'_>, kind: SurveyKind, brand: &str) -> String {
    tr.t1(
        &format!("survey-{kind}-question"),
        "brand",
        &brand_or_us(tr, brand),
    )
}

impl SurveyMail for SurveyWriter {
    fn compose(&self, inv: &Invitation<'_>) -> MailText {
        let lang = self.i18n.negotiate(inv.language, None);
        let tr = self.i18n.tr(lang);
        let s = inv.survey;
        let Some(kind) = s.headline() else {
            return MailText {
                subject: tr.t("survey-mail-subject"),
                body: String::new(),
            };
        };
        let (low, high) = scale_words(&tr, kind);
        let mut body = format!(
            "{}\n\n{}\n\n",
            tr.t("survey-mail-intro"),
            question(&tr, kind, inv.brand)
        );
        // Best score first: the links read as a list from "very satisfied" down.
        for score in kind.scale().rev() {
            let label = if score == *kind.scale().end() {
                format!(" ({high})")
            } else if score == *kind.scale().start() {
                format!(" ({low})")
            } else {
                String::new()
            };
            let _ = writeln!(
                body,
                "{score}{label}: {}/survey/{}/{kind}/{score}?s={}",
                self.public_url, s.id.0, inv.signature
            );
        }
        let _ = write!(body, "\n{}\n", tr.t("survey-mail-footer"));
        let subject = match inv.subject {
            Some(subject) => tr.t1("survey-mail-subject-re", "subject", subject),
            None => tr.t("survey-mail-subject"),
        };
        MailText { subject, body }
    }
}

#[derive(Debug, Deserialize)]
pub struct SignatureQuery {
    #[serde(default)]
    s: String,
    #[serde(default)]
    lang: Option<String>,
}

pub struct QuestionView {
    pub kind: String,
    pub text: String,
    pub low: String,
    pub high: String,
    pub scores: Vec<ScoreView>,
}

pub struct ScoreView {
    pub value: u8,
    pub label: String,
    pub chosen: bool,
}

#[derive(Template)]
#[template(path = "survey.html")]
struct SurveyPage<'a> {
    tr: Tr<'a>,
    /// `None`: the link is not valid, or the survey closed.
    action: Option<String>,
    /// It closed: it takes no more answers.
    closed: bool,
    questions: Vec<QuestionView>,
    comment: String,
    thanks: bool,
    error: Option<String>,
}

fn questions(tr: &Tr<'_>, s: &Survey, brand: &str) -> Vec<QuestionView> {
    s.asks
        .iter()
        .map(|&kind| {
            let (low, high) = scale_words(tr, kind);
            QuestionView {
                kind: kind.to_string(),
                text: question(tr, kind, brand),
                low,
                high,
                scores: kind
                    .scale()
                    .map(|v| ScoreView {
                        value: v,
                        label: super::format::Format::new(tr.lang, None, None).number(v),
                        chosen: s.score(kind) == Some(v),
                    })
                    .collect(),
            }
        })
        .collect()
}

pub(crate) async fn brand_name(state: &AppState, brand: Option<BrandId>) -> String {
    let brands = state.app.brands().await.unwrap_or_default();
    brand
        .and_then(|b| brands.iter().find(|x| x.id == b))
        .or(brands.first())
        .map(|b| b.name.clone())
        .unwrap_or_default()
}

/// The brand named in a question; without any brand, "us" in the reader's language.
fn brand_or_us(tr: &Tr<'_>, brand: &str) -> String {
    if brand.trim().is_empty() {
        tr.t("survey-brand-us")
    } else {
        brand.to_owned()
    }
}

async fn survey_page(
    state: &AppState,
    tr: Tr<'_>,
    survey: &Survey,
    signature: &str,
    thanks: bool,
    error: Option<String>,
) -> Response {
    let brand = brand_name(state, survey.brand_id).await;
    let page = SurveyPage {
        action: Some(format!("/survey/{}?s={signature}", survey.id.0)),
        questions: questions(&tr, survey, &brand),
        comment: survey.comment.clone().unwrap_or_default(),
        thanks,
        error,
        closed: false,
        tr,
    };
    let status = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(&page, status)
}

fn invalid_link(tr: Tr<'_>) -> Response {
    without_form(tr, false)
}

/// The page of a survey that takes no more answers.
fn closed(tr: Tr<'_>) -> Response {
    without_form(tr, true)
}

/// The page without a form: the link is not valid (404), or the survey closed (410).
fn without_form(tr: Tr<'_>, closed: bool) -> Response {
    let page = SurveyPage {
        action: None,
        questions: Vec::new(),
        comment: String::new(),
        thanks: false,
        error: None,
        closed,
        tr,
    };
    let status = if closed {
        StatusCode::GONE
    } else {
        StatusCode::NOT_FOUND
    };
    render(&page, status)
}

fn failed(tr: &Tr<'_>, e: &AppError) -> Response {
    tracing::error!(error = %e, "survey page failed");
    (StatusCode::SERVICE_UNAVAILABLE, tr.t("error-generic")).into_response()
}

/// Whether a request only looks ahead (HEAD, a browser's or mail client's prefetch): it
/// shows the page but records nothing.
fn looks_ahead(method: &axum::http::Method, headers: &HeaderMap) -> bool {
    let prefetch = ["sec-purpose", "purpose", "x-purpose", "x-moz"]
        .iter()
        .any(|name| {
            headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().contains("prefetch"))
        });
    method == axum::http::Method::HEAD || prefetch
}

/// The one-click link: records the rating, then offers the rest.
pub async fn click(
    State(state): State<AppState>,
    method: axum::http::Method,
    headers: HeaderMap,
    Path((id, kind, score)): Path<(i64, String, String)>,
    Query(q): Query<SignatureQuery>,
) -> Response {
    let tr = super::public::language(&state, &headers, q.lang.as_deref());
    if looks_ahead(&method, &headers) {
        return match state.app.survey_by_link(id, &q.s).await {
            Ok(survey) => survey_page(&state, tr, &survey, &q.s, false, None).await,
            Err(AppError::SurveyLinkInvalid) => invalid_link(tr),
            Err(AppError::SurveyClosed) => closed(tr),
            Err(e) => failed(&tr, &e),
        };
    }
    let Ok(kind) = kind.parse::<SurveyKind>() else {
        return invalid_link(tr);
    };
    let score = latin_digits(&score).parse::<i64>().unwrap_or(-1);
    match state.app.answer_survey_by_link(id, &q.s, kind, score).await {
        Ok(survey) => survey_page(&state, tr, &survey, &q.s, true, None).await,
        Err(AppError::SurveyLinkInvalid) => invalid_link(tr),
        Err(AppError::SurveyClosed) => closed(tr),
        Err(AppError::Invalid(_)) => match state.app.survey_by_link(id, &q.s).await {
            Ok(survey) => {
                let error = Some(tr.t("survey-error-score"));
                survey_page(&state, tr, &survey, &q.s, false, error).await
            }
            Err(_) => invalid_link(tr),
        },
        Err(e) => failed(&tr, &e),
    }
}

/// The survey's page without answering (a link to it, or after a refused answer).
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<SignatureQuery>,
) -> Response {
    let tr = super::public::language(&state, &headers, q.lang.as_deref());
    match state.app.survey_by_link(id, &q.s).await {
        Ok(survey) => survey_page(&state, tr, &survey, &q.s, false, None).await,
        Err(AppError::SurveyLinkInvalid) => invalid_link(tr),
        Err(AppError::SurveyClosed) => closed(tr),
        Err(e) => failed(&tr, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AnswerForm {
    csat: String,
    ces: String,
    nps: String,
    comment: String,
}

/// The page's form: the other questions' scores and a comment.
pub async fn answer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<SignatureQuery>,
    form: Result<Form<AnswerForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let tr = super::public::language(&state, &headers, q.lang.as_deref());
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let mut survey = match state.app.survey_by_link(id, &q.s).await {
        Ok(s) => s,
        Err(AppError::SurveyLinkInvalid) => return invalid_link(tr),
        Err(AppError::SurveyClosed) => return closed(tr),
        Err(e) => return failed(&tr, &e),
    };
    for (kind, raw) in [
        (SurveyKind::Csat, &form.csat),
        (SurveyKind::Ces, &form.ces),
        (SurveyKind::Nps, &form.nps),
    ] {
        let raw = latin_digits(raw.trim());
        if raw.is_empty() || !survey.asks.contains(&kind) {
            continue;
        }
        let score = raw.parse::<i64>().unwrap_or(-1);
        survey = match state.app.answer_survey_by_link(id, &q.s, kind, score).await {
            Ok(s) => s,
            Err(AppError::Invalid(_)) => {
                let error = Some(tr.t("survey-error-score"));
                return survey_page(&state, tr, &survey, &q.s, false, error).await;
            }
            // It closed since the page was read.
            Err(AppError::SurveyClosed) => return closed(tr),
            Err(e) => return failed(&tr, &e),
        };
    }
    match state
        .app
        .comment_survey_by_link(id, &q.s, &form.comment)
        .await
    {
        Ok(s) => survey_page(&state, tr, &s, &q.s, true, None).await,
        Err(AppError::Invalid(_)) => {
            let error = Some(tr.t("survey-error-comment"));
            survey_page(&state, tr, &survey, &q.s, false, error).await
        }
        Err(AppError::SurveyClosed) => closed(tr),
        Err(e) => failed(&tr, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PortalAnswer {
    kind: String,
    score: String,
    conversation: i64,
}

/// A rating given on the portal's prompt, by the survey's own customer.
pub async fn portal_answer(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<i64>,
    form: Result<Form<PortalAnswer>, axum_extra::extract::FormRejection>,
) -> Response {
    let Some(customer) = super::public::portal_customer(&state, &jar).await else {
        return Redirect::to("/portal").into_response();
    };
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let back = format!("/portal/conversations/{}", form.conversation);
    let Ok(kind) = form.kind.parse::<SurveyKind>() else {
        return Redirect::to(&back).into_response();
    };
    let score = latin_digits(form.score.trim()).parse().unwrap_or(-1);
    match state
        .app
        .answer_survey_in_portal(customer, id, kind, score)
        .await
    {
        Ok(_) => Redirect::to(&format!("{back}?notice=rated")).into_response(),
        Err(AppError::NotFound(_) | AppError::Invalid(_) | AppError::SurveyClosed) => {
            Redirect::to(&format!("{back}?notice=rating-refused")).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "portal survey answer failed");
            Redirect::to(&format!("{back}?notice=rating-refused")).into_response()
        }
    }
}

/// The portal prompt's questions: the conversation's open surveys not yet fully answered.
pub fn portal_prompts(
    tr: &Tr<'_>,
    surveys: &[Survey],
    brand: &str,
    now: seva_domain::Timestamp,
) -> Vec<PortalPrompt> {
    surveys
        .iter()
        .filter(|s| s.open_at(now))
        .filter_map(|s| {
            let open: Vec<QuestionView> = questions(tr, s, brand)
                .into_iter()
                .filter(|q| q.scores.iter().all(|v| !v.chosen))
                .collect();
            (!open.is_empty()).then_some(PortalPrompt {
                id: s.id.0,
                questions: open,
            })
        })
        .collect()
}

pub struct PortalPrompt {
    pub id: i64,
    pub questions: Vec<QuestionView>,
}

// ---- settings (admins) ------------------------------------------------------------------------

struct SettingsRow {
    /// `0`: the default.
    brand: i64,
    name: String,
    csat: bool,
    ces: bool,
    nps: bool,
    quiet_days: String,
    relationship_nps_days: String,
}

#[derive(Template)]
#[template(path = "survey_settings.html")]
struct SettingsPage<'a> {
    shell: Shell,
    tr: Tr<'a>,
    rows: Vec<SettingsRow>,
    notice: Option<String>,
    error: Option<String>,
}

async fn settings_page(
    state: &AppState,
    agent: &Agent,
    notice: Option<&str>,
    error: Option<String>,
) -> Response {
    let tr = agent.tr(state);
    let (saved, brands) = match (
        state.app.survey_settings(&agent.caller).await,
        state.app.brands().await,
    ) {
        (Ok(s), Ok(b)) => (s, b),
        (Err(AppError::Forbidden), _) => {
            return (StatusCode::FORBIDDEN, tr.t("error-admins-only")).into_response();
        }
        (Err(e), _) | (_, Err(e)) => return unavailable(&e),
    };
    let fmt = agent.fmt;
    let row = |brand: Option<BrandId>, name: String| {
        let s = saved
            .iter()
            .find(|(b, _)| *b == brand)
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        SettingsRow {
            brand: brand.map_or(0, |b| b.0),
            name,
            csat: s.on_resolution.contains(&SurveyKind::Csat),
            ces: s.on_resolution.contains(&SurveyKind::Ces),
            nps: s.on_resolution.contains(&SurveyKind::Nps),
            quiet_days: fmt.number(s.quiet_days),
            relationship_nps_days: s
                .relationship_nps_days
                .map(|d| fmt.number(d))
                .unwrap_or_default(),
        }
    };
    let mut rows = vec![row(None, tr.t("survey-settings-default"))];
    rows.extend(brands.into_iter().map(|b| row(Some(b.id), b.name)));
    let page = SettingsPage {
        shell: Shell::new(agent, &tr, String::new()),
        rows,
        notice: notice.map(|n| {
            tr.t(match n {
                "saved" => "notice-updated",
                _ => "notice-error",
            })
        }),
        error,
        tr,
    };
    let status = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(&page, status)
}

pub async fn settings(
    State(state): State<AppState>,
    agent: Agent,
    Query(q): Query<NoticeQuery>,
) -> Response {
    settings_page(&state, &agent, q.notice(), None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SettingsForm {
    csrf: String,
    brand: i64,
    csat: Option<String>,
    ces: Option<String>,
    nps: Option<String>,
    quiet_days: String,
    relationship_nps_days: String,
}

pub async fn save_settings(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    form: Result<Form<SettingsForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return Redirect::to("/settings/surveys?notice=error").into_response();
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let tr = agent.tr(&state);
    let number = |raw: &str| latin_digits(raw.trim()).parse::<i64>();
    let Ok(quiet_days) = number(&form.quiet_days) else {
        return settings_page(&state, &agent, None, Some(tr.t("survey-error-quiet"))).await;
    };
    let relationship_nps_days = if form.relationship_nps_days.trim().is_empty() {
        None
    } else {
        let Ok(days) = number(&form.relationship_nps_days) else {
            let error = Some(tr.t("survey-error-interval"));
            return settings_page(&state, &agent, None, error).await;
        };
        Some(days)
    };
    let on_resolution = [
        (SurveyKind::Csat, &form.csat),
        (SurveyKind::Ces, &form.ces),
        (SurveyKind::Nps, &form.nps),
    ]
    .into_iter()
    .filter(|(_, on)| on.is_some())
    .map(|(k, _)| k)
    .collect();
    let settings = SurveySettings {
        on_resolution,
        quiet_days,
        relationship_nps_days,
    };
    let brand = (form.brand != 0).then_some(BrandId(form.brand));
    match state
        .app
        .save_survey_settings(&agent.caller, brand, settings)
        .await
    {
        Ok(_) => Redirect::to("/settings/surveys?notice=saved").into_response(),
        Err(AppError::Invalid(e)) => {
            let error = Some(tr.t1("survey-error-settings", "detail", &e.to_string()));
            settings_page(&state, &agent, None, error).await
        }
        Err(AppError::Forbidden) => {
            settings_page(&state, &agent, None, Some(tr.t("error-admins-only"))).await
        }
        Err(AppError::NotFound(_)) => {
            settings_page(&state, &agent, None, Some(tr.t("error-invalid-value"))).await
        }
        Err(e) => unavailable(&e),
    }
}
