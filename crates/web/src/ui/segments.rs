//! Segments in the browser: the list with live counts, a form that builds the rules from plain
//! fields, and a segment's page with its members, the CSV export and the inbox filtered to it.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use serde::Deserialize;
use seva_app::AppError;
use seva_domain::segment::{Condition, Rules, Segment};
use seva_domain::{Channel, SegmentId};

use super::customers::CustomerRow;
use super::inbox::Choice;
use super::mailboxes::{NoticeQuery, latin_digits, unavailable};
use super::session::Agent;
use super::{Shell, render};
use crate::AppState;
use crate::i18n::Tr;

pub struct SegmentRow {
    pub href: String,
    pub name: String,
    pub rules: String,
    pub count: String,
}

#[derive(Template)]
#[template(path = "segments.html")]
pub struct SegmentsPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub rows: Vec<SegmentRow>,
    pub form: SegmentForm,
    pub channels: Vec<Choice>,
    pub can_write: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "segment.html")]
pub struct SegmentPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub id: i64,
    pub name: String,
    pub rules: String,
    pub count: String,
    pub members: Vec<CustomerRow>,
    pub can_write: bool,
    /// Supervisors and admins may take the members away as a file.
    pub can_export: bool,
}

/// The form's fields; each filled one becomes a condition.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SegmentForm {
    csrf: String,
    pub name: String,
    pub spent_currency: String,
    pub spent_amount: String,
    pub spent_days: String,
    pub orders_at_least: String,
    pub no_order_days: String,
    pub language: String,
    pub tag: String,
    pub channel: String,
    pub channel_days: String,
    /// "on": had a bad CSAT; with `bad_csat_days`, within that many days.
    pub bad_csat: String,
    pub bad_csat_days: String,
}

impl SegmentForm {
    /// The rules the fields describe; `Err` names the field at fault.
    fn rules(&self) -> Result<Rules, &'static str> {
        let number = |raw: &str, field: &'static str| -> Result<Option<i64>, &'static str> {
            let raw = latin_digits(raw).replace([',', '٬', ' '], "");
            if raw.is_empty() {
                return Ok(None);
            }
            raw.parse().map(Some).map_err(|_| field)
        };
        let days = |raw: &str, field| {
            number(raw, field)?
                .map(|d| u32::try_from(d).map_err(|_| field))
                .transpose()
        };
        let mut all = Vec::new();
        if let Some(amount) = number(&self.spent_amount, "segment-spent")? {
            // Typed in major units (rials, rupees): the currency's exponent makes minor units.
            let currency = seva_domain::commerce::Currency::parse(&self.spent_currency)
                .map_err(|_| "currency")?;
            let minor = amount
                .checked_mul(10_i64.pow(currency.exponent()))
                .ok_or("segment-spent")?;
            all.push(Condition::SpentMoreThan {
                currency: currency.as_str().to_owned(),
                amount: minor,
                days: days(&self.spent_days, "segment-days")?,
            });
        }
        if let Some(count) = number(&self.orders_at_least, "segment-orders-at-least")? {
            all.push(Condition::OrdersAtLeast {
                count: u32::try_from(count).map_err(|_| "segment-orders-at-least")?,
            });
        }
        if let Some(d) = days(&self.no_order_days, "segment-no-order-days")? {
            all.push(Condition::NoOrderWithin { days: d });
        }
        if !self.language.trim().is_empty() {
            all.push(Condition::Language {
                language: self.language.trim().to_owned(),
            });
        }
        if !self.tag.trim().is_empty() {
            all.push(Condition::Tag {
                tag: self.tag.trim().to_owned(),
            });
        }
        if !self.channel.trim().is_empty() {
            all.push(Condition::Contacted {
                channel: self.channel.parse::<Channel>().map_err(|_| "channel")?,
                days: days(&self.channel_days, "segment-days")?,
            });
        }
        if !self.bad_csat.is_empty() {
            all.push(Condition::BadCsat {
                days: days(&self.bad_csat_days, "segment-days")?,
            });
        }
        Ok(Rules { all })
    }
}

/// The rules in words, in the reader's language.
pub fn describe(tr: &Tr<'_>, agent: &Agent, rules: &Rules) -> String {
    rules
        .all
        .iter()
        .map(|c| match c {
            Condition::SpentMoreThan {
                currency,
                amount,
                days,
            } => {
                let money = seva_domain::commerce::Currency::parse(currency)
                    .map_or_else(|_| amount.to_string(), |cur| agent.fmt.money(*amount, &cur));
                match days {
                    Some(d) => tr.t_args(
                        "rule-spent-days",
                        &[("amount", &money), ("days", &agent.fmt.number(d))],
                    ),
                    None => tr.t1("rule-spent", "amount", &money),
                }
            }
            Condition::OrdersAtLeast { count } => {
                tr.t1("rule-orders-at-least", "count", &agent.fmt.number(count))
            }
            Condition::NoOrderWithin { days } => {
                tr.t1("rule-no-order", "days", &agent.fmt.number(days))
            }
            Condition::Language { language } => tr.t1("rule-language", "language", language),
            Condition::Tag { tag } => tr.t1("rule-tag", "tag", tag),
            Condition::Contacted { channel, days } => {
                let channel = tr.t(&format!("channel-{channel}"));
                match days {
                    Some(d) => tr.t_args(
                        "rule-contacted-days",
                        &[("channel", &channel), ("days", &agent.fmt.number(d))],
                    ),
                    None => tr.t1("rule-contacted", "channel", &channel),
                }
            }
            Condition::BadCsat { days } => match days {
                Some(d) => tr.t1("rule-bad-csat-days", "days", &agent.fmt.number(d)),
                None => tr.t("rule-bad-csat"),
            },
        })
        .collect::<Vec<_>>()
        .join(&tr.t("rule-and"))
}

async fn rows(
    state: &AppState,
    agent: &Agent,
    tr: &Tr<'_>,
    segments: Vec<Segment>,
) -> Result<Vec<SegmentRow>, AppError> {
    let mut out = Vec::with_capacity(segments.len());
    for s in segments {
        let count = state
            .app
            .segment_count(&agent.caller, s.rules.clone())
            .await?;
        out.push(SegmentRow {
            href: format!("/segments/{}", s.id.0),
            rules: describe(tr, agent, &s.rules),
            count: agent.fmt.number(count),
            name: s.name,
        });
    }
    Ok(out)
}

fn channel_choices(tr: &Tr<'_>, current: &str) -> Vec<Choice> {
    Channel::ALL
        .iter()
        .map(|c| Choice {
            value: c.as_str().to_owned(),
            label: tr.t(&format!("channel-{c}")),
            selected: c.as_str() == current,
        })
        .collect()
}

async fn list_page(
    state: &AppState,
    agent: &Agent,
    form: SegmentForm,
    notice: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let tr = agent.tr(state);
    let segments = match state.app.segments(&agent.caller).await {
        Ok(s) => s,
        Err(e) => return unavailable(&e),
    };
    let rows = match rows(state, agent, &tr, segments).await {
        Ok(r) => r,
        Err(e) => return unavailable(&e),
    };
    let page = SegmentsPage {
        shell: Shell::new(agent, &tr, String::new()),
        rows,
        channels: channel_choices(&tr, &form.channel),
        form,
        can_write: agent.can_write(),
        notice: notice.map(|n| {
            tr.t(match n {
                "deleted" => "notice-segment-deleted",
                _ => "notice-error",
            })
        }),
        error,
        tr,
    };
    render(&page, status)
}

pub async fn list(
    State(state): State<AppState>,
    agent: Agent,
    Query(q): Query<NoticeQuery>,
) -> Response {
    list_page(
        &state,
        &agent,
        SegmentForm::default(),
        q.notice(),
        None,
        StatusCode::OK,
    )
    .await
}

pub async fn create(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    form: Result<Form<SegmentForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return Redirect::to("/segments?notice=error").into_response();
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let tr = agent.tr(&state);
    let refuse = |message: String| async {
        list_page(
            &state,
            &agent,
            form.clone(),
            None,
            Some(message),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await
    };
    let rules = match form.rules() {
        Ok(r) => r,
        Err(field) => {
            return refuse(tr.t1("error-segment-field", "field", &tr.t(field))).await;
        }
    };
    match state
        .app
        .create_segment(&agent.caller, &form.name, rules)
        .await
    {
        Ok(s) => Redirect::to(&format!("/segments/{}", s.id.0)).into_response(),
        Err(AppError::AlreadyExists(_)) => refuse(tr.t("error-segment-name-taken")).await,
        Err(AppError::Invalid(seva_domain::ValueError::Empty { field: "rules" })) => {
            refuse(tr.t("error-segment-empty")).await
        }
        Err(AppError::Invalid(e)) => {
            refuse(tr.t1("error-segment-invalid", "detail", &e.to_string())).await
        }
        Err(AppError::Forbidden) => refuse(tr.t("error-read-only")).await,
        Err(e) => unavailable(&e),
    }
}

pub async fn show(State(state): State<AppState>, agent: Agent, Path(id): Path<i64>) -> Response {
    let tr = agent.tr(&state);
    let segment = match state.app.segment(&agent.caller, SegmentId(id)).await {
        Ok(s) => s,
        Err(AppError::NotFound(_)) => {
            return (StatusCode::NOT_FOUND, tr.t("segment-not-found")).into_response();
        }
        Err(e) => return unavailable(&e),
    };
    let (count, members) = match (
        state
            .app
            .segment_count(&agent.caller, segment.rules.clone())
            .await,
        state
            .app
            .segment_members(&agent.caller, &segment.rules, None, 100)
            .await,
    ) {
        (Ok(c), Ok(m)) => (c, m),
        (Err(e), _) | (_, Err(e)) => return unavailable(&e),
    };
    let page = SegmentPage {
        shell: Shell::new(&agent, &tr, String::new()),
        id,
        rules: describe(&tr, &agent, &segment.rules),
        name: segment.name,
        count: agent.fmt.number(count),
        members: members
            .iter()
            .map(|c| super::customers::row_of(&tr, &agent, c))
            .collect(),
        can_write: agent.can_write(),
        can_export: matches!(
            agent.caller.user.role,
            seva_domain::Role::Admin | seva_domain::Role::Supervisor
        ),
        tr,
    };
    render(&page, StatusCode::OK)
}

pub async fn export(State(state): State<AppState>, agent: Agent, Path(id): Path<i64>) -> Response {
    match state.app.segment_csv(&agent.caller, SegmentId(id)).await {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"segment-{id}.csv\""),
                ),
            ],
            csv,
        )
            .into_response(),
        Err(AppError::NotFound(_)) => StatusCode::NOT_FOUND.into_response(),
        Err(AppError::Forbidden) => (
            StatusCode::FORBIDDEN,
            agent.tr(&state).t("error-supervisors-only"),
        )
            .into_response(),
        Err(e) => unavailable(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    csrf: String,
}

pub async fn delete(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<DeleteForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&csrf)) {
        return refused;
    }
    match state.app.delete_segment(&agent.caller, SegmentId(id)).await {
        Ok(()) => Redirect::to("/segments?notice=deleted").into_response(),
        Err(_) => Redirect::to("/segments?notice=error").into_response(),
    }
}
