//! Live updates: after a change commits, a notice goes to everyone watching (the agent
//! workspace's event streams), and who is viewing or typing in a conversation. Notices carry ids
//! only; a page that hears one reloads what it shows, so a missed notice costs a refresh, never
//! data.
//!
//! Several instances on one PostgreSQL database tell each other through the store's fan-out
//! (LISTEN/NOTIFY): each announces its own notices and viewers, and applies the others' with
//! [`App::apply_remote`].

use std::collections::HashMap;
use std::sync::Mutex;

use seva_domain::{ConversationId, Timestamp, UserId};
use tokio::sync::broadcast;

use crate::{App, Caller};

/// How many conversations may have viewers before the quiet ones are swept.
const SWEEP_ABOVE: usize = 1_000;

/// How long a viewer counts as present after their last heartbeat.
pub const PRESENCE_TTL: chrono::Duration = chrono::Duration::seconds(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Something in this conversation changed: a message, its status, assignee, tags...
    Changed(ConversationId),
    /// Who is viewing or typing in this conversation changed.
    Presence(ConversationId),
    /// Notices may have been missed (the link to the other instances was down): reload.
    Everything,
}

/// What a conversation's own feed says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Something changed (or changes may have been missed): read what is new.
    Changed,
    /// Who is viewing or typing changed.
    Presence,
}

/// How long a visitor counts as typing after their last keystroke signal.
pub const VISITOR_TYPING_TTL: chrono::Duration = chrono::Duration::seconds(6);

/// One agent looking at a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub user: UserId,
    pub name: String,
    pub typing: bool,
    pub seen: Timestamp,
}

#[derive(Debug)]
pub struct Live {
    tx: broadcast::Sender<Notice>,
    viewers: Mutex<HashMap<ConversationId, Vec<Viewer>>>,
    /// Open pages per conversation and user on this instance: a user leaves when the last
    /// of their tabs on it closes.
    pages: Mutex<HashMap<(ConversationId, UserId), u32>>,
    /// Flips to `true` when the server stops, so open event streams end and let it stop.
    closing: tokio::sync::watch::Sender<bool>,
    /// Tells this instance's announcements from the others'.
    instance: u64,
    /// Listeners for one conversation each (chat visitors): a change wakes only its own
    /// listeners, not every open chat.
    feeds: Mutex<HashMap<ConversationId, broadcast::Sender<Feed>>>,
    /// When each chat's visitor last said they were typing.
    visitors_typing: Mutex<HashMap<ConversationId, Timestamp>>,
}

impl Default for Live {
    fn default() -> Self {
        // A subscriber that falls this far behind gets `Lagged` and reloads everything.
        let (tx, _) = broadcast::channel(1024);
        Self {
            tx,
            viewers: Mutex::new(HashMap::new()),
            pages: Mutex::new(HashMap::new()),
            feeds: Mutex::new(HashMap::new()),
            visitors_typing: Mutex::new(HashMap::new()),
            closing: tokio::sync::watch::Sender::new(false),
            instance: {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes)
                    .expect("the operating system's random generator is available");
                u64::from_le_bytes(bytes)
            },
        }
    }
}

impl Live {
    fn viewers(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, Vec<Viewer>>> {
        self.viewers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn visitors_typing(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, Timestamp>> {
        self.visitors_typing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn feeds(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, broadcast::Sender<Feed>>> {
        self.feeds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pages(&self) -> std::sync::MutexGuard<'_, HashMap<(ConversationId, UserId), u32>> {
        self.pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl App {
    /// Tells every watcher, on every instance, about a committed change.
    pub fn publish(&self, notice: Notice) {
        self.notify_here(notice);
        if let Notice::Changed(c) = notice {
            self.announce(serde_json::json!({ "kind": "changed", "c": c.0 }));
        }
    }

    /// Tells this instance's watchers. Nobody listening is fine.
    fn notify_here(&self, notice: Notice) {
        let _ = self.live.tx.send(notice);
        match notice {
            Notice::Changed(c) => {
                if let Some(feed) = self.live.feeds().get(&c) {
                    let _ = feed.send(Feed::Changed);
                }
            }
            Notice::Presence(c) => {
                if let Some(feed) = self.live.feeds().get(&c) {
                    let _ = feed.send(Feed::Presence);
                }
            }
            Notice::Everything => {
                for feed in self.live.feeds().values() {
                    let _ = feed.send(Feed::Changed);
                }
            }
        }
    }

    /// Changes to one conversation only (a lagging receiver means "changed" too). Feeds with
    /// no listener left are dropped as new ones are made.
    pub fn conversation_feed(&self, conversation: ConversationId) -> broadcast::Receiver<Feed> {
        let mut feeds = self.live.feeds();
        if feeds.len() > SWEEP_ABOVE {
            feeds.retain(|_, feed| feed.receiver_count() > 0);
        }
        feeds
            .entry(conversation)
            .or_insert_with(|| broadcast::channel(16).0)
            .subscribe()
    }

    /// Sends an announcement to the other instances, without waiting for it.
    fn announce(&self, mut message: serde_json::Value) {
        if self.store.backend() != seva_store::Backend::Postgres {
            return;
        }
        message["from"] = self.live.instance.into();
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.announce(&message.to_string()).await {
                tracing::debug!(error = %e, "live update not announced to other instances");
            }
        });
    }

    /// A chat visitor is typing (`true`) or stopped. Agents on the conversation hear of it when
    /// it starts; it lapses by itself after [`VISITOR_TYPING_TTL`].
    pub fn visitor_typing(&self, conversation: ConversationId, typing: bool) {
        let now = self.now();
        let started = {
            let mut all = self.live.visitors_typing();
            if all.len() > SWEEP_ABOVE {
                all.retain(|_, at| now - *at < VISITOR_TYPING_TTL);
            }
            let was = all
                .get(&conversation)
                .is_some_and(|at| now - *at < VISITOR_TYPING_TTL);
            if typing {
                all.insert(conversation, now);
            } else {
                all.remove(&conversation);
            }
            was != typing
        };
        if started {
            self.notify_here(Notice::Presence(conversation));
            self.announce(
                serde_json::json!({ "kind": "visitor_typing", "c": conversation.0, "t": typing }),
            );
        }
    }

    /// Whether the chat's visitor is typing now.
    pub fn visitor_is_typing(&self, conversation: ConversationId) -> bool {
        let now = self.now();
        self.live
            .visitors_typing()
            .get(&conversation)
            .is_some_and(|at| now - *at < VISITOR_TYPING_TTL)
    }

    /// Applies another instance's announcement: a change, or a viewer arriving, typing or
    /// leaving. Our own, and anything unreadable, are ignored.
    pub fn apply_remote(&self, payload: &str) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(payload) else {
            return;
        };
        if message["from"].as_u64() == Some(self.live.instance) {
            return;
        }
        let Some(c) = message["c"].as_i64().map(ConversationId) else {
            return;
        };
        let user = message["u"].as_i64().map(UserId);
        match (message["kind"].as_str(), user) {
            (Some("changed"), _) => self.notify_here(Notice::Changed(c)),
            (Some("viewer"), Some(user)) => {
                let name = message["n"].as_str().unwrap_or_default();
                let typing = message["t"].as_bool();
                if self.see(c, user, name, typing, self.now()).0 {
                    self.notify_here(Notice::Presence(c));
                }
            }
            (Some("left"), Some(user)) if self.unsee(c, user) => {
                self.notify_here(Notice::Presence(c));
            }
            (Some("visitor_typing"), _) => {
                let typing = message["t"].as_bool().unwrap_or(false);
                {
                    let mut all = self.live.visitors_typing();
                    if typing {
                        all.insert(c, self.now());
                    } else {
                        all.remove(&c);
                    }
                }
                self.notify_here(Notice::Presence(c));
            }
            _ => {}
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.live.tx.subscribe()
    }

    /// Ends every open event stream: called when the server shuts down.
    pub fn close_live(&self) {
        self.live.closing.send_replace(true);
    }

    /// Resolves when the server is shutting down.
    pub fn live_closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.live.closing.subscribe()
    }

    /// A page showing the conversation opened: the caller is viewing it.
    pub fn watch(&self, caller: &Caller, conversation: ConversationId) {
        let first = {
            let mut pages = self.live.pages();
            let count = pages.entry((conversation, caller.user.id)).or_default();
            *count += 1;
            *count == 1
        };
        self.heartbeat(caller, conversation, first.then_some(false));
    }

    /// A page showing the conversation closed; the caller leaves with their last one.
    pub fn unwatch(&self, caller: &Caller, conversation: ConversationId) {
        let last = {
            let mut pages = self.live.pages();
            let key = (conversation, caller.user.id);
            let count = pages.entry(key).or_default();
            *count = count.saturating_sub(1);
            let last = *count == 0;
            if last {
                pages.remove(&key);
            }
            last
        };
        if last {
            self.leave(caller, conversation);
        }
    }

    /// Records that the caller is viewing a conversation, and whether they are typing (`None`
    /// keeps what they were doing). Tells the others only when what they would see changes.
    pub fn heartbeat(&self, caller: &Caller, conversation: ConversationId, typing: Option<bool>) {
        let (changed, typing) = self.see(
            conversation,
            caller.user.id,
            &caller.user.name,
            typing,
            self.now(),
        );
        if changed {
            self.notify_here(Notice::Presence(conversation));
        }
        // Other instances forget a viewer they have not heard of for a while: renew always.
        self.announce(serde_json::json!({
            "kind": "viewer", "c": conversation.0, "u": caller.user.id.0,
            "n": caller.user.name, "t": typing,
        }));
    }

    /// The caller left the conversation's page.
    pub fn leave(&self, caller: &Caller, conversation: ConversationId) {
        if self.unsee(conversation, caller.user.id) {
            self.notify_here(Notice::Presence(conversation));
        }
        self.announce(serde_json::json!({
            "kind": "left", "c": conversation.0, "u": caller.user.id.0,
        }));
    }

    /// Tells this instance's pages to reload what they show.
    pub fn resync_here(&self) {
        self.notify_here(Notice::Everything);
    }

    /// Records a viewer, in one step under the lock; returns whether what others see changed
    /// (someone new, typing or not, or a stale viewer dropped) and whether they are typing.
    fn see(
        &self,
        conversation: ConversationId,
        user: UserId,
        name: &str,
        typing: Option<bool>,
        now: Timestamp,
    ) -> (bool, bool) {
        let mut all = self.live.viewers();
        // Forget everyone gone quiet once the map grows: viewers of conversations nobody
        // looks at any more would otherwise stay for ever.
        if all.len() > SWEEP_ABOVE {
            all.retain(|_, viewers| {
                viewers.retain(|v| now - v.seen < PRESENCE_TTL);
                !viewers.is_empty()
            });
        }
        let viewers = all.entry(conversation).or_default();
        let before = viewers.len();
        viewers.retain(|v| now - v.seen < PRESENCE_TTL);
        let mut changed = viewers.len() != before;
        if let Some(v) = viewers.iter_mut().find(|v| v.user == user) {
            let typing = typing.unwrap_or(v.typing);
            changed |= v.typing != typing;
            v.typing = typing;
            v.seen = now;
            (changed, typing)
        } else {
            let typing = typing.unwrap_or(false);
            viewers.push(Viewer {
                user,
                name: name.to_owned(),
                typing,
                seen: now,
            });
            (true, typing)
        }
    }

    fn unsee(&self, conversation: ConversationId, user: UserId) -> bool {
        let mut all = self.live.viewers();
        let Some(viewers) = all.get_mut(&conversation) else {
            return false;
        };
        let before = viewers.len();
        viewers.retain(|v| v.user != user);
        let changed = viewers.len() != before;
        if viewers.is_empty() {
            all.remove(&conversation);
        }
        changed
    }

    /// Who else is on a conversation right now, by name.
    pub fn viewers(&self, conversation: ConversationId, except: UserId) -> Vec<Viewer> {
        let now = self.now();
        let all = self.live.viewers();
        let mut out: Vec<Viewer> = all
            .get(&conversation)
            .into_iter()
            .flatten()
            .filter(|v| v.user != except && now - v.seen < PRESENCE_TTL)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use seva_domain::{Role, User};

    use super::*;
    use crate::FixedClock;

    fn caller(id: i64, name: &str) -> Caller {
        Caller {
            user: User {
                id: UserId(id),
                email: format!("{name}@example.com"),
                name: name.to_owned(),
                role: Role::Agent,
                active: true,
                language: None,
                time_zone: None,
                digits: None,
                created_at: chrono::DateTime::UNIX_EPOCH,
            },
        }
    }

    #[tokio::test]
    async fn viewers_see_each_other_typing_and_leaving_and_expire() {
        let db = seva_store::testing::TestDb::new(seva_store::Backend::Sqlite).await;
        let store = db.store.clone();
        let clock = Arc::new(FixedClock::new(chrono::DateTime::UNIX_EPOCH));
        let app = App::new(store, clock.clone());
        let mut rx = app.subscribe();
        let (sara, ravi) = (caller(1, "Sara"), caller(2, "Ravi"));
        let c = ConversationId(7);

        app.heartbeat(&sara, c, Some(false));
        assert_eq!(rx.try_recv().unwrap(), Notice::Presence(c));
        app.heartbeat(&sara, c, None);
        assert!(
            rx.try_recv().is_err(),
            "an unchanged heartbeat tells nobody"
        );
        app.heartbeat(&ravi, c, Some(true));
        assert_eq!(rx.try_recv().unwrap(), Notice::Presence(c));
        app.heartbeat(&ravi, c, None);
        assert!(
            rx.try_recv().is_err(),
            "a plain heartbeat keeps Ravi typing"
        );

        let seen_by_sara = app.viewers(c, sara.user.id);
        assert_eq!(seen_by_sara.len(), 1);
        assert_eq!(seen_by_sara[0].name, "Ravi");
        assert!(seen_by_sara[0].typing);

        app.leave(&ravi, c);
        assert_eq!(rx.try_recv().unwrap(), Notice::Presence(c));
        assert!(app.viewers(c, sara.user.id).is_empty());

        // Ravi in two tabs: closing one keeps him there.
        app.watch(&ravi, c);
        app.watch(&ravi, c);
        app.unwatch(&ravi, c);
        assert_eq!(app.viewers(c, sara.user.id).len(), 1);
        app.unwatch(&ravi, c);
        assert!(app.viewers(c, sara.user.id).is_empty());
        while rx.try_recv().is_ok() {}

        clock.advance(PRESENCE_TTL);
        assert!(app.viewers(c, ravi.user.id).is_empty(), "Sara went quiet");
        db.finish().await;
    }
}
