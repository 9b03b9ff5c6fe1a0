-- The email channel: mailboxes Seva fetches from and sends through, the raw source of every mail
-- (kept for audit in the attachment store, named by SHA-256), mail that could not be taken in,
-- and the outbox that sends agents' replies.

-- A mailbox: where customers write (IMAP) and where replies leave from (SMTP). Passwords are kept
-- as given because the servers need them; the API never returns them.
CREATE TABLE mailboxes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL,
    address        TEXT NOT NULL UNIQUE,           -- lower-cased; replies come From it
    brand_id       BIGINT REFERENCES brands (id),
    imap_host      TEXT NOT NULL,
    imap_port      BIGINT NOT NULL,
    imap_security  TEXT NOT NULL CHECK (imap_security IN ('tls', 'starttls', 'none')),
    imap_user      TEXT NOT NULL,
    imap_password  TEXT NOT NULL,
    imap_folder    TEXT NOT NULL,
    smtp_host      TEXT NOT NULL,
    smtp_port      BIGINT NOT NULL,
    smtp_security  TEXT NOT NULL CHECK (smtp_security IN ('tls', 'starttls', 'none')),
    smtp_user      TEXT,                           -- NULL: the server needs no sign-in
    smtp_password  TEXT,
    -- Fetch position: every UID up to last_uid in this UIDVALIDITY has been taken in (or set
    -- aside). Advanced in the same transaction as the message it covers.
    uid_validity   BIGINT,
    last_uid       BIGINT NOT NULL,
    checked_at     BIGINT,                         -- last time the server answered
    last_error     TEXT,                           -- last connection error; NULL when fine
    disabled_at    BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- The raw source of each message that came or went by email.
CREATE TABLE mail_sources (
    message_id   BIGINT NOT NULL PRIMARY KEY REFERENCES messages (id),
    mailbox_id   BIGINT NOT NULL REFERENCES mailboxes (id),
    direction    TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    sha256       TEXT NOT NULL,
    size         BIGINT NOT NULL,
    reply_to     TEXT,                             -- where an answer goes (Reply-To, else From)
    automatic    TEXT CHECK (automatic IN ('auto_reply', 'bounce', 'list')),
    created_at   BIGINT NOT NULL
);
CREATE INDEX mail_sources_mailbox ON mail_sources (mailbox_id, message_id);

-- Mail that could not become a message (too large, unreadable): kept with its error, shown on
-- the mailbox's page; the fetcher moves on to the next one.
CREATE TABLE mail_rejects (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id  BIGINT NOT NULL REFERENCES mailboxes (id),
    imap_uid    BIGINT NOT NULL,
    sha256      TEXT,                              -- the raw source, when it was downloaded
    size        BIGINT NOT NULL,
    sender      TEXT,
    subject     TEXT,
    error       TEXT NOT NULL,                     -- stable code
    detail      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX mail_rejects_mailbox ON mail_rejects (mailbox_id, id);

-- Replies waiting to be sent, queued in the reply's own transaction. A sender claims a row by
-- setting locked_until; a crash only delays it until the lease runs out.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id       BIGINT NOT NULL UNIQUE REFERENCES messages (id),
    mailbox_id       BIGINT NOT NULL REFERENCES mailboxes (id),
    recipient        TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    locked_until     BIGINT,
    last_error       TEXT,
    sent_at          BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
