//! Full-text search: documents are kept in step with messages and subjects in the same
//! transaction; queries return the best matches with highlighted snippets. The SQL differs per
//! backend and lives in `dialect`.

use seva_domain::search::{normalize, query_terms};
use seva_domain::{ConversationId, MessageId};

use crate::rows::col;
use crate::{Conn, Result, dialect};

fn message_doc(id: MessageId) -> i64 {
    id.0 * 2
}

fn subject_doc(id: ConversationId) -> i64 {
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
pub async fn search(conn: &mut Conn, query: &str, limit: u32) -> Result<Vec<Hit>> {
    let terms = query_terms(query, 8);
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let (sql, text) = if dialect::is_postgres(conn) {
        (dialect::SEARCH_POSTGRES, terms.join(" "))
    } else {
        // Each term quoted, so nothing a user types is read as FTS5 syntax.
        let quoted: Vec<String> = terms
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect();
        (dialect::SEARCH_SQLITE, quoted.join(" "))
    };
    // Several documents of one conversation may match; read a few more to fill the page.
    let rows = sqlx::query(sql)
        .bind(text)
        .bind(i64::from(limit) * 4)
        .fetch_all(&mut *conn)
        .await?;
    let mut hits: Vec<Hit> = Vec::new();
    for row in rows {
        let conversation_id = ConversationId(col(&row, "conversation_id")?);
        if hits.iter().any(|h| h.conversation_id == conversation_id) {
            continue;
        }
        let snippet: String = col(&row, "snippet")?;
        hits.push(Hit {
            conversation_id,
            snippet_html: mark(&snippet),
            score: col(&row, "score")?,
        });
        if hits.len() == limit as usize {
            break;
        }
    }
    Ok(hits)
}

/// Escapes text for HTML and turns the U+E000/U+E001 match markers into `<mark>` elements.
fn mark(snippet: &str) -> String {
    let mut out = String::with_capacity(snippet.len() + 16);
    for c in snippet.chars() {
        match c {
            '\u{E000}' => out.push_str("<mark>"),
            '\u{E001}' => out.push_str("</mark>"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn snippets_are_escaped_and_only_the_markers_become_html() {
        assert_eq!(
            super::mark("<b>\u{E000}refund\u{E001}</b> & co"),
            "&lt;b&gt;<mark>refund</mark>&lt;/b&gt; &amp; co"
        );
    }
}
