-- Which instance watches a mailbox, when several share one PostgreSQL database: a lease the
-- watching instance renews; another takes over when it runs out (its holder stopped or died).
ALTER TABLE mailboxes ADD COLUMN watcher TEXT;
ALTER TABLE mailboxes ADD COLUMN watcher_until BIGINT;
