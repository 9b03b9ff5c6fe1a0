-- Commerce: orders and their lines, as the shop's platform reports them. Money is integer minor
-- units of the order's ISO 4217 currency. (source, external_id) is the platform's order: a
-- redelivery finds it, and an unchanged one (same fingerprint) is left alone.
CREATE TABLE orders (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    source             TEXT NOT NULL CHECK (source IN ('api', 'csv', 'shopify', 'woocommerce')),
    external_id        TEXT NOT NULL,
    number             TEXT NOT NULL,
    customer_id        BIGINT NOT NULL REFERENCES customers (id),
    status             TEXT NOT NULL CHECK (status IN ('open', 'completed', 'cancelled')),
    payment_status     TEXT NOT NULL,
    fulfilment_status  TEXT NOT NULL,
    currency           TEXT NOT NULL,
    total              BIGINT NOT NULL CHECK (total >= 0),
    refunded           BIGINT NOT NULL CHECK (refunded >= 0),
    placed_at          BIGINT NOT NULL,
    shipping_address   TEXT,                 -- JSON object, or NULL
    fingerprint        TEXT NOT NULL,        -- SHA-256 of the order as last recorded
    source_updated_at  BIGINT,               -- the platform's own "last changed", when it says
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    UNIQUE (source, external_id)
);
CREATE INDEX orders_customer ON orders (customer_id, placed_at DESC, id DESC);
CREATE INDEX orders_placed ON orders (placed_at);

CREATE TABLE order_lines (
    order_id    BIGINT NOT NULL REFERENCES orders (id),
    position    BIGINT NOT NULL,
    sku         TEXT,
    title       TEXT NOT NULL,
    quantity    BIGINT NOT NULL,
    unit_price  BIGINT NOT NULL,
    total       BIGINT NOT NULL,
    PRIMARY KEY (order_id, position)
);

-- A shop platform that sends order webhooks: its signing secret verifies each delivery
-- (Shopify: the app's client secret; WooCommerce: the webhook's secret).
CREATE TABLE shop_integrations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    platform    TEXT NOT NULL CHECK (platform IN ('shopify', 'woocommerce')),
    name        TEXT NOT NULL UNIQUE,
    secret      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
