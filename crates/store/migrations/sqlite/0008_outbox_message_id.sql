-- The Message-ID an email reply is sent with, kept on its outbox row: a reply's own
-- external_id (an API client's id) is not a Message-ID, and must not be replaced by one.
ALTER TABLE outbox ADD COLUMN mail_message_id TEXT;
CREATE INDEX outbox_mail_message_id ON outbox (mail_message_id);
