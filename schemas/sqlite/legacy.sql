-- Legacy (source) schema, SQLite flavour.
-- Integer ids, orders.customer_id is nullable and has no foreign key (legacy data has
-- orphans), customers.active is an integer flag, every other column is free text.

CREATE TABLE IF NOT EXISTS customers (
    customer_id     INTEGER PRIMARY KEY,
    customer_name   TEXT,
    email_address   TEXT,
    phone_number    TEXT,
    street_address  TEXT,
    city            TEXT,
    state_province  TEXT,
    zip_postal      TEXT,
    country         TEXT,
    status_code     TEXT,
    active          INTEGER,
    created_date    TEXT,
    last_modified   TEXT
);

CREATE TABLE IF NOT EXISTS products (
    product_id          INTEGER PRIMARY KEY,
    product_code        TEXT,
    product_name        TEXT,
    description         TEXT,
    unit_price          TEXT,
    category            TEXT,
    status              TEXT,
    product_attributes  TEXT
);

CREATE TABLE IF NOT EXISTS orders (
    order_id      INTEGER PRIMARY KEY,
    customer_id   INTEGER,
    order_number  TEXT,
    order_total   TEXT,
    status        TEXT,
    order_date    TEXT,
    order_items   TEXT
);
