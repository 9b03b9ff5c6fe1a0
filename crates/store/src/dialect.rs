//! The few places where SQLite and PostgreSQL need different SQL. Everything else is shared.

use sqlx::{AnyConnection, Executor as _};

/// Per-connection settings for SQLite: write-ahead logging so readers never wait for the
/// writer, `synchronous = FULL` so a commit acknowledged to a client survives a power cut (NORMAL
/// would risk the last transactions), foreign keys enforced, and a busy timeout so writers queue
/// rather than fail. A 16 MiB page cache per connection (SQLite's default is 2 MiB) keeps the
/// upper index levels of a million-conversation database in memory. `secure_delete` overwrites
/// deleted and replaced content with zeros, so an erased customer's words do not linger in free
/// space of the file (its cost is writing those zeros: deletes and rewrites are rare here).
pub async fn prepare_sqlite_connection(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 10000; PRAGMA cache_size = -16384; PRAGMA secure_delete = ON;",
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

/// How many of the newest matching documents are ranked. Ranking every match of a common word
/// in millions of messages would take seconds; the newest few thousand hold what an agent looks
/// for, and both engines find them without visiting the rest.
pub const SEARCH_RANK_WINDOW: i64 = 2_000;

/// The best of the newest matching documents: `doc`, `conversation_id`, `score` (higher is
/// better). SQLite: `$1` is an FTS5 query of quoted terms; PostgreSQL: the terms joined by
/// spaces. `$2` is the rank window, `$3` the number of rows.
pub const SEARCH_SQLITE: &str = "SELECT doc, conversation_id, score FROM ( \
     SELECT rowid AS doc, conversation_id, -bm25(search_index) AS score FROM search_index \
     WHERE search_index MATCH $1 ORDER BY rowid DESC LIMIT $2) \
     ORDER BY score DESC, doc DESC LIMIT $3";
pub const SEARCH_POSTGRES: &str = "SELECT doc, conversation_id, score FROM ( \
     SELECT doc_id AS doc, conversation_id, ts_rank(tsv, q)::FLOAT8 AS score \
     FROM search_index, plainto_tsquery('simple', $1) q WHERE tsv @@ q \
     ORDER BY doc_id DESC LIMIT $2) recent \
     ORDER BY score DESC, doc DESC LIMIT $3";

/// The stored (normalised) text of chosen documents; the ids follow as an `IN (...)` list.
pub const SEARCH_BODIES_SQLITE: &str = "SELECT rowid AS doc, body FROM search_index WHERE rowid IN";
pub const SEARCH_BODIES_POSTGRES: &str =
    "SELECT doc_id AS doc, body FROM search_index WHERE doc_id IN";

/// Whether this connection talks to PostgreSQL.
pub fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name() == "PostgreSQL"
}
