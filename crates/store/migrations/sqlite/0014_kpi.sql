-- KPI facts, kept as conversations change (in the same transaction as the change), so reports
-- over a million conversations read one indexed row per conversation instead of replaying
-- events. Durations are seconds on the calendar (`_cal`) and on the business-hours clock of the
-- conversation's team, else its brand (`_bus`; the calendar when neither keeps hours).
CREATE TABLE conversation_facts (
    conversation_id       BIGINT NOT NULL PRIMARY KEY REFERENCES conversations (id),
    customer_id           BIGINT NOT NULL,
    brand_id              BIGINT,
    team_id               BIGINT,
    assignee_id           BIGINT,
    channel               TEXT NOT NULL,
    status                TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    customer_started      BIGINT NOT NULL,      -- 1: the customer wrote first
    first_customer_at     BIGINT,
    first_reply_at        BIGINT,               -- first public agent reply
    first_response_cal    BIGINT,
    first_response_bus    BIGINT,
    first_resolved_at     BIGINT,
    first_resolution_cal  BIGINT,
    first_resolution_bus  BIGINT,
    final_resolved_at     BIGINT,               -- NULL unless resolved now
    full_resolution_cal   BIGINT,
    full_resolution_bus   BIGINT,
    reopened              BIGINT NOT NULL,      -- times reopened after a resolution
    public_replies        BIGINT NOT NULL,
    one_touch             BIGINT                -- NULL: does not count; else 0 or 1
);
CREATE INDEX conversation_facts_first_reply ON conversation_facts (first_reply_at);
CREATE INDEX conversation_facts_first_resolved ON conversation_facts (first_resolved_at);
CREATE INDEX conversation_facts_final_resolved ON conversation_facts (final_resolved_at);
CREATE INDEX conversation_facts_customer ON conversation_facts (customer_id, created_at);
CREATE INDEX conversation_facts_unanswered ON conversation_facts (customer_started, first_reply_at, first_customer_at);

-- Every answered customer turn: when the reply came and how long the turn waited.
CREATE TABLE turn_responses (
    conversation_id  BIGINT NOT NULL REFERENCES conversations (id),
    answered_at      BIGINT NOT NULL,
    seconds_cal      BIGINT NOT NULL,
    seconds_bus      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, answered_at)
);
CREATE INDEX turn_responses_answered ON turn_responses (answered_at);
