-- SQLite's full-text tokenizer changed to keep Devanagari words whole (sqlite/0005).
-- PostgreSQL's to_tsvector('simple') already keeps them whole: nothing to do here; the file
-- keeps both backends' migration numbers in step.
SELECT 1;
