-- Seva schema, SQLite. Kept column-for-column in step with postgres/0001_init.sql; the store
-- test `both_schemas_agree` fails when they drift.
-- Conventions: times are BIGINT microseconds since the Unix epoch, UTC (one representation on
-- both backends, sortable, exact); enums are TEXT with their stable snake_case spelling and a
-- CHECK; no BOOLEAN (the Any driver cannot read SQLite booleans): flags are nullable times;
-- ids are never reused; TEXT primary keys say NOT NULL because SQLite would allow NULL.

CREATE TABLE brands (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE teams (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

-- Staff: agents, supervisors, admins and read-only users.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    email          TEXT NOT NULL UNIQUE,          -- lower-cased
    name           TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent', 'readonly')),
    password_hash  TEXT,                          -- argon2id PHC string; NULL: cannot sign in
    deactivated_at BIGINT,                        -- set when the user may no longer sign in
    language       TEXT,                          -- interface language, BCP 47
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_id  BIGINT NOT NULL REFERENCES teams (id),
    user_id  BIGINT NOT NULL REFERENCES users (id),
    PRIMARY KEY (team_id, user_id)
);

-- API tokens: only the SHA-256 of the token is kept; the token is shown once.
CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       BIGINT NOT NULL REFERENCES users (id),
    label         TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);

-- Browser sessions: the cookie holds a random secret, the table its SHA-256.
CREATE TABLE sessions (
    token_hash  TEXT NOT NULL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Failed sign-ins per email, for slow-down and lockout.
CREATE TABLE login_throttle (
    email            TEXT NOT NULL PRIMARY KEY,
    failures         BIGINT NOT NULL,
    last_failure_at  BIGINT NOT NULL,
    locked_until     BIGINT
);

-- One-time links that create the first admin.
CREATE TABLE setup_tokens (
    token_hash  TEXT NOT NULL PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT,
    language    TEXT,                              -- preferred language, BCP 47
    attributes  TEXT NOT NULL,                     -- JSON object of custom attributes
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Emails, phones and external ids. Each (kind, value) belongs to exactly one customer.
CREATE TABLE customer_identities (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id  BIGINT NOT NULL REFERENCES customers (id),
    kind         TEXT NOT NULL CHECK (kind IN ('email', 'phone', 'external')),
    value        TEXT NOT NULL,                    -- normalised: lower-case email, E.164 phone
    created_at   BIGINT NOT NULL,
    UNIQUE (kind, value)
);
CREATE INDEX customer_identities_customer ON customer_identities (customer_id);

CREATE TABLE conversations (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id       BIGINT NOT NULL REFERENCES customers (id),
    brand_id          BIGINT REFERENCES brands (id),
    channel           TEXT NOT NULL CHECK (channel IN ('email', 'chat', 'form', 'portal', 'api', 'sms', 'whatsapp', 'phone', 'in_store')),
    status            TEXT NOT NULL CHECK (status IN ('open', 'pending', 'on_hold', 'resolved', 'closed')),
    priority          TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    subject           TEXT,
    assignee_id       BIGINT REFERENCES users (id),
    team_id           BIGINT REFERENCES teams (id),
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    last_activity_at  BIGINT NOT NULL               -- what the inbox sorts by
);
-- The inbox: newest activity first, filtered by status and one of assignee, team, brand,
-- channel or customer. Each index ends in the sort key and the id tie-breaker used by cursors.
CREATE INDEX conversations_status ON conversations (status, last_activity_at DESC, id DESC);
CREATE INDEX conversations_activity ON conversations (last_activity_at DESC, id DESC);
CREATE INDEX conversations_assignee ON conversations (assignee_id, status, last_activity_at DESC, id DESC);
CREATE INDEX conversations_team ON conversations (team_id, status, last_activity_at DESC, id DESC);
CREATE INDEX conversations_brand ON conversations (brand_id, status, last_activity_at DESC, id DESC);
CREATE INDEX conversations_channel ON conversations (channel, status, last_activity_at DESC, id DESC);
CREATE INDEX conversations_customer ON conversations (customer_id, last_activity_at DESC, id DESC);

CREATE TABLE conversation_tags (
    conversation_id  BIGINT NOT NULL REFERENCES conversations (id),
    tag              TEXT NOT NULL,
    PRIMARY KEY (conversation_id, tag)
);
CREATE INDEX conversation_tags_tag ON conversation_tags (tag, conversation_id);

CREATE TABLE messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  BIGINT NOT NULL REFERENCES conversations (id),
    kind             TEXT NOT NULL CHECK (kind IN ('customer', 'reply', 'note')),
    direction        TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    author_kind      TEXT NOT NULL CHECK (author_kind IN ('customer', 'agent', 'bot', 'system')),
    author_user_id   BIGINT REFERENCES users (id),
    body_text        TEXT NOT NULL,
    body_html        TEXT,                          -- sanitised before it is stored
    external_id      TEXT UNIQUE,                   -- sender's id (Message-ID, client id): stored once
    created_at       BIGINT NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, created_at, id);

-- The immutable record of every change, written in the change's transaction.
CREATE TABLE events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  BIGINT REFERENCES conversations (id),
    customer_id      BIGINT REFERENCES customers (id),
    actor_kind       TEXT NOT NULL CHECK (actor_kind IN ('user', 'customer', 'system')),
    actor_id         BIGINT,
    kind             TEXT NOT NULL,
    data             TEXT NOT NULL,                 -- JSON detail of the change
    at               BIGINT NOT NULL
);
CREATE INDEX events_conversation ON events (conversation_id, id);
CREATE INDEX events_customer ON events (customer_id, id);
CREATE INDEX events_kind_at ON events (kind, at);

-- Idempotency-Key records: the same key from the same user returns the first result.
CREATE TABLE idempotency_keys (
    user_id        BIGINT NOT NULL REFERENCES users (id),
    idem_key       TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    resource_kind  TEXT NOT NULL,
    resource_id    BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);
