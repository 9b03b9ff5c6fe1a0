//! What the agent workspace needs beyond conversations: each user's preferences, their teams,
//! saved views, the directory for pickers, and the neighbours of a conversation in a view.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use seva_domain::values::bounded_text;
use seva_domain::{Brand, Conversation, ConversationId, CustomerId, Digits, Team, TeamId, User};
use seva_store::conversations::{self as store, ConversationCursor, ConversationFilter};
use seva_store::customers;
use seva_store::staff::{self, Preferences, SavedView};

use crate::{App, AppError, Caller, Result, not_found};

/// How long another instance's change to users, teams or brands may take to show.
pub const DIRECTORY_TTL: Duration = Duration::from_secs(10);

/// Longest saved-view name and query string.
const VIEW_NAME_MAX: usize = 80;
const VIEW_QUERY_MAX: usize = 1000;

/// What a conversation page shows; see [`App::conversation_page`].
#[derive(Debug, Clone)]
pub struct ConversationPage {
    pub conversation: Conversation,
    pub messages: Vec<seva_domain::Message>,
    pub events: Vec<seva_domain::Event>,
    pub attachments: Vec<seva_domain::Attachment>,
    pub customer: seva_domain::Customer,
    pub others: Vec<Conversation>,
}

/// The directory as last read, and when.
pub(crate) type DirectoryCache = Arc<std::sync::Mutex<Option<(Instant, Arc<Directory>)>>>;

/// Everyone and everything a picker offers.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub users: Vec<User>,
    pub teams: Vec<Team>,
    pub brands: Vec<Brand>,
}

impl Directory {
    pub fn user_name(&self, id: seva_domain::UserId) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.name.as_str())
    }

    pub fn team_name(&self, id: TeamId) -> Option<&str> {
        self.teams
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.name.as_str())
    }

    pub fn brand_name(&self, id: seva_domain::BrandId) -> Option<&str> {
        self.brands
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.name.as_str())
    }
}

impl App {
    /// Saves the caller's own interface preferences. The web layer checks the language and time
    /// zone against what it can show.
    pub async fn set_preferences(
        &self,
        caller: &Caller,
        language: Option<&str>,
        time_zone: Option<&str>,
        digits: Option<Digits>,
    ) -> Result<()> {
        let mut conn = self.store.conn().await?;
        let prefs = Preferences {
            language,
            time_zone,
            digits,
        };
        staff::set_preferences(&mut conn, caller.user.id, &prefs, self.now()).await?;
        self.directory_changed();
        Ok(())
    }

    pub async fn teams_of(&self, caller: &Caller) -> Result<Vec<TeamId>> {
        let mut conn = self.store.conn().await?;
        Ok(staff::teams_of(&mut conn, caller.user.id).await?)
    }

    /// The staff, teams and brands, read at most every few seconds: every page shows names
    /// from it, and they change rarely. Changes made here are seen at once; changes made on
    /// another instance within [`DIRECTORY_TTL`].
    pub async fn directory(&self) -> Result<Arc<Directory>> {
        if let Some((read_at, directory)) = self.directory_cache().as_ref()
            && read_at.elapsed() < DIRECTORY_TTL
        {
            return Ok(directory.clone());
        }
        let mut conn = self.store.conn().await?;
        let directory = Arc::new(Directory {
            users: staff::users(&mut conn).await?,
            teams: staff::teams(&mut conn).await?,
            brands: staff::brands(&mut conn).await?,
        });
        *self.directory_cache() = Some((Instant::now(), directory.clone()));
        Ok(directory)
    }

    /// Forgets the cached directory after a change to users, teams or brands.
    pub fn directory_changed(&self) {
        *self.directory_cache() = None;
    }

    fn directory_cache(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<Directory>)>> {
        self.directory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub async fn customer_names(&self, ids: &[CustomerId]) -> Result<HashMap<CustomerId, String>> {
        let mut conn = self.store.conn().await?;
        Ok(customers::names(&mut conn, ids).await?)
    }

    /// Saves (or replaces, by name) one of the caller's inbox views.
    pub async fn save_view(&self, caller: &Caller, name: &str, query: &str) -> Result<i64> {
        let name = bounded_text("name", name.trim(), VIEW_NAME_MAX)?;
        let query = bounded_text("query", query.trim_start_matches('?'), VIEW_QUERY_MAX)?;
        let mut conn = self.store.conn().await?;
        Ok(staff::save_view(&mut conn, caller.user.id, &name, &query, self.now()).await?)
    }

    pub async fn saved_views(&self, caller: &Caller) -> Result<Vec<SavedView>> {
        let mut conn = self.store.conn().await?;
        Ok(staff::saved_views(&mut conn, caller.user.id).await?)
    }

    pub async fn delete_view(&self, caller: &Caller, id: i64) -> Result<()> {
        let mut conn = self.store.conn().await?;
        if staff::delete_view(&mut conn, caller.user.id, id).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("view"))
        }
    }

    /// The conversations above and below `c` in a view's newest-first order.
    pub async fn neighbours(
        &self,
        filter: &ConversationFilter,
        c: &Conversation,
    ) -> Result<(Option<ConversationId>, Option<ConversationId>)> {
        let cursor = ConversationCursor {
            last_activity_at: seva_store::to_micros(c.last_activity_at),
            id: c.id.0,
        };
        let mut conn = self.store.conn().await?;
        Ok((
            store::neighbour(&mut conn, filter, cursor, true).await?,
            store::neighbour(&mut conn, filter, cursor, false).await?,
        ))
    }

    /// Everything a conversation page shows, read on one connection: the conversation, its
    /// messages and events, its customer, and the customer's latest other conversations.
    pub async fn conversation_page(&self, id: ConversationId) -> Result<ConversationPage> {
        let mut conn = self.store.conn().await?;
        let conversation = store::find(&mut conn, id)
            .await
            .map_err(not_found("conversation"))?;
        let messages = store::messages(&mut conn, id).await?;
        let events = seva_store::events::for_conversation(&mut conn, id).await?;
        let attachments = seva_store::attachments::for_conversation(&mut conn, id).await?;
        let customer = customers::get(&mut conn, conversation.customer_id).await?;
        let filter = ConversationFilter {
            customer: Some(conversation.customer_id),
            ..ConversationFilter::default()
        };
        let others = store::list(&mut conn, &filter, None, 11)
            .await?
            .into_iter()
            .filter(|o| o.id != id)
            .take(10)
            .collect();
        Ok(ConversationPage {
            conversation,
            messages,
            events,
            attachments,
            customer,
            others,
        })
    }
}
