-- Reports keep closed days' figures in memory (the app's report cache). A change to what an
-- old UTC day counts (an import, a reassignment, a tag, a changed answer, a cancelled order)
-- bumps that day's version here, in the change's transaction, so every instance recomputes
-- the day; changes to recent days, which are never cached, write nothing.
CREATE TABLE kpi_day_versions (
    kind     TEXT NOT NULL CHECK (kind IN ('conversations', 'orders')),
    day      BIGINT NOT NULL,               -- days since 1970-01-01, UTC
    version  BIGINT NOT NULL,
    PRIMARY KEY (kind, day)
);

-- The backlog at a period's end reads resolutions after it and open conversations from the
-- index alone; so does the count of conversations still waiting for a first reply.
CREATE INDEX conversation_facts_open ON conversation_facts (final_resolved_at, created_at, status);
DROP INDEX conversation_facts_final_resolved;
CREATE INDEX conversation_facts_waiting ON conversation_facts (customer_started, first_reply_at, first_customer_at, first_resolved_at);
DROP INDEX conversation_facts_unanswered;
