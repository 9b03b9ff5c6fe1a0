//! The agent's own preferences: interface language, time zone and digits.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use serde::Deserialize;
use seva_domain::Digits;

use super::format::{is_time_zone, time_zones};
use super::inbox::Choice;
use super::session::Agent;
use super::{Shell, render};
use crate::AppState;
use crate::i18n::{LANGUAGES, Tr};

#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage<'a> {
    pub shell: Shell,
    pub tr: Tr<'a>,
    pub languages: Vec<Choice>,
    pub time_zones: Vec<Choice>,
    pub digits: Vec<Choice>,
    pub notice: Option<String>,
    pub example: String,
    /// Admins also get the links to the shop's settings.
    pub is_admin: bool,
}

#[derive(Debug, Deserialize)]
pub struct SettingsQuery {
    notice: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    agent: Agent,
    Query(q): Query<SettingsQuery>,
) -> Response {
    let tr = agent.tr(&state);
    let user = &agent.caller.user;
    let mut languages = vec![Choice {
        value: String::new(),
        label: tr.t("language-browser"),
        selected: user.language.is_none(),
    }];
    languages.extend(LANGUAGES.iter().map(|(code, _, _)| Choice {
        value: (*code).to_owned(),
        label: tr.language_name(code),
        selected: user.language.as_deref() == Some(*code),
    }));
    let current_tz = user.time_zone.as_deref().unwrap_or("UTC");
    let time_zones = time_zones()
        .map(|name| Choice {
            value: name.to_owned(),
            label: name.to_owned(),
            selected: name == current_tz,
        })
        .collect();
    let digits = [
        ("", "digits-default"),
        ("latn", "digits-latin"),
        ("native", "digits-native"),
    ]
    .iter()
    .map(|(value, key)| Choice {
        value: (*value).to_owned(),
        label: tr.t(key),
        selected: user.digits.map_or("", |d| d.as_str()) == *value,
    })
    .collect();
    let page = SettingsPage {
        shell: Shell::new(&agent, &tr, String::new()),
        languages,
        time_zones,
        digits,
        notice: q.notice.map(|n| {
            if n == "saved" {
                tr.t("notice-settings-saved")
            } else {
                tr.t("notice-error")
            }
        }),
        example: agent.fmt.date_time(state.app.now()),
        is_admin: user.role == seva_domain::Role::Admin,
        tr,
    };
    render(&page, StatusCode::OK)
}

#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    digits: String,
}

pub async fn save(
    State(state): State<AppState>,
    agent: Agent,
    headers: HeaderMap,
    form: Result<Form<SettingsForm>, axum_extra::extract::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return Redirect::to("/settings?notice=error").into_response();
    };
    if let Some(refused) = agent.refuse_bad_csrf(&headers, Some(&form.csrf)) {
        return refused;
    }
    let language = match form.language.as_str() {
        "" => None,
        code if LANGUAGES.iter().any(|l| l.0 == code) => Some(code),
        _ => return Redirect::to("/settings?notice=error").into_response(),
    };
    let time_zone = match form.time_zone.as_str() {
        "" | "UTC" => None,
        tz if is_time_zone(tz) => Some(tz),
        _ => return Redirect::to("/settings?notice=error").into_response(),
    };
    let digits = match form.digits.as_str() {
        "" => None,
        d => match d.parse::<Digits>() {
            Ok(d) => Some(d),
            Err(_) => return Redirect::to("/settings?notice=error").into_response(),
        },
    };
    match state
        .app
        .set_preferences(&agent.caller, language, time_zone, digits)
        .await
    {
        Ok(()) => Redirect::to("/settings?notice=saved").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "preferences not saved");
            Redirect::to("/settings?notice=error").into_response()
        }
    }
}
