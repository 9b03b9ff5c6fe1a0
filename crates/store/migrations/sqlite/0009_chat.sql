-- Web chat: widgets a shop embeds in its site, and the visitors who chat through them.

-- A widget belongs to a brand. `public_key` is in the embed snippet (not a secret); `secret`
-- signs shoppers' identities on the shop's server (HMAC) and is shown once to admins.
CREATE TABLE widgets (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    public_key       TEXT NOT NULL UNIQUE,
    secret           TEXT NOT NULL,
    name             TEXT NOT NULL,
    brand_id         BIGINT REFERENCES brands (id),
    allowed_origins  TEXT NOT NULL,                  -- one origin per line; empty: any
    color            TEXT NOT NULL,                  -- #rrggbb
    greeting         TEXT,
    prechat          TEXT NOT NULL CHECK (prechat IN ('none', 'name', 'email', 'name_email')),
    disabled_at      BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- A visitor's chat: the browser keeps a random token (only its SHA-256 is stored) and
-- resumes with it after a reload or a lost connection.
CREATE TABLE chat_visitors (
    token_hash       TEXT NOT NULL PRIMARY KEY,
    widget_id        BIGINT NOT NULL REFERENCES widgets (id),
    customer_id      BIGINT REFERENCES customers (id),
    conversation_id  BIGINT REFERENCES conversations (id),
    created_at       BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL
);
CREATE INDEX chat_visitors_conversation ON chat_visitors (conversation_id);
