-- CRM: what agents keep about a customer (tags, notes, consent, preferred channel), merges and
-- erasure, orders linked to conversations, returns/exchanges/refund requests, the product
-- catalogue, and saved customer segments.

-- Consent flags as a JSON object ({"email_marketing": true, ...}); the channel the customer
-- prefers to be answered on; the customer this one was merged into (the row stays, for the
-- audit trail and old links); when the customer was erased (name and identities gone).
ALTER TABLE customers ADD COLUMN consent TEXT NOT NULL DEFAULT '{}';
ALTER TABLE customers ADD COLUMN preferred_channel TEXT;
ALTER TABLE customers ADD COLUMN merged_into BIGINT REFERENCES customers (id);
ALTER TABLE customers ADD COLUMN erased_at BIGINT;

CREATE TABLE customer_tags (
    customer_id  BIGINT NOT NULL REFERENCES customers (id),
    tag          TEXT NOT NULL,
    PRIMARY KEY (customer_id, tag)
);
CREATE INDEX customer_tags_tag ON customer_tags (tag, customer_id);

CREATE TABLE customer_notes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id  BIGINT NOT NULL REFERENCES customers (id),
    author_id    BIGINT REFERENCES users (id),
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX customer_notes_customer ON customer_notes (customer_id, id);

-- The keys under which customers are likely the same person (seva_domain::customer::MatchKey):
-- the mailbox behind an email's aliases, a phone's last 10 digits, a name at an order address.
-- Kept as identities and orders are recorded; customers sharing a key are suggested to agents.
CREATE TABLE customer_match_keys (
    kind         TEXT NOT NULL CHECK (kind IN ('email', 'phone', 'name_address')),
    value        TEXT NOT NULL,
    customer_id  BIGINT NOT NULL REFERENCES customers (id),
    PRIMARY KEY (kind, value, customer_id)
);
CREATE INDEX customer_match_keys_customer ON customer_match_keys (customer_id);

-- Orders an agent linked to a conversation ("this is about order #1001").
CREATE TABLE conversation_orders (
    conversation_id  BIGINT NOT NULL REFERENCES conversations (id),
    order_id         BIGINT NOT NULL REFERENCES orders (id),
    linked_by        BIGINT REFERENCES users (id),
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, order_id)
);
CREATE INDEX conversation_orders_order ON conversation_orders (order_id);

-- A return, exchange or refund request on an order: the items (JSON array of sku, title,
-- quantity), the reason, and where it stands.
CREATE TABLE order_requests (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id         BIGINT NOT NULL REFERENCES orders (id),
    customer_id      BIGINT NOT NULL REFERENCES customers (id),
    conversation_id  BIGINT REFERENCES conversations (id),
    kind             TEXT NOT NULL CHECK (kind IN ('return', 'exchange', 'refund')),
    status           TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'rejected', 'received', 'completed')),
    reason           TEXT NOT NULL,
    items            TEXT NOT NULL,
    created_by       BIGINT REFERENCES users (id),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX order_requests_customer ON order_requests (customer_id, id);
CREATE INDEX order_requests_order ON order_requests (order_id, id);

-- The shop's catalogue, by SKU; order lines name their SKU.
CREATE TABLE products (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sku         TEXT NOT NULL UNIQUE,
    title       TEXT NOT NULL,
    currency    TEXT,
    price       BIGINT,                      -- minor units of currency
    url         TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- A saved segment: a name and its rules (JSON, see seva_domain::segment).
CREATE TABLE segments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    rules       TEXT NOT NULL,
    created_by  BIGINT REFERENCES users (id),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Erasing a customer must not leave their words in the full-text index's pages: secure-delete
-- removes a deleted document's terms at once instead of at the next segment merge.
INSERT INTO search_index (search_index, rank) VALUES ('secure-delete', 1);
