-- Devanagari words stay whole. unicode61's default token characters are letters, numbers and
-- private-use characters (L* N* Co); Devanagari vowel signs and the virama are marks (M*), so
-- "पार्सल" was indexed as the fragments "प", "र", "सल". Matching still worked, as a phrase of
-- fragments, but loosely (fragments of other words matched) and slowly (bm25 then counts the
-- phrase in every matching document: 160-360 ms per query at a million conversations).
-- Marks are token characters now; the documents are copied as stored (already normalised).
CREATE VIRTUAL TABLE search_index_new USING fts5(
    body,
    conversation_id UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2 categories ''L* N* Co M*'''
);
INSERT INTO search_index_new (rowid, body, conversation_id)
    SELECT rowid, body, conversation_id FROM search_index;
DROP TABLE search_index;
ALTER TABLE search_index_new RENAME TO search_index;
