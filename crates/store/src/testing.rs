//! Fresh databases for tests: a new SQLite file or a new PostgreSQL database per test.
//!
//! PostgreSQL is required: when it cannot be reached the test fails loudly with the reason,
//! never skips. The server is found at `SEVA_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`).

use crate::{Backend, Store, StoreOptions};

pub struct TestDb {
    pub store: Store,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

pub fn pg_admin_url() -> String {
    std::env::var("SEVA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl TestDb {
    /// A migrated, empty store on `backend`.
    pub async fn new(backend: Backend) -> Self {
        let db = Self::empty(backend).await;
        db.store
            .migrate()
            .await
            .expect("migrations apply to a fresh database");
        db
    }

    /// A fresh database without the schema, for testing migrations themselves.
    pub async fn empty(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("seva.db").display());
                let store = Store::connect(&url, &StoreOptions::default())
                    .await
                    .expect("open sqlite");
                Self {
                    store,
                    url,
                    cleanup: Cleanup::Sqlite(dir),
                }
            }
            Backend::Postgres => {
                use sqlx::Connection as _;
                let admin_url = pg_admin_url();
                sqlx::any::install_default_drivers();
                let mut admin = sqlx::AnyConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!(
                        "\n\n*** PostgreSQL is required for the store tests and is not reachable at \
                         {admin_url}: {e}\n*** Start it with: pg_ctlcluster --skip-systemctl-redirect \
                         $(ls /etc/postgresql) main start\n\n"
                    )
                });
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes).expect("random bytes");
                let name = format!("seva_test_{}", hex::encode(bytes));
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(b, _)| b);
                let url = format!("{base}/{name}");
                let options = StoreOptions {
                    max_connections: 4,
                    ..StoreOptions::default()
                };
                let store = Store::connect(&url, &options)
                    .await
                    .expect("connect to test database");
                Self {
                    store,
                    url,
                    cleanup: Cleanup::Postgres { admin_url, name },
                }
            }
        }
    }

    /// The number of rows in `table`, for asserting that a refused request wrote nothing.
    pub async fn count(&self, table: &str) -> i64 {
        assert!(
            table.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "a plain table name"
        );
        let mut conn = self.store.conn().await.expect("a connection");
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&mut *conn)
            .await
            .expect("count rows")
    }

    /// Closes the pool and drops the PostgreSQL database. Tests call it at the end; a test
    /// that fails before leaves its database behind for inspection.
    pub async fn finish(self) {
        self.store.close().await;
        if let Cleanup::Postgres { admin_url, name } = self.cleanup {
            use sqlx::Connection as _;
            if let Ok(mut admin) = sqlx::AnyConnection::connect(&admin_url).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name}"
                )))
                .execute(&mut admin)
                .await;
            }
        }
    }
}
