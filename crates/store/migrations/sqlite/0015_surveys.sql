-- Surveys: what each brand asks (brand 0: conversations without a brand), and every survey
-- sent, with its answers. One row per invitation: a resolution's questions travel together
-- (one email, one page), each answer in its own column.
CREATE TABLE survey_settings (
    brand_id               BIGINT NOT NULL PRIMARY KEY,
    on_resolution          TEXT NOT NULL,        -- comma-separated kinds: csat,ces,nps
    quiet_days             BIGINT NOT NULL,
    relationship_nps_days  BIGINT,              -- NULL: relationship NPS is not sent
    updated_at             BIGINT NOT NULL
);

CREATE TABLE surveys (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id      BIGINT NOT NULL REFERENCES customers (id),
    conversation_id  BIGINT REFERENCES conversations (id),  -- NULL: relationship NPS
    brand_id         BIGINT,
    channel          TEXT NOT NULL CHECK (channel IN ('email', 'portal')),
    asks             TEXT NOT NULL,                         -- comma-separated kinds
    csat             BIGINT CHECK (csat BETWEEN 1 AND 5),
    ces              BIGINT CHECK (ces BETWEEN 1 AND 7),
    nps              BIGINT CHECK (nps BETWEEN 0 AND 10),
    comment          TEXT,
    created_at       BIGINT NOT NULL,
    answered_at      BIGINT                                 -- the first answer
);
CREATE INDEX surveys_customer ON surveys (customer_id, created_at);
CREATE INDEX surveys_conversation ON surveys (conversation_id);
CREATE INDEX surveys_answered ON surveys (answered_at);

-- Notices may now be survey invitations. SQLite cannot change a CHECK, so the table is rebuilt.
CREATE TABLE mail_notices_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL CHECK (kind IN ('acknowledgement', 'portal_link', 'survey')),
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
INSERT INTO mail_notices_new SELECT * FROM mail_notices;
DROP TABLE mail_notices;
ALTER TABLE mail_notices_new RENAME TO mail_notices;
CREATE INDEX mail_notices_due ON mail_notices (status, next_attempt_at);
CREATE INDEX mail_notices_recipient ON mail_notices (recipient, kind, created_at);
CREATE INDEX mail_notices_mail_message_id ON mail_notices (mail_message_id);
