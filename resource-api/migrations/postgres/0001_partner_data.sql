-- The partner API's data. Orders and invoices belong to exactly one partner, and every query on
-- them filters by partner_id, which leads each of their indexes.
CREATE TABLE partners (
    partner_id TEXT PRIMARY KEY,
    name       TEXT NOT NULL
);

CREATE TABLE products (
    id          TEXT PRIMARY KEY,
    sku         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    currency    TEXT NOT NULL
);

CREATE TABLE inventory (
    product_id TEXT PRIMARY KEY REFERENCES products (id),
    warehouse  TEXT NOT NULL,
    quantity   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE orders (
    id          TEXT PRIMARY KEY,
    partner_id  TEXT NOT NULL REFERENCES partners (partner_id),
    status      TEXT NOT NULL,
    total_cents BIGINT NOT NULL,
    currency    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX orders_partner ON orders (partner_id, id);

CREATE TABLE invoices (
    id           TEXT PRIMARY KEY,
    partner_id   TEXT NOT NULL REFERENCES partners (partner_id),
    order_id     TEXT NOT NULL REFERENCES orders (id),
    status       TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    issued_at    BIGINT NOT NULL,
    due_at       BIGINT NOT NULL
);
CREATE INDEX invoices_partner ON invoices (partner_id, id);
