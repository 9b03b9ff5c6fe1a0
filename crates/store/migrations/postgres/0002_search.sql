-- Full-text search over conversation subjects and message bodies. One document per message
-- (doc_id = message id * 2) and one per conversation subject (doc_id = conversation id * 2 + 1).
-- Text is normalised by seva_domain::search::normalize before it is stored (Persian ZWNJ,
-- Arabic letter forms, digits). The 'simple' configuration lower-cases and splits on
-- non-letters without stemming, which keeps Persian, Marathi and Hindi words whole.
-- SQLite keeps the same documents in an FTS5 table (sqlite/0002).
CREATE TABLE search_index (
    doc_id           BIGINT NOT NULL PRIMARY KEY,
    conversation_id  BIGINT NOT NULL REFERENCES conversations (id),
    body             TEXT NOT NULL,
    tsv              tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED
);
CREATE INDEX search_index_tsv ON search_index USING GIN (tsv);

-- Text written before search existed, indexed as it was stored.
INSERT INTO search_index (doc_id, conversation_id, body)
    SELECT id * 2, conversation_id, body_text FROM messages;
INSERT INTO search_index (doc_id, conversation_id, body)
    SELECT id * 2 + 1, id, subject FROM conversations WHERE subject IS NOT NULL;
