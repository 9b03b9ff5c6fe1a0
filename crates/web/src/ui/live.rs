//! Server-Sent Events for the workspace. An inbox page listens to every change; a conversation
//! page to its conversation's changes and to who else is viewing or typing there. While a
//! conversation page listens, its agent counts as viewing it.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use seva_app::App;
use seva_app::live::Notice;
use seva_domain::ConversationId;
use tokio::sync::broadcast::error::RecvError;

use super::conversation::presence_text;
use super::session::Agent;
use crate::AppState;

#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    conversation: Option<i64>,
}

/// How often a listening page renews its presence and hears who is still there.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// One open stream. Dropping it (the page closed) takes the agent off the conversation.
struct Watch {
    state: AppState,
    agent: Agent,
    conversation: Option<ConversationId>,
    notices: tokio::sync::broadcast::Receiver<Notice>,
    closing: tokio::sync::watch::Receiver<bool>,
    tick: tokio::time::Interval,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(c) = self.conversation {
            self.state.app.unwatch(&self.agent.caller, c);
        }
    }
}

impl Watch {
    fn presence(&self, app: &App, c: ConversationId) -> Event {
        let tr = self.agent.tr(&self.state);
        let viewers = app.viewers(c, self.agent.caller.user.id);
        // JSON, because an event with empty data never reaches the page's listener.
        let text = presence_text(&tr, &viewers, app.visitor_is_typing(c));
        Event::default()
            .event("presence")
            .data(serde_json::json!({ "text": text }).to_string())
    }

    async fn next(&mut self) -> Option<Event> {
        enum Woke {
            Notice(Result<Notice, RecvError>),
            Tick,
            Closing,
        }
        loop {
            let woke = tokio::select! {
                notice = self.notices.recv() => Woke::Notice(notice),
                _ = self.tick.tick() => Woke::Tick,
                _ = self.closing.wait_for(|closing| *closing) => Woke::Closing,
            };
            match woke {
                Woke::Notice(Ok(Notice::Changed(id)))
                    if self.conversation.is_none_or(|c| c == id) =>
                {
                    return Some(Event::default().event("changed").data(id.0.to_string()));
                }
                Woke::Notice(Ok(Notice::Presence(id))) if self.conversation == Some(id) => {
                    return Some(self.presence(&self.state.app, id));
                }
                // Missed notices: the page reloads what it shows.
                Woke::Notice(Ok(Notice::Everything) | Err(RecvError::Lagged(_))) => {
                    return Some(Event::default().event("changed").data("*"));
                }
                Woke::Notice(Ok(_)) => {}
                Woke::Notice(Err(RecvError::Closed)) | Woke::Closing => return None,
                Woke::Tick => {
                    // A stream outlives nothing it was opened with: sign-out, expiry or a
                    // deactivated account end it.
                    if !matches!(
                        self.state.app.session(&self.agent.session).await,
                        Ok(Some(_))
                    ) {
                        return None;
                    }
                    if let Some(c) = self.conversation {
                        self.state.app.heartbeat(&self.agent.caller, c, None);
                        return Some(self.presence(&self.state.app, c));
                    }
                }
            }
        }
    }
}

pub async fn events(
    State(state): State<AppState>,
    agent: Agent,
    Query(q): Query<LiveQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Only a conversation that exists can be watched (and count its watcher as viewing).
    let conversation = match q.conversation.map(ConversationId) {
        Some(c) if state.app.conversation(c).await.is_ok() => Some(c),
        _ => None,
    };
    if let Some(c) = conversation {
        state.app.watch(&agent.caller, c);
    }
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.reset();
    let watch = Watch {
        notices: state.app.subscribe(),
        closing: state.app.live_closing(),
        state,
        agent,
        conversation,
        tick,
    };
    let stream = futures_util::stream::unfold(watch, |mut watch| async move {
        let event = watch.next().await?;
        Some((Ok(event), watch))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
