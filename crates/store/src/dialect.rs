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

/// Adds or replaces one search document (text already normalised).
pub const SEARCH_UPSERT_SQLITE: &str =
    "INSERT OR REPLACE INTO search_index (rowid, body, conversation_id) VALUES ($1, $2, $3)";
pub const SEARCH_UPSERT_POSTGRES: &str = "INSERT INTO search_index (doc_id, body, conversation_id) \
     VALUES ($1, $2, $3) ON CONFLICT (doc_id) DO UPDATE SET body = EXCLUDED.body";
pub const SEARCH_DELETE_SQLITE: &str = "DELETE FROM search_index WHERE rowid = $1";
pub const SEARCH_DELETE_POSTGRES: &str = "DELETE FROM search_index WHERE doc_id = $1";

/// The best-matching documents: conversation id, a snippet with the matches between U+E000 and
/// U+E001 (escaped and turned into <mark> by the caller), and a score where higher is better.
/// SQLite: `$1` is an FTS5 query of quoted terms; PostgreSQL: `$1` is the terms joined by spaces.
pub const SEARCH_SQLITE: &str = "SELECT conversation_id, \
     snippet(search_index, 0, char(57344), char(57345), '…', 16) AS snippet, \
     -bm25(search_index) AS score \
     FROM search_index WHERE search_index MATCH $1 ORDER BY rank LIMIT $2";
pub const SEARCH_POSTGRES: &str = "SELECT conversation_id, \
     ts_headline('simple', body, q, 'StartSel=\u{E000}, StopSel=\u{E001}, MaxWords=24, MinWords=10') AS snippet, \
     ts_rank(tsv, q)::FLOAT8 AS score \
     FROM search_index, plainto_tsquery('simple', $1) q WHERE tsv @@ q \
     ORDER BY score DESC LIMIT $2";

/// Whether this connection talks to PostgreSQL.
pub fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name() == "PostgreSQL"
}
