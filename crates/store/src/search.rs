//! Full-text search: documents are kept in step with messages and subjects in the same
//! transaction; queries return the best matches with highlighted snippets. The SQL differs per
//! backend and lives in `dialect`.

use seva_domain::search::{normalize, query_terms, snippet_html};
use seva_domain::{ConversationId, MessageId};

use crate::rows::col;
use crate::{Conn, Result, dialect};

/// The search document of a message's text.
pub fn message_doc(id: MessageId) -> i64 {
    id.0 * 2
}

/// The search document of a conversation's subject.
pub fn subject_doc(id: ConversationId) -> i64 {
    id.0 * 2 + 1
}

async fn upsert(conn: &mut Conn, doc: i64, conversation: ConversationId, text: &str) -> Result<()> {
    let sql = if dialect::is_postgres(conn) {
        dialect::SEARCH_UPSERT_POSTGRES
    } else {
        dialect::SEARCH_UPSERT_SQLITE
    };
    sqlx::query(sql)
        .bind(doc)
        .bind(normalize(text))
        .bind(conversation.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn index_message(
    conn: &mut Conn,
    conversation: ConversationId,
    message: MessageId,
    text: &str,
) -> Result<()> {
    upsert(conn, message_doc(message), conversation, text).await
}

/// Indexes a conversation's subject, replacing the old one; `None` removes it.
pub async fn index_subject(
    conn: &mut Conn,
    conversation: ConversationId,
    subject: Option<&str>,
) -> Result<()> {
    if let Some(subject) = subject {
        return upsert(conn, subject_doc(conversation), conversation, subject).await;
    }
    let sql = if dialect::is_postgres(conn) {
        dialect::SEARCH_DELETE_POSTGRES
    } else {
        dialect::SEARCH_DELETE_SQLITE
    };
    sqlx::query(sql)
        .bind(subject_doc(conversation))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// One conversation that matched, with the best snippet of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub conversation_id: ConversationId,
    /// The matching text, HTML-escaped, with the matched words in `<mark>`.
    pub snippet_html: String,
    pub score: f64,
}

/// The conversations best matching every word of `query`, best first, one hit per conversation.
/// Relevance is ranked among the newest [`dialect::SEARCH_RANK_WINDOW`] matching documents.
pub async fn search(conn: &mut Conn, query: &str, limit: u32) -> Result<Vec<Hit>> {
    let terms = query_terms(query, 8);
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let postgres = dialect::is_postgres(conn);
    let text = if postgres {
        terms.join(" ")
    } else {
        // Each term quoted, so nothing a user types is read as FTS5 syntax.
        let quoted: Vec<String> = terms
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect();
        quoted.join(" ")
    };
    let sql = if postgres {
        dialect::SEARCH_POSTGRES
    } else {
        dialect::SEARCH_SQLITE
    };
    // Several documents of one conversation may match; read a few more to fill the page.
    let rows = sqlx::query(sql)
        .bind(&text)
        .bind(dialect::SEARCH_RANK_WINDOW)
        .bind(i64::from(limit) * 4)
        .fetch_all(&mut *conn)
        .await?;
    let mut hits: Vec<(i64, Hit)> = Vec::new();
    for row in rows {
        let conversation_id = ConversationId(col(&row, "conversation_id")?);
        if hits
            .iter()
            .any(|(_, h)| h.conversation_id == conversation_id)
        {
            continue;
        }
        let hit = Hit {
            conversation_id,
            snippet_html: String::new(),
            score: col(&row, "score")?,
        };
        hits.push((col(&row, "doc")?, hit));
        if hits.len() == limit as usize {
            break;
        }
    }
    if hits.is_empty() {
        return Ok(Vec::new());
    }
    // Snippets only for the documents shown, built from their text by primary key: cheaper
    // than the engines' own snippet functions, and the same on both backends.
    let base = if postgres {
        dialect::SEARCH_BODIES_POSTGRES
    } else {
        dialect::SEARCH_BODIES_SQLITE
    };
    let sql = format!("{base} ({})", crate::rows::placeholders(1, hits.len()));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (doc, _) in &hits {
        query = query.bind(*doc);
    }
    for row in query.fetch_all(&mut *conn).await? {
        let doc: i64 = col(&row, "doc")?;
        let body: String = col(&row, "body")?;
        if let Some((_, hit)) = hits.iter_mut().find(|(d, _)| *d == doc) {
            hit.snippet_html = snippet_html(&body, &terms, 16);
        }
    }
    Ok(hits.into_iter().map(|(_, hit)| hit).collect())
}
