//! The chat widget's WebSocket: `GET /widget/{key}/ws`, JSON frames both ways.
//!
//! The visitor's first frame is `hello` with the token of the chat to resume (if any) and the
//! id of the newest message it already shows; the server answers `welcome` (with the token to
//! keep) and every public message after that id, then each new one as it is written. A `send`
//! carries the browser's own id for the message: sending it again after a lost connection
//! stores it once and answers with the same message. Nothing is lost across reconnects because
//! the browser asks for everything after the newest message it has.

use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use seva_app::AppError;
use seva_app::chat::{ChatSession, SignedIdentity, VisitorDetails};
use seva_app::live::Feed;
use seva_domain::{AuthorKind, Message};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, timeout};

use crate::AppState;
use crate::ui::public::ClientIp;

/// Largest frame a visitor may send (a message is at most 5,000 characters).
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Messages a visitor may send per minute; more are refused with `rate_limited`.
const MESSAGES_PER_MINUTE: u32 = 20;
/// New connections one network address may open per minute (a page load or a reconnect each;
/// a shop behind one office NAT still fits).
const CONNECTS_PER_MINUTE: u32 = 120;

pub fn router() -> Router<AppState> {
    Router::new().route("/widget/{key}/ws", get(connect))
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Hello {
        token: Option<String>,
        #[serde(default)]
        after: i64,
        /// A shopper the shop's site signed in, signed by its server.
        identity: Option<IdentityFrame>,
    },
    Send {
        client_id: String,
        text: String,
        name: Option<String>,
        email: Option<String>,
    },
    /// The visitor is typing (sent at most every few seconds while they type).
    Typing,
    /// Where to answer when the visitor is gone (offered when nobody answered in time).
    Email {
        email: String,
    },
    /// A rating given with the survey's buttons.
    Rate {
        survey: i64,
        kind: String,
        score: i64,
    },
    Ping,
}

#[derive(Debug, Deserialize)]
struct IdentityFrame {
    id: String,
    email: Option<String>,
    name: Option<String>,
    hash: String,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame<'a> {
    Welcome {
        token: &'a str,
        conversation: Option<i64>,
        greeting: Option<&'a str>,
        color: &'a str,
        /// none, name, email or name_email: what to ask before the first message.
        prechat: &'static str,
        /// Seconds to wait for a first answer before saying nobody is free and offering email.
        away_after: u32,
        /// Whether the brand is within its business hours; when not, the widget says so at once
        /// and offers email.
        open: bool,
        /// When closed: the next opening (RFC 3339), if known.
        opens_at: Option<String>,
    },
    /// The answer to `email`: whether replies can now reach the visitor by email.
    EmailSaved {
        ok: bool,
    },
    Message {
        id: i64,
        /// The browser's id, for the visitor's own messages.
        client_id: Option<&'a str>,
        /// visitor or agent
        from: &'static str,
        author: Option<String>,
        text: &'a str,
        at: String,
    },
    Error {
        code: &'static str,
        message: String,
    },
    /// Whether an agent is typing in the chat now.
    Typing {
        active: bool,
    },
    /// The chat was resolved: its survey's first question, to answer with buttons.
    Survey {
        id: i64,
        /// csat, ces or nps: the widget has the question's words.
        kind: &'static str,
        /// The brand CES and NPS questions name.
        brand: String,
        low: u8,
        high: u8,
    },
    /// The rating was recorded (`score`), or refused (null): a survey of another chat, a
    /// score off the scale.
    Rated {
        survey: i64,
        score: Option<u8>,
    },
    Pong,
}

async fn connect(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    ws: WebSocketUpgrade,
) -> Response {
    if !state.limiter.allow("chat-connect", ip, CONNECTS_PER_MINUTE) {
        return (StatusCode::TOO_MANY_REQUESTS, "rate_limited").into_response();
    }
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match state.app.widget_for(&key, origin.as_deref()).await {
        // Small buffers: chat frames are small, and thousands of open chats must fit in memory
        // (tungstenite's defaults are 128 KB each way per connection).
        Ok(widget) => ws
            .max_message_size(MAX_FRAME_BYTES)
            .max_frame_size(MAX_FRAME_BYTES)
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0)
            .max_write_buffer_size(MAX_FRAME_BYTES * 4)
            .on_upgrade(move |socket| async move {
                let opened = state.app.clone();
                if let Err(e) = chat(state, widget, socket).await {
                    tracing::debug!(error = %e, "chat connection ended");
                }
                drop(opened);
            }),
        Err(AppError::NotFound(_)) => (StatusCode::NOT_FOUND, "widget_not_found").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "chat widget lookup failed");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable").into_response()
        }
    }
}

fn text_frame(frame: &ServerFrame<'_>) -> Frame {
    Frame::Text(serde_json::to_string(frame).unwrap_or_default().into())
}

fn error_frame(code: &'static str, message: impl Into<String>) -> Frame {
    text_frame(&ServerFrame::Error {
        code,
        message: message.into(),
    })
}

/// What a refused message is called on the wire.
fn error_code(error: &AppError) -> &'static str {
    match error {
        AppError::Invalid(seva_domain::ValueError::TooLong { .. }) => "text_too_long",
        AppError::Invalid(seva_domain::ValueError::Empty { .. }) => "field_required",
        AppError::Invalid(seva_domain::ValueError::InvalidEmail(_)) => "invalid_email",
        AppError::Invalid(_) => "invalid_message",
        AppError::IdentityTaken(_) => "identity_taken",
        _ => "unavailable",
    }
}

/// A sliding minute of sends.
struct RateLimit {
    window_start: Instant,
    used: u32,
}

impl RateLimit {
    fn allow(&mut self) -> bool {
        if self.window_start.elapsed() >= Duration::from_mins(1) {
            self.window_start = Instant::now();
            self.used = 0;
        }
        self.used += 1;
        self.used <= MESSAGES_PER_MINUTE
    }
}

async fn chat(
    state: AppState,
    widget: seva_domain::chat::Widget,
    socket: WebSocket,
) -> Result<(), String> {
    let (mut tx, mut rx) = socket.split();
    let (mut session, after) = greet(&state, &widget, &mut tx, &mut rx).await?;
    // Changes to this chat's conversation only; none until the first message opens it.
    let mut feed = session.conversation.map(|c| state.app.conversation_feed(c));
    let mut closing = state.app.live_closing();
    let mut agent_typing = false;
    let mut last = after.max(0);
    last = replay(&state, &session, last, &mut tx).await?;
    let mut offered = offer_survey(&state, &session, None, &mut tx).await?;
    let mut limit = RateLimit {
        window_start: Instant::now(),
        used: 0,
    };
    let mut heartbeat = tokio::time::interval(Duration::from_secs(25));
    loop {
        tokio::select! {
            frame = rx.next() => {
                let Some(Ok(frame)) = frame else { return Ok(()) };
                let text = match frame {
                    Frame::Text(text) => text,
                    Frame::Close(_) => return Ok(()),
                    _ => continue,
                };
                match serde_json::from_str::<ClientFrame>(text.as_str()) {
                    Ok(ClientFrame::Send { client_id, text, name, email }) => {
                        if !limit.allow() {
                            let message = format!("at most {MESSAGES_PER_MINUTE} messages a minute");
                            tx.send(error_frame("rate_limited", message)).await.map_err(|e| e.to_string())?;
                            continue;
                        }
                        match visitor_sends(&state, &mut session, &client_id, &text, VisitorDetails { name, email }).await {
                            Ok(message) => {
                                if feed.is_none() {
                                    feed = Some(state.app.conversation_feed(message.conversation_id));
                                }
                                send_message(&state, &mut tx, &message).await?;
                                last = last.max(message.id.0);
                            }
                            Err(refused) => tx.send(refused).await.map_err(|e| e.to_string())?,
                        }
                    }
                    Ok(ClientFrame::Typing) => {
                        if let Some(c) = session.conversation {
                            state.app.visitor_typing(c, true);
                        }
                    }
                    Ok(request @ (ClientFrame::Email { .. } | ClientFrame::Rate { .. })) => {
                        let answer = if limit.allow() {
                            answer_request(&state, &session, request).await
                        } else {
                            error_frame("rate_limited", "too many requests")
                        };
                        tx.send(answer).await.map_err(|e| e.to_string())?;
                    }
                    Ok(ClientFrame::Ping) => {
                        tx.send(text_frame(&ServerFrame::Pong)).await.map_err(|e| e.to_string())?;
                    }
                    Ok(ClientFrame::Hello { .. }) | Err(_) => {
                        tx.send(error_frame("invalid_frame", "expected send or ping")).await.map_err(|e| e.to_string())?;
                    }
                }
            }
            changed = async {
                match feed.as_mut() {
                    Some(feed) => feed.recv().await,
                    None => std::future::pending().await,
                }
            } => match changed {
                // A change, or missed ones: send whatever is new.
                Ok(Feed::Changed) | Err(RecvError::Lagged(_)) => {
                    last = replay(&state, &session, last, &mut tx).await?;
                    offered = offer_survey(&state, &session, offered, &mut tx).await?;
                }
                Ok(Feed::Presence) => {
                    let typing = session.conversation.is_some_and(|c| {
                        state.app.viewers(c, seva_domain::UserId(0)).iter().any(|v| v.typing)
                    });
                    if typing != agent_typing {
                        agent_typing = typing;
                        tx.send(text_frame(&ServerFrame::Typing { active: typing })).await.map_err(|e| e.to_string())?;
                    }
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            _ = closing.changed() => {
                let _ = tx.send(Frame::Close(None)).await;
                return Ok(());
            }
            _ = heartbeat.tick() => {
                tx.send(Frame::Ping(Vec::new().into())).await.map_err(|e| e.to_string())?;
            }
        }
    }
}

/// Stores a visitor's message; a refusal is the error frame to send back.
async fn visitor_sends(
    state: &AppState,
    session: &mut ChatSession,
    client_id: &str,
    text: &str,
    details: VisitorDetails,
) -> Result<Message, Frame> {
    match state
        .app
        .chat_send(session, client_id, text, &details)
        .await
    {
        Ok((message, _)) => Ok(message),
        Err(e) => {
            let code = error_code(&e);
            let text = if code == "unavailable" {
                "try again".to_owned()
            } else {
                e.to_string()
            };
            Err(error_frame(code, text))
        }
    }
}

/// Offers the chat's open survey, once per connection (`offered`: the one already offered);
/// returns the survey offered.
async fn offer_survey(
    state: &AppState,
    session: &ChatSession,
    offered: Option<i64>,
    tx: &mut Sink,
) -> Result<Option<i64>, String> {
    let open = match state.app.chat_survey(session).await {
        Ok(open) => open,
        Err(e) => {
            tracing::warn!(error = %e, "the chat's survey could not be read");
            return Ok(offered);
        }
    };
    let Some((survey, brand)) = open else {
        return Ok(offered);
    };
    let Some(kind) = survey.headline() else {
        return Ok(offered);
    };
    if offered == Some(survey.id.0) {
        return Ok(offered);
    }
    let frame = ServerFrame::Survey {
        id: survey.id.0,
        kind: kind.as_str(),
        brand,
        low: *kind.scale().start(),
        high: *kind.scale().end(),
    };
    tx.send(text_frame(&frame))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(survey.id.0))
}

/// The answer to a visitor's email address or rating.
async fn answer_request(state: &AppState, session: &ChatSession, request: ClientFrame) -> Frame {
    match request {
        ClientFrame::Email { email } => leave_email(state, session, &email).await,
        ClientFrame::Rate {
            survey,
            kind,
            score,
        } => rate(state, session, survey, &kind, score).await,
        _ => error_frame("invalid_frame", "expected email or rate"),
    }
}

/// The answer to a rating from the widget.
async fn rate(
    state: &AppState,
    session: &ChatSession,
    survey: i64,
    kind: &str,
    score: i64,
) -> Frame {
    let refused = text_frame(&ServerFrame::Rated {
        survey,
        score: None,
    });
    let Ok(kind) = kind.parse::<seva_domain::survey::SurveyKind>() else {
        return refused;
    };
    match state
        .app
        .answer_survey_in_chat(session, survey, kind, score)
        .await
    {
        Ok(s) => text_frame(&ServerFrame::Rated {
            survey: s.id.0,
            score: s.score(kind),
        }),
        Err(AppError::NotFound(_) | AppError::Invalid(_) | AppError::SurveyClosed) => refused,
        Err(e) => {
            tracing::warn!(error = %e, "a chat rating could not be recorded");
            refused
        }
    }
}

/// The answer to a visitor leaving their email address.
async fn leave_email(state: &AppState, session: &ChatSession, email: &str) -> Frame {
    match state.app.chat_leave_email(session, email).await {
        Ok(ok) => text_frame(&ServerFrame::EmailSaved { ok }),
        Err(e) => error_frame(error_code(&e), e.to_string()),
    }
}

/// Reads the visitor's hello, opens (or resumes) their chat and welcomes them: the session and
/// the newest message id the browser already shows.
async fn greet(
    state: &AppState,
    widget: &seva_domain::chat::Widget,
    tx: &mut Sink,
    rx: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Result<(ChatSession, i64), String> {
    // The first frame must say hello, soon.
    let first = timeout(Duration::from_secs(10), rx.next())
        .await
        .map_err(|_| "no hello".to_owned())?
        .ok_or("closed")?
        .map_err(|e| e.to_string())?;
    let Frame::Text(first) = first else {
        return Err("the first frame was not text".into());
    };
    let Ok(ClientFrame::Hello {
        token,
        after,
        identity,
    }) = serde_json::from_str(first.as_str())
    else {
        let _ = tx
            .send(error_frame("hello_required", "say hello first"))
            .await;
        return Err("no hello".into());
    };
    let identity = identity.map(|i| SignedIdentity {
        id: i.id,
        email: i.email,
        name: i.name,
        hash: i.hash,
    });
    // Asked before the chat opens (so a failure cannot strand a new visitor), and never fatal:
    // a visitor told "open" by mistake still reaches the inbox.
    let availability = state
        .app
        .widget_availability(widget)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "business hours unknown; the widget says open");
            seva_app::hours::Availability {
                open: true,
                opens_at: None,
            }
        });
    let session = match state
        .app
        .open_chat(widget, token.as_deref(), identity.as_ref())
        .await
    {
        Ok(session) => session,
        Err(AppError::IdentityUnverified) => {
            // The shop's integration is wrong: say so and stop, rather than chat as somebody.
            let message = "the identity's hash is not HMAC-SHA256(widget secret, id)";
            let _ = tx.send(error_frame("identity_unverified", message)).await;
            return Err("identity unverified".into());
        }
        Err(e) => {
            let _ = tx.send(error_frame(error_code(&e), "try again")).await;
            return Err(e.to_string());
        }
    };
    let welcome = ServerFrame::Welcome {
        token: &session.token,
        conversation: session.conversation.map(|c| c.0),
        greeting: widget.greeting.as_deref(),
        color: &widget.color,
        prechat: widget.prechat.as_str(),
        away_after: widget.away_after,
        open: availability.open,
        opens_at: availability.opens_at.map(|t| t.to_rfc3339()),
    };
    tx.send(text_frame(&welcome))
        .await
        .map_err(|e| e.to_string())?;
    Ok((session, after))
}

type Sink = futures_util::stream::SplitSink<WebSocket, Frame>;

/// Sends every public message after `after`; returns the newest id sent.
async fn replay(
    state: &AppState,
    session: &ChatSession,
    after: i64,
    tx: &mut Sink,
) -> Result<i64, String> {
    let messages = state
        .app
        .chat_messages_after(session, after)
        .await
        .map_err(|e| e.to_string())?;
    let mut last = after;
    for message in &messages {
        send_message(state, tx, message).await?;
        last = last.max(message.id.0);
    }
    // What the browser was given needs no email.
    if last > after
        && let Err(e) = state.app.chat_delivered(session, last).await
    {
        tracing::warn!(error = %e, "a chat delivery could not be recorded");
    }
    Ok(last)
}

async fn send_message(state: &AppState, tx: &mut Sink, message: &Message) -> Result<(), String> {
    let visitor = message.author_kind == AuthorKind::Customer;
    let author = match (visitor, message.author_user_id) {
        (false, Some(user)) => state
            .app
            .directory()
            .await
            .ok()
            .and_then(|d| d.user_name(user).map(str::to_owned)),
        _ => None,
    };
    let client_id = message
        .external_id
        .as_deref()
        .filter(|_| visitor)
        .and_then(|id| id.splitn(3, ':').nth(2));
    let frame = ServerFrame::Message {
        id: message.id.0,
        client_id,
        from: if visitor { "visitor" } else { "agent" },
        author,
        text: &message.text,
        at: message.created_at.to_rfc3339(),
    };
    tx.send(text_frame(&frame)).await.map_err(|e| e.to_string())
}
