-- SLA policies: targets for first reply, next reply and resolution, for the conversations
-- their conditions cover (brand, team, channel, priority; none set: all). The first policy by
-- position that covers a conversation applies. Targets are seconds of the policy's clock
-- (business hours of the conversation's team, else brand; or the calendar); NULL: no target.
CREATE TABLE sla_policies (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT NOT NULL UNIQUE,
    position            BIGINT NOT NULL,
    brand_id            BIGINT REFERENCES brands (id),
    team_id             BIGINT REFERENCES teams (id),
    channel             TEXT,
    priority            TEXT,
    first_reply_secs    BIGINT,
    next_reply_secs     BIGINT,
    resolution_secs     BIGINT,
    business_hours      BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

-- Each target of each conversation, kept with its facts (seva_store::kpi). A target counts
-- at `settled_at` (the reply or resolution that met it, else the instant it was breached),
-- once that instant has passed; NULL while its clock is stopped short of the limit.
CREATE TABLE sla_outcomes (
    conversation_id  BIGINT NOT NULL REFERENCES conversations (id),
    target           TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    done_at          BIGINT,
    settled_at       BIGINT,
    met              BIGINT NOT NULL,
    policy_id        BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, target, started_at)
);
CREATE INDEX sla_outcomes_settled ON sla_outcomes (settled_at);

-- The priority decides which policy applies, so its facts follow it.
ALTER TABLE conversation_facts ADD COLUMN priority TEXT;
