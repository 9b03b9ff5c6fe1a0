-- Full-text search over conversation subjects and message bodies. One document per message
-- (rowid = message id * 2) and one per conversation subject (rowid = conversation id * 2 + 1), so
-- a document is found by rowid without scanning. Text is normalised by
-- seva_domain::search::normalize before it is stored (Persian ZWNJ, Arabic letter forms, digits).
-- unicode61 with remove_diacritics 2 keeps Devanagari words whole.
-- PostgreSQL keeps the same documents in an ordinary table with a tsvector (postgres/0002).
CREATE VIRTUAL TABLE search_index USING fts5(
    body,
    conversation_id UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Text written before search existed, indexed as it was stored.
INSERT INTO search_index (rowid, body, conversation_id)
    SELECT id * 2, body_text, conversation_id FROM messages;
INSERT INTO search_index (rowid, body, conversation_id)
    SELECT id * 2 + 1, subject, id FROM conversations WHERE subject IS NOT NULL;
