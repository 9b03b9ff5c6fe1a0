-- The public side: the contact form, the customer portal's sign-in links and sessions, mail
-- Seva sends on its own (acknowledgements, sign-in links, chat replies a visitor missed), and
-- when a chat's visitor is told nobody has answered yet.

-- How long a visitor waits for an agent's first answer before the widget says so and offers
-- to continue by email; also how long an agent's chat reply waits, unseen, before it is
-- emailed to the visitor. Seconds.
ALTER TABLE widgets ADD COLUMN away_after BIGINT NOT NULL DEFAULT 120;

-- The newest message the visitor's browser was given (replayed or live).
ALTER TABLE chat_visitors ADD COLUMN delivered_id BIGINT;

-- A contact form submission: what the form asked beyond the message (the order number), and
-- who sent it (the address hashed with the day, for rate limits; never the address itself).
CREATE TABLE form_submissions (
    message_id       BIGINT NOT NULL PRIMARY KEY REFERENCES messages (id),
    conversation_id  BIGINT NOT NULL REFERENCES conversations (id),
    order_number     TEXT,
    client_hash      TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX form_submissions_client ON form_submissions (client_hash, created_at);

-- Mail Seva writes on its own, queued in the transaction that decided it and sent by the
-- outbox job like replies. A sign-in link's text is blanked once sent.
CREATE TABLE mail_notices (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL CHECK (kind IN ('acknowledgement', 'portal_link')),
    mailbox_id       BIGINT NOT NULL REFERENCES mailboxes (id),
    conversation_id  BIGINT REFERENCES conversations (id),
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    mail_message_id  TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    locked_until     BIGINT,
    last_error       TEXT,
    sent_at          BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX mail_notices_due ON mail_notices (status, next_attempt_at);
CREATE INDEX mail_notices_recipient ON mail_notices (recipient, kind, created_at);
CREATE INDEX mail_notices_mail_message_id ON mail_notices (mail_message_id);

-- A customer portal sign-in link: single use, short-lived; only the token's SHA-256 is kept.
CREATE TABLE portal_links (
    token_hash   TEXT NOT NULL PRIMARY KEY,
    customer_id  BIGINT NOT NULL REFERENCES customers (id),
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX portal_links_customer ON portal_links (customer_id, created_at);

-- A signed-in portal visitor (the cookie's SHA-256).
CREATE TABLE portal_sessions (
    token_hash   TEXT NOT NULL PRIMARY KEY,
    customer_id  BIGINT NOT NULL REFERENCES customers (id),
    expires_at   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Keys the server signs with, made once and shared by every instance (the contact form's
-- time-stamp signature).
CREATE TABLE server_keys (
    name        TEXT NOT NULL PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
