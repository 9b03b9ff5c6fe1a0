//! The signed-in agent of a workspace request: who they are, their CSRF token, their language
//! and how they read dates. Pages ask for `Agent`; without a valid session a page request is
//! sent to the sign-in page.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use seva_app::Caller;

use super::format::Format;
use super::{SESSION_COOKIE, csrf_ok};
use crate::AppState;
use crate::i18n::Tr;

/// The header htmx requests and the page script send the CSRF token in.
pub const CSRF_HEADER: &str = "x-seva-csrf";

#[derive(Debug, Clone)]
pub struct Agent {
    pub caller: Caller,
    pub csrf: String,
    pub lang: &'static str,
    pub fmt: Format,
    /// The session cookie's secret, for checking later that the session still holds.
    pub session: String,
}

impl Agent {
    pub fn tr<'a>(&self, state: &'a AppState) -> Tr<'a> {
        state.i18n.tr(self.lang)
    }

    pub fn can_write(&self) -> bool {
        self.caller.user.role.can_write()
    }

    /// Checks a state-changing request's token (the form field, or the header scripts send);
    /// the refusal to send when it is wrong.
    pub fn refuse_bad_csrf(&self, headers: &HeaderMap, form: Option<&str>) -> Option<Response> {
        let given = form
            .filter(|f| !f.is_empty())
            .or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))
            .unwrap_or_default();
        if csrf_ok(Some(&self.csrf), given) {
            None
        } else {
            Some(
                (
                    StatusCode::FORBIDDEN,
                    [(header::CACHE_CONTROL, "no-store")],
                    "The form expired; reload the page and try again.",
                )
                    .into_response(),
            )
        }
    }
}

impl FromRequestParts<AppState> for Agent {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar
            .get(SESSION_COOKIE)
            .map(|c| c.value().to_owned())
            .unwrap_or_default();
        let session = if token.is_empty() {
            None
        } else {
            state.app.session(&token).await.ok().flatten()
        };
        let Some((caller, csrf)) = session else {
            // htmx follows redirects inside the page; tell it to load the sign-in page instead.
            if parts.headers.contains_key("hx-request") {
                return Err(
                    (StatusCode::UNAUTHORIZED, [("hx-redirect", "/login")], "").into_response()
                );
            }
            return Err(Redirect::to("/login").into_response());
        };
        let accept = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let lang = state
            .i18n
            .negotiate(caller.user.language.as_deref(), accept);
        let fmt = Format::for_user(lang, &caller.user);
        Ok(Self {
            caller,
            csrf,
            lang,
            fmt,
            session: token,
        })
    }
}
