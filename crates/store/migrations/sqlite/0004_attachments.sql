-- Files that came with messages. The bytes live in the attachment store (a folder in the data
-- directory by default), named by their SHA-256, so the same file is kept once; rows describe
-- them and are written in the message's transaction.
CREATE TABLE attachments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      BIGINT NOT NULL REFERENCES messages (id),
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    sha256          TEXT NOT NULL,
    filename        TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    size            BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE INDEX attachments_conversation ON attachments (conversation_id, id);
CREATE INDEX attachments_message ON attachments (message_id);
