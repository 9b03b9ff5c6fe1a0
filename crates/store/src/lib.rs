//! The Store: every query Seva runs, written once and run on SQLite or PostgreSQL.
//!
//! One code path for both backends: sqlx's `Any` driver with portable SQL (`$1` placeholders,
//! `RETURNING`, `ON CONFLICT`), values limited to what both carry (integers, text, booleans),
//! times as integer microseconds. Where the dialects truly differ, the difference lives in
//! [`dialect`]. Migrations are kept per backend and run at start.
//!
//! The store knows the domain and nothing of HTTP. It does not decide what a change means: the
//! app crate opens the transaction, calls these functions, and records the event.

pub mod attachments;
pub mod chat;
pub mod commerce;
pub mod conversations;
pub mod crm;
pub mod customers;
pub mod dialect;
pub mod events;
pub mod fanout;
pub mod hours;
pub mod idempotency;
pub mod kpi;
pub mod kpi_days;
mod kpi_rows;
pub mod mail;
pub mod privacy;
pub mod public;
pub mod reports;
mod rows;
pub mod search;
pub mod segments;
pub mod sla;
pub mod staff;
pub mod surveys;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, ConnectOptions as _, SqlSafeStr as _};

pub use sqlx::AnyConnection as Conn;

/// A write transaction; `&mut *tx` is a [`Conn`]. Dropped without `commit`, it rolls back.
///
/// On SQLite it also holds the store's write turn: SQLite allows one writer at a time, and
/// writers waiting on its busy handler sleep in growing steps (up to 100 ms each), which makes
/// latency spiky under concurrent writes. Queuing them here, in arrival order, costs nothing
/// and keeps the wait exactly as long as the writes ahead.
pub struct Tx {
    inner: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        self.inner.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        self.inner.rollback().await?;
        Ok(())
    }
}

impl std::ops::Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.inner
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or foreign-key rule refused the write; `constraint` names it where the
    /// backend says.
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// A row holds a value the code does not know: a newer schema or manual edits.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database cannot be reached right now (pool exhausted, connection lost).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database URL must start with sqlite: or postgres://")]
    UnsupportedUrl,
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db)
                if db.is_unique_violation() || db.is_foreign_key_violation() =>
            {
                StoreError::Conflict {
                    constraint: db
                        .constraint()
                        .map_or_else(|| db.message().to_owned(), str::to_owned),
                }
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(error.to_string())
            }
            other => StoreError::Other(other),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database, shared by every request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Kept for connections outside the pool (PostgreSQL's LISTEN).
    url: std::sync::Arc<str>,
    /// SQLite's single writer turn; see [`Tx`].
    write_turn: std::sync::Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

impl Store {
    /// Connects (creating the SQLite file if it is missing) and brings the schema up to date.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self> {
        let store = Self::connect(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let mut connect = AnyConnectOptions::from_str(url)?;
        // Statement logging at INFO would print every query; slow ones still warn.
        connect = connect.log_statements(tracing::log::LevelFilter::Trace);
        let max = match backend {
            Backend::Sqlite => options.max_connections.min(8),
            Backend::Postgres => options.max_connections,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        dialect::prepare_sqlite_connection(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        Ok(Self {
            pool,
            backend,
            url: url.into(),
            write_turn: std::sync::Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the migrations of this backend that have not run yet. Forward only.
    pub async fn migrate(&self) -> Result<()> {
        migrator(self.backend).run(&self.pool).await?;
        // Keys for identities recorded before they were kept: once, in one transaction.
        let mut tx = self.begin().await?;
        crm::backfill_match_keys(&mut tx).await?;
        kpi::backfill(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of one failing
    /// when it upgrades a read lock.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let turn = self.write_turn.clone().lock_owned().await;
                Tx {
                    inner: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                }
            }
            Backend::Postgres => Tx {
                inner: self.pool.begin().await?,
                _turn: None,
            },
        })
    }

    /// A connection for reads outside a transaction.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.pool.acquire().await?)
    }

    /// Whether the database answers: the readiness probe.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Every migration, listed once; each has a file per backend with the same name.
macro_rules! migrations {
    ($backend:expr; $(($version:literal, $description:literal, $file:literal)),+ $(,)?) => {
        match $backend {
            Backend::Sqlite => &[$(($version, $description,
                include_str!(concat!("../migrations/sqlite/", $file)))),+],
            Backend::Postgres => &[$(($version, $description,
                include_str!(concat!("../migrations/postgres/", $file)))),+],
        }
    };
}

fn migrator(backend: Backend) -> Migrator {
    let files: &[(i64, &str, &'static str)] = migrations!(backend;
        (1, "init", "0001_init.sql"),
        (2, "search", "0002_search.sql"),
        (3, "workspace", "0003_workspace.sql"),
        (4, "attachments", "0004_attachments.sql"),
        (5, "search tokens", "0005_search_tokens.sql"),
        (6, "mail", "0006_mail.sql"),
        (7, "mailbox lease", "0007_mailbox_lease.sql"),
        (8, "outbox message id", "0008_outbox_message_id.sql"),
        (9, "chat", "0009_chat.sql"),
        (10, "public", "0010_public.sql"),
        (11, "business hours", "0011_hours.sql"),
        (12, "commerce", "0012_commerce.sql"),
        (13, "crm", "0013_crm.sql"),
        (14, "kpi", "0014_kpi.sql"),
        (15, "surveys", "0015_surveys.sql"),
        (16, "kpi days", "0016_kpi_days.sql"),
        (17, "sla", "0017_sla.sql"),
        (18, "sla index", "0018_sla_index.sql"),
    );
    let migrations = files
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                description.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// Times are stored as microseconds since the Unix epoch, UTC.
pub fn to_micros(at: seva_domain::Timestamp) -> i64 {
    at.timestamp_micros()
}

pub fn from_micros(micros: i64) -> Result<seva_domain::Timestamp> {
    chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::Corrupt(format!("time {micros} out of range")))
}
