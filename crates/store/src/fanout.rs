//! Messages between Seva instances that share one PostgreSQL database: PostgreSQL's
//! LISTEN/NOTIFY on one channel. With SQLite there is one instance, so there is no one to tell.

use sqlx::postgres::PgListener;

use crate::{Backend, Result, Store};

/// The notification channel every instance listens on.
pub const CHANNEL: &str = "seva_live";

/// Longest payload PostgreSQL delivers (8000 bytes), with room to spare.
pub const MAX_PAYLOAD: usize = 7_000;

impl Store {
    /// Tells the other instances something; they hear it on [`Listener::recv`]. Fire and
    /// forget: a payload that cannot be sent is logged by the caller and lost, which costs a
    /// refresh, never data.
    pub async fn announce(&self, payload: &str) -> Result<()> {
        if self.backend != Backend::Postgres || payload.len() > MAX_PAYLOAD {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A connection that hears every instance's announcements (its own too); `None` on SQLite.
    pub async fn listener(&self) -> Result<Option<Listener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut inner = PgListener::connect(&self.url).await?;
        inner.listen(CHANNEL).await?;
        Ok(Some(Listener { inner }))
    }
}

#[derive(Debug)]
pub struct Listener {
    inner: PgListener,
}

impl Listener {
    /// The next announcement. After a lost connection it reconnects and listens again;
    /// announcements made meanwhile are missed.
    pub async fn recv(&mut self) -> Result<String> {
        let notification = self.inner.recv().await?;
        Ok(notification.payload().to_owned())
    }
}
