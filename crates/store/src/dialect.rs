//! The few places where SQLite and PostgreSQL need different SQL. Everything else is shared.

use sqlx::{AnyConnection, Executor as _};

/// Per-connection settings for SQLite: write-ahead logging so readers never wait for the
/// writer, `synchronous = FULL` so a commit acknowledged to a client survives a power cut (NORMAL
/// would risk the last transactions), foreign keys enforced, and a busy timeout so writers queue
/// rather than fail. A 16 MiB page cache per connection (SQLite's default is 2 MiB) keeps the
/// upper index levels of a million-conversation database in memory.
pub async fn prepare_sqlite_connection(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 10000; PRAGMA cache_size = -16384;",
    )
    .await?;
    Ok(())
}

/// Whether this connection talks to PostgreSQL.
pub fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name() == "PostgreSQL"
}
