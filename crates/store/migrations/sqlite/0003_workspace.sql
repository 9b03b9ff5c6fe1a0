-- The agent workspace: each user's display preferences and saved inbox views.

-- IANA time zone for dates on pages (NULL: UTC) and the digits numbers are written with
-- ('latn' or 'native'; NULL: the language's usual digits: Persian for fa, Latin otherwise).
ALTER TABLE users ADD COLUMN time_zone TEXT;
ALTER TABLE users ADD COLUMN digits TEXT;

-- A saved view is a named inbox query (the query string of the inbox page), private to its user.
CREATE TABLE saved_views (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    name        TEXT NOT NULL,
    query       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (user_id, name)
);
